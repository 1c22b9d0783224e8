//! A detached sandbox's log, capped: written by `pidlab:log` for the shim,
//! read by `pidlab logs`.
//!
//! The workload does not write to the log file itself: a file has no size
//! limit short of RLIMIT_FSIZE (setrlimit(2)), which would kill the
//! workload with SIGXFSZ, and `yes` fills a disk at hundreds of MB/s. Its
//! stdout and stderr are a pipe instead, and `pidlab:log`, a small process
//! of the shim's, copies the pipe into the file. When the file reaches its
//! size (`run -d --log-max-size`, default 10 MiB) it is renamed `log.1`,
//! replacing the one before, and a new `log` begins — docker's
//! `--log-opt max-size` with two files. The oldest output is dropped; a
//! sandbox keeps at most twice the size. The pipe's own buffer (64 KiB,
//! pipe(7)) is what makes a fast writer wait: while `pidlab:log` is busy
//! the workload's write(2) blocks, as it would on a slow terminal.
//!
//! `pidlab logs` reads `log.1`, then `log`, in chunks, so it needs the same
//! small memory whatever the log holds, a line without a newline included.
//! Following (`-f`), it notices a rotation when `log` is no longer the file
//! it reads, finishes that file (written to before it was renamed) and goes
//! on with the new one, as `tail -F` does. A reader that falls a whole file
//! behind loses what was dropped meanwhile.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::RangeInclusive;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The sizes `--log-max-size` accepts: 4 KiB (a page) to 1 GiB.
pub const SIZES: RangeInclusive<u64> = 4 << 10..=1 << 30;

/// How much is copied or read at once: the size of a pipe's buffer.
const CHUNK: usize = 64 << 10;

/// Where the log goes once it is full: `log.1` beside `log`.
fn older(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

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

    /// Append `data`, rotating as often as it takes: no file ever holds more
    /// than `max_size` bytes. A cut falls wherever the size is reached, in a
    /// line or not; `logs` prints the two files one after the other, so a
    /// line cut in two is whole again.
    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.size >= self.max_size {
                self.rotate()?;
            }
            let room = usize::try_from(self.max_size - self.size).unwrap_or(usize::MAX);
            let (now, rest) = data.split_at(room.min(data.len()));
            self.file.write_all(now)?;
            self.size += now.len() as u64;
            data = rest;
        }
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

/// O_CREAT | O_EXCL | O_NOFOLLOW: a new file, never one (or a symbolic
/// link) someone put in our place.
fn create_new(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .mode(0o600)
        .open(path)
}

/// `pidlab:log`'s life: copy `pipe` into the log until every writer has
/// closed it (end of file: the sandbox and the shim are done).
///
/// When the log cannot be written (a full file system), the output is
/// dropped, not left in the pipe: a blocked pipe would stop the workload at
/// its next write. Once writing works again, a line says how much was lost.
pub fn keep(mut pipe: File, mut log: Writer) {
    let mut chunk = vec![0u8; CHUNK];
    let mut lost: Option<(u64, io::Error)> = None;
    loop {
        let n = match pipe.read(&mut chunk) {
            Ok(0) => return,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if let Some((bytes, err)) = &lost {
            let note = format!("[pidlab: {bytes} bytes of output lost: could not write the log: {err}]\n");
            if log.write(note.as_bytes()).is_ok() {
                lost = None;
            }
        }
        if let Err(err) = log.write(&chunk[..n]) {
            let bytes = lost.as_ref().map_or(0, |(b, _)| *b) + n as u64;
            lost = Some((bytes, err));
        }
    }
}

/// The reading end, for `pidlab logs`: `log.1`, then `log`, then (when
/// following) each `log` that replaces it.
pub struct Reader {
    path: PathBuf,
    file: File,
    /// The file to read after `file`, opened already.
    next: Option<File>,
    follow: bool,
}

impl Reader {
    /// `None` when there is no log (the sandbox is not detached).
    pub fn open(path: &Path, follow: bool) -> io::Result<Option<Reader>> {
        // log.1 first: whatever `log` is a moment later is newer, so the
        // two are never read out of order.
        let old = open_existing(&older(path))?;
        let current = open_existing(path)?;
        let (file, next) = match (old, current) {
            (Some(old), current) => (old, current),
            (None, Some(current)) => (current, None),
            (None, None) => return Ok(None),
        };
        Ok(Some(Reader { path: path.to_path_buf(), file, next, follow }))
    }

    /// Read the next piece of the log into `buf`; 0 when there is nothing
    /// more now (following, more may come later).
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.file.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            let next = match self.next.take() {
                Some(next) => Some(next),
                None if self.follow => self.successor()?,
                None => None,
            };
            let Some(next) = next else { return Ok(0) };
            // `file` was renamed away: nothing is written to it any more,
            // but some may have been between our last read and the rename.
            let n = self.file.read(buf)?;
            if n > 0 {
                self.next = Some(next);
                return Ok(n);
            }
            self.file = next;
        }
    }

    /// The file that follows the one we read, if it was rotated away.
    fn successor(&self) -> io::Result<Option<File>> {
        let ours = self.file.metadata()?.ino();
        let is_ours = |file: &Option<File>| {
            file.as_ref().and_then(|f| f.metadata().ok()).is_some_and(|m| m.ino() == ours)
        };
        let current = open_existing(&self.path)?;
        if is_ours(&current) {
            return Ok(None); // still the live log
        }
        let old = open_existing(&older(&self.path))?;
        if is_ours(&old) {
            // Rotated once: `log` is next (none for a moment, mid-rotation).
            return Ok(current);
        }
        // We fell more than a whole file behind: log.1 is the oldest left.
        Ok(old.or(current))
    }
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// `logs --wait-for TEXT`: finds where the first line that contains TEXT ends,
/// in output that comes in chunks. It keeps only the last bytes of the
/// current line that a match could still start in, never the line.
pub struct Until {
    text: Vec<u8>,
    /// The end of the current line, up to len(TEXT) - 1 bytes.
    tail: Vec<u8>,
    /// The current line contains TEXT.
    pub found: bool,
}

impl Until {
    pub fn new(text: &str) -> Until {
        Until { text: text.as_bytes().to_vec(), tail: Vec::new(), found: text.is_empty() }
    }

    /// The offset in `chunk` just past the newline that ends the first line
    /// containing TEXT, if that line ends in this chunk.
    pub fn line_end(&mut self, chunk: &[u8]) -> Option<usize> {
        let mut offset = 0;
        for piece in chunk.split_inclusive(|b| *b == b'\n') {
            offset += piece.len();
            let ends_line = piece.last() == Some(&b'\n');
            let body = if ends_line { &piece[..piece.len() - 1] } else { piece };
            if !self.found {
                self.tail.extend_from_slice(body);
                self.found = self.tail.windows(self.text.len()).any(|w| w == self.text);
                let keep = self.text.len() - 1;
                self.tail.drain(..self.tail.len().saturating_sub(keep));
            }
            if ends_line {
                if self.found {
                    return Some(offset);
                }
                self.tail.clear();
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_finds_text_split_across_chunks_and_ends_at_its_line() {
        let mut until = Until::new("ready");
        assert_eq!(until.line_end(b"a\nnot re"), None);
        assert_eq!(until.line_end(b"ady yet"), None);
        assert!(until.found);
        assert_eq!(until.line_end(b" really\nnext\n"), Some(8));
        let mut until = Until::new("ready");
        assert_eq!(until.line_end(b"rea\ndy\n"), None, "a match never spans two lines");
        assert!(!until.found);
    }

    #[test]
    fn until_keeps_only_a_tail() {
        let mut until = Until::new("xyz");
        for _ in 0..100 {
            until.line_end(&[b'a'; 4096]);
        }
        assert!(until.tail.len() <= 2);
    }

    #[test]
    fn writer_rotates_at_the_size_and_the_reader_reads_both_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = Writer::create(&path, 10).unwrap();
        log.write(b"0123456789abcdefghijKLM").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"KLM");
        assert_eq!(std::fs::read(older(&path)).unwrap(), b"abcdefghij");
        let mut reader = Reader::open(&path, false).unwrap().unwrap();
        let mut all = Vec::new();
        let mut buf = [0u8; 4];
        loop {
            match reader.read(&mut buf).unwrap() {
                0 => break,
                n => all.extend_from_slice(&buf[..n]),
            }
        }
        assert_eq!(all, b"abcdefghijKLM");
    }
}
