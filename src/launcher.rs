//! The launcher, `courier-run`: the program run files name. A supervised
//! start whose kept plan holds is launched here, without computing
//! (src/keep.rs); any other command line is the main program's, which
//! this execs with the same arguments and environment (src/programs.rs
//! says why there are two).
//!
//! It is C's `main` as the main program's is (src/main.rs says why), and
//! only the kept plan's code is linked in. Where the build can, it is a
//! static PIE (build.rs): no loader and nothing bound at start. Static
//! glibc cannot load NSS modules, so this program must never look an
//! account up: a kept plan holds only while every account is in
//! /etc/passwd and /etc/group read as files (src/keep.rs), and anything
//! else is the main program's, which is dynamic.
#![no_main]

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
compile_error!(
    "courier-run's C main needs glibc on Linux: only there does std read argv \
     from .init_array (std::env::args would be empty). Build for a *-linux-gnu target."
);

use nix::libc;

/// Every block from a bump arena of 1 MiB while it fits, then malloc
/// (see `arena`): a kept plan's start never starts malloc.
#[global_allocator]
static ALLOC: courier_run::arena::Arena<{ 1 << 20 }, { 1 << 20 }> =
    courier_run::arena::Arena::new();

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    courier_run::start::begin();
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(runfile) = args.get(1..).and_then(courier_run::keep::shebang_runfile)
        && let Some(r) = courier_run::keep::launch(runfile)
    {
        std::process::exit(courier_run::error::fatal(r.map(|n| match n {})));
    }
    std::process::exit(courier_run::programs::exec_main(&args))
}
