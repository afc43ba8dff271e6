//! courier-run: the `run` script of a supervised Courier-IMAP service, as
//! one exec-chain program. One module per concern; dependencies run one
//! way, top to bottom:
//!
//! ```text
//! main -> cli                 parse, dispatch, print the one fatal line, exit code
//!          |-> report         print a Plan (text, json, sh) or a check report
//!          |-> check/         preflight probes of the system; reads Resolved + Plan
//!          |-> keep           a launch's Plan kept for the next start while its inputs hold
//!          |-> launch         apply a Plan: envdir, umask, limits, ids, execve
//!          `-> conf2env       config files -> envdir, and exit
//!                 |
//!               plan          compose a Resolved into the Plan (no changes, reads only)
//!                 |
//!               resolve       run file + --set + config -> typed values + every problem
//!                 |
//!   settings · config (sh subset) · environ · envdir · limits · account · caps · error
//! ```
//!
//! Two programs are built from it (`programs` says why): the launcher
//! (src/launcher.rs, `courier-run`), which starts from a kept plan
//! (`keep` -> `launch`) and otherwise execs the main program (src/main.rs,
//! `courier-run-main`), the diagram's `main`. Both are C's main (no std
//! runtime start-up, `start`) and install `arena`, the allocator (blocks
//! bumped; the main program's large ones from malloc): all for the
//! launch's fixed cost (bench/README.md).
//!
//! Nothing below `cli` imports `cli`; `check` never parses a setting (it
//! reads `resolve`'s values); a problem is data (`error::Problem`) that
//! the fatal line and a `--check` line both render.

pub mod access;
pub mod account;
pub mod arena;
pub mod authdaemon;
pub mod authdaemond;
pub mod bytes;
pub mod caps;
pub mod cdb;
pub mod check;
pub mod cli;
pub mod conf2env;
pub mod config;
pub mod couriertcpd;
pub mod dirlist;
pub mod docs;
pub mod envdir;
pub mod environ;
pub mod error;
pub mod finding;
pub mod frontend;
pub mod hash;
pub mod init;
pub mod keep;
pub mod launch;
pub mod limits;
pub mod makedat;
pub mod migrate;
pub mod plan;
pub mod probe;
pub mod programs;
pub mod rebuild;
pub mod report;
pub mod resolve;
pub mod restart;
pub mod safefile;
pub mod service;
pub mod settings;
pub mod shown;
/// The tests' one skip rule, shared with tests/common.
#[cfg(test)]
#[path = "../tests/common/skip.rs"]
pub(crate) mod skip;
pub mod stack;
pub mod start;
pub mod status;
pub mod supervise;
pub mod syslog;
pub mod systemd;
pub mod tls;
pub mod tlscache;
