//! The envdir: written atomically, read with daemontools 0.76 semantics.
//!
//! Writer: one file per name holding the value and a newline, embedded
//! newlines written as NUL bytes (envdir turns NULs back into newlines), an
//! empty value as a lone `\n` (set to empty; a 0-byte file would unset).
//!
//! What is guaranteed (the admin's version: docs/envdir.md):
//!
//! - **Only our own directory is replaced; nothing it did not write is
//!   ever deleted.** [`check_target`] refuses, before anything changes,
//!   anything at the path but a directory courier-run wrote (it holds the
//!   marker [`MARKER`], which envdir skips as a dotfile) or an empty
//!   directory. A directory of files without the marker (a classic
//!   envdir, or a directory named by mistake) is refused with the fix
//!   (move it aside once), never emptied. So is a path that is, holds,
//!   lies inside or is named like a generation of any file courier-run
//!   reads (run file, configs, access list, TLS files; see
//!   `plan::read_files`), whether it exists or not. Removal of a replaced
//!   generation unlinks only the files its manifest lists (same inode and
//!   ctime), never recurses, never crosses a mount.
//! - **A crash leaves the old or the new envdir.** The new directory is
//!   built beside the target (`.NAME.new.PID-N`, locked with `flock`), made
//!   durable with one `syncfs`, and swapped in with one
//!   `renameat2(RENAME_EXCHANGE)`; the parent is then fsynced. One `syncfs`
//!   instead of one `fsync` per file: a journal commit per file was ~0.6 ms
//!   each; the price is that `syncfs` also waits for whatever else is dirty
//!   on that filesystem (seconds on a disk busy with other writers).
//! - **A reader never sees a mix.** daemontools' envdir does `chdir` into
//!   the directory, then opens each name it lists; a name that vanishes
//!   meanwhile silently gets the previous variable's value. So the replaced
//!   directory is never emptied in place: it is renamed to
//!   `.NAME.old.PID-N`, stamped (mtime) and left whole for
//!   [`siblings::GRACE`] (the newest [`siblings::KEPT`] of them at most);
//!   the first start after that removes it. (Before, an unchanged start at
//!   once after a rewrite removed the generation just replaced, under
//!   readers still in it.) A reader slower than the grace can still see
//!   files vanish: envdir gives no way to know.
//! - **A replaced generation is no more readable than the config.** When
//!   the config is private, the generation just replaced is closed (mode
//!   700) at once: a value removed from a config made private is not left
//!   world-readable until the next start.
//! - **Concurrent starts both succeed.** When the path changes between the
//!   probe and the swap (two first starts on an absent envdir), what stands
//!   there is inspected again, with the same refusals, and the swap retried.
//! - **The parent is followed**, the last component never: `envdir=./l/env`
//!   with `l` a symlink writes in `l`'s target, in the dry run, --check and
//!   the launch alike.
//! - **Without RENAME_EXCHANGE** (e.g. NFS, some FUSE filesystems) the swap
//!   is two renames: between them the path is missing (a reader fails with
//!   "unable to switch to directory", 111: no wrong value), and a crash
//!   there leaves the path missing and the complete old set in
//!   `.NAME.old.PID-N`; the next start writes the envdir anew.
//! - **An unchanged start writes nothing.** The marker is also a manifest
//!   (each file's inode, ctime, mode and exact content): "unchanged?" costs
//!   one read of the manifest, one listing and one `fstatat` per file. A
//!   file whose ctime is not older than the manifest's is read and compared
//!   (racy-git rule); the writer gives the manifest a later ctime than the
//!   last file (a no-op chmod, repeated until the clock allows it: once on
//!   kernels with fine-grained ctimes, at most a jiffy elsewhere) so that
//!   this is rare. Any doubt means rewrite. (The first start after the
//!   grace of a rewrite removes the replaced generations: that is its only
//!   write.)

mod manifest;
mod siblings;
mod target;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, RenameFlags, openat, renameat, renameat2};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};

use crate::config::{Assignment, is_name};
use crate::error::bad_input;
use manifest::Written;
use siblings::{Sibling, open_dir};

pub use manifest::MARKER;
pub use siblings::{GRACE, leftovers, remove_leftovers};
pub use target::{NAME_MAX, Target, check_component, check_name_len, check_target};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The directory already held exactly this content: no write at all.
    Unchanged,
    Written,
}

/// File and directory modes: world-readable unless a config file is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Modes {
    pub file: u32,
    pub dir: u32,
}

impl Modes {
    pub const PUBLIC: Modes = Modes {
        file: 0o644,
        dir: 0o755,
    };
    pub const PRIVATE: Modes = Modes {
        file: 0o600,
        dir: 0o700,
    };

    /// Private when a config file is not world-readable: the envdir must not
    /// show what its source hides.
    pub fn for_source(private: bool) -> Modes {
        if private {
            Modes::PRIVATE
        } else {
            Modes::PUBLIC
        }
    }
}

/// Refuse what daemontools' envdir cannot carry back unchanged: it strips
/// trailing spaces and tabs from the first line. Names are sh names already
/// (the reader refuses others); checked again because a `.` or `=` name
/// would be skipped or split by envdir.
pub fn check_carriable(a: &Assignment) -> anyhow::Result<()> {
    if !is_name(a.name.as_bytes()) {
        return Err(bad_input(format!(
            "{}: {} is not a valid variable name for an envdir",
            a.pos, a.name
        )));
    }
    if let Err(why) = check_name_len(&a.name) {
        return Err(bad_input(format!("{}: {why}", a.pos)));
    }
    if matches!(a.value.last(), Some(b' ' | b'\t')) {
        return Err(bad_input(format!(
            "{}: the value of {} ends in a space or tab, which daemontools' envdir would strip (remove the trailing blank)",
            a.pos, a.name
        )));
    }
    if a.value.contains(&0) {
        return Err(bad_input(format!(
            "{}: the value of {} holds a NUL byte, which an environment cannot carry",
            a.pos, a.name
        )));
    }
    Ok(())
}

/// The bytes of an envdir file for `value`.
pub fn encode(value: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = value
        .iter()
        .map(|&c| if c == b'\n' { 0 } else { c })
        .collect();
    out.push(b'\n');
    out
}

/// The value daemontools' envdir reads from file content `data`: `None`
/// unsets the name.
pub fn decode(data: &[u8]) -> Option<Vec<u8>> {
    if data.is_empty() {
        return None;
    }
    let line = match data.iter().position(|&c| c == b'\n') {
        Some(n) => &data[..n],
        None => data,
    };
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    Some(
        line[..end]
            .iter()
            .map(|&c| if c == 0 { b'\n' } else { c })
            .collect(),
    )
}

/// Read `dir` as daemontools' `envdir` does: every entry not starting with
/// `.`, symlinks followed, a subdirectory or unreadable file is an error.
/// Returns (name, value) in directory order; `None` unsets the name. A name
/// holding `=` is returned as is (envdir would split it; we never write one).
pub fn read(dir: &Path) -> anyhow::Result<Vec<(OsString, Option<Vec<u8>>)>> {
    let mut out = Vec::new();
    let entries =
        fs::read_dir(dir).with_context(|| format!("unable to read directory {}", dir.display()))?;
    for e in entries {
        let e = e.with_context(|| format!("unable to read directory {}", dir.display()))?;
        let name = e.file_name();
        if name.as_bytes().first() == Some(&b'.') {
            continue;
        }
        let path = e.path();
        let data = fs::read(&path).with_context(|| format!("unable to read {}", path.display()))?;
        out.push((name, decode(&data)));
    }
    Ok(out)
}

/// Write `vars` (name, value) as the envdir `dir`, atomically, or do
/// nothing when it already holds exactly that. The caller has checked the
/// values with [`check_carriable`]; names must be unique.
pub fn write(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<Outcome> {
    write_checked(dir, vars, modes, &[])
}

/// [`write`], refusing also a directory that is or holds one of
/// `protected` (the config files, the run file).
pub fn write_checked(
    dir: &Path,
    vars: &[(&str, &[u8])],
    modes: Modes,
    protected: &[&Path],
) -> anyhow::Result<Outcome> {
    let (target, unchanged) = probe(dir, vars, modes, protected)?;
    if unchanged {
        remove_leftovers(dir);
        return Ok(Outcome::Unchanged);
    }
    replace(dir, vars, modes, target, protected)?;
    Ok(Outcome::Written)
}

/// Replace `dir` with these contents, atomically, without comparing first
/// (the plan has already found that it differs). Refuses what
/// [`check_target`] refuses, as the plan did.
pub fn write_new(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<()> {
    write_new_checked(dir, vars, modes, &[])
}

/// [`write_new`], refusing also a directory that is or holds one of
/// `protected` (the config files, the run file), as the plan did.
pub fn write_new_checked(
    dir: &Path,
    vars: &[(&str, &[u8])],
    modes: Modes,
    protected: &[&Path],
) -> anyhow::Result<()> {
    let target = check_target(dir, protected)?;
    replace(dir, vars, modes, target, protected)
}

/// `dir` split into its parent ("." for a bare name) and its last component.
fn split(dir: &Path) -> (PathBuf, OsString) {
    let base = dir.file_name().unwrap_or(OsStr::new(".")).to_os_string();
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    (parent, base)
}

fn sys(e: Errno) -> std::io::Error {
    std::io::Error::from(e)
}

fn is_reg(st: &FileStat) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG
}

/// [`check_target`] and [`holds`] with one listing of the directory: what
/// stands at `dir`, and whether it already holds exactly `vars` (never
/// true unless it is [`Target::Ours`]). Read-only.
pub fn probe(
    dir: &Path,
    vars: &[(&str, &[u8])],
    modes: Modes,
    protected: &[&Path],
) -> anyhow::Result<(Target, bool)> {
    let (target, names, d) = target::inspect(dir, protected)?;
    let same = match (target, &d) {
        (Target::Ours, Some(d)) => holds_listed(d.as_raw_fd(), vars, modes, &names)?,
        _ => false,
    };
    Ok((target, same))
}

/// Does `dir` already hold exactly these files, with these modes, and
/// nothing else, as courier-run wrote them? Any difference (or any doubt)
/// means rewrite. Costs: the manifest (open, fstat, read, close), the
/// listing, one `fstatat` per file; a file's bytes are read only when its
/// ctime is too recent to trust.
pub fn holds(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<bool> {
    let d = match open_dir(None, dir) {
        Ok(fd) => fd,
        Err(Errno::ENOENT | Errno::ELOOP | Errno::ENOTDIR) => return Ok(false),
        Err(e) => return Err(sys(e)).with_context(|| format!("unable to open {}", dir.display())),
    };
    // Listed through the descriptor the files are then examined through.
    let mut names = target::Names::default();
    crate::dirlist::each(d.as_fd(), |n| {
        if n != manifest::MARKER.as_bytes() {
            names.push(n);
        }
    })
    .with_context(|| format!("unable to read {}", dir.display()))?;
    holds_listed(d.as_raw_fd(), vars, modes, &names)
}

/// [`holds`], given the directory open (`d`, O_NOFOLLOW) and its names
/// other than the marker.
fn holds_listed(
    d: RawFd,
    vars: &[(&str, &[u8])],
    modes: Modes,
    names: &target::Names,
) -> anyhow::Result<bool> {
    let dst = fstat(d).map_err(sys)?;
    if dst.st_mode & 0o7777 != modes.dir {
        return Ok(false);
    }
    let Some((data, trusted_before)) = read_manifest(d, dst.st_dev, modes.file) else {
        return Ok(false);
    };
    let Some(records) = manifest::parse(&data) else {
        return Ok(false);
    };
    if records.len() != vars.len() {
        return Ok(false);
    }
    for (name, value) in vars {
        match records.get(name.as_bytes()) {
            Some(r) if encodes_to(value, r.content) => {}
            _ => return Ok(false),
        }
    }
    // Nothing more on disk than the manifest says (names are unique in a
    // listing).
    if names.len() != records.len() || !names.iter().all(|n| records.contains(n)) {
        return Ok(false);
    }
    // Each file as it was written.
    for (name, r) in &records.records {
        let Ok(st) = fstatat(Some(d), *name, AtFlags::AT_SYMLINK_NOFOLLOW) else {
            return Ok(false);
        };
        let ctime = (st.st_ctime, st.st_ctime_nsec);
        if !is_reg(&st)
            || st.st_dev != dst.st_dev
            || st.st_ino != r.stamp.ino
            || ctime != r.stamp.ctime
            || st.st_mode & 0o7777 != modes.file
            || st.st_size as u64 != r.content.len() as u64
        {
            return Ok(false);
        }
        if ctime >= trusted_before && !same_bytes(d, name, r.content) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The manifest's bytes and its ctime, when it is a regular file of ours.
fn read_manifest(d: RawFd, dev: u64, mode: u32) -> Option<(Vec<u8>, (i64, i64))> {
    let fd = openat(
        Some(d),
        MARKER,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    // SAFETY: openat just returned this descriptor.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let st = fstat(f.as_raw_fd()).ok()?;
    if !is_reg(&st) || st.st_dev != dev || st.st_mode & 0o7777 != mode {
        return None;
    }
    let data = crate::safefile::read_sized(&mut f, usize::try_from(st.st_size).ok()?).ok()??;
    Some((data, (st.st_ctime, st.st_ctime_nsec)))
}

/// Does the file `name` in `d` hold exactly `want`?
fn same_bytes(d: RawFd, name: &[u8], want: &[u8]) -> bool {
    let Ok(fd) = openat(
        Some(d),
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    // SAFETY: openat just returned this descriptor.
    let f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut got = Vec::with_capacity(want.len() + 1);
    f.take(want.len() as u64 + 1).read_to_end(&mut got).is_ok() && got == want
}

/// Is `content` what [`encode`] makes of `value`? (Without allocating.)
fn encodes_to(value: &[u8], content: &[u8]) -> bool {
    content.len() == value.len() + 1
        && content[value.len()] == b'\n'
        && value
            .iter()
            .zip(content)
            .all(|(&v, &c)| c == if v == b'\n' { 0 } else { v })
}

/// Build the new directory beside `dir` and swap it in.
fn replace(
    dir: &Path,
    vars: &[(&str, &[u8])],
    modes: Modes,
    target: Target,
    protected: &[&Path],
) -> anyhow::Result<()> {
    refuse_names(vars)?;
    let (parent, base) = split(dir);
    // The parent is followed through symlinks, as the plan's probe does
    // (only the envdir's own name never is): `envdir=./l/env` with `l` a
    // symlink to a directory is that directory's `env`, in the dry run,
    // --check and the launch alike.
    let pfd = open_parent(&parent)
        .map_err(sys)
        .with_context(|| format!("unable to open directory {}", parent.display()))?;
    let tmpname = siblings::name(&base, Sibling::New);
    let mut guard = build_dir(&pfd, &parent, &tmpname, modes)?;
    fill(&guard.fd, &guard.path, vars, modes)?;
    // One sync for all files and the directory, instead of one per file:
    // everything is durable before the swap makes it visible.
    nix::unistd::syncfs(guard.fd.as_raw_fd())
        .map_err(sys)
        .with_context(|| format!("unable to sync {}", guard.path.display()))?;
    let retired = swap(&pfd, dir, &tmpname, target, protected, modes)?;
    // Swapped: the directory built is now the live envdir.
    guard.armed = false;
    nix::unistd::fsync(pfd.as_raw_fd())
        .map_err(sys)
        .with_context(|| format!("unable to sync directory {}", parent.display()))?;
    // Only now, and keeping the generation just replaced: a reader still in
    // an older one has had the whole build of this one to finish.
    siblings::remove_leftovers_except(dir, retired.as_deref());
    Ok(())
}

/// Refused before anything is created: a name the writer cannot write.
fn refuse_names(vars: &[(&str, &[u8])]) -> anyhow::Result<()> {
    for (name, _) in vars {
        if !is_name(name.as_bytes()) {
            return Err(bad_input(format!(
                "{} is not a valid variable name for an envdir",
                target::shown(Path::new(name))
            )));
        }
        check_name_len(name).map_err(bad_input)?;
    }
    Ok(())
}

/// The directory being built, `tmpname` in `pfd` (the directory
/// `parent`): made with the envdir's mode, locked, and removed again on
/// every error path until the swap disarms the guard.
fn build_dir(
    pfd: &OwnedFd,
    parent: &Path,
    tmpname: &OsStr,
    modes: Modes,
) -> anyhow::Result<RemoveOnDrop> {
    let tmp = parent.join(tmpname);
    mkdirat(
        Some(pfd.as_raw_fd()),
        tmpname,
        Mode::from_bits_truncate(modes.dir),
    )
    .map_err(sys)
    .with_context(|| format!("unable to create directory {}", tmp.display()))?;
    let dfd = match open_dir(Some(pfd), Path::new(tmpname)) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = fs::remove_dir(&tmp);
            return Err(sys(e)).with_context(|| format!("unable to open {}", tmp.display()));
        }
    };
    let guard = RemoveOnDrop {
        path: tmp,
        fd: dfd,
        armed: true,
    };
    // Held until this process ends: the cleanup of a concurrent start
    // leaves the directory alone.
    siblings::try_lock(&guard.fd);
    // The umask may have cut the mode: set it exactly.
    fchmod(guard.fd.as_raw_fd(), Mode::from_bits_truncate(modes.dir))
        .map_err(sys)
        .with_context(|| format!("unable to chmod {}", guard.path.display()))?;
    Ok(guard)
}

/// One file per variable in `d` (the directory `tmp`), then the manifest
/// that lists them, made younger than all of them.
fn fill(d: &OwnedFd, tmp: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<()> {
    let contents: Vec<Vec<u8>> = vars.iter().map(|(_, v)| encode(v)).collect();
    let mut stamps = Vec::with_capacity(vars.len());
    for ((name, _), content) in vars.iter().zip(&contents) {
        let st = create(d, name.as_bytes(), content, modes.file)
            .with_context(|| format!("unable to create {}", tmp.join(name).display()))?;
        stamps.push(st);
    }
    let listed: Vec<(&[u8], Written, &[u8])> = vars
        .iter()
        .zip(&stamps)
        .zip(&contents)
        .map(|(((n, _), s), c)| (n.as_bytes(), *s, c.as_slice()))
        .collect();
    let written = create(d, MARKER.as_bytes(), &manifest::render(&listed), modes.file)
        .with_context(|| format!("unable to create {}", tmp.join(MARKER).display()))?;
    // The manifest must be younger than every file, or every file would
    // be read on each start (see `holds`).
    if let Some(newest) = stamps.iter().map(|s| s.ctime).max() {
        age_past(d, written.ctime, newest, modes.file);
    }
    Ok(())
}

/// Create the file `name` in `d` holding `content` with mode `mode`;
/// returns its stamp as the manifest records it.
fn create(d: &OwnedFd, name: &[u8], content: &[u8], mode: u32) -> anyhow::Result<Written> {
    let fd = openat(
        Some(d.as_raw_fd()),
        name,
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(mode),
    )
    .map_err(sys)?;
    // SAFETY: openat just returned this descriptor.
    let mut f = fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    f.write_all(content)?;
    let mut st = fstat(f.as_raw_fd()).map_err(sys)?;
    if st.st_mode & 0o7777 != mode {
        fchmod(f.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(sys)?;
        st = fstat(f.as_raw_fd()).map_err(sys)?;
    }
    Ok(Written {
        ino: st.st_ino,
        ctime: (st.st_ctime, st.st_ctime_nsec),
        mode,
    })
}

/// Give the manifest a ctime later than `newest` (at most 50 ms spent):
/// touch its ctime with a no-op chmod until it is. Where the kernel gives
/// a changed, already-queried inode a fine-grained time (Linux 6.13+
/// "multigrain" timestamps on ext4, xfs, btrfs, tmpfs) the first chmod
/// does it; elsewhere the coarse clock must tick (at most a jiffy).
fn age_past(d: &OwnedFd, mut ctime: (i64, i64), newest: (i64, i64), mode: u32) {
    use nix::sys::stat::{FchmodatFlags, fchmodat};
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(50);
    while ctime <= newest && std::time::Instant::now() < deadline {
        let touched = fchmodat(
            Some(d.as_raw_fd()),
            MARKER,
            Mode::from_bits_truncate(mode),
            FchmodatFlags::FollowSymlink,
        );
        match fstatat(Some(d.as_raw_fd()), MARKER, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) if touched.is_ok() => ctime = (st.st_ctime, st.st_ctime_nsec),
            _ => return,
        }
        if ctime <= newest {
            std::thread::sleep(std::time::Duration::from_micros(250));
        }
    }
}

/// Put `tmpname` in the place of the envdir `dir` (both in `pfd`, its
/// parent). RENAME_EXCHANGE swaps the two in one step and the old
/// directory is renamed away whole; where the filesystem lacks it, two
/// renames, the old directory locked between them. Returns the name the
/// old directory now has.
///
/// Another start may be swapping at the same time (two first starts on an
/// absent envdir; a supervisor restarting while an admin runs one by
/// hand): when the path changed under us (EEXIST where it was absent,
/// ENOENT where it was there), what stands there is inspected again, with
/// the same refusals, and the swap retried. Both starts succeed; the later
/// one's directory is the live one.
fn swap(
    pfd: &OwnedFd,
    dir: &Path,
    tmpname: &OsStr,
    mut target: Target,
    protected: &[&Path],
    modes: Modes,
) -> anyhow::Result<Option<OsString>> {
    let (parent, base) = split(dir);
    let s = Swap {
        pfd,
        parent,
        base,
        tmpname,
        modes,
    };
    for _ in 0..8 {
        let attempt = if target == Target::Absent {
            s.put_new()?
        } else {
            s.exchange()?
        };
        match attempt {
            Attempt::Done(retired) => return Ok(retired),
            // The path changed under us: what stands there now is
            // inspected again, with the same refusals, and the swap
            // retried.
            Attempt::Changed => target = check_target(dir, protected)?,
        }
    }
    Err(anyhow::anyhow!(
        "unable to replace {}: it kept changing under concurrent starts",
        s.shown().display()
    ))
}

/// The names of one [`swap`]: the envdir `base` and the directory built
/// for it, `tmpname`, both in `pfd` (the directory `parent`).
struct Swap<'a> {
    pfd: &'a OwnedFd,
    parent: PathBuf,
    base: OsString,
    tmpname: &'a OsStr,
    modes: Modes,
}

/// One attempt of [`swap`]: done (with the name the old directory now
/// has, if there was one), or the path changed under it (another start).
enum Attempt {
    Done(Option<OsString>),
    Changed,
}

impl Swap<'_> {
    fn at(&self) -> Option<RawFd> {
        Some(self.pfd.as_raw_fd())
    }

    /// The envdir's path, for messages.
    fn shown(&self) -> PathBuf {
        self.parent.join(&self.base)
    }

    fn rename_failed(&self) -> String {
        format!(
            "unable to rename {} to {}",
            self.parent.join(self.tmpname).display(),
            self.shown().display()
        )
    }

    /// No envdir yet: renamed into place, but never over a directory
    /// another start has put there meanwhile (that is a change: inspect
    /// and exchange).
    fn put_new(&self) -> anyhow::Result<Attempt> {
        let (p, base) = (self.at(), self.base.as_os_str());
        match renameat2(p, self.tmpname, p, base, RenameFlags::RENAME_NOREPLACE) {
            // Without RENAME_NOREPLACE: a plain rename, which fails on
            // a directory another start has filled meanwhile (and
            // replaces an empty one: nothing lost).
            Err(Errno::EINVAL | Errno::ENOSYS) => match renameat(p, self.tmpname, p, base) {
                Ok(()) => Ok(Attempt::Done(None)),
                Err(Errno::EEXIST | Errno::ENOTEMPTY) => Ok(Attempt::Changed),
                Err(e) => Err(sys(e)).with_context(|| self.rename_failed()),
            },
            Ok(()) => Ok(Attempt::Done(None)),
            Err(Errno::EEXIST) => Ok(Attempt::Changed),
            Err(e) => Err(sys(e)).with_context(|| self.rename_failed()),
        }
    }

    /// An envdir is there: swapped with ours in one step
    /// (RENAME_EXCHANGE), then renamed away whole and retired; where the
    /// filesystem lacks the exchange, [`Swap::two_renames`].
    fn exchange(&self) -> anyhow::Result<Attempt> {
        let (p, base) = (self.at(), self.base.as_os_str());
        let oldname = siblings::name(&self.base, Sibling::Old);
        match renameat2(p, self.tmpname, p, base, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => {
                // Best effort: under its `.new.` name it is removed all the
                // same once this process is gone.
                let name = match renameat(p, self.tmpname, p, oldname.as_os_str()) {
                    Ok(()) => oldname,
                    Err(_) => self.tmpname.to_os_string(),
                };
                retire(self.pfd, &name, self.modes);
                Ok(Attempt::Done(Some(name)))
            }
            Err(Errno::ENOENT) => Ok(Attempt::Changed),
            Err(Errno::EINVAL | Errno::ENOSYS) => self.two_renames(oldname),
            Err(e) => {
                Err(sys(e)).with_context(|| format!("unable to replace {}", self.shown().display()))
            }
        }
    }

    /// Without RENAME_EXCHANGE: the old directory renamed away (locked
    /// while it moves, so another start's cleanup does not remove it
    /// between the two renames), then ours into its place. If that fails for another reason than a change, the old
    /// one is put back: the envdir is never left missing by us.
    fn two_renames(&self, oldname: OsString) -> anyhow::Result<Attempt> {
        let (p, base) = (self.at(), self.base.as_os_str());
        let old = match open_dir(Some(self.pfd), Path::new(&self.base)) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(Attempt::Changed),
            Err(e) => {
                return Err(sys(e))
                    .with_context(|| format!("unable to open {}", self.shown().display()));
            }
        };
        siblings::try_lock(&old);
        match renameat(p, base, p, oldname.as_os_str()) {
            Ok(()) => {}
            Err(Errno::ENOENT) => return Ok(Attempt::Changed),
            Err(e) => {
                return Err(sys(e)).with_context(|| {
                    format!(
                        "unable to rename {} to {}",
                        self.shown().display(),
                        self.parent.join(&oldname).display()
                    )
                });
            }
        }
        retire(self.pfd, &oldname, self.modes);
        match renameat(p, self.tmpname, p, base) {
            Ok(()) => Ok(Attempt::Done(Some(oldname))),
            // Another start put its directory there meanwhile: ours
            // goes in place of it on the next round.
            Err(Errno::EEXIST | Errno::ENOTEMPTY) => Ok(Attempt::Changed),
            Err(e) => {
                let _ = renameat(p, oldname.as_os_str(), p, base);
                Err(sys(e)).with_context(|| self.rename_failed())
            }
        }
    }
}

/// A generation just replaced, `name` in `pfd`: stamped with the time it
/// stopped being the envdir (its mtime, which nothing else changes: the
/// cleanup waits [`siblings::GRACE`] from it, so that a reader still in it
/// finishes first), and given the directory mode of the config as it is
/// now (`modes`): a config made private since takes the old generation's
/// values private at once (mode 700: no one but its owner can reach the
/// files), not at the next start. Root's readers (envdir under a
/// supervisor) still read it whole.
fn retire(pfd: &OwnedFd, name: &OsStr, modes: Modes) {
    let Ok(fd) = open_dir(Some(pfd), Path::new(name)) else {
        return;
    };
    let now = nix::sys::time::TimeSpec::UTIME_NOW;
    let _ = nix::sys::stat::futimens(fd.as_raw_fd(), &now, &now);
    if modes == Modes::PRIVATE {
        let _ = fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(modes.dir));
    }
}

/// Open the envdir's parent directory, following symlinks (see
/// [`replace`]).
fn open_parent(parent: &Path) -> nix::Result<OwnedFd> {
    let fd = nix::fcntl::open(
        parent,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    // SAFETY: open just returned this descriptor, owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Removes the directory being built on every error path (only what we
/// wrote in it; see [`siblings::remove`]).
struct RemoveOnDrop {
    path: PathBuf,
    fd: OwnedFd,
    armed: bool,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if self.armed {
            siblings::remove(&self.path, &self.fd, Sibling::New);
        }
    }
}

/// Can `dir` be the envdir? A side-effect-free probe shared by the plan
/// and `--check`, so that a dry run's verdict is the launch's: a path
/// without a last component (`.`, `..`, `/`) cannot be replaced as a
/// whole, and an existing entry that is not a directory (a regular file,
/// or a symlink: the atomic replacement would replace the link, not the
/// directory it points to) is not ours to replace. Err: (exit code,
/// problem, fix).
pub fn check_path(dir: &Path) -> Result<(), (crate::error::Exit, String, String)> {
    use crate::error::Exit::{System, Usage};
    let shown = crate::shown::path(dir);
    // The last component was checked by check_component.
    let Some(base) = dir.file_name() else {
        return Ok(());
    };
    // Without a trailing slash, which would follow a symlink.
    let entry = dir.with_file_name(base);
    match fs::symlink_metadata(&entry) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) if m.file_type().is_symlink() => Err((
            Usage,
            format!("envdir {shown} is a symbolic link"),
            "courier-run replaces the envdir with a rename, which would replace the link: set envdir to the directory itself".into(),
        )),
        Ok(_) => Err((
            Usage,
            format!("envdir {shown} exists and is not a directory"),
            "remove it, or set envdir elsewhere".into(),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err((
            System,
            format!(
                "unable to stat envdir {shown}: {}",
                crate::error::strerror(&e)
            ),
            String::new(),
        )),
    }
}

/// The envdir will be written: its parent must let us.
pub fn check_writable_parent(dir: &Path) -> anyhow::Result<()> {
    use nix::unistd::{AccessFlags, access};
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        anyhow::Error::new(std::io::Error::from(e)).context(format!(
            "unable to write envdir {}: its directory {} is not writable",
            dir.display(),
            parent.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// One attempt of the swap on a scratch parent: an envdir that
    /// appeared meanwhile is a change for `put_new` (never renamed over);
    /// one that vanished is a change for `exchange`; both exchanges (one
    /// step, two renames) leave ours in place and the old one beside it,
    /// retired private when the config is.
    #[test]
    fn swap_attempts() {
        let dir = std::env::temp_dir().join(format!("cr-swap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join(".env.new.x")).unwrap();
        fs::write(dir.join(".env.new.x/A"), "new\n").unwrap();
        let pfd = open_parent(&dir).unwrap();
        let s = Swap {
            pfd: &pfd,
            parent: dir.clone(),
            base: "env".into(),
            tmpname: OsStr::new(".env.new.x"),
            modes: Modes::PRIVATE,
        };
        let a = |f: &str| fs::read_to_string(dir.join(f)).ok();
        // Gone under exchange: a change, nothing moved.
        assert!(matches!(s.exchange().unwrap(), Attempt::Changed));
        assert!(matches!(
            s.two_renames("x".into()).unwrap(),
            Attempt::Changed
        ));
        // There under put_new: a change, and it is not replaced.
        fs::create_dir(dir.join("env")).unwrap();
        fs::write(dir.join("env/A"), "other\n").unwrap();
        assert!(matches!(s.put_new().unwrap(), Attempt::Changed));
        assert_eq!(a("env/A").as_deref(), Some("other\n"));
        // The exchange: ours in place, the old one renamed away, mode 700.
        let Attempt::Done(Some(old)) = s.exchange().unwrap() else {
            panic!("not swapped")
        };
        assert_eq!(a("env/A").as_deref(), Some("new\n"));
        let old = Path::new(&old);
        assert_eq!(
            a(&old.join("A").to_string_lossy()).as_deref(),
            Some("other\n")
        );
        let mode = fs::metadata(dir.join(old)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(!dir.join(".env.new.x").exists());
        // The two renames, as on a filesystem without RENAME_EXCHANGE.
        fs::create_dir(dir.join(".env.new.x")).unwrap();
        fs::write(dir.join(".env.new.x/A"), "third\n").unwrap();
        let Attempt::Done(Some(old2)) = s
            .two_renames(siblings::name(&s.base, Sibling::Old))
            .unwrap()
        else {
            panic!("not swapped")
        };
        assert_eq!(a("env/A").as_deref(), Some("third\n"));
        assert_eq!(
            a(&Path::new(&old2).join("A").to_string_lossy()).as_deref(),
            Some("new\n")
        );
        // Nothing there: put_new renames ours into place.
        fs::remove_dir_all(dir.join("env")).unwrap();
        fs::create_dir(dir.join(".env.new.x")).unwrap();
        assert!(matches!(s.put_new().unwrap(), Attempt::Done(None)));
        assert!(dir.join("env").is_dir());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn encode_decode_round_trip() {
        for v in [&b""[..], b"x", b"a\nb", b"a\r", b" lead", b"\xff\x80"] {
            assert_eq!(decode(&encode(v)).as_deref(), Some(v));
        }
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"a \t\nrest"), Some(b"a".to_vec()));
        assert_eq!(decode(b"a\0b"), Some(b"a\nb".to_vec()));
    }

    #[test]
    fn holds_sees_every_difference() {
        let root = std::env::temp_dir().join(format!("courier-run-holds-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let dir = root.join("env");
        let vars: &[(&str, &[u8])] = &[("A", b"1"), ("B", b"")];
        write(&dir, vars, Modes::PUBLIC).unwrap();
        assert!(holds(&dir, vars, Modes::PUBLIC).unwrap());
        // Same length, other byte.
        assert!(!holds(&dir, &[("A", b"2"), ("B", b"")], Modes::PUBLIC).unwrap());
        // A name more, a name less, other modes.
        assert!(!holds(&dir, &[("A", b"1")], Modes::PUBLIC).unwrap());
        assert!(!holds(&dir, &[("A", b"1"), ("B", b""), ("C", b"")], Modes::PUBLIC).unwrap());
        assert!(!holds(&dir, vars, Modes::PRIVATE).unwrap());
        // A symlink to identical content is not the file we would write.
        fs::write(root.join("one"), b"1\n").unwrap();
        fs::remove_file(dir.join("A")).unwrap();
        std::os::unix::fs::symlink(root.join("one"), dir.join("A")).unwrap();
        assert!(!holds(&dir, vars, Modes::PUBLIC).unwrap());
        // A longer file starting with the right bytes.
        fs::remove_file(dir.join("A")).unwrap();
        fs::write(dir.join("A"), b"1\nmore").unwrap();
        fs::set_permissions(dir.join("A"), fs::Permissions::from_mode(0o644)).unwrap();
        assert!(!holds(&dir, vars, Modes::PUBLIC).unwrap());
        fs::remove_dir_all(&root).unwrap();
    }
}
