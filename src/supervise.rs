//! The supervisor of a service directory (the run file's directory): which
//! one it is, what it says about the service, and how to ask it for a
//! restart. Read-only except [`restart`].
//!
//! The formats are the supervisors' own (read from their sources):
//! - daemontools `supervise/status`, 18 bytes: TAI64N stamp (12), pid
//!   little-endian (bytes 12..16, 0 when down), paused (16), want `u`/`d`
//!   (17) (svstat.c);
//! - runit `supervise/status`, 20 bytes: the same first 18, then the term
//!   flag and the run state (0 down, 1 run, 2 finish); runit also writes
//!   `supervise/pid` and `supervise/stat` as text (sv.c);
//! - s6 `supervise/status`, 35 bytes: stamp (12), ready stamp (12), pid
//!   big-endian u64 (24..32), wait status (32..34), flags (34: 1 paused,
//!   2 finishing, 4 want up, 8 ready) (libs6 s6_svstatus_unpack.c);
//! - systemd: `systemctl show -p MainPID UNIT` when systemd is PID 1.
//!
//! Whether the supervisor itself runs: each of the three keeps its
//! `supervise/control` FIFO open for reading, so opening it for writing
//! without blocking fails with ENXIO when none does (as svstat's
//! "supervise not running").

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// A supervision suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Supervisor {
    Daemontools,
    Runit,
    S6,
    Systemd,
}

impl Supervisor {
    pub fn name(self) -> &'static str {
        match self {
            Supervisor::Daemontools => "daemontools",
            Supervisor::Runit => "runit",
            Supervisor::S6 => "s6",
            Supervisor::Systemd => "systemd",
        }
    }

    /// The command an admin would type for a restart (for messages).
    pub fn restart_command(self, dir: &Path) -> String {
        let d = dir.display();
        match self {
            Supervisor::Daemontools => format!("svc -t {d}"),
            Supervisor::Runit => format!("sv restart {d}"),
            Supervisor::S6 => format!("s6-svc -r {d}"),
            Supervisor::Systemd => format!("systemctl restart {}", unit_name(dir)),
        }
    }
}

/// Which supervisor runs (or ran) the service in `dir`: its `supervise/`
/// files, else systemd when it is PID 1. None when nothing tells.
pub fn detect(dir: &Path) -> Option<Supervisor> {
    let sup = dir.join("supervise");
    if let Ok(m) = std::fs::metadata(sup.join("status")) {
        match m.len() {
            35 => return Some(Supervisor::S6),
            20 => return Some(Supervisor::Runit),
            18 => return Some(Supervisor::Daemontools),
            _ => {}
        }
    }
    if sup.join("stat").exists() {
        return Some(Supervisor::Runit);
    }
    if dir.join("event").is_dir() {
        return Some(Supervisor::S6);
    }
    if sup.is_dir() {
        return Some(Supervisor::Daemontools);
    }
    if Path::new("/run/systemd/system").is_dir() {
        return Some(Supervisor::Systemd);
    }
    None
}

/// The systemd unit of a service directory: `courier-run-NAME.service`,
/// NAME the directory's name (as `init --supervisor systemd` names it).
pub fn unit_name(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".into());
    format!("courier-run-{name}.service")
}

/// What the supervisor says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// The service runs as `pid`.
    Up { pid: u32 },
    /// The supervisor runs; the service does not (down, or finishing).
    Down,
    /// No supervisor runs for this directory.
    NoSupervisor,
}

/// The service's state, or why it cannot be told.
pub fn status(dir: &Path, kind: Supervisor) -> Result<State, String> {
    if kind == Supervisor::Systemd {
        return systemd_status(dir);
    }
    if !supervisor_running(dir)? {
        return Ok(State::NoSupervisor);
    }
    let path = dir.join("supervise/status");
    let b = std::fs::read(&path).map_err(|e| {
        format!(
            "unable to read {}: {}",
            path.display(),
            crate::error::strerror(&e)
        )
    })?;
    parse_status(kind, &b).ok_or_else(|| {
        format!(
            "{}: {} bytes, not {}'s status format",
            path.display(),
            b.len(),
            kind.name()
        )
    })
}

/// Decode a `supervise/status` file of `kind`.
pub fn parse_status(kind: Supervisor, b: &[u8]) -> Option<State> {
    match kind {
        Supervisor::Daemontools | Supervisor::Runit => {
            if b.len() < 18 {
                return None;
            }
            let pid = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
            // runit: byte 19 is the state; 2 (finish) runs ./finish, not run.
            let finishing = kind == Supervisor::Runit && b.len() >= 20 && b[19] == 2;
            Some(if pid == 0 || finishing {
                State::Down
            } else {
                State::Up { pid }
            })
        }
        Supervisor::S6 => {
            if b.len() < 35 {
                return None;
            }
            let mut p = [0u8; 8];
            p.copy_from_slice(&b[24..32]);
            let pid = u64::from_be_bytes(p);
            let finishing = b[34] & 2 != 0;
            Some(match u32::try_from(pid) {
                Ok(pid) if pid != 0 && !finishing => State::Up { pid },
                _ => State::Down,
            })
        }
        Supervisor::Systemd => None,
    }
}

/// Does a supervisor hold `supervise/control` open for reading?
fn supervisor_running(dir: &Path) -> Result<bool, String> {
    let path = dir.join("supervise/control");
    match std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(format!(
            "unable to open {}: {}",
            path.display(),
            crate::error::strerror(&e)
        )),
    }
}

fn systemd_status(dir: &Path) -> Result<State, String> {
    let unit = unit_name(dir);
    let out = std::process::Command::new("systemctl")
        .args(["show", "-p", "MainPID", "-p", "LoadState", &unit])
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("unable to run systemctl: {}", crate::error::strerror(&e)))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_string)
    };
    if field("LoadState").as_deref() != Some("loaded") {
        return Err(format!(
            "no supervise/ directory in {}, and systemd has no unit {unit}",
            dir.display()
        ));
    }
    match field("MainPID").and_then(|p| p.parse::<u32>().ok()) {
        Some(0) | None => Ok(State::Down),
        Some(pid) => Ok(State::Up { pid }),
    }
}

/// Ask the supervisor to restart the service (and to keep it up): the
/// bytes `svc -u -t`, `sv restart` and `s6-svc -u -r` write into
/// `supervise/control` (so the suites' client programs need not be in
/// PATH), or `systemctl restart UNIT`.
pub fn restart(dir: &Path, kind: Supervisor) -> anyhow::Result<()> {
    use anyhow::Context;
    let bytes: &[u8] = match kind {
        Supervisor::Daemontools => b"ut",
        Supervisor::Runit => b"tcu",
        Supervisor::S6 => b"ur",
        Supervisor::Systemd => {
            let unit = unit_name(dir);
            let st = std::process::Command::new("systemctl")
                .args(["restart", &unit])
                .stdin(std::process::Stdio::null())
                .status()
                .context("unable to run systemctl")?;
            if !st.success() {
                anyhow::bail!("systemctl restart {unit} failed ({st})");
            }
            return Ok(());
        }
    };
    let path: PathBuf = dir.join("supervise/control");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&path)
        .with_context(|| {
            format!(
                "unable to control the service: {} (is its supervisor running?)",
                path.display()
            )
        })?;
    use std::io::Write;
    f.write_all(bytes)
        .with_context(|| format!("unable to write to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemontools_and_runit_pid_is_little_endian() {
        let mut b = vec![0u8; 18];
        b[12..16].copy_from_slice(&4660u32.to_le_bytes());
        b[17] = b'u';
        assert_eq!(
            parse_status(Supervisor::Daemontools, &b),
            Some(State::Up { pid: 4660 })
        );
        let mut r = b.clone();
        r.extend([0, 1]);
        assert_eq!(
            parse_status(Supervisor::Runit, &r),
            Some(State::Up { pid: 4660 })
        );
        r[19] = 2;
        assert_eq!(parse_status(Supervisor::Runit, &r), Some(State::Down));
        b[12..16].copy_from_slice(&[0; 4]);
        assert_eq!(parse_status(Supervisor::Daemontools, &b), Some(State::Down));
        assert_eq!(parse_status(Supervisor::Daemontools, &b[..10]), None);
    }

    #[test]
    fn s6_pid_is_big_endian_u64_and_finishing_is_down() {
        let mut b = vec![0u8; 35];
        b[24..32].copy_from_slice(&77u64.to_be_bytes());
        b[34] = 4 | 8;
        assert_eq!(
            parse_status(Supervisor::S6, &b),
            Some(State::Up { pid: 77 })
        );
        b[34] |= 2;
        assert_eq!(parse_status(Supervisor::S6, &b), Some(State::Down));
    }

    #[test]
    fn detect_by_status_size() {
        let d = std::env::temp_dir().join(format!("cr-sup-{}", std::process::id()));
        std::fs::create_dir_all(d.join("supervise")).unwrap();
        for (n, want) in [
            (18, Supervisor::Daemontools),
            (20, Supervisor::Runit),
            (35, Supervisor::S6),
        ] {
            std::fs::write(d.join("supervise/status"), vec![0u8; n]).unwrap();
            assert_eq!(detect(&d), Some(want));
        }
        // No supervisor reads the control FIFO: not running.
        std::fs::remove_file(d.join("supervise/status")).unwrap();
        nix::unistd::mkfifo(
            &d.join("supervise/control"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert_eq!(status(&d, Supervisor::Daemontools), Ok(State::NoSupervisor));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
