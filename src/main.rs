//! The main program's entry (`courier-run-main`, which the launcher
//! `courier-run` execs for every command line but a kept plan's start:
//! src/programs.rs): C's `main`, so that std's runtime start-up is not
//! run before every launch.
//!
//! Why: std's `lang_start` asks the kernel for the main thread's stack
//! (glibc's `pthread_getattr_np` reads and sscanf-parses /proc/self/maps),
//! maps a signal stack and installs SIGSEGV/SIGBUS handlers, only to print
//! "stack overflow" instead of "Segmentation fault". courier-run bounds its
//! recursion (config nesting, `. FILE` depth), so that message never
//! applies; the start-up was ~190,000 instructions and 12 system calls of
//! each launch (bench/README.md, bench/variants.sh). What it did that
//! matters is done by `start::begin`: fds 0-2 are opened on /dev/null
//! when closed (so no file courier-run opens becomes stdout), and SIGPIPE
//! is ignored (a closed pipe is an EPIPE error; `launch` restores the
//! default before the exec).
//! glibc hands argv to std through `.init_array`, so `std::env::args`
//! works, and `std::process::exit` flushes stdout. Only glibc on Linux
//! does that (std registers its argv hook in `.init_array` for
//! `target_os = "linux", target_env = "gnu"` alone): built for musl or
//! another system, `std::env::args` would be empty here and a launch
//! would ignore its run file, so such a build is refused below.
#![no_main]

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
compile_error!(
    "courier-run's C main needs glibc on Linux: only there does std read argv \
     from .init_array (std::env::args would be empty, and a launch would ignore \
     its run file). Build for a *-linux-gnu target."
);

use nix::libc;

/// A bump arena of 1 MiB, then malloc (see `arena`).
#[global_allocator]
static ALLOC: courier_run::arena::Arena<{ 1 << 20 }> = courier_run::arena::Arena::new();

#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    courier_run::start::begin();
    std::process::exit(courier_run::cli::main())
}
