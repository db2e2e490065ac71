//! Resident memory of processes, via `sysinfo` (Linux, macOS, others), and
//! giving the daemon's freed heap back to the OS.

use std::sync::Mutex;

use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

/// Reads the resident set size of processes by pid.
pub(crate) struct RssProbe {
    sys: Mutex<System>,
}

impl RssProbe {
    pub(crate) fn new() -> RssProbe {
        RssProbe {
            sys: Mutex::new(System::new()),
        }
    }

    /// Resident bytes of process `pid`, or `None` if it cannot be read.
    pub(crate) fn rss_bytes(&self, pid: u32) -> Option<u64> {
        let mut sys = self.sys.lock().unwrap_or_else(|p| p.into_inner());
        let pid = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            true,
            ProcessRefreshKind::nothing().with_memory(),
        );
        sys.process(pid).map(|p| p.memory()).filter(|&b| b > 0)
    }

    /// Resident bytes of this (the daemon's) process; 0 if unknown.
    pub(crate) fn own_rss_bytes(&self) -> u64 {
        self.rss_bytes(std::process::id()).unwrap_or(0)
    }
}

/// Bytes to whole MiB, rounded up.
pub(crate) fn mib_ceil(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024)
}

/// Returns the daemon's freed heap to the OS. glibc keeps memory freed by
/// short-lived threads (tokio's blocking pool, ONNX Runtime's workers) in
/// per-thread arenas, so after a burst of work the resident size stays at
/// its peak; on a 2 GB board that is memory the next engine needs. Called
/// when an engine unloads, i.e. when the daemon is idle. A no-op off glibc.
pub(crate) fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; it takes their locks
    // and has no preconditions on the caller.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_rss_is_measurable() {
        let probe = RssProbe::new();
        assert!(probe.own_rss_bytes() > 0);
        assert_eq!(mib_ceil(1), 1);
        assert_eq!(mib_ceil(2 * 1024 * 1024), 2);
    }
}
