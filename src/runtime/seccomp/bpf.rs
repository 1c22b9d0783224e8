//! The filter's BPF program, written by hand: the checks in the order the
//! kernel runs them, a binary search over the refused numbers, and the
//! assembler that resolves the forward jumps.

use super::{NAMESPACE_FLAGS, PERSONALITIES, Program};

/// AUDIT_ARCH_X86_64 (linux/audit.h): the architecture tag of x86_64's
/// (and x32's) system calls.
pub(super) const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// x32 system calls are x86_64's numbers with this bit set.
pub(super) const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data` (linux/seccomp.h), the only input
/// a filter has: the call's number, the architecture, the instruction
/// pointer, and six 64-bit arguments (x86_64 is little-endian: the low 32
/// bits of an argument come first).
pub(super) const NR: u32 = 0;
pub(super) const ARCH: u32 = 4;
pub(super) const ARG0_LOW: u32 = 16;
pub(super) const ARG0_HIGH: u32 = 20;
pub(super) const ARG1_LOW: u32 = 24;

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
pub(super) fn build(refused: &[u32], guard_namespaces: bool) -> Program {
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
