//! The same init in Rust, with the standard library only: the few libc
//! calls std does not offer are declared here (glibc, x86_64).
//! Build: rustc -O --edition 2021 -o init init.rs
use std::os::unix::process::CommandExt;
use std::process::Command;

#[repr(C)]
struct SigSet([u64; 16]);
#[repr(C)]
struct Timespec {
    sec: i64,
    nsec: i64,
}
extern "C" {
    fn sigfillset(set: *mut SigSet) -> i32;
    fn sigprocmask(how: i32, set: *const SigSet, old: *mut SigSet) -> i32;
    fn sigtimedwait(set: *const SigSet, info: *mut u8, timeout: *const Timespec) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn kill(pid: i32, sig: i32) -> i32;
}
const SIG_BLOCK: i32 = 0;
const SIG_UNBLOCK: i32 = 1;
const WNOHANG: i32 = 1;
const SIGCHLD: i32 = 17;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: init -- COMMAND [ARG...]");
        std::process::exit(125);
    }
    let mut all = SigSet([0; 16]);
    // SAFETY: `all` is a valid sigset_t-sized buffer for these calls.
    unsafe {
        sigfillset(&mut all);
        sigprocmask(SIG_BLOCK, &all, std::ptr::null_mut());
    }
    // The child inherits the mask: unblock everything between fork and
    // exec (Command does not do it; sigprocmask is async-signal-safe).
    let mut command = Command::new(&args[2]);
    command.args(&args[3..]);
    // SAFETY: the closure makes one async-signal-safe call.
    unsafe {
        command.pre_exec(|| {
            let all = SigSet([!0; 16]);
            sigprocmask(SIG_UNBLOCK, &all, std::ptr::null_mut());
            Ok(())
        })
    };
    let child = match command.spawn() {
        Ok(child) => child.id() as i32,
        Err(err) => {
            eprintln!("exec {}: {err}", args[2]);
            std::process::exit(127);
        }
    };
    loop {
        let tick = Timespec { sec: 0, nsec: 100_000_000 };
        // SAFETY: valid pointers; a null siginfo is allowed.
        let sig = unsafe { sigtimedwait(&all, std::ptr::null_mut(), &tick) };
        if sig > 0 && sig != SIGCHLD {
            // SAFETY: plain system call.
            unsafe { kill(child, sig) };
        }
        let mut status = 0;
        // SAFETY: `status` is a valid i32 to write to.
        while let pid @ 1.. = unsafe { waitpid(-1, &mut status, WNOHANG) } {
            if pid == child {
                let code = if status & 0x7f == 0 { (status >> 8) & 0xff } else { 128 + (status & 0x7f) };
                std::process::exit(code);
            }
        }
    }
}
