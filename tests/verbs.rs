//! One command line, as docker's: several names per verb, `ps -q` and
//! `--filter`, `wait`, `logs -n`, `inspect` of an exited sandbox, one JSON
//! convention (README, "JSON output"), aligned tables, completions, a man
//! page, and a clear refusal of image names. Each test has a private state
//! directory and removes what it started (`Lab::finish`).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(20);

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not one JSON document ({e}): {text}"))
}

/// Start a detached sandbox that ends by itself with `code`, and wait
/// (bounded) until pidlab has recorded its exit.
fn exited(lab: &Lab, name: &str, code: i32) {
    lab.ok(&["run", "-d", "--name", name, "--", "sh", "-c", &format!("exit {code}")]);
    wait_until(T, "the sandbox exits", || {
        lab.ok(&["ps", "-a", "-q", "--filter", "status=exited"]).contains(name)
    });
}

#[test]
fn stop_kill_and_rm_take_several_names_and_go_on_past_a_missing_one() {
    let lab = Lab::new();
    for name in ["a", "b", "c", "d", "e"] {
        lab.start(&["run", "-d", "--name", name, "--", "pidlab", "probe"]);
    }
    let stop = lab.run(&["stop", "-t", "0", "a", "ghost", "b"]);
    assert_eq!(stop.code(), 125, "one name was missing: {stop:?}");
    assert!(stop.stderr.contains("no sandbox named \"ghost\""), "{stop:?}");
    let reported: Vec<&str> = stop.stdout.lines().map(|l| l.split(':').next().unwrap()).collect();
    assert_eq!(reported, ["a", "b"], "each stopped sandbox reported, in order: {stop:?}");
    let kill = lab.run(&["kill", "ghost", "c", "d"]);
    assert_eq!(kill.code(), 125, "{kill:?}");
    assert_eq!(kill.stdout.lines().collect::<Vec<_>>(), ["c", "d"], "the names after the missing one too");
    wait_until(T, "c and d exit", || lab.ok(&["ps", "-q"]).trim() == "e");
    // rm -f: stops at no missing name either, and kills the running one.
    let rm = lab.run(&["rm", "-f", "a", "ghost", "e"]);
    assert_eq!(rm.code(), 125, "{rm:?}");
    assert_eq!(rm.stdout.lines().collect::<Vec<_>>(), ["a", "e"], "{rm:?}");
    assert_eq!(lab.ok(&["ps", "-a", "-q"]).lines().collect::<Vec<_>>(), ["b", "c", "d"]);
    lab.finish();
}

#[test]
fn rm_all_removes_the_exited_sandboxes_and_with_force_the_running_ones() {
    let lab = Lab::new();
    exited(&lab, "done1", 0);
    exited(&lab, "done2", 3);
    lab.start(&["run", "-d", "--name", "live", "--", "pidlab", "probe"]);
    let rm = lab.run(&["rm", "--all"]);
    assert_eq!(rm.code(), 125, "the running one is refused, as by name: {rm:?}");
    assert!(rm.stderr.contains("live is running") && rm.stderr.contains("rm -f"), "{rm:?}");
    assert_eq!(lines(&rm.stdout), ["done1", "done2"], "{rm:?}");
    assert_eq!(lines(&lab.ok(&["ps", "-a", "-q"])), ["live"]);
    let pid1 = json(&lab.ok(&["inspect", "live", "--format", "json"]))["pid1"]["host_pid"].as_i64().unwrap();
    let pidfd = pidfd_open(nix::unistd::Pid::from_raw(pid1 as i32));
    assert_eq!(lines(&lab.ok(&["rm", "-f", "--all"])), ["live"]);
    assert!(exits_within(&pidfd, T), "rm -f --all killed the running sandbox");
    assert_eq!(lab.ok(&["ps", "-a", "-q"]), "", "a clean slate");
    let both = lab.run(&["rm", "--all", "live"]);
    assert_eq!(both.code(), 125, "--all with names is a usage error: {both:?}");
    assert!(both.stderr.contains("'--all' cannot be used with"), "{both:?}");
    lab.finish();
}

#[test]
fn ps_quiet_and_filters() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "web-1", "--", "pidlab", "probe"]);
    lab.start(&["run", "-d", "--name", "db", "--", "pidlab", "probe"]);
    exited(&lab, "web-2", 0);
    assert_eq!(lines(&lab.ok(&["ps", "-q"])), ["db", "web-1"], "running ones only, names alone");
    assert_eq!(lines(&lab.ok(&["ps", "-a", "-q", "--filter", "name=web"])), ["web-1", "web-2"]);
    assert_eq!(lines(&lab.ok(&["ps", "-a", "-q", "--filter", "status=running"])), ["db", "web-1"]);
    assert_eq!(lines(&lab.ok(&["ps", "-q", "--filter", "status=exited", "--filter", "name=web"])), ["web-2"]);
    let bad = lab.run(&["ps", "--filter", "colour=red"]);
    assert_eq!(bad.code(), 125, "{bad:?}");
    assert!(
        bad.stderr.contains("colour") && bad.stderr.contains("name=") && bad.stderr.contains("status="),
        "{bad:?}"
    );
    let bad = lab.run(&["ps", "--filter", "status=sleepy"]);
    assert_eq!(bad.code(), 125, "{bad:?}");
    assert!(bad.stderr.contains("sleepy") && bad.stderr.contains("running"), "{bad:?}");
    lab.finish();
}

#[test]
fn wait_prints_the_exit_code_and_exits_with_it() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "slow", "--", "pidlab", "probe", "--catch", "USR1"]);
    let waiter = Running::start(&mut lab.cmd(&["wait", "slow"]));
    // Still waiting while the sandbox runs (SIGTERM is dropped by a PID 1
    // without a handler); SIGKILL ends it, with 128+9.
    lab.ok(&["kill", "-s", "TERM", "slow"]);
    assert_eq!(lines(&lab.ok(&["ps", "-q"])), ["slow"]);
    assert!(!is_zombie(waiter.pid()), "wait returned while the sandbox ran");
    lab.ok(&["kill", "slow"]);
    let out = waiter.finish(T);
    assert_eq!((out.code(), lines(&out.stdout)), (137, vec!["137"]), "{out:?}");
    exited(&lab, "three", 3);
    exited(&lab, "zero", 0);
    let out = lab.run(&["wait", "zero", "three"]);
    assert_eq!(
        (out.code(), lines(&out.stdout)),
        (3, vec!["0", "3"]),
        "docker wait: each code, exit with the last"
    );
    // A foreground run takes its record with it: wait says so, once it has ended.
    let mut fg =
        Running::start(&mut lab.cmd(&["run", "--name", "fg", "--", "pidlab", "probe", "--sleep", "1"]));
    fg.expect_line("probe: ready", T);
    let out = lab.run(&["wait", "fg"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("foreground run") && out.stderr.contains("-d"), "{out:?}");
    assert_eq!(fg.finish(T).code(), 0, "the run itself reports the code");
    let out = lab.run(&["wait", "ghost"]);
    assert_eq!(out.code(), 125, "{out:?}");
    lab.finish();
}

#[test]
fn logs_tail_and_wait_for() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "talk",
        "--",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; done; echo ready; sleep 60",
    ]);
    lab.ok(&["logs", "--wait-for", "ready", "talk"]);
    assert_eq!(lines(&lab.ok(&["logs", "-n", "2", "talk"])), ["line 5", "ready"]);
    assert_eq!(lab.ok(&["logs", "--tail", "0", "talk"]), "");
    assert_eq!(lab.ok(&["logs", "-n", "100", "talk"]).lines().count(), 6);
    // JSON: a stream, one object a line, the same `name` as everywhere.
    let objects: Vec<Value> =
        lab.ok(&["logs", "--format", "json", "-n", "2", "talk"]).lines().map(json).collect();
    let fields: Vec<_> = objects.iter().map(|o| (&o["name"], &o["stream"], &o["line"])).collect();
    assert_eq!(
        fields,
        [
            (&"talk".into(), &"stdout".into(), &"line 5".into()),
            (&"talk".into(), &"stdout".into(), &"ready".into())
        ]
    );
    lab.ok(&["run", "-d", "--name", "cut", "--", "printf", "a\\nb"]);
    let waited = lab.run(&["wait", "cut"]);
    assert_eq!(waited.code(), 0, "{waited:?}");
    let objects: Vec<Value> = lab.ok(&["logs", "--format", "json", "cut"]).lines().map(json).collect();
    assert_eq!(
        (&objects[0]["line"], &objects[1]["line"], objects.len()),
        (&"a".into(), &"b".into(), 2),
        "a last line without its newline"
    );
    // docker's --until is a timestamp: a text is refused, naming --wait-for.
    let old = lab.run(&["logs", "--until", "ready", "talk"]);
    assert_eq!(old.code(), 125, "{old:?}");
    assert!(old.stderr.contains("not a time") && old.stderr.contains("--wait-for"), "{old:?}");
    lab.finish();
}

/// `date -u -d TIME +%s.%N`: coreutils reads the time `logs -t` printed,
/// as seconds since the epoch.
fn epoch_of(time: &str) -> f64 {
    let out = std::process::Command::new("date").args(["-u", "-d", time, "+%s.%N"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("date cannot read {time:?}"))
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

/// As `docker logs`: the workload's stderr is kept apart (and printed on
/// stderr), `-t` gives each line the time it was written, and
/// `--since`/`--until` keep the lines of a time window.
#[test]
fn logs_keep_stderr_apart_with_times_and_windows() {
    let lab = Lab::new();
    let started = now();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "chat",
        "--",
        "sh",
        "-c",
        "echo early; echo oops >&2; sleep 1; echo late",
    ]);
    assert_eq!(lab.run(&["wait", "chat"]).code(), 0);
    let ended = now();
    let plain = lab.run(&["logs", "chat"]);
    assert_eq!((plain.stdout.as_str(), plain.stderr.as_str()), ("early\nlate", "oops\n"), "{plain:?}");
    let stamped = lab.run(&["logs", "-t", "chat"]);
    let mut times = Vec::new();
    for line in stamped.stdout.lines().chain(stamped.stderr.lines()) {
        let (time, text) = line.split_once(' ').unwrap();
        let at = epoch_of(time);
        assert!(
            started - 0.01 <= at && at <= ended + 0.01,
            "{line}: not within the run ({started}..{ended})"
        );
        times.push((text.to_string(), time.to_string(), at));
    }
    let time_of = |want: &str| times.iter().find(|(text, ..)| text == want).unwrap().clone();
    let (late, early) = (time_of("late"), time_of("early"));
    assert!(
        late.2 - early.2 >= 0.9 && late.2 - early.2 < 5.0,
        "the workload slept 1 s between them: {times:?}"
    );
    // The window: --since includes its time, --until excludes it.
    assert_eq!(lab.ok(&["logs", "--since", &late.1, "chat"]), "late");
    let before = lab.run(&["logs", "--until", &late.1, "chat"]);
    assert_eq!((before.stdout.as_str(), before.stderr.as_str()), ("early", "oops\n"), "{before:?}");
    assert_eq!(lab.ok(&["logs", "--since", "1h", "chat"]), "early\nlate");
    assert_eq!(lab.ok(&["logs", "--until", "1h", "chat"]), "", "nothing is an hour old");
    let unix = format!("{:.3}", late.2 - 0.0005);
    assert_eq!(lab.ok(&["logs", "--since", &unix, "-n", "5", "chat"]), "late", "a Unix time");
    let objects: Vec<Value> = lab.ok(&["logs", "--format", "json", "chat"]).lines().map(json).collect();
    let streams: Vec<_> =
        objects.iter().map(|o| (o["stream"].as_str().unwrap(), o["line"].as_str().unwrap())).collect();
    assert_eq!(streams, [("stdout", "early"), ("stderr", "oops"), ("stdout", "late")]);
    assert_eq!(objects[2]["time"], late.1.as_str(), "the JSON time is -t's");
    // A line still without its newline counts as a line, where it began;
    // in JSON it is marked partial.
    lab.ok(&["run", "-d", "--name", "torn", "--", "sh", "-c", "echo a; printf b >&2; sleep 0.2; echo END"]);
    assert_eq!(lab.run(&["wait", "torn"]).code(), 0);
    let last = lab.run(&["logs", "-n", "1", "torn"]);
    assert_eq!((last.stdout.as_str(), last.stderr.as_str()), ("END", ""), "{last:?}");
    let two = lab.run(&["logs", "-n", "2", "torn"]);
    assert_eq!((two.stdout.as_str(), two.stderr.as_str()), ("END", "b"), "{two:?}");
    assert_eq!(lab.ok(&["logs", "-n", "all", "torn"]), "a\nEND");
    let objects: Vec<Value> = lab.ok(&["logs", "--format", "json", "torn"]).lines().map(json).collect();
    let partial: Vec<_> =
        objects.iter().map(|o| (o["line"].as_str().unwrap(), o.get("partial").is_some())).collect();
    assert_eq!(partial, [("a", false), ("END", false), ("b", true)], "{objects:?}");
    let empty = lab.run(&["logs", "--wait-for", "", "torn"]);
    assert_eq!(empty.code(), 125, "{empty:?}");
    let bad = lab.run(&["logs", "--since", "2025-11-29T07:48:03", "chat"]);
    assert_eq!(bad.code(), 125, "{bad:?}");
    assert!(bad.stderr.contains("no zone"), "{bad:?}");
    lab.finish();
}

#[test]
fn inspect_shows_an_exited_sandbox_and_its_plan() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "gone",
        "--cap-drop",
        "NET_RAW",
        "--stop-signal",
        "SIGINT",
        "--stop-timeout",
        "3",
        "--cmd",
        "exit 7",
    ]);
    wait_until(T, "gone exits", || lab.ok(&["ps", "-a", "-q", "--filter", "status=exited"]).contains("gone"));
    let table = lab.ok(&["inspect", "gone"]);
    for needle in ["exited", "exit code 7", "/bin/sh", "shell", "SIGINT", "3 s", "default − NET_RAW"] {
        assert!(table.contains(needle), "inspect lacks {needle:?}:\n{table}");
    }
    let v = json(&lab.ok(&["inspect", "gone", "--format", "json"]));
    assert_eq!(
        (&v["name"], &v["state"], &v["exit_code"], &v["signal"]),
        (&"gone".into(), &"exited".into(), &7.into(), &Value::Null),
        "{v}"
    );
    assert!(v["started"].as_f64().unwrap() <= v["finished"].as_f64().unwrap(), "{v}");
    assert_eq!(v["plan"]["argv"], serde_json::json!(["/bin/sh", "-c", "exit 7"]), "{v}");
    let caps = v["plan"]["capabilities"].as_array().unwrap();
    assert_eq!(caps.len(), 13, "Docker's 14 less NET_RAW, in full: {v}");
    assert!(!caps.iter().any(|c| c == "CAP_NET_RAW"), "{v}");
    lab.finish();
}

#[test]
fn a_running_sandbox_has_its_capabilities_condensed_in_the_table() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "capped", "--", "pidlab", "probe"]);
    lab.start(&["run", "-d", "--name", "mighty", "--cap-add", "ALL", "--", "pidlab", "probe"]);
    let table = lab.ok(&["inspect", "capped"]);
    assert!(table.contains("Docker default (14)"), "{table}");
    assert!(!table.contains("CAP_CHOWN"), "the full list is for JSON only: {table}");
    assert!(lab.ok(&["inspect", "mighty"]).contains("caps     all"));
    let v = json(&lab.ok(&["inspect", "capped", "--format", "json"]));
    assert_eq!(v["processes"][0]["capabilities"].as_array().unwrap().len(), 14, "{v}");
    lab.finish();
}

/// The shared fields of the JSON convention, checked on every verb that
/// reports on a sandbox.
fn has_sandbox_fields(v: &Value, name: &str, state: &str) {
    assert_eq!(v["name"], name, "{v}");
    assert_eq!(v["state"], state, "{v}");
    assert!(v.get("exit_code").is_some() && v.get("signal").is_some(), "exit_code and signal present: {v}");
    assert!(v["pid1"]["host_pid"].as_i64().is_some_and(|p| p > 1), "{v}");
}

#[test]
fn every_verb_speaks_one_json_convention() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "j1", "--", "pidlab", "probe"]);
    lab.start(&["run", "-d", "--name", "j2", "--", "pidlab", "probe"]);
    exited(&lab, "j3", 4);

    let ps = json(&lab.ok(&["ps", "-a", "--format", "json"]));
    let rows = ps.as_array().expect("ps: an array");
    has_sandbox_fields(&rows[0], "j1", "running");
    assert_eq!((&rows[0]["exit_code"], &rows[0]["signal"]), (&Value::Null, &Value::Null));
    has_sandbox_fields(&rows[2], "j3", "exited");
    assert_eq!(rows[2]["exit_code"], 4, "a number, not buried in a string: {ps}");
    assert_eq!(rows[2]["status"], "exited (4)", "the table's words, too");

    let inspect = json(&lab.ok(&["inspect", "j1", "--format", "json"]));
    has_sandbox_fields(&inspect, "j1", "running");
    assert!(inspect["processes"][0]["host_pid"] == inspect["pid1"]["host_pid"], "{inspect}");

    let explain = lab.ok(&["explain", "j1", "TERM", "--format", "json"]);
    for line in explain.lines() {
        let row = json(line);
        assert_eq!((&row["name"], &row["signal"]), (&"j1".into(), &"SIGTERM".into()), "{row}");
        assert!(row["host_pid"].as_i64().is_some(), "{row}");
    }

    let kill = json(&lab.ok(&["kill", "--format", "json", "-s", "USR2", "j2"]));
    assert_eq!(
        kill,
        serde_json::json!([{ "name": "j2", "ok": true, "sent": "SIGUSR2" }]),
        "`signal` is how PID 1 ended; `sent` what pidlab sent"
    );
    let stop = json(&lab.ok(&["stop", "-t", "0", "--format", "json", "j1"]));
    has_sandbox_fields(&stop[0], "j1", "exited");
    assert_eq!((&stop[0]["exit_code"], &stop[0]["signal"]), (&137.into(), &"SIGKILL".into()), "{stop}");
    assert_eq!(stop[0]["ok"], true, "{stop}");
    let waited = lab.run(&["wait", "--format", "json", "j3"]);
    assert_eq!(waited.code(), 4, "wait exits with the code: {waited:?}");
    let wait = json(&waited.stdout);
    has_sandbox_fields(&wait[0], "j3", "exited");
    assert_eq!(wait[0]["exit_code"], 4);

    let failed = lab.run(&["rm", "--format", "json", "j1", "ghost"]);
    assert_eq!(failed.code(), 125, "{failed:?}");
    let rm = json(&failed.stdout);
    assert_eq!(rm[0], serde_json::json!({ "name": "j1", "ok": true }));
    assert_eq!((&rm[1]["name"], &rm[1]["ok"]), (&"ghost".into(), &false.into()), "{rm}");
    assert!(rm[1]["error"].as_str().unwrap().contains("no sandbox named"), "{rm}");
    lab.finish();
}

/// The `ps` table, golden: columns aligned to the widest cell, a long name
/// included, and the workload's command, not pidlab's own.
#[test]
fn ps_table_is_aligned_and_shows_the_workload() {
    let lab = Lab::new();
    let long = "a-rather-long-sandbox-name-for-the-table";
    lab.start(&["run", "-d", "--name", long, "--nest", "3", "--", "pidlab", "probe"]);
    lab.start(&["run", "-d", "--name", "s", "--", "pidlab", "probe", "--catch", "USR1"]);
    let table = lab.ok(&["ps"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    let header = lines[0];
    // Every column starts at the same offset in every line.
    for column in ["STATE", "HOST PID", "NEST", "AGE", "COMMAND"] {
        let at = header.find(column).unwrap_or_else(|| panic!("no {column} in {header}"));
        for line in &lines[1..] {
            assert!(at == 0 || line.as_bytes()[at - 1] == b' ', "{column} misaligned:\n{table}");
        }
    }
    let nest_at = header.find("NEST").unwrap();
    let cells = |line: &str| line.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    assert!(lines[1].starts_with(long) && lines[2].starts_with("s "), "{table}");
    assert_eq!(lines[1][nest_at..].split_whitespace().next(), Some("3"), "NEST under NEST:\n{table}");
    assert_eq!(lines[2][nest_at..].split_whitespace().next(), Some("1"), "NEST under NEST:\n{table}");
    let command_at = header.find("COMMAND").unwrap();
    assert_eq!(&lines[1][command_at..], "pidlab probe", "the innermost PID 1:\n{table}");
    assert_eq!(&lines[2][command_at..], "pidlab probe --catch USR1", "{table}");
    assert_eq!(cells(lines[2])[1], "running", "{table}");
    lab.finish();
}

#[test]
fn completions_load_in_bash_and_name_the_verbs() {
    require("/bin/bash", "apt-get install bash");
    let script = format!("source <({} completions bash) && complete -p pidlab", bin());
    let out = std::process::Command::new("/bin/bash").args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("pidlab"), "{out:?}");
    for shell in ["zsh", "fish"] {
        let out = run(["completions", shell]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(out.stdout.contains("inspect") && out.stdout.contains("wait"), "{shell}: {out:?}");
    }
    let out = run(["completions", "tcsh"]);
    assert_eq!(out.code(), 125, "{out:?}");
}

#[test]
fn the_man_page_renders() {
    require("/usr/bin/man", "apt-get install man-db");
    let page = private_tmp();
    let path = page.path().join("pidlab.1");
    let out = run(["man"]);
    assert_eq!(out.code(), 0, "{out:?}");
    std::fs::write(&path, &out.stdout).unwrap();
    let rendered = std::process::Command::new("man")
        .args(["-l", path.to_str().unwrap()])
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "80")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(rendered.status.success(), "{rendered:?}");
    assert!(text.contains("NAME") && text.contains("pidlab") && text.contains("SUBCOMMANDS"), "{text}");
}

#[test]
fn help_has_examples_and_every_positional_is_explained() {
    let verbs = ["run", "ps", "inspect", "exec", "stop", "kill", "logs", "rm", "wait", "restart", "explain"];
    for verb in verbs {
        let out = run([verb, "--help"]);
        assert_eq!(out.code(), 0, "{out:?}");
        assert!(out.stdout.contains("Examples:\n  pidlab "), "{verb} --help has examples:\n{}", out.stdout);
        // -h: one line per argument, its help beside it.
        let out = run([verb, "-h"]);
        let arguments = out.stdout.split("Arguments:").nth(1).map(|a| a.split("Options:").next().unwrap());
        for line in arguments
            .unwrap_or("")
            .lines()
            .filter(|l| l.trim_start().starts_with('<') || l.trim_start().starts_with('['))
        {
            assert!(line.trim().contains("  "), "{verb}: a positional without help text: {line:?}");
        }
    }
}

/// Colour on a terminal (a pseudo-terminal from script(1)), none in a pipe,
/// none with NO_COLOR set.
#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    require("/usr/bin/script", "apt-get install bsdutils");
    let on_a_terminal = |no_color: &str| {
        let command = format!("{} lesson show 4", bin());
        let out = std::process::Command::new("/usr/bin/script")
            .args(["-qec", &command, "/dev/null"])
            .env("NO_COLOR", no_color)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).contains('\x1b')
    };
    assert!(
        on_a_terminal(""),
        "lesson show colours its headings on a terminal (an empty NO_COLOR counts as unset)"
    );
    assert!(!on_a_terminal("1"), "NO_COLOR wins");
    let out = run(["lesson", "show", "4"]);
    assert!(out.code() == 0 && !out.stdout.contains('\x1b'), "no colour in a pipe: {out:?}");
    let mut cmd = pidlab(["run", "--nope"]);
    cmd.env("NO_COLOR", "1").env("CLICOLOR_FORCE", "1");
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 125);
    assert!(!out.stderr.contains('\x1b'), "NO_COLOR wins over CLICOLOR_FORCE in clap's errors: {out:?}");
}

#[test]
fn an_image_name_is_refused_with_what_to_do_instead() {
    for image in ["ubuntu:22.04", "redis:7-alpine", "docker.io/library/debian:12"] {
        let lab = Lab::new();
        let out = lab.run(&["run", image, "bash"]);
        assert_eq!(out.code(), 125, "{out:?}");
        for needle in ["image", "--rootfs", "rootfs-scripts/"] {
            assert!(out.stderr.contains(needle), "{image}: stderr lacks {needle:?}: {out:?}");
        }
        assert!(sandboxes_in(lab.state.path()).is_empty());
    }
    // A command that merely has a colon is not an image name.
    let out = run(["run", "--", "sh", "-c", "echo a:b"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "a:b"), "{out:?}");
}

#[test]
fn restart_runs_the_same_command_line_again_under_the_same_name() {
    let lab = Lab::new();
    let pid1 = |name: &str| json(&lab.ok(&["inspect", name, "--format", "json"]))["pid1"]["host_pid"].clone();
    lab.start(&["run", "-d", "--name", "again", "--", "pidlab", "probe", "--catch", "USR1"]);
    let before = pid1("again");
    assert_eq!(lines(&lab.ok(&["restart", "-t", "0", "again"])), ["again"]);
    lab.ok(&["logs", "--wait-for", "probe: ready", "again"]);
    let after = json(&lab.ok(&["inspect", "again", "--format", "json"]));
    assert_eq!(after["state"], "running", "{after}");
    assert_ne!(after["pid1"]["host_pid"], before, "a new PID 1");
    assert_eq!(after["plan"]["argv"], serde_json::json!(["pidlab", "probe", "--catch", "USR1"]), "{after}");
    // An exited sandbox, whose name was generated, starts again as itself.
    let name = lab.ok(&["run", "-d", "--", "sh", "-c", "echo ran; exit 3"]).trim().to_string();
    assert_eq!(lab.run(&["wait", &name]).code(), 3);
    lab.ok(&["restart", &name]);
    assert_eq!(lab.run(&["wait", &name]).code(), 3, "it ran again");
    assert_eq!(lines(&lab.ok(&["logs", &name])), ["ran"], "a fresh log");
    assert_eq!(lab.ok(&["ps", "-a", "-q"]).lines().count(), 2, "no third sandbox");
    lab.finish();
}

/// `inspect`'s process lines: each column starts at the same offset, however
/// long the PIDs and names (pidlab:nest-1 beside pidlab).
#[test]
fn inspect_aligns_its_process_lines() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "deep", "--nest", "2", "--", "pidlab", "probe"]);
    let out = lab.ok(&["inspect", "deep"]);
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("  ") && !l.starts_with("   ")).collect();
    let rows: Vec<&str> =
        rows.into_iter().filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())).collect();
    assert_eq!(rows.len(), 2, "{out}");
    let state_at: Vec<usize> = rows.iter().map(|r| r.find(" S ").expect("state S")).collect();
    assert_eq!(state_at[0], state_at[1], "the state column:\n{out}");
    // The name column is as wide as "pidlab:nest-1".
    assert!(rows[0].contains(" S pidlab:nest-1 "), "{out}");
    assert!(rows[1].ends_with(" S pidlab        pidlab probe"), "the command column:\n{out}");
    lab.finish();
}

/// `inspect` names the root a sandbox runs in: `--rootfs DIR` as typed
/// (relative to where it was typed), or the default root.
#[test]
fn inspect_names_the_root() {
    require("/bin/busybox", "apt-get install busybox-static");
    let lab = Lab::new();
    let root = lab.data.path().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    let mut cmd = lab.cmd(&["run", "-d", "--name", "bb", "--rootfs", "root", "--", "/bin/busybox", "true"]);
    cmd.current_dir(lab.data.path());
    assert_eq!(run_within(cmd, T).code(), 0);
    lab.ok(&["run", "-d", "--name", "plain", "--", "true"]);
    assert_eq!(lab.run(&["wait", "bb", "plain"]).code(), 0);
    let bb = json(&lab.ok(&["inspect", "bb", "--format", "json"]));
    assert_eq!(bb["plan"]["rootfs"], root.to_str().unwrap(), "{bb}");
    assert!(lab.ok(&["inspect", "bb"]).contains(&format!("root     {} (chroot)", root.display())));
    let plain = json(&lab.ok(&["inspect", "plain", "--format", "json"]));
    assert_eq!(plain["plan"]["rootfs"], Value::Null, "{plain}");
    assert!(lab.ok(&["inspect", "plain"]).contains("root     default: the host's"));
    lab.finish();
}

/// `inspect --tree`: the processes as the tree they form, each with its
/// PIDs and what it does with the stop signal, as /proc says.
#[test]
fn inspect_tree_shows_each_process_and_its_stop_signal() {
    let lab = Lab::new();
    let script = "pidlab probe --catch TERM & pidlab probe --ignore TERM & wait";
    lab.ok(&["run", "-d", "--name", "family", "--", "sh", "-c", script]);
    // Both probes have installed their handlers once each says so.
    wait_until(T, "both probes ready", || lab.ok(&["logs", "family"]).matches("probe: ready").count() == 2);
    let doc = json(&lab.ok(&["inspect", "--tree", "--format", "json", "family"]));
    assert_eq!(doc["name"], "family");
    let tree = &doc["tree"];
    assert_eq!(
        (&tree["comm"], &tree["disposition"], &tree["outcome"]),
        (&"sh".into(), &"default".into(), &"dropped".into()),
        "{tree}"
    );
    let pid1 = tree["host_pid"].as_i64().unwrap();
    assert_eq!(tree["nspid"], serde_json::json!([pid1, 1]));
    let mut kids: Vec<(String, String, i64)> = tree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let nspid = c["nspid"].as_array().unwrap();
            assert_eq!(nspid[0], c["host_pid"], "host PID first: {c}");
            (
                c["disposition"].as_str().unwrap().into(),
                c["outcome"].as_str().unwrap().into(),
                nspid[1].as_i64().unwrap(),
            )
        })
        .collect();
    kids.sort();
    assert_eq!(kids.len(), 2, "{tree}");
    assert_eq!((kids[0].0.as_str(), kids[0].1.as_str()), ("handler", "handled"), "{kids:?}");
    assert_eq!((kids[1].0.as_str(), kids[1].1.as_str()), ("ignored", "ignored"), "{kids:?}");
    assert!(kids.iter().all(|k| k.2 > 1), "children are not PID 1: {kids:?}");
    let text = lab.ok(&["inspect", "--tree", "family"]);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[1].contains(&format!("{pid1}/1 sh")) && lines[1].contains("default  -> dropped"), "{text}");
    assert!(lines[2].contains("├─ ") && lines[3].contains("└─ "), "{text}");
    let exited = lab.run(&["inspect", "--tree", "ghost"]);
    assert_eq!(exited.code(), 125, "{exited:?}");
    lab.finish();
}

/// What /proc says, not what a rule of thumb would: a zombie takes no
/// signal (it has exited), and an init waiting in sigtimedwait waits for
/// neither SIGKILL nor SIGSTOP, which the kernel takes out of any such set.
#[test]
fn inspect_tells_zombies_and_sigwait_as_the_kernel_has_them() {
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    let lab = Lab::new();
    lab.ok(&["run", "-d", "--name", "zomb", "--", "sh", "-c", "sleep 0.1 & exec sleep 100"]);
    let mut child = Value::Null;
    wait_until(T, "the sleep 0.1 to become a zombie", || {
        let doc = json(&lab.ok(&["inspect", "--tree", "--format", "json", "zomb"]));
        child = doc["tree"]["children"][0].clone();
        child["disposition"] == "zombie"
    });
    assert_eq!(child["outcome"], "exited", "{child}");
    assert_eq!(status_field(child["host_pid"].as_i64().unwrap() as i32, "State").chars().next(), Some('Z'));
    lab.start(&["run", "-d", "--name", "tt", "--init=tini", "--", "pidlab", "probe"]);
    let doc = json(&lab.ok(&["inspect", "--tree", "--format", "json", "tt"]));
    assert_eq!(
        (&doc["tree"]["comm"], &doc["tree"]["disposition"]),
        (&"tini".into(), &"sigwait".into()),
        "{doc}"
    );
    let inspected = json(&lab.ok(&["inspect", "--format", "json", "tt"]));
    let blocked = inspected["processes"][0]["blocked"].as_array().unwrap();
    assert!(blocked.contains(&"SIGTERM".into()), "{inspected}");
    assert!(!blocked.contains(&"SIGKILL".into()) && !blocked.contains(&"SIGSTOP".into()), "{blocked:?}");
    lab.finish();
}
