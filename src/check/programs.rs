//! Check 3 (accounts) and 4 (programs): every account exists, and every
//! program of the chain is a regular file its identity may execute.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::server::Flags;
use super::{Ctx, Identity, Report, errstr};
use crate::account;
use crate::error::{Exit, exit_code};

/// `account` (envuidgid) and `setuidgid` exist; setuidgid can switch.
pub fn accounts(ctx: &mut Ctx, r: &mut Report) {
    for what in ["account", "setuidgid"] {
        let name = ctx.settings.str(what).to_string();
        if name.is_empty() {
            continue;
        }
        let check = format!("{what} {name}");
        match account::lookup(&name, what) {
            Ok(a) => {
                if what == "setuidgid" {
                    if ctx.euid != 0 && a.uid != ctx.euid {
                        r.fail(
                            check,
                            format!(
                                "only root can switch to uid {}, and courier-run runs as uid {}",
                                a.uid, ctx.euid
                            ),
                            "run courier-run as root, or set setuidgid= for none",
                        );
                        ctx.substitute(what, "");
                        continue;
                    }
                    ctx.exec_id = Identity {
                        uid: a.uid,
                        gid: a.gid,
                        groups: vec![a.gid],
                    };
                }
                r.ok(format!("{check} (uid {}, gid {})", a.uid, a.gid));
            }
            Err(e) => {
                if exit_code(&e) == Exit::Usage {
                    r.fail(
                        check,
                        "no such account",
                        format!(
                            "create it, or set {what}= to an existing account; {what}= for none"
                        ),
                    );
                } else {
                    r.fail_msg(check, &crate::error::describe(&e));
                }
                ctx.substitute(what, "");
            }
        }
    }
}

/// One program of the chain.
#[derive(Clone, Debug)]
pub struct Program {
    /// "server", "login", "auth authpwd", "imapd".
    pub role: String,
    pub path: PathBuf,
    /// Exists and may be executed: later checks may run or inspect it.
    pub usable: bool,
    /// Who runs it.
    pub id: Identity,
}

/// The chain: server (looked up in PATH), login, auth modules, imapd.
pub fn programs(ctx: &mut Ctx, flags: &Flags, r: &mut Report) -> Vec<Program> {
    let s = ctx.settings.clone();
    // tcpserver's -u/-g switch before it runs the login program.
    let child = Identity {
        uid: flags.uid.unwrap_or(ctx.exec_id.uid),
        gid: flags.gid.unwrap_or(ctx.exec_id.gid),
        groups: match flags.gid {
            Some(g) => vec![g],
            None => ctx.exec_id.groups.clone(),
        },
    };
    let mut wanted: Vec<(String, &'static str, PathBuf, Identity)> = Vec::new();
    let mut server_ok = false;
    if flags.argv0.is_empty() {
        r.fail("server", "empty", "set it to e.g. \"tcpserver -v -RH -l0\"");
    } else {
        match resolve(&flags.argv0, ctx.env("PATH").as_deref()) {
            Ok(p) => wanted.push(("server".into(), "server", p, ctx.exec_id.clone())),
            Err(why) => r.fail(
                format!("program {} (server)", flags.argv0),
                why,
                "install ucspi-tcp, or set server= with the front end's full path",
            ),
        }
    }
    if !s.str("login").is_empty() {
        wanted.push((
            "login".into(),
            "login",
            s.str("login").into(),
            child.clone(),
        ));
    }
    let authdir = s.str("authdir").trim_end_matches('/');
    for m in s.str("auth").split_ascii_whitespace() {
        if m.contains('/') {
            wanted.push((format!("auth {m}"), "auth", m.into(), child.clone()));
        } else if authdir.is_empty() {
            r.fail(
                format!("auth {m}"),
                "a bare module name, but authdir is empty",
                "set authdir, or give the module's full path",
            );
            ctx.substitute("auth", "");
        } else {
            wanted.push((
                format!("auth {m}"),
                "auth",
                format!("{authdir}/{m}").into(),
                child.clone(),
            ));
        }
    }
    wanted.push(("imapd".into(), "imapd", s.str("imapd").into(), child));

    let mut out = Vec::new();
    for (role, setting, path, id) in wanted {
        let check = format!("program {} ({role})", path.display());
        let usable = match executable(&path, &id) {
            Ok(()) => {
                r.ok(check);
                true
            }
            Err((why, fix)) => {
                let fix =
                    fix.unwrap_or_else(|| format!("install it, or set {setting}= to its path"));
                r.fail(check, why, fix);
                false
            }
        };
        if role == "server" {
            server_ok = usable;
        }
        out.push(Program {
            role,
            path,
            usable,
            id,
        });
    }
    if !server_ok {
        // The plan only needs argv[0] to resolve: give it one that does.
        if let Ok(me) = std::env::current_exe() {
            ctx.substitute("server", me.to_string_lossy());
        }
    }
    out
}

/// argv[0] as pathexec_run finds it: as is with a `/`, else the first
/// PATH entry holding an executable file (else the first holding anything,
/// to say what is wrong with it).
fn resolve(arg0: &str, path: Option<&[u8]>) -> Result<PathBuf, String> {
    if arg0.contains('/') {
        return Ok(arg0.into());
    }
    let path = String::from_utf8_lossy(path.unwrap_or(b"/bin:/usr/bin")).into_owned();
    let candidates: Vec<PathBuf> = path
        .split(':')
        .map(|d| Path::new(if d.is_empty() { "." } else { d }).join(arg0))
        .collect();
    let exec =
        |p: &&PathBuf| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0);
    candidates
        .iter()
        .find(exec)
        .or_else(|| candidates.iter().find(|p| p.symlink_metadata().is_ok()))
        .cloned()
        .ok_or_else(|| format!("not found in PATH={path}"))
}

/// May `id` execute `path`? Err: (problem, fix).
pub fn executable(path: &Path, id: &Identity) -> Result<(), (String, Option<String>)> {
    let lmeta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(("does not exist".into(), None));
        }
        Err(e) => return Err((format!("unable to stat: {}", errstr(&e)), None)),
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) if lmeta.file_type().is_symlink() => {
            let to = std::fs::read_link(path)
                .map(|t| t.display().to_string())
                .unwrap_or_default();
            return Err((format!("is a dangling symlink to {to}"), None));
        }
        Err(e) => return Err((format!("unable to stat: {}", errstr(&e)), None)),
    };
    if !meta.is_file() {
        return Err(("is not a regular file".into(), None));
    }
    if let Ok(full) = std::path::absolute(path) {
        for dir in full.ancestors().skip(1) {
            if let Ok(m) = std::fs::metadata(dir)
                && !may(&m, id, 0o1)
            {
                return Err((
                    format!(
                        "its directory {} is not searchable by uid {} gid {}",
                        dir.display(),
                        id.uid,
                        id.gid
                    ),
                    Some(format!("chmod a+x {}", dir.display())),
                ));
            }
        }
    }
    if !may(&meta, id, 0o1) {
        return Err((
            format!(
                "is not executable by uid {} gid {} (mode {:o})",
                id.uid,
                id.gid,
                meta.mode() & 0o7777
            ),
            Some(format!("chmod a+x {}", path.display())),
        ));
    }
    Ok(())
}

/// The permission `bit` (0o4 read, 0o2 write, 0o1 execute) for `id`, as
/// the kernel decides it (root needs one x bit anywhere to execute).
pub fn may(m: &std::fs::Metadata, id: &Identity, bit: u32) -> bool {
    let mode = m.mode();
    if id.uid == 0 {
        return bit != 0o1 || m.is_dir() || mode & 0o111 != 0;
    }
    let shift = if m.uid() == id.uid {
        6
    } else if m.gid() == id.gid || id.groups.contains(&m.gid()) {
        3
    } else {
        0
    };
    (mode >> shift) & bit != 0
}
