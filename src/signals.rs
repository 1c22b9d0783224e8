//! Signal names, and the rules the kernel applies to a namespace's PID 1.
//!
//! The rule pidlab teaches, precisely (pid_namespaces(7), "The namespace init
//! process"; kernel/signal.c `sig_task_ignored()`): the kernel drops a signal
//! sent to the init of a PID namespace when the init left that signal at its
//! default action — unless the signal is SIGKILL or SIGSTOP *and* the sender
//! is in an ancestor namespace. PID 1 does not "ignore all signals": a signal
//! it has a handler for is delivered normally, and a signal it has blocked is
//! queued (that is how tini receives everything with `sigtimedwait`).

use anyhow::{Context, Result, bail};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

use crate::sys;

/// Parse a signal as Docker's `--stop-signal` / `STOPSIGNAL` accept it:
/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse(text: &str) -> Result<Signal> {
    let trimmed = text.trim();
    if let Ok(number) = trimmed.parse::<i32>() {
        return Signal::try_from(number).with_context(|| {
            format!("unknown signal number {number}: use a number from 1 to 31 or a name such as SIGTERM")
        });
    }
    let upper = trimmed.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
    match name.parse::<Signal>() {
        Ok(sig) => Ok(sig),
        Err(_) => bail!(
            "unknown signal {text:?}: use a name such as SIGTERM, TERM or a number such as 15 (see signal(7))"
        ),
    }
}

/// Parse a signal by number (1 to 64, real-time ones included), by name
/// (`TERM`, `SIGTERM`), or as `RTMIN+N` / `RTMAX-N`.
pub fn parse_number(text: &str) -> Result<i32> {
    let trimmed = text.trim();
    let upper = trimmed.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let number = if let Ok(n) = trimmed.parse::<i32>() {
        n
    } else if let Some(offset) = bare.strip_prefix("RTMIN") {
        min + offset.strip_prefix('+').map_or(Ok(0), str::parse::<i32>).unwrap_or(-1000)
    } else if let Some(offset) = bare.strip_prefix("RTMAX") {
        max - offset.strip_prefix('-').map_or(Ok(0), str::parse::<i32>).unwrap_or(1000)
    } else {
        return parse(text).map(|sig| sig as i32);
    };
    if !(1..=max).contains(&number) {
        bail!("signal {text:?} is out of range: use 1 to {max}, a name such as TERM, or RTMIN+N");
    }
    Ok(number)
}

/// Every signal an init passes on, by number, real-time ones included:
/// all but SIGKILL and SIGSTOP (which cannot be caught), SIGCHLD (the init's
/// own business), SIGTTIN and SIGTTOU (see `pid1/init.rs`), and 32 and 33, which
/// glibc keeps for its threads (its SIGRTMIN is 34).
pub fn init_forwards() -> Vec<i32> {
    let own = [libc::SIGKILL, libc::SIGSTOP, libc::SIGCHLD, libc::SIGTTIN, libc::SIGTTOU, 32, 33];
    (1..=libc::SIGRTMAX()).filter(|n| !own.contains(n)).collect()
}

/// The signals the kernel itself raises for a fault in the process that
/// receives them; sent with kill(2), they are ordinary signals.
pub fn is_synchronous(signo: i32) -> bool {
    [libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGSYS, libc::SIGABRT]
        .contains(&signo)
}

/// A signal's name for messages: `SIGTERM`, or `SIGRTMIN+3`.
pub fn name_of(signo: i32) -> String {
    match Signal::try_from(signo) {
        Ok(sig) => sig.as_str().to_string(),
        Err(_) if signo >= libc::SIGRTMIN() => format!("SIGRTMIN+{}", signo - libc::SIGRTMIN()),
        Err(_) => format!("SIG{signo}"),
    }
}

/// Parse a comma-separated list such as `TERM,INT,USR1`.
pub fn parse_list(text: &str) -> Result<Vec<Signal>> {
    text.split(',').filter(|part| !part.trim().is_empty()).map(parse).collect()
}

/// The signals an init (or pidlab's intermediate namespaces) passes on to
/// its child: every catchable signal except SIGCHLD (the init's own business)
/// and the synchronous ones the kernel raises for a fault in the init itself.
/// SIGKILL and SIGSTOP cannot be caught, so they are not in the list either.
pub fn forwardable() -> SigSet {
    let mut set = SigSet::empty();
    for sig in Signal::iterator() {
        let not_forwarded = matches!(
            sig,
            Signal::SIGKILL
                | Signal::SIGSTOP
                | Signal::SIGCHLD
                | Signal::SIGSEGV
                | Signal::SIGBUS
                | Signal::SIGILL
                | Signal::SIGFPE
                | Signal::SIGTRAP
                | Signal::SIGSYS
                | Signal::SIGABRT
                | Signal::SIGTTIN
                | Signal::SIGTTOU
        );
        if !not_forwarded {
            set.add(sig);
        }
    }
    set
}

/// The signals a foreground `pidlab run` passes to the sandbox's PID 1, like
/// `docker run`'s sig-proxy.
pub fn proxied() -> SigSet {
    let mut set = SigSet::empty();
    for sig in
        [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT, Signal::SIGUSR1, Signal::SIGUSR2]
    {
        set.add(sig);
    }
    set
}

/// Put every signal back to its default action and unblock them all.
///
/// A process inherits ignored signals and the signal mask across fork and
/// exec. A parent started with `cmd &` from a non-interactive bash has SIGINT
/// and SIGQUIT ignored (bash(1), SIGNALS), and pidlab itself blocks the
/// signals it forwards; without this reset the workload would inherit both
/// and every lesson about SIGINT would show an artefact of how pidlab was
/// started.
pub fn reset_to_defaults() -> nix::Result<()> {
    for signo in 1..=libc::SIGRTMAX() {
        if signo == libc::SIGKILL || signo == libc::SIGSTOP {
            continue; // their disposition can never change
        }
        sys::set_default_raw(signo)?;
    }
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
}

/// The names of signals set in a mask as /proc/PID/status prints it
/// (bit N-1 is signal N): `SIGINT`, `SIGRTMIN+3`, ...
pub fn names_in(mask: u64) -> Vec<String> {
    crate::procfs::signals_in(mask).into_iter().map(name_of).collect()
}

/// What a signal does to a process that left it at SIG_DFL (signal(7)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Terminate,
    Ignore,
    Stop,
    Continue,
}

pub fn default_action(sig: Signal) -> Action {
    match sig {
        Signal::SIGCHLD | Signal::SIGURG | Signal::SIGWINCH => Action::Ignore,
        Signal::SIGSTOP | Signal::SIGTSTP | Signal::SIGTTIN | Signal::SIGTTOU => Action::Stop,
        Signal::SIGCONT => Action::Continue,
        // Term and Core both end the process.
        _ => Action::Terminate,
    }
}

/// The signals a process is waiting for in rt_sigtimedwait(2) (sigwait(3),
/// sigwaitinfo(2), tini's loop), as a mask. While it waits, the kernel takes
/// those signals *out* of the blocked mask that /proc shows (they are kept
/// in `real_blocked`, which the kernel still honours: such a signal is
/// queued, never dropped). So read the set from the process itself:
/// /proc/PID/syscall gives the call and its arguments, /proc/PID/mem the
/// set the first argument points to. Needs the right to ptrace the process.
pub fn waited_for(pid: i32) -> u64 {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/syscall")) else { return 0 };
    let mut fields = text.split_whitespace();
    if fields.next().and_then(|n| n.parse::<i64>().ok()) != Some(libc::SYS_rt_sigtimedwait) {
        return 0;
    }
    let Some(addr) = fields.next().and_then(|a| u64::from_str_radix(a.trim_start_matches("0x"), 16).ok())
    else {
        return 0;
    };
    let mut set = [0u8; 8];
    let read = std::fs::File::open(format!("/proc/{pid}/mem"))
        .and_then(|f| std::os::unix::fs::FileExt::read_exact_at(&f, &mut set, addr));
    if read.is_err() {
        return 0;
    }
    // The kernel takes SIGKILL and SIGSTOP out of any set it is given to
    // wait for (do_sigtimedwait): they cannot be waited for, as they
    // cannot be blocked.
    let unwaitable = (1u64 << (libc::SIGKILL - 1)) | (1u64 << (libc::SIGSTOP - 1));
    u64::from_ne_bytes(set) & !unwaitable
}

/// The conventional exit code of a process killed by `sig`: 128 + N.
pub fn exit_code_for(sig: Signal) -> i32 {
    128 + sig as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_docker_accepts() {
        for text in ["SIGTERM", "TERM", "term", "15", " sigterm "] {
            assert_eq!(parse(text).unwrap(), Signal::SIGTERM, "{text}");
        }
        assert!(parse("SIGRTMIN").is_err(), "real-time names are not supported");
    }

    #[test]
    fn unknown_names_explain_the_fix() {
        let err = parse("SIGFOO").unwrap_err().to_string();
        assert!(err.contains("SIGFOO") && err.contains("SIGTERM"), "{err}");
        let err = parse("99").unwrap_err().to_string();
        assert!(err.contains("99"), "{err}");
    }

    #[test]
    fn masks_decode_to_names() {
        assert_eq!(names_in(0x4002), vec!["SIGINT", "SIGTERM"]);
        assert_eq!(names_in(1 << 36), vec!["SIGRTMIN+3"]);
        assert!(names_in(0).is_empty());
    }

    #[test]
    fn init_forwards_termination_signals_but_not_faults() {
        let set = forwardable();
        for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGUSR1] {
            assert!(set.contains(sig), "{sig} must be forwarded");
        }
        for sig in [Signal::SIGKILL, Signal::SIGSTOP, Signal::SIGCHLD, Signal::SIGSEGV] {
            assert!(!set.contains(sig), "{sig} must not be forwarded");
        }
    }
}
