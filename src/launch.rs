//! The launch: apply a computed [`Plan`] and execve; nothing else. No
//! fork: the pid supervise started is the pid of tcpserver, so `svc`
//! signals reach it.

use std::convert::Infallible;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use anyhow::Context;
use nix::sys::signal::{SigHandler, Signal, signal};
use nix::sys::stat::{Mode, umask};
use nix::unistd::{Gid, Uid, execve, setgid, setgroups, setuid};

use std::collections::BTreeMap;

use crate::account::Account;
use crate::envdir;
use crate::error::{Exit, coded};
use crate::limits::{Limit, Resource};
use crate::plan::Plan;

/// `b` as a C string (its buffer reused), or the usage error of a NUL in it.
fn cstring(b: Vec<u8>) -> anyhow::Result<CString> {
    CString::new(b).map_err(|e| {
        coded(
            Exit::Usage,
            format!(
                "NUL byte in {}: an exec argument cannot hold one",
                String::from_utf8_lossy(&e.into_vec())
            ),
        )
    })
}

/// What the exec needs once the start's side effects are done: the same
/// whether the plan was computed now or kept from an earlier start
/// (src/keep.rs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exec {
    pub program: std::path::PathBuf,
    pub argv: Vec<Vec<u8>>,
    /// `NAME=VALUE`, in envp order.
    pub envp: Vec<Vec<u8>>,
    pub umask: Option<u32>,
    /// Every resource's limits at exec.
    pub limits: BTreeMap<Resource, Limit>,
    /// setuidgid's account.
    pub setuidgid: Option<Account>,
}

impl Exec {
    pub fn of(plan: &Plan) -> Exec {
        Exec {
            program: plan.program.clone(),
            argv: plan.argv.clone(),
            envp: plan
                .env
                .iter()
                .map(|v| {
                    let mut b = Vec::with_capacity(v.name.len() + v.value.len() + 1);
                    b.extend_from_slice(&v.name);
                    b.push(b'=');
                    b.extend_from_slice(&v.value);
                    b
                })
                .collect(),
            umask: plan.umask.as_ref().map(|(m, _)| *m),
            limits: plan.limits.clone(),
            setuidgid: plan.setuidgid.clone(),
        }
    }
}

/// What the launch prints to the log before the exec: the warnings
/// (unset references, CRLF), as conf2env prints them, only when the
/// envdir is (re)written, i.e. once per config change, not on every
/// restart of a flapping service (a stock imapd-ssl warns about
/// $TLS_PROTOCOL; --dry-run and --check always show them); then the
/// banner, on every start.
pub fn messages(plan: &Plan) -> String {
    let mut text = String::new();
    let fresh = plan.envdir.as_ref().is_none_or(|e| !e.unchanged);
    for w in plan.warnings.iter().filter(|_| fresh) {
        text.push_str("courier-run: warning: ");
        text.push_str(&crate::error::printable(w));
        text.push('\n');
    }
    for line in &plan.banner {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Apply the plan in the classic chain's order (envdir written, stderr
/// merged, banner, umask, ulimit -v and softlimit, setuidgid) and exec.
/// `keep`: the run file and the time this start began, to keep the plan
/// for the next start once its side effects are done (src/keep.rs).
/// Returns only on failure.
pub fn launch(plan: &Plan, keep: Option<(&std::path::Path, i128)>) -> anyhow::Result<Infallible> {
    let exec = Exec::of(plan);
    // Everything execve needs, checked before changing the process: a
    // NUL inside an argument is refused while nothing has happened yet.
    let ready = prepare(&exec)?;

    // authdaemond not accepting: nothing done, exit 111, the supervisor
    // starts us again (a service that sat up would fail every login).
    if let Some(w) = &plan.wait_authdaemond {
        w.gate(plan.settings.service.server_name())?;
    }
    // Courier's access list into the front end's rules (atomic; only when
    // they differ from what the list compiles to).
    if let Some(a) = &plan.access {
        crate::rebuild::build(plan, a, false)?;
    }
    if let Some(e) = &plan.envdir {
        if e.unchanged {
            // Siblings a killed run left (never one a live run is
            // writing): the only writes of an unchanged start, and none
            // when there are none.
            envdir::remove_leftovers(&e.path);
        } else {
            let pairs: Vec<(&str, &[u8])> = e
                .vars
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_slice()))
                .collect();
            let protected: Vec<&std::path::Path> =
                e.protected.iter().map(|p| p.as_path()).collect();
            envdir::write_new_checked(&e.path, &pairs, e.modes, &protected)?;
        }
    }
    if let Some(c) = &plan.tls_cache {
        reset_cache(c)?;
    }
    // stderr was merged (plan.merge_stderr) before the plan was computed.
    // One write(2) for all lines.
    let text = messages(plan);
    if !text.is_empty() {
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
    if let Some((runfile, started)) = keep {
        crate::keep::store(plan, runfile, started);
    }
    finish(&exec, ready, &plan.limits_before)
}

/// The exec's path, argv and envp as C strings.
pub struct Ready(CString, Vec<CString>, Vec<CString>);

/// The C strings of the exec, or the usage error of a NUL in one: made
/// before any of the start's side effects.
pub fn prepare(e: &Exec) -> anyhow::Result<Ready> {
    let cstr = |b: &[u8]| cstring(b.to_vec());
    let path = cstr(e.program.as_os_str().as_bytes())?;
    let argv = e
        .argv
        .iter()
        .map(|a| cstr(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envp = e
        .envp
        .iter()
        .map(|a| cstr(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Ready(path, argv, envp))
}

/// The end of every launch, computed or kept: umask, limits (from
/// `before`, the limits the process has), setuidgid, SIGPIPE, execve.
pub fn finish(
    e: &Exec,
    ready: Ready,
    before: &BTreeMap<Resource, Limit>,
) -> anyhow::Result<Infallible> {
    let Ready(path, argv, envp) = ready;
    if let Some(m) = e.umask {
        umask(Mode::from_bits_truncate(m));
    }
    crate::limits::apply_from(before, &e.limits)?;
    if let Some(a) = &e.setuidgid {
        // daemontools setuidgid: supplementary groups dropped first, then
        // the group, then the user (after which nothing else could be set).
        let gid = Gid::from_raw(a.gid);
        setgroups(&[gid]).with_context(|| format!("unable to setgroups for {}", a.name))?;
        setgid(gid).with_context(|| format!("unable to setgid for {}", a.name))?;
        setuid(Uid::from_raw(a.uid)).with_context(|| format!("unable to setuid for {}", a.name))?;
    }
    // Rust's runtime ignores SIGPIPE, and an ignored signal stays ignored
    // across execve: give tcpserver the default disposition a shell would.
    // SAFETY: SIG_DFL installs no handler; nothing else runs concurrently.
    unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) }.context("unable to reset SIGPIPE")?;
    // execve and not std's Command: no fork, and the envp is exactly the
    // plan's (std would also reset signal dispositions it changed).
    let Err(err) = execve(&path, &argv, &envp);
    let code = if err == nix::errno::Errno::ENOENT {
        Exit::NotFound
    } else {
        Exit::NoExec
    };
    Err(coded(
        code,
        format!("unable to run {}: {}", e.program.display(), err.desc()),
    ))
}

/// Courier's rc: `rm -f F; touch F; chown A F; chgrp G F; chmod 600 F`,
/// done safely by [`crate::tlscache::reset`].
fn reset_cache(c: &crate::plan::CacheFile) -> anyhow::Result<()> {
    crate::tlscache::reset(&c.path, &c.owner, c.uid, c.gid, c.mode)
}
