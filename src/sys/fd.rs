//! Descriptors: closing what a child must not keep, taking one inherited by
//! number, passing one over a socket, poll timeouts, terminals.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

/// Close every file descriptor above 2 except those in `keep`.
/// close_range(2) closes whole ranges in one call, so the ranges between the
/// kept descriptors are closed one after another.
///
/// # Safety
/// A descriptor closed here may still be owned by an `OwnedFd`, a `File` or
/// a socket somewhere in this process, which would later use or close a
/// number that is free, or by then someone else's. The caller promises that
/// no such owner of a closed descriptor is used or dropped afterwards: it
/// calls this on a path that ends in execve(2) or `exit_now` (which drops
/// nothing), or when it holds no descriptor above 2 but those in `keep`.
pub unsafe fn close_fds_except(keep: &[i32]) -> nix::Result<()> {
    let mut keep: Vec<u32> = keep.iter().filter(|fd| **fd > 2).map(|fd| *fd as u32).collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for fd in keep.into_iter().chain([u32::MAX]) {
        if fd > first {
            // SAFETY: close_range only closes descriptors; the ones we still
            // use are outside every range passed, and no owner of the others
            // is used again (the caller's promise, see `# Safety`).
            let rc = unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
            Errno::result(rc)?;
        }
        first = fd.saturating_add(1);
    }
    Ok(())
}

/// Take ownership of a descriptor inherited across exec, by number. Fails
/// with EBADF if `fd` is not open.
///
/// # Safety
/// Nothing else in this process may own `fd` (no `OwnedFd`, `File`, ... for
/// it, and no second call for the same number), or two owners would close
/// it, the second time perhaps someone else's descriptor.
pub unsafe fn take_inherited_fd(fd: i32) -> nix::Result<OwnedFd> {
    // SAFETY: F_GETFD only reads the descriptor's flags; it fails with
    // EBADF if `fd` is not open.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open, and the caller promises it has no
    // other owner here.
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
