//! Which supervisor runs a service directory, and asking it to signal the
//! service. daemontools' supervise, runit's runsv and s6-supervise all keep
//! `supervise/control`, a FIFO they read one-letter commands from (`h`:
//! SIGHUP to the service); `svc -h`, `sv hup` and `s6-svc -h` write that
//! letter, and so do we. Opening the FIFO without blocking fails with ENXIO
//! when no supervisor reads it: "not running", as svc says.
//!
//! Told apart by the files each one keeps (read on Debian 12):
//! - runit: `supervise/stat` and `supervise/pid` (text files);
//! - s6: `event/` beside `supervise/`, or `supervise/death_tally`;
//! - daemontools: `supervise/status` (18 bytes) and neither of those.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Daemontools,
    Runit,
    S6,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Daemontools => "daemontools",
            Kind::Runit => "runit",
            Kind::S6 => "s6",
        }
    }

    /// The supervisor's own command for a HUP (for messages).
    pub fn hup_command(self) -> &'static str {
        match self {
            Kind::Daemontools => "svc -h",
            Kind::Runit => "sv hup",
            Kind::S6 => "s6-svc -h",
        }
    }
}

/// A signal a supervisor can send its service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Hup,
}

/// The supervisor whose files are in `service_dir`, if any.
pub fn detect(service_dir: &Path) -> Option<Kind> {
    let sup = service_dir.join("supervise");
    if !sup.is_dir() {
        return None;
    }
    if sup.join("stat").is_file() && sup.join("pid").is_file() {
        return Some(Kind::Runit);
    }
    if service_dir.join("event").is_dir() || sup.join("death_tally").exists() {
        return Some(Kind::S6);
    }
    if sup.join("status").is_file() {
        return Some(Kind::Daemontools);
    }
    None
}

/// Ask the supervisor of `service_dir` to send `sig` to the service.
pub fn signal(kind: Kind, service_dir: &Path, sig: Signal) -> anyhow::Result<()> {
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
        assert_eq!(detect(&d), Some(Kind::Daemontools));
        std::fs::create_dir(d.join("event")).unwrap();
        assert_eq!(detect(&d), Some(Kind::S6));
        std::fs::remove_dir(d.join("event")).unwrap();
        std::fs::write(d.join("supervise/stat"), "run\n").unwrap();
        std::fs::write(d.join("supervise/pid"), "1\n").unwrap();
        assert_eq!(detect(&d), Some(Kind::Runit));
        // No supervisor reading the control FIFO: an error, not a hang.
        nix::unistd::mkfifo(
            &d.join("supervise/control"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        let e = signal(Kind::Runit, &d, Signal::Hup).unwrap_err();
        assert!(format!("{e:#}").contains("not running"), "{e:#}");
        let _ = std::fs::remove_dir_all(d);
    }
}
