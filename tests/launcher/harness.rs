//! The harness: scratch directories, the recorder and the copy of
//! courier-run built for the run, running courier-run (and the oracles)
//! under controlled conditions, and an envdir's state.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use courier_run::limits::{self, Resource};
use serde_json::Value;

use crate::common::softlimit::pre_map;
use crate::common::{Snapshot, TempDir, snapshot_opt};
use crate::record::Record;

pub use crate::common::{BIN, Ran, is_root, run_cmd};
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/launcher");
/// Debian 12's config files, shared with the config reader's tests.
const SHARED_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const RECORDER_SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/recorder/recorder.rs");

/// The umask every child starts with (not the usual 022, so that a plan
/// without `umask` visibly leaves it alone).
pub const START_UMASK: u32 = 0o027;

/// A [`TempDir`] (0755) holding `bin/` (empty), `etc/` (configs), `svc/`
/// (the service directory, cwd of every child) and `out/` (1777, where the
/// recorder writes); removed on drop.
pub struct Scratch {
    pub root: PathBuf,
    _dir: TempDir,
}

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = TempDir::new(&format!("launcher-{tag}"));
        for d in ["bin", "etc", "svc"] {
            dir.mkdir(d, 0o755);
        }
        dir.mkdir("out", 0o1777);
        Scratch {
            root: dir.path().to_path_buf(),
            _dir: dir,
        }
    }

    pub fn svc(&self) -> PathBuf {
        self.root.join("svc")
    }

    pub fn recorder(&self) -> PathBuf {
        shared_bin().join("recorder")
    }

    pub fn record_path(&self) -> PathBuf {
        self.root.join("out/record")
    }

    /// The `server` setting: the recorder, writing to out/record.
    pub fn server(&self) -> String {
        format!(
            "{} {}",
            self.recorder().display(),
            self.record_path().display()
        )
    }

    /// Copy a fixture into etc/ (world-readable, whatever the checkout's
    /// modes): CI's checkout may live where `nobody` cannot read.
    pub fn fixture(&self, name: &str) -> PathBuf {
        let to = self.root.join("etc").join(name);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let own = Path::new(FIXTURES).join(name);
        let from = if own.exists() {
            own
        } else {
            Path::new(SHARED_FIXTURES).join(name)
        };
        fs::copy(from, &to).unwrap();
        fs::set_permissions(&to, fs::Permissions::from_mode(0o644)).unwrap();
        to
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        p
    }

    /// Replace @ROOT@ (this scratch dir), @BIN@ ([`shared_bin`]) and @FIX@
    /// (the fixtures).
    pub fn subst(&self, s: &str) -> String {
        s.replace("@ROOT@", &self.root.to_string_lossy())
            .replace("@BIN@", &shared_bin().to_string_lossy())
            .replace("@FIX@", FIXTURES)
    }

    pub fn take_record(&self) -> Option<Record> {
        let p = self.record_path();
        let data = fs::read(&p).ok()?;
        fs::remove_file(&p).unwrap();
        Some(Record::parse(&data))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A directory for the executables of this test run, under the system
/// temp dir (0755: `nobody` must be able to exec them, and CI's checkout
/// may live under /root): `recorder`, built here by plain `rustc` (the one
/// on PATH, or $RUSTC), and `courier-run`, a copy for the runs as nobody.
///
/// Both are written by child processes (rustc, cp), never by this one:
/// a test thread forking while this process holds an executable open for
/// writing would make exec'ing it fail with ETXTBSY ("Text file busy").
/// Directories of earlier runs whose process is gone are removed.
pub fn shared_bin() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        let prefix = "courier-run-launcher-bin-";
        for e in fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix(prefix)
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = fs::remove_dir_all(e.path());
            }
        }
        let dir = tmp.join(format!("{prefix}{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
        let out = Command::new(&rustc)
            .args(["--edition", "2021", "-C", "debuginfo=0", "-o"])
            .arg(dir.join("recorder"))
            .arg(RECORDER_SRC)
            .output()
            .unwrap_or_else(|e| panic!("unable to run {rustc:?} to build the recorder: {e}"));
        assert!(
            out.status.success(),
            "building the recorder failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        crate::common::copy_programs(&dir);
        fs::set_permissions(dir.join("recorder"), fs::Permissions::from_mode(0o755)).unwrap();
        dir
    })
}

/// A daemontools (or coreutils) program, by absolute path, so that no PATH
/// of the case decides which one runs.
pub fn tool(name: &str) -> PathBuf {
    for d in ["/usr/bin", "/bin", "/usr/local/bin", "/command"] {
        let p = Path::new(d).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} not found: install daemontools (see .ci/install)");
}

/// The environment every child starts with: nothing of the harness, a few
/// values that an envdir could not carry (the inherited environment is
/// passed through, not written), and names the config or envuidgid change.
pub fn start_env(s: &Scratch) -> Vec<(String, String)> {
    [
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/nonexistent-home"),
        ("LANG", "C.UTF-8"),
        ("TEST_SPACES", "two  spaces\tand a trailing blank "),
        ("TEST_NEWLINE", "line1\nline2"),
        ("TEST_EMPTY", ""),
        ("TEST_QUOTES", "it's \"quoted\" $HOME `x`"),
        ("UID", "12345"),
        ("GID", "54321"),
        ("MAILDIRPATH", "inherited-Maildir"),
        ("ADDRESS", "10.9.8.7"),
        // Not a shell name: envdir passes it on, dash drops it.
        ("TEST.DOTTED-NAME", "kept"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .chain([("TEST_ROOT".to_string(), s.root.display().to_string())])
    .collect()
}

/// How a child starts: umask, lowered limits (resource, soft, hard; capped
/// by the current hard limit), and optionally as another user.
#[derive(Clone, Default)]
pub struct Pre {
    pub limits: Vec<(Resource, u64, u64)>,
    pub user: Option<(u32, u32)>,
    /// Run the program under [`SETPRIV`] without CAP_SETUID and
    /// CAP_SETGID (root that may not switch users, as in some containers).
    pub drop_setid_caps: bool,
}

/// util-linux's setpriv: drops capabilities from the bounding and
/// inheritable sets, so that root keeps uid 0 but loses them at exec.
pub const SETPRIV: &str = "/usr/bin/setpriv";

pub fn command(program: &Path, s: &Scratch, env: &[(String, String)], pre: &Pre) -> Command {
    let mut cmd = if pre.drop_setid_caps {
        let mut c = Command::new(SETPRIV);
        c.args([
            "--bounding-set=-setuid,-setgid",
            "--inh-caps=-setuid,-setgid",
            "--",
        ])
        .arg(program);
        c
    } else {
        Command::new(program)
    };
    cmd.current_dir(s.svc())
        .env_clear()
        .envs(env.iter().map(|(n, v)| (n, v)));
    let map = pre_map(&pre.limits);
    let user = pre.user;
    // SAFETY: runs between fork and exec. Allocating there (limits::apply
    // does, on its error path) is fine with glibc, whose fork() resets
    // malloc's locks in the child; nothing else here allocates.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(START_UMASK));
            limits::apply(&map).map_err(io::Error::other)?;
            if let Some((uid, gid)) = user {
                let gid = nix::unistd::Gid::from_raw(gid);
                nix::unistd::setgroups(&[gid])?;
                nix::unistd::setgid(gid)?;
                nix::unistd::setuid(nix::unistd::Uid::from_raw(uid))?;
            }
            Ok(())
        })
    };
    cmd
}

pub fn courier_run(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Ran {
    courier_run_bin(Path::new(BIN), s, args, env, pre)
}

pub fn courier_run_bin(
    bin: &Path,
    s: &Scratch,
    args: &[String],
    env: &[(String, String)],
    pre: &Pre,
) -> Ran {
    let mut cmd = command(bin, s, env, pre);
    cmd.args(args);
    run_cmd(cmd)
}

pub fn with(args: &[String], more: &[&str]) -> Vec<String> {
    args.iter()
        .cloned()
        .chain(more.iter().map(|m| m.to_string()))
        .collect()
}

/// `--dry-run --format json`: the plan.
pub fn dry_json(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> Value {
    let r = courier_run(s, &with(args, &["--dry-run", "--format", "json"]), env, pre);
    assert_eq!(
        r.exit(),
        0,
        "dry run failed: {}{}",
        r.stdout_str(),
        r.stderr_str()
    );
    serde_json::from_slice(&r.stdout).unwrap()
}

/// The launch, which must exec the recorder: (the run, the record).
pub fn launch(s: &Scratch, args: &[String], env: &[(String, String)], pre: &Pre) -> (Ran, Record) {
    let r = courier_run(s, args, env, pre);
    assert_eq!(
        r.exit(),
        0,
        "launch failed: {}{}",
        r.stdout_str(),
        r.stderr_str()
    );
    let rec = s.take_record().unwrap_or_else(|| {
        panic!(
            "the recorder did not run: {}{}",
            r.stdout_str(),
            r.stderr_str()
        )
    });
    (r, rec)
}

/// `courier-run conf2env DIR CONF` in svc/: an envdir written as from
/// another config.
pub fn write_envdir(s: &Scratch, dir: &str, conf: &Path) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(s.svc()).arg("conf2env").arg(dir).arg(conf);
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0, "conf2env {dir}: {}", r.stderr_str());
}

/// An envdir's state: the directory and its files (inode, mtime, mode,
/// content; None when there is none), and the names beside it (a leftover
/// `.env.new.PID` would show).
pub fn envdir_state(dir: &Path) -> (Option<Snapshot>, Vec<String>) {
    let siblings = fs::read_dir(dir.parent().unwrap())
        .map(|rd| {
            let mut v: Vec<String> = rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        })
        .unwrap_or_default();
    (snapshot_opt(dir), siblings)
}
