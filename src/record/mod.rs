//! Where pidlab keeps what it knows about running sandboxes, so that other
//! commands (`ps`, `exec`, `stop`, `logs`, ...) in other terminals can find
//! them.
//!
//! One directory per sandbox, `STATE/NAME/`, where STATE is `/run/pidlab`
//! for root, `$XDG_RUNTIME_DIR/pidlab` (or `/tmp/pidlab-UID`) otherwise, or
//! `$PIDLAB_STATE_DIR` when set (an empty variable counts as unset):
//!
//! - `owner`: the process that claimed the name (PID and start time), and
//!   the command line and directory it was started with (`restart`);
//! - `sandbox.json`: written once, when PID 1 exists: its host PID and start
//!   time (so a recycled PID is never mistaken for it), the supervising
//!   process (the shim, or the foreground `pidlab run`), what runs, how to
//!   stop it;
//! - `exit.json`: written by the supervisor when PID 1 has exited;
//! - `stopping`: present while `pidlab stop` is at work;
//! - `log`: the workload's stdout and stderr (detached sandboxes).
//!
//! STATE is trusted only as systemd trusts `XDG_RUNTIME_DIR`: a directory
//! (not a symbolic link) owned by the caller, that no one else may enter
//! (mode 0700). In `/tmp` anyone can create `pidlab-UID` first; a record
//! another user wrote could point pidlab's signals at any process of
//! yours, and a symbolic link planted where pidlab writes would redirect
//! the write. pidlab creates STATE mode 0700; it refuses one that is a
//! symbolic link, someone else's, or writable by others, and closes one of
//! its user's that others can only read (mode 0755) to mode 0700.
//!
//! Every file is opened relative to its directory's descriptor with
//! `O_NOFOLLOW` (openat(2)), and written to a fresh temporary name
//! (`O_EXCL`) then renamed, so a reader never sees half of it. Nobody
//! rewrites another's file, so the only lock is the one that makes a name
//! claim atomic (`Sandbox::claim`).

use std::os::fd::OwnedFd;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nix::errno::Errno;

use crate::procfs;
use crate::sys;

mod sandbox;
mod state_dir;

pub use sandbox::Sandbox;
pub use state_dir::{base, check_name, generate_name, mount_point, open_state_dir, refuse};

/// A host process, identified by PID *and* start time: a PID can be reused
/// once its process is gone, a (PID, start time) pair cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Process {
    pub pid: i32,
    pub start: u64,
}

/// `sandbox.json`: what a running sandbox is, written once when PID 1
/// exists (`runtime::plan::Plan::record`), read by every verb. Typed here;
/// JSON only on disk and where it leaves the program.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub name: String,
    /// The workload's PID 1 (with --pid, the workload), and who supervises
    /// it (the foreground `pidlab run`, or the shim of `run -d`).
    pub pid1: Process,
    pub supervisor: Process,
    /// Seconds since the epoch.
    pub created: f64,
    pub detached: bool,
    pub argv: Vec<String>,
    /// "program", "shell" or "init": who the first word of argv is.
    pub pid1_role: String,
    pub nest: u32,
    /// "new", "container:NAME" or "host" (`--pid`).
    #[serde(default)]
    pub pid_namespace: String,
    pub rootless: bool,
    pub pivot_root: bool,
    pub workdir: String,
    /// A name: SIGTERM, SIGRTMIN+3, ...
    pub stop_signal: String,
    /// Seconds from the stop signal to SIGKILL; `None`: never SIGKILL.
    pub stop_timeout: Option<f64>,
    /// What `pidlab exec` gives the processes it starts inside: PID 1's
    /// limits as the run set them, never read back from a process the
    /// workload controls. The environment before the HOME PID 1 got by
    /// default. (Empty in an older pidlab's record: `exec` refuses it.)
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub user: RecordedUser,
    /// "default" or "unconfined"; empty in an older pidlab's record.
    #[serde(default)]
    pub seccomp: String,
}

/// The user PID 1 runs as.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RecordedUser {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    pub home: String,
}

/// `owner`: the process that claimed the name, and how to start the
/// sandbox again (`pidlab restart`): the command line that claimed it and
/// the directory it was typed in (for relative paths).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Owner {
    #[serde(flatten)]
    pub process: Process,
    /// Empty in an older pidlab's record.
    #[serde(default)]
    pub command_line: Vec<String>,
    #[serde(default)]
    pub cwd: Option<String>,
}

/// `exit.json`: how PID 1 ended, written by its supervisor.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Exit {
    /// The exit code, 128+N after signal N.
    pub code: i32,
    /// "exit code N" or "killed by SIGNAME" (the supervisor's `describe`).
    pub how: String,
    /// When, in seconds since the epoch.
    pub exited: f64,
}

impl Process {
    pub fn of(pid: i32) -> Option<Process> {
        Some(Process { pid, start: procfs::start_time(pid)? })
    }

    /// Still the same process, and not a zombie.
    pub fn alive(self) -> bool {
        self.pid > 0
            && procfs::start_time(self.pid) == Some(self.start)
            && procfs::Status::of(self.pid).is_some_and(|s| s.is_alive())
    }
}

/// How PID 1 ended: its exit code (128+N after signal N), the signal that
/// killed it if one did, and when (seconds since the epoch).
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    pub code: i32,
    pub signal: Option<String>,
    pub at: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Running,
    Stopping,
    /// PID 1 runs, but its supervisor is gone (it and its watcher were
    /// killed): nobody will record how PID 1 ends, but it can still be
    /// stopped, killed, entered and removed.
    Orphaned,
    /// PID 1 has exited; its supervisor is about to record how.
    Ending,
    Exited {
        code: i32,
    },
    /// PID 1 and its supervisor are gone without an exit record (a killed
    /// shim).
    Dead,
}

impl Status {
    pub fn describe(self) -> String {
        match self {
            Status::Starting => "starting".into(),
            Status::Running => "running".into(),
            Status::Stopping => "stopping".into(),
            Status::Exited { code } => format!("exited ({code})"),
            Status::Orphaned => "running (supervisor gone)".into(),
            Status::Ending => "exiting".into(),
            Status::Dead => "dead (its supervisor is gone)".into(),
        }
    }

    /// One word for the state, as JSON's `state` and `ps --filter status=`
    /// name it (`cli::STATES`); the exit code is a field of its own.
    pub fn word(self) -> &'static str {
        match self {
            Status::Starting => "starting",
            Status::Running => "running",
            Status::Stopping => "stopping",
            Status::Orphaned => "orphaned",
            Status::Ending => "exiting",
            Status::Exited { .. } => "exited",
            Status::Dead => "dead",
        }
    }

    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Stopping | Status::Orphaned)
    }
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Open a pidfd on the sandbox's PID 1, refusing a sandbox that is not
/// running. Checking liveness *after* opening makes the pidfd trustworthy:
/// if the (PID, start time) pair still matches, the pidfd is that process.
/// It must also be PID 1 of a namespace of its own (its last NSpid is 1).
/// This works whether or not the supervisor is still there.
pub fn open_pid1(sandbox: &Sandbox, verb: &str) -> Result<(Record, Process, OwnedFd)> {
    let status = sandbox.status();
    if !status.is_running() {
        let fix = match status {
            Status::Exited { .. } => format!("start a new one, or `pidlab rm {}`", sandbox.name),
            // Its supervisor is writing down how it ended, in a moment.
            Status::Ending => format!("`pidlab wait {}` prints how it ended", sandbox.name),
            _ => format!("`pidlab rm {}` cleans it up", sandbox.name),
        };
        return Err(refuse(format!(
            "cannot {verb} {}: it is {}, not running; {fix}",
            sandbox.name,
            status.describe()
        )));
    }
    let record = sandbox.record().with_context(|| {
        format!("read {}'s record (sandbox.json): missing, or not one this pidlab wrote", sandbox.name)
    })?;
    let pid1 = record.pid1;
    let just_exited = || refuse(format!("cannot {verb} {}: PID 1 has just exited", sandbox.name));
    let pidfd = match sys::pidfd_open(nix::unistd::Pid::from_raw(pid1.pid)) {
        Ok(pidfd) => pidfd,
        // Reaped between the look above and now.
        Err(Errno::ESRCH) => return Err(just_exited()),
        Err(errno) => return Err(errno).context("pidfd_open on PID 1"),
    };
    if !pid1.alive() {
        return Err(just_exited());
    }
    // A sandbox run with --pid container:NAME or --pid host is not PID 1
    // of a namespace of its own; every other one is.
    let own_namespace = matches!(record.pid_namespace.as_str(), "new" | "");
    // Its status gone (or its NSpid, which an exiting process loses):
    // it has exited since the look above, and is no forgery.
    let nspid = procfs::Status::of(pid1.pid).map(|s| s.nspid).unwrap_or_default();
    if nspid.is_empty() || !pid1.alive() {
        return Err(just_exited());
    }
    if own_namespace && (nspid.len() < 2 || nspid.last() != Some(&1)) {
        return Err(refuse(format!(
            "cannot {verb} {}: host PID {} is not PID 1 of a PID namespace (NSpid {nspid:?}), so the record is \
             not one pidlab wrote; `pidlab rm {}` removes it",
            sandbox.name, pid1.pid, sandbox.name
        )));
    }
    Ok((record, pid1, pidfd))
}
