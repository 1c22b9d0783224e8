//! `pidlab run --step`: the recipe one step at a time, and what each step
//! changed, observed from outside.
//!
//! Before each step pidlab prints it as C would write its system calls,
//! and why; then it waits (Enter, a few seconds, or not at all); after the
//! step it prints what `/proc` shows changed about the process being built:
//! its namespaces (`/proc/PID/ns/*`), NSpid, root, mounts (a diff of its
//! mountinfo), capabilities and signal dispositions, and the processes of
//! its PID namespace. Nothing printed after a step comes from pidlab's
//! intentions: only from what the kernel says.
//!
//! The list of steps is the recipe itself: PID 1 announces each step it is
//! about to run (`step::Reporter::announce`, a `Message::StepBegin` on the
//! report pipe) and waits for `Message::Go` on the go pipe, so a step the
//! recipe runs cannot be missing here, and one it skips is not shown.
//! Steps 1 and 2 run in pidlab itself, and are shown the same way.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::procfs;
use crate::runtime::message::Message;
use crate::runtime::plan::{PidNamespace, Plan};
use crate::runtime::step::Step;

mod snapshot;
use snapshot::Snapshot;

/// How `--step` moves on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Wait for Enter.
    Enter,
    /// Move on after this long (a projector).
    Auto(Duration),
    /// Do not wait (scripts, tests).
    Log,
}

impl Pace {
    pub fn parse(text: &str) -> Result<Pace> {
        match text {
            "" | "enter" => Ok(Pace::Enter),
            "log" => Ok(Pace::Log),
            _ => match text.strip_prefix("auto:").map(crate::duration::Seconds::parse) {
                Some(Ok(seconds)) => Ok(Pace::Auto(seconds.duration())),
                _ => bail!("--step={text}: use --step (Enter between steps), --step=auto:SECS or --step=log"),
            },
        }
    }
}

/// The C calls of a step, as the recipe makes them for this plan.
pub fn calls(step: Step, plan: &Plan) -> String {
    let argv: Vec<String> = plan.launch.argv.iter().map(|a| format!("{a:?}")).collect();
    match step {
        Step::UserNamespace => "unshare(CLONE_NEWUSER); write(\"/proc/self/uid_map\", \"0 UID 1\"); \
                                write(\"/proc/self/setgroups\", \"deny\"); write(\"/proc/self/gid_map\", \"0 GID 1\")"
            .into(),
        Step::PidNamespace => match &plan.pid_namespace {
            PidNamespace::New => "unshare(CLONE_NEWPID); clone(CLONE_PIDFD | SIGCHLD)".into(),
            PidNamespace::Container(name) => format!("setns(pidfd_of_{name}_pid1, CLONE_NEWPID); clone(SIGCHLD)"),
            PidNamespace::Host => "clone(CLONE_PIDFD | SIGCHLD)".into(),
        },
        Step::PreparePid1 => "close_range(3, ~0U, 0); setpgid(0, 0); prctl(PR_SET_PDEATHSIG, SIGKILL)".into(),
        Step::MountNamespace => "unshare(CLONE_NEWNS)".into(),
        Step::PrivateMounts => "mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)".into(),
        Step::BuildRoot => "mount(\"tmpfs\", ROOT, \"tmpfs\", MS_NOSUID | MS_NODEV, \"mode=0755\"); \
                            mount(\"/usr\", \"ROOT/usr\", NULL, MS_BIND | MS_REC, NULL); \
                            mount_setattr(\"ROOT/usr\", AT_RECURSIVE, {MOUNT_ATTR_RDONLY}); ... (or DIR bound whole); \
                            a tmpfs /dev with mknod(\"ROOT/dev/null\", S_IFCHR, makedev(1, 3)), ...; devpts"
            .into(),
        Step::MountProc => "mount(\"proc\", \"ROOT/proc\", \"proc\", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL); \
                            mount(\"ROOT/proc/sys\", \"ROOT/proc/sys\", NULL, MS_BIND, NULL) + MOUNT_ATTR_RDONLY; \
                            mount(\"ROOT/dev/null\", \"ROOT/proc/kcore\", NULL, MS_BIND, NULL); ..."
            .into(),
        Step::SwitchRoot => match plan.pivot_root {
            true => format!("chdir(ROOT); pivot_root(\".\", \".\"); umount2(\".\", MNT_DETACH); chdir({:?})", plan.workdir),
            false => format!("chdir(ROOT); chroot(\".\"); chdir({:?})", plan.workdir),
        },
        Step::Nest => format!(
            "{} x (unshare(CLONE_NEWPID); fork(); unshare(CLONE_NEWNS); mount(\"proc\", \"/proc\", \"proc\", ...))",
            plan.nest.saturating_sub(1)
        ),
        Step::Terminal => "posix_openpt(O_RDWR); sendmsg(SCM_RIGHTS: master); setsid(); ioctl(slave, TIOCSCTTY)".into(),
        Step::Seccomp => match &plan.seccomp {
            Some(program) => format!("seccomp(SECCOMP_SET_MODE_FILTER, 0, {{len={}}})", program.len()),
            None => "(no filter: --security-opt seccomp=unconfined)".into(),
        },
        Step::DropCapabilities => format!(
            "prctl(PR_CAPBSET_DROP, ...) for every other capability; capset({{effective = permitted = {}}})",
            if plan.capabilities.keep.len() == 14 { "Docker's 14".to_string() } else { plan.capabilities.names().join(" ") }
        ),
        Step::ResetSignals => "rt_sigaction(1..64, SIG_DFL); sigprocmask(SIG_SETMASK, {})".into(),
        Step::Exec => format!("execve({}, [{}], ENV)", argv.first().cloned().unwrap_or_default(), argv.join(", ")),
    }
}

/// Why the step is there, in one line.
pub fn why(step: Step) -> &'static str {
    match step {
        Step::UserNamespace => {
            "without root, a user namespace gives us root's powers over the namespaces we make"
        }
        Step::PidNamespace => "unshare moves no process: our NEXT child is born PID 1 of the new namespace",
        Step::PreparePid1 => {
            "keep nothing of ours in the sandbox, and die with pidlab: a sandbox nobody supervises is lost"
        }
        Step::MountNamespace => "a mount table of our own, so the mounts below are not the host's",
        Step::PrivateMounts => "or every mount we make would propagate to the host's shared mounts",
        Step::BuildRoot => "the files the workload will see as /, built where only this namespace sees them",
        Step::MountProc => "a /proc shows the PID namespace of whoever mounted it: ours must be new",
        Step::SwitchRoot => "make the built root the workload's /",
        Step::Nest => "more PID namespaces, one inside the other (--nest)",
        Step::Terminal => "a terminal of the sandbox's own (-t)",
        Step::Seccomp => {
            "refuse the system calls that reach the host's kernel (needs CAP_SYS_ADMIN, still ours)"
        }
        Step::DropCapabilities => "root inside keeps only Docker's capabilities",
        Step::ResetSignals => "start the workload from default dispositions and an empty mask",
        Step::Exec => "become the workload: from now on PID 1 is that program",
    }
}

/// The walk through the steps.
pub struct Walkthrough {
    pace: Pace,
    /// Ctrl-C at a pause (SIGINT is blocked while the sandbox starts).
    interrupt: SignalFd,
    before: Option<Snapshot>,
    /// The number of the last step shown, so a step this run does without
    /// is named as skipped rather than silently missing.
    shown: u32,
}

impl Walkthrough {
    pub fn new(pace: Pace) -> Result<Walkthrough> {
        let mut set = SigSet::empty();
        set.add(Signal::SIGINT);
        set.thread_block().context("block SIGINT")?;
        let interrupt = SignalFd::with_flags(&set, SfdFlags::SFD_CLOEXEC).context("signalfd")?;
        Ok(Walkthrough { pace, interrupt, before: None, shown: 0 })
    }

    fn header(&mut self, step: Step, plan: &Plan) {
        for skipped in (self.shown + 1..step as u32).filter_map(Step::from_number) {
            say!("pidlab: ── {skipped}: skipped, {}", skipped_because(skipped));
        }
        self.shown = step as u32;
        say!("pidlab: ── {step}");
        say!("pidlab:    {}", calls(step, plan));
        say!("pidlab:    why: {}", why(step));
    }

    /// Wait as `--step` says. Ctrl-C here stops everything.
    fn pause(&self) -> Result<()> {
        let limit = match self.pace {
            Pace::Log => PollTimeout::ZERO,
            Pace::Auto(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
            Pace::Enter => {
                say!("pidlab:    (Enter: run it; Ctrl-C: stop and tear everything down)");
                PollTimeout::NONE
            }
        };
        let stdin = std::io::stdin();
        loop {
            let mut fds = vec![PollFd::new(self.interrupt.as_fd(), PollFlags::POLLIN)];
            if self.pace == Pace::Enter {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
            }
            match poll(&mut fds, limit) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(errno).context("poll"),
                Ok(_) => {}
            }
            if fds[0].revents().is_some_and(|r| !r.is_empty()) {
                bail!("stopped at your Ctrl-C: the half-built sandbox dies with its PID 1");
            }
            if fds.get(1).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty()) {
                let mut line = String::new();
                if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                    // No more input: carry on without waiting.
                    return Ok(());
                }
            }
            return Ok(());
        }
    }

    /// Steps 1 and 2, in pidlab itself: shown the same way, observed on
    /// pidlab's own /proc entries.
    pub fn in_pidlab<T>(&mut self, step: Step, plan: &Plan, run: impl FnOnce() -> Result<T>) -> Result<T> {
        self.header(step, plan);
        self.pause()?;
        let me = nix::unistd::getpid().as_raw();
        let before = Snapshot::of(me, None);
        let value = run()?;
        for line in before.changes(&Snapshot::of(me, None)) {
            say!("pidlab:    {line}");
        }
        Ok(value)
    }

    /// Once PID 1 exists: say where to look, then follow its steps until it
    /// execs the workload (end of file on the report pipe). Returns what a
    /// failed step reported, for the supervisor to explain.
    pub fn follow(&mut self, plan: &Plan, pid1: i32, report: &OwnedFd, go: &OwnedFd) -> Result<Vec<u8>> {
        let status = procfs::Status::of(pid1).unwrap_or_default();
        let ns =
            |pid: String| std::fs::read_link(format!("/proc/{pid}/ns/pid")).map(|p| p.display().to_string());
        say!(
            "pidlab:    PID 1 is host PID {pid1} (NSpid {}); its ns/pid is {}, pidlab's {}",
            procfs::pids_text(status.nspid.iter().copied()),
            ns(pid1.to_string()).unwrap_or_default(),
            ns("self".into()).unwrap_or_default()
        );
        if !matches!(self.pace, Pace::Log) {
            // (With --step=log there is no pause to look in.)
            say!("pidlab:    look from another terminal: `ls -l /proc/{pid1}/ns`, `nsenter -t {pid1} -a`");
        }
        let mut pending = Vec::new();
        loop {
            let Some(message) = next_message(report, &mut pending)? else {
                let after = Snapshot::of(innermost(pid1), Some(pid1));
                if let Some(before) = self.before.take() {
                    for line in before.changes(&after) {
                        say!("pidlab:    {line}");
                    }
                }
                say!("pidlab: ── the workload runs");
                return Ok(Vec::new());
            };
            match message {
                Message::StepBegin { step } => {
                    self.header(step, plan);
                    self.before = Some(Snapshot::of(innermost(pid1), Some(pid1)));
                    self.pause()?;
                    Message::Go.send(go).context("let PID 1 run the step")?;
                }
                Message::StepDone { step } => {
                    let after = Snapshot::of(innermost(pid1), Some(pid1));
                    if let Some(before) = self.before.take() {
                        for line in before.changes(&after) {
                            say!("pidlab:    {line}");
                        }
                    }
                    if step == Step::PrivateMounts {
                        say!("pidlab:    shared mounts now: {}", after.shared);
                    }
                }
                failed @ Message::StepFailed { .. } => return Ok(failed.encode()),
                _ => {}
            }
        }
    }
}

/// Why a run does without `step`: only these three depend on the flags.
fn skipped_because(step: Step) -> &'static str {
    match step {
        Step::UserNamespace => "pidlab runs as root: no user namespace (--rootless makes one)",
        Step::Nest => "one PID namespace (--nest N makes N)",
        Step::Terminal => "no -t: the workload writes to pidlab's own output",
        _ => "nothing in this run needs it",
    }
}

/// The process being built: PID 1, or with --nest the innermost level's.
fn innermost(pid1: i32) -> i32 {
    let mut pid = pid1;
    while let Some(child) = procfs::children(pid).first().copied() {
        pid = child;
    }
    pid
}

/// The next whole line from the report pipe; `None` at end of file.
/// (Two messages written back to back may arrive in one read.)
fn next_message(pipe: &OwnedFd, pending: &mut Vec<u8>) -> Result<Option<Message>> {
    loop {
        if let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if let Some(message) = Message::decode(&line) {
                return Ok(Some(message));
            }
            continue;
        }
        let mut chunk = [0u8; 4096];
        match nix::unistd::read(pipe, &mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("read PID 1's report"),
        }
    }
}
