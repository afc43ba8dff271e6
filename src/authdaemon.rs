//! `--check`'s authdaemond probe. Courier 4/5's login programs authenticate
//! through courier-authlib's authdaemond socket; when nothing listens there
//! the service starts, and every login fails with "authentication error:
//! Connection refused" in the log and "Temporary problem" at the client.
//!
//! The socket is `$authdaemonvar/socket`, `authdaemonvar` read from
//! authdaemonrc with the config reader (the file is sh, as the rest).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
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
        crate::shown::path(socket)
    );
    // A connect to a socket whose backlog is full blocks: bounded by the
    // socket's send timeout, which Linux applies to a Unix-domain connect.
    // (It was a thread and a channel: a thread is what a low `ulimit -v`
    // refuses first, and it aborted --check.)
    let answer = match connect_within(socket, CONNECT_TIMEOUT) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Err(()),
        r => Ok(r),
    };
    match answer {
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

/// What a connect to authdaemond's socket finds, without waiting: the
/// socket is non-blocking, so a full backlog is [`SocketState::Busy`] at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketState {
    /// A listener took the connection.
    Accepting,
    /// A listener is there, its backlog full (alive, busy).
    Busy,
    /// No socket file (authdaemond never started, or removed it).
    Missing,
    /// A socket file nobody listens on (authdaemond stopped).
    Refused,
    /// Not allowed to connect (not root).
    Denied,
    /// Any other error (errno).
    Error(i32),
}

impl SocketState {
    /// A live authdaemond is there.
    pub fn alive(self) -> bool {
        matches!(self, SocketState::Accepting | SocketState::Busy)
    }

    pub fn describe(self) -> String {
        match self {
            SocketState::Accepting => "accepting".into(),
            SocketState::Busy => "alive, its backlog full".into(),
            SocketState::Missing => "no socket (authdaemond is not running)".into(),
            SocketState::Refused => {
                "nothing accepts (authdaemond stopped; the socket is stale)".into()
            }
            SocketState::Denied => "permission denied".into(),
            SocketState::Error(e) => nix::errno::Errno::from_raw(e).desc().to_string(),
        }
    }
}

/// Connect to `socket` once, non-blocking (a few system calls, no thread:
/// the launch of every mail service with `wait_authdaemond=yes` does it).
pub fn state(socket: &Path) -> SocketState {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    let path = socket.as_os_str().as_bytes();
    // SAFETY: sockaddr_un is plain data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if path.len() >= addr.sun_path.len() || path.contains(&0) {
        return SocketState::Error(libc::ENAMETOOLONG);
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(path) {
        *d = *s as libc::c_char;
    }
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return SocketState::Error(nix::errno::Errno::last_raw());
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un of at least `len` bytes.
    let r = unsafe {
        libc::connect(
            fd,
            (&raw const addr).cast::<libc::sockaddr>(),
            len as libc::socklen_t,
        )
    };
    let err = nix::errno::Errno::last_raw();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    if r == 0 {
        return SocketState::Accepting;
    }
    match err {
        libc::EAGAIN | libc::EINPROGRESS => SocketState::Busy,
        libc::ENOENT | libc::ENOTDIR => SocketState::Missing,
        libc::ECONNREFUSED => SocketState::Refused,
        libc::EACCES | libc::EPERM => SocketState::Denied,
        e => SocketState::Error(e),
    }
}

/// `wait_authdaemond=yes` of a mail service: the socket the launch
/// connects to before anything else, and where its path came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wait {
    pub socket: PathBuf,
    pub from: String,
}

impl Wait {
    /// The launch's gate: Ok when a live authdaemond is there; else the
    /// system failure (111) that makes the supervisor start the service
    /// again a second later, rather than let it take connections whose
    /// every login fails.
    pub fn gate(&self, service: &str) -> anyhow::Result<()> {
        let st = state(&self.socket);
        if st.alive() {
            return Ok(());
        }
        Err(crate::error::coded(
            crate::error::Exit::System,
            format!(
                "authdaemond's socket {} (authdaemonvar: {}): {}: not starting {service} until it accepts, as every login would fail (the supervisor retries; wait_authdaemond=no starts it anyway)",
                self.socket.display(),
                self.from,
                st.describe()
            ),
        ))
    }
}

/// The chain authenticates through authdaemond: Courier's own login
/// program with no auth modules after it (Courier 4/5). A chained module
/// (the 2004 recipe's authpwd) or a preauthenticated imapd does not.
pub fn uses_authdaemond(login: Option<&Path>, auth: &[PathBuf]) -> bool {
    auth.is_empty()
        && login.is_some_and(|l| {
            l.file_name().is_some_and(|n| {
                matches!(
                    n.as_encoded_bytes(),
                    b"imaplogin" | b"pop3login" | b"courierpop3login"
                )
            })
        })
}

/// Connect to `socket`, waiting at most `timeout` for room in a full
/// backlog (then `WouldBlock`).
fn connect_within(socket: &Path, timeout: Duration) -> std::io::Result<()> {
    use nix::libc;
    use std::os::unix::ffi::OsStrExt;
    let bytes = socket.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un is valid; the path is copied in below
    // its end (sun_path keeps its last byte NUL).
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return Err(std::io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: plain system calls on a descriptor owned here and closed
    // before returning; addr and tv outlive the calls that read them.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut r = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDTIMEO,
            (&raw const tv).cast(),
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
        if r == 0 {
            r = loop {
                let r = libc::connect(
                    fd,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t,
                );
                if r == 0 || std::io::Error::last_os_error().kind() != ErrorKind::Interrupted {
                    break r;
                }
            };
        }
        let e = std::io::Error::last_os_error();
        libc::close(fd);
        if r == 0 { Ok(()) } else { Err(e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Level;
    use std::os::unix::net::UnixListener;

    #[test]
    fn connect_within_waits_for_a_full_backlog_no_longer_than_asked() {
        let d = tmp("within");
        let sock = d.join("socket");
        let t = Duration::from_millis(200);
        assert_eq!(
            connect_within(&sock, t).unwrap_err().kind(),
            ErrorKind::NotFound
        );
        let l = UnixListener::bind(&sock).unwrap();
        connect_within(&sock, t).unwrap();
        // Fill the backlog (never accepted): the next connect waits, then
        // gives up after the timeout instead of blocking for ever.
        let mut held = Vec::new();
        let start = std::time::Instant::now();
        let e = loop {
            match connect_within(&sock, t) {
                Ok(()) => held.push(()),
                Err(e) => break e,
            }
            assert!(held.len() < 100_000, "the backlog never filled");
        };
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
        assert!(start.elapsed() < Duration::from_secs(30));
        drop(l);
        assert_eq!(
            connect_within(&sock, t).unwrap_err().kind(),
            ErrorKind::ConnectionRefused
        );
        let _ = std::fs::remove_dir_all(&d);
    }

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

    #[test]
    fn state_and_gate() {
        let d = tmp("state");
        let s = d.join("socket");
        let w = Wait {
            socket: s.clone(),
            from: "test".into(),
        };
        assert_eq!(state(&s), SocketState::Missing);
        let e = w.gate("imapd").unwrap_err();
        assert_eq!(crate::error::exit_code(&e), crate::error::Exit::System);
        let msg = crate::error::describe(&e);
        assert!(msg.contains("not starting imapd until it accepts"), "{msg}");
        assert!(msg.contains("no socket"), "{msg}");
        let l = UnixListener::bind(&s).unwrap();
        assert_eq!(state(&s), SocketState::Accepting);
        w.gate("imapd").unwrap();
        drop(l);
        assert_eq!(state(&s), SocketState::Refused);
        assert!(w.gate("pop3d").is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn who_uses_authdaemond() {
        let l = Path::new("/usr/lib/courier/courier/imaplogin");
        assert!(uses_authdaemond(Some(l), &[]));
        assert!(!uses_authdaemond(Some(l), &[PathBuf::from("/x/authpwd")]));
        assert!(!uses_authdaemond(None, &[]));
        assert!(!uses_authdaemond(Some(Path::new("/bin/true")), &[]));
    }
}
