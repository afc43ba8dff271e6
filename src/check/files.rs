//! Check 1: the run file and the config files as files (resolve has read
//! them and reported what is wrong inside), and where the envdir is.

use std::path::Path;

use super::{Ctx, Report};
use crate::error::{Subject, printable};
use crate::resolve::config_subject;

/// CRLF line ends: sh keeps the `\r` in every value, and the kernel looks
/// for an interpreter whose name ends in `\r`.
/// Read as the config reader reads (a regular file only, bounded): a FIFO
/// or /dev/zero given as a config must not hang or flood --check.
fn crlf(path: &Path) -> bool {
    crate::config::read_bounded(path, "file")
        .is_ok_and(|(src, _)| src.windows(2).any(|w| w == b"\r\n"))
}

const DOS2UNIX: &str = "convert it with dos2unix";

pub fn check(ctx: &Ctx, r: &mut Report) {
    let mut any_crlf = false;
    let runfile = ctx.r.settings.runfile.as_ref().map(|p| p.to_string_lossy());
    if let Some(path) = &ctx.r.settings.runfile {
        let shown = crate::shown::path(path);
        if crlf(path) {
            any_crlf = true;
            r.fail(
                Subject::RunFile,
                format!("{shown}: CRLF line ends: the kernel would look for the interpreter with a \\r at its end"),
                DOS2UNIX,
            );
        } else if !ctx.reported(&Subject::RunFile) {
            r.ok(format!("run file {shown}"));
        }
    }
    for path in &ctx.r.configs {
        let subject = config_subject(&path.to_string_lossy());
        if crlf(path) {
            any_crlf = true;
            r.fail(
                subject,
                "CRLF line ends: every value would end in a carriage return",
                DOS2UNIX,
            );
        } else if !ctx.reported(&subject) {
            r.ok(subject);
        }
    }
    for w in &ctx.r.warnings {
        // A CRLF file is one FAIL above, not a warning per value.
        if any_crlf && w.contains("carriage return") {
            continue;
        }
        let subject = match &runfile {
            Some(f) if w.starts_with(&format!("{f}:")) => Subject::RunFile,
            _ => Subject::Config,
        };
        r.warn(subject, printable(w), "");
    }
    envdir(ctx, r);
}

/// supervise runs ./run in the service directory: a relative envdir is
/// relative to that, not to where --check was started.
fn envdir(ctx: &Ctx, r: &mut Report) {
    let Some(path) = &ctx.r.envdir else {
        return;
    };
    // Siblings a killed run left behind: the next start removes them.
    for p in crate::envdir::leftovers(path) {
        r.warn(
            Subject::Envdir(crate::shown::path(path)),
            format!("{} was left by a killed run", crate::shown::path(p)),
            "nothing to do: the next start removes it",
        );
    }
    let Some(run) = &ctx.r.settings.runfile else {
        return;
    };
    if !path.is_relative() {
        return;
    }
    let svc = run
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (a, b) = (svc.canonicalize().ok(), Path::new(".").canonicalize().ok());
    if a.is_some() && a != b {
        r.info(
            format!("envdir {}", crate::shown::path(path)),
            format!(
                "relative to the current directory, not to the service directory {} where supervise runs it: run --check from there",
                crate::shown::path(svc)
            ),
        );
    }
}
