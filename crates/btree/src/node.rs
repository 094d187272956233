//! `Node`: the slotted layout of a B+tree page, and the pure functions that read and change it.
//!
//! ```text
//!  0            24   25   26     28        30      32         40         48          56    58    60
//!  +------------+----+----+------+---------+-------+----------+----------+-----------+-----+-----+
//!  | page header|lvl |flag|slots |cell top |frag   | prev     | next     | leftmost  | low | high|
//!  +------------+----+----+------+---------+-------+----------+----------+-----------+-----+-----+
//!  60: slot array (u16 cell offsets, in key order) -->      free      <-- cells (grow down)
//!                                                                         ... node_size
//! ```
//!
//! A leaf cell is `key_len u16 | val_len u16 | key | value`, where bit 15 of `val_len` marks an
//! overflow reference (`total_len u32 | first page u64`) in place of the value. An internal cell
//! is `key_len u16 | key | child u64`: the child holds keys at or above the key and below the
//! next cell's key; `leftmost` holds keys below the first cell's key. The fence keys (`low`,
//! `high`: offsets of cells holding just `key_len | key`, 0 for minus or plus infinity) bound the
//! keys the node may hold: `low <= key < high`. They are copies of the separators in the parent,
//! which lets `check()` verify every node on its own and a reader detect that it followed a
//! sibling link to a node that no longer covers its key.
//!
//! `node_size` may be smaller than the page (tests use 512 bytes to build deep trees from few
//! keys); bytes past it are unused.

use std::cmp::Ordering;

use storelab_pager::page::PAGE_HEADER_SIZE;

/// Byte offset of the node level (0 = leaf).
pub const LEVEL_OFFSET: usize = PAGE_HEADER_SIZE;
/// Byte offset of the node flags (reserved, 0).
pub const FLAGS_OFFSET: usize = LEVEL_OFFSET + 1;
/// Byte offset of the slot count.
pub const SLOT_COUNT_OFFSET: usize = FLAGS_OFFSET + 1;
/// Byte offset of the lowest cell's offset (the top of the free gap).
pub const CELL_TOP_OFFSET: usize = SLOT_COUNT_OFFSET + 2;
/// Byte offset of the count of dead bytes among the cells.
pub const FRAG_OFFSET: usize = CELL_TOP_OFFSET + 2;
/// Byte offset of the left sibling's page id.
pub const PREV_OFFSET: usize = FRAG_OFFSET + 2;
/// Byte offset of the right sibling's page id.
pub const NEXT_OFFSET: usize = PREV_OFFSET + 8;
/// Byte offset of the leftmost child (internal nodes).
pub const LEFTMOST_OFFSET: usize = NEXT_OFFSET + 8;
/// Byte offset of the low fence cell's offset.
pub const LOW_FENCE_OFFSET: usize = LEFTMOST_OFFSET + 8;
/// Byte offset of the high fence cell's offset.
pub const HIGH_FENCE_OFFSET: usize = LOW_FENCE_OFFSET + 2;
/// Byte offset of the slot array.
pub const SLOTS_OFFSET: usize = HIGH_FENCE_OFFSET + 2;
const _: () = assert!(SLOTS_OFFSET == 60);

/// A missing sibling or child.
pub const NO_PAGE: u64 = u64::MAX;
/// Bit of `val_len` marking an overflow reference.
pub const OVERFLOW_FLAG: u16 = 0x8000;
/// Size of an overflow reference in a leaf cell.
pub const OVERFLOW_REF_SIZE: usize = 12;

/// Reads a little-endian u16.
pub fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
/// Writes a little-endian u16.
pub fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
/// Reads a little-endian u64.
pub fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
/// Writes a little-endian u64.
pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The largest cell a node of `node_size` accepts: small enough that a node holds at least
/// four, fences included, so every split leaves both halves with entries. A quarter of the
/// node keeps a YCSB row (about 1.1 KB) inline in an 8 KiB leaf, as InnoDB keeps rows up to
/// about half a page in the leaf; PostgreSQL's B-tree allows a third of a page per tuple.
pub fn cell_size_max(node_size: usize) -> usize {
    (node_size - SLOTS_OFFSET) / 4 - 2
}

/// The largest key for a node size (an overflow cell with this key is `cell_size_max`).
pub fn key_size_max(node_size: usize) -> usize {
    cell_size_max(node_size) - 4 - OVERFLOW_REF_SIZE
}

/// Encodes a leaf cell with an inline value.
pub fn leaf_cell(key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(4 + key.len() + value.len());
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(&(value.len() as u16).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(value);
    c
}

/// Encodes a leaf cell whose value lives in an overflow chain.
pub fn overflow_cell(key: &[u8], total_len: u32, first_page: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(4 + key.len() + OVERFLOW_REF_SIZE);
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(&(OVERFLOW_REF_SIZE as u16 | OVERFLOW_FLAG).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(&total_len.to_le_bytes());
    c.extend_from_slice(&first_page.to_le_bytes());
    c
}

/// Encodes an internal cell.
pub fn internal_cell(key: &[u8], child: u64) -> Vec<u8> {
    let mut c = Vec::with_capacity(2 + key.len() + 8);
    c.extend_from_slice(&(key.len() as u16).to_le_bytes());
    c.extend_from_slice(key);
    c.extend_from_slice(&child.to_le_bytes());
    c
}

/// A leaf cell's value: inline bytes, or a reference to an overflow chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafValue<'a> {
    /// The value itself.
    Inline(&'a [u8]),
    /// `total_len` bytes starting at overflow page `first_page`.
    Overflow {
        /// The value's length.
        total_len: u32,
        /// The first overflow page.
        first_page: u64,
    },
}

/// Read access to a node's bytes (`&[u8]` of at least `node_size`).
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    bytes: &'a [u8],
    node_size: usize,
}

impl<'a> NodeRef<'a> {
    /// Views `bytes` as a node of `node_size` bytes. Call [`validate`] first on untrusted bytes.
    pub fn new(bytes: &'a [u8], node_size: usize) -> Self {
        NodeRef { bytes, node_size }
    }

    /// The node's level (0 for leaves).
    pub fn level(&self) -> u8 {
        self.bytes[LEVEL_OFFSET]
    }

    /// True for a leaf.
    pub fn is_leaf(&self) -> bool {
        self.level() == 0
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        get_u16(self.bytes, SLOT_COUNT_OFFSET) as usize
    }

    /// True if the node has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The left sibling, if any.
    pub fn prev(&self) -> Option<u64> {
        Some(get_u64(self.bytes, PREV_OFFSET)).filter(|&p| p != NO_PAGE)
    }

    /// The right sibling, if any.
    pub fn next(&self) -> Option<u64> {
        Some(get_u64(self.bytes, NEXT_OFFSET)).filter(|&p| p != NO_PAGE)
    }

    /// The leftmost child (internal nodes).
    pub fn leftmost(&self) -> u64 {
        get_u64(self.bytes, LEFTMOST_OFFSET)
    }

    fn cell_offset(&self, i: usize) -> usize {
        get_u16(self.bytes, SLOTS_OFFSET + 2 * i) as usize
    }

    fn fence(&self, at: usize) -> Option<&'a [u8]> {
        let off = get_u16(self.bytes, at) as usize;
        if off == 0 {
            return None;
        }
        let len = get_u16(self.bytes, off) as usize;
        Some(&self.bytes[off + 2..off + 2 + len])
    }

    /// The low fence (inclusive), `None` for minus infinity.
    pub fn low_fence(&self) -> Option<&'a [u8]> {
        self.fence(LOW_FENCE_OFFSET)
    }

    /// The high fence (exclusive), `None` for plus infinity.
    pub fn high_fence(&self) -> Option<&'a [u8]> {
        self.fence(HIGH_FENCE_OFFSET)
    }

    /// Entry `i`'s key.
    pub fn key(&self, i: usize) -> &'a [u8] {
        let off = self.cell_offset(i);
        let len = get_u16(self.bytes, off) as usize;
        let start = if self.is_leaf() { off + 4 } else { off + 2 };
        &self.bytes[start..start + len]
    }

    /// Entry `i`'s encoded cell.
    pub fn cell(&self, i: usize) -> &'a [u8] {
        let off = self.cell_offset(i);
        &self.bytes[off..off + cell_len(self.bytes, off, self.is_leaf())]
    }

    /// Leaf entry `i`'s value.
    pub fn value(&self, i: usize) -> LeafValue<'a> {
        debug_assert!(self.is_leaf());
        let off = self.cell_offset(i);
        let key_len = get_u16(self.bytes, off) as usize;
        let raw = get_u16(self.bytes, off + 2);
        let start = off + 4 + key_len;
        if raw & OVERFLOW_FLAG != 0 {
            LeafValue::Overflow {
                total_len: u32::from_le_bytes(self.bytes[start..start + 4].try_into().expect("4")),
                first_page: get_u64(self.bytes, start + 4),
            }
        } else {
            LeafValue::Inline(&self.bytes[start..start + raw as usize])
        }
    }

    /// Internal entry `i`'s child.
    pub fn child(&self, i: usize) -> u64 {
        debug_assert!(!self.is_leaf());
        let off = self.cell_offset(i);
        let key_len = get_u16(self.bytes, off) as usize;
        get_u64(self.bytes, off + 2 + key_len)
    }

    /// Binary search: `Ok(i)` if entry `i` has `key`, else `Err(i)` where it would go.
    pub fn search(&self, key: &[u8]) -> Result<usize, usize> {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(key) {
                Ordering::Less => lo = mid + 1,
                Ordering::Greater => hi = mid,
                Ordering::Equal => return Ok(mid),
            }
        }
        Err(lo)
    }

    /// The child of an internal node that covers `key`, and its index (`None` = leftmost).
    pub fn child_for(&self, key: &[u8]) -> (Option<usize>, u64) {
        match self.search(key) {
            Ok(i) => (Some(i), self.child(i)),
            Err(0) => (None, self.leftmost()),
            Err(i) => (Some(i - 1), self.child(i - 1)),
        }
    }

    /// Bytes free for new cells and slots, counting dead bytes that compaction recovers.
    pub fn free_space(&self) -> usize {
        let top = get_u16(self.bytes, CELL_TOP_OFFSET) as usize;
        let frag = get_u16(self.bytes, FRAG_OFFSET) as usize;
        top - (SLOTS_OFFSET + 2 * self.len()) + frag
    }

    /// Bytes used by entries (cells and slots, fences excluded), for fill statistics.
    pub fn used_space(&self) -> usize {
        (0..self.len()).map(|i| self.cell(i).len() + 2).sum()
    }

    /// The node size.
    pub fn node_size(&self) -> usize {
        self.node_size
    }
}

fn cell_len(bytes: &[u8], off: usize, leaf: bool) -> usize {
    let key_len = get_u16(bytes, off) as usize;
    if leaf {
        let raw = get_u16(bytes, off + 2);
        let val = if raw & OVERFLOW_FLAG != 0 {
            OVERFLOW_REF_SIZE
        } else {
            raw as usize
        };
        4 + key_len + val
    } else {
        2 + key_len + 8
    }
}

/// Checks that `bytes` is a well-formed node: every offset and length in bounds, cells not
/// overlapping each other or the slot array, the free-space accounting exact, keys in order
/// and within the fences. Returns the reason on failure (the caller names the page).
pub fn validate(bytes: &[u8], node_size: usize) -> Result<(), String> {
    if bytes.len() < node_size || node_size < SLOTS_OFFSET + 64 || node_size > u16::MAX as usize {
        return Err(format!(
            "node size {node_size} for a page of {} bytes",
            bytes.len()
        ));
    }
    let leaf = bytes[LEVEL_OFFSET] == 0;
    if bytes[FLAGS_OFFSET] != 0 {
        return Err(format!("node flags {:#x}", bytes[FLAGS_OFFSET]));
    }
    let count = get_u16(bytes, SLOT_COUNT_OFFSET) as usize;
    let slots_end = SLOTS_OFFSET + 2 * count;
    let top = get_u16(bytes, CELL_TOP_OFFSET) as usize;
    let frag = get_u16(bytes, FRAG_OFFSET) as usize;
    if slots_end > top || top > node_size {
        return Err(format!(
            "{count} slots end at {slots_end}, cells start at {top} (node {node_size})"
        ));
    }
    // Every cell (entries and fences) within [top, node_size), no overlaps.
    let mut spans = Vec::with_capacity(count + 2);
    for i in 0..count {
        let off = get_u16(bytes, SLOTS_OFFSET + 2 * i) as usize;
        let header = if leaf { 4 } else { 2 };
        if off < top || off + header > node_size {
            return Err(format!(
                "slot {i} points to {off}, outside the cells [{top}, {node_size})"
            ));
        }
        let len = cell_len(bytes, off, leaf);
        if off + len > node_size {
            return Err(format!(
                "cell {i} at {off} of {len} bytes runs past the node"
            ));
        }
        if leaf {
            let raw = get_u16(bytes, off + 2);
            if raw & OVERFLOW_FLAG != 0 && raw & !OVERFLOW_FLAG != OVERFLOW_REF_SIZE as u16 {
                return Err(format!("cell {i} has a malformed overflow reference"));
            }
        }
        spans.push((off, len));
    }
    for at in [LOW_FENCE_OFFSET, HIGH_FENCE_OFFSET] {
        let off = get_u16(bytes, at) as usize;
        if off == 0 {
            continue;
        }
        if off < top || off + 2 > node_size {
            return Err(format!("fence at {off} outside the cells"));
        }
        let len = 2 + get_u16(bytes, off) as usize;
        if off + len > node_size {
            return Err(format!("fence at {off} runs past the node"));
        }
        spans.push((off, len));
    }
    spans.sort();
    let mut used = 0;
    for w in spans.windows(2) {
        if w[0].0 + w[0].1 > w[1].0 {
            return Err(format!("cells at {} and {} overlap", w[0].0, w[1].0));
        }
    }
    for s in &spans {
        used += s.1;
    }
    if used + frag != node_size - top {
        return Err(format!(
            "free space accounting: cells {used} + dead {frag} != cell area {}",
            node_size - top
        ));
    }
    let node = NodeRef::new(bytes, node_size);
    for i in 1..count {
        if node.key(i - 1) >= node.key(i) {
            return Err(format!("keys {} and {i} out of order", i - 1));
        }
    }
    if count > 0 {
        if let Some(low) = node.low_fence()
            && node.key(0) < low
        {
            return Err("first key below the low fence".into());
        }
        if let Some(high) = node.high_fence()
            && node.key(count - 1) >= high
        {
            return Err("last key at or above the high fence".into());
        }
    }
    Ok(())
}

/// Write access to a node's bytes.
pub struct NodeMut<'a> {
    bytes: &'a mut [u8],
    node_size: usize,
}

impl<'a> NodeMut<'a> {
    /// Views `bytes` as a node of `node_size` bytes.
    pub fn new(bytes: &'a mut [u8], node_size: usize) -> Self {
        NodeMut { bytes, node_size }
    }

    /// A read view.
    pub fn as_ref(&self) -> NodeRef<'_> {
        NodeRef::new(self.bytes, self.node_size)
    }

    /// Formats an empty node (the common page header is left as it is).
    pub fn init(
        &mut self,
        level: u8,
        low: Option<&[u8]>,
        high: Option<&[u8]>,
        prev: u64,
        next: u64,
    ) {
        let size = self.node_size;
        self.bytes[PAGE_HEADER_SIZE..size].fill(0);
        self.bytes[LEVEL_OFFSET] = level;
        put_u16(self.bytes, CELL_TOP_OFFSET, size as u16);
        put_u64(self.bytes, PREV_OFFSET, prev);
        put_u64(self.bytes, NEXT_OFFSET, next);
        put_u64(self.bytes, LEFTMOST_OFFSET, NO_PAGE);
        for (at, fence) in [(LOW_FENCE_OFFSET, low), (HIGH_FENCE_OFFSET, high)] {
            if let Some(key) = fence {
                let mut cell = Vec::with_capacity(2 + key.len());
                cell.extend_from_slice(&(key.len() as u16).to_le_bytes());
                cell.extend_from_slice(key);
                let off = self.alloc(cell.len(), 0).expect("fences fit an empty node");
                self.bytes[off..off + cell.len()].copy_from_slice(&cell);
                put_u16(self.bytes, at, off as u16);
            }
        }
    }

    /// Sets the left sibling.
    pub fn set_prev(&mut self, prev: u64) {
        put_u64(self.bytes, PREV_OFFSET, prev);
    }

    /// Sets the right sibling.
    pub fn set_next(&mut self, next: u64) {
        put_u64(self.bytes, NEXT_OFFSET, next);
    }

    /// Sets the leftmost child.
    pub fn set_leftmost(&mut self, child: u64) {
        put_u64(self.bytes, LEFTMOST_OFFSET, child);
    }

    /// Takes `len` bytes from the free gap, compacting first if needed, leaving room for
    /// `new_slots` more slots; `None` if they do not fit even then. Does not add the slots.
    fn alloc(&mut self, len: usize, new_slots: usize) -> Option<usize> {
        let count = get_u16(self.bytes, SLOT_COUNT_OFFSET) as usize;
        let slots_end = SLOTS_OFFSET + 2 * (count + new_slots);
        let mut top = get_u16(self.bytes, CELL_TOP_OFFSET) as usize;
        if top < slots_end + len {
            self.compact();
            top = get_u16(self.bytes, CELL_TOP_OFFSET) as usize;
            if top < slots_end + len {
                return None;
            }
        }
        top -= len;
        put_u16(self.bytes, CELL_TOP_OFFSET, top as u16);
        Some(top)
    }

    /// True if a cell of `len` bytes (plus its slot) fits, counting dead space.
    pub fn fits(&self, len: usize) -> bool {
        self.as_ref().free_space() >= len + 2
    }

    /// Inserts `cell` as entry `i`, shifting later slots. Returns false (unchanged) if it does
    /// not fit.
    pub fn insert(&mut self, i: usize, cell: &[u8]) -> bool {
        let count = get_u16(self.bytes, SLOT_COUNT_OFFSET) as usize;
        assert!(i <= count, "insert at {i} of {count}");
        if !self.fits(cell.len()) {
            return false;
        }
        // Room for the slot too: allocate the cell with the slot already counted.
        let Some(off) = self.alloc(cell.len(), 1) else {
            return false;
        };
        self.bytes[off..off + cell.len()].copy_from_slice(cell);
        let at = SLOTS_OFFSET + 2 * i;
        let end = SLOTS_OFFSET + 2 * count;
        self.bytes.copy_within(at..end, at + 2);
        put_u16(self.bytes, at, off as u16);
        put_u16(self.bytes, SLOT_COUNT_OFFSET, (count + 1) as u16);
        true
    }

    /// Removes entry `i`; its bytes become dead space.
    pub fn remove(&mut self, i: usize) {
        let count = get_u16(self.bytes, SLOT_COUNT_OFFSET) as usize;
        assert!(i < count, "remove {i} of {count}");
        let len = self.as_ref().cell(i).len();
        let at = SLOTS_OFFSET + 2 * i;
        let end = SLOTS_OFFSET + 2 * count;
        self.bytes.copy_within(at + 2..end, at);
        put_u16(self.bytes, end - 2, 0);
        put_u16(self.bytes, SLOT_COUNT_OFFSET, (count - 1) as u16);
        let frag = get_u16(self.bytes, FRAG_OFFSET) as usize + len;
        put_u16(self.bytes, FRAG_OFFSET, frag as u16);
    }

    /// Replaces entry `i`'s cell (same key). Returns false (unchanged) if it does not fit.
    pub fn replace(&mut self, i: usize, cell: &[u8]) -> bool {
        let old = self.as_ref().cell(i).to_vec();
        let free = self.as_ref().free_space();
        if free + old.len() < cell.len() {
            return false;
        }
        self.remove(i);
        let inserted = self.insert(i, cell);
        assert!(inserted, "a replacement that fit must insert");
        true
    }

    /// Rewrites the cells contiguously at the end of the node, dropping dead space. The order of
    /// cells in the area follows slot order, so the result depends only on the node's contents.
    pub fn compact(&mut self) {
        let node = self.as_ref();
        let count = node.len();
        let cells: Vec<Vec<u8>> = (0..count).map(|i| node.cell(i).to_vec()).collect();
        let low = node.low_fence().map(<[u8]>::to_vec);
        let high = node.high_fence().map(<[u8]>::to_vec);
        let size = self.node_size;
        let mut top = size;
        let mut place = |bytes: &mut [u8], data: &[u8]| {
            top -= data.len();
            bytes[top..top + data.len()].copy_from_slice(data);
            top
        };
        for (at, fence) in [(LOW_FENCE_OFFSET, &low), (HIGH_FENCE_OFFSET, &high)] {
            if let Some(key) = fence {
                let mut cell = (key.len() as u16).to_le_bytes().to_vec();
                cell.extend_from_slice(key);
                let off = place(self.bytes, &cell);
                put_u16(self.bytes, at, off as u16);
            }
        }
        for (i, cell) in cells.iter().enumerate() {
            let off = place(self.bytes, cell);
            put_u16(self.bytes, SLOTS_OFFSET + 2 * i, off as u16);
        }
        let slots_end = SLOTS_OFFSET + 2 * count;
        self.bytes[slots_end..top].fill(0);
        put_u16(self.bytes, CELL_TOP_OFFSET, top as u16);
        put_u16(self.bytes, FRAG_OFFSET, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty(size: usize) -> Vec<u8> {
        let mut page = vec![0u8; size];
        NodeMut::new(&mut page, size).init(0, None, None, NO_PAGE, NO_PAGE);
        page
    }

    /// Inserted cells come back in slot order, and the node validates after every change.
    #[test]
    fn insert_remove_replace_keep_the_node_valid() {
        let size = 512;
        let mut page = empty(size);
        let mut node = NodeMut::new(&mut page, size);
        for k in [b"m", b"c", b"x", b"a"] {
            let i = node.as_ref().search(k).unwrap_err();
            assert!(node.insert(i, &leaf_cell(k, b"value")));
            validate(&page, size).unwrap();
            node = NodeMut::new(&mut page, size);
        }
        let keys: Vec<&[u8]> = (0..4).map(|i| NodeRef::new(&page, size).key(i)).collect();
        assert_eq!(keys, [b"a", b"c", b"m", b"x"]);
        let mut node = NodeMut::new(&mut page, size);
        node.remove(1);
        assert!(node.replace(0, &leaf_cell(b"a", b"a much longer value than before")));
        validate(&page, size).unwrap();
        let node = NodeRef::new(&page, size);
        assert_eq!(
            node.value(0),
            LeafValue::Inline(b"a much longer value than before")
        );
        assert_eq!(node.search(b"m"), Ok(1));
    }

    /// A node fills up, refuses the next cell, and after removals compacts to take it.
    #[test]
    fn full_node_refuses_then_compacts() {
        let size = 512;
        let mut page = empty(size);
        let mut n = 0u32;
        loop {
            let key = n.to_be_bytes();
            let mut node = NodeMut::new(&mut page, size);
            if !node.insert(n as usize, &leaf_cell(&key, &[7; 30])) {
                break;
            }
            n += 1;
        }
        assert!(n >= 8, "{n} entries");
        let mut node = NodeMut::new(&mut page, size);
        node.remove(0);
        node.remove(0);
        assert!(node.insert(0, &leaf_cell(&[0, 0, 0, 0], &[9; 30])));
        validate(&page, size).unwrap();
    }

    /// Bytes that are not a node are rejected with a reason, not a panic.
    #[test]
    fn validate_rejects_garbage() {
        let size = 512;
        let mut page = empty(size);
        put_u16(&mut page, SLOT_COUNT_OFFSET, 3);
        assert!(validate(&page, size).is_err());
        let mut page = empty(size);
        put_u16(&mut page, CELL_TOP_OFFSET, 4000);
        assert!(validate(&page, size).is_err());
    }

    /// Fences are kept through compaction and bound the keys.
    #[test]
    fn fences_survive_compaction() {
        let size = 512;
        let mut page = vec![0u8; size];
        let mut node = NodeMut::new(&mut page, size);
        node.init(0, Some(b"b"), Some(b"y"), 3, 4);
        assert!(node.insert(0, &leaf_cell(b"c", b"1")));
        node.compact();
        let r = NodeRef::new(&page, size);
        assert_eq!(r.low_fence(), Some(&b"b"[..]));
        assert_eq!(r.high_fence(), Some(&b"y"[..]));
        assert_eq!(r.prev(), Some(3));
        validate(&page, size).unwrap();
    }
}
