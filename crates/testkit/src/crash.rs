//! The crash harness: any engine, a seeded workload through the `Table` API, the power cut
//! at every sync point and at seeded random I/O points, recovery, and a check that what came
//! back is exactly the state after a prefix of the workload containing every acknowledged
//! step.
//!
//! The method is that of the log's and the B+tree's crash suites (`crates/wal/tests/crash.rs`,
//! `crates/btree/tests/crash.rs`, STYLE.md section 7), lifted to the `Engine` API:
//!
//! ```text
//!   Workload::new          steps 0..n drawn from a seed and run once on the ReferenceEngine:
//!                          its answer to each step, states[m] = the tables after m steps
//!   reference_run          the whole workload on a FaultDevice: S syncs and N I/Os after
//!                          the setup (the two create_table steps)
//!   for each cut:          fresh directory, fresh FaultDevice(seed)
//!     setup                open the engine, create the tables; then arm the cut
//!     run                  steps until the first error the reference did not give
//!                          (acked = steps answered, attempted = acked + the one in flight)
//!     crash                power off, drop the engine, FaultDevice::crash(options)
//!     recover              open on the same device; check(); read the state
//!     verify               state == states[m] for some m in acked..=attempted
//!     crash again at once  must come back as states[m]: recovery left a durable state
//!     continue             steps m..m+3 on the recovered engine; a clean crash keeps them
//! ```
//!
//! - **Workload** ([`Workload`]). Create the two test tables, then batches of one to three
//!   writes (in the first half mostly inserts; updates of indexed and non-indexed columns,
//!   growing rows, deletes; some batches fail on a duplicate key and must change nothing), a
//!   checkpoint every [`CHECKPOINT_EVERY`] steps and now and then `maintain()`. Every op
//!   writes a value of `c` unique to it, so a lost, partial or resurrected step matches no
//!   state. Commit mode `sync`: an answer means durable. 8 KiB pages (two 4 KiB sectors, so
//!   a page write can tear) and a pool of 16 frames (pages are written back between
//!   checkpoints).
//! - **Every sync point** ([`crash_at_every_sync_point`]). For each `k` in `1..=S`, the
//!   power goes off right after sync `k` and the crash keeps exactly the synced data.
//! - **Seeded random points** ([`crash_at_random_points`], [`random_cut`]). Per seed: the
//!   power goes off after a random sync, or a random sync fails (what it was to make durable
//!   stays pending), or the power goes off at a random I/O; the crash keeps each unsynced
//!   write with probability one half, torn at 4 KiB sectors ([`TORN_CRASH`]).
//! - **State** ([`read_state`]). Per table: absent (not created yet), or its rows by key:
//!   a primary-key scan for the keyed table, `get` of every row id for the unkeyed one; `get`
//!   of every key, a full scan and plain and bitmap scans of both secondary indexes must
//!   agree with those rows, and `Engine::check` must pass first: every index agrees with its
//!   table.
//! - **Torn-page modes** ([`TORN_PAGE_MODES`]). Full-page images and the doublewrite area
//!   must repair every torn page. With [`TornPageMode::None`] a torn page may be beyond
//!   repair: then opening, `check()` or reading must fail with a corruption error
//!   ([`is_detected_corruption`], counted as `unrepairable`), never return other data.
//!
//! # Reproducing a failure
//!
//! Every panic message names the torn-page mode, the workload seed, the cut and the crash
//! seed. With the test's opener `open` and `config = CrashConfig::new(mode)`:
//!
//! ```text
//!   let w = workload(&open, &config);
//!   crash_once(&open, &config, &w, Cut::AtIo(17), 42, &TORN_CRASH);
//! ```
//!
//! reruns exactly that case: the workload, the fault device and the sync backend are
//! deterministic. CI runs [`CrashConfig::new`]'s bounded sizes, `STORELAB_LONG=1` a longer
//! workload and 1000 random points per mode.
//!
//! # Simplified
//!
//! - The catalog file (`catalog.json`) is written with `std::fs`, not through the fault
//!   device, so it is always "durable"; it is replaced atomically and synced before
//!   `create_table` returns, which is what the real disk would leave too.
//! - Cuts may fall inside the setup (opening the engine, creating the tables) unless
//!   [`CrashConfig::cut_in_setup`] is cleared.
//! - The power goes off before the whole batch of I/Os containing the chosen one, not in its
//!   middle.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_pager::PageSize;
use storelab_pager::device::{CrashOptions, CrashReport, FaultDevice};
use storelab_pager::io::{
    CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, OpenOptions, SyncBackend,
};
use storelab_table::{
    BatchOutcome, Engine, Error, IndexScanMethod, Op, ReferenceEngine, Result, Row, ScanSpec,
    StorageConfig, Table,
};
use storelab_wal::{CommitMode, TornPageMode};

use crate::brief::shorten_runs;
use crate::model::same_error_kind;
use crate::ops::{Change, WriteOp};
use crate::scan_order::sorted;
use crate::schema::{
    A_DOMAIN, B_DOMAIN, ID_DOMAIN, Pad, RowSpec, SecondaryIndex, TABLE_KINDS, TableKind,
};
use crate::scratch::scratch_dir;
use crate::test_tables::{scan_rows, to_op};

/// Opens (creating or recovering) an engine in a directory with the given storage settings;
/// the harness puts its fault device in `backend_override`.
pub type EngineOpener = dyn Fn(&Path, &StorageConfig) -> Result<Box<dyn Engine>>;

/// Every torn-page mode, in the order the harness runs them.
pub const TORN_PAGE_MODES: [TornPageMode; 3] = [
    TornPageMode::FullPageImages,
    TornPageMode::Doublewrite,
    TornPageMode::None,
];

/// The first steps of every workload: creating the keyed and the unkeyed table.
pub const SETUP_STEPS: usize = 2;

/// A checkpoint every this many steps.
pub const CHECKPOINT_EVERY: usize = 10;

/// What a crash run does; [`CrashConfig::new`] gives the CI or long (`STORELAB_LONG=1`)
/// sizes.
#[derive(Clone, Debug)]
pub struct CrashConfig {
    /// Torn-page protection of the log.
    pub torn_page: TornPageMode,
    /// Steps of the workload (the two table creations included).
    pub step_count: usize,
    /// The workload's seed.
    pub workload_seed: u64,
    /// Seeds `0..random_point_count` for [`crash_at_random_points`].
    pub random_point_count: u64,
    /// Page size: 8 KiB, so a page write is two 4 KiB sectors and can tear.
    pub page_size: PageSize,
    /// Buffer pool frames: few, so pages are written back between checkpoints.
    pub pool_frames: usize,
    /// Steps run on a recovered engine before the last crash.
    pub continue_steps: usize,
    /// Whether cuts may fall in the setup (opening the fresh engine and creating the two
    /// tables, steps `0..SETUP_STEPS`). When off, the setup runs before the cut is armed, and
    /// sync points and I/Os are counted from its end.
    pub cut_in_setup: bool,
}

impl CrashConfig {
    /// The CI sizes (a 40-step workload, 100 random points), or with `STORELAB_LONG=1` a
    /// 100-step workload and 1000 random points.
    pub fn new(torn_page: TornPageMode) -> CrashConfig {
        let long = crate::long();
        CrashConfig {
            torn_page,
            step_count: if long { 100 } else { 40 },
            workload_seed: 0x5EED_C4A5,
            random_point_count: if long { 1000 } else { 100 },
            page_size: PageSize::K8,
            pool_frames: 16,
            continue_steps: 3,
            cut_in_setup: true,
        }
    }

    /// The storage settings of a crash run on `backend`: synced commits, this mode, 64 KiB
    /// log segments (segment switches happen), checkpoints only when the workload asks.
    pub fn storage_config(&self, backend: Arc<dyn IoBackend>) -> StorageConfig {
        StorageConfig {
            page_size: self.page_size,
            pool_bytes: self.pool_frames * self.page_size.bytes(),
            backend_override: Some(backend),
            commit_mode: CommitMode::Sync,
            torn_page: self.torn_page,
            checkpoint_wal_bytes: 0,
            wal_segment_size: 64 * 1024,
            ..StorageConfig::default()
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The workload and its model.
// ---------------------------------------------------------------------------------------------

/// One step of the crash workload.
#[derive(Clone, Debug)]
pub enum Step {
    /// `Engine::create_table` of a test table.
    CreateTable(TableKind),
    /// `Table::apply` of a batch.
    Apply(TableKind, Vec<Op>),
    /// `Engine::checkpoint`.
    Checkpoint,
    /// `Table::maintain`.
    Maintain(TableKind),
}

/// Both tables' contents: absent, or rows by key (primary key or row id), in key order.
pub type State = BTreeMap<TableKind, Option<Vec<(i64, Row)>>>;

/// The steps, the reference's answer to each, and the state after each prefix.
pub struct Workload {
    /// The steps.
    pub steps: Vec<Step>,
    /// The reference engine's answer to each step (`None`: a step without an outcome).
    pub expected: Vec<Result<Option<BatchOutcome>>>,
    /// `states[m]`: the contents after exactly `m` steps.
    pub states: Vec<State>,
    /// The largest row id the unkeyed table can have given out.
    pub row_id_max: i64,
    /// The seed the steps were drawn from.
    pub seed: u64,
}

impl std::fmt::Debug for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workload")
            .field("seed", &self.seed)
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

impl Workload {
    /// Draws `config.step_count` steps from `config.workload_seed` for an engine accepting
    /// rows of up to `row_size_max` bytes, and runs them on a reference engine.
    pub fn new(config: &CrashConfig, row_size_max: usize) -> Workload {
        let seed = config.workload_seed;
        let mut rng = StdRng::seed_from_u64(seed);
        let reference = ReferenceEngine::new(row_size_max);
        let mut tables: BTreeMap<TableKind, Arc<dyn Table>> = BTreeMap::new();
        let mut steps = Vec::with_capacity(config.step_count);
        let mut expected = Vec::with_capacity(config.step_count);
        let mut row_id_max = 0;
        let mut states = vec![read_state(&reference, 0).expect("the reference reads")];
        for i in 0..config.step_count {
            let step = match i {
                0 => Step::CreateTable(TableKind::Keyed),
                1 => Step::CreateTable(TableKind::Unkeyed),
                _ if i % CHECKPOINT_EVERY == 0 => Step::Checkpoint,
                _ if rng.random_range(0..15) == 0 => Step::Maintain(random_table(&mut rng)),
                _ => {
                    let kind = random_table(&mut rng);
                    let present: Vec<i64> = states.last().expect("states[0] exists")[&kind]
                        .iter()
                        .flatten()
                        .map(|(key, _)| *key)
                        .collect();
                    let growing = i < config.step_count / 2;
                    let shape = BatchShape {
                        kind,
                        step: i,
                        growing,
                        present: &present,
                        row_id_max,
                        row_size_max,
                    };
                    let writes = random_batch(&mut rng, &shape);
                    row_id_max += writes
                        .iter()
                        .filter(|w| matches!(w, WriteOp::Insert(_)))
                        .count() as i64;
                    let ops = writes
                        .iter()
                        .map(|w| to_op(kind, w, row_size_max))
                        .collect();
                    Step::Apply(kind, ops)
                }
            };
            expected.push(run_step(&reference, &mut tables, &step));
            states.push(read_state(&reference, row_id_max).expect("the reference reads"));
            steps.push(step);
        }
        Workload {
            steps,
            expected,
            states,
            row_id_max,
            seed,
        }
    }

    /// The number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether there are no steps.
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The largest `m` in `lo..=hi` whose state is `found`, or what differs from the closest.
    pub fn prefix(&self, found: &State, lo: usize, hi: usize) -> Result<usize, String> {
        if let Some(m) = (lo..=hi).rev().find(|&m| self.states[m] == *found) {
            return Ok(m);
        }
        let closest = (lo..=hi)
            .min_by_key(|&m| state_diff(&self.states[m], found).len())
            .expect("lo <= hi");
        let diff = state_diff(&self.states[closest], found);
        Err(format!(
            "the recovered state is the state after no m in {lo}..={hi}; closest m = \
             {closest}, {} differences:\n  {}",
            diff.len(),
            diff.iter()
                .take(8)
                .cloned()
                .collect::<Vec<_>>()
                .join("\n  ")
        ))
    }
}

/// The differences between an expected and a found state, one line each.
fn state_diff(want: &State, found: &State) -> Vec<String> {
    let mut lines = Vec::new();
    for kind in TABLE_KINDS {
        let (w, f) = (&want[&kind], &found[&kind]);
        match (w, f) {
            (Some(w), Some(f)) => {
                let w: BTreeMap<i64, &Row> = w.iter().map(|(k, r)| (*k, r)).collect();
                let f: BTreeMap<i64, &Row> = f.iter().map(|(k, r)| (*k, r)).collect();
                let keys: std::collections::BTreeSet<i64> =
                    w.keys().chain(f.keys()).copied().collect();
                for key in keys {
                    if w.get(&key) != f.get(&key) {
                        lines.push(format!(
                            "table {} key {key}: found {:?}, expected {:?}",
                            kind.name(),
                            f.get(&key),
                            w.get(&key)
                        ));
                    }
                }
            }
            (w, f) if w.is_some() != f.is_some() => lines.push(format!(
                "table {}: found {}, expected {}",
                kind.name(),
                if f.is_some() { "present" } else { "absent" },
                if w.is_some() { "present" } else { "absent" }
            )),
            _ => {}
        }
    }
    lines
}

fn random_table(rng: &mut StdRng) -> TableKind {
    if rng.random_range(0..4) == 0 {
        TableKind::Unkeyed
    } else {
        TableKind::Keyed
    }
}

/// What a batch of the workload is drawn for.
struct BatchShape<'a> {
    kind: TableKind,
    step: usize,
    /// The first half of the workload: mostly inserts.
    growing: bool,
    /// Keys (or row ids) of the rows present before the batch.
    present: &'a [i64],
    /// The largest row id given out so far.
    row_id_max: i64,
    row_size_max: usize,
}

/// One to three writes of step `shape.step`: in the first half mostly inserts, then a mix;
/// updates and deletes mostly of present rows. Every row and every change of `c` gets a
/// value of `c` no other op writes (`step * 4 + op`), so each op leaves a unique mark.
///
/// One restriction on the unkeyed table: its batches insert at most once, as their last op.
/// The table contract lets an engine skip hidden row ids after a crash, and the heap does
/// skip the ids of inserts that a failed batch took back (their deleted versions are still in
/// its primary index); the harness compares ids exactly, so it avoids that case.
fn random_batch(rng: &mut StdRng, shape: &BatchShape<'_>) -> Vec<WriteOp> {
    let len = match rng.random_range(0..10) {
        0..7 => 1,
        7..9 => 2,
        _ => 3,
    };
    let pad = |rng: &mut StdRng| {
        if rng.random_range(0..5) == 0 {
            Pad::Len(rng.random_range(500..shape.row_size_max / 3))
        } else {
            Pad::Len(rng.random_range(0..200))
        }
    };
    let key = |rng: &mut StdRng| {
        if !shape.present.is_empty() && rng.random_range(0..8) != 0 {
            return shape.present[rng.random_range(0..shape.present.len())];
        }
        match shape.kind {
            TableKind::Keyed => rng.random_range(0..ID_DOMAIN),
            TableKind::Unkeyed => rng.random_range(1..=shape.row_id_max.max(1)),
        }
    };
    let insert_pct = if shape.growing { 70 } else { 35 };
    let mut writes = Vec::with_capacity(len);
    for op in 0..len {
        let c = (shape.step * 4 + op) as i64;
        let roll = rng.random_range(0..100);
        let write = if roll < insert_pct {
            WriteOp::Insert(RowSpec {
                id: rng.random_range(0..ID_DOMAIN),
                a: rng.random_range(0..A_DOMAIN),
                b: rng.random_range(0..B_DOMAIN),
                c,
                pad: pad(rng),
            })
        } else if roll < insert_pct + (100 - insert_pct) * 3 / 5 {
            let mut changes = vec![Change::C(c)];
            match rng.random_range(0..4) {
                0 => changes.push(Change::A(rng.random_range(0..A_DOMAIN))),
                1 => changes.push(Change::B(rng.random_range(0..B_DOMAIN))),
                2 => changes.push(Change::Pad(pad(rng))),
                _ => {}
            }
            WriteOp::Update {
                key: key(rng),
                changes,
            }
        } else {
            WriteOp::Delete { key: key(rng) }
        };
        writes.push(write);
    }
    if shape.kind == TableKind::Unkeyed {
        let last_insert = writes
            .iter()
            .rev()
            .find(|w| matches!(w, WriteOp::Insert(_)))
            .cloned();
        writes.retain(|w| !matches!(w, WriteOp::Insert(_)));
        writes.extend(last_insert);
    }
    writes
}

/// Performs one step; `tables` holds the tables created or opened so far.
fn run_step(
    engine: &dyn Engine,
    tables: &mut BTreeMap<TableKind, Arc<dyn Table>>,
    step: &Step,
) -> Result<Option<BatchOutcome>> {
    match step {
        Step::CreateTable(kind) => {
            let table = engine.create_table(kind.schema())?;
            tables.insert(*kind, table);
            Ok(None)
        }
        Step::Apply(kind, ops) => table_of(tables, *kind)?.apply(ops).map(Some),
        Step::Checkpoint => engine.checkpoint().map(|()| None),
        Step::Maintain(kind) => table_of(tables, *kind)?.maintain().map(|()| None),
    }
}

fn table_of(
    tables: &BTreeMap<TableKind, Arc<dyn Table>>,
    kind: TableKind,
) -> Result<&Arc<dyn Table>> {
    tables.get(&kind).ok_or_else(|| Error::NoSuchTable {
        name: kind.name().to_string(),
    })
}

/// Why a state could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// The engine returned an error.
    Engine(Error),
    /// Two ways of reading the same rows disagree.
    Inconsistent(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Engine(e) => write!(f, "{e}"),
            ReadError::Inconsistent(what) => write!(f, "{}", shorten_runs(what)),
        }
    }
}

impl From<Error> for ReadError {
    fn from(e: Error) -> ReadError {
        ReadError::Engine(e)
    }
}

fn rows_of(table: &dyn Table, spec: &ScanSpec) -> Result<Vec<Row>> {
    match scan_rows(table, spec, None, None)? {
        crate::test_tables::Answer::Rows { rows, .. } => Ok(rows),
        other => unreachable!("a scan answers with rows, not {other:?}"),
    }
}

/// Both tables' contents, read several ways that must agree (see the module doc); row ids of
/// the unkeyed table are looked up in `1..=row_id_max`.
pub fn read_state(engine: &dyn Engine, row_id_max: i64) -> Result<State, ReadError> {
    let mut state = State::new();
    for kind in TABLE_KINDS {
        let table = match engine.open_table(kind.name()) {
            Ok(table) => table,
            Err(Error::NoSuchTable { .. }) => {
                state.insert(kind, None);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let by_key = ScanSpec {
            reverse: true,
            ..ScanSpec::default()
        };
        let mut scanned = rows_of(table.as_ref(), &by_key)?;
        scanned.reverse();
        let keys: Vec<i64> = match kind {
            TableKind::Keyed => (0..ID_DOMAIN).collect(),
            TableKind::Unkeyed => (1..=row_id_max).collect(),
        };
        let mut rows = Vec::new();
        for key in keys {
            if let Some(row) = table.get(&kind.key(key))? {
                rows.push((key, row));
            }
        }
        let got: Vec<Row> = rows.iter().map(|(_, r)| r.clone()).collect();
        if got != scanned {
            return Err(ReadError::Inconsistent(format!(
                "table {}: get of every key found {got:?}, a key-order scan {scanned:?}",
                kind.name()
            )));
        }
        let mut others = vec![("full scan", ScanSpec::default())];
        for index in [SecondaryIndex::ByA, SecondaryIndex::ByB] {
            for method in [IndexScanMethod::Plain, IndexScanMethod::Bitmap] {
                let spec = ScanSpec {
                    index: Some(index.name().to_string()),
                    lower: Bound::Unbounded,
                    upper: Bound::Unbounded,
                    method,
                    ..ScanSpec::default()
                };
                others.push(("index scan", spec));
            }
        }
        for (what, spec) in others {
            let found = rows_of(table.as_ref(), &spec)?;
            if sorted(&found) != sorted(&scanned) {
                return Err(ReadError::Inconsistent(format!(
                    "table {}: {what} {spec:?} found {found:?}, the rows are {scanned:?}",
                    kind.name()
                )));
            }
        }
        state.insert(kind, Some(rows));
    }
    Ok(state)
}

// ---------------------------------------------------------------------------------------------
// The fault device and cuts.
// ---------------------------------------------------------------------------------------------

/// Where the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cut {
    /// Right after sync `k` (1-based) succeeds.
    AfterSync(u64),
    /// Sync `k` fails: what it was to make durable stays pending (and may be lost or torn).
    DuringSync(u64),
    /// Before the batch of I/Os containing I/O `n` (1-based): every I/O from there fails.
    AtIo(u64),
    /// Never (the reference run).
    Never,
}

/// The fault device with a counter of I/Os that cuts the power at a chosen one.
struct CutDevice {
    device: Arc<FaultDevice>,
    /// The I/O (absolute, 1-based) before whose batch the power goes off; 0: never.
    cut_at_io: AtomicU64,
    io_count: AtomicU64,
}

impl IoBackend for CutDevice {
    fn name(&self) -> String {
        self.device.name()
    }

    fn open(&self, path: &Path, options: &OpenOptions) -> storelab_pager::Result<Arc<IoFile>> {
        self.device.open(path, options)
    }

    fn submit(
        &self,
        requests: Vec<IoRequest>,
        sink: &Arc<CompletionSink>,
    ) -> storelab_pager::Result<()> {
        let before = self
            .io_count
            .fetch_add(requests.len() as u64, Ordering::SeqCst);
        let cut_at = self.cut_at_io.load(Ordering::SeqCst);
        if cut_at > before && cut_at <= before + requests.len() as u64 {
            self.device.power_off();
        }
        self.device.submit(requests, sink)
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        self.device.wait(sink)
    }

    fn sync(&self, file: &IoFile) -> storelab_pager::Result<()> {
        self.device.sync(file)
    }

    fn file_len(&self, file: &IoFile) -> storelab_pager::Result<u64> {
        self.device.file_len(file)
    }

    fn set_len(&self, file: &IoFile, len: u64) -> storelab_pager::Result<()> {
        self.device.set_len(file, len)
    }
}

/// One engine directory on one fault device.
struct Env {
    dir: tempfile::TempDir,
    device: Arc<FaultDevice>,
    backend: Arc<CutDevice>,
    cut: Cut,
    /// The device's sync count when the cut was armed.
    sync_base: u64,
}

impl Env {
    /// A fresh directory on a fresh fault device with `seed`; no cut armed yet.
    fn new(seed: u64) -> Env {
        let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed));
        Env {
            dir: scratch_dir("storelab-crash"),
            backend: Arc::new(CutDevice {
                device: Arc::clone(&device),
                cut_at_io: AtomicU64::new(0),
                io_count: AtomicU64::new(0),
            }),
            device,
            cut: Cut::Never,
            sync_base: 0,
        }
    }

    /// Arms `cut`, counting its sync or I/O from now.
    fn arm(&mut self, cut: Cut) {
        self.cut = cut;
        self.sync_base = self.device.sync_count();
        match cut {
            Cut::AfterSync(k) => self.device.power_off_after_sync(k),
            Cut::DuringSync(k) => self.device.fail_nth_sync(k),
            Cut::AtIo(n) => self
                .backend
                .cut_at_io
                .store(self.io_count() + n, Ordering::SeqCst),
            Cut::Never => {}
        }
    }

    /// Syncs and I/Os so far.
    fn sync_count(&self) -> u64 {
        self.device.sync_count()
    }

    fn io_count(&self) -> u64 {
        self.backend.io_count.load(Ordering::SeqCst)
    }

    fn open(&self, open: &EngineOpener, config: &CrashConfig) -> Result<Box<dyn Engine>> {
        let backend = Arc::clone(&self.backend) as Arc<dyn IoBackend>;
        open(self.dir.path(), &config.storage_config(backend))
    }

    /// Whether the cut has happened (so errors are expected).
    fn cut_reached(&self) -> bool {
        match self.cut {
            Cut::DuringSync(k) => {
                self.device.sync_count() >= self.sync_base + k || self.device.is_powered_off()
            }
            _ => self.device.is_powered_off(),
        }
    }

    /// Cuts the power, drops the engine (whose last writes fail), and crashes the device.
    fn crash(
        &self,
        engine: Option<Box<dyn Engine>>,
        tables: BTreeMap<TableKind, Arc<dyn Table>>,
        options: &CrashOptions,
    ) -> CrashReport {
        self.device.power_off();
        // Disarm an I/O cut not reached: recovery's I/O must not trip it.
        self.backend.cut_at_io.store(0, Ordering::SeqCst);
        drop(tables);
        drop(engine);
        self.device
            .crash(options)
            .expect("the fault device crashes")
    }
}

// ---------------------------------------------------------------------------------------------
// Crash cycles.
// ---------------------------------------------------------------------------------------------

/// How far a run got: steps answered (`..acked`) and steps begun (`..attempted`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Steps whose call returned (with the expected answer).
    pub acked: usize,
    /// Steps begun.
    pub attempted: usize,
}

/// Runs steps `range`; stops at the first error the reference did not give (returned).
/// A wrong answer panics: it is a bug with or without a crash.
fn run(
    engine: &dyn Engine,
    tables: &mut BTreeMap<TableKind, Arc<dyn Table>>,
    workload: &Workload,
    range: std::ops::Range<usize>,
    progress: &mut Progress,
    what: &str,
) -> Result<(), String> {
    for i in range {
        progress.attempted = i + 1;
        let got = run_step(engine, tables, &workload.steps[i]);
        match (&got, &workload.expected[i]) {
            (Ok(got), Ok(want)) => {
                assert_eq!(
                    got,
                    want,
                    "{what}: step {i} ({}) answered differently from the reference",
                    shorten_runs(&format!("{:?}", workload.steps[i]))
                );
            }
            (Err(got), Err(want)) if same_error_kind(got, want) => {}
            (Ok(got), Err(want)) => panic!(
                "{what}: step {i} ({}) succeeded with {got:?}; the reference refused it: {want}",
                shorten_runs(&format!("{:?}", workload.steps[i]))
            ),
            (Err(e), _) => return Err(format!("step {i}: {e}")),
        }
        progress.acked = i + 1;
    }
    Ok(())
}

/// Whether an error says that bytes on disk are damaged (a checksum, a page or record that
/// does not decode, a page the log cannot repair): the only acceptable failure of recovery in
/// [`TornPageMode::None`].
pub fn is_detected_corruption(e: &Error) -> bool {
    fn pager(e: &storelab_pager::Error) -> bool {
        matches!(
            e,
            storelab_pager::Error::ChecksumMismatch { .. }
                | storelab_pager::Error::CorruptPage { .. }
        )
    }
    fn wal(e: &storelab_wal::Error) -> bool {
        match e {
            storelab_wal::Error::UnrepairablePage { .. } => true,
            storelab_wal::Error::Pager(p) => pager(p),
            _ => false,
        }
    }
    match e {
        Error::Corrupt { .. } => true,
        Error::Pager(p) => pager(p),
        Error::Wal(w) => wal(w),
        Error::BTree(storelab_btree::Error::Corrupt { .. }) => true,
        Error::BTree(storelab_btree::Error::Pager(p)) => pager(p),
        Error::BTree(storelab_btree::Error::Wal(w)) => wal(w),
        _ => false,
    }
}

/// What a series of crash cycles saw.
#[derive(Clone, Debug, Default)]
pub struct CrashTally {
    /// Crash cycles run.
    pub cycles: usize,
    /// Cycles whose recovery refused a torn page with a corruption error
    /// ([`TornPageMode::None`] only).
    pub unrepairable: usize,
    /// Cycles whose recovered state lacked the step in flight.
    pub short_of_attempted: usize,
    /// Unsynced writes kept whole by the crashes.
    pub kept_writes: usize,
    /// Unsynced writes torn by the crashes.
    pub torn_writes: usize,
    /// Unsynced writes lost by the crashes.
    pub dropped_writes: usize,
    /// Wall time.
    pub elapsed: Duration,
}

impl std::fmt::Display for CrashTally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cycles in {:.1?}: {} unrepairable (refused with a corruption error), {} \
             without the step in flight; unsynced writes kept {}, torn {}, lost {}",
            self.cycles,
            self.elapsed,
            self.unrepairable,
            self.short_of_attempted,
            self.kept_writes,
            self.torn_writes,
            self.dropped_writes
        )
    }
}

/// What one crash cycle found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CycleOutcome {
    /// Recovered to the state after `m` steps, then continued and recovered again.
    Recovered {
        /// The prefix recovered.
        m: usize,
        /// How far the run before the crash got.
        progress: Progress,
    },
    /// Recovery (or reading the recovered state) failed with a corruption error, in
    /// [`TornPageMode::None`] after a torn write.
    Unrepairable,
}

/// What recovering one crash needs: the directory and device, the engine, the model.
struct Recovery<'a> {
    env: &'a Env,
    open: &'a EngineOpener,
    config: &'a CrashConfig,
    workload: &'a Workload,
}

impl Recovery<'_> {
    /// Reopens after a crash and checks that the state is the model's after some `m` in
    /// `lo..=hi`; returns the engine and `m`. `None`: a corruption error, accepted when
    /// `corruption_allowed` (see [`is_detected_corruption`]). Panics otherwise.
    fn recover(
        &self,
        lo: usize,
        hi: usize,
        corruption_allowed: bool,
        what: &str,
    ) -> Option<(Box<dyn Engine>, usize)> {
        let fail = |stage: &str, e: &Error| -> Option<(Box<dyn Engine>, usize)> {
            if corruption_allowed && is_detected_corruption(e) {
                return None;
            }
            panic!("{what}: {stage} failed: {e}");
        };
        let engine = match self.env.open(self.open, self.config) {
            Ok(engine) => engine,
            Err(e) => return fail("recovery", &e),
        };
        if let Err(e) = engine.check() {
            return fail("check() after recovery", &e);
        }
        let state = match read_state(engine.as_ref(), self.workload.row_id_max) {
            Ok(state) => state,
            Err(ReadError::Engine(e)) => return fail("reading the recovered state", &e),
            Err(e @ ReadError::Inconsistent(_)) => panic!("{what}: the recovered engine: {e}"),
        };
        match self.workload.prefix(&state, lo, hi) {
            Ok(m) => Some((engine, m)),
            Err(e) => panic!("{what}: {}", shorten_runs(&e)),
        }
    }
}

/// One crash cycle (see the module doc): a fresh engine on a fresh fault device with `seed`
/// loses power at `cut`, crashes with `options`, recovers, crashes again at once, continues
/// and crashes cleanly. Panics with the case's parameters on any failure.
pub fn crash_once(
    open: &EngineOpener,
    config: &CrashConfig,
    workload: &Workload,
    cut: Cut,
    seed: u64,
    options: &CrashOptions,
) -> (CycleOutcome, CrashReport) {
    let what = format!(
        "torn={} workload seed {:#x} ({} steps), cut {cut:?}, crash seed {seed} {options:?}",
        config.torn_page,
        workload.seed,
        workload.len()
    );
    let mut env = Env::new(seed);
    let mut progress = Progress::default();
    let mut tables = BTreeMap::new();
    if config.cut_in_setup {
        env.arm(cut);
    }
    let (engine, stopped_by) = match env.open(open, config) {
        Ok(engine) => {
            if !config.cut_in_setup {
                setup(
                    &env,
                    engine.as_ref(),
                    &mut tables,
                    workload,
                    &mut progress,
                    &what,
                );
                env.arm(cut);
            }
            let stopped = run(
                engine.as_ref(),
                &mut tables,
                workload,
                progress.acked..workload.len(),
                &mut progress,
                &what,
            )
            .err();
            (Some(engine), stopped)
        }
        Err(e) => (None, Some(format!("open: {e}"))),
    };
    if let Some(e) = &stopped_by {
        assert!(
            env.cut_reached(),
            "{what}: the workload failed before the cut ({progress:?}): {e}"
        );
    }
    let report = env.crash(engine, tables, options);
    let what = format!("{what} ({progress:?}, stopped by {stopped_by:?}, {report:?})");
    let corruption_allowed = config.torn_page == TornPageMode::None && report.torn_count > 0;

    // Recovery: every acknowledged step, maybe the one in flight, nothing else.
    let recovery = Recovery {
        env: &env,
        open,
        config,
        workload,
    };
    let Some((engine, m)) = recovery.recover(
        progress.acked,
        progress.attempted,
        corruption_allowed,
        &format!("{what}: after recovery"),
    ) else {
        return (CycleOutcome::Unrepairable, report);
    };

    // Recovery left a durable state: a crash right now changes nothing.
    env.crash(Some(engine), BTreeMap::new(), options);
    let (engine, _) = recovery
        .recover(
            m,
            m,
            false,
            &format!("{what}: recovery after recovery at m = {m}"),
        )
        .expect("no corruption is allowed here");

    // The engine goes on from where recovery left it, and a clean crash keeps it all.
    let mut tables = BTreeMap::new();
    for kind in TABLE_KINDS {
        match engine.open_table(kind.name()) {
            Ok(table) => {
                tables.insert(kind, table);
            }
            Err(Error::NoSuchTable { .. }) => {}
            Err(e) => panic!("{what}: opening table {} at m = {m}: {e}", kind.name()),
        }
    }
    let end = (m + config.continue_steps).min(workload.len());
    let mut more = Progress {
        acked: m,
        attempted: m,
    };
    let continued = format!("{what}: continuing at m = {m}");
    if let Err(e) = run(
        engine.as_ref(),
        &mut tables,
        workload,
        m..end,
        &mut more,
        &continued,
    ) {
        panic!("{continued}: {e}");
    }
    env.crash(Some(engine), tables, &CrashOptions::default());
    let (engine, _) = recovery
        .recover(
            end,
            end,
            false,
            &format!("{what}: recovery after steps {m}..{end}"),
        )
        .expect("no corruption is allowed here");
    drop(engine);
    (CycleOutcome::Recovered { m, progress }, report)
}

/// Runs the setup steps, which must succeed (no cut is armed yet).
fn setup(
    env: &Env,
    engine: &dyn Engine,
    tables: &mut BTreeMap<TableKind, Arc<dyn Table>>,
    workload: &Workload,
    progress: &mut Progress,
    what: &str,
) {
    if let Err(e) = run(engine, tables, workload, 0..SETUP_STEPS, progress, what) {
        panic!(
            "{what}: the setup failed with no cut armed ({} syncs): {e}",
            env.sync_count()
        );
    }
}

/// The engine's `row_size_max` with the crash settings (opened once in a scratch directory).
fn row_size_max(open: &EngineOpener, config: &CrashConfig) -> usize {
    let env = Env::new(0);
    let engine = env
        .open(open, config)
        .unwrap_or_else(|e| panic!("torn={}: opening the engine: {e}", config.torn_page));
    engine.row_size_max()
}

/// The workload of `config` for the engine `open` opens.
pub fn workload(open: &EngineOpener, config: &CrashConfig) -> Workload {
    Workload::new(config, row_size_max(open, config))
}

/// Runs the workload without a cut (then crashes cleanly and checks that nothing is lost);
/// returns the syncs and the I/Os it took, from the point where cuts are armed.
pub fn reference_run(open: &EngineOpener, config: &CrashConfig, workload: &Workload) -> (u64, u64) {
    let what = format!("torn={} reference run", config.torn_page);
    let env = Env::new(0);
    let engine = env
        .open(open, config)
        .unwrap_or_else(|e| panic!("{what}: open: {e}"));
    let mut tables = BTreeMap::new();
    let mut progress = Progress::default();
    let base = if config.cut_in_setup {
        (0, 0)
    } else {
        setup(
            &env,
            engine.as_ref(),
            &mut tables,
            workload,
            &mut progress,
            &what,
        );
        (env.sync_count(), env.io_count())
    };
    if let Err(e) = run(
        engine.as_ref(),
        &mut tables,
        workload,
        progress.acked..workload.len(),
        &mut progress,
        &what,
    ) {
        panic!("{what}: {e}");
    }
    let counts = (env.sync_count() - base.0, env.io_count() - base.1);
    env.crash(Some(engine), tables, &CrashOptions::default());
    let n = workload.len();
    let recovery = Recovery {
        env: &env,
        open,
        config,
        workload,
    };
    let (engine, _) = recovery
        .recover(n, n, false, &what)
        .expect("no corruption is allowed here");
    drop(engine);
    counts
}

fn tally(sum: &mut CrashTally, outcome: CycleOutcome, report: &CrashReport) {
    sum.cycles += 1;
    sum.kept_writes += report.kept_count;
    sum.torn_writes += report.torn_count;
    sum.dropped_writes += report.dropped_count;
    match outcome {
        CycleOutcome::Unrepairable => sum.unrepairable += 1,
        CycleOutcome::Recovered { m, progress } => {
            if m < progress.attempted {
                sum.short_of_attempted += 1;
            }
        }
    }
}

/// Crashes the workload right after each of its sync points, keeping exactly the synced
/// data; panics at the first failure (naming the case).
pub fn crash_at_every_sync_point(open: &EngineOpener, config: &CrashConfig) -> CrashTally {
    let started = Instant::now();
    let workload = workload(open, config);
    let (syncs, _) = reference_run(open, config, &workload);
    let mut sum = CrashTally::default();
    for k in 1..=syncs {
        let (outcome, report) = crash_once(
            open,
            config,
            &workload,
            Cut::AfterSync(k),
            k,
            &CrashOptions::default(),
        );
        tally(&mut sum, outcome, &report);
    }
    assert_eq!(
        sum.unrepairable, 0,
        "torn={}: nothing tears when only synced data is kept",
        config.torn_page
    );
    sum.elapsed = started.elapsed();
    sum
}

/// The cut of random point `seed`: after a random sync (two in five), during one (one in
/// five), or at a random I/O (two in five).
pub fn random_cut(seed: u64, syncs: u64, ios: u64) -> Cut {
    let mut rng = StdRng::seed_from_u64(seed);
    match rng.random_range(0..5) {
        0 | 1 => Cut::AfterSync(rng.random_range(1..=syncs)),
        2 => Cut::DuringSync(rng.random_range(1..=syncs)),
        _ => Cut::AtIo(rng.random_range(1..=ios)),
    }
}

/// The crash options of the random points: each unsynced write kept with probability one
/// half, possibly torn at 4 KiB sectors.
pub const TORN_CRASH: CrashOptions = CrashOptions {
    keep_probability: 0.5,
    torn: true,
};

/// Crashes the workload at the random cuts of seeds `0..config.random_point_count` with
/// [`TORN_CRASH`]; panics at the first failure (naming the case).
pub fn crash_at_random_points(open: &EngineOpener, config: &CrashConfig) -> CrashTally {
    let started = Instant::now();
    let workload = workload(open, config);
    let (syncs, ios) = reference_run(open, config, &workload);
    let mut sum = CrashTally::default();
    for seed in 0..config.random_point_count {
        let cut = random_cut(seed, syncs, ios);
        let (outcome, report) = crash_once(open, config, &workload, cut, seed, &TORN_CRASH);
        tally(&mut sum, outcome, &report);
    }
    sum.elapsed = started.elapsed();
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workload creates both tables first, checkpoints, fails some batches, and leaves
    /// rows in both tables.
    #[test]
    fn workload_covers_failures_and_both_tables() {
        let config = CrashConfig::new(TornPageMode::FullPageImages);
        let w = Workload::new(&config, 4000);
        assert!(matches!(w.steps[0], Step::CreateTable(TableKind::Keyed)));
        assert!(matches!(w.steps[1], Step::CreateTable(TableKind::Unkeyed)));
        assert!(w.steps.iter().any(|s| matches!(s, Step::Checkpoint)));
        assert!(w.expected.iter().any(|e| e.is_err()), "some batch fails");
        let last = w.states.last().unwrap();
        for kind in TABLE_KINDS {
            assert!(
                last[&kind].as_ref().is_some_and(|rows| !rows.is_empty()),
                "{kind:?} has rows"
            );
        }
    }

    /// Every state of a workload differs from the one before unless the step changed
    /// nothing: the unique values of `c` make each prefix recognisable.
    #[test]
    fn prefix_finds_the_exact_state() {
        let config = CrashConfig::new(TornPageMode::FullPageImages);
        let w = Workload::new(&config, 4000);
        let n = w.len();
        assert_eq!(w.prefix(&w.states[n], 0, n), Ok(n));
        assert!(w.prefix(&w.states[n], 0, 2).is_err());
    }
}
