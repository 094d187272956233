//! Range cursors, forward and backward, over leaf sibling links.

use std::collections::VecDeque;
use std::ops::Bound;

use storelab_pager::PageId;

use crate::error::Result;
use crate::node::NodeRef;
use crate::tree::{BTREE_DEPTH_MAX, BTree, NODE_PAGE};

/// A range scan. Each step copies the matching entries of one leaf and releases it before
/// moving on, so a cursor never holds a latch between calls and never holds two leaves at once.
/// It moves by sibling link and checks that the node reached still starts (or ends) where the
/// previous one ended (its fence); if not (a split or merge happened meanwhile), it descends
/// again from the root to the key it stopped at. Entries are therefore seen once each, in
/// order, though not as one atomic snapshot: a change made during the scan may or may not be
/// seen, as in any latch-based scan without MVCC.
pub struct Cursor<'t> {
    tree: &'t BTree,
    lower: Bound<Vec<u8>>,
    upper: Bound<Vec<u8>>,
    forward: bool,
    buffer: VecDeque<(Vec<u8>, Vec<u8>)>,
    /// Where to continue: the next leaf's id and the fence it must have; `None` = done.
    next: Option<(Option<u64>, Vec<u8>)>,
    started: bool,
}

fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl BTree {
    /// Entries with keys in the range, in ascending order.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Cursor<'_> {
        Cursor::new(self, lower, upper, true)
    }

    /// Entries with keys in the range, in descending order.
    pub fn range_rev(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Cursor<'_> {
        Cursor::new(self, lower, upper, false)
    }

    /// Number of entries with keys in the range.
    pub fn count(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<u64> {
        let mut n = 0;
        for e in self.range(lower, upper) {
            e?;
            n += 1;
        }
        Ok(n)
    }

    /// The leaf holding the largest keys below `key` (or the rightmost leaf for `None`).
    fn find_leaf_before(&self, key: Option<&[u8]>) -> Result<storelab_pager::PageReadGuard<'_>> {
        let mut guard = self.read_root()?;
        for _ in 0..BTREE_DEPTH_MAX {
            let n = NodeRef::new(&guard, self.node_size);
            if n.is_leaf() {
                return Ok(guard);
            }
            let child = match key {
                None => {
                    if n.is_empty() {
                        n.leftmost()
                    } else {
                        n.child(n.len() - 1)
                    }
                }
                Some(k) => match n.search(k) {
                    Ok(0) | Err(0) => n.leftmost(),
                    Ok(i) | Err(i) => n.child(i - 1),
                },
            };
            guard = self.read_node(child)?;
        }
        Err(self.corrupt(guard.page_id(), "descent deeper than the depth limit"))
    }
}

impl<'t> Cursor<'t> {
    fn new(tree: &'t BTree, lower: Bound<&[u8]>, upper: Bound<&[u8]>, forward: bool) -> Self {
        Cursor {
            tree,
            lower: owned(lower),
            upper: owned(upper),
            forward,
            buffer: VecDeque::new(),
            next: None,
            started: false,
        }
    }

    fn in_lower(&self, key: &[u8]) -> bool {
        match &self.lower {
            Bound::Included(l) => key >= l.as_slice(),
            Bound::Excluded(l) => key > l.as_slice(),
            Bound::Unbounded => true,
        }
    }

    fn in_upper(&self, key: &[u8]) -> bool {
        match &self.upper {
            Bound::Included(u) => key <= u.as_slice(),
            Bound::Excluded(u) => key < u.as_slice(),
            Bound::Unbounded => true,
        }
    }

    /// Copies one leaf's matching entries into the buffer and sets where to go next.
    fn load(&mut self) -> Result<()> {
        let tree = self.tree;
        // Keys on the far side of `resume` were scanned already (the previous leaf covered
        // them). A leaf reached by its sibling link holds none, but one found by descending
        // again may: a merge since then can have moved them into it.
        let resume = if self.started {
            self.next.as_ref().map(|(_, fence)| fence.clone())
        } else {
            None
        };
        let guard = if !self.started {
            self.started = true;
            if self.forward {
                let seek: &[u8] = match &self.lower {
                    Bound::Included(k) | Bound::Excluded(k) => k,
                    Bound::Unbounded => &[],
                };
                tree.find_leaf(seek)?
            } else {
                match &self.upper {
                    Bound::Included(k) => tree.find_leaf(k)?,
                    Bound::Excluded(k) => tree.find_leaf_before(Some(k))?,
                    Bound::Unbounded => tree.find_leaf_before(None)?,
                }
            }
        } else {
            let Some((link, fence)) = self.next.take() else {
                return Ok(());
            };
            // Follow the sibling link if the node there still borders the fence; else descend.
            let by_link = match link {
                Some(id) => {
                    let g = tree.pool.read(tree.file, PageId(id))?;
                    let ok = g.header().page_type == NODE_PAGE && {
                        let n = NodeRef::new(&g, tree.node_size);
                        n.is_leaf()
                            && if self.forward {
                                n.low_fence() == Some(fence.as_slice())
                            } else {
                                n.high_fence() == Some(fence.as_slice())
                            }
                    };
                    ok.then_some(g)
                }
                None => None,
            };
            match by_link {
                Some(g) => g,
                None if self.forward => tree.find_leaf(&fence)?,
                None => tree.find_leaf_before(Some(&fence))?,
            }
        };
        let n = NodeRef::new(&guard, tree.node_size);
        let mut stop = false;
        let indices: Vec<usize> = if self.forward {
            (0..n.len()).collect()
        } else {
            (0..n.len()).rev().collect()
        };
        for i in indices {
            let key = n.key(i);
            if let Some(r) = &resume {
                let seen = if self.forward {
                    key < r.as_slice()
                } else {
                    key >= r.as_slice()
                };
                if seen {
                    continue;
                }
            }
            if self.forward {
                if !self.in_lower(key) {
                    continue;
                }
                if !self.in_upper(key) {
                    stop = true;
                    break;
                }
            } else {
                if !self.in_upper(key) {
                    continue;
                }
                if !self.in_lower(key) {
                    stop = true;
                    break;
                }
            }
            let value = tree.read_value(n.value(i))?;
            self.buffer.push_back((key.to_vec(), value));
        }
        if !stop {
            self.next = if self.forward {
                n.high_fence().map(|h| (n.next(), h.to_vec()))
            } else {
                n.low_fence().map(|l| (n.prev(), l.to_vec()))
            };
            // Past the range already? Then no need to visit the next leaf.
            if let Some((_, fence)) = &self.next {
                let beyond = if self.forward {
                    !self.in_upper(fence)
                } else {
                    // The next leaf holds keys below `fence`: none qualifies if fence <= lower.
                    match &self.lower {
                        Bound::Included(k) | Bound::Excluded(k) => fence.as_slice() <= k.as_slice(),
                        Bound::Unbounded => false,
                    }
                };
                if beyond {
                    self.next = None;
                }
            }
        }
        Ok(())
    }
}

impl Iterator for Cursor<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.buffer.pop_front() {
                return Some(Ok(e));
            }
            if self.started && self.next.is_none() {
                return None;
            }
            if let Err(e) = self.load() {
                self.next = None;
                self.started = true;
                return Some(Err(e));
            }
        }
    }
}
