//! The two programs pidlab puts in a sandbox: `probe` and `init`.

use std::path::PathBuf;

use clap::Args;

use crate::duration::Seconds;

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
