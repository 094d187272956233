//! storelab's B+tree: one implementation for the heap's indexes (key -> TID), the clustered
//! engine's primary index (key -> row) and its secondaries ((key, primary key) -> nothing).
//!
//! ```text
//!   page 0: meta (root, free list)
//!                      [ internal: leftmost | k1 c1 | k2 c2 ]            level 2
//!                     /               |               \
//!        [ low=-inf  high=k1 ]  [ low=k1 high=k2 ]  [ low=k2 high=+inf ]  level 1
//!              ...                    ...                  ...
//!   leaves: [ (-inf,a) ] <-> [ [a,b) ] <-> [ [b,c) ] <-> ... <-> [ [z,+inf) ]   level 0
//!                                  \-> overflow page -> overflow page (large values)
//! ```
//!
//! Nodes are slotted pages ([`node`], `docs/format/btree.md`): a slot array in key order, cells
//! growing down from the end, variable-length keys and values, fence keys (the node's key range
//! `[low, high)`, copies of the parent's separators), sibling links in both directions, the
//! level. Values longer than the inline limit go to a chain of overflow pages (InnoDB's
//! off-page columns, PostgreSQL's TOAST). Freed pages go on a free list in the meta page.
//!
//! # Invariants (checked by [`BTree::check`])
//!
//! 1. Keys in a node are strictly ascending and within its fences.
//! 2. A child's fences are exactly the separators its parent holds around it; children are one
//!    level below their parent; all leaves are at level 0.
//! 3. The leaves form one doubly linked list in key order.
//! 4. Every page is reached once: from the root, as an overflow page of one value, or on the
//!    free list. Descents stop at [`BTREE_DEPTH_MAX`] even in a corrupt file with a cycle.
//! 5. In each node, cells, fences, slots and dead bytes account exactly for the node's size.
//!
//! # Policies (the knobs the experiments turn)
//!
//! - Split point ([`SplitPolicy`]): `Middle` (half the bytes each side) or `InsertPoint`: when
//!   a key goes past the end of the rightmost leaf, the left leaf keeps everything and the new
//!   leaf starts with the new key, so ascending inserts leave full leaves (PostgreSQL's
//!   rightmost-page split, InnoDB's split at the insert point). Random inserts with middle
//!   splits leave leaves about 70% full on average (Yao's result, ln 2).
//! - Merge threshold (InnoDB's `MERGE_THRESHOLD`, default 50%): after a delete, a node below it
//!   merges with its right sibling under the same parent if both fit in one node.
//! - Leaf fill factor for bulk load (InnoDB's `innodb_fill_factor`, PostgreSQL's index
//!   `fillfactor`), default 90%.
//!
//! # Concurrency: the latching protocol
//!
//! - **Readers** read the root's id from the meta page and release it, read-latch the root
//!   and check it is still the root (its fences are both infinite; after a root split or
//!   collapse they are not, and the reader restarts), then descend with latch coupling: latch
//!   the child, then release the parent. A reader holds at most two latches, top-down.
//! - **Writers** serialize on a tree-level mutex (one writer at a time, as in LMDB and redb),
//!   then crab down with write latches, releasing every ancestor above a child that is *safe*:
//!   one that can take an insert without splitting, or lose an entry without underflowing.
//!   What stays latched is exactly what a split or merge may change. Writers latch top-down,
//!   and left to right among siblings (a split updates its right neighbour's back link; a merge
//!   takes the right sibling), the same order readers use, so there is no deadlock. The meta
//!   page is latched last when needed (root change, free list): safe because a reader never
//!   waits for anything while holding it.
//! - **Cursors** copy the matching entries of one leaf and release it before moving; the next
//!   leaf is reached by its sibling link and accepted only if its fence equals the fence the
//!   previous leaf ended at (a B-link-style check). Otherwise the cursor descends again from
//!   the root to where it stopped. Backward moves therefore never latch right-to-left while
//!   holding a latch (PostgreSQL's `_bt_walk_left` has the same concern).
//!
//! # Durability
//!
//! Every change is one WAL record, appended while the changed pages are write-latched, and each
//! page gets the record's end as its LSN (crates/wal explains why that makes multi-page changes
//! atomic without undo). A change that may touch more pages than one record holds (a value of
//! many overflow pages, a deep cascade of splits) is found out before anything is changed: the
//! operation releases its latches, opens an atomic group of the log and starts again, logging
//! several records that recovery replays all or nothing. Engines that change several
//! structures in one operation call the `*_no_commit` variants inside their own atomic group
//! and commit once at its end. A leaf insert, delete or replacement that fits is a compact record
//! (slot and cell, redone by [`register_redo`]'s functions); a split, merge, root change, new
//! overflow chain or bulk-loaded page is logged as page images. The operation then commits
//! (durable when the log's commit mode is `sync` or `group`) after its latches are released,
//! so concurrent writers' commits can share a sync.
//!
//! # Simplified versus PostgreSQL and InnoDB
//!
//! - One writer at a time; PostgreSQL (Lehman-Yao right-links) and InnoDB (optimistic leaf
//!   latching, then pessimistic retry) let writers in different subtrees proceed in parallel.
//! - Merges only with the right sibling under the same parent, no redistribution between
//!   siblings, no merge of a node left under-full because its sibling is full.
//! - No prefix or suffix truncation of keys; separators are whole keys.
//! - Structural changes log whole page images rather than logical split records (more log
//!   bytes, simpler redo).
//! - Bulk load needs an empty tree.
//!
//! # Further reading
//!
//! Graefe, "Modern B-Tree Techniques" (2011) for fences, B-link trees, latching; PostgreSQL
//! `src/backend/access/nbtree/README`; the InnoDB manual's "B-Tree Index" and
//! "Configuring the Merge Threshold for Index Pages"; Lehman and Yao, "Efficient Locking for
//! Concurrent Operations on B-Trees" (TODS 1981).

mod bulk;
mod check;
mod cursor;
pub mod error;
pub mod node;
mod tree;

pub use cursor::Cursor;
pub use error::{Error, Result};
pub use tree::{
    BTREE_DEPTH_MAX, BTree, BTreeConfig, BTreeStats, META_PAGE, NODE_PAGE, OVERFLOW_PAGE,
    REC_DELETE, REC_INSERT, REC_REPLACE, REC_STRUCTURE, SplitPolicy, VALUE_SIZE_MAX, register_redo,
};
