//! pidlab: build Linux PID namespaces from scratch and make the life of PID 1
//! visible. `main` only parses, runs, prints the error chain and maps it to an
//! exit code; start reading at `runtime/mod.rs`, the setup recipe.

#![deny(clippy::undocumented_unsafe_blocks)]
// pidlab starts at C's `main` (in sys/mod.rs), without Rust's runtime set-up.
// (The unit tests keep the test harness's own `main`.)
#![cfg_attr(not(test), no_main)]

/// `eprintln!`, in a single write(2). Rust's stderr is unbuffered and
/// `eprintln!` writes each piece of its format separately, so another
/// process writing to the same pipe or terminal could cut the line in two
/// (`pidlab run --trace`'s tracer writes its timeline to pidlab's stderr;
/// the redis demonstration then once read "PID 1 exited ... after" cut by
/// a trace line). A line up to PIPE_BUF (4 KiB) written at once is never
/// interleaved (pipe(7)).
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut line = format!($($arg)*);
        line.push('\n');
        let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    }};
}

// The ground floor: what every layer reads.
mod cli;
mod clock;
mod duration;
mod exit_code;
mod logfile;
mod output;
mod procfs;
mod record;
mod signals;
mod sys;

// The layers, each a folder: how a sandbox is made, the programs that run
// as PID 1, how a sandbox is seen, the verbs that act on it by name, and
// the workshop around it. No folder imports one that imports it back.
mod lifecycle;
mod observe;
mod pid1;
mod runtime;
mod workshop;

use clap::{CommandFactory, Parser};

use crate::cli::{Cli, Command};

/// Called by the C entry point in sys/mod.rs. Returns the exit code.
///
/// Without Rust's usual start-up (which would ignore SIGPIPE and handle
/// SIGSEGV and SIGBUS), pidlab's signal dispositions are what it was given,
/// so what `pidlab inspect` shows is what pidlab chose. SIGPIPE is set to
/// its default even if inherited ignored: `pidlab ps | head` then ends
/// quietly like any Unix tool, instead of failing to print.
#[cfg_attr(test, allow(dead_code))]
fn main() -> i32 {
    let _ = sys::set_disposition(nix::sys::signal::Signal::SIGPIPE, false);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors; bad usage is a setup
            // failure like any other: exit 125, as `docker run` does.
            let code = if err.use_stderr() { exit_code::SETUP_FAILED } else { 0 };
            let _ = err.print();
            return code;
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            say!("pidlab: {err:#}");
            exit_code::of_error(&err)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => match cli::image_like(&args) {
            Some(image) => {
                Err(exit_code::Exit { code: exit_code::SETUP_FAILED, message: no_images(image) }.into())
            }
            None => runtime::run(*args),
        },
        Command::Probe(args) => pid1::probe::run(args),
        Command::Init(args) => pid1::init::run(args),
        Command::Ps(args) => lifecycle::ps(args),
        Command::Inspect(args) => lifecycle::inspect(args),
        Command::Exec(args) => lifecycle::exec::run(args),
        Command::Stop(args) => lifecycle::stop(args),
        Command::Kill(args) => lifecycle::kill(args),
        Command::Wait(args) => lifecycle::wait(args),
        Command::Restart(args) => lifecycle::restart(args),
        Command::Logs(args) => lifecycle::logs(args),
        Command::Rm(args) => lifecycle::rm(args),
        Command::Explain(args) => observe::explain::run(args),
        Command::Trace(args) => observe::trace::run(args),
        Command::Lesson(args) => workshop::lesson::run(args),
        Command::Doctor(args) => workshop::doctor::run(args),
        Command::Completions(args) => {
            clap_complete::generate(args.shell, &mut Cli::command(), "pidlab", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout())?;
            Ok(0)
        }
    }
}

/// The refusal of `pidlab run IMAGE ...`: what pidlab does instead.
fn no_images(image: &str) -> String {
    format!(
        "{image:?} looks like an image name, and pidlab runs no images: it runs a program from a root \
         directory. Give a prepared root with --rootfs DIR (rootfs-scripts/ in pidlab's repository build \
         busybox and redis roots from Debian packages), or none to use the host's /usr, /bin, /lib and /etc; \
         then the program, e.g. `pidlab run --rootfs DIR -- sh`. If {image:?} really is a program, give its \
         path (./{image})."
    )
}
