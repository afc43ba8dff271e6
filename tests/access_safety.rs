//! Access control fails closed, and what courier-run writes cannot be aimed
//! at another file: the access list is read with limits (a FIFO, a device,
//! a huge line, a password file given by mistake), compiled rules are
//! fresh by content and written safely in the service directory, and
//! TLS_CACHEFILE is refused where a reset as root would be unsafe.
//!
//! Every run goes through the binary: the dry run, `--check` and the launch
//! (with `server=/bin/true`, so a launch that proceeds exits 0).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Ran, TempDir, have_root, run};

/// A service directory: `run` (the given settings), `imapd` (a config).
struct Svc {
    t: TempDir,
}

impl Svc {
    fn new(tag: &str, settings: &str) -> Svc {
        let t = TempDir::new(tag);
        t.write("imapd", "PORT=1143\n");
        let s = Svc { t };
        s.settings(settings);
        s
    }

    fn dir(&self) -> &Path {
        self.t.path()
    }

    fn settings(&self, extra: &str) {
        self.t.write(
            "run",
            format!(
                "#!/usr/bin/courier-run\nconfig=./imapd\naccount=\nenvdir=\nserver=/bin/true\n{extra}"
            ),
        );
    }

    /// `courier-run ./run ARGS` in the service directory, within `limit`.
    fn run(&self, args: &[&str], limit: Duration) -> Ran {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(self.dir()).arg("./run").args(args);
        run(cmd, self.dir(), limit)
    }

    /// Dry run, --check and launch: their exit codes and what they said.
    fn three(&self) -> [(i32, String); 3] {
        let limit = Duration::from_secs(20);
        let f = |r: Ran| (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()));
        [
            f(self.run(&["--dry-run"], limit)),
            f(self.run(&["--check"], limit)),
            f(self.run(&[], limit)),
        ]
    }
}

fn tmp_names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp."))
        .collect()
}

/// `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Fail closed, and read with limits.

/// A configured access list that is missing stops the launch (111, the
/// file named); the dry run says so and --check FAILs. Both ways of
/// configuring it: IMAPACCESSFILE in the config, and the `access` setting.
#[test]
fn missing_access_list_fails_closed() {
    let s = Svc::new("acc-missing", "");
    let missing = s.dir().join("imapaccess");
    s.t.write(
        "imapd",
        format!("PORT=1143\nIMAPACCESSFILE={}\n", missing.display()),
    );
    for round in ["IMAPACCESSFILE", "access"] {
        if round == "access" {
            s.t.write("imapd", "PORT=1143\n");
            s.settings(&format!("access={}\n", missing.display()));
        }
        let [(dry, dout), (check, cout), (launch, lout)] = s.three();
        assert_eq!(dry, 111, "{round}: dry run: {dout}");
        assert_eq!(launch, 111, "{round}: launch: {lout}");
        assert_eq!(check, 1, "{round}: --check: {cout}");
        assert!(
            cout.lines()
                .any(|l| l.starts_with("FAIL access") && l.contains("imapaccess")),
            "{round}: {cout}"
        );
        assert!(
            lout.contains(&format!("unable to open access list {}", missing.display())),
            "{round}: {lout}"
        );
        assert!(!s.dir().join("imapaccess.tcprules.cdb").exists(), "{round}");
    }
}

/// A FIFO or a device as the access list: refused at once (100), never
/// opened blocking or read without end, by the dry run, --check and the
/// launch alike.
#[test]
fn fifo_and_dev_zero_access_lists_finish_in_seconds() {
    let s = Svc::new("acc-fifo", "");
    let fifo = s.dir().join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
    for list in [fifo.to_str().unwrap(), "/dev/zero"] {
        s.settings(&format!("access={list}\n"));
        let start = Instant::now();
        let [(dry, dout), (check, cout), (launch, lout)] = s.three();
        let took = start.elapsed();
        eprintln!("{list}: dry run, --check and launch took {took:?} in all");
        assert!(took < Duration::from_secs(30), "{list}: {took:?}");
        assert_eq!(dry, 100, "{list}: {dout}");
        assert_eq!(launch, 100, "{list}: {lout}");
        assert_eq!(check, 1, "{list}: {cout}");
        assert!(lout.contains(&format!("access list {list} is a")), "{lout}");
        assert!(cout.contains("FAIL access"), "{cout}");
    }
}

/// A huge file is refused by its size with a short message; a long line
/// under the size limit is quoted cut, not whole.
#[test]
fn a_huge_line_gives_a_short_message() {
    let s = Svc::new("acc-huge", "access=./imapaccess\n");
    for (size, code) in [(50 << 20, 100), (4 << 20, 100)] {
        let mut line = vec![b'1'; size];
        line[0] = b'x';
        line.push(b'\n');
        fs::write(s.dir().join("imapaccess"), &line).unwrap();
        let r = s.run(&[], Duration::from_secs(60));
        let err = format!("{}{}", r.stdout_str(), r.stderr_str());
        eprintln!(
            "{size}-byte line: exit {:?}, message {} bytes",
            r.code,
            err.len()
        );
        assert_eq!(r.exit(), code, "{err}");
        assert!(
            err.len() < 1024,
            "{} bytes: {}",
            err.len(),
            &err[..err.len().min(200)]
        );
        assert!(err.contains("imapaccess"), "{err}");
    }
}

/// A password file given as the access list: the message names the line,
/// and shows nothing of the hash.
#[test]
fn a_shadow_line_shows_no_hash() {
    let s = Svc::new("acc-shadow", "access=./imapaccess\n");
    let hashes = [
        "$6$saltsalt$Zq3vY0mVvX8o7G1xQe5bQnA2b1mD9rTtYc/HjK4pLw0sNfU6yRiEoA7zCx3VbMnB1q.",
        "$y$j9T$abcdefghijkl/mnopqrs$T0pS3cr3tH4shV4lu3.0123456789abcdefghij",
        "abXyZ12/3Q.wE",
    ];
    for h in hashes {
        fs::write(
            s.dir().join("imapaccess"),
            format!("root:{h}:19000:0:99999:7:::\n"),
        )
        .unwrap();
        let [(dry, dout), (check, cout), (launch, lout)] = s.three();
        assert_eq!((dry, check, launch), (100, 1, 100), "{dout}{cout}{lout}");
        for out in [&dout, &cout, &lout] {
            assert!(out.contains("imapaccess:1:1"), "{out}");
            for piece in h.split(['$', '/', '.']).filter(|p| p.len() >= 4) {
                assert!(!out.contains(piece), "{piece} shown: {out}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Freshness by content; nothing left by a kill.

const LIST_A: &str = "127.0.0.1\tdeny\n*\tallow\n";
const LIST_B: &str = "10.9.8.7\tdeny\n*\tallow\n";

/// `cp -p` of a list with an older mtime than the compiled rules: the
/// next start compiles it (the rules are compared by content), and
/// --check says so before.
#[test]
fn cp_p_of_an_older_list_is_compiled() {
    let s = Svc::new("acc-cpp", "access=./imapaccess\n");
    fs::write(s.dir().join("imapaccess"), LIST_A).unwrap();
    assert_eq!(s.run(&[], Duration::from_secs(20)).exit(), 0);
    let cdb = s.dir().join("imapaccess.tcprules.cdb");
    assert!(contains(&fs::read(&cdb).unwrap(), b"127.0.0.1"));
    let check = s.run(&["--check"], Duration::from_secs(20)).stdout_str();
    assert!(check.contains("up to date"), "{check}");

    // The new list, two days old, copied in keeping its mtime.
    let staged = s.dir().join("staged");
    fs::write(&staged, LIST_B).unwrap();
    assert!(
        Command::new("touch")
            .args(["-d", "2 days ago"])
            .arg(&staged)
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("cp")
            .arg("-p")
            .arg(&staged)
            .arg(s.dir().join("imapaccess"))
            .status()
            .unwrap()
            .success()
    );
    assert!(
        fs::metadata(s.dir().join("imapaccess")).unwrap().mtime()
            < fs::metadata(&cdb).unwrap().mtime()
    );
    let check = s.run(&["--check"], Duration::from_secs(20)).stdout_str();
    assert!(check.contains("compiled on start"), "{check}");
    assert_eq!(s.run(&[], Duration::from_secs(20)).exit(), 0);
    let bytes = fs::read(&cdb).unwrap();
    assert!(
        contains(&bytes, b"10.9.8.7"),
        "the copied list was not compiled"
    );
    assert!(!contains(&bytes, b"127.0.0.1"));
}

/// Edits made while a start runs: once that start is over, the next one
/// has every edit in its rules (compared by content: the list written
/// before the rules, with an older mtime, is not taken as compiled).
#[test]
fn an_edit_during_a_start_is_not_lost() {
    let s = Svc::new("acc-edit", "access=./imapaccess\n");
    let edits: usize = std::env::var("EDITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let list = |tag: usize| {
        let mut t = String::new();
        for i in 0..3_000u32 {
            t.push_str(&format!("10.0.{}.{}\tallow,T={tag}\n", i >> 8, i & 255));
        }
        t
    };
    // How long a start that compiles takes: the edits land within it.
    fs::write(s.dir().join("imapaccess"), list(0)).unwrap();
    let t0 = Instant::now();
    assert_eq!(s.run(&[], Duration::from_secs(60)).exit(), 0);
    let span = t0.elapsed().as_micros().max(1) as u64;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut lost = 0;
    for k in 1..=edits {
        // A changed list, so that this start compiles; the edit under
        // test lands while it does.
        fs::write(s.dir().join("imapaccess"), list(1_000_000 + k)).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(s.dir())
            .arg("./run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_micros(x % span));
        fs::write(s.dir().join("imapaccess"), list(k)).unwrap();
        child.wait().unwrap();
        // The next start (as supervise would do on the next restart).
        let r = s.run(&[], Duration::from_secs(60));
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        let bytes = fs::read(s.dir().join("imapaccess.tcprules.cdb")).unwrap();
        if !contains(&bytes, format!("T={k}\0").as_bytes()) {
            lost += 1;
        }
    }
    eprintln!(
        "{edits} edits during a start ({span} us): {lost} not in the rules after the next start"
    );
    assert_eq!(lost, 0);
}

/// Launches killed while they write the compiled rules (the test watches
/// the directory and kills the moment a temporary appears): the next start
/// removes every temporary they left, and the rules are whole.
#[test]
fn a_kill_during_the_rebuild_leaves_no_temporary() {
    let s = Svc::new("acc-kill", "access=./imapaccess\n");
    let kills: usize = std::env::var("KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let list = |tag: usize| {
        let mut t = String::new();
        for i in 0..6_000u32 {
            t.push_str(&format!(
                "10.{}.{}.{}\tallow,T={tag}\n",
                i >> 16,
                (i >> 8) & 255,
                i & 255
            ));
        }
        t
    };
    let mut mid_write = 0;
    for k in 0..kills {
        fs::write(s.dir().join("imapaccess"), list(k)).unwrap();
        let mut child = Command::new(BIN)
            .current_dir(s.dir())
            .arg("./run")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let mine = format!(".tmp.{}.", child.id());
        loop {
            if tmp_names(s.dir()).iter().any(|n| n.contains(&mine)) {
                let _ = child.kill();
                mid_write += 1;
                break;
            }
            if child.try_wait().unwrap().is_some() || start.elapsed() > Duration::from_secs(30) {
                let _ = child.kill();
                break;
            }
        }
        let _ = child.wait();
    }
    // Each start removes what the killed ones before it left: at most the
    // last one's temporary is here.
    let left = tmp_names(s.dir()).len();
    // A temporary of a dead process in the old naming too.
    let dead = {
        let mut c = Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        c.id()
    };
    fs::write(
        s.dir().join(format!(".imapaccess.tcprules.cdb.tmp.{dead}")),
        "half",
    )
    .unwrap();
    let r = s.run(&[], Duration::from_secs(60));
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    eprintln!(
        "{kills} starts, {mid_write} killed while writing, {left} temporaries left; after the next start: {:?}",
        tmp_names(s.dir())
    );
    assert!(mid_write > 0, "no kill landed during a write");
    assert!(tmp_names(s.dir()).is_empty(), "{:?}", tmp_names(s.dir()));
    let bytes = fs::read(s.dir().join("imapaccess.tcprules.cdb")).unwrap();
    assert!(contains(&bytes, format!("T={}", kills - 1).as_bytes()));
}

// ---------------------------------------------------------------------------
// Written only through names we create, where the service is.

/// Symlinks planted at every temporary name the coming launches could use
/// (the old `.NAME.tmp.PID` and the new `.NAME.tmp.PID.N`) point at a
/// victim: it is untouched, and the rules are written.
#[test]
fn planted_symlinks_at_temporary_names_are_not_followed() {
    let s = Svc::new("acc-plant", "access=./imapaccess\n");
    fs::write(s.dir().join("imapaccess"), LIST_A).unwrap();
    let victim = s.dir().join("victim");
    fs::write(&victim, "precious").unwrap();
    let last: u32 = fs::read_to_string("/proc/sys/kernel/ns_last_pid")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1);
    for pid in last..last + 3000 {
        for name in [
            format!(".imapaccess.tcprules.cdb.tmp.{pid}"),
            format!(".imapaccess.tcprules.cdb.tmp.{pid}.0"),
        ] {
            std::os::unix::fs::symlink(&victim, s.dir().join(name)).unwrap();
        }
    }
    for _ in 0..3 {
        let r = s.run(&[], Duration::from_secs(20));
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        fs::write(s.dir().join("imapaccess"), LIST_B).unwrap();
    }
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    let cdb = s.dir().join("imapaccess.tcprules.cdb");
    assert!(fs::symlink_metadata(&cdb).unwrap().is_file());
    assert!(contains(&fs::read(&cdb).unwrap(), b"10.9.8.7"));
}

/// A hand launch from another directory writes the rules beside the run
/// file (the service directory), never into the current directory.
#[test]
fn a_hand_launch_elsewhere_writes_into_the_service_directory() {
    let s = Svc::new("acc-elsewhere", "");
    fs::write(s.dir().join("imapaccess"), LIST_A).unwrap();
    s.settings(&format!(
        "config={0}/imapd\naccess={0}/imapaccess\n",
        s.dir().display()
    ));
    let elsewhere = TempDir::new("acc-cwd");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(elsewhere.path()).arg(s.dir().join("run"));
    let r = run(cmd, elsewhere.path(), Duration::from_secs(20));
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    assert!(s.dir().join("imapaccess.tcprules.cdb").is_file());
    assert_eq!(elsewhere.names(), Vec::<String>::new());
}

/// A list changed while the service directory is on a read-only
/// filesystem: the compiled rules are stale and cannot be rebuilt, so the
/// dry run, --check and the launch all refuse (111); unchanged, all three
/// go on.
#[test]
fn a_read_only_service_directory_agrees() {
    if !have_root("to mount a read-only tmpfs") {
        return;
    }
    let outer = TempDir::new("acc-ro");
    let lists = TempDir::new("acc-ro-list");
    let d = outer.join("svc");
    fs::create_dir(&d).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(&d)
        .status()
        .unwrap()
        .success();
    if !common::have("a tmpfs mount", ok) {
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Unmount(d.clone());
    let list = lists.join("imapaccess");
    fs::write(&list, LIST_A).unwrap();
    fs::write(d.join("imapd"), "PORT=1143\n").unwrap();
    fs::write(
        d.join("run"),
        format!(
            "config=./imapd\naccount=\nenvdir=\nserver=/bin/true\naccess={}\n",
            list.display()
        ),
    )
    .unwrap();
    let go = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(&d).arg("./run").args(args);
        let r = run(cmd, &d, Duration::from_secs(20));
        (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()))
    };
    assert_eq!(go(&[]).0, 0);
    assert!(
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&d)
            .status()
            .unwrap()
            .success()
    );
    // Unchanged: all three go on.
    assert_eq!(go(&["--dry-run"]).0, 0);
    assert_eq!(go(&[]).0, 0);
    // Changed: all three refuse.
    fs::write(&list, LIST_B).unwrap();
    let (dry, dout) = go(&["--dry-run"]);
    let (check, cout) = go(&["--check"]);
    let (launch, lout) = go(&[]);
    assert_eq!(dry, 111, "{dout}");
    assert_eq!(check, 1, "{cout}");
    assert_eq!(launch, 111, "{lout}");
    assert!(lout.contains("cannot be rebuilt"), "{lout}");
    assert!(cout.contains("FAIL access"), "{cout}");
}

// ---------------------------------------------------------------------------
// TLS_CACHEFILE.

/// A scratch directory for a cache: the system temp dir's (root's and
/// sticky: fine on the way, though not as the cache's own directory).
struct SafeDir(PathBuf, #[allow(dead_code)] TempDir);

impl SafeDir {
    fn new(tag: &str) -> SafeDir {
        let t = TempDir::new(tag);
        SafeDir(t.path().to_path_buf(), t)
    }
}

/// Our own user's name: the account the cache is handed to (root when
/// root, so no other account is needed).
fn me() -> String {
    nix::unistd::User::from_uid(nix::unistd::geteuid())
        .unwrap()
        .unwrap()
        .name
}

/// A -ssl service whose config sets TLS_CACHEFILE=`cache`, in `dir`.
fn ssl_service(dir: &Path, cache: &str) {
    fs::write(
        dir.join("imapd"),
        // A usable certificate: a TLS service's launch refuses to start
        // without one.
        format!(
            "PORT=1993\nTLS_CACHEFILE={cache}\nTLS_CERTFILE={}/tests/fixtures/tls/server.pem\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    )
    .unwrap();
    fs::write(
        dir.join("run"),
        format!(
            "layout=debian\nservice=imapd-ssl\nconfig=./imapd\naccount={}\nenvdir=\naccess=\nserver=/bin/true\nwait_authdaemond=no\n",
            me()
        ),
    )
    .unwrap();
}

fn ssl_three(dir: &Path) -> [(i32, String); 3] {
    let go = |args: &[&str]| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(dir).arg("./run").args(args);
        let r = run(cmd, dir, Duration::from_secs(20));
        (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()))
    };
    [go(&["--dry-run"]), go(&["--check"]), go(&[])]
}

/// A cache path through a directory another user owns, with a symlink
/// planted in it toward a decoy directory: refused (100) with the fix by
/// the dry run, --check and the launch; the decoy's file is untouched.
/// Without the symlink, the other user's directory is refused alike.
#[test]
fn tls_cache_through_a_user_owned_directory_is_refused() {
    if !have_root("to give a directory to a second, unprivileged user") {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().unwrap();
    let d = SafeDir::new("tls-user");
    let decoy = d.0.join("decoydir");
    fs::create_dir(&decoy).unwrap();
    fs::write(decoy.join("cache"), "precious").unwrap();
    let public = d.0.join("pub");
    fs::create_dir(&public).unwrap();
    nix::unistd::chown(&public, Some(nobody.uid), Some(nobody.gid)).unwrap();
    // The plant, made by the unprivileged user.
    let planted = Command::new("setpriv")
        .args([
            &format!("--reuid={}", nobody.uid),
            &format!("--regid={}", nobody.gid),
            "--clear-groups",
            "ln",
            "-s",
        ])
        .arg(&decoy)
        .arg(public.join("sub"))
        .status()
        .is_ok_and(|s| s.success());
    if !planted {
        std::os::unix::fs::symlink(&decoy, public.join("sub")).unwrap();
    }
    let svc = d.0.join("svc");
    fs::create_dir(&svc).unwrap();
    ssl_service(&svc, &public.join("sub/cache").display().to_string());
    let [(dry, dout), (check, cout), (launch, lout)] = ssl_three(&svc);
    assert_eq!((dry, launch), (100, 100), "{dout}\n{lout}");
    assert_eq!(check, 1, "{cout}");
    assert!(cout.contains("FAIL TLS_CACHEFILE"), "{cout}");
    assert!(lout.contains("/pub may be written by its owner"), "{lout}");
    assert!(
        lout.contains("put the cache in a directory only root"),
        "{lout}"
    );
    assert_eq!(fs::read(decoy.join("cache")).unwrap(), b"precious");
    // A real directory of the other user's: refused too.
    fs::remove_file(public.join("sub")).unwrap();
    fs::create_dir(public.join("sub")).unwrap();
    let [(dry, _), _, (launch, _)] = ssl_three(&svc);
    assert_eq!((dry, launch), (100, 100));
    // The cache right in a world-writable directory: refused.
    ssl_service(&svc, "/tmp/courier-run-test-cache");
    let [(dry, dout), _, _] = ssl_three(&svc);
    assert_eq!(dry, 100, "{dout}");
    assert!(dout.contains("/tmp may be written by everyone"), "{dout}");
    // And a symlinked component in a safe tree: refused as a symlink.
    std::os::unix::fs::symlink(&decoy, d.0.join("lnk")).unwrap();
    ssl_service(&svc, &d.0.join("lnk/cache").display().to_string());
    let [(dry, dout), _, (launch, _)] = ssl_three(&svc);
    assert_eq!((dry, launch), (100, 100), "{dout}");
    assert!(dout.contains("resolves through"), "{dout}");
    assert_eq!(fs::read(decoy.join("cache")).unwrap(), b"precious");
}

/// TLS_CACHEFILE=./run: the run file is one courier-run reads; refused,
/// and the run file is intact. The same for the config file.
#[test]
fn tls_cache_at_the_run_file_is_refused() {
    let d = SafeDir::new("tls-run");
    for target in ["./run", "./imapd"] {
        ssl_service(&d.0, target);
        let run_before = fs::read(d.0.join("run")).unwrap();
        let conf_before = fs::read(d.0.join("imapd")).unwrap();
        let [(dry, dout), (check, cout), (launch, lout)] = ssl_three(&d.0);
        assert_eq!((dry, launch), (100, 100), "{target}: {dout}\n{lout}");
        assert_eq!(check, 1, "{cout}");
        assert!(lout.contains("a file courier-run reads"), "{lout}");
        assert_eq!(fs::read(d.0.join("run")).unwrap(), run_before);
        assert_eq!(fs::read(d.0.join("imapd")).unwrap(), conf_before);
    }
}

/// A directory at the cache path: the dry run and --check FAIL as the
/// launch does (100), and the directory stays.
#[test]
fn a_directory_at_the_cache_path_fails_everywhere() {
    let d = SafeDir::new("tls-dir");
    fs::create_dir(d.0.join("cache")).unwrap();
    fs::write(d.0.join("cache/keep"), "x").unwrap();
    ssl_service(&d.0, &d.0.join("cache").display().to_string());
    let [(dry, dout), (check, cout), (launch, lout)] = ssl_three(&d.0);
    assert_eq!((dry, launch), (100, 100), "{dout}\n{lout}");
    assert_eq!(check, 1, "{cout}");
    assert!(cout.contains("FAIL TLS_CACHEFILE"), "{cout}");
    assert!(lout.contains("is a directory"), "{lout}");
    assert!(d.0.join("cache/keep").is_file());
}

/// 300 starts racing on one cache path (8 at a time): none fails, and
/// the cache is an empty 0600 file of the account's.
#[test]
fn racing_starts_all_reset_the_cache() {
    let d = SafeDir::new("tls-race");
    let cache = d.0.join("cache");
    ssl_service(&d.0, &cache.display().to_string());
    let starts: usize = std::env::var("STARTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let failures = std::sync::atomic::AtomicUsize::new(0);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let first_failure = std::sync::Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..8 {
            sc.spawn(|| {
                while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < starts {
                    let out = Command::new(BIN)
                        .current_dir(&d.0)
                        .arg("./run")
                        .output()
                        .unwrap();
                    if !out.status.success() {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        first_failure.lock().unwrap().get_or_insert(format!(
                            "{}{}",
                            String::from_utf8_lossy(&out.stdout),
                            String::from_utf8_lossy(&out.stderr)
                        ));
                    }
                }
            });
        }
    });
    let failed = failures.into_inner();
    eprintln!("{starts} racing starts: {failed} failed");
    assert_eq!(failed, 0, "{:?}", first_failure.into_inner().unwrap());
    let m = fs::symlink_metadata(&cache).unwrap();
    assert!(m.is_file());
    assert_eq!((m.len(), m.mode() & 0o777), (0, 0o600));
    assert_eq!(m.uid(), nix::unistd::geteuid().as_raw());
    assert!(tmp_names(&d.0).is_empty(), "{:?}", tmp_names(&d.0));
}
