//! The plan: everything the launch will do, computed in full before anything
//! is changed. Reading is allowed here (files, passwd, getrlimit, stat);
//! changing is not. `--dry-run` prints this value and the launch applies this
//! very value, so the dry run cannot lie.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::account::{self, Account};
use crate::config::{Assignment, Scope};
use crate::envdir::{self, Modes};
use crate::error::{Exit, bad_input, coded};
use crate::limits::{self, Limit, Resource};
use crate::settings::{Layout, Origin, Settings};

/// One variable of the environment the program gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Var {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    pub origin: Origin,
}

/// The envdir part of the plan.
#[derive(Clone, Debug)]
pub struct EnvdirPlan {
    pub path: PathBuf,
    /// (name, value) in config order.
    pub vars: Vec<(String, Vec<u8>)>,
    pub modes: Modes,
    /// It already holds exactly this: the launch writes nothing.
    pub unchanged: bool,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub settings: Settings,
    /// The config files read, in order.
    pub configs: Vec<PathBuf>,
    /// The environment courier-run started with (for the dry run's diff).
    pub inherited: Vec<(Vec<u8>, Vec<u8>)>,
    /// The complete environment of the program, in envp order.
    pub env: Vec<Var>,
    /// The config's variables (what the envdir holds), in order.
    pub config_vars: Vec<Assignment>,
    pub envdir: Option<EnvdirPlan>,
    /// envuidgid's account (sets UID and GID in the environment).
    pub account: Option<Account>,
    /// setuidgid's account: the identity switched to before exec.
    pub setuidgid: Option<Account>,
    /// uid, gid and groups at exec.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub umask: Option<(u32, Origin)>,
    /// ulimit_v in bytes (None inside: unlimited) and where it came from.
    pub ulimit_v: Option<(Option<u64>, Origin)>,
    pub softlimit: Vec<limits::Setting>,
    /// Every resource's limits at exec.
    pub limits: BTreeMap<Resource, Limit>,
    /// The limits courier-run started with (to tell what changed).
    pub limits_before: BTreeMap<Resource, Limit>,
    pub merge_stderr: bool,
    pub banner: Vec<String>,
    /// The resolved program (argv[0] looked up in the final PATH).
    pub program: PathBuf,
    pub argv: Vec<Vec<u8>>,
    pub warnings: Vec<String>,
}

/// A setting's value with its origin, after config-derived defaults.
pub struct Val {
    pub text: String,
    pub origin: Origin,
}

/// A setting that defaults to a config variable (`port` to PORT, ...): the
/// setting, else the variable (positioned at its value), else `fallback`.
pub fn derived(
    settings: &Settings,
    config: &[Assignment],
    name: &str,
    var: &str,
    fallback: Option<&str>,
) -> Option<Val> {
    let s = settings.get(name);
    if let Some(v) = &s.value {
        return Some(Val {
            text: v.clone(),
            origin: s.origin.clone(),
        });
    }
    if let Some(a) = config.iter().find(|a| a.name == var) {
        return Some(Val {
            text: String::from_utf8_lossy(&a.value).into_owned(),
            origin: Origin::File(a.value_pos.clone()),
        });
    }
    fallback.map(|f| Val {
        text: f.to_string(),
        origin: Origin::Default,
    })
}

impl Plan {
    /// Compute the plan. `inherited` is the environment courier-run started
    /// with, as bytes.
    pub fn new(settings: Settings, inherited: Vec<(Vec<u8>, Vec<u8>)>) -> anyhow::Result<Plan> {
        let mut warnings = settings.warnings.clone();
        let inherited = dedup(inherited);

        // 1. The environment sh would start with, per inherit_env.
        let inherit = Inherit::from(&settings)?;
        let base: Vec<(Vec<u8>, Vec<u8>)> = inherited
            .iter()
            .filter(|(n, _)| inherit.keeps(n))
            .cloned()
            .collect();

        // 2. The config files, in one scope, with Courier's rc variables
        //    predefined for references (not exported, so not in the envdir).
        let configs: Vec<PathBuf> = settings
            .str("config")
            .split_ascii_whitespace()
            .map(PathBuf::from)
            .collect();
        let mut visible: Vec<(String, Vec<u8>)> = base
            .iter()
            .filter_map(|(n, v)| Some((String::from_utf8(n.clone()).ok()?, v.clone())))
            .collect();
        visible.extend(predefined(&settings));
        let mut scope = Scope::new(visible);
        let mut private = false;
        for path in &configs {
            private |= crate::config::read_file(&mut scope, path)? & 0o004 == 0;
        }
        warnings.extend(scope.warnings.iter().map(|w| w.to_string()));
        let config_vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
        for a in &config_vars {
            envdir::check_carriable(a)?;
        }
        let cfg = |name: &str| config_vars.iter().find(|a| a.name == name);

        // 3. Settings that default to a config variable.
        let derived = |name, var, fallback| derived(&settings, &config_vars, name, var, fallback);
        let address = derived("address", "ADDRESS", Some("0")).expect("has a fallback");
        let port = derived("port", "PORT", Some("143")).expect("has a fallback");
        let conlimit = derived("conlimit", "MAXDAEMONS", Some("40")).expect("has a fallback");
        let maildir = derived("maildir", "MAILDIRPATH", Some("Maildir")).expect("has a fallback");
        let umask = match derived("umask", "IMAP_UMASK", None) {
            Some(v) if !v.text.is_empty() => Some((parse_umask(&v)?, v.origin)),
            _ => None,
        };
        let ulimit_v = match derived("ulimit_v", "IMAP_ULIMITD", None) {
            Some(v) if !v.text.is_empty() => Some((
                limits::parse_ulimit_v(&v.text)
                    .map_err(|e| bad_input(v.origin.at(&format!("{e:#}"))))?,
                v.origin,
            )),
            _ => None,
        };
        check_address(&address)?;
        check_port(&port)?;
        check_conlimit(&conlimit)?;

        // 4. Identity: envuidgid's account, setuidgid's account.
        let account = lookup_setting(&settings, "account")?;
        let setuidgid = lookup_setting(&settings, "setuidgid")?;
        if let Some(a) = &setuidgid {
            check_can_switch(a)?;
        }
        let (uid, gid, groups) = match &setuidgid {
            // setuidgid: setgroups(1, &gid), setgid, setuid (daemontools).
            Some(a) => (a.uid, a.gid, vec![a.gid]),
            None => (
                nix::unistd::geteuid().as_raw(),
                nix::unistd::getegid().as_raw(),
                nix::unistd::getgroups()
                    .map(|g| g.iter().map(|g| g.as_raw()).collect())
                    .unwrap_or_default(),
            ),
        };

        // 5. The environment: base, then envuidgid, then the envdir, in the
        //    classic chain's order (so a config UID would win over
        //    envuidgid's, as with `envuidgid a envdir ./env`).
        let mut env: Vec<Var> = base
            .iter()
            .map(|(n, v)| Var {
                name: n.clone(),
                value: v.clone(),
                origin: Origin::Inherited,
            })
            .collect();
        if let Some(a) = &account {
            set(
                &mut env,
                b"GID",
                a.gid.to_string().into_bytes(),
                Origin::Envuidgid,
            );
            set(
                &mut env,
                b"UID",
                a.uid.to_string().into_bytes(),
                Origin::Envuidgid,
            );
            for n in ["UID", "GID"] {
                if let Some(c) = cfg(n) {
                    warnings.push(format!(
                        "{}: the config sets {n}, which overrides envuidgid's value for account {}",
                        c.pos, a.name
                    ));
                }
            }
        }
        for a in &config_vars {
            // What envdir reads back from what we write (identical for every
            // carriable value; computed, not assumed).
            let value = envdir::decode(&envdir::encode(&a.value)).unwrap_or_default();
            set(
                &mut env,
                a.name.as_bytes(),
                value,
                Origin::File(a.pos.clone()),
            );
        }

        // 6. Limits: current, then ulimit_v, then softlimit.
        let softlimit = limits::parse_softlimit(settings.str("softlimit"))
            .map_err(|e| bad_input(settings.get("softlimit").origin.at(&format!("{e:#}"))))?;
        let limits_before = limits::current()?;
        let planned_limits = limits::plan(
            &limits_before,
            ulimit_v.as_ref().map(|(v, _)| *v),
            &softlimit,
        )
        .map_err(|e| match &ulimit_v {
            Some((_, o)) => e.context(o.at("ulimit_v")),
            None => e,
        })?;

        // 7. The envdir (read-only probe: is it already right?).
        let envdir = match settings.str("envdir") {
            "" => None,
            dir => {
                let path = PathBuf::from(dir);
                let vars: Vec<(String, Vec<u8>)> = config_vars
                    .iter()
                    .map(|a| (a.name.clone(), a.value.clone()))
                    .collect();
                let modes = Modes::for_source(private);
                let pairs: Vec<(&str, &[u8])> = vars
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_slice()))
                    .collect();
                check_envdir_path(&path, &settings.get("envdir").origin)?;
                let unchanged = envdir::holds(&path, &pairs, modes)?;
                if !unchanged {
                    check_writable_parent(&path)?;
                }
                Some(EnvdirPlan {
                    path,
                    vars,
                    modes,
                    unchanged,
                })
            }
        };

        // 8. argv and the program.
        let mut argv: Vec<Vec<u8>> = settings
            .str("server")
            .split_ascii_whitespace()
            .map(|w| w.as_bytes().to_vec())
            .collect();
        if argv.is_empty() {
            return Err(bad_input(
                settings
                    .get("server")
                    .origin
                    .at("server is empty (set it to e.g. \"tcpserver -v -RH -l0\")"),
            ));
        }
        argv.push(b"-c".to_vec());
        argv.push(conlimit.text.clone().into_bytes());
        if !settings.str("rules").is_empty() {
            argv.push(b"-x".to_vec());
            argv.push(settings.str("rules").as_bytes().to_vec());
        }
        argv.push(address.text.clone().into_bytes());
        argv.push(port.text.clone().into_bytes());
        // login= empty: imapd runs alone, preauthenticated as the user
        // tcpserver runs as (it answers `* PREAUTH`); auth modules then have
        // nothing to hand credentials to.
        let login = settings.str("login");
        let auth = settings.str("auth");
        if login.is_empty() && !auth.trim().is_empty() {
            return Err(bad_input(settings.get("auth").origin.at(
                "auth modules need a login program, and login is empty (set login=, or auth= for none)",
            )));
        }
        if !login.is_empty() {
            argv.push(login.as_bytes().to_vec());
        }
        for m in auth.split_ascii_whitespace() {
            argv.push(auth_path(&settings, m)?.into_bytes());
        }
        if settings.str("imapd").is_empty() {
            return Err(bad_input(
                settings
                    .get("imapd")
                    .origin
                    .at("imapd is empty (set it to the imapd program)"),
            ));
        }
        argv.push(settings.str("imapd").as_bytes().to_vec());
        argv.push(maildir.text.clone().into_bytes());
        let path = env
            .iter()
            .find(|v| v.name == b"PATH")
            .map(|v| v.value.clone());
        let program = resolve(&argv[0], path.as_deref())?;

        let merge_stderr = match settings.str("stderr") {
            "merge" => true,
            "keep" => false,
            other => {
                return Err(bad_input(
                    settings
                        .get("stderr")
                        .origin
                        .at(&format!("stderr \"{other}\" is neither merge nor keep")),
                ));
            }
        };
        let banner = match settings.str("banner") {
            "yes" => vec![
                "*** Starting courier-imap service...".to_string(),
                format!("*** >>configured for maildir: {}", maildir.text),
            ],
            "no" => vec![],
            other => {
                return Err(bad_input(
                    settings
                        .get("banner")
                        .origin
                        .at(&format!("banner \"{other}\" is neither yes nor no")),
                ));
            }
        };

        // Record what the config-derived settings resolved to, for
        // --explain (`port="143" [./imapd:7:1]`).
        let mut settings = settings;
        let umask_text = umask.as_ref().map(|(m, o)| (format!("{m:03o}"), o.clone()));
        let ulimit_text = ulimit_v.as_ref().map(|(v, o)| {
            let t = v.map_or("unlimited".to_string(), |b| (b / 1024).to_string());
            (t, o.clone())
        });
        for (name, resolved) in [
            ("address", Some((address.text, address.origin))),
            ("port", Some((port.text, port.origin))),
            ("conlimit", Some((conlimit.text, conlimit.origin))),
            ("maildir", Some((maildir.text, maildir.origin))),
            ("umask", umask_text),
            ("ulimit_v", ulimit_text),
        ] {
            if let Some((text, origin)) = resolved {
                settings.resolve(name, text, origin);
            }
        }

        Ok(Plan {
            settings,
            configs,
            inherited,
            env,
            config_vars,
            envdir,
            account,
            setuidgid,
            uid,
            gid,
            groups,
            umask,
            ulimit_v,
            softlimit,
            limits: planned_limits,
            limits_before,
            merge_stderr,
            banner,
            program,
            argv,
            warnings,
        })
    }

    /// The value of `name` in the program's environment.
    pub fn env_get(&self, name: &str) -> Option<&[u8]> {
        self.env
            .iter()
            .find(|v| v.name == name.as_bytes())
            .map(|v| v.value.as_slice())
    }
}

/// Keep the first of duplicate names, as getenv(3) sees them.
fn dedup(env: Vec<(Vec<u8>, Vec<u8>)>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut seen = std::collections::HashSet::new();
    env.into_iter()
        .filter(|(n, _)| seen.insert(n.clone()))
        .collect()
}

/// `inherit_env`: all, none (Courier's `env -i`), or names to keep.
pub enum Inherit {
    All,
    Nothing,
    Names(Vec<Vec<u8>>),
}

impl Inherit {
    pub fn from(settings: &Settings) -> anyhow::Result<Inherit> {
        Ok(match settings.str("inherit_env") {
            "all" => Inherit::All,
            "none" => Inherit::Nothing,
            names => {
                let names: Vec<Vec<u8>> = names
                    .split_ascii_whitespace()
                    .map(|n| n.as_bytes().to_vec())
                    .collect();
                if let Some(bad) = names.iter().find(|n| !crate::config::is_name(n)) {
                    return Err(bad_input(settings.get("inherit_env").origin.at(&format!(
                        "inherit_env: {} is not a variable name (write all, none, or names separated by blanks)",
                        String::from_utf8_lossy(bad)
                    ))));
                }
                Inherit::Names(names)
            }
        })
    }

    pub fn keeps(&self, name: &[u8]) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Nothing => false,
            Inherit::Names(names) => names.iter().any(|k| k == name),
        }
    }
}

/// The variables Courier's rc script sets before sourcing the config:
/// visible to `$prefix`-style references in the config files.
pub fn predefined(settings: &Settings) -> Vec<(String, Vec<u8>)> {
    let prefix = settings.str("prefix");
    let (libexec, sysconf) = match settings.layout {
        Layout::Courier2 => (format!("{prefix}/libexec"), format!("{prefix}/etc")),
        Layout::Debian => ("/usr/lib/courier".to_string(), "/etc/courier".to_string()),
    };
    [
        ("prefix", prefix.to_string()),
        ("exec_prefix", prefix.to_string()),
        ("bindir", format!("{prefix}/bin")),
        ("sbindir", format!("{prefix}/sbin")),
        ("libexecdir", libexec),
        ("sysconfdir", sysconf),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.into_bytes()))
    .collect()
}

/// Set `name` as daemontools' pathexec_env does: replace, or append.
fn set(env: &mut Vec<Var>, name: &[u8], value: Vec<u8>, origin: Origin) {
    match env.iter_mut().find(|v| v.name == name) {
        Some(v) => {
            v.value = value;
            v.origin = origin;
        }
        None => env.push(Var {
            name: name.to_vec(),
            value,
            origin,
        }),
    }
}

/// The account a setting names (`account`, `setuidgid`), or None when
/// empty. An unknown account's message starts with where it was set
/// (`./run:4:1: account: unknown account x`), like every other bad value.
fn lookup_setting(settings: &Settings, name: &str) -> anyhow::Result<Option<Account>> {
    match settings.str(name) {
        "" => Ok(None),
        acct => {
            account::lookup(acct, name)
                .map(Some)
                .map_err(|e| match &settings.get(name).origin {
                    Origin::File(p) => e.context(p.to_string()),
                    _ => e,
                })
        }
    }
}

/// setuidgid's setgroups and setgid need CAP_SETGID, its setuid
/// CAP_SETUID (unless already that user): without them the launch would
/// fail after writing the envdir (111), so the plan fails the same way.
/// Root in a container may lack them.
fn check_can_switch(a: &Account) -> anyhow::Result<()> {
    use crate::caps::{CAP_SETGID, CAP_SETUID, has};
    let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let same_user = uid.as_raw() == a.uid && euid.as_raw() == a.uid;
    if has(CAP_SETGID) && (same_user || has(CAP_SETUID)) {
        return Ok(());
    }
    Err(anyhow::anyhow!(
        "setuidgid {}: unable to switch to uid {} gid {}: courier-run runs as uid {euid} without the privilege to (CAP_SETUID and CAP_SETGID; start it as root, or set setuidgid= to stay)",
        a.name,
        a.uid,
        a.gid
    ))
}

fn parse_umask(v: &Val) -> anyhow::Result<u32> {
    match u32::from_str_radix(&v.text, 8) {
        Ok(m) if m <= 0o777 && !v.text.starts_with('+') => Ok(m),
        _ => Err(bad_input(v.origin.at(&format!(
            "umask \"{}\" is not an octal mode (write e.g. 022)",
            v.text
        )))),
    }
}

fn check_address(v: &Val) -> anyhow::Result<()> {
    if v.text.is_empty() || v.text.contains([',', ' ', '\t']) {
        return Err(bad_input(v.origin.at(&format!(
            "address \"{}\" is not one host or IP address (tcpserver binds one; 0 means all)",
            v.text
        ))));
    }
    Ok(())
}

/// One TCP port: a number 1-65535 or a service name from /etc/services, as
/// tcpserver accepts. Courier's PORT may be a list or `address.port`, which
/// one tcpserver cannot bind.
fn check_port(v: &Val) -> anyhow::Result<()> {
    let t = &v.text;
    if t.contains(',') {
        return Err(bad_input(v.origin.at(&format!(
            "port \"{t}\" is a list of addresses: one tcpserver binds one address and port (run one service per address, with address= and port=)"
        ))));
    }
    if let Some((addr, p)) = t.rsplit_once('.') {
        return Err(bad_input(v.origin.at(&format!(
            "port \"{t}\" is Courier's address.port form: tcpserver takes them apart (set address={addr} and port={p})"
        ))));
    }
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return match t.parse::<u32>() {
            Ok(1..=65535) => Ok(()),
            _ => Err(bad_input(
                v.origin
                    .at(&format!("port \"{t}\" is out of range (1-65535)")),
            )),
        };
    }
    if !t.is_empty() && service_port(t).is_some() {
        return Ok(());
    }
    Err(bad_input(v.origin.at(&format!(
        "port \"{t}\" is neither a number nor a TCP service name in /etc/services (write e.g. 143)"
    ))))
}

/// The port of TCP service `name` in /etc/services.
pub fn service_port(name: &str) -> Option<u16> {
    let text = std::fs::read_to_string("/etc/services").ok()?;
    text.lines().find_map(|line| {
        let line = line.split('#').next()?;
        let mut words = line.split_ascii_whitespace();
        let first = words.next()?;
        let (port, proto) = words.next()?.split_once('/')?;
        (proto == "tcp" && (first == name || words.any(|a| a == name)))
            .then(|| port.parse().ok())
            .flatten()
    })
}

fn check_conlimit(v: &Val) -> anyhow::Result<()> {
    match v.text.parse::<u32>() {
        Ok(n) if n > 0 && v.text.bytes().all(|c| c.is_ascii_digit()) => Ok(()),
        _ => Err(bad_input(v.origin.at(&format!(
            "conlimit \"{}\" is not a positive number (tcpserver would silently read it as 0 and never accept a connection)",
            v.text
        )))),
    }
}

/// An auth module: a bare name is looked up in `authdir`.
fn auth_path(settings: &Settings, m: &str) -> anyhow::Result<String> {
    if m.contains('/') {
        return Ok(m.to_string());
    }
    match settings.str("authdir") {
        "" => Err(bad_input(settings.get("auth").origin.at(&format!(
            "auth module {m} is a bare name but authdir is empty (set authdir, or give the module's full path)"
        )))),
        dir => Ok(format!("{}/{m}", dir.trim_end_matches('/'))),
    }
}

/// Resolve argv[0] as daemontools' pathexec_run does: a name with a `/` is
/// used as is; else each PATH element in turn (empty means `.`), PATH
/// defaulting to /bin:/usr/bin. Not found: 127; found but not executable:
/// 126 (execve's EACCES).
pub fn resolve(arg0: &[u8], path: Option<&[u8]>) -> anyhow::Result<PathBuf> {
    let name = Path::new(OsStr::from_bytes(arg0));
    let candidates: Vec<PathBuf> = if arg0.contains(&b'/') {
        vec![name.to_path_buf()]
    } else {
        path.unwrap_or(b"/bin:/usr/bin")
            .split(|&c| c == b':')
            .map(|d| {
                let d = if d.is_empty() { &b"."[..] } else { d };
                Path::new(OsStr::from_bytes(d)).join(name)
            })
            .collect()
    };
    let mut denied = None;
    for c in &candidates {
        match std::fs::metadata(c) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                return Ok(c.clone());
            }
            Ok(_) => denied = denied.or(Some(c.clone())),
            Err(_) => {}
        }
    }
    let shown = name.display();
    match denied {
        Some(c) => Err(coded(
            Exit::NoExec,
            format!(
                "unable to run {shown}: {} is not an executable file",
                c.display()
            ),
        )),
        None if arg0.contains(&b'/') => Err(coded(
            Exit::NotFound,
            format!("unable to run {shown}: file does not exist"),
        )),
        None => Err(coded(
            Exit::NotFound,
            format!(
                "unable to run {shown}: not found in PATH={}",
                String::from_utf8_lossy(path.unwrap_or(b"/bin:/usr/bin"))
            ),
        )),
    }
}

/// What the envdir writer would refuse at launch time, refused here, so
/// that a dry run's exit code is the launch's and nothing is changed first:
/// a path without a last component (`.`, `..`, `/`), and an existing entry
/// that is not a directory (a regular file, or a symlink: the atomic
/// replacement would replace the link, not the directory it points to).
fn check_envdir_path(dir: &Path, origin: &Origin) -> anyhow::Result<()> {
    let shown = dir.display();
    let Some(base) = dir.file_name() else {
        return Err(bad_input(origin.at(&format!(
            "envdir {shown} names no directory of its own (courier-run replaces the envdir as a whole: write e.g. ./env)"
        ))));
    };
    // Without a trailing slash, which would follow a symlink.
    let entry = dir.with_file_name(base);
    match std::fs::symlink_metadata(&entry) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(m) => {
            let what = if m.file_type().is_symlink() {
                "is a symbolic link (courier-run replaces the envdir with a rename, which would replace the link: set envdir to the directory itself)"
            } else {
                "exists and is not a directory (remove it, or set envdir elsewhere)"
            };
            Err(bad_input(origin.at(&format!("envdir {shown} {what}"))))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context(format!("unable to stat envdir {shown}"))),
    }
}

/// The envdir will be written: its parent must let us.
fn check_writable_parent(dir: &Path) -> anyhow::Result<()> {
    use nix::unistd::{AccessFlags, access};
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    access(parent, AccessFlags::W_OK | AccessFlags::X_OK).map_err(|e| {
        anyhow::Error::new(std::io::Error::from(e)).context(format!(
            "unable to write envdir {}: its directory {} is not writable",
            dir.display(),
            parent.display()
        ))
    })
}
