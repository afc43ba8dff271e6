//! `--dry-run --format sh` prints a script whose words starting with `-`
//! are never read as options: an envdir named `--help` (conf2env once
//! printed its help for it, exited 0 and the script went on), a front end
//! named `-srv` after softlimit's options or after env. dash runs the
//! script with the real daemontools programs; what ran proves each word
//! was taken as a path.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{BIN, TempDir, have, have_dash, have_envdir, run_cmd, which};

/// The printed script of `courier-run ./run ARGS` in `t`, run by dash there
/// with `path` as PATH; returns the script and what dash printed.
fn script_runs(t: &TempDir, path: &str, args: &[&str]) -> (String, i32, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .env("PATH", path)
        .arg("./run")
        .args(["--dry-run", "--format", "sh"])
        .args(args);
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0, "dry run: {}", r.stderr_str());
    let script = r.stdout_str();
    let file = t.write("script.sh", &script);
    let mut sh = Command::new(which("dash").unwrap());
    sh.current_dir(t.path()).env("PATH", path).arg(file);
    let ran = run_cmd(sh);
    (
        script,
        ran.exit(),
        format!("{}{}", ran.stdout_str(), ran.stderr_str()),
    )
}

#[test]
fn words_starting_with_a_dash_are_not_options() {
    if !have_dash()
        || !have_envdir()
        || !have("daemontools' softlimit", which("softlimit").is_some())
    {
        return;
    }
    let t = TempDir::new("sh-dash");
    // The front end, found in PATH under a name that looks like an option:
    // it records its arguments.
    let srv = t.write("-srv", "#!/bin/sh\nprintf '%s\\n' \"$*\" > ran\n");
    std::fs::set_permissions(&srv, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!("{}:/usr/bin:/bin", t.path().display());
    t.write("imapd", "PORT=1143\nMAILDIRPATH=Mail\n");

    // 1. envdir=--help, softlimit's options, then -srv.
    t.write(
        "run",
        "account=\nrules=\nsoftlimit=\"-d 100000000\"\nserver=-srv\nconfig=./imapd\nenvdir=--help\n",
    );
    let (script, code, out) = script_runs(&t, &path, &[]);
    let ctx = format!("script:\n{script}\ndash said:\n{out}");
    assert!(!out.contains("Usage"), "a path was read as --help: {ctx}");
    assert_eq!(code, 0, "{ctx}");
    assert_eq!(
        std::fs::read_to_string(t.join("--help/PORT"))
            .ok()
            .as_deref(),
        Some("1143\n"),
        "conf2env did not write the envdir --help: {ctx}"
    );
    let ran = std::fs::read_to_string(t.join("ran")).unwrap_or_default();
    assert!(
        ran.starts_with("-c 40 0 1143 "),
        "-srv did not run: {ran:?}\n{ctx}"
    );

    // 2. No softlimit, PATH set by the config: envdir runs env, which
    //    looks -srv up; env must not read it as an option.
    let _ = std::fs::remove_file(t.join("ran"));
    t.write("imapd2", format!("PORT=1144\nPATH={path}\n"));
    t.write(
        "run",
        "account=\nrules=\nsoftlimit=\nserver=-srv\nconfig=./imapd2\nenvdir=./e\n",
    );
    let (script, code, out) = script_runs(&t, &path, &[]);
    let ctx = format!("script:\n{script}\ndash said:\n{out}");
    assert_eq!(code, 0, "{ctx}");
    let ran = std::fs::read_to_string(t.join("ran")).unwrap_or_default();
    assert!(ran.contains(" 1144 "), "-srv did not run: {ran:?}\n{ctx}");
}
