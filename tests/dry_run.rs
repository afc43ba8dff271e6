//! Small dry-run facts through the binary: argv shapes and refusals that
//! need no peer program (the full dry-run truth is in launcher/).

use std::process::Command;

fn dry(args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!(
        "courier-run-dry-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("imapd"), "PORT=1143\nMAILDIRPATH=Mail\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .current_dir(&dir)
        .args([
            "--dry-run",
            "--format",
            "json",
            "--set",
            "config=./imapd",
            "--set",
            "account=",
            "--set",
            "server=/bin/true -v",
        ])
        .args(args)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn argv(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).expect("json");
    v["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn courier2_chain_order() {
    let (code, out, err) = dry(&["--set", "auth=authpwd authcram", "--set", "rules="]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        argv(&out),
        [
            "/bin/true",
            "-v",
            "-c",
            "40",
            "0",
            "1143",
            "/usr/local/courier-imap/sbin/imaplogin",
            "/usr/local/courier-imap/libexec/authlib/authpwd",
            "/usr/local/courier-imap/libexec/authlib/authcram",
            "/usr/local/courier-imap/bin/imapd",
            "Mail",
        ]
    );
}

#[test]
fn empty_login_runs_imapd_preauthenticated() {
    let (code, out, err) = dry(&["--set", "login=", "--set", "auth=", "--set", "rules="]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        argv(&out),
        [
            "/bin/true",
            "-v",
            "-c",
            "40",
            "0",
            "1143",
            "/usr/local/courier-imap/bin/imapd",
            "Mail"
        ]
    );
    let (code, _, err) = dry(&["--set", "login=", "--set", "auth=authpwd"]);
    assert_eq!(code, 100);
    assert!(
        err.contains("--set auth modules need a login program"),
        "{err}"
    );
}

#[test]
fn unset_reference_is_a_warning_in_the_plan() {
    let dir = std::env::temp_dir().join(format!("courier-run-dry-w-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("c"), "X=$NOT_SET_ANYWHERE\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .current_dir(&dir)
        .env_remove("NOT_SET_ANYWHERE")
        .args(["--dry-run", "--format", "json", "--set", "config=./c"])
        .args(["--set", "account=", "--set", "server=/bin/true"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        v["warnings"][0],
        "./c:1:3: NOT_SET_ANYWHERE is not set: $NOT_SET_ANYWHERE expands to the empty string"
    );
    assert_eq!(v["env"]["X"], "");
}

#[test]
fn explain_names_every_origin() {
    let dir = std::env::temp_dir().join(format!("courier-run-dry-x-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("c"), "PORT=1143\nA=1\n").unwrap();
    std::fs::write(
        dir.join("run"),
        "layout=debian\nconfig=./c\naccount=nobody\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .current_dir(&dir)
        .env_clear()
        .env("KEEP", "k")
        .env("PATH", "/usr/bin:/bin")
        .args(["./run", "--dry-run", "--format", "json", "--explain"])
        .args(["--set", "server=/bin/true", "--set", "conlimit=7"])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["origins"]["KEEP"], "inherited");
    assert_eq!(v["origins"]["UID"], "envuidgid");
    assert_eq!(v["origins"]["GID"], "envuidgid");
    assert_eq!(v["origins"]["A"], "./c:2:1");
    assert_eq!(v["settings"]["port"]["value"], "1143");
    assert_eq!(v["settings"]["port"]["origin"], "./c:1:6");
    assert_eq!(v["settings"]["conlimit"]["origin"], "--set");
    assert_eq!(v["settings"]["account"]["origin"], "./run:3:9");
    assert_eq!(v["settings"]["login"]["origin"], "default");
}

#[test]
fn help_lists_every_setting_with_both_defaults() {
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .arg("--help")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for name in courier_run::settings::names() {
        assert!(
            help.lines().any(|l| l.starts_with(&format!("  {name} "))),
            "--help lacks the setting {name}"
        );
    }
    assert!(help.contains("[courier2: courierd; debian: courier]"));
    // A usage error is exit 100, as daemontools' usage errors.
    let out = Command::new(env!("CARGO_BIN_EXE_courier-run"))
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(100));
}
