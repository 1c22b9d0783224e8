//! The built-in inits: `--init` keeps tini's contract (checked against
//! Debian's real tini), `--init=drain` saves a shell-form service.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(20);
const TINI: &str = "/usr/bin/tini";
const CATATONIT: &str = "/usr/bin/catatonit";

fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("kill {pid} {sig}: {e}"));
}

/// Start `pidlab run INIT -- pidlab probe --catch TERM,INT,HUP,USR1`, send
/// each signal from the host to the sandbox's PID 1, and return what the
/// probe said about each (`from pid N`), in order.
fn forwarded_by(init: &[&str]) -> Vec<String> {
    let mut args = vec!["run"];
    args.extend_from_slice(init);
    args.extend_from_slice(&["--", "pidlab", "probe", "--catch", "USR1,HUP,INT,TERM"]);
    let mut sandbox = Running::start(&mut pidlab(&args));
    sandbox.expect_line("probe: ready", T);
    let pid1 = chain_until(sandbox.pid(), "pidlab", T)[0];
    let mut heard = Vec::new();
    for (sig, name) in [(Signal::SIGUSR1, "SIGUSR1"), (Signal::SIGHUP, "SIGHUP"), (Signal::SIGINT, "SIGINT")]
    {
        signal(pid1, sig);
        let line = sandbox.expect_line(&format!("caught {name}"), T);
        heard.push(line.split(" from ").nth(1).unwrap_or("").to_string());
    }
    signal(pid1, Signal::SIGTERM);
    let line = sandbox.expect_line("caught SIGTERM", T);
    heard.push(line.split(" from ").nth(1).unwrap_or("").to_string());
    heard
}

#[test]
fn builtin_init_forwards_like_real_tini_and_catatonit() {
    require(TINI, "apt-get install tini (.ci/run does)");
    require(CATATONIT, "apt-get install catatonit (.ci/run does)");
    let tini = forwarded_by(&["--init=/usr/bin/tini"]);
    let catatonit = forwarded_by(&[&format!("--init={CATATONIT}")]);
    let ours = forwarded_by(&["--init"]);
    // The probe is PID 2 and hears each signal from the init, PID 1 (si_pid
    // is the sender's PID in the receiver's namespace).
    assert_eq!(ours, vec!["pid 1"; 4], "pidlab's init forwards each signal");
    assert_eq!(ours, tini, "same outcome as Debian's tini");
    assert_eq!(ours, catatonit, "and as catatonit (podman's init)");
    assert_eq!(forwarded_by(&["--init=drain"]), vec!["pid 1"; 4], "drain forwards each signal too");
    // No init: the probe is PID 1 and has handlers, so the host's signals
    // arrive directly, from a sender outside its namespace: si_pid 0.
    assert_eq!(forwarded_by(&[]), vec!["pid 0"; 4]);
}

#[test]
fn without_a_handler_pid_1_never_hears_them() {
    // The probe as PID 1 catches only USR1: TERM, INT and HUP from the host
    // are at their default action, so the kernel drops them.
    let mut sandbox = Running::start(&mut pidlab(["run", "--", "pidlab", "probe", "--catch", "USR1"]));
    sandbox.expect_line("probe: ready", T);
    let pid1 = chain_until(sandbox.pid(), "pidlab", T)[0];
    for sig in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        signal(pid1, sig);
    }
    signal(pid1, Signal::SIGUSR1);
    sandbox.expect_line("caught SIGUSR1", T);
    // Alive: sleeping, or still running from printing that line; not a zombie.
    let state = status_field(pid1, "State");
    assert!(
        state.starts_with('S') || state.starts_with('R'),
        "PID 1 is alive after TERM, INT and HUP: {state}"
    );
    signal(pid1, Signal::SIGKILL);
    let out = sandbox.finish(T);
    assert_eq!(out.code(), 137, "SIGKILL from the host gets through: {out:?}");
    assert!(!out.stdout.contains("caught SIGTERM") && !out.stdout.contains("caught SIGHUP"), "{out:?}");
}

/// Run a probe that leaves 50 orphans under `init`; return how many
/// "reaped orphan" lines the verbose init printed, after checking no zombie
/// is left under PID 1.
fn orphans_reaped_by(init: &str) -> usize {
    let mut sandbox = Running::start(&mut pidlab([
        "run",
        init,
        "--init-verbose",
        "--",
        "pidlab",
        "probe",
        "--orphans",
        "50",
        "--orphan-life",
        "0",
        "--catch",
        "USR1",
    ]));
    sandbox.expect_line("left 50 orphans", T);
    let pid1 = chain_until(sandbox.pid(), "pidlab", T)[0];
    // Only the probe is left under PID 1: every orphan was reaped.
    wait_until(T, &format!("{init}: every orphan reaped"), || children(pid1).len() == 1);
    signal(pid1, Signal::SIGKILL);
    let out = sandbox.finish(T);
    out.stderr.lines().filter(|l| l.contains("reaped orphan")).count()
}

#[test]
fn fifty_orphans_are_reaped_by_both_inits() {
    assert_eq!(orphans_reaped_by("--init"), 50);
    assert_eq!(orphans_reaped_by("--init=drain"), 50);
}

#[test]
fn fifty_orphans_stay_zombies_under_a_pid_1_that_does_not_reap() {
    let mut sandbox = Running::start(&mut pidlab([
        "run",
        "--",
        "pidlab",
        "probe",
        "--orphans",
        "50",
        "--orphan-life",
        "0",
    ]));
    sandbox.expect_line("left 50 orphans", T);
    let pid1 = chain_until(sandbox.pid(), "pidlab", T)[0];
    wait_until(T, "50 zombies under the probe", || {
        children(pid1).iter().filter(|p| is_zombie(**p)).count() == 50
    });
}

#[test]
fn the_init_exits_with_the_childs_status() {
    for (script, code) in [("exit 7", 7), ("kill -KILL $$", 137), ("kill -TERM $$", 143)] {
        for init in ["--init", "--init=drain"] {
            let out = run(["run", init, "--", "sh", "-c", script]);
            assert_eq!(out.code(), code, "{init} {script}: {out:?}");
        }
    }
}

#[test]
fn dash_shell_form_stop_no_init_vs_tini_contract_vs_drain() {
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/state", dir.path().display());
    let stop = |init: Option<&str>, name: &str| {
        let mut args = vec!["run", "-v", &vol, "--stop-after", "0.3", "--stop-timeout", "2"];
        if let Some(init) = init {
            args.push(init);
        }
        let cmd = format!("pidlab probe --on-term-save /state/{name}");
        args.extend_from_slice(&["--cmd", &cmd]);
        let started = Instant::now();
        let out = run(args);
        (started.elapsed(), dir.path().join(name).exists(), out)
    };
    let (took, saved, out) = stop(None, "none");
    // 0.3 s, then the 2 s grace: bounded on both sides, so a longer grace
    // than asked for fails too.
    let full_grace = Duration::from_millis(2200)..Duration::from_millis(4000);
    assert!(full_grace.contains(&took) && !saved, "no init: full grace, lost: {took:?} {out:?}");
    let (took, saved, out) = stop(Some("--init"), "tini");
    assert!(took < Duration::from_millis(1500) && !saved, "--init: fast but lost: {took:?} {out:?}");
    let (took, saved, out) = stop(Some("--init=drain"), "drain");
    assert!(took < Duration::from_millis(1500) && saved, "--init=drain: fast and saved: {took:?} {out:?}");
}

#[test]
fn a_workload_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let started = Instant::now();
    let out = run([
        "run",
        "--init",
        "--stop-after",
        "0.3",
        "--stop-timeout",
        "1",
        "--",
        "pidlab",
        "probe",
        "--ignore",
        "TERM",
    ]);
    // 0.3 s, then the 1 s grace (not more: 3 s would be a grace three times too long).
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(1300)..Duration::from_millis(3000)).contains(&took),
        "it survived SIGTERM for the grace period, and no longer: {took:?}"
    );
    assert_eq!(out.code(), 137, "then SIGKILL ended PID 1 (the init), and with it the namespace: {out:?}");
    assert!(out.stderr.contains("did not exit within 1 s of SIGTERM"), "{out:?}");
}

#[test]
fn ps_shows_the_init_as_pid_1_and_the_workload_as_pid_2() {
    let out = run(["run", "--init", "--", "ps", "-e", "-o", "pid=,comm="]);
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, vec![vec!["1", "pidlab:init"], vec!["2", "ps"]], "{out:?}");
}

#[test]
fn pidlab_init_runs_under_another_runtime_and_as_a_subreaper() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let mut cmd = std::process::Command::new("/usr/bin/unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", bin(), "init", "--", "sh", "-c", "echo $$"]);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "2", "pidlab init is PID 1, its child PID 2: {out:?}");
    // Not PID 1: it becomes a child subreaper and still reaps orphans.
    let out = run(["init", "--verbose", "--", "sh", "-c", "sh -c 'sleep 0.1 &'; sleep 0.4"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stderr.contains("reaped orphan"), "the orphaned sleep came to the init: {out:?}");
    // --drain outside a namespace is a subreaper too, and signals only its
    // descendants (never kill(-1), which would reach the host's processes):
    // init_options.rs::drain_outside_a_pid_namespace_is_a_subreaper.
}

/// `--init=tini` is the tini program, as an attendee who knows `docker run
/// --init` expects; pidlab's own init is `--init` (or `--init=pidlab`).
#[test]
fn each_init_choice_runs_the_program_it_names() {
    require(TINI, "apt-get install tini (.ci/run does)");
    require("/usr/bin/dumb-init", "apt-get install dumb-init (.ci/run does)");
    for (flags, pid1, argv) in [
        (&["--init"][..], "pidlab:init", "pidlab init -- cat"),
        (&["--init=pidlab"], "pidlab:init", "pidlab init -- cat"),
        (&["--init=tini", "--init-group"], "tini", "tini -g -- cat"),
        (&["--init=dumb-init"], "dumb-init", "dumb-init -- cat"),
    ] {
        let mut args = vec!["run"];
        args.extend_from_slice(flags);
        args.extend_from_slice(&["--", "cat", "/proc/1/comm", "/proc/1/cmdline"]);
        let out = run(&args);
        assert_eq!(out.code(), 0, "{flags:?}: {out:?}");
        let (comm, cmdline) = out.stdout.split_once('\n').unwrap_or_default();
        assert_eq!(comm, pid1, "{flags:?}: PID 1 is {comm}");
        let words: Vec<&str> = cmdline.split('\0').filter(|w| !w.is_empty()).collect();
        let words = words.iter().map(|w| w.rsplit('/').next().unwrap()).collect::<Vec<_>>().join(" ");
        assert!(words.starts_with(argv), "{flags:?}: PID 1's argv is {words:?}");
    }
    // A root without tini: the error says how to get it, and the way back.
    let empty = tempfile::tempdir().unwrap();
    let out = run(["run", "--rootfs", empty.path().to_str().unwrap(), "--init=tini", "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    for needle in
        ["No tini was found on the sandbox's PATH", "apt-get install tini", "--init for pidlab's own init"]
    {
        assert!(out.stderr.contains(needle), "{needle}: {}", out.stderr);
    }
}

#[test]
fn bad_init_choices_are_refused() {
    for (args, needle) in [
        (vec!["run", "--init=/no/such/init", "--", "true"], "/no/such/init"),
        (vec!["run", "--init=bogus", "--", "true"], "--init=drain"),
        (vec!["run", "--init-group", "--", "true"], "--init"),
        (vec!["run", "--init=/usr/bin/tini", "--init-group", "--", "true"], "pidlab's own init"),
        (vec!["run", "--init=dumb-init", "--init-group", "--", "true"], "already sends every signal"),
    ] {
        let out = run(&args);
        assert_eq!(out.code(), 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn init_group_forwards_to_the_whole_process_group() {
    // Two probes in the workload's process group: one in the background,
    // one that the shell execs (the init's direct child).
    let script = "trap '' USR1; pidlab probe --catch USR1 & exec pidlab probe --catch USR1";
    for (extra, forwarded) in [(None, 1), (Some("--init-group"), 2)] {
        let mut args = vec!["run", "--init"];
        args.extend(extra);
        args.extend_from_slice(&["--cmd", script]);
        let mut sandbox = Running::start(&mut pidlab(&args));
        sandbox.expect_line("probe: ready", T);
        sandbox.expect_line("probe: ready", T);
        let init = children(sandbox.pid())[0];
        let direct = children(init)[0];
        let background = children(direct)[0];
        signal(init, Signal::SIGUSR1);
        for _ in 0..forwarded {
            sandbox.expect_line("caught SIGUSR1 (10) from pid 1", T);
        }
        // A signal straight from the host to the background probe: once its
        // line is out, any forwarded one it got would be out too.
        signal(background, Signal::SIGUSR1);
        sandbox.expect_line("caught SIGUSR1 (10) from pid 0", T);
        signal(init, Signal::SIGKILL);
        let out = sandbox.finish(T);
        let caught = out.stdout.matches("from pid 1").count();
        assert_eq!(caught, forwarded, "{extra:?}: the init forwarded to {forwarded} probe(s): {out:?}");
    }
}

/// `probe --await-reaped` watches its own orphans, not the machine: host
/// processes started meanwhile (here by this test; in a workshop, anyone's)
/// neither delay nor fake the answer.
#[test]
fn await_reaped_watches_only_the_probes_own_orphans() {
    let mut sandbox = Running::start(&mut pidlab([
        "run",
        "--init",
        "--",
        "pidlab",
        "probe",
        "--orphans",
        "3",
        "--orphan-life",
        "0.5",
        "--await-reaped",
    ]));
    sandbox.expect_line("left 3 orphans", T);
    let mut others: Vec<std::process::Child> =
        (0..10).map(|_| std::process::Command::new("sleep").arg("30").spawn().unwrap()).collect();
    let started = Instant::now();
    let line = sandbox.expect_line("all orphans reaped", T);
    let waited = started.elapsed();
    for other in &mut others {
        let _ = other.kill();
        let _ = other.wait();
    }
    assert!(waited < Duration::from_secs(10), "took {waited:?} while 10 other processes ran: {line}");
    assert!(line.contains("after"), "{line}");
    // SIGTERM to pidlab goes to the init, which passes it on to the probe.
    signal(sandbox.pid(), Signal::SIGTERM);
    assert_eq!(sandbox.finish(T).code(), 143);
}

/// The init keeps SIGCHLD, its own signal (a child of its has exited), and
/// forwards it to nobody, as tini and catatonit do: a workload that
/// handles SIGCHLD hears only of its own children.
#[test]
fn sigchld_of_the_inits_adopted_orphans_is_not_forwarded() {
    require(TINI, "apt-get install tini (.ci/run does)");
    require(CATATONIT, "apt-get install catatonit (.ci/run does)");
    for init in ["--init", "--init=tini", "--init=/usr/bin/catatonit"] {
        let mut sandbox = Running::start(&mut pidlab([
            "run",
            init,
            "--",
            "pidlab",
            "probe",
            "--catch",
            "CHLD",
            "--orphans",
            "2",
            "--orphan-life",
            "0.2",
            "--await-reaped",
        ]));
        // The orphans were adopted by the init, which reaped them: it got
        // a SIGCHLD for each.
        sandbox.expect_line("all orphans reaped", T);
        signal(sandbox.pid(), Signal::SIGTERM);
        let out = sandbox.finish(T);
        assert_eq!(out.code(), 143, "{init}: {out:?}");
        assert!(!out.stdout.contains("caught SIGCHLD (17) from pid 1"), "{init} forwarded SIGCHLD: {out:?}");
    }
}
