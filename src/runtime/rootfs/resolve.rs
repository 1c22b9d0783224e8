//! Paths inside a root, resolved as the workload will resolve them
//! (openat2 with RESOLVE_IN_ROOT), and the directories and files pidlab
//! makes there: only on a tmpfs of its own, never in a `--rootfs DIR`.

use std::fs;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag};

use crate::runtime::step::{Doing, StepError};

/// Open `target` (absolute, as the workload names it) inside `root`, the
/// way the workload will resolve it: openat2(2) with RESOLVE_IN_ROOT makes
/// `/` and `..` stop at `root`, so an absolute symbolic link in the root
/// (`/data -> /srv`) leads to the root's /srv, never to the host's.
pub(super) fn open_in_root(root: &OwnedFd, target: &Path) -> nix::Result<OwnedFd> {
    let relative = target.strip_prefix("/").unwrap_or(target);
    let relative = if relative.as_os_str().is_empty() { Path::new(".") } else { relative };
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, relative, how)
}

/// The text of `target` (absolute, as the workload names it) inside the
/// directory `root`, resolved as the workload will resolve it; `None` if
/// there is no such file. pidlab reads the root's /etc/passwd and
/// /etc/group this way (`runtime/user.rs`).
pub fn read_in_root(root: &Path, target: &Path) -> Option<String> {
    let root = open_dir(root).ok()?;
    let relative = target.strip_prefix("/").unwrap_or(target);
    let how = OpenHow::new()
        .flags(OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    let file = fs::File::from(openat2(&root, relative, how).ok()?);
    // The root file system may have been written by an earlier workload:
    // a FIFO or a device there must not block or feed pidlab forever.
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(file, MAX_ROOT_FILE), &mut text).ok()?;
    Some(text)
}

/// The most pidlab reads of a file in a root file system (/etc/passwd,
/// /etc/group): far more than any real one, small enough to be harmless.
const MAX_ROOT_FILE: u64 = 1 << 20;

pub(super) fn open_dir(dir: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// The ID of the mount `path` is on (`mnt_id` in /proc/self/fdinfo,
/// proc(5)): unique to one mount, unlike a device number, which a bind of
/// a host directory shares with every other directory of its file system.
pub(super) fn mount_id(path: &Path) -> Result<u64, StepError> {
    let fd = open_dir(path).doing(|| format!("open {}", path.display()))?;
    mount_id_of(&fd).doing(|| format!("find the mount of {}", path.display()))
}

fn mount_id_of(fd: &OwnedFd) -> std::io::Result<u64> {
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|line| line.strip_prefix("mnt_id:"))
        .and_then(|id| id.trim().parse().ok())
        .ok_or_else(|| std::io::Error::other("no mnt_id in fdinfo"))
}

/// A directory the sandbox needs at `target`: where `-v HOST:TARGET` is
/// mounted, or the working directory (Docker creates a missing WORKDIR or
/// `-w`). TARGET is resolved inside the root as the workload will resolve
/// it (`open_in_root`) and returned as the path the kernel found, with no
/// symbolic link left in it. A TARGET that does not exist is created, but
/// only on a tmpfs pidlab mounted for this root (`own_tmpfs`): pidlab
/// writes nothing into a `--rootfs DIR`, nor, through a symbolic link,
/// anywhere on the host. `what` names it in messages.
pub(super) fn directory_in_root(
    root: &Path,
    target: &Path,
    own_tmpfs: &[u64],
    what: &str,
) -> Result<PathBuf, StepError> {
    let root_fd = open_dir(root).doing(|| format!("open {}", root.display()))?;
    let names: Vec<&std::ffi::OsStr> = target
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    // The longest part of TARGET that exists.
    let mut found = names.len();
    let mut dir = loop {
        let prefix: PathBuf = names[..found].iter().collect();
        match open_in_root(&root_fd, &prefix) {
            Ok(fd) => break fd,
            Err(Errno::ENOENT) if found > 0 => found -= 1,
            Err(errno) => {
                return Err(errno).doing(|| format!("{what}: resolve it in the root"));
            }
        }
    };
    let shown = |upto: usize| -> PathBuf {
        std::iter::once(std::ffi::OsStr::new("/")).chain(names[..upto].iter().copied()).collect()
    };
    if found < names.len() {
        // Decided by the mount the existing part is on, as the kernel found
        // it: an earlier volume may cover one of pidlab's tmpfs.
        let mount = mount_id_of(&dir).doing(|| format!("find the mount of {}", shown(found).display()))?;
        if !own_tmpfs.contains(&mount) {
            return Err(StepError::new(
                Errno::ENOENT,
                format!(
                    "{what}: no such directory in the root, and pidlab creates a missing directory \
                     only on a tmpfs it mounted for the sandbox, never in --rootfs DIR or in a host \
                     directory ({} is one of those): create it first, or choose another path",
                    shown(found).display()
                ),
            ));
        }
        for (i, name) in names.iter().enumerate().skip(found) {
            match nix::sys::stat::mkdirat(&dir, *name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(errno).doing(|| format!("{what}: mkdir")),
            }
            let how = OpenHow::new()
                .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
                .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
            dir = match openat2(&dir, *name, how) {
                Ok(fd) => fd,
                // It exists, yet did not resolve inside the root: a symbolic
                // link to a path the root does not have.
                Err(Errno::ELOOP) => {
                    return Err(StepError::new(
                        Errno::ELOOP,
                        format!(
                            "{what}: {} is a symbolic link to a path that is not in the root \
                             (pidlab does not follow it out to the host)",
                            shown(i + 1).display()
                        ),
                    ));
                }
                Err(errno) => {
                    return Err(errno).doing(|| format!("{what}: open {}", shown(i + 1).display()));
                }
            };
        }
    }
    // The kernel's own name for what the descriptor refers to.
    let fd_path = format!("/proc/self/fd/{}", dir.as_raw_fd());
    fs::read_link(&fd_path).doing(|| format!("{what}: readlink {fd_path}"))
}

/// A file the sandbox needs at `target` (a file volume's mount point):
/// its directory made as `directory_in_root` makes one, then an empty file
/// created in it, only if it is missing and only on pidlab's own tmpfs.
pub(super) fn file_in_root(
    root: &Path,
    target: &Path,
    own_tmpfs: &[u64],
    what: &str,
) -> Result<PathBuf, StepError> {
    let parent = target.parent().unwrap_or(Path::new("/"));
    let name =
        target.file_name().ok_or_else(|| StepError::new(Errno::EINVAL, format!("{what}: no file name")))?;
    let dir_path = directory_in_root(root, parent, own_tmpfs, what)?;
    let dir = open_dir(&dir_path).doing(|| format!("{what}: open {}", dir_path.display()))?;
    let path = dir_path.join(name);
    match nix::sys::stat::fstatat(&dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFREG => return Ok(path),
        Ok(_) => {
            return Err(StepError::new(
                Errno::EISDIR,
                format!("{what}: a file volume needs a file there, and the root has something else"),
            ));
        }
        Err(Errno::ENOENT) => {}
        Err(errno) => return Err(errno).doing(|| format!("{what}: stat {}", path.display())),
    }
    let mount = mount_id_of(&dir).doing(|| format!("find the mount of {}", dir_path.display()))?;
    if !own_tmpfs.contains(&mount) {
        return Err(StepError::new(
            Errno::ENOENT,
            format!(
                "{what}: no such file in the root, and pidlab creates a missing mount point only on a \
                 tmpfs it mounted for the sandbox, never in --rootfs DIR or a host directory: create it \
                 first, or choose another path"
            ),
        ));
    }
    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
    nix::fcntl::openat(&dir, name, flags, Mode::from_bits_truncate(0o644))
        .doing(|| format!("{what}: create the mount point {}", path.display()))?;
    Ok(path)
}
