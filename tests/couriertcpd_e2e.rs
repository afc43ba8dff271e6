//! End to end with couriertcpd (tests/e2e/couriertcpd.py, one `ok`/`FAIL`
//! line per step, then `N passed, M failed`): under supervise, MAXPERIP=2
//! refuses the third connection from one address; an `allow,NAME=VALUE`
//! line reaches the server program's environment; a deny line applied with
//! `--rebuild-access` (makedat, then `svc -h`) refuses the next connection
//! from that 127.0.0.x address with the same couriertcpd pid; `address=::1`
//! serves over IPv6; `--rebuild-access` with tcpserver and tcpsvd enforces
//! a deny line on the next connection without a restart; `init --layout
//! debian` keeps the config's IMAPACCESSFILE and its deny rule. The logins
//! over STARTTLS, IMAPS, STLS and POP3S through couriertcpd are
//! tests/e2e/services.py's (run by tests/e2e.rs: layout=debian's front end
//! is couriertcpd).

mod common;

use std::process::Command;
use std::time::Duration;

use common::{BIN, have, have_file, is_root, run};

const PEERS: &[(&str, &str)] = &[
    ("/usr/bin/python3", "python3"),
    ("/usr/bin/supervise", "daemontools"),
    ("/usr/bin/multilog", "daemontools"),
    ("/usr/bin/tcpserver", "ucspi-tcp"),
    ("/usr/bin/tcpsvd", "ipsvd"),
    ("/usr/sbin/couriertcpd", "courier-base"),
    ("/usr/lib/courier/makedat", "courier-base"),
    ("/usr/lib/courier/courier/imaplogin", "courier-imap"),
    ("/etc/courier/imapd", "courier-imap"),
];

#[test]
fn couriertcpd_under_supervise_and_rebuild_access() {
    if !have("root (binds 127.0.0.x sources, runs supervise)", is_root()) {
        return;
    }
    let missing: Vec<_> = PEERS.iter().filter(|(p, why)| !have_file(p, why)).collect();
    if !missing.is_empty() {
        return;
    }
    let mut cmd = Command::new("python3");
    cmd.arg(format!(
        "{}/tests/e2e/couriertcpd.py",
        env!("CARGO_MANIFEST_DIR")
    ))
    .arg("--courier-run")
    .arg(BIN)
    .arg("-v");
    let out = run(cmd, std::path::Path::new("/"), Duration::from_secs(300));
    let stdout = out.stdout_str();
    println!("{stdout}");
    eprintln!("{}", out.stderr_str());
    assert_eq!(out.exit(), 0, "couriertcpd.py: steps failed (see above)");
    assert!(
        stdout.lines().any(|l| l.contains(" passed, 0 failed")),
        "couriertcpd.py printed no summary line"
    );
    for step in [
        "ok maxperip",
        "ok access-env",
        "ok rebuild-access",
        "ok ipv6",
        "ok rebuild-tcpserver",
        "ok rebuild-tcpsvd",
        "ok init-keeps-deny",
    ] {
        assert!(stdout.contains(step), "no {step:?} line");
    }
}
