//! A directory's names, read with getdents64 from a descriptor the caller
//! holds.
//!
//! Why not `std::fs::read_dir` or nix's `Dir`: both go through glibc's
//! `opendir`, which opens the directory again by its name (a second path
//! walk, and not necessarily the directory the caller then examines with
//! `fstatat` on its own descriptor) and mallocs a 32 KB buffer. The
//! launcher's start (src/launcher.rs) lists the envdir and its parent and
//! otherwise never starts malloc. Here the names come from the descriptor
//! itself, through a buffer on this frame.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use nix::libc;

/// linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
const NAME_AT: usize = 19;

/// Call `f` with each name in the directory open at `fd` but `.` and `..`,
/// from the descriptor's offset on (a fresh descriptor: all of them).
pub fn each(fd: BorrowedFd<'_>, mut f: impl FnMut(&[u8])) -> io::Result<()> {
    // u64s: the kernel aligns each record to 8 bytes from the start.
    let mut buf = [0u64; 512];
    loop {
        // SAFETY: the buffer is ours and 4096 bytes long; getdents64 writes
        // at most that many.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                fd.as_raw_fd(),
                buf.as_mut_ptr(),
                std::mem::size_of_val(&buf),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Ok(());
        }
        // SAFETY: the kernel wrote n bytes (n <= the buffer's length).
        let bytes = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
        records(bytes, &mut f)?;
    }
}

/// The names in one getdents64 buffer.
fn records(mut bytes: &[u8], f: &mut impl FnMut(&[u8])) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a malformed directory record");
    while !bytes.is_empty() {
        let len = match bytes.get(16..18) {
            Some(l) => usize::from(u16::from_ne_bytes([l[0], l[1]])),
            None => return Err(bad()),
        };
        if len <= NAME_AT || len > bytes.len() {
            return Err(bad());
        }
        let field = &bytes[NAME_AT..len];
        let name = &field[..crate::bytes::find(0, field).ok_or_else(bad)?];
        if name != b"." && name != b".." {
            f(name);
        }
        bytes = &bytes[len..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn lists_every_name_but_the_dots_across_buffers() {
        let dir = std::env::temp_dir().join(format!("dirlist-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // More than one 4 KB buffer of records.
        let mut want: Vec<Vec<u8>> = (0..300)
            .map(|i| format!("name-{i:04}-{}", "x".repeat(i % 40)).into_bytes())
            .collect();
        for n in &want {
            std::fs::write(dir.join(std::str::from_utf8(n).unwrap()), b"").unwrap();
        }
        let d = std::fs::File::open(&dir).unwrap();
        let mut got = Vec::new();
        each(d.as_fd(), |n| got.push(n.to_vec())).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn a_malformed_record_is_an_error() {
        let mut rec = vec![0u8; 24];
        rec[16..18].copy_from_slice(&24u16.to_ne_bytes());
        rec[NAME_AT..NAME_AT + 2].copy_from_slice(b"ab");
        let mut seen = Vec::new();
        records(&rec, &mut |n| seen.push(n.to_vec())).unwrap();
        assert_eq!(seen, [b"ab".to_vec()]);
        // A length past the buffer, one too short for a name, a name
        // without its NUL.
        for (len, fill) in [(40u16, 0u8), (NAME_AT as u16, 0), (24, b'c')] {
            let mut r = rec.clone();
            r[16..18].copy_from_slice(&len.to_ne_bytes());
            r[NAME_AT..].fill(fill);
            assert!(records(&r, &mut |_| {}).is_err(), "{len} {fill}");
        }
    }
}
