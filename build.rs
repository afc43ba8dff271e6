//! Link gcc's unwinder statically (libgcc_eh.a) instead of loading
//! libgcc_s.so.1 at every start, as `gcc -static-libgcc` does for C.
//!
//! Why: with panic=abort nothing unwinds; std links libgcc_s only for its
//! backtrace symbols, and a second shared library costs each launch an
//! open, four mmaps, an mprotect and its relocations (~0.06 ms,
//! bench/README.md, bench/variants.sh). glibc stays dynamic, so NSS (getpwnam
//! through nsswitch.conf) is what every other program on the system uses.
//! Done by putting a directory first on the linker's search path whose
//! libgcc_s.a is gcc's libgcc_eh.a. When cc or the file is missing, or the
//! target is not glibc, nothing changes and the build links libgcc_s.so.
//!
//! And the program's relative relocations packed (`-z pack-relative-relocs`,
//! DT_RELR, glibc 2.36 and binutils 2.38): the ~2,900 pointers in the
//! binary's tables are listed as bitmaps instead of 24-byte RELA entries
//! (74 KB), so the loader reads a few hundred bytes instead of 18 pages at
//! every start (bench/README.md, bench/variants.sh). Only when a test
//! program linked with the option here runs, so an older toolchain or
//! glibc builds as before.
//! The binary then needs glibc >= 2.36 (it names GLIBC_ABI_DT_RELR, so an
//! older glibc refuses it at load with that name, not a crash).
//!
//! And the functions a launch runs placed together at the start of .text
//! (`link/launch.order`, written by bench/order.sh, passed to lld as
//! `--symbol-ordering-file`): a page fault on the binary's code maps the 16
//! pages around it, so code that is together costs fewer faults than the
//! same code spread over 3 MB (~17 fewer per launch). Only when the linker
//! is rustc's own lld (the default for x86_64-unknown-linux-gnu since Rust
//! 1.90, and no linker chosen by the build): GNU ld has no such option.
//! Names the file lists that the binary does not have (another toolchain)
//! are ignored, silently: the order is a speed-up, never a requirement.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-changed=link/launch.order");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !target.ends_with("-linux-gnu") || features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = std::process::Command::new(&cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let order = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default())
        .join("link/launch.order");
    if order.is_file() && links_with_rust_lld(&target) {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
    if glibc_loads_relr(&cc, &out_dir) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let eh = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !eh.is_absolute() || !eh.is_file() {
        return;
    }
    let dir = out_dir.join("static-libgcc");
    let _ = std::fs::create_dir_all(&dir);
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    if std::os::unix::fs::symlink(&eh, &link).is_err() {
        return;
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rerun-if-env-changed=COURIER_RUN_DYNAMIC_LAUNCHER");
    if std::env::var_os("COURIER_RUN_DYNAMIC_LAUNCHER").is_some_and(|v| !v.is_empty()) {
        return;
    }
    if let Some(stubs) = static_libc(&cc, &out_dir, &dir) {
        println!("cargo:rustc-link-arg-bin=courier-run=-static-pie");
        println!("cargo:rustc-link-arg-bin=courier-run=-L{}", stubs.display());
    }
}

/// The launcher (`courier-run`, src/launcher.rs) linked as a static PIE:
/// no loader, no libc.so to map, no symbol to bind, at every supervised
/// start (bench/README.md, "Two programs"). glibc's static NSS is what
/// crashed when the whole program was linked so; the launcher never looks
/// an account up (a kept plan holds numeric ids; anything else is the main
/// program's, which stays dynamic), and tests/programs.rs checks that it
/// has no NSS function in it.
///
/// rustc links with `-Wl,-Bdynamic ... -lc` whatever `-static-pie` says,
/// so a directory searched first holds a `libc.so` (and `libm.so`, ...)
/// that is a linker script naming the static archive. The launcher stays
/// dynamic (and works, slower) when libc.a or rcrt1.o is missing, or when
/// a test program linked the same way does not come out static or does
/// not run. `COURIER_RUN_DYNAMIC_LAUNCHER=1` asks for it dynamic
/// (bench/variants.sh measures both).
fn static_libc(cc: &str, out_dir: &Path, libgcc: &Path) -> Option<PathBuf> {
    if std::env::var("HOST").ok() != std::env::var("TARGET").ok() {
        return None;
    }
    // A static PIE needs position-independent code: not for a build that
    // asks for another relocation model (bench/variants.sh's non-PIE row).
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("relocation-model") && !flags.contains("relocation-model=pic") {
        return None;
    }
    let file = |name: &str| {
        let out = std::process::Command::new(cc)
            .arg(format!("-print-file-name={name}"))
            .output()
            .ok()?;
        let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        (out.status.success() && p.is_absolute() && p.is_file()).then_some(p)
    };
    file("rcrt1.o")?;
    let stubs = out_dir.join("static-libc");
    let _ = std::fs::remove_dir_all(&stubs);
    std::fs::create_dir_all(&stubs).ok()?;
    let libs = ["c", "m", "rt", "pthread", "dl", "util"];
    for lib in libs {
        match file(&format!("lib{lib}.a")) {
            Some(a) => {
                let script = format!("GROUP ( {} )\n", a.display());
                std::fs::write(stubs.join(format!("lib{lib}.so")), script).ok()?;
            }
            None if lib == "c" => return None,
            None => {}
        }
    }
    let src = out_dir.join("probe-static.c");
    let exe = out_dir.join("probe-static");
    std::fs::write(&src, "int main(void) { return 0; }\n").ok()?;
    let linked = std::process::Command::new(cc)
        .args(["-static-pie", "-fPIE", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg(format!("-L{}", stubs.display()))
        .arg(format!("-L{}", libgcc.display()))
        .arg("-Wl,-Bdynamic")
        .args([
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-ldl",
            "-lc",
        ])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let runs = || {
        std::process::Command::new(&exe)
            .status()
            .is_ok_and(|s| s.success())
    };
    (linked && std::fs::read(&exe).is_ok_and(|b| !has_interpreter(&b)) && runs()).then_some(stubs)
}

/// Does this 64-bit little-endian ELF file name a program interpreter
/// (PT_INTERP), i.e. is it dynamically linked? Unreadable: yes.
fn has_interpreter(elf: &[u8]) -> bool {
    let word = |at: usize, n: usize| -> Option<u64> {
        let b = elf.get(at..at + n)?;
        Some(b.iter().rev().fold(0u64, |v, &x| (v << 8) | u64::from(x)))
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (word(0x20, 8), word(0x36, 2), word(0x38, 2))
    else {
        return true;
    };
    // p_type is the first word of each program header; PT_INTERP is 3.
    (0..phnum).any(|i| {
        let at = usize::try_from(phoff + i * phentsize).ok();
        at.and_then(|a| word(a, 4)) == Some(3)
    })
}

/// Does this system's glibc load a PIE with packed relative relocations?
/// A test program linked by `cc` with the option, without a warning (an
/// unknown `-z` option is only a warning to ld), that names the glibc
/// version DT_RELR needs (an ld that drops the option silently would not)
/// and runs: the loader refuses it if glibc is older than 2.36. The final
/// link is lld's, which adds the same version unconditionally. Not when
/// cross-compiling: the test program could not run here.
fn glibc_loads_relr(cc: &str, out_dir: &Path) -> bool {
    if std::env::var("HOST").ok() != std::env::var("TARGET").ok() {
        return false;
    }
    let src = out_dir.join("probe.c");
    let exe = out_dir.join("probe");
    if std::fs::write(&src, "int x; int *p = &x; int main(void) { return *p; }\n").is_err() {
        return false;
    }
    let linked = std::process::Command::new(cc)
        .args([
            "-pie",
            "-fPIE",
            "-Wl,-z,pack-relative-relocs",
            "-Wl,--fatal-warnings",
            "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let names = |bytes: Vec<u8>| bytes.windows(17).any(|w| w == b"GLIBC_ABI_DT_RELR");
    linked
        && std::fs::read(&exe).is_ok_and(names)
        && std::process::Command::new(&exe)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

/// Does rustc link this build's binaries with its own lld? Yes for
/// x86_64-unknown-linux-gnu from Rust 1.90 on, unless a linker or linker
/// flavor is chosen (`-C linker=`, `linker = ` in a cargo config, RUSTFLAGS).
fn links_with_rust_lld(target: &str) -> bool {
    if target != "x86_64-unknown-linux-gnu" || std::env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if ["linker", "link-self-contained", "fuse-ld"]
        .iter()
        .any(|f| flags.contains(f))
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = std::process::Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
