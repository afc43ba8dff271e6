//! Check 1: the run file, the settings, the config files and the envdir.
//!
//! Read leniently: the launch stops at the first syntax error or unknown
//! setting; here each one is a line, and the assignments read before a
//! syntax error and every known setting are still used by the later checks.

use std::path::Path;

use super::{Ctx, Report, errstr};
use crate::config::{Assignment, Scope};
use crate::envdir;
use crate::error::describe;
use crate::launch::Args;
use crate::settings::{Origin, Settings, known};

/// CRLF line ends: sh keeps the `\r` in every value, and the kernel looks
/// for an interpreter whose name ends in `\r`.
fn crlf(src: &[u8]) -> bool {
    src.windows(2).any(|w| w == b"\r\n")
}

const DOS2UNIX: &str = "convert it with dos2unix";

/// The settings: the run file read leniently, `--set` on top. Every
/// problem is a FAIL line; what is valid is kept.
pub fn settings(args: &Args, inherited: &[(String, Vec<u8>)], r: &mut Report) -> Settings {
    let mut explicit: Vec<(&'static str, String, Origin)> = Vec::new();
    let mut warnings = Vec::new();
    let before = r.items.len();
    if let Some(path) = &args.runfile {
        let shown = path.display();
        match std::fs::read(path) {
            Err(e) => r.fail(
                "run file",
                format!("unable to read {shown}: {}", errstr(&e)),
                "give the service's run file, e.g. ./run",
            ),
            Ok(src) => {
                let crlf = crlf(&src);
                if crlf {
                    r.fail(
                        "run file",
                        format!("{shown}: CRLF line ends: the kernel would look for the interpreter with a \\r at its end"),
                        DOS2UNIX,
                    );
                }
                let mut scope = Scope::new(inherited.iter().cloned());
                if let Err(e) = scope.read(&path.to_string_lossy(), &src) {
                    r.fail_msg("run file", &describe(&e));
                }
                for w in &scope.warnings {
                    if !(crlf && w.msg.contains("carriage return")) {
                        r.warn_msg("run file", &w.to_string());
                    }
                    warnings.push(w.to_string());
                }
                for a in scope.vars() {
                    let name = match known(&a.name) {
                        Ok(n) => n,
                        Err(hint) => {
                            r.fail_msg(
                                "run file",
                                &format!("{}: unknown setting {}{hint}", a.pos, a.name),
                            );
                            continue;
                        }
                    };
                    match String::from_utf8(a.value.clone()) {
                        Ok(v) => explicit.push((name, v, Origin::File(a.value_pos.clone()))),
                        Err(_) => r.fail(
                            "run file",
                            format!("{}: the value of {} is not UTF-8", a.pos, a.name),
                            "settings are text: write the value in UTF-8",
                        ),
                    }
                }
                if r.items.len() == before {
                    r.ok(format!("run file {shown}"));
                }
            }
        }
    }
    for s in &args.set {
        match s.split_once('=') {
            None => r.fail(
                "settings",
                format!("--set {s}: expected NAME=VALUE"),
                "e.g. --set port=1143",
            ),
            Some((n, v)) => match known(n) {
                Ok(name) => explicit.push((name, v.to_string(), Origin::CommandLine)),
                Err(hint) => {
                    r.fail_msg("settings", &format!("--set {s}: unknown setting {n}{hint}"))
                }
            },
        }
    }
    // A bad layout would change every default: report it, use courier2's.
    explicit.retain(|(n, v, o)| {
        let bad = *n == "layout" && !matches!(v.as_str(), "courier2" | "debian");
        if bad {
            r.fail_msg(
                "settings",
                &o.at(&format!(
                    "layout \"{v}\" is not a layout (courier2 or debian)"
                )),
            );
        }
        !bad
    });
    let clean = !r.items[before..]
        .iter()
        .any(|i| i.status == super::Status::Fail);
    if clean {
        // Exactly what the launch reads, when nothing above found fault.
        match Settings::load(args.runfile.as_deref(), &args.set, inherited) {
            Ok(s) => return s,
            Err(e) => r.fail_msg("settings", &describe(&e)),
        }
    }
    let sets: Vec<String> = explicit
        .iter()
        .map(|(n, v, _)| format!("{n}={v}"))
        .collect();
    let mut s = Settings::load(None, &sets, inherited)
        .or_else(|_| Settings::load(None, &[], inherited))
        .expect("the defaults load");
    for (n, _, o) in explicit {
        if let Some((_, v)) = s.values.iter_mut().find(|(x, _)| *x == n) {
            v.origin = o;
        }
    }
    s.runfile = args.runfile.clone();
    s.warnings = warnings;
    s
}

/// The config files as read.
pub struct Configs {
    pub vars: Vec<Assignment>,
    /// When a file has a problem: the `config` setting without it, for the
    /// plan.
    pub readable: Option<String>,
}

/// Read every config file into one scope, as the plan does, reporting each
/// problem instead of stopping at the first.
pub fn configs(s: &Settings, inherited: &[(Vec<u8>, Vec<u8>)], r: &mut Report) -> Configs {
    let keep = |n: &[u8]| match s.str("inherit_env") {
        "all" => true,
        "none" => false,
        names => names.split_ascii_whitespace().any(|k| k.as_bytes() == n),
    };
    let mut visible: Vec<(String, Vec<u8>)> = inherited
        .iter()
        .filter(|(n, _)| keep(n))
        .filter_map(|(n, v)| Some((String::from_utf8(n.clone()).ok()?, v.clone())))
        .collect();
    visible.extend(crate::plan::predefined(s));
    let mut scope = Scope::new(visible);
    // Each file's lines, so that a file without problems gets one ok line.
    let mut per_file: Vec<(String, Report)> = Vec::new();
    for file in s.str("config").split_ascii_whitespace() {
        let mut fr = Report::default();
        fr.group(1);
        let w0 = scope.warnings.len();
        match std::fs::read(file) {
            Err(e) => fr.fail(
                "config",
                format!("unable to read {file}: {}", errstr(&e)),
                "install Courier's config, or set config= to the files to read",
            ),
            Ok(src) => {
                let crlf = crlf(&src);
                if crlf {
                    fr.fail(
                        "config",
                        format!(
                            "{file}: CRLF line ends: every value would end in a carriage return"
                        ),
                        DOS2UNIX,
                    );
                }
                if let Err(e) = scope.read(file, &src) {
                    fr.fail_msg("config", &describe(&e));
                }
                for w in &scope.warnings[w0..] {
                    if !(crlf && w.msg.contains("carriage return")) {
                        fr.warn_msg("config", &w.to_string());
                    }
                }
            }
        }
        per_file.push((file.to_string(), fr));
    }
    let vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
    for a in &vars {
        if let Err(e) = envdir::check_carriable(a)
            && let Some((_, fr)) = per_file.iter_mut().find(|(f, _)| **f == *a.pos.file)
        {
            fr.fail_msg("config", &describe(&e));
        }
    }
    let mut readable = Vec::new();
    let mut dropped = false;
    for (file, fr) in per_file {
        if fr.items.is_empty() {
            r.ok(format!("config {file}"));
        }
        if fr.failed() {
            dropped = true;
        } else {
            readable.push(file);
        }
        r.items.extend(fr.items);
    }
    Configs {
        vars,
        readable: dropped.then(|| readable.join(" ")),
    }
}

/// The settings the plan would refuse, each checked on its own (banner,
/// stderr, inherit_env, umask, ulimit_v, softlimit).
pub fn values(ctx: &mut Ctx, r: &mut Report) {
    let s = &ctx.settings;
    let mut bad: Vec<(&'static str, String, &'static str)> = Vec::new();
    let mut check = |name: &'static str, origin: &Origin, msg: Option<String>, stand_in| {
        if let Some(m) = msg {
            bad.push((name, origin.at(&m), stand_in));
        }
    };
    let v = s.str("banner");
    check(
        "banner",
        &s.get("banner").origin,
        (!matches!(v, "yes" | "no")).then(|| format!("banner \"{v}\" is neither yes nor no")),
        "no",
    );
    let v = s.str("stderr");
    check(
        "stderr",
        &s.get("stderr").origin,
        (!matches!(v, "merge" | "keep"))
            .then(|| format!("stderr \"{v}\" is neither merge nor keep")),
        "merge",
    );
    let v = s.str("inherit_env");
    check(
        "inherit_env",
        &s.get("inherit_env").origin,
        v.split_ascii_whitespace()
            .find(|n| !crate::config::is_name(n.as_bytes()))
            .filter(|_| !matches!(v, "all" | "none"))
            .map(|n| format!("inherit_env: {n} is not a variable name (write all, none, or names separated by blanks)")),
        "all",
    );
    if let Some((v, o)) = ctx.derived("umask", "IMAP_UMASK", None)
        && !v.is_empty()
    {
        let ok = !v.starts_with('+') && u32::from_str_radix(&v, 8).is_ok_and(|m| m <= 0o777);
        check(
            "umask",
            &o,
            (!ok).then(|| format!("umask \"{v}\" is not an octal mode (write e.g. 022)")),
            "",
        );
    }
    if let Some((v, o)) = ctx.derived("ulimit_v", "IMAP_ULIMITD", None)
        && !v.is_empty()
    {
        let e = crate::limits::parse_ulimit_v(&v).err();
        check("ulimit_v", &o, e.map(|e| format!("{e:#}")), "");
    }
    let e = crate::limits::parse_softlimit(s.str("softlimit")).err();
    check(
        "softlimit",
        &s.get("softlimit").origin,
        e.map(|e| format!("{e:#}")),
        "",
    );
    for (name, msg, stand_in) in bad {
        r.fail_msg("settings", &msg);
        ctx.substitute(name, stand_in);
    }
}

/// The envdir's location: the plan itself probes the envdir (see
/// `super::plan`); this only says when --check runs elsewhere than supervise
/// would.
pub fn envdir(ctx: &Ctx, r: &mut Report) {
    let dir = ctx.settings.str("envdir");
    let path = Path::new(dir);
    // supervise runs ./run in the service directory: a relative envdir is
    // relative to that, not to where --check was started.
    if !dir.is_empty()
        && path.is_relative()
        && let Some(run) = &ctx.settings.runfile
    {
        let svc = run
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let (a, b) = (svc.canonicalize().ok(), Path::new(".").canonicalize().ok());
        if a.is_some() && a != b {
            r.info(
                format!("envdir {dir}"),
                format!(
                    "relative to the current directory, not to the service directory {} where supervise runs it: run --check from there",
                    svc.display()
                ),
            );
        }
    }
}
