//! Smoke run of the benchmark: `bash bench/run.sh --quick` runs every case a
//! couple of times end to end and writes both tables and the chart. Timings
//! are not asserted (2 runs on a shared machine mean nothing); that the
//! script works, and that every row and cell is there, is.

#[path = "common/skip.rs"]
#[allow(dead_code)]
mod skip;

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use skip::have;

fn on_path(name: &str) -> bool {
    if name.starts_with('/') {
        return Path::new(name).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
}

fn python_has_matplotlib() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import matplotlib"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn account_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

#[test]
fn quick_run_writes_both_tables_and_the_chart() {
    let tools = [
        ("hyperfine", "hyperfine"),
        ("chpst", "runit's chpst"),
        ("envdir", "daemontools' envdir"),
        ("envuidgid", "daemontools' envuidgid"),
        ("softlimit", "daemontools' softlimit"),
        ("s6-envdir", "s6's s6-envdir"),
        ("s6-envuidgid", "s6's s6-envuidgid"),
        ("s6-softlimit", "s6's s6-softlimit"),
        ("cc", "a C compiler (cc)"),
        ("/usr/bin/time", "GNU time (/usr/bin/time)"),
    ];
    for (bin, what) in tools {
        if !have(what, on_path(bin)) {
            return;
        }
    }
    if !have("python3-matplotlib", python_has_matplotlib()) {
        return;
    }
    // The script creates the account when missing, which needs root.
    let root = nix::unistd::geteuid().is_root();
    if !have(
        "the courierd account, or root to create it",
        root || account_exists("courierd"),
    ) {
        return;
    }

    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("courier-run-bench-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg(manifest.join("bench/run.sh"))
        .args([
            "--quick",
            "--no-install",
            "--bin",
            env!("CARGO_BIN_EXE_courier-run"),
            "--out",
        ])
        .arg(&out)
        .env("BENCH_ACCOUNT", "courierd")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn bash bench/run.sh");
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let timeout = Duration::from_secs(120);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > timeout {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            panic!("bench/run.sh --quick did not finish within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "bench/run.sh --quick failed ({:?}):\n{stderr}",
        output.status
    );

    let md = std::fs::read_to_string(out.join("results.md")).expect("results.md written");
    for row in [
        "| /bin/true |",
        "| C launcher floor (execv /bin/true) |",
        "| chpst -U courierd -e ./env -m 50000000 |",
        "| daemontools: envuidgid envdir softlimit |",
        "| s6: s6-envuidgid s6-envdir s6-softlimit |",
        "| classic script (sed/awk conf2env + daemontools chain) |",
        "| courier-run, envdir unchanged (kept plan) |",
        "| courier-run, envdir unchanged, plan computed and kept |",
        "| courier-run, envdir rewritten |",
        "| courier-run --dry-run |",
    ] {
        assert!(md.contains(row), "side-by-side row {row} missing:\n{md}");
    }
    // chpst's own ratio is exactly 1.00.
    assert!(md.contains("| 1.00× | 1.00× |"), "no ratio to chpst:\n{md}");
    // Both scaling tables (time, RSS) have a row for 10 and 100 variables,
    // every cell measured: nothing skipped, nothing failed.
    assert_eq!(md.matches("\n| 10 | ").count(), 2, "{md}");
    assert_eq!(md.matches("\n| 100 | ").count(), 2, "{md}");
    assert!(!md.contains("skipped") && !md.contains("| |"), "{md}");
    assert!(md.contains("![time against variables](scaling.png)"));
    // (c): the launch built up one step at a time, each step with its cost.
    for row in [
        "| courier-run-main --version (the main program's start-up, no launch) |",
        "| courier-run --version (the launcher, which execs the main program) |",
        "| launch: no config, account, softlimit, access list or envdir |",
        "| + the config files (read, parsed, the rc variables) |",
        "| + envdir, unchanged (the full launch computed, as (a)'s \"plan computed\") |",
        "| + the plan kept by the start before (a supervised restart, as (a)) |",
    ] {
        assert!(md.contains(row), "step row {row} missing:\n{md}");
    }
    let steps = md
        .lines()
        .filter(|l| l.starts_with("| + ") && l.contains(" µs |"))
        .count();
    assert_eq!(steps, 6, "six steps, each with its cost:\n{md}");

    let png = std::fs::read(out.join("scaling.png")).expect("scaling.png written");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "scaling.png is not a PNG"
    );
    assert!(
        png.len() > 10_000,
        "scaling.png is only {} bytes",
        png.len()
    );
    let _ = std::fs::remove_dir_all(&out);
}
