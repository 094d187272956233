//! `LeafReader`: reads the leaf level of a B+tree through the pool's read stream, so that a
//! range scan or a batch of sorted lookups has the next leaves in flight while it works on
//! the current one.
//!
//! The B+tree's own [`Cursor`](storelab_btree::Cursor) reads one leaf at a time and finds the
//! next by its sibling link: the next page id is known only once the current leaf is read, so
//! it cannot be prefetched. Here the leaf ids are found *first*, from the level above the
//! leaves, and then streamed:
//!
//! ```text
//!   1. plan: from the root, keep at each level only the children whose key range meets the
//!      scan's range (or holds one of the keys asked for); the leaf level's ids come out in
//!      key order
//!                     [ root ]                        internal nodes: read once each
//!                   /     |     \
//!            [ i1 ]    [ i2 ]    [ i3 ]
//!           /  |  \   /  |  \   /  |  \
//!          L1 L2 L3  L4 L5 L6  L7 L8 L9                 range [k, m) meets L3..L6
//!
//!   2. stream: ReadStream(L3, L4, L5, L6) with depth d keeps d leaves pinned (read ahead,
//!      adjacent page ids combined into one I/O) while the entries of the current leaf are
//!      copied out; overflow values are fetched afterwards with a point lookup
//! ```
//!
//! This is InnoDB's linear read-ahead done with knowledge rather than by guessing (InnoDB
//! triggers a read of the next extent after it sees sequential access), and for a batch of
//! sorted keys it is MySQL's Multi-Range Read: the keys are partitioned top-down, so each
//! internal node and each leaf is read once however many keys it holds.
//!
//! # Why this is safe without the tree's latch protocol
//!
//! The plan is only valid while the tree does not change. Every caller holds its table's lock
//! in shared mode, and every change to the table's trees is made under that lock in exclusive
//! mode, so no split or merge can happen between planning and streaming. Pages are still read
//! through the pool (read-latched, checked by the tree's page validator when they come from
//! disk), and every node is checked for its page type and level before it is trusted.
//!
//! The root page id comes from `BTree::root_page` (the meta page).

use std::ops::{Bound, Range};

use storelab_btree::node::{LeafValue, NodeRef};
use storelab_btree::{BTREE_DEPTH_MAX, BTree, NODE_PAGE};
use storelab_pager::PageId;
use storelab_pager::buffer_pool::{ReadStream, ReadStreamConfig};
use storelab_table::{Error, Result};

/// Called with each entry of a range scan (key, value); returns whether to go on.
pub(crate) type EntryVisitor<'a> = &'a mut dyn FnMut(&[u8], Vec<u8>) -> Result<bool>;
/// Called with each key of a batch of lookups and its value (`None`: absent); returns
/// whether to go on.
pub(crate) type LookupVisitor<'a> = &'a mut dyn FnMut(&[u8], Option<Vec<u8>>) -> Result<bool>;
/// Whether a child covering keys in `[low, high)` (`None`: infinite) is wanted.
type ChildFilter<'a> = &'a dyn Fn(Option<&[u8]>, Option<&[u8]>) -> bool;

/// What one leaf-level read did (added to the table's counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LeafReadStats {
    /// Internal nodes read while planning.
    pub internal_nodes_read: u64,
    /// Leaves delivered by the read stream.
    pub leaves_read: u64,
    /// Values stored in overflow pages, fetched with a point lookup (one descent each).
    pub overflow_fetches: u64,
}

/// Reads the leaf level of one tree through a read stream; see the module doc.
pub(crate) struct LeafReader<'t> {
    tree: &'t BTree,
    depth: usize,
    stats: LeafReadStats,
}

/// A child of an internal node and the key range it covers (`None`: infinite).
struct ChildRange<'a> {
    id: u64,
    low: Option<&'a [u8]>,
    high: Option<&'a [u8]>,
}

impl<'t> LeafReader<'t> {
    /// A reader of `tree` that keeps up to `depth` leaves in flight (at least 1).
    pub(crate) fn new(tree: &'t BTree, depth: usize) -> LeafReader<'t> {
        LeafReader {
            tree,
            depth: depth.max(1),
            stats: LeafReadStats::default(),
        }
    }

    /// What the reader did so far.
    pub(crate) fn stats(&self) -> LeafReadStats {
        self.stats
    }

    /// Visits the entries with keys in `lower..upper` in ascending order until `visit` returns
    /// false.
    pub(crate) fn scan_range(
        &mut self,
        lower: Bound<&[u8]>,
        upper: Bound<&[u8]>,
        visit: EntryVisitor<'_>,
    ) -> Result<()> {
        let leaves = self.plan(&|low, high| meets(low, high, lower, upper), None)?;
        let ids: Vec<u64> = leaves.iter().map(|(id, _)| *id).collect();
        let tree = self.tree;
        let config = self.stream_config();
        let mut stream = ReadStream::new(
            tree.pool(),
            tree.file(),
            ids.into_iter().map(PageId),
            config,
        );
        while let Some(guard) = stream.next() {
            let guard = guard?;
            self.stats.leaves_read += 1;
            let entries = {
                let node = self.leaf(&guard)?;
                let mut entries = Vec::with_capacity(node.len());
                for i in 0..node.len() {
                    let key = node.key(i);
                    if !above(key, lower) {
                        continue;
                    }
                    if !below(key, upper) {
                        break;
                    }
                    entries.push((key.to_vec(), inline_value(node.value(i))));
                }
                entries
            };
            drop(guard);
            for (key, value) in entries {
                let value = self.resolve(&key, value)?;
                if !visit(&key, value)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Looks up `keys` (strictly ascending) and visits each with its value (`None`: absent),
    /// in key order, until `visit` returns false.
    pub(crate) fn get_many(&mut self, keys: &[Vec<u8>], visit: LookupVisitor<'_>) -> Result<()> {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]), "keys must ascend");
        if keys.is_empty() {
            return Ok(());
        }
        let leaves = self.plan(&|_, _| true, Some(keys))?;
        let groups: Vec<Range<usize>> = leaves.iter().map(|(_, r)| r.clone()).collect();
        let ids: Vec<u64> = leaves.iter().map(|(id, _)| *id).collect();
        let tree = self.tree;
        let config = self.stream_config();
        let mut stream = ReadStream::new(
            tree.pool(),
            tree.file(),
            ids.into_iter().map(PageId),
            config,
        );
        let mut groups = groups.into_iter();
        while let Some(guard) = stream.next() {
            let guard = guard?;
            self.stats.leaves_read += 1;
            let group = groups.next().expect("one key group per planned leaf");
            let found: Vec<Option<Stored>> = {
                let node = self.leaf(&guard)?;
                keys[group.clone()]
                    .iter()
                    .map(|key| node.search(key).ok().map(|i| inline_value(node.value(i))))
                    .collect()
            };
            drop(guard);
            for (key, value) in keys[group].iter().zip(found) {
                let value = match value {
                    Some(stored) => Some(self.resolve(key, stored)?),
                    None => None,
                };
                if !visit(key, value)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn stream_config(&self) -> ReadStreamConfig {
        ReadStreamConfig {
            depth: self.depth,
            ..ReadStreamConfig::default()
        }
    }

    /// A stored value's bytes: inline ones as they are, an overflow chain through a point
    /// lookup (the B+tree does not export its chain reader).
    fn resolve(&mut self, key: &[u8], value: Stored) -> Result<Vec<u8>> {
        match value {
            Stored::Inline(bytes) => Ok(bytes),
            Stored::Overflow => {
                self.stats.overflow_fetches += 1;
                self.tree
                    .get(key)?
                    .ok_or_else(|| self.corrupt(None, "a planned entry vanished"))
            }
        }
    }

    /// The leaves to read, in key order, each with the range of `keys` it holds (the whole
    /// empty range when no keys are given). Walks down level by level, keeping the children
    /// that `wanted` accepts (range mode) or that hold some of the keys (keys mode).
    fn plan(
        &mut self,
        wanted: ChildFilter<'_>,
        keys: Option<&[Vec<u8>]>,
    ) -> Result<Vec<(u64, Range<usize>)>> {
        let tree = self.tree;
        let node_size = tree.node_size();
        let page_count = tree.pool().disk().page_count(tree.file())?;
        let all = 0..keys.map_or(0, <[Vec<u8>]>::len);
        let mut level_nodes = vec![(self.root_id()?, all)];
        // The level every node of the current level must have (`None` for the root).
        let mut expected_level: Option<u8> = None;
        for _ in 0..BTREE_DEPTH_MAX {
            if level_nodes.is_empty() {
                return Ok(level_nodes);
            }
            let mut next = Vec::new();
            for (id, range) in &level_nodes {
                let guard = self.node(*id)?;
                let node = NodeRef::new(&guard, node_size);
                if let Some(expected) = expected_level
                    && node.level() != expected
                {
                    let reason = format!("level {} where {expected} was expected", node.level());
                    return Err(self.corrupt(Some(*id), reason));
                }
                if node.is_leaf() {
                    // Every node of this level is a leaf (the level was checked).
                    return Ok(level_nodes);
                }
                self.stats.internal_nodes_read += 1;
                match keys {
                    None => {
                        for child in children(&node) {
                            if wanted(child.low, child.high) {
                                next.push((child.id, 0..0));
                            }
                        }
                    }
                    Some(keys) => {
                        // Consecutive keys going to the same child form one group.
                        let mut start = range.start;
                        while start < range.end {
                            let (_, child) = node.child_for(&keys[start]);
                            let mut end = start + 1;
                            while end < range.end && node.child_for(&keys[end]).1 == child {
                                end += 1;
                            }
                            next.push((child, start..end));
                            start = end;
                        }
                    }
                }
                expected_level.get_or_insert(node.level());
            }
            // Internal nodes have level >= 1 (a leaf returned above).
            expected_level = expected_level.map(|l| l - 1);
            if next.len() as u64 > page_count {
                return Err(self.corrupt(None, "a level has more nodes than the file has pages"));
            }
            level_nodes = next;
        }
        Err(self.corrupt(None, format!("deeper than {BTREE_DEPTH_MAX} levels")))
    }

    /// The root's page id, from the tree's meta page.
    fn root_id(&self) -> Result<u64> {
        Ok(self.tree.root_page()?.0)
    }

    /// Read-latches a node page, checking its type.
    fn node(&self, id: u64) -> Result<storelab_pager::PageReadGuard<'t>> {
        let tree = self.tree;
        let guard = tree.pool().read(tree.file(), PageId(id))?;
        if guard.header().page_type != NODE_PAGE {
            return Err(self.corrupt(Some(id), "expected a node"));
        }
        Ok(guard)
    }

    /// Views a streamed page as a leaf, checking it is one.
    fn leaf<'g>(&self, guard: &'g storelab_pager::PageReadGuard<'_>) -> Result<NodeRef<'g>> {
        let page_id = guard.page_id().0;
        if guard.header().page_type != NODE_PAGE {
            return Err(self.corrupt(Some(page_id), "expected a leaf"));
        }
        let node = NodeRef::new(guard, self.tree.node_size());
        if !node.is_leaf() {
            return Err(self.corrupt(Some(page_id), "expected a leaf"));
        }
        Ok(node)
    }

    fn corrupt(&self, page: Option<u64>, reason: impl Into<String>) -> Error {
        let tree = self.tree;
        let path = tree
            .pool()
            .disk()
            .path(tree.file())
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".to_string());
        let what = match page {
            Some(p) => format!("B+tree {path} page {p}"),
            None => format!("B+tree {path}"),
        };
        Error::corrupt(what, reason)
    }
}

/// A value as found in a leaf: its bytes, or a note that it lives in an overflow chain.
enum Stored {
    Inline(Vec<u8>),
    Overflow,
}

fn inline_value(value: LeafValue<'_>) -> Stored {
    match value {
        LeafValue::Inline(bytes) => Stored::Inline(bytes.to_vec()),
        LeafValue::Overflow { .. } => Stored::Overflow,
    }
}

/// The children of an internal node with the key ranges they cover, in key order: the
/// leftmost child covers `[low fence, key 0)`, child `i` covers `[key i, key i+1)`, the last
/// one ends at the high fence.
fn children<'a>(node: &NodeRef<'a>) -> Vec<ChildRange<'a>> {
    let mut out = Vec::with_capacity(node.len() + 1);
    let first_high = if node.is_empty() {
        node.high_fence()
    } else {
        Some(node.key(0))
    };
    out.push(ChildRange {
        id: node.leftmost(),
        low: node.low_fence(),
        high: first_high,
    });
    for i in 0..node.len() {
        let high = if i + 1 < node.len() {
            Some(node.key(i + 1))
        } else {
            node.high_fence()
        };
        out.push(ChildRange {
            id: node.child(i),
            low: Some(node.key(i)),
            high,
        });
    }
    out
}

/// Whether keys in `[low, high)` may lie within the bounds (conservative: an extra node only
/// costs a read, since entries are filtered by the bounds anyway).
fn meets(
    low: Option<&[u8]>,
    high: Option<&[u8]>,
    lower: Bound<&[u8]>,
    upper: Bound<&[u8]>,
) -> bool {
    let after_lower = match (lower, high) {
        (Bound::Unbounded, _) | (_, None) => true,
        (Bound::Included(l) | Bound::Excluded(l), Some(h)) => h > l,
    };
    let before_upper = match (upper, low) {
        (Bound::Unbounded, _) | (_, None) => true,
        (Bound::Included(u), Some(l)) => l <= u,
        (Bound::Excluded(u), Some(l)) => l < u,
    };
    after_lower && before_upper
}

fn above(key: &[u8], lower: Bound<&[u8]>) -> bool {
    match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => key >= l,
        Bound::Excluded(l) => key > l,
    }
}

fn below(key: &[u8], upper: Bound<&[u8]>) -> bool {
    match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => key <= u,
        Bound::Excluded(u) => key < u,
    }
}
