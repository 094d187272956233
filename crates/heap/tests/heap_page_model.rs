//! Model-based tests of one heap page: random sequences of inserts, HOT updates, updates that
//! leave the page or stay on it without HOT, deletes, in-place replacements, pruning, VACUUM's
//! second pass (DEAD pointers made UNUSED) and compaction, on 512-byte to 4 KiB pages, against
//! a model of the rows the page holds. `validate()` runs after every operation, and every row
//! of the model must be found from its root (the slot its index entries would name) with its
//! current bytes.
//!
//! A second property feeds `validate` random bytes and valid pages with random byte flips: it
//! must never panic, and whatever it accepts must survive every accessor, pruning and an
//! insert, and validate again.
//!
//! 256 cases per property; `STORELAB_LONG=1` runs 4000. Failing cases are minimised by
//! proptest and kept in `proptest-regressions/heap_page_model.txt`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use storelab_heap::heap_page::{
    self, HEAP_PAGE, HeapPageMut, HeapPageRef, LINE_POINTERS_OFFSET, LinePointer, SlotId,
    TUPLE_HEADER_SIZE, Tid, TupleFlags, row_size_max, tuple_size_max,
};
use storelab_pager::PageId;
use storelab_pager::page::init_page;

const PAGE_ID: PageId = PageId(42);

#[derive(Clone, Debug)]
enum Op {
    Insert {
        len: usize,
        seed: u8,
    },
    UpdateHot {
        pick: usize,
        len: usize,
        seed: u8,
    },
    /// A non-HOT update whose new version lands on this page (an indexed column changed).
    UpdateCold {
        pick: usize,
        len: usize,
        seed: u8,
    },
    /// An update whose new version went to another page.
    UpdateAway {
        pick: usize,
    },
    Delete {
        pick: usize,
    },
    ReplaceInPlace {
        pick: usize,
        seed: u8,
    },
    Prune,
    Vacuum,
    Compact,
}

fn op() -> impl Strategy<Value = Op> {
    let len = prop_oneof![4 => 0usize..40, 1 => 40usize..200];
    prop_oneof![
        4 => (len.clone(), any::<u8>()).prop_map(|(len, seed)| Op::Insert { len, seed }),
        5 => (any::<usize>(), len.clone(), any::<u8>())
            .prop_map(|(pick, len, seed)| Op::UpdateHot { pick, len, seed }),
        1 => (any::<usize>(), len, any::<u8>())
            .prop_map(|(pick, len, seed)| Op::UpdateCold { pick, len, seed }),
        1 => any::<usize>().prop_map(|pick| Op::UpdateAway { pick }),
        2 => any::<usize>().prop_map(|pick| Op::Delete { pick }),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(pick, seed)| Op::ReplaceInPlace { pick, seed }),
        2 => Just(Op::Prune),
        1 => Just(Op::Vacuum),
        1 => Just(Op::Compact),
    ]
}

/// A row of `len` bytes derived from `seed` (so cases print compactly).
fn row_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| seed.wrapping_add((i as u8).wrapping_mul(31)))
        .collect()
}

/// What the page should hold: each logical row's root slot (where its index entries point)
/// and current bytes, and the roots whose rows are gone (index entries VACUUM must remove).
#[derive(Default, Debug)]
struct Model {
    rows: BTreeMap<u64, (SlotId, Vec<u8>)>,
    dead_roots: BTreeSet<SlotId>,
    next_row: u64,
}

impl Model {
    fn pick(&self, pick: usize) -> Option<u64> {
        if self.rows.is_empty() {
            return None;
        }
        self.rows.keys().nth(pick % self.rows.len()).copied()
    }
}

fn empty(size: usize) -> Vec<u8> {
    let mut page = vec![0u8; size];
    init_page(&mut page, PAGE_ID, HEAP_PAGE);
    HeapPageMut::new(&mut page, size).init();
    page
}

fn tid(slot: SlotId) -> Tid {
    Tid::new(PAGE_ID, slot)
}

/// The live version of a row, found from its root as a reader coming from an index would.
fn live_slot(page: &[u8], root: SlotId) -> SlotId {
    HeapPageRef::new(page, page.len())
        .hot_search(root)
        .unwrap_or_else(|| panic!("no live version from root {root}"))
}

/// Applies one op to the page and the model.
fn apply(page: &mut [u8], model: &mut Model, op: &Op) {
    let size = page.len();
    match *op {
        Op::Insert { len, seed } => {
            let row = row_bytes(len, seed);
            let fits = HeapPageRef::new(page, size).fits(len);
            let slot = HeapPageMut::new(page, size).insert(&row, TupleFlags::NONE);
            assert_eq!(slot.is_some(), fits, "insert of {len} bytes vs fits()");
            if let Some(slot) = slot {
                model.rows.insert(model.next_row, (slot, row));
                model.next_row += 1;
            }
        }
        Op::UpdateHot { pick, len, seed } => {
            let Some(id) = model.pick(pick) else { return };
            let root = model.rows[&id].0;
            let old = live_slot(page, root);
            let row = row_bytes(len, seed);
            let mut p = HeapPageMut::new(page, size);
            if let Some(new) = p.insert(&row, TupleFlags::HEAP_ONLY) {
                p.set_updated(old, tid(new), true);
                model.rows.insert(id, (root, row));
            }
        }
        Op::UpdateCold { pick, len, seed } => {
            let Some(id) = model.pick(pick) else { return };
            let root = model.rows[&id].0;
            let old = live_slot(page, root);
            let row = row_bytes(len, seed);
            let mut p = HeapPageMut::new(page, size);
            if let Some(new) = p.insert(&row, TupleFlags::NONE) {
                p.set_updated(old, tid(new), false);
                model.rows.insert(id, (new, row));
                model.dead_roots.insert(root);
            }
        }
        Op::UpdateAway { pick } => {
            let Some(id) = model.pick(pick) else { return };
            let root = model.rows[&id].0;
            let old = live_slot(page, root);
            let elsewhere = Tid::new(PageId(PAGE_ID.0 + 1), SlotId(pick as u16));
            HeapPageMut::new(page, size).set_updated(old, elsewhere, false);
            model.rows.remove(&id);
            model.dead_roots.insert(root);
        }
        Op::Delete { pick } => {
            let Some(id) = model.pick(pick) else { return };
            let root = model.rows[&id].0;
            let old = live_slot(page, root);
            HeapPageMut::new(page, size).set_deleted(old);
            model.rows.remove(&id);
            model.dead_roots.insert(root);
        }
        Op::ReplaceInPlace { pick, seed } => {
            let Some(id) = model.pick(pick) else { return };
            let (root, old_row) = model.rows[&id].clone();
            let slot = live_slot(page, root);
            let row = row_bytes(old_row.len(), seed);
            let mut p = HeapPageMut::new(page, size);
            assert!(p.replace_in_place(slot, &row));
            assert!(!p.replace_in_place(slot, &[&row[..], b"x"].concat()));
            model.rows.insert(id, (root, row));
        }
        Op::Prune => {
            let before = HeapPageRef::new(page, size).free_space();
            let result = HeapPageMut::new(page, size).prune();
            let r = HeapPageRef::new(page, size);
            assert!(
                r.free_space() >= before,
                "pruning lost free space: {result:?}"
            );
            assert_eq!(r.garbage_size(), 0, "pruning compacts");
            for (slot, t) in r.tuples() {
                assert!(t.is_live(), "dead tuple at {slot} survived pruning");
            }
            for &(root, _) in model.rows.values() {
                let live = r.hot_search(root).expect("live version");
                match r.line_pointer(root) {
                    Some(LinePointer::Redirect(to)) => assert_eq!(to, live),
                    Some(LinePointer::Normal { .. }) => assert_eq!(root, live),
                    lp => panic!("root {root} is {lp:?} after pruning"),
                }
            }
            for &root in &model.dead_roots {
                assert_eq!(r.line_pointer(root), Some(LinePointer::Dead));
            }
            let again = HeapPageMut::new(page, size).prune();
            assert!(
                !again.page_changed,
                "a second prune changed the page: {again:?}"
            );
        }
        Op::Vacuum => {
            let dead: Vec<SlotId> = model
                .dead_roots
                .iter()
                .copied()
                .filter(|&s| {
                    HeapPageRef::new(page, size).line_pointer(s) == Some(LinePointer::Dead)
                })
                .collect();
            for slot in dead {
                HeapPageMut::new(page, size).set_unused(slot);
                model.dead_roots.remove(&slot);
            }
        }
        Op::Compact => {
            let before = HeapPageRef::new(page, size).free_space();
            HeapPageMut::new(page, size).compact();
            let r = HeapPageRef::new(page, size);
            assert_eq!(r.free_space(), before);
            assert_eq!(r.garbage_size(), 0);
        }
    }
}

/// The page agrees with the model: every row from its root, nothing else live, dead roots
/// lead to nothing live.
fn check(page: &[u8], model: &Model) {
    let size = page.len();
    if let Err(e) = heap_page::validate(page, size) {
        panic!("invalid page: {e}");
    }
    let r = HeapPageRef::new(page, size);
    let mut live_slots = BTreeSet::new();
    for (id, (root, row)) in &model.rows {
        let slot = live_slot(page, *root);
        let t = r.tuple(slot).expect("a tuple");
        assert_eq!(t.row, &row[..], "row {id} from root {root} at {slot}");
        assert_eq!(t.ctid, tid(slot));
        assert!(live_slots.insert(slot), "two rows share slot {slot}");
    }
    let live_count = r.tuples().filter(|(_, t)| t.is_live()).count();
    assert_eq!(
        live_count,
        model.rows.len(),
        "live tuples on the page vs the model"
    );
    for &root in &model.dead_roots {
        assert_eq!(
            r.hot_search(root),
            None,
            "dead root {root} leads to a live row"
        );
    }
    let used: usize = r.tuples().map(|(_, t)| t.size()).sum();
    let lp_bytes = r.lower() - LINE_POINTERS_OFFSET;
    assert_eq!(
        size - LINE_POINTERS_OFFSET - lp_bytes - used,
        r.upper() - r.lower() + r.garbage_size(),
        "the page's bytes are header, line pointers, tuples, gap and garbage"
    );
}

fn cases() -> u32 {
    if std::env::var_os("STORELAB_LONG").is_some_and(|v| v == "1") {
        4000
    } else {
        256
    }
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/heap_page_model.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// Calls every accessor of a page `validate` accepted, then prunes, compacts and inserts on a
/// copy: nothing may panic, and the copy must stay valid.
fn exercise(page: &[u8]) {
    let size = page.len();
    let r = HeapPageRef::new(page, size);
    let _ = (r.page_id(), r.dead_count(), r.has_free_lines(), r.fits(10));
    for s in 0..r.slot_count() {
        let slot = SlotId(s as u16);
        let _ = r.line_pointer(slot);
        if let Some(t) = r.tuple(slot) {
            assert!(t.size() >= TUPLE_HEADER_SIZE);
        }
        assert!(r.hot_chain(slot).len() <= r.slot_count());
        if let Some(live) = r.hot_search(slot) {
            assert!(r.tuple(live).is_some_and(|t| t.is_live()));
        }
    }
    assert!(r.free_space() <= tuple_size_max(size));
    let mut copy = page.to_vec();
    HeapPageMut::new(&mut copy, size).prune();
    heap_page::validate(&copy, size).expect("a pruned valid page is valid");
    HeapPageMut::new(&mut copy, size).compact();
    heap_page::validate(&copy, size).expect("a compacted valid page is valid");
    let room = HeapPageRef::new(&copy, size).free_space();
    if room >= TUPLE_HEADER_SIZE {
        let len = (room - TUPLE_HEADER_SIZE).min(row_size_max(size));
        let slot = HeapPageMut::new(&mut copy, size).insert(&vec![7; len], TupleFlags::NONE);
        assert!(slot.is_some(), "an insert of free_space bytes is refused");
        heap_page::validate(&copy, size).expect("valid after insert");
    }
}

/// A valid page built by `ops`, for the corruption property.
fn built(size: usize, ops: &[Op]) -> Vec<u8> {
    let mut page = empty(size);
    let mut model = Model::default();
    for op in ops {
        apply(&mut page, &mut model, op);
    }
    page
}

proptest! {
    #![proptest_config(config())]

    /// Every op sequence keeps the page valid and in agreement with the model.
    #[test]
    fn page_matches_model(
        size in prop::sample::select(vec![512usize, 1024, 4096]),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let mut page = empty(size);
        let mut model = Model::default();
        for (i, op) in ops.iter().enumerate() {
            apply(&mut page, &mut model, op);
            let result = std::panic::catch_unwind(|| check(&page, &model));
            prop_assert!(result.is_ok(), "after op {} {:?}", i, op);
        }
    }

    /// Random bytes and damaged valid pages: `validate` never panics, and what it accepts is
    /// safe to use.
    #[test]
    fn validate_never_panics(
        size in prop::sample::select(vec![512usize, 1024, 4096]),
        ops in prop::collection::vec(op(), 0..60),
        raw in prop::collection::vec(any::<u8>(), 0..4096),
        flips in prop::collection::vec((any::<u16>(), any::<u8>()), 0..8),
        from_raw in any::<bool>(),
    ) {
        let mut page = if from_raw {
            // Random bytes behind a plausible header, so validation gets past the first checks.
            let mut page = raw.clone();
            page.resize(size, 0);
            page[storelab_pager::page::PAGE_TYPE_OFFSET] = HEAP_PAGE.0;
            page[heap_page::HEAP_VERSION_OFFSET] = heap_page::HEAP_PAGE_VERSION;
            page
        } else {
            built(size, &ops)
        };
        for &(at, xor) in &flips {
            let at = usize::from(at) % size;
            page[at] ^= xor;
        }
        if heap_page::validate(&page, size).is_ok() {
            exercise(&page);
        }
        // Short buffers and bad sizes are errors too.
        prop_assert!(heap_page::validate(&page[..size / 2], size).is_err());
        prop_assert!(heap_page::validate(&page, size + 1).is_err());
    }
}
