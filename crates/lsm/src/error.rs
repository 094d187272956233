//! The LSM tree's errors.

use std::path::PathBuf;

use storelab_pager::Lsn;

/// Every way an LSM operation can fail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The page manager failed (I/O error, poisoned disk, ...).
    #[error(transparent)]
    Pager(#[from] storelab_pager::Error),
    /// The log failed.
    #[error(transparent)]
    Wal(#[from] storelab_wal::Error),
    /// A file-system call outside the pager failed (directory listing, unlink, dir sync).
    #[error("{op} {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A block of a table failed its checksum.
    #[error("{file}: block at offset {offset}: checksum {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// The table file.
        file: PathBuf,
        /// Byte offset of the block in the file.
        offset: u64,
        /// The checksum stored in the block trailer.
        expected: u32,
        /// The checksum of the bytes read.
        actual: u32,
    },
    /// A table's bytes do not decode (bad footer, block layout, lengths, ordering).
    #[error("{file}: corrupt table at offset {offset}: {reason}")]
    CorruptTable {
        /// The table file.
        file: PathBuf,
        /// Byte offset of the damaged structure.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A table was written with a format version this build does not read.
    #[error("{file}: table format version {found}, this build reads {supported}")]
    UnsupportedVersion {
        /// The table file.
        file: PathBuf,
        /// The version found.
        found: u32,
        /// The version supported.
        supported: u32,
    },
    /// The manifest does not decode, or describes an impossible set of tables.
    #[error("{file}: corrupt manifest at offset {offset}: {reason}")]
    CorruptManifest {
        /// The manifest file.
        file: PathBuf,
        /// Byte offset of the bad record.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A log record of this tree is valid for the log but not for the LSM.
    #[error("LSM log record at {lsn}: {reason}")]
    CorruptLogRecord {
        /// Where the record starts.
        lsn: Lsn,
        /// What is wrong.
        reason: String,
    },
    /// The log no longer holds records the memtable needs: a checkpoint recycled them while
    /// the tree's retention hook was not registered (the tree was opened after
    /// `Wal::recover`, or the log was checkpointed while the tree was closed).
    #[error("the log needed from {needed} is gone (the log starts at {available})")]
    LogRecycled {
        /// Where replay had to start.
        needed: Lsn,
        /// Where the log now starts.
        available: Lsn,
    },
    /// A key is longer than [`crate::KEY_SIZE_MAX`] (or empty).
    #[error("key of {size} bytes (1..={max} allowed)")]
    KeyTooLarge {
        /// The key's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A value is longer than [`crate::VALUE_SIZE_MAX`].
    #[error("value of {size} bytes (at most {max} allowed)")]
    ValueTooLarge {
        /// The value's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// The call is not allowed now (for example a flush from inside an atomic group).
    #[error("invalid state: {0}")]
    InvalidState(String),
    /// A background flush or compaction failed earlier; the tree accepts no more writes.
    #[error("the LSM is poisoned by an earlier failure: {0}")]
    Poisoned(String),
    /// `check()` found a broken invariant.
    #[error("check failed: {0}")]
    CheckFailed(String),
}

/// The LSM's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Io`] for `op` on `path`.
    pub fn io(path: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            op,
            source,
        }
    }
}
