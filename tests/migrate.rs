//! `courier-run migrate DEST --supervisor S`.
//!
//! - `dry_run_writes_nothing`: on this machine's stock Debian Courier,
//!   `--dry-run` for each supervisor leaves DEST's parent as it was (a
//!   recursive snapshot) and prints what init would create and the
//!   switch-over and switch-back commands.
//! - `each_supervisor_passes_check`: `migrate` for each supervisor makes
//!   one directory per enabled service plus authdaemond, and `./run
//!   --check` in each has no FAIL but authdaemond's socket (held by the
//!   test's authdaemond, as Debian's holds it until the switch-over); a
//!   second run, and a DEST holding something else, are refused (100).
//! - `daemontools_serves_and_keeps_deny`: a config dir (a copy of
//!   /etc/courier with only imapd enabled, its port free, IMAPACCESSFILE a
//!   test list holding `127.0.0.2 deny`): the migrated imapd under
//!   supervise serves a login from 127.0.0.1 and drops a connection from
//!   127.0.0.2 without a greeting.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::courier::{AUTHDAEMOND, Authdaemond, MailUser, listens, login_on, says_port_taken};
use common::{BIN, TempDir, have, is_root, run, tree, which, with_free_port};

const LIMIT: Duration = Duration::from_secs(60);

/// `courier-run ARGS`: exit code, stdout then stderr.
fn courier_run(args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    let r = run(cmd, Path::new("/"), LIMIT);
    (r.code.unwrap_or(-1), r.stdout_str() + &r.stderr_str())
}

fn courier_ok() -> bool {
    is_root()
        && Path::new("/etc/courier/imapd").exists()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new(AUTHDAEMOND).exists()
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some()
}

const SUPERVISORS: [&str; 4] = ["daemontools", "runit", "s6", "systemd"];

/// The lines of a section of migrate's output that are commands.
fn commands(out: &str, heading: &str) -> Vec<String> {
    out.split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or("")
        .lines()
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect()
}

const OVER: &str = "To switch over, run as root, in this order:";
const BACK: &str = "To switch back:";

#[test]
fn dry_run_writes_nothing() {
    if !have(
        "root, courier-imap, courier-authdaemon and the courier account",
        courier_ok(),
    ) {
        return;
    }
    let scratch = TempDir::new("migrate-dry");
    for sup in SUPERVISORS {
        let dest = scratch.join(format!("{sup}-dest"));
        let before = tree(scratch.path());
        let (code, out) = courier_run(&[
            "migrate",
            dest.to_str().unwrap(),
            "--supervisor",
            sup,
            "--dry-run",
        ]);
        assert_eq!(code, 0, "{sup}: {out}");
        assert_eq!(before, tree(scratch.path()), "{sup}: --dry-run wrote");
        let d = dest.to_str().unwrap();
        for svc in ["authdaemond", "imapd"] {
            assert!(
                out.contains(&format!("would create {d}/courier-{svc}/run (mode 755)")),
                "{sup}: {out}"
            );
        }
        let over = commands(&out, OVER);
        let disable = over
            .iter()
            .find(|l| l.starts_with("systemctl disable --now "))
            .unwrap_or_else(|| panic!("{sup}: no disable: {out}"));
        assert!(
            disable.ends_with(" courier-imap.service courier-authdaemon.service"),
            "{disable}"
        );
        let links: Vec<&String> = over
            .iter()
            .filter(|l| l.starts_with("ln -s ") || l.starts_with("systemctl link "))
            .collect();
        assert!(
            links[0].contains("courier-authdaemond"),
            "{sup}: authdaemond first: {links:?}"
        );
        let back = commands(&out, BACK);
        assert!(
            back.last().unwrap().starts_with(
                "systemctl enable --now courier-authdaemon.service courier-imap.service"
            ),
            "{sup}: {back:?}"
        );
        assert!(out.contains("--dry-run: nothing was created"), "{out}");
    }
}

/// The FAIL lines of a --check that are about authdaemond's socket: held by
/// another authdaemond (the test's, as Debian's until the switch-over).
fn authdaemond_line(l: &str) -> bool {
    l.starts_with("FAIL authdaemond") || l.starts_with("FAIL socket ")
}

#[test]
fn each_supervisor_passes_check() {
    if !have(
        "root, courier-imap, courier-authdaemon and the courier account",
        courier_ok(),
    ) {
        return;
    }
    let _authd = Authdaemond::start();
    let scratch = TempDir::new("migrate-check");
    for sup in SUPERVISORS {
        let dest = scratch.join(format!("{sup}-dest"));
        let d = dest.to_str().unwrap();
        let (code, out) = courier_run(&["migrate", d, "--supervisor", sup]);
        assert_eq!(code, 0, "{sup}: {out}");
        let mut made = common::list(&dest);
        made.sort();
        // The stock config enables all four (IMAPDSTART=YES, ...).
        assert_eq!(
            made,
            [
                "courier-authdaemond",
                "courier-imapd",
                "courier-imapd-ssl",
                "courier-pop3d",
                "courier-pop3d-ssl"
            ],
            "{sup}: {out}"
        );
        for name in &made {
            let dir = dest.join(name);
            let mut cmd = Command::new(BIN);
            cmd.args(["./run", "--check"]).current_dir(&dir);
            let r = run(cmd, Path::new("/"), LIMIT);
            let text = r.stdout_str() + &r.stderr_str();
            for l in text.lines().filter(|l| l.starts_with("FAIL")) {
                assert!(authdaemond_line(l), "{sup} {name}: {l}\n{text}");
            }
            if sup == "systemd" {
                let svc = name.trim_start_matches("courier-");
                assert!(dir.join(format!("courier-run-{svc}.service")).exists());
            }
        }
        assert!(commands(&out, OVER).len() >= 6, "{out}");
        // Again: init never overwrites, and says so before creating.
        let (code, again) = courier_run(&["migrate", d, "--supervisor", sup]);
        assert_eq!(code, 100, "{again}");
        assert!(again.contains("init never overwrites"), "{again}");
    }
    // A DEST holding something migrate did not make.
    let other = scratch.join("other");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("notes.txt"), "x").unwrap();
    let (code, out) = courier_run(&["migrate", other.to_str().unwrap(), "--supervisor", "runit"]);
    assert_eq!(code, 100, "{out}");
    assert!(out.contains("DEST holds notes.txt"), "{out}");
    assert!(
        out.contains("move it away, or pick a new or empty DEST"),
        "{out}"
    );
    assert_eq!(common::list(&other), ["notes.txt"]);
}

/// A copy of /etc/courier in `dir` with `changes` appended to the named
/// files (a later assignment wins, as in sh).
fn config_copy(dir: &Path, changes: &[(&str, String)]) {
    for f in ["imapd", "imapd-ssl", "pop3d", "pop3d-ssl", "authdaemonrc"] {
        let mut text = fs::read_to_string(Path::new("/etc/courier").join(f)).unwrap_or_default();
        for (name, extra) in changes {
            if *name == f {
                text.push_str(&format!("\n{extra}\n"));
            }
        }
        fs::write(dir.join(f), text).unwrap();
    }
}

/// supervise running a service directory; `svc -dx` and SIGKILL on drop.
struct Supervised {
    dir: PathBuf,
    child: Child,
    log: PathBuf,
}

impl Supervised {
    fn start(dir: &Path, log: &Path) -> Supervised {
        let out = fs::File::create(log).unwrap();
        let child = Command::new("supervise")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .expect("supervise starts");
        Supervised {
            dir: dir.to_path_buf(),
            child,
            log: log.to_path_buf(),
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The service's pid as svstat reports it, once it listens on `port`.
    fn listener(&self, port: u16) -> Result<u32, String> {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new("svstat").arg(&self.dir).output().unwrap();
            let s = String::from_utf8_lossy(&out.stdout).into_owned();
            if let Some(pid) = s
                .split_once("(pid ")
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(p, _)| p.parse::<u32>().ok())
                && listens(pid, port)
            {
                return Ok(pid);
            }
            let log = self.output();
            if says_port_taken(&log) || Instant::now() > until {
                return Err(log);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let _ = Command::new("svc").arg("-dx").arg(&self.dir).status();
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
    }
}

/// What the server says first to a connection from the local address
/// `from` (any of 127/8 is this machine's; python3 binds it before
/// connecting): its greeting, or "" when it closes the connection without
/// one.
fn greeting(from: &str, port: u16) -> String {
    const PY: &str = "import socket, sys\n\
s = socket.socket()\n\
s.bind((sys.argv[1], 0))\n\
s.settimeout(10)\n\
s.connect(('127.0.0.1', int(sys.argv[2])))\n\
try:\n    sys.stdout.write(s.recv(256).decode('latin-1'))\n\
except OSError as e:\n    sys.stdout.write('')\n";
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PY, from, &port.to_string()]);
    let r = run(cmd, Path::new("/"), LIMIT);
    r.stdout_str()
}

#[test]
fn daemontools_serves_and_keeps_deny() {
    let ok = courier_ok()
        && which("supervise").is_some()
        && which("svstat").is_some()
        && which("couriertcpd").is_some()
        && which("python3").is_some()
        && which("useradd").is_some();
    if !have(
        "root, daemontools, courier-imap (couriertcpd), courier-authdaemon, python3, useradd",
        ok,
    ) {
        return;
    }
    let _authd = Authdaemond::start();
    let user = MailUser::new("mig");
    let scratch = TempDir::new("migrate-serve");
    let cfg = scratch.join("etc");
    fs::create_dir(&cfg).unwrap();
    // Courier's access list may be a directory of files (Debian's is):
    // makedat reads them all. The deny rule is what must survive.
    let access = cfg.join("imapaccess");
    fs::create_dir(&access).unwrap();
    fs::write(access.join("test"), "127.0.0.2\tdeny\n*\tallow\n").unwrap();
    let write_config = |port: u16| {
        config_copy(
            &cfg,
            &[
                (
                    "imapd",
                    format!(
                        "PORT={port}\nADDRESS=127.0.0.1\nIMAPACCESSFILE={}",
                        access.display()
                    ),
                ),
                ("imapd-ssl", "IMAPDSSLSTART=NO".into()),
                ("pop3d", "POP3DSTART=NO".into()),
                ("pop3d-ssl", "POP3DSSLSTART=NO".into()),
            ],
        )
    };
    // A first config for migrate to read (the port is set again below,
    // in the config the run file reads, each time one is tried).
    write_config(143);
    let dest = scratch.join("dest");
    let (code, out) = courier_run(&[
        "migrate",
        dest.to_str().unwrap(),
        "--supervisor",
        "daemontools",
        "--config-dir",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("imapd-ssl: left out: IMAPDSSLSTART=NO"),
        "{out}"
    );
    assert!(out.contains("pop3d: left out: POP3DSTART=NO"), "{out}");
    assert!(
        out.contains(&format!(
            "access list: kept from the config: IMAPACCESSFILE={}",
            access.display()
        )),
        "{out}"
    );
    assert_eq!(
        common::list(&dest),
        ["courier-authdaemond", "courier-imapd"]
    );
    let imapd = dest.join("courier-imapd");
    let run_file = fs::read_to_string(imapd.join("run")).unwrap();
    assert!(
        run_file.contains(&format!(
            "config='{}/imapd {}/imapd-ssl'",
            cfg.display(),
            cfg.display()
        )),
        "{run_file}"
    );
    let (sup, port) = with_free_port(|port| {
        write_config(port);
        let sup = Supervised::start(&imapd, &scratch.join(format!("supervise-{port}.log")));
        match sup.listener(port) {
            Ok(_) => Some((sup, port)),
            Err(log) if says_port_taken(&log) => None,
            Err(log) => panic!("the migrated imapd did not listen on {port}:\n{log}"),
        }
    });
    let said = login_on("imap", port, &user, &|| sup.output());
    assert!(said.contains("messages 1"), "{said}");
    assert!(greeting("127.0.0.1", port).starts_with("* OK"));
    let denied = greeting("127.0.0.2", port);
    assert!(
        !denied.contains("* OK"),
        "127.0.0.2 is denied in IMAPACCESSFILE, yet got: {denied}\n{}",
        sup.output()
    );
    // couriertcpd read the list the config names, built beside it.
    assert!(access.with_extension("dat").exists() || cfg.join("imapaccess.dat").exists());
}
