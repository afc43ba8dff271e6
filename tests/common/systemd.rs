//! systemd as PID 1 of its own PID and mount namespace (and network
//! namespace, when asked), for the tests that run units: see
//! [`Systemd::boot`]. Shared by tests/systemd.rs and tests/migrate.rs.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::run;

/// How long the namespace may take to boot, and each command in it.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The wants of the targets a started service pulls in (sysinit, sockets,
/// timers, paths, local-fs), on this machine, minus journald: masked in the
/// namespace, since the namespace shares the machine's kernel, devices,
/// clock, network and files (sysctl, udev, timesyncd, tmpfiles,
/// random-seed, utmp, apt's timers...). Masks live in the namespace's own
/// /run, so nothing is written to the machine.
pub fn masks() -> Vec<String> {
    let keep = [
        "systemd-journald.service",
        "systemd-journald.socket",
        "systemd-journald-dev-log.socket",
    ];
    let mut v: Vec<String> = ["local-fs.target", "swap.target", "timers.target"]
        .map(String::from)
        .to_vec();
    for base in ["/lib/systemd/system", "/etc/systemd/system"] {
        for t in ["sysinit", "sockets", "timers", "paths", "local-fs", "basic"] {
            let dir = Path::new(base).join(format!("{t}.target.wants"));
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name.as_str()) && !v.contains(&name) {
                    v.push(name);
                }
            }
        }
    }
    v
}

/// The namespace's boot: private /tmp and /run (without them systemd's
/// tmpfiles would empty the machine's /tmp), a volatile journal (not the
/// machine's /var/log/journal), the masks, and a default target with
/// nothing in it (multi-user.target would start the machine's enabled
/// services: Debian's courier units, postgresql, runit...).
/// With `$2`, directories of the machine (e.g. /etc/systemd/system) that
/// the namespace gets a private copy of (in its /run), so that what runs
/// there (systemctl link/enable/disable, an rc script) changes only the
/// copy; with `$3` = net, the loopback interface of its own network
/// namespace is brought up. `$4`: this repository (the binary, the
/// scratch directories under target/): when it lies under /tmp or /run (a
/// clone in /tmp, as CI may make), it is bound to `$5` (an empty directory
/// outside both) before the private mounts hide it, then moved back to its
/// own path, so the namespace sees it where the machine does.
const BOOT: &str = r#"set -e
keep=
case "$4" in /tmp/*|/run/*) keep=$4; mount --bind "$keep" "$5" ;; esac
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
if [ -n "$keep" ]; then mkdir -p "$keep"; mount --move "$5" "$keep"; fi
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
for d in $2; do
  mkdir -p "/run/courier-run-test-copy$d"
  cp -a "$d/." "/run/courier-run-test-copy$d/"
  mount --bind "/run/courier-run-test-copy$d" "$d"
done
if [ "$3" = net ]; then ip link set lo up; fi
mkdir -p /run/systemd/system /run/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\n' > /run/systemd/journald.conf.d/courier-run-test.conf
printf '[Unit]\nDescription=courier-run test boot\n' > /run/systemd/system/courier-run-test.target
for u in $1; do ln -s /dev/null "/run/systemd/system/$u"; done
exec env container=other /lib/systemd/systemd --system --unit=courier-run-test.target
"#;

/// Where the namespace tests keep service directories and the binary the
/// units run: never under /tmp, /var/tmp or /run, which the namespace's own
/// mounts and the units' PrivateTmp= hide (CI may clone into /tmp).
pub fn scratch_root() -> PathBuf {
    let t = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if ["/tmp", "/var/tmp", "/run"]
        .iter()
        .any(|h| t.starts_with(h))
    {
        PathBuf::from("/var/lib/courier-run-tests")
    } else {
        t.to_path_buf()
    }
}

/// A copy of the programs in `dir` (under [`scratch_root`]): `init` writes
/// the path of the courier-run that ran it into a unit's ExecStart=, and a
/// unit must be able to see it.
pub fn bin_in(dir: &Path) -> PathBuf {
    super::copy_programs(dir)
}

/// A counter for the hold directories of one test binary.
static HOLDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// systemd running as PID 1 of its own PID and mount namespace; killed
/// (its PID 1, by pid: the whole namespace goes with it) on drop, also
/// when the test fails.
pub struct Systemd {
    unshare: Child,
    /// The empty directory the repository is held at while the namespace
    /// mounts its own /tmp and /run (removed on drop).
    hold: PathBuf,
    /// The namespace's PID 1, as the machine numbers it.
    pub init: i32,
    /// It has its own network namespace (commands run in it too).
    net: bool,
}

impl Systemd {
    #[track_caller]
    pub fn boot() -> Systemd {
        Systemd::boot_with(&[], false)
    }

    /// [`Systemd::boot`] with private copies of `copies` and, with `net`,
    /// a network namespace of its own (its ports are its own: 143 is free
    /// there whatever the machine runs).
    #[track_caller]
    pub fn boot_with(copies: &[&str], net: bool) -> Systemd {
        let mut unshare = Command::new("unshare");
        unshare.args([
            "--pid",
            "--fork",
            "--mount",
            "--mount-proc",
            "--propagation",
            "private",
        ]);
        if net {
            unshare.arg("--net");
        }
        let hold = Path::new("/var/tmp").join(format!(
            "courier-run-test-hold-{}-{}",
            std::process::id(),
            HOLDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&hold).expect("the hold directory in /var/tmp");
        let mut unshare = unshare
            .args(["sh", "-c", BOOT, "sh"])
            .arg(masks().join(" "))
            .arg(copies.join(" "))
            .arg(if net { "net" } else { "" })
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg(&hold)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("unshare starts");
        let until = Instant::now() + LIMIT;
        // PID 1 is unshare's child (sh, which execs systemd).
        let init = loop {
            let children =
                std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", unshare.id()))
                    .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                break pid.parse::<i32>().unwrap();
            }
            if Instant::now() > until || matches!(unshare.try_wait(), Ok(Some(_))) {
                let _ = unshare.kill();
                let _ = unshare.wait();
                panic!("unshare made no namespace within {LIMIT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let sd = Systemd {
            unshare,
            hold,
            init,
            net,
        };
        loop {
            let state = sd.ctl(&["is-system-running"]);
            if state.starts_with("running") || state.starts_with("degraded") {
                break;
            }
            assert!(
                Instant::now() < until,
                "systemd did not boot within {LIMIT:?}: {state}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sd
    }

    /// `nsenter -t PID1 -m -p ARGS` (ARGS run in the namespace): exit code,
    /// stdout and stderr.
    pub fn ns(&self, args: &[&str]) -> (Option<i32>, String) {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.init.to_string(), "-m", "-p"]);
        if self.net {
            cmd.arg("-n");
        }
        cmd.args(args);
        let r = run(cmd, Path::new("/"), LIMIT);
        (r.code, r.stdout_str() + &r.stderr_str())
    }

    pub fn ctl(&self, args: &[&str]) -> String {
        let mut a = vec!["systemctl", "--no-pager"];
        a.extend_from_slice(args);
        self.ns(&a).1
    }

    #[track_caller]
    pub fn ok(&self, args: &[&str]) -> String {
        let (code, out) = self.ns(args);
        assert_eq!(code, Some(0), "{args:?}: {out}");
        out
    }

    pub fn journal(&self, unit: &str) -> String {
        self.ns(&["journalctl", "--no-pager", "-o", "cat", "-u", unit])
            .1
    }

    /// The machine's pid of the namespace's process `nspid`.
    pub fn host_pid(&self, nspid: i32) -> Option<i32> {
        let ns = std::fs::read_link(format!("/proc/{}/ns/pid", self.init)).ok()?;
        std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            if std::fs::read_link(e.path().join("ns/pid")).ok()? != ns {
                return None;
            }
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let inner = status
                .lines()
                .find_map(|l| l.strip_prefix("NSpid:"))?
                .split_whitespace()
                .last()?
                .parse::<i32>()
                .ok()?;
            (inner == nspid).then_some(pid)
        })
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.init),
            nix::sys::signal::Signal::SIGKILL,
        );
        let until = Instant::now() + Duration::from_secs(10);
        while matches!(self.unshare.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.unshare.kill();
        let _ = self.unshare.wait();
        let _ = std::fs::remove_dir(&self.hold);
    }
}
