//! The model checker: an op sequence through an engine and through the reference engine,
//! compared op by op.
//!
//! [`run_against_reference`] creates the two test tables in the engine under test and in a
//! [`ReferenceEngine`] with the same `row_size_max`, then for each op:
//!
//! 1. performs it on both ([`TestTables::execute`]; a reopen closes and reopens the engine
//!    under test, and the reference keeps its state);
//! 2. compares the answers: both `Ok` with equal answers (scans by the rules of
//!    [`crate::scan_order`]), or both `Err` with the same [`Error`] variant;
//! 3. calls `check()` on the engine (every structure, every index against its table) and on
//!    the reference;
//! 4. compares the tables' whole contents ([`contents_agree`]).
//!
//! The first difference stops the run with a [`ModelFailure`] naming the step and the op.
//! [`check_model`] wraps all of it for a proptest body, so an engine's `tests/model.rs` is:
//!
//! ```no_run
//! use std::path::Path;
//! use storelab_testkit::proptest::prelude::*;
//! use storelab_testkit::{model, ops};
//! # fn open_my_engine(dir: &Path) -> storelab_table::Result<Box<dyn storelab_table::Engine>> {
//! #     unimplemented!()
//! # }
//!
//! proptest! {
//!     #![proptest_config(model::proptest_config())]
//!     /// My engine gives the reference engine's answers to random op sequences.
//!     #[test]
//!     fn my_engine_matches_reference(ops in ops::op_sequence()) {
//!         model::check_model(&ops, open_my_engine)?;
//!     }
//! }
//! ```

use std::mem::discriminant;
use std::path::Path;
use std::sync::Arc;

use proptest::test_runner::{Config as ProptestConfig, TestCaseError};
use storelab_pager::PageSize;
use storelab_pager::io::{BackendConfig, BackendKind};
use storelab_table::reference::ROW_ID_FIRST;
use storelab_table::{
    Engine, Error, ReferenceEngine, Result, Row, ScanSpec, StorageConfig, Table, Value,
};
use storelab_wal::CommitMode;

use crate::brief::{Brief, shorten_runs};
use crate::ops::TestOp;
use crate::scan_order::{compare_scan, sorted};
use crate::scratch::scratch_dir;
use crate::test_tables::{Answer, TestTables, predicate_fn, scan_rows, to_spec};

/// Proptest cases per model test: a CI-sized number, many more with `STORELAB_LONG=1`.
pub fn case_count() -> u32 {
    if crate::long() { 1000 } else { 64 }
}

/// The proptest configuration of a model test: [`case_count`] cases.
///
/// The seed is fixed (`MODEL_SEED`, or `STORELAB_SEED` from the environment), so every engine
/// sees the same op sequences and a failure reproduces by rerunning the test.
pub fn proptest_config() -> ProptestConfig {
    let seed = std::env::var("STORELAB_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MODEL_SEED);
    ProptestConfig {
        cases: case_count(),
        rng_seed: proptest::test_runner::RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

/// The model tests' default seed.
pub const MODEL_SEED: u64 = 0x5EED_0D1E;

/// The storage settings of model tests: 4 KiB pages, so rows of a few KiB fill pages fast; a
/// pool of 64 frames, so pages are evicted and read back; the `sync` I/O backend (simple,
/// deterministic, and safe to drop while a failed test unwinds); commits unsynced (a clean
/// close still makes everything durable; crashes are the crash harness's business); no
/// automatic checkpoints (the op sequences ask for them).
pub fn storage_config() -> StorageConfig {
    StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 64 * PageSize::K4.bytes(),
        backend: BackendConfig {
            kind: BackendKind::Sync,
            ..BackendConfig::default()
        },
        commit_mode: CommitMode::Off,
        checkpoint_wal_bytes: 0,
        ..StorageConfig::default()
    }
}

/// An engine under test: something the checker can reach and reopen.
pub trait EngineUnderTest {
    /// The engine as it is now.
    fn engine(&self) -> &dyn Engine;
    /// Closes the engine cleanly and opens it again. The checker drops every table handle
    /// first.
    fn reopen(&mut self) -> Result<()>;
}

/// Opens an engine in a directory.
pub type DirOpener = dyn Fn(&Path) -> Result<Box<dyn Engine>>;

/// An engine in a scratch directory of its own, reopened with the opener it was made with.
pub struct DirEngine {
    open: Box<DirOpener>,
    engine: Option<Arc<dyn Engine>>,
    // Declared last: dropped after the engine.
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for DirEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirEngine")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl DirEngine {
    /// Opens a new engine with `open` in a fresh scratch directory.
    pub fn new(open: impl Fn(&Path) -> Result<Box<dyn Engine>> + 'static) -> Result<DirEngine> {
        let dir = scratch_dir("storelab-model");
        let engine = Arc::from(open(dir.path())?);
        Ok(DirEngine {
            open: Box::new(open),
            engine: Some(engine),
            dir,
        })
    }

    /// The engine, shared (a [`crate::mirror::Mirror`] holds it; drop the clone before
    /// [`EngineUnderTest::reopen`]).
    pub fn shared(&self) -> Arc<dyn Engine> {
        Arc::clone(self.engine.as_ref().expect("the engine is open"))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl EngineUnderTest for DirEngine {
    fn engine(&self) -> &dyn Engine {
        self.engine.as_deref().expect("the engine is open")
    }

    fn reopen(&mut self) -> Result<()> {
        let engine = self.engine.take().expect("the engine is open");
        assert_eq!(
            Arc::strong_count(&engine),
            1,
            "a handle to the engine outlives its reopen"
        );
        drop(engine);
        self.engine = Some(Arc::from((self.open)(self.dir.path())?));
        Ok(())
    }
}

/// Where and why a model run failed.
#[derive(Debug)]
pub struct ModelFailure {
    /// The step (0-based index of the op; `None`: creating the tables).
    pub step: Option<usize>,
    /// The op.
    pub op: Option<TestOp>,
    /// What differed.
    pub message: String,
}

impl std::fmt::Display for ModelFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.step, &self.op) {
            (Some(step), Some(op)) => write!(
                f,
                "step {step}, {}: {}",
                Brief(op),
                shorten_runs(&self.message)
            ),
            _ => write!(f, "setup: {}", shorten_runs(&self.message)),
        }
    }
}

impl std::error::Error for ModelFailure {}

/// Whether two errors are the same variant (`DuplicateKey` and `DuplicateKey`, whatever the
/// index named): the engines' contract fixes the variant, not the wording.
pub fn same_error_kind(a: &Error, b: &Error) -> bool {
    discriminant(a) == discriminant(b)
}

/// Runs `ops` on `engine` and on a reference engine; see the module doc.
pub fn run_against_reference(
    ops: &[TestOp],
    under_test: &mut dyn EngineUnderTest,
) -> Result<(), Box<ModelFailure>> {
    let setup = |message: String| {
        Box::new(ModelFailure {
            step: None,
            op: None,
            message,
        })
    };
    let reference = ReferenceEngine::new(under_test.engine().row_size_max());
    let expected = TestTables::create(&reference).map_err(|e| setup(e.to_string()))?;
    let mut tables = Some(
        TestTables::create(under_test.engine())
            .map_err(|e| setup(format!("creating the tables: {e}")))?,
    );
    for (step, op) in ops.iter().enumerate() {
        let fail = |message: String| {
            Box::new(ModelFailure {
                step: Some(step),
                op: Some(op.clone()),
                message,
            })
        };
        if *op == TestOp::Reopen {
            drop(tables.take());
            under_test
                .reopen()
                .map_err(|e| fail(format!("reopen failed: {e}")))?;
            tables = Some(
                TestTables::open(under_test.engine())
                    .map_err(|e| fail(format!("opening the tables after reopen: {e}")))?,
            );
        } else {
            let got = tables
                .as_ref()
                .expect("the tables are open")
                .execute(under_test.engine(), op);
            let want = expected.execute(&reference, op);
            answers_agree(op, &expected, &got, &want).map_err(fail)?;
        }
        let engine = under_test.engine();
        engine
            .check()
            .map_err(|e| fail(format!("check() failed: {e}")))?;
        reference
            .check()
            .map_err(|e| fail(format!("the reference's check() failed: {e}")))?;
        let tables = tables.as_ref().expect("the tables are open");
        for kind in crate::schema::TABLE_KINDS {
            contents_agree(tables.table(kind).as_ref(), expected.table(kind).as_ref())
                .map_err(|e| fail(format!("table {}: {e}", kind.name())))?;
        }
    }
    Ok(())
}

/// Compares an op's answer from the engine under test (`got`) with the reference's (`want`).
fn answers_agree(
    op: &TestOp,
    reference: &TestTables,
    got: &Result<Answer>,
    want: &Result<Answer>,
) -> Result<(), String> {
    match (got, want) {
        (Ok(got), Ok(want)) => match (op, got, want) {
            (
                TestOp::Scan(..) | TestOp::Lookup(..),
                Answer::Rows {
                    rows: got_rows,
                    visited: got_visited,
                },
                Answer::Rows {
                    rows: want_rows,
                    visited: want_visited,
                },
            ) => {
                let (table, spec, selected) = selection(op, reference)?;
                compare_scan(table.schema(), &spec, &selected, got_rows, want_rows)?;
                if got_visited != want_visited {
                    return Err(format!(
                        "scan returned a visited count of {got_visited}, the reference \
                         {want_visited}"
                    ));
                }
                Ok(())
            }
            _ if got == want => Ok(()),
            _ => Err(format!(
                "answers differ:\n  engine    {got:?}\n  reference {want:?}"
            )),
        },
        (Err(g), Err(w)) if same_error_kind(g, w) => Ok(()),
        _ => Err(format!(
            "results differ:\n  engine    {}\n  reference {}",
            describe(got),
            describe(want)
        )),
    }
}

fn describe(result: &Result<Answer>) -> String {
    match result {
        Ok(answer) => format!("Ok({answer:?})"),
        Err(e) => format!("Err({e:?}: {e})"),
    }
}

/// The reference table of a scan, its spec, and the rows it selects.
type Selection = (Arc<dyn Table>, ScanSpec, Vec<Row>);

/// For a scan or lookup op: the reference table, the spec, and everything the spec selects
/// there (no limit, no projection, whole rows).
fn selection(op: &TestOp, reference: &TestTables) -> Result<Selection, String> {
    let (table, spec, predicate) = match op {
        TestOp::Scan(kind, scan) => (
            reference.table(*kind),
            to_spec(*kind, scan),
            scan.predicate.map(|p| predicate_fn(*kind, p)),
        ),
        TestOp::Lookup(kind, index, key) => {
            let key = vec![index.key_value(*key)];
            let spec = ScanSpec {
                index: Some(index.name().to_string()),
                lower: std::ops::Bound::Included(key.clone()),
                upper: std::ops::Bound::Included(key),
                ..ScanSpec::default()
            };
            (reference.table(*kind), spec, None)
        }
        _ => unreachable!("only scans and lookups select rows"),
    };
    let unlimited = ScanSpec {
        limit: None,
        projection: None,
        ..spec.clone()
    };
    match scan_rows(table.as_ref(), &unlimited, predicate.as_deref(), None) {
        Ok(Answer::Rows { rows, .. }) => Ok((Arc::clone(table), spec, rows)),
        other => Err(format!("the reference's unlimited scan gave {other:?}")),
    }
}

/// Row ids `1..=ROW_ID_PROBE_MAX` are compared by `get` in tables without a primary key
/// (sequences of [`crate::ops`] give out fewer).
pub const ROW_ID_PROBE_MAX: i64 = 64;

/// Whether two tables hold the same rows: a primary-key-ordered scan (reverse, so not a
/// full scan) must give the same list, a full scan the same multiset (in any order), a table
/// without a primary key the same row under each row id up to [`ROW_ID_PROBE_MAX`], and the
/// row counts of `stats` must agree.
pub fn contents_agree(a: &dyn Table, b: &dyn Table) -> Result<(), String> {
    let rows = |table: &dyn Table, spec: &ScanSpec| -> Result<Vec<Row>, String> {
        match scan_rows(table, spec, None, None) {
            Ok(Answer::Rows { rows, .. }) => Ok(rows),
            Ok(other) => unreachable!("a scan answers with rows, not {other:?}"),
            Err(e) => Err(format!("scan {spec:?} failed: {e}")),
        }
    };
    let by_key = ScanSpec {
        reverse: true,
        ..ScanSpec::default()
    };
    let (a_by_key, b_by_key) = (rows(a, &by_key)?, rows(b, &by_key)?);
    if a_by_key != b_by_key {
        return Err(format!(
            "contents differ (descending key order):\n  engine    {a_by_key:?}\n  reference \
             {b_by_key:?}"
        ));
    }
    let full = ScanSpec::default();
    let (a_full, b_full) = (rows(a, &full)?, rows(b, &full)?);
    if sorted(&a_full) != sorted(&b_full) {
        return Err(format!(
            "full scans differ (as multisets):\n  engine    {a_full:?}\n  reference {b_full:?}"
        ));
    }
    if !a.schema().has_primary_key() {
        // Scans do not return hidden row ids: compare which row each id names.
        for row_id in ROW_ID_FIRST..=ROW_ID_PROBE_MAX {
            let key = [Value::Int(row_id)];
            let (x, y) = (a.get(&key), b.get(&key));
            match (&x, &y) {
                (Ok(x), Ok(y)) if x == y => {}
                _ => {
                    return Err(format!(
                        "get of row id {row_id} differs:\n  engine    {x:?}\n  reference {y:?}"
                    ));
                }
            }
        }
    }
    let count = |table: &dyn Table| table.stats().map(|s| s.row_count);
    match (count(a), count(b)) {
        (Ok(x), Ok(y)) if x == y => Ok(()),
        (x, y) => Err(format!("stats row counts differ: {x:?} versus {y:?}")),
    }
}

/// Runs `ops` on an engine without a model, for engines that check themselves (a
/// [`crate::mirror::Mirror`] panics on any difference): errors are answers here, not failures;
/// only a failed `check()` or reopen is.
pub fn run_ops(
    ops: &[TestOp],
    under_test: &mut dyn EngineUnderTest,
) -> Result<(), Box<ModelFailure>> {
    let mut tables = Some(TestTables::create(under_test.engine()).map_err(|e| {
        Box::new(ModelFailure {
            step: None,
            op: None,
            message: format!("creating the tables: {e}"),
        })
    })?);
    for (step, op) in ops.iter().enumerate() {
        let fail = |message: String| {
            Box::new(ModelFailure {
                step: Some(step),
                op: Some(op.clone()),
                message,
            })
        };
        if *op == TestOp::Reopen {
            drop(tables.take());
            under_test
                .reopen()
                .map_err(|e| fail(format!("reopen failed: {e}")))?;
            tables = Some(
                TestTables::open(under_test.engine())
                    .map_err(|e| fail(format!("opening the tables after reopen: {e}")))?,
            );
        } else {
            let tables = tables.as_ref().expect("the tables are open");
            // The answer is checked by the engine itself.
            let _ = tables.execute(under_test.engine(), op);
        }
        under_test
            .engine()
            .check()
            .map_err(|e| fail(format!("check() failed: {e}")))?;
    }
    Ok(())
}

/// The body of a model proptest: `ops` through an engine that `open` opens in a fresh
/// scratch directory, against the reference engine. A failure names the step and the op;
/// proptest then shrinks the sequence and prints it.
pub fn check_model(
    ops: &[TestOp],
    open: impl Fn(&Path) -> Result<Box<dyn Engine>> + 'static,
) -> Result<(), TestCaseError> {
    let mut engine = DirEngine::new(open)
        .map_err(|e| TestCaseError::fail(format!("opening the engine: {e}")))?;
    run_against_reference(ops, &mut engine).map_err(|f| TestCaseError::fail(f.to_string()))
}
