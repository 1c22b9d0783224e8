//! One event of a trace, typed: who sent which signal to whom, and what
//! the kernel did with it (see `trace.rs` for the tracepoints it comes
//! from, signal(7) and pid_namespaces(7) for the rules behind each outcome).
//!
//! The trace builds these, the timeline, the verdict and the picture read
//! them, and they become JSON in one place only, [`Event::to_json`], where
//! they leave the program (`trace --format json`).
//!
//! This file uses nothing else of pidlab, so a benchmark can compile it
//! on its own (`benches/picture.rs`).

use serde_json::{Value, json};

/// A process as the trace knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Who {
    pub host_pid: i32,
    /// Its PID at each level, host first (NSpid); just `[host_pid]` for a
    /// process outside the sandbox.
    pub nspid: Vec<i32>,
    /// Its name, when the tracepoint or /proc gave one.
    pub comm: Option<String>,
    /// A process of the sandbox (in one of its PID namespaces).
    pub inside: bool,
    /// The process it belongs to (host PID): itself, or for a thread, its
    /// thread group's leader. Not in the JSON, which names the task.
    pub process: i32,
}

impl Who {
    /// The PIDs as `host/ns1/ns2`.
    pub fn pids(&self) -> String {
        self.nspid.iter().map(i32::to_string).collect::<Vec<_>>().join("/")
    }

    /// Its PID in its own (innermost) namespace.
    pub fn own_pid(&self) -> i32 {
        self.nspid.last().copied().unwrap_or(self.host_pid)
    }

    /// How many PID namespaces below the host's it lives in (0: the host's).
    pub fn depth(&self) -> usize {
        if self.inside { self.nspid.len().saturating_sub(1) } else { 0 }
    }

    pub fn name(&self) -> &str {
        self.comm.as_deref().unwrap_or("?")
    }

    fn to_json(&self) -> Value {
        json!({ "host_pid": self.host_pid, "nspid": self.nspid, "comm": self.comm, "inside": self.inside })
    }
}

/// What the kernel did, at the moment the event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    // signal_generate, res=0: queued.
    Queued,
    /// SIGKILL with code=128 (SI_KERNEL) from inside: the namespace's init died.
    QueuedTeardown,
    /// SIGKILL from an ancestor namespace to a PID 1.
    QueuedAncestorKill,
    // signal_generate, res=1: not queued.
    /// PID 1 set it to SIG_IGN itself.
    IgnoredByInit,
    /// Dropped at a PID 1 with no handler, sent from outside.
    DroppedFromOutside,
    /// Dropped at a PID 1 with no handler, sent from inside.
    DroppedFromInside,
    /// SIGKILL or SIGSTOP dropped at a PID 1 by a sender that had gone
    /// before we could place it: it must have been inside.
    DroppedSenderInside,
    /// SIG_IGN, or a default action of ignore, at a process that is not PID 1.
    Ignored,
    /// res=2.
    AlreadyPending,
    /// res=3 (TRACE_SIGNAL_OVERFLOW_FAIL): a real-time signal, or one sent
    /// with sigqueue(3), that found the queue full: not queued.
    Lost,
    /// res=4 (TRACE_SIGNAL_LOSE_INFO): queued, but without its siginfo (who
    /// sent it, how): the kernel could not allocate one.
    QueuedWithoutInfo,
    // signal_deliver: the target took it.
    Killed,
    DefaultAction,
    DeliveredIgnored,
    Handler,
    // sched_process_exit.
    Exited,
}

impl Outcome {
    /// The words `trace` prints.
    pub fn text(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::QueuedTeardown => {
                "queued: the kernel kills every process of a namespace whose init has exited"
            }
            Outcome::QueuedAncestorKill => "queued: SIGKILL from an ancestor namespace always reaches PID 1",
            Outcome::IgnoredByInit => "ignored: PID 1 set it to SIG_IGN",
            Outcome::DroppedFromOutside => {
                "dropped: PID 1 of its namespace has no handler for it, and only SIGKILL and SIGSTOP from an ancestor namespace get through (pid_namespaces(7))"
            }
            Outcome::DroppedFromInside => {
                "dropped: PID 1 of its namespace has no handler for it, and from inside the namespace nothing gets through without one, not even SIGKILL"
            }
            Outcome::DroppedSenderInside => {
                "dropped: PID 1 of its namespace has no handler for it, and from inside the namespace nothing gets through without one, not even SIGKILL (the sender must be inside: from outside SIGKILL is never dropped)"
            }
            Outcome::Ignored => "ignored: SIG_IGN, or a default action of ignore",
            Outcome::AlreadyPending => "already pending: not queued twice",
            Outcome::Lost => "lost: the queue of real-time and sigqueue(3) signals was full",
            Outcome::QueuedWithoutInfo => {
                "queued, without its sender's details: the kernel had no memory for them"
            }
            Outcome::Killed => "killed",
            Outcome::DefaultAction => "delivered at its default action",
            Outcome::DeliveredIgnored => "delivered while ignored",
            Outcome::Handler => "delivered to its handler",
            Outcome::Exited => "exited",
        }
    }

    pub fn is_dropped_at_init(self) -> bool {
        matches!(
            self,
            Outcome::DroppedFromOutside | Outcome::DroppedFromInside | Outcome::DroppedSenderInside
        )
    }
}

/// Which tracepoint an event comes from, with what only that one says.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// signal_generate: someone sent a signal (or the kernel did).
    Generate {
        signal: String,
        sender: Who,
        /// si_code: 0 SI_USER (kill(2)), 128 SI_KERNEL.
        code: i64,
        /// 0 queued, 1 ignored, 2 already pending, 3 lost.
        res: i64,
    },
    /// signal_deliver: the target dequeued it.
    Deliver { signal: String },
    /// sched_process_exit of the last thread.
    Exit,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Seconds since the trace began, to the millisecond.
    pub t: f64,
    pub kind: Kind,
    pub target: Who,
    pub outcome: Outcome,
}

impl Event {
    /// The event as one JSON object, `trace --format json`'s line.
    pub fn to_json(&self) -> Value {
        let target = self.target.to_json();
        let outcome = self.outcome.text();
        match &self.kind {
            Kind::Generate { signal, sender, code, res } => json!({
                "t": self.t, "event": "generate", "signal": signal,
                "sender": sender.to_json(), "target": target,
                "code": code, "res": res, "outcome": outcome,
            }),
            Kind::Deliver { signal } => {
                json!({ "t": self.t, "event": "deliver", "signal": signal, "target": target, "outcome": outcome })
            }
            Kind::Exit => json!({ "t": self.t, "event": "exit", "target": target, "outcome": outcome }),
        }
    }
}
