//! Exit codes and the one error type that carries one.
//!
//! Errors travel as `anyhow::Error` with context added on the way up; the
//! exit code is decided once, in `main`, by looking for a [`Coded`] anywhere
//! in the chain. Anything without one is a failed system call: 111, as in
//! daemontools.

use std::fmt;

/// Exit codes, daemontools style (see README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// `--check` found a problem.
    CheckFailed = 1,
    /// Bad usage or bad input: syntax error, unknown setting, unknown account.
    Usage = 100,
    /// A system call failed.
    System = 111,
    /// exec found the program but could not run it.
    NoExec = 126,
    /// exec did not find the program.
    NotFound = 127,
}

/// An error that decides the exit code. The message is the whole text after
/// `courier-run: fatal: `.
#[derive(Debug)]
pub struct Coded {
    pub code: Exit,
    pub msg: String,
}

impl fmt::Display for Coded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Coded {}

/// Bad input (exit 100).
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    coded(Exit::Usage, msg)
}

pub fn coded(code: Exit, msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Coded {
        code,
        msg: msg.into(),
    })
}

/// The exit code of a command, its error printed as the fatal line
/// (`courier-run: fatal: ...`): the main program's and the launcher's.
pub fn fatal(r: anyhow::Result<i32>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: it panics when stderr cannot be written (a
            // full disk, /dev/full), and a panic aborts (134). Unsaid, the
            // error is still a failed system call: 111. One line whatever
            // the error quotes (src/shown.rs).
            use std::io::Write;
            let msg = crate::shown::line(&crate::error::describe(&e));
            let line = format!("courier-run: fatal: {msg}\n");
            match std::io::stderr().lock().write_all(line.as_bytes()) {
                Ok(()) => exit_code(&e) as i32,
                Err(_) => Exit::System as i32,
            }
        }
    }
}

/// The exit code an error maps to: the first [`Coded`] or [`Problem`] in
/// its chain, else 111.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| match e.downcast_ref::<Coded>() {
            Some(c) => Some(c.code),
            None => e.downcast_ref::<Problem>().map(|p| p.code),
        })
        .unwrap_or(Exit::System)
}

/// A system error as strerror(3) says it ("No such file or directory"),
/// without std's "(os error 2)" suffix: daemontools' wording.
pub fn strerror(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}

/// The error chain as one line, `outer: inner: cause`. A system error reads
/// as strerror says it ("No such file or directory"), without std's
/// "(os error 2)" suffix, as daemontools prints it.
pub fn describe(e: &anyhow::Error) -> String {
    e.chain()
        .map(|c| match c.downcast_ref::<std::io::Error>() {
            Some(io) => strerror(io),
            None => match c.downcast_ref::<nix::errno::Errno>() {
                Some(n) => n.desc().to_string(),
                None => c.to_string(),
            },
        })
        .collect::<Vec<_>>()
        .join(": ")
}

/// Where a problem is: the prefix or suffix its message gets, as the
/// daemontools-style fatal line and a `--check` line both print it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Position {
    /// Nowhere in particular (a system call, the whole run).
    Nowhere,
    /// `file:line:col` of a run file or config file, printed before.
    At(String),
    /// `--set NAME=VALUE`, printed as `--set ...`.
    CommandLine,
    /// A value that came from elsewhere, printed after: `(default)`,
    /// `(inherited)`, `(envuidgid)`.
    From(&'static str),
}

/// What a problem (or a `--check` line) is about: `--check`'s first
/// column and the JSON report's "check", as [`fmt::Display`] prints it.
/// Typed, so that code asks "is this about the run file?" by variant, never
/// by comparing text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// `run file`: reading the run file, or a line in it.
    RunFile,
    /// `settings`: a setting's value (the position says whose).
    Settings,
    /// `config`: the config as a whole (a refusal of the config reader, a
    /// Courier variable such as TCPDOPTS or MAXPERIP).
    Config,
    /// `config FILE`: one config file (shown as [`crate::shown::path`]).
    ConfigFile(String),
    /// `server`: the `server` setting's words.
    Server,
    /// `rules`: the front end's rules.
    Rules,
    /// `access`: Courier's access list.
    Access,
    /// `auth MODULE`: an auth module of the chain.
    Auth(String),
    /// `program PATH (server)`: the front end's program, as resolve looks
    /// it up (the probes' lines about the other programs are [`Subject::Line`]s).
    ServerProgram(String),
    /// `account NAME`: envuidgid's account.
    Account(String),
    /// `setuidgid NAME`: the account switched to.
    Setuidgid(String),
    /// `envdir PATH`.
    Envdir(String),
    /// `TLS_CACHEFILE`: the rc's reset of the TLS session cache.
    TlsCachefile,
    /// `authdaemond`: its socket, probed for a mail service.
    Authdaemond,
    /// `socket PATH (authdaemonvar: FROM)`: the socket of
    /// `service=authdaemond`, and what gave its path.
    Socket(String),
    /// `plan`: composing the plan failed.
    Plan,
    /// Any other `--check` line's first column: said, never asked about.
    Line(String),
}

impl Subject {
    /// The subject of a config file's problems (`config FILE`).
    pub fn config_file(file: &str) -> Subject {
        Subject::ConfigFile(crate::shown::path(file))
    }

    /// The subject of an account setting's problems: `account NAME` or
    /// `setuidgid NAME` by the setting.
    pub fn account(setting: crate::settings::Name, name: String) -> Subject {
        match setting {
            crate::settings::Name::Setuidgid => Subject::Setuidgid(name),
            _ => Subject::Account(name),
        }
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::RunFile => f.write_str("run file"),
            Subject::Settings => f.write_str("settings"),
            Subject::Config => f.write_str("config"),
            Subject::ConfigFile(p) => write!(f, "config {p}"),
            Subject::Server => f.write_str("server"),
            Subject::Rules => f.write_str("rules"),
            Subject::Access => f.write_str("access"),
            Subject::Auth(m) => write!(f, "auth {m}"),
            Subject::ServerProgram(p) => write!(f, "program {p} (server)"),
            Subject::Account(a) => write!(f, "account {a}"),
            Subject::Setuidgid(a) => write!(f, "setuidgid {a}"),
            Subject::Envdir(p) => write!(f, "envdir {p}"),
            Subject::TlsCachefile => f.write_str("TLS_CACHEFILE"),
            Subject::Authdaemond => f.write_str("authdaemond"),
            Subject::Socket(s) => write!(f, "socket {s}"),
            Subject::Plan => f.write_str("plan"),
            Subject::Line(l) => f.write_str(l),
        }
    }
}

/// A `--check` line's own words (the probes' lines no code asks about).
impl From<String> for Subject {
    fn from(l: String) -> Subject {
        Subject::Line(l)
    }
}

impl From<&str> for Subject {
    fn from(l: &str) -> Subject {
        Subject::Line(l.to_string())
    }
}

/// A problem found while resolving the settings or probing the system:
/// data, so that the launch's fatal line and a `--check` line are two
/// renderings of the same fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The exit code a launch stopped by it has.
    pub code: Exit,
    /// What it is about: `--check`'s first column ("settings", "config",
    /// "account courier", "program /usr/bin/imapd (imapd)").
    pub subject: Subject,
    pub position: Position,
    /// What is wrong.
    pub message: String,
    /// How to fix it; empty when there is nothing to say.
    pub fix: String,
}

impl Problem {
    pub fn new(
        code: Exit,
        subject: Subject,
        position: Position,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem {
            code,
            subject,
            position,
            message: message.into(),
            fix: fix.into(),
        }
    }

    /// Bad input (exit 100).
    pub fn bad(
        subject: Subject,
        position: Position,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Problem {
        Problem::new(Exit::Usage, subject, position, message, fix)
    }

    /// A problem carried by an error (a config syntax error, a failed
    /// system call). An error that is a Problem itself (the config reader
    /// raises its refusals as Problems, with their position as a field)
    /// keeps its fields; otherwise the message is the error chain and the
    /// code the error's.
    pub fn from_error(subject: Subject, e: &anyhow::Error) -> Problem {
        // Only when nothing was added around it: context is part of the text.
        if let Some(p) = e
            .downcast_ref::<Problem>()
            .filter(|_| e.chain().count() == 1)
        {
            return Problem {
                subject,
                ..p.clone()
            };
        }
        Problem::new(exit_code(e), subject, Position::Nowhere, describe(e), "")
    }

    /// Message and fix, without the position: `what is wrong (fix)`.
    pub fn body(&self) -> String {
        if self.fix.is_empty() {
            self.message.clone()
        } else {
            format!("{} ({})", self.message, self.fix)
        }
    }

    /// The whole text: `POSITION: what is wrong (fix)`, what follows
    /// `courier-run: fatal: ` and `FAIL SUBJECT: `.
    pub fn text(&self) -> String {
        let body = self.body();
        match &self.position {
            Position::Nowhere => body,
            Position::At(p) => format!("{p}: {body}"),
            Position::CommandLine => format!("--set {body}"),
            Position::From(what) => format!("{body} ({what})"),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::error::Error for Problem {}

/// Text safe to put in a log line: one line, control bytes escaped (the
/// crate's one escaping, [`crate::shown::line`]).
pub use crate::shown::line as printable;

#[cfg(test)]
mod tests {
    use super::*;

    /// Each subject prints `--check`'s first column as the text subjects
    /// printed before they were typed (the JSON "check" is the same text).
    #[test]
    fn subjects_print_their_column() {
        let cases = [
            (Subject::RunFile, "run file"),
            (Subject::Settings, "settings"),
            (Subject::Config, "config"),
            (
                Subject::config_file("/etc/courier/imapd"),
                "config /etc/courier/imapd",
            ),
            (Subject::Server, "server"),
            (Subject::Rules, "rules"),
            (Subject::Access, "access"),
            (Subject::Auth("authpwd".into()), "auth authpwd"),
            (
                Subject::ServerProgram("tcpserver".into()),
                "program tcpserver (server)",
            ),
            (
                Subject::account(crate::settings::Name::Account, "courier".into()),
                "account courier",
            ),
            (
                Subject::account(crate::settings::Name::Setuidgid, "x".into()),
                "setuidgid x",
            ),
            (Subject::Envdir("./env".into()), "envdir ./env"),
            (Subject::TlsCachefile, "TLS_CACHEFILE"),
            (Subject::Authdaemond, "authdaemond"),
            (
                Subject::Socket("/s (authdaemonvar: rc:3:1)".into()),
                "socket /s (authdaemonvar: rc:3:1)",
            ),
            (Subject::Plan, "plan"),
            (Subject::from("port 143"), "port 143"),
        ];
        for (s, text) in cases {
            assert_eq!(s.to_string(), text);
        }
        // A line's words are not the typed subject they spell.
        assert_ne!(Subject::from("run file"), Subject::RunFile);
    }
}
