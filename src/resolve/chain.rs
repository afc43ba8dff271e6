//! The programs of the chain: login, auth modules, imapd, the server's
//! own path, and the authdaemond socket the launch waits for.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Exit, Position, Problem, Subject};
use crate::settings::{Name, Settings};

use super::Inherit;
use super::values::choice;
use crate::config::Assignment;
use crate::environ::Environ;

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
    if !choice(settings, Name::WaitAuthdaemond, ["yes", "no"], problems)
        || !authdaemon::uses_authdaemond(login.as_deref(), auth)
    {
        return None;
    }
    let (layout, prefix) = (settings.layout, settings.prefix.as_str());
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
    let login = settings.str(Name::Login);
    let auth = settings.str(Name::Auth);
    let auth_origin = settings.get(Name::Auth).origin.position();
    if login.is_empty() && !auth.trim().is_empty() {
        problems.push(Problem::bad(
            Subject::Settings,
            auth_origin.clone(),
            "auth modules need a login program, and login is empty",
            "set login=, or auth= for none",
        ));
    }
    let authdir = settings.str(Name::Authdir).trim_end_matches('/');
    let mut modules = Vec::new();
    for m in auth.split_ascii_whitespace() {
        if m.contains('/') {
            modules.push(PathBuf::from(m));
        } else if authdir.is_empty() && settings.str(Name::Authdir).is_empty() {
            problems.push(Problem::bad(
                Subject::Auth(crate::shown::value(m)),
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
    let imapd = settings.str(Name::Imapd);
    if imapd.is_empty() {
        problems.push(Problem::bad(
            Subject::Settings,
            settings.get(Name::Imapd).origin.position(),
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
    let subject = Subject::ServerProgram(shown.clone());
    Err(match denied {
        Some(c) => Problem::new(
            Exit::NoExec,
            subject.clone(),
            Position::Nowhere,
            format!(
                "unable to run {shown}: {} is not an executable file",
                c.display()
            ),
            "",
        ),
        None if arg0.contains(&b'/') => Problem::new(
            Exit::NotFound,
            subject.clone(),
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

/// The front end's path: `server`'s first word as pathexec_run finds it in
/// the final PATH; the word itself when not found (reported).
pub(super) fn server_program(
    settings: &Settings,
    server: &[String],
    vars: &[Assignment],
    inherit: &Inherit,
    environ: &Environ,
    problems: &mut Vec<Problem>,
) -> PathBuf {
    // The PATH the program is looked up in is the final environment's: a
    // config PATH wins over the inherited one, as envdir applies it.
    let path = match vars.iter().rev().find(|a| a.name == "PATH") {
        Some(a) => Some(a.value.clone()),
        None if inherit.keeps(b"PATH") => {
            crate::environ::note_read(b"PATH");
            environ
                .iter()
                .find(|(n, _)| n == b"PATH")
                .map(|(_, v)| v.clone())
        }
        None => None,
    };
    match server.first() {
        None => {
            problems.push(Problem::bad(
                Subject::Server,
                settings.get(Name::Server).origin.position(),
                "server is empty",
                "set it to e.g. \"tcpserver -v -RH -l0\"",
            ));
            PathBuf::from("tcpserver")
        }
        Some(arg0) => find_program(arg0.as_bytes(), path.as_deref()).unwrap_or_else(|p| {
            problems.push(p);
            PathBuf::from(arg0)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{one, settings};
    use super::*;
    use crate::frontend::tests_support::tempdir;

    #[test]
    fn auth_modules_need_a_login_program() {
        let mut p = Vec::new();
        let c = chain(&settings("login=\nauth=authpam\n"), &mut p);
        assert!(
            one(&p)
                .message
                .starts_with("auth modules need a login program")
        );
        assert!(c.login.is_none());
    }

    #[test]
    fn a_bare_auth_module_needs_authdir() {
        let mut p = Vec::new();
        let c = chain(
            &settings("login=/l\nauth='authpam /x/authshadow'\nauthdir=\n"),
            &mut p,
        );
        assert!(
            one(&p)
                .message
                .contains("authpam is a bare name but authdir is empty")
        );
        assert_eq!(c.auth, [PathBuf::from("/x/authshadow")]);
        let mut p = Vec::new();
        let c = chain(&settings("login=/l\nauth=authpam\nauthdir=/a/\n"), &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(c.auth, [PathBuf::from("/a/authpam")]);
    }

    #[test]
    fn imapd_must_be_named() {
        let mut p = Vec::new();
        chain(&settings("imapd=\n"), &mut p);
        assert_eq!(one(&p).message, "imapd is empty");
    }

    #[test]
    fn find_program_says_not_found_or_not_executable() {
        let d = tempdir("find-program").expect("a temp dir");
        std::fs::write(d.join("plain"), "").unwrap();
        let path = d.as_os_str().as_bytes();
        let e = find_program(b"plain", Some(path)).unwrap_err();
        assert_eq!(e.code, Exit::NoExec);
        let e = find_program(b"absent", Some(path)).unwrap_err();
        assert_eq!(e.code, Exit::NotFound);
        assert!(e.message.contains("not found in PATH="), "{}", e.message);
        let e = find_program(b"/nonexistent/tcpserver", None).unwrap_err();
        assert!(e.message.ends_with("file does not exist"), "{}", e.message);
        // Found in a later PATH element; an empty element is `.`.
        assert_eq!(
            find_program(b"sh", Some(b"/nonexistent:/bin")).unwrap(),
            PathBuf::from("/bin/sh")
        );
        let _ = std::fs::remove_dir_all(&d);
    }
}
