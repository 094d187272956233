//! The two test tables of one engine, and how a [`TestOp`] becomes the real call.
//!
//! [`TestTables::execute`] performs one op on one engine and returns its [`Answer`]; the
//! model checker calls it on the engine under test and on the reference engine and compares
//! the answers, the mirror test calls it on a [`crate::mirror::Mirror`] only.

use std::ops::Bound;
use std::sync::Arc;

use storelab_table::{BatchOutcome, Engine, Op, Result, Row, ScanSpec, Table, Value};

use crate::ops::{Bounds, Change, PredicateSpec, ScanOp, TestOp, WriteOp};
use crate::schema::{Col, SecondaryIndex, TableKind, b_value, pad_len, pad_value};

/// What one op returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// A call without a result (insert, maintain, checkpoint, reopen).
    Done,
    /// `update` or `delete`: whether the row existed.
    Existed(bool),
    /// `apply`: one entry per op.
    Outcome(BatchOutcome),
    /// `get`.
    Row(Option<Row>),
    /// `lookup` or `scan`: the rows in the order they came, and the visited count `scan`
    /// returned (`lookup`: the number of rows).
    Rows {
        /// The rows.
        rows: Vec<Row>,
        /// The visited count.
        visited: u64,
    },
}

/// The test tables of one engine, open.
#[derive(Clone)]
pub struct TestTables {
    keyed: Arc<dyn Table>,
    unkeyed: Arc<dyn Table>,
}

impl std::fmt::Debug for TestTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestTables").finish_non_exhaustive()
    }
}

impl TestTables {
    /// Creates both tables in `engine`.
    pub fn create(engine: &dyn Engine) -> Result<TestTables> {
        Ok(TestTables {
            keyed: engine.create_table(TableKind::Keyed.schema())?,
            unkeyed: engine.create_table(TableKind::Unkeyed.schema())?,
        })
    }

    /// Opens both tables of `engine`.
    pub fn open(engine: &dyn Engine) -> Result<TestTables> {
        Ok(TestTables {
            keyed: engine.open_table(TableKind::Keyed.name())?,
            unkeyed: engine.open_table(TableKind::Unkeyed.name())?,
        })
    }

    /// The table of `kind`.
    pub fn table(&self, kind: TableKind) -> &Arc<dyn Table> {
        match kind {
            TableKind::Keyed => &self.keyed,
            TableKind::Unkeyed => &self.unkeyed,
        }
    }

    /// Performs `op` on `engine` (whose tables these are). [`TestOp::Reopen`] is the
    /// caller's: it cannot be done through a shared reference, and this panics.
    pub fn execute(&self, engine: &dyn Engine, op: &TestOp) -> Result<Answer> {
        let row_size_max = engine.row_size_max();
        match op {
            TestOp::Write(kind, write) => {
                let table = self.table(*kind);
                match to_op(*kind, write, row_size_max) {
                    Op::Insert(row) => table.insert(row).map(|()| Answer::Done),
                    Op::Update { key, changes } => {
                        table.update(&key, &changes).map(Answer::Existed)
                    }
                    Op::Delete { key } => table.delete(&key).map(Answer::Existed),
                }
            }
            TestOp::Batch(kind, writes) => {
                let ops: Vec<Op> = writes
                    .iter()
                    .map(|w| to_op(*kind, w, row_size_max))
                    .collect();
                self.table(*kind).apply(&ops).map(Answer::Outcome)
            }
            TestOp::Get(kind, key) => self.table(*kind).get(&kind.key(*key)).map(Answer::Row),
            TestOp::Lookup(kind, index, key) => {
                let rows = self
                    .table(*kind)
                    .lookup(index.name(), &[index.key_value(*key)])?;
                let visited = rows.len() as u64;
                Ok(Answer::Rows { rows, visited })
            }
            TestOp::Scan(kind, scan) => {
                let spec = to_spec(*kind, scan);
                let predicate = scan.predicate.map(|p| predicate_fn(*kind, p));
                scan_rows(
                    self.table(*kind).as_ref(),
                    &spec,
                    predicate.as_deref(),
                    scan.stop_after,
                )
            }
            TestOp::Maintain(kind) => self.table(*kind).maintain().map(|()| Answer::Done),
            TestOp::Checkpoint => engine.checkpoint().map(|()| Answer::Done),
            TestOp::Reopen => panic!("TestTables::execute cannot reopen: the caller does"),
        }
    }
}

/// Runs a scan, collecting its rows; the visitor stops after `stop_after` rows if given.
pub fn scan_rows(
    table: &dyn Table,
    spec: &ScanSpec,
    predicate: Option<&(dyn Fn(&Row) -> bool + Sync)>,
    stop_after: Option<usize>,
) -> Result<Answer> {
    let mut rows = Vec::new();
    let visited = table.scan(spec, predicate, &mut |row| {
        rows.push(row);
        stop_after.is_none_or(|n| rows.len() < n)
    })?;
    Ok(Answer::Rows { rows, visited })
}

/// The `Op` a [`WriteOp`] describes on a table of `kind`.
pub fn to_op(kind: TableKind, write: &WriteOp, row_size_max: usize) -> Op {
    match write {
        WriteOp::Insert(spec) => Op::Insert(kind.row(spec, row_size_max)),
        WriteOp::Update { key, changes } => Op::Update {
            key: kind.key(*key),
            changes: changes
                .iter()
                .map(|c| to_change(kind, c, row_size_max))
                .collect(),
        },
        WriteOp::Delete { key } => Op::Delete {
            key: kind.key(*key),
        },
    }
}

/// The (column, value) pair a [`Change`] describes.
fn to_change(kind: TableKind, change: &Change, row_size_max: usize) -> (usize, Value) {
    match *change {
        Change::A(a) => (kind.col(Col::A), Value::Int(a)),
        Change::B(b) => (kind.col(Col::B), b_value(b)),
        Change::C(c) => (kind.col(Col::C), Value::Int(c)),
        Change::Pad(pad) => {
            let len = pad_len(kind, pad, row_size_max);
            (kind.col(Col::Pad), pad_value(len, len as i64))
        }
        Change::Invalid(n) => match kind {
            TableKind::Keyed => (kind.col(Col::Id), Value::Int(n)),
            TableKind::Unkeyed => (kind.col(Col::A), Value::Text(n.to_string())),
        },
    }
}

/// The key values of bound number `n` on the scanned key.
fn bound_key(index: Option<SecondaryIndex>, n: i64) -> Vec<Value> {
    match index {
        None => vec![Value::Int(n)],
        Some(index) => vec![index.key_value(n)],
    }
}

fn to_bound(index: Option<SecondaryIndex>, bound: Bound<i64>) -> Bound<Vec<Value>> {
    bound.map(|n| bound_key(index, n))
}

/// The `ScanSpec` a [`ScanOp`] describes on a table of `kind`.
pub fn to_spec(kind: TableKind, scan: &ScanOp) -> ScanSpec {
    let Bounds { lower, upper } = scan.bounds;
    ScanSpec {
        index: scan.index.map(|i| i.name().to_string()),
        lower: to_bound(scan.index, lower),
        upper: to_bound(scan.index, upper),
        reverse: scan.reverse,
        limit: scan.limit,
        projection: scan
            .projection
            .as_ref()
            .map(|cols| cols.iter().filter_map(|&c| kind.column(c)).collect()),
        method: scan.method,
        prefetch_depth: scan.prefetch_depth,
    }
}

/// The predicate a [`PredicateSpec`] describes, on whole rows of a table of `kind`.
pub fn predicate_fn(kind: TableKind, spec: PredicateSpec) -> Box<dyn Fn(&Row) -> bool + Sync> {
    match spec {
        PredicateSpec::CBelow(n) => {
            let c = kind.col(Col::C);
            Box::new(move |row: &Row| matches!(row[c], Value::Int(v) if v < n))
        }
        PredicateSpec::AEquals(n) => {
            let a = kind.col(Col::A);
            Box::new(move |row: &Row| matches!(row[a], Value::Int(v) if v == n))
        }
        PredicateSpec::PadLonger(n) => {
            let pad = kind.col(Col::Pad);
            Box::new(move |row: &Row| matches!(&row[pad], Value::Text(t) if t.len() > n))
        }
    }
}
