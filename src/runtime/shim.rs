//! `pidlab run -d`: the shim, a small supervisor that outlives the terminal.
//!
//! Like containerd's shim or conmon, it is the parent of the sandbox's PID 1
//! for as long as the sandbox runs: it holds the pidfd, collects the exit
//! status, records it in the state directory, and keeps the workload's
//! output in a log, through `pidlab:log`, its own child, which caps the log
//! (`logfile.rs`). The `pidlab run -d` that started it returns as soon as
//! PID 1 has been exec'd. The shim, not that client, claims the sandbox's
//! name: a record's owner must be the process that stays, even when the
//! client is killed in the middle of the start-up.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::Signal;
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, pipe2};

use crate::exit_code;
use crate::logfile;
use crate::record::{self, Sandbox};
use crate::runtime::message::Message;
use crate::runtime::plan::Plan;
use crate::runtime::rootfs::RootPlan;
use crate::runtime::start;
use crate::sys;

/// `run -d`: fork a shim that supervises the sandbox, return once PID 1 runs.
///
/// The shim (`pidlab:shim`) starts a session of its own (setsid(2)), so it
/// outlives the terminal, claims the name, writes the workload's output to
/// the log, waits on PID 1 and records how it ended. We wait on a pipe for
/// its word (`message.rs`): `Started` once the workload was exec'd, or
/// `NotStarted` with the setup error (a name already taken among them).
pub fn detach(plan: &Plan, root: RootPlan, name: &str, remove_when_done: bool) -> Result<i32> {
    record::check_name(name).context("--name")?;
    let (ready_rx, ready_tx) = pipe2(OFlag::O_CLOEXEC).context("create the ready pipe")?;
    // SAFETY: pidlab starts no thread (see `sys::fork`).
    match unsafe { sys::fork() }.context("fork the shim")? {
        ForkResult::Child => sys::child(|| {
            drop(ready_rx);
            shim(plan, root, name, ready_tx, remove_when_done)
        }),
        ForkResult::Parent { .. } => {
            drop(ready_tx);
            match Message::receive(&ready_rx).context("read the shim's word")? {
                Some(Message::Started) => {
                    println!("{name}");
                    Ok(0)
                }
                Some(Message::NotStarted { code, message }) => Err(exit_code::Exit { code, message }.into()),
                _ => Err(exit_code::Exit {
                    code: exit_code::SETUP_FAILED,
                    message: "the shim died before PID 1 started".into(),
                }
                .into()),
            }
        }
    }
}

/// The shim's life. Returns its exit code (PID 1's).
fn shim(plan: &Plan, root: RootPlan, name: &str, ready: OwnedFd, remove_when_done: bool) -> i32 {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"pidlab:shim");
    // The client may be gone (killed) when we tell it the sandbox runs: a
    // write to a pipe nobody reads must fail with EPIPE, not kill us with
    // SIGPIPE. PID 1 starts from default dispositions (step 13).
    let _ = sys::set_disposition(Signal::SIGPIPE, true);
    let mut ready = Some(ready);
    let sandbox = match Sandbox::claim(name) {
        Ok(sandbox) => sandbox,
        Err(err) => return report_failure(&mut ready, &err),
    };
    let mut logger: Option<Logger> = None;
    let result = redirect_output(&sandbox, plan, &mut logger).and_then(|()| root.create()).and_then(|root| {
        let mut tell_ready = || {
            if let Some(pipe) = ready.take() {
                let _ = Message::Started.send(&pipe);
            }
        };
        // The log complete before the end is recorded.
        let mut drain_log = || {
            if let Some(logger) = logger.take() {
                logger.finish();
            }
        };
        let hooks = super::Hooks { started: Some(&mut tell_ready), ended: Some(&mut drain_log) };
        start(plan, &root, super::Register::BeforeWorkload(&sandbox), hooks)
    });
    // Failed before PID 1 ran: no record is left behind.
    let started = ready.is_none();
    let code = match &result {
        Ok(code) => *code,
        Err(err) => report_failure(&mut ready, err),
    };
    if let Some(logger) = logger {
        logger.finish();
    }
    if remove_when_done || !started {
        let _ = sandbox.remove();
    }
    code
}

/// Tell the client why the sandbox did not start or, once it has been told
/// that it runs, write the error to the log. Returns the exit code.
fn report_failure(ready: &mut Option<OwnedFd>, err: &anyhow::Error) -> i32 {
    let code = exit_code::of_error(err);
    match ready.take() {
        Some(pipe) => {
            let _ = Message::NotStarted { code, message: format!("{err:#}") }.send(&pipe);
        }
        None => say!("pidlab: {err:#}"),
    }
    code
}

/// `pidlab:log`, the shim's child that writes the log.
struct Logger {
    pid: Pid,
    pidfd: OwnedFd,
}

/// The shim's stdin becomes /dev/null; its stdout and stderr (inherited by
/// the workload) two pipes, which `pidlab:log`, started here into
/// `logger`, copies into the sandbox's log, each line marked with its
/// stream and time, `--log-max-size` at most per file (`logfile.rs`).
fn redirect_output(sandbox: &Sandbox, plan: &Plan, logger: &mut Option<Logger>) -> Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty()).context("open /dev/null")?;
    let log = logfile::Writer::create(&sandbox.log_path(), plan.log_max_size)?;
    let (stdout_rx, stdout_tx) = pipe2(OFlag::O_CLOEXEC).context("create the stdout pipe")?;
    let (stderr_rx, stderr_tx) = pipe2(OFlag::O_CLOEXEC).context("create the stderr pipe")?;
    // SAFETY: pidlab starts no thread (see `sys::fork`).
    match unsafe { sys::fork() }.context("fork the logger")? {
        ForkResult::Child => sys::child(|| {
            let _ = nix::sys::prctl::set_name(c"pidlab:log");
            // Keep the pipes' read ends and the log, nothing else: not the
            // write ends (or the pipes would never end), not the ready pipe
            // (`run -d` waits for its end), not the terminal.
            drop((stdout_tx, stderr_tx));
            let _ = nix::unistd::dup2_stdin(&null);
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
            drop(null);
            // SAFETY: this child ends in exit_now, a panic too
            // (`sys::child`); the owners of what is closed here (the shim's
            // own descriptors) live in frames it never returns to.
            let _ = unsafe {
                sys::close_fds_except(&[stdout_rx.as_raw_fd(), stderr_rx.as_raw_fd(), log.as_raw_fd()])
            };
            logfile::keep(std::fs::File::from(stdout_rx), std::fs::File::from(stderr_rx), log);
            0
        }),
        ForkResult::Parent { child } => {
            drop((stdout_rx, stderr_rx));
            let pidfd = sys::pidfd_open(child).context("pidfd_open on the logger")?;
            nix::unistd::dup2_stdin(&null).context("dup2 stdin")?;
            nix::unistd::dup2_stdout(&stdout_tx).context("dup2 stdout")?;
            nix::unistd::dup2_stderr(&stderr_tx).context("dup2 stderr")?;
            *logger = Some(Logger { pid: child, pidfd });
            Ok(())
        }
    }
}

impl Logger {
    /// Once PID 1 has exited (and with it every process of its namespace),
    /// the shim's stdout and stderr are the pipes' last write ends: close
    /// them, and wait for `pidlab:log` to write the rest and exit, so that
    /// when the shim exits (`logs -f` watches for that) the log is
    /// complete. At most 5 s: a process that still holds the pipe (one
    /// that left the namespace) does not keep the shim.
    fn finish(self) {
        if let Ok(null) =
            nix::fcntl::open("/dev/null", nix::fcntl::OFlag::O_WRONLY, nix::sys::stat::Mode::empty())
        {
            let _ = nix::unistd::dup2_stdout(&null);
            let _ = nix::unistd::dup2_stderr(&null);
        }
        let limit = PollTimeout::try_from(Duration::from_secs(5)).unwrap_or(PollTimeout::MAX);
        loop {
            let mut fds = [PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, limit) {
                Err(nix::errno::Errno::EINTR) => continue,
                Ok(1) => break,
                _ => {
                    let _ = sys::pidfd_send_signal(self.pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
                    break;
                }
            }
        }
        let _ = waitpid(self.pid, None);
    }
}
