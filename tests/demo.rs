//! The main job: demo/redis-stop.sh with real redis, every row checked.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

#[test]
fn redis_demo_rows_show_who_saves_and_who_loses() {
    require("/usr/bin/redis-server", "apt-get install redis-server (.ci/run does)");
    require("/usr/bin/redis-cli", "apt-get install redis-tools (.ci/run does)");
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/demo/redis-stop.sh");
    let mut cmd = Command::new("bash");
    cmd.args([script, "--grace", "2", "--format", "json"]).env("PIDLAB", bin());
    let out = run_within(cmd, Duration::from_secs(180));
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<serde_json::Value> =
        out.stdout.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(rows.len(), 6, "{out:?}");
    let row = |name: &str| {
        rows.iter().find(|r| r["scenario"] == name).unwrap_or_else(|| panic!("no row {name}: {rows:?}"))
    };
    for r in &rows {
        assert_eq!(r["known_from"], "kernel trace", "as root, the demo asks the kernel: {r}");
    }
    let fast = |r: &serde_json::Value| {
        let took = r["stop_seconds"].as_f64().unwrap_or_else(|| panic!("no stop time: {r}\n{}", out.stderr));
        r["sigkill"] == false && took < 1.0
    };

    for name in ["exec form", "shell form, busybox sh", "shell form, 'exec' in string"] {
        let r = row(name);
        assert_eq!(r["pid1"], "redis-server", "{name}: {r}");
        assert!(
            fast(r) && r["redis_got_sigterm"] == true && r["saved"] == true,
            "{name}: fast and saved: {r}"
        );
    }
    let dash = row("shell form, dash");
    assert_eq!(dash["pid1"], "/bin/sh", "{dash}");
    // Measured by the script's clock: the 2 s grace, and not much more.
    let took = dash["stop_seconds"].as_f64().unwrap_or_else(|| panic!("no stop time: {dash}"));
    assert!(dash["sigkill"] == true && (1.95..3.5).contains(&took), "took the 2 s grace: {dash}");
    assert!(dash["redis_got_sigterm"] == false && dash["saved"] == false, "lost: {dash}");
    assert_eq!(dash["exit"], 137, "{dash}");

    let tini = row("shell form + tini (--init)");
    assert!(fast(tini) && tini["redis_got_sigterm"] == false && tini["saved"] == false, "fast, lost: {tini}");
    let drain = row("shell form + pidlab --init=drain");
    assert!(
        fast(drain) && drain["redis_got_sigterm"] == true && drain["saved"] == true,
        "fast, saved: {drain}"
    );
}

#[test]
fn the_demo_runs_rootless_with_the_same_outcomes() {
    require("/usr/bin/redis-server", "apt-get install redis-server (.ci/run does)");
    let copy = ForNobody::new(&[
        "demo/redis-stop.sh",
        "demo/Dockerfile.shell-form",
        "demo/Dockerfile.exec-form",
        "rootfs-scripts/need.sh",
    ]);
    let script = copy.dir.path().join("demo/redis-stop.sh");
    let mut cmd = ForNobody::command(
        Path::new("/bin/bash"),
        &[script.to_str().unwrap(), "--grace", "1", "--format", "json"],
    );
    cmd.env("PIDLAB", copy.bin());
    let out = run_within(cmd, Duration::from_secs(180));
    assert_eq!(out.code(), 0, "{out:?}");
    let rows: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let saved: Vec<(String, bool)> =
        rows.iter().map(|r| (r["scenario"].as_str().unwrap().to_string(), r["saved"] == true)).collect();
    let expected = [
        ("exec form", true),
        ("shell form, dash", false),
        ("shell form, busybox sh", true),
        ("shell form, 'exec' in string", true),
        ("shell form + tini (--init)", false),
        ("shell form + pidlab --init=drain", true),
    ];
    let expected: Vec<(String, bool)> = expected.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    assert_eq!(saved, expected, "as an ordinary user, the same data is saved and lost");
    assert!(rows.iter().all(|r| r["known_from"] == "redis log"), "no trace without root: {rows:?}");
}
