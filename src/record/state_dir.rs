//! The state directory: where it is, and the checks that make it trusted
//! (the caller's own, mode 0700, not a symbolic link); sandbox names.
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, openat};
use nix::sys::stat::{Mode, fchmod, fstat, mkdirat};

use super::Sandbox;
use crate::exit_code::{Exit, SETUP_FAILED};

/// Where the state directory is (not yet checked: see `StateDir::open`).
pub fn base() -> PathBuf {
    if let Some(dir) = env_path("PIDLAB_STATE_DIR") {
        return dir;
    }
    let uid = nix::unistd::getuid();
    if uid.is_root() && Path::new("/run").is_dir() {
        return PathBuf::from("/run/pidlab");
    }
    match env_path("XDG_RUNTIME_DIR") {
        Some(dir) if !uid.is_root() => dir.join("pidlab"),
        // Also where a pidlab inside a sandbox (no /run) keeps its state.
        _ => PathBuf::from(format!("/tmp/pidlab-{uid}")),
    }
}

/// An environment variable naming a directory; empty counts as unset (an
/// empty path would put the state in the current directory).
fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// The one directory every sandbox's root is mounted on, each in its own
/// mount namespace (see `runtime/rootfs/mod.rs`). Its name starts with a dot, which no
/// sandbox name may, so it never clashes with a sandbox's directory.
pub fn mount_point() -> Result<PathBuf> {
    let state = StateDir::open(true)?.context("the state directory vanished")?;
    match mkdirat(state.fd.as_fd(), ".root", Mode::from_bits_truncate(0o755)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(state.path.join(".root")),
        Err(errno) => Err(errno).with_context(|| {
            state_dir_error(&format!("create the mount point {}", state.path.join(".root").display()))
        }),
    }
}

pub(super) fn state_dir_error(what: &str) -> String {
    format!("{what} (the state directory must be writable and not full; PIDLAB_STATE_DIR chooses another)")
}

/// A refusal with exit code 125.
pub fn refuse(message: String) -> anyhow::Error {
    Exit { code: SETUP_FAILED, message }.into()
}

/// The state directory, opened and checked (owned by the caller, not a
/// symbolic link, writable by no one else), created 0700 first if
/// `create`; `None` if it does not exist and was not to be made. For
/// other files pidlab keeps there (`lesson status`).
pub fn open_state_dir(create: bool) -> Result<Option<(PathBuf, OwnedFd)>> {
    Ok(StateDir::open(create)?.map(|dir| (dir.path, dir.fd)))
}

/// The state directory, opened and checked.
pub(super) struct StateDir {
    pub(super) path: PathBuf,
    pub(super) fd: OwnedFd,
}

impl StateDir {
    /// Open the state directory, first creating it (mode 0700) if `create`.
    /// `None`: it does not exist, and was not to be made.
    pub(super) fn open(create: bool) -> Result<Option<StateDir>> {
        let path = base();
        if create {
            make_private_dir(&path)?;
        }
        if fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(untrusted(&path, "is a symbolic link"));
        }
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = match nix::fcntl::open(&path, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            // Swapped for a link or a file since the look above.
            Err(Errno::ELOOP | Errno::ENOTDIR) => return Err(untrusted(&path, "is not a directory")),
            Err(errno) => {
                return Err(errno).with_context(|| {
                    state_dir_error(&format!("open the state directory {}", path.display()))
                });
            }
        };
        // Checked on the opened directory, so what is checked is what is used.
        let stat = fstat(fd.as_fd()).with_context(|| format!("fstat {}", path.display()))?;
        let (uid, mode) = (stat.st_uid, stat.st_mode & 0o7777);
        if uid != nix::unistd::geteuid().as_raw() || mode & 0o022 != 0 {
            return Err(untrusted(&path, &format!("belongs to uid {uid} with mode {mode:04o}")));
        }
        // Ours, and no one else can write in it, but others may read it (a
        // directory made under the usual umask 022, as the tempfile crate
        // makes them): close it to them too.
        if mode & 0o077 != 0 {
            fchmod(fd.as_fd(), Mode::from_bits_truncate(0o700))
                .with_context(|| format!("chmod 0700 the state directory {}", path.display()))?;
        }
        Ok(Some(StateDir { path, fd }))
    }

    /// Hold the state directory's lock (flock(2)) until the guard is
    /// dropped. The kernel releases it when its holder dies, SIGKILL
    /// included, so a killed pidlab never leaves it locked.
    pub(super) fn lock(&self) -> Result<Flock<OwnedFd>> {
        let fd = self.fd.try_clone().context("dup the state directory's descriptor")?;
        Flock::lock(fd, FlockArg::LockExclusive)
            .map_err(|(_, errno)| errno)
            .with_context(|| format!("lock the state directory {}", self.path.display()))
    }

    /// The sandbox directory `name`, if there is one.
    pub(super) fn sandbox(&self, name: &str) -> Result<Option<Sandbox>> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        match openat(self.fd.as_fd(), name, flags, Mode::empty()) {
            Ok(fd) => {
                Ok(Some(Sandbox { name: name.to_string(), dir: self.path.join(name), fd: Arc::new(fd) }))
            }
            Err(Errno::ENOENT) => Ok(None),
            Err(errno) => Err(errno).with_context(|| format!("open {}", self.path.join(name).display())),
        }
    }
}

/// Create the state directory if it is missing: mode 0700 (its parents, if
/// missing too, as usual).
pub(super) fn make_private_dir(path: &Path) -> Result<()> {
    // Only the directory itself: pidlab makes nothing above it (a mistyped
    // PIDLAB_STATE_DIR would otherwise leave a trail of directories).
    match nix::unistd::mkdir(path, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => Ok(()),
        Err(Errno::ENOENT) => Err(refuse(format!(
            "cannot create the state directory {}: {} does not exist; create it, or set PIDLAB_STATE_DIR to \
             a directory whose parent exists",
            path.display(),
            path.parent().map_or_else(|| "its parent".into(), |p| p.display().to_string())
        ))),
        Err(errno) => Err(errno)
            .with_context(|| state_dir_error(&format!("create the state directory {}", path.display()))),
    }
}

fn untrusted(path: &Path, why: &str) -> anyhow::Error {
    refuse(format!(
        "the state directory {} {why}: pidlab keeps its records only in a directory of your own, mode 0700, \
         not a symbolic link (another user could forge a record or redirect a write there); remove it \
         (as its owner or root), or set PIDLAB_STATE_DIR to a directory of yours",
        path.display()
    ))
}

/// A sandbox's name: what `--name` gives, or a generated one; and what a
/// verb (`stop NAME`) is given, before it becomes a path in the state
/// directory.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if !ok {
        bail!(
            "{name:?} cannot be a sandbox's name: a name is 1 to 64 letters, digits, '-', '_' or '.', not \
             starting with '.'"
        );
    }
    Ok(())
}

/// A readable, unique name such as `calm-reaper-3f9a`.
pub fn generate_name() -> String {
    const ADJECTIVES: [&str; 8] = ["calm", "brave", "eager", "quiet", "swift", "bold", "keen", "wise"];
    const NOUNS: [&str; 8] = ["init", "reaper", "orphan", "zombie", "shell", "probe", "fork", "signal"];
    let mut bytes = [0u8; 4];
    let _ = fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes));
    format!(
        "{}-{}-{:02x}{:02x}",
        ADJECTIVES[bytes[0] as usize % 8],
        NOUNS[bytes[1] as usize % 8],
        bytes[2],
        bytes[3]
    )
}
