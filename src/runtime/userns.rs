//! Rootless sandboxes: a user namespace first.
//!
//! Creating a PID or mount namespace needs CAP_SYS_ADMIN. An ordinary user
//! gets it only inside a user namespace of their own (user_namespaces(7)):
//! `unshare(CLONE_NEWUSER)` makes one, and inside it the caller has every
//! capability — over the namespaces that user namespace owns, never over the
//! host's. Namespaces created afterwards are owned by it, so the PID and
//! mount namespaces that follow can be made, and /proc mounted.
//!
//! The new namespace starts with no ID mapping: the caller is "nobody". We
//! map our own UID and GID to 0 inside, which an unprivileged process may do
//! for itself with a single line, after writing `deny` to setgroups (so that
//! the mapped root cannot drop supplementary groups and gain access those
//! groups were denied; user_namespaces(7), "The /proc/[pid]/setgroups file").

use std::fs;

use anyhow::{Context, Result, bail};
use nix::errno::Errno;
use nix::sched::{CloneFlags, unshare};
use nix::unistd::{getgid, getuid};

use crate::runtime::step::Step;

/// Enter a new user namespace and map the caller to root inside it.
/// Must be called while the process is still single-threaded.
pub fn enter() -> Result<()> {
    let (uid, gid) = (getuid(), getgid());
    if let Err(errno) = unshare(CloneFlags::CLONE_NEWUSER) {
        bail!("{}: unshare(CLONE_NEWUSER): {errno} — {}", Step::UserNamespace, why_forbidden(errno));
    }
    write_map("/proc/self/setgroups", "deny")?;
    write_map("/proc/self/uid_map", &format!("0 {uid} 1"))?;
    write_map("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    Ok(())
}

fn write_map(path: &str, line: &str) -> Result<()> {
    fs::write(path, line).with_context(|| format!("{}: write {line:?} to {path}", Step::UserNamespace))
}

/// Explain, for this host, why user namespaces are refused.
pub fn why_forbidden(errno: Errno) -> String {
    let read = |path: &str| fs::read_to_string(path).ok().map(|s| s.trim().to_string());
    if read("/proc/sys/user/max_user_namespaces").as_deref() == Some("0") {
        return "this host forbids user namespaces: the sysctl user.max_user_namespaces is 0; \
                as root run `sysctl -w user.max_user_namespaces=15000`, or run pidlab as root"
            .into();
    }
    if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        return "AppArmor forbids unprivileged user namespaces: the sysctl \
                kernel.apparmor_restrict_unprivileged_userns is 1; as root run \
                `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`, or run pidlab as root"
            .into();
    }
    if read("/proc/sys/kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        return "this kernel forbids unprivileged user namespaces: the sysctl \
                kernel.unprivileged_userns_clone is 0; as root run \
                `sysctl -w kernel.unprivileged_userns_clone=1`, or run pidlab as root"
            .into();
    }
    match errno {
        Errno::EINVAL => "unshare(CLONE_NEWUSER) fails in a multithreaded process".into(),
        Errno::EPERM => "user namespaces are refused here; inside a container, seccomp (Docker's \
                         default profile) blocks them: run pidlab on the host or as root"
            .into(),
        Errno::ENOSPC => "the per-user limit of user namespaces (user.max_user_namespaces) is reached".into(),
        _ => "see user_namespaces(7)".into(),
    }
}
