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

/// The exit code an error maps to: the first [`Coded`] in its chain, else 111.
pub fn exit_code(err: &anyhow::Error) -> Exit {
    err.chain()
        .find_map(|e| e.downcast_ref::<Coded>().map(|c| c.code))
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
