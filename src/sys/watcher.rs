//! The watcher: a child that SIGKILLs the sandbox if pidlab dies first.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::unistd::Pid;

use super::process::Stack;

/// The pidfd (a number in the descriptor table we share with the watcher)
/// of the process the watcher kills if we die; -1: none.
static WATCHED: AtomicI32 = AtomicI32::new(-1);

/// Start a watcher: a small child that, if we die first, SIGKILLs the
/// process whose pidfd `watch` named. It waits in one poll(2) on `us`, a
/// pidfd of ours.
///
/// Why a child and not PR_SET_PDEATHSIG alone: the kernel clears the
/// parent-death signal when a process changes its credentials (prctl(2)),
/// as the setpriv, gosu and su-exec that start many containers' workloads
/// do. The watcher keeps its own credentials.
///
/// Start it before `unshare(CLONE_NEWPID)`: every child we make after that
/// is born in the new PID namespace, and PID 1 would wait, as it dies, for
/// a watcher that waits for us.
///
/// It is cloned with `CLONE_VM | CLONE_FILES` and without `CLONE_VFORK`: it
/// runs beside us, in *our* memory and with *our* descriptor table, on a
/// stack of its own, and we go on at once. Nothing is copied (a fork would
/// copy our page tables, on the start-up path of every sandbox), and it
/// sees the pidfd we store later in `WATCHED`. The price: sharing our
/// memory and our thread-local storage, hence our `errno`, it runs no Rust
/// or C library code that could allocate, lock or set `errno`: only system
/// calls made directly (`raw_syscall`), on its own stack, which is never
/// unmapped. Returns its PID; it exits with SIGCHLD, like any child.
///
/// # Safety
/// `us` must stay open for as long as the watcher lives: it shares our
/// descriptor table and polls that number, so if it were closed and the
/// number reused, the watcher would wait on an unrelated file.
pub unsafe fn spawn_watcher(us: BorrowedFd<'_>) -> nix::Result<Pid> {
    let stack = Stack::new(64 * 1024)?;
    // Born with its name: a child's name is its parent's at clone time, and
    // anyone looking at our children must tell it from PID 1 at once.
    let ours = own_name()?;
    nix::sys::prctl::set_name(c"pidlab:watch")?;
    let flags = libc::CLONE_VM | libc::CLONE_FILES | libc::SIGCHLD;
    // SAFETY: the stack is a fresh mapping that is never unmapped (forgotten
    // below), valid for the whole life of the child; the child reads nothing
    // of ours but `arg` (an integer) and the atomic `WATCHED` (see `watch`).
    let rc =
        unsafe { libc::clone(watch_over, stack.top(), flags, us.as_raw_fd() as isize as *mut libc::c_void) };
    if rc > 0 {
        // Before anything that can fail: the child runs on this stack now.
        std::mem::forget(stack);
    }
    nix::sys::prctl::set_name(&ours)?;
    let pid = Errno::result(rc)?;
    Ok(Pid::from_raw(pid))
}

/// The calling thread's name (PR_GET_NAME). Not nix's `prctl::get_name`
/// (0.32): it hands the kernel an immutable buffer to write into, which the
/// optimiser may assume still holds zeros; a release build then read back
/// "" and, restoring it, left pidlab nameless (blank in `ps` and in the
/// trace, and `--step` took that for a process gone).
fn own_name() -> nix::Result<std::ffi::CString> {
    let mut buf = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes (TASK_COMM_LEN), NUL
    // included, into the buffer, which is ours and mutable.
    Errno::result(unsafe { libc::prctl(libc::PR_GET_NAME, buf.as_mut_ptr(), 0, 0, 0) })?;
    std::ffi::CStr::from_bytes_until_nul(&buf).map(std::ffi::CStr::to_owned).map_err(|_| Errno::EINVAL)
}

/// Tell the watcher which process to kill if we die (`None`: none).
///
/// # Safety
/// The descriptor must stay open until this is called again with `None`:
/// the watcher keeps its number, and would send SIGKILL through whatever
/// file the number named by then (another process's pidfd).
pub unsafe fn watch(pidfd: Option<BorrowedFd<'_>>) {
    WATCHED.store(pidfd.map_or(-1, |fd| fd.as_raw_fd()), Ordering::SeqCst);
}

/// The watcher's whole life (see `spawn_watcher`). System calls only.
extern "C" fn watch_over(arg: *mut libc::c_void) -> libc::c_int {
    let us = arg as isize as i64;
    let mut fds = [libc::pollfd { fd: us as i32, events: libc::POLLIN, revents: 0 }];
    loop {
        // SAFETY: `fds` is on this child's own stack, valid for the call;
        // -1: no timeout.
        let n = unsafe { raw_syscall(libc::SYS_poll, fds.as_mut_ptr() as i64, 1, -1, 0) };
        if n == -(libc::EINTR as i64) {
            continue;
        }
        // We are gone (or our pidfd is): kill what we were watching over.
        let pidfd = WATCHED.load(Ordering::SeqCst);
        if pidfd >= 0 {
            // SAFETY: a null siginfo, as in `pidfd_send_signal`. A number
            // that is no longer a pidfd fails with EBADF, harmlessly.
            unsafe { raw_syscall(libc::SYS_pidfd_send_signal, pidfd as i64, libc::SIGKILL as i64, 0, 0) };
        }
        return 0;
    }
}

/// A system call made with the `syscall` instruction itself (x86-64, the
/// only target pidlab builds for): no C library wrapper, so no `errno`
/// written. Returns the kernel's result, `-errno` on failure.
///
/// # Safety
/// The caller must pass arguments valid for system call `n`.
unsafe fn raw_syscall(n: i64, a1: i64, a2: i64, a3: i64, a4: i64) -> i64 {
    let ret: i64;
    // SAFETY: the x86-64 Linux system call convention: number in rax,
    // arguments in rdi, rsi, rdx, r10; the kernel clobbers rcx and r11.
    unsafe {
        std::arch::asm!(
            "syscall",
            inlateout("rax") n => ret,
            in("rdi") a1,
            in("rsi") a2,
            in("rdx") a3,
            in("r10") a4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}
