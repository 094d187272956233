//! Compaction: choosing what to merge (leveled or size-tiered) and the job description.
//!
//! Leveled (RocksDB's default, simplified):
//!
//! ```text
//!   score(L0) = L0 tables / l0_compaction_trigger
//!   score(Ln) = bytes(Ln) / (level1_bytes_target * level_size_ratio^(n-1))   1 <= n < last
//!   pick the highest score >= 1:
//!     L0: every L0 table + the L1 tables they overlap          -> L1
//!     Ln: the next table after the level's cursor (round robin
//!         through the key space) + the Ln+1 tables it overlaps -> Ln+1, cut at table_bytes_target
//! ```
//!
//! Size-tiered: every table is a sorted run in L0, newest first. The newest window of
//! `tier_merge_width` adjacent runs whose sizes are within a factor of 2 of each other is
//! merged into one run; past `l0_slowdown_trigger` runs the newest window is merged whatever
//! its sizes. Runs must be adjacent in age: merging runs around an unmerged one would let an
//! older version overtake a newer one in the newest-first read order.
//!
//! Tombstones are dropped when no table below the output overlaps the compacted key range
//! (no older version can hide below), and versions older than the newest are always dropped
//! (there are no snapshots that could still need them).

use std::sync::Arc;

use crate::config::{CompactionStyle, LsmConfig};
use crate::sstable::SsTable;
use crate::version::Version;

/// A chosen compaction.
#[derive(Clone, Debug)]
pub(crate) struct CompactionJob {
    /// Level the upper inputs come from.
    pub(crate) source_level: usize,
    /// Upper inputs: overlapping tables (L0, tiered runs), newest first, or one table.
    pub(crate) upper: Vec<Arc<SsTable>>,
    /// Lower inputs: the overlapped tables of the output level, in key order.
    pub(crate) lower: Vec<Arc<SsTable>>,
    /// Where the outputs go.
    pub(crate) output_level: usize,
    /// Whether tombstones can be dropped.
    pub(crate) drop_tombstones: bool,
    /// Cut outputs at `table_bytes_target` (leveled) or write one run (tiered).
    pub(crate) split_outputs: bool,
}

impl CompactionJob {
    /// Every input table.
    pub(crate) fn inputs(&self) -> impl Iterator<Item = &Arc<SsTable>> {
        self.upper.iter().chain(&self.lower)
    }
}

fn key_range(tables: &[Arc<SsTable>]) -> (Vec<u8>, Vec<u8>) {
    let lo = tables.iter().map(|t| t.smallest()).min().expect("inputs");
    let hi = tables.iter().map(|t| t.largest()).max().expect("inputs");
    (lo.to_vec(), hi.to_vec())
}

/// The target size of level `n` (1 or below).
pub(crate) fn level_target_bytes(config: &LsmConfig, n: usize) -> u64 {
    let mut target = config.level1_bytes_target;
    for _ in 1..n {
        target = target.saturating_mul(config.level_size_ratio);
    }
    target
}

/// Chooses a compaction, or `None` if none is due. `cursors[n]` is the last key compacted out
/// of level `n` (leveled round robin), updated here.
pub(crate) fn pick(
    version: &Version,
    config: &LsmConfig,
    cursors: &mut [Vec<u8>],
) -> Option<CompactionJob> {
    match config.compaction {
        CompactionStyle::Leveled => pick_leveled(version, config, cursors),
        CompactionStyle::Tiered => pick_tiered(version, config),
    }
}

fn pick_leveled(
    version: &Version,
    config: &LsmConfig,
    cursors: &mut [Vec<u8>],
) -> Option<CompactionJob> {
    let last = config.level_count - 1;
    let mut best: Option<(f64, usize)> = None;
    let l0_score = version.levels[0].len() as f64 / config.l0_compaction_trigger as f64;
    if l0_score >= 1.0 {
        best = Some((l0_score, 0));
    }
    for n in 1..last {
        let score = version.level_bytes(n) as f64 / level_target_bytes(config, n) as f64;
        if score >= 1.0 && best.is_none_or(|(s, _)| score > s) {
            best = Some((score, n));
        }
    }
    let (_, source_level) = best?;
    let upper: Vec<Arc<SsTable>> = if source_level == 0 {
        version.levels[0].clone()
    } else {
        let tables = &version.levels[source_level];
        let cursor = &cursors[source_level];
        let next = tables
            .iter()
            .find(|t| t.smallest() > cursor.as_slice())
            .unwrap_or(&tables[0]);
        cursors[source_level] = next.largest().to_vec();
        vec![Arc::clone(next)]
    };
    let output_level = source_level + 1;
    let (lo, hi) = key_range(&upper);
    let lower = version.overlapping(output_level, &lo, &hi);
    let mut all = upper.clone();
    all.extend(lower.iter().cloned());
    let (lo, hi) = key_range(&all);
    let drop_tombstones = (output_level + 1..version.levels.len())
        .all(|n| version.overlapping(n, &lo, &hi).is_empty());
    Some(CompactionJob {
        source_level,
        upper,
        lower,
        output_level,
        drop_tombstones,
        split_outputs: true,
    })
}

fn pick_tiered(version: &Version, config: &LsmConfig) -> Option<CompactionJob> {
    let runs = &version.levels[0];
    let width = config.tier_merge_width;
    if runs.len() < width {
        return None;
    }
    let similar = |w: &[Arc<SsTable>]| {
        let max = w.iter().map(|t| t.size()).max().unwrap_or(0);
        let min = w.iter().map(|t| t.size()).min().unwrap_or(0);
        max <= min.saturating_mul(2)
    };
    let start = (0..=runs.len() - width)
        .find(|&i| similar(&runs[i..i + width]))
        .or((runs.len() > config.l0_slowdown_trigger).then_some(0))?;
    let upper = runs[start..start + width].to_vec();
    Some(CompactionJob {
        source_level: 0,
        drop_tombstones: start + width == runs.len(),
        upper,
        lower: Vec::new(),
        output_level: 0,
        split_outputs: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Level targets grow by the size ratio from L1's target.
    #[test]
    fn level_targets_grow_by_the_ratio() {
        let config = LsmConfig::default();
        assert_eq!(level_target_bytes(&config, 1), 10 << 20);
        assert_eq!(level_target_bytes(&config, 3), 1000 << 20);
    }

    /// Nothing is due in an empty tree, in either style.
    #[test]
    fn empty_tree_needs_no_compaction() {
        for style in [CompactionStyle::Leveled, CompactionStyle::Tiered] {
            let config = LsmConfig {
                compaction: style,
                ..LsmConfig::default()
            };
            let mut cursors = vec![Vec::new(); config.level_count];
            assert!(pick(&Version::empty(config.level_count), &config, &mut cursors).is_none());
        }
    }
}
