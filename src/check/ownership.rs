//! Check 2: when courier-run runs as root, whoever can write the run file,
//! a config file, the envdir or the rules cdb (or replace one of the
//! directories above them) decides what runs as root: FAIL. A program of
//! the chain that runs as root and is writable by others: warn.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::programs::Program;
use super::{Ctx, Report};

/// Who other than root could change `path`: the file itself, then each
/// directory above it (as given and as resolved through symlinks). A
/// directory with the sticky bit protects root's entries from others.
fn writers(path: &Path) -> Option<String> {
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
        && let Some(w) = writable_by(&m, false)
    {
        return Some(w);
    }
    for d in dirs {
        if let Ok(m) = std::fs::metadata(&d)
            && let Some(w) = writable_by(&m, true)
        {
            return Some(format!("its directory {} is {w}", d.display()));
        }
    }
    None
}

/// "owned by uid 1000 (alice)", "writable by group staff", ...
fn writable_by(m: &std::fs::Metadata, ancestor: bool) -> Option<String> {
    let mode = m.mode();
    let sticky = ancestor && mode & 0o1000 != 0;
    if m.uid() != 0 {
        let name = nix::unistd::User::from_uid(m.uid().into())
            .ok()
            .flatten()
            .map(|u| format!(" ({})", u.name))
            .unwrap_or_default();
        return Some(format!("owned by uid {}{name}", m.uid()));
    }
    if mode & 0o020 != 0 && m.gid() != 0 && !sticky {
        let name = nix::unistd::Group::from_gid(m.gid().into())
            .ok()
            .flatten()
            .map(|g| g.name)
            .unwrap_or_else(|| m.gid().to_string());
        return Some(format!("writable by group {name}"));
    }
    if mode & 0o002 != 0 && !sticky {
        return Some("writable by everyone".into());
    }
    None
}

fn fix_for(problem: &str, path: &Path) -> String {
    let target = match problem.strip_prefix("its directory ") {
        Some(rest) => rest.split(" is ").next().unwrap_or("").to_string(),
        None => path.display().to_string(),
    };
    if problem.contains("owned by") {
        format!("chown root {target}")
    } else if problem.contains("group") {
        format!("chmod g-w {target}")
    } else {
        format!("chmod o-w {target}")
    }
}

pub fn check(ctx: &Ctx, chain: &[Program], r: &mut Report) {
    if ctx.euid != 0 {
        r.info(
            "ownership",
            "not checked: courier-run does not run as root here",
        );
        return;
    }
    let s = &ctx.settings;
    let mut guarded: Vec<PathBuf> = Vec::new();
    guarded.extend(s.runfile.clone());
    guarded.extend(s.str("config").split_ascii_whitespace().map(PathBuf::from));
    match s.str("envdir") {
        "" => {}
        d => guarded.push(d.into()),
    }
    match s.str("rules") {
        "" => {}
        x => guarded.push(x.into()),
    }
    for p in guarded {
        if std::fs::symlink_metadata(&p).is_err() && !p.parent().is_some_and(|d| d.exists()) {
            continue; // reported by the check that needs it
        }
        let what = format!("ownership {}", p.display());
        match writers(&p) {
            None => r.ok(what),
            Some(w) => r.fail(
                what,
                format!("{w}: whoever can write it decides what runs as root"),
                fix_for(&w, &p),
            ),
        }
    }
    for prog in chain.iter().filter(|p| p.usable && p.id.uid == 0) {
        if let Some(w) = writers(&prog.path) {
            r.warn(
                format!("ownership {}", prog.path.display()),
                format!("{w}, and it runs as root ({})", prog.role),
                fix_for(&w, &prog.path),
            );
        }
    }
}
