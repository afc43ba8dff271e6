//! Every message that quotes input is one line of text with no raw control
//! byte, and cuts long values (src/shown.rs): 32 bytes of a value, 256 of a
//! path, then `...`. One test per message path: the fatal line (a `--set`
//! value and name, a config value, a config syntax error, an access list
//! line), `--check`'s lines (the envdir, the maildir, an `info` line), the
//! dry run's text and its JSON warnings, the launch's warning and banner
//! lines, `conf2env`, `init`, and clap's usage errors.
//!
//! Each feeds the same hostile text: CR, `ESC [2K` (erase the line), a
//! newline followed by a forged `courier-run: fatal:` line, DEL, the C1
//! control CSI (U+009B), invalid UTF-8 and (in files) NUL where the input
//! can carry them; and a 600-byte value.

mod common;

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::Path;
use std::process::Command;

use common::{BIN, Ran, TempDir, run_cmd};

/// Hostile text a command-line word can carry (`--set` takes UTF-8).
const HOSTILE: &str = "A\r\x1b[2K\ncourier-run: fatal: forged\x7f\u{9b}Z";
/// Hostile bytes a file or a path can carry.
const HOSTILE_BYTES: &[u8] = b"A\r\x1b[2K\ncourier-run: fatal: forged\x7f\xc2\x9b\xffZ";

/// A value of 600 bytes: no message may hold more than a cut of it.
fn long() -> String {
    "V".repeat(600)
}

/// Settings under which the service needs nothing of the system (tests/
/// check.rs's base): each test changes one.
fn base() -> Vec<String> {
    [
        "layout=debian",
        "config=",
        "account=",
        "envdir=",
        "server=/bin/true",
        "login=/bin/true",
        "imapd=/bin/true",
        "rules=",
        "address=127.0.0.1",
        "port=14399",
        "banner=no",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(t: &TempDir, sets: &[String], extra: &[&str]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path());
    for s in base().iter().chain(sets) {
        cmd.arg("--set").arg(s);
    }
    cmd.args(extra);
    run_cmd(cmd)
}

/// The output of a message path: valid UTF-8, no control byte but the
/// line ends (C0, DEL, C1), no line forged by a newline in the input, and
/// no run of `V` longer than `max_run` (the cut).
#[track_caller]
fn assert_clean(out: &[u8], max_run: usize, what: &str) {
    let text = std::str::from_utf8(out)
        .unwrap_or_else(|e| panic!("{what}: output is not UTF-8 ({e}): {out:?}"));
    for c in text.chars() {
        assert!(
            c == '\n' || !c.is_control(),
            "{what}: raw control character {c:?} in {text:?}"
        );
    }
    for line in text.lines() {
        assert!(
            !line.starts_with("courier-run: fatal: forged"),
            "{what}: a newline in the input started a line: {text:?}"
        );
        let run = line.split(|c| c != 'V').map(str::len).max().unwrap_or(0);
        assert!(
            run <= max_run,
            "{what}: {run} bytes of a value in one line (cut at {max_run}): {line}"
        );
    }
}

/// Both streams, clean; the message's text, for the caller's own asserts.
#[track_caller]
fn clean(r: &Ran, max_run: usize, what: &str) -> String {
    assert_clean(&r.stdout, max_run, &format!("{what} (stdout)"));
    assert_clean(&r.stderr, max_run, &format!("{what} (stderr)"));
    format!("{}{}", r.stdout_str(), r.stderr_str())
}

const VALUE: usize = 32;
const PATH: usize = 256;

#[test]
fn fatal_line_quotes_a_set_value_escaped_and_cut() {
    let t = TempDir::new("msg-set-value");
    for (v, max) in [(HOSTILE.to_string(), VALUE), (long(), VALUE)] {
        for setting in ["port", "umask", "softlimit", "conlimit", "account"] {
            let r = run(&t, &[format!("{setting}={v}")], &[]);
            assert_eq!(r.exit(), 100, "{setting}: {}", r.stderr_str());
            let out = clean(&r, max, setting);
            assert_eq!(out.lines().count(), 1, "{setting}: one line: {out}");
            assert!(out.starts_with("courier-run: fatal: "), "{out}");
        }
    }
    let r = run(&t, &[format!("port={HOSTILE}")], &[]);
    let out = clean(&r, VALUE, "port");
    assert!(
        out.contains(r#""A\r\x1b[2K\ncourier-run: fatal: forge...""#),
        "{out}"
    );
}

#[test]
fn fatal_line_quotes_a_set_name_escaped_and_cut() {
    let t = TempDir::new("msg-set-name");
    for (v, max) in [(HOSTILE.to_string(), VALUE), (long(), VALUE)] {
        let r = run(&t, &[format!("{v}=1")], &[]);
        assert_eq!(r.exit(), 100);
        let out = clean(&r, max, "--set name");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("unknown setting"), "{out}");
    }
}

#[test]
fn fatal_line_quotes_a_config_value_escaped_and_cut() {
    let t = TempDir::new("msg-config");
    for (name, value) in [
        ("MAXPERIP", HOSTILE_BYTES.to_vec()),
        ("MAXDAEMONS", HOSTILE_BYTES.to_vec()),
        ("MAXPERIP", long().into_bytes()),
        ("MAXDAEMONS", long().into_bytes()),
    ] {
        t.write("conf", [name.as_bytes(), b"='", &value, b"'\n"].concat());
        let r = run(&t, &["config=./conf".into()], &[]);
        assert_eq!(r.exit(), 100, "{name}: {}", r.stderr_str());
        let out = clean(&r, VALUE, name);
        assert_eq!(out.lines().count(), 1, "{out}");
        // And as --check says it.
        let r = run(&t, &["config=./conf".into()], &["--check"]);
        assert_eq!(r.exit(), 1);
        let out = clean(&r, VALUE, name);
        assert!(out.lines().any(|l| l.starts_with("FAIL ")), "{out}");
    }
}

#[test]
fn config_syntax_errors_quote_the_line_escaped_and_cut() {
    let t = TempDir::new("msg-syntax");
    for src in [
        [b"X \"", HOSTILE_BYTES, b"\n"].concat(),
        [b"X=${", HOSTILE_BYTES, b"}\n"].concat(),
        [b"X=a\0", HOSTILE_BYTES, b"\n"].concat(),
        [b"X ", long().as_bytes(), b"\n"].concat(),
        [long().as_bytes(), b"=1\n"].concat(),
    ] {
        t.write("conf", &src);
        let r = run(&t, &["config=./conf".into()], &[]);
        assert_eq!(r.exit(), 100, "{}", r.stderr_str());
        let out = clean(&r, VALUE, "config syntax");
        assert_eq!(out.lines().count(), 1, "{out}");
        // conf2env reads the same file: the same one line.
        let r = run_cmd({
            let mut c = Command::new(BIN);
            c.current_dir(t.path())
                .args(["conf2env", "./env", "./conf"]);
            c
        });
        assert_eq!(r.exit(), 100);
        let out = clean(&r, VALUE, "conf2env");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(!t.join("env").exists());
    }
}

#[test]
fn access_list_line_is_escaped() {
    let t = TempDir::new("msg-access");
    t.write(
        "acl",
        [b"1.2.3.4\tallow\n10.\r\x1b[2K", HOSTILE_BYTES, b"\tdeny\n"].concat(),
    );
    for extra in [&[][..], &["--check"], &["--dry-run"]] {
        let r = run(&t, &["access=./acl".into()], extra);
        assert_ne!(r.exit(), 0);
        let out = clean(&r, usize::MAX, "access list");
        // Quoted only while it looks like an address, then cut.
        assert!(out.contains(r#""10....""#), "{out}");
    }
}

#[test]
fn envdir_path_is_escaped_in_check_and_dry_run() {
    let t = TempDir::new("msg-envdir");
    let set = format!("envdir=./e{HOSTILE}");
    let r = run(&t, std::slice::from_ref(&set), &["--check"]);
    let out = clean(&r, PATH, "--check envdir");
    assert!(
        out.lines().any(|l| l.contains(r"envdir ./eA\r\x1b[2K\n")),
        "{out}"
    );
    let r = run(&t, &[set], &["--dry-run"]);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let out = clean(&r, PATH, "--dry-run envdir");
    assert!(out.contains(r"envdir    ./eA\r\x1b[2K\n"), "{out}");
    // Too long a name: refused, the path cut.
    let r = run(&t, &[format!("envdir=./{}", long())], &[]);
    assert_eq!(r.exit(), 100);
    let out = clean(&r, PATH, "long envdir");
    assert_eq!(out.lines().count(), 1, "{out}");
    let r = run(&t, &[format!("envdir=./{}", long())], &["--check"]);
    clean(&r, PATH, "long envdir --check");
}

#[test]
fn check_maildir_line_is_escaped_and_cut() {
    let t = TempDir::new("msg-maildir");
    for (v, what) in [
        (format!("/x{HOSTILE}"), "hostile"),
        (format!("/{}", long()), "long"),
    ] {
        let r = run(&t, &[format!("maildir={v}")], &["--check"]);
        assert_eq!(r.exit(), 1, "{what}");
        let out = clean(&r, PATH, what);
        assert!(
            out.lines().any(|l| l.starts_with("FAIL maildir /")),
            "{what}: {out}"
        );
    }
}

#[test]
fn check_info_line_cuts_a_multi_line_value() {
    let t = TempDir::new("msg-info");
    // 600 bytes over 60 lines, overridden by maildir=: the info line
    // quotes the config's value.
    let value: Vec<u8> = (0..60)
        .flat_map(|_| [&[b'V'; 9][..], b"\n"].concat())
        .collect();
    t.write("conf", [b"MAILDIRPATH='", &value[..], b"'\n"].concat());
    let r = run(
        &t,
        &["config=./conf".into(), "maildir=/tmp".into()],
        &["--check"],
    );
    let out = clean(&r, VALUE, "info MAILDIRPATH");
    let info: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("info MAILDIRPATH"))
        .collect();
    assert_eq!(info.len(), 1, "{out}");
    assert!(info[0].len() < 300, "{}", info[0]);
    assert!(
        info[0].contains(r"VVVVVVVVV\nVVVVVVVVV\nVVVVVVVVV\nVV..."),
        "{}",
        info[0]
    );
}

#[test]
fn dry_run_warnings_are_escaped_in_text_and_json() {
    let t = TempDir::new("msg-warn");
    // A value the rc would paste into its inner script and parse again is
    // a warning that quotes it.
    let mut conf = b"IMAPDSTARTTLS='./".to_vec();
    conf.extend_from_slice(HOSTILE_BYTES);
    conf.extend_from_slice(b"'\n");
    t.write("conf", &conf);
    let sets = ["config=./conf".to_string()];
    let r = run(&t, &sets, &["--dry-run"]);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let out = clean(&r, PATH, "--dry-run text");
    assert!(
        out.contains(r"IMAP_STARTTLS: Courier's imapd script pastes the value ./A\r\x1b[2K\n"),
        "{out}"
    );
    let r = run(&t, &sets, &["--dry-run", "--format", "json"]);
    assert_eq!(r.exit(), 0);
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).expect("JSON");
    let warnings = v["warnings"].as_array().expect("warnings");
    assert!(!warnings.is_empty(), "{v}");
    for w in warnings {
        let w = w.as_str().unwrap();
        assert!(!w.chars().any(char::is_control), "{w:?}");
    }
    // The launch prints the same warning to the log: one line.
    let r = run(&t, &sets, &[]);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let out = clean(&r, PATH, "launch warning");
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with("courier-run: warning: "))
            .count(),
        1,
        "{out}"
    );
}

#[test]
fn launch_banner_is_escaped_and_cut() {
    let t = TempDir::new("msg-banner");
    for v in [format!("/x{HOSTILE}"), format!("/{}", long())] {
        let r = run(&t, &[format!("maildir={v}"), "banner=yes".into()], &[]);
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        let out = clean(&r, PATH, "banner");
        assert_eq!(out.lines().count(), 2, "{out}");
    }
}

#[test]
fn init_refuses_a_dir_with_control_characters_in_one_line() {
    let t = TempDir::new("msg-init");
    let mut dir = t.path().as_os_str().to_owned().into_vec();
    dir.extend_from_slice(b"/svc");
    dir.extend_from_slice(HOSTILE_BYTES);
    let dir = OsString::from_vec(dir);
    // Its start hint is a command to paste: such a name is refused, in
    // one escaped line, before anything is created.
    for dry in [true, false] {
        let mut cmd = Command::new(BIN);
        cmd.arg("init");
        if dry {
            cmd.arg("--dry-run");
        }
        let r = run_cmd({
            cmd.arg(&dir);
            cmd
        });
        assert_eq!(r.exit(), 100, "{}", r.stderr_str());
        let out = clean(&r, PATH, "init");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains(r"svcA\r\x1b[2K\ncourier-run"), "{out}");
        assert!(!Path::new(&dir).exists());
    }
    // A long name: the message cuts it.
    let long_dir = t.path().join(format!("{}\n", long()));
    let mut cmd = Command::new(BIN);
    cmd.arg("init").arg(&long_dir);
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 100);
    clean(&r, PATH, "init long");
}

#[test]
fn clap_errors_quote_words_escaped() {
    let r = run_cmd({
        let mut c = Command::new(BIN);
        c.arg(format!("--bogus{HOSTILE}"));
        c
    });
    assert_eq!(r.exit(), 100);
    let out = clean(&r, usize::MAX, "clap");
    assert!(out.contains(r"--bogusA\r\x1b[2K\ncourier-run"), "{out}");
}

#[test]
fn dry_run_explain_operands_are_escaped() {
    let t = TempDir::new("msg-operands");
    t.write(
        "run",
        "#!/usr/bin/courier-run\nlayout=debian\nconfig=\naccount=\nenvdir=\n",
    );
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .args(["--dry-run", "--explain", "./run"])
        .arg(OsString::from_vec(HOSTILE_BYTES.to_vec()));
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let out = clean(&r, usize::MAX, "operands");
    assert!(out.contains(r"operands (ignored): A\r\x1b[2K\n"), "{out}");
}
