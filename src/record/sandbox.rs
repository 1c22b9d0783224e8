//! One sandbox's state directory, held open: claimed, written, read,
//! removed, every file reached through its descriptor.
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstatat, mkdirat};
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::state_dir::{StateDir, state_dir_error};
use super::{Ended, Exit, Owner, Process, Record, Status, check_name, now};

/// One sandbox's state directory, held open: every file in it is reached
/// through this descriptor.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub name: String,
    pub dir: PathBuf,
    pub(super) fd: Arc<OwnedFd>,
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
        let owner = Owner {
            process: Process::of(nix::unistd::getpid().as_raw()).context("read our own start time")?,
            command_line: std::env::args_os().map(|a| a.to_string_lossy().into_owned()).collect(),
            cwd: std::env::current_dir().ok().map(|d| d.to_string_lossy().into_owned()),
        };
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

    /// Write one of the sandbox's JSON files, whole or not at all.
    pub fn write<T: serde::Serialize>(&self, file: &str, value: &T) -> Result<()> {
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

    /// One of the sandbox's JSON files, typed; `None` if missing or not
    /// what this pidlab writes.
    pub fn read<T: serde::de::DeserializeOwned>(&self, file: &str) -> Option<T> {
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
        self.read("sandbox.json")
    }

    /// `owner`, typed (`Owner`).
    pub fn owner(&self) -> Option<Owner> {
        self.read("owner")
    }

    /// `exit.json`, typed (`Exit`): written once PID 1 has ended.
    pub fn exit(&self) -> Option<Exit> {
        self.read("exit.json")
    }

    /// Write `sandbox.json`.
    pub fn write_record(&self, record: &Record) -> Result<()> {
        self.write("sandbox.json", record)
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
        self.write("exit.json", &Exit { code, how: how.to_string(), exited: now() })
    }

    /// How PID 1 ended, as its supervisor recorded it (`record_exit`). Its
    /// `how` is "exit code N" or "killed by SIGNAME" (the supervisor's
    /// `describe`); the signal is read from the latter.
    pub fn ended(&self) -> Option<Ended> {
        let exit = self.exit()?;
        Some(Ended {
            code: exit.code,
            signal: exit.how.strip_prefix("killed by ").map(str::to_string),
            at: Some(exit.exited),
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
            None => !self.owner().is_some_and(|owner| owner.process.alive()),
        }
    }

    /// Running, exited, or dead, decided from the files and from /proc.
    pub fn status(&self) -> Status {
        if let Some(exit) = self.exit() {
            return Status::Exited { code: exit.code };
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
