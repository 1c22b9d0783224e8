//! The plan of a sandbox: everything `pidlab run` decides from its command
//! line (and a Dockerfile) before any namespace exists — the argv and who
//! will be PID 1, the environment, the root, how to stop it — and the
//! messages that explain a failed launch in those terms.

use std::ffi::CString;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::RunArgs;
use crate::record::{self, Process, Record, RecordedUser};
use crate::runtime::dockerfile::Dockerfile;
use crate::runtime::environment::Environment;
use crate::runtime::launch::{DEFAULT_SHELL, Image, Launch, Overrides, Pid1, parse_form, parse_shell};
use crate::runtime::pidns::MAX_NEST;
use crate::runtime::rootfs::{PIDLAB_DIR, SystemPaths, Volume};
use crate::runtime::seccomp;
use crate::runtime::supervisor::Stop;
use crate::runtime::user::{self, User};
use crate::signals;

mod failure;
mod options;

pub use failure::{classify, describe_program};
use options::{command_line_entrypoint, init_argv, security_options};

/// Docker's default PATH; pidlab adds the directory where it appears inside.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Everything the sandbox needs, decided before any namespace exists.
pub struct Plan {
    pub launch: Launch,
    pub argv: Vec<CString>,
    pub env: Vec<CString>,
    /// The environment from PATH, the image's ENV, --env-file and -e, before
    /// the HOME and TERM PID 1 gets when none of them set those.
    pub configured_env: Vec<String>,
    pub path: String,
    pub workdir: String,
    /// Who the workload runs as (`-u`, Dockerfile USER; default root).
    pub user: User,
    pub nest: u32,
    /// `--pid`: a new PID namespace (the default), another sandbox's, or the host's.
    pub pid_namespace: PidNamespace,
    pub rootless: bool,
    /// `-d`: a shim supervises it and its state stays until `pidlab rm`.
    pub detached: bool,
    /// `-i`: the workload reads our stdin (else /dev/null).
    pub interactive: bool,
    /// `-t`: the workload gets a pseudo-terminal of the sandbox's own.
    pub tty: bool,
    /// `--step`: show the recipe one step at a time (`walkthrough.rs`).
    pub step: Option<crate::runtime::walkthrough::Pace>,
    /// `--trace`: follow the sandbox's signals with `pidlab trace`.
    pub trace: bool,
    /// `--svg FILE` with `--trace`: where the tracer draws its picture.
    pub trace_svg: Option<std::path::PathBuf>,
    /// `--explain`: predict each signal's fate before sending it.
    pub explain: bool,
    pub pivot_root: bool,
    pub volumes: Vec<Volume>,
    pub stop: Stop,
    /// The capabilities the workload keeps (step 12).
    pub capabilities: crate::runtime::capabilities::Capabilities,
    /// `--security-opt seccomp=...`, and the filter it gives (step 11).
    pub seccomp_mode: seccomp::Mode,
    pub seccomp: Option<seccomp::Program>,
    /// `--security-opt systempaths=...`: Docker's read-only and hidden /proc paths.
    pub system_paths: SystemPaths,
    /// `-d`: the most each of the log's two files holds (`logfile.rs`).
    pub log_max_size: u64,
}

/// The largest Dockerfile pidlab reads. Real ones are a few KiB; without a
/// bound, `-f /dev/zero` would be read until memory ran out.
const MAX_DOCKERFILE: u64 = 1 << 20;

/// Read `-f FILE`, at most `MAX_DOCKERFILE` bytes.
fn read_dockerfile(path: &std::path::Path) -> Result<String> {
    use std::io::Read;
    let file = std::fs::File::open(path)
        .with_context(|| format!("-f {}: cannot read the Dockerfile", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_DOCKERFILE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("-f {}: cannot read the Dockerfile", path.display()))?;
    if bytes.len() as u64 > MAX_DOCKERFILE {
        bail!("-f {}: a Dockerfile may be at most 1 MiB, and this one is longer", path.display());
    }
    String::from_utf8(bytes)
        .with_context(|| format!("-f {}: the Dockerfile is not UTF-8 text", path.display()))
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
            let text = read_dockerfile(path)?;
            let file = Dockerfile::parse(&text, &image).with_context(|| format!("-f {}", path.display()))?;
            if !file.not_applied.is_empty() {
                let list: Vec<String> =
                    file.not_applied.iter().map(|(l, i)| format!("{i} (line {l})")).collect();
                say!(
                    "pidlab: not applied (pidlab builds no image and runs none: it takes a Dockerfile's run settings only): {}",
                    list.join(", ")
                );
            }
            image = file.image;
        }
        let overrides = Overrides {
            entrypoint: args.entrypoint.as_deref().map(command_line_entrypoint).transpose()?,
            cmd: args.cmd.as_deref().map(parse_form).transpose()?.flatten(),
            args: args.args.clone(),
        };
        let stop_signal = match &args.stop_signal {
            Some(text) => signals::parse_number(text).context("--stop-signal")?,
            None => image.stop_signal.unwrap_or(libc::SIGTERM),
        };
        let mut launch = Launch::resolve(&image, &overrides)?;
        // Docker would fail at exec with `exec: "": executable file not found`.
        if launch.argv[0].is_empty() {
            bail!(
                "the program to run is an empty string ({}): name a program, e.g. --cmd '[\"sleep\", \"1\"]'",
                serde_json::to_string(&launch.argv).expect("strings serialise")
            );
        }
        if let Some(init) = &args.init {
            launch = launch.with_init(&init_argv(init, args, stop_signal)?);
        }

        // Refuse a depth the kernel would refuse. Knowing our own depth
        // costs a read of /proc/self/status (about 0.05 ms, at every start),
        // so only when --nest asks for more than one level: one level fails
        // only 32 deep, where the kernel's ENOSPC, translated, says the same.
        let level = if args.nest > 1 { crate::procfs::current_level()? } else { 0 };
        if level + args.nest > MAX_NEST {
            bail!(
                "--nest {}: this process is already {level} PID namespace(s) deep, and the kernel allows \
                 at most {MAX_NEST} below the initial one (MAX_PID_NS_LEVEL); use --nest {} or less",
                args.nest,
                MAX_NEST - level
            );
        }

        let stop = Stop::new(stop_signal, args.stop_timeout, args.stop_after);

        let rootless = args.rootless || !nix::unistd::geteuid().is_root();
        let user = match args.user.as_deref().or(image.user.as_deref()) {
            None => User::root(),
            Some(spec) => {
                let root = args.rootfs.as_deref().unwrap_or(Path::new("/"));
                let user = User::resolve(
                    spec,
                    user::read_root_file(root, "passwd").as_deref(),
                    user::read_root_file(root, "group").as_deref(),
                )?;
                if rootless && (user.uid != 0 || user.gid != 0) {
                    bail!(
                        "--user {spec:?}: a rootless sandbox maps only your own user (as root inside), so \
                         uid {} and gid {} do not exist in it; run pidlab as root to use --user",
                        user.uid,
                        user.gid
                    );
                }
                user
            }
        };

        // The image's ENV, then --env-file, then -e, merged by key.
        let mut env = Environment::default();
        env.set("PATH", &format!("{PATH}:{PIDLAB_DIR}"));
        for (key, value) in &image.env {
            env.set(key, value);
        }
        for file in &args.env_file {
            env.apply_file(file)?;
        }
        for flag in &args.env {
            env.apply_flag(flag)?;
        }
        // What `pidlab exec` starts from: it adds HOME for its own user.
        let configured_env = env.to_strings();
        env.set_default("HOME", &user.home);
        if let Ok(term) = std::env::var("TERM") {
            env.set_default("TERM", &term);
        }
        let path = env.get("PATH").unwrap_or_default().to_string();

        let workdir = args.workdir.clone().or(image.workdir).unwrap_or_else(|| "/".into());
        if !workdir.starts_with('/') {
            bail!(
                "the working directory {workdir:?} is invalid, it needs to be an absolute path (as docker run -w)"
            );
        }
        let capabilities = crate::runtime::capabilities::plan(&args.cap_add, &args.cap_drop)?;
        let (seccomp_mode, system_paths) = security_options(&args.security_opt)?;
        Ok(Plan {
            argv: to_cstrings(&launch.argv)?,
            env: to_cstrings(&env.to_strings())?,
            configured_env,
            launch,
            path,
            workdir,
            user,
            nest: args.nest,
            pid_namespace: PidNamespace::parse(args.pid.as_deref(), args.nest, rootless)?,
            rootless,
            detached: args.detach,
            interactive: args.interactive,
            tty: args.tty,
            step: match &args.step {
                Some(_) if args.detach => {
                    bail!(
                        "--step shows the setup in this terminal; it does not combine with -d (run it in the foreground)"
                    )
                }
                Some(pace) => Some(crate::runtime::walkthrough::Pace::parse(pace)?),
                None => None,
            },
            trace: args.trace,
            trace_svg: args.svg.clone(),
            explain: args.explain,
            pivot_root: args.pivot_root,
            volumes: args.volumes.iter().map(|v| Volume::parse(v)).collect::<Result<_>>()?,
            stop,
            seccomp: seccomp::program(seccomp_mode, &capabilities.keep),
            seccomp_mode,
            system_paths,
            capabilities,
            log_max_size: args.log_max_size,
        })
    }

    /// What `sandbox.json` says about a sandbox started from this plan.
    pub fn record(&self, name: &str, pid1: nix::unistd::Pid) -> Record {
        let process = |pid: i32| Process::of(pid).unwrap_or(Process { pid, start: 0 });
        Record {
            name: name.to_string(),
            pid1: process(pid1.as_raw()),
            supervisor: process(nix::unistd::getpid().as_raw()),
            created: record::now(),
            detached: self.detached,
            argv: self.launch.argv.clone(),
            pid1_role: format!("{:?}", self.launch.pid1).to_lowercase(),
            nest: self.nest,
            pid_namespace: match &self.pid_namespace {
                PidNamespace::New => "new".to_string(),
                PidNamespace::Container(name) => format!("container:{name}"),
                PidNamespace::Host => "host".to_string(),
            },
            rootless: self.rootless,
            pivot_root: self.pivot_root,
            workdir: self.workdir.clone(),
            stop_signal: signals::name_of(self.stop.signal),
            stop_timeout: self.stop.grace.map(|g| g.as_secs_f64()),
            env: self.configured_env.clone(),
            path: self.path.clone(),
            capabilities: self.capabilities.names(),
            user: RecordedUser {
                uid: self.user.uid,
                gid: self.user.gid,
                groups: self.user.groups.clone(),
                home: self.user.home.clone(),
            },
            seccomp: match self.seccomp_mode {
                seccomp::Mode::Default => "default",
                seccomp::Mode::Unconfined => "unconfined",
            }
            .to_string(),
        }
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
        let seccomp = match self.seccomp_mode {
            seccomp::Mode::Default => "seccomp filter (Docker's default profile, in effect)",
            seccomp::Mode::Unconfined => "no seccomp filter",
        };
        let proc = match self.system_paths {
            SystemPaths::Confined => "/proc with Docker's read-only and hidden paths",
            SystemPaths::Unconfined => "the whole /proc",
        };
        let pid = match &self.pid_namespace {
            PidNamespace::New => format!("{} nested PID namespace(s)", self.nest),
            PidNamespace::Container(name) => {
                format!("{name}'s PID namespace, joined (the argv is one more process there, not its PID 1)")
            }
            PidNamespace::Host => "the host's PID namespace (none of its own; the argv is not PID 1)".into(),
        };
        let ignored = match self.launch.ignored.is_empty() {
            true => String::new(),
            false => format!(
                "note: the ENTRYPOINT is shell form, so the words after its -c string ({}) become $0, $1, ... \
                 of that string, which ignores them: a shell-form ENTRYPOINT ignores CMD and run arguments \
                 (write ENTRYPOINT in exec form, or end it with \"$@\")\n",
                serde_json::to_string(&self.launch.ignored).expect("strings serialise")
            ),
        };
        format!(
            "argv: {argv}\nPID 1: {who}\n{ignored}namespaces: {pid}, a mount namespace{}\n\
             limits: {} capabilities, {seccomp}, {proc}\nstop: {}\n",
            if self.rootless { ", a user namespace" } else { "" },
            self.capabilities.keep.len(),
            self.stop
        )
    }
}

/// Which PID namespace the workload is born in (`--pid`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PidNamespace {
    /// A new one: the workload is its PID 1.
    New,
    /// The running sandbox NAME's: the workload is one more process there.
    Container(String),
    /// The host's: no PID namespace of its own.
    Host,
}

impl PidNamespace {
    fn parse(text: Option<&str>, nest: u32, rootless: bool) -> Result<PidNamespace> {
        let mode = match text {
            None => return Ok(PidNamespace::New),
            Some("host") => PidNamespace::Host,
            Some(other) => match other.strip_prefix("container:") {
                Some(name) if !name.is_empty() => PidNamespace::Container(name.to_string()),
                _ => bail!("--pid {other:?}: use --pid container:NAME (a running sandbox's) or --pid host"),
            },
        };
        if nest > 1 {
            bail!("--pid and --nest do not combine: --nest makes new PID namespaces, --pid joins one");
        }
        if rootless {
            bail!(
                "--pid needs pidlab to run as root: a rootless sandbox's own user namespace has no rights \
                 over another PID namespace"
            );
        }
        Ok(mode)
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
