//! `service=authdaemond`: courier-authlib's authentication daemon as a
//! supervised service, in place of Debian's `/usr/sbin/authdaemond`:
//!
//! ```sh
//! prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; localstatedir=/var/lib/courier
//! set -a
//! . /etc/courier/authdaemonrc
//! exec ${sbindir}/courierlogger -pid=/run/courier/authdaemon/pid $LOGGEROPTS -$1 \
//!     /usr/lib/courier/courier-authlib/authdaemond
//! ```
//!
//! Here: the four variables before `set -a` are visible to references in
//! authdaemonrc but not exported; every assignment of authdaemonrc is
//! exported (the envdir); the program is exec'd directly, without
//! courierlogger and its pid file, so it stays in the foreground, logs to
//! stderr (the service's log) and the supervisor's pid is its pid.
//!
//! What authdaemond does itself (Debian 12, courier-authlib 0.71, traced):
//! it takes no argument (with one it prints "authdaemond no longer handles
//! its own daemonizing" and exits 1); it reads `authmodulelist` and
//! `daemons` from its compiled-in authdaemonrc, not from the environment;
//! it loads each module as `libNAME.so.0` from its module directory
//! (`/usr/lib/courier-authlib`), logging "file not found" for a missing
//! one and running on even with none; it binds `socket.tmp` in
//! authdaemonvar, chmods it 0777 and renames it over `socket`: a second
//! authdaemond silently takes the socket from a running one. It stays root
//! (authpam reads the shadow file): no account is switched to by default.
//!
//! The launch and `--dry-run` use the same [`Plan`] as the mail services;
//! `--check` is [`crate::check`]'s `authdaemond` group.

use std::path::{Path, PathBuf};

use crate::account::Account;
use crate::config::{Assignment, Scope};
use crate::envdir;
use crate::environ::{self, Environ};
use crate::error::{Exit, Problem, Subject, printable};
use crate::limits;
use crate::plan::{EnvdirPlan, Plan, Var};
use crate::report::{self, Format};
use crate::resolve::{self, Inherit, Input};
use crate::settings::{Layout, Name, Origin, Settings};

/// The settings of a mail service that mean nothing here: set in a run
/// file of `service=authdaemond`, they are an error (not silently unused).
pub const MAIL_ONLY: &[Name] = &[
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
    Name::WaitAuthdaemond,
];

/// The authdaemond program of a layout.
pub fn program(layout: Layout, prefix: &str) -> String {
    match layout {
        Layout::Debian => "/usr/lib/courier/courier-authlib/authdaemond".into(),
        Layout::Courier2 => format!("{prefix}/libexec/courier-authlib/authdaemond"),
    }
}

/// Where authdaemond loads its modules from (`libNAME.so.0`).
pub fn module_dir(layout: Layout, prefix: &str) -> PathBuf {
    match layout {
        Layout::Debian => PathBuf::from("/usr/lib/courier-authlib"),
        Layout::Courier2 => PathBuf::from(format!("{prefix}/lib/courier-authlib")),
    }
}

/// The file of module `name` of `authmodulelist`.
pub fn module_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("lib{name}.so.0"))
}

/// The variables the script sets before `set -a`: visible to references
/// in authdaemonrc, not exported.
pub fn predefined(layout: Layout, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let v = match layout {
        Layout::Debian => [
            ("prefix", "/usr".to_string()),
            ("exec_prefix", "/usr".into()),
            ("sbindir", "/usr/sbin".into()),
            ("localstatedir", "/var/lib/courier".into()),
        ],
        Layout::Courier2 => [
            ("prefix", prefix.to_string()),
            ("exec_prefix", prefix.into()),
            ("sbindir", format!("{prefix}/sbin")),
            ("localstatedir", format!("{prefix}/var")),
        ],
    };
    v.into_iter()
        .map(|(n, v)| (n.to_string(), v.into_bytes()))
        .collect()
}

/// The settings of `service=authdaemond`, typed and validated.
#[derive(Clone, Debug)]
pub struct Daemon {
    pub settings: Settings,
    pub environ: Environ,
    pub inherit: Inherit,
    pub configs: Vec<PathBuf>,
    /// authdaemonrc's assignments (exported by `set -a`), in order.
    pub config_vars: Vec<Assignment>,
    pub private: bool,
    /// The run file, authdaemonrc and what it sources.
    pub sources: Vec<PathBuf>,
    pub account: Option<Account>,
    pub setuidgid: Option<Account>,
    pub softlimit: Vec<limits::SoftLimit>,
    pub umask: Option<(u32, Origin)>,
    pub ulimit_v: Option<(Option<u64>, Origin)>,
    pub envdir: Option<PathBuf>,
    pub merge_stderr: bool,
    pub banner: bool,
    pub server: Vec<String>,
    pub program: PathBuf,
    /// The authdaemonrc authdaemond reads itself (compiled in).
    pub own_rc: PathBuf,
    pub warnings: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Daemon {
    /// The final value of a variable of authdaemonrc.
    pub fn var(&self, name: &str) -> Option<&Assignment> {
        self.config_vars.iter().rev().find(|a| a.name == name)
    }

    /// `authmodulelist` as authdaemond reads it: from its own
    /// authdaemonrc when that is not among the files read (then the
    /// configured files' value is not what it uses).
    pub fn modules(&self) -> Vec<String> {
        let from = |v: &[u8]| -> Vec<String> {
            String::from_utf8_lossy(v)
                .split_ascii_whitespace()
                .map(str::to_string)
                .collect()
        };
        if self.configs.contains(&self.own_rc) {
            return self
                .var("authmodulelist")
                .map(|a| from(&a.value))
                .unwrap_or_default();
        }
        let mut scope = Scope::new(predefined(
            self.settings.layout,
            self.settings.prefix.as_str(),
        ));
        match crate::config::read_file(&mut scope, &self.own_rc) {
            Ok(_) => scope.get("authmodulelist").map(from).unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    /// The socket authdaemond binds: `$authdaemonvar/socket`.
    pub fn socket(&self) -> (PathBuf, String) {
        match self.var("authdaemonvar").filter(|a| !a.value.is_empty()) {
            Some(a) => (
                PathBuf::from(String::from_utf8_lossy(&a.value).into_owned()).join("socket"),
                a.pos.to_string(),
            ),
            None => (
                crate::authdaemon::default_var(self.settings.layout, self.settings.prefix.as_str())
                    .join("socket"),
                "the layout's default".into(),
            ),
        }
    }
}

/// Resolve `service=authdaemond` from the loaded settings. Never fails:
/// problems are in the result, each bad value with a harmless stand-in.
pub fn resolve(input: &Input, loaded: (Settings, Vec<Problem>)) -> Daemon {
    let (mut settings, mut problems) = loaded;
    let mut warnings = settings.warnings.clone();
    refuse_mail_only(&mut settings, &mut problems);
    let (layout, prefix) = (settings.layout, settings.prefix.as_str().to_string());

    let inherit = resolve::inherit(&settings, &mut problems);
    let rc = read_rc(input, &settings, &inherit, &mut problems);
    warnings.extend(rc.scope.warnings.iter().map(|w| w.to_string()));
    let own_rc = crate::authdaemon::default_rc(layout, &prefix);
    warnings.extend(unused_rc_values(&settings, &rc, &own_rc));

    let account = resolve::lookup(&settings, Name::Account, &mut problems);
    let setuidgid = resolve::lookup(&settings, Name::Setuidgid, &mut problems)
        .filter(|a| resolve::can_switch(a).map_err(|p| problems.push(p)).is_ok());
    let softlimit = resolve::softlimit(&settings, &mut problems).limits;
    let umask = umask(&settings, &mut problems);
    let ulimit_v = ulimit_v(&settings, &mut problems);
    let envdir = resolve::envdir_path(&settings, &mut problems);
    let merge_stderr = resolve::choice(&settings, Name::Stderr, ["merge", "keep"], &mut problems);
    let banner = resolve::choice(&settings, Name::Banner, ["yes", "no"], &mut problems);
    let cmd = command(input, &settings, &inherit, &rc.config_vars, &mut problems);

    Daemon {
        sources: input
            .runfile
            .map(Path::to_path_buf)
            .into_iter()
            .chain(rc.scope.files().iter().cloned())
            .collect(),
        settings,
        environ: input.environ.clone(),
        inherit,
        configs: rc.configs,
        config_vars: rc.config_vars,
        private: rc.private,
        account,
        setuidgid,
        softlimit,
        umask,
        ulimit_v,
        envdir,
        merge_stderr,
        banner,
        server: cmd.server,
        program: cmd.program,
        own_rc,
        warnings,
        problems,
    }
}

/// A mail service's setting in a run file of `service=authdaemond` is an
/// error, not silently unused; and `--explain` shows only the settings
/// that mean something here.
fn refuse_mail_only(settings: &mut Settings, problems: &mut Vec<Problem>) {
    for name in MAIL_ONLY {
        let s = settings.get(*name);
        if s.value.is_some() && !matches!(s.origin, Origin::Default) {
            problems.push(Problem::bad(
                Subject::Settings,
                s.origin.position(),
                format!("{name} does not apply to service=authdaemond (it has no front end, login or maildir)"),
                format!("remove {name} from the run file"),
            ));
        }
    }
    settings
        .values
        .retain(|(n, _)| !MAIL_ONLY.iter().any(|m| m.as_str() == *n));
}

/// authdaemonrc as read by `set -a; . authdaemonrc`.
struct DaemonRc {
    /// The files of `config=`, in order.
    configs: Vec<PathBuf>,
    /// The scope after reading them (its warnings and the files sourced).
    scope: Scope,
    /// Every assignment (all exported), in order.
    config_vars: Vec<Assignment>,
    /// Some file is not world-readable (the envdir is written private).
    private: bool,
}

/// Read the config files as the script does: the kept environment and the
/// script's own variables visible, every assignment exported. A file that
/// cannot be read, or a value an envdir cannot carry, is a problem.
fn read_rc(
    input: &Input,
    settings: &Settings,
    inherit: &Inherit,
    problems: &mut Vec<Problem>,
) -> DaemonRc {
    let configs: Vec<PathBuf> = settings
        .str(Name::Config)
        .split_ascii_whitespace()
        .map(PathBuf::from)
        .collect();
    let kept: Environ = input
        .environ
        .iter()
        .filter(|(n, _)| inherit.keeps(n))
        .cloned()
        .collect();
    let mut visible = environ::visible(&kept);
    visible.extend(predefined(settings.layout, settings.prefix.as_str()));
    let mut scope = Scope::new(visible);
    let mut private = false;
    for path in &configs {
        match crate::config::read_file(&mut scope, path) {
            Ok(mode) => private |= mode & 0o004 == 0,
            Err(e) => {
                let mut p =
                    Problem::from_error(resolve::config_subject(&path.to_string_lossy()), &e);
                if crate::settings::not_found(&e) {
                    p.fix =
                        "install courier-authdaemon, or set config= to your authdaemonrc".into();
                }
                problems.push(p);
            }
        }
    }
    let config_vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
    for a in &config_vars {
        if let Err(e) = envdir::check_carriable(a) {
            problems.push(Problem::from_error(
                resolve::config_subject(&a.pos.file),
                &e,
            ));
        }
    }
    DaemonRc {
        configs,
        scope,
        config_vars,
        private,
    }
}

/// authdaemond reads `authmodulelist` and `daemons` from its compiled-in
/// authdaemonrc, not from its environment: set in another file, they are
/// not used, and the admin is told so.
fn unused_rc_values(settings: &Settings, rc: &DaemonRc, own_rc: &Path) -> Option<String> {
    if rc.configs.iter().any(|c| c == own_rc) {
        return None;
    }
    let set: Vec<&str> = ["authmodulelist", "daemons"]
        .into_iter()
        .filter(|n| rc.config_vars.iter().any(|a| a.name == *n))
        .collect();
    (!set.is_empty()).then(|| {
        format!(
            "authdaemond reads {} from {} itself (compiled in), not from its environment: the value in {} is not used",
            set.join(" and "),
            own_rc.display(),
            settings.str(Name::Config)
        )
    })
}

/// `umask`, as Courier's rc applies it: octal; empty means unchanged.
fn umask(settings: &Settings, problems: &mut Vec<Problem>) -> Option<(u32, Origin)> {
    let s = settings.get(Name::Umask);
    let v = resolve::SettingText {
        text: s.value.clone().unwrap_or_default(),
        origin: s.origin.clone(),
        stand_in: false,
    };
    (!v.text.is_empty())
        .then(|| resolve::umask(&v, problems).map(|m| (m, v.origin)))
        .flatten()
}

/// `ulimit_v` in KiB as sh's `ulimit -v` takes it; empty means unchanged.
fn ulimit_v(settings: &Settings, problems: &mut Vec<Problem>) -> Option<(Option<u64>, Origin)> {
    let s = settings.get(Name::UlimitV);
    let v = resolve::SettingText {
        text: s.value.clone().unwrap_or_default(),
        origin: s.origin.clone(),
        stand_in: false,
    };
    resolve::ulimit_v(v, problems)
}

/// What is exec'd: `server`'s words and its program.
struct DaemonCommand {
    server: Vec<String>,
    program: PathBuf,
}

/// `server` split into words, its program looked up in the PATH the
/// program gets (the config's, else the kept one). courier-authlib's
/// authdaemond refuses any argument, so arguments to it are a problem;
/// after a problem the argv is the program alone (a harmless stand-in).
fn command(
    input: &Input,
    settings: &Settings,
    inherit: &Inherit,
    config_vars: &[Assignment],
    problems: &mut Vec<Problem>,
) -> DaemonCommand {
    let server: Vec<String> = settings
        .str(Name::Server)
        .split_ascii_whitespace()
        .map(str::to_string)
        .collect();
    let path = match config_vars.iter().rev().find(|a| a.name == "PATH") {
        Some(a) => Some(a.value.clone()),
        None if inherit.keeps(b"PATH") => input
            .environ
            .iter()
            .find(|(n, _)| n == b"PATH")
            .map(|(_, v)| v.clone()),
        None => None,
    };
    let fallback = program(settings.layout, settings.prefix.as_str());
    let program = match server.first() {
        None => {
            problems.push(Problem::bad(
                Subject::Server,
                settings.get(Name::Server).origin.position(),
                "server is empty",
                format!("set it to the authdaemond program, e.g. {fallback}"),
            ));
            PathBuf::from(&fallback)
        }
        Some(arg0) => resolve::find_program(arg0.as_bytes(), path.as_deref()).unwrap_or_else(|p| {
            problems.push(p);
            PathBuf::from(arg0)
        }),
    };
    // courier-authlib's authdaemond refuses any argument (exit 1).
    if server.len() > 1 && program.file_name().is_some_and(|n| n == "authdaemond") {
        problems.push(Problem::bad(
            Subject::Server,
            settings.get(Name::Server).origin.position(),
            format!(
                "server \"{}\": authdaemond takes no arguments (with one it exits 1: \"authdaemond no longer handles its own daemonizing\")",
                printable(settings.str(Name::Server))
            ),
            format!("set server={}", server[0]),
        ));
    }
    let server = if problems.iter().any(|p| p.subject == Subject::Server) {
        vec![program.to_string_lossy().into_owned()]
    } else {
        server
    };
    DaemonCommand { server, program }
}

/// The plan of a launch: refused at the first problem.
pub fn plan(d: &Daemon) -> anyhow::Result<Plan> {
    if let Some(p) = d.problems.first() {
        return Err(p.clone().into());
    }
    compose(d)
}

/// The plan from the resolved values, stand-ins included (`--check`).
pub fn compose(d: &Daemon) -> anyhow::Result<Plan> {
    let env = environment(d);
    let limits_before = limits::current()?;
    let planned = limits::plan(
        &limits_before,
        d.ulimit_v.as_ref().map(|(v, _)| *v),
        &d.softlimit,
    )?;
    let envdir = envdir_step(d)?;
    let argv: Vec<Vec<u8>> = d.server.iter().map(|w| w.as_bytes().to_vec()).collect();
    let exec_room = crate::plan::exec_space(&d.program, &argv, &env, &planned)?;
    let banner = if d.banner {
        let modules = d.modules();
        vec![
            "*** Starting courier-authdaemond service...".to_string(),
            format!(
                "*** >>authmodulelist: {}",
                if modules.is_empty() {
                    "(none)".to_string()
                } else {
                    modules.join(" ")
                }
            ),
        ]
    } else {
        Vec::new()
    };
    let (uid, gid, groups) = crate::plan::exec_identity(d.setuidgid.as_ref());
    Ok(Plan {
        inputs: Vec::new(),
        exec_room,
        settings: d.settings.clone(),
        configs: d.configs.clone(),
        inherited: d.environ.clone(),
        inherit: d.inherit.clone(),
        env,
        config_vars: d.config_vars.clone(),
        // authdaemond's script assigns nothing after its file.
        rc_names: Vec::new(),
        envdir,
        tls_cache: None,
        account: d.account.clone(),
        setuidgid: d.setuidgid.clone(),
        uid,
        gid,
        groups,
        umask: d.umask.clone(),
        ulimit_v: d.ulimit_v.clone(),
        softlimit: resolve::Softlimit::new(d.settings.str(Name::Softlimit), d.softlimit.clone()),
        limits: planned,
        limits_before,
        merge_stderr: d.merge_stderr,
        banner,
        program: d.program.clone(),
        argv,
        access: None,
        wait_authdaemond: None,
        warnings: d.warnings.clone(),
    })
}

/// The environment: the kept inherited one, envuidgid, then authdaemonrc
/// (`set -a`), as for a mail service.
fn environment(d: &Daemon) -> Vec<Var> {
    crate::plan::chain_environment(&d.environ, &d.inherit, d.account.as_ref(), &d.config_vars)
}

/// The envdir step, as for a mail service: refused when what stands there
/// is not courier-run's to replace, or holds a file that was read.
fn envdir_step(d: &Daemon) -> anyhow::Result<Option<EnvdirPlan>> {
    let Some(path) = &d.envdir else {
        return Ok(None);
    };
    crate::plan::envdir_plan(
        path,
        &d.config_vars,
        d.private,
        d.sources.clone(),
        &d.settings,
    )
    .map(Some)
}

/// `--dry-run` or the launch of `service=authdaemond` (cli's part).
pub fn run(
    input: &Input,
    loaded: (Settings, Vec<Problem>),
    dry_run: bool,
    format: Format,
    explain: bool,
) -> anyhow::Result<Exit> {
    let d = resolve(input, loaded);
    if dry_run {
        let plan = plan(&d)?;
        report::print(&plan, format, explain)?;
        return Ok(Exit::Ok);
    }
    // As for a mail service: stderr to the log first (see cli).
    let keep = !d.merge_stderr && !d.problems.iter().any(|p| p.subject == Subject::RunFile);
    if !keep {
        use anyhow::Context;
        nix::unistd::dup2(1, 2).context("unable to merge stderr into stdout")?;
    }
    let plan = plan(&d)?;
    match crate::launch::launch(&plan, None)? {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/debian12/authdaemonrc")
    }

    fn resolved(sets: &[&str], environ: &Environ) -> Daemon {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let input = Input {
            runfile: None,
            sets: &sets,
            environ,
        };
        resolve(&input, resolve::load(&input))
    }

    /// Debian's authdaemonrc read as `set -a; . authdaemonrc` reads it:
    /// every assignment exported, quotes removed, in order; the script's
    /// own variables (prefix, sbindir) not exported.
    #[test]
    fn debian_authdaemonrc_as_set_a_reads_it() {
        let rc = fixture();
        let env: Environ = vec![(b"PATH".to_vec(), b"/usr/bin:/bin".to_vec())];
        let d = resolved(
            &[
                "layout=debian",
                "service=authdaemond",
                &format!("config={}", rc.display()),
                "envdir=",
            ],
            &env,
        );
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        let names: Vec<&str> = d.config_vars.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "authmodulelist",
                "authmodulelistorig",
                "daemons",
                "authdaemonvar",
                "DEBUG_LOGIN",
                "DEFAULTOPTIONS",
                "LOGGEROPTS"
            ]
        );
        let p = plan(&d).unwrap();
        assert_eq!(p.env_get("authmodulelist"), Some(&b"authpam"[..]));
        assert_eq!(p.env_get("daemons"), Some(&b"5"[..]));
        assert_eq!(
            p.env_get("authdaemonvar"),
            Some(&b"/run/courier/authdaemon"[..])
        );
        assert_eq!(p.env_get("DEFAULTOPTIONS"), Some(&b""[..]));
        assert_eq!(p.env_get("PATH"), Some(&b"/usr/bin:/bin"[..]));
        assert_eq!(p.env_get("prefix"), None);
        assert_eq!(p.env_get("sbindir"), None);
        assert_eq!(
            p.argv,
            [b"/usr/lib/courier/courier-authlib/authdaemond".to_vec()]
        );
        assert_eq!(p.account, None);
        assert_eq!(p.setuidgid, None);
        assert!(p.wait_authdaemond.is_none());
        // The fixture is not authdaemond's own file: its modules are not
        // what authdaemond loads, and the plan says so.
        assert!(
            p.warnings
                .iter()
                .any(|w| w.contains("authmodulelist and daemons from /etc/courier/authdaemonrc")),
            "{:?}",
            p.warnings
        );
        assert_eq!(
            d.socket(),
            (
                PathBuf::from("/run/courier/authdaemon/socket"),
                format!("{}:60:1", rc.display())
            )
        );
    }

    #[test]
    fn references_see_the_scripts_variables() {
        let dir = std::env::temp_dir().join(format!("cr-authdd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let rc = dir.join("authdaemonrc");
        std::fs::write(
            &rc,
            "authmodulelist=\"authuserdb authpam\"\nauthdaemonvar=$localstatedir/authdaemon\nX=\"$sbindir\"\n",
        )
        .unwrap();
        let d = resolved(
            &[
                "layout=debian",
                "service=authdaemond",
                &format!("config={}", rc.display()),
                "envdir=",
            ],
            &Vec::new(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(d.problems.is_empty(), "{:?}", d.problems);
        assert_eq!(
            d.socket().0,
            Path::new("/var/lib/courier/authdaemon/socket")
        );
        assert_eq!(d.var("X").unwrap().value, b"/usr/sbin");
    }

    #[test]
    fn mail_settings_and_arguments_are_refused() {
        let d = resolved(
            &[
                "layout=debian",
                "service=authdaemond",
                "port=143",
                "server=/bin/true -x",
                "envdir=",
            ],
            &Vec::new(),
        );
        let texts: Vec<String> = d.problems.iter().map(|p| p.text()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.contains("port does not apply to service=authdaemond")),
            "{texts:?}"
        );
        // /bin/true is not authdaemond: its arguments are its business.
        assert!(!texts.iter().any(|t| t.contains("takes no arguments")));
        let d = resolved(
            &[
                "service=authdaemond",
                "layout=debian",
                "server=/usr/lib/courier/courier-authlib/authdaemond start",
            ],
            &Vec::new(),
        );
        assert!(
            d.problems
                .iter()
                .any(|p| p.text().contains("takes no arguments")),
            "{:?}",
            d.problems
        );
        assert_eq!(d.server.len(), 1);
    }

    /// `wait_authdaemond`: on for layout=debian (Courier 5 logs in
    /// through authdaemond), off for courier2 (chained modules) and for a
    /// preauthenticated imapd; a bad value is a problem.
    #[test]
    fn wait_authdaemond_defaults() {
        let wait = |sets: &[&str]| {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            let env = Vec::new();
            let r = resolve::resolve(&Input {
                runfile: None,
                sets: &sets,
                environ: &env,
            });
            let bad = r
                .problems
                .iter()
                .any(|p| p.text().contains("wait_authdaemond"));
            (r.wait_authdaemond.map(|w| w.socket), bad)
        };
        let cfg = format!("config={}", fixture().display());
        let (w, bad) = wait(&["layout=debian", &cfg]);
        assert_eq!(
            w.as_deref(),
            Some(Path::new("/run/courier/authdaemon/socket"))
        );
        assert!(!bad);
        assert_eq!(
            wait(&["layout=debian", &cfg, "wait_authdaemond=no"]),
            (None, false)
        );
        assert_eq!(wait(&["layout=debian", &cfg, "login="]), (None, false));
        assert_eq!(wait(&["layout=courier2", &cfg]), (None, false));
        assert!(wait(&["layout=debian", &cfg, "wait_authdaemond=maybe"]).1);
    }

    /// An empty `server` is refused with the layout's program as the fix,
    /// and the stand-in argv is that program alone.
    #[test]
    fn empty_server_is_refused_with_the_layouts_program() {
        let d = resolved(
            &["layout=debian", "service=authdaemond", "server=", "envdir="],
            &Vec::new(),
        );
        let p = d
            .problems
            .iter()
            .find(|p| p.message == "server is empty")
            .unwrap_or_else(|| panic!("{:?}", d.problems));
        assert!(
            p.fix
                .contains("/usr/lib/courier/courier-authlib/authdaemond")
        );
        assert_eq!(
            d.server,
            ["/usr/lib/courier/courier-authlib/authdaemond".to_string()]
        );
    }

    /// authmodulelist/daemons set in a file other than authdaemond's own
    /// are named as unused; in its own file, or unset, nothing is said.
    #[test]
    fn unused_rc_values_only_outside_the_compiled_in_file() {
        let own = Path::new("/etc/courier/authdaemonrc");
        let rc = |file: &str, names: &[&str]| {
            let text: String = names.iter().map(|n| format!("{n}=x\n")).collect();
            let scope = crate::config::read_str(file, text.as_bytes()).unwrap();
            DaemonRc {
                configs: vec![PathBuf::from(file)],
                config_vars: scope.vars().into_iter().cloned().collect(),
                scope,
                private: false,
            }
        };
        let settings = resolve::load(&Input {
            runfile: None,
            sets: &["layout=debian".into(), "service=authdaemond".into()],
            environ: &Vec::new(),
        })
        .0;
        let w = unused_rc_values(&settings, &rc("/tmp/rc", &["daemons", "X"]), own);
        assert!(
            w.as_deref().is_some_and(|w| w
                .starts_with("authdaemond reads daemons from /etc/courier/authdaemonrc itself")),
            "{w:?}"
        );
        let w = unused_rc_values(
            &settings,
            &rc("/tmp/rc", &["authmodulelist", "daemons"]),
            own,
        );
        assert!(w.unwrap().contains("reads authmodulelist and daemons from"));
        assert_eq!(
            unused_rc_values(&settings, &rc("/tmp/rc", &["X"]), own),
            None
        );
        assert_eq!(
            unused_rc_values(
                &settings,
                &rc("/etc/courier/authdaemonrc", &["daemons"]),
                own
            ),
            None
        );
    }

    #[test]
    fn defaults_per_layout() {
        let default = |l, p, n| {
            crate::settings::default_of(l, crate::service::ServiceKind::Authdaemond, p, n)
        };
        assert_eq!(
            default(Layout::Debian, "/usr", "config").as_deref(),
            Some("/etc/courier/authdaemonrc")
        );
        assert_eq!(
            default(Layout::Courier2, "/opt/c", "server").as_deref(),
            Some("/opt/c/libexec/courier-authlib/authdaemond")
        );
        assert_eq!(
            default(Layout::Debian, "/usr", "account").as_deref(),
            Some("")
        );
        assert_eq!(
            default(Layout::Debian, "/usr", "envdir").as_deref(),
            Some("./env")
        );
        assert_eq!(default(Layout::Debian, "/usr", "port"), None);
        assert_eq!(
            module_file(&module_dir(Layout::Debian, "/usr"), "authpam"),
            Path::new("/usr/lib/courier-authlib/libauthpam.so.0")
        );
    }
}
