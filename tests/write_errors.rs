//! A standard output or error that cannot be written (a full disk: here
//! /dev/full, where every write fails with ENOSPC) is a failed system
//! call: exit 111, with a message when stderr still works; never a panic
//! (an abort, 134, in the release build).

mod common;

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::process::{Command, Stdio};

use common::{BIN, TIMEOUT, TempDir, have, try_run_to};

fn full() -> File {
    OpenOptions::new().write(true).open("/dev/full").unwrap()
}

fn have_full() -> bool {
    have("/dev/full", Path::new("/dev/full").exists())
}

/// A directory with a run file whose config exists: a good dry run.
fn service() -> TempDir {
    let t = TempDir::new("full");
    t.write("imapd", "PORT=1143\nMAILDIRPATH=Mail\n");
    t.write(
        "run",
        "config=./imapd\naccount=\nrules=\nenvdir=\nserver=\"/bin/true -v\"\n",
    );
    t
}

/// `courier-run ARGS` in `dir` with stdout on /dev/full, stderr captured.
fn stdout_full(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).args(args);
    let r = try_run_to(cmd, Stdio::null(), Some(Stdio::from(full())), TIMEOUT).unwrap();
    let code = r.code.unwrap_or_else(|| {
        panic!(
            "courier-run {args:?} >/dev/full was killed by a signal: {}",
            r.stderr_str()
        )
    });
    (code, r.stderr_str())
}

/// `courier-run ARGS` in `dir` with stdout and stderr both on /dev/full
/// (`>/dev/full 2>&1`): nothing can be said; the exit code says it.
fn both_full(dir: &Path, args: &[&str]) -> Option<i32> {
    let status = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(full())
        .stderr(full())
        .status()
        .unwrap();
    status.code()
}

/// stdout full, stderr working: 111 and a message saying so, for a good
/// dry run (the plan cannot be printed), a dry run of a missing config
/// (its own error still said), `init --dry-run`, and `--help`.
#[test]
fn stdout_full_exits_111_with_a_message() {
    if !have_full() {
        return;
    }
    let t = service();
    let (code, err) = stdout_full(t.path(), &["--dry-run", "./run"]);
    assert_eq!(code, 111, "dry run: {err}");
    assert!(err.contains("unable to write to standard output"), "{err}");

    let (code, err) = stdout_full(t.path(), &["--set", "config=/nonexistent", "--dry-run"]);
    assert_eq!(code, 111, "{err}");
    assert!(err.contains("/nonexistent"), "{err}");

    // init --dry-run refuses (100) unless it may give log/main to courier.
    if common::have(
        "root and the courier account (init gives log/main to courier)",
        common::is_root() && nix::unistd::User::from_name("courier").is_ok_and(|u| u.is_some()),
    ) {
        let (code, err) = stdout_full(t.path(), &["init", "--dry-run", "svc"]);
        assert_eq!(code, 111, "init --dry-run: {err}");
        assert!(err.contains("unable to write to standard output"), "{err}");
        assert!(!t.join("svc").exists(), "init --dry-run created something");
    }

    let (code, err) = stdout_full(t.path(), &["--help"]);
    assert_eq!(code, 111, "--help: {err}");
}

/// stdout and stderr full: 111, not a signal (abort) nor a panic's 101,
/// for a launch whose error goes to stdout (stderr is merged into it), a
/// dry run, and a dry run of a missing config.
#[test]
fn both_full_exits_111() {
    if !have_full() {
        return;
    }
    let t = service();
    for args in [
        &["--set", "config=/nonexistent"][..],
        &["--set", "config=/nonexistent", "--dry-run"],
        &["--dry-run", "./run"],
        &["--check", "./run"],
    ] {
        assert_eq!(
            both_full(t.path(), args),
            Some(111),
            "courier-run {args:?} >/dev/full 2>&1"
        );
    }
}
