//! The LSM's settings: memtable, tables, bloom filters, compaction, cache, threads.

use crate::error::{Error, Result};
use crate::version::LEVEL_COUNT_MAX;

/// How tables are merged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CompactionStyle {
    /// RocksDB's leveled compaction: L0 holds flushed tables (overlapping); every level below
    /// is one sorted run of non-overlapping tables, each level `level_size_ratio` times the one
    /// above. Low space and read amplification, higher write amplification.
    #[default]
    Leveled,
    /// Size-tiered (Cassandra's STCS, RocksDB's universal compaction, simplified): every
    /// table is a sorted run kept in L0; `tier_merge_width` adjacent runs of similar size are
    /// merged into one. Low write amplification, more runs to read, more space.
    Tiered,
}

/// How data blocks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    /// Stored as they are.
    #[default]
    None,
    /// LZ4 block format (`lz4_flex`); a block that does not shrink is stored uncompressed.
    Lz4,
}

impl Compression {
    /// The code stored in each block trailer.
    pub fn code(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Lz4 => 1,
        }
    }

    /// The compression a block trailer's code names.
    pub fn from_code(code: u8) -> Option<Compression> {
        match code {
            0 => Some(Compression::None),
            1 => Some(Compression::Lz4),
            _ => None,
        }
    }
}

/// Settings of one LSM tree. Sizes are in bytes.
#[derive(Clone, Debug)]
pub struct LsmConfig {
    /// Prefix of the names the tree's files are registered under in the I/O ledger
    /// (`<name>:L<level>:<table number>`, `<name>:manifest`).
    pub name: String,
    /// The tree's number in its log records, so several trees can share one WAL.
    pub tree_id: u32,
    /// The active memtable is frozen (made immutable and queued for flush) beyond this size.
    pub memtable_bytes_max: usize,
    /// Writers stall while this many frozen memtables wait for their flush.
    pub immutable_count_max: usize,
    /// Target size of a data block before compression.
    pub block_bytes: usize,
    /// Entries between restart points in a block (a restart stores its whole key).
    pub restart_interval: usize,
    /// Bloom filter bits per key (0: no filters).
    pub bloom_bits_per_key: u32,
    /// Data block compression.
    pub compression: Compression,
    /// Compaction output is cut into tables of about this size (leveled).
    pub table_bytes_target: u64,
    /// Leveled or size-tiered.
    pub compaction: CompactionStyle,
    /// L0 tables (tiered: runs) that trigger a compaction.
    pub l0_compaction_trigger: usize,
    /// L0 tables (tiered: runs) beyond which each write is delayed by 1 ms.
    pub l0_slowdown_trigger: usize,
    /// L0 tables (tiered: runs) at which writes stop until compaction catches up.
    pub l0_stop_trigger: usize,
    /// Target size of L1 (leveled).
    pub level1_bytes_target: u64,
    /// Each level's target is this many times the one above (leveled).
    pub level_size_ratio: u64,
    /// Levels, L0 included (at most [`LEVEL_COUNT_MAX`]).
    pub level_count: usize,
    /// Runs merged at once (tiered).
    pub tier_merge_width: usize,
    /// The block cache's budget (decoded data blocks). Index and filter blocks are held in
    /// memory by each open table, outside this budget, and reported by
    /// [`crate::LsmStats::pinned_bytes`].
    pub block_cache_bytes: usize,
    /// Run flushes and compactions in a background thread (`false`: inline, in the writer
    /// that made them due; deterministic, for tests).
    pub background: bool,
    /// The manifest is rewritten as a fresh snapshot once it grows beyond this.
    pub manifest_bytes_max: u64,
    /// The active memtable is frozen (and so flushed) once the log written since the oldest
    /// record the tree still needs exceeds this, even if the memtable is small: other writers
    /// of the shared log must not make the tree hold the log back without bound (RocksDB's
    /// `max_total_wal_size`).
    pub log_retained_bytes_max: u64,
}

impl Default for LsmConfig {
    fn default() -> Self {
        LsmConfig {
            name: "lsm".to_string(),
            tree_id: 1,
            memtable_bytes_max: 4 << 20,
            immutable_count_max: 2,
            block_bytes: 4096,
            restart_interval: 16,
            bloom_bits_per_key: 10,
            compression: Compression::None,
            table_bytes_target: 2 << 20,
            compaction: CompactionStyle::Leveled,
            l0_compaction_trigger: 4,
            l0_slowdown_trigger: 8,
            l0_stop_trigger: 12,
            level1_bytes_target: 10 << 20,
            level_size_ratio: 10,
            level_count: 7,
            tier_merge_width: 4,
            block_cache_bytes: 8 << 20,
            background: true,
            manifest_bytes_max: 1 << 20,
            log_retained_bytes_max: 256 << 20,
        }
    }
}

impl LsmConfig {
    /// A configuration with tiny memtables, blocks and tables, so that a few hundred writes
    /// flush and compact through several levels (tests).
    pub fn tiny() -> LsmConfig {
        LsmConfig {
            memtable_bytes_max: 2048,
            block_bytes: 256,
            restart_interval: 4,
            table_bytes_target: 2048,
            level1_bytes_target: 4096,
            level_size_ratio: 4,
            level_count: 4,
            l0_compaction_trigger: 2,
            l0_slowdown_trigger: 6,
            l0_stop_trigger: 8,
            block_cache_bytes: 64 << 10,
            background: false,
            manifest_bytes_max: 16 << 10,
            ..LsmConfig::default()
        }
    }

    /// Checks every setting against its limits.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidConfig(what));
        if self.name.is_empty() || !self.name.is_ascii() {
            return bad(format!("name {:?} must be non-empty ASCII", self.name));
        }
        if self.memtable_bytes_max < 1024 {
            return bad(format!(
                "memtable_bytes_max {} < 1024",
                self.memtable_bytes_max
            ));
        }
        if self.immutable_count_max == 0 {
            return bad("immutable_count_max must be at least 1".into());
        }
        if !(64..=(1 << 20)).contains(&self.block_bytes) {
            return bad(format!("block_bytes {} not in 64..=1MiB", self.block_bytes));
        }
        if !(1..=1024).contains(&self.restart_interval) {
            return bad(format!(
                "restart_interval {} not in 1..=1024",
                self.restart_interval
            ));
        }
        if self.bloom_bits_per_key > 64 {
            return bad(format!(
                "bloom_bits_per_key {} > 64",
                self.bloom_bits_per_key
            ));
        }
        if self.table_bytes_target < self.block_bytes as u64 {
            return bad("table_bytes_target is smaller than a block".into());
        }
        if !(2..=LEVEL_COUNT_MAX).contains(&self.level_count) {
            return bad(format!(
                "level_count {} not in 2..={LEVEL_COUNT_MAX}",
                self.level_count
            ));
        }
        if self.level_size_ratio < 2 {
            return bad("level_size_ratio must be at least 2".into());
        }
        if self.l0_compaction_trigger == 0
            || self.l0_slowdown_trigger < self.l0_compaction_trigger
            || self.l0_stop_trigger < self.l0_slowdown_trigger
        {
            return bad(format!(
                "need 1 <= l0_compaction_trigger ({}) <= l0_slowdown_trigger ({}) <= l0_stop_trigger ({})",
                self.l0_compaction_trigger, self.l0_slowdown_trigger, self.l0_stop_trigger
            ));
        }
        if self.tier_merge_width < 2 {
            return bad("tier_merge_width must be at least 2".into());
        }
        if self.log_retained_bytes_max < self.memtable_bytes_max as u64 {
            return bad(format!(
                "log_retained_bytes_max {} < memtable_bytes_max {}",
                self.log_retained_bytes_max, self.memtable_bytes_max
            ));
        }
        if self.tier_merge_width > self.l0_stop_trigger {
            return bad("tier_merge_width must not exceed l0_stop_trigger".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults and the test configuration pass validation; a broken one does not.
    #[test]
    fn defaults_validate_and_nonsense_does_not() {
        LsmConfig::default().validate().unwrap();
        LsmConfig::tiny().validate().unwrap();
        let mut bad = LsmConfig::tiny();
        bad.l0_stop_trigger = 1;
        assert!(matches!(bad.validate(), Err(Error::InvalidConfig(_))));
    }
}
