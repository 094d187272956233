//! storelab's test kit (dev-only): what every engine's tests share, so that "the heap and
//! the clustered engine agree with the reference engine, and survive a crash at any point"
//! is one test written once and run against each.
//!
//! ```text
//!   crates/<engine>/tests/model.rs     crates/<engine>/tests/crash.rs
//!          |                                   |
//!   ops:  one proptest strategy of TestOps     crash: seeded Workload of Steps, FaultDevice
//!          |                                   |      cuts (every sync point, random I/O
//!   model: run_against_reference               |      points, torn and lost writes)
//!          |    TestTables::execute            |      recovery checked against states[m]
//!          |    on the engine and on  ---------+--> ReferenceEngine (crates/table)
//!          |    the ReferenceEngine            |
//!   mirror: Mirror = engine a + engine b, panics at the first difference
//!   scan_order: which part of a scan's order the contract promises (compare_scan)
//!   schema: the two test tables and their rows
//! ```
//!
//! # The test tables ([`schema`])
//!
//! Table `t` has a primary key `id`, a non-unique index `by_a`, a unique index `by_b`, a
//! non-indexed `c` and a padding column; table `u` has the same columns without `id` and is
//! keyed by hidden row ids. Keys come from small domains so that random ops collide.
//!
//! # One op vocabulary, one strategy ([`ops`])
//!
//! [`ops::TestOp`] covers the whole `Engine`/`Table` API with small numbers (a failing case
//! prints readably and shrinks well): single inserts, updates and deletes, atomic batches (a
//! third of them built to fail half-way), point gets, secondary lookups, primary, secondary
//! (plain and bitmap) and full scans with bounds, reverse, limit, projection, predicate and a
//! visitor that stops early, `maintain`, `checkpoint` and a clean reopen.
//! [`ops::op_sequence`] draws sequences of them.
//!
//! # The checker ([`model`])
//!
//! [`model::run_against_reference`] runs a sequence on an [`model::EngineUnderTest`] and on
//! a [`storelab_table::ReferenceEngine`], and after every op compares the answers, calls
//! `check()` and compares the tables' contents; the first difference is a
//! [`model::ModelFailure`] naming the step and the op. [`model::check_model`] is the whole
//! body of an engine's model proptest.
//!
//! # Comparing answers ([`scan_order`])
//!
//! Errors compare by variant (`DuplicateKey` = `DuplicateKey`), everything else exactly,
//! except scans, whose order the contract only partly fixes: primary-key scans compare
//! exactly; full scans and bitmap scans as multisets; plain secondary scans group by group of
//! equal index keys, each group in any order; with a limit, any rows of the last group reached.
//!
//! # The mirror ([`mirror`])
//!
//! [`mirror::Mirror`] implements `Engine` by running every call on two engines; it panics
//! at the first difference (an error value could be swallowed by a caller expecting one).
//!
//! # The crash harness ([`crash`])
//!
//! Given an opener `Fn(&Path, &StorageConfig) -> Result<Box<dyn Engine>>`, it puts a
//! `FaultDevice` under the engine, runs a seeded workload in commit mode `sync`, cuts the
//! power at every sync point and at seeded random points (torn and lost unsynced writes),
//! recovers, and checks that the state is exactly that after a prefix of the workload
//! containing every acknowledged step, in every torn-page mode (without protection, a torn
//! page may instead be refused with a corruption error).
//!
//! # Reproducing a failure
//!
//! - Model and mirror tests: proptest prints the minimal failing op sequence and records its
//!   seed in `tests/<file>.proptest-regressions` beside the test; a rerun tries it first.
//!   Keep a minimised case as a named regression test (a few `TestOp`s and
//!   [`model::check_model`]).
//! - Crash tests: the panic names the torn-page mode, the workload seed, the cut and the
//!   crash seed; [`crash::crash_once`] with those reruns exactly that case.
//! - `STORELAB_LONG=1` runs 1000 model cases and 1000 random crash points per torn-page mode
//!   ([`long`]).
//!
//! # Invariants the kit relies on
//!
//! 1. The reference engine is right: it is small and obviously correct
//!    (`crates/table/src/reference.rs`), and its own `check()` runs after every op.
//! 2. Runs are deterministic: op sequences come from proptest's seeded runner, crash
//!    workloads and cuts from `StdRng::seed_from_u64`, the fault device completes I/O in
//!    submission order, and the model and crash tests use the `sync` I/O backend.
//! 3. Every value of `c` the crash workload writes is unique to one op, so a lost, partial
//!    or resurrected op makes a state that matches no prefix.
//!
//! # Simplified versus the real thing
//!
//! - One thread: no op runs concurrently with another (concurrency tests are the engines'
//!   own, as the B+tree's stress test); the mirror compares answers, not timing.
//! - The crash harness's catalog file bypasses the fault device (see [`crash`]).
//! - Golden-script tests shared by all engines (toydb's) are not here yet; the proptest
//!   sequences and the named regression tests take their place.
//!
//! # Further reading
//!
//! toydb's `Mirror` engine and its golden-script tests; TigerBeetle's VOPR (deterministic
//! simulation of storage faults); the `proptest` book on state machine testing.

pub mod brief;
pub mod crash;
pub mod mirror;
pub mod model;
pub mod ops;
pub mod scan_order;
pub mod schema;
pub mod scratch;
pub mod test_tables;

/// The proptest crate, so that engine tests use the same version as the kit's strategies.
pub use proptest;

/// Whether the long versions of the tests run (`STORELAB_LONG=1`).
pub fn long() -> bool {
    std::env::var_os("STORELAB_LONG").is_some_and(|v| v == "1")
}
