//! Crash suite for the B+tree: the fault device cuts the power under a workload of inserts,
//! upserts and deletes on a tree of 512-byte nodes (splits, merges, root changes, overflow
//! chains and the free list all happen within a few hundred ops), and after recovery the tree
//! checks out and holds exactly the state after some prefix of the ops that contains every
//! acknowledged one.
//!
//! The method is the WAL's crash suite (`crates/wal/tests/crash.rs`, STYLE.md section 7):
//!
//! - **Workload.** A fixed, seeded sequence of ops generated against a model (inserts of absent
//!   keys, upserts, deletes of present and sometimes absent keys), in three phases: growth,
//!   shrinking (merges, root collapse), mixed. Keys of 24 to 38 bytes, so fanout is small and
//!   the tree reaches three levels; values mostly inline, some just past the inline limit and a
//!   few up to 20 KB (overflow chains of up to 3 pages, freed on replace and delete). Every op
//!   is committed by the tree itself (`CommitMode::Sync`); a full scan every [`SCAN_EVERY`] ops
//!   and a checkpoint every [`CHECKPOINT_EVERY`]. 8 KiB pages, so a page write is two 4 KiB
//!   sectors and can tear; a pool of [`FRAMES`] frames, so evictions write pages back mid-run.
//! - **Model.** The tree's contents after exactly `m` ops for every `m`. A value starts with
//!   the number of the op that wrote it and is otherwise a function of that number and its
//!   length, so a state is a list of `(key, op)` and a lost, partial or resurrected op matches
//!   no `m`. Recovery is correct if the tree equals the model after some `m` with
//!   `acked <= m <= attempted`.
//! - **Every sync point.** One run counts the syncs `S` of the whole workload (creating the
//!   tree included); then for each `k` in `1..=S` a fresh tree on a fresh [`FaultDevice`] loses
//!   power right after sync `k`, the workload runs until its first error, and the crash keeps
//!   exactly the synced data.
//! - **Seeded random points, torn writes.** For each seed a random `k`, the power cut right
//!   after sync `k` or during it (the sync fails: what it was to make durable is pending too; a
//!   quarter of the seeds pick a sync of the tree's file, where data page writes are pending),
//!   and a crash keeping each unsynced write with probability 0.5, possibly torn at 4 KiB
//!   sectors.
//! - **After each recovery** (`Wal::open`, attach, `recover` with `register_redo`, then
//!   `BTree::open`): `check()`, a full scan and a `get` of every key the workload uses against
//!   the model, `BufferPool::check`; a second crash right after recovery must come back to
//!   the same state; then the next few ops of the workload run on the recovered tree and a
//!   third crash must keep them.
//!
//! Both torn-page modes that repair pages are covered: full-page images and the doublewrite
//! area. A 512-byte node lies in the first sector of its page, so tearing its write changes
//! nothing; a second shape with nodes of a whole page (and values of hundreds of bytes, so it
//! still splits and merges) makes torn node pages that recovery must repair. Every assertion
//! message names the modes, the seed and the cut. `STORELAB_LONG=1` runs a longer workload,
//! every sync point of both shapes and 1000 random points per test.
//!
//! The last tests check operations larger than one log record: they run in an atomic group.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_btree::{BTree, BTreeConfig, Error, register_redo};
use storelab_pager::device::{CrashOptions, CrashReport, FaultDevice};
use storelab_pager::io::{
    CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, OpenOptions, SyncBackend,
};
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{CommitMode, RecoveryReport, RedoRegistry, RelId, TornPageMode, Wal, WalConfig};

/// The tree's relation number in the log.
const REL: RelId = RelId(7);
const PAGE_SIZE: PageSize = PageSize::K8;

/// The tree's shape: node size and value sizes to match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Shape {
    /// `None`: a node fills its page.
    node_size: Option<usize>,
    /// Small and medium values are this many times longer.
    value_scale: usize,
}

/// 512-byte nodes in 8 KiB pages: splits and merges every few ops, a tall tree from a few
/// dozen keys. A node then lies in the first 4 KiB sector of its page, so a torn write of a
/// node page is the whole new page (the second sector is zeros on both sides): only overflow
/// pages tear for real.
const SMALL_NODES: Shape = Shape {
    node_size: Some(512),
    value_scale: 1,
};

/// Nodes of a whole 8 KiB page, with values of 1280 to 1920 bytes inline (at most 2031-byte
/// cells) so that they split every few inserts: the slots sit in the first sector and the
/// cells in the second, so a torn write of a node page leaves it damaged, and recovery must
/// repair it.
const PAGE_NODES: Shape = Shape {
    node_size: None,
    value_scale: 160,
};

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.node_size {
            Some(n) => write!(f, "nodes={n}"),
            None => write!(f, "nodes=page"),
        }
    }
}

/// Pool frames: more than one op latches at once (a three-level split with overflow chains
/// old and new latches at most 17 pages), far fewer than the tree's pages.
const FRAMES: usize = 18;
const SEGMENT_SIZE: usize = 128 * 1024;
/// A checkpoint after every this many ops.
const CHECKPOINT_EVERY: usize = 20;
/// A full scan after every this many ops.
const SCAN_EVERY: usize = 5;
/// Ops run on the recovered tree before the third crash.
const CONTINUE_OPS: usize = 3;
/// The workload's seed (the ops are the same for every crash).
const WORKLOAD_SEED: u64 = 0xB7EE_C4A5;

fn long() -> bool {
    std::env::var_os("STORELAB_LONG").is_some_and(|v| v == "1")
}

/// Ops per workload.
fn op_count() -> usize {
    if long() { 600 } else { 200 }
}

/// Random crash points per torn-page mode.
fn seed_count() -> u64 {
    if long() { 1000 } else { 40 }
}

// ---------------------------------------------------------------------------------------------
// The workload and its model.
// ---------------------------------------------------------------------------------------------

/// One op of the workload. The value an op writes is [`value`]`(op index, len)`.
#[derive(Clone, Debug)]
enum Op {
    /// Insert of an absent key.
    Insert { key: Vec<u8>, len: usize },
    /// Upsert; `existed` is what the model says it returns.
    Upsert {
        key: Vec<u8>,
        len: usize,
        existed: bool,
    },
    /// Delete; `present` is what the model says it returns.
    Delete { key: Vec<u8>, present: bool },
}

/// Key `i` of the key space: 24 to 38 bytes (38 is the limit for 512-byte nodes), in an order
/// unrelated to `i`. Long keys make a small fanout: internal nodes of at most 9 children.
fn key(i: usize) -> Vec<u8> {
    let h = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut k = format!("{:08x}-{i:04}-", (h >> 32) as u32).into_bytes();
    let extra = 10 + (h >> 60) as usize; // 10..=25
    k.extend(std::iter::repeat_n(
        b'a' + (i % 26) as u8,
        extra.min(38 - k.len()),
    ));
    k
}

/// The value op `op` writes: its number, then bytes that depend on the number and the length.
fn value(op: usize, len: usize) -> Vec<u8> {
    assert!(len >= 8);
    let mut v = (op as u64 + 1).to_le_bytes().to_vec();
    v.extend((8..len).map(|j| (op.wrapping_mul(131) ^ j.wrapping_mul(7)) as u8));
    v
}

/// A tree's contents as `(key, op that wrote the value)`, or `usize::MAX` for a value that no
/// op of the workload wrote.
type State = Vec<(Vec<u8>, usize)>;

fn decode_value(v: &[u8]) -> usize {
    if v.len() < 8 {
        return usize::MAX;
    }
    let n = u64::from_le_bytes(v[..8].try_into().expect("8 bytes")) as usize;
    if n == 0 || value(n - 1, v.len()) != v {
        return usize::MAX;
    }
    n - 1
}

/// The ops, and the state after exactly `m` ops for each `m` in `0..=ops`.
struct Model {
    shape: Shape,
    ops: Vec<Op>,
    states: Vec<State>,
    keys: Vec<Vec<u8>>,
}

impl Model {
    fn new(n: usize, shape: Shape) -> Model {
        let keys: Vec<Vec<u8>> = (0..n).map(key).collect();
        let mut rng = StdRng::seed_from_u64(WORKLOAD_SEED);
        let mut map: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
        let mut ops = Vec::with_capacity(n);
        let mut states = vec![State::new()];
        for i in 0..n {
            // Growth, then shrinking (merges down to a single leaf at times), then mixed.
            let delete_pct = if i < n / 2 {
                15
            } else if i < n * 4 / 5 {
                80
            } else {
                40
            };
            let op = if rng.random_range(0..100) < delete_pct {
                let present: Vec<&Vec<u8>> = map.keys().collect();
                let key = if present.is_empty() || rng.random_range(0..10) == 0 {
                    keys[rng.random_range(0..keys.len())].clone()
                } else {
                    present[rng.random_range(0..present.len())].clone()
                };
                let present = map.remove(&key).is_some();
                Op::Delete { key, present }
            } else {
                let key = keys[rng.random_range(0..keys.len())].clone();
                let len = match rng.random_range(0..100) {
                    // Large: an overflow chain of 1 to 3 pages.
                    0..6 => rng.random_range(100..=20_000),
                    // Past the inline limit (a 512-byte node's cells are at most 54 bytes,
                    // an 8 KiB node's 1014).
                    6..18 => rng.random_range(20..=60) * shape.value_scale,
                    _ => rng.random_range(8..=12) * shape.value_scale,
                };
                let existed = map.insert(key.clone(), i).is_some();
                if existed || rng.random_bool(0.5) {
                    Op::Upsert { key, len, existed }
                } else {
                    Op::Insert { key, len }
                }
            };
            ops.push(op);
            states.push(map.iter().map(|(k, &op)| (k.clone(), op)).collect());
        }
        Model {
            shape,
            ops,
            states,
            keys,
        }
    }

    fn len(&self) -> usize {
        self.ops.len()
    }

    /// The largest `m` in `range` whose state is `found`, or a description of how `found`
    /// differs from the closest state in `range`.
    fn prefix(
        &self,
        found: &State,
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, String> {
        if let Some(m) = range.clone().rev().find(|&m| &self.states[m] == found) {
            return Ok(m);
        }
        let diff = |m: usize| -> Vec<String> {
            let want: BTreeMap<&Vec<u8>, usize> =
                self.states[m].iter().map(|(k, o)| (k, *o)).collect();
            let got: BTreeMap<&Vec<u8>, usize> = found.iter().map(|(k, o)| (k, *o)).collect();
            let name = |o: Option<&usize>| match o {
                None => "absent".to_string(),
                Some(&usize::MAX) => "a value no op wrote".to_string(),
                Some(o) => format!("op {o}'s value"),
            };
            want.keys()
                .chain(got.keys())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .filter(|k| want.get(*k) != got.get(*k))
                .map(|k| {
                    format!(
                        "{}: found {}, expected {}",
                        String::from_utf8_lossy(k),
                        name(got.get(*k)),
                        name(want.get(*k))
                    )
                })
                .collect()
        };
        let closest = range
            .clone()
            .min_by_key(|&m| diff(m).len())
            .expect("a non-empty range");
        let d = diff(closest);
        Err(format!(
            "the recovered tree ({} entries) is the state after no m in {range:?}; closest: \
             m = {closest} with {} keys different:\n  {}",
            found.len(),
            d.len(),
            d.iter().take(8).cloned().collect::<Vec<_>>().join("\n  ")
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// A database: one tree file, a pool, a log, all through the fault device.
// ---------------------------------------------------------------------------------------------

struct Db {
    tree: BTree,
    wal: Arc<Wal>,
    pool: Arc<BufferPool>,
}

fn config(shape: Shape) -> BTreeConfig {
    BTreeConfig {
        node_size: shape.node_size,
        ..BTreeConfig::default()
    }
}

/// Opens the tree in `dir` through `backend`: the log, recovery, then the tree.
fn open_db(
    dir: &Path,
    backend: Arc<dyn IoBackend>,
    torn: TornPageMode,
    shape: Shape,
    opened: &mut Vec<Weak<Wal>>,
) -> Result<(Db, RecoveryReport), Error> {
    let disk = Disk::new(backend, Ledger::new(), PAGE_SIZE, false);
    let file = disk.open_file(&dir.join("tree.rel"), "tree", true)?;
    let pool = Arc::new(BufferPool::new(
        Arc::clone(&disk),
        PoolConfig::frames(FRAMES),
    )?);
    let mut wal_config = WalConfig::new(dir.join("wal"));
    wal_config.segment_size = SEGMENT_SIZE;
    wal_config.commit_mode = CommitMode::Sync;
    wal_config.torn_page = torn;
    wal_config.checkpoint_wal_bytes = 0;
    wal_config.recycle_segments_max = 2;
    let wal = Wal::open(wal_config, &disk)?;
    opened.push(Arc::downgrade(&wal));
    wal.attach(REL, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    let report = wal.recover(&pool, &redo)?;
    let tree = BTree::open(
        Arc::clone(&pool),
        Arc::clone(&wal),
        file,
        REL,
        config(shape),
    )?;
    Ok((Db { tree, wal, pool }, report))
}

/// How far a run got: ops whose call returned `Ok` (all of `..acked`), and ops begun.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    acked: usize,
    attempted: usize,
}

/// Runs ops `ops` of the model, checkpointing now and then; stops at the first error. An op
/// that succeeds must return what the model says.
fn run(
    db: &Db,
    model: &Model,
    ops: std::ops::Range<usize>,
    progress: &mut Progress,
) -> Result<(), Error> {
    for i in ops {
        progress.attempted = i + 1;
        match &model.ops[i] {
            Op::Insert { key, len } => db.tree.insert(key, &value(i, *len))?,
            Op::Upsert { key, len, existed } => {
                let got = db.tree.upsert(key, &value(i, *len))?;
                assert_eq!(
                    got, *existed,
                    "op {i} ({:?}): upsert's answer",
                    model.ops[i]
                );
            }
            Op::Delete { key, present } => {
                let got = db.tree.delete(key)?;
                assert_eq!(
                    got, *present,
                    "op {i} ({:?}): delete's answer",
                    model.ops[i]
                );
            }
        }
        progress.acked = i + 1;
        if (i + 1) % SCAN_EVERY == 0 {
            // A scan now and then cycles the pool: dirty pages go out between checkpoints.
            let n = db.tree.count(Bound::Unbounded, Bound::Unbounded)?;
            assert_eq!(n as usize, model.states[i + 1].len(), "scan after op {i}");
        }
        if (i + 1) % CHECKPOINT_EVERY == 0 {
            db.wal.checkpoint(&db.pool)?;
        }
    }
    Ok(())
}

/// The tree's contents, read by a full scan; every `get` of the key space must agree.
fn read_state(db: &Db, model: &Model) -> Result<State, Error> {
    let mut state = State::new();
    let mut scanned = BTreeMap::new();
    for entry in db.tree.range(Bound::Unbounded, Bound::Unbounded) {
        let (k, v) = entry?;
        state.push((k.clone(), decode_value(&v)));
        scanned.insert(k, v);
    }
    for k in &model.keys {
        let got = db.tree.get(k)?;
        if got.as_ref() != scanned.get(k) {
            return Err(Error::InvalidArgument(format!(
                "get({}) = {:?} bytes, the scan found {:?} bytes",
                String::from_utf8_lossy(k),
                got.map(|v| v.len()),
                scanned.get(k).map(Vec::len)
            )));
        }
    }
    Ok(state)
}

/// A scratch directory, in memory if the system has `/dev/shm`: the fault device models
/// durability, so real fsyncs buy nothing here.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("storelab-btree-crash")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

/// The fault device, recording which file each sync is for: a reference run learns which
/// sync points are syncs of the tree's file (cutting the power during one of those leaves data
/// page writes pending, to be kept, lost or torn by the crash).
struct SyncRecorder {
    device: Arc<FaultDevice>,
    synced: std::sync::Mutex<Vec<std::path::PathBuf>>,
}

impl IoBackend for SyncRecorder {
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
        self.device.submit(requests, sink)
    }
    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        self.device.wait(sink)
    }
    fn sync(&self, file: &IoFile) -> storelab_pager::Result<()> {
        self.synced
            .lock()
            .expect("not poisoned")
            .push(file.path().to_path_buf());
        self.device.sync(file)
    }
    fn file_len(&self, file: &IoFile) -> storelab_pager::Result<u64> {
        self.device.file_len(file)
    }
    fn set_len(&self, file: &IoFile, len: u64) -> storelab_pager::Result<()> {
        self.device.set_len(file, len)
    }
}

/// A database directory on a fault device.
struct Env {
    dir: tempfile::TempDir,
    device: Arc<FaultDevice>,
    recorder: Arc<SyncRecorder>,
    torn: TornPageMode,
    shape: Shape,
    opened: Vec<Weak<Wal>>,
}

impl Env {
    fn new(torn: TornPageMode, shape: Shape, seed: u64) -> Env {
        let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed));
        Env {
            dir: scratch_dir(),
            recorder: Arc::new(SyncRecorder {
                device: Arc::clone(&device),
                synced: std::sync::Mutex::new(Vec::new()),
            }),
            device,
            torn,
            shape,
            opened: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<(Db, RecoveryReport), Error> {
        let backend = Arc::clone(&self.recorder) as Arc<dyn IoBackend>;
        open_db(
            self.dir.path(),
            backend,
            self.torn,
            self.shape,
            &mut self.opened,
        )
    }

    /// Cuts the power, drops the database, waits until no thread holds the log, and crashes
    /// the device.
    fn crash(&mut self, db: Option<Db>, options: &CrashOptions) -> CrashReport {
        self.device.power_off();
        drop(db);
        let deadline = Instant::now() + Duration::from_secs(30);
        for wal in self.opened.drain(..) {
            while wal.strong_count() > 0 {
                assert!(
                    Instant::now() < deadline,
                    "the log is still referenced after its drop"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        self.device.crash(options).expect("crash")
    }
}

/// What a series of crash cycles saw.
#[derive(Debug, Default)]
struct Tally {
    cycles: usize,
    /// Cycles whose recovered state lacked ops that had been attempted.
    short_of_attempted: usize,
    /// Unsynced writes torn by the crashes.
    torn_writes: usize,
    /// Full-page images recovery restored.
    images_restored: u64,
    /// Compact changes recovery redid.
    pages_redone: u64,
    /// Torn pages recovery copied back from the doublewrite area.
    doublewrite_repaired: u64,
}

/// The checks after a recovery: the tree checks out, its contents are the model after some
/// `m` in `lo..=hi`, and the pool is consistent; returns `m`.
fn check_recovered(db: &Db, model: &Model, lo: usize, hi: usize, what: &str) -> usize {
    db.tree
        .check()
        .unwrap_or_else(|e| panic!("{what}: check: {e}"));
    let state = read_state(db, model).unwrap_or_else(|e| panic!("{what}: reading the tree: {e}"));
    let m = model
        .prefix(&state, lo..=hi)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    db.pool
        .check()
        .unwrap_or_else(|e| panic!("{what}: pool: {e}"));
    m
}

/// Where the power goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    /// Right after sync `k` succeeds: the other files' unsynced writes are pending.
    AfterSync(u64),
    /// During sync `k`, which fails: the writes it was to make durable are pending too (in
    /// doublewrite mode, the only way a data page write is still pending at a crash: the area
    /// syncs the data file right after each batch).
    DuringSync(u64),
}

/// One crash cycle: a fresh database loses power at `cut` and crashes with `options`; then
/// recovery, a second crash right after it, and the continued workload.
fn crash_cycle(
    torn: TornPageMode,
    seed: u64,
    cut: Cut,
    options: &CrashOptions,
    model: &Model,
    tally: &mut Tally,
) {
    let what = format!(
        "torn={torn} {} seed {seed} {cut:?} ops {}",
        model.shape,
        model.len()
    );
    let mut env = Env::new(torn, model.shape, seed);
    let k = match cut {
        Cut::AfterSync(k) => {
            env.device.power_off_after_sync(k);
            k
        }
        Cut::DuringSync(k) => {
            env.device.fail_nth_sync(k);
            k
        }
    };
    let mut progress = Progress::default();
    let mut first_error = None;
    let db = match env.open() {
        Ok((db, _)) => {
            if let Err(e) = run(&db, model, 0..model.len(), &mut progress) {
                first_error = Some(e.to_string());
            }
            Some(db)
        }
        Err(e) => {
            first_error = Some(e.to_string());
            None
        }
    };
    let syncs = env.device.sync_count();
    if let Some(e) = &first_error {
        assert!(
            syncs >= k,
            "{what}: the workload failed at sync {syncs}, before the cut: {e}"
        );
    }
    if k < syncs {
        assert!(
            first_error.is_some(),
            "{what}: the workload saw no error after the cut"
        );
    }
    let crash = env.crash(db, options);
    tally.cycles += 1;
    tally.torn_writes += crash.torn_count;
    let what = format!("{what} ({progress:?}, stopped by {first_error:?}, {crash:?})");

    // Recovery.
    let (db, report) = env
        .open()
        .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
    tally.images_restored += report.images_restored;
    tally.pages_redone += report.pages_redone;
    tally.doublewrite_repaired += report.doublewrite_repaired;
    let m = check_recovered(
        &db,
        model,
        progress.acked,
        progress.attempted,
        &format!("{what}: after recovery {report:?}"),
    );
    if m < progress.attempted {
        tally.short_of_attempted += 1;
    }

    // Recovery (and the tree's open) leave a durable state: crash again at once.
    env.crash(Some(db), options);
    let (db, report) = env
        .open()
        .unwrap_or_else(|e| panic!("{what}: recovery after recovery (m = {m}) failed: {e}"));
    check_recovered(
        &db,
        model,
        m,
        m,
        &format!("{what}: recovery after recovery at m = {m}, {report:?}"),
    );

    // The workload goes on from where recovery left it, and a clean crash keeps it.
    let end = (m + CONTINUE_OPS).min(model.len());
    let mut more = Progress {
        acked: m,
        attempted: m,
    };
    if let Err(e) = run(&db, model, m..end, &mut more) {
        panic!("{what}: continuing after recovery at m = {m}: {e}");
    }
    env.crash(Some(db), &CrashOptions::default());
    let (db, report) = env
        .open()
        .unwrap_or_else(|e| panic!("{what}: recovery after ops {m}..{end} failed: {e}"));
    check_recovered(
        &db,
        model,
        end,
        end,
        &format!("{what}: ops {m}..{end} after recovery, {report:?}"),
    );
    env.crash(Some(db), &CrashOptions::default());
}

/// Runs the whole workload without a crash, exactly as the crash cycles do; returns the syncs
/// it took (the file each was for), after checking that a clean crash at the end loses nothing. A second run on its
/// own measures the tree's shape on the way (its walks change the pool's I/O, so not in the
/// first) and checks that the workload splits and merges enough.
fn reference_run(torn: TornPageMode, model: &Model) -> Vec<std::path::PathBuf> {
    let mode = format!("torn={torn} {}", model.shape);
    let mut env = Env::new(torn, model.shape, 0);
    let (db, _) = env.open().unwrap_or_else(|e| panic!("{mode}: open: {e}"));
    let mut progress = Progress::default();
    run(&db, model, 0..model.len(), &mut progress).unwrap_or_else(|e| panic!("{mode}: run: {e}"));
    let synced = env.recorder.synced.lock().expect("not poisoned").clone();
    let syncs = env.device.sync_count();
    assert_eq!(synced.len() as u64, syncs);
    let pool_stats = db.pool.stats();
    env.crash(Some(db), &CrashOptions::default());
    let (db, _) = env.open().unwrap_or_else(|e| panic!("{mode}: reopen: {e}"));
    check_recovered(
        &db,
        model,
        model.len(),
        model.len(),
        &format!("{mode}: after a clean run"),
    );
    env.crash(Some(db), &CrashOptions::default());

    let mut env = Env::new(torn, model.shape, 0);
    let (db, _) = env.open().unwrap_or_else(|e| panic!("{mode}: open: {e}"));
    let mut progress = Progress::default();
    // The tallest the tree got, and its smallest height after that.
    let mut height_max = 0;
    let mut height_min_after = usize::MAX;
    for i in 0..model.len() {
        run(&db, model, i..i + 1, &mut progress).unwrap_or_else(|e| panic!("{mode}: op {i}: {e}"));
        let s = db.tree.stats().expect("stats");
        if s.height > height_max {
            height_max = s.height;
            height_min_after = s.height;
        }
        height_min_after = height_min_after.min(s.height);
    }
    let stats = db.tree.stats().expect("stats");
    println!(
        "{mode}: {} ops, {syncs} syncs, {pool_stats:?}; height up to {height_max}, then down \
         to {height_min_after}; at the end {stats:?}",
        model.len()
    );
    // Small nodes: three levels, then two again (the root collapses). Page nodes: two levels.
    let small = model.shape == SMALL_NODES;
    assert!(
        height_max >= if small { 3 } else { 2 } && (!small || height_min_after < height_max),
        "{mode}: the workload does not grow and shrink the tree enough"
    );
    assert!(
        stats.split_count > 10 && stats.merge_count > 5,
        "{mode}: the workload does not split and merge enough: {stats:?}"
    );
    env.crash(Some(db), &CrashOptions::default());
    synced
}

/// Crashes the workload at every `stride`-th sync point, keeping exactly the synced data.
fn every_sync_point(torn: TornPageMode, shape: Shape, stride: usize) {
    let model = Model::new(op_count(), shape);
    let started = Instant::now();
    let syncs = reference_run(torn, &model).len() as u64;
    let mut tally = Tally::default();
    for k in (1..=syncs).step_by(stride) {
        crash_cycle(
            torn,
            k,
            Cut::AfterSync(k),
            &CrashOptions::default(),
            &model,
            &mut tally,
        );
    }
    println!(
        "torn={torn} {shape}: crashed at {} of {syncs} sync points in {:.1?}: {tally:?}",
        tally.cycles,
        started.elapsed()
    );
}

/// Crashes the workload at seeded random sync points (right after the sync or during it),
/// keeping each unsynced write with probability one half, torn at 4 KiB sectors.
fn random_torn_points(torn: TornPageMode, shape: Shape) {
    let model = Model::new(op_count(), shape);
    let options = CrashOptions {
        keep_probability: 0.5,
        torn: true,
    };
    let started = Instant::now();
    let synced = reference_run(torn, &model);
    let syncs = synced.len() as u64;
    // Sync points (1-based) of the tree's file.
    let tree_syncs: Vec<u64> = (1..=syncs)
        .filter(|&k| synced[k as usize - 1].ends_with("tree.rel"))
        .collect();
    let mut tally = Tally::default();
    for seed in 0..seed_count() {
        let mut rng = StdRng::seed_from_u64(seed);
        // A quarter of the cuts during a sync of the tree's file, where page writes are
        // pending (in doublewrite mode, the only place they are).
        let cut = match rng.random_range(0..4) {
            0 if !tree_syncs.is_empty() => {
                Cut::DuringSync(tree_syncs[rng.random_range(0..tree_syncs.len())])
            }
            0 | 1 => Cut::DuringSync(rng.random_range(1..=syncs)),
            _ => Cut::AfterSync(rng.random_range(1..=syncs)),
        };
        crash_cycle(torn, seed, cut, &options, &model, &mut tally);
    }
    println!(
        "torn={torn} {shape}: {} random torn crashes (of {syncs} sync points) in {:.1?}: \
         {tally:?}",
        seed_count(),
        started.elapsed()
    );
    assert!(tally.torn_writes > 0, "no write was torn: {tally:?}");
}

/// A stride through the sync points of the page-node workload: a third of them in CI.
fn page_nodes_stride() -> usize {
    if long() { 1 } else { 3 }
}

/// With full-page images, the tree of small nodes survives a crash at every sync point.
#[test]
fn every_sync_point_full_page_images() {
    every_sync_point(TornPageMode::FullPageImages, SMALL_NODES, 1);
}

/// With the doublewrite area, the tree of small nodes survives a crash at every sync point.
#[test]
fn every_sync_point_doublewrite() {
    every_sync_point(TornPageMode::Doublewrite, SMALL_NODES, 1);
}

/// With full-page images, the tree of small nodes survives torn crashes at random points.
#[test]
fn random_torn_crashes_full_page_images() {
    random_torn_points(TornPageMode::FullPageImages, SMALL_NODES);
}

/// With the doublewrite area, the tree of small nodes survives torn crashes at random points.
#[test]
fn random_torn_crashes_doublewrite() {
    random_torn_points(TornPageMode::Doublewrite, SMALL_NODES);
}

/// With full-page images, the tree of page-sized nodes survives a crash at every third sync
/// point (every one with `STORELAB_LONG=1`).
#[test]
fn every_sync_point_page_nodes_full_page_images() {
    every_sync_point(
        TornPageMode::FullPageImages,
        PAGE_NODES,
        page_nodes_stride(),
    );
}

/// With the doublewrite area, the tree of page-sized nodes survives a crash at every third
/// sync point (every one with `STORELAB_LONG=1`).
#[test]
fn every_sync_point_page_nodes_doublewrite() {
    every_sync_point(TornPageMode::Doublewrite, PAGE_NODES, page_nodes_stride());
}

/// With full-page images, torn node pages are repaired: the tree of page-sized nodes survives
/// torn crashes at random points.
#[test]
fn random_torn_crashes_page_nodes_full_page_images() {
    random_torn_points(TornPageMode::FullPageImages, PAGE_NODES);
}

/// With the doublewrite area, torn node pages are repaired: the tree of page-sized nodes
/// survives torn crashes at random points.
#[test]
fn random_torn_crashes_page_nodes_doublewrite() {
    random_torn_points(TornPageMode::Doublewrite, PAGE_NODES);
}

// ---------------------------------------------------------------------------------------------
// Operations larger than one log record.
// ---------------------------------------------------------------------------------------------

/// A tree in `dir` on the real file system, 8 KiB pages, 512-byte nodes, a pool big enough that
/// nothing is evicted (the data file holds only what recovery's checkpoint wrote).
fn open_plain(dir: &Path) -> Db {
    let mut opened = Vec::new();
    let backend = Arc::new(SyncBackend::new()) as Arc<dyn IoBackend>;
    let disk = Disk::new(backend, Ledger::new(), PAGE_SIZE, false);
    let file = disk
        .open_file(&dir.join("tree.rel"), "tree", true)
        .expect("open");
    let pool = Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(512)).expect("pool"));
    let mut wal_config = WalConfig::new(dir.join("wal"));
    wal_config.segment_size = 4 << 20;
    wal_config.commit_mode = CommitMode::Sync;
    wal_config.checkpoint_wal_bytes = 0;
    let wal = Wal::open(wal_config, &disk).expect("log");
    opened.push(Arc::downgrade(&wal));
    wal.attach(REL, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    wal.recover(&pool, &redo).expect("recover");
    let tree = BTree::open(
        Arc::clone(&pool),
        Arc::clone(&wal),
        file,
        REL,
        config(SMALL_NODES),
    )
    .expect("tree");
    Db { tree, wal, pool }
}

/// Value bytes spanning `pages` overflow pages of 8 KiB.
fn overflow_value(pages: usize) -> Vec<u8> {
    let per_page = PAGE_SIZE.bytes() - 36; // page header 24, next 8, length 4
    (0..pages * per_page - 100)
        .map(|i| (i % 251) as u8)
        .collect()
}

/// A value accepted by the size check (`VALUE_SIZE_MAX` is 16 MiB) but spanning more pages
/// than one log record may name (`BLOCKS_PER_RECORD_MAX` = 32) is stored by `insert`, and an
/// `insert` that fails leaves nothing behind.
#[test]
fn insert_of_a_value_over_31_overflow_pages() {
    let dir = scratch_dir();
    let db = open_plain(dir.path());
    let value = overflow_value(40);
    let result = db.tree.insert(b"big", &value);
    let got = db.tree.get(b"big").expect("get");
    match result {
        Ok(()) => assert_eq!(got.as_deref(), Some(&value[..]), "stored value"),
        Err(e) => panic!(
            "insert of a {}-byte value failed: {e}; get then finds {:?} bytes",
            value.len(),
            got.map(|v| v.len())
        ),
    }
    db.tree.check().expect("check");
}

/// An insert that splits a leaf and writes a value of 29 overflow pages changes more than 32
/// pages: `log_images` then logs them as two records, and a crash that keeps the first record
/// but not the second (here: the log cut right after the first) recovers half an operation.
#[test]
fn split_with_a_large_value_is_atomic() {
    use storelab_wal::segment::segment_file_name;
    use storelab_wal::{RecordType, WalReader};
    const REC_STRUCTURE: RecordType = RecordType(19);

    // How many 20-byte entries one leaf takes: insert one fewer than that, then the big one,
    // whose cell (an overflow reference) splits the leaf.
    let per_leaf = {
        let probe = scratch_dir();
        let db = open_plain(probe.path());
        let mut n = 0;
        loop {
            let k = format!("key-{n:03}").into_bytes();
            db.tree.insert(&k, &[7; 20]).expect("insert");
            if db.tree.stats().expect("stats").split_count > 0 {
                break n;
            }
            n += 1;
        }
    };
    let dir = scratch_dir();
    let value = overflow_value(29);
    let db = open_plain(dir.path());
    for n in 0..per_leaf {
        let k = format!("key-{n:03}").into_bytes();
        db.tree.insert(&k, &[7; 20]).expect("insert");
    }
    assert_eq!(db.tree.stats().expect("stats").split_count, 0);
    let before: Vec<_> = db
        .tree
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| e.expect("scan"))
        .collect();
    db.tree.insert(b"key-000-big", &value).expect("big insert");
    assert_eq!(db.tree.stats().expect("stats").split_count, 1);
    let geometry = db.wal.geometry();
    let log_end = db.wal.insert_lsn();
    drop(db);

    // The op's records: the last ones of type REC_STRUCTURE.
    let backend = Arc::new(SyncBackend::new()) as Arc<dyn IoBackend>;
    let wal_dir = dir.path().join("wal");
    let mut reader = WalReader::new(
        Arc::clone(&backend),
        &wal_dir,
        geometry,
        PAGE_SIZE.bytes(),
        storelab_pager::Lsn(0),
    );
    let mut records = Vec::new();
    while let Some(r) = reader.next_record().expect("read the log") {
        records.push((r.lsn, r.end_lsn(), r.record_type, r.blocks.len(), r.flags));
    }
    assert_eq!(records.last().expect("records").1, log_end);
    // The operation ran in an atomic group: its records are flagged, and a no-op record
    // carrying the end flag closes the group.
    let (_, _, end_type, _, end_flags) = records.pop().expect("the end marker");
    assert_eq!(end_type, RecordType::NOOP, "{records:?}");
    assert_ne!(end_flags & storelab_wal::RECORD_GROUP_END, 0);
    let records: Vec<_> = records
        .into_iter()
        .map(|(a, b, c, d, _)| (a, b, c, d))
        .collect();
    let (last_lsn, _, last_type, last_blocks) = *records.last().expect("records");
    let (_, _, prev_type, prev_blocks) = records[records.len() - 2];
    assert_eq!(
        (prev_type, last_type),
        (REC_STRUCTURE, REC_STRUCTURE),
        "the big insert is logged as two records: {records:?}"
    );
    println!(
        "the big insert took two records of {prev_blocks} and {last_blocks} blocks; cutting \
         the log at {last_lsn:?}"
    );
    // Cut the log where the second record starts: as if the crash kept only the first.
    let segment = wal_dir.join(segment_file_name(geometry.segment_of(last_lsn)));
    let mut bytes = std::fs::read(&segment).expect("read segment");
    let at = geometry.file_offset(last_lsn) as usize;
    bytes[at..].fill(0);
    std::fs::write(&segment, &bytes).expect("write segment");

    let db = open_plain(dir.path());
    db.tree
        .check()
        .unwrap_or_else(|e| panic!("after recovering the first record only: {e}"));
    let after: Vec<_> = db
        .tree
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| e.expect("scan"))
        .collect();
    let mut with_big = before.clone();
    with_big.push((b"key-000-big".to_vec(), value.clone()));
    with_big.sort();
    assert!(
        after == before || after == with_big,
        "recovered {} entries: neither the {} before the insert nor the {} after",
        after.len(),
        before.len(),
        with_big.len()
    );
}
