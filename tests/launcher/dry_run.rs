//! `--dry-run` changes nothing: not the tree, not an outdated envdir.

use crate::cases::{CASES, setup};
use crate::common::tree;
use crate::harness::{Pre, Scratch, courier_run, dry_json, start_env, with, write_envdir};

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
        assert_eq!(r.exit(), 0, "{extra:?}: {}", r.stderr_str());
        assert_eq!(tree(&s.root), before, "{extra:?} changed the filesystem");
        assert!(
            !s.svc().join("env").exists(),
            "{extra:?} created the envdir"
        );
        assert!(s.take_record().is_none(), "{extra:?} exec'd the server");
    }

    // With an existing, different envdir: still untouched.
    write_envdir(&s, "./env", &s.write("etc/old.conf", "OLD=1\n"));
    let before = tree(&s.root);
    let plan = dry_json(&s, &args, &env, &pre);
    assert_eq!(plan["envdir_unchanged"], false);
    assert_eq!(
        tree(&s.root),
        before,
        "--dry-run rewrote an outdated envdir"
    );
}
