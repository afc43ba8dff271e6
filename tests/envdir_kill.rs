//! Issue 11 items 2 and 9: a rewrite killed at any moment leaves the
//! complete old or the complete new envdir, and a reader looping
//! daemontools' `envdir` during rewrites never gets a mix. Both run the
//! real binary (`courier-run conf2env`) and read with `/usr/bin/envdir`.
//!
//! On tmpfs when one can be mounted (root), else in a temporary directory.
//! `KILLS` and `REWRITES` scale the counts (defaults 200 and 100).

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;

/// A scratch directory, on a fresh tmpfs when we may mount one.
struct Scratch {
    _t: TempDir,
    root: PathBuf,
    mounted: bool,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let t = TempDir::new(tag);
        let root = t.join("fs");
        fs::create_dir(&root).unwrap();
        let mounted = nix::unistd::geteuid().is_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=256m,mode=0755", "tmpfs"])
                .arg(&root)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
        eprintln!(
            "{tag}: on {}",
            if mounted {
                "tmpfs"
            } else {
                "the temp directory's filesystem"
            }
        );
        Scratch {
            _t: t,
            root,
            mounted,
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.root).status();
        }
    }
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config of `n` variables whose values all carry `tag`, plus one
/// variable only this config has: a mix of two shows.
fn config(tag: &str, n: usize) -> (Vec<u8>, Vars) {
    let mut src = Vec::new();
    let mut vars = Vars::new();
    for i in 0..n {
        let v = format!("{tag}-{i}");
        src.extend_from_slice(format!("V{i}={v}\n").as_bytes());
        vars.insert(format!("V{i}").into_bytes(), v.into_bytes());
    }
    src.extend_from_slice(format!("ONLY_{tag}=1\n").as_bytes());
    vars.insert(format!("ONLY_{tag}").into_bytes(), b"1".to_vec());
    (src, vars)
}

fn conf2env_cmd(env: &Path, conf: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("conf2env")
        .arg(env)
        .arg(conf)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    c
}

fn complete_run(env: &Path, conf: &Path) {
    let st = conf2env_cmd(env, conf).status().unwrap();
    assert!(st.success(), "conf2env {}: {st}", conf.display());
}

/// The siblings of the envdir `env`.
fn siblings(env: &Path) -> Vec<String> {
    list(env.parent().unwrap())
        .into_iter()
        .filter(|n| n.starts_with(".env."))
        .collect()
}

/// A small deterministic generator (xorshift), seeded from the clock and
/// printed, so a failure can be replayed with SEED=.
fn rng() -> impl FnMut() -> u64 {
    let mut s: u64 = std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("SEED={s}");
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

#[test]
fn sigkill_at_random_moments_leaves_old_or_new() {
    if !have_envdir() {
        return;
    }
    let kills = count("KILLS", 200);
    let s = Scratch::new("envdir-kill");
    let reads = s.root.join("reads");
    fs::create_dir(&reads).unwrap();
    let env = s.root.join("env");
    let (a_src, a) = config("A", 2_000);
    let (b_src, b) = config("B", 2_000);
    let (ca, cb) = (s.root.join("a"), s.root.join("b"));
    fs::write(&ca, a_src).unwrap();
    fs::write(&cb, b_src).unwrap();

    complete_run(&env, &ca);
    // How long a whole rewrite takes: kills land anywhere in 0..1.2x that.
    let t0 = Instant::now();
    complete_run(&env, &cb);
    let span = t0.elapsed().as_micros().max(1_000) as u64 * 6 / 5;
    let mut next = rng();
    let (mut old, mut new) = (0, 0);
    let started = Instant::now();
    for k in 0..kills {
        // Toward the config the envdir does not hold.
        let now = envdir_vars(&env, &[], &reads).unwrap_or_else(|e| panic!("kill {k}: {e}"));
        let (conf, want) = if now == a { (&cb, &b) } else { (&ca, &a) };
        let mut child = conf2env_cmd(&env, conf).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(next() % span));
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        child.wait().unwrap();
        let got = envdir_vars(&env, &[], &reads).unwrap_or_else(|e| panic!("kill {k}: {e}"));
        if got == *want {
            new += 1;
        } else {
            assert_eq!(got, now, "kill {k}: neither the old nor the new set");
            old += 1;
        }
        // Every twentieth kill: the next complete start leaves no leftover; it
        // keeps only the generation it replaced, if it replaced one, and
        // the start after removes that.
        if k % 20 == 19 {
            complete_run(&env, conf);
            assert!(
                siblings(&env).iter().all(|n| n.starts_with(".env.old."))
                    && siblings(&env).len() <= 1,
                "kill {k}: after the next start: {:?}",
                siblings(&env)
            );
            complete_run(&env, conf);
            assert_eq!(siblings(&env), Vec::<String>::new(), "kill {k}");
        }
    }
    eprintln!(
        "{kills} SIGKILLs in {:?} (rewrite {span} us): {old} left the old set, {new} the new, 0 torn",
        started.elapsed()
    );
    // Both outcomes happened: the kills did land during rewrites.
    assert!(old > 0 && new > 0, "old {old}, new {new}");
}

#[test]
fn a_reader_never_sees_a_mix() {
    if !have_envdir() {
        return;
    }
    let rewrites = count("REWRITES", 100);
    let s = Scratch::new("envdir-reader");
    let env = s.root.join("env");
    let (a_src, a) = config("A", 500);
    let (b_src, b) = config("B", 500);
    let (ca, cb) = (s.root.join("a"), s.root.join("b"));
    fs::write(&ca, a_src).unwrap();
    fs::write(&cb, b_src).unwrap();
    complete_run(&env, &ca);

    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, env, scratch) = (stop.clone(), env.clone(), s.root.join("reads"));
        fs::create_dir(&scratch).unwrap();
        std::thread::spawn(move || {
            let (mut good, mut bad) = (0usize, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match envdir_vars(&env, &[], &scratch) {
                    Ok(v) if v == a || v == b => good += 1,
                    Ok(v) => bad.push(format!("a mix of {} variables", v.len())),
                    Err(e) => bad.push(e),
                }
            }
            (good, bad)
        })
    };
    for i in 0..rewrites {
        complete_run(&env, if i % 2 == 0 { &cb } else { &ca });
    }
    stop.store(true, Ordering::Relaxed);
    let (good, bad) = reader.join().unwrap();
    eprintln!("{rewrites} rewrites: {good} reads, {} wrong", bad.len());
    assert!(
        bad.is_empty(),
        "{} wrong reads: {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
    assert!(good >= 20, "only {good} reads: the test did not race");
}
