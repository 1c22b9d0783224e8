//! The watcher that kills PID 1 if the supervisor dies first.

use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::sys;

/// The watcher that SIGKILLs PID 1 if we die first (see the module
/// comment). Dropped, it is told to kill nothing and ended. It is not
/// waited for: we exit a moment later, and the system's init reaps it
/// (waiting would cost every run a switch to it and back).
pub struct Watcher {
    pid: Pid,
    /// What it would kill: our own copy of PID 1's pidfd, open until the
    /// watcher is told to kill nothing (`Drop`).
    watched: Option<OwnedFd>,
    /// Our own pidfd, which it polls; open until it is gone.
    _us: OwnedFd,
}

impl Watcher {
    /// Start it. Call before unshare(CLONE_NEWPID) (see
    /// `sys::spawn_watcher`).
    pub fn start() -> Result<Watcher> {
        let us = sys::pidfd_open(nix::unistd::getpid()).context("pidfd_open on pidlab itself")?;
        // SAFETY: `us` is a field of the Watcher, closed only after `Drop`
        // has killed the watcher.
        let pid = unsafe { sys::spawn_watcher(us.as_fd()) }.context("start the watcher (clone)")?;
        Ok(Watcher { pid, watched: None, _us: us })
    }

    /// From now on, our death kills PID 1.
    pub fn watch(&mut self, pid1: &OwnedFd) -> Result<()> {
        let watched = self.watched.insert(pid1.try_clone().context("dup PID 1's pidfd for the watcher")?);
        // SAFETY: `watched` is ours, closed only after `Drop` has called
        // `sys::watch(None)`.
        unsafe { sys::watch(Some(watched.as_fd())) };
        Ok(())
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // SAFETY: None names no descriptor.
        unsafe { sys::watch(None) };
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
    }
}
