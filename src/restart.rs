//! `--restart`: a restart that cannot take the service down by itself.
//! The new plan is resolved and checked first (every `--check` probe); on
//! any FAIL the problems are printed and nothing is touched (exit 100).
//! Otherwise the supervisor is asked for a restart and `--probe` is run
//! until it passes or the time is up: exit 0 served, 111 not.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::check::Status;
use crate::error::Exit;
use crate::resolve::{Input, resolve};
use crate::supervise::{self, State};

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub fn run(runfile: &Path, sets: &[String], timeout: Duration) -> anyhow::Result<i32> {
    let say = |s: String| crate::report::output(format!("{s}\n").as_bytes());
    let environ = crate::environ::inherited();
    let input = Input {
        runfile: Some(runfile),
        sets,
        environ: &environ,
    };
    let dir = crate::status::service_dir(runfile);
    let report = crate::check::run(&input, false);
    if report.failed() {
        for i in report.items() {
            if i.status == Status::Fail {
                say(i.line())?;
            }
        }
        say("courier-run: not restarted: the new configuration would not start (the running service is untouched)".into())?;
        return Ok(Exit::Usage as i32);
    }
    let Some(kind) = supervise::detect(&dir) else {
        say(format!(
            "courier-run: cannot restart: no supervisor's supervise/ directory in {}",
            dir.display()
        ))?;
        return Ok(Exit::System as i32);
    };
    let old = match supervise::status(&dir, kind) {
        Ok(State::Up { pid }) => Some(pid),
        Ok(State::Down) => None,
        Ok(State::NoSupervisor) => {
            say(format!(
                "courier-run: cannot restart: {} is not running for {}",
                kind.name(),
                dir.display()
            ))?;
            return Ok(Exit::System as i32);
        }
        Err(e) => {
            say(format!("courier-run: cannot restart: {e}"))?;
            return Ok(Exit::System as i32);
        }
    };
    if let Err(e) = supervise::restart(&dir, kind) {
        say(format!(
            "courier-run: cannot restart: {}",
            crate::error::describe(&e)
        ))?;
        return Ok(Exit::System as i32);
    }
    let t0 = Instant::now();
    let deadline = t0 + timeout;
    let resolved = resolve(&input);
    let mut last = None;
    while Instant::now() < deadline {
        if let Ok(State::Up { pid }) = supervise::status(&dir, kind)
            && Some(pid) != old
        {
            let left = deadline.saturating_duration_since(Instant::now());
            let o = crate::probe::probe(&resolved, left.min(crate::probe::DEFAULT_TIMEOUT));
            if o.state <= crate::probe::PluginState::Warning {
                say(format!(
                    "restarted ({}): pid {} -> {pid}, serving after {} ms: {}",
                    kind.restart_command(&dir),
                    old.map_or("none".into(), |p| p.to_string()),
                    t0.elapsed().as_millis(),
                    o.line()
                ))?;
                return Ok(Exit::Ok as i32);
            }
            last = Some(o.line());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    say(format!(
        "courier-run: restarted, but not serving after {} s: {} (see the service's log)",
        timeout.as_secs(),
        last.unwrap_or_else(|| "no new process".into())
    ))?;
    Ok(Exit::System as i32)
}
