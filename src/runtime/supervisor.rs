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
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{Pid, getpgrp, isatty, setpgid, tcgetpgrp, tcsetpgrp};

use crate::duration::{Seconds, StopTimeout};
use crate::record::Sandbox;
use crate::runtime::console::Relay;
use crate::runtime::plan::{Plan, classify};
use crate::runtime::step::Report;
use crate::signals;
use crate::sys;

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
    mut started: Option<&mut dyn FnMut()>,
    mut relay: Option<Relay>,
) -> Result<i32> {
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
        let mut fds = vec![
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        if let Some(pipe) = report.as_ref().filter(|_| started.is_some()) {
            fds.push(PollFd::new(pipe.as_fd(), PollFlags::POLLIN));
        }
        // -t: the terminal's master, and our stdin with -i.
        let first_console = fds.len();
        if let Some(master) = relay.as_ref().and_then(|r| r.master.as_ref()) {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        let stdin_at = fds.len();
        if relay.as_ref().is_some_and(Relay::reads_input) {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
            Ok(_) => {}
        }
        let exited = fds[0].revents().is_some_and(|r| !r.is_empty());
        let signalled = fds[1].revents().is_some_and(|r| r.contains(PollFlags::POLLIN));
        let report_ready =
            (first_console > 2) && fds.get(2).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let from_sandbox = first_console < stdin_at
            && fds.get(first_console).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let from_us = fds.get(stdin_at).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
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
    if let Some(sandbox) = sandbox {
        sandbox.record_exit(code, &describe(status))?;
    }
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
    if let Some(report) = Report::parse(&reported) {
        return Err(classify(&report, &plan.launch, &plan.path).into());
    }
    Ok(code)
}

/// The watcher that SIGKILLs PID 1 if we die first (see the module
/// comment). Dropped, it is told to kill nothing and ended. It is not
/// waited for: we exit a moment later, and the system's init reaps it
/// (waiting would cost every run a switch to it and back).
pub struct Watcher {
    pid: Pid,
    /// Our own pidfd, which it polls; open until it is gone.
    _us: OwnedFd,
}

impl Watcher {
    /// Start it. Call before unshare(CLONE_NEWPID) (see
    /// `sys::spawn_watcher`).
    pub fn start() -> Result<Watcher> {
        let us = sys::pidfd_open(nix::unistd::getpid()).context("pidfd_open on pidlab itself")?;
        let pid = sys::spawn_watcher(us.as_fd()).context("start the watcher (clone)")?;
        Ok(Watcher { pid, _us: us })
    }

    /// From now on, our death kills PID 1.
    pub fn watch(&self, pid1: &OwnedFd) {
        sys::watch(Some(pid1.as_fd()));
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        sys::watch(None);
        let _ = nix::sys::signal::kill(self.pid, Signal::SIGKILL);
    }
}

/// The way out of a foreground run that a signal does not end: a PID 1
/// that drops what we forward (a workload without a SIGINT handler ignores
/// Ctrl-C: that is the PID 1 rule, and the lesson), or one that catches it
/// and carries on (a shell waiting for its command). Three forwarded
/// signals within 2 s (dropped ones, or Ctrl-C however taken) SIGKILL PID 1, which nothing in the namespace can
/// refuse; a dropped one is said on the spot. With `--nest`, what counts
/// is the innermost PID 1, the workload's: the outer levels pass every
/// signal on to it.
#[derive(Default)]
struct Escape {
    sent: Vec<Instant>,
}

impl Escape {
    const WINDOW: Duration = Duration::from_secs(2);

    /// After `sig` went to PID 1, forwarded by us (`pidfd`: PID 1's, to
    /// SIGKILL it through) or sent inside by its terminal (`None`: then a
    /// caught Ctrl-C does not count, as an interactive shell catches it).
    fn after(
        &mut self,
        sig: Signal,
        pid1: Pid,
        name: Option<&str>,
        pidfd: Option<std::os::fd::BorrowedFd<'_>>,
    ) {
        let Some(outcome) = settled_outcome(pid1.as_raw(), sig) else { return };
        let dropped = outcome == "dropped";
        // A signal PID 1 takes counts only if it is Ctrl-C forwarded by
        // us: a USR1 or HUP it handles is its business, however often sent.
        if !dropped && (pidfd.is_none() || sig != Signal::SIGINT) {
            self.sent.clear();
            return;
        }
        let now = Instant::now();
        self.sent.retain(|at| now.duration_since(*at) < Self::WINDOW);
        self.sent.push(now);
        let elsewhere = match name {
            Some(name) => format!(", or `pidlab kill {name}` from another terminal"),
            None => format!(
                ", or `kill -9 {}` (this pidlab: its sandbox dies with it) from another terminal",
                nix::unistd::getpid()
            ),
        };
        match (self.sent.len(), dropped) {
            (1, true) => say!(
                "pidlab: {sig} to PID 1 was dropped: it has no handler for it, and the kernel drops such \
                 a signal to a namespace's PID 1. Press Ctrl-C twice more within 2 s to SIGKILL it{elsewhere}"
            ),
            // Caught: PID 1 may well be ending as asked; say nothing yet.
            (1, false) => {}
            (2, true) => say!("pidlab: {sig} dropped again; once more within 2 s sends SIGKILL"),
            (2, false) => say!(
                "pidlab: PID 1 {}, and is still running. Press Ctrl-C once more within 2 s to SIGKILL \
                 it{elsewhere}",
                match outcome {
                    "queued" => format!("has {sig} blocked (queued for it)"),
                    _ => format!("caught {sig}"),
                }
            ),
            _ => {
                say!(
                    "pidlab: sending SIGKILL to PID 1 (host PID {pid1}): three signals within 2 s did not end it"
                );
                match pidfd {
                    Some(pidfd) => drop(sys::pidfd_send_signal(pidfd, Signal::SIGKILL)),
                    None => drop(nix::sys::signal::kill(pid1, Signal::SIGKILL)),
                }
                self.sent.clear();
            }
        }
    }
}

/// What `sig` does to the innermost PID 1, from /proc, once two looks 2 ms
/// apart agree (at most six looks). An init that waits for signals with
/// sigtimedwait (tini, pidlab's) has them unblocked while it waits and
/// blocked again once woken: a look at its mask and at its system call
/// taken across that moment sees neither, and would call a signal it took
/// "dropped". `None` if PID 1 is gone.
fn settled_outcome(pid1: i32, sig: Signal) -> Option<&'static str> {
    let look = || {
        let (workload, status) = crate::procfs::innermost_init(pid1)?;
        Some(crate::observe::explain::predict(&status, sig, signals::waited_for(workload)).0)
    };
    let mut last = look()?;
    for _ in 0..5 {
        std::thread::sleep(Duration::from_millis(2));
        let now = look()?;
        if now == last {
            break;
        }
        last = now;
    }
    Some(last)
}

/// `--explain`: what `sig`, about to be sent to PID 1, will do.
fn explain_before(pid1: Pid, sig: Signal) {
    let rows = crate::observe::explain::predict_all(pid1.as_raw(), sig, false);
    for line in crate::observe::explain::render(&rows, sig, false).lines() {
        say!("pidlab: {line}");
    }
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

/// The terminal's foreground process group, lent to the sandbox while it
/// runs and taken back when it ends.
pub struct Terminal {
    ours: Option<Pid>,
    /// `-t`: PID 1 leads a session of its own, whose terminal it gets.
    own_session: bool,
}

impl Terminal {
    /// Before PID 1 is born: decide whether it takes the terminal. Only
    /// with `-i` (`lend`), and if stdin is a terminal whose foreground
    /// process group is ours. Without `-i` the terminal stays with pidlab,
    /// as with `docker run`: Ctrl-C reaches pidlab, which forwards it.
    pub fn before_start(lend: bool, own_terminal: bool) -> Terminal {
        let stdin = std::io::stdin();
        let ours = getpgrp();
        let in_foreground = isatty(stdin.as_fd()).unwrap_or(false) && tcgetpgrp(stdin.as_fd()) == Ok(ours);
        if !lend || !in_foreground {
            return Terminal { ours: None, own_session: own_terminal };
        }
        // A background process group calling tcsetpgrp gets SIGTTOU unless
        // it blocks it: PID 1 inherits this mask (until step 13), and we
        // keep it blocked for the whole run, to take the terminal back.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let _ = ttou.thread_block();
        Terminal { ours: Some(ours), own_session: own_terminal }
    }

    /// In PID 1, before the workload: a process group of its own, as a
    /// container is never in its runtime's group, and the terminal's
    /// foreground if it was ours. PID 1 does this itself because it must
    /// happen before the exec, and when PID 1 is spawned borrowing our
    /// memory (`sys::Spawn::Borrow`) we sleep until then.
    pub fn join(&self) -> nix::Result<()> {
        if self.own_session {
            // setsid(2) makes PID 1 lead a new session and group; it
            // would fail in a process that already leads a group.
            return nix::unistd::setsid().map(drop);
        }
        setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        if self.ours.is_some() {
            // Best effort, as before: a terminal that went away is no reason
            // not to run.
            let _ = tcsetpgrp(std::io::stdin().as_fd(), getpgrp());
        }
        Ok(())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(ours) = self.ours {
            let _ = tcsetpgrp(std::io::stdin().as_fd(), ours);
        }
    }
}
