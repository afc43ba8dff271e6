//! End to end: real Courier services under real
//! supervise, started by courier-run, answering Python's imaplib/poplib on
//! loopback. The steps live in tests/e2e/e2e.py (Courier-IMAP) and
//! tests/e2e/services.py (IMAP STARTTLS, IMAPS, POP3 STLS, POP3S), one
//! `ok`/`FAIL` line each, then `N passed, M failed`; this test runs them
//! against the binary cargo just built, with the harness's timeout (their
//! own waits are 15 s each).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, have, have_file, is_root, run};

const PEERS: &[(&str, &str)] = &[
    ("/usr/bin/python3", "python3"),
    ("/usr/bin/supervise", "daemontools"),
    ("/usr/bin/svstat", "daemontools"),
    ("/usr/bin/multilog", "daemontools"),
    ("/usr/bin/tcpserver", "ucspi-tcp"),
    ("/usr/bin/imapd", "courier-imap"),
    ("/usr/lib/courier/courier/imaplogin", "courier-imap"),
    ("/usr/sbin/useradd", "passwd"),
];

#[test]
fn courier_services_under_supervise() {
    if !have(
        "root (the end-to-end test adds users and runs supervise)",
        is_root(),
    ) {
        return;
    }
    // Each missing peer is named (under CI=true the first one fails).
    let missing: Vec<_> = PEERS.iter().filter(|(p, why)| !have_file(p, why)).collect();
    if !missing.is_empty() {
        return;
    }
    // One after the other, in one test: both use the machine's authdaemond
    // and create throwaway users.
    for script in ["e2e.py", "services.py"] {
        let mut cmd = Command::new("python3");
        cmd.arg(format!("{}/tests/e2e/{script}", env!("CARGO_MANIFEST_DIR")))
            .arg("--courier-run")
            .arg(BIN);
        let out = run(cmd, std::path::Path::new("/"), Duration::from_secs(600));
        let stdout = out.stdout_str();
        println!("{stdout}");
        eprintln!("{}", out.stderr_str());
        assert_eq!(
            out.exit(),
            0,
            "{script}: end-to-end steps failed (see the FAIL lines and the service log above)"
        );
        assert!(
            stdout.lines().any(|l| l.contains(" passed, 0 failed")),
            "{script}: the harness printed no summary line"
        );
    }
}
