//! What the recorder wrote: its record, parsed.

use std::collections::BTreeMap;
use std::path::PathBuf;

use courier_run::limits::Resource;

use crate::common::{Env, env0_entries, show};

#[derive(Debug)]
pub struct Record {
    pub pid: u32,
    pub argv: Vec<Vec<u8>>,
    /// The environ block as the kernel gave it, entry by entry.
    pub environ: Env,
    pub limits_raw: String,
    pub limits: BTreeMap<&'static str, (Option<u64>, Option<u64>)>,
    /// real, effective, saved, fs
    pub uid: Vec<u32>,
    pub gid: Vec<u32>,
    pub groups: Vec<u32>,
    pub umask: u32,
    pub sig_ign: u64,
    pub exe: PathBuf,
    pub fd1: String,
    pub fd2: String,
    pub cwd: PathBuf,
}

impl Record {
    pub fn parse(data: &[u8]) -> Record {
        let mut sections: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut rest = data;
        while !rest.is_empty() {
            let nl = rest.iter().position(|&c| c == b'\n').expect("header line");
            let header = std::str::from_utf8(&rest[..nl]).unwrap();
            let (name, len) = header.split_once(' ').expect("NAME LEN");
            let len: usize = len.parse().unwrap();
            let body = &rest[nl + 1..nl + 1 + len];
            sections.insert(name.to_string(), body.to_vec());
            rest = &rest[nl + 1 + len + 1..];
        }
        let text = |n: &str| String::from_utf8(sections[n].clone()).unwrap();
        let status = text("status");
        let field = |name: &str| -> String {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or_else(|| panic!("no {name} in /proc/self/status"))
                .trim()
                .to_string()
        };
        let nums = |s: String| -> Vec<u32> {
            s.split_ascii_whitespace()
                .map(|n| n.parse().unwrap())
                .collect()
        };
        let limits_raw = text("limits");
        let limits = Resource::ALL
            .iter()
            .map(|&r| (r.name(), proc_limit(&limits_raw, r)))
            .collect();
        Record {
            pid: text("pid").parse().unwrap(),
            argv: sections["argv"]
                .split(|&c| c == 0)
                .map(<[u8]>::to_vec)
                .collect(),
            environ: env0_entries(&sections["environ"])
                .unwrap_or_else(|e| panic!("the recorded environ: {e}")),
            limits,
            limits_raw,
            uid: nums(field("Uid:")),
            gid: nums(field("Gid:")),
            groups: nums(field("Groups:")),
            umask: u32::from_str_radix(&field("Umask:"), 8).unwrap(),
            sig_ign: u64::from_str_radix(&field("SigIgn:"), 16).unwrap(),
            exe: PathBuf::from(text("exe")),
            fd1: text("fd1"),
            fd2: text("fd2"),
            cwd: PathBuf::from(text("cwd")),
        }
    }

    /// The environment as name -> value; duplicates are a failure (getenv
    /// and envdir would disagree about which one counts).
    pub fn env(&self) -> BTreeMap<String, String> {
        env_map(&self.environ, "recorded environment")
    }

    pub fn sigpipe_ignored(&self) -> bool {
        const SIGPIPE: u32 = 13;
        self.sig_ign >> (SIGPIPE - 1) & 1 == 1
    }
}

pub fn env_map(entries: &Env, what: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for (n, v) in entries {
        let text = |b: &[u8]| {
            String::from_utf8(b.to_vec())
                .unwrap_or_else(|_| panic!("{what}: {} is not UTF-8", show(b)))
        };
        let n = text(n);
        assert!(
            map.insert(n.clone(), text(v)).is_none(),
            "{what}: {n} twice"
        );
    }
    map
}

/// One row of /proc/PID/limits, by its label: (soft, hard), None = unlimited.
fn proc_limit(text: &str, r: Resource) -> (Option<u64>, Option<u64>) {
    let row = text
        .lines()
        .find_map(|l| l.strip_prefix(r.proc_name()))
        .unwrap_or_else(|| panic!("no {} row in /proc/self/limits", r.proc_name()));
    let mut w = row.split_ascii_whitespace();
    let mut num = || match w.next().expect("a value") {
        "unlimited" => None,
        n => Some(n.parse::<u64>().unwrap()),
    };
    (num(), num())
}
