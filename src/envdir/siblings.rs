//! The envdir's siblings: `.NAME.new.PID-N` (a directory being built) and
//! `.NAME.old.PID-N` (a replaced generation, kept whole for readers for
//! [`GRACE`]). Removal unlinks only what courier-run wrote (the files the
//! manifest lists; in a build killed before its manifest, the variable
//! names), only regular files on the parent's filesystem, never recurses
//! and never follows a symlink: whatever else is found is left, and so is
//! the directory holding it.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstat, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::manifest::MARKER;
use crate::config::is_name;

/// The longest suffix and prefix a sibling name adds to the envdir's last
/// component: `.` + `.new.` + a pid (10 digits) + `-` + a counter (20).
pub const OVERHEAD: usize = 1 + 5 + 10 + 1 + 20;

/// Which sibling: a directory being built, or a replaced generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sibling {
    New,
    Old,
}

/// A fresh sibling name of `kind` for the envdir named `base`.
pub fn name(base: &OsStr, kind: Sibling) -> OsString {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let tag = match kind {
        Sibling::New => "new",
        Sibling::Old => "old",
    };
    let mut v = vec![b'.'];
    v.extend_from_slice(base.as_bytes());
    v.extend_from_slice(format!(".{tag}.{}-{n}", std::process::id()).as_bytes());
    OsString::from_vec(v)
}

/// `name`'s kind and pid when it is a sibling of `base`. Also matches
/// `.NAME.new.PID` without a counter, as earlier versions named it.
fn parse(base: &[u8], name: &[u8]) -> Option<(Sibling, u32)> {
    let rest = name.strip_prefix(b".")?.strip_prefix(base)?;
    let (kind, rest) = if let Some(r) = rest.strip_prefix(b".new.") {
        (Sibling::New, r)
    } else {
        (Sibling::Old, rest.strip_prefix(b".old.")?)
    };
    let (pid, n) = match rest.iter().position(|&c| c == b'-') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &b"0"[..]),
    };
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    if !digits(pid) || !digits(n) {
        return None;
    }
    Some((kind, std::str::from_utf8(pid).ok()?.parse().ok()?))
}

/// Is `name` one of the names courier-run gives the generations of the
/// envdir `base` (`.BASE.new.` or `.BASE.old.`, then anything)?
pub fn is_sibling(base: &[u8], name: &[u8]) -> bool {
    name.strip_prefix(b".")
        .and_then(|r| r.strip_prefix(base))
        .is_some_and(|r| r.starts_with(b".new.") || r.starts_with(b".old."))
}

/// Is `pid` a live process (that we may not even signal)?
fn alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    !matches!(
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
        Err(Errno::ESRCH)
    )
}

/// Open a directory without following a symlink.
pub fn open_dir(at: Option<&OwnedFd>, path: &Path) -> nix::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = openat(
        at.map(|f| f.as_raw_fd()),
        path,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: openat just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Take the lock a writer holds on the directory it builds (and on the
/// envdir it moves away where it has to do so in two renames): an
/// exclusive `flock`, not waiting. False when someone else holds it.
pub fn try_lock(fd: &OwnedFd) -> bool {
    #[allow(deprecated)]
    nix::fcntl::flock(fd.as_raw_fd(), nix::fcntl::FlockArg::LockExclusiveNonblock).is_ok()
}

/// How long a replaced generation is kept whole after it stopped being the
/// envdir, for readers that entered it before: daemontools' envdir
/// `chdir`s into the directory and opens each name it listed, and a name
/// that vanishes meanwhile silently gets the previous variable's value (a
/// mix). A read of thousands of files takes milliseconds; the margin is
/// for a loaded machine. Before, a start at once after a rewrite removed
/// the generation just replaced, under readers still in it.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Has a generation whose directory is `st` been replaced at least
/// [`GRACE`] ago? Its mtime is set when it is replaced (see
/// `envdir::retire`) and nothing writes in it after. An mtime more than an
/// hour ahead (the clock was set back) does not keep it until the clock
/// catches up.
fn grace_over(st: &nix::sys::stat::FileStat) -> bool {
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        return false;
    };
    let since = now.as_secs() as i64 - st.st_mtime;
    since >= GRACE.as_secs() as i64 || since < -(GRACE.as_secs() as i64) * 360
}

/// Which siblings of the envdir `dir` a run killed or finished left, and
/// that may be removed now: a `.new.` one only when its pid is dead and no
/// one holds its lock; an `.old.` one when no one holds its lock and it
/// was replaced at least [`GRACE`] ago or is not among the [`KEPT`] newest.
fn removable(dir: &Path, kinds: &[Sibling]) -> Vec<(PathBuf, OwnedFd, Sibling)> {
    let (parent, base) = super::split(dir);
    // The parent followed, as the writer opens it (O_DIRECTORY: never
    // blocked on a FIFO).
    let opened = std::os::unix::fs::OpenOptionsExt::custom_flags(
        fs::OpenOptions::new().read(true),
        nix::libc::O_DIRECTORY,
    )
    .open(&parent);
    let Ok(pfd) = opened else {
        return Vec::new();
    };
    let Ok(pdev) = fstat(pfd.as_raw_fd()).map(|s| s.st_dev) else {
        return Vec::new();
    };
    let mut names: Vec<OsString> = Vec::new();
    let base = base.as_bytes();
    // Only the names that are siblings of this envdir are kept.
    let listed = crate::dirlist::each(pfd.as_fd(), |n| {
        if parse(base, n).is_some() {
            names.push(OsString::from_vec(n.to_vec()));
        }
    });
    if listed.is_err() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut young = Vec::new();
    for n in names {
        let Some((kind, pid)) = parse(base, n.as_bytes()) else {
            continue;
        };
        if !kinds.contains(&kind) || (kind == Sibling::New && alive(pid)) {
            continue;
        }
        let path = parent.join(&n);
        let Ok(fd) = open_dir(None, &path) else {
            continue;
        };
        // Never across a mount: a sibling on another filesystem, or a bind
        // mount of this one, is not ours.
        let Ok(st) = fstat(fd.as_raw_fd()) else {
            continue;
        };
        if st.st_dev != pdev || mount_root(&path) || !try_lock(&fd) {
            continue;
        }
        if kind == Sibling::Old && !grace_over(&st) {
            young.push(((st.st_mtime, st.st_mtime_nsec), path, fd));
            continue;
        }
        out.push((path, fd, kind));
    }
    // Within the grace, the newest KEPT only: rewrites in a quick loop
    // must not fill the filesystem with generations.
    young.sort_by_key(|y| std::cmp::Reverse(y.0));
    out.extend(
        young
            .into_iter()
            .skip(KEPT)
            .map(|(_, p, fd)| (p, fd, Sibling::Old)),
    );
    out
}

/// How many replaced generations younger than [`GRACE`] are kept at most
/// (the newest): a reader would have to be slower than that many complete
/// rewrites to see one vanish.
pub const KEPT: usize = 8;

/// The directories killed runs left beside the envdir `dir` (for
/// `--check`): what the next writing start removes. Generations replaced
/// by a finished run (`.old.`) are not listed: they are kept on purpose.
pub fn leftovers(dir: &Path) -> Vec<PathBuf> {
    // The lock taken to test is released when the descriptor drops.
    removable(dir, &[Sibling::New])
        .into_iter()
        .map(|(p, _, _)| p)
        .collect()
}

/// Remove every removable sibling of `dir` (leftovers of killed runs and
/// replaced generations); returns those that could not be removed whole
/// because they hold something courier-run did not write.
pub fn remove_leftovers(dir: &Path) -> Vec<PathBuf> {
    remove_leftovers_except(dir, None)
}

/// [`remove_leftovers`], keeping the sibling named `keep` (the generation
/// this run has just replaced).
pub fn remove_leftovers_except(dir: &Path, keep: Option<&OsStr>) -> Vec<PathBuf> {
    let mut kept = Vec::new();
    for (path, fd, kind) in removable(dir, &[Sibling::New, Sibling::Old]) {
        if keep.is_some_and(|k| path.file_name() == Some(k)) {
            continue;
        }
        if !remove(&path, &fd, kind) {
            kept.push(path);
        }
    }
    kept
}

/// Unlink what courier-run wrote in the directory `fd` (open at `path`,
/// a sibling of `kind`), then the directory itself. True when it is gone.
/// With a manifest, only the files it lists, each still the inode (and
/// ctime) it recorded; without one, in a directory being built (a run killed before
/// it wrote its manifest: courier-run made it and everything in it), the
/// regular files with variable names; in a replaced generation without a
/// manifest (an empty directory replaced), nothing. Whatever else is found
/// stays, and so does the directory.
pub fn remove(path: &Path, fd: &OwnedFd, kind: Sibling) -> bool {
    let Ok(dev) = fstat(fd.as_raw_fd()).map(|s| s.st_dev) else {
        return false;
    };
    let manifest = read_manifest(fd, dev);
    let listed = manifest.as_deref().and_then(super::manifest::parse);
    if listed.is_none() && kind == Sibling::Old {
        return fs::remove_dir(path).is_ok();
    }
    let Ok(entries) = fs::read_dir(path) else {
        return false;
    };
    for e in entries.flatten() {
        let n = e.file_name();
        if !is_name(n.as_bytes()) {
            continue;
        }
        let Ok(st) = fstatat(
            Some(fd.as_raw_fd()),
            n.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) else {
            continue;
        };
        let regular = SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
            && st.st_dev == dev;
        let written = match &listed {
            // The inode and its ctime: a number reused by a file made since
            // is not the file written.
            Some(m) => m.get(n.as_bytes()).is_some_and(|r| {
                r.stamp.ino == st.st_ino && r.stamp.ctime == (st.st_ctime, st.st_ctime_nsec)
            }),
            None => true,
        };
        if regular && written {
            let _ = unlinkat(
                Some(fd.as_raw_fd()),
                n.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
    let marker_ours = fstatat(Some(fd.as_raw_fd()), MARKER, AtFlags::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|s| {
            SFlag::from_bits_truncate(s.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
                && s.st_dev == dev
        });
    if marker_ours {
        let _ = unlinkat(Some(fd.as_raw_fd()), MARKER, UnlinkatFlags::NoRemoveDir);
    }
    // Fails (ENOTEMPTY) when something else is inside: it stays.
    fs::remove_dir(path).is_ok()
}

/// The manifest's bytes in the directory `fd`, when it is a regular file
/// on the directory's filesystem.
fn read_manifest(fd: &OwnedFd, dev: u64) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::fd::FromRawFd;
    let m = openat(
        Some(fd.as_raw_fd()),
        MARKER,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: openat just returned this descriptor.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(m) });
    let st = fstat(f.as_raw_fd()).ok()?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG || st.st_dev != dev {
        return None;
    }
    let mut data = Vec::new();
    f.read_to_end(&mut data).ok()?;
    Some(data)
}

/// Is `p` the root of a mount (a bind mount on the same filesystem
/// included, which `st_dev` cannot see)? False where statx cannot say.
pub(super) fn mount_root(p: &Path) -> bool {
    use nix::libc;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else {
        return false;
    };
    let mut stx = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: a valid C string and a buffer of the right type.
    let r = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            c.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
            0,
            stx.as_mut_ptr(),
        )
    };
    if r != 0 {
        return false;
    }
    // SAFETY: statx succeeded and filled the buffer.
    let stx = unsafe { stx.assume_init() };
    let bit = libc::STATX_ATTR_MOUNT_ROOT as u64;
    stx.stx_attributes_mask & bit != 0 && stx.stx_attributes & bit != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        let n = name(OsStr::new("env"), Sibling::New);
        assert_eq!(
            parse(b"env", n.as_bytes()),
            Some((Sibling::New, std::process::id()))
        );
        assert_eq!(parse(b"env", b".env.old.12-3"), Some((Sibling::Old, 12)));
        assert_eq!(parse(b"env", b".env.new.12"), Some((Sibling::New, 12)));
        for other in [
            &b".env.new."[..],
            b".env.new.1x",
            b".envx.new.1",
            b"env.new.1",
            b".env.new.1-",
        ] {
            assert_eq!(parse(b"env", other), None, "{other:?}");
        }
        assert!(n.len() <= 3 + OVERHEAD);
    }
}
