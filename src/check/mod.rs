//! `--check`: say why a service would not start, before supervise restarts
//! it every second.
//!
//! Unlike the launch, which stops at the first error, the check goes on: it
//! reads the run file and the config files leniently (each problem is one
//! line, and what was readable is still used), checks each concern on its
//! own, and only then computes the [`Plan`] for the checks that need it
//! (memory limits), with every setting already reported as broken replaced
//! by a harmless stand-in, so that one bad account does not hide a limit
//! that is too low. The launch path never comes here.
//!
//! Nothing on disk is changed (the envdir is compared, never written), and
//! the only children are the loader probes of the memory check, each waited
//! for (and killed after a timeout).
//!
//! One file per group of checks:
//! - [`files`]: 1 run file, settings and config files, envdir;
//! - [`ownership`]: 2 who can change what runs as root;
//! - [`programs`]: 3 accounts, 4 programs;
//! - [`memory`]: 5 the chain loads under the planned limits;
//! - [`rules`]: 6 the tcprules cdb;
//! - [`network`]: 7 port and address, `--bind`;
//! - [`server`]: 8 Courier variables that cannot apply, 9 tcpserver traps;
//! - [`maildir`]: 10 the Maildir of a preauthenticated or absolute path.

mod files;
mod maildir;
mod memory;
mod network;
mod ownership;
mod programs;
mod rules;
mod server;

use std::io::Write;

use serde_json::json;

use crate::cli::Format;
use crate::config::Assignment;
use crate::error::{Exit, bad_input};
use crate::launch::Args;
use crate::plan::Plan;
use crate::settings::{Origin, Settings};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Info,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Info => "info",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Item {
    /// The check's number in issue 5; lines are printed in this order.
    group: u8,
    pub status: Status,
    /// What was checked ("program /usr/bin/imapd", "run file").
    pub check: String,
    /// The problem (empty for ok).
    pub message: String,
    /// How to fix it (may be empty).
    pub fix: String,
}

impl Item {
    /// `ok   WHAT`, `warn WHAT: problem (fix)`, `FAIL WHAT: problem (fix)`.
    pub fn line(&self) -> String {
        let word = match self.status {
            Status::Fail => "FAIL",
            s => s.word(),
        };
        let mut l = format!("{word:<4} {}", self.check);
        if !self.message.is_empty() {
            l.push_str(": ");
            l.push_str(&self.message);
        }
        if !self.fix.is_empty() {
            l.push_str(&format!(" ({})", self.fix));
        }
        l
    }
}

/// The lines found so far, each tagged with the group being checked.
#[derive(Default)]
pub struct Report {
    items: Vec<Item>,
    group: u8,
}

impl Report {
    /// Lines pushed from now on belong to check `n`.
    fn group(&mut self, n: u8) {
        self.group = n;
    }

    fn push(&mut self, status: Status, check: impl Into<String>, message: String, fix: String) {
        self.items.push(Item {
            group: self.group,
            status,
            check: check.into(),
            message,
            fix,
        });
    }

    fn ok(&mut self, check: impl Into<String>) {
        self.push(Status::Ok, check, String::new(), String::new());
    }

    fn info(&mut self, check: impl Into<String>, message: impl Into<String>) {
        self.push(Status::Info, check, message.into(), String::new());
    }

    fn warn(
        &mut self,
        check: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Warn, check, message.into(), fix.into());
    }

    fn fail(
        &mut self,
        check: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Fail, check, message.into(), fix.into());
    }

    /// A FAIL from a message that may end in its own "(fix)", as the
    /// launcher's error messages do.
    fn fail_msg(&mut self, check: impl Into<String>, msg: &str) {
        let (m, f) = split_fix(msg);
        self.fail(check, m, f);
    }

    fn warn_msg(&mut self, check: impl Into<String>, msg: &str) {
        let (m, f) = split_fix(msg);
        self.warn(check, m, f);
    }

    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| i.status == Status::Fail)
    }

    /// The lines in check order (stable within a check).
    pub fn items(&self) -> Vec<&Item> {
        let mut v: Vec<&Item> = self.items.iter().collect();
        v.sort_by_key(|i| i.group);
        v
    }
}

/// "problem (fix)" -> ("problem", "fix"): the last parenthesized part, when
/// the message ends with one.
fn split_fix(msg: &str) -> (String, String) {
    if msg.ends_with(')') {
        let mut depth = 0;
        for (i, c) in msg.char_indices().rev() {
            match c {
                ')' => depth += 1,
                '(' => {
                    depth -= 1;
                    if depth == 0 {
                        if i > 0 && msg[..i].ends_with(' ') {
                            return (
                                msg[..i - 1].to_string(),
                                msg[i + 1..msg.len() - 1].to_string(),
                            );
                        }
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    (msg.to_string(), String::new())
}

use crate::error::strerror as errstr;

/// Who a program runs as.
#[derive(Clone, Debug)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Everything the checks share: the settings and config as read leniently,
/// the identity at exec and, once computed, the plan.
pub struct Ctx {
    pub settings: Settings,
    /// The inherited environment (bytes), as the plan gets it.
    pub inherited: Vec<(Vec<u8>, Vec<u8>)>,
    /// The config's final variables (what was readable of it).
    pub config: Vec<Assignment>,
    /// Identity at exec (setuidgid's account, or courier-run's own).
    pub exec_id: Identity,
    pub euid: u32,
    /// Settings replaced for the plan because their problem is already
    /// reported.
    pub subst: Vec<(&'static str, String)>,
    pub plan: Option<Plan>,
    pub bind: bool,
}

impl Ctx {
    /// A config variable's final value.
    pub fn var(&self, name: &str) -> Option<&Assignment> {
        self.config.iter().find(|a| a.name == name)
    }

    /// A setting that defaults to a config variable, as the plan derives it:
    /// the setting, else the variable, else `fallback`.
    pub fn derived(
        &self,
        name: &str,
        var: &str,
        fallback: Option<&str>,
    ) -> Option<(String, Origin)> {
        crate::plan::derived(&self.settings, &self.config, name, var, fallback)
            .map(|v| (v.text, v.origin))
    }

    /// Give the plan `value` for `setting` (its problem is reported).
    pub fn substitute(&mut self, setting: &'static str, value: impl Into<String>) {
        self.subst.retain(|(n, _)| *n != setting);
        self.subst.push((setting, value.into()));
    }

    /// The value of `name` in the program's environment: the plan's, or the
    /// config's, or the inherited one.
    pub fn env(&self, name: &str) -> Option<Vec<u8>> {
        if let Some(p) = &self.plan {
            return p.env_get(name).map(<[u8]>::to_vec);
        }
        if let Some(a) = self.var(name) {
            return Some(a.value.clone());
        }
        // A bad inherit_env is reported by the files check; keep nothing.
        let kept =
            crate::plan::Inherit::from(&self.settings).is_ok_and(|i| i.keeps(name.as_bytes()));
        if !kept {
            return None;
        }
        self.inherited
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.clone())
    }
}

/// `courier-run [RUNFILE] --check [--bind] [--format text|json]`.
pub fn main(args: &Args) -> anyhow::Result<Exit> {
    if args.format == Format::Sh {
        return Err(bad_input(
            "--format sh is for --dry-run (--check prints text or json)",
        ));
    }
    let report = run(args);
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            let list: Vec<_> = report
                .items()
                .iter()
                .map(|i| {
                    json!({"status": i.status.word(), "check": i.check, "message": i.message, "fix": i.fix})
                })
                .collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
        }
        _ => {
            for i in report.items() {
                writeln!(out, "{}", i.line())?;
            }
        }
    }
    out.flush()?;
    Ok(if report.failed() {
        Exit::CheckFailed
    } else {
        Exit::Ok
    })
}

/// Run every check; the report is complete whatever fails.
pub fn run(args: &Args) -> Report {
    let mut r = Report::default();
    let inherited_str = crate::conf2env::inherited_env();
    let inherited = crate::launch::inherited();

    r.group(1);
    let settings = files::settings(args, &inherited_str, &mut r);
    let cfg = files::configs(&settings, &inherited, &mut r);
    let euid = nix::unistd::geteuid().as_raw();
    let mut ctx = Ctx {
        settings,
        inherited,
        config: cfg.vars,
        exec_id: Identity {
            uid: euid,
            gid: nix::unistd::getegid().as_raw(),
            groups: nix::unistd::getgroups()
                .map(|g| g.iter().map(|g| g.as_raw()).collect())
                .unwrap_or_default(),
        },
        euid,
        subst: Vec::new(),
        plan: None,
        bind: args.bind,
    };
    if let Some(good) = cfg.readable {
        ctx.substitute("config", good);
    }
    files::values(&mut ctx, &mut r);
    files::envdir(&ctx, &mut r);

    r.group(3);
    programs::accounts(&mut ctx, &mut r);
    r.group(9);
    let flags = server::traps(&mut ctx, &mut r);
    r.group(4);
    let chain = programs::programs(&mut ctx, &flags, &mut r);
    r.group(7);
    network::check(&mut ctx, &mut r);

    r.group(5);
    ctx.plan = plan(&ctx, &mut r);

    r.group(2);
    ownership::check(&ctx, &chain, &mut r);
    r.group(5);
    memory::check(&ctx, &chain, &mut r);
    r.group(6);
    rules::check(&ctx, &flags, &mut r);
    r.group(8);
    server::courier(&ctx, &flags, &mut r);
    r.group(10);
    maildir::check(&ctx, &mut r);
    r
}

/// The plan, computed with the reported settings replaced. It also probes
/// the envdir (is it already right? may it be written?), which nothing
/// else checks: when the plan fails and succeeds without the envdir, the
/// envdir is the problem. Any other failure is a problem no other check
/// saw, reported as is.
fn plan(ctx: &Ctx, r: &mut Report) -> Option<Plan> {
    let mut s = ctx.settings.clone();
    for (name, value) in &ctx.subst {
        if let Some((_, v)) = s.values.iter_mut().find(|(n, _)| n == name) {
            v.value = Some(value.clone());
        }
    }
    let dir = s.str("envdir").to_string();
    let what = format!("envdir {dir}");
    let group = r.group;
    r.group(1);
    let plan = match Plan::new(s.clone(), ctx.inherited.clone()) {
        Ok(p) => {
            match &p.envdir {
                Some(e) if e.unchanged => r.ok(format!("{what} (up to date)")),
                Some(_) => r.ok(format!("{what} (would be written)")),
                None => {}
            }
            Some(p)
        }
        Err(first) => {
            let without = (!dir.is_empty()).then(|| {
                if let Some((_, v)) = s.values.iter_mut().find(|(n, _)| *n == "envdir") {
                    v.value = Some(String::new());
                }
                Plan::new(s, ctx.inherited.clone())
            });
            match without {
                Some(Ok(p)) => {
                    r.fail_msg(what, &crate::error::describe(&first));
                    Some(p)
                }
                other => {
                    let e = match other {
                        Some(Err(e)) => e,
                        _ => first,
                    };
                    r.group(group);
                    r.fail_msg("plan", &crate::error::describe(&e));
                    None
                }
            }
        }
    };
    r.group(group);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_fix_table() {
        let cases = [
            ("a (b)", ("a", "b")),
            ("a (b (c))", ("a", "b (c)")),
            ("a", ("a", "")),
            ("f(x)", ("f(x)", "")),
            ("a (b) c", ("a (b) c", "")),
        ];
        for (input, (m, f)) in cases {
            assert_eq!(split_fix(input), (m.to_string(), f.to_string()), "{input}");
        }
    }

    #[test]
    fn line_format() {
        let i = Item {
            group: 1,
            status: Status::Fail,
            check: "run file".into(),
            message: "x".into(),
            fix: "y".into(),
        };
        assert_eq!(i.line(), "FAIL run file: x (y)");
        let i = Item {
            status: Status::Ok,
            message: String::new(),
            fix: String::new(),
            ..i
        };
        assert_eq!(i.line(), "ok   run file");
    }
}
