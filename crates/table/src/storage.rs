//! What an engine's directory stands on: the disk, the buffer pool and the log, opened and
//! recovered in the right order.
//!
//! ```text
//!   DIR/catalog.json     tables and their schemas (crates/table's Catalog)
//!   DIR/wal/             the log (crates/wal)
//!   DIR/<table files>    page files, one per heap, index or tree
//! ```
//!
//! Opening is: disk and pool, the log (which finds where recovery starts), every relation
//! attached to the log, recovery (redo into the pool, then a checkpoint), and only then the
//! structures that may log changes of their own (a B+tree creates its meta page).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use storelab_pager::buffer_pool::PolicyKind;
use storelab_pager::device::{DeviceProfile, SimulatedDevice};
use storelab_pager::io::{BackendConfig, IoBackend, open_backend};
use storelab_pager::{BufferPool, Disk, IoCause, Ledger, PageSize, PoolConfig};
use storelab_wal::{CommitMode, RecoveryReport, RedoRegistry, TornPageMode, Wal, WalConfig};

/// Settings shared by every engine: page size, memory, I/O method, device, durability.
#[derive(Clone)]
pub struct StorageConfig {
    /// Page size of every file.
    pub page_size: PageSize,
    /// Buffer pool size in bytes (the memory budget).
    pub pool_bytes: usize,
    /// The buffer pool's eviction policy (clock sweep by default, or exact LRU).
    pub pool_policy: PolicyKind,
    /// The I/O method (`sync`, `worker`, `io_uring`, `auto`).
    pub backend: BackendConfig,
    /// `O_DIRECT` for page files.
    pub direct: bool,
    /// A simulated device in front of the backend (`None`: the real disk).
    pub device: Option<DeviceProfile>,
    /// Use this backend instead (tests: a fault device); overrides `backend` and `device`.
    pub backend_override: Option<Arc<dyn IoBackend>>,
    /// Commit durability (`sync` by default: acknowledged after fdatasync).
    pub commit_mode: CommitMode,
    /// Torn-page protection.
    pub torn_page: TornPageMode,
    /// Checkpoint after this many log bytes (0: only when asked).
    pub checkpoint_wal_bytes: u64,
    /// WAL segment size in bytes.
    pub wal_segment_size: usize,
}

impl std::fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageConfig")
            .field("page_size", &self.page_size)
            .field("pool_bytes", &self.pool_bytes)
            .field("pool_policy", &self.pool_policy)
            .field("backend", &self.backend)
            .field("direct", &self.direct)
            .field("device", &self.device)
            .field("commit_mode", &self.commit_mode)
            .field("torn_page", &self.torn_page)
            .finish_non_exhaustive()
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            page_size: PageSize::K8,
            pool_bytes: 64 << 20,
            pool_policy: PolicyKind::ClockSweep,
            backend: BackendConfig::default(),
            direct: false,
            device: None,
            backend_override: None,
            commit_mode: CommitMode::Sync,
            torn_page: TornPageMode::FullPageImages,
            checkpoint_wal_bytes: 64 << 20,
            wal_segment_size: 16 << 20,
        }
    }
}

/// An open directory: disk, pool and log.
pub struct Storage {
    /// The directory.
    pub dir: PathBuf,
    /// The page files.
    pub disk: Arc<Disk>,
    /// The buffer pool.
    pub pool: Arc<BufferPool>,
    /// The log.
    pub wal: Arc<Wal>,
    /// What recovery did at open.
    pub recovery: Option<RecoveryReport>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Opens disk, pool and log in `dir` (created if missing); recovery waits for
    /// [`recover`](Self::recover), after the caller attached every relation.
    pub fn open(dir: &Path, config: &StorageConfig) -> Result<Storage> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let backend = match &config.backend_override {
            Some(b) => Arc::clone(b),
            None => {
                let real = open_backend(&config.backend)?;
                match &config.device {
                    Some(profile) => Arc::new(SimulatedDevice::new(real, profile.clone(), 0)?)
                        as Arc<dyn IoBackend>,
                    None => real,
                }
            }
        };
        let disk = Disk::new(backend, Ledger::new(), config.page_size, config.direct);
        let frames = (config.pool_bytes / config.page_size.bytes()).max(16);
        let pool = Arc::new(BufferPool::new(
            Arc::clone(&disk),
            PoolConfig {
                frame_count: frames,
                policy: config.pool_policy,
            },
        )?);
        let mut wal_config = WalConfig::new(dir.join("wal"));
        wal_config.commit_mode = config.commit_mode;
        wal_config.torn_page = config.torn_page;
        wal_config.checkpoint_wal_bytes = config.checkpoint_wal_bytes;
        wal_config.segment_size = config.wal_segment_size;
        let wal = Wal::open(wal_config, &disk)?;
        Ok(Storage {
            dir: dir.to_path_buf(),
            disk,
            pool,
            wal,
            recovery: None,
        })
    }

    /// Engine-wide statistics: log bytes (records and full-page images) from one snapshot of
    /// the ledger, and the buffer pool's hits and misses.
    pub fn engine_stats(&self) -> crate::engine::EngineStats {
        let ledger = self.disk.ledger().snapshot();
        let pool = self.pool.stats();
        crate::engine::EngineStats {
            wal_bytes: ledger.cause_total(IoCause::Wal).write_bytes
                + ledger.cause_total(IoCause::FullPageImage).write_bytes,
            pool_hits: pool.hit_count,
            pool_misses: pool.miss_count,
            ledger: Some(ledger),
        }
    }

    /// Replays the log; every relation it may name must be attached first.
    pub fn recover(&mut self, registry: &RedoRegistry) -> Result<()> {
        self.recovery = Some(self.wal.recover(&self.pool, registry)?);
        Ok(())
    }
}

impl Drop for Storage {
    /// A clean shutdown: everything logged is made durable (in commit mode `off` the last
    /// commits may not be yet). Errors cannot be returned from here; the next open recovers.
    fn drop(&mut self) {
        let _ = self.wal.close();
    }
}
