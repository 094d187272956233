//! Entries: a key with a sequence number and either a value or a tombstone.

use std::fmt;

/// A write's sequence number: every put and delete gets the next one, in log order. Among
/// versions of one key the highest sequence number is the newest (RocksDB's `SequenceNumber`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct SeqNo(pub u64);

impl SeqNo {
    /// The largest sequence number an entry may carry (the trailer keeps 8 bits for the kind).
    pub const MAX: SeqNo = SeqNo((1 << 56) - 1);
}

impl fmt::Display for SeqNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// Kind code of a tombstone in a block entry's trailer.
pub const KIND_DELETE: u8 = 0;
/// Kind code of a value in a block entry's trailer.
pub const KIND_PUT: u8 = 1;

/// Packs a sequence number and a kind into the 8-byte trailer of a block entry.
pub fn pack_trailer(seq: SeqNo, is_put: bool) -> u64 {
    assert!(seq <= SeqNo::MAX, "sequence number {seq} too large");
    (seq.0 << 8) | u64::from(if is_put { KIND_PUT } else { KIND_DELETE })
}

/// Splits a trailer into sequence number and "is a put"; `None` for an unknown kind.
pub fn unpack_trailer(trailer: u64) -> Option<(SeqNo, bool)> {
    match (trailer & 0xff) as u8 {
        KIND_PUT => Some((SeqNo(trailer >> 8), true)),
        KIND_DELETE => Some((SeqNo(trailer >> 8), false)),
        _ => None,
    }
}

/// One version of a key: a value, or a tombstone (`value: None`) that hides older versions.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// The user key.
    pub key: Vec<u8>,
    /// When it was written.
    pub seq: SeqNo,
    /// The value, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

impl Entry {
    /// Bytes of key and value (what a user wrote; tombstones count their key).
    pub fn user_bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trailer round-trips sequence number and kind; unknown kinds are refused.
    #[test]
    fn trailer_round_trips() {
        for (seq, put) in [(SeqNo(0), true), (SeqNo(7), false), (SeqNo::MAX, true)] {
            assert_eq!(unpack_trailer(pack_trailer(seq, put)), Some((seq, put)));
        }
        assert_eq!(unpack_trailer(0x1_02), None);
    }
}
