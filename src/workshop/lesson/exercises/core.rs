//! The checks of the core exercises: 04 (a PID 1 that handles SIGTERM),
//! 05 (exec form), 07 (an init that reaps), 09 (an entrypoint script that
//! execs).

use std::path::Path;

use anyhow::Result;
use serde_json::Value;

use super::{exited_early, indent, saved_to, started_by_script, zombies_left};
use crate::workshop::lesson::check::{Bench, Verdict, crlf_hint};

/// Lesson 4: PID 1 survives SIGTERM from the host, but not SIGKILL.
pub fn check_4(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let seen = match started_by_script(&bench, file, "ex04")? {
        Ok(seen) => seen,
        Err(failure) => return Ok(Err(failure)),
    };
    // Any PID 1 may do; a probe is given time to install its handlers.
    if seen.command.contains("probe") && !bench.ready("ex04")? {
        return Ok(Err(match bench.seen("ex04")? {
            Some(seen) if seen.exited.is_some() => exited_early(&bench, "ex04", &seen)?,
            _ => {
                format!("the probe never said `probe: ready`. Its output:\n{}", indent(&bench.logs("ex04")?))
            }
        }));
    }
    let pid1 = bench.pid1("ex04")?;
    let stop = bench.pidlab(&["stop", "-t", "1", "ex04"])?.text();
    let who = match &pid1 {
        Ok((comm, fate)) => format!("PID 1 ({comm}; SIGTERM from the host: {fate})"),
        Err(unknown) => format!("PID 1 ({unknown})"),
    };
    if stop.contains("did not exit within 1 s of SIGTERM") && stop.contains("killed by SIGKILL") {
        return Ok(Ok(format!(
            "{who} was still running 1 s after SIGTERM, and SIGKILL from the host ended it."
        )));
    }
    let logs = bench.logs("ex04")?;
    let why = if logs.contains("saved state to") {
        " --on-term-save installs a SIGTERM handler that saves and exits, so SIGTERM was delivered and PID 1 \
         did as told."
    } else {
        ""
    };
    Ok(Err(format!(
        "{who} {}: `pidlab stop -t 1` said: {stop}.{why} A PID 1 with a handler that exits ends on SIGTERM; \
         with no handler at all, the kernel drops SIGTERM from the host.",
        if stop.contains(" exited ") { "exited on SIGTERM" } else { "did not end as expected" }
    )))
}

/// Lesson 5: the Dockerfile's service saves its state on `docker stop`.
pub fn check_5(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let volume = format!("{}:/data", bench.data.path().display());
    let path = file.to_string_lossy();
    let crlf = crlf_hint(file).unwrap_or_default();
    let start = bench.pidlab(&["run", "-d", "--name", "ex05", "-v", &volume, "-f", &path])?;
    if !start.success() {
        // Without the note on FROM and RUN, which every lesson Dockerfile
        // earns and which is not why it failed.
        let text = start.text();
        let why: Vec<&str> = text.lines().filter(|l| !l.starts_with("pidlab: not applied")).collect();
        return Ok(Err(format!(
            "the Dockerfile did not start (exit code {}): {}{crlf}",
            start.code(),
            why.join("\n")
        )));
    }
    if !bench.ready("ex05")? {
        let Some(seen) = bench.seen("ex05")?.filter(|s| s.exited.is_some()) else {
            let logs = bench.logs("ex05")?;
            return Ok(Err(format!(
                "the probe never said `probe: ready`. Its output:\n{}{crlf}",
                indent(&logs)
            )));
        };
        let mut verdict = exited_early(&bench, "ex05", &seen)?;
        if let Some(json) = bad_json_array(&bench, &path)? {
            verdict.push_str(&format!(
                "\nYour CMD `{json}` looks like a JSON array but is not valid JSON (JSON needs double quotes \
                 \"...\" and a closing ]), so it is shell form: /bin/sh -c ran it as a command line, and the \
                 shell looked for a program named by its first word."
            ));
        }
        return Ok(Err(verdict + &crlf));
    }
    let pid1 = bench.pid1("ex05")?;
    let stop = bench.pidlab(&["stop", "-t", "2", "ex05"])?.text();
    let logs = bench.logs("ex05")?;
    if bench.data_files().iter().any(|f| f == "state") {
        let who = pid1.map_or_else(|e| e, |(comm, fate)| format!("PID 1 was {comm}; SIGTERM was {fate}"));
        return Ok(Ok(format!("{who}; the state file was written: {stop}")));
    }
    if let Some(saved) = saved_to(&logs) {
        return Ok(Err(format!(
            "the probe received SIGTERM and saved its state to {saved}, but that is inside the sandbox's own \
             filesystem, which goes away with it. Only /data is a volume (the host's directory, which the check \
             reads): save to /data/state.{crlf}"
        )));
    }
    let Ok((comm, fate)) = pid1 else {
        return Ok(Err(format!(
            "no state file was written; `pidlab stop -t 2` said: {stop}. {}. The probe's output:\n{}{crlf}",
            pid1.err().unwrap_or_default(),
            indent(&logs)
        )));
    };
    let killed = stop.contains("sent SIGKILL");
    let why = if comm == "sh" || comm == "dash" {
        " The shell stays PID 1 (Debian's dash forks the command) and has no SIGTERM handler."
    } else {
        ""
    };
    Ok(Err(format!(
        "PID 1 is {comm}; SIGTERM sent to it was {fate}{}; no state file was written.{why}{crlf}",
        if killed { ", so the probe was SIGKILLed after the 2 s grace period" } else { "" },
    )))
}

/// The CMD string, when pidlab ran it as shell form although it starts
/// with `[`: a JSON array that does not parse (single quotes, a missing
/// `]`) is shell form, as in Docker.
fn bad_json_array(bench: &Bench, dockerfile: &str) -> Result<Option<String>> {
    let plan = bench.pidlab(&["run", "--dry-run", "-f", dockerfile])?;
    let argv: Option<Vec<String>> = plan
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("argv: "))
        .and_then(|json| serde_json::from_str::<Value>(json).ok())
        .and_then(|v| {
            v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
        });
    Ok(match argv.as_deref() {
        Some([_, flag, command]) if flag == "-c" && command.trim_start().starts_with('[') => {
            Some(command.clone())
        }
        _ => None,
    })
}

/// Lesson 7: orphans are made, and no zombie is left in the sandbox.
pub fn check_7(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Err(failure) = started_by_script(&bench, file, "ex07")? {
        return Ok(Err(failure));
    }
    if !bench.ready("ex07")? {
        return Ok(Err(match bench.seen("ex07")? {
            Some(seen) if seen.exited.is_some() => exited_early(&bench, "ex07", &seen)?,
            _ => {
                format!("the probe never said `probe: ready`. Its output:\n{}", indent(&bench.logs("ex07")?))
            }
        }));
    }
    let logs = bench.logs("ex07")?;
    let orphans: u32 = logs
        .lines()
        .find_map(|l| l.strip_prefix("probe: left ")?.strip_suffix(" orphans")?.parse().ok())
        .unwrap_or(0);
    if orphans == 0 {
        return Ok(Err(format!(
            "the probe made no orphans (its output has no `probe: left N orphans` line), so there was nothing \
             to reap and nothing is proven. Keep `--orphans 5 --orphan-life 0`: change only what runs as PID 1. \
             Its output:\n{}",
            indent(&logs)
        )));
    }
    Ok(match zombies_left(&bench, "ex07")? {
        (0, pid1) => Ok(format!(
            "the probe left {orphans} orphans and no zombie is left: PID 1 (`{pid1}`) reaped them."
        )),
        (count, pid1) => Err(format!(
            "{count} zombies are left: PID 1 is `{pid1}`, which adopts the orphans but never calls wait(2) for them."
        )),
    })
}

/// Lesson 9: with FILE as the entrypoint, the service saves on stop.
pub fn check_9(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let lesson = format!("{}:/lesson", dir.display());
    let data = format!("{}:/data", bench.data.path().display());
    // As `docker run --entrypoint /bin/sh IMAGE /lesson/FILE pidlab probe ...`.
    let cmd =
        serde_json::json!([format!("/lesson/{name}"), "pidlab", "probe", "--on-term-save", "/data/state"])
            .to_string();
    let crlf = crlf_hint(file).unwrap_or_default();
    let start = bench.pidlab(&[
        "run",
        "-d",
        "--name",
        "ex09",
        "-v",
        &lesson,
        "-v",
        &data,
        "--entrypoint",
        "/bin/sh",
        "--cmd",
        &cmd,
    ])?;
    if !start.success() {
        return Ok(Err(format!(
            "the sandbox did not start (exit code {}): {}{crlf}",
            start.code(),
            start.text()
        )));
    }
    if !bench.ready("ex09")? {
        let Some(seen) = bench.seen("ex09")?.filter(|s| s.exited.is_some()) else {
            let logs = bench.logs("ex09")?;
            return Ok(Err(format!(
                "the probe never said `probe: ready`. Its output:\n{}{crlf}",
                indent(&logs)
            )));
        };
        let mut verdict = exited_early(&bench, "ex09", &seen)?;
        let script = std::fs::read_to_string(file).unwrap_or_default();
        if script.contains("$*") && bench.logs("ex09")?.contains("not found") {
            verdict.push_str(
                "\n\"$*\" joins all the arguments into ONE word, so the shell looked for a program named \
                 `pidlab probe --on-term-save /data/state`. \"$@\" keeps each argument a word of its own.",
            );
        }
        return Ok(Err(verdict + &crlf));
    }
    let pid1 = bench.pid1("ex09")?;
    let stop = bench.pidlab(&["stop", "-t", "2", "ex09"])?.text();
    let files = bench.data_files();
    if files.iter().any(|f| f == "state") {
        let who = pid1.map_or_else(|e| e, |(comm, fate)| format!("PID 1 was {comm}; SIGTERM was {fate}"));
        return Ok(Ok(format!("{who}; the state was saved: {stop}")));
    }
    if let Some(other) = files.first() {
        return Ok(Err(format!(
            "the probe saved its state, but to /data/{other:?}, not /data/state: the command's last argument \
             reached it changed.{crlf}"
        )));
    }
    let Ok((comm, fate)) = pid1 else {
        let logs = bench.logs("ex09")?;
        return Ok(Err(format!(
            "no state was saved; `pidlab stop -t 2` said: {stop}. {}. The output:\n{}{crlf}",
            pid1.err().unwrap_or_default(),
            indent(&logs)
        )));
    };
    let how = if stop.contains("sent SIGKILL") {
        "was SIGKILLed after the 2 s grace period without saving"
    } else {
        "did not save"
    };
    let shell = comm == "sh" || comm == "dash";
    Ok(Err(format!(
        "PID 1 is {comm}{}, and SIGTERM sent to it was {fate}; the probe {how}. `pidlab stop -t 2` said: \
         {stop}{crlf}",
        if shell { ": the script's shell stayed PID 1" } else { "" }
    )))
}
