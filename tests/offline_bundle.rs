//! The offline bundle (`rootfs-scripts/offline-bundle.sh`): built, unpacked
//! in a clean directory far from the repository, and used there as an
//! attendee would, with only the bundle's own pidlab on the PATH.
//!
//! Building the release binary takes minutes on a shared machine, so the
//! test bundles the binary `cargo test` built (`--binary`); it is static
//! like the release one. The script's own build step is the one line
//! `cargo build --release`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

/// `program ARGS` from `dir`, with the bundle's bin/ first on a PATH that
/// has no cargo target directory, and a private state directory.
fn in_bundle(top: &Path, state: &Path, program: &str, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .current_dir(top)
        .env("PATH", format!("{}:/usr/sbin:/usr/bin:/sbin:/bin", top.join("bin").display()))
        .env("PIDLAB_STATE_DIR", state)
        .env_remove("CARGO_MANIFEST_DIR");
    run_within(cmd, Duration::from_secs(60))
}

#[test]
fn the_offline_bundle_runs_a_lesson_without_the_repository() {
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    require("/usr/bin/redis-server", "apt-get install redis-server (.ci/run does)");
    let build = tempfile::tempdir().unwrap();
    let tarball = build.path().join("pidlab-workshop.tar.gz");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts/offline-bundle.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script).args(["--binary", bin()]).arg(&tarball).env("TMPDIR", build.path());
    let out = run_within(cmd, Duration::from_secs(300));
    assert_eq!(out.code(), 0, "offline-bundle.sh: {out:?}");
    assert_eq!(entries(build.path()), std::slice::from_ref(&tarball), "the script leaves only the tarball");

    // A clean directory: no repository, no target/ on the PATH.
    let machine = tempfile::tempdir().unwrap();
    let mut untar = Command::new("tar");
    untar.arg("-xzf").arg(&tarball).arg("-C").arg(machine.path());
    assert_eq!(run_within(untar, Duration::from_secs(60)).code(), 0);
    let top: PathBuf = machine.path().join("pidlab-workshop");
    let state = private_tmp();

    let which = in_bundle(&top, state.path(), "bash", &["-c", "command -v pidlab"]);
    assert_eq!(which.stdout.trim(), top.join("bin/pidlab").to_str().unwrap(), "{which:?}");

    // Lesson 04's exercise, from the bundle's files: the starter fails,
    // the solution passes, and the pass is recorded.
    let lesson = "lessons/04-pid1-signal-rules";
    let starter =
        in_bundle(&top, state.path(), "pidlab", &["lesson", "check", "4", &format!("{lesson}/exercise.sh")]);
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains("exited on SIGTERM"), "{starter:?}");
    let solution = in_bundle(
        &top,
        state.path(),
        "pidlab",
        &["lesson", "check", "4", &format!("{lesson}/solution/exercise.sh")],
    );
    assert_eq!(solution.code(), 0, "{solution:?}");
    let status = in_bundle(&top, state.path(), "pidlab", &["lesson", "status"]);
    assert!(status.stdout.lines().any(|l| l.starts_with("passed") && l.contains(" 4 ")), "{status:?}");

    // The roots boot: busybox (no C library) and redis with its libraries.
    let shell = in_bundle(
        &top,
        state.path(),
        "pidlab",
        &["run", "--rootfs", "roots/busybox", "--", "/bin/sh", "-c", "echo $$"],
    );
    assert_eq!(shell.stdout.trim(), "1", "{shell:?}");
    for root in ["roots/redis-dash", "roots/redis-bash", "roots/redis-busybox"] {
        let redis = in_bundle(
            &top,
            state.path(),
            "pidlab",
            &["run", "--rootfs", root, "--", "redis-server", "--version"],
        );
        assert!(redis.stdout.starts_with("Redis server v="), "{root}: {redis:?}");
    }
    // The record of the pass, and no sandbox.
    let left: Vec<PathBuf> = sandboxes_in(state.path())
        .into_iter()
        .filter(|p| p.file_name() != Some(".lessons.json".as_ref()))
        .collect();
    assert!(left.is_empty(), "left sandboxes: {left:?}");
}

/// Bad input: no output path is a usage error, and nothing is built.
#[test]
fn the_offline_bundle_script_refuses_bad_input() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/rootfs-scripts/offline-bundle.sh");
    let tmp = private_tmp();
    let mut cmd = Command::new("bash");
    cmd.arg(script).env("TMPDIR", tmp.path());
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 2, "{out:?}");
    assert!(out.stderr.contains("Usage: rootfs-scripts/offline-bundle.sh"), "{out:?}");
    let mut cmd = Command::new("bash");
    cmd.arg(script).args(["--binary", "/nonexistent/pidlab"]).arg(tmp.path().join("out.tar.gz"));
    cmd.env("TMPDIR", tmp.path());
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stderr.contains("/nonexistent/pidlab is not an executable file"), "{out:?}");
    assert!(entries(tmp.path()).is_empty(), "left behind: {:?}", entries(tmp.path()));
}
