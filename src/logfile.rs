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
//! stdout and stderr are two pipes, kept apart in the log as docker's
//! json-file driver keeps them: the log is a sequence of records, one per
//! line or piece of a line, each `SK TIME PAYLOAD\n`: S the stream (`o`
//! stdout, `e` stderr), K `.` when the line ends there or `+` when it goes
//! on in a later record of that stream, TIME when `pidlab:log` read it
//! (nanoseconds since the epoch), PAYLOAD the bytes without their newline.
//! A record never exceeds 16 KiB of payload (docker's cut too) nor the
//! file's size, and files are rotated between records, so each file holds
//! whole records.
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

/// The most payload one record holds: docker's json-file cuts lines there too.
const PAYLOAD_MAX: usize = 16 << 10;

/// The longest header: stream, kind, a 19-digit time, a space; and the newline.
const HEADER_MAX: usize = 2 + 20 + 1 + 1;

/// Which of the workload's outputs a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn letter(self) -> char {
        match self {
            Stream::Stdout => 'o',
            Stream::Stderr => 'e',
        }
    }

    /// As docker's JSON names it.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One record of the log, as `pidlab logs` reads it.
#[derive(Debug, PartialEq, Eq)]
pub struct Record {
    pub stream: Stream,
    /// The line ends with this record (else it goes on in a later one).
    pub ends_line: bool,
    /// When `pidlab:log` read it, in nanoseconds since the epoch.
    pub time: i64,
    pub payload: Vec<u8>,
}

impl Record {
    /// `line`: one record without its newline. `None` if it is not one
    /// (a log from before records, or damaged).
    fn parse(line: &[u8]) -> Option<Record> {
        let stream = match line.first()? {
            b'o' => Stream::Stdout,
            b'e' => Stream::Stderr,
            _ => return None,
        };
        let ends_line = match line.get(1)? {
            b'.' => true,
            b'+' => false,
            _ => return None,
        };
        let space = line.iter().position(|b| *b == b' ')?;
        let time = std::str::from_utf8(line.get(2..space)?).ok()?.parse().ok()?;
        Some(Record { stream, ends_line, time, payload: line[space + 1..].to_vec() })
    }
}

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

/// The records of a log (`Reader`), one at a time. A record being
/// written as we read comes whole on a later call.
pub struct Records {
    log: Reader,
    buf: Vec<u8>,
    /// Where the next record starts in `buf`.
    start: usize,
}

impl Records {
    pub fn new(log: Reader) -> Records {
        Records { log, buf: Vec::new(), start: 0 }
    }

    /// The next whole record; `None` when there is none now (following,
    /// more may come). Lines that are not records are skipped.
    pub fn next_record(&mut self) -> io::Result<Option<Record>> {
        loop {
            if let Some(at) = self.buf[self.start..].iter().position(|b| *b == b'\n') {
                let line = &self.buf[self.start..self.start + at];
                self.start += at + 1;
                match Record::parse(line) {
                    Some(record) => return Ok(Some(record)),
                    None => continue,
                }
            }
            self.buf.drain(..self.start);
            self.start = 0;
            let mut chunk = [0u8; CHUNK];
            let n = self.log.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

/// `logs --wait-for TEXT`, for one stream: is TEXT in the line that a
/// record ends, seeing the line in pieces (records)? It keeps only the last
/// bytes of the current line that a match could still start in, never the
/// line.
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

    /// Take the next piece of the line; true when it ends a line that
    /// contains TEXT.
    pub fn feed(&mut self, piece: &[u8], ends_line: bool) -> bool {
        if !self.found {
            self.tail.extend_from_slice(piece);
            self.found = self.tail.windows(self.text.len()).any(|w| w == self.text);
            let keep = self.text.len() - 1;
            self.tail.drain(..self.tail.len().saturating_sub(keep));
        }
        if ends_line {
            if self.found {
                return true;
            }
            self.tail.clear();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_finds_text_split_across_pieces_and_ends_at_its_line() {
        let mut until = Until::new("ready");
        assert!(!until.feed(b"a", true));
        assert!(!until.feed(b"not re", false));
        assert!(!until.feed(b"ady yet", false));
        assert!(until.found);
        assert!(until.feed(b" really", true));
        let mut until = Until::new("ready");
        assert!(!until.feed(b"rea", true) && !until.feed(b"dy", true), "a match never spans two lines");
        assert!(!until.found);
    }

    #[test]
    fn until_keeps_only_a_tail() {
        let mut until = Until::new("xyz");
        for _ in 0..100 {
            until.feed(&[b'a'; 4096], false);
        }
        assert!(until.tail.len() <= 2);
    }

    fn read_all(path: &Path) -> Vec<Record> {
        let mut records = Records::new(Reader::open(path, false).unwrap().unwrap());
        std::iter::from_fn(|| records.next_record().unwrap()).collect()
    }

    #[test]
    fn lines_become_records_with_their_stream_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let mut log = Writer::create(&path, 1 << 20).unwrap();
        log.append(Stream::Stdout, b"one\ntw", 5).unwrap();
        log.append(Stream::Stderr, b"oops\n\n", 6).unwrap();
        log.append(Stream::Stdout, b"o\n", 7).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "o.5 one\no+5 tw\ne.6 oops\ne.6 \no.7 o\n");
        let records = read_all(&path);
        assert_eq!(records.len(), 5);
        assert_eq!(
            records[1],
            Record { stream: Stream::Stdout, ends_line: false, time: 5, payload: b"tw".to_vec() }
        );
        assert_eq!((records[2].stream, records[3].payload.as_slice()), (Stream::Stderr, &b""[..]));
    }

    #[test]
    fn writer_rotates_between_records_and_the_reader_reads_both_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // Room for 40 bytes a file: a record is "o.1 " + payload + "\n".
        let mut log = Writer::create(&path, 40).unwrap();
        for line in ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc", "dddddddddd"] {
            log.append(Stream::Stdout, format!("{line}\n").as_bytes(), 1).unwrap();
        }
        assert_eq!(std::fs::read_to_string(older(&path)).unwrap(), "o.1 aaaaaaaaaa\no.1 bbbbbbbbbb\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "o.1 cccccccccc\no.1 dddddddddd\n");
        let text: Vec<u8> = read_all(&path).into_iter().flat_map(|r| r.payload).collect();
        assert_eq!(text, b"aaaaaaaaaabbbbbbbbbbccccccccccdddddddddd");
        // A line longer than a file holds is cut into records that fit.
        log.append(Stream::Stderr, &[b'x'; 100], 2).unwrap();
        for file in [older(&path), path.clone()] {
            assert!(std::fs::metadata(&file).unwrap().len() <= 40, "{}", file.display());
        }
    }
}
