//! Check 7: one port, in range, bindable by whoever runs tcpserver; one
//! address; with `--bind`, that the address and port can be bound now.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use super::{Ctx, Report, errstr};

/// The lowest port an unprivileged process may bind (Linux's sysctl,
/// 1024 unless lowered, as container runtimes often do).
fn unprivileged_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// The port as a number, or why it is not one port.
fn port_number(t: &str) -> Result<u16, (String, String)> {
    if t.contains(',') {
        return Err((
            format!("\"{t}\" is a list of addresses: one tcpserver binds one address and port"),
            "run one service per address, with address= and port=".into(),
        ));
    }
    if let Some((addr, p)) = t.rsplit_once('.') {
        return Err((
            format!("\"{t}\" is Courier's address.port form"),
            format!("set address={addr} and port={p}"),
        ));
    }
    if !t.is_empty() && t.bytes().all(|c| c.is_ascii_digit()) {
        return match t.parse::<u32>() {
            Ok(n @ 1..=65535) => Ok(n as u16),
            _ => Err((format!("\"{t}\" is out of range"), "1-65535".into())),
        };
    }
    crate::plan::service_port(t).ok_or_else(|| {
        (
            format!("\"{t}\" is neither a number nor a TCP service name in /etc/services"),
            "write e.g. 143".into(),
        )
    })
}

pub fn check(ctx: &mut Ctx, r: &mut Report) {
    let (addr, addr_origin) = ctx
        .derived("address", "ADDRESS", Some("0"))
        .expect("has a fallback");
    let (port, port_origin) = ctx
        .derived("port", "PORT", Some("143"))
        .expect("has a fallback");
    let mut addr_ok = true;
    if addr.is_empty() || addr.contains([',', ' ', '\t']) {
        r.fail(
            format!("address {addr}"),
            addr_origin.at(&format!("address \"{addr}\" is not one host or IP address")),
            "tcpserver binds one; 0 means all",
        );
        ctx.substitute("address", "0");
        addr_ok = false;
    } else {
        r.ok(format!("address {addr}"));
    }
    let number = match port_number(&port) {
        Ok(n) => n,
        Err((why, fix)) => {
            r.fail(
                format!("port {port}"),
                port_origin.at(&format!("port {why}")),
                fix,
            );
            ctx.substitute("port", "143");
            return;
        }
    };
    // tcpserver binds as the identity courier-run execs it with.
    let uid = ctx.exec_id.uid;
    let start = unprivileged_start();
    let low_ok =
        uid == 0 || (uid == ctx.euid && crate::caps::has(crate::caps::CAP_NET_BIND_SERVICE));
    if u32::from(number) < start && !low_ok {
        let who = match ctx.settings.str("setuidgid") {
            "" => format!("courier-run runs as uid {uid}"),
            a => format!("tcpserver would run as uid {uid} (setuidgid={a})"),
        };
        r.fail(
            format!("port {port}"),
            format!("below {start}, and {who}, which may not bind it"),
            format!("run it as root (tcpserver's -u/-g drop root after binding), or use a port of {start} or above"),
        );
    } else {
        r.ok(format!("port {port}"));
    }
    if ctx.bind && addr_ok {
        bind(&addr, number, r);
    }
}

/// Bind the address and port now, and close at once (tcpserver sets
/// SO_REUSEADDR too, as std's TcpListener does).
fn bind(addr: &str, port: u16, r: &mut Report) {
    let host = if addr == "0" { "0.0.0.0" } else { addr };
    let what = format!("bind {host}:{port}");
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.filter(SocketAddr::is_ipv4).collect(),
        Err(e) => {
            r.fail(
                what,
                format!("unable to resolve {host}: {}", errstr(&e)),
                "set address= to an IPv4 address",
            );
            return;
        }
    };
    let Some(sa) = addrs.first() else {
        r.fail(
            what,
            format!("{host} has no IPv4 address (tcpserver 0.88 is IPv4 only)"),
            "set address= to an IPv4 address",
        );
        return;
    };
    match TcpListener::bind(sa) {
        Ok(l) => {
            drop(l);
            r.ok(what);
        }
        Err(e) => {
            let fix = match e.kind() {
                std::io::ErrorKind::AddrInUse => {
                    format!(
                        "something listens there already: is the service running? see ss -ltnp 'sport = :{port}'"
                    )
                }
                std::io::ErrorKind::AddrNotAvailable => {
                    "the address is not one of this machine's".to_string()
                }
                _ => String::new(),
            };
            r.fail(what, format!("unable to bind: {}", errstr(&e)), fix);
        }
    }
}
