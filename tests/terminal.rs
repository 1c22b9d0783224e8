//! Standard input and the terminal, as `docker run` has them: no stdin
//! without `-i`; and a way out of a foreground run whose PID 1 drops
//! Ctrl-C, taught on the spot.

mod common;

use std::time::Duration;

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(20);

/// `pidlab ARGS...` on a pseudo-terminal of script(1)'s, as a user at a
/// terminal runs it: what is written to the session is typed there.
fn on_a_terminal(args: &str) -> Running {
    require("/usr/bin/script", "apt-get install bsdutils");
    let command = format!("{} {args}", bin());
    let mut cmd = std::process::Command::new("/usr/bin/script");
    cmd.args(["-qec", &command, "/dev/null"]);
    Running::start(&mut cmd)
}

/// Send SIGINT to `pid` and wait until it has taken it: two standard
/// signals sent before the first is taken merge into one (signal(7)), as
/// two Ctrl-C typed faster than pidlab reads them would.
fn interrupt(pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGINT).unwrap();
    wait_until(T, "pidlab to take its SIGINT", || {
        let pending = |field: &str| u64::from_str_radix(&status_field(pid, field), 16).unwrap_or(0);
        (pending("SigPnd") | pending("ShdPnd")) & (1 << (libc::SIGINT - 1)) == 0
    });
}

/// `docker run` gives the workload no stdin unless `-i` keeps it open.
#[test]
fn stdin_reaches_the_workload_only_with_i() {
    for (flags, want) in [(&[][..], "done"), (&["-i"][..], "hello\ndone")] {
        let mut sandbox = Running::start(&mut pidlab(
            [&["run"][..], flags, &["--", "sh", "-c", "cat; echo done"]].concat(),
        ));
        sandbox.write_stdin("hello\n");
        drop(sandbox.stdin.take());
        let out = sandbox.finish(T);
        assert_eq!((out.code(), out.stdout.trim()), (0, want), "{flags:?}: {out:?}");
    }
}

/// A foreground run whose PID 1 has no SIGINT handler: Ctrl-C (here the
/// signal, as the terminal would send it to pidlab's process group) is
/// forwarded, dropped by the kernel, and pidlab says so and how to get
/// out; the third within 2 s SIGKILLs PID 1.
#[test]
fn three_ctrl_c_end_a_pid_1_that_drops_them() {
    let mut sandbox = Running::start(&mut pidlab(["run", "--", "pidlab", "probe"]));
    sandbox.expect_line("probe: ready", T);
    interrupt(sandbox.pid());
    // The probe is still there after the first: its PID 1 dropped it.
    let out = {
        let pidfd = pidfd_open(Pid::from_raw(sandbox.pid()));
        assert!(!exits_within(&pidfd, Duration::from_millis(300)), "one Ctrl-C ended the run");
        interrupt(sandbox.pid());
        kill(Pid::from_raw(sandbox.pid()), Signal::SIGINT).unwrap();
        sandbox.finish(T)
    };
    assert_eq!(out.code(), 137, "{out:?}");
    assert!(out.stderr.contains("SIGINT to PID 1 was dropped"), "no word of why: {out:?}");
    assert!(out.stderr.contains("twice more within 2 s"), "no way out shown: {out:?}");
    assert!(out.stderr.contains("sending SIGKILL"), "{out:?}");
}

/// A PID 1 that handles SIGINT gets every one; when it carries on all the
/// same (a shell waiting for its command does), the third within 2 s
/// still gets the user out. With `--nest`, the workload is the innermost
/// PID 1, reached through pidlab's own outer inits. Other signals it
/// handles do not count.
#[test]
fn three_ctrl_c_end_a_pid_1_that_catches_them_and_carries_on() {
    for nest in ["1", "3"] {
        let mut sandbox =
            Running::start(&mut pidlab(["run", "--nest", nest, "--", "pidlab", "probe", "--catch", "INT"]));
        sandbox.expect_line("probe: ready", T);
        for _ in 1..=2 {
            interrupt(sandbox.pid());
            sandbox.expect_line("caught SIGINT", T);
        }
        interrupt(sandbox.pid());
        let out = sandbox.finish(T);
        assert_eq!(out.code(), 137, "--nest {nest}: {out:?}");
        assert!(out.stderr.contains("caught SIGINT, and is still running"), "--nest {nest}: {out:?}");
        assert!(!out.stderr.contains("was dropped"), "--nest {nest}: {out:?}");
        assert!(out.stderr.contains("sending SIGKILL"), "--nest {nest}: {out:?}");
    }
    // Any other signal PID 1 handles is forwarded as often as it comes.
    // (A state directory of the test's own: the SIGKILLed run's record is
    // left there, not in the machine's.)
    let lab = Lab::new();
    let mut sandbox = Running::start(&mut lab.cmd(&["run", "--", "pidlab", "probe", "--catch", "USR1"]));
    sandbox.expect_line("probe: ready", T);
    for _ in 1..=4 {
        kill(Pid::from_raw(sandbox.pid()), Signal::SIGUSR1).unwrap();
        sandbox.expect_line("caught SIGUSR1", T);
    }
    kill(Pid::from_raw(sandbox.pid()), Signal::SIGKILL).unwrap();
    let out = sandbox.finish(T);
    assert!(!out.stderr.contains("sending SIGKILL"), "handled USR1s ended the run: {out:?}");
    lab.finish();
}

/// The same for a PID 1 that drops Ctrl-C three levels down: pidlab's
/// outer inits pass it on, the innermost PID 1 drops it, and pidlab says
/// so and gets out on the third.
#[test]
fn three_ctrl_c_end_a_nested_pid_1_that_drops_them() {
    let mut sandbox = Running::start(&mut pidlab(["run", "--nest", "3", "--", "pidlab", "probe"]));
    sandbox.expect_line("probe: ready", T);
    for _ in 1..=3 {
        interrupt(sandbox.pid());
    }
    let out = sandbox.finish(T);
    assert_eq!(out.code(), 137, "{out:?}");
    assert!(out.stderr.contains("was dropped") && out.stderr.contains("dropped again"), "{out:?}");
}

/// The same through a real terminal: script(1) runs pidlab on a
/// pseudo-terminal, and the Ctrl-C bytes typed into it become SIGINT from
/// the terminal driver, sent to the foreground process group, pidlab's.
#[test]
fn ctrl_c_typed_on_a_terminal_reaches_pidlab_and_the_third_gets_out() {
    let mut session = on_a_terminal("run -- pidlab probe");
    session.expect_line("probe: ready", T);
    press_ctrl_c_three_times(&mut session);
    let out = session.finish(T);
    assert!(out.stdout.contains("sending SIGKILL"), "{out:?}");
}

/// Type Ctrl-C three times, each after pidlab has said what it did with
/// the one before (its stderr is the same terminal): dropped, dropped
/// again, and the third gets out.
fn press_ctrl_c_three_times(session: &mut Running) {
    session.write_stdin("\x03");
    session.expect_line("was dropped", T);
    session.write_stdin("\x03");
    session.expect_line("dropped again", T);
    session.write_stdin("\x03");
}

/// The sandbox's PID 1 among the descendants of `pid`: the process whose
/// NSpid is `HOST 1`.
fn sandbox_pid1(pid: i32) -> i32 {
    let mut found = None;
    wait_until(T, "the sandbox's PID 1", || {
        let mut next = vec![pid];
        while let Some(p) = next.pop() {
            let kids = children(p);
            for kid in &kids {
                let nspid = std::fs::read_to_string(format!("/proc/{kid}/status")).unwrap_or_default();
                let nspid = nspid.lines().find_map(|l| l.strip_prefix("NSpid:")).unwrap_or("").to_string();
                let levels: Vec<&str> = nspid.split_whitespace().collect();
                if levels.len() == 2 && levels[1] == "1" {
                    found = Some(*kid);
                }
            }
            next.extend(kids);
        }
        found.is_some()
    });
    found.unwrap()
}

/// `docker run -it IMAGE sh`: a shell on a terminal of the sandbox's own,
/// where Ctrl-C interrupts the foreground job and leaves the shell, and
/// Ctrl-Z stops it and `fg` brings it back. Driven through script(1).
#[test]
fn run_it_gives_a_shell_where_ctrl_c_ctrl_z_and_fg_work() {
    let mut session = on_a_terminal("run -it -- sh");
    // Computed answers, so that the terminal's echo of the typed line
    // (which holds the expression, not its value) never matches.
    session.write_stdin("echo pid=$((0+$$)) tty=$(tty)\n");
    session.expect_line("pid=1 tty=/dev/pts/0", T);
    let pid1 = sandbox_pid1(session.pid());
    let sleeping = || children(pid1).into_iter().find(|c| comm(*c) == "sleep");
    session.write_stdin("sleep 30\n");
    wait_until(T, "sleep to start", || sleeping().is_some());
    session.write_stdin("\x03");
    wait_until(T, "Ctrl-C to end sleep", || sleeping().is_none());
    session.write_stdin("echo $((6*7))x\n");
    session.expect_line("42x", T);
    session.write_stdin("sleep 30\n");
    wait_until(T, "sleep to start", || sleeping().is_some());
    let sleep = sleeping().unwrap();
    session.write_stdin("\x1a");
    wait_until(T, "Ctrl-Z to stop sleep", || status_field(sleep, "State").starts_with('T'));
    session.write_stdin("fg\n");
    wait_until(T, "fg to continue sleep", || !status_field(sleep, "State").starts_with('T'));
    session.write_stdin("\x03");
    wait_until(T, "Ctrl-C to end sleep", || sleeping().is_none());
    session.write_stdin("echo $((7*7))y; exit\n");
    session.expect_line("49y", T);
    let out = session.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
}

/// With -it, Ctrl-C is the sandbox terminal's: it goes to PID 1 inside,
/// where the kernel drops it when PID 1 has no handler; the way out holds.
#[test]
fn with_it_three_ctrl_c_still_end_a_pid_1_that_drops_them() {
    let mut session = on_a_terminal("run -it -- pidlab probe");
    session.expect_line("probe: ready", T);
    press_ctrl_c_three_times(&mut session);
    session.expect_line("sending SIGKILL", T);
    let _ = session.finish(T);
}

/// `docker exec -i` and `-t`: no stdin without -i, a terminal of the
/// sandbox's own with -t (its devpts, not the host's).
#[test]
fn exec_takes_i_and_t() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "term", "--", "pidlab", "probe"]);
    for (flags, want) in [(&[][..], ""), (&["-i"][..], "typed")] {
        let mut cmd = lab.cmd(&[&["exec"][..], flags, &["term", "cat"]].concat());
        let mut running = Running::start(&mut cmd);
        running.write_stdin("typed\n");
        drop(running.stdin.take());
        let out = running.finish(T);
        assert_eq!((out.code(), out.stdout.trim()), (0, want), "{flags:?}: {out:?}");
    }
    let out = lab.ok(&["exec", "-t", "term", "tty"]);
    assert!(out.trim().starts_with("/dev/pts/"), "{out}");
    lab.finish();
}

/// Resize the terminal `pid` has as stdin, as a terminal emulator does when
/// its window changes: the kernel sends SIGWINCH to the terminal's
/// foreground process group (pidlab, with -t).
fn resize_terminal_of(pid: i32, rows: u16, cols: u16) {
    use std::os::fd::AsRawFd;
    let tty = std::fs::OpenOptions::new().write(true).open(format!("/proc/{pid}/fd/0")).unwrap();
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer, which lives
    // across the call.
    let done = unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    assert_eq!(done, 0, "TIOCSWINSZ on {pid}'s terminal: {}", std::io::Error::last_os_error());
}

/// `run -it` and `exec -it`: the sandbox's terminal takes the size of
/// pidlab's, when it starts and each time pidlab's is resized.
#[test]
fn the_sandbox_terminal_follows_the_size_of_yours() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "sized", "--", "pidlab", "probe"]);
    for args in ["run -it -- sh", "exec -it sized sh"] {
        require("/usr/bin/script", "apt-get install bsdutils");
        let mut cmd = std::process::Command::new("/usr/bin/script");
        cmd.args(["-qec", &format!("{} {args}", bin()), "/dev/null"]);
        cmd.env("PIDLAB_STATE_DIR", lab.state.path());
        let mut session = Running::start(&mut cmd);
        let pidlab = chain_until(session.pid(), "pidlab", T)[0];
        for (rows, cols) in [(31, 97), (45, 132)] {
            resize_terminal_of(pidlab, rows, cols);
            // `stty size` inside; the arithmetic keeps the echo of the typed
            // line from matching.
            session.write_stdin("echo size=$(stty size | tr ' ' x)$((1+1))\n");
            session.expect_line(&format!("size={rows}x{cols}2"), T);
        }
        session.write_stdin("exit\n");
        let out = session.finish(T);
        assert_eq!(out.code(), 0, "{args}: {out:?}");
    }
    lab.finish();
}

/// When pidlab's terminal goes away (SIGHUP), nobody is left to stop the
/// run, and a PID 1 that drops SIGHUP would keep it going unseen: pidlab
/// stops it as `docker stop` does, stop signal then SIGKILL after the
/// grace period (here 1 s).
#[test]
fn a_hangup_stops_a_foreground_run() {
    let mut sandbox = Running::start(&mut pidlab(["run", "--stop-timeout", "1", "--", "pidlab", "probe"]));
    sandbox.expect_line("probe: ready", T);
    let hung_up = std::time::Instant::now();
    kill(Pid::from_raw(sandbox.pid()), Signal::SIGHUP).unwrap();
    let out = sandbox.finish(T);
    let took = hung_up.elapsed();
    assert_eq!(out.code(), 137, "{out:?}");
    assert!(out.stderr.contains("the terminal is gone"), "{out:?}");
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(5), "stopped after {took:?}");
}

/// Ctrl-C forwarded to an init that takes its signals with sigtimedwait
/// (tini, pidlab's own): it reaches the workload, and pidlab never calls it
/// dropped. (Looked at once, just after it was sent, such an init could
/// seem to have neither blocked nor awaited it; pidlab looks until two
/// looks agree.)
#[test]
fn ctrl_c_taken_by_an_init_is_never_called_dropped() {
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    let lab = Lab::new();
    for init in ["--init=tini", "--init", "--init=tini", "--init", "--init=tini", "--init"] {
        let command = format!("{} run {init} -- pidlab probe --catch INT", bin());
        let mut cmd = std::process::Command::new("/usr/bin/script");
        cmd.args(["-qec", &command, "/dev/null"]).env("PIDLAB_STATE_DIR", lab.state.path());
        let mut session = Running::start(&mut cmd);
        session.expect_line("probe: ready", T);
        for _ in 1..=2 {
            session.write_stdin("\x03");
            session.expect_line("caught SIGINT", T);
        }
        // The third Ctrl-C within 2 s gets out, as for any Ctrl-C taken.
        session.write_stdin("\x03");
        let out = session.finish(T);
        assert!(out.stdout.contains("sending SIGKILL"), "{init}: {out:?}");
        assert!(!out.stdout.contains("was dropped"), "{init}: a forwarded Ctrl-C called dropped: {out:?}");
    }
    lab.finish();
}

/// The terminal's foreground process group, read from /proc/PID/stat
/// (`tpgid`), and the process's own group (`pgrp`).
fn foreground_and_group(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<i32> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .skip(1)
        .take(5)
        .map(|f| f.parse().unwrap())
        .collect();
    (fields[4], fields[1])
}

/// Without `-i`, a foreground `run` keeps the terminal for itself, as
/// `docker run` does: Ctrl-C reaches pidlab, which forwards it to PID 1.
/// With `-i` (and no `-t`), the sandbox's process group is lent the
/// terminal's foreground, so Ctrl-C reaches every process in it.
#[test]
fn only_i_lends_the_terminal_to_the_sandbox() {
    for (flags, lent) in [("", false), ("-i", true)] {
        let session = on_a_terminal(&format!("run {flags} -- sleep 100"));
        let chain = chain_until(session.pid(), "sleep", T);
        let (pidlab, sleep) = (chain[0], *chain.last().unwrap());
        let (foreground, group) = foreground_and_group(sleep);
        let (_, pidlab_group) = foreground_and_group(pidlab);
        kill(Pid::from_raw(sleep), Signal::SIGKILL).unwrap();
        let out = session.finish(T);
        assert_ne!(group, pidlab_group, "{flags:?}: the sandbox has a process group of its own: {out:?}");
        if lent {
            assert_eq!(foreground, group, "{flags:?}: the terminal's foreground is the sandbox's: {out:?}");
        } else {
            assert_eq!(
                foreground, pidlab_group,
                "{flags:?}: the terminal's foreground stays pidlab's: {out:?}"
            );
        }
    }
}
