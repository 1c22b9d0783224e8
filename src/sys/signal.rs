//! Signals: dispositions, handlers, sets with real-time numbers, waiting.

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};

/// Set the disposition of `sig` to its default action, or to ignored when
/// `ignore` (no handler code of ours: any handler is an `unsafe` promise,
/// see `set_siginfo_handler`).
pub fn set_disposition(sig: Signal, ignore: bool) -> nix::Result<()> {
    let handler = if ignore { SigHandler::SigIgn } else { SigHandler::SigDfl };
    let action = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: SIG_DFL and SIG_IGN run no code of ours in signal context.
    unsafe { nix::sys::signal::sigaction(sig, &action) }.map(drop)
}

/// Set signal number `signo` to its default action, with the raw
/// rt_sigaction(2) system call. glibc's sigaction() refuses signals 32 and
/// 33, which it reserves for its threads; but a process can inherit them
/// ignored, and the workload must not.
pub fn set_default_raw(signo: i32) -> nix::Result<()> {
    // The kernel's struct sigaction on Linux: handler, flags, restorer, mask.
    // All zero is SIG_DFL, no flags, nothing blocked.
    let action = [0u64; 4];
    // SAFETY: `action` is a valid, zeroed kernel sigaction that lives for the
    // call; the old-action pointer is null; the mask size is 8 bytes (64
    // signals), as the kernel expects.
    let rc = unsafe {
        libc::syscall(libc::SYS_rt_sigaction, signo, action.as_ptr(), std::ptr::null_mut::<u64>(), 8usize)
    };
    Errno::result(rc).map(drop)
}

/// Install `handler` for `sig` with SA_SIGINFO, so it learns the sender.
///
/// # Safety
/// `handler` runs in signal context, interrupting this thread anywhere,
/// perhaps inside `malloc` or while it holds a lock: it must make only
/// async-signal-safe calls (signal-safety(7)), touch only atomics, and leave
/// `errno` as it found it, since the code it interrupted may be about to
/// read it (pidlab's only handler writes a few bytes to a pipe, see
/// `pid1/probe.rs`). Any descriptor it writes to must stay open for as long
/// as the handler is installed, in this process and in children that
/// inherit it.
pub unsafe fn set_siginfo_handler(
    sig: Signal,
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(handler),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the caller promises the handler is async-signal-safe (see
    // `# Safety`); it is an `extern "C"` function with the SA_SIGINFO
    // signature, which the flags ask for.
    unsafe { nix::sys::signal::sigaction(sig, &action) }.map(drop)
}

/// Read `si_pid` from a siginfo: the sender's PID as seen from the receiver's
/// PID namespace (0 when the sender lives in an ancestor namespace, or the
/// kernel sent it).
///
/// # Safety
/// `info` must be the pointer the kernel passed to an SA_SIGINFO handler
/// (`set_siginfo_handler`), read during that handler's run.
pub unsafe fn siginfo_pid(info: *const libc::siginfo_t) -> i32 {
    // SAFETY: the caller promises a siginfo the kernel filled in and that is
    // still alive. `si_pid` reads the union member kill(2), sigqueue(3),
    // the terminal and SIGCHLD fill in; for a fault (SIGSEGV) it reads the
    // fault address's low bits, a wrong number but no invalid memory.
    unsafe { (*info).si_pid() }
}

/// A signal set holding signal numbers, real-time ones included (nix's
/// `Signal` names only 1 to 31).
pub fn sigset_of(numbers: impl IntoIterator<Item = i32>) -> SigSet {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set it is given; sigaddset only
    // sets a bit in it (and refuses, harmlessly, a number out of range).
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for n in numbers {
            libc::sigaddset(set.as_mut_ptr(), n);
        }
        SigSet::from_sigset_t_unchecked(set.assume_init())
    }
}

/// A signal taken with `sigwait_info`: its number, how it was sent
/// (`si_code`: 0 or less from a process, kill(2) or sigqueue(3); more than
/// 0 from the kernel itself), and by whom.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signo: i32,
    pub code: i32,
}

/// sigtimedwait(2) that reports how the signal was sent: take one pending
/// signal of `set` (which must be blocked), waiting at most `limit`.
pub fn sigwait_info(set: &SigSet, limit: Option<std::time::Duration>) -> nix::Result<Option<Received>> {
    let timeout = limit.map(|d| libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    });
    let timeout_ptr = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::zeroed();
    // SAFETY: `set` is a valid sigset_t, `info` is space for one siginfo,
    // `timeout_ptr` is null or points to `timeout`; all live for the call.
    let rc = unsafe { libc::sigtimedwait(set.as_ref(), info.as_mut_ptr(), timeout_ptr) };
    match Errno::result(rc) {
        // SAFETY: on success the kernel filled `info`.
        Ok(signo) => Ok(Some(Received { signo, code: unsafe { info.assume_init() }.si_code })),
        Err(Errno::EAGAIN) => Ok(None),
        Err(errno) => Err(errno),
    }
}

/// kill(2) with a signal number, real-time ones included.
pub fn kill_number(pid: i32, signo: i32) -> nix::Result<()> {
    // SAFETY: kill takes two integers and touches no memory of ours.
    Errno::result(unsafe { libc::kill(pid, signo) }).map(drop)
}

/// Make `cmd`'s child start with no signal blocked. A child inherits its
/// parent's signal mask across fork and exec, and pidlab blocks signals it
/// reads from a signalfd (`lesson check`, the supervisor): a program it
/// starts must not inherit that.
pub fn unblock_signals_in_child(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the child between fork and exec, and
    // only calls sigprocmask(2), which is async-signal-safe; it allocates
    // nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::signal::sigprocmask(
                nix::sys::signal::SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            )
            .map_err(std::io::Error::from)
        });
    }
}
