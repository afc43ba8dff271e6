//! "An unchanged start writes nothing", checked on an strace log: no file
//! opened for writing or created, nothing renamed, unlinked, made, synced
//! or truncated. Include with `#[path = "nowrite/mod.rs"] mod nowrite;`.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// The strace arguments that log what [`assert_no_writes`] looks at, into
/// `log`: every process (`-f`), file and descriptor calls.
pub fn strace_args(log: &Path) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = ["-f", "-qq", "-e", "trace=%file,%desc", "-o"]
        .iter()
        .map(Into::into)
        .collect();
    v.push(log.into());
    v
}

/// Is strace installed and allowed to trace here?
pub fn strace_works() -> bool {
    Command::new("strace")
        .args(["-qq", "-e", "trace=none", "/bin/true"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The calls of the log `trace` that write to the filesystem; empty when
/// none. Opening for writing is read from the flags strace prints
/// (O_WRONLY, O_RDWR, O_CREAT, O_TRUNC).
pub fn writes(trace: &str) -> Vec<String> {
    const CALLS: &[&str] = &[
        "rename",
        "renameat",
        "renameat2",
        "unlink",
        "unlinkat",
        "rmdir",
        "mkdir",
        "mkdirat",
        "fsync",
        "fdatasync",
        "syncfs",
        "sync",
        "sync_file_range",
        "truncate",
        "ftruncate",
        "creat",
        "link",
        "linkat",
        "symlink",
        "symlinkat",
        "chmod",
        "fchmod",
        "fchmodat",
        "chown",
        "fchown",
        "fchownat",
        "lchown",
        "utimensat",
        "futimesat",
        "mknod",
        "mknodat",
    ];
    let mut out = Vec::new();
    for line in trace.lines() {
        // "PID call(args) = ret", or "call(args) = ret" without -f.
        let body = line
            .split_once(' ')
            .filter(|(pid, _)| pid.bytes().all(|c| c.is_ascii_digit()))
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        let Some((call, args)) = body.split_once('(') else {
            continue;
        };
        let opens_for_write = matches!(call, "open" | "openat" | "openat2")
            && ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                .iter()
                .any(|f| args.contains(f));
        // Even a failed attempt counts: it shows the program meant to write.
        if opens_for_write || CALLS.contains(&call) {
            out.push(line.to_string());
        }
    }
    out
}

/// Fail, listing them, when `trace` holds any write to the filesystem.
pub fn assert_no_writes(trace: &str) {
    let w = writes(trace);
    assert!(w.is_empty(), "an unchanged start wrote:\n{}", w.join("\n"));
}
