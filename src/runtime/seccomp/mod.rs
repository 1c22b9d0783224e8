//! seccomp: the system calls root inside the sandbox may not make.
//!
//! Capabilities decide what root may do with a system call; some calls need
//! none at all and still reach far. `unshare(CLONE_NEWUSER)` needs no
//! capability: in the user namespace it makes, the caller holds every
//! capability again, and may mount, create more namespaces, and reach the
//! parts of the kernel that trust "root in some namespace". keyctl(2) needs
//! none either, and the kernel's keyrings are not separated by namespaces.
//! So container runtimes also install a seccomp filter (seccomp(2)): a small
//! BPF program the kernel runs on every system call, before the call does
//! anything, that can answer "fail with EPERM" instead.
//!
//! pidlab's filter has the effect of Docker's default profile (moby
//! `profiles/seccomp/default.json`) on x86_64 for what matters to a
//! sandbox. Docker's profile is an allow-list of about 350 calls; pidlab
//! lists the calls it *refuses*, because those are the lesson. Each group
//! is refused unless the sandbox keeps the capability Docker ties it to
//! (`--cap-add SYS_ADMIN` relaxes the first group, as in Docker):
//!
//! - namespaces and mounts (CAP_SYS_ADMIN): unshare, setns, clone with a
//!   CLONE_NEW* flag, mount and the new mount API, pivot_root, ...;
//!   clone3 fails with ENOSYS, since a filter cannot read the flags that
//!   clone3 passes in memory: the C library then falls back to clone(2),
//!   whose flags it can check;
//! - other processes' memory and descriptors (CAP_SYS_PTRACE): kcmp,
//!   pidfd_getfd, process_madvise (ptrace itself is allowed, as Docker
//!   allows it on kernels since 4.8);
//! - files by handle, which ignore the root (CAP_DAC_READ_SEARCH):
//!   open_by_handle_at, the "shocker" escape from early Docker;
//! - the host's kernel, clock and hardware: modules, reboot, accounting,
//!   the clock, I/O ports, NUMA policy, the tty hangup, the kernel log;
//! - always, whatever the capabilities: the keyrings, kexec, swap,
//!   userfaultfd, io_uring (refused since Docker 25), page migration,
//!   obsolete calls, and personality flags other than Linux's own;
//! - one that Docker does not refuse, because its containers never share a
//!   terminal with the host: ioctl TIOCSTI (and TIOCLINUX), which types
//!   into a terminal. With `-i`, or under `pidlab exec`, the workload's
//!   terminal may be the host user's own.
//!
//! A list of refusals has one weakness an allow-list lacks: a dangerous
//! call added by a future kernel is allowed until it is named here.
//!
//! The filter also refuses every call of the x32 ABI (numbers with bit 30
//! set, which share x86_64's architecture tag), and kills a process that
//! makes a 32-bit (i386) system call, so neither can reach a refused call
//! under another number.
//!
//! pidlab writes the BPF program itself (`build`), about 80 instructions
//! you can read below, rather than with a library: libseccomp needs its C
//! library, which pidlab's static binary cannot load, and the pure-Rust
//! `seccompiler` (rust-vmm) emits one comparison after another, which the
//! kernel's action cache made cost 0.3 ms at every start (see `build`).
//! The program is built on the host, before any namespace exists; the
//! child only installs it (`sys::install_seccomp_filter`), after pidlab's
//! own mounts and while it still holds CAP_SYS_ADMIN, the step before
//! capabilities are dropped (runc's order too). pidlab does not set
//! no_new_privs, as Docker does not.

use caps::{Capability, CapsHashSet};

mod bpf;
use bpf::build;

/// One installable BPF program: the instructions the kernel runs.
pub type Program = Vec<libc::sock_filter>;

/// What `--security-opt seccomp=...` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// pidlab's filter, relaxed by the sandbox's capabilities.
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
}

/// The filter for a sandbox whose workload keeps `kept`; `None` when
/// unconfined.
pub fn program(mode: Mode, kept: &CapsHashSet) -> Option<Program> {
    if mode == Mode::Unconfined {
        return None;
    }
    let has = |cap: Capability| kept.contains(&cap);
    let mut refused: Vec<u32> = ALWAYS.to_vec();
    if !has(Capability::CAP_SYS_ADMIN) {
        refused.extend(NEEDS_SYS_ADMIN);
    }
    for (cap, calls) in NEEDS_CAPABILITY {
        if !has(*cap) {
            refused.extend(*calls);
        }
    }
    refused.sort_unstable();
    refused.dedup();
    Some(build(&refused, !has(Capability::CAP_SYS_ADMIN)))
}

/// Refused whatever the capabilities (Docker's profile allows none of them).
const ALWAYS: &[u32] = &[
    // The kernel's keyrings are shared by every namespace.
    libc::SYS_add_key as u32,
    libc::SYS_keyctl as u32,
    libc::SYS_request_key as u32,
    // Loading another kernel.
    libc::SYS_kexec_load as u32,
    libc::SYS_kexec_file_load as u32,
    // Swap is the host's.
    libc::SYS_swapon as u32,
    libc::SYS_swapoff as u32,
    // pivot_root is the runtime's, never the workload's.
    libc::SYS_pivot_root as u32,
    // Used to widen race windows in kernel exploits; io_uring has had many.
    libc::SYS_userfaultfd as u32,
    libc::SYS_io_uring_setup as u32,
    libc::SYS_io_uring_enter as u32,
    libc::SYS_io_uring_register as u32,
    // Moving another process's pages between NUMA nodes.
    libc::SYS_migrate_pages as u32,
    libc::SYS_move_pages as u32,
    // Obsolete, and a source of old bugs.
    libc::SYS_uselib as u32,
    libc::SYS_ustat as u32,
    libc::SYS_sysfs as u32,
    libc::SYS__sysctl as u32,
    libc::SYS_nfsservctl as u32,
];

/// Refused without CAP_SYS_ADMIN: namespaces, mounts, and what they open.
const NEEDS_SYS_ADMIN: &[u32] = &[
    libc::SYS_unshare as u32,
    libc::SYS_setns as u32,
    libc::SYS_mount as u32,
    libc::SYS_umount2 as u32,
    libc::SYS_open_tree as u32,
    libc::SYS_move_mount as u32,
    libc::SYS_fsopen as u32,
    libc::SYS_fsconfig as u32,
    libc::SYS_fsmount as u32,
    libc::SYS_fspick as u32,
    libc::SYS_mount_setattr as u32,
    libc::SYS_name_to_handle_at as u32,
    libc::SYS_quotactl as u32,
    libc::SYS_quotactl_fd as u32,
    libc::SYS_sethostname as u32,
    libc::SYS_setdomainname as u32,
    libc::SYS_lookup_dcookie as u32,
    libc::SYS_fanotify_init as u32,
    libc::SYS_bpf as u32,
    libc::SYS_perf_event_open as u32,
    libc::SYS_syslog as u32,
];

/// Refused unless the sandbox keeps the capability beside them.
const NEEDS_CAPABILITY: &[(Capability, &[u32])] = &[
    (Capability::CAP_DAC_READ_SEARCH, &[libc::SYS_open_by_handle_at as u32]),
    (
        Capability::CAP_SYS_PTRACE,
        &[libc::SYS_kcmp as u32, libc::SYS_pidfd_getfd as u32, libc::SYS_process_madvise as u32],
    ),
    (
        Capability::CAP_SYS_MODULE,
        &[libc::SYS_init_module as u32, libc::SYS_finit_module as u32, libc::SYS_delete_module as u32],
    ),
    (Capability::CAP_SYS_BOOT, &[libc::SYS_reboot as u32]),
    (Capability::CAP_SYS_PACCT, &[libc::SYS_acct as u32]),
    (Capability::CAP_SYS_RAWIO, &[libc::SYS_iopl as u32, libc::SYS_ioperm as u32]),
    (Capability::CAP_SYS_TIME, &[libc::SYS_settimeofday as u32, libc::SYS_clock_settime as u32]),
    (Capability::CAP_SYS_TTY_CONFIG, &[libc::SYS_vhangup as u32]),
    (
        Capability::CAP_SYS_NICE,
        &[libc::SYS_get_mempolicy as u32, libc::SYS_mbind as u32, libc::SYS_set_mempolicy as u32],
    ),
];

/// The clone(2) flags that make a new namespace: CLONE_NEWNS, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP, all in the low 32 bits.
const NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

/// The personality(2) values Docker's profile allows: Linux's own
/// (PER_LINUX 0, PER_LINUX32 8, with UNAME26 0x20000) and the query
/// 0xffffffff. Any other flag, such as ADDR_NO_RANDOMIZE (turning off
/// address randomisation), is refused.
const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Install the program (step 11, before capabilities are dropped).
pub fn install(program: Option<&Program>) -> nix::Result<()> {
    match program {
        Some(program) => crate::sys::install_seccomp_filter(program),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests;
