//! `WalReader`: reads records forward from an LSN and stops cleanly at the end of the log.
//!
//! The end of the log is wherever the next record fails a check: zeros (never written), a
//! length out of bounds, a checksum mismatch (a torn or corrupt tail), a record that names
//! another position or another predecessor (stale bytes in a recycled segment, or beyond a
//! torn tail), or a missing segment. The reader reports which, and where; it never panics on
//! what it reads and never allocates more than [`RECORD_SIZE_MAX`] for one record.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storelab_pager::Lsn;
use storelab_pager::io::{IoBackend, OpenOptions};

use crate::error::{Error, Result};
use crate::record::{RECORD_HEADER_SIZE, RECORD_SIZE_MAX, Record, decode, peek_len};
use crate::segment::{
    HeaderCheck, SEGMENT_HEADER_SIZE, SegmentGeometry, check_header, segment_file_name,
};

/// Why reading stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// Zeros where the next record would start: the log was never written further.
    Zeros,
    /// The segment that should hold the next bytes does not exist or is not that segment.
    MissingSegment(String),
    /// The bytes there are not a valid record (a torn or corrupt tail).
    Corrupt(String),
    /// A valid record, but not the successor of the one before (stale bytes).
    PrevMismatch {
        /// The predecessor the record names.
        found: Lsn,
        /// The record actually read before it.
        expected: Lsn,
    },
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::Zeros => write!(f, "end of written log"),
            EndReason::MissingSegment(why) => write!(f, "no further segment ({why})"),
            EndReason::Corrupt(why) => write!(f, "torn or corrupt record: {why}"),
            EndReason::PrevMismatch { found, expected } => {
                write!(
                    f,
                    "stale record (names predecessor {found}, expected {expected})"
                )
            }
        }
    }
}

/// Where and why reading stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadEnd {
    /// The first LSN that does not hold a valid record: the end of the usable log.
    pub lsn: Lsn,
    /// Why.
    pub reason: EndReason,
}

struct LoadedSegment {
    number: u64,
    /// The segment's data area, as far as the file goes.
    data: Vec<u8>,
}

/// Reads records forward from a starting LSN.
pub struct WalReader {
    backend: Arc<dyn IoBackend>,
    dir: PathBuf,
    geometry: SegmentGeometry,
    page_size: usize,
    position: Lsn,
    last_start: Option<Lsn>,
    loaded: Option<LoadedSegment>,
    end: Option<ReadEnd>,
}

impl WalReader {
    /// A reader of the log in `dir` starting at `start`, which must be a record boundary. The
    /// first record's predecessor is not checked (it is not known); every later one's is.
    pub fn new(
        backend: Arc<dyn IoBackend>,
        dir: &Path,
        geometry: SegmentGeometry,
        page_size: usize,
        start: Lsn,
    ) -> WalReader {
        WalReader {
            backend,
            dir: dir.to_path_buf(),
            geometry,
            page_size,
            position: start,
            last_start: None,
            loaded: None,
            end: None,
        }
    }

    /// Where the next record would start.
    pub fn position(&self) -> Lsn {
        self.position
    }

    /// The start of the last record returned.
    pub fn last_record(&self) -> Option<Lsn> {
        self.last_start
    }

    /// Why reading stopped, once it has.
    pub fn end(&self) -> Option<&ReadEnd> {
        self.end.as_ref()
    }

    fn stop(&mut self, reason: EndReason) -> Result<Option<Record>> {
        self.end = Some(ReadEnd {
            lsn: self.position,
            reason,
        });
        Ok(None)
    }

    /// Loads segment `n`; `Ok(false)` if it does not exist or is not segment `n`.
    fn load(&mut self, n: u64) -> Result<std::result::Result<(), String>> {
        if self.loaded.as_ref().is_some_and(|s| s.number == n) {
            return Ok(Ok(()));
        }
        self.loaded = None;
        let path = self.dir.join(segment_file_name(n));
        if !path.exists() {
            return Ok(Err(format!("{} does not exist", path.display())));
        }
        let file = self.backend.open(
            &path,
            &OpenOptions {
                create: false,
                direct: false,
            },
        )?;
        let (buf, read) = self.backend.read_at(&file, 0, self.geometry.segment_size)?;
        if read < SEGMENT_HEADER_SIZE {
            return Ok(Err(format!("{} is shorter than a header", path.display())));
        }
        match check_header(
            &buf[..SEGMENT_HEADER_SIZE],
            n,
            self.geometry,
            self.page_size,
            &path,
        )? {
            HeaderCheck::Valid => {}
            HeaderCheck::NotThisSegment(why) => {
                return Ok(Err(format!("{}: {why}", path.display())));
            }
        }
        let data = buf[SEGMENT_HEADER_SIZE..read].to_vec();
        self.loaded = Some(LoadedSegment { number: n, data });
        Ok(Ok(()))
    }

    /// Copies `len` log bytes at `lsn` (possibly across segments) into `out`; `Err(why)` if a
    /// segment is missing or short.
    fn read_bytes(
        &mut self,
        lsn: Lsn,
        len: usize,
        out: &mut Vec<u8>,
    ) -> Result<std::result::Result<(), String>> {
        out.clear();
        let mut at = lsn;
        while out.len() < len {
            let n = self.geometry.segment_of(at);
            if let Err(why) = self.load(n)? {
                return Ok(Err(why));
            }
            let seg = self.loaded.as_ref().expect("just loaded");
            let offset = (at.0 - self.geometry.segment_start(n).0) as usize;
            let available = seg.data.len().saturating_sub(offset);
            if available == 0 {
                return Ok(Err(format!("segment {n} ends early")));
            }
            let take = available.min(len - out.len());
            out.extend_from_slice(&seg.data[offset..offset + take]);
            at = Lsn(at.0 + take as u64);
        }
        Ok(Ok(()))
    }

    /// The next valid record, or `None` at the end of the log (see [`end`](Self::end)).
    /// Errors are for the reader's own I/O failures and unreadable formats, not for a torn log.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.end.is_some() {
            return Ok(None);
        }
        let mut header = Vec::with_capacity(RECORD_HEADER_SIZE);
        if let Err(why) = self.read_bytes(self.position, RECORD_HEADER_SIZE, &mut header)? {
            return self.stop(EndReason::MissingSegment(why));
        }
        let Some(len) = peek_len(&header) else {
            if header.iter().all(|&b| b == 0) {
                return self.stop(EndReason::Zeros);
            }
            return self.stop(EndReason::Corrupt("length out of bounds".into()));
        };
        debug_assert!(len <= RECORD_SIZE_MAX);
        let mut bytes = Vec::with_capacity(len);
        if let Err(why) = self.read_bytes(self.position, len, &mut bytes)? {
            return self.stop(EndReason::MissingSegment(why));
        }
        let record = match decode(&bytes, self.position, self.page_size) {
            Ok(r) => r,
            Err(Error::CorruptRecord { reason, .. }) => {
                return self.stop(EndReason::Corrupt(reason));
            }
            Err(e) => return Err(e),
        };
        if let Some(expected) = self.last_start
            && record.prev != expected
        {
            return self.stop(EndReason::PrevMismatch {
                found: record.prev,
                expected,
            });
        }
        self.last_start = Some(record.lsn);
        self.position = record.end_lsn();
        Ok(Some(record))
    }
}
