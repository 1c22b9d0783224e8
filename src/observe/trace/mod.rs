//! `pidlab trace NAME`: the kernel's own record of every signal that
//! touches a sandbox, turned into a numbered timeline and a verdict.
//!
//! The kernel has tracepoints where a signal is *generated* (kill(2),
//! a tty, the kernel itself) and where it is *delivered* (the target
//! dequeues it): `signal:signal_generate` and `signal:signal_deliver`
//! (include/trace/events/signal.h). signal_generate reports `res`, what
//! the kernel decided at send time: 0 queued, 1 ignored — which is how a
//! signal dropped at a namespace's PID 1 shows up —, 2 already pending.
//! `code=128` (SI_KERNEL) marks a signal the kernel sent itself, such as the
//! SIGKILLs of a namespace whose init has exited. pidlab also follows
//! `sched:sched_process_fork` to learn the sandbox's new processes, and
//! `sched:sched_process_exit` to see them go.
//!
//! Tracing is done in a private tracefs *instance* (its own ring buffer and
//! event switches, `instances/pidlab-PID-START`), so it never disturbs anyone
//! else's tracing, and the instance is removed when pidlab is done (or, if
//! pidlab was killed, by the next `trace`, `run --trace` or `doctor`). If the
//! host has no tracefs mounted, pidlab mounts one — in a mount namespace of
//! its own, so the host's mount table never changes.

mod follower;
mod timeline;
mod tracefs;
mod without_root;

use std::fs;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde_json::json;

use super::event::{Event, Kind, Who};
use super::picture;
use crate::cli::{Format, TraceArgs};
use crate::record::{Sandbox, open_pid1};
pub use follower::Follower;
use timeline::{Timeline, monotonic};
pub use tracefs::Instance;
use tracefs::parse_line;

/// `run --trace` starts us before its sandbox exists: wait until it is
/// registered with a live PID 1 (checked every 2 ms, at most `limit`).
fn await_sandbox(name: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(sandbox) = Sandbox::open(name)
            && sandbox.status().is_running()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("sandbox {name:?} did not appear within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Print one event, numbered, in the chosen format.
fn show(n: usize, event: &Event, format: Format) {
    if format == Format::Json {
        let mut line = event.to_json();
        line["n"] = json!(n);
        println!("{line}");
        return;
    }
    let who = |w: &Who| {
        let place = if w.inside { w.pids() } else { format!("{} (host)", w.pids()) };
        format!("{} {place}", crate::output::printable(w.name()))
    };
    let (t, target, outcome) = (event.t, who(&event.target), event.outcome.text());
    match &event.kind {
        Kind::Generate { signal, sender, .. } => {
            println!("{n:>3} {t:>8.3}s  {signal} -> {target} by {}: {outcome}", who(sender))
        }
        Kind::Deliver { signal } => println!("{n:>3} {t:>8.3}s  {signal} at {target}: {outcome}"),
        Kind::Exit => println!("{n:>3} {t:>8.3}s  {target} {outcome}"),
    }
}

/// `--ready-fd N`: the write end of a pipe `pidlab run --trace` handed
/// down (`follower.rs`), where we say when tracing is on. Taken before this
/// process opens any descriptor of its own, so an open number above 2 can
/// only be one we inherited, and this is its one owner.
fn take_ready_fd(fd: i32) -> Result<std::fs::File> {
    if fd <= 2 {
        bail!(
            "--ready-fd {fd}: that is stdin, stdout or stderr; give the descriptor `pidlab run --trace` handed down"
        );
    }
    // SAFETY: see above: nothing in this process has opened a descriptor
    // yet, so nothing else owns `fd`, and `run` calls this once.
    let fd = unsafe { crate::sys::take_inherited_fd(fd) }
        .with_context(|| format!("--ready-fd {fd} is not open"))?;
    Ok(std::fs::File::from(fd))
}

/// Say "r" on the `--ready-fd` pipe: the tracer is in place.
pub fn tell_ready(ready: std::fs::File) -> Result<()> {
    std::io::Write::write_all(&mut &ready, b"r").context("tell pidlab run that tracing is on")
}

pub fn run(args: TraceArgs) -> Result<i32> {
    let ready = args.ready_fd.map(take_ready_fd).transpose()?;
    if ready.is_some() {
        await_sandbox(&args.name, Duration::from_secs(5))?;
    }
    // Refused before anything is traced, not after.
    let picture = args.svg.as_deref().map(picture_file).transpose()?;
    let sandbox = Sandbox::open(&args.name)?;
    let (_, pid1, pidfd) = open_pid1(&sandbox, "trace")?;
    if !nix::unistd::geteuid().is_root() {
        return without_root::observe(&args, &sandbox, pid1.pid, &pidfd, ready);
    }
    // Ctrl-C and SIGTERM end the trace cleanly (the instance is removed).
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block()?;
    let signals = SignalFd::with_flags(&stop, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

    let instance = Instance::create()?;
    let mut pipe = instance.pipe()?;
    let mut timeline = Timeline::new(monotonic(), pid1.pid);
    let header = format!(
        "tracing {} (PID 1 = host PID {}); times from now; PIDs as host/ns1/ns2...",
        sandbox.name, pid1.pid
    );
    if args.format == Format::Json {
        println!("{}", json!({ "n": 0, "event": "tracing", "name": sandbox.name, "pid1": pid1.pid }));
    } else {
        println!("{header}");
    }
    if let Some(ready) = ready {
        tell_ready(ready)?;
    }

    let mut pending = String::new();
    let mut ended_at: Option<Instant> = None;
    loop {
        // After PID 1 has gone, keep reading a little: the namespace's
        // teardown events are still arriving.
        let timeout = match ended_at {
            Some(at) => {
                let left = Duration::from_millis(300).saturating_sub(at.elapsed());
                if left.is_zero() {
                    break;
                }
                PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [
            PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("poll"),
        }
        let interrupted = fds[1].revents().is_some_and(|r| !r.is_empty());
        let exited = fds[2].revents().is_some_and(|r| !r.is_empty());
        let mut chunk = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(record) = parse_line(&line)
                    && let Some(event) = timeline.ingest(&record)
                {
                    show(timeline.events.len() + 1, &event, args.format);
                    timeline.events.push(event);
                }
            }
        }
        if interrupted {
            break;
        }
        if exited && ended_at.is_none() {
            ended_at = Some(Instant::now());
        }
    }
    drop(pipe);
    drop(instance);
    let verdict = timeline.verdict();
    if args.format == Format::Json {
        println!("{}", json!({ "n": timeline.events.len() + 1, "event": "verdict", "text": verdict }));
    } else {
        println!("verdict: {verdict}");
    }
    if let (Some(mut file), Some(path)) = (picture, &args.svg) {
        let title = format!("pidlab trace {}: every signal, sender to target", sandbox.name);
        let svg = picture::svg(&title, &timeline.events, &verdict);
        std::io::Write::write_all(&mut file, svg.as_bytes())
            .with_context(|| format!("write the picture to {}", path.display()))?;
    }
    Ok(0)
}

/// Open (create or empty) the file `--svg` names, refusing what cannot be
/// drawn: without root there is no kernel record to draw.
fn picture_file(path: &Path) -> Result<fs::File> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "--svg {} draws the kernel's record of each signal, and reading tracefs needs root: run as root, or leave out --svg",
            path.display()
        );
    }
    fs::File::create(path).with_context(|| {
        format!(
            "--svg {}: cannot create the file; give a path in a directory you can write to",
            path.display()
        )
    })
}
