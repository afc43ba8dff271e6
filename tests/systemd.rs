//! `init --supervisor systemd` and `init --log syslog`.
//!
//! - `units_verify`: the unit `init` writes for each service (authdaemond
//!   included) passes `systemd-analyze verify`, and `--dry-run` printed the
//!   same lines; `--log file` is refused for systemd; a directory with a
//!   space is refused before anything is created.
//! - `runs_under_systemd`: systemd boots as PID 1 of a new PID and mount
//!   namespace (private /tmp, /run and journal; every unit that would touch
//!   the machine masked; see [`Systemd`]); the init-made authdaemond unit
//!   starts in it (MainPID: authdaemond); the init-made imapd unit, linked
//!   and enabled as `init` prints (with --runtime, so that nothing is
//!   written to /etc), starts;
//!   its MainPID is couriertcpd listening on the port; an IMAP login works
//!   (and one on imapd-ssl, pop3d and pop3d-ssl units, TLS included);
//!   the journal has the banner and the login, tagged imapd with facility
//!   mail, and journald forwards the login and a failed one to syslog so
//!   tagged (a test socket at the namespace's /run/systemd/journal/syslog); a config error shows in `journalctl -u`, and once the config is
//!   fixed the unit serves again by itself.
//! - `syslog_as_courierlogger`: the log/run of `init --log syslog` gets the
//!   service's output through a pipe, as a supervisor gives it, and sends
//!   a test syslog socket `<22>... imapd: LOGIN, user=...` and `imapd:
//!   LOGIN FAILED, ..., ip=[127.0.0.1]` (the `INFO:` prefix removed, as
//!   courierlogger does and fail2ban's courier-auth filter expects).
//! - `syslog_helper`: `courier-run syslog` alone: levels, a long line cut,
//!   a bad tag refused, undeliverable lines on stderr.
//! - `file_logs_rotate_as_contrib`: each supervisor's `--log file` log/run
//!   rotates at about 1 MB, as the service account.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::courier::{AUTHDAEMOND, Authdaemond, MailUser, login_on, says_port_taken, serve};
use common::systemd::Systemd;
use common::{BIN, TempDir, have, is_root, run, which, with_free_port};

const LIMIT: Duration = Duration::from_secs(30);

/// A directory for service directories outside /tmp (the namespace's /tmp
/// is its own), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let p = common::systemd::scratch_root().join(format!(
            "systemd-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `courier-run ARGS`: exit code, stdout then stderr.
fn courier_run(args: &[&str]) -> (i32, String) {
    courier_run_with(Path::new(BIN), args)
}

/// The same with another copy of the binary (one a unit can see).
fn courier_run_with(bin: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(bin);
    cmd.args(args);
    let out = run(cmd, Path::new("/"), LIMIT);
    (out.code.unwrap_or(-1), out.stdout_str() + &out.stderr_str())
}

#[test]
fn units_verify() {
    if !have(
        "systemd-analyze (systemd)",
        which("systemd-analyze").is_some(),
    ) {
        return;
    }
    let scratch = Scratch::new("verify");
    for svc in ["imapd", "imapd-ssl", "pop3d", "pop3d-ssl", "authdaemond"] {
        let d = scratch.0.join(svc);
        let s = d.to_str().unwrap();
        let args = ["init", s, "--supervisor", "systemd", "--service", svc];
        let (code, dry) = courier_run(&[&args[..], &["--dry-run"]].concat());
        assert_eq!(code, 0, "{dry}");
        assert!(!d.exists(), "--dry-run created {s}");
        let (code, text) = courier_run(&args);
        assert_eq!(code, 0, "{text}");
        assert_eq!(dry.replace("would create", "created"), text);
        let unit = d.join(format!("courier-run-{svc}.service"));
        assert!(
            text.contains(&format!(
                "start it with: systemctl link {} && systemctl enable --now courier-run-{svc}.service",
                unit.display()
            )),
            "{text}"
        );
        assert!(!d.join("log").exists(), "no log/ for systemd");
        // --man=no: the man page is not installed where the tests run.
        let mut cmd = Command::new("systemd-analyze");
        cmd.args(["verify", "--man=no"]).arg(&unit);
        let v = run(cmd, Path::new("/"), LIMIT);
        let said = v.stdout_str() + &v.stderr_str();
        assert_eq!(v.code, Some(0), "{svc}: {said}");
        assert!(
            !said.contains(&format!("courier-run-{svc}")),
            "{svc}: {said}"
        );
    }
    let d = scratch.0.join("file-log");
    let (code, text) = courier_run(&[
        "init",
        d.to_str().unwrap(),
        "--supervisor",
        "systemd",
        "--log",
        "file",
    ]);
    assert_eq!(code, 100, "{text}");
    assert!(text.contains("the journal"), "{text}");
    assert!(!d.exists());
    let d = scratch.0.join("a b");
    let (code, text) = courier_run(&["init", d.to_str().unwrap(), "--supervisor", "systemd"]);
    assert_eq!(code, 100, "{text}");
    assert!(text.contains("white space"), "{text}");
    assert!(!d.exists());
}

/// The inodes of the sockets listening on TCP `port`.
fn listening(port: u16) -> Vec<String> {
    let want = format!(":{port:04X}");
    let mut v = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() > 9 && w[1].ends_with(&want) && w[3] == "0A" {
                v.push(format!("socket:[{}]", w[9]));
            }
        }
    }
    v
}

/// `pid` (the machine's) holds the socket listening on `port`.
fn listens(pid: i32, port: u16) -> bool {
    let inodes = listening(port);
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .any(|l| inodes.iter().any(|i| l.as_os_str() == i.as_str()))
}

const UNIT: &str = "courier-run-imapd.service";

/// `m` is `head` then 127.0.0.1 as Courier logs it: plain (tcpserver) or
/// IPv4-mapped (couriertcpd binds IPv6 and IPv4 on one socket).
fn from_loopback(m: &str, head: &str) -> bool {
    ["127.0.0.1]", "::ffff:127.0.0.1]"]
        .iter()
        .any(|ip| m.starts_with(&format!("{head}{ip}")))
}

/// The unit's MainPID as the machine numbers it, once it is couriertcpd
/// listening on `port`; Err(journal) when the port was taken or nothing
/// listened within LIMIT.
fn listener(sd: &Systemd, unit: &str, port: u16) -> Result<i32, String> {
    let until = Instant::now() + LIMIT;
    loop {
        let main = sd.ctl(&["show", "-p", "MainPID", "--value", unit]);
        if let Ok(nspid) = main.trim().parse::<i32>()
            && nspid > 0
            && let Some(pid) = sd.host_pid(nspid)
            && listens(pid, port)
        {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            // init's layout=debian runs Debian's own front end.
            assert_eq!(
                comm.trim(),
                "couriertcpd",
                "MainPID {nspid} is not the listener"
            );
            return Ok(pid);
        }
        let log = sd.journal(UNIT);
        if says_port_taken(&log) || Instant::now() > until {
            return Err(log);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Replace `file` with `text` by rename, as an editor saves it: the unit,
/// restarting every second, never reads half a run file.
fn replace(file: &Path, text: &str) {
    let tmp = file.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

/// Link the unit of `dir` and enable it with --now, as `init` prints (with
/// --runtime: to the namespace's /run, not the machine's /etc), on a free
/// loopback port written into its run file: the port and the listener's
/// pid (the machine's).
#[track_caller]
fn start(sd: &Systemd, dir: &Path, unit: &str) -> (u16, i32) {
    sd.ok(&[
        "systemctl",
        "link",
        "--runtime",
        dir.join(unit).to_str().unwrap(),
    ]);
    let run_file = dir.join("run");
    let stock = std::fs::read_to_string(&run_file).unwrap();
    let mut first = true;
    with_free_port(|port| {
        replace(
            &run_file,
            &format!("{stock}address=127.0.0.1\nport={port}\n"),
        );
        if first {
            sd.ok(&["systemctl", "enable", "--runtime", "--now", unit]);
            first = false;
        } else {
            sd.ok(&["systemctl", "restart", unit]);
        }
        match listener(sd, unit, port) {
            Ok(pid) => Some((port, pid)),
            Err(log) if says_port_taken(&log) => None,
            Err(log) => panic!("{unit} did not listen on {port}:\n{log}"),
        }
    })
}

#[test]
fn runs_under_systemd() {
    let ok = is_root()
        && Path::new("/lib/systemd/systemd").exists()
        && which("unshare").is_some()
        && which("nsenter").is_some()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new(AUTHDAEMOND).exists()
        && Path::new("/usr/lib/tmpfiles.d/courier-authdaemon.conf").exists()
        && which("python3").is_some()
        && which("useradd").is_some();
    if !have(
        "root, systemd, unshare and nsenter (util-linux), courier-imap, courier-authdaemon, python3, useradd",
        ok,
    ) {
        return;
    }
    let started = Instant::now();
    let scratch = Scratch::new("unit");
    // The units run the binary that ran init: a copy they can see.
    let bin = common::systemd::bin_in(&scratch.0);
    let d = scratch.0.join("imapd");
    let s = d.to_str().unwrap();
    let (code, text) = courier_run_with(&bin, &["init", s, "--supervisor", "systemd"]);
    assert_eq!(code, 0, "{text}");
    let user = MailUser::new("sd");
    let sd = Systemd::boot();
    // authdaemond in the namespace (its socket is in the namespace's /run,
    // made by Debian's tmpfiles.d line): the init-made authdaemond unit,
    // which the imapd unit wants and is ordered after.
    sd.ok(&[
        "systemd-tmpfiles",
        "--create",
        "/usr/lib/tmpfiles.d/courier-authdaemon.conf",
    ]);
    let authd = scratch.0.join("authdaemond");
    let (code, text) = courier_run_with(
        &bin,
        &[
            "init",
            authd.to_str().unwrap(),
            "--supervisor",
            "systemd",
            "--service",
            "authdaemond",
        ],
    );
    assert_eq!(code, 0, "{text}");
    let authd_unit = "courier-run-authdaemond.service";
    sd.ok(&[
        "systemctl",
        "link",
        "--runtime",
        authd.join(authd_unit).to_str().unwrap(),
    ]);
    sd.ok(&["systemctl", "enable", "--runtime", "--now", authd_unit]);
    // Type=exec: started once courier-run is exec'd; it execs authdaemond
    // a moment later (until then comm is courier-run's).
    let until = Instant::now() + LIMIT;
    loop {
        let main = sd.ctl(&["show", "-p", "MainPID", "--value", authd_unit]);
        let comm = main
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(|p| sd.host_pid(p))
            .and_then(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).ok())
            .unwrap_or_default();
        if comm.trim() == "authdaemond" {
            break;
        }
        assert!(
            Instant::now() < until,
            "{authd_unit}'s MainPID is not authdaemond: {main} {comm}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let run_file = d.join("run");
    let stock = std::fs::read_to_string(&run_file).unwrap();
    let (port, pid) = start(&sd, &d, UNIT);
    // journald forwards to syslog (Debian's default, ForwardToSyslog=yes)
    // on /run/systemd/journal/syslog: the namespace's, reached through its
    // PID 1's root.
    let syslog =
        UnixDatagram::bind(format!("/proc/{}/root/run/systemd/journal/syslog", sd.init)).unwrap();
    let said = login_on("imap", port, &user, &|| sd.journal(UNIT));
    assert!(said.contains("messages 1"), "{said}");
    failed_login(port, &user.name);
    // Tag imapd (with journald's [pid]) and facility mail, as courierlogger
    // sends them; the line keeps Courier's INFO: prefix, which journald
    // does not read (docs/logging.md: the fail2ban filter for it).
    let tagged = |g: &str, what: &str| {
        g.strip_prefix("<22>")
            .and_then(|r| r.get(15..))
            .and_then(|r| r.strip_prefix(" imapd["))
            .and_then(|r| r.split_once("]: "))
            .is_some_and(|(_, m)| {
                from_loopback(m, &format!("INFO: {what}, user={}, ip=[", user.name))
            })
    };
    let mut got = Vec::new();
    let forwarded = received(&syslog, &mut got, |g| tagged(g, "LOGIN"))
        && received(&syslog, &mut got, |g| tagged(g, "LOGIN FAILED"));
    assert!(forwarded, "{got:#?}");
    // The journal: courier-run's banner, and the login line with
    // courierlogger's tag and facility mail (2).
    let log = sd.journal(UNIT);
    assert!(log.contains("*** Starting courier-imap service"), "{log}");
    let json = sd
        .ns(&["journalctl", "--no-pager", "-o", "json", "-u", UNIT])
        .1;
    let login = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| {
            v["MESSAGE"]
                .as_str()
                .is_some_and(|m| m.contains(&format!("LOGIN, user={}", user.name)))
        })
        .unwrap_or_else(|| panic!("no LOGIN line in the journal:\n{log}"));
    assert_eq!(login["SYSLOG_IDENTIFIER"], "imapd", "{login}");
    assert_eq!(login["SYSLOG_FACILITY"], "2", "{login}");
    // A config error: the unit fails, its message is in the journal.
    replace(
        &run_file,
        &format!("{stock}address=127.0.0.1\nport={port}\nbogus=1\n"),
    );
    sd.ok(&["systemctl", "restart", UNIT]);
    let until = Instant::now() + LIMIT;
    while !sd.journal(UNIT).contains("unknown setting bogus") {
        assert!(
            Instant::now() < until,
            "no config error in journalctl -u {UNIT}:\n{}",
            sd.journal(UNIT)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = sd.journal(UNIT);
    assert!(
        log.contains(&format!("courier-run: fatal: {}:", run_file.display())),
        "{log}"
    );
    // Fixed: the unit, restarted every second, serves again by itself.
    replace(
        &run_file,
        &format!("{stock}address=127.0.0.1\nport={port}\n"),
    );
    let again = listener(&sd, UNIT, port).unwrap_or_else(|log| panic!("not restarted:\n{log}"));
    assert_ne!(again, pid, "the listener was not restarted");
    let said = login_on("imap", port, &user, &|| sd.journal(UNIT));
    assert!(said.contains("messages 1"), "{said}");
    // The other services, TLS included, under the same sandboxing.
    for (svc, kind) in [
        ("imapd-ssl", "imaps"),
        ("pop3d", "pop3"),
        ("pop3d-ssl", "pop3s"),
    ] {
        let d = scratch.0.join(svc);
        let (code, text) = courier_run_with(
            &bin,
            &[
                "init",
                d.to_str().unwrap(),
                "--supervisor",
                "systemd",
                "--service",
                svc,
            ],
        );
        assert_eq!(code, 0, "{text}");
        let unit = format!("courier-run-{svc}.service");
        let (port, _) = start(&sd, &d, &unit);
        let said = login_on(kind, port, &user, &|| sd.journal(&unit));
        assert!(said.contains("messages 1"), "{svc}: {said}");
    }
    drop(sd);
    println!(
        "systemd in a namespace: booted, served, failed and recovered in {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------
// --log syslog.

/// Datagrams received on `sock` until one satisfies `want` (LIMIT at most).
fn received(sock: &UnixDatagram, got: &mut Vec<String>, want: impl Fn(&str) -> bool) -> bool {
    let until = Instant::now() + LIMIT;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < until {
        if got.iter().any(|g| want(g)) {
            return true;
        }
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    got.iter().any(|g| want(g))
}

/// `<PRI>Mmm dd hh:mm:ss TAG: MESSAGE` with PRI mail.LEVEL, as glibc's
/// syslog() sends it for courierlogger: the message, or None.
fn courierlogger_form<'a>(d: &'a str, pri: u8, tag: &str) -> Option<&'a str> {
    let rest = d.strip_prefix(&format!("<{pri}>"))?;
    let (stamp, rest) = rest.split_at_checked(15)?;
    let b = stamp.as_bytes();
    let ok = b[3] == b' ' && b[6] == b' ' && b[9] == b':' && b[12] == b':';
    rest.strip_prefix(&format!(" {tag}: ")).filter(|_| ok)
}

/// LOGIN with a wrong password on the plain IMAP `port`: the server says NO.
#[track_caller]
fn failed_login(port: u16, name: &str) {
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(LIMIT)).unwrap();
    let mut r = BufReader::new(c.try_clone().unwrap());
    let mut greeting = String::new();
    r.read_line(&mut greeting).unwrap();
    write!(c, "a LOGIN {name} wrong\r\n").unwrap();
    let mut answer = String::new();
    while !answer.starts_with("a ") {
        answer.clear();
        if r.read_line(&mut answer).unwrap() == 0 {
            break;
        }
    }
    assert!(answer.starts_with("a NO"), "{greeting}{answer}");
}

#[test]
fn syslog_as_courierlogger() {
    let ok = is_root()
        && which("setuidgid").is_some()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new(AUTHDAEMOND).exists()
        && which("python3").is_some()
        && which("useradd").is_some()
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some();
    if !have(
        "root, daemontools' setuidgid, courier-imap, courier-authdaemon, python3, useradd and the courier account",
        ok,
    ) {
        return;
    }
    let scratch = TempDir::new("syslog");
    let d = scratch.join("imapd");
    let (code, text) = courier_run(&["init", d.to_str().unwrap(), "--log", "syslog"]);
    assert_eq!(code, 0, "{text}");
    assert!(!d.join("log/main").exists(), "{text}");
    let log_run = std::fs::read_to_string(d.join("log/run")).unwrap();
    let exec = log_run
        .lines()
        .find(|l| l.starts_with("exec "))
        .unwrap()
        .to_string();
    assert_eq!(exec, format!("exec setuidgid courier {BIN} syslog imapd"));
    // The test's syslog socket, which the logger (as courier) may write to.
    let sock_path = scratch.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    std::fs::set_permissions(&sock_path, std::fs::Permissions::from_mode(0o666)).unwrap();
    let _authdaemond = Authdaemond::start();
    let user = MailUser::new("sl");
    // The pipe a supervisor makes between ./run and ./log/run: log/run's
    // own command, pointed at the test socket instead of /dev/log.
    let fifo = scratch.join("pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut logger = Command::new("sh")
        .arg("-c")
        .arg(format!("{exec} --socket \"$1\" <\"$2\""))
        .arg("sh")
        .arg(&sock_path)
        .arg(&fifo)
        .current_dir(d.join("log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A writer held by the test: the logger sees the end of its input only
    // when the test is done, not when a start on a taken port exits.
    let hold = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let served = serve(
        |port| {
            let mut cmd = Command::new("sh");
            cmd.arg("-c")
                .arg("exec \"$0\" ./run --set address=127.0.0.1 --set port=\"$1\" >\"$2\" 2>&1")
                .arg(BIN)
                .arg(port.to_string())
                .arg(&fifo)
                .current_dir(&d);
            cmd
        },
        Duration::from_secs(10),
    );
    let port = served.port;
    let said = login_on("imap", port, &user, &String::new);
    assert!(said.contains("messages 1"), "{said}");
    // A failed login, fail2ban's pattern.
    failed_login(port, &user.name);
    let name = user.name.clone();
    let good = |g: &str| {
        courierlogger_form(g, 22, "imapd")
            .is_some_and(|m| from_loopback(m, &format!("LOGIN, user={name}, ip=[")))
    };
    let failed = |g: &str| {
        courierlogger_form(g, 22, "imapd")
            .is_some_and(|m| from_loopback(m, &format!("LOGIN FAILED, user={name}, ip=[")))
    };
    let mut got = Vec::new();
    assert!(received(&sock, &mut got, good), "{got:#?}");
    assert!(received(&sock, &mut got, failed), "{got:#?}");
    assert!(
        got.iter().all(|g| !g.contains(": INFO:")),
        "a prefix was left: {got:#?}"
    );
    drop(served);
    drop(hold);
    // The service gone, the pipe closes and the logger ends.
    let until = Instant::now() + LIMIT;
    while matches!(logger.try_wait(), Ok(None)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = logger.kill();
    let status = logger.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut logger.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "the logger: {status} {err}");
    assert!(err.is_empty(), "lines the logger could not send: {err}");
}

// ---------------------------------------------------------------------------
// --log file.

/// The log/run of `init` (`--log file`, the default) under each supervisor
/// keeps contrib's rotation: fed 2.5 MB, it leaves rotated files of more
/// than the loggers' default 99999 bytes and of about 1 MB (s6-log
/// checks the size after a buffer, not a line: a few kB over), owned by
/// the service account.
#[test]
fn file_logs_rotate_as_contrib() {
    let tools = [
        "setuidgid",
        "multilog",
        "chpst",
        "svlogd",
        "s6-setuidgid",
        "s6-log",
    ];
    let ok = is_root()
        && tools.iter().all(|t| which(t).is_some())
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some();
    if !have(
        &format!("root, the courier account and {tools:?} (daemontools, runit, s6)"),
        ok,
    ) {
        return;
    }
    let courier = nix::unistd::User::from_name("courier").unwrap().unwrap();
    let scratch = TempDir::new("filelog");
    let line = format!(
        "INFO: LOGIN, user=someone, ip=[127.0.0.1] {}\n",
        "x".repeat(60)
    );
    let input = line.repeat(2_500_000 / line.len());
    for sup in ["daemontools", "runit", "s6"] {
        let d = scratch.join(sup);
        let (code, text) = courier_run(&[
            "init",
            d.to_str().unwrap(),
            "--supervisor",
            sup,
            "--log",
            "file",
        ]);
        assert_eq!(code, 0, "{text}");
        let mut logger = Command::new("sh")
            .arg("./run")
            .current_dir(d.join("log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        logger
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let until = Instant::now() + LIMIT;
        while matches!(logger.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = logger.kill();
        let st = logger.wait().unwrap();
        assert!(st.success(), "{sup}'s log/run: {st}");
        let main = d.join("log/main");
        let mut rotated = 0;
        for e in std::fs::read_dir(&main).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = e.metadata().unwrap();
            if name.starts_with('@') {
                rotated += 1;
                assert!(
                    meta.len() > 99_999 && meta.len() <= 1_000_000 + 8192,
                    "{sup}: {name} has {} bytes",
                    meta.len()
                );
            }
            if name == "current" || name.starts_with('@') {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(meta.uid(), courier.uid.as_raw(), "{sup}: {name}");
            }
        }
        assert!(rotated >= 2, "{sup}: {rotated} rotated files");
        let current = std::fs::read_to_string(main.join("current")).unwrap();
        assert!(current.contains("LOGIN, user=someone"), "{sup}");
    }
}

/// `courier-run syslog` on its own: a level per prefix, a long line cut at
/// 8192 bytes and the next line intact, a bad tag refused (100), and lines
/// that cannot be sent (no socket) written to stderr, the logger going on.
#[test]
fn syslog_helper() {
    let scratch = TempDir::new("syslog-helper");
    let sock_path = scratch.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let input = format!(
        "INFO: {}\nERR: second\nWARN:third\nplain",
        "x".repeat(20000)
    );
    let send = |args: &[&str], input: &str| {
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = send(
        &["syslog", "imapd", "--socket", sock_path.to_str().unwrap()],
        &input,
    );
    assert_eq!((code, err.as_str()), (Some(0), ""));
    sock.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = vec![0u8; 65536];
    let got: Vec<String> = (0..4)
        .map(|_| {
            let n = sock.recv(&mut buf).unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        })
        .collect();
    let msgs: Vec<(u8, String)> = got
        .iter()
        .map(|g| {
            let pri: u8 = g[1..g.find('>').unwrap()].parse().unwrap();
            (
                pri,
                courierlogger_form(g, pri, "imapd").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(msgs.len(), 4, "{msgs:?}");
    assert_eq!(msgs[0], (22, "x".repeat(8192 - "INFO: ".len())));
    assert_eq!(msgs[1], (19, "second".to_string()));
    assert_eq!(msgs[2], (20, "third".to_string()));
    assert_eq!(msgs[3], (22, "plain".to_string()));
    let (code, err) = send(&["syslog", "im apd"], "");
    assert_eq!(code, Some(100), "{err}");
    let gone = scratch.join("gone.sock");
    let (code, err) = send(
        &["syslog", "pop3d", "--socket", gone.to_str().unwrap()],
        "INFO: one\ntwo\n",
    );
    assert_eq!(
        (code, err.as_str()),
        (Some(0), "pop3d: INFO: one\npop3d: two\n")
    );
}
