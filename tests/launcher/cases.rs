//! The table of settings, and setting up a scratch directory for one.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use courier_run::limits::Resource::{self, *};

use crate::harness::{BIN, Scratch};

pub struct Case {
    pub name: &'static str,
    /// The run file, after `#!...courier-run` (@ROOT@, @FIX@ replaced).
    pub run: &'static str,
    /// Fixtures copied into etc/ (the run file names them as @ROOT@/etc/...).
    pub fixtures: &'static [&'static str],
    /// Extra files: (path under the scratch root, content).
    pub files: &'static [(&'static str, &'static str)],
    /// Directories to create under the scratch root.
    pub dirs: &'static [&'static str],
    /// inherit_env and account, for the daemontools oracle (kept in step
    /// with `run` by hand: the oracle must not ask courier-run).
    pub inherit: &'static str,
    pub account: &'static str,
    /// `server` written as a bare name looked up in PATH (else absolute).
    pub server_bare: bool,
    pub pre: &'static [(Resource, u64, u64)],
}

const LOWER_NOFILE: &[(Resource, u64, u64)] = &[(Nofile, 256, 1024), (Core, 0, 4_096_000)];

pub const CASES: &[Case] = &[
    Case {
        name: "debian: Debian 12 imapd, account nobody, inherit all",
        run: "layout=debian\nconfig=@ROOT@/etc/debian12/imapd\naccount=nobody\n",
        fixtures: &["debian12/imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: imapd + imapd-ssl, inherit_env=none, no account",
        run: "layout=debian\nconfig=\"@ROOT@/etc/debian12/imapd @ROOT@/etc/debian12/imapd-ssl\"\ninherit_env=none\naccount=\n",
        fixtures: &["debian12/imapd", "debian12/imapd-ssl"],
        files: &[],
        dirs: &[],
        inherit: "none",
        account: "",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: inherit_env names, account daemon, setuidgid nobody, umask 007",
        run: "layout=debian\nconfig=@ROOT@/etc/debian12/imapd\ninherit_env=\"HOME LANG TEST_SPACES TEST_NEWLINE NOT_THERE\"\naccount=daemon\nsetuidgid=nobody\numask=007\n",
        fixtures: &["debian12/imapd"],
        files: &[],
        dirs: &[],
        inherit: "HOME LANG TEST_SPACES TEST_NEWLINE NOT_THERE",
        account: "daemon",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "courier2: prefix, default config, auth modules with authdir, rules, softlimit -m -o",
        run: "layout=courier2\nprefix=@ROOT@/courier\naccount=nobody\nsoftlimit=\"-m 400000000 -o 200\"\nauth=\"authpwd authcram /opt/other/authvchkpw\"\n",
        fixtures: &[],
        files: &[(
            "courier/etc/imapd",
            "# courier2 layout: found as $prefix/etc/imapd\nMAILDIRPATH=$prefix/Maildir\nIMAP_ULIMITD=524288\nMAXDAEMONS=12\nSHARED=${sysconfdir}/shared:$libexecdir\n",
        )],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "courier2: 2004-style imapd, ulimit_v, umask 077, softlimit =, explicit address/port/conlimit/maildir/rules",
        run: "layout=courier2\nconfig=@ROOT@/etc/courier2-imapd\naccount=daemon\nulimit_v=1048576\numask=077\nsoftlimit=\"-a = -c 0 -t 100 -d 400000000 -o =\"\naddress=127.0.0.1\nport=1143\nconlimit=7\nmaildir=./Maildir\nrules=@ROOT@/etc/imap.cdb\nauth=\nauthdir=\n",
        fixtures: &["courier2-imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "daemon",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "courier2: envdir empty (config set directly), ulimit_v unlimited, account nobody",
        run: "layout=courier2\nconfig=@ROOT@/etc/courier2-imapd\nenvdir=\naccount=nobody\nulimit_v=unlimited\nsoftlimit=\nauth=authdaemon\nauthdir=@ROOT@/authlib/\n",
        fixtures: &["courier2-imapd"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "nobody",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: config with unset references and odd quoting, nested envdir, no account",
        run: "layout=debian\nconfig=\"@ROOT@/etc/refs.conf\"\nenvdir=./state/env\naccount=\n",
        fixtures: &["refs.conf"],
        files: &[],
        dirs: &["svc/state"],
        inherit: "all",
        account: "",
        server_bare: false,
        pre: &[],
    },
    Case {
        name: "debian: stderr keep, banner no, glued softlimit, unset refs, account daemon",
        run: "layout=debian\nconfig=@ROOT@/etc/refs.conf\nstderr=keep\nbanner=no\naccount=daemon\nsoftlimit=\"-m500000000 -o= -c=\"\n",
        fixtures: &["refs.conf"],
        files: &[],
        dirs: &[],
        inherit: "all",
        account: "daemon",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
    Case {
        name: "debian: server a bare name found through the config's PATH (the final environment)",
        run: "layout=debian\nconfig=@ROOT@/etc/path.conf\naccount=nobody\ninherit_env=\"HOME PATH\"\n",
        fixtures: &[],
        files: &[(
            "etc/path.conf",
            "PATH=/nonexistent:@BIN@:$PATH\nADDRESS=127.0.0.2\nPORT=1143\n",
        )],
        dirs: &[],
        inherit: "HOME PATH",
        account: "nobody",
        server_bare: true,
        pre: &[],
    },
    Case {
        name: "courier2: setuidgid daemon with envuidgid nobody, inherit_env none, umask from IMAP_UMASK, nested config refs",
        run: "layout=courier2\nprefix=/usr/local/courier-imap\nconfig=\"@ROOT@/etc/courier2-imapd @ROOT@/etc/refs.conf\"\naccount=nobody\nsetuidgid=daemon\ninherit_env=none\nsoftlimit=\"-s 8000000 -p 500 -f 100000000 -l 65536 -r 300000000\"\n",
        fixtures: &["courier2-imapd", "refs.conf"],
        files: &[],
        dirs: &[],
        inherit: "none",
        account: "nobody",
        server_bare: false,
        pre: LOWER_NOFILE,
    },
];

/// Set up a case: run file written, fixtures copied; returns the
/// arguments of courier-run (`./run --set server=...`).
pub fn setup(s: &Scratch, c: &Case) -> Vec<String> {
    for f in c.fixtures {
        s.fixture(f);
    }
    for (p, text) in c.files {
        s.write(p, &s.subst(text));
    }
    for d in c.dirs {
        fs::create_dir_all(s.root.join(d)).unwrap();
    }
    let run = s.write(
        "svc/run",
        &format!(
            "#!{BIN}\n# {}\n{}",
            c.name.replace('\n', " "),
            s.subst(c.run)
        ),
    );
    fs::set_permissions(&run, fs::Permissions::from_mode(0o755)).unwrap();
    let server = if c.server_bare {
        format!("recorder {}", s.record_path().display())
    } else {
        s.server()
    };
    // The recorder serves no login: no wait for authdaemond.
    vec![
        "./run".into(),
        "--set".into(),
        format!("server={server}"),
        "--set".into(),
        "wait_authdaemond=no".into(),
    ]
}

pub fn needs_root(c: &Case) -> bool {
    c.run.contains("setuidgid=")
}
