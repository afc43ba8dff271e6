//! Check 7: one port, in range, bindable by whoever runs tcpserver; one
//! address; with `--bind`, that the address and port can be bound now.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use super::{Ctx, Report, errstr};

use crate::resolve::Family;

/// Which installed front end can bind an IPv6 address (tcpsvd never;
/// tcpserver when it is ucspi-tcp-ipv6's build).
fn ipv6_front_ends(r: &mut Report) {
    use crate::frontend::{Kind, probe_ipv6};
    let mut can = Vec::new();
    let mut cannot = Vec::new();
    for (kind, name) in [(Kind::Tcpserver, "tcpserver"), (Kind::Tcpsvd, "tcpsvd")] {
        let path_var = std::env::var_os("PATH");
        let Ok(path) = crate::resolve::find_program(
            name.as_bytes(),
            path_var.as_ref().map(|p| p.as_encoded_bytes()),
        ) else {
            continue;
        };
        match probe_ipv6(kind, &path) {
            Ok(true) => can.push(crate::shown::path(&path)),
            _ => cannot.push(crate::shown::path(&path)),
        }
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    // couriertcpd (Courier's, Debian: /usr/sbin) binds IPv6 always.
    let tcpd = std::path::Path::new("/usr/sbin/couriertcpd");
    if tcpd.exists() {
        can.push(tcpd.display().to_string());
    }
    r.info(
        "IPv6",
        format!(
            "can bind IPv6: {}; IPv4 only: {} (couriertcpd and ucspi-tcp-ipv6's tcpserver bind IPv6)",
            list(&can),
            list(&cannot)
        ),
    );
}

/// The lowest port an unprivileged process may bind (Linux's sysctl,
/// 1024 unless lowered, as container runtimes often do).
fn unprivileged_start() -> u32 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

pub fn check(ctx: &Ctx, r: &mut Report) {
    let (addr, port) = (&ctx.r.address, &ctx.r.port);
    // A bad address or port is a FAIL of resolve's already.
    if !addr.stand_in {
        let tcpd = ctx.r.front.spec.kind == crate::frontend::Kind::Couriertcpd;
        if tcpd && addr.value == Family::Ipv6 {
            r.ok(format!(
                "address {} (IPv6: couriertcpd binds it)",
                crate::shown::value(&addr.text)
            ));
        } else {
            r.ok(format!("address {}", crate::shown::value(&addr.text)));
        }
    }
    ipv6_front_ends(r);
    if port.stand_in {
        return;
    }
    let Some(number) = port.value else {
        return;
    };
    let port = crate::shown::value(&port.text);
    let addr_ok = !addr.stand_in;
    let addr = addr.text.clone();
    // tcpserver binds as the identity courier-run execs it with.
    let uid = ctx.exec_id.uid;
    let start = unprivileged_start();
    let low_ok =
        uid == 0 || (uid == ctx.euid && crate::caps::has(crate::caps::CAP_NET_BIND_SERVICE));
    if u32::from(number) < start && !low_ok {
        let who = match &ctx.r.given.setuidgid {
            None => format!("courier-run runs as uid {uid}"),
            Some(a) => format!("tcpserver would run as uid {uid} (setuidgid={a})"),
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
    } else {
        super::listeners::check(number, || own_pid(ctx), r);
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

/// The pid this service's supervisor reports (the run file's directory).
fn own_pid(ctx: &Ctx) -> Option<u32> {
    let dir = crate::status::service_dir(ctx.r.sources.first()?);
    let kind = crate::supervise::detect(&dir)?;
    match crate::supervise::status(&dir, kind) {
        Ok(crate::supervise::State::Up { pid }) => Some(pid),
        _ => None,
    }
}
