//! What both programs do first, before any other code runs: the launcher
//! (`src/launcher.rs`, the `courier-run` that run files name) and the main
//! program (`src/main.rs`). Both are C's `main`, so std's runtime start-up
//! is not run (see src/main.rs for why); what that start-up did that
//! matters is done here.

use nix::libc;

/// Standard descriptors opened on /dev/null when closed, a message for a
/// stack or mapping that runs out, SIGPIPE ignored.
pub fn begin() {
    open_std_fds();
    // A stack or mapping that runs out under a low ulimit: a message and
    // 111, not a bare signal (std's start-up did the like; see stack.rs).
    crate::stack::on_overflow();
    // SAFETY: setting a signal's disposition before any other thread exists.
    // A closed pipe is then an EPIPE error; `launch` (and the launcher's
    // exec of the main program) restores the default before an exec.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
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
