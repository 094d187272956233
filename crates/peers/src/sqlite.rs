//! SQLite through rusqlite (the bundled amalgamation), in two layouts.
//!
//! ```text
//!   sqlite (WITHOUT ROWID, clustered, InnoDB-like)
//!     CREATE TABLE "t" (pk BLOB PRIMARY KEY NOT NULL, row BLOB NOT NULL,
//!                       s0 BLOB NOT NULL, s1 ...) WITHOUT ROWID
//!     CREATE [UNIQUE] INDEX "t.<index i>" ON "t"(s<i>)       entries: (s<i>, pk)
//!
//!   sqlite-rowid (rowid table, heap-like, PostgreSQL-like)
//!     CREATE TABLE "t" (pk BLOB NOT NULL, row BLOB NOT NULL, s0 BLOB NOT NULL, ...)
//!     CREATE UNIQUE INDEX "t.primary" ON "t"(pk)              entries: (pk, rowid)
//!     CREATE [UNIQUE] INDEX "t.<index i>" ON "t"(s<i>)       entries: (s<i>, rowid)
//!
//!   CREATE TABLE "storelab.meta" (name TEXT PRIMARY KEY, next_row_id INTEGER NOT NULL)
//! ```
//!
//! `pk` is the order-preserving key encoding of the primary key (or of the hidden row id),
//! `row` the storelab row codec's bytes, and `s<i>` index `i`'s encoded key: BLOBs compare
//! with `memcmp`, so SQLite orders them exactly as storelab's B+trees do. Real SQL indexes on
//! the `s<i>` columns let SQLite maintain the secondary indexes itself; the price is that an
//! indexed value is stored twice in the table's row (in `row` and in `s<i>`).
//!
//! In the rowid layout every primary-key read is two B-tree descents (the `t.primary` index,
//! then the table by rowid), as a PostgreSQL index scan is an index descent plus a heap
//! fetch; a full scan walks the table in rowid (insertion) order, as a heap's sequential
//! scan walks pages.
//!
//! Settings: `journal_mode=WAL`; `synchronous=FULL` in the `sync` and `group` commit modes
//! (the WAL is synced at every commit; this bundled build has no `HAVE_FDATASYNC`, so SQLite
//! calls `fsync`), `OFF` in mode `off`; `page_size` = storelab's page size; `cache_size` =
//! the memory budget; the default WAL auto-checkpoint (1000 pages). One batch is one
//! `BEGIN IMMEDIATE ... COMMIT`.
//!
//! Simplified: one connection behind a mutex serves every thread, so reads and writes
//! serialise (SQLite in WAL mode would let a connection per reader run in parallel; with one
//! connection the memory budget is exactly one page cache). A scan holds the connection while
//! it calls the visitor.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use storelab_table::{ByteRange, Result, StorageConfig};
use storelab_wal::CommitMode;

use crate::error::PeerResultExt;
use crate::store::{Layout, META_STRUCTURE_NAME, RowSink, Source, Store, WriteBody, WriteTxn};

/// The database file's name in the engine's directory (SQLite adds `-wal` and `-shm`).
pub const SQLITE_FILE_NAME: &str = "sqlite.db";
/// Prepared statements kept per connection (a few per table and index).
const STATEMENT_CACHE_CAPACITY: usize = 128;

/// SQLite's settings, as recorded in results.
#[derive(Clone, Debug)]
pub struct SqliteSettings {
    /// WITHOUT ROWID (clustered) or rowid (heap-like) tables.
    pub without_rowid: bool,
    /// `PRAGMA synchronous`.
    pub synchronous: &'static str,
    /// `PRAGMA page_size`, bytes.
    pub page_size_bytes: usize,
    /// `PRAGMA cache_size`, KiB (given to SQLite negated, meaning KiB).
    pub cache_size_kib: usize,
}

impl SqliteSettings {
    /// The settings for a storage configuration.
    pub fn new(without_rowid: bool, config: &StorageConfig) -> SqliteSettings {
        SqliteSettings {
            without_rowid,
            synchronous: match config.commit_mode {
                CommitMode::Off => "OFF",
                _ => "FULL",
            },
            page_size_bytes: config.page_size.bytes(),
            cache_size_kib: (config.pool_bytes / 1024).max(64),
        }
    }
}

/// A SQLite database file behind the [`Store`] trait; see the module doc.
pub struct SqliteStore {
    dir: PathBuf,
    settings: SqliteSettings,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates) `dir/sqlite.db` with the settings.
    pub fn open(dir: &Path, settings: SqliteSettings) -> Result<SqliteStore> {
        let conn = Connection::open(dir.join(SQLITE_FILE_NAME)).in_dir(dir)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
        // page_size only takes effect before the first table exists (and not in WAL mode),
        // so it comes first; on an existing file it is ignored.
        conn.pragma_update(None, "page_size", settings.page_size_bytes as i64)
            .in_dir(dir)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .in_dir(dir)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(storelab_table::Error::InvalidArgument(format!(
                "SQLite refused WAL mode (journal_mode is {mode})"
            )));
        }
        conn.pragma_update(None, "synchronous", settings.synchronous)
            .in_dir(dir)?;
        conn.pragma_update(None, "cache_size", -(settings.cache_size_kib as i64))
            .in_dir(dir)?;
        conn.execute(
            &format!(
                "CREATE TABLE IF NOT EXISTS \"{META_STRUCTURE_NAME}\" \
                 (name TEXT PRIMARY KEY, next_row_id INTEGER NOT NULL)"
            ),
            [],
        )
        .in_dir(dir)?;
        Ok(SqliteStore {
            dir: dir.to_path_buf(),
            settings,
            conn: Mutex::new(conn),
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &SqliteSettings {
        &self.settings
    }

    /// The name of the rowid layout's primary-key index.
    fn primary_index(layout: &Layout) -> String {
        format!("{}.primary", layout.table)
    }
}

/// `col >= ?` / `col > ?` / `col <= ?` / `col < ?` conditions and their parameters.
fn conditions<'r>(column: &str, range: &'r ByteRange) -> (String, Vec<&'r [u8]>) {
    let mut sql = Vec::new();
    let mut params = Vec::new();
    match &range.0 {
        Bound::Included(v) => {
            sql.push(format!("{column} >= ?"));
            params.push(v.as_slice());
        }
        Bound::Excluded(v) => {
            sql.push(format!("{column} > ?"));
            params.push(v.as_slice());
        }
        Bound::Unbounded => {}
    }
    match &range.1 {
        Bound::Included(v) => {
            sql.push(format!("{column} <= ?"));
            params.push(v.as_slice());
        }
        Bound::Excluded(v) => {
            sql.push(format!("{column} < ?"));
            params.push(v.as_slice());
        }
        Bound::Unbounded => {}
    }
    let sql = if sql.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", sql.join(" AND "))
    };
    (sql, params)
}

fn sqlite_err(dir: &Path, e: rusqlite::Error) -> storelab_table::Error {
    crate::error::PeerError::from(e).into_table_error(dir)
}

impl Store for SqliteStore {
    fn dir(&self) -> &Path {
        &self.dir
    }

    fn create_table(&self, layout: &Layout) -> Result<()> {
        let mut columns = String::from("pk BLOB NOT NULL");
        if self.settings.without_rowid {
            columns.push_str(" PRIMARY KEY");
        }
        columns.push_str(", row BLOB NOT NULL");
        for i in 0..layout.indexes.len() {
            columns.push_str(&format!(", s{i} BLOB NOT NULL"));
        }
        let mut sql = format!(
            "CREATE TABLE IF NOT EXISTS \"{}\" ({columns}){};",
            layout.table,
            if self.settings.without_rowid {
                " WITHOUT ROWID"
            } else {
                ""
            }
        );
        if !self.settings.without_rowid {
            sql.push_str(&format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS \"{}\" ON \"{}\"(pk);",
                Self::primary_index(layout),
                layout.table
            ));
        }
        for (i, name) in layout.indexes.iter().enumerate() {
            sql.push_str(&format!(
                "CREATE {}INDEX IF NOT EXISTS \"{name}\" ON \"{}\"(s{i});",
                if layout.unique[i] { "UNIQUE " } else { "" },
                layout.table
            ));
        }
        let mut conn = self.conn.lock();
        let tx = conn.transaction().in_dir(&self.dir)?;
        tx.execute_batch(&sql).in_dir(&self.dir)?;
        tx.commit().in_dir(&self.dir)
    }

    fn write(&self, layout: &Layout, body: WriteBody<'_>) -> Result<()> {
        let mut conn = self.conn.lock();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .in_dir(&self.dir)?;
        body(&mut SqliteTxn {
            conn: &tx,
            dir: &self.dir,
            layout,
        })?;
        // Dropping `tx` on the error path above rolls the batch back.
        tx.commit().in_dir(&self.dir)
    }

    fn get(&self, layout: &Layout, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        let conn = self.conn.lock();
        get_row(&conn, &self.dir, layout, pk)
    }

    fn scan(
        &self,
        layout: &Layout,
        source: Source,
        range: &ByteRange,
        sink: RowSink<'_>,
    ) -> Result<()> {
        let table = &layout.table;
        let (sql, params) = match source {
            Source::Full => (format!("SELECT pk, row FROM \"{table}\""), Vec::new()),
            Source::Primary { reverse } => {
                let (cond, params) = conditions("pk", range);
                let indexed = if self.settings.without_rowid {
                    String::new()
                } else {
                    format!(" INDEXED BY \"{}\"", Self::primary_index(layout))
                };
                let order = if reverse { "DESC" } else { "ASC" };
                (
                    format!("SELECT pk, row FROM \"{table}\"{indexed}{cond} ORDER BY pk {order}"),
                    params,
                )
            }
            Source::Index(i) => {
                let (cond, params) = conditions(&format!("s{i}"), range);
                (
                    format!(
                        "SELECT pk, row FROM \"{table}\" INDEXED BY \"{}\"{cond} ORDER BY s{i}",
                        layout.indexes[i]
                    ),
                    params,
                )
            }
        };
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(&sql).in_dir(&self.dir)?;
        let mut rows = stmt.query(params_from_iter(params)).in_dir(&self.dir)?;
        while let Some(r) = rows.next().in_dir(&self.dir)? {
            let pk = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
            let row = r.get_ref(1).and_then(|v| Ok(v.as_blob()?));
            let (pk, row) = (pk.in_dir(&self.dir)?, row.in_dir(&self.dir)?);
            if !sink(pk, row)? {
                break;
            }
        }
        Ok(())
    }

    fn index_entries(&self, layout: &Layout, index: usize) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let sql = format!(
            "SELECT s{index}, pk FROM \"{}\" INDEXED BY \"{}\" ORDER BY s{index}",
            layout.table, layout.indexes[index]
        );
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(&sql).in_dir(&self.dir)?;
        let entries = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .in_dir(&self.dir)?;
        entries
            .collect::<rusqlite::Result<Vec<_>>>()
            .in_dir(&self.dir)
    }

    fn count_rows(&self, layout: &Layout) -> Result<u64> {
        let conn = self.conn.lock();
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM \"{}\"", layout.table),
                [],
                |r| r.get(0),
            )
            .in_dir(&self.dir)?;
        Ok(n as u64)
    }

    fn next_row_id(&self, layout: &Layout) -> Result<Option<i64>> {
        let conn = self.conn.lock();
        conn.query_row(
            &format!("SELECT next_row_id FROM \"{META_STRUCTURE_NAME}\" WHERE name = ?1"),
            [&layout.table],
            |r| r.get(0),
        )
        .optional()
        .in_dir(&self.dir)
    }

    /// Per B-tree sizes from SQLite's `dbstat` virtual table (it reads every page).
    fn structure_bytes(&self, layout: &Layout) -> Result<BTreeMap<String, u64>> {
        let conn = self.conn.lock();
        let mut stmt = conn
            .prepare_cached("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            .in_dir(&self.dir)?;
        let all: Vec<(String, i64)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .in_dir(&self.dir)?
            .collect::<rusqlite::Result<_>>()
            .in_dir(&self.dir)?;
        let primary_index = Self::primary_index(layout);
        let own: BTreeMap<String, u64> = all
            .iter()
            .filter(|(name, _)| {
                *name == layout.table || *name == primary_index || layout.indexes.contains(name)
            })
            .map(|(name, bytes)| (name.clone(), *bytes as u64))
            .collect();
        let tables_bytes = all
            .iter()
            .filter(|(name, _)| !name.starts_with("sqlite_") && name != META_STRUCTURE_NAME)
            .map(|(_, b)| *b as u64)
            .sum();
        let data_bytes =
            crate::store::allocated_bytes(&self.dir.join(SQLITE_FILE_NAME), &|_| false);
        Ok(crate::store::with_shared(own, tables_bytes, data_bytes))
    }

    fn checkpoint(&self) -> Result<()> {
        let conn = self.conn.lock();
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .in_dir(&self.dir)
    }

    fn check(&self) -> Result<()> {
        let conn = self.conn.lock();
        let verdict: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .in_dir(&self.dir)?;
        if verdict != "ok" {
            return Err(storelab_table::Error::corrupt(
                self.dir.join(SQLITE_FILE_NAME).display().to_string(),
                verdict,
            ));
        }
        Ok(())
    }
}

fn get_row(conn: &Connection, dir: &Path, layout: &Layout, pk: &[u8]) -> Result<Option<Vec<u8>>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT row FROM \"{}\" WHERE pk = ?1",
            layout.table
        ))
        .in_dir(dir)?;
    stmt.query_row([pk], |r| r.get(0)).optional().in_dir(dir)
}

/// A batch inside `BEGIN IMMEDIATE`.
struct SqliteTxn<'t> {
    conn: &'t Connection,
    dir: &'t Path,
    layout: &'t Layout,
}

impl WriteTxn for SqliteTxn<'_> {
    fn get(&mut self, pk: &[u8]) -> Result<Option<Vec<u8>>> {
        get_row(self.conn, self.dir, self.layout, pk)
    }

    fn index_contains(&mut self, index: usize, key: &[u8]) -> Result<bool> {
        let sql = format!(
            "SELECT 1 FROM \"{}\" WHERE s{index} = ?1 LIMIT 1",
            self.layout.table
        );
        let mut stmt = self.conn.prepare_cached(&sql).in_dir(self.dir)?;
        stmt.exists([key]).in_dir(self.dir)
    }

    fn insert(&mut self, pk: &[u8], row: &[u8], keys: &[Vec<u8>]) -> Result<()> {
        let columns: String = (0..keys.len()).map(|i| format!(", s{i}")).collect();
        let marks: String = (0..keys.len()).map(|_| ", ?").collect();
        let sql = format!(
            "INSERT INTO \"{}\" (pk, row{columns}) VALUES (?, ?{marks})",
            self.layout.table
        );
        let mut stmt = self.conn.prepare_cached(&sql).in_dir(self.dir)?;
        let values = [pk, row].into_iter().chain(keys.iter().map(Vec::as_slice));
        stmt.execute(params_from_iter(values))
            .map_err(|e| sqlite_err(self.dir, e))?;
        Ok(())
    }

    fn update(
        &mut self,
        pk: &[u8],
        row: &[u8],
        old_keys: &[Vec<u8>],
        new_keys: &[Vec<u8>],
    ) -> Result<()> {
        // Setting only the index columns whose key changed lets SQLite leave the other
        // indexes alone (it maintains an index when a SET names one of its columns).
        let changed: Vec<usize> = (0..new_keys.len())
            .filter(|&i| old_keys[i] != new_keys[i])
            .collect();
        let sets: String = changed.iter().map(|i| format!(", s{i} = ?")).collect();
        let sql = format!(
            "UPDATE \"{}\" SET row = ?{sets} WHERE pk = ?",
            self.layout.table
        );
        let mut stmt = self.conn.prepare_cached(&sql).in_dir(self.dir)?;
        let values = std::iter::once(row)
            .chain(changed.iter().map(|&i| new_keys[i].as_slice()))
            .chain(std::iter::once(pk));
        stmt.execute(params_from_iter(values)).in_dir(self.dir)?;
        Ok(())
    }

    fn delete(&mut self, pk: &[u8], _old_keys: &[Vec<u8>]) -> Result<()> {
        let sql = format!("DELETE FROM \"{}\" WHERE pk = ?1", self.layout.table);
        let mut stmt = self.conn.prepare_cached(&sql).in_dir(self.dir)?;
        stmt.execute([pk]).in_dir(self.dir)?;
        Ok(())
    }

    fn set_next_row_id(&mut self, next: i64) -> Result<()> {
        let sql = format!(
            "INSERT OR REPLACE INTO \"{META_STRUCTURE_NAME}\" (name, next_row_id) VALUES (?1, ?2)"
        );
        let mut stmt = self.conn.prepare_cached(&sql).in_dir(self.dir)?;
        stmt.execute(params![self.layout.table, next])
            .in_dir(self.dir)?;
        Ok(())
    }
}
