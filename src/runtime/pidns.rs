//! PID namespaces: creating them, nesting them, and reading a process's PID
//! in each of them.
//!
//! `unshare(CLONE_NEWPID)` does not move the caller: it only decides where
//! the caller's *next* child is born (unshare(2); pid_namespaces(7)). That
//! child is PID 1 of the new namespace: the kernel makes it the namespace's
//! "child reaper" and marks it SIGNAL_UNKILLABLE (kernel/fork.c). Its parent
//! stays outside, so inside, PID 1's parent PID reads as 0.
//!
//! Namespaces nest: a process has one PID in its own namespace and one in
//! every ancestor, listed in the `NSpid:` line of /proc/PID/status (proc(5)),
//! outermost first, starting at the namespace of the /proc being read. The
//! kernel allows 32 levels below the initial namespace (MAX_PID_NS_LEVEL);
//! one more fails with ENOSPC.

use std::os::fd::OwnedFd;
use std::path::Path;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid};

use crate::runtime::rootfs;
use crate::runtime::step::{Doing, Reporter, Step, StepError};
use crate::signals;
use crate::sys;

/// Nested PID namespaces the kernel allows below the initial one.
pub const MAX_NEST: u32 = crate::procfs::MAX_PID_NS_LEVEL;

/// Make this process's next child PID 1 of a new PID namespace.
pub fn unshare_for_children() -> nix::Result<()> {
    unshare(CloneFlags::CLONE_NEWPID)
}

/// `--pid container:NAME`: make this process's next child one more
/// process of the running sandbox NAME's PID namespace. setns(2) with
/// CLONE_NEWPID, like unshare, moves only the caller's future children;
/// through a pidfd of NAME's PID 1 it can never join a process that reused
/// its number. Returns that pidfd: it becomes readable when NAME's PID 1
/// exits, which ends the namespace and every process in it.
///
/// A chroot does not confine a process's root from others that see it in
/// /proc: from `/proc/PID/root/..` of a chrooted process, anyone in its
/// PID namespace walks out to the host. So the two sandboxes must switch
/// root the same way (`pivot_root`): a chrooted one would hand that way out
/// to a pivot_rooted neighbour, whichever of them joins.
pub fn join(name: &str, pivot_root: bool) -> Result<OwnedFd> {
    use nix::sched::setns;
    use std::os::fd::AsFd;
    let sandbox = crate::record::Sandbox::open(name)?;
    let (record, _, pidfd) = crate::record::open_pid1(&sandbox, "join the PID namespace of")?;
    if record.pivot_root != pivot_root {
        let fix = if record.pivot_root {
            "add --pivot-root"
        } else {
            "run {name} with --pivot-root too, or drop --pivot-root here (both then escapable, as documented)"
        };
        return Err(crate::record::refuse(format!(
            "--pid container:{name}: {name} is {}, this sandbox would be {}; a chrooted process in a shared PID \
             namespace gives every other process there a way to the host's root (/proc/PID/root/..): {}",
            if record.pivot_root { "pivot_rooted" } else { "chrooted" },
            if pivot_root { "pivot_rooted" } else { "chrooted" },
            fix.replace("{name}", name)
        )));
    }
    setns(pidfd.as_fd(), CloneFlags::CLONE_NEWPID)
        .with_context(|| format!("setns into {name}'s PID namespace through a pidfd of its PID 1"))?;
    Ok(pidfd)
}

/// Has the process behind `pidfd` exited? (A pidfd is readable then.)
pub fn has_exited(pidfd: &OwnedFd) -> bool {
    exits_within(pidfd, std::time::Duration::ZERO)
}

/// Does the process behind `pidfd` exit within `limit`?
pub fn exits_within(pidfd: &OwnedFd, limit: std::time::Duration) -> bool {
    use nix::poll::{PollFd, PollFlags, poll};
    use std::os::fd::AsFd;
    let deadline = std::time::Instant::now() + limit;
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, sys::timeout_until(Some(deadline))) {
            Err(Errno::EINTR) => continue,
            result => return result.is_ok_and(|n| n > 0),
        }
    }
}

/// PID 1 must not outlive the `pidlab` that started it. PR_SET_PDEATHSIG
/// asks the kernel for a SIGKILL when our parent dies. The kernel sends it
/// from the dying parent, which lives in an ancestor namespace, so it is one
/// of the two signals that reach a namespace's init without a handler.
///
/// There is a race: pidlab may die between our birth and the prctl, and
/// then no signal ever comes. So after the prctl we look at `pidlab`, a
/// pidfd for pidlab opened before we were born: it is readable once pidlab
/// has exited, and then we leave.
pub fn die_with_parent(pidlab: &OwnedFd) -> Result<(), StepError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    prctl::set_pdeathsig(Signal::SIGKILL).doing(|| "prctl(PR_SET_PDEATHSIG, SIGKILL)".to_string())?;
    let mut fds = [PollFd::new(pidlab.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, PollTimeout::ZERO).doing(|| "poll pidlab's pidfd".to_string())? > 0 {
        return Err(StepError::new(Errno::ESRCH, "pidlab exited before the sandbox started"));
    }
    Ok(())
}

/// Wait for pidlab's `Message::Go` on `go`. End-of-file instead means
/// the parent is gone.
pub fn wait_for_go(go: OwnedFd) -> Result<(), StepError> {
    use crate::runtime::message::Message;
    match Message::receive(&go).doing(|| "wait for pidlab's go-ahead".to_string())? {
        Some(Message::Go) => Ok(()),
        _ => Err(StepError::new(Errno::ESRCH, "pidlab exited before the sandbox started")),
    }
}

/// Add PID namespaces until the caller is at `levels` below where the
/// sandbox started. Each level forks: the parent stays behind as PID 1 of its
/// namespace (`pidlab:nest-K`), doing what a good intermediate init must, and
/// only the innermost child returns from this function.
pub fn nest(levels: u32, paths: rootfs::SystemPaths, reporter: Reporter) -> Reporter {
    for level in 2..=levels {
        // Block the signals we forward, and SIGCHLD, *before* forking: a
        // child that exits at once must not find SIGCHLD at its default
        // action (discarded) before we wait for it.
        let mut waited = signals::forwardable();
        waited.add(Signal::SIGCHLD);
        // Start from clean dispositions (whatever pidlab inherited, ignored
        // signals included), then block what this level will wait for.
        reporter.run(Step::Nest, || signals::reset_to_defaults().doing(|| "reset signals".into()));
        reporter.run(Step::Nest, || waited.thread_block().doing(|| "block signals".into()));
        reporter.run(Step::Nest, || {
            unshare_for_children().doing(|| format!("unshare(CLONE_NEWPID) for level {level}"))
        });
        // SAFETY: pidlab starts no thread (see `sys::fork`).
        let fork = || unsafe { sys::fork() }.doing(|| format!("fork PID 1 of level {level}"));
        match reporter.run(Step::Nest, fork) {
            ForkResult::Parent { child } => {
                // Close our copy of the report pipe, so the host sees
                // end-of-file once the workload has exec'd.
                drop(reporter);
                intermediate(level - 1, child, &waited)
            }
            ForkResult::Child => {
                // PID 1 of the new level: a /proc of its own, in a mount
                // namespace of its own so the outer levels keep theirs.
                reporter.run(Step::Nest, rootfs::new_mount_namespace);
                let (proc, dev_null) = (Path::new("/proc"), Path::new("/dev/null"));
                reporter.run(Step::Nest, || rootfs::mount_proc(proc, paths, dev_null));
            }
        }
    }
    reporter
}

/// The life of `pidlab:nest-K`: PID 1 of an outer level with one child, the
/// next level's PID 1. It waits for signals it has blocked (sigwait(3)), so
/// it receives them even though it has no handlers, and then:
/// - SIGCHLD: reap every exited child (orphans of this level land here too);
///   when the next level's PID 1 is among them, exit with its status;
/// - anything else: pass it on to the next level's PID 1, where the same
///   PID 1 rules apply again.
fn intermediate(level: u32, child: Pid, waited: &nix::sys::signal::SigSet) -> ! {
    let name = std::ffi::CString::new(format!("pidlab:nest-{level}")).expect("no NUL in name");
    let _ = prctl::set_name(&name);
    loop {
        let Ok(sig) = waited.wait() else { continue };
        if sig != Signal::SIGCHLD {
            let _ = kill(child, sig);
            continue;
        }
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            match status {
                WaitStatus::StillAlive => break,
                WaitStatus::Exited(pid, code) if pid == child => sys::exit_now(code),
                WaitStatus::Signaled(pid, sig, _) if pid == child => {
                    // As PID 1 we cannot die of the same signal (the kernel
                    // drops default-action signals to an init), so report it
                    // the way shells and runtimes do: 128 + N.
                    sys::exit_now(signals::exit_code_for(sig))
                }
                _ => {}
            }
        }
    }
}
