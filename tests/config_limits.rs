//! The config reader's limits and `. FILE`, through the binary
//! (`courier-run conf2env DIR CONFIG` reads configs as the launch does):
//!
//! - bounded input: a FIFO, a device, a directory or an oversized file is
//!   refused at once (exit 100), never read;
//! - `${...}` nested 20,000 or 1,000,000 deep is refused with a position,
//!   not a stack overflow;
//! - messages are safe to log: control bytes escaped, no whole line quoted;
//! - `. FILE`: the sourced file's assignments join the scope, its positions
//!   name it; loops, depth, bare names and missing files are refused.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use courier_run::config::{MAX_FILE_SIZE, MAX_NESTING, MAX_SOURCE_DEPTH};

/// conf2env of `conf` into `t/env`, run in `t`.
fn convert(t: &TempDir, conf: &Path) -> Ran {
    conf2env(&t.join("env"), &[conf], &[], t.path())
}

/// Exit 100, one fatal line containing `want`, and no envdir written.
fn assert_refused(t: &TempDir, r: &Ran, want: &str) {
    let err = r.stderr_str();
    assert!(!r.timed_out, "timed out; stderr: {err}");
    assert_eq!(r.code, Some(100), "stderr: {err}");
    assert!(
        err.starts_with("courier-run: fatal: ") && err.contains(want),
        "want {want:?} in: {err}"
    );
    assert!(!t.join("env").exists(), "an envdir was written");
}

fn write(p: &Path, src: &[u8]) {
    fs::write(p, src).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(0o644)).unwrap();
}

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
}

#[test]
fn fifo_config_is_refused_without_blocking() {
    let t = TempDir::new("fifo");
    let fifo = t.join("imapd");
    mkfifo(&fifo);
    let start = Instant::now();
    let r = convert(&t, &fifo);
    assert_refused(&t, &r, &format!("config file {} is a FIFO", fifo.display()));
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn dev_zero_is_refused_at_once() {
    let t = TempDir::new("zero");
    let start = Instant::now();
    let r = convert(&t, Path::new("/dev/zero"));
    assert_refused(&t, &r, "/dev/zero is a character device");
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn directory_is_refused() {
    let t = TempDir::new("dir");
    fs::create_dir(t.join("d")).unwrap();
    let r = convert(&t, &t.join("d"));
    assert_refused(&t, &r, "is a directory");
}

#[test]
fn oversized_file_is_refused() {
    let t = TempDir::new("big");
    let big = t.join("big");
    // Sparse: no disk space used.
    let f = fs::File::create(&big).unwrap();
    f.set_len(MAX_FILE_SIZE + 1).unwrap();
    let r = convert(&t, &big);
    assert_refused(&t, &r, "is larger than 16 MiB");
}

/// A file of exactly the limit is read (the limit is inclusive).
#[test]
fn file_at_the_limit_is_read() {
    let t = TempDir::new("limit");
    let conf = t.join("conf");
    let mut src = b"A=1\n".to_vec();
    src.resize(MAX_FILE_SIZE as usize - 1, b'#');
    src.push(b'\n');
    write(&conf, &src);
    let r = convert(&t, &conf);
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(fs::read(t.join("env/A")).unwrap(), b"1\n");
}

fn nested(depth: usize, open: &str, close: &str) -> Vec<u8> {
    let mut s = String::from("A=");
    for _ in 0..depth {
        s.push_str(open);
    }
    s.push('x');
    for _ in 0..depth {
        s.push_str(close);
    }
    s.push('\n');
    s.into_bytes()
}

#[test]
fn deep_nesting_is_refused_with_a_position() {
    // The reference that goes one past the limit: col 3 + MAX_NESTING * len.
    let cases: [(usize, &str, &str); 4] = [
        (20_000, "${A:-", "}"),
        (1_000_000, "${A:-", "}"),
        (20_000, "${A:-\"", "\"}"),
        (20_000, "\"${A+'", "'}\""),
    ];
    for (depth, open, close) in cases {
        let t = TempDir::new("deep");
        let conf = t.join("conf");
        write(&conf, &nested(depth, open, close));
        let r = convert(&t, &conf);
        let first_dollar = open.find('$').unwrap() as u32;
        let col = 3 + MAX_NESTING * open.len() as u32 + first_dollar;
        assert_refused(
            &t,
            &r,
            &format!(
                "{}:1:{col}: ${{...}} nested more than {MAX_NESTING} deep",
                conf.display()
            ),
        );
    }
    // At the limit it is read.
    let t = TempDir::new("deep-ok");
    let conf = t.join("conf");
    write(&conf, &nested(MAX_NESTING as usize, "${A:-", "}"));
    let r = convert(&t, &conf);
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(fs::read(t.join("env/A")).unwrap(), b"x\n");
}

#[test]
fn control_bytes_in_messages_are_escaped() {
    let t = TempDir::new("ctl");
    let conf = t.join("conf");
    write(&conf, b"A=1\n\x1b[2J\x07evil=1\n");
    let r = convert(&t, &conf);
    assert_refused(
        &t,
        &r,
        ":2:1: '\\x1b[2J\\x07evil' is not a valid variable name",
    );
    assert!(
        !r.stderr.iter().any(|&c| c < 0x20 && c != b'\n'),
        "{:?}",
        r.stderr_str()
    );
    assert_eq!(r.stderr.iter().filter(|&&c| c == b'\n').count(), 1);

    // A file name with a newline and an escape sequence.
    let t = TempDir::new("ctl-name");
    let conf = t.join("a\nb\x1bc");
    write(&conf, b"9=1\n");
    let r = convert(&t, &conf);
    assert_refused(&t, &r, "a\\nb\\x1bc:1:1: '9' is not a valid variable name");
    assert_eq!(r.stderr.iter().filter(|&&c| c == b'\n').count(), 1);
}

/// A wrong file given as a config (here a shadow-style line) is not quoted
/// into the log.
#[test]
fn a_wrong_file_is_not_quoted() {
    for line in [
        &b"root:!:19000:0:99999:7:::\n"[..],
        b"root:$y$j9T$abcdefghijklmnopqrstuv/0123456789:19000:0:99999:7:::\n",
        b"secretsecretsecretsecretsecretsecretsecret more\n",
        b"password-hash-abcdefghijklmnopqrstuvwxyz=1\n",
    ] {
        let t = TempDir::new("shadow");
        let conf = t.join("shadow");
        write(&conf, line);
        let r = convert(&t, &conf);
        assert_eq!(r.code, Some(100));
        let err = r.stderr_str();
        let quoted = err.split('\'').nth(1).unwrap_or("");
        assert!(quoted.len() <= 40, "{err}");
        assert!(!err.contains("19000") && !err.contains("0123"), "{err}");
    }
}

#[test]
fn sourced_file_joins_the_scope_and_names_positions() {
    let t = TempDir::new("dot");
    let local = t.join("imapd.local");
    write(&local, b"# local\nB=\"$A-b\"\nA=2\n");
    let conf = t.join("imapd");
    write(
        &conf,
        format!("A=1\n. {}\nC=$A$B\n. ./imapd.local\n", local.display()).as_bytes(),
    );
    let r = convert(&t, &conf);
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let env = |n: &str| fs::read(t.join("env").join(n)).unwrap();
    assert_eq!(env("A"), b"2\n");
    assert_eq!(env("B"), b"2-b\n");
    assert_eq!(env("C"), b"21-b\n");

    // The library lists every file read, sourced ones included.
    let conf2 = t.join("imapd2");
    write(&conf2, format!("A=1\n. {}\n", local.display()).as_bytes());
    let mut scope = courier_run::config::Scope::new([]);
    courier_run::config::read_file(&mut scope, &conf2).unwrap();
    assert_eq!(scope.files(), [conf2.clone(), local.clone()]);

    // An error in the sourced file names the sourced file.
    write(&local, b"B=1\nX=$(id)\n");
    fs::remove_dir_all(t.join("env")).unwrap();
    let r = convert(&t, &conf);
    assert_refused(
        &t,
        &r,
        &format!("{}:2:3: command substitution", local.display()),
    );
}

/// dash itself reads what we read (the differential tests cover more).
#[test]
fn sourced_file_as_dash_reads_it() {
    if !have_dash() {
        return;
    }
    let t = TempDir::new("dot-dash");
    let local = t.join("local");
    write(&local, b"B=\"$A-b\" D=${A:+'x y'}\n");
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let conf = format!("A=1\nF={}\n. \"$F\"\nC=$A$B\n", local.display()).into_bytes();
    let ours = our_vars(std::slice::from_ref(&conf), &[]).unwrap();
    let dash = dash_vars(&[conf], &[]).unwrap();
    assert_eq!(ours, dash, "{}", diff_vars(&ours, &dash));
    assert_eq!(ours.get(&b"D"[..]).map(|v| &v[..]), Some(&b"x y"[..]));
}

#[test]
fn bare_dot_name_is_refused() {
    let t = TempDir::new("dot-bare");
    let conf = t.join("conf");
    write(&conf, b"A=1\n. imapd.local\n");
    let r = convert(&t, &conf);
    assert_refused(
        &t,
        &r,
        &format!(
            "{}:2:3: '. imapd.local' makes sh search PATH for the file (write the path with a /",
            conf.display()
        ),
    );
}

#[test]
fn dot_refusals() {
    let t = TempDir::new("dot-refusals");
    let conf = t.join("conf");
    let fifo = t.join("fifo");
    mkfifo(&fifo);
    let cases: Vec<(Vec<u8>, String)> = vec![
        (
            b". ./missing\n".to_vec(),
            ":1:1: '. FILE': unable to open file ./missing: No such file or directory".into(),
        ),
        (
            b". ./fifo\n".to_vec(),
            ":1:1: '. FILE': file ./fifo is a FIFO".into(),
        ),
        (
            format!(". {}\n", conf.display()).into_bytes(),
            ":1:1: '. ".to_string()
                + &format!(
                    "{}' reads a file that is already being read",
                    conf.display()
                ),
        ),
        (
            b"X='a b'\n. /x/$X\n".to_vec(),
            ":2:6: the value of X holds a blank".into(),
        ),
        (
            b"X=/x\n. $X y\n".to_vec(),
            ":2:6: '. FILE' takes one file name".into(),
        ),
    ];
    for (src, want) in cases {
        write(&conf, &src);
        let start = Instant::now();
        let r = convert(&t, &conf);
        assert_refused(&t, &r, &format!("{}{want}", conf.display()));
        assert!(start.elapsed() < Duration::from_secs(5));
    }
}

/// A loop through two files, and a chain deeper than the limit.
#[test]
fn dot_loops_and_depth() {
    let t = TempDir::new("dot-loop");
    let a = t.join("a");
    let b = t.join("b");
    write(&a, format!("A=1\n. {}\n", b.display()).as_bytes());
    write(&b, format!("B=1\n. {}\n", a.display()).as_bytes());
    let r = convert(&t, &a);
    assert_refused(
        &t,
        &r,
        &format!(
            "{}:2:1: '. {}' reads a file that is already being read",
            b.display(),
            a.display()
        ),
    );

    let t = TempDir::new("dot-depth");
    let n = MAX_SOURCE_DEPTH + 1;
    for i in 0..=n {
        let next = if i < n {
            format!(". {}\n", t.join(format!("f{}", i + 1)).display())
        } else {
            String::new()
        };
        write(
            &t.join(format!("f{i}")),
            format!("V{i}={i}\n{next}").as_bytes(),
        );
    }
    let r = convert(&t, &t.join("f0"));
    assert_refused(&t, &r, &format!("nested more than {MAX_SOURCE_DEPTH} deep"));
    // At the limit, every file is read.
    write(&t.join(format!("f{}", n - 1)), b"LAST=1\n");
    let r = convert(&t, &t.join("f0"));
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(fs::read(t.join("env/LAST")).unwrap(), b"1\n");
}

/// A sourced file that is not world-readable makes the envdir private, as
/// the config file itself would.
#[test]
fn private_sourced_file_makes_the_envdir_private() {
    let t = TempDir::new("dot-private");
    let local = t.join("local");
    write(&local, b"SECRET=x\n");
    fs::set_permissions(&local, fs::Permissions::from_mode(0o600)).unwrap();
    let conf = t.join("conf");
    write(&conf, format!(". {}\n", local.display()).as_bytes());
    let r = convert(&t, &conf);
    assert_eq!(r.code, Some(0), "{}", r.stderr_str());
    let mode = fs::metadata(t.join("env/SECRET"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

/// The launch's dry run reads configs the same bounded way.
#[test]
fn dry_run_refuses_a_fifo_config() {
    let t = TempDir::new("dry-fifo");
    let fifo = t.join("imapd");
    mkfifo(&fifo);
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--dry-run")
        .arg("--set")
        .arg(format!("config={}", fifo.display()))
        .args(["--set", "envdir=", "--set", "account="])
        .args(["--set", "softlimit=", "--set", "rules="])
        .args(["--set", "server=/bin/true"])
        .current_dir(t.path());
    let r = run(cmd, t.path(), Duration::from_secs(10));
    assert!(!r.timed_out);
    assert_eq!(r.code, Some(100), "{}", r.stderr_str());
    assert!(r.stderr_str().contains("is a FIFO"), "{}", r.stderr_str());
}

/// Parser speed, by hand: `COURIER_BENCH_FILES="f1 f2" cargo test --release
/// --test config_limits parse_speed -- --ignored --nocapture` prints the
/// fastest of 20 reads of the files into one scope.
#[test]
#[ignore]
fn parse_speed() {
    let files: Vec<(String, Vec<u8>)> = std::env::var("COURIER_BENCH_FILES")
        .expect("COURIER_BENCH_FILES")
        .split_whitespace()
        .map(|f| (f.to_string(), fs::read(f).unwrap()))
        .collect();
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..20 {
        let start = Instant::now();
        let mut scope = courier_run::config::Scope::new([]);
        for (name, src) in &files {
            scope.read(name, src).unwrap();
        }
        n = scope.vars().len();
        best = best.min(start.elapsed());
    }
    eprintln!("parse_speed: {n} variables, best of 20: {best:?}");
}

/// References that double a value on every line are stopped at the limit
/// of all values, with the position, instead of taking all memory.
#[test]
fn doubling_values_are_bounded() {
    let t = TempDir::new("double");
    let conf = t.join("conf");
    let mut src = b"A=0123456789abcdef\n".to_vec();
    for _ in 0..60 {
        src.extend_from_slice(b"A=$A$A\n");
    }
    write(&conf, &src);
    let start = Instant::now();
    let r = convert(&t, &conf);
    assert_refused(&t, &r, "the values grow past 64 MiB in all");
    // Line k holds 2^(k+3) bytes and all values before it 2^(k+3) - 16:
    // line 23 is the first to take the sum past 2^26.
    assert!(r.stderr_str().contains(":23:3:"), "{}", r.stderr_str());
    assert!(start.elapsed() < Duration::from_secs(10));
}
