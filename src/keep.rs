//! The kept plan: a launch's computed plan, saved beside the run file and
//! reused by the next start only while every input it was computed from is
//! provably unchanged. Anything else, and the plan is computed afresh.
//!
//! Why: under a supervisor the same `./run` starts again and again with
//! the same files; reading Courier's 27 KB of config as dash would, looking
//! the account up through NSS and compiling the access list again took
//! most of each start. The kept plan replaces that work with one `fstatat`
//! per input.
//!
//! What "provably unchanged" means (the key, checked in full on every
//! start, any difference meaning "compute afresh"):
//!
//! - each file the computation read or looked for: device, inode, mode,
//!   owner, group, size, mtime and ctime to the nanosecond, or "absent" (a
//!   file that appears is a change). The files: the run file, the configs
//!   and what they source, the access list and every file in it, the
//!   rules, the TLS files, the program and every absolute path in its
//!   arguments, each `PATH` candidate the program was looked for at before
//!   it was found, `/etc/passwd`, `/etc/group`, `/etc/nsswitch.conf` and
//!   `/etc/services`. A file's stat follows its whole path, so a directory
//!   swapped above it shows as another inode; the directories above a TLS
//!   file are also compared by identity and permissions (the account must
//!   still get through them);
//! - courier-run's main program (the one that computed the plan) and
//!   the current directory;
//! - each inherited variable the computation looked up (set or not:
//!   `environ::note_read` is the one door of every lookup), courier-run's
//!   effective uid, gid and groups, and its resource limits; the program's
//!   environment is made again at each start from the one it was given
//!   (`plan::compose_environment`), so a variable nobody read (systemd's
//!   INVOCATION_ID) passes through with its value of now;
//! - the clock, for a TLS service: past the certificate's notAfter, a
//!   start computes afresh (and refuses, as it must).
//!
//! A plan is kept only when the account database is provably files: the
//! `passwd` and `group` lines of nsswitch.conf start with `files` and every
//! account the plan names is in /etc/passwd (an account from LDAP or
//! systemd cannot be proved unchanged by a stat). An input whose ctime is
//! not older than the start (it changed while the plan was computed, or the
//! launch itself rewrote it, as a rebuilt access list) means no plan is
//! kept this time: the next start computes and keeps. The TLS cache
//! (reset by every start) and the envdir are not inputs: the envdir is
//! checked against the kept variables on every start, as an unchanged
//! start always did (envdir::holds), and a difference means compute afresh
//! (which rewrites it).
//!
//! The file is `.RUNFILE.plan` in the run file's directory, 0600, owned by
//! the user that launches; one that is not a regular file of ours, not
//! ours alone to write, or not in this format is ignored (and replaced by
//! the next computing start). `--dry-run` and `--check` always compute
//! afresh and say whether the kept plan matches what they computed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::libc;

use crate::account::Account;
use crate::envdir::Modes;
use crate::environ::Environ;
use crate::launch::Exec;
use crate::limits::{Limit, Resource};
use crate::plan::{CacheFile, Plan};
use crate::resolve::Inherit;

/// The first bytes of a kept plan: the format and the version that wrote
/// it (a plan of another version is not read).
const MAGIC: &[u8] =
    concat!("courier-run kept plan 1 ", env!("CARGO_PKG_VERSION"), "\n").as_bytes();

/// A kept plan larger than this is not read (ours are a few KiB).
const MAX: usize = 4 << 20;

/// How far before the start an input must have changed for its stat to be
/// trusted: timestamps come from a clock that may lag by a jiffy (10 ms at
/// HZ=100), so a change during the computation can carry a ctime slightly
/// before its start.
const RACY_NS: i128 = 100_000_000;

/// The same for a file whose ctime has no nanoseconds: most likely a
/// filesystem that keeps whole seconds (ext4 with 128-byte inodes, NFS
/// servers, FAT's two seconds), where a second edit within the same second
/// and of the same size would leave the stat unchanged.
const RACY_COARSE_NS: i128 = 2_100_000_000;

/// How long before the start a change must be for `ctime` to be trusted.
fn racy_window(ctime: (i64, i64)) -> i128 {
    if ctime.1 == 0 {
        RACY_COARSE_NS
    } else {
        RACY_NS
    }
}

/// What a file was: everything `stat` says that a change touches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Id {
    dev: u64,
    ino: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    size: i64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// A file's state: absent, or there with this [`Id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Absent,
    There(Id),
}

/// stat(2) of `path` (following symlinks, as the computation did): all of
/// it (`full`), or only what the file is (device, inode, mode, owner,
/// group: a directory above the inputs). Absent
/// for ENOENT/ENOTDIR; None when the state cannot be told (EACCES, ELOOP…):
/// such an input cannot be proved unchanged.
fn state(path: &[u8], full: bool) -> Option<State> {
    let st = match nix::sys::stat::stat(OsStr::from_bytes(path)) {
        Ok(st) => st,
        Err(nix::errno::Errno::ENOENT | nix::errno::Errno::ENOTDIR) => return Some(State::Absent),
        Err(_) => return None,
    };
    let mut id = Id {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        size: 0,
        mtime: (0, 0),
        ctime: (0, 0),
    };
    if full {
        id.size = st.st_size;
        id.mtime = (st.st_mtime, st.st_mtime_nsec);
        id.ctime = (st.st_ctime, st.st_ctime_nsec);
    }
    Some(State::There(id))
}

/// Where the kept plan of `runfile` lives: `.NAME.plan` beside it.
pub fn path_for(runfile: &Path) -> Option<PathBuf> {
    let name = runfile.file_name()?;
    let mut n = OsString::from(".");
    n.push(name);
    n.push(".plan");
    Some(match runfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(n),
        _ => PathBuf::from(n),
    })
}

// --- the key ------------------------------------------------------------

/// Everything the plan was computed from (see the module comment).
#[derive(Debug, PartialEq, Eq)]
struct Key {
    euid: u32,
    egid: u32,
    groups: Vec<u32>,
    /// Each inherited name the computation looked up, with the value it
    /// found (None: unset).
    reads: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    limits: Vec<(u64, u64)>,
    /// Unix time from which the plan no longer holds (a certificate's
    /// notAfter); i64::MAX: none.
    until: i64,
    /// (path, whether its content counts, its state).
    inputs: Vec<(Vec<u8>, bool, State)>,
}

fn limits_of(m: &BTreeMap<Resource, Limit>) -> Vec<(u64, u64)> {
    let raw = |v: Option<u64>| v.unwrap_or(libc::RLIM_INFINITY);
    Resource::ALL
        .iter()
        .map(|r| m.get(r).map_or((0, 0), |l| (raw(l.soft), raw(l.hard))))
        .collect()
}

fn now_ns() -> i128 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid timespec to fill (vDSO: no system call).
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut t) };
    t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
}

/// The files a plan was computed from, each with whether its content
/// counts (`true`) or only what it is (`false`: a directory above a TLS
/// file, whose permissions decide whether the account may read it). A
/// file's own stat follows its whole path, so a directory swapped above
/// any input shows as another inode; a directory's listing and times are
/// not compared (they change with every file written beside the inputs:
/// the TLS cache reset, the kept plan itself).
fn input_paths(plan: &Plan, runfile: &Path, exe: &Path) -> Vec<(Vec<u8>, bool)> {
    let mut files: Vec<PathBuf> = vec![runfile.to_path_buf()];
    // An access list that is a directory: each file in it, and the
    // directory (a file added to it changes its mtime) among the inputs.
    files.extend(plan.inputs.iter().cloned());
    if let Some(a) = &plan.access
        && let Ok(list) = crate::access::source_files(&a.source)
    {
        files.extend(list);
    }
    files.push(plan.program.clone());
    files.extend(looked_up(plan));
    for a in &plan.argv {
        if a.first() == Some(&b'/') {
            files.push(PathBuf::from(OsStr::from_bytes(a)));
        }
    }
    for f in [
        "/etc/passwd",
        "/etc/group",
        "/etc/nsswitch.conf",
        "/etc/services",
    ] {
        files.push(PathBuf::from(f));
    }
    // The TLS cache is reset by every start: not an input (its directory
    // is walked again by the reset itself).
    if let Some(c) = &plan.tls_cache {
        files.retain(|f| f != &c.path);
    }
    let mut out: Vec<(Vec<u8>, bool)> = Vec::new();
    let mut push = |p: &Path, full: bool| {
        let b = p.as_os_str().as_bytes().to_vec();
        if b.is_empty() {
            return;
        }
        match out.iter_mut().find(|(q, _)| *q == b) {
            Some(e) => e.1 |= full,
            None => out.push((b, full)),
        }
    };
    push(Path::new("."), false);
    for f in &files {
        push(f, true);
    }
    // The TLS files are read as the account: every directory above them
    // must still let it through.
    let tls = [
        "TLS_CERTFILE",
        "TLS_PRIVATE_KEYFILE",
        "TLS_TRUSTCERTS",
        "TLS_DHPARAMS",
    ];
    for f in tls.iter().filter_map(|n| plan.env_get(n)) {
        let f = Path::new(OsStr::from_bytes(f));
        push(f, true);
        let mut p = f;
        while let Some(parent) = p.parent() {
            if parent.as_os_str().is_empty() {
                break;
            }
            push(parent, false);
            p = parent;
        }
    }
    // The main program, which computed this plan (another version
    // computes otherwise), by its real path: the launcher that checks the
    // key is another program (src/programs.rs).
    push(exe, true);
    out
}

/// The PATH candidates the program was looked for in before it was found
/// (a program put earlier in PATH would be found instead).
fn looked_up(plan: &Plan) -> Vec<PathBuf> {
    let Some(arg0) = plan.argv.first() else {
        return Vec::new();
    };
    if arg0.contains(&b'/') {
        return Vec::new();
    }
    let path = plan.env_get("PATH").unwrap_or(b"/bin:/usr/bin").to_vec();
    let mut out = Vec::new();
    for d in path.split(|&c| c == b':') {
        let d = if d.is_empty() { &b"."[..] } else { d };
        let c = Path::new(OsStr::from_bytes(d)).join(OsStr::from_bytes(arg0));
        let found = c == plan.program;
        out.push(c);
        if found {
            break;
        }
    }
    out
}

/// The accounts come from files alone: nsswitch.conf's `passwd` and
/// `group` lines start with `files`, and each name is in /etc/passwd (so
/// glibc answers from the file and stops there).
fn accounts_from_files(names: &[&str]) -> bool {
    let Ok(ns) = std::fs::read("/etc/nsswitch.conf") else {
        return false;
    };
    let first = |db: &[u8]| {
        ns.split(|&b| b == b'\n').any(|l| {
            let l = l.split(|&b| b == b'#').next().unwrap_or(&[]);
            let mut w = l
                .split(|b| b.is_ascii_whitespace())
                .filter(|w| !w.is_empty());
            w.next() == Some(db)
                && w.next() == Some(b"files")
                && w.next().is_none_or(|n| n[0] != b'[')
        })
    };
    if !first(b"passwd:") || !first(b"group:") {
        return false;
    }
    let Ok(pw) = std::fs::read("/etc/passwd") else {
        return false;
    };
    names.iter().all(|n| {
        pw.split(|&b| b == b'\n')
            .any(|l| l.split(|&b| b == b':').next() == Some(n.as_bytes()))
    })
}

/// The first notAfter of the certificates a TLS service's start checks;
/// None when they cannot be read here (no plan is kept then).
fn tls_until(plan: &Plan) -> Option<i64> {
    let service = plan.settings.service;
    let starttls = plan
        .env_get(service.starttls_var())
        .is_some_and(|v| v.eq_ignore_ascii_case(b"YES"));
    if !(service.is_ssl() || starttls) {
        return Some(i64::MAX);
    }
    let cert = plan.env_get("TLS_CERTFILE")?;
    let pem = std::fs::read(OsStr::from_bytes(cert)).ok()?;
    let der = crate::tls::first_certificate_der(&pem)?;
    crate::tls::not_after(&der).map(|(t, _)| t)
}

// --- the encoding ---------------------------------------------------------

/// Length-prefixed fields, little-endian: the reader refuses anything
/// short, long or left over.
#[derive(Default)]
struct Out(Vec<u8>);

impl Out {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
    fn state(&mut self, s: &State) {
        match s {
            State::Absent => self.u64(0),
            State::There(i) => {
                self.u64(1);
                for v in [
                    i.dev,
                    i.ino,
                    i.mode as u64,
                    i.uid as u64,
                    i.gid as u64,
                    i.size as u64,
                    i.mtime.0 as u64,
                    i.mtime.1 as u64,
                    i.ctime.0 as u64,
                    i.ctime.1 as u64,
                ] {
                    self.u64(v);
                }
            }
        }
    }
}

struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    fn u64(&mut self) -> Option<u64> {
        let (h, t) = self.0.split_first_chunk::<8>()?;
        self.0 = t;
        Some(u64::from_le_bytes(*h))
    }
    fn u32(&mut self) -> Option<u32> {
        u32::try_from(self.u64()?).ok()
    }
    fn len(&mut self) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len()).then_some(n)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        let (h, t) = self.0.split_at(n);
        self.0 = t;
        Some(h)
    }
    fn vec(&mut self) -> Option<Vec<u8>> {
        self.bytes().map(<[u8]>::to_vec)
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.vec()?).ok()
    }
    fn count(&mut self) -> Option<usize> {
        // Each item is at least 8 bytes: a count past that is a lie.
        let n = usize::try_from(self.u64()?).ok()?;
        (n <= self.0.len() / 8).then_some(n)
    }
    fn state(&mut self) -> Option<State> {
        Some(match self.u64()? {
            0 => State::Absent,
            1 => {
                let mut v = [0u64; 10];
                for x in &mut v {
                    *x = self.u64()?;
                }
                State::There(Id {
                    dev: v[0],
                    ino: v[1],
                    mode: u32::try_from(v[2]).ok()?,
                    uid: u32::try_from(v[3]).ok()?,
                    gid: u32::try_from(v[4]).ok()?,
                    size: v[5] as i64,
                    mtime: (v[6] as i64, v[7] as i64),
                    ctime: (v[8] as i64, v[9] as i64),
                })
            }
            _ => return None,
        })
    }
}

fn put_opt(o: &mut Out, v: Option<&[u8]>) {
    match v {
        None => o.u64(0),
        Some(v) => {
            o.u64(1);
            o.bytes(v);
        }
    }
}

fn get_opt(i: &mut In) -> Option<Option<Vec<u8>>> {
    match i.u64()? {
        0 => Some(None),
        1 => Some(Some(i.vec()?)),
        _ => None,
    }
}

/// The value of `name` in `environ` (one entry per name).
fn lookup<'a>(environ: &'a Environ, name: &[u8]) -> Option<&'a [u8]> {
    environ
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

fn put_key(o: &mut Out, k: &Key) {
    o.u64(k.euid as u64);
    o.u64(k.egid as u64);
    o.u64(k.groups.len() as u64);
    for g in &k.groups {
        o.u64(*g as u64);
    }
    o.u64(k.reads.len() as u64);
    for (n, v) in &k.reads {
        o.bytes(n);
        put_opt(o, v.as_deref());
    }
    o.u64(k.limits.len() as u64);
    for (s, h) in &k.limits {
        o.u64(*s);
        o.u64(*h);
    }
    o.u64(k.until as u64);
    o.u64(k.inputs.len() as u64);
    for (p, full, s) in &k.inputs {
        o.bytes(p);
        o.u64(*full as u64);
        o.state(s);
    }
}

fn get_key(i: &mut In) -> Option<Key> {
    let euid = i.u32()?;
    let egid = i.u32()?;
    let groups = (0..i.count()?).map(|_| i.u32()).collect::<Option<_>>()?;
    let reads = (0..i.count()?)
        .map(|_| Some((i.vec()?, get_opt(i)?)))
        .collect::<Option<_>>()?;
    let limits = (0..i.count()?)
        .map(|_| Some((i.u64()?, i.u64()?)))
        .collect::<Option<_>>()?;
    let until = i.u64()? as i64;
    let inputs = (0..i.count()?)
        .map(|_| Some((i.vec()?, i.u64()? != 0, i.state()?)))
        .collect::<Option<_>>()?;
    Some(Key {
        euid,
        egid,
        groups,
        reads,
        limits,
        until,
        inputs,
    })
}

/// The envdir's path, its variables (name, value) and modes.
pub type KeptEnvdir = (PathBuf, Vec<(String, Vec<u8>)>, Modes);

/// What a start does with a kept plan: the launch's steps, already
/// computed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Steps {
    pub merge_stderr: bool,
    /// authdaemond's socket and the service's name for the message.
    pub wait: Option<(PathBuf, String, String)>,
    /// The envdir and what it must hold (checked, never written: a
    /// difference means compute afresh).
    pub envdir: Option<KeptEnvdir>,
    pub tls_cache: Option<CacheFile>,
    /// The banner's lines, printed on every start as the plan does.
    pub banner: String,
    /// The environment's recipe: applied to the environment each start
    /// is given (its `envp` is empty here).
    pub chain: Chain,
    pub exec: Exec,
}

/// How the program's environment is made from the inherited one
/// ([`crate::plan::compose_environment`]), and how much it may grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    pub inherit: Inherit,
    /// envuidgid's (uid, gid).
    pub account: Option<(u32, u32)>,
    /// The config's variables, in order.
    pub vars: Vec<(String, Vec<u8>)>,
    /// The environment's bytes as execve counts them (strings and
    /// pointers) when the plan was computed, and the room left then.
    pub size: u64,
    pub room: u64,
}

impl Chain {
    /// The program's environment from `environ`, or None when it would not
    /// fit where the computed one did (then the start computes, and says
    /// why).
    fn envp(&self, environ: &Environ) -> Option<Vec<Vec<u8>>> {
        let vars = self
            .vars
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_slice(), crate::settings::Origin::Default));
        let env = crate::plan::compose_environment(environ, &self.inherit, self.account, vars);
        let envp: Vec<Vec<u8>> = env.into_iter().map(|v| envp_entry(&v)).collect();
        let size = env_size(&envp);
        let fits = envp.iter().all(|e| e.len() < crate::plan::MAX_ARG_STRLEN)
            && size <= self.size.saturating_add(self.room);
        fits.then_some(envp)
    }
}

/// `NAME=VALUE` as envp carries it.
fn envp_entry(v: &crate::plan::Var) -> Vec<u8> {
    [&v.name[..], b"=", &v.value[..]].concat()
}

/// The bytes execve counts for `envp`: each string, its NUL and pointer.
fn env_size(envp: &[Vec<u8>]) -> u64 {
    envp.iter()
        .map(|e| e.len() as u64 + 1 + std::mem::size_of::<usize>() as u64)
        .sum()
}

// Each part of the steps in its own pair of functions; the order of the
// parts is the order of the fields in the file.

fn put_steps(o: &mut Out, s: &Steps) {
    o.u64(s.merge_stderr as u64);
    put_side_effects(o, s);
    o.bytes(s.banner.as_bytes());
    put_chain(o, &s.chain);
    put_exec(o, &s.exec);
}

fn get_steps(i: &mut In) -> Option<Steps> {
    let merge_stderr = i.u64()? != 0;
    let (wait, envdir, tls_cache) = get_side_effects(i)?;
    let banner = i.string()?;
    let chain = get_chain(i)?;
    let exec = get_exec(i)?;
    Some(Steps {
        merge_stderr,
        wait,
        envdir,
        tls_cache,
        banner,
        chain,
        exec,
    })
}

fn path_of(b: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(b))
}

/// The wait for authdaemond, the envdir to check, the TLS cache to reset.
fn put_side_effects(o: &mut Out, s: &Steps) {
    match &s.wait {
        None => o.u64(0),
        Some((sock, from, service)) => {
            o.u64(1);
            o.bytes(sock.as_os_str().as_bytes());
            o.bytes(from.as_bytes());
            o.bytes(service.as_bytes());
        }
    }
    match &s.envdir {
        None => o.u64(0),
        Some((p, vars, m)) => {
            o.u64(1);
            o.bytes(p.as_os_str().as_bytes());
            put_vars(o, vars);
            o.u64(m.file as u64);
            o.u64(m.dir as u64);
        }
    }
    match &s.tls_cache {
        None => o.u64(0),
        Some(c) => {
            o.u64(1);
            o.bytes(c.path.as_os_str().as_bytes());
            o.bytes(c.owner.as_bytes());
            o.bytes(c.group.as_bytes());
            o.u64(c.uid as u64);
            o.u64(c.gid as u64);
            o.u64(c.mode as u64);
        }
    }
}

type SideEffects = (
    Option<(PathBuf, String, String)>,
    Option<KeptEnvdir>,
    Option<CacheFile>,
);

fn get_side_effects(i: &mut In) -> Option<SideEffects> {
    let wait = match i.u64()? {
        0 => None,
        _ => Some((path_of(i.vec()?), i.string()?, i.string()?)),
    };
    let envdir = match i.u64()? {
        0 => None,
        _ => {
            let p = path_of(i.vec()?);
            let vars = get_vars(i)?;
            let m = Modes {
                file: i.u32()?,
                dir: i.u32()?,
            };
            Some((p, vars, m))
        }
    };
    let tls_cache = match i.u64()? {
        0 => None,
        _ => Some(CacheFile {
            path: path_of(i.vec()?),
            owner: i.string()?,
            group: i.string()?,
            uid: i.u32()?,
            gid: i.u32()?,
            mode: i.u32()?,
        }),
    };
    Some((wait, envdir, tls_cache))
}

fn put_vars(o: &mut Out, vars: &[(String, Vec<u8>)]) {
    o.u64(vars.len() as u64);
    for (n, v) in vars {
        o.bytes(n.as_bytes());
        o.bytes(v);
    }
}

fn get_vars(i: &mut In) -> Option<Vec<(String, Vec<u8>)>> {
    (0..i.count()?)
        .map(|_| Some((i.string()?, i.vec()?)))
        .collect()
}

fn put_chain(o: &mut Out, c: &Chain) {
    match &c.inherit {
        Inherit::All => o.u64(0),
        Inherit::Nothing => o.u64(1),
        Inherit::Names(names) => {
            o.u64(2);
            o.u64(names.len() as u64);
            for n in names {
                o.bytes(n);
            }
        }
    }
    match c.account {
        None => o.u64(0),
        Some((u, g)) => {
            o.u64(1);
            o.u64(u as u64);
            o.u64(g as u64);
        }
    }
    put_vars(o, &c.vars);
    o.u64(c.size);
    o.u64(c.room);
}

fn get_chain(i: &mut In) -> Option<Chain> {
    let inherit = match i.u64()? {
        0 => Inherit::All,
        1 => Inherit::Nothing,
        2 => Inherit::Names((0..i.count()?).map(|_| i.vec()).collect::<Option<_>>()?),
        _ => return None,
    };
    let account = match i.u64()? {
        0 => None,
        _ => Some((i.u32()?, i.u32()?)),
    };
    Some(Chain {
        inherit,
        account,
        vars: get_vars(i)?,
        size: i.u64()?,
        room: i.u64()?,
    })
}

/// The exec but its environment (made at each start: [`Chain::envp`]).
fn put_exec(o: &mut Out, e: &Exec) {
    o.bytes(e.program.as_os_str().as_bytes());
    o.u64(e.argv.len() as u64);
    for a in &e.argv {
        o.bytes(a);
    }
    o.u64(e.umask.map_or(u64::MAX, u64::from));
    o.u64(e.limits.len() as u64);
    for (r, l) in &e.limits {
        o.u64(Resource::ALL.iter().position(|x| x == r).unwrap_or(0) as u64);
        o.u64(l.soft.unwrap_or(u64::MAX));
        o.u64(l.hard.unwrap_or(u64::MAX));
    }
    match &e.setuidgid {
        None => o.u64(0),
        Some(a) => {
            o.u64(1);
            o.bytes(a.name.as_bytes());
            o.u64(a.uid as u64);
            o.u64(a.gid as u64);
        }
    }
}

fn get_exec(i: &mut In) -> Option<Exec> {
    let program = path_of(i.vec()?);
    let argv = (0..i.count()?).map(|_| i.vec()).collect::<Option<_>>()?;
    let umask = match i.u64()? {
        u64::MAX => None,
        m => Some(u32::try_from(m).ok()?),
    };
    let limit = |v: u64| (v != u64::MAX).then_some(v);
    let limits = (0..i.count()?)
        .map(|_| {
            let r = *Resource::ALL.get(usize::try_from(i.u64()?).ok()?)?;
            let l = Limit {
                soft: limit(i.u64()?),
                hard: limit(i.u64()?),
            };
            Some((r, l))
        })
        .collect::<Option<_>>()?;
    let setuidgid = match i.u64()? {
        0 => None,
        _ => Some(Account {
            name: i.string()?,
            uid: i.u32()?,
            gid: i.u32()?,
        }),
    };
    Some(Exec {
        program,
        argv,
        envp: Vec::new(),
        umask,
        limits,
        setuidgid,
    })
}

/// A launch's steps from its computed plan.
pub fn steps_of(plan: &Plan) -> Steps {
    Steps {
        merge_stderr: plan.merge_stderr,
        wait: plan.wait_authdaemond.as_ref().map(|w| {
            (
                w.socket.clone(),
                w.from.clone(),
                plan.settings.service.server_name().to_string(),
            )
        }),
        envdir: plan
            .envdir
            .as_ref()
            .map(|e| (e.path.clone(), e.vars.clone(), e.modes)),
        tls_cache: plan.tls_cache.clone(),
        // A start with a kept plan finds the envdir unchanged, so it
        // prints what an unchanged start prints (src/launch.rs).
        banner: if plan.envdir.is_none() {
            crate::launch::messages(plan)
        } else {
            plan.banner.iter().map(|l| format!("{l}\n")).collect()
        },
        chain: Chain {
            inherit: plan.inherit.clone(),
            account: plan.account.as_ref().map(|a| (a.uid, a.gid)),
            vars: plan
                .config_vars
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
            size: env_size(&plan.env.iter().map(envp_entry).collect::<Vec<_>>()),
            room: plan.exec_room,
        },
        // The environment is made at each start (Chain::envp).
        exec: Exec {
            envp: Vec::new(),
            ..Exec::of(plan)
        },
    }
}

// --- keeping ------------------------------------------------------------

/// Why no plan is kept or the kept one does not hold: said by `--dry-run`
/// and `--check`.
pub type Why = String;

/// The key of `plan` as things stand now, or why none can be made.
fn key_now(plan: &Plan, runfile: &Path, started_ns: i128) -> Result<Key, Why> {
    let mut names: Vec<&str> = Vec::new();
    for a in [&plan.account, &plan.setuidgid].into_iter().flatten() {
        names.push(&a.name);
    }
    if let Some(c) = &plan.tls_cache {
        names.push(&c.owner);
    }
    if !accounts_from_files(&names) {
        return Err("the accounts are not all in /etc/passwd, or nsswitch.conf does not read files first: every start looks them up".into());
    }
    let until = tls_until(plan).ok_or("the TLS certificate could not be read here")?;
    // A main program replaced while it runs (a package upgrade) reads as
    // "PATH (deleted)": a plan of the old one is not kept.
    let exe = std::env::current_exe().map_err(|_| "courier-run's own path cannot be read")?;
    if !matches!(
        state(exe.as_os_str().as_bytes(), true),
        Some(State::There(_))
    ) {
        return Err("courier-run's main program was replaced during this start".into());
    }
    let mut inputs = Vec::new();
    for (p, full) in input_paths(plan, runfile, &exe) {
        let s = state(&p, full).ok_or_else(|| {
            format!(
                "{} cannot be examined: every start reads it",
                crate::shown::path(OsStr::from_bytes(&p))
            )
        })?;
        if let State::There(id) = s
            && full
        {
            let ctime = id.ctime.0 as i128 * 1_000_000_000 + id.ctime.1 as i128;
            if ctime + racy_window(id.ctime) >= started_ns {
                return Err(format!(
                    "{} changed during this start: the next start keeps the plan",
                    crate::shown::path(OsStr::from_bytes(&p))
                ));
            }
        }
        inputs.push((p, full, s));
    }
    // Taken last: the lookups above (the TLS files' names) count too.
    let names = crate::environ::reads().ok_or("the environment's reads were not recorded")?;
    let reads = names
        .into_iter()
        .map(|n| {
            let v = lookup(&plan.inherited, &n).map(<[u8]>::to_vec);
            (n, v)
        })
        .collect();
    Ok(Key {
        euid: nix::unistd::geteuid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        groups: crate::plan::own_groups(),
        reads,
        limits: limits_of(&plan.limits_before),
        until,
        inputs,
    })
}

/// The kept plan's bytes for `plan` launched from `runfile`.
fn encode(plan: &Plan, runfile: &Path, started_ns: i128) -> Result<Vec<u8>, Why> {
    let key = key_now(plan, runfile, started_ns)?;
    let mut o = Out(MAGIC.to_vec());
    put_key(&mut o, &key);
    put_steps(&mut o, &steps_of(plan));
    Ok(o.0)
}

/// Keep `plan` for the next start (after this start's side effects, so
/// that what it wrote is seen as it now is). Best effort: a plan that
/// cannot be kept only means the next start computes.
pub fn store(plan: &Plan, runfile: &Path, started_ns: i128) {
    let Some(path) = path_for(runfile) else {
        return;
    };
    let bytes = encode(plan, runfile, started_ns);
    let Ok(bytes) = bytes else {
        // A stale plan must not stay: remove what is there.
        let _ = std::fs::remove_file(&path);
        return;
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Some(name) = path.file_name().and_then(OsStr::to_str) else {
        return;
    };
    if let Ok(d) = crate::safefile::Dir::open(dir) {
        // No fsync: after a crash the plan is lost (the next start
        // computes) or whole (its key says whether it holds); a torn file
        // fails the format check.
        let attrs = crate::safefile::Attrs {
            mode: 0o600,
            owner: None,
            durable: false,
        };
        // Temporaries of starts killed while keeping their plan.
        crate::safefile::remove_stale_temps(&d, name);
        // Best effort: a read-only service directory only means every
        // start computes.
        let _ = crate::safefile::write_atomic_at_with(&d, name, &bytes, attrs);
    }
}

/// The time a start began, for [`store`]'s rule on recent changes.
pub fn start_clock() -> i128 {
    now_ns()
}

/// The kept plan's bytes, when it is a regular file of ours that nobody
/// else may write, in this format.
fn read(path: &Path) -> Option<Vec<u8>> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .ok()?;
    let st = nix::sys::stat::fstat(f.as_raw_fd()).ok()?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_uid != nix::unistd::geteuid().as_raw()
        || st.st_mode & 0o022 != 0
    {
        return None;
    }
    let size = usize::try_from(st.st_size).ok().filter(|&n| n <= MAX)?;
    let buf = crate::safefile::read_sized(&mut f, size).ok()??;
    buf.starts_with(MAGIC).then_some(buf)
}

/// The kept plan of `runfile` split into its key and steps.
fn load(runfile: &Path) -> Option<(Key, Steps)> {
    let bytes = read(&path_for(runfile)?)?;
    let mut i = In(&bytes[MAGIC.len()..]);
    let key = get_key(&mut i)?;
    let steps = get_steps(&mut i)?;
    i.0.is_empty().then_some((key, steps))
}

/// Does `key` hold now? The first difference, said, when not.
fn holds(key: &Key, environ: &Environ) -> Result<(), Why> {
    if key.euid != nix::unistd::geteuid().as_raw() || key.egid != nix::unistd::getegid().as_raw() {
        return Err("courier-run runs as another user".into());
    }
    if key.groups != crate::plan::own_groups() {
        return Err("courier-run runs with other groups".into());
    }
    for (n, v) in &key.reads {
        if lookup(environ, n) != v.as_deref() {
            return Err(format!(
                "the inherited variable {} differs",
                crate::shown::value(n)
            ));
        }
    }
    if crate::limits::current()
        .ok()
        .map(|l| limits_of(&l))
        .as_ref()
        != Some(&key.limits)
    {
        return Err("the resource limits courier-run started with differ".into());
    }
    if key.until != i64::MAX && now_ns() >= key.until as i128 * 1_000_000_000 {
        return Err("the TLS certificate it checked has expired since".into());
    }
    for (p, full, s) in &key.inputs {
        if state(p, *full).as_ref() != Some(s) {
            return Err(format!(
                "{} changed",
                crate::shown::path(OsStr::from_bytes(p))
            ));
        }
    }
    Ok(())
}

/// The run file of a supervised start's command line (without argv[0]):
/// `courier-run ./run [OPERAND...]` as the kernel makes it of a run
/// file's `#!` line, a path with a `/` first and no option anywhere.
/// The one rule of the launcher and of the main program (which gives
/// anything else to clap).
pub fn shebang_runfile(args: &[OsString]) -> Option<&Path> {
    let runfile = args.first()?;
    let option = |a: &OsString| a.as_bytes().first() == Some(&b'-');
    if !runfile.as_bytes().contains(&b'/') || args.iter().any(option) {
        return None;
    }
    Some(Path::new(runfile))
}

/// The start of a supervised `./run` with a kept plan that holds: the
/// launch without computing. None: no such plan (the caller computes, and
/// keeps what it computed).
pub fn launch(runfile: &Path) -> Option<anyhow::Result<Infallible>> {
    let (key, steps) = load(runfile)?;
    let environ = crate::environ::inherited();
    holds(&key, &environ).ok()?;
    if let Some((p, vars, modes)) = &steps.envdir {
        let pairs: Vec<(&str, &[u8])> = vars.iter().map(|(n, v)| (n.as_str(), &v[..])).collect();
        // The envdir as the plan left it, or compute afresh (which
        // rewrites it).
        if !matches!(crate::envdir::holds(p, &pairs, *modes), Ok(true)) {
            return None;
        }
    }
    // The limits the process has: the key's, just compared.
    let raw = |v: u64| (v != libc::RLIM_INFINITY).then_some(v);
    let before: BTreeMap<Resource, Limit> = Resource::ALL
        .iter()
        .zip(&key.limits)
        .map(|(&r, &(s, h))| {
            (
                r,
                Limit {
                    soft: raw(s),
                    hard: raw(h),
                },
            )
        })
        .collect();
    let mut steps = steps;
    steps.exec.envp = steps.chain.envp(&environ)?;
    Some(apply(&steps, &before))
}

/// The kept steps, in the launch's order (src/launch.rs).
fn apply(s: &Steps, before: &BTreeMap<Resource, Limit>) -> anyhow::Result<Infallible> {
    let ready = crate::launch::prepare(&s.exec)?;
    if s.merge_stderr {
        nix::unistd::dup2(1, 2)
            .map_err(|e| anyhow::anyhow!("unable to merge stderr into stdout: {}", e.desc()))?;
    }
    if let Some((socket, from, service)) = &s.wait {
        let w = crate::authdaemon::Wait {
            socket: socket.clone(),
            from: from.clone(),
        };
        w.gate(service)?;
    }
    if let Some((p, _, _)) = &s.envdir {
        crate::envdir::remove_leftovers(p);
    }
    if let Some(c) = &s.tls_cache {
        crate::tlscache::reset(&c.path, &c.owner, c.uid, c.gid, c.mode)?;
    }
    if !s.banner.is_empty() {
        use std::io::Write;
        let _ = std::io::stderr().write_all(s.banner.as_bytes());
    }
    crate::launch::finish(&s.exec, ready, before)
}

/// What `--dry-run` and `--check` say of the kept plan of `runfile`,
/// given the plan they computed: whether the next start would use it.
pub fn verdict(plan: &Plan) -> String {
    let Some(runfile) = plan.settings.runfile.as_deref() else {
        return "none (no run file)".into();
    };
    let Some(path) = path_for(runfile) else {
        return "none".into();
    };
    let shown = crate::shown::path(&path);
    if !path.exists() {
        return format!("none yet ({shown}: the next start computes and keeps one)");
    }
    let Some((key, steps)) = load(runfile) else {
        return format!(
            "{shown} is not usable (not ours, or another version's): the next start computes and replaces it"
        );
    };
    if let Err(why) = holds(&key, &plan.inherited) {
        return format!("stale ({why}): the next start computes afresh");
    }
    // The same steps, the environment's bounds aside (they are the
    // sizes of the computation that kept it): and this environment fits.
    let unbounded = |s: &Steps| {
        let mut s = s.clone();
        (s.chain.size, s.chain.room) = (0, 0);
        s
    };
    if unbounded(&steps) != unbounded(&steps_of(plan))
        || steps.chain.envp(&plan.inherited).is_none()
    {
        return "stale (it differs from this computation): the next start computes afresh".into();
    }
    format!("{shown} matches this computation: the next start uses it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_is_a_dotfile_beside_the_run_file() {
        assert_eq!(
            path_for(Path::new("/etc/sv/imapd/run")),
            Some(PathBuf::from("/etc/sv/imapd/.run.plan"))
        );
        assert_eq!(
            path_for(Path::new("./run")),
            Some(PathBuf::from("./.run.plan"))
        );
        assert_eq!(path_for(Path::new("run")), Some(PathBuf::from(".run.plan")));
    }

    #[test]
    fn truncated_or_padded_bytes_are_refused() {
        let k = Key {
            euid: 0,
            egid: 0,
            groups: vec![1, 2],
            reads: vec![(b"A".to_vec(), Some(b"1".to_vec())), (b"B".to_vec(), None)],
            limits: vec![(1, 2)],
            until: i64::MAX,
            inputs: vec![(b"/x".to_vec(), true, State::Absent)],
        };
        let mut o = Out::default();
        put_key(&mut o, &k);
        let b = o.0;
        assert_eq!(get_key(&mut In(&b)), Some(k));
        for n in 0..b.len() {
            assert_eq!(get_key(&mut In(&b[..n])), None, "cut at {n}");
        }
        // A count larger than the bytes left is refused, not allocated.
        let mut huge = Out::default();
        huge.u64(0);
        huge.u64(0);
        huge.u64(u64::MAX);
        assert_eq!(get_key(&mut In(&huge.0)), None);
    }

    #[test]
    fn whole_second_timestamps_get_the_long_window() {
        assert_eq!(racy_window((1_700_000_000, 0)), RACY_COARSE_NS);
        assert_eq!(racy_window((1_700_000_000, 1)), RACY_NS);
    }

    #[test]
    fn steps_round_trip_and_refuse_cuts() {
        let steps = Steps {
            merge_stderr: true,
            wait: Some((PathBuf::from("/run/s"), "cfg:1".into(), "imapd".into())),
            envdir: Some((
                PathBuf::from("./env"),
                vec![("A".into(), b"1\n2".to_vec())],
                Modes::PRIVATE,
            )),
            tls_cache: Some(CacheFile {
                path: PathBuf::from("/var/lib/c"),
                owner: "courier".into(),
                group: "courier".into(),
                uid: 7,
                gid: 8,
                mode: 0o600,
            }),
            banner: "*** hi\n".into(),
            chain: Chain {
                inherit: Inherit::Names(vec![b"PATH".to_vec()]),
                account: Some((7, 8)),
                vars: vec![("PORT".into(), b"143".to_vec())],
                size: 900,
                room: 100_000,
            },
            exec: Exec {
                program: PathBuf::from("/usr/bin/tcpserver"),
                argv: vec![b"tcpserver".to_vec(), b"0".to_vec()],
                envp: Vec::new(),
                umask: Some(0o22),
                limits: [(
                    Resource::As,
                    Limit {
                        soft: Some(5),
                        hard: None,
                    },
                )]
                .into(),
                setuidgid: Some(Account {
                    name: "courier".into(),
                    uid: 7,
                    gid: 8,
                }),
            },
        };
        let mut o = Out::default();
        put_steps(&mut o, &steps);
        let b = o.0;
        let mut i = In(&b);
        assert_eq!(get_steps(&mut i), Some(steps));
        assert!(i.0.is_empty());
        for n in 0..b.len() {
            assert_eq!(get_steps(&mut In(&b[..n])), None, "cut at {n}");
        }
    }

    #[test]
    fn a_file_state_tells_absent_from_unknowable() {
        assert_eq!(state(b"/nonexistent/x", true), Some(State::Absent));
        assert!(matches!(state(b"/", true), Some(State::There(_))));
        assert_eq!(state(b"/etc/passwd/x", true), Some(State::Absent));
        // A directory's identity does not move with its listing.
        let Some(State::There(d)) = state(b"/tmp", false) else {
            panic!("/tmp")
        };
        assert_eq!((d.size, d.mtime, d.ctime), (0, (0, 0), (0, 0)));
    }
}
