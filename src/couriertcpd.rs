//! couriertcpd, Courier's own front end, as Debian's rc scripts run it:
//!
//! ```sh
//! couriertcpd -address=$ADDRESS -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP \
//!     [-access=$IMAPACCESSFILE.dat] $TCPDOPTS $PORT \
//!     [$COURIERTLS -server -tcpd -user=courier] LOGIN SERVER ${MAILDIRPATH}
//! ```
//!
//! minus `courierlogger` and `-pid=` (without `-pid` couriertcpd stays in
//! the foreground, so the supervisor's pid is couriertcpd's, and its
//! stderr goes to the service's log). `-access=` is passed by the imapd
//! rc scripts only.
//!
//! The rc pastes `$TCPDOPTS` (and the other values) into a double-quoted
//! `sh -c` script: the INNER shell parses the text again. [`words`] does
//! that parse for the constructs an option list uses (blanks, quotes,
//! backslashes) and refuses what would run code or expand (`$`, backquotes,
//! `;`, globs), as the config reader refuses what it cannot read exactly.
//!
//! The options only couriertcpd has ([`protections`]) are what an admin
//! loses by moving to tcpserver or tcpsvd: `--check` FAILs on each and
//! `--dry-run` warns (see `check/server.rs` and `resolve`).

use std::path::PathBuf;

/// What couriertcpd gets besides address, conlimit and port.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Opts {
    /// MAXPERIP's text as the rc pastes it (empty when unset).
    pub maxperip: String,
    /// The compiled access list, `-access=` (None: the rc passes none).
    pub access: Option<PathBuf>,
    /// `$TCPDOPTS` as the inner shell splits it.
    pub tcpdopts: Vec<String>,
}

/// couriertcpd's own arguments, in the rc's order, from `-address=` to
/// the port list.
pub fn args(address: &str, maxprocs: &str, port: &str, o: &Opts) -> Vec<String> {
    let mut v = vec![
        format!("-address={address}"),
        format!("-maxprocs={maxprocs}"),
        format!("-maxperip={}", o.maxperip),
    ];
    if let Some(a) = &o.access {
        v.push(format!("-access={}", a.display()));
    }
    v.extend(o.tcpdopts.iter().cloned());
    v.push(port.to_string());
    v
}

/// Split `text` as sh parses an unquoted stretch of a command line: blanks
/// separate words; `'...'`, `"..."` and `\c` quote. Anything that would
/// make sh run or expand something (`$`, backquote, `;&|<>()`, an unquoted
/// glob `*?[`, `#` starting a word, `~`) is refused with what it is: the rc
/// would not pass it as written.
pub fn words(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err("an unterminated ' quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err("an unterminated \" quote".into()),
                        },
                        Some(x @ ('$' | '`')) => {
                            return Err(format!("{x} inside \"...\" (sh would expand it)"));
                        }
                        Some(x) => cur.push(x),
                        None => return Err("an unterminated \" quote".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(x) => {
                    in_word = true;
                    cur.push(x);
                }
                None => return Err("a trailing backslash".into()),
            },
            '#' if !in_word => return Err("# (sh would read the rest as a comment)".into()),
            '~' if !in_word => return Err("~ (sh would expand it)".into()),
            '$' | '`' => return Err(format!("{c} (sh would expand it)")),
            ';' | '&' | '|' | '<' | '>' | '(' | ')' => {
                return Err(format!("{c} (sh would read it as shell syntax)"));
            }
            '*' | '?' | '[' => return Err(format!("an unquoted {c} (sh would glob it)")),
            x => {
                in_word = true;
                cur.push(x);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The couriertcpd-only protections among `tcpdopts` (TCPDOPTS's words):
/// (the word, what it does), for the FAIL and the warning when another
/// front end runs the service.
pub fn protections(tcpdopts: &[String]) -> Vec<(String, &'static str)> {
    tcpdopts
        .iter()
        .filter_map(|w| {
            let name = w.split('=').next().unwrap_or("");
            let what = match name {
                "-block" => "a DNS block list",
                "-allow" => "a DNS allow list",
                "-maxperc" => "a limit of connections per C block",
                "-denymsg" => "the message a denied client gets",
                "-drop" => "dropping clients a DNS list names",
                _ => return None,
            };
            Some((w.clone(), what))
        })
        .collect()
}

/// The lines of an access list that set MAXCPERIP (couriertcpd's per-IP
/// limit for one address or block), as `FILE:LINE`.
pub fn maxcperip_lines(source: &std::path::Path) -> Vec<String> {
    let Ok(files) = crate::access::source_files(source) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in files {
        let Ok(text) = std::fs::read(&f) else {
            continue;
        };
        for (n, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = String::from_utf8_lossy(line);
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((_, action)) = line.split_once(['\t', ' ']) else {
                continue;
            };
            if action
                .split(',')
                .any(|i| i.trim().split('=').next() == Some("MAXCPERIP"))
            {
                out.push(format!("{}:{}", f.display(), n + 1));
            }
        }
    }
    out
}

/// A port list couriertcpd accepts: `PORT` or `ADDRESS.PORT` items (a
/// number or a service name), comma-separated.
pub fn port_list(text: &str) -> Result<(), String> {
    if text.is_empty() {
        return Err("port is empty".into());
    }
    for item in text.split(',') {
        // ADDRESS.PORT: the port is after the last dot (IPv4 or IPv6).
        let port = item.rsplit_once('.').map_or(item, |(_, p)| p);
        let ok = if port.bytes().all(|c| c.is_ascii_digit()) {
            port.parse::<u16>().is_ok_and(|n| n > 0)
        } else {
            crate::resolve::service_port(port).is_some()
        };
        if !ok {
            return Err(format!(
                "\"{item}\" in port \"{text}\" is neither a port number nor a TCP service name"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_sh() {
        let w = |t: &str| words(t).unwrap();
        assert_eq!(
            w("-nodnslookup -noidentlookup"),
            ["-nodnslookup", "-noidentlookup"]
        );
        assert_eq!(w("  a\t b\n"), ["a", "b"]);
        assert_eq!(w(""), Vec::<String>::new());
        assert_eq!(w("-denymsg='go away' -x"), ["-denymsg=go away", "-x"]);
        assert_eq!(w(r#"-denymsg="a \"b\"""#), [r#"-denymsg=a "b""#]);
        assert_eq!(w(r"a\ b"), ["a b"]);
        assert_eq!(w("''"), [""]);
        for bad in ["$X", "a;b", "`id`", "a*", "#c", "'open", "\"x$y\"", "a|b"] {
            assert!(words(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn argv_in_rc_order() {
        let o = Opts {
            maxperip: "4".into(),
            access: Some("/etc/courier/imapaccess.dat".into()),
            tcpdopts: vec!["-nodnslookup".into()],
        };
        assert_eq!(
            args("0", "40", "143", &o),
            [
                "-address=0",
                "-maxprocs=40",
                "-maxperip=4",
                "-access=/etc/courier/imapaccess.dat",
                "-nodnslookup",
                "143"
            ]
        );
        let o = Opts::default();
        assert_eq!(
            args("::1", "5", "993", &o),
            ["-address=::1", "-maxprocs=5", "-maxperip=", "993"]
        );
    }

    #[test]
    fn protections_found() {
        let ws: Vec<String> = [
            "-nodnslookup",
            "-block=zen.spamhaus.org",
            "-maxperc=5",
            "-drop",
            "-denymsg=no",
            "-allow=list.example",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let p: Vec<String> = protections(&ws).into_iter().map(|(w, _)| w).collect();
        assert_eq!(
            p,
            [
                "-block=zen.spamhaus.org",
                "-maxperc=5",
                "-drop",
                "-denymsg=no",
                "-allow=list.example"
            ]
        );
    }

    #[test]
    fn port_lists() {
        assert!(port_list("143").is_ok());
        assert!(port_list("127.0.0.1.143,993").is_ok());
        assert!(port_list("::1.143").is_ok());
        assert!(port_list("imap2").is_ok());
        assert!(port_list("0").is_err());
        assert!(port_list("143,").is_err());
        assert!(port_list("").is_err());
    }
}
