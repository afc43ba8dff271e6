//! The plan: everything the launch will do, computed in full before anything
//! is changed. Reading is allowed here (getrlimit, the envdir's content);
//! changing is not. `--dry-run` prints this value and the launch applies this
//! very value, so the dry run cannot lie.
//!
//! [`Plan::new`] composes small named steps over a [`Resolved`]; no step
//! validates a setting again (that happened once, in `resolve`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::account::Account;
use crate::config::Assignment;
use crate::envdir::{self, Modes};
use crate::environ::Environ;
use crate::limits::{self, Limit, Resource};
use crate::resolve::{Inherit, Resolved};
use crate::settings::{Name, Origin, Settings};

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
    /// The files courier-run reads (see [`read_files`]): the launch
    /// refuses, as the plan did, to replace a directory holding one.
    pub protected: Vec<PathBuf>,
}

/// Courier's rc reset of TLS_CACHEFILE at each start (rm, touch, chown
/// and chgrp to the account, chmod 600): couriertls opens the cache as the
/// account, and a file left by root or by an older run would refuse it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheFile {
    pub path: PathBuf,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub settings: Settings,
    /// The config files read, in order.
    pub configs: Vec<PathBuf>,
    /// The environment courier-run started with (for the dry run's diff).
    pub inherited: Environ,
    /// What inherit_env keeps of it.
    pub inherit: Inherit,
    /// The complete environment of the program, in envp order.
    pub env: Vec<Var>,
    /// The config's variables (what the envdir holds), in order.
    pub config_vars: Vec<Assignment>,
    /// The names of `config_vars` the service's rc assigns after the files.
    pub rc_names: Vec<&'static str>,
    pub envdir: Option<EnvdirPlan>,
    /// The TLS session cache to reset, as the rc script does.
    pub tls_cache: Option<CacheFile>,
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
    /// softlimit's text, words and limits.
    pub softlimit: crate::resolve::Softlimit,
    /// Every resource's limits at exec.
    pub limits: BTreeMap<Resource, Limit>,
    /// The limits courier-run started with (to tell what changed).
    pub limits_before: BTreeMap<Resource, Limit>,
    pub merge_stderr: bool,
    pub banner: Vec<String>,
    /// The resolved program (argv[0] looked up in the final PATH).
    pub program: PathBuf,
    pub argv: Vec<Vec<u8>>,
    /// Courier's access list to convert into the front end's rules before
    /// exec (only when the source is newer).
    pub access: Option<crate::access::Step>,
    /// `wait_authdaemond`: the launch's first step (exit 111 while
    /// authdaemond does not accept).
    pub wait_authdaemond: Option<crate::authdaemon::Wait>,
    pub warnings: Vec<String>,
    /// Every file the plan was computed from or names ([`read_files`]):
    /// the kept plan's inputs (src/keep.rs).
    pub inputs: Vec<PathBuf>,
    /// The bytes execve's argument space has left over this plan's
    /// environment, arguments and program ([`exec_space`]): a start with a
    /// kept plan whose inherited environment grew past it computes afresh
    /// (and refuses as this would).
    pub exec_room: u64,
}

impl Plan {
    /// The plan of a launch: refused at the first problem resolve found,
    /// with that problem's exit code and message.
    pub fn new(r: Resolved) -> anyhow::Result<Plan> {
        if let Some(p) = r.problems.first() {
            return Err(p.clone().into());
        }
        let service = r.service;
        let plan = Plan::compose(r)?;
        tls_ready(service, &plan)?;
        Ok(plan)
    }

    /// The plan from resolved values, whatever problems they had (their
    /// stand-ins are used): `--check` probes the system with it.
    pub fn compose(r: Resolved) -> anyhow::Result<Plan> {
        Plan::compose_under(r, limits::current()?)
    }

    /// The plan of a launch that would start under `limits_before` rather
    /// than courier-run's own limits (`--status`: the supervisor's, read
    /// from /proc), refused at the first problem as [`Plan::new`] is.
    pub fn new_under(
        r: Resolved,
        limits_before: BTreeMap<Resource, Limit>,
    ) -> anyhow::Result<Plan> {
        if let Some(p) = r.problems.first() {
            return Err(p.clone().into());
        }
        Plan::compose_under(r, limits_before)
    }

    fn compose_under(
        r: Resolved,
        limits_before: BTreeMap<Resource, Limit>,
    ) -> anyhow::Result<Plan> {
        let mut warnings = r.warnings.clone();
        let env = environment(&r, &mut warnings);
        let planned = planned_limits(&r, &limits_before)?;
        let envdir = envdir_step(&r)?;
        let tls_cache = tls_cache(&r, &mut warnings)?;
        let argv = argv(&r);
        let exec_room = exec_space(&r.program, &argv, &env, &planned)?;
        let banner = banner(&r);
        let (uid, gid, groups) = identity(&r);
        let inputs = read_files(&r);
        Ok(Plan {
            inputs,
            exec_room,
            configs: r.configs,
            inherited: r.environ,
            inherit: r.inherit,
            env,
            config_vars: r.config_vars,
            rc_names: r.rc_names,
            envdir,
            tls_cache,
            account: r.account,
            setuidgid: r.setuidgid,
            uid,
            gid,
            groups,
            umask: r.umask,
            ulimit_v: r.ulimit_v,
            softlimit: r.softlimit,
            limits: planned,
            limits_before,
            merge_stderr: r.merge_stderr,
            banner,
            program: r.program,
            argv,
            access: r.front.access.clone(),
            wait_authdaemond: r.wait_authdaemond.clone(),
            warnings,
            settings: r.settings,
        })
    }

    /// The value of `name` in the program's environment.
    pub fn env_get(&self, name: &str) -> Option<&[u8]> {
        let v = self.env.iter().find(|v| v.name == name.as_bytes());
        // A value the environment gave (or could give): read from it.
        if v.is_none_or(|v| v.origin == Origin::Inherited) {
            crate::environ::note_read(name.as_bytes());
        }
        v.map(|v| v.value.as_slice())
    }
}

/// The program's environment: what `inherit_env` keeps, then envuidgid,
/// then the envdir, in the classic chain's order (so a config UID wins over
/// envuidgid's, as with `envuidgid a envdir ./env`).
fn environment(r: &Resolved, warnings: &mut Vec<String>) -> Vec<Var> {
    if let Some(a) = &r.account {
        for n in ["UID", "GID"] {
            if let Some(c) = r.var(n) {
                warnings.push(format!(
                    "{}: the config sets {n}, which overrides envuidgid's value for account {}",
                    c.pos,
                    crate::shown::value(&a.name)
                ));
            }
        }
    }
    chain_environment(&r.environ, &r.inherit, r.account.as_ref(), &r.config_vars)
}

/// The classic chain's environment for any service (a mail service's or
/// authdaemond's): the kept inherited one, envuidgid's GID and UID, then
/// every config variable as envdir reads it back, each replacing or
/// appending as daemontools' pathexec_env does.
pub(crate) fn chain_environment(
    environ: &Environ,
    inherit: &Inherit,
    account: Option<&Account>,
    config_vars: &[Assignment],
) -> Vec<Var> {
    compose_environment(
        environ,
        inherit,
        account.map(|a| (a.uid, a.gid)),
        config_vars.iter().map(|a| {
            (
                a.name.as_bytes(),
                a.value.as_slice(),
                Origin::File(a.pos.clone()),
            )
        }),
    )
}

/// [`chain_environment`] from its parts: also what a start with a kept
/// plan (src/keep.rs) applies to the environment it was started with, so
/// that a variable no config reads passes through with its value of now.
pub(crate) fn compose_environment<'a>(
    environ: &Environ,
    inherit: &Inherit,
    account: Option<(u32, u32)>,
    config_vars: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8], Origin)>,
) -> Vec<Var> {
    let mut env: Vec<Var> = environ
        .iter()
        .filter(|(n, _)| inherit.keeps(n))
        .map(|(n, v)| Var {
            name: n.clone(),
            value: v.clone(),
            origin: Origin::Inherited,
        })
        .collect();
    // Sized once: every name that can be set (no rehash on the way).
    let mut index: crate::hash::FnvMap<Vec<u8>, usize> =
        crate::hash::map_with_capacity(env.len() + config_vars.len() + 2);
    index.extend(env.iter().enumerate().map(|(i, v)| (v.name.clone(), i)));
    let mut set = |name: &[u8], value: Vec<u8>, origin: Origin| match index.get(name) {
        Some(&i) => {
            env[i].value = value;
            env[i].origin = origin;
        }
        None => {
            index.insert(name.to_vec(), env.len());
            env.push(Var {
                name: name.to_vec(),
                value,
                origin,
            });
        }
    };
    if let Some((uid, gid)) = account {
        set(b"GID", gid.to_string().into_bytes(), Origin::Envuidgid);
        set(b"UID", uid.to_string().into_bytes(), Origin::Envuidgid);
    }
    for (name, value, origin) in config_vars {
        // What envdir reads back from what we write (identical for every
        // carriable value; computed, not assumed).
        let value = envdir::decode(&envdir::encode(value)).unwrap_or_default();
        set(name, value, origin);
    }
    env
}

/// The limits at exec: current, then ulimit_v, then softlimit.
fn planned_limits(
    r: &Resolved,
    before: &BTreeMap<Resource, Limit>,
) -> anyhow::Result<BTreeMap<Resource, Limit>> {
    let soft = &r.softlimit.limits;
    limits::plan(before, r.ulimit_v.as_ref().map(|(v, _)| *v), soft).map_err(|e| {
        match &r.ulimit_v {
            Some((_, o)) => e.context(o.at("ulimit_v")),
            None => e,
        }
    })
}

/// The envdir: what it will hold, and whether it already does (a
/// read-only probe: an unchanged envdir is not written).
fn envdir_step(r: &Resolved) -> anyhow::Result<Option<EnvdirPlan>> {
    let Some(path) = &r.envdir else {
        return Ok(None);
    };
    envdir_plan(path, &r.config_vars, r.private, read_files(r), &r.settings).map(Some)
}

/// The envdir step of any service (a mail service's or authdaemond's):
/// `vars` as envdir files, with the modes a private config asks for. What
/// stands at the path must be courier-run's to replace (or an empty
/// directory), and none of the files read (`read`): refused here, so that
/// the dry run, --check and the launch refuse alike, before anything is
/// changed.
pub(crate) fn envdir_plan(
    path: &std::path::Path,
    config_vars: &[crate::config::Assignment],
    private: bool,
    read: Vec<PathBuf>,
    settings: &crate::settings::Settings,
) -> anyhow::Result<EnvdirPlan> {
    let vars: Vec<(String, Vec<u8>)> = config_vars
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect();
    let modes = Modes::for_source(private);
    let pairs: Vec<(&str, &[u8])> = vars
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect();
    let protected: Vec<&std::path::Path> = read.iter().map(PathBuf::as_path).collect();
    let (_, unchanged) = envdir::probe(path, &pairs, modes, &protected).map_err(|e| {
        if crate::error::exit_code(&e) == crate::error::Exit::Usage {
            crate::error::bad_input(
                settings
                    .get(Name::Envdir)
                    .origin
                    .at(&crate::error::describe(&e)),
            )
        } else {
            e
        }
    })?;
    if !unchanged {
        envdir::check_writable_parent(path)?;
    }
    Ok(EnvdirPlan {
        path: path.to_path_buf(),
        vars,
        modes,
        unchanged,
        protected: read,
    })
}

/// Every file courier-run reads, or that the programs it starts read on
/// its behalf, whether it exists or not: the run file, the config files
/// and what they source, the access list (`access=`, else
/// IMAPACCESSFILE) and the rules compiled from it or given, and the TLS
/// files the final environment names. The envdir may be none of them, hold
/// none, nor lie inside one (an access list may be a directory).
fn read_files(r: &Resolved) -> Vec<PathBuf> {
    let mut out = r.sources.clone();
    let access = match &r.settings.get(Name::Access).value {
        Some(v) => Some(v.as_bytes().to_vec()),
        None => r.var("IMAPACCESSFILE").map(|a| a.value.clone()),
    };
    let tls = [
        "TLS_CERTFILE",
        "TLS_PRIVATE_KEYFILE",
        "TLS_TRUSTCERTS",
        "TLS_DHPARAMS",
        "TLS_CACHEFILE",
    ];
    let values = access
        .into_iter()
        .chain(tls.iter().filter_map(|n| r.env_value(n)));
    use std::os::unix::ffi::OsStringExt;
    out.extend(
        values
            .filter(|v| !v.is_empty())
            .map(|v| PathBuf::from(std::ffi::OsString::from_vec(v))),
    );
    if let Some(a) = &r.front.access {
        out.push(a.source.clone());
        out.push(a.output.clone());
    }
    if let Some((rules, _)) = &r.front.rules {
        out.push(PathBuf::from(rules));
    }
    out
}

/// The TLS cache reset, when the service's rc does one. Its directory must
/// let us replace the file: checked here, so the dry run's verdict is the
/// launch's. When it cannot be done, Courier's rc prints an error and goes
/// on; couriertls then fails every handshake (it opens the cache as the
/// account), so a service that uses TLS is refused with the fix, and one
/// that does not (STARTTLS off) only gets a warning.
fn tls_cache(r: &Resolved, warnings: &mut Vec<String>) -> anyhow::Result<Option<CacheFile>> {
    let (Some(c), Some(a)) = (&r.cache_reset, &r.account) else {
        return Ok(None);
    };
    let parent = match c.path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    use nix::unistd::{AccessFlags, access};
    if let Err(e) = access(parent, AccessFlags::W_OK | AccessFlags::X_OK) {
        let what = format!(
            "unable to reset TLS_CACHEFILE {}: its directory {} is not writable ({})",
            crate::shown::path(&c.path),
            crate::shown::path(parent),
            e.desc()
        );
        let starttls = r
            .var(r.service.starttls_var())
            .is_some_and(|v| v.value.eq_ignore_ascii_case(b"YES"));
        if r.service.is_ssl() || starttls {
            return Err(crate::error::bad_input(format!(
                "{what}: couriertls would fail every TLS handshake (create the directory, or set TLS_CACHEFILE= empty in the config for no cache)"
            )));
        }
        warnings.push(format!("{what}; not reset (TLS is not in use)"));
        return Ok(None);
    }
    Ok(Some(CacheFile {
        path: c.path.clone(),
        owner: c.owner.clone(),
        group: c.group.clone(),
        uid: a.uid,
        gid: a.gid,
        mode: c.mode,
    }))
}

/// No useless start: a service that uses TLS (-ssl, or STARTTLS=YES)
/// whose certificate or key is missing, unreadable by the identity that
/// opens it, mismatched or expired is refused (111, the message `--check`
/// gives): couriertls would fail every handshake while the service looks
/// up. Only TLS services read and parse the certificate.
fn tls_ready(service: crate::service::Service, plan: &Plan) -> anyhow::Result<()> {
    let starttls = plan
        .env_get(service.starttls_var())
        .is_some_and(|v| v.eq_ignore_ascii_case(b"YES"));
    if !(service.is_ssl() || starttls) {
        return Ok(());
    }
    // -ssl: couriertls as the front end starts it (exec identity);
    // STARTTLS: as the login program runs it, after it switched to the
    // account (as check/service.rs says).
    let reader = match (&plan.account, service.is_ssl()) {
        (Some(a), false) => crate::tls::Reader {
            uid: a.uid,
            gid: a.gid,
            groups: vec![a.gid],
        },
        _ => crate::tls::Reader {
            uid: plan.uid,
            gid: plan.gid,
            groups: plan.groups.clone(),
        },
    };
    let what = if service.is_ssl() {
        format!("tls ({service})")
    } else {
        format!("tls (STARTTLS, {}=YES)", service.starttls_var())
    };
    let get = |n: &str| plan.env_get(n).map(<[u8]>::to_vec);
    for f in crate::tls::check_env(get, &reader, crate::tls::now()) {
        if f.level == crate::finding::Level::Fail {
            let mut msg = format!("{what}: {}", f.message);
            if !f.fix.is_empty() {
                msg.push_str(&format!(" ({})", f.fix));
            }
            return Err(crate::error::coded(crate::error::Exit::System, msg));
        }
    }
    Ok(())
}

/// argv: the `server` words, the front end's own options (`-c conlimit`,
/// tcpsvd's `-C MAXPERIP`, `-x`/`-i` rules: [`crate::frontend::args`];
/// couriertcpd's: [`crate::couriertcpd::args`]), address, port,
/// login, auth modules, imapd, maildir.
fn argv(r: &Resolved) -> Vec<Vec<u8>> {
    let mut argv: Vec<Vec<u8>> = r.server.iter().map(|w| w.as_bytes().to_vec()).collect();
    let f = &r.front;
    if let Some(t) = &f.tcpd {
        let own = crate::couriertcpd::args(&r.address.text, &r.conlimit.text, &r.port.text, t);
        argv.extend(own.into_iter().map(String::into_bytes));
        return chain_argv(r, argv);
    }
    let args = crate::frontend::Args {
        conlimit: &r.conlimit.text,
        maxperip: f.maxperip,
        rules: f.rules.as_ref().map(|(p, fmt)| (p.as_str(), *fmt)),
        address: &r.address.text,
        port: &r.port.text,
    };
    // resolve reported what the front end cannot do (rules in the wrong
    // format, an IPv6 address it cannot bind); here the stand-ins are used.
    let own = crate::frontend::args(f.spec, true, &args).unwrap_or_else(|_| {
        vec![
            "-c".into(),
            r.conlimit.text.clone(),
            r.address.text.clone(),
            r.port.text.clone(),
        ]
    });
    argv.extend(own.into_iter().map(String::into_bytes));
    chain_argv(r, argv)
}

/// The words after the front end's own: couriertls (-ssl), login, auth
/// modules, imapd, maildir.
fn chain_argv(r: &Resolved, mut argv: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    argv.extend(r.tls_wrapper.iter().map(|w| w.as_bytes().to_vec()));
    let bytes = |p: &PathBuf| p.as_os_str().as_encoded_bytes().to_vec();
    argv.extend(r.login.iter().map(bytes));
    argv.extend(r.auth.iter().map(bytes));
    argv.push(bytes(&r.imapd));
    argv.push(r.maildir.text.clone().into_bytes());
    argv
}

/// The recipe's two startup lines.
fn banner(r: &Resolved) -> Vec<String> {
    if !r.banner {
        return Vec::new();
    }
    vec![
        format!("*** Starting {} service...", r.service.banner_name()),
        // A log line: the path as messages show it (src/shown.rs).
        format!(
            "*** >>configured for maildir: {}",
            crate::shown::path(&r.maildir.text)
        ),
    ]
}

/// uid, gid and groups at exec: setuidgid's (setgroups(1, &gid), setgid,
/// setuid, as daemontools does), else courier-run's own. The one
/// computation: the plan's and `--check`'s.
pub fn identity(r: &Resolved) -> (u32, u32, Vec<u32>) {
    exec_identity(r.setuidgid.as_ref())
}

/// [`identity`] for any service: setuidgid's account, else our own.
pub(crate) fn exec_identity(setuidgid: Option<&Account>) -> (u32, u32, Vec<u32>) {
    match setuidgid {
        Some(a) => (a.uid, a.gid, vec![a.gid]),
        None => (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
            own_groups(),
        ),
    }
}

/// The process's supplementary groups. getgroups(2) asked for the count
/// first: nix's `getgroups` sizes its buffer from sysconf(NGROUPS_MAX),
/// which glibc reads from /proc/sys/kernel/ngroups_max (an open, a read
/// and a close on every launch).
pub(crate) fn own_groups() -> Vec<u32> {
    use nix::libc;
    // SAFETY: size 0 with a null list only returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    let Ok(len) = usize::try_from(n) else {
        return Vec::new();
    };
    let mut groups: Vec<libc::gid_t> = vec![0; len];
    // SAFETY: `groups` holds `len` gid_t; the kernel writes at most that.
    let got = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    match usize::try_from(got) {
        Ok(got) => {
            groups.truncate(got);
            groups
        }
        Err(_) => Vec::new(),
    }
}

/// The kernel's limit on one string of argv or envp (MAX_ARG_STRLEN: 32
/// pages of 4 KiB), NUL included.
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Does the exec fit the kernel's argument space? Checked here so that a
/// dry run refuses what execve would refuse with E2BIG, before the launch
/// has replaced the envdir. Linux (fs/exec.c, bprm_stack_limits) allows
/// the strings a quarter of the stack limit in force at exec (the planned
/// soft RLIMIT_STACK: softlimit -m lowers it), at most 6 MiB (3/4 of
/// _STK_LIM) and at least 32 pages, less one pointer per argv and envp
/// entry; one string at most MAX_ARG_STRLEN. The strings are the
/// program's path (copied first), envp and argv; a `#!` script then has
/// argv[0] replaced by the interpreter's name, its optional argument and
/// the script's path again (binfmt_script, up to 4 levels), counted
/// against the same limit. Exact to the byte (the exec-limit test finds
/// the kernel's boundary and checks that the dry run draws it there).
pub(crate) fn exec_space(
    program: &std::path::Path,
    argv: &[Vec<u8>],
    env: &[Var],
    limits: &BTreeMap<Resource, Limit>,
) -> anyhow::Result<u64> {
    const FLOOR: u64 = 32 * 4096;
    const CAP: u64 = 6 << 20;
    let stack = limits
        .get(&Resource::Stack)
        .and_then(|l| l.soft)
        .unwrap_or(u64::MAX);
    let limit = (stack / 4).clamp(FLOOR, CAP);
    let ptr = std::mem::size_of::<usize>() as u64;
    let mut sizes: Vec<(String, u64)> = env
        .iter()
        .map(|v| {
            let name = String::from_utf8_lossy(&v.name).into_owned();
            (name, (v.name.len() + v.value.len() + 2) as u64)
        })
        .collect();
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::PermissionsExt;
    let path = program.as_os_str().as_encoded_bytes();
    let arg_bytes: u64 = argv.iter().map(|a| a.len() as u64 + 1).sum();
    let env_bytes: u64 = sizes.iter().map(|(_, n)| n).sum();
    let pointers = (argv.len().max(1) + env.len()) as u64 * ptr;
    // The strings at their largest: after the last interpreter is pushed.
    let mut strings = path.len() as u64 + 1 + arg_bytes + env_bytes;
    let mut largest_strings = strings;
    let mut script = path.to_vec();
    let mut argv0 = argv.first().map_or(0, |a| a.len() as u64 + 1);
    for _ in 0..4 {
        let Some((name, arg)) = interpreter(&script) else {
            break;
        };
        // An interpreter that is not there fails the exec (ENOENT, 127)
        // after the envdir was written: refused here instead.
        let runnable = std::fs::metadata(std::ffi::OsStr::from_bytes(&name))
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !runnable {
            return Err(crate::error::coded(
                crate::error::Exit::NotFound,
                format!(
                    "unable to run {}: its interpreter {} (#! line) is not an executable file (install it, or fix the #! line)",
                    crate::error::printable(&String::from_utf8_lossy(&script)),
                    crate::error::printable(&String::from_utf8_lossy(&name)),
                ),
            ));
        }
        // argv[0] dropped; the script's path, the argument, the name pushed
        // (the name is argv[0] for the next level).
        strings = strings - argv0.min(strings)
            + script.len() as u64
            + 1
            + arg.as_ref().map_or(0, |a| a.len() as u64 + 1)
            + name.len() as u64
            + 1;
        largest_strings = largest_strings.max(strings);
        argv0 = name.len() as u64 + 1;
        script = name;
    }
    let total = largest_strings + pointers;
    sizes.sort_by_key(|s| std::cmp::Reverse(s.1));
    let largest = |k: usize| -> String {
        sizes
            .iter()
            .take(k)
            .map(|(n, b)| format!("{} ({b} bytes)", crate::error::printable(n)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some((name, n)) = sizes.first()
        && *n as usize > MAX_ARG_STRLEN
    {
        return Err(crate::error::bad_input(format!(
            "the variable {} takes {n} bytes, more than the {MAX_ARG_STRLEN} the kernel passes in one environment string: execve would fail with E2BIG (shorten it in the config)",
            crate::error::printable(name)
        )));
    }
    if let Some(a) = argv.iter().find(|a| a.len() + 1 > MAX_ARG_STRLEN) {
        return Err(crate::error::bad_input(format!(
            "an argument takes {} bytes, more than the {MAX_ARG_STRLEN} the kernel passes in one string: execve would fail with E2BIG",
            a.len() + 1
        )));
    }
    if total > limit {
        return Err(crate::error::bad_input(format!(
            "the environment, arguments and program path take {total} bytes, more than the {limit} the kernel allows one exec under the planned stack limit: execve would fail with E2BIG (the largest variables: {})",
            largest(3)
        )));
    }
    Ok(limit - total)
}

/// The interpreter line of the script at `path`, as Linux's binfmt_script
/// reads it from the first 256 bytes: `#!`, blanks, the name up to a blank,
/// then blanks and the rest of the line, trailing blanks cut, as one
/// optional argument. None for anything else (an ELF binary, unreadable).
fn interpreter(path: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let path = std::path::Path::new(std::ffi::OsStr::from_bytes(path));
    use std::os::unix::fs::OpenOptionsExt;
    let mut buf = [0u8; 256];
    // Not blocking on a FIFO; only a regular file can be a script.
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let buf = &buf[..n];
    let rest = buf.strip_prefix(b"#!")?;
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    // The kernel keeps the last byte of its buffer for a NUL.
    let line = match rest.iter().position(|&c| c == b'\n') {
        Some(i) => &rest[..i],
        None => &rest[..rest.len().min(256 - 3)],
    };
    let line = line.split(|&c| c == 0).next().unwrap_or(&[]);
    let end = line.iter().rposition(|c| !blank(c))? + 1;
    let line = &line[..end];
    let start = line.iter().position(|c| !blank(c))?;
    let line = &line[start..];
    let (name, arg) = match line.iter().position(blank) {
        Some(i) => {
            let a = &line[i..];
            let a = &a[a.iter().position(|c| !blank(c)).unwrap_or(a.len())..];
            (&line[..i], (!a.is_empty()).then(|| a.to_vec()))
        }
        None => (line, None),
    };
    Some((name.to_vec(), arg))
}

#[cfg(test)]
mod tests {
    #[test]
    fn own_groups_are_getgroups() {
        let want: Vec<u32> = nix::unistd::getgroups()
            .unwrap()
            .iter()
            .map(|g| g.as_raw())
            .collect();
        assert_eq!(super::own_groups(), want);
    }

    /// The interpreter line as binfmt_script reads it.
    #[test]
    fn interpreter_lines() {
        let dir = std::env::temp_dir().join(format!("courier-run-interp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // (file content, the interpreter's name and argument)
        type Line<'a> = Option<(&'a str, Option<&'a str>)>;
        let cases: &[(&[u8], Line)] = &[
            (b"#!/bin/sh\nexit 0\n", Some(("/bin/sh", None))),
            (
                b"#! \t/usr/bin/env  python3 -u \t\nx",
                Some(("/usr/bin/env", Some("python3 -u"))),
            ),
            (b"#!/bin/sh", Some(("/bin/sh", None))),
            (b"#!  \n", None),
            (b"\x7fELF\x02\x01", None),
            (b"", None),
        ];
        for (i, (content, want)) in cases.iter().enumerate() {
            let p = dir.join(format!("s{i}"));
            std::fs::write(&p, content).unwrap();
            let got = super::interpreter(p.as_os_str().as_encoded_bytes());
            let want = want.map(|(n, a)| (n.as_bytes().to_vec(), a.map(|a| a.as_bytes().to_vec())));
            assert_eq!(got, want, "{}", String::from_utf8_lossy(content));
        }
        assert_eq!(super::interpreter(dir.as_os_str().as_encoded_bytes()), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
