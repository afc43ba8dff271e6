//! A name twice in the inherited environment: the run file's `$X`, the
//! config's `$X` and the environment handed on all see one value, the one
//! dash sees (dash imports environ in order, each copy replacing the one
//! before: the last copy wins).
//!
//! std's Command keeps one value per name (and `env` would too), so the
//! environ block is built by hand and exec'd with execve
//! (`common::exec_with_envp`).

use std::path::Path;

use serde_json::Value;

use crate::common::{exec_with_envp, have_dash, run_cmd, which};
use crate::harness::{BIN, Pre, Scratch, command, start_env};

/// The environ block: the usual start environment with X at its start and
/// again at its end.
fn envp(s: &Scratch) -> Vec<Vec<u8>> {
    let mut e = vec![b"X=first-copy".to_vec()];
    e.extend(
        start_env(s)
            .into_iter()
            .map(|(n, v)| format!("{n}={v}").into_bytes()),
    );
    e.push(b"X=last-copy".to_vec());
    e
}

/// Run `program ARGS` in svc/ with exactly [`envp`].
fn run_dup(s: &Scratch, program: &Path, args: &[&str]) -> crate::common::Ran {
    let mut cmd = command(program, s, &[], &Pre::default());
    let argv: Vec<Vec<u8>> = std::iter::once(program.as_os_str().as_encoded_bytes().to_vec())
        .chain(args.iter().map(|a| a.as_bytes().to_vec()))
        .collect();
    exec_with_envp(&mut cmd, program, &argv, &envp(s));
    run_cmd(cmd)
}

#[test]
fn a_name_twice_in_the_environment_reads_as_dash_reads_it() {
    if !have_dash() {
        return;
    }
    let s = Scratch::new("dupenv");
    s.write("etc/dup.conf", "FROM_CONFIG=$X\n");
    s.write(
        "svc/run",
        &s.subst(&format!(
            "#!{BIN}\nlayout=debian\nconfig=@ROOT@/etc/dup.conf\naccount=\nenvdir=\nmaildir=$X\nwait_authdaemond=no\n"
        )),
    );
    let server = format!("server={}", s.server());

    // dash's answer, and the rule it follows.
    let dash = run_dup(
        &s,
        &which("dash").unwrap(),
        &["-c", r#"printf %s "$X"; env | grep -c '^X=' >&2"#],
    );
    assert_eq!(dash.exit(), 0, "dash: {}", dash.stderr_str());
    let want = dash.stdout_str();
    assert_eq!(want, "last-copy", "dash no longer takes the last copy");
    assert_eq!(dash.stderr_str(), "1\n", "dash hands X on once");

    // The plan: the run file's $X (maildir, imapd's last argument), the
    // config's $X, and X as handed on.
    let r = run_dup(
        &s,
        Path::new(BIN),
        &["./run", "--set", &server, "--dry-run", "--format", "json"],
    );
    assert_eq!(r.exit(), 0, "--dry-run: {}", r.stderr_str());
    let plan: Value = serde_json::from_slice(&r.stdout).unwrap();
    let argv = plan["argv"].as_array().unwrap();
    let seen = [
        ("the run file's $X (maildir=$X)", argv.last().unwrap()),
        (
            "the config's $X (FROM_CONFIG=$X)",
            &plan["env"]["FROM_CONFIG"],
        ),
        ("X handed on (inherit_env=all)", &plan["env"]["X"]),
    ];
    let wrong: Vec<String> = seen
        .iter()
        .filter(|(_, v)| v.as_str() != Some(want.as_str()))
        .map(|(what, v)| format!("  {what}: {v}\n"))
        .collect();
    assert!(
        wrong.is_empty(),
        "dash sees X={want:?}; courier-run's plan does not:\n{}",
        wrong.concat()
    );

    // The launch: the recorder gets X once, with that value (Record::env
    // fails on a name twice).
    let r = run_dup(&s, Path::new(BIN), &["./run", "--set", &server]);
    assert_eq!(r.exit(), 0, "launch: {}{}", r.stdout_str(), r.stderr_str());
    let rec = s.take_record().expect("the recorder ran");
    let env = rec.env();
    assert_eq!(env.get("X").map(String::as_str), Some(want.as_str()));
    assert_eq!(
        env.get("FROM_CONFIG").map(String::as_str),
        Some(want.as_str())
    );
}
