//! courier-run is two programs: the launcher, `courier-run`, which run
//! files name (`#!/usr/bin/courier-run`) and admins type, and the main
//! program, which does everything else. The launcher does one thing
//! itself: a supervised start whose kept plan holds (src/keep.rs). For
//! any other command line it execs the main program, with the same
//! arguments and environment.
//!
//! Why two: a start's fixed cost is the binary's. The main program is
//! 4 MB (the TLS probe's rustls and ring, the X.509 checks, clap,
//! serde_json); the launcher is the kept plan's code alone, linked as a
//! static PIE (build.rs): no loader, no symbol bound at start, and a
//! supervised restart starts only it. That took the kept launch from
//! 1.29 to 1.07 ms, 0.90× chpst (bench/README.md, "Two programs").
//!
//! Where each is: beside each other (`courier-run` and `courier-run-main`
//! in one directory, as cargo builds and installs them), unless the build
//! names their installed paths (`COURIER_RUN_LAUNCHER` and
//! `COURIER_RUN_MAIN` in the build's environment: the Debian package puts
//! the main program in /usr/lib/courier-run).

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::libc;

/// The launcher's file name, and the main program's beside it.
const LAUNCHER: &str = "courier-run";
const MAIN: &str = "courier-run-main";

/// The path of `name`: the build's, or `name` beside this program.
fn path_of(built: Option<&'static str>, name: &str) -> std::io::Result<PathBuf> {
    if let Some(p) = built.filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    // Without /proc (a chroot, an early boot) current_exe fails: argv[0]
    // is the path when it names one (a run file's shebang always does).
    let exe = std::env::current_exe().or_else(|e| {
        std::env::args_os()
            .next()
            .filter(|a| a.as_bytes().contains(&b'/'))
            .map(PathBuf::from)
            .ok_or(e)
    })?;
    Ok(exe.with_file_name(name))
}

/// The launcher: the program a run file, a unit's ExecStart or a log
/// run script names. Asked by the main program (init writes its path).
pub fn launcher() -> std::io::Result<PathBuf> {
    path_of(option_env!("COURIER_RUN_LAUNCHER"), LAUNCHER)
}

/// The main program, which the launcher execs.
pub fn main_program() -> std::io::Result<PathBuf> {
    path_of(option_env!("COURIER_RUN_MAIN"), MAIN)
}

/// Exec the main program with `args` (argv[0] included, as given) and the
/// environment as inherited. Returns only on failure: the fatal line is
/// printed and the exit code returned (111, as for any failed system call).
pub fn exec_main(args: &[OsString]) -> i32 {
    let fail = |what: String| {
        let line = format!("courier-run: fatal: {}\n", crate::shown::line(&what));
        use std::io::Write;
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        crate::error::Exit::System as i32
    };
    let path = match main_program() {
        Ok(p) => p,
        Err(e) => {
            return fail(format!(
                "unable to find courier-run's own path: {}",
                crate::error::strerror(&e)
            ));
        }
    };
    let cstr = |b: &[u8]| CString::new(b).ok();
    let Some(prog) = cstr(path.as_os_str().as_bytes()) else {
        return fail("the main program's path holds a NUL byte".into());
    };
    // argv came from the kernel: no argument holds a NUL byte.
    let argv: Vec<CString> = args.iter().filter_map(|a| cstr(a.as_bytes())).collect();
    let mut ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    ptrs.push(std::ptr::null());
    // SIGPIPE stays ignored across the exec: the main program ignores it
    // at its start whatever it inherits (start::begin), and a launch sets
    // the default before its own exec.
    // SAFETY: NUL-terminated strings and a null-terminated array that
    // outlive the call; execv passes `environ` as it is.
    unsafe { libc::execv(prog.as_ptr(), ptrs.as_ptr()) };
    let e = std::io::Error::last_os_error();
    fail(format!(
        "unable to run the main program {}: {}",
        crate::shown::path(path.as_os_str()),
        crate::error::strerror(&e)
    ))
}
