//! `pidlab logs`: a detached sandbox's log (`logfile.rs`) as `docker logs`
//! prints it: each stream to its own, `-t` times, a `--since`/`--until`
//! window, `-n` last lines, `-f` following, and `--wait-for TEXT`.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;

use super::{refuse, wait_readable};
use crate::cli::{Format, LogsArgs};
use crate::clock;
use crate::exit_code::Exit;
use crate::logfile;
use crate::output;
use crate::record::{Sandbox, Status};
use crate::sys;

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
    if args.wait_for.as_deref() == Some("") {
        return Err(refuse(
            "logs --wait-for needs a text to wait for: an empty one is in every line".to_string(),
        ));
    }
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
    // -n N: skip the lines of the window before its last N (a line is
    // counted where it begins; one still without its newline counts).
    let mut skip = 0;
    if let Some(tail) = args.tail {
        let log = logfile::Reader::open(&path, false)?.context("the log vanished")?;
        let lines = count_lines(&mut logfile::Records::new(log), &window)
            .with_context(|| format!("read {}", path.display()))?;
        skip = lines.saturating_sub(tail);
    }
    let mut numbering = Lines::default();
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
            if numbering.of(&record) < skip {
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
                self.emit(record.stream, !record.ends_line);
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

    /// One JSON object for the line `stream` has pending; `partial` when
    /// the line goes on (cut at 64 KiB) or has no newline yet.
    fn emit(&mut self, stream: logfile::Stream, partial: bool) {
        let (line, time) = &mut self.pending[stream.index()];
        let mut object = json!({
            "name": self.name,
            "stream": stream.name(),
            "time": clock::rfc3339(*time),
            "line": String::from_utf8_lossy(line),
        });
        if partial {
            object["partial"] = true.into();
        }
        output::line(&object);
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
                self.emit(stream, true);
            }
        }
    }
}

/// Numbers the lines of a log as they begin, stdout's and stderr's in one
/// count: a line's pieces (records) all get the number of its first.
#[derive(Default)]
struct Lines {
    next: u64,
    /// Per stream, the number of the line still going on.
    open: [Option<u64>; 2],
}

impl Lines {
    fn of(&mut self, record: &logfile::Record) -> u64 {
        let open = &mut self.open[record.stream.index()];
        let number = *open.get_or_insert_with(|| {
            self.next += 1;
            self.next - 1
        });
        if record.ends_line {
            *open = None;
        }
        number
    }
}

/// The lines in the log's window now (one still without its newline counts).
fn count_lines(log: &mut logfile::Records, window: &Window) -> std::io::Result<u64> {
    let mut lines = Lines::default();
    while let Some(record) = log.next_record()? {
        if window.holds(record.time) {
            lines.of(&record);
        }
    }
    Ok(lines.next)
}
