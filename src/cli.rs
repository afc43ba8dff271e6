//! The command line: parse arguments, run one command, print an error once,
//! map it to an exit code. Nothing else lives here.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::error::Exit;
use crate::plan::Plan;
use crate::report::{self, Format};
use crate::resolve::Input;
use crate::{check, environ, launch};

const LONG_ABOUT: &str = "\
courier-run takes the place of the shell `run` script of a supervised
Courier service (imapd with STARTTLS, imapd-ssl, pop3d, pop3d-ssl) under
daemontools, runit, s6 or systemd. It reads Courier's config exactly as
/bin/sh would (or refuses it with FILE:LINE:COL), adds what Courier's own rc
script adds (IMAP_STARTTLS=..., IMAP_TLS=1, the TLS cache reset), writes the
config as an envdir atomically, applies envuidgid, envdir and softlimit
semantics as daemontools does, and execve()s the front end (couriertcpd as
Debian's rc runs it, or tcpserver, or tcpsvd) with couriertls (for the -ssl
services), the login program and the server, in the same process: the
supervisor's pid is the front end's pid. After editing Courier's access
list, `courier-run ./run --rebuild-access` applies it without a restart.
With service=authdaemond it runs courier-authlib's authdaemond the same way
(authdaemonrc exported, the daemon in the foreground); a mail service with
wait_authdaemond=yes exits 111 (the supervisor retries) while authdaemond
does not accept.

A run file is a courier-run script of lower-case settings, for example:

    #!/usr/bin/courier-run
    service=imapd-ssl
    layout=debian
    account=courier

`courier-run init DIR` writes one; `courier-run migrate DEST --supervisor S`
writes one per service Debian's Courier runs (and authdaemond) and prints the
commands that switch from Debian's units to them, and back. --dry-run prints
what would be exec'd
(with which environment, limits and identity); --check says why a service
would not start or would start useless (authdaemond down, a bad certificate).

A running service: --status compares it with what a restart would start
(exit 0 in effect, 1 changed, 2 not running, 111 cannot tell); --probe
checks that it greets and serves TLS_CERTFILE's certificate (0 OK,
1 WARNING, 2 CRITICAL, 3 UNKNOWN); --restart checks first, then restarts
through the supervisor and waits for the probe (0 served, 100 refused,
111 not serving).

Exit codes: 0 ok; 1 --check found a problem; 100 bad usage or bad input
(syntax error, unknown setting, unknown account); 111 a system call failed;
126 the program could not be executed; 127 the program was not found.";

#[derive(Parser, Debug, Default)]
#[command(
    name = "courier-run",
    // Not argv[0]'s name: the main program is also courier-run-main (and
    // /usr/lib/courier-run/courier-run), and every message says courier-run.
    bin_name = "courier-run",
    version,
    about = "Start a Courier IMAP/POP3 service under daemontools, runit, s6 or systemd: config -> envdir -> envuidgid/softlimit -> couriertcpd, tcpserver or tcpsvd, in one exec chain",
    long_about = LONG_ABOUT,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The run file (a courier-run script). Without one: the defaults of
    /// layout=courier2.
    runfile: Option<PathBuf>,

    /// Operands after the run file, as a supervisor passes them (s6-supervise
    /// runs `./run SERVICEDIR`). Accepted and shown by --dry-run --explain;
    /// nothing else reads them.
    #[arg(value_name = "OPERAND")]
    operands: Vec<OsString>,

    /// Override a setting of the run file (repeatable; wins over the file).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,

    /// Print the plan (argv, environment, identity, limits) and change
    /// nothing. Exit code: the one the launch would have.
    #[arg(long)]
    dry_run: bool,

    /// Output format of --dry-run, --check and --status.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// With --dry-run: show where every variable and setting came from.
    #[arg(long, requires = "dry_run")]
    explain: bool,

    /// Run every preflight check; exit 0 when none fails, 1 otherwise.
    #[arg(long, conflicts_with = "dry_run")]
    check: bool,

    /// With --check: also check that the address and port can be bound now.
    #[arg(long, requires = "check")]
    bind: bool,

    /// Compare the running service (found through its supervisor) with
    /// what a restart would start now. Exit 0 in effect, 1 a restart would
    /// change something, 2 not running, 111 cannot tell.
    #[arg(long, conflicts_with_all = ["dry_run", "check", "probe", "restart"])]
    status: bool,

    /// Connect to the service's port: greeting, STARTTLS or TLS, the
    /// certificate served against TLS_CERTFILE. One status line; exit 0 OK,
    /// 1 WARNING (expires within 14 days), 2 CRITICAL, 3 UNKNOWN.
    #[arg(long, conflicts_with_all = ["dry_run", "check", "restart"])]
    probe: bool,

    /// Check the new configuration (exit 100 untouched on a problem), ask
    /// the supervisor for a restart, and wait for --probe to pass (exit 0
    /// served, 111 not).
    #[arg(long, conflicts_with_all = ["dry_run", "check"])]
    restart: bool,

    /// With --probe (default 10) or --restart (default 30): the bound, in seconds.
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,
    /// Rebuild the compiled access list from Courier's access list now,
    /// atomically (tcpserver/tcpsvd cdb: read on every connection, in effect
    /// at once); for couriertcpd, makedat's LIST.dat, then SIGHUP through
    /// the service's supervisor (svc -h, sv hup, s6-svc -h: couriertcpd
    /// reloads it, same process). The service directory is the run
    /// file's (`cd /etc/service/imapd && courier-run ./run --rebuild-access`).
    #[arg(long, conflicts_with_all = ["dry_run", "check"])]
    rebuild_access: bool,

    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Convert config files (standard input when none) into ENVDIR and exit:
    /// the classic `cat imapd | conf2env ./env`, done right.
    Conf2env {
        /// The envdir to write (replaced atomically; unchanged content is not rewritten).
        envdir: PathBuf,
        /// Config files, read in order into one scope.
        configs: Vec<PathBuf>,
        /// Make NAME visible to $NAME references without writing it (as
        /// Courier's rc script predefines prefix, sbindir, ...). Repeatable.
        #[arg(long = "define", value_name = "NAME=VALUE")]
        define: Vec<String>,
        /// Assign NAME=VALUE after the config files (written to ENVDIR),
        /// as Courier's rc script assigns IMAP_STARTTLS after sourcing
        /// them. Repeatable.
        #[arg(long = "assign", value_name = "NAME=VALUE")]
        assign: Vec<String>,
    },
    /// Create a service directory: run, log/run, the log directory and its
    /// owner (systemd: a unit file instead), the rules source and compiled
    /// rules. Refuses to overwrite; prints each thing it creates and the
    /// commands that start the service.
    Init(crate::init::InitOptions),
    /// Move from Debian's Courier units to supervised services: one service
    /// directory per service the config enables (its *START variables)
    /// plus authdaemond under DEST, made by init and checked with --check;
    /// then the commands that switch over and back, printed in order.
    /// Stops, disables and links nothing itself.
    Migrate(crate::migrate::MigrateOptions),
    /// Send log lines read on standard input to syslog as courierlogger
    /// does (facility mail, tag TAG, the level from an ERR:/WARN:/INFO:
    /// prefix, which is removed): the log/run of `init --log syslog`.
    Syslog(crate::syslog::SyslogOptions),
    /// Print the shell completion script for SHELL on standard output.
    Completions {
        #[arg(value_enum)]
        shell: crate::docs::Shell,
    },
}

/// The command line's definition with the settings table for `--help`
/// (and the man page). Built only when asked for: formatting the table
/// costs every launch otherwise.
pub fn command() -> clap::Command {
    Cli::command().after_long_help(crate::settings::help())
}

/// Run the command line; returns the exit code (when it returns at all:
/// a launch ends in execve).
pub fn main() -> i32 {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|a| a == "man") {
        return man(&args[1..]);
    }
    let parsed = match shebang_launch(&args) {
        Some(cli) => {
            // A supervised start with a kept plan that still holds: no
            // computing (src/keep.rs).
            if let Some(runfile) = &cli.runfile
                && let Some(r) = crate::keep::launch(runfile)
            {
                return fatal(r.map(|n| match n {}));
            }
            Ok(cli)
        }
        None => Cli::command()
            .try_get_matches()
            .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m)),
    };
    let cli = match parsed.and_then(|c| {
        // clap's `requires` lets `--check --explain` through (a conflict
        // with --dry-run satisfies it): said here.
        if c.explain && !c.dry_run {
            return Err(Cli::command().error(
                clap::error::ErrorKind::MissingRequiredArgument,
                "--explain is for --dry-run (it shows where each value of the plan came from)",
            ));
        }
        if c.status && c.format == Format::Sh {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--format sh is for --dry-run (--status prints text or json)",
            ));
        }
        if c.check && c.format == Format::Sh {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--format sh is for --dry-run (--check prints text or json)",
            ));
        }
        Ok(c)
    }) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let e = match e.kind() {
                // Asked for help: now build it in full.
                ErrorKind::DisplayHelp => command().try_get_matches().err().unwrap_or(e),
                _ => e,
            };
            // A launch's command-line error goes where every other launch
            // error goes: stdout, which the supervisor gives to log/run.
            let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
            if !help && is_launch(&args) {
                let _ = nix::unistd::dup2(1, 2);
            }
            let printed = if help {
                e.print().is_ok()
            } else {
                print_clap_error(&e, &args)
            };
            if !printed {
                // Help, version or the usage error could not be written.
                return Exit::System as i32;
            }
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => Exit::Usage as i32,
            };
        }
    };
    fatal(run(cli))
}

/// The exit code of a command, its error printed as the fatal line.
fn fatal(r: anyhow::Result<i32>) -> i32 {
    crate::error::fatal(r)
}

/// clap's error, with the words of the command line it quotes escaped
/// (src/shown.rs): `courier-run $'\e[2K'` must not reach a terminal or a
/// log as an escape sequence, nor a newline in a word start a line of its
/// own. clap quotes the words as given (and its rendering drops what looks
/// like a colour sequence), so the error is made again from the escaped
/// words. Without such a word, clap prints it itself (in colour on a
/// terminal). Whether it could be written.
fn print_clap_error(e: &clap::Error, args: &[OsString]) -> bool {
    use std::io::Write;
    let hostile = |a: &OsString| a.to_string_lossy().chars().any(char::is_control);
    if !args.iter().any(hostile) {
        return e.print().is_ok();
    }
    let escaped = args
        .iter()
        .map(|a| OsString::from(crate::shown::line(&a.to_string_lossy())));
    let again = Cli::command()
        .try_get_matches_from(std::iter::once(OsString::from("courier-run")).chain(escaped))
        .err()
        .filter(|again| again.kind() == e.kind());
    let text = again.as_ref().unwrap_or(e).render().to_string();
    // Whatever is left beside clap's own line breaks.
    let text: Vec<String> = text.split('\n').map(crate::shown::line).collect();
    std::io::stderr()
        .write_all(text.join("\n").as_bytes())
        .is_ok()
}

/// The command line of a launch by a supervisor, `courier-run ./run
/// [OPERAND...]` (the kernel's shebang line gives the run file's path as the
/// supervisor named it, so it holds a `/`), read without clap: it is what
/// clap makes of it (a test compares the two), and building clap's
/// definition of every option and subcommand was ~80,000 instructions and
/// the page faults of clap's code on each launch. Anything else (an option,
/// a subcommand, a bare file name) goes to clap.
fn shebang_launch(args: &[OsString]) -> Option<Cli> {
    let runfile = crate::keep::shebang_runfile(args)?;
    Some(Cli {
        runfile: Some(runfile.to_path_buf()),
        operands: args[1..].to_vec(),
        // Every option off, as clap leaves an option not given (a test
        // compares the two).
        ..Cli::default()
    })
}

/// `courier-run man [PAGE | --list]`: a man page as roff on standard
/// output, or the pages' names, one a line, for the package build
/// (`courier-run man courier-run-init`). Not a clap
/// subcommand, so that help, the man page itself and the completions do
/// not offer it (clap_complete lists hidden subcommands).
fn man(args: &[OsString]) -> i32 {
    let cmd = command();
    if args.len() == 1 && args[0] == "--list" {
        let list = crate::docs::pages(&cmd).join("\n") + "\n";
        return match report::output(list.as_bytes()) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("courier-run: fatal: unable to write: {e:#}");
                Exit::System as i32
            }
        };
    }
    let page = match args {
        [] => Some(cmd.get_name().to_string()),
        [p] => p.to_str().map(str::to_string),
        _ => None,
    };
    let Some(Some(roff)) = page.map(|p| crate::docs::man(cmd.clone(), &p)) else {
        eprintln!(
            "courier-run: usage: courier-run man [PAGE | --list], PAGE one of: {}",
            crate::docs::pages(&cmd).join(" ")
        );
        return Exit::Usage as i32;
    };
    match roff
        .map_err(anyhow::Error::from)
        .and_then(|r| report::output(&r))
    {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("courier-run: fatal: unable to write the man page: {e:#}");
            Exit::System as i32
        }
    }
}

/// Whether a command line (without argv[0]) that clap refused was meant as
/// a launch: no subcommand and no option but `--set` (the options, help
/// and version included, are read from clap's own definition).
pub fn is_launch(args: &[OsString]) -> bool {
    let cmd = Cli::command();
    let first_is_sub = args
        .first()
        .and_then(|a| a.to_str())
        .is_some_and(|a| cmd.get_subcommands().any(|c| c.get_name() == a));
    let mut names: Vec<String> = vec![
        "--help".into(),
        "-h".into(),
        "--version".into(),
        "-V".into(),
    ];
    for arg in cmd.get_arguments().filter(|a| a.get_id() != "set") {
        names.extend(arg.get_long().map(|l| format!("--{l}")));
        names.extend(arg.get_short().map(|c| format!("-{c}")));
    }
    !first_is_sub
        && !args.iter().any(|a| {
            a.to_str().is_some_and(|a| {
                let name = a.split_once('=').map_or(a, |(n, _)| n);
                names.iter().any(|n| n == name)
            })
        })
}

/// `--status`, `--probe` and `--restart` (their own exit codes), else
/// every other command.
fn run(cli: Cli) -> anyhow::Result<i32> {
    let secs = |d: std::time::Duration| cli.timeout.map_or(d, std::time::Duration::from_secs);
    let runfile = || -> anyhow::Result<&std::path::Path> {
        cli.runfile.as_deref().ok_or_else(|| {
            crate::error::coded(
                Exit::Usage,
                "--status and --restart need the run file (courier-run ./run --status)",
            )
        })
    };
    if cli.status {
        return crate::status::run(runfile()?, &cli.set, cli.format);
    }
    if cli.probe {
        let t = secs(crate::probe::DEFAULT_TIMEOUT);
        return crate::probe::run(cli.runfile.as_deref(), &cli.set, t);
    }
    if cli.restart {
        let t = secs(crate::restart::DEFAULT_TIMEOUT);
        return crate::restart::run(runfile()?, &cli.set, t);
    }
    run_command(cli).map(|e| e as i32)
}

fn run_command(cli: Cli) -> anyhow::Result<Exit> {
    match &cli.cmd {
        Some(Cmd::Conf2env {
            envdir,
            configs,
            define,
            assign,
        }) => return crate::conf2env::conf2env(envdir, configs, define, assign),
        Some(Cmd::Init(o)) => return crate::init::init(o),
        Some(Cmd::Migrate(o)) => return crate::migrate::migrate(o),
        Some(Cmd::Syslog(o)) => return crate::syslog::run(o),
        Some(Cmd::Completions { shell }) => {
            report::output(&crate::docs::completions(command(), *shell))?;
            return Ok(Exit::Ok);
        }
        None => {}
    }
    // Before anything is read: a file changed after this instant is not
    // trusted by the kept plan (src/keep.rs).
    let started = crate::keep::start_clock();
    // Every inherited name the computation looks up, for the kept plan.
    environ::record_reads();
    let environ = environ::inherited();
    let input = Input {
        runfile: cli.runfile.as_deref(),
        sets: &cli.set,
        environ: &environ,
    };
    if cli.check {
        let report = check::run(&input, cli.bind);
        report::print_check(&report, cli.format)?;
        return Ok(if report.failed() {
            Exit::CheckFailed
        } else {
            Exit::Ok
        });
    }
    let loaded = crate::resolve::load(&input);
    if loaded.0.authdaemond {
        if cli.rebuild_access {
            return Err(crate::error::bad_input(
                "--rebuild-access: service=authdaemond has no access list (the mail services' run files do)",
            ));
        }
        return crate::authdaemond::run(&input, loaded, cli.dry_run, cli.format, cli.explain);
    }
    let resolved = crate::resolve::resolve_loaded(&input, loaded);
    if cli.rebuild_access {
        let plan = Plan::new(resolved)?;
        // The service directory is the run file's (supervise runs ./run).
        let dir = cli
            .runfile
            .as_deref()
            .and_then(|p| p.parent())
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        return crate::rebuild::run(&plan, dir);
    }
    if cli.dry_run {
        let plan = Plan::new(resolved)?;
        report::print(&plan, cli.format, cli.explain)?;
        if cli.explain && cli.format == Format::Text && !cli.operands.is_empty() {
            // Operands are the supervisor's (s6: the service directory);
            // they change nothing in the plan.
            let ops: Vec<String> = cli.operands.iter().map(crate::shown::path).collect();
            report::output(format!("operands (ignored): {}\n", ops.join(" ")).as_bytes())?;
        }
        return Ok(Exit::Ok);
    }
    // The recipe's first line, `exec 2>&1`, done before anything else so
    // that every error, a config syntax error included, reaches the log
    // (supervise gives run's stdout to log/run). Only stderr=keep in a run
    // file read without problems turns it off.
    let keep = !resolved.merge_stderr
        && !resolved
            .problems
            .iter()
            .any(|p| p.subject == crate::error::Subject::RunFile);
    if !keep {
        nix::unistd::dup2(1, 2).context("unable to merge stderr into stdout")?;
    }
    let plan = Plan::new(resolved)?;
    // Kept for the next start only when nothing but the run file decided
    // it (a --set launch is a one-off; src/keep.rs).
    let keep = cli.runfile.as_deref().filter(|_| cli.set.is_empty());
    match launch::launch(&plan, keep.map(|r| (r, started)))? {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clap_parse(args: &[&str]) -> Option<Cli> {
        let argv = std::iter::once("courier-run").chain(args.iter().copied());
        Cli::command()
            .try_get_matches_from(argv)
            .and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m))
            .ok()
    }

    #[test]
    fn shebang_launch_is_what_clap_makes_of_it() {
        let os = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        for args in [
            &["./run"][..],
            &["/service/imapd/run", "/service/imapd"],
            &["./run", "a", "", "b c"],
            &["../x/run", "conf2env"],
        ] {
            let fast = shebang_launch(&os(args)).expect("a launch");
            let slow = clap_parse(args).expect("clap accepts it");
            assert_eq!(format!("{fast:?}"), format!("{slow:?}"), "{args:?}");
        }
        // Left to clap: options anywhere, subcommands, bare names, nothing.
        for args in [
            &["./run", "--dry-run"][..],
            &["--check", "./run"],
            &["./run", "-x"],
            &["run"],
            &["conf2env", "./env", "./imapd"],
            &["help"],
            &[],
        ] {
            assert!(shebang_launch(&os(args)).is_none(), "{args:?}");
        }
    }

    /// A refused command line is a launch's (its error goes to the log)
    /// unless it names a subcommand or any option of clap's but --set.
    #[test]
    fn is_launch_reads_clap_definition() {
        let os = |a: &[&str]| a.iter().map(OsString::from).collect::<Vec<_>>();
        for args in [
            &["./run", "--bogus"][..],
            &["./run", "--set", "x"],
            &["./run"],
        ] {
            assert!(is_launch(&os(args)), "{args:?}");
        }
        for args in [
            &["./run", "--check", "--bogus"][..],
            &["--format=json", "./run"],
            &["./run", "--explain"],
            &["init", "--bogus"],
            &["./run", "-h"],
        ] {
            assert!(!is_launch(&os(args)), "{args:?}");
        }
    }
}
