//! One typed model of what pidlab reads in /proc (proc(5)): a process's
//! status, its start time, its children, the processes of its PID
//! namespace. Every layer reads processes through here, so each /proc
//! format is parsed once.
//!
//! Which namespace the numbers are in matters: a /proc shows the PID
//! namespace of the process that *mounted* it (pid_namespaces(7)), so
//! pidlab on the host reads host PIDs, and `NSpid:` lists a process's PID
//! at every level from that /proc's namespace down to the process's own.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

/// The kernel's limit on nested PID namespaces below the initial one
/// (MAX_PID_NS_LEVEL, kernel/pid_namespace.c): one more fails with ENOSPC.
pub const MAX_PID_NS_LEVEL: u32 = 32;

/// The lines of /proc/PID/status that pidlab uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `Name:`, the command name (comm), at most 15 bytes.
    pub name: String,
    /// `State:`, its letter: R running, S sleeping, D disk, T stopped,
    /// Z zombie, ...
    pub state: char,
    /// `Tgid:`, the process a thread belongs to (its own PID for the main thread).
    pub tgid: i32,
    /// `PPid:`, 0 when the parent is in an ancestor PID namespace.
    pub ppid: i32,
    /// `NSpid:`, outermost (this /proc's namespace) first.
    pub nspid: Vec<i32>,
    /// `SigBlk:`, `SigIgn:`, `SigCgt:` masks: bit N-1 is signal N.
    pub blocked: u64,
    pub ignored: u64,
    pub caught: u64,
    /// `SigPnd:` and `ShdPnd:` together: signals sent and not yet taken.
    pub pending: u64,
    /// `CapEff:` and `CapBnd:`, bit N is capability N.
    pub cap_effective: u64,
    pub cap_bounding: u64,
    /// `Seccomp:` 0 none, 1 strict, 2 filter; `Seccomp_filters:` how many.
    pub seccomp: u8,
    pub seccomp_filters: u32,
}

impl Status {
    /// /proc/PID/status, or `None` if the process is gone.
    pub fn of(pid: i32) -> Option<Status> {
        fs::read_to_string(format!("/proc/{pid}/status")).ok().map(|text| Status::parse(&text))
    }

    /// The caller's own.
    pub fn own() -> Result<Status> {
        let text = fs::read_to_string("/proc/self/status").context("read /proc/self/status")?;
        Ok(Status::parse(&text))
    }

    pub fn parse(text: &str) -> Status {
        let mut status = Status::default();
        let hex = |v: &str| u64::from_str_radix(v.trim(), 16).unwrap_or(0);
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else { continue };
            let value = value.trim();
            match key {
                "Name" => status.name = value.to_string(),
                "State" => status.state = value.chars().next().unwrap_or('?'),
                "Tgid" => status.tgid = value.parse().unwrap_or(0),
                "PPid" => status.ppid = value.parse().unwrap_or(0),
                "NSpid" => status.nspid = value.split_whitespace().filter_map(|n| n.parse().ok()).collect(),
                "SigBlk" => status.blocked = hex(value),
                "SigIgn" => status.ignored = hex(value),
                "SigCgt" => status.caught = hex(value),
                "SigPnd" | "ShdPnd" => status.pending |= hex(value),
                "CapEff" => status.cap_effective = hex(value),
                "CapBnd" => status.cap_bounding = hex(value),
                "Seccomp" => status.seccomp = value.parse().unwrap_or(0),
                "Seccomp_filters" => status.seccomp_filters = value.parse().unwrap_or(0),
                _ => {}
            }
        }
        status
    }

    /// The PID in the process's own (innermost) namespace.
    pub fn inner_pid(&self) -> i32 {
        self.nspid.last().copied().unwrap_or(0)
    }

    /// Is this process PID 1 of a PID namespace below this /proc's?
    pub fn is_namespace_init(&self) -> bool {
        self.nspid.len() >= 2 && self.inner_pid() == 1
    }

    pub fn blocks(&self, signo: i32) -> bool {
        bit(self.blocked, signo)
    }

    pub fn ignores(&self, signo: i32) -> bool {
        bit(self.ignored, signo)
    }

    pub fn catches(&self, signo: i32) -> bool {
        bit(self.caught, signo)
    }

    pub fn is_alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

/// PIDs at each level as pidlab prints them, `24567/3/1`.
pub fn pids_text<P: Into<i64>>(pids: impl IntoIterator<Item = P>) -> String {
    pids.into_iter().map(|p| p.into().to_string()).collect::<Vec<_>>().join("/")
}

/// A process's command line, its words joined by spaces; `None` if it is
/// gone (a kernel thread's is empty).
pub fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let words: Vec<_> =
        raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(String::from_utf8_lossy).collect();
    Some(words.join(" "))
}

fn bit(mask: u64, signo: i32) -> bool {
    (1..=64).contains(&signo) && mask & (1u64 << (signo - 1)) != 0
}

/// Signal numbers set in a signal mask (bit N-1 is signal N).
pub fn signals_in(mask: u64) -> Vec<i32> {
    (1..=64).filter(|n| bit(mask, *n)).collect()
}

/// Capability names set in a capability mask (bit N is capability N),
/// sorted: `CAP_CHOWN`, ...
pub fn capabilities_in(mask: u64) -> Vec<String> {
    let mut names: Vec<String> =
        caps::all().into_iter().filter(|c| mask & c.bitmask() != 0).map(|c| c.to_string()).collect();
    names.sort();
    names
}

/// Field `n` of /proc/PID/stat counted after the command name (0 is the
/// state); the name is skipped by its last `)`, since it may hold spaces.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(") ")?;
    rest.split_whitespace().nth(n).map(str::to_string)
}

/// The process's start time in clock ticks since boot (proc(5), stat field
/// 22): with the PID, it names one process for good, since a recycled PID
/// belongs to a process that started later.
pub fn start_time(pid: i32) -> Option<u64> {
    stat_field(pid, 19)?.parse().ok()
}

/// The command name, `/proc/PID/comm`, or "" if the process is gone.
pub fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).map(|c| c.trim().to_string()).unwrap_or_default()
}

/// The direct children of `pid`, from every thread's list
/// (`/proc/PID/task/TID/children`).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out
}

/// Every descendant of `pid`, children first.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in children(parent) {
            found.push(child);
            next.push(child);
        }
    }
    found
}

/// The workload's PID 1 under `pid1`: with `--nest N`, PID 1 of the
/// innermost namespace (the outer ones are pidlab's own `pidlab:nest-K`,
/// which pass every signal on to it); else `pid1` itself.
pub fn innermost_init(pid1: i32) -> Option<(i32, Status)> {
    members(pid1)
        .into_iter()
        .filter_map(|pid| Status::of(pid).map(|s| (pid, s)))
        .filter(|(_, s)| s.is_namespace_init())
        .max_by_key(|(_, s)| s.nspid.len())
}

/// The inode of the process's PID namespace (`/proc/PID/ns/pid`).
pub fn pid_namespace(pid: i32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/ns/pid")).ok().map(|m| m.ino())
}

/// Every process of the PID namespace whose init is `pid1`, and of the
/// namespaces nested in it: those in the same namespace (an orphan whose
/// parent left, a process `exec` started), and all their descendants,
/// sorted by their PID inside.
pub fn members(pid1: i32) -> Vec<i32> {
    let ns = pid_namespace(pid1);
    let mut roots = vec![pid1];
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            if let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>()
                && pid != pid1
                && ns.is_some()
                && pid_namespace(pid) == ns
            {
                roots.push(pid);
            }
        }
    }
    let mut out = Vec::new();
    while let Some(pid) = roots.pop() {
        if out.contains(&pid) {
            continue;
        }
        out.push(pid);
        roots.extend(children(pid));
    }
    out.sort_by_key(|pid| Status::of(*pid).map(|s| s.inner_pid()).unwrap_or(i32::MAX));
    out
}

/// How deep the calling process already is: 0 in the initial namespace.
/// NSpid has one entry per level the caller is visible in.
pub fn current_level() -> Result<u32> {
    let status = Status::own()?;
    if status.nspid.is_empty() {
        anyhow::bail!("no NSpid line in /proc/self/status (kernel older than 4.1?)");
    }
    Ok(status.nspid.len() as u32 - 1)
}

/// NSpid of the process whose status file is `status`.
pub fn nspid(status: &Path) -> Result<Vec<i32>> {
    let text = fs::read_to_string(status).with_context(|| format!("read {}", status.display()))?;
    let nspid = Status::parse(&text).nspid;
    if nspid.is_empty() {
        anyhow::bail!("no NSpid line in {} (kernel older than 4.1?)", status.display());
    }
    Ok(nspid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse_into_their_fields() {
        let text = "Name:\tpidlab probe\nState:\tS (sleeping)\nPPid:\t0\nNSpid:\t24567\t3\t1\n\
                    SigBlk:\t0000000000000000\nSigIgn:\t0000000000000001\nSigCgt:\t0000000000004002\n\
                    CapEff:\t00000000a80425fb\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        let s = Status::parse(text);
        assert_eq!((s.name.as_str(), s.state, s.ppid), ("pidlab probe", 'S', 0));
        assert_eq!(pids_text(s.nspid.iter().copied()), "24567/3/1");
        assert!(s.is_namespace_init());
        assert!(s.ignores(libc::SIGHUP) && s.catches(libc::SIGINT) && s.catches(libc::SIGTERM));
        assert!(!s.catches(libc::SIGKILL));
        assert_eq!(signals_in(s.caught), [libc::SIGINT, libc::SIGTERM]);
        assert_eq!(capabilities_in(s.cap_effective).len(), 14);
        assert_eq!((s.seccomp, s.seccomp_filters), (2, 1));
    }
}
