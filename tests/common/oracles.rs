//! The config reader's oracles: dash (run sandboxed) and daemontools'
//! envdir, and the program under test on the same input (the library's
//! `Scope` and the binary's `conf2env`). Every comparison is on
//! environments as byte maps (`env -0` output), so a difference in one
//! byte of one value fails.

use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use courier_run::config::Scope;

use super::{BIN, ENVDIR, Ran, TempDir, Vars, parse_env0, run, show, try_run, which};

fn dash_path() -> PathBuf {
    which("dash").expect("dash on PATH")
}

pub(crate) fn env_path() -> PathBuf {
    which("env").expect("env on PATH")
}

/// `cmd` with exactly `env` as its environment (no duplicates: std's
/// Command keeps one value per name; see [`super::exec_with_envp`] for a
/// hand-built environ block).
pub fn with_env(cmd: &mut Command, env: &[(Vec<u8>, Vec<u8>)]) {
    cmd.env_clear();
    for (k, v) in env {
        cmd.env(OsString::from_vec(k.clone()), OsString::from_vec(v.clone()));
    }
}

/// The oracle: the environment `env -i ENV dash -c 'set -a; . F1; . F2;
/// exec env -0'` ends with, without PWD (dash adds it). Err when dash fails,
/// prints anything else, or runs too long.
///
/// The files may be hostile (the fuzz test mutates them into commands):
/// dash runs as nobody when we are root, in an empty directory it cannot
/// write, with stdin from /dev/null, in its own process group, killed after
/// a timeout. Callers that fuzz also pass PATH=/nonexistent.
pub fn dash_vars(files: &[Vec<u8>], env: &[(Vec<u8>, Vec<u8>)]) -> Result<Vars, String> {
    let t = TempDir::new("dash");
    let paths = t.write_files(files);
    let cwd = t.join("cwd");
    fs::create_dir(&cwd).unwrap();
    fs::set_permissions(&cwd, fs::Permissions::from_mode(0o555)).unwrap();
    let mut script = String::from("set -a;");
    for p in &paths {
        script.push_str(&format!(" . '{}';", p.display()));
    }
    script.push_str(&format!(" exec '{}' -0", env_path().display()));
    let mut cmd = Command::new(dash_path());
    cmd.arg("-c").arg(&script).current_dir(&cwd);
    with_env(&mut cmd, env);
    if nix::unistd::geteuid().is_root() {
        cmd.uid(65534).gid(65534);
    }
    // A mutated file may loop forever: a timeout is an answer here, not a
    // failure of the harness.
    let r = try_run(cmd, Stdio::null(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("spawn dash: {e}"));
    if r.timed_out {
        return Err("dash timed out".into());
    }
    if r.code != Some(0) || !r.stderr.is_empty() {
        return Err(format!(
            "dash exit {:?}, stderr: {}",
            r.code,
            show(&r.stderr)
        ));
    }
    let mut vars = parse_env0(&r.stdout).map_err(|e| format!("dash: {e}"))?;
    vars.remove(&b"PWD"[..]);
    Ok(vars)
}

/// What we make of the same files: the inherited environment overlaid with
/// the final value of every assigned name (what `set -a` exports), without
/// PWD. Err holds our error message.
pub fn our_vars(files: &[Vec<u8>], env: &[(Vec<u8>, Vec<u8>)]) -> Result<Vars, String> {
    let scope = our_scope(files, env)?;
    let mut vars: Vars = env.iter().cloned().collect();
    for a in scope.vars() {
        vars.insert(a.name.as_bytes().to_vec(), a.value.clone());
    }
    vars.remove(&b"PWD"[..]);
    Ok(vars)
}

pub fn our_scope(files: &[Vec<u8>], env: &[(Vec<u8>, Vec<u8>)]) -> Result<Scope, String> {
    let inherited = env
        .iter()
        .map(|(k, v)| (String::from_utf8(k.clone()).unwrap(), v.clone()));
    let mut scope = Scope::new(inherited);
    for (i, src) in files.iter().enumerate() {
        scope
            .read(&format!("f{}", i + 1), src)
            .map_err(|e| format!("{e:#}"))?;
    }
    Ok(scope)
}

/// `courier-run conf2env DIR FILES...` with exactly `env` as environment,
/// run in `cwd`.
pub fn conf2env<P: AsRef<Path>>(
    dir: &Path,
    files: &[P],
    env: &[(Vec<u8>, Vec<u8>)],
    cwd: &Path,
) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.arg("conf2env")
        .arg(dir)
        .args(files.iter().map(|f| f.as_ref()))
        .current_dir(cwd);
    with_env(&mut cmd, env);
    run(cmd, cwd, Duration::from_secs(30))
}

/// `env -i ENV /usr/bin/envdir DIR env -0`, without PWD.
pub fn envdir_vars(dir: &Path, env: &[(Vec<u8>, Vec<u8>)], scratch: &Path) -> Result<Vars, String> {
    let mut cmd = Command::new(ENVDIR);
    cmd.arg(dir).arg(env_path()).arg("-0");
    with_env(&mut cmd, env);
    let r = run(cmd, scratch, Duration::from_secs(30));
    if r.code != Some(0) || !r.stderr.is_empty() {
        return Err(format!(
            "envdir exit {:?}, stderr: {}",
            r.code,
            show(&r.stderr)
        ));
    }
    let mut vars = parse_env0(&r.stdout)?;
    vars.remove(&b"PWD"[..]);
    Ok(vars)
}
