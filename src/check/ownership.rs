//! Check 2: when courier-run runs as root, whoever can write the run file,
//! a config file, the envdir or the rules cdb (or replace one of the
//! directories above them) decides what runs as root: FAIL. A program of
//! the chain that runs as root and is writable by others: warn.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::programs::Probed;
use super::{Ctx, Report};

/// Who other than root could change a file or directory.
enum Writer {
    /// Owned by this uid (and user name, if known).
    Owner(u32, String),
    /// Group-writable, by this group.
    Group(String),
    Everyone,
}

/// A path others could change: the file itself, or `dir` above it.
struct Exposure {
    /// The file or directory with the loose owner or mode.
    target: PathBuf,
    /// It is a directory above the guarded path.
    above: bool,
    who: Writer,
}

impl Exposure {
    /// "owned by uid 1000 (alice)", "its directory /srv is writable by
    /// everyone", ...
    fn describe(&self) -> String {
        let who = match &self.who {
            Writer::Owner(uid, name) => format!("owned by uid {uid}{name}"),
            Writer::Group(g) => format!("writable by group {g}"),
            Writer::Everyone => "writable by everyone".to_string(),
        };
        if self.above {
            format!(
                "its directory {} is {who}",
                crate::shown::path(&self.target)
            )
        } else {
            who
        }
    }

    /// The command that closes it, decided by what was found, not by
    /// reading the message back.
    fn fix(&self) -> String {
        let t = crate::shown::path(&self.target);
        match self.who {
            Writer::Owner(..) => format!("chown root {t}"),
            Writer::Group(_) => format!("chmod g-w {t}"),
            Writer::Everyone => format!("chmod o-w {t}"),
        }
    }
}

/// Who other than root could change `path`: the file itself, then each
/// directory above it (as given and as resolved through symlinks). A
/// directory with the sticky bit protects root's entries from others.
fn writers(path: &Path) -> Option<Exposure> {
    let given = std::path::absolute(path).ok()?;
    let real = given.canonicalize().unwrap_or_else(|_| given.clone());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for p in [&given, &real] {
        for d in p.ancestors().skip(1) {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    if let Ok(m) = std::fs::metadata(&real)
        && let Some(who) = writable_by(&m, false)
    {
        return Some(Exposure {
            target: path.to_path_buf(),
            above: false,
            who,
        });
    }
    for d in dirs {
        if let Ok(m) = std::fs::metadata(&d)
            && let Some(who) = writable_by(&m, true)
        {
            return Some(Exposure {
                target: d,
                above: true,
                who,
            });
        }
    }
    None
}

fn writable_by(m: &std::fs::Metadata, ancestor: bool) -> Option<Writer> {
    let mode = m.mode();
    let sticky = ancestor && mode & 0o1000 != 0;
    if m.uid() != 0 {
        let name = nix::unistd::User::from_uid(m.uid().into())
            .ok()
            .flatten()
            .map(|u| format!(" ({})", u.name))
            .unwrap_or_default();
        return Some(Writer::Owner(m.uid(), name));
    }
    if mode & 0o020 != 0 && m.gid() != 0 && !sticky {
        let name = nix::unistd::Group::from_gid(m.gid().into())
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| m.gid().to_string());
        return Some(Writer::Group(name));
    }
    if mode & 0o002 != 0 && !sticky {
        return Some(Writer::Everyone);
    }
    None
}

pub fn check(ctx: &Ctx, chain: &[Probed], r: &mut Report) {
    if ctx.euid != 0 {
        r.info(
            "ownership",
            "not checked: courier-run does not run as root here",
        );
        return;
    }
    let s = &ctx.r.settings;
    let mut guarded: Vec<PathBuf> = Vec::new();
    guarded.extend(s.runfile.clone());
    guarded.extend(ctx.r.configs.iter().cloned());
    guarded.extend(ctx.r.given.envdir.clone());
    guarded.extend(ctx.r.rules.as_ref().map(PathBuf::from));
    for p in guarded {
        if std::fs::symlink_metadata(&p).is_err() && !p.parent().is_some_and(|d| d.exists()) {
            continue; // reported by the check that needs it
        }
        let what = format!("ownership {}", crate::shown::path(&p));
        match writers(&p) {
            None => r.ok(what),
            Some(w) => r.fail(
                what,
                format!(
                    "{}: whoever can write it decides what runs as root",
                    w.describe()
                ),
                w.fix(),
            ),
        }
    }
    for prog in chain.iter().filter(|p| p.usable && p.id.uid == 0) {
        if let Some(w) = writers(&prog.path) {
            r.warn(
                format!("ownership {}", crate::shown::path(&prog.path)),
                format!("{}, and it runs as root ({})", w.describe(), prog.role),
                w.fix(),
            );
        }
    }
}
