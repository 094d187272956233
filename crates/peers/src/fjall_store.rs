//! fjall: an LSM tree (RocksDB's design, in Rust), one keyspace (column family) per
//! structure, as MyRocks keeps a table's primary and secondary indexes in column families.
//!
//! ```text
//!   DIR/fjall/                       (fjall's journal, keyspaces and tables)
//!     keyspace "t"                   encode(pk)                -> encode_row(row)
//!     keyspace "t.<index>"           encode(index key) ++ pk   -> ""
//!     keyspace "storelab.meta"       table name                -> next row id (i64, big-endian)
//! ```
//!
//! A batch is one fjall `WriteBatch`: atomic across keyspaces through the shared journal,
//! persisted with `PersistMode::SyncAll` (`fsync` of the journal) before `apply` returns in
//! the `sync` and `group` commit modes, left in the journal's buffer in mode `off` (the
//! database persists on close). Memory: the block cache gets 3/4 of the memory budget and
//! each keyspace's memtable may grow to 1/4 of it before it is flushed.
//!
//! Emulated: a `WriteBatch` cannot be read before it commits, so the batch is built in an
//! overlay (a `BTreeMap` of the keys it wrote, `None` for a delete) over a snapshot taken
//! when the batch began; the batch's checks read through the overlay, and the table's write
//! lock (`PeerTable`) keeps other batches of the table out until it commits. MyRocks does the
//! same with its per-transaction write batch (`WriteBatchWithIndex`). Updates of non-key
//! columns rewrite the whole row (no merge operator).

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::path::{Path, PathBuf};

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use parking_lot::RwLock;
use storelab_table::{ByteRange, Result, StorageConfig};
use storelab_wal::CommitMode;

use crate::error::PeerResultExt;
use crate::store::{
    Layout, META_STRUCTURE_NAME, RowSink, Source, Store, WriteBody, WriteTxn, split_index_entry,
};

/// The subdirectory of the engine's directory that fjall owns.
pub const FJALL_DIR_NAME: &str = "fjall";
/// The smallest memtable size given to fjall (it flushes very small memtables constantly).
const MEMTABLE_BYTES_MIN: u64 = 1 << 20;
/// The suffix of fjall's journal files (the log; left out of sizes on disk).
const JOURNAL_SUFFIX: &str = ".jnl";

/// fjall's settings, as recorded in results.
#[derive(Clone, Debug)]
pub struct FjallSettings {
    /// Each batch is persisted with `PersistMode::SyncAll` before `apply` returns.
    pub durable: bool,
    /// The block cache, bytes.
    pub cache_size_bytes: u64,
    /// Each keyspace's memtable limit, bytes.
    pub memtable_size_bytes: u64,
}

impl FjallSettings {
    /// The settings for a storage configuration: the memory budget split 3:1 between the
    /// block cache and the memtables.
    pub fn new(config: &StorageConfig) -> FjallSettings {
        let budget = config.pool_bytes as u64;
        let memtable = (budget / 4).max(MEMTABLE_BYTES_MIN);
        FjallSettings {
            durable: config.commit_mode != CommitMode::Off,
            cache_size_bytes: budget.saturating_sub(memtable).max(MEMTABLE_BYTES_MIN),
            memtable_size_bytes: memtable,
        }
    }
}

/// A fjall database behind the [`Store`] trait; see the module doc.
pub struct FjallStore {
    dir: PathBuf,
    settings: FjallSettings,
    db: Database,
    keyspaces: RwLock<HashMap<String, Keyspace>>,
}

impl FjallStore {
    /// Opens (or creates) `dir/fjall`.
    pub fn open(dir: &Path, settings: FjallSettings) -> Result<FjallStore> {
        let db = Database::builder(dir.join(FJALL_DIR_NAME))
            .cache_size(settings.cache_size_bytes)
            .open()
            .in_dir(dir)?;
        let store = FjallStore {
            dir: dir.to_path_buf(),
            settings,
            db,
            keyspaces: RwLock::new(HashMap::new()),
        };
        store.keyspace(META_STRUCTURE_NAME)?;
        Ok(store)
    }

    /// The settings in force.
    pub fn settings(&self) -> &FjallSettings {
        &self.settings
    }

    /// The keyspace called `name`, created if missing.
    fn keyspace(&self, name: &str) -> Result<Keyspace> {
        if let Some(ks) = self.keyspaces.read().get(name) {
            return Ok(ks.clone());
        }
        let memtable = self.settings.memtable_size_bytes;
        let ks = self
            .db
            .keyspace(name, || {
                KeyspaceCreateOptions::default().max_memtable_size(memtable)
            })
            .in_dir(&self.dir)?;
        self.keyspaces.write().insert(name.to_string(), ks.clone());
        Ok(ks)
    }

    fn all_keyspaces(&self) -> Result<Vec<(String, Keyspace)>> {
        self.db
            .list_keyspace_names()
            .into_iter()
            .map(|name| {
                let name = name.to_string();
                let ks = self.keyspace(&name)?;
                Ok((name, ks))
            })
            .collect()
    }
}

/// Range bounds as fjall takes them.
fn bounds(range: &ByteRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    range.clone()
}

impl Store for FjallStore {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_table(&self, layout: &Layout) -> Result<()> {
        self.keyspace(&layout.table)?;
        for name in &layout.indexes {
            self.keyspace(name)?;
        }
        Ok(())
    }

    fn write(&self, layout: &Layout, body: WriteBody<'_>) -> Result<()> {
        let mut structures = vec![self.keyspace(&layout.table)?];
        for name in &layout.indexes {
            structures.push(self.keyspace(name)?);
        }
        let meta = structures.len();
        structures.push(self.keyspace(META_STRUCTURE_NAME)?);
        let mut txn = FjallTxn {
            dir: &self.dir,
            layout,
            snapshot: self.db.snapshot(),
            structures: &structures,
            meta,
            overlay: BTreeMap::new(),
        };
        body(&mut txn)?;
        let overlay = std::mem::take(&mut txn.overlay);
        if overlay.is_empty() {
            return Ok(());
        }
        let durability = self.settings.durable.then_some(PersistMode::SyncAll);
        let mut batch = self.db.batch().durability(durability);
        for ((which, key), value) in overlay {
            match value {
                Some(value) => batch.insert(&structures[which], key, value),
                None => batch.remove(&structures[which], key),
            }
        }
        batch.commit().in_dir(&self.dir)
    }

    fn get(&self, layout: &Layout, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        let rows = self.keyspace(&layout.table)?;
        Ok(rows.get(pk).in_dir(&self.dir)?.map(|v| v.to_vec()))
    }

    fn scan(
        &self,
        layout: &Layout,
        source: Source,
        range: &ByteRange,
        sink: RowSink<'_>,
    ) -> Result<()> {
        let rows = self.keyspace(&layout.table)?;
        // One snapshot for the whole scan, so index entries and their rows agree.
        let snapshot = self.db.snapshot();
        match source {
            Source::Full | Source::Primary { .. } => {
                let iter = snapshot.range(&rows, bounds(range));
                let iter: Box<dyn Iterator<Item = fjall::Guard>> =
                    if matches!(source, Source::Primary { reverse: true }) {
                        Box::new(iter.rev())
                    } else {
                        Box::new(iter)
                    };
                for guard in iter {
                    let (k, v) = guard.into_inner().in_dir(&self.dir)?;
                    if !sink(&k, &v)? {
                        break;
                    }
                }
            }
            Source::Index(i) => {
                let index = self.keyspace(&layout.indexes[i])?;
                for guard in snapshot.range(&index, bounds(range)) {
                    let entry = guard.key().in_dir(&self.dir)?;
                    let (_, pk) = split_index_entry(layout, i, &entry)?;
                    let Some(row) = snapshot.get(&rows, pk).in_dir(&self.dir)? else {
                        return Err(storelab_table::Error::corrupt(
                            format!("fjall keyspace {:?}", layout.indexes[i]),
                            "an index entry without a row",
                        ));
                    };
                    if !sink(pk, &row)? {
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn index_entries(&self, layout: &Layout, index: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let ks = self.keyspace(&layout.indexes[index])?;
        let snapshot = self.db.snapshot();
        let mut entries = Vec::new();
        for guard in snapshot.iter(&ks) {
            let entry = guard.key().in_dir(&self.dir)?;
            let (key, pk) = split_index_entry(layout, index, &entry)?;
            entries.push((key.to_vec(), pk.to_vec()));
        }
        Ok(entries)
    }

    fn count_rows(&self, layout: &Layout) -> Result<u64> {
        let rows = self.keyspace(&layout.table)?;
        Ok(self.db.snapshot().len(&rows).in_dir(&self.dir)? as u64)
    }

    fn next_row_id(&self, layout: &Layout) -> Result<Option<i64>> {
        let meta = self.keyspace(META_STRUCTURE_NAME)?;
        match meta.get(layout.table.as_bytes()).in_dir(&self.dir)? {
            None => Ok(None),
            Some(v) => {
                let bytes: [u8; 8] = v.as_ref().try_into().map_err(|_| {
                    storelab_table::Error::corrupt(
                        format!("fjall keyspace {META_STRUCTURE_NAME:?}"),
                        format!("a row id of {} bytes", v.len()),
                    )
                })?;
                Ok(Some(i64::from_be_bytes(bytes)))
            }
        }
    }

    /// Per keyspace: its tables and blob files on disk (fjall's `disk_space`), without the
    /// memtable, which lives in the journal until it is flushed (the journal is `shared`).
    fn structure_bytes(&self, layout: &Layout) -> Result<BTreeMap<String, u64>> {
        let mut own = BTreeMap::new();
        let mut all = 0;
        for (name, ks) in self.all_keyspaces()? {
            let bytes = ks.disk_space();
            all += bytes;
            if name == layout.table || layout.indexes.contains(&name) {
                own.insert(name, bytes);
            }
        }
        let data_bytes = crate::store::allocated_bytes(&self.dir.join(FJALL_DIR_NAME), &|name| {
            name.ends_with(JOURNAL_SUFFIX)
        });
        Ok(crate::store::with_shared(own, all, data_bytes))
    }

    /// Syncs the journal and flushes every memtable into a table file, so that recovery has
    /// nothing to replay (the LSM's checkpoint).
    fn checkpoint(&self) -> Result<()> {
        self.db.persist(PersistMode::SyncAll).in_dir(&self.dir)?;
        for (_, ks) in self.all_keyspaces()? {
            ks.rotate_memtable_and_wait().in_dir(&self.dir)?;
        }
        Ok(())
    }

    fn check(&self) -> Result<()> {
        // fjall checks block checksums as it reads; it has no whole-database check to call.
        Ok(())
    }
}

/// Which structure of a batch's overlay: 0 the rows, 1 + i index i, `meta` the row ids.
type StructureNo = usize;

/// A batch being built over a snapshot; see the module doc.
struct FjallTxn<'t> {
    dir: &'t Path,
    layout: &'t Layout,
    snapshot: Snapshot,
    structures: &'t [Keyspace],
    meta: StructureNo,
    overlay: BTreeMap<(StructureNo, Vec<u8>), Option<Vec<u8>>>,
}

fn entry(key: &[u8], pk: &[u8]) -> Vec<u8> {
    let mut e = Vec::with_capacity(key.len() + pk.len());
    e.extend_from_slice(key);
    e.extend_from_slice(pk);
    e
}

impl FjallTxn<'_> {
    fn put(&mut self, which: StructureNo, key: Vec<u8>, value: Option<Vec<u8>>) {
        self.overlay.insert((which, key), value);
    }
}

impl WriteTxn for FjallTxn<'_> {
    fn get(&mut self, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        if let Some(value) = self.overlay.get(&(0, pk.to_vec())) {
            return Ok(value.clone());
        }
        Ok(self
            .snapshot
            .get(&self.structures[0], pk)
            .in_dir(self.dir)?
            .map(|v| v.to_vec()))
    }

    fn index_contains(&mut self, index: usize, key: &[u8]) -> Result<bool> {
        let which = 1 + index;
        // The batch's own entries with this index key: any live one answers; deleted ones
        // hide the snapshot's.
        let from = (which, key.to_vec());
        let mut deleted = Vec::new();
        for ((w, k), v) in self.overlay.range(from..) {
            if *w != which || !k.starts_with(key) {
                break;
            }
            match v {
                Some(_) => return Ok(true),
                None => deleted.push(k.clone()),
            }
        }
        for guard in self.snapshot.prefix(&self.structures[which], key) {
            let k = guard.key().in_dir(self.dir)?;
            if !deleted.iter().any(|d| d.as_slice() == &*k) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn insert(&mut self, pk: &[u8], row: &[u8], keys: &[Vec<u8>]) -> Result<()> {
        self.put(0, pk.to_vec(), Some(row.to_vec()));
        for (i, key) in keys.iter().enumerate() {
            self.put(1 + i, entry(key, pk), Some(Vec::new()));
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
        self.put(0, pk.to_vec(), Some(row.to_vec()));
        for (i, (old, new)) in old_keys.iter().zip(new_keys).enumerate() {
            if old != new {
                self.put(1 + i, entry(old, pk), None);
                self.put(1 + i, entry(new, pk), Some(Vec::new()));
            }
        }
        Ok(())
    }

    fn delete(&mut self, pk: &[u8], old_keys: &[Vec<u8>]) -> Result<()> {
        self.put(0, pk.to_vec(), None);
        for (i, old) in old_keys.iter().enumerate() {
            self.put(1 + i, entry(old, pk), None);
        }
        Ok(())
    }

    fn set_next_row_id(&mut self, next: i64) -> Result<()> {
        let key = self.layout.table.as_bytes().to_vec();
        self.put(self.meta, key, Some(next.to_be_bytes().to_vec()));
        Ok(())
    }
}
