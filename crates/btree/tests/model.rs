//! Model-based tests: random operation sequences (insert, upsert, delete, get, range scans both
//! ways, count, checkpoint, reopen with recovery) through a tree of 512-byte nodes over a small
//! pool, against a `BTreeMap`. `check()` runs after every operation. Keys come from a small
//! space so they collide (the empty key included); values are mostly short, some overflow.
//!
//! 64 cases per policy; `STORELAB_LONG=1` runs 1000. Failing cases are minimised by proptest and
//! kept in `proptest-regressions/model.txt`.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Env, open, small};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_btree::{Error, SplitPolicy};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Bytes keys are made of: both ends of the byte range and two letters.
const ALPHABET: [u8; 4] = [0x00, b'a', b'b', 0xff];
/// Number of keys in the fixed table of longer keys (enough to grow trees of height 3-4).
const TABLE_KEYS: usize = 512;

/// Key `i` of a fixed table of keys of lengths 0..=20, mostly 12 or more (long keys make
/// few entries per node, so deep trees). Keys in a group of eight share a prefix (half their
/// length), so separators and fences run long and close together.
fn table_key(i: usize) -> Vec<u8> {
    let len = if i.is_multiple_of(4) {
        (i * 13) % 21
    } else {
        12 + (i * 7) % 9
    };
    let mix = |a: usize, b: usize| (a.wrapping_mul(2654435761) ^ b.wrapping_mul(40503)) >> 7;
    (0..len)
        .map(|j| {
            let seed = if j < len / 2 {
                mix(i / 8, j)
            } else {
                mix(i, j)
            };
            ALPHABET[seed % ALPHABET.len()]
        })
        .collect()
}

/// A value of `len` bytes derived from `seed` (so cases print compactly).
fn value(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)))
        .collect()
}

#[derive(Clone, Debug)]
struct Val {
    len: usize,
    seed: u8,
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        value(self.len, self.seed)
    }
}

#[derive(Clone, Debug)]
enum Op {
    Insert(Vec<u8>, Val),
    Upsert(Vec<u8>, Val),
    Delete(Vec<u8>),
    /// Upsert table keys `start..start + count` (wrapping), value seeds counting up: grows
    /// deep trees in a few steps.
    Fill {
        start: usize,
        count: usize,
        val: Val,
    },
    /// Delete table keys `start..start + count` (wrapping): drives merges.
    Drain {
        start: usize,
        count: usize,
    },
    Get(Vec<u8>),
    /// A scan; `limit` stops early (the cursor is dropped mid-range).
    Range {
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        rev: bool,
        limit: Option<usize>,
    },
    Count {
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
    },
    /// A scan that takes `take` entries, lets `writes` change the tree (splits, merges), then
    /// runs to its end. Not a snapshot: it must return keys in order, within bounds, once
    /// each; every key no write touched and present from the start; and for each key only a
    /// value it held at some point.
    ScanInterleaved {
        lower: Bound<Vec<u8>>,
        upper: Bound<Vec<u8>>,
        rev: bool,
        take: usize,
        /// Upserts, deletes, fills and drains.
        writes: Vec<Op>,
    },
    Checkpoint,
    /// Close the log, drop everything (unflushed pages are lost), open again: recovery.
    Reopen,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // Up to 3 bytes of a 3-letter alphabet: 40 keys, the empty one included.
        1 => prop::collection::vec(prop::sample::select(&ALPHABET[..3]), 0..=3),
        3 => (0..TABLE_KEYS).prop_map(table_key),
    ]
}

fn val() -> impl Strategy<Value = Val> {
    (
        prop_oneof![
            6 => 0usize..=40,
            3 => 0usize..=200,
            1 => 2000usize..6000,
        ],
        any::<u8>(),
    )
        .prop_map(|(len, seed)| Val { len, seed })
}

/// A quarter of the cases start from a bulk-loaded tree.
fn bulk() -> impl Strategy<Value = Option<BTreeMap<Vec<u8>, Val>>> {
    prop::option::weighted(0.25, prop::collection::btree_map(key(), val(), 0..300))
}

fn bound() -> impl Strategy<Value = Bound<Vec<u8>>> {
    prop_oneof![
        2 => key().prop_map(Bound::Included),
        2 => key().prop_map(Bound::Excluded),
        1 => Just(Bound::Unbounded),
    ]
}

fn fill() -> impl Strategy<Value = Op> {
    // Short values only: a run of overflow values would make the case slow, not deeper.
    (0..TABLE_KEYS, 1usize..=200, 0usize..=40, any::<u8>()).prop_map(|(start, count, len, seed)| {
        Op::Fill {
            start,
            count,
            val: Val { len, seed },
        }
    })
}

fn drain() -> impl Strategy<Value = Op> {
    (0..TABLE_KEYS, 1usize..=200).prop_map(|(start, count)| Op::Drain { start, count })
}

/// The operations that change the tree, run in the middle of a `ScanInterleaved`.
fn write_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), val()).prop_map(|(k, v)| Op::Upsert(k, v)),
        4 => key().prop_map(Op::Delete),
        1 => fill(),
        2 => drain(),
    ]
}

/// The keys an upsert, delete, fill or drain writes.
fn touched(op: &Op) -> Vec<Vec<u8>> {
    match op {
        Op::Upsert(k, _) | Op::Delete(k) => vec![k.clone()],
        Op::Fill { start, count, .. } | Op::Drain { start, count } => (0..*count)
            .map(|i| table_key((start + i) % TABLE_KEYS))
            .collect(),
        _ => Vec::new(),
    }
}

/// Every value each key held (for scans that run while the tree changes).
type Held = BTreeMap<Vec<u8>, Vec<Vec<u8>>>;

/// Runs an upsert, delete, fill or drain on the tree and the model, noting new values in
/// `held`.
fn write(env: &Env, model: &mut Model, held: &mut Held, op: &Op) -> Result<(), TestCaseError> {
    let mut upsert = |k: Vec<u8>, v: Vec<u8>| -> Result<(), TestCaseError> {
        let existed = env.tree.upsert(&k, &v).unwrap();
        held.entry(k.clone()).or_default().push(v.clone());
        prop_assert_eq!(existed, model.insert(k, v).is_some());
        Ok(())
    };
    match op {
        Op::Upsert(k, v) => upsert(k.clone(), v.bytes())?,
        Op::Fill { start, count, val } => {
            for i in 0..*count {
                let v = value(val.len, val.seed.wrapping_add(i as u8));
                upsert(table_key((start + i) % TABLE_KEYS), v)?;
            }
        }
        Op::Delete(k) => {
            let present = env.tree.delete(k).unwrap();
            prop_assert_eq!(present, model.remove(k).is_some());
        }
        Op::Drain { start, count } => {
            for i in 0..*count {
                let k = table_key((start + i) % TABLE_KEYS);
                let present = env.tree.delete(&k).unwrap();
                prop_assert_eq!(present, model.remove(&k).is_some());
            }
        }
        other => unreachable!("{other:?} is not a write"),
    }
    Ok(())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (key(), val()).prop_map(|(k, v)| Op::Insert(k, v)),
        8 => (key(), val()).prop_map(|(k, v)| Op::Upsert(k, v)),
        5 => key().prop_map(Op::Delete),
        1 => fill(),
        1 => drain(),
        3 => key().prop_map(Op::Get),
        3 => (bound(), bound(), any::<bool>(), prop::option::weighted(0.2, 0usize..8))
            .prop_map(|(lower, upper, rev, limit)| Op::Range { lower, upper, rev, limit }),
        1 => (bound(), bound()).prop_map(|(lower, upper)| Op::Count { lower, upper }),
        2 => (
            bound(),
            bound(),
            any::<bool>(),
            0usize..40,
            prop::collection::vec(write_op(), 0..12),
        )
            .prop_map(|(lower, upper, rev, take, writes)| Op::ScanInterleaved {
                lower,
                upper,
                rev,
                take,
                writes,
            }),
        1 => Just(Op::Checkpoint),
        1 => Just(Op::Reopen),
    ]
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn in_range(key: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    (match lower {
        Bound::Included(l) => key >= l.as_slice(),
        Bound::Excluded(l) => key > l.as_slice(),
        Bound::Unbounded => true,
    }) && (match upper {
        Bound::Included(u) => key <= u.as_slice(),
        Bound::Excluded(u) => key < u.as_slice(),
        Bound::Unbounded => true,
    })
}

/// The model's entries in the range (`BTreeMap::range` panics on an inverted range; a scan of
/// one is empty).
fn model_range(
    model: &Model,
    lower: &Bound<Vec<u8>>,
    upper: &Bound<Vec<u8>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .iter()
        .filter(|(k, _)| in_range(k, lower, upper))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every page of the file is the meta page, a node, an overflow page or on the free list: none
/// leaks.
fn check_pages(env: &Env) -> Result<(), TestCaseError> {
    let s = env.tree.stats().unwrap();
    let pages = env.pool.disk().page_count(env.tree.file()).unwrap();
    let used = 1 + s.leaf_count + s.internal_count + s.overflow_count + s.free_count;
    prop_assert_eq!(pages, used, "pages leaked: {:?}", s);
    Ok(())
}

fn scan_all(env: &Env) -> Vec<(Vec<u8>, Vec<u8>)> {
    env.tree
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| e.unwrap())
        .collect()
}

/// Short display of a value for assertion messages.
fn brief(v: &Option<Vec<u8>>) -> String {
    match v {
        None => "None".into(),
        Some(v) => format!("{} bytes {:?}..", v.len(), &v[..v.len().min(8)]),
    }
}

/// Seconds since `START` at which the last operation finished.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// Cases running now (the watchdog sleeps while there are none).
static RUNNING: AtomicU64 = AtomicU64::new(0);
static START: OnceLock<Instant> = OnceLock::new();
/// An operation (a reopen included) taking longer than this is taken for a deadlock.
const STALL_SECS: u64 = 60;

/// Notes progress; the first call starts a watchdog that aborts the process (so CI fails
/// instead of hanging) when a case runs and no operation finishes for `STALL_SECS`.
fn progress() {
    let start = START.get_or_init(|| {
        std::thread::spawn(|| {
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = START.get().expect("set").elapsed().as_secs();
                let last = PROGRESS.load(Ordering::Relaxed);
                if RUNNING.load(Ordering::Relaxed) > 0 && now > last + STALL_SECS {
                    eprintln!("model test: no progress for {STALL_SECS} s, a deadlock? aborting");
                    std::process::abort();
                }
            }
        });
        Instant::now()
    });
    PROGRESS.fetch_max(start.elapsed().as_secs(), Ordering::Relaxed);
}

/// Counts a running case for the watchdog, until dropped.
struct Running;

impl Running {
    fn start() -> Running {
        progress();
        RUNNING.fetch_add(1, Ordering::Relaxed);
        Running
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `ops` from an empty tree, or from one bulk loaded with `bulk`.
fn run(
    policy: SplitPolicy,
    frames: usize,
    bulk: Option<BTreeMap<Vec<u8>, Val>>,
    ops: Vec<Op>,
) -> Result<(), TestCaseError> {
    let _running = Running::start();
    let dir = tempfile::tempdir().unwrap();
    let config = small(policy);
    let reopen = |path: &Path| open(path, config, frames).0;
    let mut env = reopen(dir.path());
    let mut model = Model::new();
    if let Some(bulk) = bulk {
        model = bulk.into_iter().map(|(k, v)| (k, v.bytes())).collect();
        let n = env.tree.bulk_load(model.clone()).unwrap();
        prop_assert_eq!(n as usize, model.len());
        env.tree.check().unwrap();
        check_pages(&env)?;
    }
    for (step, op) in ops.into_iter().enumerate() {
        match &op {
            Op::Insert(k, v) => {
                let r = env.tree.insert(k, &v.bytes());
                if model.contains_key(k) {
                    prop_assert!(matches!(r, Err(Error::DuplicateKey)), "step {step}: {r:?}");
                } else {
                    r.unwrap();
                    model.insert(k.clone(), v.bytes());
                }
            }
            Op::Upsert(..) | Op::Delete(_) | Op::Fill { .. } | Op::Drain { .. } => {
                write(&env, &mut model, &mut Held::new(), &op)?;
            }
            Op::Get(k) => {
                let got = env.tree.get(k).unwrap();
                let want = model.get(k).cloned();
                prop_assert!(
                    got == want,
                    "step {step}: get {k:?}: {} != {}",
                    brief(&got),
                    brief(&want)
                );
            }
            Op::Range {
                lower,
                upper,
                rev,
                limit,
            } => {
                let (lo, hi) = (as_ref(lower), as_ref(upper));
                let cursor = if *rev {
                    env.tree.range_rev(lo, hi)
                } else {
                    env.tree.range(lo, hi)
                };
                let got: Vec<_> = cursor
                    .take(limit.unwrap_or(usize::MAX))
                    .map(|e| e.unwrap())
                    .collect();
                let mut want = model_range(&model, lower, upper);
                if *rev {
                    want.reverse();
                }
                want.truncate(limit.unwrap_or(usize::MAX));
                let keys =
                    |v: &[(Vec<u8>, Vec<u8>)]| v.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
                prop_assert_eq!(keys(&got), keys(&want), "step {}", step);
                prop_assert!(got == want, "step {step}: values differ");
            }
            Op::Count { lower, upper } => {
                let n = env.tree.count(as_ref(lower), as_ref(upper)).unwrap();
                prop_assert_eq!(n as usize, model_range(&model, lower, upper).len());
            }
            Op::ScanInterleaved {
                lower,
                upper,
                rev,
                take,
                writes,
            } => {
                let before = model.clone();
                let (lo, hi) = (as_ref(lower), as_ref(upper));
                let mut cursor = if *rev {
                    env.tree.range_rev(lo, hi)
                } else {
                    env.tree.range(lo, hi)
                };
                let mut got: Vec<_> = cursor.by_ref().take(*take).map(|e| e.unwrap()).collect();
                let mut held: Held = before
                    .iter()
                    .map(|(k, v)| (k.clone(), vec![v.clone()]))
                    .collect();
                // Keys a write touched: the scan may or may not see their changes.
                let mut written = std::collections::BTreeSet::new();
                for w in writes {
                    write(&env, &mut model, &mut held, w)?;
                    written.extend(touched(w));
                }
                got.extend(cursor.map(|e| e.unwrap()));
                for w in got.windows(2) {
                    let ordered = if *rev {
                        w[0].0 > w[1].0
                    } else {
                        w[0].0 < w[1].0
                    };
                    prop_assert!(ordered, "step {step}: {:?} then {:?}", w[0].0, w[1].0);
                }
                for (k, v) in &got {
                    prop_assert!(in_range(k, lower, upper), "step {step}: {k:?} out of range");
                    prop_assert!(
                        held.get(k).is_some_and(|vs| vs.contains(v)),
                        "step {step}: {k:?} with a value it never held"
                    );
                }
                let returned: std::collections::BTreeSet<&Vec<u8>> =
                    got.iter().map(|(k, _)| k).collect();
                for k in before.keys() {
                    if in_range(k, lower, upper) && !written.contains(k) {
                        prop_assert!(returned.contains(k), "step {step}: {k:?} not returned");
                    }
                }
            }
            Op::Checkpoint => {
                env.wal.checkpoint(&env.pool).unwrap();
            }
            Op::Reopen => {
                env.wal.close().unwrap();
                drop(env);
                env = reopen(dir.path());
                let all = scan_all(&env);
                let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                prop_assert!(all == want, "step {step}: contents differ after recovery");
            }
        }
        progress();
        if let Err(e) = env.tree.check() {
            return Err(TestCaseError::fail(format!(
                "step {step} ({op:?}): check failed: {e}"
            )));
        }
        if matches!(
            op,
            Op::Fill { .. } | Op::Drain { .. } | Op::Reopen | Op::ScanInterleaved { .. }
        ) {
            check_pages(&env)?;
        }
    }
    check_pages(&env)?;
    let all = scan_all(&env);
    let want: Vec<_> = model.into_iter().collect();
    prop_assert!(all == want, "final contents differ");
    Ok(())
}

fn cases() -> u32 {
    if std::env::var_os("STORELAB_LONG").is_some_and(|v| v == "1") {
        1000
    } else {
        64
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/model.txt",
        ))),
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Middle splits: random operation sequences agree with a `BTreeMap`, `check()` after each.
    #[test]
    fn model_middle_split(
        frames in 16usize..=32,
        bulk in bulk(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(SplitPolicy::Middle, frames, bulk, ops)?;
    }

    /// Insert-point splits: random operation sequences agree with a `BTreeMap`.
    #[test]
    fn model_insert_point_split(
        frames in 16usize..=32,
        bulk in bulk(),
        ops in prop::collection::vec(op(), 1..300),
    ) {
        run(SplitPolicy::InsertPoint, frames, bulk, ops)?;
    }
}

/// Thousands of seeded random operations grow the tree, then deletes drive merges; deleting
/// everything collapses the root back to a single leaf, and every page but the meta page and
/// the root leaf ends up on the free list.
#[test]
fn deletes_merge_and_collapse_the_root() {
    for policy in [SplitPolicy::Middle, SplitPolicy::InsertPoint] {
        let dir = tempfile::tempdir().unwrap();
        let (env, _) = open(dir.path(), small(policy), 32);
        let mut rng = StdRng::seed_from_u64(0x5eed_b7ee);
        let mut model = Model::new();
        let key_of = |i: u32| format!("k{:05}", i * 7919 % 4000).into_bytes();
        for step in 0..6000 {
            let k = key_of(rng.random_range(0..1500));
            match rng.random_range(0..10) {
                0..=5 => {
                    let len = if rng.random_bool(0.02) {
                        rng.random_range(2000..6000)
                    } else {
                        rng.random_range(0..30)
                    };
                    let v = value(len, rng.random());
                    let existed = env.tree.upsert(&k, &v).unwrap();
                    assert_eq!(existed, model.insert(k, v).is_some(), "step {step}");
                }
                6..=8 => {
                    let present = env.tree.delete(&k).unwrap();
                    assert_eq!(present, model.remove(&k).is_some(), "step {step}");
                }
                _ => assert_eq!(env.tree.get(&k).unwrap(), model.get(&k).cloned()),
            }
            if step % 97 == 0 {
                env.tree.check().unwrap();
            }
        }
        env.tree.check().unwrap();
        let grown = env.tree.stats().unwrap();
        assert!(grown.height >= 3, "{policy:?}: {grown:?}");
        assert_eq!(grown.entry_count as usize, model.len());
        // Delete everything, in random order.
        let mut keys: Vec<Vec<u8>> = model.keys().cloned().collect();
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.random_range(0..=i));
        }
        for (i, k) in keys.iter().enumerate() {
            assert!(env.tree.delete(k).unwrap());
            model.remove(k);
            if i % 50 == 0 {
                env.tree.check().unwrap();
                assert_eq!(env.tree.get(k).unwrap(), None);
            }
        }
        env.tree.check().unwrap();
        let s = env.tree.stats().unwrap();
        assert!(s.merge_count > 0, "{policy:?}: {s:?}");
        assert_eq!(s.entry_count, 0);
        assert_eq!(s.height, 1, "{policy:?}: {s:?}");
        assert_eq!(
            (s.leaf_count, s.internal_count, s.overflow_count),
            (1, 0, 0)
        );
        let pages = env.pool.disk().page_count(env.tree.file()).unwrap();
        assert_eq!(pages, 2 + s.free_count, "{policy:?}: {s:?}");
        assert_eq!(
            env.tree.count(Bound::Unbounded, Bound::Unbounded).unwrap(),
            0
        );
        // The emptied tree still works, and survives recovery.
        env.tree.insert(b"again", b"v").unwrap();
        env.wal.close().unwrap();
        drop(env);
        let (env, _) = open(dir.path(), small(policy), 32);
        env.tree.check().unwrap();
        assert_eq!(env.tree.get(b"again").unwrap().unwrap(), b"v");
    }
}

/// Replacing an overflow value in a full leaf frees the old chain and splits the leaf in one
/// operation; the split must not take a just-freed page that the operation still latches
/// (it did: the upsert deadlocked on its own latch).
#[test]
fn replacing_an_overflow_value_in_a_full_leaf_splits() {
    let dir = tempfile::tempdir().unwrap();
    let (env, _) = open(dir.path(), small(SplitPolicy::Middle), 32);
    // An overflow cell of 17 bytes, then 22 cells of 17 bytes: 23 entries of 19 bytes with
    // their slots fill 437 of the root leaf's 452 bytes.
    env.tree.insert(b"k", &value(3000, 1)).unwrap();
    for i in 0..22 {
        env.tree
            .insert(format!("a{i:02}").as_bytes(), &value(10, i))
            .unwrap();
    }
    assert_eq!(env.tree.stats().unwrap().height, 1);
    // A 35-byte inline cell does not fit in place of the 17-byte reference: split.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let existed = env.tree.upsert(b"k", &value(30, 2)).unwrap();
            tx.send(existed).unwrap();
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(existed) => assert!(existed),
            Err(_) => {
                eprintln!("the upsert deadlocked on its own latch");
                std::process::abort();
            }
        }
    });
    let s = env.tree.stats().unwrap();
    assert_eq!(
        (s.height, s.overflow_count, s.entry_count),
        (2, 0, 23),
        "{s:?}"
    );
    assert_eq!(env.tree.get(b"k").unwrap().unwrap(), value(30, 2));
    env.tree.check().unwrap();
}

/// A cursor that left a leaf which then merged with the next one (deletes between two steps
/// of the scan) finds the merged leaf by descending again; it must skip the keys it returned
/// already (it returned them twice, out of order). Keys present throughout come exactly once.
#[test]
fn cursor_continues_past_a_merge_without_repeating_keys() {
    let key = |i: usize| format!("key{i:04}").into_bytes();
    for policy in [SplitPolicy::Middle, SplitPolicy::InsertPoint] {
        for rev in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let (env, _) = open(dir.path(), small(policy), 32);
            for i in 0..300 {
                env.tree.insert(&key(i), &value(20, i as u8)).unwrap();
            }
            let mut cursor = if rev {
                env.tree.range_rev(Bound::Unbounded, Bound::Unbounded)
            } else {
                env.tree.range(Bound::Unbounded, Bound::Unbounded)
            };
            // The first step copies the first leaf; then empty the leaves after it but one key.
            let mut got = vec![cursor.next().unwrap().unwrap().0];
            let deleted: Vec<usize> = if rev {
                (150..299).collect()
            } else {
                (1..150).collect()
            };
            let merges = env.tree.stats().unwrap().merge_count;
            for &i in &deleted {
                env.tree.delete(&key(i)).unwrap();
            }
            assert!(env.tree.stats().unwrap().merge_count > merges);
            got.extend(cursor.map(|e| e.unwrap().0));
            for w in got.windows(2) {
                let ordered = if rev { w[0] > w[1] } else { w[0] < w[1] };
                assert!(ordered, "{policy:?} rev={rev}: {:?} then {:?}", w[0], w[1]);
            }
            let mut want: Vec<Vec<u8>> =
                (0..300).filter(|i| !deleted.contains(i)).map(key).collect();
            if rev {
                want.reverse();
            }
            let kept: Vec<Vec<u8>> = got.into_iter().filter(|k| want.contains(k)).collect();
            assert_eq!(kept, want, "{policy:?} rev={rev}");
            env.tree.check().unwrap();
        }
    }
}
