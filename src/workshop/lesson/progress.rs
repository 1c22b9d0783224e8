//! `pidlab lesson status` and `pidlab lesson reset`: which exercise checks
//! this user has passed, so that an attendee (and, with `--format json`,
//! a facilitator collecting a room) can see where they are.
//!
//! The record is one file, `STATE/.lessons.json`, in pidlab's state
//! directory (`/run/pidlab` for root, `$XDG_RUNTIME_DIR/pidlab` or
//! `/tmp/pidlab-UID` otherwise, `$PIDLAB_STATE_DIR` when set). Its name
//! starts with a dot, which no sandbox name may, so it never clashes with a
//! sandbox's directory. The directory is trusted on the same terms as the
//! sandbox records (see `record.rs`): created mode 0700, and refused when
//! it is a symbolic link, someone else's, or writable by others, because a
//! planted link there would redirect the write. The file itself is opened
//! with `O_NOFOLLOW` and replaced by a rename, so a reader never sees half
//! of it. `/run` is a tmpfs: progress lasts until the machine restarts,
//! which is the length of a workshop.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result};
use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};
use serde_json::{Value, json};

use crate::record;

const FILE: &str = ".lessons.json";

/// One exercise: a lesson's own (`"4"`) or its stretch (`"4-stretch"`).
pub fn key(number: u32, stretch: bool) -> String {
    match stretch {
        true => format!("{number}-stretch"),
        false => number.to_string(),
    }
}

/// The state directory, opened and checked as every state file is
/// (`record::open_state_dir`).
fn state_dir(create: bool) -> Result<Option<(PathBuf, OwnedFd)>> {
    record::open_state_dir(create)
}

/// Passed checks: exercise key -> when (seconds since the epoch).
type Passed = BTreeMap<String, f64>;

fn read(dir: &OwnedFd, path: &std::path::Path) -> Result<Passed> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match openat(dir.as_fd(), FILE, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(Passed::new()),
        Err(errno) => return Err(errno).with_context(|| format!("open {}", path.join(FILE).display())),
    };
    let mut text = String::new();
    fs::File::from(fd)
        .read_to_string(&mut text)
        .with_context(|| format!("read {}", path.join(FILE).display()))?;
    let value: Value = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not pidlab's progress record; `pidlab lesson reset` removes it",
            path.join(FILE).display()
        )
    })?;
    Ok(value["passed"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect())
}

/// Record that the check `key` passed now.
pub fn record_pass(key: &str) -> Result<()> {
    let Some((path, dir)) = state_dir(true)? else { return Ok(()) };
    let mut passed = read(&dir, &path)?;
    passed.insert(key.to_string(), record::now());
    let text = serde_json::to_vec_pretty(&json!({ "passed": passed }))?;
    // A fresh name (O_EXCL), then a rename: never a half-written record.
    let temporary = format!("{FILE}.{}", std::process::id());
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir.as_fd(), temporary.as_str(), flags, Mode::from_bits_truncate(0o600))
        .with_context(|| format!("create {}", path.join(&temporary).display()))?;
    fs::File::from(fd)
        .write_all(&text)
        .with_context(|| format!("write {}", path.join(&temporary).display()))?;
    renameat(dir.as_fd(), temporary.as_str(), dir.as_fd(), FILE)
        .with_context(|| format!("rename into {}", path.join(FILE).display()))
}

/// Every exercise with a check, as `(key, title)`, in lesson order.
pub struct Exercise {
    pub key: String,
    pub title: String,
}

/// `pidlab lesson status`.
pub fn status(exercises: &[Exercise], json: bool) -> Result<()> {
    let (where_, passed) = match state_dir(false)? {
        Some((path, dir)) => {
            let passed = read(&dir, &path)?;
            (path.join(FILE), passed)
        }
        None => (record::base().join(FILE), Passed::new()),
    };
    if json {
        let host = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
        let checks: Vec<Value> = exercises
            .iter()
            .map(|e| json!({ "exercise": e.key, "title": e.title, "passed_at": passed.get(&e.key) }))
            .collect();
        let done = exercises.iter().filter(|e| passed.contains_key(&e.key)).count();
        let report = json!({
            "host": host,
            "uid": nix::unistd::getuid().as_raw(),
            "passed": done,
            "of": exercises.len(),
            "checks": checks,
        });
        println!("{report}");
        return Ok(());
    }
    for exercise in exercises {
        let mark = if passed.contains_key(&exercise.key) { "passed " } else { "not yet" };
        println!("{mark}  {:<10} {}", exercise.key, exercise.title);
    }
    let done = exercises.iter().filter(|e| passed.contains_key(&e.key)).count();
    println!("{done} of {} checks passed (kept in {})", exercises.len(), where_.display());
    Ok(())
}

/// `pidlab lesson reset`: remove the record of passed checks, and nothing
/// else (exercise files and sandboxes are left alone).
pub fn reset() -> Result<()> {
    let Some((path, dir)) = state_dir(false)? else {
        println!(
            "nothing to forget: no progress is recorded ({} does not exist)",
            path_of_record().display()
        );
        return Ok(());
    };
    let passed = read(&dir, &path).unwrap_or_default();
    match unlinkat(dir.as_fd(), FILE, UnlinkatFlags::NoRemoveDir) {
        Ok(()) => println!(
            "removed {} (the record of {} passed check(s)); your exercise files and sandboxes are untouched",
            path.join(FILE).display(),
            passed.len()
        ),
        Err(Errno::ENOENT) => {
            println!(
                "nothing to forget: no progress is recorded ({} does not exist)",
                path.join(FILE).display()
            )
        }
        Err(errno) => return Err(errno).with_context(|| format!("remove {}", path.join(FILE).display())),
    }
    Ok(())
}

fn path_of_record() -> PathBuf {
    record::base().join(FILE)
}
