//! pidlab's built-in init against Debian's tini, in one run (as root):
//!
//! - reaping: a probe leaves 10,000 orphans that exit at once; they are all
//!   handed to PID 1 when their parent exits; the probe measures how long
//!   until no zombie is left in the namespace (median of 10 runs, interleaved, alternating which goes first);
//! - forwarding latency: the host sends SIGUSR1 to PID 1 (the init), which
//!   forwards it to the probe; the probe stamps the moment its handler ran
//!   (CLOCK_MONOTONIC); median of 1,000 signals, one at a time;
//! - the init's resident memory (VmRSS) while it runs.
//!
//! The probe as PID 1 itself, with no init, is the reference for latency.
//!
//! Then the cost of tracing: the same latency for a probe that
//! `pidlab trace` follows, against one that nobody traces, signalled in turn.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::channel;
use std::time::Duration;

const ORPHANS: &str = "10000";
const SIGNALS: usize = 1000;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pidlab")
}

fn monotonic_ns() -> u128 {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).unwrap();
    t.tv_sec() as u128 * 1_000_000_000 + t.tv_nsec() as u128
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// PID 1 of the sandbox `pidlab run` (PID `pid`) started: its child that is
/// not `pidlab:watch`, the watcher it starts first.
fn first_child(pid: u32) -> i32 {
    let comm = |child: &str| std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
    for _ in 0..10_000 {
        let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
        if let Some(child) = text.split_whitespace().find(|c| comm(c).trim() != "pidlab:watch") {
            return child.parse().unwrap();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("pidlab {pid} has no child");
}

fn reap_once(init: &[&str]) -> f64 {
    {
        let out = Command::new(bin())
            .arg("run")
            .args(init)
            .args([
                "--",
                "pidlab",
                "probe",
                "--orphans",
                ORPHANS,
                "--orphan-life",
                "0",
                "--await-reaped",
                "--sleep",
                "0",
            ])
            .output()
            .expect("run pidlab");
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("probe: all orphans reaped after "))
            .and_then(|l| l.trim_end_matches(" ms").parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no reap time: {text} {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// A sandboxed probe catching SIGUSR1 and stamping each one.
struct Catcher {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    pid1: i32,
}

impl Catcher {
    fn start(init: &[&str]) -> Catcher {
        let mut child = Command::new(bin())
            .env("PIDLAB_STATE_DIR", state_dir())
            .arg("run")
            .args(init)
            .args(["--", "pidlab", "probe", "--catch", "USR1", "--timestamps"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("run pidlab");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        while !lines.recv_timeout(Duration::from_secs(10)).expect("probe ready").contains("probe: ready") {}
        let pid1 = first_child(child.id());
        Catcher { child, lines, pid1 }
    }

    /// VmRSS of PID 1, in kB.
    fn rss(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid1))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// Send SIGUSR1 to PID 1 from the host; µs until the probe's handler ran.
    fn ping(&self) -> f64 {
        let sent = monotonic_ns();
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid1), nix::sys::signal::Signal::SIGUSR1)
            .unwrap();
        let line = self.lines.recv_timeout(Duration::from_secs(10)).expect("the probe caught it");
        let caught: u128 = line.trim_start_matches("probe: ").split(' ').next().unwrap().parse().unwrap();
        caught.saturating_sub(sent) as f64 / 1000.0
    }
}

impl Drop for Catcher {
    fn drop(&mut self) {
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid1), nix::sys::signal::Signal::SIGKILL);
        // And pidlab itself, so that a wrong PID 1 cannot leave us waiting
        // for ever (its watcher then kills the sandbox).
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn state_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("pidlab-bench-{}", std::process::id()))
}

fn main() {
    assert!(nix::unistd::geteuid().is_root(), "run as root");
    assert!(std::path::Path::new("/usr/bin/tini").exists(), "needs /usr/bin/tini: apt-get install tini");
    let inits =
        [("pidlab init (--init)", &["--init"][..]), ("tini 0.19 (Debian)", &["--init=/usr/bin/tini"][..])];
    // Interleaved, so that a change in the machine's state during the run
    // weighs on both alike.
    let mut reaps = [Vec::new(), Vec::new()];
    // Which one goes first alternates too: the first run of a pair pays for
    // what the previous one left (10,000 tasks' memory to give back).
    for round in 0..10 {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            reaps[i].push(reap_once(inits[i].1));
        }
    }
    // All three sandboxes at once, signalled in turn.
    let catchers = [Catcher::start(inits[0].1), Catcher::start(inits[1].1), Catcher::start(&[])];
    let mut latencies = [Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..SIGNALS {
        for (i, catcher) in catchers.iter().enumerate() {
            latencies[i].push(catcher.ping());
        }
    }
    println!("{:<28} {:>16} {:>22} {:>12}", "PID 1", "reap 10k (ms)", "forward USR1 (µs)", "VmRSS (kB)");
    for (i, (label, _)) in inits.iter().enumerate() {
        let reap = median(reaps[i].clone());
        let latency = median(latencies[i].clone());
        println!("{label:<28} {reap:>16.1} {latency:>22.1} {:>12}", catchers[i].rss());
    }
    println!(
        "{:<28} {:>16} {:>22.1} {:>12}",
        "no init (probe is PID 1)",
        "-",
        median(latencies[2].clone()),
        "-"
    );
    drop(catchers);

    // Tracing's cost: two probes as PID 1, one followed by `pidlab trace`.
    let plain = Catcher::start(&["--name", "untraced"]);
    let traced = Catcher::start(&["--name", "traced"]);
    let mut tracer = Command::new(bin())
        .env("PIDLAB_STATE_DIR", state_dir())
        .args(["trace", "traced", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("pidlab trace");
    let mut tracer_out = BufReader::new(tracer.stdout.take().unwrap());
    let mut first = String::new();
    tracer_out.read_line(&mut first).expect("tracing line");
    assert!(first.contains("tracing"), "{first}");
    std::thread::spawn(move || tracer_out.lines().for_each(drop));
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..SIGNALS {
        a.push(plain.ping());
        b.push(traced.ping());
    }
    let (a, b) = (median(a), median(b));
    println!(
        "\nSIGUSR1 to a PID 1 with a handler, median µs: untraced {a:.1}, traced {b:.1}, overhead {:.1}",
        b - a
    );
    drop(plain);
    drop(traced);
    let _ = tracer.wait();
    let _ = std::fs::remove_dir_all(state_dir());
}
