//! The verbs that act on a sandbox from outside, by name: `ps`, `inspect`,
//! `stop`, `kill`, `wait`, `restart`, `logs`, `rm`, as docker has them:
//! `stop`, `kill`, `wait`, `restart` and `rm` take several names, report
//! each, and go on past one that fails (the exit code is then the first
//! failure's). They find the sandbox in the state directory (`record.rs`)
//! and act on its PID 1 through a pidfd, which keeps pointing at the same
//! process even if its PID number is recycled.
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
use clap::Parser;
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::cli::{
    Cli, Command, Filter, Format, InspectArgs, KillArgs, LogsArgs, PsArgs, RestartArgs, RmArgs, StopArgs,
    WaitArgs,
};
use crate::clock;
use crate::duration::Seconds;
use crate::exit_code::{self, Exit, SETUP_FAILED};
use crate::logfile;
use crate::output;
use crate::procfs;
use crate::record::{self, Record, Sandbox, Status, open_pid1};
use crate::runtime::capabilities::DOCKER_DEFAULT;
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
fn await_supervisor(record: Option<&Record>) {
    let Some(supervisor) = record.map(|r| r.supervisor) else { return };
    if let Ok(fd) = sys::pidfd_open(nix::unistd::Pid::from_raw(supervisor.pid))
        && supervisor.alive()
    {
        wait_readable(&fd, Some(Duration::from_secs(5)));
    }
}

/// The signal a user named (`stop -s`, `kill -s`): one helper, so that
/// what it accepts is decided in one place (`signals.rs`).
/// By number, and named back (`SIGRTMIN+3`), since Docker takes
/// real-time signals too.
fn signal_named(text: &str) -> Result<(i32, String)> {
    let signo = signals::parse_number(text)?;
    Ok((signo, signals::name_of(signo)))
}

/// What every JSON answer says about a sandbox, with the same names
/// everywhere (README, "JSON output").
fn sandbox_fields(sandbox: &Sandbox) -> Value {
    let status = sandbox.status();
    let pid1 = sandbox.record().map(|r| r.pid1).unwrap_or_default();
    let ended = sandbox.ended();
    json!({
        "name": sandbox.name,
        "state": status.word(),
        "status": status.describe(),
        "exit_code": ended.as_ref().map(|e| e.code),
        "signal": ended.as_ref().and_then(|e| e.signal.clone()),
        "pid1": if pid1.pid > 0 { json!({ "host_pid": pid1.pid, "start": pid1.start }) } else { Value::Null },
    })
}

/// What one verb did to one sandbox: a line for the terminal (if any) and
/// its JSON object.
struct Done {
    line: Option<String>,
    json: Value,
}

/// Do `verb` to each name in turn, whatever happened to the one before, as
/// docker does; report each (JSON: one document, an array with an object a
/// name, `ok` false and the `error` for a failure). The exit code is the
/// first failure's, or 0.
fn each(names: &[String], format: Format, mut verb: impl FnMut(&str) -> Result<Done>) -> Result<i32> {
    let mut code = 0;
    let mut results = Vec::new();
    for name in names {
        match verb(name) {
            Ok(done) => {
                if let (Format::Table, Some(line)) = (format, &done.line) {
                    println!("{line}");
                }
                let mut json = done.json;
                json["ok"] = Value::Bool(true);
                results.push(json);
            }
            Err(err) => {
                say!("pidlab: {err:#}");
                if code == 0 {
                    code = exit_code::of_error(&err);
                }
                results.push(json!({ "name": name, "ok": false, "error": format!("{err:#}") }));
            }
        }
    }
    if format == Format::Json {
        output::document(&Value::Array(results));
    }
    Ok(code)
}

pub fn stop(args: StopArgs) -> Result<i32> {
    each(&args.names, args.format, |name| stop_one(name, &args))
}

fn stop_one(name: &str, args: &StopArgs) -> Result<Done> {
    let sandbox = Sandbox::open(name)?;
    if let Status::Exited { code } = sandbox.status() {
        // docker stop on a stopped container succeeds and changes nothing.
        say!("pidlab: {} has already exited ({code}); nothing to stop", sandbox.name);
        return Ok(Done { line: None, json: sandbox_fields(&sandbox) });
    }
    let (record, pid1, pidfd) = open_pid1(&sandbox, "stop")?;
    let sig = match &args.signal {
        Some(text) => signal_named(text)?,
        None => signal_named(&record.stop_signal)?,
    };
    let (signo, sig) = sig;
    let grace = match args.timeout {
        Some(timeout) => timeout.limit(),
        // None in the record: -1, wait forever.
        None => match record.stop_timeout {
            Some(t) => Some(Seconds::from_f64(t).map(Seconds::duration).map_err(|why| {
                refuse(format!(
                    "{} records a stop timeout of {t} s, which is {why}; give one with -t",
                    sandbox.name
                ))
            })?),
            None => None,
        },
    };

    sandbox.set_stopping(true);
    let sent = Instant::now();
    sys::pidfd_send_signal_number(pidfd.as_fd(), signo).with_context(|| format!("send {sig} to PID 1"))?;
    let graceful = wait_readable(&pidfd, grace);
    let took = sent.elapsed().as_secs_f64();
    if !graceful {
        sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL).context("send SIGKILL to PID 1")?;
        if !wait_readable(&pidfd, Some(Duration::from_secs(10))) {
            bail!("PID 1 (host PID {}) survived SIGKILL for 10 s (stopped in the kernel?)", pid1.pid);
        }
    }
    await_supervisor(Some(&record));
    sandbox.set_stopping(false);
    let how = sandbox.read("exit.json").and_then(|e| e["how"].as_str().map(str::to_string));
    let how = how.map(|h| format!(" ({h})")).unwrap_or_default();
    let line = if graceful {
        format!("{}: exited {took:.3} s after {sig}{how}", sandbox.name)
    } else {
        let waited = grace.map_or(0.0, |g| g.as_secs_f64());
        format!("{}: did not exit within {waited} s of {sig} — sent SIGKILL{how}", sandbox.name)
    };
    let mut json = sandbox_fields(&sandbox);
    json["sent"] = if graceful { json!([sig]) } else { json!([sig, "SIGKILL"]) };
    json["seconds"] = json!((took * 1000.0).round() / 1000.0);
    Ok(Done { line: Some(line), json })
}

pub fn kill(args: KillArgs) -> Result<i32> {
    // A signal name that is wrong for one name is wrong for all: refuse it
    // before signalling any.
    let (signo, sig) = signal_named(&args.signal)?;
    each(&args.names, args.format, |name| {
        let sandbox = Sandbox::open(name)?;
        let (_, _, pidfd) = open_pid1(&sandbox, "kill")?;
        sys::pidfd_send_signal_number(pidfd.as_fd(), signo)
            .with_context(|| format!("send {sig} to PID 1"))?;
        Ok(Done { line: Some(sandbox.name.clone()), json: json!({ "name": sandbox.name, "sent": sig }) })
    })
}

/// `wait`: block until each sandbox's PID 1 has exited (on a pidfd, no
/// polling), then print its exit code. Exits with the last one's code, as
/// a shell's `wait` does.
pub fn wait(args: WaitArgs) -> Result<i32> {
    let mut last = 0;
    let code = each(&args.names, args.format, |name| {
        let sandbox = Sandbox::open(name)?;
        let ended = wait_one(&sandbox)?;
        last = ended;
        Ok(Done { line: Some(ended.to_string()), json: sandbox_fields(&sandbox) })
    })?;
    Ok(if code != 0 { code } else { last })
}

fn wait_one(sandbox: &Sandbox) -> Result<i32> {
    if let Some(ended) = sandbox.ended() {
        return Ok(ended.code);
    }
    let record = sandbox.record();
    // PID 1 can exit between this look and the open (a `printf` run -d
    // does at once): then there is nothing left to wait for but its
    // supervisor, and the refusal open_pid1 makes is no error here.
    if sandbox.status().is_running()
        && let Ok((_, _, pidfd)) = open_pid1(sandbox, "wait for")
    {
        wait_readable(&pidfd, None);
    }
    // PID 1 has exited: its supervisor writes down how, then exits.
    await_supervisor(record.as_ref());
    match sandbox.ended() {
        Some(ended) => Ok(ended.code),
        // A foreground `run --name` leaves no state when it ends (README):
        // its exit code is that command's own.
        None if record.as_ref().is_some_and(|r| !r.detached) => Err(refuse(format!(
            "{} has ended; it was a foreground run, which removes its record as it ends: its exit code is \
             that of its `pidlab run` (for one `pidlab wait` can report, start it with -d)",
            sandbox.name
        ))),
        None => Err(refuse(format!(
            "{} ended, but nobody recorded how (it is {}): its supervisor is gone, or, for a foreground \
             run, took its record with it; `pidlab rm {}` cleans it up",
            sandbox.name,
            sandbox.status().describe(),
            sandbox.name
        ))),
    }
}

/// `restart`: `stop` if it runs, then the command line that started it
/// (recorded when it claimed its name), run again from the same directory.
/// The old record and log go first, since the name must be free again; a
/// `-e KEY` without a value takes the value of the restarting shell.
pub fn restart(args: RestartArgs) -> Result<i32> {
    each(&args.names, args.format, |name| {
        let sandbox = Sandbox::open(name)?;
        let owner = sandbox.read("owner").unwrap_or(Value::Null);
        if sandbox.record().is_none_or(|r| !r.detached) {
            return Err(refuse(format!(
                "cannot restart {name}: only detached sandboxes (run -d) can be restarted; run a \
                 foreground one again yourself"
            )));
        }
        let (Some(command_line), Some(cwd)) = (owner["command_line"].as_array(), owner["cwd"].as_str())
        else {
            return Err(refuse(format!(
                "cannot restart {name}: its record does not say how it was started (an older pidlab wrote \
                 it); `pidlab rm -f {name}` and run it again"
            )));
        };
        let mut command_line: Vec<&str> = command_line.iter().filter_map(Value::as_str).collect();
        // A generated name was not on the command line: keep the one it got.
        let named = command_line
            .iter()
            .take_while(|a| **a != "--")
            .any(|a| *a == "--name" || a.starts_with("--name="));
        if !named && command_line.get(1) == Some(&"run") {
            command_line.splice(2..2, ["--name", name]);
        }
        if sandbox.status().is_running() {
            let stop = StopArgs { names: vec![], timeout: args.timeout, signal: None, format: Format::Table };
            stop_one(name, &stop)?;
        }
        if sandbox.dir.exists() {
            sandbox.remove()?;
        }
        let pidlab = std::env::current_exe().context("find the pidlab binary")?;
        let out = std::process::Command::new(&pidlab)
            .args(command_line.iter().skip(1))
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("run {}", command_line.join(" ")))?;
        std::io::stderr().write_all(&out.stderr)?;
        if !out.status.success() {
            return Err(Exit {
                code: out.status.code().unwrap_or(SETUP_FAILED),
                message: format!("{name} was removed, but did not start again: `{}`", command_line.join(" ")),
            }
            .into());
        }
        let sandbox = Sandbox::open(name)?;
        Ok(Done { line: Some(name.to_string()), json: sandbox_fields(&sandbox) })
    })
}

/// `logs`: the log's two files in order (`logfile.rs`), copied in chunks,
/// so memory stays small whatever the log holds (`-n N` reads it twice:
/// once to count the lines, once to print the last N).
pub fn logs(args: LogsArgs) -> Result<i32> {
    // --since and --until as docker reads them; a duration counts back
    // from this moment.
    let now = clock::now_ns();
    let bound = |flag: &str, text: &Option<String>| -> Result<Option<i64>> {
        let Some(text) = text else { return Ok(None) };
        clock::parse_time(text, now).map(Some).map_err(|why| {
            let hint = match flag {
                "--until" => format!(
                    " (to wait until a line containing a text appears, use `pidlab logs --wait-for TEXT {}`)",
                    args.name
                ),
                _ => String::new(),
            };
            refuse(format!("logs {flag}: {why}{hint}"))
        })
    };
    let window = Window { since: bound("--since", &args.since)?, until: bound("--until", &args.until)? };
    let sandbox = Sandbox::open(&args.name)?;
    let follow = (args.follow || args.wait_for.is_some()) && window.until.is_none_or(|until| until > now);
    let deadline = Instant::now() + args.timeout.duration();
    let supervisor = sandbox.record().map(|r| r.supervisor).unwrap_or_default();
    let pidfd =
        sys::pidfd_open(nix::unistd::Pid::from_raw(supervisor.pid)).ok().filter(|_| supervisor.alive());
    // The exit is recorded as soon as PID 1 has exited, when the last of its
    // output may still be in the pipes to `pidlab:log`; the shim exits once
    // that is written. Wait for it (bounded), so that `logs` of an exited
    // sandbox prints all of its output.
    if let (false, Status::Exited { .. }, Some(fd)) = (follow, sandbox.status(), &pidfd) {
        wait_readable(fd, Some(Duration::from_secs(10)));
    }
    let path = sandbox.log_path();
    let open = || logfile::Reader::open(&path, follow).with_context(|| format!("open {}", path.display()));
    let Some(log) = open()? else {
        bail!("{} has no log: only detached sandboxes (run -d) keep one", sandbox.name);
    };
    let mut log = logfile::Records::new(log);
    // -n N: skip all but the last N lines of the window (a last line
    // without its newline counts as one).
    let mut skip = 0;
    if let Some(tail) = args.tail {
        let log = logfile::Reader::open(&path, false)?.context("the log vanished")?;
        let lines = count_lines(&mut logfile::Records::new(log), &window)
            .with_context(|| format!("read {}", path.display()))?;
        skip = lines.saturating_sub(tail);
    }
    let json = args.format == Format::Json;
    let mut out = Output::new(&sandbox.name, json, args.timestamps);
    let mut until =
        args.wait_for.as_deref().map(|text| [logfile::Until::new(text), logfile::Until::new(text)]);
    loop {
        // The supervisor's exit is checked before reading, so that the last
        // read sees everything it wrote.
        let finished = pidfd.as_ref().is_none_or(|fd| wait_readable(fd, Some(Duration::ZERO)));
        while let Some(record) = log.next_record().with_context(|| format!("read {}", path.display()))? {
            if !window.holds(record.time) {
                continue;
            }
            if skip > 0 {
                skip -= u64::from(record.ends_line);
                continue;
            }
            out.write(&record)?;
            if let Some(until) = until.as_mut()
                && until[record.stream.index()].feed(&record.payload, record.ends_line)
            {
                out.flush()?;
                return Ok(0);
            }
        }
        out.flush()?;
        let past_until = window.until.is_some_and(|until| clock::now_ns() > until);
        if !follow || finished || past_until {
            return match (&args.wait_for, until) {
                // TEXT in a last line that never got its newline.
                (Some(_), Some(until)) if until.iter().any(|u| u.found) => Ok(0),
                (Some(text), _) => {
                    let why =
                        if past_until { "the --until time has passed" } else { "the sandbox has ended" };
                    Err(Exit { code: 1, message: format!("{text:?} never appeared: {why}") }.into())
                }
                (None, _) => Ok(0),
            };
        }
        if args.wait_for.is_some() && Instant::now() >= deadline {
            let text = args.wait_for.as_deref().unwrap_or("");
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

/// `logs --since`/`--until`: the records read in that time (nanoseconds
/// since the epoch; `--until` excluded, as docker).
struct Window {
    since: Option<i64>,
    until: Option<i64>,
}

impl Window {
    fn holds(&self, time: i64) -> bool {
        self.since.is_none_or(|since| time >= since) && self.until.is_none_or(|until| time < until)
    }
}

/// Where `logs` writes: each stream to ours, as `docker logs` does (the
/// workload's stderr to our stderr), a line prefixed with its time with
/// `-t`; or (`--format json`) one object per line, `{"name", "stream",
/// "time", "line"}`, a stream of them. A JSON line waits for its newline,
/// up to 64 KiB; a longer one is cut into pieces.
struct Output {
    name: String,
    json: bool,
    timestamps: bool,
    /// Per stream: the next byte begins a line.
    at_line_start: [bool; 2],
    /// Per stream (JSON): the line so far, and the time of its first piece.
    pending: [(Vec<u8>, i64); 2],
}

impl Output {
    fn new(name: &str, json: bool, timestamps: bool) -> Output {
        Output {
            name: name.to_string(),
            json,
            timestamps,
            at_line_start: [true; 2],
            pending: [(Vec::new(), 0), (Vec::new(), 0)],
        }
    }

    fn write(&mut self, record: &logfile::Record) -> std::io::Result<()> {
        let s = record.stream.index();
        if self.json {
            let (line, time) = &mut self.pending[s];
            if line.is_empty() {
                *time = record.time;
            }
            line.extend_from_slice(&record.payload);
            if record.ends_line || line.len() >= 64 << 10 {
                self.emit(record.stream);
            }
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(record.payload.len() + 32);
        if self.timestamps && self.at_line_start[s] {
            bytes.extend_from_slice(clock::rfc3339(record.time).as_bytes());
            bytes.push(b' ');
        }
        bytes.extend_from_slice(&record.payload);
        if record.ends_line {
            bytes.push(b'\n');
        }
        self.at_line_start[s] = record.ends_line;
        match record.stream {
            logfile::Stream::Stdout => std::io::stdout().write_all(&bytes),
            logfile::Stream::Stderr => std::io::stderr().write_all(&bytes),
        }
    }

    /// One JSON object for the line `stream` has pending.
    fn emit(&mut self, stream: logfile::Stream) {
        let (line, time) = &mut self.pending[stream.index()];
        output::line(&json!({
            "name": self.name,
            "stream": stream.name(),
            "time": clock::rfc3339(*time),
            "line": String::from_utf8_lossy(line),
        }));
        line.clear();
    }

    /// Hand what was written to the terminal or pipe now (a JSON line still
    /// waiting for its newline is written when `Output` is dropped).
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()?;
        std::io::stdout().flush()
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        for stream in [logfile::Stream::Stdout, logfile::Stream::Stderr] {
            if !self.pending[stream.index()].0.is_empty() {
                self.emit(stream);
            }
        }
    }
}

/// The lines in the log's window now (a last line without a newline counts).
fn count_lines(log: &mut logfile::Records, window: &Window) -> std::io::Result<u64> {
    let (mut lines, mut open) = (0u64, false);
    while let Some(record) = log.next_record()? {
        if window.holds(record.time) {
            lines += u64::from(record.ends_line);
            open = !record.ends_line;
        }
    }
    Ok(lines + u64::from(open))
}

pub fn rm(args: RmArgs) -> Result<i32> {
    let names = match args.all {
        true => Sandbox::all()?.into_iter().map(|sandbox| sandbox.name).collect(),
        false => args.names,
    };
    each(&names, args.format, |name| {
        rm_one(name, args.force)?;
        Ok(Done { line: Some(name.to_string()), json: json!({ "name": name }) })
    })
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
        await_supervisor(Some(&record));
    }
    if sandbox.dir.exists() {
        sandbox.remove()?;
    }
    Ok(())
}

fn matches(sandbox: &Sandbox, status: Status, filters: &[Filter]) -> bool {
    filters.iter().all(|filter| match filter {
        Filter::Name(text) => sandbox.name.contains(text.as_str()),
        Filter::Status(word) => status.word() == word,
    })
}

pub fn ps(args: PsArgs) -> Result<i32> {
    let mut rows = Vec::new();
    for sandbox in Sandbox::all()? {
        let status = sandbox.status();
        // A filter on the state shows what it names, running or not (docker's -f status=exited).
        let by_state = args.filter.iter().any(|f| matches!(f, Filter::Status(_)));
        if (!args.all && !by_state && !status.is_running()) || !matches(&sandbox, status, &args.filter) {
            continue;
        }
        let record = sandbox.record();
        let pid1 = record.as_ref().map(|r| r.pid1).unwrap_or_default();
        let age = record.as_ref().map_or(0.0, |r| record::now() - r.created);
        let mut row = sandbox_fields(&sandbox);
        row["command"] = record.as_ref().map_or(Value::Null, |r| json!(r.argv));
        row["workload"] = if status.is_running() { workload(pid1.pid) } else { Value::Null };
        row["nest"] = record.as_ref().map_or(Value::Null, |r| json!(r.nest));
        row["age_seconds"] = json!((age * 10.0).round() / 10.0);
        rows.push(row);
    }
    if args.quiet {
        for row in &rows {
            println!("{}", row["name"].as_str().unwrap_or(""));
        }
        return Ok(0);
    }
    if args.format == Format::Json {
        output::document(&Value::Array(rows));
        return Ok(0);
    }
    let mut cells =
        vec![["NAME", "STATE", "HOST PID", "NEST", "AGE", "COMMAND"].map(str::to_string).to_vec()];
    for row in &rows {
        let command =
            row["workload"]["cmdline"].as_str().map(str::to_string).unwrap_or_else(|| join(&row["command"]));
        cells.push(vec![
            row["name"].as_str().unwrap_or("").to_string(),
            row["status"].as_str().unwrap_or("").to_string(),
            row["pid1"]["host_pid"].as_i64().map_or("-".to_string(), |p| p.to_string()),
            row["nest"].as_u64().map_or("-".to_string(), |n| n.to_string()),
            format!("{:.0}s", row["age_seconds"].as_f64().unwrap_or(0.0)),
            command,
        ]);
    }
    print!("{}", output::table(&cells, &[2, 3, 4]));
    Ok(0)
}

/// The workload's PID 1: with `--nest N`, PID 1 of the innermost namespace
/// (the outer ones are pidlab's own `pidlab:nest-K`), as a host PID and its
/// command line.
fn workload(pid1: i32) -> Value {
    match procfs::innermost_init(pid1) {
        Some((pid, status)) => {
            json!({ "host_pid": pid, "level": status.nspid.len() - 1, "cmdline": cmdline(pid) })
        }
        None => Value::Null,
    }
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

/// A capability set in a few words: "Docker default (14)", "all (41)",
/// "default − NET_RAW", "default + SYS_ADMIN", "all − SYS_RESOURCE",
/// "none"; whichever is shortest, or the names when every way is long. The
/// full list is for JSON.
fn condensed(names: &[String]) -> String {
    if names.is_empty() {
        return "none".into();
    }
    let all: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
    let default: Vec<String> = DOCKER_DEFAULT.iter().map(|c| c.to_string()).collect();
    let short = |c: &String| c.trim_start_matches("CAP_").to_string();
    let missing = |from: &[String]| from.iter().filter(|c| !names.contains(c)).map(short).collect::<Vec<_>>();
    let added: Vec<String> = names.iter().filter(|c| !default.contains(c)).map(short).collect();
    let mut from_default = vec!["default".to_string()];
    from_default.extend(missing(&default).iter().map(|c| format!("− {c}")));
    from_default.extend(added.iter().map(|c| format!("+ {c}")));
    let mut from_all = vec!["all".to_string()];
    from_all.extend(missing(&all).iter().map(|c| format!("− {c}")));
    let shortest = if from_all.len() < from_default.len() { from_all } else { from_default };
    match shortest.len() {
        1 if shortest[0] == "all" => format!("all ({})", names.len()),
        1 => format!("Docker default ({})", default.len()),
        2..=6 => shortest.join(" "),
        _ => names.iter().map(short).collect::<Vec<_>>().join(" "),
    }
}

pub fn inspect(args: InspectArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let status = sandbox.status();
    let record = sandbox.record();
    // A running sandbox shows its processes; one that has ended shows how.
    let mut shared_with = Vec::new();
    let processes: Vec<Value> = if status.is_running() {
        let (_, pid1, _) = open_pid1(&sandbox, "inspect")?;
        shared_with = sharing_pid_namespace(&sandbox, pid1.pid);
        procfs::members(pid1.pid).into_iter().filter_map(describe_process).collect()
    } else {
        Vec::new()
    };
    let ended = sandbox.ended();
    let mut doc = sandbox_fields(&sandbox);
    doc["started"] = record.as_ref().map_or(Value::Null, |r| json!(r.created));
    doc["finished"] = json!(ended.as_ref().and_then(|e| e.at));
    doc["plan"] = record.as_ref().map_or(Value::Null, plan_of);
    doc["plan"]["rootfs"] = rootfs_of(&sandbox);
    doc["processes"] = Value::Array(processes.clone());
    doc["pid_namespace_shared_with"] = json!(shared_with);
    if args.format == Format::Json {
        output::document(&doc);
        return Ok(0);
    }
    print!("{}", render_inspect(&doc));
    Ok(0)
}

/// The other running sandboxes whose workload is in the same PID
/// namespace (one joined the other's with `--pid container:NAME`): the
/// inode of /proc/PID/ns/pid names a namespace.
fn sharing_pid_namespace(sandbox: &Sandbox, pid1: i32) -> Vec<String> {
    let Some(ours) = procfs::pid_namespace(pid1) else { return Vec::new() };
    let mut names: Vec<String> = Sandbox::all()
        .unwrap_or_default()
        .into_iter()
        .filter(|other| other.name != sandbox.name && other.status().is_running())
        .filter(|other| {
            other
                .record()
                .map(|r| r.pid1)
                .is_some_and(|p| p.alive() && procfs::pid_namespace(p.pid) == Some(ours))
        })
        .map(|other| other.name)
        .collect();
    names.sort();
    names
}

/// What the sandbox was started with, from its record.
fn plan_of(record: &Record) -> Value {
    json!({
        "argv": record.argv,
        "pid1_role": record.pid1_role,
        "nest": record.nest,
        "pid_namespace": record.pid_namespace,
        "stop_signal": record.stop_signal,
        "stop_timeout": record.stop_timeout,
        "capabilities": record.capabilities,
        "seccomp": record.seccomp,
        "root": if record.pivot_root { "pivot_root" } else { "chroot" },
        "rootless": record.rootless,
        "user": { "uid": record.user.uid, "gid": record.user.gid, "groups": record.user.groups },
        "workdir": record.workdir,
    })
}

/// The root it runs in: `run --rootfs DIR` read back from the command line
/// that started it (parsed again by the same parser, relative to the
/// directory it was typed in), or `null` for the default root (the host's
/// /usr, /bin, /lib* and /etc, read-only).
fn rootfs_of(sandbox: &Sandbox) -> Value {
    let owner = sandbox.read("owner").unwrap_or(Value::Null);
    let Some(words) = owner["command_line"].as_array() else { return Value::Null };
    let words = words.iter().filter_map(Value::as_str);
    match Cli::try_parse_from(words).map(|cli| cli.command) {
        Ok(Command::Run(run)) => run.rootfs.map_or(Value::Null, |dir| {
            let cwd = std::path::Path::new(owner["cwd"].as_str().unwrap_or("/"));
            cwd.join(dir).to_string_lossy().into_owned().into()
        }),
        _ => Value::Null,
    }
}

/// `inspect` for a terminal: the processes first while it runs (what the
/// lessons look at), then its state and the plan it was started with.
fn render_inspect(doc: &Value) -> String {
    let names = |v: &Value| {
        v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect::<Vec<_>>())
    };
    let mut out = String::new();
    let processes = doc["processes"].as_array().cloned().unwrap_or_default();
    if !processes.is_empty() {
        out.push_str(&format!(
            "{}: {} process(es). NSpid lists a PID per level, host first.\n",
            text(&doc["name"]),
            processes.len()
        ));
    }
    // One line a process, its columns as wide as their widest cell (one
    // space apart, as ps(1) prints them), then its signals and limits.
    let pids: Vec<String> = processes
        .iter()
        .map(|p| procfs::pids_text(p["nspid"].as_array().into_iter().flatten().filter_map(Value::as_i64)))
        .collect();
    let pids_width = pids.iter().map(String::len).max().unwrap_or(0);
    let comm_width =
        processes.iter().map(|p| output::printable(&text(&p["comm"])).chars().count()).max().unwrap_or(0);
    for (p, pids) in processes.iter().zip(&pids) {
        out.push_str(&format!(
            "  {pids:<pids_width$} {} {:<comm_width$} {}\n",
            p["state"].as_str().unwrap_or("?"),
            output::printable(&text(&p["comm"])),
            output::printable(p["cmdline"].as_str().unwrap_or(""))
        ));
        for (key, label) in [("caught", "caught"), ("ignored", "ignored"), ("blocked", "blocked")] {
            if let Some(list) = names(&p[key]).filter(|n| !n.is_empty()) {
                out.push_str(&format!("      {label:<8} {}\n", list.join(" ")));
            }
        }
        if let Some(list) = names(&p["capabilities"]).filter(|n| !n.is_empty()) {
            out.push_str(&format!("      caps     {}\n", condensed(&list)));
        }
        // The system-call filter (Seccomp: in /proc), shown where there is one.
        if let Some(filter) = p["seccomp"].as_str().filter(|s| *s != "none") {
            out.push_str(&format!("      seccomp  {filter}\n"));
        }
    }
    if let Some(others) = names(&doc["pid_namespace_shared_with"]).filter(|n| !n.is_empty()) {
        out.push_str(&format!("  shares its PID namespace with: {} (--pid container:)\n", others.join(", ")));
    }
    out.push_str(&format!("{}: {}\n", text(&doc["name"]), text(&doc["status"])));
    out.push_str(&output::table(&plan_rows(doc), &[]));
    out
}

/// A JSON value as a table cell.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    }
}

/// When it started and ended, and the plan, one row each.
fn plan_rows(doc: &Value) -> Vec<Vec<String>> {
    let plan = &doc["plan"];
    let when = |v: &Value| v.as_f64().map_or("-".into(), |t| format!("{:.0} s ago", record::now() - t));
    let mut rows: Vec<Vec<String>> = vec![vec!["  started".into(), when(&doc["started"])]];
    if let Some(code) = doc["exit_code"].as_i64() {
        let how = match doc["signal"].as_str() {
            Some(sig) => format!("killed by {sig} (exit code {code})"),
            None => format!("exit code {code}"),
        };
        rows.push(vec!["  ended".into(), format!("{}, {how}", when(&doc["finished"]))]);
    }
    let stop = match plan["stop_timeout"].as_f64() {
        Some(t) => format!("{}, SIGKILL after {t} s", text(&plan["stop_signal"])),
        None => format!("{}, no SIGKILL (waits forever)", text(&plan["stop_signal"])),
    };
    let caps: Option<Vec<String>> = plan["capabilities"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect());
    let root = format!(
        "{} ({}), nest {}, PID namespace {}",
        plan["rootfs"].as_str().unwrap_or("default: the host's /usr, /bin, /lib*, /etc, read-only"),
        text(&plan["root"]),
        text(&plan["nest"]),
        text(&plan["pid_namespace"])
    );
    rows.extend([
        vec!["  argv".into(), if plan["argv"].is_array() { plan["argv"].to_string() } else { "-".into() }],
        vec!["  PID 1".into(), text(&plan["pid1_role"])],
        vec!["  stop".into(), stop],
        vec!["  caps".into(), caps.map_or("-".into(), |c| condensed(&c))],
        vec!["  seccomp".into(), text(&plan["seccomp"])],
        vec!["  root".into(), root],
    ]);
    rows
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

#[cfg(test)]
mod tests {
    use super::condensed;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| format!("CAP_{n}")).collect()
    }

    #[test]
    fn capability_sets_are_told_in_a_few_words() {
        let docker = caps(&[
            "CHOWN",
            "DAC_OVERRIDE",
            "FSETID",
            "FOWNER",
            "MKNOD",
            "NET_RAW",
            "SETGID",
            "SETUID",
            "SETFCAP",
            "SETPCAP",
            "NET_BIND_SERVICE",
            "SYS_CHROOT",
            "KILL",
            "AUDIT_WRITE",
        ]);
        assert_eq!(condensed(&docker), "Docker default (14)");
        let less: Vec<String> = docker.iter().filter(|c| *c != "CAP_NET_RAW").cloned().collect();
        assert_eq!(condensed(&less), "default − NET_RAW");
        let more = [docker.clone(), caps(&["SYS_ADMIN"])].concat();
        assert_eq!(condensed(&more), "default + SYS_ADMIN");
        let every: Vec<String> = caps::all().into_iter().map(|c| c.to_string()).collect();
        assert_eq!(condensed(&every), format!("all ({})", every.len()));
        let but_one: Vec<String> = every.iter().filter(|c| *c != "CAP_SYS_RESOURCE").cloned().collect();
        assert_eq!(condensed(&but_one), "all − SYS_RESOURCE");
        assert_eq!(condensed(&caps(&["KILL"])), "KILL");
        assert_eq!(condensed(&[]), "none");
    }
}
