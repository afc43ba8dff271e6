//! The TCP front ends courier-run can exec, as data: ucspi-tcp's
//! `tcpserver` (0.88, IPv4 only), Debian's `ucspi-tcp-ipv6` build of it
//! (fefe's patch: binds IPv6, usage starts `[ -461...`), and ipsvd's
//! `tcpsvd` (1.0.0), and Courier's own `couriertcpd` (what Debian's rc runs:
//! binds IPv6, per-IP limits, DNS block lists; see [`crate::couriertcpd`]).
//! Each one's options, how the settings become its argv,
//! its traps (options it reads silently wrong), and which rules format it
//! reads. Pure functions; the one probe that runs a program is
//! [`probe_ipv6`].
//!
//! Facts, from the sources and the binaries on Debian 12:
//! - tcpserver's getopt string is `dDvqQhHrR1UXpPoOc:x:B:g:u:b:l:t:`
//!   (`46I:` added by the IPv6 patch). `-u`/`-g` are numbers only
//!   (`scan_ulong`: `-u nobody` reads 0, root); `-U` reads `$UID`/`$GID` and
//!   silently stays root when they are unset. No per-IP limit.
//! - tcpsvd's is `vu:c:C:i:x:t:l:Eb:hpV`: `-u user[:group]` BY NAME
//!   (`:uid:gid` for numbers), `-C n[:msg]` per-IP limit, rules from an
//!   instructions directory (`-i`) or an `ipsvd-cdb` database (`-x`).
//!   `tcpsvd -v ::1 ...` fails: "unable to look up ip address: ::1".
//! - tcprules cdb records: key `127.0.0.1`, `127.` (prefix, trailing dot),
//!   `=host`, or `` (default); data is NUL-terminated instructions: empty
//!   (allow), `D\0` (deny), `+NAME=VALUE\0` (allow, set NAME).
//! - ipsvd-cdb records (ipsvd-cdb.c, ipsvd_check.c): key `127.0.0.1`, `127`
//!   (prefix, NO trailing dot), a host name, or `0` (default); data ends in
//!   one type byte: `D` (deny), `X` (a shell command to run instead), `I`
//!   (instructions, NUL-separated: `+NAME=VALUE`, `Cn`).
//!
//! So the two cdb formats are told apart by every record's last data byte:
//! tcprules' is NUL (or the data is empty), ipsvd's is `D`, `I` or `X`.

use std::path::Path;

/// Which front end a `server` setting names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ucspi-tcp's tcpserver (either build).
    Tcpserver,
    /// ipsvd's tcpsvd.
    Tcpsvd,
    /// Courier's couriertcpd (`-name=value` options, a makedat `.dat`).
    Couriertcpd,
}

/// What courier-run knows about one front end.
#[derive(Debug)]
pub struct Spec {
    pub kind: Kind,
    pub name: &'static str,
    /// getopt letters without a value.
    pub flags: &'static str,
    /// getopt letters that take a value.
    pub valued: &'static str,
    /// The option that caps simultaneous connections.
    pub conlimit: char,
    /// The per-IP limit option, if it has one.
    pub per_ip: Option<char>,
    /// The rules formats it reads.
    pub reads: &'static [RulesFormat],
    /// The Debian package that provides it.
    pub package: &'static str,
}

pub const TCPSERVER: Spec = Spec {
    kind: Kind::Tcpserver,
    name: "tcpserver",
    flags: "dDvqQhHrR1UXpPoO46",
    valued: "xtuglbBcI",
    conlimit: 'c',
    per_ip: None,
    reads: &[RulesFormat::Tcprules],
    package: "ucspi-tcp (ucspi-tcp-ipv6 for IPv6)",
};

pub const TCPSVD: Spec = Spec {
    kind: Kind::Tcpsvd,
    name: "tcpsvd",
    flags: "vEhpV",
    valued: "ucCixtlb",
    conlimit: 'c',
    per_ip: Some('C'),
    reads: &[RulesFormat::IpsvdCdb, RulesFormat::IpsvdDir],
    package: "ipsvd",
};

/// couriertcpd's options are `-name=value` words, not getopt letters:
/// [`crate::couriertcpd`] builds its argv; `flags`/`valued` are unused.
pub const COURIERTCPD: Spec = Spec {
    kind: Kind::Couriertcpd,
    name: "couriertcpd",
    flags: "",
    valued: "",
    conlimit: 'c',
    per_ip: Some('p'),
    reads: &[RulesFormat::CourierDat],
    package: "courier-base",
};

impl Kind {
    /// The front end a program path names, by its base name; None for a
    /// program courier-run does not know.
    pub fn of(program: &str) -> Option<Kind> {
        match program.rsplit('/').next().unwrap_or("") {
            "tcpserver" => Some(Kind::Tcpserver),
            "tcpsvd" => Some(Kind::Tcpsvd),
            "couriertcpd" => Some(Kind::Couriertcpd),
            _ => None,
        }
    }

    pub fn spec(self) -> &'static Spec {
        match self {
            Kind::Tcpserver => &TCPSERVER,
            Kind::Tcpsvd => &TCPSVD,
            Kind::Couriertcpd => &COURIERTCPD,
        }
    }
}

/// Whether a tcpserver's usage message (what it prints when run without
/// arguments) is the IPv6-patched one (Debian's ucspi-tcp-ipv6:
/// `usage: tcpserver [ -461UXpPhHrRoOdDqQv ] ... [ -I interface ] ...`).
pub fn usage_is_ipv6(usage: &str) -> bool {
    usage.contains("[ -46") || usage.contains("-I interface")
}

/// Whether the installed front end `program` can bind an IPv6 address:
/// tcpsvd never; couriertcpd always (Courier 5 binds `::` and `::1`);
/// tcpserver when its usage message is the IPv6 build's.
/// Runs `program` with no arguments (it prints its usage and exits 100).
pub fn probe_ipv6(kind: Kind, program: &Path) -> std::io::Result<bool> {
    match kind {
        Kind::Tcpsvd => return Ok(false),
        Kind::Couriertcpd => return Ok(true),
        Kind::Tcpserver => {}
    }
    let out = std::process::Command::new(program)
        .stdin(std::process::Stdio::null())
        .output()?;
    Ok(usage_is_ipv6(&String::from_utf8_lossy(&out.stderr)))
}

/// Whether `address` is an IPv6 address (or IPv6 wildcard `::`).
pub fn is_ipv6(address: &str) -> bool {
    address.contains(':')
}

// ---------------------------------------------------------------------------
// argv

/// Where the per-connection rules come from and in which format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RulesFormat {
    /// A cdb built by tcprules (tcpserver -x).
    Tcprules,
    /// A cdb built by ipsvd-cdb (tcpsvd -x).
    IpsvdCdb,
    /// An ipsvd instructions directory (tcpsvd -i).
    IpsvdDir,
    /// Courier's access database (gdbm on Debian), built by makedat
    /// (couriertcpd -access=).
    CourierDat,
}

impl RulesFormat {
    pub fn describe(self) -> &'static str {
        match self {
            RulesFormat::Tcprules => "a tcprules cdb",
            RulesFormat::IpsvdCdb => "an ipsvd-cdb database",
            RulesFormat::IpsvdDir => "an ipsvd instructions directory",
            RulesFormat::CourierDat => "a makedat access database",
        }
    }
}

/// The values that become the front end's own arguments.
#[derive(Debug, Clone, Default)]
pub struct Args<'a> {
    pub conlimit: &'a str,
    /// Courier's MAXPERIP; None or 0: no per-IP limit.
    pub maxperip: Option<u32>,
    /// The rules and their format.
    pub rules: Option<(&'a str, RulesFormat)>,
    pub address: &'a str,
    pub port: &'a str,
}

/// The options and operands courier-run appends to the `server` words:
/// `-c N [-C M] [-x CDB | -i DIR] ADDRESS PORT`. Errors say why the front end
/// cannot do what the settings ask (IPv6 address on an IPv4-only front end,
/// rules in a format it does not read); a MAXPERIP the front end cannot
/// enforce is not an error here: it is `--check`'s warning (see
/// [`per_ip_note`]).
pub fn args(spec: &Spec, ipv6_capable: bool, a: &Args) -> Result<Vec<String>, String> {
    let mut v = vec![format!("-{}", spec.conlimit), a.conlimit.to_string()];
    if let (Some(c), Some(n)) = (spec.per_ip, a.maxperip.filter(|&n| n > 0)) {
        v.push(format!("-{c}"));
        v.push(n.to_string());
    }
    if let Some((path, fmt)) = a.rules {
        if !spec.reads.contains(&fmt) {
            return Err(mismatch(spec, path, fmt));
        }
        v.push(
            if fmt == RulesFormat::IpsvdDir {
                "-i"
            } else {
                "-x"
            }
            .into(),
        );
        v.push(path.to_string());
    }
    if is_ipv6(a.address) && !ipv6_capable {
        return Err(format!(
            "address {} is IPv6: this {} binds IPv4 only ({})",
            a.address,
            spec.name,
            match spec.kind {
                Kind::Tcpserver => "install ucspi-tcp-ipv6 for a tcpserver that binds IPv6",
                Kind::Tcpsvd => "ipsvd 1.0.0 has no IPv6; use ucspi-tcp-ipv6's tcpserver",
                Kind::Couriertcpd => "",
            }
        ));
    }
    v.push(a.address.to_string());
    v.push(a.port.to_string());
    Ok(v)
}

/// The message for rules in a format the front end does not read.
pub fn mismatch(spec: &Spec, path: &str, fmt: RulesFormat) -> String {
    let fix = match spec.kind {
        Kind::Tcpserver => "build a tcprules cdb: tcprules CDB TMP < SOURCE".to_string(),
        Kind::Tcpsvd => {
            "give tcpsvd an ipsvd instructions directory (-i) or build one with ipsvd-cdb CDB TMP DIR"
                .to_string()
        }
        Kind::Couriertcpd => {
            "build it with makedat -src=LIST -file=LIST.dat -tmp=TMP -cidr, or set access= to the list"
                .to_string()
        }
    };
    format!(
        "rules {path} is {} but {} reads {}: every rule in it would be ignored ({fix})",
        fmt.describe(),
        spec.name,
        spec.reads
            .iter()
            .map(|f| f.describe())
            .collect::<Vec<_>>()
            .join(" or "),
    )
}

/// What to say about MAXPERIP for a front end: None when it is enforced.
pub fn per_ip_note(spec: &Spec, maxperip: Option<u32>) -> Option<String> {
    match (spec.per_ip, maxperip) {
        (None, Some(n)) if n > 0 => Some(format!(
            "MAXPERIP={n} is not enforced: {} has no per-IP limit (ipsvd's tcpsvd -C has one: server=\"tcpsvd -v\")",
            spec.name
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------------------
// traps

/// A front-end option that does something other than what it seems to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    pub option: String,
    pub problem: String,
    pub fix: String,
}

/// Parse `words` (the `server` setting after the program) with the front
/// end's getopt string. Returns the options with their values, or the
/// first word that is not an option it knows.
pub fn getopt(spec: &Spec, words: &[&str]) -> Result<Vec<(char, Option<String>)>, Trap> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = words[i];
        i += 1;
        if w == "--" {
            break;
        }
        let Some(letters) = w.strip_prefix('-').filter(|l| !l.is_empty()) else {
            return Err(Trap {
                option: w.into(),
                problem: format!(
                    "\"{w}\" is not an option: {} would take it as the host",
                    spec.name
                ),
                fix: "give the host and port with address= and port=".into(),
            });
        };
        for (k, c) in letters.char_indices() {
            if spec.flags.contains(c) {
                out.push((c, None));
            } else if spec.valued.contains(c) {
                let glued = &letters[k + c.len_utf8()..];
                let v = if !glued.is_empty() {
                    glued.to_string()
                } else if i < words.len() {
                    i += 1;
                    words[i - 1].to_string()
                } else {
                    return Err(Trap {
                        option: format!("-{c}"),
                        problem: format!("-{c} needs a value"),
                        fix: format!("{} would exit with its usage message", spec.name),
                    });
                };
                out.push((c, Some(v)));
                break;
            } else {
                return Err(Trap {
                    option: format!("-{c}"),
                    problem: format!(
                        "{} has no option -{c}: it would exit with its usage message",
                        spec.name
                    ),
                    fix: format!(
                        "remove it; {} takes -{} and -{} with a value",
                        spec.name, spec.flags, spec.valued
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// A value getopt-style options read as a number: digits only.
pub fn digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

/// The identity traps of the parsed options. `has_uid_gid`: the launch
/// environment will hold UID and GID (an `account` is set: envuidgid).
/// `user_id`, `group_id`: a user's or group's id (getpwnam/getgrnam;
/// parameters so tests need no accounts).
pub fn identity_traps(
    spec: &Spec,
    opts: &[(char, Option<String>)],
    has_uid_gid: bool,
    user_id: &dyn Fn(&str) -> Option<u32>,
    group_id: &dyn Fn(&str) -> Option<u32>,
) -> Vec<Trap> {
    let user_exists = |u: &str| user_id(u).is_some();
    let group_exists = |g: &str| group_id(g).is_some();
    let mut traps = Vec::new();
    for (c, v) in opts {
        let v = v.as_deref().unwrap_or("");
        match (spec.kind, c) {
            (Kind::Tcpserver, 'u' | 'g') if !digits(v) => traps.push(Trap {
                option: format!("-{c} {v}"),
                problem: format!(
                    "tcpserver's -{c} takes a number: \"{v}\" reads as 0, so the login program runs as root"
                ),
                fix: match if *c == 'u' { user_id(v) } else { group_id(v) } {
                    Some(n) => format!("write -{c} {n}, or use account= with -U"),
                    None => format!(
                        "write the numeric {}, or use account= with -U",
                        if *c == 'u' { "uid" } else { "gid" }
                    ),
                },
            }),
            (Kind::Tcpserver, 'U') if !has_uid_gid => traps.push(Trap {
                option: "-U".into(),
                problem: "tcpserver -U reads $UID and $GID, which nothing sets: it silently stays root"
                    .into(),
                fix: "set account= (envuidgid sets UID and GID), or remove -U".into(),
            }),
            (Kind::Tcpsvd, 'u') => {
                if let Some(numeric) = v.strip_prefix(':') {
                    if !numeric.split(':').all(digits) {
                        traps.push(Trap {
                            option: format!("-u {v}"),
                            problem: format!(
                                "tcpsvd -u :{numeric}: with a leading colon every field must be a number"
                            ),
                            fix: "write -u :UID:GID, or -u user[:group] by name".into(),
                        });
                    }
                    continue;
                }
                let mut parts = v.split(':');
                let user = parts.next().unwrap_or("");
                if !user_exists(user) {
                    traps.push(Trap {
                        option: format!("-u {v}"),
                        problem: format!(
                            "tcpsvd -u takes a user NAME: there is no user \"{user}\", tcpsvd would exit at startup"
                        ),
                        fix: "name an existing user (numbers need a leading colon: -u :UID:GID)"
                            .into(),
                    });
                }
                for g in parts.filter(|g| !group_exists(g)) {
                    traps.push(Trap {
                        option: format!("-u {v}"),
                        problem: format!("tcpsvd -u: there is no group \"{g}\""),
                        fix: "name an existing group".into(),
                    });
                }
            }
            _ => {}
        }
    }
    traps
}

// ---------------------------------------------------------------------------
// rules format

/// What a rules path holds.
#[derive(Debug, PartialEq, Eq)]
pub enum Detected {
    /// One format, known from its records.
    Format(RulesFormat),
    /// A cdb with no records: both front ends read it as "no rules".
    Empty,
    /// Neither, or records of both: why.
    Unknown(String),
}

/// The format of a cdb's records (see the module comment).
pub fn classify(records: &[crate::cdb::Record]) -> Detected {
    let (mut tcp, mut ipsvd) = (0, 0);
    for (k, d) in records {
        match d.last() {
            None | Some(0) => tcp += 1,
            Some(b'D' | b'I' | b'X') => ipsvd += 1,
            Some(_) => {
                return Detected::Unknown(format!(
                    "record \"{}\" is neither tcprules' nor ipsvd-cdb's",
                    String::from_utf8_lossy(k)
                ));
            }
        }
    }
    match (tcp, ipsvd) {
        (0, 0) => Detected::Empty,
        (_, 0) => Detected::Format(RulesFormat::Tcprules),
        (0, _) => Detected::Format(RulesFormat::IpsvdCdb),
        _ => Detected::Unknown(format!(
            "{tcp} records in tcprules' format and {ipsvd} in ipsvd-cdb's"
        )),
    }
}

/// The format of the rules at `path`: a directory is an ipsvd instructions
/// directory; a file is classified by its cdb records.
pub fn detect(path: &Path) -> std::io::Result<Detected> {
    if std::fs::metadata(path)?.is_dir() {
        return Ok(Detected::Format(RulesFormat::IpsvdDir));
    }
    let data = std::fs::read(path)?;
    Ok(match crate::cdb::records(&data) {
        Ok(recs) => classify(&recs),
        Err(why) => Detected::Unknown(format!("not a cdb: {why}")),
    })
}

/// `--check`'s verdict on rules for a front end: Ok(format) or the FAIL
/// message.
pub fn check_rules(
    spec: &Spec,
    path: &str,
    detected: &Detected,
) -> Result<Option<RulesFormat>, String> {
    match detected {
        Detected::Format(f) if spec.reads.contains(f) => Ok(Some(*f)),
        Detected::Format(f) => Err(mismatch(spec, path, *f)),
        Detected::Empty => Ok(None),
        Detected::Unknown(why) => Err(format!(
            "rules {path}: {why}; {} reads {}",
            spec.name,
            spec.reads
                .iter()
                .map(|f| f.describe())
                .collect::<Vec<_>>()
                .join(" or ")
        )),
    }
}

/// Helpers shared by this crate's unit tests that use real programs.
#[cfg(test)]
pub mod tests_support {
    use std::path::PathBuf;

    /// Whether `prog` is on PATH; if not, skip (print why), or panic in CI
    /// (the tests' one rule, crate::skip).
    pub fn have(prog: &str) -> bool {
        crate::skip::have(prog, crate::skip::which(prog).is_some())
    }

    /// A fresh directory under the target's tmp dir.
    pub fn tempdir(tag: &str) -> Option<PathBuf> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "courier-run-unit-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).ok()?;
        Some(d)
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::{have, tempdir};
    use super::*;
    use std::process::Command;

    fn a<'a>(
        rules: Option<(&'a str, RulesFormat)>,
        address: &'a str,
        maxperip: Option<u32>,
    ) -> Args<'a> {
        Args {
            conlimit: "40",
            maxperip,
            rules,
            address,
            port: "143",
        }
    }

    #[test]
    fn kinds_by_base_name() {
        assert_eq!(Kind::of("/usr/bin/tcpserver"), Some(Kind::Tcpserver));
        assert_eq!(Kind::of("tcpsvd"), Some(Kind::Tcpsvd));
        assert_eq!(Kind::of("/usr/sbin/couriertcpd"), Some(Kind::Couriertcpd));
        assert_eq!(Kind::of("/usr/sbin/courierlogger"), None);
    }

    #[test]
    fn argv_per_front_end() {
        let t = args(
            &TCPSERVER,
            false,
            &a(Some(("r.cdb", RulesFormat::Tcprules)), "0", Some(4)),
        );
        assert_eq!(t.unwrap(), ["-c", "40", "-x", "r.cdb", "0", "143"]);
        let s = args(
            &TCPSVD,
            false,
            &a(Some(("r.cdb", RulesFormat::IpsvdCdb)), "0", Some(4)),
        );
        assert_eq!(
            s.unwrap(),
            ["-c", "40", "-C", "4", "-x", "r.cdb", "0", "143"]
        );
        let s = args(
            &TCPSVD,
            false,
            &a(Some(("inst", RulesFormat::IpsvdDir)), "127.0.0.1", Some(0)),
        );
        assert_eq!(s.unwrap(), ["-c", "40", "-i", "inst", "127.0.0.1", "143"]);
        let e = args(
            &TCPSVD,
            false,
            &a(Some(("r.cdb", RulesFormat::Tcprules)), "0", None),
        );
        assert!(e.unwrap_err().contains("would be ignored"));
        let e = args(
            &TCPSERVER,
            false,
            &a(Some(("i", RulesFormat::IpsvdDir)), "0", None),
        );
        assert!(e.unwrap_err().contains("tcpserver reads a tcprules cdb"));
        assert!(
            args(&TCPSERVER, false, &a(None, "::1", None))
                .unwrap_err()
                .contains("ucspi-tcp-ipv6")
        );
        assert!(
            args(&TCPSVD, false, &a(None, "::", None))
                .unwrap_err()
                .contains("ipsvd 1.0.0")
        );
        assert_eq!(
            args(&TCPSERVER, true, &a(None, "::1", None)).unwrap(),
            ["-c", "40", "::1", "143"]
        );
    }

    #[test]
    fn per_ip() {
        assert!(
            per_ip_note(&TCPSERVER, Some(4))
                .unwrap()
                .contains("not enforced")
        );
        assert_eq!(per_ip_note(&TCPSERVER, Some(0)), None);
        assert_eq!(per_ip_note(&TCPSVD, Some(4)), None);
    }

    #[test]
    fn usage_texts() {
        let plain = "tcpserver: usage: tcpserver [ -1UXpPhHrRoOdDqQv ] [ -c limit ] [ -x rules.cdb ] host port program";
        let v6 = "tcpserver: usage: tcpserver [ -461UXpPhHrRoOdDqQv ] [ -c limit ] [ -I interface ] host port program";
        assert!(!usage_is_ipv6(plain));
        assert!(usage_is_ipv6(v6));
    }

    #[test]
    fn installed_front_ends_ipv6() {
        if have("tcpsvd") {
            assert!(!probe_ipv6(Kind::Tcpsvd, Path::new("tcpsvd")).unwrap());
        }
        if have("tcpserver") {
            // Whichever build is installed, the probe must agree with its
            // usage text.
            let out = Command::new("tcpserver").output().unwrap();
            let text = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(text.contains("usage"), "{text}");
            assert_eq!(
                probe_ipv6(Kind::Tcpserver, Path::new("tcpserver")).unwrap(),
                usage_is_ipv6(&text)
            );
        }
    }

    #[test]
    fn getopt_per_front_end() {
        assert_eq!(
            getopt(&TCPSERVER, &["-v", "-RH", "-l0", "-u", "1000"]).unwrap(),
            vec![
                ('v', None),
                ('R', None),
                ('H', None),
                ('l', Some("0".into())),
                ('u', Some("1000".into()))
            ]
        );
        assert!(
            getopt(&TCPSVD, &["-v", "-RH"])
                .unwrap_err()
                .problem
                .contains("no option -R")
        );
        assert_eq!(
            getopt(&TCPSVD, &["-vC4:busy"]).unwrap(),
            vec![('v', None), ('C', Some("4:busy".into()))]
        );
        assert!(
            getopt(&TCPSVD, &["-u"])
                .unwrap_err()
                .problem
                .contains("needs a value")
        );
        assert!(
            getopt(&TCPSERVER, &["0"])
                .unwrap_err()
                .problem
                .contains("host")
        );
    }

    #[test]
    fn identity() {
        let users = |u: &str| (u == "courier").then_some(103);
        let groups = |g: &str| (g == "courier").then_some(106);
        let t = |spec, words: &[&str], uidgid| {
            let opts = getopt(spec, words).unwrap();
            identity_traps(spec, &opts, uidgid, &users, &groups)
        };
        assert!(
            t(&TCPSERVER, &["-u", "courier"], false)[0]
                .problem
                .contains("runs as root")
        );
        assert!(
            t(&TCPSERVER, &["-g", "mail"], false)[0]
                .problem
                .contains("runs as root")
        );
        assert!(t(&TCPSERVER, &["-u", "109", "-g", "113"], false).is_empty());
        assert!(
            t(&TCPSERVER, &["-U"], false)[0]
                .problem
                .contains("stays root")
        );
        assert!(t(&TCPSERVER, &["-U"], true).is_empty());
        assert!(t(&TCPSVD, &["-u", "courier:courier"], false).is_empty());
        assert!(
            t(&TCPSVD, &["-u", "109"], false)[0]
                .problem
                .contains("user NAME")
        );
        assert!(t(&TCPSVD, &["-u", ":109:113"], false).is_empty());
        assert!(
            t(&TCPSVD, &["-u", ":courier"], false)[0]
                .problem
                .contains("number")
        );
        assert!(
            t(&TCPSVD, &["-u", "courier:nogroup"], false)[0]
                .problem
                .contains("no group")
        );
    }

    #[test]
    fn classify_records() {
        let r = |k: &str, d: &[u8]| (k.as_bytes().to_vec(), d.to_vec());
        assert_eq!(
            classify(&[r("127.", b"D\0"), r("", b"")]),
            Detected::Format(RulesFormat::Tcprules)
        );
        assert_eq!(
            classify(&[r("127", b"D"), r("0", b"I")]),
            Detected::Format(RulesFormat::IpsvdCdb)
        );
        assert_eq!(classify(&[]), Detected::Empty);
        assert!(matches!(
            classify(&[r("127", b"D"), r("", b"")]),
            Detected::Unknown(_)
        ));
        assert!(matches!(classify(&[r("x", b"junk")]), Detected::Unknown(_)));
    }

    /// Real cdbs, built at test time by tcprules and ipsvd-cdb, and a
    /// directory: each detected as what it is, and --check's verdict fails
    /// on every mismatch.
    #[test]
    fn detect_real_rules() {
        let Some(dir) = tempdir("detect") else { return };
        if !have("tcprules") || !have("ipsvd-cdb") {
            return;
        }
        let tcp = dir.join("deny.cdb");
        let mut child = Command::new("tcprules")
            .arg(&tcp)
            .arg(dir.join("deny.tmp"))
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"127.:deny\n:allow\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
        let inst = dir.join("inst");
        std::fs::create_dir(&inst).unwrap();
        std::fs::write(inst.join("127"), "").unwrap();
        std::fs::set_permissions(
            inst.join("127"),
            std::os::unix::fs::PermissionsExt::from_mode(0o000),
        )
        .unwrap();
        std::fs::write(inst.join("0"), "+A=1\n").unwrap();
        let ip = dir.join("inst.cdb");
        assert!(
            Command::new("ipsvd-cdb")
                .arg(&ip)
                .arg(dir.join("inst.tmp"))
                .arg(&inst)
                .status()
                .unwrap()
                .success()
        );

        let tcp_d = detect(&tcp).unwrap();
        let ip_d = detect(&ip).unwrap();
        let dir_d = detect(&inst).unwrap();
        assert_eq!(tcp_d, Detected::Format(RulesFormat::Tcprules));
        assert_eq!(ip_d, Detected::Format(RulesFormat::IpsvdCdb));
        assert_eq!(dir_d, Detected::Format(RulesFormat::IpsvdDir));
        // The case: a tcprules cdb given to tcpsvd is a FAIL.
        let e = check_rules(&TCPSVD, "./deny.cdb", &tcp_d).unwrap_err();
        assert!(e.contains("is a tcprules cdb but tcpsvd reads"), "{e}");
        assert!(check_rules(&TCPSERVER, "x", &ip_d).is_err());
        assert!(check_rules(&TCPSERVER, "x", &dir_d).is_err());
        assert_eq!(
            check_rules(&TCPSVD, "x", &ip_d),
            Ok(Some(RulesFormat::IpsvdCdb))
        );
        assert_eq!(
            check_rules(&TCPSVD, "x", &dir_d),
            Ok(Some(RulesFormat::IpsvdDir))
        );
        assert_eq!(
            check_rules(&TCPSERVER, "x", &tcp_d),
            Ok(Some(RulesFormat::Tcprules))
        );
        std::fs::write(dir.join("junk"), "not a cdb").unwrap();
        assert!(check_rules(&TCPSVD, "junk", &detect(&dir.join("junk")).unwrap()).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
