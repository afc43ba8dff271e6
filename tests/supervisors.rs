//! Issue 10: every supervisor, both front ends, Courier's access list,
//! `init`, the man page and the completions.
//!
//! - `supervisors_and_front_ends` runs tests/supervisors/supervisors.py:
//!   the service under runsv and s6-svscan (status pid == listener pid, a
//!   config change in CAPABILITY, a broken config's message in each log),
//!   tcpsvd's MAXPERIP, the access list under both front ends.
//! - the rest drive the binary directly: a tcprules cdb given to tcpsvd is
//!   a --check FAIL; `init` for each supervisor and service passes --check
//!   and serves a greeting; the man page lints clean; each completion
//!   script parses.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BIN, have, which};

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crtest-sup-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Kills its child (by pid) and waits for it, also when a test panics.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port: bound, read, released just before use.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn output(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
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
    let ok = root() && missing.is_empty() && Path::new("/usr/bin/imapd").exists();
    if !have(
        &format!("root, courier-imap and {missing:?} (runit, s6, ipsvd; run .ci/install)"),
        ok,
    ) {
        return;
    }
    let out = Command::new("timeout")
        .args([
            "300",
            "python3",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/supervisors/supervisors.py"
            ),
        ])
        .arg("--courier-run")
        .arg(BIN)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
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
    let d = tmp("mismatch");
    let mut child = Command::new("tcprules")
        .arg(d.join("deny.cdb"))
        .arg(d.join("deny.tmp"))
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"127.:deny\n:allow\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let run = |server: &str| {
        format!(
            "layout=debian\nconfig={}\nenvdir=\naccount=\nserver=\"{server}\"\nrules=./deny.cdb\n",
            config().display()
        )
    };
    std::fs::write(d.join("run"), run("tcpsvd -v")).unwrap();
    let (code, text) = output(&d, &["./run", "--check"]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("FAIL") && text.contains("is a tcprules cdb but tcpsvd reads"),
        "{text}"
    );
    // The launch refuses too (exit 100), instead of ignoring every rule.
    let (code, text) = output(&d, &["./run", "--dry-run"]);
    assert_eq!(code, 100, "{text}");
    // The same cdb with tcpserver is fine.
    std::fs::write(d.join("run"), run("tcpserver -v -RH -l0")).unwrap();
    let (_, text) = output(&d, &["./run", "--check"]);
    assert!(!text.contains("is a tcprules cdb but"), "{text}");
    assert!(text.contains("ok   rules ./deny.cdb"), "{text}");
    // tcpsvd: MAXPERIP becomes -C.
    std::fs::write(d.join("imapd"), "MAXPERIP=3\nMAXDAEMONS=9\n").unwrap();
    std::fs::write(
        d.join("run"),
        "layout=debian\nconfig=./imapd\nenvdir=\naccount=\nserver=\"tcpsvd -v\"\n",
    )
    .unwrap();
    let (code, text) = output(&d, &["./run", "--dry-run", "--format", "json"]);
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
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn operands_are_accepted_and_explained() {
    let d = tmp("operands");
    std::fs::write(
        d.join("run"),
        format!(
            "layout=debian\nconfig={}\nenvdir=\naccount=\n",
            config().display()
        ),
    )
    .unwrap();
    let (code, text) = output(&d, &["./run", "/service/imapd", "--dry-run", "--explain"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("operands (ignored): /service/imapd"),
        "{text}"
    );
    // A command-line error of a launch goes to stdout (the log), not stderr.
    let out = Command::new(BIN)
        .args(["./run", "--bogus"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
    assert!(String::from_utf8_lossy(&out.stdout).contains("--bogus"));
    assert!(out.stderr.is_empty());
    // ... but not for --check, which a person runs.
    let out = Command::new(BIN)
        .args(["./run", "--check", "--bogus"])
        .current_dir(&d)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bogus"));
    let _ = std::fs::remove_dir_all(d);
}

/// Wait until a connection to the port is accepted.
fn connects(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Read an IMAP/POP3 greeting within a few seconds.
fn greeting(port: u16) -> String {
    use std::io::Read;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = [0u8; 200];
            let n = s.read(&mut buf).unwrap_or(0);
            return String::from_utf8_lossy(&buf[..n]).to_string();
        }
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn init_for_each_supervisor_and_service() {
    let ok = root()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new("/usr/lib/courier/courier/courierpop3d").exists()
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some();
    if !have(
        "root, courier-imap, courier-pop and the courier account",
        ok,
    ) {
        return;
    }
    let base = tmp("init");
    for sup in ["daemontools", "runit", "s6"] {
        for svc in ["imapd", "pop3d", "imapd-ssl", "pop3d-ssl"] {
            let d = base.join(format!("{sup}-{svc}"));
            let s = d.to_str().unwrap();
            let (code, dry) = output(
                &base,
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
            let (code, text) = output(&base, &["init", s, "--supervisor", sup, "--service", svc]);
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
            let (code, again) = output(&base, &["init", s, "--supervisor", sup]);
            assert_eq!(code, 100, "{again}");
            assert!(again.contains("never overwrites"), "{again}");
            // --check passes; the warnings allowed are MAXPERIP (tcpserver
            // has no per-IP limit) and those about Debian's stock config
            // files (not init's to change).
            let (code, check) = output(&d, &["./run", "--check"]);
            assert_eq!(code, 0, "{sup} {svc}: {check}");
            for line in check.lines().filter(|l| l.starts_with("warn")) {
                assert!(
                    line.contains("MAXPERIP") || line.contains(" /etc/courier/"),
                    "{sup} {svc}: {line}"
                );
            }
            // It serves: a greeting on a loopback port.
            let port = free_port();
            let child = Command::new(BIN)
                .args(["./run", "--set", "address=127.0.0.1", "--set"])
                .arg(format!("port={port}"))
                .current_dir(&d)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let _g = Guard(child);
            if svc.ends_with("-ssl") {
                // Implicit TLS: the server waits for the client's hello;
                // an accepted connection is what shows without TLS.
                connects(port);
            } else {
                let hello = greeting(port);
                assert!(
                    hello.starts_with("* OK") || hello.starts_with("+OK"),
                    "{sup} {svc}: {hello:?}"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(base);
}

#[test]
fn man_page_lints_clean() {
    let out = Command::new(BIN).arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH courier-run 1"));
    for word in ["\\-\\-dry\\-run", "\\-\\-check", "init", "completions"] {
        assert!(page.contains(word), "{word} missing from the man page");
    }
    if !have("mandoc", which("mandoc").is_some()) {
        return;
    }
    let d = tmp("man");
    std::fs::write(d.join("courier-run.1"), &out.stdout).unwrap();
    let lint = Command::new("mandoc")
        .args(["-T", "lint", "-W", "warning"])
        .arg(d.join("courier-run.1"))
        .output()
        .unwrap();
    let msgs =
        String::from_utf8_lossy(&lint.stdout).to_string() + &String::from_utf8_lossy(&lint.stderr);
    assert!(lint.status.success() && msgs.trim().is_empty(), "{msgs}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn completion_scripts_parse() {
    let d = tmp("completions");
    for shell in ["bash", "zsh", "fish"] {
        let out = Command::new(BIN)
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "completions {shell}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("courier-run"));
        // bash is on every Debian machine; zsh and fish are optional.
        let present = which(shell).is_some();
        if shell == "bash" {
            assert!(present, "bash");
        } else if !present {
            eprintln!("SKIPPED: {shell} -n: {shell} is not installed");
            continue;
        }
        let f = d.join(shell);
        std::fs::write(&f, &out.stdout).unwrap();
        let check = Command::new(shell).arg("-n").arg(&f).output().unwrap();
        assert!(
            check.status.success(),
            "{shell} -n: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(d);
}
