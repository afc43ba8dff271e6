//! What a front end cannot do is never silent, and couriertcpd's own
//! refusals (no network, no supervisor):
//!
//! - tcpserver with `-block=`, `-maxperc=`, `-denymsg=` in TCPDOPTS,
//!   MAXPERIP and a MAXCPERIP access line: `--check` FAILs on each with
//!   the fix, and `--dry-run` warns of each (exit 0: the launch proceeds);
//! - the same config with server=couriertcpd: no such FAIL, and `--check`
//!   says what couriertcpd enforces; `address=::1` is an ok line;
//! - TCPDOPTS that the rc's shell would expand: exit 100 with its position;
//! - `--rebuild-access` for couriertcpd with no supervisor: the `.dat` is
//!   rebuilt, then exit 111 saying the HUP could not be sent; with no
//!   access list: exit 100.

mod common;

use std::path::Path;
use std::process::Command;

use common::{BIN, TempDir, have_file};

fn fixtures() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12")
}

/// A copy of Debian's imapd/imapd-ssl plus `extra`, and an access list.
fn setup(t: &TempDir, extra: &str, access: &str) -> String {
    for f in ["imapd", "imapd-ssl"] {
        let mut text = std::fs::read_to_string(fixtures().join(f)).unwrap();
        if f == "imapd" {
            text.push_str(extra);
            text.push_str(&format!(
                "\nIMAPACCESSFILE={}\n",
                t.join("imapaccess").display()
            ));
        }
        t.write(f, text);
    }
    t.write("imapaccess", access);
    format!(
        "config={} {}",
        t.join("imapd").display(),
        t.join("imapd-ssl").display()
    )
}

fn courier_run(t: &TempDir, config: &str, sets: &[&str], args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(t.path()).args([
        "--set",
        "layout=debian",
        "--set",
        config,
        "--set",
        "envdir=",
    ]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    let out = cmd.args(args).output().expect("courier-run runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const EXTRA: &str = "\nMAXPERIP=4\nTCPDOPTS=\"-nodnslookup -noidentlookup -block=zen.spamhaus.org -maxperc=5 -denymsg='go away'\"\n";

#[test]
fn tcpserver_lost_protections_fail_and_warn() {
    let t = TempDir::new("tcpd-lost");
    let config = setup(&t, EXTRA, "127.0.0.9\tallow,MAXCPERIP=2\n*\tallow\n");
    let tcpserver = ["server=tcpserver -v -RH -l0"];
    let (code, out, _) = courier_run(&t, &config, &tcpserver, &["--check"]);
    assert_eq!(code, 1, "{out}");
    for want in [
        "FAIL TCPDOPTS: ",
        "-block=zen.spamhaus.org (a DNS block list) is not enforced: tcpserver has no such option, only couriertcpd (use server=couriertcpd",
        "-maxperc=5 (a limit of connections per C block) is not enforced",
        "-denymsg=go away (the message a denied client gets) is not enforced",
        "FAIL MAXPERIP: ",
        "MAXPERIP=4 is not enforced: tcpserver has no per-IP limit (use server=couriertcpd",
        "FAIL access: ",
        "imapaccess:1: MAXCPERIP is not enforced",
    ] {
        assert!(out.contains(want), "no {want:?} in\n{out}");
    }
    // --dry-run: the launch would proceed, and says what is lost.
    let (code, out, err) = courier_run(&t, &config, &tcpserver, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    let warnings = out.split("\nwarnings\n").nth(1).unwrap_or("");
    for want in [
        "TCPDOPTS -block=zen.spamhaus.org (a DNS block list) is not enforced: only couriertcpd has it (use server=couriertcpd, or remove it from TCPDOPTS)",
        "TCPDOPTS -maxperc=5",
        "TCPDOPTS -denymsg=go away",
        "MAXPERIP=4 is not enforced: tcpserver has no per-IP limit",
        "MAXCPERIP is not enforced",
    ] {
        assert!(
            warnings.contains(want),
            "no {want:?} in the warnings of\n{out}"
        );
    }
    // tcpsvd enforces MAXPERIP (-C) and MAXCPERIP (C): only TCPDOPTS fails.
    let (code, out, _) = courier_run(&t, &config, &["server=tcpsvd -v"], &["--check"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(
        "-block=zen.spamhaus.org (a DNS block list) is not enforced: tcpsvd has no such option"
    ));
    assert!(!out.contains("FAIL MAXPERIP"), "{out}");
    assert!(!out.contains("MAXCPERIP is not enforced"), "{out}");
}

#[test]
fn couriertcpd_enforces_them_and_binds_ipv6() {
    if !have_file("/usr/sbin/couriertcpd", "courier-base") {
        return;
    }
    let t = TempDir::new("tcpd-keeps");
    let config = setup(&t, EXTRA, "127.0.0.9\tallow,MAXCPERIP=2\n*\tallow\n");
    let (_, out, _) = courier_run(&t, &config, &["address=::1"], &["--check"]);
    assert!(!out.contains("FAIL TCPDOPTS"), "{out}");
    assert!(!out.contains("FAIL MAXPERIP"), "{out}");
    assert!(
        out.contains(
            "ok   couriertcpd enforces -block=zen.spamhaus.org (a DNS block list), -maxperc=5"
        ),
        "{out}"
    );
    assert!(
        out.contains("ok   address ::1 (IPv6: couriertcpd binds it)"),
        "{out}"
    );
    let (code, out, err) = courier_run(
        &t,
        &config,
        &["address=::1"],
        &["--dry-run", "--format", "json"],
    );
    assert_eq!(code, 0, "{err}");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let argv: Vec<&str> = plan["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let dat = format!("-access={}/imapaccess.dat", t.path().display());
    assert_eq!(
        &argv[..10],
        [
            "/usr/sbin/couriertcpd",
            "-address=::1",
            "-maxprocs=40",
            "-maxperip=4",
            dat.as_str(),
            "-nodnslookup",
            "-noidentlookup",
            "-block=zen.spamhaus.org",
            "-maxperc=5",
            "-denymsg=go away",
        ]
    );
    let warnings = plan["warnings"].to_string();
    assert!(!warnings.contains("not enforced"), "{warnings}");
    // The classic script does what the launch does first: makedat.
    let (code, out, err) = courier_run(&t, &config, &[], &["--dry-run", "--format", "sh"]);
    assert_eq!(code, 0, "{err}");
    let list = t.join("imapaccess");
    assert!(
        out.contains(&format!(
            "[ {0}.dat -nt {0} ] || /usr/lib/courier/makedat -src={0} -file={0}.dat -tmp={0}.dat.tmp -cidr || exit 111\n",
            list.display()
        )),
        "{out}"
    );
}

#[test]
fn tcpdopts_the_shell_would_expand_is_refused() {
    let t = TempDir::new("tcpd-expand");
    let config = setup(&t, "\nTCPDOPTS='-nodnslookup $(id)'\n", "*\tallow\n");
    let (code, _, err) = courier_run(&t, &config, &[], &["--dry-run"]);
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("TCPDOPTS holds $ (sh would expand it)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}:", t.join("imapd").display())),
        "{err}"
    );
}

#[test]
fn rebuild_access_without_a_supervisor_or_a_list() {
    if !have_file("/usr/lib/courier/makedat", "courier-base")
        || !have_file("/usr/sbin/couriertcpd", "courier-base")
    {
        return;
    }
    let t = TempDir::new("tcpd-rebuild");
    let config = setup(&t, "", "127.0.0.5\tdeny\n");
    // The run file's directory has no supervise/: the .dat is rebuilt,
    // the HUP cannot be sent, and that is said (111), not skipped.
    let quoted = config.replacen("config=", "config=\"", 1) + "\"";
    t.write("run", format!("layout=debian\n{quoted}\nenvdir=\n"));
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args(["./run", "--rebuild-access"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(111), "{err}");
    assert!(
        err.contains("unable to tell which supervisor runs ."),
        "{err}"
    );
    assert!(t.join("imapaccess.dat").exists());
    // pop3d: Debian's rc passes no access list: nothing to rebuild.
    let out = Command::new(BIN)
        .current_dir(t.path())
        .args(["./run", "--rebuild-access", "--set", "service=pop3d"])
        .args([
            "--set",
            &format!("config={}", t.write("empty", "").display()),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(100), "{err}");
    assert!(err.contains("no access list to rebuild"), "{err}");
}

/// `rules=` given to couriertcpd is passed as `-access=`: another front
/// end's cdb there would be misread, so it is refused with the fix.
#[test]
fn a_tcprules_cdb_is_not_a_dat() {
    if !common::have("tcprules (ucspi-tcp)", common::which("tcprules").is_some()) {
        return;
    }
    let t = TempDir::new("tcpd-cdb");
    let config = setup(&t, "", "*\tallow\n");
    let mut child = Command::new("tcprules")
        .arg(t.join("r.cdb"))
        .arg(t.join("r.tmp"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"127.:deny\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let rules = format!("rules={}", t.join("r.cdb").display());
    let (code, _, err) = courier_run(&t, &config, &[&rules], &["--dry-run"]);
    assert_eq!(code, 100, "{err}");
    assert!(
        err.contains("is a tcprules cdb but couriertcpd reads a makedat access database"),
        "{err}"
    );
}
