//! No crash on any number, no unbounded input: every duration flag refuses
//! what it cannot honour (exit 125, the allowed range named), a Dockerfile is
//! read up to 1 MiB, a detached sandbox's log is capped (oldest output
//! dropped), `logs` streams in bounded memory, and `probe --orphans` has a
//! ceiling. Each test has its own state directory and TMPDIR.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(20);

/// `pidlab ARGS` with a private TMPDIR and state directory: exit 125,
/// stderr names every one of `needles`, nothing left in either.
fn refused(args: &[&str], needles: &[&str]) {
    let lab = Lab::new();
    refused_in(&lab, args, needles);
    assert!(entries(lab.tmp.path()).is_empty(), "pidlab {args:?} left {:?}", entries(lab.tmp.path()));
    let left = sandboxes_in(lab.state.path());
    assert!(left.is_empty(), "pidlab {args:?} left {left:?} behind");
}

fn refused_in(lab: &Lab, args: &[&str], needles: &[&str]) {
    let out = lab.run(args);
    assert_eq!(out.code(), 125, "pidlab {args:?} must exit 125: {out:?}");
    for needle in needles {
        assert!(out.stderr.contains(needle), "pidlab {args:?}: stderr lacks {needle:?}: {}", out.stderr);
    }
}

/// Every seconds flag, given a number no `Duration` can hold, NaN, infinity
/// or a negative: 125 and the range, never a panic (exit 101).
#[test]
fn durations_out_of_range_are_refused_with_the_range() {
    let range = "0 to 604800";
    for bad in ["1e30", "1e300", "inf", "nan", "-0.5", "604800.5"] {
        refused(&["run", "--stop-after", bad, "--", "true"], &["--stop-after", range]);
        refused(&["run", "--stop-timeout", bad, "--", "true"], &["--stop-timeout", range, "-1"]);
        refused(&["probe", "--sleep", bad], &["--sleep", range]);
        refused(&["probe", "--orphans", "1", "--orphan-life", bad], &["--orphan-life", range]);
        refused(&["init", "--grace", bad, "--", "true"], &["--grace", range]);
    }
    // -1 means "forever" only where docker says so: stop timeouts.
    refused(&["run", "--stop-timeout", "-2", "--", "true"], &["--stop-timeout", "-1"]);
    refused(&["run", "--stop-after", "-1", "--", "true"], &["--stop-after", range]);
    refused(&["init", "--grace", "-1", "--", "true"], &["--grace", range]);
}

/// `stop -t` and `logs --timeout` act on a running sandbox: refused before
/// it is touched, and it runs on.
#[test]
fn stop_and_logs_timeouts_out_of_range_leave_the_sandbox_alone() {
    let lab = Lab::new();
    let name = lab.start(&["run", "-d", "--name", "busy", "--", "pidlab", "probe"]);
    for bad in ["nan", "inf", "1e300", "-2"] {
        refused_in(&lab, &["stop", "-t", bad, &name], &["--timeout", "0 to 604800", "-1"]);
    }
    for bad in ["nan", "inf", "1e300", "-1"] {
        refused_in(
            &lab,
            &["logs", "--wait-for", "x", "--timeout", bad, &name],
            &["--timeout", "0 to 604800"],
        );
    }
    let ps = lab.ok(&["ps"]);
    assert!(ps.contains("busy") && ps.contains("running"), "{ps}");
    lab.finish();
}

/// The edges of the ranges are accepted: -1 (forever) and one week.
#[test]
fn the_edges_of_the_ranges_are_accepted() {
    let forever = Lab::new().ok(&["run", "--dry-run", "--stop-timeout", "-1", "--", "true"]);
    assert!(forever.contains("never SIGKILL"), "{forever}");
    let week =
        Lab::new().ok(&["run", "--dry-run", "--stop-timeout", "604800", "--stop-after", "0", "--", "true"]);
    assert!(week.contains("SIGKILL after 604800 s"), "{week}");
}

#[test]
fn too_many_orphans_are_refused() {
    // One over the ceiling first: today's code forks them (harmlessly, they
    // exit at once); u32::MAX would be a fork bomb.
    refused(
        &["probe", "--orphans", "10001", "--orphan-life", "0", "--sleep", "0"],
        &["--orphans", "at most 10000"],
    );
    refused(&["probe", "--orphans", "4294967295"], &["--orphans", "at most 10000"]);
    refused(&["run", "--", "pidlab", "probe", "--orphans", "4294967295"], &["--orphans", "at most 10000"]);
}

#[test]
fn a_dockerfile_over_one_mebibyte_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("Dockerfile");
    // Valid all the way: comments, then a CMD.
    let mut text = "# padding\n".repeat(110_000);
    text.push_str("CMD [\"true\"]\n");
    std::fs::write(&big, text).unwrap();
    refused(&["run", "--dry-run", "-f", big.to_str().unwrap()], &["1 MiB", "Dockerfile"]);
    // Just under the limit is read.
    let fits = dir.path().join("Dockerfile.fits");
    let mut text = "# padding\n".repeat(100_000);
    text.push_str("CMD [\"true\"]\n");
    std::fs::write(&fits, text).unwrap();
    let out = Lab::new().ok(&["run", "--dry-run", "-f", fits.to_str().unwrap()]);
    assert!(out.contains("argv: [\"true\"]"), "{out}");
}

/// `-f /dev/zero` never ends: refused after 1 MiB. The address space is
/// capped (prlimit) so that a pidlab that reads on cannot take the
/// machine's memory.
#[test]
fn an_endless_dockerfile_is_refused_in_bounded_memory() {
    require("/usr/bin/prlimit", "apt-get install util-linux");
    let lab = Lab::new();
    let mut cmd = Command::new("/usr/bin/prlimit");
    cmd.args(["--as=268435456", "--"]).arg(bin()).args(["run", "--dry-run", "-f", "/dev/zero"]);
    cmd.env("PIDLAB_STATE_DIR", lab.state.path()).env("TMPDIR", lab.tmp.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("1 MiB") && out.stderr.contains("/dev/zero"), "{out:?}");
}

/// Sizes of `log` and `log.1` in a sandbox's state directory (0 if absent).
fn log_sizes(lab: &Lab, name: &str) -> (u64, u64) {
    let dir = lab.state.path().join(name);
    let size = |file: &str| std::fs::metadata(dir.join(file)).map_or(0, |m| m.len());
    (size("log"), size("log.1"))
}

/// Watch `yes` write as fast as it can for `watch`: `log` never exceeds
/// `cap`, and it is rotated (log.1 appears, is replaced). On failure the
/// sandbox is removed at once (the Lab's drop), so disk use stays bounded.
fn log_stays_under(lab: &Lab, name: &str, cap: u64, watch: Duration) {
    let start = Instant::now();
    let mut rotated_inodes = std::collections::BTreeSet::new();
    while start.elapsed() < watch {
        let (log, old) = log_sizes(lab, name);
        assert!(log <= cap && old <= cap, "log {log} and log.1 {old} bytes: over the cap of {cap}");
        if let Ok(meta) = std::fs::metadata(lab.state.path().join(name).join("log.1")) {
            rotated_inodes.insert(std::os::unix::fs::MetadataExt::ino(&meta));
        }
        std::thread::yield_now();
    }
    assert!(rotated_inodes.len() >= 2, "the log was not rotated again and again: {rotated_inodes:?}");
}

/// With no flag, `run -d -- yes` is capped at the default, 10 MiB per file.
#[test]
fn yes_fills_the_log_only_to_the_default_cap() {
    let lab = Lab::new();
    lab.ok(&["run", "-d", "--name", "yes", "--", "yes"]);
    log_stays_under(&lab, "yes", 10 << 20, Duration::from_secs(3));
    lab.ok(&["rm", "-f", "yes"]);
    assert!(!lab.state.path().join("yes").exists());
    lab.finish();
}

/// `--log-max-size`: a small cap, the newest output kept, nothing torn.
#[test]
fn log_max_size_caps_each_file_and_keeps_the_newest_output() {
    let lab = Lab::new();
    lab.ok(&["run", "-d", "--name", "y", "--log-max-size", "16k", "--", "yes", "pidlab"]);
    log_stays_under(&lab, "y", 16 << 10, Duration::from_secs(2));
    lab.ok(&["kill", "y"]);
    wait_until(T, "yes is killed", || lab.ok(&["ps", "-a"]).contains("exited (137)"));
    let out = lab.ok(&["logs", "y"]);
    // log.1 then log: at most twice the cap; the cuts fall anywhere, so the
    // first and last lines may be pieces, the others are whole.
    assert!(out.len() <= 32 << 10, "{} bytes", out.len());
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() > 2 && lines[1..lines.len() - 1].iter().all(|l| *l == "pidlab"), "torn lines");
    lab.ok(&["rm", "-f", "y"]);

    // A sequence longer than both files: `logs` prints its end, whole and in order.
    lab.ok(&["run", "-d", "--name", "seq", "--log-max-size", "16k", "--", "seq", "1", "100000"]);
    wait_until(T, "seq exits", || lab.ok(&["ps", "-a"]).contains("exited (0)"));
    // `logs` first: the end of the output may still be on its way to the log
    // when `ps` says "exited"; `logs` waits for it.
    let out = lab.ok(&["logs", "seq"]);
    let (log, old) = log_sizes(&lab, "seq");
    // Files are cut between records (a line, its stream and time: under
    // 40 bytes here), so log.1 is full to within one record.
    assert!(log <= 16 << 10 && old <= 16 << 10 && old > (16 << 10) - 40, "log {log}, log.1 {old}");
    // Every line whole: seq writes whole lines, and no cut falls in one.
    let numbers: Vec<u64> = out.lines().map(|l| l.parse().expect("a whole number")).collect();
    assert_eq!(numbers.last(), Some(&100000));
    assert!(numbers.windows(2).all(|w| w[1] == w[0] + 1), "a gap in the kept output");
    assert!(numbers[0] > 90000, "the oldest output was kept: starts at {}", numbers[0]);
    lab.finish();
}

#[test]
fn log_max_size_out_of_range_or_without_detach_is_refused() {
    refused(&["run", "-d", "--log-max-size", "1k", "--", "true"], &["--log-max-size", "4k to 1g"]);
    refused(&["run", "-d", "--log-max-size", "2g", "--", "true"], &["--log-max-size", "4k to 1g"]);
    refused(&["run", "-d", "--log-max-size", "ten", "--", "true"], &["--log-max-size", "4k to 1g"]);
    refused(&["run", "--log-max-size", "1m", "--", "true"], &["--log-max-size", "--detach"]);
}

/// `logs` of a 48 MiB line without a newline, with its address space capped
/// at 32 MiB: it must stream, not hold the line.
#[test]
fn logs_streams_a_newline_free_log_in_bounded_memory() {
    require("/usr/bin/prlimit", "apt-get install util-linux");
    let lab = Lab::new();
    let size: u64 = 48 << 20;
    let script = format!("head -c {size} /dev/zero | tr '\\0' x");
    lab.ok(&["run", "-d", "--name", "wide", "--log-max-size", "64m", "--", "sh", "-c", &script]);
    wait_until(T, "the writer exits", || lab.ok(&["ps", "-a"]).contains("exited (0)"));
    // One line in 16 KiB records, each with a header of under 30 bytes.
    let (log, old) = log_sizes(&lab, "wide");
    assert!(old == 0 && log > size && log < size + (size >> 14) * 30, "log {log}, log.1 {old}");

    let out_file = tempfile::NamedTempFile::new().unwrap();
    for follow in [&[][..], &["-f"]] {
        let mut cmd = Command::new("/usr/bin/prlimit");
        cmd.args(["--as=33554432", "--"]).arg(bin()).arg("logs").args(follow).arg("wide");
        cmd.env("PIDLAB_STATE_DIR", lab.state.path()).env("TMPDIR", lab.tmp.path());
        cmd.stdout(out_file.reopen().unwrap()).stderr(Stdio::piped()).stdin(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let status = wait_exit(&mut child, T);
        assert!(status.success(), "pidlab logs {follow:?} under a 32 MiB address space: {status:?}");
        let printed = std::fs::read(out_file.path()).unwrap();
        assert_eq!(printed.len() as u64, size, "pidlab logs {follow:?} printed a part");
        assert!(printed.iter().all(|b| *b == b'x'));
    }
    lab.finish();
}

/// `logs --wait-for` finds its text in a log that rotated many times while it
/// was being followed.
#[test]
fn logs_until_follows_the_log_across_rotations() {
    let lab = Lab::new();
    let gate = lab.data.path().join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let volume = lab.volume();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "rot",
        "--log-max-size",
        "4k",
        "-v",
        &volume,
        "--",
        "sh",
        "-c",
        "read go < /state/gate; seq 1 30000; echo THE-END; exec sleep 60",
    ]);
    let mut follower =
        Running::start(&mut lab.cmd(&["logs", "--wait-for", "THE-END", "--timeout", "15", "rot"]));
    open_the_gate(&gate);
    follower.expect_line("THE-END", T);
    let out = follower.finish(T);
    assert_eq!(out.code(), 0, "{out:?}");
    lab.finish();
}

/// Open the write end of the FIFO `gate` once the sandbox has opened its
/// read end (bounded), and write one line.
fn open_the_gate(gate: &std::path::Path) {
    use nix::fcntl::{OFlag, open};
    let mut fd = None;
    wait_until(T, "the sandbox opens the gate", || {
        // O_NONBLOCK: ENXIO until a reader is there, instead of blocking.
        fd = open(gate, OFlag::O_WRONLY | OFlag::O_NONBLOCK, nix::sys::stat::Mode::empty()).ok();
        fd.is_some()
    });
    nix::unistd::write(fd.as_ref().unwrap(), b"go\n").unwrap();
}

/// `probe --await-reaped` watches each orphan through a descriptor: with
/// a soft limit of 256 open files (many machines have 1,024) it raises its
/// own to the hard limit, and 1,500 orphans are watched all the same.
#[test]
fn await_reaped_watches_more_orphans_than_the_soft_file_limit() {
    let script = format!(
        "ulimit -Sn 256 && exec {} run --init -- pidlab probe --orphans 1500 --orphan-life 0 --await-reaped --sleep 0",
        bin()
    );
    let state = private_tmp();
    let mut cmd = Command::new("sh");
    cmd.args(["-c", &script]).env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("left 1500 orphans") && out.stdout.contains("all orphans reaped"), "{out:?}");
}
