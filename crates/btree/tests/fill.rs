//! Leaf fill left by the split policies, with real 8 KiB nodes, 16-byte keys, 100-byte values.
//!
//! Ascending inserts with the insert-point split leave every leaf but the last full (the left
//! half of each split keeps everything); random inserts with the middle split leave leaves
//! between half and completely full, about ln 2 = 69% on average (Yao, "On random 2-3 trees",
//! 1978). The figures are printed; run with `--nocapture` to see them.
//!
//! Debug builds insert 20k entries per case; release builds and `STORELAB_LONG=1` insert 200k:
//! `cargo test --release -p storelab-btree --test fill -- --nocapture`.

use std::sync::Arc;

use storelab_btree::{BTree, BTreeConfig, BTreeStats, SplitPolicy, register_redo};
use storelab_pager::io::SyncBackend;
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{CommitMode, RedoRegistry, RelId, TornPageMode, Wal, WalConfig};

const VALUE_SIZE: usize = 100;

fn entry_count() -> u64 {
    if cfg!(debug_assertions) && std::env::var_os("STORELAB_LONG").is_none() {
        20_000
    } else {
        200_000
    }
}

/// A 16-byte key: the big-endian number, so byte order is numeric order, then padding.
fn key(i: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_be_bytes());
    k[8..].copy_from_slice(&(!i).to_be_bytes());
    k
}

/// splitmix64: a bijection on u64, so distinct inputs give distinct (random-looking) keys.
fn mix(i: u64) -> u64 {
    let mut z = i.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Inserts `count` entries with keys `key(key_of(i))` into a fresh tree of 8 KiB nodes split
/// by `split`, checks it, and returns its statistics.
fn fill_after_inserts(split: SplitPolicy, key_of: fn(u64) -> u64, count: u64) -> BTreeStats {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K8,
        false,
    );
    let file = disk
        .open_file(&dir.path().join("tree.rel"), "tree", true)
        .unwrap();
    // Enough frames for every page: 200k entries take at most ~6k leaves at 50% fill.
    let pool = Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(16_384)).unwrap());
    let mut wal_config = WalConfig::new(dir.path().join("wal"));
    wal_config.commit_mode = CommitMode::Off;
    wal_config.torn_page = TornPageMode::FullPageImages;
    wal_config.checkpoint_wal_bytes = 0;
    let wal = Wal::open(wal_config, &disk).unwrap();
    let rel = RelId(1);
    wal.attach(rel, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    wal.recover(&pool, &redo).unwrap();
    let config = BTreeConfig {
        split,
        ..BTreeConfig::default()
    };
    let tree = BTree::open(pool, Arc::clone(&wal), file, rel, config).unwrap();
    let value = [0x5Au8; VALUE_SIZE];
    for i in 0..count {
        tree.insert(&key(key_of(i)), &value).unwrap();
    }
    tree.check().unwrap();
    let stats = tree.stats().unwrap();
    assert_eq!(stats.entry_count, count, "{stats:?}");
    wal.close().unwrap();
    stats
}

fn report(case: &str, s: &BTreeStats) {
    println!(
        "{case}: leaf fill {:.1}% over {} leaves (height {}, {} splits)",
        s.leaf_fill * 100.0,
        s.leaf_count,
        s.height,
        s.split_count
    );
}

/// Ascending keys split at the insertion point leave leaves at least 90% full.
#[test]
fn sequential_inserts_with_insert_point_split_fill_leaves() {
    let s = fill_after_inserts(SplitPolicy::InsertPoint, |i| i, entry_count());
    report("sequential, insert-point split", &s);
    assert!(s.leaf_fill >= 0.90, "{s:?}");
}

/// Random keys split in the middle leave leaves about ln 2 full: between 55% and 80% here.
#[test]
fn random_inserts_with_middle_split_fill_leaves_two_thirds() {
    let s = fill_after_inserts(SplitPolicy::Middle, mix, entry_count());
    report("random, middle split", &s);
    assert!(s.leaf_fill >= 0.55 && s.leaf_fill <= 0.80, "{s:?}");
}

/// For contrast: ascending keys split in the middle leave leaves half full (each left half is
/// never touched again), and random keys with the insert-point policy split as middle does
/// (only an insert past the last key of the rightmost leaf splits at the insertion point).
#[test]
fn other_pairings_fill_leaves_as_the_middle_split_does() {
    let s = fill_after_inserts(SplitPolicy::Middle, |i| i, entry_count());
    report("sequential, middle split", &s);
    assert!(s.leaf_fill >= 0.45 && s.leaf_fill <= 0.60, "{s:?}");
    let s = fill_after_inserts(SplitPolicy::InsertPoint, mix, entry_count());
    report("random, insert-point split", &s);
    assert!(s.leaf_fill >= 0.55 && s.leaf_fill <= 0.80, "{s:?}");
}
