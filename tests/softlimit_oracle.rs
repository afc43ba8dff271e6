//! Oracle: a program started under our `parse_softlimit` + `plan` + `apply`
//! sees byte-identical `/proc/self/limits` to one started under the real
//! daemontools `softlimit` (and dash's `ulimit -v` for `ulimit_v`).
//!
//! The cases are the one table in tests/common/softlimit.rs, shared with
//! the launch layer (tests/launcher/softlimit.rs).
//!
//! Every case runs two children from the same starting point. In `pre_exec`
//! each child first lowers some limits (the `pre` column), so that `=` and
//! the clamping of values above the hard limit are really exercised. Then
//! - the real side execs `[sh -c 'ulimit -v N; exec'] softlimit FLAGS cat
//!   /proc/self/limits`;
//! - our side computes the plan in the child from `current()` (after the
//!   pre-step, as a launch would), applies it, and execs `cat
//!   /proc/self/limits`.
//!
//! Allocating in `pre_exec` is not async-signal-safe in general; it is fine
//! here because glibc's fork() resets malloc's locks in the child.

mod common;

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use common::softlimit::{CASES, pre_map};
use common::{Ran, have_file, run_cmd, try_run};
use courier_run::error::{Exit, exit_code};
use courier_run::limits::{self, Limit, Resource, SoftLimit};

const SOFTLIMIT: &str = "/usr/bin/softlimit";

fn have_softlimit() -> bool {
    have_file(SOFTLIMIT, "daemontools: the oracle")
}

fn with_pre(cmd: &mut Command, pre: BTreeMap<Resource, Limit>) -> &mut Command {
    // SAFETY: see the module comment about allocating after fork.
    unsafe { cmd.pre_exec(move || limits::apply(&pre).map_err(io::Error::other)) }
}

/// `[sh -c 'ulimit -v N; exec'] softlimit FLAGS cat /proc/self/limits`.
fn real(c: &common::softlimit::SoftCase, pre: BTreeMap<Resource, Limit>) -> Ran {
    let (program, words) = c.real_argv(SOFTLIMIT.as_ref());
    let mut cmd = Command::new(program);
    cmd.args(words).args(["cat", "/proc/self/limits"]);
    with_pre(&mut cmd, pre);
    run_cmd(cmd)
}

fn ours(
    settings: Vec<SoftLimit>,
    pre: BTreeMap<Resource, Limit>,
    ulimit_v: Option<Option<u64>>,
) -> io::Result<Ran> {
    let mut cmd = Command::new("cat");
    cmd.arg("/proc/self/limits");
    // SAFETY: see the module comment about allocating after fork.
    unsafe {
        cmd.pre_exec(move || {
            let run = || {
                limits::apply(&pre)?;
                let planned = limits::plan(&limits::current()?, ulimit_v, &settings)?;
                limits::apply(&planned)
            };
            run().map_err(io::Error::other)
        })
    };
    // Err: the pre_exec step failed (its errno crossed exec's pipe).
    try_run(cmd, Stdio::null(), common::TIMEOUT)
}

#[test]
fn limits_match_real_softlimit() {
    if !have_softlimit() {
        return;
    }
    let mut compared = 0;
    for c in CASES {
        let case = c.name();
        let settings = limits::parse_softlimit(c.flags).unwrap();
        let uv = c.ulimit_v.map(|v| limits::parse_ulimit_v(v).unwrap());
        let start = pre_map(c.pre());

        let want = real(c, start.clone());
        match ours(settings.clone(), start.clone(), uv) {
            Ok(got) => {
                assert_eq!(
                    want.exit(),
                    0,
                    "{case}: the real side failed ({}) but ours ran",
                    want.stderr_str()
                );
                assert_eq!(got.exit(), 0, "{case}: cat failed under our limits");
                assert_eq!(
                    got.stdout_str(),
                    want.stdout_str(),
                    "{case}: /proc/self/limits differs (left: ours, right: softlimit)"
                );
                compared += 1;
            }
            Err(err) => {
                // The child lost our message (only an errno crosses exec's
                // pipe); the same plan from the same start, here, has it.
                let why = match limits::plan(&start, uv, &settings) {
                    Err(e) => format!("{e:#}"),
                    Ok(_) => format!("the plan succeeds here, the child failed: {err}"),
                };
                assert_ne!(
                    want.exit(),
                    0,
                    "{case}: ours failed ({why}) but the real side ran"
                );
                // softlimit itself never fails on a valid option: only a
                // ulimit_v that raises the hard limit may.
                assert!(c.ulimit_v.is_some() && c.lower, "{case}: {why}");
                assert!(why.contains("only root can raise it"), "{case}: {why}");
            }
        }
    }
    // Only the cases that raise a hard limit may be refused (without
    // CAP_SYS_RESOURCE): the rest must have been compared.
    let may_refuse = CASES
        .iter()
        .filter(|c| c.ulimit_v.is_some() && c.lower)
        .count();
    assert!(
        compared >= CASES.len() - may_refuse,
        "only {compared} of {} cases compared their output",
        CASES.len()
    );
}

/// (options, whether the real softlimit refuses them too with 100). We are
/// stricter than softlimit where it would silently do something else.
const BAD: &[(&str, bool)] = &[
    ("-m 5M", true),
    ("-m5M", true),
    ("-o abc", true),
    ("-c +5", true),
    ("-c ==", true),
    ("-m", true),
    ("-x 3", true),
    ("-M 3", true),
    ("-c -5", true),
    // softlimit would take these words as the program to run.
    ("5000000", false),
    ("-m 1 tcpserver", false),
    ("-m 1 -- tcpserver", false),
    // softlimit's scan_ulong wraps this to 0 and goes on.
    ("-c 18446744073709551616", false),
];

#[test]
fn bad_options_exit_100() {
    let check_real = have_softlimit();
    for &(opts, softlimit_refuses) in BAD {
        let err = limits::parse_softlimit(opts).expect_err(opts);
        assert_eq!(exit_code(&err), Exit::Usage, "{opts:?}: {err:#}");
        assert!(
            format!("{err:#}").starts_with(&format!("softlimit {opts:?}: ")),
            "{err:#}"
        );
        if check_real && softlimit_refuses {
            let mut cmd = Command::new(SOFTLIMIT);
            cmd.args(opts.split_ascii_whitespace()).arg("true");
            assert_eq!(run_cmd(cmd).exit(), 100, "real softlimit on {opts:?}");
        }
    }
    for bad in ["", "abc", "128M", "18014398509481984"] {
        let err = limits::parse_ulimit_v(bad).expect_err(bad);
        assert_eq!(exit_code(&err), Exit::Usage, "{bad:?}: {err:#}");
    }
}
