//! The hash tables of a launch: FNV-1a, not std's SipHash with random keys.
//!
//! Why: std's `RandomState` asks the kernel for 16 random bytes (one
//! `getrandom`) the first time a process makes one, and SipHash costs ~3x
//! FNV on the short names hashed here. Random keys protect a table whose
//! keys an attacker chooses; these keys are the names of the environment
//! courier-run was started with (whoever sets that runs the program), of
//! root's config files, and of the envdir courier-run wrote itself.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` hashed with [`Fnv`].
pub type FnvMap<K, V> = HashMap<K, V, BuildHasherDefault<Fnv>>;

/// An empty [`FnvMap`] with room for `n` entries.
pub fn map_with_capacity<K, V>(n: usize) -> FnvMap<K, V> {
    HashMap::with_capacity_and_hasher(n, Default::default())
}

/// FNV-1a over the bytes written.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        self.0 = h;
    }
}
