//! Account lookup for `account` (envuidgid) and `setuidgid`.
//!
//! nix's `User::from_name` wraps getpwnam_r, so NSS (LDAP, files) answers
//! exactly as it does for daemontools' envuidgid and setuidgid.

use anyhow::Context;
use nix::unistd::User;

use crate::error::bad_input;

/// A passwd entry, reduced to what the launch needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Look `name` up; an unknown account is bad input (exit 100). `what`
/// names the setting in the message ("account", "setuidgid").
pub fn lookup(name: &str, what: &str) -> anyhow::Result<Account> {
    let shown = crate::shown::value(name);
    match User::from_name(name).with_context(|| format!("unable to look up account {shown}"))? {
        Some(u) => Ok(Account {
            name: name.to_string(),
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
        }),
        None => Err(bad_input(format!(
            "{what}: unknown account {shown} (create it, or set {what} to an existing account; {what}= for none)"
        ))),
    }
}
