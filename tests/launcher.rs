//! The launcher, through the binary (issue 3's "Tests that must exist").
//!
//! `server` is pointed at a recorder (tests/recorder/recorder.rs, built with
//! plain `rustc` on first use) that writes down what it was exec'd with:
//! pid, argv, the environ block, /proc/self/limits, /proc/self/status
//! (uid, gid, groups, umask, SigIgn), where fds 1 and 2 point. Then:
//!
//! - dry-run truth: the launch's recorded values equal `--dry-run --format
//!   json`, field by field, for both layouts and a table of settings;
//! - no fork: the recorder's pid is the pid of the courier-run we spawned;
//! - oracles: the environment equals real daemontools' `env -i ...
//!   envuidgid ACCOUNT envdir DIR env -0`; the limits equal those under the
//!   real `softlimit FLAGS`; the `--format sh` script run by /bin/sh gives
//!   the recorder the same argv, environment and limits;
//! - bad inputs: the contract's exit code and a message naming the
//!   file:line:col or the setting, the same from `--dry-run`, the existing
//!   envdir untouched and nothing exec'd;
//! - `--dry-run` changes nothing.
//!
//! Every child runs in a fresh directory under the system temp dir (mode
//! 0755, so that `setuidgid nobody` can still exec the recorder), with an
//! environment of our own (nothing of the harness leaks in), a umask of 027
//! (so that "umask unchanged" is visible) and, where the case says, lowered
//! limits. daemontools and rustc must be installed (CI's .ci/install and
//! toolchain have them); without them the tests fail, they do not skip.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use courier_run::limits::{self, Limit, Resource, Resource::*};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_courier-run");
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/launcher");
/// Debian 12's config files, shared with the config reader's tests.
const SHARED_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const RECORDER_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recorder/recorder.rs");

/// The umask every child starts with (not the usual 022, so that a plan
/// without `umask` visibly leaves it alone).
const START_UMASK: u32 = 0o027;

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// ---------------------------------------------------------------------------
// Scratch directories and the recorder.

/// A directory removed on drop: `root/` (0755) holding `bin/` (empty),
/// `etc/` (configs), `svc/` (the service directory, cwd of every child) and
/// `out/` (1777, where the recorder writes).
struct Scratch {
    root: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let root = std::env::temp_dir().join(format!(
            "courier-run-launcher-{}-{}-{tag}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&root);
        for (d, mode) in [("", 0o755), ("bin", 0o755), ("etc", 0o755), ("svc", 0o755)] {
            let p = root.join(d);
            fs::create_dir_all(&p).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        }
        let out = root.join("out");
        fs::create_dir(&out).unwrap();
        fs::set_permissions(&out, fs::Permissions::from_mode(0o1777)).unwrap();
        Scratch { root }
    }

    fn svc(&self) -> PathBuf {
        self.root.join("svc")
    }

    fn recorder(&self) -> PathBuf {
        shared_bin().join("recorder")
    }

    fn record_path(&self) -> PathBuf {
        self.root.join("out/record")
    }

    /// The `server` setting: the recorder, writing to out/record.
    fn server(&self) -> String {
        format!(
            "{} {}",
            self.recorder().display(),
            self.record_path().display()
        )
    }

    /// Copy a fixture into etc/ (world-readable, whatever the checkout's
    /// modes): CI's checkout may live where `nobody` cannot read.
    fn fixture(&self, name: &str) -> PathBuf {
        let to = self.root.join("etc").join(name);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let own = Path::new(FIXTURES).join(name);
        let from = if own.exists() {
            own
        } else {
            Path::new(SHARED_FIXTURES).join(name)
        };
        fs::copy(from, &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
        to
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Replace @ROOT@ (this scratch dir), @BIN@ ([`shared_bin`]) and @FIX@
    /// (the fixtures).
    fn subst(&self, s: &str) -> String {
        s.replace("@ROOT@", &self.root.to_string_lossy())
            .replace("@BIN@", &shared_bin().to_string_lossy())
            .replace("@FIX@", FIXTURES)
    }

    fn take_record(&self) -> Option<Record> {
        let p = self.record_path();
        let data = fs::read(&p).ok()?;
        fs::remove_file(&p).unwrap();
        Some(Record::parse(&data))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A directory for the executables of this test run, under the system
/// temp dir (0755: `nobody` must be able to exec them, and CI's checkout
/// may live under /root): `recorder`, built here by plain `rustc` (the one
/// on PATH, or $RUSTC), and `courier-run`, a copy for the runs as nobody.
///
/// Both are written by child processes (rustc, cp), never by this one:
/// a test thread forking while this process holds an executable open for
/// writing would make exec'ing it fail with ETXTBSY ("Text file busy").
/// Directories of earlier runs whose process is gone are removed.
fn shared_bin() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        let prefix = "courier-run-launcher-bin-";
        for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix)
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(&rustc)
            .args(["--edition", "2021", "-C", "debuginfo=0", "-o"])
            .arg(dir.join("recorder"))
            .arg(RECORDER_SRC)
            .output()
            .unwrap_or_else(|e| panic!("unable to run {rustc:?} to build the recorder: {e}"));
        assert!(
            out.status.success(),
            "building the recorder failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cp = Command::new("cp")
            .arg(BIN)
            .arg(dir.join("courier-run"))
            .status()
            .unwrap();
        assert!(cp.success(), "cp {BIN}");
        for f in ["recorder", "courier-run"] {
            fs::set_permissions(dir.join(f), fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    })
}

/// A daemontools (or coreutils) program, by absolute path, so that no PATH
/// of the case decides which one runs.
fn tool(name: &str) -> PathBuf {
    for d in ["/usr/bin", "/bin", "/usr/local/bin", "/command"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install daemontools (see .ci/install)");
}

// ---------------------------------------------------------------------------
// What the recorder wrote.

#[derive(Debug)]
struct Record {
    pid: u32,
    argv: Vec<Vec<u8>>,
    /// The environ block as the kernel gave it, entry by entry.
    environ: Vec<Vec<u8>>,
    limits_raw: String,
    limits: BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
    /// real, effective, saved, fs
    uid: Vec<u32>,
    gid: Vec<u32>,
    groups: Vec<u32>,
    umask: u32,
    sig_ign: u64,
    exe: PathBuf,
    fd1: String,
    fd2: String,
    cwd: PathBuf,
}

impl Record {
    fn parse(data: &[u8]) -> Record {
        let mut sections: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut rest = data;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&c| c == b'\n').expect("header line");
            let header = std::str::from_utf8(&rest[..nl]).unwrap();
            let (name, len) = header.split_once(' ').expect("NAME LEN");
            let len: usize = len.parse().unwrap();
            let body = &rest[nl + 1..nl + 1 + len];
            sections.insert(name.to_string(), body.to_vec());
            rest = &rest[nl + 1 + len + 1..];
        }
        let text = |n: &str| String::from_utf8(sections[n].clone()).unwrap();
        let split0 = |b: &[u8]| -> Vec<Vec<u8>> {
            if b.is_empty() {
                return vec![];
            }
            let b = b.strip_suffix(&[0]).unwrap_or(b);
            b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
        };
        let status = text("status");
        let field = |name: &str| -> String {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
                .trim()
                .to_string()
        };
        let nums = |s: String| -> Vec<u32> {
            s.split_ascii_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        let limits_raw = text("limits");
        let limits = Resource::ALL
            .iter()
            .map(|&r| (r.name(), proc_limit(&limits_raw, r)))
            .collect();
        Record {
            pid: text("pid").parse().unwrap(),
            argv: sections["argv"]
                .split(|&c| c == 0)
                .map(<[u8]>::to_vec)
                .collect(),
            environ: split0(&sections["environ"]),
            limits,
            limits_raw,
            uid: nums(field("Uid:")),
            gid: nums(field("Gid:")),
            groups: nums(field("Groups:")),
            umask: u32::from_str_radix(&field("Umask:"), 8).unwrap(),
            sig_ign: u64::from_str_radix(&field("SigIgn:"), 16).unwrap(),
            exe: PathBuf::from(text("exe")),
            fd1: text("fd1"),
            fd2: text("fd2"),
            cwd: PathBuf::from(text("cwd")),
        }
    }

    /// The environment as name -> value; duplicates are a failure (getenv
    /// and envdir would disagree about which one counts).
    fn env(&self) -> BTreeMap<String, String> {
        env_map(&self.environ, "recorded environment")
    }

    fn sigpipe_ignored(&self) -> bool {
        const SIGPIPE: u32 = 13;
        self.sig_ign >> (SIGPIPE - 1) & 1 == 1
    }
}

fn env_map(entries: &[Vec<u8>], what: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for e in entries {
        let e = String::from_utf8(e.clone()).unwrap_or_else(|_| panic!("{what}: not UTF-8"));
        let (n, v) = e
            .split_once('=')
            .unwrap_or_else(|| panic!("{what}: {e:?} has no ="));
        assert!(
            map.insert(n.to_string(), v.to_string()).is_none(),
            "{what}: {n} twice"
        );
    }
    map
}

/// One row of /proc/PID/limits, by its label: (soft, hard), None = unlimited.
fn proc_limit(text: &str, r: Resource) -> (Option<u64>, Option<u64>) {
    let row = text
        .lines()
        .find_map(|l| l.strip_prefix(r.proc_name()))
        .unwrap_or_else(|| panic!("no {} row in /proc/self/limits", r.proc_name()));
    let mut w = row.split_ascii_whitespace();
    let mut num = || match w.next().expect("a value") {
        "unlimited" => None,
        n => Some(n.parse::<u64>().unwrap()),
    };
    (num(), num())
}

// ---------------------------------------------------------------------------
// Running courier-run (and the oracles) under controlled conditions.

/// The environment every child starts with: nothing of the harness, a few
/// values that an envdir could not carry (the inherited environment is
/// passed through, not written), and names the config or envuidgid change.
fn start_env(s: &Scratch) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/nonexistent-home"),
        ("LANG", "C.UTF-8"),
        ("TEST_SPACES", "two  spaces\tand a trailing blank "),
        ("TEST_NEWLINE", "line1\nline2"),
        ("TEST_EMPTY", ""),
        ("TEST_QUOTES", "it's \"quoted\" $HOME `x`"),
        ("UID", "12345"),
        ("GID", "54321"),
        ("MAILDIRPATH", "inherited-Maildir"),
        ("ADDRESS", "10.9.8.7"),
        // Not a shell name: envdir passes it on, dash drops it.
        ("TEST.DOTTED-NAME", "kept"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .chain([("TEST_ROOT".to_string(), s.root.display().to_string())])
    .collect()
}

/// How a child starts: umask, lowered limits (resource, soft, hard; capped
/// by the current hard limit), and optionally as another user.
#[derive(Clone, Default)]
struct Pre {
    limits: Vec<(Resource, u64, u64)>,
    user: Option<(u32, u32)>,
}

fn pre_map(lowered: &[(Resource, u64, u64)]) -> BTreeMap<Resource, Limit> {
    let mut map = limits::current().unwrap();
    for &(r, soft, hard) in lowered {
        let hard = hard.min(map[&r].hard.unwrap_or(u64::MAX));
        map.insert(
            r,
            Limit {
                soft: Some(soft.min(hard)),
                hard: Some(hard),
            },
        );
    }
    map
}

fn command(program: &Path, s: &Scratch, env: &[(String, String)], pre: &Pre) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(s.svc())
        .env_clear()
        .envs(env.iter().map(|(n, v)| (n, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let map = pre_map(&pre.limits);
    let user = pre.user;
    // SAFETY: runs between fork and exec. Allocating there (limits::apply
    // does, on its error path) is fine with glibc, whose fork() resets
    // malloc's locks in the child; nothing else here allocates.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(START_UMASK));
            limits::apply(&map).map_err(io::Error::other)?;
            if let Some((uid, gid)) = user {
                let gid = nix::unistd::Gid::from_raw(gid);
                nix::unistd::setgroups(&[gid])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            }
            Ok(())
        })
    };
    cmd
}

/// One run of courier-run: its pid, exit code, stdout, stderr.
struct Ran {
    pid: u32,
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_cmd(mut cmd: Command) -> Ran {
    let child = cmd.spawn().expect("spawn");
    let pid = child.id();
    let out: Output = child.wait_with_output().unwrap();
    Ran {
        pid,
        code: out.status.code().unwrap_or_else(|| {
            panic!(
                "killed by a signal: {:?}\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn courier_run(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Ran {
    courier_run_bin(Path::new(BIN), s, args, env, pre)
}

fn courier_run_bin(
    bin: &Path,
    s: &Scratch,
    args: &[String],
    env: &[(String, String)],
    pre: &Pre,
) -> Ran {
    let mut cmd = command(bin, s, env, pre);
    cmd.args(args);
    run_cmd(cmd)
}

fn with(args: &[String], more: &[&str]) -> Vec<String> {
    args.iter()
        .cloned()
        .chain(more.iter().map(|m| m.to_string()))
        .collect()
}

/// `--dry-run --format json`: the plan.
fn dry_json(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Value {
    let r = courier_run(s, &with(args, &["--dry-run", "--format", "json"]), env, pre);
    assert_eq!(r.code, 0, "dry run failed: {}{}", r.stdout, r.stderr);
    serde_json::from_str(&r.stdout).unwrap()
}

/// The launch, which must exec the recorder: (the run, the record).
fn launch(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> (Ran, Record) {
    let r = courier_run(s, args, env, pre);
    assert_eq!(r.code, 0, "launch failed: {}{}", r.stdout, r.stderr);
    let rec = s
        .take_record()
        .unwrap_or_else(|| panic!("the recorder did not run: {}{}", r.stdout, r.stderr));
    (r, rec)
}

fn json_limit(v: &Value) -> Option<u64> {
    if v.is_null() {
        None
    } else {
        Some(v.as_u64().expect("a limit is a number or null"))
    }
}

fn json_limits(plan: &Value) -> BTreeMap<&'static str, (Option<u64>, Option<u64>)> {
    Resource::ALL
        .iter()
        .map(|&r| {
            let l = &plan["limits"][r.name()];
            assert!(l.is_object(), "plan has no limits.{}", r.name());
            (r.name(), (json_limit(&l["soft"]), json_limit(&l["hard"])))
        })
        .collect()
}

fn json_env(plan: &Value) -> BTreeMap<String, String> {
    plan["env"]
        .as_object()
        .expect("env is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect()
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

fn json_u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("number") as u32)
        .collect()
}

/// Mismatches collected over one case, reported all at once.
#[derive(Default)]
struct Diffs {
    compared: usize,
    failures: Vec<String>,
}

impl Diffs {
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        self.compared += 1;
        if got != want {
            self.failures
                .push(format!("{what}:\n    got:  {got:?}\n    want: {want:?}"));
        }
    }

    fn env(&mut self, what: &str, got: &BTreeMap<String, String>, want: &BTreeMap<String, String>) {
        self.compared += 1;
        let mut lines = Vec::new();
        for (k, v) in want {
            match got.get(k) {
                None => lines.push(format!("    missing {k}={v:?}")),
                Some(g) if g != v => lines.push(format!("    {k}: got {g:?}, want {v:?}")),
                Some(_) => {}
            }
        }
        for (k, v) in got {
            if !want.contains_key(k) {
                lines.push(format!("    extra {k}={v:?}"));
            }
        }
        if !lines.is_empty() {
            self.failures.push(format!("{what}:\n{}", lines.join("\n")));
        }
    }

    fn limits(
        &mut self,
        what: &str,
        got: &BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
        want: &BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
    ) {
        for r in Resource::ALL {
            let (g, w) = (got[r.name()], want[r.name()]);
            self.eq(&format!("{what} {} soft", r.name()), g.0, w.0);
            self.eq(&format!("{what} {} hard", r.name()), g.1, w.1);
        }
    }

    fn check(self, case: &str) -> usize {
        assert!(
            self.failures.is_empty(),
            "{case}: {} of {} comparisons differ:\n{}",
            self.failures.len(),
            self.compared,
            self.failures.join("\n")
        );
        self.compared
    }
}

fn bytes_to_strings(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Every field of the plan against what the exec'd program saw.
fn compare_plan(d: &mut Diffs, plan: &Value, ran: &Ran, rec: &Record, start_groups: &[u32]) {
    d.eq(
        "argv",
        bytes_to_strings(&rec.argv),
        json_strings(&plan["argv"]),
    );
    let program = PathBuf::from(plan["program"].as_str().unwrap());
    d.eq(
        "program (the recorder's /proc/self/exe)",
        rec.exe.clone(),
        fs::canonicalize(&program).unwrap(),
    );
    d.env("env", &rec.env(), &json_env(plan));
    d.limits("limits", &rec.limits, &json_limits(plan));
    let uid = plan["uid"].as_u64().unwrap() as u32;
    let gid = plan["gid"].as_u64().unwrap() as u32;
    d.eq(
        "uid (real, effective, saved, fs)",
        rec.uid.clone(),
        vec![uid; 4],
    );
    d.eq(
        "gid (real, effective, saved, fs)",
        rec.gid.clone(),
        vec![gid; 4],
    );
    let mut groups = json_u32s(&plan["groups"]);
    groups.sort_unstable();
    d.eq("groups", rec.groups.clone(), groups);
    let umask = match &plan["umask"] {
        Value::Null => START_UMASK,
        v => u32::from_str_radix(v.as_str().unwrap(), 8).unwrap(),
    };
    d.eq(
        "umask",
        format!("{:03o}", rec.umask),
        format!("{umask:03o}"),
    );
    let merge = plan["stderr"] == "merge";
    d.eq("stderr merged (fd 2 is fd 1)", rec.fd1 == rec.fd2, merge);
    let banner: String = json_strings(&plan["banner"])
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    // What the launch printed, but warnings (not part of the plan's
    // promise): the banner on the right stream, nothing on the other.
    let (printed, other) = if merge {
        (&ran.stdout, &ran.stderr)
    } else {
        (&ran.stderr, &ran.stdout)
    };
    let not_warning = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("courier-run: warning: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    d.eq(
        "banner (what the launch printed)",
        not_warning(printed),
        banner,
    );
    d.eq(
        "nothing on the other stream",
        not_warning(other),
        String::new(),
    );
    d.eq("pid (no fork)", rec.pid, ran.pid);
    d.eq("SIGPIPE ignored", rec.sigpipe_ignored(), false);
    // The groups courier-run started with, when it does not switch.
    if plan["setuidgid"].is_null() {
        let mut start = start_groups.to_vec();
        start.sort_unstable();
        d.eq(
            "groups unchanged without setuidgid",
            rec.groups.clone(),
            start,
        );
    }
}

// ---------------------------------------------------------------------------
// The table of settings.

struct Case {
    name: &'static str,
    /// The run file, after `#!...courier-run` (@ROOT@, @FIX@ replaced).
    run: &'static str,
    /// Fixtures copied into etc/ (the run file names them as @ROOT@/etc/...).
    fixtures: &'static [&'static str],
    /// Extra files: (path under the scratch root, content).
    files: &'static [(&'static str, &'static str)],
    /// Directories to create under the scratch root.
    dirs: &'static [&'static str],
    /// inherit_env and account, for the daemontools oracle (kept in step
    /// with `run` by hand: the oracle must not ask courier-run).
    inherit: &'static str,
    account: &'static str,
    /// `server` written as a bare name looked up in PATH (else absolute).
    server_bare: bool,
    pre: &'static [(Resource, u64, u64)],
}

const LOWER_NOFILE: &[(Resource, u64, u64)] = &[(Nofile, 256, 1024), (Core, 0, 4_096_000)];

const CASES: &[Case] = &[
    Case {
        name: "debian: Debian 12 imapd, account nobody, inherit all",
        run: "layout=debian\nconfig=@ROOT@/etc/debian12/imapd\naccount=nobody\n",
        fixtures: &["debian12/imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: imapd + imapd-ssl, inherit_env=none, no account",
        run: "layout=debian\nconfig=\"@ROOT@/etc/debian12/imapd @ROOT@/etc/debian12/imapd-ssl\"\ninherit_env=none\naccount=\n",
        fixtures: &["debian12/imapd", "debian12/imapd-ssl"],
        files: &[],
        dirs: &[],
        inherit: "none",
        account: "",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: inherit_env names, account daemon, setuidgid nobody, umask 007",
        run: "layout=debian\nconfig=@ROOT@/etc/debian12/imapd\ninherit_env=\"HOME LANG TEST_SPACES TEST_NEWLINE NOT_THERE\"\naccount=daemon\nsetuidgid=nobody\numask=007\n",
        fixtures: &["debian12/imapd"],
        files: &[],
        dirs: &[],
        inherit: "HOME LANG TEST_SPACES TEST_NEWLINE NOT_THERE",
        account: "daemon",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "courier2: prefix, default config, auth modules with authdir, rules, softlimit -m -o",
        run: "layout=courier2\nprefix=@ROOT@/courier\naccount=nobody\nsoftlimit=\"-m 400000000 -o 200\"\nauth=\"authpwd authcram /opt/other/authvchkpw\"\n",
        fixtures: &[],
        files: &[(
            "courier/etc/imapd",
            "# courier2 layout: found as $prefix/etc/imapd\nMAILDIRPATH=$prefix/Maildir\nIMAP_ULIMITD=524288\nMAXDAEMONS=12\nSHARED=${sysconfdir}/shared:$libexecdir\n",
        )],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "courier2: 2004-style imapd, ulimit_v, umask 077, softlimit =, explicit address/port/conlimit/maildir/rules",
        run: "layout=courier2\nconfig=@ROOT@/etc/courier2-imapd\naccount=daemon\nulimit_v=1048576\numask=077\nsoftlimit=\"-a = -c 0 -t 100 -d 400000000 -o =\"\naddress=127.0.0.1\nport=1143\nconlimit=7\nmaildir=./Maildir\nrules=@ROOT@/etc/imap.cdb\nauth=\nauthdir=\n",
        fixtures: &["courier2-imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "daemon",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "courier2: envdir empty (config set directly), ulimit_v unlimited, account nobody",
        run: "layout=courier2\nconfig=@ROOT@/etc/courier2-imapd\nenvdir=\naccount=nobody\nulimit_v=unlimited\nsoftlimit=\nauth=authdaemon\nauthdir=@ROOT@/authlib/\n",
        fixtures: &["courier2-imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: config with unset references and odd quoting, nested envdir, no account",
        run: "layout=debian\nconfig=\"@ROOT@/etc/refs.conf\"\nenvdir=./state/env\naccount=\n",
        fixtures: &["refs.conf"],
        files: &[],
        dirs: &["svc/state"],
        inherit: "all",
        account: "",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: stderr keep, banner no, glued softlimit, unset refs, account daemon",
        run: "layout=debian\nconfig=@ROOT@/etc/refs.conf\nstderr=keep\nbanner=no\naccount=daemon\nsoftlimit=\"-m500000000 -o= -c=\"\n",
        fixtures: &["refs.conf"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "daemon",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "debian: server a bare name found through the config's PATH (the final environment)",
        run: "layout=debian\nconfig=@ROOT@/etc/path.conf\naccount=nobody\ninherit_env=\"HOME PATH\"\n",
        fixtures: &[],
        files: &[(
            "etc/path.conf",
            "PATH=/nonexistent:@BIN@:$PATH\nADDRESS=127.0.0.2\nPORT=1143\n",
        )],
        dirs: &[],
        inherit: "HOME PATH",
        account: "nobody",
        server_bare: true,
        pre: &[],
    },
    Case {
        name: "courier2: setuidgid daemon with envuidgid nobody, inherit_env none, umask from IMAP_UMASK, nested config refs",
        run: "layout=courier2\nprefix=/usr/local/courier-imap\nconfig=\"@ROOT@/etc/courier2-imapd @ROOT@/etc/refs.conf\"\naccount=nobody\nsetuidgid=daemon\ninherit_env=none\nsoftlimit=\"-s 8000000 -p 500 -f 100000000 -l 65536 -r 300000000\"\n",
        fixtures: &["courier2-imapd", "refs.conf"],
        files: &[],
        dirs: &[],
        inherit: "none",
        account: "nobody",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
];

/// Set up a case: run file written, fixtures copied; returns the
/// arguments of courier-run (`./run --set server=...`).
fn setup(s: &Scratch, c: &Case) -> Vec<String> {
    for f in c.fixtures {
        s.fixture(f);
    }
    for (p, text) in c.files {
        s.write(p, &s.subst(text));
    }
    for d in c.dirs {
        fs::create_dir_all(s.root.join(d)).unwrap();
    }
    let run = s.write(
        "svc/run",
        &format!(
            "#!{BIN}\n# {}\n{}",
            c.name.replace('\n', " "),
            s.subst(c.run)
        ),
    );
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let server = if c.server_bare {
        format!("recorder {}", s.record_path().display())
    } else {
        s.server()
    };
    vec!["./run".into(), "--set".into(), format!("server={server}")]
}

fn needs_root(c: &Case) -> bool {
    c.run.contains("setuidgid=")
}

/// The environment daemontools gives from the envdir courier-run wrote:
/// `env -i KEPT... [envuidgid ACCOUNT] envdir DIR env -0`.
fn daemontools_env(
    s: &Scratch,
    start: &[(String, String)],
    inherit: &str,
    account: &str,
    envdir: &str,
) -> BTreeMap<String, String> {
    let kept: Vec<&(String, String)> = start
        .iter()
        .filter(|(n, _)| match inherit {
            "all" => true,
            "none" => false,
            names => names.split_ascii_whitespace().any(|k| k == n),
        })
        .collect();
    let mut cmd = Command::new(tool("env"));
    cmd.current_dir(s.svc()).arg("-i");
    cmd.args(kept.iter().map(|(n, v)| format!("{n}={v}")));
    if !account.is_empty() {
        cmd.arg(tool("envuidgid")).arg(account);
    }
    cmd.arg(tool("envdir"))
        .arg(envdir)
        .arg(tool("env"))
        .arg("-0");
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "daemontools oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<Vec<u8>> = out
        .stdout
        .strip_suffix(&[0])
        .unwrap_or(&out.stdout)
        .split(|&c| c == 0)
        .filter(|e| !e.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    env_map(&entries, "daemontools' environment")
}

/// Names /bin/sh adds to the environment of what it execs, which a run
/// script cannot avoid: dash exports PWD (always, set to the cwd), bash
/// also SHLVL and `_`. They are not in courier-run's plan (it is not a
/// shell), so they are left out of the comparison with the sh script.
const SH_ADDS: &[&str] = &["PWD", "SHLVL", "_"];

/// The environment without what a shell adds ([`SH_ADDS`]) or drops: dash
/// does not pass on inherited names that are not shell names (such as
/// `TEST.DOTTED-NAME`), which courier-run, like daemontools' envdir, keeps.
fn without_sh_vars(mut env: BTreeMap<String, String>) -> BTreeMap<String, String> {
    for n in SH_ADDS {
        env.remove(*n);
    }
    env.retain(|n, _| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
    });
    env
}

/// `--format sh` run with /bin/sh in the service dir: its record.
fn run_sh_script(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Record {
    let r = courier_run(s, &with(args, &["--dry-run", "--format", "sh"]), env, pre);
    assert_eq!(r.code, 0, "--format sh failed: {}", r.stderr);
    let script = s.write("classic-run.sh", &r.stdout);
    let mut cmd = command(Path::new("/bin/sh"), s, env, pre);
    cmd.arg(&script);
    let ran = run_cmd(cmd);
    assert_eq!(
        ran.code, 0,
        "the --format sh script failed:\n{}\n{}{}",
        r.stdout, ran.stdout, ran.stderr
    );
    s.take_record()
        .unwrap_or_else(|| panic!("the sh script did not exec the recorder:\n{}", r.stdout))
}

fn start_groups() -> Vec<u32> {
    nix::unistd::getgroups()
        .unwrap()
        .iter()
        .map(|g| g.as_raw())
        .collect()
}

#[test]
fn dry_run_truth_and_oracles_for_the_table() {
    let mut total = 0;
    let mut cases = 0;
    let mut layouts = std::collections::BTreeSet::new();
    let mut oracle_env = 0;
    let mut oracle_sh = 0;
    for c in CASES {
        if needs_root(c) && !is_root() {
            eprintln!("skipped (needs root for setuidgid): {}", c.name);
            continue;
        }
        let s = Scratch::new("truth");
        let args = setup(&s, c);
        let env = start_env(&s);
        let pre = Pre {
            limits: c.pre.to_vec(),
            user: None,
        };

        // Dry-run truth.
        let plan = dry_json(&s, &args, &env, &pre);
        assert!(
            plan["envdir_unchanged"] != true,
            "{}: fresh envdir reported unchanged",
            c.name
        );
        let (ran, rec) = launch(&s, &args, &env, &pre);
        let mut d = Diffs::default();
        compare_plan(&mut d, &plan, &ran, &rec, &start_groups());
        d.eq("cwd", rec.cwd.clone(), fs::canonicalize(s.svc()).unwrap());
        let n = d.check(c.name);
        total += n;
        cases += 1;
        layouts.insert(plan_layout(&s, &args, &env, &pre));

        // After the launch the envdir is in place: the same plan, now
        // "unchanged", and a second launch must not rewrite it.
        let mut o = Diffs::default();
        if let Some(dir) = plan["envdir"].as_str() {
            let again = dry_json(&s, &args, &env, &pre);
            o.eq(
                "envdir_unchanged after a launch",
                again["envdir_unchanged"].clone(),
                Value::Bool(true),
            );
            let before = snapshot(&s.svc().join(dir));
            let (_, rec2) = launch(&s, &args, &env, &pre);
            o.eq(
                "second launch: envdir not rewritten",
                snapshot(&s.svc().join(dir)),
                before,
            );
            o.env("second launch: same environment", &rec2.env(), &rec.env());

            // Oracle (a): real daemontools on the envdir we wrote.
            let want = daemontools_env(&s, &env, c.inherit, c.account, dir);
            o.env("env vs daemontools envuidgid+envdir", &rec.env(), &want);
            oracle_env += 1;
        }

        // Oracle (c): the classic script, run by /bin/sh.
        let sh = run_sh_script(&s, &args, &env, &pre);
        o.eq("sh script: argv", sh.argv.clone(), rec.argv.clone());
        o.env(
            "sh script: env (without PWD, SHLVL, _)",
            &without_sh_vars(sh.env()),
            &without_sh_vars(rec.env()),
        );
        o.eq(
            "sh script: /proc/self/limits",
            sh.limits_raw.clone(),
            rec.limits_raw.clone(),
        );
        o.eq("sh script: uid", sh.uid.clone(), rec.uid.clone());
        o.eq("sh script: gid", sh.gid.clone(), rec.gid.clone());
        o.eq("sh script: groups", sh.groups.clone(), rec.groups.clone());
        o.eq("sh script: umask", sh.umask, rec.umask);
        o.check(&format!("{} (oracles)", c.name));
        oracle_sh += 1;
    }
    eprintln!(
        "dry-run truth: {total} field comparisons over {cases} variations ({} per variation), layouts {layouts:?}; daemontools env oracle on {oracle_env}, sh-script oracle on {oracle_sh}",
        total / cases.max(1)
    );
    assert!(cases >= 8 || !is_root(), "only {cases} variations ran");
    assert!(
        layouts.contains("courier2") && layouts.contains("debian"),
        "both layouts: {layouts:?}"
    );
}

/// The layout a run resolved to (from `--explain`).
fn plan_layout(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> String {
    let r = courier_run(
        s,
        &with(args, &["--dry-run", "--format", "json", "--explain"]),
        env,
        pre,
    );
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["settings"]["layout"]["value"]
        .as_str()
        .unwrap()
        .to_string()
}

// ---------------------------------------------------------------------------
// No fork.

#[test]
fn no_fork_the_recorder_is_the_process_we_started() {
    let s = Scratch::new("nofork");
    let c = &CASES[0];
    let args = setup(&s, c);
    let env = start_env(&s);
    let (ran, rec) = launch(&s, &args, &env, &Pre::default());
    assert_eq!(
        rec.pid, ran.pid,
        "the recorder ran as pid {} but courier-run was pid {}: it forked",
        rec.pid, ran.pid
    );
    assert_eq!(rec.exe, fs::canonicalize(s.recorder()).unwrap());
    assert!(
        !rec.sigpipe_ignored(),
        "SIGPIPE is ignored in the exec'd program"
    );
}

// ---------------------------------------------------------------------------
// Oracle: limits under the real softlimit.

/// Low hard limits (soft lower still), applied in both children first, so
/// that `=` and clamping above the hard limit are exercised.
const LOW: &[(Resource, u64, u64)] = &[
    (As, 2_000_000_000, 3_000_000_000),
    (Core, 0, 4_096_000),
    (Cpu, 100, 200),
    (Data, 1_000_000_000, 2_000_000_000),
    (Fsize, 1_000_000_000, 2_000_000_000),
    (Memlock, 65_536, 131_072),
    (Nofile, 256, 1024),
    (Nproc, 500, 1000),
    (Rss, 1_000_000_000, 2_000_000_000),
    (Stack, 8_388_608, 16_777_216),
];

/// (softlimit flags, lower first?, ulimit_v KiB). Values leave the recorder
/// room to load and write its file.
const SOFTLIMIT_CASES: &[(&str, bool, Option<&str>)] = &[
    ("-a 3000000001", false, None),
    ("-c 1234567", false, None),
    ("-d 500000001", false, None),
    ("-f 1000001", false, None),
    ("-l 65535", false, None),
    ("-m 500000001", false, None),
    ("-o 101", false, None),
    ("-p 999", false, None),
    ("-r 100000001", false, None),
    ("-s 1000001", false, None),
    ("-t 5", false, None),
    ("-c =", true, None),
    ("-o =", true, None),
    ("-a = -d = -f = -l = -p = -r = -s = -t =", true, None),
    ("-m =", true, None),
    ("-o 100000", true, None),
    ("-a 10000000000", true, None),
    ("-m 10000000000", true, None),
    ("-c 18446744073709551615", true, None),
    ("-c 18446744073709551615", false, None),
    ("-m 500000000 -o 100 -t 5", false, None),
    ("-m5000000000 -o= -c=", true, None),
    ("-m 400000000 -d 200000001 -s =", true, None),
    ("-d 200000001 -m 400000000", true, None),
    ("", false, Some("1048576")),
    ("", true, Some("1048576")),
    ("-a 600000001", false, Some("1048576")),
    ("-a 999999999999", false, Some("1048576")),
    ("-a =", true, Some("1048576")),
    ("-m 500000001 -o =", true, Some("2000000")),
];

#[test]
fn limits_equal_real_softlimit() {
    let s = Scratch::new("softlimit");
    let softlimit = tool("softlimit");
    s.write("etc/min.conf", "FOO=bar\n");
    let env = start_env(&s);
    let mut compared = 0;
    assert!(SOFTLIMIT_CASES.len() >= 15);
    for &(flags, lower, ulimit_v) in SOFTLIMIT_CASES {
        let case = format!("softlimit {flags:?}, lowered first: {lower}, ulimit_v {ulimit_v:?}");
        let pre = Pre {
            limits: if lower { LOW.to_vec() } else { vec![] },
            user: None,
        };
        let args: Vec<String> = [
            "--set",
            "layout=debian",
            "--set",
            &format!("config={}", s.root.join("etc/min.conf").display()),
            "--set",
            "account=",
            "--set",
            "envdir=",
            "--set",
            &format!("softlimit={flags}"),
            "--set",
            &format!("ulimit_v={}", ulimit_v.unwrap_or("")),
            "--set",
            &format!("server={}", s.server()),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let plan = dry_json(&s, &args, &env, &pre);
        let (_, ours) = launch(&s, &args, &env, &pre);

        // The real thing: [sh -c 'ulimit -v N; exec'] softlimit FLAGS recorder OUT.
        let mut cmd = match ulimit_v {
            None => command(&softlimit, &s, &env, &pre),
            Some(kib) => {
                let mut c = command(Path::new("/bin/sh"), &s, &env, &pre);
                c.args([
                    "-c",
                    "ulimit -v \"$1\" || exit 111; shift; exec \"$@\"",
                    "sh",
                    kib,
                ])
                .arg(&softlimit);
                c
            }
        };
        cmd.args(flags.split_ascii_whitespace())
            .arg(s.recorder())
            .arg(s.record_path());
        let r = run_cmd(cmd);
        assert_eq!(r.code, 0, "{case}: the real side failed: {}", r.stderr);
        let real = s.take_record().expect("the real side ran the recorder");

        let mut d = Diffs::default();
        d.eq(
            &format!("{case}: /proc/self/limits"),
            ours.limits_raw.clone(),
            real.limits_raw.clone(),
        );
        d.limits(&format!("{case}: vs softlimit"), &ours.limits, &real.limits);
        d.limits(
            &format!("{case}: vs dry run"),
            &ours.limits,
            &json_limits(&plan),
        );
        compared += d.check(&case);
    }
    eprintln!(
        "softlimit oracle: {} flag strings, {compared} comparisons",
        SOFTLIMIT_CASES.len()
    );
}

// ---------------------------------------------------------------------------
// Bad inputs.

/// An envdir's state: the directory's and each file's inode, mtime, mode,
/// content; and the names beside it (a leftover `.env.new.PID` would show).
#[derive(Debug, PartialEq, Eq)]
struct Snapshot {
    dir: Option<(u64, i64, i64, u32)>,
    files: Vec<(String, u64, i64, i64, u32, Vec<u8>)>,
    siblings: Vec<String>,
}

fn snapshot(dir: &Path) -> Snapshot {
    let stamp = |m: &fs::Metadata| (m.ino(), m.mtime(), m.mtime_nsec(), m.mode());
    let mut siblings: Vec<String> = fs::read_dir(dir.parent().unwrap())
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    siblings.sort();
    let Ok(meta) = fs::symlink_metadata(dir) else {
        return Snapshot {
            dir: None,
            files: vec![],
            siblings,
        };
    };
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            let (ino, t, ns, mode) = stamp(&m);
            (
                e.file_name().to_string_lossy().into_owned(),
                ino,
                t,
                ns,
                mode,
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    Snapshot {
        dir: Some(stamp(&meta)),
        files,
        siblings,
    }
}

struct Bad {
    name: &'static str,
    /// Run file lines after `layout=debian` and a good config (@ROOT@).
    run: &'static str,
    sets: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
    code: i32,
    /// Substrings of the `courier-run: fatal:` line (@ROOT@ replaced).
    says: &'static [&'static str],
    /// Run courier-run as nobody (root only).
    as_nobody: bool,
}

const BAD: &[Bad] = &[
    Bad {
        name: "unknown setting in the run file",
        run: "softlimt=\"-m 5000000\"\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:1: unknown setting softlimt",
            "did you mean softlimit?",
        ],
        as_nobody: false,
    },
    Bad {
        name: "unknown setting on the command line",
        run: "",
        sets: &["acount=nobody"],
        files: &[],
        code: 100,
        says: &[
            "--set acount=nobody: unknown setting acount",
            "did you mean account?",
        ],
        as_nobody: false,
    },
    Bad {
        name: "bad softlimit string",
        run: "softlimit=\"-m 5M\"\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:11: softlimit",
            "\"5M\" is not a number of bytes",
            "-m 5000000",
        ],
        as_nobody: false,
    },
    Bad {
        name: "softlimit with an unknown letter",
        run: "",
        sets: &["softlimit=-x 1"],
        files: &[],
        code: 100,
        says: &["--set softlimit", "unknown option -x"],
        as_nobody: false,
    },
    Bad {
        name: "unknown account",
        run: "account=no-such-account-here\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:9",
            "account",
            "unknown account no-such-account-here",
        ],
        as_nobody: false,
    },
    Bad {
        name: "unknown setuidgid account",
        run: "",
        sets: &["setuidgid=no-such-account-here"],
        files: &[],
        code: 100,
        says: &["setuidgid", "unknown account no-such-account-here"],
        as_nobody: false,
    },
    Bad {
        name: "PORT list in the config",
        run: "",
        sets: &[],
        files: &[(
            "etc/extra.conf",
            "# Courier's list form\nPORT=127.0.0.1.143,192.168.0.1.143\n",
        )],
        code: 100,
        says: &[
            "@ROOT@/etc/extra.conf:2:6",
            "port \"127.0.0.1.143,192.168.0.1.143\" is a list",
        ],
        as_nobody: false,
    },
    Bad {
        name: "conlimit=abc",
        run: "conlimit=abc\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:10", "conlimit \"abc\" is not a positive number"],
        as_nobody: false,
    },
    Bad {
        name: "MAXDAEMONS=abc in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "MAXDAEMONS=abc\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:1:12", "conlimit \"abc\""],
        as_nobody: false,
    },
    Bad {
        name: "IMAP_ULIMITD not a number",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\nIMAP_ULIMITD=128M\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:14", "ulimit_v"],
        as_nobody: false,
    },
    Bad {
        name: "umask not octal",
        run: "umask=0999\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:7", "umask \"0999\" is not an octal mode"],
        as_nobody: false,
    },
    Bad {
        name: "syntax error in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\nB=\"unterminated\nC=3\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:3", "unterminated double quote"],
        as_nobody: false,
    },
    Bad {
        name: "command substitution in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\n  B=$(rm -rf /)\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:5", "command substitution"],
        as_nobody: false,
    },
    Bad {
        name: "syntax error in the run file",
        run: "port='1143\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:6", "unterminated single quote"],
        as_nobody: false,
    },
    Bad {
        name: "missing config file",
        run: "config=@ROOT@/etc/no-such-imapd\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["@ROOT@/etc/no-such-imapd", "No such file or directory"],
        as_nobody: false,
    },
    Bad {
        name: "envdir parent is a regular file",
        run: "envdir=./plainfile/env\n",
        sets: &[],
        files: &[("svc/plainfile", "not a directory\n")],
        code: 111,
        says: &["./plainfile/env", "Not a directory"],
        as_nobody: false,
    },
    Bad {
        name: "envdir is a regular file",
        run: "envdir=./plainfile\n",
        sets: &[],
        files: &[("svc/plainfile", "not a directory\n")],
        code: 100,
        says: &["./run:5:8: envdir ./plainfile exists and is not a directory"],
        as_nobody: false,
    },
    Bad {
        name: "envdir is a symlink to the envdir",
        run: "envdir=./linked-env\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:8: envdir ./linked-env is a symbolic link"],
        as_nobody: false,
    },
    Bad {
        name: "envdir is the service directory itself",
        run: "",
        sets: &["envdir=."],
        files: &[],
        code: 100,
        says: &["--set envdir . names no directory of its own"],
        as_nobody: false,
    },
    Bad {
        name: "setuidgid without the privilege to switch (as nobody)",
        run: "account=\nsetuidgid=daemon\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["setuidgid daemon: unable to switch to uid"],
        as_nobody: true,
    },
    Bad {
        name: "envdir parent not writable (as nobody)",
        run: "account=\nenvdir=./locked/env\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &[
            "unable to write envdir ./locked/env",
            "./locked",
            "Permission denied",
        ],
        as_nobody: true,
    },
    Bad {
        name: "envdir parent not readable (as nobody)",
        run: "account=\nenvdir=./private/env\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["./private/env", "Permission denied"],
        as_nobody: true,
    },
    Bad {
        name: "program not found",
        run: "",
        sets: &["server=@ROOT@/bin/no-such-server -v"],
        files: &[],
        code: 127,
        says: &["unable to run @ROOT@/bin/no-such-server", "does not exist"],
        as_nobody: false,
    },
    Bad {
        name: "program not found in the final PATH",
        run: "",
        sets: &["server=no-such-server-anywhere"],
        files: &[],
        code: 127,
        says: &[
            "unable to run no-such-server-anywhere",
            "not found in PATH=",
        ],
        as_nobody: false,
    },
    Bad {
        name: "program not executable",
        run: "",
        sets: &["server=@ROOT@/etc/extra.conf"],
        files: &[("etc/extra.conf", "A=1\n")],
        code: 126,
        says: &[
            "unable to run @ROOT@/etc/extra.conf",
            "not an executable file",
        ],
        as_nobody: false,
    },
    Bad {
        name: "program is a directory",
        run: "",
        sets: &["server=@ROOT@/etc"],
        files: &[],
        code: 126,
        says: &["unable to run @ROOT@/etc"],
        as_nobody: false,
    },
];

#[test]
fn bad_inputs_exit_codes_messages_and_nothing_touched() {
    let mut ran_cases = 0;
    for b in BAD {
        if b.as_nobody && !is_root() {
            // Permissions that refuse nobody would not refuse their owner.
            eprintln!("skipped (needs root to run as nobody): {}", b.name);
            continue;
        }
        let s = Scratch::new("bad");
        let env = start_env(&s);
        // A good config, an existing envdir ./env written from another one,
        // and the same for the nested envdirs of the permission cases.
        s.write("etc/good.conf", "GOOD=1\nMAILDIRPATH=Maildir\n");
        s.write("etc/old.conf", "OLD=1\nSTALE=yes\n");
        for d in ["svc/locked", "svc/private"] {
            fs::create_dir(s.root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("env", s.root.join("svc/linked-env")).unwrap();
        let conf2env = |dir: &str| {
            let out = Command::new(BIN)
                .current_dir(s.svc())
                .args(["conf2env", dir])
                .arg(s.root.join("etc/old.conf"))
                .output()
                .unwrap();
            assert!(out.status.success(), "conf2env {dir}");
        };
        conf2env("./env");
        conf2env("./locked/env");
        conf2env("./private/env");
        fs::set_permissions(s.root.join("svc/locked"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(
            s.root.join("svc/private"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        for (p, text) in b.files {
            s.write(p, text);
        }
        let configs = if b.files.iter().any(|(p, _)| *p == "etc/extra.conf")
            && b.sets.iter().all(|x| !x.starts_with("server="))
        {
            format!("\"{0}/etc/good.conf {0}/etc/extra.conf\"", s.root.display())
        } else {
            format!("{}/etc/good.conf", s.root.display())
        };
        s.write(
            "svc/run",
            &format!(
                "#!{BIN}\nlayout=debian\nconfig={configs}\naccount=nobody\n{}",
                s.subst(b.run)
            ),
        );
        let mut args = vec!["./run".to_string()];
        args.extend(["--set".to_string(), format!("server={}", s.server())]);
        for x in b.sets {
            args.extend(["--set".to_string(), s.subst(x)]);
        }
        let pre = Pre {
            limits: vec![],
            user: b.as_nobody.then(|| {
                let u = nix::unistd::User::from_name("nobody")
                    .unwrap()
                    .expect("an account nobody");
                (u.uid.as_raw(), u.gid.as_raw())
            }),
        };
        let watched = ["./env", "./locked/env", "./private/env"];
        let before: Vec<Snapshot> = watched.iter().map(|d| snapshot(&s.svc().join(d))).collect();

        // As nobody, from a copy nobody can surely exec (CI's checkout may
        // live under /root).
        let bin = if pre.user.is_some() {
            shared_bin().join("courier-run")
        } else {
            PathBuf::from(BIN)
        };
        let launch = courier_run_bin(&bin, &s, &args, &env, &pre);
        let dry = courier_run_bin(&bin, &s, &with(&args, &["--dry-run"]), &env, &pre);
        let dry_json = courier_run_bin(
            &bin,
            &s,
            &with(&args, &["--dry-run", "--format", "json"]),
            &env,
            &pre,
        );

        let case = b.name;
        // The launch merges stderr into stdout first (the recipe's exec 2>&1).
        let said = format!("{}{}", launch.stdout, launch.stderr);
        let fatal: Vec<&str> = said
            .lines()
            .filter(|l| l.starts_with("courier-run: fatal: "))
            .collect();
        assert_eq!(
            launch.code, b.code,
            "{case}: launch exit code; it said: {said}"
        );
        assert_eq!(fatal.len(), 1, "{case}: one fatal line: {said}");
        for want in b.says {
            let want = s.subst(want);
            assert!(
                fatal[0].contains(&want),
                "{case}: the message lacks {want:?}: {}",
                fatal[0]
            );
        }
        assert_eq!(
            dry.code, b.code,
            "{case}: --dry-run exit code: {}",
            dry.stderr
        );
        assert_eq!(
            dry_json.code, b.code,
            "{case}: --dry-run --format json exit code"
        );
        assert_eq!(
            dry.stderr.trim_end(),
            fatal[0],
            "{case}: --dry-run says something else than the launch"
        );
        assert_eq!(dry.stdout, "", "{case}: --dry-run printed a plan");
        assert!(s.take_record().is_none(), "{case}: something was exec'd");
        // The permission cases: put the modes back so the snapshot can read.
        fs::set_permissions(s.root.join("svc/locked"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(
            s.root.join("svc/private"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let after: Vec<Snapshot> = watched.iter().map(|d| snapshot(&s.svc().join(d))).collect();
        for ((w, b4), af) in watched.iter().zip(&before).zip(&after) {
            assert_eq!(af, b4, "{case}: envdir {w} was touched");
        }
        ran_cases += 1;
    }
    eprintln!("bad inputs: {ran_cases} cases, launch and --dry-run agree");
}

// ---------------------------------------------------------------------------
// --dry-run changes nothing.

/// Every name under `dir`, recursively, with inode, mtime, mode and size.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, i64, i64, u32, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            out.push((
                e.path(),
                m.ino(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode(),
                m.len(),
            ));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_changes_nothing() {
    let s = Scratch::new("dryrun");
    let args = setup(&s, &CASES[0]);
    let env = start_env(&s);
    let pre = Pre::default();
    let before = tree(&s.root);
    for extra in [
        &["--dry-run"][..],
        &["--dry-run", "--explain"],
        &["--dry-run", "--format", "json"],
        &["--dry-run", "--format", "json", "--explain"],
        &["--dry-run", "--format", "sh"],
        &["--dry-run", "--format", "text", "--explain"],
    ] {
        let r = courier_run(&s, &with(&args, extra), &env, &pre);
        assert_eq!(r.code, 0, "{extra:?}: {}", r.stderr);
        assert_eq!(tree(&s.root), before, "{extra:?} changed the filesystem");
        assert!(
            !s.svc().join("env").exists(),
            "{extra:?} created the envdir"
        );
        assert!(s.take_record().is_none(), "{extra:?} exec'd the server");
    }

    // With an existing, different envdir: still untouched.
    let out = Command::new(BIN)
        .current_dir(s.svc())
        .args(["conf2env", "./env"])
        .arg(s.write("etc/old.conf", "OLD=1\n"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let before = tree(&s.root);
    let plan = dry_json(&s, &args, &env, &pre);
    assert_eq!(plan["envdir_unchanged"], false);
    assert_eq!(
        tree(&s.root),
        before,
        "--dry-run rewrote an outdated envdir"
    );
}
