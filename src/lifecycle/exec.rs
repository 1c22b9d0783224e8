//! `pidlab exec NAME -- CMD`: run a command inside a running sandbox, as
//! `docker exec` does.
//!
//! setns(2) moves the caller into an existing namespace. For most kinds it
//! moves the caller itself; for a PID namespace, like unshare, it only
//! decides where the caller's *next child* is born (setns(2), "PID
//! namespaces") — a process never changes PID namespace. So: enter the
//! sandbox's namespaces, fork, and the child is inside: it gets the next
//! free PID of the namespace, and its parent (us) is outside, so it sees
//! its parent PID as 0.
//!
//! The namespaces are entered through a pidfd of the sandbox's PID 1, in
//! one setns(2) call (Linux 5.8+): all of them or none, and never those of
//! another process that reused PID 1's number. Entering the mount
//! namespace sets our root to that namespace's root mount, which is not
//! the sandbox's root when the sandbox used chroot. So we also open
//! /proc/PID1/root *before* entering, and chroot there, as `nsenter
//! --root` does.
//!
//! A process started this way must be held to the same limits as PID 1,
//! or `exec` is a way out: pidlab starts with every capability. So the
//! child gets PID 1's seccomp filter and capability sets, and the
//! environment the run gave PID 1, all from the sandbox's record
//! (`runtime/plan.rs`, `Plan::record`), never from /proc of a process the workload
//! controls (PID 1 may have re-exec'd itself with `PATH=/tmp/evil:...`);
//! no descriptor of the caller's but 0, 1 and 2; and, until it execs, it is
//! not dumpable, so the workload cannot ptrace it or open its /proc files
//! while it still holds pidlab's capabilities (runc's CVE-2016-9962).
//!
//! With `--nest N`, the workload is PID 1 of the innermost level, and that
//! is where `exec` lands by default (`--level K` for another).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::sched::{CloneFlags, setns};
use nix::sys::stat::Mode;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, chroot, fchdir};

use crate::cli::ExecArgs;
use crate::exit_code::{self, Exit, SETUP_FAILED};
use crate::procfs;
use crate::record::Sandbox;
use crate::record::{Record, open_pid1};
use crate::runtime::capabilities::Capabilities;
use crate::runtime::console;
use crate::runtime::environment::Environment;
use crate::runtime::pidns;
use crate::runtime::seccomp;
use crate::runtime::user::User;
use crate::signals;
use crate::sys;

pub fn run(args: ExecArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let (record, pid1, pidfd) = open_pid1(&sandbox, "exec into")?;
    let limits = Limits::from_record(&record, &args.name)?;
    let nest = record.nest.max(1);
    let level = args.level.unwrap_or(nest);
    if !(1..=nest).contains(&level) {
        return Err(refuse(format!(
            "--level {level}: {} has {nest} nested PID namespace(s); choose 1 (outermost) to {nest} (the workload's, the default)",
            args.name
        )));
    }
    let (target, pidfd) = if level == 1 { (pid1.pid, pidfd) } else { descend(pid1.pid, level - 1)? };
    // Racing `stop` or `kill`: each step below can find PID 1 gone, and
    // says so in these words rather than with the errno it got.
    let gone = || refuse(format!("cannot exec into {}: the sandbox is stopping or stopped", args.name));
    let root = match open(
        format!("/proc/{target}/root").as_str(),
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) {
        Ok(root) => root,
        // ENOENT: PID 1 is exiting (its root is released before it becomes
        // a zombie, and as the init of a namespace it then waits for the
        // kernel to kill the rest); the pidfd keeps its PID from reuse.
        Err(Errno::ENOENT | Errno::ESRCH) => return Err(gone()),
        Err(errno) => return Err(errno).with_context(|| format!("open /proc/{target}/root")),
    };
    // The pidfd refers to the process we checked; if it is still running
    // now, the /proc/PID/root just opened was its root, not a newcomer's.
    if pidns::has_exited(&pidfd) {
        return Err(gone());
    }
    let limits = limits.with_options(&args, target, record.rootless)?;
    let env: Vec<CString> = limits
        .env
        .to_strings()
        .into_iter()
        .map(CString::new)
        .collect::<Result<_, _>>()
        .context("environment")?;
    let argv: Vec<CString> = args
        .command
        .iter()
        .map(|a| CString::new(a.as_str()).with_context(|| format!("{a:?} contains a NUL byte")))
        .collect::<Result<_>>()?;

    // Inherited by the child at fork: the workload, which can see the
    // child from its first instant, cannot ptrace it (it lacks
    // CAP_SYS_PTRACE) while the child still holds our capabilities.
    // execve makes the command dumpable again.
    nix::sys::prctl::set_dumpable(false).context("prctl(PR_SET_DUMPABLE, 0)")?;
    let mut kinds = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
    if record.rootless {
        // The user namespace grants the rights to enter the others.
        kinds |= CloneFlags::CLONE_NEWUSER;
    }
    match setns(pidfd.as_fd(), kinds) {
        Ok(()) => {}
        Err(Errno::ESRCH) => return Err(gone()),
        Err(_) if pidns::has_exited(&pidfd) => return Err(gone()),
        Err(errno) => {
            return Err(errno).context("setns into the sandbox's namespaces through a pidfd of PID 1");
        }
    }

    // -t: the command sends us its terminal's master end over this.
    let console = (args.tty && !args.detach).then(console::socket).transpose()?;
    // SAFETY: pidlab starts no thread (see `sys::fork`).
    match unsafe { sys::fork() }.map_err(|errno| fork_error(errno, &args.name))? {
        ForkResult::Child => sys::child(|| {
            let io = Io {
                detach: args.detach,
                interactive: args.interactive,
                console: console.map(|(_, theirs)| theirs),
            };
            inside(&limits, &root, &args.command[0], &argv, &env, io)
        }),
        // `docker exec -d`: leave it running. When we exit, the kernel
        // hands it to the sandbox's PID 1, which must reap it.
        ForkResult::Parent { .. } if args.detach => Ok(0),
        ForkResult::Parent { child } => {
            if let Some((ours, theirs)) = console {
                drop(theirs);
                let pidfd = sys::pidfd_open(child).context("pidfd_open on the command")?;
                if let Some(master) = console::receive_master(&ours, &pidfd)? {
                    console::relay_until_exit(&mut console::Relay::new(master, args.interactive), &pidfd);
                }
            }
            wait_for(child)
        }
    }
}

/// The command's exit code, as `docker exec` reports it.
fn wait_for(child: nix::unistd::Pid) -> Result<i32> {
    Ok(match waitpid(child, None).context("wait for the command")? {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => signals::exit_code_for(sig),
        _ => exit_code::SETUP_FAILED,
    })
}

/// Where the command's stdin, stdout and stderr go.
struct Io {
    /// `-d`: nowhere (/dev/null).
    detach: bool,
    /// `-i`: stdin is ours; else /dev/null.
    interactive: bool,
    /// `-t`: our end of the console socket's other end, kept open across
    /// the fork (`console::attach`).
    console: Option<OwnedFd>,
}

/// What a process started by `exec` is given: PID 1's limits, as the run
/// recorded them.
struct Limits {
    env: Environment,
    path: String,
    workdir: String,
    capabilities: Capabilities,
    seccomp: Option<seccomp::Program>,
    user: User,
}

impl Limits {
    fn from_record(record: &Record, name: &str) -> Result<Limits> {
        if record.seccomp.is_empty() {
            // An older pidlab's record: guessing would mean every
            // capability, so refuse instead.
            return Err(refuse(format!(
                "cannot exec into {name}: its record does not say which limits its PID 1 has \
                 (started by an older pidlab?); stop it and run it again"
            )));
        }
        let mode =
            if record.seccomp == "unconfined" { seccomp::Mode::Unconfined } else { seccomp::Mode::Default };
        // `docker exec` runs as the container's user unless told otherwise.
        let user = User {
            uid: record.user.uid,
            gid: record.user.gid,
            groups: record.user.groups.clone(),
            home: record.user.home.clone(),
        };
        let capabilities = Capabilities::from_names(&record.capabilities)?;
        let mut environment = Environment::default();
        for entry in &record.env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            environment.set(key, value);
        }
        Ok(Limits {
            env: environment,
            path: record.path.clone(),
            workdir: record.workdir.clone(),
            seccomp: seccomp::program(mode, &capabilities.keep),
            capabilities,
            user,
        })
    }
}

impl Limits {
    /// `docker exec -u -w -e --env-file` on top of the sandbox's own.
    /// `target` is the PID 1 whose root the command will have.
    fn with_options(mut self, args: &ExecArgs, target: i32, rootless: bool) -> Result<Limits> {
        if let Some(spec) = &args.user {
            let root = std::path::PathBuf::from(format!("/proc/{target}/root"));
            let passwd = crate::runtime::user::read_root_file(&root, "passwd");
            let group = crate::runtime::user::read_root_file(&root, "group");
            let user = User::resolve(spec, passwd.as_deref(), group.as_deref())?;
            if rootless && !user.is_plain_root() {
                return Err(refuse(format!(
                    "--user {spec:?}: a rootless sandbox maps only your own user (as root inside); \
                     run pidlab as root to use --user"
                )));
            }
            self.user = user;
        }
        if let Some(dir) = &args.workdir {
            if !dir.starts_with('/') {
                return Err(refuse(format!("-w {dir:?}: the working directory must be an absolute path")));
            }
            self.workdir = dir.clone();
        }
        for file in &args.env_file {
            self.env.apply_file(file).map_err(|e| refuse(format!("{e:#}")))?;
        }
        for flag in &args.env {
            self.env.apply_flag(flag).map_err(|e| refuse(format!("{e:#}")))?;
        }
        // runc sets HOME from the user's passwd entry when no one set it.
        self.env.set_default("HOME", &self.user.home);
        self.path = self.env.get("PATH").unwrap_or(&self.path).to_string();
        Ok(self)
    }
}

/// The child, inside the namespaces: the sandbox's root, directory,
/// descriptors, filter and capabilities, in the order `runtime/mod.rs` uses
/// for PID 1 (the filter needs CAP_SYS_ADMIN, so it comes before the drop).
fn inside(limits: &Limits, root: &OwnedFd, program: &str, argv: &[CString], env: &[CString], io: Io) -> ! {
    let fail = |what: &str, err: nix::errno::Errno, code: i32| -> ! {
        say!("pidlab exec: {what}: {err}");
        sys::exit_now(code)
    };
    if let Err(err) = fchdir(root).and_then(|()| chroot(".")) {
        fail("chroot to the sandbox's root", err, SETUP_FAILED);
    }
    if let Err(err) = nix::unistd::chdir(limits.workdir.as_str()) {
        fail(&format!("chdir {}", limits.workdir), err, SETUP_FAILED);
    }
    let keep: Vec<i32> = io.console.iter().map(AsRawFd::as_raw_fd).collect();
    // SAFETY: this child ends in execve or exit_now, a panic too
    // (`sys::child`): no owner of a closed descriptor (`root`, our parent's
    // copies of its pipes) is used or dropped after this; `root` was last
    // used just above.
    if let Err(err) = unsafe { sys::close_fds_except(&keep) } {
        fail("close inherited descriptors", err, SETUP_FAILED);
    }
    if io.detach
        && let Err(err) = detach_stdio()
    {
        fail("connect stdin, stdout and stderr to /dev/null", err, SETUP_FAILED);
    }
    if let Some(socket) = io.console {
        if let Err(err) = console::attach(socket) {
            fail(&err.detail, err.errno, SETUP_FAILED);
        }
    } else if !io.interactive && !io.detach {
        // docker exec without -i: no stdin.
        let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, Mode::empty());
        if let Err(err) = null.and_then(nix::unistd::dup2_stdin) {
            fail("stdin from /dev/null", err, SETUP_FAILED);
        }
    }
    if let Err(err) = signals::reset_to_defaults() {
        fail("reset signals", err, SETUP_FAILED);
    }
    if let Err(err) = seccomp::install(limits.seccomp.as_ref()) {
        fail("install the seccomp filter", err, SETUP_FAILED);
    }
    if let Err(err) = limits.capabilities.apply(&limits.user) {
        fail(&err.detail, err.errno, SETUP_FAILED);
    }
    let found = match crate::runtime::find_program(program, &limits.path) {
        Ok(found) => found,
        Err(err) => fail(&format!("{program} not found in the sandbox"), err, exit_code::NOT_FOUND),
    };
    let err = nix::unistd::execve(&found, argv, env).unwrap_err();
    let code = exit_code::of_exec_failure(err);
    fail(&format!("exec {program}"), err, code)
}

/// `exec -d`: the command's output goes nowhere, as with docker exec -d.
fn detach_stdio() -> nix::Result<()> {
    let null = open("/dev/null", OFlag::O_RDWR, Mode::empty())?;
    nix::unistd::dup2_stdin(&null)?;
    nix::unistd::dup2_stdout(&null)?;
    nix::unistd::dup2_stderr(&null)
}

/// PID 1 of the level `steps` below the one `pid` is PID 1 of: each
/// `pidlab:nest-K` has one child that is PID 1 of the next level (the
/// last entry of its NSpid is 1). Returns its host PID and a pidfd.
fn descend(mut pid: i32, steps: u32) -> Result<(i32, OwnedFd)> {
    let depth = |pid: i32| procfs::nspid(std::path::Path::new(&format!("/proc/{pid}/status")));
    for _ in 0..steps {
        let own = depth(pid)?.len();
        let children =
            std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        pid = children
            .split_whitespace()
            .filter_map(|c| c.parse::<i32>().ok())
            .find(|c| depth(*c).is_ok_and(|ns| ns.len() == own + 1 && ns.last() == Some(&1)))
            .ok_or_else(|| refuse("the sandbox's inner levels are gone (it is stopping)".into()))?;
    }
    let pidfd =
        sys::pidfd_open(nix::unistd::Pid::from_raw(pid)).context("pidfd_open on the level's PID 1")?;
    Ok((pid, pidfd))
}

/// fork(2) into a PID namespace whose PID 1 has exited fails with ENOMEM
/// (the kernel's choice of errno, pid_namespaces(7)).
fn fork_error(errno: nix::errno::Errno, name: &str) -> anyhow::Error {
    if errno == nix::errno::Errno::ENOMEM {
        refuse(format!("cannot exec into {name}: the sandbox is stopping or stopped"))
    } else {
        anyhow::anyhow!("fork into the sandbox: {errno}")
    }
}

fn refuse(message: String) -> anyhow::Error {
    Exit { code: SETUP_FAILED, message }.into()
}
