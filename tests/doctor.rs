//! `pidlab doctor` passes on this machine, and on a host where a step is
//! made to fail it names the step and the fix.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn doctor_passes_here() {
    let out = run_within(pidlab(["doctor"]), Duration::from_secs(60));
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("this machine is ready"), "{out:?}");
    assert!(!out.stdout.contains("FAIL"), "{out:?}");
}

/// Inside a user namespace of its own (util-linux unshare, a separate
/// process) the test sets that namespace's user.max_user_namespaces to 0:
/// the rootless step fails there, and only there. Root inside a user
/// namespace still gets PID and mount namespaces (it owns them) — but no
/// mknod, which pidlab must notice.
#[test]
fn doctor_names_the_failing_step_and_the_fix() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let script = format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {} doctor", bin());
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["--user", "--map-root-user", "/bin/sh", "-c", &script]);
    let out = run_within(cmd, Duration::from_secs(60));
    assert_eq!(out.code(), 1, "{out:?}");
    assert!(out.stdout.contains("ok    PID and mount namespaces"), "root in a user namespace: {out:?}");
    assert!(out.stdout.contains("FAIL  rootless"), "{out:?}");
    assert!(out.stdout.contains("step 1/14 create user namespace"), "names the step: {out:?}");
    assert!(out.stdout.contains("sysctl -w user.max_user_namespaces="), "gives the fix: {out:?}");
}
