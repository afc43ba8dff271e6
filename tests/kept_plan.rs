//! The kept plan (src/keep.rs): a start reuses the plan an earlier start
//! computed only while every input is provably unchanged, and never
//! launches what the configs no longer say.
//!
//! Each test starts a service whose front end is a shell script that
//! writes its arguments and environment to a file, so that what the start
//! exec'd can be read back. Whether a start used the kept plan is seen
//! with strace (does it open the config?), where strace is installed (CI
//! installs it); the safety tests do not need it.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// A service directory: run file, config, the recording front end.
struct Svc {
    dir: TempDir,
    out: PathBuf,
}

impl Svc {
    fn new(tag: &str, config: &str, extra: &str) -> Svc {
        let dir = TempDir::new(tag);
        let out = dir.join("exec.out");
        let srv = dir.write(
            "srv",
            format!(
                "#!/bin/sh\n{{ echo \"ARGS $*\"; env | sort; }} > '{}'\n",
                out.display()
            ),
        );
        fs::set_permissions(&srv, fs::Permissions::from_mode(0o755)).unwrap();
        dir.write("conf", config);
        dir.write(
            "run",
            format!(
                "account=\nsoftlimit=\nrules=\nserver={}\nconfig=./conf\nenvdir=./env\nbanner=no\nwait_authdaemond=no\n{extra}",
                srv.display()
            ),
        );
        // Inputs older than the racy window (src/keep.rs RACY_NS).
        std::thread::sleep(Duration::from_millis(150));
        Svc { dir, out }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.dir.path())
            .arg("./run")
            .args(args)
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        c
    }

    /// A supervised start; what the front end was started with.
    fn start(&self) -> String {
        self.start_with(self.cmd(&[]))
    }

    fn start_with(&self, c: Command) -> String {
        let _ = fs::remove_file(&self.out);
        let r = run_cmd(c);
        assert_eq!(
            r.exit(),
            0,
            "start failed: {}{}",
            r.stdout_str(),
            r.stderr_str()
        );
        fs::read_to_string(&self.out).expect("the front end ran")
    }

    /// Did a start use the kept plan? (It does not open the config.)
    fn start_traced(&self) -> Option<(String, bool)> {
        self.start_traced_with(&[])
    }

    /// [`Svc::start_traced`] with these variables in the environment.
    fn start_traced_with(&self, env: &[(&str, &str)]) -> Option<(String, bool)> {
        let strace = which("strace")?;
        let _ = fs::remove_file(&self.out);
        let log = self.dir.join("strace.log");
        let mut c = Command::new(strace);
        c.current_dir(self.dir.path())
            .args(["-f", "-e", "trace=openat,open", "-o"])
            .arg(&log)
            .arg(BIN)
            .arg("./run")
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .envs(env.iter().copied());
        let r = run_cmd(c);
        assert_eq!(r.exit(), 0, "{}{}", r.stdout_str(), r.stderr_str());
        let trace = fs::read_to_string(&log).unwrap();
        let computed = trace.contains("\"./conf\"");
        Some((fs::read_to_string(&self.out).unwrap(), computed))
    }

    fn plan_file(&self) -> PathBuf {
        self.dir.join(".run.plan")
    }

    fn dry_run_verdict(&self) -> String {
        let r = run_cmd(self.cmd(&["--dry-run"]));
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        r.stdout_str()
            .lines()
            .find(|l| l.starts_with("kept plan: "))
            .expect("a kept plan line")
            .to_string()
    }
}

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{out}"))
}

/// Set `p`'s mtime back to `like`'s (same second, same nanosecond): only
/// the ctime, which nobody can set, tells the edit.
fn touch_like(p: &Path, like: &Path) {
    let ok = Command::new("touch")
        .arg("-r")
        .arg(like)
        .arg(p)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn a_second_start_uses_the_kept_plan_and_execs_the_same() {
    let s = Svc::new("kept-same", "PORT=143\nGREETING=hello\n", "");
    let first = s.start();
    let m = fs::metadata(s.plan_file()).expect("the first start kept its plan");
    assert_eq!(m.permissions().mode() & 0o777, 0o600);
    assert!(s.dry_run_verdict().contains("matches this computation"));
    let second = s.start();
    assert_eq!(first, second, "the kept plan exec'd something else");
    if let Some((third, computed)) = s.start_traced() {
        assert!(!computed, "a start with a kept plan read the config");
        assert_eq!(first, third);
    }
}

#[test]
fn an_edit_of_the_same_size_in_the_same_second_is_seen() {
    let s = Svc::new("kept-edit", "PORT=143\nGREETING=hello\n", "");
    assert!(line(&s.start(), "GREETING=").ends_with("hello"));
    let conf = s.dir.join("conf");
    let copy = s.dir.join("conf.before");
    fs::copy(&conf, &copy).unwrap();
    touch_like(&copy, &conf);
    // Same size, same mtime: only the ctime differs.
    fs::write(&conf, "PORT=143\nGREETING=howdy\n").unwrap();
    touch_like(&conf, &copy);
    assert_eq!(
        fs::metadata(&conf).unwrap().len(),
        fs::metadata(&copy).unwrap().len()
    );
    assert!(
        s.dry_run_verdict().contains("stale"),
        "{}",
        s.dry_run_verdict()
    );
    let out = s.start();
    assert!(line(&out, "GREETING=").ends_with("howdy"), "{out}");
    assert!(line(&out, "ARGS").contains(" 143 "), "{out}");
}

#[test]
fn an_inherited_variable_the_config_reads_is_seen() {
    let s = Svc::new("kept-env", "PORT=143\nGREETING=$WHO\n", "");
    let mut c = s.cmd(&[]);
    c.env("WHO", "alice");
    assert!(line(&s.start_with(c), "GREETING=").ends_with("alice"));
    let mut c = s.cmd(&[]);
    c.env("WHO", "alice");
    assert!(line(&s.start_with(c), "GREETING=").ends_with("alice"));
    let mut c = s.cmd(&[]);
    c.env("WHO", "bob");
    let out = s.start_with(c);
    assert!(line(&out, "GREETING=").ends_with("bob"), "{out}");
}

#[test]
fn a_variable_no_config_reads_passes_through_with_the_kept_plan() {
    // systemd gives each start its own INVOCATION_ID: the kept plan holds
    // (nothing read it), and the program gets this start's value.
    let s = Svc::new("kept-pass", "PORT=143\nGREETING=$WHO\n", "");
    let start = |id: &str| {
        let mut c = s.cmd(&[]);
        c.env("WHO", "alice").env("INVOCATION_ID", id);
        s.start_with(c)
    };
    start("one");
    let out = start("two");
    assert!(line(&out, "INVOCATION_ID=").ends_with("two"), "{out}");
    if !have("strace", which("strace").is_some()) {
        return;
    }
    let (out, computed) = s
        .start_traced_with(&[("WHO", "alice"), ("INVOCATION_ID", "three")])
        .expect("strace ran");
    assert!(line(&out, "INVOCATION_ID=").ends_with("three"), "{out}");
    assert!(line(&out, "GREETING=").ends_with("alice"), "{out}");
    assert!(!computed, "a variable nobody reads made the start compute");
}

#[test]
fn a_changed_uid_of_the_account_is_seen() {
    if !have("root (useradd, usermod)", is_root()) || !have("useradd", which("useradd").is_some()) {
        return;
    }
    let name = format!("crkept{}", std::process::id() % 100000);
    let _ = Command::new("userdel").arg(&name).status();
    let ok = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
        ])
        .arg(&name)
        .status()
        .unwrap()
        .success();
    assert!(ok, "useradd {name}");
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let _ = Command::new("userdel").arg(&self.0).status();
        }
    }
    let _gone = Gone(name.clone());
    let s = Svc::new("kept-uid", "PORT=143\n", "");
    let run = s.dir.join("run");
    let text = fs::read_to_string(&run)
        .unwrap()
        .replace("account=\n", &format!("account={name}\n"));
    fs::write(&run, text).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let uid = |out: &str| line(out, "UID=").trim_start_matches("UID=").to_string();
    let before = uid(&s.start());
    assert_eq!(uid(&s.start()), before);
    let new = (before.parse::<u32>().unwrap() + 4321).to_string();
    let ok = Command::new("usermod")
        .args(["-u", &new])
        .arg(&name)
        .status()
        .unwrap()
        .success();
    assert!(ok, "usermod -u {new}");
    assert_eq!(uid(&s.start()), new, "the kept plan kept the old uid");
}

#[test]
fn a_file_added_to_the_access_list_directory_is_compiled() {
    if !have("tcprules", which("tcprules").is_some()) {
        return;
    }
    let s = Svc::new("kept-access", "PORT=143\n", "");
    let list = s.dir.mkdir("access", 0o755);
    fs::write(list.join("a"), "127.0.0.1\tallow\n").unwrap();
    let run = s.dir.join("run");
    let text = fs::read_to_string(&run)
        .unwrap()
        .replace("rules=\n", &format!("access={}\n", list.display()));
    fs::write(&run, text).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let out = s.start();
    let rules = line(&out, "ARGS")
        .split(' ')
        .skip_while(|w| *w != "-x")
        .nth(1)
        .unwrap()
        .to_string();
    let rules = s.dir.join(rules);
    let before = fs::read(&rules).unwrap();
    s.start(); // keeps the plan (the first start wrote the rules)
    s.start();
    fs::write(list.join("b"), "10.0.0.1\tdeny\n").unwrap();
    s.start();
    assert_ne!(
        fs::read(&rules).unwrap(),
        before,
        "the new file was not compiled"
    );
}

#[test]
fn a_kept_plan_others_could_write_is_ignored_and_replaced() {
    let s = Svc::new("kept-perm", "PORT=143\nGREETING=hello\n", "");
    s.start();
    let p = s.plan_file();
    // Forged: any bytes, and writable by others.
    fs::write(&p, b"courier-run kept plan 1 forged").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o666)).unwrap();
    assert!(
        s.dry_run_verdict().contains("not usable"),
        "{}",
        s.dry_run_verdict()
    );
    assert!(line(&s.start(), "GREETING=").ends_with("hello"));
    assert_eq!(
        fs::metadata(&p).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A good plan made writable by others is not used either.
    std::thread::sleep(Duration::from_millis(150));
    s.start();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o622)).unwrap();
    if let Some((_, computed)) = s.start_traced() {
        assert!(computed, "a group- and world-writable kept plan was used");
    }
}

#[test]
fn a_launch_with_set_keeps_nothing_for_the_plain_start() {
    let s = Svc::new("kept-set", "PORT=143\nGREETING=hello\n", "");
    let r = run_cmd(s.cmd(&["--set", "port=2000"]));
    // --set makes clap parse the command line: the launch goes through
    // the computing path, and keeps nothing.
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    assert!(!s.plan_file().exists(), "a --set launch kept its plan");
    assert!(line(&s.start(), "ARGS").contains(" 143 "));
}

#[test]
fn check_says_whether_the_kept_plan_matches() {
    let s = Svc::new("kept-check", "PORT=143\n", "");
    let check = || {
        let r = run_cmd(s.cmd(&["--check"]));
        r.stdout_str()
            .lines()
            .find(|l| l.contains("kept plan:"))
            .unwrap_or_else(|| panic!("no kept plan line:\n{}", r.stdout_str()))
            .to_string()
    };
    assert!(check().contains("none yet"), "{}", check());
    s.start();
    assert!(check().contains("matches"), "{}", check());
    fs::write(s.dir.join("conf"), "PORT=144\n").unwrap();
    assert!(check().contains("stale"), "{}", check());
}
