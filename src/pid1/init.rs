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
//!    with kill(2) — to its child, or (`--group`, `--setsid`) to the child's
//!    process group. Every catchable signal goes on, the real-time ones
//!    (SIGRTMIN+3 stops systemd) included, and SIGSEGV, SIGABRT and the
//!    other synchronous signals when a process sent them with kill(2) (as
//!    dumb-init does; raised by the kernel, they would be the init's own
//!    fault). SIGKILL and SIGSTOP cannot be blocked or caught, so they are
//!    never forwarded: they act on the init itself. SIGCHLD, SIGTTIN and
//!    SIGTTOU are the init's own business.
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
//! it forwards the stop signal to *every* process in the namespace
//! (kill(-1, sig), which from PID 1 means all others; when it is not PID 1,
//! every descendant), other signals too unless `--group` sends them to the
//! child's process group, and when its child exits it does not leave until
//! every other process has exited too — after sending them the stop signal
//! if they have not had it, and SIGKILL once the grace period is over.
//!
//! The peers' options mean what they mean there: tini's `-g`, `-e CODE`,
//! `-p SIG`, `-v`, `-w`, `-s` and its TINI_* variables, dumb-init's
//! `--rewrite S:R`, `--single-child` and (not pidlab's default) its new
//! session, `--setsid`. The init keeps nothing of its caller's it does not
//! need: after starting the workload it closes descriptors above 2 and
//! goes to `/`; the workload gets every disposition and the mask the init
//! inherited.

use std::collections::HashSet;
use std::ffi::{CString, OsString};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sys::prctl;
use nix::sys::signal::{SigSet, SigmaskHow};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, execvp, getpid, setpgid, setsid, tcsetpgrp};

use crate::cli::InitArgs;
use crate::signals;
use crate::sys::{self, Received, Spawn};

/// How the init passes signals on and when it leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// tini's contract: forward to the child (or its process group), exit
    /// with it.
    Tini,
    /// Forward the stop signal to everyone, and leave only when everyone
    /// has left.
    Drain,
}

/// What the command line and the peers' environment variables chose.
struct Options {
    mode: Mode,
    /// Forward to the child's process group, not only the child.
    group: bool,
    /// The child leads a session (and process group) of its own.
    setsid: bool,
    stop_signal: i32,
    grace: Duration,
    verbosity: u8,
    warn_on_reap: bool,
    remap_exit: HashSet<u8>,
    /// Signal S is forwarded as R (R = 0: not at all).
    rewrite: Vec<(i32, i32)>,
}

impl Options {
    /// The flags, then tini's and dumb-init's environment variables, which
    /// switch on what their flags switch on.
    fn new(args: &InitArgs) -> Result<Options> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let tini_verbosity = env("TINI_VERBOSITY").and_then(|v| v.parse::<u8>().ok());
        let mut rewrite = Vec::new();
        for spec in &args.rewrite {
            let parsed = spec
                .split_once(':')
                .and_then(|(s, r)| Some((s.parse::<i32>().ok()?, r.parse::<i32>().ok()?)));
            match parsed {
                Some((s, r))
                    if (1..=libc::SIGRTMAX()).contains(&s) && (0..=libc::SIGRTMAX()).contains(&r) =>
                {
                    rewrite.push((s, r))
                }
                _ => bail!("--rewrite {spec:?}: write S:R with signal numbers, e.g. 15:3 (R = 0 drops S)"),
            }
        }
        Ok(Options {
            mode: if args.drain { Mode::Drain } else { Mode::Tini },
            group: args.group || env("TINI_KILL_PROCESS_GROUP").is_some(),
            setsid: args.setsid || (env("DUMB_INIT_SETSID").as_deref() == Some("1") && !args.single_child),
            stop_signal: signals::parse_number(&args.stop_signal).context("--stop-signal")?,
            grace: args.grace.duration(),
            // tini's levels: 1 (its default) prints warnings, 2 is its -v.
            verbosity: args.verbose.max(tini_verbosity.map_or(0, |v| v.saturating_sub(1))),
            warn_on_reap: args.warn_on_reap,
            remap_exit: args.remap_exit.iter().copied().collect(),
            rewrite,
        })
    }
}

pub fn run(args: InitArgs) -> Result<i32> {
    let options = Options::new(&args)?;
    if let Some(sig) = &args.parent_death_signal {
        let signo = signals::parse_number(sig).context("--parent-death-signal")?;
        sys::set_parent_death_signal(signo).context("prctl(PR_SET_PDEATHSIG)")?;
    }
    let am_pid_1 = getpid() == Pid::from_raw(1);
    let name = CString::new("pidlab:init").expect("no NUL");
    let _ = prctl::set_name(&name);
    if !am_pid_1 {
        // Not the namespace's init: ask the kernel to give us the orphans
        // of our descendants anyway (tini -s), in every mode.
        prctl::set_child_subreaper(true).context("prctl(PR_SET_CHILD_SUBREAPER)")?;
    }
    let argv = to_cstrings(&args.command)?;

    // Block before the workload is born, so no signal (SIGCHLD above all)
    // can slip by between its birth and the first sigtimedwait. The
    // workload gets back the mask we inherited, and every disposition we
    // inherited (an init changes nothing else, so an ignored SIGHUP, as
    // under nohup, stays ignored).
    let inherited = SigSet::thread_get_mask().context("read the signal mask")?;
    let forwarded = signals::init_forwards();
    let waited =
        sys::sigset_of(forwarded.iter().copied().chain([libc::SIGCHLD, libc::SIGTTIN, libc::SIGTTOU]));
    waited.thread_block().context("block signals")?;
    // The workload borrows our memory until it execs (as posix_spawn(3)
    // does; see `sys::Spawn`): we have nothing to do in between.
    let setsid_child = options.setsid;
    // SAFETY: pidlab starts no thread (see `sys::fork`). `start_workload`
    // drops nothing of ours, takes no lock but stderr's for a failure
    // message right before `exit_now`, and installs no handler.
    let (child, pidfd) =
        unsafe { sys::spawn(Spawn::Borrow, &mut || start_workload(&argv, &inherited, setsid_child)) }
            .context("clone the workload")?;
    drop(pidfd);
    // What we inherited and do not need, the workload has by now: keep
    // no descriptor above 2 (a pipe's end held open, a deleted file) and
    // no working directory (a mount it would hold busy).
    // SAFETY: the init owns no descriptor above 2 at this point (the
    // workload's pidfd was just dropped); what it opens later is opened
    // after this call.
    let _ = unsafe { sys::close_fds_except(&[]) };
    let _ = nix::unistd::chdir("/");
    let say = Narrator { verbosity: options.verbosity };
    say.at(1, format_args!("started {} as pid {child}", args.command[0].to_string_lossy()));

    let mut init = Init {
        child,
        am_pid_1,
        status: None,
        last_signal: options.stop_signal,
        told_all: false,
        deadline: None,
        options,
    };
    loop {
        // One system call per wake-up, as tini does: take the next pending
        // signal, or time out when drain's grace period ends.
        let limit = init.deadline.map(|at| at.saturating_duration_since(Instant::now()));
        match sys::sigwait_info(&waited, limit) {
            Ok(Some(got)) if forwarded.contains(&got.signo) => init.forward(got, say),
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

/// `-v`: lines on stderr, by level. format_args! formats nothing unless
/// the line is printed, so a quiet init pays nothing per reaped child.
#[derive(Clone, Copy)]
struct Narrator {
    verbosity: u8,
}

impl Narrator {
    fn at(self, level: u8, line: std::fmt::Arguments<'_>) {
        if self.verbosity >= level {
            say!("pidlab:init: {line}");
        }
    }
}

struct Init {
    options: Options,
    child: Pid,
    am_pid_1: bool,
    /// The child's exit code once it has exited.
    status: Option<i32>,
    /// Drain: the signal the stragglers get when the child has gone.
    last_signal: i32,
    /// Drain: a signal has already gone to every process.
    told_all: bool,
    /// Drain: when the stragglers get SIGKILL.
    deadline: Option<Instant>,
}

impl Init {
    fn forward(&mut self, got: Received, say: Narrator) {
        // A synchronous signal the kernel raised (si_code > 0) is a fault
        // of the init's own, not a message for the workload.
        if signals::is_synchronous(got.signo) && got.code > 0 {
            return;
        }
        let signo = match self.options.rewrite.iter().find(|(from, _)| *from == got.signo) {
            Some((_, 0)) => {
                say.at(1, format_args!("dropped {} (--rewrite)", signals::name_of(got.signo)));
                return;
            }
            Some((_, to)) => *to,
            None => got.signo,
        };
        let to_all =
            self.options.mode == Mode::Drain && (signo == self.options.stop_signal || !self.options.group);
        let name = signals::name_of(signo);
        if to_all {
            self.last_signal = signo;
            self.told_all = true;
            self.signal_everyone(signo, say);
        } else if self.options.group || self.options.setsid {
            self.send(-self.child.as_raw(), signo, format_args!("{name} to group {}", self.child), say);
        } else {
            self.send(self.child.as_raw(), signo, format_args!("{name} to pid {}", self.child), say);
        }
    }

    fn send(&self, target: i32, signo: i32, what: std::fmt::Arguments<'_>, say: Narrator) {
        match sys::kill_number(target, signo) {
            Ok(()) => say.at(1, format_args!("forwarded {what}")),
            Err(errno) => say.at(1, format_args!("forwarding {what}: {errno}")),
        }
    }

    /// Drain: every other process of the namespace (kill(-1) from PID 1
    /// reaches them all, nested namespaces included, kill(2)); when not
    /// PID 1, every descendant, found through /proc, since kill(-1) there
    /// would reach every process this user may signal on the machine.
    fn signal_everyone(&self, signo: i32, say: Narrator) {
        let name = signals::name_of(signo);
        if self.am_pid_1 {
            self.send(-1, signo, format_args!("{name} to every process"), say);
            return;
        }
        for pid in crate::procfs::descendants(getpid().as_raw()) {
            self.send(pid, signo, format_args!("{name} to pid {pid}"), say);
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
                        say.at(1, format_args!("child {pid} exited with status {code}"));
                        self.status = Some(code);
                    } else if self.options.warn_on_reap {
                        say!(
                            "pidlab:init: warning: reaped zombie process {pid} (status {code}), not our child"
                        );
                    } else {
                        say.at(1, format_args!("reaped orphan {pid} (status {code})"));
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
        // tini -e: a code the workload uses for a clean stop counts as 0.
        let code = match u8::try_from(code) {
            Ok(c) if self.options.remap_exit.contains(&c) => 0,
            _ => code,
        };
        match self.options.mode {
            Mode::Tini => Some(code),
            Mode::Drain if none_left => {
                say.at(1, format_args!("no process left; exiting with status {code}"));
                Some(code)
            }
            Mode::Drain => {
                match self.deadline {
                    None => {
                        if !self.told_all {
                            let name = signals::name_of(self.last_signal);
                            say.at(1, format_args!("child gone; sending {name} to the rest"));
                            self.signal_everyone(self.last_signal, say);
                        }
                        say.at(
                            1,
                            format_args!("waiting up to {:?} for the rest to exit", self.options.grace),
                        );
                        self.deadline = Some(Instant::now() + self.options.grace);
                    }
                    Some(at) if Instant::now() >= at => {
                        say.at(
                            1,
                            format_args!(
                                "grace period of {:?} over; sending SIGKILL to the rest",
                                self.options.grace
                            ),
                        );
                        self.signal_everyone(libc::SIGKILL, say);
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
/// as a whole), or with `--setsid` a session of its own; the terminal's
/// foreground if there is a terminal; the signal mask the init inherited;
/// then exec.
///
/// A failure to isolate the workload ends it before the exec (125), as
/// tini does, except a tcsetpgrp that finds no terminal (ENOTTY: stdin is
/// not one, or not ours), which is the normal case without `-t`.
fn start_workload(argv: &[CString], inherited: &SigSet, new_session: bool) -> ! {
    let fail = |what: &str, err: nix::errno::Errno| -> ! {
        say!("pidlab init: {what}: {err}");
        sys::exit_now(crate::exit_code::SETUP_FAILED)
    };
    if new_session {
        if let Err(err) = setsid() {
            fail("setsid (a session for the workload)", err);
        }
    } else {
        if let Err(err) = setpgid(Pid::from_raw(0), Pid::from_raw(0)) {
            fail("setpgid (a process group for the workload)", err);
        }
        // SIGTTOU is still blocked here, so taking the terminal cannot stop us.
        match tcsetpgrp(std::io::stdin().as_fd(), nix::unistd::getpgrp()) {
            Ok(()) | Err(nix::errno::Errno::ENOTTY) => {}
            Err(err) => fail("tcsetpgrp (the terminal's foreground for the workload)", err),
        }
    }
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(inherited), None).is_err() {
        sys::exit_now(crate::exit_code::SETUP_FAILED);
    }
    let err = execvp(&argv[0], argv).unwrap_err();
    say!("pidlab init: cannot run {}: {err}", argv[0].to_string_lossy());
    sys::exit_now(crate::exit_code::of_exec_failure(err))
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
