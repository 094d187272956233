//! The clustered engine's LSM layout: a directory of clustered tables whose indexes all live
//! in one LSM tree, beside the shared log (MyRocks' default: every table in one column
//! family). See the crate documentation ("The LSM layout").

use std::collections::HashMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use storelab_lsm::{Lsm, LsmConfig, LsmStats};
use storelab_table::catalog::Catalog;
use storelab_table::{Engine, EngineStats, Error, Result, Schema, Storage, StorageConfig, Table};
use storelab_wal::RedoRegistry;

use crate::lsm_table::{ClusteredLsmTable, INDEX_IDS_PER_TABLE, IndexId, id_space_end, lsm_error};
use crate::table::{ROW_SIZE_MAX, as_ref};

/// The LSM layout's name in the catalog: a directory created with it opens only with it.
pub const LSM_ENGINE_NAME: &str = "clustered-lsm";
/// The tree's directory inside the database directory.
pub const LSM_DIR_NAME: &str = "lsm";
/// The tree's number in its log records.
pub const LSM_TREE_ID: u32 = 1;
/// Frames of the pager's buffer pool in the LSM layout. The pool holds no table data here
/// (the tree reads its tables through its block cache), only what the log's checkpoint
/// flushes, so it gets the pool's minimum and the rest of the budget goes to the block cache.
pub const LSM_POOL_FRAMES: usize = 16;
/// The smallest block cache given to the tree, whatever the budget.
pub const BLOCK_CACHE_BYTES_MIN: usize = 256 << 10;

/// Settings of the LSM layout.
#[derive(Clone, Debug, Default)]
pub struct LsmOptions {
    /// The tree's settings (memtable, blocks, bloom filters, compaction, background thread).
    /// The engine sets `name`, `tree_id` and `block_cache_bytes` itself: the block cache gets
    /// the memory budget (see [`block_cache_bytes`]).
    pub lsm: LsmConfig,
}

impl LsmOptions {
    /// Tiny memtables, blocks and tables, inline flushes and compactions: a few hundred rows
    /// flush and compact through several levels (tests).
    pub fn tiny() -> LsmOptions {
        LsmOptions {
            lsm: LsmConfig::tiny(),
        }
    }
}

/// The block cache's share of a storage configuration's memory budget: `pool_bytes` less
/// the pager's small pool ([`LSM_POOL_FRAMES`] pages), at least [`BLOCK_CACHE_BYTES_MIN`].
/// Memtables (`memtable_bytes_max` times one plus `immutable_count_max`) and the index and
/// filter blocks pinned by open tables are outside it, as RocksDB's write buffers and (by
/// default) its index and filter blocks are outside its block cache; `Table::stats` reports
/// them (`lsm_memtable_bytes`, `lsm_pinned_bytes`).
pub fn block_cache_bytes(config: &StorageConfig) -> usize {
    let pager = LSM_POOL_FRAMES * config.page_size.bytes();
    config
        .pool_bytes
        .saturating_sub(pager)
        .max(BLOCK_CACHE_BYTES_MIN)
}

/// A directory of clustered tables stored in one LSM tree (MyRocks' layout).
pub struct ClusteredLsmEngine {
    // Fields drop in order: the tables and the tree (its background thread stops) before the
    // log and the disk under them.
    tables: RwLock<HashMap<String, Arc<ClusteredLsmTable>>>,
    catalog: Arc<Mutex<Catalog>>,
    lsm: Arc<Lsm>,
    storage: Storage,
}

impl std::fmt::Debug for ClusteredLsmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusteredLsmEngine")
            .field("dir", &self.storage.dir)
            .finish_non_exhaustive()
    }
}

impl ClusteredLsmEngine {
    /// Opens (or creates) a clustered database with the LSM layout in `dir`, recovering: the
    /// log is opened, the tree replays its records into a table, then the log's recovery
    /// checkpoints (keeping what the tree needs). A directory created with another engine
    /// is refused with `EngineMismatch` before anything is opened.
    pub fn open(dir: &Path, config: &StorageConfig, options: LsmOptions) -> Result<Self> {
        let catalog = Arc::new(Mutex::new(Catalog::open_or_create(dir, LSM_ENGINE_NAME)?));
        let storage_config = StorageConfig {
            pool_bytes: LSM_POOL_FRAMES * config.page_size.bytes(),
            ..config.clone()
        };
        let mut storage = Storage::open(dir, &storage_config)?;
        let lsm_config = LsmConfig {
            name: LSM_DIR_NAME.to_string(),
            tree_id: LSM_TREE_ID,
            block_cache_bytes: block_cache_bytes(config),
            ..options.lsm
        };
        let lsm = Lsm::open(
            &dir.join(LSM_DIR_NAME),
            lsm_config,
            &storage.disk,
            &storage.wal,
        )
        .map_err(lsm_error)?;
        let lsm = Arc::new(lsm);
        let mut registry = RedoRegistry::new();
        storelab_lsm::register_redo(&mut registry);
        storage.recover(&registry)?;
        let entries: Vec<_> = catalog.lock().tables().cloned().collect();
        let mut tables = HashMap::new();
        for entry in entries {
            let loading = entry.engine_data.get("loading") == Some(&serde_json::Value::Bool(true));
            let name = entry.schema.name.clone();
            let table = ClusteredLsmTable::open(
                entry.schema,
                entry.id,
                Arc::clone(&lsm),
                Arc::clone(&storage.wal),
                Arc::clone(&storage.pool),
                Arc::clone(&catalog),
                loading,
            )?;
            tables.insert(name, Arc::new(table));
        }
        Ok(ClusteredLsmEngine {
            tables: RwLock::new(tables),
            catalog,
            lsm,
            storage,
        })
    }

    /// The disk, pool and log underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The database's tree (shared by every table).
    pub fn lsm(&self) -> &Arc<Lsm> {
        &self.lsm
    }

    /// The tree's statistics: per level, amplifications, bloom filters, cache.
    pub fn lsm_stats(&self) -> LsmStats {
        self.lsm.stats()
    }

    /// A table as the LSM layout's own type.
    pub fn lsm_table(&self, name: &str) -> Result<Arc<ClusteredLsmTable>> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable {
                name: name.to_string(),
            })
    }

    /// Checks that the tree holds no key outside the id spaces of the catalog's tables.
    fn check_no_stray_keys(&self) -> Result<()> {
        let mut firsts: Vec<u32> = Vec::new();
        for entry in self.catalog.lock().tables() {
            firsts.push(IndexId::table_first(entry.id)?.0);
        }
        firsts.sort_unstable();
        let mut lower: Bound<Vec<u8>> = Bound::Unbounded;
        let mut gaps = Vec::new();
        for first in firsts {
            gaps.push((lower, id_space_end(first)));
            lower = Bound::Included((first + INDEX_IDS_PER_TABLE).to_be_bytes().to_vec());
        }
        gaps.push((lower, Bound::Unbounded));
        for (lower, upper) in &gaps {
            let mut iter = self
                .lsm
                .range(as_ref(lower), as_ref(upper))
                .map_err(lsm_error)?;
            if let Some(item) = iter.next() {
                let (key, _) = item.map_err(lsm_error)?;
                let id = IndexId::of_key(&key).map_or(-1, |id| i64::from(id.0));
                return Err(Error::corrupt(
                    "clustered LSM database",
                    format!("a key of index id {id}, which belongs to no table"),
                ));
            }
        }
        Ok(())
    }
}

impl Engine for ClusteredLsmEngine {
    fn name(&self) -> &str {
        LSM_ENGINE_NAME
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        schema.validate()?;
        let mut catalog = self.catalog.lock();
        if self.tables.read().contains_key(&schema.name) {
            return Err(Error::TableExists { name: schema.name });
        }
        IndexId::table_first(catalog.next_id())?;
        // The catalog names the table before any of its keys exists; its id space is its own
        // (ids are never reused), so a crash after this leaves an empty table.
        let id = catalog.add(schema.clone(), serde_json::Value::Null)?;
        drop(catalog);
        let table = Arc::new(ClusteredLsmTable::open(
            schema.clone(),
            id,
            Arc::clone(&self.lsm),
            Arc::clone(&self.storage.wal),
            Arc::clone(&self.storage.pool),
            Arc::clone(&self.catalog),
            false,
        )?);
        self.tables.write().insert(schema.name, Arc::clone(&table));
        Ok(table)
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        Ok(self.lsm_table(name)?)
    }

    fn table_names(&self) -> Vec<String> {
        self.catalog.lock().table_names()
    }

    /// Flushes the memtables into tables (so recovery replays nothing), lets the log go, and
    /// checkpoints the log. The flush does not hold the tree's write lock while it waits.
    fn checkpoint(&self) -> Result<()> {
        self.lsm.flush().map_err(lsm_error)?;
        self.lsm.release_log().map_err(lsm_error)?;
        self.storage.wal.checkpoint(&self.storage.pool)?;
        Ok(())
    }

    /// `pool_hits` and `pool_misses` are the block cache's: it holds the memory budget here.
    fn stats(&self) -> Result<EngineStats> {
        // The block cache stands where a B+tree engine's pool stands.
        let cache = self.lsm.stats().cache;
        Ok(EngineStats {
            pool_hits: cache.hit_count,
            pool_misses: cache.miss_count,
            ..self.storage.engine_stats()
        })
    }

    fn check(&self) -> Result<()> {
        self.lsm.check().map_err(lsm_error)?;
        let tables: Vec<Arc<ClusteredLsmTable>> = self.tables.read().values().cloned().collect();
        for table in tables {
            table.check_rows()?;
        }
        self.check_no_stray_keys()
    }

    fn row_size_max(&self) -> usize {
        ROW_SIZE_MAX
    }
}
