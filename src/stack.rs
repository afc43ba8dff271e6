//! The main thread's stack under a low limit (`ulimit -s`): how much is
//! left before a recursion descends, and a message instead of a bare
//! SIGSEGV when it runs out anyway.
//!
//! Why: the config reader recurses (`${...}` nested up to
//! [`crate::config::MAX_NESTING`] deep, `. FILE` up to
//! [`crate::config::MAX_SOURCE_DEPTH`]). Those bounds are safe under the
//! usual 8 MiB, but under `ulimit -s 32` the deepest nesting allowed needs
//! more stack than there is (about 450 bytes a level in a release build,
//! several KB in a debug build), and the process died by SIGSEGV with no
//! word in the log. So a recursion asks [`enough`] before it descends past
//! the depth every real config stays under ([`CHECK_FROM`]), and refuses
//! with its position when less than [`NEEDED`] is left. The question costs
//! nothing on a normal launch: it is never asked below that depth.
//!
//! Anything else that overflows a tiny stack (`ulimit -s 8`: the start-up
//! itself) meets [`on_overflow`]'s handler: one line and exit 111.

use std::sync::OnceLock;

use nix::libc;

/// The depth of nesting from which a recursion asks for headroom: below
/// it, the stack a launch needs anyway covers it.
pub const CHECK_FROM: u32 = 8;

/// The stack a recursion wants left before it descends one more level:
/// one level and the leaf work under it (formatting a message, an
/// allocation), with room to spare. Measured: a `${` level is ~450 bytes
/// in a release build, and a release build reads the deepest nesting
/// allowed within 52 KiB of stack; a debug build's frames are several
/// times larger.
pub const NEEDED: usize = if cfg!(debug_assertions) {
    64 << 10
} else {
    16 << 10
};

/// Bytes between the current frame and the lowest address the main
/// thread's stack may grow to, or None when it is not limited or not known
/// (the limit is unlimited, /proc is not mounted, or this is not the main
/// thread).
pub fn headroom() -> Option<usize> {
    static BOUNDS: OnceLock<Option<(usize, usize)>> = OnceLock::new();
    let (floor, top) = (*BOUNDS.get_or_init(bounds))?;
    let probe = 0u8;
    let here = std::hint::black_box(&probe) as *const u8 as usize;
    (floor < here && here <= top).then(|| here - floor)
}

/// Is there [`NEEDED`] left (or no way to tell)?
pub fn enough() -> bool {
    headroom().is_none_or(|h| h >= NEEDED)
}

/// The soft limit, as people write it: `32 KiB`.
pub fn limit_text() -> String {
    match nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK) {
        Ok((soft, _)) if soft != libc::RLIM_INFINITY => format!("{} KiB", soft >> 10),
        _ => "unlimited".to_string(),
    }
}

/// The lowest and highest addresses of the main thread's stack: its
/// mapping's end (from /proc/self/maps) less the soft RLIMIT_STACK.
fn bounds() -> Option<(usize, usize)> {
    let (soft, _) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK).ok()?;
    if soft == libc::RLIM_INFINITY {
        return None;
    }
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
    let range = line.split(' ').next()?;
    let (_, end) = range.split_once('-')?;
    let top = usize::from_str_radix(end, 16).ok()?;
    Some((top.saturating_sub(soft as usize), top))
}

/// Bytes of the alternate stack the SIGSEGV handler runs on (in `.bss`:
/// the kernel gives its pages only if the handler ever runs).
const ALT_STACK: usize = 64 << 10;

struct AltStack(std::cell::UnsafeCell<[u8; ALT_STACK]>);
// SAFETY: only the kernel writes it, when it delivers SIGSEGV or SIGBUS.
unsafe impl Sync for AltStack {}
static ALT: AltStack = AltStack(std::cell::UnsafeCell::new([0; ALT_STACK]));

/// Turn a SIGSEGV or SIGBUS (a stack that ran out under a low `ulimit -s`,
/// or a mapping that could not grow under `ulimit -v`) into one line on
/// stderr and exit 111, as every other system failure ends, instead of a
/// death by signal with nothing in the log. Three system calls; the handler
/// runs on its own stack, since the usual one is what ran out. Reset by
/// execve, so the exec'd program keeps the default.
pub fn on_overflow() {
    // SAFETY: ALT is static, never used by anything but the kernel; the
    // handler only calls write(2) and _exit(2), which are async-signal-safe.
    unsafe {
        let ss = libc::stack_t {
            ss_sp: ALT.0.get().cast(),
            ss_flags: 0,
            ss_size: ALT_STACK,
        };
        if libc::sigaltstack(&ss, std::ptr::null_mut()) != 0 {
            return;
        }
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = overflow as *const () as usize;
        sa.sa_flags = libc::SA_ONSTACK | libc::SA_RESETHAND;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSEGV, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGBUS, &sa, std::ptr::null_mut());
    }
}

extern "C" fn overflow(_sig: libc::c_int) {
    const MSG: &[u8] = b"courier-run: fatal: segmentation fault: most likely the stack limit (ulimit -s) or the memory limit (ulimit -v) is too low for courier-run (raise it)\n";
    // SAFETY: write(2) and _exit(2) are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(111);
    }
}
