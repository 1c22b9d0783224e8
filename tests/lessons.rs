//! Every lesson's claims, checked on the running kernel: each transcript
//! command is run exactly as printed and its output compared; each
//! exercise's starter fails `pidlab lesson check` and its solution passes.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;

const LESSONS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/lessons");

/// `(command, expected output lines)` for each `$ ` line of each
/// ```transcript block; ```transcript root blocks (what only root can
/// see, e.g. `pidlab trace`) unless run as an ordinary user.
fn transcript(text: &str, as_nobody: bool) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```transcript" || (line.trim() == "```transcript root" && !as_nobody);
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some(command) = line.strip_prefix("$ ") {
            steps.push((command.to_string(), Vec::new()));
        } else if let Some(step) = steps.last_mut() {
            step.1.push(line.to_string());
        }
    }
    steps
}

/// Does `actual` match `expected`? `[..]` matches any text within a line;
/// a line starting with `~ ` is a regular expression for the whole line.
fn line_matches(expected: &str, actual: &str) -> bool {
    let pattern = match expected.strip_prefix("~ ") {
        Some(regex) => regex.to_string(),
        None => expected.split("[..]").map(regex_escape).collect::<Vec<_>>().join(".*"),
    };
    regex_full_match(&pattern, actual)
}

fn regex_escape(text: &str) -> String {
    text.chars()
        .map(|c| if "\\.+*?()|[]{}^$".contains(c) { format!("\\{c}") } else { c.to_string() })
        .collect()
}

/// Full-line match with grep -E, so the tests need no regex crate.
fn regex_full_match(pattern: &str, text: &str) -> bool {
    Command::new("grep").args(["-qxE", "--", pattern]).arg("-").stdin_text(text)
}

trait StdinText {
    fn stdin_text(&mut self, text: &str) -> bool;
}

impl StdinText for Command {
    fn stdin_text(&mut self, text: &str) -> bool {
        use std::io::Write;
        let mut child = self
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("grep");
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        child.wait().unwrap().success()
    }
}

fn lesson_dir(slug: &str) -> PathBuf {
    Path::new(LESSONS).join(slug)
}

/// Run every transcript command of a lesson in bash, with the built
/// pidlab first on the PATH and a private state directory.
fn check_transcripts(slug: &str) {
    run_transcripts(slug, false);
}

/// The same, as the unprivileged `nobody` user, from a world-readable copy
/// of pidlab and of the lesson's files.
fn run_transcripts(slug: &str, as_nobody: bool) {
    let text = std::fs::read_to_string(lesson_dir(slug).join("README.md")).unwrap();
    let steps = transcript(&text, as_nobody);
    assert!(!steps.is_empty(), "{slug} has no transcript");
    let lab = Lab::new();
    let files: Vec<String> = lesson_files(slug);
    let file_refs: Vec<&str> = files.iter().map(String::as_str).collect();
    let copy = as_nobody.then(|| ForNobody::new(&file_refs));
    if as_nobody {
        // A state directory of nobody's own: pidlab refuses one that
        // another user owns or may write in.
        let (uid, gid) = (nix::unistd::Uid::from_raw(65534), nix::unistd::Gid::from_raw(65534));
        nix::unistd::chown(lab.state.path(), Some(uid), Some(gid)).unwrap();
    }
    let (bin_dir, cwd) = match &copy {
        Some(copy) => (copy.dir.path().to_path_buf(), copy.dir.path().to_path_buf()),
        None => (Path::new(bin()).parent().unwrap().to_path_buf(), PathBuf::from(env!("CARGO_MANIFEST_DIR"))),
    };
    run_steps(slug, steps, as_nobody, &bin_dir, &cwd, &lab);
    if as_nobody {
        // Back to root's, for `lab.finish` (run as root) to accept it.
        nix::unistd::chown(lab.state.path(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    }
    lab.finish();
}

/// Run each `(command, expected output)` in bash from `cwd`, with the
/// pidlab in `bin_dir` first on the PATH and the lab's state directory.
fn run_steps(
    slug: &str,
    steps: Vec<(String, Vec<String>)>,
    as_nobody: bool,
    bin_dir: &Path,
    cwd: &Path,
    lab: &Lab,
) {
    for (command, expected) in steps {
        let mut cmd = match as_nobody {
            true => ForNobody::command(Path::new("/bin/bash"), &["-c", &command]),
            false => {
                let mut cmd = Command::new("bash");
                cmd.args(["-c", &command]);
                cmd
            }
        };
        cmd.current_dir(cwd)
            .env("PATH", format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default()))
            .env("PIDLAB_STATE_DIR", lab.state.path());
        let out = run_within(cmd, Duration::from_secs(30));
        let who = if as_nobody { " (as nobody)" } else { "" };
        let actual: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            actual.len(),
            expected.len(),
            "{slug}{who}: `{command}` printed {} lines, the lesson shows {}:\n{}\n--- stderr:\n{}",
            actual.len(),
            expected.len(),
            out.stdout,
            out.stderr
        );
        for (want, got) in expected.iter().zip(&actual) {
            assert!(line_matches(want, got), "{slug}{who}: `{command}`:\n  lesson: {want}\n  kernel: {got}");
        }
    }
}

/// Every file of a lesson, relative to the repository.
fn lesson_files(slug: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![lesson_dir(slug)];
    while let Some(dir) = dirs.pop() {
        for path in entries(&dir) {
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string());
            }
        }
    }
    out
}

/// Lessons that say "Works without root." are run again as `nobody`.
#[test]
fn lessons_marked_rootless_pass_as_an_ordinary_user() {
    let mut checked = Vec::new();
    for dir in entries(Path::new(LESSONS)).into_iter().filter(|p| p.is_dir()) {
        let slug = dir.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(dir.join("README.md")).unwrap();
        if text.contains("Works without root.") {
            run_transcripts(&slug, true);
            checked.push(slug);
        }
    }
    assert!(checked.len() >= 5, "only {checked:?} are marked as working without root");
}

#[test]
fn lesson_01_transcripts() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    check_transcripts("01-first-namespace");
}

#[test]
fn lesson_04_transcripts() {
    check_transcripts("04-pid1-signal-rules");
}

#[test]
fn lesson_05_transcripts() {
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    check_transcripts("05-shell-vs-exec-form");
}

#[test]
fn lesson_00_transcripts() {
    check_transcripts("00-doctor");
}

#[test]
fn lesson_09_transcripts() {
    check_transcripts("09-entrypoint-scripts");
}

#[test]
fn lesson_09_starter_fails_and_solution_passes() {
    let dir = lesson_dir("09-entrypoint-scripts");
    let starter = check("9", &dir.join("entrypoint.sh"));
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains("PID 1 is sh") && starter.stdout.contains("dropped"), "{starter:?}");
    let solution = check("9", &dir.join("solution/entrypoint.sh"));
    assert_eq!(solution.code(), 0, "{solution:?}");
}

#[test]
fn lesson_02_transcripts() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    check_transcripts("02-unshare-vs-clone");
}

#[test]
fn lesson_03_transcripts() {
    require("/usr/bin/jq", "apt-get install jq (.ci/run does)");
    check_transcripts("03-nested-namespaces");
}

#[test]
fn lesson_06_transcripts() {
    check_transcripts("06-docker-stop");
}

#[test]
fn lesson_13_transcripts() {
    require("/usr/bin/nsenter", "apt-get install util-linux");
    require("/usr/bin/jq", "apt-get install jq (.ci/run does)");
    check_transcripts("13-entering-a-namespace");
}

#[test]
fn lesson_14_transcripts() {
    require("/usr/bin/python3", "apt-get install python3 (.ci/run does): the fault is a Python null read");
    require("/usr/bin/jq", "apt-get install jq (.ci/run does)");
    check_transcripts("14-the-rest-of-the-pid1-rule");
}

#[test]
fn lesson_15_transcripts() {
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    check_transcripts("15-inherited-signal-state");
}

#[test]
fn lesson_16_transcripts() {
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    require("/usr/bin/nsenter", "apt-get install util-linux");
    require("/usr/bin/jq", "apt-get install jq (.ci/run does)");
    check_transcripts("16-namespace-lifetime");
}

#[test]
fn lesson_17_transcripts() {
    require("/usr/bin/cc", "apt-get install gcc (.ci/run does)");
    check_transcripts("17-write-an-init");
}

/// The build track: the starter init fails (it reaps only its own child),
/// the C and the Rust reference solutions pass, and each known wrong init
/// is told what it lacks.
#[test]
fn lesson_17_starter_fails_and_solutions_pass() {
    require("/usr/bin/cc", "apt-get install gcc (.ci/run does)");
    let dir = lesson_dir("17-write-an-init");
    let starter = check("17", &dir.join("init.c"));
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(
        starter.stdout.contains("with `sh -c 'kill -TERM $$'` as its child, your init exited with 0"),
        "{starter:?}"
    );
    let solution = check("17", &dir.join("solution/init.c"));
    assert_eq!(solution.code(), 0, "{solution:?}");
    assert!(which("rustc"), "rustc is not on the PATH: the Rust solution cannot be checked (rustup.rs)");
    let rust = check("17", &dir.join("solution/init.rs"));
    assert_eq!(rust.code(), 0, "{rust:?}");
}

#[test]
fn lesson_17_wrong_inits_are_told_what_they_lack() {
    require("/usr/bin/cc", "apt-get install gcc (.ci/run does)");
    let solution = std::fs::read_to_string(lesson_dir("17-write-an-init").join("solution/init.c")).unwrap();
    // Reaps only its own child.
    let only_child = solution.replace("waitpid(-1, &status, WNOHANG)", "waitpid(child, &status, WNOHANG)");
    assert_ne!(only_child, solution);
    assert_not_yet(&check_answer("17", "init.c", &only_child), &["5 zombies are left", "waitpid(-1"]);
    // Never forwards.
    let no_forward = solution.replace("kill(child, sig);", ";");
    assert_ne!(no_forward, solution);
    assert_not_yet(&check_answer("17", "init.c", &no_forward), &["the probe never received SIGTERM"]);
    // Leaves every signal blocked in the child: it cannot die of SIGTERM.
    let blocked = solution.replace("sigprocmask(SIG_UNBLOCK, &all, NULL);", ";");
    assert_ne!(blocked, solution);
    assert_not_yet(
        &check_answer("17", "init.c", &blocked),
        &["with `sh -c 'kill -TERM $$'` as its child, your init exited with 0"],
    );
    // Does not compile.
    assert_not_yet(&check_answer("17", "init.c", "int main( {"), &["cc could not build it"]);
    // Not C or Rust: a usage error.
    let out = check_answer("17", "init.py", "print()");
    assert_eq!(out.code(), 125, "{out:?}");
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Per-namespace `kernel.pid_max` arrived in Linux 6.14: on older kernels
/// the lesson is skipped, and the test says so.
#[test]
fn lesson_18_transcripts() {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut numbers =
        release.trim().split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u32>().ok());
    let version = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    if version < (6, 14) {
        eprintln!(
            "SKIPPED lesson 18: a PID namespace's own pid_max needs Linux 6.14; this kernel is {release}"
        );
        return;
    }
    check_transcripts("18-pid-max-per-namespace");
}

#[test]
fn lesson_19_transcripts() {
    require("/usr/bin/cc", "apt-get install gcc (.ci/run does)");
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    check_transcripts("19-build-a-sandbox");
}

#[test]
fn lesson_20_transcripts() {
    require("/usr/bin/script", "apt-get install bsdutils (.ci/run does)");
    require("/usr/bin/tini", "apt-get install tini (.ci/run does)");
    require("/usr/bin/dumb-init", "apt-get install dumb-init (.ci/run does)");
    check_transcripts("20-ctrl-c-and-process-groups");
}

#[test]
fn lesson_21_transcripts() {
    check_transcripts("21-the-shim");
}

/// The second build exercise: the starter (unshare without fork) fails,
/// the solution passes, and each missing step is named — seen from
/// outside, with nothing left mounted or on disk (check_answer).
#[test]
fn lesson_19_starter_fails_solution_passes_and_missing_steps_are_named() {
    require("/usr/bin/cc", "apt-get install gcc (.ci/run does)");
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    let dir = lesson_dir("19-build-a-sandbox");
    let starter = check("19", &dir.join("sandbox.c"));
    assert_not_yet(&starter, &["in the host's PID namespace only", "fork after it"]);
    let solution = std::fs::read_to_string(dir.join("solution/sandbox.c")).unwrap();
    let passed = check_answer("19", "sandbox.c", &solution);
    assert_eq!(passed.code(), 0, "{passed:?}");
    assert!(which("rustc"), "rustc is not on the PATH: the Rust solution cannot be checked (rustup.rs)");
    let rust = std::fs::read_to_string(dir.join("solution/sandbox.rs")).unwrap();
    let passed = check_answer("19", "sandbox.rs", &rust);
    assert_eq!(passed.code(), 0, "the Rust solution: {passed:?}");
    let wrong = rust.replace("CLONE_NEWPID | CLONE_NEWNS", "CLONE_NEWNS");
    assert_ne!(wrong, rust);
    assert_not_yet(&check_answer("19", "sandbox.rs", &wrong), &["in the host's PID namespace only"]);
    for (from, to, cause) in [
        (
            "CLONE_NEWPID | CLONE_NEWNS",
            "CLONE_NEWPID",
            "shares the mount namespace your program was started in",
        ),
        (
            "if (mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL) != 0) _exit(fail(\"make / private\"));",
            "",
            "the /proc mount leaked out",
        ),
        (
            "if (mount(\"proc\", \"/proc\", \"proc\", 0, NULL) != 0) _exit(fail(\"mount /proc\"));",
            "",
            "sees no proc file system on /proc",
        ),
    ] {
        let wrong = solution.replace(from, to);
        assert_ne!(wrong, solution, "{from}");
        assert_not_yet(&check_answer("19", "sandbox.c", &wrong), &[cause]);
    }
    // /proc mounted by the parent, which unshare(CLONE_NEWPID) does not
    // move: it shows the host's processes (an attendee's answer that used
    // to pass).
    let in_the_parent = solution
        .replace("if (mount(\"proc\", \"/proc\", \"proc\", 0, NULL) != 0) _exit(fail(\"mount /proc\"));", "")
        .replace(
            "    pid_t child = fork();",
            "    char proc[4096];\n    snprintf(proc, sizeof proc, \"%s/proc\", argv[1]);\n    \
             if (mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL) != 0) return fail(\"make / private\");\n    \
             if (mount(\"proc\", proc, \"proc\", 0, NULL) != 0) return fail(\"mount /proc\");\n    \
             pid_t child = fork();",
        );
    assert!(in_the_parent.contains("snprintf(proc") && !in_the_parent.contains("\"/proc\", \"proc\""));
    assert_not_yet(&check_answer("19", "sandbox.c", &in_the_parent), &["another PID namespace's processes"]);
}

#[test]
fn lesson_10_transcripts() {
    check_transcripts("10-when-pid1-dies");
}

#[test]
fn lesson_12_transcripts() {
    check_transcripts("12-rootless");
}

#[test]
fn lesson_07_transcripts() {
    check_transcripts("07-orphans-and-zombies");
}

#[test]
fn lesson_08_transcripts() {
    check_transcripts("08-init-and-drain");
}

#[test]
fn lesson_11_transcripts() {
    check_transcripts("11-chroot-vs-pivot-root");
}

#[test]
fn lesson_07_starter_fails_and_solution_passes() {
    let dir = lesson_dir("07-orphans-and-zombies");
    let starter = check("7", &dir.join("exercise.sh"));
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains("5 zombies are left"), "{starter:?}");
    let solution = check("7", &dir.join("solution/exercise.sh"));
    assert_eq!(solution.code(), 0, "{solution:?}");
}

/// `pidlab lesson check`, with a private state directory (a pass is
/// recorded there, never in the real one).
fn check(number: &str, file: &Path) -> Outcome {
    let state = private_tmp();
    let mut cmd = pidlab(["lesson", "check", number, file.to_str().unwrap()]);
    cmd.env("PIDLAB_STATE_DIR", state.path());
    run_within(cmd, Duration::from_secs(60))
}

/// `pidlab lesson check N --stretch FILE`, with a private TMPDIR that must
/// be empty afterwards: the check removes every sandbox it started.
fn check_stretch(number: &str, file: &Path, state: &Path) -> Outcome {
    let tmp = private_tmp();
    let mut cmd = pidlab(["lesson", "check", number, "--stretch", file.to_str().unwrap()]);
    cmd.env("PIDLAB_STATE_DIR", state).env("TMPDIR", tmp.path());
    let out = run_within(cmd, Duration::from_secs(60));
    assert!(entries(tmp.path()).is_empty(), "the check left {:?} behind", entries(tmp.path()));
    out
}

/// One stretch exercise: the starter fails with `cause` in its verdict,
/// the solution passes.
fn stretch_starter_fails_and_solution_passes(number: &str, slug: &str, cause: &str) {
    let dir = lesson_dir(slug);
    let state = private_tmp();
    let starter = check_stretch(number, &dir.join("stretch.sh"), state.path());
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains(cause), "the verdict names the cause ({cause}): {starter:?}");
    let solution = check_stretch(number, &dir.join("solution/stretch.sh"), state.path());
    assert_eq!(solution.code(), 0, "{solution:?}");
    assert!(solution.stdout.starts_with("PASS"), "{solution:?}");
    let recorded: Vec<PathBuf> = entries(state.path());
    assert_eq!(recorded, [state.path().join(".lessons.json")], "only the pass is recorded there");
}

#[test]
fn lesson_03_stretch_starter_fails_and_solution_passes() {
    stretch_starter_fails_and_solution_passes(
        "3",
        "03-nested-namespaces",
        "1 level(s) below the host, not 3",
    );
}

#[test]
fn lesson_06_stretch_starter_fails_and_solution_passes() {
    stretch_starter_fails_and_solution_passes(
        "6",
        "06-docker-stop",
        "SIGTERM sent to PID 1 (sh) was dropped",
    );
}

#[test]
fn lesson_08_stretch_starter_fails_and_solution_passes() {
    stretch_starter_fails_and_solution_passes(
        "8",
        "08-init-and-drain",
        "0 of the 2 probes saved their state",
    );
}

#[test]
fn lesson_03_stretch_half_answers_are_told_what_is_missing() {
    let out = check_answer_with(
        &["3", "--stretch"],
        "stretch.sh",
        "pidlab run -d --name st03 --nest 3 -- pidlab probe\n",
    );
    assert_not_yet(&out, &["three levels deep, but it is PID 1 in its own namespace, not 2"]);
    let out = check_answer_with(
        &["6", "--stretch"],
        "stretch.sh",
        "pidlab run -d --name st06 --init --cmd 'pidlab probe --on-term-save /tmp/state; echo cleaned up'\n",
    );
    assert_not_yet(&out, &["PID 1 is pidlab:init, not the shell"]);
}

#[test]
fn a_lesson_without_a_stretch_exercise_is_a_usage_error() {
    let state = private_tmp();
    let file = state.path().join("stretch.sh");
    std::fs::write(&file, "true\n").unwrap();
    let out = check_stretch("4", &file, state.path());
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("lessons with one: 3, 6, 8"), "{out:?}");
    assert_eq!(entries(state.path()), vec![file], "a refused check records nothing");
}

/// `lesson status` reads what `lesson check` recorded, in the caller's
/// private state directory; `lesson reset` forgets it and says what it
/// removed.
#[test]
fn status_shows_passed_checks_and_reset_forgets_them() {
    let home = private_tmp();
    let state = home.path().join("state");
    let status = |format: &str| {
        let mut cmd = pidlab(["lesson", "status", "--format", format]);
        cmd.env("PIDLAB_STATE_DIR", &state);
        run_within(cmd, Duration::from_secs(10))
    };
    let before = status("table");
    assert_eq!(before.code(), 0, "{before:?}");
    assert!(before.stdout.contains("0 of 9 checks passed"), "{before:?}");
    assert!(!state.exists(), "status alone creates nothing");

    let dir = lesson_dir("03-nested-namespaces");
    assert_eq!(check_stretch("3", &dir.join("stretch.sh"), &state).code(), 1);
    assert!(status("table").stdout.contains("0 of 9 checks passed"), "a failed check is not recorded");
    assert_eq!(check_stretch("3", &dir.join("solution/stretch.sh"), &state).code(), 0);

    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&state).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o700, "the state directory is private");
    let json: serde_json::Value = serde_json::from_str(&status("json").stdout).unwrap();
    let checks = json["checks"].as_array().unwrap();
    let passed: Vec<&str> = checks
        .iter()
        .filter(|c| !c["passed_at"].is_null())
        .map(|c| c["exercise"].as_str().unwrap())
        .collect();
    assert_eq!(passed, ["3-stretch"], "{json}");
    assert_eq!(json["passed"], 1);
    assert!(status("table").stdout.lines().any(|l| l.starts_with("passed") && l.contains("3-stretch")));

    let mut cmd = pidlab(["lesson", "reset"]);
    cmd.env("PIDLAB_STATE_DIR", &state);
    let reset = run_within(cmd, Duration::from_secs(10));
    assert_eq!(reset.code(), 0, "{reset:?}");
    assert!(reset.stdout.contains("the record of 1 passed check"), "says what it removes: {reset:?}");
    assert!(status("table").stdout.contains("0 of 9 checks passed"));
    assert!(entries(&state).is_empty(), "reset leaves nothing of its own: {:?}", entries(&state));
}

/// A state directory others may write in is refused (exit 125, the fix
/// named), and nothing is written there.
#[test]
fn status_refuses_a_state_directory_others_may_write() {
    use std::os::unix::fs::PermissionsExt;
    let state = private_tmp();
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [&["lesson", "status"][..], &["lesson", "reset"]] {
        let mut cmd = pidlab(args);
        cmd.env("PIDLAB_STATE_DIR", state.path());
        let out = run_within(cmd, Duration::from_secs(10));
        assert_eq!(out.code(), 125, "{args:?}: {out:?}");
        assert!(out.stderr.contains("mode 0777") && out.stderr.contains("PIDLAB_STATE_DIR"), "{out:?}");
    }
    assert!(entries(state.path()).is_empty());
}

#[test]
fn guide_prints_the_facilitators_guide() {
    let out = run(["lesson", "guide"]);
    assert_eq!(out.code(), 0, "{out:?}");
    let guide = std::fs::read_to_string(Path::new(LESSONS).join("FACILITATOR.md")).unwrap();
    for heading in guide.lines().filter(|l| l.starts_with("## ")) {
        assert!(out.stdout.contains(heading), "guide lacks {heading}");
    }
    assert!(!out.stdout.contains("[..]"), "no matcher syntax");
}

#[test]
fn lesson_04_starter_fails_and_solution_passes() {
    let dir = lesson_dir("04-pid1-signal-rules");
    let starter = check("4", &dir.join("exercise.sh"));
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains("exited on SIGTERM"), "explains in the lesson's terms: {starter:?}");
    let solution = check("4", &dir.join("solution/exercise.sh"));
    assert_eq!(solution.code(), 0, "{solution:?}");
    assert!(solution.stdout.starts_with("PASS"), "{solution:?}");
}

#[test]
fn lesson_05_starter_fails_and_solution_passes() {
    let dir = lesson_dir("05-shell-vs-exec-form");
    let starter = check("5", &dir.join("Dockerfile"));
    assert_eq!(starter.code(), 1, "{starter:?}");
    assert!(starter.stdout.contains("PID 1 is sh") && starter.stdout.contains("dropped"), "{starter:?}");
    let solution = check("5", &dir.join("solution/Dockerfile"));
    assert_eq!(solution.code(), 0, "{solution:?}");
}

#[test]
fn every_lesson_is_listed_and_shown() {
    let list = run(["lesson", "list"]);
    assert_eq!(list.code(), 0);
    let dirs: Vec<String> = entries(Path::new(LESSONS))
        .into_iter()
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for dir in &dirs {
        let number = &dir[..2];
        assert!(
            list.stdout.lines().any(|l| l.starts_with(number)),
            "lesson {dir} missing from `lesson list`"
        );
        let shown = run(["lesson", "show", &number.parse::<u32>().unwrap().to_string()]);
        assert_eq!(shown.code(), 0, "{shown:?}");
        let readme = std::fs::read_to_string(Path::new(LESSONS).join(dir).join("README.md")).unwrap();
        assert!(shown.stdout.contains(readme.lines().nth(2).unwrap()), "show prints the lesson");
        // The matchers are for the tests, not for attendees.
        for line in shown.stdout.lines() {
            let matcher =
                line.contains("[..]") || line.contains("(a line like") || line.trim_start().starts_with("~ ");
            assert!(!matcher, "lesson {dir} shows test-matcher syntax: {line}");
        }
    }
    assert_eq!(run(["lesson", "show", "99"]).code(), 125);
}

/// `pidlab lesson check NUMBER FILE` of an answer written as `text` to a
/// private directory, with a private TMPDIR that must be empty afterwards:
/// a check leaves no directory and no sandbox behind.
fn check_answer(number: &str, file_name: &str, text: &str) -> Outcome {
    check_answer_with(&[number], file_name, text)
}

fn check_answer_with(args: &[&str], file_name: &str, text: &str) -> Outcome {
    let dir = private_tmp();
    let tmp = private_tmp();
    let state = private_tmp();
    let file = dir.path().join(file_name);
    std::fs::write(&file, text).unwrap();
    let mut cmd = pidlab(["lesson", "check"]);
    cmd.args(args).arg(&file);
    cmd.env("TMPDIR", tmp.path()).env("PIDLAB_STATE_DIR", state.path());
    let out = run_within(cmd, Duration::from_secs(60));
    assert!(entries(tmp.path()).is_empty(), "the check left {:?} behind", entries(tmp.path()));
    assert!(!out.stdout.contains(" ?"), "a verdict says only what was observed, never `?`: {out:?}");
    out
}

fn assert_not_yet(out: &Outcome, causes: &[&str]) {
    assert_eq!(out.code(), 1, "{out:?}");
    for cause in causes {
        assert!(out.stdout.contains(cause), "the verdict should name {cause:?}:\n{}", out.stdout);
    }
}

#[test]
fn lesson_05_wrong_answers_are_told_their_real_cause() {
    let single =
        check_answer("5", "Dockerfile", "CMD ['pidlab', 'probe', '--on-term-save', '/data/state']\n");
    assert_not_yet(&single, &["exited by itself with code 127", "[pidlab,: not found", "not valid JSON"]);
    let unclosed =
        check_answer("5", "Dockerfile", "CMD [\"pidlab\", \"probe\", \"--on-term-save\", \"/data/state\"\n");
    assert_not_yet(&unclosed, &["code 127", "not valid JSON", "closing ]"]);
    let outside =
        check_answer("5", "Dockerfile", "CMD [\"pidlab\", \"probe\", \"--on-term-save\", \"/tmp/state\"]\n");
    assert_not_yet(&outside, &["received SIGTERM and saved its state to /tmp/state", "save to /data/state"]);
}

#[test]
fn lesson_09_wrong_answers_are_told_their_real_cause() {
    let star = check_answer("9", "entrypoint.sh", "#!/bin/sh\necho \"entrypoint: preparing\"\nexec \"$*\"\n");
    assert_not_yet(
        &star,
        &["code 127", "exec: pidlab probe --on-term-save /data/state: not found", "\"$*\" joins"],
    );
    let crlf =
        check_answer("9", "entrypoint.sh", "#!/bin/sh\r\necho \"entrypoint: preparing\"\r\nexec \"$@\"\r\n");
    assert_not_yet(&crlf, &["\"state\\r\"", "Windows (CRLF) line endings"]);
    assert!(!crlf.stdout.contains("stayed PID 1"), "the shell did exec: {crlf:?}");
}

#[test]
fn lesson_07_without_orphans_does_not_pass() {
    let out = check_answer("7", "exercise.sh", "pidlab run -d --name ex07 -- pidlab probe\n");
    assert_not_yet(&out, &["made no orphans", "--orphans 5"]);
}

#[test]
fn lesson_04_wrong_names_are_told_what_was_started() {
    let out = check_answer("4", "exercise.sh", "pidlab run -d --name ex4 -- pidlab probe\n");
    assert_not_yet(&out, &["no sandbox named ex04", "it started ex4"]);
}

/// The host PID of PID 1 of the first sandbox a running check recorded in
/// its private state directory (under `tmp`).
fn sandbox_pid1(tmp: &Path, name: &str) -> i32 {
    let mut pid = 0;
    wait_until(Duration::from_secs(20), "the check's sandbox appears", || {
        let record = entries(tmp)
            .into_iter()
            .filter(|d| d.file_name().unwrap().to_string_lossy().starts_with("pidlab-check-"))
            .find_map(|d| std::fs::read_to_string(d.join(name).join("sandbox.json")).ok());
        let value: Option<serde_json::Value> = record.and_then(|r| serde_json::from_str(&r).ok());
        pid = value.and_then(|v| v["pid1"]["pid"].as_i64()).unwrap_or(0) as i32;
        pid > 0
    });
    pid
}

/// Processes a test must not leave behind even when it fails (a check that
/// died of the signal would leave its script and sandbox): SIGKILLed by
/// PID when dropped, if still there. The pidfd, not yet readable, proves
/// the PID still names that process.
struct KillOnDrop(Vec<(i32, std::os::fd::OwnedFd)>);

impl KillOnDrop {
    fn watch(&mut self, pid: i32) {
        self.0.push((pid, pidfd_open(nix::unistd::Pid::from_raw(pid))));
    }

    fn gone_within(&self, index: usize, limit: Duration) -> bool {
        exits_within(&self.0[index].1, limit)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for (pid, pidfd) in &self.0 {
            if !exits_within(pidfd, Duration::ZERO) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

/// The classic mistake, `pidlab run` without -d: the check gives up after
/// its bound, says why, and ends the sandbox the script started.
#[test]
fn a_foreground_exercise_is_stopped_with_the_dash_d_hint_and_leaves_nothing() {
    let dir = private_tmp();
    let tmp = private_tmp();
    let file = dir.path().join("exercise.sh");
    std::fs::write(&file, "pidlab run --name ex04 -- pidlab probe\n").unwrap();
    let mut cmd = pidlab(["lesson", "check", "4", file.to_str().unwrap()]);
    cmd.env("TMPDIR", tmp.path());
    let started = std::time::Instant::now();
    let running = Running::start(&mut cmd);
    let mut left = KillOnDrop(Vec::new());
    left.watch(sandbox_pid1(tmp.path(), "ex04"));
    let script = children(running.pid());
    assert_eq!(script.len(), 1, "the check runs one script: {script:?}");
    left.watch(script[0]);
    let out = running.finish(Duration::from_secs(40));
    assert!(started.elapsed() < Duration::from_secs(25), "took {:?}", started.elapsed());
    assert_not_yet(&out, &["did not return within 10 s", "did you forget -d?"]);
    assert!(left.gone_within(0, Duration::from_secs(5)), "the sandbox's PID 1 is still running");
    assert!(left.gone_within(1, Duration::from_secs(5)), "the script is still running");
    assert!(entries(tmp.path()).is_empty(), "left behind: {:?}", entries(tmp.path()));
}

/// Ctrl-C (or a TERM) to `lesson check` ends everything it started: the
/// script, the sandbox, the temporary directories.
#[test]
fn an_interrupted_check_removes_everything_it_started() {
    for signal in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGTERM] {
        let dir = private_tmp();
        let tmp = private_tmp();
        let file = dir.path().join("exercise.sh");
        std::fs::write(&file, "pidlab run --name ex04 -- pidlab probe\n").unwrap();
        let mut cmd = pidlab(["lesson", "check", "4", file.to_str().unwrap()]);
        cmd.env("TMPDIR", tmp.path());
        let running = Running::start(&mut cmd);
        let mut left = KillOnDrop(Vec::new());
        left.watch(sandbox_pid1(tmp.path(), "ex04"));
        let script = children(running.pid());
        assert_eq!(script.len(), 1, "the check runs one script: {script:?}");
        left.watch(script[0]);
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(running.pid()), signal).unwrap();
        let out = running.finish(Duration::from_secs(20));
        assert_eq!(
            out.status.code(),
            Some(128 + signal as i32),
            "a clean exit, not death by {signal}: {out:?}"
        );
        assert!(out.stderr.contains("interrupted"), "{out:?}");
        assert!(
            left.gone_within(0, Duration::from_secs(5)),
            "{signal}: the sandbox's PID 1 is still running"
        );
        assert!(left.gone_within(1, Duration::from_secs(5)), "{signal}: the script is still running");
        assert!(entries(tmp.path()).is_empty(), "{signal}: left behind: {:?}", entries(tmp.path()));
    }
}

#[test]
fn a_missing_exercise_file_is_a_usage_error_naming_the_starter() {
    let dir = private_tmp();
    let mut cmd = pidlab(["lesson", "check", "4", "exercise.sh"]);
    cmd.current_dir(dir.path());
    let out = run_within(cmd, Duration::from_secs(20));
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(out.stderr.contains("lessons/04-pid1-signal-rules/exercise.sh"), "{out:?}");
    assert!(out.stdout.is_empty(), "no verdict for a file that is not there: {out:?}");
    let directory = run(["lesson", "check", "5", dir.path().to_str().unwrap()]);
    assert_eq!(directory.code(), 125, "{directory:?}");
    assert!(directory.stderr.contains("is not a file"), "{directory:?}");
    // Another lesson's file is a mix-up, not a wrong answer.
    let other = run([
        "lesson",
        "check",
        "5",
        lesson_dir("04-pid1-signal-rules").join("exercise.sh").to_str().unwrap(),
    ]);
    assert_eq!(other.code(), 125, "{other:?}");
    assert!(
        other.stderr.contains("lesson 4's")
            && other.stderr.contains("lessons/05-shell-vs-exec-form/Dockerfile"),
        "{other:?}"
    );
}

/// `lesson export DIR` writes every starter file, so the binary alone is
/// enough: checked from that directory, without the repository, the
/// starters fail as they should.
#[test]
fn exported_starters_are_checked_from_any_directory() {
    let dir = private_tmp();
    let export = run(["lesson", "export", dir.path().to_str().unwrap()]);
    assert_eq!(export.code(), 0, "{export:?}");
    for (slug, file) in [
        ("04-pid1-signal-rules", "exercise.sh"),
        ("05-shell-vs-exec-form", "Dockerfile"),
        ("07-orphans-and-zombies", "exercise.sh"),
        ("09-entrypoint-scripts", "entrypoint.sh"),
        ("03-nested-namespaces", "stretch.sh"),
        ("06-docker-stop", "stretch.sh"),
        ("08-init-and-drain", "stretch.sh"),
        ("17-write-an-init", "init.c"),
        ("17-write-an-init", "solution/init.rs"),
    ] {
        let exported = std::fs::read(dir.path().join("lessons").join(slug).join(file)).unwrap();
        assert_eq!(exported, std::fs::read(lesson_dir(slug).join(file)).unwrap(), "{slug}/{file}");
    }
    let facts = std::fs::read_to_string(dir.path().join("lessons/FACTS.md")).unwrap();
    assert!(facts.contains("## §1 "), "the facts the lessons cite are exported too");
    let mut cmd = pidlab(["lesson", "check", "9", "lessons/09-entrypoint-scripts/entrypoint.sh"]);
    cmd.current_dir(dir.path());
    let out = run_within(cmd, Duration::from_secs(60));
    assert_not_yet(&out, &["PID 1 is sh", "dropped"]);
}

/// The command in lesson 02's first hint reads the link it means (the
/// unsharing shell's, through a /proc that shows it) and shows the errno
/// the exercise asks for.
#[test]
fn lesson_02_hint_shows_the_errno() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let hint = run(["lesson", "hint", "2"]);
    assert_eq!(hint.code(), 0, "{hint:?}");
    let command = hint.stdout.split('`').rfind(|s| s.starts_with("unshare "));
    let command = command.unwrap_or_else(|| panic!("no unshare command in the hint: {}", hint.stdout));
    let mut cmd = Command::new("bash");
    cmd.args(["-c", command]);
    let out = run_within(cmd, Duration::from_secs(20));
    assert!(out.stderr.contains("/ns/pid_for_children: No such file or directory"), "`{command}`: {out:?}");
    assert!(!out.stderr.contains("/proc/1/"), "`{command}` reads the host's PID 1: {out:?}");
}

/// Lessons 01 and 02 say what an ordinary user gets from `unshare --pid`,
/// and that `--user --map-root-user` does what pidlab does.
#[test]
fn lessons_01_and_02_say_what_an_ordinary_user_gets() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    for slug in ["01-first-namespace", "02-unshare-vs-clone"] {
        let text = std::fs::read_to_string(lesson_dir(slug).join("README.md")).unwrap();
        assert!(text.contains("**Needs root**") || text.contains("**Needs root:**"), "{slug}");
        assert!(
            text.contains("`unshare: unshare failed: Operation not")
                && text.contains("--user --map-root-user")
        );
    }
    let as_nobody = |script: &str| {
        run_within(ForNobody::command(Path::new("/bin/sh"), &["-c", script]), Duration::from_secs(20))
    };
    let refused = as_nobody("unshare --pid --fork sh -c 'echo $$'");
    assert_ne!(refused.code(), 0, "{refused:?}");
    assert_eq!(refused.stderr.trim(), "unshare: unshare failed: Operation not permitted", "{refused:?}");
    let mapped = as_nobody("unshare --user --map-root-user --pid --fork sh -c 'echo $$'");
    assert_eq!((mapped.code(), mapped.stdout.trim()), (0, "1"), "{mapped:?}");
}

/// Lesson 09 says a script that must stay PID 1 can pass SIGTERM on
/// itself; that script passes the exercise's check.
#[test]
fn lesson_09_trap_forwarding_script_passes() {
    let script = "#!/bin/sh\necho \"entrypoint: preparing\"\ntrap 'kill -TERM \"$child\"' TERM\n\"$@\" & child=$!\nwait \"$child\"\nwait \"$child\"\n";
    let out = check_answer("9", "entrypoint.sh", script);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(out.stdout.contains("PID 1 was sh"), "{out:?}");
}

/// Every fact a lesson cites is in the repository: `lessons/FACTS.md`,
/// and the section it names exists.
#[test]
fn every_cited_fact_is_in_the_repository() {
    let facts = std::fs::read_to_string(Path::new(LESSONS).join("FACTS.md")).expect("lessons/FACTS.md");
    let mut cited = 0;
    for dir in entries(Path::new(LESSONS)).into_iter().filter(|p| p.is_dir()) {
        let text = std::fs::read_to_string(dir.join("README.md")).unwrap();
        // Every document a lesson names in backquotes is in the repository.
        for cited in text.split('`').skip(1).step_by(2).filter(|s| s.ends_with(".md")) {
            let found = [Path::new(env!("CARGO_MANIFEST_DIR")), Path::new(LESSONS), &dir]
                .iter()
                .any(|base| base.join(cited).is_file());
            assert!(found, "{dir:?} cites {cited}, which is not in the repository");
        }
        for (_, rest) in text.match_indices('§').map(|(i, _)| text.split_at(i + '§'.len_utf8())) {
            let number: String = rest.chars().take_while(char::is_ascii_digit).collect();
            assert!(
                facts.contains(&format!("\n## §{number} ")),
                "{dir:?} cites §{number}, which FACTS.md lacks"
            );
            cited += 1;
        }
    }
    assert!(cited >= 10, "only {cited} citations of FACTS.md");
}

/// The README's tour, run as printed: the probe's state lands on a volume
/// the host can read, and `ps` names the init as the tour says.
#[test]
fn the_tour_shows_what_it_says() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let tour_line = |start: &str| -> String {
        let line = readme.lines().map(str::trim).find(|l| l.starts_with(start));
        let line = line.unwrap_or_else(|| panic!("the README's tour has no line starting {start:?}"));
        line.split("   #").next().unwrap().trim().to_string()
    };
    let lab = Lab::new();
    let dir = private_tmp();
    let bash = |command: &str| {
        let mut cmd = Command::new("bash");
        cmd.args(["-c", command])
            .current_dir(dir.path())
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(bin()).parent().unwrap().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("PIDLAB_STATE_DIR", lab.state.path());
        run_within(cmd, Duration::from_secs(30))
    };
    let save = bash(&tour_line("mkdir -p data; pidlab run -v"));
    assert_eq!(save.code(), 0, "{save:?}");
    let saved = bash(&tour_line("cat data/state"));
    assert_eq!(saved.stdout.trim(), "saved on SIGTERM by the probe, pid 1 in its namespace", "{saved:?}");
    let init = tour_line("pidlab run --init -- ps");
    let ps = bash(&init);
    let rows: Vec<Vec<&str>> = ps.stdout.lines().skip(1).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows, [["1", "pidlab:init"], ["2", "ps"]], "`{init}`: {ps:?}");
    lab.finish();
}

/// The facilitator's answer key is run like a lesson (as root, from a
/// directory of its own), so its answers are what the kernel does.
#[test]
fn the_facilitator_answer_key_holds() {
    require("/usr/bin/unshare", "apt-get install util-linux");
    require("/bin/busybox", "apt-get install busybox-static (.ci/run does)");
    let text = std::fs::read_to_string(Path::new(LESSONS).join("FACILITATOR.md")).unwrap();
    let steps = transcript(&text, false);
    assert!(steps.len() >= 15, "the answer key shows its answers: {} commands", steps.len());
    let lab = Lab::new();
    let cwd = private_tmp();
    run_steps("FACILITATOR.md", steps, false, Path::new(bin()).parent().unwrap(), cwd.path(), &lab);
    lab.finish();
}

/// The other right answers the answer key names pass the checks.
#[test]
fn other_right_answers_pass() {
    for (number, file, text) in [
        ("4", "exercise.sh", "pidlab run -d --name ex04 -- pidlab probe --catch TERM\n"),
        ("4", "exercise.sh", "pidlab run -d --name ex04 -- pidlab probe --ignore TERM\n"),
        ("4", "exercise.sh", "pidlab run -d --name ex04 -- sleep 1000\n"),
        ("5", "Dockerfile", "CMD exec pidlab probe --on-term-save /data/state\n"),
        (
            "7",
            "exercise.sh",
            "pidlab run -d --name ex07 --init=drain -- pidlab probe --orphans 5 --orphan-life 0\n",
        ),
        ("7", "exercise.sh", "pidlab run -d --name ex07 --cmd 'pidlab probe --orphans 5 --orphan-life 0'\n"),
    ] {
        let out = check_answer(number, file, text);
        assert_eq!(out.code(), 0, "lesson {number}, {text}: {out:?}");
    }
}

/// The lessons' commands that use the lessons' files work from a copy that
/// `pidlab lesson export` wrote, without the repository.
#[test]
fn lessons_run_from_an_exported_copy() {
    let dir = private_tmp();
    let export = run(["lesson", "export", dir.path().to_str().unwrap()]);
    assert_eq!(export.code(), 0, "{export:?}");
    let mut ran = 0;
    for slug in entries(Path::new(LESSONS)).into_iter().filter(|p| p.is_dir()) {
        let text = std::fs::read_to_string(slug.join("README.md")).unwrap();
        let steps: Vec<_> =
            transcript(&text, false).into_iter().filter(|(c, _)| c.contains("lessons/")).collect();
        if steps.is_empty() {
            continue;
        }
        ran += steps.len();
        let lab = Lab::new();
        let name = slug.file_name().unwrap().to_string_lossy().into_owned();
        run_steps(&name, steps, false, Path::new(bin()).parent().unwrap(), dir.path(), &lab);
        lab.finish();
    }
    assert!(ran >= 2, "only {ran} commands use the lessons' files");
}

/// The exercises are part of lessons that work without root: their checks
/// pass each solution and fail each starter as the `nobody` user too, and
/// leave nothing behind.
#[test]
fn exercise_checks_work_as_an_ordinary_user() {
    use std::os::unix::fs::PermissionsExt;
    let exercises = [
        ("4", "04-pid1-signal-rules", "exercise.sh"),
        ("5", "05-shell-vs-exec-form", "Dockerfile"),
        ("7", "07-orphans-and-zombies", "exercise.sh"),
        ("9", "09-entrypoint-scripts", "entrypoint.sh"),
    ];
    let files: Vec<String> = exercises
        .iter()
        .flat_map(|(_, slug, file)| {
            [format!("lessons/{slug}/{file}"), format!("lessons/{slug}/solution/{file}")]
        })
        .collect();
    let copy = ForNobody::new(&files.iter().map(String::as_str).collect::<Vec<_>>());
    let tmp = private_tmp();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // Where nobody's passes are recorded: a directory nobody creates.
    let home = private_tmp();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let state = home.path().join("state");
    for (number, slug, file) in exercises {
        for (path, passes) in
            [(format!("lessons/{slug}/{file}"), false), (format!("lessons/{slug}/solution/{file}"), true)]
        {
            let mut cmd = ForNobody::command(&copy.bin(), &["lesson", "check", number, &path]);
            cmd.current_dir(copy.dir.path()).env("TMPDIR", tmp.path()).env("PIDLAB_STATE_DIR", &state);
            let out = run_within(cmd, Duration::from_secs(60));
            assert_eq!(out.code(), if passes { 0 } else { 1 }, "as nobody, {path}: {out:?}");
        }
    }
    assert!(entries(tmp.path()).is_empty(), "left behind: {:?}", entries(tmp.path()));
}

/// `lesson check` blocks SIGINT, SIGTERM and SIGHUP for itself (to clean
/// up on Ctrl-C); the attendee's script must not inherit that mask.
#[test]
fn a_checked_script_starts_with_no_signal_blocked() {
    let out_dir = private_tmp();
    let mask = out_dir.path().join("mask");
    let script = format!("#!/bin/bash\ngrep SigBlk /proc/self/status > {}\n", mask.display());
    let dir = private_tmp();
    let file = dir.path().join("exercise.sh");
    std::fs::write(&file, script).unwrap();
    let _ = check("04", &file);
    let text = std::fs::read_to_string(&mask).expect("the script ran");
    assert_eq!(text.trim(), "SigBlk:\t0000000000000000", "the script inherited a blocked mask");
}

/// The orphans of a probe that never reaps must be counted once they have
/// exited, not while they still live: with their default life (0.2 s) the
/// starter is still NOT YET.
#[test]
fn lesson_07_counts_zombies_after_the_orphans_have_lived() {
    let out = check_answer("7", "exercise.sh", "pidlab run -d --name ex07 -- pidlab probe --orphans 5\n");
    assert_not_yet(&out, &["5 zombies are left"]);
}

/// Lesson 5 with the whole command line in one exec-form element: the
/// verdict says why it is not found and how to split it, without the
/// note about FROM that every lesson Dockerfile earns.
#[test]
fn lesson_05_one_element_exec_array_is_explained() {
    let out =
        check_answer("5", "Dockerfile", "FROM redis\nCMD [\"pidlab probe --on-term-save /data/state\"]\n");
    assert_not_yet(&out, &[r#"split it (["pidlab","probe","--on-term-save","/data/state"])"#]);
    assert!(!out.stdout.contains("not applied"), "{out:?}");
}
