//! The envdir's safety findings, reproduced against the
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

/// Make the replaced generations in `parent` look replaced longer ago than
/// the grace the cleanup gives readers.
fn age_generations(parent: &Path) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let then = TimeSpec::new(secs - envdir::GRACE.as_secs() as i64 - 2, 0);
    for n in list(parent) {
        if n.starts_with(".env.old.") {
            utimensat(
                None,
                &parent.join(n),
                &then,
                &then,
                UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }
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

/// Finding: an unmarked directory of variable-named files (a classic
/// run script's envdir, or an /etc-like directory named by mistake) was
/// "adopted": its files were deleted after two starts. Now it is refused
/// (100, with the fix: move it aside) by conf2env, the dry run, --check
/// and the launch, and nothing in it changes. An empty directory holds
/// nothing to lose: it is replaced.
#[test]
fn an_unmarked_directory_is_refused_never_emptied() {
    let t = TempDir::new("safety-unmarked");
    let conf = t.join("conf");
    fs::write(&conf, b"A=new\n").unwrap();
    let env = t.join("env");
    fs::create_dir(&env).unwrap();
    fs::write(env.join("A"), b"old\n").unwrap();
    fs::write(env.join("GONE"), b"x\n").unwrap();
    fs::write(env.join("hostname"), b"mail\n").unwrap();
    let before = tree(t.path());
    for _ in 0..2 {
        let r = conf2env(&env, &[&conf], t.path());
        assert_eq!(r.code, Some(100), "{}", r.stderr_str());
        assert!(r.stderr_str().contains("mv "), "{}", r.stderr_str());
        assert_eq!(tree(t.path()), before, "something changed");
    }
    fs::write(
        t.join("run"),
        "account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig=./conf\nenvdir=./env\nbanner=no\nstderr=keep\n",
    )
    .unwrap();
    let before = tree(t.path());
    for (args, code) in [(&["--dry-run"][..], 100), (&["--check"], 1), (&[], 100)] {
        let mut cmd = Command::new(BIN);
        cmd.arg("./run").args(args).current_dir(t.path());
        let r = run(cmd, t.path(), Duration::from_secs(30));
        assert_eq!(
            r.code,
            Some(code),
            "{args:?}: {}{}",
            r.stdout_str(),
            r.stderr_str()
        );
        if args == ["--check"] {
            assert!(
                r.stdout_str()
                    .lines()
                    .any(|l| l.starts_with("FAIL envdir") && l.contains("no .courier-run marker")),
                "{}",
                r.stdout_str()
            );
        }
        assert_eq!(tree(t.path()), before, "{args:?}: something changed");
    }

    // Moved aside as the message says: written anew, the old files kept.
    fs::rename(&env, t.join("env.orig")).unwrap();
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(list(&t.join("env.orig")), ["A", "GONE", "hostname"]);

    // An empty directory: replaced, and marked.
    let empty = t.join("empty");
    fs::create_dir(&empty).unwrap();
    let r = conf2env(&empty, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(list(&empty), [envdir::MARKER, "A"]);
    assert_eq!(
        envdir::check_target(&empty, &[]).unwrap(),
        envdir::Target::Ours
    );
}

/// Finding: `envdir=` naming the directory that holds the access list
/// (IMAPACCESSFILE) adopted the list as an envdir file and deleted it; the
/// next start ran the front end without its rules. Now every file
/// courier-run reads is protected, present or not: the run file, config
/// files, the access list (`access=` or IMAPACCESSFILE) and the TLS files.
/// An envdir that is one, holds one, lies inside one (a directory list)
/// or would put its generations at its name is refused by the dry run
/// (100), --check (FAIL) and the launch (100), and nothing changes. (A
/// missing IMAPACCESSFILE also stops the launch on its own, fail-closed,
/// with 111: that case expects 111, and the envdir's FAIL in --check.)
#[test]
fn an_envdir_never_takes_a_file_courier_run_reads() {
    // (what, the run file's extra lines, the config, envdir, files to make)
    let cases: &[(&str, &str, &str, &str, &[&str])] = &[
        (
            "the directory holding IMAPACCESSFILE",
            "",
            "A=1\nIMAPACCESSFILE=./acl/imapaccess\n",
            "./acl",
            &["acl/imapaccess"],
        ),
        (
            "the directory holding access=",
            "access=./acl/imapaccess\n",
            "A=1\n",
            "./acl",
            &["acl/imapaccess"],
        ),
        (
            "the directory where a missing IMAPACCESSFILE would be",
            "",
            "A=1\nIMAPACCESSFILE=./acl/imapaccess\n",
            "./acl",
            &["acl/B"],
        ),
        (
            "an access list that is a directory",
            "access=./acl\n",
            "A=1\n",
            "./acl",
            &["acl/rules"],
        ),
        (
            "inside an access list directory",
            "access=./acl\n",
            "A=1\n",
            "./acl/env",
            &["acl/rules"],
        ),
        (
            "the directory holding TLS_CERTFILE",
            "",
            "A=1\nTLS_CERTFILE=./ssl/imapd.pem\n",
            "./ssl",
            &["ssl/imapd.pem"],
        ),
        (
            "the directory holding TLS_TRUSTCERTS",
            "",
            "A=1\nTLS_TRUSTCERTS=./ssl/ca.pem\n",
            "./ssl",
            &["ssl/ca.pem"],
        ),
        (
            "the service directory (holding the run file)",
            "",
            "A=1\n",
            "../svc",
            &[],
        ),
        (
            "the access list at a generation's name",
            "access=./.env.old.1-1\n",
            "A=1\n",
            "./env",
            &[".env.old.1-1"],
        ),
    ];
    for (what, extra, conf, dir, files) in cases {
        let t = TempDir::new("safety-reads");
        t.write(
            "svc/run",
            format!(
                "account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig=./conf\nenvdir={dir}\nbanner=no\nstderr=keep\n{extra}"
            ),
        );
        t.write("svc/conf", conf);
        for f in *files {
            t.write(
                format!("svc/{f}"),
                if f.contains("acl") || f.contains("old") {
                    "127.0.0.1\tallow\n"
                } else {
                    "x\n"
                },
            );
        }
        let svc = t.join("svc");
        let before = tree(t.path());
        let stop = if what.contains("missing IMAPACCESSFILE") {
            111
        } else {
            100
        };
        for (args, code) in [(&["--dry-run"][..], stop), (&["--check"], 1), (&[], stop)] {
            let mut cmd = Command::new(BIN);
            cmd.arg("./run").args(args).current_dir(&svc);
            let r = run(cmd, t.path(), Duration::from_secs(30));
            let out = format!("{}{}", r.stdout_str(), r.stderr_str());
            assert_eq!(r.code, Some(code), "{what} {args:?}: {out}");
            if args == ["--check"] {
                assert!(
                    out.lines().any(|l| l.starts_with("FAIL envdir")),
                    "{what}: {out}"
                );
            } else if stop == 100 {
                assert!(out.contains("courier-run reads"), "{what} {args:?}: {out}");
            }
            assert_eq!(tree(t.path()), before, "{what} {args:?}: something changed");
        }
    }
}

/// Finding: a replaced generation `.env.old.*` kept a removed secret
/// world-readable until the next start, after the config was made
/// private. Now a rewrite from a private config closes the generation it
/// replaces at once (mode 700, like the new envdir): another user cannot
/// reach the old secret.
#[test]
fn a_replaced_generation_follows_a_config_made_private() {
    use std::os::unix::fs::PermissionsExt;
    let t = TempDir::new("safety-private-old");
    let conf = t.join("conf");
    fs::write(&conf, b"A=1\nSECRET=hunter2\n").unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let env = t.join("env");
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    // The secret goes, and the config becomes private.
    fs::write(&conf, b"A=1\n").unwrap();
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o600)).unwrap();
    let r = conf2env(&env, &[&conf], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&env), 0o700);
    let old: Vec<String> = t
        .names()
        .into_iter()
        .filter(|n| n.starts_with(".env.old."))
        .collect();
    assert_eq!(old.len(), 1, "{:?}", t.names());
    let old = t.join(&old[0]);
    assert_eq!(
        fs::read(old.join("SECRET")).unwrap(),
        b"hunter2\n",
        "kept whole for readers"
    );
    assert_eq!(
        mode(&old) & 0o077,
        0,
        "the replaced generation is open to others: {:o}",
        mode(&old)
    );
    // As another user (root only): the old secret cannot be read.
    if is_root() && which("setpriv").is_some() {
        let r = run(
            {
                let mut c = Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "cat"])
                    .arg(old.join("SECRET"));
                c
            },
            t.path(),
            Duration::from_secs(10),
        );
        assert_ne!(r.code, Some(0), "nobody read {}", r.stdout_str());
        assert!(!r.stdout_str().contains("hunter2"));
    }
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

    // A mount inside a replaced generation: the first run after the grace
    // removes what it wrote around it and leaves the mount and its content.
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
    age_generations(t.path());
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

/// `conf2env` on an unchanged envdir opens nothing for
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
    // A rewrite leaves the replaced generation, which the first run after
    // the grace removes; the run after that is the one traced.
    fs::write(&conf, b"A=1\n").unwrap();
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    age_generations(t.path());
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

/// For the launch itself: an unchanged restart (the
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
    // The first start writes the envdir; the second is unchanged. The
    // first start whose inputs are older than its own start keeps the plan
    // (src/keep.rs: one write, once): done before the traced start.
    launch(false);
    launch(false);
    age_generations(t.path());
    std::thread::sleep(Duration::from_millis(150));
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

/// The envdir never deletes a file it did not write, in its replaced
/// generations either: the cleanup unlinks only the files the
/// generation's manifest lists, each still the inode it recorded. A file
/// put there since (a variable name, or one replacing a listed file)
/// stays, and so does the generation.
#[test]
fn cleanup_deletes_only_what_the_manifest_lists() {
    let t = TempDir::new("safety-cleanup-manifest");
    let conf = t.join("conf");
    fs::write(&conf, b"A=1\nB=2\n").unwrap();
    let env = t.join("env");
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    fs::write(&conf, b"A=3\n").unwrap();
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    let old: Vec<String> = t
        .names()
        .into_iter()
        .filter(|n| n.starts_with(".env.old."))
        .collect();
    assert_eq!(old.len(), 1, "{:?}", t.names());
    let generation = t.join(&old[0]);
    fs::write(generation.join("NOTES"), b"mine\n").unwrap();
    fs::remove_file(generation.join("B")).unwrap();
    fs::write(generation.join("B"), b"also mine\n").unwrap();
    age_generations(t.path());
    assert_eq!(conf2env(&env, &[&conf], t.path()).code, Some(0));
    assert_eq!(
        list(&generation),
        ["B", "NOTES"],
        "only A and the marker go"
    );
    assert_eq!(fs::read(generation.join("B")).unwrap(), b"also mine\n");
}
