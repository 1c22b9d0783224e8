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

/// AUDIT_ARCH_X86_64 (linux/audit.h): the architecture tag of x86_64's
/// (and x32's) system calls.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// x32 system calls are x86_64's numbers with this bit set.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data` (linux/seccomp.h), the only input
/// a filter has: the call's number, the architecture, the instruction
/// pointer, and six 64-bit arguments (x86_64 is little-endian: the low 32
/// bits of an argument come first).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG0_LOW: u32 = 16;
const ARG0_HIGH: u32 = 20;
const ARG1_LOW: u32 = 24;

/// Where a jump goes: the next instruction plus `n`, or a named place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Skip(usize),
    Allow,
    Refuse,
    NoSys,
    Clone,
    Personality,
    Ioctl,
}

/// An instruction before jumps are resolved, or a named place.
#[derive(Debug, Clone, Copy)]
enum Op {
    Load(u32),
    Jump { test: u32, k: u32, yes: To, no: To },
    Return(u32),
    Here(To),
}

const fn code(bits: u32) -> u16 {
    bits as u16
}

/// The program, as the kernel's classic BPF reads it. A filter cannot
/// loop and jumps only forward, so it always ends, in a few steps:
///
/// ```text
///   A = arch;  if A != x86_64: kill the process       (an i386 call)
///   A = nr;    if A >= X32_SYSCALL_BIT: EPERM          (an x32 call)
///   if nr == clone:       go to clone      }  without CAP_SYS_ADMIN
///   if nr == clone3:      ENOSYS           }
///   if nr == personality: go to personality
///   binary search for nr in the refused numbers: EPERM if found, else allow
/// clone:       A = low word of flags; if A & CLONE_NEW*: EPERM, else allow
/// personality: allow the values Docker allows, else EPERM
/// ```
///
/// A binary search, not a list of comparisons: the kernel runs the filter
/// on every system call the workload makes, and, once when it is
/// installed, for every system call number, to learn which ones it always
/// allows (the "action cache", kernel/seccomp.c). A list of 60 numbers
/// made that about 0.3 ms at every start; a search takes 6 comparisons.
fn build(refused: &[u32], guard_namespaces: bool) -> Program {
    use libc::{BPF_JEQ, BPF_JGE, BPF_JSET, SECCOMP_RET_KILL_PROCESS};
    let jeq = |k: u32, yes: To, no: To| Op::Jump { test: BPF_JEQ, k, yes, no };
    let mut ops = vec![
        Op::Load(ARCH),
        jeq(AUDIT_ARCH_X86_64, To::Skip(1), To::Skip(0)),
        Op::Return(SECCOMP_RET_KILL_PROCESS),
        Op::Load(NR),
        Op::Jump { test: BPF_JGE, k: X32_SYSCALL_BIT, yes: To::Refuse, no: To::Skip(0) },
    ];
    if guard_namespaces {
        ops.push(jeq(libc::SYS_clone as u32, To::Clone, To::Skip(0)));
        // A filter cannot read clone3's flags (they are in memory, not in
        // a register): ENOSYS makes the C library fall back to clone(2).
        ops.push(jeq(libc::SYS_clone3 as u32, To::NoSys, To::Skip(0)));
    }
    ops.push(jeq(libc::SYS_personality as u32, To::Personality, To::Skip(0)));
    ops.push(jeq(libc::SYS_ioctl as u32, To::Ioctl, To::Skip(0)));
    search(refused, &mut ops);
    if guard_namespaces {
        ops.push(Op::Here(To::Clone));
        ops.push(Op::Load(ARG0_LOW));
        ops.push(Op::Jump { test: BPF_JSET, k: NAMESPACE_FLAGS, yes: To::Refuse, no: To::Allow });
    }
    // ioctl(fd, TIOCSTI) pushes characters into a terminal's input as if
    // typed, and TIOCLINUX can paste into a virtual console: with `-i`,
    // `exec`, or a terminal passed in, the workload's terminal may be the
    // host user's, and what it typed would run in the host's shell after
    // pidlab exits (the bubblewrap escape, CVE-2017-5226; flatpak refuses
    // TIOCSTI the same way). The kernel reads the request as 32 bits.
    ops.push(Op::Here(To::Ioctl));
    ops.push(Op::Load(ARG1_LOW));
    ops.push(jeq(libc::TIOCSTI as u32, To::Refuse, To::Skip(0)));
    ops.push(jeq(libc::TIOCLINUX as u32, To::Refuse, To::Allow));
    ops.push(Op::Here(To::Personality));
    ops.push(Op::Load(ARG0_HIGH));
    ops.push(jeq(0, To::Skip(0), To::Refuse));
    ops.push(Op::Load(ARG0_LOW));
    for value in PERSONALITIES {
        ops.push(jeq(value, To::Allow, To::Skip(0)));
    }
    ops.extend([
        Op::Here(To::Refuse),
        Op::Return(libc::SECCOMP_RET_ERRNO | libc::EPERM as u32),
        Op::Here(To::Allow),
        Op::Return(libc::SECCOMP_RET_ALLOW),
        Op::Here(To::NoSys),
        Op::Return(libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]);
    assemble(&ops)
}

/// Append a binary search for the number in A among `sorted`: each step
/// halves the list (`if A >= middle: right half, else left half`), and a
/// list of one ends in `if A == it: refuse, else allow`.
fn search(sorted: &[u32], ops: &mut Vec<Op>) {
    match sorted {
        [] => ops.push(Op::Jump { test: libc::BPF_JA, k: 0, yes: To::Allow, no: To::Allow }),
        [only] => ops.push(Op::Jump { test: libc::BPF_JEQ, k: *only, yes: To::Refuse, no: To::Allow }),
        _ => {
            let (left, right) = sorted.split_at(sorted.len() / 2);
            let mut left_ops = Vec::new();
            search(left, &mut left_ops);
            let skip = left_ops.iter().filter(|op| !matches!(op, Op::Here(_))).count();
            ops.push(Op::Jump { test: libc::BPF_JGE, k: right[0], yes: To::Skip(skip), no: To::Skip(0) });
            ops.extend(left_ops);
            search(right, ops);
        }
    }
}

/// Resolve named places into forward offsets and encode each instruction.
fn assemble(ops: &[Op]) -> Program {
    use libc::{BPF_ABS, BPF_JA, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W, sock_filter};
    let mut places = Vec::new();
    let mut index = 0usize;
    for op in ops {
        match op {
            Op::Here(place) => places.push((*place, index)),
            _ => index += 1,
        }
    }
    let mut program = Vec::with_capacity(index);
    for op in ops {
        let at = program.len();
        let offset = |to: To| -> u8 {
            let target = match to {
                To::Skip(n) => at + 1 + n,
                named => places.iter().find(|(p, _)| *p == named).expect("every place is defined").1,
            };
            u8::try_from(target - (at + 1)).expect("a classic BPF jump reaches at most 255 instructions")
        };
        let insn = match *op {
            Op::Here(_) => continue,
            Op::Load(offset) => sock_filter { code: code(BPF_LD | BPF_W | BPF_ABS), jt: 0, jf: 0, k: offset },
            Op::Return(value) => sock_filter { code: code(BPF_RET | BPF_K), jt: 0, jf: 0, k: value },
            Op::Jump { test: BPF_JA, yes, .. } => {
                sock_filter { code: code(BPF_JMP | BPF_JA), jt: 0, jf: 0, k: offset(yes) as u32 }
            }
            Op::Jump { test, k, yes, no } => {
                sock_filter { code: code(BPF_JMP | test | BPF_K), jt: offset(yes), jf: offset(no), k }
            }
        };
        program.push(insn);
    }
    program
}

/// Install the program (step 11, before capabilities are dropped).
pub fn install(program: Option<&Program>) -> nix::Result<()> {
    match program {
        Some(program) => crate::sys::install_seccomp_filter(program),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run `program` as the kernel would, on one system call: a classic BPF
    /// interpreter for the few instructions pidlab uses.
    fn run(program: &Program, arch: u32, nr: u32, arg0: u64) -> u32 {
        let data = |offset: u32| match offset {
            NR => nr,
            ARCH => arch,
            ARG0_LOW => arg0 as u32,
            ARG0_HIGH => (arg0 >> 32) as u32,
            ARG1_LOW => arg0 as u32,
            other => panic!("load at {other}"),
        };
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = program[pc];
            let class = u32::from(i.code) & 0x07;
            match class {
                libc::BPF_LD => a = data(i.k),
                libc::BPF_RET => return i.k,
                libc::BPF_JMP => {
                    let op = u32::from(i.code) & 0xf0;
                    let taken = match op {
                        libc::BPF_JA => {
                            pc += 1 + i.k as usize;
                            continue;
                        }
                        libc::BPF_JEQ => a == i.k,
                        libc::BPF_JGE => a >= i.k,
                        libc::BPF_JSET => a & i.k != 0,
                        other => panic!("jump {other:#x}"),
                    };
                    pc += 1 + usize::from(if taken { i.jt } else { i.jf });
                    continue;
                }
                other => panic!("class {other}"),
            }
            pc += 1;
        }
    }

    const EPERM: u32 = libc::SECCOMP_RET_ERRNO | libc::EPERM as u32;

    fn docker_default() -> CapsHashSet {
        crate::runtime::capabilities::DOCKER_DEFAULT.iter().copied().collect()
    }

    #[test]
    fn every_system_call_gets_the_answer_the_lists_give() {
        let program = program(Mode::Default, &docker_default()).unwrap();
        let mut refused: Vec<u32> = ALWAYS.iter().chain(NEEDS_SYS_ADMIN).copied().collect();
        for (cap, calls) in NEEDS_CAPABILITY {
            if !docker_default().contains(cap) {
                refused.extend(*calls);
            }
        }
        for nr in 0..600u32 {
            let special =
                [libc::SYS_clone, libc::SYS_clone3, libc::SYS_personality, libc::SYS_ioctl].map(|n| n as u32);
            if special.contains(&nr) {
                continue;
            }
            let want = if refused.contains(&nr) { EPERM } else { libc::SECCOMP_RET_ALLOW };
            assert_eq!(run(&program, AUDIT_ARCH_X86_64, nr, 0), want, "system call {nr}");
            assert_eq!(run(&program, AUDIT_ARCH_X86_64, nr | X32_SYSCALL_BIT, 0), EPERM, "x32 call {nr}");
        }
        assert_eq!(run(&program, 0x4000_0003, 1, 0), libc::SECCOMP_RET_KILL_PROCESS, "an i386 call");
        // chroot stays allowed: CAP_SYS_CHROOT is in Docker's set.
        assert_eq!(run(&program, AUDIT_ARCH_X86_64, libc::SYS_chroot as u32, 0), libc::SECCOMP_RET_ALLOW);
    }

    #[test]
    fn clone_personality_and_clone3_depend_on_their_arguments() {
        let program = program(Mode::Default, &docker_default()).unwrap();
        let clone = |flags: u64| run(&program, AUDIT_ARCH_X86_64, libc::SYS_clone as u32, flags);
        assert_eq!(
            clone((libc::SIGCHLD | libc::CLONE_VM | libc::CLONE_VFORK) as u64),
            libc::SECCOMP_RET_ALLOW
        );
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWPID, libc::CLONE_NEWNS, libc::CLONE_NEWCGROUP] {
            assert_eq!(clone((flag | libc::SIGCHLD) as u64), EPERM, "clone flag {flag:#x}");
        }
        let clone3 = run(&program, AUDIT_ARCH_X86_64, libc::SYS_clone3 as u32, 0);
        assert_eq!(clone3, libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32);
        let personality = |value: u64| run(&program, AUDIT_ARCH_X86_64, libc::SYS_personality as u32, value);
        for allowed in PERSONALITIES {
            assert_eq!(personality(u64::from(allowed)), libc::SECCOMP_RET_ALLOW, "{allowed:#x}");
        }
        assert_eq!(personality(0x0040000), EPERM, "ADDR_NO_RANDOMIZE");
        // (The interpreter feeds its one argument value to ARG1_LOW too.)
        let ioctl = |request: u64| run(&program, AUDIT_ARCH_X86_64, libc::SYS_ioctl as u32, request);
        assert_eq!(ioctl(libc::TIOCSTI), EPERM);
        assert_eq!(ioctl(libc::TIOCLINUX), EPERM);
        assert_eq!(ioctl(libc::TIOCGWINSZ), libc::SECCOMP_RET_ALLOW);
        assert_eq!(ioctl(libc::TCGETS), libc::SECCOMP_RET_ALLOW);
        assert_eq!(personality(0x1_0000_0000), EPERM, "a high bit");
    }

    #[test]
    fn capabilities_relax_what_docker_relaxes_and_unconfined_is_no_filter() {
        assert!(program(Mode::Unconfined, &docker_default()).is_none());
        let mut admin = docker_default();
        admin.insert(Capability::CAP_SYS_ADMIN);
        let relaxed = program(Mode::Default, &admin).unwrap();
        for call in [libc::SYS_unshare, libc::SYS_mount, libc::SYS_setns, libc::SYS_clone3] {
            assert_eq!(run(&relaxed, AUDIT_ARCH_X86_64, call as u32, 0), libc::SECCOMP_RET_ALLOW, "{call}");
        }
        let clone = run(&relaxed, AUDIT_ARCH_X86_64, libc::SYS_clone as u32, libc::CLONE_NEWUSER as u64);
        assert_eq!(clone, libc::SECCOMP_RET_ALLOW);
        assert_eq!(
            run(&relaxed, AUDIT_ARCH_X86_64, libc::SYS_keyctl as u32, 0),
            EPERM,
            "keyrings stay refused"
        );
        let all = program(Mode::Default, &caps::all()).unwrap();
        assert_eq!(
            run(&all, AUDIT_ARCH_X86_64, libc::SYS_open_by_handle_at as u32, 0),
            libc::SECCOMP_RET_ALLOW
        );
        assert_eq!(run(&all, AUDIT_ARCH_X86_64, libc::SYS_kexec_load as u32, 0), EPERM);
    }
}
