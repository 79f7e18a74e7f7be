//! A process's CPU time and memory, read from `/proc/<pid>/stat` and `/proc/<pid>/status` (Linux).
//!
//! CPU time is `utime + stime` of all the process's threads, in clock ticks of 1/100 s (`USER_HZ`,
//! fixed at 100 by the kernel's ABI for `/proc`); memory is `VmRSS` (resident now) and `VmHWM` (the
//! resident peak), in KiB.

use serde::{Deserialize, Serialize};

/// Clock ticks per second in `/proc/<pid>/stat`.
const USER_HZ: f64 = 100.0;

/// One reading of a process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// User + system CPU time since the process started, seconds.
    pub cpu_s: f64,
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

/// Read `pid` (`None` if it is gone or this is not Linux).
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    Some(ProcSample {
        cpu_s: cpu_ticks(&stat)? as f64 / USER_HZ,
        rss_kib: status_kib(&status, "VmRSS:").unwrap_or(0),
        hwm_kib: status_kib(&status, "VmHWM:").unwrap_or(0),
    })
}

/// `utime + stime` from a `stat` line. The command name (field 2) may hold spaces and parentheses,
/// so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// CPU seconds the whole machine has spent busy (not idle or waiting for I/O) since boot, all
/// cores together, from the first line of `/proc/stat`.
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    busy_ticks(stat.lines().next()?).map(|t| t as f64 / USER_HZ)
}

/// `user + nice + system + irq + softirq + steal` of a `cpu` line (guest time is inside user).
fn busy_ticks(line: &str) -> Option<u64> {
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    Some(f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)? + f.get(7).copied().unwrap_or(0))
}

/// A process's share of a measurement window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcReport {
    pub name: String,
    pub pid: u32,
    /// CPU seconds spent inside the window.
    pub cpu_s: f64,
    /// `cpu_s` over the window's length: 1.0 is one core busy all the time.
    pub cores: f64,
    /// RSS when the run began (before any session), at the window's end, and the largest seen.
    pub rss_start_kib: u64,
    pub rss_end_kib: u64,
    pub rss_max_kib: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_strange_name() {
        let stat = "1234 (tokio (w) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 5 100 10";
        assert_eq!(cpu_ticks(stat), Some(325));
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(status_kib(status, "VmHWM:"), Some(2048));
    }

    #[test]
    fn machine_busy_time_leaves_idle_and_iowait_out() {
        assert_eq!(busy_ticks("cpu  100 5 50 1000 30 2 3 4 0 0"), Some(164));
        assert!(machine_busy_s().is_some_and(|s| s > 0.0));
    }

    #[test]
    fn reads_this_process() {
        let s = sample(std::process::id()).expect("/proc is readable");
        assert!(s.rss_kib > 0 && s.hwm_kib >= s.rss_kib, "{s:?}");
    }
}
