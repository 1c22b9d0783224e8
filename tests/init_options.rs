//! `pidlab init` against the peers people would otherwise choose: every
//! catchable signal forwarded (real-time ones, and synchronous ones sent
//! with kill(2), as dumb-init does), `--group` with `--drain`, a subreaper
//! in every mode, and tini's and dumb-init's options with their meaning.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(20);

/// Send signal number `signo` (real-time ones included) to `pid`.
fn send(pid: i32, signo: i32) {
    // SAFETY: kill(2) with integers only.
    let rc = unsafe { libc::kill(pid, signo) };
    assert_eq!(rc, 0, "kill {pid} {signo}: {}", std::io::Error::last_os_error());
}

/// SIGKILL an init and its workload (which leads a process group of its
/// own, so killing the test's group would miss it).
fn kill_init_and_child(init: i32) {
    for child in children(init) {
        let _ = kill(Pid::from_raw(child), Signal::SIGKILL);
    }
    let _ = kill(Pid::from_raw(init), Signal::SIGKILL);
}

/// Kills an init and its workload when dropped, so a test that fails
/// half-way (a line that never came) leaves neither behind: the workload
/// leads its own process group, which the test's group kill misses.
struct Reaped(i32);

impl Drop for Reaped {
    fn drop(&mut self) {
        kill_init_and_child(self.0);
    }
}

/// A bash workload that traps `signals` (numbers) and says which arrived.
fn trapper(signals: &[i32]) -> String {
    let traps: String = signals.iter().map(|n| format!("trap 'echo caught {n}' {n}; ")).collect();
    format!("{traps}echo ready; while :; do sleep 0.05 & wait $!; done")
}

/// Send `signo` to `pid` with sigqueue(3): si_code SI_QUEUE (-1), a
/// process's signal, as kill(2)'s SI_USER is.
fn queue(pid: i32, signo: i32) {
    // SAFETY: sigqueue(3) with integers and a plain union value only.
    let rc = unsafe { libc::sigqueue(pid, signo, libc::sigval { sival_ptr: std::ptr::null_mut() }) };
    assert_eq!(rc, 0, "sigqueue {pid} {signo}: {}", std::io::Error::last_os_error());
}

/// Start `INIT... bash -c TRAPPER` on the host, send each of `signals` to
/// the init's PID, and return the numbers the workload caught, in order.
fn caught_under(init: &[&str], signals: &[i32]) -> Vec<i32> {
    caught_under_sent(init, signals, send)
}

fn caught_under_sent(init: &[&str], signals: &[i32], sender: fn(i32, i32)) -> Vec<i32> {
    let script = trapper(signals);
    let mut cmd = std::process::Command::new(init[0]);
    cmd.args(&init[1..]).args(["--", "/bin/bash", "-c", &script]);
    let mut running = Running::start(&mut cmd);
    let reaped = Reaped(running.pid());
    running.expect_line("ready", T);
    let mut caught = Vec::new();
    for n in signals {
        sender(running.pid(), *n);
        let line = running.expect_line(&format!("caught {n}"), T);
        caught.push(line.trim_start_matches("caught ").parse().unwrap());
    }
    drop(reaped);
    let _ = running.finish(T);
    caught
}

/// Real-time signals (SIGRTMIN+3 = 37 for systemd images, SIGRTMAX = 64)
/// and synchronous signals sent with kill(2) reach the workload. tini
/// forwards the former; dumb-init both.
#[test]
fn real_time_and_kill_sent_synchronous_signals_are_forwarded() {
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    require("/usr/bin/dumb-init", "apt-get install dumb-init (.ci/run does)");
    let rt = [34, 37, 64];
    assert_eq!(caught_under(&["/usr/bin/tini", "-s"], &rt), rt, "tini forwards real-time signals");
    assert_eq!(caught_under(&[bin(), "init"], &rt), rt);
    let sync =
        [libc::SIGABRT, libc::SIGSEGV, libc::SIGBUS, libc::SIGFPE, libc::SIGILL, libc::SIGTRAP, libc::SIGSYS];
    assert_eq!(
        caught_under(&["/usr/bin/dumb-init", "--single-child"], &sync),
        sync,
        "dumb-init forwards them"
    );
    assert_eq!(caught_under(&[bin(), "init"], &sync), sync);
    // sigqueue(3) is a process's too (si_code SI_QUEUE, below zero): only
    // a fault the kernel raised (si_code above zero) is the init's own.
    assert_eq!(caught_under_sent(&[bin(), "init"], &sync, queue), sync, "sent with sigqueue");
}

/// dumb-init's `--rewrite S:R` (nginx stops gracefully on QUIT), and an
/// exit code remapped to 0 with tini's `-e` (Java exits 143 on SIGTERM).
#[test]
fn rewrite_and_exit_code_remapping() {
    let script = trapper(&[libc::SIGQUIT]);
    let mut running =
        Running::start(&mut pidlab(["init", "--rewrite", "15:3", "--", "/bin/bash", "-c", &script]));
    let reaped = Reaped(running.pid());
    running.expect_line("ready", T);
    send(running.pid(), libc::SIGTERM);
    running.expect_line("caught 3", T);
    drop(reaped);
    let _ = running.finish(T);

    let out = run(["init", "-e", "143", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let out = run(["init", "-e", "1", "--", "sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code(), 143, "{out:?}");
}

/// `--group` with `--drain`: the stop signal goes to every process, any
/// other signal to the workload's process group only.
#[test]
fn group_and_drain_combine() {
    let lab = Lab::new();
    // The workload's group: sh (ignoring USR1) and a probe; outside it, a
    // probe in a session of its own, which must hear TERM but not USR1.
    let script =
        "trap '' USR1; pidlab probe --catch USR1,TERM & setsid pidlab probe --catch USR1,TERM & wait";
    let init = ["pidlab", "init", "--drain", "--group", "--grace", "1", "--", "sh", "-c", script];
    lab.ok(&[&["run", "-d", "--name", "gd", "--"][..], &init].concat());
    wait_until(T, "both probes ready", || {
        lab.run(&["logs", "gd"]).stdout.matches("probe: ready").count() == 2
    });
    lab.ok(&["kill", "-s", "USR1", "gd"]);
    wait_until(T, "USR1 to the group", || lab.run(&["logs", "gd"]).stdout.contains("caught SIGUSR1"));
    lab.ok(&["stop", "-t", "10", "gd"]);
    let logs = lab.ok(&["logs", "gd"]);
    assert_eq!(logs.matches("caught SIGUSR1").count(), 1, "USR1 went beyond the group: {logs}");
    assert_eq!(logs.matches("caught SIGTERM").count(), 2, "TERM did not reach everyone: {logs}");
    lab.finish();
}

/// Not PID 1, `--drain` becomes a subreaper, as the other modes: it
/// forwards to its descendants (an orphan included) and leaves when none
/// is left, SIGKILLing the last after the grace period.
#[test]
fn drain_outside_a_pid_namespace_is_a_subreaper() {
    let tmp = private_tmp();
    let (saved, log) = (tmp.path().join("saved"), tmp.path().join("orphan.log"));
    // A third orphan ignores SIGTERM and exits by itself 0.6 s in, inside
    // the grace period: the init wakes for it and must keep waiting.
    let script = format!(
        "(trap '' TERM; sleep 0.6 &); (pidlab probe --catch TERM --log {} &); exec pidlab probe --on-term-save {}",
        log.display(),
        saved.display()
    );
    let mut cmd = pidlab(["init", "--drain", "--grace", "1", "--", "sh", "-c", &script]);
    cmd.env("PATH", format!("{}:/usr/bin:/bin", std::path::Path::new(bin()).parent().unwrap().display()));
    let mut running = Running::start(&mut cmd);
    running.expect_line("probe: ready", T);
    running.expect_line("probe: ready", T);
    send(running.pid(), libc::SIGTERM);
    let sent = std::time::Instant::now();
    let out = running.finish(T);
    // The child saves and exits at once; the orphan catches SIGTERM and
    // carries on, so the init waits out its grace period (1 s) for it,
    // then SIGKILLs it and leaves.
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(8),
        "drain left {waited:?} after SIGTERM, with an orphan still running: {out:?}"
    );
    assert!(saved.exists(), "the child never got SIGTERM: {out:?}");
    let heard = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(heard.contains("SIGTERM"), "the orphan never got SIGTERM: {out:?}");
    assert_eq!(out.code(), 0, "{out:?}");
}

/// The init keeps nothing of its caller's it does not need (descriptors
/// above 2, the working directory), and hands the workload what it
/// inherited (an ignored SIGHUP, as under nohup).
#[test]
fn the_init_is_transparent() {
    let script = "trap '' HUP; exec 7</dev/null; cd /tmp; exec \"$0\" init -- sh -c 'grep SigIgn /proc/self/status; echo ready; read x'";
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", script, bin()]);
    let mut running = Running::start(&mut cmd);
    let ignored = running.expect_line("SigIgn", T);
    let mask = u64::from_str_radix(ignored.split_whitespace().nth(1).unwrap(), 16).unwrap();
    assert_eq!(mask & 1, 1, "SIGHUP (bit 0) is no longer ignored: {ignored}");
    running.expect_line("ready", T);
    let init = running.pid();
    let fds: Vec<String> = std::fs::read_dir(format!("/proc/{init}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!fds.contains(&"7".to_string()), "the init keeps descriptor 7: {fds:?}");
    let cwd = std::fs::read_link(format!("/proc/{init}/cwd")).unwrap();
    assert_eq!(cwd, std::path::Path::new("/"), "the init holds its caller's directory");
    running.write_stdin("\n");
    let out = running.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
}

/// tini's verbosity (-v, TINI_VERBOSITY) and -w, dumb-init's session,
/// and `--version`.
#[test]
fn peers_options_and_environment() {
    // The orphan's PID is printed by a subshell that exits at once; the
    // workload then waits until the init has reaped it (kill -0 succeeds
    // on a zombie).
    let script = "pid=$( (true & echo $!) ); while kill -0 $pid 2>/dev/null; do sleep 0.01; done";
    let out = run(["init", "-vv", "-w", "--", "sh", "-c", script]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("started sh"), "{out:?}");
    assert!(out.stderr.contains("warning: reaped zombie"), "{out:?}");
    let mut cmd = pidlab(["init", "--", "true"]);
    cmd.env("TINI_VERBOSITY", "2");
    assert!(run_within(cmd, T).stderr.contains("started true"));
    assert!(!run(["init", "--", "true"]).stderr.contains("started"));

    let out = run(["init", "--setsid", "--", "sh", "-c", "cut -d' ' -f6 /proc/self/stat; echo $$"]);
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{out:?}");
    assert_eq!(words[0], words[1], "the workload does not lead its session: {out:?}");

    let version = run(["init", "--version"]);
    assert_eq!(version.code(), 0, "{version:?}");
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")), "{version:?}");
}

/// The modes of `pidlab init`, each a combination of its two switches.
const MODES: [&[&str]; 4] = [&[], &["--group"], &["--drain"], &["--group", "--drain"]];

/// The core contract, in every mode: every catchable signal but the ones
/// the init needs for itself reaches the workload (classic, real-time, and
/// synchronous ones sent with kill(2)); the init exits with the workload's
/// code, or 128+N after signal N; and, not being PID 1 here, it is a
/// subreaper that adopts and reaps the workload's orphans. Each mode's
/// failures are collected, so one run names every broken cell.
#[test]
fn every_mode_keeps_the_core_contract() {
    let forwarded = [
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGWINCH,
        libc::SIGCONT,
        libc::SIGSEGV,
        libc::SIGABRT,
        34,
        37,
        64,
        // Last: in drain mode the stop signal starts the drain.
        libc::SIGTERM,
    ];
    let mut broken = Vec::new();
    for mode in MODES {
        let init: Vec<&str> = [bin(), "init"].into_iter().chain(mode.iter().copied()).collect();
        let caught = caught_under(&init, &forwarded);
        if caught != forwarded {
            broken.push(format!("{mode:?}: forwarded {caught:?} of {forwarded:?}"));
        }
        for (script, code) in [("exit 3", 3), ("kill -USR1 $$", 128 + libc::SIGUSR1)] {
            let out = run(init.iter().skip(1).copied().chain(["--", "sh", "-c", script]));
            if out.code() != code {
                broken.push(format!("{mode:?}: `{script}` exited {}, not {code}", out.code()));
            }
        }
        if let Err(what) = adopts_and_reaps(&init) {
            broken.push(format!("{mode:?}: {what}"));
        }
    }
    assert!(broken.is_empty(), "modes that break the contract:\n{}", broken.join("\n"));
}

/// The workload leaves an orphan: it must become the init's child (the
/// init is a subreaper when it is not PID 1), and, once it exits, be
/// reaped, not left a zombie.
fn adopts_and_reaps(init: &[&str]) -> Result<(), String> {
    let script = "sh -c 'sleep 1 & echo orphan $!'; read x";
    let mut cmd = std::process::Command::new(init[0]);
    cmd.args(&init[1..]).args(["--", "sh", "-c", script]);
    let mut running = Running::start(&mut cmd);
    let _reaped = Reaped(running.pid());
    let line = running.expect_line("orphan", T);
    let orphan: i32 = line.trim_start_matches("orphan ").trim().parse().map_err(|_| line.clone())?;
    // It is an orphan once the shell that printed its PID has exited.
    let init = running.pid().to_string();
    let deadline = std::time::Instant::now() + T;
    loop {
        let parent = std::fs::read_to_string(format!("/proc/{orphan}/status"))
            .ok()
            .and_then(|s| s.lines().find_map(|l| l.strip_prefix("PPid:")).map(|p| p.trim().to_string()))
            .unwrap_or_default();
        if parent == init {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("orphan {orphan}'s parent is {parent:?}, not the init {init}, after {T:?}"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let gone = std::path::PathBuf::from(format!("/proc/{orphan}"));
    while gone.exists() {
        if std::time::Instant::now() > deadline {
            let state = status_field(orphan, "State");
            return Err(format!("orphan {orphan} not reaped after it exited: {state}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    running.write_stdin("\n");
    let _ = running.finish(T);
    Ok(())
}

/// Started with stdin closed, pidlab init (as every pidlab command) first
/// gives descriptor 0 a /dev/null, as Rust programs do, so the workload's
/// tcsetpgrp finds no terminal (ENOTTY) and it runs with /dev/null for
/// stdin. tini keeps the closed descriptor, and its child stops on the
/// failed tcsetpgrp (EBADF). (pidlab's init stops on such a failure too,
/// except ENOTTY, but with descriptors 0-2 always open no test here can
/// make tcsetpgrp fail otherwise: on a hung-up terminal it is ENOTTY too.)
#[test]
fn a_closed_stdin_becomes_dev_null_where_tini_refuses() {
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    let under = |init: &str, stdin: &str| {
        let mut cmd = std::process::Command::new("sh");
        cmd.args(["-c", &format!("exec {init} -- readlink /proc/self/fd/0 {stdin}")]);
        run_within(cmd, T)
    };
    let ours = under(&format!("{} init", bin()), "<&-");
    assert_eq!((ours.code(), ours.stdout.trim()), (0, "/dev/null"), "{ours:?}");
    let tini = under("/usr/bin/tini -s", "<&-");
    assert_ne!(tini.code(), 0, "{tini:?}");
    assert!(tini.stderr.contains("tcsetpgrp failed"), "{tini:?}");
    for init in [format!("{} init", bin()), "/usr/bin/tini -s".to_string()] {
        let out = under(&init, "</dev/null");
        assert_eq!(
            (out.code(), out.stdout.trim()),
            (0, "/dev/null"),
            "{init}, stdin not a terminal: {out:?}"
        );
    }
}
