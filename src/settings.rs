//! The run file's settings: read with the config reader (same syntax), then
//! `--set NAME=VALUE` on top, then the layout's defaults for the rest.
//! Side-effect free.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Pos, Scope};
use crate::error::{Position, Problem, Subject};
use crate::service::{Protocol, Service, ServiceKind};

/// Where a value came from (for `--explain` and for error positions).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The layout's default.
    Default,
    /// An assignment in the run file or a config file.
    File(Pos),
    /// `--set NAME=VALUE`.
    CommandLine,
    /// The environment courier-run was started with.
    Inherited,
    /// `account` (envuidgid's UID and GID).
    Envuidgid,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File(p) => write!(f, "{p}"),
            Origin::CommandLine => f.write_str("--set"),
            Origin::Inherited => f.write_str("inherited"),
            Origin::Envuidgid => f.write_str("envuidgid"),
        }
    }
}

impl Origin {
    /// Where a problem with a value from here is, as a [`Position`].
    pub fn position(&self) -> Position {
        match self {
            Origin::File(p) => Position::At(p.to_string()),
            Origin::CommandLine => Position::CommandLine,
            Origin::Default => Position::From("default"),
            Origin::Inherited => Position::From("inherited"),
            Origin::Envuidgid => Position::From("envuidgid"),
        }
    }

    /// The prefix of an error message about a value from here.
    pub fn at(&self, what: &str) -> String {
        match self {
            Origin::File(p) => format!("{p}: {what}"),
            Origin::CommandLine => format!("--set {what}"),
            Origin::Default => format!("{what} (default)"),
            Origin::Inherited | Origin::Envuidgid => format!("{what} ({self})"),
        }
    }
}

/// A setting's value and origin. `None`: derived from the config at plan
/// time (`umask` from IMAP_UMASK, `port` from PORT, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub value: Option<String>,
    pub origin: Origin,
}

/// Where the layouts are defined: the service table (settings reads it).
pub use crate::service::Layout;

/// Every setting with its meaning, in the order the README's table lists
/// them (the `--help` text is made from this table).
pub const TABLE: &[(&str, &str)] = &[
    (
        "layout",
        "picks the defaults: courier2 (the 2004 recipe) or debian (Courier 5, Debian 12)",
    ),
    (
        "service",
        "imapd, imapd-ssl, pop3d or pop3d-ssl: which of Courier's rc scripts to do (config files, rc assignments, programs, port, TLS); authdaemond: courier-authlib's daemon (config: authdaemonrc; server: the authdaemond program; no front end)",
    ),
    ("prefix", "Courier's install prefix"),
    (
        "config",
        "config files (blank-separated), sourced in order into one scope",
    ),
    (
        "envdir",
        "where the config is written as an envdir; empty: none",
    ),
    (
        "inherit_env",
        "all, none (Courier's env -i), or names to keep",
    ),
    (
        "account",
        "envuidgid: UID and GID of this account into the environment; empty: none",
    ),
    (
        "setuidgid",
        "switch to this account before exec; empty: stay",
    ),
    ("softlimit", "softlimit(8) options, e.g. \"-m 50000000\""),
    ("umask", "octal umask (default: IMAP_UMASK)"),
    (
        "ulimit_v",
        "KiB, RLIMIT_AS soft and hard as sh's ulimit -v (default: IMAP_ULIMITD)",
    ),
    (
        "server",
        "the front end and its fixed flags: tcpserver, tcpsvd or couriertcpd (which also gets -maxperip, -access and TCPDOPTS, as Courier's rc passes them)",
    ),
    ("address", "the front end's host (default: ADDRESS, else 0)"),
    (
        "port",
        "the front end's port, one number or service name; couriertcpd also takes a list (default: PORT, else 143)",
    ),
    (
        "conlimit",
        "tcpserver/tcpsvd -c, couriertcpd -maxprocs (default: MAXDAEMONS, else 40)",
    ),
    (
        "rules",
        "the front end's rules: a tcprules cdb (tcpserver -x), an ipsvd-cdb database (tcpsvd -x) or instructions directory (tcpsvd -i); empty: none",
    ),
    (
        "access",
        "Courier's access list (file or directory), compiled on start into the front end's rules beside the run file, or by makedat into LIST.dat for couriertcpd (default: IMAPACCESSFILE; one that cannot be read stops the start); empty: none",
    ),
    (
        "login",
        "the login program; empty: imapd runs preauthenticated",
    ),
    (
        "auth",
        "auth modules in chain order (bare names are looked up in authdir)",
    ),
    ("authdir", "where bare auth module names live"),
    ("imapd", "the server program"),
    (
        "maildir",
        "imapd's Maildir argument (default: MAILDIRPATH, else Maildir)",
    ),
    (
        "banner",
        "yes: print the two *** startup lines on stderr; no",
    ),
    ("stderr", "merge (the recipe's exec 2>&1) or keep"),
    (
        "wait_authdaemond",
        "yes: while authdaemond's socket does not accept, the launch exits 111 (the supervisor retries) instead of serving logins that fail; no",
    ),
];

/// A setting's name: asking for a setting by a misspelt name is a compile
/// error, not a panic. In [`TABLE`]'s order (a unit test checks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Layout,
    Service,
    Prefix,
    Config,
    Envdir,
    InheritEnv,
    Account,
    Setuidgid,
    Softlimit,
    Umask,
    UlimitV,
    Server,
    Address,
    Port,
    Conlimit,
    Rules,
    Access,
    Login,
    Auth,
    Authdir,
    Imapd,
    Maildir,
    Banner,
    Stderr,
    WaitAuthdaemond,
}

impl Name {
    /// Every name, in [`TABLE`]'s order.
    pub const ALL: [Name; 25] = [
        Name::Layout,
        Name::Service,
        Name::Prefix,
        Name::Config,
        Name::Envdir,
        Name::InheritEnv,
        Name::Account,
        Name::Setuidgid,
        Name::Softlimit,
        Name::Umask,
        Name::UlimitV,
        Name::Server,
        Name::Address,
        Name::Port,
        Name::Conlimit,
        Name::Rules,
        Name::Access,
        Name::Login,
        Name::Auth,
        Name::Authdir,
        Name::Imapd,
        Name::Maildir,
        Name::Banner,
        Name::Stderr,
        Name::WaitAuthdaemond,
    ];

    /// The name as the run file and `--set` write it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Name::Layout => "layout",
            Name::Service => "service",
            Name::Prefix => "prefix",
            Name::Config => "config",
            Name::Envdir => "envdir",
            Name::InheritEnv => "inherit_env",
            Name::Account => "account",
            Name::Setuidgid => "setuidgid",
            Name::Softlimit => "softlimit",
            Name::Umask => "umask",
            Name::UlimitV => "ulimit_v",
            Name::Server => "server",
            Name::Address => "address",
            Name::Port => "port",
            Name::Conlimit => "conlimit",
            Name::Rules => "rules",
            Name::Access => "access",
            Name::Login => "login",
            Name::Auth => "auth",
            Name::Authdir => "authdir",
            Name::Imapd => "imapd",
            Name::Maildir => "maildir",
            Name::Banner => "banner",
            Name::Stderr => "stderr",
            Name::WaitAuthdaemond => "wait_authdaemond",
        }
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every setting's name, in [`TABLE`]'s order.
pub fn names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|(n, _)| *n)
}

/// The settings for `--help`: name, meaning, both layouts' defaults.
pub fn help() -> String {
    let mut s = String::from("Settings (run file NAME=value, or --set NAME=VALUE):\n");
    for (name, meaning) in TABLE {
        // A name of 12 characters or more still gets its blank.
        s += &format!("  {name:<11} {meaning}\n");
        let show = |l: Layout| match (*name, default(l, "$prefix", name)) {
            ("layout", _) => Some("courier2".to_string()),
            (_, Some(v)) if v.is_empty() => Some("(empty)".to_string()),
            (_, v) => v,
        };
        // Config-derived defaults are in the meaning already.
        let (Some(c), Some(d)) = (show(Layout::Courier2), show(Layout::Debian)) else {
            continue;
        };
        if c == d {
            s += &format!("  {:<12}[default: {c}]\n", "");
        } else {
            s += &format!("  {:<12}[courier2: {c}; debian: {d}]\n", "");
        }
    }
    s
}

/// The layout's default for `name` (service imapd); `None` means "from
/// the config".
pub fn default(layout: Layout, prefix: &str, name: &str) -> Option<String> {
    default_for(layout, Service::Imapd, prefix, name)
}

/// The default for `name` of what `service=` names, in `layout`: the one
/// table of layout defaults (the run file's, `init`'s and `--help`'s).
pub fn default_of(layout: Layout, kind: ServiceKind, prefix: &str, name: &str) -> Option<String> {
    match kind.mail() {
        Some(service) => default_for(layout, service, prefix, name),
        None => authdaemond_default(layout, prefix, name),
    }
}

/// The default for `name` of `service` in `layout`: what Courier's rc
/// script for that service does (see [`crate::service`]).
pub fn default_for(layout: Layout, service: Service, prefix: &str, name: &str) -> Option<String> {
    use Layout::*;
    let s = |v: &str| Some(v.to_string());
    match (name, layout, service) {
        ("service", _, _) => return s(service.name()),
        // courier2's imapd keeps the 2004 recipe's one file (an install of
        // Courier-IMAP 2.x may have no imapd-ssl); every other pair sources
        // both files, in the order the rc's inner shell does.
        ("config", Courier2, Service::Imapd) => return Some(format!("{prefix}/etc/imapd")),
        ("config", _, _) => return Some(service.config_files(layout, prefix).join(" ")),
        ("login", _, _) => return Some(service.login(layout, prefix)),
        ("imapd", _, _) => return Some(service.server(layout, prefix)),
        ("rules", Courier2, _) if service.protocol() == Protocol::Pop3 => {
            return s("/etc/tcprules/pop3.cdb");
        }
        _ => {}
    }
    match (name, layout) {
        ("prefix", _) => s(layout.default_prefix()),
        ("envdir", _) => s("./env"),
        ("inherit_env", _) => s("all"),
        ("account", _) => s(layout.account()),
        ("setuidgid", _) => s(""),
        ("softlimit", Courier2) => s("-m 5000000"),
        ("softlimit", Debian) => s(""),
        // Debian's rc runs Courier's own front end; the 2004 recipe ran
        // tcpserver.
        ("server", Courier2) => s("tcpserver -v -RH -l0"),
        ("server", Debian) => s("/usr/sbin/couriertcpd"),
        ("rules", Courier2) => s("/etc/tcprules/imap.cdb"),
        ("rules", Debian) => s(""),
        ("auth", Courier2) => s("authpwd"),
        ("auth", Debian) => s(""),
        ("authdir", Courier2) => Some(format!("{prefix}/libexec/authlib")),
        ("authdir", Debian) => s(""),
        ("banner", _) => s("yes"),
        ("stderr", _) => s("merge"),
        // Courier 5 (Debian) authenticates through authdaemond; the 2004
        // recipe chains its auth modules and needs no daemon.
        ("wait_authdaemond", Courier2) => s("no"),
        ("wait_authdaemond", Debian) => s("yes"),
        // umask, ulimit_v, address, port, conlimit, maildir: from the config.
        _ => None,
    }
}

/// The defaults of `service=authdaemond` (what `/usr/sbin/authdaemond`
/// does); None for the settings that do not apply. The rows every service
/// shares are the mail services'.
fn authdaemond_default(layout: Layout, prefix: &str, name: &str) -> Option<String> {
    match name {
        "service" => Some(ServiceKind::Authdaemond.name().to_string()),
        "config" => Some(
            crate::authdaemon::default_rc(layout, prefix)
                .to_string_lossy()
                .into_owned(),
        ),
        "server" => Some(crate::authdaemond::program(layout, prefix)),
        // Started by init as root, and it stays root.
        "account" | "setuidgid" | "softlimit" | "umask" | "ulimit_v" => Some(String::new()),
        "prefix" | "envdir" | "inherit_env" | "banner" | "stderr" => {
            default_for(layout, Service::Imapd, prefix, name)
        }
        _ => None,
    }
}

/// The resolved settings of one run.
#[derive(Clone, Debug)]
pub struct Settings {
    pub layout: Layout,
    /// Courier's install prefix (the `prefix` setting).
    pub prefix: String,
    pub service: Service,
    /// `service=authdaemond`: courier-authlib's daemon, not a mail service
    /// (`service` then holds imapd as a placeholder: see [`crate::authdaemond`]).
    pub authdaemond: bool,
    pub runfile: Option<PathBuf>,
    /// One entry per setting of [`TABLE`], in that order.
    pub values: Vec<(&'static str, Setting)>,
    /// Warnings from reading the run file.
    pub warnings: Vec<String>,
}

impl Settings {
    pub fn get(&self, name: Name) -> &Setting {
        /// A setting service=authdaemond drops (it has no front end).
        static UNSET: Setting = Setting {
            value: None,
            origin: Origin::Default,
        };
        self.values
            .iter()
            .find(|(n, _)| *n == name.as_str())
            .map_or(&UNSET, |(_, s)| s)
    }

    /// Fill in the value a config-derived setting resolved to.
    pub fn resolve(&mut self, name: Name, value: String, origin: Origin) {
        if let Some((_, s)) = self.values.iter_mut().find(|(n, _)| *n == name.as_str()) {
            *s = Setting {
                value: Some(value),
                origin,
            };
        }
    }

    /// The value of a setting that always has one (not config-derived).
    pub fn str(&self, name: Name) -> &str {
        self.get(name).value.as_deref().unwrap_or("")
    }

    /// Read `runfile` (if any) with `inherited` visible to its references,
    /// apply `sets` (NAME=VALUE), fill in the layout's defaults. Every
    /// problem is returned, none stops the reading: an unknown or invalid
    /// setting is left at its default, so that `--check` can go on; the
    /// launch stops at the first problem.
    pub fn load(
        runfile: Option<&Path>,
        sets: &[String],
        inherited: &[(String, Vec<u8>)],
    ) -> (Settings, Vec<Problem>) {
        let mut given = Given::default();
        if let Some(path) = runfile {
            given.read_runfile(path, inherited);
        }
        given.apply_sets(sets);
        // layout and service pick every other default: taken first.
        let layout = given.layout();
        let kind = given.service();
        let values = given.with_defaults(layout, kind);
        // The prefix every default was made from, as the table holds it.
        let prefix = values[Name::Prefix as usize]
            .1
            .value
            .clone()
            .unwrap_or_default();
        let settings = Settings {
            layout,
            prefix,
            // authdaemond has no rc facts: imapd's stand in (see the field).
            service: kind.mail().unwrap_or(Service::Imapd),
            authdaemond: kind == ServiceKind::Authdaemond,
            runfile: runfile.map(Path::to_path_buf),
            values,
            warnings: given.warnings,
        };
        (settings, given.problems)
    }

    /// Replace a setting's value (a stand-in for one whose problem is
    /// reported, so that `--check` can go on).
    pub fn stand_in(&mut self, name: Name, value: &str) {
        if let Some((_, s)) = self.values.iter_mut().find(|(n, _)| *n == name.as_str()) {
            s.value = Some(value.to_string());
        }
    }
}

/// The settings a run file and `--set` give, on the way to [`Settings`]:
/// each step of [`Settings::load`] adds to them or reports a problem.
#[derive(Default)]
struct Given {
    /// The settings given, the last of a name winning (a `--set` over the
    /// run file's line).
    explicit: Vec<(&'static str, Setting)>,
    warnings: Vec<String>,
    problems: Vec<Problem>,
}

impl Given {
    fn find(&self, name: &str) -> Option<&Setting> {
        self.explicit
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s)
    }

    /// The run file's assignments, read as Courier's config is (same
    /// syntax), `inherited` visible to its references. An unknown name or
    /// a value that is not text is reported and skipped, so the rest is
    /// still read.
    fn read_runfile(&mut self, path: &Path, inherited: &[(String, Vec<u8>)]) {
        let mut scope = Scope::new(inherited.iter().cloned());
        if let Err(e) = crate::config::read_named(&mut scope, path, "run file") {
            let mut p = Problem::from_error(Subject::RunFile, &e);
            if not_found(&e) {
                p.fix = "give the service's run file, e.g. ./run".into();
            }
            self.problems.push(p);
        }
        self.warnings
            .extend(scope.warnings.iter().map(|w| w.to_string()));
        for a in scope.vars() {
            let name = match known(&a.name) {
                Ok(n) => n,
                Err(hint) => {
                    self.problems.push(Problem::bad(
                        Subject::RunFile,
                        Position::At(a.pos.to_string()),
                        format!(
                            "unknown setting {}",
                            crate::config::shown(a.name.as_bytes(), crate::config::MAX_SHOWN)
                        ),
                        hint,
                    ));
                    continue;
                }
            };
            let Ok(value) = String::from_utf8(a.value.clone()) else {
                self.problems.push(Problem::bad(
                    Subject::RunFile,
                    Position::At(a.pos.to_string()),
                    format!("the value of {} is not UTF-8", a.name),
                    "settings are text: write the value in UTF-8",
                ));
                continue;
            };
            self.explicit.push((
                name,
                Setting {
                    value: Some(value),
                    origin: Origin::File(a.value_pos.clone()),
                },
            ));
        }
    }

    /// `--set NAME=VALUE`s on top of the run file: each replaces the run
    /// file's value (the command line is the admin's last word).
    fn apply_sets(&mut self, sets: &[String]) {
        for s in sets {
            let Some((n, v)) = s.split_once('=') else {
                self.problems.push(Problem::bad(
                    Subject::Settings,
                    Position::CommandLine,
                    format!("{}: expected NAME=VALUE", crate::shown::value(s)),
                    "e.g. --set port=1143",
                ));
                continue;
            };
            let name = match known(n) {
                Ok(name) => name,
                Err(hint) => {
                    self.problems.push(Problem::bad(
                        Subject::Settings,
                        Position::CommandLine,
                        format!(
                            "{}: unknown setting {}",
                            crate::shown::value(s),
                            crate::shown::value(n)
                        ),
                        hint,
                    ));
                    continue;
                }
            };
            self.explicit.retain(|(x, _)| *x != name);
            self.explicit.push((
                name,
                Setting {
                    value: Some(v.to_string()),
                    origin: Origin::CommandLine,
                },
            ));
        }
    }

    /// The layout given. A bad one would change every default: reported,
    /// dropped, courier2's used.
    fn layout(&mut self) -> Layout {
        let Some(i) = self.explicit.iter().position(|(n, _)| *n == "layout") else {
            return Layout::Courier2;
        };
        let s = &self.explicit[i].1;
        let text = s.value.as_deref().unwrap_or("");
        if let Some(l) = Layout::parse(text) {
            return l;
        }
        self.problems.push(Problem::bad(
            Subject::Settings,
            s.origin.position(),
            format!("layout \"{}\" is not a layout", crate::shown::value(text)),
            Layout::Courier2.name().to_string() + " or " + Layout::Debian.name(),
        ));
        self.explicit.remove(i);
        Layout::Courier2
    }

    /// The service given. A bad one would change every default too:
    /// reported, dropped, imapd's used.
    fn service(&mut self) -> ServiceKind {
        let Some(i) = self.explicit.iter().position(|(n, _)| *n == "service") else {
            return ServiceKind::Imapd;
        };
        let s = &self.explicit[i].1;
        let text = s.value.as_deref().unwrap_or("");
        if let Some(k) = ServiceKind::parse(text) {
            return k;
        }
        self.problems.push(Problem::bad(
            Subject::Settings,
            s.origin.position(),
            format!("service \"{}\" is not a service", crate::shown::value(text)),
            ServiceKind::choices(),
        ));
        self.explicit.remove(i);
        ServiceKind::Imapd
    }

    /// One entry per setting of [`TABLE`], in its order: the given value,
    /// else the default of `kind` in `layout` (made with the prefix given,
    /// else the layout's).
    fn with_defaults(&self, layout: Layout, kind: ServiceKind) -> Vec<(&'static str, Setting)> {
        let prefix = match self.find("prefix") {
            Some(s) => s.value.clone().unwrap_or_default(),
            None => layout.default_prefix().to_string(),
        };
        names()
            .map(|n| {
                let s = match self.find(n) {
                    Some(s) => s.clone(),
                    None => Setting {
                        value: if n == "layout" {
                            // Only reached when none was given.
                            Some(layout.name().into())
                        } else {
                            default_of(layout, kind, &prefix, n)
                        },
                        origin: Origin::Default,
                    },
                };
                (n, s)
            })
            .collect()
    }
}

#[cfg(test)]
impl Settings {
    /// Settings from a run file's text and `--set`s, read as the launch
    /// reads a run file (unit tests; the file is removed after reading).
    pub fn from_text(text: &str, sets: &[&str]) -> (Settings, Vec<Problem>) {
        let dir = crate::frontend::tests_support::tempdir("runfile").expect("a temp dir");
        let run = dir.join("run");
        std::fs::write(&run, text).expect("the run file written");
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let loaded = Settings::load(Some(&run), &sets, &[]);
        let _ = std::fs::remove_dir_all(&dir);
        loaded
    }
}

/// The error is a file that does not exist.
pub fn not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound)
    })
}

/// `name` as one of [`TABLE`]'s, or the hint for the error message.
pub fn known(name: &str) -> Result<&'static str, String> {
    if let Some(n) = names().find(|&n| n == name) {
        return Ok(n);
    }
    if name.bytes().any(|c| c.is_ascii_uppercase()) && names().any(|n| n == name.to_lowercase()) {
        return Err(format!(
            "settings are lower-case: {}",
            crate::shown::value(name.to_lowercase())
        ));
    }
    if name.bytes().all(|c| !c.is_ascii_lowercase()) {
        return Err(
            "the run file holds courier-run's lower-case settings; Courier variables belong in a config file"
                .into(),
        );
    }
    let best = names()
        .map(|n| (distance(name, n), n))
        .min()
        .expect("TABLE is not empty");
    Err(format!("did you mean {}?", best.1))
}

/// Levenshtein distance, for "did you mean".
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_the_tables_in_order() {
        let all: Vec<&str> = Name::ALL.iter().map(|n| n.as_str()).collect();
        assert_eq!(all, names().collect::<Vec<_>>());
        let (s, p) = Settings::load(None, &[], &[]);
        assert!(p.is_empty(), "{p:?}");
        for n in Name::ALL {
            assert_eq!(s.values[n as usize].0, n.as_str());
        }
    }

    #[test]
    fn prefix_and_layout_are_fields() {
        for sets in [&[][..], &["layout=debian"], &["prefix=/opt/c", "layout=x"]] {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let (s, _) = Settings::load(None, &sets, &[]);
            assert_eq!(s.prefix, s.get(Name::Prefix).value.clone().unwrap());
            assert_eq!(s.layout.name(), s.str(Name::Layout));
        }
    }

    #[test]
    fn closest_name() {
        assert_eq!(known("softlimt").unwrap_err(), "did you mean softlimit?");
        assert_eq!(known("acount").unwrap_err(), "did you mean account?");
        assert!(known("PORT").unwrap_err().contains("lower-case: port"));
        assert!(known("MAXPERIP").unwrap_err().contains("config file"));
        assert_eq!(known("port"), Ok("port"));
    }

    #[test]
    fn layouts_and_overrides() {
        let (s, p) = Settings::load(None, &["layout=debian".into(), "port=1143".into()], &[]);
        assert!(p.is_empty());
        assert_eq!(s.layout, Layout::Debian);
        assert_eq!(s.str(Name::Login), "/usr/lib/courier/courier/imaplogin");
        assert_eq!(s.get(Name::Port).value.as_deref(), Some("1143"));
        assert_eq!(s.get(Name::Port).origin, Origin::CommandLine);
        let (s, _) = Settings::load(None, &["prefix=/opt/c".into()], &[]);
        assert_eq!(s.str(Name::Imapd), "/opt/c/bin/imapd");
        assert_eq!(s.str(Name::Config), "/opt/c/etc/imapd");
        let (_, p) = Settings::load(None, &["bogus=1".into(), "layout=x".into()], &[]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].text()
                .starts_with("--set bogus=1: unknown setting bogus (did you mean "),
            "{}",
            p[0].text()
        );
        assert_eq!(
            p[1].text(),
            "--set layout \"x\" is not a layout (courier2 or debian)"
        );
    }
}
