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
//! every start (bench/README.md, bench/variants.sh). Only when a test link
//! with the option succeeds here, so an older toolchain builds as before.
//! The binary then needs glibc >= 2.36 (it names GLIBC_ABI_DT_RELR, so an
//! older glibc refuses it at load with that name, not a crash).
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
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
    if links_with(&cc, &out_dir, "-Wl,-z,pack-relative-relocs") {
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

/// Does `cc` link a PIE with a pointer in its data using `flag`, without a
/// warning (an unknown `-z` option is only a warning to ld)?
fn links_with(cc: &str, out_dir: &Path, flag: &str) -> bool {
    let src = out_dir.join("probe.c");
    if std::fs::write(&src, "int x; int *p = &x; int main(void) { return *p; }\n").is_err() {
        return false;
    }
    std::process::Command::new(cc)
        .args(["-pie", "-fPIE", flag, "-Wl,--fatal-warnings", "-o"])
        .arg(out_dir.join("probe"))
        .arg(&src)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
