//! The one test harness, shared by every integration test binary (each
//! says `mod common;`; tests/launcher/main.rs includes it by path):
//!
//! - the skip policy: [`have`] (skip with the reason printed; under
//!   `CI=true` a missing requirement is a failure);
//! - scratch directories removed on drop ([`TempDir`]);
//! - running a child: [`run`] / [`try_run`] give one [`Ran`], with stdin
//!   from /dev/null unless told otherwise, stdout and stderr captured in
//!   unlinked files, its own process group killed after it exits, and a
//!   timeout after which the group is killed and the test fails saying so;
//!   [`run_into_closed_pipe`] for a reader that went away, [`exec_with_envp`]
//!   for an environment std's `Command` cannot build (a name twice);
//! - snapshots of a directory (names, bytes, modes, inodes, mtimes) for
//!   "nothing changed" assertions ([`snapshot`], [`snapshot_opt`], [`tree`]);
//! - the one `env -0` (and /proc/PID/environ) parser ([`env0_entries`],
//!   [`parse_env0`]);
//! - ports without a fixed number ([`with_free_port`]);
//! - showing bytes in failure messages ([`show`] and friends).
//!
//! Beside it: `courier` (authdaemond, a throwaway mail user, a service
//! on a retried port, a real login), `oracles` (dash, daemontools' envdir, and ours on the same
//! config files), `corpus` (the config reader's corpus and generator),
//! `softlimit` (the one table of softlimit cases, for both layers),
//! `systemd` (systemd as PID 1 of a namespace, for units under test).

#![allow(dead_code)]

mod corpus;
pub mod courier;
mod oracles;
pub mod softlimit;
pub mod systemd;

#[allow(unused_imports)]
pub use corpus::*;
#[allow(unused_imports)]
pub use oracles::*;

use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::fs;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// An environment: name -> value, bytes.
pub type Vars = BTreeMap<Vec<u8>, Vec<u8>>;

/// An inherited environment as given to a child: (name, value) pairs, in
/// order (a name may be there twice).
pub type Env = Vec<(Vec<u8>, Vec<u8>)>;

/// The program under test: the launcher, which execs [`MAIN`] beside it
/// for all but a kept plan's start (src/programs.rs).
pub const BIN: &str = env!("CARGO_BIN_EXE_courier-run");

/// The main program the launcher execs.
pub const MAIN: &str = env!("CARGO_BIN_EXE_courier-run-main");

/// Copy both programs into `dir` (a place a test's other user or unit can
/// reach); the launcher's path, which finds the main program beside it.
pub fn copy_programs(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    for (from, name) in [(BIN, "courier-run"), (MAIN, "courier-run-main")] {
        let to = dir.join(name);
        std::fs::copy(from, &to).unwrap_or_else(|e| panic!("copy {from} to {}: {e}", to.display()));
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.join("courier-run")
}

/// daemontools' envdir, by its absolute path (the Debian package's).
pub const ENVDIR: &str = "/usr/bin/envdir";

/// How long a child may run when the caller does not say: far above what
/// any child of the suite needs, far below CI's own timeout.
pub const TIMEOUT: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The skip policy: a requirement is there, or the test is skipped with the
// reason printed (never under CI=true, where it fails).

mod skip;
pub use skip::{have, which};

pub fn have_dash() -> bool {
    have(
        "dash (the oracle for the config reader)",
        which("dash").is_some(),
    )
}

pub fn have_envdir() -> bool {
    have(
        "daemontools' /usr/bin/envdir",
        Path::new(ENVDIR).is_file() && which("env").is_some(),
    )
}

/// `path` exists (a peer program, by absolute path); `why` says what
/// provides it, e.g. "courier-imap".
pub fn have_file(path: &str, why: &str) -> bool {
    have(&format!("{path} ({why})"), Path::new(path).exists())
}

/// Running as root; `why` says what for.
pub fn have_root(why: &str) -> bool {
    have(&format!("root ({why})"), is_root())
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

// ---------------------------------------------------------------------------
// Temporary directories.

/// A fresh directory under the system temp dir (mode 0755), removed with
/// everything in it on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "courier-run-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// Write `rel` (parents created), mode 0644; returns its path.
    pub fn write(&self, rel: impl AsRef<Path>, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Make the directory `rel` (parents created) with `mode`.
    pub fn mkdir(&self, rel: impl AsRef<Path>, mode: u32) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// Write `files` as f1, f2, ... (mode 0644); returns their paths.
    pub fn write_files(&self, files: &[Vec<u8>]) -> Vec<PathBuf> {
        files
            .iter()
            .enumerate()
            .map(|(i, src)| self.write(format!("f{}", i + 1), src))
            .collect()
    }

    /// Names in the directory, sorted (to check for leftovers).
    pub fn names(&self) -> Vec<String> {
        list(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if fs::remove_dir_all(&self.0).is_ok() {
            return;
        }
        // A test left a directory without write or search permission (as
        // root that does not matter; as a user it does).
        let _ = Command::new("chmod")
            .args(["-R", "u+rwx"])
            .arg(&self.0)
            .stderr(Stdio::null())
            .status();
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Snapshots: everything a write would change.

/// A directory's inode, mode and mtime (ns), and each entry's.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub ino: u64,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub files: Vec<FileSnapshot>,
}

/// One entry: its name (a path relative to the snapshot's root in a
/// [`tree`]), kind ('f' file, 'd' directory, 'l' symlink, '?' other),
/// inode, permission bits, mtime, and content (a file's bytes, a symlink's
/// target, nothing for the rest).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileSnapshot {
    pub name: String,
    pub kind: char,
    pub ino: u64,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub data: Vec<u8>,
}

fn entry(path: &Path, name: String) -> FileSnapshot {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("lstat {}: {e}", path.display()));
    let ft = m.file_type();
    let (kind, data) = if ft.is_file() {
        let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        ('f', data)
    } else if ft.is_symlink() {
        (
            'l',
            fs::read_link(path).unwrap().as_os_str().as_bytes().to_vec(),
        )
    } else if ft.is_dir() {
        ('d', Vec::new())
    } else {
        ('?', Vec::new())
    };
    FileSnapshot {
        name,
        kind,
        ino: m.ino(),
        mode: m.mode() & 0o7777,
        mtime: (m.mtime(), m.mtime_nsec()),
        data,
    }
}

/// The directory and its entries (not recursive).
pub fn snapshot(dir: &Path) -> Snapshot {
    let m = fs::symlink_metadata(dir).unwrap_or_else(|e| panic!("lstat {}: {e}", dir.display()));
    let files = list(dir)
        .into_iter()
        .map(|name| entry(&dir.join(&name), name))
        .collect();
    Snapshot {
        ino: m.ino(),
        mode: m.mode() & 0o7777,
        mtime: (m.mtime(), m.mtime_nsec()),
        files,
    }
}

/// [`snapshot`], or None when nothing is at `dir` (an envdir not written).
pub fn snapshot_opt(dir: &Path) -> Option<Snapshot> {
    fs::symlink_metadata(dir).ok().map(|_| snapshot(dir))
}

/// Every entry under `dir`, recursively, sorted by path (relative to
/// `dir`).
pub fn tree(dir: &Path) -> Vec<FileSnapshot> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for name in list(&dir.join(&rel)) {
            let rel = rel.join(name);
            let e = entry(&dir.join(&rel), rel.display().to_string());
            if e.kind == 'd' {
                stack.push(rel);
            }
            out.push(e);
        }
    }
    out.sort();
    out
}

// ---------------------------------------------------------------------------
// Running children.

/// One finished child.
pub struct Ran {
    /// What ran (for messages).
    pub what: String,
    pub pid: u32,
    /// Exit code; None when killed (timeout or signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// The exit code; a child killed by a signal fails the test.
    #[track_caller]
    pub fn exit(&self) -> i32 {
        self.code.unwrap_or_else(|| {
            panic!(
                "{} was killed by a signal\nstdout: {}\nstderr: {}",
                self.what,
                self.stdout_str(),
                self.stderr_str()
            )
        })
    }
}

/// An unlinked file to capture a stream in: no name left behind, and a
/// background grandchild holding it cannot block us as a pipe would.
fn capture_file() -> fs::File {
    static N: AtomicUsize = AtomicUsize::new(0);
    let p = std::env::temp_dir().join(format!(
        "courier-run-test-capture-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let f = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&p)
        .unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
    fs::remove_file(&p).unwrap();
    f
}

fn read_back(mut f: fs::File) -> Vec<u8> {
    let mut v = Vec::new();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.read_to_end(&mut v).unwrap();
    v
}

/// Run `cmd` with `stdin`, stdout (unless `stdout` is given) and stderr
/// captured, in its own process group, which is killed after `timeout`
/// (then `timed_out` is set) and in any case once the child has exited
/// (whatever it left running in the background goes too). Err only when
/// the child could not be started (including a `pre_exec` that failed).
pub fn try_run_to(
    mut cmd: Command,
    stdin: Stdio,
    stdout: Option<Stdio>,
    timeout: Duration,
) -> io::Result<Ran> {
    let what = format!("{cmd:?}");
    let out = capture_file();
    let err = capture_file();
    let captured = stdout.is_none();
    cmd.stdin(stdin)
        .stdout(match stdout {
            Some(s) => s,
            None => Stdio::from(out.try_clone()?),
        })
        .stderr(err.try_clone()?)
        .process_group(0);
    let mut child = cmd.spawn()?;
    // The Command holds copies of the descriptors: closed now, so that
    // only the child has them (a pipe given as stdout must see its reader
    // and writers as the test set them up).
    drop(cmd);
    let pid = child.id();
    let pgid = nix::unistd::Pid::from_raw(pid as i32);
    let start = Instant::now();
    let mut nap = Duration::from_micros(100);
    let (code, timed_out) = loop {
        if let Some(st) = child.try_wait()? {
            break (st.code(), false);
        }
        if start.elapsed() > timeout {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    };
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    Ok(Ran {
        what,
        pid,
        code,
        timed_out,
        stdout: if captured { read_back(out) } else { Vec::new() },
        stderr: read_back(err),
    })
}

/// [`try_run_to`] with stdout captured.
pub fn try_run(cmd: Command, stdin: Stdio, timeout: Duration) -> io::Result<Ran> {
    try_run_to(cmd, stdin, None, timeout)
}

/// Fail the test when the child ran out of time.
#[track_caller]
fn in_time(r: Ran, timeout: Duration) -> Ran {
    assert!(
        !r.timed_out,
        "{} was still running after {timeout:?}: killed (with its process group)\nstdout so far: {}\nstderr so far: {}",
        r.what,
        r.stdout_str(),
        r.stderr_str()
    );
    r
}

/// Run `cmd` with stdin from /dev/null (see [`try_run_to`]); a child that
/// cannot start or runs longer than `timeout` fails the test. (`_scratch`
/// is kept for the callers written when the captures lived there.)
#[track_caller]
pub fn run(cmd: Command, _scratch: &Path, timeout: Duration) -> Ran {
    run_with_stdin(cmd, Stdio::null(), _scratch, timeout)
}

/// [`run`] with the given standard input.
#[track_caller]
pub fn run_with_stdin(cmd: Command, stdin: Stdio, _scratch: &Path, timeout: Duration) -> Ran {
    let what = format!("{cmd:?}");
    let r = try_run(cmd, stdin, timeout).unwrap_or_else(|e| panic!("unable to start {what}: {e}"));
    in_time(r, timeout)
}

/// [`run`] with the default [`TIMEOUT`].
#[track_caller]
pub fn run_cmd(cmd: Command) -> Ran {
    run(cmd, Path::new("/"), TIMEOUT)
}

/// `courier-run ARGS` in `cwd`, environment inherited from the test.
#[track_caller]
pub fn run_bin<S: AsRef<OsStr>>(cwd: &Path, args: &[S]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).args(args);
    run_cmd(cmd)
}

/// Run `cmd` with its stdout a pipe nobody reads any more (the read end
/// closed before it starts, as after `| head -n 1` has read its line): the
/// first write fails with EPIPE, or SIGPIPE kills it if it does not ignore
/// the signal.
#[track_caller]
pub fn run_into_closed_pipe(cmd: Command) -> Ran {
    let what = format!("{cmd:?}");
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let r = try_run_to(cmd, Stdio::null(), Some(Stdio::from(writer)), TIMEOUT)
        .unwrap_or_else(|e| panic!("unable to start {what}: {e}"));
    in_time(r, TIMEOUT)
}

/// Make `cmd` exec `program` with exactly `argv` and the environ block
/// `envp` (entries `NAME=VALUE`, in order, duplicates kept): std's Command
/// keeps one value per name, so the exec is done here, in `pre_exec`,
/// after the Command has set up the child's stdio, cwd, uid and the rest.
pub fn exec_with_envp(cmd: &mut Command, program: &Path, argv: &[Vec<u8>], envp: &[Vec<u8>]) {
    let cstr = |b: &[u8]| CString::new(b).expect("no NUL inside");
    let program = cstr(program.as_os_str().as_bytes());
    let argv: Vec<CString> = argv.iter().map(|a| cstr(a)).collect();
    let envp: Vec<CString> = envp.iter().map(|e| cstr(e)).collect();
    // SAFETY: runs between fork and exec; execve is async-signal-safe, and
    // nothing is allocated (the strings were built before the fork).
    unsafe {
        cmd.pre_exec(move || match nix::unistd::execve(&program, &argv, &envp) {
            Err(e) => Err(io::Error::from(e)),
            Ok(never) => match never {},
        })
    };
}

// ---------------------------------------------------------------------------
// The environ format: `env -0` output, /proc/PID/environ.

/// NUL-terminated `NAME=VALUE` entries, in order, duplicates kept. An
/// empty input is an empty environment.
pub fn env0_entries(out: &[u8]) -> Result<Env, String> {
    if out.is_empty() {
        return Ok(Env::new());
    }
    let Some(body) = out.strip_suffix(b"\0") else {
        return Err(format!("env -0 output does not end in NUL: {}", show(out)));
    };
    body.split(|&c| c == 0)
        .map(|entry| match entry.iter().position(|&c| c == b'=') {
            Some(eq) => Ok((entry[..eq].to_vec(), entry[eq + 1..].to_vec())),
            None => Err(format!("env -0 entry without '=': {}", show(entry))),
        })
        .collect()
}

/// [`env0_entries`] as a map; a name there twice is an error (getenv and
/// envdir would disagree about which one counts).
pub fn parse_env0(out: &[u8]) -> Result<Vars, String> {
    let mut vars = Vars::new();
    for (k, v) in env0_entries(out)? {
        if vars.insert(k.clone(), v).is_some() {
            return Err(format!("{} is in the environment twice", show(&k)));
        }
    }
    Ok(vars)
}

// ---------------------------------------------------------------------------
// Ports.

/// Call `f` with a loopback port that was free a moment ago; `f` returns
/// None when it found the port taken (EADDRINUSE: someone else got it in
/// between), and is then called again with another port, up to 5 times.
/// For a child that must bind the port itself; a test that can bind its
/// own socket binds port 0 and keeps it instead.
#[track_caller]
pub fn with_free_port<T>(mut f: impl FnMut(u16) -> Option<T>) -> T {
    for _ in 0..5 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        if let Some(t) = f(port) {
            return t;
        }
    }
    panic!("5 free ports in a row were taken before the child could bind them");
}

// ---------------------------------------------------------------------------
// Showing bytes in failure messages.

/// Bytes as a readable, unambiguous string: printable ASCII as is, the rest
/// escaped.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

pub fn show_vars(v: &Vars) -> String {
    v.iter()
        .map(|(k, v)| format!("  {}={}\n", show(k), show(v)))
        .collect()
}

/// The lines that differ between two environments, for a failure message.
pub fn diff_vars(ours: &Vars, dash: &Vars) -> String {
    let mut s = String::new();
    let names: std::collections::BTreeSet<&Vec<u8>> = ours.keys().chain(dash.keys()).collect();
    for k in names {
        match (ours.get(k), dash.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => s.push_str(&format!(
                "  {}: ours {:?}, dash {:?}\n",
                show(k),
                a.map(|v| show(v)),
                b.map(|v| show(v))
            )),
        }
    }
    s
}

pub fn show_files(files: &[Vec<u8>]) -> String {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| format!("  f{}: \"{}\"\n", i + 1, show(f)))
        .collect()
}

pub fn show_env(env: &[(Vec<u8>, Vec<u8>)]) -> String {
    env.iter()
        .map(|(k, v)| format!("{}={} ", show(k), show(v)))
        .collect()
}
