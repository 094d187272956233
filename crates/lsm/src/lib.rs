//! storelab's LSM tree: byte keys to byte values, written to a memtable and the shared WAL,
//! flushed into sorted tables, merged by compaction. The clustered engine's LSM option
//! (MyRocks' layout) stores its indexes in it; on its own it is a key-value store whose
//! amplifications can be measured next to a B+tree's.
//!
//! ```text
//!   put / delete / write_batch                          get / range / range_rev
//!        |                                                    |
//!        | 1. log record (RECORD_LSM_BATCH) ---> Wal           | newest first:
//!        | 2. memtable insert                                  v
//!        v                                     memtable -> frozen memtables
//!   +----------+  full   +-----------+ flush   -> L0 tables (newest first, bloom first)
//!   | memtable | ------> | immutable | -----+  -> one table per level L1..Ln (bloom first)
//!   +----------+         +-----------+      |
//!                                           v
//!   L0   [t9] [t8] [t7] [t6]            overlapping; newest first          \
//!   L1   [a..f][g..m][n..z]             one sorted run, ~level1_bytes       | leveled
//!   L2   [a..c][d..f] ... [x..z]        one sorted run, x level_size_ratio  | compaction
//!   ...                                                                    /
//!   (tiered: every table is a run in L0; runs of similar size are merged)
//!
//!   files in the tree's directory:
//!     000042.sst ...     tables (docs/format/sstable.md)
//!     MANIFEST-000007    the live set of tables (docs/format/lsm-manifest.md)
//! ```
//!
//! **Write path.** A batch gets consecutive sequence numbers under the tree's write lock, is
//! appended to the WAL as one record (several in an atomic group if large), applied to the
//! active memtable, and committed (`Wal::commit`, durability as the commit mode says). A full
//! memtable is frozen and queued; a background thread (or, with `background: false`, the
//! writer itself) writes it into an L0 table, then runs the compactions that are due. Writers
//! stall while L0 holds `l0_stop_trigger` tables or `immutable_count_max` memtables wait, and
//! are slowed by 1 ms per write past `l0_slowdown_trigger`.
//!
//! **Read path.** A get looks in the memtable, the frozen memtables newest first, the L0
//! tables newest first, then in each deeper level the one table whose range covers the key;
//! in every table the bloom filter is asked first, and only a "maybe" costs a data block
//! read (through the block cache). A range scan merges all of these sources
//! ([`LsmIter`]): for each key the highest sequence number wins, tombstones are hidden.
//!
//! # Invariants
//!
//! 1. Sequence numbers increase in log order; a key's newest version has its highest one.
//! 2. Within a table, keys strictly increase (one version per key per table).
//! 3. L0 tables have disjoint sequence ranges and are kept newest first; every deeper level is
//!    sorted by key and its tables do not overlap ([`Version::check`]).
//! 4. For any key, a version in a memtable is newer than one in L0, one in L0 newer than one
//!    in L1, and so on: reads stop at the first version they find.
//! 5. The manifest names exactly the live tables; a table is named only after its file is
//!    synced, and a replaced table's file is deleted only after the edit replacing it is
//!    synced and no reader holds it.
//! 6. Every log record of the tree after the manifest's `log_covered` is in a memtable, and
//!    every one before it is in a table. A memtable reaches a table only once the log is
//!    durable past its last record (the write-ahead rule) and no atomic group that may hold
//!    its records is still open (no-steal).
//!
//! # Crash safety
//!
//! A crash loses the memtables, never a committed write: at open the tree reads the
//! manifest, opens the tables it names, deletes every other table file (the outputs of a
//! flush or compaction whose edit never became durable), replays its log records after
//! `log_covered` (whole atomic groups only) into a memtable, writes that into an L0 table,
//! and starts a fresh manifest with a snapshot. A crash in the middle of a flush or a
//! compaction leaves either the old set of tables (edit not synced: outputs are orphans,
//! inputs still live, the log still holds the memtable's records) or the new one (edit
//! synced). `tests/crash.rs` cuts the power at every sync point of a workload that flushes
//! and compacts, through the pager's `FaultDevice`, and checks that the recovered tree holds
//! exactly a prefix of the writes that contains every acknowledged one.
//!
//! **The log is kept for the memtables.** The tree registers a retention hook with the log
//! (`Wal::add_retention`) that answers the manifest's durable `log_covered`, so a checkpoint
//! of the shared log, by whoever takes it, never recycles a segment holding records of an
//! unflushed memtable (PostgreSQL's replication-slot `restart_lsn`, RocksDB's
//! `min_log_number_to_keep`). `log_covered` moves forward when a flush's manifest edit is
//! synced, and when [`Lsm::release_log`] finds every memtable empty; a memtable that holds the
//! log back by more than `log_retained_bytes_max` is frozen and flushed. So checkpoints need
//! no flush: [`Lsm::checkpoint`] is `release_log` and then `Wal::checkpoint`, and nothing
//! waits for a flush while holding the tree's write lock (which could deadlock against a
//! writer that holds an atomic group and waits for that lock).
//!
//! Opening order: `Wal::open`, `Lsm::open` (which registers the hook), then `Wal::recover`
//! (whose checkpoint then keeps what the tree needs) with [`register_redo`] in the registry.
//!
//! # Simplified versus RocksDB
//!
//! - One version per key in a memtable and in a table: there are no snapshots, so older
//!   versions are dropped at once rather than at compaction.
//! - One background thread does flushes and compactions, one job at a time; RocksDB runs
//!   several of each in parallel, with subcompactions.
//! - No trivial moves (a table that overlaps nothing below is still rewritten), no
//!   compaction priorities beyond the score, no dynamic level sizes, no universal compaction
//!   details (size ratio triggers only), no range tombstones, no merge operator.
//! - Index and filter blocks are held in memory per table (not partitioned, not cached).
//! - Fixed-width entry headers (16 bytes) instead of varints: easy to read in a hex dump.
//! - Range scans read the active memtable in chunks, without a snapshot.
//!
//! # Further reading
//!
//! O'Neil et al., "The Log-Structured Merge-Tree" (1996); the LevelDB implementation notes
//! (`doc/impl.md`, `doc/table_format.md`); the RocksDB wiki ("Leveled Compaction",
//! "Universal Compaction", "Write Stalls", "RocksDB Bloom Filter"); Dong et al.,
//! "Optimizing Space Amplification in RocksDB" (CIDR 2017); Matsunobu et al., "MyRocks"
//! (VLDB 2020); Luo and Carey, "LSM-based Storage Techniques: A Survey" (VLDBJ 2020).

pub mod block_cache;
pub mod compaction;
pub mod config;
pub mod entry;
pub mod error;
pub mod log_record;
pub mod lsm;
pub mod manifest;
pub mod memtable;
pub mod merge_iter;
pub mod sstable;
pub mod stats;
pub mod version;

/// The longest key accepted, in bytes (keys are 1..=this).
pub const KEY_SIZE_MAX: usize = 4096;
/// The longest value accepted, in bytes.
pub const VALUE_SIZE_MAX: usize = 1 << 20;

pub use block_cache::{BlockCache, CacheStats};
pub use config::{CompactionStyle, Compression, LsmConfig};
pub use entry::{Entry, SeqNo};
pub use error::{Error, Result};
pub use log_record::{RECORD_LSM_BATCH, register_redo};
pub use lsm::{BatchOp, Lsm};
pub use manifest::{TableMeta, VersionEdit};
pub use merge_iter::LsmIter;
pub use sstable::{SsTable, SsTableBuilder, SsTableIter, TableId};
pub use stats::{LevelStats, LsmStats};
pub use version::Version;
