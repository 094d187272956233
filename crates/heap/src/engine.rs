//! The heap engine: a directory of heap tables sharing one pool and one log.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use storelab_pager::FileId;
use storelab_table::catalog::{Catalog, TableId};
use storelab_table::{Engine, EngineStats, Error, Result, Schema, Table};
use storelab_wal::{RedoRegistry, RelId};

use crate::table::{HeapOptions, HeapTable, TableFiles, TableMeta};
use storelab_table::{Storage, StorageConfig};

/// The engine's name in the catalog.
pub const ENGINE_NAME: &str = "heap";

/// Relations per table in the log's numbering: table `t`'s heap is `t * 32`, its primary
/// index `t * 32 + 1`, secondary `i` is `t * 32 + 2 + i`.
const RELS_PER_TABLE: u32 = 32;

/// A directory of heap tables.
pub struct HeapEngine {
    /// First field, so dropped first: the thread stops before the log is closed.
    _autovacuum: Option<AutovacuumWorker>,
    storage: Storage,
    catalog: Arc<Mutex<Catalog>>,
    /// Serialises `create_table`.
    create_lock: Mutex<()>,
    tables: TableMap,
    options: HeapOptions,
}

/// The tables of an engine, shared with the autovacuum thread.
type TableMap = Arc<RwLock<HashMap<String, Arc<HeapTable>>>>;

/// The background autovacuum thread (PostgreSQL's launcher and one worker in one): every
/// naptime it vacuums each table whose dead tuples passed the trigger.
struct AutovacuumWorker {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl AutovacuumWorker {
    fn start(tables: &TableMap, naptime: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tables = Arc::downgrade(tables);
        let flag = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("storelab-autovacuum".into())
            .spawn(move || {
                while !flag.load(Ordering::Acquire) {
                    std::thread::sleep(naptime);
                    let Some(tables) = tables.upgrade() else {
                        return;
                    };
                    let list: Vec<Arc<HeapTable>> = tables.read().values().cloned().collect();
                    drop(tables);
                    for table in list {
                        if flag.load(Ordering::Acquire) {
                            return;
                        }
                        // A failure here (I/O) poisons the log; the next write reports it.
                        let _ = table.autovacuum_now();
                    }
                }
            })
            .expect("spawn the autovacuum thread");
        AutovacuumWorker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for AutovacuumWorker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl std::fmt::Debug for HeapEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeapEngine")
            .field("dir", &self.storage.dir)
            .finish_non_exhaustive()
    }
}

fn files_of(storage: &Storage, id: TableId, schema: &Schema) -> Result<TableFiles> {
    let base =
        id.0.checked_mul(RELS_PER_TABLE)
            .ok_or_else(|| Error::InvalidArgument(format!("table id {} too large", id.0)))?;
    let open = |name: String, n: u32| -> Result<(FileId, RelId)> {
        let path: PathBuf = storage.dir.join(&name);
        let file = storage.disk.open_file(&path, &name, true)?;
        let rel = RelId(base + n);
        storage.wal.attach(rel, file);
        Ok((file, rel))
    };
    let t = id.0;
    Ok(TableFiles {
        heap: open(format!("t{t}.heap"), 0)?,
        primary: open(format!("t{t}.primary.idx"), 1)?,
        secondaries: schema
            .indexes
            .iter()
            .enumerate()
            .map(|(i, def)| open(format!("t{t}.{}.idx", def.name), 2 + i as u32))
            .collect::<Result<Vec<_>>>()?,
    })
}

/// Deletes a table's files and creates them empty again.
fn reset_files(
    storage: &Storage,
    id: TableId,
    schema: &Schema,
    files: TableFiles,
) -> Result<TableFiles> {
    let all = std::iter::once(files.heap)
        .chain(std::iter::once(files.primary))
        .chain(files.secondaries.iter().copied());
    for (file, _) in all {
        storage.pool.evict_file(file)?;
        let path = storage.disk.path(file)?;
        storage.disk.close_file(file)?;
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
    }
    files_of(storage, id, schema)
}

impl HeapEngine {
    /// Opens (or creates) a heap database in `dir`, recovering from the log.
    pub fn open(dir: &Path, config: &StorageConfig, options: HeapOptions) -> Result<HeapEngine> {
        let mut storage = Storage::open(dir, config)?;
        let catalog = Arc::new(Mutex::new(Catalog::open_or_create(dir, ENGINE_NAME)?));
        let mut opened = Vec::new();
        for entry in catalog.lock().tables() {
            let files = files_of(&storage, entry.id, &entry.schema)?;
            let meta = TableMeta::from_json(&entry.engine_data);
            opened.push((entry.id, entry.schema.clone(), files, meta));
        }
        let mut registry = RedoRegistry::new();
        storelab_btree::register_redo(&mut registry);
        crate::redo::register_redo(&mut registry);
        storage.recover(&registry)?;
        let mut tables = HashMap::new();
        for (id, schema, mut files, mut meta) in opened {
            if meta.loading {
                // A bulk load was cut short: empty the table (recovery has just checkpointed,
                // so its pages are clean and the log will not replay them again).
                files = reset_files(&storage, id, &schema, files)?;
                meta.loading = false;
                catalog
                    .lock()
                    .set_engine_data(&schema.name, meta.to_json())?;
            }
            let name = schema.name.clone();
            let table = HeapTable::open(
                schema,
                Arc::clone(&storage.pool),
                Arc::clone(&storage.wal),
                &files,
                options,
                Arc::clone(&catalog),
                meta,
            )?;
            tables.insert(name, Arc::new(table));
        }
        let tables: TableMap = Arc::new(RwLock::new(tables));
        let autovacuum = (options.autovacuum && options.autovacuum_background).then(|| {
            AutovacuumWorker::start(
                &tables,
                Duration::from_millis(options.autovacuum_naptime_ms.max(1)),
            )
        });
        Ok(HeapEngine {
            storage,
            catalog,
            create_lock: Mutex::new(()),
            tables,
            options,
            _autovacuum: autovacuum,
        })
    }

    /// The disk, pool and log underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// A table as the heap engine's own type (for VACUUM and counters).
    pub fn heap_table(&self, name: &str) -> Result<Arc<HeapTable>> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable {
                name: name.to_string(),
            })
    }
}

impl Drop for HeapEngine {
    /// A clean shutdown records each table's exact next hidden row id (after a crash, ids
    /// continue above the last reservation instead).
    fn drop(&mut self) {
        self._autovacuum.take();
        // Clean only if everything logged could be made durable: after an I/O failure (or a
        // simulated power cut) the next open must work from what is on disk.
        if self.storage.wal.close().is_err() || self.storage.disk.is_poisoned() {
            return;
        }
        for table in self.tables.read().values() {
            let _ = table.save_row_id();
        }
    }
}

impl Engine for HeapEngine {
    fn name(&self) -> &str {
        ENGINE_NAME
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        schema.validate()?;
        // One create at a time (the catalog's lock), and the catalog names the table before
        // any of its files or log records exist: recovery must know every relation the log
        // may name. A crash after this leaves a table whose files are created empty at the
        // next open.
        let _one = self.create_lock.lock();
        if self.tables.read().contains_key(&schema.name) {
            return Err(Error::TableExists { name: schema.name });
        }
        let meta = TableMeta::default();
        let id = self.catalog.lock().add(schema.clone(), meta.to_json())?;
        let files = files_of(&self.storage, id, &schema)?;
        let table = HeapTable::open(
            schema.clone(),
            Arc::clone(&self.storage.pool),
            Arc::clone(&self.storage.wal),
            &files,
            self.options,
            Arc::clone(&self.catalog),
            meta,
        )?;
        self.storage.wal.commit(self.storage.wal.insert_lsn())?;
        let table = Arc::new(table);
        self.tables.write().insert(schema.name, Arc::clone(&table));
        Ok(table)
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        Ok(self.heap_table(name)?)
    }

    fn table_names(&self) -> Vec<String> {
        self.catalog.lock().table_names()
    }

    fn checkpoint(&self) -> Result<()> {
        self.storage.wal.checkpoint(&self.storage.pool)?;
        Ok(())
    }

    fn stats(&self) -> Result<EngineStats> {
        Ok(self.storage.engine_stats())
    }

    fn check(&self) -> Result<()> {
        // Not the pool's own check: it needs a quiet pool (no pins), and background
        // autovacuum may be running; each table's check takes that table's lock.
        let tables: Vec<Arc<HeapTable>> = self.tables.read().values().cloned().collect();
        for t in tables {
            t.check()?;
        }
        Ok(())
    }

    fn row_size_max(&self) -> usize {
        crate::heap_page::row_size_max(self.storage.pool.page_size()) - 8
    }
}
