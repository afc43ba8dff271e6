//! Shared by the integration tests: the oracle (dash, run sandboxed), the
//! program under test (library and binary), the case corpus, and a small
//! deterministic random generator of valid config files.
//!
//! Every comparison is on environments as byte maps (`env -0` output), so a
//! difference in one byte of one value fails.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use courier_run::config::Scope;

/// An environment: name -> value, bytes.
pub type Vars = BTreeMap<Vec<u8>, Vec<u8>>;

/// An inherited environment as given to a child: (name, value) pairs.
pub type Env = Vec<(Vec<u8>, Vec<u8>)>;

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_courier-run");

/// daemontools' envdir, by its absolute path (the Debian package's).
pub const ENVDIR: &str = "/usr/bin/envdir";

// ---------------------------------------------------------------------------
// Tools: present, or skipped with a reason (never skipped in CI).

/// Where `prog` is on PATH, if anywhere.
pub fn which(prog: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(prog))
        .find(|p| fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
}

/// True when `what` is available; otherwise print why the test is skipped
/// and return false. Under CI=true a missing tool is a failure: the suite
/// must not go green by testing nothing.
pub fn have(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI (CI=true) but is not installed");
    }
    eprintln!("SKIPPED: {what} is not installed (install it to run this test)");
    false
}

pub fn have_dash() -> bool {
    have(
        "dash (the oracle for the config reader)",
        which("dash").is_some(),
    )
}

pub fn have_envdir() -> bool {
    have(
        "daemontools' /usr/bin/envdir",
        Path::new(ENVDIR).is_file() && which("env").is_some(),
    )
}

fn dash_path() -> PathBuf {
    which("dash").expect("dash on PATH")
}

fn env_path() -> PathBuf {
    which("env").expect("env on PATH")
}

// ---------------------------------------------------------------------------
// Temporary directories.

pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "courier-run-test-{tag}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: impl AsRef<Path>) -> PathBuf {
        self.0.join(p)
    }

    /// Write `files` as f1, f2, ... (mode 0644); returns their paths.
    pub fn write_files(&self, files: &[Vec<u8>]) -> Vec<PathBuf> {
        files
            .iter()
            .enumerate()
            .map(|(i, src)| {
                let p = self.join(format!("f{}", i + 1));
                fs::write(&p, src).unwrap();
                fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
                p
            })
            .collect()
    }

    /// Names in the directory, sorted (to check for leftovers).
    pub fn names(&self) -> Vec<String> {
        list(&self.0)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Everything about a directory that a write would change: the directory's
/// inode, mode and mtime (ns), and each file's name, inode, mode, mtime and
/// content.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    pub ino: u64,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub files: Vec<FileSnapshot>,
}

#[derive(Debug, PartialEq)]
pub struct FileSnapshot {
    pub name: String,
    pub ino: u64,
    pub mode: u32,
    pub mtime: (i64, i64),
    pub data: Vec<u8>,
}

pub fn snapshot(dir: &Path) -> Snapshot {
    let m = fs::symlink_metadata(dir).unwrap();
    let files = list(dir)
        .into_iter()
        .map(|name| {
            let p = dir.join(&name);
            let f = fs::symlink_metadata(&p).unwrap();
            FileSnapshot {
                name,
                ino: f.ino(),
                mode: f.mode() & 0o7777,
                mtime: (f.mtime(), f.mtime_nsec()),
                data: fs::read(&p).unwrap(),
            }
        })
        .collect();
    Snapshot {
        ino: m.ino(),
        mode: m.mode() & 0o7777,
        mtime: (m.mtime(), m.mtime_nsec()),
        files,
    }
}

// ---------------------------------------------------------------------------
// Running children.

pub struct Ran {
    /// Exit code; None when killed (timeout or signal).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Ran {
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Run `cmd` with stdin from /dev/null, stdout and stderr to files (so a
/// background grandchild holding them cannot block us), in its own process
/// group, killed with the whole group after `timeout` and always after exit.
pub fn run(cmd: Command, scratch: &Path, timeout: Duration) -> Ran {
    run_with_stdin(cmd, Stdio::null(), scratch, timeout)
}

/// [`run`] with the given standard input.
pub fn run_with_stdin(mut cmd: Command, stdin: Stdio, scratch: &Path, timeout: Duration) -> Ran {
    let out_path = scratch.join(".stdout");
    let err_path = scratch.join(".stderr");
    let out = fs::File::create(&out_path).unwrap();
    let err = fs::File::create(&err_path).unwrap();
    cmd.stdin(stdin).stdout(out).stderr(err).process_group(0);
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let start = Instant::now();
    let mut nap = Duration::from_micros(100);
    let (code, timed_out) = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break (st.code(), false);
        }
        if start.elapsed() > timeout {
            let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
            let _ = child.wait();
            break (None, true);
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    };
    // Whatever the command left running in the background goes too.
    let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
    let r = Ran {
        code,
        timed_out,
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
    };
    let _ = fs::remove_file(out_path);
    let _ = fs::remove_file(err_path);
    r
}

/// Parse `env -0` output.
pub fn parse_env0(out: &[u8]) -> Result<Vars, String> {
    let mut vars = Vars::new();
    if out.is_empty() {
        return Ok(vars);
    }
    let Some(body) = out.strip_suffix(b"\0") else {
        return Err(format!("env -0 output does not end in NUL: {}", show(out)));
    };
    for entry in body.split(|&c| c == 0) {
        let Some(eq) = entry.iter().position(|&c| c == b'=') else {
            return Err(format!("env -0 entry without '=': {}", show(entry)));
        };
        vars.insert(entry[..eq].to_vec(), entry[eq + 1..].to_vec());
    }
    Ok(vars)
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
    cmd.arg("-c").arg(&script).current_dir(&cwd).env_clear();
    for (k, v) in env {
        cmd.env(OsString::from_vec(k.clone()), OsString::from_vec(v.clone()));
    }
    if nix::unistd::geteuid().is_root() {
        cmd.uid(65534).gid(65534);
    }
    let r = run(cmd, t.path(), Duration::from_secs(10));
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
        .current_dir(cwd)
        .env_clear();
    for (k, v) in env {
        cmd.env(OsString::from_vec(k.clone()), OsString::from_vec(v.clone()));
    }
    run(cmd, cwd, Duration::from_secs(30))
}

/// `env -i ENV /usr/bin/envdir DIR env -0`, without PWD.
pub fn envdir_vars(dir: &Path, env: &[(Vec<u8>, Vec<u8>)], scratch: &Path) -> Result<Vars, String> {
    let mut cmd = Command::new(ENVDIR);
    cmd.arg(dir).arg(env_path()).arg("-0").env_clear();
    for (k, v) in env {
        cmd.env(OsString::from_vec(k.clone()), OsString::from_vec(v.clone()));
    }
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

// ---------------------------------------------------------------------------
// Showing bytes in failure messages.

/// Bytes as a readable, unambiguous string: printable ASCII as is, the rest
/// escaped.
pub fn show(b: &[u8]) -> String {
    let mut s = String::new();
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\r' => s.push_str("\\r"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

pub fn show_vars(v: &Vars) -> String {
    v.iter()
        .map(|(k, v)| format!("  {}={}\n", show(k), show(v)))
        .collect()
}

/// The lines that differ between two environments, for a failure message.
pub fn diff_vars(ours: &Vars, dash: &Vars) -> String {
    let mut s = String::new();
    let names: std::collections::BTreeSet<&Vec<u8>> = ours.keys().chain(dash.keys()).collect();
    for k in names {
        match (ours.get(k), dash.get(k)) {
            (Some(a), Some(b)) if a == b => {}
            (a, b) => s.push_str(&format!(
                "  {}: ours {:?}, dash {:?}\n",
                show(k),
                a.map(|v| show(v)),
                b.map(|v| show(v))
            )),
        }
    }
    s
}

pub fn show_files(files: &[Vec<u8>]) -> String {
    files
        .iter()
        .enumerate()
        .map(|(i, f)| format!("  f{}: \"{}\"\n", i + 1, show(f)))
        .collect()
}

pub fn show_env(env: &[(Vec<u8>, Vec<u8>)]) -> String {
    env.iter()
        .map(|(k, v)| format!("{}={} ", show(k), show(v)))
        .collect()
}

// ---------------------------------------------------------------------------
// The corpus: tricky inputs dash accepts, one line each.

pub struct Case {
    pub name: &'static str,
    pub files: Vec<Vec<u8>>,
    pub env: Env,
}

fn c(name: &'static str, f1: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec()],
        env: vec![],
    }
}

fn c2(name: &'static str, f1: &[u8], f2: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec(), f2.to_vec()],
        env: vec![],
    }
}

fn ce(name: &'static str, env: &[(&str, &[u8])], f1: &[u8]) -> Case {
    Case {
        name,
        files: vec![f1.to_vec()],
        env: env
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect(),
    }
}

/// Inputs that dash accepts and we must read exactly as dash does.
#[rustfmt::skip]
pub fn corpus() -> Vec<Case> {
    vec![
        c("plain", b"A=1\n"),
        c("two_on_a_line", b"A=1 B=2\n"),
        c("left_to_right", b"A=1 B=$A C=${A}x\n"),
        c("later_wins", b"A=1\nA=2\nA=$A$A\n"),
        c("empty_values", b"A=\nB=''\nC=\"\"\nD=${X-}\n"),
        c("equals_in_value", b"A=b=c==d E==\n"),
        c("dquote_blanks", b"A=\"x  y\tz\"\n"),
        c("squote_specials", b"A='$X `ls` \\ \" ; & | < > ( ) # ~ * $(x) ${y}'\n"),
        c("adjacent_quotes", b"A='it'\"'\"'s'\nB=a\"b\"'c'd\n"),
        c("dquote_escapes", b"A=\"\\$X \\` \\\" \\\\ \\n \\a \\' \\}\"\n"),
        c("unquoted_escapes", b"A=\\a\\$\\ \\;\\&\\|\\<\\>\\(\\)\\'\\\"\\#\\~\\\\\\`\\{\\}\n"),
        c("escaped_blank", b"A=a\\ b\\\tc\n"),
        c("escaped_high_byte", b"A=\\\xc3\\\xa9\\\x81\n"),
        c("continuation_in_value", b"A=ab\\\ncd\n"),
        c("continuation_in_name", b"AB\\\nC=1\n"),
        c("continuation_before_equals", b"A\\\n=1\n"),
        c("continuation_after_equals", b"A=\\\n1\n"),
        c("continuation_in_ref_name", b"NAME=v\nA=$NA\\\nME\n"),
        c("continuation_in_braced_ref", b"NAME=v\nA=${NA\\\nME} B=${NAME\\\n:\\\n-x}\n"),
        c("continuation_after_dollar", b"NAME=v\nA=$\\\n{NAME} B=$\\\nNAME\n"),
        c("continuation_in_dquote", b"A=\"a\\\nb\"\n"),
        c("continuation_in_squote_is_literal", b"A='a\\\nb'\n"),
        c("dquote_escaped_backslash_then_newline", b"A=\"a\\\\\nb\"\n"),
        c("unquoted_escaped_backslash_then_newline", b"A=a\\\\\nB=2\n"),
        c("continuation_between_words", b"A=1 \\\nB=2\n"),
        c("continuation_in_export", b"exp\\\nort A=1\n"),
        c("continuation_then_comment", b"A=1 \\\n# c\nB=2\n"),
        c("continuation_at_eof", b"A=1\\\n"),
        c("double_continuation", b"A=a\\\n\\\nb\n"),
        c("continuation_after_squote", b"A='x'\\\ny\n"),
        c("continuation_in_op_word", b"A=${X-a\\\nb}\n"),
        c("multiline_squote", b"A='line1\nline2\n'\n"),
        c("multiline_dquote_with_ref", b"X=x\nA=\"1\n$X\n3\"\n"),
        c("default_unset", b"A=${X-w} B=${X:-w}\n"),
        c("default_empty", b"X=\nA=${X-w} B=${X:-w}\n"),
        c("default_set", b"X=v\nA=${X-w} B=${X:-w}\n"),
        c("alt_three_states", b"A=${X+w} B=${X:+w}\nX=\nC=${X+w} D=${X:+w}\nX=v\nE=${X+w} F=${X:+w}\n"),
        c("nested_default", b"Y=y\nA=${X-${Y}z} B=${X:-${Z:-${Y}}}\n"),
        c("nested_alt", b"X=1 Y=2\nA=${X+a${Y+b$Y}c}\n"),
        c("op_word_chars", b"A=${X-/a.b,c:d@e%f+g-h=i!j*k?l^m_n[o]p}\n"),
        c("op_word_blanks", b"A=${X-a b\tc}\n"),
        c("op_word_dollar_literal", b"A=${X-$/x}\n"),
        c("op_in_dquote", b"A=\"${X-a b}\" B=\"${X:+y}\" C=\"${X:-~}\"\n"),
        c("braced_then_name_chars", b"AB=1 A=x\nC=${A}B D=$AB E=$A-B\n"),
        c("ref_then_digit", b"A1=x A=y\nB=$A1 C=${A}1\n"),
        c("ref_then_high_byte", b"A=1\nB=$A\xc3\xa9\n"),
        c("dollar_literal", b"A=$ B=\"$\" C=a$ D=$/ E=$. F=\"$'\" G=$}\n"),
        c("hash_inside_word", b"A=a#b B=#c C=\"#\"\n"),
        c("comment_after", b"A=1 # B=2\nC=3\t#x\n"),
        c("comment_lines", b"# comment\n  # indented\n\t# tab\nA=1\n"),
        c("shebang", b"#!/bin/sh\nA=1\n"),
        c("backslash_in_comment", b"# comment \\\nA=1\n"),
        c("blank_lines", b"\n\n  \t\nA=1\n\n"),
        c("no_final_newline", b"A=1"),
        c("leading_trailing_blanks", b"   A=1\t B=2   \n"),
        c("tab_separated", b"A=1\tB=2\n"),
        c("export_forms", b"export A=1\nexport A\nexport B=2 C=3\nexport D\n"),
        c("export_then_assign", b"export D\nD=4\n"),
        c("export_expands_before_assigning", b"A=0\nexport A=1 B=$A\n"),
        c("export_no_split_no_glob", b"X='a  b'\nexport A=$X B=* C=$X\n"),
        c("export_comment", b"export A=1 # c\n"),
        c("export_quoted_values", b"export A=\"x y\" B='z'\n"),
        c("high_bytes", b"A=\xc3\xa9\xff\x80 B='\xfe\xc3' C=\"\xe2\x82\xac\"\n"),
        c("dash_control_bytes_unquoted", b"A=\x81\x82\x83\x84\x85\x86\x87\x88\x89\n"),
        c("dash_control_bytes_quoted", b"A='\x81\x82\x83\x84\x85\x86\x87\x88' B=\"\x81\x82\x83\x84\x85\x86\x87\x88\"\n"),
        c("high_bytes_in_op_word", b"A=${X-\x81\xc3\xa9}\n"),
        c("crlf", b"A=1\r\nB=\"x\"\r\n"),
        c("crlf_comment", b"# c\r\nA=1\r\n"),
        c("carriage_return_inside", b"A='a\rb' B=a\\\rb\n"),
        c("glob_chars", b"A=* B=? C=[a] D=/* E=[!x]\n"),
        c("braces", b"A={} B={a,b} C=} D={\n"),
        c("tilde_not_expanded", b"A=a~b B=\"~\" C='~' D=\\~ E=a/~ F=\"x:\"~\n"),
        c("tilde_after_escaped_colon", b"A=x\\:~\n"),
        c("operators_quoted", b"A=';' B=\";&|<>()\" C=\\;\\&\n"),
        c("keywords_as_names", b"if=1 then=2 done=3 export_=4\n"),
        c("underscore_names", b"_=1 _A_=2 a1=3\n"),
        c("value_newline_at_end", b"A='x\n'\n"),
        c("value_leading_blank", b"A=' x'\n"),
        c("value_trailing_blank", b"A='x ' B=\"y\t\"\n"),
        c("dquote_dollar_end", b"A=\"a$\" B=\"$\"\n"),
        c("only_comment", b"# nothing\n"),
        c("empty_file", b""),
        c("many_on_a_line", b"A=1 B=2 C=3 D=4 E=5 F=$A$B$C$D$E\n"),
        c("assign_ifs_then_read", b"IFS=x A=$IFS\n"),
        c("assign_path_then_read", b"PATH=/x A=$PATH\n"),
        c("assign_ps_vars", b"PS1=a PS2=b PS4=c A=$PS1$PS2$PS4\n"),
        c("unset_refs_empty", b"A=$NOPE B=x${NOPE}y C=\"$NOPE\"\n"),
        c("long_line_of_refs", b"A=a\nB=$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A$A\nC=$B$B$B$B$B$B$B$B\n"),
        c2("two_files_override", b"A=1 B=2\n", b"A=3 C=$B$A\n"),
        c2("two_files_refs", b"A=1\n", b"B=$A\nA=${A}2\n"),
        c2("two_files_quote_per_file", b"A='1'\n", b"B=\"$A\"\n"),
        c2("two_files_continuation_at_end", b"A=1\\\n", b"B=2\n"),
        ce("inherited_ref", &[("X", b"inh")], b"A=$X B=${X:-d} C=${X+a}\n"),
        ce("inherited_override", &[("X", b"inh")], b"A=$X X=new B=$X\n"),
        ce("inherited_untouched", &[("Y", b"keep")], b"A=1\n"),
        ce("inherited_empty", &[("X", b"")], b"A=${X-d} B=${X:-d} C=${X+a} D=${X:+a}\n"),
        ce("inherited_special_bytes", &[("X", b"a b\n\xff$Y")], b"A=$X B=\"$X\"\n"),
        ce("inherited_path", &[("PATH", b"/nonexistent")], b"A=$PATH:/x\n"),
    ]
}

// ---------------------------------------------------------------------------
// A small seeded PRNG (xorshift64*): deterministic, no dependency.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `pct`%.
    pub fn pct(&mut self, pct: usize) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// How many times the usual number of random cases to run:
/// $COURIER_TEST_SCALE when set (to explore), else 1.
pub fn scale() -> usize {
    std::env::var("COURIER_TEST_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

/// The seed: $COURIER_TEST_SEED when set (to explore), else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("COURIER_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------------------
// The generator of valid files.

/// Names dash gives a value or meaning of its own, and PWD (dash sets it):
/// the generator never uses them.
const SPECIAL_NAMES: &[&str] = &[
    "IFS", "LINENO", "OPTIND", "PPID", "PS1", "PS2", "PS4", "PWD", "PATH", "OPTARG",
];

const NAME_FIRST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_";
const NAME_REST: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_0123456789";
/// Unquoted value bytes that stand for themselves in an assignment
/// (no `~`: it expands at the start and after `:`; the corpus covers it).
const UNQUOTED: &[u8] = b"abcXYZ019_/.,:@%+-=!*?[]^{}#";
/// Bytes allowed in a `${NAME-word}` word by the reader.
const OP_WORD: &[u8] = b"abXY09 \t/.,:@%+-=!*?^_[]";
/// Bytes of a `$` that stays literal: followed by one of these.
const AFTER_LITERAL_DOLLAR: &[u8] = b"/.,:%+=";

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// A generated piece of a file: a run of bytes that must stay together (a
/// backslash and what it escapes), and whether a backslash-newline may be
/// put before it.
struct Atom {
    bytes: Vec<u8>,
    bnl_before: bool,
}

pub struct Gen<'r> {
    rng: &'r mut Rng,
    /// Names assigned so far (to refer to and to override).
    assigned: Vec<String>,
    inherited: Vec<String>,
    atoms: Vec<Atom>,
    /// (index of the `$` atom, index of the last name atom) of unbraced
    /// references, to brace them when a name byte follows.
    unbraced: Vec<(usize, usize)>,
}

impl<'r> Gen<'r> {
    pub fn new(rng: &'r mut Rng) -> Gen<'r> {
        Gen {
            rng,
            assigned: Vec::new(),
            inherited: Vec::new(),
            atoms: Vec::new(),
            unbraced: Vec::new(),
        }
    }

    /// One case: 1 or 2 files and 0 to 2 inherited variables.
    pub fn case(&mut self) -> (Vec<Vec<u8>>, Env) {
        let mut env = Vec::new();
        for _ in 0..self.rng.below(3) {
            let name = self.fresh_name();
            if env
                .iter()
                .any(|(k, _): &(Vec<u8>, Vec<u8>)| k == name.as_bytes())
            {
                continue;
            }
            let mut value = Vec::new();
            for _ in 0..self.rng.below(6) {
                value.push(self.any_byte_but(b"\0"));
            }
            self.inherited.push(name.clone());
            env.push((name.into_bytes(), value));
        }
        let nfiles = 1 + self.rng.below(2);
        let files = (0..nfiles).map(|_| self.file()).collect();
        (files, env)
    }

    fn file(&mut self) -> Vec<u8> {
        self.atoms.clear();
        self.unbraced.clear();
        for _ in 0..1 + self.rng.below(8) {
            match self.rng.below(10) {
                0 => self.lit(b"\n", true),
                1 => {
                    self.blanks(0);
                    self.comment();
                    self.lit(b"\n", false);
                }
                2 => self.export_line(),
                _ => self.assignment_line(),
            }
        }
        if self.rng.pct(10) {
            // No final newline.
            if let Some(a) = self.atoms.last() {
                if a.bytes == b"\n" {
                    self.atoms.pop();
                }
            }
        }
        self.render()
    }

    /// Brace unbraced references that a name byte follows, then join the
    /// atoms, putting a backslash-newline before some of them.
    fn render(&mut self) -> Vec<u8> {
        for &(dollar, last) in self.unbraced.iter().rev() {
            let next_is_name = self
                .atoms
                .get(last + 1)
                .and_then(|a| a.bytes.first())
                .is_some_and(|&c| is_name_byte(c));
            if next_is_name {
                self.atoms.insert(
                    last + 1,
                    Atom {
                        bytes: b"}".to_vec(),
                        bnl_before: true,
                    },
                );
                self.atoms[dollar].bytes.push(b'{');
            }
        }
        let mut out = Vec::new();
        let bnl_pct = if self.rng.pct(30) { 15 } else { 2 };
        for a in &self.atoms {
            if a.bnl_before && self.rng.pct(bnl_pct) {
                out.extend_from_slice(b"\\\n");
            }
            out.extend_from_slice(&a.bytes);
        }
        out
    }

    fn lit(&mut self, b: &[u8], bnl_before: bool) {
        self.atoms.push(Atom {
            bytes: b.to_vec(),
            bnl_before,
        });
    }

    fn blanks(&mut self, min: usize) {
        for _ in 0..min + self.rng.below(3) {
            let b = if self.rng.pct(70) { b" " } else { b"\t" };
            self.lit(b, true);
        }
    }

    fn comment(&mut self) {
        let mut c = b"#".to_vec();
        for _ in 0..self.rng.below(10) {
            c.push(self.any_byte_but(b"\0\n"));
        }
        // A comment is one atom: dash reads it raw, a backslash-newline
        // inside would end it.
        self.lit(&c, true);
    }

    fn any_byte_but(&mut self, not: &[u8]) -> u8 {
        loop {
            let c = if self.rng.pct(60) {
                0x20 + self.rng.below(0x5f) as u8
            } else {
                self.rng.below(256) as u8
            };
            if !not.contains(&c) {
                return c;
            }
        }
    }

    fn fresh_name(&mut self) -> String {
        loop {
            let max = if self.rng.pct(70) { 2 } else { 8 };
            let len = 1 + self.rng.below(max);
            let mut s = String::new();
            s.push(*self.rng.pick(NAME_FIRST) as char);
            for _ in 1..len {
                s.push(*self.rng.pick(NAME_REST) as char);
            }
            if !SPECIAL_NAMES.contains(&s.as_str()) && s != "export" {
                return s;
            }
        }
    }

    /// A name to assign: often one assigned before (an override).
    fn target_name(&mut self) -> String {
        if !self.assigned.is_empty() && self.rng.pct(30) {
            return self.rng.pick(&self.assigned).clone();
        }
        self.fresh_name()
    }

    /// A name to refer to: assigned, inherited, or (rarely) unset.
    fn ref_name(&mut self) -> String {
        let r = self.rng.below(10);
        if r < 6 && !self.assigned.is_empty() {
            self.rng.pick(&self.assigned).clone()
        } else if r < 8 && !self.inherited.is_empty() {
            self.rng.pick(&self.inherited).clone()
        } else {
            self.fresh_name()
        }
    }

    fn name_atoms(&mut self, name: &str) {
        for c in name.bytes() {
            self.lit(&[c], true);
        }
    }

    fn assignment_line(&mut self) {
        self.blanks(0);
        let n = 1 + self.rng.below(3);
        // Assignments on one line are made left to right: register each
        // name after its value is generated.
        for i in 0..n {
            if i > 0 {
                self.blanks(1);
            }
            let name = self.target_name();
            self.name_atoms(&name);
            self.lit(b"=", true);
            self.value();
            self.assigned.push(name);
        }
        self.line_end(true);
    }

    fn export_line(&mut self) {
        self.blanks(0);
        self.name_atoms("export");
        let n = 1 + self.rng.below(3);
        // export expands all its arguments before assigning any.
        let mut names = Vec::new();
        let mut last_is_assignment = false;
        for _ in 0..n {
            self.blanks(1);
            let name = self.target_name();
            self.name_atoms(&name);
            last_is_assignment = self.rng.pct(80);
            if last_is_assignment {
                self.lit(b"=", true);
                self.value();
                names.push(name);
            }
        }
        self.assigned.extend(names);
        self.line_end(last_is_assignment);
    }

    /// End of a line: maybe a carriage return (only right after a value, so
    /// it joins the value as in sh), maybe trailing blanks and a comment.
    fn line_end(&mut self, after_value: bool) {
        if after_value && self.rng.pct(5) {
            self.lit(b"\r", true);
        } else if self.rng.pct(30) {
            self.blanks(1);
            if self.rng.pct(50) {
                self.comment();
            }
        }
        self.lit(b"\n", true);
    }

    fn value(&mut self) {
        for _ in 0..self.rng.below(5) {
            match self.rng.below(7) {
                0 => self.unquoted(),
                1 => self.escape(),
                2 => self.single_quoted(),
                3 => self.double_quoted(),
                4 | 5 => self.reference(0),
                _ => {
                    // A literal `$`.
                    let c = *self.rng.pick(AFTER_LITERAL_DOLLAR);
                    self.lit(&[b'$', c], true);
                }
            }
        }
    }

    fn unquoted(&mut self) {
        for _ in 0..1 + self.rng.below(4) {
            let c = if self.rng.pct(15) {
                0x80 + self.rng.below(0x80) as u8
            } else {
                *self.rng.pick(UNQUOTED)
            };
            self.lit(&[c], true);
        }
    }

    fn escape(&mut self) {
        let c = self.any_byte_but(b"\0\n");
        self.lit(&[b'\\', c], true);
    }

    fn single_quoted(&mut self) {
        self.lit(b"'", true);
        for _ in 0..self.rng.below(6) {
            let c = self.any_byte_but(b"\0'");
            self.lit(&[c], true);
        }
        self.lit(b"'", true);
    }

    fn double_quoted(&mut self) {
        self.lit(b"\"", true);
        for _ in 0..self.rng.below(6) {
            match self.rng.below(6) {
                0 => {
                    let c = *self.rng.pick(b"$`\"\\");
                    self.lit(&[b'\\', c], true);
                }
                1 => {
                    // A backslash that stays: before a byte it does not escape.
                    let c = self.any_byte_but(b"\0\n$`\"\\");
                    self.lit(&[b'\\', c], true);
                }
                2 => self.reference(0),
                _ => {
                    let c = self.any_byte_but(b"\0\"\\$`");
                    self.lit(&[c], true);
                }
            }
        }
        self.lit(b"\"", true);
    }

    /// `$NAME`, `${NAME}` or `${NAME op word}`.
    fn reference(&mut self, depth: usize) {
        let name = self.ref_name();
        let form = self.rng.below(if depth > 1 { 2 } else { 4 });
        let dollar = self.atoms.len();
        self.lit(b"$", true);
        if form == 0 {
            self.name_atoms(&name);
            self.unbraced.push((dollar, self.atoms.len() - 1));
            return;
        }
        self.lit(b"{", true);
        self.name_atoms(&name);
        if form >= 2 {
            let ops: [&[u8]; 4] = [b"-", b":-", b"+", b":+"];
            let op = *self.rng.pick(&ops);
            for &c in op {
                self.lit(&[c], true);
            }
            for _ in 0..self.rng.below(4) {
                if self.rng.pct(25) {
                    self.reference(depth + 1);
                } else if self.rng.pct(10) {
                    let c = *self.rng.pick(AFTER_LITERAL_DOLLAR);
                    self.lit(&[b'$', c], true);
                } else {
                    let c = if self.rng.pct(10) {
                        0x80 + self.rng.below(0x80) as u8
                    } else {
                        *self.rng.pick(OP_WORD)
                    };
                    self.lit(&[c], true);
                }
            }
        }
        self.lit(b"}", true);
    }
}
