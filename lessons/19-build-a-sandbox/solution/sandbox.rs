//! The same sandbox in Rust, with the standard library only: the three
//! libc calls std does not offer are declared here (glibc, x86_64).
//! Build: rustc -O --edition 2021 -o sandbox sandbox.rs
//!
//! The recipe in kernel order: new namespaces, a child that is PID 1,
//! make / private, switch root, mount /proc, exec. std's `Command` forks
//! the child and runs `pre_exec` in it just before the exec: the place for
//! the steps that belong to PID 1.
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_ulong, c_void};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;

extern "C" {
    fn unshare(flags: c_int) -> c_int;
    fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    fn chroot(path: *const c_char) -> c_int;
}
const CLONE_NEWNS: c_int = 0x0002_0000;
const CLONE_NEWPID: c_int = 0x2000_0000;
const MS_REC: c_ulong = 0x4000;
const MS_PRIVATE: c_ulong = 0x4_0000;

/// A failed call's errno, named after the step.
fn check(rc: c_int, step: &str) -> std::io::Result<()> {
    if rc == 0 {
        return Ok(());
    }
    let err = std::io::Error::last_os_error();
    Err(std::io::Error::new(err.kind(), format!("{step}: {err}")))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: sandbox ROOT COMMAND [ARG...]");
        std::process::exit(125);
    }
    // PID and mount namespaces; CLONE_NEWPID applies to our children.
    // SAFETY: unshare takes an integer.
    if let Err(err) = check(unsafe { unshare(CLONE_NEWPID | CLONE_NEWNS) }, "unshare") {
        eprintln!("{err}");
        std::process::exit(125);
    }
    let root = CString::new(args[1].as_str()).expect("ROOT without NUL bytes");
    let mut command = Command::new(&args[2]);
    command.args(&args[3..]);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes system calls (no allocation: the strings are made above).
    unsafe {
        command.pre_exec(move || {
            let (none, no_data) = (std::ptr::null(), std::ptr::null());
            let text = |bytes: &'static [u8]| bytes.as_ptr() as *const c_char;
            // rprivate first, or the /proc mount below would propagate to the host.
            check(mount(none, text(b"/\0"), none, MS_REC | MS_PRIVATE, no_data), "make / private")?;
            check(chroot(root.as_ptr()), "chroot")?;
            std::env::set_current_dir("/")?;
            // This namespace's /proc: mounted by a process inside it.
            let proc = text(b"proc\0");
            check(mount(proc, text(b"/proc\0"), proc, 0, no_data), "mount /proc")?;
            Ok(())
        });
    }
    let status = match command.status() {
        Ok(status) => status,
        Err(err) => {
            eprintln!("{}: {err}", args[2]);
            std::process::exit(125);
        }
    };
    std::process::exit(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)));
}
