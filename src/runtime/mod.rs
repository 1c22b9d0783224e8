//! `pidlab run`: the setup recipe, in kernel order. Read this file first.
//!
//! ```text
//!  host                        │ new PID + mount namespace
//!  pidlab run                  │
//!   1 user namespace (rootless)│
//!   2 unshare(CLONE_NEWPID),   │
//!     clone ──────────────────►│ PID 1
//!     sleeps until PID 1 execs │  3 close inherited fds, own process group
//!     (see sys::Spawn)         │    (and the terminal), die with pidlab
//!                              │  4 unshare(CLONE_NEWNS)
//!                              │  5 make / private
//!                              │  6 build the root (DIR bound, or tmpfs + binds)
//!                              │  7 mount /proc
//!                              │    (Docker's read-only, hidden paths)
//!                              │  8 chroot or pivot_root
//!                              │  9 nest more PID namespaces (--nest)
//!                              │ 10 its own terminal (-t)
//!                              │ 11 install the seccomp filter
//!                              │ 12 drop capabilities (Docker's set)
//!                              │ 13 reset signal dispositions and mask
//!                              │ 14 execve the workload: it *is* PID 1
//!     supervise: forward       │
//!     signals, stop, wait      │
//!     on a pidfd               │
//! ```
//!
//! Steps 3 to 14 run in the child; a failure there travels back to the
//! parent through a pipe (`runtime/step.rs`) so the user reads which step failed.

// The steps, one file each, in the order the recipe below uses them.
pub mod capabilities;
pub mod console;
pub mod dockerfile;
pub mod environment;
pub mod launch;
pub mod message;
pub mod pidns;
pub mod plan;
pub mod register;
pub mod rootfs;
pub mod seccomp;
pub mod shim;
pub mod step;
pub mod supervisor;
pub mod user;
pub mod userns;
pub mod walkthrough;

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::unistd::{execve, getpid, pipe2};

use crate::cli::RunArgs;
use crate::observe::trace;
use crate::record::{self, Sandbox};
use crate::signals;
use crate::sys::{self, Spawn};
use message::Message;
use plan::{PidNamespace, Plan, describe_program};
use register::{Generated, Register, claim_generated, register_after_exec};
use rootfs::{Root, RootPlan};
use step::{Doing, Reporter, Step, StepError};
use supervisor::Terminal;

pub fn run(args: RunArgs) -> Result<i32> {
    let plan = Plan::new(&args)?;
    if args.dry_run {
        print!("{}", plan.describe());
        return Ok(0);
    }
    let root = RootPlan::new(args.rootfs.as_deref(), plan.volumes.clone(), Path::new(&plan.workdir))?;
    if args.detach {
        let name = args.name.clone().unwrap_or_else(record::generate_name);
        return shim::detach(&plan, root, &name, args.rm);
    }
    // A foreground sandbox is registered while it runs, so that `pidlab
    // ps`, `exec`, `stop` and `kill` reach it from another terminal; it
    // leaves no state behind when it ends. Without --name it gets a
    // generated one, which the Ctrl-C escape names (`Register`).
    let named = match (&args.name, args.trace) {
        (Some(name), _) => Some(Sandbox::claim(name)?),
        // `--trace` follows the sandbox by name from its first signal.
        (None, true) => Some(claim_generated()?),
        (None, false) => None,
    };
    let register = match &named {
        Some(sandbox) => Register::BeforeWorkload(sandbox),
        None => Register::AfterExec,
    };
    let result = root.create().and_then(|root| start(&plan, &root, register, Hooks::default()));
    if let Some(sandbox) = named {
        let _ = sandbox.remove();
    }
    result
}

/// What the caller of `start` wants done at two moments of the sandbox's
/// life (`run -d`'s shim uses both).
#[derive(Default)]
pub struct Hooks<'a> {
    /// Once PID 1 has exec'd the workload.
    pub started: Option<&'a mut dyn FnMut()>,
    /// Once PID 1 has been waited for, before its end is recorded: the
    /// shim lets its logger write the rest of the output here, so that a
    /// recorded end (`ps -a`, `wait`) means a complete log.
    pub ended: Option<&'a mut dyn FnMut()>,
}

/// Steps 1 and 2 on the host, then spawn PID 1, which runs `pid1`; the
/// parent records the sandbox and supervises it.
pub fn start(plan: &Plan, root: &Root, register: Register, hooks: Hooks) -> Result<i32> {
    let register_first = matches!(register, Register::BeforeWorkload(_));
    // The tracer is started first: once we have unshared CLONE_NEWPID, every
    // child we fork is born inside the new namespace — it would see none of
    // the host's PIDs. It waits for the sandbox to appear.
    let tracer = match (plan.trace, &register) {
        (true, Register::BeforeWorkload(sandbox)) => {
            Some(trace::Follower::start(&sandbox.name, plan.trace_svg.as_deref())?)
        }
        _ => None,
    };
    let (report_rx, report_tx) = pipe2(OFlag::O_CLOEXEC).context("create the report pipe")?;
    // A sandbox registered before its workload runs waits (step 3) for
    // our go-ahead, given once its record is written and its tracer is on:
    // `pidlab ps`, `exec` and `stop` find it as soon as the workload runs,
    // and the tracer misses nothing (`Register`).
    // With --step, PID 1 waits on the same pipe before every step.
    let go = match register_first || plan.step.is_some() {
        true => Some(pipe2(OFlag::O_CLOEXEC).context("create the go pipe")?),
        false => None,
    };
    let mut walk = plan.step.map(walkthrough::Walkthrough::new).transpose()?;
    let pidlab = sys::pidfd_open(getpid()).context("pidfd_open on pidlab itself")?;
    let terminal = Terminal::before_start(plan.interactive && !plan.tty, plan.tty);
    // -t: the workload sends us its terminal's master end over this.
    let console = plan.tty.then(console::socket).transpose()?;
    // Block the signals we forward before PID 1 is born, so none that
    // arrives while it starts is lost; PID 1 unblocks them (step 13).
    let mut blocked = signals::proxied();
    if plan.tty {
        // A change of our terminal's size, to pass on (`console.rs`).
        blocked.add(nix::sys::signal::Signal::SIGWINCH);
    }
    blocked.thread_block().context("block forwarded signals")?;

    // PID 1 dies with us even after a credential change, which clears its
    // PR_SET_PDEATHSIG: a watcher, made while our children are still born
    // in our own PID namespace.
    let mut watcher = supervisor::Watcher::start()?;
    if plan.rootless {
        // 1: a user namespace, in which we are root
        match walk.as_mut() {
            Some(walk) => walk.in_pidlab(Step::UserNamespace, plan, userns::enter)?,
            None => userns::enter()?,
        }
    }
    // 2: our next child is PID 1 of a new namespace (or, with --pid, one
    // more process of an existing one).
    let make_namespace = || -> Result<_> {
        Ok(match &plan.pid_namespace {
            PidNamespace::New => {
                if let Err(errno) = pidns::unshare_for_children() {
                    let hint =
                        crate::runtime::step::hint(Step::PidNamespace, errno).unwrap_or("see unshare(2)");
                    bail!("{}: unshare(CLONE_NEWPID): {errno} — {hint}", Step::PidNamespace);
                }
                None
            }
            PidNamespace::Container(name) => Some((name, pidns::join(name, plan.pivot_root)?)),
            PidNamespace::Host => None,
        })
    };
    let joined = match walk.as_mut() {
        Some(walk) => walk.in_pidlab(Step::PidNamespace, plan, make_namespace)?,
        None => make_namespace()?,
    };
    // PID 1 borrows our memory and we sleep until it execs, unless
    // something must happen in between: the go-ahead, or, with --nest, an
    // outer PID 1 that never execs (it stays as the level's init).
    let how = if go.is_none() && plan.nest == 1 { Spawn::Borrow } else { Spawn::Copy };
    let fds = Pid1Fds {
        report: report_tx.as_raw_fd(),
        pidlab: pidlab.as_raw_fd(),
        go: go.as_ref().map(|(rx, _)| rx.as_raw_fd()),
        console: console.as_ref().map(|(_, theirs)| theirs.as_raw_fd()),
    };
    // SAFETY: pidlab starts no thread (see `sys::fork`). With Borrow, `pid1`
    // drops nothing of ours (it owns only the descriptors in `fds`, which
    // are its own table's), holds no lock at its exec or exit, and installs
    // no handler (it resets every disposition to the default).
    let (child, pidfd) = unsafe { sys::spawn(how, &mut || pid1(plan, root, &terminal, fds)) }
        .map_err(|errno| anyhow::anyhow!("{}: clone: {errno}", Step::PidNamespace))?;
    if let Err(err) = watcher.watch(&pidfd) {
        // Nothing would kill PID 1 if we died: do not leave it running.
        let _ = sys::pidfd_send_signal(pidfd.as_fd(), nix::sys::signal::Signal::SIGKILL);
        return Err(err);
    }
    // Our copies of PID 1's ends: closed, so that end-of-file on the report
    // pipe means PID 1 has exec'd (or exited).
    drop(report_tx);
    drop(pidlab);
    let generated = Generated(match register {
        Register::BeforeWorkload(sandbox) => {
            sandbox.write_record(&plan.record(&sandbox.name, child))?;
            None
        }
        // PID 1 has exec'd (or failed) by now, as it borrowed our memory;
        // with --step it waits at its first pause, and is listed there.
        Register::AfterExec => register_after_exec(plan, child),
    });
    let sandbox = match register {
        Register::BeforeWorkload(sandbox) => Some(sandbox),
        Register::AfterExec => generated.0.as_ref(),
    };
    let mut reported = Vec::new();
    if let Some((go_rx, go_tx)) = go {
        drop(go_rx);
        if let Some(tracer) = &tracer {
            tracer.wait_ready()?;
        }
        match walk.as_mut() {
            None => Message::Go.send(&go_tx).context("start the sandbox")?,
            Some(walk) => match walk.follow(plan, child.as_raw(), &report_rx, &go_tx) {
                Ok(failure) => reported = failure,
                Err(err) => {
                    // Ctrl-C at a pause: PID 1 (and with it its namespace) goes.
                    let _ = sys::pidfd_send_signal(
                        std::os::fd::AsFd::as_fd(&pidfd),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    let _ = nix::sys::wait::waitpid(child, None);
                    return Err(err);
                }
            },
        }
    }
    // -t: the terminal's master, once the workload has made it (or
    // nothing, if PID 1 failed first: its report says why).
    let relay = match console {
        Some((ours, theirs)) => {
            drop(theirs);
            console::receive_master(&ours, &pidfd)?
                .map(|master| console::Relay::new(master, plan.interactive))
        }
        None => None,
    };
    let pid1 = supervisor::Pid1 { pid: child, pidfd, report: report_rx, reported };
    let result = supervisor::supervise(pid1, terminal, plan, sandbox, hooks, relay);
    drop(watcher);
    drop(generated);
    if let Some(tracer) = tracer {
        tracer.finish();
    }
    if let (Some((name, other)), Ok(code)) = (&joined, &result)
        && *code == signals::exit_code_for(nix::sys::signal::Signal::SIGKILL)
        && pidns::exits_within(other, std::time::Duration::from_secs(1))
    {
        // (Its PID 1 finishes exiting only once every process of the
        // namespace is reaped, ours included: hence a wait, not a look.)
        say!(
            "pidlab: {name}'s PID 1 exited, and the kernel killed every other process of its PID \
             namespace, this sandbox's workload with them (--pid container:{name})"
        );
    }
    result
}

/// The descriptors PID 1 keeps, by number: in the child they are entries
/// of its own descriptor table (clone(2) without CLONE_FILES copies ours),
/// owned by nothing else there.
#[derive(Clone, Copy)]
struct Pid1Fds {
    report: RawFd,
    pidlab: RawFd,
    go: Option<RawFd>,
    console: Option<RawFd>,
}

/// Steps 3 to 14, as PID 1 of the new namespace. Never returns: it ends in
/// `execve` or in `_exit` after reporting the step that failed.
fn pid1(plan: &Plan, root: &Root, terminal: &Terminal, fds: Pid1Fds) -> ! {
    // SAFETY: see `Pid1Fds`: each number is open in this process's table.
    // Our parent's `OwnedFd`s for the same numbers (the same objects when
    // PID 1 borrows its memory, copies of them otherwise) live in frames
    // PID 1 never returns to (it ends in execve or exit_now, a panic too:
    // `sys::spawn` catches it), so these are the only owners that act.
    let own = |fd: RawFd| unsafe { OwnedFd::from_raw_fd(fd) };
    let pidlab = own(fds.pidlab);
    let go = fds.go.map(own);
    // --step: PID 1 announces each step and waits for the go-ahead on the
    // go pipe (`walkthrough.rs`); otherwise it waits there once, below.
    let (pause, go) = match plan.step {
        Some(_) => (go, None),
        None => (None, go),
    };
    let reporter = Reporter::new(own(fds.report), pause);
    let console = fds.console.map(own);
    // Nothing of pidlab's, or of whoever started it, leaks into the sandbox:
    // only stdin, stdout, stderr and the descriptors above stay open.
    let keep = [Some(fds.report), Some(fds.pidlab), fds.go, fds.console];
    // SAFETY: PID 1 ends in execve or exit_now (a panic too: `sys::spawn`
    // catches it), so the owners of what is closed here, our parent's
    // `OwnedFd`s in frames PID 1 never returns to, are never used or dropped.
    let close = || unsafe { sys::close_fds_except(&keep.iter().flatten().copied().collect::<Vec<_>>()) };
    reporter.run(Step::PreparePid1, || close().doing(|| "close_range".into()));
    reporter.run(Step::PreparePid1, || terminal.join().doing(|| "setpgid".into()));
    if !plan.interactive {
        // No -i: stdin is /dev/null, as docker run gives it.
        reporter.run(Step::PreparePid1, || {
            let null = nix::fcntl::open("/dev/null", OFlag::O_RDONLY, nix::sys::stat::Mode::empty());
            null.and_then(nix::unistd::dup2_stdin).doing(|| "stdin from /dev/null".into())
        });
    }
    reporter.run(Step::PreparePid1, || pidns::die_with_parent(&pidlab));
    drop(pidlab);
    if let Some(go) = go {
        // Before any step that can fail: a failure must reach the user,
        // not wait behind a tracer that cannot start.
        reporter.run(Step::PreparePid1, || pidns::wait_for_go(go));
    }
    reporter.run(Step::MountNamespace, rootfs::new_mount_namespace);
    reporter.run(Step::PrivateMounts, rootfs::make_private);
    reporter.run(Step::BuildRoot, || root.build());
    // Before the root switch: with pivot_root the host's /proc disappears,
    // and in a user namespace the kernel only allows a new procfs while a
    // fully visible one exists in the mount namespace.
    let (proc, dev_null) = (root.path().join("proc"), root.path().join("dev/null"));
    reporter.run(Step::MountProc, || rootfs::mount_proc(&proc, plan.system_paths, &dev_null));
    reporter.run(Step::SwitchRoot, || root.switch(plan.pivot_root));
    let reporter = pidns::nest(plan.nest, plan.system_paths, reporter);
    if let Some(console) = console {
        // In the innermost level, where the workload runs.
        reporter.run(Step::Terminal, || console::attach(console));
    }
    // After every mount of pidlab's own, and while PID 1 still holds
    // CAP_SYS_ADMIN, which installing a filter requires (without it, only
    // a process that set no_new_privs may, which Docker does not set).
    reporter.run(Step::Seccomp, || {
        seccomp::install(plan.seccomp.as_ref()).doing(|| "seccomp(SECCOMP_SET_MODE_FILTER)".into())
    });
    reporter.run(Step::DropCapabilities, || plan.capabilities.apply(&plan.user));
    reporter
        .run(Step::ResetSignals, || signals::reset_to_defaults().doing(|| "sigaction/sigprocmask".into()));
    reporter.announce(Step::Exec);
    let err = exec(plan);
    reporter.fail(Step::Exec, &err)
}

/// Step 14: become the workload. On success this never returns, and the
/// close-on-exec report pipe tells the parent all went well.
fn exec(plan: &Plan) -> StepError {
    let program = match find_program(&plan.launch.argv[0], &plan.path) {
        Ok(program) => program,
        Err(errno) => return StepError::new(errno, describe_program(plan)),
    };
    let Err(errno) = execve(&program, &plan.argv, &plan.env);
    StepError::new(errno, describe_program(plan))
}

/// execvp(3) would search the PATH of *pidlab's* environment; a container
/// runtime searches the workload's, inside the new root.
pub fn find_program(name: &str, path: &str) -> Result<CString, nix::errno::Errno> {
    use nix::errno::Errno;
    use nix::unistd::{AccessFlags, access};
    let to_c = |s: &str| CString::new(s).map_err(|_| Errno::EINVAL);
    if name.contains('/') {
        return to_c(name);
    }
    let mut found_but_not_executable = false;
    for dir in path.split(':').filter(|d| !d.is_empty()) {
        let candidate = format!("{dir}/{name}");
        if Path::new(&candidate).is_file() {
            if access(candidate.as_str(), AccessFlags::X_OK).is_ok() {
                return to_c(&candidate);
            }
            found_but_not_executable = true;
        }
    }
    Err(if found_but_not_executable { Errno::EACCES } else { Errno::ENOENT })
}
