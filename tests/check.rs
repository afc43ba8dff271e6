//! `courier-run --check`, through the binary: one broken service
//! directory or setting per check, each asserting its exact line and the
//! exit code; a healthy Debian 12 setup that passes; the memory check
//! against the real /usr/bin/imapd.
//!
//! Every case starts from [`BASE`], settings that pass on any Linux with
//! glibc (no config, no account, /bin/true for every program), and breaks
//! one thing, so that the FAIL asserted is that thing's. Cases that need
//! Courier or ucspi-tcp skip with a reason when they are missing, and fail
//! instead when CI=true.
//!
//! Not tested here: ownership and privileged ports as a non-root user (the
//! suite runs as root; the privileged-port FAIL is tested through
//! setuidgid=nobody instead).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::courier::{AUTHDAEMOND, Authdaemond, authdaemond_answers};
use common::{
    BIN, Ran, TempDir, have, have_file, have_root, run_cmd, run_into_closed_pipe, which,
    with_free_port,
};

const IMAPD: &str = "/usr/bin/imapd";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check");

/// The port of [`base`]: a loopback socket bound to port 0 and kept for the
/// whole run, so that no test can find its port taken (only `--bind`
/// binds, and the tests that pass it choose a port of their own). Bound,
/// not listening: --check names a process that listens on the port.
fn port() -> u16 {
    use nix::libc;
    static HELD: OnceLock<(i32, u16)> = OnceLock::new();
    HELD.get_or_init(|| {
        // SAFETY: plain socket calls on a sockaddr_in of our own; the fd
        // is kept open for the whole run.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
            assert!(fd >= 0);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from_ne_bytes([127, 0, 0, 1]);
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            assert_eq!(libc::bind(fd, (&raw const sa).cast(), len), 0);
            let mut got: libc::sockaddr_in = std::mem::zeroed();
            let mut glen = len;
            assert_eq!(libc::getsockname(fd, (&raw mut got).cast(), &mut glen), 0);
            (fd, u16::from_be(got.sin_port))
        }
    })
    .1
}

/// Settings under which --check passes anywhere: each case changes one.
fn base() -> Vec<String> {
    [
        "layout=debian",
        "config=",
        "account=",
        "envdir=",
        "server=/bin/true",
        "login=/bin/true",
        "imapd=/bin/true",
        "rules=",
        "address=127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([format!("port={}", port())])
    .collect()
}

/// A scratch service directory (root-owned when we are root, not writable
/// by others, so the ownership check passes), removed afterwards.
struct Svc {
    t: TempDir,
    dir: PathBuf,
}

impl Svc {
    fn new(name: &str) -> Svc {
        let t = TempDir::new(&format!("check-{name}"));
        let dir = t.path().to_path_buf();
        Svc { t, dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, content: &[u8]) -> String {
        self.t.write(name, content).to_string_lossy().into_owned()
    }

    fn fixture(&self, name: &str) -> String {
        self.write(
            name,
            &std::fs::read(Path::new(FIXTURES).join(name)).unwrap(),
        )
    }

    /// `courier-run [RUNFILE] --check --set BASE... --set SETS... EXTRA...`
    /// in the service directory.
    fn cmd(&self, runfile: Option<&str>, sets: &[&str], extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir);
        cmd.args(runfile);
        cmd.arg("--check");
        for s in base()
            .iter()
            .map(String::as_str)
            .chain(sets.iter().copied())
        {
            cmd.args(["--set", s]);
        }
        cmd.args(extra);
        cmd
    }

    fn check(&self, runfile: Option<&str>, sets: &[&str], extra: &[&str]) -> Out {
        Out::from(run_cmd(self.cmd(runfile, sets, extra)))
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Ran> for Out {
    fn from(r: Ran) -> Out {
        Out {
            code: r.exit(),
            stdout: r.stdout_str(),
            stderr: r.stderr_str(),
        }
    }
}

impl Out {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// The report holds exactly this line.
    #[track_caller]
    fn has(&self, line: &str) -> &Out {
        assert!(
            self.lines().contains(&line),
            "no line\n  {line}\nin\n{}{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The one line starting with `prefix`.
    #[track_caller]
    fn line(&self, prefix: &str) -> &str {
        let found: Vec<&str> = self
            .lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect();
        assert_eq!(
            found.len(),
            1,
            "lines starting with {prefix:?} in\n{}",
            self.stdout
        );
        found[0]
    }

    #[track_caller]
    fn code(&self, code: i32) -> &Out {
        assert_eq!(
            self.code, code,
            "exit code; output:\n{}{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    fn fails(&self, line: &str) -> &Out {
        self.has(line).code(1)
    }

    fn fail_count(&self) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.starts_with("FAIL"))
            .count()
    }
}

#[test]
fn base_passes() {
    let svc = Svc::new("base");
    let out = svc.check(None, &[], &[]);
    out.code(0)
        .has("ok   program /bin/true (server)")
        .has("ok   memory /bin/true");
    assert_eq!(out.fail_count(), 0);
}

// 1. The run file and the config files.

#[test]
fn run_file_unknown_setting_and_what_follows() {
    let svc = Svc::new("unknown");
    svc.fixture("unknown-setting.run");
    let out = svc.check(Some("unknown-setting.run"), &[], &[]);
    out.fails("FAIL run file: unknown-setting.run:4:1: unknown setting softlimt (did you mean softlimit?)")
        .has("FAIL setuidgid courier-run-no-such-account: unknown-setting.run:5:11: setuidgid: unknown account courier-run-no-such-account (create it, or set setuidgid to an existing account; setuidgid= for none)")
        .has("ok   memory /bin/true");
    assert_eq!(out.fail_count(), 2, "{}", out.stdout);
}

#[test]
fn run_file_syntax_error_does_not_stop_the_check() {
    let svc = Svc::new("syntax");
    svc.fixture("syntax.run");
    let out = svc.check(
        Some("syntax.run"),
        &["account=courier-run-no-such-account"],
        &[],
    );
    out.fails(
        "FAIL run file: syntax.run:4:6: command substitution $(...) is not supported (courier-run never runs commands)",
    );
    out.has("ok   memory /bin/true")
        .has(&format!("ok   port {}", port()));
    assert_eq!(out.fail_count(), 2, "{}", out.stdout);
}

#[test]
fn run_file_missing_and_unknown_set() {
    let svc = Svc::new("missing");
    svc.check(Some("nope"), &["bogus=1"], &[])
        .fails("FAIL run file: unable to open run file nope: No such file or directory (give the service's run file, e.g. ./run)")
        .has("FAIL settings: --set bogus=1: unknown setting bogus (did you mean login?)");
}

#[test]
fn run_file_crlf() {
    let svc = Svc::new("crlf-run");
    svc.write("run", b"#!/usr/local/bin/courier-run\r\nlayout=debian\r\n");
    svc.check(Some("run"), &[], &[]).fails(
        "FAIL run file: run: CRLF line ends: the kernel would look for the interpreter with a \\r at its end (convert it with dos2unix)",
    );
}

#[test]
fn config_crlf() {
    let svc = Svc::new("crlf-conf");
    let conf = svc.write("imapd", b"IMAP_IDLE_TIMEOUT=60\r\n");
    svc.check(None, &[&format!("config={conf}")], &[]).fails(&format!(
        "FAIL config {conf}: CRLF line ends: every value would end in a carriage return (convert it with dos2unix)"
    ));
}

#[test]
fn config_value_envdir_cannot_carry() {
    let svc = Svc::new("blank");
    let conf = svc.fixture("trailing-blank.conf");
    svc.check(None, &[&format!("config={conf}")], &[]).fails(&format!(
        "FAIL config {conf}: {conf}:2:1: the value of IMAP_TRASHFOLDERNAME ends in a space or tab, which daemontools' envdir would strip (remove the trailing blank)"
    ));
}

#[test]
fn config_unset_reference_and_unreadable() {
    let svc = Svc::new("unset");
    let conf = svc.fixture("unset-ref.conf");
    svc.check(None, &[&format!("config={conf}")], &[])
        .code(0)
        .has(&format!(
            "warn config: {conf}:2:27: COURIER_RUN_NO_SUCH_NAME is not set: $COURIER_RUN_NO_SUCH_NAME expands to the empty string"
        ));
    let missing = svc.path("nope").to_string_lossy().into_owned();
    svc.check(None, &[&format!("config={conf} {missing}")], &[])
        .fails(&format!(
            "FAIL config {missing}: unable to open config file {missing}: No such file or directory (install Courier's config, or set config= to the files to read)"
        ))
        .has("ok   memory /bin/true");
}

#[test]
fn bad_values_are_each_reported() {
    let svc = Svc::new("values");
    let out = svc.check(None, &["banner=maybe", "softlimit=-m 5M", "umask=999"], &[]);
    out.fails(r#"FAIL settings: --set banner "maybe" is neither yes nor no"#)
        .has(r#"FAIL settings: --set softlimit "-m 5M": "5M" is not a number of bytes (write -m 5000000)"#)
        .has(r#"FAIL settings: --set umask "999" is not an octal mode (write e.g. 022)"#)
        .has("ok   memory /bin/true");
    assert_eq!(out.fail_count(), 3, "{}", out.stdout);
}

#[test]
fn envdir_in_an_unwritable_place() {
    let svc = Svc::new("envdir");
    svc.write("env", b"a file, not a directory\n");
    let out = svc.check(None, &["envdir=env"], &[]);
    out.code(1);
    // The plan's own message (it probes the envdir for the launch too).
    let line = out.line("FAIL envdir env: ");
    assert!(line.contains("exists and is not a directory"), "{line}");
    out.has("ok   memory /bin/true");
    // Compared, never written.
    assert!(svc.path("env").is_file());
}

// 2. Ownership.

#[test]
fn ownership_writable_by_others() {
    if !have_root("the ownership check runs only as root") {
        return;
    }
    let svc = Svc::new("owner");
    let run = svc.write("run", b"#!/usr/local/bin/courier-run\nlayout=debian\n");
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o666)).unwrap();
    svc.check(Some("run"), &[], &[]).fails(
        "FAIL ownership run: writable by everyone: whoever can write it decides what runs as root (chmod o-w run)",
    );
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&svc.dir, std::fs::Permissions::from_mode(0o775)).unwrap();
    std::os::unix::fs::chown(&svc.dir, None, Some(65534)).unwrap();
    let group = nix::unistd::Group::from_gid(65534.into())
        .unwrap()
        .map_or("65534".into(), |g| g.name);
    let dir = svc.dir.display();
    svc.check(Some("run"), &[], &[]).fails(&format!(
        "FAIL ownership run: its directory {dir} is writable by group {group}: whoever can write it decides what runs as root (chmod g-w {dir})"
    ));
    // A program run as root that others can write: a warning only.
    std::fs::set_permissions(&svc.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = svc.path("imapd");
    std::fs::copy("/bin/true", &prog).unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o757)).unwrap();
    let p = prog.display();
    svc.check(None, &[&format!("imapd={p}")], &[])
        .code(0)
        .has(&format!(
            "warn ownership {p}: writable by everyone, and it runs as root (imapd) (chmod o-w {p})"
        ));
}

// 3. Accounts.

#[test]
fn unknown_accounts() {
    let svc = Svc::new("accounts");
    svc.check(None, &["setuidgid=courier-run-no-such-account"], &[])
        .fails("FAIL setuidgid courier-run-no-such-account: --set setuidgid: unknown account courier-run-no-such-account (create it, or set setuidgid to an existing account; setuidgid= for none)")
        .has("ok   memory /bin/true");
}

// 4. Programs.

#[test]
fn programs_missing_dangling_not_executable() {
    let svc = Svc::new("programs");
    let gone = svc.path("gone").display().to_string();
    svc.check(None, &[&format!("imapd={gone}")], &[])
        .fails(&format!(
            "FAIL program {gone} (imapd): does not exist (install it, or set imapd= to its path)"
        ));
    let link = svc.path("link");
    std::os::unix::fs::symlink(&gone, &link).unwrap();
    let link = link.display().to_string();
    svc.check(None, &[&format!("login={link}")], &[]).fails(&format!(
        "FAIL program {link} (login): is a dangling symlink to {gone} (install it, or set login= to its path)"
    ));
    let plain = svc.write("plain", b"#!/bin/sh\n");
    svc.check(None, &[&format!("imapd={plain}")], &[]).fails(&format!(
        "FAIL program {plain} (imapd): is not executable by uid {} gid {} (mode 644) (chmod a+x {plain})",
        nix::unistd::geteuid(),
        nix::unistd::getegid()
    ));
    svc.check(None, &["server=courier-run-no-such-server -v"], &[]).fails(&format!(
        "FAIL program courier-run-no-such-server (server): unable to run courier-run-no-such-server: not found in PATH={} (install the front end (ucspi-tcp for tcpserver), or set server= with its full path)",
        std::env::var("PATH").unwrap()
    ));
    svc.check(None, &["auth=authpwd"], &[])
        .fails("FAIL auth authpwd: --set auth module authpwd is a bare name but authdir is empty (set authdir, or give the module's full path)");
}

// 5. Memory limits.

/// The -m value the fix of a memory FAIL line suggests.
fn suggested(line: &str) -> String {
    let at = line.find("softlimit=\"-m ").expect("a suggested value") + "softlimit=\"-m ".len();
    line[at..].split('"').next().unwrap().to_string()
}

#[test]
fn memory_too_low_for_true() {
    let svc = Svc::new("memory");
    let out = svc.check(None, &["softlimit=-m 1000000"], &[]);
    out.code(1);
    let line = out.line("FAIL memory /bin/true: ");
    assert!(
        line.starts_with(r#"FAIL memory /bin/true: does not load under softlimit "-m 1000000": error while loading shared libraries: "#),
        "{line}"
    );
    let m = suggested(line);
    let out = svc.check(None, &[&format!("softlimit=-m {m}")], &[]);
    out.code(0).has("ok   memory /bin/true");
}

#[test]
fn memory_recipe_limit_fails_for_debian_imapd() {
    if !have_file(IMAPD, "courier-imap") {
        return;
    }
    let svc = Svc::new("imapd");
    let out = svc.check(None, &["imapd=/usr/bin/imapd", "softlimit=-m 5000000"], &[]);
    out.code(1);
    let line = out.line("FAIL memory /usr/bin/imapd: ");
    assert!(
        line.starts_with(
            r#"FAIL memory /usr/bin/imapd: does not load under softlimit "-m 5000000": error while loading shared libraries: libstdc++.so.6: failed to map segment from shared object (it loads from about -m "#
        ),
        "{line}"
    );
    let m = suggested(line);
    assert!(m.parse::<u64>().unwrap() > 5_000_000, "{m}");
    svc.check(
        None,
        &["imapd=/usr/bin/imapd", &format!("softlimit=-m {m}")],
        &[],
    )
    .code(0)
    .has("ok   memory /usr/bin/imapd");
}

#[test]
fn memory_hard_limit_too_low_for_any_m() {
    let svc = Svc::new("ulimit");
    // ulimit_v sets the hard limit: no -m can raise it.
    let out = svc.check(None, &["ulimit_v=1000"], &[]);
    out.code(1);
    let line = out.line("FAIL memory /bin/true: ");
    assert!(line.contains("even with -m 2147483648"), "{line}");
    assert!(
        line.contains("RLIMIT_AS's hard limit 1024000 from ulimit_v (--set) is too low"),
        "{line}"
    );
}

// 6. Rules.

/// An empty but well-formed cdb: 256 empty tables right after the header.
fn empty_cdb() -> Vec<u8> {
    let mut d = Vec::new();
    for _ in 0..256 {
        d.extend(2048u32.to_le_bytes());
        d.extend(0u32.to_le_bytes());
    }
    d
}

#[test]
fn rules_missing_broken_stale() {
    let svc = Svc::new("rules");
    let cdb = svc.path("imap.cdb").display().to_string();
    let tmp = svc.path("imap.tmp").display().to_string();
    let src = svc.path("imap.rules").display().to_string();
    let set = format!("rules={cdb}");
    svc.check(None, &[&set], &[]).fails(&format!(
        "FAIL rules {cdb}: does not exist: tcpserver would drop every connection (build it with tcprules, or set rules= for none)"
    ));
    svc.write("imap.cdb", &[0u8; 100]);
    svc.check(None, &[&set], &[]).fails(&format!(
        "FAIL rules {cdb}: is not a well-formed cdb: 100 bytes, shorter than the 2048-byte header (build it with tcprules)"
    ));
    let mut bad = empty_cdb();
    bad[8..12].copy_from_slice(&9999u32.to_le_bytes());
    svc.write("imap.cdb", &bad);
    svc.check(None, &[&set], &[]).fails(&format!(
        "FAIL rules {cdb}: is not a well-formed cdb: hash table 1 starts at 9999, outside the file (2048 bytes) (build it with tcprules)"
    ));
    svc.write("imap.cdb", &empty_cdb());
    svc.check(None, &[&set], &[])
        .code(0)
        .has(&format!("ok   rules {cdb} (0 rules)"));
    svc.write("imap.rules", b":allow\n");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&cdb)
        .unwrap()
        .set_modified(old)
        .unwrap();
    svc.check(None, &[&set], &[]).code(0).has(&format!(
        "warn rules {cdb}: older than its source {src}: changes there are not in effect (rebuild it: tcprules {cdb} {tmp} < {src})"
    ));
}

#[test]
fn rules_built_by_tcprules_pass() {
    if !have_file("/usr/bin/tcprules", "ucspi-tcp") {
        return;
    }
    let svc = Svc::new("tcprules");
    svc.write(
        "imap.rules",
        b"127.0.0.1:allow,RELAYCLIENT=\"\"\n10.:allow\n:deny\n",
    );
    let mut sh = Command::new("sh");
    sh.current_dir(&svc.dir)
        .args(["-c", "tcprules imap.cdb imap.tmp < imap.rules"]);
    let r = run_cmd(sh);
    assert_eq!(r.exit(), 0, "tcprules: {}", r.stderr_str());
    let cdb = svc.path("imap.cdb").display().to_string();
    svc.check(None, &[&format!("rules={cdb}")], &[])
        .code(0)
        .has(&format!("ok   rules {cdb} (3 rules)"));
}

// 7. Network.

#[test]
fn port_not_one_port() {
    let svc = Svc::new("port");
    svc.check(None, &["port=127.0.0.1.143,192.168.0.1.143"], &[]).fails(
        r#"FAIL settings: --set port "127.0.0.1.143,192.168.0.1.143" is a list of addresses: one tcpserver binds one address and port (run one service per address, with address= and port=)"#,
    );
    svc.check(None, &["port=70000"], &[])
        .fails(r#"FAIL settings: --set port "70000" is out of range (1-65535)"#);
    svc.check(None, &["port=courier-run-no-such-service"], &[]).fails(
        r#"FAIL settings: --set port "courier-run-no-such-service" is neither a number nor a TCP service name in /etc/services (write e.g. 143)"#,
    );
    svc.check(None, &["address=0 1"], &[])
        .fails(r#"FAIL settings: --set address "0 1" is not one host or IP address (tcpserver binds one; 0 means all)"#);
}

#[test]
fn privileged_port_for_an_unprivileged_server() {
    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if !have_root("to check setuidgid=nobody") {
        return;
    }
    if start <= 143 {
        // A property of the machine, not a missing tool: no CI failure.
        eprintln!("SKIPPED: needs port 143 to be privileged (ip_unprivileged_port_start={start})");
        return;
    }
    let svc = Svc::new("lowport");
    svc.check(None, &["setuidgid=nobody", "port=143"], &[]).fails(&format!(
        "FAIL port 143: below {start}, and tcpserver would run as uid 65534 (setuidgid=nobody), which may not bind it (run it as root (tcpserver's -u/-g drop root after binding), or use a port of {start} or above)"
    ));
}

#[test]
fn bind_a_port_in_use() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let svc = Svc::new("bind");
    svc.check(None, &[&format!("port={port}")], &["--bind"]).fails(&format!(
        "FAIL bind 127.0.0.1:{port}: unable to bind: Address already in use (something listens there already: is the service running? see ss -ltnp 'sport = :{port}')"
    ));
    // Without --bind: the process listening there is named, by pid.
    let out = svc.check(None, &[&format!("port={port}")], &[]);
    let me = std::process::id();
    assert!(
        out.lines().iter().any(
            |l| l.starts_with(&format!("FAIL port {port}: already taken by "))
                && l.contains(&format!("(pid {me})"))
        ),
        "{}",
        out.stdout
    );
    out.code(1);
    drop(busy);
    // A port free a moment ago binds (another one if someone took it).
    with_free_port(|port| {
        let out = svc.check(None, &[&format!("port={port}")], &["--bind"]);
        if out.stdout.contains("Address already in use") {
            return None;
        }
        out.code(0).has(&format!("ok   bind 127.0.0.1:{port}"));
        Some(())
    });
}

// 8. Courier settings that cannot apply.

#[test]
fn couriertcpd_settings() {
    let svc = Svc::new("courier");
    let conf = svc.fixture("couriertcpd.conf");
    let out = svc.check(
        None,
        &[&format!("config={conf}"), "server=tcpserver -v -RH -l0"],
        &[],
    );
    // A protection couriertcpd would give and tcpserver cannot: a FAIL
    // with the fix (it was a warning before server=couriertcpd existed).
    out.has(&format!(
        "FAIL MAXPERIP: {conf}:4:1: MAXPERIP=4 is not enforced: tcpserver has no per-IP limit (use server=couriertcpd, or ipsvd's tcpsvd (-C 4), or set MAXPERIP=0)"
    ))
    .has("info couriertcpd variables: PIDFILE, TCPDOPTS reach imapd's environment, but only couriertcpd, courierlogger or Courier's rc script read them")
    .has(&format!(
        "info PORT: PORT=143 ({conf}:3:1) is overridden by port={} (--set); imapd still sees PORT=143",
        port()
    ))
    .has(&format!(
        "info ADDRESS: ADDRESS=0 ({conf}:2:1) is overridden by address=127.0.0.1 (--set); imapd still sees ADDRESS=0"
    ));
    assert_eq!(
        out.fail_count(),
        1 + usize::from(!Path::new("/usr/bin/tcpserver").exists())
    );
}

// 9. tcpserver traps (parsed from the setting: tcpserver need not be here).

#[test]
fn tcpserver_traps() {
    let svc = Svc::new("traps");
    svc.check(None, &["server=tcpserver -v -RH -u nobody -g 0"], &[]).fails(
        r#"FAIL server: tcpserver's -u takes a number: "nobody" reads as 0, so the login program runs as root (write -u 65534, or use account= with -U)"#,
    );
    svc.check(None, &["server=tcpserver -RHU"], &[]).fails(
        "FAIL server: tcpserver -U reads $UID and $GID, which nothing sets: it silently stays root (set account= (envuidgid sets UID and GID), or remove -U)",
    );
    svc.check(None, &["server=tcpserver -RH -z"], &[]).fails(
        "FAIL server: tcpserver has no option -z: it would exit with its usage message (remove it; tcpserver takes -dDvqQhHrR1UXpPoO46 and -xtuglbBcI with a value)",
    );
    svc.check(None, &["server=tcpserver -RH 0 143"], &[]).fails(
        r#"FAIL server: "0" is not an option: tcpserver would take it as the host (give the host and port with address= and port=)"#,
    );
    svc.check(None, &["conlimit=abc"], &[]).fails(
        r#"FAIL settings: --set conlimit "abc" is not a positive number (tcpserver would silently read it as 0 and never accept a connection; write e.g. 40)"#,
    );
    svc.check(None, &["server=tcpserver -v"], &[])
        .has("warn server: without -R, tcpserver asks every client for an ident answer, and waits for it (add -R)")
        .has("warn server: without -H, tcpserver looks up every client's name in DNS, and waits for it (add -H)");
}

// 10. Maildir.

#[test]
fn maildir_of_a_preauthenticated_imapd() {
    let svc = Svc::new("maildir");
    let md = svc.path("Maildir").display().to_string();
    svc.check(None, &["login=", &format!("maildir={md}")], &[])
        .fails(&format!(
            "FAIL maildir {md}: does not exist (--set) (create it with maildirmake {md})"
        ));
    for d in ["cur", "new"] {
        std::fs::create_dir_all(svc.path("Maildir").join(d)).unwrap();
    }
    svc.check(None, &[&format!("maildir={md}")], &[]).fails(&format!(
        "FAIL maildir {md}: is not a Maildir: no tmp (--set) (create it with maildirmake {md}, or set maildir= to a Maildir)"
    ));
    std::fs::create_dir(svc.path("Maildir/tmp")).unwrap();
    svc.check(None, &[&format!("maildir={md}")], &[])
        .code(0)
        .has(&format!("ok   maildir {md}"));
}

// The whole: a healthy Debian 12 setup, and JSON.

/// Courier 5 logs in through authdaemond: with it stopped, --check FAILs
/// with the fix; started, the same setup passes.
#[test]
fn healthy_debian12_passes() {
    if !have_file(IMAPD, "courier-imap")
        || !have_file("/usr/sbin/couriertcpd", "courier-base")
        || !have_file(AUTHDAEMOND, "courier-authdaemon")
    {
        return;
    }
    if authdaemond_answers() {
        eprintln!(
            "SKIPPED (part): authdaemond runs on this machine; the stopped case is not checked"
        );
    } else {
        let svc = Svc::new("debian-noauth");
        let out = Out::from(run_cmd({
            let mut cmd = Command::new(BIN);
            cmd.current_dir(&svc.dir).args([
                "--check",
                "--set",
                "layout=debian",
                "--set",
                "rules=",
            ]);
            cmd
        }));
        out.code(1);
        assert!(
            out.stdout
                .contains("FAIL authdaemond: authdaemond's socket "),
            "no authdaemond FAIL in\n{}",
            out.stdout
        );
        assert!(
            out.stdout.contains("(start authdaemond: "),
            "no fix in\n{}",
            out.stdout
        );
    }
    let _authdaemond = Authdaemond::start();
    let svc = Svc::new("debian");
    let (port, text) = with_free_port(|port| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&svc.dir).args([
            "--check",
            "--bind",
            "--set",
            "layout=debian",
            "--set",
            "address=127.0.0.1",
            "--set",
            &format!("port={port}"),
            "--set",
            "rules=",
        ]);
        let out = Out::from(run_cmd(cmd));
        if out.stdout.contains("Address already in use") {
            return None;
        }
        out.code(0);
        Some((port, out.stdout))
    });
    for want in [
        "ok   config /etc/courier/imapd",
        "ok   account courier (uid ",
        // layout=debian runs what Debian's rc runs: couriertcpd.
        "ok   program /usr/sbin/couriertcpd (server)",
        "ok   program /usr/lib/courier/courier/imaplogin (login)",
        "ok   program /usr/bin/imapd (imapd)",
        "ok   memory /usr/bin/imapd",
        &format!("ok   bind 127.0.0.1:{port}"),
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(want)),
            "no {want:?} in\n{text}"
        );
    }
    // Nothing written: the envdir was only compared.
    assert!(!svc.path("env").exists());
}

#[test]
fn json_report() {
    let svc = Svc::new("json");
    let out = svc.check(
        None,
        &["account=courier-run-no-such-account"],
        &["--format", "json"],
    );
    out.code(1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let list = v.as_array().unwrap();
    assert!(list.iter().all(|o| {
        ["status", "check", "message", "fix"]
            .iter()
            .all(|k| o[k].is_string())
    }));
    let fail: Vec<_> = list.iter().filter(|o| o["status"] == "fail").collect();
    assert_eq!(fail.len(), 1, "{}", out.stdout);
    // A problem is data: message and fix apart, as the fatal line and the
    // FAIL line render them.
    assert_eq!(fail[0]["check"], "account courier-run-no-such-account");
    assert_eq!(
        fail[0]["message"],
        "account: unknown account courier-run-no-such-account"
    );
    assert_eq!(
        fail[0]["fix"],
        "create it, or set account to an existing account; account= for none"
    );
    assert!(
        list.iter()
            .any(|o| o["status"] == "ok" && o["check"] == "memory /bin/true")
    );
    assert!(list.iter().any(|o| o["status"] == "info"));
    let out = svc.check(None, &[], &["--format", "sh"]);
    out.code(100);
    assert!(
        out.stderr.contains("--format sh is for --dry-run"),
        "{}",
        out.stderr
    );
}

// The output path: a reader that goes away.

/// `courier-run --check` into a pipe whose reader is gone (the first write
/// fails with EPIPE), and `courier-run --check | head -n 1` under bash's
/// pipefail (courier-run's own status): the end of the output, exit 0, no
/// "Broken pipe".
#[test]
fn closed_pipe_ends_the_report() {
    let svc = Svc::new("pipe");
    let r = run_into_closed_pipe(svc.cmd(None, &[], &[]));
    assert_eq!(
        (r.code, r.stderr_str()),
        (Some(0), String::new()),
        "--check into a closed pipe"
    );
    if !have("bash (for set -o pipefail)", which("bash").is_some()) {
        return;
    }
    let mut cmd = Command::new("bash");
    cmd.current_dir(&svc.dir)
        .args([
            "-c",
            r#"set -o pipefail; "$@" | head -n 1; echo "status $?" >&2"#,
        ])
        .arg("bash")
        .arg(BIN)
        .arg("--check");
    for s in base() {
        cmd.args(["--set", &s]);
    }
    let r = run_cmd(cmd);
    assert_eq!(r.stdout_str().lines().count(), 1, "{}", r.stdout_str());
    assert_eq!(r.stderr_str(), "status 0\n", "--check | head -n 1");
}

// Ownership fixes name the right bit.

/// A world-writable directory whose name contains "group" above a config
/// file: the fix is `chmod o-w DIR`, not `chmod g-w DIR`.
#[test]
fn world_writable_groupware_directory_gets_chmod_o_w() {
    if !have_root("the ownership check runs only as root") {
        return;
    }
    let svc = Svc::new("groupware");
    let dir = svc.t.mkdir("groupware", 0o777);
    let conf = svc.write("groupware/imapd", b"IMAP_IDLE_TIMEOUT=60\n");
    let meta = std::fs::metadata(&dir).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&meta),
        0,
        "owned by root"
    );
    let out = svc.check(None, &[&format!("config={conf}")], &[]);
    let dir = dir.display();
    out.fails(&format!(
        "FAIL ownership {conf}: its directory {dir} is writable by everyone: whoever can write it decides what runs as root (chmod o-w {dir})"
    ));
    assert!(!out.stdout.contains("chmod g-w"), "{}", out.stdout);
}

// 11. TLS: what makes a started -ssl service (or STARTTLS) useless.

/// The certificate behind TLS_CERTFILE, through --check on service=imapd-ssl:
/// missing and mismatched-key are FAILs, readable by others a warning, each
/// with its fix; a good one passes. (Expiry is covered by src/tls.rs's unit
/// tests, which make certificates with chosen dates.)
#[test]
fn tls_certificate_of_an_ssl_service() {
    if !have("openssl", which("openssl").is_some()) {
        return;
    }
    let svc = Svc::new("tls");
    let openssl = |args: &[&str]| {
        let mut c = Command::new("openssl");
        c.args(args).current_dir(&svc.dir);
        let r = run_cmd(c);
        assert_eq!(r.exit(), 0, "openssl {args:?}: {}", r.stderr_str());
    };
    for k in ["a", "b"] {
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-out",
            &format!("{k}.key"),
        ]);
    }
    openssl(&[
        "req", "-x509", "-key", "a.key", "-out", "a.crt", "-days", "30", "-subj", "/CN=t",
    ]);
    let cat = |name: &str, parts: &[&str]| {
        let mut pem = Vec::new();
        for p in parts {
            pem.extend(std::fs::read(svc.path(p)).unwrap());
        }
        let path = svc.write(name, &pem);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        path
    };
    let good = cat("good.pem", &["a.crt", "a.key"]);
    let mismatched = cat("mismatched.pem", &["a.crt", "b.key"]);
    let open = cat("open.pem", &["a.crt", "a.key"]);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let missing = svc.path("missing.pem").display().to_string();
    let run = |cert: &str| {
        svc.write("ssl.conf", format!("TLS_CERTFILE={cert}\n").as_bytes());
        svc.check(None, &["service=imapd-ssl", "config=./ssl.conf"], &[])
    };
    let tls = |out: &Out, word: &str| -> Vec<String> {
        out.lines()
            .into_iter()
            .filter(|l| l.starts_with(word) && l.contains("tls (imapd-ssl)"))
            .map(str::to_string)
            .collect()
    };
    let out = run(&missing);
    let fails = tls(&out, "FAIL");
    assert!(
        fails
            .iter()
            .any(|l| l.contains("does not exist") && l.contains("(make one: ")),
        "{}",
        out.stdout
    );
    let out = run(&mismatched);
    assert!(
        tls(&out, "FAIL")
            .iter()
            .any(|l| l.contains("key") && l.contains(" (")),
        "{}",
        out.stdout
    );
    let out = run(&open);
    assert!(tls(&out, "FAIL").is_empty(), "{}", out.stdout);
    assert!(
        tls(&out, "warn").iter().any(|l| l.contains("chmod")),
        "{}",
        out.stdout
    );
    let out = run(&good);
    assert!(tls(&out, "FAIL").is_empty(), "{}", out.stdout);
    assert!(tls(&out, "warn").is_empty(), "{}", out.stdout);
    assert!(!tls(&out, "ok").is_empty(), "{}", out.stdout);
}
