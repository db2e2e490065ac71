//! Resident memory of processes, via `sysinfo` (Linux, macOS, others), their
//! peaks (Linux), and giving the daemon's freed heap back to the OS.

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

/// The most memory process `pid` has held resident so far, in bytes
/// (Linux's `VmHWM`: it covers a model's load as well as its steady
/// state). `None` where the platform keeps no such figure, or the process
/// is gone.
pub(crate) fn peak_rss_bytes(pid: u32) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        // The line reads `VmHWM:\t  123456 kB`.
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse::<u64>()
            .ok()?;
        Some(kib * 1024)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
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
        #[cfg(target_os = "linux")]
        {
            let now = probe.own_rss_bytes();
            assert!(peak_rss_bytes(std::process::id()).unwrap() >= now);
        }
        assert_eq!(mib_ceil(1), 1);
        assert_eq!(mib_ceil(2 * 1024 * 1024), 2);
    }
}
