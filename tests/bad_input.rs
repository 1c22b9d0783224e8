//! Bad input: a clear error that names the problem and the fix, exit code
//! 125, and nothing left behind (checked in a private TMPDIR and state
//! directory).

mod common;

use std::time::Duration;

use common::*;

/// Run `pidlab ARGS` with a private TMPDIR and state directory; assert exit
/// 125, that stderr contains every `needles`, and that nothing is left in
/// either.
fn refused(args: &[&str], needles: &[&str]) {
    let tmp = private_tmp();
    let state = private_tmp();
    let mut cmd = pidlab(args);
    cmd.env("TMPDIR", tmp.path()).env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 125, "pidlab {args:?} must exit 125: {out:?}");
    for needle in needles {
        assert!(out.stderr.contains(needle), "pidlab {args:?}: stderr lacks {needle:?}: {}", out.stderr);
    }
    assert!(entries(tmp.path()).is_empty(), "pidlab {args:?} left {:?} behind", entries(tmp.path()));
    let left = sandboxes_in(state.path());
    assert!(left.is_empty(), "pidlab {args:?} left {left:?} behind");
}

#[test]
fn nest_out_of_range() {
    refused(&["run", "--nest", "0", "--", "true"], &["at least one PID namespace", "--nest 1"]);
    refused(&["run", "--nest", "33", "--", "true"], &["at most 32", "MAX_PID_NS_LEVEL", "--nest 1 to 32"]);
}

#[test]
fn rootfs_missing_or_not_a_directory() {
    refused(&["run", "--rootfs", "/no/such/root", "--", "true"], &["/no/such/root", "no such directory"]);
    refused(&["run", "--rootfs", "/etc/hostname", "--", "true"], &["not a directory"]);
}

#[test]
fn root_without_the_shell_that_shell_form_needs() {
    let empty = tempfile::tempdir().unwrap();
    let root = empty.path().to_str().unwrap();
    refused(&["run", "--rootfs", root, "--cmd", "echo hi"], &["/bin/sh", "--shell", "exec form"]);
}

#[test]
fn json_array_of_non_strings() {
    refused(&["run", "--cmd", "[1,2]"], &["strings only", "Docker refuses this too"]);
}

#[test]
fn empty_cmd_and_entrypoint() {
    refused(&["run"], &["no command to run"]);
    refused(&["run", "--cmd", "", "--entrypoint", ""], &["no command to run"]);
    refused(&["run", "--cmd", "[]"], &["no command to run"]);
}

#[test]
fn unknown_signal_name() {
    refused(&["run", "--stop-signal", "SIGFOO", "--", "true"], &["SIGFOO", "SIGTERM"]);
}

#[test]
fn unknown_dockerfile_instruction_names_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(&file, "FROM scratch\nCMD [\"true\"]\nFROBNICATE now\n").unwrap();
    refused(&["run", "-f", file.to_str().unwrap()], &["line 3", "FROBNICATE"]);
}

#[test]
fn unknown_flag_and_bad_volume() {
    refused(&["run", "--bogus", "--", "true"], &["--bogus"]);
    refused(&["run", "-v", "/no/such/dir:/data", "--", "true"], &["/no/such/dir", "create it"]);
    refused(&["run", "-v", "/tmp:relative", "--", "true"], &["absolute"]);
}

#[test]
fn missing_init() {
    refused(&["run", "--init=/sbin/no-such-init", "--", "true"], &["/sbin/no-such-init", "--init"]);
}

#[test]
fn unknown_capability() {
    refused(&["run", "--cap-add", "SYS_MAGIC", "--", "true"], &["SYS_MAGIC", "capabilities(7)"]);
}

#[test]
fn unwritable_state_directory() {
    // No sandbox is started when pidlab cannot record it (-d) or make the
    // mount point for its root (any run).
    for args in [&["run", "-d", "--", "pidlab", "probe"][..], &["run", "--", "true"]] {
        refused_with_state_dir(args, "/proc/pidlab-cannot-be-here");
    }
}

fn refused_with_state_dir(args: &[&str], state: &str) {
    let mut cmd = pidlab(args);
    cmd.env("PIDLAB_STATE_DIR", state);
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("state directory") && out.stderr.contains("PIDLAB_STATE_DIR"), "{out:?}");
}

/// Every refusal of the lifecycle verbs, in one table: exit code 125, a
/// message that names the problem and the way out, nothing changed.
#[test]
fn lifecycle_refusals_name_the_problem_and_the_fix() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "busy", "--", "pidlab", "probe"]);
    lab.ok(&["run", "-d", "--name", "done", "--", "true"]);
    wait_until(Duration::from_secs(20), "`done` exits", || lab.ok(&["ps", "-a"]).contains("exited (0)"));
    let table: &[(&[&str], &[&str])] = &[
        (&["exec", "ghost", "true"], &["no sandbox named \"ghost\"", "pidlab ps -a"]),
        (&["stop", "ghost"], &["no sandbox named \"ghost\""]),
        (&["kill", "ghost"], &["no sandbox named \"ghost\""]),
        (&["logs", "ghost"], &["no sandbox named \"ghost\""]),
        (&["inspect", "ghost"], &["no sandbox named \"ghost\""]),
        (&["explain", "ghost", "TERM"], &["no sandbox named \"ghost\""]),
        (&["rm", "ghost"], &["no sandbox named \"ghost\""]),
        (&["exec", "done", "true"], &["not running", "pidlab rm done"]),
        (&["kill", "done"], &["not running"]),
        (&["rm", "busy"], &["is running", "rm -f"]),
        (&["run", "-d", "--name", "busy", "--", "true"], &["is taken", "choose another --name"]),
        (&["run", "-d", "--name", "no/slash", "--", "true"], &["--name", "letters, digits"]),
        (&["stop", "../x"], &["\"../x\" cannot be a sandbox's name", "letters, digits"]),
        (&["kill", "-s", "SIGNOPE", "busy"], &["SIGNOPE", "SIGTERM"]),
        (&["explain", "busy", "NOPE"], &["NOPE"]),
        (&["trace", "--ready-fd", "1", "busy"], &["--ready-fd 1", "stdout"]),
        (&["trace", "--ready-fd", "99", "busy"], &["--ready-fd 99 is not open"]),
        (&["logs", "--wait-for", "never", "--timeout", "0.2", "busy"], &["never", "did not appear"]),
    ];
    for (args, needles) in table {
        let out = lab.run(args);
        let expected = if args[0] == "logs" && args.contains(&"--wait-for") { 1 } else { 125 };
        assert_eq!(out.code(), expected, "pidlab {args:?}: {out:?}");
        for needle in *needles {
            assert!(out.stderr.contains(needle), "pidlab {args:?}: stderr lacks {needle:?}: {}", out.stderr);
        }
        if !args.contains(&"--name") {
            assert!(
                !out.stderr.contains("--name"),
                "pidlab {args:?}: blames a flag not given: {}",
                out.stderr
            );
        }
    }
    // Nothing changed: both sandboxes are as they were.
    let ps = lab.ok(&["ps", "-a"]);
    assert!(ps.contains("busy") && ps.contains("running") && ps.contains("exited (0)"), "{ps}");
    lab.finish();
}

/// Volume specs Docker refuses, or that pidlab would silently hide.
#[test]
fn volume_specs_that_cannot_work_are_refused() {
    let host = private_tmp();
    let h = host.path().to_str().unwrap();
    refused(&["run", "-v", &format!("{h}:/proc"), "--", "true"], &["/proc", "pidlab mounts"]);
    refused(&["run", "-v", &format!("{h}:/proc/sys/x"), "--", "true"], &["/proc"]);
    refused(&["run", "-v", &format!("{h}:/.pidlab"), "--", "true"], &["/.pidlab"]);
    refused(&["run", "-v", &format!("{h}:/d:rw:extra"), "--", "true"], &["HOST:PATH[:ro]"]);
    refused(&["run", "-v", "relative/dir:/d", "--", "true"], &["absolute host path"]);
    refused(&["run", "--cmd", r#"[""]"#], &["empty"]);
}

/// A file may be a volume, on a mount point pidlab makes as a file.
#[test]
fn a_file_volume_gets_a_file_mount_point() {
    let host = private_tmp();
    let file = host.path().join("config");
    std::fs::write(&file, "from the host\n").unwrap();
    let spec = format!("{}:/data/conf/app.conf:ro", file.display());
    let out = run(["run", "-v", &spec, "--", "cat", "/data/conf/app.conf"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "from the host"), "{out:?}");
}

/// The workload's own failure is never reported with pidlab's 125.
#[test]
fn a_failed_chroot_escape_is_the_probes_failure_not_pidlabs() {
    let out = run(["run", "--cap-drop", "SYS_CHROOT", "--", "pidlab", "probe", "--chroot-escape", "/root"]);
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.contains("the escape failed") && out.stdout.contains("CAP_SYS_CHROOT"), "{out:?}");
}

/// explain's advice names a flag that exists.
#[test]
fn explain_suggests_a_real_flag() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "adv", "--", "sh", "-c", "pidlab probe & wait"]);
    let out = lab.ok(&["explain", "adv", "SIGTERM"]);
    assert!(out.contains("--to-all"), "{out}");
    assert!(!out.contains("--to all"), "{out}");
    lab.finish();
}

/// A whole command line in one exec-form element is a program named with
/// spaces: the kernel says ENOENT, and pidlab says why and how to split it.
#[test]
fn a_one_element_exec_array_with_spaces_is_explained() {
    let out = run(["run", "--cmd", r#"["sleep 0"]"#]);
    assert_eq!(out.code(), 127, "{out:?}");
    assert!(out.stderr.contains(r#"split it (["sleep","0"])"#), "{out:?}");
}
