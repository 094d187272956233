//! `BlockCache`: decoded data blocks kept in memory under a byte budget, least recently used
//! evicted first.
//!
//! The cache is the LSM's counterpart of the B+tree engines' buffer pool, and it is sized from
//! the same memory budget: an engine that runs on the LSM gives the cache the bytes it would
//! have given its pool (see [`crate::LsmConfig::block_cache_bytes`]). A block is charged its
//! decoded size. Index and filter blocks are not cached here: each open table holds its own
//! (RocksDB's default, `cache_index_and_filter_blocks = false`), reported separately.
//!
//! Simplified versus RocksDB's LRUCache: one mutex rather than shards, no priority pools, no
//! strict-capacity mode; a block bigger than the whole budget is simply not cached.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::sstable::{Block, TableId};

/// Bytes charged per cached block on top of its contents (map entries, the `Arc`).
const CACHE_ENTRY_OVERHEAD: usize = 96;

/// Counters of a [`BlockCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Lookups that found their block.
    pub hit_count: u64,
    /// Lookups that did not.
    pub miss_count: u64,
    /// Blocks evicted to make room.
    pub eviction_count: u64,
    /// Bytes charged now.
    pub bytes: u64,
    /// The budget.
    pub capacity_bytes: u64,
}

#[derive(Default)]
struct CacheState {
    blocks: HashMap<(TableId, u64), (Arc<Block>, u64)>,
    recency: BTreeMap<u64, (TableId, u64)>,
    tick: u64,
    bytes: usize,
    stats: CacheStats,
}

/// A byte-budgeted LRU cache of decoded blocks, keyed by (table, block offset).
pub struct BlockCache {
    capacity_bytes: usize,
    state: Mutex<CacheState>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("capacity_bytes", &self.capacity_bytes)
            .finish_non_exhaustive()
    }
}

fn charge(block: &Block) -> usize {
    block.size_bytes() + CACHE_ENTRY_OVERHEAD
}

impl BlockCache {
    /// An empty cache of `capacity_bytes` (0: caches nothing).
    pub fn new(capacity_bytes: usize) -> Arc<BlockCache> {
        Arc::new(BlockCache {
            capacity_bytes,
            state: Mutex::new(CacheState::default()),
        })
    }

    /// The block at `offset` of `table`, if cached (and marks it recently used).
    pub fn get(&self, table: TableId, offset: u64) -> Option<Arc<Block>> {
        let mut st = self.state.lock();
        let st = &mut *st;
        st.tick += 1;
        let tick = st.tick;
        match st.blocks.get_mut(&(table, offset)) {
            Some((block, used)) => {
                st.recency.remove(used);
                *used = tick;
                st.recency.insert(tick, (table, offset));
                st.stats.hit_count += 1;
                Some(Arc::clone(block))
            }
            None => {
                st.stats.miss_count += 1;
                None
            }
        }
    }

    /// Caches a block, evicting the least recently used ones beyond the budget.
    pub fn insert(&self, table: TableId, offset: u64, block: Arc<Block>) {
        let size = charge(&block);
        if size > self.capacity_bytes {
            return;
        }
        let mut st = self.state.lock();
        let st = &mut *st;
        st.tick += 1;
        let tick = st.tick;
        if let Some((old, used)) = st.blocks.insert((table, offset), (block, tick)) {
            st.recency.remove(&used);
            st.bytes -= charge(&old);
        }
        st.recency.insert(tick, (table, offset));
        st.bytes += size;
        while st.bytes > self.capacity_bytes {
            let (_, key) = st.recency.pop_first().expect("bytes charged imply entries");
            let (old, _) = st.blocks.remove(&key).expect("recency and map agree");
            st.bytes -= charge(&old);
            st.stats.eviction_count += 1;
        }
    }

    /// Drops every block of `table` (its file is going away).
    pub fn forget_table(&self, table: TableId) {
        let mut st = self.state.lock();
        let st = &mut *st;
        let keys: Vec<(TableId, u64)> =
            st.blocks.keys().filter(|k| k.0 == table).copied().collect();
        for key in keys {
            let (old, used) = st.blocks.remove(&key).expect("listed above");
            st.recency.remove(&used);
            st.bytes -= charge(&old);
        }
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        let st = self.state.lock();
        CacheStats {
            bytes: st.bytes as u64,
            capacity_bytes: self.capacity_bytes as u64,
            ..st.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::SeqNo;
    use crate::sstable::BlockBuilder;

    fn block(n: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(4);
        for i in 0..n {
            b.add(format!("k{i:05}").as_bytes(), SeqNo(1), Some(&[0u8; 50]));
        }
        Arc::new(Block::decode(b.finish()).unwrap())
    }

    /// The least recently used block goes first, and the budget is never exceeded.
    #[test]
    fn evicts_least_recently_used_within_budget() {
        let one = charge(&block(10));
        let cache = BlockCache::new(one * 2 + 10);
        cache.insert(TableId(1), 0, block(10));
        cache.insert(TableId(1), 100, block(10));
        assert!(cache.get(TableId(1), 0).is_some());
        cache.insert(TableId(2), 0, block(10));
        assert!(cache.get(TableId(1), 100).is_none(), "LRU block evicted");
        assert!(cache.get(TableId(1), 0).is_some());
        let stats = cache.stats();
        assert!(stats.bytes <= stats.capacity_bytes);
        assert_eq!(stats.eviction_count, 1);
        cache.forget_table(TableId(1));
        assert!(cache.get(TableId(1), 0).is_none());
        assert_eq!(cache.stats().bytes as usize, one);
    }
}
