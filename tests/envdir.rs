//! The envdir module: the writer replaces the directory as a whole or not
//! at all, writes nothing when nothing changed, and keeps the old envdir
//! on failure; the reader reads exactly what daemontools' envdir reads.

mod common;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;

use common::*;
use courier_run::envdir::{self, Modes, Outcome};

fn pairs<'a>(v: &'a [(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    v.to_vec()
}

/// The siblings a write makes: `.NAME.new.PID-N` (being built) and
/// `.NAME.old.PID-N` (the replaced generation, kept for readers).
fn temp_siblings(parent: &Path) -> Vec<String> {
    list(parent)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// Make the replaced generations beside `parent`'s envdirs look replaced
/// longer ago than the grace the cleanup gives readers.
fn age_generations(parent: &Path) {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    use nix::sys::time::TimeSpec;
    let then = TimeSpec::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            - envdir::GRACE.as_secs() as i64
            - 2,
        0,
    );
    for n in temp_siblings(parent) {
        if n.contains(".old.") {
            utimensat(
                None,
                &parent.join(n),
                &then,
                &then,
                UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
    }
}

/// The variables of an envdir: its names without the marker.
fn vars_in(dir: &Path) -> Vec<String> {
    let all = list(dir);
    assert!(
        all.iter().any(|n| n == envdir::MARKER),
        "no marker in {all:?}"
    );
    all.into_iter().filter(|n| !n.starts_with('.')).collect()
}

#[test]
fn changed_content_replaces_the_whole_directory() {
    let t = TempDir::new("envdir-replace");
    let dir = t.join("env");
    let first = pairs(&[("A", b"1"), ("B", b"two\nlines")]);
    assert_eq!(
        envdir::write(&dir, &first, Modes::PUBLIC).unwrap(),
        Outcome::Written
    );
    let before = snapshot(&dir);
    assert_eq!(vars_in(&dir), ["A", "B"]);
    assert_eq!(fs::read(dir.join("B")).unwrap(), b"two\0lines\n");

    let second = pairs(&[("B", b"2"), ("C", b"")]);
    assert!(!envdir::holds(&dir, &second, Modes::PUBLIC).unwrap());
    assert_eq!(
        envdir::write(&dir, &second, Modes::PUBLIC).unwrap(),
        Outcome::Written
    );
    let after = snapshot(&dir);
    // A new directory took the old one's place: A is gone, not deleted
    // from a directory a reader might be reading.
    assert_ne!(before.ino, after.ino, "the directory inode should change");
    assert_eq!(vars_in(&dir), ["B", "C"]);
    assert_eq!(fs::read(dir.join("B")).unwrap(), b"2\n");
    assert_eq!(
        fs::read(dir.join("C")).unwrap(),
        b"\n",
        "empty value: a lone newline"
    );
    // The old generation is kept whole (a reader may be in it), also by a
    // start at once after, until the grace is over; the first start after
    // that removes it and writes nothing else.
    let old = temp_siblings(t.path());
    assert_eq!(old.len(), 1, "{old:?}");
    assert!(old[0].starts_with(".env.old."), "{old:?}");
    assert_eq!(snapshot(&t.join(&old[0])).files, before.files);
    assert_eq!(
        envdir::write(&dir, &second, Modes::PUBLIC).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(temp_siblings(t.path()), old, "kept for readers");
    age_generations(t.path());
    assert_eq!(
        envdir::write(&dir, &second, Modes::PUBLIC).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(snapshot(&dir), after);
    assert_eq!(t.names(), ["env"], "no sibling left");
}

#[test]
fn identical_content_is_not_written() {
    let t = TempDir::new("envdir-nochurn");
    let dir = t.join("env");
    let vars = pairs(&[("A", b"1"), ("B", b""), ("C", b"x\ny\r")]);
    envdir::write(&dir, &vars, Modes::PUBLIC).unwrap();
    let before = snapshot(&dir);
    // A write would show in the nanosecond mtimes even on a coarse clock
    // after this.
    std::thread::sleep(std::time::Duration::from_millis(20));
    assert!(envdir::holds(&dir, &vars, Modes::PUBLIC).unwrap());
    assert_eq!(
        envdir::write(&dir, &vars, Modes::PUBLIC).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(snapshot(&dir), before);
    assert_eq!(t.names(), ["env"]);

    // Same names and values in another order: still the same envdir.
    let reordered = pairs(&[("C", b"x\ny\r"), ("A", b"1"), ("B", b"")]);
    assert_eq!(
        envdir::write(&dir, &reordered, Modes::PUBLIC).unwrap(),
        Outcome::Unchanged
    );
    assert_eq!(snapshot(&dir), before);

    // Anything else differs: a value, a missing or extra name, the modes,
    // a stray file.
    for other in [
        pairs(&[("A", b"1"), ("B", b""), ("C", b"x\ny")]),
        pairs(&[("A", b"1"), ("B", b"")]),
        pairs(&[("A", b"1"), ("B", b""), ("C", b"x\ny\r"), ("D", b"")]),
    ] {
        assert!(
            !envdir::holds(&dir, &other, Modes::PUBLIC).unwrap(),
            "{other:?}"
        );
    }
    assert!(!envdir::holds(&dir, &vars, Modes::PRIVATE).unwrap());
    fs::write(dir.join(".stray"), b"").unwrap();
    assert!(!envdir::holds(&dir, &vars, Modes::PUBLIC).unwrap());
}

#[test]
fn write_new_always_writes() {
    let t = TempDir::new("envdir-writenew");
    let dir = t.join("env");
    let vars = pairs(&[("A", b"1")]);
    envdir::write_new(&dir, &vars, Modes::PUBLIC).unwrap();
    let before = snapshot(&dir);
    envdir::write_new(&dir, &vars, Modes::PUBLIC).unwrap();
    assert_ne!(snapshot(&dir).ino, before.ino);
    assert_eq!(vars_in(&dir), ["A"]);
    assert_eq!(t.names().len(), 2, "env and the previous generation");
    envdir::write_new(&dir, &vars, Modes::PUBLIC).unwrap();
    assert_eq!(t.names().len(), 3, "both generations kept, for readers");
    age_generations(t.path());
    envdir::write_new(&dir, &vars, Modes::PUBLIC).unwrap();
    assert_eq!(t.names().len(), 2, "the ones before were removed");
}

#[test]
fn a_failed_write_keeps_the_old_envdir() {
    let t = TempDir::new("envdir-fail");
    let dir = t.join("env");
    envdir::write(&dir, &pairs(&[("A", b"old")]), Modes::PUBLIC).unwrap();
    let before = snapshot(&dir);

    // A name too long for the filesystem (NAME_MAX 255): refused before
    // anything is created.
    let long = "L".repeat(300);
    let bad = [("A", &b"new"[..]), (long.as_str(), &b"x"[..])];
    let err = envdir::write(&dir, &bad, Modes::PUBLIC).unwrap_err();
    assert!(format!("{err:#}").contains("at most 255"), "{err:#}");
    assert_eq!(snapshot(&dir), before, "the old envdir must be untouched");
    assert_eq!(t.names(), ["env"], "no .env.new.* left behind");

    // The parent does not exist: nothing is created anywhere.
    let nowhere = t.join("missing/env");
    assert!(envdir::write(&nowhere, &pairs(&[("A", b"1")]), Modes::PUBLIC).is_err());
    assert_eq!(t.names(), ["env"]);

    // The target is a file: refused, the file stays.
    let file = t.join("file");
    fs::write(&file, b"keep").unwrap();
    let err = envdir::write(&file, &pairs(&[("A", b"1")]), Modes::PUBLIC).unwrap_err();
    assert!(format!("{err:#}").contains("not a directory"), "{err:#}");
    assert_eq!(fs::read(&file).unwrap(), b"keep");
    assert_eq!(t.names(), ["env", "file"]);
    assert!(temp_siblings(t.path()).is_empty());
}

#[test]
fn modes() {
    let t = TempDir::new("envdir-modes");
    let dir = t.join("env");
    let vars = pairs(&[("A", b"1"), ("B", b"2")]);
    for (modes, d, f) in [
        (Modes::PUBLIC, 0o755, 0o644),
        (Modes::PRIVATE, 0o700, 0o600),
        (Modes::PUBLIC, 0o755, 0o644),
    ] {
        // A change of mode alone is a change: rewritten.
        assert_eq!(envdir::write(&dir, &vars, modes).unwrap(), Outcome::Written);
        let snap = snapshot(&dir);
        assert_eq!(snap.mode, d, "directory mode");
        for file in snap.files {
            assert_eq!(file.mode, f, "mode of {}", file.name);
        }
    }
}

#[test]
fn encode_carries_every_value_envdir_can() {
    for v in [
        &b""[..],
        b"x",
        b"a\nb",
        b"\n",
        b"a\r",
        b" lead",
        b"\xff\x80",
        b"a b",
    ] {
        assert_eq!(
            envdir::decode(&envdir::encode(v)).as_deref(),
            Some(v),
            "{}",
            show(v)
        );
    }
}

/// `envdir::read` against daemontools' envdir on the same directory: the
/// environment `env -i B=... envdir DIR env -0` prints is the starting
/// environment with read()'s changes applied.
#[test]
fn read_agrees_with_daemontools() {
    if !have_envdir() {
        return;
    }
    let t = TempDir::new("envdir-read");
    let dir = t.join("env");
    fs::create_dir(&dir).unwrap();
    let files: &[(&str, &[u8])] = &[
        ("A", b"x\n"),
        ("UNSET", b""),
        ("EMPTY", b"\n"),
        ("BLANKS", b"a \t \t\nsecond line"),
        ("NUL", b"a\0b\0\n"),
        ("NONL", b"no newline"),
        ("CR", b"x\r\n"),
        ("CRBLANK", b"x\r \n"),
        ("LEAD", b"  lead\n"),
        ("HIGH", b"\xff\x81\n"),
        ("ONLYBLANKS", b" \t\n"),
        (".hidden", b"skipped\n"),
    ];
    for (n, data) in files {
        fs::write(dir.join(n), data).unwrap();
    }
    symlink(dir.join("A"), dir.join("LINK")).unwrap();
    let start: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b"UNSET".to_vec(), b"was set".to_vec()),
        (b"KEEP".to_vec(), b"kept".to_vec()),
    ];

    let mut ours: Vars = start.iter().cloned().collect();
    for (name, value) in envdir::read(&dir).unwrap() {
        let name = name.into_encoded_bytes();
        match value {
            Some(v) => ours.insert(name, v),
            None => ours.remove(&name),
        };
    }
    let theirs = envdir_vars(&dir, &start, t.path()).unwrap();
    assert_eq!(ours, theirs, "\n{}", diff_vars(&ours, &theirs));

    // A subdirectory is fatal to both.
    fs::create_dir(dir.join("SUB")).unwrap();
    assert!(envdir::read(&dir).is_err());
    assert!(envdir_vars(&dir, &start, t.path()).is_err());
}

/// What the writer writes, daemontools' envdir reads back as the same
/// values, for every value the writer accepts.
#[test]
fn written_values_read_back_by_daemontools() {
    if !have_envdir() {
        return;
    }
    let t = TempDir::new("envdir-readback");
    let dir = t.join("env");
    let values: &[(&str, &[u8])] = &[
        ("A", b""),
        ("B", b"plain"),
        ("C", b"two\nlines\n"),
        ("D", b"\n"),
        ("E", b"  leading"),
        ("F", b"cr\r"),
        ("G", b"\xc3\xa9\xff\x81"),
        ("H", b"a=b"),
    ];
    envdir::write(&dir, values, Modes::PRIVATE).unwrap();
    let want: Vars = values
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
        .collect();
    let got = envdir_vars(&dir, &[], t.path()).unwrap();
    assert_eq!(got, want, "\n{}", diff_vars(&got, &want));
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
}
