//! `cargo bench --bench picture`: how long drawing a trace takes, against
//! a named baseline, serialising the same events to JSON lines (what
//! `trace --format json` does with them). The goal of #20: 1,000 events
//! drawn in under 100 ms.
//!
//! The events are made up (no root, no tracefs needed): a sandbox nested
//! three deep, a host sender, and the mix a stop produces — signals queued
//! and handled, dropped at PID 1, already pending, SIGKILLs from outside
//! and the kernel's teardown — many in the same millisecond. The drawing
//! code is compiled in from src/, as it is in pidlab (pidlab is a binary,
//! with no library to link against).

#[allow(dead_code)]
#[path = "../src/observe/event.rs"]
mod event;
#[allow(dead_code)]
#[path = "../src/observe/picture/mod.rs"]
mod picture;

use std::hint::black_box;
use std::time::Instant;

use event::{Event, Kind, Outcome, Who};

const EVENTS: usize = 1000;
const RUNS: usize = 21;

fn who(host_pid: i32, nspid: &[i32], comm: &str) -> Who {
    Who {
        host_pid,
        nspid: nspid.to_vec(),
        comm: Some(comm.into()),
        inside: nspid.len() > 1,
        process: host_pid,
    }
}

/// A trace of `n` events: four at a time, each group in one millisecond.
fn trace(n: usize) -> Vec<Event> {
    let host = who(4000, &[4000], "pidlab");
    let procs = [
        who(4100, &[4100, 1], "pidlab:nest-1"),
        who(4101, &[4101, 2, 1], "pidlab:init"),
        who(4102, &[4102, 3, 2, 1], "redis-server"),
        who(4103, &[4103, 4, 3, 2], "redis-bgsave"),
    ];
    let mut events = Vec::with_capacity(n);
    for i in 0..n {
        let t = (i / 4) as f64 * 0.001;
        let target = procs[i % procs.len()].clone();
        let (signal, res, code, outcome, sender) = match i % 8 {
            0 => ("SIGTERM", 0, 0, Outcome::Queued, host.clone()),
            1 => ("SIGTERM", 1, 0, Outcome::DroppedFromOutside, host.clone()),
            2 => ("SIGUSR1", 2, 0, Outcome::AlreadyPending, procs[0].clone()),
            3 => ("SIGKILL", 0, 0, Outcome::QueuedAncestorKill, host.clone()),
            4 => ("SIGKILL", 0, 128, Outcome::QueuedTeardown, procs[1].clone()),
            5 => ("SIGINT", 1, 0, Outcome::DroppedFromInside, procs[2].clone()),
            _ => {
                let outcome = if i % 16 == 6 { Outcome::Handler } else { Outcome::DefaultAction };
                events.push(Event { t, kind: Kind::Deliver { signal: "SIGTERM".into() }, target, outcome });
                continue;
            }
        };
        let kind = Kind::Generate { signal: signal.into(), sender, code, res };
        events.push(Event { t, kind, target, outcome });
    }
    events
}

/// The median time of `RUNS` runs of `work`, in milliseconds.
fn median_ms(mut work: impl FnMut() -> usize) -> (f64, usize) {
    let mut times = Vec::with_capacity(RUNS);
    let mut size = 0;
    for _ in 0..RUNS {
        let start = Instant::now();
        size = black_box(work());
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    (times[RUNS / 2], size)
}

fn main() {
    let events = trace(EVENTS);
    let verdict = "At 0.50 s SIGTERM sent to redis-server (PID 1) was dropped by the kernel: PID 1 had no handler for it.";
    let (json, json_bytes) = median_ms(|| {
        let lines: Vec<String> = black_box(&events).iter().map(|e| e.to_json().to_string()).collect();
        lines.iter().map(|l| l.len() + 1).sum()
    });
    let (svg, svg_bytes) =
        median_ms(|| picture::svg("pidlab trace bench", black_box(&events), verdict).len());
    println!("{EVENTS} events, median of {RUNS} runs:");
    println!("  baseline: JSON lines (trace --format json)  {json:8.2} ms  {json_bytes:>9} bytes");
    println!("  picture:  SVG sequence diagram (--svg)      {svg:8.2} ms  {svg_bytes:>9} bytes");
    println!("  picture / baseline: {:.1}x; goal: under 100 ms", svg / json);
    assert!(svg < 100.0, "drawing {EVENTS} events took {svg:.1} ms, over the 100 ms goal");
}
