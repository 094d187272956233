//! The B+tree's error type.

use std::path::PathBuf;

use storelab_pager::PageId;

/// The B+tree's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the page manager.
    #[error(transparent)]
    Pager(#[from] storelab_pager::Error),
    /// From the log.
    #[error(transparent)]
    Wal(#[from] storelab_wal::Error),
    /// A key longer than the node size allows.
    #[error("key of {size} bytes exceeds the maximum of {max}")]
    KeyTooLarge {
        /// The key's size.
        size: usize,
        /// The limit for this tree's node size.
        max: usize,
    },
    /// A value longer than [`crate::VALUE_SIZE_MAX`].
    #[error("value of {size} bytes exceeds the maximum of {max}")]
    ValueTooLarge {
        /// The value's size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// `insert` of a key that is present.
    #[error("duplicate key")]
    DuplicateKey,
    /// A page of the tree does not hold what the tree expects.
    #[error("corrupt B+tree {file} page {page_id}: {reason}")]
    Corrupt {
        /// The tree's file.
        file: PathBuf,
        /// The page.
        page_id: PageId,
        /// What is wrong.
        reason: String,
    },
    /// An argument out of range (a node size, a fill factor).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}
