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
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::SFlag;
use nix::unistd::{chdir, chroot, pivot_root};

use crate::runtime::step::{Doing, StepError};

mod dev;
mod mounts;
mod proc;
mod resolve;

use dev::add_dev;
use mounts::{bind, fd_path, mkdir, open_source};
pub use mounts::{make_private, new_mount_namespace};
pub use proc::{SystemPaths, mount_proc};
pub use resolve::read_in_root;
use resolve::{directory_in_root, file_in_root, mount_id, open_dir, open_in_root};

/// The host directories the default root is made of, read-only.
const HOST_DIRS: [&str; 8] = ["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"];

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
