//! Peer engines behind storelab's `Engine`/`Table` traits: SQLite (two layouts), redb and
//! fjall, so that `storelab compare` runs them beside the heap, clustered and LSM engines on
//! the same machine, data, workload, durability and memory budget.
//!
//! # Where it sits
//!
//! ```text
//!   cli (feature `peers`) --> peers --> table (traits, key encoding, row codec, catalog)
//!                               |
//!                               +--> rusqlite (bundled SQLite), redb, fjall
//! ```
//!
//! # How a table is stored
//!
//! Every peer stores the same three things, in its own structures ([`store`] has the
//! picture; each peer module shows its own):
//!
//! ```text
//!   rows:        encode(primary key)           -> encode_row(row)   (storelab's row codec)
//!   index i:     encode(index key) ++ encode(primary key)           (a set)
//!   row ids:     table name -> next hidden row id                   (tables without a key)
//! ```
//!
//! | peer | structures | commit |
//! |---|---|---|
//! | `sqlite` | a WITHOUT ROWID table (clustered on the encoded primary key) with SQL indexes on per-index key columns | WAL, `synchronous=FULL`, one `BEGIN IMMEDIATE` per batch |
//! | `sqlite-rowid` | a rowid table (heap-like) with a unique index on the primary key and SQL indexes | same |
//! | `redb` | one redb table for the rows, one per index | one write transaction per batch, `Durability::Immediate` |
//! | `fjall` | one keyspace for the rows, one per index | one write batch per batch, `PersistMode::SyncAll` |
//!
//! Schemas live in storelab's own `catalog.json` in the directory (so `compare --dir`,
//! `run` and `check` recognise a peer's directory), the data in the peer's files beside it.
//!
//! # Invariants
//!
//! 1. The shared table logic ([`engine`]) validates every op and checks duplicate primary and
//!    unique keys before a peer is told to write, in the reference engine's order, so every
//!    error is the reference's typed error.
//! 2. A batch is one peer transaction: on any error the transaction is dropped uncommitted,
//!    so the peer holds none of it, and the table's row count and next row id (kept in
//!    memory, counted at open) change only after the commit returned.
//! 3. Index entries are exactly the rows' keys: `Table::check` re-derives them from the rows
//!    and compares, and `Engine::check` runs the peer's own check where it has one
//!    (SQLite's `PRAGMA integrity_check`).
//!
//! # Crash safety
//!
//! The peers' own: SQLite's WAL, redb's checksummed commit slots, fjall's journal. A batch is
//! acknowledged only after the peer's durable commit returned (in the `sync` and `group`
//! commit modes; in `off`, after a commit that is not synced). The catalog is written before
//! a table's structures are created, and opening a table creates any that are missing.
//!
//! # Durability and memory, made equal (see [`peer_config`])
//!
//! - Synced commits everywhere: SQLite `synchronous=FULL` in WAL mode (`fsync`: this bundled
//!   build lacks `HAVE_FDATASYNC`), redb `Durability::Immediate` (`fdatasync`), fjall
//!   `PersistMode::SyncAll` (`fsync` of the journal); storelab's engines use `fdatasync`.
//!   Commit mode `off` turns every peer's sync off (the model tests use it).
//! - The same batches: the workload calls the same `apply`/`load` on every engine, and peers
//!   use the default `Table::load` (batches of `LOAD_BATCH_ROWS` rows, each a durable commit).
//! - The memory budget (`StorageConfig::pool_bytes`): SQLite's `cache_size`, redb's cache,
//!   fjall's block cache plus memtables (3:1). The OS page cache is not limited for anyone
//!   (storelab's engines run buffered I/O by default too).
//!
//! # I/O
//!
//! The pager's ledger cannot see inside a peer: [`Engine::stats`] returns no ledger, and
//! [`proc_io`] reads `/proc/self/io` instead, labelled [`PROC_IO_LABEL`]. Each peer table's
//! `stats().counters` carries the `proc_io_*` counters since the engine was opened.
//!
//! # Simplified, and what a peer cannot do natively
//!
//! - SQLite: one connection behind a mutex (reads serialise; a scan's visitor must not call
//!   back into a SQLite table); indexed values are stored twice (in the row and the index
//!   column). Bitmap index scans are plain index scans for every peer.
//! - fjall: a write batch cannot be read, so a batch's checks read through an overlay of its
//!   own writes (as MyRocks' `WriteBatchWithIndex`); updates rewrite whole rows.
//! - redb: no whole-file check while the database is shared; storelab's per-table check runs.
//! - `prefetch_depth` is ignored; `Table::maintain` does nothing (peers compact and vacuum on
//!   their own schedule, or not at all: SQLite's free pages stay in the file).
//!
//! # Further reading
//!
//! - SQLite: "Clustered Indexes and the WITHOUT ROWID Optimization" (sqlite.org/withoutrowid),
//!   "Write-Ahead Logging" (sqlite.org/wal), the file format (sqlite.org/fileformat2).
//! - redb: `docs/design.md` in cberner/redb.
//! - fjall and lsm-tree (fjall-rs); MyRocks' record format (the "memcomparable format").

pub mod engine;
pub mod error;
pub mod fjall_store;
pub mod kind;
pub mod proc_io;
pub mod redb_store;
pub mod sqlite;
pub mod store;

use std::path::Path;
use std::sync::Arc;

pub use engine::{KEY_SIZE_MAX, PeerEngine, PeerTable, ROW_SIZE_MAX};
pub use error::PeerError;
pub use kind::PeerKind;
pub use proc_io::{PROC_IO_LABEL, ProcIo};
use storelab_table::{Catalog, Error, Result, StorageConfig};

use crate::fjall_store::{FjallSettings, FjallStore};
use crate::redb_store::{RedbSettings, RedbStore};
use crate::sqlite::{SqliteSettings, SqliteStore};
use crate::store::Store;

/// Opens (or creates) a `kind` database in `dir` with the durability and memory budget of
/// `config` (its page size for SQLite too; the pager's I/O settings do not apply).
pub fn open(kind: PeerKind, dir: &Path, config: &StorageConfig) -> Result<PeerEngine> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    // The catalog first: it refuses a directory of another engine before any file is made.
    let catalog = Catalog::open_or_create(dir, kind.name())?;
    let store: Arc<dyn Store> = match kind {
        PeerKind::Sqlite | PeerKind::SqliteRowid => Arc::new(SqliteStore::open(
            dir,
            SqliteSettings::new(kind == PeerKind::Sqlite, config),
        )?),
        PeerKind::Redb => Arc::new(RedbStore::open(dir, RedbSettings::new(config))?),
        PeerKind::Fjall => Arc::new(FjallStore::open(dir, FjallSettings::new(config))?),
    };
    PeerEngine::new(kind, store, catalog)
}

/// The durability settings and memory knobs `kind` runs with under `config`, as
/// `(key, value)` pairs for a result's configuration.
pub fn peer_config(kind: PeerKind, config: &StorageConfig) -> Vec<(&'static str, String)> {
    let mut out = vec![("peer", kind.name().to_string())];
    match kind {
        PeerKind::Sqlite | PeerKind::SqliteRowid => {
            let s = SqliteSettings::new(kind == PeerKind::Sqlite, config);
            out.extend([
                ("peer_version", format!("SQLite {}", rusqlite::version())),
                (
                    "peer_layout",
                    if s.without_rowid {
                        "WITHOUT ROWID"
                    } else {
                        "rowid"
                    }
                    .to_string(),
                ),
                ("peer_journal_mode", "WAL".to_string()),
                ("peer_synchronous", s.synchronous.to_string()),
                ("peer_sync_call", "fsync".to_string()),
                ("peer_page_size_bytes", s.page_size_bytes.to_string()),
                (
                    "peer_cache_size_bytes",
                    (s.cache_size_kib * 1024).to_string(),
                ),
                ("peer_wal_autocheckpoint_pages", "1000".to_string()),
            ]);
        }
        PeerKind::Redb => {
            let s = RedbSettings::new(config);
            out.extend([
                ("peer_version", "redb 4".to_string()),
                (
                    "peer_durability",
                    if s.durable { "Immediate" } else { "None" }.to_string(),
                ),
                ("peer_sync_call", "fdatasync".to_string()),
                (
                    "peer_page_size_bytes",
                    redb_store::REDB_PAGE_SIZE.to_string(),
                ),
                ("peer_cache_size_bytes", s.cache_size_bytes.to_string()),
            ]);
        }
        PeerKind::Fjall => {
            let s = FjallSettings::new(config);
            out.extend([
                ("peer_version", "fjall 3".to_string()),
                (
                    "peer_persist_mode",
                    if s.durable {
                        "SyncAll"
                    } else {
                        "none (buffered)"
                    }
                    .to_string(),
                ),
                ("peer_sync_call", "fsync".to_string()),
                ("peer_cache_size_bytes", s.cache_size_bytes.to_string()),
                (
                    "peer_memtable_size_bytes",
                    s.memtable_size_bytes.to_string(),
                ),
                ("peer_compression", "lz4 (fjall's default)".to_string()),
            ]);
        }
    }
    out
}

/// `/proc/self/io` now (labelled [`PROC_IO_LABEL`]); diff two with [`ProcIo::delta`].
pub fn proc_io() -> Option<ProcIo> {
    ProcIo::now()
}
