//! `pidlab run` flags that `docker run` has mean what they mean there.
//! Each case: the command line, and what the workload sees (its
//! environment, working directory, user), or the refusal. The reference is
//! Docker's documented behaviour (`docker run --help`, the Dockerfile
//! reference) and its engine, cited where a rule is subtle.

mod common;

use std::time::Duration;

use common::*;

const T: Duration = Duration::from_secs(20);

/// Run `pidlab run ARGS...` with `extra_env` set for pidlab itself.
fn run_with(args: &[&str], extra_env: &[(&str, &str)]) -> Outcome {
    let mut cmd = pidlab(args);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.env_remove("PIDLAB_TEST_UNSET");
    run_within(cmd, T)
}

fn lines_starting<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// Docker merges the environment by key, later wins, one entry per key:
/// the image's ENV, then `--env-file`, then `-e` (docker CLI
/// `opts.ReadKVEnvStrings`, daemon `ReplaceOrAppendEnvValues`). `-e KEY`
/// and an env-file line `KEY` take the caller's value, or leave KEY out
/// when the caller has none.
#[test]
fn environment_is_merged_by_key_as_docker_does() {
    let tmp = private_tmp();
    let file = tmp.path().join("env.list");
    std::fs::write(&file, "# a comment\n\nA=from-file\nFROM_HOST\n  SPACED=x y \nPIDLAB_TEST_UNSET\n")
        .unwrap();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "ENV HOME=/image PATH=/image/bin:/usr/bin:/bin A=from-image\nCMD [\"env\"]\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let out = run_with(
        &[
            "run",
            "-f",
            dockerfile.to_str().unwrap(),
            "--env-file",
            f,
            "-e",
            "A=from-flag",
            "-e",
            "HOME=/tmp",
            "-e",
            "FROM_HOST2",
        ],
        &[("FROM_HOST", "host-value"), ("FROM_HOST2", "host-2")],
    );
    assert_eq!(out.code(), 0, "{out:?}");
    let env = &out.stdout;
    for (key, want) in [
        ("A=", "A=from-flag"),
        ("HOME=", "HOME=/tmp"),
        ("PATH=", "PATH=/image/bin:/usr/bin:/bin"),
        ("FROM_HOST=", "FROM_HOST=host-value"),
        ("FROM_HOST2=", "FROM_HOST2=host-2"),
        ("SPACED=", "SPACED=x y "),
    ] {
        assert_eq!(lines_starting(env, key), [want], "{key} in:\n{env}");
    }
    assert!(lines_starting(env, "PIDLAB_TEST_UNSET").is_empty(), "an unset KEY was passed: {env}");
}

#[test]
fn bad_environment_input_is_refused_with_125() {
    let tmp = private_tmp();
    let bad = tmp.path().join("bad.list");
    std::fs::write(&bad, "GOOD=1\nBAD KEY=2\n").unwrap();
    for (args, needle) in [
        (vec!["-e", "=x"], "no variable name"),
        (vec!["--env-file", bad.to_str().unwrap()], "line 2"),
        (vec!["--env-file", "/nonexistent/env.list"], "/nonexistent/env.list"),
    ] {
        let out = run_with(&[&["run"], &args[..], &["--", "true"]].concat(), &[]);
        assert_eq!(out.code(), 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains(needle), "{args:?}: {out:?}");
    }
}

/// Docker creates a missing WORKDIR or `-w` directory (on the container's
/// writable layer). pidlab creates it where it may write: its own tmpfs
/// (/tmp, /data, a new top-level directory of an assembled root); anywhere
/// else it refuses, naming the directory, with 125 — never "not found".
#[test]
fn workdir_is_created_as_docker_does_or_refused_with_its_own_message() {
    let out = run(["run", "-w", "/data/new/deeper", "--", "pwd"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "/data/new/deeper"), "{out:?}");
    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "WORKDIR /tmp/app\nWORKDIR sub\nCMD [\"pwd\"]\n").unwrap();
    let out = run(["run", "-f", dockerfile.to_str().unwrap()]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "/tmp/app/sub"), "{out:?}");

    let out = run(["run", "-w", "/usr/pidlab-no-such-dir", "--", "pwd"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(
        out.stderr.contains("/usr/pidlab-no-such-dir") && out.stderr.contains("working directory"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("not found"), "{out:?}");
    assert!(!std::path::Path::new("/usr/pidlab-no-such-dir").exists());

    let out = run(["run", "-w", "relative", "--", "pwd"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("absolute path"), "{out:?}");
}

/// `-u USER[:GROUP]`, names resolved in the root's /etc/passwd and
/// /etc/group (runc's user lookup): uid, gid, supplementary groups and
/// HOME as Docker sets them, and no effective capability left, as for any
/// non-root process (CapBnd keeps Docker's set).
#[test]
fn user_is_resolved_in_the_root_and_applied_as_docker_does() {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    assert!(passwd.contains("nobody:x:65534:65534:"), "this test needs a nobody user (65534)");
    let show = "id; echo HOME=$HOME; grep -E '^Cap(Eff|Bnd):' /proc/self/status";
    let by_name = run(["run", "-u", "nobody", "--", "sh", "-c", show]);
    let by_number = run(["run", "-u", "65534", "--", "sh", "-c", show]);
    assert_eq!(by_name.code(), 0, "{by_name:?}");
    assert_eq!(by_name.stdout, by_number.stdout);
    let out = &by_name.stdout;
    assert!(out.starts_with("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n"), "{out}");
    assert!(out.contains("HOME=/nonexistent\n"), "{out}");
    assert!(out.contains("CapEff:\t0000000000000000") && out.contains("CapBnd:\t00000000a80425fb"), "{out}");

    let numeric = run(["run", "-u", "1234:5678", "--", "id"]);
    assert_eq!(numeric.stdout.trim(), "uid=1234 gid=5678 groups=5678", "{numeric:?}");

    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "USER nobody\nCMD [\"id\", \"-u\"]\n").unwrap();
    let file = run(["run", "-f", dockerfile.to_str().unwrap()]);
    assert_eq!((file.code(), file.stdout.trim()), (0, "65534"), "{file:?}");
    assert!(!file.stderr.contains("USER"), "USER reported as not applied: {file:?}");

    let missing = run(["run", "-u", "no-such-user", "--", "id"]);
    assert_eq!(missing.code(), 125, "{missing:?}");
    assert!(missing.stderr.contains("no-such-user") && missing.stderr.contains("passwd"), "{missing:?}");
}

/// `docker exec` runs as the container's user unless told otherwise.
#[test]
fn exec_runs_as_the_sandboxs_user() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "asnobody", "-u", "nobody", "--", "pidlab", "probe"]);
    let id = lab.ok(&["exec", "asnobody", "id", "-u"]);
    assert_eq!(id.trim(), "65534");
    lab.finish();
}

/// `docker run --entrypoint PROG`: one executable, not Dockerfile syntax;
/// its arguments come after the image (here after `--`, or `--cmd`), and
/// it clears the image's CMD. `--entrypoint ''` clears ENTRYPOINT too
/// (docker CLI: an empty entrypoint becomes `[""]`, which the daemon reads
/// as "none").
#[test]
fn entrypoint_is_one_program_as_on_dockers_command_line() {
    let out = run(["run", "--entrypoint", "/bin/bash", "--", "-c", "echo hi"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "hi"), "{out:?}");
    let out = run(["run", "--entrypoint", "/usr/bin/env", "--", "FOO=1", "printenv", "FOO"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "1"), "{out:?}");
    let out = run(["run", "--dry-run", "--entrypoint", "/bin/echo", "--cmd", "c q"]);
    assert!(out.stdout.contains(r#"argv: ["/bin/echo","/bin/sh","-c","c q"]"#), "{out:?}");

    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "ENTRYPOINT [\"/bin/echo\", \"image\"]\nCMD [\"cmd\"]\n").unwrap();
    let f = dockerfile.to_str().unwrap();
    let out = run(["run", "-f", f, "--entrypoint", "/bin/echo"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, ""), "the image's CMD was kept: {out:?}");
    let out = run(["run", "-f", f, "--entrypoint", "", "--", "echo", "cleared"]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "cleared"), "{out:?}");
    let out = run(["run", "-f", f, "--entrypoint", ""]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("no command to run"), "{out:?}");

    let out = run(["run", "--entrypoint", r#"["/bin/echo", "x"]"#, "--", "y"]);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("one program") && out.stderr.contains("ENTRYPOINT"), "{out:?}");
}

/// `docker exec -e -w -u -d`: the environment merged over the sandbox's,
/// another working directory, another user (HOME from the root's
/// passwd), and a command left running in the background.
#[test]
fn exec_takes_docker_execs_flags() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "ex", "-e", "A=run", "--", "pidlab", "probe"]);
    let out =
        lab.ok(&["exec", "-e", "A=exec", "-e", "B=2", "ex", "sh", "-c", "echo $A $B; env | grep -c '^A='"]);
    assert_eq!(out.trim_end(), "exec 2\n1");
    assert_eq!(lab.ok(&["exec", "-w", "/tmp", "ex", "pwd"]).trim_end(), "/tmp");
    let bad = lab.run(&["exec", "-w", "/pidlab-no-such-dir", "ex", "pwd"]);
    assert_eq!(bad.code(), 125, "{bad:?}");
    assert!(bad.stderr.contains("/pidlab-no-such-dir"), "{bad:?}");
    assert_eq!(
        lab.ok(&["exec", "-u", "nobody", "ex", "sh", "-c", "id -u; echo $HOME"]).trim_end(),
        "65534\n/nonexistent"
    );
    assert_eq!(lab.ok(&["exec", "ex", "sh", "-c", "id -u; echo $HOME"]).trim_end(), "0\n/root");
    // -d returns while the command still waits for /tmp/go, which only
    // this test creates, afterwards.
    let waiter = "while [ ! -e /tmp/go ]; do sleep 0.01; done; echo done > /tmp/d";
    assert_eq!(lab.ok(&["exec", "-d", "ex", "sh", "-c", waiter]), "");
    assert_eq!(
        lab.ok(&["exec", "ex", "sh", "-c", "cat /tmp/d 2>/dev/null || echo waiting"]).trim_end(),
        "waiting"
    );
    lab.ok(&["exec", "ex", "touch", "/tmp/go"]);
    wait_until(T, "the detached command to finish", || {
        lab.run(&["exec", "ex", "cat", "/tmp/d"]).stdout.trim_end() == "done"
    });
    lab.finish();
}

/// Dockerfiles as Docker reads them: `$VAR` and `${VAR}` in ENV, WORKDIR,
/// USER and STOPSIGNAL (values from earlier ENV lines; within one ENV line,
/// the values from before it), a later stage `FROM` an earlier one inherits
/// its config, and a UTF-8 byte-order mark, a heredoc and a blank line in a
/// continuation are accepted (Dockerfile reference, "Environment
/// replacement", "Here-Documents"; BuildKit's parser).
#[test]
fn dockerfiles_are_read_as_docker_reads_them() {
    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    let text = "\u{feff}# syntax=docker/dockerfile:1\n\
                FROM debian AS base\n\
                ENV APP=/srv/app SIG=USR1\n\
                ENV DIR=$APP/data OLD=${APP} APP=/other SAME=$APP\n\
                WORKDIR ${DIR}\n\
                STOPSIGNAL SIG$SIG\n\
                RUN <<EOF\n\
                echo this is a heredoc; CMD [\"not\", \"an\", \"instruction\"]\n\
                EOF\n\
                CMD [\"sh\", \"-c\", \\\n\
                \n\
                     \"pwd; echo $DIR $OLD $SAME $ESC\"]\n\
                FROM busybox AS unrelated\n\
                ENV GONE=1\n\
                FROM base\n\
                ENV ESC=\\$APP\n";
    std::fs::write(&dockerfile, text).unwrap();
    let f = dockerfile.to_str().unwrap();
    let dry = run(["run", "--dry-run", "-f", f]);
    assert_eq!(dry.code(), 0, "{dry:?}");
    assert!(dry.stdout.contains("stop: SIGUSR1"), "{dry:?}");
    let out = run(["run", "-f", f]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert_eq!(out.stdout.trim_end(), "/srv/app/data\n/srv/app/data /srv/app /srv/app $APP", "{out:?}");
}

/// A shell-form ENTRYPOINT ignores CMD: the CMD's words follow the `-c`
/// string and become `$0`, `$1`, ... of it. `--dry-run` says so.
#[test]
fn dry_run_explains_that_a_shell_form_entrypoint_ignores_cmd() {
    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "ENTRYPOINT exec redis-server\nCMD [\"--port\", \"7000\"]\n").unwrap();
    let out = run(["run", "--dry-run", "-f", dockerfile.to_str().unwrap()]);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("$0") && out.stdout.contains("--port"), "{out:?}");
    let plain = run(["run", "--dry-run", "--", "true"]);
    assert!(!plain.stdout.contains("$0"), "{plain:?}");
}

/// `docker run --pid container:NAME` (the sidecar and debug pattern): the
/// new sandbox's process joins NAME's PID namespace, sees its processes,
/// and is not PID 1 there; when NAME's PID 1 exits, the kernel kills it
/// too, and pidlab says why. `--pid host`: no PID namespace at all.
#[test]
fn pid_container_joins_another_sandboxs_namespace_and_pid_host_joins_none() {
    let lab = Lab::new();
    lab.start(&["run", "-d", "--name", "web", "--", "pidlab", "probe"]);
    let started = std::time::Instant::now();
    let out = lab.run(&["run", "--pid", "container:web", "--", "ps", "-e", "-o", "pid=,comm="]);
    assert_eq!(out.code(), 0, "{out:?}");
    // A run that ends by itself does not wait to see whether web's PID 1
    // took it down (that wait, up to 1 s, is for a run SIGKILLed).
    assert!(started.elapsed() < std::time::Duration::from_millis(900), "took {:?}", started.elapsed());
    assert!(!out.stderr.contains("killed every other process"), "{out:?}");
    let rows: Vec<Vec<&str>> = out.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows.first(), Some(&vec!["1", "pidlab"]), "web's PID 1 is not in the list: {out:?}");
    assert!(rows.iter().any(|r| r.get(1) == Some(&"ps") && r[0] != "1"), "{out:?}");

    // Its processes end when web's PID 1 does.
    let mut sidecar = Running::start(&mut lab.cmd(&[
        "run",
        "--name",
        "side",
        "--pid",
        "container:web",
        "--",
        "pidlab",
        "probe",
    ]));
    sidecar.expect_line("probe: ready", T);
    // inspect says who shares the namespace, from the namespaces' inodes.
    let doc: serde_json::Value =
        serde_json::from_str(&lab.ok(&["inspect", "web", "--format", "json"])).unwrap();
    assert_eq!(doc["pid_namespace_shared_with"], serde_json::json!(["side"]), "{doc}");
    lab.ok(&["stop", "-t", "0", "web"]);
    let out = sidecar.finish(T);
    assert_eq!(out.code(), 137, "{out:?}");
    assert!(out.stderr.contains("web"), "no word of why: {out:?}");

    let out = lab.run(&["run", "--pid", "container:no-such-sandbox", "--", "true"]);
    assert_eq!(out.code(), 125, "{out:?}");
    let host = run(["run", "--pid", "host", "--", "sh", "-c", "echo $$; cat /proc/1/comm"]);
    let words: Vec<&str> = host.stdout.split_whitespace().collect();
    assert_eq!(words.len(), 2, "{host:?}");
    assert_ne!(words[0], "1", "--pid host made a PID namespace: {host:?}");
    assert_eq!(words[1], std::fs::read_to_string("/proc/1/comm").unwrap().trim(), "{host:?}");
    lab.finish();
}

/// STOPSIGNAL and --stop-signal take every signal Docker takes: real-time
/// ones by name (SIGRTMIN+3 stops systemd) or number (32-64). And a stop
/// signal of SIGKILL is said as it is: no grace period.
#[test]
fn stop_signals_include_real_time_ones() {
    let script = "trap 'echo got 37; exit 0' 37; echo ready; while :; do sleep 0.05 & wait $!; done";
    let out = run([
        "run",
        "--stop-signal",
        "SIGRTMIN+3",
        "--stop-after",
        "0.5",
        "--stop-timeout",
        "10",
        "--",
        "bash",
        "-c",
        script,
    ]);
    assert_eq!((out.code(), out.stdout.trim()), (0, "ready\ngot 37"), "{out:?}");
    assert!(out.stderr.contains("sending SIGRTMIN+3"), "{out:?}");
    let tmp = private_tmp();
    let dockerfile = tmp.path().join("Dockerfile");
    std::fs::write(&dockerfile, "STOPSIGNAL 37\nCMD [\"true\"]\n").unwrap();
    let dry = run(["run", "--dry-run", "-f", dockerfile.to_str().unwrap()]);
    assert!(dry.stdout.contains("stop: SIGRTMIN+3, then SIGKILL"), "{dry:?}");
    let kill = run(["run", "--dry-run", "--stop-signal", "9", "--", "true"]);
    assert!(!kill.stdout.contains("SIGKILL, then SIGKILL"), "{kill:?}");
    assert!(kill.stdout.contains("stop: SIGKILL at once"), "{kill:?}");

    let lab = Lab::new();
    lab.start(&[
        "run",
        "-d",
        "--name",
        "rt",
        "--",
        "bash",
        "-c",
        &script.replace("echo ready", "echo probe: ready"),
    ]);
    lab.ok(&["stop", "-s", "RTMIN+3", "-t", "10", "rt"]);
    assert!(lab.ok(&["logs", "rt"]).contains("got 37"));
    lab.finish();
}
