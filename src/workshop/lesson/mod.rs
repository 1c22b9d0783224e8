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

mod catalog;
mod check;
mod exercises;
mod progress;

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::cli::{Format, LessonArgs, LessonCommand};
use crate::exit_code::{Exit, SETUP_FAILED};
use catalog::{FACTS, GUIDE, LESSONS, Lesson, STRETCH_FILE, Stretch};

/// The lesson other than `number` whose directory `file` is in, if any:
/// checking lesson 4's script as lesson 5 is a mix-up, not a wrong answer.
fn other_lesson(number: u32, file: &Path) -> Option<&'static Lesson> {
    let in_dir = |slug: &str| file.components().any(|c| c.as_os_str() == slug);
    LESSONS
        .iter()
        .find(|l| l.number != number && (l.starter.is_some() || l.stretch.is_some()) && in_dir(l.slug))
}

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
        for (name, text) in lesson.tools {
            let path = to.join(name);
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
