//! Opening a tree the way an engine does: disk, log, tree, then log recovery.
#![allow(dead_code)] // Each test binary uses a part of this module.

use std::path::Path;
use std::sync::Arc;

use storelab_lsm::{Lsm, LsmConfig, register_redo};
use storelab_pager::io::{IoBackend, SyncBackend};
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{RedoRegistry, Wal, WalConfig};

/// An open tree with what it stands on. Fields drop in order: the tree first.
pub struct Db {
    pub lsm: Lsm,
    pub wal: Arc<Wal>,
    pub pool: BufferPool,
    pub disk: Arc<Disk>,
}

pub fn sync_backend() -> Arc<dyn IoBackend> {
    Arc::new(SyncBackend::new())
}

/// Opens disk, log (small segments), tree, then recovers the log.
pub fn open(dir: &Path, config: &LsmConfig, backend: Arc<dyn IoBackend>) -> anyhow::Result<Db> {
    let disk = Disk::new(backend, Ledger::new(), PageSize::K4, false);
    let mut wal_config = WalConfig::new(dir.join("wal"));
    wal_config.segment_size = 256 << 10;
    let wal = Wal::open(wal_config, &disk)?;
    let lsm = Lsm::open(&dir.join("lsm"), config.clone(), &disk, &wal)?;
    let pool = BufferPool::new(Arc::clone(&disk), PoolConfig::frames(16))?;
    let mut registry = RedoRegistry::new();
    register_redo(&mut registry);
    wal.recover(&pool, &registry)?;
    Ok(Db {
        lsm,
        wal,
        pool,
        disk,
    })
}
