//! `Tid`: a tuple identifier, the address of one tuple version in a heap file.
//!
//! A TID is a page id and a slot (the index of a line pointer in that page's line pointer
//! array, see [`crate::heap_page`]). It is PostgreSQL's `ItemPointerData` (block number and
//! offset number), with two differences:
//!
//! - the page id is the pager's full `u64` (PostgreSQL's block number is 32 bits);
//! - slots count from 0 (PostgreSQL's offset numbers count from 1 and reserve 0 as invalid);
//!   there is no "invalid TID" value, `Option<Tid>` says "none".
//!
//! A TID stays the address of its tuple for the tuple's whole life: compaction moves tuple
//! bytes inside a page but never renumbers line pointers, which is why indexes can store TIDs.
//!
//! # Key encoding
//!
//! [`Tid::encode`] writes [`TID_ENCODED_SIZE`] bytes, both fields big-endian:
//!
//! ```text
//!  0                8      10
//!  +----------------+------+
//!  |  page id (BE)  | slot |
//!  +----------------+------+
//! ```
//!
//! Big-endian makes the byte order of encodings the `(page, slot)` order of the TIDs, so a
//! B+tree that stores `(key, tid)` entries keeps duplicates of a key in heap order (as
//! PostgreSQL's nbtree does since version 12, treating the heap TID as a tiebreaker key
//! column). Inside heap pages, TIDs are stored little-endian like every other page field;
//! only this key encoding is big-endian.

use std::fmt;

use storelab_pager::PageId;

/// Bytes of an encoded TID: an 8-byte page id and a 2-byte slot.
pub const TID_ENCODED_SIZE: usize = PAGE_ID_ENCODED_SIZE + SLOT_ID_ENCODED_SIZE;
/// Bytes of the page id in an encoded TID.
const PAGE_ID_ENCODED_SIZE: usize = 8;
/// Bytes of the slot in an encoded TID.
const SLOT_ID_ENCODED_SIZE: usize = 2;
const _: () = assert!(TID_ENCODED_SIZE == 10);

/// The index of a line pointer in a heap page's line pointer array (0-based).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct SlotId(pub u16);

impl SlotId {
    /// The slot as an array index.
    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for SlotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A tuple identifier: the page and slot of one tuple version.
///
/// Ordered by page, then slot (the derived order follows the field order).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Tid {
    /// The heap page holding the tuple.
    pub page_id: PageId,
    /// The tuple's line pointer in that page.
    pub slot: SlotId,
}

/// An encoded TID of the wrong length.
#[derive(Clone, Copy, PartialEq, Eq, Debug, thiserror::Error)]
#[error("encoded TID of {len} bytes, expected {TID_ENCODED_SIZE}")]
pub struct TidDecodeError {
    /// The length that was given.
    pub len: usize,
}

impl Tid {
    /// The TID of `slot` on page `page_id`.
    pub const fn new(page_id: PageId, slot: SlotId) -> Tid {
        Tid { page_id, slot }
    }

    /// The order-preserving encoding: page id then slot, both big-endian.
    pub fn encode(self) -> [u8; TID_ENCODED_SIZE] {
        let mut out = [0u8; TID_ENCODED_SIZE];
        out[..PAGE_ID_ENCODED_SIZE].copy_from_slice(&self.page_id.0.to_be_bytes());
        out[PAGE_ID_ENCODED_SIZE..].copy_from_slice(&self.slot.0.to_be_bytes());
        out
    }

    /// Decodes [`Tid::encode`]'s output; any other length is an error (the bytes may come from
    /// disk, as the suffix of an index entry).
    pub fn decode(bytes: &[u8]) -> Result<Tid, TidDecodeError> {
        let Ok(raw) = <[u8; TID_ENCODED_SIZE]>::try_from(bytes) else {
            return Err(TidDecodeError { len: bytes.len() });
        };
        let (page, slot) = raw.split_at(PAGE_ID_ENCODED_SIZE);
        Ok(Tid {
            page_id: PageId(u64::from_be_bytes(page.try_into().expect("8-byte half"))),
            slot: SlotId(u16::from_be_bytes(slot.try_into().expect("2-byte half"))),
        })
    }
}

impl fmt::Display for Tid {
    /// PostgreSQL's notation for a ctid: `(page,slot)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({},{})", self.page_id.0, self.slot.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A TID decodes to itself and prints in PostgreSQL's ctid notation.
    #[test]
    fn tid_round_trips_and_displays_as_ctid() {
        let tid = Tid::new(PageId(258), SlotId(7));
        assert_eq!(Tid::decode(&tid.encode()), Ok(tid));
        assert_eq!(tid.to_string(), "(258,7)");
        assert_eq!(
            tid.encode(),
            [0, 0, 0, 0, 0, 0, 1, 2, 0, 7],
            "big-endian page id, then big-endian slot"
        );
    }

    /// Encodings of any other length are refused with the length found.
    #[test]
    fn decode_rejects_wrong_lengths() {
        assert_eq!(Tid::decode(&[0; 9]), Err(TidDecodeError { len: 9 }));
        assert_eq!(Tid::decode(&[0; 11]), Err(TidDecodeError { len: 11 }));
        assert_eq!(Tid::decode(&[]), Err(TidDecodeError { len: 0 }));
    }

    proptest! {
        /// Byte order of encodings is (page, slot) order of TIDs.
        #[test]
        fn encoding_sorts_in_tid_order(a in any::<(u64, u16)>(), b in any::<(u64, u16)>()) {
            let ta = Tid::new(PageId(a.0), SlotId(a.1));
            let tb = Tid::new(PageId(b.0), SlotId(b.1));
            prop_assert_eq!(ta.cmp(&tb), ta.encode().cmp(&tb.encode()));
            prop_assert_eq!(Tid::decode(&ta.encode()), Ok(ta));
        }
    }
}
