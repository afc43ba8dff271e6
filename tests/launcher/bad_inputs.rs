//! Bad inputs, one table driving three comparisons: the contract's exit
//! code and a message naming the place; `--dry-run` says the same and
//! prints no plan; `--check` reports the same message among its FAIL lines.
//! Neither touches the existing envdirs nor execs anything.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::common::{Snapshot, have_file, have_root};
use crate::harness::{
    BIN, Pre, Ran, SETPRIV, Scratch, courier_run_bin, envdir_state, shared_bin, start_env, with,
    write_envdir,
};

struct Bad {
    name: &'static str,
    /// Run file lines after `layout=debian` and a good config (@ROOT@).
    run: &'static str,
    sets: &'static [&'static str],
    files: &'static [(&'static str, &'static str)],
    code: i32,
    /// Substrings of the `courier-run: fatal:` line (@ROOT@ replaced).
    says: &'static [&'static str],
    /// Run courier-run as nobody (root only).
    as_nobody: bool,
    /// Run courier-run as root without CAP_SETUID and CAP_SETGID (root
    /// only, under setpriv).
    no_setid_caps: bool,
}

const BAD: &[Bad] = &[
    Bad {
        name: "unknown setting in the run file",
        run: "softlimt=\"-m 5000000\"\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:1: unknown setting softlimt",
            "did you mean softlimit?",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "unknown setting on the command line",
        run: "",
        sets: &["acount=nobody"],
        files: &[],
        code: 100,
        says: &[
            "--set acount=nobody: unknown setting acount",
            "did you mean account?",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "bad softlimit string",
        run: "softlimit=\"-m 5M\"\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:11: softlimit",
            "\"5M\" is not a number of bytes",
            "-m 5000000",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "softlimit with an unknown letter",
        run: "",
        sets: &["softlimit=-x 1"],
        files: &[],
        code: 100,
        says: &["--set softlimit", "unknown option -x"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "unknown account",
        run: "account=no-such-account-here\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &[
            "./run:5:9",
            "account",
            "unknown account no-such-account-here",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "unknown setuidgid account",
        run: "",
        sets: &["setuidgid=no-such-account-here"],
        files: &[],
        code: 100,
        says: &["setuidgid", "unknown account no-such-account-here"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "PORT list in the config",
        run: "",
        sets: &[],
        files: &[(
            "etc/extra.conf",
            "# Courier's list form\nPORT=127.0.0.1.143,192.168.0.1.143\n",
        )],
        code: 100,
        says: &[
            "@ROOT@/etc/extra.conf:2:6",
            "port \"127.0.0.1.143,192.168.0.1.143\" is a list",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "conlimit=abc",
        run: "conlimit=abc\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:10", "conlimit \"abc\" is not a positive number"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "MAXDAEMONS=abc in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "MAXDAEMONS=abc\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:1:12", "conlimit \"abc\""],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "IMAP_ULIMITD not a number",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\nIMAP_ULIMITD=128M\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:14", "ulimit_v"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "umask not octal",
        run: "umask=0999\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:7", "umask \"0999\" is not an octal mode"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "syntax error in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\nB=\"unterminated\nC=3\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:3", "unterminated double quote"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "command substitution in the config",
        run: "",
        sets: &[],
        files: &[("etc/extra.conf", "A=1\n  B=$(rm -rf /)\n")],
        code: 100,
        says: &["@ROOT@/etc/extra.conf:2:5", "command substitution"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "syntax error in the run file",
        run: "port='1143\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:6", "unterminated single quote"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "missing config file",
        run: "config=@ROOT@/etc/no-such-imapd\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["@ROOT@/etc/no-such-imapd", "No such file or directory"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "envdir parent is a regular file",
        run: "envdir=./plainfile/env\n",
        sets: &[],
        files: &[("svc/plainfile", "not a directory\n")],
        code: 111,
        says: &["./plainfile/env", "Not a directory"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "envdir is a regular file",
        run: "envdir=./plainfile\n",
        sets: &[],
        files: &[("svc/plainfile", "not a directory\n")],
        code: 100,
        says: &["./run:5:8: envdir ./plainfile exists and is not a directory"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "envdir is a symlink to the envdir",
        run: "envdir=./linked-env\n",
        sets: &[],
        files: &[],
        code: 100,
        says: &["./run:5:8: envdir ./linked-env is a symbolic link"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "envdir is the service directory itself",
        run: "",
        sets: &["envdir=."],
        files: &[],
        code: 100,
        says: &["--set envdir . names no directory of its own"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "setuidgid without the privilege to switch (as nobody)",
        run: "account=\nsetuidgid=daemon\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["setuidgid daemon: unable to switch to uid"],
        as_nobody: true,
        no_setid_caps: false,
    },
    Bad {
        name: "setuidgid as root without CAP_SETUID/CAP_SETGID",
        run: "account=\nsetuidgid=nobody\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["setuidgid nobody: unable to switch to uid"],
        as_nobody: false,
        no_setid_caps: true,
    },
    Bad {
        name: "envdir parent not writable (as nobody)",
        run: "account=\nenvdir=./locked/env\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &[
            "unable to write envdir ./locked/env",
            "./locked",
            "Permission denied",
        ],
        as_nobody: true,
        no_setid_caps: false,
    },
    Bad {
        name: "envdir parent not readable (as nobody)",
        run: "account=\nenvdir=./private/env\n",
        sets: &[],
        files: &[],
        code: 111,
        says: &["./private/env", "Permission denied"],
        as_nobody: true,
        no_setid_caps: false,
    },
    Bad {
        name: "program not found",
        run: "",
        sets: &["server=@ROOT@/bin/no-such-server -v"],
        files: &[],
        code: 127,
        says: &["unable to run @ROOT@/bin/no-such-server", "does not exist"],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "program not found in the final PATH",
        run: "",
        sets: &["server=no-such-server-anywhere"],
        files: &[],
        code: 127,
        says: &[
            "unable to run no-such-server-anywhere",
            "not found in PATH=",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "program not executable",
        run: "",
        sets: &["server=@ROOT@/etc/extra.conf"],
        files: &[("etc/extra.conf", "A=1\n")],
        code: 126,
        says: &[
            "unable to run @ROOT@/etc/extra.conf",
            "not an executable file",
        ],
        as_nobody: false,
        no_setid_caps: false,
    },
    Bad {
        name: "program is a directory",
        run: "",
        sets: &["server=@ROOT@/etc"],
        files: &[],
        code: 126,
        says: &["unable to run @ROOT@/etc"],
        as_nobody: false,
        no_setid_caps: false,
    },
];

/// The envdirs every case starts with (written from another config), to
/// prove they are left alone.
const WATCHED: [&str; 3] = ["./env", "./locked/env", "./private/env"];

type State = (Option<Snapshot>, Vec<String>);

/// A case set up: its scratch dir, environment, arguments, how it starts,
/// and the copy of courier-run to run.
struct Setup {
    s: Scratch,
    env: Vec<(String, String)>,
    args: Vec<String>,
    pre: Pre,
    bin: PathBuf,
}

impl Setup {
    /// None (after saying why) when the case cannot run here.
    fn new(b: &Bad) -> Option<Setup> {
        // Permissions that refuse nobody would not refuse their owner.
        if b.as_nobody && !have_root(&format!("to run as nobody: {}", b.name)) {
            return None;
        }
        if b.no_setid_caps
            && !(have_root(&format!("to drop capabilities from root: {}", b.name))
                && have_file(SETPRIV, "util-linux"))
        {
            return None;
        }
        let s = Scratch::new("bad");
        let env = start_env(&s);
        // A good config, an existing envdir ./env written from another one,
        // and the same for the nested envdirs of the permission cases.
        s.write("etc/good.conf", "GOOD=1\nMAILDIRPATH=Maildir\n");
        let old = s.write("etc/old.conf", "OLD=1\nSTALE=yes\n");
        for d in ["svc/locked", "svc/private"] {
            fs::create_dir(s.root.join(d)).unwrap();
        }
        std::os::unix::fs::symlink("env", s.root.join("svc/linked-env")).unwrap();
        for dir in WATCHED {
            write_envdir(&s, dir, &old);
        }
        fs::set_permissions(s.root.join("svc/locked"), fs::Permissions::from_mode(0o555)).unwrap();
        fs::set_permissions(
            s.root.join("svc/private"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        for (p, text) in b.files {
            s.write(p, text);
        }
        let configs = if b.files.iter().any(|(p, _)| *p == "etc/extra.conf")
            && b.sets.iter().all(|x| !x.starts_with("server="))
        {
            format!("\"{0}/etc/good.conf {0}/etc/extra.conf\"", s.root.display())
        } else {
            format!("{}/etc/good.conf", s.root.display())
        };
        s.write(
            "svc/run",
            &format!(
                "#!{BIN}\nlayout=debian\nconfig={configs}\naccount=nobody\n{}",
                s.subst(b.run)
            ),
        );
        let mut args = vec!["./run".to_string()];
        args.extend(["--set".to_string(), format!("server={}", s.server())]);
        for x in b.sets {
            args.extend(["--set".to_string(), s.subst(x)]);
        }
        let pre = Pre {
            limits: vec![],
            user: b.as_nobody.then(|| {
                let u = nix::unistd::User::from_name("nobody")
                    .unwrap()
                    .expect("an account nobody");
                (u.uid.as_raw(), u.gid.as_raw())
            }),
            drop_setid_caps: b.no_setid_caps,
        };
        // As nobody, from a copy nobody can surely exec (CI's checkout may
        // live under /root).
        let bin = if pre.user.is_some() {
            shared_bin().join("courier-run")
        } else {
            PathBuf::from(BIN)
        };
        Some(Setup {
            s,
            env,
            args,
            pre,
            bin,
        })
    }

    fn run(&self, more: &[&str]) -> Ran {
        courier_run_bin(
            &self.bin,
            &self.s,
            &with(&self.args, more),
            &self.env,
            &self.pre,
        )
    }

    fn watched(&self) -> Vec<State> {
        WATCHED
            .iter()
            .map(|d| envdir_state(&self.s.svc().join(d)))
            .collect()
    }

    /// Put the permission cases' modes back (so that a snapshot can read),
    /// then: the envdirs are as `before`, nothing was exec'd.
    #[track_caller]
    fn untouched(&self, case: &str, before: &[State]) {
        for d in ["svc/locked", "svc/private"] {
            fs::set_permissions(self.s.root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
        }
        for ((w, b4), af) in WATCHED.iter().zip(before).zip(&self.watched()) {
            assert_eq!(af, b4, "{case}: envdir {w} was touched");
        }
        assert!(
            self.s.take_record().is_none(),
            "{case}: something was exec'd"
        );
    }

    /// The one `courier-run: fatal: MSG` line of a run, and MSG.
    #[track_caller]
    fn fatal(case: &str, r: &Ran) -> (String, String) {
        // The launch merges stderr into stdout first (the recipe's exec 2>&1).
        let said = format!("{}{}", r.stdout_str(), r.stderr_str());
        let fatal: Vec<&str> = said
            .lines()
            .filter(|l| l.starts_with("courier-run: fatal: "))
            .collect();
        assert_eq!(fatal.len(), 1, "{case}: one fatal line: {said}");
        let msg = fatal[0]["courier-run: fatal: ".len()..].to_string();
        (fatal[0].to_string(), msg)
    }
}

#[test]
fn bad_inputs_exit_codes_messages_and_nothing_touched() {
    let mut ran_cases = 0;
    for b in BAD {
        let Some(t) = Setup::new(b) else { continue };
        let before = t.watched();
        let launch = t.run(&[]);
        let dry = t.run(&["--dry-run"]);
        let dry_json = t.run(&["--dry-run", "--format", "json"]);

        let case = b.name;
        let (fatal, _) = Setup::fatal(case, &launch);
        assert_eq!(
            launch.exit(),
            b.code,
            "{case}: launch exit code; it said: {fatal}"
        );
        for want in b.says {
            let want = t.s.subst(want);
            assert!(
                fatal.contains(&want),
                "{case}: the message lacks {want:?}: {fatal}"
            );
        }
        assert_eq!(
            dry.exit(),
            b.code,
            "{case}: --dry-run exit code: {}",
            dry.stderr_str()
        );
        assert_eq!(
            dry_json.exit(),
            b.code,
            "{case}: --dry-run --format json exit code"
        );
        assert_eq!(
            dry.stderr_str().trim_end(),
            fatal,
            "{case}: --dry-run says something else than the launch"
        );
        assert_eq!(dry.stdout_str(), "", "{case}: --dry-run printed a plan");
        t.untouched(case, &before);
        ran_cases += 1;
    }
    eprintln!("bad inputs: {ran_cases} cases, launch and --dry-run agree");
}

/// `--check` reports what the launch dies of: for every case, one of its
/// `FAIL WHAT: MSG` lines (MSG may end in ` (FIX)`) holds the launch's
/// `courier-run: fatal: MSG`, position included; the check exits 1 and,
/// like the launch, writes no envdir and execs nothing.
#[test]
fn check_reports_what_the_launch_dies_of() {
    let mut ran_cases = 0;
    let mut disagree = Vec::new();
    for b in BAD {
        let Some(t) = Setup::new(b) else { continue };
        let before = t.watched();
        let case = b.name;
        let (_, msg) = Setup::fatal(case, &t.run(&[]));
        let check = t.run(&["--check"]);
        let report = check.stdout_str();
        let fails: Vec<&str> = report.lines().filter(|l| l.starts_with("FAIL ")).collect();
        let agrees = fails
            .iter()
            .any(|l| l.split_once(": ").is_some_and(|(_, m)| m.contains(&msg)));
        if !agrees {
            disagree.push(format!(
                "{case}:\n  launch: {msg}\n  check FAIL lines:\n{}",
                fails
                    .iter()
                    .map(|l| format!("    {l}\n"))
                    .collect::<String>()
            ));
        }
        assert_eq!(
            check.exit(),
            1,
            "{case}: --check exit code: {report}{}",
            check.stderr_str()
        );
        t.untouched(&format!("{case} (--check)"), &before);
        ran_cases += 1;
    }
    assert!(
        disagree.is_empty(),
        "--check and the launch disagree on {} of {ran_cases} cases:\n{}",
        disagree.len(),
        disagree.join("")
    );
    eprintln!("bad inputs: {ran_cases} cases, --check reports the launch's message");
}
