//! `courier-run init DIR`: a new service directory in one command instead of
//! the recipe's dozen manual steps. It creates `run` (a courier-run script
//! with the chosen settings, commented), `log/run` for the supervisor's
//! logger, `log/main` owned by the service account (the logger drops to it),
//! an access list (Courier's syntax, `access` in the run file) and its
//! compiled rules. For systemd, a unit file (src/systemd.rs) takes the
//! place of log/: the journal is the log. It never overwrites: an existing file is an error before
//! anything is created; an existing directory is used as it is ("exists",
//! owner and mode unchanged). `--dry-run` prints the same lines and creates
//! nothing.
//!
//! init runs as root in a directory another account may be able to reach:
//! everything is created relative to a directory descriptor (mkdirat,
//! openat with O_EXCL|O_NOFOLLOW, fchown of the descriptor of what it just
//! made), a symlink in or as DIR is refused, and so is a directory on the
//! way that an account other than root can change (see `check_dir`; the
//! rules for an admin are in docs/init.md).

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use clap::builder::PossibleValue;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, unlinkat};

use crate::error::{Exit, bad_input};
use crate::frontend::RulesFormat;
use crate::service::{Layout, ServiceKind};

/// One supervisor type for init, `--status` and `--restart`.
pub use crate::supervise::Supervisor;

/// Where the service's log goes (`--log`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Log {
    /// The supervisor's logger, rotated in log/main (20 files of 1 MB).
    File,
    /// syslog, facility mail, tagged as courierlogger tags it.
    Syslog,
}

/// `--service`: what the run file's `service=` names (the service table's
/// names, in its order).
impl ValueEnum for ServiceKind {
    fn value_variants<'a>() -> &'a [Self] {
        &ServiceKind::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let v = PossibleValue::new(self.name());
        Some(match self {
            ServiceKind::Authdaemond => v.help(
                "courier-authlib's authdaemond (every login of Courier 5 goes through it): \
                 no front end, no access list",
            ),
            _ => v,
        })
    }
}

/// `--layout`: the `layout` setting's names (Debian's first, the default).
impl ValueEnum for Layout {
    fn value_variants<'a>() -> &'a [Self] {
        &Layout::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        Some(PossibleValue::new(self.name()))
    }
}

#[derive(clap::Args, Debug)]
pub struct InitOptions {
    /// The service directory to create (it may exist: what is there is kept).
    /// Refused when it, or a directory on the way to it, can be changed
    /// by an account other than root (a sticky directory such as /tmp is
    /// allowed on the way), or when it is or holds a symlink.
    pub dir: PathBuf,
    /// Which Courier server the service runs.
    #[arg(long, value_enum, default_value_t = ServiceKind::Imapd)]
    pub service: ServiceKind,
    /// Where Courier is installed: Debian's packages or a courier2 prefix.
    #[arg(long, value_enum, default_value_t = Layout::Debian)]
    pub layout: Layout,
    /// The supervision suite that will run it (picks log/run's logger;
    /// systemd: a unit file in DIR instead of log/).
    #[arg(long, value_enum, default_value_t = Supervisor::Daemontools)]
    pub supervisor: Supervisor,
    /// Where the log goes: file (the default: multilog, svlogd or s6-log
    /// keep 20 files of 1 MB in log/main) or syslog (facility mail, tagged
    /// imapd, imapd-ssl, pop3d, pop3d-ssl or authdaemond as courierlogger
    /// does, so /var/log/mail.log and fail2ban see it). systemd: always the
    /// journal, with that tag and facility; --log file is refused.
    #[arg(long, value_enum)]
    pub log: Option<Log>,
    /// Print what would be created; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A setting to write into the run file (repeatable), e.g.
    /// `--set config="/srv/courier/imapd /srv/courier/imapd-ssl"`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

/// One thing to create.
#[derive(Debug, PartialEq, Eq)]
pub enum Creation {
    Dir {
        path: PathBuf,
        owner: Option<String>,
    },
    File {
        path: PathBuf,
        mode: u32,
        text: String,
    },
    Rules {
        source: PathBuf,
        output: PathBuf,
    },
}

/// The run file's text.
pub fn run_file(o: &InitOptions, exe: &Path) -> String {
    let svc = o.service.name();
    let sup = match o.supervisor {
        Supervisor::Daemontools => "daemontools' supervise",
        Supervisor::Runit => "runit's runsv",
        Supervisor::S6 => "s6-supervise",
        Supervisor::Systemd => "systemd",
    };
    if o.service == ServiceKind::Authdaemond {
        return authdaemond_run_file(o, exe, sup);
    }
    // The front end the layout's default `server` runs, by its name.
    let server = default(o, "server");
    let front = server
        .split_ascii_whitespace()
        .next()
        .and_then(|w| Path::new(w).file_name())
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let mut s = format!(
        "{shebang}\n\
         # courier-{svc}: Courier's {svc} on {front} under {sup}.\n\
         # Made by `courier-run init`; see courier-run(1). The supervisor runs\n\
         # this as `courier-run ./run` in the service directory. service= reads\n\
         # Courier's own config files for it, as its rc script does.\n\
         service={svc}\n",
        shebang = shebang(o, exe)
    );
    s += &layout_lines(o);
    s += &format!(
        "\n# envuidgid: UID and GID of this account go into the environment.\naccount={}\n",
        o.layout.account()
    );
    match (o.layout, o.service) {
        (Layout::Debian, ServiceKind::Imapd | ServiceKind::ImapdSsl) => {
            s += "\n# The access list is the config's IMAPACCESSFILE, as Debian's rc passes it:\n\
                  # couriertcpd reads IMAPACCESSFILE.dat (built by makedat when missing or\n\
                  # older). After an edit: courier-run ./run --rebuild-access (no restart).\n";
        }
        (Layout::Debian, _) => {
            s += "\n# Debian's pop3d rc scripts give couriertcpd no access list; set\n\
                  # access=FILE to give it one.\n";
        }
        (Layout::Courier2, _) => {
            s += "\n# Courier's access list (couriertcpd syntax: ADDRESS<tab>allow|deny),\n\
                  # converted on start into the front end's rules when it is newer.\n\
                  access=./access\n";
            s += &format!(
                "# (the access list replaces the default {})\nrules=\n",
                default(o, "rules")
            );
        }
    }
    // Said where the layout waits by default (Debian: its logins go
    // through authdaemond), so the admin sees the switch.
    let wait = default(o, "wait_authdaemond");
    if wait == "yes" {
        s += &format!(
            "\n# Logins go through authdaemond: while its socket does not accept, the\n\
             # launch exits 111 and the supervisor retries, so this service is never\n\
             # up with every login failing (run authdaemond as a service too:\n\
             # courier-run init --service authdaemond). no: start regardless.\n\
             wait_authdaemond={wait}\n"
        );
    }
    s += &set_lines(o);
    s
}

/// The layout's default of setting `name` for this service (the one
/// table, [`crate::settings::default_of`]), made with the layout's prefix.
fn default(o: &InitOptions, name: &str) -> String {
    crate::settings::default_of(o.layout, o.service, o.layout.default_prefix(), name)
        .unwrap_or_default()
}

/// `layout=`, and for courier2 the prefix its defaults are made from
/// (written out: it is the line an install elsewhere changes).
fn layout_lines(o: &InitOptions) -> String {
    match o.layout {
        Layout::Debian => format!("layout={}\n", o.layout.name()),
        Layout::Courier2 => format!(
            "layout={}\nprefix={}\n",
            o.layout.name(),
            o.layout.default_prefix()
        ),
    }
}

/// The --set settings as run file lines (single-quoted).
fn set_lines(o: &InitOptions) -> String {
    let mut s = String::new();
    if !o.set.is_empty() {
        s += "\n# Given to init with --set.\n";
        for kv in &o.set {
            if let Some((n, v)) = kv.split_once('=') {
                s += &format!("{n}='{}'\n", v.replace('\'', r"'\''"));
            }
        }
    }
    s
}

/// The run file's first line. Under s6, s6-notifyoncheck comes first (env
/// -S splits the line the kernel passes as one word): it execs courier-run
/// in the same pid (-d: the checker is double-forked) and runs
/// ./data/check until it passes, then writes to the notification-fd, so
/// `s6-svwait -U` returns once the port serves TLS, not when the process
/// starts. Tries every 250 ms, for 30 s at most.
fn shebang(o: &InitOptions, exe: &Path) -> String {
    match o.supervisor {
        Supervisor::S6 if o.service != ServiceKind::Authdaemond => format!(
            "#!/usr/bin/env -S {} -d -w 250 -n 120 {}",
            notifyoncheck().display(),
            exe.display()
        ),
        _ => format!("#!{}", exe.display()),
    }
}

/// s6-notifyoncheck's path: found in PATH, else s6's Debian place.
fn notifyoncheck() -> PathBuf {
    let path = std::env::var_os("PATH");
    crate::resolve::find_program(
        b"s6-notifyoncheck",
        path.as_ref().map(|p| p.as_encoded_bytes()),
    )
    .unwrap_or_else(|_| PathBuf::from("/usr/bin/s6-notifyoncheck"))
}

/// s6's readiness check (./data/check, run by s6-notifyoncheck in the
/// service directory): `--probe` passes (OK, or WARNING: an expiring
/// certificate still serves).
fn s6_check(exe: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Ready when a client can connect, get the greeting and do TLS with the\n\
         # configured certificate (courier-run --probe: 0 OK, 1 WARNING).\n\
         \"{}\" ./run --probe --timeout 2 >/dev/null\n\
         test $? -le 1\n",
        exe.display()
    )
}

/// The --set settings, checked: known names, NAME=VALUE.
fn check_sets(o: &InitOptions) -> anyhow::Result<()> {
    for kv in &o.set {
        match kv.split_once('=') {
            Some((n, _)) if crate::settings::names().any(|k| k == n) => {}
            Some((n, _)) => {
                return Err(bad_input(format!(
                    "--set {n}: unknown setting (see courier-run --help)"
                )));
            }
            None => return Err(bad_input(format!("--set {kv}: write NAME=VALUE"))),
        }
    }
    Ok(())
}

/// What the new service takes from Courier's config, and what the run
/// file overrides, as lines for the admin (layout=debian keeps the
/// config's IMAPACCESSFILE and ports; courier2's access=./access
/// overrides IMAPACCESSFILE).
pub fn notes(o: &InitOptions) -> Vec<String> {
    if o.service == ServiceKind::Authdaemond {
        return Vec::new();
    }
    let mut sets = vec![
        format!("layout={}", o.layout.name()),
        format!("service={}", o.service.name()),
    ];
    if o.layout == Layout::Courier2 {
        sets.push("access=./access".into());
        sets.push("rules=".into());
    }
    sets.extend(o.set.iter().cloned());
    let environ = crate::environ::inherited();
    let r = crate::resolve::resolve(&crate::resolve::Input {
        runfile: None,
        sets: &sets,
        environ: &environ,
    });
    let at = |name: &str| {
        r.var(name)
            .map(|a| format!("{}={} ({})", name, String::from_utf8_lossy(&a.value), a.pos))
    };
    let mut out = Vec::new();
    let port_var = r.service.port_var();
    match at(port_var) {
        Some(p) => out.push(format!("port: kept from the config: {p}")),
        None => out.push(format!(
            "port: {} (the config sets no {port_var})",
            r.port.text
        )),
    }
    let list = at("IMAPACCESSFILE");
    match (&r.front.tcpd, list) {
        (Some(t), l) => match &t.access {
            Some(dat) => out.push(format!(
                "access list: kept from the config: {} -> couriertcpd -access={}",
                l.unwrap_or_else(|| "IMAPACCESSFILE unset: Courier's default".into()),
                dat.display()
            )),
            None => {
                out.push("access list: none (Debian's pop3d rc passes none to couriertcpd)".into())
            }
        },
        (None, Some(l)) if o.layout == Layout::Courier2 => {
            out.push(format!("access list: {l} is overridden by access=./access"))
        }
        _ => {}
    }
    out
}

/// The run file of `--service authdaemond`.
fn authdaemond_run_file(o: &InitOptions, exe: &Path, sup: &str) -> String {
    let mut s = format!(
        "#!{exe}\n\
         # courier-authdaemond: courier-authlib's authdaemond under {sup}.\n\
         # Made by `courier-run init`; see courier-run(1). Reads authdaemonrc as\n\
         # /usr/sbin/authdaemond does (set -a; . authdaemonrc) and runs authdaemond\n\
         # in the foreground, as root, its log on stderr: no courierlogger, no pid\n\
         # file. Stop Debian's own first: /usr/sbin/authdaemond stop, and disable it.\n\
         service=authdaemond\n",
        exe = exe.display()
    );
    s += &layout_lines(o);
    s
}

fn log_run(o: &InitOptions, exe: &Path) -> String {
    let acct = o.layout.account();
    let setuidgid = match o.supervisor {
        Supervisor::Runit => "chpst -u",
        Supervisor::S6 => "s6-setuidgid",
        Supervisor::Daemontools | Supervisor::Systemd => "setuidgid",
    };
    if o.log == Some(Log::Syslog) {
        let tag = o.service.name();
        return format!(
            "#!/bin/sh\n# The service's log: courier-run merges stderr into stdout; each\n\
             # line goes to syslog (facility mail, tag {tag}, the level from its\n\
             # ERR:/WARN:/INFO: prefix) as courierlogger sends it, as {acct}.\n\
             exec {setuidgid} {acct} {exe} syslog {tag}\n",
            exe = sh_word(exe)
        );
    }
    // contrib's rotation: 20 files of 1 MB (svlogd reads it from
    // ./main/config, which init writes).
    let (cmd, why) = match o.supervisor {
        Supervisor::Daemontools | Supervisor::Systemd => (
            format!("setuidgid {acct} multilog t s1000000 n20 ./main"),
            "multilog timestamps (t) and keeps 20 files of 1 MB (s1000000 n20) in ./main",
        ),
        Supervisor::Runit => (
            format!("chpst -u {acct} svlogd -tt ./main"),
            "svlogd timestamps (-tt) and keeps 20 files of 1 MB (./main/config) in ./main",
        ),
        Supervisor::S6 => (
            format!("s6-setuidgid {acct} s6-log t s1000000 n20 ./main"),
            "s6-log timestamps (t) and keeps 20 files of 1 MB (s1000000 n20) in ./main",
        ),
    };
    format!(
        "#!/bin/sh\n# The service's log: courier-run merges stderr into stdout;\n# {why}, as {acct}, who owns ./main.\nexec {cmd}\n"
    )
}

/// svlogd's rotation, read from the log directory: contrib's 1 MB files, 20 kept.
const SVLOGD_CONFIG: &str = "s1000000\nn20\n";

const ACCESS: &str = "\
# Courier's access list (couriertcpd(1), \"ACCESS FILE\"): an address, a
# prefix (192.168), a CIDR block or *, a tab, then deny, allow, or
# allow,NAME=VALUE. The most specific line wins. courier-run converts it
# into the front end's rules on start when it is newer than them.
127.0.0.1\tallow
*\tallow
";

/// Everything `init` would create, in order.
pub fn items(o: &InitOptions, exe: &Path) -> Vec<Creation> {
    let d = &o.dir;
    let mut items = vec![
        Creation::Dir {
            path: d.clone(),
            owner: None,
        },
        Creation::File {
            path: d.join("run"),
            mode: 0o755,
            text: run_file(o, exe),
        },
    ];
    if o.supervisor == Supervisor::Systemd {
        // init() checked that the unit can be written for these paths.
        let abs = std::path::absolute(d).unwrap_or_else(|_| d.clone());
        let svc = o.service.name();
        items.push(Creation::File {
            path: d.join(crate::systemd::unit_name(svc)),
            mode: 0o644,
            text: crate::systemd::unit_file(svc, &abs, exe).unwrap_or_default(),
        });
    } else {
        items.extend(log_items(o, exe));
    }
    if o.supervisor == Supervisor::S6 && o.service != ServiceKind::Authdaemond {
        // Readiness: s6-supervise gives ./run the write end of a pipe as
        // fd 3; s6-notifyoncheck writes a newline there once data/check
        // passes.
        items.extend([
            Creation::File {
                path: d.join("notification-fd"),
                mode: 0o644,
                text: "3\n".into(),
            },
            Creation::Dir {
                path: d.join("data"),
                owner: None,
            },
            Creation::File {
                path: d.join("data/check"),
                mode: 0o755,
                text: s6_check(exe),
            },
        ]);
    }
    // layout=debian keeps the config's access list (couriertcpd's .dat):
    // no new `* allow` list.
    if o.service == ServiceKind::Authdaemond || o.layout == Layout::Debian {
        return items;
    }
    items.extend([
        Creation::File {
            path: d.join("access"),
            mode: 0o644,
            text: ACCESS.to_string(),
        },
        Creation::Rules {
            source: d.join("access"),
            output: crate::access::output_path(d, Path::new("access"), RulesFormat::Tcprules),
        },
    ]);
    items
}

/// log/ for a supervisor's logger: log/run, and unless the log goes to
/// syslog, log/main owned by the account the logger drops to.
fn log_items(o: &InitOptions, exe: &Path) -> Vec<Creation> {
    let d = &o.dir;
    let mut items = vec![
        Creation::Dir {
            path: d.join("log"),
            owner: None,
        },
        Creation::File {
            path: d.join("log/run"),
            mode: 0o755,
            text: log_run(o, exe),
        },
    ];
    if o.log != Some(Log::Syslog) {
        items.push(Creation::Dir {
            path: d.join("log/main"),
            owner: Some(o.layout.account().to_string()),
        });
        if o.supervisor == Supervisor::Runit {
            // Created O_EXCL|O_NOFOLLOW in the directory just given to
            // the account: it can make init fail, not write elsewhere.
            items.push(Creation::File {
                path: d.join("log/main/config"),
                mode: 0o644,
                text: SVLOGD_CONFIG.to_string(),
            });
        }
    }
    items
}

// ---------------------------------------------------------------------------
// The start hint: where each supervisor's scan directory is on this system.

/// A supervisor's scan directory on this system, as far as it can be told
/// from the packages and directories present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanDirs {
    /// runit's runsvdir: Debian's runit-run makes /etc/service (a link to
    /// /etc/runit/runsvdir/current); Void's is /var/service.
    pub runit: Option<PathBuf>,
    /// daemontools' svscan: Debian's daemontools-run runs svscanboot on
    /// /etc/service (it conflicts with runit-run); djb's default /service.
    pub daemontools: Option<PathBuf>,
    /// s6-svscan: Debian's s6 package starts none; s6-linux-init's is
    /// /run/service (a scan directory holds `.s6-svscan`).
    pub s6: Option<PathBuf>,
    /// /etc/service exists and belongs to runit (said when daemontools
    /// has no scan directory: the name suggests svscan, but it is not).
    pub etc_service_is_runit: bool,
}

impl ScanDirs {
    /// What this system has (read-only: a few stat calls).
    pub fn detect() -> ScanDirs {
        let installed = |pkg: &str| Path::new(&format!("/var/lib/dpkg/info/{pkg}.list")).exists();
        let etc_service = Path::new("/etc/service");
        let link_to_runit =
            std::fs::read_link(etc_service).is_ok_and(|t| t.to_string_lossy().contains("runit"));
        let etc_service_is_runit =
            etc_service.is_dir() && (link_to_runit || installed("runit-run"));
        let dir = |p: &str| Path::new(p).is_dir().then(|| PathBuf::from(p));
        let runit = if etc_service_is_runit {
            Some(etc_service.to_path_buf())
        } else {
            dir("/var/service")
        };
        let daemontools = if installed("daemontools-run") && etc_service.is_dir() {
            Some(etc_service.to_path_buf())
        } else if !etc_service_is_runit && Path::new("/service").is_dir() {
            dir("/service")
        } else {
            None
        };
        let s6 = ["/run/service", "/service", "/etc/service"]
            .into_iter()
            .find(|d| Path::new(d).join(".s6-svscan").is_dir())
            .map(PathBuf::from);
        ScanDirs {
            runit,
            daemontools,
            s6,
            etc_service_is_runit,
        }
    }
}

fn sh_word(p: &Path) -> String {
    String::from_utf8_lossy(&crate::report::quote(p.as_os_str().as_bytes())).into_owned()
}

/// The command that starts the service (one shell line: `abs` quoted), and
/// a note when this system has no scan directory for the supervisor.
pub fn start_command(
    sup: Supervisor,
    service: ServiceKind,
    abs: &Path,
    scan: &ScanDirs,
) -> (String, Option<String>) {
    let d = sh_word(abs);
    let link = |s: &str| format!("ln -s {d} {s}/");
    match sup {
        Supervisor::Runit => match &scan.runit {
            Some(s) => (
                format!("{}   # runsvdir starts it within 5 s", link(&sh_word(s))),
                None,
            ),
            None => (
                link("SCANDIR"),
                Some(
                    "no runsvdir scan directory here (Debian: install runit-run, which runs \
                     runsvdir on /etc/service); SCANDIR is the directory your runsvdir scans"
                        .into(),
                ),
            ),
        },
        Supervisor::Daemontools => match &scan.daemontools {
            Some(s) => (
                format!("{}   # svscan starts it within 5 s", link(&sh_word(s))),
                None,
            ),
            None if scan.etc_service_is_runit => (
                link("SCANDIR"),
                Some(
                    "/etc/service belongs to runit here (runsvdir scans it, and Debian's \
                     daemontools-run, which would run svscan on it, conflicts with runit): \
                     SCANDIR is a directory your own `svscan SCANDIR` scans; or choose \
                     --supervisor runit"
                        .into(),
                ),
            ),
            None => (
                link("SCANDIR"),
                Some(
                    "no svscan scan directory here (Debian: install daemontools-run, which \
                     runs svscan on /etc/service); SCANDIR is the directory your svscan scans"
                        .into(),
                ),
            ),
        },
        Supervisor::S6 => match &scan.s6 {
            Some(s) => {
                let s = sh_word(s);
                (format!("{} && s6-svscanctl -a {s}", link(&s)), None)
            }
            None => (
                format!("{} && s6-svscanctl -a SCANDIR", link("SCANDIR")),
                Some(
                    "no s6-svscan scan directory here (Debian's s6 package starts none; \
                     s6-linux-init's is /run/service): SCANDIR is the directory your \
                     s6-svscan scans"
                        .into(),
                ),
            ),
        },
        Supervisor::Systemd => (crate::systemd::start_commands(abs, service.name()), None),
    }
}

// ---------------------------------------------------------------------------
// Creating: every file and directory relative to a directory descriptor,
// reached without following a symlink another account could have planted.
//
// The attacker: a second, unprivileged account that can write somewhere on
// the way to DIR. Every directory from / to DIR must be owned by root (or
// by whoever runs init) and writable by nobody else, except that a
// directory with the sticky bit (as /tmp) may be writable by others: they
// can add entries there but not rename or remove root's, so the next
// directory on the way (itself owned by root) stays what it is. DIR itself
// and the directories init creates things in get no such exception. A
// symlink on the way to DIR is followed only when its owner is trusted and
// it sits in a directory that passed the rule (so only root can have made
// it); DIR itself, or anything under it, being a symlink is refused.

/// Directories on the way, opened without reading them.
const WALK: OFlag = OFlag::O_PATH
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);
/// Directories init lists or changes (fchmod, fchown need a real open).
const DIR_OPEN: OFlag = OFlag::O_RDONLY
    .union(OFlag::O_DIRECTORY)
    .union(OFlag::O_NOFOLLOW)
    .union(OFlag::O_CLOEXEC);

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: a descriptor just returned by openat, owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn open_at(at: &OwnedFd, name: &OsStr, flags: OFlag) -> nix::Result<OwnedFd> {
    openat(Some(at.as_raw_fd()), name, flags, Mode::empty()).map(own)
}

/// Root, or whoever runs init (who could change the directory anyway).
fn trusted(uid: u32) -> bool {
    uid == 0 || uid == nix::unistd::geteuid().as_raw()
}

fn user_name(uid: u32) -> String {
    nix::unistd::User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map_or_else(
            || format!("uid {uid}"),
            |u| format!("{} (uid {uid})", u.name),
        )
}

fn is_symlink(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits()
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits()
}

const STICKY: u32 = 0o1000;

/// Refuse a directory another account could change: not owned by a
/// trusted account, or writable by group or others (unless `sticky_ok` and
/// it has the sticky bit).
fn check_dir(st: &FileStat, path: &Path, sticky_ok: bool) -> anyhow::Result<()> {
    let p = crate::error::printable(&path.to_string_lossy());
    if !trusted(st.st_uid) {
        return Err(bad_input(format!(
            "{p} is owned by {}: that account could replace what init creates there \
             (use a directory owned by root, or `chown root {p}`)",
            user_name(st.st_uid)
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 && !(sticky_ok && mode & STICKY != 0) {
        let fix = if sticky_ok {
            format!("`chmod go-w {p}`, or the sticky bit as /tmp has: `chmod +t {p}`")
        } else {
            format!("`chmod go-w {p}`")
        };
        return Err(bad_input(format!(
            "{p} is writable by other accounts (mode {mode:04o}): they could replace it or \
             plant a symlink in it (use a directory only root can write: {fix})"
        )));
    }
    Ok(())
}

/// Where DIR is: its parent reached and checked, the directories still to
/// create, DIR's descriptor when it exists.
struct Place {
    /// The deepest existing directory on the way (DIR's parent when DIR's
    /// parent exists).
    at: OwnedFd,
    /// `at`'s physical path.
    at_path: PathBuf,
    /// Names to create below `at`, the last one DIR (empty: DIR exists).
    missing: Vec<OsString>,
    /// DIR, opened, when it exists.
    dir: Option<OwnedFd>,
}

impl Place {
    /// DIR's absolute physical path (for the start hint).
    fn abs(&self) -> PathBuf {
        let mut p = self.at_path.clone();
        p.extend(&self.missing);
        p
    }
}

fn sys(what: impl std::fmt::Display, e: nix::Error) -> anyhow::Error {
    anyhow::Error::new(std::io::Error::from(e)).context(what.to_string())
}

/// Walk from / to DIR (see the rules above), creating nothing.
fn locate(dir: &Path) -> anyhow::Result<Place> {
    let shown = crate::error::printable(&dir.to_string_lossy());
    let Some(name) = dir.file_name() else {
        return Err(bad_input(format!(
            "{shown}: name the service directory itself (not /, . or ..)"
        )));
    };
    let abs = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .context("unable to find the current directory")?
            .join(dir)
    };
    let parent = abs.parent().unwrap_or(Path::new("/"));
    let mut walk = Walk::from_root(shown)?;
    walk.todo = names_of(parent).collect();
    // The parent's names one by one, from / (a link's target replaces
    // the link's name in `todo`), then DIR itself.
    while let Some(c) = walk.todo.pop_front() {
        walk.step(c)?;
    }
    walk.last(name, dir)
}

/// A path's names as a walk takes them: `..` kept (it is walked, through
/// the descriptor), `/` and `.` dropped.
fn names_of(p: &Path) -> impl Iterator<Item = OsString> + '_ {
    p.components().filter_map(|c| match c {
        Component::Normal(n) => Some(n.to_os_string()),
        Component::ParentDir => Some("..".into()),
        _ => None,
    })
}

/// The walk to DIR's parent, one name at a time, holding a descriptor of
/// the deepest directory reached (checked by `check_dir`): nothing on the
/// way is looked up by path, so nothing can be swapped under it.
struct Walk {
    at: OwnedFd,
    /// `at`'s physical path.
    at_path: PathBuf,
    /// The names still to walk.
    todo: std::collections::VecDeque<OsString>,
    /// The names that do not exist (init creates them), from the first.
    missing: Vec<OsString>,
    /// Symlinks followed so far (a loop ends at 40, as the kernel's).
    links: u32,
    /// DIR as given, for messages.
    shown: String,
}

impl Walk {
    /// A walk starting at /, itself checked (sticky allowed, as on the way).
    fn from_root(shown: String) -> anyhow::Result<Walk> {
        let at = open_root()?;
        let at_path = PathBuf::from("/");
        check_dir(
            &fstat(at.as_raw_fd()).map_err(|e| sys("unable to stat /", e))?,
            &at_path,
            true,
        )?;
        Ok(Walk {
            at,
            at_path,
            todo: Default::default(),
            missing: Vec::new(),
            links: 0,
            shown,
        })
    }

    /// One name of the way: below a missing one it is missing too (`..`
    /// there cannot be resolved); else `..`, a symlink, a directory, or
    /// nothing yet.
    fn step(&mut self, c: OsString) -> anyhow::Result<()> {
        if !self.missing.is_empty() {
            if c == ".." {
                return Err(bad_input(format!(
                    "{}: `..` after {}, which does not exist",
                    self.shown,
                    self.at_path.join(&self.missing[0]).display()
                )));
            }
            self.missing.push(c);
            return Ok(());
        }
        if c == ".." {
            return self.up();
        }
        let here = self.at_path.join(&c);
        match fstatat(
            Some(self.at.as_raw_fd()),
            c.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            Err(Errno::ENOENT) => self.missing.push(c),
            Err(e) => return Err(sys(format!("unable to stat {}", here.display()), e)),
            Ok(st) if is_symlink(&st) => self.follow(&c, &here, &st)?,
            Ok(st) if is_dir(&st) => self.enter(&c, here)?,
            Ok(_) => {
                return Err(bad_input(format!(
                    "{} is not a directory",
                    crate::error::printable(&here.to_string_lossy())
                )));
            }
        }
        Ok(())
    }

    /// `..`: through the descriptor, so the parent checked is the real one.
    fn up(&mut self) -> anyhow::Result<()> {
        self.at = open_at(&self.at, OsStr::new(".."), WALK)
            .map_err(|e| sys(format!("unable to open {}/..", self.at_path.display()), e))?;
        self.at_path.pop();
        let st = fstat(self.at.as_raw_fd()).map_err(|e| sys("unable to stat ..", e))?;
        check_dir(&st, &self.at_path, true)
    }

    /// A symlink on the way: followed only when a trusted account made it
    /// (it sits in a directory that passed check_dir; in a sticky one
    /// anybody may have made it: its owner says who). Its target's names
    /// are walked next, from / when it is absolute.
    fn follow(&mut self, c: &OsStr, here: &Path, st: &FileStat) -> anyhow::Result<()> {
        if !trusted(st.st_uid) {
            return Err(bad_input(format!(
                "{} is a symlink owned by {}: init follows no link another account made \
                 (name the real directory)",
                crate::error::printable(&here.to_string_lossy()),
                user_name(st.st_uid)
            )));
        }
        self.links += 1;
        if self.links > 40 {
            return Err(bad_input(format!(
                "{}: too many symlinks on the way",
                self.shown
            )));
        }
        let target = readlinkat(Some(self.at.as_raw_fd()), c)
            .map_err(|e| sys(format!("unable to read the link {}", here.display()), e))?;
        let target = PathBuf::from(target);
        for (i, t) in names_of(&target).enumerate() {
            self.todo.insert(i, t);
        }
        if target.is_absolute() {
            self.at = open_root()?;
            self.at_path = PathBuf::from("/");
        }
        Ok(())
    }

    /// A directory on the way: opened (no link followed) and checked.
    fn enter(&mut self, c: &OsStr, here: PathBuf) -> anyhow::Result<()> {
        self.at = open_at(&self.at, c, WALK)
            .map_err(|e| sys(format!("unable to open {}", here.display()), e))?;
        self.at_path = here;
        let st = fstat(self.at.as_raw_fd())
            .map_err(|e| sys(format!("unable to stat {}", self.at_path.display()), e))?;
        check_dir(&st, &self.at_path, true)
    }

    /// DIR itself, in the parent reached: missing, or a directory that
    /// passes check_dir without the sticky exception (init writes in it);
    /// a symlink or anything else is refused.
    fn last(mut self, name: &OsStr, dir: &Path) -> anyhow::Result<Place> {
        let shown = &self.shown;
        let mut dir_fd = None;
        if !self.missing.is_empty() {
            self.missing.push(name.to_os_string());
        } else {
            let here = self.at_path.join(name);
            match fstatat(
                Some(self.at.as_raw_fd()),
                name,
                AtFlags::AT_SYMLINK_NOFOLLOW,
            ) {
                Err(Errno::ENOENT) => self.missing.push(name.to_os_string()),
                Err(e) => return Err(sys(format!("unable to stat {}", here.display()), e)),
                Ok(st) if is_symlink(&st) => {
                    return Err(bad_input(format!(
                        "{shown} is a symlink: init creates nothing through one (name the real \
                         directory, or remove the link)"
                    )));
                }
                Ok(st) if is_dir(&st) => {
                    let fd = open_at(&self.at, name, DIR_OPEN)
                        .map_err(|e| sys(format!("unable to open {shown}"), e))?;
                    let st = fstat(fd.as_raw_fd())
                        .map_err(|e| sys(format!("unable to stat {shown}"), e))?;
                    check_dir(&st, dir, false)?;
                    dir_fd = Some(fd);
                }
                Ok(_) => return Err(bad_input(format!("{shown} exists and is not a directory"))),
            }
        }
        Ok(Place {
            at: self.at,
            at_path: self.at_path,
            missing: self.missing,
            dir: dir_fd,
        })
    }
}

fn open_root() -> anyhow::Result<OwnedFd> {
    openat(None, "/", WALK, Mode::empty())
        .map(own)
        .map_err(|e| sys("unable to open /", e))
}

/// Refuse a symlink anywhere under an existing DIR (init would write
/// beside or through it; the supervisor and courier-run would follow it).
fn no_symlinks(fd: &OwnedFd, path: &Path, depth: u32, seen: &mut usize) -> anyhow::Result<()> {
    let mut d = nix::dir::Dir::openat(Some(fd.as_raw_fd()), ".", DIR_OPEN, Mode::empty())
        .map_err(|e| sys(format!("unable to list {}", path.display()), e))?;
    let names: Vec<OsString> = d
        .iter()
        .filter_map(|e| e.ok())
        .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    for n in names {
        *seen += 1;
        let p = path.join(&n);
        let shown = crate::error::printable(&p.to_string_lossy());
        if *seen > 10_000 || depth > 16 {
            return Err(bad_input(format!(
                "{shown}: more than 10,000 entries or 16 levels under the directory: init \
                 expects a new or nearly empty service directory"
            )));
        }
        let st = fstatat(
            Some(fd.as_raw_fd()),
            n.as_os_str(),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| sys(format!("unable to stat {shown}"), e))?;
        if is_symlink(&st) {
            return Err(bad_input(format!(
                "{shown} is a symlink: init refuses a service directory holding one (it could \
                 lead init, the supervisor or the logger to another file; remove it)"
            )));
        }
        if is_dir(&st) {
            let sub =
                open_at(fd, &n, DIR_OPEN).map_err(|e| sys(format!("unable to open {shown}"), e))?;
            no_symlinks(&sub, &p, depth + 1, seen)?;
        }
    }
    Ok(())
}

/// `p` below DIR, as names from DIR.
fn below<'a>(dir: &Path, p: &'a Path) -> anyhow::Result<Vec<&'a OsStr>> {
    let rel = p
        .strip_prefix(dir)
        .map_err(|_| anyhow::anyhow!("{} is not under {}", p.display(), dir.display()))?;
    Ok(rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect())
}

/// The directory holding `names`' last one, opened from DIR without
/// following a symlink, and that last name.
fn parent_of<'a>(
    dir: &OwnedFd,
    shown: &Path,
    names: &[&'a OsStr],
) -> anyhow::Result<(OwnedFd, &'a OsStr)> {
    let (last, dirs) = names
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("{} names DIR itself", shown.display()))?;
    let mut fd = open_at(dir, OsStr::new("."), DIR_OPEN)
        .map_err(|e| sys(format!("unable to open {}", shown.display()), e))?;
    for d in dirs {
        fd = open_at(&fd, d, DIR_OPEN).map_err(|e| {
            sys(
                format!("unable to open the directory of {}", shown.display()),
                e,
            )
        })?;
    }
    Ok((fd, last))
}

/// What an item is now, below an existing DIR (not following links).
fn stat_below(dir: &OwnedFd, names: &[&OsStr]) -> nix::Result<Option<FileStat>> {
    let rel: PathBuf = names.iter().collect();
    match fstatat(
        Some(dir.as_raw_fd()),
        rel.as_os_str(),
        AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

fn item_path(it: &Creation) -> &Path {
    match it {
        Creation::Dir { path, .. } | Creation::File { path, .. } => path,
        Creation::Rules { output, .. } => output,
    }
}

/// What happened to one item (for the line init prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Done {
    Created,
    Exists,
}

pub fn init(o: &InitOptions) -> anyhow::Result<Exit> {
    let (mut lines, abs) = create(o)?;
    let (cmd, note) = start_command(o.supervisor, o.service, &abs, &ScanDirs::detect());
    lines += &format!("start it with: {cmd}\n");
    if let Some(n) = note {
        lines += &format!("note: {n}\n");
    }
    if o.supervisor == Supervisor::Systemd
        && let Some(n) = crate::programs::launcher()
            .ok()
            .and_then(|exe| crate::systemd::hidden_by_private_tmp(&abs, &exe))
    {
        lines += &format!("note: {n}\n");
    }
    // Two authdaemonds cannot share the socket (the second renames its own
    // over the first's): Debian's must go first.
    if o.service == ServiceKind::Authdaemond && Path::new("/etc/init.d/courier-authdaemon").exists()
    {
        lines += "note: first stop and disable Debian's authdaemond: /usr/sbin/authdaemond stop; update-rc.d courier-authdaemon disable (systemd: systemctl disable --now courier-authdaemon)\n";
    }
    crate::report::output(lines.as_bytes())?;
    Ok(Exit::Ok)
}

/// Check everything, then create (or with `dry_run`, only say) what init
/// makes: the lines saying each thing, and DIR's absolute physical path.
/// `migrate` calls this for each service directory. On a failure after
/// something was created, the lines so far are printed before the error.
pub fn create(o: &InitOptions) -> anyhow::Result<(String, PathBuf)> {
    // The launcher: what run files and units name (src/programs.rs).
    let exe = crate::programs::launcher().context("unable to find courier-run's own path")?;
    check_options(o, &exe)?;
    let items = items(o, &exe);
    // Everything is checked before anything is created.
    let place = locate(&o.dir)?;
    let exists = match &place.dir {
        Some(dir) => existing(dir, o, &items)?,
        None => vec![false; items.len()],
    };
    let owners = owners(&items, &exists)?;
    let mut lines = String::new();
    let result = if o.dry_run {
        lines = dry_run_lines(&place, &items, &exists);
        Ok(())
    } else {
        create_all(&place, o, &items, &exists, &owners, &mut lines)
    };
    if let Err(e) = result {
        // What was created before the failure is said (ignoring a failed
        // write: the error is the news).
        let _ = crate::report::output(lines.as_bytes());
        return Err(e);
    }
    for n in notes(o) {
        lines += &format!("{n}\n");
    }
    Ok((lines, place.abs()))
}

/// The options' own refusals, before the file system is looked at.
fn check_options(o: &InitOptions, exe: &Path) -> anyhow::Result<()> {
    // The start hint is a command to paste: a name holding a control
    // character (a newline, an escape) can be neither pasted nor shown as
    // it is, so it is refused rather than printed raw (docs/messages.md).
    if o.dir.to_string_lossy().chars().any(char::is_control) {
        return Err(bad_input(format!(
            "init {}: a directory name with a control character cannot be shown or pasted safely (choose a name without one)",
            crate::shown::path(&o.dir)
        )));
    }
    check_sets(o)?;
    if o.supervisor == Supervisor::Systemd {
        if o.log == Some(Log::File) {
            return Err(bad_input(
                "--log file: under systemd the log is the journal (tagged and with facility mail, \
                 forwarded to syslog); --log file is for daemontools, runit and s6",
            ));
        }
        // The unit names DIR and courier-run: a path it cannot hold is
        // refused now, not after DIR was made.
        let abs = std::path::absolute(&o.dir)
            .with_context(|| format!("unable to make {} absolute", o.dir.display()))?;
        crate::systemd::unit_file(o.service.name(), &abs, exe)?;
    }
    Ok(())
}

/// Which items an existing DIR already has (found through its descriptor,
/// no link followed). A directory is used as it is, but one init creates
/// files in must pass check_dir; an existing file is an error: init never
/// overwrites.
fn existing(dir: &OwnedFd, o: &InitOptions, items: &[Creation]) -> anyhow::Result<Vec<bool>> {
    no_symlinks(dir, &o.dir, 0, &mut 0)?;
    let mut exists: Vec<bool> = vec![false; items.len()];
    for (i, it) in items.iter().enumerate() {
        let p = item_path(it);
        if p == o.dir {
            exists[i] = true;
            continue;
        }
        let names = below(&o.dir, p)?;
        let shown = crate::error::printable(&p.to_string_lossy());
        let Some(st) =
            stat_below(dir, &names).map_err(|e| sys(format!("unable to stat {shown}"), e))?
        else {
            continue;
        };
        exists[i] = true;
        match it {
            Creation::Dir { .. } if !is_dir(&st) => {
                return Err(bad_input(format!(
                    "{shown} exists and is not a directory (remove it, or pick another directory)"
                )));
            }
            Creation::Dir { path, .. } => {
                // init creates files in it: nobody else may change it.
                if items.iter().any(|x| item_path(x).parent() == Some(path)) {
                    check_dir(&st, p, false)?;
                }
            }
            _ => {
                return Err(bad_input(format!(
                    "{shown} exists: init never overwrites (remove it, or pick another directory)"
                )));
            }
        }
    }
    Ok(exists)
}

/// The accounts that get a directory init creates (log/main): known, and
/// init may give it (root, or the account itself).
fn owners(items: &[Creation], exists: &[bool]) -> anyhow::Result<Vec<crate::account::Account>> {
    let mut owners = Vec::new();
    for (it, &there) in items.iter().zip(exists) {
        if let Creation::Dir {
            owner: Some(name), ..
        } = it
            && !there
        {
            let a = crate::account::lookup(name, "log owner")?;
            if !nix::unistd::geteuid().is_root() && a.uid != nix::unistd::geteuid().as_raw() {
                return Err(bad_input(format!(
                    "init gives {} to {name}: run it as root",
                    crate::error::printable(&item_path(it).to_string_lossy())
                )));
            }
            owners.push(a);
        }
    }
    Ok(owners)
}

/// `--dry-run`'s lines: the directories on the way that would be made,
/// then each item as the creation would say it.
fn dry_run_lines(place: &Place, items: &[Creation], exists: &[bool]) -> String {
    let mut lines = String::new();
    let mut on_way = place.at_path.clone();
    for n in place.missing.iter().rev().skip(1).rev() {
        on_way.push(n);
        lines += &format!(
            "would create {}/\n",
            crate::error::printable(&on_way.to_string_lossy())
        );
    }
    for (it, &there) in items.iter().zip(exists) {
        let done = if there { Done::Exists } else { Done::Created };
        lines += &line(it, done, true);
    }
    lines
}

fn line(it: &Creation, done: Done, dry: bool) -> String {
    let verb = match (done, dry) {
        (Done::Exists, _) => "exists",
        (Done::Created, true) => "would create",
        (Done::Created, false) => "created",
    };
    let shown = |p: &Path| crate::error::printable(&p.to_string_lossy());
    match it {
        Creation::Dir { path, owner } => format!(
            "{verb} {}/{}\n",
            shown(path),
            match (owner, done) {
                (Some(o), Done::Created) => format!(" (owner {o})"),
                (Some(_), Done::Exists) => " (left as it is: owner and mode unchanged)".into(),
                (None, _) => String::new(),
            }
        ),
        Creation::File { path, mode, .. } => format!("{verb} {} (mode {mode:o})\n", shown(path)),
        Creation::Rules { source, output } => format!(
            "{verb} {} (tcprules cdb, from {})\n",
            shown(output),
            shown(source)
        ),
    }
}

/// Create the missing directories on the way, DIR, then each item that is
/// not there, in order; `lines` says each as it is done.
fn create_all(
    place: &Place,
    o: &InitOptions,
    items: &[Creation],
    exists: &[bool],
    owners: &[crate::account::Account],
    lines: &mut String,
) -> anyhow::Result<()> {
    let mut at_path = place.at_path.clone();
    let dir = match &place.dir {
        Some(d) => open_at(d, OsStr::new("."), DIR_OPEN)
            .map_err(|e| sys(format!("unable to open {}", o.dir.display()), e))?,
        None => {
            let mut fd = open_at(&place.at, OsStr::new("."), DIR_OPEN)
                .map_err(|e| sys(format!("unable to open {}", at_path.display()), e))?;
            let (last, on_way) = place.missing.split_last().expect("DIR is missing");
            for n in on_way {
                at_path.push(n);
                fd = make_dir(&fd, n, &at_path, None)?;
                lines.push_str(&format!(
                    "created {}/\n",
                    crate::error::printable(&at_path.to_string_lossy())
                ));
            }
            make_dir(&fd, last, &o.dir, None)?
        }
    };
    let mut owners = owners.iter();
    for (i, it) in items.iter().enumerate() {
        let path = item_path(it);
        if exists[i] {
            lines.push_str(&line(it, Done::Exists, false));
            continue;
        }
        if path == o.dir {
            lines.push_str(&line(it, Done::Created, false));
            continue;
        }
        let names = below(&o.dir, path)?;
        let (at, name) = parent_of(&dir, path, &names)?;
        match it {
            Creation::Dir { owner, .. } => {
                let a = owner.as_ref().and_then(|_| owners.next());
                make_dir(&at, name, path, a)?;
            }
            Creation::File { mode, text, .. } => {
                make_file(&at, name, path, *mode, text.as_bytes())?
            }
            Creation::Rules { source, .. } => {
                let text = read_below(&dir, &o.dir, source)?;
                let entries = crate::access::parse(&text, source).map_err(bad_input)?;
                let c = crate::access::convert(&entries, RulesFormat::Tcprules, false)
                    .map_err(bad_input)?;
                make_file(&at, name, path, 0o644, &crate::cdb::write(&c.records))?;
            }
        }
        lines.push_str(&line(it, Done::Created, false));
    }
    Ok(())
}

/// mkdirat: a new directory (EEXIST is an error: something appeared while
/// init ran), mode 0755 whatever the umask (the logger, another account,
/// must reach log/main), given to `owner` through its descriptor.
fn make_dir(
    at: &OwnedFd,
    name: &OsStr,
    shown: &Path,
    owner: Option<&crate::account::Account>,
) -> anyhow::Result<OwnedFd> {
    let what = || crate::error::printable(&shown.to_string_lossy());
    mkdirat(Some(at.as_raw_fd()), name, Mode::from_bits_truncate(0o700))
        .map_err(|e| sys(format!("unable to create {}", what()), e))?;
    let fd =
        open_at(at, name, DIR_OPEN).map_err(|e| sys(format!("unable to open {}", what()), e))?;
    if let Some(a) = owner {
        fchown(
            fd.as_raw_fd(),
            Some(Uid::from_raw(a.uid)),
            Some(Gid::from_raw(a.gid)),
        )
        .map_err(|e| sys(format!("unable to give {} to {}", what(), a.name), e))?;
    }
    fchmod(fd.as_raw_fd(), Mode::from_bits_truncate(0o755))
        .map_err(|e| sys(format!("unable to chmod {}", what()), e))?;
    Ok(fd)
}

/// A new file (O_EXCL, O_NOFOLLOW) holding `bytes`, then `mode`; removed
/// again when it cannot be written whole.
fn make_file(
    at: &OwnedFd,
    name: &OsStr,
    shown: &Path,
    mode: u32,
    bytes: &[u8],
) -> anyhow::Result<()> {
    let what = crate::error::printable(&shown.to_string_lossy());
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        Some(at.as_raw_fd()),
        name,
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| sys(format!("unable to create {what}"), e))?;
    let mut f = std::fs::File::from(own(fd));
    let written = f
        .write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(anyhow::Error::new)
        .and_then(|_| {
            fchmod(f.as_raw_fd(), Mode::from_bits_truncate(mode)).map_err(|e| sys("fchmod", e))
        });
    if let Err(e) = written {
        let _ = unlinkat(Some(at.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir);
        return Err(e.context(format!("unable to write {what}")));
    }
    Ok(())
}

/// A file init just created below DIR, read back through descriptors.
fn read_below(dir: &OwnedFd, root: &Path, p: &Path) -> anyhow::Result<Vec<u8>> {
    let names = below(root, p)?;
    let (at, name) = parent_of(dir, p, &names)?;
    let fd = open_at(
        &at,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
    )
    .map_err(|e| sys(format!("unable to open {}", p.display()), e))?;
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut std::fs::File::from(fd), &mut v)
        .with_context(|| format!("unable to read {}", p.display()))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path, sup: Supervisor, svc: ServiceKind) -> InitOptions {
        InitOptions {
            dir: dir.to_path_buf(),
            service: svc,
            layout: Layout::Debian,
            supervisor: sup,
            log: None,
            dry_run: false,
            set: Vec::new(),
        }
    }

    #[test]
    fn loggers_per_supervisor() {
        let d = Path::new("/x");
        let exe = Path::new("/usr/bin/courier-run");
        let lr = |s| log_run(&opts(d, s, ServiceKind::Imapd), exe);
        assert!(
            lr(Supervisor::Daemontools)
                .contains("exec setuidgid courier multilog t s1000000 n20 ./main")
        );
        assert!(lr(Supervisor::Runit).contains("exec chpst -u courier svlogd -tt ./main"));
        assert!(
            lr(Supervisor::S6).contains("exec s6-setuidgid courier s6-log t s1000000 n20 ./main")
        );
        let mut o = opts(d, Supervisor::Runit, ServiceKind::Pop3dSsl);
        o.log = Some(Log::Syslog);
        assert!(
            log_run(&o, exe)
                .contains("exec chpst -u courier /usr/bin/courier-run syslog pop3d-ssl\n")
        );
        let paths = |o: &InitOptions| -> Vec<PathBuf> {
            items(o, exe)
                .iter()
                .map(|i| item_path(i).to_path_buf())
                .collect()
        };
        // syslog: no log/main; runit's file log: svlogd's rotation config.
        assert!(!paths(&o).contains(&d.join("log/main")));
        o.log = None;
        assert!(paths(&o).contains(&d.join("log/main/config")));
        // systemd: the unit, no log/; for authdaemond no access list either.
        let o = opts(d, Supervisor::Systemd, ServiceKind::Imapd);
        let p = paths(&o);
        assert!(p.contains(&d.join("courier-run-imapd.service")), "{p:?}");
        assert!(!p.iter().any(|p| p.starts_with(d.join("log"))), "{p:?}");
        let o = opts(d, Supervisor::Systemd, ServiceKind::Authdaemond);
        assert_eq!(
            paths(&o),
            [
                d.to_path_buf(),
                d.join("run"),
                d.join("courier-run-authdaemond.service")
            ]
        );
        assert_eq!(
            start_command(Supervisor::Systemd, ServiceKind::Imapd, d, &ScanDirs::detect()),
            (
                "systemctl link /x/courier-run-imapd.service && systemctl enable --now courier-run-imapd.service"
                    .into(),
                None
            )
        );
        let r = run_file(
            &opts(d, Supervisor::S6, ServiceKind::Pop3d),
            Path::new("/usr/bin/courier-run"),
        );
        // s6: readiness through s6-notifyoncheck, which execs courier-run.
        let first = r.lines().next().unwrap();
        assert!(first.starts_with("#!/usr/bin/env -S /"), "{first}");
        assert!(
            first.ends_with("s6-notifyoncheck -d -w 250 -n 120 /usr/bin/courier-run"),
            "{first}"
        );
        let r = run_file(
            &opts(d, Supervisor::Runit, ServiceKind::Pop3d),
            Path::new("/usr/bin/courier-run"),
        );
        assert!(r.starts_with("#!/usr/bin/courier-run\n"));
        assert!(r.contains("service=pop3d\nlayout=debian\n"));
        // Debian: the config's access list, not a new one.
        assert!(!r.lines().any(|l| l.starts_with("access=")), "{r}");
        assert!(r.contains("on couriertcpd"), "{r}");
        assert!(r.contains("\nwait_authdaemond=yes\n"));
        // courier2 keeps its own list (the recipe had no IMAPACCESSFILE).
        let mut o = opts(d, Supervisor::Daemontools, ServiceKind::Imapd);
        o.layout = Layout::Courier2;
        assert!(run_file(&o, Path::new("/x")).contains("\naccess=./access\n"));
        assert_eq!(items(&o, Path::new("/x")).len(), 7);
    }

    #[test]
    fn authdaemond_service_dir() {
        let d = Path::new("/x");
        let o = opts(d, Supervisor::Daemontools, ServiceKind::Authdaemond);
        let r = run_file(&o, Path::new("/usr/bin/courier-run"));
        assert!(r.contains("\nservice=authdaemond\nlayout=debian\n"), "{r}");
        assert!(!r.contains("access="), "{r}");
        // The run file is one courier-run reads without a problem.
        let dir = std::env::temp_dir().join(format!("cr-init-authd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("run"), &r).unwrap();
        let (s, p) = crate::settings::Settings::load(Some(&dir.join("run")), &[], &[]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(p.is_empty(), "{p:?}");
        assert!(s.authdaemond);
        let paths: Vec<PathBuf> = items(&o, Path::new("/usr/bin/courier-run"))
            .into_iter()
            .filter_map(|i| match i {
                Creation::File { path, .. } => Some(path),
                _ => None,
            })
            .collect();
        assert_eq!(paths, [d.join("run"), d.join("log/run")]);
    }

    /// The start line per supervisor and system: quoted, the scan
    /// directory where there is one, SCANDIR and a note where not.
    #[test]
    fn start_hints_per_supervisor_and_system() {
        let abs = Path::new("/srv/a b;c");
        let none = ScanDirs {
            runit: None,
            daemontools: None,
            s6: None,
            etc_service_is_runit: false,
        };
        let debian_runit = ScanDirs {
            runit: Some("/etc/service".into()),
            etc_service_is_runit: true,
            ..none.clone()
        };
        let hint = |sup, scan: &ScanDirs| start_command(sup, ServiceKind::Imapd, abs, scan);
        assert_eq!(
            hint(Supervisor::Runit, &debian_runit),
            (
                "ln -s '/srv/a b;c' /etc/service/   # runsvdir starts it within 5 s".into(),
                None
            )
        );
        let (cmd, note) = hint(Supervisor::Daemontools, &debian_runit);
        assert_eq!(cmd, "ln -s '/srv/a b;c' SCANDIR/");
        assert!(note.unwrap().contains("/etc/service belongs to runit"));
        let (cmd, note) = hint(Supervisor::Daemontools, &none);
        assert_eq!(cmd, "ln -s '/srv/a b;c' SCANDIR/");
        assert!(note.unwrap().contains("daemontools-run"));
        let s6 = ScanDirs {
            s6: Some("/run/service".into()),
            ..none.clone()
        };
        assert_eq!(
            hint(Supervisor::S6, &s6).0,
            "ln -s '/srv/a b;c' /run/service/ && s6-svscanctl -a /run/service"
        );
        let (cmd, note) = hint(Supervisor::S6, &none);
        assert_eq!(
            cmd,
            "ln -s '/srv/a b;c' SCANDIR/ && s6-svscanctl -a SCANDIR"
        );
        assert!(note.unwrap().contains("/run/service"));
    }

    #[test]
    fn creates_and_refuses_to_overwrite() {
        let Some(dir) = crate::frontend::tests_support::tempdir("init") else {
            return;
        };
        let d = dir.join("svc");
        let mut o = opts(&d, Supervisor::Runit, ServiceKind::Imapd);
        o.dry_run = true;
        init(&o).unwrap();
        assert!(!d.exists(), "--dry-run created something");
        o.dry_run = false;
        if !crate::skip::have(
            "root and the courier account (init chowns log/main)",
            crate::account::lookup("courier", "test").is_ok() && nix::unistd::geteuid().is_root(),
        ) {
            let _ = std::fs::remove_dir_all(dir);
            return;
        }
        init(&o).unwrap();
        for f in ["run", "log/run", "log/main"] {
            assert!(d.join(f).exists(), "{f}");
        }
        assert!(
            !d.join("access").exists(),
            "layout=debian keeps the config's list"
        );
        let e = init(&o).unwrap_err();
        assert!(format!("{e:#}").contains("exists: init never overwrites"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
