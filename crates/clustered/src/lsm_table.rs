//! One table of the clustered engine's LSM layout (MyRocks' key layout): the rows and every
//! secondary index are key ranges of the database's one LSM tree, told apart by a 4-byte
//! index id in front of every key. See the crate documentation ("The LSM layout").

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use storelab_lsm::{BatchOp, Lsm, LsmStats};
use storelab_pager::BufferPool;
use storelab_table::catalog::{Catalog, TableId};
use storelab_table::codec::{decode_columns, decode_row, encode_row_to_vec, encoded_row_size};
use storelab_table::engine::load_in_batches;
use storelab_table::key::{
    ByteRange, decode_key, decode_key_prefix, encode_key, encode_key_to_vec, key_range,
    prefix_successor,
};
use storelab_table::schema::PRIMARY_INDEX_NAME;
use storelab_table::{
    BatchOutcome, ColumnType, Error, IndexScanMethod, Op, Predicate, Result, Row, ScanSpec, Schema,
    Table, TableStats, Value, Visitor,
};
use storelab_wal::Wal;

use crate::table::{Emitter, ROW_ID_FIRST, ROW_ID_MARK_SIZE, ROW_SIZE_MAX, as_ref};

/// Size of the index id in front of every key.
pub const INDEX_ID_SIZE: usize = 4;
/// Index ids per table: table `t` owns ids `t * 32 .. t * 32 + 32` (the same numbering as the
/// B+tree layout's log relations): the primary is `t * 32 + 1`, secondary `i` is
/// `t * 32 + 2 + i`, the row-id mark `t * 32 + 31`.
pub const INDEX_IDS_PER_TABLE: u32 = 32;
/// Offset of the primary index in a table's ids.
const PRIMARY_OFFSET: u32 = 1;
/// Offset of the first secondary index.
const FIRST_SECONDARY_OFFSET: u32 = 2;
/// Offset of the row-id mark (tables without a primary key).
const ROW_ID_MARK_OFFSET: u32 = INDEX_IDS_PER_TABLE - 1;
const _: () = assert!(
    FIRST_SECONDARY_OFFSET as usize + storelab_table::schema::INDEX_COUNT_MAX
        <= ROW_ID_MARK_OFFSET as usize,
    "secondary index ids stay below the row-id mark's"
);
/// The longest encoded key (primary key, or index key plus primary key) accepted: the LSM's
/// key limit less the index id.
pub const LSM_INDEX_KEY_SIZE_MAX: usize = storelab_lsm::KEY_SIZE_MAX - INDEX_ID_SIZE;
/// Rows per write batch of a bulk load (into an empty table).
pub const LOAD_BATCH_ROWS_LSM: usize = 1000;
/// Keys per write batch when a cut-short bulk load is erased at open.
const ERASE_BATCH_KEYS: usize = 1000;

/// The number in front of every key of one index: MyRocks' index id (4 bytes, big-endian, so
/// all keys of one index are one contiguous key range, in index order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexId(pub u32);

impl IndexId {
    /// The first id of table `table` (its id space is `first .. first + 32`).
    pub fn table_first(table: TableId) -> Result<IndexId> {
        table
            .0
            .checked_mul(INDEX_IDS_PER_TABLE)
            .filter(|first| first.checked_add(INDEX_IDS_PER_TABLE).is_some())
            .map(IndexId)
            .ok_or_else(|| Error::InvalidArgument(format!("table id {table} too large")))
    }

    /// The 4 bytes every key of this index starts with.
    pub fn prefix(self) -> [u8; INDEX_ID_SIZE] {
        self.0.to_be_bytes()
    }

    /// The LSM key of `rest` in this index: id, then `rest`.
    pub fn key(self, rest: &[u8]) -> Vec<u8> {
        let mut key = Vec::with_capacity(INDEX_ID_SIZE + rest.len());
        key.extend_from_slice(&self.prefix());
        key.extend_from_slice(rest);
        key
    }

    /// The index id a key starts with (`None` if the key is shorter than an id).
    pub fn of_key(key: &[u8]) -> Option<IndexId> {
        let bytes: [u8; INDEX_ID_SIZE] = key.get(..INDEX_ID_SIZE)?.try_into().ok()?;
        Some(IndexId(u32::from_be_bytes(bytes)))
    }

    /// LSM bounds covering the keys of this index whose rest lies in `range`.
    pub fn bounds(self, range: &ByteRange) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let lower = match &range.0 {
            Bound::Included(v) => Bound::Included(self.key(v)),
            Bound::Excluded(v) => Bound::Excluded(self.key(v)),
            Bound::Unbounded => Bound::Included(self.prefix().to_vec()),
        };
        let upper = match &range.1 {
            Bound::Included(v) => Bound::Included(self.key(v)),
            Bound::Excluded(v) => Bound::Excluded(self.key(v)),
            Bound::Unbounded => id_space_end(self.0 + 1),
        };
        (lower, upper)
    }

    /// LSM bounds covering every key of this index.
    pub fn all(self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        self.bounds(&(Bound::Unbounded, Bound::Unbounded))
    }
}

/// The upper bound of the ids below `end` (exclusive): every key whose id is `< end`.
pub(crate) fn id_space_end(end: u32) -> Bound<Vec<u8>> {
    Bound::Excluded(end.to_be_bytes().to_vec())
}

/// Maps an error of the LSM crate to the table layer's.
pub(crate) fn lsm_error(e: storelab_lsm::Error) -> Error {
    use storelab_lsm::Error as L;
    match e {
        L::Pager(p) => Error::Pager(p),
        L::Wal(w) => Error::Wal(w),
        L::Io { path, source, .. } => Error::Io { path, source },
        L::KeyTooLarge { size, max } => Error::KeyTooLarge { size, max },
        L::ValueTooLarge { size, max } => Error::RowTooLarge { size, max },
        L::InvalidConfig(reason) | L::InvalidState(reason) => Error::InvalidArgument(reason),
        L::Poisoned(_) => Error::Poisoned,
        // Every other variant says that bytes on disk (tables, manifest, log) are damaged or
        // missing, or that `check` found a broken invariant.
        other => Error::corrupt("LSM", other.to_string()),
    }
}

/// Counters of one table since open; see the crate doc's "The LSM layout" for their meaning.
#[derive(Debug, Default)]
struct Counters {
    inserts: AtomicU64,
    updates: AtomicU64,
    updates_unchanged: AtomicU64,
    deletes: AtomicU64,
    gets: AtomicU64,
    scans: AtomicU64,
    primary_gets: AtomicU64,
    secondary_seeks: AtomicU64,
    unique_check_reads: AtomicU64,
    old_row_reads: AtomicU64,
    secondary_entries_inserted: AtomicU64,
    secondary_entries_deleted: AtomicU64,
    update_secondary_entries_written: AtomicU64,
    covering_rows: AtomicU64,
    bitmap_scans: AtomicU64,
    row_id_marks_written: AtomicU64,
    rows_bulk_loaded: AtomicU64,
    lsm_puts: AtomicU64,
    lsm_deletes: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// What a batch does, collected while its ops are validated: the keys it writes (in their
/// final state: a later op of the batch overrides an earlier one) and the op counts. Nothing
/// reaches the LSM until every op has passed (so a failed batch changes nothing), and then
/// everything goes in one LSM write batch (so the batch is atomic by construction).
#[derive(Default)]
struct Batch {
    /// Key -> new value (`None`: delete).
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    next_row_id: i64,
    row_delta: i64,
    inserts: u64,
    updates: u64,
    updates_unchanged: u64,
    deletes: u64,
    entries_inserted: u64,
    entries_deleted: u64,
    update_entries_written: u64,
    marks_written: u64,
}

impl Batch {
    fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }
}

/// A table of the clustered engine's LSM layout.
pub struct ClusteredLsmTable {
    schema: Schema,
    table_id: TableId,
    lsm: Arc<Lsm>,
    wal: Arc<Wal>,
    pool: Arc<BufferPool>,
    primary_id: IndexId,
    secondary_ids: Vec<IndexId>,
    row_id_mark_id: IndexId,
    /// Writers hold it exclusively for a whole batch (validation reads and the write), readers
    /// share it, as in the B+tree layout.
    lock: RwLock<()>,
    next_row_id: AtomicI64,
    row_count: AtomicU64,
    counters: Counters,
    primary_key_types: Vec<ColumnType>,
    index_types: Vec<Vec<ColumnType>>,
    catalog: Arc<Mutex<Catalog>>,
}

impl std::fmt::Debug for ClusteredLsmTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusteredLsmTable")
            .field("name", &self.schema.name)
            .field("primary_id", &self.primary_id)
            .finish_non_exhaustive()
    }
}

impl ClusteredLsmTable {
    /// Opens table `table_id` over the database's tree (recovered). A table still marked
    /// `loading` in the catalog (a bulk load cut short) is emptied first.
    pub(crate) fn open(
        schema: Schema,
        table_id: TableId,
        lsm: Arc<Lsm>,
        wal: Arc<Wal>,
        pool: Arc<BufferPool>,
        catalog: Arc<Mutex<Catalog>>,
        loading: bool,
    ) -> Result<ClusteredLsmTable> {
        let first = IndexId::table_first(table_id)?;
        let primary_key_types = schema.primary_key_types();
        let index_types = schema
            .indexes
            .iter()
            .map(|d| schema.index_types(d))
            .collect();
        let table = ClusteredLsmTable {
            primary_id: IndexId(first.0 + PRIMARY_OFFSET),
            secondary_ids: (0..schema.indexes.len() as u32)
                .map(|i| IndexId(first.0 + FIRST_SECONDARY_OFFSET + i))
                .collect(),
            row_id_mark_id: IndexId(first.0 + ROW_ID_MARK_OFFSET),
            schema,
            table_id,
            lsm,
            wal,
            pool,
            lock: RwLock::new(()),
            next_row_id: AtomicI64::new(ROW_ID_FIRST),
            row_count: AtomicU64::new(0),
            counters: Counters::default(),
            primary_key_types,
            index_types,
            catalog,
        };
        if loading {
            table.erase()?;
            table
                .catalog
                .lock()
                .set_engine_data(&table.schema.name, serde_json::Value::Null)?;
        }
        let mut rows = 0u64;
        let (lower, upper) = table.primary_id.all();
        for item in table.range(&lower, &upper, false)? {
            item.map_err(lsm_error)?;
            rows += 1;
        }
        table.row_count.store(rows, Ordering::Relaxed);
        if let Some(next) = table.recover_next_row_id()? {
            table.next_row_id.store(next, Ordering::Relaxed);
        }
        Ok(table)
    }

    /// The table's id space: `[first id, first id + 32)`.
    fn space(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let first = self.primary_id.0 - PRIMARY_OFFSET;
        (
            Bound::Included(first.to_be_bytes().to_vec()),
            id_space_end(first + INDEX_IDS_PER_TABLE),
        )
    }

    /// Deletes every key of the table (a bulk load cut short by a crash), durably.
    fn erase(&self) -> Result<()> {
        let (lower, upper) = self.space();
        let mut keys = Vec::new();
        for item in self.range(&lower, &upper, false)? {
            keys.push(item.map_err(lsm_error)?.0);
        }
        for chunk in keys.chunks(ERASE_BATCH_KEYS) {
            let ops: Vec<BatchOp<'_>> = chunk.iter().map(|k| (k.as_slice(), None)).collect();
            self.lsm.write_batch_uncommitted(&ops).map_err(lsm_error)?;
        }
        self.wal.flush(self.wal.insert_lsn())?;
        Ok(())
    }

    /// The next hidden row id after a reopen: one past the larger of the last row's id and
    /// the row-id mark. `None` for a table with a primary key.
    fn recover_next_row_id(&self) -> Result<Option<i64>> {
        if self.schema.has_primary_key() {
            return Ok(None);
        }
        let mut highest = ROW_ID_FIRST - 1;
        let (lower, upper) = self.primary_id.all();
        if let Some(last) = self.range(&lower, &upper, true)?.next() {
            let (key, _) = last.map_err(lsm_error)?;
            highest = highest.max(self.row_id_of(&key[INDEX_ID_SIZE..])?);
        }
        if let Some(mark) = self
            .lsm
            .get(&self.row_id_mark_id.prefix())
            .map_err(lsm_error)?
        {
            highest = highest.max(self.decode_mark(&mark)?);
        }
        let next = highest
            .checked_add(1)
            .ok_or_else(|| self.corrupt("row ids", "the highest row id is i64::MAX"))?;
        Ok(Some(next))
    }

    fn decode_mark(&self, mark: &[u8]) -> Result<i64> {
        let bytes: [u8; ROW_ID_MARK_SIZE] = mark
            .try_into()
            .map_err(|_| self.corrupt("row-id mark", format!("{} bytes, not 8", mark.len())))?;
        Ok(i64::from_le_bytes(bytes))
    }

    /// The tree's statistics (shared by every table of the database).
    pub fn lsm_stats(&self) -> LsmStats {
        self.lsm.stats()
    }

    /// The table's id in the catalog.
    pub fn table_id(&self) -> TableId {
        self.table_id
    }

    /// The index id of the primary index (the secondaries follow it).
    pub fn primary_index_id(&self) -> IndexId {
        self.primary_id
    }

    fn corrupt(&self, what: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::corrupt(
            format!("clustered LSM table {:?}: {what}", self.schema.name),
            reason,
        )
    }

    fn duplicate(&self, index: &str) -> Error {
        Error::DuplicateKey {
            table: self.schema.name.clone(),
            index: index.to_string(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Keys and rows

    fn primary_key_bytes(&self, row: &Row, row_id: Option<i64>) -> Vec<u8> {
        match row_id {
            Some(id) => encode_key_to_vec(&[Value::Int(id)]),
            None => encode_key_to_vec(&self.schema.primary_key_of(row)),
        }
    }

    fn row_id_of(&self, pk: &[u8]) -> Result<i64> {
        let values = decode_key(pk, &[ColumnType::Int64])?;
        values[0]
            .as_int()
            .ok_or_else(|| self.corrupt("row id", "not an integer"))
    }

    /// Secondary index `i`'s entry for a row, without the index id: encoded index key, then
    /// the primary key.
    fn entry_of(&self, i: usize, row: &Row, pk: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(pk.len() + 16);
        encode_key(
            &self.schema.index_key_of(&self.schema.indexes[i], row),
            &mut entry,
        );
        entry.extend_from_slice(pk);
        entry
    }

    /// Splits an entry of index `i` (without its id) into index values and primary key.
    fn split_entry<'e>(&self, i: usize, entry: &'e [u8]) -> Result<(Vec<Value>, &'e [u8])> {
        let (values, size) = decode_key_prefix(entry, &self.index_types[i])?;
        Ok((values, &entry[size..]))
    }

    fn encode(&self, row: &Row) -> Result<Vec<u8>> {
        let size = encoded_row_size(row);
        if size > ROW_SIZE_MAX {
            return Err(Error::RowTooLarge {
                size,
                max: ROW_SIZE_MAX,
            });
        }
        encode_row_to_vec(&self.schema, row)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Row> {
        decode_row(&self.schema, bytes).map_err(|e| self.corrupt("row", e.to_string()))
    }

    fn check_key_size(key: &[u8]) -> Result<()> {
        if key.len() > LSM_INDEX_KEY_SIZE_MAX {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                max: LSM_INDEX_KEY_SIZE_MAX,
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Counted reads

    fn range(
        &self,
        lower: &Bound<Vec<u8>>,
        upper: &Bound<Vec<u8>>,
        reverse: bool,
    ) -> Result<storelab_lsm::LsmIter> {
        let (lower, upper) = (as_ref(lower), as_ref(upper));
        let iter = if reverse {
            self.lsm.range_rev(lower, upper)
        } else {
            self.lsm.range(lower, upper)
        };
        iter.map_err(lsm_error)
    }

    /// A point read of the row under `pk` (counted): the batch's own writes first, then the
    /// tree.
    fn read_primary(&self, batch: Option<&Batch>, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        bump(&self.counters.primary_gets, 1);
        let key = self.primary_id.key(pk);
        if let Some(value) = batch.and_then(|b| b.writes.get(&key)) {
            return Ok(value.clone());
        }
        self.lsm.get(&key).map_err(lsm_error)
    }

    /// Whether unique index `i` holds the key `values` for a row other than `own_pk`: a seek
    /// to the prefix `id ++ encode(values)` in the tree, merged with the batch's writes.
    fn unique_conflict(
        &self,
        batch: &Batch,
        i: usize,
        values: &[Value],
        own_pk: &[u8],
    ) -> Result<bool> {
        bump(&self.counters.secondary_seeks, 1);
        bump(&self.counters.unique_check_reads, 1);
        let prefix = self.secondary_ids[i].key(&encode_key_to_vec(values));
        let lower = Bound::Included(prefix.clone());
        let upper = match prefix_successor(&prefix) {
            Some(successor) => Bound::Excluded(successor),
            None => Bound::Unbounded,
        };
        let mut keys = BTreeSet::new();
        for item in self.range(&lower, &upper, false)? {
            keys.insert(item.map_err(lsm_error)?.0);
        }
        for (key, value) in batch.writes.range((lower, upper)) {
            match value {
                Some(_) => keys.insert(key.clone()),
                None => keys.remove(key),
            };
        }
        Ok(keys.iter().any(|key| &key[prefix.len()..] != own_pk))
    }

    /// The first unique index (among `which`) in which `row`'s key belongs to another row.
    fn first_unique_conflict(
        &self,
        batch: &Batch,
        row: &Row,
        pk: &[u8],
        which: &[usize],
    ) -> Result<Option<usize>> {
        for &i in which {
            let def = &self.schema.indexes[i];
            if def.unique
                && self.unique_conflict(batch, i, &self.schema.index_key_of(def, row), pk)?
            {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    // ---------------------------------------------------------------------------------------
    // Ops: each validates and reads, then records its writes in the batch.

    fn insert_op(&self, row: &Row, batch: &mut Batch) -> Result<bool> {
        self.schema.validate_row(row)?;
        let encoded = self.encode(row)?;
        let row_id = match self.schema.has_primary_key() {
            true => None,
            false => {
                if batch.next_row_id == i64::MAX {
                    let reason = "row ids are exhausted".to_string();
                    return Err(Error::InvalidArgument(reason));
                }
                Some(batch.next_row_id)
            }
        };
        let pk = self.primary_key_bytes(row, row_id);
        Self::check_key_size(&pk)?;
        let entries: Vec<Vec<u8>> = (0..self.secondary_ids.len())
            .map(|i| self.entry_of(i, row, &pk))
            .collect();
        for entry in &entries {
            Self::check_key_size(entry)?;
        }
        let all: Vec<usize> = (0..self.secondary_ids.len()).collect();
        // MyRocks reads to enforce uniqueness: the primary key (skipped for hidden row ids,
        // which are new by construction) and each unique secondary key.
        let pk_taken = |t: &Self, batch: &Batch| -> Result<bool> {
            if row_id.is_some() {
                return Ok(false);
            }
            bump(&t.counters.unique_check_reads, 1);
            Ok(t.read_primary(Some(batch), &pk)?.is_some())
        };
        if let Some(i) = self.first_unique_conflict(batch, row, &pk, &all)? {
            // The reference reports a duplicate primary key before a duplicate unique key.
            if pk_taken(self, batch)? {
                return Err(self.duplicate(PRIMARY_INDEX_NAME));
            }
            return Err(self.duplicate(&self.schema.indexes[i].name));
        }
        if pk_taken(self, batch)? {
            return Err(self.duplicate(PRIMARY_INDEX_NAME));
        }
        batch.put(self.primary_id.key(&pk), encoded);
        for (i, entry) in entries.iter().enumerate() {
            batch.put(self.secondary_ids[i].key(entry), Vec::new());
        }
        if let Some(id) = row_id {
            batch.next_row_id = id + 1;
        }
        batch.row_delta += 1;
        batch.inserts += 1;
        batch.entries_inserted += entries.len() as u64;
        Ok(true)
    }

    fn update_op(
        &self,
        key: &[Value],
        changes: &[(usize, Value)],
        batch: &mut Batch,
    ) -> Result<bool> {
        self.schema.validate_key(key)?;
        self.schema.validate_changes(changes)?;
        let pk = encode_key_to_vec(key);
        // The row is written blind, but its old version is read: to report whether it
        // existed and, as MyRocks does, to know which secondary entries to delete.
        bump(&self.counters.old_row_reads, 1);
        let Some(old_bytes) = self.read_primary(Some(batch), &pk)? else {
            return Ok(false);
        };
        let old = self.decode(&old_bytes)?;
        let mut new = old.clone();
        self.schema.apply_changes(&mut new, changes);
        let encoded = self.encode(&new)?;
        if encoded == old_bytes {
            batch.updates_unchanged += 1;
            return Ok(true);
        }
        let mut changed = Vec::new();
        for i in 0..self.secondary_ids.len() {
            let after = self.entry_of(i, &new, &pk);
            let before = self.entry_of(i, &old, &pk);
            if after != before {
                Self::check_key_size(&after)?;
                changed.push((i, before, after));
            }
        }
        let which: Vec<usize> = changed.iter().map(|c| c.0).collect();
        if let Some(i) = self.first_unique_conflict(batch, &new, &pk, &which)? {
            return Err(self.duplicate(&self.schema.indexes[i].name));
        }
        batch.put(self.primary_id.key(&pk), encoded);
        for (i, before, after) in changed {
            batch.delete(self.secondary_ids[i].key(&before));
            batch.put(self.secondary_ids[i].key(&after), Vec::new());
            batch.entries_deleted += 1;
            batch.entries_inserted += 1;
            batch.update_entries_written += 2;
        }
        batch.updates += 1;
        Ok(true)
    }

    fn delete_op(&self, key: &[Value], batch: &mut Batch) -> Result<bool> {
        self.schema.validate_key(key)?;
        let pk = encode_key_to_vec(key);
        bump(&self.counters.old_row_reads, 1);
        let Some(old_bytes) = self.read_primary(Some(batch), &pk)? else {
            return Ok(false);
        };
        let row = self.decode(&old_bytes)?;
        batch.delete(self.primary_id.key(&pk));
        for i in 0..self.secondary_ids.len() {
            batch.delete(self.secondary_ids[i].key(&self.entry_of(i, &row, &pk)));
            batch.entries_deleted += 1;
        }
        if !self.schema.has_primary_key() {
            // Deleting the row with the highest id ever assigned is the one delete that would
            // let a reopen hand its id out again: remember the id (as the B+tree layout).
            let id = self.row_id_of(&pk)?;
            if id == batch.next_row_id - 1 {
                batch.put(
                    self.row_id_mark_id.prefix().to_vec(),
                    id.to_le_bytes().to_vec(),
                );
                batch.marks_written += 1;
            }
        }
        batch.row_delta -= 1;
        batch.deletes += 1;
        Ok(true)
    }

    /// Publishes a written batch's counts.
    fn count_batch(&self, batch: &Batch) {
        let c = &self.counters;
        bump(&c.inserts, batch.inserts);
        bump(&c.updates, batch.updates);
        bump(&c.updates_unchanged, batch.updates_unchanged);
        bump(&c.deletes, batch.deletes);
        bump(&c.secondary_entries_inserted, batch.entries_inserted);
        bump(&c.secondary_entries_deleted, batch.entries_deleted);
        bump(
            &c.update_secondary_entries_written,
            batch.update_entries_written,
        );
        bump(&c.row_id_marks_written, batch.marks_written);
        let deletes = batch.writes.values().filter(|v| v.is_none()).count() as u64;
        bump(&c.lsm_deletes, deletes);
        bump(&c.lsm_puts, batch.writes.len() as u64 - deletes);
    }

    // ---------------------------------------------------------------------------------------
    // Scans

    /// The row stored under the primary key `pk` that a secondary entry names.
    fn fetch_for_entry(&self, i: usize, pk: &[u8]) -> Result<Row> {
        let Some(bytes) = self.read_primary(None, pk)? else {
            return Err(self.corrupt(
                format!("index {:?}", self.schema.indexes[i].name),
                "an entry has no row",
            ));
        };
        self.decode(&bytes)
    }

    fn primary_scan(
        &self,
        range: ByteRange,
        spec: &ScanSpec,
        em: &mut Emitter<'_, '_>,
    ) -> Result<()> {
        let only = match (em.predicate, em.projection) {
            (None, Some(columns)) => Some(columns),
            _ => None,
        };
        let (lower, upper) = self.primary_id.bounds(&range);
        for item in self.range(&lower, &upper, spec.reverse)? {
            let (_, bytes) = item.map_err(lsm_error)?;
            let more = match only {
                Some(columns) => em.projected(
                    decode_columns(&self.schema, &bytes, columns)
                        .map_err(|e| self.corrupt("row", e.to_string()))?,
                ),
                None => em.row(self.decode(&bytes)?),
            };
            if !more {
                break;
            }
        }
        Ok(())
    }

    fn is_covering(&self, i: usize, em: &Emitter<'_, '_>) -> bool {
        let def = &self.schema.indexes[i];
        em.predicate.is_none()
            && em.projection.is_some_and(|columns| {
                columns
                    .iter()
                    .all(|c| def.columns.contains(c) || self.schema.primary_key.contains(c))
            })
    }

    fn covered_row(&self, i: usize, entry: &[u8], columns: &[usize]) -> Result<Row> {
        let def = &self.schema.indexes[i];
        let (values, pk) = self.split_entry(i, entry)?;
        let pk_values = if columns.iter().any(|c| self.schema.primary_key.contains(c)) {
            decode_key(pk, &self.primary_key_types)?
        } else {
            Vec::new()
        };
        let row = columns
            .iter()
            .map(|c| match def.columns.iter().position(|x| x == c) {
                Some(at) => values[at].clone(),
                None => {
                    let at = self.schema.primary_key.iter().position(|x| x == c);
                    pk_values[at.expect("is_covering checked the column")].clone()
                }
            })
            .collect();
        Ok(row)
    }

    /// Secondary scan, `Plain`: the index's key range in order, one primary get per entry
    /// unless covering (MyRocks' secondary lookup: a seek, then a point read per row).
    fn index_scan(&self, i: usize, range: ByteRange, em: &mut Emitter<'_, '_>) -> Result<()> {
        let covering = self.is_covering(i, em);
        bump(&self.counters.secondary_seeks, 1);
        let (lower, upper) = self.secondary_ids[i].bounds(&range);
        for item in self.range(&lower, &upper, false)? {
            let (key, _) = item.map_err(lsm_error)?;
            let entry = &key[INDEX_ID_SIZE..];
            let more = if covering {
                let columns = em.projection.expect("covering reads have a projection");
                bump(&self.counters.covering_rows, 1);
                em.projected(self.covered_row(i, entry, columns)?)
            } else {
                let (_, pk) = self.split_entry(i, entry)?;
                let row = self.fetch_for_entry(i, pk)?;
                em.row(row)
            };
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Secondary scan, `Bitmap`: the primary keys of the whole range, sorted, then fetched in
    /// key order (consecutive gets hit the same cached blocks; MyRocks' MRR does the same).
    fn bitmap_scan(&self, i: usize, range: ByteRange, em: &mut Emitter<'_, '_>) -> Result<()> {
        if self.is_covering(i, em) {
            return self.index_scan(i, range, em);
        }
        bump(&self.counters.bitmap_scans, 1);
        bump(&self.counters.secondary_seeks, 1);
        let (lower, upper) = self.secondary_ids[i].bounds(&range);
        let mut keys = Vec::new();
        for item in self.range(&lower, &upper, false)? {
            let (key, _) = item.map_err(lsm_error)?;
            let (_, pk) = self.split_entry(i, &key[INDEX_ID_SIZE..])?;
            keys.push(pk.to_vec());
        }
        keys.sort_unstable();
        keys.dedup();
        for pk in keys {
            let row = self.fetch_for_entry(i, &pk)?;
            if !em.row(row) {
                break;
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Bulk load

    /// Whether the table holds no key at all.
    fn space_is_empty(&self) -> Result<bool> {
        let (lower, upper) = self.space();
        Ok(self.range(&lower, &upper, false)?.next().is_none())
    }

    /// Loads `rows` into this empty table: every row validated and every primary and unique
    /// key checked in memory first (no reads of the tree), then the rows sorted by primary
    /// key and the entries by index key, written in batches of [`LOAD_BATCH_ROWS_LSM`] keys
    /// (sorted input makes flushed tables that do not overlap). MyRocks' bulk load ingests
    /// sorted tables directly; this writes through the memtable and the log.
    ///
    /// Not atomic by itself: the catalog marks the table `loading` before the first write and
    /// clears the mark once the log is durable past the last; a table still marked at open is
    /// erased, so after a crash the load happened entirely or not at all.
    fn bulk_load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        let hidden = !self.schema.has_primary_key();
        let first_row_id = self.next_row_id.load(Ordering::Relaxed);
        let mut primary: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut entries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.secondary_ids.len()];
        for row in rows {
            self.schema.validate_row(&row)?;
            let encoded = self.encode(&row)?;
            let row_id = match hidden {
                true => Some(
                    first_row_id
                        .checked_add(primary.len() as i64)
                        .filter(|id| *id < i64::MAX)
                        .ok_or_else(|| {
                            Error::InvalidArgument("row ids are exhausted".to_string())
                        })?,
                ),
                false => None,
            };
            let pk = self.primary_key_bytes(&row, row_id);
            Self::check_key_size(&pk)?;
            for (i, list) in entries.iter_mut().enumerate() {
                let entry = self.entry_of(i, &row, &pk);
                Self::check_key_size(&entry)?;
                list.push(entry);
            }
            primary.push((pk, encoded));
        }
        if primary.is_empty() {
            return Ok(0);
        }
        primary.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if primary.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return Err(self.duplicate(PRIMARY_INDEX_NAME));
        }
        for (i, list) in entries.iter_mut().enumerate() {
            list.sort_unstable();
            if !self.schema.indexes[i].unique {
                continue;
            }
            for pair in list.windows(2) {
                let a = decode_key_prefix(&pair[0], &self.index_types[i])?.1;
                let b = decode_key_prefix(&pair[1], &self.index_types[i])?.1;
                if pair[0][..a] == pair[1][..b] {
                    return Err(self.duplicate(&self.schema.indexes[i].name));
                }
            }
        }
        let count = primary.len() as u64;
        self.catalog
            .lock()
            .set_engine_data(&self.schema.name, serde_json::json!({ "loading": true }))?;
        let mut end = self.wal.insert_lsn();
        let mut write = |keys: Vec<(Vec<u8>, Vec<u8>)>| -> Result<()> {
            let ops: Vec<BatchOp<'_>> = keys
                .iter()
                .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
                .collect();
            end = self.lsm.write_batch_uncommitted(&ops).map_err(lsm_error)?;
            Ok(())
        };
        for chunk in primary.chunks(LOAD_BATCH_ROWS_LSM) {
            write(
                chunk
                    .iter()
                    .map(|(pk, row)| (self.primary_id.key(pk), row.clone()))
                    .collect(),
            )?;
        }
        for (i, list) in entries.iter().enumerate() {
            for chunk in list.chunks(LOAD_BATCH_ROWS_LSM) {
                write(
                    chunk
                        .iter()
                        .map(|e| (self.secondary_ids[i].key(e), Vec::new()))
                        .collect(),
                )?;
            }
        }
        // Durable in the log whatever the commit mode, before the mark goes.
        self.wal.flush(end)?;
        self.catalog
            .lock()
            .set_engine_data(&self.schema.name, serde_json::Value::Null)?;
        if hidden {
            self.next_row_id
                .store(first_row_id + count as i64, Ordering::Relaxed);
        }
        self.row_count.fetch_add(count, Ordering::Relaxed);
        let c = &self.counters;
        bump(&c.rows_bulk_loaded, count);
        bump(&c.inserts, count);
        bump(
            &c.secondary_entries_inserted,
            count * self.secondary_ids.len() as u64,
        );
        bump(&c.lsm_puts, count * (1 + self.secondary_ids.len() as u64));
        Ok(count)
    }

    // ---------------------------------------------------------------------------------------
    // check

    /// Checks the table's keys and rows (invariants 2 to 5 of the crate doc's LSM layout),
    /// not the tree's own structure: the engine checks the tree once for all tables.
    pub(crate) fn check_rows(&self) -> Result<()> {
        let _w = self.lock.write();
        let next_row_id = self.next_row_id.load(Ordering::Relaxed);
        let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.secondary_ids.len()];
        let mut found: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.secondary_ids.len()];
        let mut rows = 0u64;
        let (lower, upper) = self.space();
        // One pass over the table's id space: the primary's keys come first (lowest id),
        // then each secondary's, then the row-id mark.
        for item in self.range(&lower, &upper, false)? {
            let (key, value) = item.map_err(lsm_error)?;
            let id = IndexId::of_key(&key).ok_or_else(|| self.corrupt("keys", "no index id"))?;
            let rest = &key[INDEX_ID_SIZE..];
            if id == self.primary_id {
                let row = self.decode(&value)?;
                if encoded_row_size(&row) > ROW_SIZE_MAX {
                    return Err(self.corrupt("primary", "a row is over the size limit"));
                }
                if self.schema.has_primary_key() {
                    if rest != encode_key_to_vec(&self.schema.primary_key_of(&row)) {
                        return Err(self.corrupt("primary", "a row is stored under another key"));
                    }
                } else {
                    let row_id = self.row_id_of(rest)?;
                    if !(ROW_ID_FIRST..next_row_id).contains(&row_id) {
                        let reason =
                            format!("row id {row_id} outside {ROW_ID_FIRST}..{next_row_id}");
                        return Err(self.corrupt("primary", reason));
                    }
                }
                for (i, list) in expected.iter_mut().enumerate() {
                    list.push(self.entry_of(i, &row, rest));
                }
                rows += 1;
            } else if let Some(i) = self.secondary_ids.iter().position(|s| *s == id) {
                if !value.is_empty() {
                    let what = format!("index {:?}", self.schema.indexes[i].name);
                    return Err(self.corrupt(what, "an entry has a value"));
                }
                found[i].push(rest.to_vec());
            } else if id == self.row_id_mark_id && !self.schema.has_primary_key() {
                if !rest.is_empty() {
                    return Err(self.corrupt("row-id mark", "a key after the mark's id"));
                }
                let mark = self.decode_mark(&value)?;
                if mark >= next_row_id {
                    let reason = format!("mark {mark} at or past the next row id {next_row_id}");
                    return Err(self.corrupt("row-id mark", reason));
                }
            } else {
                return Err(self.corrupt(
                    "keys",
                    format!("a key of index id {}, which is none of the table's", id.0),
                ));
            }
        }
        let counted = self.row_count.load(Ordering::Relaxed);
        if rows != counted {
            return Err(self.corrupt("primary", format!("{rows} rows, {counted} counted")));
        }
        // Every index holds exactly the entries of the rows: each entry has its row with that
        // key, each row has its entries; unique indexes hold each key once. `found` is in key
        // order already (the scan's).
        for (i, mut wanted) in expected.into_iter().enumerate() {
            let def = &self.schema.indexes[i];
            let what = format!("index {:?}", def.name);
            wanted.sort_unstable();
            let mut wanted = wanted.into_iter();
            let mut previous_key: Option<Vec<u8>> = None;
            for entry in &found[i] {
                let (_, pk) = self.split_entry(i, entry)?;
                match wanted.next() {
                    Some(w) if w == *entry => {}
                    Some(w) if w < *entry => {
                        return Err(self.corrupt(&what, "a row lacks its entry"));
                    }
                    _ => return Err(self.corrupt(&what, "an entry has no row with its key")),
                }
                if def.unique {
                    let key = entry[..entry.len() - pk.len()].to_vec();
                    if previous_key.as_ref() == Some(&key) {
                        return Err(self.corrupt(&what, "a unique key appears twice"));
                    }
                    previous_key = Some(key);
                }
            }
            if wanted.next().is_some() {
                return Err(self.corrupt(&what, "a row lacks its entry"));
            }
        }
        Ok(())
    }

    /// Approximate bytes of the table on disk: the sizes of the LSM tables whose key range
    /// overlaps the table's id space (RocksDB's `GetApproximateSizes` works the same way, by
    /// table metadata). Exact when the table is alone in its database.
    fn approximate_bytes(&self) -> u64 {
        let first = self.primary_id.0 - PRIMARY_OFFSET;
        let lo = first.to_be_bytes();
        let hi = (first + INDEX_IDS_PER_TABLE).to_be_bytes();
        self.lsm
            .levels()
            .iter()
            .flatten()
            .filter(|t| t.largest.as_slice() >= &lo[..] && t.smallest.as_slice() < &hi[..])
            .map(|t| t.size)
            .sum()
    }
}

impl Table for ClusteredLsmTable {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let (end, outcome) = {
            let _w = self.lock.write();
            let mut batch = Batch {
                next_row_id: self.next_row_id.load(Ordering::Relaxed),
                ..Batch::default()
            };
            let mut outcome = Vec::with_capacity(ops.len());
            for op in ops {
                // A refused op returns here: nothing of the batch reached the tree.
                outcome.push(match op {
                    Op::Insert(row) => self.insert_op(row, &mut batch)?,
                    Op::Update { key, changes } => self.update_op(key, changes, &mut batch)?,
                    Op::Delete { key } => self.delete_op(key, &mut batch)?,
                });
            }
            if batch.writes.is_empty() {
                self.count_batch(&batch);
                return Ok(outcome);
            }
            let writes: Vec<BatchOp<'_>> = batch
                .writes
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            // One LSM write batch: one log record (or one atomic group of them if large),
            // replayed all or nothing.
            let end = self
                .lsm
                .write_batch_uncommitted(&writes)
                .map_err(lsm_error)?;
            self.next_row_id.store(batch.next_row_id, Ordering::Relaxed);
            if batch.row_delta >= 0 {
                self.row_count
                    .fetch_add(batch.row_delta as u64, Ordering::Relaxed);
            } else {
                self.row_count
                    .fetch_sub(batch.row_delta.unsigned_abs(), Ordering::Relaxed);
            }
            self.count_batch(&batch);
            (end, outcome)
        };
        self.wal.commit(end)?;
        // The tree's retention hook keeps what its memtables need; this recycles the rest.
        self.wal.checkpoint_if_due(&self.pool)?;
        Ok(outcome)
    }

    /// An empty table is bulk-loaded (see `ClusteredLsmTable::bulk_load`); a table with rows
    /// gets the rows in atomic batches.
    fn load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        {
            let _w = self.lock.write();
            if self.row_count.load(Ordering::Relaxed) == 0 && self.space_is_empty()? {
                return self.bulk_load(rows);
            }
        }
        load_in_batches(self, rows)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.schema.validate_key(key)?;
        let _r = self.lock.read_recursive();
        bump(&self.counters.gets, 1);
        let found = self.read_primary(None, &encode_key_to_vec(key))?;
        found.map(|bytes| self.decode(&bytes)).transpose()
    }

    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64> {
        let index = spec.validate(&self.schema)?;
        let limit = spec.limit.map_or(u64::MAX, |l| l as u64);
        if limit == 0 {
            return Ok(0);
        }
        let Some(range) = key_range(&spec.lower, &spec.upper) else {
            return Ok(0);
        };
        let _r = self.lock.read_recursive();
        let mut em = Emitter {
            schema: &self.schema,
            projection: spec.projection.as_deref(),
            predicate,
            visit,
            limit,
            count: 0,
        };
        let position = index.map(|def| {
            self.schema
                .indexes
                .iter()
                .position(|d| d.name == def.name)
                .expect("validate returned one of our indexes")
        });
        let result = match position {
            None => self.primary_scan(range, spec, &mut em),
            Some(i) if spec.method == IndexScanMethod::Bitmap => {
                self.bitmap_scan(i, range, &mut em)
            }
            Some(i) => self.index_scan(i, range, &mut em),
        };
        bump(&self.counters.scans, 1);
        result.map(|()| em.count)
    }

    fn stats(&self) -> Result<TableStats> {
        let mut file_bytes = BTreeMap::new();
        file_bytes.insert("lsm_tables".to_string(), self.approximate_bytes());
        let c = &self.counters;
        let mut counters = BTreeMap::new();
        for (name, v) in [
            ("inserts", &c.inserts),
            ("updates", &c.updates),
            ("updates_unchanged", &c.updates_unchanged),
            ("deletes", &c.deletes),
            ("gets", &c.gets),
            ("scans", &c.scans),
            ("primary_gets", &c.primary_gets),
            ("secondary_seeks", &c.secondary_seeks),
            ("unique_check_reads", &c.unique_check_reads),
            ("old_row_reads", &c.old_row_reads),
            ("secondary_entries_inserted", &c.secondary_entries_inserted),
            ("secondary_entries_deleted", &c.secondary_entries_deleted),
            (
                "update_secondary_entries_written",
                &c.update_secondary_entries_written,
            ),
            ("covering_rows", &c.covering_rows),
            ("bitmap_scans", &c.bitmap_scans),
            ("row_id_marks_written", &c.row_id_marks_written),
            ("rows_bulk_loaded", &c.rows_bulk_loaded),
            ("lsm_puts", &c.lsm_puts),
            ("lsm_deletes", &c.lsm_deletes),
        ] {
            counters.insert(name.to_string(), v.load(Ordering::Relaxed));
        }
        let written = c.secondary_entries_inserted.load(Ordering::Relaxed)
            + c.secondary_entries_deleted.load(Ordering::Relaxed);
        counters.insert("secondary_entries_written".to_string(), written);
        insert_lsm_counters(&mut counters, &self.lsm.stats());
        Ok(TableStats {
            row_count: self.row_count.load(Ordering::Relaxed),
            file_bytes,
            counters,
        })
    }

    /// The tree's `check` (every table block, level order), then the table's rows and keys.
    fn check(&self) -> Result<()> {
        self.lsm.check().map_err(lsm_error)?;
        self.check_rows()
    }

    /// Flushes the memtables and runs the compactions that are due.
    fn maintain(&self) -> Result<()> {
        self.lsm.compact().map_err(lsm_error)
    }
}

/// Ratios are reported in thousandths (counters are integers).
const PERMILLE: f64 = 1000.0;

/// Adds the tree's statistics to a table's counters, prefixed `lsm_` (database-wide figures:
/// every table of the database reports the same ones).
pub(crate) fn insert_lsm_counters(counters: &mut BTreeMap<String, u64>, s: &LsmStats) {
    for (n, level) in s.levels.iter().enumerate() {
        for (name, v) in [
            ("tables", level.table_count),
            ("bytes", level.bytes),
            ("flush_bytes_written", level.flush_bytes_written),
            ("compaction_bytes_written", level.compaction_bytes_written),
            ("compaction_bytes_read", level.compaction_bytes_read),
            ("compactions", level.compaction_count),
        ] {
            counters.insert(format!("lsm_l{n}_{name}"), v);
        }
    }
    let permille = |x: f64| (x * PERMILLE).round() as u64;
    for (name, v) in [
        ("lsm_user_writes", s.user_write_count),
        ("lsm_user_bytes_written", s.user_bytes_written),
        ("lsm_wal_bytes_written", s.wal_bytes_written),
        ("lsm_table_bytes_written", s.table_bytes_written()),
        ("lsm_manifest_bytes_written", s.manifest_bytes_written),
        ("lsm_flushes", s.flush_count),
        ("lsm_compactions", s.compaction_count),
        ("lsm_gets", s.get_count),
        ("lsm_get_memtable_hits", s.get_memtable_hit_count),
        ("lsm_get_table_candidates", s.get_table_candidate_count),
        ("lsm_get_tables_read", s.get_table_read_count),
        ("lsm_bloom_checks", s.bloom_check_count),
        ("lsm_bloom_negatives", s.bloom_negative_count),
        ("lsm_bloom_false_positives", s.bloom_false_positive_count),
        ("lsm_stalls", s.stall_count),
        ("lsm_stall_us", s.stall_us),
        ("lsm_memtable_bytes", s.memtable_bytes),
        ("lsm_immutable_memtables", s.immutable_count),
        ("lsm_pinned_bytes", s.pinned_bytes),
        ("lsm_cache_hits", s.cache.hit_count),
        ("lsm_cache_misses", s.cache.miss_count),
        ("lsm_cache_bytes", s.cache.bytes),
        ("lsm_cache_capacity_bytes", s.cache.capacity_bytes),
        (
            "lsm_write_amplification_permille",
            permille(s.write_amplification()),
        ),
        (
            "lsm_write_amplification_tables_permille",
            permille(s.write_amplification_tables()),
        ),
        (
            "lsm_tables_read_per_get_permille",
            permille(s.tables_read_per_get()),
        ),
        (
            "lsm_space_amplification_estimate_permille",
            permille(s.space_amplification_estimate()),
        ),
    ] {
        counters.insert(name.to_string(), v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Index-id bounds select exactly the keys of one index whose rest lies in the range.
    #[test]
    fn index_bounds_select_one_index() {
        let id = IndexId(33);
        let (lower, upper) = id.all();
        let inside = |k: &[u8]| {
            let lo_ok = match &lower {
                Bound::Included(l) => k >= l.as_slice(),
                _ => unreachable!(),
            };
            let hi_ok = match &upper {
                Bound::Excluded(u) => k < u.as_slice(),
                _ => unreachable!(),
            };
            lo_ok && hi_ok
        };
        assert!(inside(&id.key(b"")));
        assert!(inside(&id.key(&[0xff; 40])));
        assert!(!inside(&IndexId(32).key(&[0xff; 4])));
        assert!(!inside(&IndexId(34).key(b"")));
        assert_eq!(IndexId::of_key(&id.key(b"x")), Some(id));
        assert_eq!(IndexId::of_key(b"ab"), None);
        assert!(IndexId::table_first(TableId(u32::MAX / 32)).is_err());
    }
}
