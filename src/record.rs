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

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde_json::{Value, json};

use crate::exit_code::{Exit, SETUP_FAILED};
use crate::procfs;
use crate::sys;

/// Where the state directory is (not yet checked: see `StateDir::open`).
pub fn base() -> PathBuf {
    if let Some(dir) = env_path("PIDLAB_STATE_DIR") {
        return dir;
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() && Path::new("/run").is_dir() {
        return PathBuf::from("/run/pidlab");
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) if !uid.is_root() => dir.join("pidlab"),
        // Also where a pidlab inside a sandbox (no /run) keeps its state.
        _ => PathBuf::from(format!("/tmp/pidlab-{uid}")),
    }
}

/// An environment variable naming a directory; empty counts as unset (an
/// empty path would put the state in the current directory).
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The one directory every sandbox's root is mounted on, each in its own
/// mount namespace (see `runtime/rootfs/mod.rs`). Its name starts with a dot, which no
/// sandbox name may, so it never clashes with a sandbox's directory.
pub fn mount_point() -> Result<PathBuf> {
    let state = StateDir::open(true)?.context("the state directory vanished")?;
    match mkdirat(state.fd.as_fd(), ".root", Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(state.path.join(".root")),
        Err(errno) => Err(errno).with_context(|| {
            state_dir_error(&format!("create the mount point {}", state.path.join(".root").display()))
        }),
    }
}

fn state_dir_error(what: &str) -> String {
    format!("{what} (the state directory must be writable and not full; PIDLAB_STATE_DIR chooses another)")
}

/// A refusal with exit code 125.
pub fn refuse(message: String) -> anyhow::Error {
    Exit { code: SETUP_FAILED, message }.into()
}

/// The state directory, opened and checked (owned by the caller, not a
/// symbolic link, writable by no one else), created 0700 first if
/// `create`; `None` if it does not exist and was not to be made. For
/// other files pidlab keeps there (`lesson status`).
pub fn open_state_dir(create: bool) -> Result<Option<(PathBuf, OwnedFd)>> {
    Ok(StateDir::open(create)?.map(|dir| (dir.path, dir.fd)))
}

/// The state directory, opened and checked.
struct StateDir {
    path: PathBuf,
    fd: OwnedFd,
}

impl StateDir {
    /// Open the state directory, first creating it (mode 0700) if `create`.
    /// `None`: it does not exist, and was not to be made.
    fn open(create: bool) -> Result<Option<StateDir>> {
        let path = base();
        if create {
            make_private_dir(&path)?;
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(untrusted(&path, "is a symbolic link"));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(&path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            // Swapped for a link or a file since the look above.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(untrusted(&path, "is not a directory")),
            Err(errno) => {
                return Err(errno).with_context(|| {
                    state_dir_error(&format!("open the state directory {}", path.display()))
                });
            }
        };
        // Checked on the opened directory, so what is checked is what is used.
        let stat = fstat(fd.as_fd()).with_context(|| format!("fstat {}", path.display()))?;
        let (uid, mode) = (stat.st_uid, stat.st_mode & 0o7777);
        if uid != nix::unistd::geteuid().as_raw() || mode & 0o022 != 0 {
            return Err(untrusted(&path, &format!("belongs to uid {uid} with mode {mode:04o}")));
        }
        // Ours, and no one else can write in it, but others may read it (a
        // directory made under the usual umask 022, as the tempfile crate
        // makes them): close it to them too.
        if mode & 0o077 != 0 {
            fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700))
                .with_context(|| format!("chmod 0700 the state directory {}", path.display()))?;
        }
        Ok(Some(StateDir { path, fd }))
    }

    /// Hold the state directory's lock (flock(2)) until the guard is
    /// dropped. The kernel releases it when its holder dies, SIGKILL
    /// included, so a killed pidlab never leaves it locked.
    fn lock(&self) -> Result<Flock<OwnedFd>> {
        let fd = self.fd.try_clone().context("dup the state directory's descriptor")?;
        Flock::lock(fd, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("lock the state directory {}", self.path.display()))
    }

    /// The sandbox directory `name`, if there is one.
    fn sandbox(&self, name: &str) -> Result<Option<Sandbox>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => {
                Ok(Some(Sandbox { name: name.to_string(), dir: self.path.join(name), fd: Arc::new(fd) }))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(errno) => Err(errno).with_context(|| format!("open {}", self.path.join(name).display())),
        }
    }
}

/// Create the state directory if it is missing: mode 0700 (its parents, if
/// missing too, as usual).
fn make_private_dir(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)
            .with_context(|| state_dir_error(&format!("create the state directory {}", path.display())))?;
    }
    match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(errno) => Err(errno)
            .with_context(|| state_dir_error(&format!("create the state directory {}", path.display()))),
    }
}

fn untrusted(path: &Path, why: &str) -> anyhow::Error {
    refuse(format!(
        "the state directory {} {why}: pidlab keeps its records only in a directory of your own, mode 0700, \
         not a symbolic link (another user could forge a record or redirect a write there); remove it \
         (as its owner or root), or set PIDLAB_STATE_DIR to a directory of yours",
        path.display()
    ))
}

/// A sandbox's name: what `--name` gives, or a generated one; and what a
/// verb (`stop NAME`) is given, before it becomes a path in the state
/// directory.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !ok {
        bail!(
            "{name:?} cannot be a sandbox's name: a name is 1 to 64 letters, digits, '-', '_' or '.', not \
             starting with '.'"
        );
    }
    Ok(())
}

/// A readable, unique name such as `calm-reaper-3f9a`.
pub fn generate_name() -> String {
    const ADJECTIVES: [&str; 8] = ["calm", "brave", "eager", "quiet", "swift", "bold", "keen", "wise"];
    const NOUNS: [&str; 8] = ["init", "reaper", "orphan", "zombie", "shell", "probe", "fork", "signal"];
    let mut bytes = [0u8; 4];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    format!(
        "{}-{}-{:02x}{:02x}",
        ADJECTIVES[bytes[0] as usize % 8],
        NOUNS[bytes[1] as usize % 8],
        bytes[2],
        bytes[3]
    )
}

/// One sandbox's state directory, held open: every file in it is reached
/// through this descriptor.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub name: String,
    pub dir: PathBuf,
    fd: Arc<OwnedFd>,
}

impl Sandbox {
    /// Claim `name` for the calling process, which becomes its `owner`.
    ///
    /// One `mkdir` decides between claimers. A record left by a dead
    /// owner (`is_stale`) is removed first, under the state directory's
    /// lock, which every claim and every clean-up holds: two claimers can
    /// never both find the name stale, remove each other's directory, and
    /// both start a sandbox.
    pub fn claim(name: &str) -> Result<Sandbox> {
        check_name(name).context("--name")?;
        let state = StateDir::open(true)?.context("the state directory vanished")?;
        let _lock = state.lock()?;
        if let Some(existing) = state.sandbox(name)? {
            if !existing.is_stale() {
                let what = existing.status().describe();
                bail!(
                    "the name {name:?} is taken by a sandbox that is {what}; choose another --name, or `pidlab rm -f {name}`"
                );
            }
            existing.remove()?;
        }
        let path = state.path.join(name);
        mkdirat(state.fd.as_fd(), name, Mode::from_bits_truncate(0o700))
            .with_context(|| state_dir_error(&format!("create {}", path.display())))?;
        let sandbox = state.sandbox(name)?.with_context(|| format!("{} vanished", path.display()))?;
        let me = Process::of(nix::unistd::getpid().as_raw()).context("read our own start time")?;
        // How to start it again (`pidlab restart`): the command line that
        // claimed the name, and where it was typed (relative paths).
        let mut owner = me.to_record();
        owner["command_line"] = std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect();
        owner["cwd"] = std::env::current_dir().ok().map(|d| d.to_string_lossy().into_owned()).into();
        if let Err(err) = sandbox.write("owner", &owner) {
            let _ = sandbox.remove();
            return Err(err);
        }
        Ok(sandbox)
    }

    /// Find an existing sandbox by name.
    pub fn open(name: &str) -> Result<Sandbox> {
        check_name(name)?;
        let missing = || format!("no sandbox named {name:?} (see `pidlab ps -a`)");
        let Some(state) = StateDir::open(false)? else { bail!(missing()) };
        match state.sandbox(name)? {
            Some(sandbox) => Ok(sandbox),
            None => bail!(missing()),
        }
    }

    /// Every sandbox in the state directory, sorted by name. Records
    /// whose owner is gone (`is_stale`) are removed on the way.
    pub fn all() -> Result<Vec<Sandbox>> {
        let Some(state) = StateDir::open(false)? else { return Ok(Vec::new()) };
        let _lock = state.lock()?;
        let entries = fs::read_dir(&state.path).with_context(|| format!("list {}", state.path.display()))?;
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Ok(Some(sandbox)) = state.sandbox(&name) else { continue };
            if sandbox.is_stale() && sandbox.remove().is_ok() {
                continue;
            }
            out.push(sandbox);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn write(&self, file: &str, value: &Value) -> Result<()> {
        self.write_bytes(file, &serde_json::to_vec_pretty(value)?)
    }

    /// Write `file` whole or not at all: to a temporary name of ours that
    /// no one else can have made (`O_EXCL`, never through a symbolic link),
    /// then renamed over `file`. On failure (a full disk) the temporary
    /// file is removed.
    fn write_bytes(&self, file: &str, bytes: &[u8]) -> Result<()> {
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let dir = self.fd.as_fd();
        for attempt in 0..100 {
            let tmp = format!(".{file}.{}.{attempt}.tmp", std::process::id());
            let fd = match openat(dir, tmp.as_str(), flags, Mode::from_bits_truncate(0o600)) {
                Ok(fd) => fd,
                Err(Errno::EEXIST) => continue,
                Err(errno) => {
                    return Err(errno).with_context(|| format!("create {}", self.dir.join(&tmp).display()));
                }
            };
            let written = fs::File::from(fd)
                .write_all(bytes)
                .with_context(|| format!("write {}", self.dir.join(&tmp).display()))
                .and_then(|()| {
                    renameat(dir, tmp.as_str(), dir, file)
                        .with_context(|| format!("rename to {}", self.dir.join(file).display()))
                });
            if written.is_err() {
                let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
            }
            return written;
        }
        bail!("write {}: 100 temporary names taken", self.dir.join(file).display())
    }

    pub fn read(&self, file: &str) -> Option<Value> {
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(self.fd.as_fd(), file, flags, Mode::empty()).ok()?;
        let mut text = Vec::new();
        fs::File::from(fd).read_to_end(&mut text).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn has(&self, file: &str) -> bool {
        fstatat(self.fd.as_fd(), file, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// `sandbox.json`, typed; `None` if missing, or not one this pidlab
    /// wrote (an older pidlab's lacks the limits `exec` needs).
    pub fn record(&self) -> Option<Record> {
        serde_json::from_value(self.read("sandbox.json")?).ok()
    }

    /// Write `sandbox.json`.
    pub fn write_record(&self, record: &Record) -> Result<()> {
        self.write("sandbox.json", &serde_json::to_value(record)?)
    }

    pub fn set_stopping(&self, on: bool) {
        if on {
            let _ = self.write_bytes("stopping", now().to_string().as_bytes());
        } else {
            let _ = unlinkat(self.fd.as_fd(), "stopping", UnlinkatFlags::NoRemoveDir);
        }
    }

    /// Record how PID 1 ended (the supervisor calls this).
    pub fn record_exit(&self, code: i32, how: &str) -> Result<()> {
        self.write("exit.json", &json!({ "code": code, "how": how, "exited": now() }))
    }

    /// How PID 1 ended, as its supervisor recorded it (`record_exit`). Its
    /// `how` is "exit code N" or "killed by SIGNAME" (the supervisor's
    /// `describe`); the signal is read from the latter.
    pub fn ended(&self) -> Option<Ended> {
        let exit = self.read("exit.json")?;
        let how = exit["how"].as_str().unwrap_or("");
        Some(Ended {
            code: exit["code"].as_i64().unwrap_or(-1) as i32,
            signal: how.strip_prefix("killed by ").map(str::to_string),
            at: exit["exited"].as_f64(),
        })
    }

    pub fn remove(&self) -> Result<()> {
        fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }

    /// A record nobody will finish or clean up, which the next claim of the
    /// name or `ps` removes (holding the state directory's lock):
    ///
    /// - `starting` (no `sandbox.json`) and its owner is gone: a `run`
    ///   killed during start-up;
    /// - a foreground sandbox whose PID 1 and supervisor are both gone: a
    ///   foreground `run --name` removes its record when it ends; killed
    ///   with SIGKILL, it cannot, and its PID 1 died with it.
    ///
    /// A detached sandbox's record stays until `pidlab rm`, as docker keeps
    /// a stopped container.
    fn is_stale(&self) -> bool {
        match self.record() {
            Some(record) => !record.detached && !record.pid1.alive() && !record.supervisor.alive(),
            None => !self.read("owner").is_some_and(|owner| Process::from_record(&owner).alive()),
        }
    }

    /// Running, exited, or dead, decided from the files and from /proc.
    pub fn status(&self) -> Status {
        if let Some(exit) = self.read("exit.json") {
            return Status::Exited { code: exit["code"].as_i64().unwrap_or(-1) as i32 };
        }
        let Some(record) = self.record() else { return Status::Starting };
        match (record.pid1.alive(), record.supervisor.alive()) {
            (true, true) if self.has("stopping") => Status::Stopping,
            (true, true) => Status::Running,
            (true, false) => Status::Orphaned,
            (false, true) => Status::Ending,
            (false, false) => Status::Dead,
        }
    }
}

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

impl Process {
    pub fn of(pid: i32) -> Option<Process> {
        Some(Process { pid, start: procfs::start_time(pid)? })
    }

    pub fn to_record(self) -> Value {
        json!({ "pid": self.pid, "start": self.start })
    }

    pub fn from_record(value: &Value) -> Process {
        Process {
            pid: value["pid"].as_i64().unwrap_or(0) as i32,
            start: value["start"].as_u64().unwrap_or(0),
        }
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
    let nspid = procfs::Status::of(pid1.pid).map(|s| s.nspid).unwrap_or_default();
    if own_namespace && (nspid.len() < 2 || nspid.last() != Some(&1)) {
        return Err(refuse(format!(
            "cannot {verb} {}: host PID {} is not PID 1 of a PID namespace (NSpid {nspid:?}), so the record is \
             not one pidlab wrote; `pidlab rm {}` removes it",
            sandbox.name, pid1.pid, sandbox.name
        )));
    }
    Ok((record, pid1, pidfd))
}
