//! Arbitrary bytes as a heap page: `heap_page::validate` must return `Ok` or a typed error,
//! never panic; on a page it accepts, every `HeapPageRef` accessor must not panic and must
//! agree with the others, and an op script (inserts, HOT and plain updates, deletes, pruning,
//! VACUUM's DEAD -> UNUSED, compaction) run on a copy must keep the page valid after every op.
//!
//! Input layout: byte 0 picks the page size (bits 0-1: 512, 4096, 8192, 16384) and the mode
//! (bit 2).
//! - Raw mode: bytes 1..3 are a length `n`; the next `n` bytes, padded with zeros or cut to
//!   the page size, are the page, with the page type and heap version forced to the legal
//!   values so that validation gets past its first two checks; the rest is an op script.
//! - Build mode (so that the fuzzer reaches valid pages with HOT chains, redirects and dead
//!   pointers without forging the accounting): an op script run on a freshly formatted page
//!   up to a 0xFF op byte, then a count of byte flips (3 bytes each: offset u16, xor) to
//!   damage the page, then the op script.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storelab_heap::heap_page::{
    self, HEAP_PAGE, HEAP_PAGE_VERSION, HEAP_VERSION_OFFSET, HeapPageMut, HeapPageRef,
    LINE_POINTER_SIZE, LINE_POINTERS_OFFSET, LinePointer, SlotId, TUPLE_HEADER_SIZE, Tid,
    TupleFlags, row_size_max, slot_count_max, tuple_size_max,
};
use storelab_pager::PageId;
use storelab_pager::page::{PAGE_TYPE_OFFSET, init_page};

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

fn validate(page: &[u8], what: &str) {
    if let Err(e) = heap_page::validate(page, page.len()) {
        panic!("{what}: {e}");
    }
}

/// Calls every accessor of a valid page and checks that they agree.
fn check_accessors(page: &[u8]) {
    let size = page.len();
    let r = HeapPageRef::new(page, size);
    let count = r.slot_count();
    assert!(count <= slot_count_max(size));
    assert_eq!(r.lower(), LINE_POINTERS_OFFSET + LINE_POINTER_SIZE * count);
    let mut tuple_bytes = 0;
    let (mut dead, mut unused) = (0, 0);
    for s in 0..count {
        let slot = SlotId(s as u16);
        match r.line_pointer(slot).expect("slot in range") {
            LinePointer::Normal { len, .. } => {
                let t = r.tuple(slot).expect("a NORMAL slot has a tuple");
                assert_eq!(t.size(), usize::from(len));
                tuple_bytes += t.size();
                if !t.flags.contains(TupleFlags::UPDATED) {
                    assert_eq!(t.ctid, Tid::new(r.page_id(), slot));
                }
            }
            LinePointer::Dead => dead += 1,
            LinePointer::Unused => unused += 1,
            LinePointer::Redirect(to) => assert!(to.index() < count),
        }
        let chain = r.hot_chain(slot);
        assert!(chain.len() <= count);
        if let Some(live) = r.hot_search(slot) {
            assert!(chain.contains(&live));
            assert!(r.tuple(live).is_some_and(|t| t.is_live()));
        }
    }
    assert_eq!(r.line_pointer(SlotId(count as u16)), None);
    assert_eq!(r.tuple(SlotId(count as u16)), None);
    assert_eq!(r.dead_count(), dead);
    assert_eq!(r.has_free_lines(), unused > 0);
    assert_eq!(
        r.tuples().map(|(_, t)| t.size()).sum::<usize>(),
        tuple_bytes
    );
    assert_eq!(tuple_bytes + r.garbage_size(), size - r.upper());
    assert!(r.free_space() <= tuple_size_max(size));
}

/// The live slots of the page, in slot order.
fn live_slots(page: &[u8]) -> Vec<SlotId> {
    HeapPageRef::new(page, page.len())
        .tuples()
        .filter(|(_, t)| t.is_live())
        .map(|(s, _)| s)
        .collect()
}

/// Runs an op script on a valid page, checking each op's effect; stops at the end of the
/// script or at a 0xFF op byte.
fn run_ops(page: &mut [u8], b: &mut Bytes<'_>) {
    let size = page.len();
    let mut steps = 0;
    while !b.done() && steps < 512 {
        steps += 1;
        let op = b.u8();
        if op == 0xFF {
            return;
        }
        let before = page.to_vec();
        let page_id = HeapPageRef::new(page, size).page_id();
        let live = live_slots(page);
        let pick = |b: &mut Bytes<'_>| {
            let i = usize::from(b.u16());
            (!live.is_empty()).then(|| live[i % live.len()])
        };
        match op % 8 {
            // Insert, plain or as the new version of a HOT update of a live tuple.
            0 | 1 => {
                let len = usize::from(b.u16()) % (row_size_max(size) + 1);
                let len = if b.u8() & 1 == 0 { len % 64 } else { len };
                let fill = b.u8();
                let row = vec![fill; len];
                let old = if op % 8 == 1 { pick(b) } else { None };
                let flags = if old.is_some() {
                    TupleFlags::HEAP_ONLY
                } else {
                    TupleFlags::NONE
                };
                let free = HeapPageRef::new(page, size).free_space();
                let mut p = HeapPageMut::new(page, size);
                match p.insert(&row, flags) {
                    Some(slot) => {
                        assert!(TUPLE_HEADER_SIZE + len <= free, "insert beyond free space");
                        if let Some(old) = old {
                            p.set_updated(old, Tid::new(page_id, slot), true);
                        }
                        let r = HeapPageRef::new(page, size);
                        assert_eq!(r.tuple(slot).expect("inserted").row, &row[..]);
                        if old.is_none() {
                            assert_eq!(r.hot_search(slot), Some(slot));
                        }
                    }
                    None => {
                        assert!(TUPLE_HEADER_SIZE + len > free, "refused a fitting tuple");
                        assert_eq!(page, &before[..], "a refused insert changed the page");
                    }
                }
                validate(page, "insert");
            }
            // Delete, or update to another page.
            2 => {
                let Some(slot) = pick(b) else { continue };
                let mut p = HeapPageMut::new(page, size);
                if b.u8() & 1 == 0 {
                    p.set_deleted(slot);
                } else {
                    p.set_updated(slot, Tid::new(PageId(page_id.0 ^ 1), slot), false);
                }
                validate(page, "delete");
            }
            3 => {
                let Some(slot) = pick(b) else { continue };
                let len = HeapPageRef::new(page, size)
                    .tuple(slot)
                    .expect("live")
                    .row
                    .len();
                let fill = b.u8();
                assert!(HeapPageMut::new(page, size).replace_in_place(slot, &vec![fill; len]));
                validate(page, "replace");
            }
            4 => {
                let free = HeapPageRef::new(page, size).free_space();
                let result = HeapPageMut::new(page, size).prune();
                validate(page, "prune");
                let r = HeapPageRef::new(page, size);
                assert!(r.free_space() >= free, "pruning lost free space");
                assert_eq!(result.page_changed, page != &before[..]);
                assert_eq!(live_slots(page), live, "pruning changed the live tuples");
                assert!(
                    r.tuples().all(|(_, t)| t.is_live()),
                    "a dead tuple survived"
                );
                let mut again = page.to_vec();
                let second = HeapPageMut::new(&mut again, size).prune();
                assert!(!second.page_changed, "pruning is not idempotent");
            }
            // VACUUM's second pass: one DEAD pointer becomes UNUSED.
            5 => {
                let r = HeapPageRef::new(page, size);
                let dead: Vec<SlotId> = (0..r.slot_count())
                    .map(|s| SlotId(s as u16))
                    .filter(|&s| r.line_pointer(s) == Some(LinePointer::Dead))
                    .collect();
                if dead.is_empty() {
                    continue;
                }
                let slot = dead[usize::from(b.u16()) % dead.len()];
                HeapPageMut::new(page, size).set_unused(slot);
                validate(page, "set_unused");
            }
            6 => {
                let free = HeapPageRef::new(page, size).free_space();
                HeapPageMut::new(page, size).compact();
                validate(page, "compact");
                assert_eq!(HeapPageRef::new(page, size).free_space(), free);
                assert_eq!(live_slots(page), live);
            }
            _ => {
                // Reads only: a stale TID from an index.
                let slot = SlotId(b.u16() % 2048);
                let r = HeapPageRef::new(page, size);
                let _ = (r.line_pointer(slot), r.tuple(slot), r.hot_search(slot));
            }
        }
        check_accessors(page);
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes { data, at: 0 };
    let head = b.u8();
    let size = [512, 4096, 8192, 16384][usize::from(head & 3)];
    let page = if head & 4 == 0 {
        let n = usize::from(b.u16());
        let mut page = b.take(n).to_vec();
        page.resize(size, 0);
        page[PAGE_TYPE_OFFSET] = HEAP_PAGE.0;
        page[HEAP_VERSION_OFFSET] = HEAP_PAGE_VERSION;
        page
    } else {
        let mut page = vec![0u8; size];
        init_page(&mut page, PageId(3), HEAP_PAGE);
        HeapPageMut::new(&mut page, size).init();
        validate(&page, "a formatted page");
        run_ops(&mut page, &mut b);
        for _ in 0..b.u8() % 16 {
            let at = usize::from(b.u16()) % size;
            page[at] ^= b.u8();
        }
        page
    };
    if heap_page::validate(&page, size).is_err() {
        return;
    }
    check_accessors(&page);
    let mut copy = page.clone();
    HeapPageMut::new(&mut copy, size).prune();
    validate(&copy, "prune of an accepted page");
    check_accessors(&copy);
    let mut copy = page.clone();
    run_ops(&mut copy, &mut b);
});
