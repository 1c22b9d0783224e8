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
/// ```transcript block.
fn transcript(text: &str) -> Vec<(String, Vec<String>)> {
    let mut steps: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = line.trim() == "```transcript";
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
    let steps = transcript(&text);
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
    for (command, expected) in steps {
        let mut cmd = match as_nobody {
            true => ForNobody::command(Path::new("/bin/bash"), &["-c", &command]),
            false => {
                let mut cmd = Command::new("bash");
                cmd.args(["-c", &command]);
                cmd
            }
        };
        cmd.current_dir(&cwd)
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
    nix::unistd::chown(lab.state.path(), Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    lab.finish();
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
    check_transcripts("03-nested-namespaces");
}

#[test]
fn lesson_06_transcripts() {
    check_transcripts("06-docker-stop");
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

fn check(number: &str, file: &Path) -> Outcome {
    run_within(pidlab(["lesson", "check", number, file.to_str().unwrap()]), Duration::from_secs(60))
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
    }
    assert_eq!(run(["lesson", "show", "99"]).code(), 125);
}
