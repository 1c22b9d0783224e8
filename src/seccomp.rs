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
//!   obsolete calls, and personality flags other than Linux's own.
//!
//! A list of refusals has one weakness an allow-list lacks: a dangerous
//! call added by a future kernel is allowed until it is named here.
//!
//! The filter also refuses every call of the x32 ABI (numbers with bit 30
//! set, which share x86_64's architecture tag), and seccompiler's first
//! instructions kill a process that makes a 32-bit (i386) system call, so
//! neither can reach a refused call under another number.
//!
//! Built with the `seccompiler` crate (rust-vmm, used by Firecracker): pure
//! Rust, so it works in pidlab's static binary, where libseccomp would
//! need its C library. The program is built on the host, before any
//! namespace exists; the child only installs it (`sys::install_seccomp_filter`),
//! after pidlab's own mounts and while it still holds CAP_SYS_ADMIN, the
//! step before capabilities are dropped (runc's order too). pidlab does not
//! set no_new_privs, as Docker does not.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use caps::{Capability, CapsHashSet};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

/// One installable BPF program.
pub type Program = Vec<libc::sock_filter>;

/// What `--security-opt seccomp=...` chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// pidlab's filter, relaxed by the sandbox's capabilities.
    Default,
    /// No filter (`--security-opt seccomp=unconfined`).
    Unconfined,
}

/// The filter programs for a sandbox whose workload keeps `kept`, in the
/// order they are installed. Empty when unconfined.
pub fn programs(mode: Mode, kept: &CapsHashSet) -> Result<Vec<Program>> {
    if mode == Mode::Unconfined {
        return Ok(Vec::new());
    }
    let has = |cap: Capability| kept.contains(&cap);
    let mut refused: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut refuse = |calls: &[libc::c_long]| {
        for call in calls {
            refused.insert(*call, Vec::new());
        }
    };
    refuse(ALWAYS);
    if !has(Capability::CAP_SYS_ADMIN) {
        refuse(NEEDS_SYS_ADMIN);
    }
    for (cap, calls) in NEEDS_CAPABILITY {
        if !has(*cap) {
            refuse(calls);
        }
    }
    // Linux's own personality values, and the query (0xffffffff), are
    // allowed; any other flag, such as turning off address randomisation
    // (ADDR_NO_RANDOMIZE), is not.
    let not = |value: u64| condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::Ne, value);
    let other_personality = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff].into_iter().map(not);
    refused.insert(libc::SYS_personality, vec![rule(other_personality.collect::<Result<_>>()?)?]);
    if !has(Capability::CAP_SYS_ADMIN) {
        // clone(2) with any CLONE_NEW* flag: one rule per flag, any matches.
        let flags = NAMESPACE_FLAGS.iter().map(|flag| {
            rule(vec![condition(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(*flag), *flag)?])
        });
        refused.insert(libc::SYS_clone, flags.collect::<Result<_>>()?);
    }
    let mut programs = vec![compile(refused, libc::EPERM)?, x32_refused()];
    if !has(Capability::CAP_SYS_ADMIN) {
        programs.push(compile(BTreeMap::from([(libc::SYS_clone3, Vec::new())]), libc::ENOSYS)?);
    }
    Ok(programs)
}

/// Refused whatever the capabilities (Docker's profile allows none of them).
const ALWAYS: &[libc::c_long] = &[
    // The kernel's keyrings are shared by every namespace.
    libc::SYS_add_key,
    libc::SYS_keyctl,
    libc::SYS_request_key,
    // Loading another kernel.
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    // Swap is the host's.
    libc::SYS_swapon,
    libc::SYS_swapoff,
    // pivot_root is the runtime's, never the workload's.
    libc::SYS_pivot_root,
    // Used to widen race windows in kernel exploits; io_uring has had many.
    libc::SYS_userfaultfd,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    // Moving another process's pages between NUMA nodes.
    libc::SYS_migrate_pages,
    libc::SYS_move_pages,
    // Obsolete, and a source of old bugs.
    libc::SYS_uselib,
    libc::SYS_ustat,
    libc::SYS_sysfs,
    libc::SYS__sysctl,
    libc::SYS_nfsservctl,
];

/// Refused without CAP_SYS_ADMIN: namespaces, mounts, and what they open.
const NEEDS_SYS_ADMIN: &[libc::c_long] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_name_to_handle_at,
    libc::SYS_quotactl,
    libc::SYS_quotactl_fd,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_lookup_dcookie,
    libc::SYS_fanotify_init,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_syslog,
];

/// Refused unless the sandbox keeps the capability beside them.
const NEEDS_CAPABILITY: &[(Capability, &[libc::c_long])] = &[
    (Capability::CAP_DAC_READ_SEARCH, &[libc::SYS_open_by_handle_at]),
    (Capability::CAP_SYS_PTRACE, &[libc::SYS_kcmp, libc::SYS_pidfd_getfd, libc::SYS_process_madvise]),
    (Capability::CAP_SYS_MODULE, &[libc::SYS_init_module, libc::SYS_finit_module, libc::SYS_delete_module]),
    (Capability::CAP_SYS_BOOT, &[libc::SYS_reboot]),
    (Capability::CAP_SYS_PACCT, &[libc::SYS_acct]),
    (Capability::CAP_SYS_RAWIO, &[libc::SYS_iopl, libc::SYS_ioperm]),
    (Capability::CAP_SYS_TIME, &[libc::SYS_settimeofday, libc::SYS_clock_settime]),
    (Capability::CAP_SYS_TTY_CONFIG, &[libc::SYS_vhangup]),
    (Capability::CAP_SYS_NICE, &[libc::SYS_get_mempolicy, libc::SYS_mbind, libc::SYS_set_mempolicy]),
];

/// The clone(2) flags that make a new namespace.
const NAMESPACE_FLAGS: [u64; 7] = [
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    libc::CLONE_NEWCGROUP as u64,
];

fn condition(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition> {
    SeccompCondition::new(arg, len, op, value).context("build a seccomp condition")
}

fn rule(conditions: Vec<SeccompCondition>) -> Result<SeccompRule> {
    SeccompRule::new(conditions).context("build a seccomp rule")
}

/// A program that answers `errno` to the calls in `calls` (when one of
/// their rules matches, or always for an empty list) and allows the rest.
fn compile(calls: BTreeMap<i64, Vec<SeccompRule>>, errno: i32) -> Result<Program> {
    let filter = SeccompFilter::new(
        calls,
        SeccompAction::Allow,
        SeccompAction::Errno(errno as u32),
        TargetArch::x86_64,
    )
    .context("build the seccomp filter")?;
    let program = BpfProgram::try_from(filter).context("compile the seccomp filter")?;
    Ok(program.into_iter().map(|i| libc::sock_filter { code: i.code, jt: i.jt, jf: i.jf, k: i.k }).collect())
}

/// Every x32 system call fails with EPERM. Four instructions, written out
/// as the kernel reads them: `seccomp_data.nr` is at offset 0.
fn x32_refused() -> Program {
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let code = |c: u32| c as u16;
    vec![
        // A = seccomp_data.nr
        libc::sock_filter { code: code(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS), jt: 0, jf: 0, k: 0 },
        // if A >= X32_SYSCALL_BIT: go to the next instruction, else skip it
        libc::sock_filter {
            code: code(libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K),
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        libc::sock_filter {
            code: code(libc::BPF_RET | libc::BPF_K),
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        },
        libc::sock_filter {
            code: code(libc::BPF_RET | libc::BPF_K),
            jt: 0,
            jf: 0,
            k: libc::SECCOMP_RET_ALLOW,
        },
    ]
}

/// Install `programs`, in order (the step before capabilities are dropped).
pub fn install(programs: &[Program]) -> nix::Result<()> {
    programs.iter().try_for_each(|program| crate::sys::install_seccomp_filter(program))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfined_is_no_filter_and_sys_admin_drops_the_clone3_program() {
        let docker: CapsHashSet = crate::capabilities::DOCKER_DEFAULT.iter().copied().collect();
        assert!(programs(Mode::Unconfined, &docker).unwrap().is_empty());
        assert_eq!(programs(Mode::Default, &docker).unwrap().len(), 3);
        let mut admin = docker.clone();
        admin.insert(Capability::CAP_SYS_ADMIN);
        let relaxed = programs(Mode::Default, &admin).unwrap();
        assert_eq!(relaxed.len(), 2);
        // Fewer refusals make a shorter program.
        assert!(relaxed[0].len() < programs(Mode::Default, &docker).unwrap()[0].len());
    }
}
