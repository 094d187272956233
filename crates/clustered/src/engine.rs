//! The clustered engine: a directory of clustered tables sharing one pool and one log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use storelab_pager::FileId;
use storelab_table::catalog::{Catalog, TableId};
use storelab_table::{Engine, EngineStats, Error, Result, Schema, Storage, StorageConfig, Table};
use storelab_wal::{RedoRegistry, RelId};

use crate::table::{ClusteredOptions, ClusteredTable, ROW_SIZE_MAX, TableFiles};

/// The engine's name in the catalog.
pub const ENGINE_NAME: &str = "clustered";

/// Relations per table in the log's numbering, as the heap engine's: table `t`'s primary tree
/// is `t * 32 + 1`, secondary `i` is `t * 32 + 2 + i`, the row-id tree `t * 32 + 31`
/// (`t * 32` is the heap file in the heap engine and unused here).
pub const RELS_PER_TABLE: u32 = 32;
/// Relation offset of the primary tree.
const PRIMARY_REL: u32 = 1;
/// Relation offset of the first secondary index.
const FIRST_SECONDARY_REL: u32 = 2;
/// Relation offset of the row-id tree.
const ROW_ID_REL: u32 = RELS_PER_TABLE - 1;
const _: () = assert!(
    FIRST_SECONDARY_REL as usize + storelab_table::schema::INDEX_COUNT_MAX <= ROW_ID_REL as usize,
    "secondary relations stay below the row-id tree's"
);

/// A directory of clustered tables.
pub struct ClusteredEngine {
    storage: Storage,
    catalog: Arc<Mutex<Catalog>>,
    tables: RwLock<HashMap<String, Arc<ClusteredTable>>>,
    options: ClusteredOptions,
}

impl std::fmt::Debug for ClusteredEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusteredEngine")
            .field("dir", &self.storage.dir)
            .finish_non_exhaustive()
    }
}

/// Opens (creating if missing) a table's files and attaches them to the log. File names:
/// `t{id}.primary.idx`, `t{id}.{index}.idx`, and `t{id}.row-id.idx` for a table without a
/// primary key (the `-` cannot appear in an index name, so it never clashes).
fn files_of(storage: &Storage, id: TableId, schema: &Schema) -> Result<TableFiles> {
    let base =
        id.0.checked_mul(RELS_PER_TABLE)
            .ok_or_else(|| Error::InvalidArgument(format!("table id {} too large", id.0)))?;
    let open = |name: String, n: u32| -> Result<(FileId, RelId)> {
        let path = storage.dir.join(&name);
        let file = storage.disk.open_file(&path, &name, true)?;
        let rel = RelId(base + n);
        storage.wal.attach(rel, file);
        Ok((file, rel))
    };
    let t = id.0;
    Ok(TableFiles {
        primary: open(format!("t{t}.primary.idx"), PRIMARY_REL)?,
        secondaries: schema
            .indexes
            .iter()
            .enumerate()
            .map(|(i, def)| {
                open(
                    format!("t{t}.{}.idx", def.name),
                    FIRST_SECONDARY_REL + i as u32,
                )
            })
            .collect::<Result<Vec<_>>>()?,
        row_id: match schema.has_primary_key() {
            true => None,
            false => Some(open(format!("t{t}.row-id.idx"), ROW_ID_REL)?),
        },
    })
}

/// Deletes a table's files and creates them empty again.
fn reset_files(
    storage: &Storage,
    id: TableId,
    schema: &Schema,
    files: TableFiles,
) -> Result<TableFiles> {
    let all = std::iter::once(files.primary)
        .chain(files.secondaries.iter().copied())
        .chain(files.row_id);
    for (file, _) in all {
        storage.pool.evict_file(file)?;
        let path = storage.disk.path(file)?;
        storage.disk.close_file(file)?;
        std::fs::remove_file(&path).map_err(|source| Error::Io { path, source })?;
    }
    files_of(storage, id, schema)
}

impl ClusteredEngine {
    /// Opens (or creates) a clustered database in `dir`, recovering from the log.
    pub fn open(
        dir: &Path,
        config: &StorageConfig,
        options: ClusteredOptions,
    ) -> Result<ClusteredEngine> {
        let mut storage = Storage::open(dir, config)?;
        let catalog = Arc::new(Mutex::new(Catalog::open_or_create(dir, ENGINE_NAME)?));
        let mut opened = Vec::new();
        for entry in catalog.lock().tables() {
            let files = files_of(&storage, entry.id, &entry.schema)?;
            let loading = entry.engine_data.get("loading") == Some(&serde_json::Value::Bool(true));
            opened.push((entry.id, entry.schema.clone(), files, loading));
        }
        // Every relation is attached before recovery replays the log.
        let mut registry = RedoRegistry::new();
        storelab_btree::register_redo(&mut registry);
        storage.recover(&registry)?;
        let mut tables = HashMap::new();
        for (id, schema, mut files, loading) in opened {
            if loading {
                // A bulk load was cut short: empty the table (recovery has just checkpointed,
                // so its pages are clean and the log will not replay them again).
                files = reset_files(&storage, id, &schema, files)?;
                catalog
                    .lock()
                    .set_engine_data(&schema.name, serde_json::Value::Null)?;
            }
            let name = schema.name.clone();
            let table = ClusteredTable::open(
                schema,
                Arc::clone(&storage.pool),
                Arc::clone(&storage.wal),
                &files,
                options,
                Arc::clone(&catalog),
            )?;
            tables.insert(name, Arc::new(table));
        }
        Ok(ClusteredEngine {
            storage,
            catalog,
            tables: RwLock::new(tables),
            options,
        })
    }

    /// The disk, pool and log underneath.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// A table as the clustered engine's own type (for tree statistics).
    pub fn clustered_table(&self, name: &str) -> Result<Arc<ClusteredTable>> {
        self.tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::NoSuchTable {
                name: name.to_string(),
            })
    }
}

impl Engine for ClusteredEngine {
    fn name(&self) -> &str {
        ENGINE_NAME
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        schema.validate()?;
        let mut catalog = self.catalog.lock();
        if self.tables.read().contains_key(&schema.name) {
            return Err(Error::TableExists { name: schema.name });
        }
        // The catalog names the table before any of its files or log records exist: recovery
        // must know every relation the log may name. A crash after this leaves a table whose
        // files are created empty at the next open.
        let id = catalog.add(schema.clone(), serde_json::Value::Null)?;
        let files = files_of(&self.storage, id, &schema)?;
        let table = ClusteredTable::open(
            schema.clone(),
            Arc::clone(&self.storage.pool),
            Arc::clone(&self.storage.wal),
            &files,
            self.options,
            Arc::clone(&self.catalog),
        )?;
        self.storage.wal.commit(self.storage.wal.insert_lsn())?;
        let table = Arc::new(table);
        self.tables.write().insert(schema.name, Arc::clone(&table));
        Ok(table)
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        Ok(self.clustered_table(name)?)
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
        self.storage.pool.check()?;
        let tables: Vec<Arc<ClusteredTable>> = self.tables.read().values().cloned().collect();
        for table in tables {
            table.check()?;
        }
        Ok(())
    }

    fn row_size_max(&self) -> usize {
        ROW_SIZE_MAX
    }
}
