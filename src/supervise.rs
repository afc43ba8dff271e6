//! The supervisor of a service directory (the run file's directory): which
//! one it is, what it says about the service, and asking it to signal or
//! restart the service.
//!
//! daemontools' supervise, runit's runsv and s6-supervise all keep
//! `supervise/control`, a FIFO they read one-letter commands from (`h`:
//! SIGHUP to the service; `t`: SIGTERM, then a new start); `svc -h`,
//! `sv hup` and `s6-svc -h` write that letter, and so do we. Opening the
//! FIFO without blocking fails with ENXIO when no supervisor reads it: "not
//! running", as svc says.
//!
//! Told apart by the files each one keeps (read on Debian 12):
//! - runit: `supervise/stat` and `supervise/pid` (text files), and a
//!   20-byte `supervise/status`: the daemontools layout plus the term flag
//!   and the run state (0 down, 1 run, 2 finish) (sv.c);
//! - s6: `event/` beside `supervise/`, or `supervise/death_tally`, and a
//!   35-byte `supervise/status`: stamp (12), ready stamp (12), pid
//!   big-endian u64 (24..32), wait status (32..34), flags (34: 1 paused,
//!   2 finishing, 4 want up, 8 ready) (libs6 s6_svstatus_unpack.c);
//! - daemontools: `supervise/status`, 18 bytes: TAI64N stamp (12), pid
//!   little-endian (12..16, 0 when down), paused (16), want `u`/`d` (17)
//!   (svstat.c);
//! - systemd: the unit file `init --supervisor systemd` writes into the
//!   directory (`courier-run-SERVICE.service`), asked with `systemctl`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The supervisor that runs a service (`init --supervisor`, `--status`,
/// `--restart`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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

    /// The supervisor's own command for a HUP (for messages).
    pub fn hup_command(self) -> &'static str {
        match self {
            Supervisor::Daemontools => "svc -h",
            Supervisor::Runit => "sv hup",
            Supervisor::S6 => "s6-svc -h",
            Supervisor::Systemd => "systemctl kill -s HUP --kill-whom=main",
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

/// A signal a supervisor can send its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Hup,
}

/// The supervisor whose files are in `service_dir`, if any: a
/// `supervise/` directory, or the systemd unit `init` wrote there.
pub fn detect(service_dir: &Path) -> Option<Supervisor> {
    let sup = service_dir.join("supervise");
    if !sup.is_dir() {
        return crate::systemd::unit_in(service_dir).map(|_| Supervisor::Systemd);
    }
    if sup.join("stat").is_file() && sup.join("pid").is_file() {
        return Some(Supervisor::Runit);
    }
    if service_dir.join("event").is_dir() || sup.join("death_tally").exists() {
        return Some(Supervisor::S6);
    }
    match std::fs::metadata(sup.join("status")).map(|m| m.len()) {
        Ok(35) => Some(Supervisor::S6),
        Ok(20) => Some(Supervisor::Runit),
        Ok(_) => Some(Supervisor::Daemontools),
        Err(_) => None,
    }
}

/// The systemd unit of a service directory: the unit file `init
/// --supervisor systemd` wrote there, else `courier-run-NAME.service`
/// (NAME the directory's name).
pub fn unit_name(dir: &Path) -> String {
    if let Some(u) = crate::systemd::unit_in(dir) {
        return u;
    }
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".into());
    format!("courier-run-{name}.service")
}

/// Ask the supervisor of `service_dir` to send `sig` to the service.
pub fn signal(kind: Supervisor, service_dir: &Path, sig: Signal) -> anyhow::Result<()> {
    if kind == Supervisor::Systemd {
        let unit = unit_name(service_dir);
        let st = std::process::Command::new("systemctl")
            .args(["kill", "-s", "HUP", "--kill-whom=main", &unit])
            .stdin(std::process::Stdio::null())
            .status()
            .context("unable to run systemctl")?;
        if !st.success() {
            anyhow::bail!("systemctl kill -s HUP {unit} failed ({st})");
        }
        return Ok(());
    }
    let letter: &[u8] = match sig {
        Signal::Hup => b"h",
    };
    let control = service_dir.join("supervise/control");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(&control)
        .with_context(|| {
            format!(
                "unable to control {} ({} is not running there?)",
                control.display(),
                kind.name()
            )
        })?;
    f.write_all(letter)
        .with_context(|| format!("unable to write to {}", control.display()))
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
    f.write_all(bytes)
        .with_context(|| format!("unable to write to {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::tests_support::tempdir;

    #[test]
    fn detect_by_files() {
        let Some(d) = tempdir("supervise") else {
            return;
        };
        assert_eq!(detect(&d), None);
        std::fs::create_dir(d.join("supervise")).unwrap();
        assert_eq!(detect(&d), None);
        std::fs::write(d.join("supervise/status"), [0u8; 18]).unwrap();
        assert_eq!(detect(&d), Some(Supervisor::Daemontools));
        std::fs::write(d.join("supervise/status"), [0u8; 20]).unwrap();
        assert_eq!(detect(&d), Some(Supervisor::Runit));
        std::fs::write(d.join("supervise/status"), [0u8; 35]).unwrap();
        assert_eq!(detect(&d), Some(Supervisor::S6));
        std::fs::write(d.join("supervise/status"), [0u8; 18]).unwrap();
        std::fs::create_dir(d.join("event")).unwrap();
        assert_eq!(detect(&d), Some(Supervisor::S6));
        std::fs::remove_dir(d.join("event")).unwrap();
        std::fs::write(d.join("supervise/stat"), "run\n").unwrap();
        std::fs::write(d.join("supervise/pid"), "1\n").unwrap();
        assert_eq!(detect(&d), Some(Supervisor::Runit));
        // No supervisor reading the control FIFO: an error, not a hang;
        // and "no supervisor" for --status.
        nix::unistd::mkfifo(
            &d.join("supervise/control"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = signal(Supervisor::Runit, &d, Signal::Hup).unwrap_err();
        assert!(format!("{e:#}").contains("not running"), "{e:#}");
        assert_eq!(status(&d, Supervisor::Runit), Ok(State::NoSupervisor));
        let _ = std::fs::remove_dir_all(d);
    }

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
}
