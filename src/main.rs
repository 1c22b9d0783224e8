//! pidlab: build Linux PID namespaces from scratch and make the life of PID 1
//! visible. `main` only parses, runs, prints the error chain and maps it to an
//! exit code; start reading at `sandbox.rs`.

#![deny(clippy::undocumented_unsafe_blocks)]

mod capabilities;
mod cli;
mod doctor;
mod exec;
mod exit_code;
mod explain;
mod init;
mod launch;
mod lesson;
mod lifecycle;
mod pidns;
mod plan;
mod probe;
mod rootfs;
mod sandbox;
mod shim;
mod signals;
mod state;
mod step;
mod supervisor;
mod sys;
mod trace;
mod userns;

use std::process::ExitCode;

use clap::Parser;
use nix::sys::signal::{SigHandler, Signal};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    // Rust's runtime ignores SIGPIPE and handles SIGSEGV and SIGBUS (to
    // report stack overflows). Every pidlab process — runtime, init, nest
    // levels, probe — puts them back to their defaults, so that what
    // `pidlab inspect` shows is what pidlab chose, and `pidlab ps | head`
    // ends quietly like any Unix tool.
    for sig in [Signal::SIGPIPE, Signal::SIGSEGV, Signal::SIGBUS] {
        let _ = sys::set_disposition(sig, SigHandler::SigDfl);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors; bad usage is a setup
            // failure like any other: exit 125, as `docker run` does.
            let code = if err.use_stderr() { exit_code::SETUP_FAILED } else { 0 };
            let _ = err.print();
            return ExitCode::from(code as u8);
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("pidlab: {err:#}");
            ExitCode::from(exit_code::of_error(&err) as u8)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => sandbox::run(*args),
        Command::Probe(args) => probe::run(args),
        Command::Init(args) => init::run(args),
        Command::Ps(args) => lifecycle::ps(args),
        Command::Inspect(args) => lifecycle::inspect(args),
        Command::Exec(args) => exec::run(args),
        Command::Stop(args) => lifecycle::stop(args),
        Command::Kill(args) => lifecycle::kill(args),
        Command::Logs(args) => lifecycle::logs(args),
        Command::Rm(args) => lifecycle::rm(args),
        Command::Explain(args) => explain::run(args),
        Command::Trace(args) => trace::run(args),
        Command::Lesson(args) => lesson::run(args),
        Command::Doctor(args) => doctor::run(args),
    }
}
