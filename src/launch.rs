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

use crate::envdir;
use crate::error::{Exit, coded};
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

/// Apply the plan in the classic chain's order (envdir written, stderr
/// merged, banner, umask, ulimit -v and softlimit, setuidgid) and exec.
/// Returns only on failure.
pub fn launch(plan: &Plan) -> anyhow::Result<Infallible> {
    // Build everything execve needs before changing the process: a NUL
    // inside an argument is refused while nothing has happened yet.
    let cstr = |b: &[u8]| cstring(b.to_vec());
    let path = cstr(plan.program.as_os_str().as_bytes())?;
    let argv = plan
        .argv
        .iter()
        .map(|a| cstr(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let envp = plan
        .env
        .iter()
        .map(|v| {
            // NAME=VALUE and its NUL in one allocation.
            let mut b = Vec::with_capacity(v.name.len() + v.value.len() + 2);
            b.extend_from_slice(&v.name);
            b.push(b'=');
            b.extend_from_slice(&v.value);
            cstring(b)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

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
    {
        // Warnings (unset references, CRLF) go to the log before the
        // banner, as conf2env prints them: one write(2) for all lines.
        let mut text = String::new();
        // Printed when the envdir is (re)written, i.e. once per config
        // change, not on every restart of a flapping service (a stock
        // imapd-ssl warns about $TLS_PROTOCOL); --dry-run and --check
        // always show them.
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
        if !text.is_empty() {
            let _ = std::io::stderr().write_all(text.as_bytes());
        }
    }
    if let Some((m, _)) = plan.umask {
        umask(Mode::from_bits_truncate(m));
    }
    crate::limits::apply_from(&plan.limits_before, &plan.limits)?;
    if let Some(a) = &plan.setuidgid {
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
        format!("unable to run {}: {}", plan.program.display(), err.desc()),
    ))
}

/// Courier's rc: `rm -f F; touch F; chown A F; chgrp G F; chmod 600 F`,
/// done safely by [`crate::tlscache::reset`].
fn reset_cache(c: &crate::plan::CacheFile) -> anyhow::Result<()> {
    crate::tlscache::reset(&c.path, &c.owner, c.uid, c.gid, c.mode)
}
