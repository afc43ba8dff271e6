//! The dry run, `--check` and the launch agree about the envdir, and the
//! launch never replaces it when the exec cannot succeed:
//!
//! - an envdir whose parent is a symlink (`envdir=./l/env`) is followed,
//!   by all three;
//! - the E2BIG estimate counts the program's path and its `#!`
//!   interpreter: the dry run's boundary is the kernel's, to the byte
//!   (found by exec'ing the very argv and envp the plan prints);
//! - two first starts at once on an absent envdir both succeed.

mod common;

use std::os::unix::fs::symlink;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// courier-run `./run ARGS` in `dir`, with stderr kept apart and the
/// environment cleared (the plan's environment is then the config's).
fn cr(dir: &Path, args: &[&str], stack: Option<u64>) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).arg("./run").args(args).env_clear();
    if let Some(s) = stack {
        limit_stack(&mut cmd, s);
    }
    run_cmd(cmd)
}

/// Run the child under a soft and hard stack limit of `bytes` (so the
/// kernel allows argv and envp a quarter of it, at least 128 KiB).
fn limit_stack(cmd: &mut Command, bytes: u64) {
    use nix::sys::resource::{Resource, setrlimit};
    // SAFETY: setrlimit is async-signal-safe; nothing is allocated.
    unsafe {
        cmd.pre_exec(move || {
            setrlimit(Resource::RLIMIT_STACK, bytes, bytes).map_err(std::io::Error::from)
        });
    }
}

fn run_file(envdir: &str, server: &str) -> String {
    format!(
        "account=\nsoftlimit=\nrules=\nlogin=\nauth=\nimapd=/bin/true\nserver={server}\nconfig=./conf\nenvdir={envdir}\nbanner=no\nstderr=keep\ninherit_env=none\n"
    )
}

/// The `--check` lines about the envdir.
fn check_lines(r: &Ran) -> Vec<String> {
    r.stdout_str()
        .lines()
        .filter(|l| l.contains("envdir"))
        .map(str::to_string)
        .collect()
}

/// Finding: `envdir=./l/env` with `l` a symlink to a directory: the dry
/// run said 0 and --check ok, the launch failed with 111 "Not a
/// directory". Now the parent is followed by all three (only the envdir's
/// own name is never followed): the envdir is `real/env`.
#[test]
fn a_symlinked_parent_is_followed_by_all_three() {
    let t = TempDir::new("agree-symlink-parent");
    t.mkdir("real", 0o755);
    symlink("real", t.join("l")).unwrap();
    t.write("conf", "A=1\n");
    t.write("run", run_file("./l/env", "/bin/true"));

    let dry = cr(t.path(), &["--dry-run"], None);
    assert_eq!(dry.exit(), 0, "{}{}", dry.stdout_str(), dry.stderr_str());
    let check = cr(t.path(), &["--check"], None);
    let lines = check_lines(&check);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ok") && l.contains("would be written"))
            && !lines.iter().any(|l| l.starts_with("FAIL")),
        "{}",
        check.stdout_str()
    );
    let launch = cr(t.path(), &[], None);
    assert_eq!(launch.exit(), 0, "launch: {}", launch.stderr_str());
    assert_eq!(std::fs::read(t.join("real/env/A")).unwrap(), b"1\n");

    // Unchanged: all three say so; changed: rewritten through the link.
    let check = cr(t.path(), &["--check"], None);
    assert!(
        check_lines(&check)
            .iter()
            .any(|l| l.starts_with("ok") && l.contains("up to date")),
        "{}",
        check.stdout_str()
    );
    t.write("conf", "A=2\n");
    let launch = cr(t.path(), &[], None);
    assert_eq!(launch.exit(), 0, "launch: {}", launch.stderr_str());
    assert_eq!(std::fs::read(t.join("real/env/A")).unwrap(), b"2\n");
    assert!(
        std::fs::symlink_metadata(t.join("l"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link itself stays"
    );
}

/// The service of the E2BIG test: a `#!/bin/sh` program at a path of over
/// 400 bytes, a config of one padding variable of `pad` bytes.
struct Big {
    t: TempDir,
    program: std::path::PathBuf,
}

impl Big {
    fn new() -> Big {
        let t = TempDir::new("agree-e2big");
        let long = "d".repeat(200);
        let dir = t.mkdir(format!("{long}/{long}"), 0o755);
        let program = dir.join("prog");
        std::fs::write(&program, b"#!/bin/sh\nexit 0\n").unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        Big { t, program }
    }

    /// A fresh service directory (no envdir yet) padded to `pad` bytes.
    fn service(&self, pad: usize) -> std::path::PathBuf {
        let w = self.t.join("w");
        let _ = std::fs::remove_dir_all(&w);
        std::fs::create_dir(&w).unwrap();
        std::fs::write(w.join("conf"), format!("PAD={}\n", "x".repeat(pad))).unwrap();
        std::fs::write(
            w.join("run"),
            run_file("./env", &self.program.to_string_lossy()),
        )
        .unwrap();
        w
    }
}

const STACK: u64 = 512 * 1024;

/// Finding: the estimate ignored the program's path (and the interpreter
/// a `#!` script adds): in a window of about 400 bytes the dry run said 0
/// while the launch failed 126 with the envdir already replaced. Here the
/// kernel's own boundary is found by exec'ing, under the same stack
/// limit, exactly the argv and envp the plan prints, padded byte by byte;
/// the dry run must say 0 up to that boundary and refuse one byte past
/// it, and the launch one byte past it must refuse (100) without writing
/// the envdir.
#[test]
fn the_e2big_boundary_is_the_kernels() {
    let big = Big::new();
    // The plan's argv and environment at a small size, as JSON.
    let w = big.service(10);
    let dry = cr(&w, &["--dry-run", "--format", "json"], Some(STACK));
    assert_eq!(dry.exit(), 0, "{}", dry.stderr_str());
    let plan: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    let argv: Vec<Vec<u8>> = plan["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().as_bytes().to_vec())
        .collect();
    let env: Vec<(String, String)> = plan["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert!(env.iter().any(|(k, _)| k == "PAD"), "{env:?}");
    assert_eq!(plan["program"].as_str(), big.program.to_str());

    // Does the kernel exec the program with PAD of `pad` bytes?
    let kernel_fits = |pad: usize| -> bool {
        let envp: Vec<Vec<u8>> = env
            .iter()
            .map(|(k, v)| {
                let v = if k == "PAD" {
                    "x".repeat(pad)
                } else {
                    v.clone()
                };
                format!("{k}={v}").into_bytes()
            })
            .collect();
        let mut cmd = Command::new("/bin/true");
        limit_stack(&mut cmd, STACK);
        exec_with_envp(&mut cmd, &big.program, &argv, &envp);
        match try_run(cmd, std::process::Stdio::null(), TIMEOUT) {
            Ok(r) => r.code == Some(0),
            // The exec in pre_exec failed: E2BIG.
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(nix::libc::E2BIG), "{e}");
                false
            }
        }
    };
    let (mut lo, mut hi) = (1_000, 140_000);
    assert!(kernel_fits(lo) && !kernel_fits(hi));
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if kernel_fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    eprintln!(
        "the kernel's last fitting PAD: {lo} bytes (program path {} bytes)",
        big.program.as_os_str().len()
    );

    let w = big.service(lo);
    let dry = cr(&w, &["--dry-run"], Some(STACK));
    assert_eq!(dry.exit(), 0, "at the boundary: {}", dry.stderr_str());
    let launch = cr(&w, &[], Some(STACK));
    assert_eq!(launch.exit(), 0, "at the boundary: {}", launch.stderr_str());
    assert!(w.join("env/PAD").is_file());

    let w = big.service(hi);
    let dry = cr(&w, &["--dry-run"], Some(STACK));
    assert_eq!(
        dry.exit(),
        100,
        "one byte past the boundary: dry run said 0"
    );
    assert!(dry.stderr_str().contains("E2BIG"), "{}", dry.stderr_str());
    let check = cr(&w, &["--check"], Some(STACK));
    assert!(
        check
            .stdout_str()
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("E2BIG")),
        "{}",
        check.stdout_str()
    );
    let launch = cr(&w, &[], Some(STACK));
    assert_eq!(launch.exit(), 100, "{}", launch.stderr_str());
    assert!(
        !w.join("env").exists(),
        "the envdir was written for an exec that could not succeed"
    );
}

/// Finding: two first starts at once on an absent envdir: 98 of 100 pairs
/// had one fail with EEXIST. Now both succeed, and the envdir holds the
/// config whole.
#[test]
fn concurrent_first_starts_both_succeed() {
    let pairs = std::env::var("PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let t = TempDir::new("agree-first-starts");
    let mut conf = String::new();
    for i in 0..50 {
        conf.push_str(&format!("V{i}=value-{i}\n"));
    }
    t.write("conf", &conf);
    t.write("run", run_file("./env", "/bin/true"));
    let mut failures = Vec::new();
    for pair in 0..pairs {
        let _ = std::fs::remove_dir_all(t.join("env"));
        for n in list(t.path()) {
            if n.starts_with(".env.") {
                std::fs::remove_dir_all(t.join(&n)).unwrap();
            }
        }
        let spawn = || {
            Command::new(BIN)
                .current_dir(t.path())
                .arg("./run")
                .env_clear()
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(), spawn());
        for c in [a, b] {
            let out = c.wait_with_output().unwrap();
            if !out.status.success() {
                failures.push(format!(
                    "pair {pair}: {}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        assert_eq!(
            std::fs::read(t.join("env/V49")).unwrap_or_default(),
            b"value-49\n",
            "pair {pair}"
        );
    }
    eprintln!("{pairs} pairs of first starts: {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {} starts failed: {:?}",
        failures.len(),
        2 * pairs,
        &failures[..failures.len().min(3)]
    );
}

/// The exec cannot succeed when the program's `#!` interpreter is not
/// there (ENOENT, 127): the dry run says 127 as the launch would, and the
/// launch refuses before the envdir is written.
#[test]
fn a_missing_interpreter_is_refused_before_writing() {
    let t = TempDir::new("agree-interpreter");
    let prog = t.write("prog", "#!/nonexistent/interpreter -x\nexit 0\n");
    std::fs::set_permissions(&prog, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    t.write("conf", "A=1\n");
    t.write("run", run_file("./env", &prog.to_string_lossy()));
    let dry = cr(t.path(), &["--dry-run"], None);
    assert_eq!(dry.exit(), 127, "{}", dry.stderr_str());
    assert!(
        dry.stderr_str().contains("/nonexistent/interpreter"),
        "{}",
        dry.stderr_str()
    );
    let launch = cr(t.path(), &[], None);
    assert_eq!(launch.exit(), 127, "{}", launch.stderr_str());
    assert!(!t.join("env").exists(), "the envdir was written");
}
