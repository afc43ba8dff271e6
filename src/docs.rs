//! The man pages and the shell completions, generated from the clap
//! definition itself so they cannot drift from `--help`: clap_mangen writes
//! the roff of each command's options, clap_complete the bash, zsh and fish
//! scripts. `cli` passes its `Command`; nothing here knows the options. The
//! sections clap has no field for (EXIT STATUS, FILES, EXAMPLES, SEE ALSO)
//! are the texts below, written with roff's own escaping.

use clap::ValueEnum;
use roff::{Roff, bold, roman};

/// The shells `courier-run completions SHELL` writes a script for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// The man pages' date: the release this text was last revised for.
pub const DATE: &str = "2026-12-04";

/// The pages `courier-run man [PAGE]` prints: the main page (None) and one
/// per visible subcommand, named `courier-run-SUBCOMMAND` as the main page's
/// SUBCOMMANDS section names them.
pub fn pages(cmd: &clap::Command) -> Vec<String> {
    std::iter::once(cmd.get_name().to_string())
        .chain(
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set() && s.get_name() != "help")
                .map(|s| format!("{}-{}", cmd.get_name(), s.get_name())),
        )
        .collect()
}

/// Exit codes, as every command of courier-run uses them.
const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "success (a launch does not return: it execs the front end)",
    ),
    (
        "1",
        "--check found a problem; --status: a restart would change something; --probe: WARNING",
    ),
    (
        "2",
        "--status: the service is not running; --probe: CRITICAL",
    ),
    ("3", "--probe: UNKNOWN (the config cannot be resolved)"),
    (
        "100",
        "bad usage or bad input: a syntax error, an unknown setting, an unknown account; --restart: the new config has a problem (nothing touched)",
    ),
    (
        "111",
        "a system call failed (a file that cannot be read, a directory that cannot be written)",
    ),
    ("126", "the program could not be executed"),
    ("127", "the program was not found"),
];

const FILES: &[(&str, &str)] = &[
    (
        "./run",
        "the service's run file: a courier-run script of lower-case settings",
    ),
    (
        "./env",
        "the envdir courier-run writes from the config (envdir=)",
    ),
    (
        "./.run.plan",
        "the plan the last start computed, reused while its inputs are unchanged (0600; safe to delete)",
    ),
    (
        "./log/run",
        "the service's logger (multilog, svlogd or s6-log)",
    ),
    (
        "/usr/lib/courier-run/courier-run",
        "the main program: courier-run does a start with a kept plan itself and runs this for everything else (courier-run-main beside courier-run when built with cargo)",
    ),
    (
        "/etc/courier/imapd, /etc/courier/imapd-ssl",
        "Courier's config on Debian (layout=debian)",
    ),
    (
        "/etc/courier/pop3d, /etc/courier/pop3d-ssl",
        "the POP3 services' config on Debian",
    ),
    (
        "/etc/courier/imapaccess",
        "Courier's access list (IMAPACCESSFILE), converted for the front end",
    ),
];

const EXAMPLES: &[(&str, &str)] = &[
    (
        "courier-run init /etc/sv/courier-imapd",
        "create a service directory for imapd on Debian, for daemontools",
    ),
    (
        "courier-run init --service imapd-ssl --supervisor runit /etc/sv/courier-imapd-ssl",
        "the same for IMAPS under runit",
    ),
    (
        "courier-run /etc/sv/courier-imapd/run --check",
        "say why the service would not start, one line per problem",
    ),
    (
        "courier-run /etc/sv/courier-imapd/run --dry-run --explain",
        "print the exact command, environment, identity and limits of the next start, and where each value came from",
    ),
    (
        "courier-run ./run --dry-run --set port=10143",
        "the plan with one setting changed, without editing the run file",
    ),
    (
        "courier-run conf2env ./env /etc/courier/imapd",
        "the classic recipe's `cat imapd | conf2env ./env`, done right",
    ),
];

/// What courier-run stands in for or works with, on a Debian system.
const SEE_ALSO: &[(&str, &str)] = &[
    ("envdir", "8"),
    ("envuidgid", "8"),
    ("softlimit", "8"),
    ("supervise", "8"),
    ("tcpserver", "1"),
    ("tcpsvd", "8"),
    ("runsv", "8"),
    ("s6-supervise", "8"),
    ("couriertcpd", "1"),
    ("imapd", "8"),
];

/// The man page `page` (a name from [`pages`]) as roff: `man -l` reads it,
/// `mandoc -T lint` finds nothing to say. None: no such page.
pub fn man(cmd: clap::Command, page: &str) -> Option<std::io::Result<Vec<u8>>> {
    let mut cmd = cmd.disable_help_subcommand(true);
    // build() gives each subcommand its display name (courier-run-init).
    cmd.build();
    let main = page == cmd.get_name();
    let target = if main {
        cmd.clone()
    } else {
        let sub = page.strip_prefix(&format!("{}-", cmd.get_name()))?;
        cmd.get_subcommands()
            .find(|s| s.get_name() == sub && !s.is_hide_set())?
            .clone()
    };
    Some(render(target, main, &pages(&cmd)))
}

fn render(cmd: clap::Command, main: bool, pages: &[String]) -> std::io::Result<Vec<u8>> {
    let m = clap_mangen::Man::new(cmd.clone())
        .section("1")
        .manual("courier-run manual")
        // mandoc wants a date in the date slot (clap_mangen puts the
        // version there); the version goes into the footer's source.
        .date(DATE)
        .source(format!("courier-run {}", env!("CARGO_PKG_VERSION")));
    let mut out = Vec::new();
    m.render_title(&mut out)?;
    m.render_name_section(&mut out)?;
    m.render_synopsis_section(&mut out)?;
    m.render_description_section(&mut out)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        m.render_options_section(&mut out)?;
    }
    if main {
        if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
            m.render_subcommands_section(&mut out)?;
        }
        if cmd.get_after_long_help().is_some() {
            // clap_mangen calls it EXTRA; it is the settings table.
            let mut extra = Vec::new();
            m.render_extra_section(&mut extra)?;
            let extra = String::from_utf8_lossy(&extra).replacen(".SH EXTRA", ".SH SETTINGS", 1);
            out.extend_from_slice(extra.as_bytes());
        }
    }
    let own = cmd.get_display_name().unwrap_or(cmd.get_name()).to_string();
    let others: Vec<String> = pages.iter().filter(|p| **p != own).cloned().collect();
    out.extend_from_slice(sections(main, &others).as_bytes());
    // clap_mangen separates "Possible values" with `.br`, a blank line and
    // `.br`; mandoc -T lint warns about a break next to a paragraph space.
    // One `.sp` says the same.
    // A value with no help has the blank line and one `.br`: the same.
    let text = String::from_utf8_lossy(&out)
        .replace("\n.br\n\n.br\n", "\n.sp\n")
        .replace("\n\n.br\n", "\n.sp\n");
    Ok(text.into_bytes())
}

/// EXIT STATUS, FILES and EXAMPLES (main page) and SEE ALSO (every page:
/// `pages`, the other pages of courier-run, then the programs it works with).
fn sections(main: bool, pages: &[String]) -> String {
    let mut r = Roff::default();
    let list = |r: &mut Roff, title: &str, items: &[(&str, &str)], code: bool| {
        r.control("SH", [title]);
        for (term, text) in items {
            r.control("TP", []);
            r.text([if code { bold(*term) } else { roman(*term) }]);
            r.text([roman(*text)]);
        }
    };
    if main {
        list(&mut r, "EXIT STATUS", EXIT_STATUS, false);
        list(&mut r, "FILES", FILES, true);
        list(&mut r, "EXAMPLES", EXAMPLES, true);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut refs: Vec<(String, &str)> = pages.iter().map(|p| (p.clone(), "1")).collect();
    refs.extend(SEE_ALSO.iter().map(|(n, s)| (n.to_string(), *s)));
    for (i, (name, section)) in refs.iter().enumerate() {
        let sep = if i + 1 < refs.len() { "," } else { "" };
        r.control("BR", [name.as_str(), &format!("({section}){sep}")]);
    }
    r.render()
}

/// The completion script for `shell`. Hidden subcommands are not offered.
pub fn completions(cmd: clap::Command, shell: Shell) -> Vec<u8> {
    let name = cmd.get_name().to_string();
    let mut cmd = cmd;
    let mut out = Vec::new();
    let gen_shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    clap_complete::generate(gen_shell, &mut cmd, &name, &mut out);
    if shell == Shell::Bash {
        // clap_complete's bash script names a command's state with `__`
        // for each `-` of the binary's name in one place and with
        // `__subcmd__` in another (courier-run: `courier__run__subcmd__init`
        // set, `courier__subcmd__run__subcmd__init` matched), so no
        // subcommand's options completed. One spelling, the one it sets.
        let wrong = format!("{}__subcmd__", name.replace('-', "__subcmd__"));
        let right = format!("{}__subcmd__", name.replace('-', "__"));
        if wrong != right {
            out = String::from_utf8_lossy(&out)
                .replace(&wrong, &right)
                .into_bytes();
        }
    }
    out
}

/// Where a distribution installs each (the .deb's layout).
pub fn install_path(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => "/usr/share/bash-completion/completions/courier-run",
        Shell::Zsh => "/usr/share/zsh/vendor-completions/_courier-run",
        Shell::Fish => "/usr/share/fish/vendor_completions.d/courier-run.fish",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    /// A command shaped like courier-run's (the real one is tested through
    /// the binary in tests/docs.rs).
    fn sample() -> Command {
        Command::new("courier-run")
            .version("0.1.0")
            .about("Start Courier-IMAP under supervise")
            .arg(Arg::new("runfile"))
            .arg(
                Arg::new("dry-run")
                    .long("dry-run")
                    .action(ArgAction::SetTrue),
            )
            .subcommand(Command::new("conf2env").arg(Arg::new("envdir").required(true)))
            .subcommand(Command::new("secret").hide(true))
    }

    #[test]
    fn pages_name_each_visible_subcommand() {
        assert_eq!(pages(&sample()), ["courier-run", "courier-run-conf2env"]);
        assert!(man(sample(), "courier-run-secret").is_none());
        assert!(man(sample(), "conf2env").is_none());
        let sub =
            String::from_utf8(man(sample(), "courier-run-conf2env").unwrap().unwrap()).unwrap();
        assert!(sub.contains(".TH courier-run-conf2env 1"), "{sub}");
        assert!(!sub.contains("EXIT STATUS"), "{sub}");
        let main = String::from_utf8(man(sample(), "courier-run").unwrap().unwrap()).unwrap();
        for s in [
            "EXIT STATUS",
            "FILES",
            "EXAMPLES",
            "SEE ALSO",
            "courier\\-run\\-conf2env",
        ] {
            assert!(main.contains(s), "{s}: {main}");
        }
        assert!(!main.contains("secret"), "{main}");
    }

    #[test]
    fn bash_state_names_are_one_spelling() {
        let s = String::from_utf8(completions(sample(), Shell::Bash)).unwrap();
        assert!(s.contains("courier__run__subcmd__conf2env)"), "{s}");
        assert!(!s.contains("courier__subcmd__run"), "{s}");
    }
}
