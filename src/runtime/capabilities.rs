//! Capabilities: what root inside the sandbox may do.
//!
//! Root's power is split into capabilities (capabilities(7)): CAP_SYS_ADMIN
//! to mount and create namespaces, CAP_SYS_CHROOT to chroot, CAP_KILL to
//! signal anyone, ... A container runtime keeps a small set. pidlab keeps
//! Docker's default set unless told otherwise (`--cap-add`, `--cap-drop`,
//! each a list of names or ALL), so a workload cannot, for one, mount or
//! unshare.
//!
//! Step 12 drops every other capability from the *bounding* set — the
//! ceiling that no later execve can exceed — and from the permitted and
//! effective sets; the inheritable and ambient sets are left empty. At
//! execve, root gets the bounding set as its permitted and effective sets,
//! so the workload starts with exactly the kept set. A workload run as
//! another user (`-u`) starts with none, as under Docker: the kernel
//! empties them when the uid leaves 0 (`runtime/user.rs`).

use anyhow::{Result, bail};
use caps::{CapSet, Capability, CapsHashSet};

use crate::runtime::step::StepError;
use crate::runtime::user::User;

/// Docker's default capabilities (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT: [Capability; 14] = [
    Capability::CAP_CHOWN,
    Capability::CAP_DAC_OVERRIDE,
    Capability::CAP_FSETID,
    Capability::CAP_FOWNER,
    Capability::CAP_MKNOD,
    Capability::CAP_NET_RAW,
    Capability::CAP_SETGID,
    Capability::CAP_SETUID,
    Capability::CAP_SETFCAP,
    Capability::CAP_SETPCAP,
    Capability::CAP_NET_BIND_SERVICE,
    Capability::CAP_SYS_CHROOT,
    Capability::CAP_KILL,
    Capability::CAP_AUDIT_WRITE,
];

/// Parse `SYS_ADMIN,CAP_NET_RAW` or `ALL` (any case).
fn parse_list(text: &str, flag: &str) -> Result<Option<CapsHashSet>> {
    let mut set = CapsHashSet::new();
    for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        if word.eq_ignore_ascii_case("ALL") {
            return Ok(None); // every capability
        }
        let name = caps::to_canonical(word);
        match name.parse::<Capability>() {
            Ok(cap) => {
                set.insert(cap);
            }
            Err(_) => bail!(
                "{flag} {word:?}: no such capability; use names from capabilities(7) such as SYS_ADMIN or NET_RAW, or ALL"
            ),
        }
    }
    Ok(Some(set))
}

/// What the workload keeps, and what goes from the bounding set.
///
/// Both are decided before PID 1 is born, where a mistake is an ordinary
/// error: the child then only drops and sets.
#[derive(Debug)]
pub struct Capabilities {
    /// The workload's permitted, effective and inheritable sets (as far as
    /// pidlab holds them).
    pub keep: CapsHashSet,
    /// Every capability this kernel knows that is not kept.
    bounding_drop: Vec<Capability>,
}

/// Docker's default set, minus `--cap-drop`, plus `--cap-add` (as
/// `docker run`: ALL in either means all).
pub fn plan(add: &[String], drop: &[String]) -> Result<Capabilities> {
    let mut keep: CapsHashSet = DOCKER_DEFAULT.iter().copied().collect();
    for list in drop {
        match parse_list(list, "--cap-drop")? {
            None => keep.clear(),
            Some(set) => keep.retain(|c| !set.contains(c)),
        }
    }
    for list in add {
        match parse_list(list, "--cap-add")? {
            None => keep = caps::all(),
            Some(set) => keep.extend(set),
        }
    }
    // The kernel refuses to drop a capability newer than itself (EINVAL):
    // ask which it knows (/proc/sys/kernel/cap_last_cap).
    let known =
        caps::runtime::procfs_all_supported(None).unwrap_or_else(|_| caps::runtime::thread_all_supported());
    let mut bounding_drop: Vec<Capability> = known.difference(&keep).copied().collect();
    bounding_drop.sort_by_key(|c| c.index());
    Ok(Capabilities { keep, bounding_drop })
}

impl Capabilities {
    /// The kept set, by name (CAP_CHOWN, ...), sorted: how the record
    /// stores it for `pidlab exec`.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.keep.iter().map(|c| c.to_string()).collect();
        names.sort();
        names
    }

    /// The sets a sandbox's record names (`names`), for `pidlab exec`.
    pub fn from_names(names: &[String]) -> Result<Capabilities> {
        plan(&[names.join(",")], &["ALL".to_string()])
    }

    /// Keep only `keep`, as `user` (step 12, and `pidlab exec`).
    pub fn apply(&self, user: &User) -> Result<(), StepError> {
        let errno = |e: caps::errors::CapsError| StepError::new(errno_of(&e), format!("capabilities: {e}"));
        // The bounding set first, while we still hold CAP_SETPCAP to change it.
        for cap in &self.bounding_drop {
            caps::drop(None, CapSet::Bounding, *cap).map_err(errno)?;
        }
        // Then the user, while we still hold CAP_SETUID and CAP_SETGID
        // whatever the sandbox keeps. From uid 0 to another, the kernel
        // empties the permitted and effective sets itself.
        if !user.is_plain_root() {
            crate::runtime::user::switch(user).map_err(|e| {
                StepError::new(
                    e,
                    format!("switch to uid {} gid {} groups {:?}", user.uid, user.gid, user.groups),
                )
            })?;
        }
        // pidlab may itself run with fewer than all (inside a container):
        // capset(2) cannot raise what is not permitted.
        let permitted = caps::read(None, CapSet::Permitted).map_err(errno)?;
        let kept: CapsHashSet = self.keep.intersection(&permitted).copied().collect();
        // The inheritable set stays empty, as Docker leaves it since 20.10.14
        // (CVE-2022-24769: an inheritable set let a non-root program with
        // file capabilities gain them).
        caps::clear(None, CapSet::Ambient).map_err(errno)?;
        caps::clear(None, CapSet::Inheritable).map_err(errno)?;
        caps::set(None, CapSet::Effective, &kept).map_err(errno)?;
        caps::set(None, CapSet::Permitted, &kept).map_err(errno)
    }
}

/// The errno a caps error carries. The caps crate reports a failed system
/// call as text ending in std's `(os error N)`; anything else (a capability
/// this kernel does not know) is the caller's mistake, EINVAL.
fn errno_of(err: &caps::errors::CapsError) -> nix::errno::Errno {
    let text = err.to_string();
    text.rsplit_once("(os error ")
        .and_then(|(_, n)| n.strip_suffix(')'))
        .and_then(|n| n.parse().ok())
        .map_or(nix::errno::Errno::EINVAL, nix::errno::Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_default_unless_told_otherwise() {
        let default = plan(&[], &[]).unwrap();
        assert_eq!(default.keep.len(), 14);
        assert!(default.bounding_drop.iter().all(|c| !default.keep.contains(c)));
        assert!(default.bounding_drop.contains(&Capability::CAP_SYS_ADMIN));
        let no_chroot = plan(&[], &["SYS_CHROOT".into()]).unwrap().keep;
        assert!(!no_chroot.contains(&Capability::CAP_SYS_CHROOT));
        let admin = plan(&["cap_sys_admin".into()], &[]).unwrap().keep;
        assert!(admin.contains(&Capability::CAP_SYS_ADMIN));
        assert!(plan(&[], &["ALL".into()]).unwrap().keep.is_empty());
        let all = plan(&["ALL".into()], &[]).unwrap();
        assert_eq!(all.keep, caps::all());
        assert!(all.bounding_drop.is_empty());
        assert!(plan(&["SYS_MAGIC".into()], &[]).unwrap_err().to_string().contains("SYS_MAGIC"));
    }

    #[test]
    fn a_failed_call_keeps_its_errno() {
        let err = |text: &str| caps::errors::CapsError::from(text.to_string());
        use nix::errno::Errno;
        assert_eq!(errno_of(&err("capset failure: Operation not permitted (os error 1)")), Errno::EPERM);
        assert_eq!(errno_of(&err("PR_CAPBSET_DROP failure: Permission denied (os error 13)")), Errno::EACCES);
        assert_eq!(errno_of(&err("invalid capability: CAP_MAGIC")), Errno::EINVAL);
    }
}
