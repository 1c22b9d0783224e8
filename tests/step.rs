//! `pidlab run --step`: the recipe one step at a time, each step's effect
//! read from /proc. Each assertion compares what pidlab printed with what
//! the kernel says independently (this test's own namespaces), or with a
//! rule the kernel enforces.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(30);

/// The lines pidlab printed for step N (its header up to the next one).
fn section(stderr: &str, n: u32) -> String {
    let start = format!("── step {n}/14 ");
    let mut out = String::new();
    let mut inside = false;
    for line in stderr.lines() {
        if line.contains("── ") {
            inside = line.contains(&start);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn each_step_shows_what_the_kernel_changed() {
    let out = run_within(pidlab(["run", "--step=log", "--pivot-root", "--", "sleep", "0.5"]), T);
    assert_eq!(out.code(), 0, "{out:?}");
    let own_pid_ns = std::fs::read_link("/proc/self/ns/pid").unwrap().display().to_string();

    // Step 2: unshare(CLONE_NEWPID) changes pidlab's pid_for_children, not
    // its own ns/pid; the child it then makes lives in a new namespace.
    let step2 = section(&out.stderr, 2);
    assert!(step2.contains(&format!("ns/pid_for_children: {own_pid_ns} -> ")), "{step2}");
    let line = step2.lines().find(|l| l.contains("its ns/pid is")).unwrap_or_else(|| panic!("{step2}"));
    assert!(line.contains(&format!("pidlab's {own_pid_ns}")), "{line}");
    let child_ns = line.split("its ns/pid is ").nth(1).unwrap().split(',').next().unwrap();
    assert!(child_ns.starts_with("pid:[") && child_ns != own_pid_ns, "{line}");

    // Step 5: after MS_REC | MS_PRIVATE no mount propagates.
    assert!(section(&out.stderr, 5).contains("shared mounts now: 0"), "{}", out.stderr);
    // Step 7: a new proc mount on the root's /proc.
    assert!(section(&out.stderr, 7).contains("/.root/proc proc"), "{}", out.stderr);
    // Step 8 (pivot_root): the host's mounts are gone from its table.
    let step8 = section(&out.stderr, 8);
    assert!(step8.contains("- / ext4") || step8.contains("- ..."), "{step8}");
    // Step 12: the capability sets the kernel now shows are Docker's.
    assert!(section(&out.stderr, 12).contains("-> 00000000a80425fb"), "{}", out.stderr);
    // Step 14: PID 1 is the workload.
    assert!(section(&out.stderr, 14).contains("ps inside: 1 sleep"), "{}", out.stderr);
}

/// Every step the recipe runs is shown, and those it does without are
/// named as skipped, with why; with flags that add steps (rootless,
/// nesting, a terminal), all fourteen run.
#[test]
fn every_step_of_the_recipe_is_shown() {
    let plain = run_within(pidlab(["run", "--step=log", "--", "true"]), T);
    let headers = |stderr: &str, skipped: bool| -> Vec<u32> {
        (1..=14)
            .filter(|n| {
                stderr
                    .lines()
                    .any(|l| l.contains(&format!("── step {n}/14 ")) && l.contains(": skipped, ") == skipped)
            })
            .collect()
    };
    let shown = |stderr: &str| headers(stderr, false);
    assert_eq!(shown(&plain.stderr), [2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 14], "{plain:?}");
    assert_eq!(headers(&plain.stderr, true), [1, 9, 10], "{plain:?}");
    assert!(!plain.stderr.contains("already exited"), "a step took a live process for gone: {plain:?}");
    let all = run_within(pidlab(["run", "--step=log", "--rootless", "--nest", "2", "-t", "--", "true"]), T);
    assert_eq!(all.code(), 0, "{all:?}");
    assert_eq!(shown(&all.stderr), (1..=14).collect::<Vec<_>>(), "{all:?}");
    assert_eq!(headers(&all.stderr, true), [0u32; 0], "{all:?}");
}

#[test]
fn step_is_refused_with_detach() {
    let state = private_tmp();
    let mut cmd = pidlab(["run", "-d", "--step", "--", "true"]);
    cmd.env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("-d"), "{out:?}");
    assert!(sandboxes_in(state.path()).is_empty());
}

/// Ctrl-C at a pause stops the walk-through, says so, and leaves no
/// half-built sandbox behind.
#[test]
fn ctrl_c_at_a_pause_tears_everything_down() {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let state = private_tmp();
    let mut cmd = std::process::Command::new("sh");
    cmd.args(["-c", "exec \"$0\" run --step -- true 2>&1", bin()]).env("PIDLAB_STATE_DIR", state.path());
    let mut walk = Running::start(&mut cmd);
    walk.expect_line("── step 2/14", T);
    walk.write_stdin("\n");
    let line = walk.expect_line("PID 1 is host PID", T);
    let pid1: i32 =
        line.split("host PID ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let pid1_fd = pidfd_open(Pid::from_raw(pid1));
    walk.expect_line("── step 3/14", T);
    kill(Pid::from_raw(walk.pid()), Signal::SIGINT).unwrap();
    assert!(exits_within(&pid1_fd, T), "the half-built sandbox's PID 1 {pid1} is still there");
    let out = walk.finish(T);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stdout.contains("stopped at your Ctrl-C"), "{out:?}");
    // Its record (a generated name: `ps` listed it during the walk) too.
    assert!(sandboxes_in(state.path()).is_empty(), "a record was left: {:?}", sandboxes_in(state.path()));
}
