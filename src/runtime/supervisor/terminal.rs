//! The terminal's foreground process group, lent to the sandbox.

use std::os::fd::AsFd;

use nix::sys::signal::{SigSet, Signal};
use nix::unistd::{Pid, getpgrp, isatty, setpgid, tcgetpgrp, tcsetpgrp};

/// The terminal's foreground process group, lent to the sandbox while it
/// runs and taken back when it ends.
pub struct Terminal {
    ours: Option<Pid>,
    /// `-t`: PID 1 leads a session of its own, whose terminal it gets.
    own_session: bool,
}

impl Terminal {
    /// Before PID 1 is born: decide whether it takes the terminal. Only
    /// with `-i` (`lend`), and if stdin is a terminal whose foreground
    /// process group is ours. Without `-i` the terminal stays with pidlab,
    /// as with `docker run`: Ctrl-C reaches pidlab, which forwards it.
    pub fn before_start(lend: bool, own_terminal: bool) -> Terminal {
        let stdin = std::io::stdin();
        let ours = getpgrp();
        let in_foreground = isatty(stdin.as_fd()).unwrap_or(false) && tcgetpgrp(stdin.as_fd()) == Ok(ours);
        if !lend || !in_foreground {
            return Terminal { ours: None, own_session: own_terminal };
        }
        // A background process group calling tcsetpgrp gets SIGTTOU unless
        // it blocks it: PID 1 inherits this mask (until step 13), and we
        // keep it blocked for the whole run, to take the terminal back.
        let mut ttou = SigSet::empty();
        ttou.add(Signal::SIGTTOU);
        let _ = ttou.thread_block();
        Terminal { ours: Some(ours), own_session: own_terminal }
    }

    /// In PID 1, before the workload: a process group of its own, as a
    /// container is never in its runtime's group, and the terminal's
    /// foreground if it was ours. PID 1 does this itself because it must
    /// happen before the exec, and when PID 1 is spawned borrowing our
    /// memory (`sys::Spawn::Borrow`) we sleep until then.
    pub fn join(&self) -> nix::Result<()> {
        if self.own_session {
            // setsid(2) makes PID 1 lead a new session and group; it
            // would fail in a process that already leads a group.
            return nix::unistd::setsid().map(drop);
        }
        setpgid(Pid::from_raw(0), Pid::from_raw(0))?;
        if self.ours.is_some() {
            // Best effort, as before: a terminal that went away is no reason
            // not to run.
            let _ = tcsetpgrp(std::io::stdin().as_fd(), getpgrp());
        }
        Ok(())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(ours) = self.ours {
            let _ = tcsetpgrp(std::io::stdin().as_fd(), ours);
        }
    }
}
