//! The recorder: a stand-in for tcpserver in tests/launcher/.
//!
//! Built by the test with plain `rustc` (std only, no Cargo target of its
//! own) and used as the `server` setting: `server=/path/recorder OUT`, so
//! that it runs as `recorder OUT -c N [-x rules] address port login ...`.
//! It writes to OUT, without interpreting anything, what it was started
//! with: its pid, argv (exact bytes), the environ block the kernel gave it,
//! /proc/self/limits and /proc/self/status (uid, gid, groups, umask,
//! SigIgn), where fds 1 and 2 point and the executable's path. The test
//! parses these. A compiled program rather than a `#!/bin/sh` script: a
//! script's argv[0] would be replaced by the interpreter, and the shell
//! could add to its environment and signal dispositions.
//!
//! `#![no_main]`: Rust's own start-up (which sets SIGPIPE to "ignore"
//! before `main`) must not run, or the recorded SigIgn would be the
//! recorder's and not what courier-run exec'd it with. std still works
//! (on Linux/glibc it gets argv and the environment by itself).
//!
//! Format: one section after another, each `NAME LEN\n` then LEN bytes
//! then `\n`.

#![no_main]

use std::io::Write;
use std::os::unix::ffi::OsStrExt;

fn section(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    out.extend_from_slice(format!("{name} {}\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.push(b'\n');
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| format!("error: {e}").into_bytes())
}

fn link(path: &str) -> Vec<u8> {
    match std::fs::read_link(path) {
        Ok(p) => p.as_os_str().as_bytes().to_vec(),
        Err(e) => format!("error: {e}").into_bytes(),
    }
}

// Compiled as edition 2021 (tests/launcher/), where this is the spelling.
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let args: Vec<Vec<u8>> = std::env::args_os().map(|a| a.as_bytes().to_vec()).collect();
    let Some(dest) = std::env::args_os().nth(1) else {
        eprintln!("recorder: usage: recorder OUTFILE [args...]");
        return 100;
    };
    let mut out = Vec::new();
    section(&mut out, "pid", std::process::id().to_string().as_bytes());
    section(&mut out, "argv", &args.join(&0u8));
    section(&mut out, "environ", &read("/proc/self/environ"));
    section(&mut out, "limits", &read("/proc/self/limits"));
    section(&mut out, "status", &read("/proc/self/status"));
    section(&mut out, "exe", &link("/proc/self/exe"));
    section(&mut out, "fd1", &link("/proc/self/fd/1"));
    section(&mut out, "fd2", &link("/proc/self/fd/2"));
    section(&mut out, "cwd", &link("/proc/self/cwd"));
    let tmp = {
        let mut t = dest.clone();
        t.push(".tmp");
        t
    };
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(&out))
        .and_then(|_| std::fs::rename(&tmp, &dest));
    if let Err(e) = written {
        eprintln!("recorder: unable to write {}: {e}", dest.to_string_lossy());
        return 111;
    }
    0
}
