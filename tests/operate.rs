//! Operating a running service (docs/operate.md): runs
//! tests/operate/operate.py under each of daemontools, runit and s6:
//! `--status` (0 in effect, 1 after an edit naming the variable, 2
//! stopped), `--probe` of the four services (0), of a certificate within
//! the warning window (1) and of a stopped service (2), `--restart` (a
//! broken config: 100 and the pid unchanged; a good one: a new pid that
//! serves), s6 readiness (`s6-svwait -U` waits for a slow front end's
//! port), and a TLS service without its certificate (the launch exits 111
//! with --check's message in the log; --dry-run says the same).

mod common;

use std::path::Path;
use std::time::Duration;

use common::courier::{AUTHDAEMOND, Authdaemond};
use common::{BIN, have, run, which};

#[test]
fn operate_running_services() {
    let peers = [
        "supervise",
        "runsv",
        "s6-svscan",
        "s6-svwait",
        "s6-notifyoncheck",
        "tcpserver",
        "openssl",
        "python3",
    ];
    let missing: Vec<&str> = peers
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    let ok = nix::unistd::geteuid().is_root()
        && missing.is_empty()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new("/usr/lib/courier/courier/courierpop3d").exists()
        && Path::new(AUTHDAEMOND).exists();
    if !have(
        &format!(
            "root, courier-imap, courier-pop, courier-authdaemon and {missing:?} (daemontools, runit, s6, ucspi-tcp, openssl; run .ci/install)"
        ),
        ok,
    ) {
        return;
    }
    // Held for the whole run: --restart checks that authdaemond answers.
    let _authdaemond = Authdaemond::start();
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/operate/operate.py"
    ))
    .arg("--courier-run")
    .arg(BIN);
    let out = run(cmd, Path::new("/"), Duration::from_secs(400));
    let stdout = out.stdout_str();
    println!("{stdout}");
    eprintln!("{}", out.stderr_str());
    assert!(
        out.code == Some(0),
        "operate steps failed (FAIL lines above)"
    );
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")));
}
