//! Bounded input: a config file is read only when it is a regular file no
//! larger than [`MAX_FILE_SIZE`], without ever blocking on a FIFO or
//! growing without bound on a device; and what a message quotes from a file
//! is escaped and short.

use std::fs::Metadata;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use anyhow::Context;

use crate::error::bad_input;

/// The largest config (or run, or sourced) file read, in bytes: 16 MiB.
///
/// Courier's own config files are under 20 KB; a config that sets 100,000
/// variables (far more than the kernel lets any program receive) is about
/// 3 MB. The limit only has to stop a wrong path (a log, a disk image, a
/// file that keeps growing) from costing unbounded memory and time.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// How deep `. FILE` may nest (a file that sources a file that sources
/// ...). dash has no limit but runs out of descriptors or stack; real
/// configs nest once (Courier's `courierd` template sources
/// `/etc/default/locale`).
pub const MAX_SOURCE_DEPTH: usize = 16;

/// What a file is when it is not a regular file, for messages (also the
/// access list's).
pub(crate) fn kind(m: &Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

fn refuse_special(what: &str, path: &Path, m: &Metadata) -> anyhow::Error {
    bad_input(format!(
        "{what} {} is {}, not a regular file (config files must be regular files: a FIFO would block and a device would never end)",
        shown_path(path),
        kind(m)
    ))
}

/// The bytes of the regular file at `path` (`what` names it in messages:
/// "config file") and its metadata, read from one
/// descriptor (the mode and the bytes belong to the same file).
///
/// The path is first stat'ed, so that a device is never even opened (opening
/// some has effects: a tape rewinds, a watchdog arms); then it is opened
/// with O_NONBLOCK (a FIFO put there meanwhile cannot block the open) and
/// O_NOCTTY, checked again with fstat, and read up to the limit. A system
/// error keeps its errno (exit 111); a special file or a file over the limit
/// is bad input (exit 100).
pub fn read_bounded(path: &Path, what: &str) -> anyhow::Result<(Vec<u8>, Metadata)> {
    let shown = format!("{what} {}", shown_path(path));
    let m = std::fs::metadata(path).with_context(|| format!("unable to open {shown}"))?;
    if !m.is_file() {
        return Err(refuse_special(what, path, &m));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)
        .with_context(|| format!("unable to open {shown}"))?;
    let m = f
        .metadata()
        .with_context(|| format!("unable to stat {shown}"))?;
    if !m.is_file() {
        return Err(refuse_special(what, path, &m));
    }
    // O_NONBLOCK means nothing for a regular file's reads: no need to clear it.
    let src = read_limited(f, m.len(), &shown)?;
    Ok((src, m))
}

/// Read at most [`MAX_FILE_SIZE`] bytes from `r`; more is bad input.
pub fn read_limited(r: impl Read, size_hint: u64, shown: &str) -> anyhow::Result<Vec<u8>> {
    if size_hint > MAX_FILE_SIZE {
        return Err(too_big(shown));
    }
    let mut src = Vec::with_capacity(size_hint as usize);
    r.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut src)
        .with_context(|| format!("unable to read {shown}"))?;
    if src.len() as u64 > MAX_FILE_SIZE {
        return Err(too_big(shown));
    }
    Ok(src)
}

fn too_big(shown: &str) -> anyhow::Error {
    bad_input(format!(
        "{shown} is larger than {} MiB, the limit for a config file (Courier's are under 20 KB: is this the right file?)",
        MAX_FILE_SIZE >> 20
    ))
}

// The one escaping of the crate (src/shown.rs), under the names the
// config reader has always used.
pub use crate::shown::{shown, shown_path};
