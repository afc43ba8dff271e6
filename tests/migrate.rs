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
//! - `systemd_switch_over_in_a_namespace`: in systemd as PID 1 of a PID,
//!   mount and network namespace (private /etc/systemd/system, /etc/courier,
//!   /var/lib/courier), Debian's courier-imap.service holds 143; the
//!   printed switch-over commands, run line by line, leave 143 held by
//!   courier-run-imapd.service's MainPID (couriertcpd), Debian's units
//!   inactive and disabled, ours enabled, and a login on 143 works through
//!   the migrated authdaemond; the switch-back commands give 143 back to
//!   Debian's unit and unlink ours.
//! - `refusals_before_anything`: a config with a syntax error (its
//!   FILE:LINE:COL), a missing config dir, `--log file` under systemd: 100,
//!   nothing created.
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
use common::systemd::Systemd;
use common::{BIN, TempDir, have, is_root, run, tree, which, with_free_port};

const LIMIT: Duration = Duration::from_secs(60);

/// `courier-run ARGS`: exit code, stdout then stderr.
fn courier_run(args: &[&str]) -> (i32, String) {
    courier_run_with(Path::new(BIN), args)
}

/// The same with another copy of the binary (one a unit can see).
fn courier_run_with(bin: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(bin);
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
        // A boot unit for the scan directory (s6 always; daemontools where
        // /etc/service is runit's): the printed text, written here instead
        // of /etc/systemd/system, passes systemd-analyze verify.
        for l in over.iter().filter(|l| l.starts_with("printf ")) {
            let (cmd, target) = l.rsplit_once(" > ").unwrap();
            let name = Path::new(target).file_name().unwrap();
            let unit = scratch.join(name);
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(format!("{cmd} > \"$1\""))
                .arg("sh")
                .arg(&unit);
            assert_eq!(run(sh, Path::new("/"), LIMIT).code, Some(0), "{l}");
            if which("systemd-analyze").is_some() {
                let mut v = Command::new("systemd-analyze");
                v.arg("verify").arg(&unit);
                let r = run(v, Path::new("/"), LIMIT);
                assert_eq!(r.code, Some(0), "{l}: {}{}", r.stdout_str(), r.stderr_str());
            }
            let text = fs::read_to_string(&unit).unwrap();
            assert!(text.contains("\nRestart=always\n"), "{text}");
            fs::remove_file(&unit).unwrap();
        }
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
        let (code, dry) = courier_run(&["migrate", d, "--supervisor", sup, "--dry-run"]);
        assert_eq!(code, 0, "{sup}: {dry}");
        let (code, out) = courier_run(&["migrate", d, "--supervisor", sup]);
        assert_eq!(code, 0, "{sup}: {out}");
        // What --dry-run said is what was done, in the same order.
        let said: Vec<String> = dry
            .lines()
            .filter_map(|l| l.strip_prefix("would create "))
            .map(|l| format!("created {l}"))
            .collect();
        let done: Vec<&str> = out.lines().filter(|l| l.starts_with("created ")).collect();
        assert_eq!(said, done, "{sup}");
        assert_eq!(commands(&dry, OVER), commands(&out, OVER), "{sup}");
        assert_eq!(commands(&dry, BACK), commands(&out, BACK), "{sup}");
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
    /// Down and exit, as an admin would (`svc -dx`), waiting (bounded) for
    /// supervise to see its service go; then whatever is left is killed:
    /// supervise's group, and the service by its pid (couriertcpd runs in
    /// a session of its own, out of supervise's group).
    fn drop(&mut self) {
        let status = Command::new("svstat").arg(&self.dir).output();
        let pid = status.ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_once("(pid ")
                .and_then(|(_, r)| r.split_once(')'))
                .and_then(|(p, _)| p.parse::<i32>().ok())
        });
        let _ = Command::new("svc").arg("-dx").arg(&self.dir).status();
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.child.wait();
        if let Some(pid) = pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
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
                        // IMAPDSTART in lower case, as Debian's init.d script reads it.
                        "PORT={port}\nADDRESS=127.0.0.1\nIMAPACCESSFILE={}\nIMAPDSTART=yes",
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
    assert!(out.contains("  imapd: IMAPDSTART=yes ("), "{out}");
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

/// A directory for service directories outside /tmp (the namespace's /tmp
/// is its own), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = common::systemd::scratch_root().join(format!(
            "migrate-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `pid` (the machine's numbering) holds a socket listening on TCP `port`
/// in its own network namespace (/proc/PID/net is that namespace's).
fn listens_in_ns(pid: i32, port: u16) -> bool {
    let want = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for f in ["tcp", "tcp6"] {
        let table = fs::read_to_string(format!("/proc/{pid}/net/{f}")).unwrap_or_default();
        for line in table.lines().skip(1) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() > 9 && w[1].ends_with(&want) && w[3] == "0A" {
                inodes.push(format!("socket:[{}]", w[9]));
            }
        }
    }
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
}

/// A unit's MainPID as the machine numbers it, once it listens on `port`
/// (in the namespace) and is `comm`; Err(journal) after LIMIT.
fn unit_listener(sd: &Systemd, unit: &str, port: u16, comm: &str) -> Result<i32, String> {
    let until = Instant::now() + LIMIT;
    loop {
        let main = sd.ctl(&["show", "-p", "MainPID", "--value", unit]);
        if let Ok(nspid) = main.trim().parse::<i32>()
            && nspid > 0
            && let Some(pid) = sd.host_pid(nspid)
            && listens_in_ns(pid, port)
            && fs::read_to_string(format!("/proc/{pid}/comm"))
                .unwrap_or_default()
                .trim()
                == comm
        {
            return Ok(pid);
        }
        if Instant::now() > until {
            return Err(format!("{main}\n{}", sd.journal(unit)));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// IMAP login on 127.0.0.1:143 inside the namespace (STARTTLS, as Debian's
/// config offers it): the number of messages in INBOX.
const NS_LOGIN: &str = "import imaplib, ssl, sys\n\
ctx = ssl.create_default_context()\n\
ctx.check_hostname = False\n\
ctx.verify_mode = ssl.CERT_NONE\n\
c = imaplib.IMAP4('127.0.0.1', 143, timeout=10)\n\
c.starttls(ssl_context=ctx)\n\
c.login(sys.argv[1], sys.argv[2])\n\
print('messages %s' % c.select('INBOX')[1][0].decode())\n\
c.logout()\n";

#[test]
fn systemd_switch_over_in_a_namespace() {
    let ok = courier_ok()
        && Path::new("/lib/systemd/systemd").exists()
        && Path::new("/lib/systemd/system/courier-imap.service").exists()
        && Path::new("/usr/lib/tmpfiles.d/courier-authdaemon.conf").exists()
        && which("unshare").is_some()
        && which("nsenter").is_some()
        && which("ip").is_some()
        && which("python3").is_some()
        && which("useradd").is_some();
    if !have(
        "root, systemd, util-linux, iproute2, courier-imap, courier-authdaemon, python3, useradd",
        ok,
    ) {
        return;
    }
    let started = Instant::now();
    let scratch = Scratch::new("sd");
    // The units run the binary that ran migrate: a copy they can see.
    let bin = common::systemd::bin_in(&scratch.0);
    let dest = scratch.0.join("dest");
    let (code, out) = courier_run_with(
        &bin,
        &["migrate", dest.to_str().unwrap(), "--supervisor", "systemd"],
    );
    assert_eq!(code, 0, "{out}");
    let over = commands(&out, OVER);
    let back = commands(&out, BACK);
    let user = MailUser::new("msd");
    // Its own /etc/systemd/system (link, enable and disable write there),
    // /etc/courier and /var/lib/courier (Debian's rc and the launch write
    // the access list's .dat and the TLS cache), and its own network: 143
    // is the namespace's.
    let sd = Systemd::boot_with(
        &["/etc/systemd/system", "/etc/courier", "/var/lib/courier"],
        true,
    );
    sd.ok(&[
        "systemd-tmpfiles",
        "--create",
        "/usr/lib/tmpfiles.d/courier-authdaemon.conf",
    ]);
    // Before: Debian's units hold 143 (and authdaemond's socket).
    sd.ok(&["systemctl", "start", "courier-imap.service"]);
    let until = Instant::now() + LIMIT;
    while !listens_in_any(&sd, 143) {
        assert!(
            Instant::now() < until,
            "Debian's courier-imap.service did not listen on 143:\n{}",
            sd.journal("courier-imap.service")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The switch-over, as printed, line by line.
    for line in &over {
        sd.ok(&["sh", "-c", line]);
    }
    let pid = unit_listener(&sd, "courier-run-imapd.service", 143, "couriertcpd")
        .unwrap_or_else(|log| panic!("143 is not the migrated imapd's:\n{log}"));
    // For the record (shown with --nocapture).
    println!(
        "{}",
        sd.ctl(&["status", "--lines=5", "courier-run-imapd.service"])
    );
    for unit in ["courier-imap.service", "courier-authdaemon.service"] {
        assert_eq!(sd.ctl(&["is-active", unit]).trim(), "inactive", "{unit}");
        assert_eq!(sd.ctl(&["is-enabled", unit]).trim(), "disabled", "{unit}");
    }
    for svc in ["authdaemond", "imapd", "imapd-ssl", "pop3d", "pop3d-ssl"] {
        let unit = format!("courier-run-{svc}.service");
        assert_eq!(sd.ctl(&["is-enabled", &unit]).trim(), "enabled", "{unit}");
    }
    // A login on 143 through the migrated authdaemond (its first answers
    // after a start may be "Temporary problem": retried).
    let mut said = String::new();
    for _ in 0..10 {
        let (code, o) = sd.ns(&["python3", "-c", NS_LOGIN, &user.name, &user.password]);
        said = o;
        if code == Some(0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        said.contains("messages 1"),
        "login on 143: {said}\n{}",
        sd.journal("courier-run-imapd.service")
    );
    // And back, as printed: Debian's units hold 143 again, ours are gone.
    for line in &back {
        sd.ok(&["sh", "-c", line]);
    }
    let until = Instant::now() + LIMIT;
    while sd.ctl(&["is-active", "courier-imap.service"]).trim() != "active"
        || listens_in_ns(pid, 143)
        || !listens_in_any(&sd, 143)
    {
        assert!(
            Instant::now() < until,
            "after switching back:\n{}",
            sd.journal("courier-imap.service")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // `systemctl disable` removed the link `systemctl link` made.
    let state = sd.ctl(&["is-enabled", "courier-run-imapd.service"]);
    assert!(state.contains("No such file"), "still linked: {state}");
    drop(sd);
    println!(
        "migrate --supervisor systemd: switched over and back in a namespace in {:?}",
        started.elapsed()
    );
}

/// Something in the namespace listens on TCP `port`.
fn listens_in_any(sd: &Systemd, port: u16) -> bool {
    let want = format!(":{port:04X}");
    ["tcp", "tcp6"].iter().any(|f| {
        fs::read_to_string(format!("/proc/{}/net/{f}", sd.init))
            .unwrap_or_default()
            .lines()
            .skip(1)
            .any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.len() > 3 && w[1].ends_with(&want) && w[3] == "0A"
            })
    })
}

/// Refused (100) before anything is created: a config the shell could not
/// source (FILE:LINE:COL), a config dir that is not one, `--log file`
/// under systemd.
#[test]
fn refusals_before_anything() {
    if !have(
        "root, courier-imap, courier-authdaemon and the courier account",
        courier_ok(),
    ) {
        return;
    }
    let scratch = TempDir::new("migrate-refuse");
    let cfg = scratch.join("etc");
    fs::create_dir(&cfg).unwrap();
    config_copy(&cfg, &[("imapd", "FOO=\"unterminated".into())]);
    let dest = scratch.join("dest");
    let d = dest.to_str().unwrap();
    let (code, out) = courier_run(&[
        "migrate",
        d,
        "--supervisor",
        "runit",
        "--config-dir",
        cfg.to_str().unwrap(),
    ]);
    assert_eq!(code, 100, "{out}");
    assert!(
        out.contains(&format!("{}/imapd:", cfg.display()))
            && out.contains("unterminated double quote")
            && out.contains("fix the config, then run migrate again"),
        "{out}"
    );
    let missing = scratch.join("none");
    let (code, out) = courier_run(&[
        "migrate",
        d,
        "--supervisor",
        "runit",
        "--config-dir",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(code, 100, "{out}");
    assert!(out.contains("not a directory"), "{out}");
    let (code, out) = courier_run(&["migrate", d, "--supervisor", "systemd", "--log", "file"]);
    assert_eq!(code, 100, "{out}");
    assert!(out.contains("--log file"), "{out}");
    assert!(!dest.exists(), "a refused migrate created {d}");
}
