//! Segment files: the log is a byte stream cut into fixed-size files.
//!
//! ```text
//! segment file (segment_size bytes, default 16 MiB)
//!  0                                  4096                                   segment_size
//!  +----------------------------------+-------------------- ... -----------------+
//!  | header block (32 bytes used)     | data: log bytes [n*D, (n+1)*D)            |
//!  +----------------------------------+-------------------- ... -----------------+
//!                                      D = segment_size - 4096
//! header: 0 magic "SLWALSEG" | 8 version u16 | 10 reserved u16 | 12 segment_size u32 |
//!         16 segment number u64 | 24 page_size u32 | 28 crc32c of bytes 0..28
//! ```
//!
//! LSN `l` lives in segment `l / D` at file offset `4096 + l % D`. Log blocks (4 KiB) line up
//! with file blocks, so the log can be written with direct I/O. A segment is created full
//! length and zero-filled (a write into preallocated space syncs faster than one that grows the
//! file: no block allocation to journal), and old segments are recycled by renaming them to a
//! future number and rewriting their header.

use storelab_pager::Lsn;

use crate::error::{Error, Result};

/// The log's block size: the unit of WAL writes, aligned for direct I/O.
pub const WAL_BLOCK_SIZE: usize = 4096;
/// Bytes at the start of each segment reserved for its header.
pub const SEGMENT_HEADER_SIZE: usize = WAL_BLOCK_SIZE;
/// The segment format version.
pub const WAL_FORMAT_VERSION: u16 = 2;
/// The segment magic.
pub const SEGMENT_MAGIC: [u8; 8] = *b"SLWALSEG";
/// The smallest segment size (tests use small segments to cross boundaries often).
pub const SEGMENT_SIZE_MIN: usize = 64 * 1024;
/// The largest segment size.
pub const SEGMENT_SIZE_MAX: usize = 1 << 30;

const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const SIZE_OFFSET: usize = VERSION_OFFSET + 4;
const NUMBER_OFFSET: usize = SIZE_OFFSET + 4;
const PAGE_SIZE_OFFSET: usize = NUMBER_OFFSET + 8;
const CRC_OFFSET: usize = PAGE_SIZE_OFFSET + 4;
const HEADER_USED: usize = CRC_OFFSET + 4;
const _: () = assert!(HEADER_USED == 32);

/// Geometry of the log's segments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentGeometry {
    /// Bytes per segment file.
    pub segment_size: usize,
}

impl SegmentGeometry {
    /// Validates a segment size: a multiple of 4096 within the limits.
    pub fn new(segment_size: usize) -> Result<Self> {
        if !(SEGMENT_SIZE_MIN..=SEGMENT_SIZE_MAX).contains(&segment_size)
            || !segment_size.is_multiple_of(WAL_BLOCK_SIZE)
        {
            return Err(Error::InvalidArgument(format!(
                "segment size {segment_size} must be a multiple of 4096 in {SEGMENT_SIZE_MIN}..={SEGMENT_SIZE_MAX}"
            )));
        }
        Ok(SegmentGeometry { segment_size })
    }

    /// Log bytes per segment.
    pub fn data_size(&self) -> u64 {
        (self.segment_size - SEGMENT_HEADER_SIZE) as u64
    }

    /// The segment holding `lsn`.
    pub fn segment_of(&self, lsn: Lsn) -> u64 {
        lsn.0 / self.data_size()
    }

    /// The file offset of `lsn` within its segment.
    pub fn file_offset(&self, lsn: Lsn) -> u64 {
        SEGMENT_HEADER_SIZE as u64 + lsn.0 % self.data_size()
    }

    /// The first LSN of segment `n`.
    pub fn segment_start(&self, n: u64) -> Lsn {
        Lsn(n * self.data_size())
    }
}

/// The file name of segment `n`: 16 hex digits, so names sort in log order.
pub fn segment_file_name(n: u64) -> String {
    format!("{n:016X}.wal")
}

/// Parses a segment file name back into its number.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".wal")?;
    (hex.len() == 16)
        .then(|| u64::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Encodes the header block of segment `n`.
pub fn encode_header(block: &mut [u8], n: u64, segment_size: usize, page_size: usize) {
    block.fill(0);
    block[MAGIC_OFFSET..MAGIC_OFFSET + 8].copy_from_slice(&SEGMENT_MAGIC);
    block[VERSION_OFFSET..VERSION_OFFSET + 2].copy_from_slice(&WAL_FORMAT_VERSION.to_le_bytes());
    block[SIZE_OFFSET..SIZE_OFFSET + 4].copy_from_slice(&(segment_size as u32).to_le_bytes());
    block[NUMBER_OFFSET..NUMBER_OFFSET + 8].copy_from_slice(&n.to_le_bytes());
    block[PAGE_SIZE_OFFSET..PAGE_SIZE_OFFSET + 4]
        .copy_from_slice(&(page_size as u32).to_le_bytes());
    let crc = crc32c::crc32c(&block[..CRC_OFFSET]);
    block[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

/// What a segment header says about itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderCheck {
    /// A valid header of the expected segment.
    Valid,
    /// Not (or no longer) segment `n`: zeros, another number, a bad checksum. The log ends.
    NotThisSegment(&'static str),
}

/// Checks the header block of a file expected to be segment `n`. A version this build cannot
/// read is an error; everything else that is wrong just means "the log does not go on here".
pub fn check_header(
    block: &[u8],
    n: u64,
    geometry: SegmentGeometry,
    page_size: usize,
    file: &std::path::Path,
) -> Result<HeaderCheck> {
    if block.len() < HEADER_USED || block[MAGIC_OFFSET..MAGIC_OFFSET + 8] != SEGMENT_MAGIC {
        return Ok(HeaderCheck::NotThisSegment("no segment magic"));
    }
    let stored = u32::from_le_bytes(block[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4"));
    if stored != crc32c::crc32c(&block[..CRC_OFFSET]) {
        return Ok(HeaderCheck::NotThisSegment("header checksum mismatch"));
    }
    let version = u16::from_le_bytes(
        block[VERSION_OFFSET..VERSION_OFFSET + 2]
            .try_into()
            .expect("2"),
    );
    if version != WAL_FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            file: file.to_path_buf(),
            found: version,
            supported: WAL_FORMAT_VERSION,
        });
    }
    let size =
        u32::from_le_bytes(block[SIZE_OFFSET..SIZE_OFFSET + 4].try_into().expect("4")) as usize;
    let number = u64::from_le_bytes(
        block[NUMBER_OFFSET..NUMBER_OFFSET + 8]
            .try_into()
            .expect("8"),
    );
    let pages = u32::from_le_bytes(
        block[PAGE_SIZE_OFFSET..PAGE_SIZE_OFFSET + 4]
            .try_into()
            .expect("4"),
    );
    if size != geometry.segment_size {
        return Err(Error::SettingMismatch {
            setting: "WAL segment size",
            on_disk: size.to_string(),
            requested: geometry.segment_size.to_string(),
        });
    }
    if pages as usize != page_size {
        return Err(Error::SettingMismatch {
            setting: "page size",
            on_disk: pages.to_string(),
            requested: page_size.to_string(),
        });
    }
    if number != n {
        return Ok(HeaderCheck::NotThisSegment(
            "a recycled segment (older number)",
        ));
    }
    Ok(HeaderCheck::Valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LSNs map to segments and offsets past the header block.
    #[test]
    fn lsn_maps_to_segment_and_offset() {
        let g = SegmentGeometry::new(64 * 1024).unwrap();
        assert_eq!(g.data_size(), 60 * 1024);
        assert_eq!(g.segment_of(Lsn(0)), 0);
        assert_eq!(g.file_offset(Lsn(0)), 4096);
        assert_eq!(g.segment_of(Lsn(60 * 1024)), 1);
        assert_eq!(g.file_offset(Lsn(60 * 1024 + 5)), 4096 + 5);
    }

    /// A header names its own segment; another number means a recycled file.
    #[test]
    fn header_round_trips_and_detects_recycling() {
        let g = SegmentGeometry::new(64 * 1024).unwrap();
        let mut block = vec![0u8; 4096];
        encode_header(&mut block, 7, g.segment_size, 8192);
        let p = std::path::Path::new("x");
        assert_eq!(
            check_header(&block, 7, g, 8192, p).unwrap(),
            HeaderCheck::Valid
        );
        assert!(matches!(
            check_header(&block, 8, g, 8192, p).unwrap(),
            HeaderCheck::NotThisSegment(_)
        ));
        assert!(check_header(&block, 7, g, 4096, p).is_err());
        assert_eq!(parse_segment_file_name(&segment_file_name(7)), Some(7));
    }
}
