//! A fresh /proc for the sandbox's PID namespace, confined as Docker
//! leaves it: some paths read-only, some hidden.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use anyhow::Result;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::SFlag;

use super::mounts::{fd_path, open_source};
use crate::runtime::step::{Doing, StepError};

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
