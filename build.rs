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
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    let features = std::env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    if !target.ends_with("-linux-gnu") || features.split(',').any(|f| f == "crt-static") {
        return;
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let Ok(out) = std::process::Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
    else {
        return;
    };
    let eh = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !out.status.success() || !eh.is_absolute() || !eh.is_file() {
        return;
    }
    let dir =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-libgcc");
    let _ = std::fs::create_dir_all(&dir);
    let link = dir.join("libgcc_s.a");
    let _ = std::fs::remove_file(&link);
    if std::os::unix::fs::symlink(&eh, &link).is_ok() {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
