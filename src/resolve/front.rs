//! The front end (tcpserver, tcpsvd, couriertcpd) and what it is given:
//! MAXPERIP, rules, Courier's access list (couriertcpd's own: [`super::tcpd`]).

use std::path::{Path, PathBuf};

use crate::access;
use crate::config::{Assignment, Scope};
use crate::error::{Exit, Position, Problem, Subject, exit_code};
use crate::frontend::{self, RulesFormat};
use crate::settings::{Name, Origin, Settings};

use super::values::{Checked, Family, SettingSources};

/// The front end and the values that become its own arguments.
#[derive(Clone, Debug)]
pub struct Front {
    pub spec: &'static frontend::Spec,
    /// `server` names tcpserver, tcpsvd or couriertcpd (its options are
    /// known).
    pub known: bool,
    /// Courier's MAXPERIP (tcpsvd -C; tcpserver has no per-IP limit).
    pub maxperip: Option<u32>,
    /// The rules it is given, in its format.
    pub rules: Option<(String, RulesFormat)>,
    /// Courier's access list, converted into `rules` before exec (for
    /// couriertcpd: compiled by makedat into its `.dat`).
    pub access: Option<access::Step>,
    /// couriertcpd's own options (None for the other front ends).
    pub tcpd: Option<crate::couriertcpd::Opts>,
    /// `server`'s words after the program, as tcpserver's or tcpsvd's
    /// getopt reads them (the first it does not know: a [`frontend::Trap`]);
    /// None for couriertcpd, whose options are Courier's rc's, and for a
    /// program courier-run does not know.
    pub options: Option<Result<ServerOptions, frontend::Trap>>,
}

/// A front end's options in order, each with its value if it takes one.
pub type ServerOptions = Vec<(char, Option<String>)>;

/// Courier's MAXPERIP: a number, or empty for none (else reported).
fn maxperip(vars: &[Assignment], problems: &mut Vec<Problem>) -> Option<u32> {
    vars.iter()
        .rev()
        .find(|a| a.name == "MAXPERIP")
        .and_then(|a| {
            let v = String::from_utf8_lossy(&a.value);
            match v.parse::<u32>() {
                Ok(n) => Some(n),
                Err(_) if v.is_empty() => None,
                Err(_) => {
                    problems.push(Problem::bad(
                        Subject::Config,
                        Position::At(a.value_pos.to_string()),
                        format!(
                            "MAXPERIP \"{}\" is not a number",
                            crate::shown::value(v.as_bytes())
                        ),
                        "write e.g. 4, or 0 for no per-IP limit",
                    ));
                    None
                }
            }
        })
}

/// A configured access list: its path, where it was named, and whether
/// `access=` named it (else the config's IMAPACCESSFILE).
pub(super) struct AccessList {
    pub(super) path: PathBuf,
    pub(super) pos: Position,
    pub(super) explicit: bool,
}

/// Where Courier's access list comes from: access=, else IMAPACCESSFILE;
/// an explicit empty access=: none.
fn access_source(settings: &Settings, vars: &[Assignment]) -> Option<AccessList> {
    let acc_setting = settings.get(Name::Access);
    match &acc_setting.value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(AccessList {
            path: PathBuf::from(v),
            pos: acc_setting.origin.position(),
            explicit: true,
        }),
        None => vars
            .iter()
            .rev()
            .find(|a| a.name == "IMAPACCESSFILE" && !a.value.is_empty())
            .map(|a| AccessList {
                path: PathBuf::from(String::from_utf8_lossy(&a.value).into_owned()),
                pos: Position::At(a.value_pos.to_string()),
                explicit: false,
            }),
    }
}

/// Courier's access list converted for the front end (parsed here, so a
/// bad line stops the launch with its position); None on a problem
/// (reported).
fn compile_access(
    service_dir: &Path,
    list: &AccessList,
    out_format: RulesFormat,
    ipv6: bool,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<access::Step> {
    // Fail closed: a configured list that is missing, unreadable
    // or not a regular file (or a directory of them) stops the
    // launch; it never means "no rules".
    let stamp = access::stamp(&list.path);
    let compiled = stamp.and_then(|stamp| {
        let entries = access::read(&list.path)?;
        let c = access::convert(&entries, out_format, ipv6).map_err(crate::error::bad_input)?;
        Ok((crate::cdb::write(&c.records), c.warnings, stamp))
    });
    match compiled {
        Err(e) => {
            let code = exit_code(&e);
            let name = if list.explicit {
                "access"
            } else {
                "IMAPACCESSFILE"
            };
            let fix = if code == Exit::Usage {
                "fix it, or set access= (empty) to run without an access list".to_string()
            } else {
                format!(
                    "{name} names it; create it, or set access= (empty) to run without an access list"
                )
            };
            // A parse error carries its own file:line:col.
            let at = if code == Exit::Usage {
                Position::Nowhere
            } else {
                list.pos.clone()
            };
            problems.push(Problem::new(
                code,
                Subject::Access,
                at,
                crate::error::describe(&e),
                fix,
            ));
            None
        }
        Ok((bytes, conv_warnings, stamp)) => {
            warnings.extend(conv_warnings);
            let output = access::output_path(service_dir, &list.path, out_format);
            match access::probe(&output, &bytes) {
                Ok(fresh) => Some(access::Step {
                    output,
                    source: list.path.clone(),
                    format: out_format,
                    ipv6,
                    fresh,
                    stamp,
                }),
                Err(e) => {
                    problems.push(Problem::new(
                        exit_code(&e),
                        Subject::Access,
                        Position::Nowhere,
                        crate::error::describe(&e),
                        "",
                    ));
                    None
                }
            }
        }
    }
}

/// The rules file `rules=` names, in the format it holds; rules in a
/// format a known front end does not read are a problem (it would ignore
/// every rule).
fn given_rules(
    settings: &Settings,
    spec: &frontend::Spec,
    known: bool,
    problems: &mut Vec<Problem>,
) -> (String, RulesFormat) {
    let r = settings.str(Name::Rules).to_string();
    match frontend::detect(Path::new(&r)) {
        // A missing or unreadable file is --check's to report (it probes).
        Err(_) => (r, spec.reads[0]),
        Ok(d) => match (known, frontend::check_rules(spec, &r, &d)) {
            (_, Ok(f)) => (r, f.unwrap_or(spec.reads[0])),
            (false, Err(_)) => (r, spec.reads[0]),
            (true, Err(m)) => {
                problems.push(Problem::bad(
                    Subject::Rules,
                    settings.get(Name::Rules).origin.position(),
                    m,
                    "",
                ));
                (r, spec.reads[0])
            }
        },
    }
}

/// Resolve the front end: which one, MAXPERIP, the rules and their format
/// (a rules file in a format it does not read is a problem: it would
/// ignore every rule), Courier's access list (`access`, else
/// IMAPACCESSFILE; parsed here, so a bad line stops the launch with its
/// position), and whether it can bind an IPv6 address.
pub(super) fn front(
    cfg: &SettingSources,
    outer: &Scope,
    server: &[String],
    program: &Path,
    address: &Checked<Family>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Front {
    let settings = cfg.settings;
    let kind = server.first().and_then(|p| frontend::Kind::of(p));
    let spec = kind.unwrap_or(frontend::Kind::Tcpserver).spec();
    let maxperip = maxperip(cfg.vars, problems);
    if kind == Some(frontend::Kind::Couriertcpd) {
        return super::tcpd::tcpd_front(cfg, outer, maxperip, problems, warnings);
    }
    // Parsed once, here: --check reads the result (check/server.rs).
    let options = kind.map(|k| {
        let words: Vec<&str> = server.iter().skip(1).map(String::as_str).collect();
        frontend::getopt(k.spec(), &words)
    });
    // What couriertcpd would enforce and this front end cannot: a warning
    // on every --dry-run (and start), a FAIL of --check (check/server.rs).
    if let Some(n) = maxperip.filter(|&n| n > 0)
        && spec.per_ip.is_none()
        && kind.is_some()
    {
        warnings.push(format!(
            "MAXPERIP={n} is not enforced: {} has no per-IP limit (use server=couriertcpd, or tcpsvd -C)",
            spec.name
        ));
    }
    for (w, what) in tcpd_protections(outer)
        .into_iter()
        .filter(|_| kind.is_some())
    {
        warnings.push(format!(
            "TCPDOPTS {w} ({what}) is not enforced: only couriertcpd has it (use server=couriertcpd, or remove it from TCPDOPTS)"
        ));
    }
    // tcpserver is run once to learn whether it binds IPv6: the answer
    // serves both the address check and the access list's IPv6 lines.
    let v6 = address.value == Family::Ipv6;
    let v6_capable =
        v6 && kind.is_some() && frontend::probe_ipv6(spec.kind, program).unwrap_or(false);
    if v6 && !v6_capable {
        problems.push(Problem::bad(
            Subject::Settings,
            address.origin.position(),
            format!(
                "address {} is IPv6, and {} binds IPv4 only",
                address.text, spec.name
            ),
            "install ucspi-tcp-ipv6 (its tcpserver binds IPv6), or give an IPv4 address",
        ));
    }
    // The access list's IPv6 lines: only an IPv6 tcpserver bound to an IPv6
    // address can see IPv6 clients.
    let ipv6 = kind == Some(frontend::Kind::Tcpserver) && v6_capable;
    let out_format = match spec.kind {
        frontend::Kind::Tcpserver => RulesFormat::Tcprules,
        frontend::Kind::Tcpsvd => RulesFormat::IpsvdCdb,
        frontend::Kind::Couriertcpd => unreachable!("tcpd_front"),
    };
    let source = access_source(settings, cfg.vars);
    let rules_setting = settings.get(Name::Rules);
    let rules_given = !settings.str(Name::Rules).is_empty();
    let mut access_step = None;
    if let Some(list) = source {
        if rules_given && !matches!(rules_setting.origin, Origin::Default) {
            problems.push(Problem::bad(
                Subject::Settings,
                rules_setting.origin.position(),
                format!(
                    "rules and an access list ({}) are both given: the front end reads one",
                    crate::shown::path(&list.path)
                ),
                "set rules= (empty) to use the access list, or access= (empty) to use rules",
            ));
        } else {
            access_step =
                compile_access(cfg.service_dir, &list, out_format, ipv6, problems, warnings);
        }
    }
    let rules = if let Some(step) = &access_step {
        Some((step.output.to_string_lossy().into_owned(), step.format))
    } else if rules_given {
        Some(given_rules(settings, spec, kind.is_some(), problems))
    } else {
        None
    };
    Front {
        spec,
        known: kind.is_some(),
        maxperip,
        rules,
        access: access_step,
        tcpd: None,
        options,
    }
}

/// TCPDOPTS's couriertcpd-only options, as the rc's inner shell would
/// split the outer shell's value (none when it cannot be split).
pub fn tcpd_protections(outer: &Scope) -> Vec<(String, &'static str)> {
    let Some(v) = outer.get("TCPDOPTS") else {
        return Vec::new();
    };
    crate::couriertcpd::words(&String::from_utf8_lossy(v))
        .map(|w| crate::couriertcpd::protections(&w))
        .unwrap_or_default()
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests_support::{one, scope, settings};
    use super::*;
    use crate::config::Assignment;
    use crate::frontend::tests_support::tempdir;

    /// What [`front`] made of a run file and a config file.
    pub(in crate::resolve) struct Got {
        pub front: Front,
        pub problems: Vec<Problem>,
        pub warnings: Vec<String>,
    }

    pub(in crate::resolve) fn front_of(run: &str, config: &str, address: &str) -> Got {
        let settings = settings(run);
        let scope = scope(config);
        let vars: Vec<Assignment> = scope.vars().into_iter().cloned().collect();
        let service_dir = tempdir("front-service").expect("a temp dir");
        let cfg = SettingSources {
            settings: &settings,
            vars: &vars,
            service_dir: &service_dir,
        };
        let server: Vec<String> = settings
            .str(Name::Server)
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect();
        let address = Checked {
            text: address.into(),
            origin: Origin::CommandLine,
            stand_in: false,
            value: if frontend::is_ipv6(address) {
                Family::Ipv6
            } else {
                Family::Ipv4
            },
        };
        let (mut problems, mut warnings) = (Vec::new(), Vec::new());
        let front = front(
            &cfg,
            &scope,
            &server,
            Path::new(&server[0]),
            &address,
            &mut problems,
            &mut warnings,
        );
        let _ = std::fs::remove_dir_all(&service_dir);
        Got {
            front,
            problems,
            warnings,
        }
    }

    /// A file holding `text` in a fresh directory.
    pub(in crate::resolve) fn file(text: &str) -> PathBuf {
        let d = tempdir("front-file").expect("a temp dir");
        let p = d.join("imapaccess");
        std::fs::write(&p, text).expect("written");
        p
    }

    #[test]
    fn maxperip_must_be_a_number() {
        let g = front_of("server=tcpsvd\n", "MAXPERIP=lots\n", "0");
        let p = one(&g.problems);
        assert_eq!(p.subject, Subject::Config);
        assert!(p.message.contains("MAXPERIP \"lots\" is not a number"));
        assert!(matches!(p.position, Position::At(_)));
        let g = front_of("server=tcpsvd\n", "MAXPERIP=4\n", "0");
        assert!(g.problems.is_empty());
        assert_eq!(g.front.maxperip, Some(4));
    }

    #[test]
    fn maxperip_tcpserver_cannot_enforce_is_a_warning() {
        let g = front_of("server=tcpserver\n", "MAXPERIP=4\n", "0");
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert!(
            g.warnings
                .iter()
                .any(|w| w.starts_with("MAXPERIP=4 is not enforced")),
            "{:?}",
            g.warnings
        );
    }

    #[test]
    fn an_ipv6_address_needs_a_front_end_that_binds_it() {
        // tcpsvd binds IPv4 only: known without running it.
        let g = front_of("server='tcpsvd -v'\n", "", "::");
        let p = one(&g.problems);
        assert!(p.message.contains("is IPv6, and tcpsvd binds IPv4 only"));
        assert_eq!(p.position, Position::CommandLine);
        assert!(
            front_of("server='tcpsvd -v'\n", "", "127.0.0.1")
                .problems
                .is_empty()
        );
    }

    #[test]
    fn rules_and_an_access_list_are_not_both_given() {
        let list = file("127.0.0.1\tallow\n");
        let run = format!(
            "server=tcpserver\nrules=/r.cdb\naccess={}\n",
            list.display()
        );
        let g = front_of(&run, "", "0");
        let p = one(&g.problems);
        assert!(p.message.contains("are both given"), "{}", p.message);
        assert!(g.front.access.is_none());
    }

    #[test]
    fn a_missing_access_list_stops_the_launch() {
        let g = front_of(
            "server=tcpserver\naccess=/nonexistent/imapaccess\n",
            "",
            "0",
        );
        let p = one(&g.problems);
        assert_eq!(p.subject, Subject::Access);
        assert!(p.fix.starts_with("access names it"), "{}", p.fix);
        assert!(matches!(p.position, Position::At(_)));
        // The config's IMAPACCESSFILE, the same.
        let g = front_of(
            "server=tcpserver\n",
            "IMAPACCESSFILE=/nonexistent/imapaccess\n",
            "0",
        );
        assert!(one(&g.problems).fix.starts_with("IMAPACCESSFILE names it"));
        assert!(g.front.access.is_none());
    }

    #[test]
    fn a_bad_access_line_is_refused_with_its_own_position() {
        let list = file("1.2.3.4\tmaybe\n");
        let run = format!("server=tcpserver\naccess={}\n", list.display());
        let p = front_of(&run, "", "0").problems;
        let p = one(&p);
        assert_eq!(p.code, Exit::Usage);
        assert_eq!(p.position, Position::Nowhere);
        assert!(p.message.contains("is not an action"), "{}", p.message);
    }

    #[test]
    fn a_good_access_list_becomes_the_rules() {
        let list = file("127.0.0.1\tallow\n");
        let run = format!("server=tcpserver\naccess={}\n", list.display());
        let g = front_of(&run, "", "0");
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        let step = g.front.access.expect("an access step");
        assert_eq!(step.source, list);
        assert_eq!(step.format, RulesFormat::Tcprules);
        assert!(!step.ipv6);
        assert_eq!(
            g.front.rules,
            Some((
                step.output.to_string_lossy().into_owned(),
                RulesFormat::Tcprules
            ))
        );
    }

    #[test]
    fn rules_in_a_format_the_front_end_does_not_read_are_refused() {
        // A directory is tcpsvd's (-i); tcpserver would ignore every rule.
        let dir = tempdir("front-rules").expect("a temp dir");
        let run = format!("server=tcpserver\nrules={}\naccess=\n", dir.display());
        let g = front_of(&run, "", "0");
        assert_eq!(one(&g.problems).subject, Subject::Rules);
        let run = format!("server=tcpsvd\nrules={}\naccess=\n", dir.display());
        let g = front_of(&run, "", "0");
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert_eq!(g.front.rules.map(|r| r.1), Some(RulesFormat::IpsvdDir));
    }

    #[test]
    fn server_options_are_parsed_once_with_the_front_ends_getopt() {
        let g = front_of("server='tcpserver -v -RH -l0 -u 1000'\n", "", "0");
        assert_eq!(
            g.front.options,
            Some(Ok(vec![
                ('v', None),
                ('R', None),
                ('H', None),
                ('l', Some("0".into())),
                ('u', Some("1000".into())),
            ]))
        );
        // A word tcpserver's getopt does not take: the trap --check reports.
        let g = front_of("server='tcpserver -v 0'\n", "", "0");
        assert!(
            matches!(g.front.options, Some(Err(_))),
            "{:?}",
            g.front.options
        );
        let g = front_of("server='tcpsvd -vC4:busy'\n", "", "0");
        assert!(matches!(g.front.options, Some(Ok(ref o)) if o.len() == 2));
        let g = front_of("server=couriertcpd\nprefix=/nonexistent/c\n", "", "0");
        assert!(g.front.options.is_none());
        let g = front_of("server='/bin/true -x'\n", "", "0");
        assert!(g.front.options.is_none());
    }
}
