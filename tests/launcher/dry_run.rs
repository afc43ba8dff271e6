//! `--dry-run` changes nothing: not the tree, not an outdated envdir.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cases::{CASES, setup};
use crate::harness::{BIN, Pre, Scratch, courier_run, dry_json, start_env, with};

/// Every name under `dir`, recursively, with inode, mtime, mode and size.
fn tree(dir: &Path) -> Vec<(PathBuf, u64, i64, i64, u32, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let m = fs::symlink_metadata(e.path()).unwrap();
            out.push((
                e.path(),
                m.ino(),
                m.mtime(),
                m.mtime_nsec(),
                m.mode(),
                m.len(),
            ));
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn dry_run_changes_nothing() {
    let s = Scratch::new("dryrun");
    let args = setup(&s, &CASES[0]);
    let env = start_env(&s);
    let pre = Pre::default();
    let before = tree(&s.root);
    for extra in [
        &["--dry-run"][..],
        &["--dry-run", "--explain"],
        &["--dry-run", "--format", "json"],
        &["--dry-run", "--format", "json", "--explain"],
        &["--dry-run", "--format", "sh"],
        &["--dry-run", "--format", "text", "--explain"],
    ] {
        let r = courier_run(&s, &with(&args, extra), &env, &pre);
        assert_eq!(r.code, 0, "{extra:?}: {}", r.stderr);
        assert_eq!(tree(&s.root), before, "{extra:?} changed the filesystem");
        assert!(
            !s.svc().join("env").exists(),
            "{extra:?} created the envdir"
        );
        assert!(s.take_record().is_none(), "{extra:?} exec'd the server");
    }

    // With an existing, different envdir: still untouched.
    let out = Command::new(BIN)
        .current_dir(s.svc())
        .args(["conf2env", "./env"])
        .arg(s.write("etc/old.conf", "OLD=1\n"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let before = tree(&s.root);
    let plan = dry_json(&s, &args, &env, &pre);
    assert_eq!(plan["envdir_unchanged"], false);
    assert_eq!(
        tree(&s.root),
        before,
        "--dry-run rewrote an outdated envdir"
    );
}
