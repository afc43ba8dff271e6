//! The plan (`--dry-run --format json`) read back, and compared field by
//! field with what the exec'd program saw.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use courier_run::limits::Resource;
use serde_json::Value;

use crate::harness::{Ran, START_UMASK};
use crate::record::Record;

fn json_limit(v: &Value) -> Option<u64> {
    if v.is_null() {
        None
    } else {
        Some(v.as_u64().expect("a limit is a number or null"))
    }
}

pub fn json_limits(plan: &Value) -> BTreeMap<&'static str, (Option<u64>, Option<u64>)> {
    Resource::ALL
        .iter()
        .map(|&r| {
            let l = &plan["limits"][r.name()];
            assert!(l.is_object(), "plan has no limits.{}", r.name());
            (r.name(), (json_limit(&l["soft"]), json_limit(&l["hard"])))
        })
        .collect()
}

fn json_env(plan: &Value) -> BTreeMap<String, String> {
    plan["env"]
        .as_object()
        .expect("env is an object")
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
        .collect()
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_str().expect("string").to_string())
        .collect()
}

fn json_u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("a list")
        .iter()
        .map(|x| x.as_u64().expect("number") as u32)
        .collect()
}

/// Mismatches collected over one case, reported all at once.
#[derive(Default)]
pub struct Diffs {
    compared: usize,
    failures: Vec<String>,
}

impl Diffs {
    pub fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        self.compared += 1;
        if got != want {
            self.failures
                .push(format!("{what}:\n    got:  {got:?}\n    want: {want:?}"));
        }
    }

    pub fn env(
        &mut self,
        what: &str,
        got: &BTreeMap<String, String>,
        want: &BTreeMap<String, String>,
    ) {
        self.compared += 1;
        let mut lines = Vec::new();
        for (k, v) in want {
            match got.get(k) {
                None => lines.push(format!("    missing {k}={v:?}")),
                Some(g) if g != v => lines.push(format!("    {k}: got {g:?}, want {v:?}")),
                Some(_) => {}
            }
        }
        for (k, v) in got {
            if !want.contains_key(k) {
                lines.push(format!("    extra {k}={v:?}"));
            }
        }
        if !lines.is_empty() {
            self.failures.push(format!("{what}:\n{}", lines.join("\n")));
        }
    }

    pub fn limits(
        &mut self,
        what: &str,
        got: &BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
        want: &BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
    ) {
        for r in Resource::ALL {
            let (g, w) = (got[r.name()], want[r.name()]);
            self.eq(&format!("{what} {} soft", r.name()), g.0, w.0);
            self.eq(&format!("{what} {} hard", r.name()), g.1, w.1);
        }
    }

    pub fn check(self, case: &str) -> usize {
        assert!(
            self.failures.is_empty(),
            "{case}: {} of {} comparisons differ:\n{}",
            self.failures.len(),
            self.compared,
            self.failures.join("\n")
        );
        self.compared
    }
}

fn bytes_to_strings(v: &[Vec<u8>]) -> Vec<String> {
    v.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Every field of the plan against what the exec'd program saw.
pub fn compare_plan(d: &mut Diffs, plan: &Value, ran: &Ran, rec: &Record, start_groups: &[u32]) {
    d.eq(
        "argv",
        bytes_to_strings(&rec.argv),
        json_strings(&plan["argv"]),
    );
    let program = PathBuf::from(plan["program"].as_str().unwrap());
    d.eq(
        "program (the recorder's /proc/self/exe)",
        rec.exe.clone(),
        fs::canonicalize(&program).unwrap(),
    );
    d.env("env", &rec.env(), &json_env(plan));
    d.limits("limits", &rec.limits, &json_limits(plan));
    let uid = plan["uid"].as_u64().unwrap() as u32;
    let gid = plan["gid"].as_u64().unwrap() as u32;
    d.eq(
        "uid (real, effective, saved, fs)",
        rec.uid.clone(),
        vec![uid; 4],
    );
    d.eq(
        "gid (real, effective, saved, fs)",
        rec.gid.clone(),
        vec![gid; 4],
    );
    let mut groups = json_u32s(&plan["groups"]);
    groups.sort_unstable();
    d.eq("groups", rec.groups.clone(), groups);
    let umask = match &plan["umask"] {
        Value::Null => START_UMASK,
        v => u32::from_str_radix(v.as_str().unwrap(), 8).unwrap(),
    };
    d.eq(
        "umask",
        format!("{:03o}", rec.umask),
        format!("{umask:03o}"),
    );
    let merge = plan["stderr"] == "merge";
    d.eq("stderr merged (fd 2 is fd 1)", rec.fd1 == rec.fd2, merge);
    let banner: String = json_strings(&plan["banner"])
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    // What the launch printed, but warnings (not part of the plan's
    // promise): the banner on the right stream, nothing on the other.
    let (printed, other) = if merge {
        (ran.stdout_str(), ran.stderr_str())
    } else {
        (ran.stderr_str(), ran.stdout_str())
    };
    let not_warning = |t: &str| -> String {
        t.lines()
            .filter(|l| !l.starts_with("courier-run: warning: "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    d.eq(
        "banner (what the launch printed)",
        not_warning(&printed),
        banner,
    );
    d.eq(
        "nothing on the other stream",
        not_warning(&other),
        String::new(),
    );
    d.eq("pid (no fork)", rec.pid, ran.pid);
    d.eq("SIGPIPE ignored", rec.sigpipe_ignored(), false);
    // The groups courier-run started with, when it does not switch.
    if plan["setuidgid"].is_null() {
        let mut start = start_groups.to_vec();
        start.sort_unstable();
        d.eq(
            "groups unchanged without setuidgid",
            rec.groups.clone(),
            start,
        );
    }
}
