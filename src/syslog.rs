//! `courier-run syslog TAG`: a service's log/run for `init --log syslog`.
//! It reads the service's log lines on standard input and sends each to
//! syslog, as courierlogger does (courier-libs, liblog/logger.c): facility
//! mail, the tag Courier's rc scripts give it (`-name=imapd`, ...), no pid,
//! and the level from the line's prefix, which is removed: `ERR:` err,
//! `WARN:` warning, `ALERT:` alert, `CRIT:` crit, `DEBUG:` debug, `INFO:`
//! or none info. Courier writes `INFO: LOGIN FAILED, user=...`; syslog
//! readers (fail2ban's courier filters, logwatch) expect what courierlogger
//! leaves of it: `imapd: LOGIN FAILED, user=...`.
//!
//! Why not `logger -t imapd -p mail.info`: it would keep the `INFO:`
//! prefix (and put every line at one level), and fail2ban's patterns, which
//! start right after the tag, would no longer match.
//!
//! The message goes to /dev/log as glibc's syslog() sends it (RFC 3164
//! without the host name: `<PRI>Mmm dd hh:mm:ss TAG: MESSAGE`), one
//! datagram a line. A send that fails (syslogd restarting) is retried once
//! on a new connection; a line that still cannot be sent goes to stderr
//! (the supervisor's) rather than stopping the log.

use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::error::{Exit, bad_input};

/// The longest message sent: rsyslog's default maximum (courierlogger cuts
/// at 511 bytes, which cuts Courier's longer error lines).
const MAX_LINE: usize = 8192;

/// LOG_MAIL (2) << 3.
const MAIL: u8 = 2 << 3;

#[derive(clap::Args, Debug)]
pub struct SyslogOptions {
    /// The tag (program name) of each message: imapd, imapd-ssl, pop3d,
    /// pop3d-ssl or authdaemond, as courierlogger's -name= in Courier's
    /// config.
    pub tag: String,
    /// The syslog socket.
    #[arg(long, default_value = "/dev/log")]
    pub socket: PathBuf,
}

/// The level of a Courier log line and the message without its prefix
/// (courierlogger's table; leading spaces dropped, as it drops them, but
/// a prefix is only read at the very start of the line).
pub fn level(line: &[u8]) -> (u8, &[u8]) {
    const PREFIXES: [(&[u8], u8); 6] = [
        (b"ERR:", 3),
        (b"WARN:", 4),
        (b"ALERT:", 1),
        (b"CRIT:", 2),
        (b"DEBUG:", 7),
        (b"INFO:", 6),
    ];
    let (lvl, rest) = PREFIXES
        .iter()
        .find_map(|(p, l)| line.strip_prefix(*p).map(|r| (*l, r)))
        .unwrap_or((6, line));
    let skip = rest.iter().take_while(|&&c| c == b' ').count();
    (lvl, &rest[skip..])
}

/// One datagram: `<PRI>TIMESTAMP TAG: MESSAGE`.
pub fn datagram(tag: &str, stamp: &str, line: &[u8]) -> Vec<u8> {
    let (lvl, msg) = level(line);
    let mut d = format!("<{}>{stamp} {tag}: ", MAIL | lvl).into_bytes();
    d.extend_from_slice(msg);
    d
}

/// The local time as RFC 3164 writes it (`Dec  4 14:05:09`), as glibc's
/// syslog() stamps it.
fn stamp() -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let now = nix::libc::time_t::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    )
    .unwrap_or(0);
    // SAFETY: localtime_r writes only into `tm`, which outlives the call.
    let mut tm: nix::libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { nix::libc::localtime_r(&now, &mut tm) }.is_null() {
        return "Jan  1 00:00:00".into();
    }
    format!(
        "{} {:2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

fn connect(socket: &Path) -> std::io::Result<UnixDatagram> {
    let s = UnixDatagram::unbound()?;
    s.connect(socket)?;
    Ok(s)
}

pub fn run(o: &SyslogOptions) -> anyhow::Result<Exit> {
    if o.tag.is_empty() || o.tag.bytes().any(|c| c <= b' ' || c == b':' || c >= 0x7f) {
        return Err(bad_input(format!(
            "syslog tag {:?}: give a program name, e.g. imapd",
            o.tag
        )));
    }
    let mut sock = connect(&o.socket).ok();
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut input)
            .take(MAX_LINE as u64)
            .read_until(b'\n', &mut line)
            .context("unable to read the log lines")?;
        if n == 0 {
            return Ok(Exit::Ok);
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if n == MAX_LINE {
            // The rest of a long line is dropped, as courierlogger drops it.
            let mut rest = Vec::new();
            loop {
                rest.clear();
                let m = (&mut input)
                    .take(MAX_LINE as u64)
                    .read_until(b'\n', &mut rest)
                    .context("unable to read the log lines")?;
                if m == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
            }
        }
        let d = datagram(&o.tag, &stamp(), &line);
        let sent = sock.as_ref().is_some_and(|s| s.send(&d).is_ok()) || {
            sock = connect(&o.socket).ok();
            sock.as_ref().is_some_and(|s| s.send(&d).is_ok())
        };
        if !sent {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(format!("{}: ", o.tag).as_bytes());
            let _ = err.write_all(&line);
            let _ = err.write_all(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_as_courierlogger() {
        let cases: [(&[u8], u8, &[u8]); 8] = [
            (
                b"INFO: LOGIN FAILED, user=x, ip=[::1]",
                6,
                b"LOGIN FAILED, user=x, ip=[::1]",
            ),
            (
                b"ERR: authdaemon: s_connect() failed",
                3,
                b"authdaemon: s_connect() failed",
            ),
            (b"WARN:x", 4, b"x"),
            (b"ALERT: a", 1, b"a"),
            (b"CRIT: c", 2, b"c"),
            (b"DEBUG:   d", 7, b"d"),
            (b"tcpserver: status: 1/40", 6, b"tcpserver: status: 1/40"),
            (b"  INFO: kept", 6, b"INFO: kept"),
        ];
        for (line, lvl, msg) in cases {
            assert_eq!(level(line), (lvl, msg), "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(
            datagram("imapd", "Dec  4 14:05:09", b"INFO: LOGIN, user=u"),
            b"<22>Dec  4 14:05:09 imapd: LOGIN, user=u".to_vec()
        );
        assert_eq!(
            datagram("pop3d", "Dec  4 14:05:09", b"ERR: x"),
            b"<19>Dec  4 14:05:09 pop3d: x".to_vec()
        );
        let s = stamp();
        assert_eq!(s.len(), 15, "{s}");
    }
}
