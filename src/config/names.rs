//! A table from names to positions in a list the caller owns, for the
//! scope's "latest assignment of NAME" and the inherited environment.
//!
//! Why not `HashMap<String, usize>`: its key is a second copy of every name
//! (one allocation per variable) and SipHash costs more than reading the
//! name did. Here a slot holds the name's hash and its index in the
//! caller's list, where the name already is; lookups compare against that.
//!
//! Why an unkeyed hash is safe: the names come from root-owned config files
//! and the environment root's supervisor gives, the same sources that decide
//! the service's environment; a file is at most 16 MiB. Nobody who cannot
//! already change the service can choose them to collide.

/// Open addressing with linear probing; at most half full, so a probe ends
/// after a few slots and 100,000 names stay linear.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// (hash, index + 1); an index of 0 is an empty slot.
    slots: Vec<(u64, usize)>,
    len: usize,
}

/// FxHash's step over 8-byte words (names are short ASCII), then a
/// multiplication so that the top bits, which pick the slot, mix them all.
pub(super) fn hash(name: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = name.len() as u64;
    let mut chunks = name.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(b)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

impl Index {
    /// The first slot to probe for `h` in a table of `n` (a power of two).
    fn start(h: u64, n: usize) -> usize {
        (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - n.trailing_zeros())) as usize
    }

    /// The slot holding `name` (Ok) or the empty slot where it would go
    /// (Err): the one probe of [`Index::get`] and [`Index::set`]. The table
    /// is never full ([`Index::set`] grows it first), so the probe ends.
    fn find<'k>(
        &self,
        h: u64,
        name: &[u8],
        key: impl Fn(usize) -> &'k [u8],
    ) -> Result<usize, usize> {
        let mask = self.slots.len() - 1;
        let mut s = Self::start(h, self.slots.len());
        loop {
            match self.slots[s] {
                (_, 0) => return Err(s),
                (sh, i) if sh == h && key(i - 1) == name => return Ok(s),
                _ => s = (s + 1) & mask,
            }
        }
    }

    /// The index stored for `name`; `key(i)` is the name at index `i`.
    pub(super) fn get<'k>(&self, name: &[u8], key: impl Fn(usize) -> &'k [u8]) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let s = self.find(hash(name), name, key).ok()?;
        Some(self.slots[s].1 - 1)
    }

    /// Store `i` for `name`: returns the index it replaces, if any.
    pub(super) fn set<'k>(
        &mut self,
        name: &[u8],
        i: usize,
        key: impl Fn(usize) -> &'k [u8],
    ) -> Option<usize> {
        if (self.len + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let h = hash(name);
        match self.find(h, name, key) {
            Ok(s) => Some(std::mem::replace(&mut self.slots[s].1, i + 1) - 1),
            Err(s) => {
                self.slots[s] = (h, i + 1);
                self.len += 1;
                None
            }
        }
    }

    /// Double the table (16 slots at first), placing every entry again.
    fn grow(&mut self) {
        let n = (self.slots.len() * 2).max(16);
        let old = std::mem::replace(&mut self.slots, vec![(0, 0); n]);
        for (h, i) in old.into_iter().filter(|&(_, i)| i != 0) {
            let mut s = Self::start(h, n);
            while self.slots[s].1 != 0 {
                s = (s + 1) & (n - 1);
            }
            self.slots[s] = (h, i);
        }
    }

    /// Room for `n` names without growing.
    pub(super) fn with_capacity(n: usize) -> Index {
        let mut ix = Index::default();
        if n > 0 {
            ix.slots = vec![(0, 0); (n * 2).next_power_of_two().max(16)];
        }
        ix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_index_replaces_and_all_are_found() {
        let names: Vec<String> = (0..1000).map(|i| format!("V{i:07}")).collect();
        let mut ix = Index::default();
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ix.set(n.as_bytes(), i, |j| names[j].as_bytes()), None);
        }
        for (i, n) in names.iter().enumerate() {
            assert_eq!(ix.get(n.as_bytes(), |j| names[j].as_bytes()), Some(i));
        }
        assert_eq!(ix.get(b"V", |j| names[j].as_bytes()), None);
        assert_eq!(ix.get(b"", |j| names[j].as_bytes()), None);
        // A name stored again points at its new index.
        let mut list = names.clone();
        list.push(names[7].clone());
        assert_eq!(
            ix.set(names[7].as_bytes(), 1000, |j| list[j].as_bytes()),
            Some(7)
        );
        assert_eq!(
            ix.get(names[7].as_bytes(), |j| list[j].as_bytes()),
            Some(1000)
        );
    }

    #[test]
    fn names_differing_past_eight_bytes_or_in_length_differ() {
        assert_ne!(hash(b"ABCDEFGHI"), hash(b"ABCDEFGHJ"));
        assert_ne!(hash(b"A"), hash(b"A\0"));
        let ix = Index::with_capacity(3);
        assert_eq!(ix.get(b"A", |_| b"A"), None);
    }
}
