//! `pidlab run --trace`: the tracer as a child of pidlab's.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::picture_file;

/// `pidlab run --trace`: `pidlab trace NAME` as a child, its timeline on
/// our stderr; it ends by itself once PID 1 has exited.
pub struct Follower {
    child: std::process::Child,
    ready: OwnedFd,
}

impl Follower {
    /// `svg`: `run --trace --svg FILE`, handed on as `trace --svg FILE`.
    pub fn start(name: &str, svg: Option<&Path>) -> Result<Follower> {
        use std::os::fd::AsFd;
        if let Some(file) = svg {
            picture_file(file)?;
        }
        let (ready, ready_tx) = nix::unistd::pipe().context("pipe")?; // inherited by the tracer
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args(["trace", name, "--ready-fd", &ready_tx.as_raw_fd().to_string()]);
        if let Some(file) = svg {
            command.arg("--svg").arg(file);
        }
        let child = command.stdout(stderr).spawn().context("start pidlab trace")?;
        Ok(Follower { child, ready })
    }

    /// Wait (at most 5 s) for the tracer's word that tracing is on.
    pub fn wait_ready(&self) -> Result<()> {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(self.ready.as_fd(), nix::poll::PollFlags::POLLIN)];
        let mut byte = [0u8; 1];
        let polled = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(5000).expect("5 s"));
        if polled.unwrap_or(0) > 0 && nix::unistd::read(&self.ready, &mut byte).unwrap_or(0) == 1 {
            return Ok(());
        }
        bail!("pidlab trace did not start (it needs root and tracefs; see `pidlab doctor`)")
    }

    /// Wait (at most 5 s) for its verdict, then make sure it is gone.
    pub fn finish(mut self) {
        // A pidfd turns readable when the tracer exits: no polling loop.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if let Ok(pidfd) = crate::sys::pidfd_open(pid) {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(5000u16));
        }
        let _ = self.child.try_wait();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
