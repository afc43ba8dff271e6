//! `courier-run migrate DEST --supervisor S`: from Debian's rc-script units
//! to supervised services in one command. It reads the installed Courier's
//! config (which services its `*START` variables enable), makes one service
//! directory per enabled service plus authdaemond under DEST with `init`'s
//! own code ([`crate::init::create`]: the run files point at the config, so
//! ports, addresses, TLS, access lists and TCPDOPTS are Courier's own),
//! runs `--check` on each ([`crate::check::run`]), and prints the commands
//! that switch over and back. It never stops, disables or links anything
//! itself: the admin runs the commands, in the printed order.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{Exit, bad_input};
use crate::init::{Log, ScanDirs, Supervisor};
use crate::service::{Layout as InitLayout, ServiceKind as InitService};

/// Debian's config directory, the default of `--config-dir`.
pub const CONFIG_DIR: &str = "/etc/courier";

#[derive(clap::Args, Debug)]
pub struct MigrateOptions {
    /// Where the service directories go: DEST/courier-authdaemond,
    /// DEST/courier-imapd, ... (created; an existing DEST may hold nothing
    /// but those).
    pub dest: PathBuf,
    /// The supervision suite that will run them.
    #[arg(long, value_enum)]
    pub supervisor: Supervisor,
    /// Where the logs go (see `init --log`): file or syslog; systemd: the
    /// journal.
    #[arg(long, value_enum)]
    pub log: Option<Log>,
    /// Print what would be created and the commands; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Courier's config directory (imapd, imapd-ssl, pop3d, pop3d-ssl,
    /// authdaemonrc). Another than /etc/courier is written into each run
    /// file as `config=`.
    #[arg(long, value_name = "DIR", default_value = CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// A setting for the run file of every mail service (repeatable; not
    /// authdaemond's), as `init --set` writes it, e.g. `--set
    /// server=tcpserver`.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
}

/// The mail services in the order Debian's units are listed.
const MAIL: [InitService; 4] = [
    InitService::Imapd,
    InitService::ImapdSsl,
    InitService::Pop3d,
    InitService::Pop3dSsl,
];

/// The service directory's name under DEST.
pub fn dir_name(s: InitService) -> String {
    format!("courier-{}", s.name())
}

/// The config files of a service under `config_dir`, in the order
/// Debian's rc sources them (base, then -ssl).
fn config_files(s: InitService, config_dir: &Path) -> Vec<PathBuf> {
    if s == InitService::Authdaemond {
        return vec![config_dir.join("authdaemonrc")];
    }
    let sv = s.mail().expect("a mail service");
    sv.inner_order(crate::settings::Layout::Debian)
        .iter()
        .map(|n| config_dir.join(n))
        .collect()
}

/// The `config=` setting a run file needs for `config_dir` (none for
/// Debian's own).
fn config_set(s: InitService, config_dir: &Path) -> Option<String> {
    if config_dir == Path::new(CONFIG_DIR) {
        return None;
    }
    let files: Vec<String> = config_files(s, config_dir)
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    Some(format!("config={}", files.join(" ")))
}

/// Which mail services the config enables: each with the line that says
/// so (or why it is left out).
fn enabled(config_dir: &Path) -> anyhow::Result<Vec<(InitService, bool, String)>> {
    let environ = crate::environ::inherited();
    let mut v = Vec::new();
    for s in MAIL {
        let files = config_files(s, config_dir);
        if let Some(missing) = files.iter().find(|f| !f.exists()) {
            v.push((
                s,
                false,
                format!("not installed (no {})", crate::shown::path(missing)),
            ));
            continue;
        }
        let mut sets = vec!["layout=debian".to_string(), format!("service={}", s.name())];
        sets.extend(config_set(s, config_dir));
        let r = crate::resolve::resolve(&crate::resolve::Input {
            runfile: None,
            sets: &sets,
            environ: &environ,
        });
        // A config the shell could not source: Debian's rc fails on it too.
        let subjects: Vec<crate::error::Subject> = files
            .iter()
            .map(|f| crate::resolve::config_subject(&f.to_string_lossy()))
            .collect();
        if let Some(p) = r.problems.iter().find(|p| subjects.contains(&p.subject)) {
            return Err(bad_input(format!(
                "{}: {} (fix the config, then run migrate again)",
                p.subject,
                p.text()
            )));
        }
        let var = s_start_var(s);
        match r.var(var) {
            // Debian's init.d script lower-cases it: YES, yes and Yes start.
            Some(a) if a.value.eq_ignore_ascii_case(b"yes") => v.push((
                s,
                true,
                format!("{var}={} ({})", crate::shown::value(&a.value), a.pos),
            )),
            Some(a) => v.push((
                s,
                false,
                format!(
                    "left out: {var}={} ({}), Debian's rc does not start it",
                    crate::shown::value(&a.value),
                    a.pos
                ),
            )),
            None => v.push((
                s,
                false,
                format!("left out: the config sets no {var}, Debian's rc does not start it"),
            )),
        }
    }
    Ok(v)
}

fn s_start_var(s: InitService) -> &'static str {
    s.mail().expect("a mail service").start_var()
}

/// One word for a shell: quoted when it needs to be.
fn sh(p: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    String::from_utf8_lossy(&crate::report::quote(p.as_os_str().as_bytes())).into_owned()
}

/// Debian's unit for a service.
fn debian_unit(s: InitService) -> &'static str {
    crate::systemd::debian_unit(s.name())
}

/// The boot unit migrate proposes for a scan directory that nothing runs
/// at boot: its name and the command that writes it.
fn boot_unit(name: &str, what: &str, exec: &str) -> (String, String) {
    let lines = [
        "[Unit]".to_string(),
        format!("Description={what} (made by courier-run migrate)"),
        "After=local-fs.target".to_string(),
        "[Service]".to_string(),
        format!("ExecStart={exec}"),
        "Restart=always".to_string(),
        "[Install]".to_string(),
        "WantedBy=multi-user.target".to_string(),
    ];
    let quoted: Vec<String> = lines.iter().map(|l| sh(Path::new(l))).collect();
    (
        name.to_string(),
        format!(
            "printf '%s\\n' {} > /etc/systemd/system/{name}",
            quoted.join(" ")
        ),
    )
}

/// The switch-over and switch-back commands for `dirs` (authdaemond
/// first), as comment and command lines.
pub fn commands(
    sup: Supervisor,
    dirs: &[(InitService, PathBuf)],
    scan: &ScanDirs,
) -> (Vec<String>, Vec<String>) {
    // 1. A scan directory that runs at boot (what the later steps link
    // into, so the scan directories are the ones after this step).
    let mut scan = scan.clone();
    let boot = at_boot(sup, &mut scan);
    let mut over = boot.lines;
    // 2. Debian's units: stopped (they hold the ports and the socket) and
    // kept from starting at boot.
    let debian: Vec<&str> = dirs.iter().rev().map(|(s, _)| debian_unit(*s)).collect();
    over.push("# 2. stop and disable Debian's units".into());
    over.push(format!("systemctl disable --now {}", debian.join(" ")));
    // 3. Ours, authdaemond first (every login goes through it).
    over.push("# 3. start the services, authdaemond first".into());
    for (s, d) in dirs {
        over.push(crate::init::start_command(sup, *s, d, &scan).0);
    }
    let back = switch_back(sup, dirs, &scan, boot.unit.as_deref());
    (over, back)
}

/// Step 1 of the switch-over: its lines, and the boot unit it writes (if
/// any: switching back offers to disable it).
struct AtBoot {
    lines: Vec<String>,
    unit: Option<String>,
}

/// A scan directory that runs at boot for `sup`: the one found, or the
/// package or unit that makes one (recorded in `scan` for the next steps).
fn at_boot(sup: Supervisor, scan: &mut ScanDirs) -> AtBoot {
    let mut lines = vec!["# 1. the supervisor at boot".to_string()];
    let mut unit = None;
    match sup {
        Supervisor::Systemd => lines.push("# systemd itself: nothing to do".into()),
        Supervisor::Runit => match &scan.runit {
            Some(s) => lines.push(format!(
                "# runsvdir already scans {} at boot (runit-run's runit.service)",
                sh(s)
            )),
            None => {
                lines.push("apt-get install runit-run".into());
                lines.push("systemctl enable --now runit.service".into());
                scan.runit = Some("/etc/service".into());
            }
        },
        Supervisor::Daemontools => match &scan.daemontools {
            Some(s) => lines.push(format!("# svscan already scans {} at boot", sh(s))),
            None if scan.etc_service_is_runit => {
                // daemontools-run would take /etc/service and conflicts
                // with runit-run: a unit of its own on djb's /service.
                lines.push(
                    "# /etc/service is runit's (daemontools-run conflicts with runit-run): svscan gets /service and a unit of its own"
                        .into(),
                );
                unit = Some(own_boot_unit(
                    &mut lines,
                    "/service",
                    "courier-run-svscan.service",
                    "daemontools' svscan on /service",
                    "/usr/bin/svscan /service",
                ));
                scan.daemontools = Some("/service".into());
            }
            None => {
                lines.push(
                    "apt-get install daemontools-run   # runs svscanboot on /etc/service at boot"
                        .into(),
                );
                scan.daemontools = Some("/etc/service".into());
            }
        },
        Supervisor::S6 => match &scan.s6 {
            Some(s) => lines.push(format!("# s6-svscan already scans {}", sh(s))),
            None => {
                lines.push(
                    "# Debian's s6 starts no s6-svscan at boot: a unit for one on /etc/s6/service (or use s6-linux-init, whose scan directory is /run/service)"
                        .into(),
                );
                unit = Some(own_boot_unit(
                    &mut lines,
                    "/etc/s6/service",
                    "courier-run-s6-svscan.service",
                    "s6-svscan on /etc/s6/service",
                    "/usr/bin/s6-svscan /etc/s6/service",
                ));
                scan.s6 = Some("/etc/s6/service".into());
            }
        },
    }
    AtBoot { lines, unit }
}

/// A scan directory and a systemd unit of migrate's own that runs the
/// scanner on it at boot (no Debian package does it without a conflict):
/// its lines pushed to `lines`, its unit's name returned.
fn own_boot_unit(lines: &mut Vec<String>, dir: &str, name: &str, what: &str, exec: &str) -> String {
    lines.push(format!("mkdir -p {dir}"));
    let (name, cmd) = boot_unit(name, what, exec);
    lines.push(cmd);
    lines.push(format!(
        "systemctl daemon-reload && systemctl enable --now {name}"
    ));
    name
}

/// Back: ours stopped (mail services first, authdaemond last), Debian's
/// units enabled again, and the boot unit step 1 made named.
fn switch_back(
    sup: Supervisor,
    dirs: &[(InitService, PathBuf)],
    scan: &ScanDirs,
    boot_unit: Option<&str>,
) -> Vec<String> {
    let mut back = vec!["# 1. stop ours, authdaemond last".to_string()];
    let scan_dir = |sup: Supervisor| -> String {
        let d = match sup {
            Supervisor::Runit => scan.runit.clone(),
            Supervisor::Daemontools => scan.daemontools.clone(),
            Supervisor::S6 => scan.s6.clone(),
            Supervisor::Systemd => None,
        };
        d.map_or_else(|| "SCANDIR".to_string(), |p| sh(&p))
    };
    for (s, d) in dirs.iter().rev() {
        let link = format!("{}/{}", scan_dir(sup), dir_name(*s));
        let log = sh(&d.join("log"));
        let d = sh(d);
        back.push(match sup {
            // supervise goes on running without its link: -dx stops the
            // service and ends supervise (and the log's).
            Supervisor::Daemontools => format!("rm {link} && svc -dx {d} {log}"),
            // runsvdir stops the runsv of a removed link; sv down first so
            // the service is down before that.
            Supervisor::Runit => format!("sv down {d} && rm {link}"),
            Supervisor::S6 => format!("rm {link} && s6-svc -dx {d} && s6-svc -dx {log}"),
            Supervisor::Systemd => format!(
                "systemctl disable --now {}",
                crate::systemd::unit_name(s.name())
            ),
        });
    }
    back.push("# 2. Debian's units again".into());
    let debian: Vec<&str> = dirs.iter().map(|(s, _)| debian_unit(*s)).collect();
    back.push(format!("systemctl enable --now {}", debian.join(" ")));
    if let Some(name) = boot_unit {
        back.push(format!(
            "# optional: the scan directory's boot unit: systemctl disable --now {name}"
        ));
    }
    back
}

/// DEST may exist only holding migrate's own service directories.
fn check_dest(dest: &Path) -> anyhow::Result<()> {
    let shown = crate::shown::path(dest);
    let Ok(meta) = std::fs::symlink_metadata(dest) else {
        return Ok(());
    };
    if !meta.is_dir() {
        // init says what is wrong with a symlink or a file.
        return Ok(());
    }
    let ours: Vec<String> = std::iter::once(InitService::Authdaemond)
        .chain(MAIL)
        .map(dir_name)
        .collect();
    let entries = std::fs::read_dir(dest).with_context(|| format!("unable to list {shown}"))?;
    for e in entries {
        let e = e.with_context(|| format!("unable to list {shown}"))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if !ours.contains(&name) {
            return Err(bad_input(format!(
                "{}: DEST holds {} besides migrate's service directories ({}): move it away, or pick a new or empty DEST",
                shown,
                crate::shown::value(name.as_bytes()),
                ours.join(", ")
            )));
        }
    }
    Ok(())
}

/// `courier-run DIR/run --check`, run in DIR as the supervisor runs the
/// service (./env, ./access are relative to it): a summary, the lines that
/// are not ok or info, and whether one FAILed.
fn check(dir: &Path) -> anyhow::Result<(String, Vec<String>, bool)> {
    use crate::check::Status;
    let here = std::env::current_dir().context("unable to find the current directory")?;
    std::env::set_current_dir(dir)
        .with_context(|| format!("unable to change to {}", crate::shown::path(dir)))?;
    let environ = crate::environ::inherited();
    let report = crate::check::run(
        &crate::resolve::Input {
            runfile: Some(Path::new("./run")),
            sets: &[],
            environ: &environ,
        },
        false,
    );
    std::env::set_current_dir(&here)
        .with_context(|| format!("unable to change back to {}", crate::shown::path(&here)))?;
    let items = report.items();
    let count = |st: Status| items.iter().filter(|i| i.status == st).count();
    let summary = format!(
        "{} ok, {} warn, {} FAIL (all of it: cd {} && courier-run ./run --check)",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail),
        sh(dir)
    );
    // authdaemond's socket is Debian's authdaemond's until step 2 of the
    // switch-over stops it (held, or missing while it is down): said, not
    // counted against the migration.
    let socket = |i: &crate::check::Item| {
        use crate::error::Subject;
        matches!(i.problem.subject, Subject::Authdaemond | Subject::Socket(_))
    };
    let lines = items
        .iter()
        .filter(|i| matches!(i.status, Status::Warn | Status::Fail))
        .map(|i| {
            if i.status == Status::Fail && socket(i) {
                format!("{} [until the switch-over: expected]", i.line())
            } else {
                i.line()
            }
        })
        .collect();
    let failed = items.iter().any(|i| i.status == Status::Fail && !socket(i));
    Ok((summary, lines, failed))
}

/// `courier-run migrate`: refuse what cannot work before touching
/// anything, say what the config enables, check every directory before
/// creating any, then create and check each, and print the commands.
pub fn migrate(o: &MigrateOptions) -> anyhow::Result<Exit> {
    refuse_paths(o)?;
    check_dest(&o.dest)?;
    let found = enabled(&o.config_dir)?;
    let mut out = String::new();
    out += &format!(
        "Courier's config in {}:\n",
        crate::shown::path(&o.config_dir)
    );
    for (s, _, why) in &found {
        out += &format!("  {}: {why}\n", s.name());
    }
    out += "  authdaemond: always (every login goes through it)\n";
    let services: Vec<InitService> = std::iter::once(InitService::Authdaemond)
        .chain(found.iter().filter(|f| f.1).map(|f| f.0))
        .collect();
    let abs_dest = std::path::absolute(&o.dest)
        .with_context(|| format!("unable to make {} absolute", o.dest.display()))?;
    // Every directory checked (init's rules) before any is created.
    let mut planned = Vec::new();
    for &s in &services {
        let (lines, abs) = crate::init::create(&init_options(o, &abs_dest, s, true))?;
        planned.push((s, abs, lines));
    }
    let failed = if o.dry_run {
        out += &dry_run_lines(&planned);
        false
    } else {
        create_and_check(o, &abs_dest, &planned, &mut out)?
    };
    let dirs: Vec<(InitService, PathBuf)> =
        planned.iter().map(|(s, a, _)| (*s, a.clone())).collect();
    let (over, back) = commands(o.supervisor, &dirs, &ScanDirs::detect());
    out += "\nTo switch over, run as root, in this order:\n";
    for l in &over {
        out += &format!("{l}\n");
    }
    out += "\nTo switch back:\n";
    for l in &back {
        out += &format!("{l}\n");
    }
    if o.dry_run {
        out +=
            "\n--dry-run: nothing was created; `--check` runs on each directory once it is made.\n";
    } else if failed {
        out += "\nA check FAILed above: fix it before switching over (courier-run DIR/run --check again).\n";
    }
    crate::report::output(out.as_bytes())?;
    Ok(if failed { Exit::CheckFailed } else { Exit::Ok })
}

/// DEST and --config-dir end up in printed commands and in run files:
/// names that cannot be shown, pasted or written there are refused first.
fn refuse_paths(o: &MigrateOptions) -> anyhow::Result<()> {
    let dest_shown = o.dest.to_string_lossy();
    if dest_shown.chars().any(char::is_control) {
        return Err(bad_input(format!(
            "migrate {}: a directory name with a control character cannot be shown or pasted safely (choose a name without one)",
            crate::shown::path(&o.dest)
        )));
    }
    let cd = o.config_dir.to_string_lossy();
    if cd.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad_input(format!(
            "--config-dir {}: the run file's config= lists files separated by blanks (pick a directory without white space)",
            crate::shown::path(&o.config_dir)
        )));
    }
    if !o.config_dir.is_dir() {
        return Err(bad_input(format!(
            "--config-dir {}: not a directory (Debian's Courier keeps its config in /etc/courier: install courier-imap, or name the directory)",
            crate::shown::path(&o.config_dir)
        )));
    }
    Ok(())
}

/// init's options for service `s` under DEST: Debian's layout, the
/// config directory when it is not Debian's, and `--set` for the mail
/// services only (authdaemond's settings are not theirs).
fn init_options(
    o: &MigrateOptions,
    abs_dest: &Path,
    s: InitService,
    dry_run: bool,
) -> crate::init::InitOptions {
    crate::init::InitOptions {
        dir: abs_dest.join(dir_name(s)),
        service: s,
        layout: InitLayout::Debian,
        supervisor: o.supervisor,
        log: o.log,
        dry_run,
        set: config_set(s, &o.config_dir)
            .into_iter()
            .chain(
                o.set
                    .iter()
                    .filter(|_| s != InitService::Authdaemond)
                    .cloned(),
            )
            .collect(),
    }
}

/// --dry-run: what init would create for each directory. DEST itself is
/// on the way of each: said once.
fn dry_run_lines(planned: &[(InitService, PathBuf, String)]) -> String {
    let mut out = String::new();
    let mut seen: Vec<String> = Vec::new();
    for (_, abs, lines) in planned {
        out += &format!("\n{}:\n", crate::shown::path(abs));
        for l in lines.lines() {
            let dir = l.starts_with("would create ") && l.ends_with('/');
            if dir && seen.iter().any(|x| x == l) {
                continue;
            }
            out += &format!("{l}\n");
            seen.push(l.to_string());
        }
    }
    out
}

/// Create each directory with init, then `--check` it; true when a check
/// FAILed. What is in `out` is printed before each creation, so a later
/// failure leaves what was done on the screen.
fn create_and_check(
    o: &MigrateOptions,
    abs_dest: &Path,
    planned: &[(InitService, PathBuf, String)],
    out: &mut String,
) -> anyhow::Result<bool> {
    let mut failed = false;
    for (s, abs, _) in planned {
        *out += &format!("\n{}:\n", crate::shown::path(abs));
        crate::report::output(out.as_bytes())?;
        out.clear();
        let (lines, _) = crate::init::create(&init_options(o, abs_dest, *s, false))?;
        *out += &lines;
        let (summary, lines, bad) = check(abs)?;
        *out += &format!("check: {summary}\n");
        for l in lines {
            *out += &format!("  {l}\n");
        }
        failed |= bad;
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs() -> Vec<(InitService, PathBuf)> {
        [
            InitService::Authdaemond,
            InitService::Imapd,
            InitService::Pop3dSsl,
        ]
        .into_iter()
        .map(|s| (s, PathBuf::from(format!("/srv/c c/{}", dir_name(s)))))
        .collect()
    }

    fn none() -> ScanDirs {
        ScanDirs {
            runit: None,
            daemontools: None,
            s6: None,
            etc_service_is_runit: false,
        }
    }

    fn options(dest: &str, config_dir: &str) -> MigrateOptions {
        MigrateOptions {
            dest: PathBuf::from(dest),
            supervisor: Supervisor::Runit,
            log: None,
            dry_run: true,
            config_dir: PathBuf::from(config_dir),
            set: Vec::new(),
        }
    }

    /// DEST with a control character, a config directory with a blank
    /// (config= splits on blanks) or that is not a directory: refused as
    /// bad input before anything is read or made.
    #[test]
    fn refused_paths() {
        let refused = |dest: &str, cd: &str| {
            let e = refuse_paths(&options(dest, cd)).unwrap_err();
            assert_eq!(crate::error::exit_code(&e) as i32, 100, "{e:#}");
            format!("{e:#}")
        };
        assert!(refused("/srv/a\nb", "/").contains("control character"));
        assert!(refused("/srv/s", "/etc/my courier").contains("separated by blanks"));
        assert!(refused("/srv/s", "/nonexistent-courier").contains("not a directory"));
        assert!(refuse_paths(&options("/srv/s", "/")).is_ok());
    }

    /// --dry-run names each directory, and a directory on the way of
    /// several (DEST itself) once.
    #[test]
    fn dry_run_says_a_shared_directory_once() {
        let planned = [
            (
                InitService::Authdaemond,
                PathBuf::from("/srv/s/courier-authdaemond"),
                "would create /srv/s/\nwould create /srv/s/courier-authdaemond/\n".to_string(),
            ),
            (
                InitService::Imapd,
                PathBuf::from("/srv/s/courier-imapd"),
                "would create /srv/s/\nwould create /srv/s/courier-imapd/\n".to_string(),
            ),
        ];
        assert_eq!(
            dry_run_lines(&planned),
            "\n/srv/s/courier-authdaemond:\nwould create /srv/s/\nwould create /srv/s/courier-authdaemond/\n\
             \n/srv/s/courier-imapd:\nwould create /srv/s/courier-imapd/\n"
        );
    }

    #[test]
    fn systemd_commands() {
        let (over, back) = commands(Supervisor::Systemd, &dirs(), &none());
        let cmds: Vec<&String> = over.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            cmds[0],
            "systemctl disable --now courier-pop-ssl.service courier-imap.service courier-authdaemon.service"
        );
        assert_eq!(
            cmds[1],
            "systemctl link '/srv/c c/courier-authdaemond/courier-run-authdaemond.service' && systemctl enable --now courier-run-authdaemond.service"
        );
        assert!(cmds[2].contains("courier-run-imapd.service"));
        let b: Vec<&String> = back.iter().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            b[0],
            "systemctl disable --now courier-run-pop3d-ssl.service"
        );
        assert_eq!(
            b.last().unwrap().as_str(),
            "systemctl enable --now courier-authdaemon.service courier-imap.service courier-pop-ssl.service"
        );
    }

    #[test]
    fn scan_directories_at_boot() {
        let runit = ScanDirs {
            runit: Some("/etc/service".into()),
            etc_service_is_runit: true,
            ..none()
        };
        let (over, back) = commands(Supervisor::Runit, &dirs(), &runit);
        assert!(over.contains(&"ln -s '/srv/c c/courier-authdaemond' /etc/service/   # runsvdir starts it within 5 s".to_string()), "{over:?}");
        assert!(
            back.contains(
                &"sv down '/srv/c c/courier-imapd' && rm /etc/service/courier-imapd".to_string()
            ),
            "{back:?}"
        );
        // daemontools beside runit: its own unit on /service.
        let (over, back) = commands(Supervisor::Daemontools, &dirs(), &runit);
        assert!(
            over.iter().any(|l| l.starts_with("printf '%s\\n' '[Unit]'")
                && l.ends_with("> /etc/systemd/system/courier-run-svscan.service")),
            "{over:?}"
        );
        assert!(
            over.iter()
                .any(|l| l.starts_with("ln -s '/srv/c c/courier-imapd' /service/")),
            "{over:?}"
        );
        assert!(back.contains(&"rm /service/courier-imapd && svc -dx '/srv/c c/courier-imapd' '/srv/c c/courier-imapd/log'".to_string()), "{back:?}");
        let (over, _) = commands(Supervisor::Daemontools, &dirs(), &none());
        assert!(
            over.iter()
                .any(|l| l.starts_with("apt-get install daemontools-run"))
        );
        let (over, back) = commands(Supervisor::S6, &dirs(), &none());
        assert!(
            over.iter()
                .any(|l| l.contains("'ExecStart=/usr/bin/s6-svscan /etc/s6/service'")),
            "{over:?}"
        );
        assert!(over.iter().any(|l| l == "ln -s '/srv/c c/courier-authdaemond' /etc/s6/service/ && s6-svscanctl -a /etc/s6/service"), "{over:?}");
        assert!(
            back.iter()
                .any(|l| l.starts_with("rm /etc/s6/service/courier-pop3d-ssl && s6-svc -dx"))
        );
    }
}
