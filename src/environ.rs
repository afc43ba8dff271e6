//! The environment courier-run started with: read once, as bytes, with
//! one rule for a name present more than once.
//!
//! The rule is dash's, since the classic run script is a `/bin/sh` script
//! and Courier's rc sources its config with `/bin/sh`: dash imports
//! `environ` in order with `setvareq`, so a later copy of a name replaces
//! an earlier one, and the child gets one copy. getenv(3) would see the
//! first; a `$X` in the run file, a `$X` in a config file and the exec'd
//! program must all see the same value, so every reader goes through here.

use std::os::unix::ffi::OsStrExt;

/// (name, value) pairs, one per name, in the order names first appear.
pub type Environ = Vec<(Vec<u8>, Vec<u8>)>;

/// The inherited names a computation looked up, while recording. A static
/// and not a thread-local: a thread-local with a destructor makes glibc
/// allocate at first use, which under a low `ulimit -v` is a fatal error
/// instead of a message (tests/low_limits.rs).
static READS: std::sync::Mutex<Option<Vec<Vec<u8>>>> = std::sync::Mutex::new(None);

fn reads_lock() -> std::sync::MutexGuard<'static, Option<Vec<Vec<u8>>>> {
    READS.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on, note each inherited name a computation looks up: the kept
/// plan (src/keep.rs) holds only while those are unchanged; a variable
/// nobody read (systemd's INVOCATION_ID) only passes through.
pub fn record_reads() {
    *reads_lock() = Some(Vec::new());
}

/// The names looked up since [`record_reads`] (None: not recording).
pub fn reads() -> Option<Vec<Vec<u8>>> {
    reads_lock().clone()
}

/// Note that `name` was looked up in the inherited environment (or would
/// have been, had it been there): every lookup of a computation goes
/// through here ($NAME in a config or the run file, the front end's PATH,
/// a value of the program's environment the plan checks).
pub fn note_read(name: &[u8]) {
    if let Some(v) = reads_lock().as_mut()
        && !v.iter().any(|n| n == name)
    {
        v.push(name.to_vec());
    }
}

/// The process's environment under dash's rule.
pub fn inherited() -> Environ {
    dedup(
        std::env::vars_os()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect(),
    )
}

/// One entry per name: the last value (dash), at the first position.
pub fn dedup(env: Environ) -> Environ {
    let mut index: crate::hash::FnvMap<Vec<u8>, usize> = crate::hash::map_with_capacity(env.len());
    let mut out: Environ = Vec::with_capacity(env.len());
    for (n, v) in env {
        match index.get(&n) {
            Some(&i) => out[i].1 = v,
            None => {
                index.insert(n.clone(), out.len());
                out.push((n, v));
            }
        }
    }
    out
}

/// The names a `$NAME` reference can see (sh names are ASCII; a name that
/// is not UTF-8 cannot be referenced, and is still passed on to the child).
pub fn visible(env: &Environ) -> Vec<(String, Vec<u8>)> {
    env.iter()
        .filter_map(|(n, v)| Some((String::from_utf8(n.clone()).ok()?, v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_copy_wins_at_first_place() {
        let e = dedup(vec![
            (b"X".to_vec(), b"1".to_vec()),
            (b"Y".to_vec(), b"y".to_vec()),
            (b"X".to_vec(), b"2".to_vec()),
        ]);
        assert_eq!(
            e,
            vec![
                (b"X".to_vec(), b"2".to_vec()),
                (b"Y".to_vec(), b"y".to_vec())
            ]
        );
    }
}
