//! The programs of the chain: login, auth modules, imapd, the server's
//! own path, and the authdaemond socket the launch waits for.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Exit, Position, Problem};
use crate::settings::Settings;

use super::values::choice;

/// `wait_authdaemond=yes` for a chain that authenticates through
/// authdaemond: the socket the launch connects to first. authdaemonrc
/// unreadable: the layout's socket, with a warning.
pub(super) fn wait_authdaemond(
    settings: &Settings,
    login: &Option<PathBuf>,
    auth: &[PathBuf],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<crate::authdaemon::Wait> {
    use crate::authdaemon;
    if !choice(settings, "wait_authdaemond", ["yes", "no"], problems)
        || !authdaemon::uses_authdaemond(login.as_deref(), auth)
    {
        return None;
    }
    let (layout, prefix) = (settings.layout, settings.str("prefix"));
    let rc = authdaemon::default_rc(layout, prefix);
    let (socket, from) = authdaemon::socket_path(&rc, layout, prefix).unwrap_or_else(|e| {
        warnings.push(format!(
            "wait_authdaemond: {}: using the layout's socket",
            crate::error::describe(&e)
        ));
        (
            authdaemon::default_var(layout, prefix).join("socket"),
            "the layout's default".into(),
        )
    });
    Some(authdaemon::Wait { socket, from })
}

/// The programs after the front end.
pub(super) struct Chain {
    pub(super) login: Option<PathBuf>,
    /// Auth modules in chain order.
    pub(super) auth: Vec<PathBuf>,
    pub(super) imapd: PathBuf,
}

/// login, auth modules and imapd as paths. login= empty: imapd runs alone,
/// preauthenticated as the user tcpserver runs as (`* PREAUTH`); auth
/// modules then have nothing to hand credentials to.
pub(super) fn chain(settings: &Settings, problems: &mut Vec<Problem>) -> Chain {
    let login = settings.str("login");
    let auth = settings.str("auth");
    let auth_origin = settings.get("auth").origin.position();
    if login.is_empty() && !auth.trim().is_empty() {
        problems.push(Problem::bad(
            "settings",
            auth_origin.clone(),
            "auth modules need a login program, and login is empty",
            "set login=, or auth= for none",
        ));
    }
    let authdir = settings.str("authdir").trim_end_matches('/');
    let mut modules = Vec::new();
    for m in auth.split_ascii_whitespace() {
        if m.contains('/') {
            modules.push(PathBuf::from(m));
        } else if authdir.is_empty() && settings.str("authdir").is_empty() {
            problems.push(Problem::bad(
                format!("auth {}", crate::shown::value(m)),
                auth_origin.clone(),
                format!(
                    "auth module {} is a bare name but authdir is empty",
                    crate::shown::value(m)
                ),
                "set authdir, or give the module's full path",
            ));
        } else {
            modules.push(PathBuf::from(format!("{authdir}/{m}")));
        }
    }
    let imapd = settings.str("imapd");
    if imapd.is_empty() {
        problems.push(Problem::bad(
            "settings",
            settings.get("imapd").origin.position(),
            "imapd is empty",
            "set it to the imapd program",
        ));
    }
    let login = (!login.is_empty()).then(|| PathBuf::from(login));
    Chain {
        login,
        auth: modules,
        imapd: PathBuf::from(imapd),
    }
}

/// Find argv[0] as daemontools' pathexec_run does: a name with a `/` is
/// used as is; else each PATH element in turn (empty means `.`), PATH
/// defaulting to /bin:/usr/bin. Not found: 127; found but not executable:
/// 126 (execve's EACCES).
pub fn find_program(arg0: &[u8], path: Option<&[u8]>) -> Result<PathBuf, Problem> {
    let name = Path::new(OsStr::from_bytes(arg0));
    let candidates: Vec<PathBuf> = if arg0.contains(&b'/') {
        vec![name.to_path_buf()]
    } else {
        path.unwrap_or(b"/bin:/usr/bin")
            .split(|&c| c == b':')
            .map(|d| {
                let d = if d.is_empty() { &b"."[..] } else { d };
                Path::new(OsStr::from_bytes(d)).join(name)
            })
            .collect()
    };
    let mut denied = None;
    for c in &candidates {
        match std::fs::metadata(c) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                return Ok(c.clone());
            }
            Ok(_) => denied = denied.or(Some(c.clone())),
            Err(_) => {}
        }
    }
    let shown = crate::shown::path(name);
    let subject = format!("program {shown} (server)");
    Err(match denied {
        Some(c) => Problem::new(
            Exit::NoExec,
            subject,
            Position::Nowhere,
            format!(
                "unable to run {shown}: {} is not an executable file",
                c.display()
            ),
            "",
        ),
        None if arg0.contains(&b'/') => Problem::new(
            Exit::NotFound,
            subject,
            Position::Nowhere,
            format!("unable to run {shown}: file does not exist"),
            "",
        ),
        None => Problem::new(
            Exit::NotFound,
            subject,
            Position::Nowhere,
            format!(
                "unable to run {shown}: not found in PATH={}",
                crate::shown::shown(
                    path.unwrap_or(b"/bin:/usr/bin"),
                    crate::shown::MAX_SHOWN_PATH
                )
            ),
            "install the front end (ucspi-tcp for tcpserver), or set server= with its full path",
        ),
    })
}
