//! courier-run: the `run` script of a supervised Courier-IMAP service, as
//! one exec-chain program. One module per concern; `main.rs` only parses
//! arguments and maps errors to exit codes.

pub mod account;
pub mod cli;
pub mod config;
pub mod envdir;
pub mod error;
pub mod launch;
pub mod limits;
