//! couriertcpd as Courier's rc runs it: its own options from the rc's
//! outer scope, and the access list makedat compiles for it.

use std::path::{Path, PathBuf};

use crate::access;
use crate::config::Scope;
use crate::error::{Exit, Position, Problem, Subject, exit_code};
use crate::frontend::{self, RulesFormat};
use crate::service::Service;
use crate::settings::{Name, Origin, Settings};

use super::front::{AccessList, Front};
use super::values::SettingSources;

/// couriertcpd as Courier's rc runs it: `-maxperip=$MAXPERIP`, the imapd
/// services' `-access=$IMAPACCESSFILE.dat` (IMAPACCESSFILE defaulting to
/// SYSCONFDIR/imapaccess, as the rc's `${IMAPACCESSFILE:=...}`; built by
/// makedat when missing or older than the list), `$TCPDOPTS` split as the
/// rc's inner shell splits it. The values are the rc's OUTER shell's: it
/// pastes them into the inner script.
pub(super) fn tcpd_front(
    cfg: &SettingSources,
    outer: &Scope,
    maxperip: Option<u32>,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Front {
    use crate::couriertcpd;
    let settings = cfg.settings;
    let tcpdopts = tcpdopts(outer, problems);
    let rules = settings.get(Name::Rules);
    let rules_given =
        !matches!(rules.origin, Origin::Default) && !settings.str(Name::Rules).is_empty();
    let source = tcpd_access_source(settings, outer, rules_given);
    let mut access_step = None;
    let mut dat = None;
    if rules_given {
        if source.as_ref().is_some_and(|l| l.explicit) {
            problems.push(Problem::bad(
                Subject::Settings,
                rules.origin.position(),
                "rules and access are both given: couriertcpd reads one -access",
                "set rules= (empty) to build the access list, or access= (empty) to use rules",
            ));
        }
        // A .dat built elsewhere, passed as it is; a cdb or a directory
        // (another front end's rules) would be misread by couriertcpd.
        let r = settings.str(Name::Rules);
        if let Ok(frontend::Detected::Format(f)) = frontend::detect(Path::new(r)) {
            problems.push(Problem::bad(
                Subject::Rules,
                rules.origin.position(),
                frontend::mismatch(&frontend::COURIERTCPD, r, f),
                "",
            ));
        }
        dat = Some(PathBuf::from(r));
    } else if let Some(list) = source {
        let out = crate::makedat::dat_path(&list.path);
        access_step = tcpd_access(&list, &out, outer, problems, warnings);
        dat = Some(out);
    }
    Front {
        spec: &frontend::COURIERTCPD,
        known: true,
        maxperip,
        rules: dat
            .as_ref()
            .map(|d| (d.to_string_lossy().into_owned(), RulesFormat::CourierDat)),
        access: access_step,
        tcpd: Some(couriertcpd::Opts {
            maxperip: outer_text(outer, "MAXPERIP").unwrap_or_default(),
            access: dat,
            tcpdopts,
        }),
        options: None,
    }
}

/// A variable of the rc's outer scope, as text.
fn outer_text(outer: &Scope, name: &str) -> Option<String> {
    outer
        .get(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Where the rc's outer scope assigned `name` (its value's position).
fn outer_pos(outer: &Scope, name: &str) -> Position {
    outer
        .assignments()
        .iter()
        .rev()
        .find(|a| a.name == name)
        .map_or(Position::Nowhere, |a| Position::At(a.value_pos.to_string()))
}

/// `$TCPDOPTS` split as the rc's inner shell splits it; a value the rc
/// would not pass as written is a problem (and no options).
fn tcpdopts(outer: &Scope, problems: &mut Vec<Problem>) -> Vec<String> {
    match outer_text(outer, "TCPDOPTS") {
        None => Vec::new(),
        Some(t) => crate::couriertcpd::words(&t).unwrap_or_else(|why| {
            problems.push(Problem::bad(
                Subject::Config,
                outer_pos(outer, "TCPDOPTS"),
                format!(
                    "TCPDOPTS holds {why}: Courier's rc pastes it into a shell command, which would not pass it as written"
                ),
                "write plain -name=value words, with '...' around a value that has blanks",
            ));
            Vec::new()
        }),
    }
}

/// couriertcpd's access list: access=, else (imapd services without
/// rules=) IMAPACCESSFILE, defaulting to SYSCONFDIR/imapaccess as the rc's
/// `${IMAPACCESSFILE:=...}` does.
fn tcpd_access_source(settings: &Settings, outer: &Scope, rules_given: bool) -> Option<AccessList> {
    let acc = settings.get(Name::Access);
    match &acc.value {
        Some(v) if v.is_empty() => None,
        Some(v) => Some(AccessList {
            path: PathBuf::from(v),
            pos: acc.origin.position(),
            explicit: true,
        }),
        // Debian's pop3d rc scripts pass no access list.
        None if settings.service.protocol() == crate::service::Protocol::Imap && !rules_given => {
            let f = outer_text(outer, "IMAPACCESSFILE")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| {
                    format!(
                        "{}/imapaccess",
                        Service::config_dir(settings.layout, settings.prefix.as_str())
                    )
                });
            Some(AccessList {
                path: PathBuf::from(f),
                pos: outer_pos(outer, "IMAPACCESSFILE"),
                explicit: false,
            })
        }
        None => None,
    }
}

/// The access list makedat compiles into `out` before couriertcpd starts.
/// Fail closed, as for the other front ends: a list the run file or the
/// config names that is missing, unreadable or not regular files stops
/// the launch (makedat would hang on a FIFO, and couriertcpd without its
/// .dat accepts every client). Only the rc's own default,
/// /etc/courier/imapaccess with IMAPACCESSFILE unset, may be absent (a
/// warning).
fn tcpd_access(
    list: &AccessList,
    out: &Path,
    outer: &Scope,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<String>,
) -> Option<access::Step> {
    let src = &list.path;
    let configured =
        list.explicit || outer_text(outer, "IMAPACCESSFILE").is_some_and(|v| !v.is_empty());
    match access::read(src).and_then(|_| access::stamp(src)) {
        Ok(stamp) => {
            return Some(access::Step {
                source: src.clone(),
                output: out.to_path_buf(),
                format: RulesFormat::CourierDat,
                ipv6: true,
                fresh: false,
                stamp,
            });
        }
        Err(e) if configured || src.exists() => {
            let name = if list.explicit {
                "access"
            } else {
                "IMAPACCESSFILE"
            };
            let code = exit_code(&e);
            problems.push(Problem::new(
                code,
                Subject::Access,
                if code == Exit::Usage {
                    Position::Nowhere
                } else {
                    list.pos.clone()
                },
                crate::error::describe(&e),
                format!(
                    "{name} names it; fix or create it, or set access= (empty) to run without an access list"
                ),
            ));
        }
        Err(_) => warnings.push(format!(
            "{} (Courier's default access list) does not exist: couriertcpd accepts every client",
            crate::shown::path(src)
        )),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::front::tests::{file, front_of};
    use super::super::tests_support::one;
    use super::*;
    use crate::frontend::tests_support::tempdir;

    #[test]
    fn couriertcpd_refuses_tcpdopts_the_rc_would_not_pass() {
        let g = front_of(
            "server=couriertcpd\nprefix=/nonexistent/courier\n",
            "TCPDOPTS='-nodnslookup ; true'\n",
            "0",
        );
        let p = one(&g.problems);
        assert!(p.message.starts_with("TCPDOPTS holds"), "{}", p.message);
        assert!(matches!(p.position, Position::At(_)));
        let g = front_of(
            "server=couriertcpd\nprefix=/nonexistent/courier\n",
            "TCPDOPTS='-nodnslookup -noidentlookup'\n",
            "0",
        );
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        let opts = g.front.tcpd.expect("couriertcpd's options");
        assert_eq!(opts.tcpdopts, ["-nodnslookup", "-noidentlookup"]);
    }

    #[test]
    fn couriertcpd_reads_one_access_list() {
        let list = file("127.0.0.1\tallow\n");
        let run = format!(
            "server=couriertcpd\nrules=/r.dat\naccess={}\n",
            list.display()
        );
        let g = front_of(&run, "", "0");
        assert!(
            g.problems
                .iter()
                .any(|p| p.message.contains("couriertcpd reads one -access")),
            "{:?}",
            g.problems
        );
    }

    #[test]
    fn couriertcpd_refuses_another_front_ends_rules() {
        let dir = tempdir("front-tcpd-rules").expect("a temp dir");
        let run = format!("server=couriertcpd\nrules={}\naccess=\n", dir.display());
        let g = front_of(&run, "", "0");
        assert_eq!(one(&g.problems).subject, Subject::Rules);
    }

    #[test]
    fn couriertcpd_a_configured_access_list_must_exist_the_default_may_not() {
        let run = "server=couriertcpd\nprefix=/nonexistent/courier\n";
        let g = front_of(run, "IMAPACCESSFILE=/nonexistent/imapaccess\n", "0");
        let p = one(&g.problems);
        assert_eq!(p.subject, Subject::Access);
        assert!(p.fix.starts_with("IMAPACCESSFILE names it"), "{}", p.fix);
        // The rc's own default, absent: a warning, and couriertcpd runs.
        let g = front_of(run, "", "0");
        assert!(g.problems.is_empty(), "{:?}", g.problems);
        assert!(
            g.warnings
                .iter()
                .any(|w| w.contains("Courier's default access list")),
            "{:?}",
            g.warnings
        );
    }
}
