//! The state directory as a hostile user and an impatient attendee try it
//! (issue 14): state no other user can touch, no PID 1 that escapes its
//! record, no race on a name, no record that outlives its creator, no
//! tracefs instance that outlives its tracer.
//!
//! Each test has a private state directory (`Lab`), kills only the
//! processes it started, and gives every sandbox's workload a command line
//! of its own (`sleep MARKER`) so that it can prove none is left.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const T: Duration = Duration::from_secs(20);

/// A `sleep` argument no other test uses: the test's PID and a per-test tag.
fn marker(tag: u32) -> String {
    format!("{}{:03}", 100_000 + std::process::id() % 800_000, tag)
}

/// Host PIDs of processes whose command line is exactly `sleep MARKER`.
fn sleepers(marker: &str) -> Vec<i32> {
    let wanted = format!("sleep\0{marker}\0");
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == wanted.as_bytes()))
        .filter(|pid| !is_zombie(*pid))
        .collect()
}

/// Processes started with this lab's environment (pidlab clients, shims,
/// watchers, and a PID 1 that has not exec'd yet), zombies excluded.
fn lab_processes(lab: &Lab) -> Vec<(i32, String)> {
    let needle = format!("PIDLAB_STATE_DIR={}\0", lab.state.path().display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle.as_bytes()))
        })
        .filter(|pid| !is_zombie(*pid))
        .map(|pid| (pid, comm(pid)))
        .collect()
}

fn sigkill(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

fn ps_rows(lab: &Lab) -> Vec<serde_json::Value> {
    let out = lab.ok(&["ps", "-a", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&out).expect("ps --format json parses");
    rows.as_array().expect("an array").clone()
}

fn record(lab: &Lab, name: &str) -> serde_json::Value {
    let path = lab.state.path().join(name).join("sandbox.json");
    serde_json::from_slice(&std::fs::read(&path).expect("read sandbox.json")).expect("parse sandbox.json")
}

/// A throw-away user, removed (with whatever pidlab left in /tmp for it)
/// when dropped, even if the test fails half-way.
struct TempUser {
    name: String,
    uid: u32,
}

impl TempUser {
    fn new() -> TempUser {
        require("/usr/sbin/useradd", "apt-get install passwd");
        assert!(nix::unistd::geteuid().is_root(), "creating a user needs root");
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("plv{}x{n}", std::process::id());
        let out = Command::new("/usr/sbin/useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name])
            .output()
            .expect("run useradd");
        assert!(out.status.success(), "useradd {name}: {}", String::from_utf8_lossy(&out.stderr));
        let id = Command::new("id").args(["-u", &name]).output().expect("run id");
        let uid = String::from_utf8_lossy(&id.stdout).trim().parse().expect("a uid");
        TempUser { name, uid }
    }

    /// `setpriv` to this user (or to `nobody`), with a bare environment.
    fn command(uid: u32, program: &Path, args: &[&str]) -> Command {
        require("/usr/bin/setpriv", "apt-get install util-linux");
        let mut cmd = Command::new("/usr/bin/setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"))
            .args(["--clear-groups", "--"])
            .arg(program)
            .args(args);
        cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("HOME", "/");
        cmd
    }

    fn state_dir(&self) -> PathBuf {
        PathBuf::from(format!("/tmp/pidlab-{}", self.uid))
    }
}

impl Drop for TempUser {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.state_dir());
        let _ = Command::new("/usr/sbin/userdel").arg(&self.name).output();
    }
}

/// A process started by the test, SIGKILLed and reaped when dropped.
struct Owned(std::process::Child);

impl Drop for Owned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Field 22 of /proc/PID/stat (start time in clock ticks).
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    stat.rsplit_once(") ").unwrap().1.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// Another user (`nobody`) owns the victim's state directory, as `/tmp` lets
/// anyone do: it plants a symbolic link where pidlab writes a temporary
/// file and a forged record pointing at a process of the victim's. The
/// victim's `pidlab stop` and `kill` must refuse (125), naming the
/// directory and the fix, and change nothing.
#[test]
fn another_users_state_directory_is_refused() {
    let victim = TempUser::new();
    let binary = ForNobody::new(&[]);
    let home = tempfile::Builder::new().prefix("pidlab-test-victim-").tempdir().unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    nix::unistd::chown(home.path(), Some(victim.uid.into()), Some(victim.uid.into())).unwrap();
    let precious = home.path().join("precious.txt");
    std::fs::write(&precious, "precious\n").unwrap();
    nix::unistd::chown(&precious, Some(victim.uid.into()), Some(victim.uid.into())).unwrap();

    // A process of the victim's that pidlab must never touch.
    let sleep = Owned(
        TempUser::command(victim.uid, Path::new("/bin/sleep"), &[&marker(1)]).spawn().expect("start sleep"),
    );
    let pid = sleep.0.id();
    let start = start_time(pid);

    // The attacker, a real other user.
    let state = victim.state_dir();
    let forged = format!(
        r#"{{"name":"web","pid1":{{"pid":{pid},"start":{start}}},"supervisor":{{"pid":{pid},"start":{start}}},"detached":true,"argv":["sleep"],"stop_signal":"SIGTERM","stop_timeout":0.0,"nest":1}}"#
    );
    let plant = format!(
        "mkdir -m 777 {s} && mkdir -m 777 {s}/web && ln -s {p} {s}/web/stopping.tmp && ln -s {p} {s}/web/exit.tmp \
         && printf '%s' '{forged}' > {s}/web/sandbox.json",
        s = state.display(),
        p = precious.display()
    );
    let out = TempUser::command(65534, Path::new("/bin/sh"), &["-c", &plant]).output().unwrap();
    assert!(out.status.success(), "the attacker's setup: {}", String::from_utf8_lossy(&out.stderr));

    for verb in [&["stop", "-t", "0", "web"][..], &["kill", "web"], &["rm", "-f", "web"], &["ps"]] {
        let cmd = TempUser::command(victim.uid, &binary.bin(), verb);
        let out = run_within(cmd, T);
        assert_eq!(out.code(), 125, "pidlab {verb:?} as the victim: {out:?}");
        assert!(
            out.stderr.contains(&state.display().to_string()) && out.stderr.contains("PIDLAB_STATE_DIR"),
            "the message names the directory and the fix: {out:?}"
        );
        assert_eq!(std::fs::read_to_string(&precious).unwrap(), "precious\n", "after {verb:?}");
        assert!(Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid as i32), "after {verb:?}");
    }
    assert!(state.join("web/sandbox.json").exists(), "the victim's pidlab removed nothing");
}

/// Empty PIDLAB_STATE_DIR= and XDG_RUNTIME_DIR= count as unset: state goes
/// to XDG's default, never the current directory; a missing state
/// directory is created mode 0700.
#[test]
fn empty_variables_are_unset_and_the_state_directory_is_made_private() {
    let victim = TempUser::new();
    let binary = ForNobody::new(&[]);
    let cwd = tempfile::Builder::new().prefix("pidlab-test-cwd-").tempdir().unwrap();
    nix::unistd::chown(cwd.path(), Some(victim.uid.into()), Some(victim.uid.into())).unwrap();
    let mut cmd =
        TempUser::command(victim.uid, &binary.bin(), &["run", "--rootless", "--name", "e", "--", "true"]);
    cmd.env("PIDLAB_STATE_DIR", "").env("XDG_RUNTIME_DIR", "").current_dir(cwd.path());
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 0, "{out:?}");
    assert!(
        entries(cwd.path()).is_empty(),
        "state written to the current directory: {:?}",
        entries(cwd.path())
    );
    let meta = std::fs::symlink_metadata(victim.state_dir()).expect("the state directory was made");
    assert_eq!(meta.mode() & 0o7777, 0o700, "mode {:o}", meta.mode());
    assert_eq!(meta.uid(), victim.uid);
}

/// A symbolic link as the state directory is refused, even to a directory
/// of the caller's own.
#[test]
fn a_symlinked_state_directory_is_refused() {
    let lab = Lab::new();
    let link = lab.data.path().join("link");
    std::os::unix::fs::symlink(lab.state.path(), &link).unwrap();
    let mut cmd = pidlab(["run", "--name", "s", "--", "true"]);
    cmd.env("PIDLAB_STATE_DIR", &link);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 125, "{out:?}");
    assert!(
        out.stderr.contains(&link.display().to_string()) && out.stderr.contains("symbolic link"),
        "{out:?}"
    );
    assert!(sandboxes_in(lab.state.path()).is_empty());
}

/// pidlab makes its state directory, never the directories above it: a
/// mistyped PIDLAB_STATE_DIR leaves no trail of directories behind.
#[test]
fn the_state_directory_is_made_but_never_its_parents() {
    let lab = Lab::new();
    let deep = lab.data.path().join("typo/state");
    let mut cmd = pidlab(["run", "--", "true"]);
    cmd.env("PIDLAB_STATE_DIR", &deep);
    let out = run_within(cmd, T);
    assert_eq!(out.code(), 125, "{out:?}");
    let parent = lab.data.path().join("typo");
    assert!(out.stderr.contains(&format!("{} does not exist", parent.display())), "{out:?}");
    assert!(!parent.exists(), "pidlab made {}", parent.display());
    let shallow = lab.data.path().join("state");
    let mut cmd = pidlab(["run", "--", "true"]);
    cmd.env("PIDLAB_STATE_DIR", &shallow);
    assert_eq!(run_within(cmd, T).code(), 0);
    assert_eq!(std::fs::metadata(&shallow).unwrap().mode() & 0o7777, 0o700);
}

/// setpriv, gosu and su-exec entrypoints change credentials, and the kernel
/// then clears PR_SET_PDEATHSIG: PID 1 must still die with its supervisor.
#[test]
fn pid1_dies_with_its_foreground_run_after_a_credential_change() {
    let lab = Lab::new();
    let m = marker(2);
    let mut run = Running::start(&mut lab.cmd(&[
        "run",
        "--name",
        "g",
        "--",
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sleep",
        &m,
    ]));
    let sleep = *chain_until(run.pid(), "sleep", T).last().unwrap();
    let sleep_fd = pidfd_open(Pid::from_raw(sleep));
    sigkill(run.pid());
    wait_exit(&mut run.child, T);
    let outlived = !exits_within(&sleep_fd, Duration::from_secs(5));
    if outlived {
        sigkill(sleep);
    }
    assert!(!outlived, "PID 1 (host PID {sleep}) outlived its SIGKILLed pidlab run");
    assert!(ps_rows(&lab).is_empty(), "the record went with it");
    lab.finish();
}

/// `run -d --name NAME` of a `sleep` that drops to `nobody` first (a
/// credential change clears PR_SET_PDEATHSIG), once it is sleeping: its
/// PID 1 and its shim, by host PID.
fn detached_sleep_as_nobody(lab: &Lab, name: &str, mark: u32) -> (i32, i32) {
    let m = marker(mark);
    let setpriv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sleep", &m];
    lab.ok(&[&["run", "-d", "--name", name, "--"][..], &setpriv].concat());
    let rec = record(lab, name);
    let (pid1, shim) =
        (rec["pid1"]["pid"].as_i64().unwrap() as i32, rec["supervisor"]["pid"].as_i64().unwrap() as i32);
    wait_until(T, "PID 1 execs sleep", || comm(pid1) == "sleep");
    (pid1, shim)
}

#[test]
fn pid1_dies_with_its_shim_after_a_credential_change() {
    let lab = Lab::new();
    let (pid1, shim) = detached_sleep_as_nobody(&lab, "g", 3);
    let pid1_fd = pidfd_open(Pid::from_raw(pid1));
    sigkill(shim);
    let outlived = !exits_within(&pid1_fd, Duration::from_secs(5));
    if outlived {
        sigkill(pid1);
    }
    assert!(!outlived, "PID 1 (host PID {pid1}) outlived its SIGKILLed shim");
    lab.finish();
}

/// With the supervisor and its watcher both gone, PID 1 is still found,
/// shown, and can be removed: `rm -f` really kills it.
#[test]
fn a_sandbox_whose_supervisor_is_gone_is_shown_and_removable() {
    let lab = Lab::new();
    let (pid1, shim) = detached_sleep_as_nobody(&lab, "o", 4);
    let pid1_fd = pidfd_open(Pid::from_raw(pid1));
    // The shim and everything of pidlab's it started, except PID 1.
    let listed = std::fs::read_to_string(format!("/proc/{shim}/task/{shim}/children")).unwrap();
    let helpers: Vec<i32> =
        listed.split_whitespace().map(|p| p.parse().unwrap()).filter(|p| *p != pid1).collect();
    let known = |p: i32| ["pidlab:watch", "pidlab:log"].contains(&comm(p).as_str());
    assert!(helpers.iter().all(|p| known(*p)), "the shim's other children: {helpers:?}");
    for helper in helpers {
        sigkill(helper);
    }
    let shim_fd = pidfd_open(Pid::from_raw(shim));
    sigkill(shim);
    assert!(exits_within(&shim_fd, T));
    if exits_within(&pid1_fd, Duration::ZERO) {
        panic!("PID 1 died with its supervisor even without a watcher; nothing to show");
    }
    let rows = ps_rows(&lab);
    let cleanup = || sigkill(pid1);
    if rows.len() != 1 || rows[0]["state"] != "orphaned" {
        cleanup();
        panic!("ps: {rows:?}");
    }
    let inspect = lab.run(&["inspect", "o"]);
    let rm = lab.run(&["rm", "-f", "o"]);
    let killed = exits_within(&pid1_fd, Duration::from_secs(5));
    if !killed {
        cleanup();
    }
    assert_eq!(inspect.code(), 0, "{inspect:?}");
    assert_eq!(rm.code(), 0, "{rm:?}");
    assert!(killed, "rm -f left PID 1 running");
    assert!(sleepers(&marker(4)).is_empty());
    lab.finish();
}

/// After a SIGKILLed `run --name same`, 20 parallel `run -d --name same`
/// start exactly one sandbox; 30 rounds.
#[test]
fn twenty_parallel_claims_of_a_stale_name_start_one_sandbox() {
    let lab = Lab::new();
    let m = marker(5);
    let rounds: usize = std::env::var("PIDLAB_RACE_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let began = Instant::now();
    for round in 0..rounds {
        let mut fg = Running::start(&mut lab.cmd(&["run", "--name", "same", "--", "sleep", &m]));
        let sleep = *chain_until(fg.pid(), "sleep", T).last().unwrap();
        let sleep_fd = pidfd_open(Pid::from_raw(sleep));
        sigkill(fg.pid());
        wait_exit(&mut fg.child, T);
        assert!(exits_within(&sleep_fd, T), "round {round}: PID 1 died with its pidlab");
        drop(fg);

        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..20)
                .map(|_| {
                    let cmd = lab.cmd(&["run", "-d", "--name", "same", "--", "sleep", &m]);
                    scope.spawn(move || run_within(cmd, T))
                })
                .collect();
            runs.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let winners = outcomes.iter().filter(|o| o.code() == 0).count();
        let started = sleepers(&m).len();
        if !ps_rows(&lab).is_empty() {
            lab.ok(&["rm", "-f", "same"]);
        }
        let deadline = Instant::now() + T;
        while !sleepers(&m).is_empty() && Instant::now() < deadline {
            std::thread::yield_now();
        }
        let survivors = sleepers(&m);
        survivors.iter().for_each(|p| sigkill(*p));
        assert!(survivors.is_empty(), "round {round}: rm -f left sandboxes running: {survivors:?}");
        assert_eq!((winners, started), (1, 1), "round {round}: winners, sandboxes: {outcomes:#?}");
        for loser in outcomes.iter().filter(|o| o.code() != 0) {
            assert_eq!(loser.code(), 125, "round {round}: {loser:?}");
            assert!(loser.stderr.contains("is taken"), "round {round}: {loser:?}");
        }
    }
    println!("name race: {rounds} rounds of 20 in {:.1} s", began.elapsed().as_secs_f64());
    lab.finish();
}

/// 200 `run --name` (foreground and -d, in turns) SIGKILLed at a random
/// moment of their start-up; then one `ps` shows no `starting` record and
/// no dead one (a -d sandbox whose client was killed runs on), and once
/// the running ones are removed, no process is left.
#[test]
fn sigkill_during_start_up_leaves_no_starting_record() {
    let lab = Lab::new();
    let m = marker(6);
    let kills: usize = std::env::var("PIDLAB_KILL_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
    // A small xorshift generator, seeded from the clock: random kill moments.
    let mut seed =
        Instant::now().elapsed().as_nanos() as u64 ^ std::process::id() as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let began = Instant::now();
    for i in 0..kills {
        let name = format!("k{i}");
        let mut args = vec!["run"];
        if i % 2 == 1 {
            args.push("-d");
        }
        args.extend(["--name", &name, "--", "sleep", &m]);
        let mut child = lab
            .cmd(&args)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pidlab");
        // Not a wait for readiness: the random moment of the SIGKILL,
        // spread over a start-up (a few ms with the debug build).
        std::thread::sleep(Duration::from_micros(next() % 8000));
        let _ = child.kill();
        let _ = child.wait();
    }
    let killing = began.elapsed();
    // Shims whose client was killed finish starting their sandbox: wait
    // until no pidlab of this lab is still before its exec or its rename.
    wait_until(T, "start-ups to finish", || lab_processes(&lab).iter().all(|(_, c)| c != "pidlab"));
    let rows = ps_rows(&lab);
    let states: Vec<String> = rows.iter().map(|r| r["state"].as_str().unwrap_or("").to_string()).collect();
    for row in &rows {
        lab.ok(&["rm", "-f", row["name"].as_str().unwrap()]);
    }
    wait_until(T, "every sandbox gone", || sleepers(&m).is_empty() && lab_processes(&lab).is_empty());
    println!(
        "{kills} SIGKILLs in {:.1} s; ps then listed {} sandbox(es): {} running",
        killing.as_secs_f64(),
        rows.len(),
        states.iter().filter(|s| *s == "running").count()
    );
    assert!(states.iter().all(|s| s == "running"), "states after the kills: {states:?}");
    assert!(sandboxes_in(lab.state.path()).is_empty());
    lab.finish();
}

/// Run `script` with tracefs's `instances` directory as its working
/// directory: tracefs mounted in a mount namespace of a shell's own (the
/// host's mount table is untouched). Instances are the kernel's, the same
/// through every mount. Returns the script's stdout.
fn in_instances(script: &str) -> String {
    require("/usr/bin/unshare", "apt-get install util-linux");
    let dir = private_tmp();
    let full = format!("mount -t tracefs tracefs \"$1\" && cd \"$1/instances\" && {{ {script}; }}");
    let out = Command::new("/usr/bin/unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &full, "sh"])
        .arg(dir.path())
        .output()
        .expect("run unshare");
    assert!(out.status.success(), "tracefs ({script}): {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A SIGKILLed `pidlab trace` leaves its tracefs instance (tracing on, its
/// buffers allocated); the next `trace` removes it, and also one whose
/// owner's PID now belongs to another process.
#[test]
fn the_next_trace_removes_a_killed_traces_instance() {
    assert!(nix::unistd::geteuid().is_root(), "tracefs needs root");
    let lab = Lab::new();
    let m = marker(7);
    lab.ok(&["run", "-d", "--name", "traced", "--", "sleep", &m]);
    // Instances named after a live process that is not a tracer: what a
    // killed tracer's instance looks like once its PID has been reused.
    let reused = Owned(Command::new("sleep").arg("60").spawn().unwrap());
    let fakes = [format!("pidlab-{}", reused.0.id()), format!("pidlab-{}-1", reused.0.id())];
    in_instances(&format!("mkdir {} {}", fakes[0], fakes[1]));
    let remove_all = |names: &[String]| {
        in_instances(&format!("rmdir {} 2>/dev/null; true", names.join(" ")));
    };

    let mut first = Running::start(&mut lab.cmd(&["trace", "traced"]));
    first.expect_line("tracing", T);
    let prefix = format!("pidlab-{}", first.pid());
    let listed = in_instances("ls");
    let mine: Vec<String> = listed
        .lines()
        .filter(|n| *n == prefix || n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect();
    assert_eq!(mine.len(), 1, "one instance for the first trace: {listed}");
    sigkill(first.pid());
    wait_exit(&mut first.child, T);
    drop(first);
    assert!(in_instances("ls").lines().any(|n| n == mine[0]), "SIGKILL left the instance behind");

    let mut second = Running::start(&mut lab.cmd(&["trace", "traced"]));
    second.expect_line("tracing", T);
    let listed = in_instances("ls");
    let _ = kill(Pid::from_raw(second.pid()), Signal::SIGTERM);
    let out = second.finish(T);
    let everything = [mine.clone(), fakes.to_vec()].concat();
    let left: Vec<&String> = everything.iter().filter(|n| listed.lines().any(|l| l == n.as_str())).collect();
    remove_all(&everything);
    assert!(left.is_empty(), "instances left after the next trace: {left:?}; {out:?}");
    lab.finish();
}
