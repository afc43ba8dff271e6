//! What may stand at the envdir's path: the refusals, decided
//! before anything is changed, by reading only (lstat, statx, readdir).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::manifest::MARKER;
use super::siblings::{OVERHEAD, mount_root};
use crate::config::is_name;
use crate::error::bad_input;

/// The longest file name the kernel accepts (Linux `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// What stands at the envdir's path now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Nothing: it will be created.
    Absent,
    /// A directory courier-run wrote (it holds the marker).
    Ours,
    /// An empty directory (e.g. made by hand with mkdir): nothing in it to
    /// lose, so it is replaced like one of ours. A directory holding files
    /// courier-run did not write is refused, never emptied: see
    /// [`check_target`].
    Empty,
}

/// A path as a message may show it (the crate's one escaping).
pub use crate::shown::shown_path as shown;

/// The envdir path's last component, as written: not empty, `.` or `..`,
/// and short enough for the sibling names built from it.
pub fn check_component(dir: &Path) -> anyhow::Result<()> {
    let raw = dir.as_os_str().as_bytes();
    let trimmed = match raw.iter().rposition(|&c| c != b'/') {
        Some(i) => &raw[..=i],
        None => &b""[..],
    };
    let last = match trimmed.iter().rposition(|&c| c == b'/') {
        Some(i) => &trimmed[i + 1..],
        None => trimmed,
    };
    if matches!(last, b"" | b"." | b"..") {
        return Err(bad_input(format!(
            "envdir {} names no directory of its own (courier-run replaces the envdir as a whole: write e.g. ./env)",
            shown(dir)
        )));
    }
    if last.len() + OVERHEAD > NAME_MAX {
        return Err(bad_input(format!(
            "envdir {}: its last component is {} bytes long; courier-run builds it beside itself under a name {OVERHEAD} bytes longer, and a name holds at most {NAME_MAX} (use a shorter name)",
            shown(dir),
            last.len()
        )));
    }
    Ok(())
}

/// A variable name the envdir can hold as a file name.
pub fn check_name_len(name: &str) -> Result<(), String> {
    if name.len() > NAME_MAX {
        return Err(format!(
            "the name {}... is {} bytes long, and a file name (one per variable in the envdir) holds at most {NAME_MAX} (use a shorter name)",
            name.chars().take(32).collect::<String>(),
            name.len()
        ));
    }
    Ok(())
}

/// May courier-run replace what stands at `dir`? Refuses (exit 100, before
/// anything is changed) a symlink, a non-directory, a mount point, a
/// directory holding anything courier-run does not write (a subdirectory,
/// a symlink, a dotfile other than its marker, a file whose name is not a
/// variable name), a directory of files without courier-run's marker (a
/// classic envdir, or any directory named by mistake: courier-run did not
/// write those files, so it never deletes them), and a path that is,
/// contains, lies inside or is named like a generation of one of
/// `protected` (every file courier-run reads: run file, config files,
/// access list, TLS files), present or not.
pub fn check_target(dir: &Path, protected: &[&Path]) -> anyhow::Result<Target> {
    inspect(dir, protected).map(|(t, _, _)| t)
}

/// The names a directory holds, in one buffer (each followed by a NUL,
/// which no file name contains): a listing of 100,000 files is one
/// allocation, not 100,000.
#[derive(Debug, Default)]
pub(crate) struct Names {
    bytes: Vec<u8>,
    count: usize,
}

impl Names {
    pub fn push(&mut self, name: &[u8]) {
        self.bytes.extend_from_slice(name);
        self.bytes.push(0);
        self.count += 1;
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let body = self.bytes.strip_suffix(b"\0").unwrap_or(&[]);
        body.split(|&b| b == 0).take(self.count)
    }
}

/// [`check_target`], the variable names the directory holds, and the
/// directory, open (none when absent): the unchanged check reads the
/// manifest and stats the files through this descriptor, not a second open.
pub(super) fn inspect(
    dir: &Path,
    protected: &[&Path],
) -> anyhow::Result<(Target, Names, Option<nix::dir::Dir>)> {
    check_component(dir)?;
    // Without a trailing slash, which would follow a symlink.
    let (parent, base) = super::split(dir);
    let entry = parent.join(&base);
    // Before anything else, and whether the envdir exists or not: a file
    // courier-run reads is never inside what it replaces.
    if let Some(p) = overlap(&parent, &base, protected) {
        return Err(bad_input(format!(
            "envdir {} {p}: the envdir is replaced as a whole, and nothing courier-run reads may go with it (set envdir to a directory of its own, e.g. ./env)",
            shown(dir),
        )));
    }
    let meta = match fs::symlink_metadata(&entry) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((Target::Absent, Names::default(), None));
        }
        Err(e) => {
            return Err(
                anyhow::Error::new(e).context(format!("unable to stat envdir {}", shown(dir)))
            );
        }
    };
    refuse_kind(dir, &meta, &parent, &entry)?;
    let listing = list(dir, &entry)?;
    let target = judge(dir, &listing)?;
    Ok((target, listing.names, Some(listing.dir)))
}

/// The refusal of what stands at `dir`, with its fix.
fn refuse(dir: &Path, what: &str, fix: &str) -> anyhow::Error {
    bad_input(format!(
        "envdir {} {what}: courier-run replaces only a directory it wrote or one holding nothing but variable files ({fix})",
        shown(dir)
    ))
}

/// Only a plain directory on the parent's filesystem is replaced: the
/// atomic replacement would replace a symlink, not the directory it
/// points to, and a mount point cannot be renamed away.
fn refuse_kind(dir: &Path, meta: &fs::Metadata, parent: &Path, entry: &Path) -> anyhow::Result<()> {
    if meta.file_type().is_symlink() {
        return Err(refuse(
            dir,
            "is a symbolic link",
            "set envdir to the directory itself",
        ));
    }
    if !meta.is_dir() {
        return Err(refuse(
            dir,
            "exists and is not a directory",
            "remove it, or set envdir elsewhere",
        ));
    }
    let pdev = fs::metadata(parent)
        .map(|m| m.dev())
        .map_err(|e| anyhow::Error::new(e).context(format!("unable to stat {}", shown(parent))))?;
    if meta.dev() != pdev || mount_root(entry) {
        return Err(refuse(
            dir,
            "is a mount point",
            "set envdir to a directory of its own",
        ));
    }
    Ok(())
}

/// What a directory at the envdir's path holds, and the directory, open.
struct Listing {
    dir: nix::dir::Dir,
    /// The variable files, in directory order.
    names: Names,
    /// It holds courier-run's marker (a regular file).
    marker: bool,
}

/// List the directory: refused at the first entry courier-run does not
/// write (anything but a regular file, or a file whose name is neither
/// the marker nor a variable name).
fn list(dir: &Path, entry: &Path) -> anyhow::Result<Listing> {
    let mut marker = false;
    let mut names = Names::default();
    // Listed with readdir(3) through nix (the names borrowed from the
    // directory buffer), not std::fs::read_dir, which allocates twice per
    // entry; the same descriptor answers lstat when d_type is unknown.
    use nix::dir::{Dir, Type};
    use nix::fcntl::{AtFlags, OFlag};
    let unreadable = |e: nix::errno::Errno| {
        anyhow::Error::new(std::io::Error::from(e))
            .context(format!("unable to read envdir {}", shown(dir)))
    };
    let mut d = Dir::open(
        entry,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(unreadable)?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&d);
    for e in d.iter() {
        let e = e.map_err(unreadable)?;
        let n = e.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        let file = match e.file_type() {
            Some(t) => t == Type::File,
            None => nix::sys::stat::fstatat(Some(fd), n, AtFlags::AT_SYMLINK_NOFOLLOW)
                .is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFREG),
        };
        let what = if n == MARKER.as_bytes() && file {
            marker = true;
            continue;
        } else if !file {
            "which is not a regular file"
        } else if is_name(n) {
            names.push(n);
            continue;
        } else {
            "whose name is not a variable name"
        };
        return Err(refuse(
            dir,
            &format!(
                "holds {} {what}",
                shown(Path::new(std::ffi::OsStr::from_bytes(n)))
            ),
            "move it away, or set envdir to a directory of its own",
        ));
    }
    Ok(Listing {
        dir: d,
        names,
        marker,
    })
}

/// Ours (the marker), empty, or a directory of files courier-run did not
/// write: refused.
fn judge(dir: &Path, l: &Listing) -> anyhow::Result<Target> {
    if l.marker {
        return Ok(Target::Ours);
    }
    if l.names.len() == 0 {
        return Ok(Target::Empty);
    }
    // Not emptied, not moved: refused with the fix. Files courier-run
    // did not write may be anything (a classic run script's envdir, or
    // an /etc-like directory named by mistake); the admin moves them,
    // once, and nothing is lost.
    let first = l.names.iter().next().unwrap_or_default();
    Err(bad_input(format!(
        "envdir {} holds {} and {} other file(s) but no {MARKER} marker: courier-run did not write it, and never deletes files it did not write (move it aside once, e.g. mv {} {}.orig, and start again: courier-run then writes it anew; or set envdir to a new path)",
        shown(dir),
        shown(Path::new(std::ffi::OsStr::from_bytes(first))),
        l.names.len() - 1,
        shown(dir),
        shown(dir),
    )))
}

/// `p` made absolute with every symlink resolved, as far as it exists: the
/// part that does not exist yet is appended as written (a missing access
/// list still names the place it would be read from).
fn canonical(p: &Path) -> Option<PathBuf> {
    if let Ok(c) = fs::canonicalize(p) {
        return Some(c);
    }
    let name = p.file_name()?;
    let parent = match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Some(canonical(parent)?.join(name))
}

/// How the envdir `parent`/`base` meets one of `protected`, if it does:
/// it is the file, holds it (at any depth), lies inside it (an access
/// list or TLS_TRUSTCERTS may be a directory), or the file has one of the
/// names courier-run gives the envdir's generations beside it (which it
/// removes).
fn overlap(parent: &Path, base: &std::ffi::OsStr, protected: &[&Path]) -> Option<String> {
    let env = canonical(&parent.join(base))?;
    for p in protected {
        let Some(c) = canonical(p) else { continue };
        let what = if c == env {
            "is"
        } else if c.starts_with(&env) {
            "holds"
        } else if env.starts_with(&c) {
            "lies inside"
        } else if c.parent() == env.parent()
            && c.file_name()
                .is_some_and(|n| super::siblings::is_sibling(base.as_bytes(), n.as_bytes()))
        {
            "has its generations named like"
        } else {
            continue;
        };
        return Some(format!("{what} {}, which courier-run reads", shown(p)));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_list_back_as_pushed() {
        let mut n = Names::default();
        assert!(n.len() == 0 && n.iter().next().is_none());
        for name in [&b"A"[..], b"LONGER_NAME", b"x"] {
            n.push(name);
        }
        assert_eq!(n.len(), 3);
        assert_eq!(
            n.iter().collect::<Vec<_>>(),
            [&b"A"[..], b"LONGER_NAME", b"x"]
        );
    }

    /// How an envdir meets the files courier-run reads, present or not.
    #[test]
    fn overlaps() {
        let root = std::env::temp_dir().join(format!("courier-run-overlap-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("acl")).unwrap();
        fs::write(root.join("acl/list"), b"x").unwrap();
        std::os::unix::fs::symlink("acl", root.join("link")).unwrap();
        let p = |s: &str| root.join(s);
        let meets = |env: &str, file: &str| {
            let e = p(env);
            let (parent, base) = super::super::split(&e);
            overlap(&parent, &base, &[&p(file)])
        };
        assert!(meets("acl", "acl/list").unwrap().starts_with("holds"));
        assert!(
            meets("link", "acl/list").unwrap().starts_with("holds"),
            "through a symlink"
        );
        assert!(
            meets("acl", "acl/missing").unwrap().starts_with("holds"),
            "a missing file"
        );
        assert!(meets("acl/env", "acl").unwrap().starts_with("lies inside"));
        assert!(meets("acl/list", "acl/list").unwrap().starts_with("is "));
        assert!(
            meets("env", ".env.old.1-1")
                .unwrap()
                .starts_with("has its generations")
        );
        assert_eq!(meets("env", "acl/list"), None, "beside is allowed");
        assert_eq!(meets("env", "run"), None);
        assert!(super::super::siblings::is_sibling(b"env", b".env.new.1-2"));
        assert!(!super::super::siblings::is_sibling(b"env", b".envx.old.1"));
        fs::remove_dir_all(&root).unwrap();
    }

    /// Each verdict of [`inspect`] on a scratch directory: absent, ours,
    /// empty, and every refusal of what courier-run did not write.
    #[test]
    fn inspect_verdicts() {
        let root = std::env::temp_dir().join(format!("courier-run-inspect-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let env = root.join("env");
        let verdict = || inspect(&env, &[]).map(|(t, n, _)| (t, n.len()));
        let refused = || format!("{:#}", verdict().unwrap_err());
        assert_eq!(verdict().unwrap(), (Target::Absent, 0));
        fs::create_dir(&env).unwrap();
        assert_eq!(verdict().unwrap(), (Target::Empty, 0));
        fs::write(env.join("PORT"), "143\n").unwrap();
        assert!(
            refused().contains("but no .courier-run marker"),
            "{}",
            refused()
        );
        fs::write(env.join(MARKER), "").unwrap();
        assert_eq!(verdict().unwrap(), (Target::Ours, 1));
        fs::create_dir(env.join("SUB")).unwrap();
        assert!(
            refused().contains("holds SUB which is not a regular file"),
            "{}",
            refused()
        );
        fs::remove_dir(env.join("SUB")).unwrap();
        fs::write(env.join(".hidden"), "").unwrap();
        assert!(
            refused().contains("whose name is not a variable name"),
            "{}",
            refused()
        );
        fs::remove_dir_all(&env).unwrap();
        std::os::unix::fs::symlink(&root, &env).unwrap();
        assert!(refused().contains("is a symbolic link"), "{}", refused());
        fs::remove_file(&env).unwrap();
        fs::write(&env, "").unwrap();
        assert!(
            refused().contains("exists and is not a directory"),
            "{}",
            refused()
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn last_components() {
        for ok in ["env", "./env", "/a/env/", "env//", "e"] {
            assert!(check_component(Path::new(ok)).is_ok(), "{ok}");
        }
        let longest = "e".repeat(NAME_MAX - OVERHEAD);
        assert!(check_component(Path::new(&longest)).is_ok());
        for bad in ["", "/", ".", "..", "env/.", "env/..", "env/./", "//"] {
            assert!(check_component(Path::new(bad)).is_err(), "{bad:?}");
        }
        assert!(check_component(Path::new(&format!("{longest}e"))).is_err());
        assert!(check_name_len(&"N".repeat(NAME_MAX)).is_ok());
        assert!(check_name_len(&"é".repeat(200)).is_err());
    }
}
