//! The pager's error type.

use std::path::PathBuf;

use crate::page::PageId;

/// The pager's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong below the storage engines.
///
/// Bytes read from disk are untrusted: every decoding failure is a variant here that names the
/// file and page, never a panic.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O call failed.
    #[error("I/O error on {file}: {op}: {source}")]
    Io {
        /// The file the call was made on.
        file: PathBuf,
        /// What was being done (`pread`, `fdatasync`, `open`, ...).
        op: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A page read from disk does not carry the checksum its contents hash to.
    #[error(
        "checksum mismatch in {file} page {page_id}: stored {expected:#010x}, computed {actual:#010x}"
    )]
    ChecksumMismatch {
        /// The file the page was read from.
        file: PathBuf,
        /// The page that was read.
        page_id: PageId,
        /// The checksum stored in the page header.
        expected: u32,
        /// The checksum computed over the page as read.
        actual: u32,
    },
    /// A page's header holds an impossible value (checksum correct, so a bug or a foreign file).
    #[error("corrupt page header in {file} page {page_id}: {reason}")]
    CorruptPage {
        /// The file the page was read from.
        file: PathBuf,
        /// The page that was read.
        page_id: PageId,
        /// What was wrong.
        reason: String,
    },
    /// A page was written by a format version this build does not read.
    #[error(
        "{file} page {page_id} has format version {found}; this build reads version {supported}"
    )]
    UnsupportedFormatVersion {
        /// The file the page was read from.
        file: PathBuf,
        /// The page that was read.
        page_id: PageId,
        /// The version found on disk.
        found: u16,
        /// The version this build reads and writes.
        supported: u16,
    },
    /// A read asked for a page past the end of its file.
    #[error("{file} has {page_count} pages; page {page_id} does not exist")]
    PageOutOfRange {
        /// The file.
        file: PathBuf,
        /// The page asked for.
        page_id: PageId,
        /// How many pages the file has.
        page_count: u64,
    },
    /// A page size other than 4, 8 or 16 KiB was asked for.
    #[error("page size {size} is not supported (4096, 8192 or 16384)")]
    InvalidPageSize {
        /// The size asked for, in bytes.
        size: usize,
    },
    /// The io_uring backend could not be set up (old kernel, sysctl, seccomp).
    #[error("io_uring is not available: {reason}")]
    IoUringUnavailable {
        /// Why, as the kernel told us.
        reason: String,
    },
    /// Every frame of the buffer pool is pinned, so no page can be brought in.
    #[error("buffer pool exhausted: all {frame_count} frames are pinned")]
    PoolExhausted {
        /// The pool's size in frames.
        frame_count: usize,
    },
    /// A file id that was never registered (or already closed) was used.
    #[error("unknown file id {0}")]
    UnknownFile(u32),
    /// A fault device injected this error on purpose.
    #[error("injected fault on {file}: {what}")]
    InjectedFault {
        /// The file the faulty I/O was aimed at.
        file: PathBuf,
        /// Which fault.
        what: String,
    },
    /// A sync failed earlier; the page cache may have dropped the dirty data, so nothing written
    /// since can be trusted to be durable (PostgreSQL's "fsyncgate"). Reopen and recover.
    #[error("storage is poisoned by an earlier failed sync of {file}")]
    Poisoned {
        /// The file whose sync failed.
        file: PathBuf,
    },
    /// An argument was out of its legal range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Wraps an `std::io::Error` with the file and operation it came from.
    pub fn io(file: impl Into<PathBuf>, op: &'static str, source: std::io::Error) -> Self {
        Error::Io {
            file: file.into(),
            op,
            source,
        }
    }
}
