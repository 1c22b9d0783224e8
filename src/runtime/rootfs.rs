//! The sandbox's root filesystem and its fresh /proc.
//!
//! A new mount namespace starts as a copy of the parent's mount table. On
//! most systems `/` is a *shared* mount (systemd makes it so), and a mount
//! made under a shared mount propagates to every peer — including the host's
//! namespace (mount_namespaces(7), "Shared subtrees"). So the first thing the
//! sandbox does in its mount namespace is make every mount private; only then
//! may it mount anything.
//!
//! Every root gets pidlab's own /proc, a /dev of its own, and
//! `/.pidlab/pidlab`, a read-only bind of pidlab itself (as `docker run
//! --init` binds docker-init), so `pidlab probe` runs in any root. Each is
//! mounted *over* a mount point, an empty directory or file, and pidlab
//! never writes into a `--rootfs DIR`. So there are two ways to make a root:
//!
//! - *prepared*: DIR already has the mount points (/proc, /dev, /tmp and
//!   /.pidlab/pidlab, as an image carries empty /proc and /dev; the roots
//!   `rootfs-scripts/` build have them). DIR is bound whole, read-write:
//!   one mount, as `unshare --root` or `bwrap --bind DIR /` use it.
//! - *assembled*, as bubblewrap does: a fresh tmpfs that only this mount
//!   namespace sees, into which pidlab makes the mount points and binds the
//!   pieces of the root: the host's /usr, /bin, /lib*, /etc read-only (the
//!   default root, with a fresh /tmp and /data), or every top-level entry of
//!   a DIR that lacks mount points, read-write. The tmpfs is made read-only
//!   once built: the workload cannot add top-level entries.
//!
//! When the namespace goes away every one of these mounts goes with it.
//!
//! Every sandbox mounts its root (the tmpfs, or DIR) on the same empty
//! directory, `STATE/.root` (`state::mount_point`). That is safe because a mount
//! belongs to one mount namespace: each sandbox sees only its own root
//! there, and the host sees an empty directory. Nothing is created per run,
//! so a pidlab killed mid-run leaves nothing on disk to clean up.
//!
//! /proc must be mounted again because a procfs shows the PID namespace of
//! the process that mounted it (pid_namespaces(7), "/proc and PID
//! namespaces"): the host's /proc would show the host's processes.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::{Mode, SFlag, mknod};
use nix::unistd::{chdir, chroot, pivot_root};

use crate::runtime::step::{Doing, StepError};

/// The host directories the default root is made of, read-only.
const HOST_DIRS: [&str; 8] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

/// The device nodes a workload expects, with the numbers the kernel gives
/// them everywhere (the kernel's Documentation/admin-guide/devices.txt):
/// name, major, minor. Every one is mode 0666, as on the host.
const DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// Entries of `--rootfs DIR` that pidlab provides itself instead.
const PROVIDED: [&str; 3] = ["proc", "dev", ".pidlab"];

/// The directories a prepared root must have for pidlab to mount over.
const MOUNT_POINTS: [&str; 3] = ["proc", "dev", "tmp"];

/// Where pidlab itself appears inside the sandbox.
pub const PIDLAB_DIR: &str = "/.pidlab";

/// pidlab's binary inside the sandbox, relative to the root.
const PIDLAB_BINARY: &str = ".pidlab/pidlab";

/// How the root is made (see the module comment).
#[derive(Debug)]
enum Layout {
    /// DIR, bound whole: it has every mount point.
    Prepared(PathBuf),
    /// A tmpfs with these top-level entries.
    Assembled(Vec<Entry>),
}

/// One top-level entry of the root.
#[derive(Debug)]
enum Entry {
    /// Bind-mount a host directory or file.
    Bind { source: PathBuf, name: String, read_only: bool, is_dir: bool },
    /// Recreate a symbolic link (`/bin -> usr/bin` on merged-/usr systems).
    Symlink { name: String, target: PathBuf },
    /// A fresh, writable tmpfs.
    Tmpfs { name: String },
}

/// A host directory bound into the sandbox with `-v HOST:PATH[:ro]`.
#[derive(Debug, Clone)]
pub struct Volume {
    pub host: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl Volume {
    pub fn parse(spec: &str) -> Result<Volume> {
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, target, read_only) = match parts[..] {
            [host, target] => (host, target, false),
            [host, target, "rw"] => (host, target, false),
            [host, target, "ro"] => (host, target, true),
            [_, _, other] => bail!("volume {spec:?}: unknown option {other:?}; use :ro or :rw"),
            _ => bail!("volume {spec:?} is not HOST:PATH[:ro]; e.g. -v /tmp/data:/data"),
        };
        // Docker reads a HOST without a slash as a named volume, which
        // pidlab does not have, and refuses a relative path.
        if !host.starts_with('/') {
            bail!(
                "volume {spec:?}: {host:?} is not an absolute host path; pidlab has no named volumes: \
                 give an absolute host path, e.g. -v \"$PWD/{host}:{target}\""
            );
        }
        let host = fs::canonicalize(host).with_context(|| {
            format!("volume {spec:?}: host path {host:?} does not exist; create it first")
        })?;
        // As Docker does (filepath.Clean): `.` and `..` are resolved in the
        // text, before any symbolic link is looked at.
        let mut clean = PathBuf::from("/");
        for part in Path::new(target).components() {
            match part {
                Component::Normal(name) => clean.push(name),
                Component::ParentDir => {
                    clean.pop();
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if !target.starts_with('/') || clean == Path::new("/") {
            bail!("volume {spec:?}: the path inside must be absolute and not /, e.g. /data");
        }
        // pidlab mounts its own /proc (after the volumes, so it would hide
        // them) and its own binary at /.pidlab.
        for own in ["/proc", PIDLAB_DIR] {
            if clean.starts_with(own) {
                bail!(
                    "volume {spec:?}: pidlab mounts {own} itself, over anything placed there; choose \
                     another path inside"
                );
            }
        }
        Ok(Volume { host, target: clean, read_only })
    }
}

/// What the root will be made of, decided (and checked) on the host.
#[derive(Debug)]
pub struct RootPlan {
    layout: Layout,
    volumes: Vec<Volume>,
    workdir: PathBuf,
}

impl RootPlan {
    /// `None` for the default root, or `--rootfs DIR`; the volumes and the
    /// working directory (absolute) it must have.
    pub fn new(rootfs: Option<&Path>, volumes: Vec<Volume>, workdir: &Path) -> Result<RootPlan> {
        let layout = match rootfs {
            None => Layout::Assembled(default_entries()),
            Some(dir) => {
                let dir = check_rootfs(dir)?;
                if is_prepared(&dir, &volumes, workdir) {
                    Layout::Prepared(dir)
                } else {
                    Layout::Assembled(image_entries(&dir)?)
                }
            }
        };
        Ok(RootPlan { layout, volumes, workdir: workdir.to_path_buf() })
    }

    /// Where the root will be built: pidlab's one shared mount point.
    pub fn create(self) -> Result<Root> {
        let exe = std::env::current_exe().context("find pidlab's own binary (/proc/self/exe)")?;
        let dir = crate::record::mount_point()?;
        Ok(Root { dir, layout: self.layout, volumes: self.volumes, workdir: self.workdir, exe })
    }
}

/// The root's mount point, and what goes in it.
#[derive(Debug)]
pub struct Root {
    dir: PathBuf,
    layout: Layout,
    volumes: Vec<Volume>,
    workdir: PathBuf,
    exe: PathBuf,
}

impl Root {
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Build the root under `self.path()`. Runs in the child, in its own
    /// mount namespace, after `make_private`.
    pub fn build(&self) -> Result<(), StepError> {
        let root = self.path();
        // The tmpfs pidlab mounts for this root, by mount ID: the only
        // places it may create a volume's mount point. Taken as each is
        // mounted, before any volume can cover it.
        let mut own_tmpfs = Vec::new();
        match &self.layout {
            Layout::Prepared(dir) => {
                let dir_fd = open_source(dir, true)?;
                let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
                mount(Some(&fd_path(&dir_fd)), root, None::<&str>, flags, None::<&str>)
                    .doing(|| format!("bind {} on {}", dir.display(), root.display()))?;
            }
            Layout::Assembled(entries) => {
                // A tmpfs only this namespace sees: nothing is written on the host.
                let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
                mount(Some("tmpfs"), root, Some("tmpfs"), flags, Some("mode=0755"))
                    .doing(|| format!("mount a tmpfs on {}", root.display()))?;
                own_tmpfs.push(mount_id(root)?);
                let fresh_tmp = Entry::Tmpfs { name: "tmp".into() };
                let needs_tmp = !entries.iter().any(|e| entry_name(e) == "tmp");
                for entry in entries.iter().chain(needs_tmp.then_some(&fresh_tmp)) {
                    add_entry(root, entry)?;
                    if let Entry::Tmpfs { name } = entry {
                        own_tmpfs.push(mount_id(&root.join(name))?);
                    }
                }
                mkdir(&root.join("proc"))?;
                mkdir(&root.join(PIDLAB_DIR.trim_start_matches('/')))?;
            }
        }
        add_dev(root)?;
        own_tmpfs.push(mount_id(&root.join("dev"))?);
        bind(&self.exe, &root.join(PIDLAB_BINARY), true, false)?;
        for volume in &self.volumes {
            let what = format!("volume {}", volume.target.display());
            if volume.host.is_dir() {
                let target = directory_in_root(root, &volume.target, &own_tmpfs, &what)?;
                bind(&volume.host, &target, volume.read_only, true)?;
            } else {
                let target = file_in_root(root, &volume.target, &own_tmpfs, &what)?;
                bind(&volume.host, &target, volume.read_only, false)?;
            }
        }
        // After the volumes: the working directory may be in one.
        if self.workdir != Path::new("/") {
            let what = format!("the working directory {}", self.workdir.display());
            directory_in_root(root, &self.workdir, &own_tmpfs, &what)?;
        }
        if let Layout::Assembled(_) = self.layout {
            // Done: the top level of the root becomes read-only. Mounts below
            // it (binds, /tmp) keep their own flags.
            let flags = MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(None::<&str>, root, None::<&str>, flags, None::<&str>)
                .doing(|| format!("remount {} read-only", root.display()))?;
        }
        Ok(())
    }

    /// Make the built root the process's `/`.
    ///
    /// chroot(2) only changes how this process resolves `/`; the old root is
    /// still mounted and a process with CAP_SYS_CHROOT can climb back out.
    /// pivot_root(2) moves the old root away and, once it is unmounted, there
    /// is nothing left to climb back to. The `pivot_root(".", ".")` form
    /// stacks the old root on top of the new one, so it can be detached
    /// without a directory to put it in (pivot_root(2), NOTES).
    /// Then go to the working directory (made in `build` if missing).
    pub fn switch(&self, use_pivot_root: bool) -> Result<(), StepError> {
        let root = self.path();
        chdir(root).doing(|| format!("chdir to {}", root.display()))?;
        if use_pivot_root {
            pivot_root(".", ".").doing(|| format!("pivot_root to {}", root.display()))?;
            umount2(".", MntFlags::MNT_DETACH).doing(|| "detach the old root".to_string())?;
        } else {
            chroot(".").doing(|| format!("chroot to {}", root.display()))?;
        }
        chdir(&self.workdir).doing(|| format!("chdir to the working directory {}", self.workdir.display()))
    }
}

/// The default root: the host's system directories, read-only.
fn default_entries() -> Vec<Entry> {
    let mut entries = Vec::new();
    for name in HOST_DIRS {
        let host = Path::new("/").join(name);
        if let Ok(target) = fs::read_link(&host) {
            entries.push(Entry::Symlink { name: name.to_string(), target });
        } else if host.is_dir() {
            entries.push(Entry::Bind { source: host, name: name.to_string(), read_only: true, is_dir: true });
        }
    }
    entries.push(Entry::Tmpfs { name: "tmp".into() });
    entries.push(Entry::Tmpfs { name: "data".into() });
    entries
}

/// `--rootfs DIR` must be a directory; its canonical path.
fn check_rootfs(dir: &Path) -> Result<PathBuf> {
    let meta = fs::metadata(dir).with_context(|| {
        format!("--rootfs {}: no such directory; build one with rootfs-scripts/ or omit --rootfs for the default root", dir.display())
    })?;
    if !meta.is_dir() {
        bail!(
            "--rootfs {}: not a directory; give the directory that holds the root's /bin, /usr, ...",
            dir.display()
        );
    }
    Ok(fs::canonicalize(dir)?)
}

/// Does DIR have every mount point pidlab will mount over — and for each
/// volume, and the working directory — as a real directory (or, for pidlab
/// itself, a file), not a symbolic link that would lead the mount out of
/// DIR?
fn is_prepared(dir: &Path, volumes: &[Volume], workdir: &Path) -> bool {
    let is = |path: &Path, dir_wanted: bool| {
        fs::symlink_metadata(path).is_ok_and(|m| if dir_wanted { m.is_dir() } else { m.is_file() })
    };
    let is_dir_in_root = |root: &OwnedFd, target: &Path| {
        open_in_root(root, target)
            .and_then(|fd| nix::sys::stat::fstat(&fd))
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR)
    };
    MOUNT_POINTS.iter().all(|name| is(&dir.join(name), true))
        && is(&dir.join(PIDLAB_DIR.trim_start_matches('/')), true)
        && is(&dir.join(PIDLAB_BINARY), false)
        && ((volumes.is_empty() && workdir == Path::new("/"))
            || open_dir(dir).is_ok_and(|root| {
                is_dir_in_root(&root, workdir) && volumes.iter().all(|v| is_dir_in_root(&root, &v.target))
            }))
}

/// Open `target` (absolute, as the workload names it) inside `root`, the
/// way the workload will resolve it: openat2(2) with RESOLVE_IN_ROOT makes
/// `/` and `..` stop at `root`, so an absolute symbolic link in the root
/// (`/data -> /srv`) leads to the root's /srv, never to the host's.
fn open_in_root(root: &OwnedFd, target: &Path) -> nix::Result<OwnedFd> {
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

fn open_dir(dir: &Path) -> nix::Result<OwnedFd> {
    nix::fcntl::open(dir, OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
}

/// The ID of the mount `path` is on (`mnt_id` in /proc/self/fdinfo,
/// proc(5)): unique to one mount, unlike a device number, which a bind of
/// a host directory shares with every other directory of its file system.
fn mount_id(path: &Path) -> Result<u64, StepError> {
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
fn directory_in_root(
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
fn file_in_root(root: &Path, target: &Path, own_tmpfs: &[u64], what: &str) -> Result<PathBuf, StepError> {
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

/// `--rootfs DIR` without mount points: every top-level entry of DIR,
/// read-write, except the ones pidlab provides.
fn image_entries(dir: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let listing = fs::read_dir(dir).with_context(|| format!("--rootfs {}: cannot list it", dir.display()))?;
    for item in listing {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        if PROVIDED.contains(&name.as_str()) {
            continue;
        }
        let kind = item.file_type()?;
        if kind.is_symlink() {
            entries.push(Entry::Symlink { name, target: fs::read_link(item.path())? });
        } else {
            entries.push(Entry::Bind { source: item.path(), name, read_only: false, is_dir: kind.is_dir() });
        }
    }
    entries.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
    Ok(entries)
}

fn entry_name(entry: &Entry) -> &str {
    match entry {
        Entry::Bind { name, .. } | Entry::Symlink { name, .. } | Entry::Tmpfs { name } => name,
    }
}

fn add_entry(root: &Path, entry: &Entry) -> Result<(), StepError> {
    let path = root.join(entry_name(entry));
    match entry {
        Entry::Bind { source, read_only, is_dir, .. } => bind(source, &path, *read_only, *is_dir),
        Entry::Symlink { target, .. } => {
            symlink(target, &path).doing(|| format!("symlink {} -> {}", path.display(), target.display()))
        }
        Entry::Tmpfs { .. } => {
            mkdir(&path)?;
            let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
            mount(Some("tmpfs"), &path, Some("tmpfs"), flags, Some("mode=1777"))
                .doing(|| format!("mount a tmpfs on {}", path.display()))
        }
    }
}

/// A minimal /dev, on a tmpfs of its own (not `nodev`, unlike the root):
/// the usual device nodes, /dev/shm, /dev/pts, and the /proc/self/fd links
/// shells use.
fn add_dev(root: &Path) -> Result<(), StepError> {
    let dev = root.join("dev");
    mkdir(&dev)?;
    mount(Some("tmpfs"), &dev, Some("tmpfs"), MsFlags::MS_NOSUID, Some("mode=0755"))
        .doing(|| format!("mount a tmpfs on {}", dev.display()))?;
    // mknod(2) and mkdir(2) apply the umask; these must be usable by all.
    let umask = nix::sys::stat::umask(Mode::empty());
    let made = add_dev_nodes(&dev).and_then(|()| {
        let shm = dev.join("shm");
        nix::unistd::mkdir(&shm, Mode::from_bits_truncate(0o1777))
            .doing(|| format!("mkdir {}", shm.display()))
    });
    nix::sys::stat::umask(umask);
    made?;
    // A devpts of the sandbox's own (a new instance: the host's terminals
    // are not in it), for `-t` and for programs that make terminals
    // (script, tmux, ssh); /dev/ptmx opens its multiplexer.
    let pts = dev.join("pts");
    mkdir(&pts)?;
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC;
    mount(Some("devpts"), &pts, Some("devpts"), flags, Some("newinstance,ptmxmode=0666,mode=0620"))
        .doing(|| format!("mount a devpts on {}", pts.display()))?;
    for (name, target) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        let path = dev.join(name);
        symlink(target, &path).doing(|| format!("symlink {}", path.display()))?;
    }
    Ok(())
}

/// Real root creates the device nodes with mknod(2), as Docker does. In a
/// user namespace the kernel refuses (EPERM: mknod needs CAP_MKNOD in the
/// initial user namespace), so pidlab binds each node from the host's /dev
/// instead, one mount per node.
fn add_dev_nodes(dev: &Path) -> Result<(), StepError> {
    let rw = Mode::from_bits_truncate(0o666);
    let mut can_mknod = true;
    for (name, major, minor) in DEVICES {
        let node = dev.join(name);
        if can_mknod {
            match mknod(&node, SFlag::S_IFCHR, rw, nix::sys::stat::makedev(major, minor)) {
                Ok(()) => continue,
                Err(Errno::EPERM) => can_mknod = false,
                Err(errno) => return Err(errno).doing(|| format!("mknod {}", node.display())),
            }
        }
        let host = Path::new("/dev").join(name);
        if host.exists() {
            bind(&host, &node, false, false)?;
        }
    }
    Ok(())
}

/// Bind-mount `source` on a new mount point `target`, read-only if asked.
fn bind(source: &Path, target: &Path, read_only: bool, is_dir: bool) -> Result<(), StepError> {
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
fn open_source(source: &Path, dir_wanted: bool) -> Result<OwnedFd, StepError> {
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
fn fd_path(fd: &OwnedFd) -> PathBuf {
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

fn mkdir(path: &Path) -> Result<(), StepError> {
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

/// Mount a procfs for the caller's PID namespace on `target`. nosuid, nodev,
/// noexec: nothing in /proc needs them, as in every container runtime.
/// Then, unless `--security-opt systempaths=unconfined`, confine it as
/// Docker does (`confine_proc`). `dev_null` is the root's /dev/null.
pub fn mount_proc(target: &Path, paths: SystemPaths, dev_null: &Path) -> Result<(), StepError> {
    // Through descriptors, following no symbolic link: a prepared root's
    // /proc is an entry of a directory someone else may change while we
    // work. Swapped for a link, it would take the proc mount elsewhere and
    // leave the confinement below (made by path) nothing to confine.
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let mount_point = open_source(target, true)?;
    mount(Some("proc"), &fd_path(&mount_point), Some("proc"), flags, None::<&str>)
        .doing(|| format!("mount proc on {}", target.display()))?;
    // The proc mount itself (a lookup by name crosses into it), checked.
    let proc = open_source(target, true)?;
    let is_proc = nix::sys::statfs::fstatfs(&proc)
        .is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::PROC_SUPER_MAGIC);
    if !is_proc {
        return Err(StepError::new(
            Errno::EINVAL,
            format!("{} is not the proc pidlab just mounted: it changed meanwhile", target.display()),
        ));
    }
    match paths {
        SystemPaths::Confined => confine_proc(&proc, target, dev_null),
        SystemPaths::Unconfined => Ok(()),
    }
}

/// What `--security-opt systempaths=...` chose for /proc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemPaths {
    /// Docker's read-only and masked paths.
    Confined,
    /// The whole /proc, as the kernel made it.
    Unconfined,
}

/// /proc files that change the whole machine, not the sandbox: made
/// read-only. /proc/sys holds the kernel's settings (sysctl): with it
/// writable, root inside could set `kernel.core_pattern` to
/// `|/proc/%P/root/tmp/x`, crash a process, and the kernel would run
/// /tmp/x *on the host*, as the host's root. Docker's list (moby
/// `oci/defaults.go`, ReadonlyPaths).
const READ_ONLY_PROC: [&str; 5] = ["bus", "fs", "irq", "sys", "sysrq-trigger"];

/// /proc files that show the host's kernel (its memory, its keys, its
/// timers and interrupts, its hardware): hidden, a file under /dev/null,
/// a directory under an empty read-only tmpfs. Docker's list (moby
/// `oci/defaults.go`, MaskedPaths, which also masks two /sys paths; pidlab
/// mounts no /sys). Files this kernel does not have are skipped.
const MASKED_PROC: [&str; 10] = [
    "acpi",
    "asound",
    "interrupts",
    "kcore",
    "keys",
    "latency_stats",
    "sched_debug",
    "scsi",
    "timer_list",
    "timer_stats",
];

/// Make Docker's read-only /proc paths read-only and hide its masked ones,
/// in the procfs mounted at `proc`. Root inside cannot undo either: it
/// holds no CAP_SYS_ADMIN, and seccomp refuses mount and umount2.
fn confine_proc(proc: &OwnedFd, shown: &Path, dev_null: &Path) -> Result<(), StepError> {
    // Each entry is opened beneath the proc mount, following no link: in
    // a procfs none of these is one, so a link means something is wrong.
    let entry = |name: &str| {
        let how = OpenHow::new()
            .flags(OFlag::O_PATH | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
            .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_SYMLINKS);
        openat2(proc, name, how)
    };
    for name in READ_ONLY_PROC {
        let path = shown.join(name);
        // A bind of the path onto itself makes it a mount of its own,
        // whose flags can then differ from the rest of /proc. A path this
        // kernel does not have is skipped, except sys, which every kernel
        // has: without it, something is wrong, and nothing is confined.
        let fd = match entry(name) {
            Err(Errno::ENOENT) if name != "sys" => continue,
            other => other.doing(|| format!("open {}", path.display()))?,
        };
        mount(
            Some(&fd_path(&fd)),
            &fd_path(&fd),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .doing(|| format!("bind {} onto itself", path.display()))?;
        // Opened again, by name: the lookup crosses into the new bind.
        let bound = entry(name).doing(|| format!("open {}", path.display()))?;
        crate::sys::make_read_only_recursive_fd(bound.as_fd())
            .doing(|| format!("make {} read-only (mount_setattr, Linux 5.12+)", path.display()))?;
    }
    let null = open_source(dev_null, false)?;
    let is_null = nix::sys::stat::fstat(&null).is_ok_and(|st| {
        SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFCHR
            && st.st_rdev == nix::sys::stat::makedev(1, 3)
    });
    if !is_null {
        return Err(StepError::new(
            Errno::EINVAL,
            format!("{} is not the null device (1, 3): it cannot hide /proc files", dev_null.display()),
        ));
    }
    for name in MASKED_PROC {
        let path = shown.join(name);
        let fd = match entry(name) {
            Err(Errno::ENOENT) => continue,
            other => other.doing(|| format!("open {}", path.display()))?,
        };
        let is_dir = nix::sys::stat::fstat(&fd)
            .is_ok_and(|st| SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR);
        if is_dir {
            let flags = MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
            mount(Some("tmpfs"), &fd_path(&fd), Some("tmpfs"), flags, Some("size=0,mode=0555"))
                .doing(|| format!("hide {} under an empty tmpfs", path.display()))?;
        } else {
            mount(Some(&fd_path(&null)), &fd_path(&fd), None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .doing(|| format!("hide {} under {}", path.display(), dev_null.display()))?;
        }
    }
    Ok(())
}
