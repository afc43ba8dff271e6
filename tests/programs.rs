//! The two programs (src/programs.rs): the launcher `courier-run`, which
//! run files name, does a kept plan's start itself and execs the main
//! program `courier-run-main` for every other command line; the launcher
//! is linked static (build.rs) and never looks an account up.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Does this ELF file name a program interpreter (is it dynamic)?
fn dynamic(path: &str) -> bool {
    let elf = fs::read(path).unwrap();
    let word = |at: usize, n: usize| -> u64 {
        elf[at..at + n]
            .iter()
            .rev()
            .fold(0, |v, &x| (v << 8) | u64::from(x))
    };
    let (phoff, size, num) = (word(0x20, 8), word(0x36, 2), word(0x38, 2));
    (0..num).any(|i| word((phoff + i * size) as usize, 4) == 3)
}

#[test]
fn any_other_command_line_is_the_main_programs() {
    for args in [&["--version"][..], &["--no-such-option"], &["help"]] {
        let via = run_cmd({
            let mut c = Command::new(BIN);
            c.args(args);
            c
        });
        let direct = run_cmd({
            let mut c = Command::new(MAIN);
            c.args(args);
            c
        });
        assert_eq!(via.exit(), direct.exit(), "{args:?}");
        assert_eq!(via.stdout_str(), direct.stdout_str(), "{args:?}");
        assert_eq!(via.stderr_str(), direct.stderr_str(), "{args:?}");
    }
}

#[test]
fn a_missing_main_program_is_one_fatal_line() {
    let d = TempDir::new("programs-alone");
    let launcher = d.join("courier-run");
    fs::copy(BIN, &launcher).unwrap();
    fs::set_permissions(&launcher, fs::Permissions::from_mode(0o755)).unwrap();
    let r = run_cmd({
        let mut c = Command::new(&launcher);
        c.arg("--version");
        c
    });
    assert_eq!(r.exit(), 111);
    assert_eq!(
        r.stderr_str(),
        format!(
            "courier-run: fatal: unable to run the main program {}: No such file or directory\n",
            d.join("courier-run-main").display()
        )
    );
    // Beside a copy of it, the pair works from anywhere.
    copy_programs(d.path());
    let r = run_cmd({
        let mut c = Command::new(&launcher);
        c.arg("--version");
        c
    });
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
}

/// glibc's NSS in a static program crashes on an account that is not in
/// /etc/passwd: the launcher (static) must have no lookup in it at all.
#[test]
fn the_launcher_looks_no_account_up() {
    let nm = which("nm");
    if !have("nm (binutils)", nm.is_some()) {
        return;
    }
    let nm = nm.unwrap();
    let out = Command::new(nm).arg(BIN).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split(' ').nth(2)).collect();
    assert!(names.contains(&"execve"), "no symbol table to read");
    for f in [
        "getpwnam",
        "getpwnam_r",
        "getpwuid",
        "getpwuid_r",
        "getgrnam",
        "getgrnam_r",
        "getgrgid",
        "getgrgid_r",
        "initgroups",
        "getgrouplist",
        "getaddrinfo",
        "gethostbyname",
    ] {
        assert!(!names.contains(&f), "the launcher calls {f}");
    }
}

/// Static where this glibc allows it (CI's does: libc6-dev has libc.a):
/// no loader at a supervised start. The main program stays dynamic, so
/// that accounts are looked up through NSS.
#[test]
fn the_launcher_is_static_and_the_main_program_dynamic() {
    assert!(dynamic(MAIN), "the main program must load NSS modules");
    // Under CI=true, a launcher that came out dynamic fails here.
    let _ = have("a static launcher (glibc's libc.a, rcrt1.o)", !dynamic(BIN));
}

/// A supervised start whose kept plan holds execs the service and
/// nothing else; a start that computes execs the main program first.
#[test]
fn a_kept_start_is_the_launchers_alone() {
    let strace = which("strace");
    if !have("strace", strace.is_some()) {
        return;
    }
    let strace = strace.unwrap();
    let d = TempDir::new("programs-kept");
    d.write("srv", "#!/bin/sh\nexit 0\n");
    fs::set_permissions(d.join("srv"), fs::Permissions::from_mode(0o755)).unwrap();
    d.write("conf", "PORT=143\n");
    d.write(
        "run",
        format!(
            "account=\nsoftlimit=\nrules=\nserver={}\nconfig=./conf\nenvdir=./env\nbanner=no\nwait_authdaemond=no\n",
            d.join("srv").display()
        ),
    );
    // Inputs older than the kept plan's racy window.
    std::thread::sleep(Duration::from_millis(150));
    let execs = || {
        let log = d.join("trace");
        let r = run_cmd({
            let mut c = Command::new(&strace);
            c.current_dir(d.path())
                .args(["-f", "-e", "trace=execve", "-o"])
                .arg(&log)
                .arg(BIN)
                .arg("./run")
                .env_clear()
                .env("PATH", "/usr/bin:/bin");
            c
        });
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        let trace = fs::read_to_string(&log).unwrap();
        let programs: Vec<String> = trace
            .lines()
            .filter(|l| l.contains("execve(") && l.contains("= 0"))
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .collect();
        programs
    };
    let first = execs();
    assert_eq!(first.len(), 3, "launcher, main program, service: {first:?}");
    assert!(first[1].ends_with("/courier-run-main"), "{first:?}");
    assert!(
        d.join(".run.plan").exists(),
        "the computing start kept its plan"
    );
    let second = execs();
    assert_eq!(second.len(), 2, "launcher, service: {second:?}");
    assert!(second[1].ends_with("/srv"), "{second:?}");
}
