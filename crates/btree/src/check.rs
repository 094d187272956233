//! `check()`: validates a whole tree and measures its shape.

use std::collections::HashSet;

use storelab_pager::PageId;

use crate::error::Result;
use crate::node::{self, LeafValue, NO_PAGE, NodeRef, get_u64};
use crate::tree::{
    BTREE_DEPTH_MAX, BTree, BTreeStats, FREE_PAGE, NODE_PAGE, OVERFLOW_DATA_OFFSET,
    OVERFLOW_LEN_OFFSET, OVERFLOW_NEXT_OFFSET, OVERFLOW_PAGE,
};

/// A child and the fences its parent gives it.
type ChildRange = (u64, Option<Vec<u8>>, Option<Vec<u8>>);

struct Walk<'t> {
    tree: &'t BTree,
    seen: HashSet<u64>,
    leaves: Vec<(u64, Option<u64>, Option<u64>)>,
    stats: BTreeStats,
    leaf_used: u64,
}

/// Walks every page reachable from the meta page and checks: each node's layout (offsets,
/// lengths, free-space accounting, key order), its fences equal the separators its parent holds
/// for it, children sit one level below their parent, leaves form one doubly linked chain in
/// key order, overflow chains are well formed and as long as their references say, the free
/// list holds only free pages, and no page is reached twice (no cycles, no sharing).
pub(crate) fn walk(tree: &BTree) -> Result<BTreeStats> {
    let (root, free_head) = tree.meta()?;
    let mut w = Walk {
        tree,
        seen: HashSet::from([0]),
        leaves: Vec::new(),
        stats: BTreeStats::default(),
        leaf_used: 0,
    };
    let level = {
        let g = tree.read_node(root)?;
        NodeRef::new(&g, tree.node_size).level()
    };
    w.stats.height = level as usize + 1;
    if w.stats.height > BTREE_DEPTH_MAX {
        return Err(tree.corrupt(PageId(root), "tree taller than the depth limit"));
    }
    w.node(root, None, None, level, 0)?;
    // The leaf chain.
    for (i, (id, prev, next)) in w.leaves.iter().enumerate() {
        let want_prev = if i == 0 {
            None
        } else {
            Some(w.leaves[i - 1].0)
        };
        let want_next = w.leaves.get(i + 1).map(|l| l.0);
        if *prev != want_prev || *next != want_next {
            return Err(tree.corrupt(
                PageId(*id),
                format!("sibling links {prev:?}/{next:?}, expected {want_prev:?}/{want_next:?}"),
            ));
        }
    }
    // The free list.
    let mut page = free_head;
    while page != NO_PAGE {
        if !w.seen.insert(page) {
            return Err(tree.corrupt(PageId(page), "free page reached twice or also in use"));
        }
        let g = tree.pool.read(tree.file, PageId(page))?;
        if g.header().page_type != FREE_PAGE {
            return Err(tree.corrupt(PageId(page), "free list holds a page that is not free"));
        }
        w.stats.free_count += 1;
        page = get_u64(&g, storelab_pager::page::PAGE_HEADER_SIZE);
    }
    let capacity = (tree.node_size - node::SLOTS_OFFSET) as f64;
    if w.stats.leaf_count > 0 {
        w.stats.leaf_fill = w.leaf_used as f64 / (w.stats.leaf_count as f64 * capacity);
    }
    Ok(w.stats)
}

impl Walk<'_> {
    fn node(
        &mut self,
        id: u64,
        low: Option<&[u8]>,
        high: Option<&[u8]>,
        level: u8,
        depth: usize,
    ) -> Result<()> {
        let tree = self.tree;
        if depth >= BTREE_DEPTH_MAX {
            return Err(tree.corrupt(PageId(id), "deeper than the depth limit (a cycle?)"));
        }
        if !self.seen.insert(id) {
            return Err(tree.corrupt(PageId(id), "node reached twice"));
        }
        let g = tree.pool.read(tree.file, PageId(id))?;
        if g.header().page_type != NODE_PAGE {
            return Err(tree.corrupt(PageId(id), "not a node page"));
        }
        node::validate(&g, tree.node_size).map_err(|r| tree.corrupt(PageId(id), r))?;
        let n = NodeRef::new(&g, tree.node_size);
        if n.level() != level {
            return Err(tree.corrupt(
                PageId(id),
                format!("level {} where {level} was expected", n.level()),
            ));
        }
        if n.low_fence() != low || n.high_fence() != high {
            return Err(tree.corrupt(PageId(id), "fence keys differ from the parent's separators"));
        }
        if n.is_leaf() {
            self.stats.leaf_count += 1;
            self.stats.entry_count += n.len() as u64;
            let fences = n.low_fence().map_or(0, |f| f.len() + 2)
                + n.high_fence().map_or(0, |f| f.len() + 2);
            self.leaf_used += (n.used_space() + fences) as u64;
            self.leaves.push((id, n.prev(), n.next()));
            for i in 0..n.len() {
                if let LeafValue::Overflow {
                    total_len,
                    first_page,
                } = n.value(i)
                {
                    self.overflow(first_page, total_len as usize)?;
                }
            }
            return Ok(());
        }
        // An internal node may have no separators (one child): bulk load can end a level so.
        self.stats.internal_count += 1;
        let children: Vec<ChildRange> = (0..=n.len())
            .map(|i| {
                let child = if i == 0 { n.leftmost() } else { n.child(i - 1) };
                let lo = if i == 0 {
                    low.map(<[u8]>::to_vec)
                } else {
                    Some(n.key(i - 1).to_vec())
                };
                let hi = if i == n.len() {
                    high.map(<[u8]>::to_vec)
                } else {
                    Some(n.key(i).to_vec())
                };
                (child, lo, hi)
            })
            .collect();
        drop(g);
        for (child, lo, hi) in children {
            self.node(child, lo.as_deref(), hi.as_deref(), level - 1, depth + 1)?;
        }
        Ok(())
    }

    fn overflow(&mut self, first: u64, total: usize) -> Result<()> {
        let tree = self.tree;
        let mut page = first;
        let mut sum = 0usize;
        while page != NO_PAGE {
            if !self.seen.insert(page) {
                return Err(tree.corrupt(PageId(page), "overflow page reached twice"));
            }
            let g = tree.pool.read(tree.file, PageId(page))?;
            if g.header().page_type != OVERFLOW_PAGE {
                return Err(
                    tree.corrupt(PageId(page), "overflow chain reaches a non-overflow page")
                );
            }
            let len = u32::from_le_bytes(
                g[OVERFLOW_LEN_OFFSET..OVERFLOW_LEN_OFFSET + 4]
                    .try_into()
                    .expect("4"),
            ) as usize;
            if OVERFLOW_DATA_OFFSET + len > g.len() {
                return Err(tree.corrupt(PageId(page), "overflow length past the page"));
            }
            sum += len;
            self.stats.overflow_count += 1;
            page = get_u64(&g, OVERFLOW_NEXT_OFFSET);
        }
        if sum != total {
            return Err(tree.corrupt(
                PageId(first),
                format!("overflow chain holds {sum} bytes, reference says {total}"),
            ));
        }
        Ok(())
    }
}

impl BTree {
    /// Validates the whole tree (see [`walk`]); returns an error naming the first bad page.
    pub fn check(&self) -> Result<()> {
        walk(self).map(|_| ())
    }
}
