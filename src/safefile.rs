//! Writing a file where another user may have planted a name: every file
//! courier-run writes outside the envdir (the compiled access rules, their
//! temporaries, the TLS session cache) goes through [`write_atomic_at`].
//!
//! - Everything is relative to a directory descriptor ([`Dir`]): once the
//!   directory is open, renaming or replacing a directory above it changes
//!   nothing about where the file lands.
//! - The temporary is created with `O_CREAT|O_EXCL|O_NOFOLLOW`: a symlink
//!   (or anything else) planted at its name is never opened, truncated or
//!   followed; the next free name is taken instead.
//! - It is written, fsync'ed, given its owner and mode on the descriptor,
//!   then `renameat`'d over the final name: readers see the old file or
//!   the new one, never half; a symlink at the final name is replaced
//!   itself, its target untouched; two writers racing both succeed (the
//!   last rename wins) where `unlink; open(O_EXCL)` would fail one with
//!   EEXIST.
//! - Temporaries are named `.NAME.tmp.PID.N`; one left by a killed run (its
//!   pid no longer exists) is removed by [`remove_stale_temps`] on the
//!   next write (only regular files of our own user: a name someone else
//!   planted is left alone, and never followed).

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{FileStat, Mode, SFlag};

/// An open directory: the anchor of every `*at` call.
#[derive(Debug)]
pub struct Dir {
    fd: OwnedFd,
    /// How messages name it.
    pub path: PathBuf,
}

/// What a name in a directory is, without following a symlink there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Other,
}

impl FileKind {
    pub fn of(st: &FileStat) -> FileKind {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => FileKind::Regular,
            SFlag::S_IFDIR => FileKind::Directory,
            SFlag::S_IFLNK => FileKind::Symlink,
            _ => FileKind::Other,
        }
    }

    /// For messages: "a directory", "a symlink", ...
    pub fn describe(st: &FileStat) -> &'static str {
        match SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT {
            SFlag::S_IFREG => "a regular file",
            SFlag::S_IFDIR => "a directory",
            SFlag::S_IFLNK => "a symlink",
            SFlag::S_IFIFO => "a FIFO",
            SFlag::S_IFCHR => "a character device",
            SFlag::S_IFBLK => "a block device",
            SFlag::S_IFSOCK => "a socket",
            _ => "not a regular file",
        }
    }
}

/// The whole of a regular file open as `f`, whose fstat said `size`
/// bytes: one read of one byte more than that (std's `read_to_end` adds a
/// statx, an lseek and a read). None when it has grown since (it is being
/// written: no whole content to trust). A short read is its end: the
/// files read so (a kept plan, an envdir's manifest) are replaced by
/// rename, never written in place.
pub fn read_sized(f: &mut std::fs::File, size: usize) -> io::Result<Option<Vec<u8>>> {
    use std::io::Read;
    let mut buf = vec![0; size + 1];
    let mut n = 0;
    loop {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) if n + k == buf.len() => return Ok(None),
            Ok(k) => {
                n += k;
                if n == size {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(Some(buf))
}

fn cname(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a file name"),
        ));
    }
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a name"))
}

fn openat_raw(dir: Option<i32>, name: &CString, flags: OFlag, mode: Mode) -> io::Result<OwnedFd> {
    let fd = nix::fcntl::openat(dir, name.as_c_str(), flags | OFlag::O_CLOEXEC, mode)?;
    // SAFETY: openat just returned this descriptor; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Dir {
    /// Open the directory at `path` (a symlink to a directory is followed:
    /// the service directory is often reached through one).
    pub fn open(path: &Path) -> io::Result<Dir> {
        let p = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a path"))?;
        let fd = openat_raw(
            None,
            &p,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_path_buf(),
        })
    }

    /// Open the directory at the absolute `path` one component at a time
    /// from `/`, with O_NOFOLLOW: a symlink anywhere is refused (ELOOP or
    /// ENOTDIR), as openat2's RESOLVE_NO_SYMLINKS would. `check` sees each
    /// directory's stat (from its descriptor) on the way and may refuse it.
    pub fn walk(
        path: &Path,
        mut check: impl FnMut(&Path, &FileStat) -> Result<(), String>,
    ) -> Result<Dir, WalkError> {
        if !path.is_absolute() {
            return Err(WalkError::Bad(format!(
                "{} is not an absolute path",
                path.display()
            )));
        }
        let mut dir = Dir::open(Path::new("/")).map_err(WalkError::Io)?;
        let mut at = PathBuf::from("/");
        let st = dir.fstat().map_err(WalkError::Io)?;
        check(&at, &st).map_err(WalkError::Bad)?;
        for c in path.components() {
            let name = match c {
                Component::RootDir | Component::CurDir => continue,
                Component::Normal(n) => n,
                Component::ParentDir | Component::Prefix(_) => {
                    return Err(WalkError::Bad(format!(
                        "{} has a \"..\" component: give the path without it",
                        path.display()
                    )));
                }
            };
            at.push(name);
            let cn = CString::new(name.as_bytes())
                .map_err(|_| WalkError::Bad("NUL in a path".into()))?;
            let fd = match openat_raw(
                Some(dir.fd.as_raw_fd()),
                &cn,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW,
                Mode::empty(),
            ) {
                Ok(fd) => fd,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR)
                    ) =>
                {
                    // Tell a symlink from a file.
                    let what = dir
                        .stat(name.to_str().unwrap_or(""))
                        .ok()
                        .flatten()
                        .map(|s| FileKind::describe(&s))
                        .unwrap_or("not a directory");
                    return Err(WalkError::Symlink(at, what));
                }
                Err(e) => return Err(WalkError::At(at, e)),
            };
            dir = Dir {
                fd,
                path: at.clone(),
            };
            let st = dir.fstat().map_err(WalkError::Io)?;
            check(&at, &st).map_err(WalkError::Bad)?;
        }
        Ok(dir)
    }

    pub fn fstat(&self) -> io::Result<FileStat> {
        Ok(nix::sys::stat::fstat(self.fd.as_raw_fd())?)
    }

    /// The stat of `name` here, a symlink not followed; None when absent.
    pub fn stat(&self, name: &str) -> io::Result<Option<FileStat>> {
        let n = cname(name)?;
        match nix::sys::stat::fstatat(
            Some(self.fd.as_raw_fd()),
            n.as_c_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Ok(s) => Ok(Some(s)),
            Err(Errno::ENOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The bytes of the regular file `name` here, when it is one (None
    /// when absent or anything else: a symlink is not followed, a FIFO
    /// never blocks the open, a device is never read), up to `max` bytes
    /// (more: None, as if it were not ours).
    pub fn read_regular(&self, name: &str, max: u64) -> io::Result<Option<Vec<u8>>> {
        let n = cname(name)?;
        let fd = match openat_raw(
            Some(self.fd.as_raw_fd()),
            &n,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOENT) | Some(nix::libc::ELOOP) | Some(nix::libc::ENXIO)
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
        if FileKind::of(&st) != FileKind::Regular || st.st_size as u64 > max {
            return Ok(None);
        }
        let mut v = Vec::with_capacity(st.st_size as usize);
        std::fs::File::from(fd).take(max + 1).read_to_end(&mut v)?;
        Ok((v.len() as u64 <= max).then_some(v))
    }

    /// Is this directory writable by us (EROFS on a read-only mount)?
    pub fn writable(&self) -> io::Result<()> {
        // faccessat on "." of the descriptor: the effective ids, as the
        // writes will be done (root is refused only by EROFS).
        let r = unsafe {
            nix::libc::faccessat(
                self.fd.as_raw_fd(),
                c".".as_ptr(),
                nix::libc::W_OK | nix::libc::X_OK,
                nix::libc::AT_EACCESS,
            )
        };
        if r == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }

    pub fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// Why [`Dir::walk`] stopped.
#[derive(Debug)]
pub enum WalkError {
    /// A component is a symlink (or not a directory): its path and kind.
    Symlink(PathBuf, &'static str),
    /// The check refused a directory, or the path cannot be walked.
    Bad(String),
    /// A system error at a component.
    At(PathBuf, io::Error),
    Io(io::Error),
}

/// Owner and mode given to a file before it is renamed into place.
#[derive(Clone, Copy, Debug)]
pub struct Attrs {
    pub mode: u32,
    /// (uid, gid) to chown to; None: ours.
    pub owner: Option<(u32, u32)>,
    /// fsync the file and the directory: a file whose loss after a crash
    /// would matter. A cache that is checked before use (the kept plan)
    /// is not worth two journal commits.
    pub durable: bool,
}

impl Default for Attrs {
    fn default() -> Attrs {
        Attrs {
            mode: 0o644,
            owner: None,
            durable: true,
        }
    }
}

/// The prefix of every temporary of `name`.
fn temp_prefix(name: &str) -> String {
    format!(".{name}.tmp.")
}

/// Replace `name` in `dir` by a file holding `bytes` (mode 0644, ours):
/// see the module comment.
pub fn write_atomic_at(dir: &Dir, name: &str, bytes: &[u8]) -> io::Result<()> {
    write_atomic_at_with(dir, name, bytes, Attrs::default())
}

/// [`write_atomic_at`] with the owner and mode given.
pub fn write_atomic_at_with(dir: &Dir, name: &str, bytes: &[u8], attrs: Attrs) -> io::Result<()> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    cname(name)?;
    let pid = std::process::id();
    // Created 0600: nobody may open it before its mode and owner are set.
    let (tmp, fd) = loop {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = cname(&format!("{}{pid}.{n}", temp_prefix(name)))?;
        match openat_raw(
            Some(dir.raw()),
            &tmp,
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => break (tmp, fd),
            // Someone planted this name: take the next one (bounded:
            // a directory full of plants is an error, not a loop).
            Err(e) if e.raw_os_error() == Some(nix::libc::EEXIST) && n < 10_000 => continue,
            Err(e) => return Err(e),
        }
    };
    let result = (|| -> io::Result<()> {
        let mut f = std::fs::File::from(fd);
        f.write_all(bytes)?;
        if let Some((u, g)) = attrs.owner {
            nix::unistd::fchown(
                f.as_raw_fd(),
                Some(nix::unistd::Uid::from_raw(u)),
                Some(nix::unistd::Gid::from_raw(g)),
            )?;
        }
        nix::sys::stat::fchmod(f.as_raw_fd(), Mode::from_bits_truncate(attrs.mode))?;
        if attrs.durable {
            f.sync_all()?;
        }
        let n = cname(name)?;
        nix::fcntl::renameat(
            Some(dir.raw()),
            tmp.as_c_str(),
            Some(dir.raw()),
            n.as_c_str(),
        )?;
        // The rename itself on disk (best effort: some filesystems refuse
        // fsync on a directory).
        if attrs.durable {
            let _ = nix::unistd::fsync(dir.raw());
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = nix::unistd::unlinkat(
            Some(dir.raw()),
            tmp.as_c_str(),
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        );
    }
    result
}

/// Remove the temporaries of `name` that killed runs left in `dir`: names
/// `.NAME.tmp.PID` or `.NAME.tmp.PID.N` whose PID is not a live process,
/// regular files owned by our effective user. Returns how many went.
pub fn remove_stale_temps(dir: &Dir, name: &str) -> usize {
    let prefix = temp_prefix(name);
    let Ok(mut d) = nix::dir::Dir::openat(
        Some(dir.raw()),
        ".",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return 0;
    };
    let euid = nix::unistd::geteuid().as_raw();
    let me = std::process::id();
    let mut stale = Vec::new();
    for e in d.iter().flatten() {
        let Ok(n) = e.file_name().to_str() else {
            continue;
        };
        let Some(rest) = n.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('.').next().unwrap_or("");
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if pid <= 0 || pid as u32 == me {
            continue;
        }
        let dead =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) == Err(Errno::ESRCH);
        if dead {
            stale.push(n.to_string());
        }
    }
    let mut removed = 0;
    for n in stale {
        let ours = dir
            .stat(&n)
            .ok()
            .flatten()
            .is_some_and(|s| FileKind::of(&s) == FileKind::Regular && s.st_uid == euid);
        if ours
            && let Ok(c) = cname(&n)
            && nix::unistd::unlinkat(
                Some(dir.raw()),
                c.as_c_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .is_ok()
        {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frontend::tests_support::tempdir;

    #[test]
    fn planted_symlink_at_temporary_names_is_never_followed() {
        let Some(t) = tempdir("safefile") else { return };
        let victim = t.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        // Plant the next names this process would use.
        let pid = std::process::id();
        for n in 0..64 {
            std::os::unix::fs::symlink(&victim, t.join(format!(".out.tmp.{pid}.{n}"))).unwrap();
        }
        let d = Dir::open(&t).unwrap();
        write_atomic_at(&d, "out", b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(t.join("out")).unwrap(), b"new");
        // A symlink at the final name is replaced, not followed.
        std::fs::remove_file(t.join("out")).unwrap();
        std::os::unix::fs::symlink(&victim, t.join("out")).unwrap();
        write_atomic_at(&d, "out", b"again").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(
            !std::fs::symlink_metadata(t.join("out"))
                .unwrap()
                .is_symlink()
        );
        let _ = std::fs::remove_dir_all(t);
    }

    #[test]
    fn stale_temps_of_dead_pids_only() {
        let Some(t) = tempdir("stale") else { return };
        // A pid that is surely dead: a child that has exited and been reaped.
        let dead = std::process::Command::new("true")
            .spawn()
            .and_then(|mut c| c.wait().map(|_| c.id()))
            .unwrap();
        std::fs::write(t.join(format!(".r.cdb.tmp.{dead}")), "x").unwrap();
        std::fs::write(t.join(format!(".r.cdb.tmp.{dead}.3")), "x").unwrap();
        std::fs::write(t.join(format!(".r.cdb.tmp.{}.0", std::process::id())), "x").unwrap();
        std::fs::write(t.join(".r.cdb.tmp.1.0"), "x").unwrap(); // init: alive
        std::fs::write(t.join(".other.tmp.99999999"), "x").unwrap();
        let d = Dir::open(&t).unwrap();
        assert_eq!(remove_stale_temps(&d, "r.cdb"), 2);
        let mut left: Vec<String> = std::fs::read_dir(&t)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left.len(), 3, "{left:?}");
        let _ = std::fs::remove_dir_all(t);
    }

    #[test]
    fn walk_refuses_symlinks() {
        let Some(t) = tempdir("walk") else { return };
        let t = t.canonicalize().unwrap();
        std::fs::create_dir(t.join("real")).unwrap();
        std::os::unix::fs::symlink(t.join("real"), t.join("link")).unwrap();
        assert!(Dir::walk(&t.join("real"), |_, _| Ok(())).is_ok());
        match Dir::walk(&t.join("link"), |_, _| Ok(())) {
            Err(WalkError::Symlink(p, what)) => {
                assert_eq!(p, t.join("link"));
                assert_eq!(what, "a symlink");
            }
            other => panic!("{other:?}"),
        }
        let _ = std::fs::remove_dir_all(t);
    }
}
