//! Processes: fork, clone, pidfds, and the ways out of a child.
//!
//! `fork(2)` is the one to read carefully. After fork, the child is a copy of
//! a process that may have had other threads; only the forking thread exists
//! in the child, so a lock another thread held (for example inside `malloc`)
//! stays locked forever. That is why the usual rule is "between fork and exec,
//! only async-signal-safe calls". pidlab never starts a thread (it must not:
//! `unshare(CLONE_NEWUSER)` fails with EINVAL in a multithreaded process), so
//! its children start with a consistent heap and may run ordinary Rust code.
//! That is a promise about the whole process, which no function can check
//! for its caller: `fork` and `spawn` are `unsafe fn`, and each caller says
//! why it holds there.
//!
//! `spawn` can also start a child that, like a `vfork(2)` child, runs in
//! pidlab's own memory until it execs.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::unistd::{ForkResult, Pid};

/// fork(2): make a copy of this process.
///
/// # Safety
/// No other thread may exist in this process: the child would inherit the
/// locks they hold, held forever, and its Rust code (which allocates)
/// could deadlock or see a heap in mid-update.
pub unsafe fn fork() -> nix::Result<ForkResult> {
    // SAFETY: the caller promises a single thread, which is all
    // nix::unistd::fork asks of a child that runs more than async-signal-safe
    // calls.
    unsafe { nix::unistd::fork() }
}

/// The whole life of a child made by `fork`: run `body`, then exit with its
/// code, never returning into the frames fork copied from the parent. A
/// panic exits with 101 (as in `spawn`'s children): unwinding would run code
/// meant for the parent and drop the parent's owners of descriptors the
/// child may have closed (`close_fds_except`) or that now mean something
/// else.
pub fn child(body: impl FnOnce() -> i32) -> ! {
    let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
    exit_now(code)
}

/// How `spawn` makes a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spawn {
    /// As fork(2): the child runs in a copy of our memory, and we go on at
    /// once.
    Copy,
    /// As vfork(2) and posix_spawn(3) (`CLONE_VM | CLONE_VFORK`): the child
    /// runs in *our* memory, on a stack of its own, and we sleep until it
    /// has exec'd or exited. No page table is copied, no page is copied on
    /// write by either side, and the child runs at once on this CPU instead
    /// of waiting for us to block: about 0.25 ms less per sandbox here
    /// (`cargo bench --bench startup`). The price: we cannot act between the
    /// child's birth and its exec, and what the child writes to memory, the
    /// heap included, is written in ours: harmless while we sleep, as long
    /// as it frees nothing of ours (what it allocates only leaks) and prints
    /// nothing through Rust's buffered stdout (we would print it again).
    /// Another thread of ours would not sleep: pidlab has none.
    Borrow,
}

/// clone(2): start a child that runs `child` on a stack of its own. `child`
/// must end in execve(2) or `exit_now` (it never returns: `Infallible`).
/// Returns the child's PID and a pidfd for it, made by the kernel in the
/// same call (`CLONE_PIDFD`), so no other process can take the PID first.
///
/// # Safety
/// No other thread may exist in this process. With `Spawn::Copy` for the
/// reason `fork` gives; with `Spawn::Borrow` because only the calling thread
/// sleeps while the child runs in our memory: another would run beside it,
/// on the same heap and the same thread-local `errno`, unsynchronised.
///
/// With `Spawn::Borrow`, `child` runs in our memory as a function call
/// that never returns, so it must also: free or drop nothing we own
/// (dropping what it made itself is fine, it only leaks); hold no lock or
/// guard when it execs or exits (we would find it held); leave no pointer
/// into its own stack where we can reach it (that stack is unmapped when
/// `spawn` returns); and install no signal handler (the handler would run
/// in our memory, in the child, before its exec; posix_spawn(3) resets
/// handlers for this reason).
pub unsafe fn spawn(how: Spawn, mut child: &mut dyn FnMut() -> Infallible) -> nix::Result<(Pid, OwnedFd)> {
    let stack = Stack::new(512 * 1024)?;
    let mut flags = libc::CLONE_PIDFD | libc::SIGCHLD;
    if how == Spawn::Borrow {
        flags |= libc::CLONE_VM | libc::CLONE_VFORK;
    }
    let mut pidfd: libc::c_int = -1;
    let arg = (&mut child as *mut &mut dyn FnMut() -> Infallible).cast::<libc::c_void>();
    // SAFETY: the caller promises a single thread (see `# Safety`).
    // `stack.top()` is the high end of a mapping that outlives the
    // child's use of it (Borrow: we sleep until the child execs or exits,
    // which ends its use; Copy: the child has its own copy). `arg` points to
    // `child`, alive for the same time. With CLONE_PIDFD the kernel writes
    // a new descriptor into `pidfd`.
    let rc = unsafe { libc::clone(run_child, stack.top(), flags, arg, &mut pidfd as *mut libc::c_int) };
    let pid = Errno::result(rc)?;
    // SAFETY: on success the kernel returned a new descriptor that nobody
    // else owns yet.
    Ok((Pid::from_raw(pid), unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// The child's first Rust code after clone(2), on its new stack.
extern "C" fn run_child(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `spawn` passed a pointer to its `&mut dyn FnMut() -> Infallible`,
    // valid for as long as the child needs it (see `spawn`).
    let child = unsafe { &mut *arg.cast::<&mut dyn FnMut() -> Infallible>() };
    // Unwinding out of this C-called function is undefined behaviour: a
    // panic ends the child, as a panic ends pidlab, with 101.
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)) {
        Ok(never) => match never {},
        Err(_) => exit_now(101),
    }
}

/// A stack for `spawn`'s child: anonymous memory with an inaccessible guard
/// page at its low end, so an overflow faults instead of overwriting
/// whatever lies below.
pub(super) struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    pub(super) fn new(len: usize) -> nix::Result<Stack> {
        let guard = 4096;
        // SAFETY: a new private anonymous mapping at an address the kernel
        // chooses; nothing of ours is replaced.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let stack = Stack { base, len };
        // SAFETY: the first page of the mapping we just made, used by nothing.
        Errno::result(unsafe { libc::mprotect(base, guard, libc::PROT_NONE) })?;
        Ok(stack)
    }

    /// Stacks grow down on x86-64: the child starts at the high end.
    pub(super) fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which the ABI expects as
        // the initial stack pointer (16-byte aligned: `len` is page-sized).
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; no child uses it any more (see `spawn`).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// pidfd_open(2): a file descriptor that refers to one process. It becomes
/// readable when the process exits, and signals sent through it can never hit
/// another process that later reuses the same PID number.
pub fn pidfd_open(pid: Pid) -> nix::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments; no memory is shared.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    let fd = Errno::result(fd)?;
    // SAFETY: on success the kernel returned a new descriptor that nobody
    // else owns yet.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// pidfd_send_signal(2): send `sig` to the process behind `pidfd`.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: Signal) -> nix::Result<()> {
    pidfd_send_signal_number(pidfd, sig as i32)
}

/// The same, by signal number (real-time ones included).
pub fn pidfd_send_signal_number(pidfd: BorrowedFd<'_>, signo: i32) -> nix::Result<()> {
    // SAFETY: a null siginfo pointer asks the kernel to fill in the same
    // siginfo kill(2) would; the descriptor is valid for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signo,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    Errno::result(rc).map(drop)
}

/// _exit(2): end this process at once, running no atexit handler and
/// flushing no stdio buffer. The right way out of a forked child that must
/// not run the parent's clean-up code (it still has a copy of it on its stack).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns; it touches no
    // memory of ours.
    unsafe { libc::_exit(code) }
}

/// prctl(PR_SET_PDEATHSIG, signo): the signal this process gets when its
/// parent dies, by number (real-time ones included).
pub fn set_parent_death_signal(signo: i32) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signo as libc::c_ulong, 0, 0, 0) }).map(drop)
}
