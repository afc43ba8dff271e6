//! Resolve: the run file's settings plus the config files into typed,
//! validated values, once. The launch, `--dry-run` and `--check` all read
//! the [`Resolved`] value made here; nothing else parses a setting.
//!
//! Every problem is collected, not just the first: a setting with a
//! problem gets a harmless stand-in, so that `--check` can report all of
//! them and still probe the rest, while [`crate::plan::Plan::new`] stops at
//! the first. Reading is allowed (files, passwd, /etc/services, PATH,
//! capabilities); changing anything is not.

use std::path::{Path, PathBuf};

use crate::access;
use crate::account::Account;
use crate::config::Assignment;
use crate::environ::{self, Environ};
use crate::error::{Position, Problem, Subject, exit_code};
use crate::service::{CacheReset, Service};
use crate::settings::{Name, Origin, Settings};

mod chain;
mod configs;
mod front;
mod tcpd;
mod values;

pub use chain::find_program;
pub(crate) use configs::config_subject;
pub use front::{Front, tcpd_protections};
pub use values::{Checked, Family, SettingText, Softlimit, port_number, service_port};
pub(crate) use values::{
    can_switch, choice, envdir_path, inherit, lookup, softlimit, ulimit_v, umask,
};

/// What the command line gives a resolution.
pub struct Input<'a> {
    pub runfile: Option<&'a Path>,
    pub sets: &'a [String],
    /// The inherited environment, under [`environ`]'s rule.
    pub environ: &'a Environ,
}

/// `inherit_env`: all, none (Courier's `env -i`), or names to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inherit {
    All,
    Nothing,
    Names(Vec<Vec<u8>>),
}

impl Inherit {
    pub fn keeps(&self, name: &[u8]) -> bool {
        match self {
            Inherit::All => true,
            Inherit::Nothing => false,
            Inherit::Names(names) => names.iter().any(|k| k == name),
        }
    }
}

/// One program of the chain, as the launch will exec or hand it on.
#[derive(Clone, Debug)]
pub struct Program {
    /// "server", "login", "auth authpwd", "imapd".
    pub role: String,
    /// The setting that names it (for a fix: "set imapd= to its path").
    pub setting: &'static str,
    pub path: PathBuf,
}

/// Settings as the admin gave them, typed once here, whether or not they
/// passed: `--check` names a refused one as written (their checked values
/// are [`Resolved`]'s own fields).
#[derive(Clone, Debug, Default)]
pub struct Given {
    /// `envdir` (None: empty): a file `--check` guards as root.
    pub envdir: Option<PathBuf>,
    /// `account`'s name (None: empty): envuidgid sets UID and GID for it.
    pub account: Option<String>,
    /// `setuidgid`'s name (None: empty).
    pub setuidgid: Option<String>,
}

impl Given {
    fn of(settings: &Settings) -> Given {
        let text = |n| Some(settings.str(n)).filter(|t| !t.is_empty());
        Given {
            envdir: text(Name::Envdir).map(PathBuf::from),
            account: text(Name::Account).map(str::to_string),
            setuidgid: text(Name::Setuidgid).map(str::to_string),
        }
    }
}

/// Every setting, typed and validated.
#[derive(Clone, Debug)]
pub struct Resolved {
    /// Which of Courier's rc scripts this does.
    pub service: Service,
    /// couriertls (COURIERTLS as the rc expands it, else the layout's).
    pub couriertls: PathBuf,
    /// The words between the port and the login program (-ssl services).
    pub tls_wrapper: Vec<String>,
    /// The rc's TLS_CACHEFILE reset (done by the launch, never by
    /// --dry-run or --check); None without TLS_CACHEFILE or account.
    pub cache_reset: Option<CacheReset>,
    /// The settings as given, with origins; the config-derived ones filled
    /// in with what they resolved to (for `--explain`).
    pub settings: Settings,
    /// The inherited environment (one entry per name).
    pub environ: Environ,
    pub inherit: Inherit,
    /// The config files read, in order.
    pub configs: Vec<PathBuf>,
    /// The config's variables (what the envdir holds), in order.
    pub config_vars: Vec<Assignment>,
    /// The names the service's rc assigns after the files
    /// (`IMAP_STARTTLS=$IMAPDSTARTTLS`, ...), among `config_vars`.
    pub rc_names: Vec<&'static str>,
    /// A config file is not world-readable: so is the envdir.
    pub private: bool,
    /// Every file read: the run file, the config files and the files they
    /// source. The envdir may be none of them, nor hold one.
    pub sources: Vec<PathBuf>,
    pub address: Checked<Family>,
    /// The one port the front end binds (None: couriertcpd's list, which
    /// it binds itself).
    pub port: Checked<Option<u16>>,
    pub conlimit: Checked<u32>,
    pub maildir: SettingText,
    pub umask: Option<(u32, Origin)>,
    /// ulimit_v in bytes (None inside: unlimited).
    pub ulimit_v: Option<(Option<u64>, Origin)>,
    pub softlimit: Softlimit,
    /// envuidgid's account.
    pub account: Option<Account>,
    /// setuidgid's account (switching to it is possible).
    pub setuidgid: Option<Account>,
    /// The settings as given that the fields above may have refused.
    pub given: Given,
    /// The `server` words.
    pub server: Vec<String>,
    /// `rules` as given (None: empty). With an access list the front end
    /// reads [`Front::rules`] instead.
    pub rules: Option<String>,
    /// `server`'s first word as pathexec_run finds it in the final PATH.
    pub program: PathBuf,
    /// The login program, when there is one.
    pub login: Option<PathBuf>,
    /// Auth modules in chain order, as paths.
    pub auth: Vec<PathBuf>,
    pub imapd: PathBuf,
    pub envdir: Option<PathBuf>,
    pub merge_stderr: bool,
    pub banner: bool,
    /// The front end (tcpserver's spec when `server` names a program
    /// courier-run does not know) and what it gets: see [`Front`].
    pub front: Front,
    /// `wait_authdaemond`: the launch exits 111 while this socket does not
    /// accept (None: no wait, or the chain does not use authdaemond).
    pub wait_authdaemond: Option<crate::authdaemon::Wait>,
    pub warnings: Vec<String>,
    /// Every problem found, in the order the launch meets them.
    pub problems: Vec<Problem>,
}

impl Resolved {
    /// The programs of the chain in exec order: server, login, auth
    /// modules, imapd.
    pub fn chain(&self) -> Vec<Program> {
        let mut v = vec![Program {
            role: "server".into(),
            setting: "server",
            path: self.program.clone(),
        }];
        if let Some(l) = &self.login {
            v.push(Program {
                role: "login".into(),
                setting: "login",
                path: l.clone(),
            });
        }
        for a in &self.auth {
            let name = a.file_name().map(|n| n.to_string_lossy().into_owned());
            v.push(Program {
                role: format!("auth {}", name.unwrap_or_default()),
                setting: "auth",
                path: a.clone(),
            });
        }
        v.push(Program {
            role: "imapd".into(),
            setting: "imapd",
            path: self.imapd.clone(),
        });
        v
    }

    /// A config variable's final assignment.
    pub fn var(&self, name: &str) -> Option<&Assignment> {
        self.config_vars.iter().find(|a| a.name == name)
    }

    /// The value `name` will have in the program's environment before
    /// envuidgid (config, else inherited and kept).
    pub fn env_value(&self, name: &str) -> Option<Vec<u8>> {
        if let Some(a) = self.var(name) {
            return Some(a.value.clone());
        }
        if !self.inherit.keeps(name.as_bytes()) {
            return None;
        }
        crate::environ::note_read(name.as_bytes());
        self.environ
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.clone())
    }
}

/// Resolve every setting. Never fails: problems are in the result.
pub fn resolve(input: &Input) -> Resolved {
    resolve_loaded(input, load(input))
}

/// The run file and `--set`s read into settings (the first step of every
/// resolution; `service=authdaemond` goes on in [`crate::authdaemond`]).
pub fn load(input: &Input) -> (Settings, Vec<Problem>) {
    let visible = environ::visible(input.environ);
    Settings::load(input.runfile, input.sets, &visible)
}

/// [`resolve`] from settings [`load`] read: the config files first (the
/// derived settings default to their variables), then each setting, then
/// the front end (which needs the program and the address).
pub fn resolve_loaded(input: &Input, loaded: (Settings, Vec<Problem>)) -> Resolved {
    let (mut settings, mut problems) = loaded;
    let mut warnings = settings.warnings.clone();
    let inherit = inherit(&settings, &mut problems);
    let read = read(&settings, input, &inherit, &mut problems, &mut warnings);
    let service_dir = service_dir(input.runfile);
    let cfg = values::SettingSources {
        settings: &settings,
        vars: &read.vars,
        service_dir: &service_dir,
    };
    let d = values::derived(&cfg, &mut problems);
    let v = settle(
        &cfg,
        &read,
        input,
        &inherit,
        &d.address,
        &mut problems,
        &mut warnings,
    );
    explain(&mut settings, &d);
    let given = Given::of(&settings);
    let rules = Some(settings.str(Name::Rules).to_string()).filter(|r| !r.is_empty());
    Resolved {
        service: settings.service,
        couriertls: v.tls.couriertls,
        tls_wrapper: v.tls.wrapper,
        cache_reset: v.tls.cache_reset,
        settings,
        environ: input.environ.clone(),
        inherit,
        configs: read.configs,
        config_vars: read.vars,
        rc_names: read.rc_names,
        private: read.private,
        sources: input
            .runfile
            .map(Path::to_path_buf)
            .into_iter()
            .chain(read.sources)
            .collect(),
        address: d.address,
        port: d.port,
        conlimit: d.conlimit,
        maildir: d.maildir,
        umask: d.umask,
        ulimit_v: d.ulimit_v,
        softlimit: v.softlimit,
        account: v.account,
        setuidgid: v.setuidgid,
        given,
        rules,
        server: v.server,
        program: v.program,
        login: v.login,
        auth: v.auth,
        imapd: v.imapd,
        envdir: v.envdir,
        merge_stderr: v.merge_stderr,
        banner: v.banner,
        front: v.front,
        wait_authdaemond: v.wait_authdaemond,
        warnings,
        problems,
    }
}

/// The settings after the config files: each checked, in the order the
/// launch meets their problems (it stops at the first).
struct Settled {
    account: Option<Account>,
    setuidgid: Option<Account>,
    softlimit: Softlimit,
    envdir: Option<PathBuf>,
    login: Option<PathBuf>,
    auth: Vec<PathBuf>,
    imapd: PathBuf,
    tls: Tls,
    server: Vec<String>,
    program: PathBuf,
    front: Front,
    merge_stderr: bool,
    banner: bool,
    wait_authdaemond: Option<crate::authdaemon::Wait>,
}

/// Accounts, limits, envdir, the chain, the front end, the choices; a
/// refused value is reported and stood in for.
fn settle(
    cfg: &values::SettingSources,
    read: &Read,
    input: &Input,
    inherit: &Inherit,
    address: &Checked<Family>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Settled {
    let settings = cfg.settings;
    let account = lookup(settings, Name::Account, problems);
    let setuidgid = lookup(settings, Name::Setuidgid, problems)
        .filter(|a| can_switch(a).map_err(|p| problems.push(p)).is_ok());
    let softlimit = values::softlimit(settings, problems);
    let envdir = envdir_path(settings, problems);
    let chain::Chain { login, auth, imapd } = chain::chain(settings, problems);
    let tls = Tls::of(settings, &read.outer, account.as_ref());
    let (server, program, front) = front_end(
        cfg,
        &read.outer,
        input,
        inherit,
        address,
        problems,
        warnings,
    );
    // The reset runs as root before exec: refused when it could touch a
    // file courier-run reads (the launch would refuse it too).
    if let (Some(c), Some(a)) = (&tls.cache_reset, &account) {
        let protected = protected_files(input.runfile, &read.sources, &front, cfg.vars);
        problems.extend(check_cache_reset(c, a, &protected).err());
    }
    let merge_stderr = choice(settings, Name::Stderr, ["merge", "keep"], problems);
    let banner = choice(settings, Name::Banner, ["yes", "no"], problems);
    let wait_authdaemond = chain::wait_authdaemond(settings, &login, &auth, problems, warnings);
    Settled {
        account,
        setuidgid,
        softlimit,
        envdir,
        login,
        auth,
        imapd,
        tls,
        server,
        program,
        front,
        merge_stderr,
        banner,
        wait_authdaemond,
    }
}

/// `server`'s words, its first as pathexec_run finds it in the final
/// PATH, and the front end they make.
fn front_end(
    cfg: &values::SettingSources,
    outer: &crate::config::Scope,
    input: &Input,
    inherit: &Inherit,
    address: &Checked<Family>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> (Vec<String>, PathBuf, Front) {
    let server: Vec<String> = cfg
        .settings
        .str(Name::Server)
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let program = chain::server_program(
        cfg.settings,
        &server,
        cfg.vars,
        inherit,
        input.environ,
        problems,
    );
    let front = front::front(cfg, outer, &server, &program, address, problems, warnings);
    (server, program, front)
}

/// The config files and the rc's own assignments after them, read as the
/// rc's two shells read them.
struct Read {
    configs: Vec<PathBuf>,
    /// The config's variables, the rc's assignments last.
    vars: Vec<Assignment>,
    rc_names: Vec<&'static str>,
    /// The rc's outer scope (what its `$NAME`s and TLS_CACHEFILE read).
    outer: crate::config::Scope,
    private: bool,
    sources: Vec<PathBuf>,
}

/// The config files in the rc's inner scope, then its assignments with
/// the outer scope's values (a file is read once for both).
fn read(
    settings: &Settings,
    input: &Input,
    inherit: &Inherit,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Read {
    let configs::Configs {
        files,
        vars,
        private,
        sources,
        read,
    } = configs::read_configs(settings, input.environ, inherit, problems, warnings);
    let rc = configs::rc_assignments(settings, &files, &read, input.environ, vars, warnings);
    Read {
        configs: files,
        vars: rc.vars,
        rc_names: rc.names,
        outer: rc.outer,
        private,
        sources,
    }
}

/// The service directory: where the run file is (where supervise runs
/// it), else the current directory. Compiled rules are written there,
/// never into whatever directory a hand launch started in.
fn service_dir(runfile: Option<&Path>) -> PathBuf {
    match runfile.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// What the -ssl services put before the login program, and the rc's
/// TLS_CACHEFILE reset (every service's rc does it).
struct Tls {
    couriertls: PathBuf,
    wrapper: Vec<String>,
    cache_reset: Option<CacheReset>,
}

impl Tls {
    fn of(settings: &Settings, outer: &crate::config::Scope, account: Option<&Account>) -> Tls {
        // `$COURIERTLS -server -tcpd -user=ACCOUNT` before the login
        // program, COURIERTLS as the rc's outer shell expands it.
        let couriertls = outer
            .get("COURIERTLS")
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_else(|| {
                Service::default_couriertls(settings.layout, settings.prefix.as_str())
            });
        let wrapper = settings
            .service
            .tls_wrapper(&couriertls, settings.str(Name::Account));
        // The group is kept as a number here: its name is only for people
        // (report looks it up), and a launch need not read /etc/group for it.
        let cache_reset = account.and_then(|a| {
            Service::cache_reset(outer.get("TLS_CACHEFILE"), &a.name, &a.gid.to_string())
        });
        Tls {
            couriertls: PathBuf::from(couriertls),
            wrapper,
            cache_reset,
        }
    }
}

/// The files a TLS_CACHEFILE reset must never touch: the run file, the
/// config files and what they source, the access list and its output, and
/// the TLS files the config names (TLS_CERTFILE, TLS_DHPARAMS, ...).
fn protected_files(
    runfile: Option<&Path>,
    sources: &[PathBuf],
    front: &Front,
    vars: &[Assignment],
) -> Vec<PathBuf> {
    let mut protected: Vec<PathBuf> = runfile
        .map(Path::to_path_buf)
        .into_iter()
        .chain(sources.iter().cloned())
        .collect();
    if let Some(s) = &front.access {
        protected.extend(access::source_files(&s.source).unwrap_or_default());
        protected.push(s.source.clone());
        protected.push(s.output.clone());
    }
    protected.extend(
        vars.iter()
            .filter(|v| v.name.starts_with("TLS_") && v.name != "TLS_CACHEFILE")
            .filter(|v| v.value.starts_with(b"/") || v.value.starts_with(b"."))
            .map(|v| PathBuf::from(String::from_utf8_lossy(&v.value).into_owned())),
    );
    protected
}

/// TLS_CACHEFILE: refused (like the launch would) when its path is not
/// safe to reset as root, or names a file courier-run reads.
fn check_cache_reset(c: &CacheReset, a: &Account, protected: &[PathBuf]) -> Result<(), Problem> {
    crate::tlscache::check(&c.path, &a.name, a.uid, a.gid, protected).map_err(|e| {
        Problem::new(
            exit_code(&e),
            Subject::TlsCachefile,
            Position::Nowhere,
            crate::error::describe(&e),
            "",
        )
    })
}

/// What the config-derived settings resolved to, for --explain
/// (`port="143" [./imapd:7:1]`).
fn explain(settings: &mut Settings, d: &values::Derived) {
    for (name, text, origin) in [
        (Name::Address, &d.address.text, &d.address.origin),
        (Name::Port, &d.port.text, &d.port.origin),
        (Name::Conlimit, &d.conlimit.text, &d.conlimit.origin),
        (Name::Maildir, &d.maildir.text, &d.maildir.origin),
    ] {
        settings.resolve(name, text.clone(), origin.clone());
    }
    if let Some((m, o)) = &d.umask {
        settings.resolve(Name::Umask, format!("{m:03o}"), o.clone());
    }
    if let Some((v, o)) = &d.ulimit_v {
        let t = v.map_or("unlimited".to_string(), |b| (b / 1024).to_string());
        settings.resolve(Name::UlimitV, t, o.clone());
    }
}

/// Settings and config scopes from text, for the parts' unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::Scope;
    use crate::error::Problem;
    use crate::settings::Settings;

    /// Settings from a run file's text; a problem reading it fails the test.
    pub fn settings(text: &str) -> Settings {
        let (s, p) = Settings::from_text(text, &[]);
        assert!(p.is_empty(), "run file problems: {p:?}");
        s
    }

    /// A config file's text read into a fresh scope (its variables, and
    /// for couriertcpd the rc's outer scope).
    pub fn scope(text: &str) -> Scope {
        let dir = crate::frontend::tests_support::tempdir("config").expect("a temp dir");
        let path = dir.join("imapd");
        std::fs::write(&path, text).expect("the config written");
        let mut scope = Scope::new(Vec::new());
        crate::config::read_file(&mut scope, &path).expect("the config read");
        let _ = std::fs::remove_dir_all(&dir);
        scope
    }

    /// The one problem `problems` holds.
    pub fn one(problems: &[Problem]) -> &Problem {
        assert_eq!(problems.len(), 1, "expected one problem: {problems:?}");
        &problems[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_names_a_refused_setting_as_written() {
        let s =
            tests_support::settings("account=no-such-account-courier-run\nsetuidgid=\nenvdir=.\n");
        let g = Given::of(&s);
        assert_eq!(g.account.as_deref(), Some("no-such-account-courier-run"));
        assert_eq!(g.setuidgid, None);
        assert_eq!(g.envdir, Some(PathBuf::from(".")));
    }
}
