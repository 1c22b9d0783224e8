//! One check per exercise. Each runs the attendee's file on a `Bench`,
//! looks at what happened (exit codes, the sandbox's output, `explain`,
//! `stop`, the files in the data volume), and builds its verdict from that
//! alone. The wrong answers attendees really give are recognised by what
//! they leave behind, and named.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::check::{Bench, Seen, script_failed};

mod build;
mod core;
mod stretch;

pub use build::{check_17, check_19};
pub use core::{check_4, check_5, check_7, check_9};
pub use stretch::{stretch_3, stretch_6, stretch_8};

/// After the script ran: the sandbox `name` exists and is still running,
/// or the verdict that says what happened instead.
fn started_by_script(bench: &Bench, file: &Path, name: &str) -> Result<std::result::Result<Seen, String>> {
    let ran = bench.script(file)?;
    if let Some(failure) = script_failed(file, &ran) {
        return Ok(Err(failure));
    }
    let Some(seen) = bench.seen(name)? else {
        let found = bench.names();
        return Ok(Err(format!(
            "no sandbox named {name}: {}. The file must start one with --name {name} and -d.",
            if found.is_empty() {
                "the file started none".to_string()
            } else {
                format!("it started {}", found.join(", "))
            }
        )));
    };
    if seen.exited.is_some() {
        return Ok(Err(exited_early(bench, name, &seen)?));
    }
    Ok(Ok(seen))
}

/// The sandbox ended by itself before the check sent anything: say how,
/// with its own output.
fn exited_early(bench: &Bench, name: &str, seen: &Seen) -> Result<String> {
    let logs = bench.logs(name)?;
    Ok(format!(
        "the sandbox's PID 1 (`{}`) exited by itself with code {} before the check stopped it. Its output:\n{}",
        seen.command,
        seen.exited.unwrap_or(-1),
        indent(if logs.is_empty() { "(nothing)" } else { &logs })
    ))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

/// `PATH` from the probe's "saved state to PATH; exiting 0" line.
fn saved_to(logs: &str) -> Option<String> {
    logs.lines()
        .find_map(|l| l.split_once("saved state to "))
        .map(|(_, rest)| rest.rsplit_once("; exiting").map_or(rest, |(path, _)| path).to_string())
}

fn usage(message: String) -> anyhow::Error {
    crate::exit_code::Exit { code: crate::exit_code::SETUP_FAILED, message }.into()
}

/// How many zombies are left in `name` once every orphan has exited and
/// its PID 1 has had 2 s more to reap them (an init reaps within
/// milliseconds), and PID 1's command line. The orphans are the processes
/// made after the probe, whose PID inside `probe: pid=N` gave: until each
/// is a zombie or gone, no count proves anything (each lives
/// `--orphan-life` seconds, 0.2 by default).
fn zombies_left(bench: &Bench, name: &str) -> Result<(usize, String)> {
    let probe: i64 = bench
        .logs(name)?
        .lines()
        .find_map(|l| l.strip_prefix("probe: pid=")?.split_whitespace().next()?.parse().ok())
        .unwrap_or(1);
    // (zombies, orphans still alive, PID 1's command line)
    let look = || -> Result<(usize, usize, String)> {
        let inspect = bench.pidlab(&["inspect", name, "--format", "json"])?;
        let v: Value = serde_json::from_str(&inspect.stdout).unwrap_or(Value::Null);
        let procs = v["processes"].as_array().cloned().unwrap_or_default();
        let pid1 = procs.first().and_then(|p| p["cmdline"].as_str()).map(str::to_string);
        let pid1 =
            pid1.unwrap_or_else(|| format!("unknown: `pidlab inspect {name}` said {}", inspect.text()));
        let inner = |p: &Value| p["nspid"].as_array().and_then(|n| n.last()).and_then(Value::as_i64);
        let zombies = procs.iter().filter(|p| p["state"] == "Z").count();
        let alive = procs.iter().filter(|p| p["state"] != "Z" && inner(p).is_some_and(|n| n > probe)).count();
        Ok((zombies, alive, pid1))
    };
    let step = std::time::Duration::from_millis(20);
    // The orphans' own lives first (bounded: --orphan-life is a few seconds
    // in every lesson), then PID 1's chance to reap.
    let lives_end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while look()?.1 > 0 && std::time::Instant::now() < lives_end {
        std::thread::sleep(step);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (count, _, pid1) = look()?;
        if count == 0 || std::time::Instant::now() >= deadline {
            return Ok((count, pid1));
        }
        std::thread::sleep(step);
    }
}
