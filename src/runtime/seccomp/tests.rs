use super::bpf::{ARCH, ARG0_HIGH, ARG0_LOW, ARG1_LOW, AUDIT_ARCH_X86_64, NR, X32_SYSCALL_BIT};
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
    assert_eq!(clone((libc::SIGCHLD | libc::CLONE_VM | libc::CLONE_VFORK) as u64), libc::SECCOMP_RET_ALLOW);
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
    assert_eq!(run(&relaxed, AUDIT_ARCH_X86_64, libc::SYS_keyctl as u32, 0), EPERM, "keyrings stay refused");
    let all = program(Mode::Default, &caps::all()).unwrap();
    assert_eq!(run(&all, AUDIT_ARCH_X86_64, libc::SYS_open_by_handle_at as u32, 0), libc::SECCOMP_RET_ALLOW);
    assert_eq!(run(&all, AUDIT_ARCH_X86_64, libc::SYS_kexec_load as u32, 0), EPERM);
}
