//! `-t`: a terminal of the sandbox's own, as `docker run -t` gives one.
//!
//! A pseudo-terminal is a pair: the *master*, which a terminal emulator
//! (here pidlab) reads and writes, and the *slave*, which the workload uses
//! as its terminal (pty(7)). What is typed on the master, the slave's line
//! discipline reads: it echoes it, and turns Ctrl-C into SIGINT, Ctrl-Z into
//! SIGTSTP and Ctrl-\ into SIGQUIT, sent to the terminal's *foreground
//! process group*, inside the sandbox. So job control works: a shell leads
//! a session whose controlling terminal is the slave, and moves jobs in and
//! out of the foreground.
//!
//! The pair is made inside the sandbox, from the devpts the root has (a new
//! instance, `rootfs/dev.rs`), so `tty` there names it `/dev/pts/0`. The PID 1
//! side (`attach`, step 10) opens it, sends the master to pidlab over a
//! Unix socket (SCM_RIGHTS, as runc's console socket), starts a session
//! and makes the slave its controlling terminal and its stdin, stdout and
//! stderr. pidlab's side (`Relay`) puts the host terminal in raw mode, so
//! every key goes through untouched, copies bytes both ways, passes window
//! size changes on (SIGWINCH), and restores the host terminal at the end,
//! even after an error.

use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};

use nix::fcntl::OFlag;
use nix::pty::{grantpt, posix_openpt, ptsname_r, unlockpt};
use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

use crate::runtime::step::{Doing, StepError};
use crate::sys;

/// The socket pair over which the workload sends pidlab its terminal's
/// master end: (ours, theirs).
pub fn socket() -> Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
        .context("create the console socket")
}

/// In the workload, before its exec: a pseudo-terminal from the sandbox's
/// devpts; the master goes to pidlab through `socket`; the slave becomes
/// the controlling terminal of a new session, and stdin, stdout, stderr.
pub fn attach(socket: OwnedFd) -> Result<(), StepError> {
    let master = posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY).doing(|| "open /dev/ptmx".into())?;
    grantpt(&master).doing(|| "grantpt".into())?;
    unlockpt(&master).doing(|| "unlockpt".into())?;
    let slave_path = ptsname_r(&master).doing(|| "ptsname".into())?;
    sys::send_fd(socket.as_fd(), master.as_fd()).doing(|| "send the terminal to pidlab".into())?;
    drop(master);
    drop(socket);
    // A session of its own (unless PID 1 already leads one, step 3), whose
    // controlling terminal the slave becomes.
    let me = nix::unistd::getpid();
    if nix::unistd::getsid(None).ok() != Some(me) {
        nix::unistd::setsid().doing(|| "setsid".into())?;
    }
    let slave = nix::fcntl::open(slave_path.as_str(), OFlag::O_RDWR, nix::sys::stat::Mode::empty())
        .doing(|| format!("open {slave_path}"))?;
    sys::set_controlling_terminal(slave.as_fd()).doing(|| "ioctl(TIOCSCTTY)".into())?;
    nix::unistd::dup2_stdin(&slave).doing(|| "dup2 stdin".into())?;
    nix::unistd::dup2_stdout(&slave).doing(|| "dup2 stdout".into())?;
    nix::unistd::dup2_stderr(&slave).doing(|| "dup2 stderr".into())
}

/// The host terminal in raw mode while the sandbox runs: restored when
/// dropped, on every way out.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    /// Raw mode for our stdin, if it is a terminal.
    pub fn enter() -> Option<RawMode> {
        let stdin = std::io::stdin();
        if !nix::unistd::isatty(stdin.as_fd()).unwrap_or(false) {
            return None;
        }
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// pidlab's end: the master, and whether to forward our stdin (`-i`).
pub struct Relay {
    pub master: Option<OwnedFd>,
    pub forward_input: bool,
    /// Our stdin has ended: ^D was sent once.
    input_done: bool,
    _raw: Option<RawMode>,
}

impl Relay {
    pub fn new(master: OwnedFd, forward_input: bool) -> Relay {
        let raw = if forward_input { RawMode::enter() } else { None };
        let relay = Relay { master: Some(master), forward_input, input_done: false, _raw: raw };
        relay.copy_window_size();
        relay
    }

    /// Is our stdin still to be forwarded?
    pub fn reads_input(&self) -> bool {
        self.forward_input && !self.input_done && self.master.is_some()
    }

    /// The master is readable: copy what the workload wrote to our stdout.
    /// End of file or EIO (every slave closed): stop reading it.
    pub fn copy_output(&mut self) {
        let Some(master) = &self.master else { return };
        let mut chunk = [0u8; 8192];
        match nix::unistd::read(master, &mut chunk) {
            Ok(0) | Err(nix::errno::Errno::EIO) => self.master = None,
            Ok(n) => {
                let mut out = std::io::stdout();
                let _ = out.write_all(&chunk[..n]);
                let _ = out.flush();
            }
            Err(_) => {}
        }
    }

    /// Our stdin is readable: copy it to the master, and return it for the
    /// caller to look at (Ctrl-C). At its end, send ^D once, as a terminal
    /// would.
    pub fn copy_input(&mut self) -> Vec<u8> {
        let mut chunk = [0u8; 4096];
        let n = std::io::stdin().lock().read(&mut chunk).unwrap_or(0);
        let Some(master) = &self.master else { return Vec::new() };
        if n == 0 {
            self.input_done = true;
            let _ = nix::unistd::write(master, b"\x04");
            return Vec::new();
        }
        let _ = nix::unistd::write(master, &chunk[..n]);
        chunk[..n].to_vec()
    }

    /// SIGWINCH: our terminal changed size; so does the sandbox's.
    pub fn copy_window_size(&self) {
        if let (Some(master), Ok(size)) = (&self.master, sys::window_size(std::io::stdin().as_fd())) {
            let _ = sys::set_window_size(master.as_fd(), &size);
        }
    }

    /// Once PID 1 has exited: what the workload wrote last.
    pub fn drain(&mut self) {
        if let Some(master) = &self.master {
            let _ = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
        }
        while self.master.is_some() {
            let Some(master) = &self.master else { break };
            let mut chunk = [0u8; 8192];
            match nix::unistd::read(master, &mut chunk) {
                Ok(n) if n > 0 => {
                    let _ = std::io::stdout().write_all(&chunk[..n]);
                }
                _ => self.master = None,
            }
        }
        let _ = std::io::stdout().flush();
    }

    /// The terminal's foreground process group, as the host sees it.
    pub fn foreground(&self) -> Option<i32> {
        self.master.as_ref().and_then(|m| nix::unistd::tcgetpgrp(m.as_fd()).ok()).map(|p| p.as_raw())
    }
}

/// Wait for the master end of the workload's terminal, or for the exit
/// of `pid1` (PID 1, or the process `exec` started) (a failed step closes nothing we could see: outer nest levels
/// still hold the socket).
pub fn receive_master(socket: &OwnedFd, pid1: &OwnedFd) -> Result<Option<OwnedFd>> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let mut fds =
            [PollFd::new(socket.as_fd(), PollFlags::POLLIN), PollFd::new(pid1.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(errno) => return Err(errno).context("poll for the terminal"),
            Ok(_) => {}
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return sys::receive_fd(socket.as_fd()).context("receive the terminal");
        }
        return Ok(None);
    }
}

/// `exec -t`: relay until the process behind `pidfd` exits, then drain.
/// A change of our terminal's size (SIGWINCH, read from a signalfd) is
/// passed on, as `run -t` does.
pub fn relay_until_exit(relay: &mut Relay, pidfd: &OwnedFd) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    let stdin = std::io::stdin();
    let mut winch = SigSet::empty();
    winch.add(Signal::SIGWINCH);
    // Blocked, so that it queues for the signalfd (the command was forked
    // before: it keeps its own mask).
    let resized = winch
        .thread_block()
        .ok()
        .and_then(|()| SignalFd::with_flags(&winch, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK).ok());
    // A resize between Relay::new's copy and the block above.
    relay.copy_window_size();
    loop {
        let mut fds = vec![PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        let master_at = fds.len();
        if let Some(master) = relay.master.as_ref() {
            fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
        }
        let resized_at = fds.len();
        if let Some(resized) = &resized {
            fds.push(PollFd::new(resized.as_fd(), PollFlags::POLLIN));
        }
        let stdin_at = fds.len();
        let reads_input = relay.reads_input();
        if reads_input {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
            Ok(_) => {}
        }
        let ready = |i: usize| fds.get(i).and_then(|f| f.revents()).is_some_and(|r| !r.is_empty());
        let exited = ready(0);
        let output = relay.master.is_some() && ready(master_at);
        let size = resized.is_some() && ready(resized_at);
        let input = reads_input && ready(stdin_at);
        drop(fds);
        if exited {
            break;
        }
        if output {
            relay.copy_output();
        }
        if let Some(resized) = resized.as_ref().filter(|_| size) {
            while let Ok(Some(_)) = resized.read_signal() {}
            relay.copy_window_size();
        }
        if input {
            relay.copy_input();
        }
    }
    relay.drain();
}
