//! Check 7 (without `--bind`): is the port already taken, and by whom?
//! /proc/net/tcp and tcp6 list the listening sockets (state 0A) with their
//! inode; /proc/PID/fd/* links name `socket:[INODE]`. The service's own
//! front end (its supervisor's pid) holding the port is expected.

use super::Report;

/// The inodes of the sockets listening on TCP `port` (IPv4 and IPv6).
pub fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let Some((_, p)) = f[1].rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() == Some(port)
                && let Ok(inode) = f[9].parse::<u64>()
                && inode != 0
            {
                out.push(inode);
            }
        }
    }
    out
}

/// The pids holding one of `inodes` open, with their command names.
pub fn holders(inodes: &[u64]) -> Vec<(u32, String)> {
    let want: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let holds = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| want.iter().any(|w| l.as_os_str() == w.as_str()))
        });
        if holds {
            let comm = std::fs::read_to_string(p.path().join("comm")).unwrap_or_default();
            out.push((pid, comm.trim().to_string()));
        }
    }
    out
}

/// The port's listeners, said: ok when free or held by this service
/// (`own`: the pid its supervisor reports, asked only when taken), FAIL when another process
/// holds it (the launch's bind would fail).
pub fn check(port: u16, own: impl FnOnce() -> Option<u32>, r: &mut Report) {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return;
    }
    let who = holders(&inodes);
    if let Some(pid) = own()
        && who.iter().any(|(p, _)| *p == pid)
    {
        r.ok(format!("port {port} (served by this service, pid {pid})"));
        return;
    }
    let names: Vec<String> = who.iter().map(|(p, c)| format!("{c} (pid {p})")).collect();
    let by = if names.is_empty() {
        "another process (run as root to see which)".to_string()
    } else {
        names.join(", ")
    };
    r.fail(
        format!("port {port}"),
        format!("already taken by {by}: the front end could not bind it"),
        format!("stop that process, or choose another port (ss -ltnp 'sport = :{port}')"),
    );
}
