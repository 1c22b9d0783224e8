//! From trace records to the sandbox's story: which processes are the
//! sandbox's (learnt from fork events and PID namespaces), each signal's
//! outcome as the kernel decided it, and the verdict in plain words.

use std::collections::HashMap;

use nix::sys::signal::Signal;
use nix::time::{ClockId, clock_gettime};

use super::tracefs::Record;
use crate::observe::event::{Event, Kind, Outcome, Who};
use crate::procfs::{self, members};

/// A process of the sandbox, as the trace knows it.
#[derive(Debug, Clone)]
struct Member {
    /// Its PID at each level, host first (NSpid).
    nspid: Vec<i32>,
    comm: String,
    /// The process it is a thread of (host PID; its own for a process).
    tgid: i32,
}

impl Member {
    fn is_init(&self) -> bool {
        self.nspid.len() > 1 && self.nspid.last() == Some(&1)
    }
}

/// The sandbox's processes, the events kept so far, and the story so far.
pub struct Timeline {
    start: f64,
    members: HashMap<i32, Member>,
    /// The PID namespaces of the sandbox (inode numbers of /proc/PID/ns/pid).
    namespaces: Vec<u64>,
    pub events: Vec<Event>,
}

impl Timeline {
    pub fn new(start: f64, pid1: i32) -> Timeline {
        let mut timeline =
            Timeline { start, members: HashMap::new(), namespaces: Vec::new(), events: Vec::new() };
        for pid in members(pid1) {
            timeline.learn(pid);
            if let Some(ns) = procfs::pid_namespace(pid)
                && !timeline.namespaces.contains(&ns)
            {
                timeline.namespaces.push(ns);
            }
        }
        timeline
    }

    /// A process forked from outside into the sandbox (`pidlab exec`) is
    /// recognised by its PID namespace.
    fn learn_if_inside(&mut self, pid: i32) {
        if procfs::pid_namespace(pid).is_some_and(|ns| self.namespaces.contains(&ns)) {
            self.learn(pid);
        }
    }

    fn learn(&mut self, pid: i32) {
        if let Some(status) = procfs::Status::of(pid).filter(|s| !s.nspid.is_empty()) {
            let tgid = if status.tgid > 0 { status.tgid } else { pid };
            self.members.insert(pid, Member { nspid: status.nspid, comm: procfs::comm(pid), tgid });
        }
    }

    fn who(&self, pid: i32, comm: Option<&str>) -> Who {
        match self.members.get(&pid) {
            Some(m) => Who {
                host_pid: pid,
                nspid: m.nspid.clone(),
                comm: Some(comm.unwrap_or(&m.comm).to_string()),
                inside: true,
                process: m.tgid,
            },
            None => Who {
                host_pid: pid,
                nspid: vec![pid],
                comm: comm.map(str::to_string),
                inside: false,
                process: pid,
            },
        }
    }

    /// Turn one trace record into a timeline event, if it concerns the sandbox.
    pub fn ingest(&mut self, record: &Record) -> Option<Event> {
        let t = ((record.time - self.start) * 1000.0).round() / 1000.0;
        match record.event.as_str() {
            "sched_process_fork" => {
                let child = record.int("child_pid") as i32;
                if self.members.contains_key(&record.task_pid) {
                    self.learn(child);
                } else {
                    self.learn_if_inside(child);
                }
                None
            }
            "sched_process_exit" => {
                let pid = record.int("pid") as i32;
                if record.fields.get("group_dead").map(String::as_str) != Some("true") {
                    return None;
                }
                // The last thread to exit ends the process: when that is not
                // the main thread, the exit is still the process's.
                let tgid = self.members.get(&pid)?.tgid;
                let target = match tgid == pid || !self.members.contains_key(&tgid) {
                    true => self.who(pid, record.fields.get("comm").map(String::as_str)),
                    false => self.who(tgid, None),
                };
                Some(Event { t, kind: Kind::Exit, target, outcome: Outcome::Exited })
            }
            "signal_generate" => {
                let target = record.int("pid") as i32;
                let sender = record.task_pid;
                if !self.members.contains_key(&target) && !self.members.contains_key(&sender) {
                    return None;
                }
                let sig = record.int("sig") as i32;
                if sig == libc::SIGCHLD && !self.members.contains_key(&target) {
                    return None; // a child of the sandbox's supervisor exiting: not the sandbox's business
                }
                let outcome = self.generate_outcome(record, sender, target, sig);
                Some(Event {
                    t,
                    kind: Kind::Generate {
                        signal: signal_name(sig),
                        sender: self.who(sender, Some(&record.task_comm)),
                        code: record.int("code"),
                        res: record.int("res"),
                    },
                    target: self.who(target, record.fields.get("comm").map(String::as_str)),
                    outcome,
                })
            }
            "signal_deliver" => {
                let target = record.task_pid;
                if !self.members.contains_key(&target) {
                    return None;
                }
                let sig = record.int("sig") as i32;
                let handler = record.fields.get("sa_handler").map(String::as_str).unwrap_or("0");
                let outcome = match handler {
                    "0" if sig == libc::SIGKILL => Outcome::Killed,
                    "0" => Outcome::DefaultAction,
                    "1" => Outcome::DeliveredIgnored,
                    _ => Outcome::Handler,
                };
                Some(Event {
                    t,
                    kind: Kind::Deliver { signal: signal_name(sig) },
                    target: self.who(target, Some(&record.task_comm)),
                    outcome,
                })
            }
            _ => None,
        }
    }

    fn generate_outcome(&self, record: &Record, sender: i32, target: i32, sig: i32) -> Outcome {
        let target_init = self.members.get(&target).is_some_and(Member::is_init);
        let sender_inside = self.members.contains_key(&sender);
        let kernel_only = sig == libc::SIGKILL || sig == libc::SIGSTOP;
        if record.int("res") == 1 && target_init && kernel_only && !sender_inside {
            // From an ancestor namespace SIGKILL cannot be dropped at a
            // namespace's init, so the kernel says the sender was inside,
            // even if it exited before we could look at it.
            return Outcome::DroppedSenderInside;
        }
        let kernel = record.int("code") == 128;
        match record.int("res") {
            0 if sig == libc::SIGKILL && kernel && sender_inside => Outcome::QueuedTeardown,
            0 if sig == libc::SIGKILL && target_init && !sender_inside => Outcome::QueuedAncestorKill,
            0 => Outcome::Queued,
            1 if target_init && ignored_by(target, sig) => Outcome::IgnoredByInit,
            1 if target_init && !sender_inside => Outcome::DroppedFromOutside,
            1 if target_init => Outcome::DroppedFromInside,
            1 => Outcome::Ignored,
            2 => Outcome::AlreadyPending,
            _ => Outcome::Lost,
        }
    }

    /// One paragraph in plain words: what reached whom, what was dropped,
    /// how it ended.
    pub fn verdict(&self) -> String {
        verdict(&self.events)
    }
}

/// One paragraph in plain words: what reached whom, what was dropped, how
/// it ended.
pub fn verdict(events: &[Event]) -> String {
    let mut sentences = Vec::new();
    let name = |who: &Who| format!("{} (PID {})", who.name(), who.own_pid());
    for e in events {
        let t = e.t;
        let target = name(&e.target);
        match &e.kind {
            Kind::Generate { signal, res: 1, .. } if e.outcome.is_dropped_at_init() => sentences.push(format!(
                "At {t:.2} s {signal} sent to {target} was dropped by the kernel: PID 1 had no handler for it."
            )),
            Kind::Generate { signal, sender, code: 128, res: 0 } if signal == "SIGKILL" && sender.inside => {
                sentences.push(format!(
                    "At {t:.2} s the kernel killed {target} in the teardown of its namespace, which follows the death of a PID 1."
                ))
            }
            Kind::Generate { signal, sender, .. } if signal == "SIGKILL" && !sender.inside => {
                sentences.push(format!("At {t:.2} s SIGKILL from outside the namespace reached {target}."))
            }
            Kind::Deliver { signal } if e.outcome == Outcome::Handler => {
                sentences.push(format!("At {t:.2} s {target} received {signal} in its handler."))
            }
            _ => {}
        }
    }
    if sentences.is_empty() {
        return "No signal reached or missed the sandbox while it was traced.".into();
    }
    sentences.join(" ")
}

/// True if /proc says `pid` has `sig` at SIG_IGN.
fn ignored_by(pid: i32, sig: i32) -> bool {
    procfs::Status::of(pid).is_some_and(|s| s.ignores(sig))
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("SIG{sig}"), |s| s.as_str().to_string())
}

pub fn monotonic() -> f64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}
