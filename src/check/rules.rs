//! Check 6: the `-x` rules cdb. tcpserver does not refuse a missing or
//! broken one at startup: it drops every connection ("unable to read").

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::server::Flags;
use super::{Ctx, Report, errstr};
use crate::error::Subject;

/// Which rules the front end reads decides what is checked: Courier's
/// access list (as couriertcpd's .dat or compiled for tcpserver/tcpsvd),
/// couriertcpd's own -access, an ipsvd directory, or a tcprules cdb.
pub fn check(ctx: &Ctx, f: &Flags, r: &mut Report) {
    let front = &ctx.r.front;
    // Courier's access list: converted on start (resolve parsed it, so a
    // bad line is already a problem, and so are compiled rules that are
    // stale and cannot be rebuilt); the output may not exist yet.
    if let Some(a) = &front.access
        && a.format == crate::frontend::RulesFormat::CourierDat
    {
        dat(ctx, a, r);
        return;
    }
    if front.spec.kind == crate::frontend::Kind::Couriertcpd {
        couriertcpd_access(&front.rules, r);
        return;
    }
    if let Some(a) = &front.access {
        compiled_access(a, r);
        return;
    }
    // An access list that failed (its FAIL is above) replaces the rules:
    // nothing more to say about them.
    if ctx.reported(&Subject::Access) {
        return;
    }
    // The front end's format (resolve FAILs a mismatch); an instructions
    // directory has no cdb to check.
    if let Some((dir, crate::frontend::RulesFormat::IpsvdDir)) = &front.rules {
        r.ok(format!("rules {dir} (an ipsvd instructions directory)"));
        return;
    }
    let rules = match ctx.r.rules.as_deref() {
        None => match f.value('x') {
            Some(x) => x.to_string(),
            None => {
                r.info(
                    Subject::Rules,
                    format!("none: {} accepts every client", ctx.r.front.spec.name),
                );
                return;
            }
        },
        Some(x) => x.to_string(),
    };
    cdb(&rules, f.has('X'), r);
}

/// couriertcpd with no list to build: a .dat given as rules=, or the rc's
/// -access to a list that does not exist, or none (pop3d). couriertcpd
/// accepts every client when its file is missing, so that is a WARN.
fn couriertcpd_access(rules: &Option<(String, crate::frontend::RulesFormat)>, r: &mut Report) {
    match rules {
        Some((p, _)) if Path::new(p).exists() => r.ok(format!(
            "rules {} (couriertcpd -access, as it is)",
            crate::shown::path(p)
        )),
        Some((p, _)) => r.warn(
            format!("rules {}", crate::shown::path(p)),
            "does not exist: couriertcpd logs that and accepts every client",
            "create the access list (IMAPACCESSFILE) and run courier-run ./run --rebuild-access",
        ),
        None => r.info(Subject::Rules, "none: couriertcpd accepts every client"),
    }
}

/// Courier's access list compiled for tcpserver/tcpsvd: rebuilt on start;
/// a running front end reads the cdb on every connection, so rules that
/// differ from what the list compiles to (by content) are what is in
/// force now.
fn compiled_access(a: &crate::access::Step, r: &mut Report) {
    if !a.fresh && a.output.exists() {
        r.warn(
            format!("access {}", crate::shown::path(&a.source)),
            format!(
                "{} differs from what the list compiles to (compiled on start): the rules in force now are not the list's",
                crate::shown::path(&a.output)
            ),
            "courier-run ./run --rebuild-access (in effect at once, no restart)",
        );
        return;
    }
    r.ok(format!(
        "access {} -> {} ({}, {})",
        crate::shown::path(&a.source),
        crate::shown::path(&a.output),
        a.format.describe(),
        if a.fresh {
            "up to date"
        } else {
            "compiled on start: the rules there differ from the list"
        }
    ));
}

/// A tcprules cdb as tcpserver reads it: missing (a FAIL: every
/// connection dropped, unless `-X` makes it a WARN), unreadable, not a
/// well-formed cdb, or older than its source (changes not in effect).
fn cdb(rules: &str, missing_ok: bool, r: &mut Report) {
    let what = format!("rules {rules}");
    let path = Path::new(rules);
    let rebuild = match source(path) {
        Some(src) => format!("rebuild it: {}", tcprules(path, &src)),
        None => "build it with tcprules".to_string(),
    };
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && missing_ok => {
            r.warn(
                what,
                "does not exist: with -X, tcpserver accepts every client",
                rebuild,
            );
            return;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            r.fail(
                what,
                "does not exist: tcpserver would drop every connection",
                format!("{rebuild}, or set rules= for none"),
            );
            return;
        }
        Err(e) => {
            r.fail(
                what,
                format!(
                    "unable to read: {}: tcpserver would drop every connection",
                    errstr(&e)
                ),
                "",
            );
            return;
        }
    };
    let records = match crate::cdb::verify(&data) {
        Ok(n) => n,
        Err(why) => {
            r.fail(what, format!("is not a well-formed cdb: {why}"), rebuild);
            return;
        }
    };
    if let Some(src) = older_than_source(path) {
        r.warn(
            what,
            format!(
                "older than its source {}: changes there are not in effect",
                crate::shown::path(&src)
            ),
            format!("rebuild it: {}", tcprules(path, &src)),
        );
        return;
    }
    r.ok(format!("{what} ({records} rules)"));
}

/// The source of `cdb` when it was changed after the cdb was built (by
/// mtime to the nanosecond; an unreadable time says nothing).
fn older_than_source(cdb: &Path) -> Option<PathBuf> {
    let src = source(cdb)?;
    let mtime = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| (m.mtime(), m.mtime_nsec()))
            .ok()
    };
    match (mtime(&src), mtime(cdb)) {
        (Some(s), Some(c)) if s > c => Some(src),
        _ => None,
    }
}

/// The rules file the cdb is built from: `imap.rules` for `imap.cdb`, or
/// `tcp.imap` for `tcp.imap.cdb`, if one exists beside it.
fn source(cdb: &Path) -> Option<PathBuf> {
    let s = cdb.to_str()?;
    let stem = s.strip_suffix(".cdb")?;
    [format!("{stem}.rules"), stem.to_string()]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn tcprules(cdb: &Path, src: &Path) -> String {
    let tmp = cdb.with_extension("tmp");
    format!(
        "tcprules {} {} < {}",
        crate::shown::path(cdb),
        crate::shown::path(&tmp),
        crate::shown::path(src)
    )
}

/// couriertcpd's `.dat`: makedat is installed, Net::CIDR is when the list
/// has CIDR or range lines (without it makedat keeps them as written, and
/// couriertcpd never matches them), and the `.dat` is not older than the
/// list (couriertcpd reads it at start and on SIGHUP only).
fn dat(ctx: &Ctx, a: &crate::access::Step, r: &mut Report) {
    let s = &ctx.r.settings;
    let what = format!("access {}", a.source.display());
    let m = crate::makedat::program(s.layout, s.prefix.as_str());
    let stale = crate::makedat::stale(&a.source, &a.output).unwrap_or(true);
    if !m.exists() {
        r.fail(
            what,
            format!(
                "{} is not installed: {} cannot be built",
                m.display(),
                a.output.display()
            ),
            "install courier-base",
        );
        return;
    }
    let cidr = crate::makedat::cidr_lines(&a.source);
    if !cidr.is_empty() && !crate::makedat::net_cidr_installed() {
        r.fail(
            what,
            format!(
                "{}: a CIDR block or range, and Perl's Net::CIDR is not installed: makedat -cidr would keep it as written and couriertcpd would never match it",
                cidr.join(", ")
            ),
            "apt-get install libnet-cidr-perl, then courier-run ./run --rebuild-access",
        );
        return;
    }
    if stale && a.output.exists() {
        r.warn(
            what,
            format!(
                "{} is older than the list: a running couriertcpd reads the old rules (a start rebuilds it)",
                a.output.display()
            ),
            "courier-run ./run --rebuild-access (makedat, then SIGHUP: no restart)",
        );
        return;
    }
    r.ok(format!(
        "{what} -> {} ({}, built by makedat when missing or older)",
        a.output.display(),
        a.format.describe()
    ));
}

#[cfg(test)]
mod tests {
    use crate::cdb::hash;
    use crate::check::Status;

    /// A cdb as cdbmake writes it.
    fn make(records: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = vec![0u8; 2048];
        let mut entries: Vec<(u32, u32)> = Vec::new();
        for (k, d) in records {
            entries.push((hash(k), out.len() as u32));
            out.extend((k.len() as u32).to_le_bytes());
            out.extend((d.len() as u32).to_le_bytes());
            out.extend(*k);
            out.extend(*d);
        }
        for i in 0..256u32 {
            let mine: Vec<&(u32, u32)> = entries.iter().filter(|(h, _)| h % 256 == i).collect();
            let slots = (mine.len() * 2) as u32;
            let pos = out.len() as u32;
            out[(i * 8) as usize..(i * 8 + 4) as usize].copy_from_slice(&pos.to_le_bytes());
            out[(i * 8 + 4) as usize..(i * 8 + 8) as usize].copy_from_slice(&slots.to_le_bytes());
            let mut table = vec![(0u32, 0u32); slots as usize];
            for &&(h, p) in &mine {
                let mut j = ((h >> 8) % slots) as usize;
                while table[j].1 != 0 {
                    j = (j + 1) % slots as usize;
                }
                table[j] = (h, p);
            }
            for (h, p) in table {
                out.extend(h.to_le_bytes());
                out.extend(p.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn cdb_good_and_bad() {
        let good = make(&[
            (b"127.0.0.1", b"+"),
            (b"", b"-"),
            (b"10.", b"+RELAYCLIENT=\"\""),
        ]);
        assert_eq!(crate::cdb::verify(&good), Ok(3));
        assert_eq!(crate::cdb::verify(&make(&[])), Ok(0));
        assert!(
            crate::cdb::verify(b"x")
                .unwrap_err()
                .contains("shorter than")
        );
        assert!(
            crate::cdb::verify(&good[..good.len() - 4])
                .unwrap_err()
                .contains("runs past the end")
        );
        let mut bad = good.clone();
        bad[2048] = 200; // the first key's length
        assert!(crate::cdb::verify(&bad).is_err());
        let mut bad = good;
        bad[2048 + 8] ^= 1; // the first key's first byte: wrong hash
        assert!(
            crate::cdb::verify(&bad)
                .unwrap_err()
                .contains("wrong hash table")
        );
    }

    /// What `--check` says of a tcprules cdb: one line, its status and
    /// its text.
    fn said(rules: &std::path::Path, missing_ok: bool) -> (Status, String) {
        let mut r = super::Report::default();
        super::cdb(rules.to_str().unwrap(), missing_ok, &mut r);
        let items = r.items();
        assert_eq!(items.len(), 1);
        (items[0].status, items[0].line())
    }

    /// Missing (FAIL; WARN under -X), not a cdb (FAIL), older than its
    /// source (WARN naming tcprules), good (ok with its record count).
    #[test]
    fn cdb_refusals_and_staleness() {
        let dir = std::env::temp_dir().join(format!("cr-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cdb = dir.join("imap.cdb");
        let (status, line) = said(&cdb, false);
        assert_eq!(status, Status::Fail, "{line}");
        assert!(
            line.contains("tcpserver would drop every connection"),
            "{line}"
        );
        let (status, line) = said(&cdb, true);
        assert_eq!(status, Status::Warn, "{line}");
        assert!(
            line.contains("with -X, tcpserver accepts every client"),
            "{line}"
        );

        std::fs::write(&cdb, b"x").unwrap();
        let (status, line) = said(&cdb, false);
        assert_eq!(status, Status::Fail, "{line}");
        assert!(line.contains("is not a well-formed cdb"), "{line}");

        std::fs::write(&cdb, make(&[(b"127.0.0.1", b"+"), (b"", b"-")])).unwrap();
        let src = dir.join("imap.rules");
        std::fs::write(&src, "127.0.0.1:allow\n:deny\n").unwrap();
        let at = |p: &std::path::Path, secs: u64| {
            let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
            std::fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        at(&cdb, 1_000_000);
        at(&src, 2_000_000);
        let (status, line) = said(&cdb, false);
        assert_eq!(status, Status::Warn, "{line}");
        assert!(line.contains("older than its source"), "{line}");
        assert!(line.contains("tcprules "), "{line}");
        at(&cdb, 3_000_000);
        let (status, line) = said(&cdb, false);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(status, Status::Ok, "{line}");
        assert!(line.ends_with("(2 rules)"), "{line}");
    }

    /// The cdb is untrusted bytes: random mutations of a good one must give
    /// Ok or Err, never a panic or an endless loop.
    #[test]
    fn cdb_mutations_never_panic() {
        let good = make(&[(b"127.0.0.1", b"+"), (b"", b"-"), (b"10.", b"+X=\"1\"")]);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut accepted = 0;
        for _ in 0..20_000 {
            let mut d = good.clone();
            for _ in 0..=next() % 4 {
                let at = (next() % d.len() as u64) as usize;
                match next() % 3 {
                    0 => d[at] = next() as u8,
                    1 => d.truncate(at.max(1)),
                    _ => d
                        .splice(at..at, (next() as u32).to_le_bytes())
                        .for_each(drop),
                }
            }
            if crate::cdb::verify(&d).is_ok() {
                accepted += 1;
            }
        }
        // Some mutations land in unused bytes (or a record's data) and stay valid.
        assert!(accepted > 0);
    }
}
