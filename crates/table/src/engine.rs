//! The `Engine` and `Table` traits: the one API every physical design implements.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::schema::{IndexDef, Schema};
use crate::value::{Row, Value};

/// A storage engine: a directory of tables sharing one buffer pool and one log.
pub trait Engine: Send + Sync {
    /// The engine's name (`heap`, `clustered`, `lsm`, `reference`, ...).
    fn name(&self) -> &str;
    /// Creates a table; its schema is persisted in the catalog before this returns.
    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>>;
    /// Opens an existing table by name.
    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>>;
    /// Names of the tables, sorted.
    fn table_names(&self) -> Vec<String>;
    /// Makes everything done so far durable in the data files and bounds recovery (a WAL
    /// checkpoint, or the LSM's flush).
    fn checkpoint(&self) -> Result<()>;
    /// Engine-wide statistics.
    fn stats(&self) -> Result<EngineStats>;
    /// Verifies every structure of every table (`storelab check`).
    fn check(&self) -> Result<()>;
    /// The largest encoded row this engine accepts.
    fn row_size_max(&self) -> usize;
}

/// The default [`Table::load`]: inserts in atomic batches of [`LOAD_BATCH_ROWS`] rows.
pub fn load_in_batches<T: Table + ?Sized>(
    table: &T,
    rows: &mut dyn Iterator<Item = Row>,
) -> Result<u64> {
    let mut count = 0;
    loop {
        let batch: Vec<Op> = (&mut *rows).take(LOAD_BATCH_ROWS).map(Op::Insert).collect();
        if batch.is_empty() {
            return Ok(count);
        }
        table.apply(&batch)?;
        count += batch.len() as u64;
    }
}

/// Rows per batch of the default [`Table::load`].
pub const LOAD_BATCH_ROWS: usize = 256;

/// One change in a batch.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Insert a new row (its primary key must be new).
    Insert(Row),
    /// Set the given columns of the row with this primary key.
    Update {
        /// The primary key's values, in primary-key column order.
        key: Vec<Value>,
        /// (column index, new value) pairs; each column at most once, never a primary-key
        /// column.
        changes: Vec<(usize, Value)>,
    },
    /// Delete the row with this primary key.
    Delete {
        /// The primary key's values.
        key: Vec<Value>,
    },
}

/// What a batch did, op by op: for `Update` and `Delete`, whether the row existed.
pub type BatchOutcome = Vec<bool>;

/// How an index range scan fetches rows (the heap's three access paths; engines without a
/// choice treat them alike and say so in their docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IndexScanMethod {
    /// One row fetch per index entry, in index order (equal keys in the engine's order, see
    /// [`Table::lookup`]).
    #[default]
    Plain,
    /// Collect the row locations first, sort them by page, prefetch, visit each page once
    /// (PostgreSQL's bitmap heap scan; the clustered engine's sorted primary lookups).
    /// Rows come out in physical order, not index order.
    Bitmap,
}

/// Which rows a scan visits and how.
#[derive(Clone, Debug)]
pub struct ScanSpec {
    /// `None`: the primary key (or a full scan in the engine's order when both bounds are
    /// unbounded and `reverse` is false); `Some(name)`: that secondary index.
    pub index: Option<String>,
    /// Lower bound on the key of the index scanned (a prefix of its columns' values).
    pub lower: Bound<Vec<Value>>,
    /// Upper bound, likewise.
    pub upper: Bound<Vec<Value>>,
    /// Descending key order (primary-key scans only).
    pub reverse: bool,
    /// Stop after this many rows have been visited.
    pub limit: Option<usize>,
    /// Column indexes to return, in this order (`None`: the whole row).
    pub projection: Option<Vec<usize>>,
    /// Fetch method for secondary-index scans.
    pub method: IndexScanMethod,
    /// Read-ahead / prefetch depth in pages (0: none; `None`: the engine's default).
    pub prefetch_depth: Option<usize>,
}

impl ScanSpec {
    /// Checks the spec against a table's schema and returns the secondary index it scans
    /// (`None`: the primary key): the index exists (`NoSuchIndex`), each bound is a prefix of
    /// the scanned key with values of the right types (`WrongArity`, `WrongType`), the
    /// projection names existing columns (`NoSuchColumn`), and `reverse` is only asked of a
    /// primary-key scan (`InvalidArgument`). Engines call this before touching anything.
    pub fn validate<'s>(&self, schema: &'s Schema) -> Result<Option<&'s IndexDef>> {
        let index = match &self.index {
            Some(name) => Some(schema.index(name)?),
            None => None,
        };
        for bound in [&self.lower, &self.upper] {
            if let Bound::Included(prefix) | Bound::Excluded(prefix) = bound {
                schema.validate_key_prefix(index, prefix)?;
            }
        }
        if let Some(projection) = &self.projection {
            schema.validate_projection(projection)?;
        }
        if self.reverse && index.is_some() {
            return Err(Error::InvalidArgument(
                "reverse order is supported by primary-key scans only".to_string(),
            ));
        }
        Ok(index)
    }
}

impl Default for ScanSpec {
    /// A full scan of the whole table, in the engine's order (see the crate doc's contract 4).
    fn default() -> Self {
        ScanSpec {
            index: None,
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
            reverse: false,
            limit: None,
            projection: None,
            method: IndexScanMethod::Plain,
            prefetch_depth: None,
        }
    }
}

/// A row predicate for full scans; sees whole rows, before projection.
pub type Predicate<'a> = &'a (dyn Fn(&Row) -> bool + Sync);

/// Called with each row; return `false` to stop the scan.
pub type Visitor<'a> = &'a mut dyn FnMut(Row) -> bool;

/// One table of an engine. Every method is safe to call from many threads at once.
///
/// # Keys
///
/// Keys and scan bounds are value tuples, encoded with [`crate::key`]. A bound is a prefix of
/// the scanned key's columns: `Included(p)` on both sides selects every row whose key starts
/// with `p` ([`crate::key::key_range`] states the exact rule).
///
/// A table without a primary key keys its rows by a hidden row id: `get`, `update`, `delete`
/// and primary-key scan bounds take `[Value::Int(row_id)]`. Row ids are 1, 2, 3, ... in insert
/// order, never reused, and a failed batch consumes none, so every engine assigns the same ids
/// to the same inserts. The row id is not part of the rows returned.
///
/// # Errors
///
/// Wrong input returns a typed [`Error`] and changes nothing: every op of a batch is checked
/// (types, arity, sizes, duplicate keys, primary-key changes) against the state as it
/// evolves through the batch, before any of it becomes visible.
pub trait Table: Send + Sync {
    /// The table's schema.
    fn schema(&self) -> &Schema;

    /// Applies the ops atomically: after a crash either all of them are visible or none, and
    /// an error (duplicate key, wrong type, row too large) leaves the table unchanged. Durable
    /// when it returns (in the log's durable commit modes). Ops see the effects of earlier ops
    /// of the same batch (a delete then an insert of the same key succeeds). The outcome has
    /// one entry per op; inserts always report `true`.
    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome>;

    /// Inserts one row; `DuplicateKey` if its primary key or a unique key is present.
    fn insert(&self, row: Row) -> Result<()> {
        self.apply(&[Op::Insert(row)]).map(|_| ())
    }

    /// Sets some columns of the row with primary key `key`; false if there is no such row.
    fn update(&self, key: &[Value], changes: &[(usize, Value)]) -> Result<bool> {
        let op = Op::Update {
            key: key.to_vec(),
            changes: changes.to_vec(),
        };
        Ok(self.apply(&[op])?[0])
    }

    /// Deletes the row with primary key `key`; false if there is none.
    fn delete(&self, key: &[Value]) -> Result<bool> {
        let op = Op::Delete { key: key.to_vec() };
        Ok(self.apply(&[op])?[0])
    }

    /// Loads many rows (the load phase of a workload). The default inserts them in batches of
    /// [`LOAD_BATCH_ROWS`], each batch atomic and durable; engines override it with a bulk
    /// path for an empty table (the heap fills pages in order, then bulk-loads each index)
    /// and document its crash behaviour. Returns the number of rows loaded.
    fn load(&self, rows: &mut dyn Iterator<Item = Row>) -> Result<u64> {
        load_in_batches(self, rows)
    }

    /// The row with primary key `key`.
    fn get(&self, key: &[Value]) -> Result<Option<Row>>;

    /// Rows of a secondary index whose key equals `key` (a prefix of the index's columns),
    /// in index order. Rows with equal index keys come in the engine's own order (the heap:
    /// by TID, as PostgreSQL; the clustered engines and the reference: by primary key).
    fn lookup(&self, index: &str, key: &[Value]) -> Result<Vec<Row>> {
        let spec = ScanSpec {
            index: Some(index.to_string()),
            lower: Bound::Included(key.to_vec()),
            upper: Bound::Included(key.to_vec()),
            ..ScanSpec::default()
        };
        let mut rows = Vec::new();
        self.scan(&spec, None, &mut |row| {
            rows.push(row);
            true
        })?;
        Ok(rows)
    }

    /// Visits the rows `spec` selects that satisfy `predicate`, projected; returns how many
    /// rows were visited. The predicate sees whole rows, before projection; `spec.limit`
    /// counts visited rows (those that passed the predicate). Invalid specs fail before any
    /// row is visited ([`ScanSpec::validate`]).
    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64>;

    /// Statistics of this table.
    fn stats(&self) -> Result<TableStats>;

    /// Verifies this table's structures: every index agrees with the rows.
    fn check(&self) -> Result<()>;

    /// Engine maintenance (the heap's VACUUM, the LSM's compaction; nothing for others).
    fn maintain(&self) -> Result<()> {
        Ok(())
    }
}

/// Sizes and counters of one table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TableStats {
    /// Live rows.
    pub row_count: u64,
    /// Bytes on disk of each of the table's files, by a descriptive name (the heap:
    /// `heap`, `primary`, `index_<name>`).
    pub file_bytes: BTreeMap<String, u64>,
    /// Engine-specific counters since open (`hot_updates`, `index_entries_inserted`, ...).
    pub counters: BTreeMap<String, u64>,
}

impl TableStats {
    /// Total bytes on disk.
    pub fn size_bytes(&self) -> u64 {
        self.file_bytes.values().sum()
    }
}

/// Engine-wide statistics.
#[derive(Clone, Debug, Default)]
pub struct EngineStats {
    /// Log bytes written since open.
    pub wal_bytes: u64,
    /// Buffer pool hits since open.
    pub pool_hits: u64,
    /// Buffer pool misses since open.
    pub pool_misses: u64,
    /// The I/O ledger at this moment (diff two with `Ledger::delta`).
    pub ledger: Option<storelab_pager::LedgerSnapshot>,
}
