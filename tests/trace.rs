//! `pidlab trace` and `pidlab explain`: the kernel's record of each signal,
//! and predictions that agree with it.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

/// A `pidlab trace NAME --format json` running in the background.
struct Tracer {
    running: Running,
}

impl Tracer {
    fn start(lab: &Lab, name: &str) -> Tracer {
        assert!(nix::unistd::geteuid().is_root(), "tracing needs root");
        let mut running = Running::start(&mut lab.cmd(&["trace", name, "--format", "json"]));
        running.expect_line("\"event\":\"tracing\"", T);
        Tracer { running }
    }

    fn pid(&self) -> i32 {
        self.running.pid()
    }

    /// Wait for the trace to end (the sandbox exited); return its events
    /// and the verdict.
    fn finish(self) -> (Vec<Value>, String) {
        let out = self.running.finish(T);
        assert_eq!(out.code(), 0, "{out:?}");
        let lines: Vec<Value> =
            out.stdout.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
        let verdict = lines.last().and_then(|v| v["text"].as_str()).unwrap_or("").to_string();
        (lines.into_iter().filter(|e| e["event"] != "tracing" && e["event"] != "verdict").collect(), verdict)
    }
}

fn inner_pid(who: &Value) -> i64 {
    who["nspid"].as_array().and_then(|a| a.last()).and_then(Value::as_i64).unwrap_or(-1)
}

fn generated<'a>(events: &'a [Value], sig: &str, target_ns_pid: i64) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "generate" && e["signal"] == sig && e["target"]["inside"] == true)
        .filter(|e| inner_pid(&e["target"]) == target_ns_pid)
        .collect()
}

#[test]
fn dash_shell_form_stop_is_dropped_then_killed_then_torn_down() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "dash", "--cmd", "pidlab probe --on-term-save /tmp/s"]);
    let tracer = Tracer::start(&lab, "dash");
    lab.ok(&["stop", "-t", "1", "dash"]);
    let (events, verdict) = tracer.finish();

    let term = generated(&events, "SIGTERM", 1);
    assert_eq!(term.len(), 1, "{events:#?}");
    assert_eq!(term[0]["res"], 1, "the kernel ignored it at send time");
    assert!(term[0]["outcome"].as_str().unwrap().starts_with("dropped"), "{:#}", term[0]);
    assert_eq!(term[0]["sender"]["inside"], false);

    let kill = generated(&events, "SIGKILL", 1);
    assert!(kill.iter().any(|e| e["res"] == 0 && e["sender"]["inside"] == false), "SIGKILL reached PID 1");
    let teardown = generated(&events, "SIGKILL", 2);
    assert!(
        teardown.iter().any(|e| e["code"] == 128 && e["res"] == 0 && e["sender"]["inside"] == true),
        "the kernel killed the probe (PID 2) when PID 1 died: {events:#?}"
    );
    assert!(verdict.contains("SIGTERM sent to sh (PID 1) was dropped"), "{verdict}");
    assert!(verdict.contains("SIGKILL from outside the namespace reached sh (PID 1)"), "{verdict}");
    assert!(verdict.contains("killed pidlab (PID 2) in the teardown"), "{verdict}");
    lab.finish();
}

#[test]
fn exec_form_catcher_gets_sigterm_in_its_handler_and_exits() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "catch", "--", "pidlab", "probe", "--on-term-save", "/tmp/s"]);
    let tracer = Tracer::start(&lab, "catch");
    lab.ok(&["stop", "catch"]);
    let (events, verdict) = tracer.finish();
    let term = generated(&events, "SIGTERM", 1);
    assert_eq!(term.len(), 1, "{events:#?}");
    assert_eq!(term[0]["res"], 0, "queued");
    assert!(
        events.iter().any(|e| e["event"] == "deliver"
            && e["signal"] == "SIGTERM"
            && e["outcome"] == "delivered to its handler"),
        "{events:#?}"
    );
    assert!(
        events.iter().any(|e| e["event"] == "exit" && inner_pid(&e["target"]) == 1),
        "clean exit: {events:#?}"
    );
    assert!(!events.iter().any(|e| e["signal"] == "SIGKILL"), "no SIGKILL was needed: {events:#?}");
    assert!(verdict.contains("received SIGTERM in its handler"), "{verdict}");
    lab.finish();
}

#[test]
fn sigkill_from_inside_the_namespace_is_dropped_at_pid_1() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "inside", "--", "pidlab", "probe"]);
    let tracer = Tracer::start(&lab, "inside");
    let out = lab.run(&["exec", "inside", "kill", "-KILL", "1"]);
    assert_eq!(out.code(), 0, "kill(2) returns 0 even though the kernel drops the signal: {out:?}");
    lab.ok(&["kill", "inside"]);
    let (events, _) = tracer.finish();
    let kills = generated(&events, "SIGKILL", 1);
    let from_inside = kills.iter().find(|e| e["res"] == 1).expect("a dropped SIGKILL");
    assert!(
        from_inside["outcome"].as_str().unwrap().contains("from inside the namespace"),
        "{from_inside:#}"
    );
    assert!(kills.iter().any(|e| e["res"] == 0), "the host's SIGKILL (pidlab kill) got through");
    lab.finish();
}

#[test]
fn nested_events_carry_a_pid_per_level_consistent_with_nspid() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "deep", "--nest", "2", "--", "pidlab", "probe", "--catch", "USR1"]);
    let record: Value =
        serde_json::from_slice(&std::fs::read(lab.state.path().join("deep/sandbox.json")).unwrap()).unwrap();
    let pid1 = record["pid1"]["pid"].as_i64().unwrap() as i32;
    let probe = children(pid1)[0];
    let nspid: Vec<i64> =
        status_field(probe, "NSpid").split_whitespace().map(|n| n.parse().unwrap()).collect();
    assert_eq!(nspid.len(), 3);
    let tracer = Tracer::start(&lab, "deep");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(probe), nix::sys::signal::Signal::SIGUSR1).unwrap();
    lab.ok(&["kill", "deep"]);
    let (events, _) = tracer.finish();
    let usr1 =
        events.iter().find(|e| e["event"] == "generate" && e["signal"] == "SIGUSR1").expect("USR1 traced");
    let seen: Vec<i64> =
        usr1["target"]["nspid"].as_array().unwrap().iter().map(|n| n.as_i64().unwrap()).collect();
    assert_eq!(seen, nspid, "host, level 1 and level 2 PIDs, as NSpid says");
    lab.finish();
}

/// What the first event for a signal sent to PID 1 says, in explain's words.
fn observed(events: &[Value], sig: &str) -> &'static str {
    let Some(first) = generated(events, sig, 1).into_iter().find(|e| e["sender"]["inside"] == false) else {
        return "not traced";
    };
    // A handler ran in that same process (not in a process further in).
    let pid1 = &first["target"]["host_pid"];
    let handled = events.iter().any(|e| {
        e["event"] == "deliver"
            && e["signal"] == sig
            && &e["target"]["host_pid"] == pid1
            && e["outcome"] == "delivered to its handler"
    });
    match (first["res"].as_i64(), sig) {
        (Some(1), _) => "dropped",
        (Some(0), "SIGKILL") => "delivered",
        (Some(0), _) if handled => "handled",
        (Some(0), _) => "queued",
        _ => "other",
    }
}

#[test]
fn explain_predicts_what_trace_then_records() {
    let lab = Lab::new();
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    let configs: [(&str, &[&str]); 5] = [
        ("shell", &["--cmd", "pidlab probe --catch TERM,INT,USR1"]),
        ("catcher", &["--", "pidlab", "probe", "--catch", "TERM,INT,USR1"]),
        ("initd", &["--init", "--", "pidlab", "probe", "--catch", "TERM,INT,USR1"]),
        // tini waits in sigtimedwait, which hides the waited signals from
        // /proc's SigBlk; explain reads them from the process itself.
        ("tini", &["--init=/usr/bin/tini", "--", "pidlab", "probe", "--catch", "TERM,INT,USR1"]),
        // pidlab's nest levels wait in sigwait too.
        ("nested", &["--nest", "2", "--", "pidlab", "probe", "--catch", "TERM,INT,USR1"]),
    ];
    for (name, spec) in configs {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(spec);
        lab.start(&args);
        let mut predicted = Vec::new();
        for sig in ["SIGTERM", "SIGINT", "SIGUSR1", "SIGKILL"] {
            let out = lab.ok(&["explain", name, sig, "--format", "json"]);
            let row: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
            assert_eq!(row["prediction"], true);
            assert_eq!(inner_pid(&row), 1, "the first row is PID 1");
            predicted.push((sig, row["outcome"].as_str().unwrap().to_string()));
        }
        let tracer = Tracer::start(&lab, name);
        for (sig, _) in &predicted {
            lab.ok(&["kill", "-s", sig, name]);
        }
        let (events, _) = tracer.finish();
        for (sig, prediction) in &predicted {
            assert_eq!(
                observed(&events, sig),
                prediction,
                "{name} {sig}: predicted {prediction}; {events:#?}"
            );
        }
    }
    // The folklore says a shell PID 1 ignores SIGINT too; dash catches it.
    lab.finish();
}

#[test]
fn two_traces_at_once_see_only_their_own_sandbox_and_leave_no_instance() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "left", "--", "pidlab", "probe", "--catch", "USR1"]);
    lab.start(&["run", "-d", "--name", "right", "--", "pidlab", "probe", "--catch", "USR1"]);
    let (a, b) = (Tracer::start(&lab, "left"), Tracer::start(&lab, "right"));
    let tracers = [a.pid(), b.pid()];
    lab.ok(&["kill", "-s", "USR1", "left"]);
    lab.ok(&["kill", "-s", "USR1", "right"]);
    lab.ok(&["kill", "left"]);
    lab.ok(&["kill", "right"]);
    let pid_of = |name: &str| -> i64 {
        let record: Value =
            serde_json::from_slice(&std::fs::read(lab.state.path().join(name).join("sandbox.json")).unwrap())
                .unwrap();
        record["pid1"]["pid"].as_i64().unwrap()
    };
    let (left, right) = (pid_of("left"), pid_of("right"));
    for (tracer, own, other) in [(a, left, right), (b, right, left)] {
        let (events, _) = tracer.finish();
        let hosts: Vec<i64> = events.iter().map(|e| e["target"]["host_pid"].as_i64().unwrap()).collect();
        assert!(hosts.contains(&own), "{events:#?}");
        assert!(!hosts.contains(&other), "saw the other sandbox: {events:#?}");
    }
    // No instance named after either tracer remains in tracefs (looked at
    // through a private mount, as pidlab itself does).
    let script = "mount --make-rprivate / && (mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing) && ls /sys/kernel/tracing/instances";
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "sh", "-c", script]);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    for pid in tracers {
        assert!(
            !out.stdout.contains(&format!("pidlab-{pid}")),
            "instance of tracer {pid} left: {}",
            out.stdout
        );
    }
    lab.finish();
}

#[test]
fn run_trace_and_explain_narrate_a_foreground_stop() {
    let state = private_tmp();
    let mut cmd = pidlab([
        "run",
        "--trace",
        "--explain",
        "--stop-after",
        "0.5",
        "--stop-timeout",
        "1",
        "--cmd",
        "pidlab probe --on-term-save /tmp/s",
    ]);
    cmd.env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 137, "{out:?}");
    let err = &out.stderr;
    assert!(err.contains("prediction for SIGTERM") && err.contains("sh       dropped"), "{err}");
    assert!(err.contains("SIGTERM -> sh") && err.contains("dropped: PID 1 of its namespace"), "{err}");
    assert!(err.contains("verdict: At") && err.contains("in the teardown of its namespace"), "{err}");
    assert!(sandboxes_in(state.path()).is_empty(), "the traced run leaves no state");
}

#[test]
fn tracing_does_not_change_how_a_stop_ends() {
    let data = tempfile::tempdir().unwrap();
    let vol = format!("{}:/state", data.path().display());
    for (form, cmd) in [
        ("exec", r#"["pidlab", "probe", "--on-term-save", "/state/exec"]"#),
        ("shell", "pidlab probe --on-term-save /state/shell"),
    ] {
        let mut ends = Vec::new();
        for traced in [false, true] {
            let mut args =
                vec!["run", "-v", &vol, "--stop-after", "0.4", "--stop-timeout", "1", "--cmd", cmd];
            if traced {
                args.insert(1, "--trace");
            }
            let out = run(&args);
            let saved = data.path().join(form).exists();
            let _ = std::fs::remove_file(data.path().join(form));
            ends.push((out.code(), saved));
        }
        assert_eq!(ends[0], ends[1], "{form} form: untraced vs traced (exit code, saved)");
    }
}

#[test]
fn without_root_the_trace_is_labelled_prediction_and_still_right() {
    let copy = ForNobody::new(&[]);
    let lab = Lab::new();
    // A state directory of nobody's own: pidlab refuses one that another
    // user owns or may write in.
    let (uid, gid) = (nix::unistd::Uid::from_raw(65534), nix::unistd::Gid::from_raw(65534));
    nix::unistd::chown(lab.state.path(), Some(uid), Some(gid)).unwrap();
    let mut cmd = ForNobody::command(
        &copy.bin(),
        &[
            "run",
            "--trace",
            "--stop-after",
            "0.5",
            "--stop-timeout",
            "1",
            "--cmd",
            "pidlab probe --on-term-save /tmp/s",
        ],
    );
    cmd.env("PIDLAB_STATE_DIR", lab.state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 137, "{out:?}");
    let err = &out.stderr;
    assert!(err.contains("without root: no kernel record"), "says so once: {err}");
    assert!(err.contains("predicted SIGTERM to sh") && err.contains(": dropped"), "the prediction: {err}");
    assert!(err.contains("observed  PID 1 ended: killed by SIGKILL"), "the observed outcome: {err}");
    assert!(!err.contains("SIGTERM -> "), "no line pretends to be the kernel's record: {err}");
    nix::unistd::chown(lab.state.path(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    lab.finish();
}

/// `run --trace` holds the workload back until the tracer is on (PID 1
/// waits for pidlab's go-ahead): a signal the workload sends in its very
/// first instruction is in the record. Without the handshake, the
/// tracepoints are switched on only after it has come and gone.
#[test]
fn run_trace_misses_not_even_the_workloads_first_signal() {
    let state = private_tmp();
    let mut cmd = pidlab(["run", "--trace", "--cmd", r#"["/bin/kill", "-USR1", "1"]"#]);
    cmd.env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        out.stderr.contains("SIGUSR1 -> kill") && out.stderr.contains("dropped: PID 1 of its namespace"),
        "the first signal is in the trace: {out:?}"
    );
    assert!(sandboxes_in(state.path()).is_empty());
}
