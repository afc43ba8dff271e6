//! The one table of softlimit cases, used by both layers that compare
//! courier-run's limits with the real daemontools `softlimit` (and `ulimit
//! -v` for `ulimit_v`): tests/softlimit_oracle.rs (the library's
//! `limits::plan` + `apply`, then `cat /proc/self/limits`) and
//! tests/launcher/softlimit.rs (the binary, exec'ing the recorder).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use courier_run::limits::{self, Limit, Resource, Resource::*};

/// Low hard limits (soft lower still), applied in both children first
/// when a case says `lower`, so that `=` and the clamping of values above
/// the hard limit are really exercised. Capped by the current hard limits,
/// so no case needs privileges.
pub const LOW: &[(Resource, u64, u64)] = &[
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

pub struct SoftCase {
    /// The softlimit options, as in `softlimit=`.
    pub flags: &'static str,
    /// Lower the limits to [`LOW`] first.
    pub lower: bool,
    /// `ulimit_v=` (KiB), applied before softlimit, which it clamps.
    pub ulimit_v: Option<&'static str>,
}

const fn c(flags: &'static str, lower: bool, ulimit_v: Option<&'static str>) -> SoftCase {
    SoftCase {
        flags,
        lower,
        ulimit_v,
    }
}

/// Odd values, so that no case happens to equal a distribution's default;
/// large enough to leave the recorder room to load and write its file.
pub const CASES: &[SoftCase] = &[
    c("", false, None),
    // Each letter alone.
    c("-a 3000000001", false, None),
    c("-c 1234567", false, None),
    c("-d 500000001", false, None),
    c("-f 1000001", false, None),
    c("-l 65535", false, None),
    c("-m 500000001", false, None),
    c("-o 101", false, None),
    c("-p 999", false, None),
    c("-r 100000001", false, None),
    c("-s 1000001", false, None),
    c("-t 5", false, None),
    // "=" raises the soft limit to the hard one.
    c("-c =", true, None),
    c("-o =", true, None),
    c("-a = -d = -f = -l = -p = -r = -s = -t =", true, None),
    c("-m =", true, None),
    // Above the hard limit: silently clamped.
    c("-o 100000", true, None),
    c("-a 10000000000", true, None),
    c("-m 10000000000", true, None),
    c("-c 18446744073709551615", true, None),
    // 2^64-1 is RLIM_INFINITY.
    c("-c 18446744073709551615", false, None),
    // Combinations, glued values, order (the later option wins for the
    // resources both set).
    c("-m 500000000 -o 100 -t 5", false, None),
    c("-m5000000000 -o= -c=", true, None),
    c("-m 400000000 -d 200000001 -s =", true, None),
    c("-d 200000001 -m 400000000", true, None),
    // ulimit_v: RLIMIT_AS soft and hard, before softlimit, which it clamps.
    c("", false, Some("1048576")),
    c("", true, Some("1048576")),
    c("", false, Some("unlimited")),
    c("", false, Some("18014398509481983")),
    c("-a 600000001", false, Some("1048576")),
    c("-a 999999999999", false, Some("1048576")),
    c("-a =", true, Some("1048576")),
    c("-m 500000001 -o =", true, Some("2000000")),
    // Raising the hard limit: needs CAP_SYS_RESOURCE (which root in a
    // container may lack); both sides must then fail alike.
    c("", true, Some("unlimited")),
    c("", true, Some("4000000")),
];

impl SoftCase {
    pub fn name(&self) -> String {
        format!(
            "softlimit {:?}, lowered first: {}, ulimit_v {:?}",
            self.flags, self.lower, self.ulimit_v
        )
    }

    /// The limits to lower first: (resource, soft, hard).
    pub fn pre(&self) -> &'static [(Resource, u64, u64)] {
        if self.lower { LOW } else { &[] }
    }

    /// The real side, without the program it runs:
    /// `[/bin/sh -c 'ulimit -v N; exec "$@"' sh N] /usr/bin/softlimit FLAGS`.
    pub fn real_argv(&self, softlimit: &std::path::Path) -> (PathBuf, Vec<OsString>) {
        let mut args: Vec<OsString> = Vec::new();
        let program = match self.ulimit_v {
            None => softlimit.to_path_buf(),
            Some(kib) => {
                args.extend(
                    [
                        "-c",
                        "ulimit -v \"$1\" || exit 111; shift; exec \"$@\"",
                        "sh",
                        kib,
                    ]
                    .map(OsString::from),
                );
                args.push(softlimit.into());
                PathBuf::from("/bin/sh")
            }
        };
        args.extend(self.flags.split_ascii_whitespace().map(OsString::from));
        (program, args)
    }
}

/// The limits as they are now, with `lowered` applied (each capped by the
/// current hard limit).
pub fn pre_map(lowered: &[(Resource, u64, u64)]) -> BTreeMap<Resource, Limit> {
    let mut map = limits::current().unwrap();
    for &(r, soft, hard) in lowered {
        let hard = hard.min(map[&r].hard.unwrap_or(u64::MAX));
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
