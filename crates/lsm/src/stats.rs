//! `LsmStats`: what the tree did, per level, and the three amplifications.
//!
//! - **Write amplification** = bytes written to storage / bytes of user data written (keys
//!   plus values of puts, keys of deletes). Storage bytes are the WAL records the tree
//!   appended, the tables written by flushes and compactions, and the manifest.
//!   [`LsmStats::write_amplification_tables`] leaves the WAL out, to compare with a B+tree's
//!   page writes.
//! - **Read amplification** of point gets: tables whose key range covered the key, bloom
//!   filter checks and negatives, data blocks read, and the false positives among them (a
//!   filter said "maybe" and the block did not hold the key).
//! - **Space amplification** = bytes of live tables / bytes of live data. The exact figure
//!   needs a full scan ([`crate::Lsm::live_data_bytes`]); the cheap estimate divides by the
//!   size of the largest level, which holds about 90% of the data in a leveled tree at a
//!   size ratio of 10 once the tree is in its steady shape (RocksDB's heuristic; it
//!   overestimates the live data when that level still holds many overwritten versions).
//! - The WAL figure here is the tree's logical record bytes; the ledger's `wal` entry has the
//!   physical writes of the shared log (tail blocks rewritten at every commit), which are
//!   larger with small commits.
//!
//! All I/O is also in the pager's ledger, under `Flush` and `Compaction` causes and the files'
//! names `<tree>:L<level>:<table>`; these counters exist so that the tree can report per
//! level without parsing names.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::block_cache::CacheStats;
use crate::version::LEVEL_COUNT_MAX;

/// One level's figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LevelStats {
    /// Live tables.
    pub table_count: u64,
    /// Bytes of live tables.
    pub bytes: u64,
    /// Bytes written into this level by flushes (L0 only).
    pub flush_bytes_written: u64,
    /// Bytes written into this level by compactions.
    pub compaction_bytes_written: u64,
    /// Bytes of this level's tables read by compactions.
    pub compaction_bytes_read: u64,
    /// Compactions that wrote into this level.
    pub compaction_count: u64,
}

/// A snapshot of the tree's counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LsmStats {
    /// Per level, L0 first.
    pub levels: Vec<LevelStats>,
    /// Puts and deletes applied.
    pub user_write_count: u64,
    /// Key and value bytes of puts, key bytes of deletes.
    pub user_bytes_written: u64,
    /// Bytes of log records the tree appended (record headers included).
    pub wal_bytes_written: u64,
    /// Bytes written to manifests.
    pub manifest_bytes_written: u64,
    /// Memtable flushes.
    pub flush_count: u64,
    /// Compactions run.
    pub compaction_count: u64,
    /// Point gets.
    pub get_count: u64,
    /// Gets answered by a memtable.
    pub get_memtable_hit_count: u64,
    /// Tables whose key range covered a get's key (each costs a filter check, or a block).
    pub get_table_candidate_count: u64,
    /// Bloom filter checks.
    pub bloom_check_count: u64,
    /// Checks where the filter said "absent" (a block read saved).
    pub bloom_negative_count: u64,
    /// Filter said "maybe", the block did not have the key.
    pub bloom_false_positive_count: u64,
    /// Data blocks read (or found cached) by gets: tables actually probed.
    pub get_table_read_count: u64,
    /// Writes that waited for a flush or compaction (L0 too deep, memtables full).
    pub stall_count: u64,
    /// Microseconds writers spent stalled or slowed down.
    pub stall_us: u64,
    /// Bytes in the active memtable.
    pub memtable_bytes: u64,
    /// Frozen memtables waiting for their flush.
    pub immutable_count: u64,
    /// Bytes held by the frozen memtables.
    pub immutable_bytes: u64,
    /// Index and filter bytes held in memory by open tables.
    pub pinned_bytes: u64,
    /// The block cache.
    pub cache: CacheStats,
}

impl LsmStats {
    /// Bytes of live tables.
    pub fn table_bytes(&self) -> u64 {
        self.levels.iter().map(|l| l.bytes).sum()
    }

    /// Bytes written by flushes and compactions.
    pub fn table_bytes_written(&self) -> u64 {
        self.levels
            .iter()
            .map(|l| l.flush_bytes_written + l.compaction_bytes_written)
            .sum()
    }

    /// (WAL + tables + manifest) bytes written / user bytes written.
    pub fn write_amplification(&self) -> f64 {
        ratio(
            self.wal_bytes_written + self.table_bytes_written() + self.manifest_bytes_written,
            self.user_bytes_written,
        )
    }

    /// Table bytes written / user bytes written (no WAL).
    pub fn write_amplification_tables(&self) -> f64 {
        ratio(self.table_bytes_written(), self.user_bytes_written)
    }

    /// Data blocks read per get (tables probed beyond the memtables).
    pub fn tables_read_per_get(&self) -> f64 {
        ratio(self.get_table_read_count, self.get_count)
    }

    /// False positives / (false positives + negatives): how often the filter let an absent
    /// key through.
    pub fn bloom_false_positive_rate(&self) -> f64 {
        ratio(
            self.bloom_false_positive_count,
            self.bloom_false_positive_count + self.bloom_negative_count,
        )
    }

    /// Bytes of live tables / bytes of the largest level.
    pub fn space_amplification_estimate(&self) -> f64 {
        let largest = self.levels.iter().map(|l| l.bytes).max().unwrap_or(0);
        ratio(self.table_bytes(), largest)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

impl std::fmt::Display for LsmStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{:<6} {:>7} {:>12} {:>14} {:>16} {:>14}",
            "level", "tables", "bytes", "flush written", "compact written", "compact read"
        )?;
        for (i, l) in self.levels.iter().enumerate() {
            writeln!(
                f,
                "L{:<5} {:>7} {:>12} {:>14} {:>16} {:>14}",
                i,
                l.table_count,
                l.bytes,
                l.flush_bytes_written,
                l.compaction_bytes_written,
                l.compaction_bytes_read
            )?;
        }
        writeln!(
            f,
            "user bytes {} / wal {} / tables {} / manifest {}: write amplification {:.2} ({:.2} without WAL)",
            self.user_bytes_written,
            self.wal_bytes_written,
            self.table_bytes_written(),
            self.manifest_bytes_written,
            self.write_amplification(),
            self.write_amplification_tables()
        )?;
        writeln!(
            f,
            "gets {}: {:.3} tables read per get, bloom checks {} negatives {} false positives {}",
            self.get_count,
            self.tables_read_per_get(),
            self.bloom_check_count,
            self.bloom_negative_count,
            self.bloom_false_positive_count
        )?;
        write!(
            f,
            "space amplification estimate {:.2}; stalls {} ({} us)",
            self.space_amplification_estimate(),
            self.stall_count,
            self.stall_us
        )
    }
}

/// Per-level atomic counters.
#[derive(Debug, Default)]
pub(crate) struct LevelCounters {
    pub(crate) flush_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_written: AtomicU64,
    pub(crate) compaction_bytes_read: AtomicU64,
    pub(crate) compaction_count: AtomicU64,
}

/// The tree's atomic counters.
#[derive(Debug, Default)]
pub(crate) struct StatsCounters {
    pub(crate) levels: [LevelCounters; LEVEL_COUNT_MAX],
    pub(crate) user_write_count: AtomicU64,
    pub(crate) user_bytes_written: AtomicU64,
    pub(crate) wal_bytes_written: AtomicU64,
    pub(crate) manifest_bytes_written: AtomicU64,
    pub(crate) flush_count: AtomicU64,
    pub(crate) compaction_count: AtomicU64,
    pub(crate) get_count: AtomicU64,
    pub(crate) get_memtable_hit_count: AtomicU64,
    pub(crate) get_table_candidate_count: AtomicU64,
    pub(crate) bloom_check_count: AtomicU64,
    pub(crate) bloom_negative_count: AtomicU64,
    pub(crate) bloom_false_positive_count: AtomicU64,
    pub(crate) get_table_read_count: AtomicU64,
    pub(crate) stall_count: AtomicU64,
    pub(crate) stall_us: AtomicU64,
}

/// Adds `n` to a relaxed counter.
pub(crate) fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

/// Reads a relaxed counter.
pub(crate) fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}
