//! The WAL's error type.

use std::path::PathBuf;

use storelab_pager::{Lsn, PageId};

/// The WAL's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the log, its checkpoints and recovery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A call made in a state that does not allow it (a checkpoint inside an atomic group).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// An error of the page manager (I/O, checksums, the pool).
    #[error(transparent)]
    Pager(#[from] storelab_pager::Error),
    /// A record larger than the log accepts.
    #[error("WAL record of {size} bytes exceeds the maximum of {max}")]
    RecordTooLarge {
        /// The record's encoded size.
        size: usize,
        /// [`crate::RECORD_SIZE_MAX`].
        max: usize,
    },
    /// More block references than a record can carry.
    #[error("WAL record references {count} pages; the maximum is {max}")]
    TooManyBlocks {
        /// Blocks referenced.
        count: usize,
        /// [`crate::BLOCKS_PER_RECORD_MAX`].
        max: usize,
    },
    /// Bytes that should hold a record do not decode as one.
    #[error("corrupt WAL record at {lsn}: {reason}")]
    CorruptRecord {
        /// Where the record should start.
        lsn: Lsn,
        /// What was wrong.
        reason: String,
    },
    /// The control file is unreadable (both slots corrupt) or from another format.
    #[error("corrupt WAL control file {file}: {reason}")]
    CorruptControlFile {
        /// The control file.
        file: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A segment header is from another format version.
    #[error("WAL segment {file} has format version {found}; this build reads version {supported}")]
    UnsupportedFormatVersion {
        /// The segment file.
        file: PathBuf,
        /// The version found.
        found: u16,
        /// The version this build reads.
        supported: u16,
    },
    /// The database was created with other settings than it is opened with.
    #[error("database was created with {setting} = {on_disk}, opened with {requested}")]
    SettingMismatch {
        /// Which setting.
        setting: &'static str,
        /// The value on disk.
        on_disk: String,
        /// The value asked for.
        requested: String,
    },
    /// A record names a relation that is not attached to the log.
    #[error("WAL record at {lsn} refers to relation {rel}, which is not attached")]
    UnknownRelation {
        /// The record.
        lsn: Lsn,
        /// The relation number.
        rel: u32,
    },
    /// No redo function is registered for a record type found in the log.
    #[error("WAL record at {lsn} has type {record_type}, for which no redo is registered")]
    UnknownRecordType {
        /// The record.
        lsn: Lsn,
        /// The record type.
        record_type: u8,
    },
    /// Recovery met a damaged page it cannot repair: no full-page image or doublewrite copy.
    #[error(
        "page {page_id} of {file} is damaged and the log has no image to repair it (record at {lsn}): {source}"
    )]
    UnrepairablePage {
        /// The page's file.
        file: PathBuf,
        /// The page.
        page_id: PageId,
        /// The record that needed the page.
        lsn: Lsn,
        /// What reading the page said.
        #[source]
        source: storelab_pager::Error,
    },
    /// A redo function rejected a record.
    #[error("redo of WAL record at {lsn} failed: {reason}")]
    Redo {
        /// The record.
        lsn: Lsn,
        /// Why.
        reason: String,
    },
    /// A sync of the log failed earlier; nothing appended since can be made durable.
    #[error("the WAL is poisoned by an earlier failed sync: {0}")]
    Poisoned(String),
    /// An argument was out of its legal range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
