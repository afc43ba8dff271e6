//! `courier-run conf2env ENVDIR CONFIG...`, the real binary:
//!
//! - `refused_constructs`: everything sh would execute or interpret beyond
//!   assignments exits 100 with `FILE:LINE:COL`, runs nothing, creates
//!   nothing.
//! - `round_trip`: for every accepted case, daemontools' `envdir DIR env`
//!   on the directory we wrote yields exactly what dash yields.
//! - values envdir cannot carry, atomic replacement, no churn, modes, stdin.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

fn fixture(name: &str) -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/debian12")
            .join(name),
    )
    .unwrap()
}

/// Constructs sh would run or interpret: (name, input, line, col of the
/// refusal). Where a command is involved it is `touch marker`, so that
/// running it would leave a trace.
#[rustfmt::skip]
const REFUSED: &[(&str, &[u8], u32, u32)] = &[
    ("command_substitution", b"A=$(touch marker)\n", 1, 3),
    ("command_substitution_in_dquote", b"A=\"$(touch marker)\"\n", 1, 4),
    ("backquotes", b"A=`touch marker`\n", 1, 3),
    ("backquotes_in_dquote", b"A=\"x`touch marker`\"\n", 1, 5),
    ("arithmetic", b"A=$((1+2))\n", 1, 3),
    ("semicolon", b"A=1; touch marker\n", 1, 4),
    ("background", b"A=1 & touch marker\n", 1, 5),
    ("pipe", b"A=1 | touch marker\n", 1, 5),
    ("and_list", b"A=1 && touch marker\n", 1, 5),
    ("or_list", b"A=1 || touch marker\n", 1, 5),
    ("redirect_in", b"A=1 < marker\n", 1, 5),
    ("redirect_out", b"A=1 > marker\n", 1, 5),
    ("redirect_out_glued", b"A=1>marker\n", 1, 4),
    ("redirect_append", b"A=1 >>marker\n", 1, 5),
    ("heredoc", b"A=1 <<EOF\nx\nEOF\n", 1, 5),
    ("if", b"if true; then touch marker; fi\n", 1, 1),
    ("for", b"for i in 1; do touch marker; done\n", 1, 1),
    ("case", b"case x in x) touch marker;; esac\n", 1, 1),
    ("while", b"while true; do touch marker; break; done\n", 1, 1),
    ("until", b"until touch marker; do :; done\n", 1, 1),
    ("function_definition", b"f() { touch marker; }\nf\n", 1, 2),
    ("brace_group", b"{ touch marker; }\n", 1, 1),
    ("subshell", b"(touch marker)\n", 1, 1),
    ("negation", b"! touch marker\n", 1, 1),
    ("bare_command", b"touch marker\n", 1, 1),
    ("command_after_assignment", b"A=1 touch marker\n", 1, 5),
    ("assignment_prefix_builtin", b"A=1 export B=2\n", 1, 5),
    ("builtin_eval", b"eval 'touch marker'\n", 1, 1),
    ("builtin_dot", b". ./marker\n", 1, 1),
    ("dot_bare_name", b". imapd.local\n", 1, 3),
    ("dot_extra_argument", b". ./a b\n", 1, 7),
    ("dot_no_file", b".\n", 1, 1),
    ("dot_option", b". -/x\n", 1, 3),
    ("dot_tilde", b". ~/x\n", 1, 3),
    ("dot_unquoted_glob", b". /etc/*\n", 1, 3),
    ("dot_device", b"A=1\n. /dev/zero\n", 2, 1),
    ("dot_directory", b". /\n", 1, 1),
    ("error_if_empty", b"X=\nA=${X:?}\n", 2, 3),
    ("builtin_readonly", b"readonly A=1\n", 1, 1),
    ("builtin_unset", b"A=1\nunset A\n", 2, 1),
    ("name_starts_with_digit", b"9A=1\n", 1, 1),
    ("name_with_dash", b"A-B=2\n", 1, 1),
    ("name_quoted", b"\"A\"=1\n", 1, 1),
    ("name_escaped", b"\\A=1\n", 1, 1),
    ("name_high_byte", b"\xc3\xa9=1\n", 1, 1),
    ("strip_prefix", b"A=${X#y}\n", 1, 3),
    ("strip_suffix", b"A=${X%y}\n", 1, 3),
    ("length", b"A=${#X}\n", 1, 3),
    ("error_if_unset", b"A=${X?y}\n", 1, 3),
    ("error_if_unset_colon", b"A=${X:?y}\n", 1, 3),
    ("substring_bash", b"A=${X:1}\n", 1, 3),
    ("positional", b"A=$1\n", 1, 3),
    ("positional_braced", b"A=${1}\n", 1, 3),
    ("all_args", b"A=$@\n", 1, 3),
    ("all_args_star", b"A=$*\n", 1, 3),
    ("arg_count", b"A=$#\n", 1, 3),
    ("pid", b"A=$$\n", 1, 3),
    ("exit_status", b"A=$?\n", 1, 3),
    ("shell_options", b"A=$-\n", 1, 3),
    ("background_pid", b"A=$!\n", 1, 3),
    ("dollar_squote", b"A=$'x'\n", 1, 3),
    ("shell_owned_pwd", b"A=$PWD\n", 1, 3),
    ("shell_owned_ifs", b"A=\"$IFS\"\n", 1, 4),
    ("path_unset", b"A=$PATH\n", 1, 3),
    ("optind", b"OPTIND=1\n", 1, 1),
    ("nul_byte", b"A=a\0b\n", 1, 4),
    ("nul_in_squote", b"A='a\0'\n", 1, 5),
    ("nul_in_dquote", b"A=\"a\0\"\n", 1, 5),
    ("tilde", b"A=~/x\n", 1, 3),
    ("tilde_user", b"A=~root\n", 1, 3),
    ("tilde_after_colon", b"A=/x:~/y\n", 1, 6),
    ("tilde_in_op_word", b"A=${X-~}\n", 1, 7),
    ("tilde_in_nested_op_word", b"A=${X-${Y-~}}\n", 1, 11),
    ("unterminated_squote", b"A='abc\n", 1, 3),
    ("unterminated_dquote", b"A=\"abc\nB=1\n", 1, 3),
    ("unterminated_brace", b"A=${X\n", 1, 3),
    ("backslash_at_eof", b"A=\\", 1, 3),
    ("export_p", b"export -p\n", 1, 8),
    ("export_bare", b"export\n", 1, 1),
    ("export_only_comment", b"export # all\n", 1, 1),
    ("export_quoted_word", b"export 'A=1'\n", 1, 8),
    ("crlf_blank_line", b"A=1\r\n\r\n", 2, 1),
    ("position_after_multiline_quote", b"A='x\ny'\nB=1\nC=$(touch marker)\n", 4, 3),
    ("position_after_continuation", b"A=1 \\\n;\n", 2, 1),
    ("position_after_tabs", b"\tA=1\tB=`x`\n", 1, 8),
];

#[test]
fn refused_constructs() {
    let mut failures = Vec::new();
    for (name, src, line, col) in REFUSED {
        let t = TempDir::new("refused");
        let conf = t.join("conf");
        fs::write(&conf, src).unwrap();
        let dir = t.join("env");
        let r = conf2env(&dir, &[&conf], &[], t.path());
        let stderr = r.stderr_str();
        let want = format!("courier-run: fatal: {}:{line}:{col}: ", conf.display());
        let mut bad = Vec::new();
        if r.code != Some(100) {
            bad.push(format!("exit {:?}, want 100", r.code));
        }
        if !stderr.contains(&want) {
            bad.push(format!("stderr lacks {want:?}"));
        }
        // One line: what is wrong, and in parentheses what to do.
        let fatal = stderr
            .lines()
            .find(|l| l.starts_with("courier-run: fatal: "));
        if !fatal.is_some_and(|l| l.ends_with(')')) {
            bad.push("the message does not end in a (hint)".into());
        }
        // Nothing ran (no marker), nothing was created (no envdir, no
        // temporary sibling).
        if t.names() != ["conf"] {
            bad.push(format!("left behind: {:?}", t.names()));
        }
        if !bad.is_empty() {
            failures.push(format!(
                "case {name} (\"{}\"): {}\n  stderr: {stderr}",
                show(src),
                bad.join("; ")
            ));
        }
    }
    eprintln!("refused constructs: {} cases", REFUSED.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// dash really would have run these: the marker check has teeth.
#[test]
fn refused_commands_do_run_in_sh() {
    let t = TempDir::new("sh-runs");
    for src in [
        &b"A=$(touch marker)\n"[..],
        b"A=1; touch marker\n",
        b"A=`touch marker`\n",
    ] {
        fs::write(t.join("conf"), src).unwrap();
        let st = Command::new("/bin/sh")
            .arg("-c")
            .arg(". ./conf")
            .current_dir(t.path())
            .status()
            .unwrap();
        assert!(st.success());
        assert!(t.join("marker").exists(), "{}", show(src));
        fs::remove_file(t.join("marker")).unwrap();
    }
}

#[test]
fn a_refusal_in_the_second_file_names_it_and_writes_nothing() {
    let t = TempDir::new("refused2");
    let files = t.write_files(&[b"A=1\n".to_vec(), b"# c\nB=2\nC=$(touch marker)\n".to_vec()]);
    let r = conf2env(&t.join("env"), &files, &[], t.path());
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    let want = format!(
        "courier-run: fatal: {}:3:3: command substitution",
        files[1].display()
    );
    assert!(r.stderr_str().contains(&want), "{}", r.stderr_str());
    assert_eq!(t.names(), ["f1", "f2"]);
}

/// The first assigned variable whose value ends in a blank, with the path
/// and line of its (latest) assignment.
fn first_uncarriable(
    files: &[Vec<u8>],
    env: &[(Vec<u8>, Vec<u8>)],
    paths: &[PathBuf],
) -> Option<(String, String)> {
    let scope = our_scope(files, env).unwrap();
    scope
        .vars()
        .into_iter()
        .find(|a| matches!(a.value.last(), Some(b' ' | b'\t')))
        .map(|a| {
            let n: usize = a.pos.file.trim_start_matches('f').parse().unwrap();
            (
                a.name.clone(),
                format!("{}:{}:", paths[n - 1].display(), a.pos.line),
            )
        })
}

/// conf2env then envdir against dash for one case.
fn round_trip_one(name: &str, files: &[Vec<u8>], env: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
    let ctx = || format!("case {name}\n{}env: {}", show_files(files), show_env(env));
    let want = dash_vars(files, env).map_err(|e| format!("{}\ndash: {e}", ctx()))?;
    let t = TempDir::new("roundtrip");
    let paths = t.write_files(files);
    let dir = t.join("env");
    let r = conf2env(&dir, &paths, env, t.path());
    if let Some((var, at)) = first_uncarriable(files, env, &paths) {
        // daemontools would strip the blank: refused, naming it.
        let stderr = r.stderr_str();
        let msg = format!("the value of {var} ends in a space or tab");
        if r.code != Some(100) || !stderr.contains(&msg) || !stderr.contains(&at) {
            return Err(format!(
                "{}\nwant exit 100 naming {var} at {at}, got {:?}: {stderr}",
                ctx(),
                r.code
            ));
        }
        if !matches!(
            want.get(var.as_bytes()).and_then(|v| v.last()),
            Some(b' ' | b'\t')
        ) {
            return Err(format!("{}\ndash's {var} does not end in a blank", ctx()));
        }
        if dir.exists() {
            return Err(format!("{}\nenvdir written despite the refusal", ctx()));
        }
        return Ok(());
    }
    if r.code != Some(0) {
        return Err(format!(
            "{}\nconf2env exit {:?}: {}",
            ctx(),
            r.code,
            r.stderr_str()
        ));
    }
    let got = envdir_vars(&dir, env, t.path()).map_err(|e| format!("{}\n{e}", ctx()))?;
    if got != want {
        return Err(format!(
            "{}\nenvdir vs dash:\n{}",
            ctx(),
            diff_vars(&got, &want)
        ));
    }
    Ok(())
}

const GENERATED_SAMPLE: usize = 100;

#[test]
fn round_trip() {
    if !have_dash() || !have_envdir() {
        return;
    }
    let mut cases: Vec<(String, Vec<Vec<u8>>, Env)> = corpus()
        .into_iter()
        .map(|c| (c.name.to_string(), c.files, c.env))
        .collect();
    cases.push((
        "debian12 imapd+imapd-ssl".into(),
        vec![fixture("imapd"), fixture("imapd-ssl")],
        vec![],
    ));
    cases.push((
        "debian12 pop3d+pop3d-ssl".into(),
        vec![fixture("pop3d"), fixture("pop3d-ssl")],
        vec![],
    ));
    let seed = seed(0x0e2d_1a00);
    let mut rng = Rng::new(seed);
    for i in 0..GENERATED_SAMPLE * scale() {
        let (files, env) = Gen::new(&mut rng).case();
        cases.push((format!("generated #{i} (seed {seed})"), files, env));
    }
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, files, env)| round_trip_one(name, files, env).err())
        .take(10)
        .collect();
    eprintln!(
        "round trip: {} cases (corpus, Debian pairs, generated with seed {seed})",
        cases.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn values_envdir_cannot_carry_are_refused() {
    let cases: &[(&[u8], &str, &str)] = &[
        (
            b"A='x '\n",
            "A",
            ":1:1: the value of A ends in a space or tab",
        ),
        (
            b"A=1\nB=\"y\t\"\n",
            "B",
            ":2:1: the value of B ends in a space or tab",
        ),
        (
            b"# c\n\n  C=a\\ \n",
            "C",
            ":3:3: the value of C ends in a space or tab",
        ),
        (
            b"D=\"x\n \"\n",
            "D",
            ":1:1: the value of D ends in a space or tab",
        ),
    ];
    for (src, var, msg) in cases {
        let t = TempDir::new("blank");
        let conf = t.join("conf");
        fs::write(&conf, src).unwrap();
        let r = conf2env(&t.join("env"), &[&conf], &[], t.path());
        assert_eq!(r.code, Some(100), "{var}: {}", r.stderr_str());
        let want = format!("courier-run: fatal: {}{msg}", conf.display());
        assert!(r.stderr_str().contains(&want), "{var}: {}", r.stderr_str());
        assert_eq!(t.names(), ["conf"]);
    }
}

#[test]
fn rewrite_only_on_change_and_as_a_whole() {
    let t = TempDir::new("c2e-churn");
    let conf = t.join("conf");
    let dir = t.join("env");
    fs::write(&conf, b"A=1\nB='two words'\n").unwrap();
    let r = conf2env(&dir, &[&conf], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let before = snapshot(&dir);

    // Same content: nothing written at all.
    std::thread::sleep(Duration::from_millis(20));
    let r = conf2env(&dir, &[&conf], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(snapshot(&dir), before);
    assert_eq!(t.names(), ["conf", "env"]);

    // Changed: a new directory in its place; A left the config and the
    // envdir.
    fs::write(&conf, b"B=2\nC=3\n").unwrap();
    let r = conf2env(&dir, &[&conf], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let after = snapshot(&dir);
    assert_ne!(after.ino, before.ino);
    assert_eq!(list(&dir), [courier_run::envdir::MARKER, "B", "C"]);
    // The previous generation stays whole for readers (also through a run
    // at once) until the first run after the grace.
    assert_eq!(t.names().len(), 3, "{:?}", t.names());
    let r = conf2env(&dir, &[&conf], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(t.names().len(), 3, "{:?}", t.names());
    let old = t.join(&t.names()[0]);
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let then =
        nix::sys::time::TimeSpec::new(secs - courier_run::envdir::GRACE.as_secs() as i64 - 2, 0);
    nix::sys::stat::utimensat(
        None,
        &old,
        &then,
        &then,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
    let r = conf2env(&dir, &[&conf], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(snapshot(&dir), after);
    assert_eq!(t.names(), ["conf", "env"]);
}

#[test]
fn a_failed_run_keeps_the_old_envdir() {
    let t = TempDir::new("c2e-fail");
    let conf = t.join("conf");
    let dir = t.join("env");
    fs::write(&conf, b"A=1\n").unwrap();
    assert_eq!(conf2env(&dir, &[&conf], &[], t.path()).code, Some(0));
    let before = snapshot(&dir);
    for (src, code) in [
        (&b"A=2\nB='x '\n"[..], 100),
        (b"A=2\nB=$(touch marker)\n", 100),
        (b"A=2\nB=1 C\n", 100),
    ] {
        fs::write(&conf, src).unwrap();
        let r = conf2env(&dir, &[&conf], &[], t.path());
        assert_eq!(r.code, Some(code), "{}: {}", show(src), r.stderr_str());
        assert_eq!(snapshot(&dir), before, "{}", show(src));
        assert_eq!(t.names(), ["conf", "env"]);
    }
    // A config that cannot be read: a system failure, 111.
    let r = conf2env(&dir, &[t.join("missing")], &[], t.path());
    assert_eq!(r.code, Some(111), "{}", r.stderr_str());
    assert_eq!(snapshot(&dir), before);
    // An envdir whose parent does not exist: 111, nothing created.
    fs::write(&conf, b"A=2\n").unwrap();
    let r = conf2env(&t.join("no/env"), &[&conf], &[], t.path());
    assert_eq!(r.code, Some(111), "{}", r.stderr_str());
    assert!(
        r.stderr_str().starts_with("courier-run: fatal: unable to "),
        "{}",
        r.stderr_str()
    );
    assert_eq!(t.names(), ["conf", "env"]);
}

fn modes_of(dir: &Path) -> (u32, Vec<u32>) {
    let s = snapshot(dir);
    // The marker included: it has the files' mode.
    (s.mode, s.files.iter().skip(1).map(|f| f.mode).collect())
}

#[test]
fn private_config_gives_private_envdir() {
    let t = TempDir::new("c2e-modes");
    let public = t.join("public");
    let private = t.join("private");
    fs::write(&public, b"A=1\n").unwrap();
    fs::write(&private, b"B=2\n").unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o600)).unwrap();

    let dir = t.join("env");
    let r = conf2env(&dir, &[&public], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(modes_of(&dir), (0o755, vec![0o644]));

    let r = conf2env(&dir, &[&private], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(modes_of(&dir), (0o700, vec![0o600]));

    // One private file among several makes the whole envdir private.
    fs::set_permissions(&private, fs::Permissions::from_mode(0o640)).unwrap();
    let r = conf2env(&dir, &[&public, &private], &[], t.path());
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(modes_of(&dir), (0o700, vec![0o600, 0o600]));

    // The modes are set, not left to the umask.
    let dir2 = t.join("env2");
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg("umask 077; exec \"$@\"")
        .arg("sh")
        .arg(BIN)
        .arg("conf2env")
        .arg(&dir2)
        .arg(&public)
        .current_dir(t.path());
    let r = run(cmd, t.path(), Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(modes_of(&dir2), (0o755, vec![0o644]));
}

#[test]
fn reads_standard_input_without_config_arguments() {
    let t = TempDir::new("c2e-stdin");
    let conf = t.join("conf");
    let dir = t.join("env");
    fs::write(&conf, b"A=1 B=\"$A 2\"\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("conf2env")
        .arg(&dir)
        .env_clear()
        .current_dir(t.path());
    let r = run_with_stdin(
        cmd,
        Stdio::from(fs::File::open(&conf).unwrap()),
        t.path(),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(fs::read(dir.join("B")).unwrap(), b"1 2\n");

    fs::write(&conf, b"A=1\nB=$(touch marker)\n").unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("conf2env")
        .arg(t.join("env2"))
        .env_clear()
        .current_dir(t.path());
    let r = run_with_stdin(
        cmd,
        Stdio::from(fs::File::open(&conf).unwrap()),
        t.path(),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(100));
    assert!(
        r.stderr_str().contains("courier-run: fatal: -:2:3: "),
        "{}",
        r.stderr_str()
    );
    assert_eq!(t.names(), ["conf", "env"]);
}
