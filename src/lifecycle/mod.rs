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
mod inspect;
mod logs;
mod ps;

pub use inspect::inspect;
pub use logs::logs;
pub use ps::ps;

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, poll};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::cli::{Format, KillArgs, RestartArgs, RmArgs, StopArgs, WaitArgs};
use crate::duration::Seconds;
use crate::exit_code::{self, Exit, SETUP_FAILED};
use crate::output;
use crate::procfs;
use crate::record::{Record, Sandbox, Status, open_pid1};
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
    let how = sandbox.exit().map(|e| e.how);
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
        let owner = sandbox.owner().unwrap_or_default();
        if sandbox.record().is_none_or(|r| !r.detached) {
            return Err(refuse(format!(
                "cannot restart {name}: only detached sandboxes (run -d) can be restarted; run a \
                 foreground one again yourself"
            )));
        }
        let (false, Some(cwd)) = (owner.command_line.is_empty(), owner.cwd.as_deref()) else {
            return Err(refuse(format!(
                "cannot restart {name}: its record does not say how it was started (an older pidlab wrote \
                 it); `pidlab rm -f {name}` and run it again"
            )));
        };
        let mut command_line: Vec<&str> = owner.command_line.iter().map(String::as_str).collect();
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
        match open_pid1(&sandbox, "remove") {
            Ok((record, _, pidfd)) => {
                // ESRCH: it is exiting right now; the wait below sees it go.
                let _ = sys::pidfd_send_signal(pidfd.as_fd(), Signal::SIGKILL);
                wait_readable(&pidfd, Some(Duration::from_secs(10)));
                await_supervisor(Some(&record));
            }
            // It ended between the two looks (its supervisor SIGKILLed,
            // PID 1 dying with it): nothing left to kill, only to remove.
            Err(_) if !sandbox.status().is_running() => {}
            Err(err) => return Err(err),
        }
    }
    if sandbox.dir.exists() {
        sandbox.remove()?;
    }
    Ok(())
}

/// The command line of a host process.
fn cmdline(pid: i32) -> Value {
    procfs::cmdline(pid).map_or(Value::Null, Value::String)
}

fn join(argv: &Value) -> String {
    argv.as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}
