//! One check per exercise. Each runs the attendee's file on a `Bench`,
//! looks at what happened (exit codes, the sandbox's output, `explain`,
//! `stop`, the files in the data volume), and builds its verdict from that
//! alone. The wrong answers attendees really give are recognised by what
//! they leave behind, and named.

use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::check::{Bench, Seen, Verdict, crlf_hint, script_failed};

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

/// Lesson 17: the attendee's own init (C or Rust), run as PID 1 by
/// `--init=PATH`: it relays the child's status, reaps orphans, and
/// forwards the stop signal.
pub fn check_17(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let init = bench.data.path().join("init");
    let (compiler, package, flags): (&str, &str, &[&str]) = match file.extension().and_then(|e| e.to_str()) {
        Some("c") => ("cc", "apt-get install gcc", &["-O2"]),
        Some("rs") => ("rustc", "rustup.rs", &["-O"]),
        _ => {
            return Err(crate::exit_code::Exit {
                code: crate::exit_code::SETUP_FAILED,
                message: format!(
                    "{}: lesson 17's check builds a C file (.c, with cc) or a Rust file (.rs, with rustc); \
                         the starter is lessons/17-write-an-init/init.c",
                    file.display()
                ),
            }
            .into());
        }
    };
    let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
    args.extend([std::ffi::OsStr::new("-o"), init.as_os_str(), file.as_os_str()]);
    let built = bench.tool(compiler, &args, package)?;
    if !built.success() {
        return Ok(Err(format!(
            "{compiler} could not build it (exit code {}):\n{}",
            built.code(),
            indent(&built.text())
        )));
    }
    let lesson = format!("{}:/lesson", bench.data.path().display());
    // 1. The child's status, relayed: an exit code, and 128+N for a signal.
    for (child, want) in [("exit 3", 3), ("kill -TERM $$", 143)] {
        let ran = bench.pidlab(&["run", "-v", &lesson, "--init=/lesson/init", "--", "sh", "-c", child])?;
        if ran.timed_out() {
            return Ok(Err(format!(
                "with `sh -c '{child}'` as its child, your init was still running 15 s later: it must exit when \
                 its child has exited."
            )));
        }
        if ran.code() != want {
            return Ok(Err(format!(
                "with `sh -c '{child}'` as its child, your init exited with {}; the child's status calls for {want} \
                 (an exit code as it is, 128+N for death by signal N).{}",
                ran.code(),
                if ran.text().is_empty() {
                    String::new()
                } else {
                    format!(" The output:\n{}", indent(&ran.text()))
                }
            )));
        }
    }
    // 2. Orphans reaped, 3. the stop signal forwarded.
    let start = bench.pidlab(&[
        "run",
        "-d",
        "--name",
        "ex17",
        "-v",
        &lesson,
        "--init=/lesson/init",
        "--",
        "pidlab",
        "probe",
        "--on-term-save",
        "/tmp/state",
        "--orphans",
        "5",
        "--orphan-life",
        "0",
    ])?;
    if !start.success() {
        return Ok(Err(format!("the sandbox did not start (exit code {}): {}", start.code(), start.text())));
    }
    if !bench.ready("ex17")? {
        return Ok(Err(format!(
            "the probe, your init's child, never said `probe: ready`. The output:\n{}",
            indent(&bench.logs("ex17")?)
        )));
    }
    let (zombies, _) = zombies_left(&bench, "ex17")?;
    if zombies > 0 {
        return Ok(Err(format!(
            "{zombies} zombies are left 2 s after the probe made its orphans: they were handed to your init \
             (PID 1), which must reap every child, not only the one it started: waitpid(-1, ...)."
        )));
    }
    let stop = bench.pidlab(&["stop", "-t", "2", "ex17"])?.text();
    let logs = bench.logs("ex17")?;
    if !logs.contains("saved state to") {
        return Ok(Err(format!(
            "the probe never received SIGTERM: `pidlab stop -t 2` said: {stop}. SIGTERM was sent to your init, \
             PID 1, which must pass it on; a PID 1 with no handler never even receives it (lesson 04) unless it \
             blocks it and collects it (sigwait/sigtimedwait)."
        )));
    }
    if !stop.contains("(exit code 0)") {
        return Ok(Err(format!(
            "the probe saved its state and exited 0, but the sandbox ended otherwise: `pidlab stop -t 2` said: {stop}"
        )));
    }
    Ok(Ok(format!(
        "your init relayed exit code 3 and death by SIGTERM (143), reaped the probe's orphans, and forwarded \
         SIGTERM: {stop}"
    )))
}

/// Lesson 19: the attendee's own sandbox, `sandbox ROOT COMMAND...`,
/// built with cc, run (as root) on a busybox root, and verified from
/// outside while its workload runs: NSpid (a new PID namespace, the
/// workload PID 1 in it), /proc/PID/root (the root switched), its
/// mountinfo (/proc mounted inside) and the host's (nothing leaked).
pub fn check_19(file: &Path) -> Result<Verdict> {
    if !nix::unistd::geteuid().is_root() {
        return Err(usage("lesson 19's check runs your sandbox, and unshare(CLONE_NEWPID) needs root: sudo pidlab lesson check 19 FILE".into()));
    }
    if file.extension().and_then(|e| e.to_str()) != Some("c") {
        return Err(usage(format!(
            "{}: lesson 19's check builds a C file (.c); the starter is lessons/19-build-a-sandbox/sandbox.c",
            file.display()
        )));
    }
    let bench = Bench::new()?;
    let root = bench.data.path().join("root");
    for dir in ["bin", "proc"] {
        std::fs::create_dir_all(root.join(dir))
            .with_context(|| format!("create {}", root.join(dir).display()))?;
    }
    if std::fs::copy("/bin/busybox", root.join("bin/busybox")).is_err() {
        return Err(usage(
            "lesson 19's check builds its root from /bin/busybox: apt-get install busybox-static".into(),
        ));
    }
    let sandbox = bench.data.path().join("sandbox");
    let args: Vec<&std::ffi::OsStr> =
        vec!["-O2".as_ref(), "-o".as_ref(), sandbox.as_os_str(), file.as_os_str()];
    let built = bench.tool("cc", &args, "apt-get install gcc")?;
    if !built.success() {
        return Ok(Err(format!(
            "cc could not build it (exit code {}):\n{}",
            built.code(),
            indent(&built.text())
        )));
    }
    let running = Background::start(&sandbox, &root)?;
    let Some(workload) = running.find_workload()? else {
        return Ok(Err(format!(
            "no `/bin/busybox sleep` started within 5 s under your sandbox. Its output:\n{}",
            indent(&running.output())
        )));
    };
    let status = std::fs::read_to_string(format!("/proc/{workload}/status")).unwrap_or_default();
    let nspid: Vec<&str> = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    if nspid.len() < 2 {
        return Ok(Err(format!(
            "the workload (host PID {workload}) is in the host's PID namespace only (NSpid: {}). \
             unshare(CLONE_NEWPID) moves only the caller's children: fork after it, and exec in the child \
             (lesson 02).",
            nspid.join(" ")
        )));
    }
    if nspid.last() != Some(&"1") {
        return Ok(Err(format!(
            "the workload is in a new PID namespace but is not its PID 1 (NSpid: {}): exec it in the first child.",
            nspid.join(" ")
        )));
    }
    let seen_root = std::fs::read_link(format!("/proc/{workload}/root")).unwrap_or_default();
    if seen_root != root {
        return Ok(Err(format!(
            "the workload's root is {}, not ROOT ({}): chroot(ROOT) (and chdir(\"/\")) in the child before exec.",
            seen_root.display(),
            root.display()
        )));
    }
    // The namespace the program was started in: its parent shell's (see
    // `Background::start`).
    let started = running.child.id();
    let theirs = std::fs::read_link(format!("/proc/{started}/ns/mnt")).unwrap_or_default();
    if std::fs::read_link(format!("/proc/{workload}/ns/mnt")).unwrap_or_default() == theirs {
        return Ok(Err(
            "the workload shares the mount namespace your program was started in (the host's, outside this \
             check): unshare CLONE_NEWNS too, or its /proc mount is the host's."
                .into(),
        ));
    }
    let mounts = std::fs::read_to_string(format!("/proc/{workload}/mountinfo")).unwrap_or_default();
    let has_proc = mounts.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.get(4) == Some(&"/proc") && l.split(" - ").nth(1).is_some_and(|t| t.starts_with("proc "))
    });
    if !has_proc {
        return Ok(Err(
            "the workload sees no proc file system on /proc: mount(\"proc\", \"/proc\", \"proc\", 0, NULL) in the \
             child, after chroot (a /proc mounted by a process inside the new PID namespace shows that namespace)."
                .into(),
        ));
    }
    let outside = std::fs::read_to_string(format!("/proc/{started}/mountinfo")).unwrap_or_default();
    if outside.contains(&format!(" {} ", root.join("proc").display())) {
        return Ok(Err(format!(
            "the /proc mount leaked out: it appears at {} in the mount namespace your program was started in \
             (on a host with shared mounts, as systemd makes them, that is the host's). Make / private \
             (mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)) in the child before mounting.",
            root.join("proc").display()
        )));
    }
    Ok(Ok(format!(
        "seen from outside: the workload is PID 1 of a new PID namespace (NSpid {}), its root is ROOT, its own \
         /proc is mounted, and nothing leaked out of its mount namespace.",
        nspid.join("/")
    )))
}

fn usage(message: String) -> anyhow::Error {
    crate::exit_code::Exit { code: crate::exit_code::SETUP_FAILED, message }.into()
}

/// The attendee's sandbox running `/bin/busybox sleep 30` in its own
/// process group and a mount namespace of the check's, SIGKILLed (the whole group, then waited for) when
/// dropped. Its output goes to an anonymous file.
struct Background {
    child: std::process::Child,
    output: std::fs::File,
}

impl Background {
    fn start(sandbox: &Path, root: &Path) -> Result<Background> {
        use std::os::unix::process::CommandExt;
        let output = tempfile::tempfile().context("a file for the output")?;
        // The attendee's program runs as root: it starts in a mount
        // namespace of the check's own, whose mounts are shared among
        // themselves but not with the host's (private first, to cut any
        // peer group with the host, then shared again). Whatever it mounts
        // or makes private stays there, and a /proc mount that was not
        // kept from propagating shows up in that namespace: the check
        // looks there, and the host's mount table is never touched. The
        // shell stays, as the program's parent, so that namespace can
        // still be read once the program has left it.
        let child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg("mount --make-rshared / && \"$0\" \"$@\"")
            .arg(sandbox)
            .arg(root)
            .args(["/bin/busybox", "sleep", "30"])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?)
            .spawn()
            .with_context(|| format!("start {}", sandbox.display()))?;
        Ok(Background { child, output })
    }

    /// The host PID of the `busybox sleep`, the sandbox itself or one of
    /// its descendants, within 5 s; `None` if none appeared (or the
    /// sandbox exited).
    fn find_workload(&self) -> Result<Option<i32>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut todo = vec![self.child.id() as i32];
            while let Some(pid) = todo.pop() {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "busybox" {
                    return Ok(Some(pid));
                }
                let children =
                    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
                todo.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let mut file = &self.output;
        let _ = file.rewind();
        let _ = file.read_to_string(&mut text);
        if text.trim().is_empty() { "(nothing)".into() } else { text }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
