//! The plan knows the kernel's exec limits: what execve
//! would refuse with E2BIG, a variable name no file can carry, an envdir
//! path without a name of its own: `--dry-run`, `--check` and the launch
//! refuse it alike, with exit 100 and the same message, before anything is
//! written; the old envdir stays as it was.

mod common;

use std::process::Command;

use common::{BIN, TempDir, run_cmd, snapshot};

/// Run courier-run in `t` with the run file `./run` and `args`.
fn cr(t: &TempDir, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path()).arg("./run").args(args);
    let r = run_cmd(cmd);
    (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()))
}

/// A service whose config is `conf`, with an envdir written from a good
/// config first (so that "untouched" means something).
fn service(tag: &str, conf: &str, envdir: &str) -> TempDir {
    let t = TempDir::new(tag);
    t.write(
        "run",
        format!(
            "account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig=./conf\nenvdir={envdir}\nbanner=no\n"
        ),
    );
    t.write("conf", "GOOD=1\n");
    let (code, out) = cr(&t, &[]);
    assert_eq!(code, 0, "the good config launches: {out}");
    t.write("conf", conf);
    t
}

/// The three ways in agree: the same exit code, the launch's fatal message
/// in the dry run's and in a --check FAIL line; nothing written.
fn refused_alike(t: &TempDir, dir: &str, want: &str) {
    let before = snapshot(&t.path().join(dir));
    let (code, launch) = cr(t, &[]);
    assert_eq!(code, 100, "launch: {launch}");
    assert!(launch.contains(want), "launch: {launch}");
    let msg = launch
        .lines()
        .find_map(|l| l.strip_prefix("courier-run: fatal: "))
        .unwrap_or_else(|| panic!("no fatal line: {launch}"))
        .to_string();
    let (code, dry) = cr(t, &["--dry-run"]);
    assert_eq!(code, 100, "dry run: {dry}");
    assert!(dry.contains(&msg), "dry run: {dry}");
    let (code, check) = cr(t, &["--check"]);
    assert_eq!(code, 1, "check: {check}");
    assert!(
        check
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains(&msg)),
        "no FAIL line holding {msg:?} in\n{check}"
    );
    assert_eq!(snapshot(&t.path().join(dir)), before, "the envdir changed");
}

#[test]
fn a_value_execve_would_refuse_with_e2big() {
    // 200 KB in one variable: over the kernel's 128 KiB per string.
    let t = service("e2big", &format!("BIG={}\n", "x".repeat(200_000)), "./env");
    refused_alike(&t, "env", "execve would fail with E2BIG");
}

#[test]
fn an_environment_over_the_argument_space() {
    // 40 values of 100 KB: each fits one string, together over a quarter
    // of the 8 MiB stack limit (and over the 6 MiB cap).
    let mut conf = String::new();
    for i in 0..70 {
        conf.push_str(&format!("V{i}={}\n", "y".repeat(100_000)));
    }
    let t = service("argmax", &conf, "./env");
    refused_alike(&t, "env", "the largest variables: V");
}

#[test]
fn a_name_no_file_can_carry() {
    let name = format!("N{}", "a".repeat(299));
    let t = service("longname", &format!("{name}=1\n"), "./env");
    refused_alike(&t, "env", "255");
}

#[test]
fn an_envdir_path_without_a_name_of_its_own() {
    for dir in ["env/.", "env/..", "."] {
        let t = TempDir::new("dotdir");
        t.write(
            "run",
            format!("account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig=./conf\nenvdir={dir}\nbanner=no\n"),
        );
        t.write("conf", "A=1\n");
        std::fs::create_dir_all(t.path().join("env")).unwrap();
        refused_alike(&t, "env", "names no directory of its own");
    }
}
