//! The catalog: which tables an engine's directory holds, their schemas, and each engine's
//! own bookkeeping for them, in one JSON file.
//!
//! ```text
//!   <dir>/catalog.json
//!   {
//!     "format_version": 2,
//!     "engine": "heap",
//!     "next_table_id": 3,
//!     "tables": [
//!       { "id": 1, "schema": { "name": "users", "columns": [...], ... },
//!         "engine_data": { "loading": false, "row_id_floor": 0, "row_id_exact": false } },
//!       ...
//!     ]
//!   }
//! ```
//!
//! # Crash safety
//!
//! Every change rewrites the whole file: write `catalog.json.tmp`, sync it, rename it over
//! `catalog.json`, sync the directory. POSIX rename is atomic, so after a crash at any point
//! `catalog.json` is either the old complete file or the new complete file (the directory
//! sync makes the new name durable; before it, a crash may bring back the old one). A left-
//! over `catalog.json.tmp` is garbage from a crash before the rename and is deleted on open.
//! This is how SQLite's and LevelDB's small metadata files (LevelDB's `CURRENT`) are
//! replaced. A failed sync poisons the catalog: every later change returns
//! [`Error::Poisoned`], since whether the file reached the disk is unknown.
//!
//! The catalog is rewritten only by DDL (table creation) and by engines recording metadata,
//! so rewriting the whole file is cheap enough; PostgreSQL instead keeps its catalog in
//! ordinary WAL-logged tables. Thread safety is the caller's (engines keep it in a mutex).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::schema::Schema;

/// The catalog's file name in the engine's directory.
pub const CATALOG_FILE_NAME: &str = "catalog.json";
/// The temporary file a new catalog is written to before it is renamed into place.
pub const CATALOG_TMP_FILE_NAME: &str = "catalog.json.tmp";
/// The catalog format this build reads and writes.
pub const CATALOG_FORMAT_VERSION: u64 = 2;
/// The key of the checksum: CRC-32C of the compact JSON serialisation of the rest of the
/// object (so a flipped byte that changes any value is detected; whitespace does not count).
pub const CATALOG_CRC_KEY: &str = "crc32c";
/// Largest catalog file accepted on open, in bytes (a corrupt length cannot make us read a
/// huge file into memory).
pub const CATALOG_SIZE_MAX: u64 = 16 << 20;
/// Most tables one catalog holds.
pub const TABLE_COUNT_MAX: usize = 4096;
/// The first table id assigned.
pub const TABLE_ID_FIRST: TableId = TableId(1);

/// Identifies a table within one engine directory; assigned increasing, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TableId(pub u32);

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One table in the catalog.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The table's id.
    pub id: TableId,
    /// Its schema.
    pub schema: Schema,
    /// Whatever the engine records about the table (file numbers, root pages); opaque here.
    pub engine_data: serde_json::Value,
}

/// The file's contents.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    format_version: u64,
    engine: String,
    next_table_id: TableId,
    tables: Vec<CatalogEntry>,
}

/// The tables of one engine directory; see the module doc.
#[derive(Debug)]
pub struct Catalog {
    dir: PathBuf,
    engine_name: String,
    next_id: TableId,
    tables: BTreeMap<String, CatalogEntry>,
    poisoned: bool,
}

impl Catalog {
    /// Opens the catalog in `dir`, or creates the directory and an empty catalog (durably)
    /// when there is none. Refuses a catalog of another engine or format version.
    pub fn open_or_create(dir: impl AsRef<Path>, engine_name: &str) -> Result<Catalog> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir).map_err(|source| io_error(&dir, source))?;
        let tmp = dir.join(CATALOG_TMP_FILE_NAME);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(io_error(&tmp, source)),
        }
        let path = dir.join(CATALOG_FILE_NAME);
        // `try_exists`, not `exists`: a failed stat must not be taken for "no catalog", or a
        // new empty catalog would be renamed over the real one.
        if path
            .try_exists()
            .map_err(|source| io_error(&path, source))?
        {
            return Catalog::load(dir, &path, engine_name);
        }
        let mut catalog = Catalog {
            dir,
            engine_name: engine_name.to_string(),
            next_id: TABLE_ID_FIRST,
            tables: BTreeMap::new(),
            poisoned: false,
        };
        catalog.save()?;
        Ok(catalog)
    }

    /// The directory holding the catalog.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The engine the catalog belongs to.
    pub fn engine_name(&self) -> &str {
        &self.engine_name
    }

    /// The tables, sorted by name.
    pub fn tables(&self) -> impl Iterator<Item = &CatalogEntry> {
        self.tables.values()
    }

    /// The tables' names, sorted.
    pub fn table_names(&self) -> Vec<String> {
        self.tables.keys().cloned().collect()
    }

    /// The table called `name`.
    pub fn get(&self, name: &str) -> Result<&CatalogEntry> {
        self.tables.get(name).ok_or_else(|| Error::NoSuchTable {
            name: name.to_string(),
        })
    }

    /// The id the next [`Catalog::add`] assigns.
    pub fn next_id(&self) -> TableId {
        self.next_id
    }

    /// Whether a failed save poisoned the catalog.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Adds a table (validating its schema) and saves the catalog; returns its new id.
    pub fn add(&mut self, schema: Schema, engine_data: serde_json::Value) -> Result<TableId> {
        self.check_not_poisoned()?;
        schema.validate()?;
        if self.tables.contains_key(&schema.name) {
            return Err(Error::TableExists { name: schema.name });
        }
        if self.tables.len() >= TABLE_COUNT_MAX {
            return Err(Error::InvalidArgument(format!(
                "the catalog holds {TABLE_COUNT_MAX} tables, the most it can"
            )));
        }
        let id = self.next_id;
        let next_id =
            id.0.checked_add(1)
                .ok_or_else(|| Error::InvalidArgument("table ids are exhausted".to_string()))?;
        let name = schema.name.clone();
        let entry = CatalogEntry {
            id,
            schema,
            engine_data,
        };
        self.tables.insert(name.clone(), entry);
        self.next_id = TableId(next_id);
        if let Err(e) = self.save() {
            self.tables.remove(&name);
            self.next_id = id;
            return Err(e);
        }
        Ok(id)
    }

    /// Replaces a table's engine data and saves the catalog.
    pub fn set_engine_data(&mut self, name: &str, engine_data: serde_json::Value) -> Result<()> {
        self.check_not_poisoned()?;
        let entry = self
            .tables
            .get_mut(name)
            .ok_or_else(|| Error::NoSuchTable {
                name: name.to_string(),
            })?;
        let old = std::mem::replace(&mut entry.engine_data, engine_data);
        if let Err(e) = self.save() {
            if let Some(entry) = self.tables.get_mut(name) {
                entry.engine_data = old;
            }
            return Err(e);
        }
        Ok(())
    }

    /// Reads and validates `path`.
    fn load(dir: PathBuf, path: &Path, engine_name: &str) -> Result<Catalog> {
        let file = File::open(path).map_err(|source| io_error(path, source))?;
        let mut text = Vec::new();
        file.take(CATALOG_SIZE_MAX + 1)
            .read_to_end(&mut text)
            .map_err(|source| io_error(path, source))?;
        Catalog::parse(dir, path, &text, engine_name)
    }

    /// Validates catalog bytes read from `path`.
    fn parse(dir: PathBuf, path: &Path, text: &[u8], engine_name: &str) -> Result<Catalog> {
        let corrupt = |reason: String| Error::corrupt(path.display().to_string(), reason);
        if text.len() as u64 > CATALOG_SIZE_MAX {
            return Err(corrupt(format!("larger than {CATALOG_SIZE_MAX} bytes")));
        }
        // The version is read first, on its own, so that a file of another version is
        // reported as such rather than as a parse error of fields this build does not know.
        let json: serde_json::Value =
            serde_json::from_slice(text).map_err(|e| corrupt(format!("not JSON: {e}")))?;
        let version = json
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| corrupt("no format_version".to_string()))?;
        if version != CATALOG_FORMAT_VERSION {
            return Err(Error::CatalogVersion {
                path: path.to_path_buf(),
                found: version,
                expected: CATALOG_FORMAT_VERSION,
            });
        }
        let mut json = json;
        let stored = json
            .as_object_mut()
            .and_then(|o| o.remove(CATALOG_CRC_KEY))
            .and_then(|v| v.as_u64())
            .ok_or_else(|| corrupt(format!("no {CATALOG_CRC_KEY}")))?;
        let actual = catalog_crc(&json);
        if stored != u64::from(actual) {
            return Err(corrupt(format!(
                "checksum {stored:#010x}, computed {actual:#010x}"
            )));
        }
        let file: CatalogFile =
            serde_json::from_value(json).map_err(|e| corrupt(format!("bad structure: {e}")))?;
        if file.engine != engine_name {
            return Err(Error::EngineMismatch {
                path: path.to_path_buf(),
                found: file.engine,
                expected: engine_name.to_string(),
            });
        }
        if file.tables.len() > TABLE_COUNT_MAX {
            return Err(corrupt(format!("more than {TABLE_COUNT_MAX} tables")));
        }
        let mut tables = BTreeMap::new();
        for entry in file.tables {
            let name = entry.schema.name.clone();
            if let Err(e) = entry.schema.validate() {
                return Err(corrupt(format!("table {name:?}: {e}")));
            }
            if entry.id < TABLE_ID_FIRST || entry.id >= file.next_table_id {
                let reason = format!(
                    "table {name:?} has id {}, outside {TABLE_ID_FIRST}..{}",
                    entry.id, file.next_table_id
                );
                return Err(corrupt(reason));
            }
            if tables.values().any(|e: &CatalogEntry| e.id == entry.id) {
                return Err(corrupt(format!("two tables have id {}", entry.id)));
            }
            if tables.insert(name.clone(), entry).is_some() {
                return Err(corrupt(format!("table {name:?} appears twice")));
            }
        }
        Ok(Catalog {
            dir,
            engine_name: engine_name.to_string(),
            next_id: file.next_table_id,
            tables,
            poisoned: false,
        })
    }

    /// Writes the catalog durably (see the module doc); poisons it on failure.
    fn save(&mut self) -> Result<()> {
        let result = self.write_and_sync();
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn write_and_sync(&self) -> Result<()> {
        let file = CatalogFile {
            format_version: CATALOG_FORMAT_VERSION,
            engine: self.engine_name.clone(),
            next_table_id: self.next_id,
            tables: self.tables.values().cloned().collect(),
        };
        let mut json = serde_json::to_value(&file)
            .map_err(|e| Error::InvalidArgument(format!("catalog does not serialize: {e}")))?;
        let crc = catalog_crc(&json);
        json.as_object_mut()
            .expect("the catalog is an object")
            .insert(CATALOG_CRC_KEY.to_string(), crc.into());
        let mut text = serde_json::to_vec_pretty(&json)
            .map_err(|e| Error::InvalidArgument(format!("catalog does not serialize: {e}")))?;
        text.push(b'\n');
        let tmp = self.dir.join(CATALOG_TMP_FILE_NAME);
        let path = self.dir.join(CATALOG_FILE_NAME);
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|source| io_error(&tmp, source))?;
        out.write_all(&text)
            .map_err(|source| io_error(&tmp, source))?;
        out.sync_all().map_err(|source| io_error(&tmp, source))?;
        drop(out);
        fs::rename(&tmp, &path).map_err(|source| io_error(&path, source))?;
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|source| io_error(&self.dir, source))
    }

    fn check_not_poisoned(&self) -> Result<()> {
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        Ok(())
    }
}

/// CRC-32C of the compact serialisation of a catalog object without its checksum.
fn catalog_crc(json: &serde_json::Value) -> u32 {
    crc32c::crc32c(&serde_json::to_vec(json).expect("a JSON value serialises"))
}

/// Decodes catalog bytes as `open_or_create` would (for fuzzing: never panics, bounded).
pub fn decode_for_fuzzing(bytes: &[u8]) -> Result<()> {
    let dir = std::env::temp_dir();
    let path = dir.join("fuzzed-catalog.json");
    Catalog::parse(dir.clone(), &path, bytes, "heap").map(|_| ())
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::value::ColumnType::{Int64, Text};

    fn schema(name: &str) -> Schema {
        Schema::builder(name)
            .column("id", Int64)
            .column("name", Text)
            .primary_key(&["id"])
            .build()
            .unwrap()
    }

    /// Tables, ids and engine data survive a reopen; ids increase from 1.
    #[test]
    fn reopen_sees_added_tables() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        assert_eq!(
            catalog.add(schema("a"), json!({"file": 1})).unwrap(),
            TableId(1)
        );
        assert_eq!(catalog.add(schema("b"), json!(null)).unwrap(), TableId(2));
        catalog.set_engine_data("b", json!({"file": 7})).unwrap();
        drop(catalog);
        let catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        assert_eq!(catalog.table_names(), ["a", "b"]);
        assert_eq!(catalog.get("a").unwrap().schema, schema("a"));
        assert_eq!(catalog.get("b").unwrap().id, TableId(2));
        assert_eq!(catalog.get("b").unwrap().engine_data, json!({"file": 7}));
        assert_eq!(catalog.next_id(), TableId(3));
        assert!(matches!(catalog.get("c"), Err(Error::NoSuchTable { .. })));
    }

    /// A second table of the same name and an invalid schema are refused.
    #[test]
    fn add_rejects_duplicates_and_invalid_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        catalog.add(schema("a"), json!(null)).unwrap();
        let again = catalog.add(schema("a"), json!(null));
        assert!(matches!(again, Err(Error::TableExists { .. })));
        let mut bad = schema("b");
        bad.primary_key = vec![9];
        let invalid = catalog.add(bad, json!(null));
        assert!(matches!(invalid, Err(Error::InvalidSchema(_))));
        assert_eq!(catalog.next_id(), TableId(2));
    }

    /// Another engine's directory is refused.
    #[test]
    fn open_refuses_another_engines_catalog() {
        let dir = tempfile::tempdir().unwrap();
        Catalog::open_or_create(dir.path(), "heap").unwrap();
        let result = Catalog::open_or_create(dir.path(), "lsm");
        assert!(matches!(result, Err(Error::EngineMismatch { .. })));
    }

    /// A catalog of another format version is refused as such, not as a parse error.
    #[test]
    fn open_refuses_another_format_version() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"{"format_version": 3, "something_new": true}"#;
        fs::write(dir.path().join(CATALOG_FILE_NAME), text).unwrap();
        let result = Catalog::open_or_create(dir.path(), "heap");
        assert!(
            matches!(
                result,
                Err(Error::CatalogVersion {
                    found: 3,
                    expected: 2,
                    ..
                })
            ),
            "{result:?}"
        );
    }

    /// Garbage, duplicate or out-of-range ids, duplicate names, an invalid schema and a
    /// mistyped field are corrupt.
    #[test]
    fn open_rejects_corrupt_catalogs() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        catalog.add(schema("a"), json!(null)).unwrap();
        catalog.add(schema("b"), json!(null)).unwrap();
        let path = dir.path().join(CATALOG_FILE_NAME);
        let good: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        let edit = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut json = good.clone();
            f(&mut json);
            serde_json::to_string(&json).unwrap()
        };
        let cases = [
            "{not json".to_string(),
            edit(&|j| j["tables"][1]["id"] = json!(1)),
            edit(&|j| j["tables"][1]["id"] = json!(9)),
            edit(&|j| j["tables"][1]["schema"]["name"] = json!("a")),
            edit(&|j| j["tables"][1]["schema"]["primary_key"] = json!([5])),
            edit(&|j| j["engine"] = json!(7)),
        ];
        for text in cases {
            fs::write(&path, &text).unwrap();
            let result = Catalog::open_or_create(dir.path(), "heap");
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{text}: {result:?}"
            );
        }
    }

    /// A temporary file left by a crash before the rename is ignored and removed.
    #[test]
    fn open_discards_leftover_tmp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        catalog.add(schema("a"), json!(null)).unwrap();
        fs::write(dir.path().join(CATALOG_TMP_FILE_NAME), "{torn").unwrap();
        let catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        assert_eq!(catalog.table_names(), ["a"]);
        assert!(!dir.path().join(CATALOG_TMP_FILE_NAME).exists());
    }
}
