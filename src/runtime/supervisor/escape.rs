//! The way out of a foreground run that forwarded signals do not end.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;

use crate::signals;
use crate::sys;

/// The way out of a foreground run that a signal does not end: a PID 1
/// that drops what we forward (a workload without a SIGINT handler ignores
/// Ctrl-C: that is the PID 1 rule, and the lesson), or one that catches it
/// and carries on (a shell waiting for its command). Three forwarded
/// signals within 2 s (dropped ones, or Ctrl-C however taken) SIGKILL PID 1, which nothing in the namespace can
/// refuse; a dropped one is said on the spot. With `--nest`, what counts
/// is the innermost PID 1, the workload's: the outer levels pass every
/// signal on to it.
#[derive(Default)]
pub(super) struct Escape {
    sent: Vec<Instant>,
}

impl Escape {
    const WINDOW: Duration = Duration::from_secs(2);

    /// After `sig` went to PID 1, forwarded by us (`pidfd`: PID 1's, to
    /// SIGKILL it through) or sent inside by its terminal (`None`: then a
    /// caught Ctrl-C does not count, as an interactive shell catches it).
    pub(super) fn after(
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
pub(super) fn explain_before(pid1: Pid, sig: Signal) {
    let rows = crate::observe::explain::predict_all(pid1.as_raw(), sig, false);
    for line in crate::observe::explain::render(&rows, sig, false).lines() {
        say!("pidlab: {line}");
    }
}
