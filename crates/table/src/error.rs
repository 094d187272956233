//! The table layer's error type, shared by every engine.
//!
//! The contract every engine keeps: wrong input (an unknown table, column or index, a value of
//! the wrong type, a duplicate key, a row over the size limit) returns one of these typed
//! errors and changes nothing. Bytes read from disk that do not decode are [`Error::Corrupt`],
//! never a panic.

use std::path::PathBuf;

use crate::value::ColumnType;

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
    /// No table has this name.
    #[error("no table named {name:?}")]
    NoSuchTable {
        /// The name asked for.
        name: String,
    },
    /// `create_table` with the name of an existing table.
    #[error("table {name:?} already exists")]
    TableExists {
        /// The name.
        name: String,
    },
    /// A column name (or column index) the table does not have.
    #[error("table {table:?} has no column {column:?}")]
    NoSuchColumn {
        /// The table.
        table: String,
        /// The column's name, or `#i` for a column index `i` out of range.
        column: String,
    },
    /// An index name the table does not have.
    #[error("table {table:?} has no index {index:?}")]
    NoSuchIndex {
        /// The table.
        table: String,
        /// The index asked for.
        index: String,
    },
    /// A value whose type is not its column's.
    #[error("column {column:?} has type {expected}, got a value of type {got}")]
    WrongType {
        /// The column's name (`row_id` for the hidden row id).
        column: String,
        /// The column's type.
        expected: ColumnType,
        /// The value's type.
        got: ColumnType,
    },
    /// A row or key with the wrong number of values.
    #[error("expected {expected} values, got {got}")]
    WrongArity {
        /// How many values the row or key must have (the most, for a key prefix).
        expected: usize,
        /// How many it has.
        got: usize,
    },
    /// An update that sets a primary-key column (delete and insert instead).
    #[error("column {column:?} is part of the primary key and cannot be updated")]
    PrimaryKeyChange {
        /// The column's name.
        column: String,
    },
    /// An insert or update that would give two live rows the same primary or unique key.
    #[error("duplicate key in index {index:?} of table {table:?}")]
    DuplicateKey {
        /// The table.
        table: String,
        /// The index: its name, or `primary` for the primary key.
        index: String,
    },
    /// An encoded row larger than the engine accepts.
    #[error("encoded row of {size} bytes exceeds the maximum of {max}")]
    RowTooLarge {
        /// The row's encoded size in bytes.
        size: usize,
        /// The engine's `row_size_max`.
        max: usize,
    },
    /// An encoded key larger than the engine's index accepts.
    #[error("encoded key of {size} bytes exceeds the maximum of {max}")]
    KeyTooLarge {
        /// The key's encoded size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A schema that breaks a rule of [`crate::Schema::validate`].
    #[error("invalid schema: {0}")]
    InvalidSchema(String),
    /// An argument out of range (a projection column, a scan bound, a reverse index scan).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Bytes that do not decode: a row, a key, the catalog.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// The file or structure (and page, when known).
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error on a file of the table layer (the catalog).
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// A catalog written in another format version than this build reads.
    #[error("catalog {path} has format version {found}; this build reads version {expected}")]
    CatalogVersion {
        /// The catalog file.
        path: PathBuf,
        /// The version in the file.
        found: u64,
        /// The version this build reads and writes.
        expected: u64,
    },
    /// A directory whose catalog belongs to another engine.
    #[error("catalog {path} belongs to engine {found:?}, not {expected:?}")]
    EngineMismatch {
        /// The catalog file.
        path: PathBuf,
        /// The engine named in the file.
        found: String,
        /// The engine that tried to open it.
        expected: String,
    },
    /// A sync failed earlier; the engine (or catalog) refuses all further changes because the
    /// state of its files is unknown (never retry fsync: the kernel may have dropped the dirty
    /// pages and report success the second time).
    #[error("poisoned by an earlier failed sync")]
    Poisoned,
}

impl Error {
    /// An [`Error::Corrupt`] from anything printable.
    pub fn corrupt(what: impl Into<String>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            what: what.into(),
            reason: reason.into(),
        }
    }
}
