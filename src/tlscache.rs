//! Courier's rc resets `TLS_CACHEFILE` at every start (`rm -f; touch;
//! chown ACCOUNT; chgrp GROUP; chmod 600`), as root. Done naively, whoever
//! can write a directory on that path can aim the reset at another file
//! (a symlinked component, a name planted at the last moment), and a path
//! naming one of our own inputs (`./run`) empties it.
//!
//! So the path is checked by resolve (the dry run, `--check` and the
//! launch refuse alike, exit 100 with the fix) and walked again by the
//! launch:
//!
//! - every directory from `/` down is opened with O_NOFOLLOW relative to
//!   the one above ([`Dir::walk`], RESOLVE_NO_SYMLINKS done by hand): a
//!   symlink anywhere on the path is refused;
//! - every one of them may be written only by root, by the user running
//!   courier-run, or by the account the cache is handed to (Debian's
//!   /var/lib/courier belongs to courier, who gets the file anyway);
//!   group-writable only for those users' groups; by everyone only when
//!   it is root's and sticky (/tmp) and not the cache's own directory:
//!   others can add names there but cannot rename or remove ours, so the
//!   directory below cannot be swapped;
//! - what is at the name must be absent or a regular file, and not one of
//!   the files courier-run reads (run file, configs, access list and its
//!   compiled rules, TLS files), by inode and by name;
//! - the reset is the rc's, through the directory's descriptor: the name
//!   unlinked (a symlink planted there is removed, never followed), an
//!   empty file created O_CREAT|O_EXCL|O_NOFOLLOW mode 0600, then given
//!   its owner and mode on the descriptor, so nobody else can open it
//!   before it is the account's. Two starts racing both succeed: one that
//!   finds the name taken again between its unlink and its create starts
//!   over (the rc's `rm; touch` had one fail with EEXIST). No temporary
//!   name and no fsync: the file is empty, and a crash between unlink and
//!   create leaves no file, which the next start creates (before, a
//!   temporary, a rename and two fsyncs per start: two journal commits on
//!   a disk, for an empty file).

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::sys::stat::FileStat;

use crate::config::shown_path;
use crate::error::{Exit, bad_input, coded};
use crate::safefile::{Dir, FileKind, WalkError};

/// Who may write a directory on the path: root, us, the account.
struct Trusted {
    uids: [u32; 3],
    gids: [u32; 3],
    account: String,
}

impl Trusted {
    fn new(account: &str, uid: u32, gid: u32) -> Trusted {
        Trusted {
            uids: [0, nix::unistd::geteuid().as_raw(), uid],
            gids: [0, nix::unistd::getegid().as_raw(), gid],
            account: account.to_string(),
        }
    }

    /// `last`: `dir` is the cache's own directory.
    fn check(&self, dir: &Path, st: &FileStat, last: bool) -> Result<(), String> {
        let mode = st.st_mode & 0o7777;
        // A sticky directory of root's (/tmp) on the way: others may add
        // names there, but not rename or remove ours, so the directory we
        // go into next cannot be swapped. As the cache's own directory it
        // is refused: anyone could plant the name first.
        if !last && mode & 0o1000 != 0 && st.st_uid == 0 {
            return Ok(());
        }
        let who = if mode & 0o002 != 0 {
            Some("everyone".to_string())
        } else if !self.uids.contains(&st.st_uid) {
            Some(format!("its owner (uid {})", st.st_uid))
        } else if mode & 0o020 != 0 && !self.gids.contains(&st.st_gid) {
            Some(format!("its group (gid {})", st.st_gid))
        } else {
            None
        };
        match who {
            None => Ok(()),
            Some(w) => Err(format!(
                "its directory {} may be written by {w} (mode {mode:04o}): another user could aim the reset at another file",
                shown_path(dir)
            )),
        }
    }

    fn fix(&self) -> String {
        format!(
            "put the cache in a directory only root and {0} can write (Debian's /var/lib/courier belongs to courier), or set TLS_CACHEFILE= (empty) for no cache",
            self.account
        )
    }
}

/// `path` absolute (relative to the current directory, as the rc's shell
/// would take it), split into its directory and last name.
fn split(path: &Path) -> anyhow::Result<(PathBuf, String)> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .context("unable to find the current directory")?
            .join(path)
    };
    // "." components dropped, so that the walk's paths compare equal.
    let abs: PathBuf = abs
        .components()
        .filter(|c| !matches!(c, std::path::Component::CurDir))
        .collect();
    let ends_in_slash = path.as_os_str().as_bytes().ends_with(b"/");
    let name = abs
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|_| !ends_in_slash)
        .filter(|n| *n != "..");
    let (Some(name), Some(parent)) = (name, abs.parent()) else {
        return Err(bad_input(format!(
            "TLS_CACHEFILE {} names no file",
            shown_path(path)
        )));
    };
    Ok((parent.to_path_buf(), name.to_string()))
}

/// The cache's directory, walked and checked; None when a directory on
/// the path does not exist (the plan decides what that means: the rc
/// would fail to create the file).
fn open_parent(path: &Path, t: &Trusted) -> anyhow::Result<Option<(Dir, String)>> {
    let (parent, name) = split(path)?;
    let shown = shown_path(path);
    match Dir::walk(&parent, |d, st| t.check(d, st, d == parent)) {
        Ok(d) => Ok(Some((d, name))),
        Err(WalkError::At(_, e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(WalkError::Symlink(at, what)) => Err(bad_input(format!(
            "TLS_CACHEFILE {shown} resolves through {} ({what}): the reset (as root) would follow it ({})",
            shown_path(&at),
            t.fix()
        ))),
        Err(WalkError::Bad(m)) => Err(bad_input(format!(
            "TLS_CACHEFILE {shown}: {m} ({})",
            t.fix()
        ))),
        Err(WalkError::At(at, e)) => Err(anyhow::Error::new(e).context(format!(
            "unable to open {} (TLS_CACHEFILE {shown})",
            shown_path(&at)
        ))),
        Err(WalkError::Io(e)) => {
            Err(anyhow::Error::new(e).context(format!("unable to open / (TLS_CACHEFILE {shown})")))
        }
    }
}

/// Check `path` as the launch will use it: see the module comment.
/// `protected`: the files courier-run reads (and writes: compiled rules).
pub fn check(
    path: &Path,
    account: &str,
    uid: u32,
    gid: u32,
    protected: &[PathBuf],
) -> anyhow::Result<()> {
    let t = Trusted::new(account, uid, gid);
    let Some((dir, name)) = open_parent(path, &t)? else {
        return Ok(());
    };
    let shown = shown_path(path);
    let here = dir
        .fstat()
        .with_context(|| format!("unable to stat {}", shown_path(&dir.path)))?;
    let entry = dir
        .stat(&name)
        .with_context(|| format!("unable to stat TLS_CACHEFILE {shown}"))?;
    if let Some(st) = &entry {
        match FileKind::of(st) {
            FileKind::Regular => {}
            FileKind::Symlink => {
                return Err(bad_input(format!(
                    "TLS_CACHEFILE {shown} is a symlink: the reset would replace it, and the cache is not where it points (point TLS_CACHEFILE at the file itself)"
                )));
            }
            _ => {
                return Err(bad_input(format!(
                    "TLS_CACHEFILE {shown} is {}, not a regular file: the reset cannot replace it (remove it, or set TLS_CACHEFILE to a file's path)",
                    FileKind::describe(st)
                )));
            }
        }
    }
    for p in protected {
        let same_inode = entry.as_ref().is_some_and(|e| {
            nix::sys::stat::stat(p).is_ok_and(|s| (s.st_dev, s.st_ino) == (e.st_dev, e.st_ino))
        });
        let same_name = p.file_name().and_then(|n| n.to_str()) == Some(name.as_str())
            && nix::sys::stat::stat(match p.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            })
            .is_ok_and(|s| (s.st_dev, s.st_ino) == (here.st_dev, here.st_ino));
        if same_inode || same_name {
            return Err(bad_input(format!(
                "TLS_CACHEFILE {shown} is {}, a file courier-run reads: the reset would empty it (set TLS_CACHEFILE to a file of its own, e.g. /var/lib/courier/couriersslcache)",
                shown_path(p)
            )));
        }
    }
    Ok(())
}

/// `rm -f NAME; touch NAME; chown; chmod` in `dir`, safely (see the
/// module comment).
fn replace_empty(dir: &Dir, name: &str, uid: u32, gid: u32, mode: u32) -> std::io::Result<()> {
    use nix::errno::Errno;
    use nix::fcntl::{OFlag, openat};
    use nix::sys::stat::{Mode, fchmod};
    use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};
    let at = Some(dir.raw());
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    // A racing start can take the name between our unlink and create;
    // starting over is enough (each start leaves one empty file).
    for _ in 0..16 {
        match unlinkat(at, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e.into()),
        }
        let fd = match openat(at, name, flags, Mode::from_bits_truncate(0o600)) {
            // SAFETY: openat just returned this descriptor; nothing else owns it.
            Ok(fd) => unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        };
        use std::os::fd::AsRawFd;
        fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(uid)),
            Some(Gid::from_raw(gid)),
        )?;
        fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(mode))?;
        return Ok(());
    }
    Err(std::io::Error::other("other starts kept taking the name"))
}

/// The launch's reset: walk and check the directories again (they may
/// have changed since resolve), then put an empty file of the account's,
/// mode `mode`, at the name.
pub fn reset(path: &Path, account: &str, uid: u32, gid: u32, mode: u32) -> anyhow::Result<()> {
    let t = Trusted::new(account, uid, gid);
    let shown = shown_path(path);
    let Some((dir, name)) = open_parent(path, &t)? else {
        return Err(coded(
            Exit::System,
            format!("unable to reset TLS_CACHEFILE {shown}: its directory does not exist"),
        ));
    };
    if let Some(st) = dir
        .stat(&name)
        .with_context(|| format!("unable to stat TLS_CACHEFILE {shown}"))?
        && FileKind::of(&st) != FileKind::Regular
    {
        return Err(bad_input(format!(
            "TLS_CACHEFILE {shown} is {}, not a regular file: not replaced",
            FileKind::describe(&st)
        )));
    }
    replace_empty(&dir, &name, uid, gid, mode)
        .with_context(|| format!("unable to reset TLS_CACHEFILE {shown}"))
}
