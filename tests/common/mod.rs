//! Helpers for tests that run the real `pidlab` binary.
//!
//! Tests never create namespaces in the test process (libtest is
//! multithreaded, and `unshare(CLONE_NEWUSER)` fails there): they start the
//! built binary. Every wait here has a deadline, and a `Running` sandbox that
//! is dropped is killed by PID — its PID 1 dies with it (PR_SET_PDEATHSIG).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

/// The built binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_pidlab")
}

/// `pidlab ARGS...`, with the test's environment: a test that checks what
/// pidlab leaves in TMPDIR sets a private one itself (`private_tmp`, or
/// `Lab`, whose commands have one).
pub fn pidlab<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(bin());
    cmd.args(args);
    cmd
}

/// What a finished command printed, and how it ended.
#[derive(Debug)]
pub struct Outcome {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or_else(|| panic!("pidlab itself died of a signal: {self:?}"))
    }
}

/// Run to completion, within `limit`.
pub fn run_within(mut cmd: Command, limit: Duration) -> Outcome {
    let running = Running::start(&mut cmd);
    running.finish(limit)
}

/// Run `pidlab ARGS...` to completion within 30 s.
pub fn run<I, S>(args: I) -> Outcome
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    run_within(pidlab(args), Duration::from_secs(30))
}

/// How long output may keep coming after the command itself has exited.
const OUTPUT_GRACE: Duration = Duration::from_secs(5);

/// A command running in the background, its stdout delivered line by line.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Receiver<String>,
}

impl Running {
    /// Start `cmd` as the leader of a process group of its own, so that a
    /// test that gives up on it can kill whatever it started too (a shell's
    /// children, a pidlab under a shell; sandboxes die with their pidlab).
    pub fn start(cmd: &mut Command) -> Running {
        let mut child = cmd
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (err_tx, err_rx) = channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            let _ = err_tx.send(text);
        });
        let stdin = child.stdin.take();
        Running { child, stdin, lines, seen: Vec::new(), stderr: err_rx }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Wait until a stdout line contains `needle`; return that line.
    pub fn expect_line(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => {
                    panic!("no line containing {needle:?} within {limit:?}; stdout so far: {:#?}", self.seen)
                }
            }
        }
    }

    pub fn write_stdin(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Wait for exit within `limit` (a pidfd, no polling loop), then collect
    /// the rest of the output. Panics, after killing the process, on timeout.
    pub fn finish(mut self, limit: Duration) -> Outcome {
        drop(self.stdin.take());
        let status = wait_exit(&mut self.child, limit);
        let stdout: Vec<String> = self
            .seen
            .drain(..)
            .chain(std::iter::from_fn(|| self.lines.recv_timeout(OUTPUT_GRACE).ok()))
            .collect();
        // The output ends when the last holder of the pipes exits; if some
        // process outlived the command with them open, stop waiting anyway.
        let stderr = self.stderr.recv_timeout(OUTPUT_GRACE).unwrap_or_default();
        Outcome { status, stdout: stdout.join("\n"), stderr }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // End the sandbox the way a user would: SIGKILL its PID 1 (the
            // first child of the pidlab this test started), so pidlab itself
            // exits normally and removes what it registered.
            for pid1 in children(self.pid()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid1),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            let pidfd = pidfd_open(nix::unistd::Pid::from_raw(self.pid()));
            let _ = exits_within(&pidfd, Duration::from_secs(5));
            // Still there: kill its process group; a sandbox dies with its
            // pidlab (PR_SET_PDEATHSIG).
            kill_group(&mut self.child);
        }
    }
}

/// Wait for `child` to exit within `limit`, using a pidfd.
pub fn wait_exit(child: &mut Child, limit: Duration) -> ExitStatus {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    if !exits_within(&pidfd_open(pid), limit) {
        kill_group(child);
        panic!("process {pid} did not exit within {limit:?}; killed it and its process group");
    }
    child.wait().expect("reap")
}

/// True if the process behind `pidfd` exits within `limit` (its pidfd
/// turns readable); no polling loop.
pub fn exits_within(pidfd: &std::os::fd::OwnedFd, limit: Duration) -> bool {
    let ms = limit.as_millis().min(i32::MAX as u128) as i32;
    let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
    poll(&mut fds, PollTimeout::try_from(ms).expect("timeout fits")).expect("poll pidfd") == 1
}

/// SIGKILL the process group `child` leads (see `Running::start`), and
/// `child` itself; reap it.
fn kill_group(child: &mut Child) {
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let _ = child.kill();
    let _ = child.wait();
}

pub fn pidfd_open(pid: nix::unistd::Pid) -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    // SAFETY: plain system call; on success it returns a new descriptor that
    // we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    assert!(fd >= 0, "pidfd_open({pid}): {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh descriptor owned by nobody else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) }
}

/// The children of a host process, from /proc/PID/task/*/children, except
/// pidlab's watcher (`pidlab:watch`, the supervisor's first child, no part
/// of the sandbox).
pub fn children(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(text) = std::fs::read_to_string(task.path().join("children")) {
                out.extend(text.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out.retain(|child| comm(*child) != "pidlab:watch");
    out
}

/// Follow first children down from `pid` until a process whose comm is
/// `comm` appears, within `limit`. Returns the chain, `pid` excluded.
pub fn chain_until(pid: i32, comm: &str, limit: Duration) -> Vec<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let mut chain = Vec::new();
        let mut at = pid;
        while let Some(&next) = children(at).first() {
            chain.push(next);
            at = next;
        }
        if chain.last().is_some_and(|p| self::comm(*p) == comm) {
            return chain;
        }
        assert!(
            Instant::now() < deadline,
            "no descendant of {pid} named {comm:?} within {limit:?}: {chain:?}"
        );
        std::thread::yield_now();
    }
}

pub fn comm(pid: i32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

/// A field of /proc/PID/status, e.g. "NSpid".
pub fn status_field(pid: i32, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// Lines of the test process's (= the host's) mount table.
pub fn host_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read mountinfo")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Fail, naming what is missing, unless `path` exists.
pub fn require(path: &str, how: &str) {
    assert!(Path::new(path).exists(), "this test needs {path}, which this machine lacks: {how}");
}

/// A fresh, private TMPDIR for one pidlab run.
pub fn private_tmp() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("pidlab-test-").tempdir().expect("temp dir")
}

pub fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default()
}

/// The sandboxes recorded in a state directory: every entry except `.root`,
/// the mount point all sandboxes share, which on the host must stay an
/// empty directory (each sandbox's root is mounted there in its own mount
/// namespace only).
pub fn sandboxes_in(state: &Path) -> Vec<PathBuf> {
    let (shared, sandboxes): (Vec<PathBuf>, Vec<PathBuf>) =
        entries(state).into_iter().partition(|p| p.file_name() == Some(".root".as_ref()));
    for dir in shared {
        assert!(entries(&dir).is_empty(), "the host sees files in the shared mount point {dir:?}");
    }
    sandboxes
}

/// True if `pid` is a zombie; false if it is running or already gone
/// (it may be reaped between listing and reading).
pub fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

/// A private state directory and a way to run pidlab with it.
pub struct Lab {
    pub state: tempfile::TempDir,
    pub data: tempfile::TempDir,
    /// TMPDIR for pidlab, private so a test can check pidlab writes
    /// nothing there.
    pub tmp: tempfile::TempDir,
}

impl Lab {
    pub fn new() -> Lab {
        Lab { state: private_tmp(), data: tempfile::tempdir().unwrap(), tmp: private_tmp() }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = pidlab(args);
        cmd.env("PIDLAB_STATE_DIR", self.state.path()).env("TMPDIR", self.tmp.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Outcome {
        run_within(self.cmd(args), Duration::from_secs(20))
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert_eq!(out.code(), 0, "pidlab {args:?}: {out:?}");
        out.stdout
    }

    /// `pidlab run -d ARGS...` of a probe, returning once the probe says it
    /// is ready (its handlers are installed): `run -d` returns as soon as
    /// PID 1 is exec'd, a moment before that.
    pub fn start(&self, args: &[&str]) -> String {
        let name = self.ok(args).trim().to_string();
        self.ok(&["logs", "--wait-for", "probe: ready", &name]);
        name
    }

    pub fn volume(&self) -> String {
        format!("{}:/state", self.data.path().display())
    }

    pub fn saved(&self, name: &str) -> bool {
        self.data.path().join(name).exists()
    }

    /// Remove every sandbox and check nothing is left.
    pub fn finish(self) {
        for sandbox in sandboxes_in(self.state.path()) {
            let name = sandbox.file_name().unwrap().to_string_lossy().into_owned();
            self.ok(&["rm", "-f", &name]);
        }
        assert!(sandboxes_in(self.state.path()).is_empty(), "state left behind");
    }
}

impl Drop for Lab {
    /// A test that fails half-way still removes (and kills) the sandboxes it
    /// started: only those, found in its own state directory.
    fn drop(&mut self) {
        for sandbox in sandboxes_in(self.state.path()) {
            let name = sandbox.file_name().unwrap().to_string_lossy().into_owned();
            let _ = run_within(self.cmd(&["rm", "-f", &name]), Duration::from_secs(20));
        }
    }
}

/// A copy of the pidlab binary (and, if asked, of other files) that the
/// unprivileged `nobody` user can run, wherever this checkout lives: a
/// world-readable temporary directory, removed when dropped.
pub struct ForNobody {
    pub dir: tempfile::TempDir,
}

impl ForNobody {
    pub fn new(extra: &[&str]) -> ForNobody {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("pidlab-test-nobody-").tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        copy_executable(Path::new(bin()), &dir.path().join("pidlab"));
        for path in extra {
            let from = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
            let to = dir.path().join(path);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
            let dir_of = to.parent().unwrap();
            std::fs::set_permissions(dir_of, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        ForNobody { dir }
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("pidlab")
    }

    /// `setpriv --reuid=65534 --regid=65534 --clear-groups -- PROGRAM ARGS...`
    pub fn command(program: &Path, args: &[&str]) -> Command {
        require("/usr/bin/setpriv", "apt-get install util-linux");
        assert!(nix::unistd::geteuid().is_root(), "switching to the nobody user needs root");
        let mut cmd = Command::new("/usr/bin/setpriv");
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]).arg(program).args(args);
        cmd.env("TMPDIR", "/tmp").env("HOME", "/tmp");
        cmd
    }
}

/// Wait until `ready()` holds, at most `limit`; `what` names it in the
/// failure. The one bounded wait the tests use for conditions that no
/// descriptor can signal (a process table, a directory).
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !ready() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::yield_now();
    }
}

/// Copy an executable, and wait (bounded) until it can be executed. A child
/// that another test thread forked while the copy was open for writing
/// holds that descriptor until its own exec, and until then executing the
/// copy fails with ETXTBSY ("Text file busy"); seen once in a full run.
pub fn copy_executable(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    wait_until(Duration::from_secs(10), "the copy to be executable (ETXTBSY)", || {
        Command::new(to)
            .arg("--help")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_or_else(|e| e.raw_os_error() != Some(libc::ETXTBSY), |_| true)
    });
}
