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

/// `--probe` without TLS, against a listener of this test: a greeting is
/// OK (0), a `* BYE` and a closed port are CRITICAL (2); a config that
/// cannot be read is UNKNOWN (3). `--status` where no supervisor's
/// directory is: cannot tell (111).
#[test]
fn probe_exit_codes_and_status_without_a_supervisor() {
    use std::io::Write;
    let t = common::TempDir::new("operate-probe");
    t.write("conf", "IMAPDSTARTTLS=NO\n");
    let probe = |port: u16, config: &str| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.current_dir(t.path())
            .args(["--probe", "--timeout", "5"]);
        for s in [
            "layout=debian",
            "service=imapd",
            &format!("config={config}"),
            "address=127.0.0.1",
            &format!("port={port}"),
            "account=",
            "envdir=",
        ] {
            cmd.args(["--set", s]);
        }
        let out = run(cmd, t.path(), Duration::from_secs(20));
        (out.code.unwrap_or(-1), out.stdout_str())
    };
    let serve = |greeting: &'static [u8]| {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        l.set_nonblocking(true).unwrap();
        let h = std::thread::spawn(move || {
            // Bounded: a probe that never connects fails the test, not hangs it.
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            let mut c = loop {
                match l.accept() {
                    Ok((c, _)) => break c,
                    Err(_) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    Err(e) => panic!("the probe did not connect: {e}"),
                }
            };
            c.set_nonblocking(false).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            c.write_all(greeting).unwrap();
            // Let the probe read it before the connection closes.
            let mut buf = [0u8; 64];
            let _ = std::io::Read::read(&mut c, &mut buf);
        });
        (port, h)
    };
    let (port, h) = serve(b"* OK [CAPABILITY IMAP4rev1] ready\r\n");
    let (code, line) = probe(port, "./conf");
    h.join().unwrap();
    assert_eq!(code, 0, "{line}");
    assert!(
        line.starts_with("IMAP OK - greeting in ") && line.contains("(no TLS configured)"),
        "{line}"
    );
    let (port, h) = serve(b"* BYE go away\r\n");
    let (code, line) = probe(port, "./conf");
    h.join().unwrap();
    assert_eq!(code, 2, "{line}");
    assert!(line.starts_with("IMAP CRITICAL - "), "{line}");
    // A port nobody listens on (bound, not listening: refused).
    let line = common::with_free_port(|port| {
        let (code, line) = probe(port, "./conf");
        // Taken meanwhile by something else: another port.
        (line.contains("unable to connect")).then(|| {
            assert_eq!(code, 2, "{line}");
            line
        })
    });
    assert!(line.starts_with("IMAP CRITICAL - "), "{line}");
    let (code, line) = probe(1, "./no-such-conf");
    assert_eq!(code, 3, "{line}");
    assert!(line.starts_with("IMAP UNKNOWN - "), "{line}");

    if Path::new("/run/systemd/system").is_dir() {
        return; // systemd would be asked about a unit
    }
    t.write("run", "layout=debian\nconfig=./conf\naccount=\nenvdir=\n");
    let mut cmd = std::process::Command::new(BIN);
    cmd.current_dir(t.path()).args(["./run", "--status"]);
    let out = run(cmd, t.path(), Duration::from_secs(20));
    assert_eq!(out.code, Some(111), "{}", out.stdout_str());
    assert!(
        out.stdout_str().contains("cannot tell"),
        "{}",
        out.stdout_str()
    );
}
