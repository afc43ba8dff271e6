//! `courier-run --check` (issue 5), through the binary: one broken service
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

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_courier-run");
const IMAPD: &str = "/usr/bin/imapd";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/check");

/// Settings under which --check passes anywhere: each case changes one.
const BASE: &[&str] = &[
    "layout=debian",
    "config=",
    "account=",
    "envdir=",
    "server=/bin/true",
    "login=/bin/true",
    "imapd=/bin/true",
    "rules=",
    "address=127.0.0.1",
    "port=11143",
];

/// A scratch service directory under /tmp (root-owned, not writable by
/// others, so the ownership check passes), removed afterwards.
struct Svc {
    dir: PathBuf,
}

impl Svc {
    fn new(name: &str) -> Svc {
        let dir =
            std::env::temp_dir().join(format!("courier-run-check.{}.{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Svc { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, content: &[u8]) -> String {
        let p = self.path(name);
        std::fs::write(&p, content).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        p.to_string_lossy().into_owned()
    }

    fn fixture(&self, name: &str) -> String {
        self.write(
            name,
            &std::fs::read(Path::new(FIXTURES).join(name)).unwrap(),
        )
    }

    /// `courier-run [RUNFILE] --check --set BASE... --set SETS... EXTRA...`
    /// in the service directory.
    fn check(&self, runfile: Option<&str>, sets: &[&str], extra: &[&str]) -> Out {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&self.dir);
        cmd.args(runfile);
        cmd.arg("--check");
        for s in BASE.iter().chain(sets) {
            cmd.args(["--set", s]);
        }
        cmd.args(extra);
        let out = cmd.output().unwrap();
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Svc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
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

/// Is `path` there? When not: skip (false) with a reason, or panic under CI.
fn need(path: &str, why: &str) -> bool {
    if Path::new(path).exists() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{path} is missing under CI ({why}): .ci/run must install it");
    }
    eprintln!("skipped: {path} is missing ({why})");
    false
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
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
        .has("FAIL setuidgid courier-run-no-such-account: no such account (create it, or set setuidgid= to an existing account; setuidgid= for none)")
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
    out.has("ok   memory /bin/true").has("ok   port 11143");
    assert_eq!(out.fail_count(), 2, "{}", out.stdout);
}

#[test]
fn run_file_missing_and_unknown_set() {
    let svc = Svc::new("missing");
    svc.check(Some("nope"), &["bogus=1"], &[])
        .fails("FAIL run file: unable to read nope: No such file or directory (give the service's run file, e.g. ./run)")
        .has("FAIL settings: --set bogus=1: unknown setting bogus (did you mean login?)");
}

#[test]
fn run_file_crlf() {
    let svc = Svc::new("crlf-run");
    svc.write("run", b"#!/usr/local/bin/courier-run\r\nport=11143\r\n");
    svc.check(Some("run"), &[], &[]).fails(
        "FAIL run file: run: CRLF line ends: the kernel would look for the interpreter with a \\r at its end (convert it with dos2unix)",
    );
}

#[test]
fn config_crlf() {
    let svc = Svc::new("crlf-conf");
    let conf = svc.write("imapd", b"IMAP_IDLE_TIMEOUT=60\r\n");
    svc.check(None, &[&format!("config={conf}")], &[]).fails(&format!(
        "FAIL config: {conf}: CRLF line ends: every value would end in a carriage return (convert it with dos2unix)"
    ));
}

#[test]
fn config_value_envdir_cannot_carry() {
    let svc = Svc::new("blank");
    let conf = svc.fixture("trailing-blank.conf");
    svc.check(None, &[&format!("config={conf}")], &[]).fails(&format!(
        "FAIL config: {conf}:2:1: the value of IMAP_TRASHFOLDERNAME ends in a space or tab, which daemontools' envdir would strip (remove the trailing blank)"
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
            "FAIL config: unable to read {missing}: No such file or directory (install Courier's config, or set config= to the files to read)"
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
    if !root() {
        eprintln!("skipped: the ownership check runs only as root");
        return;
    }
    let svc = Svc::new("owner");
    let run = svc.write("run", b"#!/usr/local/bin/courier-run\nport=11143\n");
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
        .fails("FAIL setuidgid courier-run-no-such-account: no such account (create it, or set setuidgid= to an existing account; setuidgid= for none)")
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
        "FAIL program courier-run-no-such-server (server): not found in PATH={} (install ucspi-tcp, or set server= with the front end's full path)",
        std::env::var("PATH").unwrap()
    ));
    svc.check(None, &["auth=authpwd"], &[])
        .fails("FAIL auth authpwd: a bare module name, but authdir is empty (set authdir, or give the module's full path)");
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
    if !need(IMAPD, "courier-imap") {
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
    if !need("/usr/bin/tcprules", "ucspi-tcp") {
        return;
    }
    let svc = Svc::new("tcprules");
    svc.write(
        "imap.rules",
        b"127.0.0.1:allow,RELAYCLIENT=\"\"\n10.:allow\n:deny\n",
    );
    let ok = Command::new("sh")
        .current_dir(&svc.dir)
        .args(["-c", "tcprules imap.cdb imap.tmp < imap.rules"])
        .status()
        .unwrap();
    assert!(ok.success());
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
        r#"FAIL port 127.0.0.1.143,192.168.0.1.143: --set port "127.0.0.1.143,192.168.0.1.143" is a list of addresses: one tcpserver binds one address and port (run one service per address, with address= and port=)"#,
    );
    svc.check(None, &["port=70000"], &[])
        .fails(r#"FAIL port 70000: --set port "70000" is out of range (1-65535)"#);
    svc.check(None, &["port=courier-run-no-such-service"], &[]).fails(
        r#"FAIL port courier-run-no-such-service: --set port "courier-run-no-such-service" is neither a number nor a TCP service name in /etc/services (write e.g. 143)"#,
    );
    svc.check(None, &["address=0 1"], &[])
        .fails(r#"FAIL address 0 1: --set address "0 1" is not one host or IP address (tcpserver binds one; 0 means all)"#);
}

#[test]
fn privileged_port_for_an_unprivileged_server() {
    let start: u32 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024);
    if !root() || start <= 143 {
        eprintln!(
            "skipped: needs root (for setuidgid) and port 143 to be privileged (ip_unprivileged_port_start={start})"
        );
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
    drop(busy);
    svc.check(None, &[&format!("port={port}")], &["--bind"])
        .code(0)
        .has(&format!("ok   bind 127.0.0.1:{port}"));
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
    out.has(&format!(
        "warn MAXPERIP: {conf}:4:1: MAXPERIP=4 is not enforced: tcpserver has no per-IP limit (use ipsvd's tcpsvd -C 4 as server, or remove MAXPERIP)"
    ))
    .has("info couriertcpd variables: PIDFILE, TCPDOPTS reach imapd's environment, but only couriertcpd, courierlogger or Courier's rc script read them")
    .has(&format!(
        "info PORT: PORT=143 ({conf}:3:1) is overridden by port=11143 (--set); imapd still sees PORT=143"
    ))
    .has(&format!(
        "info ADDRESS: ADDRESS=0 ({conf}:2:1) is overridden by address=127.0.0.1 (--set); imapd still sees ADDRESS=0"
    ));
    assert_eq!(
        out.fail_count(),
        usize::from(!Path::new("/usr/bin/tcpserver").exists())
    );
}

// 9. tcpserver traps (parsed from the setting: tcpserver need not be here).

#[test]
fn tcpserver_traps() {
    let svc = Svc::new("traps");
    svc.check(None, &["server=tcpserver -v -RH -u nobody -g 0"], &[]).fails(
        r#"FAIL server: -u nobody: tcpserver takes a number and reads "nobody" as 0: it would silently keep running as root (write -u 65534)"#,
    );
    svc.check(None, &["server=tcpserver -RHU"], &[]).fails(
        "FAIL server: -U reads $UID and $GID, which nothing sets without account=: tcpserver would silently keep running as root (set account= to the account to run as, or drop -U)",
    );
    svc.check(None, &["server=tcpserver -RH -z"], &[]).fails(
        "FAIL server: tcpserver has no option -z: it would exit with its usage message (remove it; tcpserver 0.88 takes -dDvqQhHrR1UXpPoO and -c -x -B -g -u -b -l -t with a value)",
    );
    svc.check(None, &["server=tcpserver -RH 0 143"], &[]).fails(
        r#"FAIL server: "0" is not an option: tcpserver would take it as the host, and courier-run's own arguments would shift (give the host and port with address= and port=)"#,
    );
    svc.check(None, &["conlimit=abc"], &[]).fails(
        r#"FAIL conlimit: --set conlimit "abc" is not a positive number: tcpserver would read it as 0 and never accept a connection (write e.g. 40)"#,
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

#[test]
fn healthy_debian12_passes() {
    if !need(IMAPD, "courier-imap") || !need("/usr/bin/tcpserver", "ucspi-tcp") {
        return;
    }
    let svc = Svc::new("debian");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(&svc.dir).args([
        "--check",
        "--bind",
        "--set",
        "layout=debian",
        "--set",
        "address=127.0.0.1",
        "--set",
        "port=11143",
        "--set",
        "rules=",
    ]);
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for want in [
        "ok   config /etc/courier/imapd",
        "ok   account courier (uid ",
        "ok   program /usr/bin/tcpserver (server)",
        "ok   program /usr/lib/courier/courier/imaplogin (login)",
        "ok   program /usr/bin/imapd (imapd)",
        "ok   memory /usr/bin/imapd",
        "ok   bind 127.0.0.1:11143",
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
    assert_eq!(fail[0]["check"], "account courier-run-no-such-account");
    assert_eq!(fail[0]["message"], "no such account");
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
