//! Argv oracle for `server=couriertcpd`: each of Debian 12's four Courier
//! rc scripts (tests/fixtures/debian12/*.rc) is run by dash with
//! `courierlogger -pid=... -start ...` replaced by a recorder, so the
//! recorder is exec'd with exactly the couriertcpd command line the rc
//! builds (and the environment it gives it). The plan's argv
//! (`courier-run --dry-run --format json`, layout=debian, whose default
//! front end is couriertcpd) must equal it word for word, and the plan's
//! environment must equal the recorded one except for the differences
//! tests/rc_oracle.rs lists (dash's PWD, the rc's build variables).
//!
//! The configs are copies of Debian's with values that would show a
//! mistake: an address, a port list, IMAPACCESSFILE in the test's
//! directory, and TCPDOPTS with a quoted value (the rc's inner shell parses
//! the pasted text: `-denymsg='go away'` is ONE word, `-denymsg=go away`).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{BIN, TempDir, have, run};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12")
}

/// What the rc's `$TCPDOPTS` etc. are in the copies.
const IMAP_EXTRA: &str = "\nADDRESS=127.0.0.1\nPORT=127.0.0.1.143,10143\nMAXDAEMONS=7\nMAXPERIP=3\nTCPDOPTS=\"-nodnslookup -noidentlookup -denymsg='go away'\"\nIMAPACCESSFILE=@DIR@/imapaccess\n";
const POP_EXTRA: &str =
    "\nADDRESS=127.0.0.1\nMAXPERIP=2\nTCPDOPTS=\"-nodnslookup -noidentlookup -maxperc=9\"\n";

fn split0(b: &[u8]) -> Vec<String> {
    b.split(|&c| c == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect()
}

fn env_map(b: &[u8]) -> BTreeMap<String, String> {
    split0(b)
        .into_iter()
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.into(), v.into())))
        .collect()
}

/// Run Courier's rc for `svc` with the recorder: (argv, env) couriertcpd
/// would have got.
fn record(t: &TempDir, svc: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let out = t.join(format!("rec-{svc}"));
    std::fs::create_dir_all(&out).unwrap();
    let recorder = t.write(
        format!("recorder-{svc}"),
        format!(
            "#!/bin/sh\nprintf '%s\\0' \"$@\" > {0}/argv\nexec /usr/bin/env -0 > {0}/env\n",
            out.display()
        ),
    );
    std::fs::set_permissions(
        &recorder,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let rc = std::fs::read_to_string(fixtures().join(format!("{svc}.rc"))).unwrap();
    let etc = format!("{}/", t.join("etc").display());
    let mut script = String::new();
    let mut replaced = false;
    for line in rc.lines() {
        let mut l = line
            .replace("/etc/courier/", &etc)
            .replace("${sysconfdir}/", &etc);
        // The TLS_CACHEFILE reset touches nothing of ours: neutralized.
        let reset = ["rm -f ", "touch ", "chown ", "chgrp ", "chmod "]
            .iter()
            .any(|c| l.trim_start().starts_with(c));
        if reset {
            l = ":".into();
        }
        l = l.replace("$sbindir/makeimapaccess", ":");
        l = l.replace("mkdir -p `dirname", ": `dirname");
        if let Some(i) = l.find("/usr/sbin/courierlogger -pid=$")
            && l.contains("-start")
        {
            // courierlogger -pid=$X -start $YOPTS \ -> exec RECORDER \
            let rest = &l[i..];
            let end = rest.find("LOGGEROPTS").expect("LOGGEROPTS") + "LOGGEROPTS".len();
            l = format!("{}exec {}{}", &l[..i], recorder.display(), &rest[end..]);
            replaced = true;
        }
        script.push_str(&l);
        script.push('\n');
    }
    assert!(replaced, "{svc}.rc: no courierlogger line");
    let path = t.write(format!("{svc}.rc"), script);
    let mut cmd = Command::new("env");
    cmd.args(["-i", "PATH=/usr/bin:/bin", "SHELL=/bin/sh", "dash"])
        .arg(&path)
        .arg("start");
    let r = run(cmd, Path::new("/"), Duration::from_secs(30));
    assert_eq!(r.exit(), 0, "{svc}.rc: {}", r.stderr_str());
    let argv = split0(&std::fs::read(out.join("argv")).expect("the recorder ran"));
    let env = env_map(&std::fs::read(out.join("env")).unwrap());
    (argv, env)
}

/// The plan of `svc` with the copies: (argv, env).
fn plan(t: &TempDir, svc: &str, account: &str) -> (Vec<String>, BTreeMap<String, String>) {
    let base = if svc.starts_with("imapd") {
        "imapd"
    } else {
        "pop3d"
    };
    let etc = t.join("etc");
    let config = format!("{0}/{base} {0}/{base}-ssl", etc.display());
    let keep = if svc == "pop3d-ssl" {
        "PATH SHELL"
    } else {
        "none"
    };
    let out = Command::new(BIN)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SHELL", "/bin/sh")
        .args(["--dry-run", "--format", "json"])
        .args(["--set", "layout=debian"])
        .args(["--set", &format!("service={svc}")])
        .args(["--set", &format!("config={config}")])
        .args(["--set", &format!("inherit_env={keep}")])
        .args(["--set", &format!("account={account}")])
        .args(["--set", "envdir="])
        .output()
        .expect("courier-run runs");
    assert!(
        out.status.success(),
        "{svc}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let argv = p["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    let env = p["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    (argv, env)
}

#[test]
fn plan_argv_and_env_equal_debian_rc_scripts() {
    let dash = Path::new("/usr/bin/dash").exists() || Path::new("/bin/dash").exists();
    if !have("dash (runs Courier's rc scripts)", dash)
        || !have(
            "the courier account (courier-base), for couriertls -user=courier",
            nix::unistd::User::from_name("courier")
                .ok()
                .flatten()
                .is_some(),
        )
        || !common::have_file("/usr/sbin/couriertcpd", "courier-base")
    {
        return;
    }
    let t = TempDir::new("tcpd-oracle");
    let etc = t.mkdir("etc", 0o755);
    for (base, extra) in [("imapd", IMAP_EXTRA), ("pop3d", POP_EXTRA)] {
        for f in [base.to_string(), format!("{base}-ssl")] {
            let mut text = std::fs::read_to_string(fixtures().join(&f)).unwrap();
            if f == base {
                text.push_str(&extra.replace("@DIR@", &etc.display().to_string()));
            }
            std::fs::write(etc.join(&f), text).unwrap();
        }
    }
    std::fs::write(etc.join("imapaccess"), "127.0.0.5\tdeny\n").unwrap();
    // What the plan and the rc may differ in: see tests/rc_oracle.rs.
    const DIFFERENCES: &[&str] = &[
        "PWD",
        "prefix",
        "exec_prefix",
        "sbindir",
        "bindir",
        "libexecdir",
    ];
    for svc in ["imapd", "imapd-ssl", "pop3d", "pop3d-ssl"] {
        let (rc_argv, mut rc_env) = record(&t, svc);
        // The rc's account is courier (couriertls -user=courier).
        let (argv, _) = plan(&t, svc, "courier");
        assert_eq!(argv, rc_argv, "{svc}: plan argv vs Courier's rc");
        assert!(!argv.iter().any(|w| w.starts_with("-pid")), "{svc}");
        // Without account= the plan adds no UID/GID (envuidgid's): its
        // environment is the rc's.
        let (_, env) = plan(&t, svc, "");
        rc_env.retain(|k, _| !DIFFERENCES.contains(&k.as_str()));
        assert_eq!(env, rc_env, "{svc}: plan environment vs Courier's rc");
    }
    // The values that show a mistake are there.
    let (a, _) = record(&t, "imapd");
    assert!(a.contains(&"-denymsg=go away".to_string()), "{a:?}");
    assert!(a.contains(&"127.0.0.1.143,10143".to_string()), "{a:?}");
    assert!(a.contains(&format!("-access={}/imapaccess.dat", etc.display())));
    let (p, _) = record(&t, "pop3d");
    assert!(!p.iter().any(|w| w.starts_with("-access")), "{p:?}");
}
