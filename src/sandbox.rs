//! `pidlab run`: the setup recipe, in kernel order. Read this file first.
//!
//! ```text
//!  host                        │ new PID + mount namespace
//!  pidlab run                  │
//!   1 user namespace (rootless)│
//!   2 unshare(CLONE_NEWPID),   │
//!     fork ───────────────────►│ PID 1
//!     supervise: forward       │  3 close inherited fds, die with pidlab (PDEATHSIG)
//!     signals, stop, wait      │  4 unshare(CLONE_NEWNS)
//!     on a pidfd               │  5 make / private
//!                              │  6 build the root (DIR bound, or tmpfs + binds)
//!                              │  7 mount /proc
//!                              │  8 chroot or pivot_root
//!                              │  9 nest more PID namespaces (--nest)
//!                              │ 10 drop capabilities (Docker's set)
//!                              │ 11 reset signal dispositions and mask
//!                              │ 12 execve the workload: it *is* PID 1
//! ```
//!
//! Steps 3 to 12 run in the child; a failure there travels back to the
//! parent through a pipe (`step.rs`) so the user reads which step failed.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, execve, pipe2};

use crate::cli::RunArgs;
use crate::pidns;
use crate::plan::{Plan, describe_program};
use crate::rootfs::{self, Root, RootPlan};
use crate::shim;
use crate::signals;
use crate::state::{self, Sandbox};
use crate::step::{Doing, Reporter, Step, StepError};
use crate::supervisor;
use crate::sys;
use crate::trace;
use crate::userns;

pub fn run(args: RunArgs) -> Result<i32> {
    let plan = Plan::new(&args)?;
    if args.dry_run {
        print!("{}", plan.describe());
        return Ok(0);
    }
    let root = RootPlan::new(args.rootfs.as_deref(), plan.volumes.clone())?;
    if args.detach {
        let name = args.name.clone().unwrap_or_else(state::generate_name);
        return shim::detach(&plan, root, Sandbox::claim(&name)?, args.rm);
    }
    // A named foreground sandbox is registered while it runs, so that
    // `pidlab exec`, `stop` and `ps` reach it from another terminal; it
    // leaves no state behind when it ends. An unnamed one could not be
    // addressed anyway, and skips the state files (about 0.5 ms).
    // `--trace` follows the sandbox by name, so it needs one too.
    let name = args.name.clone().or_else(|| args.trace.then(state::generate_name));
    let sandbox = name.as_deref().map(Sandbox::claim).transpose()?;
    let result = root.create().and_then(|root| start(&plan, &root, sandbox.as_ref(), None));
    if let Some(sandbox) = sandbox {
        let _ = sandbox.remove();
    }
    result
}

/// Steps 1 and 2 on the host, then fork: the child runs `pid1`, the parent
/// records the sandbox and supervises it.
pub fn start(
    plan: &Plan,
    root: &Root,
    sandbox: Option<&Sandbox>,
    started: Option<&mut dyn FnMut()>,
) -> Result<i32> {
    // The tracer is started first: once we have unshared CLONE_NEWPID, every
    // child we fork is born inside the new namespace — it would see none of
    // the host's PIDs. It waits for the sandbox to appear.
    let tracer = match (plan.trace, sandbox) {
        (true, Some(sandbox)) => Some(trace::Follower::start(&sandbox.name)?),
        _ => None,
    };
    let (report_rx, report_tx) = pipe2(OFlag::O_CLOEXEC).context("create the report pipe")?;
    let (go_rx, go_tx) = pipe2(OFlag::O_CLOEXEC).context("create the go pipe")?;
    // Block the signals we forward before forking, so none that arrives
    // while the child starts is lost; the child unblocks them (step 10).
    signals::proxied().thread_block().context("block forwarded signals")?;

    if plan.rootless {
        userns::enter()?; // 1: a user namespace, in which we are root
    }
    if let Err(errno) = pidns::unshare_for_children() {
        // 2: our next child is PID 1 of a new namespace
        let hint = crate::step::hint(Step::PidNamespace, errno).unwrap_or("see unshare(2)");
        bail!("{}: unshare(CLONE_NEWPID): {errno} — {hint}", Step::PidNamespace);
    }
    let child = match sys::fork() {
        Ok(ForkResult::Child) => {
            drop(report_rx);
            drop(go_tx);
            pid1(plan, root, Reporter::new(report_tx), go_rx)
        }
        Ok(ForkResult::Parent { child }) => child,
        Err(errno) => bail!("{}: fork: {errno}", Step::PidNamespace),
    };
    drop(report_tx);
    drop(go_rx);
    if let Some(sandbox) = sandbox {
        sandbox.write("sandbox.json", &plan.record(&sandbox.name, child))?;
    }
    // PID 1 waits for our go-ahead (step 3), so the tracer is on before
    // the workload runs: it misses nothing.
    if let Some(tracer) = &tracer {
        tracer.wait_ready()?;
    }
    let result = supervisor::supervise(child, go_tx, report_rx, plan, sandbox, started);
    if let Some(tracer) = tracer {
        tracer.finish();
    }
    result
}

/// Steps 3 to 12, as PID 1 of the new namespace. Never returns: it ends in
/// `execve` or in `_exit` after reporting the step that failed.
fn pid1(plan: &Plan, root: &Root, reporter: Reporter, go: OwnedFd) -> ! {
    // Nothing of pidlab's, or of whoever started it, leaks into the sandbox:
    // only stdin, stdout, stderr and our two pipes stay open.
    reporter.run(Step::ParentDeath, || {
        sys::close_fds_except(&[reporter.raw_fd(), go.as_raw_fd()]).doing(|| "close_range".into())
    });
    reporter.run(Step::ParentDeath, || pidns::die_with_parent(go));
    reporter.run(Step::MountNamespace, rootfs::new_mount_namespace);
    reporter.run(Step::PrivateMounts, rootfs::make_private);
    reporter.run(Step::BuildRoot, || root.build());
    // Before the root switch: with pivot_root the host's /proc disappears,
    // and in a user namespace the kernel only allows a new procfs while a
    // fully visible one exists in the mount namespace.
    reporter.run(Step::MountProc, || rootfs::mount_proc(&root.path().join("proc")));
    reporter.run(Step::SwitchRoot, || root.switch(plan.pivot_root));
    let reporter = pidns::nest(plan.nest, reporter);
    reporter.run(Step::DropCapabilities, || plan.capabilities.apply());
    reporter
        .run(Step::ResetSignals, || signals::reset_to_defaults().doing(|| "sigaction/sigprocmask".into()));
    let err = exec(plan);
    reporter.fail(Step::Exec, &err)
}

/// Step 12: become the workload. On success this never returns, and the
/// close-on-exec report pipe tells the parent all went well.
fn exec(plan: &Plan) -> StepError {
    if let Err(err) = nix::unistd::chdir(plan.workdir.as_str()) {
        return StepError::new(err, format!("chdir to the working directory {}", plan.workdir));
    }
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
