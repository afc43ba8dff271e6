//! Capabilities of this process, for plans that must predict whether a
//! privileged call will succeed. The kernel checks capabilities, not uid 0:
//! root in a container often lacks some (Docker drops CAP_SYS_RESOURCE).

pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;
pub const CAP_NET_BIND_SERVICE: u32 = 10;
pub const CAP_SYS_RESOURCE: u32 = 24;

/// Is `cap` in this process's effective set (CapEff of /proc/self/status)?
/// Without /proc, fall back to "root has every capability".
pub fn has(cap: u32) -> bool {
    match std::fs::read_to_string("/proc/self/status") {
        Ok(status) => status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|caps| (caps >> cap) & 1 == 1),
        Err(_) => nix::unistd::geteuid().is_root(),
    }
}
