//! The man pages and the shell completions, used as an admin uses them:
//! every page the main page names is one `courier-run man PAGE` prints and
//! the package installs, each lints clean with mandoc; the completion
//! scripts complete in real bash and fish (`courier-run init --s<TAB>`) and
//! zsh accepts its script; nothing hidden is offered.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{BIN, Ran, TempDir, have, run, which};

fn ran(cmd: Command) -> Ran {
    run(cmd, Path::new("/"), Duration::from_secs(60))
}

fn courier_run(args: &[&str]) -> Ran {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    ran(cmd)
}

/// The pages the main page's SEE ALSO names as courier-run's own.
fn own_pages(main: &str) -> Vec<String> {
    main.lines()
        .filter_map(|l| l.strip_prefix(".BR "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, _)| name.replace("\\-", "-"))
        .filter(|n| n.starts_with("courier-run"))
        .collect()
}

#[test]
fn man_pages_exist_lint_clean_and_are_packaged() {
    let main = courier_run(&["man"]);
    assert_eq!(main.exit(), 0, "{}", main.stderr_str());
    let text = main.stdout_str();
    assert!(text.contains(".TH courier-run 1"), "{text}");
    for section in ["EXIT STATUS", "FILES", "EXAMPLES", "SEE ALSO", "SETTINGS"] {
        assert!(
            text.contains(section),
            "{section} missing from the man page"
        );
    }
    for word in ["\\-\\-dry\\-run", "\\-\\-check", "init", "completions"] {
        assert!(text.contains(word), "{word} missing from the man page");
    }
    let pages = own_pages(&text);
    assert!(pages.iter().any(|p| p == "courier-run-init"), "{pages:?}");
    assert!(!pages.iter().any(|p| p == "courier-run-man"), "{pages:?}");
    // Every page named is one the package installs (.ci/package builds the
    // set from `courier-run man` and Cargo.toml installs target/man/*).
    let package = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/package"))
        .expect(".ci/package");
    assert!(
        package.contains("man-pages"),
        ".ci/package builds the pages"
    );
    let cargo = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("Cargo.toml");
    assert!(
        cargo.contains("\"target/man/*.1.gz\""),
        "Cargo.toml installs every built page"
    );
    let t = TempDir::new("man");
    let lint = have("mandoc", which("mandoc").is_some());
    for page in std::iter::once("courier-run".to_string()).chain(pages) {
        let out = courier_run(&["man", &page]);
        assert_eq!(out.exit(), 0, "{page}: {}", out.stderr_str());
        assert!(
            out.stdout_str().contains(&format!(".TH {page} 1")),
            "{page}"
        );
        if !lint {
            continue;
        }
        let f = t.join(format!("{page}.1"));
        std::fs::write(&f, &out.stdout).unwrap();
        let mut cmd = Command::new("mandoc");
        cmd.args(["-T", "lint", "-W", "warning"]).arg(&f);
        let l = ran(cmd);
        let msgs = l.stdout_str() + &l.stderr_str();
        assert!(l.exit() == 0 && msgs.trim().is_empty(), "{page}: {msgs}");
    }
    // A page that does not exist is a usage error naming the pages.
    let bad = courier_run(&["man", "courier-run-man"]);
    assert_eq!(bad.exit(), 100);
    assert!(
        bad.stderr_str().contains("courier-run-init"),
        "{}",
        bad.stderr_str()
    );
}

/// The script of `shell`, written to a file in `t`.
fn script(t: &TempDir, shell: &str) -> std::path::PathBuf {
    let out = courier_run(&["completions", shell]);
    assert_eq!(out.exit(), 0, "completions {shell}");
    let f = t.join(format!("completion.{shell}"));
    std::fs::write(&f, &out.stdout).unwrap();
    f
}

/// bash: `complete -p` names the function; completing `courier-run init
/// --s` offers init's three options (--set writes a setting into the
/// run file); the top level offers the subcommands
/// and not the hidden `man`.
#[test]
fn bash_completes_subcommands_and_their_options() {
    assert!(which("bash").is_some(), "bash is on every Debian machine");
    let t = TempDir::new("comp-bash");
    let f = script(&t, "bash");
    let complete = |words: &str| {
        let prog = format!(
            r#"source "$1"; complete -p courier-run || exit 9
COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="{words}"; COMP_POINT=${{#COMP_LINE}}
_courier__run courier-run "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD-1]}}"
printf '%s\n' "${{COMPREPLY[@]}}""#
        );
        let mut cmd = Command::new("bash");
        cmd.arg("-c").arg(prog).arg("bash").arg(&f);
        let out = ran(cmd);
        assert_eq!(out.exit(), 0, "{words}: {}", out.stderr_str());
        out.stdout_str()
    };
    let init = complete("courier-run init --s");
    let got: Vec<&str> = init.lines().filter(|l| l.starts_with("--")).collect();
    assert_eq!(got, ["--service", "--supervisor", "--set"], "{init}");
    let top = complete("courier-run ''");
    for sub in ["init", "conf2env", "completions"] {
        assert!(top.split_whitespace().any(|w| w == sub), "{sub}: {top}");
    }
    assert!(!top.split_whitespace().any(|w| w == "man"), "{top}");
}

/// fish: the same questions through fish's own `complete -C`.
#[test]
fn fish_completes_subcommands_and_their_options() {
    if !have("fish", which("fish").is_some()) {
        return;
    }
    let t = TempDir::new("comp-fish");
    let f = script(&t, "fish");
    let complete = |line: &str| {
        let mut cmd = Command::new("fish");
        cmd.arg("-c")
            .arg(format!("source $argv[1]; complete -C '{line}'"))
            .arg(&f);
        let out = ran(cmd);
        assert_eq!(out.exit(), 0, "{line}: {}", out.stderr_str());
        out.stdout_str()
    };
    let init = complete("courier-run init --s");
    let got: Vec<&str> = init
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert_eq!(got, ["--service", "--set", "--supervisor"], "{init}");
    let top = complete("courier-run ");
    let words: Vec<&str> = top
        .lines()
        .map(|l| l.split('\t').next().unwrap_or(""))
        .collect();
    assert!(words.contains(&"init"), "{top}");
    assert!(!words.contains(&"man"), "{top}");
}

/// zsh: the script parses and is a `#compdef courier-run` function that
/// knows init's options (zsh completes only inside its line editor).
#[test]
fn zsh_accepts_its_script() {
    if !have("zsh", which("zsh").is_some()) {
        return;
    }
    let t = TempDir::new("comp-zsh");
    let f = script(&t, "zsh");
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(text.starts_with("#compdef courier-run"), "{text}");
    assert!(text.contains("--supervisor"), "{text}");
    assert!(!text.contains("'man:"), "{text}");
    let mut cmd = Command::new("zsh");
    cmd.arg("-n").arg(&f);
    let out = ran(cmd);
    assert_eq!(out.exit(), 0, "zsh -n: {}", out.stderr_str());
    // Loaded by compinit as the package installs it: no error.
    let dir = t.join("fpath");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(&f, dir.join("_courier-run")).unwrap();
    let mut cmd = Command::new("zsh");
    cmd.arg("-fc")
        .arg(r#"fpath=($1 $fpath); autoload -U compinit; compinit -u -D; autoload -U +X _courier-run && print ok"#)
        .arg("zsh")
        .arg(&dir)
        .env("HOME", t.path());
    let out = ran(cmd);
    assert_eq!(out.exit(), 0, "zsh compinit: {}", out.stderr_str());
    assert_eq!(out.stdout_str().trim(), "ok");
}
