//! Oracle: the limits courier-run sets equal those under the real
//! `softlimit` (and `ulimit -v`).

use std::path::Path;

use courier_run::limits::Resource::{self, *};

use crate::compare::{Diffs, json_limits};
use crate::harness::{Pre, Scratch, command, dry_json, launch, run_cmd, start_env, tool};

/// Low hard limits (soft lower still), applied in both children first, so
/// that `=` and clamping above the hard limit are exercised.
const LOW: &[(Resource, u64, u64)] = &[
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

/// (softlimit flags, lower first?, ulimit_v KiB). Values leave the recorder
/// room to load and write its file.
const SOFTLIMIT_CASES: &[(&str, bool, Option<&str>)] = &[
    ("-a 3000000001", false, None),
    ("-c 1234567", false, None),
    ("-d 500000001", false, None),
    ("-f 1000001", false, None),
    ("-l 65535", false, None),
    ("-m 500000001", false, None),
    ("-o 101", false, None),
    ("-p 999", false, None),
    ("-r 100000001", false, None),
    ("-s 1000001", false, None),
    ("-t 5", false, None),
    ("-c =", true, None),
    ("-o =", true, None),
    ("-a = -d = -f = -l = -p = -r = -s = -t =", true, None),
    ("-m =", true, None),
    ("-o 100000", true, None),
    ("-a 10000000000", true, None),
    ("-m 10000000000", true, None),
    ("-c 18446744073709551615", true, None),
    ("-c 18446744073709551615", false, None),
    ("-m 500000000 -o 100 -t 5", false, None),
    ("-m5000000000 -o= -c=", true, None),
    ("-m 400000000 -d 200000001 -s =", true, None),
    ("-d 200000001 -m 400000000", true, None),
    ("", false, Some("1048576")),
    ("", true, Some("1048576")),
    ("-a 600000001", false, Some("1048576")),
    ("-a 999999999999", false, Some("1048576")),
    ("-a =", true, Some("1048576")),
    ("-m 500000001 -o =", true, Some("2000000")),
];

#[test]
fn limits_equal_real_softlimit() {
    let s = Scratch::new("softlimit");
    let softlimit = tool("softlimit");
    s.write("etc/min.conf", "FOO=bar\n");
    let env = start_env(&s);
    let mut compared = 0;
    assert!(SOFTLIMIT_CASES.len() >= 15);
    for &(flags, lower, ulimit_v) in SOFTLIMIT_CASES {
        let case = format!("softlimit {flags:?}, lowered first: {lower}, ulimit_v {ulimit_v:?}");
        let pre = Pre {
            limits: if lower { LOW.to_vec() } else { vec![] },
            user: None,
        };
        let args: Vec<String> = [
            "--set",
            "layout=debian",
            "--set",
            &format!("config={}", s.root.join("etc/min.conf").display()),
            "--set",
            "account=",
            "--set",
            "envdir=",
            "--set",
            &format!("softlimit={flags}"),
            "--set",
            &format!("ulimit_v={}", ulimit_v.unwrap_or("")),
            "--set",
            &format!("server={}", s.server()),
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let plan = dry_json(&s, &args, &env, &pre);
        let (_, ours) = launch(&s, &args, &env, &pre);

        // The real thing: [sh -c 'ulimit -v N; exec'] softlimit FLAGS recorder OUT.
        let mut cmd = match ulimit_v {
            None => command(&softlimit, &s, &env, &pre),
            Some(kib) => {
                let mut c = command(Path::new("/bin/sh"), &s, &env, &pre);
                c.args([
                    "-c",
                    "ulimit -v \"$1\" || exit 111; shift; exec \"$@\"",
                    "sh",
                    kib,
                ])
                .arg(&softlimit);
                c
            }
        };
        cmd.args(flags.split_ascii_whitespace())
            .arg(s.recorder())
            .arg(s.record_path());
        let r = run_cmd(cmd);
        assert_eq!(r.code, 0, "{case}: the real side failed: {}", r.stderr);
        let real = s.take_record().expect("the real side ran the recorder");

        let mut d = Diffs::default();
        d.eq(
            &format!("{case}: /proc/self/limits"),
            ours.limits_raw.clone(),
            real.limits_raw.clone(),
        );
        d.limits(&format!("{case}: vs softlimit"), &ours.limits, &real.limits);
        d.limits(
            &format!("{case}: vs dry run"),
            &ours.limits,
            &json_limits(&plan),
        );
        compared += d.check(&case);
    }
    eprintln!(
        "softlimit oracle: {} flag strings, {compared} comparisons",
        SOFTLIMIT_CASES.len()
    );
}
