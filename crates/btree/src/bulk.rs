//! Bulk load: building a tree bottom-up from sorted input.

use storelab_pager::{Lsn, PageId, PageWriteGuard};

use crate::error::{Error, Result};
use crate::node::{self, NO_PAGE, NodeMut, NodeRef, internal_cell, leaf_cell, overflow_cell};
use crate::tree::{BTree, NODE_PAGE};

/// Internal nodes built by bulk load are filled to this percent (room for later splits below).
const INTERNAL_FILL_PCT: usize = 90;

/// A level under construction: the node being filled and the (first key, page) of each node
/// finished so far.
struct LevelBuilder<'a> {
    level: u8,
    current: Option<PageWriteGuard<'a>>,
    current_low: Option<Vec<u8>>,
    nodes: Vec<(Option<Vec<u8>>, u64)>,
    fill_limit: usize,
    key_len_max: usize,
}

/// The key of an encoded cell.
fn cell_key(cell: &[u8], leaf: bool) -> &[u8] {
    let len = node::get_u16(cell, 0) as usize;
    let start = if leaf { 4 } else { 2 };
    &cell[start..start + len]
}

impl BTree {
    /// Builds the tree from `entries`, which must be in strictly ascending key order, into an
    /// empty tree: leaves are filled left to right to the configured leaf fill factor, then
    /// each level of internal nodes above them, as PostgreSQL's sorted index build and InnoDB's
    /// bulk load do. Much faster than inserting one by one: no descents, no splits, every page
    /// written once. Returns the number of entries.
    pub fn bulk_load<I>(&self, entries: I) -> Result<u64>
    where
        I: IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    {
        let _w = self.writer();
        let (root, _) = self.meta()?;
        {
            let g = self.read_node(root)?;
            let n = NodeRef::new(&g, self.node_size);
            if !n.is_leaf() || !n.is_empty() {
                return Err(Error::InvalidArgument(
                    "bulk load needs an empty tree".into(),
                ));
            }
        }
        let ns = self.node_size;
        let capacity = ns - node::SLOTS_OFFSET;
        let mut leaves = LevelBuilder {
            level: 0,
            current: None,
            current_low: None,
            nodes: Vec::new(),
            fill_limit: capacity * self.config.leaf_fill_pct as usize / 100,
            key_len_max: 0,
        };
        let mut count = 0u64;
        let mut previous: Option<Vec<u8>> = None;
        let mut end = Lsn(0);
        for (key, value) in entries {
            self.check_sizes(&key, &value)?;
            if previous.as_ref().is_some_and(|p| p >= &key) {
                return Err(Error::InvalidArgument(
                    "bulk load input is not strictly ascending".into(),
                ));
            }
            let cell = if 4 + key.len() + value.len() <= node::cell_size_max(ns) {
                leaf_cell(&key, &value)
            } else {
                let mut pages = Vec::new();
                let mut meta = None;
                let first = self.write_overflow(&value, &mut pages, &mut meta)?;
                let mut refs: Vec<&mut PageWriteGuard<'_>> = pages.iter_mut().collect();
                refs.extend(meta.as_mut());
                end = self.log_images(&mut refs)?;
                overflow_cell(&key, value.len() as u32, first)
            };
            end = end.max(self.add(&mut leaves, &key, &cell)?);
            previous = Some(key);
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        end = end.max(self.finish_level(&mut leaves, None)?.0);
        // Build internal levels until one node remains.
        let mut below = leaves.nodes;
        let mut level = 1u8;
        while below.len() > 1 {
            let mut b = LevelBuilder {
                level,
                current: None,
                current_low: None,
                nodes: Vec::new(),
                fill_limit: capacity * INTERNAL_FILL_PCT / 100,
                key_len_max: 0,
            };
            for (low, child) in below {
                match (&b.current, low) {
                    (Some(_), Some(low)) => {
                        let cell = internal_cell(&low, child);
                        end = end.max(self.add(&mut b, &low, &cell)?);
                    }
                    (None, low) => {
                        self.start_node(&mut b, low, NO_PAGE)?;
                        let cur = b.current.as_mut().expect("started");
                        NodeMut::new(cur, ns).set_leftmost(child);
                    }
                    (Some(_), None) => unreachable!("only the first node lacks a low fence"),
                }
            }
            end = end.max(self.finish_level(&mut b, None)?.0);
            below = b.nodes;
            level += 1;
        }
        let new_root = below[0].1;
        // Point the meta page at the new root and free the old, empty one.
        let mut meta = Some(self.pool.write(self.file, PageId(0))?);
        let mut old = self.pool.write(self.file, PageId(root))?;
        self.set_root(meta.as_mut().expect("latched"), new_root);
        self.push_free(&mut old, &mut meta)?;
        let mut m = meta.expect("latched");
        end = end.max(self.log_images(&mut [&mut m, &mut old])?);
        drop((m, old));
        self.wal.commit(end)?;
        Ok(count)
    }

    /// Adds a cell to the level's current node, finishing it and starting another when full.
    ///
    /// A finished node must also hold its high fence (the next node's first key). Leaves
    /// reserve room for a fence as long as the longest key seen; if the next key is longer
    /// still, `finish_level` carries the node's last cells over to the next node. Internal
    /// nodes reserve room for the longest possible key.
    fn add<'a>(&'a self, b: &mut LevelBuilder<'a>, key: &[u8], cell: &[u8]) -> Result<Lsn> {
        let ns = self.node_size;
        let mut end = Lsn(0);
        b.key_len_max = b.key_len_max.max(key.len());
        let reserve = if b.level == 0 {
            b.key_len_max + 2
        } else {
            node::key_size_max(ns) + 2
        };
        let full = match &b.current {
            None => true,
            Some(g) => {
                let n = NodeRef::new(g, ns);
                let used = n.used_space() + n.low_fence().map_or(0, |f| f.len() + 2);
                let limit = b.fill_limit.max(used.min(1));
                used + cell.len() + 2 + reserve > limit || n.free_space() < cell.len() + 2 + reserve
            }
        };
        let mut carried: Vec<Vec<u8>> = Vec::new();
        if full {
            let prev = match &b.current {
                Some(g) => g.page_id().0,
                None => NO_PAGE,
            };
            if b.current.is_some() {
                let (e, c) = self.finish_level(b, Some(key))?;
                end = e;
                carried = c;
            }
            let low = if b.nodes.is_empty() && prev == NO_PAGE {
                None
            } else if let Some(first) = carried.first() {
                Some(cell_key(first, b.level == 0).to_vec())
            } else {
                Some(key.to_vec())
            };
            self.start_node(b, low, prev)?;
            if b.level > 0 {
                // The entry that opens an internal node is its leftmost child; its key is the
                // node's low fence, not an entry.
                let key_len = node::get_u16(cell, 0) as usize;
                let child = node::get_u64(cell, 2 + key_len);
                let cur = b.current.as_mut().expect("just started");
                NodeMut::new(cur, ns).set_leftmost(child);
                return Ok(end);
            }
        }
        let cur = b.current.as_mut().expect("a node is open");
        let mut n = NodeMut::new(cur, ns);
        for c in carried.iter().map(Vec::as_slice).chain([cell]) {
            let at = n.as_ref().len();
            if !n.insert(at, c) {
                return Err(Error::InvalidArgument(
                    "a cell does not fit an empty node".into(),
                ));
            }
        }
        Ok(end)
    }

    fn start_node<'a>(
        &'a self,
        b: &mut LevelBuilder<'a>,
        low: Option<Vec<u8>>,
        prev: u64,
    ) -> Result<()> {
        let mut g = self.pool.new_page(self.file, NODE_PAGE)?;
        NodeMut::new(&mut g, self.node_size).init(b.level, low.as_deref(), None, prev, NO_PAGE);
        b.current = Some(g);
        b.current_low = low;
        Ok(())
    }

    /// Closes the level's open node with high fence `high` (the next node's first key) and
    /// logs it.
    fn finish_level<'a>(
        &'a self,
        b: &mut LevelBuilder<'a>,
        high: Option<&[u8]>,
    ) -> Result<(Lsn, Vec<Vec<u8>>)> {
        let Some(mut g) = b.current.take() else {
            return Ok((Lsn(0), Vec::new()));
        };
        let ns = self.node_size;
        let id = g.page_id().0;
        // Rebuild with the high fence (and the next link, which is the next page allocated:
        // set by the next node's start below through `prev`).
        let (mut cells, leftmost, prev): (Vec<Vec<u8>>, u64, u64) = {
            let n = NodeRef::new(&g, ns);
            (
                (0..n.len()).map(|i| n.cell(i).to_vec()).collect(),
                n.leftmost(),
                n.prev().unwrap_or(NO_PAGE),
            )
        };
        let low = b.current_low.take();
        // Make room for the high fence by carrying last cells to the next node (leaves only;
        // internal nodes reserved room for any key).
        let mut carried: Vec<Vec<u8>> = Vec::new();
        let mut fence: Option<Vec<u8>> = high.map(<[u8]>::to_vec);
        let fixed = node::SLOTS_OFFSET + low.as_ref().map_or(0, |l| l.len() + 2);
        while let Some(f) = &fence {
            let used: usize = cells.iter().map(|c| c.len() + 2).sum();
            if fixed + used + f.len() + 2 <= ns || cells.len() <= 1 {
                break;
            }
            let last = cells.pop().expect("more than one cell");
            fence = Some(cell_key(&last, b.level == 0).to_vec());
            carried.insert(0, last);
        }
        let high = fence.as_deref();
        {
            let mut n = NodeMut::new(&mut g, ns);
            n.init(b.level, low.as_deref(), high, prev, NO_PAGE);
            n.set_leftmost(leftmost);
            for (i, c) in cells.iter().enumerate() {
                assert!(n.insert(i, c), "cells that fit still fit");
            }
        }
        // Link the previous node of this level to this one.
        let mut end = Lsn(0);
        if prev != NO_PAGE {
            let mut p = self.pool.write(self.file, PageId(prev))?;
            NodeMut::new(&mut p, ns).set_next(id);
            end = self.log_images(&mut [&mut p])?;
        }
        end = end.max(self.log_images(&mut [&mut g])?);
        b.nodes.push((low, id));
        Ok((end, carried))
    }
}
