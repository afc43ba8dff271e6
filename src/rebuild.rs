//! Applying an edited access list: the launch's build step and
//! `courier-run ./run --rebuild-access`.
//!
//! tcpserver and tcpsvd open their cdb on every connection: rebuilding it
//! atomically is enough. couriertcpd reads its `.dat` at start and again on
//! SIGHUP only (a rebuilt `.dat` without the HUP is not seen): so after
//! makedat, the HUP goes through the service's supervisor, as Debian's
//! `makeimapaccess` sends it through a pid file (`couriertcpd -restart`).
//! Same process, no dropped connection.

use std::io::Write;
use std::path::Path;

use crate::access::Step;
use crate::error::{Exit, bad_input, coded};
use crate::frontend::RulesFormat;
use crate::plan::Plan;
use crate::supervise;

/// Build the plan's compiled access list: when it is older than the list
/// (a launch), or always (`force`). Returns the conversion's warnings.
pub fn build(plan: &Plan, a: &Step, force: bool) -> anyhow::Result<Vec<String>> {
    if a.format == RulesFormat::CourierDat {
        let s = &plan.settings;
        if force || crate::makedat::stale(&a.source, &a.output)? {
            let m = crate::makedat::program(s.layout, s.prefix.as_str());
            crate::makedat::build(&m, &a.source, &a.output)?;
        }
        return Ok(Vec::new());
    }
    // Fresh by content (access::build): a forced rebuild writes only
    // when the list compiles to other bytes than the rules hold.
    let built = if force {
        crate::access::build(&a.source, &a.output, a.format, a.ipv6)?
    } else {
        crate::access::build_step(a)?
    };
    Ok(match built {
        crate::access::Built::UpToDate => Vec::new(),
        crate::access::Built::Written(w) => w,
    })
}

/// `--rebuild-access`: rebuild, then (couriertcpd) HUP through the
/// supervisor of `service_dir`. Exit 100 when the plan has no access list,
/// 111 when the supervisor cannot be told or reached.
pub fn run(plan: &Plan, service_dir: &Path) -> anyhow::Result<Exit> {
    let Some(a) = &plan.access else {
        return Err(bad_input(
            "no access list to rebuild: set access= (or IMAPACCESSFILE in the config) to Courier's access list",
        ));
    };
    let warnings = build(plan, a, true)?;
    let mut out = std::io::stdout().lock();
    for w in warnings {
        let _ = writeln!(out, "courier-run: warning: {}", crate::error::printable(&w));
    }
    let _ = writeln!(
        out,
        "rebuilt {} from {} ({})",
        a.output.display(),
        a.source.display(),
        a.format.describe()
    );
    if a.format != RulesFormat::CourierDat {
        let _ = writeln!(
            out,
            "the front end reads it on every connection: in effect now, no restart"
        );
        return Ok(Exit::Ok);
    }
    // couriertcpd reloads its .dat on SIGHUP only.
    let Some(kind) = supervise::detect(service_dir) else {
        return Err(coded(
            Exit::System,
            format!(
                "unable to tell which supervisor runs {} (no supervise/ of daemontools, runit or s6 there): couriertcpd still reads the old list until it gets SIGHUP; send it one yourself",
                service_dir.display()
            ),
        ));
    };
    supervise::signal(kind, service_dir, supervise::Signal::Hup)?;
    let _ = writeln!(
        out,
        "sent SIGHUP to couriertcpd through {} ({} {}): it reloads the list, same process",
        kind.name(),
        kind.hup_command(),
        service_dir.display()
    );
    Ok(Exit::Ok)
}
