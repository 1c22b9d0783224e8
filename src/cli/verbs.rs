//! The verbs that act on sandboxes by name, and `explain` and `trace`.

use std::path::PathBuf;

use clap::Args;

use super::Format;
use crate::duration::{Seconds, StopTimeout};

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
    /// Show a running sandbox's processes as a tree, each with its PIDs at every level
    /// and what it does with the sandbox's stop signal (a handler, ignored, blocked,
    /// awaited by sigwait, or the default), and what that signal would do to it now.
    #[arg(long)]
    pub tree: bool,
    /// Also draw the tree as nested PID namespace boxes in FILE (SVG; `-`: on stdout),
    /// for a projector. Like --tree, for a running sandbox.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
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
    /// Print only the last N lines (then follow, with -f); `all`, as docker takes it,
    /// prints every line.
    #[arg(short = 'n', long = "tail", value_name = "N", value_parser = parse_tail)]
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

/// `logs -n`: a count of lines, or `all`.
fn parse_tail(text: &str) -> Result<u64, String> {
    match text {
        "all" => Ok(u64::MAX),
        _ => {
            text.parse().map_err(|_| format!("{text:?} is not a number of lines: give N (0 or more), or all"))
        }
    }
}
