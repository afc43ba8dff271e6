//! The program's entry: C's `main`, so that std's runtime start-up is not
//! run before every launch.
//!
//! Why: std's `lang_start` asks the kernel for the main thread's stack
//! (glibc's `pthread_getattr_np` reads and sscanf-parses /proc/self/maps),
//! maps a signal stack and installs SIGSEGV/SIGBUS handlers, only to print
//! "stack overflow" instead of "Segmentation fault". courier-run bounds its
//! recursion (config nesting, `. FILE` depth), so that message never
//! applies; the start-up was ~190,000 instructions and 12 system calls of
//! each launch (bench/README.md, bench/variants.sh). What it did that matters
//! is done here: fds 0-2 are opened on /dev/null when closed (so no file
//! courier-run opens becomes stdout), and SIGPIPE is ignored (a closed pipe
//! is an EPIPE error; `launch` restores the default before the exec).
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
    open_std_fds();
    // A stack or mapping that runs out under a low ulimit: a message and
    // 111, not a bare signal (std's start-up did the like; see stack.rs).
    courier_run::stack::on_overflow();
    // SAFETY: setting a signal's disposition before any other thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    std::process::exit(courier_run::cli::main())
}

/// std's rule: a standard descriptor that is closed is opened on /dev/null
/// (one `poll`, as std does it), so that a file opened later cannot take
/// its number. No /dev/null: the process aborts rather than run with a
/// standard descriptor that a file could take.
fn open_std_fds() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: a valid array of 3 pollfd; timeout 0.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if r == -1 {
        // poll may fail (EINTR, ENOMEM); check each descriptor instead.
        for p in &mut fds {
            // SAFETY: fcntl on a number; no memory is passed.
            if unsafe { libc::fcntl(p.fd, libc::F_GETFD) } == -1 {
                p.revents = libc::POLLNVAL;
            }
        }
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            // SAFETY: a NUL-terminated path; the new fd is the lowest free.
            let fd = unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDWR) };
            if fd != p.fd {
                std::process::abort();
            }
        }
    }
}
