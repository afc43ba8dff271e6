//! Check 3 (accounts) and 4 (programs): every account exists, and every
//! program of the chain is a regular file its identity may execute.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::server::Flags;
use super::{Ctx, Identity, Report, errstr};
use crate::error::Subject;

/// `account` (envuidgid) and `setuidgid`: resolve looked them up (and
/// reported an unknown one, or a switch without the privilege); say which
/// ids they are.
pub fn accounts(ctx: &Ctx, r: &mut Report) {
    for (what, a) in [("account", &ctx.r.account), ("setuidgid", &ctx.r.setuidgid)] {
        if let Some(a) = a {
            r.ok(format!("{what} {} (uid {}, gid {})", a.name, a.uid, a.gid));
        }
    }
}

/// One program of the chain, probed.
#[derive(Clone, Debug)]
pub struct Probed {
    /// "server", "login", "auth authpwd", "imapd".
    pub role: String,
    pub path: PathBuf,
    /// Exists and may be executed: later checks may run or inspect it.
    pub usable: bool,
    /// Who runs it.
    pub id: Identity,
}

/// The chain as resolve found it (server through PATH, login, auth
/// modules, imapd): may each be executed by whoever runs it?
pub fn programs(ctx: &Ctx, flags: &Flags, r: &mut Report) -> Vec<Probed> {
    // tcpserver's -u/-g switch before it runs the login program.
    let child = Identity {
        uid: flags.uid.unwrap_or(ctx.exec_id.uid),
        gid: flags.gid.unwrap_or(ctx.exec_id.gid),
        groups: match flags.gid {
            Some(g) => vec![g],
            None => ctx.exec_id.groups.clone(),
        },
    };
    let server_reported = ctx
        .r
        .problems
        .iter()
        .any(|p| matches!(p.subject, Subject::ServerProgram(_) | Subject::Server));
    let mut out = Vec::new();
    for prog in ctx.r.chain() {
        let server = prog.role == "server";
        if (server && server_reported) || prog.path.as_os_str().is_empty() {
            continue;
        }
        let id = if server {
            ctx.exec_id.clone()
        } else {
            child.clone()
        };
        let check = format!("program {} ({})", crate::shown::path(&prog.path), prog.role);
        let usable = match executable(&prog.path, &id) {
            Ok(()) => {
                r.ok(check);
                true
            }
            Err((why, fix)) => {
                let fix = fix.unwrap_or_else(|| match prog.setting {
                    "server" => "install ucspi-tcp, or set server= with the front end's full path"
                        .to_string(),
                    s => format!("install it, or set {s}= to its path"),
                });
                r.fail(check, why, fix);
                false
            }
        };
        out.push(Probed {
            role: prog.role,
            path: prog.path,
            usable,
            id,
        });
    }
    out
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
                .map(crate::shown::path)
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
                        crate::shown::path(dir),
                        id.uid,
                        id.gid
                    ),
                    Some(format!("chmod a+x {}", crate::shown::path(dir))),
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
            Some(format!("chmod a+x {}", crate::shown::path(path))),
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
