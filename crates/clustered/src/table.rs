//! One clustered table: the primary-key B+tree holding the rows, one B+tree per secondary
//! index holding (index key, primary key) entries, and for a table without a primary key a
//! one-entry tree that remembers the highest row id ever assigned.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use storelab_btree::{BTree, BTreeConfig, BTreeStats};
use storelab_pager::{BufferPool, FileId};
use storelab_table::catalog::Catalog;
use storelab_table::codec::{decode_columns, decode_row, encode_row_to_vec, encoded_row_size};
use storelab_table::engine::load_in_batches;
use storelab_table::key::{
    ByteRange, decode_key, decode_key_prefix, encode_key, encode_key_to_vec, key_range,
};
use storelab_table::schema::PRIMARY_INDEX_NAME;
use storelab_table::{
    BatchOutcome, ColumnType, Error, IndexDef, IndexScanMethod, Op, Predicate, Result, Row,
    ScanSpec, Schema, Table, TableStats, Value, Visitor,
};
use storelab_wal::{RelId, Wal};

use crate::leaf_reader::{LeafReadStats, LeafReader};

/// Scans limited to at most this many rows read only one leaf ahead.
const SHORT_SCAN_ROWS: usize = 1000;

/// The largest encoded row accepted: MySQL's row size limit (65,535 bytes). Rows above the
/// B+tree's inline limit go to overflow pages, like InnoDB's off-page columns.
pub const ROW_SIZE_MAX: usize = 65_535;
/// The first hidden row id (as the reference engine's).
pub const ROW_ID_FIRST: i64 = 1;
/// The key of the row-id tree's only entry: the highest row id assigned whose row was the
/// last one in the table when it was deleted (see `ClusteredTable::delete_op`).
const ROW_ID_MARK_KEY: &[u8] = b"row_id_mark";
/// Size of the row-id mark's value (an i64, little-endian).
pub(crate) const ROW_ID_MARK_SIZE: usize = 8;

/// Settings of the clustered engine's tables (the knobs the experiments turn).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClusteredOptions {
    /// Settings of every tree, primary and secondary: split policy (`Middle` or
    /// `InsertPoint`), merge threshold (InnoDB's `MERGE_THRESHOLD`), leaf fill factor of bulk
    /// loads (`innodb_fill_factor`), node size (tests).
    pub btree: BTreeConfig,
    /// Leaves kept in flight by forward primary-key scans and by bitmap-style secondary scans
    /// when the scan does not say (0: no read-ahead, the B+tree's one-leaf-at-a-time cursor).
    pub prefetch_depth: usize,
}

impl Default for ClusteredOptions {
    fn default() -> Self {
        ClusteredOptions {
            btree: BTreeConfig::default(),
            prefetch_depth: 32,
        }
    }
}

/// Counters of one table since open; see the crate doc's "Counters" for their meaning.
#[derive(Debug, Default)]
struct Counters {
    inserts: AtomicU64,
    updates: AtomicU64,
    updates_unchanged: AtomicU64,
    deletes: AtomicU64,
    primary_descents: AtomicU64,
    secondary_descents: AtomicU64,
    secondary_entries_inserted: AtomicU64,
    secondary_entries_deleted: AtomicU64,
    update_secondary_entries_written: AtomicU64,
    covering_rows: AtomicU64,
    gets: AtomicU64,
    get_pages_touched: AtomicU64,
    scans: AtomicU64,
    scan_pages_touched: AtomicU64,
    bitmap_scans: AtomicU64,
    primary_leaves_streamed: AtomicU64,
    internal_nodes_planned: AtomicU64,
    overflow_fetches: AtomicU64,
    row_id_marks_written: AtomicU64,
    rows_bulk_loaded: AtomicU64,
}

fn bump(counter: &AtomicU64, by: u64) {
    counter.fetch_add(by, Ordering::Relaxed);
}

/// The files and log relations of one table.
#[derive(Clone, Debug)]
pub struct TableFiles {
    /// The primary-key tree (the rows).
    pub primary: (FileId, RelId),
    /// One tree per secondary index, in schema order.
    pub secondaries: Vec<(FileId, RelId)>,
    /// The row-id mark of a table without a primary key.
    pub row_id: Option<(FileId, RelId)>,
}

/// A table of the clustered engine; see the crate documentation.
pub struct ClusteredTable {
    schema: Schema,
    pool: Arc<BufferPool>,
    wal: Arc<Wal>,
    primary: BTree,
    secondaries: Vec<BTree>,
    row_id_tree: Option<BTree>,
    options: ClusteredOptions,
    /// Writers hold it exclusively for a whole batch, readers share it (see the crate doc).
    lock: RwLock<()>,
    /// The hidden row id the next insert gets (tables without a primary key).
    next_row_id: AtomicI64,
    row_count: AtomicU64,
    counters: Counters,
    /// Types of the primary key's columns (`[Int64]` for the hidden row id).
    primary_key_types: Vec<ColumnType>,
    /// Types of each secondary index's columns, in schema order.
    index_types: Vec<Vec<ColumnType>>,
    /// The engine's catalog (a bulk load marks the table as loading there).
    catalog: Arc<Mutex<Catalog>>,
}

impl std::fmt::Debug for ClusteredTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusteredTable")
            .field("name", &self.schema.name)
            .finish_non_exhaustive()
    }
}

/// How to take back one applied op of a failed batch.
enum Undo {
    /// The row was inserted: delete it (the row-id mark is left alone).
    Insert { pk: Vec<u8>, row: Row },
    /// The row was changed from `old` to `new`: change it back.
    Update { pk: Vec<u8>, old: Row, new: Row },
    /// The row was deleted: insert it again.
    Delete { pk: Vec<u8>, row: Row },
    /// The row-id mark was written over this value (`None`: there was none).
    Mark { previous: Option<Vec<u8>> },
}

/// Why an op failed.
enum OpError {
    /// Wrong input, found before the op changed anything.
    Invalid(Error),
    /// An I/O error or corruption after the op started changing trees: its state is unknown.
    Fatal(Error),
}

impl From<Error> for OpError {
    fn from(e: Error) -> Self {
        OpError::Invalid(e)
    }
}

/// Marks errors of a step that changes trees as fatal.
trait Fatal<T> {
    fn fatal(self) -> std::result::Result<T, OpError>;
}

impl<T, E: Into<Error>> Fatal<T> for std::result::Result<T, E> {
    fn fatal(self) -> std::result::Result<T, OpError> {
        self.map_err(|e| OpError::Fatal(e.into()))
    }
}

/// Applies the scan's predicate, projection and limit, and counts visited rows (shared with
/// the LSM layout's tables).
pub(crate) struct Emitter<'s, 'v> {
    pub(crate) schema: &'s Schema,
    pub(crate) projection: Option<&'s [usize]>,
    pub(crate) predicate: Option<Predicate<'s>>,
    pub(crate) visit: Visitor<'v>,
    pub(crate) limit: u64,
    pub(crate) count: u64,
}

impl Emitter<'_, '_> {
    /// Offers a whole row; returns whether the scan goes on.
    pub(crate) fn row(&mut self, row: Row) -> bool {
        if self.predicate.is_some_and(|p| !p(&row)) {
            return true;
        }
        let out = match self.projection {
            Some(columns) => self.schema.project(&row, columns),
            None => row,
        };
        self.projected(out)
    }

    /// Offers a row already projected (no predicate applies); returns whether to go on.
    pub(crate) fn projected(&mut self, row: Row) -> bool {
        self.count += 1;
        (self.visit)(row) && self.count < self.limit
    }
}

impl ClusteredTable {
    /// Opens the table over files already attached to the log and recovered.
    pub(crate) fn open(
        schema: Schema,
        pool: Arc<BufferPool>,
        wal: Arc<Wal>,
        files: &TableFiles,
        options: ClusteredOptions,
        catalog: Arc<Mutex<Catalog>>,
    ) -> Result<ClusteredTable> {
        let open_tree = |(file, rel): (FileId, RelId)| {
            BTree::open(
                Arc::clone(&pool),
                Arc::clone(&wal),
                file,
                rel,
                options.btree,
            )
        };
        let primary = open_tree(files.primary)?;
        let secondaries = files
            .secondaries
            .iter()
            .map(|&f| open_tree(f))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let row_id_tree = files.row_id.map(open_tree).transpose()?;
        assert_eq!(
            row_id_tree.is_some(),
            !schema.has_primary_key(),
            "a row-id tree exactly for tables without a primary key"
        );
        let primary_key_types = schema.primary_key_types();
        let index_types = schema
            .indexes
            .iter()
            .map(|d| schema.index_types(d))
            .collect();
        let table = ClusteredTable {
            schema,
            pool,
            wal,
            primary,
            secondaries,
            row_id_tree,
            options,
            lock: RwLock::new(()),
            next_row_id: AtomicI64::new(ROW_ID_FIRST),
            row_count: AtomicU64::new(0),
            counters: Counters::default(),
            primary_key_types,
            index_types,
            catalog,
        };
        let rows = table.primary.count(Bound::Unbounded, Bound::Unbounded)?;
        table.row_count.store(rows, Ordering::Relaxed);
        if let Some(next) = table.recover_next_row_id()? {
            table.next_row_id.store(next, Ordering::Relaxed);
        }
        Ok(table)
    }

    /// The next hidden row id after a reopen: one past the larger of the last row's id and
    /// the row-id mark. `None` for a table with a primary key.
    fn recover_next_row_id(&self) -> Result<Option<i64>> {
        let Some(marks) = &self.row_id_tree else {
            return Ok(None);
        };
        let mut highest = ROW_ID_FIRST - 1;
        if let Some(last) = self
            .primary
            .range_rev(Bound::Unbounded, Bound::Unbounded)
            .next()
        {
            let (key, _) = last?;
            highest = highest.max(self.row_id_of(&key)?);
        }
        if let Some(mark) = marks.get(ROW_ID_MARK_KEY)? {
            let bytes: [u8; ROW_ID_MARK_SIZE] = mark
                .as_slice()
                .try_into()
                .map_err(|_| self.corrupt("row-id mark", format!("{} bytes, not 8", mark.len())))?;
            highest = highest.max(i64::from_le_bytes(bytes));
        }
        let next = highest
            .checked_add(1)
            .ok_or_else(|| self.corrupt("row ids", "the highest row id is i64::MAX"))?;
        Ok(Some(next))
    }

    /// The shape and split/merge counts of the primary tree and of each secondary (in schema
    /// order). Walks every tree: as expensive as a full scan.
    pub fn tree_stats(&self) -> Result<(BTreeStats, Vec<BTreeStats>)> {
        let _r = self.lock.read_recursive();
        let primary = self.primary.stats()?;
        let secondaries = self
            .secondaries
            .iter()
            .map(BTree::stats)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok((primary, secondaries))
    }

    /// The options the table was opened with.
    pub fn options(&self) -> ClusteredOptions {
        self.options
    }

    fn corrupt(&self, what: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        Error::corrupt(
            format!("clustered table {:?}: {what}", self.schema.name),
            reason,
        )
    }

    fn duplicate(&self, index: &str) -> Error {
        Error::DuplicateKey {
            table: self.schema.name.clone(),
            index: index.to_string(),
        }
    }

    /// Pins taken in the pool so far (hits and misses): the "pages touched" measure.
    fn pins(&self) -> u64 {
        let stats = self.pool.stats();
        stats.hit_count + stats.miss_count
    }

    // ---------------------------------------------------------------------------------------
    // Keys and rows

    /// The primary tree's key of a row: its encoded primary key, or the encoded row id.
    fn primary_key_bytes(&self, row: &Row, row_id: Option<i64>) -> Vec<u8> {
        match row_id {
            Some(id) => encode_key_to_vec(&[Value::Int(id)]),
            None => encode_key_to_vec(&self.schema.primary_key_of(row)),
        }
    }

    /// A row id from a primary key of a table without a primary key.
    fn row_id_of(&self, pk: &[u8]) -> Result<i64> {
        let values = decode_key(pk, &[ColumnType::Int64])?;
        values[0]
            .as_int()
            .ok_or_else(|| self.corrupt("row id", "not an integer"))
    }

    /// Secondary index `i`'s entry for a row: encoded index key, then the primary key.
    fn entry_of(&self, i: usize, row: &Row, pk: &[u8]) -> Vec<u8> {
        let mut entry = Vec::with_capacity(pk.len() + 16);
        encode_key(
            &self.schema.index_key_of(&self.schema.indexes[i], row),
            &mut entry,
        );
        entry.extend_from_slice(pk);
        entry
    }

    /// Splits an entry of index `i` into its index values and the primary key bytes.
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

    fn check_key_size(tree: &BTree, key: &[u8]) -> Result<()> {
        let max = tree.key_size_max();
        if key.len() > max {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                max,
            });
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Counted tree access

    /// One primary descent: the row bytes under `pk`.
    fn primary_get(&self, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        bump(&self.counters.primary_descents, 1);
        Ok(self.primary.get(pk)?)
    }

    /// Whether unique index `i` holds the key `values` for a row other than `own_pk` (one
    /// secondary descent).
    fn unique_conflict(&self, i: usize, values: &[Value], own_pk: &[u8]) -> Result<bool> {
        let bound = Bound::Included(values.to_vec());
        let Some((lower, upper)) = key_range(&bound, &bound) else {
            return Ok(false);
        };
        bump(&self.counters.secondary_descents, 1);
        for entry in self.secondaries[i].range(as_ref(&lower), as_ref(&upper)) {
            let (entry, _) = entry?;
            let (_, pk) = self.split_entry(i, &entry)?;
            if pk != own_pk {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The first unique index (among `which`) in which `row`'s key belongs to another row.
    fn first_unique_conflict(
        &self,
        row: &Row,
        pk: &[u8],
        which: &[usize],
    ) -> Result<Option<&IndexDef>> {
        for &i in which {
            let def = &self.schema.indexes[i];
            if def.unique && self.unique_conflict(i, &self.schema.index_key_of(def, row), pk)? {
                return Ok(Some(def));
            }
        }
        Ok(None)
    }

    // ---------------------------------------------------------------------------------------
    // Tree changes (inside the batch's atomic group; input already validated)

    fn insert_entry(&self, i: usize, entry: &[u8]) -> Result<()> {
        bump(&self.counters.secondary_descents, 1);
        match self.secondaries[i].insert_no_commit(entry, &[]) {
            Ok(_) => {}
            Err(storelab_btree::Error::DuplicateKey) => {
                let reason = "an entry with this primary key is already there";
                return Err(
                    self.corrupt(format!("index {:?}", self.schema.indexes[i].name), reason)
                );
            }
            Err(e) => return Err(e.into()),
        }
        bump(&self.counters.secondary_entries_inserted, 1);
        Ok(())
    }

    fn delete_entry(&self, i: usize, entry: &[u8]) -> Result<()> {
        bump(&self.counters.secondary_descents, 1);
        if self.secondaries[i].delete_no_commit(entry)?.is_none() {
            let name = &self.schema.indexes[i].name;
            return Err(self.corrupt(format!("index {name:?}"), "a live row lacks its entry"));
        }
        bump(&self.counters.secondary_entries_deleted, 1);
        Ok(())
    }

    /// Inserts a row under `pk` and its secondary entries. `Ok(false)` if `pk` is present
    /// (then nothing changed).
    fn insert_row(&self, pk: &[u8], row: &Row, encoded: &[u8]) -> Result<bool> {
        bump(&self.counters.primary_descents, 1);
        match self.primary.insert_no_commit(pk, encoded) {
            Ok(_) => {}
            Err(storelab_btree::Error::DuplicateKey) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        for i in 0..self.secondaries.len() {
            self.insert_entry(i, &self.entry_of(i, row, pk))?;
        }
        self.row_count.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Deletes the row `row` stored under `pk` and its secondary entries.
    fn delete_row(&self, pk: &[u8], row: &Row) -> Result<()> {
        bump(&self.counters.primary_descents, 1);
        if self.primary.delete_no_commit(pk)?.is_none() {
            return Err(self.corrupt("primary", "a row read under the lock vanished"));
        }
        for i in 0..self.secondaries.len() {
            self.delete_entry(i, &self.entry_of(i, row, pk))?;
        }
        self.row_count.fetch_sub(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces row `old` under `pk` by `new` in place (the B+tree replaces the leaf cell, or
    /// splits if it no longer fits), and moves the entries of the indexes whose key changed;
    /// returns how many secondary entries were written.
    fn replace_row(&self, pk: &[u8], old: &Row, new: &Row, encoded: &[u8]) -> Result<u64> {
        bump(&self.counters.primary_descents, 1);
        let (existed, _) = self.primary.upsert_no_commit(pk, encoded)?;
        if !existed {
            return Err(self.corrupt("primary", "an updated row was not there"));
        }
        let mut written = 0;
        for i in 0..self.secondaries.len() {
            let (before, after) = (self.entry_of(i, old, pk), self.entry_of(i, new, pk));
            if before != after {
                self.delete_entry(i, &before)?;
                self.insert_entry(i, &after)?;
                written += 2;
            }
        }
        Ok(written)
    }

    // ---------------------------------------------------------------------------------------
    // Ops

    fn insert_op(&self, row: &Row, undos: &mut Vec<Undo>) -> std::result::Result<bool, OpError> {
        self.schema.validate_row(row)?;
        let encoded = self.encode(row)?;
        let row_id = match self.schema.has_primary_key() {
            true => None,
            false => {
                let id = self.next_row_id.load(Ordering::Relaxed);
                if id == i64::MAX {
                    let reason = "row ids are exhausted".to_string();
                    return Err(OpError::Invalid(Error::InvalidArgument(reason)));
                }
                Some(id)
            }
        };
        let pk = self.primary_key_bytes(row, row_id);
        Self::check_key_size(&self.primary, &pk)?;
        for (i, tree) in self.secondaries.iter().enumerate() {
            Self::check_key_size(tree, &self.entry_of(i, row, &pk))?;
        }
        let all: Vec<usize> = (0..self.secondaries.len()).collect();
        if let Some(def) = self.first_unique_conflict(row, &pk, &all)? {
            // The reference reports a duplicate primary key before a duplicate unique key.
            if row_id.is_none() && self.primary_get(&pk)?.is_some() {
                return Err(self.duplicate(PRIMARY_INDEX_NAME).into());
            }
            return Err(self.duplicate(&def.name).into());
        }
        // The primary insert checks for a duplicate before it changes anything.
        if !self.insert_row(&pk, row, &encoded).fatal()? {
            return Err(self.duplicate(PRIMARY_INDEX_NAME).into());
        }
        if let Some(id) = row_id {
            self.next_row_id.store(id + 1, Ordering::Relaxed);
        }
        bump(&self.counters.inserts, 1);
        undos.push(Undo::Insert {
            pk,
            row: row.clone(),
        });
        Ok(true)
    }

    fn update_op(
        &self,
        key: &[Value],
        changes: &[(usize, Value)],
        undos: &mut Vec<Undo>,
    ) -> std::result::Result<bool, OpError> {
        self.schema.validate_key(key)?;
        self.schema.validate_changes(changes)?;
        let pk = encode_key_to_vec(key);
        let Some(old_bytes) = self.primary_get(&pk)? else {
            return Ok(false);
        };
        let old = self.decode(&old_bytes)?;
        let mut new = old.clone();
        self.schema.apply_changes(&mut new, changes);
        let encoded = self.encode(&new)?;
        if encoded == old_bytes {
            // Nothing to write (InnoDB also skips an update that changes no column).
            bump(&self.counters.updates_unchanged, 1);
            return Ok(true);
        }
        let mut changed = Vec::new();
        for (i, tree) in self.secondaries.iter().enumerate() {
            let after = self.entry_of(i, &new, &pk);
            if after != self.entry_of(i, &old, &pk) {
                Self::check_key_size(tree, &after)?;
                changed.push(i);
            }
        }
        if let Some(def) = self.first_unique_conflict(&new, &pk, &changed)? {
            return Err(self.duplicate(&def.name).into());
        }
        let written = self.replace_row(&pk, &old, &new, &encoded).fatal()?;
        bump(&self.counters.updates, 1);
        bump(&self.counters.update_secondary_entries_written, written);
        undos.push(Undo::Update { pk, old, new });
        Ok(true)
    }

    fn delete_op(
        &self,
        key: &[Value],
        undos: &mut Vec<Undo>,
    ) -> std::result::Result<bool, OpError> {
        self.schema.validate_key(key)?;
        let pk = encode_key_to_vec(key);
        let Some(old_bytes) = self.primary_get(&pk)? else {
            return Ok(false);
        };
        let row = self.decode(&old_bytes)?;
        self.delete_row(&pk, &row).fatal()?;
        let mark_undo = self.mark_if_highest(&pk).fatal()?;
        bump(&self.counters.deletes, 1);
        undos.push(Undo::Delete { pk, row });
        undos.extend(mark_undo);
        Ok(true)
    }

    /// After the delete of the row under `pk` in a table without a primary key: writes the
    /// row-id mark if that row had the highest id ever assigned. Row ids are never reused;
    /// after a reopen the next id is found from the last row and the mark, and deleting the
    /// row with the highest id is the only delete that would lower that bound. Returns how to
    /// undo the write.
    fn mark_if_highest(&self, pk: &[u8]) -> Result<Option<Undo>> {
        let Some(marks) = &self.row_id_tree else {
            return Ok(None);
        };
        let id = self.row_id_of(pk)?;
        if id != self.next_row_id.load(Ordering::Relaxed) - 1 {
            return Ok(None);
        }
        let previous = marks.get(ROW_ID_MARK_KEY)?;
        marks.upsert_no_commit(ROW_ID_MARK_KEY, &id.to_le_bytes())?;
        bump(&self.counters.row_id_marks_written, 1);
        Ok(Some(Undo::Mark { previous }))
    }

    fn apply_op(&self, op: &Op, undos: &mut Vec<Undo>) -> std::result::Result<bool, OpError> {
        match op {
            Op::Insert(row) => self.insert_op(row, undos),
            Op::Update { key, changes } => self.update_op(key, changes, undos),
            Op::Delete { key } => self.delete_op(key, undos),
        }
    }

    /// Takes back one applied op of a failed batch (inside the batch's group).
    fn undo(&self, undo: Undo) -> Result<()> {
        match undo {
            Undo::Insert { pk, row } => self.delete_row(&pk, &row),
            Undo::Update { pk, old, new } => {
                let encoded = encode_row_to_vec(&self.schema, &old)?;
                self.replace_row(&pk, &new, &old, &encoded).map(|_| ())
            }
            Undo::Delete { pk, row } => {
                let encoded = encode_row_to_vec(&self.schema, &row)?;
                if !self.insert_row(&pk, &row, &encoded)? {
                    return Err(self.corrupt("primary", "a deleted row came back"));
                }
                Ok(())
            }
            Undo::Mark { previous } => {
                let marks = self.row_id_tree.as_ref().expect("marks exist without a pk");
                match previous {
                    Some(value) => marks
                        .upsert_no_commit(ROW_ID_MARK_KEY, &value)
                        .map(|_| ())?,
                    None => marks.delete_no_commit(ROW_ID_MARK_KEY).map(|_| ())?,
                }
                Ok(())
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Scans

    fn depth(&self, spec: &ScanSpec) -> usize {
        spec.prefetch_depth.unwrap_or(self.options.prefetch_depth)
    }

    /// Adds what a leaf reader of the primary tree did to the counters.
    fn add_leaf_stats(&self, stats: LeafReadStats) {
        let c = &self.counters;
        bump(&c.primary_leaves_streamed, stats.leaves_read);
        bump(&c.primary_descents, stats.overflow_fetches);
        bump(&c.internal_nodes_planned, stats.internal_nodes_read);
        bump(&c.overflow_fetches, stats.overflow_fetches);
    }

    /// Primary-key range scan: forward through the leaf reader (read-ahead) unless the depth
    /// is 0, backward with the B+tree's cursor.
    fn primary_scan(
        &self,
        range: ByteRange,
        spec: &ScanSpec,
        em: &mut Emitter<'_, '_>,
    ) -> Result<()> {
        let (lower, upper) = (as_ref(&range.0), as_ref(&range.1));
        // Only the columns asked for are decoded when no predicate needs the whole row.
        let only = match (em.predicate, em.projection) {
            (None, Some(columns)) => Some(columns),
            _ => None,
        };
        let offer = |em: &mut Emitter<'_, '_>, bytes: &[u8]| -> Result<bool> {
            Ok(match only {
                Some(columns) => em.projected(
                    decode_columns(&self.schema, bytes, columns)
                        .map_err(|e| self.corrupt("row", e.to_string()))?,
                ),
                None => em.row(self.decode(bytes)?),
            })
        };
        bump(&self.counters.primary_descents, 1);
        // A scan that stops after a few rows (YCSB E: 1 to 100) needs a leaf or two: reading
        // `depth` leaves ahead would fetch pages it never uses, so it looks one leaf ahead.
        // (PostgreSQL's read stream likewise starts with a short look-ahead distance.)
        let depth = match spec.limit {
            Some(limit) if limit <= SHORT_SCAN_ROWS => self.depth(spec).min(2),
            _ => self.depth(spec),
        };
        if spec.reverse || depth == 0 {
            let cursor = if spec.reverse {
                self.primary.range_rev(lower, upper)
            } else {
                self.primary.range(lower, upper)
            };
            for entry in cursor {
                let (_, value) = entry?;
                if !offer(em, &value)? {
                    break;
                }
            }
            return Ok(());
        }
        let mut reader = LeafReader::new(&self.primary, depth);
        let result = reader.scan_range(lower, upper, &mut |_, value| offer(em, &value));
        self.add_leaf_stats(reader.stats());
        result
    }

    /// Whether a scan of index `i` can answer from the secondary entries alone: no predicate
    /// (it sees whole rows) and every projected column is in the entry (index columns or
    /// primary-key columns).
    fn is_covering(&self, i: usize, em: &Emitter<'_, '_>) -> bool {
        let def = &self.schema.indexes[i];
        em.predicate.is_none()
            && em.projection.is_some_and(|columns| {
                columns
                    .iter()
                    .all(|c| def.columns.contains(c) || self.schema.primary_key.contains(c))
            })
    }

    /// The projected row a covering read builds from an entry of index `i`.
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

    /// Secondary index scan, `Plain`: in index order, one primary descent per entry unless
    /// the read is covering.
    fn index_scan(&self, i: usize, range: ByteRange, em: &mut Emitter<'_, '_>) -> Result<()> {
        let covering = self.is_covering(i, em);
        bump(&self.counters.secondary_descents, 1);
        for entry in self.secondaries[i].range(as_ref(&range.0), as_ref(&range.1)) {
            let (entry, _) = entry?;
            let more = if covering {
                let columns = em.projection.expect("covering reads have a projection");
                bump(&self.counters.covering_rows, 1);
                em.projected(self.covered_row(i, &entry, columns)?)
            } else {
                let (_, pk) = self.split_entry(i, &entry)?;
                let Some(bytes) = self.primary_get(pk)? else {
                    return Err(self.corrupt(
                        format!("index {:?}", self.schema.indexes[i].name),
                        "an entry has no row",
                    ));
                };
                em.row(self.decode(&bytes)?)
            };
            if !more {
                break;
            }
        }
        Ok(())
    }

    /// Secondary index scan, `Bitmap`: collect the primary keys of the range, sort them, and
    /// fetch the rows in primary-key order through the leaf reader (each leaf read once, with
    /// read-ahead): MySQL's Multi-Range Read. Rows come out in primary-key order.
    fn bitmap_scan(
        &self,
        i: usize,
        range: ByteRange,
        spec: &ScanSpec,
        em: &mut Emitter<'_, '_>,
    ) -> Result<()> {
        if self.is_covering(i, em) {
            return self.index_scan(i, range, em);
        }
        bump(&self.counters.bitmap_scans, 1);
        bump(&self.counters.secondary_descents, 1);
        let mut keys = Vec::new();
        for entry in self.secondaries[i].range(as_ref(&range.0), as_ref(&range.1)) {
            let (entry, _) = entry?;
            let (_, pk) = self.split_entry(i, &entry)?;
            keys.push(pk.to_vec());
        }
        keys.sort_unstable();
        keys.dedup();
        if keys.is_empty() {
            return Ok(());
        }
        // One batched descent: every internal node on the way is read once for all keys.
        bump(&self.counters.primary_descents, 1);
        let mut reader = LeafReader::new(&self.primary, self.depth(spec));
        let mut missing = false;
        let result = reader.get_many(&keys, &mut |_, value| match value {
            Some(bytes) => Ok(em.row(self.decode(&bytes)?)),
            None => {
                missing = true;
                Ok(false)
            }
        });
        self.add_leaf_stats(reader.stats());
        result?;
        if missing {
            let name = &self.schema.indexes[i].name;
            return Err(self.corrupt(format!("index {name:?}"), "an entry has no row"));
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Bulk load

    /// Whether every tree is one leaf, as `BTree::bulk_load` needs (a table emptied by
    /// deletes may keep internal nodes).
    fn trees_are_single_leaves(&self) -> Result<bool> {
        for tree in std::iter::once(&self.primary).chain(&self.secondaries) {
            if tree.stats()?.height != 1 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Loads `rows` into this empty table the fast way: the rows sorted by primary key and
    /// each tree built bottom-up, leaves filled to the leaf fill factor (InnoDB's sorted index
    /// build with `innodb_fill_factor`). Every row is validated and every primary and unique
    /// key checked before anything is written, so a bad row changes nothing.
    ///
    /// Not atomic by itself: the catalog marks the table `loading` while the trees are
    /// written, and a table found still marked at open is emptied (see
    /// `ClusteredEngine::open`), so after a crash the load happened entirely or not at all.
    /// The rows are held in memory.
    fn bulk_load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        let hidden = !self.schema.has_primary_key();
        let first_row_id = self.next_row_id.load(Ordering::Relaxed);
        let mut primary: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut entries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.secondaries.len()];
        for row in rows {
            self.schema.validate_row(&row)?;
            let encoded = self.encode(&row)?;
            let row_id = match hidden {
                true => {
                    let id = first_row_id.checked_add(primary.len() as i64);
                    Some(id.ok_or_else(|| {
                        Error::InvalidArgument("row ids are exhausted".to_string())
                    })?)
                }
                false => None,
            };
            let pk = self.primary_key_bytes(&row, row_id);
            Self::check_key_size(&self.primary, &pk)?;
            for (i, list) in entries.iter_mut().enumerate() {
                let entry = self.entry_of(i, &row, &pk);
                Self::check_key_size(&self.secondaries[i], &entry)?;
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
            // Equal index keys are adjacent once sorted.
            let key = |entry: &[u8]| -> Result<usize> {
                Ok(decode_key_prefix(entry, &self.index_types[i])?.1)
            };
            for pair in list.windows(2) {
                let (a, b) = (key(&pair[0])?, key(&pair[1])?);
                if pair[0][..a] == pair[1][..b] {
                    return Err(self.duplicate(&self.schema.indexes[i].name));
                }
            }
        }
        let count = primary.len() as u64;
        // Write. The catalog says "loading" until everything is durable.
        self.catalog
            .lock()
            .set_engine_data(&self.schema.name, serde_json::json!({ "loading": true }))?;
        self.primary.bulk_load(primary)?;
        for (tree, list) in self.secondaries.iter().zip(entries) {
            tree.bulk_load(list.into_iter().map(|entry| (entry, Vec::new())))?;
        }
        self.wal.checkpoint(&self.pool)?;
        self.catalog
            .lock()
            .set_engine_data(&self.schema.name, serde_json::Value::Null)?;
        if hidden {
            self.next_row_id
                .store(first_row_id + count as i64, Ordering::Relaxed);
        }
        self.row_count.fetch_add(count, Ordering::Relaxed);
        bump(&self.counters.rows_bulk_loaded, count);
        bump(
            &self.counters.secondary_entries_inserted,
            count * self.secondaries.len() as u64,
        );
        Ok(count)
    }

    // ---------------------------------------------------------------------------------------
    // check

    fn check_locked(&self) -> Result<()> {
        self.primary.check()?;
        for tree in &self.secondaries {
            tree.check()?;
        }
        if let Some(tree) = &self.row_id_tree {
            tree.check()?;
        }
        let next_row_id = self.next_row_id.load(Ordering::Relaxed);
        // Every row decodes, fits, and sits under its own key; collect the entries every
        // index must hold.
        let mut expected: Vec<Vec<Vec<u8>>> = vec![Vec::new(); self.secondaries.len()];
        let mut rows = 0u64;
        for entry in self.primary.range(Bound::Unbounded, Bound::Unbounded) {
            let (pk, bytes) = entry?;
            let row = self.decode(&bytes)?;
            if encoded_row_size(&row) > ROW_SIZE_MAX {
                return Err(self.corrupt("primary", "a row is over the size limit"));
            }
            if self.schema.has_primary_key() {
                if pk != encode_key_to_vec(&self.schema.primary_key_of(&row)) {
                    return Err(self.corrupt("primary", "a row is stored under another key"));
                }
            } else {
                let id = self.row_id_of(&pk)?;
                if !(ROW_ID_FIRST..next_row_id).contains(&id) {
                    let reason = format!("row id {id} outside {ROW_ID_FIRST}..{next_row_id}");
                    return Err(self.corrupt("primary", reason));
                }
            }
            for (i, entries) in expected.iter_mut().enumerate() {
                entries.push(self.entry_of(i, &row, &pk));
            }
            rows += 1;
        }
        let counted = self.row_count.load(Ordering::Relaxed);
        if rows != counted {
            return Err(self.corrupt("primary", format!("{rows} rows, {counted} counted")));
        }
        // Every index holds exactly the entries of the rows: each entry has its row with that
        // key, each row has its entry; unique indexes hold each key once.
        for (i, mut entries) in expected.into_iter().enumerate() {
            let def = &self.schema.indexes[i];
            let what = format!("index {:?}", def.name);
            entries.sort_unstable();
            let mut wanted = entries.into_iter();
            let mut previous_key: Option<Vec<u8>> = None;
            for entry in self.secondaries[i].range(Bound::Unbounded, Bound::Unbounded) {
                let (entry, value) = entry?;
                if !value.is_empty() {
                    return Err(self.corrupt(&what, "an entry has a value"));
                }
                let (_, pk) = self.split_entry(i, &entry)?;
                match wanted.next() {
                    Some(w) if w == entry => {}
                    Some(w) if w < entry => {
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
}

pub(crate) fn as_ref(bound: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match bound {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Table for ClusteredTable {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let (end, outcome) = {
            let _w = self.lock.write();
            let group = self.wal.atomic_group()?;
            let next_row_id = self.next_row_id.load(Ordering::Relaxed);
            let mut outcome = Vec::with_capacity(ops.len());
            let mut undos = Vec::new();
            let mut failure = None;
            for op in ops {
                match self.apply_op(op, &mut undos) {
                    Ok(done) => outcome.push(done),
                    Err(OpError::Invalid(e)) => {
                        failure = Some(e);
                        break;
                    }
                    // The op stopped half-way: its trees are in an unknown state. The group
                    // is dropped without its end, which poisons the log; reopening recovers
                    // to the last complete batch.
                    Err(OpError::Fatal(e)) => return Err(e),
                }
            }
            if let Some(e) = failure {
                // Take back what the batch did, inside the same group: the log holds the
                // batch and its reversal together, or neither.
                for undo in undos.into_iter().rev() {
                    self.undo(undo)?;
                }
                self.next_row_id.store(next_row_id, Ordering::Relaxed);
                let end = group.end()?;
                self.wal.commit(end)?;
                return Err(e);
            }
            (group.end()?, outcome)
        };
        self.wal.commit(end)?;
        self.wal.checkpoint_if_due(&self.pool)?;
        Ok(outcome)
    }

    /// An empty table is bulk-loaded (see `ClusteredTable::bulk_load`); a table with rows
    /// gets the rows in atomic batches.
    fn load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        {
            let _w = self.lock.write();
            if self.row_count.load(Ordering::Relaxed) == 0 && self.trees_are_single_leaves()? {
                return self.bulk_load(rows);
            }
        }
        load_in_batches(self, rows)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.schema.validate_key(key)?;
        let _r = self.lock.read_recursive();
        let before = self.pins();
        let found = self.primary_get(&encode_key_to_vec(key))?;
        bump(&self.counters.gets, 1);
        bump(&self.counters.get_pages_touched, self.pins() - before);
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
        let before = self.pins();
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
                self.bitmap_scan(i, range, spec, &mut em)
            }
            Some(i) => self.index_scan(i, range, &mut em),
        };
        bump(&self.counters.scans, 1);
        bump(&self.counters.scan_pages_touched, self.pins() - before);
        result.map(|()| em.count)
    }

    fn stats(&self) -> Result<TableStats> {
        let disk = self.pool.disk();
        let mut file_bytes = BTreeMap::new();
        file_bytes.insert("primary".to_string(), disk.file_len(self.primary.file())?);
        for (def, tree) in self.schema.indexes.iter().zip(&self.secondaries) {
            file_bytes.insert(format!("index_{}", def.name), disk.file_len(tree.file())?);
        }
        if let Some(tree) = &self.row_id_tree {
            file_bytes.insert("row_id".to_string(), disk.file_len(tree.file())?);
        }
        let c = &self.counters;
        let mut counters = BTreeMap::new();
        for (name, v) in [
            ("inserts", &c.inserts),
            ("updates", &c.updates),
            ("updates_unchanged", &c.updates_unchanged),
            ("deletes", &c.deletes),
            ("primary_descents", &c.primary_descents),
            ("secondary_descents", &c.secondary_descents),
            ("secondary_entries_inserted", &c.secondary_entries_inserted),
            ("secondary_entries_deleted", &c.secondary_entries_deleted),
            (
                "update_secondary_entries_written",
                &c.update_secondary_entries_written,
            ),
            ("covering_rows", &c.covering_rows),
            ("gets", &c.gets),
            ("get_pages_touched", &c.get_pages_touched),
            ("scans", &c.scans),
            ("scan_pages_touched", &c.scan_pages_touched),
            ("bitmap_scans", &c.bitmap_scans),
            ("primary_leaves_streamed", &c.primary_leaves_streamed),
            ("internal_nodes_planned", &c.internal_nodes_planned),
            ("overflow_fetches", &c.overflow_fetches),
            ("row_id_marks_written", &c.row_id_marks_written),
            ("rows_bulk_loaded", &c.rows_bulk_loaded),
        ] {
            counters.insert(name.to_string(), v.load(Ordering::Relaxed));
        }
        let written = c.secondary_entries_inserted.load(Ordering::Relaxed)
            + c.secondary_entries_deleted.load(Ordering::Relaxed);
        counters.insert("secondary_entries_written".to_string(), written);
        let (primary, secondaries) = self.tree_stats()?;
        counters.insert("primary_height".to_string(), primary.height as u64);
        counters.insert("primary_leaf_pages".to_string(), primary.leaf_count);
        counters.insert("primary_internal_pages".to_string(), primary.internal_count);
        counters.insert("primary_overflow_pages".to_string(), primary.overflow_count);
        counters.insert("primary_free_pages".to_string(), primary.free_count);
        counters.insert(
            "primary_leaf_fill_permille".to_string(),
            (primary.leaf_fill * 1000.0).round() as u64,
        );
        counters.insert("primary_splits".to_string(), primary.split_count);
        counters.insert("primary_merges".to_string(), primary.merge_count);
        let sum = |f: fn(&BTreeStats) -> u64| secondaries.iter().map(f).sum::<u64>();
        counters.insert("secondary_leaf_pages".to_string(), sum(|s| s.leaf_count));
        counters.insert("secondary_splits".to_string(), sum(|s| s.split_count));
        counters.insert("secondary_merges".to_string(), sum(|s| s.merge_count));
        Ok(TableStats {
            row_count: self.row_count.load(Ordering::Relaxed),
            file_bytes,
            counters,
        })
    }

    fn check(&self) -> Result<()> {
        let _w = self.lock.write();
        self.check_locked()
    }
}

#[cfg(test)]
mod tests {
    use storelab_pager::PageSize;
    use storelab_table::{Engine, StorageConfig};
    use storelab_wal::CommitMode;

    use super::*;
    use crate::ClusteredEngine;

    /// An engine with 512-byte nodes, so that few rows make deep trees.
    fn engine(dir: &std::path::Path) -> ClusteredEngine {
        let config = StorageConfig {
            page_size: PageSize::K4,
            pool_bytes: 1 << 20,
            commit_mode: CommitMode::Off,
            ..StorageConfig::default()
        };
        let options = ClusteredOptions {
            btree: BTreeConfig {
                node_size: Some(512),
                ..BTreeConfig::default()
            },
            ..ClusteredOptions::default()
        };
        ClusteredEngine::open(dir, &config, options).unwrap()
    }

    fn table(e: &ClusteredEngine) -> Arc<ClusteredTable> {
        let schema = Schema::builder("t")
            .column("id", ColumnType::Int64)
            .column("name", ColumnType::Text)
            .primary_key(&["id"])
            .index("by_name", &["name"], true)
            .build()
            .unwrap();
        e.create_table(schema).unwrap();
        let t = e.clustered_table("t").unwrap();
        for id in 0..20 {
            t.insert(vec![Value::Int(id), Value::Text(format!("n{id}"))])
                .unwrap();
        }
        t.check().unwrap();
        t
    }

    /// Writes straight into a tree, as a bug or a bad disk would, inside a group.
    fn tamper(t: &ClusteredTable, change: impl FnOnce(&ClusteredTable) -> Result<()>) {
        let group = t.wal.atomic_group().unwrap();
        change(t).unwrap();
        group.end().unwrap();
    }

    /// `check` notices a secondary entry without its row.
    #[test]
    fn check_detects_entry_without_row() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&engine(dir.path()));
        tamper(&t, |t| {
            let row = vec![Value::Int(99), Value::Text("ghost".into())];
            let entry = t.entry_of(0, &row, &encode_key_to_vec(&[Value::Int(99)]));
            t.secondaries[0].insert_no_commit(&entry, &[])?;
            Ok(())
        });
        assert!(matches!(t.check(), Err(Error::Corrupt { .. })));
    }

    /// `check` notices a row without its secondary entry.
    #[test]
    fn check_detects_row_without_entry() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&engine(dir.path()));
        tamper(&t, |t| {
            let row = vec![Value::Int(5), Value::Text("n5".into())];
            let entry = t.entry_of(0, &row, &encode_key_to_vec(&[Value::Int(5)]));
            t.secondaries[0].delete_no_commit(&entry)?;
            Ok(())
        });
        assert!(matches!(t.check(), Err(Error::Corrupt { .. })));
    }

    /// `check` notices a row stored under another key, and a row that does not decode;
    /// reading the latter is `Corrupt`, not a panic.
    #[test]
    fn check_detects_misplaced_and_garbled_rows() {
        let dir = tempfile::tempdir().unwrap();
        let t = table(&engine(dir.path()));
        tamper(&t, |t| {
            let row = vec![Value::Int(6), Value::Text("n6".into())];
            let bytes = encode_row_to_vec(&t.schema, &row)?;
            t.primary
                .upsert_no_commit(&encode_key_to_vec(&[Value::Int(7)]), &bytes)?;
            Ok(())
        });
        assert!(matches!(t.check(), Err(Error::Corrupt { .. })));
        tamper(&t, |t| {
            t.primary
                .upsert_no_commit(&encode_key_to_vec(&[Value::Int(8)]), &[1, 2, 3])?;
            Ok(())
        });
        assert!(matches!(
            t.get(&[Value::Int(8)]),
            Err(Error::Corrupt { .. })
        ));
        assert!(matches!(t.check(), Err(Error::Corrupt { .. })));
    }

    /// The leaf reader finds the same entries as the B+tree's cursor for every range, and
    /// each key of a batch of sorted lookups, on a tree several levels deep.
    #[test]
    fn leaf_reader_agrees_with_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path());
        let t = table(&e);
        for id in 20..1500 {
            t.insert(vec![Value::Int(id), Value::Text(format!("n{id}"))])
                .unwrap();
        }
        assert!(t.primary.stats().unwrap().height >= 3);
        let key = |id: i64| encode_key_to_vec(&[Value::Int(id)]);
        for (lo, hi) in [(0, 1500), (100, 101), (333, 900), (1499, 2000), (-5, 3)] {
            let (lo, hi) = (key(lo), key(hi));
            let bounds = [
                (Bound::Included(&lo[..]), Bound::Excluded(&hi[..])),
                (Bound::Excluded(&lo[..]), Bound::Included(&hi[..])),
                (Bound::Unbounded, Bound::Excluded(&hi[..])),
                (Bound::Included(&lo[..]), Bound::Unbounded),
            ];
            for (lower, upper) in bounds {
                let want: Vec<_> = t.primary.range(lower, upper).map(|e| e.unwrap()).collect();
                let mut got = Vec::new();
                let mut reader = LeafReader::new(&t.primary, 4);
                reader
                    .scan_range(lower, upper, &mut |k, v| {
                        got.push((k.to_vec(), v));
                        Ok(true)
                    })
                    .unwrap();
                assert_eq!(got, want);
            }
        }
        let keys: Vec<Vec<u8>> = (-3..1600).step_by(7).map(key).collect();
        let mut reader = LeafReader::new(&t.primary, 8);
        let mut got = Vec::new();
        reader
            .get_many(&keys, &mut |k, v| {
                got.push((k.to_vec(), v));
                Ok(true)
            })
            .unwrap();
        let want: Vec<_> = keys
            .iter()
            .map(|k| (k.clone(), t.primary.get(k).unwrap()))
            .collect();
        assert_eq!(got, want);
        let stats = reader.stats();
        assert!(stats.leaves_read < keys.len() as u64, "{stats:?}");
    }
}
