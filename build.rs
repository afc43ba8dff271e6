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
    if std::os::unix::fs::symlink(&eh, &link).is_ok() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
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
