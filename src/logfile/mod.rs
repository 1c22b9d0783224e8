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
use std::io;
use std::ops::RangeInclusive;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

mod read;
mod write;

pub use read::{Reader, Records, Until};
pub use write::{Writer, keep};

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

fn open_existing(path: &Path) -> io::Result<Option<File>> {
    match File::open(path) {
        Ok(file) => Ok(Some(file)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
