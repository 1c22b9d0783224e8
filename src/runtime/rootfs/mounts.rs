//! The mount calls every root is built with: binds from a descriptor
//! opened without following symbolic links, read-only remounts, and the
//! new, private mount namespace they happen in.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::SFlag;

use crate::runtime::step::{Doing, StepError};

/// Bind-mount `source` on a new mount point `target`, read-only if asked.
pub(super) fn bind(source: &Path, target: &Path, read_only: bool, is_dir: bool) -> Result<(), StepError> {
    // Opened now, as it is, and mounted through its descriptor: the path
    // was checked on the host before PID 1 existed, and whoever owns it
    // could have swapped a part of it for a symbolic link since (to /etc,
    // say); the mount must take what was planned or nothing.
    let source_fd = open_source(source, is_dir)?;
    if is_dir {
        mkdir(target)?;
    } else if fs::symlink_metadata(target).is_err() {
        fs::File::create(target).doing(|| format!("create mount point {}", target.display()))?;
    }
    // MS_REC: take the mounts below source along. In a user namespace a
    // non-recursive bind of a tree with locked submounts is refused.
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(&fd_path(&source_fd)), target, None::<&str>, flags, None::<&str>)
        .doing(|| format!("bind {} on {}", source.display(), target.display()))?;
    if read_only {
        make_read_only(target)?;
    }
    Ok(())
}

/// Open a path pidlab is about to bind from or mount on, following no
/// symbolic link in any part of it (every such path was made canonical
/// when it was checked, so a link now means it changed), and check it is
/// still a directory, or not one, as planned.
pub(super) fn open_source(source: &Path, dir_wanted: bool) -> Result<OwnedFd, StepError> {
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(ResolveFlag::RESOLVE_NO_SYMLINKS | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let fd = match openat2(nix::fcntl::AT_FDCWD, source, how) {
        Err(Errno::ELOOP) => {
            return Err(StepError::new(
                Errno::ELOOP,
                format!(
                    "{} (or a directory above it) became a symbolic link after pidlab checked it; \
                     pidlab mounts only what it checked",
                    source.display()
                ),
            ));
        }
        other => other.doing(|| format!("open {}", source.display()))?,
    };
    let kind = nix::sys::stat::fstat(&fd).map(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT);
    if kind == Ok(SFlag::S_IFLNK) {
        // O_PATH | O_NOFOLLOW opens a link in the last part as the link.
        return Err(StepError::new(
            Errno::ELOOP,
            format!(
                "{} became a symbolic link after pidlab checked it; pidlab mounts only what it checked",
                source.display()
            ),
        ));
    }
    if (kind == Ok(SFlag::S_IFDIR)) != dir_wanted {
        return Err(StepError::new(
            Errno::EINVAL,
            format!(
                "{} changed since pidlab checked it (a directory became a file, or the reverse)",
                source.display()
            ),
        ));
    }
    Ok(fd)
}

/// The path that names exactly what a descriptor refers to: mount(2)
/// follows /proc/self/fd/N to the open file itself, not to a path.
pub(super) fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// A bind mount is made with its source's flags; read-only needs a second
/// call. mount_setattr(2) with AT_RECURSIVE makes the bind *and every mount
/// below it* read-only: a remount (`MS_REMOUNT | MS_BIND | MS_RDONLY`)
/// changes one mount only, and a host mount nested under /etc, say a file
/// bound over /etc/hostname, stayed writable inside. It also only sets the
/// one attribute, where a remount had to repeat every flag the mount
/// already had (in a user namespace they are locked, and a remount that
/// would clear them fails with EPERM).
fn make_read_only(target: &Path) -> Result<(), StepError> {
    let path = std::ffi::CString::new(target.as_os_str().as_encoded_bytes())
        .map_err(|_| StepError::new(Errno::EINVAL, format!("{} contains a NUL byte", target.display())))?;
    crate::sys::make_read_only_recursive(&path).doing(|| {
        format!("make {} read-only, with every mount below it (mount_setattr, Linux 5.12+)", target.display())
    })
}

pub(super) fn mkdir(path: &Path) -> Result<(), StepError> {
    match fs::create_dir(path) {
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.doing(|| format!("mkdir {}", path.display())),
    }
}

/// A mount namespace of our own: from here on, mounts we make are ours.
pub fn new_mount_namespace() -> Result<(), StepError> {
    unshare(CloneFlags::CLONE_NEWNS).doing(|| "unshare(CLONE_NEWNS)".to_string())
}

/// `mount --make-rprivate /`: stop every mount event from propagating out of
/// (or into) this namespace. Without it, our /proc and tmpfs mounts could
/// appear on the host.
pub fn make_private() -> Result<(), StepError> {
    let flags = MsFlags::MS_REC | MsFlags::MS_PRIVATE;
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>).doing(|| "make / rprivate".to_string())
}
