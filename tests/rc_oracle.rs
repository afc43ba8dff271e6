//! Oracle tests (no network) for the four Courier services on Debian 12:
//! the environment Courier's own rc script gives its final program
//! (tests/fixtures/rc-oracle/*.env0, made by make.sh from the real rc
//! scripts run by dash) against the plan's environment, computed by the
//! launch's own code (`--dry-run --format json`). And make.sh is re-run
//! here, so the fixture cannot rot.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TempDir, Vars, have, run};
use courier_run::service::Service;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `env -0` output as a map (the harness's parser).
fn parse_env0(bytes: &[u8]) -> Vars {
    common::parse_env0(bytes).unwrap_or_else(|e| panic!("{e}"))
}

fn show(m: &BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    m.iter()
        .map(|(k, v)| {
            format!(
                "{}={}\n",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(v)
            )
        })
        .collect()
}

/// The oracle of one service, as committed.
fn oracle(svc: Service) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let p = fixtures().join(format!("rc-oracle/{}.env0", svc.name()));
    parse_env0(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
}

#[test]
fn make_sh_reproduces_the_committed_oracle() {
    if !have(
        "dash (runs Courier's rc scripts)",
        Path::new("/usr/bin/dash").exists() || Path::new("/bin/dash").exists(),
    ) {
        return;
    }
    let t = TempDir::new("rc-oracle");
    let out = t.join("out");
    let mut cmd = Command::new("sh");
    cmd.arg(fixtures().join("rc-oracle/make.sh")).arg(&out);
    let r = run(cmd, t.path(), Duration::from_secs(30));
    assert_eq!(r.exit(), 0, "make.sh failed: {}", r.stderr_str());
    for svc in Service::ALL {
        let name = format!("{}.env0", svc.name());
        let fresh = std::fs::read(out.join(&name)).unwrap();
        let committed = std::fs::read(fixtures().join("rc-oracle").join(&name)).unwrap();
        // dash prints its environment in hash order, which is stable for
        // one dash; compare as maps so a dash update does not break this.
        assert_eq!(
            show(&parse_env0(&fresh)),
            show(&parse_env0(&committed)),
            "{name}: the rc script now gives a different environment: re-run make.sh and review"
        );
    }
}

/// The plan of one Debian service for `config` (json), with nothing
/// inherited but PATH and SHELL and no account, envdir or front end.
fn plan_json(svc: &str, config: &str, keep: &str) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .args(["--dry-run", "--format", "json"])
        .args(["--set", "layout=debian"])
        .args(["--set", &format!("service={svc}")])
        .args(["--set", &format!("config={config}")])
        .args(["--set", &format!("inherit_env={keep}")])
        .args([
            "--set",
            "account=",
            "--set",
            "envdir=",
            "--set",
            "server=/bin/true",
        ])
        .output()
        .expect("courier-run runs");
    assert!(
        out.status.success(),
        "{svc}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The outer shell's value is what the rc pastes: with imapd.rc, a value
/// of IMAPDSTARTTLS set in BOTH files comes from imapd (sourced last
/// outside), though imapd-ssl is sourced last inside; a pasted value that
/// sh would parse again is a warning.
#[test]
fn outer_value_wins_over_inner_order() {
    let t = TempDir::new("rc-outer");
    std::fs::write(
        t.join("imapd"),
        "IMAPDSTARTTLS=NO\nX=imapd\nPROXY_HOSTNAME=\"a b\"\n",
    )
    .unwrap();
    std::fs::write(t.join("imapd-ssl"), "IMAPDSTARTTLS=YES\nX=ssl\n").unwrap();
    let config = format!("{0}/imapd {0}/imapd-ssl", t.path().display());
    let plan = plan_json("imapd", &config, "none");
    let env = &plan["env"];
    assert_eq!(env["IMAP_STARTTLS"], "NO", "{plan}");
    assert_eq!(env["IMAPDSTARTTLS"], "YES", "{plan}");
    assert_eq!(env["X"], "ssl", "{plan}");
    assert_eq!(env["PROXY_HOSTNAME"], "a b", "{plan}");
    let warnings = plan["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w
            .as_str()
            .unwrap()
            .starts_with("PROXY_HOSTNAME: Courier's imapd script pastes")),
        "{warnings:?}"
    );
}

/// What each rc adds after the config files, seen in the oracle itself
/// (so a wrong table entry and a wrong oracle cannot agree by accident).
#[test]
fn oracle_shows_the_rc_assignments() {
    let get = |svc, n: &str| oracle(svc).get(n.as_bytes()).cloned();
    assert_eq!(
        get(Service::Imapd, "IMAP_STARTTLS").as_deref(),
        Some(&b"YES"[..])
    );
    assert_eq!(get(Service::Imapd, "IMAP_TLS"), None);
    assert_eq!(
        get(Service::ImapdSsl, "IMAP_TLS").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(get(Service::ImapdSsl, "IMAP_STARTTLS"), None);
    assert_eq!(
        get(Service::Pop3d, "POP3_STARTTLS").as_deref(),
        Some(&b"YES"[..])
    );
    assert_eq!(
        get(Service::Pop3dSsl, "POP3_STARTTLS").as_deref(),
        Some(&b"NO"[..])
    );
    assert_eq!(
        get(Service::Pop3dSsl, "POP3_TLS").as_deref(),
        Some(&b"1"[..])
    );
    assert_eq!(
        get(Service::Pop3dSsl, "PATH").as_deref(),
        Some(&b"/usr/bin:/bin"[..])
    );
    assert_eq!(get(Service::Pop3d, "PATH"), None);
    for svc in Service::ALL {
        assert_eq!(
            get(svc, "PROXY_HOSTNAME").as_deref(),
            Some(&b""[..]),
            "{svc}"
        );
        assert_eq!(get(svc, "prefix").as_deref(), Some(&b"/usr"[..]), "{svc}");
    }
}

/// The launch's own environment (the plan that `--dry-run --format json`
/// prints, which the launcher tests show is exactly what the program gets)
/// equals the oracle for each service, byte for byte, except for the
/// differences the README lists: dash's `PWD`, and the rc's build variables
/// (`prefix`, `exec_prefix`, `sbindir`, `bindir`, `libexecdir`) that its
/// `set -a` exports and courier-run only predefines for references. The
/// rc's `env -i` is `inherit_env` here: none, or `PATH SHELL` for
/// pop3d-ssl.rc, which passes those two.
#[test]
fn plan_environment_equals_the_rc_scripts() {
    const DIFFERENCES: &[&str] = &[
        "PWD",
        "prefix",
        "exec_prefix",
        "sbindir",
        "bindir",
        "libexecdir",
    ];
    let fix = fixtures().join("debian12");
    for svc in ["imapd", "imapd-ssl", "pop3d", "pop3d-ssl"] {
        let service = Service::parse(svc).expect("a service");
        let base = if svc.starts_with("imapd") {
            "imapd"
        } else {
            "pop3d"
        };
        let config = format!("{0}/{base} {0}/{base}-ssl", fix.display());
        let keep = if svc == "pop3d-ssl" {
            "PATH SHELL"
        } else {
            "none"
        };
        let plan = plan_json(svc, &config, keep);
        let got: BTreeMap<Vec<u8>, Vec<u8>> = plan["env"]
            .as_object()
            .expect("env object")
            .iter()
            .map(|(k, v)| {
                (
                    k.as_bytes().to_vec(),
                    v.as_str().expect("string").as_bytes().to_vec(),
                )
            })
            .collect();
        let mut want = oracle(service);
        want.retain(|k, _| !DIFFERENCES.iter().any(|d| d.as_bytes() == k.as_slice()));
        assert!(
            got == want,
            "{svc}: the plan's environment differs from Courier's rc\n--- plan\n{}--- rc\n{}",
            show(&got),
            show(&want)
        );
        // And each listed difference is real (the list is not stale).
        let all = oracle(service);
        assert!(all.contains_key(b"PWD".as_slice()), "{svc}: the rc has PWD");
        assert!(
            all.contains_key(b"prefix".as_slice()),
            "{svc}: the rc exports prefix"
        );
    }
}
