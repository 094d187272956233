//! The LSM's log record: one batch of puts and deletes, logged before the memtable changes.
//!
//! ```text
//!  main data of a RECORD_LSM_BATCH record (no page blocks)
//!  0         4            12        16
//!  +---------+------------+---------+------------------------------------------+
//!  | tree id | first seq  | count   | op 0 | op 1 | ...                         |
//!  +---------+------------+---------+------------------------------------------+
//!  op: kind u8 (0 delete, 1 put) | key len u16 | value len u32 | key | value
//! ```
//!
//! Op `i` has sequence number `first seq + i`. Recovery of pages (`Wal::recover`) has nothing
//! to redo for these records, which carry no blocks; the LSM replays them itself into its
//! memtable when it opens ([`crate::Lsm::open`]). A batch too large for one record is split
//! into several inside an atomic group, so it is replayed whole or not at all.

use storelab_wal::{RecordType, RedoRegistry};

use crate::entry::{KIND_DELETE, KIND_PUT, SeqNo};
use crate::{KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// The record type of an LSM batch. Types 16-19 are the B+tree's, 24 the heap's.
pub const RECORD_LSM_BATCH: RecordType = RecordType(32);
/// Byte offset of the tree id.
pub const BATCH_TREE_ID_OFFSET: usize = 0;
/// Byte offset of the first sequence number.
pub const BATCH_FIRST_SEQ_OFFSET: usize = BATCH_TREE_ID_OFFSET + 4;
/// Byte offset of the op count.
pub const BATCH_COUNT_OFFSET: usize = BATCH_FIRST_SEQ_OFFSET + 8;
/// Size of the batch header.
pub const BATCH_HEADER_SIZE: usize = BATCH_COUNT_OFFSET + 4;
/// Size of an op header.
pub const BATCH_OP_HEADER_SIZE: usize = 7;
const _: () = assert!(BATCH_HEADER_SIZE == 16);
/// A batch record is cut once its main data would pass this size (records are at most
/// `storelab_wal::RECORD_SIZE_MAX` = 4 MiB; one op is at most about 1 MiB).
pub const BATCH_RECORD_BYTES_MAX: usize = 1 << 20;

/// Registers the LSM's record types with the log's redo registry, so that `Wal::recover`
/// accepts them (redo has nothing to do: the records change no page). Call once per
/// registry, however many trees share the log.
pub fn register_redo(registry: &mut RedoRegistry) {
    registry.register(RECORD_LSM_BATCH, |_, _, _| Ok(()));
}

/// A decoded batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// The tree it belongs to.
    pub tree_id: u32,
    /// Sequence number of the first op.
    pub first_seq: SeqNo,
    /// The ops: key and value (`None`: delete).
    pub ops: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Encodes ops as one record's main data.
pub fn encode_batch(tree_id: u32, first_seq: SeqNo, ops: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        BATCH_HEADER_SIZE
            + ops
                .iter()
                .map(|(k, v)| BATCH_OP_HEADER_SIZE + k.len() + v.map_or(0, <[u8]>::len))
                .sum::<usize>(),
    );
    out.extend_from_slice(&tree_id.to_le_bytes());
    out.extend_from_slice(&first_seq.0.to_le_bytes());
    out.extend_from_slice(&(ops.len() as u32).to_le_bytes());
    for (key, value) in ops {
        out.push(if value.is_some() {
            KIND_PUT
        } else {
            KIND_DELETE
        });
        out.extend_from_slice(&(key.len() as u16).to_le_bytes());
        out.extend_from_slice(&(value.map_or(0, <[u8]>::len) as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(value.unwrap_or(&[]));
    }
    out
}

/// The size of one op in a batch record.
pub fn op_size(key: &[u8], value: Option<&[u8]>) -> usize {
    BATCH_OP_HEADER_SIZE + key.len() + value.map_or(0, <[u8]>::len)
}

/// Decodes a batch; `Err` carries the reason. Counts and lengths are checked before use.
pub fn decode_batch(main: &[u8]) -> Result<BatchRecord, String> {
    if main.len() < BATCH_HEADER_SIZE {
        return Err(format!("batch of {} bytes", main.len()));
    }
    let tree_id = u32::from_le_bytes(main[..4].try_into().expect("4 bytes"));
    let first_seq = SeqNo(u64::from_le_bytes(main[4..12].try_into().expect("8 bytes")));
    let count = u32::from_le_bytes(main[12..16].try_into().expect("4 bytes")) as usize;
    if count == 0 || count > (main.len() - BATCH_HEADER_SIZE) / BATCH_OP_HEADER_SIZE {
        return Err(format!("{count} ops in {} bytes", main.len()));
    }
    if first_seq
        .0
        .checked_add(count as u64)
        .is_none_or(|end| end > SeqNo::MAX.0)
    {
        return Err(format!("sequence numbers from {first_seq} overflow"));
    }
    let mut ops = Vec::with_capacity(count);
    let mut at = BATCH_HEADER_SIZE;
    for i in 0..count {
        if at + BATCH_OP_HEADER_SIZE > main.len() {
            return Err(format!("op {i} header runs past the record"));
        }
        let kind = main[at];
        let key_len = u16::from_le_bytes(main[at + 1..at + 3].try_into().expect("2")) as usize;
        let value_len = u32::from_le_bytes(main[at + 3..at + 7].try_into().expect("4")) as usize;
        if !(1..=KEY_SIZE_MAX).contains(&key_len) || value_len > VALUE_SIZE_MAX {
            return Err(format!(
                "op {i}: key {key_len} bytes, value {value_len} bytes"
            ));
        }
        let key_start = at + BATCH_OP_HEADER_SIZE;
        let end = key_start + key_len + value_len;
        if end > main.len() {
            return Err(format!("op {i} runs past the record"));
        }
        let key = main[key_start..key_start + key_len].to_vec();
        let value = match kind {
            KIND_PUT => Some(main[key_start + key_len..end].to_vec()),
            KIND_DELETE if value_len == 0 => None,
            _ => {
                return Err(format!(
                    "op {i} has kind {kind} and {value_len} value bytes"
                ));
            }
        };
        ops.push((key, value));
        at = end;
    }
    if at != main.len() {
        return Err(format!("{} bytes after the last op", main.len() - at));
    }
    Ok(BatchRecord {
        tree_id,
        first_seq,
        ops,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch round-trips; truncations and bit flips never panic the decoder.
    #[test]
    fn batch_round_trips_and_damage_is_refused() {
        let ops: Vec<(&[u8], Option<&[u8]>)> = vec![(b"a", Some(b"1")), (b"bb", None)];
        let bytes = encode_batch(7, SeqNo(40), &ops);
        let b = decode_batch(&bytes).unwrap();
        assert_eq!(b.tree_id, 7);
        assert_eq!(b.first_seq, SeqNo(40));
        assert_eq!(
            b.ops,
            vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"bb".to_vec(), None)]
        );
        for cut in 0..bytes.len() {
            assert!(decode_batch(&bytes[..cut]).is_err());
        }
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let _ = decode_batch(&bad);
        }
    }
}
