//! `pidlab lesson check N FILE`: run an attendee's exercise file, watch what
//! the sandbox really did, and say so in the lesson's terms.
//!
//! Three promises, because a room of thirty people depends on them:
//!
//! - **It never hangs.** Every command it runs has a time limit. The classic
//!   mistake, `pidlab run` without `-d` in a script, keeps the script in the
//!   foreground forever; after `SCRIPT_LIMIT` the check kills the script's
//!   whole process group and says "did you forget -d?".
//! - **It leaves nothing behind**, on every way out, Ctrl-C included. The
//!   check works in a private state directory (`PIDLAB_STATE_DIR`), so every
//!   sandbox the file started is recorded there by name and host PID; on the
//!   way out `pidlab rm -f` removes each one. SIGINT, SIGTERM and SIGHUP are
//!   blocked and read from a signalfd (signalfd(2)) rather than left to kill
//!   the check, so the clean-up always runs. Children inherit that mask
//!   (Rust's `Command` does not reset it: the attendee's script runs with
//!   SIGHUP, SIGINT and SIGTERM blocked, `SigBlk: 0x4003`; each sandbox's
//!   PID 1 is reset by pidlab's own `ResetSignals` step), each in a
//!   process group of its own, so a Ctrl-C reaches only the check, which
//!   then ends them.
//! - **It never guesses.** A verdict quotes what was observed: exit codes,
//!   the workload's own output when it failed to start, the signal's fate
//!   as `pidlab explain` read it from /proc. Known wrong answers get a hint
//!   that names their real cause.

use std::io::{Read, Seek};
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::unistd::Pid;
use serde_json::Value;

use crate::exit_code::{Exit, SETUP_FAILED};
use crate::sys;

/// How long the attendee's script may take to return. `pidlab run -d`
/// returns in well under a second; a script still running after this has
/// almost always started a sandbox in the foreground.
pub const SCRIPT_LIMIT: Duration = Duration::from_secs(10);
/// How long any one pidlab command of the check may take (`stop -t 2`
/// included).
const COMMAND_LIMIT: Duration = Duration::from_secs(15);
/// How long a probe may take to say `probe: ready`.
const READY_SECS: &str = "5";

/// What a check concludes: `Ok` passes, `Err` says what is not there yet.
pub type Verdict = std::result::Result<String, String>;

/// The file an attendee hands to `lesson check`, refused with exit 125 (a
/// usage error, not a wrong answer) when it is not there. `starter` is the
/// path of the lesson's starter file in the repository.
pub fn exercise_file(file: &Path, number: u32, starter: &str) -> Result<PathBuf> {
    let where_from = std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default();
    let usage = |problem: String| -> anyhow::Error {
        Exit {
            code: SETUP_FAILED,
            message: format!(
                "{problem}. Lesson {number}'s starter file is {starter} in the pidlab repository; \
                 `pidlab lesson export DIR` writes it (with every other starter file) under DIR, \
                 then run `pidlab lesson check {number} DIR/{starter}`"
            ),
        }
        .into()
    };
    match std::fs::metadata(file) {
        Ok(meta) if meta.is_file() => {
            std::fs::canonicalize(file).with_context(|| format!("resolve {}", file.display()))
        }
        Ok(_) => Err(usage(format!("{} is not a file", file.display()))),
        Err(err) => Err(usage(format!("cannot read {} (from {where_from}): {err}", file.display()))),
    }
}

/// A command's end, as observed: `None` when it was killed for running
/// past its limit.
pub struct Ran {
    status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    pub fn success(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// The exit code in the container convention: 128+N for signal N.
    pub fn code(&self) -> i32 {
        match self.status {
            Some(s) => s.code().or_else(|| s.signal().map(|n| 128 + n)).unwrap_or(-1),
            None => -1,
        }
    }

    /// Everything it printed, stdout then stderr, trimmed.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr).trim().to_string()
    }
}

/// What `ps -a` says about one sandbox.
pub struct Seen {
    pub command: String,
    /// `Some(code)` once PID 1 has exited.
    pub exited: Option<i32>,
}

/// Where a check runs pidlab commands: a private state directory and data
/// volume, the interrupt signals caught. Dropping it removes every sandbox
/// recorded in the state directory, then the directories.
pub struct Bench {
    pub data: tempfile::TempDir,
    state: tempfile::TempDir,
    exe: PathBuf,
    interrupts: SignalFd,
}

impl Bench {
    pub fn new() -> Result<Bench> {
        // Block the interrupt signals first, so no Ctrl-C can end the check
        // between making a directory and recording it for clean-up. They
        // stay blocked until pidlab exits: a pending one is then discarded
        // with the process, after the clean-up and the message.
        let mut interrupt = SigSet::empty();
        for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            interrupt.add(sig);
        }
        sigprocmask(SigmaskHow::SIG_BLOCK, Some(&interrupt), None).context("block SIGINT and SIGTERM")?;
        let interrupts = SignalFd::with_flags(&interrupt, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .context("signalfd for SIGINT and SIGTERM")?;
        Ok(Bench {
            state: tempfile::Builder::new().prefix("pidlab-check-").tempdir().context("make a state dir")?,
            data: tempfile::Builder::new()
                .prefix("pidlab-check-data-")
                .tempdir()
                .context("make a data dir")?,
            exe: std::env::current_exe().context("find the pidlab binary")?,
            interrupts,
        })
    }

    /// `program`, with this pidlab first on the PATH and the private state
    /// directory.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        let dir = self.exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("PATH", path).env("PIDLAB_STATE_DIR", self.state.path());
        // The check blocks SIGINT, SIGTERM and SIGHUP to read them from a
        // signalfd; the attendee's script must start with none blocked.
        crate::sys::unblock_signals_in_child(&mut cmd);
        cmd
    }

    /// `pidlab ARGS...`, bounded.
    pub fn pidlab(&self, args: &[&str]) -> Result<Ran> {
        let mut cmd = self.command(&self.exe);
        cmd.args(args);
        self.run(cmd, COMMAND_LIMIT, true)
    }

    /// A tool the check needs (a compiler), bounded like a pidlab command.
    /// A tool that is not installed is a usage error naming the package.
    pub fn tool(&self, program: &str, args: &[&std::ffi::OsStr], package: &str) -> Result<Ran> {
        let mut cmd = self.command(Path::new(program));
        cmd.args(args);
        match self.run(cmd, COMMAND_LIMIT, true) {
            Err(err) if !tool_exists(program) => Err(Exit {
                code: SETUP_FAILED,
                message: format!(
                    "this check needs {program}, which is not installed here ({package}): {err:#}"
                ),
            }
            .into()),
            ran => ran,
        }
    }

    /// The attendee's shell file, run with bash as the lessons say, bounded
    /// by `SCRIPT_LIMIT`.
    pub fn script(&self, file: &Path) -> Result<Ran> {
        let mut cmd = self.command(Path::new("bash"));
        cmd.arg(file);
        self.run(cmd, SCRIPT_LIMIT, true)
    }

    /// Run `cmd` in a process group of its own, its output in anonymous
    /// files (nothing to remove, and no pipe a left-over process could hold
    /// open). Past `limit` the whole group is SIGKILLed. With
    /// `interruptible`, a SIGINT/SIGTERM/SIGHUP to the check ends the group
    /// too and comes back as an `Exit` error with code 128+N.
    fn run(&self, mut cmd: Command, limit: Duration, interruptible: bool) -> Result<Ran> {
        let mut stdout = tempfile::tempfile().context("a file for the output")?;
        let mut stderr = tempfile::tempfile().context("a file for the output")?;
        cmd.process_group(0).stdin(Stdio::null()).stdout(stdout.try_clone()?).stderr(stderr.try_clone()?);
        let mut child = cmd.spawn().with_context(|| format!("start {:?}", cmd.get_program()))?;
        let status = match self.wait(&mut child, limit, interruptible) {
            Ok(status) => status,
            Err(err) => {
                end_group(&mut child);
                return Err(err);
            }
        };
        if status.is_none() {
            end_group(&mut child);
        }
        Ok(Ran { status, stdout: read_all(&mut stdout)?, stderr: read_all(&mut stderr)? })
    }

    /// Wait for `child` on its pidfd and on the signalfd; `None` at the
    /// limit.
    fn wait(&self, child: &mut Child, limit: Duration, interruptible: bool) -> Result<Option<ExitStatus>> {
        let pidfd = sys::pidfd_open(Pid::from_raw(child.id() as i32)).context("pidfd_open")?;
        let deadline = Instant::now() + limit;
        loop {
            let mut fds = [
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.interrupts.as_fd(), PollFlags::POLLIN),
            ];
            let watched = if interruptible { &mut fds[..] } else { &mut fds[..1] };
            match poll(watched, sys::timeout_until(Some(deadline))) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return Err(err).context("poll for the command's end"),
            }
            if fds[0].any().unwrap_or(false) {
                return Ok(Some(child.wait().context("reap")?));
            }
            if let Some(info) = self.interrupts.read_signal().context("read the signalfd")? {
                let name = Signal::try_from(info.ssi_signo as i32).map(Signal::as_str).unwrap_or("a signal");
                return Err(Exit {
                    code: 128 + info.ssi_signo as i32,
                    message: format!(
                        "lesson check interrupted by {name}: it stopped and removed every sandbox and file it had made"
                    ),
                }
                .into());
            }
        }
    }

    /// The names of the sandboxes recorded in the private state directory.
    pub fn names(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.state.path()) else { return Vec::new() };
        let mut names: Vec<String> = dir
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        names
    }

    /// What `pidlab ps -a` says about `name`; `None` if there is no such
    /// sandbox.
    pub fn seen(&self, name: &str) -> Result<Option<Seen>> {
        let ps = self.pidlab(&["ps", "-a", "--format", "json"])?;
        let rows: Value = serde_json::from_str(&ps.stdout)
            .with_context(|| format!("read `pidlab ps -a --format json`: {}", ps.text()))?;
        let row = rows.as_array().into_iter().flatten().find(|r| r["name"] == name);
        Ok(row.map(|r| {
            let command: Vec<&str> =
                r["command"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            let exited =
                (r["state"] == "exited").then(|| r["exit_code"].as_i64()).flatten().map(|c| c as i32);
            Seen { command: command.join(" "), exited }
        }))
    }

    /// The sandbox's output so far.
    pub fn logs(&self, name: &str) -> Result<String> {
        Ok(self.pidlab(&["logs", name])?.text())
    }

    /// Wait (bounded) until the probe in `name` says it is ready, so that
    /// what `explain` reads from /proc is settled. False if it never did
    /// (it exited, or is not the probe).
    pub fn ready(&self, name: &str) -> Result<bool> {
        Ok(self.pidlab(&["logs", "--wait-for", "probe: ready", "--timeout", READY_SECS, name])?.success())
    }

    /// Who PID 1 is and what SIGTERM sent now from the host would do to it,
    /// as `pidlab explain` reads it from /proc: `("pidlab", "dropped")`.
    pub fn pid1(&self, name: &str) -> Result<std::result::Result<(String, String), String>> {
        let explain = self.pidlab(&["explain", name, "SIGTERM", "--format", "json"])?;
        let row: Option<Value> = explain.stdout.lines().next().and_then(|l| serde_json::from_str(l).ok());
        let field = |row: &Value, key: &str| row[key].as_str().map(str::to_string);
        match row.as_ref().and_then(|r| Some((field(r, "comm")?, field(r, "outcome")?))) {
            Some(found) => Ok(Ok(found)),
            None => Ok(Err(format!("`pidlab explain {name} SIGTERM` could not tell: {}", explain.text()))),
        }
    }

    /// The files PID 1 left in the data volume.
    pub fn data_files(&self) -> Vec<String> {
        let Ok(dir) = std::fs::read_dir(self.data.path()) else { return Vec::new() };
        dir.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect()
    }
}

impl Drop for Bench {
    /// Remove every sandbox the check (or the attendee's file) started:
    /// each is recorded by name in the private state directory, with the
    /// host PID `rm -f` kills. Bounded, and not interruptible: a second
    /// Ctrl-C must not leave half of them.
    fn drop(&mut self) {
        for name in self.names() {
            let mut cmd = self.command(&self.exe);
            cmd.args(["rm", "-f", &name]);
            let failure = match self.run(cmd, COMMAND_LIMIT, false) {
                Ok(ran) if ran.success() => continue,
                Ok(ran) => ran.text(),
                Err(err) => format!("{err:#}"),
            };
            // Gone meanwhile (a foreground run removes its own record as
            // it ends): nothing was left behind, so nothing to say.
            if !self.names().contains(&name) {
                continue;
            }
            say!("pidlab: lesson check could not remove the sandbox {name}: {failure}");
        }
    }
}

/// SIGKILL the process group `child` leads, then reap `child`. A
/// foreground `pidlab run` in it takes its sandbox along (its PID 1 has
/// PR_SET_PDEATHSIG).
fn end_group(child: &mut Child) {
    let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

fn read_all(file: &mut std::fs::File) -> Result<String> {
    let mut bytes = Vec::new();
    file.rewind()?;
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The verdict for a script that did not do its job: it ran past its
/// limit, or failed.
pub fn script_failed(file: &Path, ran: &Ran) -> Option<String> {
    if ran.timed_out() {
        return Some(format!(
            "your script did not return within {} s — did you forget -d? Without -d, `pidlab run` stays in \
             the foreground until the sandbox ends, so {} never returned. (The check stopped it and removed \
             the sandbox it started.)",
            SCRIPT_LIMIT.as_secs(),
            file.display()
        ));
    }
    if !ran.success() {
        return Some(format!("{} failed (exit code {}): {}", file.display(), ran.code(), ran.text()));
    }
    None
}

/// Windows line endings: the shell keeps each `\r` as part of the line, so
/// the last word of every line gets an invisible character.
pub fn crlf_hint(file: &Path) -> Option<String> {
    let bytes = std::fs::read(file).ok()?;
    bytes.windows(2).any(|w| w == b"\r\n").then(|| {
        format!(
            " {} has Windows (CRLF) line endings: the shell keeps each carriage return as part of the line's \
             last word. Convert it: sed -i 's/\\r$//' {}",
            file.display(),
            file.display()
        )
    })
}

/// Is `program` on the PATH?
fn tool_exists(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}
