//! Shared setup for the B+tree tests: a pool, a log and a tree in a temporary directory.
#![allow(dead_code)] // Each test binary uses a different part.

use std::path::Path;
use std::sync::Arc;

use storelab_btree::{BTree, BTreeConfig, register_redo};
use storelab_pager::io::SyncBackend;
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{CommitMode, RecoveryReport, RedoRegistry, RelId, TornPageMode, Wal, WalConfig};

/// The tree's relation number in the log.
pub const REL: RelId = RelId(7);

/// An open tree with its pool and log.
pub struct Env {
    /// The tree.
    pub tree: BTree,
    /// Its log.
    pub wal: Arc<Wal>,
    /// Its buffer pool.
    pub pool: Arc<BufferPool>,
}

/// Opens (creating or recovering) the tree in `dir`.
pub fn open(dir: &Path, config: BTreeConfig, frames: usize) -> (Env, RecoveryReport) {
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K4,
        false,
    );
    let file = disk.open_file(&dir.join("tree.rel"), "tree", true).unwrap();
    let pool = Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(frames)).unwrap());
    let mut wal_config = WalConfig::new(dir.join("wal"));
    wal_config.segment_size = 1 << 20;
    wal_config.commit_mode = CommitMode::Off;
    wal_config.torn_page = TornPageMode::FullPageImages;
    wal_config.checkpoint_wal_bytes = 0;
    let wal = Wal::open(wal_config, &disk).unwrap();
    wal.attach(REL, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    let report = wal.recover(&pool, &redo).unwrap();
    let tree = BTree::open(Arc::clone(&pool), Arc::clone(&wal), file, REL, config).unwrap();
    (Env { tree, wal, pool }, report)
}

/// A small-node configuration that makes deep trees from a few hundred keys.
pub fn small(split: storelab_btree::SplitPolicy) -> BTreeConfig {
    BTreeConfig {
        node_size: Some(512),
        split,
        ..BTreeConfig::default()
    }
}
