//! Resource limits: softlimit(8) options and sh's `ulimit -v`, planned as
//! data and applied with setrlimit just before exec.
//!
//! The semantics are daemontools 0.76 `softlimit.c` (Debian 1:0.76-8.1
//! behaves the same) and dash's `ulimit -v`, which Courier's rc script runs.
//! `plan` only computes; `apply` is the one place that changes the process,
//! so `--dry-run` prints exactly what a launch would set.

use std::collections::BTreeMap;

use anyhow::{Context, anyhow};
use nix::sys::resource::{RLIM_INFINITY, Resource as NixRes, getrlimit, setrlimit};

use crate::error::bad_input;

// Limits are handled as raw `rlim_t` values internally, as softlimit.c does:
// RLIM_INFINITY is then simply the largest number, so "clamp to the hard
// limit" is a plain `min`. That needs a 64-bit `rlim_t` whose infinity is
// all ones (Linux).
const _: () = assert!(RLIM_INFINITY == u64::MAX);

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Memlock,
    Nofile,
    Nproc,
    Rss,
    Stack,
}

impl Resource {
    pub const ALL: [Resource; 10] = [
        Resource::As,
        Resource::Core,
        Resource::Cpu,
        Resource::Data,
        Resource::Fsize,
        Resource::Memlock,
        Resource::Nofile,
        Resource::Nproc,
        Resource::Rss,
        Resource::Stack,
    ];

    /// The C name, as used in messages and in the JSON plan.
    pub fn name(self) -> &'static str {
        self.info().0
    }

    /// The row label in /proc/PID/limits.
    pub fn proc_name(self) -> &'static str {
        self.info().1
    }

    fn nix(self) -> NixRes {
        self.info().2
    }

    fn info(self) -> (&'static str, &'static str, NixRes) {
        use Resource::*;
        match self {
            As => ("RLIMIT_AS", "Max address space", NixRes::RLIMIT_AS),
            Core => ("RLIMIT_CORE", "Max core file size", NixRes::RLIMIT_CORE),
            Cpu => ("RLIMIT_CPU", "Max cpu time", NixRes::RLIMIT_CPU),
            Data => ("RLIMIT_DATA", "Max data size", NixRes::RLIMIT_DATA),
            Fsize => ("RLIMIT_FSIZE", "Max file size", NixRes::RLIMIT_FSIZE),
            Memlock => (
                "RLIMIT_MEMLOCK",
                "Max locked memory",
                NixRes::RLIMIT_MEMLOCK,
            ),
            Nofile => ("RLIMIT_NOFILE", "Max open files", NixRes::RLIMIT_NOFILE),
            Nproc => ("RLIMIT_NPROC", "Max processes", NixRes::RLIMIT_NPROC),
            Rss => ("RLIMIT_RSS", "Max resident set", NixRes::RLIMIT_RSS),
            Stack => ("RLIMIT_STACK", "Max stack size", NixRes::RLIMIT_STACK),
        }
    }
}

/// None = unlimited (RLIM_INFINITY).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub soft: Option<u64>,
    pub hard: Option<u64>,
}

/// A softlimit value: `=` (the hard limit) or a number.
/// `Num(u64::MAX)` is RLIM_INFINITY, as `softlimit -o 18446744073709551615` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value {
    Hard,
    Num(u64),
}

/// One softlimit(8) setting in the order daemontools applies them (-m
/// expands to DATA, STACK, MEMLOCK, AS in that order, as softlimit.c does).
pub type SoftLimit = (Resource, Value);

/// softlimit's letters: the resources each one sets (in softlimit.c's
/// order) and the unit of its value, for messages.
const LETTERS: [(char, &[Resource], &str); 11] = {
    use Resource::*;
    [
        ('a', &[As], "bytes"),
        ('c', &[Core], "bytes"),
        ('d', &[Data], "bytes"),
        ('f', &[Fsize], "bytes"),
        ('l', &[Memlock], "bytes"),
        ('m', &[Data, Stack, Memlock, As], "bytes"),
        ('o', &[Nofile], "open files"),
        ('p', &[Nproc], "processes"),
        ('r', &[Rss], "bytes"),
        ('s', &[Stack], "bytes"),
        ('t', &[Cpu], "seconds"),
    ]
};

/// Parse a softlimit option string such as "-m 5000000", "-m5000000 -o =",
/// "-a 1 -c 0": words split on blanks, each value glued to its letter or in
/// the next word, as softlimit's getopt takes them. Empty = no settings.
///
/// Stricter than softlimit on purpose: softlimit's scan_ulong silently wraps
/// numbers above 2^64-1 and takes an empty argument (`-m ''`) as 0; we
/// refuse both, like any value that is not all digits (which softlimit also
/// refuses, with a bare usage line that does not say which word is wrong).
pub fn parse_softlimit(s: &str) -> anyhow::Result<Vec<SoftLimit>> {
    let bad = |msg: String| bad_input(format!("softlimit \"{}\": {msg}", crate::shown::value(s)));
    let mut words = s.split_ascii_whitespace();
    let mut settings = Vec::new();
    while let Some(word) = words.next() {
        if word == "--" {
            // softlimit's getopt ends options there; what follows would be
            // the program, which is not part of this setting.
            match words.next() {
                Some(w) => {
                    return Err(bad(format!(
                        "\"{}\" follows \"--\": the program is not part of the softlimit options",
                        crate::shown::value(w)
                    )));
                }
                None => break,
            }
        }
        let Some(letter) = word.strip_prefix('-').and_then(|r| r.chars().next()) else {
            return Err(bad(format!(
                "\"{}\" is not an option (every value follows its letter, as in -m 5000000)",
                crate::shown::value(word)
            )));
        };
        let Some(&(_, resources, unit)) = LETTERS.iter().find(|l| l.0 == letter) else {
            return Err(bad(format!(
                "\"{}\": unknown option -{letter} (softlimit takes -a -c -d -f -l -m -o -p -r -s -t)",
                crate::shown::value(word)
            )));
        };
        let example = if unit == "bytes" { 5_000_000 } else { 100 };
        let glued = &word[1 + letter.len_utf8()..];
        let value = match glued {
            "" => match words.next() {
                None => {
                    return Err(bad(format!(
                        "-{letter} needs a value (a number of {unit}, or = for the hard limit)"
                    )));
                }
                // getopt would take "-o" as the value of "-m"; say what went wrong.
                Some(next)
                    if next.len() > 1
                        && next.starts_with('-')
                        && LETTERS.iter().any(|l| next[1..].starts_with(l.0)) =>
                {
                    return Err(bad(format!(
                        "-{letter} needs a value before {next} (write -{letter} {example})"
                    )));
                }
                Some(next) => next,
            },
            glued => glued,
        };
        let value = parse_value(value).map_err(|why| {
            let (what, fix) = match why {
                ValueError::NotDigits(Some(n)) => ("not", format!("write -{letter} {n}")),
                ValueError::NotDigits(None) => (
                    "not",
                    format!(
                        "write digits, e.g. -{letter} {example}, or -{letter} = for the hard limit"
                    ),
                ),
                ValueError::TooLarge => (
                    "too large",
                    format!("at most {}, which means unlimited", u64::MAX),
                ),
            };
            bad(format!(
                "\"{}\" is {what} a number of {unit} ({fix})",
                crate::shown::value(value)
            ))
        })?;
        settings.extend(resources.iter().map(|&r| (r, value)));
    }
    Ok(settings)
}

enum ValueError {
    /// Not all digits; with the number meant when it reads like "5M".
    NotDigits(Option<u64>),
    TooLarge,
}

fn parse_value(v: &str) -> Result<Value, ValueError> {
    if v == "=" {
        return Ok(Value::Hard);
    }
    parse_digits(v).map(Value::Num)
}

/// Digits only: u64's FromStr would also take a leading '+', softlimit not.
fn parse_digits(v: &str) -> Result<u64, ValueError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::NotDigits(suffixed(v)));
    }
    v.parse().map_err(|_| ValueError::TooLarge)
}

/// "5M" -> 5000000: people write sizes with suffixes; suggest the number.
/// Decimal, as the classic recipe's `-m 5000000` is.
fn suffixed(v: &str) -> Option<u64> {
    let (digits, suffix) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let scale: u64 = match suffix {
        "k" | "K" => 1_000,
        "m" | "M" => 1_000_000,
        "g" | "G" => 1_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(scale)
}

/// Parse ulimit_v / IMAP_ULIMITD: KiB as sh's `ulimit -v` takes it (digits,
/// or "unlimited"). Returns bytes, or None for unlimited.
///
/// dash silently wraps a product above 2^64-1 (`ulimit -v 18014398509481984`
/// sets 0) and takes an empty word as 0; we refuse both. An empty
/// IMAP_ULIMITD leaves the limit alone in the rc script (the unquoted
/// expansion vanishes and `ulimit -v` only prints), so callers should treat
/// empty as "not set" rather than call this.
pub fn parse_ulimit_v(s: &str) -> anyhow::Result<Option<u64>> {
    if s == "unlimited" {
        return Ok(None);
    }
    let bad = |why: &str| bad_input(format!("ulimit_v \"{}\": {why}", crate::shown::value(s)));
    match parse_digits(s).map(|kib| kib.checked_mul(1024)) {
        Ok(Some(bytes)) => Ok(Some(bytes)),
        Ok(None) | Err(ValueError::TooLarge) => Err(bad(&format!(
            "too large (at most {} KiB, or unlimited)",
            u64::MAX / 1024
        ))),
        Err(ValueError::NotDigits(_)) => Err(bad(
            "not a number of KiB (write digits, e.g. 131072 for 128 MiB, or unlimited)",
        )),
    }
}

/// The current limits of this process (getrlimit; read-only).
pub fn current() -> anyhow::Result<BTreeMap<Resource, Limit>> {
    Resource::ALL.iter().map(|&r| Ok((r, get(r)?))).collect()
}

fn get(r: Resource) -> anyhow::Result<Limit> {
    let (soft, hard) = getrlimit(r.nix()).with_context(|| format!("unable to get {}", r.name()))?;
    Ok(Limit {
        soft: from_raw(soft),
        hard: from_raw(hard),
    })
}

fn from_raw(v: u64) -> Option<u64> {
    (v != RLIM_INFINITY).then_some(v)
}

fn raw(v: Option<u64>) -> u64 {
    v.unwrap_or(RLIM_INFINITY)
}

/// Side-effect free: the limits the exec'd program will run under, for all
/// ten resources. Start from `cur`; then `ulimit_v` (Some(bytes or None for
/// unlimited)) sets RLIMIT_AS soft AND hard, as sh's `ulimit -v` does; then
/// each softlimit setting in order, exactly as softlimit.c's doit(): only
/// the soft limit, "=" means the hard limit, a number above the hard limit
/// is silently clamped to it.
pub fn plan(
    cur: &BTreeMap<Resource, Limit>,
    ulimit_v: Option<Option<u64>>,
    soft: &[SoftLimit],
) -> anyhow::Result<BTreeMap<Resource, Limit>> {
    // Raising a hard limit needs CAP_SYS_RESOURCE (not uid 0); asked only
    // when a raise is planned, so a launch reads /proc only then.
    plan_with(cur, ulimit_v, soft, || {
        crate::caps::has(crate::caps::CAP_SYS_RESOURCE)
    })
}

fn plan_with(
    cur: &BTreeMap<Resource, Limit>,
    ulimit_v: Option<Option<u64>>,
    soft: &[SoftLimit],
    may_raise_hard: impl Fn() -> bool,
) -> anyhow::Result<BTreeMap<Resource, Limit>> {
    let mut lim = BTreeMap::new();
    for r in Resource::ALL {
        let l = cur
            .get(&r)
            .ok_or_else(|| anyhow!("no current value for {}", r.name()))?;
        lim.insert(r, (raw(l.soft), raw(l.hard)));
    }
    if let Some(bytes) = ulimit_v {
        let new = raw(bytes);
        let (_, hard) = lim[&Resource::As];
        // setrlimit would fail with EPERM; say why now, so a dry run does too.
        if new > hard && !may_raise_hard() {
            let what = bytes.map_or("unlimited".to_string(), |b| format!("{} KiB", b / 1024));
            return Err(anyhow!(
                "ulimit_v {what} is above the hard limit of RLIMIT_AS ({hard} bytes) and only root can raise it (with CAP_SYS_RESOURCE)"
            ));
        }
        lim.insert(Resource::As, (new, new));
    }
    for &(r, v) in soft {
        let (s, hard) = lim.get_mut(&r).expect("all ten resources are in the map");
        *s = match v {
            Value::Hard => *hard,
            Value::Num(n) => n.min(*hard),
        };
    }
    Ok(lim
        .into_iter()
        .map(|(r, (s, h))| {
            (
                r,
                Limit {
                    soft: from_raw(s),
                    hard: from_raw(h),
                },
            )
        })
        .collect())
}

/// Apply a planned map with setrlimit, for every entry that differs from the
/// current value (soft and hard in one call, so lowering both never passes
/// through soft > hard). Failures are system errors (exit 111).
pub fn apply(limits: &BTreeMap<Resource, Limit>) -> anyhow::Result<()> {
    apply_from(&current()?, limits)
}

/// [`apply`] when the current limits are known already (the plan read them;
/// nothing changes them in between): one setrlimit per changed resource and
/// no other system call.
pub fn apply_from(
    before: &BTreeMap<Resource, Limit>,
    limits: &BTreeMap<Resource, Limit>,
) -> anyhow::Result<()> {
    for (&r, &want) in limits {
        if before.get(&r) != Some(&want) {
            setrlimit(r.nix(), raw(want.soft), raw(want.hard))
                .with_context(|| format!("unable to set {}", r.name()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Resource::*;
    use super::*;
    use crate::error::{Exit, exit_code};

    #[test]
    fn parse_softlimit_table() {
        use Value::{Hard, Num};
        let m = |v| vec![(Data, v), (Stack, v), (Memlock, v), (As, v)];
        let cases: Vec<(&str, Vec<SoftLimit>)> = vec![
            ("", vec![]),
            ("   ", vec![]),
            ("-m 5000000", m(Num(5_000_000))),
            ("-m5000000", m(Num(5_000_000))),
            ("-m=", m(Hard)),
            (
                "-m5000000 -o =",
                [m(Num(5_000_000)), vec![(Nofile, Hard)]].concat(),
            ),
            ("-a 1 -c 0", vec![(As, Num(1)), (Core, Num(0))]),
            (
                "-d 1 -f 2 -l 3",
                vec![(Data, Num(1)), (Fsize, Num(2)), (Memlock, Num(3))],
            ),
            (
                "-p 4\t-r 5  -s 6 -t 7",
                vec![
                    (Nproc, Num(4)),
                    (Rss, Num(5)),
                    (Stack, Num(6)),
                    (Cpu, Num(7)),
                ],
            ),
            ("-c 18446744073709551615", vec![(Core, Num(u64::MAX))]),
            ("-o 100 --", vec![(Nofile, Num(100))]),
            ("-c0 -c1", vec![(Core, Num(0)), (Core, Num(1))]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_softlimit(input).unwrap(), want, "{input:?}");
        }
    }

    #[test]
    fn parse_softlimit_errors() {
        let cases = [
            (
                "-m 5M",
                r#"softlimit "-m 5M": "5M" is not a number of bytes (write -m 5000000)"#,
            ),
            (
                "-m5M",
                r#""5M" is not a number of bytes (write -m 5000000)"#,
            ),
            (
                "-o abc",
                r#""abc" is not a number of open files (write digits, e.g. -o 100, or -o = for the hard limit)"#,
            ),
            ("-c +5", r#""+5" is not a number of bytes"#),
            ("-c ==", r#""==" is not a number"#),
            (
                "-m",
                "-m needs a value (a number of bytes, or = for the hard limit)",
            ),
            ("-m -o 100", "-m needs a value before -o (write -m 5000000)"),
            (
                "-x 3",
                r#"softlimit "-x 3": "-x": unknown option -x (softlimit takes"#,
            ),
            ("-M 3", "unknown option -M"),
            ("-c -5", r#""-5" is not a number of bytes"#),
            ("5000000", r#""5000000" is not an option"#),
            ("-", r#""-" is not an option"#),
            ("-m 1 tcpserver", r#""tcpserver" is not an option"#),
            ("-m 1 -- tcpserver", r#""tcpserver" follows "--""#),
            (
                "-c 18446744073709551616",
                r#""18446744073709551616" is too large a number of bytes (at most 18446744073709551615, which means unlimited)"#,
            ),
        ];
        for (input, want) in cases {
            let err = parse_softlimit(input).expect_err(input);
            assert!(format!("{err:#}").contains(want), "{input:?}: {err:#}");
            assert_eq!(exit_code(&err), Exit::Usage, "{input:?}");
        }
    }

    #[test]
    fn parse_ulimit_v_table() {
        let ok = [
            ("131072", Some(134_217_728)),
            ("0", Some(0)),
            ("unlimited", None),
            ("18014398509481983", Some(18_446_744_073_709_550_592)),
        ];
        for (input, want) in ok {
            assert_eq!(parse_ulimit_v(input).unwrap(), want, "{input:?}");
        }
        for input in [
            "",
            "abc",
            "128M",
            "+1",
            " 1",
            "Unlimited",
            "18014398509481984",
            "99999999999999999999",
        ] {
            let err = parse_ulimit_v(input).expect_err(input);
            assert_eq!(exit_code(&err), Exit::Usage, "{input:?}");
        }
    }

    fn lim(soft: Option<u64>, hard: Option<u64>) -> Limit {
        Limit { soft, hard }
    }

    fn base() -> BTreeMap<Resource, Limit> {
        Resource::ALL
            .iter()
            .map(|&r| (r, lim(Some(100), Some(1000))))
            .collect()
    }

    #[test]
    fn plan_follows_softlimit_c() {
        let mut cur = base();
        cur.insert(Core, lim(Some(0), None));
        let soft = parse_softlimit("-m 500 -d 2000 -o = -c 18446744073709551615 -p 7").unwrap();
        let got = plan_with(&cur, None, &soft, || false).unwrap();
        assert_eq!(got[&As], lim(Some(500), Some(1000)));
        assert_eq!(got[&Stack], lim(Some(500), Some(1000)));
        assert_eq!(
            got[&Data],
            lim(Some(1000), Some(1000)),
            "clamped, and the later -d wins"
        );
        assert_eq!(got[&Nofile], lim(Some(1000), Some(1000)));
        assert_eq!(got[&Core], lim(None, None), "2^64-1 is RLIM_INFINITY");
        assert_eq!(got[&Nproc], lim(Some(7), Some(1000)));
        assert_eq!(got[&Cpu], cur[&Cpu], "untouched");
        assert_eq!(got.len(), 10);
    }

    #[test]
    fn plan_ulimit_v_then_softlimit() {
        let soft = parse_softlimit("-a 999999").unwrap();
        let got = plan_with(&base(), Some(Some(512)), &soft, || false).unwrap();
        assert_eq!(
            got[&As],
            lim(Some(512), Some(512)),
            "softlimit is clamped by ulimit_v"
        );
        let err = plan_with(&base(), Some(Some(2048)), &[], || false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ulimit_v 2 KiB is above the hard limit of RLIMIT_AS (1000 bytes) and only root can raise it (with CAP_SYS_RESOURCE)"
        );
        assert!(plan_with(&base(), Some(None), &[], || false).is_err());
        assert_eq!(
            plan_with(&base(), Some(None), &[], || true).unwrap()[&As],
            lim(None, None)
        );
    }

    #[test]
    fn names() {
        assert_eq!(As.name(), "RLIMIT_AS");
        assert_eq!(As.proc_name(), "Max address space");
        assert_eq!(
            Resource::ALL.len(),
            LETTERS
                .iter()
                .flat_map(|l| l.1)
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
    }

    #[test]
    fn current_has_all_ten() {
        assert_eq!(current().unwrap().len(), 10);
    }
}
