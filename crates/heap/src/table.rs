//! One heap table: the heap file, its primary-key index and secondary indexes, all B+trees of
//! key -> TID; inserts, HOT and non-HOT updates, deletes, pruning, VACUUM, the three scans.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use storelab_btree::BTree;
use storelab_pager::buffer_pool::{ReadStream, ReadStreamConfig};
use storelab_pager::page::PageHeader;
use storelab_pager::{BufferPool, FileId, PageId, PageType, PageWriteGuard};
use storelab_table::catalog::Catalog;
use storelab_table::engine::load_in_batches;
use storelab_table::key::{encode_key, key_range};
use storelab_table::{
    BatchOutcome, Error, IndexDef, IndexScanMethod, Op, Predicate, Result, Row, ScanSpec, Schema,
    Table, TableStats, Value, Visitor,
    codec::{decode_row, encode_row_to_vec},
};
use storelab_wal::{RecordBuilder, RecordType, RelId, Wal};

use crate::fsm::FreeSpaceMap;
use crate::heap_page::{self, HEAP_PAGE, HeapPageMut, HeapPageRef, LinePointer, TupleFlags};
use crate::redo::{PageOp, REC_HEAP, encode_op};
use crate::tid::{SlotId, TID_ENCODED_SIZE, Tid};

/// Bytes in front of the row in a tuple of a table without a primary key: the hidden row id.
const ROW_ID_SIZE: usize = 8;

/// Settings of the heap engine's tables.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeapOptions {
    /// Percent of a page inserts may fill (PostgreSQL's table `fillfactor`, default 100); the
    /// rest is kept for HOT updates of the page's rows.
    pub fillfactor_pct: u8,
    /// Heap-only tuple updates (default on). Off, every update writes a new entry in every
    /// index even when no indexed column changed: the heap without HOT, for experiments that
    /// measure what HOT saves (PostgreSQL has no such switch; its fillfactor and indexed
    /// columns decide).
    pub hot: bool,
    /// Run VACUUM after a write when dead tuples exceed the trigger below.
    pub autovacuum: bool,
    /// `autovacuum_vacuum_threshold` (PostgreSQL default 50).
    pub autovacuum_threshold: u64,
    /// `autovacuum_vacuum_scale_factor` (PostgreSQL default 0.2).
    pub autovacuum_scale_factor: f64,
    /// Run autovacuum in a background thread that looks every `autovacuum_naptime_ms`
    /// (PostgreSQL's autovacuum launcher) instead of inline after the write that crosses the
    /// trigger.
    pub autovacuum_background: bool,
    /// How often the background autovacuum looks at the tables.
    pub autovacuum_naptime_ms: u64,
    /// Read-ahead depth of sequential and bitmap scans when the scan does not say (pages).
    pub prefetch_depth: usize,
    /// Settings of every index.
    pub btree: storelab_btree::BTreeConfig,
}

impl Default for HeapOptions {
    fn default() -> Self {
        HeapOptions {
            fillfactor_pct: 100,
            hot: true,
            autovacuum: true,
            autovacuum_threshold: 50,
            autovacuum_scale_factor: 0.2,
            autovacuum_background: false,
            autovacuum_naptime_ms: 100,
            prefetch_depth: 32,
            btree: storelab_btree::BTreeConfig::default(),
        }
    }
}

/// The heap's entry in the catalog (`engine_data`):
/// `{"loading": bool, "row_id_floor": n, "row_id_exact": bool}`.
///
/// Hidden row ids are never reused once acknowledged: the next id is one past the largest id
/// in the primary index (live rows and deleted ones not yet vacuumed), and VACUUM records in
/// `row_id_floor` the ids it removes before removing them. A clean shutdown records the exact
/// next id (`row_id_exact`), so that ids taken back by failed batches are not skipped after a
/// clean reopen; after a crash they may be (InnoDB's `DB_ROW_ID` skips ids after a restart).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TableMeta {
    /// A bulk load is writing pages: a table found so at open is emptied.
    pub(crate) loading: bool,
    /// Hidden row ids below this may have been used.
    pub(crate) row_id_floor: u64,
    /// `row_id_floor` is the exact next id (written at a clean shutdown, cleared at open).
    pub(crate) row_id_exact: bool,
}

impl TableMeta {
    pub(crate) fn from_json(v: &serde_json::Value) -> TableMeta {
        let flag = |k: &str| v.get(k).and_then(serde_json::Value::as_bool) == Some(true);
        TableMeta {
            loading: flag("loading"),
            row_id_floor: v
                .get("row_id_floor")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0),
            row_id_exact: flag("row_id_exact"),
        }
    }

    pub(crate) fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "loading": self.loading,
            "row_id_floor": self.row_id_floor,
            "row_id_exact": self.row_id_exact,
        })
    }
}

/// Counters of one table since open (the experiments read them through `stats`).
#[derive(Debug, Default)]
struct Counters {
    inserts: AtomicU64,
    rows_bulk_loaded: AtomicU64,
    hot_updates: AtomicU64,
    non_hot_updates: AtomicU64,
    deletes: AtomicU64,
    index_entries_inserted: AtomicU64,
    pages_pruned: AtomicU64,
    tuples_pruned: AtomicU64,
    vacuum_runs: AtomicU64,
    autovacuum_runs: AtomicU64,
    vacuum_pages_scanned: AtomicU64,
    vacuum_dead_line_pointers_freed: AtomicU64,
    vacuum_index_entries_removed: AtomicU64,
    /// The ledger's traffic, all files and causes, while VACUUM ran: its own reads and log
    /// writes, and the write-backs its page accesses forced (the pool does not charge these
    /// to the `vacuum` cause, so the experiments read VACUUM's cost from here).
    vacuum_io_read_count: AtomicU64,
    vacuum_io_read_bytes: AtomicU64,
    vacuum_io_write_count: AtomicU64,
    vacuum_io_write_bytes: AtomicU64,
    /// Log bytes VACUUM appended (page images, index deletions), whenever they reach the
    /// file: with commits that do not sync, most are written after VACUUM returns.
    vacuum_log_bytes_appended: AtomicU64,
    heap_pages_fetched: AtomicU64,
    index_scans: AtomicU64,
}

/// The files and relation numbers of one table.
#[derive(Clone, Debug)]
pub struct TableFiles {
    /// The heap file and its relation.
    pub heap: (FileId, RelId),
    /// The primary-key index.
    pub primary: (FileId, RelId),
    /// One per secondary index, in schema order.
    pub secondaries: Vec<(FileId, RelId)>,
}

/// A heap table. See the crate documentation.
pub struct HeapTable {
    schema: Schema,
    pool: Arc<BufferPool>,
    wal: Arc<Wal>,
    heap: FileId,
    rel: RelId,
    primary: BTree,
    secondaries: Vec<BTree>,
    options: HeapOptions,
    fsm: FreeSpaceMap,
    /// Writers hold it exclusively, readers shared (see the crate doc's simplifications).
    lock: RwLock<()>,
    /// The page inserts try first (PostgreSQL's relation target block).
    target_page: Mutex<Option<u64>>,
    next_row_id: AtomicU64,
    live_rows: AtomicU64,
    dead_tuples: AtomicU64,
    counters: Counters,
    row_size_max: usize,
    /// The engine's catalog (bulk load marks the table as loading there).
    catalog: Arc<Mutex<Catalog>>,
}

impl std::fmt::Debug for HeapTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapTable")
            .field("name", &self.schema.name)
            .finish_non_exhaustive()
    }
}

/// A live row found through an index: the entry's TID (the chain root), the live version's
/// TID and the row.
struct Found {
    live: Tid,
    row: Row,
}

impl HeapTable {
    /// Opens the table over files already attached to the log and recovered.
    pub(crate) fn open(
        schema: Schema,
        pool: Arc<BufferPool>,
        wal: Arc<Wal>,
        files: &TableFiles,
        options: HeapOptions,
        catalog: Arc<Mutex<Catalog>>,
        meta: TableMeta,
    ) -> Result<HeapTable> {
        let page_size = pool.page_size();
        pool.set_validator(
            files.heap.0,
            Arc::new(move |_, bytes| {
                if !is_heap_page(bytes) {
                    // A page the file was extended by whose first write was lost in a crash
                    // reads as zeros (a free page): it is reused as a new page.
                    return match PageHeader::read(bytes).page_type {
                        t if t == PageType::FREE => Ok(()),
                        t => Err(format!("page type {t:?} in a heap file")),
                    };
                }
                heap_page::validate(bytes, page_size).map_err(|e| e.to_string())
            }),
        );
        let primary = BTree::open(
            Arc::clone(&pool),
            Arc::clone(&wal),
            files.primary.0,
            files.primary.1,
            options.btree,
        )?;
        let secondaries = files
            .secondaries
            .iter()
            .map(|&(file, rel)| {
                BTree::open(
                    Arc::clone(&pool),
                    Arc::clone(&wal),
                    file,
                    rel,
                    options.btree,
                )
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let hidden = !schema.has_primary_key();
        let row_size_max = heap_page::row_size_max(page_size) - ROW_ID_SIZE;
        let table = HeapTable {
            schema,
            pool,
            wal,
            heap: files.heap.0,
            rel: files.heap.1,
            primary,
            secondaries,
            options,
            fsm: FreeSpaceMap::new(page_size),
            lock: RwLock::new(()),
            target_page: Mutex::new(None),
            next_row_id: AtomicU64::new(1),
            live_rows: AtomicU64::new(0),
            dead_tuples: AtomicU64::new(0),
            counters: Counters::default(),
            row_size_max,
            catalog,
        };
        // Live rows and the next hidden row id, from one pass over the heap (the FSM is
        // filled on the way, so free space left before a restart is found again).
        let (live, max_row_id) = table.survey()?;
        table.live_rows.store(live, Ordering::Relaxed);
        if hidden {
            let next = if meta.row_id_exact {
                meta.row_id_floor
            } else {
                table
                    .primary_id_max()?
                    .map_or(1, |m| m + 1)
                    .max(meta.row_id_floor)
            };
            table
                .next_row_id
                .store(next.max(max_row_id + 1).max(1), Ordering::Relaxed);
            if meta.row_id_exact {
                // From now on a crash must fall back to the index.
                table.set_meta(TableMeta {
                    row_id_exact: false,
                    ..meta
                })?;
            }
        }
        let pages = table.page_count()?;
        *table.target_page.lock() = pages.checked_sub(1);
        Ok(table)
    }

    /// The table's files: heap, primary index, secondary indexes (e.g. to evict them from
    /// the pool before a cold-cache measurement).
    pub fn file_ids(&self) -> Vec<FileId> {
        let mut files = vec![self.heap, self.primary.file()];
        files.extend(self.secondaries.iter().map(BTree::file));
        files
    }

    pub(crate) fn meta(&self) -> Result<TableMeta> {
        let catalog = self.catalog.lock();
        Ok(TableMeta::from_json(
            &catalog.get(&self.schema.name)?.engine_data,
        ))
    }

    fn set_meta(&self, meta: TableMeta) -> Result<()> {
        self.catalog
            .lock()
            .set_engine_data(&self.schema.name, meta.to_json())
    }

    /// The largest hidden row id in the primary index (live or deleted, not yet vacuumed).
    fn primary_id_max(&self) -> Result<Option<u64>> {
        match self
            .primary
            .range_rev(Bound::Unbounded, Bound::Unbounded)
            .next()
        {
            None => Ok(None),
            Some(entry) => {
                let (key, _) = entry?;
                self.row_id_of_entry(&key).map(Some)
            }
        }
    }

    /// The hidden row id an entry of the primary index is for.
    fn row_id_of_entry(&self, key: &[u8]) -> Result<u64> {
        let (values, _) =
            storelab_table::key::decode_key_prefix(key, &[storelab_table::ColumnType::Int64])?;
        match values.first() {
            Some(Value::Int(id)) if *id > 0 => Ok(*id as u64),
            _ => Err(self.corrupt("primary index", "a row id that is not positive")),
        }
    }

    /// At a clean shutdown: the floor becomes the exact next id, so a reopen continues
    /// without a gap.
    pub(crate) fn save_row_id(&self) -> Result<()> {
        if self.schema.has_primary_key() {
            return Ok(());
        }
        let mut meta = self.meta()?;
        meta.row_id_floor = self.next_row_id.load(Ordering::Relaxed);
        meta.row_id_exact = true;
        self.set_meta(meta)
    }

    /// `KeyTooLarge` if any index entry of a row would not fit its B+tree (checked before
    /// anything is written).
    fn check_key_sizes(&self, keys: &[Vec<Value>]) -> Result<()> {
        for (i, values) in keys.iter().enumerate() {
            let size = storelab_table::key::encoded_key_size(values) + TID_ENCODED_SIZE;
            let max = self.tree(i).key_size_max();
            if size > max {
                return Err(Error::KeyTooLarge { size, max });
            }
        }
        Ok(())
    }

    /// The largest encoded row accepted.
    pub fn row_size_max(&self) -> usize {
        self.row_size_max
    }

    fn page_count(&self) -> Result<u64> {
        Ok(self.pool.disk().page_count(self.heap)?)
    }

    fn corrupt(&self, what: impl std::fmt::Display, reason: impl Into<String>) -> Error {
        let path = self
            .pool
            .disk()
            .path(self.heap)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into());
        Error::corrupt(format!("heap {path} {what}"), reason)
    }

    /// Counts live rows, finds the largest hidden row id and fills the FSM.
    fn survey(&self) -> Result<(u64, u64)> {
        let mut live = 0;
        let mut max_row_id = 0;
        let pages = self.page_count()?;
        let hidden = !self.schema.has_primary_key();
        let mut stream = ReadStream::new(
            &self.pool,
            self.heap,
            (0..pages).map(PageId),
            ReadStreamConfig::default(),
        );
        while let Some(guard) = stream.next() {
            let guard = guard?;
            if !is_heap_page(&guard) {
                continue;
            }
            let page = HeapPageRef::new(&guard, self.pool.page_size());
            for (_, t) in page.tuples() {
                if t.is_live() {
                    live += 1;
                    if hidden && t.row.len() >= ROW_ID_SIZE {
                        let id = u64::from_le_bytes(t.row[..8].try_into().expect("8 bytes"));
                        max_row_id = max_row_id.max(id);
                    }
                }
            }
            self.fsm.update(guard.page_id().0, page.free_space());
        }
        Ok((live, max_row_id))
    }

    // ---------------------------------------------------------------------------------------
    // Keys

    /// The primary index's key values of a tuple's data (the hidden row id if there is no
    /// primary key) and the row.
    fn split_tuple(&self, data: &[u8], tid: Tid) -> Result<(Vec<Value>, Row)> {
        if self.schema.has_primary_key() {
            let row = decode_row(&self.schema, data)
                .map_err(|e| self.corrupt(tid, format!("row: {e}")))?;
            Ok((self.schema.primary_key_of(&row), row))
        } else {
            if data.len() < ROW_ID_SIZE {
                return Err(self.corrupt(tid, "tuple shorter than its row id"));
            }
            let id = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            let row = decode_row(&self.schema, &data[ROW_ID_SIZE..])
                .map_err(|e| self.corrupt(tid, format!("row: {e}")))?;
            Ok((vec![Value::Int(id as i64)], row))
        }
    }

    /// The hidden row id a primary key names (`None` for a table with a primary key).
    fn row_id_of_key(&self, pk: &[Value]) -> Option<u64> {
        match (self.schema.has_primary_key(), pk.first()) {
            (false, Some(Value::Int(id))) => Some(*id as u64),
            _ => None,
        }
    }

    /// Index entry key: the encoded key values, then the TID (unique per entry).
    fn entry_key(values: &[Value], tid: Tid) -> Vec<u8> {
        let mut k = Vec::new();
        encode_key(values, &mut k);
        k.extend_from_slice(&tid.encode());
        k
    }

    fn entry_tid(&self, key: &[u8]) -> Result<Tid> {
        if key.len() < TID_ENCODED_SIZE {
            return Err(Error::corrupt("heap index entry", "key shorter than a TID"));
        }
        Tid::decode(&key[key.len() - TID_ENCODED_SIZE..])
            .map_err(|e| Error::corrupt("heap index entry", e.to_string()))
    }

    /// Every index's key values of a row: primary first, then the secondaries.
    fn all_keys(&self, pk: &[Value], row: &Row) -> Vec<Vec<Value>> {
        let mut keys = vec![pk.to_vec()];
        for def in &self.schema.indexes {
            keys.push(self.schema.index_key_of(def, row));
        }
        keys
    }

    fn tree(&self, i: usize) -> &BTree {
        if i == 0 {
            &self.primary
        } else {
            &self.secondaries[i - 1]
        }
    }

    // ---------------------------------------------------------------------------------------
    // Reading tuples

    /// The live version of the chain at `tid`, with its data, if any.
    fn fetch(&self, tid: Tid) -> Result<Option<(Tid, Vec<u8>)>> {
        if tid.page_id.0 >= self.page_count()? {
            return Err(self.corrupt(tid, "index entry points past the end of the heap"));
        }
        self.counters
            .heap_pages_fetched
            .fetch_add(1, Ordering::Relaxed);
        let guard = self.pool.read(self.heap, tid.page_id)?;
        if !is_heap_page(&guard) {
            return Err(self.corrupt(tid, "index entry points at a page never written"));
        }
        let page = HeapPageRef::new(&guard, self.pool.page_size());
        Ok(page.hot_search(tid.slot).and_then(|live| {
            page.tuple(live)
                .map(|t| (Tid::new(tid.page_id, live), t.row.to_vec()))
        }))
    }

    /// Live rows whose key in index `i` (0: primary) equals `values` exactly.
    fn find_exact(&self, i: usize, values: &[Value]) -> Result<Vec<Found>> {
        let mut prefix = Vec::new();
        encode_key(values, &mut prefix);
        let mut upper = prefix.clone();
        upper.extend_from_slice(&[0xFF; TID_ENCODED_SIZE]);
        let mut found = Vec::new();
        for entry in self
            .tree(i)
            .range(Bound::Included(&prefix), Bound::Included(&upper))
        {
            let (key, _) = entry?;
            if key.len() != prefix.len() + TID_ENCODED_SIZE {
                continue; // A longer key that shares the prefix bytes (cannot happen for
                // exact encodings, kept as a guard).
            }
            let tid = self.entry_tid(&key)?;
            if let Some((live, data)) = self.fetch(tid)? {
                let (pk, row) = self.split_tuple(&data, live)?;
                // Only index `i`'s key is needed to confirm the live version still has it.
                if self.entry_matches(i, &key, &pk, &row) {
                    found.push(Found { live, row });
                }
            }
        }
        Ok(found)
    }

    fn find_by_pk(&self, key: &[Value]) -> Result<Option<Found>> {
        Ok(self.find_exact(0, key)?.into_iter().next())
    }

    // ---------------------------------------------------------------------------------------
    // Writing tuples

    /// Logs `ops` on one latched page and stamps it.
    fn log_page(
        &self,
        page: &mut PageWriteGuard<'_>,
        ops: &[PageOp<'_>],
        fresh: bool,
    ) -> Result<()> {
        let mut data = Vec::new();
        for op in ops {
            encode_op(op, &mut data);
        }
        let end = {
            let record = if fresh {
                // A new page: its image (PostgreSQL's XLOG_HEAP_INIT_PAGE rebuilds it).
                RecordBuilder::new(RecordType::PAGE_IMAGES).image(self.rel, page.page_id(), page)
            } else {
                RecordBuilder::new(REC_HEAP).block(self.rel, page.page_id(), page, &data)
            };
            self.wal.append(&record)?
        };
        page.set_lsn(end);
        Ok(())
    }

    /// Logs ops on two latched pages in one record.
    fn log_two(
        &self,
        a: &mut PageWriteGuard<'_>,
        a_ops: &[PageOp<'_>],
        b: &mut PageWriteGuard<'_>,
        b_ops: &[PageOp<'_>],
    ) -> Result<()> {
        let (mut da, mut db) = (Vec::new(), Vec::new());
        a_ops.iter().for_each(|op| encode_op(op, &mut da));
        b_ops.iter().for_each(|op| encode_op(op, &mut db));
        let end = self.wal.append(
            &RecordBuilder::new(REC_HEAP)
                .block(self.rel, a.page_id(), a, &da)
                .block(self.rel, b.page_id(), b, &db),
        )?;
        a.set_lsn(end);
        b.set_lsn(end);
        Ok(())
    }

    /// Logs a whole page (after prune or vacuum).
    fn log_image(&self, page: &mut PageWriteGuard<'_>) -> Result<()> {
        let end = self
            .wal
            .append(&RecordBuilder::new(RecordType::PAGE_IMAGES).image(
                self.rel,
                page.page_id(),
                page,
            ))?;
        page.set_lsn(end);
        Ok(())
    }

    /// Bytes an insert must leave free on a page (the fillfactor's reserve).
    fn reserve(&self) -> usize {
        self.pool.page_size() * (100 - self.options.fillfactor_pct as usize) / 100
    }

    /// A latched page with room for a tuple of `data_len` bytes (the fillfactor respected),
    /// not `avoid`; whether it is new.
    fn page_for_insert(
        &self,
        data_len: usize,
        avoid: Option<PageId>,
    ) -> Result<(PageWriteGuard<'_>, bool)> {
        let needed = heap_page::TUPLE_HEADER_SIZE + data_len + self.reserve();
        let page_size = self.pool.page_size();
        let mut candidates = Vec::new();
        if let Some(p) = *self.target_page.lock() {
            candidates.push(p);
        }
        for _ in 0..8 {
            let candidate = candidates.pop().or_else(|| self.fsm.find(needed));
            let Some(p) = candidate else { break };
            if Some(PageId(p)) == avoid {
                self.fsm.update(p, 0);
                continue;
            }
            let mut guard = self.pool.write(self.heap, PageId(p))?;
            if !is_heap_page(&guard) {
                HeapPageMut::new(&mut guard, page_size).init();
                *self.target_page.lock() = Some(p);
                return Ok((guard, true));
            }
            let mut free = HeapPageRef::new(&guard, page_size).free_space();
            if free < needed && self.prune_page(&mut guard)? {
                free = HeapPageRef::new(&guard, page_size).free_space();
            }
            if free >= needed {
                *self.target_page.lock() = Some(p);
                return Ok((guard, false));
            }
            self.fsm.update(p, free);
        }
        let mut guard = self.pool.new_page(self.heap, HEAP_PAGE)?;
        HeapPageMut::new(&mut guard, page_size).init();
        *self.target_page.lock() = Some(guard.page_id().0);
        Ok((guard, true))
    }

    /// Prunes one latched page (HOT chains and dead tuples), logging it if it changed.
    fn prune_page(&self, guard: &mut PageWriteGuard<'_>) -> Result<bool> {
        let page_size = self.pool.page_size();
        let result = HeapPageMut::new(guard, page_size).prune();
        if !result.page_changed {
            return Ok(false);
        }
        self.log_image(guard)?;
        self.counters.pages_pruned.fetch_add(1, Ordering::Relaxed);
        self.counters
            .tuples_pruned
            .fetch_add(result.tuples_removed_count as u64, Ordering::Relaxed);
        self.fsm.update(
            guard.page_id().0,
            HeapPageRef::new(guard, page_size).free_space(),
        );
        Ok(true)
    }

    /// Encodes a row's tuple data (with the hidden row id in front if there is no key).
    fn tuple_data(&self, row_id: Option<u64>, row: &Row) -> Result<Vec<u8>> {
        let encoded = encode_row_to_vec(&self.schema, row)?;
        let mut data = Vec::with_capacity(encoded.len() + ROW_ID_SIZE);
        if let Some(id) = row_id {
            data.extend_from_slice(&id.to_le_bytes());
        }
        data.extend_from_slice(&encoded);
        if data.len() > self.row_size_max + row_id.map_or(0, |_| ROW_ID_SIZE) {
            return Err(Error::RowTooLarge {
                size: encoded.len(),
                max: self.row_size_max,
            });
        }
        Ok(data)
    }

    /// Checks the unique keys of `row` (primary key `pk`) against live rows other than the
    /// one with primary key `except`.
    fn check_unique(&self, pk: &[Value], row: &Row, except: Option<&[Value]>) -> Result<()> {
        if except.is_none() && self.schema.has_primary_key() && self.find_by_pk(pk)?.is_some() {
            return Err(Error::DuplicateKey {
                table: self.schema.name.clone(),
                index: storelab_table::schema::PRIMARY_INDEX_NAME.to_string(),
            });
        }
        for (i, def) in self.schema.indexes.iter().enumerate() {
            if !def.unique {
                continue;
            }
            let key = self.schema.index_key_of(def, row);
            for found in self.find_exact(i + 1, &key)? {
                let other = self.pk_of_found(&found)?;
                if except != Some(other.as_slice()) {
                    return Err(Error::DuplicateKey {
                        table: self.schema.name.clone(),
                        index: def.name.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    fn pk_of_found(&self, found: &Found) -> Result<Vec<Value>> {
        if self.schema.has_primary_key() {
            Ok(self.schema.primary_key_of(&found.row))
        } else {
            let (_, data) = self
                .fetch(found.live)?
                .ok_or_else(|| self.corrupt(found.live, "row vanished under the lock"))?;
            Ok(self.split_tuple(&data, found.live)?.0)
        }
    }

    /// Inserts a validated row (unique keys checked); `row_id` for tables without a key.
    /// `data` is `tuple_data(row_id, row)`, encoded once by the caller's validation.
    fn insert_row(&self, row: &Row, row_id: Option<u64>, data: Vec<u8>) -> Result<()> {
        let pk = match row_id {
            Some(id) => vec![Value::Int(id as i64)],
            None => self.schema.primary_key_of(row),
        };
        let tid = {
            let (mut guard, fresh) = self.page_for_insert(data.len(), None)?;
            let page_size = self.pool.page_size();
            let slot = HeapPageMut::new(&mut guard, page_size)
                .insert(&data, TupleFlags::NONE)
                .expect("page_for_insert found room");
            let op = PageOp::Insert {
                slot,
                flags: TupleFlags::NONE,
                row: &data,
            };
            self.log_page(&mut guard, &[op], fresh)?;
            self.fsm.update(
                guard.page_id().0,
                HeapPageRef::new(&guard, page_size).free_space(),
            );
            Tid::new(guard.page_id(), slot)
        };
        let keys = self.all_keys(&pk, row);
        for (i, values) in keys.iter().enumerate() {
            self.tree(i)
                .insert_no_commit(&Self::entry_key(values, tid), &[])?;
        }
        self.counters.inserts.fetch_add(1, Ordering::Relaxed);
        self.counters
            .index_entries_inserted
            .fetch_add(keys.len() as u64, Ordering::Relaxed);
        self.live_rows.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Replaces the live version `found` (primary key `pk`) by `new_row`: HOT if no indexed
    /// column changed and it fits on the page, else a new tuple and an entry in every index.
    /// `data` is the new version's `tuple_data`, encoded once by the caller's validation.
    fn update_row(&self, pk: &[Value], found: &Found, new_row: &Row, data: Vec<u8>) -> Result<()> {
        let old_keys = self.all_keys(pk, &found.row);
        let new_keys = self.all_keys(pk, new_row);
        let indexed_changed = old_keys != new_keys;
        let page_size = self.pool.page_size();
        let old = found.live;
        let mut old_guard = self.pool.write(self.heap, old.page_id)?;
        if !indexed_changed && self.options.hot {
            let mut fits = HeapPageRef::new(&old_guard, page_size).fits(data.len());
            if !fits && self.prune_page(&mut old_guard)? {
                fits = HeapPageRef::new(&old_guard, page_size).fits(data.len());
            }
            if fits {
                let mut page = HeapPageMut::new(&mut old_guard, page_size);
                let slot = page
                    .insert(&data, TupleFlags::HEAP_ONLY)
                    .expect("fits was checked");
                let next = Tid::new(old.page_id, slot);
                page.set_updated(old.slot, next, true);
                let ops = [
                    PageOp::Insert {
                        slot,
                        flags: TupleFlags::HEAP_ONLY,
                        row: &data,
                    },
                    PageOp::SetUpdated {
                        slot: old.slot,
                        next,
                        hot: true,
                    },
                ];
                self.log_page(&mut old_guard, &ops, false)?;
                self.fsm.update(
                    old.page_id.0,
                    HeapPageRef::new(&old_guard, page_size).free_space(),
                );
                self.counters.hot_updates.fetch_add(1, Ordering::Relaxed);
                self.dead_tuples.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        // Non-HOT: the new version on this page if it fits (its index entries are new all
        // the same), else wherever the FSM says.
        let new_tid = if HeapPageRef::new(&old_guard, page_size).fits(data.len()) {
            let mut page = HeapPageMut::new(&mut old_guard, page_size);
            let slot = page.insert(&data, TupleFlags::NONE).expect("fits");
            let next = Tid::new(old.page_id, slot);
            page.set_updated(old.slot, next, false);
            let ops = [
                PageOp::Insert {
                    slot,
                    flags: TupleFlags::NONE,
                    row: &data,
                },
                PageOp::SetUpdated {
                    slot: old.slot,
                    next,
                    hot: false,
                },
            ];
            self.log_page(&mut old_guard, &ops, false)?;
            next
        } else {
            let (mut new_guard, fresh) = self.page_for_insert(data.len(), Some(old.page_id))?;
            let slot = HeapPageMut::new(&mut new_guard, page_size)
                .insert(&data, TupleFlags::NONE)
                .expect("page_for_insert found room");
            let next = Tid::new(new_guard.page_id(), slot);
            HeapPageMut::new(&mut old_guard, page_size).set_updated(old.slot, next, false);
            let insert = PageOp::Insert {
                slot,
                flags: TupleFlags::NONE,
                row: &data,
            };
            let set = PageOp::SetUpdated {
                slot: old.slot,
                next,
                hot: false,
            };
            if fresh {
                self.log_page(&mut new_guard, &[], true)?;
                self.log_page(&mut old_guard, &[set], false)?;
            } else {
                self.log_two(&mut new_guard, &[insert], &mut old_guard, &[set])?;
            }
            self.fsm.update(
                next.page_id.0,
                HeapPageRef::new(&new_guard, page_size).free_space(),
            );
            next
        };
        self.fsm.update(
            old.page_id.0,
            HeapPageRef::new(&old_guard, page_size).free_space(),
        );
        drop(old_guard);
        for (i, values) in new_keys.iter().enumerate() {
            self.tree(i)
                .insert_no_commit(&Self::entry_key(values, new_tid), &[])?;
        }
        self.counters
            .non_hot_updates
            .fetch_add(1, Ordering::Relaxed);
        self.counters
            .index_entries_inserted
            .fetch_add(new_keys.len() as u64, Ordering::Relaxed);
        self.dead_tuples.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn delete_row(&self, found: &Found) -> Result<()> {
        let mut guard = self.pool.write(self.heap, found.live.page_id)?;
        HeapPageMut::new(&mut guard, self.pool.page_size()).set_deleted(found.live.slot);
        self.log_page(
            &mut guard,
            &[PageOp::SetDeleted {
                slot: found.live.slot,
            }],
            false,
        )?;
        self.counters.deletes.fetch_add(1, Ordering::Relaxed);
        self.live_rows.fetch_sub(1, Ordering::Relaxed);
        self.dead_tuples.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Validates and applies one op; returns its outcome and the op that undoes it.
    fn apply_one(&self, op: &Op) -> Result<(bool, Option<Undo>)> {
        match op {
            Op::Insert(row) => {
                self.schema.validate_row(row)?;
                let row_id = (!self.schema.has_primary_key())
                    .then(|| self.next_row_id.fetch_add(1, Ordering::Relaxed));
                let pk = match row_id {
                    Some(id) => vec![Value::Int(id as i64)],
                    None => self.schema.primary_key_of(row),
                };
                let result = self.tuple_data(row_id, row).and_then(|data| {
                    self.check_key_sizes(&self.all_keys(&pk, row))?;
                    self.check_unique(&pk, row, None)?;
                    Ok(data)
                });
                let data = match result {
                    Ok(data) => data,
                    Err(e) => {
                        if let Some(id) = row_id {
                            // Give the id back: a failed op uses none up.
                            let _ = self.next_row_id.compare_exchange(
                                id + 1,
                                id,
                                Ordering::Relaxed,
                                Ordering::Relaxed,
                            );
                        }
                        return Err(e);
                    }
                };
                self.insert_row(row, row_id, data)?;
                Ok((true, Some(Undo::Delete(pk))))
            }
            Op::Update { key, changes } => {
                self.schema.validate_key(key)?;
                self.schema.validate_changes(changes)?;
                let Some(found) = self.find_by_pk(key)? else {
                    return Ok((false, None));
                };
                let mut new_row = found.row.clone();
                self.schema.apply_changes(&mut new_row, changes);
                let data = self.tuple_data(self.row_id_of_key(key), &new_row)?;
                self.check_key_sizes(&self.all_keys(key, &new_row))?;
                self.check_unique(key, &new_row, Some(key))?;
                self.update_row(key, &found, &new_row, data)?;
                let restore = changes
                    .iter()
                    .map(|(c, _)| (*c, found.row[*c].clone()))
                    .collect();
                Ok((true, Some(Undo::Update(key.clone(), restore))))
            }
            Op::Delete { key } => {
                self.schema.validate_key(key)?;
                let Some(found) = self.find_by_pk(key)? else {
                    return Ok((false, None));
                };
                self.delete_row(&found)?;
                Ok((true, Some(Undo::Insert(key.clone(), found.row))))
            }
        }
    }

    /// Undoes one op of a failed batch (inside the batch's atomic group).
    fn undo(&self, undo: Undo) -> Result<()> {
        match undo {
            Undo::Delete(pk) => {
                let found = self
                    .find_by_pk(&pk)?
                    .expect("a row inserted by this batch is there");
                self.delete_row(&found)
            }
            Undo::Update(pk, restore) => {
                let found = self.find_by_pk(&pk)?.expect("an updated row is there");
                let mut row = found.row.clone();
                self.schema.apply_changes(&mut row, &restore);
                let data = self.tuple_data(self.row_id_of_key(&pk), &row)?;
                self.update_row(&pk, &found, &row, data)
            }
            Undo::Insert(pk, row) => {
                let row_id = self.row_id_of_key(&pk);
                let data = self.tuple_data(row_id, &row)?;
                self.insert_row(&row, row_id, data)
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Bulk load

    /// Loads `rows` into this empty table the fast way: heap pages filled in order to the
    /// fillfactor, then each index built bottom-up from its sorted entries (PostgreSQL's
    /// `COPY` into a new table followed by `CREATE INDEX`). Every input row is validated and
    /// every unique key checked before anything is written, so a bad row changes nothing.
    ///
    /// Not atomic by itself: the catalog marks the table `loading` while pages are written,
    /// and a table found still marked at open is emptied (see `HeapEngine::open`), so after a
    /// crash the load has happened entirely or not at all. The rows are held in memory.
    fn bulk_load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        let page_size = self.pool.page_size();
        let hidden = !self.schema.has_primary_key();
        let reserve = self.reserve();
        // Pass 1, in memory: pages, TIDs and every index's entries.
        let mut pages: Vec<Vec<u8>> = Vec::new();
        let mut entries: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 1 + self.secondaries.len()];
        let first_row_id = self.next_row_id.load(Ordering::Relaxed);
        let mut count = 0u64;
        for row in rows {
            self.schema.validate_row(&row)?;
            let row_id = hidden.then_some(first_row_id + count);
            let data = self.tuple_data(row_id, &row)?;
            let needed = heap_page::TUPLE_HEADER_SIZE + data.len() + reserve;
            // A new page when the last one cannot take the row and keep the fillfactor's
            // reserve (an empty page takes any row).
            let new_page = match pages.last() {
                None => true,
                Some(p) => {
                    let page = HeapPageRef::new(p, page_size);
                    page.slot_count() > 0 && page.free_space() < needed
                }
            };
            if new_page {
                let mut buf = vec![0u8; page_size];
                storelab_pager::page::init_page(&mut buf, PageId(pages.len() as u64), HEAP_PAGE);
                HeapPageMut::new(&mut buf, page_size).init();
                pages.push(buf);
            }
            let page_no = pages.len() as u64 - 1;
            let page = pages.last_mut().expect("a page");
            let slot = HeapPageMut::new(page, page_size)
                .insert(&data, TupleFlags::NONE)
                .expect("an empty page takes any valid row");
            let tid = Tid::new(PageId(page_no), slot);
            let pk = match row_id {
                Some(id) => vec![Value::Int(id as i64)],
                None => self.schema.primary_key_of(&row),
            };
            let keys = self.all_keys(&pk, &row);
            self.check_key_sizes(&keys)?;
            for (i, values) in keys.iter().enumerate() {
                entries[i].push(Self::entry_key(values, tid));
            }
            count += 1;
        }
        // Unique keys: equal key prefixes are adjacent once sorted.
        for (i, list) in entries.iter_mut().enumerate() {
            list.sort_unstable();
            let unique = if i == 0 {
                !hidden
            } else {
                self.schema.indexes[i - 1].unique
            };
            if !unique {
                continue;
            }
            for pair in list.windows(2) {
                let key = |k: &Vec<u8>| k[..k.len() - TID_ENCODED_SIZE].to_vec();
                if key(&pair[0]) == key(&pair[1]) {
                    return Err(Error::DuplicateKey {
                        table: self.schema.name.clone(),
                        index: if i == 0 {
                            storelab_table::schema::PRIMARY_INDEX_NAME.to_string()
                        } else {
                            self.schema.indexes[i - 1].name.clone()
                        },
                    });
                }
            }
        }
        if count == 0 {
            return Ok(0);
        }
        // Pass 2: write. The catalog says "loading" until everything is durable.
        let mut meta = self.meta()?;
        meta.loading = true;
        self.set_meta(meta)?;
        for (i, bytes) in pages.iter().enumerate() {
            let mut guard = self.pool.new_page(self.heap, HEAP_PAGE)?;
            assert_eq!(
                guard.page_id(),
                PageId(i as u64),
                "an empty heap grows from page 0"
            );
            guard.copy_from_slice(bytes);
            self.log_image(&mut guard)?;
            self.fsm
                .update(i as u64, HeapPageRef::new(&guard, page_size).free_space());
        }
        drop(pages);
        for (i, list) in entries.into_iter().enumerate() {
            self.tree(i)
                .bulk_load(list.into_iter().map(|k| (k, Vec::new())))?;
        }
        self.wal.checkpoint(&self.pool)?;
        meta.loading = false;
        self.set_meta(meta)?;
        if hidden {
            self.next_row_id
                .store(first_row_id + count, Ordering::Relaxed);
        }
        self.live_rows.fetch_add(count, Ordering::Relaxed);
        self.counters
            .rows_bulk_loaded
            .fetch_add(count, Ordering::Relaxed);
        let pages = self.page_count()?;
        *self.target_page.lock() = pages.checked_sub(1);
        Ok(count)
    }

    // ---------------------------------------------------------------------------------------
    // VACUUM

    /// VACUUM: prune every page, remove the index entries of dead line pointers from every
    /// index, then make those line pointers unused and record each page's free space.
    pub fn vacuum(&self) -> Result<VacuumReport> {
        let _w = self.lock.write();
        self.vacuum_locked()
    }

    fn vacuum_locked(&self) -> Result<VacuumReport> {
        // Exact while VACUUM is the only thing doing I/O (it holds this table's lock; other
        // tables' writers or a concurrent checkpoint would be counted too).
        let io_before = self.pool.disk().ledger().snapshot().total();
        let lsn_before = self.wal.insert_lsn();
        let mut report = VacuumReport::default();
        let page_size = self.pool.page_size();
        let pages = self.page_count()?;
        let mut dead: HashSet<Tid> = HashSet::new();
        // Pass 1: prune, collect dead line pointers.
        for p in 0..pages {
            let mut guard = self.pool.write(self.heap, PageId(p))?;
            if !is_heap_page(&guard) {
                continue;
            }
            if self.prune_page(&mut guard)? {
                report.pages_pruned += 1;
            }
            let page = HeapPageRef::new(&guard, page_size);
            for s in 0..page.slot_count() {
                let slot = SlotId(s as u16);
                if page.line_pointer(slot) == Some(LinePointer::Dead) {
                    dead.insert(Tid::new(PageId(p), slot));
                }
            }
            self.fsm.update(p, page.free_space());
            report.pages_scanned += 1;
        }
        // Pass 2: bulk-delete their index entries (PostgreSQL's ambulkdelete: a full scan of
        // each index).
        if !dead.is_empty() {
            for i in 0..=self.secondaries.len() {
                let tree = self.tree(i);
                let mut doomed = Vec::new();
                for entry in tree.range(Bound::Unbounded, Bound::Unbounded) {
                    let (key, _) = entry?;
                    if dead.contains(&self.entry_tid(&key)?) {
                        doomed.push(key);
                    }
                }
                if i == 0 && !self.schema.has_primary_key() && !doomed.is_empty() {
                    // The ids about to leave the index must stay used: record them first.
                    let mut removed_max = 0;
                    for key in &doomed {
                        removed_max = removed_max.max(self.row_id_of_entry(key)?);
                    }
                    let mut meta = self.meta()?;
                    if removed_max + 1 > meta.row_id_floor {
                        meta.row_id_floor = removed_max + 1;
                        self.set_meta(meta)?;
                    }
                }
                for key in doomed {
                    tree.delete_no_commit(&key)?;
                    report.index_entries_removed += 1;
                }
            }
            // Pass 3: the line pointers are now unreferenced.
            let mut by_page: BTreeMap<PageId, Vec<SlotId>> = BTreeMap::new();
            for tid in &dead {
                by_page.entry(tid.page_id).or_default().push(tid.slot);
            }
            for (page_id, mut slots) in by_page {
                slots.sort();
                let mut guard = self.pool.write(self.heap, page_id)?;
                {
                    let mut page = HeapPageMut::new(&mut guard, page_size);
                    for &slot in slots.iter().rev() {
                        page.set_unused(slot);
                    }
                }
                self.log_image(&mut guard)?;
                self.fsm
                    .update(page_id.0, HeapPageRef::new(&guard, page_size).free_space());
                report.dead_line_pointers_freed += slots.len() as u64;
            }
        }
        self.wal.commit(self.wal.insert_lsn())?;
        self.dead_tuples.store(0, Ordering::Relaxed);
        let c = &self.counters;
        c.vacuum_runs.fetch_add(1, Ordering::Relaxed);
        c.vacuum_pages_scanned
            .fetch_add(report.pages_scanned, Ordering::Relaxed);
        c.vacuum_dead_line_pointers_freed
            .fetch_add(report.dead_line_pointers_freed, Ordering::Relaxed);
        c.vacuum_index_entries_removed
            .fetch_add(report.index_entries_removed, Ordering::Relaxed);
        let io = self.pool.disk().ledger().snapshot().total();
        for (counter, after, before) in [
            (&c.vacuum_io_read_count, io.read_count, io_before.read_count),
            (&c.vacuum_io_read_bytes, io.read_bytes, io_before.read_bytes),
            (
                &c.vacuum_io_write_count,
                io.write_count,
                io_before.write_count,
            ),
            (
                &c.vacuum_io_write_bytes,
                io.write_bytes,
                io_before.write_bytes,
            ),
        ] {
            counter.fetch_add(after.saturating_sub(before), Ordering::Relaxed);
        }
        c.vacuum_log_bytes_appended.fetch_add(
            self.wal.insert_lsn().0.saturating_sub(lsn_before.0),
            Ordering::Relaxed,
        );
        Ok(report)
    }

    /// True if dead tuples passed autovacuum's trigger, `threshold + scale_factor * rows`.
    pub fn autovacuum_due(&self) -> bool {
        let dead = self.dead_tuples.load(Ordering::Relaxed) as f64;
        let live = self.live_rows.load(Ordering::Relaxed) as f64;
        let trigger =
            self.options.autovacuum_threshold as f64 + self.options.autovacuum_scale_factor * live;
        self.options.autovacuum && dead > trigger
    }

    /// Runs VACUUM now if autovacuum is due (counted as an autovacuum run).
    pub fn autovacuum_now(&self) -> Result<bool> {
        if !self.autovacuum_due() {
            return Ok(false);
        }
        self.counters
            .autovacuum_runs
            .fetch_add(1, Ordering::Relaxed);
        self.vacuum()?;
        Ok(true)
    }

    /// Inline autovacuum after a write (the background worker does it otherwise).
    fn autovacuum(&self) -> Result<()> {
        if !self.options.autovacuum_background {
            self.autovacuum_now()?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Scans

    fn emit(
        &self,
        row: Row,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: &mut Visitor<'_>,
        count: &mut u64,
    ) -> bool {
        if predicate.is_some_and(|p| !p(&row)) {
            return true;
        }
        *count += 1;
        let out = match &spec.projection {
            Some(cols) => self.schema.project(&row, cols),
            None => row,
        };
        let more = visit(out);
        more && spec.limit.is_none_or(|l| (*count as usize) < l)
    }

    fn depth(&self, spec: &ScanSpec) -> usize {
        spec.prefetch_depth
            .unwrap_or(self.options.prefetch_depth)
            .max(1)
    }

    /// Sequential scan: every page in order through a read stream, live tuples only.
    fn seq_scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: &mut Visitor<'_>,
    ) -> Result<u64> {
        let pages = self.page_count()?;
        let config = ReadStreamConfig {
            depth: self.depth(spec),
            ..ReadStreamConfig::default()
        };
        let mut stream = ReadStream::new(&self.pool, self.heap, (0..pages).map(PageId), config);
        let mut count = 0;
        while let Some(guard) = stream.next() {
            let guard = guard?;
            let rows = self.live_rows_of(&guard)?;
            drop(guard);
            for row in rows {
                if !self.emit(row, spec, predicate, visit, &mut count) {
                    return Ok(count);
                }
            }
        }
        Ok(count)
    }

    fn live_rows_of(&self, guard: &[u8]) -> Result<Vec<Row>> {
        if !is_heap_page(guard) {
            return Ok(Vec::new());
        }
        let page = HeapPageRef::new(guard, self.pool.page_size());
        let mut rows = Vec::new();
        for (slot, t) in page.tuples() {
            if t.is_live() {
                rows.push(self.split_tuple(t.row, Tid::new(page.page_id(), slot))?.1);
            }
        }
        Ok(rows)
    }

    /// Index scan: one heap fetch per entry, in index order.
    fn index_scan(
        &self,
        i: usize,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: &mut Visitor<'_>,
    ) -> Result<u64> {
        self.counters.index_scans.fetch_add(1, Ordering::Relaxed);
        let tree = self.tree(i);
        // An entry is `key ++ tid`: `Included(k)` below and `Excluded(successor(k))` above take
        // every entry of `k`, `Excluded(k)` above none, as the key bounds mean.
        let (lo, hi) = range;
        let cursor = if spec.reverse {
            tree.range_rev(as_ref(&lo), as_ref(&hi))
        } else {
            tree.range(as_ref(&lo), as_ref(&hi))
        };
        let mut count = 0;
        for entry in cursor {
            let (key, _) = entry?;
            let tid = self.entry_tid(&key)?;
            let Some((live, data)) = self.fetch(tid)? else {
                continue;
            };
            let (pk, row) = self.split_tuple(&data, live)?;
            if !self.entry_matches(i, &key, &pk, &row) {
                continue;
            }
            if !self.emit(row, spec, predicate, visit, &mut count) {
                break;
            }
        }
        Ok(count)
    }

    /// True if the live version's key in index `i` is the one the entry was made for.
    fn entry_matches(&self, i: usize, key: &[u8], pk: &[Value], row: &Row) -> bool {
        let values = if i == 0 {
            pk.to_vec()
        } else {
            self.schema.index_key_of(&self.schema.indexes[i - 1], row)
        };
        let mut enc = Vec::new();
        encode_key(&values, &mut enc);
        key.len() == enc.len() + TID_ENCODED_SIZE && key.starts_with(&enc)
    }

    /// Bitmap-style scan: all matching TIDs first, sorted by page, then each page read once
    /// through a read stream (prefetch), rows in physical order.
    fn bitmap_scan(
        &self,
        i: usize,
        range: (Bound<Vec<u8>>, Bound<Vec<u8>>),
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: &mut Visitor<'_>,
    ) -> Result<u64> {
        self.counters.index_scans.fetch_add(1, Ordering::Relaxed);
        // An entry is `key ++ tid`: `Included(k)` below and `Excluded(successor(k))` above take
        // every entry of `k`, `Excluded(k)` above none, as the key bounds mean.
        let (lo, hi) = range;
        let mut bitmap: BTreeMap<PageId, Vec<(SlotId, Vec<u8>)>> = BTreeMap::new();
        for entry in self.tree(i).range(as_ref(&lo), as_ref(&hi)) {
            let (key, _) = entry?;
            let tid = self.entry_tid(&key)?;
            bitmap.entry(tid.page_id).or_default().push((tid.slot, key));
        }
        let pages: Vec<PageId> = bitmap.keys().copied().collect();
        let page_count = self.page_count()?;
        if pages.last().is_some_and(|p| p.0 >= page_count) {
            return Err(self.corrupt("index", "entry points past the end of the heap"));
        }
        let config = ReadStreamConfig {
            depth: self.depth(spec),
            ..ReadStreamConfig::default()
        };
        let mut stream = ReadStream::new(&self.pool, self.heap, pages.into_iter(), config);
        let mut count = 0;
        while let Some(guard) = stream.next() {
            let guard = guard?;
            self.counters
                .heap_pages_fetched
                .fetch_add(1, Ordering::Relaxed);
            let page_id = guard.page_id();
            if !is_heap_page(&guard) {
                return Err(self.corrupt(page_id, "index entry points at a page never written"));
            }
            let mut rows = Vec::new();
            {
                let page = HeapPageRef::new(&guard, self.pool.page_size());
                let mut entries = bitmap.remove(&page_id).unwrap_or_default();
                entries.sort();
                for (slot, key) in entries {
                    let Some(live) = page.hot_search(slot) else {
                        continue;
                    };
                    let t = page.tuple(live).expect("hot_search returns a tuple");
                    let (pk, row) = self.split_tuple(t.row, Tid::new(page_id, live))?;
                    if self.entry_matches(i, &key, &pk, &row) {
                        rows.push(row);
                    }
                }
            }
            drop(guard);
            for row in rows {
                if !self.emit(row, spec, predicate, visit, &mut count) {
                    return Ok(count);
                }
            }
        }
        Ok(count)
    }

    // ---------------------------------------------------------------------------------------
    // check

    fn check_locked(&self) -> Result<()> {
        let page_size = self.pool.page_size();
        self.primary.check()?;
        for t in &self.secondaries {
            t.check()?;
        }
        // Every index entry's TID is a used line pointer; remember which chains each index
        // reaches.
        let pages = self.page_count()?;
        let mut reached: Vec<HashMap<Tid, Vec<u8>>> = Vec::new();
        for i in 0..=self.secondaries.len() {
            let mut map = HashMap::new();
            for entry in self.tree(i).range(Bound::Unbounded, Bound::Unbounded) {
                let (key, _) = entry?;
                let tid = self.entry_tid(&key)?;
                if tid.page_id.0 >= pages {
                    return Err(self.corrupt(tid, "index entry past the end of the heap"));
                }
                let guard = self.pool.read(self.heap, tid.page_id)?;
                let page = HeapPageRef::new(&guard, page_size);
                match page.line_pointer(tid.slot) {
                    None | Some(LinePointer::Unused) => {
                        return Err(self.corrupt(tid, format!("index {i} entry to an unused slot")));
                    }
                    _ => {}
                }
                if page.hot_search(tid.slot).is_some()
                    && map
                        .insert(tid, key[..key.len() - TID_ENCODED_SIZE].to_vec())
                        .is_some()
                {
                    return Err(self.corrupt(tid, format!("index {i} has two entries for it")));
                }
            }
            reached.push(map);
        }
        // Every live tuple is reached by exactly one entry of every index, with its key.
        let mut live_count = 0u64;
        for p in 0..pages {
            let guard = self.pool.read(self.heap, PageId(p))?;
            if !is_heap_page(&guard) {
                continue;
            }
            let page = HeapPageRef::new(&guard, page_size);
            page.validate()
                .and_then(|()| page.check_chains())
                .map_err(|e| self.corrupt(format!("page {p}"), e.to_string()))?;
            for s in 0..page.slot_count() {
                let root = SlotId(s as u16);
                let is_root = match page.line_pointer(root) {
                    Some(LinePointer::Redirect(_)) => true,
                    Some(LinePointer::Normal { .. }) => page
                        .tuple(root)
                        .is_some_and(|t| !t.flags.contains(TupleFlags::HEAP_ONLY)),
                    _ => false,
                };
                if !is_root {
                    continue;
                }
                let Some(live) = page.hot_search(root) else {
                    continue;
                };
                live_count += 1;
                let tid = Tid::new(PageId(p), root);
                let t = page.tuple(live).expect("live tuple");
                let (pk, row) = self.split_tuple(t.row, Tid::new(PageId(p), live))?;
                for (i, values) in self.all_keys(&pk, &row).iter().enumerate() {
                    let mut enc = Vec::new();
                    encode_key(values, &mut enc);
                    match reached[i].get(&tid) {
                        Some(k) if *k == enc => {}
                        Some(_) => {
                            return Err(
                                self.corrupt(tid, format!("index {i} entry has another key"))
                            );
                        }
                        None => {
                            return Err(
                                self.corrupt(tid, format!("live row missing from index {i}"))
                            );
                        }
                    }
                }
            }
        }
        for (i, map) in reached.iter().enumerate() {
            if map.len() as u64 != live_count {
                return Err(self.corrupt(
                    "indexes",
                    format!(
                        "index {i} reaches {} live rows, the heap has {live_count}",
                        map.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// How to take back one applied op of a failed batch.
enum Undo {
    /// Delete the row inserted with this key.
    Delete(Vec<Value>),
    /// Set these columns back.
    Update(Vec<Value>, Vec<(usize, Value)>),
    /// Insert the deleted row again.
    Insert(Vec<Value>, Row),
}

/// What one VACUUM did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Heap pages visited.
    pub pages_scanned: u64,
    /// Pages pruned.
    pub pages_pruned: u64,
    /// Index entries removed.
    pub index_entries_removed: u64,
    /// Dead line pointers made unused.
    pub dead_line_pointers_freed: u64,
}

/// True for an initialised heap page (not a never-written one).
fn is_heap_page(bytes: &[u8]) -> bool {
    PageHeader::read(bytes).page_type == HEAP_PAGE
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Table for HeapTable {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let (end, outcome) = {
            let _w = self.lock.write();
            let group = self.wal.atomic_group()?;
            let first_row_id = self.next_row_id.load(Ordering::Relaxed);
            let mut outcome = Vec::with_capacity(ops.len());
            let mut undos = Vec::new();
            let mut failure = None;
            for op in ops {
                match self.apply_one(op) {
                    Ok((done, undo)) => {
                        outcome.push(done);
                        undos.extend(undo);
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            if let Some(e) = failure {
                // Take back what the batch did, inside the same group: the log then holds
                // the batch and its reversal together, or neither.
                for undo in undos.into_iter().rev() {
                    self.undo(undo)?;
                }
                // And the hidden row ids it took (writers are serialised by the lock).
                self.next_row_id.store(first_row_id, Ordering::Relaxed);
                let end = group.end()?;
                self.wal.commit(end)?;
                return Err(e);
            }
            (group.end()?, outcome)
        };
        self.wal.commit(end)?;
        self.wal.checkpoint_if_due(&self.pool)?;
        self.autovacuum()?;
        Ok(outcome)
    }

    fn load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        {
            let _w = self.lock.write();
            if self.page_count()? == 0 {
                return self.bulk_load(rows);
            }
        }
        load_in_batches(self, rows)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.schema.validate_key(key)?;
        let _r = self.lock.read_recursive();
        Ok(self.find_by_pk(key)?.map(|f| f.row))
    }

    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        mut visit: Visitor<'_>,
    ) -> Result<u64> {
        let index = spec.validate(&self.schema)?;
        if spec.limit == Some(0) {
            return Ok(0);
        }
        let _r = self.lock.read_recursive();
        let full = spec.index.is_none()
            && matches!(spec.lower, Bound::Unbounded)
            && matches!(spec.upper, Bound::Unbounded)
            && !spec.reverse;
        if full {
            return self.seq_scan(spec, predicate, &mut visit);
        }
        let Some(range) = key_range(&spec.lower, &spec.upper) else {
            return Ok(0);
        };
        let i = match index {
            None => 0,
            Some(def) => {
                1 + self
                    .schema
                    .indexes
                    .iter()
                    .position(|d: &IndexDef| d.name == def.name)
                    .expect("validated")
            }
        };
        match spec.method {
            IndexScanMethod::Bitmap if i > 0 => {
                self.bitmap_scan(i, range, spec, predicate, &mut visit)
            }
            _ => self.index_scan(i, range, spec, predicate, &mut visit),
        }
    }

    fn stats(&self) -> Result<TableStats> {
        let disk = self.pool.disk();
        let mut file_bytes = BTreeMap::new();
        file_bytes.insert("heap".to_string(), disk.file_len(self.heap)?);
        file_bytes.insert("primary".to_string(), disk.file_len(self.primary.file())?);
        for (def, tree) in self.schema.indexes.iter().zip(&self.secondaries) {
            file_bytes.insert(format!("index_{}", def.name), disk.file_len(tree.file())?);
        }
        let c = &self.counters;
        let mut counters = BTreeMap::new();
        for (name, v) in [
            ("inserts", &c.inserts),
            ("rows_bulk_loaded", &c.rows_bulk_loaded),
            ("hot_updates", &c.hot_updates),
            ("non_hot_updates", &c.non_hot_updates),
            ("deletes", &c.deletes),
            ("index_entries_inserted", &c.index_entries_inserted),
            ("pages_pruned", &c.pages_pruned),
            ("tuples_pruned", &c.tuples_pruned),
            ("vacuum_runs", &c.vacuum_runs),
            ("autovacuum_runs", &c.autovacuum_runs),
            ("vacuum_pages_scanned", &c.vacuum_pages_scanned),
            (
                "vacuum_dead_line_pointers_freed",
                &c.vacuum_dead_line_pointers_freed,
            ),
            (
                "vacuum_index_entries_removed",
                &c.vacuum_index_entries_removed,
            ),
            ("vacuum_io_read_count", &c.vacuum_io_read_count),
            ("vacuum_io_read_bytes", &c.vacuum_io_read_bytes),
            ("vacuum_io_write_count", &c.vacuum_io_write_count),
            ("vacuum_io_write_bytes", &c.vacuum_io_write_bytes),
            ("vacuum_log_bytes_appended", &c.vacuum_log_bytes_appended),
            ("heap_pages_fetched", &c.heap_pages_fetched),
            ("index_scans", &c.index_scans),
            ("dead_tuples", &self.dead_tuples),
        ] {
            counters.insert(name.to_string(), v.load(Ordering::Relaxed));
        }
        counters.insert("heap_pages".to_string(), self.page_count()?);
        Ok(TableStats {
            row_count: self.live_rows.load(Ordering::Relaxed),
            file_bytes,
            counters,
        })
    }

    fn check(&self) -> Result<()> {
        let _w = self.lock.write();
        self.check_locked()
    }

    fn maintain(&self) -> Result<()> {
        self.vacuum().map(|_| ())
    }
}
