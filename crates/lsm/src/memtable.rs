//! `Memtable`: the newest writes, in memory, in key order, until flushed into a table.
//!
//! A `BTreeMap` under a `RwLock`, keyed by user key, holding the newest version only (a
//! tombstone is a version). Writers are serialised by the tree's write lock anyway (so the
//! log order and the sequence order agree), so a concurrent skiplist would only buy lock-free
//! readers; a plain ordered map is simpler to read and to trust. RocksDB keeps every version
//! (snapshots need them); without snapshots the older versions are dead on arrival.
//!
//! Size accounting: key + value bytes plus [`MEMTABLE_ENTRY_OVERHEAD`] per entry, an
//! estimate of the map's node cost, so that the flush threshold tracks real memory.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use storelab_pager::Lsn;

use crate::entry::{Entry, SeqNo};

/// Bytes charged per entry beyond its key and value.
pub const MEMTABLE_ENTRY_OVERHEAD: usize = 48;

/// Which way a cursor walks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// The newest version of each key: sequence number and value (`None`: tombstone).
type VersionMap = BTreeMap<Vec<u8>, (SeqNo, Option<Vec<u8>>)>;

/// One memtable: active (taking writes) or frozen (waiting for its flush).
#[derive(Debug)]
pub struct Memtable {
    map: RwLock<VersionMap>,
    bytes: AtomicUsize,
    /// End of the last log record applied: once this memtable is in a table, the log before
    /// this point is no longer needed by the tree.
    end_lsn: AtomicU64,
}

impl Memtable {
    /// An empty memtable; `start_lsn` is where the log stood when it was created.
    pub fn new(start_lsn: Lsn) -> Memtable {
        Memtable {
            map: RwLock::new(BTreeMap::new()),
            bytes: AtomicUsize::new(0),
            end_lsn: AtomicU64::new(start_lsn.0),
        }
    }

    /// Inserts a version (replacing the older one). `value: None` is a tombstone.
    pub fn put(&self, key: &[u8], seq: SeqNo, value: Option<&[u8]>) {
        let add = key.len() + value.map_or(0, <[u8]>::len) + MEMTABLE_ENTRY_OVERHEAD;
        let mut map = self.map.write();
        let old = map.insert(key.to_vec(), (seq, value.map(<[u8]>::to_vec)));
        if let Some((old_seq, old_value)) = old {
            assert!(old_seq < seq, "sequence numbers go backwards for one key");
            let sub = key.len() + old_value.map_or(0, |v| v.len()) + MEMTABLE_ENTRY_OVERHEAD;
            self.bytes.fetch_sub(sub, Ordering::Relaxed);
        }
        self.bytes.fetch_add(add, Ordering::Relaxed);
    }

    /// Records that the log records up to `lsn` are applied.
    pub fn set_end_lsn(&self, lsn: Lsn) {
        self.end_lsn.fetch_max(lsn.0, Ordering::AcqRel);
    }

    /// End of the last log record applied.
    pub fn end_lsn(&self) -> Lsn {
        Lsn(self.end_lsn.load(Ordering::Acquire))
    }

    /// The newest version of `key`: `Some((seq, None))` is a tombstone.
    pub fn get(&self, key: &[u8]) -> Option<(SeqNo, Option<Vec<u8>>)> {
        self.map.read().get(key).cloned()
    }

    /// Approximate bytes held.
    pub fn size_bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.read().len()
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.map.read().is_empty()
    }

    /// Up to `count` entries strictly after `after` (in `dir` order) and within `end`, copied
    /// out under the read lock. Cursors read a memtable in such chunks, so no lock is held
    /// between calls.
    pub fn chunk(
        &self,
        after: Bound<&[u8]>,
        end: Bound<&[u8]>,
        dir: Direction,
        count: usize,
    ) -> Vec<Entry> {
        let map = self.map.read();
        let to_entry = |(k, (seq, v)): (&Vec<u8>, &(SeqNo, Option<Vec<u8>>))| Entry {
            key: k.clone(),
            seq: *seq,
            value: v.clone(),
        };
        let (lo, hi) = match dir {
            Direction::Forward => (after, end),
            Direction::Reverse => (end, after),
        };
        if let (Bound::Included(l) | Bound::Excluded(l), Bound::Included(h) | Bound::Excluded(h)) =
            (lo, hi)
        {
            let empty = l > h
                || (l == h
                    && !(matches!(lo, Bound::Included(_)) && matches!(hi, Bound::Included(_))));
            if empty {
                return Vec::new();
            }
        }
        let range = map.range::<[u8], _>((lo, hi));
        match dir {
            Direction::Forward => range.take(count).map(to_entry).collect(),
            Direction::Reverse => range.rev().take(count).map(to_entry).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The newest version wins, and size accounting follows replacements.
    #[test]
    fn newest_version_wins_and_size_follows() {
        let m = Memtable::new(Lsn(0));
        m.put(b"a", SeqNo(1), Some(b"1234"));
        let one = m.size_bytes();
        m.put(b"a", SeqNo(2), None);
        assert_eq!(m.get(b"a"), Some((SeqNo(2), None)));
        assert_eq!(m.size_bytes(), one - 4);
        assert_eq!(m.len(), 1);
    }

    /// Chunks continue strictly after the last key, in both directions, within the bound.
    #[test]
    fn chunks_walk_both_ways() {
        let m = Memtable::new(Lsn(0));
        for i in 0..10u8 {
            m.put(&[i], SeqNo(u64::from(i) + 1), Some(&[i]));
        }
        let first = m.chunk(
            Bound::Unbounded,
            Bound::Excluded(&[8]),
            Direction::Forward,
            3,
        );
        assert_eq!(
            first.iter().map(|e| e.key[0]).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let next = m.chunk(
            Bound::Excluded(&[2]),
            Bound::Excluded(&[8]),
            Direction::Forward,
            100,
        );
        assert_eq!(next.len(), 5);
        let back = m.chunk(
            Bound::Excluded(&[5]),
            Bound::Included(&[3]),
            Direction::Reverse,
            100,
        );
        assert_eq!(back.iter().map(|e| e.key[0]).collect::<Vec<_>>(), [4, 3]);
        assert!(
            m.chunk(
                Bound::Excluded(&[5]),
                Bound::Excluded(&[5]),
                Direction::Forward,
                9
            )
            .is_empty()
        );
    }
}
