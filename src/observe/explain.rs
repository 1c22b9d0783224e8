//! `pidlab explain NAME SIG`: before sending anything, predict what SIG sent
//! now from the host would do to each process of the sandbox, and why.
//!
//! The prediction applies the kernel's rules (kernel/signal.c
//! `sig_task_ignored()`, `sig_ignored()`; pid_namespaces(7)) to what
//! /proc/PID/status says about each process: `SigBlk` (blocked: queued,
//! whatever the handler), `SigIgn` (SIG_IGN: dropped), `SigCgt` (a handler:
//! delivered), and otherwise the signal's default action — except that a
//! namespace's PID 1 with no handler gets nothing but SIGKILL and SIGSTOP,
//! and those only from an ancestor namespace. It is a prediction: the
//! process may change its dispositions before the signal arrives.
//! `pidlab trace` shows what the kernel actually did.

use anyhow::Result;
use nix::sys::signal::Signal;
use serde::Serialize;

use crate::cli::{ExplainArgs, Format};
use crate::procfs::{self, Status, members};
use crate::record::Sandbox;
use crate::record::open_pid1;
use crate::signals;

/// What the kernel will do with `sig` sent from the host to a process.
/// `waiting`: the mask of signals it waits for with rt_sigtimedwait.
pub fn predict(status: &Status, sig: Signal, waiting: u64) -> (&'static str, String) {
    let signo = sig as i32;
    let is_init = status.is_namespace_init();
    let awaited = procfs::signals_in(waiting).contains(&signo);
    let blocked = status.blocks(signo) || awaited;
    let name = sig.as_str();
    if matches!(status.state, 'Z' | 'X') {
        return (
            "exited",
            "it has already exited (a zombie, waiting for its parent to reap it): no signal reaches it"
                .into(),
        );
    }
    if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
        let what = if sig == Signal::SIGKILL { "kills it" } else { "stops it" };
        return if is_init {
            (
                "delivered",
                format!(
                    "{name} cannot be caught, blocked or ignored, and from an ancestor namespace it reaches even PID 1: it {what}"
                ),
            )
        } else {
            ("delivered", format!("{name} cannot be caught, blocked or ignored: it {what}"))
        };
    }
    if awaited && !status.blocks(signo) {
        return (
            "queued",
            format!(
                "it is waiting for {name} in sigtimedwait: the kernel queues it (even for PID 1) and the call takes it (SigBlk in /proc reads it unblocked meanwhile: the kernel keeps the process's own mask aside while it waits)"
            ),
        );
    }
    if blocked {
        return (
            "queued",
            format!(
                "{name} is blocked: the kernel queues it (even for PID 1) until the process unblocks it or waits for it with sigwait/signalfd"
            ),
        );
    }
    if status.ignores(signo) {
        return ("ignored", format!("{name} is set to SIG_IGN: the kernel drops it"));
    }
    if status.catches(signo) {
        return ("handled", format!("it has a handler for {name}: the handler runs"));
    }
    if is_init {
        return (
            "dropped",
            format!(
                "{name} is at its default action and this is the namespace's PID 1: the kernel drops it (pid_namespaces(7))"
            ),
        );
    }
    match signals::default_action(sig) {
        signals::Action::Ignore => {
            ("ignored", format!("{name} is at its default action, which is to ignore it"))
        }
        signals::Action::Stop => {
            ("stopped", format!("{name} is at its default action: it stops the process"))
        }
        signals::Action::Continue => {
            ("continued", format!("{name} is at its default action: it continues a stopped process"))
        }
        signals::Action::Terminate => {
            ("killed", format!("{name} is at its default action: it terminates the process"))
        }
    }
}

pub fn run(args: ExplainArgs) -> Result<i32> {
    let sandbox = Sandbox::open(&args.name)?;
    let sig = signals::parse(&args.signal)?;
    let (_, pid1, _) = open_pid1(&sandbox, "explain")?;
    let rows = predict_all(pid1.pid, sig, args.to_all);
    if args.format == Format::Json {
        // A stream: one object per prediction, each naming its sandbox.
        for row in rows {
            let mut object = serde_json::to_value(&row)?;
            object["name"] = sandbox.name.clone().into();
            crate::output::line(&object);
        }
    } else {
        print!("{}", render(&rows, sig, args.to_all));
    }
    Ok(0)
}

/// What `explain` says about one process.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    pub host_pid: i32,
    /// Its PID at each level, host first.
    pub nspid: Vec<i32>,
    pub comm: String,
    pub signal: &'static str,
    /// `delivered`, `queued`, `ignored`, `handled`, `dropped`, `stopped`,
    /// `continued`, `killed`, or `not sent` (only PID 1 is signalled).
    pub outcome: String,
    pub why: String,
    /// Always true: told apart from the kernel's record (`trace`) in JSON.
    pub prediction: bool,
}

impl Prediction {
    /// Its PIDs as pidlab prints them, `24567/3/1`.
    pub fn pids(&self) -> String {
        procfs::pids_text(self.nspid.iter().copied())
    }
}

/// One prediction per process of the sandbox whose PID 1 is `pid1`.
pub fn predict_all(pid1: i32, sig: Signal, to_all: bool) -> Vec<Prediction> {
    let mut rows = Vec::new();
    for pid in members(pid1) {
        let Some(status) = Status::of(pid) else { continue };
        let sent_here = to_all || pid == pid1;
        let (outcome, why) = predict(&status, sig, signals::waited_for(pid));
        let (nspid, comm) = (status.nspid, status.name);
        let (outcome, why) = if sent_here {
            (outcome.to_string(), why)
        } else {
            (
                "not sent".to_string(),
                format!("only PID 1 is signalled (use --to-all); if it were sent here: {why}"),
            )
        };
        rows.push(Prediction {
            host_pid: pid,
            nspid,
            comm,
            signal: sig.as_str(),
            outcome,
            why,
            prediction: true,
        });
    }
    rows
}

/// The predictions as lines for a terminal.
pub fn render(rows: &[Prediction], sig: Signal, to_all: bool) -> String {
    let mut out = format!(
        "prediction for {} sent now from the host to {}:\n",
        sig.as_str(),
        if to_all { "every process" } else { "PID 1" }
    );
    for row in rows {
        out.push_str(&format!(
            "  {:<12} {:<8} {:<9} {}\n",
            row.pids(),
            crate::output::printable(&row.comm),
            row.outcome,
            row.why
        ));
    }
    out
}
