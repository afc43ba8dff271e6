//! The systemd unit `init --supervisor systemd` writes into the service
//! directory, and the unit's name (which `--status`/`--restart` also need).
//!
//! The unit is a file of the service directory, `courier-run-SERVICE.service`
//! (`courier-run-imapd.service`, ...), linked into systemd with `systemctl
//! link`: the directory stays the one place the service is defined, as it
//! is under daemontools. The unit runs `courier-run DIR/run` in DIR;
//! courier-run execs the front end in the same process, so the unit's main
//! pid is the listener (`Type=exec`: systemd reports a failed exec of
//! courier-run itself as a failed start). The log is the journal's, tagged
//! and with facility mail as courierlogger's (see docs/logging.md).

use std::path::Path;

use crate::error::bad_input;

/// The unit name of a Courier service (`imapd` -> `courier-run-imapd.service`).
pub fn unit_name(service: &str) -> String {
    format!("courier-run-{service}.service")
}

/// The unit of a service directory made by `init --supervisor systemd`:
/// the name of its one `courier-run-*.service` file (the name `systemctl
/// link` gives the unit), or None when there is none or more than one.
pub fn unit_in(service_dir: &Path) -> Option<String> {
    let mut found = None;
    for e in std::fs::read_dir(service_dir).ok()?.flatten() {
        let name = e.file_name().into_string().ok()?;
        if name.starts_with("courier-run-") && name.ends_with(".service") {
            if found.is_some() {
                return None;
            }
            found = Some(name);
        }
    }
    found
}

/// Debian's own unit for the same service (its rc script under systemd):
/// it binds the same port, so the two conflict.
pub fn debian_unit(service: &str) -> &'static str {
    match service {
        "imapd" => "courier-imap.service",
        "imapd-ssl" => "courier-imap-ssl.service",
        "pop3d" => "courier-pop.service",
        "pop3d-ssl" => "courier-pop-ssl.service",
        _ => "courier-authdaemon.service",
    }
}

/// A path as one word of a unit file. systemd splits ExecStart= and
/// ReadWritePaths= at white space and reads quotes and backslashes in them,
/// and `%` starts a specifier everywhere: `%` is doubled, and a path with
/// white space, a quote, a backslash or a control character is refused
/// rather than escaped (a service directory has no need of them, and the
/// same path is printed for a shell).
pub fn unit_word(p: &Path) -> anyhow::Result<String> {
    let shown = crate::shown::path(p);
    let s = p.to_str().ok_or_else(|| {
        bad_input(format!(
            "{shown}: a systemd unit needs a UTF-8 path (rename the directory)"
        ))
    })?;
    if let Some(c) = s
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "\"'\\".contains(*c))
    {
        return Err(bad_input(format!(
            "{shown}: {c:?} in a path of a systemd unit (pick a directory without white space, quotes or backslashes)"
        )));
    }
    if !p.is_absolute() {
        return Err(bad_input(format!(
            "{shown}: a systemd unit needs an absolute path"
        )));
    }
    Ok(s.replace('%', "%%"))
}

/// A warning for a unit whose directory or binary lies under /tmp or
/// /var/tmp: the unit has PrivateTmp=yes, so it sees a /tmp and /var/tmp of
/// its own and would not find them when it starts.
pub fn hidden_by_private_tmp(dir: &Path, exe: &Path) -> Option<String> {
    let hidden = |p: &Path| ["/tmp", "/var/tmp"].iter().any(|t| p.starts_with(t));
    [dir, exe].into_iter().find(|p| hidden(p)).map(|p| {
        format!(
            "{} is under /tmp or /var/tmp, which the unit cannot see (PrivateTmp=yes gives it its own): the unit will not start; use a directory elsewhere (/etc/courier-run, /srv)",
            crate::shown::path(p)
        )
    })
}

/// The unit's text. `dir` and `exe` are absolute (see [`unit_word`]).
pub fn unit_file(service: &str, dir: &Path, exe: &Path) -> anyhow::Result<String> {
    let d = unit_word(dir)?;
    let exe = unit_word(exe)?;
    let unit = unit_name(service);
    let debian = debian_unit(service);
    // Every service logs in through authdaemond, except authdaemond.
    let authd = unit_name("authdaemond");
    let after_authd = if service == "authdaemond" {
        "# authdaemond answers the other services' logins.\nAfter=network.target\n".to_string()
    } else {
        format!(
            "# Logins go through authdaemond: courier-run's unit for it when there is\n\
             # one, else Debian's (ordering only: Debian's is started by its own unit).\n\
             Wants={authd}\n\
             After=network.target {authd} courier-authdaemon.service\n"
        )
    };
    Ok(format!(
        "\
# {unit}: Courier's {service} run by courier-run under systemd.
# Made by `courier-run init`; see courier-run(1). This file is the unit:
#   systemctl link {d}/{unit}
#   systemctl enable --now {unit}
# After editing it: systemctl daemon-reload. The settings are in ./run.

[Unit]
Description=Courier {service} (courier-run, {d})
Documentation=man:courier-run(1)
{after_authd}# Debian's rc-script unit for the same service binds the same port.
Conflicts={debian}
# A bad config is retried every second until it is fixed, as supervise
# does (its error is in `journalctl -u {unit}`).
StartLimitIntervalSec=0

[Service]
# courier-run execs the front end in the same process: the main pid is
# the listener's, and stopping it ends the sessions it started.
Type=exec
ExecStart={exe} {d}/run
WorkingDirectory={d}
Restart=always
RestartSec=1
# courier-run's banner and errors (stderr, merged into stdout) and the
# servers' log lines go to the journal, tagged and with facility mail as
# courierlogger logs them: journald's forwarding to syslog keeps
# /var/log/mail.log and its readers (fail2ban) working.
StandardOutput=journal
StandardError=journal
SyslogIdentifier={service}
SyslogFacility=mail

# Sandboxing that Courier allows (docs/systemd.md says what is left out
# and why). Nothing in the chain is setuid: authlib switches to each user
# from root. A setuid SENDMAIL (Courier's OUTBOX) needs NoNewPrivileges=no.
NoNewPrivileges=yes
# /usr, /boot and /etc read-only; Maildirs under /home and /var/mail stay
# writable (no ProtectHome=); the service directory takes the envdir and
# the compiled access rules.
ProtectSystem=full
ReadWritePaths={d}
PrivateTmp=yes
PrivateDevices=yes
PrivateMounts=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
"
    ))
}

/// The commands that link and start the unit, for a shell.
pub fn start_commands(dir: &Path, service: &str) -> String {
    let unit = unit_name(service);
    let file = dir.join(&unit);
    let q = |s: &str| String::from_utf8_lossy(&crate::report::quote(s.as_bytes())).into_owned();
    format!(
        "systemctl link {} && systemctl enable --now {}",
        q(&file.to_string_lossy()),
        q(&unit)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_text_and_refusals() {
        let u = unit_file(
            "imapd-ssl",
            Path::new("/srv/courier/imaps"),
            Path::new("/usr/bin/courier-run"),
        )
        .unwrap();
        for line in [
            "ExecStart=/usr/bin/courier-run /srv/courier/imaps/run\n",
            "WorkingDirectory=/srv/courier/imaps\n",
            "Type=exec\n",
            "Restart=always\n",
            "Conflicts=courier-imap-ssl.service\n",
            "Wants=courier-run-authdaemond.service\n",
            "SyslogIdentifier=imapd-ssl\n",
            "SyslogFacility=mail\n",
            "ReadWritePaths=/srv/courier/imaps\n",
        ] {
            assert!(u.contains(line), "{line}");
        }
        // Maildirs live in /home.
        assert!(!u.lines().any(|l| l.starts_with("ProtectHome")));
        // % is a specifier: doubled.
        let u = unit_file("pop3d", Path::new("/srv/50%"), Path::new("/bin/cr")).unwrap();
        assert!(u.contains("ExecStart=/bin/cr /srv/50%%/run\n"));
        // authdaemond is not ordered after itself; it replaces Debian's.
        let u = unit_file("authdaemond", Path::new("/srv/a"), Path::new("/bin/cr")).unwrap();
        assert!(!u.contains("Wants=") && !u.contains("After=network.target courier-run"));
        assert!(u.contains("Conflicts=courier-authdaemon.service\n"));
        for bad in [
            "/srv/a b",
            "/srv/a\"b",
            "/srv/a\\b",
            "relative/dir",
            "/srv/a\nb",
        ] {
            let e = unit_file("imapd", Path::new(bad), Path::new("/bin/cr")).unwrap_err();
            assert_eq!(
                crate::error::exit_code(&e),
                crate::error::Exit::Usage,
                "{bad}"
            );
        }
        assert!(hidden_by_private_tmp(Path::new("/tmp/svc"), Path::new("/bin/cr")).is_some());
        assert!(hidden_by_private_tmp(Path::new("/srv/a"), Path::new("/var/tmp/cr")).is_some());
        assert!(hidden_by_private_tmp(Path::new("/tmpx/a"), Path::new("/bin/cr")).is_none());
        assert_eq!(
            start_commands(Path::new("/srv/x$y"), "pop3d"),
            "systemctl link '/srv/x$y/courier-run-pop3d.service' && systemctl enable --now courier-run-pop3d.service"
        );
    }

    #[test]
    fn finds_the_unit_of_a_directory() {
        let Some(dir) = crate::frontend::tests_support::tempdir("unit_in") else {
            return;
        };
        assert_eq!(unit_in(&dir), None);
        std::fs::write(dir.join("courier-run-pop3d.service"), "").unwrap();
        std::fs::write(dir.join("run"), "").unwrap();
        assert_eq!(unit_in(&dir).as_deref(), Some("courier-run-pop3d.service"));
        std::fs::write(dir.join("courier-run-imapd.service"), "").unwrap();
        assert_eq!(unit_in(&dir), None, "two units: ambiguous");
        let _ = std::fs::remove_dir_all(dir);
    }
}
