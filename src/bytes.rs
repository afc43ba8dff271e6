//! Finding one byte in a slice, without asking the CPU what it can do.
//!
//! Why: `memchr::memchr` and friends pick AVX2 or SSE2 at their first call
//! with `is_x86_feature_detected!`, and std's detection runs CPUID a dozen
//! times. In a virtual machine every CPUID traps to the hypervisor: ~25 us
//! of each launch (`perf record -e cpu-clock`, std_detect's
//! `detect_and_initialize` under the config reader's first `memrchr`), a
//! fiftieth of the whole launch, to speed up searches of a few dozen bytes.
//! SSE2 is part of x86_64, so its routines are used directly here: no
//! detection, the same results. Other architectures keep memchr's choice.

#[cfg(target_arch = "x86_64")]
use memchr::arch::x86_64::sse2::memchr::One;

#[cfg(target_arch = "x86_64")]
fn one(b: u8) -> One {
    // SSE2 is a compile-time feature of every x86_64 target: never None.
    One::new(b).expect("x86_64 has SSE2")
}

/// The index of the first `b` in `s`.
#[inline]
pub fn find(b: u8, s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return one(b).find(s);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memchr(b, s);
}

/// The index of the last `b` in `s`.
#[inline]
pub fn rfind(b: u8, s: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    return one(b).rfind(s);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memrchr(b, s);
}

/// How many `b` there are in `s`.
#[inline]
pub fn count(b: u8, s: &[u8]) -> usize {
    #[cfg(target_arch = "x86_64")]
    return one(b).count(s);
    #[cfg(not(target_arch = "x86_64"))]
    return memchr::memchr_iter(b, s).count();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same answers as a plain scan, on lengths around the 16- and
    /// 64-byte blocks the vector routines work in.
    #[test]
    fn agrees_with_a_plain_scan() {
        for len in [0usize, 1, 15, 16, 17, 31, 32, 63, 64, 65, 200] {
            for at in [None, Some(0), Some(len / 2), Some(len.saturating_sub(1))] {
                let mut s = vec![b'a'; len];
                if let Some(i) = at.filter(|&i| i < len) {
                    s[i] = b'\n';
                    if i + 3 < len {
                        s[i + 3] = b'\n';
                    }
                }
                let plain = s.iter().position(|&c| c == b'\n');
                assert_eq!(find(b'\n', &s), plain, "len {len} at {at:?}");
                let last = s.iter().rposition(|&c| c == b'\n');
                assert_eq!(rfind(b'\n', &s), last, "len {len} at {at:?}");
                let n = s.iter().filter(|&&c| c == b'\n').count();
                assert_eq!(count(b'\n', &s), n, "len {len} at {at:?}");
            }
        }
    }
}
