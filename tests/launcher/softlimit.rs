//! Oracle: the limits courier-run sets equal those under the real
//! `softlimit` (and `ulimit -v`), over the one table of cases shared with
//! tests/softlimit_oracle.rs (tests/common/softlimit.rs).

use crate::common::have_file;
use crate::common::softlimit::CASES;
use crate::compare::{Diffs, json_limits};
use crate::harness::{Pre, Scratch, command, courier_run, dry_json, launch, run_cmd, start_env};

const SOFTLIMIT: &str = "/usr/bin/softlimit";

#[test]
fn limits_equal_real_softlimit() {
    if !have_file(SOFTLIMIT, "daemontools") {
        return;
    }
    let s = Scratch::new("softlimit");
    s.write("etc/min.conf", "FOO=bar\n");
    let env = start_env(&s);
    let mut compared = 0;
    let mut refused = 0;
    for c in CASES {
        let case = c.name();
        let pre = Pre {
            limits: c.pre().to_vec(),
            ..Pre::default()
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
            &format!("softlimit={}", c.flags),
            "--set",
            &format!("ulimit_v={}", c.ulimit_v.unwrap_or("")),
            "--set",
            &format!("server={}", s.server()),
            // The recorder serves no login: no wait for authdaemond.
            "--set",
            "wait_authdaemond=no",
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();

        // The real thing: [sh -c 'ulimit -v N; exec'] softlimit FLAGS recorder OUT.
        let (program, words) = c.real_argv(SOFTLIMIT.as_ref());
        let mut cmd = command(&program, &s, &env, &pre);
        cmd.args(words).arg(s.recorder()).arg(s.record_path());
        let r = run_cmd(cmd);
        if r.exit() != 0 {
            // Only raising the hard limit without CAP_SYS_RESOURCE may
            // fail; courier-run must then refuse the same plan.
            assert!(
                c.ulimit_v.is_some() && c.lower,
                "{case}: the real side failed: {}",
                r.stderr_str()
            );
            let ours = courier_run(&s, &args, &env, &pre);
            // The launch merges stderr into stdout (the recipe's exec 2>&1).
            let said = format!("{}{}", ours.stdout_str(), ours.stderr_str());
            assert_eq!(ours.exit(), 111, "{case}: {said}");
            assert!(said.contains("only root can raise it"), "{case}: {said}");
            assert!(s.take_record().is_none(), "{case}: exec'd anyway");
            refused += 1;
            continue;
        }
        let real = s.take_record().expect("the real side ran the recorder");
        let plan = dry_json(&s, &args, &env, &pre);
        let (_, ours) = launch(&s, &args, &env, &pre);

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
        "softlimit oracle (launch): {} cases, {compared} comparisons, {refused} refused alike",
        CASES.len()
    );
}
