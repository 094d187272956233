//! Heap pages: the slotted layout of a heap data page (PostgreSQL's `bufpage.h` and
//! `htup_details.h`), HOT chains and single-page pruning (`pruneheap.c`).
//!
//! ```text
//!  0            24    26    28      30     32  33  34   36
//!  +------------+-----+-----+-------+------+---+---+----+---------------------------------+
//!  | page header|lower|upper|garbage| dead |ver|flg|rsvd| line pointers (4 bytes each) --> |
//!  +------------+-----+-----+-------+------+---+---+----+---------------------------------+
//!  |                  ... free gap [lower, upper) ...                                     |
//!  +--------------------------------------------------------------------------------------+
//!  | <-- tuples grow down from the end: [upper, page_size), in any order, with garbage     |
//!  +--------------------------------------------------------------------------------------+
//! ```
//!
//! The common 24-byte page header belongs to the pager (`crates/pager/src/page.rs`); its page
//! type is [`HEAP_PAGE`]. All integers are little-endian. `lower` is the end of the line
//! pointer array (PostgreSQL's `pd_lower`), `upper` the start of the tuple area (`pd_upper`).
//! `garbage` counts bytes in the tuple area that belong to no tuple (removed tuples not yet
//! compacted away); `dead` counts line pointers in the DEAD state (work for VACUUM).
//!
//! # Line pointers
//!
//! A line pointer is PostgreSQL's `ItemIdData`, one little-endian `u32`:
//!
//! ```text
//!  31              17 16 15 14              0
//!  +-----------------+-----+-----------------+
//!  |   length (15)   |state|   offset (15)   |
//!  +-----------------+-----+-----------------+
//! ```
//!
//! | State | Value | Offset | Length | Meaning |
//! |---|---|---|---|---|
//! | UNUSED | 0 | 0 | 0 | free for reuse by the next insert |
//! | NORMAL | 1 | tuple offset | tuple length | a tuple (header and row) |
//! | REDIRECT | 2 | target slot | 0 | root of a pruned HOT chain: go to the target slot |
//! | DEAD | 3 | 0 | 0 | tuple removed, index entries may still point here (VACUUM's job) |
//!
//! A slot's number never changes, so a [`Tid`] (page, slot) stays the address of its tuple
//! while compaction moves the tuple bytes around.
//!
//! # Tuples
//!
//! ```text
//!  0       2                 10     12
//!  +-------+-----------------+------+------------------------------+
//!  | flags | ctid page (u64) | slot |  row bytes (opaque here)      |
//!  +-------+-----------------+------+------------------------------+
//! ```
//!
//! `flags` ([`TupleFlags`]) say whether this version is still live and how it relates to its
//! neighbours in a HOT chain; `ctid` is the version's own TID while it is the newest version,
//! and the TID of its successor once it has been updated (PostgreSQL's `t_ctid`).
//!
//! # HOT chains
//!
//! An update whose new version fits on the same page and changes no indexed column is a
//! heap-only tuple (HOT) update: the new version is flagged [`TupleFlags::HEAP_ONLY`] and gets
//! no index entries; the old one is flagged [`TupleFlags::HOT_UPDATED`] and its `ctid` points
//! to the new one. The chain starts at a *root*, the version the indexes point to:
//!
//! ```text
//!   index entry --> slot 1                     slot 4                  slot 2
//!                   [HOT_UPDATED, ctid=4] ---> [HEAP_ONLY|HOT_UPDATED, --> [HEAP_ONLY, live,
//!                                               ctid=2]                    ctid=self]
//! ```
//!
//! Pruning ([`HeapPageMut::prune`]) removes the dead prefix of each chain without touching
//! the indexes: the root's line pointer becomes a REDIRECT to the first live version, and the
//! dead heap-only versions become UNUSED. If the whole chain is dead, the root becomes DEAD
//! and waits for VACUUM to remove its index entries:
//!
//! ```text
//!   index entry --> slot 1 REDIRECT(2)         slot 4 UNUSED           slot 2
//!                                  \-------------------------------> [HEAP_ONLY, live]
//! ```
//!
//! # Invariants (checked by [`validate`] and [`HeapPageRef::check_chains`])
//!
//! 1. `36 <= lower <= upper <= page_size`, `lower - 36` is a multiple of 4, and the page has
//!    at most [`slot_count_max`] line pointers.
//! 2. Every line pointer is in canonical form for its state (table above); NORMAL tuples lie
//!    in `[upper, page_size)`, are at least a tuple header long and do not overlap.
//! 3. Tuple bytes plus `garbage` equal `page_size - upper` exactly.
//! 4. `dead` equals the number of DEAD line pointers; `PD_HAS_FREE_LINES` is set if and only
//!    if some line pointer is UNUSED; the last line pointer is never UNUSED (freed trailing
//!    pointers are trimmed off the array).
//! 5. Tuple flags are known bits; DELETED and UPDATED exclude each other; HOT_UPDATED implies
//!    UPDATED. A tuple that is not UPDATED has its own TID as `ctid`; an UPDATED tuple does
//!    not; a HOT_UPDATED tuple's `ctid` names a slot of this page.
//! 6. HOT chains: a REDIRECT's target and a HOT_UPDATED tuple's successor are NORMAL heap-only
//!    tuples; no tuple is the target of two links; every heap-only tuple is reached from a
//!    root (a REDIRECT, or a NORMAL tuple that is not heap-only), so there is no cycle.
//!
//! # Simplifications versus PostgreSQL
//!
//! - **No MVCC.** There are no `xmin`/`xmax` transaction ids and no snapshots: a tuple is live
//!   if and only if neither DELETED nor UPDATED is set ("xmax set and committed" is the only
//!   case), so at most the last version of a chain is live. PostgreSQL decides liveness per
//!   snapshot and prunes only versions dead to every running transaction; it also checks
//!   `xmin == prior xmax` while following `t_ctid` because a chain can be broken by aborted
//!   updates. Here chains are exact (invariant 6), checked when the page is read.
//! - **Small tuple header.** 12 bytes (flags and ctid) instead of 23 plus alignment: no
//!   `xmin`, `xmax`, `cmin/cmax`, attribute count, null bitmap or `t_hoff`. Rows are opaque.
//! - **No alignment.** Tuples are byte-packed; the row codec reads bytes, not C structs.
//! - **Exact hints.** PostgreSQL's `PD_HAS_FREE_LINES` may be stale (it is a hint); here it is
//!   kept exact so `validate` can check it, and `garbage` is tracked so the free space of a
//!   page is known without a scan.
//! - **Compaction on insert.** PostgreSQL's `PageAddItem` never moves tuples: other backends
//!   may hold pointers into a pinned page, so defragmentation waits for a cleanup lock
//!   (`PageRepairFragmentation` during pruning). Here the only way to the page bytes is a
//!   latched guard, and the borrow checker ends every `&[u8]` into the page before the latch
//!   is released, so an insert may compact the tuple area when the gap alone is too small.
//! - **Slots from 0**, and line pointer states without storage for DEAD (PostgreSQL allows a
//!   DEAD pointer to keep its storage; pruning here always frees it).
//!
//! # Logging and determinism
//!
//! Every operation here is a pure function of the page bytes and its arguments: an insert
//! picks the first UNUSED slot (or appends one) and compacts only when it must, and
//! compaction keeps the physical order of tuples. Redo of an insert can therefore run the
//! same insert and assert it gets the logged slot. Pruning is deterministic too (chains are
//! visited in slot order), so it could be logged as "prune this page" and redone by running
//! it again on the same page; the engine is expected to log the page image after pruning,
//! which needs no such argument.
//!
//! Further reading: PostgreSQL `src/backend/access/heap/README.HOT`,
//! `src/include/storage/bufpage.h`, `src/backend/access/heap/pruneheap.c`,
//! `src/backend/storage/freespace/README`.

use std::fmt;
use std::ops::BitOr;

use storelab_pager::page::{PAGE_HEADER_SIZE, PAGE_ID_OFFSET, PAGE_TYPE_OFFSET};
use storelab_pager::{PageId, PageType};

pub use crate::tid::{SlotId, Tid};

/// Page type of a heap data page.
pub const HEAP_PAGE: PageType = PageType(32);
/// Page type reserved for the heap's free space map (its format belongs to the engine).
pub const FSM_PAGE: PageType = PageType(33);

/// The heap page layout version this build writes and reads.
pub const HEAP_PAGE_VERSION: u8 = 1;

/// Byte offset of `lower`: the end of the line pointer array.
pub const LOWER_OFFSET: usize = PAGE_HEADER_SIZE;
/// Byte offset of `upper`: the start of the tuple area.
pub const UPPER_OFFSET: usize = LOWER_OFFSET + 2;
/// Byte offset of `garbage`: bytes of the tuple area that belong to no tuple.
pub const GARBAGE_SIZE_OFFSET: usize = UPPER_OFFSET + 2;
/// Byte offset of `dead`: the number of DEAD line pointers.
pub const DEAD_COUNT_OFFSET: usize = GARBAGE_SIZE_OFFSET + 2;
/// Byte offset of the heap layout version.
pub const HEAP_VERSION_OFFSET: usize = DEAD_COUNT_OFFSET + 2;
/// Byte offset of the page flags ([`PD_HAS_FREE_LINES`]).
pub const HEAP_FLAGS_OFFSET: usize = HEAP_VERSION_OFFSET + 1;
/// Byte offset of two reserved bytes (written as zero).
pub const RESERVED_OFFSET: usize = HEAP_FLAGS_OFFSET + 1;
/// Byte offset of the line pointer array.
pub const LINE_POINTERS_OFFSET: usize = RESERVED_OFFSET + 2;
const _: () = assert!(LINE_POINTERS_OFFSET == 36);

/// Bytes of one line pointer.
pub const LINE_POINTER_SIZE: usize = 4;
const _: () = assert!(LINE_POINTERS_OFFSET.is_multiple_of(LINE_POINTER_SIZE));

/// Page flag: some line pointer is UNUSED (kept exact, unlike PostgreSQL's hint).
pub const PD_HAS_FREE_LINES: u8 = 0x01;
/// Every page flag this version defines.
const PD_FLAGS_KNOWN: u8 = PD_HAS_FREE_LINES;

/// Bits of a line pointer's offset field (the low bits).
const LP_OFFSET_BITS: u32 = 15;
/// Bits of a line pointer's state field.
const LP_STATE_BITS: u32 = 2;
/// Bits of a line pointer's length field (the high bits).
const LP_LENGTH_BITS: u32 = 15;
const LP_STATE_SHIFT: u32 = LP_OFFSET_BITS;
const LP_LENGTH_SHIFT: u32 = LP_STATE_SHIFT + LP_STATE_BITS;
const _: () = assert!(LP_LENGTH_SHIFT + LP_LENGTH_BITS == 8 * LINE_POINTER_SIZE as u32);
const LP_OFFSET_MASK: u32 = (1 << LP_OFFSET_BITS) - 1;
const LP_STATE_MASK: u32 = (1 << LP_STATE_BITS) - 1;
/// Line pointer state values (PostgreSQL's `LP_UNUSED`, `LP_NORMAL`, `LP_REDIRECT`, `LP_DEAD`).
const LP_UNUSED: u32 = 0;
const LP_NORMAL: u32 = 1;
const LP_REDIRECT: u32 = 2;
const LP_DEAD: u32 = 3;

/// The smallest page size the layout accepts (tests use small pages to fill them quickly).
pub const HEAP_PAGE_SIZE_MIN: usize = 512;
/// The largest page size the layout accepts: every offset and length fits 15 bits.
pub const HEAP_PAGE_SIZE_MAX: usize = 1 << LP_OFFSET_BITS;
const _: () = assert!(HEAP_PAGE_SIZE_MAX <= u16::MAX as usize + 1);
const _: () = assert!(HEAP_PAGE_SIZE_MIN > LINE_POINTERS_OFFSET + LINE_POINTER_SIZE);

/// Byte offset of the flags in a tuple.
pub const TUPLE_FLAGS_OFFSET: usize = 0;
/// Byte offset of the ctid's page id in a tuple.
pub const TUPLE_CTID_PAGE_OFFSET: usize = TUPLE_FLAGS_OFFSET + 2;
/// Byte offset of the ctid's slot in a tuple.
pub const TUPLE_CTID_SLOT_OFFSET: usize = TUPLE_CTID_PAGE_OFFSET + 8;
/// Bytes of the tuple header; the row bytes follow.
pub const TUPLE_HEADER_SIZE: usize = TUPLE_CTID_SLOT_OFFSET + 2;
const _: () = assert!(TUPLE_HEADER_SIZE == 12);

/// The number of free-space categories of PostgreSQL's free space map.
pub const FSM_CATEGORY_COUNT: usize = 256;
/// The category of a page that takes any tuple (an empty page).
const FSM_CATEGORY_MAX: u8 = (FSM_CATEGORY_COUNT - 1) as u8;

/// The largest tuple (header and row) an empty page of `page_size` takes.
pub const fn tuple_size_max(page_size: usize) -> usize {
    page_size - LINE_POINTERS_OFFSET - LINE_POINTER_SIZE
}

/// The largest row an empty page of `page_size` takes (PostgreSQL's `MaxHeapTupleSize` less
/// the header; there is no TOAST here, so the engine refuses larger rows).
pub const fn row_size_max(page_size: usize) -> usize {
    tuple_size_max(page_size) - TUPLE_HEADER_SIZE
}

/// The most line pointers a page of `page_size` may have (PostgreSQL's
/// `MaxHeapTuplesPerPage`): as many as empty-row tuples fit. The limit keeps DEAD and REDIRECT
/// pointers, which cost no tuple space, from growing the array without bound.
pub const fn slot_count_max(page_size: usize) -> usize {
    (page_size - LINE_POINTERS_OFFSET) / (LINE_POINTER_SIZE + TUPLE_HEADER_SIZE)
}
const _: () = assert!(slot_count_max(HEAP_PAGE_SIZE_MAX) <= LP_OFFSET_MASK as usize);

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4-byte slice"))
}
fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8-byte slice"))
}
fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// The byte offset of line pointer `slot`.
const fn line_pointer_offset(slot: usize) -> usize {
    LINE_POINTERS_OFFSET + LINE_POINTER_SIZE * slot
}

/// The flags of a tuple (PostgreSQL's `t_infomask2` HOT bits and the "xmax is set" state).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TupleFlags(pub u16);

impl TupleFlags {
    /// No flags: a live tuple reached from an index.
    pub const NONE: TupleFlags = TupleFlags(0);
    /// The row was deleted: this version is not live (and has no successor).
    pub const DELETED: TupleFlags = TupleFlags(0x0001);
    /// The row was updated: this version is not live; `ctid` names the newer version.
    pub const UPDATED: TupleFlags = TupleFlags(0x0002);
    /// The newer version is a heap-only tuple on this page (implies UPDATED).
    pub const HOT_UPDATED: TupleFlags = TupleFlags(0x0004);
    /// A heap-only tuple: it has no index entries and is reached only through a HOT chain.
    pub const HEAP_ONLY: TupleFlags = TupleFlags(0x0008);
    /// Every flag this version defines.
    pub const KNOWN: TupleFlags = TupleFlags(0x000F);

    /// True if every bit of `other` is set.
    pub const fn contains(self, other: TupleFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True for a live version: neither deleted nor updated.
    pub const fn is_live(self) -> bool {
        self.0 & (Self::DELETED.0 | Self::UPDATED.0) == 0
    }

    /// These flags without those of `other`.
    pub const fn without(self, other: TupleFlags) -> TupleFlags {
        TupleFlags(self.0 & !other.0)
    }
}

impl BitOr for TupleFlags {
    type Output = TupleFlags;
    fn bitor(self, rhs: TupleFlags) -> TupleFlags {
        TupleFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for TupleFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (TupleFlags::DELETED, "DELETED"),
            (TupleFlags::UPDATED, "UPDATED"),
            (TupleFlags::HOT_UPDATED, "HOT_UPDATED"),
            (TupleFlags::HEAP_ONLY, "HEAP_ONLY"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(flag, _)| self.contains(*flag))
            .map(|(_, name)| *name)
            .collect();
        let unknown = self.0 & !TupleFlags::KNOWN.0;
        match (set.is_empty(), unknown) {
            (true, 0) => write!(f, "NONE"),
            (_, 0) => write!(f, "{}", set.join("|")),
            _ => write!(f, "{}|{unknown:#x}", set.join("|")),
        }
    }
}

/// A decoded line pointer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum LinePointer {
    /// Free for reuse.
    Unused,
    /// A tuple of `len` bytes (header included) at byte `offset` of the page.
    Normal {
        /// Byte offset of the tuple in the page.
        offset: u16,
        /// Bytes of the tuple, header included.
        len: u16,
    },
    /// The root of a pruned HOT chain: the chain continues at this slot.
    Redirect(SlotId),
    /// A removed tuple whose index entries may remain; VACUUM makes it UNUSED.
    Dead,
}

impl LinePointer {
    /// The on-page encoding.
    pub fn encode(self) -> u32 {
        let (offset, state, len) = match self {
            LinePointer::Unused => (0, LP_UNUSED, 0),
            LinePointer::Normal { offset, len } => (u32::from(offset), LP_NORMAL, u32::from(len)),
            LinePointer::Redirect(to) => (u32::from(to.0), LP_REDIRECT, 0),
            LinePointer::Dead => (0, LP_DEAD, 0),
        };
        assert!(
            offset <= LP_OFFSET_MASK && len < 1 << LP_LENGTH_BITS,
            "line pointer fields {offset}/{len} exceed 15 bits"
        );
        offset | state << LP_STATE_SHIFT | len << LP_LENGTH_SHIFT
    }

    /// Decodes a line pointer by its state alone, ignoring fields the state does not use
    /// (accessors use this so they never fail; [`validate`] insists on the canonical form).
    fn decode_lenient(raw: u32) -> LinePointer {
        let offset = raw & LP_OFFSET_MASK;
        let len = raw >> LP_LENGTH_SHIFT;
        match (raw >> LP_STATE_SHIFT) & LP_STATE_MASK {
            LP_UNUSED => LinePointer::Unused,
            LP_NORMAL => LinePointer::Normal {
                offset: offset as u16,
                len: len as u16,
            },
            LP_REDIRECT => LinePointer::Redirect(SlotId(offset as u16)),
            _ => LinePointer::Dead,
        }
    }

    /// Decodes a line pointer read from disk, refusing non-canonical encodings (storage on a
    /// state that has none).
    pub fn decode(raw: u32) -> Result<LinePointer, &'static str> {
        let lp = LinePointer::decode_lenient(raw);
        if lp.encode() != raw {
            return Err(match lp {
                LinePointer::Redirect(_) => "redirect with a length",
                _ => "unused or dead line pointer with storage",
            });
        }
        Ok(lp)
    }
}

/// What is wrong with a page that fails [`validate`]. The caller names the file and page.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeapPageError {
    /// The page size is outside the legal range, or the buffer is shorter than a page.
    #[error(
        "buffer of {len} bytes for a page size of {page_size} \
         (legal sizes {HEAP_PAGE_SIZE_MIN}..={HEAP_PAGE_SIZE_MAX})"
    )]
    PageSize {
        /// The page size asked for.
        page_size: usize,
        /// The buffer's length.
        len: usize,
    },
    /// The common header's page type is not [`HEAP_PAGE`].
    #[error("page type {found} is not a heap page ({})", HEAP_PAGE.0)]
    PageType {
        /// The type found.
        found: u8,
    },
    /// An unknown heap layout version.
    #[error("heap page version {found}, this build reads {HEAP_PAGE_VERSION}")]
    Version {
        /// The version found.
        found: u8,
    },
    /// A header field out of range.
    #[error("heap page header field {field} is {value}: {reason}")]
    Header {
        /// The field's name.
        field: &'static str,
        /// Its value.
        value: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A header count that disagrees with the line pointers.
    #[error("heap page header field {field} is {stored}, the line pointers say {actual}")]
    Count {
        /// The field's name.
        field: &'static str,
        /// The value in the header.
        stored: usize,
        /// The value the line pointers give.
        actual: usize,
    },
    /// A malformed line pointer.
    #[error("line pointer {slot} ({raw:#010x}): {reason}")]
    LinePointer {
        /// Its slot.
        slot: SlotId,
        /// Its raw encoding.
        raw: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A malformed tuple header.
    #[error("tuple at slot {slot}: {reason}")]
    Tuple {
        /// The tuple's slot.
        slot: SlotId,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two tuples share bytes.
    #[error("tuples at slots {slot} and {other} overlap")]
    Overlap {
        /// The tuple lower in the page.
        slot: SlotId,
        /// The tuple it runs into.
        other: SlotId,
    },
    /// Tuples and garbage do not account for the tuple area.
    #[error(
        "free-space accounting: tuples {tuple_bytes} + garbage {garbage_size} \
         != tuple area {area_size}"
    )]
    Accounting {
        /// Bytes of all tuples.
        tuple_bytes: usize,
        /// The header's garbage count.
        garbage_size: usize,
        /// `page_size - upper`.
        area_size: usize,
    },
    /// A broken HOT chain (invariant 6).
    #[error("HOT chain at slot {slot}: {reason}")]
    Chain {
        /// The slot where the walk found the problem.
        slot: SlotId,
        /// What is wrong.
        reason: &'static str,
    },
}

/// One tuple as stored: header fields and the row bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TupleRef<'a> {
    /// The tuple's flags.
    pub flags: TupleFlags,
    /// Its own TID while it is the newest version, else its successor's.
    pub ctid: Tid,
    /// The row bytes (the table layer's encoding, opaque here).
    pub row: &'a [u8],
}

impl TupleRef<'_> {
    /// True for a live version.
    pub fn is_live(&self) -> bool {
        self.flags.is_live()
    }

    /// Bytes the tuple occupies in the tuple area (header and row).
    pub fn size(&self) -> usize {
        TUPLE_HEADER_SIZE + self.row.len()
    }
}

/// What one [`HeapPageMut::prune`] did.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct PruneResult {
    /// Tuples whose storage was freed (dead chain members and dead roots).
    pub tuples_removed_count: usize,
    /// Line pointers that became DEAD (roots of wholly dead chains, dead non-HOT tuples).
    pub line_pointers_dead_count: usize,
    /// Line pointers that became UNUSED (dead heap-only tuples), trimmed ones included.
    pub line_pointers_unused_count: usize,
    /// Roots that became a REDIRECT or were pointed further along their chain.
    pub line_pointers_redirected_count: usize,
    /// UNUSED line pointers cut off the end of the array.
    pub line_pointers_trimmed_count: usize,
    /// Bytes of the removed tuples.
    pub tuple_bytes_freed: usize,
    /// True if any byte of the page changed (pruning or compaction): the page needs logging.
    pub page_changed: bool,
}

/// Read access to a heap page (`&[u8]` of at least `page_size`).
///
/// Accessors never panic, even on bytes that fail [`validate`] (they return `None` for what
/// is out of range), but they only mean something on a page that passed it.
#[derive(Clone, Copy)]
pub struct HeapPageRef<'a> {
    bytes: &'a [u8],
    page_size: usize,
}

/// Checks that `bytes` is a well-formed heap page of `page_size` bytes: every invariant of
/// the module doc. Never panics, whatever the bytes; the buffer pool's per-file validator
/// calls it on every heap page read from disk.
pub fn validate(bytes: &[u8], page_size: usize) -> Result<(), HeapPageError> {
    if !(HEAP_PAGE_SIZE_MIN..=HEAP_PAGE_SIZE_MAX).contains(&page_size) || bytes.len() < page_size {
        return Err(HeapPageError::PageSize {
            page_size,
            len: bytes.len(),
        });
    }
    HeapPageRef::new(bytes, page_size).validate()
}

impl<'a> HeapPageRef<'a> {
    /// Views `bytes` as a heap page of `page_size` bytes. Call [`validate`] first on untrusted
    /// bytes.
    pub fn new(bytes: &'a [u8], page_size: usize) -> Self {
        assert!(
            (HEAP_PAGE_SIZE_MIN..=HEAP_PAGE_SIZE_MAX).contains(&page_size),
            "heap page size {page_size}"
        );
        assert!(
            bytes.len() >= page_size,
            "buffer of {} bytes for a page of {page_size}",
            bytes.len()
        );
        HeapPageRef {
            bytes: &bytes[..page_size],
            page_size,
        }
    }

    /// The page size.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The page's id, from the common header (ctids of its own tuples name it).
    pub fn page_id(&self) -> PageId {
        PageId(get_u64(self.bytes, PAGE_ID_OFFSET))
    }

    /// `lower`: the end of the line pointer array.
    pub fn lower(&self) -> usize {
        usize::from(get_u16(self.bytes, LOWER_OFFSET))
    }

    /// `upper`: the start of the tuple area.
    pub fn upper(&self) -> usize {
        usize::from(get_u16(self.bytes, UPPER_OFFSET))
    }

    /// Bytes of the tuple area that belong to no tuple (reclaimed by compaction).
    pub fn garbage_size(&self) -> usize {
        usize::from(get_u16(self.bytes, GARBAGE_SIZE_OFFSET))
    }

    /// The number of DEAD line pointers.
    pub fn dead_count(&self) -> usize {
        usize::from(get_u16(self.bytes, DEAD_COUNT_OFFSET))
    }

    /// True if some line pointer is UNUSED.
    pub fn has_free_lines(&self) -> bool {
        self.bytes[HEAP_FLAGS_OFFSET] & PD_HAS_FREE_LINES != 0
    }

    /// The number of line pointers (in any state).
    pub fn slot_count(&self) -> usize {
        self.lower().saturating_sub(LINE_POINTERS_OFFSET) / LINE_POINTER_SIZE
    }

    /// The raw encoding of line pointer `slot`, if it exists and lies inside the page.
    fn raw_line_pointer(&self, slot: usize) -> Option<u32> {
        let at = line_pointer_offset(slot);
        if slot >= self.slot_count() || at + LINE_POINTER_SIZE > self.page_size {
            return None;
        }
        Some(get_u32(self.bytes, at))
    }

    /// Line pointer `slot`, or `None` past the array.
    pub fn line_pointer(&self, slot: SlotId) -> Option<LinePointer> {
        self.raw_line_pointer(slot.index())
            .map(LinePointer::decode_lenient)
    }

    /// The tuple at `slot`, if its line pointer is NORMAL (`None` for a stale TID whose slot
    /// is now UNUSED, DEAD, a REDIRECT or past the array).
    pub fn tuple(&self, slot: SlotId) -> Option<TupleRef<'a>> {
        let LinePointer::Normal { offset, len } = self.line_pointer(slot)? else {
            return None;
        };
        let (offset, len) = (usize::from(offset), usize::from(len));
        let bytes = self.bytes.get(offset..offset + len)?;
        if len < TUPLE_HEADER_SIZE {
            return None;
        }
        Some(TupleRef {
            flags: TupleFlags(get_u16(bytes, TUPLE_FLAGS_OFFSET)),
            ctid: Tid::new(
                PageId(get_u64(bytes, TUPLE_CTID_PAGE_OFFSET)),
                SlotId(get_u16(bytes, TUPLE_CTID_SLOT_OFFSET)),
            ),
            row: &bytes[TUPLE_HEADER_SIZE..],
        })
    }

    /// Every NORMAL tuple with its slot, in slot order (live or not: filter with
    /// [`TupleRef::is_live`] for a sequential scan).
    pub fn tuples(&self) -> impl Iterator<Item = (SlotId, TupleRef<'a>)> + use<'a> {
        let page = *self;
        (0..self.slot_count()).filter_map(move |s| {
            let slot = SlotId(s as u16);
            page.tuple(slot).map(|t| (slot, t))
        })
    }

    /// The largest tuple (header and row) that [`HeapPageMut::insert`] accepts now: the gap
    /// plus garbage, less a new line pointer when no UNUSED one can be reused, and 0 when the
    /// array is at [`slot_count_max`] with none to reuse (PostgreSQL's
    /// `PageGetHeapFreeSpace`). This is the figure the free space map records.
    pub fn free_space(&self) -> usize {
        let total = self.upper().saturating_sub(self.lower()) + self.garbage_size();
        if self.has_free_lines() {
            return total;
        }
        if self.slot_count() >= slot_count_max(self.page_size) {
            return 0;
        }
        total.saturating_sub(LINE_POINTER_SIZE)
    }

    /// True if a row of `row_len` bytes fits now.
    pub fn fits(&self, row_len: usize) -> bool {
        TUPLE_HEADER_SIZE + row_len <= self.free_space()
    }

    /// The next slot of a HOT chain after `slot`: a REDIRECT's target, or a HOT_UPDATED
    /// tuple's successor on this page, if that is a NORMAL heap-only tuple.
    fn hot_successor(&self, slot: SlotId) -> Option<SlotId> {
        let next = match self.line_pointer(slot)? {
            LinePointer::Redirect(to) => to,
            LinePointer::Normal { .. } => {
                let t = self.tuple(slot)?;
                if !t.flags.contains(TupleFlags::HOT_UPDATED) || t.ctid.page_id != self.page_id() {
                    return None;
                }
                t.ctid.slot
            }
            _ => return None,
        };
        self.tuple(next)
            .filter(|t| t.flags.contains(TupleFlags::HEAP_ONLY))
            .map(|_| next)
    }

    /// The tuples of the HOT chain that starts at `slot` (following a REDIRECT first), in
    /// chain order. The walk stops after [`slot_count_max`] steps, so a cycle in a corrupt
    /// page ends it.
    pub fn hot_chain(&self, slot: SlotId) -> Vec<SlotId> {
        let mut chain = Vec::new();
        let mut cur = match self.line_pointer(slot) {
            Some(LinePointer::Normal { .. }) => Some(slot),
            Some(LinePointer::Redirect(_)) => self.hot_successor(slot),
            _ => None,
        };
        while let Some(s) = cur {
            if chain.len() >= slot_count_max(self.page_size) {
                break;
            }
            chain.push(s);
            cur = self.hot_successor(s);
        }
        chain
    }

    /// The live version of the chain an index entry at `slot` points to (PostgreSQL's
    /// `heap_hot_search_buffer`), or `None` if the whole chain is dead or gone.
    pub fn hot_search(&self, slot: SlotId) -> Option<SlotId> {
        self.hot_chain(slot)
            .into_iter()
            .find(|&s| self.tuple(s).is_some_and(|t| t.is_live()))
    }

    /// Checks every invariant of the module doc (see the free function [`validate`], which
    /// also checks the page size).
    pub fn validate(&self) -> Result<(), HeapPageError> {
        let b = self.bytes;
        let page_size = self.page_size;
        if b[PAGE_TYPE_OFFSET] != HEAP_PAGE.0 {
            return Err(HeapPageError::PageType {
                found: b[PAGE_TYPE_OFFSET],
            });
        }
        if b[HEAP_VERSION_OFFSET] != HEAP_PAGE_VERSION {
            return Err(HeapPageError::Version {
                found: b[HEAP_VERSION_OFFSET],
            });
        }
        let header_error = |field, value, reason| HeapPageError::Header {
            field,
            value,
            reason,
        };
        let flags = b[HEAP_FLAGS_OFFSET];
        if flags & !PD_FLAGS_KNOWN != 0 {
            return Err(header_error("flags", flags.into(), "unknown bits"));
        }
        let reserved = get_u16(b, RESERVED_OFFSET);
        if reserved != 0 {
            return Err(header_error("reserved", reserved.into(), "not zero"));
        }
        let (lower, upper) = (self.lower(), self.upper());
        if lower < LINE_POINTERS_OFFSET
            || !(lower - LINE_POINTERS_OFFSET).is_multiple_of(LINE_POINTER_SIZE)
        {
            return Err(header_error(
                "lower",
                lower,
                "not the end of a line pointer",
            ));
        }
        if upper > page_size {
            return Err(header_error("upper", upper, "past the page end"));
        }
        if lower > upper {
            return Err(header_error("lower", lower, "above upper"));
        }
        let count = self.slot_count();
        if count > slot_count_max(page_size) {
            return Err(header_error(
                "lower",
                lower,
                "more line pointers than allowed",
            ));
        }
        let page_id = self.page_id();
        let mut spans: Vec<(usize, usize, SlotId)> = Vec::with_capacity(count);
        let (mut dead, mut unused) = (0, 0);
        for s in 0..count {
            let slot = SlotId(s as u16);
            let raw = get_u32(b, line_pointer_offset(s));
            let lp_error = |reason| HeapPageError::LinePointer { slot, raw, reason };
            match LinePointer::decode(raw).map_err(lp_error)? {
                LinePointer::Unused => unused += 1,
                LinePointer::Dead => dead += 1,
                LinePointer::Redirect(to) => {
                    if to.index() >= count {
                        return Err(lp_error("redirect past the line pointer array"));
                    }
                    if to == slot {
                        return Err(lp_error("redirect to itself"));
                    }
                }
                LinePointer::Normal { offset, len } => {
                    let (offset, len) = (usize::from(offset), usize::from(len));
                    if offset < upper {
                        return Err(lp_error("tuple below upper"));
                    }
                    if offset + len > page_size {
                        return Err(lp_error("tuple past the page end"));
                    }
                    if len < TUPLE_HEADER_SIZE {
                        return Err(lp_error("tuple shorter than its header"));
                    }
                    spans.push((offset, len, slot));
                    let t = self.tuple(slot).expect("a NORMAL pointer in range");
                    check_tuple_header(&t, Tid::new(page_id, slot), count)?;
                }
            }
        }
        if count > 0 && unused > 0 {
            let last = count - 1;
            let raw = get_u32(b, line_pointer_offset(last));
            if LinePointer::decode_lenient(raw) == LinePointer::Unused {
                return Err(HeapPageError::LinePointer {
                    slot: SlotId(last as u16),
                    raw,
                    reason: "trailing unused line pointer",
                });
            }
        }
        if self.dead_count() != dead {
            return Err(HeapPageError::Count {
                field: "dead",
                stored: self.dead_count(),
                actual: dead,
            });
        }
        if self.has_free_lines() != (unused > 0) {
            return Err(HeapPageError::Count {
                field: "PD_HAS_FREE_LINES",
                stored: usize::from(self.has_free_lines()),
                actual: usize::from(unused > 0),
            });
        }
        spans.sort_unstable();
        for w in spans.windows(2) {
            if w[0].0 + w[0].1 > w[1].0 {
                return Err(HeapPageError::Overlap {
                    slot: w[0].2,
                    other: w[1].2,
                });
            }
        }
        let tuple_bytes: usize = spans.iter().map(|s| s.1).sum();
        if tuple_bytes + self.garbage_size() != page_size - upper {
            return Err(HeapPageError::Accounting {
                tuple_bytes,
                garbage_size: self.garbage_size(),
                area_size: page_size - upper,
            });
        }
        self.check_chains()
    }

    /// Checks the HOT chains (invariant 6): every link (a REDIRECT's target, a HOT_UPDATED
    /// tuple's successor) names a NORMAL heap-only tuple on this page, no tuple has two
    /// predecessors, and every heap-only tuple is reached from a root, which rules out cycles.
    /// Walks are bounded by the slot count. [`HeapPageRef::validate`] calls it last.
    pub fn check_chains(&self) -> Result<(), HeapPageError> {
        let count = self.slot_count();
        let page_id = self.page_id();
        let mut predecessor: Vec<Option<SlotId>> = vec![None; count];
        let mut is_root = vec![false; count];
        for (s, root) in is_root.iter_mut().enumerate() {
            let slot = SlotId(s as u16);
            let chain_error = |reason| HeapPageError::Chain { slot, reason };
            let next = match self.line_pointer(slot) {
                Some(LinePointer::Redirect(to)) => {
                    *root = true;
                    to
                }
                Some(LinePointer::Normal { .. }) => {
                    let Some(t) = self.tuple(slot) else {
                        return Err(chain_error("tuple outside the page"));
                    };
                    *root = !t.flags.contains(TupleFlags::HEAP_ONLY);
                    if !t.flags.contains(TupleFlags::HOT_UPDATED) {
                        continue;
                    }
                    if t.ctid.page_id != page_id {
                        return Err(chain_error("HOT successor on another page"));
                    }
                    t.ctid.slot
                }
                _ => continue,
            };
            if next.index() >= count || next == slot {
                return Err(chain_error("link past the array or to itself"));
            }
            if !self
                .tuple(next)
                .is_some_and(|t| t.flags.contains(TupleFlags::HEAP_ONLY))
            {
                return Err(chain_error(
                    "link to something other than a heap-only tuple",
                ));
            }
            if predecessor[next.index()].is_some() {
                return Err(HeapPageError::Chain {
                    slot: next,
                    reason: "heap-only tuple with two predecessors",
                });
            }
            predecessor[next.index()] = Some(slot);
        }
        let mut reached = vec![false; count];
        for root in (0..count).filter(|&s| is_root[s]) {
            let mut cur = SlotId(root as u16);
            let mut steps = 0;
            while let Some(next) = self.hot_successor(cur) {
                steps += 1;
                if reached[next.index()] || steps > count {
                    return Err(HeapPageError::Chain {
                        slot: next,
                        reason: "cycle",
                    });
                }
                reached[next.index()] = true;
                cur = next;
            }
        }
        for (s, &was_reached) in reached.iter().enumerate() {
            let slot = SlotId(s as u16);
            if !was_reached
                && self
                    .tuple(slot)
                    .is_some_and(|t| t.flags.contains(TupleFlags::HEAP_ONLY))
            {
                return Err(HeapPageError::Chain {
                    slot,
                    reason: "heap-only tuple not reached from a root (orphan or cycle)",
                });
            }
        }
        Ok(())
    }
}

/// Checks a tuple header's flags and ctid (invariant 5); `own` is the tuple's TID.
fn check_tuple_header(t: &TupleRef<'_>, own: Tid, count: usize) -> Result<(), HeapPageError> {
    let error = |reason| HeapPageError::Tuple {
        slot: own.slot,
        reason,
    };
    let f = t.flags;
    if f.0 & !TupleFlags::KNOWN.0 != 0 {
        return Err(error("unknown flag bits"));
    }
    if f.contains(TupleFlags::DELETED | TupleFlags::UPDATED) {
        return Err(error("both DELETED and UPDATED"));
    }
    if f.contains(TupleFlags::HOT_UPDATED) && !f.contains(TupleFlags::UPDATED) {
        return Err(error("HOT_UPDATED without UPDATED"));
    }
    if f.contains(TupleFlags::UPDATED) {
        if t.ctid == own {
            return Err(error("updated, but its ctid is its own TID"));
        }
    } else if t.ctid != own {
        return Err(error("not updated, but its ctid is not its own TID"));
    }
    if f.contains(TupleFlags::HOT_UPDATED)
        && (t.ctid.page_id != own.page_id || t.ctid.slot.index() >= count)
    {
        return Err(error("HOT successor not a slot of this page"));
    }
    Ok(())
}

/// Write access to a heap page.
///
/// Methods assert their preconditions (a slot in the state the operation needs): breaking one
/// is a bug in the caller, not corruption, since pages are validated as they are read.
pub struct HeapPageMut<'a> {
    bytes: &'a mut [u8],
    page_size: usize,
}

/// What prune decided for one line pointer.
#[derive(Clone, Copy, Debug)]
enum PruneAction {
    Unused(SlotId),
    Dead(SlotId),
    Redirect(SlotId, SlotId),
}

impl<'a> HeapPageMut<'a> {
    /// Views `bytes` as a heap page of `page_size` bytes.
    pub fn new(bytes: &'a mut [u8], page_size: usize) -> Self {
        // Same preconditions as a read view.
        HeapPageRef::new(bytes, page_size);
        HeapPageMut {
            bytes: &mut bytes[..page_size],
            page_size,
        }
    }

    /// A read view.
    pub fn as_ref(&self) -> HeapPageRef<'_> {
        HeapPageRef::new(self.bytes, self.page_size)
    }

    /// Formats an empty heap page: sets the common header's page type to [`HEAP_PAGE`] (its
    /// other fields, the page id among them, stay as they are) and writes an empty body.
    pub fn init(&mut self) {
        self.bytes[PAGE_TYPE_OFFSET] = HEAP_PAGE.0;
        self.bytes[PAGE_HEADER_SIZE..].fill(0);
        self.set_lower(LINE_POINTERS_OFFSET);
        self.set_upper(self.page_size);
        self.bytes[HEAP_VERSION_OFFSET] = HEAP_PAGE_VERSION;
    }

    fn set_lower(&mut self, lower: usize) {
        put_u16(self.bytes, LOWER_OFFSET, lower as u16);
    }
    fn set_upper(&mut self, upper: usize) {
        put_u16(self.bytes, UPPER_OFFSET, upper as u16);
    }
    fn set_garbage_size(&mut self, size: usize) {
        put_u16(self.bytes, GARBAGE_SIZE_OFFSET, size as u16);
    }
    fn set_dead_count(&mut self, count: usize) {
        put_u16(self.bytes, DEAD_COUNT_OFFSET, count as u16);
    }
    fn write_line_pointer(&mut self, slot: SlotId, lp: LinePointer) {
        put_u32(self.bytes, line_pointer_offset(slot.index()), lp.encode());
    }

    /// Line pointer `slot`, asserting it exists.
    fn existing(&self, slot: SlotId) -> LinePointer {
        let count = self.as_ref().slot_count();
        self.as_ref()
            .line_pointer(slot)
            .unwrap_or_else(|| panic!("slot {slot} past the {count} line pointers"))
    }

    /// Byte range of the tuple at `slot`, asserting its line pointer is NORMAL.
    fn tuple_range(&self, slot: SlotId) -> std::ops::Range<usize> {
        match self.existing(slot) {
            LinePointer::Normal { offset, len } => {
                usize::from(offset)..usize::from(offset) + usize::from(len)
            }
            lp => panic!("slot {slot} is {lp:?}, not a tuple"),
        }
    }

    /// Frees what line pointer `slot` holds (tuple bytes become garbage, a DEAD pointer stops
    /// counting) and writes `lp` in its place; returns the tuple bytes freed.
    fn replace_line_pointer(&mut self, slot: SlotId, lp: LinePointer) -> usize {
        let mut freed = 0;
        match self.existing(slot) {
            LinePointer::Normal { len, .. } => {
                freed = usize::from(len);
                let garbage = self.as_ref().garbage_size() + freed;
                self.set_garbage_size(garbage);
            }
            LinePointer::Dead => {
                let dead = self.as_ref().dead_count() - 1;
                self.set_dead_count(dead);
            }
            LinePointer::Redirect(_) | LinePointer::Unused => {}
        }
        if lp == LinePointer::Dead {
            let dead = self.as_ref().dead_count() + 1;
            self.set_dead_count(dead);
        }
        self.write_line_pointer(slot, lp);
        freed
    }

    /// Cuts UNUSED line pointers off the end of the array and sets `PD_HAS_FREE_LINES` to
    /// whether any remain; returns how many were cut.
    fn tidy_line_pointers(&mut self) -> usize {
        let mut count = self.as_ref().slot_count();
        let before = count;
        while count > 0
            && self.as_ref().line_pointer(SlotId(count as u16 - 1)) == Some(LinePointer::Unused)
        {
            count -= 1;
        }
        let lower = line_pointer_offset(count);
        self.bytes[lower..line_pointer_offset(before)].fill(0);
        self.set_lower(lower);
        let any_unused = (0..count)
            .any(|s| self.as_ref().line_pointer(SlotId(s as u16)) == Some(LinePointer::Unused));
        let flags = self.bytes[HEAP_FLAGS_OFFSET] & !PD_HAS_FREE_LINES;
        self.bytes[HEAP_FLAGS_OFFSET] = if any_unused {
            flags | PD_HAS_FREE_LINES
        } else {
            flags
        };
        before - count
    }

    /// Adds a tuple holding `row` with `flags` (none, or [`TupleFlags::HEAP_ONLY`] for the new
    /// version of a HOT update) and its own TID as ctid; returns its slot, or `None` (page
    /// unchanged) if it does not fit ([`HeapPageRef::fits`]).
    ///
    /// As PostgreSQL's `PageAddItem`: the first UNUSED line pointer is reused, else one is
    /// appended. If the gap between the array and the tuples is too small but the garbage
    /// makes up the difference, the tuple area is compacted first.
    ///
    /// Panics if `row` is longer than [`row_size_max`] (the engine refuses such rows before
    /// looking for a page) or `flags` has bits other than HEAP_ONLY.
    pub fn insert(&mut self, row: &[u8], flags: TupleFlags) -> Option<SlotId> {
        let page = self.as_ref();
        let row_max = row_size_max(self.page_size);
        assert!(
            row.len() <= row_max,
            "row of {} bytes exceeds {row_max}",
            row.len()
        );
        assert!(
            TupleFlags::HEAP_ONLY.contains(flags),
            "insert with flags {flags:?}"
        );
        let tuple_size = TUPLE_HEADER_SIZE + row.len();
        if tuple_size > page.free_space() {
            return None;
        }
        let count = page.slot_count();
        let slot = if page.has_free_lines() {
            (0..count)
                .map(|s| SlotId(s as u16))
                .find(|&s| page.line_pointer(s) == Some(LinePointer::Unused))
                .expect("PD_HAS_FREE_LINES is exact")
        } else {
            SlotId(count as u16)
        };
        let page_id = page.page_id();
        let appended = slot.index() == count;
        let lower = page.lower() + if appended { LINE_POINTER_SIZE } else { 0 };
        if page.upper() < lower + tuple_size {
            self.compact();
        }
        let upper = self.as_ref().upper();
        assert!(
            upper >= lower + tuple_size,
            "free space {} promised room for {tuple_size} bytes",
            upper - lower
        );
        let offset = upper - tuple_size;
        let t = &mut self.bytes[offset..upper];
        put_u16(t, TUPLE_FLAGS_OFFSET, flags.0);
        put_u64(t, TUPLE_CTID_PAGE_OFFSET, page_id.0);
        put_u16(t, TUPLE_CTID_SLOT_OFFSET, slot.0);
        t[TUPLE_HEADER_SIZE..].copy_from_slice(row);
        self.set_upper(offset);
        self.set_lower(lower);
        self.write_line_pointer(
            slot,
            LinePointer::Normal {
                offset: offset as u16,
                len: tuple_size as u16,
            },
        );
        if !appended {
            self.tidy_line_pointers();
        }
        Some(slot)
    }

    /// The row bytes of the tuple at `slot`, for changing them in place (`None` if the line
    /// pointer is not NORMAL).
    pub fn tuple_mut(&mut self, slot: SlotId) -> Option<&mut [u8]> {
        let LinePointer::Normal { offset, len } = self.as_ref().line_pointer(slot)? else {
            return None;
        };
        let (offset, len) = (usize::from(offset), usize::from(len));
        self.bytes.get_mut(offset + TUPLE_HEADER_SIZE..offset + len)
    }

    /// Overwrites the row at `slot` with `row` if it has the same length (PostgreSQL's
    /// `heap_inplace_update`); returns false, changing nothing, otherwise.
    pub fn replace_in_place(&mut self, slot: SlotId, row: &[u8]) -> bool {
        let range = self.tuple_range(slot);
        if range.len() != TUPLE_HEADER_SIZE + row.len() {
            return false;
        }
        self.bytes[range.start + TUPLE_HEADER_SIZE..range.end].copy_from_slice(row);
        true
    }

    /// Sets the flags of the tuple at `slot` (raw: the caller keeps invariant 5).
    pub fn set_flags(&mut self, slot: SlotId, flags: TupleFlags) {
        let at = self.tuple_range(slot).start + TUPLE_FLAGS_OFFSET;
        put_u16(self.bytes, at, flags.0);
    }

    /// Sets the ctid of the tuple at `slot` (raw: the caller keeps invariant 5).
    pub fn set_ctid(&mut self, slot: SlotId, ctid: Tid) {
        let start = self.tuple_range(slot).start;
        put_u64(self.bytes, start + TUPLE_CTID_PAGE_OFFSET, ctid.page_id.0);
        put_u16(self.bytes, start + TUPLE_CTID_SLOT_OFFSET, ctid.slot.0);
    }

    /// Marks the live tuple at `slot` deleted.
    pub fn set_deleted(&mut self, slot: SlotId) {
        let t = self.as_ref().tuple(slot);
        let flags = t.map(|t| t.flags).unwrap_or_default();
        assert!(
            t.is_some_and(|t| t.is_live()),
            "delete of slot {slot}: {flags:?}"
        );
        self.set_flags(slot, flags | TupleFlags::DELETED);
    }

    /// Marks the live tuple at `slot` updated, its newer version at `next`. A HOT update
    /// (`hot`) needs `next` on this page, a heap-only tuple inserted just before.
    pub fn set_updated(&mut self, slot: SlotId, next: Tid, hot: bool) {
        let page = self.as_ref();
        let t = page.tuple(slot);
        let flags = t.map(|t| t.flags).unwrap_or_default();
        assert!(
            t.is_some_and(|t| t.is_live()),
            "update of slot {slot}: {flags:?}"
        );
        assert_ne!(next, Tid::new(page.page_id(), slot), "update to itself");
        let mut new_flags = flags | TupleFlags::UPDATED;
        if hot {
            assert_eq!(next.page_id, page.page_id(), "HOT update to another page");
            let heap_only = page
                .tuple(next.slot)
                .is_some_and(|t| t.flags.contains(TupleFlags::HEAP_ONLY));
            assert!(heap_only, "HOT update to {next}, not a heap-only tuple");
            new_flags = new_flags | TupleFlags::HOT_UPDATED;
        }
        self.set_flags(slot, new_flags);
        self.set_ctid(slot, next);
    }

    /// Makes the NORMAL or REDIRECT line pointer at `slot` DEAD: the tuple's storage is freed,
    /// its index entries remain for VACUUM.
    pub fn mark_dead(&mut self, slot: SlotId) {
        let lp = self.existing(slot);
        assert!(
            matches!(lp, LinePointer::Normal { .. } | LinePointer::Redirect(_)),
            "mark_dead of slot {slot}: {lp:?}"
        );
        self.replace_line_pointer(slot, LinePointer::Dead);
    }

    /// Makes the NORMAL or REDIRECT line pointer at `slot` a REDIRECT to `to` (another slot):
    /// the root of a pruned HOT chain. A tuple's storage is freed.
    pub fn set_redirect(&mut self, slot: SlotId, to: SlotId) {
        let lp = self.existing(slot);
        assert!(
            matches!(lp, LinePointer::Normal { .. } | LinePointer::Redirect(_)),
            "set_redirect of slot {slot}: {lp:?}"
        );
        let count = self.as_ref().slot_count();
        assert!(
            to != slot && to.index() < count,
            "redirect {slot} -> {to} of {count}"
        );
        self.replace_line_pointer(slot, LinePointer::Redirect(to));
    }

    /// Makes the line pointer at `slot` UNUSED (VACUUM's second pass does this to DEAD
    /// pointers once their index entries are gone), freeing any storage, and trims UNUSED
    /// pointers off the end of the array.
    pub fn set_unused(&mut self, slot: SlotId) {
        let lp = self.existing(slot);
        assert_ne!(lp, LinePointer::Unused, "set_unused of unused slot {slot}");
        self.replace_line_pointer(slot, LinePointer::Unused);
        self.tidy_line_pointers();
    }

    /// Moves the tuples together at the end of the page, dropping the garbage between them
    /// (PostgreSQL's `PageRepairFragmentation`/`compactify_tuples`). Tuples keep their
    /// physical order: taken from the highest offset down, each moves up (or stays), so no
    /// move overwrites a tuple not yet moved. The freed bytes are zeroed.
    pub fn compact(&mut self) {
        let page = self.as_ref();
        let mut tuples: Vec<(usize, usize, SlotId)> = (0..page.slot_count())
            .filter_map(|s| match page.line_pointer(SlotId(s as u16)) {
                Some(LinePointer::Normal { offset, len }) => {
                    Some((usize::from(offset), usize::from(len), SlotId(s as u16)))
                }
                _ => None,
            })
            .collect();
        let lower = page.lower();
        tuples.sort_unstable_by(|a, b| b.cmp(a));
        let mut top = self.page_size;
        for (offset, len, slot) in tuples {
            top -= len;
            debug_assert!(top >= offset, "compaction moves tuples up");
            if top != offset {
                self.bytes.copy_within(offset..offset + len, top);
                self.write_line_pointer(
                    slot,
                    LinePointer::Normal {
                        offset: top as u16,
                        len: len as u16,
                    },
                );
            }
        }
        self.bytes[lower..top].fill(0);
        self.set_upper(top);
        self.set_garbage_size(0);
    }

    /// Prunes the page (PostgreSQL's `heap_page_prune`, without snapshots: a version is dead
    /// when it is not live). For each HOT chain, in the order of its root's slot:
    ///
    /// - the dead heap-only versions before the first live one become UNUSED and the root a
    ///   REDIRECT to that live version (a root tuple's storage is freed);
    /// - if no version is live, every heap-only version becomes UNUSED and the root DEAD
    ///   (its index entries remain until VACUUM); a dead tuple outside any chain is the
    ///   one-version case;
    /// - a live root, or a REDIRECT to a live version, is left as it is.
    ///
    /// Dead heap-only tuples that no root reaches (which [`validate`] does not allow) become
    /// UNUSED too, as in PostgreSQL. Then trailing UNUSED pointers are trimmed and the tuple
    /// area is compacted. The result depends only on the page bytes (see the module doc on
    /// logging).
    pub fn prune(&mut self) -> PruneResult {
        let page = self.as_ref();
        let count = page.slot_count();
        let mut visited = vec![false; count];
        let mut actions = Vec::new();
        // The chain from `start` (a tuple), following HOT links to unvisited heap-only tuples.
        let walk = |start: SlotId, visited: &mut Vec<bool>| -> Vec<SlotId> {
            let mut chain = vec![start];
            visited[start.index()] = true;
            let mut cur = start;
            while let Some(next) = page.hot_successor(cur) {
                if visited[next.index()] {
                    break;
                }
                visited[next.index()] = true;
                chain.push(next);
                cur = next;
            }
            chain
        };
        for s in 0..count {
            let root = SlotId(s as u16);
            let members = match page.line_pointer(root) {
                Some(LinePointer::Normal { .. }) => {
                    let Some(t) = page.tuple(root) else { continue };
                    if t.flags.contains(TupleFlags::HEAP_ONLY) {
                        continue;
                    }
                    walk(root, &mut visited)
                }
                Some(LinePointer::Redirect(_)) => {
                    visited[s] = true;
                    match page.hot_successor(root) {
                        Some(first) if !visited[first.index()] => {
                            let mut chain = vec![root];
                            chain.extend(walk(first, &mut visited));
                            chain
                        }
                        _ => {
                            actions.push(PruneAction::Dead(root));
                            continue;
                        }
                    }
                }
                _ => continue,
            };
            // members[0] is the root (a tuple or a REDIRECT); the rest are heap-only tuples.
            let live = members
                .iter()
                .position(|&m| page.tuple(m).is_some_and(|t| t.is_live()));
            match live {
                Some(0) => {}
                Some(1) if matches!(page.line_pointer(root), Some(LinePointer::Redirect(_))) => {}
                Some(k) => {
                    actions.extend(members[1..k].iter().map(|&m| PruneAction::Unused(m)));
                    actions.push(PruneAction::Redirect(root, members[k]));
                }
                None => {
                    actions.extend(members[1..].iter().map(|&m| PruneAction::Unused(m)));
                    actions.push(PruneAction::Dead(root));
                }
            }
        }
        for (s, &seen) in visited.iter().enumerate() {
            let slot = SlotId(s as u16);
            if !seen && page.tuple(slot).is_some_and(|t| !t.is_live()) {
                actions.push(PruneAction::Unused(slot));
            }
        }
        let garbage_before = page.garbage_size();
        let mut result = PruneResult::default();
        for action in actions {
            let freed = match action {
                PruneAction::Unused(slot) => {
                    result.line_pointers_unused_count += 1;
                    self.replace_line_pointer(slot, LinePointer::Unused)
                }
                PruneAction::Dead(slot) => {
                    result.line_pointers_dead_count += 1;
                    self.replace_line_pointer(slot, LinePointer::Dead)
                }
                PruneAction::Redirect(slot, to) => {
                    result.line_pointers_redirected_count += 1;
                    self.replace_line_pointer(slot, LinePointer::Redirect(to))
                }
            };
            if freed > 0 {
                result.tuples_removed_count += 1;
                result.tuple_bytes_freed += freed;
            }
        }
        result.line_pointers_trimmed_count = self.tidy_line_pointers();
        result.page_changed = result.line_pointers_unused_count
            + result.line_pointers_dead_count
            + result.line_pointers_redirected_count
            + garbage_before
            > 0;
        if self.as_ref().garbage_size() > 0 {
            self.compact();
        }
        result
    }
}

/// The free-space category of a page with `free_bytes` free ([`HeapPageRef::free_space`]),
/// as PostgreSQL's free space map records it in one byte: `free_bytes / (page_size / 256)`,
/// at most 254, and 255 for a page that takes the largest tuple (an empty page).
pub fn fsm_category(free_bytes: usize, page_size: usize) -> u8 {
    if free_bytes >= tuple_size_max(page_size) {
        return FSM_CATEGORY_MAX;
    }
    let category = free_bytes / fsm_category_step(page_size);
    category.min(usize::from(FSM_CATEGORY_MAX) - 1) as u8
}

/// The least free space of any page in `category` (the inverse of [`fsm_category`], rounding
/// down): every page of that category has at least this many bytes free.
pub fn fsm_category_free_min(category: u8, page_size: usize) -> usize {
    if category == FSM_CATEGORY_MAX {
        return tuple_size_max(page_size);
    }
    usize::from(category) * fsm_category_step(page_size)
}

/// The smallest category whose pages surely take a tuple of `tuple_size` bytes (header
/// included): the FSM search key for an insert (PostgreSQL's `fsm_space_needed_to_cat`).
pub fn fsm_category_needed(tuple_size: usize, page_size: usize) -> u8 {
    let tuple_max = tuple_size_max(page_size);
    assert!(
        tuple_size <= tuple_max,
        "tuple of {tuple_size} bytes exceeds {tuple_max}"
    );
    let category = tuple_size.div_ceil(fsm_category_step(page_size)).max(1);
    category.min(usize::from(FSM_CATEGORY_MAX)) as u8
}

/// Bytes of free space per FSM category step.
fn fsm_category_step(page_size: usize) -> usize {
    (page_size / FSM_CATEGORY_COUNT).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use storelab_pager::page::init_page;

    const PAGE_ID: PageId = PageId(7);

    /// A formatted empty heap page of `size` bytes at [`PAGE_ID`].
    fn empty(size: usize) -> Vec<u8> {
        let mut page = vec![0u8; size];
        init_page(&mut page, PAGE_ID, HEAP_PAGE);
        HeapPageMut::new(&mut page, size).init();
        page
    }

    fn tid(slot: SlotId) -> Tid {
        Tid::new(PAGE_ID, slot)
    }

    fn valid(page: &[u8]) {
        if let Err(e) = validate(page, page.len()) {
            panic!("invalid page: {e}\n{}", describe(page));
        }
    }

    /// The line pointers as text, for assertion messages and shape checks.
    fn describe(page: &[u8]) -> String {
        let p = HeapPageRef::new(page, page.len());
        (0..p.slot_count())
            .map(|s| {
                let slot = SlotId(s as u16);
                match p.line_pointer(slot).unwrap() {
                    LinePointer::Unused => format!("{s}:unused"),
                    LinePointer::Dead => format!("{s}:dead"),
                    LinePointer::Redirect(to) => format!("{s}:->{to}"),
                    LinePointer::Normal { .. } => {
                        let t = p.tuple(slot).unwrap();
                        format!("{s}:{:?}", t.flags)
                    }
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Updates the live tuple at `slot` to `row` as a HOT update; returns the new slot.
    fn hot_update(page: &mut [u8], slot: SlotId, row: &[u8]) -> SlotId {
        let size = page.len();
        let mut p = HeapPageMut::new(page, size);
        let new = p
            .insert(row, TupleFlags::HEAP_ONLY)
            .expect("room for the update");
        p.set_updated(slot, tid(new), true);
        new
    }

    fn row_at(page: &[u8], slot: SlotId) -> Vec<u8> {
        HeapPageRef::new(page, page.len())
            .tuple(slot)
            .unwrap()
            .row
            .to_vec()
    }

    /// A formatted page is valid, empty, and offers the largest tuple.
    #[test]
    fn init_makes_an_empty_valid_page() {
        for size in [512, 4096, 8192, 16384, HEAP_PAGE_SIZE_MAX] {
            let page = empty(size);
            valid(&page);
            let p = HeapPageRef::new(&page, size);
            assert_eq!(p.slot_count(), 0);
            assert_eq!(p.free_space(), tuple_size_max(size));
            assert_eq!(p.page_id(), PAGE_ID);
            assert_eq!(fsm_category(p.free_space(), size), 255);
        }
    }

    /// Inserts fill the page exactly as `free_space` predicts; every row reads back with its
    /// own TID as ctid, and the first refused insert leaves the page unchanged.
    #[test]
    fn insert_until_full_then_refuses() {
        let size = 4096;
        let mut page = empty(size);
        let mut rows = Vec::new();
        for i in 0u32.. {
            let row: Vec<u8> = (0..(i % 50) as u8 + 20).map(|b| b ^ i as u8).collect();
            let free = HeapPageRef::new(&page, size).free_space();
            let before = page.clone();
            match HeapPageMut::new(&mut page, size).insert(&row, TupleFlags::NONE) {
                Some(slot) => {
                    assert!(TUPLE_HEADER_SIZE + row.len() <= free);
                    assert_eq!(slot, SlotId(rows.len() as u16), "slots are appended");
                    let after = HeapPageRef::new(&page, size).free_space();
                    assert_eq!(
                        after,
                        free - TUPLE_HEADER_SIZE - row.len() - LINE_POINTER_SIZE
                    );
                    rows.push(row);
                }
                None => {
                    assert!(
                        TUPLE_HEADER_SIZE + row.len() > free,
                        "refused a fitting row"
                    );
                    assert_eq!(page, before, "a refused insert changed the page");
                    break;
                }
            }
            valid(&page);
        }
        assert!(rows.len() > 40, "{} rows", rows.len());
        let p = HeapPageRef::new(&page, size);
        for (s, row) in rows.iter().enumerate() {
            let t = p.tuple(SlotId(s as u16)).unwrap();
            assert_eq!(t.row, &row[..]);
            assert_eq!(t.ctid, tid(SlotId(s as u16)));
            assert!(t.is_live());
        }
        assert_eq!(p.tuples().count(), rows.len());
    }

    /// An insert takes the first UNUSED line pointer before appending one, and the free-lines
    /// flag follows whether any UNUSED pointer remains.
    #[test]
    fn insert_reuses_first_unused_line_pointer() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        for i in 0..5u8 {
            p.insert(&[i; 10], TupleFlags::NONE).unwrap();
        }
        p.set_unused(SlotId(3));
        p.set_unused(SlotId(1));
        assert!(p.as_ref().has_free_lines());
        let free = p.as_ref().free_space();
        assert_eq!(p.insert(b"again", TupleFlags::NONE), Some(SlotId(1)));
        assert_eq!(p.as_ref().free_space(), free - TUPLE_HEADER_SIZE - 5);
        assert!(p.as_ref().has_free_lines());
        assert_eq!(p.insert(b"more", TupleFlags::NONE), Some(SlotId(3)));
        assert!(!p.as_ref().has_free_lines());
        assert_eq!(p.insert(b"last", TupleFlags::NONE), Some(SlotId(5)));
        valid(&page);
        assert_eq!(row_at(&page, SlotId(1)), b"again");
        assert_eq!(row_at(&page, SlotId(3)), b"more");
        assert_eq!(row_at(&page, SlotId(4)), [4; 10]);
    }

    /// Freeing the last line pointers shortens the array, past every UNUSED one before them.
    #[test]
    fn set_unused_trims_trailing_line_pointers() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        for i in 0..4u8 {
            p.insert(&[i; 8], TupleFlags::NONE).unwrap();
        }
        p.mark_dead(SlotId(1));
        p.set_unused(SlotId(2));
        assert_eq!(p.as_ref().slot_count(), 4);
        p.set_unused(SlotId(3));
        assert_eq!(p.as_ref().slot_count(), 2, "slots 2 and 3 trimmed");
        assert!(!p.as_ref().has_free_lines());
        assert_eq!(p.as_ref().dead_count(), 1);
        p.set_unused(SlotId(1));
        assert_eq!(p.as_ref().slot_count(), 1);
        assert_eq!(p.as_ref().dead_count(), 0);
        valid(&page);
        let mut p = HeapPageMut::new(&mut page, size);
        p.set_unused(SlotId(0));
        assert_eq!(p.as_ref().slot_count(), 0);
        assert_eq!(
            p.as_ref().free_space(),
            tuple_size_max(size) - 4 * 8 - 12 * 4 + 48 + 32
        );
        valid(&page);
    }

    /// When the gap is too small but garbage makes up the difference, an insert compacts the
    /// tuple area; every other tuple keeps its slot and bytes.
    #[test]
    fn insert_defragments_and_keeps_tuples_intact() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        let mut rows = Vec::new();
        while let Some(slot) = p.insert(&[rows.len() as u8; 50], TupleFlags::NONE) {
            rows.push((slot, vec![rows.len() as u8; 50]));
        }
        // Free every other tuple: plenty of garbage, but no gap.
        for &(slot, _) in rows.iter().step_by(2) {
            p.mark_dead(slot);
        }
        let gap = p.as_ref().upper() - p.as_ref().lower();
        assert!(gap < TUPLE_HEADER_SIZE + 120 + LINE_POINTER_SIZE);
        assert!(p.as_ref().garbage_size() > 0);
        let big = vec![0xAB; 120];
        let slot = p
            .insert(&big, TupleFlags::NONE)
            .expect("fits after compaction");
        assert_eq!(slot.index(), rows.len());
        valid(&page);
        let r = HeapPageRef::new(&page, size);
        assert_eq!(r.garbage_size(), 0, "compaction reclaimed all garbage");
        for &(slot, ref row) in rows.iter().skip(1).step_by(2) {
            assert_eq!(r.tuple(slot).unwrap().row, &row[..]);
            assert_eq!(r.tuple(slot).unwrap().ctid, tid(slot));
        }
        assert_eq!(r.tuple(slot).unwrap().row, &big[..]);
    }

    /// Compaction keeps contents and physical order, zeroes the gap and is idempotent.
    #[test]
    fn compact_keeps_contents_and_zeroes_the_gap() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        for i in 0..8u8 {
            p.insert(&vec![i; 10 + usize::from(i)], TupleFlags::NONE)
                .unwrap();
        }
        p.set_unused(SlotId(2));
        p.mark_dead(SlotId(5));
        let before: Vec<_> = p
            .as_ref()
            .tuples()
            .map(|(s, t)| (s, t.row.to_vec()))
            .collect();
        p.compact();
        valid(&page);
        let r = HeapPageRef::new(&page, size);
        let after: Vec<_> = r.tuples().map(|(s, t)| (s, t.row.to_vec())).collect();
        assert_eq!(before, after);
        assert!(page[r.lower()..r.upper()].iter().all(|&b| b == 0));
        let once = page.clone();
        HeapPageMut::new(&mut page, size).compact();
        assert_eq!(page, once, "compacting a compact page changes nothing");
    }

    /// DEAD pointers cost no tuple space, but the array stops at `slot_count_max`: then only a
    /// reused pointer takes a tuple.
    #[test]
    fn slot_count_max_limits_the_line_pointer_array() {
        let size = 512;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        let max = slot_count_max(size);
        for _ in 0..max {
            let slot = p.insert(&[], TupleFlags::NONE).unwrap();
            p.mark_dead(slot);
        }
        assert_eq!(p.as_ref().slot_count(), max);
        assert_eq!(p.as_ref().free_space(), 0);
        assert_eq!(p.insert(&[], TupleFlags::NONE), None);
        p.set_unused(SlotId(4));
        assert_eq!(p.insert(&[1, 2, 3], TupleFlags::NONE), Some(SlotId(4)));
        valid(&page);
    }

    /// A same-length replacement overwrites the row; another length is refused.
    #[test]
    fn replace_in_place_needs_the_same_length() {
        let size = 512;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        let slot = p.insert(b"abc", TupleFlags::NONE).unwrap();
        assert!(p.replace_in_place(slot, b"xyz"));
        assert!(!p.replace_in_place(slot, b"wxyz"));
        p.tuple_mut(slot).unwrap()[0] = b'X';
        assert_eq!(row_at(&page, slot), b"Xyz");
        valid(&page);
    }

    /// Deleting and updating set the flags and ctid that readers and pruning follow, and
    /// `hot_search` finds the live end of a chain from its root.
    #[test]
    fn updates_build_hot_chains_that_hot_search_follows() {
        let size = 1024;
        let mut page = empty(size);
        let root = HeapPageMut::new(&mut page, size)
            .insert(b"v1", TupleFlags::NONE)
            .unwrap();
        let v2 = hot_update(&mut page, root, b"v2");
        let v3 = hot_update(&mut page, v2, b"v3");
        valid(&page);
        let r = HeapPageRef::new(&page, size);
        assert_eq!(r.hot_chain(root), [root, v2, v3]);
        assert_eq!(r.hot_search(root), Some(v3));
        let t = r.tuple(root).unwrap();
        assert_eq!(t.flags, TupleFlags::UPDATED | TupleFlags::HOT_UPDATED);
        assert_eq!(t.ctid, tid(v2));
        assert_eq!(
            r.tuple(v3).unwrap().flags,
            TupleFlags::HEAP_ONLY,
            "the newest version is live"
        );
        HeapPageMut::new(&mut page, size).set_deleted(v3);
        valid(&page);
        assert_eq!(HeapPageRef::new(&page, size).hot_search(root), None);
    }

    /// A wholly dead HOT chain: the root becomes DEAD (its index entries remain), the
    /// heap-only versions UNUSED and trimmed, and all their bytes come back.
    #[test]
    fn prune_of_a_dead_chain_leaves_a_dead_root() {
        let size = 1024;
        let mut page = empty(size);
        let root = HeapPageMut::new(&mut page, size)
            .insert(b"v1", TupleFlags::NONE)
            .unwrap();
        let v2 = hot_update(&mut page, root, b"v2");
        let v3 = hot_update(&mut page, v2, b"v3");
        HeapPageMut::new(&mut page, size).set_deleted(v3);
        let result = HeapPageMut::new(&mut page, size).prune();
        valid(&page);
        assert_eq!(describe(&page), "0:dead");
        assert_eq!(
            result,
            PruneResult {
                tuples_removed_count: 3,
                line_pointers_dead_count: 1,
                line_pointers_unused_count: 2,
                line_pointers_redirected_count: 0,
                line_pointers_trimmed_count: 2,
                tuple_bytes_freed: 3 * (TUPLE_HEADER_SIZE + 2),
                page_changed: true,
            }
        );
        let r = HeapPageRef::new(&page, size);
        assert_eq!(r.free_space(), tuple_size_max(size) - LINE_POINTER_SIZE);
        assert_eq!(r.dead_count(), 1);
    }

    /// The live version at the end of a chain whose slots are out of order (reused pointers):
    /// the root redirects to it, the dead versions between become UNUSED.
    #[test]
    fn prune_redirects_the_root_to_the_first_live_version() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        for i in 0..4u8 {
            p.insert(&[i; 4], TupleFlags::NONE).unwrap();
        }
        p.set_unused(SlotId(1));
        p.set_unused(SlotId(2));
        let root = SlotId(3);
        let v2 = hot_update(&mut page, root, b"v2");
        let v3 = hot_update(&mut page, v2, b"v3");
        let v4 = hot_update(&mut page, v3, b"v4");
        assert_eq!((v2, v3, v4), (SlotId(1), SlotId(2), SlotId(4)));
        valid(&page);
        let result = HeapPageMut::new(&mut page, size).prune();
        valid(&page);
        assert_eq!(
            describe(&page),
            "0:NONE 1:unused 2:unused 3:->4 4:HEAP_ONLY"
        );
        assert_eq!(result.tuples_removed_count, 3);
        assert_eq!(result.line_pointers_redirected_count, 1);
        assert_eq!(result.line_pointers_unused_count, 2);
        let r = HeapPageRef::new(&page, size);
        assert_eq!(r.hot_search(root), Some(v4));
        assert_eq!(row_at(&page, v4), b"v4");
        assert_eq!(r.garbage_size(), 0);
        let again = HeapPageMut::new(&mut page, size).prune();
        assert_eq!(
            again,
            PruneResult::default(),
            "a pruned page prunes to itself"
        );
    }

    /// A chain that already starts with a REDIRECT grows again; pruning points the REDIRECT
    /// further along, and when that chain dies, the REDIRECT becomes DEAD.
    #[test]
    fn prune_moves_an_existing_redirect_then_kills_it() {
        let size = 1024;
        let mut page = empty(size);
        let root = HeapPageMut::new(&mut page, size)
            .insert(b"v1", TupleFlags::NONE)
            .unwrap();
        let v2 = hot_update(&mut page, root, b"v2");
        HeapPageMut::new(&mut page, size).prune();
        assert_eq!(describe(&page), "0:->1 1:HEAP_ONLY");
        let v3 = hot_update(&mut page, v2, b"v3");
        let v4 = hot_update(&mut page, v3, b"v4");
        assert_eq!(v3, SlotId(2));
        let r = HeapPageMut::new(&mut page, size).prune();
        valid(&page);
        assert_eq!(describe(&page), "0:->3 1:unused 2:unused 3:HEAP_ONLY");
        assert_eq!(r.line_pointers_redirected_count, 1);
        assert_eq!(
            r.tuples_removed_count, 2,
            "a REDIRECT has no storage to free"
        );
        assert_eq!(HeapPageRef::new(&page, size).hot_search(root), Some(v4));
        HeapPageMut::new(&mut page, size).set_deleted(v4);
        let r = HeapPageMut::new(&mut page, size).prune();
        valid(&page);
        assert_eq!(describe(&page), "0:dead");
        assert_eq!(r.line_pointers_dead_count, 1);
        assert_eq!(r.line_pointers_unused_count, 1);
    }

    /// Dead tuples outside HOT chains (deleted, or updated to another page or slot without
    /// HOT) become DEAD; live ones and their chains are left alone.
    #[test]
    fn prune_makes_dead_non_hot_tuples_dead_pointers() {
        let size = 1024;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        let kept = p.insert(b"kept", TupleFlags::NONE).unwrap();
        let deleted = p.insert(b"deleted", TupleFlags::NONE).unwrap();
        let moved = p.insert(b"moved away", TupleFlags::NONE).unwrap();
        let moved_here = p.insert(b"moved here", TupleFlags::NONE).unwrap();
        let new_here = p.insert(b"new here", TupleFlags::NONE).unwrap();
        p.set_deleted(deleted);
        p.set_updated(moved, Tid::new(PageId(99), SlotId(3)), false);
        p.set_updated(moved_here, tid(new_here), false);
        valid(&page);
        let live_chain = HeapPageMut::new(&mut page, size)
            .insert(b"c1", TupleFlags::NONE)
            .unwrap();
        let c2 = hot_update(&mut page, live_chain, b"c2");
        let r = HeapPageMut::new(&mut page, size).prune();
        valid(&page);
        assert_eq!(
            describe(&page),
            "0:NONE 1:dead 2:dead 3:dead 4:NONE 5:->6 6:HEAP_ONLY"
        );
        assert_eq!(r.line_pointers_dead_count, 3);
        assert_eq!(r.line_pointers_redirected_count, 1);
        assert_eq!(r.tuples_removed_count, 4);
        assert_eq!(row_at(&page, kept), b"kept");
        assert_eq!(row_at(&page, new_here), b"new here");
        assert_eq!(row_at(&page, c2), b"c2");
    }

    /// A page with nothing dead and no garbage prunes to itself and says so.
    #[test]
    fn prune_of_a_clean_page_changes_nothing() {
        let size = 512;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        p.insert(b"a", TupleFlags::NONE).unwrap();
        p.insert(b"b", TupleFlags::NONE).unwrap();
        let before = page.clone();
        let r = HeapPageMut::new(&mut page, size).prune();
        assert_eq!(r, PruneResult::default());
        assert!(!r.page_changed);
        assert_eq!(page, before);
    }

    /// Dead heap-only tuples no root reaches (an invalid page, but pruning must cope) become
    /// UNUSED, as PostgreSQL prunes orphaned heap-only tuples; live orphans are left alone.
    #[test]
    fn prune_frees_dead_orphans() {
        let size = 512;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        let dead_orphan = p.insert(b"dead", TupleFlags::HEAP_ONLY).unwrap();
        let live_orphan = p.insert(b"live", TupleFlags::HEAP_ONLY).unwrap();
        p.insert(b"root", TupleFlags::NONE).unwrap();
        p.set_deleted(dead_orphan);
        assert!(matches!(
            validate(&page, size),
            Err(HeapPageError::Chain { .. })
        ));
        let r = HeapPageMut::new(&mut page, size).prune();
        assert_eq!(r.line_pointers_unused_count, 1);
        assert_eq!(describe(&page), "0:unused 1:HEAP_ONLY 2:NONE");
        assert_eq!(row_at(&page, live_orphan), b"live");
    }

    /// A valid page with two live tuples and a HOT chain, for the corruption tests.
    fn sample() -> Vec<u8> {
        let size = 512;
        let mut page = empty(size);
        let mut p = HeapPageMut::new(&mut page, size);
        p.insert(b"first", TupleFlags::NONE).unwrap();
        let root = p.insert(b"second", TupleFlags::NONE).unwrap();
        hot_update(&mut page, root, b"third");
        valid(&page);
        page
    }

    fn expect_error(page: &[u8], what: &str) -> HeapPageError {
        match validate(page, page.len()) {
            Ok(()) => panic!("{what}: accepted\n{}", describe(page)),
            Err(e) => e,
        }
    }

    /// Header damage is caught with the field named.
    #[test]
    fn validate_rejects_bad_headers() {
        let size = 512;
        let mut page = sample();
        page[PAGE_TYPE_OFFSET] = 17;
        assert_eq!(
            expect_error(&page, "type"),
            HeapPageError::PageType { found: 17 }
        );
        let mut page = sample();
        page[HEAP_VERSION_OFFSET] = 2;
        assert_eq!(
            expect_error(&page, "version"),
            HeapPageError::Version { found: 2 }
        );
        for (at, value) in [
            (LOWER_OFFSET, 38),
            (LOWER_OFFSET, 30),
            (LOWER_OFFSET, 500),
            (UPPER_OFFSET, 600),
            (UPPER_OFFSET, 40),
            (HEAP_FLAGS_OFFSET, 0x80),
            (RESERVED_OFFSET, 1),
        ] {
            let mut page = sample();
            put_u16(&mut page, at, value);
            if at == HEAP_FLAGS_OFFSET {
                page[HEAP_FLAGS_OFFSET] = value as u8;
                page[HEAP_FLAGS_OFFSET + 1] = HEAP_PAGE_VERSION;
                page[HEAP_VERSION_OFFSET] = HEAP_PAGE_VERSION;
            }
            expect_error(&page, &format!("{value} at {at}"));
        }
        let mut page = sample();
        put_u16(&mut page, DEAD_COUNT_OFFSET, 1);
        assert!(matches!(
            expect_error(&page, "dead count"),
            HeapPageError::Count { field: "dead", .. }
        ));
        let mut page = sample();
        page[HEAP_FLAGS_OFFSET] = PD_HAS_FREE_LINES;
        expect_error(&page, "free lines flag");
        let mut page = sample();
        put_u16(&mut page, GARBAGE_SIZE_OFFSET, 3);
        assert!(matches!(
            expect_error(&page, "garbage"),
            HeapPageError::Accounting { .. }
        ));
        assert!(matches!(
            validate(&sample(), 100),
            Err(HeapPageError::PageSize { .. })
        ));
        assert!(matches!(
            validate(&sample()[..400], size),
            Err(HeapPageError::PageSize { .. })
        ));
    }

    /// Line pointer and tuple damage: overlaps, storage on dead pointers, ctids and flags.
    #[test]
    fn validate_rejects_bad_line_pointers_and_tuples() {
        let lp_at = |slot: usize| line_pointer_offset(slot);
        let page = sample();
        let lp0 = get_u32(&page, lp_at(0));
        let lp1 = get_u32(&page, lp_at(1));
        let mut bad = page.clone();
        put_u32(&mut bad, lp_at(1), lp1 + (1 << LP_LENGTH_SHIFT));
        assert!(matches!(
            expect_error(&bad, "overlap"),
            HeapPageError::Overlap { .. }
        ));
        let mut bad = page.clone();
        put_u32(&mut bad, lp_at(0), LP_DEAD << LP_STATE_SHIFT | 5);
        assert!(matches!(
            expect_error(&bad, "dead with storage"),
            HeapPageError::LinePointer { .. }
        ));
        let mut bad = page.clone();
        put_u32(&mut bad, lp_at(0), lp0 + (1 << LP_LENGTH_SHIFT));
        expect_error(&bad, "tuple past the end");
        let mut bad = page.clone();
        put_u32(
            &mut bad,
            lp_at(0),
            LinePointer::Normal {
                offset: 500,
                len: 4,
            }
            .encode(),
        );
        expect_error(&bad, "tuple shorter than its header");
        let t0 = (lp0 & LP_OFFSET_MASK) as usize;
        let mut bad = page.clone();
        put_u16(&mut bad, t0 + TUPLE_CTID_SLOT_OFFSET, 1);
        assert!(matches!(
            expect_error(&bad, "foreign ctid"),
            HeapPageError::Tuple { .. }
        ));
        let mut bad = page.clone();
        put_u16(&mut bad, t0 + TUPLE_FLAGS_OFFSET, 0x0100);
        expect_error(&bad, "unknown tuple flags");
        let mut bad = page.clone();
        put_u16(&mut bad, t0, (TupleFlags::DELETED | TupleFlags::UPDATED).0);
        expect_error(&bad, "deleted and updated");
        let mut bad = page.clone();
        put_u16(&mut bad, t0, TupleFlags::HOT_UPDATED.0);
        expect_error(&bad, "HOT_UPDATED alone");
        // A trailing UNUSED pointer (with the flag set so only the trim rule is broken).
        let mut bad = page.clone();
        put_u16(&mut bad, LOWER_OFFSET, lp_at(4) as u16);
        bad[HEAP_FLAGS_OFFSET] = PD_HAS_FREE_LINES;
        assert!(matches!(
            expect_error(&bad, "trailing unused"),
            HeapPageError::LinePointer { .. }
        ));
    }

    /// HOT chain damage: a redirect to a root, an orphaned heap-only tuple, two links to one
    /// tuple, and a cycle of heap-only tuples.
    #[test]
    fn check_chains_rejects_broken_chains() {
        let size = 512;
        let page = sample();
        // Slot 1 is the root, slot 2 its heap-only successor.
        let t = |page: &[u8], s: u16| {
            let LinePointer::Normal { offset, .. } = HeapPageRef::new(page, size)
                .line_pointer(SlotId(s))
                .unwrap()
            else {
                panic!("slot {s} is not a tuple")
            };
            usize::from(offset)
        };
        let mut bad = page.clone();
        HeapPageMut::new(&mut bad, size).set_redirect(SlotId(2), SlotId(0));
        assert!(matches!(
            expect_error(&bad, "redirect"),
            HeapPageError::Chain { .. }
        ));
        // Orphan: the root forgets its successor.
        let mut bad = page.clone();
        let root = t(&bad, 1);
        put_u16(&mut bad, root, TupleFlags::NONE.0);
        put_u16(&mut bad, root + TUPLE_CTID_SLOT_OFFSET, 1);
        assert!(matches!(
            expect_error(&bad, "orphan"),
            HeapPageError::Chain { .. }
        ));
        // Two predecessors: slot 0 also HOT-updates to slot 2.
        let mut bad = page.clone();
        let first = t(&bad, 0);
        put_u16(
            &mut bad,
            first,
            (TupleFlags::UPDATED | TupleFlags::HOT_UPDATED).0,
        );
        put_u16(&mut bad, first + TUPLE_CTID_SLOT_OFFSET, 2);
        assert!(matches!(
            expect_error(&bad, "two links"),
            HeapPageError::Chain { .. }
        ));
        // A cycle: 1 -> 2 -> 1, every member heap-only.
        let mut bad = page.clone();
        let (one, two) = (t(&bad, 1), t(&bad, 2));
        put_u16(
            &mut bad,
            one,
            (TupleFlags::UPDATED | TupleFlags::HOT_UPDATED | TupleFlags::HEAP_ONLY).0,
        );
        put_u16(
            &mut bad,
            two,
            (TupleFlags::UPDATED | TupleFlags::HOT_UPDATED | TupleFlags::HEAP_ONLY).0,
        );
        put_u16(&mut bad, two + TUPLE_CTID_SLOT_OFFSET, 1);
        assert!(matches!(
            expect_error(&bad, "cycle"),
            HeapPageError::Chain { .. }
        ));
        let r = HeapPageRef::new(&bad, size);
        assert!(
            r.hot_chain(SlotId(1)).len() <= slot_count_max(size),
            "walks stay bounded"
        );
        assert_eq!(r.hot_search(SlotId(1)), None);
    }

    /// Every line pointer survives an encode/decode round trip; non-canonical encodings are
    /// refused.
    #[test]
    fn line_pointers_round_trip() {
        for lp in [
            LinePointer::Unused,
            LinePointer::Dead,
            LinePointer::Redirect(SlotId(2047)),
            LinePointer::Normal {
                offset: 32767,
                len: 32767,
            },
        ] {
            assert_eq!(LinePointer::decode(lp.encode()), Ok(lp));
        }
        assert!(LinePointer::decode(LP_REDIRECT << LP_STATE_SHIFT | 1 << LP_LENGTH_SHIFT).is_err());
        assert!(LinePointer::decode(1).is_err());
    }

    /// PostgreSQL's category examples for 8 KiB pages: 32-byte steps, 255 for an empty page.
    #[test]
    fn fsm_categories_match_postgres_steps() {
        let size = 8192;
        assert_eq!(fsm_category(0, size), 0);
        assert_eq!(fsm_category(31, size), 0);
        assert_eq!(fsm_category(32, size), 1);
        assert_eq!(fsm_category(tuple_size_max(size) - 1, size), 254);
        assert_eq!(fsm_category(tuple_size_max(size), size), 255);
        assert_eq!(fsm_category_free_min(1, size), 32);
        assert_eq!(fsm_category_needed(0, size), 1);
        assert_eq!(fsm_category_needed(32, size), 1);
        assert_eq!(fsm_category_needed(33, size), 2);
        assert_eq!(fsm_category_needed(tuple_size_max(size), size), 255);
    }

    proptest! {
        /// A page in the category an insert searches for surely takes the tuple, and a page's
        /// category promises no more than it has.
        #[test]
        fn fsm_category_lower_bounds_hold(
            size in prop::sample::select(vec![512usize, 4096, 8192, 16384]),
            free in 0usize..16384,
            need in 0usize..16384,
        ) {
            let free = free.min(tuple_size_max(size));
            let need = need.min(tuple_size_max(size));
            let category = fsm_category(free, size);
            prop_assert!(free >= fsm_category_free_min(category, size));
            if category >= fsm_category_needed(need, size) {
                prop_assert!(free >= need, "free {} need {}", free, need);
            }
        }
    }
}
