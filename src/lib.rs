//! courier-run: the `run` script of a supervised Courier-IMAP service, as
//! one exec-chain program. One module per concern; `main.rs` only calls
//! `cli::main`.
//!
//! config -> settings -> plan (side-effect free) -> report (--dry-run) or
//! launch (envdir, limits, identity, execve).

pub mod access;
pub mod account;
pub mod caps;
pub mod cdb;
pub mod check;
pub mod cli;
pub mod conf2env;
pub mod config;
pub mod docs;
pub mod envdir;
pub mod error;
pub mod frontend;
pub mod launch;
pub mod limits;
pub mod plan;
pub mod report;
pub mod settings;
