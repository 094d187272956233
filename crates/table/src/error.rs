//! The table layer's error type, shared by every engine.

/// The table layer's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in a table operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From the page manager.
    #[error(transparent)]
    Pager(#[from] storelab_pager::Error),
    /// From the log.
    #[error(transparent)]
    Wal(#[from] storelab_wal::Error),
    /// From a B+tree.
    #[error(transparent)]
    BTree(#[from] storelab_btree::Error),
}
