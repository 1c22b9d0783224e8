//! The system calls Rust cannot make safe on its own, each wrapped in one
//! function, and every `unsafe` block of those wrappers, each with a
//! `SAFETY:` comment saying why it is sound. Everything else in pidlab uses
//! these wrappers or nix's safe functions.
//!
//! Where soundness depends on something only the caller knows (no other
//! thread in the process; a descriptor nobody else owns; a handler that is
//! async-signal-safe), the wrapper is an `unsafe fn` whose `# Safety`
//! section says what the caller promises, and each call site says in its own
//! `SAFETY:` comment why the promise holds there. `grep -rn unsafe src`
//! finds them all.
//!
//! `process.rs` explains `fork(2)` and `spawn` (clone(2)), the two to read
//! carefully; `watcher.rs` the child that kills the sandbox if pidlab dies.

mod confine;
mod fd;
mod process;
mod signal;
mod watcher;

pub use confine::*;
pub use fd::*;
pub use process::*;
pub use signal::*;
pub use watcher::*;

/// The program's entry point: the C library's start-up code calls
/// `main(argc, argv)`, and this is it (`#![no_main]` in main.rs).
///
/// A Rust program normally starts in the standard library's `lang_start`,
/// which reads /proc/self/maps to find the main thread's stack guard,
/// installs SIGSEGV and SIGBUS handlers on an alternate stack, ignores
/// SIGPIPE and checks that descriptors 0 to 2 are open. pidlab wants the
/// first three of these no more (see `crate::main`), and they ran at every
/// start of every sandbox: about 0.1 ms (`cargo bench --bench startup`).
/// The standard library works all the same: glibc hands it argv and the
/// environment when the program is loaded. What `lang_start` would still do
/// is done here: descriptors 0 to 2 made to exist, a panic exits with 101
/// after its message, and stdout is flushed at the end.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    if standard_fds_open().is_err() {
        return 125;
    }
    let code = std::panic::catch_unwind(crate::main).unwrap_or(101);
    let _ = std::io::Write::flush(&mut std::io::stdout());
    code
}

/// Open /dev/null on whichever of descriptors 0, 1 and 2 is closed (started
/// as `pidlab ... 1>&-`), as Rust's own start-up does. Rust's stdout writes
/// to descriptor 1 whatever it is; without this, the first file pidlab
/// opened would take number 1 and receive its output, and a `File` would
/// own a descriptor the standard library also uses.
#[cfg(not(test))]
fn standard_fds_open() -> nix::Result<()> {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd { fd, events: 0, revents: 0 });
    // SAFETY: `fds` is an array of three pollfd, alive for the call; poll
    // only reads the numbers (a closed one is reported as POLLNVAL).
    nix::errno::Errno::result(unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) })?;
    for polled in fds.iter().filter(|p| p.revents & libc::POLLNVAL != 0) {
        // The lowest free number: this one, as those below it are open.
        let null = nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_RDWR, nix::sys::stat::Mode::empty())?;
        if std::os::fd::IntoRawFd::into_raw_fd(null) != polled.fd {
            return Err(nix::errno::Errno::EBADF);
        }
    }
    Ok(())
}
