//! The envdir: written atomically, read with daemontools 0.76 semantics.
//!
//! Writer: one file per name holding the value and a newline, embedded
//! newlines written as NUL bytes (envdir turns NULs back into newlines), an
//! empty value as a lone `\n` (set to empty; a 0-byte file would unset).
//! The directory is built beside the target and swapped in with one
//! `renameat2(RENAME_EXCHANGE)`, so a reader (or a crash) sees the whole old
//! or the whole new envdir, never a mix; names that left the config leave
//! the envdir. When the directory already holds exactly this content,
//! nothing is written: a service restarting every second must not churn the
//! disk.

use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{Assignment, is_name};
use crate::error::bad_input;

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
/// values with [`check_carriable`].
pub fn write(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<Outcome> {
    if holds(dir, vars, modes)? {
        return Ok(Outcome::Unchanged);
    }
    write_new(dir, vars, modes)?;
    Ok(Outcome::Written)
}

/// Replace `dir` with these contents, atomically, without comparing first
/// (the plan has already found that it differs).
pub fn write_new(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<()> {
    let (parent, base) = split(dir)?;
    let tmp = parent.join(format!(".{base}.new.{}", std::process::id()));
    let old = parent.join(format!(".{base}.old.{}", std::process::id()));
    // Leftovers of an earlier crash of ours with the same pid: remove.
    let _ = fs::remove_dir_all(&tmp);
    let _ = fs::remove_dir_all(&old);
    let guard = RemoveOnDrop(Some(tmp.clone()));
    build(&tmp, vars, modes)?;
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => swap(&tmp, dir, &old)?,
        Ok(_) => {
            return Err(bad_input(format!(
                "{} exists and is not a directory: courier-run replaces only directories (remove it, or set envdir elsewhere)",
                dir.display()
            )));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::rename(&tmp, dir)
            .with_context(|| format!("unable to rename {} to {}", tmp.display(), dir.display()))?,
        Err(e) => {
            return Err(e).with_context(|| format!("unable to stat {}", dir.display()));
        }
    }
    drop(guard);
    fsync_dir(&parent)
}

/// `dir` split into its parent ("." for a bare name) and its last component.
fn split(dir: &Path) -> anyhow::Result<(PathBuf, String)> {
    let base = dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .ok_or_else(|| bad_input(format!("envdir {} has no last component", dir.display())))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, base))
}

/// Does `dir` already hold exactly these files, with these modes, and
/// nothing else? Any difference (or any doubt) means rewrite.
pub fn holds(dir: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<bool> {
    let meta = match fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("unable to stat {}", dir.display())),
    };
    if !meta.is_dir() || meta.permissions().mode() & 0o7777 != modes.dir {
        return Ok(false);
    }
    let mut count = 0;
    for e in fs::read_dir(dir).with_context(|| format!("unable to read {}", dir.display()))? {
        let e = e.with_context(|| format!("unable to read {}", dir.display()))?;
        count += 1;
        let name = e.file_name();
        let Some((_, value)) = vars.iter().find(|(n, _)| n.as_bytes() == name.as_bytes()) else {
            return Ok(false);
        };
        if !same_file(&e, &encode(value), modes.file) {
            return Ok(false);
        }
    }
    Ok(count == vars.len())
}

/// Is this entry a regular file of mode `mode` holding exactly `want`?
/// Four system calls: open, fstat (mode and size), one read of one byte
/// more than expected (a regular file returns short only at its end), close.
/// Any error or doubt answers no, which only means "rewrite".
fn same_file(e: &fs::DirEntry, want: &[u8], mode: u32) -> bool {
    use std::io::Read;
    // d_type from getdents: no system call; a symlink is not "a file".
    if !e.file_type().is_ok_and(|t| t.is_file()) {
        return false;
    }
    let Ok(mut f) = fs::File::open(e.path()) else {
        return false;
    };
    match f.metadata() {
        Ok(m) if m.permissions().mode() & 0o7777 == mode && m.len() == want.len() as u64 => {}
        _ => return false,
    }
    let mut buf = vec![0u8; want.len() + 1];
    matches!(f.read(&mut buf), Ok(n) if n == want.len() && buf[..n] == *want)
}

/// Make `tmp` with every file written and synced.
fn build(tmp: &Path, vars: &[(&str, &[u8])], modes: Modes) -> anyhow::Result<()> {
    fs::DirBuilder::new()
        .mode(modes.dir)
        .create(tmp)
        .with_context(|| format!("unable to create directory {}", tmp.display()))?;
    // The umask may have cut the mode: set it exactly.
    fs::set_permissions(tmp, fs::Permissions::from_mode(modes.dir))
        .with_context(|| format!("unable to chmod {}", tmp.display()))?;
    for (name, value) in vars {
        let path = tmp.join(name);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(modes.file)
            .open(&path)
            .with_context(|| format!("unable to create {}", path.display()))?;
        f.set_permissions(fs::Permissions::from_mode(modes.file))
            .with_context(|| format!("unable to chmod {}", path.display()))?;
        f.write_all(&encode(value))
            .and_then(|_| f.sync_all())
            .with_context(|| format!("unable to write {}", path.display()))?;
    }
    fsync_dir(tmp)
}

/// Put `tmp` in the place of the directory `dir`. RENAME_EXCHANGE swaps the
/// two in one step; where the filesystem lacks it (EINVAL), fall back to two
/// renames, leaving a short window in which `dir` is missing but `old`
/// holds the complete previous content.
fn swap(tmp: &Path, dir: &Path, old: &Path) -> anyhow::Result<()> {
    use nix::fcntl::{RenameFlags, renameat2};
    match renameat2(None, tmp, None, dir, RenameFlags::RENAME_EXCHANGE) {
        Ok(()) => {
            // `tmp` now holds the previous content.
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOSYS) => {
            fs::rename(dir, old).with_context(|| {
                format!("unable to rename {} to {}", dir.display(), old.display())
            })?;
            if let Err(e) = fs::rename(tmp, dir) {
                let _ = fs::rename(old, dir);
                return Err(e).with_context(|| {
                    format!("unable to rename {} to {}", tmp.display(), dir.display())
                });
            }
            let _ = fs::remove_dir_all(old);
            Ok(())
        }
        Err(e) => Err(std::io::Error::from(e))
            .with_context(|| format!("unable to replace {} with {}", dir.display(), tmp.display())),
    }
}

fn fsync_dir(dir: &Path) -> anyhow::Result<()> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("unable to sync directory {}", dir.display()))
}

/// Removes the temporary directory on every error path.
struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = fs::remove_dir_all(p);
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
    let shown = crate::error::printable(&dir.to_string_lossy());
    // The last component as written: Path::file_name reads `env/.` as
    // `env`, but rename(2) would be given `env/.`.
    let raw = dir.as_os_str().as_bytes();
    let last = raw.rsplit(|&c| c == b'/').find(|c| !c.is_empty());
    let base = match (dir.file_name(), last) {
        (Some(b), Some(l)) if !matches!(l, b"." | b"..") => b,
        _ => {
            return Err((
                Usage,
                format!("envdir {shown} names no directory of its own"),
                "courier-run replaces the envdir as a whole: write e.g. ./env".into(),
            ));
        }
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
