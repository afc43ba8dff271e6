//! Check 10: the Maildir, when it can be known before a user logs in: the
//! path is absolute, or imapd runs preauthenticated (no login program), in
//! which case a relative path is relative to the service's directory.

use std::path::Path;

use super::{Ctx, Report};

pub fn check(ctx: &Ctx, r: &mut Report) {
    let (dir, origin) = (&ctx.r.maildir.text, &ctx.r.maildir.origin);
    let preauth = ctx.r.login.is_none();
    // The path as messages show it (src/shown.rs): escaped, cut.
    let shown = crate::shown::path(dir);
    let what = format!("maildir {shown}");
    if !preauth && !dir.starts_with('/') {
        r.info(
            what,
            "relative to each user's home directory: checked when a user logs in, not here",
        );
        return;
    }
    let path = Path::new(dir);
    match std::fs::metadata(path) {
        Err(_) => {
            r.fail(
                what,
                format!("does not exist ({origin})"),
                format!("create it with maildirmake {shown}"),
            );
            return;
        }
        Ok(m) if !m.is_dir() => {
            r.fail(
                what,
                format!("is not a directory ({origin})"),
                "set maildir= to a Maildir",
            );
            return;
        }
        Ok(_) => {}
    }
    let missing: Vec<&str> = ["cur", "new", "tmp"]
        .into_iter()
        .filter(|d| !path.join(d).is_dir())
        .collect();
    if missing.is_empty() {
        r.ok(what);
    } else {
        r.fail(
            what,
            format!("is not a Maildir: no {} ({origin})", missing.join(", ")),
            format!("create it with maildirmake {shown}, or set maildir= to a Maildir"),
        );
    }
}
