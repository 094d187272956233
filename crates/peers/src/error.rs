//! The peers' error type, and how it becomes a [`storelab_table::Error`].
//!
//! The `Engine`/`Table` traits return the table layer's error. Wrong input is caught by the
//! shared table logic before a peer is called and gets the same typed variants as every
//! storelab engine (`DuplicateKey`, `WrongType`, ...). What a peer itself reports (an I/O
//! error, a full disk, a corrupt file) is wrapped in a [`PeerError`] and handed up as
//! [`storelab_table::Error::Io`] naming the peer's directory, or as `Corrupt` when the peer
//! says its file is corrupt.

use std::path::Path;

/// An error reported by a peer library.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerError {
    /// From SQLite (through rusqlite).
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// From redb.
    #[error("redb: {0}")]
    Redb(#[from] redb::Error),
    /// From fjall.
    #[error("fjall: {0}")]
    Fjall(#[from] fjall::Error),
}

impl PeerError {
    /// The table layer's error for this peer error, met while working in `dir`.
    pub fn into_table_error(self, dir: &Path) -> storelab_table::Error {
        if let PeerError::Redb(redb::Error::Corrupted(reason)) = &self {
            return storelab_table::Error::corrupt(
                format!("redb database in {}", dir.display()),
                reason.clone(),
            );
        }
        storelab_table::Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::other(self),
        }
    }
}

/// Converts any peer library's error into the table layer's, naming the directory.
pub(crate) trait PeerResultExt<T> {
    /// The table layer's result.
    fn in_dir(self, dir: &Path) -> storelab_table::Result<T>;
}

impl<T, E: Into<PeerError>> PeerResultExt<T> for std::result::Result<T, E> {
    fn in_dir(self, dir: &Path) -> storelab_table::Result<T> {
        self.map_err(|e| e.into().into_table_error(dir))
    }
}
