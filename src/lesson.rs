//! `pidlab lesson`: the workshop lessons, built into the binary so that
//! `pidlab lesson show 4` works from any directory.
//!
//! Each lesson is `lessons/NN-slug/README.md`. Commands appear in fenced
//! ```transcript blocks: a `$ ` line is a command typed exactly as shown,
//! the lines after it are what it prints (`[..]` stands for any text, a
//! `~ ` line is a regular expression). `cargo test` runs every transcript
//! and checks every output, so a lesson cannot say something the kernel
//! does not do. Exercises have a starter file the attendee edits and a
//! reference solution in `solution/`; `pidlab lesson check N FILE` runs the
//! check and explains a failure in the lesson's terms.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::cli::{LessonArgs, LessonCommand};
use crate::exit_code::{Exit, SETUP_FAILED};

struct Lesson {
    number: u32,
    slug: &'static str,
    text: &'static str,
    hints: &'static [&'static str],
}

const LESSONS: &[Lesson] = &[
    Lesson {
        number: 0,
        slug: "00-doctor",
        text: include_str!("../lessons/00-doctor/README.md"),
        hints: &["Run `pidlab doctor` and read the line under each FAIL."],
    },
    Lesson {
        number: 1,
        slug: "01-first-namespace",
        text: include_str!("../lessons/01-first-namespace/README.md"),
        hints: &[
            "`pidlab inspect one` lists every process of the sandbox; the first number is the host's PID.",
        ],
    },
    Lesson {
        number: 2,
        slug: "02-unshare-vs-clone",
        text: include_str!("../lessons/02-unshare-vs-clone/README.md"),
        hints: &[
            "Try it: `unshare --pid --fork sh -c 'readlink /proc/$$/ns/pid_for_children'` and without the first child.",
        ],
    },
    Lesson {
        number: 3,
        slug: "03-nested-namespaces",
        text: include_str!("../lessons/03-nested-namespaces/README.md"),
        hints: &["rt_sigtimedwait moves the waited signals from `blocked` to `real_blocked` while it waits."],
    },
    Lesson {
        number: 4,
        slug: "04-pid1-signal-rules",
        text: include_str!("../lessons/04-pid1-signal-rules/README.md"),
        hints: &[
            "What does --on-term-save do when SIGTERM arrives? Would PID 1 even receive SIGTERM without a handler?",
            "A PID 1 with no SIGTERM handler never receives SIGTERM from the host: the kernel drops it.",
            "pidlab run -d --name ex04 -- pidlab probe",
        ],
    },
    Lesson {
        number: 5,
        slug: "05-shell-vs-exec-form",
        text: include_str!("../lessons/05-shell-vs-exec-form/README.md"),
        hints: &[
            "Who is PID 1 with the shell form on Debian? Try `pidlab run --dry-run -f Dockerfile`.",
            "dash stays PID 1 and has no SIGTERM handler. Make the probe itself PID 1.",
            "CMD [\"pidlab\", \"probe\", \"--on-term-save\", \"/data/state\"]",
        ],
    },
    Lesson {
        number: 6,
        slug: "06-docker-stop",
        text: include_str!("../lessons/06-docker-stop/README.md"),
        hints: &["STOPSIGNAL only changes which signal stop sends; PID 1 must still have a handler for it."],
    },
    Lesson {
        number: 7,
        slug: "07-orphans-and-zombies",
        text: include_str!("../lessons/07-orphans-and-zombies/README.md"),
        hints: &[
            "The probe never waits for children it did not start. Who could?",
            "An init reaps every orphan: which `pidlab run` flag puts one in front?",
            "pidlab run -d --name ex07 --init -- pidlab probe --orphans 5 --orphan-life 0",
        ],
    },
    Lesson {
        number: 8,
        slug: "08-init-and-drain",
        text: include_str!("../lessons/08-init-and-drain/README.md"),
        hints: &["Lesson 05: `exec` in the string makes the shell replace itself with the command."],
    },
    Lesson {
        number: 9,
        slug: "09-entrypoint-scripts",
        text: include_str!("../lessons/09-entrypoint-scripts/README.md"),
        hints: &[
            "Which process runs the command on the script's last line, and who is PID 1 then?",
            "`exec` replaces the shell with the command.",
            "exec \"$@\"",
        ],
    },
    Lesson {
        number: 10,
        slug: "10-when-pid1-dies",
        text: include_str!("../lessons/10-when-pid1-dies/README.md"),
        hints: &["The init exits when its child (sh) exits; then the kernel kills the sleep."],
    },
    Lesson {
        number: 11,
        slug: "11-chroot-vs-pivot-root",
        text: include_str!("../lessons/11-chroot-vs-pivot-root/README.md"),
        hints: &["In a user namespace you are root over the namespaces it owns, mount namespace included."],
    },
    Lesson {
        number: 12,
        slug: "12-rootless",
        text: include_str!("../lessons/12-rootless/README.md"),
        hints: &["uid_map maps IDs inside to IDs outside; root's own map is the identity."],
    },
];

fn find(number: u32) -> Result<&'static Lesson> {
    LESSONS.iter().find(|l| l.number == number).ok_or_else(|| {
        let have: Vec<String> = LESSONS.iter().map(|l| l.number.to_string()).collect();
        Exit { code: SETUP_FAILED, message: format!("no lesson {number}; lessons: {}", have.join(", ")) }
            .into()
    })
}

fn title(lesson: &Lesson) -> &str {
    lesson.text.lines().next().unwrap_or("").trim_start_matches('#').trim()
}

pub fn run(args: LessonArgs) -> Result<i32> {
    match args.command {
        LessonCommand::List => {
            for lesson in LESSONS {
                println!("{}", title(lesson));
            }
            Ok(0)
        }
        LessonCommand::Show { number } => {
            print!("{}", render(find(number)?.text, nix::unistd::isatty(std::io::stdout()).unwrap_or(false)));
            Ok(0)
        }
        LessonCommand::Hint { number, level } => {
            let lesson = find(number)?;
            let shown = level.clamp(1, lesson.hints.len() as u32) as usize;
            for (i, hint) in lesson.hints.iter().take(shown).enumerate() {
                println!("hint {}/{}: {hint}", i + 1, lesson.hints.len());
            }
            if shown < lesson.hints.len() {
                println!("(more: pidlab lesson hint {number} {})", shown + 1);
            }
            Ok(0)
        }
        LessonCommand::Check { number, file } => {
            let lesson = find(number)?;
            let verdict = match lesson.number {
                4 => check_4(&file)?,
                5 => check_5(&file)?,
                7 => check_7(&file)?,
                9 => check_9(&file)?,
                _ => bail!("lesson {} ({}) has no exercise to check", lesson.number, lesson.slug),
            };
            match verdict {
                Ok(message) => {
                    println!("PASS: {message}");
                    Ok(0)
                }
                Err(message) => {
                    println!("NOT YET: {message}\n(hint: pidlab lesson hint {number})");
                    Ok(1)
                }
            }
        }
    }
}

/// Print a lesson for a terminal: transcript blocks indented, commands in
/// bold when the output is a terminal.
fn render(text: &str, colour: bool) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            let shown = match line.strip_prefix("~ ") {
                Some(pattern) => format!("(a line like: {pattern})"),
                None => line.to_string(),
            };
            if colour && line.starts_with("$ ") {
                out.push_str(&format!("    \x1b[1m{shown}\x1b[0m\n"));
            } else {
                out.push_str(&format!("    {shown}\n"));
            }
        } else if colour && line.starts_with('#') {
            out.push_str(&format!("\x1b[1;4m{}\x1b[0m\n", line.trim_start_matches('#').trim()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Runs pidlab commands for a check in a private state directory, and
/// removes every sandbox it made when dropped.
struct Bench {
    state: tempfile::TempDir,
    data: tempfile::TempDir,
    exe: std::path::PathBuf,
}

impl Bench {
    fn new() -> Result<Bench> {
        Ok(Bench {
            state: tempfile::Builder::new().prefix("pidlab-check-").tempdir()?,
            data: tempfile::Builder::new().prefix("pidlab-check-data-").tempdir()?,
            exe: std::env::current_exe()?,
        })
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let dir = self.exe.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default());
        cmd.env("PATH", path).env("PIDLAB_STATE_DIR", self.state.path());
        cmd
    }

    fn pidlab(&self, args: &[&str]) -> Result<(bool, String)> {
        let out = self.command(self.exe.to_str().unwrap_or("pidlab")).args(args).output()?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Ok((out.status.success(), text))
    }

    /// Run the attendee's shell file (with this pidlab first on the PATH).
    /// `Some(message)` when it failed.
    fn run_file(&self, file: &Path) -> Result<Option<String>> {
        let out =
            self.command("bash").arg(file).output().with_context(|| format!("run {}", file.display()))?;
        if out.status.success() {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Ok(Some(format!("{} failed to start a sandbox: {}", file.display(), stderr.trim())))
    }

    /// Wait (at most 5 s) until a probe in the sandbox says it is ready,
    /// so that what `explain` reads from /proc is settled.
    fn wait_ready(&self, name: &str) -> Result<()> {
        self.pidlab(&["logs", "--until", "probe: ready", "--timeout", "5", name]).map(drop)
    }

    /// Who PID 1 is and what SIGTERM would do to it, from `explain`.
    fn pid1(&self, name: &str) -> Result<(String, String)> {
        let (_, text) = self.pidlab(&["explain", name, "SIGTERM", "--format", "json"])?;
        let row: Value = serde_json::from_str(text.lines().next().unwrap_or("{}")).unwrap_or(Value::Null);
        Ok((
            row["comm"].as_str().unwrap_or("?").to_string(),
            row["outcome"].as_str().unwrap_or("?").to_string(),
        ))
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Ok(dir) = std::fs::read_dir(self.state.path()) {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let _ = self.pidlab(&["rm", "-f", &name]);
            }
        }
    }
}

type Verdict = Result<String, String>;

/// Lesson 4: PID 1 survives SIGTERM from the host, but not SIGKILL.
fn check_4(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Some(failure) = bench.run_file(file)? {
        return Ok(Err(failure));
    }
    let (running, _) = bench.pidlab(&["inspect", "ex04"])?;
    if !running {
        return Ok(Err(
            "no running sandbox named ex04: the file must start one with --name ex04 and -d".into()
        ));
    }
    bench.wait_ready("ex04")?;
    let (comm, fate) = bench.pid1("ex04")?;
    let (_, stop) = bench.pidlab(&["stop", "-t", "1", "ex04"])?;
    if stop.contains("did not exit within 1 s of SIGTERM") && stop.contains("killed by SIGKILL") {
        return Ok(Ok(format!(
            "PID 1 ({comm}) was still running 1 s after SIGTERM ({fate}), and SIGKILL from the host ended it."
        )));
    }
    Ok(Err(format!(
        "PID 1 ({comm}) {}: SIGTERM was {fate}. A PID 1 that exits on SIGTERM has a handler that exits; \
         without a handler the kernel would drop SIGTERM from the host.",
        if stop.contains("exited") { "exited on SIGTERM" } else { "did not end as expected" }
    )))
}

/// Lesson 5: the Dockerfile's service saves its state on `docker stop`.
fn check_5(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let volume = format!("{}:/data", bench.data.path().display());
    let file = file.to_str().context("a UTF-8 path")?;
    let (started, text) = bench.pidlab(&["run", "-d", "--name", "ex05", "-v", &volume, "-f", file])?;
    if !started {
        return Ok(Err(format!("the Dockerfile did not start: {}", text.trim())));
    }
    bench.wait_ready("ex05")?;
    let (comm, fate) = bench.pid1("ex05")?;
    let (_, stop) = bench.pidlab(&["stop", "-t", "2", "ex05"])?;
    let saved = bench.data.path().join("state").exists();
    if saved {
        return Ok(Ok(format!(
            "PID 1 was {comm}; SIGTERM was {fate}; the state file was written: {}",
            stop.trim()
        )));
    }
    let killed = stop.contains("sent SIGKILL");
    Ok(Err(format!(
        "PID 1 is {comm}; SIGTERM sent to it was {fate}{}; no state file was written. {}",
        if killed { ", so the probe was SIGKILLed after the 2 s grace period" } else { "" },
        if comm == "sh" || comm == "dash" {
            "The shell stays PID 1 (Debian's dash forks the command) and has no SIGTERM handler."
        } else {
            "The probe must receive SIGTERM to save."
        }
    )))
}

/// Lesson 7: no zombie is left in the sandbox.
fn check_7(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    if let Some(failure) = bench.run_file(file)? {
        return Ok(Err(failure));
    }
    bench.wait_ready("ex07")?;
    let zombies = || -> Result<(usize, String)> {
        let (_, text) = bench.pidlab(&["inspect", "ex07", "--format", "json"])?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let procs = v["processes"].as_array().cloned().unwrap_or_default();
        let pid1 = procs.first().and_then(|p| p["cmdline"].as_str()).unwrap_or("?").to_string();
        Ok((procs.iter().filter(|p| p["state"] == "Z").count(), pid1))
    };
    // An init reaps within milliseconds; give it up to 2 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let (count, pid1) = zombies()?;
        if count == 0 {
            return Ok(Ok(format!("no zombie left: PID 1 ({pid1}) reaps the orphans it adopts.")));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(Err(format!(
                "{count} zombies are left: PID 1 is `{pid1}`, which adopts the orphans but never calls wait(2) for them."
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Lesson 9: with FILE as the entrypoint, the service saves on stop.
fn check_9(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let file = std::fs::canonicalize(file).with_context(|| format!("{} not found", file.display()))?;
    let dir = file.parent().context("the file's directory")?;
    let name = file.file_name().and_then(|n| n.to_str()).context("a UTF-8 file name")?;
    let lesson = format!("{}:/lesson", dir.display());
    let data = format!("{}:/data", bench.data.path().display());
    let cmd =
        serde_json::json!([format!("/lesson/{name}"), "pidlab", "probe", "--on-term-save", "/data/state"]);
    let cmd = cmd.to_string();
    let (started, text) = bench.pidlab(&[
        "run",
        "-d",
        "--name",
        "ex09",
        "-v",
        &lesson,
        "-v",
        &data,
        "--entrypoint",
        "/bin/sh",
        "--cmd",
        &cmd,
    ])?;
    if !started {
        return Ok(Err(format!("the sandbox did not start: {}", text.trim())));
    }
    bench.wait_ready("ex09")?;
    let (comm, fate) = bench.pid1("ex09")?;
    let (_, stop) = bench.pidlab(&["stop", "-t", "2", "ex09"])?;
    if bench.data.path().join("state").exists() {
        return Ok(Ok(format!("PID 1 was {comm}; SIGTERM was {fate}; the state was saved: {}", stop.trim())));
    }
    Ok(Err(format!(
        "PID 1 is {comm}: the script's shell stayed PID 1, and SIGTERM sent to it was {fate}; the probe \
         never heard it and was SIGKILLed after 2 s without saving."
    )))
}
