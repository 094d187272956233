//! [`PeerEngine`] and [`PeerTable`]: the `Engine`/`Table` semantics, written once on top of
//! any [`Store`].
//!
//! Everything the contract asks that a peer does not do itself happens here, as in the
//! reference engine: validation and typed errors, duplicate primary and unique keys, key and
//! row size limits, hidden row ids, batch outcomes, limits, predicates and projections. A
//! batch runs in one peer transaction ([`Store::write`]) and an error anywhere drops the
//! transaction, so a failed batch changes nothing in the peer; the table's row count and next
//! row id change only after a commit.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Mutex, RwLock};
use storelab_table::codec::{decode_row, encode_row_to_vec, encoded_row_size};
use storelab_table::engine::{BatchOutcome, Op, Predicate, ScanSpec, TableStats, Visitor};
use storelab_table::key::{encode_key_to_vec, key_range};
use storelab_table::reference::ROW_ID_FIRST;
use storelab_table::schema::PRIMARY_INDEX_NAME;
use storelab_table::{Catalog, Engine, EngineStats, Error, Result, Row, Schema, Table, Value};

use crate::kind::PeerKind;
use crate::proc_io::ProcIo;
use crate::store::{Layout, Source, Store, WriteTxn};

/// The largest encoded row a peer table accepts (64 KiB: every peer stores it in one value;
/// SQLite and redb would take much more, fjall up to 4 GiB).
pub const ROW_SIZE_MAX: usize = 64 * 1024;
/// The largest encoded primary key, and the largest secondary index entry (index key plus
/// primary key). fjall refuses keys over 64 KiB; this leaves room below it.
pub const KEY_SIZE_MAX: usize = 16 * 1024;

/// A peer database directory behind the `Engine` trait; see the module doc.
pub struct PeerEngine {
    kind: PeerKind,
    store: Arc<dyn Store>,
    catalog: Mutex<Catalog>,
    tables: RwLock<BTreeMap<String, Arc<PeerTable>>>,
    /// `/proc/self/io` when the engine was opened.
    opened_io: Option<ProcIo>,
}

impl std::fmt::Debug for PeerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerEngine")
            .field("kind", &self.kind)
            .field("dir", &self.store.dir())
            .finish_non_exhaustive()
    }
}

impl PeerEngine {
    /// Wraps an opened store; opens every table the catalog lists.
    pub(crate) fn new(kind: PeerKind, store: Arc<dyn Store>, catalog: Catalog) -> Result<Self> {
        let opened_io = ProcIo::now();
        let mut tables = BTreeMap::new();
        for entry in catalog.tables() {
            let table = PeerTable::open(entry.schema.clone(), Arc::clone(&store), opened_io)?;
            tables.insert(entry.schema.name.clone(), Arc::new(table));
        }
        Ok(PeerEngine {
            kind,
            store,
            catalog: Mutex::new(catalog),
            tables: RwLock::new(tables),
            opened_io,
        })
    }

    /// Which peer this is.
    pub fn kind(&self) -> PeerKind {
        self.kind
    }

    /// `/proc/self/io` counters since this engine was opened (labelled
    /// [`crate::PROC_IO_LABEL`]); `None` where the file cannot be read.
    pub fn proc_io_since_open(&self) -> Option<ProcIo> {
        Some(ProcIo::now()?.delta(self.opened_io.as_ref()?))
    }
}

impl Engine for PeerEngine {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        schema.validate()?;
        let mut catalog = self.catalog.lock();
        let layout = Layout::of(&schema);
        let engine_data = serde_json::json!({
            "primary": layout.table,
            "indexes": layout.indexes,
        });
        // The catalog first: if the structures' creation fails or crashes, opening the table
        // creates them (`Store::create_table` is idempotent).
        catalog.add(schema.clone(), engine_data)?;
        let table = Arc::new(PeerTable::open(
            schema,
            Arc::clone(&self.store),
            self.opened_io,
        )?);
        self.tables
            .write()
            .insert(table.schema.name.clone(), Arc::clone(&table));
        Ok(table)
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        match self.tables.read().get(name) {
            Some(table) => Ok(Arc::clone(table) as Arc<dyn Table>),
            None => Err(Error::NoSuchTable {
                name: name.to_string(),
            }),
        }
    }

    fn table_names(&self) -> Vec<String> {
        self.tables.read().keys().cloned().collect()
    }

    fn checkpoint(&self) -> Result<()> {
        self.store.checkpoint()
    }

    fn stats(&self) -> Result<EngineStats> {
        // The ledger sees only storelab's pager; a peer's I/O is in `proc_io_since_open` and
        // in its tables' `proc_io_*` counters.
        Ok(EngineStats::default())
    }

    fn check(&self) -> Result<()> {
        self.store.check()?;
        let tables: Vec<_> = self.tables.read().values().cloned().collect();
        tables.iter().try_for_each(|t| t.check())
    }

    fn row_size_max(&self) -> usize {
        ROW_SIZE_MAX
    }
}

/// One table of a [`PeerEngine`].
pub struct PeerTable {
    schema: Schema,
    layout: Layout,
    store: Arc<dyn Store>,
    row_count: AtomicU64,
    /// The next hidden row id; the lock also serialises this table's batches, so that the
    /// checks of one batch see every earlier batch committed.
    next_row_id: Mutex<i64>,
    opened_io: Option<ProcIo>,
}

impl std::fmt::Debug for PeerTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTable")
            .field("table", &self.layout.table)
            .finish_non_exhaustive()
    }
}

/// What a batch changed, known only once it commits.
#[derive(Default)]
struct BatchEffect {
    outcome: BatchOutcome,
    row_delta: i64,
    next_row_id: i64,
}

impl PeerTable {
    fn open(schema: Schema, store: Arc<dyn Store>, opened_io: Option<ProcIo>) -> Result<Self> {
        let layout = Layout::of(&schema);
        store.create_table(&layout)?;
        let row_count = store.count_rows(&layout)?;
        let next_row_id = store.next_row_id(&layout)?.unwrap_or(ROW_ID_FIRST);
        Ok(PeerTable {
            schema,
            layout,
            store,
            row_count: AtomicU64::new(row_count),
            next_row_id: Mutex::new(next_row_id),
            opened_io,
        })
    }

    fn duplicate(&self, index: &str) -> Error {
        Error::DuplicateKey {
            table: self.schema.name.clone(),
            index: index.to_string(),
        }
    }

    fn check_row_size(&self, row: &Row) -> Result<()> {
        let size = encoded_row_size(row);
        if size > ROW_SIZE_MAX {
            return Err(Error::RowTooLarge {
                size,
                max: ROW_SIZE_MAX,
            });
        }
        Ok(())
    }

    fn check_key_size(size: usize) -> Result<()> {
        if size > KEY_SIZE_MAX {
            return Err(Error::KeyTooLarge {
                size,
                max: KEY_SIZE_MAX,
            });
        }
        Ok(())
    }

    /// Each secondary index's encoded key of `row`, checked against [`KEY_SIZE_MAX`] with the
    /// primary key appended.
    fn index_keys(&self, row: &Row, pk: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.schema
            .indexes
            .iter()
            .map(|index| {
                let key = encode_key_to_vec(&self.schema.index_key_of(index, row));
                Self::check_key_size(key.len() + pk.len())?;
                Ok(key)
            })
            .collect()
    }

    /// The first unique index (among those whose key differs from `unchanged`) in which a
    /// live row already has the key in `keys`.
    fn unique_conflict(
        &self,
        txn: &mut dyn WriteTxn,
        keys: &[Vec<u8>],
        unchanged: Option<&[Vec<u8>]>,
    ) -> Result<Option<&str>> {
        for (i, index) in self.schema.indexes.iter().enumerate() {
            if !index.unique || unchanged.is_some_and(|old| old[i] == keys[i]) {
                continue;
            }
            if txn.index_contains(i, &keys[i])? {
                return Ok(Some(&index.name));
            }
        }
        Ok(None)
    }

    fn decode(&self, bytes: &[u8]) -> Result<Row> {
        decode_row(&self.schema, bytes)
    }

    /// One op of a batch, in the reference engine's order of checks.
    fn apply_op(&self, txn: &mut dyn WriteTxn, op: &Op, effect: &mut BatchEffect) -> Result<bool> {
        let schema = &self.schema;
        match op {
            Op::Insert(row) => {
                schema.validate_row(row)?;
                self.check_row_size(row)?;
                let pk = if schema.has_primary_key() {
                    let pk = encode_key_to_vec(&schema.primary_key_of(row));
                    Self::check_key_size(pk.len())?;
                    if txn.get(&pk)?.is_some() {
                        return Err(self.duplicate(PRIMARY_INDEX_NAME));
                    }
                    pk
                } else {
                    encode_key_to_vec(&[Value::Int(effect.next_row_id)])
                };
                let keys = self.index_keys(row, &pk)?;
                if let Some(index) = self.unique_conflict(txn, &keys, None)? {
                    return Err(self.duplicate(index));
                }
                if !schema.has_primary_key() {
                    effect.next_row_id = effect.next_row_id.checked_add(1).ok_or_else(|| {
                        Error::InvalidArgument("row ids are exhausted".to_string())
                    })?;
                }
                txn.insert(&pk, &encode_row_to_vec(schema, row)?, &keys)?;
                effect.row_delta += 1;
                Ok(true)
            }
            Op::Update { key, changes } => {
                schema.validate_key(key)?;
                schema.validate_changes(changes)?;
                let pk = encode_key_to_vec(key);
                let Some(old_bytes) = txn.get(&pk)? else {
                    return Ok(false);
                };
                let old = self.decode(&old_bytes)?;
                let mut new = old.clone();
                schema.apply_changes(&mut new, changes);
                self.check_row_size(&new)?;
                let old_keys = self.index_keys(&old, &pk)?;
                let new_keys = self.index_keys(&new, &pk)?;
                if let Some(index) = self.unique_conflict(txn, &new_keys, Some(&old_keys))? {
                    return Err(self.duplicate(index));
                }
                txn.update(&pk, &encode_row_to_vec(schema, &new)?, &old_keys, &new_keys)?;
                Ok(true)
            }
            Op::Delete { key } => {
                schema.validate_key(key)?;
                let pk = encode_key_to_vec(key);
                let Some(old_bytes) = txn.get(&pk)? else {
                    return Ok(false);
                };
                let old = self.decode(&old_bytes)?;
                let old_keys = self.index_keys(&old, &pk)?;
                txn.delete(&pk, &old_keys)?;
                effect.row_delta -= 1;
                Ok(true)
            }
        }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(
            format!(
                "table {:?} in {}",
                self.schema.name,
                self.store.dir().display()
            ),
            reason,
        )
    }
}

impl Table for PeerTable {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let mut next_row_id = self.next_row_id.lock();
        let start = *next_row_id;
        let mut effect = BatchEffect::default();
        self.store.write(&self.layout, &mut |txn| {
            // A store may run the body again (never today); start from scratch each time.
            effect = BatchEffect {
                next_row_id: start,
                ..BatchEffect::default()
            };
            for op in ops {
                let existed = self.apply_op(txn, op, &mut effect)?;
                effect.outcome.push(existed);
            }
            if effect.next_row_id != start {
                txn.set_next_row_id(effect.next_row_id)?;
            }
            Ok(())
        })?;
        *next_row_id = effect.next_row_id;
        if effect.row_delta >= 0 {
            self.row_count
                .fetch_add(effect.row_delta as u64, Ordering::Relaxed);
        } else {
            self.row_count
                .fetch_sub(effect.row_delta.unsigned_abs(), Ordering::Relaxed);
        }
        Ok(effect.outcome)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.schema.validate_key(key)?;
        match self.store.get(&self.layout, &encode_key_to_vec(key))? {
            Some(bytes) => Ok(Some(self.decode(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Streams rows to the visitor while the peer's read is open (a SQLite scan holds the
    /// connection, so a visitor must not call back into a SQLite table). `Bitmap` scans are
    /// plain index scans here: no peer has a bitmap heap scan to offer.
    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64> {
        let index = spec.validate(&self.schema)?;
        let Some(range) = key_range(&spec.lower, &spec.upper) else {
            return Ok(0);
        };
        let source = match index {
            Some(index) => Source::Index(
                self.schema
                    .indexes
                    .iter()
                    .position(|i| i == index)
                    .expect("validate returned our index"),
            ),
            None if !spec.reverse
                && spec.lower == Bound::Unbounded
                && spec.upper == Bound::Unbounded =>
            {
                Source::Full
            }
            None => Source::Primary {
                reverse: spec.reverse,
            },
        };
        let limit = spec.limit.unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(0);
        }
        let mut visited = 0usize;
        self.store
            .scan(&self.layout, source, &range, &mut |_pk, bytes| {
                let row = self.decode(bytes)?;
                if predicate.is_some_and(|p| !p(&row)) {
                    return Ok(true);
                }
                visited += 1;
                let row = match &spec.projection {
                    Some(columns) => self.schema.project(&row, columns),
                    None => row,
                };
                Ok(visit(row) && visited < limit)
            })?;
        Ok(visited as u64)
    }

    /// Sizes: the table's own structures as the peer reports them, plus `shared`; counters:
    /// `/proc/self/io` since the engine was opened (`proc_io_*`, process-wide).
    fn stats(&self) -> Result<TableStats> {
        let mut counters = BTreeMap::new();
        if let (Some(now), Some(opened)) = (ProcIo::now(), self.opened_io) {
            counters.extend(
                now.delta(&opened)
                    .entries()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v)),
            );
        }
        Ok(TableStats {
            row_count: self.row_count.load(Ordering::Relaxed),
            file_bytes: self.store.structure_bytes(&self.layout)?,
            counters,
        })
    }

    /// Every row decodes and sits under its own primary key; every index holds exactly the
    /// entries of the rows (and a unique index no key twice); the row count is right.
    fn check(&self) -> Result<()> {
        let schema = &self.schema;
        let mut expected: Vec<BTreeSet<(Vec<u8>, Vec<u8>)>> =
            schema.indexes.iter().map(|_| BTreeSet::new()).collect();
        let mut count = 0u64;
        let range = (Bound::Unbounded, Bound::Unbounded);
        let source = Source::Primary { reverse: false };
        self.store
            .scan(&self.layout, source, &range, &mut |pk, bytes| {
                let row = self.decode(bytes)?;
                if schema.has_primary_key() && encode_key_to_vec(&schema.primary_key_of(&row)) != pk
                {
                    return Err(self.corrupt(format!("row {row:?} is stored under another key")));
                }
                for (i, index) in schema.indexes.iter().enumerate() {
                    let key = encode_key_to_vec(&schema.index_key_of(index, &row));
                    expected[i].insert((key, pk.to_vec()));
                }
                count += 1;
                Ok(true)
            })?;
        let counted = self.row_count.load(Ordering::Relaxed);
        if count != counted {
            return Err(self.corrupt(format!("{count} rows, but the count says {counted}")));
        }
        for (i, index) in schema.indexes.iter().enumerate() {
            let entries = self.store.index_entries(&self.layout, i)?;
            if index.unique {
                for pair in entries.windows(2) {
                    if pair[0].0 == pair[1].0 {
                        return Err(self
                            .corrupt(format!("unique index {:?} holds a key twice", index.name)));
                    }
                }
            }
            let found: BTreeSet<_> = entries.into_iter().collect();
            if found != expected[i] {
                return Err(self.corrupt(format!(
                    "index {:?} has {} entries, the rows call for {} (or they differ)",
                    index.name,
                    found.len(),
                    expected[i].len()
                )));
            }
        }
        Ok(())
    }
}
