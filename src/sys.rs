//! The only `unsafe` in pidlab: the few system calls that Rust cannot make
//! safe on its own.
//!
//! Each function wraps one call (`spawn`: clone(2), with the stack it needs)
//! and says, in a `SAFETY:` comment, why the call is sound. Everything else in pidlab uses these wrappers or nix's
//! safe functions.
//!
//! `fork(2)` is the one to read carefully. After fork, the child is a copy of
//! a process that may have had other threads; only the forking thread exists
//! in the child, so a lock another thread held (for example inside `malloc`)
//! stays locked forever. That is why the usual rule is "between fork and exec,
//! only async-signal-safe calls". pidlab never starts a thread (it must not:
//! `unshare(CLONE_NEWUSER)` fails with EINVAL in a multithreaded process), so
//! its children start with a consistent heap and may run ordinary Rust code.
//!
//! `spawn` is the other one: it can start a child that, like a `vfork(2)`
//! child, runs in pidlab's own memory until it execs. `spawn_watcher`
//! starts a child that runs in pidlab's memory beside it, making system
//! calls only.

use std::convert::Infallible;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::errno::Errno;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::unistd::{ForkResult, Pid};

/// The program's entry point: the C library's start-up code calls
/// `main(argc, argv)`, and this is it (`#![no_main]` in main.rs).
///
/// A Rust program normally starts in the standard library's `lang_start`,
/// which reads /proc/self/maps to find the main thread's stack guard,
/// installs SIGSEGV and SIGBUS handlers on an alternate stack, ignores
/// SIGPIPE and checks that descriptors 0 to 2 are open. pidlab wants none of
/// it (see `crate::main`), and it ran at every start of every sandbox: about
/// 0.1 ms (`cargo bench --bench startup`). The standard library works all the same:
/// glibc hands it argv and the environment when the program is loaded.
/// What `lang_start` would still do is done here: a panic exits with 101
/// after its message, and stdout is flushed at the end.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let code = std::panic::catch_unwind(crate::main).unwrap_or(101);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// fork(2): make a copy of this process.
pub fn fork() -> nix::Result<ForkResult> {
    // SAFETY: pidlab is single-threaded for its whole life (see the module
    // comment), so the child inherits no lock held by another thread and may
    // allocate and run normal Rust code.
    unsafe { nix::unistd::fork() }
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
pub fn spawn(how: Spawn, mut child: &mut dyn FnMut() -> Infallible) -> nix::Result<(Pid, OwnedFd)> {
    let stack = Stack::new(512 * 1024)?;
    let mut flags = libc::CLONE_PIDFD | libc::SIGCHLD;
    if how == Spawn::Borrow {
        flags |= libc::CLONE_VM | libc::CLONE_VFORK;
    }
    let mut pidfd: libc::c_int = -1;
    let arg = (&mut child as *mut &mut dyn FnMut() -> Infallible).cast::<libc::c_void>();
    // SAFETY: `stack.top()` is the high end of a mapping that outlives the
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
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn new(len: usize) -> nix::Result<Stack> {
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
    fn top(&self) -> *mut libc::c_void {
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
pub fn spawn_watcher(us: BorrowedFd<'_>) -> nix::Result<Pid> {
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
    nix::sys::prctl::set_name(&ours)?;
    let pid = Errno::result(rc)?;
    std::mem::forget(stack);
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

/// Tell the watcher which process to kill if we die (`None`: none). The
/// descriptor must stay open until this is called again with `None`.
pub fn watch(pidfd: Option<BorrowedFd<'_>>) {
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

/// Set the disposition of `sig` to SIG_DFL or SIG_IGN (no handler code).
pub fn set_disposition(sig: Signal, handler: SigHandler) -> nix::Result<()> {
    debug_assert!(matches!(handler, SigHandler::SigDfl | SigHandler::SigIgn));
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
/// The handler must be async-signal-safe (pidlab's only handler writes a few
/// bytes to a pipe, see `pid1/probe.rs`).
pub fn set_siginfo_handler(
    sig: Signal,
    handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void),
) -> nix::Result<()> {
    let action = SigAction::new(
        SigHandler::SigAction(handler),
        SaFlags::SA_SIGINFO | SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the caller promises the handler only makes async-signal-safe
    // calls; it is a plain `extern "C"` function with the SA_SIGINFO signature.
    unsafe { nix::sys::signal::sigaction(sig, &action) }.map(drop)
}

/// Read `si_pid` from a siginfo: the sender's PID as seen from the receiver's
/// PID namespace (0 when the sender lives in an ancestor namespace).
pub fn siginfo_pid(info: *const libc::siginfo_t) -> i32 {
    // SAFETY: the kernel passes a valid siginfo to an SA_SIGINFO handler; the
    // pid field is meaningful for kill(2)/tty/kernel signals, which are the
    // only ones pidlab inspects.
    unsafe { (*info).si_pid() }
}

/// _exit(2): end this process at once, running no atexit handler and
/// flushing no stdio buffer. The right way out of a forked child that must
/// not run the parent's clean-up code (it still has a copy of it on its stack).
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit takes an integer and never returns; it touches no
    // memory of ours.
    unsafe { libc::_exit(code) }
}

/// Close every file descriptor above 2 except those in `keep`.
/// close_range(2) closes whole ranges in one call, so the ranges between the
/// kept descriptors are closed one after another.
pub fn close_fds_except(keep: &[i32]) -> nix::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|fd| **fd > 2).map(|fd| *fd as u32).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain([u32::MAX]) {
        if fd > first {
            // SAFETY: close_range only closes descriptors; the ones we still
            // use are outside every range passed.
            let rc = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
            Errno::result(rc)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// Take ownership of a descriptor inherited across exec, by number.
pub fn take_inherited_fd(fd: i32) -> nix::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with
    // EBADF if `fd` is not open.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open, and the protocol with our parent
    // (`--ready-fd`) says nobody else in this process uses it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The poll(2) timeout that ends at `deadline` (`None`: wait forever).
/// Not a system call; it lives here beside the waits that use it.
pub fn timeout_until(deadline: Option<std::time::Instant>) -> nix::poll::PollTimeout {
    use nix::poll::PollTimeout;
    match deadline {
        None => PollTimeout::NONE,
        Some(at) => {
            let ms =
                at.saturating_duration_since(std::time::Instant::now()).as_millis().min(i32::MAX as u128);
            PollTimeout::try_from(ms as i32).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// mount_setattr(2) with AT_RECURSIVE: make the mount at `path` and every
/// mount below it read-only, in one call. A remount with MS_RDONLY changes
/// one mount only, so a host mount nested under a read-only bind stayed
/// writable. Linux 5.12 and later.
pub fn make_read_only_recursive(path: &std::ffi::CStr) -> nix::Result<()> {
    mount_setattr_read_only(libc::AT_FDCWD, path, libc::AT_SYMLINK_NOFOLLOW)
}

/// The same for the mount an open descriptor names (AT_EMPTY_PATH).
pub fn make_read_only_recursive_fd(fd: BorrowedFd<'_>) -> nix::Result<()> {
    mount_setattr_read_only(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)
}

fn mount_setattr_read_only(dirfd: RawFd, path: &std::ffi::CStr, flags: libc::c_int) -> nix::Result<()> {
    let attr =
        libc::mount_attr { attr_set: libc::MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
    // SAFETY: `path` is a NUL-terminated string and `attr` a valid
    // mount_attr of the size passed; both live for the call, and the kernel
    // only reads them. `dirfd` is AT_FDCWD or a descriptor the caller holds.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            dirfd,
            path.as_ptr(),
            libc::AT_RECURSIVE | flags,
            &attr as *const libc::mount_attr,
            std::mem::size_of::<libc::mount_attr>(),
        )
    };
    Errno::result(rc).map(drop)
}

/// seccomp(2) SECCOMP_SET_MODE_FILTER: attach a BPF program that the
/// kernel runs at every system call this process (and every child it
/// will have) makes. Filters stack: each call adds one, none can be
/// removed. The caller must hold CAP_SYS_ADMIN (pidlab does not set
/// no_new_privs, as Docker does not: set-user-ID programs inside keep
/// working, see `runtime/seccomp.rs`).
pub fn install_seccomp_filter(program: &[libc::sock_filter]) -> nix::Result<()> {
    let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
    let fprog = libc::sock_fprog { len, filter: program.as_ptr().cast_mut() };
    // SAFETY: `fprog` points to `program`, `len` instructions long; both
    // live for the call, and the kernel copies the program before it returns.
    let rc = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0, &fprog as *const libc::sock_fprog)
    };
    Errno::result(rc).map(drop)
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

/// prctl(PR_SET_PDEATHSIG, signo): the signal this process gets when its
/// parent dies, by number (real-time ones included).
pub fn set_parent_death_signal(signo: i32) -> nix::Result<()> {
    // SAFETY: prctl with integer arguments only.
    Errno::result(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signo as libc::c_ulong, 0, 0, 0) }).map(drop)
}

/// Send one descriptor over a Unix socket (SCM_RIGHTS): the receiver gets
/// its own descriptor for the same open file, as runc's console socket
/// hands the container's terminal to its caller.
pub fn send_fd(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>) -> nix::Result<()> {
    use nix::sys::socket::{ControlMessage, MsgFlags, UnixAddr, sendmsg};
    let fds = [fd.as_raw_fd()];
    let iov = [std::io::IoSlice::new(b"t")];
    sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &[ControlMessage::ScmRights(&fds)], MsgFlags::empty(), None)
        .map(drop)
}

/// Receive one descriptor sent with `send_fd`; `None` if the sender closed
/// the socket without sending (it failed; its report says why).
pub fn receive_fd(socket: BorrowedFd<'_>) -> nix::Result<Option<OwnedFd>> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
    let mut byte = [0u8; 1];
    let mut iov = [std::io::IoSliceMut::new(&mut byte)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let msg =
        recvmsg::<UnixAddr>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC)?;
    for cmsg in msg.cmsgs()? {
        if let ControlMessageOwned::ScmRights(fds) = cmsg
            && let Some(fd) = fds.first()
        {
            // SAFETY: the kernel just installed this descriptor in our
            // table for us (SCM_RIGHTS); nothing else owns it.
            return Ok(Some(unsafe { OwnedFd::from_raw_fd(*fd) }));
        }
    }
    Ok(None)
}

/// ioctl(TIOCSCTTY): make the terminal `fd` the caller's controlling
/// terminal (the caller must lead a session that has none).
pub fn set_controlling_terminal(fd: BorrowedFd<'_>) -> nix::Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal it
    // from another session); the descriptor is valid for the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSCTTY, 0) }).map(drop)
}

/// The window size of terminal `fd` (TIOCGWINSZ).
pub fn window_size(fd: BorrowedFd<'_>) -> nix::Result<libc::winsize> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes one winsize into `size`, which lives for
    // the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCGWINSZ, &mut size) })?;
    Ok(size)
}

/// Set the window size of terminal `fd` (TIOCSWINSZ); the kernel sends
/// SIGWINCH to its foreground process group.
pub fn set_window_size(fd: BorrowedFd<'_>, size: &libc::winsize) -> nix::Result<()> {
    // SAFETY: TIOCSWINSZ reads one winsize from `size`, alive for the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, size as *const libc::winsize) })
        .map(drop)
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
