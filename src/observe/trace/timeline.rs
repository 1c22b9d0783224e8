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
            4 => Outcome::QueuedWithoutInfo,
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

#[cfg(test)]
mod tests {
    //! The timeline's rules on made-up trace records: which record is the
    //! sandbox's, and each outcome the kernel's `res` and the processes'
    //! places give. Processes are placed by hand (`member`); where a rule
    //! reads /proc, the test process itself stands in.

    use super::*;

    const INIT: i32 = 100; // PID 1 of the sandbox (NSpid 100/1)
    const CHILD: i32 = 101; // PID 2 (NSpid 101/2)
    const THREAD: i32 = 102; // a thread of CHILD
    const OUTSIDE: i32 = 50; // a host process

    fn empty() -> Timeline {
        Timeline { start: 10.0, members: HashMap::new(), namespaces: Vec::new(), events: Vec::new() }
    }

    fn member(timeline: &mut Timeline, pid: i32, nspid: &[i32], tgid: i32) {
        timeline.members.insert(pid, Member { nspid: nspid.to_vec(), comm: format!("p{pid}"), tgid });
    }

    fn sandbox() -> Timeline {
        let mut timeline = empty();
        member(&mut timeline, INIT, &[INIT, 1], INIT);
        member(&mut timeline, CHILD, &[CHILD, 2], CHILD);
        member(&mut timeline, THREAD, &[THREAD, 3], CHILD);
        timeline
    }

    fn record(event: &str, task: i32, fields: &[(&str, &str)]) -> Record {
        Record {
            time: 11.23456,
            task_pid: task,
            task_comm: format!("t{task}"),
            event: event.into(),
            fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn generate(timeline: &Timeline, sender: i32, target: i32, sig: i32, code: i32, res: i32) -> Outcome {
        let (sig, code, res, target_s) =
            (sig.to_string(), code.to_string(), res.to_string(), target.to_string());
        let fields = [
            ("sig", sig.as_str()),
            ("pid", target_s.as_str()),
            ("code", code.as_str()),
            ("res", res.as_str()),
        ];
        let record = record("signal_generate", sender, &fields);
        timeline.generate_outcome(&record, sender, target, sig.parse().unwrap())
    }

    #[test]
    fn only_a_namespaces_pid_1_is_an_init() {
        let init = |nspid: &[i32]| Member { nspid: nspid.to_vec(), comm: String::new(), tgid: 0 }.is_init();
        assert!(init(&[100, 1]));
        assert!(init(&[100, 7, 1]));
        assert!(!init(&[1]), "the host's init is not a sandbox's");
        assert!(!init(&[100, 2]));
        assert!(!init(&[]));
    }

    #[test]
    fn each_res_and_place_has_its_outcome() {
        let t = sandbox();
        let (kill, stop, term) = (libc::SIGKILL, libc::SIGSTOP, libc::SIGTERM);
        let table = [
            // An unkillable drop from "outside": the sender was inside, and gone.
            (OUTSIDE, INIT, kill, 0, 1, Outcome::DroppedSenderInside),
            (OUTSIDE, INIT, stop, 0, 1, Outcome::DroppedSenderInside),
            (CHILD, INIT, kill, 0, 1, Outcome::DroppedFromInside),
            (INIT, CHILD, kill, 128, 0, Outcome::QueuedTeardown),
            (OUTSIDE, INIT, kill, 0, 0, Outcome::QueuedAncestorKill),
            (OUTSIDE, INIT, kill, 128, 0, Outcome::QueuedAncestorKill),
            (OUTSIDE, CHILD, kill, 0, 0, Outcome::Queued),
            (CHILD, INIT, kill, 0, 0, Outcome::Queued),
            (OUTSIDE, CHILD, term, 0, 0, Outcome::Queued),
            (OUTSIDE, INIT, term, 0, 1, Outcome::DroppedFromOutside),
            (CHILD, INIT, term, 0, 1, Outcome::DroppedFromInside),
            (OUTSIDE, CHILD, term, 0, 1, Outcome::Ignored),
            (OUTSIDE, CHILD, term, 0, 2, Outcome::AlreadyPending),
            (OUTSIDE, CHILD, 34, 0, 3, Outcome::Lost),
            (OUTSIDE, CHILD, term, 0, 4, Outcome::QueuedWithoutInfo),
        ];
        for (sender, target, sig, code, res, want) in table {
            let got = generate(&t, sender, target, sig, code, res);
            assert_eq!(got, want, "signal {sig} from {sender} to {target}, code {code}, res {res}");
        }
    }

    #[test]
    fn a_signal_pid_1_ignores_itself_is_told_apart_from_a_drop() {
        // The test process ignores SIGPIPE (Rust's runtime sets SIG_IGN),
        // and not SIGTERM: it stands in for a PID 1 that set SIG_IGN.
        let mut t = empty();
        let me = std::process::id() as i32;
        member(&mut t, me, &[me, 1], me);
        assert_eq!(generate(&t, OUTSIDE, me, libc::SIGPIPE, 0, 1), Outcome::IgnoredByInit);
        assert_eq!(generate(&t, OUTSIDE, me, libc::SIGTERM, 0, 1), Outcome::DroppedFromOutside);
    }

    #[test]
    fn time_is_from_the_start_in_milliseconds() {
        let mut t = sandbox();
        let fields = [("sig", "15"), ("pid", "101"), ("code", "0"), ("res", "0")];
        let event = t.ingest(&record("signal_generate", OUTSIDE, &fields)).expect("the sandbox's");
        assert_eq!(event.t, 1.235);
    }

    #[test]
    fn signals_are_kept_only_when_the_sandbox_sends_or_receives_them() {
        let mut t = sandbox();
        let sent = |t: &mut Timeline, sender: i32, target: &str, sig: &str| {
            let fields = [("sig", sig), ("pid", target), ("code", "0"), ("res", "0")];
            t.ingest(&record("signal_generate", sender, &fields))
        };
        assert!(sent(&mut t, OUTSIDE, "60", "15").is_none(), "host to host");
        let event = sent(&mut t, OUTSIDE, "101", "15").expect("host to the sandbox");
        assert_eq!((event.target.host_pid, event.target.inside, event.target.own_pid()), (CHILD, true, 2));
        let Kind::Generate { signal, sender, .. } = &event.kind else { panic!("{event:?}") };
        assert_eq!((signal.as_str(), sender.inside, sender.name()), ("SIGTERM", false, "t50"));
        let event = sent(&mut t, CHILD, "60", "10").expect("the sandbox to the host");
        assert!(!event.target.inside);
        assert!(sent(&mut t, OUTSIDE, "60", "17").is_none(), "SIGCHLD to a host process");
        assert!(sent(&mut t, CHILD, "60", "17").is_none(), "SIGCHLD to the supervisor");
        assert!(sent(&mut t, OUTSIDE, "100", "17").is_some(), "SIGCHLD to PID 1");
    }

    #[test]
    fn deliveries_say_what_the_target_did() {
        let mut t = sandbox();
        let deliver = |t: &mut Timeline, task: i32, sig: &str, handler: &str| {
            t.ingest(&record("signal_deliver", task, &[("sig", sig), ("sa_handler", handler)]))
                .map(|e| e.outcome)
        };
        assert_eq!(deliver(&mut t, CHILD, "9", "0"), Some(Outcome::Killed));
        assert_eq!(deliver(&mut t, CHILD, "15", "0"), Some(Outcome::DefaultAction));
        assert_eq!(deliver(&mut t, CHILD, "15", "1"), Some(Outcome::DeliveredIgnored));
        assert_eq!(deliver(&mut t, CHILD, "15", "55d0c0de"), Some(Outcome::Handler));
        assert_eq!(deliver(&mut t, OUTSIDE, "15", "0"), None, "a host process");
    }

    #[test]
    fn a_process_exits_once_whichever_thread_is_last() {
        let mut t = sandbox();
        let exit = |t: &mut Timeline, pid: &str, dead: &str| {
            let fields = [("pid", pid), ("group_dead", dead), ("comm", "last")];
            t.ingest(&record("sched_process_exit", 0, &fields))
        };
        assert!(exit(&mut t, "102", "false").is_none(), "a thread leaving a live process");
        let event = exit(&mut t, "102", "true").expect("the last thread");
        assert_eq!(
            (event.target.host_pid, event.outcome),
            (CHILD, Outcome::Exited),
            "named after its process"
        );
        let event = exit(&mut t, "101", "true").expect("the main thread");
        assert_eq!((event.target.host_pid, event.target.name()), (CHILD, "last"));
        assert!(exit(&mut t, "60", "true").is_none(), "a host process");
    }

    #[test]
    fn forks_teach_the_timeline_its_new_members() {
        let me = std::process::id() as i32;
        let fork = |t: &mut Timeline, parent: i32| {
            let child = me.to_string();
            assert!(
                t.ingest(&record("sched_process_fork", parent, &[("child_pid", child.as_str())])).is_none()
            );
            t.members.contains_key(&me)
        };
        assert!(fork(&mut sandbox(), CHILD), "a child of a member is one");
        assert!(!fork(&mut sandbox(), OUTSIDE), "a host process's child, in the host's namespace, is not");
        let mut entered = sandbox();
        entered.namespaces.push(procfs::pid_namespace(me).unwrap());
        assert!(fork(&mut entered, OUTSIDE), "a child born in the sandbox's namespace (`exec`) is one");
        assert_eq!(entered.members[&me].tgid, me);
    }

    #[test]
    fn a_thread_is_learnt_with_its_process() {
        // A thread of our own, alive while it is learnt: its task ID is not
        // the process's.
        let me = std::process::id() as i32;
        let (told, hear) = std::sync::mpsc::channel();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::spawn(move || {
            told.send(nix::unistd::gettid().as_raw()).unwrap();
            let _ = wait.recv();
        });
        let tid = hear.recv().unwrap();
        let mut t = empty();
        t.learn(tid);
        drop(done);
        thread.join().unwrap();
        assert_ne!(tid, me);
        assert_eq!(t.members[&tid].tgid, me);
    }

    #[test]
    fn the_clock_is_the_monotonic_one_in_seconds() {
        // std's Instant reads the same clock: each reading of ours is
        // bracketed by two of its, so the difference of ours lies between
        // the inner and the outer interval, however the thread is delayed.
        use std::time::Instant;
        let (outer_start, before, inner_start) = (Instant::now(), monotonic(), Instant::now());
        std::thread::sleep(std::time::Duration::from_millis(50));
        let (inner_end, after, outer_end) = (Instant::now(), monotonic(), Instant::now());
        let (least, most) =
            ((inner_end - inner_start).as_secs_f64(), (outer_end - outer_start).as_secs_f64());
        assert!(before > 1.0, "seconds since boot, not {before}");
        let ours = after - before;
        assert!(least - 1e-6 <= ours && ours <= most + 1e-6, "{ours} s is not within [{least}, {most}]");
    }

    #[test]
    fn the_verdict_tells_drops_teardowns_outside_kills_and_handlers() {
        let mut t = sandbox();
        let mut add = |sender: i32, target: &str, sig: &str, code: &str, res: &str| {
            let fields = [("sig", sig), ("pid", target), ("code", code), ("res", res)];
            let event = t.ingest(&record("signal_generate", sender, &fields)).unwrap();
            t.events.push(event);
        };
        add(OUTSIDE, "100", "15", "0", "1");
        add(INIT, "101", "9", "128", "0");
        add(OUTSIDE, "100", "9", "0", "0");
        add(OUTSIDE, "101", "10", "0", "0");
        // None of these makes a sentence: a signal ignored by a process
        // that is not PID 1, one the kernel sent that is not a teardown's
        // SIGKILL, a SIGKILL sent from inside, a default action.
        add(OUTSIDE, "101", "15", "0", "1");
        add(INIT, "101", "17", "128", "0");
        add(INIT, "101", "9", "0", "0");
        for handler in ["abc", "0"] {
            let fields = [("sig", "10"), ("sa_handler", handler)];
            let event = t.ingest(&record("signal_deliver", CHILD, &fields)).unwrap();
            t.events.push(event);
        }
        assert_eq!(
            t.verdict(),
            "At 1.24 s SIGTERM sent to p100 (PID 1) was dropped by the kernel: PID 1 had no handler for it. \
             At 1.24 s the kernel killed p101 (PID 2) in the teardown of its namespace, which follows the death of a PID 1. \
             At 1.24 s SIGKILL from outside the namespace reached p100 (PID 1). \
             At 1.24 s t101 (PID 2) received SIGUSR1 in its handler."
        );
        assert_eq!(verdict(&[]), "No signal reached or missed the sandbox while it was traced.");
    }
}
