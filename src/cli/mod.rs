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

mod pid1;
mod run;
mod verbs;

pub use pid1::*;
pub use run::*;
pub use verbs::*;

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
  pidlab inspect --tree web                     # the process tree; the stop signal as each has it
  pidlab inspect --svg tree.svg web             # the same, drawn as nested namespace boxes
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
  pidlab rm --all                               # the exited ones (a running one is refused)
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}
