//! Check 9 (tcpserver traps: options it reads silently wrong) and check 8
//! (Courier variables that mean nothing to tcpserver).

use super::{Ctx, Report};

/// tcpserver 0.88's getopt string (tcpserver.c): flags, then options that
/// take a value.
const FLAGS: &str = "dDvqQhHrR1UXpPoO";
const VALUED: &str = "xtuglbBc";

/// The `server` setting taken apart.
#[derive(Debug, Default)]
pub struct Flags {
    /// The first word (the program).
    pub argv0: String,
    /// It is ucspi-tcp's tcpserver (its options are known).
    pub tcpserver: bool,
    /// Options in order, each with its value if it takes one.
    pub opts: Vec<(char, Option<String>)>,
    /// tcpserver's numeric -u/-g: who runs the login program.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Flags {
    pub fn has(&self, c: char) -> bool {
        self.opts.iter().any(|(o, _)| *o == c)
    }

    /// The value of the last `-c`-style option (getopt: the last one wins).
    pub fn value(&self, c: char) -> Option<&str> {
        self.opts
            .iter()
            .rev()
            .find(|(o, _)| *o == c)
            .and_then(|(_, v)| v.as_deref())
    }
}

fn digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

/// Parse `server` as tcpserver's getopt would and report its traps.
pub fn traps(ctx: &Ctx, r: &mut Report) -> Flags {
    let server = ctx.r.settings.str("server").to_string();
    let mut words = server.split_ascii_whitespace();
    let mut f = Flags {
        argv0: words.next().unwrap_or("").to_string(),
        ..Flags::default()
    };
    let base = f.argv0.rsplit('/').next().unwrap_or("");
    f.tcpserver = base == "tcpserver";
    let before = r.items.len();
    if base == "tcpsvd" {
        tcpsvd(ctx, &server, r);
        if r.items.len() == before {
            r.ok("server options (tcpsvd)");
        }
        return f;
    }
    if !f.tcpserver {
        if !f.argv0.is_empty() {
            r.info(
                format!("server {}", f.argv0),
                "not tcpserver: its options are not checked",
            );
        }
        return f;
    }
    let words: Vec<&str> = words.collect();
    let mut i = 0;
    'words: while i < words.len() {
        let w = words[i];
        i += 1;
        if w == "--" {
            break;
        }
        let Some(letters) = w.strip_prefix('-').filter(|l| !l.is_empty()) else {
            r.fail(
                "server",
                format!("\"{w}\" is not an option: tcpserver would take it as the host, and courier-run's own arguments would shift"),
                "give the host and port with address= and port=",
            );
            break;
        };
        for (k, c) in letters.char_indices() {
            if FLAGS.contains(c) {
                f.opts.push((c, None));
            } else if VALUED.contains(c) {
                let glued = &letters[k + c.len_utf8()..];
                let v = if !glued.is_empty() {
                    glued.to_string()
                } else if i < words.len() {
                    i += 1;
                    words[i - 1].to_string()
                } else {
                    r.fail(
                        "server",
                        format!("-{c} needs a value"),
                        "tcpserver would exit with its usage message",
                    );
                    break 'words;
                };
                f.opts.push((c, Some(v)));
                continue 'words;
            } else {
                r.fail(
                    "server",
                    format!("tcpserver has no option -{c}: it would exit with its usage message"),
                    format!("remove it; tcpserver 0.88 takes -{FLAGS} and -c -x -B -g -u -b -l -t with a value"),
                );
            }
        }
    }
    for (c, what, lookup) in [
        ('u', "uid", uid_of as fn(&str) -> Option<u32>),
        ('g', "gid", gid_of),
    ] {
        let Some(v) = f.value(c).map(str::to_string) else {
            continue;
        };
        if digits(&v) {
            let n = v.parse().ok();
            if c == 'u' {
                f.uid = n
            } else {
                f.gid = n
            }
            continue;
        }
        let fix = match lookup(&v) {
            Some(n) => format!("write -{c} {n}"),
            None => format!("write the numeric {what}"),
        };
        r.fail(
            "server",
            format!("-{c} {v}: tcpserver takes a number and reads \"{v}\" as 0: it would silently keep running as root"),
            fix,
        );
    }
    if f.has('U')
        && ctx.r.settings.str("account").is_empty()
        && (ctx.env("UID").is_none() || ctx.env("GID").is_none())
    {
        r.fail(
            "server",
            "-U reads $UID and $GID, which nothing sets without account=: tcpserver would silently keep running as root",
            "set account= to the account to run as, or drop -U",
        );
    }
    if let Some(v) = f.value('c') {
        r.warn(
            "server",
            format!(
                "-c {v} is overridden by conlimit (courier-run adds -c after the server's options)"
            ),
            "remove -c from server and set conlimit=",
        );
    }
    if f.value('x').is_some() && !ctx.r.settings.str("rules").is_empty() {
        r.warn(
            "server",
            "-x is overridden by rules (courier-run adds -x after the server's options)",
            "remove -x from server and set rules=",
        );
    }
    if !f.has('R') {
        r.warn(
            "server",
            "without -R, tcpserver asks every client for an ident answer, and waits for it",
            "add -R",
        );
    }
    if !f.has('H') {
        r.warn(
            "server",
            "without -H, tcpserver looks up every client's name in DNS, and waits for it",
            "add -H",
        );
    }
    if r.items.len() == before {
        r.ok("server options");
    }
    f
}

/// tcpsvd: its getopt string and its `-u user[:group]` by name
/// ([`crate::frontend`] holds both).
fn tcpsvd(ctx: &Ctx, server: &str, r: &mut Report) {
    use crate::frontend::{TCPSVD, getopt, identity_traps};
    let words: Vec<&str> = server.split_ascii_whitespace().skip(1).collect();
    match getopt(&TCPSVD, &words) {
        Err(t) => r.fail("server", t.problem, t.fix),
        Ok(opts) => {
            let traps = identity_traps(
                &TCPSVD,
                &opts,
                ctx.r.account.is_some(),
                &|u| uid_of(u).is_some(),
                &|g| gid_of(g).is_some(),
            );
            for t in traps {
                r.fail("server", t.problem, t.fix);
            }
            for (c, setting) in [
                ('c', "conlimit"),
                ('C', "MAXPERIP"),
                ('x', "rules"),
                ('i', "rules"),
            ] {
                if opts.iter().any(|(o, _)| *o == c) {
                    r.warn(
                        "server",
                        format!("-{c} in server is overridden by {setting} (courier-run adds its own after the server's options)"),
                        format!("remove -{c} from server and set {setting}"),
                    );
                }
            }
        }
    }
}

fn uid_of(name: &str) -> Option<u32> {
    nix::unistd::User::from_name(name)
        .ok()
        .flatten()
        .map(|u| u.uid.as_raw())
}

fn gid_of(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

/// Variables only couriertcpd, courierlogger or the rc script read.
const TCPD_ONLY: &[&str] = &[
    "PIDFILE",
    "TCPDOPTS",
    "LOGGEROPTS",
    "IMAPDSTART",
    "IMAPDSSLSTART",
    "POP3DSTART",
    "POP3DSSLSTART",
    "SSLPIDFILE",
    "SSLLOGGEROPTS",
];

/// Courier settings that cannot apply with this front end.
pub fn courier(ctx: &Ctx, f: &Flags, r: &mut Report) {
    let before = r.items.len();
    if let Some(a) = ctx.var("MAXPERIP") {
        let v = String::from_utf8_lossy(&a.value);
        if f.tcpserver && !v.is_empty() && v != "0" {
            r.warn(
                "MAXPERIP",
                format!(
                    "{}: MAXPERIP={v} is not enforced: tcpserver has no per-IP limit",
                    a.pos
                ),
                format!("use ipsvd's tcpsvd -C {v} as server, or remove MAXPERIP"),
            );
        }
    }
    let passed: Vec<&str> = TCPD_ONLY
        .iter()
        .copied()
        .filter(|n| ctx.var(n).is_some())
        .collect();
    if !passed.is_empty() {
        r.info(
            "couriertcpd variables",
            format!(
                "{} reach {}'s environment, but only couriertcpd, courierlogger or Courier's rc script read them",
                passed.join(", "),
                ctx.r.service.server_name()
            ),
        );
    }
    for (setting, var) in [
        ("address", "ADDRESS"),
        ("port", "PORT"),
        ("conlimit", "MAXDAEMONS"),
        ("maildir", "MAILDIRPATH"),
    ] {
        let s = ctx.r.settings.get(setting);
        if let (Some(v), Some(a)) = (&s.value, ctx.var(var))
            && v.as_bytes() != a.value
        {
            r.info(
                var,
                format!(
                    "{}={} ({}) is overridden by {setting}={v} ({}); imapd still sees {}={}",
                    var,
                    String::from_utf8_lossy(&a.value),
                    a.pos,
                    s.origin,
                    var,
                    String::from_utf8_lossy(&a.value)
                ),
            );
        }
    }
    if r.items.len() == before {
        r.ok("courier settings");
    }
}
