//! Check 9 (tcpserver traps: options it reads silently wrong) and check 8
//! (Courier variables that mean nothing to tcpserver).

use super::{Ctx, Report};
use crate::error::Subject;
use crate::settings::Name;

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

/// Parse `server` as tcpserver's getopt would and report its traps.
pub fn traps(ctx: &Ctx, r: &mut Report) -> Flags {
    let mut f = Flags {
        argv0: ctx.r.server.first().cloned().unwrap_or_default(),
        ..Flags::default()
    };
    let base = f.argv0.rsplit('/').next().unwrap_or("");
    f.tcpserver = base == "tcpserver";
    let before = r.items.len();
    if base == "couriertcpd" {
        // Its options are Courier's rc's: built by courier-run from the
        // config (crate::couriertcpd), nothing silently misread.
        r.ok("server options (couriertcpd, as Courier's rc passes them)");
        return f;
    }
    if base == "tcpsvd" {
        tcpsvd(ctx, r);
        if r.items.len() == before {
            r.ok("server options (tcpsvd)");
        }
        return f;
    }
    if !f.tcpserver {
        if !f.argv0.is_empty() {
            r.info(
                format!("server {}", crate::shown::path(&f.argv0)),
                "not tcpserver: its options are not checked",
            );
        }
        return f;
    }
    // One getopt (resolve's), one table of traps: crate::frontend's, as
    // for tcpsvd.
    use crate::frontend::{TCPSERVER, identity_traps};
    match &ctx.r.front.options {
        Some(Err(t)) => r.fail(Subject::Server, t.problem.clone(), t.fix.clone()),
        Some(Ok(opts)) => f.opts = opts.clone(),
        None => {}
    }
    for (c, v) in &f.opts {
        match (c, v.as_deref()) {
            ('u', Some(v)) if crate::frontend::digits(v) => f.uid = v.parse().ok(),
            ('g', Some(v)) if crate::frontend::digits(v) => f.gid = v.parse().ok(),
            _ => {}
        }
    }
    let has_uid_gid =
        ctx.r.given.account.is_some() || (ctx.env("UID").is_some() && ctx.env("GID").is_some());
    for t in identity_traps(&TCPSERVER, &f.opts, has_uid_gid, &uid_of, &gid_of) {
        r.fail(Subject::Server, t.problem, t.fix);
    }
    if let Some(v) = f.value('c') {
        r.warn(
            Subject::Server,
            format!(
                "-c {v} is overridden by conlimit (courier-run adds -c after the server's options)"
            ),
            "remove -c from server and set conlimit=",
        );
    }
    if f.value('x').is_some() && ctx.r.rules.is_some() {
        r.warn(
            Subject::Server,
            "-x is overridden by rules (courier-run adds -x after the server's options)",
            "remove -x from server and set rules=",
        );
    }
    if !f.has('R') {
        r.warn(
            Subject::Server,
            "without -R, tcpserver asks every client for an ident answer, and waits for it",
            "add -R",
        );
    }
    if !f.has('H') {
        r.warn(
            Subject::Server,
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
fn tcpsvd(ctx: &Ctx, r: &mut Report) {
    use crate::frontend::{TCPSVD, identity_traps};
    match &ctx.r.front.options {
        None => {}
        Some(Err(t)) => r.fail(Subject::Server, t.problem.clone(), t.fix.clone()),
        Some(Ok(opts)) => {
            let traps = identity_traps(&TCPSVD, opts, ctx.r.account.is_some(), &uid_of, &gid_of);
            for t in traps {
                r.fail(Subject::Server, t.problem, t.fix);
            }
            for (c, setting) in [
                ('c', "conlimit"),
                ('C', "MAXPERIP"),
                ('x', "rules"),
                ('i', "rules"),
            ] {
                if opts.iter().any(|(o, _)| *o == c) {
                    r.warn(
                        Subject::Server,
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
    lost_protections(ctx, f, r);
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
    // The variables this service's rc reads (SSLADDRESS, SSLPORT for -ssl).
    let service = ctx.r.service;
    let got = &ctx.r;
    for (setting, var, text, origin) in [
        (
            Name::Address,
            service.address_var(),
            &got.address.text,
            &got.address.origin,
        ),
        (
            Name::Port,
            service.port_var(),
            &got.port.text,
            &got.port.origin,
        ),
        (
            Name::Conlimit,
            "MAXDAEMONS",
            &got.conlimit.text,
            &got.conlimit.origin,
        ),
        (
            Name::Maildir,
            "MAILDIRPATH",
            &got.maildir.text,
            &got.maildir.origin,
        ),
    ] {
        // Only a value that is not the variable's own (a setting, or a
        // stand-in for a refused one) overrides it.
        if let Some(a) = ctx.var(var)
            && text.as_bytes() != a.value
        {
            r.info(
                var,
                format!(
                    "{}={} ({}) is overridden by {setting}={} ({}); {} still sees {}={}",
                    var,
                    crate::shown::value(&a.value),
                    a.pos,
                    crate::shown::value(text),
                    origin,
                    service.server_name(),
                    var,
                    crate::shown::value(&a.value)
                ),
            );
        }
    }
    if r.items.len() == before {
        r.ok("courier settings");
    }
}

/// What couriertcpd would enforce and the chosen front end cannot: each a
/// FAIL with the fix (the launch and --dry-run warn). With couriertcpd,
/// what it does that the others cannot, as ok lines.
fn lost_protections(ctx: &Ctx, f: &Flags, r: &mut Report) {
    use crate::frontend::Kind;
    let kind = ctx.r.front.known.then_some(ctx.r.front.spec.kind);
    let tcpdopts = ctx
        .var("TCPDOPTS")
        .and_then(|a| crate::couriertcpd::words(&String::from_utf8_lossy(&a.value)).ok())
        .unwrap_or_default();
    if kind == Some(Kind::Couriertcpd) {
        let p = crate::couriertcpd::protections(&tcpdopts);
        if !p.is_empty() {
            let list: Vec<String> = p.iter().map(|(w, what)| format!("{w} ({what})")).collect();
            r.ok(format!("couriertcpd enforces {}", list.join(", ")));
        }
        return;
    }
    // A front end courier-run does not know: its options are its own.
    if kind.is_none() {
        return;
    }
    let name = ctx.r.front.spec.name;
    let fix = "use server=couriertcpd (Courier's own front end), or remove it";
    if let Some(a) = ctx.var("MAXPERIP") {
        let v = String::from_utf8_lossy(&a.value);
        if (f.tcpserver || kind == Some(Kind::Tcpserver)) && !v.is_empty() && v != "0" {
            r.fail(
                "MAXPERIP",
                format!(
                    "{}: MAXPERIP={v} is not enforced: tcpserver has no per-IP limit",
                    a.pos
                ),
                format!("use server=couriertcpd, or ipsvd's tcpsvd (-C {v}), or set MAXPERIP=0"),
            );
        }
    }
    for (w, what) in crate::couriertcpd::protections(&tcpdopts) {
        let at = ctx
            .var("TCPDOPTS")
            .map(|a| a.pos.to_string())
            .unwrap_or_default();
        r.fail(
            "TCPDOPTS",
            format!(
                "{at}: {w} ({what}) is not enforced: {name} has no such option, only couriertcpd"
            ),
            format!("{fix} from TCPDOPTS"),
        );
    }
    if kind == Some(Kind::Tcpserver)
        && let Some(a) = &ctx.r.front.access
    {
        for at in crate::couriertcpd::maxcperip_lines(&a.source) {
            r.fail(
                Subject::Access,
                format!("{at}: MAXCPERIP is not enforced: tcpserver has no per-IP limit"),
                format!("{fix} (tcpsvd enforces it too)"),
            );
        }
    }
}
