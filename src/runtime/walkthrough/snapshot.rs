//! What `--step` reads from /proc before and after each step, and the
//! difference it prints.

use std::collections::BTreeMap;

use crate::procfs;
use crate::signals;

/// What /proc shows about a process at one moment.
#[derive(Debug, Default)]
pub(super) struct Snapshot {
    pid: i32,
    namespaces: BTreeMap<&'static str, String>,
    nspid: String,
    root: String,
    exe: String,
    /// "MOUNT POINT FSTYPE PROPAGATION" → how many such mounts.
    mounts: BTreeMap<String, usize>,
    mount_count: usize,
    pub(super) shared: usize,
    status: procfs::Status,
    /// Its PID namespace's processes, as `ps` inside would list them.
    members: Vec<String>,
}

impl Snapshot {
    pub(super) fn of(pid: i32, pid1: Option<i32>) -> Snapshot {
        let link =
            |path: String| std::fs::read_link(path).map(|p| p.display().to_string()).unwrap_or_default();
        let mut snapshot = Snapshot { pid, ..Snapshot::default() };
        for kind in ["pid", "pid_for_children", "mnt", "user"] {
            snapshot.namespaces.insert(kind, link(format!("/proc/{pid}/ns/{kind}")));
        }
        snapshot.root = link(format!("/proc/{pid}/root"));
        snapshot.exe = link(format!("/proc/{pid}/exe"));
        snapshot.status = procfs::Status::of(pid).unwrap_or_default();
        snapshot.nspid = procfs::pids_text(snapshot.status.nspid.iter().copied());
        let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 5 {
                continue;
            }
            let dash = fields.iter().position(|f| *f == "-").unwrap_or(fields.len());
            let propagation: Vec<&str> = fields[6.min(dash)..dash].to_vec();
            let fstype = fields.get(dash + 1).copied().unwrap_or("?");
            snapshot.shared += usize::from(propagation.iter().any(|p| p.starts_with("shared:")));
            let shown = format!(
                "{} {fstype}{}",
                fields.get(4).unwrap_or(&"?"),
                if propagation.is_empty() { String::new() } else { format!(" {}", propagation.join(" ")) }
            );
            *snapshot.mounts.entry(shown).or_default() += 1;
            snapshot.mount_count += 1;
        }
        if let Some(pid1) = pid1 {
            snapshot.members = procfs::members(pid1)
                .into_iter()
                .filter_map(procfs::Status::of)
                .map(|s| format!("{} {}", s.inner_pid(), s.name))
                .collect();
        }
        snapshot
    }

    /// What differs in `after`, as lines to print.
    pub(super) fn changes(&self, after: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        // Gone, or a zombie (its root and mounts already released: a
        // workload such as `true` can finish before we look).
        if after.status.name.is_empty() || matches!(after.status.state, 'Z' | 'X') {
            return vec!["(it has already exited: nothing left to look at)".into()];
        }
        if self.pid != after.pid {
            out.push(format!("now looking at host PID {} (NSpid {})", after.pid, after.nspid));
        }
        for (kind, before) in &self.namespaces {
            let now = &after.namespaces[kind];
            if before != now && now.is_empty() {
                // pid_for_children reads as nothing until the new
                // namespace has its first process (its child reaper).
                out.push(format!(
                    "ns/{kind}: {before} -> (no link until the clone below: the new namespace has no process yet)"
                ));
            } else if before != now {
                out.push(format!("ns/{kind}: {before} -> {now}"));
            }
        }
        if self.nspid != after.nspid && self.pid == after.pid {
            out.push(format!("NSpid: {} -> {}", self.nspid, after.nspid));
        }
        if self.root != after.root {
            out.push(format!("root: {} -> {}", self.root, after.root));
        }
        if self.exe != after.exe {
            out.push(format!("exe: {} -> {}", self.exe, after.exe));
        }
        if self.mounts != after.mounts || self.shared != after.shared {
            out.push(format!(
                "mounts: {} -> {} (shared mounts: {} -> {})",
                self.mount_count, after.mount_count, self.shared, after.shared
            ));
            let count = |mounts: &BTreeMap<String, usize>, m: &String| mounts.get(m).copied().unwrap_or(0);
            let gone: Vec<&String> =
                self.mounts.keys().filter(|m| count(&after.mounts, m) < count(&self.mounts, m)).collect();
            let new: Vec<&String> =
                after.mounts.keys().filter(|m| count(&self.mounts, m) < count(&after.mounts, m)).collect();
            for mount in new.iter().take(12) {
                out.push(format!("  + {mount}"));
            }
            if new.len() > 12 {
                out.push(format!("  + ... {} more", new.len() - 12));
            }
            for mount in gone.iter().take(6) {
                out.push(format!("  - {mount}"));
            }
            if gone.len() > 6 {
                out.push(format!("  - ... {} more", gone.len() - 6));
            }
        }
        let (b, a) = (&self.status, &after.status);
        if b.cap_effective != a.cap_effective || b.cap_bounding != a.cap_bounding {
            out.push(format!(
                "CapEff: {:016x} -> {:016x}; CapBnd: {:016x} -> {:016x}",
                b.cap_effective, a.cap_effective, b.cap_bounding, a.cap_bounding
            ));
        }
        if b.seccomp != a.seccomp {
            out.push(format!("Seccomp: {} -> {} ({} filter(s))", b.seccomp, a.seccomp, a.seccomp_filters));
        }
        for (name, before, now) in [
            ("blocked", b.blocked, a.blocked),
            ("ignored", b.ignored, a.ignored),
            ("caught", b.caught, a.caught),
        ] {
            if before != now {
                out.push(format!(
                    "signals {name}: [{}] -> [{}]",
                    signals::names_in(before).join(" "),
                    signals::names_in(now).join(" ")
                ));
            }
        }
        if self.members != after.members && !after.members.is_empty() {
            out.push(format!("ps inside: {}", after.members.join(", ")));
        }
        if out.is_empty() {
            out.push("(nothing /proc shows changed)".into());
        }
        out
    }
}
