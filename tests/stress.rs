//! Run and stop sandboxes in a loop, two at a time, and prove nothing is
//! left: no process, no zombie, no mount on the host, no state, no
//! file in TMPDIR.
//!
//! CI runs a modest number of cycles; set PIDLAB_STRESS_CYCLES=300 for the
//! full run the workshop machines deserve.

mod common;

use std::time::Duration;

use common::*;

/// One cycle's variant: what runs and how it is stopped.
fn variant(i: usize) -> Vec<&'static str> {
    match i % 6 {
        0 => vec!["--cmd", r#"["pidlab", "probe", "--on-term-save", "/tmp/s"]"#],
        1 => vec!["--cmd", "pidlab probe --on-term-save /tmp/s"],
        2 => vec!["--init", "--", "pidlab", "probe", "--orphans", "3", "--orphan-life", "0"],
        3 => vec!["--nest", "3", "--", "pidlab", "probe"],
        4 => vec!["--init=drain", "--cmd", "pidlab probe --on-term-save /tmp/s"],
        _ => vec!["--pivot-root", "--", "pidlab", "probe", "--ignore", "TERM"],
    }
}

#[test]
fn cycles_leave_nothing_behind() {
    let cycles: usize = std::env::var("PIDLAB_STRESS_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(24);
    let lab = Lab::new();
    let mounts_before = host_mounts().len();
    let me = std::process::id() as i32;
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let lab = &lab;
            scope.spawn(move || {
                for i in (worker..cycles).step_by(2) {
                    let name = format!("s{i}");
                    if i % 2 == 0 {
                        // Detached: start, wait until ready, stop.
                        let mut args = vec!["run", "-d", "--name", &name];
                        args.extend(variant(i));
                        lab.start(&args);
                        lab.ok(&["stop", "-t", "0.3", &name]);
                        lab.ok(&["rm", &name]);
                    } else {
                        // Foreground, stopped by --stop-after.
                        let mut args =
                            vec!["run", "--name", &name, "--stop-after", "0.2", "--stop-timeout", "0.3"];
                        args.extend(variant(i));
                        let out = run_within(lab.cmd(&args), Duration::from_secs(30));
                        assert!(matches!(out.code(), 0 | 137 | 143), "cycle {i}: {out:?}");
                    }
                }
            });
        }
    });
    // Nothing left: no pidlab child of ours, no state, nothing in TMPDIR,
    // no mount.
    let leftover_children = children(me);
    let state = sandboxes_in(lab.state.path());
    let tmp = entries(lab.tmp.path());
    let mounts_after = host_mounts().len();
    println!(
        "stress: {cycles} cycles; children of the test {}, state dirs {}, entries in TMPDIR {}, host mounts {} -> {}",
        leftover_children.len(),
        state.len(),
        tmp.len(),
        mounts_before,
        mounts_after
    );
    assert!(leftover_children.iter().all(|p| !comm(*p).starts_with("pidlab")), "{leftover_children:?}");
    assert!(state.is_empty(), "state left: {state:?}");
    assert!(tmp.is_empty(), "pidlab wrote to TMPDIR: {tmp:?}");
    assert_eq!(mounts_after, mounts_before, "the host's mount table changed");
    // Every shim of this lab has exited (its environment names the lab's
    // state directory). A zombie shim is only waiting for the host's init
    // to collect it.
    let shims: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|p| comm(*p) == "pidlab:shim")
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/environ"))
                .map(|env| String::from_utf8_lossy(&env).contains(&lab.state.path().display().to_string()))
                .unwrap_or(false)
        })
        .filter(|p| !is_zombie(*p))
        .collect();
    assert!(shims.is_empty(), "shims still running: {shims:?}");
    lab.finish();
}
