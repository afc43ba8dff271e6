//! Settings that are values: the config-derived ones (address, port,
//! conlimit, umask) and their checks, accounts, envdir, two-valued
//! choices, inherit_env.

use std::path::{Path, PathBuf};

use crate::account::{self, Account};
use crate::config::Assignment;
use crate::envdir;
use crate::error::{Exit, Position, Problem, Subject, exit_code};
use crate::frontend;
use crate::limits;
use crate::settings::{Name, Origin, Settings};

use super::Inherit;

/// A setting's text with its origin, after config-derived defaults.
#[derive(Clone, Debug)]
pub struct SettingText {
    pub text: String,
    pub origin: Origin,
    /// The value had a problem (reported); `text` is a harmless stand-in.
    pub stand_in: bool,
}

/// A checked setting: its text as the front end gets it, its origin, and
/// what it means (`T`), found once by its check, so that nothing
/// downstream reads the text again to learn it.
#[derive(Clone, Debug)]
pub struct Checked<T> {
    pub text: String,
    pub origin: Origin,
    /// The value had a problem (reported); `text` and `value` are a
    /// harmless stand-in's.
    pub stand_in: bool,
    pub value: T,
}

/// The address family of the front end's `address`: an IPv6 address
/// needs a front end that binds one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// An IPv4 address, a host name, or 0 (every IPv4 address).
    Ipv4,
    Ipv6,
}

/// `softlimit`, parsed once: the text (messages quote it as given), its
/// words (softlimit(8)'s arguments in the classic chain) and the limits
/// they set (none when refused: reported).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Softlimit {
    pub text: String,
    pub words: Vec<String>,
    pub limits: Vec<limits::SoftLimit>,
}

impl Softlimit {
    /// The setting's text and the limits parsed from it.
    pub fn new(text: &str, limits: Vec<limits::SoftLimit>) -> Softlimit {
        Softlimit {
            text: text.to_string(),
            words: text.split_ascii_whitespace().map(str::to_string).collect(),
            limits,
        }
    }
}

/// The settings that default to a config variable, checked.
pub(super) struct Derived {
    pub(super) umask: Option<(u32, Origin)>,
    pub(super) ulimit_v: Option<(Option<u64>, Origin)>,
    pub(super) address: Checked<Family>,
    pub(super) port: Checked<Option<u16>>,
    pub(super) conlimit: Checked<u32>,
    pub(super) maildir: SettingText,
}

/// umask, ulimit_v, address, port, conlimit and maildir: the setting, else
/// the service's config variable, else the default; a refused value is
/// reported and its stand-in used.
pub(super) fn derived(cfg: &SettingSources, problems: &mut Vec<Problem>) -> Derived {
    let service = cfg.settings.service;
    let umask = cfg
        .derived(Name::Umask, service.umask_var().unwrap_or("-"), None)
        .and_then(|v| umask_of(v, problems));
    let ulimit_v = cfg
        .derived(Name::UlimitV, service.ulimit_var().unwrap_or("-"), None)
        .and_then(|v| ulimit_v(v, problems));
    let address = checked(
        cfg.derived(Name::Address, service.address_var(), Some("0")),
        address,
        ("0", Family::Ipv4),
        problems,
    );
    let default_port = service.default_port().to_string();
    // couriertcpd binds a list of ports and ADDRESS.PORT items itself.
    let tcpd = cfg
        .settings
        .str(Name::Server)
        .split_ascii_whitespace()
        .next()
        .and_then(frontend::Kind::of)
        == Some(frontend::Kind::Couriertcpd);
    let port = checked(
        cfg.derived(Name::Port, service.port_var(), Some(&default_port)),
        if tcpd { tcpd_port } else { port },
        (&default_port, Some(service.default_port())),
        problems,
    );
    let conlimit = checked(
        cfg.derived(Name::Conlimit, "MAXDAEMONS", Some("40")),
        conlimit,
        ("40", 40),
        problems,
    );
    let maildir = cfg
        .derived(Name::Maildir, "MAILDIRPATH", Some("Maildir"))
        .expect("has a fallback");
    Derived {
        umask,
        ulimit_v,
        address,
        port,
        conlimit,
        maildir,
    }
}

/// The settings and the config's variables, for settings that default to
/// a config variable.
pub(super) struct SettingSources<'a> {
    pub(super) settings: &'a Settings,
    pub(super) vars: &'a [Assignment],
    /// The run file's directory (or `.`): where compiled rules go.
    pub(super) service_dir: &'a Path,
}

impl SettingSources<'_> {
    /// The setting, else the variable (positioned at its value), else
    /// `fallback`.
    pub(super) fn derived(
        &self,
        name: Name,
        var: &str,
        fallback: Option<&str>,
    ) -> Option<SettingText> {
        let s = self.settings.get(name);
        if let Some(v) = &s.value {
            return Some(SettingText {
                text: v.clone(),
                origin: s.origin.clone(),
                stand_in: false,
            });
        }
        if let Some(a) = self.vars.iter().rev().find(|a| a.name == var) {
            return Some(SettingText {
                text: String::from_utf8_lossy(&a.value).into_owned(),
                origin: Origin::File(a.value_pos.clone()),
                stand_in: false,
            });
        }
        fallback.map(|f| SettingText {
            text: f.to_string(),
            origin: Origin::Default,
            stand_in: false,
        })
    }
}

/// A derived value passed through its check, which says what it means;
/// on a problem, the stand-in's text and meaning.
pub(super) fn checked<T>(
    v: Option<SettingText>,
    check: fn(&SettingText) -> Result<T, (String, String)>,
    (stand_in, stand_in_value): (&str, T),
    problems: &mut Vec<Problem>,
) -> Checked<T> {
    let v = v.expect("has a fallback");
    match check(&v) {
        Ok(value) => Checked {
            text: v.text,
            origin: v.origin,
            stand_in: false,
            value,
        },
        Err((message, fix)) => {
            problems.push(Problem::bad(
                Subject::Settings,
                v.origin.position(),
                message,
                fix,
            ));
            Checked {
                text: stand_in.to_string(),
                origin: v.origin,
                stand_in: true,
                value: stand_in_value,
            }
        }
    }
}

pub(crate) fn inherit(settings: &Settings, problems: &mut Vec<Problem>) -> Inherit {
    match settings.str(Name::InheritEnv) {
        "all" => Inherit::All,
        "none" => Inherit::Nothing,
        names => {
            let names: Vec<Vec<u8>> = names
                .split_ascii_whitespace()
                .map(|n| n.as_bytes().to_vec())
                .collect();
            if let Some(bad) = names.iter().find(|n| !crate::config::is_name(n)) {
                problems.push(Problem::bad(
                    Subject::Settings,
                    settings.get(Name::InheritEnv).origin.position(),
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

/// umask as a mode with its origin; None when empty (no umask) or not
/// a mode (reported).
pub(super) fn umask_of(v: SettingText, problems: &mut Vec<Problem>) -> Option<(u32, Origin)> {
    (!v.text.is_empty()).then(|| umask(&v, problems).map(|m| (m, v.origin)))?
}

/// ulimit_v in bytes (None inside: unlimited) with its origin; None when
/// empty (no limit set) or refused (reported).
pub(crate) fn ulimit_v(
    v: SettingText,
    problems: &mut Vec<Problem>,
) -> Option<(Option<u64>, Origin)> {
    if v.text.is_empty() {
        return None;
    }
    match limits::parse_ulimit_v(&v.text) {
        Ok(b) => Some((b, v.origin)),
        Err(e) => {
            problems.push(Problem::bad(
                Subject::Settings,
                v.origin.position(),
                format!("{e:#}"),
                "",
            ));
            None
        }
    }
}

/// softlimit, parsed; no limits when refused (reported).
pub(crate) fn softlimit(settings: &Settings, problems: &mut Vec<Problem>) -> Softlimit {
    let text = settings.str(Name::Softlimit);
    let limits = limits::parse_softlimit(text).unwrap_or_else(|e| {
        problems.push(Problem::bad(
            Subject::Settings,
            settings.get(Name::Softlimit).origin.position(),
            format!("{e:#}"),
            "",
        ));
        Vec::new()
    });
    Softlimit::new(text, limits)
}

pub(crate) fn umask(v: &SettingText, problems: &mut Vec<Problem>) -> Option<u32> {
    match u32::from_str_radix(&v.text, 8) {
        Ok(m) if m <= 0o777 && !v.text.starts_with('+') => Some(m),
        _ => {
            problems.push(Problem::bad(
                Subject::Settings,
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

pub(super) fn address(v: &SettingText) -> Result<Family, (String, String)> {
    if v.text.is_empty() || v.text.contains([',', ' ', '\t']) {
        return Err((
            format!(
                "address \"{}\" is not one host or IP address",
                crate::shown::value(&v.text)
            ),
            "tcpserver binds one; 0 means all".into(),
        ));
    }
    Ok(if frontend::is_ipv6(&v.text) {
        Family::Ipv6
    } else {
        Family::Ipv4
    })
}

/// One TCP port: a number 1-65535 or a service name from /etc/services, as
/// tcpserver accepts. Courier's PORT may be a list or `address.port`, which
/// one tcpserver cannot bind. Its number when it is one.
pub(super) fn port(v: &SettingText) -> Result<Option<u16>, (String, String)> {
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
    if let Some(n) = port_number(&v.text) {
        return Ok(Some(n));
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

/// couriertcpd's port list (`143`, `127.0.0.1.143,993`); the number when
/// it is one port (a list couriertcpd binds itself has none).
pub(super) fn tcpd_port(v: &SettingText) -> Result<Option<u16>, (String, String)> {
    crate::couriertcpd::port_list(&v.text).map_err(|m| {
        (
            m,
            "write e.g. 143, or ADDRESS.PORT items separated by commas".into(),
        )
    })?;
    Ok(port_number(&v.text))
}

pub(super) fn conlimit(v: &SettingText) -> Result<u32, (String, String)> {
    match v.text.parse::<u32>() {
        Ok(n) if n > 0 && v.text.bytes().all(|c| c.is_ascii_digit()) => Ok(n),
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
    name: Name,
    problems: &mut Vec<Problem>,
) -> Option<Account> {
    let acct = settings.str(name);
    if acct.is_empty() {
        return None;
    }
    // Only a position in a file is worth printing before the message; a
    // --set or a default is named by the message itself.
    let position = settings.get(name).origin.position();
    match account::lookup(acct, name.as_str()) {
        Ok(a) => Some(a),
        Err(e) => {
            let code = exit_code(&e);
            let shown = crate::shown::value(acct);
            let p = if code == Exit::Usage {
                Problem::bad(
                    Subject::account(name, shown.clone()),
                    position,
                    format!("{name}: unknown account {shown}"),
                    format!("create it, or set {name} to an existing account; {name}= for none"),
                )
            } else {
                Problem::new(
                    code,
                    Subject::account(name, shown.clone()),
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
        Subject::Setuidgid(a.name.clone()),
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
    let dir = settings.str(Name::Envdir);
    if dir.is_empty() {
        return None;
    }
    let path = PathBuf::from(dir);
    let subject = Subject::Envdir(crate::shown::path(dir));
    // On a problem the stand-in is no envdir: --check goes on without it.
    if let Err(e) = envdir::check_component(&path) {
        let mut p = Problem::from_error(subject.clone(), &e);
        p.position = settings.get(Name::Envdir).origin.position();
        problems.push(p);
        return None;
    } else if let Err((code, message, fix)) = envdir::check_path(&path) {
        problems.push(Problem::new(
            code,
            subject,
            settings.get(Name::Envdir).origin.position(),
            message,
            fix,
        ));
        return None;
    }
    Some(path)
}

/// A setting with two values; the first is also the stand-in.
pub(crate) fn choice(
    settings: &Settings,
    name: Name,
    [yes, no]: [&str; 2],
    problems: &mut Vec<Problem>,
) -> bool {
    match settings.str(name) {
        v if v == yes => true,
        v if v == no => false,
        other => {
            problems.push(Problem::bad(
                Subject::Settings,
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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{one, scope, settings};
    use super::*;
    use crate::error::Exit;

    fn val(text: &str) -> SettingText {
        SettingText {
            text: text.into(),
            origin: Origin::CommandLine,
            stand_in: false,
        }
    }

    /// The message of a check's refusal.
    fn refused<T: std::fmt::Debug>(r: Result<T, (String, String)>) -> String {
        r.expect_err("refused").0
    }

    #[test]
    fn softlimit_keeps_its_text_and_its_words() {
        let mut p = Vec::new();
        let soft = softlimit(&settings("softlimit='-m  5000000 -o 20'\n"), &mut p);
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(soft.text, "-m  5000000 -o 20");
        assert_eq!(soft.words, ["-m", "5000000", "-o", "20"]);
        assert!(!soft.limits.is_empty());
        let soft = softlimit(&settings("softlimit=\n"), &mut p);
        assert_eq!(soft, Softlimit::default());
    }

    #[test]
    fn umask_refuses_what_is_not_an_octal_mode() {
        for t in ["8", "0999", "+22", "1000", "022x", ""] {
            let mut p = Vec::new();
            assert_eq!(umask(&val(t), &mut p), None, "{t}");
            assert!(one(&p).message.contains("is not an octal mode"), "{t}");
            assert_eq!(one(&p).code, Exit::Usage);
            assert_eq!(one(&p).position, Position::CommandLine);
        }
        let mut p = Vec::new();
        assert_eq!(umask(&val("027"), &mut p), Some(0o027));
        assert!(p.is_empty());
    }

    #[test]
    fn address_refuses_a_list_or_nothing() {
        for t in ["", "127.0.0.1,::1", "127.0.0.1 ::1", "a\tb"] {
            assert!(refused(address(&val(t))).contains("is not one host or IP address"));
        }
        for t in ["0", "127.0.0.1", "mail.example.org"] {
            assert_eq!(address(&val(t)), Ok(Family::Ipv4), "{t}");
        }
        assert_eq!(address(&val("::")), Ok(Family::Ipv6));
    }

    #[test]
    fn port_refuses_each_kind() {
        assert!(refused(port(&val("143,993"))).contains("is a list of addresses"));
        let (m, fix) = port(&val("127.0.0.1.143")).unwrap_err();
        assert!(m.contains("address.port form"), "{m}");
        assert_eq!(fix, "set address=127.0.0.1 and port=143");
        for t in ["0", "65536", "99999999999"] {
            assert!(refused(port(&val(t))).contains("is out of range"), "{t}");
        }
        for t in ["", "no-such-service-here", "-1"] {
            assert!(
                refused(port(&val(t))).contains("neither a number nor a TCP service name"),
                "{t}"
            );
        }
        assert_eq!(port(&val("143")), Ok(Some(143)));
        assert_eq!(port_number("65535"), Some(65535));
    }

    #[test]
    fn tcpd_port_takes_couriertcpd_lists_only() {
        assert_eq!(tcpd_port(&val("143")), Ok(Some(143)));
        assert_eq!(tcpd_port(&val("127.0.0.1.143,993")), Ok(None));
        assert!(refused(tcpd_port(&val(""))).contains("port is empty"));
        assert!(refused(tcpd_port(&val("143,0"))).contains("\"0\" in port"));
    }

    #[test]
    fn conlimit_refuses_what_tcpserver_would_read_as_zero() {
        for t in ["0", "", "-1", "+4", "four", "4x", "99999999999"] {
            assert!(
                refused(conlimit(&val(t))).contains("is not a positive number"),
                "{t}"
            );
        }
        assert_eq!(conlimit(&val("40")), Ok(40));
    }

    #[test]
    fn checked_gives_the_stand_in_and_reports() {
        let mut p = Vec::new();
        let v = checked(Some(val("0")), conlimit, ("40", 40), &mut p);
        assert_eq!((v.text.as_str(), v.stand_in, v.value), ("40", true, 40));
        assert_eq!(v.origin, Origin::CommandLine);
        assert_eq!(one(&p).subject, Subject::Settings);
        let mut p = Vec::new();
        let v = checked(Some(val("7")), conlimit, ("40", 40), &mut p);
        assert_eq!((v.text.as_str(), v.stand_in, v.value), ("7", false, 7));
        assert!(p.is_empty());
    }

    #[test]
    fn derived_prefers_the_setting_then_the_config_then_the_fallback() {
        let vars: Vec<Assignment> = scope("MAXDAEMONS=12\nPORT=1143\n")
            .vars()
            .into_iter()
            .cloned()
            .collect();
        let s = settings("port=2143\n");
        let cfg = SettingSources {
            settings: &s,
            vars: &vars,
            service_dir: Path::new("."),
        };
        let port = cfg.derived(Name::Port, "PORT", Some("143")).unwrap();
        assert_eq!(port.text, "2143");
        assert!(matches!(port.origin, Origin::File(_)));
        let c = cfg
            .derived(Name::Conlimit, "MAXDAEMONS", Some("40"))
            .unwrap();
        assert_eq!(c.text, "12");
        let Origin::File(pos) = &c.origin else {
            panic!("{:?}", c.origin)
        };
        assert!(pos.file.ends_with("imapd"), "{pos}");
        let a = cfg.derived(Name::Address, "ADDRESS", Some("0")).unwrap();
        assert_eq!((a.text.as_str(), &a.origin), ("0", &Origin::Default));
        assert!(cfg.derived(Name::Umask, "-", None).is_none());
    }

    #[test]
    fn lookup_refuses_an_unknown_account() {
        let s = settings("account=no-such-account-courier-run\n");
        let mut p = Vec::new();
        assert!(lookup(&s, Name::Account, &mut p).is_none());
        let p = one(&p);
        assert_eq!(p.code, Exit::Usage);
        assert!(p.message.contains("unknown account"), "{}", p.message);
        assert!(matches!(p.position, Position::At(_)), "{:?}", p.position);
        // Empty: no account, no problem.
        let s = settings("account=\n");
        let mut p = Vec::new();
        assert!(lookup(&s, Name::Account, &mut p).is_none());
        assert!(p.is_empty());
        let s = settings("account=root\n");
        assert_eq!(lookup(&s, Name::Account, &mut p).map(|a| a.uid), Some(0));
    }

    #[test]
    fn envdir_refuses_what_cannot_be_replaced_whole() {
        let mut p = Vec::new();
        assert!(envdir_path(&settings("envdir=.\n"), &mut p).is_none());
        assert!(one(&p).message.contains("names no directory of its own"));
        let long = "e".repeat(255);
        let mut p = Vec::new();
        assert!(envdir_path(&settings(&format!("envdir={long}\n")), &mut p).is_none());
        assert!(one(&p).message.contains("bytes long"));
        // An existing file that is not a directory.
        let mut p = Vec::new();
        assert!(envdir_path(&settings("envdir=/etc/passwd\n"), &mut p).is_none());
        assert!(one(&p).message.contains("is not a directory"));
        assert_eq!(one(&p).code, Exit::Usage);
        let mut p = Vec::new();
        assert_eq!(
            envdir_path(&settings("envdir=/nonexistent/env\n"), &mut p),
            Some(PathBuf::from("/nonexistent/env"))
        );
        assert!(p.is_empty());
        assert_eq!(envdir_path(&settings("envdir=\n"), &mut p), None);
        assert!(p.is_empty());
    }

    #[test]
    fn choice_refuses_a_third_value_and_stands_in_with_the_first() {
        let mut p = Vec::new();
        let s = settings("stderr=sometimes\n");
        assert!(choice(&s, Name::Stderr, ["merge", "keep"], &mut p));
        assert!(one(&p).message.contains("is neither merge nor keep"));
        let mut p = Vec::new();
        let s = settings("stderr=keep\n");
        assert!(!choice(&s, Name::Stderr, ["merge", "keep"], &mut p));
        assert!(p.is_empty());
    }

    #[test]
    fn inherit_refuses_a_name_that_is_not_a_variable() {
        let mut p = Vec::new();
        let s = settings("inherit_env='PATH A-B'\n");
        assert_eq!(inherit(&s, &mut p), Inherit::All);
        assert!(one(&p).message.contains("A-B is not a variable name"));
        let mut p = Vec::new();
        let s = settings("inherit_env='PATH TZ'\n");
        assert_eq!(
            inherit(&s, &mut p),
            Inherit::Names(vec![b"PATH".to_vec(), b"TZ".to_vec()])
        );
        assert_eq!(
            inherit(&settings("inherit_env=none\n"), &mut p),
            Inherit::Nothing
        );
        assert!(p.is_empty());
    }

    #[test]
    fn ulimit_v_and_softlimit_refuse_what_limits_refuses() {
        let mut p = Vec::new();
        assert_eq!(ulimit_v(val("lots"), &mut p), None);
        assert!(one(&p).message.starts_with("ulimit_v \"lots\""), "{:?}", p);
        let mut p = Vec::new();
        assert_eq!(ulimit_v(val(""), &mut p), None);
        assert_eq!(
            ulimit_v(val("unlimited"), &mut p),
            Some((None, Origin::CommandLine))
        );
        assert_eq!(
            ulimit_v(val("1024"), &mut p),
            Some((Some(1024 * 1024), Origin::CommandLine))
        );
        assert!(p.is_empty());
        let s = settings("softlimit='-m lots'\n");
        let soft = softlimit(&s, &mut p);
        assert!(soft.limits.is_empty());
        assert_eq!(soft.words, ["-m", "lots"]);
        assert!(one(&p).message.starts_with("softlimit \""), "{:?}", p);
        assert!(matches!(one(&p).position, Position::At(_)));
        let mut p = Vec::new();
        assert_eq!(umask_of(val(""), &mut p), None);
        assert_eq!(
            umask_of(val("022"), &mut p),
            Some((0o22, Origin::CommandLine))
        );
        assert!(p.is_empty());
    }
}
