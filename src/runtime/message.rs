//! Every message between pidlab and the processes it starts, in one place,
//! as runc keeps its `SYNC_*` values and youki its `Message` enum.
//!
//! Each travels over a pipe as one line written in one write(2): a pipe
//! never splits a write of up to PIPE_BUF (4 KiB) bytes (pipe(7)), so the
//! reader gets the whole line or nothing. Success is often *no* message:
//! a pipe marked close-on-exec reads end-of-file once the other side has
//! exec'd, and that is the news (bubblewrap and runc do the same).
//!
//! ```text
//!  pidlab run ── Go ─────────────► PID 1          go pipe (named runs, --step)
//!  pidlab run ◄── StepFailed ────── PID 1          report pipe (EOF: exec'd)
//!  pidlab run ◄── StepBegin/Done ── PID 1          report pipe (--step)
//!  pidlab run -d ◄── Started ────── pidlab:shim    ready pipe
//!  pidlab run -d ◄── NotStarted ─── pidlab:shim    ready pipe
//! ```
//! (`-t` hands a descriptor over a Unix socket instead: `console.rs`.)

use std::os::fd::AsFd;

use nix::errno::Errno;

use crate::runtime::step::Step;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// pidlab → PID 1: the sandbox's record is written (and its tracer
    /// is on): go on with the setup.
    Go,
    /// PID 1 → pidlab: `step` failed with `errno` while doing `detail`.
    StepFailed { step: Step, errno: Errno, detail: String },
    /// PID 1 → pidlab (`--step`): about to run `step`; it waits for `Go`.
    StepBegin { step: Step },
    /// PID 1 → pidlab (`--step`): `step` is done.
    StepDone { step: Step },
    /// The shim → `pidlab run -d`: PID 1 has exec'd the workload.
    Started,
    /// The shim → `pidlab run -d`: the sandbox did not start; exit `code`.
    NotStarted { code: i32, message: String },
}

impl Message {
    /// The line this message is written as.
    pub fn encode(&self) -> Vec<u8> {
        let line = match self {
            Message::Go => "go".to_string(),
            Message::StepFailed { step, errno, detail } => {
                format!("step\t{}\t{}\t{}", *step as u32, *errno as i32, one_line(detail))
            }
            Message::Started => "started".to_string(),
            Message::StepBegin { step } => format!("begin\t{}", *step as u32),
            Message::StepDone { step } => format!("done\t{}", *step as u32),
            Message::NotStarted { code, message } => format!("failed\t{code}\t{}", one_line(message)),
        };
        format!("{line}\n").into_bytes()
    }

    /// The message a line holds, or `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Message> {
        let text = String::from_utf8_lossy(bytes);
        let line = text.lines().next()?;
        let mut fields = line.splitn(4, '\t');
        match fields.next()? {
            "go" => Some(Message::Go),
            "started" => Some(Message::Started),
            "begin" => Some(Message::StepBegin { step: Step::from_number(fields.next()?.parse().ok()?)? }),
            "done" => Some(Message::StepDone { step: Step::from_number(fields.next()?.parse().ok()?)? }),
            "step" => {
                let step = Step::from_number(fields.next()?.parse().ok()?)?;
                let errno = Errno::from_raw(fields.next()?.parse().ok()?);
                let detail = fields.next().unwrap_or("").to_string();
                Some(Message::StepFailed { step, errno, detail })
            }
            "failed" => {
                let code = fields.next()?.parse().ok()?;
                let rest: Vec<&str> = fields.collect();
                Some(Message::NotStarted { code, message: rest.join("\t") })
            }
            _ => None,
        }
    }

    /// Write it in one write(2).
    pub fn send(&self, pipe: impl AsFd) -> nix::Result<()> {
        nix::unistd::write(pipe, &self.encode()).map(drop)
    }

    /// Read one message; `None` at end-of-file (the writer closed its end
    /// without a word: it exec'd, or died).
    pub fn receive(pipe: impl AsFd) -> nix::Result<Option<Message>> {
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(pipe.as_fd(), &mut buf) {
                Ok(0) => return Ok(None),
                Ok(n) => return Ok(Message::decode(&buf[..n])),
                Err(Errno::EINTR) => continue,
                Err(errno) => return Err(errno),
            }
        }
    }
}

/// Messages are lines: a newline inside becomes a space.
fn one_line(text: &str) -> String {
    text.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_survives_its_line() {
        for message in [
            Message::Go,
            Message::Started,
            Message::StepBegin { step: Step::Seccomp },
            Message::StepDone { step: Step::Exec },
            Message::StepFailed {
                step: Step::MountProc,
                errno: Errno::EPERM,
                detail: "mount proc\ton /x".into(),
            },
            Message::NotStarted { code: 125, message: "the name \"a\" is taken".into() },
        ] {
            assert_eq!(Message::decode(&message.encode()), Some(message.clone()), "{message:?}");
        }
        assert_eq!(Message::decode(b"ok"), None);
    }
}
