//! Rootless: an ordinary user gets a sandbox through a user namespace.
//! The tests drop to the `nobody` user (65534) with setpriv(1).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;

fn as_nobody(args: &[&str]) -> Outcome {
    let copy = ForNobody::new(&[]);
    run_within(ForNobody::command(&copy.bin(), args), Duration::from_secs(20))
}

#[test]
fn an_ordinary_user_gets_pid_1_and_root_inside() {
    let out = as_nobody(&["run", "--", "sh", "-c", "echo $$ $(id -u); ps -e -o pid= | wc -l"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let words: Vec<&str> = out.stdout.split_whitespace().collect();
    assert_eq!(words[..2], ["1", "0"], "PID 1, mapped to root inside: {out:?}");
    assert!(words[2].parse::<u32>().unwrap() <= 4, "ps sees only the sandbox: {out:?}");
}

#[test]
fn rootless_pivot_root_and_nesting_work() {
    let out = as_nobody(&["run", "--pivot-root", "--nest", "3", "--", "sh", "-c", "echo $$"]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim(), "1", "{out:?}");
}

#[test]
fn rootless_stop_follows_the_same_pid_1_rules() {
    let out = as_nobody(&["run", "--stop-after", "0.3", "--stop-timeout", "0.5", "--", "sleep", "30"]);
    assert_eq!(out.code(), 137, "sleep as PID 1 drops SIGTERM and is SIGKILLed: {out:?}");
}

/// A host that forbids user namespaces, made without touching the host:
/// `user.max_user_namespaces` is a per-user-namespace limit, so inside a
/// user namespace of its own (util-linux unshare, a separate process) the
/// test sets it to 0 there, and pidlab --rootless meets the refusal.
#[test]
fn forbidden_user_namespaces_are_explained() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let script =
        format!("echo 0 > /proc/sys/user/max_user_namespaces && exec {} run --rootless -- true", bin());
    let mut cmd = Command::new("/usr/bin/unshare");
    cmd.args(["--user", "--map-root-user", "/bin/sh", "-c", &script]);
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("step 1/14 create user namespace"), "names the step: {}", out.stderr);
    assert!(out.stderr.contains("user.max_user_namespaces is 0"), "names the sysctl: {}", out.stderr);
    assert!(out.stderr.contains("sysctl -w user.max_user_namespaces="), "gives the fix: {}", out.stderr);
}
