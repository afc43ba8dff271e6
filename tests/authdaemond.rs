//! `service=authdaemond` under a supervisor, and the ordering of a mail
//! service after it (`wait_authdaemond=yes`), end to end, with the service
//! directories `courier-run init` makes:
//!
//! 1. the test runs again in a mount namespace of its own whose
//!    authdaemond directory is a fresh tmpfs (the machine's authdaemond
//!    and the tests using it are left alone); where `unshare -m` is not
//!    allowed, the machine's authdaemond is stopped instead (and Debian's
//!    restarted after: common's `AuthdaemondAway`);
//! 2. imapd is started first: while no authdaemond accepts, it is never
//!    up for a second, its port never accepts, and its log shows the
//!    launch exiting 111 again and again (the supervisor retrying);
//! 3. authdaemond is started as a service: the supervisor's pid is the
//!    pid holding authdaemond's socket (the daemon, not courierlogger);
//!    `--check` says the socket is held by this service, and a second
//!    authdaemond service's `--check` says it is taken;
//! 4. imapd comes up by itself (the supervisor's next retry), its pid is
//!    the listener's, and a login through authdaemond works (Python's
//!    imaplib, STARTTLS as Debian's config offers it).
//!
//! Under daemontools' supervise, runit's runsv and s6-supervise. One
//! test: all use the machine's one authdaemond socket.

mod common;

use std::fs;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::courier::{
    AUTHDAEMON_SOCKET, AUTHDAEMOND, AuthdaemondAway, MailUser, authdaemond_answers,
    authdaemond_pid, ensure_authdaemon_dir, listens, login_on,
};
use common::{BIN, Ran, TempDir, have, run, which};

const LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
enum Sup {
    Daemontools,
    Runit,
    S6,
}

/// What the supervisor says about a service.
#[derive(Debug)]
struct Status {
    up: bool,
    pid: Option<u32>,
    secs: u64,
    raw: String,
}

impl Sup {
    fn name(self) -> &'static str {
        match self {
            Sup::Daemontools => "daemontools",
            Sup::Runit => "runit",
            Sup::S6 => "s6",
        }
    }

    fn programs(self) -> &'static [&'static str] {
        match self {
            Sup::Daemontools => &["supervise", "svstat", "svc"],
            Sup::Runit => &["runsv", "sv", "svlogd", "chpst"],
            Sup::S6 => &["s6-supervise", "s6-svstat", "s6-svc"],
        }
    }

    /// `svstat DIR`: "DIR: up (pid 123) 5 seconds", "DIR: down 1 seconds,
    /// normally up"; `sv status DIR`: "run: DIR: (pid 123) 5s; run: log:
    /// ...", "down: DIR: 1s, normally up"; `s6-svstat DIR`: "up (pid 123)
    /// 5 seconds", "down (exit status 111) 0 seconds, normally up, ...".
    fn status(self, dir: &Path) -> Status {
        let mut cmd = match self {
            Sup::Daemontools => Command::new("svstat"),
            Sup::S6 => Command::new("s6-svstat"),
            Sup::Runit => {
                let mut c = Command::new("sv");
                c.arg("status");
                c
            }
        };
        cmd.arg(dir);
        let raw = ran(cmd).stdout_str();
        let first = raw.split(';').next().unwrap_or("").to_string();
        let rest = first
            .strip_prefix(&format!("{}: ", dir.display()))
            .or_else(|| {
                first
                    .split_once(&format!("{}: ", dir.display()))
                    .map(|x| x.1)
            })
            .unwrap_or(&first);
        let up = match self {
            Sup::Daemontools | Sup::S6 => rest.starts_with("up "),
            Sup::Runit => first.starts_with("run: "),
        };
        let pid = rest
            .split_once("(pid ")
            .and_then(|(_, r)| r.split(')').next())
            .and_then(|p| p.parse().ok());
        // The first number after the pid (or the state): the seconds.
        let after = rest.split_once(") ").map_or(rest, |x| x.1);
        let secs = after
            .split(|c: char| !c.is_ascii_digit())
            .find(|t| !t.is_empty())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        Status { up, pid, secs, raw }
    }
}

fn ran(cmd: Command) -> Ran {
    run(cmd, Path::new("/"), LIMIT)
}

/// A service directory run by its supervisor (its own process group);
/// stopped and reaped on drop.
struct Supervised {
    sup: Sup,
    dir: PathBuf,
    child: Child,
    out: PathBuf,
}

impl Supervised {
    fn start(sup: Sup, dir: &Path) -> Supervised {
        let out = dir.with_extension("out");
        let f = fs::File::create(&out).unwrap();
        let prog = match sup {
            Sup::Daemontools => "supervise",
            Sup::Runit => "runsv",
            Sup::S6 => "s6-supervise",
        };
        let child = Command::new(prog)
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("unable to start {prog}: {e}"));
        Supervised {
            sup,
            dir: dir.to_path_buf(),
            child,
            out,
        }
    }

    fn status(&self) -> Status {
        self.sup.status(&self.dir)
    }

    /// What the service logged: the supervisor's output (daemontools:
    /// supervise runs no log service), and runit's svlogd file.
    fn log(&self) -> String {
        let mut s = fs::read_to_string(&self.out).unwrap_or_default();
        s += &fs::read_to_string(self.dir.join("log/main/current")).unwrap_or_default();
        s
    }

    /// Wait up to `within` for `f(status)`.
    fn wait_for(&self, within: Duration, what: &str, f: impl Fn(&Status) -> bool) -> Status {
        let until = Instant::now() + within;
        loop {
            let st = self.status();
            if f(&st) {
                return st;
            }
            assert!(
                Instant::now() < until,
                "{}: {what} not within {within:?}: {}\nlog:\n{}",
                self.sup.name(),
                st.raw,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        let mut c = match self.sup {
            Sup::Daemontools => {
                let mut c = Command::new("svc");
                c.arg("-dx");
                c
            }
            Sup::S6 => {
                let mut c = Command::new("s6-svc");
                c.arg("-dx");
                c
            }
            Sup::Runit => {
                let mut c = Command::new("sv");
                c.args(["-w", "5", "force-shutdown"]);
                c
            }
        };
        c.arg(&self.dir);
        let _ = common::try_run(c, Stdio::null(), Duration::from_secs(10));
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let pg = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pg, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// `courier-run ARGS` in `dir`: exit code, stdout then stderr.
fn courier_run(dir: &Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args).current_dir(dir);
    let out = ran(cmd);
    (out.code.unwrap_or(-1), out.stdout_str() + &out.stderr_str())
}

fn init(base: &Path, name: &str, sup: Sup, service: &str) -> PathBuf {
    let d = base.join(name);
    let (code, text) = courier_run(
        base,
        &[
            "init",
            d.to_str().unwrap(),
            "--supervisor",
            sup.name(),
            "--service",
            service,
        ],
    );
    assert_eq!(code, 0, "init {service}: {text}");
    d
}

/// A loopback TCP connection to `port` is accepted.
fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).is_ok()
}

/// Set in the run of this test in its own mount namespace.
const PRIVATE: &str = "COURIER_RUN_TEST_PRIVATE_AUTHDAEMON_DIR";
const TEST: &str = "authdaemond_supervised_and_mail_service_ordered_after_it";

/// `unshare -m` works here (root with CAP_SYS_ADMIN; not in every
/// container). Without it the test stops the machine's authdaemond for
/// its run (common's `AuthdaemondAway`), and restores Debian's after.
fn private_namespace() -> bool {
    let mut c = Command::new("unshare");
    c.args(["-m", "--propagation", "private", "true"]);
    which("unshare").is_some() && ran(c).code == Some(0)
}

#[test]
fn authdaemond_supervised_and_mail_service_ordered_after_it() {
    let mut peers: Vec<&str> = vec!["python3", "useradd"];
    for s in [Sup::Daemontools, Sup::Runit, Sup::S6] {
        peers.extend(s.programs());
    }
    let missing: Vec<&str> = peers
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    let ok = common::is_root()
        && missing.is_empty()
        && Path::new("/usr/bin/imapd").exists()
        && Path::new(AUTHDAEMOND).exists()
        && nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some();
    if !have(
        &format!(
            "root, courier-imap, courier-authdaemon, the courier account and {missing:?} (daemontools, runit, s6; run .ci/install)"
        ),
        ok,
    ) {
        return;
    }
    if std::env::var_os(PRIVATE).is_none() && private_namespace() {
        // Again in a mount namespace of its own, where authdaemond's
        // directory is a fresh tmpfs: the machine's authdaemond, and the
        // other tests using it, are left alone.
        ensure_authdaemon_dir();
        let mut cmd = Command::new("unshare");
        cmd.args(["-m", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .args([TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(PRIVATE, "1");
        let out = run(cmd, Path::new("/"), Duration::from_secs(300));
        println!("{}", out.stdout_str());
        eprintln!("{}", out.stderr_str());
        assert_eq!(
            out.code,
            Some(0),
            "the run in its own mount namespace failed"
        );
        assert!(out.stdout_str().contains("1 passed"), "it did not run");
        return;
    }
    if std::env::var_os(PRIVATE).is_some() {
        let dir = Path::new(AUTHDAEMON_SOCKET).parent().unwrap();
        let mut mount = Command::new("mount");
        mount
            .args(["-t", "tmpfs", "-o", "mode=0750", "tmpfs"])
            .arg(dir);
        let m = ran(mount);
        assert_eq!(m.code, Some(0), "mount: {}", m.stderr_str());
        let u = nix::unistd::User::from_name("courier").unwrap().unwrap();
        nix::unistd::chown(dir, Some(u.uid), Some(u.gid)).unwrap();
        println!("authdaemond's directory: a private tmpfs (mount namespace of its own)");
    }
    let user = MailUser::new("ad");
    for sup in [Sup::Daemontools, Sup::Runit, Sup::S6] {
        // Another program on this machine may start an authdaemond of its
        // own meanwhile (the socket is the machine's): that run proves
        // nothing, and is done again (never under CI, where test binaries
        // run one after the other).
        let mut tries = 0;
        loop {
            let away = AuthdaemondAway::take();
            let r = scenario(sup, &user);
            drop(away);
            match r {
                Ok(()) => break,
                Err(why) => {
                    tries += 1;
                    assert!(tries < 5, "{}: {why}, {tries} times", sup.name());
                    eprintln!("{}: {why}: again", sup.name());
                }
            }
        }
    }
}

/// Err: another program's authdaemond appeared during the run.
fn scenario(sup: Sup, user: &MailUser) -> Result<(), String> {
    let foreign = || Err("another program started an authdaemond during the run".to_string());
    let name = sup.name();
    let scratch = TempDir::new(&format!("authd-{name}"));
    let base = scratch.path();
    let ad = init(base, "authdaemond", sup, "authdaemond");
    let imapd = init(base, "imapd", sup, "imapd");
    let run = fs::read_to_string(imapd.join("run")).unwrap();
    assert!(run.contains("\nwait_authdaemond=yes\n"), "{run}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    fs::write(
        imapd.join("run"),
        format!("{run}address=127.0.0.1\nport={port}\n"),
    )
    .unwrap();
    assert!(
        !authdaemond_answers(),
        "authdaemond answers before the test"
    );

    // What --dry-run and --check say now: the launch would exit 111.
    let (code, dry) = courier_run(&imapd, &["./run", "--dry-run"]);
    assert_eq!(code, 0, "{dry}");
    assert!(
        dry.contains(&format!(
            "wait      authdaemond's socket {AUTHDAEMON_SOCKET}"
        )) && dry.contains("the launch would exit 111"),
        "{dry}"
    );
    let (code, check) = courier_run(&ad, &["./run", "--check"]);
    assert_eq!(code, 0, "{check}");
    assert!(check.contains("ok   module authpam installed"), "{check}");
    assert!(
        check.contains(&format!("ok   socket {AUTHDAEMON_SOCKET}")) && check.contains(": free"),
        "{check}"
    );

    // 2. imapd first: retried, never up with logins failing.
    let started = Instant::now();
    let mail = Supervised::start(sup, &imapd);
    let mut samples = 0;
    // Each pid seen up: when first and last seen. A launch that exits 111
    // is up for a moment (the supervisor's clock has whole seconds: 1 s
    // shows for a start just before a second's turn); one that stayed up
    // would keep its pid.
    let mut seen: std::collections::HashMap<u32, (Instant, Instant)> = Default::default();
    while started.elapsed() < Duration::from_secs(3) {
        if authdaemond_answers() {
            return foreign();
        }
        let st = mail.status();
        assert!(
            !(st.up && st.secs >= 2),
            "{name}: imapd up for {} s without authdaemond: {}",
            st.secs,
            st.raw
        );
        if let (true, Some(p)) = (st.up, st.pid) {
            let now = Instant::now();
            let e = seen.entry(p).or_insert((now, now));
            e.1 = now;
            assert!(
                e.1 - e.0 < Duration::from_millis(1500),
                "{name}: imapd pid {p} up for {:?} without authdaemond",
                e.1 - e.0
            );
        }
        if accepts(port) && authdaemond_answers() {
            return foreign();
        }
        assert!(
            !accepts(port),
            "{name}: imapd's port accepts without authdaemond"
        );
        samples += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = mail.log();
    let refusals = log.matches("not starting imapd until it accepts").count();
    assert!(
        refusals >= 2,
        "{name}: the launch was not retried ({refusals} refusals in 3 s):\n{log}"
    );
    println!(
        "{name}: imapd without authdaemond: {refusals} launches refused (exit 111) in 3 s, {samples} status samples, none up >= 2 s or with one pid for 1.5 s, port never accepting"
    );

    // 3. authdaemond as a service: the supervisor's pid is the daemon's.
    let daemon = Supervised::start(sup, &ad);
    let t0 = Instant::now();
    let until = t0 + Duration::from_secs(10);
    while !authdaemond_answers() {
        assert!(
            Instant::now() < until,
            "{name}: authdaemond did not answer within 10 s:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let st = daemon.wait_for(Duration::from_secs(5), "authdaemond up", |s| s.up);
    let pid = st.pid.expect("a pid");
    if authdaemond_pid().is_some_and(|p| p != pid) {
        return foreign();
    }
    assert_eq!(
        authdaemond_pid(),
        Some(pid),
        "{name}: the socket's holder is not the supervisor's pid ({})",
        st.raw
    );
    assert_eq!(
        fs::read_link(format!("/proc/{pid}/exe")).unwrap(),
        Path::new(AUTHDAEMOND)
    );
    println!("{name}: {}", st.raw.trim());
    let (code, check) = courier_run(&ad, &["./run", "--check"]);
    assert_eq!(code, 0, "{check}");
    assert!(
        check.contains("held by this service's authdaemond"),
        "{check}"
    );
    // Another authdaemond service would take the socket over: refused.
    let other = base.join("other");
    fs::create_dir(&other).unwrap();
    fs::copy(ad.join("run"), other.join("run")).unwrap();
    let (code, check) = courier_run(&other, &["./run", "--check", "--set", "envdir="]);
    assert_eq!(code, 1, "{check}");
    assert!(
        check.contains("another authdaemond already holds it"),
        "{check}"
    );

    // 4. imapd comes up on the supervisor's next retry, and serves.
    let st = mail.wait_for(Duration::from_secs(10), "imapd listening", |s| {
        s.up && s.pid.is_some_and(|p| listens(p, port))
    });
    let waited = t0.elapsed();
    println!(
        "{name}: {} (listening {} ms after authdaemond was started)",
        st.raw.trim(),
        waited.as_millis()
    );
    let said = login_on("imap", port, user, &|| mail.log());
    assert!(said.contains("messages 1"), "{name}: {said}");
    assert!(said.contains("starttls"), "{name}: {said}");
    drop(mail);
    drop(daemon);
    // The stopped daemon leaves its socket file behind: stale.
    let until = Instant::now() + Duration::from_secs(5);
    while authdaemond_answers() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
    if authdaemond_answers() {
        return foreign();
    }
    Ok(())
}

/// `--check` of `service=authdaemond`, without root or Courier: a
/// courier2 prefix in a scratch directory (authdaemond's own
/// authdaemonrc is `$prefix/etc/authdaemonrc`, its modules
/// `$prefix/lib/courier-authlib/libNAME.so.0`). Each module of
/// authmodulelist is reported installed or not, none installed is a
/// FAIL, a missing authdaemonvar is a FAIL, and a socket someone listens
/// on is "another authdaemond already holds it". `--dry-run --format
/// json` gives authdaemonrc's variables and the program without arguments.
#[test]
fn check_modules_and_socket() {
    let scratch = TempDir::new("authd-check");
    let p = scratch.path();
    let var = p.join("var");
    let rc = |modules: &str| {
        fs::write(
            p.join("etc/authdaemonrc"),
            format!(
                "authmodulelist=\"{modules}\"\ndaemons=3\nauthdaemonvar={}\nDEBUG_LOGIN=0\n",
                var.display()
            ),
        )
        .unwrap();
    };
    fs::create_dir_all(p.join("etc")).unwrap();
    fs::create_dir_all(p.join("lib/courier-authlib")).unwrap();
    fs::write(p.join("lib/courier-authlib/libauthpam.so.0"), "").unwrap();
    fs::write(
        p.join("run"),
        format!(
            "service=authdaemond\nlayout=courier2\nprefix={}\nserver=/bin/true\nenvdir=\n",
            p.display()
        ),
    )
    .unwrap();
    let check = || courier_run(p, &["./run", "--check"]);

    rc("authpam authbogus");
    let (code, text) = check();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("ok   module authpam installed"), "{text}");
    assert!(
        text.contains("warn module authbogus: ")
            && text.contains("libauthbogus.so.0 does not exist"),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} is not a directory", var.display())),
        "{text}"
    );

    fs::create_dir(&var).unwrap();
    let (code, text) = check();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(": free"), "{text}");

    rc("authbogus");
    let (code, text) = check();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("none of authbogus is installed"), "{text}");

    rc("authpam");
    let sock = var.join("socket");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (code, text) = check();
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("another authdaemond already holds it")
            && text.contains(&format!("pid {}", std::process::id())),
        "{text}"
    );
    drop(listener);
    let (code, text) = check();
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("free (a stale socket file"), "{text}");

    let (code, json) = courier_run(p, &["./run", "--dry-run", "--format", "json"]);
    assert_eq!(code, 0, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["argv"], serde_json::json!(["/bin/true"]));
    assert_eq!(v["env"]["authmodulelist"], "authpam");
    assert_eq!(v["env"]["daemons"], "3");
    assert_eq!(v["wait_authdaemond"], serde_json::Value::Null);
    assert_eq!(
        v["banner"],
        serde_json::json!([
            "*** Starting courier-authdaemond service...",
            "*** >>authmodulelist: authpam"
        ])
    );
}
