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
use crate::error::{Position, Problem, exit_code};
use crate::limits;
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
pub use values::{SettingText, port_number, service_port};
pub(crate) use values::{can_switch, choice, envdir_path, inherit, lookup, umask};

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
    pub address: SettingText,
    pub port: SettingText,
    pub conlimit: SettingText,
    pub maildir: SettingText,
    pub umask: Option<(u32, Origin)>,
    /// ulimit_v in bytes (None inside: unlimited).
    pub ulimit_v: Option<(Option<u64>, Origin)>,
    pub softlimit: Vec<limits::SoftLimit>,
    /// envuidgid's account.
    pub account: Option<Account>,
    /// setuidgid's account (switching to it is possible).
    pub setuidgid: Option<Account>,
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

/// [`resolve`] from settings [`load`] read.
pub fn resolve_loaded(input: &Input, loaded: (Settings, Vec<Problem>)) -> Resolved {
    let (mut settings, mut problems) = loaded;
    let mut warnings = settings.warnings.clone();

    let inherit = inherit(&settings, &mut problems);
    let configs::Configs {
        files: configs,
        vars: config_vars,
        private,
        sources,
        read,
    } = configs::read_configs(
        &settings,
        input.environ,
        &inherit,
        &mut problems,
        &mut warnings,
    );
    let service = settings.service;
    let configs::RcScope {
        vars: config_vars,
        outer,
        names: rc_names,
    } = configs::rc_assignments(
        &settings,
        &configs,
        &read,
        input.environ,
        config_vars,
        &mut warnings,
    );
    // The service directory: where the run file is (where supervise
    // runs it), else the current directory. Compiled rules are written
    // there, never into whatever directory a hand launch started in.
    let service_dir = match input.runfile.and_then(Path::parent) {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let cfg = values::SettingSources {
        settings: &settings,
        vars: &config_vars,
        service_dir: &service_dir,
    };

    let values::Derived {
        umask,
        ulimit_v,
        address,
        port,
        conlimit,
        maildir,
    } = values::derived(&cfg, &mut problems);

    let account = lookup(&settings, Name::Account, &mut problems);
    let setuidgid = lookup(&settings, Name::Setuidgid, &mut problems)
        .filter(|a| can_switch(a).map_err(|p| problems.push(p)).is_ok());
    let softlimit = values::softlimit(&settings, &mut problems);
    let envdir = envdir_path(&settings, &mut problems);

    let server: Vec<String> = settings
        .str(Name::Server)
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let chain::Chain { login, auth, imapd } = chain::chain(&settings, &mut problems);
    // -ssl: `$COURIERTLS -server -tcpd -user=ACCOUNT` before the login
    // program, COURIERTLS as the rc's outer shell expands it.
    let couriertls = outer
        .get("COURIERTLS")
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| Service::default_couriertls(settings.layout, settings.prefix.as_str()));
    let account_name = settings.str(Name::Account).to_string();
    let tls_wrapper = service.tls_wrapper(&couriertls, &account_name);
    // The group is kept as a number here: its name is only for people
    // (report looks it up), and a launch need not read /etc/group for it.
    let cache_reset = account.as_ref().and_then(|a| {
        Service::cache_reset(outer.get("TLS_CACHEFILE"), &a.name, &a.gid.to_string())
    });
    let program = chain::server_program(
        &settings,
        &server,
        cfg.vars,
        &inherit,
        input.environ,
        &mut problems,
    );
    let front = front::front(
        &cfg,
        &outer,
        &server,
        &program,
        &address,
        &mut problems,
        &mut warnings,
    );
    if let (Some(c), Some(a)) = (&cache_reset, &account) {
        let protected = protected_files(input.runfile, &sources, &front, cfg.vars);
        if let Err(p) = check_cache_reset(c, a, &protected) {
            problems.push(p);
        }
    }
    let merge_stderr = choice(&settings, Name::Stderr, ["merge", "keep"], &mut problems);
    let banner = choice(&settings, Name::Banner, ["yes", "no"], &mut problems);
    let wait_authdaemond =
        chain::wait_authdaemond(&settings, &login, &auth, &mut problems, &mut warnings);

    explain(
        &mut settings,
        [&address, &port, &conlimit, &maildir],
        &umask,
        &ulimit_v,
    );

    let rules = Some(settings.str(Name::Rules).to_string()).filter(|r| !r.is_empty());
    Resolved {
        service,
        couriertls: PathBuf::from(couriertls),
        tls_wrapper,
        cache_reset,
        settings,
        environ: input.environ.clone(),
        inherit,
        configs,
        config_vars,
        rc_names,
        private,
        sources: input
            .runfile
            .map(Path::to_path_buf)
            .into_iter()
            .chain(sources)
            .collect(),
        address,
        port,
        conlimit,
        maildir,
        umask,
        ulimit_v,
        softlimit,
        account,
        setuidgid,
        rules,
        server,
        program,
        login,
        auth,
        imapd,
        envdir,
        merge_stderr,
        banner,
        front,
        wait_authdaemond,
        warnings,
        problems,
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
            "TLS_CACHEFILE",
            Position::Nowhere,
            crate::error::describe(&e),
            "",
        )
    })
}

/// What the config-derived settings resolved to, for --explain
/// (`port="143" [./imapd:7:1]`).
fn explain(
    settings: &mut Settings,
    [address, port, conlimit, maildir]: [&SettingText; 4],
    umask: &Option<(u32, Origin)>,
    ulimit_v: &Option<(Option<u64>, Origin)>,
) {
    for (name, v) in [
        (Name::Address, address),
        (Name::Port, port),
        (Name::Conlimit, conlimit),
        (Name::Maildir, maildir),
    ] {
        settings.resolve(name, v.text.clone(), v.origin.clone());
    }
    if let Some((m, o)) = umask {
        settings.resolve(Name::Umask, format!("{m:03o}"), o.clone());
    }
    if let Some((v, o)) = ulimit_v {
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
