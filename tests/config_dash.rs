//! The config reader against dash, the shell Courier's rc script runs:
//! every input we accept must end in exactly the environment dash ends in
//! (`set -a; . F1; . F2; env -0`, byte for byte, PWD aside), and every
//! input dash would not simply assign from must be refused.
//!
//! - `debian12_pairs`: the Debian 12 config files, and the golden captures.
//! - `corpus`: hand-written tricky cases (tests/common/mod.rs), one a line.
//! - `generated`: random valid files from the supported grammar.
//! - `fuzz`: random mutations of all of the above; never a panic, and never
//!   an accepted input that dash reads differently.
//! - `generated_words_and_dot`: quotes, escapes, operators and nested
//!   references inside `${NAME-word}` (all eight operators), and `. FILE`
//!   in its quoted and expanded forms, against dash.
//!
//! Soak mode: `COURIER_RUN_SOAK=N` runs N times the generated and fuzz
//! counts (default 1, fast enough for CI); `COURIER_TEST_SEED` picks the
//! seed. Each random test prints its counts (cases, accepted, refused).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;
use courier_run::config::{self, Scope};

fn fixture(name: &str) -> Vec<u8> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/debian12")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// A golden file: `env` output (one NAME=value a line), without PWD.
fn golden(name: &str) -> Vars {
    let mut v = Vars::new();
    for line in fixture(name)
        .split(|&c| c == b'\n')
        .filter(|l| !l.is_empty())
    {
        let eq = line.iter().position(|&c| c == b'=').expect("NAME=value");
        v.insert(line[..eq].to_vec(), line[eq + 1..].to_vec());
    }
    v.remove(&b"PWD"[..]);
    v
}

/// Ours against dash for one case; Err describes the difference.
fn check(name: &str, files: &[Vec<u8>], env: &[(Vec<u8>, Vec<u8>)]) -> Result<(), String> {
    let ours = our_vars(files, env);
    let dash = dash_vars(files, env);
    match (ours, dash) {
        (Ok(o), Ok(d)) if o == d => Ok(()),
        (Ok(o), Ok(d)) => Err(format!(
            "case {name}: values differ from dash\n{}env: {}\ndiff:\n{}",
            show_files(files),
            show_env(env),
            diff_vars(&o, &d)
        )),
        (Err(e), Ok(_)) => Err(format!(
            "case {name}: we refuse what dash accepts: {e}\n{}env: {}",
            show_files(files),
            show_env(env)
        )),
        (Ok(_), Err(e)) => Err(format!(
            "case {name}: we accept what dash does not: {e}\n{}env: {}",
            show_files(files),
            show_env(env)
        )),
        (Err(ours), Err(dash)) => Err(format!(
            "case {name}: both refuse: ours: {ours}; dash: {dash}\n{}",
            show_files(files)
        )),
    }
}

#[test]
fn debian12_pairs() {
    let pairs = [
        ("imapd", "imapd-ssl", "golden-env-imapd+imapd-ssl.txt"),
        ("pop3d", "pop3d-ssl", "golden-env-pop3d+pop3d-ssl.txt"),
    ];
    for (f1, f2, gold) in pairs {
        let files = vec![fixture(f1), fixture(f2)];
        // Scope with an empty inherited environment, like `env -i dash`.
        let mut scope = Scope::new([]);
        scope.read(f1, &files[0]).unwrap();
        scope.read(f2, &files[1]).unwrap();
        let ours: Vars = scope
            .vars()
            .iter()
            .map(|a| (a.name.as_bytes().to_vec(), a.value.clone()))
            .collect();
        assert!(ours.len() > 25, "{f1}+{f2}: only {} variables", ours.len());

        if have_dash() {
            let dash = dash_vars(&files, &[]).unwrap();
            assert_eq!(
                ours,
                dash,
                "{f1}+{f2} vs dash:\n{}",
                diff_vars(&ours, &dash)
            );
        }

        // The golden captures. The imapd one holds IMAP_STARTTLS and
        // PROXY_HOSTNAME, which the two files do not set: it was evidently
        // captured with the rc script's extra assignments
        // (`IMAP_STARTTLS=$IMAPDSTARTTLS ; PROXY_HOSTNAME=$PROXY_HOSTNAME`,
        // imapd.rc lines 54-55) after the two files (but not with the rc
        // script's prefix=... lines, which `set -a` would have exported
        // too). Reading that snippet as a third file reproduces it exactly,
        // with us and with dash.
        let want = golden(gold);
        if f1 == "imapd" {
            let snippet = b"IMAP_STARTTLS=$IMAPDSTARTTLS PROXY_HOSTNAME=$PROXY_HOSTNAME\n";
            assert!(!ours.contains_key(&b"IMAP_STARTTLS"[..]));
            scope.read("rc-snippet", snippet).unwrap();
            if have_dash() {
                let three = vec![files[0].clone(), files[1].clone(), snippet.to_vec()];
                let dash = dash_vars(&three, &[]).unwrap();
                assert_eq!(dash, want, "dash vs {gold}:\n{}", diff_vars(&dash, &want));
            }
            // PROXY_HOSTNAME is unset: a warning, and the empty string.
            assert!(
                scope
                    .warnings
                    .iter()
                    .any(|w| w.msg.contains("PROXY_HOSTNAME is not set")),
                "{:?}",
                scope.warnings
            );
        }
        let with_rc: Vars = scope
            .vars()
            .iter()
            .map(|a| (a.name.as_bytes().to_vec(), a.value.clone()))
            .collect();
        assert_eq!(with_rc, want, "{gold}:\n{}", diff_vars(&with_rc, &want));
    }
}

/// The fixtures are the files as Debian ships them, read through
/// `read_file` too (the path is the name in positions).
#[test]
fn read_file_reads_fixtures() {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12/imapd");
    let mut scope = Scope::new([]);
    let mode = config::read_file(&mut scope, &p).unwrap();
    let on_disk = std::fs::metadata(&p).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, on_disk & 0o7777);
    assert_eq!(scope.get("PORT"), Some(&b"143"[..]));
    let a = scope.vars().into_iter().find(|a| a.name == "PORT").unwrap();
    assert_eq!(
        a.pos.to_string(),
        format!("{}:{}:1", p.display(), line_of(&p, b"PORT="))
    );
}

fn line_of(p: &Path, prefix: &[u8]) -> usize {
    std::fs::read(p)
        .unwrap()
        .split(|&c| c == b'\n')
        .position(|l| l.starts_with(prefix))
        .unwrap()
        + 1
}

#[test]
fn corpus() {
    if !have_dash() {
        return;
    }
    let cases = common::corpus();
    assert!(cases.len() >= 60, "{} corpus cases", cases.len());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check(c.name, &c.files, &c.env).err())
        .collect();
    eprintln!("corpus: {} cases compared with dash", cases.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Warnings the corpus cannot see (dash prints nothing for these).
#[test]
fn warnings() {
    let s = config::read_str("t", b"A=1\r\nB=$NOPE\n").unwrap();
    let w: Vec<String> = s.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(
        w[0].starts_with("t:1:1: the value of A ends in a carriage return"),
        "{w:?}"
    );
    assert!(w[1].starts_with("t:2:3: NOPE is not set"), "{w:?}");
}

const GENERATED: usize = 600;

#[test]
fn generated() {
    if !have_dash() {
        return;
    }
    let seed = seed(0x00c0_ffee);
    let mut rng = Rng::new(seed);
    let mut failures = Vec::new();
    let mut bytes = 0;
    let count = GENERATED * soak();
    for i in 0..count {
        let (files, env) = Gen::new(&mut rng).case();
        bytes += files.iter().map(|f| f.len()).sum::<usize>();
        if let Err(e) = check(&format!("generated #{i} (seed {seed})"), &files, &env) {
            failures.push(e);
            if failures.len() >= 10 {
                break;
            }
        }
    }
    eprintln!("generated: {count} cases ({bytes} bytes), seed {seed}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Bytes worth inserting: every one that means something to sh.
const INTERESTING: &[u8] = b"$${}()'\"\\\n#;&|<>=~ \t\r\0`*?[]:-+!@0aZ_";

fn mutate(rng: &mut Rng, src: &[u8]) -> Vec<u8> {
    let mut v = src.to_vec();
    for _ in 0..1 + rng.below(3) {
        let byte = if rng.pct(70) {
            *rng.pick(INTERESTING)
        } else {
            rng.below(256) as u8
        };
        let at = rng.below(v.len() + 1);
        match rng.below(4) {
            0 => v.insert(at, byte),
            1 if at < v.len() => {
                v.remove(at);
            }
            2 if at < v.len() => v[at] = byte,
            3 if at < v.len() => {
                // Duplicate a short run (doubles quotes, braces, words).
                let end = (at + 1 + rng.below(8)).min(v.len());
                let run = v[at..end].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, run);
            }
            _ => v.insert(at, byte),
        }
    }
    v
}

const MUTATIONS: usize = 3000;

#[test]
fn fuzz() {
    if !have_dash() {
        return;
    }
    let seed = seed(0x00f0_22ed);
    let mut rng = Rng::new(seed);
    // Seeds: the corpus, the Debian files, and some generated files.
    let mut seeds: Vec<Vec<u8>> = common::corpus()
        .into_iter()
        .flat_map(|c| c.files)
        .filter(|f| !f.is_empty())
        .collect();
    seeds.extend(["imapd", "imapd-ssl", "pop3d", "pop3d-ssl"].map(fixture));
    for _ in 0..60 {
        let (files, _) = Gen::new(&mut rng).case();
        seeds.extend(files.into_iter().filter(|f| !f.is_empty()));
    }
    // And files with the newer constructs: words in braces, `. FILE` (of
    // files that exist, so that mutants keep reading them).
    let dot_dir = TempDir::new("fuzz-dot");
    for _ in 0..60 {
        let case = WordGen::new(&mut rng).case();
        let files = case.write(&dot_dir);
        seeds.extend(files.into_iter().filter(|f| !f.is_empty()));
    }
    // Commands in the mutants find nothing to run.
    let env = vec![(b"PATH".to_vec(), b"/nonexistent".to_vec())];
    let (mut accepted, mut refused) = (0, 0);
    let mut failures = Vec::new();
    let count = MUTATIONS * soak();
    for i in 0..count {
        let src = rng.pick(&seeds).clone();
        let m = mutate(&mut rng, &src);
        let files = vec![m];
        let ours = std::panic::catch_unwind(|| our_vars(&files, &env));
        let ours = match ours {
            Ok(r) => r,
            Err(_) => {
                failures.push(format!(
                    "mutation #{i} (seed {seed}): the reader panicked\n{}",
                    show_files(&files)
                ));
                continue;
            }
        };
        let Ok(ours) = ours else {
            // Refusing is always allowed.
            refused += 1;
            continue;
        };
        accepted += 1;
        match dash_vars(&files, &env) {
            Ok(d) if d == ours => {}
            Ok(d) => failures.push(format!(
                "mutation #{i} (seed {seed}): accepted, but dash differs\n{}diff:\n{}",
                show_files(&files),
                diff_vars(&ours, &d)
            )),
            Err(e) => failures.push(format!(
                "mutation #{i} (seed {seed}): accepted, but dash fails: {e}\n{}",
                show_files(&files)
            )),
        }
        if failures.len() >= 10 {
            break;
        }
    }
    eprintln!(
        "fuzz: {count} mutations, seed {seed}: {accepted} accepted (each equal to dash), {refused} refused"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// How many times the default counts the random tests run:
/// `COURIER_RUN_SOAK` (the soak mode), else `COURIER_TEST_SCALE`, else 1.
fn soak() -> usize {
    std::env::var("COURIER_RUN_SOAK")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(scale)
        .max(1)
}

const GENERATED_WORDS: usize = 400;

#[test]
fn generated_words_and_dot() {
    if !have_dash() {
        return;
    }
    let seed = seed(0x0d07_f11e);
    let mut rng = Rng::new(seed);
    let mut failures = Vec::new();
    let (mut accepted, mut refused) = (0, 0);
    let count = GENERATED_WORDS * soak();
    for i in 0..count {
        let case = WordGen::new(&mut rng).case();
        let t = TempDir::new("words");
        let files = case.write(&t);
        let name = format!("words #{i} (seed {seed})");
        // Every generated file is valid: refusing one is a failure too,
        // except the one refusal the generator cannot avoid cheaply.
        match check(&name, &files, &[]) {
            Ok(()) => accepted += 1,
            Err(e) => {
                refused += 1;
                failures.push(format!("{e}{}", show_sourced(&t)));
            }
        }
        if failures.len() >= 10 {
            break;
        }
    }
    eprintln!(
        "generated_words_and_dot: {count} cases, seed {seed}: {accepted} equal to dash, {refused} not"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn show_sourced(t: &TempDir) -> String {
    t.names()
        .iter()
        .filter(|n| n.starts_with('s'))
        .map(|n| format!("  {n}: \"{}\"\n", show(&std::fs::read(t.join(n)).unwrap())))
        .collect()
}

/// A case of [`WordGen`]: the main file and the files it sources, with
/// `@D@` standing for the directory they are written to.
struct WordCase {
    main: Vec<u8>,
    sourced: Vec<Vec<u8>>,
}

impl WordCase {
    /// Write the sourced files as `DIR/s1`, `DIR/s2`, ... (readable by the
    /// sandboxed dash); returns the main file with `@D@` replaced.
    fn write(&self, t: &TempDir) -> Vec<Vec<u8>> {
        let dir = t.path().to_str().expect("temp dir is UTF-8").as_bytes();
        let fill = |src: &[u8]| -> Vec<u8> {
            let mut out = Vec::with_capacity(src.len());
            let mut i = 0;
            while i < src.len() {
                if src[i..].starts_with(b"@D@") {
                    out.extend_from_slice(dir);
                    i += 3;
                } else {
                    out.push(src[i]);
                    i += 1;
                }
            }
            out
        };
        for (i, s) in self.sourced.iter().enumerate() {
            let p = t.join(format!("s{}", i + 1));
            std::fs::write(&p, fill(s)).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        vec![fill(&self.main)]
    }
}

/// Names the word generator assigns and refers to: S is always set and not
/// empty (so `${S?}` passes), E starts empty, D holds the directory.
const WORD_NAMES: &[&str] = &["A", "B", "X", "Y", "_u", "E", "S"];

/// Generates the constructs the first generator does not: quoted and escaped
/// words inside `${...}`, every operator, and `. FILE`.
struct WordGen<'r> {
    rng: &'r mut Rng,
}

impl<'r> WordGen<'r> {
    fn new(rng: &'r mut Rng) -> WordGen<'r> {
        WordGen { rng }
    }

    fn case(&mut self) -> WordCase {
        let nsourced = self.rng.below(3);
        let mut sourced = Vec::new();
        for i in 0..nsourced {
            // s1 may source s2 (a chain two deep).
            let may_source = if i + 1 < nsourced { Some(i + 2) } else { None };
            sourced.push(self.file(may_source, false));
        }
        let main = self.file(if nsourced > 0 { Some(1) } else { None }, true);
        WordCase { main, sourced }
    }

    fn file(&mut self, source: Option<usize>, main: bool) -> Vec<u8> {
        let mut f = Vec::new();
        if main {
            f.extend_from_slice(b"S=set E= D='@D@'\n");
        }
        let lines = 1 + self.rng.below(6);
        let dot_at = source.map(|_| self.rng.below(lines + 1));
        for l in 0..=lines {
            if dot_at == Some(l) {
                let n = source.unwrap();
                f.extend_from_slice(&self.dot_line(n));
            }
            if l == lines {
                break;
            }
            match self.rng.below(8) {
                0 => f.extend_from_slice(b"# comment ${X-'}\n"),
                1 => {
                    f.extend_from_slice(b"export ");
                    self.assignment(&mut f);
                    f.push(b'\n');
                }
                _ => {
                    for k in 0..1 + self.rng.below(2) {
                        if k > 0 {
                            f.push(b' ');
                        }
                        self.assignment(&mut f);
                    }
                    f.push(b'\n');
                }
            }
        }
        f
    }

    fn dot_line(&mut self, n: usize) -> Vec<u8> {
        let forms = [
            "@D@/s%",
            "\"@D@/s%\"",
            "'@D@/s%'",
            "\"@D@\"/s%",
            "@D@/s\\%",
            "$D/s%",
            "\"$D/s%\"",
            "${D}/s%",
            "${NOPE-$D}/s%",
            "\"${NOPE:-$D}\"/s%",
            "${D+\"$D\"}/s%",
        ];
        let form = self.rng.pick(&forms).replace('%', &n.to_string());
        let mut line = b". ".to_vec();
        line.extend_from_slice(form.as_bytes());
        if self.rng.pct(20) {
            line.extend_from_slice(b" # sourced");
        }
        line.push(b'\n');
        line
    }

    fn name(&mut self) -> &'static str {
        // S stays set: never assigned here.
        let n = self.rng.below(WORD_NAMES.len() - 1);
        WORD_NAMES[n]
    }

    fn assignment(&mut self, f: &mut Vec<u8>) {
        f.extend_from_slice(self.name().as_bytes());
        f.push(b'=');
        for _ in 0..1 + self.rng.below(3) {
            match self.rng.below(4) {
                0 => {
                    f.push(b'"');
                    self.dq_body(f, 0, false);
                    f.push(b'"');
                }
                1 => f.extend_from_slice(b"v"),
                _ => self.reference(f, 0, false),
            }
        }
    }

    /// The inside of "..." (`in_braces`: the quotes are inside `${...}`).
    fn dq_body(&mut self, f: &mut Vec<u8>, depth: usize, in_braces: bool) {
        for _ in 0..self.rng.below(5) {
            match self.rng.below(8) {
                0 => {
                    let c = *self.rng.pick(b"$`\"\\");
                    f.extend_from_slice(&[b'\\', c]);
                }
                1 if in_braces => f.extend_from_slice(b"\\}"),
                2 => f.extend_from_slice(b"\\a"),
                3 if depth < 3 => self.reference(f, depth + 1, true),
                _ => {
                    let c = *self.rng.pick(b"a }{'#;|&<>()~ \t\n:=*");
                    f.push(c);
                }
            }
        }
    }

    /// `${NAME op word}` or `$NAME`; `dq`: inside "...".
    fn reference(&mut self, f: &mut Vec<u8>, depth: usize, dq: bool) {
        let name = if self.rng.pct(15) { "S" } else { self.name() };
        if self.rng.pct(15) {
            f.push(b'$');
            f.extend_from_slice(name.as_bytes());
            f.extend_from_slice(b"\\ ");
            return;
        }
        f.extend_from_slice(b"${");
        f.extend_from_slice(name.as_bytes());
        // `?` only on S, which is set: otherwise sh stops.
        let ops: &[&str] = if name == "S" {
            &["-", ":-", "+", ":+", "=", ":=", "?", ":?"]
        } else {
            &["-", ":-", "+", ":+", "=", ":="]
        };
        let op = *self.rng.pick(ops);
        f.extend_from_slice(op.as_bytes());
        for _ in 0..self.rng.below(5) {
            self.word_piece(f, depth, dq);
        }
        f.push(b'}');
    }

    /// One piece of the word of `${NAME op word}`.
    fn word_piece(&mut self, f: &mut Vec<u8>, depth: usize, dq: bool) {
        match self.rng.below(9) {
            0 if depth < 3 => self.reference(f, depth + 1, dq),
            1 => {
                f.push(b'"');
                self.dq_body(f, depth, true);
                f.push(b'"');
            }
            2 if !dq => {
                // Single quotes (a plain byte inside "...").
                f.push(b'\'');
                for _ in 0..self.rng.below(4) {
                    f.push(*self.rng.pick(b"a }${\"\\#;\n~"));
                }
                f.push(b'\'');
            }
            3 if !dq => {
                let c = *self.rng.pick(b"}{'\"\\$ ;#a~*");
                f.extend_from_slice(&[b'\\', c]);
            }
            3 => {
                let c = *self.rng.pick(b"}$\"\\a'");
                f.extend_from_slice(&[b'\\', c]);
            }
            4 => f.extend_from_slice(b"$/"),
            _ => {
                let c = if dq {
                    *self.rng.pick(b"a {'#;|&<>()~ \t\n:=*")
                } else {
                    *self.rng.pick(b"a {#;|&<>() \t\n:=*")
                };
                f.push(c);
            }
        }
    }
}

/// Hand-written words inside `${...}` and the `=` and `?` operators, each
/// compared with dash (the generator covers their combinations).
#[rustfmt::skip]
const WORDS: &[(&str, &[u8])] = &[
    ("squote", b"A=${X-'a b'} B=${X-'}'} C=${X-a'}'b}\n"),
    ("dquote", b"A=${X-\"a b\"} B=${X-\"a}b\"} C=${X-\"a\\}b\"} D=${X-\"a\\\"b\"}\n"),
    ("escapes", b"A=${X-a\\}b} B=${X-a\\'b} C=${X-\\\\} D=${X-\\a} E=${X-\\ }\n"),
    ("in_dquotes", b"A=\"${X-'a b'}\" B=\"${X-\"a b\"}\" C=\"${X-a\\}b}\" D=\"${X-a\\'b}\"\n"),
    ("in_dquotes_more", b"A=\"${X-'}'x}\" B=\"${X-\\\\}\" C=\"${X-\\a}\" D=\"${X-\"\\a\"}\" E=\"${X-\"'\"}\"\n"),
    ("operators_are_bytes", b"A=${X-a;b} B=${X-a|b&c<d>e(f)g} C=${X-a#b} D=${X-#b} E=${X-a{b}c}\n"),
    ("newline_inside", b"A=${X-a\nb} B=\"${X-a\nb}\" C=${X-'a\\\nb'} D=${X-\"a\\\nb\"}\n"),
    ("nested_quotes", b"A=${X-\"${Y-'q'}\"} B=\"${X-${Y-\"q r\"}}\" C=${X-${Y-\"q}r\"}}\n"),
    ("dollar_literal", b"A=${X-\"$\"} B=${X-$} C=\"${X-$}\" D=${X-\"\\$\"} E=\"${X-\\$}\"\n"),
    ("tilde_quoted", b"A=${X-\"~\"} B=\"${X-~}\" C=${X-'~'}\n"),
    ("assign", b"A=${X='a b'} B=$X C=\"${Y=a\\}b}\" D=$Y\n"),
    ("assign_colon", b"X= A=${X:=z} B=${X:=q} C=$X\n"),
    ("assign_then_override", b"A=${X=1} X=2 B=$X\n"),
    ("assign_in_export", b"export A=${X=1} B=$X\n"),
    ("assign_set_keeps", b"X=v A=${X=w} B=${X:=w}\n"),
    ("error_set", b"X=1 A=${X?\"oops\"} B=${X:?} C=\"${X?x y}\"\n"),
    ("error_empty_set", b"X= A=${X?no}\n"),
];

#[test]
fn words() {
    if !have_dash() {
        return;
    }
    let failures: Vec<String> = WORDS
        .iter()
        .filter_map(|(name, src)| check(name, &[src.to_vec()], &[]).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
