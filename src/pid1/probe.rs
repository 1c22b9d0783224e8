//! `pidlab probe`: the built-in workload for lessons and tests.
//!
//! It reports where it stands (PID, NSpid, parent, who PID 1 is), then does
//! what it is told with signals — catch them with a real handler (so
//! /proc/PID/status shows them in SigCgt and the PID 1 rules apply exactly as
//! to any program), ignore them, or save a state file and exit on SIGTERM —
//! and can leave orphans for PID 1 to adopt. It prints `probe: ready` once
//! its handlers are installed, so a test or a learner knows when sending a
//! signal will tell the truth.
//!
//! The handler itself only writes the signal number and the sender's PID to
//! a pipe (write(2) is async-signal-safe); the main loop reads the pipe and
//! does the printing.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, getpid, getppid, pipe2};

use crate::cli::ProbeArgs;
use crate::signals;
use crate::sys;

/// The write end of the self-pipe, for the signal handler.
static PIPE: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: `info` is what the kernel passed to this SA_SIGINFO handler,
    // read during its run.
    let sender = unsafe { sys::siginfo_pid(info) };
    let mut record = [0u8; 8];
    record[..4].copy_from_slice(&sig.to_ne_bytes());
    record[4..].copy_from_slice(&sender.to_ne_bytes());
    let fd = PIPE.load(Ordering::Relaxed);
    // write(2) is async-signal-safe; a full pipe just loses the record. It
    // may set errno, which the interrupted code may be about to read.
    let saved = nix::errno::Errno::last_raw();
    // SAFETY: fd is the pipe's write end, never closed (`run` leaks it);
    // record is a valid 8-byte buffer.
    let _ = unsafe { libc::write(fd, record.as_ptr().cast(), record.len()) };
    nix::errno::Errno::set_raw(saved);
}

pub fn run(args: ProbeArgs) -> Result<i32> {
    let mut log = match &args.log {
        Some(path) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("--log {}", path.display()))?,
        ),
        None => None,
    };
    let mut say = |line: String| {
        // Not println!: it panics when stdout is a closed pipe. A PID 1
        // is not killed by that SIGPIPE either (the kernel drops it: PID 1
        // left it at its default action), so the write just fails.
        let _ = writeln!(std::io::stdout(), "probe: {line}");
        if let Some(file) = log.as_mut() {
            let _ = writeln!(file, "{line}");
        }
    };

    say(whereabouts());
    if let Some(path) = &args.chroot_escape {
        // A refused escape is the probe's own failure (exit 1), never
        // pidlab's 125.
        let landed = match chroot_escape() {
            Ok(landed) => landed,
            Err(err) => {
                say(format!("the escape failed: {err:#}"));
                return Ok(1);
            }
        };
        say(format!(
            "{landed}; {} {}",
            path.display(),
            if path.exists() { "exists" } else { "does not exist" }
        ));
        return Ok(0);
    }

    let (rx, tx) = pipe2(OFlag::O_CLOEXEC | OFlag::O_NONBLOCK).context("self-pipe")?;
    // Never closed: the handlers write to it for as long as they are
    // installed, which is the rest of the process's life.
    PIPE.store(std::os::fd::IntoRawFd::into_raw_fd(tx), Ordering::Relaxed);
    let mut catch = match &args.catch {
        Some(list) => signals::parse_list(list).context("--catch")?,
        None => Vec::new(),
    };
    if args.on_term_save.is_some() {
        catch.extend([Signal::SIGTERM, Signal::SIGINT]);
    }
    for sig in &catch {
        // SAFETY: `on_signal` reads the siginfo, loads an atomic and calls
        // write(2), all async-signal-safe.
        unsafe { sys::set_siginfo_handler(*sig, on_signal) }.with_context(|| format!("catch {sig}"))?;
    }
    if let Some(list) = &args.ignore {
        for sig in signals::parse_list(list).context("--ignore")? {
            sys::set_disposition(sig, true).with_context(|| format!("ignore {sig}"))?;
        }
    }
    if args.orphans > 0 {
        let orphans = leave_orphans(args.orphans, args.orphan_life.duration())?;
        let left = Instant::now();
        say(format!("left {} orphans", args.orphans));
        if args.await_reaped {
            await_reaped(&orphans, Duration::from_secs(30))?;
            say(format!("all orphans reaped after {:.3} ms", left.elapsed().as_secs_f64() * 1000.0));
        }
    }
    say("ready".into());

    let deadline = args.sleep.map(|s| Instant::now() + s.duration());
    loop {
        let timeout = match deadline {
            None => PollTimeout::NONE,
            Some(at) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    say("slept; exiting 0".into());
                    return Ok(0);
                }
                PollTimeout::try_from(left.as_millis().min(i32::MAX as u128) as i32)
                    .unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(rx.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll"),
            Ok(_) => {}
        }
        for (sig, sender) in drain(&rx) {
            let name = Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.to_string());
            let stamp = if args.timestamps { format!("{} ", monotonic_ns()) } else { String::new() };
            say(format!("{stamp}caught {name} ({sig}) from pid {sender}"));
            let is_stop = sig == Signal::SIGTERM as i32 || sig == Signal::SIGINT as i32;
            if let (true, Some(file)) = (is_stop, &args.on_term_save) {
                save_state(file, &name)?;
                say(format!("saved state to {}; exiting 0", file.display()));
                return Ok(0);
            }
        }
    }
}

fn monotonic_ns() -> u128 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC)
        .map_or(0, |t| t.tv_sec() as u128 * 1_000_000_000 + t.tv_nsec() as u128)
}

/// Wait until every orphan is reaped (by whoever adopted it), at most
/// `limit`. Each is watched through its pidfd, so nothing else on the
/// machine counts: a pidfd turns readable when its process exits (a
/// zombie, not yet reaped); once reaped, sending it signal 0 fails with
/// ESRCH, where a zombie still accepts it, as kill(2) does.
fn await_reaped(orphans: &[OwnedFd], limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    let unreaped = |fd: &&OwnedFd| sys::pidfd_send_signal_number(fd.as_fd(), 0) != Err(Errno::ESRCH);
    // First until all have exited: a wait on the descriptors.
    for orphan in orphans {
        let mut fds = [PollFd::new(orphan.as_fd(), PollFlags::POLLIN)];
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX));
    }
    // Then until the adopter has reaped them: no descriptor tells that, so
    // look again after each yield of the CPU (PID 1 reaps within
    // microseconds; one that does not reap is the point of lesson 07).
    // Each look checks only those not yet seen reaped (a reaped process
    // stays reaped), so the looks get cheaper as PID 1 gets on.
    let mut left: Vec<&OwnedFd> = orphans.iter().collect();
    loop {
        left.retain(|fd| unreaped(fd));
        let zombies = left.len();
        if zombies == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            anyhow::bail!(
                "{zombies} of {} orphans still unreaped after {limit:?}: PID 1 does not reap",
                orphans.len()
            );
        }
        std::thread::yield_now();
    }
}

/// "pid=1 ppid=0 nspid=1 pid1=/bin/sh": who am I, and who is PID 1 here.
fn whereabouts() -> String {
    let nspid = crate::procfs::nspid(Path::new("/proc/self/status"))
        .map(|v| v.iter().map(i32::to_string).collect::<Vec<_>>().join(","))
        .unwrap_or_else(|_| "?".into());
    let pid1 = std::fs::read("/proc/1/cmdline")
        .map(|raw| {
            raw.split(|b| *b == 0).next().map(|w| String::from_utf8_lossy(w).into_owned()).unwrap_or_default()
        })
        .unwrap_or_else(|_| "?".into());
    format!("pid={} ppid={} nspid={nspid} pid1={pid1}", getpid(), getppid())
}

fn drain(rx: &OwnedFd) -> Vec<(i32, i32)> {
    let mut out = Vec::new();
    let mut record = [0u8; 8];
    while let Ok(8) = nix::unistd::read(rx, &mut record) {
        let sig = i32::from_ne_bytes(record[..4].try_into().expect("4 bytes"));
        let sender = i32::from_ne_bytes(record[4..].try_into().expect("4 bytes"));
        out.push((sig, sender));
    }
    out
}

/// chroot(2) changes how `/` resolves but not the working directory, and
/// `..` at a process's root stays put only at *that* root. So: chroot into
/// a fresh subdirectory without entering it; the cwd is now outside our
/// root, `..` climbs freely to the top of the mount namespace, and a
/// chroot(".") there makes it our root. Needs CAP_SYS_CHROOT. Where the top
/// is the host's root (pidlab's default chroot), we are out; after
/// pivot_root the top is the sandbox's own root, and there is no way out.
fn chroot_escape() -> Result<String> {
    let jail = Path::new("/tmp/pidlab-jail");
    std::fs::create_dir_all(jail).context("mkdir /tmp/pidlab-jail (needs a writable /tmp)")?;
    nix::unistd::chdir("/").context("chdir /")?;
    nix::unistd::chroot(jail).context("chroot into the jail (needs CAP_SYS_CHROOT)")?;
    for _ in 0..64 {
        nix::unistd::chdir("..").context("chdir ..")?;
    }
    nix::unistd::chroot(".").context("chroot .")?;
    nix::unistd::chdir("/").context("chdir /")?;
    Ok("climbed out of the jail to the top of the mount namespace".into())
}

/// Write the state file the way a database saves before exiting: to a
/// temporary name, then rename, so a reader never sees half a file.
fn save_state(file: &Path, signal: &str) -> Result<()> {
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, format!("saved on {signal} by the probe, pid {} in its namespace\n", getpid()))
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, file).with_context(|| format!("rename to {}", file.display()))
}

/// Fork a child that forks `n` grandchildren and exits: the grandchildren
/// are orphans, and the kernel gives them to the nearest subreaper or to
/// PID 1 of this namespace (pid_namespaces(7), "Adoption of orphaned
/// children"). Each lives `life`, then exits and stays a zombie until
/// whoever adopted it calls wait. Returns a pidfd on each.
///
/// The child tells us each orphan's PID on a pipe and waits, keeping them
/// its children (an exited one a zombie whose PID nobody else can get),
/// until we hold a pidfd on every one; then it exits. With a zero life we
/// wait (at most 10 s) until all have exited, so that when we say "left N
/// orphans" what is left are zombies, or nothing if PID 1 reaped them.
fn leave_orphans(n: u32, life: Duration) -> Result<Vec<OwnedFd>> {
    let (pids_rx, pids_tx) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (held_rx, held_tx) = pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    // SAFETY: pidlab starts no thread (see `sys::fork`).
    match unsafe { sys::fork() }.context("fork the orphans' parent")? {
        ForkResult::Child => sys::child(|| {
            drop((pids_rx, held_tx));
            for _ in 0..n {
                // SAFETY: as above, a single thread.
                match unsafe { sys::fork() } {
                    Ok(ForkResult::Child) => sys::child(|| {
                        // Hold none of the pipes: their ends are our
                        // parents' business. The handlers we inherited
                        // write to the self-pipe: point them at nothing.
                        PIPE.store(-1, Ordering::Relaxed);
                        // SAFETY: this child ends in exit_now, a panic too
                        // (`sys::child`), dropping none of the pipe ends it
                        // closes here.
                        let _ = unsafe { sys::close_fds_except(&[]) };
                        std::thread::sleep(life);
                        0
                    }),
                    Ok(ForkResult::Parent { child }) => {
                        let _ = nix::unistd::write(&pids_tx, &child.as_raw().to_ne_bytes());
                    }
                    Err(_) => break,
                }
            }
            drop(pids_tx);
            // End of file: the probe holds a pidfd on each orphan.
            let _ = nix::unistd::read(&held_rx, &mut [0u8; 1]);
            0
        }),
        ForkResult::Parent { child } => {
            drop((pids_tx, held_rx));
            let mut pids = Vec::new();
            std::fs::File::from(pids_rx).read_to_end(&mut pids).context("read the orphans' PIDs")?;
            // A descriptor per orphan: as many as the hard limit allows
            // (--orphans goes up to 10,000; a soft limit is often 1,024).
            use nix::sys::resource::{Resource, getrlimit, setrlimit};
            if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
                let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
            }
            let orphans: Vec<OwnedFd> = pids
                .chunks_exact(4)
                .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .map(|pid| match sys::pidfd_open(nix::unistd::Pid::from_raw(pid)) {
                    Err(Errno::EMFILE) => Err(anyhow::anyhow!(
                        "a descriptor per orphan is more than this process may open: raise `ulimit -Hn` above {}, \
                         or leave fewer orphans",
                        n + 64
                    )),
                    other => other.context("pidfd_open on an orphan"),
                })
                .collect::<Result<_>>()?;
            drop(held_tx);
            // Reap our own child only: the orphans are not ours any more.
            waitpid(child, None).context("wait for the orphans' parent")?;
            if life.is_zero() {
                let deadline = Instant::now() + Duration::from_secs(10);
                for orphan in &orphans {
                    let mut fds = [PollFd::new(orphan.as_fd(), PollFlags::POLLIN)];
                    let left = deadline.saturating_duration_since(Instant::now());
                    let _ = poll(&mut fds, PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX));
                }
            }
            Ok(orphans)
        }
    }
}
