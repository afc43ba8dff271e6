//! `--check`: say why a service would not start, before supervise restarts
//! it every second.
//!
//! The settings are resolved once, by [`crate::resolve`], exactly as the
//! launch resolves them: every problem found there is a FAIL line here,
//! with the launch's very message, position and fix. Unlike the launch,
//! which stops at the first problem, the check goes on: resolve gives each
//! bad setting a harmless stand-in, so one bad account does not hide a
//! limit that is too low. The modules below only probe the system (files,
//! owners, programs, memory, network); none of them parses a setting.
//!
//! Nothing on disk is changed (the envdir is compared, never written), and
//! the only children are the loader probes of the memory check, each waited
//! for (and killed after a timeout).
//!
//! One file per group of probes:
//! - [`files`]: 1 run file and config files as files, the envdir's place;
//! - [`ownership`]: 2 who can change what runs as root;
//! - [`programs`]: 3 accounts, 4 programs;
//! - [`memory`]: 5 the chain loads under the planned limits;
//! - [`rules`]: 6 the tcprules cdb;
//! - [`network`]: 7 port and address, `--bind`;
//! - [`server`]: 8 Courier variables that cannot apply, 9 tcpserver traps;
//! - [`maildir`]: 10 the Maildir of a preauthenticated or absolute path;
//! - [`service`]: 11 authdaemond, TLS certificate and couriertls, START=NO.
//! - [`authdaemond`]: everything of `service=authdaemond` (no front end).

mod authdaemond;
mod files;
mod listeners;
mod maildir;
mod memory;
mod network;
mod ownership;
mod programs;
mod rules;
mod server;
mod service;

use crate::config::Assignment;
use crate::error::{Exit, Position, Problem, Subject};
use crate::plan::Plan;
use crate::resolve::{Input, Resolved};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
    Info,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Info => "info",
        }
    }
}

/// One line of the report: a status and a [`Problem`]'s fields (subject,
/// position, message, fix), rendered as the fatal line renders them.
#[derive(Clone, Debug)]
pub struct Item {
    /// The group of checks; lines are printed in this order.
    group: u8,
    pub status: Status,
    pub problem: Problem,
}

impl Item {
    /// `ok   WHAT`, `warn WHAT: problem (fix)`, `FAIL WHAT: problem (fix)`.
    pub fn line(&self) -> String {
        let word = match self.status {
            Status::Fail => "FAIL",
            s => s.word(),
        };
        let mut l = format!("{word:<4} {}", self.problem.subject);
        let text = self.problem.text();
        if !text.is_empty() {
            l.push_str(": ");
            l.push_str(&text);
        }
        // One line whatever a probe quoted (src/shown.rs).
        crate::shown::line(&l)
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

    fn push_problem(&mut self, status: Status, problem: Problem) {
        self.items.push(Item {
            group: self.group,
            status,
            problem,
        });
    }

    fn push(&mut self, status: Status, check: impl Into<Subject>, message: String, fix: String) {
        let p = Problem::new(
            Exit::CheckFailed,
            check.into(),
            Position::Nowhere,
            message,
            fix,
        );
        self.push_problem(status, p);
    }

    fn ok(&mut self, check: impl Into<Subject>) {
        self.push(Status::Ok, check, String::new(), String::new());
    }

    fn info(&mut self, check: impl Into<Subject>, message: impl Into<String>) {
        self.push(Status::Info, check, message.into(), String::new());
    }

    fn warn(
        &mut self,
        check: impl Into<Subject>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Warn, check, message.into(), fix.into());
    }

    fn fail(
        &mut self,
        check: impl Into<Subject>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.push(Status::Fail, check, message.into(), fix.into());
    }

    /// A FAIL from an error (a failed system call, a plan that cannot be
    /// computed): its message is the error chain.
    fn fail_error(&mut self, check: Subject, e: &anyhow::Error) {
        self.push_problem(Status::Fail, Problem::from_error(check, e));
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

use crate::error::strerror as errstr;

/// Who a program runs as.
#[derive(Clone, Debug)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// Everything the probes share: the resolved settings, the identity at
/// exec and, once computed, the plan.
pub struct Ctx {
    pub r: Resolved,
    /// Identity at exec (setuidgid's account, or courier-run's own).
    pub exec_id: Identity,
    pub euid: u32,
    pub plan: Option<Plan>,
    pub bind: bool,
}

impl Ctx {
    /// A config variable's final value.
    pub fn var(&self, name: &str) -> Option<&Assignment> {
        self.r.var(name)
    }

    /// The value of `name` in the program's environment: the plan's, or
    /// (before the plan) the config's or the kept inherited one.
    pub fn env(&self, name: &str) -> Option<Vec<u8>> {
        match &self.plan {
            Some(p) => p.env_get(name).map(<[u8]>::to_vec),
            None => self.r.env_value(name),
        }
    }

    /// Was a problem about `subject` found by resolve?
    pub fn reported(&self, subject: &Subject) -> bool {
        self.r.problems.iter().any(|p| p.subject == *subject)
    }
}

/// Run every check; the report is complete whatever fails.
pub fn run(input: &Input, bind: bool) -> Report {
    let mut rep = Report::default();
    let loaded = crate::resolve::load(input);
    if loaded.0.authdaemond {
        authdaemond::check(crate::authdaemond::resolve(input, loaded), &mut rep);
        return rep;
    }
    let resolved = crate::resolve::resolve_loaded(input, loaded);
    let euid = nix::unistd::geteuid().as_raw();
    let (uid, gid, groups) = crate::plan::identity(&resolved);
    let exec_id = Identity { uid, gid, groups };
    // The problems resolve found: the launch's own messages.
    for p in &resolved.problems {
        rep.group(group_of(&p.subject));
        rep.push_problem(Status::Fail, p.clone());
    }
    let mut ctx = Ctx {
        r: resolved,
        exec_id,
        euid,
        plan: None,
        bind,
    };

    rep.group(1);
    files::check(&ctx, &mut rep);
    rep.group(3);
    programs::accounts(&ctx, &mut rep);
    rep.group(9);
    let flags = server::traps(&ctx, &mut rep);
    rep.group(4);
    let mut chain = programs::programs(&ctx, &flags, &mut rep);
    rep.group(11);
    service::check(&ctx, &mut chain, &mut rep);
    rep.group(7);
    network::check(&ctx, &mut rep);

    rep.group(1);
    ctx.plan = plan(&ctx, &mut rep);

    rep.group(2);
    ownership::check(&ctx, &chain, &mut rep);
    rep.group(5);
    memory::check(&ctx, &chain, &mut rep);
    rep.group(6);
    rules::check(&ctx, &flags, &mut rep);
    rep.group(8);
    server::courier(&ctx, &flags, &mut rep);
    rep.group(10);
    maildir::check(&ctx, &mut rep);
    rep
}

/// The group a resolve problem is listed in.
fn group_of(subject: &Subject) -> u8 {
    match subject {
        Subject::Account(_) | Subject::Setuidgid(_) => 3,
        Subject::ServerProgram(_) | Subject::Auth(_) => 4,
        _ => 1,
    }
}

/// The plan, composed from the resolved values (stand-ins included). It
/// also probes the envdir (is it already right? may it be written?): when
/// the plan fails and succeeds without the envdir, the envdir is the
/// problem. Any other failure is a problem no other check saw.
fn plan(ctx: &Ctx, r: &mut Report) -> Option<Plan> {
    let what = ctx
        .r
        .envdir
        .as_ref()
        .map(|d| Subject::Envdir(crate::shown::path(d)));
    match Plan::compose(ctx.r.clone()) {
        Ok(p) => {
            match (&p.envdir, &what) {
                (Some(e), Some(w)) if e.unchanged => r.ok(format!("{w} (up to date)")),
                (Some(_), Some(w)) if !ctx.reported(w) => r.ok(format!("{w} (would be written)")),
                _ => {}
            }
            r.ok(format!("kept plan: {}", crate::keep::verdict(&p)));
            Some(p)
        }
        Err(first) => {
            let mut without = ctx.r.clone();
            without.envdir = None;
            match (what, Plan::compose(without)) {
                (Some(w), Ok(p)) => {
                    r.fail_error(w, &first);
                    Some(p)
                }
                _ => {
                    r.fail_error(Subject::Plan, &first);
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format() {
        let p = Problem::bad(Subject::RunFile, Position::At("./run:1:1".into()), "x", "y");
        let i = Item {
            group: 1,
            status: Status::Fail,
            problem: p,
        };
        assert_eq!(i.line(), "FAIL run file: ./run:1:1: x (y)");
        let i = Item {
            status: Status::Ok,
            problem: Problem::new(Exit::Ok, Subject::RunFile, Position::Nowhere, "", ""),
            ..i
        };
        assert_eq!(i.line(), "ok   run file");
    }
}
