//! Log records: what one atomic change looks like in the log.
//!
//! ```text
//! record header (32 bytes)
//!  0      4      8              16             24   25   26   28     32
//!  +------+------+--------------+--------------+----+----+----+------+
//!  | crc  | len  |     lsn      |   prev lsn   |type|blks|flag| main |
//!  +------+------+--------------+--------------+----+----+----+------+
//! then `blks` block headers (24 bytes each)
//!  0      4      8              16     20     24
//!  +------+------+--------------+------+------+
//!  | rel  | flag |   page id    | data | img  |
//!  +------+------+--------------+------+------+
//! then for each block: its image (img bytes, 0 or a whole page), then its data (data bytes);
//! then the record's main data (main bytes).
//! ```
//!
//! `crc` is CRC-32C of bytes 4..len. `lsn` is the record's own position in the log and `prev`
//! the position of the record before it: a reader accepts a record only if both match what it
//! expects, so stale records in a recycled segment, or left beyond a torn tail, are never taken
//! for new ones (PostgreSQL's `xl_prev` check).
//!
//! One record is one atomic change: it may touch up to [`BLOCKS_PER_RECORD_MAX`] pages (a heap
//! page and two index pages for one insert), and recovery applies all of it or none of it.

use storelab_pager::{Lsn, PageId};

use crate::error::{Error, Result};

/// Byte offset of the checksum in the record header.
pub const CRC_OFFSET: usize = 0;
/// Byte offset of the total length.
pub const LEN_OFFSET: usize = CRC_OFFSET + 4;
/// Byte offset of the record's own LSN.
pub const LSN_OFFSET: usize = LEN_OFFSET + 4;
/// Byte offset of the previous record's LSN.
pub const PREV_OFFSET: usize = LSN_OFFSET + 8;
/// Byte offset of the record type.
pub const TYPE_OFFSET: usize = PREV_OFFSET + 8;
/// Byte offset of the block count.
pub const BLOCK_COUNT_OFFSET: usize = TYPE_OFFSET + 1;
/// Byte offset of the record flags ([`RECORD_IN_GROUP`], ...).
pub const FLAGS_OFFSET: usize = BLOCK_COUNT_OFFSET + 1;
/// Byte offset of the main-data length.
pub const MAIN_LEN_OFFSET: usize = FLAGS_OFFSET + 2;
/// Size of the record header.
pub const RECORD_HEADER_SIZE: usize = MAIN_LEN_OFFSET + 4;
const _: () = assert!(RECORD_HEADER_SIZE == 32);

/// Byte offset of the relation number in a block header.
pub const BLOCK_REL_OFFSET: usize = 0;
/// Byte offset of the block flags.
pub const BLOCK_FLAGS_OFFSET: usize = BLOCK_REL_OFFSET + 4;
/// Byte offset of the page id.
pub const BLOCK_PAGE_OFFSET: usize = BLOCK_FLAGS_OFFSET + 4;
/// Byte offset of the block's data length.
pub const BLOCK_DATA_LEN_OFFSET: usize = BLOCK_PAGE_OFFSET + 8;
/// Byte offset of the block's image length.
pub const BLOCK_IMAGE_LEN_OFFSET: usize = BLOCK_DATA_LEN_OFFSET + 4;
/// Size of a block header.
pub const BLOCK_HEADER_SIZE: usize = BLOCK_IMAGE_LEN_OFFSET + 4;
const _: () = assert!(BLOCK_HEADER_SIZE == 24);

/// Block flag: the block carries a full-page image.
pub const BLOCK_HAS_IMAGE: u32 = 1;

/// Record flag: the record belongs to an atomic group (an operation logged as several
/// records, e.g. a heap tuple and its index entries); recovery applies it only once the
/// group's end record has been read. See `Wal::atomic_group`.
pub const RECORD_IN_GROUP: u16 = 1;
/// Record flag: the first record of an atomic group. Recovery drops any group still open
/// when it meets one (that group was cut short by a crash before an earlier recovery).
pub const RECORD_GROUP_FIRST: u16 = 2;
/// Record flag: the no-op record that ends an atomic group.
pub const RECORD_GROUP_END: u16 = 4;
/// Every defined record flag.
pub const RECORD_FLAGS_ALL: u16 = RECORD_IN_GROUP | RECORD_GROUP_FIRST | RECORD_GROUP_END;

/// The most pages one record may touch (PostgreSQL's `XLR_MAX_BLOCK_ID` is 32 too).
pub const BLOCKS_PER_RECORD_MAX: usize = 32;
/// The largest record accepted, header included (bounds every allocation the reader makes).
pub const RECORD_SIZE_MAX: usize = 4 << 20;

/// A record type: which redo function applies it. Types below [`RecordType::FIRST_ENGINE`] are
/// the log's own.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RecordType(pub u8);

impl RecordType {
    /// A checkpoint: main data is the redo LSN (8 bytes).
    pub const CHECKPOINT: RecordType = RecordType(1);
    /// Full-page images only (no change of its own): restore each image.
    pub const PAGE_IMAGES: RecordType = RecordType(2);
    /// No page change: main data only (benchmarks, tests, markers). Redo ignores it.
    pub const NOOP: RecordType = RecordType(3);
    /// The first type engines may register.
    pub const FIRST_ENGINE: RecordType = RecordType(16);
}

/// A relation's stable number in the log: records name files by it, because pager file ids
/// are assigned afresh at every open.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct RelId(pub u32);

/// One page a record being built changes.
#[derive(Debug)]
pub struct BlockRef<'a> {
    /// The relation.
    pub rel: RelId,
    /// The page.
    pub page_id: PageId,
    /// The page as it is after the change (for a full-page image, if the log decides to take
    /// one), or `None` if the caller never wants an image.
    pub page: Option<&'a [u8]>,
    /// Redo data for this page, interpreted by the record type's redo function.
    pub data: &'a [u8],
    /// Log the page's image whatever the torn-page mode (structural changes that are simplest
    /// to redo by restoring the page: B+tree splits and merges, new overflow pages).
    pub force_image: bool,
}

/// A record under construction.
#[derive(Debug)]
pub struct RecordBuilder<'a> {
    /// The record type.
    pub record_type: RecordType,
    /// The pages it changes.
    pub blocks: Vec<BlockRef<'a>>,
    /// Data not tied to a page.
    pub main: &'a [u8],
}

impl<'a> RecordBuilder<'a> {
    /// A record of `record_type` with no blocks and no main data.
    pub fn new(record_type: RecordType) -> Self {
        RecordBuilder {
            record_type,
            blocks: Vec::new(),
            main: &[],
        }
    }

    /// Adds a changed page: `page` is its bytes after the change, `data` its redo data.
    pub fn block(mut self, rel: RelId, page_id: PageId, page: &'a [u8], data: &'a [u8]) -> Self {
        self.blocks.push(BlockRef {
            rel,
            page_id,
            page: Some(page),
            data,
            force_image: false,
        });
        self
    }

    /// Adds a changed page logged as its whole image (redo restores it; no redo data).
    pub fn image(mut self, rel: RelId, page_id: PageId, page: &'a [u8]) -> Self {
        self.blocks.push(BlockRef {
            rel,
            page_id,
            page: Some(page),
            data: &[],
            force_image: true,
        });
        self
    }

    /// Sets the main data.
    pub fn main(mut self, main: &'a [u8]) -> Self {
        self.main = main;
        self
    }

    /// Encodes the record at `lsn` after the record at `prev`. `take_image(i)` says whether
    /// block `i` gets a full-page image.
    pub fn encode(
        &self,
        lsn: Lsn,
        prev: Lsn,
        take_image: &dyn Fn(&BlockRef<'_>) -> bool,
    ) -> Result<Vec<u8>> {
        self.encode_with_flags(lsn, prev, 0, take_image)
    }

    /// Like [`encode`](Self::encode), with record flags (the log sets the group flags).
    pub fn encode_with_flags(
        &self,
        lsn: Lsn,
        prev: Lsn,
        flags: u16,
        take_image: &dyn Fn(&BlockRef<'_>) -> bool,
    ) -> Result<Vec<u8>> {
        assert_eq!(
            flags & !RECORD_FLAGS_ALL,
            0,
            "undefined record flags {flags:#x}"
        );
        if self.blocks.len() > BLOCKS_PER_RECORD_MAX {
            return Err(Error::TooManyBlocks {
                count: self.blocks.len(),
                max: BLOCKS_PER_RECORD_MAX,
            });
        }
        let images: Vec<Option<&[u8]>> = self
            .blocks
            .iter()
            .map(|b| b.page.filter(|_| b.force_image || take_image(b)))
            .collect();
        let mut size = RECORD_HEADER_SIZE + self.blocks.len() * BLOCK_HEADER_SIZE + self.main.len();
        for (b, image) in self.blocks.iter().zip(&images) {
            size += b.data.len() + image.map_or(0, <[u8]>::len);
        }
        if size > RECORD_SIZE_MAX {
            return Err(Error::RecordTooLarge {
                size,
                max: RECORD_SIZE_MAX,
            });
        }
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(&[0; 4]); // crc, filled last
        out.extend_from_slice(&(size as u32).to_le_bytes());
        out.extend_from_slice(&lsn.0.to_le_bytes());
        out.extend_from_slice(&prev.0.to_le_bytes());
        out.push(self.record_type.0);
        out.push(self.blocks.len() as u8);
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&(self.main.len() as u32).to_le_bytes());
        for (b, image) in self.blocks.iter().zip(&images) {
            let flags = if image.is_some() { BLOCK_HAS_IMAGE } else { 0 };
            out.extend_from_slice(&b.rel.0.to_le_bytes());
            out.extend_from_slice(&flags.to_le_bytes());
            out.extend_from_slice(&b.page_id.0.to_le_bytes());
            out.extend_from_slice(&(b.data.len() as u32).to_le_bytes());
            out.extend_from_slice(&(image.map_or(0, <[u8]>::len) as u32).to_le_bytes());
        }
        for (b, image) in self.blocks.iter().zip(&images) {
            if let Some(image) = image {
                out.extend_from_slice(image);
            }
            out.extend_from_slice(b.data);
        }
        out.extend_from_slice(self.main);
        debug_assert_eq!(out.len(), size);
        let crc = crc32c::crc32c(&out[LEN_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        Ok(out)
    }
}

/// A page change in a decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The relation.
    pub rel: RelId,
    /// The page.
    pub page_id: PageId,
    /// The full-page image, if one was taken.
    pub image: Option<Vec<u8>>,
    /// The redo data.
    pub data: Vec<u8>,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Where it starts.
    pub lsn: Lsn,
    /// Where the record before it starts.
    pub prev: Lsn,
    /// Its type.
    pub record_type: RecordType,
    /// Its flags ([`RECORD_IN_GROUP`], ...).
    pub flags: u16,
    /// The pages it changes.
    pub blocks: Vec<Block>,
    /// Its main data.
    pub main: Vec<u8>,
    /// Its encoded length.
    pub len: usize,
}

impl Record {
    /// Where the next record starts; pages changed by this record carry it as their LSN.
    pub fn end_lsn(&self) -> Lsn {
        Lsn(self.lsn.0 + self.len as u64)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Reads the total length from a record header, validated against the limits; `None` for a
/// length that cannot be a record (zero: the end of the written log).
pub fn peek_len(header: &[u8]) -> Option<usize> {
    let len = u32_at(header, LEN_OFFSET) as usize;
    (RECORD_HEADER_SIZE..=RECORD_SIZE_MAX)
        .contains(&len)
        .then_some(len)
}

/// Decodes the record in `bytes` (exactly its encoded length), expected at `lsn`. Everything
/// is checked before use: checksum, self-position, lengths; `page_size` bounds images.
pub fn decode(bytes: &[u8], lsn: Lsn, page_size: usize) -> Result<Record> {
    let corrupt = |reason: String| Error::CorruptRecord { lsn, reason };
    if bytes.len() < RECORD_HEADER_SIZE {
        return Err(corrupt(format!(
            "{} bytes is shorter than a header",
            bytes.len()
        )));
    }
    let len = u32_at(bytes, LEN_OFFSET) as usize;
    if len != bytes.len() {
        return Err(corrupt(format!(
            "length field {len} but {} bytes given",
            bytes.len()
        )));
    }
    let stored = u32_at(bytes, CRC_OFFSET);
    let actual = crc32c::crc32c(&bytes[LEN_OFFSET..]);
    if stored != actual {
        return Err(corrupt(format!(
            "checksum {stored:#010x}, computed {actual:#010x}"
        )));
    }
    let own = Lsn(u64_at(bytes, LSN_OFFSET));
    if own != lsn {
        return Err(corrupt(format!("record says it is at {own}")));
    }
    let prev = Lsn(u64_at(bytes, PREV_OFFSET));
    let record_type = RecordType(bytes[TYPE_OFFSET]);
    let block_count = bytes[BLOCK_COUNT_OFFSET] as usize;
    let flags = u16_at(bytes, FLAGS_OFFSET);
    let main_len = u32_at(bytes, MAIN_LEN_OFFSET) as usize;
    if flags & !RECORD_FLAGS_ALL != 0 || (flags != 0 && flags & RECORD_IN_GROUP == 0) {
        return Err(corrupt(format!("undefined record flags {flags:#06x}")));
    }
    if block_count > BLOCKS_PER_RECORD_MAX {
        return Err(corrupt(format!("{block_count} blocks")));
    }
    let mut at = RECORD_HEADER_SIZE;
    let headers_end = at + block_count * BLOCK_HEADER_SIZE;
    if headers_end > len {
        return Err(corrupt("block headers run past the record".into()));
    }
    let mut heads = Vec::with_capacity(block_count);
    for _ in 0..block_count {
        let h = &bytes[at..at + BLOCK_HEADER_SIZE];
        let flags = u32_at(h, BLOCK_FLAGS_OFFSET);
        let image_len = u32_at(h, BLOCK_IMAGE_LEN_OFFSET) as usize;
        if flags & !BLOCK_HAS_IMAGE != 0 {
            return Err(corrupt(format!("block flags {flags:#x}")));
        }
        let has_image = flags & BLOCK_HAS_IMAGE != 0;
        if has_image != (image_len != 0) || (has_image && image_len != page_size) {
            return Err(corrupt(format!(
                "image of {image_len} bytes (page size {page_size})"
            )));
        }
        heads.push((
            RelId(u32_at(h, BLOCK_REL_OFFSET)),
            PageId(u64_at(h, BLOCK_PAGE_OFFSET)),
            u32_at(h, BLOCK_DATA_LEN_OFFSET) as usize,
            image_len,
        ));
        at += BLOCK_HEADER_SIZE;
    }
    let mut blocks = Vec::with_capacity(block_count);
    for (rel, page_id, data_len, image_len) in heads {
        let end = at
            .checked_add(image_len)
            .and_then(|e| e.checked_add(data_len))
            .filter(|&e| e <= len)
            .ok_or_else(|| corrupt("block data runs past the record".into()))?;
        let image = (image_len > 0).then(|| bytes[at..at + image_len].to_vec());
        let data = bytes[at + image_len..end].to_vec();
        blocks.push(Block {
            rel,
            page_id,
            image,
            data,
        });
        at = end;
    }
    if at + main_len != len {
        return Err(corrupt(format!(
            "main data of {main_len} bytes does not fill the record"
        )));
    }
    let main = bytes[at..].to_vec();
    Ok(Record {
        lsn,
        prev,
        record_type,
        flags,
        blocks,
        main,
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(page: &'a [u8]) -> RecordBuilder<'a> {
        RecordBuilder::new(RecordType(20))
            .block(RelId(3), PageId(9), page, b"insert")
            .block(RelId(4), PageId(1), page, b"")
            .main(b"main data")
    }

    /// A record decodes to what was encoded, with and without images.
    #[test]
    fn record_round_trips() {
        let page = vec![7u8; 4096];
        for with_images in [false, true] {
            let bytes = sample(&page)
                .encode(Lsn(100), Lsn(40), &|_| with_images)
                .unwrap();
            let r = decode(&bytes, Lsn(100), 4096).unwrap();
            assert_eq!(r.prev, Lsn(40));
            assert_eq!(r.record_type, RecordType(20));
            assert_eq!(r.blocks.len(), 2);
            assert_eq!(r.blocks[0].data, b"insert");
            assert_eq!(r.blocks[1].image.is_some(), with_images);
            assert_eq!(r.main, b"main data");
            assert_eq!(r.end_lsn(), Lsn(100 + bytes.len() as u64));
        }
    }

    /// Every single-bit flip is rejected (by the checksum, or the position check for the crc).
    #[test]
    fn any_bit_flip_is_rejected() {
        let page = vec![1u8; 4096];
        let bytes = sample(&page)
            .image(RelId(9), PageId(2), &page)
            .encode(Lsn(8), Lsn(0), &|_| false)
            .unwrap();
        for bit in 0..bytes.len() * 8 {
            let mut bad = bytes.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&bad, Lsn(8), 4096).is_err(), "bit {bit}");
        }
    }

    /// A valid record read at the wrong position is rejected.
    #[test]
    fn record_at_wrong_lsn_is_rejected() {
        let bytes = RecordBuilder::new(RecordType(20))
            .encode(Lsn(64), Lsn(0), &|_| false)
            .unwrap();
        assert!(decode(&bytes, Lsn(96), 4096).is_err());
    }

    /// Limits are enforced when building.
    #[test]
    fn oversized_records_are_refused() {
        let big = vec![0u8; RECORD_SIZE_MAX];
        let err = RecordBuilder::new(RecordType(20))
            .main(&big)
            .encode(Lsn(0), Lsn(0), &|_| false);
        assert!(matches!(err, Err(Error::RecordTooLarge { .. })));
        let page = [0u8; 16];
        let mut b = RecordBuilder::new(RecordType(20));
        for i in 0..=BLOCKS_PER_RECORD_MAX {
            b = b.block(RelId(0), PageId(i as u64), &page, b"");
        }
        assert!(matches!(
            b.encode(Lsn(0), Lsn(0), &|_| false),
            Err(Error::TooManyBlocks { .. })
        ));
    }
}
