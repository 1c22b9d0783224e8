//! The stretch exercises' checks, for attendees who finish early.

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::{exited_early, indent, started_by_script};
use crate::workshop::lesson::check::{Bench, Verdict};

/// Wait (bounded) until `name`'s output says `probe: ready` `count` times:
/// false if it never did.
fn all_ready(bench: &Bench, name: &str, count: usize) -> Result<bool> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        if bench.logs(name)?.lines().filter(|l| *l == "probe: ready").count() >= count {
            return Ok(true);
        }
        if std::time::Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// After the script ran: the sandbox is running and its probe(s) ready, or
/// the verdict that says what happened instead.
fn probes_ready(bench: &Bench, file: &Path, name: &str, probes: usize) -> Result<Option<String>> {
    if let Err(failure) = started_by_script(bench, file, name)? {
        return Ok(Some(failure));
    }
    if all_ready(bench, name, probes)? {
        return Ok(None);
    }
    Ok(Some(match bench.seen(name)? {
        Some(seen) if seen.exited.is_some() => exited_early(bench, name, &seen)?,
        _ => format!(
            "expected {probes} `probe: ready` line(s) within 5 s. The output:\n{}",
            indent(&bench.logs(name)?)
        ),
    }))
}

/// Lesson 3's stretch: a probe three levels below the host, PID 2 in its
/// own namespace.
pub fn stretch_3(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Some(failure) = probes_ready(&bench, file, "st03", 1)? {
        return Ok(Err(failure));
    }
    let inspect = bench.pidlab(&["inspect", "st03", "--format", "json"])?;
    let v: Value = serde_json::from_str(&inspect.stdout).unwrap_or(Value::Null);
    let procs = v["processes"].as_array().cloned().unwrap_or_default();
    // The probe runs as `pidlab probe ...`; the nest levels and the init
    // are named `pidlab:nest-N` and `pidlab:init`.
    let probe = procs.iter().find(|p| {
        p["cmdline"].as_str().is_some_and(|c| c.contains("probe")) && p["comm"].as_str() == Some("pidlab")
    });
    let Some(probe) = probe else {
        return Ok(Err(format!("`pidlab inspect st03` shows no probe process: {}", inspect.text())));
    };
    let nspid: Vec<i64> = probe["nspid"].as_array().into_iter().flatten().filter_map(Value::as_i64).collect();
    let shown = nspid.iter().map(i64::to_string).collect::<Vec<_>>().join("/");
    let levels = nspid.len().saturating_sub(1);
    if levels != 3 {
        return Ok(Err(format!(
            "the probe's NSpid is {shown}: it is {levels} level(s) below the host, not 3 (one number per level, \
             the host's first)."
        )));
    }
    match nspid.last() {
        Some(2) => Ok(Ok(format!(
            "the probe's NSpid is {shown}: three namespaces below the host, PID 2 in its own, under an init."
        ))),
        Some(own) => Ok(Err(format!(
            "the probe's NSpid is {shown}: three levels deep, but it is PID {own} in its own namespace, not 2. \
             Who is started first in the innermost namespace?"
        ))),
        None => Ok(Err(format!("`pidlab inspect st03` shows the probe without NSpid: {}", inspect.text()))),
    }
}

/// Lesson 6's stretch: the shell stays PID 1, the probe saves on stop, and
/// the shell then runs its last line.
pub fn stretch_6(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Some(failure) = probes_ready(&bench, file, "st06", 1)? {
        return Ok(Err(failure));
    }
    let (comm, fate) = match bench.pid1("st06")? {
        Ok(found) => found,
        Err(unknown) => return Ok(Err(unknown)),
    };
    if !["sh", "dash", "bash", "busybox"].contains(&comm.as_str()) {
        return Ok(Err(format!(
            "PID 1 is {comm}, not the shell: this stretch keeps the shell as PID 1 (no --init, no exec), so that \
             it can run its last line after the service stopped."
        )));
    }
    let stop = bench.pidlab(&["stop", "-t", "2", "st06"])?.text();
    let logs = bench.logs("st06")?;
    let saved = logs.contains("saved state to");
    let cleaned = logs.lines().any(|l| l == "cleaned up");
    if saved && cleaned && !stop.contains("SIGKILL") {
        return Ok(Ok(format!(
            "PID 1 was {comm}, SIGTERM to it was {fate}; the probe saved its state and the shell ran its last \
             line: {stop}"
        )));
    }
    let what = match (saved, cleaned) {
        (false, _) => format!("the probe never saved its state: SIGTERM sent to PID 1 ({comm}) was {fate}"),
        (true, false) => "the probe saved its state, but the shell never printed \"cleaned up\"".to_string(),
        (true, true) => {
            "the probe saved and the shell printed \"cleaned up\", but not before SIGKILL".to_string()
        }
    };
    Ok(Err(format!("{what}. `pidlab stop -t 2` said: {stop}. The output:\n{}", indent(&logs))))
}

/// Lesson 8's stretch: both background probes save on stop.
pub fn stretch_8(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Some(failure) = probes_ready(&bench, file, "st08", 2)? {
        return Ok(Err(failure));
    }
    let stop = bench.pidlab(&["stop", "-t", "2", "st08"])?.text();
    let logs = bench.logs("st08")?;
    let saved = logs.lines().filter(|l| l.contains("saved state to")).count();
    if saved == 2 {
        return Ok(Ok(format!("both probes saved their state: {stop}")));
    }
    Ok(Err(format!(
        "{saved} of the 2 probes saved their state. `pidlab stop -t 2` said: {stop}. Which processes did the \
         stop signal reach? The output:\n{}",
        indent(&logs)
    )))
}
