//! `pidlab run`: the claims of the runtime, checked on the running kernel.

mod common;

use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(20);

#[test]
fn echo_pid_prints_1() {
    let out = run(["run", "--", "sh", "-c", "echo $$"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "1", "the workload is PID 1 of its namespace: {out:?}");
}

#[test]
fn ps_inside_shows_only_the_sandbox() {
    let out = run(["run", "--", "ps", "-e", "-o", "pid=,comm="]);
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, vec![vec!["1", "ps"]], "ps must see itself alone, as PID 1: {out:?}");
}

#[test]
fn the_hosts_processes_cannot_be_seen() {
    // Every numeric entry of the sandbox's /proc is one of its own few
    // processes; the host has hundreds, and this test's PID is not there.
    let script =
        format!("ls /proc | grep -E '^[0-9]+$'; test -e /proc/{} && echo LEAK; true", std::process::id());
    let out = run(["run", "--", "sh", "-c", &script]);
    assert_eq!(out.code(), 0, "{out:?}");
    let pids: Vec<i32> = out.stdout.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(!pids.is_empty() && pids.iter().all(|p| *p < 10), "only sandbox PIDs: {out:?}");
    assert!(!out.stdout.contains("LEAK"), "the test process is visible inside: {out:?}");
}

#[test]
fn nest_3_gives_four_nspid_entries_and_ancestors_are_out_of_reach() {
    let script = "echo ready; read pids; for p in $pids; do kill -0 $p 2>&1 || true; done; echo done";
    let mut sandbox =
        Running::start(&mut pidlab(["run", "-i", "--nest", "3", "--", "/bin/dash", "-c", script]));
    sandbox.expect_line("ready", T);
    let chain = chain_until(sandbox.pid(), "dash", T);
    assert_eq!(chain.len(), 3, "pidlab -> nest-1 -> nest-2 -> dash: {chain:?}");
    assert_eq!(comm(chain[0]), "pidlab:nest-1");
    assert_eq!(comm(chain[1]), "pidlab:nest-2");
    let workload = chain[2];
    let nspid = status_field(workload, "NSpid");
    let levels: Vec<&str> = nspid.split_whitespace().collect();
    assert_eq!(levels.len(), 4, "one PID per level, host + 3 namespaces: NSpid {nspid}");
    assert_eq!(levels[0], workload.to_string(), "the host's PID comes first: NSpid {nspid}");
    assert_eq!(levels[3], "1", "PID 1 of the innermost namespace: NSpid {nspid}");

    // From inside, the host PIDs of its ancestors name no process at all.
    let ancestors = format!("{} {} {}\n", sandbox.pid(), chain[0], chain[1]);
    sandbox.write_stdin(&ancestors);
    let out = sandbox.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
    let misses = out.stdout.lines().filter(|l| l.contains("No such process")).count();
    assert_eq!(misses, 3, "kill -0 on each ancestor must fail with ESRCH: {out:?}");
}

#[test]
fn the_host_can_signal_the_innermost_pid_1() {
    let mut sandbox =
        Running::start(&mut pidlab(["run", "--nest", "3", "--", "pidlab", "probe", "--catch", "USR1"]));
    sandbox.expect_line("probe: ready", T);
    let chain = chain_until(sandbox.pid(), "pidlab", T);
    let probe = *chain.last().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(probe), nix::sys::signal::Signal::SIGUSR1).unwrap();
    // si_pid is 0: the sender has no PID in the receiver's namespace.
    sandbox.expect_line("caught SIGUSR1 (10) from pid 0", T);
}

#[test]
fn exec_form_makes_the_program_pid_1() {
    let out = run(["run", "--cmd", r#"["pidlab", "probe", "--sleep", "0"]"#]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pid=1 ppid=0") && out.stdout.contains("pid1=pidlab"), "{out:?}");
}

#[test]
fn dash_shell_form_keeps_the_shell_as_pid_1() {
    let sh = std::fs::canonicalize("/bin/sh").expect("/bin/sh");
    assert!(sh.ends_with("dash"), "this test is about Debian's /bin/sh = dash; here /bin/sh is {sh:?}");
    let out = run(["run", "--cmd", "pidlab probe --sleep 0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    // Read from /proc inside: the probe is PID 2, its parent and PID 1 is sh.
    assert!(out.stdout.contains("pid=2 ppid=1"), "dash forks the command: {out:?}");
    assert!(out.stdout.contains("pid1=/bin/sh"), "{out:?}");
}

#[test]
fn bash_shell_form_execs_the_program() {
    let out = run(["run", "--shell", "/bin/bash", "--cmd", "pidlab probe --sleep 0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pid=1 ppid=0") && out.stdout.contains("pid1=pidlab"), "bash execs: {out:?}");
}

#[test]
fn busybox_shell_form_execs_the_program() {
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    let out = run(["run", "--shell", "/bin/busybox sh", "--cmd", "pidlab probe --sleep 0"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("pid=1 ppid=0"), "busybox ash execs: {out:?}");
}

#[test]
fn dockerfile_is_read_and_build_instructions_are_listed() {
    let dir = private_tmp();
    let file = dir.path().join("Dockerfile");
    std::fs::write(
        &file,
        "FROM debian:bookworm\nRUN apt-get install -y x\nENV GREETING=\"hello there\"\nWORKDIR /tmp\n\
         CMD [\"sh\", \"-c\", \\\n     \"echo $GREETING from $(pwd)\"]\n",
    )
    .unwrap();
    let out = run(["run".as_ref(), "-f".as_ref(), file.as_os_str()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "hello there from /tmp", "{out:?}");
    assert!(out.stderr.contains("FROM (line 1)") && out.stderr.contains("RUN (line 2)"), "{out:?}");
}

#[test]
fn dry_run_shows_dockers_table_and_malformed_json_is_shell_form() {
    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "ENTRYPOINT [\"e\", \"p\"]\n").unwrap();
    let out = run(["run", "--dry-run", "-f", dockerfile.to_str().unwrap(), "--cmd", "c q"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains(r#"argv: ["e","p","/bin/sh","-c","c q"]"#), "{out:?}");
    let out = run(["run", "--dry-run", "--cmd", "['redis-server']"]);
    assert!(out.stdout.contains(r#"argv: ["/bin/sh","-c","['redis-server']"]"#), "{out:?}");
    assert!(out.stdout.contains("PID 1: /bin/sh, the shell"), "{out:?}");
}

#[test]
fn a_host_file_outside_the_root_is_invisible() {
    let dir = tempfile::Builder::new().prefix("host-secret-").tempdir_in("/var/tmp").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "x").unwrap();
    let script = format!("test -e {} && echo VISIBLE || echo invisible", secret.display());
    let out = run(["run", "--", "sh", "-c", &script]);
    assert_eq!(out.stdout.trim(), "invisible", "{out:?}");
}

#[test]
fn no_mount_reaches_the_host_during_or_after_a_run() {
    let before = host_mounts();
    let tmp = private_tmp();
    let state = private_tmp();
    let save = tmp.path().join("saved");
    let vol = format!("{}:/state", tmp.path().display());
    let mut sandbox = Running::start(
        pidlab(["run", "-v", &vol, "--", "pidlab", "probe", "--on-term-save", "/state/saved"])
            .env("TMPDIR", tmp.path())
            .env("PIDLAB_STATE_DIR", state.path()),
    );
    sandbox.expect_line("probe: ready", T);
    let during = host_mounts();
    // The root is mounted on the state directory's shared mount point, in
    // the sandbox's mount namespace only.
    let mount_point = state.path().join(".root").display().to_string();
    assert!(!during.iter().any(|l| l.contains(&mount_point)), "the root's mounts leaked to the host");
    assert_eq!(during.len(), before.len(), "the host's mount table changed during the run");
    // Registered under a generated name while it runs, so `ps` finds it.
    wait_until(T, "the run's record", || sandboxes_in(state.path()).len() == 1);
    assert!(entries(tmp.path()).is_empty(), "pidlab wrote to TMPDIR: {:?}", entries(tmp.path()));
    // End it cleanly: SIGTERM to pidlab is forwarded, the probe saves and exits.
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sandbox.pid()), nix::sys::signal::Signal::SIGTERM)
        .unwrap();
    let out = sandbox.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
    std::fs::remove_file(&save).expect("the probe saved its state through the volume");
    let after = host_mounts();
    assert_eq!(after.len(), before.len(), "the host's mount table changed");
    assert!(sandboxes_in(state.path()).is_empty(), "a foreground run takes its record with it");
}

#[test]
fn sigint_ignored_by_the_parent_is_default_again_in_the_workload() {
    // `trap '' INT QUIT` leaves both at SIG_IGN, which exec keeps: pidlab
    // starts with them ignored, exactly as after `pidlab run ... &` in bash.
    let script = format!(
        "trap '' INT QUIT; grep SigIgn /proc/$$/status; exec {} run -- grep -E 'Sig(Ign|Blk)' /proc/self/status",
        bin()
    );
    let mut cmd = std::process::Command::new("/bin/sh");
    cmd.args(["-c", &script]);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_ne!(lines[0].trim_start_matches("SigIgn:").trim(), "0000000000000000", "precondition: {out:?}");
    assert!(lines.contains(&"SigIgn:\t0000000000000000"), "{out:?}");
    assert!(lines.contains(&"SigBlk:\t0000000000000000"), "{out:?}");
}

/// Fields 3 to 8 of a /proc/PID/stat line (after the command name): state,
/// ppid, pgrp, session, tty_nr, tpgid. PIDs as seen from the /proc read.
fn stat_fields(line: &str) -> Vec<String> {
    let rest = line.rsplit_once(") ").unwrap_or_else(|| panic!("not a stat line: {line:?}")).1;
    rest.split_whitespace().take(6).map(str::to_string).collect()
}

#[test]
fn pid1_leads_a_process_group_of_its_own() {
    // Seen from inside: a group led by a process outside the namespace
    // (pidlab's) would read as 0, as the session (pidlab's caller's) does.
    let out = run(["run", "--", "cat", "/proc/1/stat"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let fields = stat_fields(out.stdout.trim());
    assert_eq!(fields[2], "1", "pgrp: PID 1 leads its own process group: {out:?}");
    assert_eq!(fields[3], "0", "session: still the caller's, outside the namespace: {out:?}");
}

#[test]
fn a_terminal_is_lent_to_the_sandbox_and_taken_back() {
    // script(1) runs its command on a new pseudo-terminal, in the
    // terminal's foreground process group, as an interactive shell would.
    // With -i the workload gets the terminal (without it, pidlab keeps it:
    // terminal.rs).
    require("/usr/bin/script", "apt-get install bsdutils");
    let command = format!("{} run -i -- cat /proc/1/stat; cat /proc/self/stat", bin());
    let mut cmd = std::process::Command::new("/usr/bin/script");
    cmd.args(["-qec", &command, "/dev/null"]);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    let lines: Vec<&str> = out.stdout.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{out:?}");
    let inside = stat_fields(lines[0]);
    assert_ne!(inside[4], "0", "PID 1 has the terminal as its controlling tty: {out:?}");
    assert_eq!(inside[5], "1", "tpgid: the sandbox's group is the terminal's foreground: {out:?}");
    let after = stat_fields(lines[1]);
    assert_eq!(after[5], after[2], "after the run, the foreground is back with the caller's group: {out:?}");
}

#[test]
fn exit_codes_follow_the_container_convention() {
    assert_eq!(run(["run", "--", "sh", "-c", "exit 3"]).code(), 3);
    let not_exec = run(["run", "--cmd", r#"["/etc/hostname"]"#]);
    assert_eq!(not_exec.code(), 126, "{not_exec:?}");
    let not_found = run(["run", "--cmd", r#"["/no/such/program"]"#]);
    assert_eq!(not_found.code(), 127, "{not_found:?}");
    assert!(not_found.stderr.contains("/no/such/program"), "{not_found:?}");
    // sleep as PID 1 has no SIGTERM handler: the stop signal is dropped and
    // SIGKILL ends it: 128 + 9.
    let killed = run(["run", "--stop-after", "0.2", "--stop-timeout", "0.3", "--", "sleep", "60"]);
    assert_eq!(killed.code(), 137, "{killed:?}");
}

#[test]
fn stop_saves_with_exec_form_and_loses_with_dash_shell_form() {
    let dir = tempfile::tempdir().unwrap();
    let vol = format!("{}:/state", dir.path().display());
    let started = Instant::now();
    let exec = run([
        "run",
        "-v",
        &vol,
        "--stop-after",
        "0.5",
        "--stop-timeout",
        "5",
        "--cmd",
        r#"["pidlab", "probe", "--on-term-save", "/state/exec"]"#,
    ]);
    assert_eq!(exec.code(), 0, "{exec:?}");
    assert!(dir.path().join("exec").exists(), "exec form: the probe got SIGTERM and saved: {exec:?}");
    assert!(started.elapsed() < Duration::from_secs(4), "exec form stops at once, not after the grace");

    let started = Instant::now();
    let shell = run([
        "run",
        "-v",
        &vol,
        "--stop-after",
        "0.5",
        "--stop-timeout",
        "1",
        "--cmd",
        "pidlab probe --on-term-save /state/shell",
    ]);
    let took = started.elapsed();
    assert!(
        (Duration::from_millis(1400)..Duration::from_millis(3000)).contains(&took),
        "dash form waits the whole 1 s grace period after 0.5 s, and no longer: {took:?}"
    );
    assert_eq!(shell.code(), 137, "PID 1 (sh) was SIGKILLed: {shell:?}");
    assert!(shell.stderr.contains("did not exit within 1 s of SIGTERM"), "{shell:?}");
    assert!(!dir.path().join("shell").exists(), "the probe never got SIGTERM, so nothing was saved");
    assert!(!shell.stdout.contains("caught"), "{shell:?}");
}

#[test]
fn signals_sent_to_pidlab_are_forwarded_to_pid_1() {
    let mut sandbox = Running::start(&mut pidlab(["run", "--", "pidlab", "probe", "--catch", "USR1,HUP"]));
    sandbox.expect_line("probe: ready", T);
    let me = nix::unistd::Pid::from_raw(sandbox.pid());
    nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGUSR1).unwrap();
    sandbox.expect_line("caught SIGUSR1 (10) from pid 0", T);
    nix::sys::signal::kill(me, nix::sys::signal::Signal::SIGHUP).unwrap();
    sandbox.expect_line("caught SIGHUP (1) from pid 0", T);
}

#[test]
fn nest_32_works_and_the_kernels_enospc_is_translated() {
    assert_eq!(run(["run", "--nest", "32", "--", "true"]).code(), 0, "32 levels are allowed");
    // From inside a 30-deep sandbox, /proc shows only the innermost level,
    // so pidlab's up-front check cannot see the depth: the kernel refuses
    // the 33rd level with ENOSPC, and pidlab explains it.
    let out = run([
        "run",
        "--nest",
        "30",
        "--cap-add",
        "SYS_ADMIN",
        "--",
        "pidlab",
        "run",
        "--nest",
        "5",
        "--",
        "true",
    ]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("step 9/14 nest PID namespaces"), "{out:?}");
    assert!(out.stderr.contains("ENOSPC") && out.stderr.contains("at most 32"), "{out:?}");
}

#[test]
fn orphans_of_a_pid_1_that_does_not_reap_stay_zombies() {
    // The probe as PID 1 never calls wait for the orphans it adopts.
    let mut sandbox =
        Running::start(&mut pidlab(["run", "--", "pidlab", "probe", "--orphans", "3", "--orphan-life", "0"]));
    sandbox.expect_line("probe: ready", T);
    let probe = chain_until(sandbox.pid(), "pidlab", T)[0]; // PID 1, the direct child
    let zombies = || children(probe).into_iter().filter(|p| is_zombie(*p)).collect::<Vec<i32>>();
    wait_until(T, "3 zombie orphans under PID 1", || zombies().len() == 3);
    for z in zombies() {
        assert_eq!(status_field(z, "PPid"), probe.to_string(), "adopted by PID 1");
    }
}

/// `pidlab run` keeps its name while it supervises: `ps`, the trace's
/// sender column and `--step`'s look at pidlab itself all read it. (It
/// names the watcher it starts by renaming itself for a moment; a release
/// build once restored an empty name.)
#[test]
fn a_running_pidlab_is_named_pidlab() {
    // A state directory of the test's own: the SIGKILLed run's record is
    // left there, not in the machine's.
    let lab = Lab::new();
    let mut sandbox = Running::start(&mut lab.cmd(&["run", "--", "pidlab", "probe"]));
    sandbox.expect_line("probe: ready", T);
    assert_eq!(comm(sandbox.pid()), "pidlab");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sandbox.pid()), nix::sys::signal::Signal::SIGKILL)
        .unwrap();
    let _ = sandbox.finish(T);
    lab.finish();
}

/// pidlab makes every mount private before it mounts anything (step 5).
/// Run from a mount namespace whose every mount is shared, set so here
/// whatever this machine's own propagation is, none of the sandbox's
/// mounts (its root, /proc, /dev, binds) appears there while it runs.
#[test]
fn no_mount_propagates_even_from_an_all_shared_namespace() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let tmp = private_tmp();
    let state = private_tmp();
    // Private first, cut from the host's peer groups, then shared again:
    // shared among this namespace and the ones made from it only, so that
    // even a pidlab that leaked could not reach the host.
    let script = r#"
        mount --make-rshared / || exit 99
        grep -q ' / / [^ ]* [^-]*shared:' /proc/self/mountinfo && echo "root shared"
        before=$(wc -l < /proc/self/mountinfo)
        # The probe ends by itself after 20 s at most; SIGKILL to pidlab
        # takes its sandbox with it.
        TMPDIR="$2" PIDLAB_STATE_DIR="$3" "$1" run -- pidlab probe --sleep 20 > "$2/out" &
        run=$!
        i=0; until grep -q 'probe: ready' "$2/out" || [ $i -ge 400 ]; do i=$((i+1)); sleep 0.05; done
        during=$(wc -l < /proc/self/mountinfo)
        echo "mounts before $before during $during"
        kill -9 $run; wait $run
    "#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(bin())
        .arg(tmp.path())
        .arg(state.path());
    let out = run_within(cmd, T);
    assert!(out.stdout.contains("root shared"), "the throw-away namespace's / is shared: {out:?}");
    let counts: Vec<u64> = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("mounts before "))
        .map(|l| l.split(" during ").map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| panic!("{out:?}"));
    assert_eq!(counts[0], counts[1], "the sandbox's mounts reached its parent namespace: {out:?}");
    let _ = std::fs::remove_file(tmp.path().join("out"));
}

/// With `--nest`, the outer levels' inits (`pidlab:nest-K`) pass signals on
/// to the next level. A SIGCHLD that reports nothing to reap (sent with
/// kill, here) must leave an init waiting for the next signal, not looping:
/// the USR1 after it still reaches the workload, two levels down.
#[test]
fn nested_inits_pass_signals_on_after_a_sigchld_with_nothing_to_reap() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "deep", "--nest", "3", "--", "pidlab", "probe", "--catch", "USR1"]);
    lab.ok(&["kill", "-s", "CHLD", "deep"]);
    lab.ok(&["kill", "-s", "USR1", "deep"]);
    lab.ok(&["logs", "--wait-for", "caught SIGUSR1", "--timeout", "10", "deep"]);
    lab.finish();
}
