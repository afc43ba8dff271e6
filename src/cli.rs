//! The command line: parse arguments, run one command, print an error once,
//! map it to an exit code. Nothing else lives here.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand};

use crate::error::{Exit, exit_code};
use crate::plan::Plan;
use crate::report::{self, Format};
use crate::resolve::{Input, resolve};
use crate::{check, environ, launch};

const LONG_ABOUT: &str = "\
courier-run takes the place of the shell `run` script of a supervised
Courier service (imapd with STARTTLS, imapd-ssl, pop3d, pop3d-ssl) under
daemontools, runit or s6. It reads Courier's config exactly as /bin/sh would
(or refuses it with FILE:LINE:COL), adds what Courier's own rc script adds
(IMAP_STARTTLS=..., IMAP_TLS=1, the TLS cache reset), writes the config as an
envdir atomically, applies envuidgid, envdir and softlimit semantics as
daemontools does, and execve()s tcpserver or tcpsvd with couriertls (for the
-ssl services), the login program and the server, in the same process: the
supervisor's pid is the front end's pid.

A run file is a courier-run script of lower-case settings, for example:

    #!/usr/local/bin/courier-run
    service=imapd-ssl
    layout=debian
    account=courier

`courier-run init DIR` writes one. --dry-run prints what would be exec'd
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

#[derive(Parser, Debug)]
#[command(
    name = "courier-run",
    version,
    about = "Start a Courier IMAP/POP3 service under daemontools, runit or s6: config -> envdir -> envuidgid/softlimit -> tcpserver or tcpsvd, in one exec chain",
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
    /// owner, the rules source and compiled rules. Refuses to overwrite;
    /// prints each thing it creates and the command that starts the service.
    Init(crate::init::Options),
    /// Print the shell completion script for SHELL on standard output.
    Completions {
        #[arg(value_enum)]
        shell: crate::docs::Shell,
    },
    /// Print the man page (roff) on standard output.
    #[command(hide = true)]
    Man,
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
    let parsed = match shebang_launch(&args) {
        Some(cli) => Ok(cli),
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
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => Exit::Usage as i32,
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("courier-run: fatal: {}", crate::error::describe(&e));
            exit_code(&e) as i32
        }
    }
}

/// The command line of a launch by a supervisor, `courier-run ./run
/// [OPERAND...]` (the kernel's shebang line gives the run file's path as the
/// supervisor named it, so it holds a `/`), read without clap: it is what
/// clap makes of it (a test compares the two), and building clap's
/// definition of every option and subcommand was ~80,000 instructions and
/// the page faults of clap's code on each launch. Anything else (an option,
/// a subcommand, a bare file name) goes to clap.
fn shebang_launch(args: &[OsString]) -> Option<Cli> {
    use std::os::unix::ffi::OsStrExt;
    let (runfile, operands) = args.split_first()?;
    let option = |a: &OsString| a.as_bytes().first() == Some(&b'-');
    if !runfile.as_bytes().contains(&b'/') || args.iter().any(option) {
        return None;
    }
    Some(Cli {
        runfile: Some(PathBuf::from(runfile)),
        operands: operands.to_vec(),
        set: Vec::new(),
        dry_run: false,
        format: Format::Text,
        explain: false,
        check: false,
        bind: false,
        status: false,
        probe: false,
        restart: false,
        timeout: None,
        cmd: None,
    })
}

/// Whether a command line (without argv[0]) that clap refused was meant as
/// a launch: not a subcommand, not --check, --dry-run or help.
pub fn is_launch(args: &[OsString]) -> bool {
    let subcommands: Vec<String> = Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .collect();
    let first_is_sub = args
        .first()
        .and_then(|a| a.to_str())
        .is_some_and(|a| subcommands.iter().any(|s| s == a));
    !first_is_sub
        && !args.iter().any(|a| {
            matches!(
                a.to_str(),
                Some(
                    "--check"
                        | "--dry-run"
                        | "--explain"
                        | "--format"
                        | "--bind"
                        | "--status"
                        | "--probe"
                        | "--restart"
                        | "--help"
                        | "-h"
                        | "--version"
                        | "-V"
                )
            )
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
        Some(Cmd::Completions { shell }) => {
            report::output(&crate::docs::completions(command(), *shell))?;
            return Ok(Exit::Ok);
        }
        Some(Cmd::Man) => {
            report::output(&crate::docs::man(command())?)?;
            return Ok(Exit::Ok);
        }
        None => {}
    }
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
    let resolved = resolve(&input);
    if cli.dry_run {
        let plan = Plan::new(resolved)?;
        report::print(&plan, cli.format, cli.explain)?;
        if cli.explain && cli.format == Format::Text && !cli.operands.is_empty() {
            // Operands are the supervisor's (s6: the service directory);
            // they change nothing in the plan.
            let ops: Vec<String> = cli
                .operands
                .iter()
                .map(|o| o.to_string_lossy().into_owned())
                .collect();
            report::output(format!("operands (ignored): {}\n", ops.join(" ")).as_bytes())?;
        }
        return Ok(Exit::Ok);
    }
    // The recipe's first line, `exec 2>&1`, done before anything else so
    // that every error, a config syntax error included, reaches the log
    // (supervise gives run's stdout to log/run). Only stderr=keep in a run
    // file read without problems turns it off.
    let keep = !resolved.merge_stderr && !resolved.problems.iter().any(|p| p.subject == "run file");
    if !keep {
        nix::unistd::dup2(1, 2).context("unable to merge stderr into stdout")?;
    }
    let plan = Plan::new(resolved)?;
    match launch::launch(&plan)? {}
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
}
