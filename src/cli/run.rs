//! `pidlab run`: every flag of `docker run` that pidlab has, and its own.

use std::path::PathBuf;

use clap::Args;

use crate::duration::{Seconds, StopTimeout};

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
