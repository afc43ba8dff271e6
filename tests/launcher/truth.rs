//! Dry-run truth over the table, the daemontools and sh-script oracles,
//! and no fork.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cases::{CASES, needs_root, setup};
use crate::common::{env0_entries, have_file};
use crate::compare::{Diffs, compare_plan};
use crate::harness::{
    Pre, Scratch, command, courier_run, dry_json, envdir_state, is_root, launch, run_cmd,
    start_env, tool, with,
};
use crate::record::{Record, env_map};

/// The environment daemontools gives from the envdir courier-run wrote:
/// `env -i KEPT... [envuidgid ACCOUNT] envdir DIR env -0`.
fn daemontools_env(
    s: &Scratch,
    start: &[(String, String)],
    inherit: &str,
    account: &str,
    envdir: &str,
) -> BTreeMap<String, String> {
    let kept: Vec<&(String, String)> = start
        .iter()
        .filter(|(n, _)| match inherit {
            "all" => true,
            "none" => false,
            names => names.split_ascii_whitespace().any(|k| k == n),
        })
        .collect();
    let mut cmd = Command::new(tool("env"));
    cmd.current_dir(s.svc()).arg("-i");
    cmd.args(kept.iter().map(|(n, v)| format!("{n}={v}")));
    if !account.is_empty() {
        cmd.arg(tool("envuidgid")).arg(account);
    }
    cmd.arg(tool("envdir"))
        .arg(envdir)
        .arg(tool("env"))
        .arg("-0");
    let out = run_cmd(cmd);
    assert_eq!(
        out.exit(),
        0,
        "daemontools oracle failed: {}",
        out.stderr_str()
    );
    let entries = env0_entries(&out.stdout).unwrap_or_else(|e| panic!("daemontools: {e}"));
    env_map(&entries, "daemontools' environment")
}

/// Names /bin/sh adds to the environment of what it execs, which a run
/// script cannot avoid: dash exports PWD (always, set to the cwd), bash
/// also SHLVL and `_`. They are not in courier-run's plan (it is not a
/// shell), so they are left out of the comparison with the sh script.
const SH_ADDS: &[&str] = &["PWD", "SHLVL", "_"];

/// The environment without what a shell adds ([`SH_ADDS`]) or drops: dash
/// does not pass on inherited names that are not shell names (such as
/// `TEST.DOTTED-NAME`), which courier-run, like daemontools' envdir, keeps.
fn without_sh_vars(mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for n in SH_ADDS {
        env.remove(*n);
    }
    env.retain(|n, _| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    });
    env
}

/// `--format sh` run with /bin/sh in the service dir: its record.
fn run_sh_script(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Record {
    let r = courier_run(s, &with(args, &["--dry-run", "--format", "sh"]), env, pre);
    assert_eq!(r.exit(), 0, "--format sh failed: {}", r.stderr_str());
    let script = s.write("classic-run.sh", &r.stdout_str());
    let mut cmd = command(Path::new("/bin/sh"), s, env, pre);
    cmd.arg(&script);
    let ran = run_cmd(cmd);
    assert_eq!(
        ran.exit(),
        0,
        "the --format sh script failed:\n{}\n{}{}",
        r.stdout_str(),
        ran.stdout_str(),
        ran.stderr_str()
    );
    s.take_record().unwrap_or_else(|| {
        panic!(
            "the sh script did not exec the recorder:\n{}",
            r.stdout_str()
        )
    })
}

fn start_groups() -> Vec<u32> {
    nix::unistd::getgroups()
        .unwrap()
        .iter()
        .map(|g| g.as_raw())
        .collect()
}

#[test]
fn dry_run_truth_and_oracles_for_the_table() {
    if !(have_file("/usr/bin/envdir", "daemontools")
        && have_file("/usr/bin/envuidgid", "daemontools"))
    {
        return;
    }
    let mut total = 0;
    let mut cases = 0;
    let mut layouts = std::collections::BTreeSet::new();
    let mut oracle_env = 0;
    let mut oracle_sh = 0;
    for c in CASES {
        if needs_root(c) && !is_root() {
            eprintln!("skipped (needs root for setuidgid): {}", c.name);
            continue;
        }
        let s = Scratch::new("truth");
        let args = setup(&s, c);
        let env = start_env(&s);
        let pre = Pre {
            limits: c.pre.to_vec(),
            ..Pre::default()
        };

        // Dry-run truth.
        let plan = dry_json(&s, &args, &env, &pre);
        assert!(
            plan["envdir_unchanged"] != true,
            "{}: fresh envdir reported unchanged",
            c.name
        );
        let (ran, rec) = launch(&s, &args, &env, &pre);
        let mut d = Diffs::default();
        compare_plan(&mut d, &plan, &ran, &rec, &start_groups());
        d.eq("cwd", rec.cwd.clone(), fs::canonicalize(s.svc()).unwrap());
        let n = d.check(c.name);
        total += n;
        cases += 1;
        layouts.insert(plan_layout(&s, &args, &env, &pre));

        // After the launch the envdir is in place: the same plan, now
        // "unchanged", and a second launch must not rewrite it.
        let mut o = Diffs::default();
        if let Some(dir) = plan["envdir"].as_str() {
            let again = dry_json(&s, &args, &env, &pre);
            o.eq(
                "envdir_unchanged after a launch",
                again["envdir_unchanged"].clone(),
                Value::Bool(true),
            );
            let before = envdir_state(&s.svc().join(dir));
            let (_, rec2) = launch(&s, &args, &env, &pre);
            o.eq(
                "second launch: envdir not rewritten",
                envdir_state(&s.svc().join(dir)),
                before,
            );
            o.env("second launch: same environment", &rec2.env(), &rec.env());

            // Oracle (a): real daemontools on the envdir we wrote.
            let want = daemontools_env(&s, &env, c.inherit, c.account, dir);
            o.env("env vs daemontools envuidgid+envdir", &rec.env(), &want);
            oracle_env += 1;
        }

        // Oracle (c): the classic script, run by /bin/sh.
        let sh = run_sh_script(&s, &args, &env, &pre);
        o.eq("sh script: argv", sh.argv.clone(), rec.argv.clone());
        o.env(
            "sh script: env (without PWD, SHLVL, _)",
            &without_sh_vars(sh.env()),
            &without_sh_vars(rec.env()),
        );
        o.eq(
            "sh script: /proc/self/limits",
            sh.limits_raw.clone(),
            rec.limits_raw.clone(),
        );
        o.eq("sh script: uid", sh.uid.clone(), rec.uid.clone());
        o.eq("sh script: gid", sh.gid.clone(), rec.gid.clone());
        o.eq("sh script: groups", sh.groups.clone(), rec.groups.clone());
        o.eq("sh script: umask", sh.umask, rec.umask);
        o.check(&format!("{} (oracles)", c.name));
        oracle_sh += 1;
    }
    eprintln!(
        "dry-run truth: {total} field comparisons over {cases} variations ({} per variation), layouts {layouts:?}; daemontools env oracle on {oracle_env}, sh-script oracle on {oracle_sh}",
        total / cases.max(1)
    );
    assert!(cases >= 8 || !is_root(), "only {cases} variations ran");
    assert!(
        layouts.contains("courier2") && layouts.contains("debian"),
        "both layouts: {layouts:?}"
    );
}

/// The layout a run resolved to (from `--explain`).
fn plan_layout(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> String {
    let r = courier_run(
        s,
        &with(args, &["--dry-run", "--format", "json", "--explain"]),
        env,
        pre,
    );
    let v: Value = serde_json::from_slice(&r.stdout).unwrap();
    v["settings"]["layout"]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn no_fork_the_recorder_is_the_process_we_started() {
    let s = Scratch::new("nofork");
    let c = &CASES[0];
    let args = setup(&s, c);
    let env = start_env(&s);
    let (ran, rec) = launch(&s, &args, &env, &Pre::default());
    assert_eq!(
        rec.pid, ran.pid,
        "the recorder ran as pid {} but courier-run was pid {}: it forked",
        rec.pid, ran.pid
    );
    assert_eq!(rec.exe, fs::canonicalize(s.recorder()).unwrap());
    assert!(
        !rec.sigpipe_ignored(),
        "SIGPIPE is ignored in the exec'd program"
    );
}
