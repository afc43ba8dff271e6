//! Low resource limits give a message and an exit code, never a panic
//! (134) or a death by signal (139): `--check`, `--dry-run` and the launch
//! under `ulimit -v` from where the binary can first be loaded upwards, and
//! the deepest `${...}` nesting allowed under `ulimit -s` from a few KiB
//! upwards.
//!
//! Limits are set by `sh -c 'ulimit ...; exec courier-run ...'`. Below some
//! limit the kernel or the dynamic loader cannot even start the binary
//! (execve fails, or ld.so cannot map libc): nothing of courier-run runs
//! there, so a limit at which `courier-run --version` does not start is
//! skipped. The floor differs between a debug and a release build, which
//! is why the tests sweep instead of naming one limit.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, Ran, TempDir, run_cmd};

/// `courier-run ARGS` in `dir` under `ulimit -LETTER KIB`.
fn limited(dir: &Path, letter: char, kib: u64, args: &[&str]) -> Ran {
    let mut cmd = Command::new("/bin/sh");
    cmd.current_dir(dir)
        .arg("-c")
        .arg(format!("ulimit -{letter} {kib} && exec \"$0\" \"$@\""))
        .arg(BIN)
        .args(args);
    run_cmd(cmd)
}

/// Does the binary start under this limit (courier-run's own code runs:
/// it exits, by any code, with its own words), three times out of three?
/// (The stack's top is placed at random: at the very edge, the start-up
/// before `main` fits one time and not the next.)
fn starts(dir: &Path, letter: char, kib: u64) -> bool {
    (0..3).all(|_| {
        let r = limited(dir, letter, kib, &["--version"]);
        match r.code {
            None => false,
            // sh's "exec: ...: Cannot allocate memory", ld.so's "error
            // while loading shared libraries".
            Some(2 | 126 | 127) => false,
            Some(_) => true,
        }
    })
}

/// The outcome under a low limit is a message and an exit code.
#[track_caller]
fn assert_message_and_code(r: &Ran, what: &str) {
    let out = format!("{}{}", r.stdout_str(), r.stderr_str());
    let code = r
        .code
        .unwrap_or_else(|| panic!("{what}: killed by a signal, output: {out}"));
    assert!(
        !matches!(code, 134 | 139),
        "{what}: exit {code} (a panic or a crash): {out}"
    );
    assert!(
        !out.contains("panicked") && !out.contains("failed to spawn thread"),
        "{what}: {out}"
    );
    if !matches!(code, 0 | 1) {
        assert!(
            out.lines().any(|l| l.starts_with("courier-run: fatal: ")),
            "{what}: exit {code} without a message: {out}"
        );
    }
}

/// A service that passes `--check` without Courier installed: every
/// program /bin/true, no config, no account (tests/check.rs's base).
fn service(t: &TempDir) -> Vec<&'static str> {
    t.write(
        "run",
        "#!/usr/bin/courier-run\nlayout=debian\nconfig=\naccount=\nenvdir=\nserver=/bin/true\nlogin=/bin/true\nimapd=/bin/true\nrules=\naddress=127.0.0.1\nport=14398\n",
    );
    vec!["./run"]
}

#[test]
fn check_dry_run_and_launch_under_low_memory_limits() {
    let t = TempDir::new("low-v");
    let run = service(&t);
    // The lowest limit the binary starts under, to 100 KiB, from 3 MiB
    // (below any build's floor); then up from there 20 KiB at a time,
    // until --check has passed at 20 limits in a row.
    let mut kib = 3000;
    while !starts(t.path(), 'v', kib) {
        assert!(kib < 200_000, "courier-run never started under ulimit -v");
        kib += 100;
    }
    kib -= 100;
    let (mut tried, mut skipped, mut passed_in_a_row, mut refused) = (0, 0, 0, 0);
    while passed_in_a_row < 20 {
        assert!(kib < 200_000, "--check never passed under ulimit -v");
        if !starts(t.path(), 'v', kib) {
            skipped += 1;
            kib += 20;
            continue;
        }
        tried += 1;
        let check = limited(t.path(), 'v', kib, &[&["--check"], &run[..]].concat());
        assert_message_and_code(&check, &format!("--check under ulimit -v {kib}"));
        let dry = limited(t.path(), 'v', kib, &[&["--dry-run"], &run[..]].concat());
        assert_message_and_code(&dry, &format!("--dry-run under ulimit -v {kib}"));
        let launch = limited(t.path(), 'v', kib, &run);
        assert_message_and_code(&launch, &format!("launch under ulimit -v {kib}"));
        if check.code == Some(0) {
            passed_in_a_row += 1;
        } else {
            passed_in_a_row = 0;
            refused += 1;
        }
        kib += 20;
    }
    eprintln!(
        "ulimit -v: {tried} limits tried up to {kib} KiB ({skipped} skipped at the loader's floor), --check refused with a message under {refused}"
    );
    // The sweep went through limits where --check could not finish: the
    // messages above are what it said there.
    assert!(
        tried > 20 && refused > 0,
        "tried {tried}, refused {refused}"
    );
}

#[test]
fn deepest_nesting_under_low_stack_limits() {
    let t = TempDir::new("low-s");
    // The deepest nesting the reader allows (config::MAX_NESTING, 64).
    let n = 64;
    let deep = format!("X={}v{}\n", "${A:-".repeat(n), "}".repeat(n));
    t.write("deep.conf", &deep);
    // A launch as a supervisor makes it (the shebang path: no clap, whose
    // command definition alone takes ~260 KiB of stack in a debug build,
    // more than this nesting): here the reader's own check must speak.
    t.write(
        "run",
        "config=./deep.conf\naccount=\nenvdir=\nsoftlimit=\nserver=/bin/true\nlogin=\nauth=\nimapd=/bin/true\nrules=\nbanner=no\n",
    );
    let (mut tried, mut refused_with_headroom) = (0, 0);
    // The first limit the start-up fits in is left out, with the next one:
    // there, what runs before `main` (the loader, libc's start, with the
    // environment on the stack) may or may not fit, and no handler can be
    // installed before it.
    let mut edge = 2;
    for kib in (8..=512).step_by(8) {
        if !starts(t.path(), 's', kib) {
            continue;
        }
        if edge > 0 {
            edge -= 1;
            continue;
        }
        tried += 1;
        for args in [
            &["./run"][..],
            &["conf2env", "./env", "./deep.conf"],
            &[
                "--dry-run",
                "--set",
                "config=./deep.conf",
                "--set",
                "account=",
            ],
        ] {
            let r = limited(t.path(), 's', kib, args);
            assert_message_and_code(&r, &format!("{args:?} under ulimit -s {kib}"));
            // A launch merges stderr into stdout (the log): read both.
            let said = r.stdout_str() + &r.stderr_str();
            if said.contains("leaves too little stack") {
                refused_with_headroom += 1;
                assert_eq!(r.code, Some(111), "{said}");
                assert!(said.contains("deep.conf:1:"), "{said}");
            }
        }
    }
    assert!(tried > 10, "the binary started under only {tried} limits");
    // The reader refused by looking at the stack left, with the position,
    // not only by the last-resort SIGSEGV handler.
    assert!(refused_with_headroom > 0);
    // Under the usual limit the same nesting is read.
    let r = limited(t.path(), 's', 8192, &["conf2env", "./env", "./deep.conf"]);
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(std::fs::read(t.join("env/X")).unwrap(), b"v\n");
}
