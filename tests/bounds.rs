//! No crash on any number: every duration flag refuses what it cannot
//! honour (exit 125, the allowed range named), `probe --orphans` has a
//! ceiling, and a Dockerfile is read up to 1 MiB. Each test has its own
//! state directory and TMPDIR.

mod common;

use std::process::Command;
use std::time::Duration;

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
        refused_in(&lab, &["logs", "--until", "x", "--timeout", bad, &name], &["--timeout", "0 to 604800"]);
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
