//! `pidlab init`: the built-in init, what `--init` runs as PID 1.
//!
//! An init has three duties that an ordinary program does not know about:
//!
//! 1. **Signals.** As PID 1 of a namespace it receives only the signals it
//!    has a handler for (SIGKILL and SIGSTOP from an ancestor namespace are
//!    the exception), and it should pass them on to the workload. Like tini,
//!    pidlab installs no handlers: it *blocks* every signal it forwards. A
//!    blocked signal is never discarded at send time, so it is queued even
//!    for PID 1, and the init takes it with sigtimedwait(2) and forwards it
//!    with kill(2) — to its child, or (`--group`) to the child's process
//!    group. SIGKILL and SIGSTOP cannot be blocked or caught, so they are
//!    never forwarded: they act on the init itself.
//! 2. **Orphans.** Every process whose parent dies is handed to PID 1 (or to
//!    the nearest subreaper, prctl(2) PR_SET_CHILD_SUBREAPER). When such an
//!    orphan exits it stays a zombie until PID 1 calls wait. The init reaps
//!    every child on each SIGCHLD. When it is not PID 1 it registers as a
//!    subreaper, so orphans still come to it.
//! 3. **Exit.** With tini's contract, the init exits as soon as its child
//!    exits, with the child's status (its code, or 128+N after signal N).
//!    When PID 1 exits, the kernel SIGKILLs everything left in the namespace.
//!
//! That last rule is why tini in front of Debian's `sh -c redis-server`
//! loses data: tini forwards SIGTERM to sh, sh dies at once, tini exits, and
//! the kernel kills redis before it has saved. `--drain` is pidlab's answer:
//! it forwards each signal to *every* process in the namespace (kill(-1,
//! sig), which from PID 1 means all others), and when its child exits it
//! does not leave until every other process has exited too — after sending
//! them the last signal it forwarded (SIGTERM if none), and SIGKILL once the
//! grace period is over.

use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, execvp, getpid, setpgid, tcsetpgrp};

use crate::cli::InitArgs;
use crate::signals;
use crate::sys::{self, Spawn};

/// How the init passes signals on and when it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// tini's contract: forward to the child, exit with it.
    Tini { group: bool },
    /// Forward to everyone, and leave only when everyone has left.
    Drain,
}

pub fn run(args: InitArgs) -> Result<i32> {
    let mode = if args.drain { Mode::Drain } else { Mode::Tini { group: args.group } };
    let grace = args.grace.duration();
    let am_pid_1 = getpid() == Pid::from_raw(1);
    if mode == Mode::Drain && !am_pid_1 {
        // kill(-1, sig) outside a PID namespace would signal every process
        // this user may signal on the whole machine.
        bail!(
            "--drain signals every process of its PID namespace with kill(-1), so it must run as PID 1 \
             of a PID namespace (pidlab run --init=drain, or unshare --pid --fork)"
        );
    }
    let name = CString::new("pidlab:init").expect("no NUL");
    let _ = prctl::set_name(&name);
    if !am_pid_1 {
        // Not the namespace's init: ask the kernel to give us the orphans
        // of our descendants anyway.
        prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let argv = to_cstrings(&args.command)?;

    // Block before the workload is born, so no signal (SIGCHLD above all)
    // can slip by between its birth and the first sigtimedwait.
    let mut waited = signals::forwardable();
    waited.add(Signal::SIGCHLD);
    for tty in [Signal::SIGTTIN, Signal::SIGTTOU] {
        waited.add(tty); // blocked, not forwarded: see isolate_child
    }
    waited.thread_block().context("block signals")?;
    // The workload borrows our memory until it execs (as posix_spawn(3)
    // does; see `sys::Spawn`): we have nothing to do in between.
    let (child, _pidfd) =
        sys::spawn(Spawn::Borrow, &mut || start_workload(&argv)).context("clone the workload")?;
    let say = Narrator { verbose: args.verbose };
    say.say(format_args!("started {} as pid {child}", args.command[0].to_string_lossy()));

    let forwarded = signals::forwardable();
    let mut init = Init {
        mode,
        child,
        grace,
        status: None,
        last_signal: Signal::SIGTERM,
        told_all: false,
        deadline: None,
    };
    loop {
        // One system call per wake-up, as tini does: take the next pending
        // signal, or time out when drain's grace period ends.
        let limit = init.deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match sys::sigtimedwait(&waited, limit) {
            Ok(Some(sig)) if sig != Signal::SIGCHLD && forwarded.contains(sig) => init.forward(sig, say),
            Ok(_) | Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(errno) => return Err(errno).context("sigtimedwait"),
        }
        // Reap on every wake-up: SIGCHLD is not queued per child, one
        // pending SIGCHLD may stand for many exits.
        let none_left = init.reap(say);
        if let Some(code) = init.next(none_left, say) {
            return Ok(code);
        }
    }
}

/// `--verbose`: one line per event on stderr. format_args! formats nothing
/// unless the line is printed, so a quiet init pays nothing per reaped child.
#[derive(Clone, Copy)]
struct Narrator {
    verbose: bool,
}

impl Narrator {
    fn say(self, line: std::fmt::Arguments<'_>) {
        if self.verbose {
            say!("pidlab:init: {line}");
        }
    }
}

struct Init {
    mode: Mode,
    child: Pid,
    grace: Duration,
    /// The child's exit code once it has exited.
    status: Option<i32>,
    last_signal: Signal,
    /// Drain: a signal has already gone to every process.
    told_all: bool,
    /// Drain: when the stragglers get SIGKILL.
    deadline: Option<Instant>,
}

impl Init {
    fn forward(&mut self, sig: Signal, say: Narrator) {
        self.last_signal = sig;
        let (target, whom) = match self.mode {
            Mode::Tini { group: false } => (self.child, format!("pid {}", self.child)),
            Mode::Tini { group: true } => {
                (Pid::from_raw(-self.child.as_raw()), format!("group {}", self.child))
            }
            // From PID 1, kill(-1) reaches every other process of the
            // namespace and of the namespaces nested in it (kill(2)).
            Mode::Drain => (Pid::from_raw(-1), "every process".to_string()),
        };
        self.told_all |= self.mode == Mode::Drain;
        match kill(target, sig) {
            Ok(()) => say.say(format_args!("forwarded {sig} to {whom}")),
            Err(errno) => say.say(format_args!("forwarding {sig} to {whom}: {errno}")),
        }
    }

    /// Reap every exited child. Returns true when no child is left at all.
    fn reap(&mut self, say: Narrator) -> bool {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return false,
                Ok(status) => {
                    let (pid, code) = match status {
                        WaitStatus::Exited(pid, code) => (pid, code),
                        WaitStatus::Signaled(pid, sig, _) => (pid, signals::exit_code_for(sig)),
                        _ => continue,
                    };
                    if pid == self.child {
                        say.say(format_args!("child {pid} exited with status {code}"));
                        self.status = Some(code);
                    } else {
                        say.say(format_args!("reaped orphan {pid} (status {code})"));
                    }
                }
                Err(Errno::ECHILD) => return true,
                Err(Errno::EINTR) => continue,
                Err(_) => return false,
            }
        }
    }

    /// Decide whether to leave, with which code.
    fn next(&mut self, none_left: bool, say: Narrator) -> Option<i32> {
        let code = self.status?;
        match self.mode {
            Mode::Tini { .. } => Some(code),
            Mode::Drain if none_left => {
                say.say(format_args!("no process left; exiting with status {code}"));
                Some(code)
            }
            Mode::Drain => {
                match self.deadline {
                    None => {
                        if !self.told_all {
                            say.say(format_args!("child gone; sending {} to the rest", self.last_signal));
                            let _ = kill(Pid::from_raw(-1), self.last_signal);
                        }
                        say.say(format_args!("waiting up to {:?} for the rest to exit", self.grace));
                        self.deadline = Some(Instant::now() + self.grace);
                    }
                    Some(at) if Instant::now() >= at => {
                        say.say(format_args!(
                            "grace period of {:?} over; sending SIGKILL to the rest",
                            self.grace
                        ));
                        let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                        self.deadline = Some(Instant::now() + Duration::from_secs(3600));
                    }
                    Some(_) => {}
                }
                None
            }
        }
    }
}

/// In the child: a process group of its own (so `--group` can signal it
/// as a whole), the terminal's foreground if there is a terminal, default
/// signal dispositions, then exec.
fn start_workload(argv: &[CString]) -> ! {
    let _ = setpgid(Pid::from_raw(0), Pid::from_raw(0));
    // SIGTTOU is still blocked here, so taking the terminal cannot stop us.
    let _ = tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::getpgrp());
    if signals::reset_to_defaults().is_err() {
        sys::exit_now(crate::exit_code::SETUP_FAILED);
    }
    let err = execvp(&argv[0], argv).unwrap_err();
    say!("pidlab init: cannot run {}: {err}", argv[0].to_string_lossy());
    sys::exit_now(if err == Errno::ENOENT {
        crate::exit_code::NOT_FOUND
    } else {
        crate::exit_code::NOT_EXECUTABLE
    })
}

fn to_cstrings(words: &[OsString]) -> Result<Vec<CString>> {
    if words.is_empty() {
        bail!("pidlab init needs a command: pidlab init -- CMD [ARG...]");
    }
    words
        .iter()
        .map(|w| CString::new(w.as_bytes()).with_context(|| format!("{w:?} contains a NUL byte")))
        .collect()
}
