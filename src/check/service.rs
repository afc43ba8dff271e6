//! Check 11: what makes a started service useless. Courier starts, takes
//! connections, and then nobody can log in: authdaemond is not running
//! ("authentication error: Connection refused"; the client sees "Temporary
//! problem"), or TLS has no usable certificate (the log says only "No
//! supported cipher suites have been found"). Also: Courier's own scripts
//! would not start this service at all (`IMAPDSTART=NO`).

use super::programs::Probed;
use super::{Ctx, Identity, Report};
use crate::authdaemon;
use crate::error::Subject;
use crate::finding::{Finding, Level};
use crate::tls;

pub fn check(ctx: &Ctx, chain: &mut Vec<Probed>, r: &mut Report) {
    let service = ctx.r.service;
    start_var(ctx, r);
    // Courier 5 authenticates through authdaemond when no auth modules are
    // on the command line; a preauthenticated imapd (login= empty) does not.
    // Only Courier's own login programs talk to authdaemond.
    let courier_login = ctx.r.login.as_ref().is_some_and(|l| {
        l.file_name().is_some_and(|n| {
            matches!(
                n.as_encoded_bytes(),
                b"imaplogin" | b"pop3login" | b"courierpop3login"
            )
        })
    });
    if ctx.r.auth.is_empty() && courier_login {
        let layout = ctx.r.settings.layout;
        let prefix = ctx.r.settings.prefix.as_str();
        let rc = authdaemon::default_rc(layout, prefix);
        match authdaemon::socket_path(&rc, layout, prefix) {
            Ok((sock, from)) => push(r, Subject::Authdaemond, authdaemon::probe(&sock, &from)),
            Err(e) => r.fail_error(
                Subject::Line(format!("authdaemond {}", crate::shown::path(&rc))),
                &e,
            ),
        }
        match &ctx.r.wait_authdaemond {
            Some(w) => r.info(
                "wait_authdaemond",
                format!(
                    "yes: the launch exits 111 while {} does not accept, and the supervisor retries (no service with failing logins)",
                    w.socket.display()
                ),
            ),
            None => r.info(
                "wait_authdaemond",
                "no: the service starts even when authdaemond is down (every login then fails)",
            ),
        }
    }
    let starttls = ctx
        .env(service.starttls_var())
        .is_some_and(|v| v.eq_ignore_ascii_case(b"YES"));
    if !(service.is_ssl() || starttls) {
        return;
    }
    // Who opens TLS_CERTFILE: for -ssl, couriertls as the front end starts
    // it (before -user= drops root); for STARTTLS, couriertls as the login
    // program runs it, after it switched to the account.
    let reader = if service.is_ssl() {
        ctx.exec_id.clone()
    } else {
        match &ctx.r.account {
            Some(a) => Identity {
                uid: a.uid,
                gid: a.gid,
                groups: vec![a.gid],
            },
            None => ctx.exec_id.clone(),
        }
    };
    let who = tls::Reader {
        uid: reader.uid,
        gid: reader.gid,
        groups: reader.groups.clone(),
    };
    let what = if service.is_ssl() {
        format!("tls ({service})")
    } else {
        format!("tls (STARTTLS, {}=YES)", service.starttls_var())
    };
    for f in tls::check_env(|n| ctx.env(n), &who, tls::now()) {
        push(r, Subject::Line(what.clone()), f);
    }
    // couriertls must exist, and load under the limits (the memory probe
    // runs every program of `chain`). For -ssl it is in argv already.
    let path = match ctx.env("COURIERTLS") {
        Some(v) if !v.is_empty() && !service.is_ssl() => {
            std::path::PathBuf::from(String::from_utf8_lossy(&v).into_owned())
        }
        _ => ctx.r.couriertls.clone(),
    };
    if chain.iter().any(|p| p.path == path) {
        return;
    }
    let check = format!("program {} (couriertls)", crate::shown::path(&path));
    match super::programs::executable(&path, &reader) {
        Ok(()) => {
            r.ok(check);
            chain.push(Probed {
                role: "couriertls".into(),
                path,
                usable: true,
                id: reader,
            });
        }
        Err((why, fix)) => r.fail(
            check,
            why,
            fix.unwrap_or_else(|| {
                "install couriertls (Debian: courier-base), or set COURIERTLS to it".into()
            }),
        ),
    }
}

/// `IMAPDSTART=NO` (and its siblings): Courier's own scripts would not
/// start this service; courier-run does, as asked, but says so.
fn start_var(ctx: &Ctx, r: &mut Report) {
    let var = ctx.r.service.start_var();
    if let Some(a) = ctx.var(var)
        && a.value.eq_ignore_ascii_case(b"NO")
    {
        r.warn(
            var,
            format!(
                "{}: {var}=NO: Courier's own rc script would not start {}",
                a.pos,
                ctx.r.service.name()
            ),
            format!("set {var}=YES if this service is meant to run, or remove the service"),
        );
    }
}

/// A probe's finding as a line about `what` (an ok line says the finding
/// in its first column).
fn push(r: &mut Report, what: Subject, f: Finding) {
    match f.level {
        Level::Ok => r.ok(format!("{what}: {}", f.message)),
        Level::Warn => r.warn(what, f.message, f.fix),
        Level::Fail => r.fail(what, f.message, f.fix),
    }
}
