//! Nothing leaks, nothing lingers: a crashed pidlab takes its sandbox with
//! it, the default root is read-only, and pivot_root (unlike chroot) leaves
//! no way back to the host's root.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(20);

#[test]
fn a_sigkilled_pidlab_run_leaves_no_workload_running_and_nothing_on_disk() {
    // --nest 1: PID 1 was spawned borrowing pidlab's memory; --nest 2: as a
    // copy, with an intermediate init (`sys::Spawn`).
    for nest in ["1", "2"] {
        let tmp = private_tmp();
        let state = private_tmp();
        let mut sandbox = Running::start(
            pidlab(["run", "--nest", nest, "--", "pidlab", "probe", "--ignore", "TERM"])
                .env("TMPDIR", tmp.path())
                .env("PIDLAB_STATE_DIR", state.path()),
        );
        sandbox.expect_line("probe: ready", T);
        let chain = chain_until(sandbox.pid(), "pidlab", T);
        assert_eq!(chain.len(), nest.parse::<usize>().unwrap(), "--nest {nest}: {chain:?}");
        let fds: Vec<_> = chain.iter().map(|p| pidfd_open(Pid::from_raw(*p))).collect();
        let killed = Instant::now();
        kill(Pid::from_raw(sandbox.pid()), Signal::SIGKILL).unwrap();
        for (pid, fd) in chain.iter().zip(&fds) {
            let left = Duration::from_millis(100).saturating_sub(killed.elapsed());
            assert!(
                exits_within(fd, left),
                "--nest {nest}: sandbox process {pid} still alive 100 ms after pidlab was SIGKILLed"
            );
        }
        let _ = sandbox.finish(T);
        // No per-run file to clean up: the root was mounted on the shared
        // mount point (which the host sees empty) and its mounts died with
        // the sandbox's namespace.
        assert!(entries(tmp.path()).is_empty(), "left in TMPDIR: {:?}", entries(tmp.path()));
        // Its record (the run's generated name) could not be removed by a
        // SIGKILLed pidlab: the next `ps` sees it is dead and removes it.
        let mut ps = pidlab(["ps", "-a", "-q"]);
        ps.env("PIDLAB_STATE_DIR", state.path());
        let ps = run_within(ps, T);
        assert_eq!((ps.code(), ps.stdout.as_str()), (0, ""), "a dead run is not listed: {ps:?}");
        assert!(sandboxes_in(state.path()).is_empty(), "left in the state directory");
    }
}

#[test]
fn the_default_root_is_read_only_except_tmp() {
    let script = "touch /usr/pidlab-was-here 2>&1; touch /etc/pidlab-was-here 2>&1; touch /pidlab-was-here 2>&1; \
                  touch /tmp/ok && echo tmp-writable";
    let out = run(["run", "--", "sh", "-c", script]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.matches("Read-only file system").count(), 3, "{out:?}");
    assert!(out.stdout.contains("tmp-writable"), "{out:?}");
    for path in ["/usr/pidlab-was-here", "/etc/pidlab-was-here"] {
        assert!(!std::path::Path::new(path).exists(), "{path} appeared on the host");
    }
}

/// The classic chroot escape (`pidlab probe --chroot-escape`) reaches the
/// host's root from a plain chroot, and nothing but the sandbox's own root
/// after pivot_root.
#[test]
fn chroot_can_be_escaped_but_pivot_root_cannot() {
    // A marker only the host's real root has.
    let marker = tempfile::Builder::new().prefix("pidlab-escape-marker-").tempdir_in("/var/tmp").unwrap();
    let path = marker.path().to_str().unwrap();
    let chrooted = run(["run", "--", "pidlab", "probe", "--chroot-escape", path]);
    assert_eq!(chrooted.code(), 0, "{chrooted:?}");
    assert!(
        chrooted.stdout.contains(&format!("{path} exists")),
        "plain chroot: out on the host: {chrooted:?}"
    );
    let pivoted = run(["run", "--pivot-root", "--", "pidlab", "probe", "--chroot-escape", path]);
    assert_eq!(pivoted.code(), 0, "{pivoted:?}");
    assert!(
        pivoted.stdout.contains(&format!("{path} does not exist")),
        "pivot_root: still inside: {pivoted:?}"
    );
}

#[test]
fn root_inside_keeps_dockers_default_capabilities() {
    let out = run(["run", "--", "grep", "CapEff", "/proc/self/status"]);
    // moby's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID
    // SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP.
    assert_eq!(out.stdout.trim(), "CapEff:\t00000000a80425fb", "{out:?}");
    let none = run(["run", "--cap-drop", "ALL", "--", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(none.stdout.trim(), "CapEff:\t0000000000000000", "{none:?}");
}

#[test]
fn without_cap_sys_admin_a_workload_cannot_mount_or_unshare() {
    let script = "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m 2>/dev/null && echo mounted || echo mount-refused; \
                  unshare --pid true 2>/dev/null && echo unshared || echo unshare-refused";
    let default = run(["run", "--", "sh", "-c", script]);
    assert_eq!(default.stdout.trim(), "mount-refused\nunshare-refused", "{default:?}");
    let admin = run(["run", "--cap-add", "SYS_ADMIN", "--", "sh", "-c", script]);
    assert_eq!(admin.stdout.trim(), "mounted\nunshared", "{admin:?}");
}

#[test]
fn inspect_shows_each_processs_effective_capabilities() {
    let lab = Lab::new();
    lab.start(&[
        "run",
        "-d",
        "--name",
        "capped",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "KILL,NET_RAW",
        "--",
        "pidlab",
        "probe",
    ]);
    let out = lab.ok(&["inspect", "capped", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["processes"][0]["capabilities"], serde_json::json!(["CAP_KILL", "CAP_NET_RAW"]), "{out}");
    lab.finish();
}

#[test]
fn a_workload_that_ignores_every_signal_ends_within_the_grace_period_plus_100_ms() {
    let lab = Lab::new();
    lab.start(&[
        "run",
        "-d",
        "--name",
        "stubborn",
        "--",
        "pidlab",
        "probe",
        "--orphans",
        "100",
        "--orphan-life",
        "1000",
        "--ignore",
        "HUP,INT,QUIT,USR1,USR2,TERM,ALRM,PIPE,CONT,TSTP,TTIN,TTOU,WINCH",
    ]);
    let started = Instant::now();
    let out = lab.ok(&["stop", "-t", "0.5", "stubborn"]);
    let took = started.elapsed();
    assert!(out.contains("did not exit within 0.5 s of SIGTERM — sent SIGKILL"), "{out}");
    assert!(took < Duration::from_millis(600), "101 processes ignoring everything took {took:?} to stop");
    lab.finish();
}

#[test]
fn a_full_tmp_does_not_matter_and_a_full_state_directory_is_refused() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    // A tiny tmpfs, filled up, in a mount namespace of the shell's own (the
    // host never sees it): first as TMPDIR, then as the state directory.
    let full = private_tmp();
    let state = private_tmp();
    let script = r#"
        mount -t tmpfs -o size=16k,nr_inodes=8 pidlab-test-full "$1" || exit 99
        mkdir "$1/state"
        cat /dev/zero > "$1/fill" 2>/dev/null
        i=0; while mkdir "$1/d$i" 2>/dev/null; do i=$((i+1)); done
        # Each bounded: SIGKILL to pidlab takes its sandbox with it.
        TMPDIR="$1" PIDLAB_STATE_DIR="$2" timeout -s KILL 5 "$3" run -- pidlab probe --sleep 0
        echo "full TMPDIR: $?"
        PIDLAB_STATE_DIR="$1/state" timeout -s KILL 5 "$3" run -- true; echo "full state, foreground: $?"
        PIDLAB_STATE_DIR="$1/state" timeout -s KILL 5 "$3" run -d -- pidlab probe; echo "full state, detached: $?"
    "#;
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(full.path())
        .arg(state.path())
        .arg(bin());
    let out = run_within(cmd, T);
    assert!(out.stdout.contains("probe: ready"), "the probe ran with a full TMPDIR: {out:?}");
    assert!(out.stdout.contains("full TMPDIR: 0"), "{out:?}");
    assert!(out.stdout.contains("full state, foreground: 125"), "{out:?}");
    assert!(out.stdout.contains("full state, detached: 125"), "{out:?}");
    assert_eq!(out.stderr.matches("No space left on device").count(), 2, "{out:?}");
    assert_eq!(out.stderr.matches("PIDLAB_STATE_DIR chooses another").count(), 2, "{out:?}");
    assert!(entries(full.path()).is_empty(), "the full tmpfs stayed in the shell's namespace");
    assert!(sandboxes_in(state.path()).is_empty());
}

/// A workload chooses its own process name and command line, and they may
/// hold terminal escapes. `ps`, `inspect` and `explain` print them escaped,
/// so a workload cannot clear the admin's screen or forge a line of output.
#[test]
fn a_workloads_control_characters_are_printed_escaped() {
    let lab = Lab::new();
    let script = r#"printf "\033[2Jx" > /proc/$$/comm; echo named; sleep 60"#;
    let name = lab.ok(&["run", "-d", "--", "sh", "-c", script, "a\x1b[31mred\u{202e}"]).trim().to_string();
    lab.ok(&["logs", "--wait-for", "named", &name]);
    for verb in [vec!["ps"], vec!["inspect", &name], vec!["explain", &name, "TERM"]] {
        let out = lab.ok(&verb);
        assert!(!out.contains('\x1b'), "`pidlab {}` printed a raw escape: {out:?}", verb.join(" "));
        assert!(!out.contains('\u{202e}'), "`pidlab {}` printed a raw override: {out:?}", verb.join(" "));
        assert!(
            out.contains(r"\x1b"),
            "`pidlab {}` hid the escape instead of showing it: {out:?}",
            verb.join(" ")
        );
    }
    lab.finish();
}

/// Started with stdout closed (`1>&-`), pidlab gives descriptors 0 to 2 a
/// /dev/null, as Rust's own start-up does: otherwise the first file it
/// opens (the probe's `--log`) takes number 1 and receives what was meant
/// for stdout.
#[test]
fn a_closed_stdout_is_not_taken_by_the_next_file() {
    let tmp = private_tmp();
    let log = tmp.path().join("log");
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        "exec \"$0\" probe --catch USR1 --log \"$1\" --sleep 0 1>&-",
        bin(),
        log.to_str().unwrap(),
    ]);
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 0, "{out:?}");
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(!written.contains("probe: "), "stdout's lines went to the --log file:\n{written}");
}
