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
//! check and explains a failure in the lesson's terms: `check.rs` is how a
//! check runs (bounded, cleaned up, Ctrl-C included), `exercises/` what
//! each one looks at. `pidlab lesson export DIR` writes the files, so the
//! binary alone is enough for a workshop. A lesson may also have a
//! harder *stretch* exercise (`stretch.sh`, checked with
//! `lesson check N --stretch FILE`) for attendees who finish early; every
//! pass is recorded for `lesson status` (`progress.rs`). `lesson guide`
//! prints the facilitator's guide, `lessons/FACILITATOR.md`.

mod check;
mod exercises;
mod progress;

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{Format, LessonArgs, LessonCommand};
use crate::exit_code::{Exit, SETUP_FAILED};

struct Lesson {
    number: u32,
    slug: &'static str,
    text: &'static str,
    hints: &'static [&'static str],
    /// The exercise's starter file: its name in the lesson's directory, and
    /// its text (so `lesson export` needs no repository).
    starter: Option<(&'static str, &'static str)>,
    /// The reference solution, `solution/` + the starter's name (lesson
    /// 09's transcripts run it).
    solution: Option<&'static str>,
    /// A harder exercise for fast attendees, with a check of its own.
    stretch: Option<Stretch>,
    /// More reference solutions, `solution/NAME` (another language).
    more_solutions: &'static [(&'static str, &'static str)],
}

/// A stretch exercise: always a `stretch.sh` in the lesson's directory,
/// its reference solution in `solution/stretch.sh`.
struct Stretch {
    starter: &'static str,
    solution: &'static str,
    hints: &'static [&'static str],
}

const STRETCH_FILE: &str = "stretch.sh";

const LESSONS: &[Lesson] = &[
    Lesson {
        number: 0,
        slug: "00-doctor",
        text: include_str!("../../../lessons/00-doctor/README.md"),
        hints: &["Run `pidlab doctor` and read the line under each FAIL."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 1,
        slug: "01-first-namespace",
        text: include_str!("../../../lessons/01-first-namespace/README.md"),
        hints: &[
            "`pidlab inspect one` lists every process of the sandbox; the first number is the host's PID.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 2,
        slug: "02-unshare-vs-clone",
        text: include_str!("../../../lessons/02-unshare-vs-clone/README.md"),
        hints: &[
            "Only the process that called unshare can look, and only before it forks. Without --fork, `sh` is \
             that process (it keeps its host PID, so the host's /proc is the right one for it), and a shell \
             builtin forks nothing; bash's `cd` even names the errno: \
             `unshare --pid bash -c 'cd /proc/$$/ns/pid_for_children'`",
            "With --fork, $$ is 1, and in the host's /proc, /proc/1 is the host's init: lesson 01's trap.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 3,
        slug: "03-nested-namespaces",
        text: include_str!("../../../lessons/03-nested-namespaces/README.md"),
        hints: &["rt_sigtimedwait moves the waited signals from `blocked` to `real_blocked` while it waits."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/03-nested-namespaces/stretch.sh"),
            solution: include_str!("../../../lessons/03-nested-namespaces/solution/stretch.sh"),
            hints: &[
                "Count the numbers on the probe's NSpid line in `pidlab inspect st03`: one per level, host first.",
                "PID 1 of a level is whoever is started first in it. Which flag puts an init in front of the probe?",
                "pidlab run -d --name st03 --nest 3 --init -- pidlab probe",
            ],
        }),
        more_solutions: &[],
    },
    Lesson {
        number: 4,
        slug: "04-pid1-signal-rules",
        text: include_str!("../../../lessons/04-pid1-signal-rules/README.md"),
        hints: &[
            "What does --on-term-save do when SIGTERM arrives? Would PID 1 even receive SIGTERM without a handler?",
            "A PID 1 with no SIGTERM handler never receives SIGTERM from the host: the kernel drops it.",
            "pidlab run -d --name ex04 -- pidlab probe",
        ],
        starter: Some(("exercise.sh", include_str!("../../../lessons/04-pid1-signal-rules/exercise.sh"))),
        solution: Some(include_str!("../../../lessons/04-pid1-signal-rules/solution/exercise.sh")),
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 5,
        slug: "05-shell-vs-exec-form",
        text: include_str!("../../../lessons/05-shell-vs-exec-form/README.md"),
        hints: &[
            "Who is PID 1 with the shell form on Debian? Try `pidlab run --dry-run -f Dockerfile`.",
            "dash stays PID 1 and has no SIGTERM handler. Make the probe itself PID 1.",
            "CMD [\"pidlab\", \"probe\", \"--on-term-save\", \"/data/state\"]",
        ],
        starter: Some(("Dockerfile", include_str!("../../../lessons/05-shell-vs-exec-form/Dockerfile"))),
        solution: Some(include_str!("../../../lessons/05-shell-vs-exec-form/solution/Dockerfile")),
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 6,
        slug: "06-docker-stop",
        text: include_str!("../../../lessons/06-docker-stop/README.md"),
        hints: &["STOPSIGNAL only changes which signal stop sends; PID 1 must still have a handler for it."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/06-docker-stop/stretch.sh"),
            solution: include_str!("../../../lessons/06-docker-stop/solution/stretch.sh"),
            hints: &[
                "The shell is PID 1 and has no SIGTERM handler: the kernel drops SIGTERM. Give it one (`trap`).",
                "A trap runs only between commands: start the probe in the background (`&`) and `wait` for it.",
                "trap \"kill -TERM \\$child\" TERM; pidlab probe ... & child=$!; wait $child; wait $child; echo cleaned up",
            ],
        }),
        more_solutions: &[],
    },
    Lesson {
        number: 7,
        slug: "07-orphans-and-zombies",
        text: include_str!("../../../lessons/07-orphans-and-zombies/README.md"),
        hints: &[
            "The probe never waits for children it did not start. Who could?",
            "An init reaps every orphan: which `pidlab run` flag puts one in front?",
            "pidlab run -d --name ex07 --init -- pidlab probe --orphans 5 --orphan-life 0",
        ],
        starter: Some(("exercise.sh", include_str!("../../../lessons/07-orphans-and-zombies/exercise.sh"))),
        solution: Some(include_str!("../../../lessons/07-orphans-and-zombies/solution/exercise.sh")),
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 8,
        slug: "08-init-and-drain",
        text: include_str!("../../../lessons/08-init-and-drain/README.md"),
        hints: &["Lesson 05: `exec` in the string makes the shell replace itself with the command."],
        starter: None,
        solution: None,
        stretch: Some(Stretch {
            starter: include_str!("../../../lessons/08-init-and-drain/stretch.sh"),
            solution: include_str!("../../../lessons/08-init-and-drain/solution/stretch.sh"),
            hints: &[
                "With --init, SIGTERM goes to the init's one child: the shell. Who tells the two probes?",
                "When the init's child exits, the init exits, and the kernel SIGKILLs the rest of the namespace.",
                "--init=drain forwards the stop signal to every process and waits for all of them.",
            ],
        }),
        more_solutions: &[],
    },
    Lesson {
        number: 9,
        slug: "09-entrypoint-scripts",
        text: include_str!("../../../lessons/09-entrypoint-scripts/README.md"),
        hints: &[
            "Which process runs the command on the script's last line, and who is PID 1 then?",
            "`exec` replaces the shell with the command.",
            "exec \"$@\"",
        ],
        starter: Some((
            "entrypoint.sh",
            include_str!("../../../lessons/09-entrypoint-scripts/entrypoint.sh"),
        )),
        solution: Some(include_str!("../../../lessons/09-entrypoint-scripts/solution/entrypoint.sh")),
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 10,
        slug: "10-when-pid1-dies",
        text: include_str!("../../../lessons/10-when-pid1-dies/README.md"),
        hints: &["The init exits when its child (sh) exits; then the kernel kills the sleep."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 11,
        slug: "11-chroot-vs-pivot-root",
        text: include_str!("../../../lessons/11-chroot-vs-pivot-root/README.md"),
        hints: &["In a user namespace you are root over the namespaces it owns, mount namespace included."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 12,
        slug: "12-rootless",
        text: include_str!("../../../lessons/12-rootless/README.md"),
        hints: &["uid_map maps IDs inside to IDs outside; root's own map is the identity."],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 13,
        slug: "13-entering-a-namespace",
        text: include_str!("../../../lessons/13-entering-a-namespace/README.md"),
        hints: &[
            "A zombie is removed only when its parent calls wait(2). Whose child is it now?",
            "Its parent is PID 1, the probe, which never waits. Only PID 1 exiting (the sandbox ends) removes them.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 14,
        slug: "14-the-rest-of-the-pid1-rule",
        text: include_str!("../../../lessons/14-the-rest-of-the-pid1-rule/README.md"),
        hints: &[
            "With a handler, the drop rule does not apply: the signal is delivered from anyone.",
            "The sender is `kill`, started inside: it has a PID in the probe's namespace.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 15,
        slug: "15-inherited-signal-state",
        text: include_str!("../../../lessons/15-inherited-signal-state/README.md"),
        hints: &[
            "A subshell `( ... ) &` can try `trap - INT` before it execs the service: does every shell allow it?",
            "bash allows it, dash and busybox do not. coreutils' `env --default-signal=INT CMD` resets it for any shell.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 16,
        slug: "16-namespace-lifetime",
        text: include_str!("../../../lessons/16-namespace-lifetime/README.md"),
        hints: &[
            "An open descriptor is a reference, like a mount. What happens to it when the shell exits?",
            "The same ENOMEM: the namespace is alive but dead to new processes; it is freed when fd 3 closes.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 17,
        slug: "17-write-an-init",
        text: include_str!("../../../lessons/17-write-an-init/README.md"),
        hints: &[
            "PID 1 has no handlers, so SIGTERM is dropped. Block every signal first, then collect them with \
             sigtimedwait(2): a blocked signal is never dropped.",
            "Orphans are your children too: reap with waitpid(-1, &status, WNOHANG) in a loop, after every \
             signal or timeout, until it returns 0.",
            "Unblock the signals in the child before exec; exit with WEXITSTATUS, or 128 + WTERMSIG.",
        ],
        starter: Some(("init.c", include_str!("../../../lessons/17-write-an-init/init.c"))),
        solution: Some(include_str!("../../../lessons/17-write-an-init/solution/init.c")),
        stretch: None,
        more_solutions: &[("init.rs", include_str!("../../../lessons/17-write-an-init/solution/init.rs"))],
    },
    Lesson {
        number: 18,
        slug: "18-pid-max-per-namespace",
        text: include_str!("../../../lessons/18-pid-max-per-namespace/README.md"),
        hints: &[
            "`pidlab exec` forks a process into the sandbox: it needs a PID at every level, the sandbox's too.",
            "No: each level's limit applies to that level; a full namespace refuses the fork whatever the host has.",
        ],
        starter: None,
        solution: None,
        stretch: None,
        more_solutions: &[],
    },
    Lesson {
        number: 19,
        slug: "19-build-a-sandbox",
        text: include_str!("../../../lessons/19-build-a-sandbox/README.md"),
        hints: &[
            "unshare(CLONE_NEWPID) does not move the caller (lesson 02): fork, and exec in the child.",
            "A /proc that shows the new namespace must be mounted by a process inside it, in a mount namespace \
             of its own (CLONE_NEWNS), after making / private (MS_REC | MS_PRIVATE).",
            "Order in the child: make / private, chroot(ROOT), chdir(\"/\"), mount proc on /proc, exec.",
        ],
        starter: Some(("sandbox.c", include_str!("../../../lessons/19-build-a-sandbox/sandbox.c"))),
        solution: Some(include_str!("../../../lessons/19-build-a-sandbox/solution/sandbox.c")),
        stretch: None,
        more_solutions: &[],
    },
];

/// The lesson other than `number` whose directory `file` is in, if any:
/// checking lesson 4's script as lesson 5 is a mix-up, not a wrong answer.
fn other_lesson(number: u32, file: &Path) -> Option<&'static Lesson> {
    let in_dir = |slug: &str| file.components().any(|c| c.as_os_str() == slug);
    LESSONS
        .iter()
        .find(|l| l.number != number && (l.starter.is_some() || l.stretch.is_some()) && in_dir(l.slug))
}

/// The facts the lessons cite, with their sources.
const FACTS: &str = include_str!("../../../lessons/FACTS.md");

/// The facilitator's guide, for `lesson guide`.
const GUIDE: &str = include_str!("../../../lessons/FACILITATOR.md");

fn stretch_of(lesson: &Lesson) -> Result<&Stretch> {
    lesson.stretch.as_ref().ok_or_else(|| {
        let have: Vec<String> =
            LESSONS.iter().filter(|l| l.stretch.is_some()).map(|l| l.number.to_string()).collect();
        Exit {
            code: SETUP_FAILED,
            message: format!(
                "lesson {} ({}) has no stretch exercise; lessons with one: {}",
                lesson.number,
                lesson.slug,
                have.join(", ")
            ),
        }
        .into()
    })
}

/// Every exercise that has a check, in lesson order, for `lesson status`.
fn exercises() -> Vec<progress::Exercise> {
    let mut out = Vec::new();
    for lesson in LESSONS {
        if lesson.starter.is_some() {
            out.push(progress::Exercise {
                key: progress::key(lesson.number, false),
                title: title(lesson).into(),
            });
        }
        if lesson.stretch.is_some() {
            let title = format!("{} (stretch)", title(lesson));
            out.push(progress::Exercise { key: progress::key(lesson.number, true), title });
        }
    }
    out
}

/// `pidlab lesson check N FILE [--stretch]`: run the check, print the
/// verdict, record a pass.
fn check(number: u32, file: &Path, stretch: bool) -> Result<i32> {
    let lesson = find(number)?;
    let starter = match stretch {
        true => {
            stretch_of(lesson)?;
            STRETCH_FILE
        }
        false => match lesson.starter {
            Some((starter, _)) => starter,
            None => bail!("lesson {} ({}) has no exercise to check", lesson.number, lesson.slug),
        },
    };
    let starter = format!("lessons/{}/{starter}", lesson.slug);
    let file = check::exercise_file(file, number, &starter)?;
    if let Some(other) = other_lesson(number, &file) {
        return Err(Exit {
            code: SETUP_FAILED,
            message: format!(
                "{} is lesson {}'s exercise (it is in {}/); lesson {number}'s starter file is {starter}. \
                 Did you mean `pidlab lesson check {} {}`?",
                file.display(),
                other.number,
                other.slug,
                other.number,
                file.display()
            ),
        }
        .into());
    }
    let verdict = match (lesson.number, stretch) {
        (4, false) => exercises::check_4(&file)?,
        (5, false) => exercises::check_5(&file)?,
        (7, false) => exercises::check_7(&file)?,
        (9, false) => exercises::check_9(&file)?,
        (17, false) => exercises::check_17(&file)?,
        (19, false) => exercises::check_19(&file)?,
        (3, true) => exercises::stretch_3(&file)?,
        (6, true) => exercises::stretch_6(&file)?,
        (8, true) => exercises::stretch_8(&file)?,
        _ => bail!("lesson {} ({}) has no check", lesson.number, lesson.slug),
    };
    let flag = if stretch { " --stretch" } else { "" };
    match verdict {
        Ok(message) => {
            println!("PASS: {message}");
            progress::record_pass(&progress::key(number, stretch))?;
            Ok(0)
        }
        Err(message) => {
            println!("NOT YET: {message}\n(hint: pidlab lesson hint {number}{flag})");
            Ok(1)
        }
    }
}

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
            print!("{}", render(find(number)?.text, crate::output::colour()));
            Ok(0)
        }
        LessonCommand::Hint { number, level, stretch } => {
            let lesson = find(number)?;
            let hints = match stretch {
                true => stretch_of(lesson)?.hints,
                false => lesson.hints,
            };
            let shown = level.clamp(1, hints.len() as u32) as usize;
            for (i, hint) in hints.iter().take(shown).enumerate() {
                println!("hint {}/{}: {hint}", i + 1, hints.len());
            }
            if shown < hints.len() {
                let flag = if stretch { " --stretch" } else { "" };
                println!("(more: pidlab lesson hint {number} {}{flag})", shown + 1);
            }
            Ok(0)
        }
        LessonCommand::Check { number, file, stretch } => check(number, &file, stretch),
        LessonCommand::Status { format } => {
            progress::status(&exercises(), format == Format::Json)?;
            Ok(0)
        }
        LessonCommand::Reset => {
            progress::reset()?;
            Ok(0)
        }
        LessonCommand::Guide => {
            print!("{}", render(GUIDE, nix::unistd::isatty(std::io::stdout()).unwrap_or(false)));
            Ok(0)
        }
        LessonCommand::Export { dir } => {
            export(&dir)?;
            Ok(0)
        }
    }
}

/// Write each lesson (as `lesson show` prints it), its starter file and its
/// reference solution to `DIR/lessons/NN-slug/`, the paths the lessons'
/// commands use, so that they work from DIR; and the facts they cite,
/// `DIR/lessons/FACTS.md`. An existing lesson or starter file is left
/// alone: it may hold an attendee's work.
fn export(dir: &Path) -> Result<()> {
    let facts = dir.join("lessons/FACTS.md");
    for lesson in LESSONS {
        let to = dir.join("lessons").join(lesson.slug);
        std::fs::create_dir_all(&to).with_context(|| format!("create {}", to.display()))?;
        let readme = render(lesson.text, false);
        let files = std::iter::once(("README.txt", readme.as_str())).chain(lesson.starter);
        for (name, text) in files {
            let path = to.join(name);
            if path.exists() {
                println!("kept {} (already there)", path.display());
                continue;
            }
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        for (name, text) in lesson.more_solutions {
            let path = to.join("solution").join(name);
            std::fs::create_dir_all(to.join("solution"))
                .with_context(|| format!("create {}", to.display()))?;
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        if let Some(stretch) = &lesson.stretch {
            let path = to.join(STRETCH_FILE);
            if path.exists() {
                println!("kept {} (already there)", path.display());
            } else {
                std::fs::write(&path, stretch.starter)
                    .with_context(|| format!("write {}", path.display()))?;
                println!("wrote {}", path.display());
            }
            let path = to.join("solution").join(STRETCH_FILE);
            std::fs::create_dir_all(to.join("solution"))
                .with_context(|| format!("create {}", to.display()))?;
            std::fs::write(&path, stretch.solution).with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
        if let (Some((name, _)), Some(text)) = (lesson.starter, lesson.solution) {
            let path = to.join("solution").join(name);
            std::fs::create_dir_all(to.join("solution"))
                .with_context(|| format!("create {}", to.display()))?;
            std::fs::write(&path, text).with_context(|| format!("write {}", path.display()))?;
            println!("wrote {}", path.display());
        }
    }
    std::fs::write(&facts, FACTS).with_context(|| format!("write {}", facts.display()))?;
    println!("wrote {}", facts.display());
    Ok(())
}

/// Print a lesson for a terminal: transcript blocks indented, commands in
/// bold when the output is a terminal. The test matchers are for
/// `cargo test`, not for people: `[..]` is shown as `…`, and a `~ REGEX`
/// line as the text it matches, `…` for the parts that vary.
fn render(text: &str, colour: bool) -> String {
    let mut out = String::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            if let Some(command) = line.strip_prefix("$ ") {
                match colour {
                    true => out.push_str(&format!("    \x1b[1m$ {command}\x1b[0m\n")),
                    false => out.push_str(&format!("    $ {command}\n")),
                }
                continue;
            }
            let shown = match line.strip_prefix("~ ") {
                Some(pattern) => readable(pattern),
                None => line.replace("[..]", "…"),
            };
            out.push_str(&format!("    {shown}\n"));
        } else if colour && line.starts_with('#') {
            out.push_str(&format!("\x1b[1;4m{}\x1b[0m\n", line.trim_start_matches('#').trim()));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What a transcript's regular expression matches, for a reader: literal
/// text as is, `…` for anything that varies (`.`, a class such as
/// `[0-9]`), one space for a run of spaces, "a or b" for `(a|b)`.
fn readable(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        let varies = match c {
            '\\' => {
                out.extend(chars.next());
                false
            }
            '[' => {
                let class: String = chars.by_ref().take_while(|&c| c != ']').collect();
                if class.trim().is_empty() {
                    out.push(' ');
                    false
                } else {
                    true
                }
            }
            '.' => true,
            '^' | '$' => false,
            '|' => {
                out.push_str(" or ");
                false
            }
            _ => {
                out.push(c);
                false
            }
        };
        // A quantifier repeats what came before: shown once.
        match chars.peek() {
            Some('+' | '*' | '?') => {
                chars.next();
            }
            Some('{') => while chars.next().is_some_and(|c| c != '}') {},
            _ => {}
        }
        if varies && !out.ends_with('…') {
            out.push('…');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_are_shown_as_what_they_match() {
        assert_eq!(readable("/proc/self: [0-9]{3,}"), "/proc/self: …");
        assert_eq!(readable("  [0-9]+/1 +S pidlab:nest-1 .*"), "  …/1 S pidlab:nest-1 …");
        assert_eq!(readable("[ ]*0[ ]+[0-9]+[ ]+1"), " 0 … 1");
        assert_eq!(
            readable("sh: 1: cannot create x: (Read-only file system|Permission denied)"),
            "sh: 1: cannot create x: (Read-only file system or Permission denied)"
        );
        assert_eq!(readable(r"by pidlab [0-9]+ \(host\)"), "by pidlab … (host)");
        let shown = render("```transcript\n$ a [..] b\n  x [..] y\n~ n: [0-9]+\n```\n", false);
        assert_eq!(shown, "    $ a [..] b\n      x … y\n    n: …\n");
    }
}
