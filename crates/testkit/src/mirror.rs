//! `Mirror`: an engine that runs every call on two engines and panics at the first
//! difference (toydb's `Mirror` storage engine, for the `Engine`/`Table` API).
//!
//! ```text
//!   caller --> Mirror ------> a (the engine under test)   answer returned to the caller
//!                     \-----> b (usually the reference)   answer compared with a's
//! ```
//!
//! Every call goes to `a` first, then to `b`, and the answers are compared by the rules of
//! the contract: both `Ok` and equal (scans by [`crate::scan_order`], so rows with equal
//! secondary keys, bitmap scans and full scans may differ in order), or both `Err` of the
//! same variant. Then `a`'s answer is returned. [`Engine::check`] checks both engines and
//! also compares every table's whole contents ([`crate::model::contents_agree`]).
//!
//! # Why panic rather than return an error
//!
//! A difference is a bug in one of the two engines, never an answer a caller can handle.
//! Returned as an `Err`, it could be mistaken for the error a caller expects (a batch with a
//! duplicate key fails anyway) and be swallowed; a panic stops the test at the call that
//! diverged, with both answers in the message and the backtrace pointing at the caller.
//!
//! # Cost
//!
//! A scan runs on `b` twice (once as asked, once without limit and projection, to know what
//! the unordered part of the answer may be) and all rows are collected before the caller's
//! visitor sees them; the mirror is a test tool, not for benchmarks.

use std::path::Path;
use std::sync::Arc;

use proptest::test_runner::TestCaseError;

use storelab_table::{
    BatchOutcome, Engine, EngineStats, Op, Predicate, ReferenceEngine, Result, Row, ScanSpec,
    Schema, Table, TableStats, Value, Visitor,
};

use crate::brief::shorten_runs;
use crate::model::{DirEngine, EngineUnderTest, contents_agree, run_ops, same_error_kind};
use crate::scan_order::compare_scan;
use crate::test_tables::{Answer, scan_rows};

/// Two engines behind one; see the module doc.
pub struct Mirror {
    a: Arc<dyn Engine>,
    b: Arc<dyn Engine>,
    name: String,
}

impl std::fmt::Debug for Mirror {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    /// Mirrors `a` (whose answers are returned) against `b`. Both must accept the same row
    /// size, or the comparison of `RowTooLarge` errors would be meaningless.
    pub fn new(a: Arc<dyn Engine>, b: Arc<dyn Engine>) -> Mirror {
        assert_eq!(
            a.row_size_max(),
            b.row_size_max(),
            "mirrored engines {} and {} accept different row sizes",
            a.name(),
            b.name()
        );
        let name = format!("mirror({},{})", a.name(), b.name());
        Mirror { a, b, name }
    }
}

/// Panics with both answers: the engines diverged.
#[track_caller]
fn diverged(who: &str, call: &str, detail: impl std::fmt::Display) -> ! {
    panic!(
        "{who}: the engines diverged on {}: {}",
        shorten_runs(call),
        shorten_runs(&detail.to_string())
    )
}

/// `a`'s result if the two agree by `same`; panics otherwise.
#[track_caller]
fn agree<T: std::fmt::Debug>(
    who: &str,
    call: &str,
    a: Result<T>,
    b: Result<T>,
    same: impl FnOnce(&T, &T) -> Result<(), String>,
) -> Result<T> {
    match (a, b) {
        (Ok(x), Ok(y)) => match same(&x, &y) {
            Ok(()) => Ok(x),
            Err(detail) => diverged(who, call, detail),
        },
        (Err(x), Err(y)) if same_error_kind(&x, &y) => Err(x),
        (x, y) => diverged(who, call, format!("\n  a: {}\n  b: {}", show(&x), show(&y))),
    }
}

fn show<T: std::fmt::Debug>(result: &Result<T>) -> String {
    match result {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e:?}: {e})"),
    }
}

/// Equality as the detail of a difference.
fn equal<T: PartialEq + std::fmt::Debug>(x: &T, y: &T) -> Result<(), String> {
    if x == y {
        Ok(())
    } else {
        Err(format!("\n  a: {x:?}\n  b: {y:?}"))
    }
}

fn unit_pair<T>(_: &T, _: &T) -> Result<(), String> {
    Ok(())
}

impl Engine for Mirror {
    fn name(&self) -> &str {
        &self.name
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        let call = format!("create_table({})", schema.name);
        let a = self.a.create_table(schema.clone());
        let b = self.b.create_table(schema);
        let (a, b) = pair(&self.name, &call, a, b)?;
        Ok(Arc::new(MirrorTable::new(&self.name, a, b)))
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        let call = format!("open_table({name})");
        let (a, b) = pair(
            &self.name,
            &call,
            self.a.open_table(name),
            self.b.open_table(name),
        )?;
        Ok(Arc::new(MirrorTable::new(&self.name, a, b)))
    }

    fn table_names(&self) -> Vec<String> {
        let (a, b) = (self.a.table_names(), self.b.table_names());
        if let Err(detail) = equal(&a, &b) {
            diverged(&self.name, "table_names()", detail);
        }
        a
    }

    fn checkpoint(&self) -> Result<()> {
        let (a, b) = (self.a.checkpoint(), self.b.checkpoint());
        agree(&self.name, "checkpoint()", a, b, unit_pair)
    }

    /// `a`'s statistics (counters are the engines' own business).
    fn stats(&self) -> Result<EngineStats> {
        self.a.stats()
    }

    /// Checks both engines, then compares every table's contents.
    fn check(&self) -> Result<()> {
        let (a, b) = (self.a.check(), self.b.check());
        agree(&self.name, "check()", a, b, unit_pair)?;
        for name in self.table_names() {
            let a = self.a.open_table(&name)?;
            let b = self.b.open_table(&name)?;
            if let Err(detail) = contents_agree(a.as_ref(), b.as_ref()) {
                diverged(&self.name, &format!("check() of table {name}"), detail);
            }
        }
        Ok(())
    }

    fn row_size_max(&self) -> usize {
        self.a.row_size_max()
    }
}

/// Both tables, if both calls succeeded; the common error if both failed alike.
#[track_caller]
fn pair(
    who: &str,
    call: &str,
    a: Result<Arc<dyn Table>>,
    b: Result<Arc<dyn Table>>,
) -> Result<(Arc<dyn Table>, Arc<dyn Table>)> {
    match (a, b) {
        (Ok(a), Ok(b)) => {
            if a.schema() != b.schema() {
                diverged(
                    who,
                    call,
                    format!("\n  a: {:?}\n  b: {:?}", a.schema(), b.schema()),
                );
            }
            Ok((a, b))
        }
        (Err(x), Err(y)) if same_error_kind(&x, &y) => Err(x),
        (x, y) => diverged(
            who,
            call,
            format!(
                "\n  a: {}\n  b: {}",
                show(&x.map(|_| ())),
                show(&y.map(|_| ()))
            ),
        ),
    }
}

/// One table of a [`Mirror`].
pub struct MirrorTable {
    a: Arc<dyn Table>,
    b: Arc<dyn Table>,
    /// `mirror(a,b).table`, for messages.
    who: String,
}

impl std::fmt::Debug for MirrorTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorTable")
            .field("who", &self.who)
            .finish_non_exhaustive()
    }
}

impl MirrorTable {
    fn new(engine: &str, a: Arc<dyn Table>, b: Arc<dyn Table>) -> MirrorTable {
        let who = format!("{engine}.{}", a.schema().name);
        MirrorTable { a, b, who }
    }
}

impl Table for MirrorTable {
    fn schema(&self) -> &Schema {
        self.a.schema()
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let (a, b) = (self.a.apply(ops), self.b.apply(ops));
        agree(&self.who, &format!("apply({ops:?})"), a, b, equal)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        let (a, b) = (self.a.get(key), self.b.get(key));
        agree(&self.who, &format!("get({key:?})"), a, b, equal)
    }

    /// Runs the scan on both tables, compares, then hands `a`'s rows to `visit` until it
    /// returns `false`; returns how many it was handed.
    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64> {
        let call = format!("scan({spec:?})");
        let a = scan_rows(self.a.as_ref(), spec, predicate, None);
        let b = scan_rows(self.b.as_ref(), spec, predicate, None);
        let unlimited = ScanSpec {
            limit: None,
            projection: None,
            ..spec.clone()
        };
        let answer = agree(&self.who, &call, a, b, |x, y| {
            let (
                Answer::Rows {
                    rows: a_rows,
                    visited: a_visited,
                },
                Answer::Rows {
                    rows: b_rows,
                    visited: b_visited,
                },
            ) = (x, y)
            else {
                unreachable!("scan_rows answers with rows");
            };
            if a_visited != b_visited {
                return Err(format!("visited counts {a_visited} and {b_visited}"));
            }
            let selected = match scan_rows(self.b.as_ref(), &unlimited, predicate, None) {
                Ok(Answer::Rows { rows, .. }) => rows,
                other => return Err(format!("b's unlimited scan gave {other:?}")),
            };
            compare_scan(self.a.schema(), spec, &selected, a_rows, b_rows)
        })?;
        let Answer::Rows { rows, .. } = answer else {
            unreachable!("scan_rows answers with rows");
        };
        let mut visited_count = 0;
        for row in rows {
            visited_count += 1;
            if !visit(row) {
                break;
            }
        }
        Ok(visited_count)
    }

    /// `a`'s statistics, after checking that both count the same rows.
    fn stats(&self) -> Result<TableStats> {
        let (a, b) = (self.a.stats(), self.b.stats());
        agree(&self.who, "stats()", a, b, |x, y| {
            equal(&x.row_count, &y.row_count)
        })
    }

    /// Checks both tables, then compares their contents.
    fn check(&self) -> Result<()> {
        let (a, b) = (self.a.check(), self.b.check());
        agree(&self.who, "check()", a, b, unit_pair)?;
        if let Err(detail) = contents_agree(self.a.as_ref(), self.b.as_ref()) {
            diverged(&self.who, "check()", detail);
        }
        Ok(())
    }

    fn maintain(&self) -> Result<()> {
        let (a, b) = (self.a.maintain(), self.b.maintain());
        agree(&self.who, "maintain()", a, b, unit_pair)
    }
}

/// An engine in a scratch directory mirrored against another engine that lives on across
/// reopens (the reference engine): a reopen closes and reopens only the first.
pub struct MirrorUnderTest {
    a: DirEngine,
    b: Arc<dyn Engine>,
    mirror: Option<Mirror>,
}

impl std::fmt::Debug for MirrorUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MirrorUnderTest")
            .field("a", &self.a)
            .finish_non_exhaustive()
    }
}

impl MirrorUnderTest {
    /// Mirrors the engine in `a` against `b`.
    pub fn new(a: DirEngine, b: Arc<dyn Engine>) -> MirrorUnderTest {
        let mirror = Mirror::new(a.shared(), Arc::clone(&b));
        MirrorUnderTest {
            a,
            b,
            mirror: Some(mirror),
        }
    }
}

impl EngineUnderTest for MirrorUnderTest {
    fn engine(&self) -> &dyn Engine {
        self.mirror.as_ref().expect("the mirror is open")
    }

    fn reopen(&mut self) -> Result<()> {
        self.mirror = None;
        self.a.reopen()?;
        self.mirror = Some(Mirror::new(self.a.shared(), Arc::clone(&self.b)));
        Ok(())
    }
}

/// The body of a mirror proptest: `ops` through a [`Mirror`] of the engine `open` opens (in a
/// fresh scratch directory) and a reference engine, with no other model: the mirror panics
/// at the first difference, and `check()` after every op compares the whole tables.
pub fn check_mirrored(
    ops: &[crate::ops::TestOp],
    open: impl Fn(&Path) -> Result<Box<dyn Engine>> + 'static,
) -> Result<(), TestCaseError> {
    let a = DirEngine::new(open)
        .map_err(|e| TestCaseError::fail(format!("opening the engine: {e}")))?;
    let reference = Arc::new(ReferenceEngine::new(a.engine().row_size_max()));
    let mut mirrored = MirrorUnderTest::new(a, reference);
    run_ops(ops, &mut mirrored).map_err(|f| TestCaseError::fail(f.to_string()))
}
