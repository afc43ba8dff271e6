//! `courier-run init DIR` against a local attacker: a second, unprivileged
//! account that can write DIR's parent plants symlinks (`DIR/log/main ->
//! decoy`, `DIR/log -> decoy`, DIR itself a link) before root runs init.
//! init refuses; the decoy keeps its owner, mode and contents. And the
//! start hint it prints is one shell line that names DIR by its absolute
//! path, quoted: pasted into sh it runs nothing hidden in the name.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::courier::MailUser;
use common::{BIN, Ran, TempDir, have, have_root, run_cmd, tree, which};

fn courier_account() -> bool {
    have(
        "the courier account (courier-imap's package makes it)",
        nix::unistd::User::from_name("courier")
            .ok()
            .flatten()
            .is_some(),
    )
}

/// The unprivileged account, and a way to run commands as it.
struct Attacker {
    user: MailUser,
    uid: u32,
    gid: u32,
}

impl Attacker {
    fn new() -> Attacker {
        let user = MailUser::new("plant");
        let u = nix::unistd::User::from_name(&user.name).unwrap().unwrap();
        Attacker {
            uid: u.uid.as_raw(),
            gid: u.gid.as_raw(),
            user,
        }
    }

    #[track_caller]
    fn run(&self, prog: &str, args: &[&Path]) {
        let mut cmd = Command::new(prog);
        cmd.args(args).uid(self.uid).gid(self.gid); // std drops root's groups (setgroups(0)) with uid()
        let r = run_cmd(cmd);
        assert_eq!(
            r.exit(),
            0,
            "{prog} {args:?} as {}: {}",
            self.user.name,
            r.stderr_str()
        );
    }

    fn mkdir(&self, p: &Path) {
        self.run("mkdir", &[p]);
    }

    fn symlink(&self, target: &Path, link: &Path) {
        self.run("ln", &[Path::new("-s"), target, link]);
    }
}

/// A root-owned directory with a file in it: what the attacker aims init at.
struct Decoy {
    path: PathBuf,
    before: (u32, u32, u32, Vec<common::FileSnapshot>),
}

impl Decoy {
    fn new(t: &TempDir) -> Decoy {
        let path = t.mkdir("decoy", 0o755);
        std::fs::write(path.join("keep"), "root's\n").unwrap();
        let before = Decoy::state(&path);
        Decoy { path, before }
    }

    fn state(p: &Path) -> (u32, u32, u32, Vec<common::FileSnapshot>) {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid(), m.mode(), tree(p))
    }

    #[track_caller]
    fn untouched(&self, case: &str) {
        let now = Decoy::state(&self.path);
        assert_eq!(
            (now.0, now.1, now.2),
            (self.before.0, self.before.1, self.before.2),
            "{case}: the decoy's owner, group or mode changed"
        );
        assert!(
            now.3 == self.before.3,
            "{case}: the decoy's contents changed"
        );
    }
}

fn init(cwd: &Path, args: &[&str]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(cwd).arg("init").args(args);
    run_cmd(cmd)
}

#[track_caller]
fn refused(r: &Ran, case: &str, why: &str) {
    assert_eq!(
        r.exit(),
        100,
        "{case}: init did not refuse\n{}{}",
        r.stdout_str(),
        r.stderr_str()
    );
    assert!(
        r.stderr_str().contains(why),
        "{case}: expected {why:?} in: {}",
        r.stderr_str()
    );
}

/// The plants of a second account, each refused by init as root, the
/// decoy untouched and nothing created; with nothing planted, init in a
/// sticky world-writable directory (as /tmp) works, and an existing
/// log/main is reported as there and keeps its owner.
#[test]
fn init_refuses_what_another_account_planted() {
    if !have_root("init chowns log/main; the test makes a second account")
        || !have("useradd", which("useradd").is_some())
        || !courier_account()
    {
        return;
    }
    let t = TempDir::new("init-plant");
    let decoy = Decoy::new(&t);
    let attacker = Attacker::new();
    let base = t.path();

    // 1. A parent anyone can write (no sticky bit): the account makes DIR,
    //    DIR/log, and DIR/log/main -> decoy.
    let open = t.mkdir("open", 0o777);
    let svc = open.join("svc");
    attacker.mkdir(&svc);
    attacker.mkdir(&svc.join("log"));
    attacker.symlink(&decoy.path, &svc.join("log/main"));
    let r = init(base, &[svc.to_str().unwrap(), "--supervisor", "runit"]);
    refused(
        &r,
        "log/main planted in a world-writable parent",
        "writable by other accounts",
    );
    decoy.untouched("log/main planted in a world-writable parent");
    assert!(
        !svc.join("run").exists(),
        "init wrote into the planted directory"
    );

    // 2. A sticky world-writable parent (as /tmp): the account's own DIR
    //    with `log -> decoy`.
    let sticky = t.mkdir("sticky", 0o1777);
    let svc = sticky.join("svc");
    attacker.mkdir(&svc);
    attacker.symlink(&decoy.path, &svc.join("log"));
    let r = init(base, &[svc.to_str().unwrap()]);
    refused(&r, "DIR made by another account", "is owned by");
    decoy.untouched("DIR made by another account");

    // 3. DIR itself a link the account made to the decoy.
    let link = sticky.join("link");
    attacker.symlink(&decoy.path, &link);
    let r = init(base, &[link.to_str().unwrap()]);
    refused(&r, "DIR a symlink", "is a symlink");
    decoy.untouched("DIR a symlink");

    // 4. root's own DIR in the sticky parent, holding a log/main -> decoy
    //    link (made by root: refused for being a link at all).
    let svc = sticky.join("rootsvc");
    std::fs::create_dir_all(svc.join("log")).unwrap();
    std::os::unix::fs::symlink(&decoy.path, svc.join("log/main")).unwrap();
    let r = init(base, &[svc.to_str().unwrap()]);
    refused(&r, "a symlink under DIR", "is a symlink");
    decoy.untouched("a symlink under DIR");
    assert!(!svc.join("run").exists());

    // 5. root's own DIR in a parent the account can write (no sticky
    //    bit): it could rename DIR away and put its own in place.
    let svc = open.join("rootsvc");
    std::fs::create_dir(&svc).unwrap();
    let r = init(base, &[svc.to_str().unwrap()]);
    refused(
        &r,
        "root's DIR in a world-writable parent",
        "writable by other accounts",
    );

    // 6. Nothing planted, sticky parent: created; log/main is courier's.
    let svc = sticky.join("fresh");
    let r = init(base, &[svc.to_str().unwrap(), "--supervisor", "runit"]);
    assert_eq!(r.exit(), 0, "{}{}", r.stdout_str(), r.stderr_str());
    let courier = nix::unistd::User::from_name("courier").unwrap().unwrap();
    assert_eq!(
        std::fs::metadata(svc.join("log/main")).unwrap().uid(),
        courier.uid.as_raw()
    );

    // 7. An existing log/main (root's): reported as there, not chowned.
    let svc = t.join("kept");
    std::fs::create_dir_all(svc.join("log/main")).unwrap();
    let r = init(base, &[svc.to_str().unwrap(), "--supervisor", "runit"]);
    assert_eq!(r.exit(), 0, "{}{}", r.stdout_str(), r.stderr_str());
    let out = r.stdout_str();
    assert!(
        out.contains(&format!("exists {}/\n", svc.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("exists {}/log/main/", svc.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("created {}/run ", svc.display())),
        "{out}"
    );
    let m = std::fs::metadata(svc.join("log/main")).unwrap();
    assert_eq!(m.uid(), 0, "an existing log/main was given away");
    assert_eq!(m.permissions().mode() & 0o777, 0o755);
}

/// The start line of `init --dry-run` for a relative DIR holding `;` and
/// a command, for each supervisor, run by dash with a stub `ln` (and
/// `s6-svscanctl`) that records its arguments: the target is DIR's
/// absolute path exactly, and nothing else ran.
#[test]
fn start_hint_is_quoted_and_absolute() {
    if !have_root("init --dry-run checks that it may give log/main to courier")
        || !have("dash", which("dash").is_some())
        || !courier_account()
    {
        return;
    }
    let t = TempDir::new("init-hint");
    let stubs = t.mkdir("stubs", 0o755);
    for prog in ["ln", "s6-svscanctl"] {
        let p = stubs.join(prog);
        std::fs::write(
            &p,
            "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done >> \"$0.args\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let name = "g;touch PWN;";
    let abs = t.path().join(name);
    for sup in ["daemontools", "runit", "s6"] {
        let r = init(
            t.path(),
            &["--dry-run", "--supervisor", sup, &format!("./{name}")],
        );
        assert_eq!(r.exit(), 0, "{sup}: {}", r.stderr_str());
        let out = r.stdout_str();
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix("start it with: "))
            .unwrap_or_else(|| panic!("{sup}: no start line in {out}"));
        let _ = std::fs::remove_file(stubs.join("ln.args"));
        // The stubs first; the rest (touch) as usual, so that a command
        // hidden in the name would run.
        let mut sh = Command::new(which("dash").unwrap());
        sh.current_dir(t.path())
            .env("PATH", format!("{}:/usr/bin:/bin", stubs.display()))
            .args(["-c", line]);
        let ran = run_cmd(sh);
        assert!(
            !t.join("PWN").exists(),
            "{sup}: the hint ran a command: {line}"
        );
        assert_eq!(ran.exit(), 0, "{sup}: {line}: {}", ran.stderr_str());
        let args = std::fs::read_to_string(stubs.join("ln.args")).unwrap();
        let args: Vec<&str> = args.lines().collect();
        assert_eq!(args.len(), 3, "{sup}: ln {args:?}");
        assert_eq!(args[0], "-s");
        assert_eq!(Path::new(args[1]), abs, "{sup}: {line}");
        assert!(args[2].ends_with('/'), "{sup}: {line}");
    }
    assert!(!abs.exists(), "--dry-run created DIR");
}
