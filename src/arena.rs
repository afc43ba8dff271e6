//! The program's allocator: small blocks from a bump arena, the rest (and
//! everything once the arena is full) from the system's malloc.
//!
//! Why: a launch lives for about a millisecond and then execs. glibc's
//! malloc/free were a quarter of the instructions of a launch (2,800
//! calls, ~250 instructions a pair, in callgrind), nearly all for blocks
//! under [`SMALL`] bytes (names, values, positions). Here such an
//! allocation is an add and a compare, a free is nothing (or takes back
//! the last block), and the last block grows in place. Large blocks (file
//! contents, directory buffers, big tables) go to malloc, which reuses
//! them: on this VM every page a process touches costs ~1.5 us, so an
//! arena that never reuses must stay small (small blocks of a launch of
//! the Debian config: ~70 KB). Once the arena is full everything goes to
//! malloc, so a config of 100,000 variables costs what it did plus at
//! most the arena. The arena is in `.bss`: the kernel gives its pages on
//! first touch, so a launch pays only for the pages it uses.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest block taken from the arena by default (the main program's).
pub const SMALL: usize = 256;
const MAX_ALIGN: usize = 16;

/// `N` bytes to bump through for blocks of up to `LARGEST` bytes, then
/// [`System`]. The launcher takes every block from its arena (a kept
/// plan's start allocates ~30 KB and never needs a block back): it then
/// never starts malloc, whose first call costs two `brk` and the pages of
/// its heap.
#[repr(C, align(64))]
pub struct Arena<const N: usize, const LARGEST: usize = SMALL> {
    space: UnsafeCell<[u8; N]>,
    /// Offset of the first free byte in `space`.
    next: AtomicUsize,
}

// SAFETY: `next` is only changed by compare-exchange, so two threads never
// get overlapping blocks; the bytes of a block belong to its owner.
//
// The orderings: a block is handed from one thread to another through
// `next` (thread A frees or shrinks the last block, moving `next` back;
// thread B's bump then takes the same bytes). A's writes to those bytes
// must happen before B's, so every successful compare-exchange is
// AcqRel (it publishes what its thread did with the bytes it gives back
// and sees what the previous owner did with the bytes it takes), and
// every load that a compare-exchange depends on is Acquire. Relaxed was
// enough on x86 (every locked instruction is a full barrier: the same
// machine code either way) but not on weak-memory CPUs (ARM, POWER).
unsafe impl<const N: usize, const LARGEST: usize> Sync for Arena<N, LARGEST> {}

impl<const N: usize, const LARGEST: usize> Arena<N, LARGEST> {
    pub const fn new() -> Self {
        Arena {
            space: UnsafeCell::new([0; N]),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.space.get() as usize
    }

    fn holds(&self, ptr: *mut u8) -> bool {
        (ptr as usize).wrapping_sub(self.base()) < N
    }

    /// A block of `layout` from the arena, or None when it is larger
    /// than `LARGEST` or does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > LARGEST || layout.align() > MAX_ALIGN {
            return None;
        }
        let base = self.base();
        let mut cur = self.next.load(Ordering::Acquire);
        loop {
            let start = (base + cur).checked_next_multiple_of(layout.align())? - base;
            let end = start.checked_add(layout.size())?;
            if end > N {
                return None;
            }
            match self
                .next
                .compare_exchange_weak(cur, end, Ordering::AcqRel, Ordering::Acquire)
            {
                // SAFETY: start < end <= N: inside `space`.
                Ok(_) => return Some(unsafe { (self.space.get() as *mut u8).add(start) }),
                Err(now) => cur = now,
            }
        }
    }

    /// Is the block at `ptr` of `size` bytes the last one handed out?
    /// Then `next` may move its end.
    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize - self.base() + size == self.next.load(Ordering::Acquire)
    }
}

impl<const N: usize, const LARGEST: usize> Default for Arena<N, LARGEST> {
    fn default() -> Self {
        Self::new()
    }
}

/// A block malloc could not give (a low `ulimit -v`): one line on stderr
/// and exit 111, as any failed system call ends, instead of std's
/// "memory allocation failed" and an abort (134). Nothing here allocates.
fn or_exit(p: *mut u8, size: usize) -> *mut u8 {
    if !p.is_null() {
        return p;
    }
    let mut msg = [0u8; 160];
    let mut n = 0;
    let mut put = |b: &[u8]| {
        let k = b.len().min(msg.len() - n);
        msg[n..n + k].copy_from_slice(&b[..k]);
        n += k;
    };
    put(b"courier-run: fatal: out of memory (a block of ");
    let mut digits = [0u8; 20];
    let (mut v, mut i) = (size, digits.len());
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" bytes): the memory limit (ulimit -v) is too low (raise it)\n");
    // SAFETY: write(2) and _exit(2) on a buffer of this frame.
    unsafe {
        nix::libc::write(2, msg.as_ptr().cast(), n);
        nix::libc::_exit(111)
    }
}

// SAFETY: blocks from the arena are distinct, inside `space`, aligned as
// asked and never handed out twice while live (only the last block's end
// moves back on free or forward on realloc); everything else is System's.
unsafe impl<const N: usize, const LARGEST: usize> GlobalAlloc for Arena<N, LARGEST> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's layout, passed on.
            None => or_exit(unsafe { System.alloc(layout) }, layout.size()),
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.holds(ptr) {
            // The last block is taken back; any other stays until exit.
            let start = ptr as usize - self.base();
            let _ = self.next.compare_exchange(
                start + layout.size(),
                start,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
        } else {
            // SAFETY: not ours, so System's, with the layout it was made with.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: System's block, the caller's arguments.
            return or_exit(unsafe { System.realloc(ptr, layout, new_size) }, new_size);
        }
        let start = ptr as usize - self.base();
        if new_size <= layout.size() {
            // Shrinking: the tail of the last block is given back (by
            // compare-exchange: another thread may have bumped meanwhile).
            let _ = self.next.compare_exchange(
                start + layout.size(),
                start + new_size,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            return ptr;
        }
        if new_size <= LARGEST && self.is_last(ptr, layout.size()) && start + new_size <= N {
            let end = start + layout.size();
            if self
                .next
                .compare_exchange(end, start + new_size, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return ptr;
            }
        }
        // SAFETY: realloc's contract: new_size rounded to align is valid.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a valid layout of non-zero size (new_size > old size).
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live and distinct; the old one holds
            // layout.size() bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligned_blocks_then_falls_back_to_system() {
        let a: Box<Arena<256>> = Box::default();
        unsafe {
            let p = a.alloc(layout(3, 1));
            let q = a.alloc(layout(8, 8));
            assert!(a.holds(p) && a.holds(q));
            assert_eq!(q as usize % 8, 0);
            assert!(q as usize >= p as usize + 3);
            let big = a.alloc(layout(SMALL + 1, 8));
            assert!(!big.is_null() && !a.holds(big), "not small: from System");
            big.write_bytes(7, SMALL + 1);
            a.dealloc(big, layout(SMALL + 1, 8));
            let full = a.alloc(layout(250, 8));
            assert!(!a.holds(full), "does not fit: from System");
            a.dealloc(full, layout(250, 8));
            let r = a.alloc(layout(16, 16));
            assert_eq!(r as usize % 16, 0);
            assert!(a.holds(r));
            let wide = a.alloc(layout(16, 64));
            assert!(!a.holds(wide), "over-aligned: from System");
            assert_eq!(wide as usize % 64, 0);
            a.dealloc(wide, layout(16, 64));
        }
    }

    #[test]
    fn frees_the_last_block_and_grows_it_in_place() {
        let a: Box<Arena<256>> = Box::default();
        unsafe {
            let p = a.alloc(layout(10, 1));
            let q = a.alloc(layout(10, 1));
            a.dealloc(q, layout(10, 1));
            assert_eq!(a.alloc(layout(10, 1)), q, "the last block is reused");
            q.copy_from(b"0123456789".as_ptr(), 10);
            let g = a.realloc(q, layout(10, 1), 100);
            assert_eq!(g, q, "the last block grows in place");
            assert_eq!(std::slice::from_raw_parts(g, 10), b"0123456789");
            // Not the last block: moved, bytes kept.
            p.copy_from(b"abcdefghij".as_ptr(), 10);
            let m = a.realloc(p, layout(10, 1), 20);
            assert_ne!(m, p);
            assert_eq!(std::slice::from_raw_parts(m, 10), b"abcdefghij");
            // Past SMALL: to System, bytes kept.
            let s = a.realloc(m, layout(20, 1), 1000);
            assert!(!a.holds(s));
            assert_eq!(std::slice::from_raw_parts(s, 10), b"abcdefghij");
            a.dealloc(s, layout(1000, 1));
        }
    }

    /// The launcher's arena (every size, while it fits): a large block is
    /// bumped, grows in place while last, and spills to System when full.
    #[test]
    fn an_arena_of_every_size_spills_only_when_full() {
        let a: Box<Arena<8192, 8192>> = Box::default();
        unsafe {
            let p = a.alloc(layout(3000, 8));
            assert!(a.holds(p), "past SMALL, still bumped");
            p.write_bytes(5, 3000);
            let g = a.realloc(p, layout(3000, 8), 6000);
            assert_eq!(g, p, "the last block grows in place");
            assert!(std::slice::from_raw_parts(g, 3000).iter().all(|&b| b == 5));
            let s = a.alloc(layout(4000, 8));
            assert!(!s.is_null() && !a.holds(s), "does not fit: from System");
            a.dealloc(s, layout(4000, 8));
            let moved = a.realloc(g, layout(6000, 8), 9000);
            assert!(!a.holds(moved), "past the arena: to System, bytes kept");
            assert!(
                std::slice::from_raw_parts(moved, 3000)
                    .iter()
                    .all(|&b| b == 5)
            );
            a.dealloc(moved, layout(9000, 8));
        }
    }

    /// Threads (`--check` runs probes in threads) never get overlapping
    /// blocks: each thread fills its blocks with its own byte and finds it
    /// intact before freeing, through allocs, reallocs (grow, shrink, move)
    /// and frees, with the arena filling up and spilling to System.
    #[test]
    fn threads_never_share_a_block() {
        static A: Arena<{ 1 << 16 }> = Arena::new();
        let threads: Vec<_> = (1..=4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let mut live: Vec<(*mut u8, Layout)> = Vec::new();
                    let mut seed = u32::from(t).wrapping_mul(2_654_435_761);
                    let mut next = || {
                        seed ^= seed << 13;
                        seed ^= seed >> 17;
                        seed ^= seed << 5;
                        seed as usize
                    };
                    let check = |p: *mut u8, n: usize| unsafe {
                        assert!(std::slice::from_raw_parts(p, n).iter().all(|&b| b == t));
                    };
                    for _ in 0..20_000 {
                        unsafe {
                            match next() % 4 {
                                0 | 1 => {
                                    let l = layout(1 + next() % 300, 1 << (next() % 5));
                                    let p = A.alloc(l);
                                    p.write_bytes(t, l.size());
                                    live.push((p, l));
                                }
                                2 if !live.is_empty() => {
                                    let (p, l) = live.swap_remove(next() % live.len());
                                    check(p, l.size());
                                    A.dealloc(p, l);
                                }
                                3 if !live.is_empty() => {
                                    let i = next() % live.len();
                                    let (p, l) = live[i];
                                    check(p, l.size());
                                    let n = 1 + next() % 300;
                                    let q = A.realloc(p, l, n);
                                    check(q, n.min(l.size()));
                                    q.write_bytes(t, n);
                                    live[i] = (q, layout(n, l.align()));
                                }
                                _ => {}
                            }
                        }
                    }
                    for (p, l) in live {
                        check(p, l.size());
                        unsafe { A.dealloc(p, l) };
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("no thread saw another's byte");
        }
    }

    /// Every compare-exchange that moves `next` (and every load it starts
    /// from) orders memory: a block handed from one thread to another
    /// through `next` carries its previous owner's writes. x86-64 runs the
    /// same instructions for Relaxed and AcqRel read-modify-writes, so no
    /// run here could show the difference; the source is what is checked.
    #[test]
    fn hand_overs_between_threads_are_ordered() {
        let src = include_str!("arena.rs");
        let code = &src[..src.find("#[cfg(test)]").unwrap()];
        let relaxed = concat!("Ordering::", "Relaxed");
        let lines: Vec<&str> = code.lines().filter(|l| l.contains(relaxed)).collect();
        assert!(lines.is_empty(), "unordered atomics: {lines:#?}");
        assert!(code.matches("Ordering::AcqRel").count() >= 4);
    }

    #[test]
    fn shrinking_keeps_the_block() {
        let a: Box<Arena<256>> = Box::default();
        unsafe {
            let p = a.alloc(layout(100, 8));
            let s = a.realloc(p, layout(100, 8), 10);
            assert_eq!(s, p);
            let n = a.alloc(layout(1, 1));
            assert_eq!(n as usize, p as usize + 10, "the tail was given back");
        }
    }
}
