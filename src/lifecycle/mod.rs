//! The verbs that act on a sandbox from outside, by name: `ps`, `inspect`,
//! `stop`, `kill`, `logs`, `rm`. They find the sandbox in the state
//! directory (`record.rs`) and act on its PID 1 through a pidfd, which keeps
//! pointing at the same process even if its PID number is recycled.
//!
//! `stop` is `docker stop`: the stop signal to PID 1, a grace period, then
//! SIGKILL. Sent from the host, the stop signal obeys the PID 1 rule
//! (dropped unless PID 1 has a handler), SIGKILL always gets through, and
//! when PID 1 dies the kernel kills every other process of the namespace.

pub mod exec;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::cli::{Format, InspectArgs, KillArgs, LogsArgs, PsArgs, RmArgs, StopArgs};
use crate::duration::Seconds;
use crate::exit_code::{Exit, SETUP_FAILED};
use crate::logfile;
use crate::procfs;
use crate::record::{self, Process, Sandbox, Status, open_pid1};
use crate::signals;
use crate::sys;

/// A refusal with exit code 125 and nothing changed.
fn refuse(message: String) -> anyhow::Error {
    Exit { code: SETUP_FAILED, message }.into()
}

/// Wait until `fd` is readable (a pidfd: the process exited), at most `limit`
/// (`None`: forever). True if it became readable.
fn wait_readable(fd: &OwnedFd, limit: Option<Duration>) -> bool {
    let deadline = limit.map(|l| Instant::now() + l);
    loop {
        let timeout = sys::timeout_until(deadline);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) => return false,
            Ok(_) => return true,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return false,
        }
    }
}

/// Wait (bounded) for the supervisor to write down how PID 1 ended and exit.
fn await_supervisor(record: &Value) {
    let supervisor = Process::from_record(&record["supervisor"]);
    if let Ok(fd) = sys::pidfd_open(nix::unistd::Pid::from_raw(supervisor.pid))
        && supervisor.alive()
    {
        wait_readable(&fd, Some(Duration::from_secs(5)));
    }
}

pub fn stop(args: StopArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    if let Status::Exited { code } = sandbox.status() {
        // docker stop on a stopped container succeeds and changes nothing.
        say!("pidlab: {} has already exited ({code}); nothing to stop", sandbox.name);
        return Ok(0);
    }
    let (record, pid1, pidfd) = open_pid1(&sandbox, "stop")?;
    let sig = match &args.signal {
        Some(text) => signals::parse(text)?,
        None => record["stop_signal"].as_str().map(signals::parse).transpose()?.unwrap_or(Signal::SIGTERM),
    };
    let grace = match args.timeout {
        Some(timeout) => timeout.limit(),
        None => match record["stop_timeout"].as_f64() {
            Some(t) => Some(Seconds::from_f64(t).map(Seconds::duration).map_err(|why| {
                refuse(format!(
                    "{} records a stop timeout of {t} s, which is {why}; give one with -t",
                    sandbox.name
                ))
            })?),
            None if record["stop_timeout"].is_null() && record.get("stop_timeout").is_some() => None,
            None => Some(Duration::from_secs(10)),
        },
    };

    sandbox.set_stopping(true);
    let sent = Instant::now();
    sys::pidfd_send_signal(pidfd.as_fd(), sig).with_context(|| format!("send {sig} to PID 1"))?;
    let graceful = wait_readable(&pidfd, grace);
    let took = sent.elapsed().as_secs_f64();
    if !graceful {
        sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL).context("send SIGKILL to PID 1")?;
        if !wait_readable(&pidfd, Some(Duration::from_secs(10))) {
            bail!("PID 1 (host PID {}) survived SIGKILL for 10 s (stopped in the kernel?)", pid1.pid);
        }
    }
    await_supervisor(&record);
    sandbox.set_stopping(false);
    let how = sandbox.read("exit.json").and_then(|e| e["how"].as_str().map(str::to_string));
    let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
    if graceful {
        println!("{}: exited {took:.3} s after {sig}{how}", sandbox.name);
    } else {
        let waited = grace.map_or(0.0, |g| g.as_secs_f64());
        println!("{}: did not exit within {waited} s of {sig} — sent SIGKILL{how}", sandbox.name);
    }
    Ok(0)
}

pub fn kill(args: KillArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let sig = signals::parse(&args.signal)?;
    let (_, _, pidfd) = open_pid1(&sandbox, "kill")?;
    sys::pidfd_send_signal(pidfd.as_fd(), sig).with_context(|| format!("send {sig} to PID 1"))?;
    println!("{}", sandbox.name);
    Ok(0)
}

/// `logs`: the log's two files in order (`logfile.rs`), copied in chunks,
/// so memory stays small whatever the log holds.
pub fn logs(args: LogsArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let follow = args.follow || args.until.is_some();
    let deadline = Instant::now() + args.timeout.duration();
    let record = sandbox.record().unwrap_or(Value::Null);
    let supervisor = Process::from_record(&record["supervisor"]);
    let pidfd =
        sys::pidfd_open(nix::unistd::Pid::from_raw(supervisor.pid)).ok().filter(|_| supervisor.alive());
    // The exit is recorded as soon as PID 1 has exited, when the last of its
    // output may still be in the pipe to `pidlab:log`; the shim exits once
    // that is written. Wait for it (bounded), so that `logs` of an exited
    // sandbox prints all of its output.
    if let (false, Status::Exited { .. }, Some(fd)) = (follow, sandbox.status(), &pidfd) {
        wait_readable(fd, Some(Duration::from_secs(10)));
    }
    let path = sandbox.log_path();
    let Some(mut log) =
        logfile::Reader::open(&path, follow).with_context(|| format!("open {}", path.display()))?
    else {
        bail!("{} has no log: only detached sandboxes (run -d) keep one", sandbox.name);
    };
    let mut out = std::io::stdout().lock();
    let mut until = args.until.as_deref().map(logfile::Until::new);
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        // The supervisor's exit is checked before reading, so that the last
        // read sees everything it wrote.
        let finished = pidfd.as_ref().is_none_or(|fd| wait_readable(fd, Some(Duration::ZERO)));
        loop {
            let n = log.read(&mut chunk).with_context(|| format!("read {}", path.display()))?;
            if n == 0 {
                break;
            }
            if let Some(end) = until.as_mut().and_then(|u| u.line_end(&chunk[..n])) {
                out.write_all(&chunk[..end])?;
                out.flush()?;
                return Ok(0);
            }
            out.write_all(&chunk[..n])?;
        }
        out.flush()?;
        if !follow || finished {
            return match (&args.until, until) {
                // TEXT in a last line that never got its newline.
                (Some(_), Some(until)) if until.found => Ok(0),
                (Some(text), _) => {
                    Err(Exit { code: 1, message: format!("{text:?} never appeared: the sandbox has ended") }
                        .into())
                }
                (None, _) => Ok(0),
            };
        }
        if args.until.is_some() && Instant::now() >= deadline {
            let text = args.until.as_deref().unwrap_or("");
            return Err(Exit {
                code: 1,
                message: format!("{text:?} did not appear within {} s", args.timeout),
            }
            .into());
        }
        // New output is looked for every 20 ms; the supervisor's exit ends
        // the wait at once.
        if let Some(fd) = &pidfd {
            wait_readable(fd, Some(Duration::from_millis(20)));
        }
    }
}

pub fn rm(args: RmArgs) -> Result<i32> {
    for name in &args.names {
        rm_one(name, args.force)?;
    }
    Ok(0)
}

fn rm_one(name: &str, force: bool) -> Result<()> {
    let sandbox = Sandbox::open(name)?;
    if sandbox.status().is_running() {
        if !force {
            return Err(refuse(format!(
                "{} is running; stop it first (`pidlab stop {}`) or use `pidlab rm -f`",
                sandbox.name, sandbox.name
            )));
        }
        let (record, _, pidfd) = open_pid1(&sandbox, "remove")?;
        sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL).context("send SIGKILL to PID 1")?;
        wait_readable(&pidfd, Some(Duration::from_secs(10)));
        await_supervisor(&record);
    }
    if sandbox.dir.exists() {
        sandbox.remove()?;
    }
    println!("{}", sandbox.name);
    Ok(())
}

pub fn ps(args: PsArgs) -> Result<i32> {
    let mut rows = Vec::new();
    for sandbox in Sandbox::all()? {
        let status = sandbox.status();
        if !args.all && !status.is_running() {
            continue;
        }
        let record = sandbox.record().unwrap_or(Value::Null);
        let pid1 = Process::from_record(&record["pid1"]);
        let age = record::now() - record["created"].as_f64().unwrap_or(record::now());
        rows.push(json!({
            "name": sandbox.name,
            "state": status.describe(),
            "pid1_host_pid": pid1.pid,
            "pid1": if status.is_running() { cmdline(pid1.pid) } else { Value::Null },
            "command": record["argv"],
            "nest": record["nest"],
            "age_seconds": (age * 10.0).round() / 10.0,
        }));
    }
    if args.format == Format::Json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(0);
    }
    println!("{:<24} {:<16} {:>8} {:>4} {:>8}  PID 1", "NAME", "STATE", "HOST PID", "NEST", "AGE");
    for row in rows {
        let pid1 = row["pid1"].as_str().map(str::to_string).unwrap_or_else(|| join(&row["command"]));
        println!(
            "{:<24} {:<16} {:>8} {:>4} {:>7.0}s  {}",
            row["name"].as_str().unwrap_or(""),
            row["state"].as_str().unwrap_or(""),
            row["pid1_host_pid"],
            row["nest"],
            row["age_seconds"].as_f64().unwrap_or(0.0),
            pid1
        );
    }
    Ok(0)
}

fn join(argv: &Value) -> String {
    argv.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The command line of a host process.
fn cmdline(pid: i32) -> Value {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(raw) => Value::String(
            raw.split(|b| *b == 0)
                .filter(|w| !w.is_empty())
                .map(|w| String::from_utf8_lossy(w).into_owned())
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Err(_) => Value::Null,
    }
}

pub fn inspect(args: InspectArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let (_, pid1, _) = open_pid1(&sandbox, "inspect")?;
    let processes: Vec<Value> = procfs::members(pid1.pid).into_iter().filter_map(describe_process).collect();
    if args.format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "name": sandbox.name, "processes": processes }))?
        );
        return Ok(0);
    }
    println!("{}: {} process(es). NSpid lists a PID per level, host first.", sandbox.name, processes.len());
    for p in &processes {
        println!(
            "  {:<14} {} {:<5} {}",
            procfs::pids_text_of(&p["nspid"]),
            p["state"].as_str().unwrap_or("?"),
            p["comm"].as_str().unwrap_or("?"),
            p["cmdline"].as_str().unwrap_or("")
        );
        for (key, label) in
            [("caught", "caught"), ("ignored", "ignored"), ("blocked", "blocked"), ("capabilities", "caps")]
        {
            let names = p[key].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>());
            if let Some(names) = names.filter(|n| !n.is_empty()) {
                println!("      {label:<8} {}", names.join(" "));
            }
        }
        // The system-call filter (Seccomp: in /proc), shown where there is one.
        if let Some(filter) = p["seccomp"].as_str().filter(|s| *s != "none") {
            println!("      seccomp  {filter}");
        }
    }
    Ok(0)
}

/// One process as `inspect` shows it, from the host's /proc/PID/status.
fn describe_process(pid: i32) -> Option<Value> {
    let status = procfs::Status::of(pid)?;
    Some(json!({
        "host_pid": pid,
        "nspid": status.nspid,
        "state": status.state.to_string(),
        "comm": status.name,
        "cmdline": cmdline(pid),
        "caught": signals::names_in(status.caught),
        "ignored": signals::names_in(status.ignored),
        "capabilities": procfs::capabilities_in(status.cap_effective),
        "seccomp": match status.seccomp {
            0 => "none".to_string(),
            1 => "strict".to_string(),
            _ => format!("filter ({} installed)", status.seccomp_filters),
        },
        // Signals a process waits for in sigwait are hidden from SigBlk
        // while it waits; they are blocked all the same.
        "blocked": signals::names_in(status.blocked | signals::waited_for(pid)),
    }))
}
