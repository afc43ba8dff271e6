//! The marker file `.courier-run`: proof that courier-run wrote the envdir
//! (daemontools' envdir skips names starting with `.`), and its manifest,
//! which makes the "unchanged?" question cost one `fstatat` per file.
//!
//! Format: the line `courier-run envdir 1`, then one record per file:
//! `NAME INODE CTIME_SEC CTIME_NSEC MODE LEN\n` followed by the LEN bytes
//! the file holds (its encoded value, ending in `\n`). The content is kept
//! in full rather than as a hash so that comparing it with the config is
//! exact: no collision can hide a change.

use crate::hash::FnvMap;

pub const MARKER: &str = ".courier-run";
const HEADER: &[u8] = b"courier-run envdir 1\n";

/// What the writer knew about one file right after writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub ino: u64,
    pub ctime: (i64, i64),
    pub mode: u32,
}

/// One record, borrowing from the manifest's bytes.
#[derive(Debug)]
pub struct Listed<'a> {
    pub stamp: Written,
    pub content: &'a [u8],
}

pub fn render(files: &[(&[u8], Written, &[u8])]) -> Vec<u8> {
    let size: usize = files.iter().map(|(n, _, c)| n.len() + c.len() + 64).sum();
    let mut out = Vec::with_capacity(HEADER.len() + size);
    out.extend_from_slice(HEADER);
    for (name, s, content) in files {
        out.extend_from_slice(name);
        out.extend_from_slice(
            format!(
                " {} {} {} {:o} {}\n",
                s.ino,
                s.ctime.0,
                s.ctime.1,
                s.mode,
                content.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(content);
    }
    out
}

/// A parsed manifest: the records in the order written (the order the
/// files were created in, which is the cheapest order to stat them), and
/// an index by name.
pub struct Manifest<'a> {
    pub records: Vec<(&'a [u8], Listed<'a>)>,
    /// FNV (`crate::hash`): names are short and written by us; SipHash
    /// cost a tenth of the unchanged check at 100,000 names.
    index: FnvMap<&'a [u8], usize>,
}

impl<'a> Manifest<'a> {
    pub fn get(&self, name: &[u8]) -> Option<&Listed<'a>> {
        self.index.get(name).map(|&i| &self.records[i].1)
    }

    pub fn contains(&self, name: &[u8]) -> bool {
        self.index.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }
}

/// A number as `render` writes it: decimal (a `-` allowed) or octal
/// digits, at least one, no overflow. By hand: `from_utf8` and
/// `from_str_radix` were a quarter of the unchanged check's instructions.
fn number(field: &[u8], radix: u8) -> Option<i64> {
    let (neg, digits) = match field.strip_prefix(b"-") {
        Some(d) => (true, d),
        None => (false, field),
    };
    if digits.is_empty() {
        return None;
    }
    let mut n: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d >= radix {
            return None;
        }
        n = n.checked_mul(i64::from(radix))?.checked_add(i64::from(d))?;
    }
    Some(if neg { -n } else { n })
}

/// The records; `None` for anything malformed or a name twice (which only
/// means "rewrite").
pub fn parse(data: &[u8]) -> Option<Manifest<'_>> {
    let mut rest = data.strip_prefix(HEADER)?;
    let mut m = Manifest {
        records: Vec::new(),
        index: FnvMap::default(),
    };
    while !rest.is_empty() {
        let nl = crate::bytes::find(b'\n', rest)?;
        let mut fields = rest[..nl].split(|&c| c == b' ');
        let name = fields.next()?;
        let mut num = |radix| number(fields.next()?, radix);
        let ino = num(10)? as u64;
        let ctime = (num(10)?, num(10)?);
        let mode = u32::try_from(num(8)?).ok()?;
        let len = usize::try_from(num(10)?).ok()?;
        if fields.next().is_some() || rest.len() < nl + 1 + len {
            return None;
        }
        let content = &rest[nl + 1..nl + 1 + len];
        rest = &rest[nl + 1 + len..];
        let stamp = Written { ino, ctime, mode };
        if m.index.insert(name, m.records.len()).is_some() {
            return None;
        }
        m.records.push((name, Listed { stamp, content }));
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_rendered() {
        assert_eq!(number(b"0", 10), Some(0));
        assert_eq!(number(b"1234567890", 10), Some(1_234_567_890));
        assert_eq!(number(b"-17", 10), Some(-17));
        assert_eq!(number(b"644", 8), Some(0o644));
        assert_eq!(number(b"9223372036854775807", 10), Some(i64::MAX));
        for bad in [&b""[..], b"-", b"1a", b"+1", b" 1", b"9223372036854775808"] {
            assert_eq!(number(bad, 10), None, "{bad:?}");
        }
        assert_eq!(number(b"8", 8), None);
    }

    #[test]
    fn round_trip_and_refusals() {
        let s = Written {
            ino: 7,
            ctime: (1_700_000_000, 5),
            mode: 0o644,
        };
        let data = render(&[(b"A", s, b"1\n"), (b"B", s, b"x y\0z\n")]);
        let m = parse(&data).unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m.get(b"B").unwrap().content, b"x y\0z\n");
        assert_eq!(m.get(b"A").unwrap().stamp, s);
        assert_eq!(m.records[0].0, b"A", "in the order written");
        assert!(parse(&data[..data.len() - 1]).is_none(), "truncated");
        assert!(parse(b"courier-run envdir 2\n").is_none(), "other version");
        let twice = render(&[(b"A", s, b"1\n"), (b"A", s, b"1\n")]);
        assert!(parse(&twice).is_none(), "a name twice");
        assert_eq!(parse(HEADER).unwrap().len(), 0);
    }
}
