//! `--check` of `service=authdaemond`: the run file and authdaemonrc, the
//! program, the envdir, which modules of `authmodulelist` are installed
//! (authdaemond runs on with none, and every login fails), and whether a
//! live authdaemond already holds the socket (a second one takes it over
//! silently: it renames its own socket over the old one).

use std::path::Path;

use super::{Identity, Report, Status};
use crate::authdaemon::{self, SocketState};
use crate::authdaemond::{Daemon, compose, module_dir, module_file};
use crate::error::{Problem, Subject, printable};
use crate::resolve::config_subject;

pub fn check(d: Daemon, r: &mut Report) {
    r.group(1);
    for p in &d.problems {
        r.push_problem(Status::Fail, p.clone());
    }
    let reported = |s: &Subject| d.problems.iter().any(|p| p.subject == *s);
    if let Some(path) = &d.settings.runfile
        && !reported(&Subject::RunFile)
    {
        r.ok(format!("run file {}", printable(&path.to_string_lossy())));
    }
    for path in &d.configs {
        let subject = config_subject(&path.to_string_lossy());
        if !reported(&subject) {
            r.ok(subject);
        }
    }
    for w in &d.warnings {
        r.warn(Subject::Config, printable(w), "");
    }
    match compose(&d) {
        Ok(p) => {
            if let Some(e) = &p.envdir {
                let w = format!("envdir {}", printable(&e.path.to_string_lossy()));
                r.ok(if e.unchanged {
                    format!("{w} (up to date)")
                } else {
                    format!("{w} (would be written)")
                });
            }
        }
        Err(e) => r.fail_error(Subject::Plan, &e),
    }

    r.group(3);
    for (what, a) in [("account", &d.account), ("setuidgid", &d.setuidgid)] {
        if let Some(a) = a {
            r.ok(format!("{what} {} (uid {}, gid {})", a.name, a.uid, a.gid));
        }
    }
    r.group(4);
    let program = |p: &Problem| matches!(p.subject, Subject::ServerProgram(_));
    if !reported(&Subject::Server) && !d.problems.iter().any(program) {
        let id = match &d.setuidgid {
            Some(a) => Identity {
                uid: a.uid,
                gid: a.gid,
                groups: vec![a.gid],
            },
            None => Identity {
                uid: nix::unistd::geteuid().as_raw(),
                gid: nix::unistd::getegid().as_raw(),
                groups: crate::plan::own_groups(),
            },
        };
        let check = format!(
            "program {} (authdaemond)",
            printable(&d.program.to_string_lossy())
        );
        match super::programs::executable(&d.program, &id) {
            Ok(()) => r.ok(check),
            Err((why, fix)) => r.fail(
                check,
                why,
                fix.unwrap_or_else(|| {
                    "install courier-authdaemon, or set server= to authdaemond's path".into()
                }),
            ),
        }
    }

    r.group(11);
    modules(&d, r);
    socket(&d, r);
}

/// Each module of `authmodulelist`: installed or not.
fn modules(d: &Daemon, r: &mut Report) {
    let list = d.modules();
    let dir = module_dir(d.settings.layout, d.settings.prefix.as_str());
    let what = format!("authmodulelist ({})", d.own_rc.display());
    if list.is_empty() {
        r.fail(
            what,
            "no module: authdaemond would run, and every login would fail",
            "set authmodulelist=\"authpam\" (or the modules you use) in authdaemonrc",
        );
        return;
    }
    let mut installed = 0;
    for m in &list {
        let f = module_file(&dir, m);
        if f.is_file() {
            installed += 1;
            r.ok(format!("module {m} installed ({})", f.display()));
        } else {
            r.warn(
                format!("module {m}"),
                format!(
                    "{} does not exist: authdaemond skips it (its log: \"Installing lib{m}.so.0\", \"file not found\")",
                    f.display()
                ),
                format!(
                    "install it (Debian: the courier-authlib-* package of {m}), or remove it from authmodulelist"
                ),
            );
        }
    }
    if installed == 0 {
        r.fail(
            what,
            format!(
                "none of {} is installed in {}: authdaemond would run, and every login would fail",
                list.join(" "),
                dir.display()
            ),
            "install a module (authpam: courier-authdaemon), or list an installed one",
        );
    }
}

/// The socket: its directory must exist (authdaemond binds there), and no
/// other live authdaemond may hold it.
fn socket(d: &Daemon, r: &mut Report) {
    let (sock, from) = d.socket();
    let what = Subject::Socket(format!("{} (authdaemonvar: {from})", sock.display()));
    let dir = sock.parent().unwrap_or(Path::new("/"));
    if !dir.is_dir() {
        r.fail(
            what,
            format!(
                "{} is not a directory: authdaemond cannot create its socket",
                dir.display()
            ),
            "create it (Debian: mkdir -p /run/courier/authdaemon; chown courier:courier; chmod 750), e.g. in the run file's supervisor setup",
        );
        return;
    }
    let st = authdaemon::state(&sock);
    if !st.alive() {
        let note = match st {
            SocketState::Refused => " (a stale socket file: authdaemond replaces it)",
            _ => "",
        };
        r.ok(format!("{what}: free{note}"));
        return;
    }
    let holder = holder(&sock);
    let ours = holder.as_ref().is_some_and(|h| this_service(h, d));
    let who = holder
        .as_ref()
        .map(|h| format!("pid {} ({})", h.pid, h.comm))
        .unwrap_or_else(|| "a process this user cannot see".into());
    if ours {
        r.ok(format!("{what}: held by this service's authdaemond, {who}"));
    } else {
        r.fail(
            what,
            format!(
                "another authdaemond already holds it ({who}, {}): this one would take the socket over and leave that one running, unreached",
                st.describe()
            ),
            "stop the other one first (Debian: /usr/sbin/authdaemond stop, and disable it: update-rc.d courier-authdaemon disable, or systemctl disable --now courier-authdaemon)",
        );
    }
}

/// The process that listens on a unix socket.
#[derive(Debug)]
struct Holder {
    pid: u32,
    ppid: u32,
    comm: String,
}

/// Find the listening sockets bound at `sock` in /proc/net/unix, then the
/// process holding one whose parent does not (authdaemond's children
/// inherit it), in our mount namespace (the table is the network
/// namespace's: a daemon in another mount namespace binds the same name).
fn holder(sock: &Path) -> Option<Holder> {
    let table = std::fs::read_to_string("/proc/net/unix").ok()?;
    let want = sock.to_string_lossy();
    let links: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            // Num RefCount Protocol Flags Type St Inode Path; Flags
            // 00010000: listening. authdaemond binds socket.tmp and renames
            // it: the table keeps the name it was bound with.
            let named = w.len() >= 8 && w[7].strip_suffix(".tmp").unwrap_or(w[7]) == want;
            (named && w[3] == "00010000").then(|| format!("socket:[{}]", w[6]))
        })
        .collect();
    if links.is_empty() {
        return None;
    }
    let own_ns = std::fs::read_link("/proc/self/ns/mnt").ok();
    let mut pids: Vec<u32> = Vec::new();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if own_ns.is_some() && std::fs::read_link(e.path().join("ns/mnt")).ok() != own_ns {
            continue;
        }
        let holds = std::fs::read_dir(e.path().join("fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|f| {
                std::fs::read_link(f.path())
                    .is_ok_and(|l| links.iter().any(|k| l.as_os_str() == k.as_str()))
            });
        if holds {
            pids.push(pid);
        }
    }
    let info = |pid: u32| -> Option<Holder> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = stat.split_once(" (")?;
        let (comm, rest) = rest.rsplit_once(") ")?;
        let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
        Some(Holder {
            pid,
            ppid,
            comm: comm.to_string(),
        })
    };
    let all: Vec<Holder> = pids.iter().filter_map(|&p| info(p)).collect();
    all.into_iter().find(|h| !pids.contains(&h.ppid))
}

/// The holder is this service's: its parent (supervise, runsv,
/// s6-supervise) works in the run file's directory.
fn this_service(h: &Holder, d: &Daemon) -> bool {
    let Some(run) = &d.settings.runfile else {
        return false;
    };
    let dir = run
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (Ok(dir), Ok(cwd)) = (
        std::fs::canonicalize(dir),
        std::fs::read_link(format!("/proc/{}/cwd", h.ppid)),
    ) else {
        return false;
    };
    cwd == dir
}
