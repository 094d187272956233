//! What each peer provides to the shared table logic of [`crate::engine`]: a handful of
//! row-level reads and writes on encoded keys and encoded rows.
//!
//! A table's structures in a peer ([`Layout`]):
//!
//! ```text
//!   primary:      encode(primary key, or [Int(row_id)])   -> encode_row(row)
//!   index i:      encode(index key)  ++  encode(primary key)       (a set)
//!   meta:         table name -> next hidden row id         (tables without a primary key)
//! ```
//!
//! The key-value peers (redb, fjall) store exactly this. SQLite stores one SQL table per
//! storelab table with the encoded primary key, the encoded row and one column per secondary
//! index holding that index's encoded key, and real SQL indexes on those columns: SQLite then
//! appends the primary key (WITHOUT ROWID) or the row id (rowid table) to each index entry
//! itself, which is the same set as above.

use std::collections::BTreeMap;
use std::path::Path;

use storelab_table::{ByteRange, ColumnType, Result, Schema};

/// Separates a table's name from an index's name in the peers' structure names. Storelab
/// names are letters, digits and `_` only, so no table's structure can take another's name.
pub const STRUCTURE_NAME_SEPARATOR: char = '.';

/// The name of the structure holding the hidden row ids of tables without a primary key.
pub const META_STRUCTURE_NAME: &str = "storelab.meta";

/// The names of one table's structures in a peer.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The table's name; also its primary structure's name.
    pub table: String,
    /// Per secondary index (schema order): its structure's name, `table.index`.
    pub indexes: Vec<String>,
    /// Per secondary index: whether it is unique.
    pub unique: Vec<bool>,
    /// Per secondary index: its key's column types (to split an entry into index key and
    /// primary key).
    pub index_types: Vec<Vec<ColumnType>>,
}

impl Layout {
    /// The layout of a table with this schema.
    pub fn of(schema: &Schema) -> Layout {
        Layout {
            table: schema.name.clone(),
            indexes: schema
                .indexes
                .iter()
                .map(|i| format!("{}{STRUCTURE_NAME_SEPARATOR}{}", schema.name, i.name))
                .collect(),
            unique: schema.indexes.iter().map(|i| i.unique).collect(),
            index_types: schema
                .indexes
                .iter()
                .map(|i| schema.index_types(i))
                .collect(),
        }
    }
}

/// Which structure a scan walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Every row, in the peer's own order (rowid order for a SQLite rowid table, key order
    /// for the others).
    Full,
    /// The primary key, ascending or descending.
    Primary {
        /// Descending.
        reverse: bool,
    },
    /// Secondary index `i` (schema order), ascending.
    Index(usize),
}

/// Receives `(encoded primary key, encoded row)` pairs; returns `false` to stop.
pub type RowSink<'a> = &'a mut dyn FnMut(&[u8], &[u8]) -> Result<bool>;

/// The writes of one atomic batch, inside one peer transaction. Reads see the batch's
/// earlier writes. Dropping the transaction without [`Store::write`]'s commit discards it.
pub trait WriteTxn {
    /// The encoded row with this encoded primary key.
    fn get(&mut self, pk: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Whether secondary index `index` has an entry whose index key is exactly `key`.
    fn index_contains(&mut self, index: usize, key: &[u8]) -> Result<bool>;
    /// Stores a new row and its index entries (`keys[i]`: its key in index `i`).
    fn insert(&mut self, pk: &[u8], row: &[u8], keys: &[Vec<u8>]) -> Result<()>;
    /// Replaces a row; moves the index entries whose key changed from `old_keys` to
    /// `new_keys`.
    fn update(
        &mut self,
        pk: &[u8],
        row: &[u8],
        old_keys: &[Vec<u8>],
        new_keys: &[Vec<u8>],
    ) -> Result<()>;
    /// Removes a row and its index entries.
    fn delete(&mut self, pk: &[u8], old_keys: &[Vec<u8>]) -> Result<()>;
    /// Records the next hidden row id of the table.
    fn set_next_row_id(&mut self, next: i64) -> Result<()>;
}

/// A body run inside a write transaction.
pub type WriteBody<'a> = &'a mut dyn FnMut(&mut dyn WriteTxn) -> Result<()>;

/// One peer's storage: the directory's database, shared by its tables.
pub trait Store: Send + Sync {
    /// The directory.
    fn dir(&self) -> &Path;
    /// Creates the table's structures if they do not exist yet (so opening a table whose
    /// creation was interrupted after the catalog was written completes it).
    fn create_table(&self, layout: &Layout) -> Result<()>;
    /// Runs `body` in one write transaction and commits it (durably in the `sync` and
    /// `group` commit modes) if it returns `Ok`; otherwise nothing of it stays.
    fn write(&self, layout: &Layout, body: WriteBody<'_>) -> Result<()>;
    /// The encoded row with this encoded primary key.
    fn get(&self, layout: &Layout, pk: &[u8]) -> Result<Option<Vec<u8>>>;
    /// Visits the rows of `source` whose scanned key lies in `range`, in the source's order.
    fn scan(
        &self,
        layout: &Layout,
        source: Source,
        range: &ByteRange,
        sink: RowSink<'_>,
    ) -> Result<()>;
    /// Every entry of secondary index `index` as `(index key, primary key)` bytes, in index
    /// order, read from the index itself (for `check`).
    fn index_entries(&self, layout: &Layout, index: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>>;
    /// Rows in the table (counted once at open; the table keeps the count after that).
    fn count_rows(&self, layout: &Layout) -> Result<u64>;
    /// The next hidden row id recorded for the table, if any was.
    fn next_row_id(&self, layout: &Layout) -> Result<Option<i64>>;
    /// Bytes on disk of the table's own structures by name, plus `shared` for what the
    /// directory holds beyond every table's structures (log, journal, free pages, metadata).
    fn structure_bytes(&self, layout: &Layout) -> Result<BTreeMap<String, u64>>;
    /// Makes everything durable in the data files (SQLite's WAL checkpoint, fjall's memtable
    /// flush); a no-op where every commit already is.
    fn checkpoint(&self) -> Result<()>;
    /// The peer's own consistency check, where it has one (SQLite's `integrity_check`).
    fn check(&self) -> Result<()>;
}

/// Splits a key-value index entry into its index key and primary key (the index key's
/// length is found by decoding it: entries carry no length field).
pub fn split_index_entry<'e>(
    layout: &Layout,
    index: usize,
    entry: &'e [u8],
) -> Result<(&'e [u8], &'e [u8])> {
    let (_, size) = storelab_table::key::decode_key_prefix(entry, &layout.index_types[index])?;
    Ok(entry.split_at(size))
}

/// Adds the `shared` entry: the bytes of the peer's data files (`data_bytes`: logs excluded,
/// as storelab's engines leave their WAL out of table sizes) not counted in any table's own
/// structures (`all_tables_bytes`): free pages, metadata, unflushed or obsolete files.
pub fn with_shared(
    mut own: BTreeMap<String, u64>,
    all_tables_bytes: u64,
    data_bytes: u64,
) -> BTreeMap<String, u64> {
    own.insert(
        "shared".to_string(),
        data_bytes.saturating_sub(all_tables_bytes),
    );
    own
}

/// Bytes allocated to the files under `path` (a file or a directory, recursively, as `du`
/// reports), leaving out files whose name `skip` accepts.
pub fn allocated_bytes(path: &Path, skip: &dyn Fn(&str) -> bool) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.blocks() * 512;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| !skip(&e.file_name().to_string_lossy()))
        .map(|e| allocated_bytes(&e.path(), skip))
        .sum()
}
