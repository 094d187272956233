//! B+tree micro-benchmarks, each beside an in-memory `std::collections::BTreeMap` reference.
//!
//! Run with `cargo bench --bench btree` (one group: `cargo bench --bench btree -- get`).
//! Entries are 16-byte keys and 100-byte values in 8 KiB pages, and the buffer pool is large
//! enough to hold every page, so the figures are CPU costs of the tree and the pool, never of
//! the disk (except `insert/btree_durable`, which measures a synced commit per insert).
//!
//! Groups:
//! - `get`: random point lookups in bulk-loaded trees of 100k and 1M entries (the setup checks
//!   the tree and that no get misses the pool). A descent is a chain of dependent cache
//!   misses (page table, frame, node header, one cell per binary-search probe), and a
//!   dependent miss to DRAM costs ~150-250 ns on the project's VM: at the time of writing a
//!   1M-entry get took ~1.6-1.7 us there, ~1.2x `BTreeMap`, which pays the same misses.
//! - `insert`: sequential keys (insert-point split) and random keys (middle split) into a tree
//!   of 100k-300k entries, with the log's commit mode `off`; plus one durable variant.
//! - `range_100`: a scan of 100 consecutive entries from a random start.
//! - `bulk_load`: building a 100k-entry tree from sorted input.
//!
//! The reference lines copy what they return (`get(..).cloned()`, owned pairs from a range),
//! because the tree's API returns owned bytes: the ratio then compares the structures, not an
//! allocation the tree must make and the map need not.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::ops::Bound;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_main};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use storelab::btree::{BTree, BTreeConfig, SplitPolicy, register_redo};
use storelab::pager::io::SyncBackend;
use storelab::pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab::wal::{CommitMode, RedoRegistry, RelId, TornPageMode, Wal, WalConfig};

/// Key size in bytes.
const KEY_SIZE: usize = 16;
/// Value size in bytes.
const VALUE_SIZE: usize = 100;
/// Entries of the trees the `get` and `range_100` groups read.
const GET_ENTRY_COUNTS: [u64; 2] = [100_000, 1_000_000];
/// Entries bulk-loaded before an insert run starts.
const INSERT_BASE_COUNT: u64 = 100_000;
/// Inserts into one tree before the insert benchmark starts over with a fresh one (untimed),
/// which bounds the tree, the pool and the log however many iterations criterion asks for.
const INSERT_RUN_MAX: u64 = 200_000;
/// Frames in the pool: 64k frames of 8 KiB (512 MiB) hold the largest tree here (1M entries
/// take ~17k leaves bulk-loaded; 300k entries inserted at random ~7k) with room to spare.
const POOL_FRAME_COUNT: usize = 1 << 16;
/// Seed of every random sequence, so runs are comparable.
const SEED: u64 = 0x5EED_B7EE;

/// Key number `i`: big-endian, so the byte order is the numeric order, padded to 16 bytes.
fn key(i: u64) -> [u8; KEY_SIZE] {
    let mut k = [0u8; KEY_SIZE];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&(!i).to_be_bytes());
    k
}

/// A key in random order: splitmix64 is a bijection on u64, so distinct `i` give distinct keys.
fn random_key(i: u64) -> [u8; KEY_SIZE] {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    key(z)
}

fn value(i: u64) -> Vec<u8> {
    (0..VALUE_SIZE as u64)
        .map(|j| (i.wrapping_mul(31).wrapping_add(j)) as u8)
        .collect()
}

/// A tree with its log and pool in a temporary directory (removed on drop).
struct Env {
    tree: BTree,
    wal: Arc<Wal>,
    _dir: tempfile::TempDir,
}

impl Drop for Env {
    fn drop(&mut self) {
        // Stops the background writer of commit mode `off`; errors do not matter here.
        let _ = self.wal.close();
    }
}

fn open(commit_mode: CommitMode, split: SplitPolicy) -> Env {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K8,
        false,
    );
    let file = disk
        .open_file(&dir.path().join("tree.rel"), "tree", true)
        .expect("open tree file");
    let pool = Arc::new(
        BufferPool::new(Arc::clone(&disk), PoolConfig::frames(POOL_FRAME_COUNT)).expect("pool"),
    );
    let mut wal_config = WalConfig::new(dir.path().join("wal"));
    wal_config.commit_mode = commit_mode;
    wal_config.torn_page = TornPageMode::FullPageImages;
    // No checkpoints: a checkpoint writes the dirty pool out, which is not what is measured.
    wal_config.checkpoint_wal_bytes = 0;
    let wal = Wal::open(wal_config, &disk).expect("wal");
    let rel = RelId(1);
    wal.attach(rel, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    wal.recover(&pool, &redo).expect("recover");
    let config = BTreeConfig {
        split,
        ..BTreeConfig::default()
    };
    let tree = BTree::open(pool, Arc::clone(&wal), file, rel, config).expect("tree");
    Env {
        tree,
        wal,
        _dir: dir,
    }
}

/// A tree bulk-loaded with keys `0..count`, checked, and fully cached.
fn loaded_tree(count: u64) -> Env {
    let env = open(CommitMode::Off, SplitPolicy::Middle);
    let loaded = env
        .tree
        .bulk_load((0..count).map(|i| (key(i).to_vec(), value(i))))
        .expect("bulk load");
    assert_eq!(loaded, count);
    env.tree.check().expect("bulk-loaded tree checks out");
    let stats = env.tree.stats().expect("stats");
    eprintln!("{count} entries bulk-loaded: {stats:?}");
    env
}

/// The same entries in a map.
fn loaded_map(count: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    (0..count).map(|i| (key(i).to_vec(), value(i))).collect()
}

// Setups run inside the benchmark closures, which criterion calls only for benchmarks that
// pass the command line's filter: `cargo bench --bench btree -- insert` builds no 1M tree.

fn get(c: &mut Criterion) {
    let mut group = c.benchmark_group("get");
    group.throughput(Throughput::Elements(1));
    for count in GET_ENTRY_COUNTS {
        // Criterion calls a closure once per sample: state that must persist (the tree, the
        // random sequence) lives outside it.
        let mut env = None;
        let mut rng = SmallRng::seed_from_u64(SEED);
        group.bench_function(BenchmarkId::new("btree", count), |b| {
            let env = env.get_or_insert_with(|| loaded_tree(count));
            let misses_before = env.tree.pool().stats().miss_count;
            b.iter(|| {
                let k = key(rng.random_range(0..count));
                black_box(env.tree.get(black_box(&k)).expect("get"))
            });
            let misses = env.tree.pool().stats().miss_count - misses_before;
            assert_eq!(misses, 0, "every get should hit the pool");
        });
        drop(env);
        let mut map = None;
        let mut rng = SmallRng::seed_from_u64(SEED);
        group.bench_function(BenchmarkId::new("btreemap", count), |b| {
            let map = map.get_or_insert_with(|| loaded_map(count));
            b.iter(|| {
                let k = key(rng.random_range(0..count));
                black_box(map.get(black_box(&k[..])).cloned())
            })
        });
    }
    group.finish();
}

/// Calls `insert(target, n)` `iters` times, `n` counting on from where the last call stopped,
/// on targets made by `start` (a tree or a map, bulk-loaded with `INSERT_BASE_COUNT` entries
/// or empty): after `INSERT_RUN_MAX` inserts the target is replaced by a fresh one, untimed.
/// Returns the time spent inserting.
fn timed_inserts<T>(
    state: &mut Option<(T, u64)>,
    start: &dyn Fn() -> T,
    insert: &dyn Fn(&mut T, u64),
    iters: u64,
) -> Duration {
    let mut elapsed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        if state
            .as_ref()
            .is_none_or(|(_, n)| *n >= INSERT_BASE_COUNT + INSERT_RUN_MAX)
        {
            *state = None; // Drop the old tree before building the next.
            *state = Some((start(), INSERT_BASE_COUNT));
        }
        let (target, next) = state.as_mut().expect("just started");
        let batch = left.min(INSERT_BASE_COUNT + INSERT_RUN_MAX - *next);
        let t = Instant::now();
        for n in *next..*next + batch {
            insert(target, n);
        }
        elapsed += t.elapsed();
        *next += batch;
        left -= batch;
    }
    elapsed
}

fn insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(1));
    let v = value(7);
    // Sequential keys: each insert goes past the largest key, into the rightmost leaf.
    // Random keys: `random_key(n)` for the base and for the inserts alike, so the inserts land
    // all over the tree; the base is bulk-loaded in sorted order.
    type KeyFn = fn(u64) -> [u8; KEY_SIZE];
    let cases: [(&str, KeyFn, SplitPolicy); 2] = [
        ("sequential", key, SplitPolicy::InsertPoint),
        ("random", random_key, SplitPolicy::Middle),
    ];
    for (name, key_of, split) in cases {
        let base = || {
            let mut keys: Vec<[u8; KEY_SIZE]> = (0..INSERT_BASE_COUNT).map(key_of).collect();
            keys.sort_unstable();
            keys
        };
        // Commit mode `off`: a commit is acknowledged without waiting for fdatasync (the
        // background writer syncs every 10 ms), so this measures the tree and the log append,
        // not the disk's flush latency (~120-220 us here, see insert/btree_durable).
        let mut state = None;
        let start = || {
            let env = open(CommitMode::Off, split);
            env.tree
                .bulk_load(base().into_iter().map(|k| (k.to_vec(), v.clone())))
                .expect("bulk load");
            env
        };
        group.bench_function(BenchmarkId::new("btree", name), |b| {
            b.iter_custom(|iters| {
                timed_inserts(
                    &mut state,
                    &start,
                    &|env: &mut Env, n| env.tree.insert(&key_of(n), &v).expect("insert"),
                    iters,
                )
            })
        });
        if let Some((env, _)) = &state {
            env.tree.check().expect("tree checks out after the inserts");
            let s = env.tree.stats().expect("stats");
            eprintln!("insert/{name}: leaf fill {:.3}, {s:?}", s.leaf_fill);
        }
        drop(state);
        let mut state = None;
        let start = || {
            base()
                .into_iter()
                .map(|k| (k.to_vec(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        };
        group.bench_function(BenchmarkId::new("btreemap", name), |b| {
            b.iter_custom(|iters| {
                timed_inserts(
                    &mut state,
                    &start,
                    &|map: &mut BTreeMap<Vec<u8>, Vec<u8>>, n| {
                        map.insert(key_of(n).to_vec(), v.clone());
                    },
                    iters,
                )
            })
        });
    }
    // One durable variant: commit mode `sync`, an fdatasync of the log per insert. Expect the
    // disk's synced-write latency (NOTES.md: ~6.8k/s preallocated, ~4.5k/s growing file).
    group.sample_size(10);
    let mut state = None;
    let start = || open(CommitMode::Sync, SplitPolicy::Middle);
    group.bench_function(BenchmarkId::new("btree_durable", "random"), |b| {
        b.iter_custom(|iters| {
            timed_inserts(
                &mut state,
                &start,
                &|env: &mut Env, n| env.tree.insert(&random_key(n), &v).expect("insert"),
                iters,
            )
        })
    });
    drop(state);
    group.finish();
}

fn range_100(c: &mut Criterion) {
    const SCAN_LEN: u64 = 100;
    let count = GET_ENTRY_COUNTS[0];
    let mut group = c.benchmark_group("range_100");
    group.throughput(Throughput::Elements(SCAN_LEN));
    let mut env = None;
    let mut rng = SmallRng::seed_from_u64(SEED);
    group.bench_function(BenchmarkId::new("btree", count), |b| {
        let env = env.get_or_insert_with(|| loaded_tree(count));
        b.iter(|| {
            let first = rng.random_range(0..count - SCAN_LEN);
            let (lo, hi) = (key(first), key(first + SCAN_LEN));
            let mut n = 0;
            for e in env
                .tree
                .range(Bound::Included(&lo[..]), Bound::Excluded(&hi[..]))
            {
                black_box(e.expect("scan"));
                n += 1;
            }
            assert_eq!(n, SCAN_LEN);
        })
    });
    drop(env);
    let mut map = None;
    let mut rng = SmallRng::seed_from_u64(SEED);
    group.bench_function(BenchmarkId::new("btreemap", count), |b| {
        let map = map.get_or_insert_with(|| loaded_map(count));
        b.iter(|| {
            let first = rng.random_range(0..count - SCAN_LEN);
            let (lo, hi) = (key(first).to_vec(), key(first + SCAN_LEN).to_vec());
            let mut n = 0;
            for (k, v) in map.range(lo..hi) {
                black_box((k.clone(), v.clone()));
                n += 1;
            }
            assert_eq!(n, SCAN_LEN);
        })
    });
    group.finish();
}

fn bulk_load(c: &mut Criterion) {
    const COUNT: u64 = 100_000;
    let entries: Vec<(Vec<u8>, Vec<u8>)> =
        (0..COUNT).map(|i| (key(i).to_vec(), value(i))).collect();
    let mut group = c.benchmark_group("bulk_load");
    group.sample_size(10);
    group.throughput(Throughput::Elements(COUNT));
    // The input is cloned in the (untimed) setup; the tree and its directory are returned so
    // that their teardown is untimed too.
    group.bench_function(BenchmarkId::new("btree", COUNT), |b| {
        b.iter_batched(
            || (open(CommitMode::Off, SplitPolicy::Middle), entries.clone()),
            |(env, input)| {
                env.tree.bulk_load(input).expect("bulk load");
                env
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function(BenchmarkId::new("btreemap", COUNT), |b| {
        b.iter_batched(
            || entries.clone(),
            |input| input.into_iter().collect::<BTreeMap<_, _>>(),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// Criterion's generated entry point.
mod group {
    #![allow(missing_docs)] // criterion_group! generates a `pub fn` without a doc comment.
    criterion::criterion_group! {
        name = benches;
        config = super::config();
        targets = super::get, super::insert, super::range_100, super::bulk_load
    }
}
criterion_main!(group::benches);
