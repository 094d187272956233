//! `Footer`: the fixed-size end of a table, which locates everything else.
//!
//! ```text
//!  0            8             16       20       24           32          40          48      52    56        64
//!  +------------+-------------+--------+--------+------------+-----------+-----------+-------+-----+---------+
//!  |index offset|filter offset|index sz|filt sz |entry count | seq min   | seq max   |version| crc | magic   |
//!  +------------+-------------+--------+--------+------------+-----------+-----------+-------+-----+---------+
//! ```
//!
//! `crc` is CRC-32C of bytes 0..52 and 56..64. A filter size of 0 means the table has no
//! filter. The footer ends at the table's logical size, which the manifest records (the file
//! itself is zero-padded to a multiple of 4096 for direct I/O).

use crate::entry::SeqNo;
use crate::sstable::handle::BlockHandle;

/// Byte offset of the index block's offset.
pub const FOOTER_INDEX_OFFSET: usize = 0;
/// Byte offset of the filter block's offset.
pub const FOOTER_FILTER_OFFSET: usize = FOOTER_INDEX_OFFSET + 8;
/// Byte offset of the index block's size.
pub const FOOTER_INDEX_SIZE: usize = FOOTER_FILTER_OFFSET + 8;
/// Byte offset of the filter block's size.
pub const FOOTER_FILTER_SIZE: usize = FOOTER_INDEX_SIZE + 4;
/// Byte offset of the entry count.
pub const FOOTER_ENTRY_COUNT: usize = FOOTER_FILTER_SIZE + 4;
/// Byte offset of the smallest sequence number in the table.
pub const FOOTER_SEQ_MIN: usize = FOOTER_ENTRY_COUNT + 8;
/// Byte offset of the largest sequence number in the table.
pub const FOOTER_SEQ_MAX: usize = FOOTER_SEQ_MIN + 8;
/// Byte offset of the format version.
pub const FOOTER_VERSION: usize = FOOTER_SEQ_MAX + 8;
/// Byte offset of the footer's checksum.
pub const FOOTER_CRC: usize = FOOTER_VERSION + 4;
/// Byte offset of the magic number.
pub const FOOTER_MAGIC: usize = FOOTER_CRC + 4;
/// Size of the footer.
pub const FOOTER_SIZE: usize = FOOTER_MAGIC + 8;
const _: () = assert!(FOOTER_SIZE == 64);

/// "SLSSTBL1" as a little-endian u64: identifies a storelab table.
pub const TABLE_MAGIC: u64 = u64::from_le_bytes(*b"SLSSTBL1");
/// The table format this build writes and reads.
pub const TABLE_FORMAT_VERSION: u32 = 1;

/// A decoded footer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footer {
    /// The index block.
    pub index: BlockHandle,
    /// The filter block (`size` 0: no filter).
    pub filter: BlockHandle,
    /// Entries in the table (values and tombstones).
    pub entry_count: u64,
    /// The smallest sequence number of an entry.
    pub seq_min: SeqNo,
    /// The largest sequence number of an entry.
    pub seq_max: SeqNo,
    /// Format version.
    pub version: u32,
}

impl Footer {
    /// The footer's bytes.
    pub fn encode(&self) -> [u8; FOOTER_SIZE] {
        let mut out = [0u8; FOOTER_SIZE];
        out[FOOTER_INDEX_OFFSET..FOOTER_INDEX_OFFSET + 8]
            .copy_from_slice(&self.index.offset.to_le_bytes());
        out[FOOTER_FILTER_OFFSET..FOOTER_FILTER_OFFSET + 8]
            .copy_from_slice(&self.filter.offset.to_le_bytes());
        out[FOOTER_INDEX_SIZE..FOOTER_INDEX_SIZE + 4]
            .copy_from_slice(&self.index.size.to_le_bytes());
        out[FOOTER_FILTER_SIZE..FOOTER_FILTER_SIZE + 4]
            .copy_from_slice(&self.filter.size.to_le_bytes());
        out[FOOTER_ENTRY_COUNT..FOOTER_ENTRY_COUNT + 8]
            .copy_from_slice(&self.entry_count.to_le_bytes());
        out[FOOTER_SEQ_MIN..FOOTER_SEQ_MIN + 8].copy_from_slice(&self.seq_min.0.to_le_bytes());
        out[FOOTER_SEQ_MAX..FOOTER_SEQ_MAX + 8].copy_from_slice(&self.seq_max.0.to_le_bytes());
        out[FOOTER_VERSION..FOOTER_VERSION + 4].copy_from_slice(&self.version.to_le_bytes());
        out[FOOTER_MAGIC..].copy_from_slice(&TABLE_MAGIC.to_le_bytes());
        let crc = footer_crc(&out);
        out[FOOTER_CRC..FOOTER_CRC + 4].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Decodes the footer of a table of `table_size` bytes. `Err((reason, is_version))`:
    /// `is_version` marks a valid footer of another format version.
    pub fn decode(bytes: &[u8], table_size: u64) -> Result<Footer, (String, bool)> {
        if bytes.len() != FOOTER_SIZE {
            return Err((format!("footer of {} bytes", bytes.len()), false));
        }
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        if u64_at(FOOTER_MAGIC) != TABLE_MAGIC {
            return Err(("bad magic: not a storelab table".into(), false));
        }
        let stored = u32_at(FOOTER_CRC);
        let actual = footer_crc(bytes);
        if stored != actual {
            return Err((
                format!("footer checksum {stored:#010x}, computed {actual:#010x}"),
                false,
            ));
        }
        let footer = Footer {
            index: BlockHandle {
                offset: u64_at(FOOTER_INDEX_OFFSET),
                size: u32_at(FOOTER_INDEX_SIZE),
            },
            filter: BlockHandle {
                offset: u64_at(FOOTER_FILTER_OFFSET),
                size: u32_at(FOOTER_FILTER_SIZE),
            },
            entry_count: u64_at(FOOTER_ENTRY_COUNT),
            seq_min: SeqNo(u64_at(FOOTER_SEQ_MIN)),
            seq_max: SeqNo(u64_at(FOOTER_SEQ_MAX)),
            version: u32_at(FOOTER_VERSION),
        };
        if footer.version != TABLE_FORMAT_VERSION {
            return Err((format!("version {}", footer.version), true));
        }
        // Layout: data blocks, then the filter (if any), then the index, then the footer.
        let footer_start = table_size
            .checked_sub(FOOTER_SIZE as u64)
            .ok_or_else(|| ("table shorter than its footer".to_string(), false))?;
        let index_end = footer.index.offset.checked_add(footer.index.stored_size());
        if index_end != Some(footer_start) {
            return Err(("index block does not end at the footer".into(), false));
        }
        if footer.filter.size > 0 {
            let filter_end = footer
                .filter
                .offset
                .checked_add(footer.filter.stored_size());
            if filter_end != Some(footer.index.offset) {
                return Err(("filter block does not end at the index".into(), false));
            }
        } else if footer.filter.offset != footer.index.offset {
            return Err((
                "an absent filter must sit at the index offset".into(),
                false,
            ));
        }
        if footer.index.size == 0 {
            return Err(("empty index block".into(), false));
        }
        if footer.entry_count == 0 || footer.seq_min > footer.seq_max || footer.seq_max > SeqNo::MAX
        {
            return Err((
                format!(
                    "{} entries with sequence numbers {}..={}",
                    footer.entry_count, footer.seq_min, footer.seq_max
                ),
                false,
            ));
        }
        Ok(footer)
    }
}

fn footer_crc(bytes: &[u8]) -> u32 {
    let head = crc32c::crc32c(&bytes[..FOOTER_CRC]);
    debug_assert_eq!(FOOTER_MAGIC, FOOTER_CRC + 4);
    crc32c::crc32c_append(head, &bytes[FOOTER_MAGIC..FOOTER_SIZE])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A footer round-trips; a flipped bit anywhere is refused.
    #[test]
    fn footer_round_trips_and_detects_damage() {
        let f = Footer {
            filter: BlockHandle {
                offset: 100,
                size: 20,
            },
            index: BlockHandle {
                offset: 125,
                size: 30,
            },
            entry_count: 9,
            seq_min: SeqNo(3),
            seq_max: SeqNo(12),
            version: TABLE_FORMAT_VERSION,
        };
        let size = 125 + 30 + 5 + FOOTER_SIZE as u64;
        let bytes = f.encode();
        assert_eq!(Footer::decode(&bytes, size).unwrap(), f);
        for bit in 0..FOOTER_SIZE * 8 {
            let mut bad = bytes;
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(Footer::decode(&bad, size).is_err(), "bit {bit}");
        }
        assert!(Footer::decode(&bytes, size + 1).is_err());
    }
}
