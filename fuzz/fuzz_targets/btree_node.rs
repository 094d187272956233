//! Arbitrary bytes as a B+tree node: `node::validate` must return `Ok` or a reason, never
//! panic; on a node it accepts, every `NodeRef` accessor must not panic and must agree with the
//! others (keys found where they are, free space = node less header, entries and fences), and
//! `NodeMut` insert, remove, replace and compact on a copy must keep the node valid and do what
//! they say.
//!
//! Input layout: byte 0 picks the node size (bits 0-1: 512, 4096, 8192) and the mode (bit 2).
//! - Raw mode: bytes 1..3 are a length `n`; the next `n` bytes, padded with zeros or cut to
//!   the node size, are the node; the rest is an op script (below).
//! - Build mode (so that the fuzzer reaches valid nodes with many entries without forging the
//!   free-space accounting): byte 1 is the level, then a low fence and a high fence (each a
//!   length byte, 0xFF for none, and the key), then a build script run on a freshly formatted
//!   node up to a 0xFF op byte, then a count of byte flips (3 bytes each: offset u16, xor) to
//!   damage the node, then the op script.
//!
//! An op script is a list of ops: insert (a key not present, within the fences, with an
//! inline value, an overflow reference, or a child), remove, replace (same key, a new value or
//! child), compact. A node the script changes must validate after every op.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storelab_btree::node::{
    self, FRAG_OFFSET, LeafValue, NO_PAGE, NodeMut, NodeRef, SLOTS_OFFSET, get_u16, internal_cell,
    leaf_cell, overflow_cell,
};

/// Reads the input a byte at a time; zeros past its end.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = (self.at + n).min(self.data.len());
        self.at += n;
        &self.data[start..end]
    }
}

/// Everything a node holds, for comparing before and after an operation that must not change
/// its contents (compaction, a refused insert).
#[derive(Debug, PartialEq, Eq)]
struct Contents {
    level: u8,
    cells: Vec<Vec<u8>>,
    low: Option<Vec<u8>>,
    high: Option<Vec<u8>>,
    prev: Option<u64>,
    next: Option<u64>,
    leftmost: u64,
}

fn contents(page: &[u8], size: usize) -> Contents {
    let n = NodeRef::new(page, size);
    Contents {
        level: n.level(),
        cells: (0..n.len()).map(|i| n.cell(i).to_vec()).collect(),
        low: n.low_fence().map(<[u8]>::to_vec),
        high: n.high_fence().map(<[u8]>::to_vec),
        prev: n.prev(),
        next: n.next(),
        leftmost: n.leftmost(),
    }
}

fn fence_bytes(f: Option<&[u8]>) -> usize {
    f.map_or(0, |k| k.len() + 2)
}

/// Calls every accessor of a valid node and checks that they agree.
fn check_accessors(page: &[u8], size: usize) {
    let n = NodeRef::new(page, size);
    let len = n.len();
    assert_eq!(n.is_empty(), len == 0);
    assert_eq!(n.node_size(), size);
    let _ = (n.prev(), n.next(), n.leftmost(), n.level());
    let (low, high) = (n.low_fence(), n.high_fence());
    let leaf = n.is_leaf();
    for i in 0..len {
        let key = n.key(i);
        let cell = n.cell(i);
        assert!(cell.len() >= key.len());
        assert_eq!(n.search(key), Ok(i), "entry {i} is found by its key");
        if leaf {
            match n.value(i) {
                LeafValue::Inline(v) => assert_eq!(cell.len(), 4 + key.len() + v.len()),
                LeafValue::Overflow { .. } => {
                    assert_eq!(cell.len(), 4 + key.len() + node::OVERFLOW_REF_SIZE)
                }
            }
        } else {
            let child = n.child(i);
            assert_eq!(cell, &internal_cell(key, child)[..]);
            assert_eq!(n.child_for(key), (Some(i), child));
        }
        if let Some(low) = low {
            assert!(key >= low);
        }
        if let Some(high) = high {
            assert!(key < high);
        }
    }
    // Searches for keys between and around the entries land where they belong.
    let probes: Vec<Vec<u8>> = (0..len)
        .flat_map(|i| {
            let k = n.key(i);
            let mut after = k.to_vec();
            after.push(0);
            [after, k[..k.len().saturating_sub(1)].to_vec()]
        })
        .chain([Vec::new(), vec![0xFF; 40]])
        .collect();
    for p in &probes {
        match n.search(p) {
            Ok(i) => assert_eq!(n.key(i), &p[..]),
            Err(i) => {
                assert!(i <= len);
                assert!(i == 0 || n.key(i - 1) < &p[..]);
                assert!(i == len || n.key(i) > &p[..]);
            }
        }
        if !leaf {
            let (idx, child) = n.child_for(p);
            match idx {
                None => assert_eq!(child, n.leftmost()),
                Some(i) => assert_eq!(child, n.child(i)),
            }
        }
    }
    // The free space is the node less its header, entries (cells and slots) and fences.
    assert_eq!(
        n.free_space(),
        size - SLOTS_OFFSET - n.used_space() - fence_bytes(low) - fence_bytes(high),
        "free space accounting"
    );
}

/// A new cell for `key` of the node's kind, shaped by the input.
fn new_cell(b: &mut Bytes<'_>, leaf: bool, key: &[u8], size: usize) -> Vec<u8> {
    let shape = b.u8();
    if !leaf {
        let child = if shape & 1 == 0 {
            u64::from(b.u16())
        } else {
            NO_PAGE - 1
        };
        return internal_cell(key, child);
    }
    if shape & 1 == 1 {
        let total = u32::from(b.u16()) << (shape >> 4);
        return overflow_cell(key, total, u64::from(b.u8()));
    }
    // Mostly small values; now and then one that fills a good part of the node.
    let len = if shape & 2 == 0 {
        usize::from(shape >> 2)
    } else {
        usize::from(b.u16()) % size
    };
    let fill = b.u8();
    leaf_cell(key, &vec![fill; len])
}

/// Runs an op script on a valid node, checking each op's effect; stops at the end of the
/// script or at a 0xFF op byte.
fn run_ops(page: &mut [u8], size: usize, b: &mut Bytes<'_>) {
    let mut steps = 0;
    while !b.done() && steps < 512 {
        steps += 1;
        let op = b.u8();
        if op == 0xFF {
            return;
        }
        let before = contents(page, size);
        let len = before.cells.len();
        let leaf = before.level == 0;
        match op % 4 {
            0 => {
                let key_len = usize::from(b.u8() % 48);
                let key = b.take(key_len).to_vec();
                let n = NodeRef::new(page, size);
                let Err(i) = n.search(&key) else { continue };
                if n.low_fence().is_some_and(|l| key.as_slice() < l)
                    || n.high_fence().is_some_and(|h| key.as_slice() >= h)
                {
                    continue;
                }
                let cell = new_cell(b, leaf, &key, size);
                let free = n.free_space();
                let inserted = NodeMut::new(page, size).insert(i, &cell);
                node::validate(page, size)
                    .unwrap_or_else(|e| panic!("insert of {} bytes at {i}: {e}", cell.len()));
                let after = contents(page, size);
                assert_eq!(
                    inserted,
                    free >= cell.len() + 2,
                    "insert refused a fitting cell"
                );
                if inserted {
                    let mut want = before.cells;
                    want.insert(i, cell.clone());
                    assert_eq!(after.cells, want);
                    assert_eq!(NodeRef::new(page, size).search(&key), Ok(i));
                    assert_eq!(NodeRef::new(page, size).free_space(), free - cell.len() - 2);
                } else {
                    assert_eq!(after, before, "a refused insert changed the node");
                }
            }
            1 if len > 0 => {
                let i = usize::from(b.u16()) % len;
                let free = NodeRef::new(page, size).free_space();
                NodeMut::new(page, size).remove(i);
                node::validate(page, size).unwrap_or_else(|e| panic!("remove {i}: {e}"));
                let mut want = before.cells;
                let gone = want.remove(i);
                assert_eq!(contents(page, size).cells, want);
                assert_eq!(NodeRef::new(page, size).free_space(), free + gone.len() + 2);
            }
            2 if len > 0 => {
                let i = usize::from(b.u16()) % len;
                let key = NodeRef::new(page, size).key(i).to_vec();
                let cell = new_cell(b, leaf, &key, size);
                let free = NodeRef::new(page, size).free_space();
                let replaced = NodeMut::new(page, size).replace(i, &cell);
                node::validate(page, size)
                    .unwrap_or_else(|e| panic!("replace {i} with {} bytes: {e}", cell.len()));
                let after = contents(page, size);
                assert_eq!(replaced, free + before.cells[i].len() >= cell.len());
                if replaced {
                    let mut want = before.cells;
                    want[i] = cell;
                    assert_eq!(after.cells, want);
                } else {
                    assert_eq!(after, before, "a refused replace changed the node");
                }
            }
            3 => {
                let free = NodeRef::new(page, size).free_space();
                NodeMut::new(page, size).compact();
                node::validate(page, size).unwrap_or_else(|e| panic!("compact: {e}"));
                assert_eq!(
                    contents(page, size),
                    before,
                    "compaction changed the contents"
                );
                assert_eq!(NodeRef::new(page, size).free_space(), free);
                assert_eq!(get_u16(page, FRAG_OFFSET), 0);
            }
            _ => {}
        }
        check_accessors(page, size);
    }
}

fn fence(b: &mut Bytes<'_>) -> Option<Vec<u8>> {
    match b.u8() {
        0xFF => None,
        n => Some(b.take(usize::from(n % 48)).to_vec()),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes { data, at: 0 };
    let head = b.u8();
    let size = [512, 4096, 8192, 512][usize::from(head & 3)];
    let page = if head & 4 == 0 {
        let n = usize::from(b.u16());
        let mut page = b.take(n).to_vec();
        page.resize(size, 0);
        page
    } else {
        let level = b.u8() % 3;
        let (low, high) = (fence(&mut b), fence(&mut b));
        if let (Some(l), Some(h)) = (&low, &high)
            && l >= h
        {
            return;
        }
        let mut page = vec![0u8; size];
        NodeMut::new(&mut page, size).init(level, low.as_deref(), high.as_deref(), 3, NO_PAGE);
        node::validate(&page, size).expect("a formatted node is valid");
        run_ops(&mut page, size, &mut b);
        for _ in 0..b.u8() % 16 {
            let at = usize::from(b.u16()) % size;
            page[at] ^= b.u8();
        }
        page
    };
    if node::validate(&page, size).is_err() {
        return;
    }
    check_accessors(&page, size);
    let mut copy = page.clone();
    run_ops(&mut copy, size, &mut b);
});
