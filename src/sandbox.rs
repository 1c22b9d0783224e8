//! `pidlab run`: the setup recipe, in kernel order. Read this file first.
//!
//! ```text
//!  host                        │ new PID + mount namespace
//!  pidlab run                  │
//!   1 user namespace (rootless)│
//!   2 unshare(CLONE_NEWPID),   │
//!     fork ───────────────────►│ PID 1
//!     supervise: forward       │  3 die with pidlab (PDEATHSIG)
//!     signals, stop, wait      │  4 unshare(CLONE_NEWNS)
//!     on a pidfd               │  5 make / private
//!                              │  6 build the root (tmpfs + binds)
//!                              │  7 mount /proc
//!                              │  8 chroot or pivot_root
//!                              │  9 nest more PID namespaces (--nest)
//!                              │ 10 reset signal dispositions and mask
//!                              │ 11 execve the workload: it *is* PID 1
//! ```
//!
//! Steps 3 to 11 run in the child; a failure there travels back to the
//! parent through a pipe (`step.rs`) so the user reads which step failed.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::unistd::{ForkResult, execve, pipe2};

use crate::cli::RunArgs;
use crate::exit_code;
use crate::launch::{DEFAULT_SHELL, Dockerfile, Image, Launch, Overrides, Pid1, parse_form, parse_shell};
use crate::pidns::{self, MAX_NEST};
use crate::rootfs::{self, PIDLAB_DIR, Root, RootPlan, Volume};
use crate::signals;
use crate::state::{self, Process, Sandbox};
use crate::step::{Doing, Reporter, Step, StepError};
use crate::supervisor::{self, Stop};
use crate::sys;
use crate::userns;

/// Docker's default PATH; pidlab adds the directory where it appears inside.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the sandbox needs, decided before any namespace exists.
pub struct Plan {
    pub launch: Launch,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    pub path: String,
    pub workdir: String,
    pub nest: u32,
    pub rootless: bool,
    /// `--trace`: follow the sandbox's signals with `pidlab trace`.
    pub trace: bool,
    /// `--explain`: predict each signal's fate before sending it.
    pub explain: bool,
    /// Real root in the initial user namespace: /dev nodes can be made
    /// with mknod instead of bound from the host.
    pub can_mknod: bool,
    pub pivot_root: bool,
    pub volumes: Vec<Volume>,
    pub stop: Stop,
}

pub fn run(args: RunArgs) -> Result<i32> {
    let plan = Plan::new(&args)?;
    if args.dry_run {
        print!("{}", plan.describe());
        return Ok(0);
    }
    let root = RootPlan::new(args.rootfs.as_deref(), plan.volumes.clone())?;
    if args.detach {
        let name = args.name.clone().unwrap_or_else(state::generate_name);
        return detach(&plan, root, Sandbox::claim(&name)?, args.rm);
    }
    // A named foreground sandbox is registered while it runs, so that
    // `pidlab exec`, `stop` and `ps` reach it from another terminal; it
    // leaves no state behind when it ends. An unnamed one could not be
    // addressed anyway, and skips the state files (about 0.5 ms).
    // `--trace` follows the sandbox by name, so it needs one too.
    let name = args.name.clone().or_else(|| args.trace.then(state::generate_name));
    let sandbox = name.as_deref().map(Sandbox::claim).transpose()?;
    let result = root.create().and_then(|root| start(&plan, &root, sandbox.as_ref(), || {}));
    if let Some(sandbox) = sandbox {
        let _ = sandbox.remove();
    }
    result
}

/// `run -d`: fork a shim that supervises the sandbox, return once PID 1 runs.
///
/// The shim (`pidlab:shim`) starts a session of its own (setsid(2)), so it
/// outlives the terminal, writes the workload's output to the log, waits on
/// PID 1 and records how it ended. We wait on a pipe for its word: "ok" once
/// the workload was exec'd, or the setup error.
fn detach(plan: &Plan, root: RootPlan, sandbox: Sandbox, remove_when_done: bool) -> Result<i32> {
    let (ready_rx, ready_tx) = pipe2(OFlag::O_CLOEXEC).context("create the ready pipe")?;
    match sys::fork().context("fork the shim")? {
        ForkResult::Child => {
            drop(ready_rx);
            let code = shim(plan, root, &sandbox, ready_tx, remove_when_done);
            sys::exit_now(code)
        }
        ForkResult::Parent { .. } => {
            drop(ready_tx);
            let mut word = String::new();
            std::io::Read::read_to_string(&mut std::fs::File::from(ready_rx), &mut word)
                .context("read the shim's word")?;
            if word == "ok" {
                println!("{}", sandbox.name);
                return Ok(0);
            }
            let _ = sandbox.remove();
            let (code, message) =
                word.split_once('\t').unwrap_or(("125", "the shim died before PID 1 started"));
            Err(exit_code::Exit {
                code: code.parse().unwrap_or(exit_code::SETUP_FAILED),
                message: message.into(),
            }
            .into())
        }
    }
}

/// The shim's life. Returns its exit code (PID 1's).
fn shim(plan: &Plan, root: RootPlan, sandbox: &Sandbox, ready: OwnedFd, remove_when_done: bool) -> i32 {
    let _ = nix::unistd::setsid();
    let _ = nix::sys::prctl::set_name(c"pidlab:shim");
    let mut ready = Some(ready);
    let result = redirect_output(sandbox).and_then(|()| root.create()).and_then(|root| {
        start(plan, &root, Some(sandbox), || {
            if let Some(pipe) = ready.take() {
                let _ = nix::unistd::write(&pipe, b"ok");
            }
        })
    });
    let code = match result {
        Ok(code) => code,
        Err(err) => {
            let code = exit_code::of_error(&err);
            match ready.take() {
                Some(pipe) => {
                    let _ = nix::unistd::write(&pipe, format!("{code}\t{err:#}").as_bytes());
                }
                None => eprintln!("pidlab: {err:#}"),
            }
            code
        }
    };
    if remove_when_done {
        let _ = sandbox.remove();
    }
    code
}

/// The shim's stdin is /dev/null; stdout and stderr (inherited by the
/// workload) go to the sandbox's log.
fn redirect_output(sandbox: &Sandbox) -> Result<()> {
    use nix::fcntl::{OFlag, open};
    use nix::sys::stat::Mode;
    let null = open("/dev/null", OFlag::O_RDONLY, Mode::empty()).context("open /dev/null")?;
    let log = open(
        &sandbox.log_path(),
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_APPEND,
        Mode::from_bits_truncate(0o600),
    )
    .context("open the log")?;
    nix::unistd::dup2_stdin(&null).context("dup2 stdin")?;
    nix::unistd::dup2_stdout(&log).context("dup2 stdout")?;
    nix::unistd::dup2_stderr(&log).context("dup2 stderr")?;
    Ok(())
}

/// Steps 1 and 2 on the host, then fork: the child runs `pid1`, the parent
/// records the sandbox and supervises it.
fn start(plan: &Plan, root: &Root, sandbox: Option<&Sandbox>, started: impl FnMut()) -> Result<i32> {
    // The tracer is started first: once we have unshared CLONE_NEWPID, every
    // child we fork is born inside the new namespace — it would see none of
    // the host's PIDs. It waits for the sandbox to appear.
    let tracer = match (plan.trace, sandbox) {
        (true, Some(sandbox)) => Some(Tracer::start(&sandbox.name)?),
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

/// `pidlab trace NAME` as a child, its timeline on our stderr; it ends by
/// itself once PID 1 has exited.
struct Tracer {
    child: std::process::Child,
    ready: OwnedFd,
}

impl Tracer {
    fn start(name: &str) -> Result<Tracer> {
        use std::os::fd::AsFd;
        let (ready, ready_tx) = nix::unistd::pipe().context("pipe")?; // inherited by the tracer
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let child = std::process::Command::new(std::env::current_exe()?)
            .args(["trace", name, "--ready-fd", &ready_tx.as_raw_fd().to_string()])
            .stdout(stderr)
            .spawn()
            .context("start pidlab trace")?;
        Ok(Tracer { child, ready })
    }

    /// Wait (at most 5 s) for the tracer's word that tracing is on.
    fn wait_ready(&self) -> Result<()> {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(self.ready.as_fd(), nix::poll::PollFlags::POLLIN)];
        let mut byte = [0u8; 1];
        let polled = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(5000).expect("5 s"));
        if polled.unwrap_or(0) > 0 && nix::unistd::read(&self.ready, &mut byte).unwrap_or(0) == 1 {
            return Ok(());
        }
        bail!("pidlab trace did not start (it needs root and tracefs; see `pidlab doctor`)")
    }

    /// Wait (at most 5 s) for its verdict, then make sure it is gone.
    fn finish(mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Steps 3 to 11, as PID 1 of the new namespace. Never returns: it ends in
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
    reporter.run(Step::BuildRoot, || root.build(plan.can_mknod));
    // Before the root switch: with pivot_root the host's /proc disappears,
    // and in a user namespace the kernel only allows a new procfs while a
    // fully visible one exists in the mount namespace.
    reporter.run(Step::MountProc, || rootfs::mount_proc(&root.path().join("proc")));
    reporter.run(Step::SwitchRoot, || root.switch(plan.pivot_root));
    let reporter = pidns::nest(plan.nest, reporter);
    reporter
        .run(Step::ResetSignals, || signals::reset_to_defaults().doing(|| "sigaction/sigprocmask".into()));
    let err = exec(plan);
    reporter.fail(Step::Exec, &err)
}

/// Step 11: become the workload. On success this never returns, and the
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

fn describe_program(plan: &Plan) -> String {
    let name = &plan.launch.argv[0];
    match plan.launch.pid1 {
        Pid1::Shell => format!("shell {name} (shell form runs SHELL + [string])"),
        Pid1::Init => format!("init {name} (--init)"),
        Pid1::Program => name.to_string(),
    }
}

impl Plan {
    /// Turn the command line into a plan, refusing bad input before anything
    /// is created.
    pub fn new(args: &RunArgs) -> Result<Plan> {
        let shell = match &args.shell {
            Some(text) => parse_shell(text)?,
            None => DEFAULT_SHELL.iter().map(|s| s.to_string()).collect(),
        };
        let mut image = Image::new(shell);
        if let Some(path) = &args.dockerfile {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("-f {}: cannot read the Dockerfile", path.display()))?;
            let file = Dockerfile::parse(&text, &image).with_context(|| format!("-f {}", path.display()))?;
            if !file.not_applied.is_empty() {
                let list: Vec<String> =
                    file.not_applied.iter().map(|(l, i)| format!("{i} (line {l})")).collect();
                eprintln!(
                    "pidlab: not applied, pidlab runs images and does not build them: {}",
                    list.join(", ")
                );
            }
            image = file.image;
        }
        let overrides = Overrides {
            entrypoint: args.entrypoint.as_deref().map(parse_form).transpose()?.flatten(),
            cmd: args.cmd.as_deref().map(parse_form).transpose()?.flatten(),
            args: args.args.clone(),
        };
        let mut launch = Launch::resolve(&image, &overrides)?;
        if let Some(init) = &args.init {
            launch = launch.with_init(&init_argv(init, args)?);
        }

        let level = pidns::current_level()?;
        if level + args.nest > MAX_NEST {
            bail!(
                "--nest {}: this process is already {level} PID namespace(s) deep, and the kernel allows \
                 at most {MAX_NEST} below the initial one (MAX_PID_NS_LEVEL); use --nest {} or less",
                args.nest,
                MAX_NEST - level
            );
        }

        let stop_signal = match &args.stop_signal {
            Some(text) => signals::parse(text).context("--stop-signal")?,
            None => image.stop_signal.unwrap_or(nix::sys::signal::Signal::SIGTERM),
        };
        let stop = Stop::new(stop_signal, args.stop_timeout, args.stop_after)?;

        let path = format!("{PATH}:{PIDLAB_DIR}");
        let mut env = vec![format!("PATH={path}"), "HOME=/root".to_string()];
        if let Ok(term) = std::env::var("TERM") {
            env.push(format!("TERM={term}"));
        }
        env.extend(image.env.iter().map(|(k, v)| format!("{k}={v}")));
        for pair in &args.env {
            if !pair.contains('=') || pair.starts_with('=') {
                bail!("-e {pair:?} is not KEY=VALUE");
            }
            env.push(pair.clone());
        }
        let path = env.iter().rev().find_map(|e| e.strip_prefix("PATH=")).unwrap_or(&path).to_string();

        let rootless = args.rootless || !nix::unistd::geteuid().is_root();
        Ok(Plan {
            argv: to_cstrings(&launch.argv)?,
            env: to_cstrings(&env)?,
            launch,
            path,
            workdir: args.workdir.clone().or(image.workdir).unwrap_or_else(|| "/".into()),
            nest: args.nest,
            rootless,
            trace: args.trace,
            explain: args.explain,
            can_mknod: !rootless && userns::in_initial(),
            pivot_root: args.pivot_root,
            volumes: args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<_>>()?,
            stop,
        })
    }

    /// What `sandbox.json` says about a sandbox started from this plan.
    fn record(&self, name: &str, pid1: nix::unistd::Pid) -> serde_json::Value {
        let process = |pid: i32| Process::of(pid).map_or(serde_json::Value::Null, Process::to_record);
        serde_json::json!({
            "name": name,
            "pid1": process(pid1.as_raw()),
            "supervisor": process(nix::unistd::getpid().as_raw()),
            "created": state::now(),
            "argv": self.launch.argv,
            "pid1_role": format!("{:?}", self.launch.pid1).to_lowercase(),
            "nest": self.nest,
            "rootless": self.rootless,
            "pivot_root": self.pivot_root,
            "workdir": self.workdir,
            "stop_signal": self.stop.signal.as_str(),
            "stop_timeout": self.stop.grace.map(|g| g.as_secs_f64()),
        })
    }

    /// What `--dry-run` prints: the argv and who will be PID 1.
    pub fn describe(&self) -> String {
        let argv = serde_json::to_string(&self.launch.argv).expect("strings serialise");
        let first = &self.launch.argv[0];
        let who = match self.launch.pid1 {
            Pid1::Program => format!("{first}, run directly (exec form)"),
            Pid1::Shell => format!(
                "{first}, the shell of a shell-form command; it stays PID 1 unless it execs the command \
                 (Debian's dash never does; bash and busybox do for a final simple command)"
            ),
            Pid1::Init => format!("{first}, the init given with --init; the workload is its child"),
        };
        format!(
            "argv: {argv}\nPID 1: {who}\nnamespaces: {} nested PID namespace(s), a mount namespace{}\nstop: {}\n",
            self.nest,
            if self.rootless { ", a user namespace" } else { "" },
            self.stop
        )
    }
}

/// What `--init[=...]` puts in front of the workload.
fn init_argv(choice: &str, args: &RunArgs) -> Result<Vec<String>> {
    let builtin = |extra: &[&str]| {
        let mut argv = vec![format!("{PIDLAB_DIR}/pidlab"), "init".to_string()];
        argv.extend(extra.iter().map(|s| s.to_string()));
        if args.init_group {
            argv.push("--group".into());
        }
        if args.init_verbose {
            argv.push("--verbose".into());
        }
        argv
    };
    match choice {
        "tini" => Ok(builtin(&[])),
        "drain" => {
            if args.init_group {
                bail!("--init-group does not apply to --init=drain, which signals every process already");
            }
            let grace = args.stop_timeout.filter(|t| *t >= 0.0).unwrap_or(10.0).to_string();
            Ok(builtin(&["--drain", "--grace", &grace]))
        }
        path if path.starts_with('/') => {
            if args.init_group || args.init_verbose {
                bail!(
                    "--init-group and --init-verbose apply to pidlab's own init (--init or --init=drain), not to {path}"
                );
            }
            Ok(vec![path.to_string()])
        }
        other => bail!(
            "--init={other}: use --init (or --init=tini), --init=drain, or an absolute path in the root such as --init=/usr/bin/tini"
        ),
    }
}

fn to_cstrings(words: &[String]) -> Result<Vec<CString>> {
    words
        .iter()
        .map(|w| {
            CString::new(w.as_str())
                .with_context(|| format!("{w:?} contains a NUL byte, which no argv can hold"))
        })
        .collect()
}

/// Exit code and message for a failure the child reported.
pub fn classify(report: &crate::step::Report, launch: &Launch) -> exit_code::Exit {
    let code = match (report.step, report.errno, &launch.pid1) {
        // A missing shell or init is the setup's fault, not the workload's.
        (Step::Exec, _, Pid1::Shell | Pid1::Init) => exit_code::SETUP_FAILED,
        (Step::Exec, nix::errno::Errno::ENOENT, _) => exit_code::NOT_FOUND,
        (Step::Exec, _, _) => exit_code::NOT_EXECUTABLE,
        _ => exit_code::SETUP_FAILED,
    };
    let mut message = report.to_string();
    if report.step == Step::Exec && report.errno == nix::errno::Errno::ENOENT {
        message.push_str(&match launch.pid1 {
            Pid1::Shell => format!(
                ". The root has no {}: use a root that has it, choose another with --shell, or use exec form (--cmd '[\"prog\", \"arg\"]')",
                launch.argv[0]
            ),
            Pid1::Init => format!(". The root has no {}: give --init a path inside the root", launch.argv[0]),
            Pid1::Program => format!(". {} was not found in the root (PATH is searched inside the root)", launch.argv[0]),
        });
    }
    exit_code::Exit { code, message }
}
