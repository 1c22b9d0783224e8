//! The command line. The doc comments below are the `--help` text.
//!
//! Every number is checked here, before anything starts: seconds by
//! `duration.rs` (0 to one week; -1 = forever for stop timeouts), sizes and
//! counts by the parsers at the end. A value out of range is bad usage:
//! exit 125, with the range in the message.
//!
//! Every verb that reports takes `--format json`, with one convention for
//! all of them (README, "JSON output"): `output.rs` prints it. Colour
//! (clap's in help and usage errors, `lesson show`'s headings) appears only
//! on a terminal and never when `NO_COLOR` is set (`output::colour`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::duration::{Seconds, StopTimeout};

/// pidlab: build Linux PID namespaces from scratch and watch the life of PID 1.
#[derive(Debug, Parser)]
#[command(name = "pidlab", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
#[command(defer = true)]
pub enum Command {
    /// Run a workload as PID 1 of a new PID namespace, with its own root and /proc.
    #[command(after_help = RUN_EXAMPLES)]
    Run(Box<RunArgs>),
    /// The built-in workload: report PIDs, catch or ignore signals, leave orphans.
    Probe(ProbeArgs),
    /// The built-in init, usable as PID 1 under any runtime, like `tini -- CMD`.
    Init(InitArgs),
    /// List sandboxes (running ones; -a for all).
    #[command(after_help = PS_EXAMPLES)]
    Ps(PsArgs),
    /// Show a sandbox: its processes, how it ended, the plan it was started with.
    ///
    /// While it runs: every process, with its PIDs at every level, state, signal
    /// dispositions, capabilities and seccomp filter. Once it has exited: its exit code,
    /// the signal that killed it, when. Always: the plan from its record (argv, who is
    /// PID 1, stop signal and timeout, capabilities, seccomp, root).
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),
    /// Run a command inside a running sandbox (its PID and mount namespaces, its root).
    #[command(after_help = EXEC_EXAMPLES)]
    Exec(ExecArgs),
    /// Stop sandboxes as `docker stop` does: stop signal, grace period, then SIGKILL.
    #[command(after_help = STOP_EXAMPLES)]
    Stop(StopArgs),
    /// Send a signal to sandboxes' PID 1 (default SIGKILL), as `docker kill` does.
    #[command(after_help = KILL_EXAMPLES)]
    Kill(KillArgs),
    /// Wait until sandboxes exit; print each one's exit code, and exit with the last.
    #[command(after_help = WAIT_EXAMPLES)]
    Wait(WaitArgs),
    /// Stop detached sandboxes (if they run) and start them again.
    ///
    /// The command line that first started each one runs again, from the same directory,
    /// under the same name; its old record and log are removed first.
    #[command(after_help = RESTART_EXAMPLES)]
    Restart(RestartArgs),
    /// Print a detached sandbox's output (what its capped log still holds).
    #[command(after_help = LOGS_EXAMPLES)]
    Logs(LogsArgs),
    /// Remove sandboxes' state (-f: kill them first if they run).
    #[command(after_help = RM_EXAMPLES)]
    Rm(RmArgs),
    /// Predict, per process, what a signal sent now from the host would do, and why.
    #[command(after_help = EXPLAIN_EXAMPLES)]
    Explain(ExplainArgs),
    /// The kernel's step-by-step record of every signal to the sandbox (root only).
    Trace(TraceArgs),
    /// Workshop lessons: list, show, hint, check your exercise.
    Lesson(LessonArgs),
    /// Try each setup step on this machine; say what blocks it and how to fix it.
    Doctor(DoctorArgs),
    /// Print a completion script for a shell.
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
    /// Print pidlab's manual page (roff), for man(1).
    #[command(after_help = MAN_EXAMPLES)]
    Man,
}

// Examples under each verb's --help, from the README's tour.
const RUN_EXAMPLES: &str = "Examples:
  pidlab run -- sh -c 'echo $$'                 # prints 1
  pidlab run --cmd 'sleep 100'                  # shell form: /bin/sh -c 'sleep 100'
  pidlab run --cmd '[\"sleep\", \"100\"]'         # exec form: sleep is PID 1
  pidlab run --nest 3 -- pidlab probe           # PID 1 of the third nested namespace
  pidlab run --init -- ps -e -o pid,comm        # 1 pidlab:init, 2 ps
  pidlab run -d --name web --cmd 'pidlab probe --on-term-save /tmp/s'

pidlab runs no images: give a prepared root with --rootfs DIR (rootfs-scripts/ build them).";
const PS_EXAMPLES: &str = "Examples:
  pidlab ps                                     # NAME STATE HOST PID NEST AGE COMMAND
  pidlab ps -a -q --filter status=exited        # names of the exited ones
  pidlab ps --filter name=web --format json";
const INSPECT_EXAMPLES: &str = "Examples:
  pidlab inspect web                            # every process: PIDs per level, signals, caps
  pidlab inspect web --format json";
const EXEC_EXAMPLES: &str = "Examples:
  pidlab exec web ps -ef                        # sh is PID 1, the probe PID 2, ps PID 3
  pidlab exec -e DEBUG=1 -w /tmp web sh";
const STOP_EXAMPLES: &str = "Examples:
  pidlab stop -t 2 web                          # SIGTERM, then SIGKILL after 2 s
  pidlab stop -s SIGINT web db";
const KILL_EXAMPLES: &str = "Examples:
  pidlab kill web                               # SIGKILL, as docker kill
  pidlab kill -s USR1 web db";
const WAIT_EXAMPLES: &str = "Examples:
  pidlab wait web                               # prints 143 after `pidlab stop web`, exits 143
  pidlab wait web db";
const RESTART_EXAMPLES: &str = "Examples:
  pidlab restart web                            # stop (SIGTERM, grace, SIGKILL), then run it again
  pidlab restart -t 0 web db";
const LOGS_EXAMPLES: &str = "Examples:
  pidlab logs web
  pidlab logs -n 20 -f web                      # the last 20 lines, then follow
  pidlab logs --wait-for ready web              # until the service says it is ready
  pidlab logs -t --since 10m web                # the last ten minutes, each line's time";
const RM_EXAMPLES: &str = "Examples:
  pidlab rm web
  pidlab rm -f web db                           # kill them first if they run
  pidlab rm --all                               # every sandbox that has exited
  pidlab rm -f --all                            # every sandbox of yours: a clean slate";
const EXPLAIN_EXAMPLES: &str = "Examples:
  pidlab explain web SIGTERM                    # prediction, per process, from /proc
  pidlab explain --to-all web TERM";
const COMPLETIONS_EXAMPLES: &str = "Examples:
  source <(pidlab completions bash)
  pidlab completions zsh > ~/.zfunc/_pidlab
  pidlab completions fish > ~/.config/fish/completions/pidlab.fish";
const MAN_EXAMPLES: &str = "Examples:
  pidlab man | man -l -
  pidlab man > /usr/local/share/man/man1/pidlab.1";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Only try to create a tracefs instance (the doctor runs this in a child).
    #[arg(long, hide = true)]
    pub tracefs: bool,
}

#[derive(Debug, Args)]
pub struct LessonArgs {
    #[command(subcommand)]
    pub command: LessonCommand,
}

#[derive(Debug, Subcommand)]
pub enum LessonCommand {
    /// List the lessons.
    List,
    /// Print a lesson.
    Show { number: u32 },
    /// Progressive hints for a lesson's exercise (LEVEL 1, 2, ...).
    Hint {
        number: u32,
        #[arg(default_value = "1")]
        level: u32,
        /// Hints for the lesson's stretch exercise instead.
        #[arg(long)]
        stretch: bool,
    },
    /// Check your exercise file (exit 0 when it passes); a pass is recorded
    /// for `lesson status`.
    Check {
        number: u32,
        file: PathBuf,
        /// Check the lesson's stretch exercise (its `stretch.sh`) instead.
        #[arg(long)]
        stretch: bool,
    },
    /// Which exercise checks you have passed (kept in pidlab's state
    /// directory, private to you).
    Status {
        /// Output format: a table, or one JSON object (to collect a room's
        /// progress).
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Forget which checks you passed (removes only that record: your
    /// exercise files and sandboxes stay).
    Reset,
    /// Print the facilitator's guide: agenda, talking points, getting-unstuck
    /// card, answer key.
    Guide,
    /// Write every lesson, starter file and solution under DIR/lessons/, so
    /// that the pidlab binary alone is enough (no repository needed).
    Export { dir: PathBuf },
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The sandbox.
    pub name: String,
    /// The signal, e.g. SIGTERM, TERM or 15.
    pub signal: String,
    /// Predict for a signal sent to every process, not only PID 1.
    #[arg(long = "to-all")]
    pub to_all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct TraceArgs {
    pub name: String,
    /// Write one byte to this file descriptor once tracing is on (for `run --trace`).
    #[arg(long, hide = true, value_name = "FD")]
    pub ready_fd: Option<i32>,
    /// Output format: a numbered timeline, or one JSON object per event.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Also draw the trace as a sequence diagram in FILE (SVG), once the trace
    /// ends: a lifeline per process, an arrow per signal (root only).
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show exited and dead sandboxes too.
    #[arg(short, long)]
    pub all: bool,
    /// Print the names alone, one a line.
    #[arg(short, long)]
    pub quiet: bool,
    /// Keep only the sandboxes that match: name=TEXT (the name contains TEXT) or
    /// status=STATE (starting, running, stopping, orphaned, exiting, exited, dead).
    /// Repeated, all must match.
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_filter)]
    pub filter: Vec<Filter>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

/// A `ps --filter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// The name contains this text.
    Name(String),
    /// The state is this word (`Status::word`).
    Status(String),
}

/// The states `ps --filter status=` accepts: `Status::word`'s words.
pub const STATES: [&str; 7] = ["starting", "running", "stopping", "orphaned", "exiting", "exited", "dead"];

fn parse_filter(text: &str) -> Result<Filter, String> {
    match text.split_once('=') {
        Some(("name", name)) => Ok(Filter::Name(name.to_string())),
        Some(("status", state)) if STATES.contains(&state) => Ok(Filter::Status(state.to_string())),
        Some(("status", state)) => Err(format!("no state {state:?}: use one of {}", STATES.join(", "))),
        _ => Err(format!("{text:?} is not a filter pidlab knows: use name=TEXT or status=STATE")),
    }
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The sandbox (running or exited).
    pub name: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The running sandbox to enter.
    pub name: String,
    /// With --nest N: the PID namespace level to enter, 1 (outermost) to N
    /// (default N, the workload's own).
    #[arg(long, value_name = "K")]
    pub level: Option<u32>,
    /// Set an environment variable (KEY=VALUE, or KEY for this shell's value),
    /// merged over the sandbox's, as docker exec -e.
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,
    /// Read environment variables from FILE (docker's --env-file format).
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside (default: the sandbox's).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,
    /// Run as USER[:GROUP], names from the sandbox's /etc/passwd and /etc/group
    /// (default: the sandbox's user).
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,
    /// Detach: start the command and return at once; its output is discarded.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Keep stdin open for the command, as docker exec -i (else /dev/null).
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give the command a terminal of the sandbox's own, as docker exec -t.
    #[arg(short = 't', long)]
    pub tty: bool,
    /// The command to run inside.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    /// The sandboxes to stop, one after the other.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Seconds to wait after the stop signal before SIGKILL (default: the sandbox's
    /// --stop-timeout, else 10; 0 = at once; -1 = wait forever; at most 604800, a week).
    #[arg(short = 't', long = "timeout", value_name = "SECS", allow_negative_numbers = true,
          value_parser = StopTimeout::parse)]
    pub timeout: Option<StopTimeout>,
    /// The stop signal (default: the sandbox's --stop-signal / STOPSIGNAL, else SIGTERM).
    #[arg(short = 's', long = "signal", value_name = "SIG")]
    pub signal: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    /// The sandboxes whose PID 1 gets the signal.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// The signal to send.
    #[arg(short = 's', long = "signal", value_name = "SIG", default_value = "SIGKILL")]
    pub signal: String,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The sandboxes to wait for, one after the other.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    /// The detached sandboxes to restart, one after the other.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
    /// Seconds to wait after the stop signal before SIGKILL, as `stop -t`.
    #[arg(short = 't', long = "timeout", value_name = "SECS", allow_negative_numbers = true,
          value_parser = StopTimeout::parse)]
    pub timeout: Option<StopTimeout>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The detached sandbox whose output to print.
    pub name: String,
    /// Keep printing new output until the sandbox exits.
    #[arg(short, long)]
    pub follow: bool,
    /// Print only the last N lines (then follow, with -f).
    #[arg(short = 'n', long = "tail", value_name = "N")]
    pub tail: Option<u64>,
    /// Follow until a line containing TEXT appears, then stop (exit 1 if it never does):
    /// wait until a service says it is ready.
    #[arg(long, value_name = "TEXT")]
    pub wait_for: Option<String>,
    /// Show each line's time (RFC 3339, UTC, nanoseconds), as docker logs -t.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Only lines written since TIME: a duration back from now (10m, 1h30m), a Unix
    /// time, or an RFC 3339 time with its zone (2026-11-29T07:48:03Z).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only lines written before TIME (same forms as --since); with -f, stop following
    /// then.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// With --wait-for: give up after SECS (at most 604800, a week).
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true,
          value_parser = Seconds::parse)]
    pub timeout: Seconds,
    /// Output format: the output as it is (the workload's stderr on stderr), or one
    /// JSON object per line (name, stream, time, line).
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// The sandboxes to remove.
    #[arg(required_unless_present = "all", conflicts_with = "all", value_name = "NAME")]
    pub names: Vec<String>,
    /// Every sandbox `pidlab ps -a` lists: the exited ones, and with -f the
    /// running ones too (without -f each running one is refused, as by name).
    #[arg(short, long)]
    pub all: bool,
    /// Kill a sandbox first if it is running.
    #[arg(short, long)]
    pub force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Root filesystem to run in. Default: a root made, on a tmpfs only the
    /// sandbox sees, of the host's /usr, /bin, /sbin, /lib*, /etc (read-only)
    /// with a writable /tmp and /data.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,

    /// Switch root with pivot_root(2) and detach the old root, instead of chroot(2).
    #[arg(long)]
    pub pivot_root: bool,

    /// Number of nested PID namespaces (1 to 32). The workload is PID 1 of the innermost.
    #[arg(long, default_value = "1", value_name = "N", value_parser = parse_nest)]
    pub nest: u32,

    /// The shell for shell-form commands: a program (/bin/bash, "/bin/busybox sh"),
    /// to which -c is added, or a JSON array like Dockerfile SHELL ["/bin/bash", "-c"].
    #[arg(long, value_name = "SH")]
    pub shell: Option<String>,

    /// CMD as a Dockerfile writes it: a JSON array is exec form, anything else shell form.
    #[arg(long, value_name = "SPEC")]
    pub cmd: Option<String>,

    /// The program to run instead of the Dockerfile's ENTRYPOINT, as docker run
    /// --entrypoint: one executable, its arguments after -- or in --cmd; it
    /// clears the Dockerfile's CMD. '' clears ENTRYPOINT too. (Dockerfile syntax
    /// belongs in an ENTRYPOINT line of -f FILE.)
    #[arg(long, value_name = "PROG")]
    pub entrypoint: Option<String>,

    /// Read CMD, ENTRYPOINT, SHELL, STOPSIGNAL, ENV, WORKDIR and USER from a Dockerfile
    /// (at most 1 MiB).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,

    /// Put an init in front of the workload, as PID 1: `--init` (pidlab's own init,
    /// with tini's contract; also `--init=pidlab`), `--init=drain` (pidlab's, forwarding
    /// the stop signal to every process and leaving when all have left), `--init=tini` or
    /// `--init=dumb-init` (those programs, from the root's PATH), or `--init=PATH` (any
    /// program in the root). Each runs as INIT -- CMD..., as `docker run --init` runs
    /// docker-init, which is tini.
    #[arg(long, value_name = "pidlab|drain|tini|dumb-init|PATH", num_args = 0..=1,
          require_equals = true, default_missing_value = "pidlab")]
    pub init: Option<String>,

    /// With the init: forward signals to the workload's process group (pidlab's init
    /// --group, tini -g; dumb-init always does).
    #[arg(long, requires = "init")]
    pub init_group: bool,

    /// With the init: narrate each signal forwarded and child reaped, on stderr
    /// (tini -v, dumb-init --verbose).
    #[arg(long, requires = "init")]
    pub init_verbose: bool,

    /// Signal that stops the sandbox (default SIGTERM, or the Dockerfile's STOPSIGNAL).
    #[arg(long, value_name = "SIG")]
    pub stop_signal: Option<String>,

    /// Seconds between the stop signal and SIGKILL (default 10, like docker stop;
    /// 0 = SIGKILL at once; -1 = wait forever; at most 604800, a week).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = StopTimeout::parse)]
    pub stop_timeout: Option<StopTimeout>,

    /// Stop the sandbox after SECS seconds, as `docker stop` would (at most 604800, a week).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = Seconds::parse)]
    pub stop_after: Option<Seconds>,

    /// The PID namespace, as docker run --pid: `container:NAME` joins a running
    /// sandbox's (its processes are visible, and die with its PID 1), `host` uses
    /// the host's (no new one). Default: a new one.
    #[arg(long, value_name = "container:NAME|host")]
    pub pid: Option<String>,

    /// Create a user namespace first, mapping you to root inside
    /// (automatic when you are not root).
    #[arg(long)]
    pub rootless: bool,

    /// Capabilities to add to Docker's default set (names like SYS_ADMIN, or ALL).
    #[arg(long, value_name = "CAP,...")]
    pub cap_add: Vec<String>,

    /// Capabilities to drop from Docker's default set (names, or ALL).
    #[arg(long, value_name = "CAP,...")]
    pub cap_drop: Vec<String>,

    /// Turn off a confinement, with Docker's spelling: `seccomp=unconfined` (no
    /// system-call filter) or `systempaths=unconfined` (no read-only or hidden
    /// /proc paths). Repeat the flag for both.
    #[arg(long, value_name = "OPT")]
    pub security_opt: Vec<String>,

    /// Set an environment variable inside: KEY=VALUE, or KEY to pass this
    /// shell's value (left out if unset). Merged by key, as docker run: -e wins
    /// over --env-file, which wins over the Dockerfile's ENV.
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from FILE: one KEY=VALUE (or KEY) per line,
    /// `#` comments; values are taken literally, as docker run --env-file.
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Run as USER[:GROUP] (names or numbers; names from the root's /etc/passwd
    /// and /etc/group), as docker run -u. Default: root, or the Dockerfile's USER.
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Bind-mount a host directory into the sandbox (HOST:PATH[:ro]).
    #[arg(short = 'v', long = "volume", value_name = "HOST:PATH")]
    pub volumes: Vec<String>,

    /// Working directory inside (default /, or the Dockerfile's WORKDIR).
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Run detached: print the sandbox's name once PID 1 runs, and return.
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Keep stdin open for the workload, as docker run -i (without it, the
    /// workload reads /dev/null). On a terminal, the workload then gets the
    /// terminal itself, and Ctrl-C goes to it, not through pidlab.
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Give the workload a terminal of its own, as docker run -t: a pseudo-terminal
    /// from the sandbox's /dev/pts (with -i, your keys go to it: -it for a shell
    /// where Ctrl-C, Ctrl-Z and fg work inside).
    #[arg(short = 't', long)]
    pub tty: bool,

    /// With -d: the most the log file may hold (like docker's --log-opt max-size),
    /// 4k to 1g (k, m, g: KiB, MiB, GiB). When full it becomes log.1, replacing the
    /// one before, and a new log begins: a sandbox keeps at most twice SIZE of its
    /// newest output, and `pidlab logs` prints log.1 then log.
    #[arg(long, value_name = "SIZE", default_value = "10m", requires = "detach",
          value_parser = parse_log_size)]
    pub log_max_size: u64,

    /// Name the sandbox (default: a generated one such as calm-reaper-3f9a).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Remove the sandbox's state when it exits (detached sandboxes keep it until `pidlab rm`).
    #[arg(long)]
    pub rm: bool,

    /// Show, from the kernel's tracepoints, every signal that reaches or misses
    /// the sandbox, then a verdict (root only), on stderr.
    #[arg(long)]
    pub trace: bool,

    /// Before sending the stop signal (or a forwarded one), predict on stderr what
    /// it will do to each process, and why.
    #[arg(long)]
    pub explain: bool,

    /// Print the argv that would become PID 1, and why, without running it.
    #[arg(long)]
    pub dry_run: bool,

    /// Build the sandbox one step at a time: each step's system calls as C writes
    /// them and why, then what /proc shows it changed. Waits for Enter between
    /// steps; --step=auto:SECS moves on by itself, --step=log does not wait.
    #[arg(long, value_name = "enter|auto:SECS|log", num_args = 0..=1, require_equals = true,
          default_missing_value = "enter")]
    pub step: Option<String>,

    /// The command, replacing CMD (like `docker run IMAGE ARG...`).
    #[arg(trailing_var_arg = true, value_name = "ARG")]
    pub args: Vec<String>,

    /// With --trace: also draw the trace as a sequence diagram in FILE (SVG), when
    /// the sandbox has ended (root only).
    #[arg(long, value_name = "FILE", requires = "trace")]
    pub svg: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Catch these signals (comma-separated) and log each one with its sender's PID.
    #[arg(long, value_name = "SIG,...")]
    pub catch: Option<String>,

    /// Set these signals to SIG_IGN.
    #[arg(long, value_name = "SIG,...")]
    pub ignore: Option<String>,

    /// On SIGTERM or SIGINT write FILE and exit 0: a stand-in for a database's clean shutdown.
    #[arg(long, value_name = "FILE")]
    pub on_term_save: Option<PathBuf>,

    /// Also append each caught signal to FILE.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Leave N grandchildren that outlive their parent (orphans for PID 1 to adopt),
    /// at most 10000: each is a process, and the kernel's default pid_max is 32768.
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_orphans)]
    pub orphans: u32,

    /// How long each orphan lives before it exits, in seconds (at most 604800, a week).
    #[arg(long, value_name = "SECS", default_value = "0.2", allow_negative_numbers = true,
          value_parser = Seconds::parse)]
    pub orphan_life: Seconds,

    /// Exit 0 after SECS seconds (default: run until a signal ends it; at most 604800, a week).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = Seconds::parse)]
    pub sleep: Option<Seconds>,

    /// After leaving orphans, wait until no zombie is left in this PID
    /// namespace and report how long that took (a measure of PID 1's reaping).
    #[arg(long, requires = "orphans")]
    pub await_reaped: bool,

    /// Try the classic chroot escape (chroot into a subdirectory while the
    /// working directory stays outside it, climb `..`, chroot there), then
    /// report whether PATH exists where we landed, and exit.
    #[arg(long, value_name = "PATH")]
    pub chroot_escape: Option<PathBuf>,

    /// Start each "caught" line with the CLOCK_MONOTONIC time in nanoseconds
    /// (for latency measurements).
    #[arg(long)]
    pub timestamps: bool,
}

#[derive(Debug, Args)]
#[command(version)]
pub struct InitArgs {
    /// Forward signals to the child's process group, not only the child (tini -g;
    /// also TINI_KILL_PROCESS_GROUP=1). With --drain: every signal but the stop
    /// signal.
    #[arg(long, short = 'g')]
    pub group: bool,

    /// Forward the stop signal to every process in the namespace (every
    /// descendant, when not PID 1), and exit only when all have exited.
    #[arg(long)]
    pub drain: bool,

    /// With --drain: the signal that goes to every process (default SIGTERM).
    #[arg(long, value_name = "SIG", default_value = "SIGTERM")]
    pub stop_signal: String,

    /// With --drain: how long to wait for the others once the child has exited,
    /// before SIGKILL, in seconds (at most 604800, a week).
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true,
          value_parser = Seconds::parse)]
    pub grace: Seconds,

    /// Say, on stderr, what the init does: each signal forwarded, the child's
    /// start and exit, each orphan reaped (tini -v, repeatable; also
    /// TINI_VERBOSITY=N, tini's levels: 2 is -v).
    #[arg(long, short = 'v', action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Warn, on stderr, about each zombie reaped that was not the child (tini -w).
    #[arg(short = 'w', long = "warn-on-reap")]
    pub warn_on_reap: bool,

    /// Exit 0 when the child exits with CODE (tini -e; repeatable), e.g. 143 for a
    /// JVM that exits so on SIGTERM.
    #[arg(short = 'e', long = "remap-exit", value_name = "CODE")]
    pub remap_exit: Vec<u8>,

    /// The signal the init gets when its parent dies (tini -p), e.g. SIGTERM.
    #[arg(short = 'p', long = "parent-death-signal", value_name = "SIG")]
    pub parent_death_signal: Option<String>,

    /// Forward signal S as R instead (dumb-init --rewrite; numbers; R = 0 drops S;
    /// repeatable), e.g. 15:3 to stop nginx gracefully with SIGQUIT.
    #[arg(long, value_name = "S:R")]
    pub rewrite: Vec<String>,

    /// Start the child in a session of its own and forward to its whole process
    /// group (dumb-init's default; also DUMB_INIT_SETSID=1).
    #[arg(long, conflicts_with = "single_child")]
    pub setsid: bool,

    /// Forward to the child only (dumb-init --single-child; pidlab's default).
    #[arg(short = 'c', long)]
    pub single_child: bool,

    /// Accepted for tini compatibility (tini -s): pidlab's init is a subreaper
    /// whenever it is not PID 1 (also TINI_SUBREAPER).
    #[arg(short = 's', long)]
    pub subreaper: bool,

    /// The workload and its arguments.
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

/// `--nest`: refuse what the kernel would refuse, and say why.
fn parse_nest(text: &str) -> Result<u32, String> {
    let n: u32 = text.parse().map_err(|_| format!("{text:?} is not a whole number"))?;
    if n == 0 {
        return Err("a sandbox needs at least one PID namespace: use --nest 1 (the default) or more".into());
    }
    if n > crate::procfs::MAX_PID_NS_LEVEL {
        return Err(format!(
            "the kernel allows at most {} nested PID namespaces below the initial one \
             (MAX_PID_NS_LEVEL, pid_namespaces(7)); use --nest 1 to {}",
            crate::procfs::MAX_PID_NS_LEVEL,
            crate::procfs::MAX_PID_NS_LEVEL
        ));
    }
    Ok(n)
}

/// The most orphans `probe --orphans` leaves: what the reaping benchmark
/// uses, about a third of the kernel's default pid_max (32768).
pub const MAX_ORPHANS: u32 = 10_000;

/// `probe --orphans`: at most `MAX_ORPHANS`, so that a slip of the
/// finger is not a fork bomb.
fn parse_orphans(text: &str) -> Result<u32, String> {
    let max = MAX_ORPHANS;
    match text.parse::<u32>() {
        Ok(n) if n <= max => Ok(n),
        _ => Err(format!("give a whole number from 0 to {max}: a probe leaves at most {max} orphans")),
    }
}

/// `--log-max-size`: bytes, or a number with k, m or g (KiB, MiB, GiB, as
/// docker reads max-size), within `logfile::SIZES`.
fn parse_log_size(text: &str) -> Result<u64, String> {
    let refuse = || "give a size from 4k to 1g (k, m, g: KiB, MiB, GiB), such as 10m".to_string();
    let text = text.trim().to_ascii_lowercase();
    let (digits, unit) = match text.chars().last() {
        Some('k') => (&text[..text.len() - 1], 1 << 10),
        Some('m') => (&text[..text.len() - 1], 1 << 20),
        Some('g') => (&text[..text.len() - 1], 1 << 30),
        _ => (text.as_str(), 1),
    };
    let size = digits.parse::<u64>().ok().and_then(|n| n.checked_mul(unit)).ok_or_else(refuse)?;
    if crate::logfile::SIZES.contains(&size) { Ok(size) } else { Err(refuse()) }
}

/// `pidlab run ubuntu:22.04 bash`: the first word looks like an image
/// (`NAME:TAG`, `REGISTRY/NAME:TAG`, `NAME@sha256:...`), and nothing says it
/// is a program (no --entrypoint, no -f whose ENTRYPOINT would take it as an
/// argument). pidlab runs no images, so say so, and what to do instead,
/// rather than "ubuntu:22.04 was not found".
pub fn image_like(args: &RunArgs) -> Option<&str> {
    if args.entrypoint.is_some() || args.dockerfile.is_some() || args.cmd.is_some() {
        return None;
    }
    let first = args.args.first()?;
    let (name, tag) = first.split_once('@').or_else(|| first.rsplit_once(':'))?;
    let name_ok = !name.is_empty()
        && !name.starts_with(['/', '.', '-'])
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/:".contains(c));
    let tag_ok = !tag.is_empty()
        && !tag.contains('/')
        && tag.chars().all(|c| c.is_ascii_alphanumeric() || "._-:".contains(c));
    (name_ok && tag_ok).then_some(first.as_str())
}
