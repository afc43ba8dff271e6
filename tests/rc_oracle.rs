//! Oracle tests (no network) for the four Courier services on Debian 12:
//! the environment Courier's own rc script gives its final program
//! (tests/fixtures/rc-oracle/*.env0, made by make.sh from the real rc
//! scripts run by dash) against `service::Service::rc_env`, the model the
//! plan uses. And make.sh is re-run here, so the fixture cannot rot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use courier_run::service::Service;
use courier_run::settings::Layout;

/// Present, or skipped with a reason; under CI=true a missing peer fails.
fn have(what: &str, found: bool) -> bool {
    if found {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{what} is required in CI (CI=true) but is not installed");
    }
    eprintln!("SKIPPED: {what} is not installed (install it to run this test)");
    false
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `env -0` output as a map.
fn parse_env0(bytes: &[u8]) -> BTreeMap<Vec<u8>, Vec<u8>> {
    bytes
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(|e| {
            let i = e.iter().position(|&b| b == b'=').expect("NAME=value");
            (e[..i].to_vec(), e[i + 1..].to_vec())
        })
        .collect()
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
    let out = std::env::temp_dir().join(format!("cr-rc-oracle-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new("sh")
        .arg(fixtures().join("rc-oracle/make.sh"))
        .arg(&out)
        .spawn()
        .expect("sh runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("make.sh did not finish in 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "make.sh failed: {status}");
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
    std::fs::remove_dir_all(&out).unwrap();
}

/// The model equals the rc, byte for byte, except dash's PWD (the rc's
/// working directory; see notes/README-tls.md, "Differences").
#[test]
fn rc_env_model_equals_the_rc_scripts() {
    let outer = [
        ("PATH".to_string(), b"/usr/bin:/bin".to_vec()),
        ("SHELL".to_string(), b"/bin/sh".to_vec()),
    ];
    for svc in Service::ALL {
        let mut want = oracle(svc);
        let pwd = want.remove(&b"PWD"[..]);
        let want_pwd: &[u8] = if svc == Service::Pop3d { b"/usr" } else { b"/" };
        assert_eq!(pwd.as_deref(), Some(want_pwd), "{svc}: dash's PWD");
        let got = svc
            .rc_env(Layout::Debian, "/usr", &fixtures().join("debian12"), &outer)
            .unwrap();
        assert!(got.warnings.is_empty(), "{svc}: {:?}", got.warnings);
        let got: BTreeMap<Vec<u8>, Vec<u8>> = got
            .vars
            .into_iter()
            .map(|(n, v)| (n.into_bytes(), v))
            .collect();
        assert_eq!(show(&got), show(&want), "{svc}: model vs Courier's rc");
    }
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
