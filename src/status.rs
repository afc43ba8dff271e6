//! `--status`: what runs now, and what a restart would change.
//!
//! The running front end is found through the service's supervisor (the
//! run file's directory, [`crate::supervise`]); its environment, argv,
//! identity, umask and limits are read from /proc and compared with the
//! plan a restart would apply now: the same [`Plan`] `--dry-run` prints,
//! computed from the environment, limits and umask the supervisor would
//! hand a new launch (its own, read from /proc/PPID: courier-run execs the
//! front end in the supervisor's child, so the parent is the supervisor).
//!
//! Exit codes: 0 running and in effect, 1 running and a restart would
//! change something (or fail), 2 not running, 111 cannot tell.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::environ::Environ;
use crate::error::printable;
use crate::limits::{Limit, Resource};
use crate::plan::Plan;
use crate::report::Format;
use crate::resolve::{Input, resolve};
use crate::supervise::{self, State, Supervisor};

/// Exit codes of `--status`.
pub const RUNNING: i32 = 0;
pub const WOULD_CHANGE: i32 = 1;
pub const NOT_RUNNING: i32 = 2;
pub const CANNOT_TELL: i32 = 111;

/// A value longer than this is cut (its length is said).
const CUT: usize = 80;

/// One difference between the running process and the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// "variable", "argv", "limit", "identity", "umask".
    pub kind: &'static str,
    pub name: String,
    /// "added", "removed", "changed".
    pub change: &'static str,
    /// As shown (escaped, cut, secrets hidden).
    pub running: Option<String>,
    pub planned: Option<String>,
}

/// What a process runs with, read from /proc.
#[derive(Clone, Debug, Default)]
pub struct Running {
    pub env: Environ,
    pub argv: Vec<Vec<u8>>,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<u32>,
    pub limits: BTreeMap<Resource, Limit>,
    pub ppid: u32,
    /// Seconds since the process started.
    pub uptime: Option<u64>,
}

/// The service directory of a run file: its directory.
pub fn service_dir(runfile: &Path) -> PathBuf {
    match runfile.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Two values of a changed variable as shown: when both are cut, each
/// from a little before their first difference, so the change is seen.
pub fn shown_pair(name: &[u8], old: &[u8], new: &[u8]) -> (String, String) {
    let (a, b) = (shown(name, old), shown(name, new));
    if secret_name(name) || (old.len() <= CUT && new.len() <= CUT) {
        return (a, b);
    }
    let (x, y) = (
        printable(&String::from_utf8_lossy(old)),
        printable(&String::from_utf8_lossy(new)),
    );
    let first = x.chars().zip(y.chars()).take_while(|(p, q)| p == q).count();
    let from = first.saturating_sub(20);
    let window = |t: &str, len: usize| {
        let w: String = t.chars().skip(from).take(CUT).collect();
        let more = if t.chars().count() > from + CUT {
            "..."
        } else {
            ""
        };
        format!("...\"{w}\"{more} ({len} bytes)")
    };
    if from == 0 {
        return (a, b);
    }
    (window(&x, old.len()), window(&y, new.len()))
}

/// Does a variable's name look like it holds a secret?
pub fn secret_name(name: &[u8]) -> bool {
    let n = String::from_utf8_lossy(name).to_ascii_uppercase();
    // A *FILE/*DIR/*PATH names where a secret is, not the secret
    // (TLS_PRIVATE_KEYFILE): shown.
    if n.ends_with("FILE") || n.ends_with("DIR") || n.ends_with("PATH") {
        return false;
    }
    ["PASS", "SECRET", "KEY", "TOKEN", "CREDENTIAL", "PRIVATE"]
        .iter()
        .any(|w| n.contains(w))
}

/// A value as shown: escaped, cut at [`CUT`] characters, a secret never
/// whole (its length only).
pub fn shown(name: &[u8], value: &[u8]) -> String {
    if secret_name(name) {
        return format!("(hidden, {} bytes)", value.len());
    }
    let text = printable(&String::from_utf8_lossy(value));
    if text.chars().count() > CUT {
        let cut: String = text.chars().take(CUT).collect();
        return format!("\"{cut}\"... ({} bytes)", value.len());
    }
    format!("\"{text}\"")
}

fn read_proc(pid: u32, file: &str) -> Result<Vec<u8>, String> {
    let path = format!("/proc/{pid}/{file}");
    std::fs::read(&path).map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            " (run --status as root, or as the service's user)"
        } else {
            ""
        };
        format!(
            "unable to read {path}: {}{hint}",
            crate::error::strerror(&e)
        )
    })
}

fn nul_split(b: &[u8]) -> Vec<Vec<u8>> {
    b.split(|&c| c == 0)
        .filter(|w| !w.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// /proc/PID/environ as (name, value) pairs under dash's rule.
pub fn proc_environ(pid: u32) -> Result<Environ, String> {
    let env = nul_split(&read_proc(pid, "environ")?)
        .into_iter()
        .filter_map(|kv| {
            let i = kv.iter().position(|&c| c == b'=')?;
            Some((kv[..i].to_vec(), kv[i + 1..].to_vec()))
        })
        .collect();
    Ok(crate::environ::dedup(env))
}

/// `Name:\tvalue` of /proc/PID/status.
fn status_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

/// /proc/PID/limits: the soft and hard limit of each resource.
pub fn parse_limits(text: &str) -> BTreeMap<Resource, Limit> {
    let value = |w: &str| -> Option<Option<u64>> {
        if w == "unlimited" {
            Some(None)
        } else {
            w.parse().ok().map(Some)
        }
    };
    let mut out = BTreeMap::new();
    for r in Resource::ALL {
        if let Some(rest) = text.lines().find_map(|l| l.strip_prefix(r.proc_name())) {
            let mut w = rest.split_whitespace();
            if let (Some(Some(soft)), Some(Some(hard))) = (w.next().map(value), w.next().map(value))
            {
                out.insert(r, Limit { soft, hard });
            }
        }
    }
    out
}

/// Everything /proc says about `pid`.
pub fn running(pid: u32) -> Result<Running, String> {
    let status = String::from_utf8_lossy(&read_proc(pid, "status")?).into_owned();
    let first = |name: &str| -> Option<u32> {
        status_field(&status, name)?
            .split_whitespace()
            .nth(1) // real, EFFECTIVE, saved, fs
            .and_then(|v| v.parse().ok())
    };
    let groups = status_field(&status, "Groups")
        .unwrap_or("")
        .split_whitespace()
        .filter_map(|g| g.parse().ok())
        .collect();
    let umask = status_field(&status, "Umask").and_then(|u| u32::from_str_radix(u, 8).ok());
    let ppid = status_field(&status, "PPid")
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    Ok(Running {
        env: proc_environ(pid)?,
        argv: nul_split(&read_proc(pid, "cmdline")?),
        uid: first("Uid").unwrap_or(u32::MAX),
        gid: first("Gid").unwrap_or(u32::MAX),
        groups,
        umask,
        limits: parse_limits(&String::from_utf8_lossy(&read_proc(pid, "limits")?)),
        ppid,
        uptime: uptime(pid),
    })
}

/// Seconds since `pid` started: /proc/uptime less the start time
/// (field 22 of /proc/PID/stat, clock ticks after boot).
fn uptime(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: fields
    // are counted after its last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    let start: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .filter(|&h| h > 0)? as u64;
    let up: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((up as u64).saturating_sub(start / hz))
}

fn limit_text(l: Option<&Limit>) -> String {
    let v = |x: Option<u64>| x.map_or("unlimited".to_string(), |n| n.to_string());
    match l {
        Some(l) => format!("soft {} hard {}", v(l.soft), v(l.hard)),
        None => "unknown".into(),
    }
}

fn argv_text(argv: &[Vec<u8>]) -> String {
    let words: Vec<String> = argv
        .iter()
        .map(|a| String::from_utf8_lossy(&crate::report::quote(a)).into_owned())
        .collect();
    printable(&words.join(" "))
}

/// The plan's items that differ from what runs. `supervisor` is what the
/// supervisor itself runs with (an unset umask or identity of the plan is
/// inherited from it).
pub fn compare(plan: &Plan, run: &Running, supervisor: &Running) -> Vec<Change> {
    let mut out = env_changes(&plan.env, &run.env);
    if plan.argv != run.argv {
        out.push(Change {
            kind: "argv",
            name: "argv".into(),
            change: "changed",
            running: Some(argv_text(&run.argv)),
            planned: Some(argv_text(&plan.argv)),
        });
    }
    out.extend(limit_changes(plan, run));
    // Without setuidgid the server keeps the supervisor's identity.
    let (uid, gid, groups) = if plan.setuidgid.is_some() {
        (plan.uid, plan.gid, &plan.groups)
    } else {
        (supervisor.uid, supervisor.gid, &supervisor.groups)
    };
    out.extend(identity_change(uid, gid, groups, run));
    let umask = plan.umask.as_ref().map(|(m, _)| *m).or(supervisor.umask);
    out.extend(umask_change(umask, run.umask));
    out
}

/// The variables the plan adds or changes (in name order), then those it
/// would no longer set; values as [`shown`] shows them (secrets hidden).
fn env_changes(planned: &[crate::plan::Var], running: &Environ) -> Vec<Change> {
    let mut out = Vec::new();
    let running: BTreeMap<&[u8], &[u8]> = running
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let planned: BTreeMap<&[u8], &[u8]> = planned
        .iter()
        .map(|v| (v.name.as_slice(), v.value.as_slice()))
        .collect();
    let name = |n: &[u8]| printable(&String::from_utf8_lossy(n));
    for (n, v) in &planned {
        match running.get(n) {
            None => out.push(Change {
                kind: "variable",
                name: name(n),
                change: "added",
                running: None,
                planned: Some(shown(n, v)),
            }),
            Some(r) if r != v => {
                let (was, will) = shown_pair(n, r, v);
                out.push(Change {
                    kind: "variable",
                    name: name(n),
                    change: "changed",
                    running: Some(was),
                    planned: Some(will),
                })
            }
            _ => {}
        }
    }
    for (n, r) in &running {
        if !planned.contains_key(n) {
            out.push(Change {
                kind: "variable",
                name: name(n),
                change: "removed",
                running: Some(shown(n, r)),
                planned: None,
            });
        }
    }
    out
}

/// Each resource whose limits differ; one /proc does not show is not a
/// difference (nothing to compare with).
fn limit_changes(plan: &Plan, run: &Running) -> Vec<Change> {
    let mut out = Vec::new();
    for r in Resource::ALL {
        let (p, g) = (plan.limits.get(&r), run.limits.get(&r));
        if g.is_some() && p != g {
            out.push(Change {
                kind: "limit",
                name: r.name().into(),
                change: "changed",
                running: Some(limit_text(g)),
                planned: Some(limit_text(p)),
            });
        }
    }
    out
}

/// uid, gid and the supplementary groups (in any order) against what
/// runs.
fn identity_change(uid: u32, gid: u32, groups: &[u32], run: &Running) -> Option<Change> {
    let id = |u: u32, g: u32, gs: &[u32]| {
        let gs: Vec<String> = gs.iter().map(u32::to_string).collect();
        format!("uid {u} gid {g} groups {}", gs.join(","))
    };
    let sorted = |v: &[u32]| {
        let mut v = v.to_vec();
        v.sort_unstable();
        v
    };
    ((uid, gid) != (run.uid, run.gid) || sorted(groups) != sorted(&run.groups)).then(|| Change {
        kind: "identity",
        name: "identity".into(),
        change: "changed",
        running: Some(id(run.uid, run.gid, &run.groups)),
        planned: Some(id(uid, gid, groups)),
    })
}

/// The umask, when both are known and differ (shown as `0027`).
fn umask_change(planned: Option<u32>, running: Option<u32>) -> Option<Change> {
    match (planned, running) {
        (Some(p), Some(r)) if p != r => Some(Change {
            kind: "umask",
            name: "umask".into(),
            change: "changed",
            running: Some(format!("{r:04o}")),
            planned: Some(format!("{p:04o}")),
        }),
        _ => None,
    }
}

/// The variables of the envdir on disk whose value is not what the
/// process got (the envdir was written after the start, or by hand).
pub fn envdir_differs(dir: &Path, run: &Running) -> Result<Vec<String>, String> {
    let vars = crate::envdir::read(dir).map_err(|e| crate::error::describe(&e))?;
    let mut out = Vec::new();
    for (n, v) in vars {
        use std::os::unix::ffi::OsStrExt;
        let n = n.as_bytes();
        let got = run.env.iter().find(|(k, _)| k == n).map(|(_, v)| v);
        if got != v.as_ref() {
            out.push(printable(&String::from_utf8_lossy(n)));
        }
    }
    Ok(out)
}

/// The report, built once and printed as text or JSON.
#[derive(Debug, Default)]
struct StatusReport {
    state: &'static str,
    supervisor: Option<Supervisor>,
    pid: Option<u32>,
    uptime: Option<u64>,
    changes: Vec<Change>,
    restart_problem: Option<String>,
    envdir: Option<(PathBuf, Result<Vec<String>, String>)>,
    message: Option<String>,
    code: i32,
}

fn duration(s: u64) -> String {
    let (d, h, m) = (s / 86400, s / 3600 % 24, s / 60 % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {}s", s % 60),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

impl StatusReport {
    fn text(&self, what: &str) -> String {
        let mut s = String::new();
        let sup = self.supervisor.map_or("no supervisor", Supervisor::name);
        match self.state {
            "up" => {
                s += &format!(
                    "{what}: up{} (pid {}, {sup})\n",
                    self.uptime
                        .map(|u| format!(" {}", duration(u)))
                        .unwrap_or_default(),
                    self.pid.unwrap_or(0),
                );
            }
            "down" => s += &format!("{what}: not running ({sup})\n"),
            _ => s += &format!("{what}: cannot tell ({sup})\n"),
        }
        if let Some(m) = &self.message {
            s += &format!("  {m}\n");
        }
        if self.state != "up" {
            return s;
        }
        if let Some(p) = &self.restart_problem {
            s += &format!("a restart would fail: {p}\n");
        } else if self.changes.is_empty() {
            s += "in effect: a restart would change nothing\n";
        } else {
            s += "a restart would change:\n";
            for c in &self.changes {
                let (r, p) = (
                    c.running.as_deref().unwrap_or(""),
                    c.planned.as_deref().unwrap_or(""),
                );
                s += &match (c.kind, c.change) {
                    ("variable", "added") => format!("  variable {} added: {p}\n", c.name),
                    ("variable", "removed") => {
                        format!("  variable {} removed (was {r})\n", c.name)
                    }
                    ("variable", _) => format!("  variable {}: {r} -> {p}\n", c.name),
                    _ => format!("  {} {}: {r} -> {p}\n", c.kind, c.name),
                };
            }
        }
        if let Some((path, d)) = &self.envdir {
            let p = printable(&path.to_string_lossy());
            s += &match d {
                Ok(v) if v.is_empty() => format!("envdir {p}: what the process got\n"),
                Ok(v) => format!(
                    "envdir {p}: differs from what the process got: {}\n",
                    v.join(", ")
                ),
                Err(e) => format!("envdir {p}: {e}\n"),
            };
        }
        s
    }

    fn json(&self) -> Value {
        let changes: Vec<Value> = self
            .changes
            .iter()
            .map(|c| {
                json!({"kind": c.kind, "name": c.name, "change": c.change,
                       "running": c.running, "planned": c.planned})
            })
            .collect();
        let envdir = self.envdir.as_ref().map(|(p, d)| match d {
            Ok(v) => json!({"path": p.to_string_lossy(), "differs": v, "error": null}),
            Err(e) => json!({"path": p.to_string_lossy(), "differs": null, "error": e}),
        });
        json!({
            "state": self.state,
            "supervisor": self.supervisor.map(Supervisor::name),
            "pid": self.pid,
            "uptime_seconds": self.uptime,
            "in_effect": (self.state == "up").then_some(self.code == RUNNING),
            "changes": changes,
            "restart_problem": self.restart_problem,
            "envdir": envdir,
            "message": self.message,
            "exit": self.code,
        })
    }
}

/// `courier-run RUNFILE --status`: prints the report, returns the exit code.
pub fn run(runfile: &Path, sets: &[String], format: Format) -> anyhow::Result<i32> {
    let rep = report(runfile, sets);
    let out = match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&rep.json())?;
            s.push('\n');
            s
        }
        _ => {
            let dir = service_dir(runfile);
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            rep.text(&printable(&dir.to_string_lossy()))
        }
    };
    crate::report::output(out.as_bytes())?;
    Ok(rep.code)
}

fn report(runfile: &Path, sets: &[String]) -> StatusReport {
    let dir = service_dir(runfile);
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let mut rep = StatusReport {
        state: "unknown",
        code: CANNOT_TELL,
        ..StatusReport::default()
    };
    let Some(pid) = service_pid(&dir, &mut rep) else {
        return rep;
    };
    let run = match running(pid) {
        Ok(r) => r,
        Err(e) => {
            // Gone between the two reads: not running.
            if !Path::new(&format!("/proc/{pid}")).exists() {
                rep.state = "down";
                rep.code = NOT_RUNNING;
            }
            rep.message = Some(e);
            return rep;
        }
    };
    rep.state = "up";
    rep.pid = Some(pid);
    rep.uptime = run.uptime;
    // What a restart inherits: the supervisor's environment, limits,
    // umask and identity (systemd: its manager's, an approximation).
    let sup = match running(run.ppid) {
        Ok(s) => s,
        Err(e) => {
            rep.state = "unknown";
            rep.message = Some(format!("the supervisor (pid {}): {e}", run.ppid));
            return rep;
        }
    };
    let input = Input {
        runfile: Some(runfile),
        sets,
        environ: &sup.env,
    };
    against_restart(&input, &dir, &run, &sup, &mut rep);
    rep
}

/// The pid of the service the supervisor of `dir` runs; None (with the
/// state, code and message set in `rep`) when there is no supervisor to
/// ask, it is not running, or the service is down.
fn service_pid(dir: &Path, rep: &mut StatusReport) -> Option<u32> {
    let Some(kind) = supervise::detect(dir) else {
        rep.message = Some(format!(
            "no supervise/ directory of daemontools, runit or s6 and no systemd unit in {}: nothing tells which process is the service",
            dir.display()
        ));
        return None;
    };
    rep.supervisor = Some(kind);
    match supervise::status(dir, kind) {
        Err(e) => {
            rep.message = Some(e);
            None
        }
        Ok(State::NoSupervisor) => {
            rep.state = "down";
            rep.code = NOT_RUNNING;
            rep.message = Some(format!(
                "{} is not running for {}",
                kind.name(),
                dir.display()
            ));
            None
        }
        Ok(State::Down) => {
            rep.state = "down";
            rep.code = NOT_RUNNING;
            None
        }
        Ok(State::Up { pid }) => Some(pid),
    }
}

/// What a restart would start (planned in the supervisor's environment
/// and limits) against what runs: the changes and the envdir's, or why a
/// restart would be refused. Either way the exit code says so.
fn against_restart(
    input: &Input,
    dir: &Path,
    run: &Running,
    sup: &Running,
    rep: &mut StatusReport,
) {
    match Plan::new_under(resolve(input), sup.limits.clone()) {
        Ok(plan) => {
            rep.changes = compare(&plan, run, sup);
            rep.code = if rep.changes.is_empty() {
                RUNNING
            } else {
                WOULD_CHANGE
            };
            if let Some(e) = &plan.envdir {
                let path = if e.path.is_absolute() {
                    e.path.clone()
                } else {
                    dir.join(&e.path)
                };
                rep.envdir = Some((e.path.clone(), envdir_differs(&path, run)));
            }
        }
        Err(e) => {
            rep.restart_problem = Some(printable(&crate::error::describe(&e)));
            rep.code = WOULD_CHANGE;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_shown() {
        assert!(secret_name(b"LDAP_PASSWORD"));
        assert!(secret_name(b"api_token"));
        assert!(!secret_name(b"TLS_PRIVATE_KEYFILE"));
        assert!(!secret_name(b"IMAP_CAPABILITY"));
        assert_eq!(shown(b"DB_PASS", b"hunter2"), "(hidden, 7 bytes)");
        assert_eq!(shown(b"X", b"a\nb"), "\"a\\nb\"");
        let long = vec![b'x'; 200];
        assert!(shown(b"X", &long).ends_with("... (200 bytes)"));
    }

    /// Added and changed variables in name order, then removed ones;
    /// equal ones are not changes, and a secret's values stay hidden.
    #[test]
    fn env_changes_in_order() {
        let var = |n: &str, v: &str| crate::plan::Var {
            name: n.into(),
            value: v.into(),
            origin: crate::settings::Origin::Default,
        };
        let planned = [
            var("B", "2"),
            var("A", "1"),
            var("DB_PASS", "new"),
            var("SAME", "x"),
        ];
        let running: Environ = [("SAME", "x"), ("DB_PASS", "old"), ("B", "9"), ("GONE", "g")]
            .iter()
            .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        let c = env_changes(&planned, &running);
        let seen: Vec<(&str, &str)> = c.iter().map(|c| (c.name.as_str(), c.change)).collect();
        assert_eq!(
            seen,
            [
                ("A", "added"),
                ("B", "changed"),
                ("DB_PASS", "changed"),
                ("GONE", "removed")
            ]
        );
        assert_eq!(c[1].running.as_deref(), Some("\"9\""));
        assert!(!format!("{:?}", c[2]).contains("old"), "{:?}", c[2]);
    }

    /// Groups compare as sets; uid or gid alone is a change; an umask
    /// one side does not know is not.
    #[test]
    fn identity_and_umask_changes() {
        let run = Running {
            uid: 100,
            gid: 101,
            groups: vec![5, 3],
            ..Running::default()
        };
        assert_eq!(identity_change(100, 101, &[3, 5], &run), None);
        let c = identity_change(100, 102, &[3, 5], &run).unwrap();
        assert_eq!(c.running.as_deref(), Some("uid 100 gid 101 groups 5,3"));
        assert_eq!(c.planned.as_deref(), Some("uid 100 gid 102 groups 3,5"));
        assert!(identity_change(100, 101, &[3], &run).is_some());
        assert_eq!(umask_change(Some(0o27), Some(0o27)), None);
        assert_eq!(umask_change(None, Some(0o22)), None);
        assert_eq!(umask_change(Some(0o27), None), None);
        let c = umask_change(Some(0o27), Some(0o22)).unwrap();
        assert_eq!(
            (c.running.as_deref(), c.planned.as_deref()),
            (Some("0022"), Some("0027"))
        );
    }

    /// No supervisor to ask: cannot tell (111), and the message says why;
    /// daemontools' supervise/ with no supervise running: down (2).
    #[test]
    fn service_pid_without_a_running_supervisor() {
        let dir = std::env::temp_dir().join(format!("cr-status-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut rep = StatusReport {
            state: "unknown",
            code: CANNOT_TELL,
            ..StatusReport::default()
        };
        assert_eq!(service_pid(&dir, &mut rep), None);
        assert_eq!((rep.state, rep.code), ("unknown", CANNOT_TELL));
        assert!(
            rep.message
                .as_deref()
                .unwrap()
                .starts_with("no supervise/ directory"),
            "{:?}",
            rep.message
        );
        std::fs::create_dir(dir.join("supervise")).unwrap();
        std::fs::write(dir.join("supervise/status"), [0u8; 18]).unwrap();
        let mut rep = StatusReport::default();
        let pid = service_pid(&dir, &mut rep);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(pid, None);
        assert_eq!(rep.supervisor, Some(Supervisor::Daemontools));
        assert_eq!(
            (rep.state, rep.code),
            ("down", NOT_RUNNING),
            "{:?}",
            rep.message
        );
    }

    #[test]
    fn proc_limits_table() {
        let t = "Limit                     Soft Limit           Hard Limit           Units     \n\
                 Max cpu time              unlimited            unlimited            seconds   \n\
                 Max open files            1024                 4096                 files     \n";
        let l = parse_limits(t);
        assert_eq!(
            l.get(&Resource::Nofile),
            Some(&Limit {
                soft: Some(1024),
                hard: Some(4096)
            })
        );
        assert_eq!(
            l.get(&Resource::Cpu),
            Some(&Limit {
                soft: None,
                hard: None
            })
        );
    }

    #[test]
    fn own_process_reads() {
        let me = running(std::process::id()).unwrap();
        assert_eq!(me.uid, nix::unistd::geteuid().as_raw());
        assert!(!me.argv.is_empty());
        assert!(me.umask.is_some());
        assert_eq!(me.limits.len(), Resource::ALL.len());
        assert!(me.uptime.is_some());
    }
}
