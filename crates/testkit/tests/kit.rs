//! The kit tests itself: the reference engine agrees with itself through the checker, and a
//! deliberately broken engine (one that silently drops an insert) is caught by the checker
//! and by the mirror, at the op that went wrong.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use storelab_table::{
    BatchOutcome, Engine, EngineStats, Op, Predicate, ReferenceEngine, Result, Row, ScanSpec,
    Schema, Table, TableStats, Value, Visitor,
};
use storelab_testkit::mirror::Mirror;
use storelab_testkit::model::{self, DirEngine, run_against_reference};
use storelab_testkit::ops::{OpMix, TestOp, WriteOp, op_sequence_with};
use storelab_testkit::proptest::prelude::*;
use storelab_testkit::schema::{Pad, RowSpec, TableKind};
use storelab_testkit::test_tables::TestTables;

const ROW_SIZE_MAX: usize = 4000;

fn reference(_: &Path) -> Result<Box<dyn Engine>> {
    Ok(Box::new(ReferenceEngine::new(ROW_SIZE_MAX)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The reference engine passes the checker against itself (no reopen: its state lives
    /// in memory only), so every difference the checker reports comes from the engine.
    #[test]
    fn reference_matches_itself(ops in op_sequence_with(OpMix { reopen: false, ..OpMix::default() }, 1..80)) {
        model::check_model(&ops, reference)?;
    }
}

/// A reference engine whose tables silently drop the `drop_at`-th successful single insert.
struct Lossy {
    inner: ReferenceEngine,
    inserts: Arc<AtomicUsize>,
    drop_at: usize,
}

struct LossyTable {
    inner: Arc<dyn Table>,
    inserts: Arc<AtomicUsize>,
    drop_at: usize,
}

impl Engine for Lossy {
    fn name(&self) -> &str {
        "lossy"
    }
    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        Ok(Arc::new(LossyTable {
            inner: self.inner.create_table(schema)?,
            inserts: Arc::clone(&self.inserts),
            drop_at: self.drop_at,
        }))
    }
    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        Ok(Arc::new(LossyTable {
            inner: self.inner.open_table(name)?,
            inserts: Arc::clone(&self.inserts),
            drop_at: self.drop_at,
        }))
    }
    fn table_names(&self) -> Vec<String> {
        self.inner.table_names()
    }
    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }
    fn stats(&self) -> Result<EngineStats> {
        self.inner.stats()
    }
    fn check(&self) -> Result<()> {
        self.inner.check()
    }
    fn row_size_max(&self) -> usize {
        self.inner.row_size_max()
    }
}

impl Table for LossyTable {
    fn schema(&self) -> &Schema {
        self.inner.schema()
    }
    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        if let [Op::Insert(_)] = ops
            && self.inserts.fetch_add(1, Ordering::SeqCst) + 1 == self.drop_at
        {
            return Ok(vec![true]);
        }
        self.inner.apply(ops)
    }
    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.inner.get(key)
    }
    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64> {
        self.inner.scan(spec, predicate, visit)
    }
    fn stats(&self) -> Result<TableStats> {
        self.inner.stats()
    }
    fn check(&self) -> Result<()> {
        self.inner.check()
    }
}

fn lossy(drop_at: usize) -> Lossy {
    Lossy {
        inner: ReferenceEngine::new(ROW_SIZE_MAX),
        inserts: Arc::new(AtomicUsize::new(0)),
        drop_at,
    }
}

fn insert(id: i64) -> TestOp {
    TestOp::Write(
        TableKind::Keyed,
        WriteOp::Insert(RowSpec {
            id,
            a: 0,
            b: id,
            c: 0,
            pad: Pad::Len(3),
        }),
    )
}

/// The checker stops at the op after which the contents differ, and names it.
#[test]
fn checker_names_the_step_of_a_lost_insert() {
    let mut engine = DirEngine::new(|_: &Path| Ok(Box::new(lossy(2)) as Box<dyn Engine>))
        .expect("a reference engine opens");
    let ops = [insert(1), insert(2), insert(3)];
    let failure = run_against_reference(&ops, &mut engine).expect_err("the lost insert is seen");
    assert_eq!(failure.step, Some(1), "{failure}");
    assert!(failure.to_string().contains("contents differ"), "{failure}");
}

/// The mirror panics at the first call whose answers differ: the scan after the lost insert.
#[test]
fn mirror_panics_at_the_first_difference() {
    let mirror = Mirror::new(
        Arc::new(lossy(1)),
        Arc::new(ReferenceEngine::new(ROW_SIZE_MAX)),
    );
    let tables = TestTables::create(&mirror).expect("both create the tables");
    tables
        .execute(&mirror, &insert(1))
        .expect("the insert is answered alike");
    let keyed = tables.table(TableKind::Keyed);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let spec = ScanSpec {
            lower: Bound::Included(vec![Value::Int(0)]),
            ..ScanSpec::default()
        };
        keyed.scan(&spec, None, &mut |_| true)
    }));
    let message = caught
        .expect_err("the mirror panics")
        .downcast_ref::<String>()
        .cloned()
        .expect("a formatted panic message");
    assert!(message.contains("diverged on scan"), "{message}");
}
