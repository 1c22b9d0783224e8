//! The numbered steps of the setup recipe, and how a step that fails in the
//! child is reported to the parent.
//!
//! The child that becomes PID 1 cannot return an `anyhow::Error` to the
//! parent: they are different processes. So, as bubblewrap and runc do, the
//! parent hands the child the write end of a pipe marked close-on-exec. If a
//! step fails, the child writes "which step, which errno, what it was doing"
//! into the pipe and exits. If every step succeeds, the final `execve` closes
//! the pipe and the parent reads end-of-file: no news is good news.

use std::fmt;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::exit_code;
use crate::runtime::message::Message;
use crate::sys;

/// The recipe, in kernel order. `runtime/mod.rs` runs them; this list names them
/// for messages such as "step 7/14 mount /proc: EPERM".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    UserNamespace = 1,
    PidNamespace,
    PreparePid1,
    MountNamespace,
    PrivateMounts,
    BuildRoot,
    MountProc,
    SwitchRoot,
    Nest,
    Terminal,
    Seccomp,
    DropCapabilities,
    ResetSignals,
    Exec,
}

const ALL: [Step; 14] = [
    Step::UserNamespace,
    Step::PidNamespace,
    Step::PreparePid1,
    Step::MountNamespace,
    Step::PrivateMounts,
    Step::BuildRoot,
    Step::MountProc,
    Step::SwitchRoot,
    Step::Nest,
    Step::Terminal,
    Step::Seccomp,
    Step::DropCapabilities,
    Step::ResetSignals,
    Step::Exec,
];

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::UserNamespace => "create user namespace",
            Step::PidNamespace => "create PID namespace",
            Step::PreparePid1 => {
                "prepare PID 1: close inherited descriptors, own process group, die with pidlab"
            }
            Step::MountNamespace => "create mount namespace",
            Step::PrivateMounts => "make / private",
            Step::BuildRoot => "build the root filesystem",
            Step::MountProc => "mount /proc",
            Step::SwitchRoot => "switch root",
            Step::Nest => "nest PID namespaces",
            Step::Terminal => "give the workload its terminal",
            Step::Seccomp => "install the seccomp filter",
            Step::DropCapabilities => "drop capabilities, switch user",
            Step::ResetSignals => "reset signal dispositions",
            Step::Exec => "exec the workload",
        }
    }

    pub fn from_number(n: u32) -> Option<Step> {
        ALL.iter().copied().find(|s| *s as u32 == n)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}/{} {}", *self as u32, ALL.len(), self.name())
    }
}

/// Why a step failed: the errno the kernel returned and what was attempted.
#[derive(Debug)]
pub struct StepError {
    pub errno: Errno,
    pub detail: String,
}

impl StepError {
    pub fn new(errno: Errno, detail: impl Into<String>) -> StepError {
        StepError { errno, detail: detail.into() }
    }
}

/// Attach "what was being attempted" to a nix result.
pub trait Doing<T> {
    fn doing(self, detail: impl FnOnce() -> String) -> Result<T, StepError>;
}

impl<T> Doing<T> for nix::Result<T> {
    fn doing(self, detail: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|errno| StepError::new(errno, detail()))
    }
}

impl<T> Doing<T> for std::io::Result<T> {
    fn doing(self, detail: impl FnOnce() -> String) -> Result<T, StepError> {
        self.map_err(|err| {
            let errno = Errno::from_raw(err.raw_os_error().unwrap_or(libc::EIO));
            StepError::new(errno, detail())
        })
    }
}

/// The child's end of the report pipe.
pub struct Reporter {
    pipe: OwnedFd,
    /// `--step`: pidlab's go pipe, read before each step (`walkthrough.rs`).
    pause: Option<OwnedFd>,
    /// `--step`: the step announced last (a step may make several calls).
    current: std::cell::Cell<Option<Step>>,
}

impl Reporter {
    pub fn new(pipe: OwnedFd, pause: Option<OwnedFd>) -> Reporter {
        Reporter { pipe, pause, current: std::cell::Cell::new(None) }
    }

    /// `--step`: say which step comes, and wait for pidlab's go-ahead. A
    /// pidlab gone (end of file) ends this process.
    pub fn announce(&self, step: Step) {
        let Some(pause) = &self.pause else { return };
        if self.current.get() == Some(step) {
            return;
        }
        if let Some(done) = self.current.replace(Some(step)) {
            let _ = Message::StepDone { step: done }.send(&self.pipe);
        }
        let _ = Message::StepBegin { step }.send(&self.pipe);
        if Message::receive(pause).ok().flatten() != Some(Message::Go) {
            sys::exit_now(exit_code::SETUP_FAILED);
        }
    }

    /// Run one step; on failure report it and end this process. Steps run in
    /// the child, so "ending" means `_exit`, never returning into the
    /// parent's code (`sys::spawn`: the child has a stack of its own, and
    /// nothing to return to).
    pub fn run<T>(&self, step: Step, f: impl FnOnce() -> Result<T, StepError>) -> T {
        self.announce(step);
        match f() {
            Ok(value) => value,
            Err(err) => self.fail(step, &err),
        }
    }

    pub fn fail(&self, step: Step, err: &StepError) -> ! {
        let message = Message::StepFailed { step, errno: err.errno, detail: err.detail.clone() };
        let _ = message.send(&self.pipe);
        let code = match (step, err.errno) {
            (Step::Exec, errno) => exit_code::of_exec_failure(errno),
            _ => exit_code::SETUP_FAILED,
        };
        // `_exit`, not `exit`: run no atexit handler and flush no stdio
        // buffer of the parent's (copied, or borrowed: `sys::Spawn`).
        sys::exit_now(code);
    }
}

/// A failure the child reported, decoded by the parent.
#[derive(Debug)]
pub struct Report {
    pub step: Step,
    pub errno: Errno,
    pub detail: String,
}

impl Report {
    /// Decode what the child wrote. Nothing at all means every step
    /// succeeded.
    pub fn parse(bytes: &[u8]) -> Option<Report> {
        match Message::decode(bytes)? {
            Message::StepFailed { step, errno, detail } => Some(Report { step, errno, detail }),
            _ => None,
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.step, self.detail, self.errno)?;
        if let Some(hint) = hint(self.step, self.errno) {
            write!(f, " — {hint}")?;
        }
        Ok(())
    }
}

/// Known errnos turned into advice, as bubblewrap does after `clone`.
pub fn hint(step: Step, errno: Errno) -> Option<&'static str> {
    Some(match (step, errno) {
        (Step::PidNamespace | Step::Nest, Errno::EPERM) => {
            "creating a PID namespace needs CAP_SYS_ADMIN; run as root or let pidlab use a user namespace (--rootless)"
        }
        (Step::PidNamespace | Step::Nest, Errno::ENOSPC) => {
            "nesting limit reached: at most 32 PID namespace levels below the initial one, \
             and at most user.max_pid_namespaces namespaces per user"
        }
        (_, Errno::EINVAL) if matches!(step, Step::UserNamespace | Step::PidNamespace) => {
            "unshare was called from a multithreaded process, or a PID namespace was already requested"
        }
        (Step::MountProc, Errno::EPERM) => {
            "the kernel refuses a new /proc when no fully visible /proc exists in this mount namespace \
             (e.g. inside a container that masks /proc paths); run `pidlab doctor`"
        }
        (Step::MountNamespace | Step::PrivateMounts | Step::BuildRoot, Errno::EPERM) => {
            "mounting needs CAP_SYS_ADMIN in the user namespace that owns the mount namespace; \
             run as root or with --rootless"
        }
        (Step::Seccomp, _) => {
            "the kernel refused the filter (built without CONFIG_SECCOMP_FILTER, or pidlab lacks \
             CAP_SYS_ADMIN here); --security-opt seccomp=unconfined runs without it"
        }
        (Step::Exec, Errno::EACCES) => "the file is not executable (or is a directory)",
        (Step::Exec, Errno::ENOEXEC) => "not a format the kernel can run (a script without a #! line?)",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn a_report_survives_the_pipe() {
        let (rx, tx) = nix::unistd::pipe().unwrap();
        let failed = Message::StepFailed {
            step: Step::MountProc,
            errno: Errno::EPERM,
            detail: "mount proc on /x/proc".into(),
        };
        failed.send(&tx).unwrap();
        drop(tx);
        let mut bytes = Vec::new();
        std::fs::File::from(rx).read_to_end(&mut bytes).unwrap();
        let report = Report::parse(&bytes).unwrap();
        assert_eq!(report.step, Step::MountProc);
        assert_eq!(report.errno, Errno::EPERM);
        let text = report.to_string();
        assert!(text.starts_with("step 7/14 mount /proc: mount proc on /x/proc: EPERM"), "{text}");
        assert!(text.contains("fully visible"), "a known errno carries its hint: {text}");
    }

    #[test]
    fn nothing_written_means_success() {
        assert!(Report::parse(b"").is_none());
    }
}
