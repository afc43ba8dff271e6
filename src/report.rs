//! Printing a [`Plan`]: `--dry-run --format text|json|sh`, and `--explain`.
//! Read-only: every function here only formats the plan.

use std::io::Write;

use anyhow::Context;

use serde_json::{Map, Value, json};

use crate::check;
use crate::limits::Resource;
use crate::plan::Plan;
use crate::resolve::Inherit;
use crate::settings::Origin;
use crate::shown::{line, shown, shown_path};

/// Output formats of `--dry-run` (all three) and `--check` (text, json).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
    Sh,
}

/// Write everything to standard output: the one output path of
/// `--dry-run` and `--check`. A closed pipe (`| head -n 1`) is the end of
/// the output, not an error: the reader has seen enough. (Rust ignores
/// SIGPIPE, so it is an EPIPE here, not a signal.)
pub fn output(bytes: &[u8]) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.context("unable to write to standard output"),
    }
}

/// `--check`'s report: one line per check, or a JSON list of objects.
pub fn print_check(report: &check::Report, format: Format) -> anyhow::Result<()> {
    let items = report.items();
    let out = match format {
        Format::Json => {
            let list: Vec<Value> = items
                .iter()
                .map(|i| {
                    let p = &i.problem;
                    let position = match &p.position {
                        crate::error::Position::At(at) => Value::from(at.as_str()),
                        crate::error::Position::CommandLine => Value::from("--set"),
                        crate::error::Position::From(w) => Value::from(*w),
                        crate::error::Position::Nowhere => Value::Null,
                    };
                    json!({"status": i.status.word(), "check": p.subject.to_string(), "position": position, "message": p.message, "fix": p.fix})
                })
                .collect();
            let mut s = serde_json::to_string_pretty(&list)?;
            s.push('\n');
            s
        }
        _ => items.iter().map(|i| i.line() + "\n").collect(),
    };
    output(out.as_bytes())
}

pub fn print(plan: &Plan, format: Format, explain: bool) -> anyhow::Result<()> {
    let out = match format {
        Format::Text => {
            let mut t = text(plan, explain);
            t += &format!("\nkept plan: {}\n", crate::keep::verdict(plan));
            t.into_bytes()
        }
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json_value(plan, explain))?;
            s.push('\n');
            s.into_bytes()
        }
        Format::Sh => sh(plan),
    };
    output(&out)
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn limit_json(v: Option<u64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The plan as one JSON object (fields listed in the README, "Commands").
pub fn json_value(plan: &Plan, explain: bool) -> Value {
    let env: Map<String, Value> = plan
        .env
        .iter()
        .map(|v| (lossy(&v.name), Value::from(lossy(&v.value))))
        .collect();
    let limits: Map<String, Value> = plan
        .limits
        .iter()
        .map(|(r, l)| {
            (
                r.name().to_string(),
                json!({"soft": limit_json(l.soft), "hard": limit_json(l.hard)}),
            )
        })
        .collect();
    let mut o = json!({
        "program": plan.program.to_string_lossy(),
        "argv": plan.argv.iter().map(|a| lossy(a)).collect::<Vec<_>>(),
        "env": env,
        "uid": plan.uid,
        "gid": plan.gid,
        "groups": plan.groups,
        "account": plan.account.as_ref().map(|a| &a.name),
        "setuidgid": plan.setuidgid.as_ref().map(|a| &a.name),
        "limits": limits,
        "umask": plan.umask.as_ref().map(|(m, _)| format!("{m:03o}")),
        "envdir": plan.envdir.as_ref().map(|e| e.path.to_string_lossy()),
        "envdir_unchanged": plan.envdir.as_ref().map(|e| e.unchanged),
        "tls_cache": plan.tls_cache.as_ref().map(|c| json!({
            "path": c.path.to_string_lossy(), "owner": c.owner, "group": group_name(c.gid),
            "uid": c.uid, "gid": c.gid, "mode": format!("{:03o}", c.mode)})),
        "configs": plan.configs.iter().map(|p| p.to_string_lossy()).collect::<Vec<_>>(),
        "stderr": if plan.merge_stderr { "merge" } else { "keep" },
        "banner": plan.banner,
        "wait_authdaemond": plan.wait_authdaemond.as_ref().map(|w| {
            let st = crate::authdaemon::state(&w.socket);
            json!({"socket": w.socket.to_string_lossy(), "from": w.from,
                "accepting": st.alive(), "state": st.describe()})
        }),
        // Escaped as the text's are (JSON would carry control bytes, but a
        // reader may print the strings as they are).
        "warnings": plan.warnings.iter().map(|w| line(w)).collect::<Vec<_>>(),
        "kept_plan": crate::keep::verdict(plan),
    });
    if explain {
        let origins: Map<String, Value> = plan
            .env
            .iter()
            .map(|v| (lossy(&v.name), Value::from(v.origin.to_string())))
            .collect();
        let settings: Map<String, Value> = plan
            .settings
            .values
            .iter()
            .map(|(n, s)| {
                (
                    n.to_string(),
                    json!({"value": s.value, "origin": s.origin.to_string()}),
                )
            })
            .collect();
        o["origins"] = Value::Object(origins);
        o["settings"] = Value::Object(settings);
    }
    o
}

fn fmt_limit(v: Option<u64>) -> String {
    v.map_or("unlimited".to_string(), |n| n.to_string())
}

/// For people: identity, limits, umask, the environment against the
/// inherited one, argv one word per line. Each section is its own step,
/// written in the order an admin reads a run script.
pub fn text(plan: &Plan, explain: bool) -> String {
    let mut s = text_identity(plan);
    s += &text_limits(plan);
    s += &text_files(plan);
    s += &text_environment(plan, explain);
    s += &text_tail(plan, explain);
    s
}

/// The heading and who the server runs as: program, uid/gid/groups, the
/// envuidgid account and the umask (the first lines an admin checks).
fn text_identity(plan: &Plan) -> String {
    let mut s = String::new();
    let runfile = plan
        .settings
        .runfile
        .as_ref()
        .map_or("(no run file)".to_string(), |p| shown_path(p));
    let layout = plan.settings.layout.name();
    s += &format!("courier-run plan for {runfile} (layout={layout})\n\n");
    s += &format!("program   {}\n", shown_path(&plan.program));
    s += &format!(
        "identity  uid {} gid {} groups {}",
        plan.uid,
        plan.gid,
        if plan.groups.is_empty() {
            "none".to_string()
        } else {
            plan.groups
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",")
        }
    );
    match &plan.setuidgid {
        Some(a) => s += &format!(" (setuidgid {})\n", a.name),
        None => s += " (unchanged)\n",
    }
    if let Some(a) = &plan.account {
        s += &format!("envuidgid {}: UID={} GID={}\n", a.name, a.uid, a.gid);
    }
    match &plan.umask {
        Some((m, o)) => s += &format!("umask     {m:03o} ({o})\n"),
        None => s += "umask     unchanged\n",
    }
    s
}

/// The `limits` line: only the resources the plan changes, each with its
/// value before, continued on indented lines; "unchanged" when none.
fn text_limits(plan: &Plan) -> String {
    let mut s = "limits   ".to_string();
    let mut any = false;
    for r in Resource::ALL {
        let (after, before) = (plan.limits[&r], plan.limits_before[&r]);
        if after != before {
            any = true;
            s += &format!(
                " {} soft {} hard {} (was {}/{})\n         ",
                r.name(),
                fmt_limit(after.soft),
                fmt_limit(after.hard),
                fmt_limit(before.soft),
                fmt_limit(before.hard)
            );
        }
    }
    if any {
        // Drop the indentation left for a next resource that did not come.
        s.truncate(s.trim_end().len());
        s += "\n";
    } else {
        s += " unchanged\n";
    }
    s
}

/// What the launch does on disk and to its file descriptors before exec:
/// envdir, access list, TLS cache, stderr, the wait for authdaemond.
fn text_files(plan: &Plan) -> String {
    let mut s = String::new();
    match &plan.envdir {
        Some(e) => {
            s += &format!(
                "envdir    {}: {} ({} variables, files {:o})\n",
                shown_path(&e.path),
                if e.unchanged {
                    "unchanged, nothing written"
                } else {
                    "would be written"
                },
                e.vars.len(),
                e.modes.file
            )
        }
        None => s += "envdir    none (config variables set directly)\n",
    }
    if let Some(a) = &plan.access {
        // What the launch does before exec: the compiled list is (re)built
        // when it is missing or older than the list.
        let stale = crate::makedat::stale(&a.source, &a.output).unwrap_or(true);
        s += &format!(
            "access    {} -> {} ({}): {}\n",
            a.source.display(),
            a.output.display(),
            a.format.describe(),
            if stale {
                "would be built (missing or older than the list)"
            } else {
                "up to date"
            }
        );
    }
    if let Some(c) = &plan.tls_cache {
        s += &format!(
            "tlscache  {}: reset (removed, created {}:{} mode {:o}), as Courier's rc does\n",
            shown_path(&c.path),
            c.owner,
            group_name(c.gid),
            c.mode
        );
    }
    s += &format!(
        "stderr    {}\n",
        if plan.merge_stderr {
            "merged into stdout (exec 2>&1)"
        } else {
            "kept"
        }
    );
    if let Some(w) = &plan.wait_authdaemond {
        let st = crate::authdaemon::state(&w.socket);
        s += &format!(
            "wait      authdaemond's socket {} (authdaemonvar: {}) before anything else: {} now{}\n",
            w.socket.display(),
            w.from,
            st.describe(),
            if st.alive() {
                ""
            } else {
                ": the launch would exit 111 and the supervisor retry"
            }
        );
    }
    s
}

/// The environment against the inherited one: `+` added, `~` changed,
/// `-` removed; unchanged ones (` `) only with `--explain`, which also
/// names each variable's origin. The counts head the list, so the list
/// is built first.
fn text_environment(plan: &Plan, explain: bool) -> String {
    let (mut added, mut changed) = (0, 0);
    let mut lines = String::new();
    for v in &plan.env {
        let before = plan.inherited.iter().find(|(n, _)| *n == v.name);
        let mark = match before {
            None => {
                added += 1;
                '+'
            }
            Some((_, old)) if *old != v.value => {
                changed += 1;
                '~'
            }
            Some(_) => ' ',
        };
        if mark == ' ' && !explain {
            continue;
        }
        lines += &format!(
            "  {mark} {}={}",
            shown(&v.name, usize::MAX),
            shown(&v.value, usize::MAX)
        );
        if explain {
            lines += &format!("    [{}]", line(&v.origin.to_string()));
        }
        lines += "\n";
    }
    let mut removed = 0;
    for (n, _) in &plan.inherited {
        if !plan.env.iter().any(|v| v.name == *n) {
            removed += 1;
            lines += &format!("  - {}\n", line(&lossy(n)));
        }
    }
    let mut s = format!(
        "\nenvironment: {} variables ({added} added, {changed} changed, {removed} removed against the inherited one{})\n",
        plan.env.len(),
        if explain {
            ""
        } else {
            "; unchanged ones not shown"
        }
    );
    s += &lines;
    s
}

/// argv one word per line, then (with `--explain`) every setting with its
/// origin, then the warnings: what follows the environment.
fn text_tail(plan: &Plan, explain: bool) -> String {
    let mut s = "\nargv\n".to_string();
    for a in &plan.argv {
        // A word of argv may hold any byte: shown escaped, whole.
        s += &format!("  {}\n", shown(a, usize::MAX));
    }
    if explain {
        s += "\nsettings\n";
        for (n, set) in &plan.settings.values {
            let shown = match &set.value {
                Some(v) => format!("{v:?}"),
                None => "(from the config)".to_string(),
            };
            let origin = match &set.origin {
                Origin::Default => "default".to_string(),
                o => o.to_string(),
            };
            s += &format!("  {n}={shown}    [{}]\n", line(&origin));
        }
    }
    if !plan.warnings.is_empty() {
        s += "\nwarnings\n";
        for w in &plan.warnings {
            s += &format!("  {}\n", line(w));
        }
    }
    s
}

/// Quote `b` for sh: bare when every byte is safe, else in single quotes
/// (which carry every byte but `'`, written as '\'').
pub fn quote(b: &[u8]) -> Vec<u8> {
    let safe = |c: &u8| c.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(c);
    if !b.is_empty() && b.iter().all(safe) {
        return b.to_vec();
    }
    let mut out = vec![b'\''];
    for &c in b {
        if c == b'\'' {
            out.extend_from_slice(b"'\\''");
        } else {
            out.push(c);
        }
    }
    out.push(b'\'');
    out
}

fn words(ws: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, w) in ws.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend(quote(w));
    }
    out
}

/// The equivalent classic run script, pasteable: the same environment,
/// limits, identity and argv through daemontools' programs. One step per
/// line the launch's own order: header, envdir, access list, TLS cache,
/// banner and sh's own limits, then the exec chain.
pub fn sh(plan: &Plan) -> Vec<u8> {
    let env_i = sh_env_i(&plan.inherit);
    let mut s = sh_header(plan);
    if let Some(e) = &plan.envdir {
        s.extend(sh_conf2env(plan, e, &env_i));
    }
    // couriertcpd's .dat, built as the launch builds it: by makedat, when
    // missing or not newer than the list.
    if let Some(a) = &plan.access
        && a.format == crate::frontend::RulesFormat::CourierDat
    {
        s.extend(sh_makedat(plan, a));
    }
    if let Some(c) = &plan.tls_cache {
        s.extend(sh_tls_cache(c));
    }
    s.extend(sh_before_exec(plan));
    s.extend(sh_exec(plan, &env_i));
    s
}

/// The shebang and comment, `exec 2>&1`, and the authdaemond gate: what
/// comes before the script touches anything.
fn sh_header(plan: &Plan) -> Vec<u8> {
    let mut s: Vec<u8> = Vec::new();
    let runfile = plan
        .settings
        .runfile
        .as_ref()
        .map_or("(no run file)".to_string(), |p| {
            // A comment ends at a newline: escaped, a path cannot add a line.
            crate::error::printable(&p.to_string_lossy())
        });
    s.extend(format!(
        "#!/bin/sh\n# The classic run script equivalent to courier-run {runfile}\n# (courier-run --dry-run --format sh). Needs daemontools.\n"
    ).bytes());
    if plan.merge_stderr {
        s.extend(b"exec 2>&1\n");
    }
    if let Some(w) = &plan.wait_authdaemond {
        // courier-run connects to the socket; sh can only test that it is one.
        let q = quote(w.socket.to_string_lossy().as_bytes());
        let q = String::from_utf8_lossy(&q);
        s.extend(
            format!(
                "# wait_authdaemond: no service while authdaemond does not accept (the supervisor retries)\n\
                 [ -S {q} ] || {{ echo 'authdaemond is not running: not starting' >&2; exit 111; }}\n"
            )
            .bytes(),
        );
    }
    s
}

/// `env -i` with the kept names, for inherit_env=none or a list; empty
/// for inherit_env=all. Written before conf2env and before the exec chain,
/// so both see the environment the launch gives them.
fn sh_env_i(inherit: &Inherit) -> Vec<u8> {
    match inherit {
        Inherit::All => Vec::new(),
        Inherit::Nothing => b"env -i ".to_vec(),
        Inherit::Names(names) => {
            let mut v = b"env -i".to_vec();
            for n in names {
                // Variable names (resolve checked them): plain ASCII.
                let n = String::from_utf8_lossy(n);
                v.extend(format!(" ${{{n}+\"{n}=${n}\"}}").bytes());
            }
            v.push(b' ');
            v
        }
    }
}

/// The envdir written as the launch writes it: courier-run's own conf2env,
/// given the rc's predefined names and its assignments after the files.
fn sh_conf2env(plan: &Plan, e: &crate::plan::EnvdirPlan, env_i: &[u8]) -> Vec<u8> {
    let exe = crate::programs::launcher()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "courier-run".to_string());
    let mut s = env_i.to_vec();
    let mut cmd: Vec<Vec<u8>> = vec![exe.into_bytes(), b"conf2env".to_vec()];
    for (n, v) in predefined_for_sh(plan) {
        cmd.push(b"--define".to_vec());
        cmd.push(format!("{n}={v}").into_bytes());
    }
    // The rc's own assignments after the files (IMAP_STARTTLS=...).
    for a in plan
        .config_vars
        .iter()
        .filter(|a| plan.rc_names.contains(&a.name.as_str()))
    {
        cmd.push(b"--assign".to_vec());
        cmd.push([a.name.as_bytes(), b"=", &a.value].concat());
    }
    // The operands after `--`: an envdir or config named `--help`
    // (or any word starting with `-`) is a path, not an option.
    cmd.push(b"--".to_vec());
    cmd.push(e.path.to_string_lossy().as_bytes().to_vec());
    cmd.extend(
        plan.configs
            .iter()
            .map(|p| p.to_string_lossy().as_bytes().to_vec()),
    );
    let refs: Vec<&[u8]> = cmd.iter().map(|c| c.as_slice()).collect();
    s.extend(words(&refs));
    s.extend(b" || exit 111\n");
    s
}

/// couriertcpd's access list compiled by Courier's makedat when the .dat
/// is not newer than the list (the launch's own test).
fn sh_makedat(plan: &Plan, a: &crate::access::Step) -> Vec<u8> {
    let q = |p: &std::path::Path| {
        String::from_utf8_lossy(&quote(p.as_os_str().as_encoded_bytes())).into_owned()
    };
    let (src, dat) = (q(&a.source), q(&a.output));
    let m = crate::makedat::program(plan.settings.layout, plan.settings.prefix.as_str());
    let arg = |k: &str, p: &std::path::Path| {
        let mut v = k.as_bytes().to_vec();
        v.extend_from_slice(p.as_os_str().as_encoded_bytes());
        String::from_utf8_lossy(&quote(&v)).into_owned()
    };
    format!(
        "[ {dat} -nt {src} ] || {} {} {} {} -cidr || exit 111\n",
        q(&m),
        arg("-src=", &a.source),
        arg("-file=", &a.output),
        arg("-tmp=", &a.output.with_extension("dat.tmp")),
    )
    .into_bytes()
}

/// The TLS session cache reset as Courier's rc does it: removed, then
/// created empty with its owner, group and mode.
fn sh_tls_cache(c: &crate::plan::CacheFile) -> Vec<u8> {
    let f = quote(c.path.to_string_lossy().as_bytes());
    let f = String::from_utf8_lossy(&f);
    format!(
        "rm -f -- {f} && touch -- {f} && chown -- {} {f} && chgrp -- {} {f} && chmod -- {:o} {f} || exit 111\n",
        String::from_utf8_lossy(&quote(c.owner.as_bytes())),
        String::from_utf8_lossy(&quote(group_name(c.gid).as_bytes())),
        c.mode
    )
    .into_bytes()
}

/// The banner lines, then what sh itself applies before exec (umask,
/// `ulimit -v`), as Courier's rc does.
fn sh_before_exec(plan: &Plan) -> Vec<u8> {
    let mut s = Vec::new();
    for line in &plan.banner {
        s.extend(b"printf '%s\\n' ");
        s.extend(quote(line.as_bytes()));
        s.extend(b" >&2\n");
    }
    if let Some((m, _)) = plan.umask {
        s.extend(format!("umask {m:03o}\n").bytes());
    }
    if let Some((v, _)) = plan.ulimit_v {
        match v {
            Some(bytes) => s.extend(format!("ulimit -v {}\n", bytes / 1024).bytes()),
            None => s.extend(b"ulimit -v unlimited\n"),
        }
    }
    s
}

/// The exec line: `env -i`, the chain of daemontools programs, argv; with
/// the two fixes a bare chain would get wrong (the PATH envdir searches,
/// a server named `-x`).
fn sh_exec(plan: &Plan, env_i: &[u8]) -> Vec<u8> {
    let (mut chain, mut parsed_next) = sh_chain(plan);
    let mut s = Vec::new();
    if envdir_would_search_old_path(plan) {
        chain.push(b"env".to_vec());
        parsed_next = true;
        s.extend(
            b"# env: looks the server up in the PATH of the envdir (envdir itself would not)\n",
        );
    }
    s.extend(b"exec ");
    let mut env_i = env_i.to_vec();
    if plan.argv[0].first() == Some(&b'-') {
        // A program named `-x` (found in PATH): ended options before it.
        if parsed_next {
            chain.push(b"--".to_vec());
        } else if chain.is_empty() {
            // `env -i` parses it next, or `exec` (bash's takes options).
            if env_i.is_empty() {
                chain.extend([b"env".to_vec(), b"--".to_vec()]);
            } else {
                env_i = [&b"env -i -- "[..], &env_i[b"env -i ".len()..]].concat();
            }
        }
    }
    s.extend(&env_i);
    chain.extend(plan.argv.iter().cloned());
    let refs: Vec<&[u8]> = chain.iter().map(|c| c.as_slice()).collect();
    s.extend(words(&refs));
    s.push(b'\n');
    s
}

/// envuidgid, envdir (or env with the config's variables), softlimit,
/// setuidgid: the chain in the launch's order, and whether the word after
/// it is read by a program that parses options (softlimit, env);
/// envuidgid, envdir and setuidgid take theirs as plain arguments
/// (daemontools reads argv[1] and argv[2] as they are, so `--` would be a
/// name there).
fn sh_chain(plan: &Plan) -> (Vec<Vec<u8>>, bool) {
    let mut chain: Vec<Vec<u8>> = Vec::new();
    if let Some(a) = &plan.account {
        chain.push(b"envuidgid".to_vec());
        chain.push(a.name.clone().into_bytes());
    }
    match &plan.envdir {
        Some(e) => {
            chain.push(b"envdir".to_vec());
            chain.push(not_an_option(e.path.to_string_lossy().as_bytes()));
        }
        None if !plan.config_vars.is_empty() => {
            chain.push(b"env".to_vec());
            for a in &plan.config_vars {
                chain.push([a.name.as_bytes(), b"=", &a.value].concat());
            }
        }
        None => {}
    }
    let soft = &plan.softlimit.words;
    // Whether the next word is read by a program that parses options
    // (softlimit, env); envuidgid, envdir and setuidgid take theirs as
    // plain arguments (daemontools reads argv[1] and argv[2] as they are,
    // so `--` would be a name there).
    let mut parsed_next = false;
    if !soft.is_empty() {
        chain.push(b"softlimit".to_vec());
        chain.extend(soft.iter().map(|w| w.as_bytes().to_vec()));
        parsed_next = true;
    }
    if let Some(a) = &plan.setuidgid {
        chain.push(b"setuidgid".to_vec());
        chain.push(a.name.clone().into_bytes());
        parsed_next = false;
    }
    (chain, parsed_next)
}

/// daemontools' envdir looks its program up in the PATH it was started
/// with (pathexec_run reads its own environ), not in the one it passes
/// on. The plan resolves argv[0] in the final PATH (as the recipe's
/// `envdir ./env softlimit ... tcpserver` did, softlimit doing the
/// lookup): true when envdir would exec a bare name itself and the config
/// sets PATH, so env(1) must do the lookup in the final environment.
fn envdir_would_search_old_path(plan: &Plan) -> bool {
    let envdir_execs =
        plan.envdir.is_some() && plan.softlimit.words.is_empty() && plan.setuidgid.is_none();
    envdir_execs
        && !plan.argv[0].contains(&b'/')
        && plan.config_vars.iter().any(|a| a.name == "PATH")
}

/// A path as a word no program takes for an option: `-x` as `./-x`.
fn not_an_option(p: &[u8]) -> Vec<u8> {
    if p.first() == Some(&b'-') {
        [b"./", p].concat()
    } else {
        p.to_vec()
    }
}

/// The rc-script variables the config files reference, for conf2env.
fn predefined_for_sh(plan: &Plan) -> Vec<(String, String)> {
    let s = &plan.settings;
    if s.authdaemond {
        return crate::authdaemond::predefined(s.layout, s.prefix.as_str())
            .into_iter()
            .map(|(n, v)| (n, lossy(&v)))
            .collect();
    }
    s.service
        .predefined(s.layout, s.prefix.as_str())
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}

/// A group's name for people, or its number when it has none.
fn group_name(gid: u32) -> String {
    nix::unistd::Group::from_gid(gid.into())
        .ok()
        .flatten()
        .map_or_else(|| gid.to_string(), |g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// inherit_env's three forms as sh writes them: nothing for `all`; a
    /// kept name survives `env -i` only when it was set (`${X+...}`), as
    /// the launch keeps only what it inherited.
    #[test]
    fn env_i_prefix_per_inherit_env() {
        assert_eq!(sh_env_i(&Inherit::All), b"");
        assert_eq!(sh_env_i(&Inherit::Nothing), b"env -i ");
        let names = Inherit::Names(vec![b"PATH".to_vec(), b"TZ".to_vec()]);
        assert_eq!(
            String::from_utf8(sh_env_i(&names)).unwrap(),
            "env -i ${PATH+\"PATH=$PATH\"} ${TZ+\"TZ=$TZ\"} "
        );
    }

    /// A word is bare only when every byte is safe for sh; `'` inside
    /// single quotes is closed, escaped and reopened.
    #[test]
    fn quote_bare_or_single_quoted() {
        assert_eq!(quote(b"/usr/bin/imapd"), b"/usr/bin/imapd");
        assert_eq!(quote(b""), b"''");
        assert_eq!(quote(b"a b"), b"'a b'");
        assert_eq!(quote(b"it's"), b"'it'\\''s'");
        assert_eq!(not_an_option(b"-x"), b"./-x");
        assert_eq!(not_an_option(b"./env"), b"./env");
    }
}
