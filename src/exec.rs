//! `pidlab exec NAME -- CMD`: run a command inside a running sandbox, as
//! `docker exec` does.
//!
//! setns(2) moves the caller into an existing namespace. For most kinds it
//! moves the caller itself; for a PID namespace, like unshare, it only
//! decides where the caller's *next child* is born (setns(2), "PID
//! namespaces") — a process never changes PID namespace. So: open the
//! sandbox's namespaces through /proc/PID1/ns/, enter them (the user
//! namespace first when rootless, since it grants the rights to enter the
//! others), fork, and the child is inside: it gets the next free PID of the
//! namespace, and its parent (us) is outside, so it sees its parent PID as 0.
//!
//! Entering the mount namespace sets our root to that namespace's root
//! mount, which is not the sandbox's root when the sandbox used chroot. So
//! we also open /proc/PID1/root *before* entering, and chroot there, as
//! `nsenter --root` does.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, chroot, fchdir};

use crate::cli::ExecArgs;
use crate::exit_code;
use crate::lifecycle::open_pid1;
use crate::signals;
use crate::state::Sandbox;
use crate::sys;

pub fn run(args: ExecArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let (record, pid1, _pidfd) = open_pid1(&sandbox, "exec into")?;
    let proc = format!("/proc/{}", pid1.pid);
    let ns = |kind: &str| -> Result<OwnedFd> {
        open(format!("{proc}/ns/{kind}").as_str(), OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("open {proc}/ns/{kind}"))
    };
    let user = if record["rootless"] == true { Some(ns("user")?) } else { None };
    let (mnt, pid) = (ns("mnt")?, ns("pid")?);
    let root = open(
        format!("{proc}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .with_context(|| format!("open {proc}/root"))?;
    let env = sandbox_env(&proc)?;
    let path = env
        .iter()
        .find_map(|e| e.to_str().ok()?.strip_prefix("PATH=").map(str::to_string))
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let workdir = record["workdir"].as_str().unwrap_or("/").to_string();
    let argv: Vec<CString> = args
        .command
        .iter()
        .map(|a| CString::new(a.as_str()).with_context(|| format!("{a:?} contains a NUL byte")))
        .collect::<Result<_>>()?;

    if let Some(user) = &user {
        setns(user.as_fd(), CloneFlags::CLONE_NEWUSER).context("setns into the user namespace")?;
    }
    setns(mnt.as_fd(), CloneFlags::CLONE_NEWNS).context("setns into the mount namespace")?;
    setns(pid.as_fd(), CloneFlags::CLONE_NEWPID).context("setns into the PID namespace")?;

    match sys::fork().context("fork into the sandbox")? {
        ForkResult::Child => {
            let fail = |what: &str, err: nix::errno::Errno, code: i32| -> ! {
                say!("pidlab exec: {what}: {err}");
                sys::exit_now(code)
            };
            if let Err(err) = fchdir(&root).and_then(|()| chroot(".")) {
                fail("chroot to the sandbox's root", err, exit_code::SETUP_FAILED);
            }
            if let Err(err) = nix::unistd::chdir(workdir.as_str()) {
                fail(&format!("chdir {workdir}"), err, exit_code::SETUP_FAILED);
            }
            if let Err(err) = signals::reset_to_defaults() {
                fail("reset signals", err, exit_code::SETUP_FAILED);
            }
            let program = match crate::sandbox::find_program(&args.command[0], &path) {
                Ok(program) => program,
                Err(err) => {
                    fail(&format!("{} not found in the sandbox", args.command[0]), err, exit_code::NOT_FOUND)
                }
            };
            let err = nix::unistd::execve(&program, &argv, &env).unwrap_err();
            let code = if err == nix::errno::Errno::ENOENT {
                exit_code::NOT_FOUND
            } else {
                exit_code::NOT_EXECUTABLE
            };
            fail(&format!("exec {}", args.command[0]), err, code)
        }
        ForkResult::Parent { child } => Ok(match waitpid(child, None).context("wait for the command")? {
            WaitStatus::Exited(_, code) => code,
            WaitStatus::Signaled(_, sig, _) => signals::exit_code_for(sig),
            _ => exit_code::SETUP_FAILED,
        }),
    }
}

/// The environment PID 1 was started with (/proc/PID/environ).
fn sandbox_env(proc: &str) -> Result<Vec<CString>> {
    let raw = std::fs::read(format!("{proc}/environ")).with_context(|| format!("read {proc}/environ"))?;
    Ok(raw.split(|b| *b == 0).filter(|w| !w.is_empty()).filter_map(|w| CString::new(w).ok()).collect())
}
