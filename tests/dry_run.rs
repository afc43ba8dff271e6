//! Small dry-run facts through the binary: argv shapes and refusals that
//! need no peer program (the full dry-run truth is in launcher/).

mod common;

use std::process::Command;

use common::{BIN, Ran, TempDir, have, run_cmd, run_into_closed_pipe, which};

/// The arguments every dry run here starts with: a config of our own, no
/// account, /bin/true for a server.
/// A usable TLS_CERTFILE (self-signed, valid for 100 years).
const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/server.pem");

const BASE: &[&str] = &[
    "--set",
    "config=./imapd",
    "--set",
    "account=",
    "--set",
    "server=/bin/true -v",
];

/// A scratch directory holding ./imapd.
fn scratch() -> TempDir {
    let t = TempDir::new("dry");
    t.write("imapd", "PORT=1143\nMAILDIRPATH=Mail\n");
    t
}

fn dry(args: &[&str]) -> (i32, String, String) {
    let t = scratch();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .args(["--dry-run", "--format", "json"])
        .args(BASE)
        .args(args);
    let r = run_cmd(cmd);
    (r.exit(), r.stdout_str(), r.stderr_str())
}

fn json(r: &Ran) -> serde_json::Value {
    serde_json::from_slice(&r.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            r.stdout_str(),
            r.stderr_str()
        )
    })
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
    let t = TempDir::new("dry-w");
    t.write("c", "X=$NOT_SET_ANYWHERE\n");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .env_remove("NOT_SET_ANYWHERE")
        .args(["--dry-run", "--format", "json", "--set", "config=./c"])
        .args(["--set", "account=", "--set", "server=/bin/true"]);
    let v = json(&run_cmd(cmd));
    assert_eq!(
        v["warnings"][0],
        "./c:1:3: NOT_SET_ANYWHERE is not set: $NOT_SET_ANYWHERE expands to the empty string"
    );
    assert_eq!(v["env"]["X"], "");
}

#[test]
fn explain_names_every_origin() {
    let t = TempDir::new("dry-x");
    t.write("c", "PORT=1143\nA=1\n");
    t.write("run", "layout=debian\nconfig=./c\naccount=nobody\n");
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .env_clear()
        .env("KEEP", "k")
        .env("PATH", "/usr/bin:/bin")
        .args(["./run", "--dry-run", "--format", "json", "--explain"])
        .args(["--set", "server=/bin/true", "--set", "conlimit=7"]);
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let v = json(&r);
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
    let mut cmd = Command::new(BIN);
    cmd.arg("--help");
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0);
    let help = r.stdout_str();
    for name in courier_run::settings::names() {
        assert!(
            help.lines().any(|l| l.starts_with(&format!("  {name} "))),
            "--help lacks the setting {name}"
        );
    }
    assert!(help.contains("[courier2: courierd; debian: courier]"));
    // A usage error is exit 100, as daemontools' usage errors.
    let mut cmd = Command::new(BIN);
    cmd.arg("--no-such-flag");
    assert_eq!(run_cmd(cmd).exit(), 100);
}

/// `courier-run --dry-run` (text, json, sh) into a pipe whose reader is
/// gone, and `courier-run --dry-run | head -n 1` under bash's pipefail
/// (courier-run's own status): the end of the output, exit 0, no "Broken
/// pipe".
#[test]
fn closed_pipe_ends_the_plan() {
    let t = scratch();
    for format in ["text", "json", "sh"] {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path())
            .args(["--dry-run", "--format", format])
            .args(BASE);
        let r = run_into_closed_pipe(cmd);
        assert_eq!(
            (r.code, r.stderr_str()),
            (Some(0), String::new()),
            "--dry-run --format {format} into a closed pipe"
        );
    }
    if !have("bash (for set -o pipefail)", which("bash").is_some()) {
        return;
    }
    let mut cmd = Command::new("bash");
    cmd.current_dir(t.path())
        .args([
            "-c",
            r#"set -o pipefail; "$@" | head -n 1; echo "status $?" >&2"#,
        ])
        .arg("bash")
        .arg(BIN)
        .arg("--dry-run")
        .args(BASE);
    let r = run_cmd(cmd);
    assert_eq!(r.stdout_str().lines().count(), 1, "{}", r.stdout_str());
    assert_eq!(r.stderr_str(), "status 0\n", "--dry-run | head -n 1");
}

/// Option combinations the parser refuses (exit 100, nothing on stdout):
/// `--explain` belongs to `--dry-run`, `--format sh` too.
#[test]
fn usage_errors_refused_by_the_parser() {
    let t = scratch();
    let mut wrong = Vec::new();
    for args in [
        &["--explain"][..],
        &["--check", "--explain"],
        &["--check", "--format", "sh"],
    ] {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path()).args(args).args(BASE);
        let r = run_cmd(cmd);
        if r.code != Some(100) || !r.stdout.is_empty() {
            wrong.push(format!(
                "  {args:?}: exit {:?}, stdout {} bytes, stderr: {}",
                r.code,
                r.stdout.len(),
                r.stderr_str().lines().next().unwrap_or("")
            ));
        }
    }
    assert!(wrong.is_empty(), "accepted:\n{}", wrong.join("\n"));
}

/// `--format sh` quotes everything it writes, comments included: a run-file
/// path, a config path, values and the envdir path holding newlines, quotes,
/// `$(...)` and backquotes give a script that dash runs without running any
/// of them (a marker file would appear), and the envdir it writes holds
/// exactly the plan's values.
#[test]
fn format_sh_quotes_everything() {
    if !have("dash", which("dash").is_some()) || !have("envdir", which("envdir").is_some()) {
        return;
    }
    let t = TempDir::new("sh-quote");
    let marker = t.path().join("MARKER");
    // Relative (no `/`, which a file name cannot hold): the cwd of every
    // child is the scratch directory.
    let m = "MARKER";
    let evil = format!("x\n'\"$(touch {m})`touch {m}`;touch {m}");
    // A directory, a config file and a run file named with all of it.
    let dir = t.path().join(format!("d{evil}"));
    std::fs::create_dir_all(&dir).unwrap();
    // `config` is a blank-separated list: its paths hold no blank (README),
    // so the command hides behind ${IFS} there.
    let config = t.path().join(format!(
        "c'\"$(touch${{IFS}}{m})`touch${{IFS}}{m}`;touch${{IFS}}{m}"
    ));
    std::fs::write(
        &config,
        format!(
            "A='{}'\nB=\"$A\"'`touch {m}`'\nC='$(touch {m})'\n",
            evil.replace('\'', "'\\''")
        ),
    )
    .unwrap();
    let runfile = dir.join(format!("r{evil}"));
    let envdir = dir.join(format!("e{evil}"));
    let quoted = |p: &std::path::Path| format!("'{}'", p.to_str().unwrap().replace('\'', "'\\''"));
    std::fs::write(
        &runfile,
        format!(
            "account=\nsoftlimit=\nrules=\nserver=/bin/true\nconfig={}\nenvdir={}\n",
            quoted(&config),
            quoted(&envdir)
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path())
        .arg(&runfile)
        .args(["--dry-run", "--format", "sh"]);
    let r = run_cmd(cmd);
    assert_eq!(r.exit(), 0, "{}", r.stderr_str());
    let script = t.write("script.sh", &r.stdout);
    let mut plan = Command::new(BIN);
    plan.current_dir(t.path())
        .arg(&runfile)
        .args(["--dry-run", "--format", "json"]);
    let plan = json(&run_cmd(plan));
    assert!(!marker.exists(), "the dry runs ran something");
    let mut sh = Command::new("dash");
    sh.current_dir(t.path()).arg(&script);
    let ran = run_cmd(sh);
    assert_eq!(
        ran.exit(),
        0,
        "the script failed:\n{}\n{}{}",
        r.stdout_str(),
        ran.stdout_str(),
        ran.stderr_str()
    );
    assert!(
        !marker.exists(),
        "dash ran a command hidden in a path or value:\n{}",
        r.stdout_str()
    );
    // What the script's conf2env wrote is what the plan says.
    for name in ["A", "B", "C"] {
        let got = std::fs::read(envdir.join(name)).expect("envdir file");
        let want = plan["env"][name].as_str().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got)
                .trim_end_matches('\n')
                .replace('\0', "\n"),
            want,
            "{name}"
        );
    }
}

/// The argv of each service in both layouts, as Courier's rc scripts run
/// them: the front end's options, address and port (SSLPORT for -ssl),
/// `couriertls -server -tcpd -user=ACCOUNT` before the login program for
/// the -ssl services, the login program, the server, the Maildir.
#[test]
fn argv_of_each_service_in_both_layouts() {
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "courier2",
            "imapd",
            &[
                "-c",
                "40",
                "0",
                "143",
                "/p/sbin/imaplogin",
                "/p/libexec/authlib/authpwd",
                "/p/bin/imapd",
                "Maildir",
            ],
        ),
        (
            "courier2",
            "imapd-ssl",
            &[
                "-c",
                "40",
                "0",
                "993",
                "/p/bin/couriertls",
                "-server",
                "-tcpd",
                "-user=root",
                "/p/sbin/imaplogin",
                "/p/libexec/authlib/authpwd",
                "/p/bin/imapd",
                "Maildir",
            ],
        ),
        (
            "courier2",
            "pop3d",
            &[
                "-c",
                "40",
                "0",
                "110",
                "/p/sbin/pop3login",
                "/p/libexec/authlib/authpwd",
                "/p/bin/pop3d",
                "Maildir",
            ],
        ),
        (
            "courier2",
            "pop3d-ssl",
            &[
                "-c",
                "40",
                "0",
                "995",
                "/p/bin/couriertls",
                "-server",
                "-tcpd",
                "-user=root",
                "/p/sbin/pop3login",
                "/p/libexec/authlib/authpwd",
                "/p/bin/pop3d",
                "Maildir",
            ],
        ),
        (
            "debian",
            "imapd",
            &[
                "-c",
                "40",
                "0",
                "143",
                "/usr/lib/courier/courier/imaplogin",
                "/usr/bin/imapd",
                "Maildir",
            ],
        ),
        (
            "debian",
            "imapd-ssl",
            &[
                "-c",
                "40",
                "0",
                "993",
                "/usr/bin/couriertls",
                "-server",
                "-tcpd",
                "-user=root",
                "/usr/lib/courier/courier/imaplogin",
                "/usr/bin/imapd",
                "Maildir",
            ],
        ),
        (
            "debian",
            "pop3d",
            &[
                "-c",
                "40",
                "0",
                "110",
                "/usr/lib/courier/courier/courierpop3login",
                "/usr/lib/courier/courier/courierpop3d",
                "Maildir",
            ],
        ),
        (
            "debian",
            "pop3d-ssl",
            &[
                "-c",
                "40",
                "0",
                "995",
                "/usr/bin/couriertls",
                "-server",
                "-tcpd",
                "-user=root",
                "/usr/lib/courier/courier/courierpop3login",
                "/usr/lib/courier/courier/courierpop3d",
                "Maildir",
            ],
        ),
    ];
    let t = TempDir::new("argv-services");
    // A TLS service is refused without a usable certificate.
    t.write("empty", format!("TLS_CERTFILE={CERT}\n"));
    for (layout, service, tail) in cases {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path()).args([
            "--dry-run",
            "--format",
            "json",
            "--set",
            &format!("layout={layout}"),
            "--set",
            &format!("service={service}"),
            "--set",
            "prefix=/p",
            "--set",
            "config=./empty",
            "--set",
            "account=root",
            "--set",
            "envdir=",
            "--set",
            "rules=",
            "--set",
            "access=",
            "--set",
            "server=/bin/true",
        ]);
        let r = run_cmd(cmd);
        assert_eq!(r.exit(), 0, "{layout} {service}: {}", r.stderr_str());
        let got = argv(&r.stdout_str());
        let mut want = vec!["/bin/true".to_string()];
        want.extend(tail.iter().map(|s| s.to_string()));
        assert_eq!(got, want, "{layout} {service}");
    }
}

/// Courier's rc resets TLS_CACHEFILE at every start; when its directory is
/// missing, a service that uses TLS is refused with the fix (couriertls
/// would fail every handshake), one that does not gets a warning.
#[test]
fn tls_cache_in_a_missing_directory() {
    let t = TempDir::new("tlscache");
    let run = |conf: &str, service: &str| {
        t.write("conf", conf);
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path()).args([
            "--dry-run",
            "--set",
            "layout=debian",
            "--set",
            &format!("service={service}"),
            "--set",
            "config=./conf",
            "--set",
            "account=root",
            "--set",
            "envdir=",
            "--set",
            "access=",
            "--set",
            "server=/bin/true",
        ]);
        let r = run_cmd(cmd);
        (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()))
    };
    let (code, out) = run("TLS_CACHEFILE=/nonexistent-dir/cache\n", "imapd-ssl");
    assert_eq!(code, 100, "{out}");
    assert!(
        out.contains("couriertls would fail every TLS handshake"),
        "{out}"
    );
    let (code, out) = run(
        "TLS_CACHEFILE=/nonexistent-dir/cache\nIMAPDSTARTTLS=NO\n",
        "imapd",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("not reset (TLS is not in use)"), "{out}");
    let (code, out) = run(
        &format!(
            "TLS_CACHEFILE={}/cache\nTLS_CERTFILE={CERT}\n",
            t.path().display()
        ),
        "imapd-ssl",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("tlscache"), "{out}");
}

/// Courier's rc reads the configs twice: its own shell (the full inherited
/// environment, the rc's file order) gives IMAP_STARTTLS=$IMAPDSTARTTLS,
/// and the `env -i` shell (only the kept names) gives every other variable.
/// courier-run replays the second read from the first when every reference
/// reads the same; here one does not ($FOO is inherited but not kept), so
/// the two reads must differ, as they do under the rc.
#[test]
fn the_rcs_outer_read_sees_what_the_inner_one_does_not() {
    let t = TempDir::new("dry-outer");
    t.write("imapd", "IMAPDSTARTTLS=\"$FOO\"\nPORT=1143\n");
    t.write(
        "imapd-ssl",
        format!("TLS_CACHEFILE=\nTLS_CERTFILE={CERT}\n"),
    );
    let env_of = |foo: Option<&str>| {
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .args(["--dry-run", "--format", "json"])
            .args(["--set", "layout=debian", "--set", "service=imapd"])
            .args(["--set", "config=./imapd ./imapd-ssl"])
            .args(["--set", "inherit_env=none", "--set", "account="])
            .args(["--set", "envdir=", "--set", "server=/bin/true"]);
        if let Some(v) = foo {
            cmd.env("FOO", v);
        }
        let r = run_cmd(cmd);
        assert_eq!(r.exit(), 0, "{}", r.stderr_str());
        let plan = json(&r);
        let get = |n: &str| plan["env"][n].as_str().map(str::to_string);
        (get("IMAPDSTARTTLS"), get("IMAP_STARTTLS"))
    };
    // FOO set: the rc's own shell sees it, env -i does not.
    assert_eq!(
        env_of(Some("YES")),
        (Some(String::new()), Some("YES".to_string()))
    );
    // FOO unset: both reads are the same (the replayed case).
    assert_eq!(env_of(None), (Some(String::new()), Some(String::new())));
}

/// No useless start: a TLS service whose certificate is missing is refused
/// by the dry run (and so by the launch) with --check's message, exit 111;
/// the same service without TLS does not read TLS_CERTFILE at all.
#[test]
fn tls_service_without_its_certificate_is_refused() {
    let t = TempDir::new("dry-nocert");
    let dry = |conf: &str, service: &str| {
        t.write("conf", conf);
        let mut cmd = Command::new(BIN);
        cmd.current_dir(t.path()).args([
            "--dry-run",
            "--set",
            "layout=debian",
            "--set",
            &format!("service={service}"),
            "--set",
            "config=./conf",
            "--set",
            "account=",
            "--set",
            "envdir=",
            "--set",
            "access=",
            "--set",
            "server=/bin/true",
        ]);
        let r = run_cmd(cmd);
        (r.exit(), format!("{}{}", r.stdout_str(), r.stderr_str()))
    };
    let missing = "TLS_CERTFILE=/nonexistent/imapd.pem\nTLS_CACHEFILE=\n";
    let (code, out) = dry(missing, "imapd-ssl");
    assert_eq!(code, 111, "{out}");
    assert!(
        out.contains(
            "courier-run: fatal: tls (imapd-ssl): TLS_CERTFILE /nonexistent/imapd.pem does not exist"
        ),
        "{out}"
    );
    let (code, out) = dry(&format!("{missing}IMAPDSTARTTLS=YES\n"), "imapd");
    assert_eq!(code, 111, "{out}");
    assert!(out.contains("tls (STARTTLS, IMAP_STARTTLS=YES)"), "{out}");
    let (code, out) = dry(&format!("{missing}IMAPDSTARTTLS=NO\n"), "imapd");
    assert_eq!(code, 0, "{out}");
    let (code, out) = dry(
        &format!("TLS_CERTFILE={CERT}\nTLS_CACHEFILE=\n"),
        "pop3d-ssl",
    );
    assert_eq!(code, 0, "{out}");
}
