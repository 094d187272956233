//! redb: a copy-on-write B+tree file (LMDB's design, in Rust), one redb table per structure.
//!
//! ```text
//!   DIR/redb.db
//!     table "t"                encode(pk)               -> encode_row(row)
//!     table "t.<index>"        encode(index key) ++ pk  -> ()
//!     table "storelab.meta"    table name               -> next hidden row id (i64)
//! ```
//!
//! Every batch is one write transaction with `Durability::Immediate` (in the `sync` and
//! `group` commit modes): redb writes the changed pages to fresh locations and makes them
//! current with a checksummed commit slot in the header, synced with `fdatasync`; there is no
//! log, so a commit writes whole 4 KiB pages (the B+tree path from leaf to root). In commit
//! mode `off`, `Durability::None`; closing the engine commits an empty durable transaction
//! so that a clean shutdown keeps everything. redb's cache is the memory budget.
//!
//! Reads each take a read transaction, a snapshot: an index scan and its row fetches see one
//! state.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableHandle, WriteTransaction,
};
use storelab_table::{ByteRange, Result, StorageConfig};
use storelab_wal::CommitMode;

use crate::error::PeerError;
use crate::store::{
    Layout, META_STRUCTURE_NAME, RowSink, Source, Store, WriteBody, WriteTxn, split_index_entry,
};

/// The database file's name in the engine's directory.
pub const REDB_FILE_NAME: &str = "redb.db";
/// redb's page size (fixed by redb).
pub const REDB_PAGE_SIZE: u64 = 4096;

type Bytes = &'static [u8];

fn rows_def(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

fn index_def(name: &str) -> TableDefinition<'_, &'static [u8], ()> {
    TableDefinition::new(name)
}

fn meta_def() -> TableDefinition<'static, &'static str, i64> {
    TableDefinition::new(META_STRUCTURE_NAME)
}

/// redb's settings, as recorded in results.
#[derive(Clone, Debug)]
pub struct RedbSettings {
    /// Commit durability.
    pub durable: bool,
    /// `Builder::set_cache_size`, bytes.
    pub cache_size_bytes: usize,
}

impl RedbSettings {
    /// The settings for a storage configuration.
    pub fn new(config: &StorageConfig) -> RedbSettings {
        RedbSettings {
            durable: config.commit_mode != CommitMode::Off,
            cache_size_bytes: config.pool_bytes,
        }
    }
}

/// A redb file behind the [`Store`] trait; see the module doc.
pub struct RedbStore {
    dir: PathBuf,
    settings: RedbSettings,
    db: Database,
}

fn redb_err(dir: &Path, e: impl Into<redb::Error>) -> storelab_table::Error {
    PeerError::Redb(e.into()).into_table_error(dir)
}

/// `.map_err` shorthand for redb's many error types.
trait RedbResultExt<T> {
    fn r(self, dir: &Path) -> Result<T>;
}

impl<T, E: Into<redb::Error>> RedbResultExt<T> for std::result::Result<T, E> {
    fn r(self, dir: &Path) -> Result<T> {
        self.map_err(|e| redb_err(dir, e))
    }
}

fn bounds(range: &ByteRange) -> (Bound<&[u8]>, Bound<&[u8]>) {
    (
        range.0.as_ref().map(Vec::as_slice),
        range.1.as_ref().map(Vec::as_slice),
    )
}

impl RedbStore {
    /// Opens (or creates) `dir/redb.db`.
    pub fn open(dir: &Path, settings: RedbSettings) -> Result<RedbStore> {
        let db = Database::builder()
            .set_cache_size(settings.cache_size_bytes)
            .create(dir.join(REDB_FILE_NAME))
            .r(dir)?;
        let store = RedbStore {
            dir: dir.to_path_buf(),
            settings,
            db,
        };
        let tx = store.begin()?;
        tx.open_table(meta_def()).r(dir)?;
        tx.commit().r(dir)?;
        Ok(store)
    }

    /// The settings in force.
    pub fn settings(&self) -> &RedbSettings {
        &self.settings
    }

    fn begin(&self) -> Result<WriteTransaction> {
        let mut tx = self.db.begin_write().r(&self.dir)?;
        let durability = if self.settings.durable {
            Durability::Immediate
        } else {
            Durability::None
        };
        tx.set_durability(durability).r(&self.dir)?;
        Ok(tx)
    }
}

impl Drop for RedbStore {
    /// Commits an empty durable transaction, so that non-durable commits (mode `off`)
    /// survive a clean close. Errors cannot be returned from here.
    fn drop(&mut self) {
        if let Ok(mut tx) = self.db.begin_write() {
            let _ = tx.set_durability(Durability::Immediate);
            let _ = tx.commit();
        }
    }
}

impl Store for RedbStore {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_table(&self, layout: &Layout) -> Result<()> {
        let tx = self.begin()?;
        tx.open_table(rows_def(&layout.table)).r(&self.dir)?;
        for name in &layout.indexes {
            tx.open_table(index_def(name)).r(&self.dir)?;
        }
        tx.commit().r(&self.dir)
    }

    fn write(&self, layout: &Layout, body: WriteBody<'_>) -> Result<()> {
        let tx = self.begin()?;
        {
            let rows = tx.open_table(rows_def(&layout.table)).r(&self.dir)?;
            let indexes = layout
                .indexes
                .iter()
                .map(|name| tx.open_table(index_def(name)))
                .collect::<std::result::Result<Vec<_>, _>>()
                .r(&self.dir)?;
            let meta = tx.open_table(meta_def()).r(&self.dir)?;
            let mut txn = RedbTxn {
                dir: &self.dir,
                layout,
                rows,
                indexes,
                meta,
            };
            // On error the transaction is dropped uncommitted: redb aborts it.
            body(&mut txn)?;
        }
        tx.commit().r(&self.dir)
    }

    fn get(&self, layout: &Layout, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let rows = tx.open_table(rows_def(&layout.table)).r(&self.dir)?;
        Ok(rows.get(pk).r(&self.dir)?.map(|v| v.value().to_vec()))
    }

    fn scan(
        &self,
        layout: &Layout,
        source: Source,
        range: &ByteRange,
        sink: RowSink<'_>,
    ) -> Result<()> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let rows = tx.open_table(rows_def(&layout.table)).r(&self.dir)?;
        match source {
            Source::Full | Source::Primary { .. } => {
                let iter = rows.range::<&[u8]>(bounds(range)).r(&self.dir)?;
                let reverse = matches!(source, Source::Primary { reverse: true });
                let mut visit = |entry: std::result::Result<_, redb::StorageError>| {
                    let (k, v): (redb::AccessGuard<Bytes>, redb::AccessGuard<Bytes>) =
                        entry.r(&self.dir)?;
                    sink(k.value(), v.value())
                };
                if reverse {
                    for entry in iter.rev() {
                        if !visit(entry)? {
                            break;
                        }
                    }
                } else {
                    for entry in iter {
                        if !visit(entry)? {
                            break;
                        }
                    }
                }
            }
            Source::Index(i) => {
                let index = tx.open_table(index_def(&layout.indexes[i])).r(&self.dir)?;
                for entry in index.range::<&[u8]>(bounds(range)).r(&self.dir)? {
                    let (k, _) = entry.r(&self.dir)?;
                    let entry = k.value();
                    let (_, pk) = split_index_entry(layout, i, entry)?;
                    let Some(row) = rows.get(pk).r(&self.dir)? else {
                        return Err(storelab_table::Error::corrupt(
                            format!("redb table {:?}", layout.indexes[i]),
                            "an index entry without a row",
                        ));
                    };
                    if !sink(pk, row.value())? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn index_entries(&self, layout: &Layout, index: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let table = tx
            .open_table(index_def(&layout.indexes[index]))
            .r(&self.dir)?;
        let mut entries = Vec::new();
        for entry in table.iter().r(&self.dir)? {
            let (k, _) = entry.r(&self.dir)?;
            let entry = k.value();
            let (key, pk) = split_index_entry(layout, index, entry)?;
            entries.push((key.to_vec(), pk.to_vec()));
        }
        Ok(entries)
    }

    fn count_rows(&self, layout: &Layout) -> Result<u64> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let rows = tx.open_table(rows_def(&layout.table)).r(&self.dir)?;
        rows.len().r(&self.dir)
    }

    fn next_row_id(&self, layout: &Layout) -> Result<Option<i64>> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let meta = tx.open_table(meta_def()).r(&self.dir)?;
        Ok(meta
            .get(layout.table.as_str())
            .r(&self.dir)?
            .map(|v| v.value()))
    }

    /// Per table: its B+tree's pages (leaf and branch) times the page size.
    fn structure_bytes(&self, layout: &Layout) -> Result<BTreeMap<String, u64>> {
        let tx = self.db.begin_read().r(&self.dir)?;
        let mut own = BTreeMap::new();
        let mut all = 0;
        for handle in tx.list_tables().r(&self.dir)? {
            let name = handle.name().to_string();
            let table = tx.open_untyped_table(handle).r(&self.dir)?;
            let stats = table.stats().r(&self.dir)?;
            let bytes = (stats.leaf_pages() + stats.branch_pages()) * REDB_PAGE_SIZE;
            all += bytes;
            if name == layout.table || layout.indexes.contains(&name) {
                own.insert(name, bytes);
            }
        }
        let data_bytes = crate::store::allocated_bytes(&self.dir.join(REDB_FILE_NAME), &|_| false);
        Ok(crate::store::with_shared(own, all, data_bytes))
    }

    fn checkpoint(&self) -> Result<()> {
        // Every durable commit is already in the data file; in mode `off` this makes the
        // non-durable ones durable.
        let mut tx = self.db.begin_write().r(&self.dir)?;
        tx.set_durability(Durability::Immediate).r(&self.dir)?;
        tx.commit().r(&self.dir)
    }

    fn check(&self) -> Result<()> {
        // `Database::check_integrity` needs exclusive access (`&mut`), which a shared engine
        // does not have; the per-table checks of the shared logic still run.
        Ok(())
    }
}

/// A batch inside one redb write transaction.
struct RedbTxn<'t> {
    dir: &'t Path,
    layout: &'t Layout,
    rows: redb::Table<'t, Bytes, Bytes>,
    indexes: Vec<redb::Table<'t, Bytes, ()>>,
    meta: redb::Table<'t, &'static str, i64>,
}

fn entry(key: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + pk.len());
    e.extend_from_slice(key);
    e.extend_from_slice(pk);
    e
}

impl WriteTxn for RedbTxn<'_> {
    fn get(&mut self, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.rows.get(pk).r(self.dir)?.map(|v| v.value().to_vec()))
    }

    fn index_contains(&mut self, index: usize, key: &[u8]) -> Result<bool> {
        // An entry has this index key exactly when it starts with its encoding: an encoded
        // tuple is never a proper prefix of another.
        let mut iter = self.indexes[index]
            .range::<&[u8]>((Bound::Included(key), Bound::Unbounded))
            .r(self.dir)?;
        match iter.next() {
            Some(e) => Ok(e.r(self.dir)?.0.value().starts_with(key)),
            None => Ok(false),
        }
    }

    fn insert(&mut self, pk: &[u8], row: &[u8], keys: &[Vec<u8>]) -> Result<()> {
        self.rows.insert(pk, row).r(self.dir)?;
        for (index, key) in self.indexes.iter_mut().zip(keys) {
            index.insert(entry(key, pk).as_slice(), ()).r(self.dir)?;
        }
        Ok(())
    }

    fn update(
        &mut self,
        pk: &[u8],
        row: &[u8],
        old_keys: &[Vec<u8>],
        new_keys: &[Vec<u8>],
    ) -> Result<()> {
        self.rows.insert(pk, row).r(self.dir)?;
        for ((index, old), new) in self.indexes.iter_mut().zip(old_keys).zip(new_keys) {
            if old != new {
                index.remove(entry(old, pk).as_slice()).r(self.dir)?;
                index.insert(entry(new, pk).as_slice(), ()).r(self.dir)?;
            }
        }
        Ok(())
    }

    fn delete(&mut self, pk: &[u8], old_keys: &[Vec<u8>]) -> Result<()> {
        self.rows.remove(pk).r(self.dir)?;
        for (index, old) in self.indexes.iter_mut().zip(old_keys) {
            index.remove(entry(old, pk).as_slice()).r(self.dir)?;
        }
        Ok(())
    }

    fn set_next_row_id(&mut self, next: i64) -> Result<()> {
        self.meta
            .insert(self.layout.table.as_str(), next)
            .r(self.dir)?;
        Ok(())
    }
}
