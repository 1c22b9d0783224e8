//! The host side of a foreground sandbox, like an attached `docker run`:
//! pass signals on to PID 1, stop it as `docker stop` would, and wait for it
//! on a pidfd.
//!
//! Waiting uses one `poll(2)` over two descriptors, so nothing is polled on
//! a timer: a pidfd (pidfd_open(2)), which becomes readable when PID 1
//! exits, and a signalfd (signalfd(2)), which turns the signals we blocked
//! into data to read. A stop deadline is the poll's timeout.
//!
//! Signals sent to a foreground `pidlab run` (SIGINT, SIGTERM, SIGHUP,
//! SIGQUIT, SIGUSR1, SIGUSR2) are forwarded to PID 1 from the host — so the
//! PID 1 rule applies to them: one PID 1 has no handler for is dropped.
//! When stdin is a terminal, the sandbox gets the terminal's foreground
//! (tcsetpgrp(3)), as `docker run -it` gives its pty to the container: then
//! Ctrl-C is sent by the kernel's tty driver straight to the sandbox's
//! process group, not through pidlab.
//!
//! PID 1 must not outlive its supervisor: a sandbox nobody supervises has
//! no one to record its end. PID 1 asks for PR_SET_PDEATHSIG (step 3), but
//! the kernel clears it when the workload changes credentials (setpriv,
//! gosu, su-exec). So the supervisor also starts a watcher
//! (`pidlab:watch`, `Watcher`, before PID 1 exists) that SIGKILLs PID 1 if
//! the supervisor dies first, by any signal; SIGKILL from the host reaches
//! PID 1 whatever its handlers, and the kernel then kills the whole
//! namespace.

use std::fmt;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::duration::{Seconds, StopTimeout};
use crate::record::Sandbox;
use crate::runtime::console::Relay;
use crate::runtime::plan::{Plan, classify};
use crate::runtime::step::Report;
use crate::signals;
use crate::sys;

mod escape;
mod terminal;
mod watcher;

use escape::{Escape, explain_before};
pub use terminal::Terminal;
pub use watcher::Watcher;

/// How the sandbox is stopped: `docker stop`'s signal and grace period, and
/// `--stop-after`.
#[derive(Debug, Clone)]
pub struct Stop {
    /// By number: Docker takes real-time signals too (SIGRTMIN+3 stops
    /// systemd).
    pub signal: i32,
    /// `None`: wait forever after the stop signal (`-1`).
    pub grace: Option<Duration>,
    pub after: Option<Duration>,
}

impl Stop {
    /// `--stop-timeout` and `--stop-after`, checked by the command line
    /// (`duration.rs`); no timeout means docker's 10 s.
    pub fn new(signal: i32, timeout: Option<StopTimeout>, after: Option<Seconds>) -> Stop {
        let grace = timeout.map_or(Some(Duration::from_secs(10)), StopTimeout::limit);
        Stop { signal, grace, after: after.map(Seconds::duration) }
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = signals::name_of(self.signal);
        match self.grace {
            // STOPSIGNAL 9: nothing can outlast it, no grace period matters.
            _ if self.signal == libc::SIGKILL => write!(f, "SIGKILL at once (the stop signal is SIGKILL)")?,
            Some(g) => write!(f, "{name}, then SIGKILL after {} s", g.as_secs_f64())?,
            None => write!(f, "{name}, never SIGKILL")?,
        }
        if let Some(after) = self.after {
            write!(f, " (sent {} s after start)", after.as_secs_f64())?;
        }
        Ok(())
    }
}

/// PID 1 as its parent holds it: its PID, a pidfd, and the read end of the
/// report pipe (`step.rs`).
pub struct Pid1 {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub report: OwnedFd,
    /// What was already read from the report pipe (`--step`).
    pub reported: Vec<u8>,
}

/// Where the stop sequence is.
enum Phase {
    Running,
    Signalled { at: Instant },
    Killed,
}

/// Supervise PID 1 until it exits; return pidlab's exit code.
///
/// `started`, if given, is called once the workload has been exec'd: the
/// report pipe closed with nothing in it. Watching the pipe for that wakes
/// us up just as PID 1 execs, which costs about 0.06 ms of start-up
/// (`cargo bench --bench startup`), so it is done only when someone waits
/// for that moment (the shim, to tell `run -d` the sandbox started);
/// otherwise the report is read once PID 1 has exited.
pub fn supervise(
    pid1: Pid1,
    terminal: Terminal,
    plan: &Plan,
    sandbox: Option<&Sandbox>,
    hooks: crate::runtime::Hooks,
    mut relay: Option<Relay>,
) -> Result<i32> {
    let crate::runtime::Hooks { mut started, ended } = hooks;
    let Pid1 { pid: child, pidfd, report, reported } = pid1;
    let mut watched = signals::proxied();
    if relay.is_some() {
        watched.add(Signal::SIGWINCH);
    }
    let signals = SignalFd::with_flags(&watched, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    let stdin = std::io::stdin();
    let began = Instant::now();
    let mut phase = Phase::Running;
    let mut report = Some(std::fs::File::from(report));
    let mut reported = reported;
    let mut escape = Escape::default();
    loop {
        let deadline = next_deadline(&phase, &plan.stop, began);
        let timeout = sys::timeout_until(deadline);
        // Each descriptor's place in the poll set, `None` when it is not
        // in this round's.
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let report_at = place(&mut fds, report.as_ref().filter(|_| started.is_some()).map(AsFd::as_fd));
        // -t: the terminal's master, and our stdin with -i.
        let master_at = place(&mut fds, relay.as_ref().and_then(|r| r.master.as_ref()).map(AsFd::as_fd));
        let stdin_at = place(&mut fds, relay.as_ref().filter(|r| r.reads_input()).map(|_| stdin.as_fd()));
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
            Ok(_) => {}
        }
        let ready = |at: Option<usize>| {
            at.and_then(|i| fds.get(i)).and_then(PollFd::revents).is_some_and(|r| !r.is_empty())
        };
        let exited = ready(Some(0));
        let signalled = fds[1].revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let (report_ready, from_sandbox, from_us) = (ready(report_at), ready(master_at), ready(stdin_at));
        drop(fds);
        if let Some(relay) = relay.as_mut() {
            if from_sandbox {
                relay.copy_output();
            }
            if from_us {
                // Ctrl-C typed for a PID 1 in the terminal's foreground:
                // the sandbox's line discipline sends it SIGINT; if the
                // kernel drops it there, the way out still holds.
                let typed = relay.copy_input();
                if typed.contains(&0x03) && relay.foreground() == Some(child.as_raw()) {
                    escape.after(Signal::SIGINT, child, sandbox.map(|s| s.name.as_str()), None);
                }
            }
        }
        if report_ready && let Some(pipe) = report.as_mut() {
            let mut chunk = [0u8; 4096];
            match std::io::Read::read(pipe, &mut chunk) {
                Ok(0) => {
                    // End of file: every write end is closed. Nothing in
                    // it: the workload was exec'd.
                    report = None;
                    if reported.is_empty()
                        && let Some(started) = started.as_mut()
                    {
                        started();
                    }
                }
                Ok(n) => reported.extend_from_slice(&chunk[..n]),
                Err(_) => report = None,
            }
        }
        if exited {
            break;
        }
        if signalled {
            if let Ok(Some(info)) = signals.read_signal()
                && let Ok(sig) = Signal::try_from(info.ssi_signo as i32)
            {
                if sig == Signal::SIGWINCH {
                    if let Some(relay) = &relay {
                        relay.copy_window_size();
                    }
                    continue;
                }
                if plan.explain {
                    explain_before(child, sig);
                }
                // ESRCH: PID 1 is exiting right now; nothing to do.
                let _ = sys::pidfd_send_signal(pidfd.as_fd(), sig);
                escape.after(sig, child, sandbox.map(|s| s.name.as_str()), Some(pidfd.as_fd()));
                // Our terminal hung up (or someone sent us SIGHUP): no one
                // is left to see or stop this run, and a PID 1 that drops
                // SIGHUP would keep it going unseen. Stop it as `docker
                // stop` does: the stop signal, the grace period, SIGKILL.
                if sig == Signal::SIGHUP && matches!(phase, Phase::Running) {
                    say!("pidlab: SIGHUP: the terminal is gone; stopping the sandbox");
                    phase = advance(phase, &plan.stop, pidfd.as_fd(), child);
                }
            }
            continue;
        }
        if deadline.is_some_and(|at| Instant::now() >= at) {
            if plan.explain
                && matches!(phase, Phase::Running)
                && let Ok(sig) = Signal::try_from(plan.stop.signal)
            {
                explain_before(child, sig);
            }
            phase = advance(phase, &plan.stop, pidfd.as_fd(), child);
        }
    }

    let status = waitpid(child, None).context("waitpid on PID 1")?;
    if let Some(mut relay) = relay {
        relay.drain();
    }
    drop(terminal);
    let code = match status {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => signals::exit_code_for(sig),
        other => bail!("unexpected wait status for PID 1: {other:?}"),
    };
    if let Phase::Signalled { at } = phase {
        say!(
            "pidlab: PID 1 exited {:.2} s after {} ({})",
            at.elapsed().as_secs_f64(),
            signals::name_of(plan.stop.signal),
            describe(status)
        );
    }
    if let Some(mut pipe) = report {
        let _ = std::io::Read::read_to_end(&mut pipe, &mut reported);
    }
    // Last, once everything the run says is said: the caller's hook (the
    // shim completes the log), then the recorded end.
    if let Some(ended) = ended {
        ended();
    }
    if let Some(sandbox) = sandbox {
        sandbox.record_exit(code, &describe(status))?;
    }
    if let Some(report) = Report::parse(&reported) {
        return Err(classify(&report, &plan.launch, &plan.path).into());
    }
    Ok(code)
}

/// Add `fd`, if any, to the poll set; its place there.
fn place<'a>(fds: &mut Vec<PollFd<'a>>, fd: Option<std::os::fd::BorrowedFd<'a>>) -> Option<usize> {
    fd.map(|fd| {
        fds.push(PollFd::new(fd, PollFlags::POLLIN));
        fds.len() - 1
    })
}

fn next_deadline(phase: &Phase, stop: &Stop, started: Instant) -> Option<Instant> {
    match phase {
        Phase::Running => stop.after.map(|after| started + after),
        Phase::Signalled { at } => stop.grace.map(|grace| *at + grace),
        Phase::Killed => None,
    }
}

/// One step of `docker stop`: the stop signal, then after the grace period
/// SIGKILL — which reaches PID 1 from the host whatever its handlers are;
/// the kernel then kills every other process in the namespace.
fn advance(phase: Phase, stop: &Stop, pidfd: std::os::fd::BorrowedFd<'_>, child: Pid) -> Phase {
    match phase {
        Phase::Running => {
            say!("pidlab: sending {} to PID 1 (host PID {child})", signals::name_of(stop.signal));
            let _ = sys::pidfd_send_signal_number(pidfd, stop.signal);
            if stop.grace == Some(Duration::ZERO) {
                return advance(Phase::Signalled { at: Instant::now() }, stop, pidfd, child);
            }
            Phase::Signalled { at: Instant::now() }
        }
        Phase::Signalled { .. } => {
            let grace = stop.grace.map_or(0.0, |g| g.as_secs_f64());
            say!(
                "pidlab: PID 1 did not exit within {grace} s of {} — sending SIGKILL",
                signals::name_of(stop.signal)
            );
            let _ = sys::pidfd_send_signal(pidfd, Signal::SIGKILL);
            Phase::Killed
        }
        Phase::Killed => Phase::Killed,
    }
}

fn describe(status: WaitStatus) -> String {
    match status {
        WaitStatus::Exited(_, code) => format!("exit code {code}"),
        WaitStatus::Signaled(_, sig, _) => format!("killed by {sig}"),
        other => format!("{other:?}"),
    }
}
