//! Resolve: the run file's settings plus the config files into typed,
//! validated values, once. The launch, `--dry-run` and `--check` all read
//! the [`Resolved`] value made here; nothing else parses a setting.
//!
//! Every problem is collected, not just the first: a setting with a
//! problem gets a harmless stand-in, so that `--check` can report all of
//! them and still probe the rest, while [`crate::plan::Plan::new`] stops at
//! the first. Reading is allowed (files, passwd, /etc/services, PATH,
//! capabilities); changing anything is not.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::access;
use crate::account::{self, Account};
use crate::config::{Assignment, Scope};
use crate::envdir;
use crate::environ::{self, Environ};
use crate::error::{Exit, Position, Problem, exit_code};
use crate::frontend::{self, RulesFormat};
use crate::limits;
use crate::service::{CacheReset, Service};
use crate::settings::{Origin, Settings};

/// What the command line gives a resolution.
pub struct Input<'a> {
    pub runfile: Option<&'a Path>,
    pub sets: &'a [String],
    /// The inherited environment, under [`environ`]'s rule.
    pub environ: &'a Environ,
}

/// A setting's text with its origin, after config-derived defaults.
#[derive(Clone, Debug)]
pub struct Val {
    pub text: String,
    pub origin: Origin,
    /// The value had a problem (reported); `text` is a harmless stand-in.
    pub stand_in: bool,
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
    /// A config file is not world-readable: so is the envdir.
    pub private: bool,
    /// Every file read: the run file, the config files and the files they
    /// source. The envdir may be none of them, nor hold one.
    pub sources: Vec<PathBuf>,
    pub address: Val,
    pub port: Val,
    pub conlimit: Val,
    pub maildir: Val,
    pub umask: Option<(u32, Origin)>,
    /// ulimit_v in bytes (None inside: unlimited).
    pub ulimit_v: Option<(Option<u64>, Origin)>,
    pub softlimit: Vec<limits::Setting>,
    /// envuidgid's account.
    pub account: Option<Account>,
    /// setuidgid's account (switching to it is possible).
    pub setuidgid: Option<Account>,
    /// The `server` words.
    pub server: Vec<String>,
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
    let (configs, config_vars, private, sources, read) = read_configs(
        &settings,
        input.environ,
        &inherit,
        &mut problems,
        &mut warnings,
    );
    let service = settings.service;
    let (config_vars, outer) = rc_assignments(
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
    let cfg = Cfg {
        settings: &settings,
        vars: &config_vars,
        service_dir: &service_dir,
    };

    let umask = cfg
        .derived("umask", service.umask_var().unwrap_or("-"), None)
        .and_then(|v| {
            (!v.text.is_empty()).then(|| umask(&v, &mut problems).map(|m| (m, v.origin)))?
        });
    let ulimit_v = cfg
        .derived("ulimit_v", service.ulimit_var().unwrap_or("-"), None)
        .and_then(|v| {
            if v.text.is_empty() {
                return None;
            }
            match limits::parse_ulimit_v(&v.text) {
                Ok(b) => Some((b, v.origin)),
                Err(e) => {
                    problems.push(Problem::bad(
                        "settings",
                        v.origin.position(),
                        format!("{e:#}"),
                        "",
                    ));
                    None
                }
            }
        });
    let address = checked(
        cfg.derived("address", service.address_var(), Some("0")),
        address,
        "0",
        &mut problems,
    );
    let default_port = service.default_port().to_string();
    // couriertcpd binds a list of ports and ADDRESS.PORT items itself.
    let tcpd = settings
        .str("server")
        .split_ascii_whitespace()
        .next()
        .and_then(frontend::Kind::of)
        == Some(frontend::Kind::Couriertcpd);
    let port = checked(
        cfg.derived("port", service.port_var(), Some(&default_port)),
        if tcpd { tcpd_port } else { port },
        &default_port,
        &mut problems,
    );
    let conlimit = checked(
        cfg.derived("conlimit", "MAXDAEMONS", Some("40")),
        conlimit,
        "40",
        &mut problems,
    );
    let maildir = cfg
        .derived("maildir", "MAILDIRPATH", Some("Maildir"))
        .expect("has a fallback");

    let account = lookup(&settings, "account", &mut problems);
    let setuidgid = lookup(&settings, "setuidgid", &mut problems)
        .filter(|a| can_switch(a).map_err(|p| problems.push(p)).is_ok());
    let softlimit = limits::parse_softlimit(settings.str("softlimit")).unwrap_or_else(|e| {
        problems.push(Problem::bad(
            "settings",
            settings.get("softlimit").origin.position(),
            format!("{e:#}"),
            "",
        ));
        Vec::new()
    });
    let envdir = envdir_path(&settings, &mut problems);

    let server: Vec<String> = settings
        .str("server")
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let (login, auth, imapd) = chain(&settings, &mut problems);
    // -ssl: `$COURIERTLS -server -tcpd -user=ACCOUNT` before the login
    // program, COURIERTLS as the rc's outer shell expands it.
    let couriertls = outer
        .get("COURIERTLS")
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_else(|| Service::default_couriertls(settings.layout, settings.str("prefix")));
    let account_name = settings.str("account").to_string();
    let tls_wrapper = service.tls_wrapper(&couriertls, &account_name);
    // The group is kept as a number here: its name is only for people
    // (report looks it up), and a launch need not read /etc/group for it.
    let cache_reset = account.as_ref().and_then(|a| {
        Service::cache_reset(outer.get("TLS_CACHEFILE"), &a.name, &a.gid.to_string())
    });
    // The PATH the program is looked up in is the final environment's: a
    // config PATH wins over the inherited one, as envdir applies it.
    let path = match cfg.vars.iter().rev().find(|a| a.name == "PATH") {
        Some(a) => Some(a.value.clone()),
        None if inherit.keeps(b"PATH") => input
            .environ
            .iter()
            .find(|(n, _)| n == b"PATH")
            .map(|(_, v)| v.clone()),
        None => None,
    };
    let program = match server.first() {
        None => {
            problems.push(Problem::bad(
                "server",
                settings.get("server").origin.position(),
                "server is empty",
                "set it to e.g. \"tcpserver -v -RH -l0\"",
            ));
            PathBuf::from("tcpserver")
        }
        Some(arg0) => find_program(arg0.as_bytes(), path.as_deref()).unwrap_or_else(|p| {
            problems.push(p);
            PathBuf::from(arg0)
        }),
    };
    let front = front(
        &cfg,
        &outer,
        &server,
        &program,
        &address,
        &mut problems,
        &mut warnings,
    );
    // TLS_CACHEFILE: refused (like the launch would) when its path is not
    // safe to reset as root, or names a file courier-run reads.
    if let (Some(c), Some(a)) = (&cache_reset, &account) {
        let mut protected: Vec<PathBuf> = input
            .runfile
            .map(Path::to_path_buf)
            .into_iter()
            .chain(sources.iter().cloned())
            .collect();
        if let Some(s) = &front.access {
            protected.extend(access::source_files(&s.source).unwrap_or_default());
            protected.push(s.source.clone());
            protected.push(s.output.clone());
        }
        // The TLS files the config names (TLS_CERTFILE, TLS_DHPARAMS, ...).
        protected.extend(
            cfg.vars
                .iter()
                .filter(|v| v.name.starts_with("TLS_") && v.name != "TLS_CACHEFILE")
                .filter(|v| v.value.starts_with(b"/") || v.value.starts_with(b"."))
                .map(|v| PathBuf::from(String::from_utf8_lossy(&v.value).into_owned())),
        );
        if let Err(e) = crate::tlscache::check(&c.path, &a.name, a.uid, a.gid, &protected) {
            problems.push(Problem::new(
                exit_code(&e),
                "TLS_CACHEFILE",
                Position::Nowhere,
                crate::error::describe(&e),
                "",
            ));
        }
    }
    let merge_stderr = choice(&settings, "stderr", ["merge", "keep"], &mut problems);
    let banner = choice(&settings, "banner", ["yes", "no"], &mut problems);
    let wait_authdaemond = wait_authdaemond(&settings, &login, &auth, &mut problems, &mut warnings);

    // What the config-derived settings resolved to, for --explain
    // (`port="143" [./imapd:7:1]`).
    for (name, v) in [
        ("address", &address),
        ("port", &port),
        ("conlimit", &conlimit),
        ("maildir", &maildir),
    ] {
        settings.resolve(name, v.text.clone(), v.origin.clone());
    }
    if let Some((m, o)) = &umask {
        settings.resolve("umask", format!("{m:03o}"), o.clone());
    }
    if let Some((v, o)) = &ulimit_v {
        let t = v.map_or("unlimited".to_string(), |b| (b / 1024).to_string());
        settings.resolve("ulimit_v", t, o.clone());
    }

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

/// `wait_authdaemond=yes` for a chain that authenticates through
/// authdaemond: the socket the launch connects to first. authdaemonrc
/// unreadable: the layout's socket, with a warning.
fn wait_authdaemond(
    settings: &Settings,
    login: &Option<PathBuf>,
    auth: &[PathBuf],
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<crate::authdaemon::Wait> {
    use crate::authdaemon;
    if !choice(settings, "wait_authdaemond", ["yes", "no"], problems)
        || !authdaemon::uses_authdaemond(login.as_deref(), auth)
    {
        return None;
    }
    let (layout, prefix) = (settings.layout, settings.str("prefix"));
    let rc = authdaemon::default_rc(layout, prefix);
    let (socket, from) = authdaemon::socket_path(&rc, layout, prefix).unwrap_or_else(|e| {
        warnings.push(format!(
            "wait_authdaemond: {}: using the layout's socket",
            crate::error::describe(&e)
        ));
        (
            authdaemon::default_var(layout, prefix).join("socket"),
            "the layout's default".into(),
        )
    });
    Some(authdaemon::Wait { socket, from })
}

/// The front end and the values that become its own arguments.
#[derive(Clone, Debug)]
pub struct Front {
    pub spec: &'static frontend::Spec,
    /// `server` names tcpserver, tcpsvd or couriertcpd (its options are
    /// known).
    pub known: bool,
    /// Courier's MAXPERIP (tcpsvd -C; tcpserver has no per-IP limit).
    pub maxperip: Option<u32>,
    /// The rules it is given, in its format.
    pub rules: Option<(String, RulesFormat)>,
    /// Courier's access list, converted into `rules` before exec (for
    /// couriertcpd: compiled by makedat into its `.dat`).
    pub access: Option<access::Step>,
    /// couriertcpd's own options (None for the other front ends).
    pub tcpd: Option<crate::couriertcpd::Opts>,
}

/// Resolve the front end: which one, MAXPERIP, the rules and their format
/// (a rules file in a format it does not read is a problem: it would
/// ignore every rule), Courier's access list (`access`, else
/// IMAPACCESSFILE; parsed here, so a bad line stops the launch with its
/// position), and whether it can bind an IPv6 address.
fn front(
    cfg: &Cfg,
    outer: &Scope,
    server: &[String],
    program: &Path,
    address: &Val,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Front {
    let settings = cfg.settings;
    let kind = server.first().and_then(|p| frontend::Kind::of(p));
    let spec = kind.unwrap_or(frontend::Kind::Tcpserver).spec();
    let maxperip = cfg
        .vars
        .iter()
        .rev()
        .find(|a| a.name == "MAXPERIP")
        .and_then(|a| {
            let v = String::from_utf8_lossy(&a.value);
            match v.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) if v.is_empty() => None,
                Err(_) => {
                    problems.push(Problem::bad(
                        "config",
                        Position::At(a.value_pos.to_string()),
                        format!(
                            "MAXPERIP \"{}\" is not a number",
                            crate::shown::value(v.as_bytes())
                        ),
                        "write e.g. 4, or 0 for no per-IP limit",
                    ));
                    None
                }
            }
        });
    if kind == Some(frontend::Kind::Couriertcpd) {
        return tcpd_front(cfg, outer, maxperip, problems, warnings);
    }
    // What couriertcpd would enforce and this front end cannot: a warning
    // on every --dry-run (and start), a FAIL of --check (check/server.rs).
    if let Some(n) = maxperip.filter(|&n| n > 0)
        && spec.per_ip.is_none()
        && kind.is_some()
    {
        warnings.push(format!(
            "MAXPERIP={n} is not enforced: {} has no per-IP limit (use server=couriertcpd, or tcpsvd -C)",
            spec.name
        ));
    }
    for (w, what) in tcpd_protections(outer)
        .into_iter()
        .filter(|_| kind.is_some())
    {
        warnings.push(format!(
            "TCPDOPTS {w} ({what}) is not enforced: only couriertcpd has it (use server=couriertcpd, or remove it from TCPDOPTS)"
        ));
    }
    if frontend::is_ipv6(&address.text) {
        let capable = kind.is_some() && frontend::probe_ipv6(spec.kind, program).unwrap_or(false);
        if !capable {
            problems.push(Problem::bad(
                "settings",
                address.origin.position(),
                format!(
                    "address {} is IPv6, and {} binds IPv4 only",
                    address.text, spec.name
                ),
                "install ucspi-tcp-ipv6 (its tcpserver binds IPv6), or give an IPv4 address",
            ));
        }
    }
    // The access list's IPv6 lines: only an IPv6 tcpserver bound to an IPv6
    // address can see IPv6 clients.
    let ipv6 = kind == Some(frontend::Kind::Tcpserver)
        && frontend::is_ipv6(&address.text)
        && frontend::probe_ipv6(spec.kind, program).unwrap_or(false);
    let out_format = match spec.kind {
        frontend::Kind::Tcpserver => RulesFormat::Tcprules,
        frontend::Kind::Tcpsvd => RulesFormat::IpsvdCdb,
        frontend::Kind::Couriertcpd => unreachable!("tcpd_front"),
    };
    // access=: the setting, else IMAPACCESSFILE; an explicit empty: none.
    let acc_setting = settings.get("access");
    let (source, explicit) = match &acc_setting.value {
        Some(v) if v.is_empty() => (None, true),
        Some(v) => (Some((v.clone(), acc_setting.origin.position())), true),
        None => (
            cfg.vars
                .iter()
                .rev()
                .find(|a| a.name == "IMAPACCESSFILE" && !a.value.is_empty())
                .map(|a| {
                    (
                        String::from_utf8_lossy(&a.value).into_owned(),
                        Position::At(a.value_pos.to_string()),
                    )
                }),
            false,
        ),
    };
    let rules_setting = settings.get("rules");
    let rules_given = !settings.str("rules").is_empty();
    let mut access_step = None;
    if let Some((src, pos)) = source {
        let path = PathBuf::from(&src);
        if rules_given && !matches!(rules_setting.origin, Origin::Default) {
            problems.push(Problem::bad(
                "settings",
                rules_setting.origin.position(),
                format!(
                    "rules and an access list ({}) are both given: the front end reads one",
                    crate::shown::path(&src)
                ),
                "set rules= (empty) to use the access list, or access= (empty) to use rules",
            ));
        } else {
            // Fail closed: a configured list that is missing, unreadable
            // or not a regular file (or a directory of them) stops the
            // launch; it never means "no rules".
            let stamp = access::stamp(&path);
            let compiled = stamp.and_then(|stamp| {
                let entries = access::read(&path)?;
                let c =
                    access::convert(&entries, out_format, ipv6).map_err(crate::error::bad_input)?;
                Ok((crate::cdb::write(&c.records), c.warnings, stamp))
            });
            match compiled {
                Err(e) => {
                    let code = exit_code(&e);
                    let name = if explicit { "access" } else { "IMAPACCESSFILE" };
                    let fix = if code == Exit::Usage {
                        "fix it, or set access= (empty) to run without an access list".to_string()
                    } else {
                        format!(
                            "{name} names it; create it, or set access= (empty) to run without an access list"
                        )
                    };
                    // A parse error carries its own file:line:col.
                    let at = if code == Exit::Usage {
                        Position::Nowhere
                    } else {
                        pos
                    };
                    problems.push(Problem::new(
                        code,
                        "access",
                        at,
                        crate::error::describe(&e),
                        fix,
                    ));
                }
                Ok((bytes, conv_warnings, stamp)) => {
                    warnings.extend(conv_warnings);
                    let output = access::output_path(cfg.service_dir, &path, out_format);
                    match access::probe(&output, &bytes) {
                        Ok(fresh) => {
                            access_step = Some(access::Step {
                                output,
                                source: path,
                                format: out_format,
                                ipv6,
                                fresh,
                                stamp,
                            });
                        }
                        Err(e) => problems.push(Problem::new(
                            exit_code(&e),
                            "access",
                            Position::Nowhere,
                            crate::error::describe(&e),
                            "",
                        )),
                    }
                }
            }
        }
    }
    let rules = if let Some(step) = &access_step {
        Some((step.output.to_string_lossy().into_owned(), step.format))
    } else if rules_given {
        let r = settings.str("rules").to_string();
        match frontend::detect(Path::new(&r)) {
            // A missing or unreadable file is --check's to report (it probes).
            Err(_) => Some((r, spec.reads[0])),
            Ok(d) => match (kind, frontend::check_rules(spec, &r, &d)) {
                (_, Ok(f)) => Some((r, f.unwrap_or(spec.reads[0]))),
                (None, Err(_)) => Some((r, spec.reads[0])),
                (Some(_), Err(m)) => {
                    problems.push(Problem::bad(
                        "rules",
                        rules_setting.origin.position(),
                        m,
                        "",
                    ));
                    Some((r, spec.reads[0]))
                }
            },
        }
    } else {
        None
    };
    Front {
        spec,
        known: kind.is_some(),
        maxperip,
        rules,
        access: access_step,
        tcpd: None,
    }
}

/// TCPDOPTS's couriertcpd-only options, as the rc's inner shell would
/// split the outer shell's value (none when it cannot be split).
pub fn tcpd_protections(outer: &Scope) -> Vec<(String, &'static str)> {
    let Some(v) = outer.get("TCPDOPTS") else {
        return Vec::new();
    };
    crate::couriertcpd::words(&String::from_utf8_lossy(v))
        .map(|w| crate::couriertcpd::protections(&w))
        .unwrap_or_default()
}

/// couriertcpd as Courier's rc runs it: `-maxperip=$MAXPERIP`, the imapd
/// services' `-access=$IMAPACCESSFILE.dat` (IMAPACCESSFILE defaulting to
/// SYSCONFDIR/imapaccess, as the rc's `${IMAPACCESSFILE:=...}`; built by
/// makedat when missing or older than the list), `$TCPDOPTS` split as the
/// rc's inner shell splits it. The values are the rc's OUTER shell's: it
/// pastes them into the inner script.
fn tcpd_front(
    cfg: &Cfg,
    outer: &Scope,
    maxperip: Option<u32>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Front {
    use crate::couriertcpd;
    let settings = cfg.settings;
    let text = |n: &str| {
        outer
            .get(n)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    };
    let pos = |n: &str| {
        outer
            .assignments()
            .iter()
            .rev()
            .find(|a| a.name == n)
            .map_or(Position::Nowhere, |a| Position::At(a.value_pos.to_string()))
    };
    let tcpdopts = match text("TCPDOPTS") {
        None => Vec::new(),
        Some(t) => couriertcpd::words(&t).unwrap_or_else(|why| {
            problems.push(Problem::bad(
                "config",
                pos("TCPDOPTS"),
                format!(
                    "TCPDOPTS holds {why}: Courier's rc pastes it into a shell command, which would not pass it as written"
                ),
                "write plain -name=value words, with '...' around a value that has blanks",
            ));
            Vec::new()
        }),
    };
    let service = settings.service;
    let acc = settings.get("access");
    let rules = settings.get("rules");
    let rules_given = !matches!(rules.origin, Origin::Default) && !settings.str("rules").is_empty();
    let source = match &acc.value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some((PathBuf::from(v), true)),
        // Debian's pop3d rc scripts pass no access list.
        None if service.protocol() == crate::service::Protocol::Imap && !rules_given => {
            let f = text("IMAPACCESSFILE")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| {
                    format!(
                        "{}/imapaccess",
                        Service::config_dir(settings.layout, settings.str("prefix"))
                    )
                });
            Some((PathBuf::from(f), false))
        }
        None => None,
    };
    let mut access_step = None;
    let mut dat = None;
    if rules_given {
        if source.as_ref().is_some_and(|(_, explicit)| *explicit) {
            problems.push(Problem::bad(
                "settings",
                rules.origin.position(),
                "rules and access are both given: couriertcpd reads one -access",
                "set rules= (empty) to build the access list, or access= (empty) to use rules",
            ));
        }
        // A .dat built elsewhere, passed as it is; a cdb or a directory
        // (another front end's rules) would be misread by couriertcpd.
        let r = settings.str("rules");
        if let Ok(frontend::Detected::Format(f)) = frontend::detect(Path::new(r)) {
            problems.push(Problem::bad(
                "rules",
                rules.origin.position(),
                frontend::mismatch(&frontend::COURIERTCPD, r, f),
                "",
            ));
        }
        dat = Some(PathBuf::from(r));
    } else if let Some((src, explicit)) = source {
        let out = crate::makedat::dat_path(&src);
        // Fail closed, as for the other front ends: a list the run file or
        // the config names that is missing, unreadable or not regular files
        // stops the launch (makedat would hang on a FIFO, and couriertcpd
        // without its .dat accepts every client). Only the rc's own
        // default, /etc/courier/imapaccess with IMAPACCESSFILE unset, may
        // be absent (a warning).
        let configured = explicit || text("IMAPACCESSFILE").is_some_and(|v| !v.is_empty());
        match access::read(&src).and_then(|_| access::stamp(&src)) {
            Ok(stamp) => {
                access_step = Some(access::Step {
                    source: src.clone(),
                    output: out.clone(),
                    format: RulesFormat::CourierDat,
                    ipv6: true,
                    fresh: false,
                    stamp,
                });
            }
            Err(e) if configured || src.exists() => {
                let (name, at) = if explicit {
                    ("access", acc.origin.position())
                } else {
                    ("IMAPACCESSFILE", pos("IMAPACCESSFILE"))
                };
                let code = exit_code(&e);
                problems.push(Problem::new(
                    code,
                    "access",
                    if code == Exit::Usage { Position::Nowhere } else { at },
                    crate::error::describe(&e),
                    format!(
                        "{name} names it; fix or create it, or set access= (empty) to run without an access list"
                    ),
                ));
            }
            Err(_) => warnings.push(format!(
                "{} (Courier's default access list) does not exist: couriertcpd accepts every client",
                crate::shown::path(&src)
            )),
        }
        dat = Some(out);
    }
    Front {
        spec: &frontend::COURIERTCPD,
        known: true,
        maxperip,
        rules: dat
            .as_ref()
            .map(|d| (d.to_string_lossy().into_owned(), RulesFormat::CourierDat)),
        access: access_step,
        tcpd: Some(couriertcpd::Opts {
            maxperip: text("MAXPERIP").unwrap_or_default(),
            access: dat,
            tcpdopts,
        }),
    }
}

/// The settings and the config's variables, for settings that default to
/// a config variable.
struct Cfg<'a> {
    settings: &'a Settings,
    vars: &'a [Assignment],
    /// The run file's directory (or `.`): where compiled rules go.
    service_dir: &'a Path,
}

impl Cfg<'_> {
    /// The setting, else the variable (positioned at its value), else
    /// `fallback`.
    fn derived(&self, name: &str, var: &str, fallback: Option<&str>) -> Option<Val> {
        let s = self.settings.get(name);
        if let Some(v) = &s.value {
            return Some(Val {
                text: v.clone(),
                origin: s.origin.clone(),
                stand_in: false,
            });
        }
        if let Some(a) = self.vars.iter().rev().find(|a| a.name == var) {
            return Some(Val {
                text: String::from_utf8_lossy(&a.value).into_owned(),
                origin: Origin::File(a.value_pos.clone()),
                stand_in: false,
            });
        }
        fallback.map(|f| Val {
            text: f.to_string(),
            origin: Origin::Default,
            stand_in: false,
        })
    }
}

/// A derived value passed through its check; on a problem, the stand-in.
fn checked(
    v: Option<Val>,
    check: fn(&Val) -> Result<(), (String, String)>,
    stand_in: &str,
    problems: &mut Vec<Problem>,
) -> Val {
    let v = v.expect("has a fallback");
    match check(&v) {
        Ok(()) => v,
        Err((message, fix)) => {
            problems.push(Problem::bad("settings", v.origin.position(), message, fix));
            Val {
                text: stand_in.to_string(),
                origin: v.origin,
                stand_in: true,
            }
        }
    }
}

pub(crate) fn inherit(settings: &Settings, problems: &mut Vec<Problem>) -> Inherit {
    match settings.str("inherit_env") {
        "all" => Inherit::All,
        "none" => Inherit::Nothing,
        names => {
            let names: Vec<Vec<u8>> = names
                .split_ascii_whitespace()
                .map(|n| n.as_bytes().to_vec())
                .collect();
            if let Some(bad) = names.iter().find(|n| !crate::config::is_name(n)) {
                problems.push(Problem::bad(
                    "settings",
                    settings.get("inherit_env").origin.position(),
                    format!(
                        "inherit_env: {} is not a variable name",
                        crate::shown::value(bad)
                    ),
                    "write all, none, or names separated by blanks",
                ));
                return Inherit::All;
            }
            Inherit::Names(names)
        }
    }
}

/// A service table's predefined words as scope entries.
fn words(v: Vec<(&'static str, String)>) -> impl Iterator<Item = (String, Vec<u8>)> {
    v.into_iter().map(|(n, v)| (n.to_string(), v.into_bytes()))
}

/// The config files, in one scope, with the kept environment and Courier's
/// rc variables predefined for references (not exported, so not in the
/// envdir). A file with a problem is reported and the next one still read.
fn read_configs(
    settings: &Settings,
    environ: &Environ,
    inherit: &Inherit,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> (Vec<PathBuf>, Vec<Assignment>, bool, Vec<PathBuf>, Read) {
    let configs: Vec<PathBuf> = settings
        .str("config")
        .split_ascii_whitespace()
        .map(PathBuf::from)
        .collect();
    let kept: Environ = environ
        .iter()
        .filter(|(n, _)| inherit.keeps(n))
        .cloned()
        .collect();
    // The rc's inner shell: what it assigns before sourcing the files.
    let mut visible = environ::visible(&kept);
    visible.extend(words(
        settings
            .service
            .predefined(settings.layout, settings.str("prefix")),
    ));
    let mut scope = Scope::new(visible);
    let mut private = false;
    let mut read: Read = Vec::new();
    for path in &configs {
        // The bytes are kept: the rc's outer scope reads the same files.
        let got = crate::config::read_bounded(path, "config file").and_then(|(src, meta)| {
            let (mode, memo) = scope.read_traced(path, &src, &meta)?;
            read.push(ConfigRead {
                path: path.clone(),
                src,
                meta,
                memo,
            });
            Ok(mode)
        });
        match got {
            Ok(mode) => private |= mode & 0o004 == 0,
            Err(e) => {
                let mut p = Problem::from_error(config_subject(&path.to_string_lossy()), &e);
                if crate::settings::not_found(&e) {
                    p.fix = "install Courier's config, or set config= to the files to read".into();
                }
                problems.push(p)
            }
        }
    }
    warnings.extend(scope.warnings.iter().map(|w| w.to_string()));
    let vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
    for a in &vars {
        if let Err(e) = envdir::check_carriable(a) {
            problems.push(Problem::from_error(config_subject(&a.pos.file), &e));
        }
    }
    (configs, vars, private, scope.files().to_vec(), read)
}

/// The config files read without a problem, with their bytes and what
/// reading them did (for the rc's outer scope).
type Read = Vec<ConfigRead>;

struct ConfigRead {
    path: PathBuf,
    src: Vec<u8>,
    meta: std::fs::Metadata,
    memo: Option<crate::config::Memo>,
}

/// The service rc's own assignments after the config files
/// (`IMAP_STARTTLS=$IMAPDSTARTTLS`, `IMAP_TLS=1`, ...), appended to the
/// config's variables (so the envdir carries them, as the rc's `set -a`
/// exports them), with the rc's outer scope their `$NAME`s read.
fn rc_assignments(
    settings: &Settings,
    configs: &[PathBuf],
    read: &Read,
    environ: &Environ,
    mut vars: Vec<Assignment>,
    warnings: &mut Vec<String>,
) -> (Vec<Assignment>, Scope) {
    let service = settings.service;
    let mut visible = environ::visible(environ);
    visible.extend(words(
        service.outer_predefined(settings.layout, settings.str("prefix")),
    ));
    let mut outer = Scope::new(visible);
    for path in service.outer_files(settings.layout, configs) {
        // Problems of these files are reported by read_configs already.
        // A file read there is not read again: replayed when every
        // reference it makes reads the same in this scope (the usual case:
        // Courier's configs refer to little), else its bytes parsed again.
        let _ = match read.iter().find(|c| c.path == path) {
            Some(c) => match &c.memo {
                Some(m) if outer.replay(&c.path, m) => Ok(0),
                _ => outer.read_opened(&c.path, &c.src, &c.meta),
            },
            None => crate::config::read_file(&mut outer, &path),
        };
    }
    let file: std::sync::Arc<str> = std::sync::Arc::from(format!("<{} rc>", service.name()));
    for (i, (name, value)) in service
        .rc_values(settings.layout, &outer)
        .into_iter()
        .enumerate()
    {
        // The rc pastes the outer value into its inner script's text,
        // where sh would parse it again (split it, expand `$`); courier-run
        // keeps the value as the config wrote it, and says so.
        if !crate::service::plain_word(&value) {
            warnings.push(format!(
                "{name}: Courier's {} script pastes the value {} into a shell command, where it would be parsed again; courier-run uses it as written",
                service.name(),
                crate::shown::value(&value)
            ));
        }
        let pos = crate::config::Pos {
            file: file.clone(),
            line: i as u32 + 1,
            col: 1,
        };
        vars.retain(|a| a.name != name);
        vars.push(Assignment {
            name: name.to_string(),
            value,
            pos: pos.clone(),
            value_pos: pos,
        });
    }
    (vars, outer)
}

/// The `--check` subject of a config file's problems.
pub fn config_subject(file: &str) -> String {
    format!("config {}", crate::shown::path(file))
}

pub(crate) fn umask(v: &Val, problems: &mut Vec<Problem>) -> Option<u32> {
    match u32::from_str_radix(&v.text, 8) {
        Ok(m) if m <= 0o777 && !v.text.starts_with('+') => Some(m),
        _ => {
            problems.push(Problem::bad(
                "settings",
                v.origin.position(),
                format!(
                    "umask \"{}\" is not an octal mode",
                    crate::shown::value(&v.text)
                ),
                "write e.g. 022",
            ));
            None
        }
    }
}

fn address(v: &Val) -> Result<(), (String, String)> {
    if v.text.is_empty() || v.text.contains([',', ' ', '\t']) {
        return Err((
            format!(
                "address \"{}\" is not one host or IP address",
                crate::shown::value(&v.text)
            ),
            "tcpserver binds one; 0 means all".into(),
        ));
    }
    Ok(())
}

/// One TCP port: a number 1-65535 or a service name from /etc/services, as
/// tcpserver accepts. Courier's PORT may be a list or `address.port`, which
/// one tcpserver cannot bind.
fn port(v: &Val) -> Result<(), (String, String)> {
    let t = crate::shown::value(&v.text);
    if t.contains(',') {
        return Err((
            format!(
                "port \"{t}\" is a list of addresses: one tcpserver binds one address and port"
            ),
            "run one service per address, with address= and port=".into(),
        ));
    }
    if let Some((addr, p)) = t.rsplit_once('.') {
        return Err((
            format!("port \"{t}\" is Courier's address.port form: tcpserver takes them apart"),
            format!("set address={addr} and port={p}"),
        ));
    }
    if port_number(&v.text).is_some() {
        return Ok(());
    }
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return Err((format!("port \"{t}\" is out of range"), "1-65535".into()));
    }
    Err((
        format!("port \"{t}\" is neither a number nor a TCP service name in /etc/services"),
        "write e.g. 143".into(),
    ))
}

/// The port number of a valid `port` value: digits, or a service name.
pub fn port_number(t: &str) -> Option<u16> {
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return t.parse::<u16>().ok().filter(|&n| n > 0);
    }
    if t.is_empty() || t.contains(['.', ',']) {
        return None;
    }
    service_port(t)
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

/// couriertcpd's port list (`143`, `127.0.0.1.143,993`).
fn tcpd_port(v: &Val) -> Result<(), (String, String)> {
    crate::couriertcpd::port_list(&v.text).map_err(|m| {
        (
            m,
            "write e.g. 143, or ADDRESS.PORT items separated by commas".into(),
        )
    })
}

fn conlimit(v: &Val) -> Result<(), (String, String)> {
    match v.text.parse::<u32>() {
        Ok(n) if n > 0 && v.text.bytes().all(|c| c.is_ascii_digit()) => Ok(()),
        _ => Err((
            format!(
                "conlimit \"{}\" is not a positive number",
                crate::shown::value(&v.text)
            ),
            "tcpserver would silently read it as 0 and never accept a connection; write e.g. 40"
                .into(),
        )),
    }
}

/// The account a setting names (`account`, `setuidgid`), or None when
/// empty or unknown (reported).
pub(crate) fn lookup(
    settings: &Settings,
    name: &'static str,
    problems: &mut Vec<Problem>,
) -> Option<Account> {
    let acct = settings.str(name);
    if acct.is_empty() {
        return None;
    }
    // Only a position in a file is worth printing before the message; a
    // --set or a default is named by the message itself.
    let position = settings.get(name).origin.position();
    match account::lookup(acct, name) {
        Ok(a) => Some(a),
        Err(e) => {
            let code = exit_code(&e);
            let shown = crate::shown::value(acct);
            let p = if code == Exit::Usage {
                Problem::bad(
                    format!("{name} {shown}"),
                    position,
                    format!("{name}: unknown account {shown}"),
                    format!("create it, or set {name} to an existing account; {name}= for none"),
                )
            } else {
                Problem::new(
                    code,
                    format!("{name} {shown}"),
                    position,
                    crate::error::describe(&e),
                    "",
                )
            };
            problems.push(p);
            None
        }
    }
}

/// setuidgid's setgroups and setgid need CAP_SETGID, its setuid
/// CAP_SETUID (unless already that user): without them the launch would
/// fail after writing the envdir (111), so it is a problem here. Root in a
/// container may lack them; the kernel checks capabilities, not uid 0.
pub(crate) fn can_switch(a: &Account) -> Result<(), Problem> {
    use crate::caps::{CAP_SETGID, CAP_SETUID, has};
    let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let same_user = uid.as_raw() == a.uid && euid.as_raw() == a.uid;
    if has(CAP_SETGID) && (same_user || has(CAP_SETUID)) {
        return Ok(());
    }
    Err(Problem::new(
        Exit::System,
        format!("setuidgid {}", a.name),
        Position::Nowhere,
        format!(
            "setuidgid {}: unable to switch to uid {} gid {}: courier-run runs as uid {euid} without the privilege to",
            a.name, a.uid, a.gid
        ),
        "CAP_SETUID and CAP_SETGID; start it as root, or set setuidgid= to stay",
    ))
}

/// The envdir setting: a path the atomic replacement can work with.
pub(crate) fn envdir_path(settings: &Settings, problems: &mut Vec<Problem>) -> Option<PathBuf> {
    let dir = settings.str("envdir");
    if dir.is_empty() {
        return None;
    }
    let path = PathBuf::from(dir);
    let subject = format!("envdir {}", crate::shown::path(dir));
    // On a problem the stand-in is no envdir: --check goes on without it.
    if let Err(e) = envdir::check_component(&path) {
        let mut p = Problem::from_error(subject, &e);
        p.position = settings.get("envdir").origin.position();
        problems.push(p);
        return None;
    } else if let Err((code, message, fix)) = envdir::check_path(&path) {
        problems.push(Problem::new(
            code,
            subject,
            settings.get("envdir").origin.position(),
            message,
            fix,
        ));
        return None;
    }
    Some(path)
}

/// login, auth modules and imapd as paths. login= empty: imapd runs alone,
/// preauthenticated as the user tcpserver runs as (`* PREAUTH`); auth
/// modules then have nothing to hand credentials to.
fn chain(
    settings: &Settings,
    problems: &mut Vec<Problem>,
) -> (Option<PathBuf>, Vec<PathBuf>, PathBuf) {
    let login = settings.str("login");
    let auth = settings.str("auth");
    let auth_origin = settings.get("auth").origin.position();
    if login.is_empty() && !auth.trim().is_empty() {
        problems.push(Problem::bad(
            "settings",
            auth_origin.clone(),
            "auth modules need a login program, and login is empty",
            "set login=, or auth= for none",
        ));
    }
    let authdir = settings.str("authdir").trim_end_matches('/');
    let mut modules = Vec::new();
    for m in auth.split_ascii_whitespace() {
        if m.contains('/') {
            modules.push(PathBuf::from(m));
        } else if authdir.is_empty() && settings.str("authdir").is_empty() {
            problems.push(Problem::bad(
                format!("auth {}", crate::shown::value(m)),
                auth_origin.clone(),
                format!(
                    "auth module {} is a bare name but authdir is empty",
                    crate::shown::value(m)
                ),
                "set authdir, or give the module's full path",
            ));
        } else {
            modules.push(PathBuf::from(format!("{authdir}/{m}")));
        }
    }
    let imapd = settings.str("imapd");
    if imapd.is_empty() {
        problems.push(Problem::bad(
            "settings",
            settings.get("imapd").origin.position(),
            "imapd is empty",
            "set it to the imapd program",
        ));
    }
    let login = (!login.is_empty()).then(|| PathBuf::from(login));
    (login, modules, PathBuf::from(imapd))
}

/// A setting with two values; the first is also the stand-in.
pub(crate) fn choice(
    settings: &Settings,
    name: &str,
    [yes, no]: [&str; 2],
    problems: &mut Vec<Problem>,
) -> bool {
    match settings.str(name) {
        v if v == yes => true,
        v if v == no => false,
        other => {
            problems.push(Problem::bad(
                "settings",
                settings.get(name).origin.position(),
                format!(
                    "{name} \"{}\" is neither {yes} nor {no}",
                    crate::shown::value(other)
                ),
                "",
            ));
            true
        }
    }
}

/// Find argv[0] as daemontools' pathexec_run does: a name with a `/` is
/// used as is; else each PATH element in turn (empty means `.`), PATH
/// defaulting to /bin:/usr/bin. Not found: 127; found but not executable:
/// 126 (execve's EACCES).
pub fn find_program(arg0: &[u8], path: Option<&[u8]>) -> Result<PathBuf, Problem> {
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
    let shown = crate::shown::path(name);
    let subject = format!("program {shown} (server)");
    Err(match denied {
        Some(c) => Problem::new(
            Exit::NoExec,
            subject,
            Position::Nowhere,
            format!(
                "unable to run {shown}: {} is not an executable file",
                c.display()
            ),
            "",
        ),
        None if arg0.contains(&b'/') => Problem::new(
            Exit::NotFound,
            subject,
            Position::Nowhere,
            format!("unable to run {shown}: file does not exist"),
            "",
        ),
        None => Problem::new(
            Exit::NotFound,
            subject,
            Position::Nowhere,
            format!(
                "unable to run {shown}: not found in PATH={}",
                crate::shown::shown(
                    path.unwrap_or(b"/bin:/usr/bin"),
                    crate::shown::MAX_SHOWN_PATH
                )
            ),
            "install the front end (ucspi-tcp for tcpserver), or set server= with its full path",
        ),
    })
}
