//! `pidlab doctor`: is this machine ready for the workshop?
//!
//! Each check really does the thing — in a child pidlab, so that a failure
//! (or a namespace) never touches this process — and prints `ok`, or the
//! error pidlab gives for it, which names the step, the errno and the fix
//! for this host (a sysctl that forbids user namespaces, a /proc covered by
//! a container runtime, ...).

use std::path::Path;
use std::process::Command;

use anyhow::Result;

use crate::cli::DoctorArgs;

/// (what is checked, pidlab's arguments, needed for the lessons?)
const CHECKS: &[(&str, &[&str], bool)] = &[
    ("PID and mount namespaces, a fresh /proc", &["run", "--", "true"], true),
    ("rootless: a user namespace mapping you to root", &["run", "--rootless", "--", "true"], true),
    ("pivot_root and detaching the old root", &["run", "--pivot-root", "--", "true"], true),
    ("nested PID namespaces (3 levels)", &["run", "--nest", "3", "--", "true"], true),
    ("tracefs, for `pidlab trace` (root only)", &["doctor", "--tracefs"], false),
];

/// Programs the lessons and the demonstration use: (path, Debian package).
const PROGRAMS: &[(&str, &str)] = &[
    ("/bin/busybox", "busybox-static"),
    ("/usr/bin/redis-server", "redis-server"),
    ("/usr/bin/redis-cli", "redis-tools"),
    ("/usr/bin/tini", "tini"),
    ("/usr/bin/unshare", "util-linux"),
];

pub fn run(args: DoctorArgs) -> Result<i32> {
    if args.tracefs {
        // The hidden half of the tracefs check, in its own process: it
        // may unshare a mount namespace to mount tracefs privately.
        // Creating an instance also removes those of tracers that are gone.
        let _instance = crate::observe::trace::Instance::create()?;
        return Ok(0);
    }
    let exe = std::env::current_exe()?;
    let state = state_dir()?;
    let mut failed = 0;
    for (what, pidlab_args, needed) in CHECKS {
        let out = Command::new(&exe).args(*pidlab_args).env("PIDLAB_STATE_DIR", state.path()).output()?;
        if out.status.success() {
            println!("ok    {what}");
            continue;
        }
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.lines().last().unwrap_or("").trim_start_matches("pidlab: ");
        if *needed {
            failed += 1;
            println!("FAIL  {what}\n      {why}");
        } else {
            println!("skip  {what}\n      {why}");
        }
    }
    drop(state);
    for (path, package) in PROGRAMS {
        if Path::new(path).exists() {
            println!("ok    {path}");
        } else {
            println!("miss  {path}: sudo apt-get install {package}");
        }
    }
    if failed == 0 {
        println!("this machine is ready");
        Ok(0)
    } else {
        println!("{failed} check(s) failed: see above for the step that failed and how to fix it");
        Ok(1)
    }
}

/// A state directory of the doctor's own, so its runs never mix with yours:
/// a fresh one with a name no other user can guess and make first (pidlab
/// would refuse theirs). Removed when dropped.
fn state_dir() -> Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new().prefix("pidlab-doctor-").tempdir()?)
}
