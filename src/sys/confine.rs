//! Confinement calls nix does not wrap: recursive read-only mounts and
//! seccomp filters.

use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use nix::errno::Errno;

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
/// working, see `runtime/seccomp/`).
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
