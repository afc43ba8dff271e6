//! Issue 11, items 1-3 and 6, and issue 12 item 6, reproduced against the
//! binary (`courier-run conf2env`): the envdir replaces only what
//! courier-run wrote, never follows into a mount, leaves no leftover of a
//! killed run, and an unchanged run writes nothing (strace).

mod common;
#[path = "nowrite/mod.rs"]
mod nowrite;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use courier_run::envdir;

fn conf2env(dir: &Path, configs: &[&Path], scratch: &Path) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.arg("conf2env")
        .arg(dir)
        .args(configs)
        .current_dir(scratch)
        .env_clear();
    run(cmd, scratch, Duration::from_secs(30))
}

/// Every file under `root` (not following symlinks) with its content.
fn tree(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mut names: Vec<_> = fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                todo.push(p.clone());
                out.push((p, b"<dir>".to_vec()));
            } else if m.file_type().is_symlink() {
                out.push((
                    p.clone(),
                    fs::read_link(&p)
                        .unwrap()
                        .into_os_string()
                        .into_encoded_bytes(),
                ));
            } else {
                out.push((p.clone(), fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// `envdir=` at the config's own directory: refused (100) before anything
/// is changed, naming the path; the config and its neighbours stay.
#[test]
fn the_config_directory_is_not_an_envdir() {
    let t = TempDir::new("safety-confdir");
    let etc = t.join("etc");
    fs::create_dir_all(etc.join("ssl")).unwrap();
    fs::write(etc.join("imapd"), b"A=1\n").unwrap();
    fs::write(etc.join("ssl/key.pem"), b"secret\n").unwrap();
    let before = tree(t.path());
    let r = conf2env(&etc, &[&etc.join("imapd")], t.path());
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert!(
        r.stderr_str()
            .contains(&format!("envdir {}", etc.display())),
        "{}",
        r.stderr_str()
    );
    assert_eq!(tree(t.path()), before);

    // Without the subdirectory it looks like a classic envdir (imapd is a
    // valid variable name): the config inside is what refuses it.
    fs::remove_dir_all(etc.join("ssl")).unwrap();
    let before = tree(t.path());
    let r = conf2env(&etc, &[&etc.join("imapd")], t.path());
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert!(r.stderr_str().contains("holds"), "{}", r.stderr_str());
    assert_eq!(tree(t.path()), before);
    // An ancestor of the config is refused the same way.
    let r = conf2env(t.path(), &[&etc.join("imapd")], t.path());
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert_eq!(tree(t.path()), before);
}

/// What stands at the path decides: each of these is refused with 100,
/// and nothing anywhere changes.
#[test]
fn refused_targets_are_left_alone() {
    type Setup = fn(&Path);
    let cases: &[(&str, Setup, &str)] = &[
        (
            "a subdirectory",
            |e| fs::create_dir_all(e.join("env/sub")).unwrap(),
            "env",
        ),
        (
            "a symlink inside",
            |e| {
                fs::create_dir(e.join("env")).unwrap();
                symlink("/etc/passwd", e.join("env/A")).unwrap();
            },
            "env",
        ),
        (
            "another dotfile",
            |e| {
                fs::create_dir(e.join("env")).unwrap();
                fs::write(e.join("env/.git"), b"x").unwrap();
            },
            "env",
        ),
        (
            "a name that is not a variable",
            |e| {
                fs::create_dir(e.join("env")).unwrap();
                fs::write(e.join("env/key.pem"), b"x").unwrap();
            },
            "env",
        ),
        (
            "a symlink at the path",
            |e| {
                fs::create_dir(e.join("real")).unwrap();
                symlink("real", e.join("env")).unwrap();
            },
            "env",
        ),
        (
            "a regular file",
            |e| fs::write(e.join("env"), b"keep").unwrap(),
            "env",
        ),
        (
            "the path ends in .",
            |e| fs::create_dir(e.join("env")).unwrap(),
            "env/.",
        ),
        (
            "the path ends in ..",
            |e| fs::create_dir(e.join("env")).unwrap(),
            "env/..",
        ),
        (
            "a name too long for its siblings",
            |_| {},
            &*"E".repeat(230),
        ),
    ];
    for (what, setup, path) in cases {
        let t = TempDir::new("safety-refuse");
        let conf = t.join("conf");
        fs::write(&conf, b"A=1\n").unwrap();
        let w = t.join("w");
        fs::create_dir(&w).unwrap();
        setup(&w);
        let before = tree(t.path());
        let r = conf2env(&w.join(path), &[&conf], t.path());
        assert_eq!(r.code, Some(100), "{what}: {}", r.stderr_str());
        assert!(
            r.stderr_str().starts_with("courier-run: fatal: "),
            "{what}: {}",
            r.stderr_str()
        );
        assert_eq!(tree(t.path()), before, "{what}: something changed");
    }
}

/// A classic envdir (regular files with variable names, no marker) is
/// adopted on the first write, and marked.
#[test]
fn a_classic_envdir_is_adopted() {
    let t = TempDir::new("safety-classic");
    let conf = t.join("conf");
    fs::write(&conf, b"A=new\n").unwrap();
    let env = t.join("env");
    fs::create_dir(&env).unwrap();
    fs::write(env.join("A"), b"old\n").unwrap();
    fs::write(env.join("GONE"), b"x\n").unwrap();
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(list(&env), [envdir::MARKER, "A"]);
    assert_eq!(fs::read(env.join("A")).unwrap(), b"new\n");
    assert_eq!(
        envdir::check_target(&env, &[]).unwrap(),
        envdir::Target::Ours
    );
}

/// Leftovers of killed runs (`.env.new.PID-N` whose PID is dead and whose
/// lock is free) are listed and removed by the next run; one being built
/// (live pid, or lock held) is not touched. Only names courier-run
/// writes are unlinked: a leftover holding anything else stays.
#[test]
fn leftovers_of_killed_runs_are_removed_and_live_ones_kept() {
    let t = TempDir::new("safety-leftovers");
    let conf = t.join("conf");
    fs::write(&conf, b"A=1\n").unwrap();
    let env = t.join("env");
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));

    let dead = {
        let mut c = Command::new("/bin/true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    let me = std::process::id();
    let mk = |name: &str, files: &[&str]| {
        let d = t.join(name);
        fs::create_dir(&d).unwrap();
        for f in files {
            fs::write(d.join(f), b"x\n").unwrap();
        }
        d
    };
    let killed = mk(&format!(".env.new.{dead}-0"), &["A", "B", envdir::MARKER]);
    let legacy = mk(&format!(".env.new.{dead}"), &["A"]);
    let live = mk(&format!(".env.new.{me}-77"), &["A"]);
    let locked = mk(&format!(".env.new.{dead}-5"), &["A"]);
    let lock = fs::File::open(&locked).unwrap();
    #[allow(deprecated)]
    nix::fcntl::flock(
        std::os::fd::AsRawFd::as_raw_fd(&lock),
        nix::fcntl::FlockArg::LockExclusiveNonblock,
    )
    .unwrap();
    let foreign = mk(&format!(".env.new.{dead}-9"), &["A", "notes.txt"]);

    let mut listed = envdir::leftovers(&env);
    listed.sort();
    let mut want = vec![killed.clone(), legacy.clone(), foreign.clone()];
    want.sort();
    assert_eq!(listed, want);

    // An unchanged run removes them too (its only writes).
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert!(!killed.exists() && !legacy.exists());
    assert!(live.join("A").exists() && locked.join("A").exists());
    assert_eq!(
        list(&foreign),
        ["notes.txt"],
        "only what courier-run writes is unlinked"
    );
    drop(lock);
    let mut want = vec![locked, foreign];
    want.sort();
    // A child another test thread forks holds a copy of the lock's
    // descriptor until it execs: give it a moment.
    let mut listed = Vec::new();
    for _ in 0..100 {
        listed = envdir::leftovers(&env);
        listed.sort();
        if listed == want {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        listed, want,
        "once unlocked, and while it holds a foreign file"
    );
}

/// Root only: a bind mount is never followed. At the envdir's path it is
/// refused; inside a replaced generation, cleanup leaves it (and what it
/// shows) alone.
#[test]
fn mounts_are_never_crossed() {
    if !have("root (to bind-mount)", is_root()) {
        return;
    }
    let t = TempDir::new("safety-mount");
    let conf = t.join("conf");
    fs::write(&conf, b"A=1\n").unwrap();
    let precious = t.join("precious");
    fs::create_dir(&precious).unwrap();
    fs::write(precious.join("A"), b"keep\n").unwrap();
    fs::write(precious.join("data"), b"keep\n").unwrap();
    let mount = |src: &Path, dst: &Path| {
        let r = run(
            {
                let mut c = Command::new("mount");
                c.arg("--bind").arg(src).arg(dst);
                c
            },
            t.path(),
            Duration::from_secs(10),
        );
        assert_eq!(r.code, Some(0), "mount: {}", r.stderr_str());
    };
    let umount = |dst: &Path| {
        let _ = Command::new("umount").arg(dst).status();
    };

    // The case: env/.snap is a mount: refused, precious intact.
    let env = t.join("env");
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    fs::create_dir(env.join(".snap")).unwrap();
    mount(&precious, &env.join(".snap"));
    fs::write(&conf, b"A=2\n").unwrap();
    let r = conf2env(&env, &[&conf], t.path());
    umount(&env.join(".snap"));
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert_eq!(list(&precious), ["A", "data"]);
    fs::remove_dir(env.join(".snap")).unwrap();

    // The envdir itself a mount point (same filesystem: st_dev cannot tell).
    let env2 = t.join("env2");
    fs::create_dir(&env2).unwrap();
    mount(&precious, &env2);
    let r = conf2env(&env2, &[&conf], t.path());
    umount(&env2);
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert!(r.stderr_str().contains("mount point"), "{}", r.stderr_str());
    assert_eq!(list(&precious), ["A", "data"]);

    // A mount inside a replaced generation: the next run removes what it
    // wrote around it and leaves the mount and its content.
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let old: Vec<String> = t
        .names()
        .into_iter()
        .filter(|n| n.starts_with(".env.old."))
        .collect();
    assert_eq!(old.len(), 1, "{:?}", t.names());
    let generation = t.join(&old[0]);
    fs::create_dir(generation.join("SUB")).unwrap();
    mount(&precious, &generation.join("SUB"));
    mount(&precious.join("A"), &generation.join("A"));
    fs::write(&conf, b"A=3\n").unwrap();
    let r = conf2env(&env, &[&conf], t.path());
    let inside = list(&generation);
    umount(&generation.join("A"));
    umount(&generation.join("SUB"));
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(inside, ["A", "SUB"], "the mounts stay");
    assert_eq!(list(&precious), ["A", "data"]);
    assert_eq!(fs::read(precious.join("A")).unwrap(), b"keep\n");

    // A bind mount at a sibling's name is not a leftover: nothing in it
    // is unlinked.
    let fake = t.join(".env.old.1-1");
    fs::create_dir(&fake).unwrap();
    mount(&precious, &fake);
    assert!(envdir::leftovers(&env).is_empty());
    envdir::remove_leftovers(&env);
    let seen = list(&fake);
    umount(&fake);
    assert_eq!(seen, ["A", "data"]);
    assert_eq!(list(&precious), ["A", "data"]);
}

/// Issue 12 item 6: `conf2env` on an unchanged envdir opens nothing for
/// writing and renames, unlinks, makes or syncs nothing.
#[test]
fn an_unchanged_run_writes_nothing() {
    if !have(
        "strace",
        which("strace").is_some() && nowrite::strace_works(),
    ) {
        return;
    }
    let t = TempDir::new("safety-nowrite");
    let conf = t.join("conf");
    let mut src = String::new();
    for i in 0..200 {
        src.push_str(&format!("V{i}='value {i}'\n"));
    }
    fs::write(&conf, src).unwrap();
    let env = t.join("env");
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    // A rewrite leaves the replaced generation, which the next run
    // removes; the run after that is the one traced.
    fs::write(&conf, b"A=1\n").unwrap();
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    let before = snapshot(&env);

    let log = t.join("trace");
    let mut cmd = Command::new("strace");
    cmd.args(nowrite::strace_args(&log))
        .arg(BIN)
        .arg("conf2env")
        .arg(&env)
        .arg(&conf)
        .current_dir(t.path());
    let r = run(cmd, t.path(), Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let trace = fs::read_to_string(&log).unwrap();
    assert!(
        trace.contains("newfstatat") || trace.contains("statx"),
        "the trace saw nothing:\n{trace}"
    );
    nowrite::assert_no_writes(&trace);
    assert_eq!(snapshot(&env), before);

    // The assertion can fail: a rewrite is caught.
    fs::write(&conf, b"A=2\n").unwrap();
    let r = run(
        {
            let mut c = Command::new("strace");
            c.args(nowrite::strace_args(&log))
                .arg(BIN)
                .arg("conf2env")
                .arg(&env)
                .arg(&conf);
            c
        },
        t.path(),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let w = nowrite::writes(&fs::read_to_string(&log).unwrap());
    for call in ["mkdir", "O_CREAT", "renameat2", "syncfs"] {
        assert!(
            w.iter().any(|l| l.contains(call)),
            "{call} not seen in {w:#?}"
        );
    }
}

/// Issue 12 item 6, for the launch itself: an unchanged restart (the
/// envdir already right, no leftovers) opens nothing for writing and
/// renames, unlinks, makes, syncs or chmods nothing, through the execve of
/// the program (/bin/true, which writes nothing either). A service whose
/// rc resets TLS_CACHEFILE does write that one file, as Courier's rc does
/// (README): this config sets none.
#[test]
fn an_unchanged_launch_writes_nothing() {
    if !have(
        "strace",
        which("strace").is_some() && nowrite::strace_works(),
    ) {
        return;
    }
    let t = TempDir::new("safety-nowrite-launch");
    let mut src = String::new();
    for i in 0..200 {
        src.push_str(&format!("V{i}='value {i}'\n"));
    }
    fs::write(t.join("conf"), src).unwrap();
    fs::write(
        t.join("run"),
        "account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig=./conf\nenvdir=./env\nbanner=no\n",
    )
    .unwrap();
    let launch = |traced: bool| {
        let log = t.join("trace");
        let mut cmd = if traced {
            let mut c = Command::new("strace");
            c.args(nowrite::strace_args(&log)).arg(BIN);
            c
        } else {
            Command::new(BIN)
        };
        cmd.arg("./run").current_dir(t.path());
        let r = run(cmd, t.path(), Duration::from_secs(30));
        assert_eq!(r.code, Some(0), "{}{}", r.stdout_str(), r.stderr_str());
        if traced {
            fs::read_to_string(&log).unwrap()
        } else {
            String::new()
        }
    };
    // The first start writes the envdir; the second is unchanged.
    launch(false);
    launch(false);
    let before = snapshot(&t.join("env"));
    let trace = launch(true);
    assert!(
        trace.contains("execve(\"/bin/true\""),
        "the trace did not reach the exec:\n{trace}"
    );
    nowrite::assert_no_writes(&trace);
    assert_eq!(snapshot(&t.join("env")), before);
    // The assertion can fail: a changed config is a rewrite, and is seen.
    fs::write(t.join("conf"), b"A=1\n").unwrap();
    let w = nowrite::writes(&launch(true));
    assert!(
        w.iter().any(|l| l.contains("renameat2")),
        "the rewrite was not seen: {w:#?}"
    );
}
