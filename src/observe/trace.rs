//! `pidlab trace NAME`: the kernel's own record of every signal that
//! touches a sandbox, turned into a numbered timeline and a verdict.
//!
//! The kernel has tracepoints where a signal is *generated* (kill(2),
//! a tty, the kernel itself) and where it is *delivered* (the target
//! dequeues it): `signal:signal_generate` and `signal:signal_deliver`
//! (include/trace/events/signal.h). signal_generate reports `res`, what
//! the kernel decided at send time: 0 queued, 1 ignored — which is how a
//! signal dropped at a namespace's PID 1 shows up —, 2 already pending.
//! `code=128` (SI_KERNEL) marks a signal the kernel sent itself, such as the
//! SIGKILLs of a namespace whose init has exited. pidlab also follows
//! `sched:sched_process_fork` to learn the sandbox's new processes, and
//! `sched:sched_process_exit` to see them go.
//!
//! Tracing is done in a private tracefs *instance* (its own ring buffer and
//! event switches, `instances/pidlab-PID-START`), so it never disturbs anyone
//! else's tracing, and the instance is removed when pidlab is done (or, if
//! pidlab was killed, by the next `trace`, `run --trace` or `doctor`). If the
//! host has no tracefs mounted, pidlab mounts one — in a mount namespace of
//! its own, so the host's mount table never changes.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::time::{ClockId, clock_gettime};
use serde_json::json;

use super::event::{Event, Kind, Outcome, Who};
use super::picture;
use crate::cli::{Format, TraceArgs};
use crate::procfs::{self, members};
use crate::record::open_pid1;
use crate::record::{Process, Sandbox};
use crate::signals;

const EVENTS: [&str; 4] = [
    "signal/signal_generate",
    "signal/signal_deliver",
    "sched/sched_process_fork",
    "sched/sched_process_exit",
];

/// A private tracefs instance; removed when dropped.
pub struct Instance {
    dir: PathBuf,
}

impl Instance {
    /// Find or mount tracefs, clean instances left by dead pidlabs, and
    /// create ours with the signal and process events on.
    pub fn create() -> Result<Instance> {
        let tracefs = tracefs()?;
        let instances = tracefs.join("instances");
        remove_stale(&instances);
        let me = Process::of(std::process::id() as i32).context("read our own start time")?;
        let dir = instances.join(format!("pidlab-{}-{}", me.pid, me.start));
        fs::create_dir(&dir).with_context(|| format!("create the tracefs instance {}", dir.display()))?;
        let instance = Instance { dir };
        // The same clock as CLOCK_MONOTONIC, so event times can be compared
        // with our own.
        fs::write(instance.dir.join("trace_clock"), "mono").context("set trace_clock to mono")?;
        for event in EVENTS {
            fs::write(instance.dir.join("events").join(event).join("enable"), "1")
                .with_context(|| format!("enable the {event} tracepoint"))?;
        }
        Ok(instance)
    }

    pub fn pipe(&self) -> Result<fs::File> {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(self.dir.join("trace_pipe"))
            .context("open trace_pipe")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = fs::write(self.dir.join("events/enable"), "0");
        let _ = fs::remove_dir(&self.dir);
    }
}

/// The tracefs mount point, mounting one in a private mount namespace if
/// the host has none mounted.
fn tracefs() -> Result<PathBuf> {
    for dir in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(dir).join("instances").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    unshare(CloneFlags::CLONE_NEWNS).context("unshare(CLONE_NEWNS) to mount tracefs privately")?;
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .context("make / private")?;
    let dir = PathBuf::from("/sys/kernel/tracing");
    mount(Some("tracefs"), &dir, Some("tracefs"), MsFlags::empty(), None::<&str>)
        .context("mount tracefs (needs root, and a kernel with CONFIG_TRACING)")?;
    Ok(dir)
}

/// Remove the instances of tracers that are gone. An instance is named
/// after its tracer, `pidlab-PID-START` (START: the start time, /proc/PID/stat
/// field 22), so a PID reused by another process does not keep a dead
/// tracer's instance, with its buffers and tracing on, alive. An instance
/// of an older pidlab (`pidlab-PID`) is kept only while PID is a pidlab.
fn remove_stale(instances: &Path) {
    let Ok(dir) = fs::read_dir(instances) else { return };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(owner) = name.strip_prefix("pidlab-") else { continue };
        let alive = match owner.split_once('-') {
            Some((pid, start)) => match (pid.parse(), start.parse()) {
                (Ok(pid), Ok(start)) => Process { pid, start }.alive(),
                _ => false,
            },
            None => owner.parse::<i32>().is_ok_and(|pid| {
                fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|comm| comm.trim() == "pidlab")
            }),
        };
        if !alive {
            let _ = fs::remove_dir(entry.path());
        }
    }
}

/// One line of trace_pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub time: f64,
    /// The task running when the event fired: the sender for
    /// signal_generate, the receiver for signal_deliver.
    pub task_pid: i32,
    pub task_comm: String,
    pub event: String,
    pub fields: HashMap<String, String>,
}

impl Record {
    fn int(&self, key: &str) -> i64 {
        self.fields.get(key).and_then(|v| v.parse().ok()).unwrap_or(-1)
    }
}

/// Parse `  sh-4183  [001] d..2.  2804.220843: signal_generate: sig=15 ... res=1`.
pub fn parse_line(line: &str) -> Option<Record> {
    let line = line.trim_end();
    let open = line.find(" [")?;
    let (task, rest) = line.split_at(open);
    let (task_comm, task_pid) = task.trim().rsplit_once('-')?;
    let task_pid = task_pid.parse().ok()?;
    let rest = &rest[rest.find(']')? + 1..];
    let mut parts = rest.trim_start().splitn(2, ' ');
    let _flags = parts.next()?;
    let rest = parts.next()?.trim_start();
    let (time, rest) = rest.split_once(": ")?;
    let (event, body) = rest.split_once(": ")?;
    let mut fields = HashMap::new();
    let mut last: Option<String> = None;
    for word in body.split(' ') {
        match word.split_once('=') {
            Some((key, value))
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
            {
                fields.insert(key.to_string(), value.to_string());
                last = Some(key.to_string());
            }
            // A comm with a space in it.
            _ => {
                if let Some(key) = &last
                    && let Some(value) = fields.get_mut(key)
                {
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    Some(Record {
        time: time.trim().parse().ok()?,
        task_pid,
        task_comm: task_comm.to_string(),
        event: event.to_string(),
        fields,
    })
}

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
    fn new(start: f64, pid1: i32) -> Timeline {
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
    fn ingest(&mut self, record: &Record) -> Option<Event> {
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

fn monotonic() -> f64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Without root there are no tracepoints to read. Say so once, predict what
/// the stop signal would do (`explain`), then watch what can be seen from
/// /proc — processes leaving, signals pending (SigPnd, ShdPnd) — and how
/// PID 1 ended, labelling every line "predicted" or "observed": none of it
/// is the kernel's own record.
fn observe(args: &TraceArgs, sandbox: &Sandbox, pid1: i32, pidfd: &std::os::fd::OwnedFd) -> Result<i32> {
    let say = |n: usize, label: &str, text: String| match args.format {
        Format::Json => println!("{}", json!({ "n": n, "event": label, "text": text, "recorded": false })),
        Format::Table => println!("{n:>3} {label:<9} {}", crate::output::printable(&text)),
    };
    let stop_signal = sandbox
        .record()
        .and_then(|r| signals::parse_number(&r.stop_signal).ok())
        .and_then(|n| Signal::try_from(n).ok())
        .unwrap_or(Signal::SIGTERM);
    match args.format {
        Format::Json => println!(
            "{}",
            json!({ "n": 0, "event": "tracing", "name": sandbox.name, "pid1": pid1, "recorded": false })
        ),
        Format::Table => println!(
            "tracing {} without root: no kernel record (tracefs needs root); lines are predicted or observed",
            sandbox.name
        ),
    }
    if let Some(fd) = args.ready_fd {
        let ready = std::fs::File::from(crate::sys::take_inherited_fd(fd).context("--ready-fd")?);
        std::io::Write::write_all(&mut &ready, b"r")?;
    }
    // `run --trace` starts us before PID 1 has exec'd the workload: until
    // it has, PID 1 is still a copy of its parent, and a prediction would
    // describe pidlab, not the workload. Wait (at most 2 s) for the exec.
    let cmdline = |pid: i32| fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let parent = procfs::Status::of(pid1).map_or(0, |s| s.ppid);
    let exec_deadline = Instant::now() + Duration::from_secs(2);
    while cmdline(pid1) == cmdline(parent) && Instant::now() < exec_deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    // Then until it has settled: asleep, with the same blocked mask in two
    // looks 10 ms apart (a shell blocks every signal for the moment it
    // forks; an init blocks them for good). At most 500 ms.
    let settle_deadline = Instant::now() + Duration::from_millis(500);
    let look = || procfs::Status::of(pid1).map_or((false, 0), |s| (s.state == 'S', s.blocked));
    while Instant::now() < settle_deadline {
        let (asleep, first) = look();
        std::thread::sleep(Duration::from_millis(10));
        let (still_asleep, second) = look();
        if asleep && still_asleep && first == second {
            break;
        }
    }
    let mut n = 0;
    for row in crate::observe::explain::predict_all(pid1, stop_signal, false) {
        n += 1;

        say(
            n,
            "predicted",
            format!(
                "{} to {} {}: {} ({})",
                stop_signal.as_str(),
                row["comm"].as_str().unwrap_or("?"),
                procfs::pids_text_of(&row["nspid"]),
                row["outcome"].as_str().unwrap_or(""),
                row["why"].as_str().unwrap_or("")
            ),
        );
    }
    let mut alive: HashMap<i32, String> = members(pid1).into_iter().map(|p| (p, procfs::comm(p))).collect();
    let mut pending_seen: HashMap<i32, String> = HashMap::new();
    let started = Instant::now();
    loop {
        // Look every 50 ms; PID 1's exit ends the wait at once.
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let exited = poll(&mut fds, PollTimeout::from(50u8)).unwrap_or(0) > 0;
        let t = started.elapsed().as_secs_f64();
        for pid in members(pid1) {
            alive.entry(pid).or_insert_with(|| procfs::comm(pid));
        }
        let gone: Vec<i32> =
            alive.keys().copied().filter(|p| !Path::new(&format!("/proc/{p}")).exists()).collect();
        for pid in gone {
            n += 1;
            say(
                n,
                "observed",
                format!("{t:.2}s {} (host PID {pid}) is gone", alive.remove(&pid).unwrap_or_default()),
            );
        }
        for (&pid, comm) in &alive {
            let Some(status) = procfs::Status::of(pid) else { continue };
            let pending = signals::names_in(status.pending).join(" ");
            if !pending.is_empty() && pending_seen.get(&pid) != Some(&pending) {
                n += 1;
                say(
                    n,
                    "observed",
                    format!("{t:.2}s {comm} (host PID {pid}) has {pending} pending (queued, not yet taken)"),
                );
            }
            pending_seen.insert(pid, pending);
        }
        if exited {
            break;
        }
    }
    // The supervisor records how PID 1 ended; give it a moment to do so.
    let deadline = Instant::now() + Duration::from_secs(2);
    let how = loop {
        if let Some(exit) = sandbox.read("exit.json") {
            break exit["how"].as_str().unwrap_or("exited").to_string();
        }
        if Instant::now() >= deadline {
            break "exited (its status was not recorded)".to_string();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    n += 1;
    say(n, "observed", format!("PID 1 ended: {how}"));
    let verdict = format!(
        "inferred, not recorded: PID 1 ended ({how}); the prediction above says what {} would have done to each process",
        stop_signal.as_str()
    );
    match args.format {
        Format::Json => {
            println!("{}", json!({ "n": n + 1, "event": "verdict", "text": verdict, "recorded": false }))
        }
        Format::Table => println!("verdict ({verdict})"),
    }
    Ok(0)
}

/// `run --trace` starts us before its sandbox exists: wait until it is
/// registered with a live PID 1 (checked every 2 ms, at most `limit`).
fn await_sandbox(name: &str, limit: Duration) -> Result<()> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(sandbox) = Sandbox::open(name)
            && sandbox.status().is_running()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("sandbox {name:?} did not appear within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Print one event, numbered, in the chosen format.
fn show(n: usize, event: &Event, format: Format) {
    if format == Format::Json {
        let mut line = event.to_json();
        line["n"] = json!(n);
        println!("{line}");
        return;
    }
    let who = |w: &Who| {
        let place = if w.inside { w.pids() } else { format!("{} (host)", w.pids()) };
        format!("{} {place}", crate::output::printable(w.name()))
    };
    let (t, target, outcome) = (event.t, who(&event.target), event.outcome.text());
    match &event.kind {
        Kind::Generate { signal, sender, .. } => {
            println!("{n:>3} {t:>8.3}s  {signal} -> {target} by {}: {outcome}", who(sender))
        }
        Kind::Deliver { signal } => println!("{n:>3} {t:>8.3}s  {signal} at {target}: {outcome}"),
        Kind::Exit => println!("{n:>3} {t:>8.3}s  {target} {outcome}"),
    }
}

pub fn run(args: TraceArgs) -> Result<i32> {
    if args.ready_fd.is_some() {
        await_sandbox(&args.name, Duration::from_secs(5))?;
    }
    // Refused before anything is traced, not after.
    let picture = args.svg.as_deref().map(picture_file).transpose()?;
    let sandbox = Sandbox::open(&args.name)?;
    let (_, pid1, pidfd) = open_pid1(&sandbox, "trace")?;
    if !nix::unistd::geteuid().is_root() {
        return observe(&args, &sandbox, pid1.pid, &pidfd);
    }
    // Ctrl-C and SIGTERM end the trace cleanly (the instance is removed).
    let mut stop = SigSet::empty();
    stop.add(Signal::SIGINT);
    stop.add(Signal::SIGTERM);
    stop.thread_block()?;
    let signals = SignalFd::with_flags(&stop, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;

    let instance = Instance::create()?;
    let mut pipe = instance.pipe()?;
    let mut timeline = Timeline::new(monotonic(), pid1.pid);
    let header = format!(
        "tracing {} (PID 1 = host PID {}); times from now; PIDs as host/ns1/ns2...",
        sandbox.name, pid1.pid
    );
    if args.format == Format::Json {
        println!("{}", json!({ "n": 0, "event": "tracing", "name": sandbox.name, "pid1": pid1.pid }));
    } else {
        println!("{header}");
    }
    if let Some(fd) = args.ready_fd {
        // The descriptor was handed down by `pidlab run --trace`.
        let ready = std::fs::File::from(
            crate::sys::take_inherited_fd(fd).with_context(|| format!("--ready-fd {fd} is not open"))?,
        );
        std::io::Write::write_all(&mut &ready, b"r").context("tell pidlab run that tracing is on")?;
    }

    let mut pending = String::new();
    let mut ended_at: Option<Instant> = None;
    loop {
        // After PID 1 has gone, keep reading a little: the namespace's
        // teardown events are still arriving.
        let timeout = match ended_at {
            Some(at) => {
                let left = Duration::from_millis(300).saturating_sub(at.elapsed());
                if left.is_zero() {
                    break;
                }
                PollTimeout::try_from(left.as_millis() as i32).unwrap_or(PollTimeout::ZERO)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [
            PollFd::new(pipe.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
            PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(errno) => return Err(errno).context("poll"),
        }
        let interrupted = fds[1].revents().is_some_and(|r| !r.is_empty());
        let exited = fds[2].revents().is_some_and(|r| !r.is_empty());
        let mut chunk = [0u8; 65536];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(record) = parse_line(&line)
                    && let Some(event) = timeline.ingest(&record)
                {
                    show(timeline.events.len() + 1, &event, args.format);
                    timeline.events.push(event);
                }
            }
        }
        if interrupted {
            break;
        }
        if exited && ended_at.is_none() {
            ended_at = Some(Instant::now());
        }
    }
    drop(pipe);
    drop(instance);
    let verdict = timeline.verdict();
    if args.format == Format::Json {
        println!("{}", json!({ "n": timeline.events.len() + 1, "event": "verdict", "text": verdict }));
    } else {
        println!("verdict: {verdict}");
    }
    if let (Some(mut file), Some(path)) = (picture, &args.svg) {
        let title = format!("pidlab trace {}: every signal, sender to target", sandbox.name);
        let svg = picture::svg(&title, &timeline.events, &verdict);
        std::io::Write::write_all(&mut file, svg.as_bytes())
            .with_context(|| format!("write the picture to {}", path.display()))?;
    }
    Ok(0)
}

/// Open (create or empty) the file `--svg` names, refusing what cannot be
/// drawn: without root there is no kernel record to draw.
fn picture_file(path: &Path) -> Result<fs::File> {
    if !nix::unistd::geteuid().is_root() {
        bail!(
            "--svg {} draws the kernel's record of each signal, and reading tracefs needs root: run as root, or leave out --svg",
            path.display()
        );
    }
    fs::File::create(path).with_context(|| {
        format!(
            "--svg {}: cannot create the file; give a path in a directory you can write to",
            path.display()
        )
    })
}

/// `pidlab run --trace`: `pidlab trace NAME` as a child, its timeline on
/// our stderr; it ends by itself once PID 1 has exited.
pub struct Follower {
    child: std::process::Child,
    ready: OwnedFd,
}

impl Follower {
    /// `svg`: `run --trace --svg FILE`, handed on as `trace --svg FILE`.
    pub fn start(name: &str, svg: Option<&Path>) -> Result<Follower> {
        use std::os::fd::AsFd;
        if let Some(file) = svg {
            picture_file(file)?;
        }
        let (ready, ready_tx) = nix::unistd::pipe().context("pipe")?; // inherited by the tracer
        let stderr = std::io::stderr().as_fd().try_clone_to_owned()?;
        let mut command = std::process::Command::new(std::env::current_exe()?);
        command.args(["trace", name, "--ready-fd", &ready_tx.as_raw_fd().to_string()]);
        if let Some(file) = svg {
            command.arg("--svg").arg(file);
        }
        let child = command.stdout(stderr).spawn().context("start pidlab trace")?;
        Ok(Follower { child, ready })
    }

    /// Wait (at most 5 s) for the tracer's word that tracing is on.
    pub fn wait_ready(&self) -> Result<()> {
        use std::os::fd::AsFd;
        let mut fds = [nix::poll::PollFd::new(self.ready.as_fd(), nix::poll::PollFlags::POLLIN)];
        let mut byte = [0u8; 1];
        let polled = nix::poll::poll(&mut fds, nix::poll::PollTimeout::try_from(5000).expect("5 s"));
        if polled.unwrap_or(0) > 0 && nix::unistd::read(&self.ready, &mut byte).unwrap_or(0) == 1 {
            return Ok(());
        }
        bail!("pidlab trace did not start (it needs root and tracefs; see `pidlab doctor`)")
    }

    /// Wait (at most 5 s) for its verdict, then make sure it is gone.
    pub fn finish(mut self) {
        // A pidfd turns readable when the tracer exits: no polling loop.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        if let Ok(pidfd) = crate::sys::pidfd_open(pid) {
            let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
            let _ = poll(&mut fds, PollTimeout::from(5000u16));
        }
        let _ = self.child.try_wait();
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_trace_pipe_line() {
        let line = "              sh-23789   [001] d..1.  2804.220843: signal_generate: sig=15 errno=0 code=0 comm=sh pid=23801 grp=1 res=1\n";
        let r = parse_line(line).unwrap();
        assert_eq!(r.task_pid, 23789);
        assert_eq!(r.task_comm, "sh");
        assert_eq!(r.event, "signal_generate");
        assert_eq!(r.time, 2804.220843);
        assert_eq!(r.int("sig"), 15);
        assert_eq!(r.int("res"), 1);
        assert_eq!(r.fields["comm"], "sh");
    }

    #[test]
    fn parses_task_names_with_dashes_and_comms_with_spaces() {
        let line = "  pidlab:nest-1-999 [000] d..1. 10.5: signal_generate: sig=9 errno=0 code=128 comm=Web Content pid=5 grp=1 res=0";
        let r = parse_line(line).unwrap();
        assert_eq!(r.task_pid, 999);
        assert_eq!(r.task_comm, "pidlab:nest-1");
        assert_eq!(r.fields["comm"], "Web Content");
        assert_eq!(r.int("pid"), 5);
        assert_eq!(r.int("code"), 128);
    }
}
