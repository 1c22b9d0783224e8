//! The checks of the exercises that build something: 17 (an init of
//! your own, in C or Rust) and 19 (a sandbox from system calls).

use std::path::Path;

use anyhow::{Context, Result};

use super::{indent, usage, zombies_left};
use crate::workshop::lesson::check::{Bench, Verdict};

/// Lesson 17: the attendee's own init (C or Rust), run as PID 1 by
/// `--init=PATH`: it relays the child's status, reaps orphans, and
/// forwards the stop signal.
pub fn check_17(file: &Path) -> Result<Verdict> {
    let bench = Bench::new()?;
    let init = bench.data.path().join("init");
    if let Err(failed) = build(&bench, file, &init, "17", "lessons/17-write-an-init/init.c")? {
        return Ok(Err(failed));
    }
    let lesson = format!("{}:/lesson", bench.data.path().display());
    // 1. The child's status, relayed: an exit code, and 128+N for a signal.
    for (child, want) in [("exit 3", 3), ("kill -TERM $$", 143)] {
        let ran = bench.pidlab(&["run", "-v", &lesson, "--init=/lesson/init", "--", "sh", "-c", child])?;
        if ran.timed_out() {
            return Ok(Err(format!(
                "with `sh -c '{child}'` as its child, your init was still running 15 s later: it must exit when \
                 its child has exited."
            )));
        }
        if ran.code() != want {
            return Ok(Err(format!(
                "with `sh -c '{child}'` as its child, your init exited with {}; the child's status calls for {want} \
                 (an exit code as it is, 128+N for death by signal N).{}",
                ran.code(),
                if ran.text().is_empty() {
                    String::new()
                } else {
                    format!(" The output:\n{}", indent(&ran.text()))
                }
            )));
        }
    }
    // 2. Orphans reaped, 3. the stop signal forwarded.
    let start = bench.pidlab(&[
        "run",
        "-d",
        "--name",
        "ex17",
        "-v",
        &lesson,
        "--init=/lesson/init",
        "--",
        "pidlab",
        "probe",
        "--on-term-save",
        "/tmp/state",
        "--orphans",
        "5",
        "--orphan-life",
        "0",
    ])?;
    if !start.success() {
        return Ok(Err(format!("the sandbox did not start (exit code {}): {}", start.code(), start.text())));
    }
    if !bench.ready("ex17")? {
        return Ok(Err(format!(
            "the probe, your init's child, never said `probe: ready`. The output:\n{}",
            indent(&bench.logs("ex17")?)
        )));
    }
    let (zombies, _) = zombies_left(&bench, "ex17")?;
    if zombies > 0 {
        return Ok(Err(format!(
            "{zombies} zombies are left 2 s after the probe made its orphans: they were handed to your init \
             (PID 1), which must reap every child, not only the one it started: waitpid(-1, ...)."
        )));
    }
    let stop = bench.pidlab(&["stop", "-t", "2", "ex17"])?.text();
    let logs = bench.logs("ex17")?;
    if !logs.contains("saved state to") {
        return Ok(Err(format!(
            "the probe never received SIGTERM: `pidlab stop -t 2` said: {stop}. SIGTERM was sent to your init, \
             PID 1, which must pass it on; a PID 1 with no handler never even receives it (lesson 04) unless it \
             blocks it and collects it (sigwait/sigtimedwait)."
        )));
    }
    if !stop.contains("(exit code 0)") {
        return Ok(Err(format!(
            "the probe saved its state and exited 0, but the sandbox ended otherwise: `pidlab stop -t 2` said: {stop}"
        )));
    }
    Ok(Ok(format!(
        "your init relayed exit code 3 and death by SIGTERM (143), reaped the probe's orphans, and forwarded \
         SIGTERM: {stop}"
    )))
}

/// Build the attendee's C file (with cc) or Rust file (with rustc, the
/// standard library only) into `out`. `Ok(Err(..))`: it does not build,
/// with the compiler's words; `Err`: no such compiler, or another kind of
/// file (a usage error).
fn build(bench: &Bench, file: &Path, out: &Path, lesson: &str, starter: &str) -> Result<Result<(), String>> {
    let (compiler, package, flags): (&str, &str, &[&str]) = match file.extension().and_then(|e| e.to_str()) {
        Some("c") => ("cc", "apt-get install gcc", &["-O2"]),
        Some("rs") => ("rustc", "rustup.rs", &["-O", "--edition", "2021"]),
        _ => {
            return Err(usage(format!(
                "{}: lesson {lesson}'s check builds a C file (.c, with cc) or a Rust file (.rs, with rustc); \
                 the starter is {starter}",
                file.display()
            )));
        }
    };
    let mut args: Vec<&std::ffi::OsStr> = flags.iter().map(std::ffi::OsStr::new).collect();
    args.extend([std::ffi::OsStr::new("-o"), out.as_os_str(), file.as_os_str()]);
    let built = bench.tool(compiler, &args, package)?;
    if !built.success() {
        return Ok(Err(format!(
            "{compiler} could not build it (exit code {}):\n{}",
            built.code(),
            indent(&built.text())
        )));
    }
    Ok(Ok(()))
}

/// Lesson 19: the attendee's own sandbox, `sandbox ROOT COMMAND...`,
/// built with cc or rustc, run (as root) on a busybox root, and verified from
/// outside while its workload runs: NSpid (a new PID namespace, the
/// workload PID 1 in it), /proc/PID/root (the root switched), its
/// mountinfo (/proc mounted inside) and the host's (nothing leaked).
pub fn check_19(file: &Path) -> Result<Verdict> {
    if !nix::unistd::geteuid().is_root() {
        return Err(usage("lesson 19's check runs your sandbox, and unshare(CLONE_NEWPID) needs root: run `pidlab lesson check 19 FILE` as root".into()));
    }
    let bench = Bench::new()?;
    let root = bench.data.path().join("root");
    for dir in ["bin", "proc"] {
        std::fs::create_dir_all(root.join(dir))
            .with_context(|| format!("create {}", root.join(dir).display()))?;
    }
    if std::fs::copy("/bin/busybox", root.join("bin/busybox")).is_err() {
        return Err(usage(
            "lesson 19's check builds its root from /bin/busybox: apt-get install busybox-static".into(),
        ));
    }
    let sandbox = bench.data.path().join("sandbox");
    if let Err(failed) = build(&bench, file, &sandbox, "19", "lessons/19-build-a-sandbox/sandbox.c")? {
        return Ok(Err(failed));
    }
    let running = Background::start(&sandbox, &root)?;
    let Some(workload) = running.find_workload()? else {
        return Ok(Err(format!(
            "no `/bin/busybox sleep` started within 5 s under your sandbox. Its output:\n{}",
            indent(&running.output())
        )));
    };
    let nspid: Vec<String> = crate::procfs::Status::of(workload)
        .map(|status| status.nspid.iter().map(i32::to_string).collect())
        .unwrap_or_default();
    if nspid.len() < 2 {
        return Ok(Err(format!(
            "the workload (host PID {workload}) is in the host's PID namespace only (NSpid: {}). \
             unshare(CLONE_NEWPID) moves only the caller's children: fork after it, and exec in the child \
             (lesson 02).",
            nspid.join(" ")
        )));
    }
    if nspid.last().map(String::as_str) != Some("1") {
        return Ok(Err(format!(
            "the workload is in a new PID namespace but is not its PID 1 (NSpid: {}): exec it in the first child.",
            nspid.join(" ")
        )));
    }
    let seen_root = std::fs::read_link(format!("/proc/{workload}/root")).unwrap_or_default();
    if seen_root != root {
        return Ok(Err(format!(
            "the workload's root is {}, not ROOT ({}): chroot(ROOT) (and chdir(\"/\")) in the child before exec.",
            seen_root.display(),
            root.display()
        )));
    }
    // The namespace the program was started in: its parent shell's (see
    // `Background::start`).
    let started = running.child.id();
    let theirs = std::fs::read_link(format!("/proc/{started}/ns/mnt")).unwrap_or_default();
    if std::fs::read_link(format!("/proc/{workload}/ns/mnt")).unwrap_or_default() == theirs {
        return Ok(Err(
            "the workload shares the mount namespace your program was started in (the host's, outside this \
             check): unshare CLONE_NEWNS too, or its /proc mount is the host's."
                .into(),
        ));
    }
    let mounts = std::fs::read_to_string(format!("/proc/{workload}/mountinfo")).unwrap_or_default();
    let has_proc = mounts.lines().any(|l| {
        let fields: Vec<&str> = l.split(' ').collect();
        fields.get(4) == Some(&"/proc") && l.split(" - ").nth(1).is_some_and(|t| t.starts_with("proc "))
    });
    if !has_proc {
        return Ok(Err(
            "the workload sees no proc file system on /proc: mount(\"proc\", \"/proc\", \"proc\", 0, NULL) in the \
             child, after chroot (a /proc mounted by a process inside the new PID namespace shows that namespace)."
                .into(),
        ));
    }
    // A proc file system shows the PID namespace of the process that
    // mounted it: read through the workload's own root, its /proc must
    // have the workload as PID 1. (Mounted by the parent, which
    // unshare(CLONE_NEWPID) does not move, it shows the host's processes.)
    let ns = |path: String| std::fs::read_link(path).ok();
    let inner = ns(format!("/proc/{workload}/root/proc/1/ns/pid"));
    if inner.is_none() || inner != ns(format!("/proc/{workload}/ns/pid")) {
        let shown = std::fs::read_to_string(format!("/proc/{workload}/root/proc/1/comm")).unwrap_or_default();
        return Ok(Err(format!(
            "the /proc the workload sees shows another PID namespace's processes (its PID 1 is {:?}, not your \
             workload): it was mounted by a process outside the new PID namespace. Mount it in the child, the \
             new namespace's PID 1, after chroot.",
            shown.trim()
        )));
    }
    let outside = std::fs::read_to_string(format!("/proc/{started}/mountinfo")).unwrap_or_default();
    if outside.contains(&format!(" {} ", root.join("proc").display())) {
        return Ok(Err(format!(
            "the /proc mount leaked out: it appears at {} in the mount namespace your program was started in \
             (on a host with shared mounts, as systemd makes them, that is the host's). Make / private \
             (mount(NULL, \"/\", NULL, MS_REC | MS_PRIVATE, NULL)) in the child before mounting.",
            root.join("proc").display()
        )));
    }
    Ok(Ok(format!(
        "seen from outside: the workload is PID 1 of a new PID namespace (NSpid {}), its root is ROOT, its own \
         /proc is mounted, and nothing leaked out of its mount namespace.",
        nspid.join("/")
    )))
}

/// The attendee's sandbox running `/bin/busybox sleep 30` in its own
/// process group and a mount namespace of the check's, SIGKILLed (the whole group, then waited for) when
/// dropped. Its output goes to an anonymous file.
struct Background {
    child: std::process::Child,
    output: std::fs::File,
}

impl Background {
    fn start(sandbox: &Path, root: &Path) -> Result<Background> {
        use std::os::unix::process::CommandExt;
        let output = tempfile::tempfile().context("a file for the output")?;
        // The attendee's program runs as root: it starts in a mount
        // namespace of the check's own, whose mounts are shared among
        // themselves but not with the host's (private first, to cut any
        // peer group with the host, then shared again). Whatever it mounts
        // or makes private stays there, and a /proc mount that was not
        // kept from propagating shows up in that namespace: the check
        // looks there, and the host's mount table is never touched. The
        // shell stays, as the program's parent, so that namespace can
        // still be read once the program has left it.
        let child = std::process::Command::new("unshare")
            .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
            .arg("mount --make-rshared / && \"$0\" \"$@\"")
            .arg(sandbox)
            .arg(root)
            .args(["/bin/busybox", "sleep", "30"])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output.try_clone()?)
            .spawn()
            .with_context(|| format!("start {}", sandbox.display()))?;
        Ok(Background { child, output })
    }

    /// The host PID of the `busybox sleep`, the sandbox itself or one of
    /// its descendants, within 5 s; `None` if none appeared (or the
    /// sandbox exited).
    fn find_workload(&self) -> Result<Option<i32>> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let mut todo = vec![self.child.id() as i32];
            while let Some(pid) = todo.pop() {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                if comm.trim() == "busybox" {
                    return Ok(Some(pid));
                }
                let children =
                    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
                todo.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
            }
            if std::time::Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn output(&self) -> String {
        use std::io::{Read, Seek};
        let mut text = String::new();
        let mut file = &self.output;
        let _ = file.rewind();
        let _ = file.read_to_string(&mut text);
        if text.trim().is_empty() { "(nothing)".into() } else { text }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}
