//! `Version`: the set of live tables, by level, as of one manifest edit.
//!
//! A version is immutable and shared (`Arc`): a reader takes the current one and keeps using
//! it while flushes and compactions install newer ones, and a replaced table's file lives
//! until the last version holding it is dropped (LevelDB's `Version` reference counting).

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::CompactionStyle;
use crate::error::{Error, Result};
use crate::manifest::VersionEdit;
use crate::sstable::{SsTable, TableId};

/// The most levels a tree may have (L0 included).
pub const LEVEL_COUNT_MAX: usize = 8;

/// The live tables, by level.
///
/// - `levels[0]`: tables in newest-first order (by largest sequence number); they may
///   overlap. In tiered mode every sorted run lives here.
/// - `levels[1..]`: each level is one sorted run: tables ordered by key, not overlapping.
#[derive(Clone, Debug, Default)]
pub struct Version {
    /// Tables per level.
    pub levels: Vec<Vec<Arc<SsTable>>>,
}

impl Version {
    /// An empty version with `level_count` levels.
    pub fn empty(level_count: usize) -> Version {
        Version {
            levels: vec![Vec::new(); level_count],
        }
    }

    /// The version after `edit`, whose added tables are opened in `added`.
    pub fn apply(&self, edit: &VersionEdit, added: &HashMap<TableId, Arc<SsTable>>) -> Version {
        let mut levels = self.levels.clone();
        for (level, id) in &edit.deleted {
            let tables = &mut levels[*level as usize];
            let before = tables.len();
            tables.retain(|t| t.id() != *id);
            assert_eq!(
                tables.len() + 1,
                before,
                "deleted table {id} not in L{level}"
            );
        }
        for meta in &edit.added {
            let table = added
                .get(&meta.id)
                .expect("every added table is opened before the edit is installed");
            levels[meta.level as usize].push(Arc::clone(table));
        }
        let mut v = Version { levels };
        v.sort();
        v
    }

    /// Puts each level in its defined order.
    pub fn sort(&mut self) {
        self.levels[0].sort_by_key(|t| std::cmp::Reverse(t.seq_range().1));
        for level in &mut self.levels[1..] {
            level.sort_by(|a, b| a.smallest().cmp(b.smallest()));
        }
    }

    /// Bytes of the tables in `level`.
    pub fn level_bytes(&self, level: usize) -> u64 {
        self.levels[level].iter().map(|t| t.size()).sum()
    }

    /// Every table, level by level.
    pub fn tables(&self) -> impl Iterator<Item = &Arc<SsTable>> {
        self.levels.iter().flatten()
    }

    /// The tables of `level` (1 or below) whose key range meets [lo, hi].
    pub fn overlapping(&self, level: usize, lo: &[u8], hi: &[u8]) -> Vec<Arc<SsTable>> {
        self.levels[level]
            .iter()
            .filter(|t| t.overlaps(lo, hi))
            .cloned()
            .collect()
    }

    /// The one table of a sorted level (1 or below) that may hold `key`.
    pub fn table_for(&self, level: usize, key: &[u8]) -> Option<&Arc<SsTable>> {
        let tables = &self.levels[level];
        let i = tables.partition_point(|t| t.largest() < key);
        tables.get(i).filter(|t| t.smallest() <= key)
    }

    /// Checks the level invariants: L0 newest first with disjoint sequence ranges, sorted
    /// levels ordered and non-overlapping, nothing below L0 in tiered mode, no table twice.
    pub fn check(&self, style: CompactionStyle) -> Result<()> {
        let fail = |what: String| Err(Error::CheckFailed(what));
        let mut seen = std::collections::HashSet::new();
        for t in self.tables() {
            if !seen.insert(t.id()) {
                return fail(format!("table {} is live twice", t.id()));
            }
        }
        for pair in self.levels[0].windows(2) {
            if pair[0].seq_range().0 <= pair[1].seq_range().1 {
                return fail(format!(
                    "L0 tables {} {:?} and {} {:?} are not newest first with disjoint sequence ranges",
                    pair[0].id(),
                    pair[0].seq_range(),
                    pair[1].id(),
                    pair[1].seq_range()
                ));
            }
        }
        for (level, tables) in self.levels.iter().enumerate().skip(1) {
            if style == CompactionStyle::Tiered && !tables.is_empty() {
                return fail(format!("tiered tree has tables in L{level}"));
            }
            for pair in tables.windows(2) {
                if pair[0].largest() >= pair[1].smallest() {
                    return fail(format!(
                        "L{level} tables {} and {} overlap or are out of order",
                        pair[0].id(),
                        pair[1].id()
                    ));
                }
            }
        }
        Ok(())
    }
}
