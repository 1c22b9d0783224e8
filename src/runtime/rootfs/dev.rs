//! The sandbox's own /dev: a tmpfs with the usual device nodes, a
//! devpts instance of its own, and the links programs expect.

use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::Result;
use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, SFlag, mknod};

use super::mounts::{bind, mkdir};
use crate::runtime::step::{Doing, StepError};

/// The device nodes a workload expects, with the numbers the kernel gives
/// them everywhere (the kernel's Documentation/admin-guide/devices.txt):
/// name, major, minor. Every one is mode 0666, as on the host.
const DEVICES: [(&str, u64, u64); 6] =
    [("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];

/// A minimal /dev, on a tmpfs of its own (not `nodev`, unlike the root):
/// the usual device nodes, /dev/shm, /dev/pts, and the /proc/self/fd links
/// shells use.
pub(super) fn add_dev(root: &Path) -> Result<(), StepError> {
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
