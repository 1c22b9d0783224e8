//! The reading end, `pidlab logs`: the files in order across rotations,
//! their records, and `--wait-for`'s search.
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{CHUNK, Record, older, open_existing};

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
}
