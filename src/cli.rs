//! The command line: parse arguments, run one command, print an error once,
//! map it to an exit code. Nothing else lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Exit, exit_code};

const LONG_ABOUT: &str = "\
courier-run takes the place of the shell `run` script of a supervised
Courier-IMAP service. It reads Courier's config (etc/imapd) exactly as /bin/sh
would (or refuses it with FILE:LINE:COL), writes it as an envdir atomically,
applies envuidgid, envdir and softlimit semantics as daemontools does, and
execve()s tcpserver with imaplogin, the auth modules and imapd, in the same
process: supervise's pid is tcpserver's pid.

A run file is a courier-run script of lower-case settings, for example:

    #!/usr/local/bin/courier-run
    layout=courier2
    prefix=/usr/local/courier-imap
    account=courierd
    softlimit=\"-m 50000000\"

Exit codes: 0 ok; 1 --check found a problem; 100 bad usage or bad input
(syntax error, unknown setting, unknown account); 111 a system call failed;
126 the program could not be executed; 127 the program was not found.";

#[derive(Parser, Debug)]
#[command(
    name = "courier-run",
    version,
    about = "Start Courier-IMAP under supervise: config -> envdir -> envuidgid/softlimit -> tcpserver, in one exec chain",
    long_about = LONG_ABOUT,
    after_long_help = crate::settings::help(),
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The run file (a courier-run script). Without one: the defaults of
    /// layout=courier2.
    runfile: Option<PathBuf>,

    /// Override a setting of the run file (repeatable; wins over the file).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,

    /// Print the plan (argv, environment, identity, limits) and change
    /// nothing. Exit code: the one the launch would have.
    #[arg(long)]
    dry_run: bool,

    /// Output format of --dry-run and --check.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,

    /// With --dry-run: show where every variable and setting came from.
    #[arg(long)]
    explain: bool,

    /// Run every preflight check; exit 0 when none fails, 1 otherwise.
    #[arg(long, conflicts_with = "dry_run")]
    check: bool,

    /// With --check: also check that the address and port can be bound now.
    #[arg(long, requires = "check")]
    bind: bool,

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
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sh,
}

/// Run the command line; returns the exit code (when it returns at all:
/// a launch ends in execve).
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let _ = e.print();
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => Exit::Usage as i32,
            };
        }
    };
    match run(cli) {
        Ok(code) => code as i32,
        Err(e) => {
            eprintln!("courier-run: fatal: {}", crate::error::describe(&e));
            exit_code(&e) as i32
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.cmd {
        Some(Cmd::Conf2env {
            envdir,
            configs,
            define,
        }) => crate::conf2env::conf2env(&envdir, &configs, &define),
        None => crate::launch::main(crate::launch::Args {
            runfile: cli.runfile,
            set: cli.set,
            dry_run: cli.dry_run,
            format: cli.format,
            explain: cli.explain,
            check: cli.check,
            bind: cli.bind,
        }),
    }
}
