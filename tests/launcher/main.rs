//! The launcher, through the binary.
//!
//! `server` is pointed at a recorder (tests/recorder/recorder.rs, built with
//! plain `rustc` on first use) that writes down what it was exec'd with:
//! pid, argv, the environ block, /proc/self/limits, /proc/self/status
//! (uid, gid, groups, umask, SigIgn), where fds 1 and 2 point. Then:
//!
//! - dry-run truth: the launch's recorded values equal `--dry-run --format
//!   json`, field by field, for both layouts and a table of settings;
//! - no fork: the recorder's pid is the pid of the courier-run we spawned;
//! - oracles: the environment equals real daemontools' `env -i ...
//!   envuidgid ACCOUNT envdir DIR env -0`; the limits equal those under the
//!   real `softlimit FLAGS`; the `--format sh` script run by /bin/sh gives
//!   the recorder the same argv, environment and limits;
//! - bad inputs: the contract's exit code and a message naming the
//!   file:line:col or the setting, the same from `--dry-run` and among
//!   `--check`'s FAIL lines, the existing envdir untouched and nothing
//!   exec'd (root without CAP_SETUID/CAP_SETGID included);
//! - a name twice in the environment reads as dash reads it;
//! - `--dry-run` changes nothing.
//!
//! Every child runs in a fresh directory under the system temp dir (mode
//! 0755, so that `setuidgid nobody` can still exec the recorder), with an
//! environment of our own (nothing of the harness leaks in), a umask of 027
//! (so that "umask unchanged" is visible) and, where the case says, lowered
//! limits. Children are run by the one harness (tests/common): a timeout,
//! stdin from /dev/null, and its skip policy (daemontools, dash, setpriv or
//! root missing: skipped with the reason printed, a failure under CI=true).
//! rustc must be there to build the recorder.

// The one harness shared by every test binary.
#[path = "../common/mod.rs"]
mod common;

// The launcher's own layer on it: scratch layout, the recorder and the
// copy of courier-run built for the run, running courier-run under
// controlled conditions, envdir state.
mod harness;

// What the recorder wrote, parsed.
mod record;

// The JSON plan read back; field-by-field comparison (`Diffs`).
mod compare;

// The table of settings, and setting a case up.
mod cases;

// Dry-run truth, the daemontools env and sh-script oracles, no fork.
mod truth;

// Limits against the real softlimit (the table in common/softlimit.rs).
mod softlimit;

// Bad inputs: exit codes, messages, --dry-run and --check agree, envdirs
// untouched, nothing exec'd.
mod bad_inputs;

// A name twice in the inherited environment.
mod inherited;

// --dry-run changes nothing.
mod dry_run;
