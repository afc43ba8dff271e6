//! `courier-run init DIR`: a new service directory in one command instead of
//! the recipe's dozen manual steps. It creates `run` (a courier-run script
//! with the chosen settings, commented), `log/run` for the supervisor's
//! logger, `log/main` owned by the service account (the logger drops to it),
//! an access list (Courier's syntax, `access` in the run file) and its
//! compiled rules. It never overwrites: an existing file is an error before
//! anything is created. `--dry-run` prints the same lines and creates
//! nothing.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;

use crate::error::{Exit, bad_input};
use crate::frontend::RulesFormat;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Supervisor {
    Daemontools,
    Runit,
    S6,
}

/// The Courier service (the run file's `service=`, which picks the config
/// files, programs and port as Courier's rc script does).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Service {
    Imapd,
    ImapdSsl,
    Pop3d,
    Pop3dSsl,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Imapd => "imapd",
            Service::ImapdSsl => "imapd-ssl",
            Service::Pop3d => "pop3d",
            Service::Pop3dSsl => "pop3d-ssl",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InitLayout {
    Debian,
    Courier2,
}

#[derive(clap::Args, Debug)]
pub struct Options {
    /// The service directory to create (it may exist, empty).
    pub dir: PathBuf,
    /// Which Courier server the service runs.
    #[arg(long, value_enum, default_value_t = Service::Imapd)]
    pub service: Service,
    /// Where Courier is installed: Debian's packages or a courier2 prefix.
    #[arg(long, value_enum, default_value_t = InitLayout::Debian)]
    pub layout: InitLayout,
    /// The supervision suite that will run it (picks log/run's logger).
    #[arg(long, value_enum, default_value_t = Supervisor::Daemontools)]
    pub supervisor: Supervisor,
    /// Print what would be created; create nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// One thing to create.
#[derive(Debug, PartialEq, Eq)]
pub enum Item {
    Dir {
        path: PathBuf,
        owner: Option<String>,
    },
    File {
        path: PathBuf,
        mode: u32,
        text: String,
    },
    Rules {
        source: PathBuf,
        output: PathBuf,
    },
}

/// The service account of a layout (envuidgid's, and the logger's).
fn account(layout: InitLayout) -> &'static str {
    match layout {
        InitLayout::Debian => "courier",
        InitLayout::Courier2 => "courierd",
    }
}

/// The run file's text.
pub fn run_file(o: &Options, exe: &Path) -> String {
    let svc = o.service.name();
    let sup = match o.supervisor {
        Supervisor::Daemontools => "daemontools' supervise",
        Supervisor::Runit => "runit's runsv",
        Supervisor::S6 => "s6-supervise",
    };
    let mut s = format!(
        "{shebang}\n\
         # courier-{svc}: Courier's {svc} on tcpserver under {sup}.\n\
         # Made by `courier-run init`; see courier-run(1). The supervisor runs\n\
         # this as `courier-run ./run` in the service directory. service= reads\n\
         # Courier's own config files for it, as its rc script does.\n\
         service={svc}\n",
        shebang = shebang(o, exe)
    );
    match o.layout {
        InitLayout::Debian => s += "layout=debian\n",
        InitLayout::Courier2 => s += "layout=courier2\nprefix=/usr/local/courier-imap\n",
    }
    s += &format!(
        "\n# envuidgid: UID and GID of this account go into the environment.\naccount={}\n",
        account(o.layout)
    );
    s += "\n# Courier's access list (couriertcpd syntax: ADDRESS<tab>allow|deny),\n\
          # converted on start into the front end's rules when it is newer.\n\
          access=./access\n";
    if o.layout == InitLayout::Courier2 {
        s += "# (the access list replaces the default /etc/tcprules/imap.cdb)\nrules=\n";
    }
    s
}

/// The run file's first line. Under s6, s6-notifyoncheck comes first (env
/// -S splits the line the kernel passes as one word): it execs courier-run
/// in the same pid (-d: the checker is double-forked) and runs
/// ./data/check until it passes, then writes to the notification-fd, so
/// `s6-svwait -U` returns once the port serves TLS, not when the process
/// starts. Tries every 250 ms, for 30 s at most.
fn shebang(o: &Options, exe: &Path) -> String {
    match o.supervisor {
        Supervisor::S6 => format!(
            "#!/usr/bin/env -S {} -d -w 250 -n 120 {}",
            notifyoncheck().display(),
            exe.display()
        ),
        _ => format!("#!{}", exe.display()),
    }
}

/// s6-notifyoncheck's path: found in PATH, else s6's Debian place.
fn notifyoncheck() -> PathBuf {
    let path = std::env::var_os("PATH");
    crate::resolve::find_program(
        b"s6-notifyoncheck",
        path.as_ref().map(|p| p.as_encoded_bytes()),
    )
    .unwrap_or_else(|_| PathBuf::from("/usr/bin/s6-notifyoncheck"))
}

/// s6's readiness check (./data/check, run by s6-notifyoncheck in the
/// service directory): `--probe` passes (OK, or WARNING: an expiring
/// certificate still serves).
fn s6_check(exe: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Ready when a client can connect, get the greeting and do TLS with the\n\
         # configured certificate (courier-run --probe: 0 OK, 1 WARNING).\n\
         \"{}\" ./run --probe --timeout 2 >/dev/null\n\
         test $? -le 1\n",
        exe.display()
    )
}

fn log_run(o: &Options) -> String {
    let acct = account(o.layout);
    let (cmd, why) = match o.supervisor {
        Supervisor::Daemontools => (
            format!("setuidgid {acct} multilog t ./main"),
            "multilog timestamps (t) and rotates in ./main",
        ),
        Supervisor::Runit => (
            format!("chpst -u {acct} svlogd -tt ./main"),
            "svlogd timestamps (-tt) and rotates in ./main",
        ),
        Supervisor::S6 => (
            format!("s6-setuidgid {acct} s6-log t ./main"),
            "s6-log timestamps (t) and rotates in ./main",
        ),
    };
    format!(
        "#!/bin/sh\n# The service's log: courier-run merges stderr into stdout;\n# {why}, as {acct}, who owns ./main.\nexec {cmd}\n"
    )
}

const ACCESS: &str = "\
# Courier's access list (couriertcpd(1), \"ACCESS FILE\"): an address, a
# prefix (192.168), a CIDR block or *, a tab, then deny, allow, or
# allow,NAME=VALUE. The most specific line wins. courier-run converts it
# into the front end's rules on start when it is newer than them.
127.0.0.1\tallow
*\tallow
";

/// Everything `init` would create, in order.
pub fn items(o: &Options, exe: &Path) -> Vec<Item> {
    let d = &o.dir;
    let fmt = RulesFormat::Tcprules;
    let mut items = vec![
        Item::Dir {
            path: d.clone(),
            owner: None,
        },
        Item::File {
            path: d.join("run"),
            mode: 0o755,
            text: run_file(o, exe),
        },
        Item::Dir {
            path: d.join("log"),
            owner: None,
        },
        Item::File {
            path: d.join("log/run"),
            mode: 0o755,
            text: log_run(o),
        },
        Item::Dir {
            path: d.join("log/main"),
            owner: Some(account(o.layout).to_string()),
        },
        Item::File {
            path: d.join("access"),
            mode: 0o644,
            text: ACCESS.to_string(),
        },
        Item::Rules {
            source: d.join("access"),
            output: crate::access::output_path(d, Path::new("access"), fmt),
        },
    ];
    if o.supervisor == Supervisor::S6 {
        // Readiness: s6-supervise gives ./run the write end of a pipe as
        // fd 3; s6-notifyoncheck writes a newline there once data/check
        // passes.
        items.extend([
            Item::File {
                path: d.join("notification-fd"),
                mode: 0o644,
                text: "3\n".into(),
            },
            Item::Dir {
                path: d.join("data"),
                owner: None,
            },
            Item::File {
                path: d.join("data/check"),
                mode: 0o755,
                text: s6_check(exe),
            },
        ]);
    }
    items
}

/// The command that starts the service.
pub fn start_command(o: &Options) -> String {
    let d = o.dir.display();
    match o.supervisor {
        Supervisor::Daemontools => {
            format!("ln -s {d} /etc/service/   # svscan starts it within 5 s")
        }
        Supervisor::Runit => format!("ln -s {d} /etc/service/   # runsvdir starts it within 5 s"),
        Supervisor::S6 => {
            format!(
                "ln -s {d} SCANDIR/ && s6-svscanctl -a SCANDIR   # SCANDIR: your s6-svscan's directory"
            )
        }
    }
}

pub fn init(o: &Options) -> anyhow::Result<Exit> {
    let exe = std::env::current_exe().context("unable to find courier-run's own path")?;
    let items = items(o, &exe);
    // Refuse before creating anything.
    for it in &items {
        let p = match it {
            Item::File { path, .. } => path,
            Item::Rules { output, .. } => output,
            Item::Dir { .. } => continue,
        };
        if std::fs::symlink_metadata(p).is_ok() {
            return Err(bad_input(format!(
                "{} exists: init never overwrites (remove it, or pick another directory)",
                p.display()
            )));
        }
    }
    let mut out = std::io::stdout().lock();
    let verb = if o.dry_run { "would create" } else { "created" };
    for it in &items {
        if !o.dry_run {
            create(it)?;
        }
        let line = match it {
            Item::Dir { path, owner } => format!(
                "{verb} {}/{}",
                path.display(),
                owner
                    .as_ref()
                    .map(|o| format!(" (owner {o})"))
                    .unwrap_or_default()
            ),
            Item::File { path, mode, .. } => format!("{verb} {} (mode {mode:o})", path.display()),
            Item::Rules { source, output } => format!(
                "{verb} {} (tcprules cdb, from {})",
                output.display(),
                source.display()
            ),
        };
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "start it with: {}", start_command(o));
    Ok(Exit::Ok)
}

fn create(it: &Item) -> anyhow::Result<()> {
    match it {
        Item::Dir { path, owner } => {
            if !path.is_dir() {
                std::fs::create_dir_all(path)
                    .with_context(|| format!("unable to create {}", path.display()))?;
            }
            if let Some(o) = owner {
                let a = crate::account::lookup(o, "log owner")?;
                nix::unistd::chown(
                    path,
                    Some(nix::unistd::Uid::from_raw(a.uid)),
                    Some(nix::unistd::Gid::from_raw(a.gid)),
                )
                .with_context(|| format!("unable to give {} to {o}", path.display()))?;
            }
        }
        Item::File { path, mode, text } => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("unable to create {}", path.display()))?;
            f.write_all(text.as_bytes())
                .with_context(|| format!("unable to write {}", path.display()))?;
            f.set_permissions(std::fs::Permissions::from_mode(*mode))
                .with_context(|| format!("unable to chmod {}", path.display()))?;
        }
        Item::Rules { source, output } => {
            crate::access::build(source, output, RulesFormat::Tcprules, false)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path, sup: Supervisor, svc: Service) -> Options {
        Options {
            dir: dir.to_path_buf(),
            service: svc,
            layout: InitLayout::Debian,
            supervisor: sup,
            dry_run: false,
        }
    }

    #[test]
    fn loggers_per_supervisor() {
        let d = Path::new("/x");
        let lr = |s| log_run(&opts(d, s, Service::Imapd));
        assert!(lr(Supervisor::Daemontools).contains("exec setuidgid courier multilog t ./main"));
        assert!(lr(Supervisor::Runit).contains("exec chpst -u courier svlogd -tt ./main"));
        assert!(lr(Supervisor::S6).contains("exec s6-setuidgid courier s6-log t ./main"));
        let r = run_file(
            &opts(d, Supervisor::S6, Service::Pop3d),
            Path::new("/usr/bin/courier-run"),
        );
        // s6: readiness through s6-notifyoncheck, which execs courier-run.
        let first = r.lines().next().unwrap();
        assert!(first.starts_with("#!/usr/bin/env -S /"), "{first}");
        assert!(
            first.ends_with("s6-notifyoncheck -d -w 250 -n 120 /usr/bin/courier-run"),
            "{first}"
        );
        let r = run_file(
            &opts(d, Supervisor::Runit, Service::Pop3d),
            Path::new("/usr/bin/courier-run"),
        );
        assert!(r.starts_with("#!/usr/bin/courier-run\n"));
        assert!(r.contains("service=pop3d\nlayout=debian\n"));
        assert!(r.contains("access=./access\n"));
    }

    #[test]
    fn creates_and_refuses_to_overwrite() {
        let Some(dir) = crate::frontend::tests_support::tempdir("init") else {
            return;
        };
        let d = dir.join("svc");
        let mut o = opts(&d, Supervisor::Runit, Service::Imapd);
        o.dry_run = true;
        init(&o).unwrap();
        assert!(!d.exists(), "--dry-run created something");
        o.dry_run = false;
        if crate::account::lookup("courier", "test").is_err() || !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: init needs root and the courier account to chown log/main");
            let _ = std::fs::remove_dir_all(dir);
            return;
        }
        init(&o).unwrap();
        for f in [
            "run",
            "log/run",
            "log/main",
            "access",
            "access.tcprules.cdb",
        ] {
            assert!(d.join(f).exists(), "{f}");
        }
        let e = init(&o).unwrap_err();
        assert!(format!("{e:#}").contains("exists: init never overwrites"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
