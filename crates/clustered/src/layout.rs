//! Which layout a clustered database uses: the B+tree (InnoDB) or the LSM tree (MyRocks),
//! chosen when the database is created and recorded as the catalog's engine name.

use std::path::Path;

use storelab_table::catalog::CATALOG_FILE_NAME;
use storelab_table::{Engine, Error, Result, StorageConfig};

use crate::engine::{ClusteredEngine, ENGINE_NAME};
use crate::lsm_engine::{ClusteredLsmEngine, LSM_ENGINE_NAME, LsmOptions};
use crate::table::ClusteredOptions;

/// How a clustered database stores its primary and secondary indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// One B+tree per index (InnoDB): [`ClusteredEngine`], catalog engine `clustered`.
    BTree,
    /// Every index of every table in one LSM tree, keys prefixed by an index id (MyRocks):
    /// [`ClusteredLsmEngine`], catalog engine `clustered-lsm`.
    Lsm,
}

impl Layout {
    /// The engine name the catalog records for this layout.
    pub fn engine_name(self) -> &'static str {
        match self {
            Layout::BTree => ENGINE_NAME,
            Layout::Lsm => LSM_ENGINE_NAME,
        }
    }

    /// The layout a catalog engine name stands for (`None`: not a clustered database).
    pub fn from_engine_name(name: &str) -> Option<Layout> {
        [Layout::BTree, Layout::Lsm]
            .into_iter()
            .find(|l| l.engine_name() == name)
    }

    /// The layout of the database in `dir`, from its catalog; `None` if there is no catalog
    /// yet. A catalog of another engine is `EngineMismatch`.
    pub fn of_dir(dir: &Path) -> Result<Option<Layout>> {
        let path = dir.join(CATALOG_FILE_NAME);
        let text = match std::fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let json: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::corrupt(path.display().to_string(), e.to_string()))?;
        let Some(name) = json.get("engine").and_then(serde_json::Value::as_str) else {
            return Err(Error::corrupt(path.display().to_string(), "no engine name"));
        };
        match Layout::from_engine_name(name) {
            Some(layout) => Ok(Some(layout)),
            None => Err(Error::EngineMismatch {
                path,
                found: name.to_string(),
                expected: format!("{ENGINE_NAME} or {LSM_ENGINE_NAME}"),
            }),
        }
    }
}

/// Opens the clustered database in `dir` with the layout it was created with, or creates it
/// with `layout_if_new`.
pub fn open_clustered(
    dir: &Path,
    config: &StorageConfig,
    layout_if_new: Layout,
    options: ClusteredOptions,
    lsm_options: LsmOptions,
) -> Result<Box<dyn Engine>> {
    Ok(match Layout::of_dir(dir)?.unwrap_or(layout_if_new) {
        Layout::BTree => Box::new(ClusteredEngine::open(dir, config, options)?),
        Layout::Lsm => Box::new(ClusteredLsmEngine::open(dir, config, lsm_options)?),
    })
}
