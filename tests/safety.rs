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
fn a_sigkilled_pidlab_run_leaves_no_workload_running() {
    // pidlab cannot remove its temporary mount point when it is SIGKILLed:
    // give it a TMPDIR that goes away with the test.
    let tmp = private_tmp();
    let mut sandbox = Running::start(
        pidlab(["run", "--nest", "2", "--", "pidlab", "probe", "--ignore", "TERM"]).env("TMPDIR", tmp.path()),
    );
    sandbox.expect_line("probe: ready", T);
    let chain = chain_until(sandbox.pid(), "pidlab", T);
    let fds: Vec<_> = chain.iter().map(|p| pidfd_open(Pid::from_raw(*p))).collect();
    let killed = Instant::now();
    kill(Pid::from_raw(sandbox.pid()), Signal::SIGKILL).unwrap();
    let left_behind = entries(tmp.path());
    assert_eq!(left_behind.len(), 1, "a SIGKILLed pidlab cannot remove its mount point: {left_behind:?}");
    for (pid, fd) in chain.iter().zip(&fds) {
        let mut pfd = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(fd), nix::poll::PollFlags::POLLIN)];
        let left = Duration::from_millis(100).saturating_sub(killed.elapsed());
        let ready =
            nix::poll::poll(&mut pfd, nix::poll::PollTimeout::try_from(left.as_millis() as i32).unwrap());
        assert_eq!(ready, Ok(1), "sandbox process {pid} still alive 100 ms after pidlab was SIGKILLed");
    }
    let _ = sandbox.finish(T);
    // The next pidlab removes the empty mount point of the dead one.
    let out = run_within(
        {
            let mut cmd = pidlab(["run", "--", "true"]);
            cmd.env("TMPDIR", tmp.path());
            cmd
        },
        T,
    );
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(entries(tmp.path()).is_empty(), "stale mount point not cleaned: {:?}", entries(tmp.path()));
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
