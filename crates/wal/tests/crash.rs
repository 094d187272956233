//! Crash suite: the fault device cuts the power under a small workload of multi-page changes,
//! and after recovery every acknowledged commit is there and no partial operation is.
//!
//! The method (STYLE.md section 7, "crash"):
//!
//! - **Workload.** `ops` operations, each ONE log record touching 2 or 3 pages in different
//!   files, like an insert touching a heap page and index pages: op `i` writes the value
//!   `value(i)` into one slot of a heap page (a slot of its own), one slot of an index page
//!   (slots are overwritten by later ops) and, in some phases only, one slot of an `aux` page,
//!   then commits. A checkpoint every [`CHECKPOINT_EVERY`] ops. The pool has [`FRAMES`] frames
//!   for 11 pages, so evictions write pages back mid-run (the write-ahead rule at work), and the
//!   `aux` file goes quiet for stretches (a checkpoint then has no dirty page of it). 8 KiB
//!   pages, so a page write is two 4 KiB sectors and can tear; 64 KiB segments, so the log
//!   switches segments (and recycles them) often.
//! - **Model.** The expected contents of every slot after exactly `m` ops, for every `m`.
//!   Recovery is correct if the recovered slots equal the model after some `m` with
//!   `acked <= m <= attempted`: every acknowledged commit is present, and what is there is a
//!   prefix of whole operations (op values are unique, so a partial op, a lost op or a
//!   resurrected old value matches no `m`). With `CommitMode::Off` an acknowledged commit may
//!   be lost by design, so only `m <= attempted` is asked.
//! - **Every sync point.** One run counts the syncs `S` of the whole workload (open included);
//!   then for each `k` in `1..=S` a fresh database on a fresh [`FaultDevice`] loses power right
//!   after sync `k`, the workload runs until its first error, and the crash keeps exactly the
//!   synced data.
//! - **Seeded random points, torn writes.** For each seed a random `k`, and a crash that keeps
//!   each unsynced write with probability 0.5, possibly torn to a prefix of its 4 KiB sectors.
//!   Full-page images and the doublewrite area must repair torn pages; in `TornPageMode::None`
//!   recovery may refuse a torn page with `Error::UnrepairablePage` (counted, printed), and
//!   nothing else.
//! - **After each recovery**: `BufferPool::check`; a second crash right after recovery must
//!   recover the same state with nothing to redo (recovery is idempotent and its checkpoint
//!   durable); then a few more ops are committed on the recovered log and a third crash must
//!   keep them (the log continues correctly after a torn tail).
//!
//! Every assertion message names the modes, the seed and `k`: a failure reproduces by running
//! that one case (the fault device is deterministic given its seed, except for the background
//! writer's timing in `CommitMode::Off`).
//!
//! The default run is small enough for CI; `STORELAB_LONG=1` runs a longer workload and 500
//! random seeds per mode.
//!
//! The second half of the file cuts the log at every byte (a stride in CI) and checks that
//! recovery keeps exactly the ops whose records end before the cut.

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_pager::device::{CrashOptions, CrashReport, FaultDevice};
use storelab_pager::io::{IoBackend, SyncBackend};
use storelab_pager::page::{PAGE_HEADER_SIZE, init_page, seal_page};
use storelab_pager::{
    AlignedBuf, BufferPool, Disk, FileId, IoCause, Ledger, Lsn, PageId, PageSize, PageType,
    PoolConfig,
};
use storelab_wal::segment::{SEGMENT_HEADER_SIZE, SegmentGeometry, parse_segment_file_name};
use storelab_wal::{
    CommitMode, Error, RecordBuilder, RecordType, RecoveryReport, RedoRegistry, RelId,
    TornPageMode, Wal, WalConfig, WalReader,
};

/// The test record: each block's data is `offset u16` + bytes, written into the page body.
const SET: RecordType = RecordType(16);
/// The three relations: a heap, an index, and an auxiliary file touched only in some phases.
const RELS: [RelId; 3] = [RelId(1), RelId(2), RelId(3)];
const REL_NAMES: [&str; 3] = ["heap", "index", "aux"];
const HEAP: usize = 0;
const INDEX: usize = 1;
const AUX: usize = 2;
/// Pages per relation.
const PAGES: [u64; 3] = [6, 3, 2];
const PAGE_SIZE: PageSize = PageSize::K8;
/// Pool frames: fewer than the 11 pages, more than the 3 one op pins.
const FRAMES: usize = 5;
const SEGMENT_SIZE: usize = 64 * 1024;
/// A checkpoint after every this many ops.
const CHECKPOINT_EVERY: usize = 13;
/// Ops committed on the recovered log before the third crash.
const CONTINUE_OPS: usize = 4;

const TORN_MODES: [TornPageMode; 3] = [
    TornPageMode::FullPageImages,
    TornPageMode::Doublewrite,
    TornPageMode::None,
];

fn long() -> bool {
    std::env::var_os("STORELAB_LONG").is_some_and(|v| v == "1")
}

/// Ops per workload.
fn op_count() -> usize {
    if long() { 120 } else { 30 }
}

/// Random crash points per mode.
fn seed_count() -> u64 {
    if long() { 500 } else { 20 }
}

// ---------------------------------------------------------------------------------------------
// The workload and its model.
// ---------------------------------------------------------------------------------------------

/// One 8-byte slot of one page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Slot {
    rel: usize,
    page: u64,
    offset: u16,
}

/// Offset in the page body of the page's second 4 KiB sector.
const SECTOR2: u16 = (4096 - PAGE_HEADER_SIZE) as u16;

/// The slots op `i` writes: one per page it touches, all in different files.
fn op_slots(i: usize) -> Vec<Slot> {
    let n = i as u64;
    // Slots lie in the page's second 4 KiB sector: a write torn after the first sector (new
    // header and checksum, old body) then fails the page checksum.
    let mut slots = vec![
        // A heap slot of its own: the op's "tuple".
        Slot {
            rel: HEAP,
            page: n % PAGES[HEAP],
            offset: SECTOR2 + (n / PAGES[HEAP] * 8) as u16,
        },
        // An index slot, overwritten by later ops.
        Slot {
            rel: INDEX,
            page: (n * 2 + 1) % PAGES[INDEX],
            offset: SECTOR2 + 2048 + (n % 16) as u16 * 8,
        },
    ];
    // The aux file is busy for 10 ops, then quiet for 20.
    if (i / 10).is_multiple_of(3) {
        slots.push(Slot {
            rel: AUX,
            page: (n / 3) % PAGES[AUX],
            offset: SECTOR2 + 1024 + (n % 24) as u16 * 8,
        });
    }
    slots
}

/// The top byte of every value: a record then ends in a nonzero byte, so cutting its last
/// byte off (by zeroing it) always damages it.
const VALUE_TAG: u64 = 0xA5 << 56;

/// The value op `i` writes: unique and never zero.
fn op_value(i: usize) -> u64 {
    VALUE_TAG | ((i as u64 + 1) * 0x0001_0001)
}

/// The op that wrote a value, for messages.
fn op_of(value: u64) -> String {
    match value {
        0 => "never written".to_string(),
        v if v & VALUE_TAG == VALUE_TAG && (v & !VALUE_TAG).is_multiple_of(0x0001_0001) => {
            format!("op {}", (v & !VALUE_TAG) / 0x0001_0001 - 1)
        }
        v => format!("garbage {v:#x}"),
    }
}

/// Every slot's value after exactly `m` ops, for each `m` in `0..=ops`.
struct Model {
    slots: Vec<Slot>,
    states: Vec<Vec<u64>>,
}

impl Model {
    fn new(ops: usize) -> Model {
        let slots: Vec<Slot> = (0..ops)
            .flat_map(op_slots)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut state = vec![0u64; slots.len()];
        let mut states = vec![state.clone()];
        for i in 0..ops {
            for s in op_slots(i) {
                let at = slots.binary_search(&s).expect("every slot is listed");
                state[at] = op_value(i);
            }
            states.push(state.clone());
        }
        Model { slots, states }
    }

    fn ops(&self) -> usize {
        self.states.len() - 1
    }

    /// The largest `m` in `range` whose state is `found`, or a description of how `found`
    /// differs from the closest state in `range`.
    fn prefix(
        &self,
        found: &[u64],
        range: std::ops::RangeInclusive<usize>,
    ) -> Result<usize, String> {
        if let Some(m) = range.clone().rev().find(|&m| self.states[m] == found) {
            return Ok(m);
        }
        let diff = |m: usize| {
            self.states[m]
                .iter()
                .zip(found)
                .filter(|(a, b)| a != b)
                .count()
        };
        let closest = (0..=self.ops())
            .min_by_key(|&m| diff(m))
            .expect("m = 0 exists");
        let mut msg = format!(
            "the recovered state is the state after no m in {range:?}; closest: m = {closest} \
             with {} slots different:",
            diff(closest)
        );
        let differing = self.slots.iter().zip(found).zip(&self.states[closest]);
        for ((slot, &got), &want) in differing.filter(|((_, a), b)| a != b).take(8) {
            msg += &format!(
                "\n  {} page {} offset {}: found {got:#x} ({}), expected {want:#x} ({})",
                REL_NAMES[slot.rel],
                slot.page,
                slot.offset,
                op_of(got),
                op_of(want)
            );
        }
        Err(msg)
    }
}

fn registry() -> RedoRegistry {
    let mut r = RedoRegistry::new();
    r.register(SET, |record, block, page| {
        let data = &record.blocks[block].data;
        let offset = u16::from_le_bytes([data[0], data[1]]) as usize + PAGE_HEADER_SIZE;
        let bytes = &data[2..];
        page.get_mut(offset..offset + bytes.len())
            .ok_or("offset out of page")?
            .copy_from_slice(bytes);
        Ok(())
    });
    r
}

// ---------------------------------------------------------------------------------------------
// A database: three page files, a pool, a log.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
struct Mode {
    torn: TornPageMode,
    commit: CommitMode,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "torn={} commit={}", self.torn, self.commit)
    }
}

struct Db {
    pool: BufferPool,
    wal: Arc<Wal>,
    files: Vec<FileId>,
}

fn wal_config(dir: &Path, mode: Mode) -> WalConfig {
    let mut c = WalConfig::new(dir.join("wal"));
    c.segment_size = SEGMENT_SIZE;
    c.torn_page = mode.torn;
    c.commit_mode = mode.commit;
    c.checkpoint_wal_bytes = 0;
    c.writer_delay = Duration::from_millis(1);
    c.recycle_segments_max = 2;
    c
}

/// Opens the database in `dir` through `backend` and recovers it. `opened` receives the log,
/// so a crash can wait for every reference (the `Off` mode's writer thread holds one now and
/// then) to go before it rewrites the files.
fn open_db(
    dir: &Path,
    backend: Arc<dyn IoBackend>,
    mode: Mode,
    frames: usize,
    page_size: PageSize,
    opened: &mut Vec<Weak<Wal>>,
) -> Result<(Db, RecoveryReport), Error> {
    let disk = Disk::new(backend, Ledger::new(), page_size, false);
    let mut files = Vec::new();
    for name in REL_NAMES {
        files.push(disk.open_file(&dir.join(format!("{name}.rel")), name, true)?);
    }
    let pool = BufferPool::new(Arc::clone(&disk), PoolConfig::frames(frames))?;
    let wal = Wal::open(wal_config(dir, mode), &disk)?;
    opened.push(Arc::downgrade(&wal));
    for (rel, file) in RELS.iter().zip(&files) {
        wal.attach(*rel, *file);
    }
    let report = wal.recover(&pool, &registry())?;
    Ok((Db { pool, wal, files }, report))
}

/// Allocates the pages the workload uses that the database does not have yet, each logged as
/// a page image, and commits.
fn setup(db: &Db) -> Result<(), Error> {
    let mut last = None;
    for (r, &file) in db.files.iter().enumerate() {
        while db.pool.disk().page_count(file)? < PAGES[r] {
            let mut page = db.pool.new_page(file, PageType::RAW)?;
            let record = RecordBuilder::new(RecordType::PAGE_IMAGES).block(
                RELS[r],
                page.page_id(),
                &page,
                b"",
            );
            let lsn = db.wal.append(&record)?;
            page.set_lsn(lsn);
            last = Some(lsn);
        }
    }
    if let Some(lsn) = last {
        db.wal.commit(lsn)?;
    }
    Ok(())
}

/// Performs op `i` in the pool and logs it as one record; returns the record's end.
fn apply(db: &Db, i: usize) -> Result<Lsn, Error> {
    let slots = op_slots(i);
    let value = op_value(i).to_le_bytes();
    let data: Vec<Vec<u8>> = slots
        .iter()
        .map(|s| [&s.offset.to_le_bytes()[..], &value].concat())
        .collect();
    let mut pages = Vec::with_capacity(slots.len());
    for s in &slots {
        let mut page = db.pool.write(db.files[s.rel], PageId(s.page))?;
        let at = PAGE_HEADER_SIZE + usize::from(s.offset);
        page[at..at + 8].copy_from_slice(&value);
        pages.push(page);
    }
    let end = {
        let mut record = RecordBuilder::new(SET);
        for ((s, page), d) in slots.iter().zip(&pages).zip(&data) {
            record = record.block(RELS[s.rel], PageId(s.page), page, d);
        }
        db.wal.append(&record)?
    };
    for page in &mut pages {
        page.set_lsn(end);
    }
    Ok(end)
}

/// How far a run got: ops whose commit returned `Ok` (all of `..acked`), and ops begun.
#[derive(Clone, Copy, Debug, Default)]
struct Progress {
    acked: usize,
    attempted: usize,
}

/// Runs ops `ops` (after allocating any missing page), checkpointing now and then; stops at
/// the first error.
fn run(db: &Db, ops: Range<usize>, progress: &mut Progress) -> Result<(), Error> {
    setup(db)?;
    for i in ops {
        progress.attempted = i + 1;
        let end = apply(db, i)?;
        db.wal.commit(end)?;
        progress.acked = i + 1;
        if (i + 1) % CHECKPOINT_EVERY == 0 {
            db.wal.checkpoint(&db.pool)?;
        }
    }
    Ok(())
}

/// Every slot's value as the database shows it (a page not allocated reads as zeros).
fn read_state(db: &Db, model: &Model) -> Result<Vec<u64>, Error> {
    let mut values = Vec::with_capacity(model.slots.len());
    for s in &model.slots {
        let file = db.files[s.rel];
        if s.page >= db.pool.disk().page_count(file)? {
            values.push(0);
            continue;
        }
        let page = db.pool.read(file, PageId(s.page))?;
        let at = PAGE_HEADER_SIZE + usize::from(s.offset);
        values.push(u64::from_le_bytes(
            page[at..at + 8].try_into().expect("8 bytes"),
        ));
    }
    Ok(values)
}

// ---------------------------------------------------------------------------------------------
// Crash cycles on the fault device.
// ---------------------------------------------------------------------------------------------

/// A scratch directory, in memory if the system has `/dev/shm`: the fault device models
/// durability, so real fsyncs (10 times the run time on a disk) buy nothing here.
fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new()
            .prefix("storelab-crash")
            .tempdir_in(shm)
    {
        return dir;
    }
    tempfile::tempdir().expect("tempdir")
}

/// A database directory on a fault device.
struct Env {
    dir: tempfile::TempDir,
    device: Arc<FaultDevice>,
    mode: Mode,
    opened: Vec<Weak<Wal>>,
}

impl Env {
    fn new(mode: Mode, seed: u64) -> Env {
        Env {
            dir: scratch_dir(),
            device: Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed)),
            mode,
            opened: Vec::new(),
        }
    }

    fn open(&mut self) -> Result<(Db, RecoveryReport), Error> {
        let backend: Arc<dyn IoBackend> = Arc::clone(&self.device) as Arc<dyn IoBackend>;
        open_db(
            self.dir.path(),
            backend,
            self.mode,
            FRAMES,
            PAGE_SIZE,
            &mut self.opened,
        )
    }

    /// Cuts the power, drops the database (no I/O can reach the files any more), waits until
    /// no thread holds the log, and crashes the device.
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
    /// Cycles where recovery refused a torn page (`TornPageMode::None` only).
    unrepairable: usize,
    /// Cycles whose recovered state lacked ops that had been attempted (commit lost or never
    /// acknowledged).
    short_of_attempted: usize,
    /// Unsynced writes torn by the crashes.
    torn_writes: usize,
    /// Full-page images recovery restored (page creations included).
    images_restored: u64,
    /// Torn pages recovery copied back from the doublewrite area.
    doublewrite_repaired: u64,
}

/// The checks after a recovery: the pool is consistent and the state is the model after some
/// `m` in `lo..=hi`; returns `m`.
fn check_recovered(db: &Db, model: &Model, lo: usize, hi: usize, what: &str) -> usize {
    db.pool.check().unwrap_or_else(|e| panic!("{what}: {e}"));
    let state = read_state(db, model).unwrap_or_else(|e| panic!("{what}: reading the state: {e}"));
    model
        .prefix(&state, lo..=hi)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// One crash cycle: a fresh database loses power after sync `k` (if given) and crashes with
/// `options`; then recovery, the second crash right after it, and the continued log.
fn crash_cycle(
    mode: Mode,
    seed: u64,
    k: Option<u64>,
    options: &CrashOptions,
    model: &Model,
    tally: &mut Tally,
) {
    let what = format!("{mode} seed {seed} k {k:?} ops {}", model.ops());
    let mut env = Env::new(mode, seed);
    if let Some(k) = k {
        env.device.power_off_after_sync(k);
    }
    let mut progress = Progress::default();
    let mut first_error = None;
    let db = match env.open() {
        Ok((db, _)) => {
            if let Err(e) = run(&db, 0..model.ops(), &mut progress) {
                first_error = Some(e.to_string());
            }
            Some(db)
        }
        Err(e) => {
            first_error = Some(e.to_string());
            None
        }
    };
    if k.is_some_and(|k| k < env.device.sync_count()) {
        assert!(
            first_error.is_some(),
            "{what}: the workload saw no error after the power went off"
        );
    }
    let crash = env.crash(db, options);
    tally.cycles += 1;
    tally.torn_writes += crash.torn_count;
    let what = format!("{what} ({progress:?}, stopped by {first_error:?}, {crash:?})");

    // Recovery.
    let (db, report) = match env.open() {
        Ok(opened) => opened,
        Err(Error::UnrepairablePage { .. }) if mode.torn == TornPageMode::None => {
            tally.unrepairable += 1;
            return;
        }
        Err(e) => panic!("{what}: recovery failed: {e}"),
    };
    tally.images_restored += report.images_restored;
    tally.doublewrite_repaired += report.doublewrite_repaired;
    let lo = if mode.commit == CommitMode::Off {
        0
    } else {
        progress.acked
    };
    let m = check_recovered(
        &db,
        model,
        lo,
        progress.attempted,
        &format!("{what}: after recovery {report:?}"),
    );
    if m < progress.attempted {
        tally.short_of_attempted += 1;
    }

    // Recovery is idempotent, and its own checkpoint durable: crash again at once.
    env.crash(Some(db), options);
    let (db, report) = env
        .open()
        .unwrap_or_else(|e| panic!("{what}: recovery after recovery (state m = {m}) failed: {e}"));
    let again = format!("{what}: recovery after recovery at m = {m}, {report:?}");
    assert_eq!(
        report.pages_redone + report.images_restored,
        0,
        "{again}: redid pages"
    );
    check_recovered(&db, model, m, m, &again);

    // The log goes on from where recovery left it.
    let end = (m + CONTINUE_OPS).min(model.ops());
    let mut more = Progress {
        acked: m,
        attempted: m,
    };
    if let Err(e) = run(&db, m..end, &mut more) {
        panic!("{what}: continuing after recovery at m = {m}: {e}");
    }
    env.crash(Some(db), &CrashOptions::default());
    let (db, report) = env
        .open()
        .unwrap_or_else(|e| panic!("{what}: recovery after continuing from m = {m} failed: {e}"));
    let lo = if mode.commit == CommitMode::Off {
        m
    } else {
        end
    };
    check_recovered(
        &db,
        model,
        lo,
        end,
        &format!("{what}: ops {m}..{end} after recovery, {report:?}"),
    );
    env.crash(Some(db), &CrashOptions::default());
}

/// Runs the whole workload without a crash; returns the syncs it took, after checking that a
/// clean crash at the end loses nothing acknowledged.
fn reference_run(mode: Mode, model: &Model) -> u64 {
    let mut env = Env::new(mode, 0);
    let (db, _) = env.open().unwrap_or_else(|e| panic!("{mode}: open: {e}"));
    let mut progress = Progress::default();
    run(&db, 0..model.ops(), &mut progress).unwrap_or_else(|e| panic!("{mode}: run: {e}"));
    let syncs = env.device.sync_count();
    env.crash(Some(db), &CrashOptions::default());
    let (db, _) = env.open().unwrap_or_else(|e| panic!("{mode}: reopen: {e}"));
    let lo = if mode.commit == CommitMode::Off {
        0
    } else {
        model.ops()
    };
    check_recovered(
        &db,
        model,
        lo,
        model.ops(),
        &format!("{mode}: after a clean run"),
    );
    env.crash(Some(db), &CrashOptions::default());
    syncs
}

/// Crashes the workload at every sync point, keeping exactly the synced data.
fn every_sync_point(commit: CommitMode) {
    let model = Model::new(op_count());
    for torn in TORN_MODES {
        let mode = Mode { torn, commit };
        let started = Instant::now();
        let syncs = reference_run(mode, &model);
        let mut tally = Tally::default();
        for k in 1..=syncs {
            crash_cycle(
                mode,
                k,
                Some(k),
                &CrashOptions::default(),
                &model,
                &mut tally,
            );
        }
        println!(
            "{mode}: crashed at each of {syncs} sync points in {:.1?}: {tally:?}",
            started.elapsed()
        );
        if torn == TornPageMode::None {
            assert_eq!(
                tally.unrepairable, 0,
                "{mode}: nothing tears without torn writes"
            );
        }
    }
}

/// Crashes the workload at seeded random sync points, keeping each unsynced write with
/// probability one half, torn at 4 KiB sectors.
fn random_torn_points(commit: CommitMode) {
    let model = Model::new(op_count());
    let torn_crash = CrashOptions {
        keep_probability: 0.5,
        torn: true,
    };
    for torn in TORN_MODES {
        let mode = Mode { torn, commit };
        let started = Instant::now();
        let syncs = reference_run(mode, &model);
        let mut tally = Tally::default();
        for seed in 0..seed_count() {
            let mut rng = StdRng::seed_from_u64(seed);
            let k = rng.random_range(1..=syncs);
            crash_cycle(mode, seed, Some(k), &torn_crash, &model, &mut tally);
        }
        println!(
            "{mode}: {} random torn crashes (of {syncs} sync points) in {:.1?}: {tally:?}",
            seed_count(),
            started.elapsed()
        );
    }
}

/// Sync commits survive a crash at every sync point, in each torn-page mode.
#[test]
fn every_sync_point_sync_commit() {
    every_sync_point(CommitMode::Sync);
}

/// Group commits survive a crash at every sync point, in each torn-page mode.
#[test]
fn every_sync_point_group_commit() {
    every_sync_point(CommitMode::Group);
}

/// Asynchronous commits recover to a prefix after a crash at every sync point.
#[test]
fn every_sync_point_off_commit() {
    every_sync_point(CommitMode::Off);
}

/// Sync commits survive torn crashes at random points; torn pages are repaired (or, without
/// protection, refused).
#[test]
fn random_torn_crashes_sync_commit() {
    random_torn_points(CommitMode::Sync);
}

/// Group commits survive torn crashes at random points.
#[test]
fn random_torn_crashes_group_commit() {
    random_torn_points(CommitMode::Group);
}

/// Asynchronous commits recover to a prefix after torn crashes at random points.
#[test]
fn random_torn_crashes_off_commit() {
    random_torn_points(CommitMode::Off);
}

/// A crash that tears a write extending a page file leaves a partial last page; the file
/// still opens (the pager cuts the partial page off: it never held durable data).
#[test]
fn torn_file_extension_reopens() {
    let dir = scratch_dir();
    for seed in 0..64 {
        let path = dir.path().join(format!("heap-{seed}.rel"));
        let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed));
        let backend = || Arc::clone(&device) as Arc<dyn IoBackend>;
        let disk = Disk::new(backend(), Ledger::new(), PAGE_SIZE, false);
        let file = disk.open_file(&path, "heap", true).expect("create");
        let mut page = AlignedBuf::zeroed(PAGE_SIZE.bytes());
        init_page(&mut page, PageId(0), PageType::RAW);
        seal_page(&mut page, PageId(0));
        disk.write_page(file, PageId(0), page, IoCause::EvictionWriteBack)
            .expect("write");
        drop(disk);
        let crash = device
            .crash(&CrashOptions {
                keep_probability: 1.0,
                torn: true,
            })
            .expect("crash");
        if crash.torn_count == 0 {
            continue;
        }
        let disk = Disk::new(backend(), Ledger::new(), PAGE_SIZE, false);
        if let Err(e) = disk.open_file(&path, "heap", false) {
            panic!("seed {seed}: a page file whose extending write tore does not reopen: {e}");
        }
        return;
    }
    panic!("no seed tore the write");
}

// ---------------------------------------------------------------------------------------------
// Cutting the log at every byte.
// ---------------------------------------------------------------------------------------------

/// Every file under `dir`, with its bytes.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let bytes = std::fs::read(&path).expect("read");
                files.push((path, bytes));
            }
        }
    }
    files
}

/// Makes `dir` hold exactly the snapshot, with the log cut at `cut`: the segments' bytes from
/// `cut` on are zeroed (`truncate = false`: a log never written further) or cut off, and later
/// segments truncated to their header (`truncate = true`: a file shorter than the log).
fn restore_cut(dir: &Path, files: &[(PathBuf, Vec<u8>)], cut: u64, truncate: bool) {
    std::fs::remove_dir_all(dir).expect("clear");
    std::fs::create_dir_all(dir.join("wal")).expect("mkdir");
    let geometry = SegmentGeometry::new(SEGMENT_SIZE).expect("geometry");
    for (path, bytes) in files {
        let mut bytes = bytes.clone();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if let Some(n) = parse_segment_file_name(name) {
            let start = geometry.segment_start(n).0;
            let keep =
                SEGMENT_HEADER_SIZE + cut.saturating_sub(start).min(geometry.data_size()) as usize;
            if truncate {
                bytes.truncate(keep);
            } else if keep < bytes.len() {
                bytes[keep..].fill(0);
            }
        }
        std::fs::write(path, &bytes).expect("write");
    }
}

/// Cutting the log at any byte recovers exactly the ops whose records end at or before the
/// cut, whether the rest reads as zeros or the segment file is cut short; the log then goes on
/// from there.
#[test]
fn log_cut_at_every_byte_recovers_the_prefix() {
    let ops = 160;
    let model = Model::new(ops);
    let mode = Mode {
        torn: TornPageMode::FullPageImages,
        commit: CommitMode::Sync,
    };
    let dir = scratch_dir();
    let root = dir.path().join("db");
    let backend = || Arc::new(SyncBackend::new()) as Arc<dyn IoBackend>;
    std::fs::create_dir_all(&root).expect("mkdir");
    let mut opened = Vec::new();
    // A big pool and no checkpoint after the first: no page reaches the data files, all state
    // is in the log.
    let (db, _) = open_db(&root, backend(), mode, 64, PAGE_SIZE, &mut opened).expect("open");
    run_without_checkpoints(&db, ops);
    let log_end = db.wal.insert_lsn().0;
    drop(db);
    let files = snapshot(&root);
    for (path, bytes) in &files {
        if path.extension().is_some_and(|e| e == "rel") {
            assert!(bytes.is_empty(), "{} was written", path.display());
        }
    }

    // Record boundaries, and which ops end where.
    let geometry = SegmentGeometry::new(SEGMENT_SIZE).expect("geometry");
    let mut reader = WalReader::new(
        backend(),
        &root.join("wal"),
        geometry,
        PAGE_SIZE.bytes(),
        Lsn(0),
    );
    let mut boundaries = vec![0];
    let mut op_ends = Vec::new();
    while let Some(record) = reader.next_record().expect("read") {
        boundaries.push(record.end_lsn().0);
        if record.record_type == SET {
            op_ends.push(record.end_lsn().0);
        }
    }
    assert_eq!(op_ends.len(), ops);
    assert_eq!(*boundaries.last().expect("records"), log_end);
    assert!(
        log_end > geometry.data_size(),
        "the log of {log_end} bytes stays in one segment"
    );

    let mut cuts: BTreeSet<u64> = BTreeSet::new();
    if long() {
        cuts.extend(0..=log_end);
    } else {
        cuts.extend((0..=log_end).step_by(61));
        for &b in &boundaries {
            cuts.extend([b.saturating_sub(1), b, b + 1]);
        }
    }
    cuts.retain(|&c| c <= log_end);
    let started = Instant::now();
    for truncate in [false, true] {
        for &cut in &cuts {
            restore_cut(&root, &files, cut, truncate);
            let m = op_ends.iter().filter(|&&end| end <= cut).count();
            let what = format!("cut at {cut} of {log_end} (truncate: {truncate}, expect {m} ops)");
            let (db, _) = open_db(&root, backend(), mode, 64, PAGE_SIZE, &mut opened)
                .unwrap_or_else(|e| panic!("{what}: recovery failed: {e}"));
            check_recovered(&db, &model, m, m, &what);
            // The log continues after the cut, at record boundaries (the interesting ones).
            if boundaries.binary_search(&cut).is_ok() || long() {
                let end = (m + 2).min(ops);
                let mut progress = Progress {
                    acked: m,
                    attempted: m,
                };
                run(&db, m..end, &mut progress)
                    .unwrap_or_else(|e| panic!("{what}: continuing: {e}"));
                drop(db);
                let (db, _) = open_db(&root, backend(), mode, 64, PAGE_SIZE, &mut opened)
                    .unwrap_or_else(|e| panic!("{what}: reopening after ops {m}..{end}: {e}"));
                check_recovered(
                    &db,
                    &model,
                    end,
                    end,
                    &format!("{what}, then ops {m}..{end}"),
                );
            }
        }
    }
    println!(
        "cut a log of {log_end} bytes ({} records) at {} points, zeroed and truncated, in {:.1?}",
        boundaries.len() - 1,
        cuts.len(),
        started.elapsed()
    );
}

/// The workload's ops, committed, without checkpoints.
fn run_without_checkpoints(db: &Db, ops: usize) {
    setup(db).expect("setup");
    for i in 0..ops {
        let end = apply(db, i).expect("apply");
        db.wal.commit(end).expect("commit");
    }
}
