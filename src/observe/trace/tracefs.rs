//! The kernel's side: a private tracefs instance with the signal and
//! process tracepoints on, and the lines its `trace_pipe` gives.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};

use crate::record::Process;

const EVENTS: [&str; 4] = [
    "signal/signal_generate",
    "signal/signal_deliver",
    "sched/sched_process_fork",
    "sched/sched_process_exit",
];

/// A private tracefs instance; removed when dropped.
pub struct Instance {
    dir: PathBuf,
}

impl Instance {
    /// Find or mount tracefs, clean instances left by dead pidlabs, and
    /// create ours with the signal and process events on.
    pub fn create() -> Result<Instance> {
        let tracefs = tracefs()?;
        let instances = tracefs.join("instances");
        remove_stale(&instances);
        let me = Process::of(std::process::id() as i32).context("read our own start time")?;
        let dir = instances.join(format!("pidlab-{}-{}", me.pid, me.start));
        fs::create_dir(&dir).with_context(|| format!("create the tracefs instance {}", dir.display()))?;
        let instance = Instance { dir };
        // The same clock as CLOCK_MONOTONIC, so event times can be compared
        // with our own.
        fs::write(instance.dir.join("trace_clock"), "mono").context("set trace_clock to mono")?;
        for event in EVENTS {
            fs::write(instance.dir.join("events").join(event).join("enable"), "1")
                .with_context(|| format!("enable the {event} tracepoint"))?;
        }
        Ok(instance)
    }

    pub fn pipe(&self) -> Result<fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dir.join("trace_pipe"))
            .context("open trace_pipe")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("events/enable"), "0");
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The tracefs mount point, mounting one in a private mount namespace if
/// the host has none mounted.
fn tracefs() -> Result<PathBuf> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("instances").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) to mount tracefs privately")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("make / private")?;
    let dir = PathBuf::from("/sys/kernel/tracing");
    mount(Some("tracefs"), &dir, Some("tracefs"), MsFlags::empty(), None::<&str>)
        .context("mount tracefs (needs root, and a kernel with CONFIG_TRACING)")?;
    Ok(dir)
}

/// Remove the instances of tracers that are gone. An instance is named
/// after its tracer, `pidlab-PID-START` (START: the start time, /proc/PID/stat
/// field 22), so a PID reused by another process does not keep a dead
/// tracer's instance, with its buffers and tracing on, alive. An instance
/// of an older pidlab (`pidlab-PID`) is kept only while PID is a pidlab.
fn remove_stale(instances: &Path) {
    let Ok(dir) = fs::read_dir(instances) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix("pidlab-") else { continue };
        let alive = match owner.split_once('-') {
            Some((pid, start)) => match (pid.parse(), start.parse()) {
                (Ok(pid), Ok(start)) => Process { pid, start }.alive(),
                _ => false,
            },
            None => owner.parse::<i32>().is_ok_and(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "pidlab")
            }),
        };
        if !alive {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// One line of trace_pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub time: f64,
    /// The task running when the event fired: the sender for
    /// signal_generate, the receiver for signal_deliver.
    pub task_pid: i32,
    pub task_comm: String,
    pub event: String,
    pub fields: HashMap<String, String>,
}

impl Record {
    pub fn int(&self, key: &str) -> i64 {
        self.fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(-1)
    }
}

/// Parse `  sh-4183  [001] d..2.  2804.220843: signal_generate: sig=15 ... res=1`.
pub fn parse_line(line: &str) -> Option<Record> {
    let line = line.trim_end();
    let open = line.find(" [")?;
    let (task, rest) = line.split_at(open);
    let (task_comm, task_pid) = task.trim().rsplit_once('-')?;
    let task_pid = task_pid.parse().ok()?;
    let rest = &rest[rest.find(']')? + 1..];
    let mut parts = rest.trim_start().splitn(2, ' ');
    let _flags = parts.next()?;
    let rest = parts.next()?.trim_start();
    let (time, rest) = rest.split_once(": ")?;
    let (event, body) = rest.split_once(": ")?;
    let mut fields = HashMap::new();
    let mut last: Option<String> = None;
    for word in body.split(' ') {
        match word.split_once('=') {
            Some((key, value))
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                fields.insert(key.to_string(), value.to_string());
                last = Some(key.to_string());
            }
            // A comm with a space in it.
            _ => {
                if let Some(key) = &last
                    && let Some(value) = fields.get_mut(key)
                {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    Some(Record {
        time: time.trim().parse().ok()?,
        task_pid,
        task_comm: task_comm.to_string(),
        event: event.to_string(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_trace_pipe_line() {
        let line = "              sh-23789   [001] d..1.  2804.220843: signal_generate: sig=15 errno=0 code=0 comm=sh pid=23801 grp=1 res=1\n";
        let r = parse_line(line).unwrap();
        assert_eq!(r.task_pid, 23789);
        assert_eq!(r.task_comm, "sh");
        assert_eq!(r.event, "signal_generate");
        assert_eq!(r.time, 2804.220843);
        assert_eq!(r.int("sig"), 15);
        assert_eq!(r.int("res"), 1);
        assert_eq!(r.fields["comm"], "sh");
    }

    #[test]
    fn parses_task_names_with_dashes_and_comms_with_spaces() {
        let line = "  pidlab:nest-1-999 [000] d..1. 10.5: signal_generate: sig=9 errno=0 code=128 comm=Web Content pid=5 grp=1 res=0";
        let r = parse_line(line).unwrap();
        assert_eq!(r.task_pid, 999);
        assert_eq!(r.task_comm, "pidlab:nest-1");
        assert_eq!(r.fields["comm"], "Web Content");
        assert_eq!(r.int("pid"), 5);
        assert_eq!(r.int("code"), 128);
    }
}
