//! The writing end, `pidlab:log`: the two pipes into records, rotated
//! between records at the size.
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{CHUNK, HEADER_MAX, PAYLOAD_MAX, Stream, create_new, older};

/// The writing end, in `pidlab:log`.
pub struct Writer {
    path: PathBuf,
    file: File,
    /// Bytes in `file`.
    size: u64,
    max_size: u64,
}

impl Writer {
    /// Create the log; it must not exist yet (the sandbox's directory is new).
    pub fn create(path: &Path, max_size: u64) -> Result<Writer> {
        let file = create_new(path).with_context(|| format!("create the log {}", path.display()))?;
        Ok(Writer { path: path.to_path_buf(), file, size: 0, max_size })
    }

    /// Append what `stream` wrote (`data`, read at `time`) as records: one
    /// per line, a line longer than a record can hold cut into pieces, and
    /// a last piece without its newline marked as going on.
    pub fn append(&mut self, stream: Stream, data: &[u8], time: i64) -> io::Result<()> {
        let most = (self.max_size as usize).saturating_sub(HEADER_MAX).min(PAYLOAD_MAX);
        for line in data.split_inclusive(|b| *b == b'\n') {
            let (body, ends) = match line.strip_suffix(b"\n") {
                Some(body) => (body, true),
                None => (line, false),
            };
            let mut pieces = body.chunks(most).peekable();
            if pieces.peek().is_none() {
                self.write_record(stream, ends, time, b"")?;
            }
            while let Some(piece) = pieces.next() {
                self.write_record(stream, ends && pieces.peek().is_none(), time, piece)?;
            }
        }
        Ok(())
    }

    /// One record, in one write(2), in a file with room for it (rotating
    /// first if the file has none).
    fn write_record(&mut self, stream: Stream, ends_line: bool, time: i64, payload: &[u8]) -> io::Result<()> {
        let kind = if ends_line { '.' } else { '+' };
        let mut record = format!("{}{kind}{time} ", stream.letter()).into_bytes();
        record.extend_from_slice(payload);
        record.push(b'\n');
        if self.size > 0 && self.size + record.len() as u64 > self.max_size {
            self.rotate()?;
        }
        self.file.write_all(&record)?;
        self.size += record.len() as u64;
        Ok(())
    }

    /// `log` becomes `log.1` (the previous `log.1` is gone), and a new `log`
    /// begins. Between the two steps there is no `log`; readers know.
    fn rotate(&mut self) -> io::Result<()> {
        match std::fs::rename(&self.path, older(&self.path)) {
            Ok(()) => {}
            // A rotation that failed half-way (no room for the new file)
            // has renamed it already: only the new file is missing.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        self.file = create_new(&self.path)?;
        self.size = 0;
        Ok(())
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// `pidlab:log`'s life: copy the workload's stdout and stderr pipes into
/// the log, each read stamped with the time, until every writer of both
/// has closed them (end of file: the sandbox and the shim are done).
///
/// When the log cannot be written (a full file system), the output is
/// dropped, not left in the pipe: a blocked pipe would stop the workload at
/// its next write. Once writing works again, a line says how much was lost.
pub fn keep(stdout: File, stderr: File, mut log: Writer) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut pipes = [(Stream::Stdout, Some(stdout)), (Stream::Stderr, Some(stderr))];
    let mut chunk = vec![0u8; CHUNK];
    let mut lost: Option<(u64, io::Error)> = None;
    while pipes.iter().any(|(_, pipe)| pipe.is_some()) {
        let open: Vec<usize> = (0..2).filter(|i| pipes[*i].1.is_some()).collect();
        let mut fds: Vec<PollFd> = open
            .iter()
            .filter_map(|i| pipes[*i].1.as_ref().map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN)))
            .collect();
        match poll(&mut fds, PollTimeout::NONE) {
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
            Ok(_) => {}
        }
        let ready: Vec<usize> = open
            .iter()
            .zip(&fds)
            .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| *i)
            .collect();
        drop(fds);
        for i in ready {
            let (stream, pipe) = &mut pipes[i];
            let Some(file) = pipe.as_mut() else { continue };
            let n = match file.read(&mut chunk) {
                Ok(0) => {
                    *pipe = None;
                    continue;
                }
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    *pipe = None;
                    continue;
                }
            };
            let now = crate::clock::now_ns();
            if let Some((bytes, err)) = &lost {
                let note =
                    format!("[pidlab: {bytes} bytes of output lost: could not write the log: {err}]\n");
                if log.append(Stream::Stderr, note.as_bytes(), now).is_ok() {
                    lost = None;
                }
            }
            if let Err(err) = log.append(*stream, &chunk[..n], now) {
                let bytes = lost.as_ref().map_or(0, |(b, _)| *b) + n as u64;
                lost = Some((bytes, err));
            }
        }
    }
}
