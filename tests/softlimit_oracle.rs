//! Oracle: a program started under our `parse_softlimit` + `plan` + `apply`
//! sees byte-identical `/proc/self/limits` to one started under the real
//! daemontools `softlimit` (and dash's `ulimit -v` for `ulimit_v`).
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

use std::collections::BTreeMap;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use courier_run::error::{Exit, exit_code};
use courier_run::limits::{self, Limit, Resource, Resource::*, Setting};

const SOFTLIMIT: &str = "/usr/bin/softlimit";

/// Limits lowered before either side runs: (resource, soft, hard). Values
/// are capped by the current hard limit, so no case needs privileges.
type Pre = &'static [(Resource, u64, u64)];

const NONE: Pre = &[];
/// Low hard limits, soft limits lower still, for `=` and clamping.
const LOW: Pre = &[
    (As, 2_000_000_000, 3_000_000_000),
    (Core, 0, 4_096_000),
    (Cpu, 100, 200),
    (Data, 1_000_000_000, 2_000_000_000),
    (Fsize, 1_000_000_000, 2_000_000_000),
    (Memlock, 65_536, 131_072),
    (Nofile, 256, 1024),
    (Nproc, 500, 1000),
    (Rss, 1_000_000_000, 2_000_000_000),
    (Stack, 8_388_608, 16_777_216),
];

/// (softlimit options, pre-step, ulimit_v). Odd values, so that no case
/// happens to equal a distribution's default.
const CASES: &[(&str, Pre, Option<&str>)] = &[
    ("", NONE, None),
    // Each letter alone.
    ("-a 3000000001", NONE, None),
    ("-c 1234567", NONE, None),
    ("-d 500000001", NONE, None),
    ("-f 1000001", NONE, None),
    ("-l 65535", NONE, None),
    ("-m 50000001", NONE, None),
    ("-o 101", NONE, None),
    ("-p 999", NONE, None),
    ("-r 100000001", NONE, None),
    ("-s 1000001", NONE, None),
    ("-t 5", NONE, None),
    // "=" raises the soft limit to the hard one.
    ("-c =", LOW, None),
    ("-o =", LOW, None),
    ("-a = -d = -f = -l = -p = -r = -s = -t =", LOW, None),
    // Above the hard limit: silently clamped.
    ("-o 100000", LOW, None),
    ("-a 10000000000", LOW, None),
    ("-m 10000000000", LOW, None),
    ("-c 18446744073709551615", LOW, None),
    // 2^64-1 is RLIM_INFINITY.
    ("-c 18446744073709551615", NONE, None),
    // Combinations, glued values, order (the later -d wins over -m's DATA).
    ("-m 50000000 -o 100 -t 5", NONE, None),
    ("-m5000000000 -o= -c=", LOW, None),
    ("-m 100000000 -d 200000001 -s =", LOW, None),
    ("-d 200000001 -m 100000000", LOW, None),
    // ulimit_v: RLIMIT_AS soft and hard, before softlimit, which it clamps.
    ("", NONE, Some("131072")),
    ("", LOW, Some("131072")),
    ("", NONE, Some("unlimited")),
    ("", NONE, Some("18014398509481983")),
    ("-a 50000001", NONE, Some("131072")),
    ("-a 999999999999", NONE, Some("131072")),
    ("-a =", LOW, Some("131072")),
    ("-m 50000001 -o =", LOW, Some("1000000")),
    // Raising the hard limit: needs CAP_SYS_RESOURCE (which root in a
    // container may lack); both sides must then fail alike.
    ("", LOW, Some("unlimited")),
    ("", LOW, Some("4000000")),
];

/// False (after saying why) when the real softlimit is not there; on CI
/// that is a failure, not a skip.
fn have_softlimit() -> bool {
    if Path::new(SOFTLIMIT).exists() {
        return true;
    }
    let why = format!("{SOFTLIMIT} not found (install daemontools): oracle not run");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{why}");
    }
    eprintln!("skipped: {why}");
    false
}

/// The pre-step as a full map, capped by the current hard limits.
fn pre_map(pre: Pre) -> BTreeMap<Resource, Limit> {
    let mut map = limits::current().unwrap();
    for &(r, soft, hard) in pre {
        let cap = map[&r].hard.unwrap_or(u64::MAX);
        let hard = hard.min(cap);
        map.insert(
            r,
            Limit {
                soft: Some(soft.min(hard)),
                hard: Some(hard),
            },
        );
    }
    map
}

fn with_pre(cmd: &mut Command, pre: BTreeMap<Resource, Limit>) -> &mut Command {
    // SAFETY: see the module comment about allocating after fork.
    unsafe { cmd.pre_exec(move || limits::apply(&pre).map_err(io::Error::other)) }
}

fn real(words: &[&str], pre: BTreeMap<Resource, Limit>, ulimit_v: Option<&str>) -> Output {
    let mut cmd = match ulimit_v {
        None => Command::new(SOFTLIMIT),
        Some(kib) => {
            let mut sh = Command::new("/bin/sh");
            let script = format!("ulimit -v \"$1\" || exit 111; shift; exec {SOFTLIMIT} \"$@\"");
            sh.args(["-c", &script, "sh", kib]);
            sh
        }
    };
    cmd.args(words).args(["cat", "/proc/self/limits"]);
    with_pre(&mut cmd, pre)
        .output()
        .expect("spawn the real side")
}

fn ours(
    settings: Vec<Setting>,
    pre: BTreeMap<Resource, Limit>,
    ulimit_v: Option<Option<u64>>,
) -> io::Result<Output> {
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
    cmd.output()
}

#[test]
fn limits_match_real_softlimit() {
    if !have_softlimit() {
        return;
    }
    assert!(CASES.len() >= 16);
    let mut compared = 0;
    for &(opts, pre, ulimit_v) in CASES {
        let case = format!(
            "softlimit {opts:?}, pre-step {}, ulimit_v {ulimit_v:?}",
            pre.len()
        );
        let settings = limits::parse_softlimit(opts).unwrap();
        let uv = ulimit_v.map(|v| limits::parse_ulimit_v(v).unwrap());
        let words: Vec<&str> = opts.split_ascii_whitespace().collect();
        let start = pre_map(pre);

        let want = real(&words, start.clone(), ulimit_v);
        match ours(settings.clone(), start.clone(), uv) {
            Ok(got) => {
                assert!(
                    want.status.success(),
                    "{case}: the real side failed ({}) but ours ran",
                    String::from_utf8_lossy(&want.stderr)
                );
                assert!(got.status.success(), "{case}: cat failed under our limits");
                assert_eq!(
                    String::from_utf8_lossy(&got.stdout),
                    String::from_utf8_lossy(&want.stdout),
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
                assert!(
                    !want.status.success(),
                    "{case}: ours failed ({why}) but the real side ran"
                );
                // softlimit itself never fails on a valid option: only a
                // ulimit_v that raises the hard limit may.
                assert!(ulimit_v.is_some(), "{case}: {why}");
                assert!(why.contains("only root can raise it"), "{case}: {why}");
            }
        }
    }
    assert!(
        compared >= 16,
        "only {compared} cases compared their output"
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
            let status = Command::new(SOFTLIMIT)
                .args(opts.split_ascii_whitespace())
                .arg("true")
                .output()
                .unwrap()
                .status;
            assert_eq!(status.code(), Some(100), "real softlimit on {opts:?}");
        }
    }
    for bad in ["", "abc", "128M", "18014398509481984"] {
        let err = limits::parse_ulimit_v(bad).expect_err(bad);
        assert_eq!(exit_code(&err), Exit::Usage, "{bad:?}: {err:#}");
    }
}
