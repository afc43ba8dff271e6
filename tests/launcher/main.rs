//! The launcher, through the binary (issue 3's "Tests that must exist").
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
//!   file:line:col or the setting, the same from `--dry-run`, the existing
//!   envdir untouched and nothing exec'd;
//! - `--dry-run` changes nothing.
//!
//! Every child runs in a fresh directory under the system temp dir (mode
//! 0755, so that `setuidgid nobody` can still exec the recorder), with an
//! environment of our own (nothing of the harness leaks in), a umask of 027
//! (so that "umask unchanged" is visible) and, where the case says, lowered
//! limits. daemontools and rustc must be installed (CI's .ci/install and
//! toolchain have them); without them the tests fail, they do not skip.

// The harness: scratch dirs, the recorder, running courier-run, envdir state.
mod harness;

// What the recorder wrote, parsed.
mod record;

// The JSON plan read back; field-by-field comparison (`Diffs`).
mod compare;

// The table of settings, and setting a case up.
mod cases;

// Dry-run truth, the daemontools env and sh-script oracles, no fork.
mod truth;

// Limits against the real softlimit.
mod softlimit;

// Bad inputs: exit codes, messages, envdirs untouched, nothing exec'd.
mod bad_inputs;

// --dry-run changes nothing.
mod dry_run;
