//! `--check`'s authdaemond probe. Courier 4/5's login programs authenticate
//! through courier-authlib's authdaemond socket; when nothing listens there
//! the service starts, and every login fails with "authentication error:
//! Connection refused" in the log and "Temporary problem" at the client.
//!
//! The socket is `$authdaemonvar/socket`, `authdaemonvar` read from
//! authdaemonrc with the config reader (the file is sh, as the rest).

use std::io::ErrorKind;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::finding::Finding;
use crate::settings::Layout;

/// How long a connect may take before the probe gives up.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The layout's authdaemonrc.
pub fn default_rc(layout: Layout, prefix: &str) -> PathBuf {
    match layout {
        Layout::Debian => PathBuf::from("/etc/courier/authdaemonrc"),
        Layout::Courier2 => PathBuf::from(format!("{prefix}/etc/authdaemonrc")),
    }
}

/// The layout's authdaemonvar, when authdaemonrc does not set it.
pub fn default_var(layout: Layout, prefix: &str) -> PathBuf {
    match layout {
        Layout::Debian => PathBuf::from("/run/courier/authdaemon"),
        Layout::Courier2 => PathBuf::from(format!("{prefix}/var/authdaemon")),
    }
}

/// The socket path: `authdaemonvar` of `rc` (when the file exists and sets
/// it), else the layout's default; plus where that came from.
pub fn socket_path(rc: &Path, layout: Layout, prefix: &str) -> anyhow::Result<(PathBuf, String)> {
    let var = if rc.exists() {
        let mut scope = crate::config::Scope::new([]);
        crate::config::read_file(&mut scope, rc)?;
        scope
            .vars()
            .into_iter()
            .find(|a| a.name == "authdaemonvar" && !a.value.is_empty())
            .map(|a| {
                (
                    PathBuf::from(String::from_utf8_lossy(&a.value).into_owned()),
                    a.pos.to_string(),
                )
            })
    } else {
        None
    };
    let (dir, from) = var.unwrap_or_else(|| {
        (
            default_var(layout, prefix),
            "the layout's default".to_string(),
        )
    });
    Ok((dir.join("socket"), from))
}

/// Connect to authdaemond's socket (bounded by [`CONNECT_TIMEOUT`]).
pub fn probe(socket: &Path, from: &str) -> Finding {
    let fix = "start authdaemond: /usr/sbin/authdaemond start (Debian: systemctl start courier-authdaemon), or run it under a supervisor";
    let what = format!(
        "authdaemond's socket {} (authdaemonvar: {from})",
        socket.display()
    );
    let (tx, rx) = mpsc::channel();
    let path = socket.to_path_buf();
    // A connect to a socket whose backlog is full blocks: do it aside and
    // stop waiting after the timeout (the thread ends with the process).
    std::thread::spawn(move || {
        let _ = tx.send(UnixStream::connect(&path).map(drop));
    });
    match rx.recv_timeout(CONNECT_TIMEOUT) {
        Ok(Ok(())) => Finding::ok(format!("{what} accepts connections")),
        Ok(Err(e)) if e.kind() == ErrorKind::NotFound => Finding::fail(
            format!(
                "{what} does not exist: authdaemond is not running, and every login fails (\"authentication error: Connection refused\")"
            ),
            fix,
        ),
        Ok(Err(e)) if e.kind() == ErrorKind::ConnectionRefused => Finding::fail(
            format!(
                "{what}: nothing accepts connections (authdaemond stopped, the socket is stale): every login fails"
            ),
            fix,
        ),
        Ok(Err(e)) if e.kind() == ErrorKind::PermissionDenied => Finding::fail(
            format!("{what}: permission denied"),
            "run --check as root (the login program connects as root)",
        ),
        Ok(Err(e)) => Finding::fail(format!("{what}: unable to connect: {e}"), fix),
        Err(_) => Finding::warn(
            format!(
                "{what}: no answer to connect within {} s (authdaemond busy or hung)",
                CONNECT_TIMEOUT.as_secs()
            ),
            "look at authdaemond's log; raise `daemons` in authdaemonrc",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Level;
    use std::os::unix::net::UnixListener;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cr-authd-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn debian_authdaemonrc_names_the_socket() {
        let rc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12/authdaemonrc");
        let (p, from) = socket_path(&rc, Layout::Debian, "/usr").unwrap();
        assert_eq!(p, Path::new("/run/courier/authdaemon/socket"));
        assert!(from.contains("authdaemonrc:"), "{from}");
    }

    #[test]
    fn defaults_when_unset_or_missing() {
        let d = tmp("defaults");
        let (p, from) = socket_path(&d.join("none"), Layout::Courier2, "/opt/c").unwrap();
        assert_eq!(p, Path::new("/opt/c/var/authdaemon/socket"));
        assert_eq!(from, "the layout's default");
        std::fs::write(
            d.join("rc"),
            "authmodulelist=\"authpam\"\nauthdaemonvar=\"$HOME_X\"\n",
        )
        .unwrap();
        let (p, _) = socket_path(&d.join("rc"), Layout::Debian, "/usr").unwrap();
        assert_eq!(p, Path::new("/run/courier/authdaemon/socket"));
        std::fs::write(d.join("rc"), "authdaemonvar=/srv/a\n").unwrap();
        let (p, _) = socket_path(&d.join("rc"), Layout::Debian, "/usr").unwrap();
        assert_eq!(p, Path::new("/srv/a/socket"));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn listening_missing_and_stale() {
        let d = tmp("probe");
        let s = d.join("socket");
        let f = probe(&s, "test");
        assert_eq!(f.level, Level::Fail);
        assert!(f.message.contains("does not exist"), "{f}");
        assert!(f.fix.contains("authdaemond start"));

        let l = UnixListener::bind(&s).unwrap();
        let f = probe(&s, "test");
        assert_eq!(f.level, Level::Ok, "{f}");

        drop(l); // the socket file stays: stale
        let f = probe(&s, "test");
        assert_eq!(f.level, Level::Fail, "{f}");
        assert!(f.message.contains("nothing accepts"), "{f}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
