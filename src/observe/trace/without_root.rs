//! `pidlab trace` without root: no tracepoints to read, so a prediction
//! and what /proc shows, each line labelled as such.

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsFd;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Result;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use serde_json::json;

use crate::cli::{Format, TraceArgs};
use crate::procfs::{self, members};
use crate::record::Sandbox;
use crate::signals;

/// Without root there are no tracepoints to read. Say so once, predict what
/// the stop signal would do (`explain`), then watch what can be seen from
/// /proc — processes leaving, signals pending (SigPnd, ShdPnd) — and how
/// PID 1 ended, labelling every line "predicted" or "observed": none of it
/// is the kernel's own record.
pub fn observe(
    args: &TraceArgs,
    sandbox: &Sandbox,
    pid1: i32,
    pidfd: &std::os::fd::OwnedFd,
    ready: Option<std::fs::File>,
) -> Result<i32> {
    let say = |n: usize, label: &str, text: String| match args.format {
        Format::Json => println!("{}", json!({ "n": n, "event": label, "text": text, "recorded": false })),
        Format::Table => println!("{n:>3} {label:<9} {}", crate::output::printable(&text)),
    };
    let stop_signal = sandbox
        .record()
        .and_then(|r| signals::parse_number(&r.stop_signal).ok())
        .and_then(|n| Signal::try_from(n).ok())
        .unwrap_or(Signal::SIGTERM);
    match args.format {
        Format::Json => println!(
            "{}",
            json!({ "n": 0, "event": "tracing", "name": sandbox.name, "pid1": pid1, "recorded": false })
        ),
        Format::Table => println!(
            "tracing {} without root: no kernel record (tracefs needs root); lines are predicted or observed",
            sandbox.name
        ),
    }
    if let Some(ready) = ready {
        super::tell_ready(ready)?;
    }
    // `run --trace` starts us before PID 1 has exec'd the workload: until
    // it has, PID 1 is still a copy of its parent, and a prediction would
    // describe pidlab, not the workload. Wait (at most 2 s) for the exec.
    let cmdline = |pid: i32| fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let parent = procfs::Status::of(pid1).map_or(0, |s| s.ppid);
    let exec_deadline = Instant::now() + Duration::from_secs(2);
    while cmdline(pid1) == cmdline(parent) && Instant::now() < exec_deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // Then until it has settled: asleep, with the same blocked mask in two
    // looks 10 ms apart (a shell blocks every signal for the moment it
    // forks; an init blocks them for good). At most 500 ms.
    let settle_deadline = Instant::now() + Duration::from_millis(500);
    let look = || procfs::Status::of(pid1).map_or((false, 0), |s| (s.state == 'S', s.blocked));
    while Instant::now() < settle_deadline {
        let (asleep, first) = look();
        std::thread::sleep(Duration::from_millis(10));
        let (still_asleep, second) = look();
        if asleep && still_asleep && first == second {
            break;
        }
    }
    let mut n = 0;
    for row in crate::observe::explain::predict_all(pid1, stop_signal, false) {
        n += 1;

        say(
            n,
            "predicted",
            format!("{} to {} {}: {} ({})", stop_signal.as_str(), row.comm, row.pids(), row.outcome, row.why),
        );
    }
    let mut alive: HashMap<i32, String> = members(pid1).into_iter().map(|p| (p, procfs::comm(p))).collect();
    let mut pending_seen: HashMap<i32, String> = HashMap::new();
    let started = Instant::now();
    loop {
        // Look every 50 ms; PID 1's exit ends the wait at once.
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let exited = poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0) > 0;
        let t = started.elapsed().as_secs_f64();
        for pid in members(pid1) {
            alive.entry(pid).or_insert_with(|| procfs::comm(pid));
        }
        let gone: Vec<i32> =
            alive.keys().copied().filter(|p| !Path::new(&format!("/proc/{p}")).exists()).collect();
        for pid in gone {
            n += 1;
            say(
                n,
                "observed",
                format!("{t:.2}s {} (host PID {pid}) is gone", alive.remove(&pid).unwrap_or_default()),
            );
        }
        for (&pid, comm) in &alive {
            let Some(status) = procfs::Status::of(pid) else { continue };
            let pending = signals::names_in(status.pending).join(" ");
            if !pending.is_empty() && pending_seen.get(&pid) != Some(&pending) {
                n += 1;
                say(
                    n,
                    "observed",
                    format!("{t:.2}s {comm} (host PID {pid}) has {pending} pending (queued, not yet taken)"),
                );
            }
            pending_seen.insert(pid, pending);
        }
        if exited {
            break;
        }
    }
    // The supervisor records how PID 1 ended; give it a moment to do so.
    let deadline = Instant::now() + Duration::from_secs(2);
    let how = loop {
        if let Some(exit) = sandbox.exit() {
            break exit.how;
        }
        if Instant::now() >= deadline {
            break "exited (its status was not recorded)".to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    n += 1;
    say(n, "observed", format!("PID 1 ended: {how}"));
    let verdict = format!(
        "inferred, not recorded: PID 1 ended ({how}); the prediction above says what {} would have done to each process",
        stop_signal.as_str()
    );
    match args.format {
        Format::Json => {
            println!("{}", json!({ "n": n + 1, "event": "verdict", "text": verdict, "recorded": false }))
        }
        Format::Table => println!("verdict ({verdict})"),
    }
    Ok(0)
}
