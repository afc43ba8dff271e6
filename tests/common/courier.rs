//! Courier's side of a real login, for the tests that serve one:
//!
//! - [`Authdaemond`]: authdaemond started as Debian starts it (shared by
//!   the tests of one binary, stopped when the last one is done);
//! - [`MailUser`]: a throwaway system user with a password and a Maildir
//!   of one message, removed on drop (also on panic);
//! - [`Served`] / [`serve`]: a service started on a loopback port,
//!   retried on another port when the front end could not bind (never a
//!   port bound, closed and reused), its process group killed on drop;
//! - [`login`]: LOGIN (or USER/PASS) and SELECT (or STAT) with Python's
//!   standard library, over STARTTLS/STLS when offered, or implicit TLS.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{capture_file, read_back, try_run};

// ---------------------------------------------------------------------------
// authdaemond.

pub const AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";
pub const AUTHDAEMON_SOCKET: &str = "/run/courier/authdaemon/socket";

/// Something accepts on authdaemond's socket.
pub fn authdaemond_answers() -> bool {
    std::os::unix::net::UnixStream::connect(AUTHDAEMON_SOCKET).is_ok()
}

/// The tests of this binary holding authdaemond, and the daemon when it
/// was started here (None when it was running already).
static SHARED: Mutex<(usize, Option<Child>)> = Mutex::new((0, None));

/// authdaemond started for a test as Debian's init script starts it
/// (authdaemonrc exported, the daemon in the foreground and its own
/// process group so that its pid is ours). Tests of one binary running at
/// once share it; it is stopped when the last guard drops, and left alone
/// when it was running before.
pub struct Authdaemond(());

impl Authdaemond {
    #[track_caller]
    pub fn start() -> Authdaemond {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if shared.0 == 0 && shared.1.is_none() && !authdaemond_answers() {
            shared.1 = Some(spawn_authdaemond());
        }
        shared.0 += 1;
        Authdaemond(())
    }
}

/// authdaemond's socket went away while this binary's tests hold it
/// (another program on the machine stopped the daemon it found running):
/// start it again. Returns whether it was restarted.
#[track_caller]
pub fn authdaemond_revive() -> bool {
    let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
    if shared.0 == 0 || authdaemond_answers() {
        return false;
    }
    if let Some(mut old) = shared.1.take() {
        stop_authdaemond(&mut old);
    }
    eprintln!("authdaemond stopped under this test (by another program): starting it again");
    shared.1 = Some(spawn_authdaemond());
    true
}

/// authdaemonvar as Debian's tmpfiles.d makes it (courier:courier, 750),
/// when it is missing (a machine booted without systemd).
#[track_caller]
pub fn ensure_authdaemon_dir() {
    let dir = Path::new(AUTHDAEMON_SOCKET).parent().unwrap();
    if !dir.is_dir() {
        fs::create_dir_all(dir).unwrap();
        let u = nix::unistd::User::from_name("courier").unwrap().unwrap();
        nix::unistd::chown(dir, Some(u.uid), Some(u.gid)).unwrap();
        fs::set_permissions(dir, fs::Permissions::from_mode(0o750)).unwrap();
    }
}

/// The pid of the process listening on authdaemond's socket whose parent
/// does not hold it too (authdaemond's children inherit the socket): the
/// daemon itself. From /proc/net/unix (flag 00010000: listening; the name
/// it was bound with) and the descriptors of the processes in our mount
/// namespace (one in another namespace may bind the same name).
pub fn authdaemond_pid() -> Option<u32> {
    let table = fs::read_to_string("/proc/net/unix").ok()?;
    let links: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // authdaemond binds socket.tmp and renames it.
            let named =
                w.len() >= 8 && w[7].strip_suffix(".tmp").unwrap_or(w[7]) == AUTHDAEMON_SOCKET;
            (named && w[3] == "00010000").then(|| format!("socket:[{}]", w[6]))
        })
        .collect();
    let own_ns = fs::read_link("/proc/self/ns/mnt").ok();
    let holders: Vec<u32> = fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == own_ns)
        .filter(|pid| {
            fs::read_dir(format!("/proc/{pid}/fd"))
                .into_iter()
                .flatten()
                .flatten()
                .any(|f| {
                    fs::read_link(f.path())
                        .is_ok_and(|l| links.iter().any(|k| l.as_os_str() == k.as_str()))
                })
        })
        .collect();
    let ppid = |pid: u32| -> Option<u32> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit_once(") ")?
            .1
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    holders
        .iter()
        .copied()
        .find(|&p| ppid(p).is_none_or(|pp| !holders.contains(&pp)))
}

/// The machine's authdaemond stopped for a test that runs its own (under
/// a supervisor, on the same socket: the login programs have its path
/// compiled in). Debian's (started by `/usr/sbin/authdaemond start`, pid
/// file in authdaemonvar) is stopped that way and started again on drop;
/// any other (another test binary's [`Authdaemond`]) gets SIGTERM, and its
/// owner starts it again when it needs it ([`authdaemond_revive`]).
pub struct AuthdaemondAway {
    restart_debian: bool,
}

const DEBIAN_PIDFILE: &str = "/run/courier/authdaemon/pid";

impl AuthdaemondAway {
    #[track_caller]
    pub fn take() -> AuthdaemondAway {
        let mut away = AuthdaemondAway {
            restart_debian: false,
        };
        if authdaemond_answers() && Path::new(DEBIAN_PIDFILE).exists() {
            let mut c = Command::new("/usr/sbin/authdaemond");
            c.arg("stop");
            let _ = try_run(c, Stdio::null(), Duration::from_secs(30));
            away.restart_debian = true;
            eprintln!("stopped Debian's authdaemond for this test; started again after it");
        }
        let until = Instant::now() + Duration::from_secs(10);
        while authdaemond_answers() {
            if let Some(pid) = authdaemond_pid() {
                eprintln!("stopping the authdaemond found running (pid {pid}) for this test");
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            }
            assert!(
                Instant::now() < until,
                "the authdaemond on {AUTHDAEMON_SOCKET} did not stop within 10 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ensure_authdaemon_dir();
        away
    }
}

impl Drop for AuthdaemondAway {
    fn drop(&mut self) {
        if self.restart_debian && !authdaemond_answers() {
            let mut c = Command::new("/usr/sbin/authdaemond");
            c.arg("start");
            let _ = try_run(c, Stdio::null(), Duration::from_secs(30));
        }
    }
}

#[track_caller]
fn spawn_authdaemond() -> Child {
    ensure_authdaemon_dir();
    let mut child = Command::new("/bin/sh")
        .args(["-c", "set -a; . \"$1\"; exec \"$2\"", "sh"])
        .args(["/etc/courier/authdaemonrc", AUTHDAEMOND])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()
        .expect("authdaemond starts");
    let until = Instant::now() + Duration::from_secs(10);
    while !authdaemond_answers() {
        if Instant::now() > until || matches!(child.try_wait(), Ok(Some(_))) {
            stop_authdaemond(&mut child);
            panic!("authdaemond did not answer on {AUTHDAEMON_SOCKET} within 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn stop_authdaemond(c: &mut Child) {
    // The master stops (and reaps) its children on TERM; KILL what is
    // left of the group after it exited, or after 5 s.
    let pg = Pid::from_raw(c.id() as i32);
    let _ = kill(pg, Signal::SIGTERM);
    let until = Instant::now() + Duration::from_secs(5);
    while matches!(c.try_wait(), Ok(None)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = killpg(pg, Signal::SIGKILL);
    let _ = c.wait();
    let _ = fs::remove_file(AUTHDAEMON_SOCKET);
}

impl Drop for Authdaemond {
    fn drop(&mut self) {
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        shared.0 -= 1;
        if shared.0 == 0
            && let Some(mut c) = shared.1.take()
        {
            stop_authdaemond(&mut c);
        }
    }
}

// ---------------------------------------------------------------------------
// A throwaway user.

/// A system user made for the test (`useradd -m`, a password by
/// `chpasswd`), with ~/Maildir holding one message; `userdel -r` on drop,
/// after ending whatever still runs as the user.
pub struct MailUser {
    pub name: String,
    pub password: String,
    pub home: PathBuf,
    uid: u32,
}

impl MailUser {
    #[track_caller]
    pub fn new(tag: &str) -> MailUser {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let name = format!("crt{tag}{}x{n}", std::process::id());
        assert!(name.len() <= 32, "user name {name} is too long");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let password = format!("Pw{nanos:x}z");
        let ok = |mut cmd: Command, input: Option<String>| {
            let what = format!("{cmd:?}");
            let stdin = match input {
                Some(s) => {
                    let f = capture_file();
                    std::io::Write::write_all(&mut &f, s.as_bytes()).unwrap();
                    std::io::Seek::rewind(&mut &f).unwrap();
                    Stdio::from(f)
                }
                None => Stdio::null(),
            };
            let r = try_run(
                {
                    cmd.env_remove("CI");
                    cmd
                },
                stdin,
                Duration::from_secs(30),
            )
            .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert!(
                r.code == Some(0),
                "{what}: {:?}\n{}{}",
                r.code,
                r.stdout_str(),
                r.stderr_str()
            );
        };
        let mut add = Command::new("useradd");
        add.args(["-m", "-s", "/bin/sh", "-c", "courier-run test", &name]);
        ok(add, None);
        let u = nix::unistd::User::from_name(&name).unwrap().unwrap();
        // From here on the user is removed on drop, also on a panic below.
        let user = MailUser {
            name: name.clone(),
            password: password.clone(),
            home: u.dir.clone(),
            uid: u.uid.as_raw(),
        };
        ok(
            Command::new("chpasswd"),
            Some(format!("{name}:{password}\n")),
        );
        let md = user.home.join("Maildir");
        for d in ["", "cur", "new", "tmp"] {
            let p = md.join(d);
            fs::create_dir_all(&p).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o700)).unwrap();
        }
        let msg = md.join(format!("new/1000000000.{}.crtest", std::process::id()));
        fs::write(
            &msg,
            format!(
                "From: courier-run test <{name}@localhost>\nTo: {name}@localhost\n\
                 Subject: courier-run test\nDate: Thu, 01 Jan 2004 00:00:00 +0000\n\
                 Message-ID: <1.{name}@crtest>\n\nbody\n"
            ),
        )
        .unwrap();
        for p in [
            md.clone(),
            md.join("cur"),
            md.join("new"),
            md.join("tmp"),
            msg,
        ] {
            nix::unistd::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
        user
    }

    /// Pids running as the user.
    fn pids(&self) -> Vec<i32> {
        let mut v = Vec::new();
        for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let status = fs::read_to_string(e.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|s| s.parse::<u32>().ok());
            if uid == Some(self.uid) {
                v.push(pid);
            }
        }
        v
    }
}

impl Drop for MailUser {
    fn drop(&mut self) {
        for _ in 0..3 {
            for pid in self.pids() {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let r = try_run(
                {
                    let mut c = Command::new("userdel");
                    c.args(["-r", &self.name]);
                    c
                },
                Stdio::null(),
                Duration::from_secs(30),
            );
            if nix::unistd::User::from_name(&self.name)
                .ok()
                .flatten()
                .is_none()
            {
                break;
            }
            if let Ok(r) = r {
                eprintln!("userdel -r {}: {}", self.name, r.stderr_str());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = fs::remove_dir_all(&self.home);
    }
}

// ---------------------------------------------------------------------------
// A service on a loopback port.

/// A started service: its own process group, killed on drop; its stdout
/// and stderr (together) in an unlinked file.
pub struct Served {
    pub port: u16,
    child: Child,
    out: fs::File,
}

impl Served {
    /// What the service wrote so far.
    pub fn output(&self) -> String {
        let f = self.out.try_clone().unwrap();
        String::from_utf8_lossy(&read_back(f)).into_owned()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// The inode of the socket listening on loopback (or any address) port
/// `port`, if any (from /proc/net/tcp and tcp6).
fn listening_inodes(port: u16) -> Vec<String> {
    let want = format!(":{port:04X}");
    let mut v = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(f).unwrap_or_default().lines().skip(1) {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.len() > 9 && w[1].ends_with(&want) && w[3] == "0A" {
                v.push(w[9].to_string());
            }
        }
    }
    v
}

/// `pid` holds a socket listening on `port`.
pub fn listens(pid: u32, port: u16) -> bool {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return false;
    }
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| fs::read_link(e.path()).ok())
        .any(|l| {
            let l = l.to_string_lossy();
            inodes.iter().any(|i| l == format!("socket:[{i}]"))
        })
}

/// What a front end says when its port is taken (tcpserver, tcpsvd,
/// courier-run --bind).
pub fn says_port_taken(out: &str) -> bool {
    out.contains("unable to bind: address already used")
        || out.contains("Address already in use")
        || out.contains("address already in use")
}

/// Start `make(port)` on ports that were free a moment ago until its own
/// pid (courier-run execs the front end) listens on the port; a start
/// whose front end could not bind (the port was taken in between) is
/// retried on another port, up to 5 times ([`super::with_free_port`]).
/// Any other exit, or no listener within `within`, fails the test with
/// what the service wrote.
#[track_caller]
pub fn serve(mut make: impl FnMut(u16) -> Command, within: Duration) -> Served {
    super::with_free_port(|port| {
        let mut cmd = make(port);
        let what = format!("{cmd:?}");
        let out = capture_file();
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out.try_clone().unwrap())
            .process_group(0);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("unable to start {what}: {e}"));
        drop(cmd);
        let mut served = Served { port, child, out };
        let until = Instant::now() + within;
        loop {
            if listens(served.pid(), port) {
                return Some(served);
            }
            if let Ok(Some(st)) = served.child.try_wait() {
                let text = served.output();
                if says_port_taken(&text) {
                    eprintln!("port {port} was taken: retrying on another one");
                    return None;
                }
                panic!("{what} exited ({st}) before listening on {port}:\n{text}");
            }
            assert!(
                Instant::now() < until,
                "{what} did not listen on {port} within {within:?}:\n{}",
                served.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

// ---------------------------------------------------------------------------
// Logging in.

/// The client: argv[1] imap|imaps|pop3|pop3s, then port, user, password.
/// Exit 0 when the login and SELECT INBOX (or STAT) worked and the mailbox
/// holds exactly one message; 75 (EX_TEMPFAIL) for authdaemond's
/// "Temporary problem"; 1 otherwise, with why on stderr.
const CLIENT: &str = r#"
import imaplib, poplib, ssl, sys
kind, port, user, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
try:
    if kind.startswith("imap"):
        if kind == "imaps":
            c = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx, timeout=10)
        else:
            c = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            if "STARTTLS" in c.capabilities:
                c.starttls(ssl_context=ctx)
                print("starttls")
        c.login(user, pw)
        typ, data = c.select("INBOX")
        n = int(data[0])
        c.logout()
    else:
        if kind == "pop3s":
            c = poplib.POP3_SSL("127.0.0.1", port, context=ctx, timeout=10)
        else:
            c = poplib.POP3("127.0.0.1", port, timeout=10)
            if "STLS" in c.capa():
                c.stls(context=ctx)
                print("stls")
        c.user(user)
        c.pass_(pw)
        n = c.stat()[0]
        c.quit()
except Exception as e:
    print("%s: %r" % (type(e).__name__, e), file=sys.stderr)
    sys.exit(75 if "emporary" in str(e) else 1)
print("messages %d" % n)
sys.exit(0 if n == 1 else 1)
"#;

/// The client kind for a Courier service name.
pub fn client_kind(service: &str) -> &'static str {
    match service {
        "imapd" => "imap",
        "imapd-ssl" => "imaps",
        "pop3d" => "pop3",
        "pop3d-ssl" => "pop3s",
        other => panic!("no client for service {other}"),
    }
}

/// Log `user` in on `port` (see [`CLIENT`]); authdaemond's "Temporary
/// problem" (its first answers after a start) is retried a few times, and
/// so is a failure while authdaemond was gone ([`authdaemond_revive`]).
/// Returns the client's stdout ("starttls"/"stls" when used, "messages
/// 1"); a failure fails the test with the client's and `served`'s output.
#[track_caller]
pub fn login(kind: &str, served: &Served, user: &MailUser) -> String {
    login_on(kind, served.port, user, &|| served.output())
}

/// [`login`] on `port`, for a service this harness did not start (one
/// under a supervisor); `output` tells what the service logged.
#[track_caller]
pub fn login_on(kind: &str, port: u16, user: &MailUser, output: &dyn Fn() -> String) -> String {
    let mut last = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut cmd = Command::new("python3");
        cmd.args(["-c", CLIENT, kind])
            .arg(port.to_string())
            .args([&user.name, &user.password]);
        let r = try_run(cmd, Stdio::null(), Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("unable to start python3: {e}"));
        assert!(!r.timed_out, "the {kind} client timed out");
        if r.code == Some(0) {
            return r.stdout_str();
        }
        last = r.stderr_str();
        // authdaemond's socket gone: another program on the machine
        // stopped the daemon this test was using.
        let revived = authdaemond_revive();
        if r.code != Some(75) && !revived && !output().contains("authdaemon:") {
            break;
        }
    }
    panic!(
        "{kind} login as {} on port {port} failed: {last}\nservice output:\n{}",
        user.name,
        output()
    );
}
