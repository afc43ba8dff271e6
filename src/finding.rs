//! A problem (or a pass) found by a probe, as data: the `--check` line and
//! its fix are renderings of it. Used by the probes of [`crate::tls`] and
//! [`crate::authdaemon`]; `check/` maps them onto its own lines.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub message: String,
    /// What to do about it (empty for `Ok`).
    pub fix: String,
}

impl Finding {
    pub fn ok(message: impl Into<String>) -> Finding {
        Finding {
            level: Level::Ok,
            message: message.into(),
            fix: String::new(),
        }
    }

    pub fn warn(message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warn,
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn fail(message: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding {
            level: Level::Fail,
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let word = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "fail",
        };
        write!(f, "{word}: {}", self.message)?;
        if !self.fix.is_empty() {
            write!(f, " (fix: {})", self.fix)?;
        }
        Ok(())
    }
}
