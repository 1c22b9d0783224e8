//! Where pidlab keeps what it knows about running sandboxes, so that other
//! commands (`ps`, `exec`, `stop`, `logs`, ...) in other terminals can find
//! them.
//!
//! One directory per sandbox, `STATE/NAME/`, where STATE is `/run/pidlab`
//! for root, `$XDG_RUNTIME_DIR/pidlab` (or `/tmp/pidlab-UID`) otherwise, or
//! `$PIDLAB_STATE_DIR` when set:
//!
//! - `sandbox.json`: written once, when PID 1 exists: its host PID and start
//!   time (so a recycled PID is never mistaken for it), the supervising
//!   process (the shim, or the foreground `pidlab run`), what runs, how to
//!   stop it;
//! - `exit.json`: written by the supervisor when PID 1 has exited;
//! - `stopping`: present while `pidlab stop` is at work;
//! - `log`: the workload's stdout and stderr (detached sandboxes).
//!
//! Each file is written to a temporary name and renamed, so a reader never
//! sees half of it. Nobody rewrites another's file, so no locks are needed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

/// The directory that holds every sandbox's directory.
pub fn base() -> PathBuf {
    if let Some(dir) = std::env::var_os("PIDLAB_STATE_DIR") {
        return PathBuf::from(dir);
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() && Path::new("/run").is_dir() {
        return PathBuf::from("/run/pidlab");
    }
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !uid.is_root() => PathBuf::from(dir).join("pidlab"),
        // Also where a pidlab inside a sandbox (no /run) keeps its state.
        _ => PathBuf::from(format!("/tmp/pidlab-{uid}")),
    }
}

/// The one directory every sandbox's root is mounted on, each in its own
/// mount namespace (see `rootfs.rs`). Its name starts with a dot, which no
/// sandbox name may, so it never clashes with a sandbox's directory.
pub fn mount_point() -> Result<PathBuf> {
    let dir = base().join(".root");
    fs::create_dir_all(&dir)
        .with_context(|| state_dir_error(&format!("create the mount point {}", dir.display())))?;
    Ok(dir)
}

fn state_dir_error(what: &str) -> String {
    format!("{what} (the state directory must be writable and not full; PIDLAB_STATE_DIR chooses another)")
}

/// A sandbox's name: what `--name` gives, or a generated one.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !ok {
        bail!("--name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'");
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

/// One sandbox's state directory.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub name: String,
    pub dir: PathBuf,
}

impl Sandbox {
    /// Claim `name`: create its directory, refusing a name in use.
    pub fn claim(name: &str) -> Result<Sandbox> {
        check_name(name)?;
        let base = base();
        fs::create_dir_all(&base)
            .with_context(|| state_dir_error(&format!("create the state directory {}", base.display())))?;
        let dir = base.join(name);
        // The record of a killed foreground run does not keep its name.
        Sandbox { name: name.to_string(), dir: dir.clone() }.remove_if_abandoned();
        match fs::create_dir(&dir) {
            Ok(()) => Ok(Sandbox { name: name.to_string(), dir }),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                let existing = Sandbox { name: name.to_string(), dir };
                let what = existing.status().describe();
                bail!(
                    "the name {name:?} is taken by a sandbox that is {what}; choose another --name, or `pidlab rm -f {name}`"
                )
            }
            Err(err) => Err(err).with_context(|| state_dir_error(&format!("create {}", dir.display()))),
        }
    }

    /// Find an existing sandbox by name.
    pub fn open(name: &str) -> Result<Sandbox> {
        check_name(name)?;
        let dir = base().join(name);
        if !dir.is_dir() {
            bail!("no sandbox named {name:?} (see `pidlab ps -a`)");
        }
        Ok(Sandbox { name: name.to_string(), dir })
    }

    /// Every sandbox in the state directory, sorted by name.
    pub fn all() -> Vec<Sandbox> {
        let mut out: Vec<Sandbox> = fs::read_dir(base())
            .map(|d| {
                d.flatten()
                    .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().is_dir())
                    .map(|e| Sandbox { name: e.file_name().to_string_lossy().into_owned(), dir: e.path() })
                    .filter(|sandbox| !sandbox.remove_if_abandoned())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn write(&self, file: &str, value: &Value) -> Result<()> {
        write_atomic(&self.dir.join(file), &serde_json::to_vec_pretty(value)?)
    }

    pub fn read(&self, file: &str) -> Option<Value> {
        let text = fs::read(self.dir.join(file)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    pub fn record(&self) -> Option<Value> {
        self.read("sandbox.json")
    }

    pub fn set_stopping(&self, on: bool) {
        let path = self.dir.join("stopping");
        if on {
            let _ = write_atomic(&path, now().to_string().as_bytes());
        } else {
            let _ = fs::remove_file(path);
        }
    }

    /// Record how PID 1 ended (the supervisor calls this).
    pub fn record_exit(&self, code: i32, how: &str) -> Result<()> {
        self.write("exit.json", &json!({ "code": code, "how": how, "exited": now() }))
    }

    pub fn remove(&self) -> Result<()> {
        fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }

    /// A foreground `pidlab run --name` registers its sandbox only while it
    /// runs, and removes the record when it ends. Killed with SIGKILL, it
    /// cannot; its sandbox died with it (PR_SET_PDEATHSIG), so the record
    /// names nothing. Whoever finds such a record next (`ps`, or a `run`
    /// that wants the name) removes it. True if it did.
    fn remove_if_abandoned(&self) -> bool {
        let Some(record) = self.record() else { return false };
        let abandoned = record["detached"] == false
            && !self.dir.join("exit.json").exists()
            && !Process::from_record(&record["pid1"]).alive()
            && !Process::from_record(&record["supervisor"]).alive();
        abandoned && self.remove().is_ok()
    }

    /// Running, exited, or dead, decided from the files and from /proc.
    pub fn status(&self) -> Status {
        if let Some(exit) = self.read("exit.json") {
            return Status::Exited { code: exit["code"].as_i64().unwrap_or(-1) as i32 };
        }
        let Some(record) = self.record() else { return Status::Starting };
        let pid1 = Process::from_record(&record["pid1"]);
        let supervisor = Process::from_record(&record["supervisor"]);
        match (pid1.alive(), supervisor.alive()) {
            (true, true) if self.dir.join("stopping").exists() => Status::Stopping,
            (true, true) => Status::Running,
            _ => Status::Dead,
        }
    }
}

/// A host process, identified by PID *and* start time: a PID can be reused
/// once its process is gone, a (PID, start time) pair cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Process {
    pub pid: i32,
    pub start: u64,
}

impl Process {
    pub fn of(pid: i32) -> Option<Process> {
        Some(Process { pid, start: start_time(pid)? })
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
            && start_time(self.pid) == Some(self.start)
            && stat_field(self.pid, 0).is_some_and(|state| state != "Z" && state != "X")
    }
}

/// Field `n` (0 = state) of /proc/PID/stat after the command name.
fn stat_field(pid: i32, n: usize) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = text.rsplit_once(") ")?;
    rest.split_whitespace().nth(n).map(str::to_string)
}

/// The process's start time in clock ticks since boot (proc(5), stat field 22).
pub fn start_time(pid: i32) -> Option<u64> {
    stat_field(pid, 19)?.parse().ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Starting,
    Running,
    Stopping,
    Exited {
        code: i32,
    },
    /// PID 1 or its supervisor is gone without an exit record (a killed shim).
    Dead,
}

impl Status {
    pub fn describe(self) -> String {
        match self {
            Status::Starting => "starting".into(),
            Status::Running => "running".into(),
            Status::Stopping => "stopping".into(),
            Status::Exited { code } => format!("exited ({code})"),
            Status::Dead => "dead (its supervisor is gone)".into(),
        }
    }

    pub fn is_running(self) -> bool {
        matches!(self, Status::Running | Status::Stopping)
    }
}

pub fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).with_context(|| format!("write {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("rename {}", path.display()))
}
