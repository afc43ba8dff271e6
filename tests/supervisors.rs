//! Every supervisor, both front ends, Courier's access list, `init`.
//!
//! - `supervisors_and_front_ends` runs tests/supervisors/supervisors.py:
//!   the service under runsv and s6-svscan (status pid == listener pid, a
//!   config change in CAPABILITY, a broken config's message in each log),
//!   tcpsvd's MAXPERIP, the access list under both front ends.
//! - the rest drive the binary directly: a tcprules cdb given to tcpsvd is
//!   a --check FAIL; `init` for each supervisor and service passes --check
//!   (authdaemond started) and serves a login (a throwaway user, one
//!   message, Python's imaplib/poplib over STARTTLS or implicit TLS).
//!
//! Every child runs with a timeout (common's `run`); no port is bound,
//! closed and reused: services start on a candidate port and are retried
//! on another when theirs was taken (common's `courier::serve`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::courier::{
    AUTHDAEMOND, Authdaemond, MailUser, authdaemond_revive, client_kind, login, serve,
};
use common::{BIN, Ran, TempDir, have, run, run_with_stdin, which};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A scratch directory, removed on drop (also when the test panics).
fn tmp(tag: &str) -> TempDir {
    TempDir::new(&format!("sup-{tag}"))
}

/// A child of these tests: 60 s at most, then it fails the test.
const LIMIT: Duration = Duration::from_secs(60);

fn ran(cmd: Command) -> Ran {
    run(cmd, Path::new("/"), LIMIT)
}

/// `courier-run ARGS` in `dir`: exit code, stdout then stderr.
fn output(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    let out = ran(cmd);
    (out.code.unwrap_or(-1), out.stdout_str() + &out.stderr_str())
}

#[test]
fn supervisors_and_front_ends() {
    let peers = [
        "runsv",
        "sv",
        "svlogd",
        "s6-svscan",
        "s6-svstat",
        "s6-log",
        "tcpsvd",
        "tcpserver",
        "python3",
    ];
    let missing: Vec<&str> = peers
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    let ok = root()
        && missing.is_empty()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new(AUTHDAEMOND).exists();
    if !have(
        &format!(
            "root, courier-imap, courier-authdaemon and {missing:?} (runit, s6, ipsvd; run .ci/install)"
        ),
        ok,
    ) {
        return;
    }
    // Held for the whole run: the script finds authdaemond answering and
    // uses it, and the init test running beside it cannot lose it when the
    // script ends.
    let _authdaemond = Authdaemond::start();
    let mut cmd = Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/supervisors/supervisors.py"
    ))
    .arg("--courier-run")
    .arg(BIN);
    let out = run(cmd, Path::new("/"), Duration::from_secs(300));
    let stdout = out.stdout_str();
    println!("{stdout}");
    eprintln!("{}", out.stderr_str());
    assert!(
        out.code == Some(0),
        "supervisor steps failed (FAIL lines above)"
    );
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")));
}

/// A config for the run files below: Debian's, else the fixture copy.
fn config() -> PathBuf {
    let real = Path::new("/etc/courier/imapd");
    if real.exists() {
        real.into()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12/imapd")
    }
}

#[test]
fn tcprules_cdb_for_tcpsvd_is_a_check_fail() {
    if !have(
        "tcprules and tcpsvd",
        which("tcprules").is_some() && which("tcpsvd").is_some(),
    ) {
        return;
    }
    let scratch = tmp("mismatch");
    let d = scratch.path();
    std::fs::write(d.join("deny.rules"), "127.:deny\n:allow\n").unwrap();
    let mut cmd = Command::new("tcprules");
    cmd.arg(d.join("deny.cdb")).arg(d.join("deny.tmp"));
    let rules = std::fs::File::open(d.join("deny.rules")).unwrap();
    let made = run_with_stdin(cmd, Stdio::from(rules), d, LIMIT);
    assert_eq!(made.code, Some(0), "tcprules: {}", made.stderr_str());
    let run_file = |server: &str| {
        format!(
            "layout=debian\nconfig={}\nenvdir=\naccount=\nserver=\"{server}\"\nrules=./deny.cdb\n",
            config().display()
        )
    };
    std::fs::write(d.join("run"), run_file("tcpsvd -v")).unwrap();
    let (code, text) = output(d, &["./run", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL") && text.contains("is a tcprules cdb but tcpsvd reads"),
        "{text}"
    );
    // The launch refuses too (exit 100), instead of ignoring every rule.
    let (code, text) = output(d, &["./run", "--dry-run"]);
    assert_eq!(code, 100, "{text}");
    // The same cdb with tcpserver is fine.
    std::fs::write(d.join("run"), run_file("tcpserver -v -RH -l0")).unwrap();
    let (_, text) = output(d, &["./run", "--check"]);
    assert!(!text.contains("is a tcprules cdb but"), "{text}");
    assert!(text.contains("ok   rules ./deny.cdb"), "{text}");
    // tcpsvd: MAXPERIP becomes -C.
    std::fs::write(d.join("imapd"), "MAXPERIP=3\nMAXDAEMONS=9\n").unwrap();
    std::fs::write(
        d.join("run"),
        "layout=debian\nconfig=./imapd\nenvdir=\naccount=\nserver=\"tcpsvd -v\"\n",
    )
    .unwrap();
    let (code, text) = output(d, &["./run", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let argv: Vec<&str> = v["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        &argv[..7],
        ["tcpsvd", "-v", "-c", "9", "-C", "3", "0"],
        "{argv:?}"
    );
}

#[test]
fn operands_are_accepted_and_explained() {
    let scratch = tmp("operands");
    let d = scratch.path();
    std::fs::write(
        d.join("run"),
        format!(
            "layout=debian\nconfig={}\nenvdir=\naccount=\n",
            config().display()
        ),
    )
    .unwrap();
    let (code, text) = output(d, &["./run", "/service/imapd", "--dry-run", "--explain"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("operands (ignored): /service/imapd"),
        "{text}"
    );
    // A command-line error of a launch goes to stdout (the log), not stderr.
    let mut cmd = Command::new(BIN);
    cmd.args(["./run", "--bogus"]).current_dir(d);
    let out = ran(cmd);
    assert_eq!(out.code, Some(100));
    assert!(out.stdout_str().contains("--bogus"));
    assert!(out.stderr.is_empty());
    // ... but not for --check, which a person runs.
    let mut cmd = Command::new(BIN);
    cmd.args(["./run", "--check", "--bogus"]).current_dir(d);
    let out = ran(cmd);
    assert!(out.stderr_str().contains("--bogus"));
}

#[test]
fn init_for_each_supervisor_and_service() {
    let ok = root()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new("/usr/lib/courier/courier/courierpop3d").exists()
        && Path::new(AUTHDAEMOND).exists()
        && which("python3").is_some()
        && which("useradd").is_some()
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some();
    if !have(
        "root, courier-imap, courier-pop, courier-authdaemon, python3, useradd and the courier account",
        ok,
    ) {
        return;
    }
    let scratch = tmp("init");
    let base = scratch.path();
    // Courier 5 logs in through authdaemond: --check FAILs without it.
    let _authdaemond = Authdaemond::start();
    let user = MailUser::new("init");
    for sup in ["daemontools", "runit", "s6"] {
        for svc in ["imapd", "pop3d", "imapd-ssl", "pop3d-ssl"] {
            let d = base.join(format!("{sup}-{svc}"));
            let s = d.to_str().unwrap();
            let (code, dry) = output(
                base,
                &[
                    "init",
                    s,
                    "--supervisor",
                    sup,
                    "--service",
                    svc,
                    "--dry-run",
                ],
            );
            assert_eq!(code, 0, "{dry}");
            assert!(!d.exists(), "--dry-run created {s}");
            let (code, text) = output(base, &["init", s, "--supervisor", sup, "--service", svc]);
            assert_eq!(code, 0, "{text}");
            assert_eq!(dry.replace("would create", "created"), text);
            assert!(text.contains("start it with: "), "{text}");
            let logger = match sup {
                "daemontools" => "multilog",
                "runit" => "svlogd",
                _ => "s6-log",
            };
            assert!(
                std::fs::read_to_string(d.join("log/run"))
                    .unwrap()
                    .contains(logger)
            );
            let (code, again) = output(base, &["init", s, "--supervisor", sup]);
            assert_eq!(code, 100, "{again}");
            assert!(again.contains("never overwrites"), "{again}");
            // --check passes; the warnings allowed are MAXPERIP (tcpserver
            // has no per-IP limit) and those about Debian's stock config
            // files (not init's to change).
            let (mut code, mut check) = output(&d, &["./run", "--check"]);
            if code != 0 && check.contains("FAIL authdaemond") {
                // Another program on the machine stopped the authdaemond
                // this test found running.
                authdaemond_revive();
                (code, check) = output(&d, &["./run", "--check"]);
            }
            assert_eq!(code, 0, "{sup} {svc}: {check}");
            for line in check.lines().filter(|l| l.starts_with("warn")) {
                assert!(
                    line.contains("MAXPERIP") || line.contains(" /etc/courier/"),
                    "{sup} {svc}: {line}"
                );
            }
            // It serves a login: the launch a supervisor makes, on a
            // loopback port (another one when that was taken meanwhile).
            let served = serve(
                |port| {
                    let mut cmd = Command::new(BIN);
                    // layout=debian runs couriertcpd with the config's
                    // IMAPACCESSFILE: its .dat beside the machine's list is
                    // not this test's to write (init-keeps-deny in
                    // tests/e2e/couriertcpd.py serves one of its own).
                    cmd.args(["./run", "--set", "address=127.0.0.1", "--set"])
                        .arg(format!("port={port}"))
                        .args(["--set", "access="])
                        .current_dir(&d);
                    cmd
                },
                Duration::from_secs(10),
            );
            let kind = client_kind(svc);
            let said = login(kind, &served, &user);
            assert!(said.contains("messages 1"), "{sup} {svc}: {said}");
            // Debian's config offers STARTTLS (IMAPDSTARTTLS=YES in
            // imapd-ssl, POP3DSTARTTLS=YES in pop3d-ssl): the plain
            // services read it as their rc scripts do.
            match kind {
                "imap" => assert!(said.contains("starttls"), "{sup} {svc}: {said}"),
                "pop3" => assert!(said.contains("stls"), "{sup} {svc}: {said}"),
                _ => {}
            }
            drop(served);
        }
    }
}
