//! Check 5: every program of the chain still loads under the planned
//! limits.
//!
//! A child applies the plan's limits (the very `limits::apply` of the
//! launch) and execs the program with `LD_TRACE_LOADED_OBJECTS=1`: glibc's
//! loader then maps every library, as it would for a real start, prints the
//! list and exits before `main`. A limit too low fails there, as the
//! recipe's `softlimit -m 5000000` does for Debian 12's imapd ("failed to map
//! segment"). Only programs whose loader is glibc's are run this way: a
//! static program or another loader would run `main` for real.
//!
//! When a program does not load, the smallest `-m` that loads it is found
//! by bisection (at most [`STEPS`] probes, each a few milliseconds).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::libc;

use super::programs::Probed;
use super::{Ctx, Report};
use crate::limits::{self, Limit, Resource, Value};
use crate::plan::Plan;

/// The largest `-m` tried (2 GiB): a program that needs more to load is
/// not a limit problem.
const CEILING: u64 = 2 << 30;
/// Bisection probes at most.
const STEPS: u32 = 20;
/// One loader run may take this long before it is killed.
const TIMEOUT: Duration = Duration::from_secs(5);

pub fn check(ctx: &Ctx, chain: &[Probed], r: &mut Report) {
    let Some(plan) = &ctx.plan else {
        r.info(
            "memory",
            "not checked: the plan could not be computed (see the FAIL above)",
        );
        return;
    };
    let mut env: Vec<(OsString, OsString)> = plan
        .env
        .iter()
        .filter(|v| v.name != b"LD_TRACE_LOADED_OBJECTS")
        .map(|v| {
            (
                OsString::from_vec(v.name.clone()),
                OsString::from_vec(v.value.clone()),
            )
        })
        .collect();
    env.push(("LD_TRACE_LOADED_OBJECTS".into(), "1".into()));
    let mut seen: Vec<PathBuf> = Vec::new();
    for prog in chain.iter().filter(|p| p.usable) {
        let real = prog
            .path
            .canonicalize()
            .unwrap_or_else(|_| prog.path.clone());
        if seen.contains(&real) {
            continue;
        }
        seen.push(real);
        let what = format!("memory {}", crate::shown::path(&prog.path));
        if let Err(why) = traceable(&prog.path, ctx.euid, 0) {
            r.info(what, format!("not checked: {why}"));
            continue;
        }
        match probe(&prog.path, &plan.limits, &env) {
            Probe::Loaded => r.ok(what),
            Probe::Timeout => r.warn(
                what,
                format!("the loader did not finish within {} s", TIMEOUT.as_secs()),
                "",
            ),
            Probe::Failed(msg) => {
                let (m, f) = diagnose(plan, &prog.path, &env, &msg);
                r.fail(what, m, f);
            }
        }
    }
}

/// Why a program does not load under the plan, and what `-m` would do.
fn diagnose(plan: &Plan, path: &Path, env: &[(OsString, OsString)], msg: &str) -> (String, String) {
    let ulimit_v = plan.ulimit_v.as_ref().map(|(v, _)| *v);
    let under = under(plan);
    // The plan's settings with `-m m` appended: applied as softlimit
    // applies -m (DATA, STACK, MEMLOCK, AS; clamped by the hard limits).
    let with_m = |m: u64| {
        let mut s = plan.softlimit.limits.clone();
        s.extend(
            [
                Resource::Data,
                Resource::Stack,
                Resource::Memlock,
                Resource::As,
            ]
            .map(|r| (r, Value::Num(m))),
        );
        limits::plan(&plan.limits_before, ulimit_v, &s).ok()
    };
    let loads = |m: u64| with_m(m).is_some_and(|l| matches!(probe(path, &l, env), Probe::Loaded));
    if !loads(CEILING) {
        if !matches!(probe(path, &plan.limits_before, env), Probe::Loaded) {
            return (
                format!("does not load even without limits: {msg}"),
                format!("not a limit problem: see ldd {}", crate::shown::path(path)),
            );
        }
        let hard = plan.limits.get(&Resource::As).and_then(|l| l.hard);
        return (
            format!("does not load under {under}, even with -m {CEILING}: {msg}"),
            match (hard, &plan.ulimit_v) {
                (Some(h), Some((_, o))) => {
                    format!("RLIMIT_AS's hard limit {h} from ulimit_v ({o}) is too low: raise it")
                }
                _ => "raise the limits".into(),
            },
        );
    }
    let soft_as = plan
        .limits
        .get(&Resource::As)
        .and_then(|l: &Limit| l.soft)
        .unwrap_or(0);
    let (mut lo, mut hi) = (if soft_as < CEILING { soft_as } else { 0 }, CEILING);
    for _ in 0..STEPS {
        if hi - lo <= hi / 200 {
            break;
        }
        let mid = lo + (hi - lo) / 2;
        if loads(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    // Rounded up, with a little room: the stack's size varies with the
    // environment's.
    let mut m = nice_up(hi + hi / 50);
    if !loads(m) {
        m = nice_up(m + m / 5);
    }
    (
        format!("does not load under {under}: {msg}"),
        format!(
            "it loads from about -m {m}: set softlimit=\"-m {m}\" or more, as it also needs memory to work"
        ),
    )
}

/// The limits in words: the settings that make them.
fn under(plan: &Plan) -> String {
    let mut parts = Vec::new();
    let s = &plan.softlimit.text;
    if !s.is_empty() {
        parts.push(format!("softlimit \"{s}\""));
    }
    if let Some((v, _)) = &plan.ulimit_v {
        parts.push(match v {
            Some(b) => format!("ulimit_v {} KiB", b / 1024),
            None => "ulimit_v unlimited".into(),
        });
    }
    if parts.is_empty() {
        parts.push("the inherited limits".into());
    }
    parts.join(" and ")
}

/// Round up to two significant digits: 8734112 -> 8800000.
fn nice_up(n: u64) -> u64 {
    let mut mag = 1u64;
    while n / mag >= 100 {
        mag *= 10;
    }
    n.div_ceil(mag) * mag
}

/// Is it safe to run `path` with LD_TRACE_LOADED_OBJECTS, i.e. will glibc's
/// loader stop before main? Err: why not.
fn traceable(path: &Path, euid: u32, depth: u32) -> Result<(), String> {
    let data = head(path).map_err(|e| {
        format!(
            "unable to read {}: {}",
            crate::shown::path(path),
            super::errstr(&e)
        )
    })?;
    if let Some(rest) = data.strip_prefix(b"#!") {
        let line = rest.split(|&c| c == b'\n').next().unwrap_or_default();
        let interp = String::from_utf8_lossy(line)
            .split_ascii_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        if depth > 0 || interp.is_empty() {
            return Err("a script without a usable interpreter".into());
        }
        return traceable(Path::new(&interp), euid, depth + 1)
            .map_err(|why| format!("a script run by {interp}, which is {why}"));
    }
    if euid != 0 && std::fs::metadata(path).is_ok_and(|m| m.mode() & 0o6000 != 0) {
        return Err(
            "set-user-ID or set-group-ID: the loader would ignore LD_TRACE_LOADED_OBJECTS".into(),
        );
    }
    match interpreter(&data) {
        None => Err("statically linked or not an ELF program: nothing to load".into()),
        Some(i) => {
            let base = i.rsplit('/').next().unwrap_or("");
            if base.starts_with("ld-linux") || base.starts_with("ld64.so") {
                Ok(())
            } else {
                Err(format!("loaded by {i}, not by glibc's loader"))
            }
        }
    }
}

/// The PT_INTERP of an ELF file (32 or 64 bit, either byte order).
fn interpreter(d: &[u8]) -> Option<String> {
    if d.len() < 52 || &d[..4] != b"\x7fELF" {
        return None;
    }
    let wide = d[4] == 2;
    let le = d[5] == 1;
    let n = |off: usize, len: usize| -> Option<u64> {
        let b = d.get(off..off + len)?;
        let mut v = 0u64;
        for i in 0..len {
            let byte = if le { b[len - 1 - i] } else { b[i] };
            v = (v << 8) | u64::from(byte);
        }
        Some(v)
    };
    let (phoff, phentsize, phnum) = if wide {
        (n(0x20, 8)?, n(0x36, 2)?, n(0x38, 2)?)
    } else {
        (n(0x1c, 4)?, n(0x2a, 2)?, n(0x2c, 2)?)
    };
    for i in 0..phnum {
        let ph = usize::try_from(phoff + i * phentsize).ok()?;
        if n(ph, 4)? != 3 {
            continue; // not PT_INTERP
        }
        let (off, size) = if wide {
            (n(ph + 0x08, 8)?, n(ph + 0x20, 8)?)
        } else {
            (n(ph + 0x04, 4)?, n(ph + 0x10, 4)?)
        };
        let s = d.get(usize::try_from(off).ok()?..usize::try_from(off + size).ok()?)?;
        let s = s.split(|&c| c == 0).next()?;
        return Some(String::from_utf8_lossy(s).into_owned());
    }
    None
}

enum Probe {
    Loaded,
    /// The loader's message (or how the child ended).
    Failed(String),
    Timeout,
}

/// Run the loader of `path` under `limits`, stdout discarded, and wait
/// (killing it after [`TIMEOUT`]): no child outlives this call.
/// The first [`HEAD`] bytes of a regular file: enough for `#!` and for an
/// ELF header with its program headers. A FIFO, a device (`#!/dev/zero`)
/// or a huge file is never read whole: the probe stays bounded.
fn head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    if !std::fs::metadata(path)?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut data = Vec::new();
    f.take(HEAD).read_to_end(&mut data)?;
    Ok(data)
}

/// How much of a program [`head`] reads.
const HEAD: u64 = 64 << 10;

/// How much of a probe's standard error is kept (the loader's message is
/// one line); the rest is read and dropped, so a program that writes
/// without end costs no memory.
const STDERR_KEPT: usize = 16 << 10;

fn probe(path: &Path, limits: &BTreeMap<Resource, Limit>, env: &[(OsString, OsString)]) -> Probe {
    let mut cmd = Command::new(path);
    cmd.env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a timeout kills whatever it started too
        // (which would otherwise hold its stderr open).
        .process_group(0);
    let limits = limits.clone();
    // SAFETY: the child only calls getrlimit/setrlimit before exec (and
    // formats an error on failure; this process has no other thread then,
    // so the allocator is not locked).
    unsafe {
        cmd.pre_exec(move || {
            crate::limits::apply(&limits).map_err(|e| std::io::Error::other(format!("{e:#}")))
        });
    }
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Probe::Failed(format!("unable to run: {}", super::errstr(&e))),
    };
    // Waited for here, without a thread: a thread is one more thing a low
    // `ulimit -v` refuses (it was "failed to spawn thread" and an abort),
    // and polling one pipe with a deadline needs none.
    let out = match wait_bounded(child, TIMEOUT) {
        Waited::Done(out) => out,
        Waited::Timeout => return Probe::Timeout,
        Waited::Failed(e) => {
            return Probe::Failed(format!("unable to wait: {}", super::errstr(&e)));
        }
    };
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    // "PROGRAM: error while loading shared libraries: ...": drop PROGRAM.
    let msg = match line.find("error while loading") {
        Some(i) => line[i..].to_string(),
        None => line.to_string(),
    };
    if out.status.success() && !err.contains("error while loading") {
        return Probe::Loaded;
    }
    Probe::Failed(
        match (msg.is_empty(), out.status.code(), out.status.signal()) {
            (false, _, _) => msg,
            (true, Some(c), _) => format!("the loader exited with status {c}"),
            (true, None, Some(s)) => format!(
                "the loader was killed by {}",
                nix::sys::signal::Signal::try_from(s).map_or(s.to_string(), |s| s.to_string())
            ),
            _ => "the loader failed".into(),
        },
    )
}

enum Waited {
    Done(std::process::Output),
    Timeout,
    Failed(std::io::Error),
}

/// Read `child`'s standard error (keeping [`STDERR_KEPT`] bytes) until it
/// closes, then reap it; after `timeout`, kill its process group and reap
/// it. No child outlives this call.
fn wait_bounded(mut child: std::process::Child, timeout: Duration) -> Waited {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    use std::time::Instant;
    let deadline = Instant::now() + timeout;
    let mut kept = Vec::new();
    let mut late = false;
    if let Some(mut err) = child.stderr.take() {
        let mut buf = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let mut fds = [libc::pollfd {
                fd: err.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            }];
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the call's duration.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
            if n == 0 || left.is_zero() {
                late = true;
                break;
            }
            if n < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            match err.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = STDERR_KEPT.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    // Its stderr closed: it has exited or is about to (or closed it and
    // goes on: the deadline still holds).
    let status = loop {
        if late {
            break None;
        }
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Ok(None) => late = true,
            Err(e) => return Waited::Failed(e),
        }
    };
    match status {
        Some(status) => Waited::Done(std::process::Output {
            status,
            stdout: Vec::new(),
            stderr: kept,
        }),
        None => {
            // Not reaped yet, so the pid (and the group) is still its own.
            let group = nix::unistd::Pid::from_raw(-(child.id() as i32));
            let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            Waited::Timeout
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::process::Child {
        Command::new("/bin/sh")
            .args(["-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn wait_bounded_reads_stderr_and_stops_at_the_deadline() {
        let t = Duration::from_millis(300);
        match wait_bounded(sh("echo oops >&2; exit 3"), t) {
            Waited::Done(o) => {
                assert_eq!(o.stderr, b"oops\n");
                assert_eq!(o.status.code(), Some(3));
            }
            _ => panic!("not done"),
        }
        // Silent for ever, and with stderr closed but still running: both
        // end at the deadline, killed.
        for script in ["sleep 30", "exec 2>&-; sleep 30"] {
            let start = std::time::Instant::now();
            assert!(
                matches!(wait_bounded(sh(script), t), Waited::Timeout),
                "{script}"
            );
            assert!(start.elapsed() < Duration::from_secs(10), "{script}");
        }
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_up(8_734_112), 8_800_000);
        assert_eq!(nice_up(8_800_000), 8_800_000);
        assert_eq!(nice_up(99), 99);
        assert_eq!(nice_up(101), 110);
        assert_eq!(nice_up(0), 0);
    }

    #[test]
    fn elf_interpreter() {
        let me = std::fs::read("/bin/sh").unwrap();
        let i = interpreter(&me).expect("/bin/sh is dynamic");
        assert!(i.contains("ld-"), "{i}");
        assert_eq!(interpreter(b"#!/bin/sh\n"), None);
    }
}
