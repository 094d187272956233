//! The page: fixed-size unit of I/O and caching, and its common header.
//!
//! ```text
//!  0        4        6    7    8                16               24
//!  +--------+--------+----+----+----------------+----------------+----------------------+
//!  |checksum|version |type|flag|    page LSN    |    page id     |  body (engine-owned) |
//!  +--------+--------+----+----+----------------+----------------+----------------------+
//!   u32 LE   u16 LE   u8   u8       u64 LE           u64 LE        page_size - 24 bytes
//! ```
//!
//! The checksum is CRC-32C (Castagnoli) of the page id (8 bytes, little-endian) followed by
//! bytes `4..page_size` of the page. Mixing the page id in means a page written to the wrong
//! offset fails its check even though its bytes are intact (PostgreSQL mixes the block number
//! into its page checksum for the same reason). See `docs/format/page.md`.

use std::fmt;
use std::path::Path;

use crate::error::{Error, Result};

/// Byte offset of the CRC-32C checksum.
pub const CHECKSUM_OFFSET: usize = 0;
/// Byte offset of the format version.
pub const VERSION_OFFSET: usize = CHECKSUM_OFFSET + 4;
/// Byte offset of the page type.
pub const PAGE_TYPE_OFFSET: usize = VERSION_OFFSET + 2;
/// Byte offset of the flags byte (reserved, written as zero).
pub const FLAGS_OFFSET: usize = PAGE_TYPE_OFFSET + 1;
/// Byte offset of the page LSN.
pub const LSN_OFFSET: usize = FLAGS_OFFSET + 1;
/// Byte offset of the page's own id.
pub const PAGE_ID_OFFSET: usize = LSN_OFFSET + 8;
/// Size of the common header; the engine-owned body starts here.
pub const PAGE_HEADER_SIZE: usize = PAGE_ID_OFFSET + 8;
const _: () = assert!(PAGE_HEADER_SIZE == 24);
/// The first byte the checksum covers (everything after the checksum itself).
pub const CHECKSUMMED_FROM: usize = VERSION_OFFSET;

/// The page format version this build writes and reads.
pub const PAGE_FORMAT_VERSION: u16 = 1;

/// Alignment of I/O buffers and of direct-I/O offsets and lengths (one 4 KiB sector/page).
pub const IO_ALIGNMENT: usize = 4096;

/// A page's number within its file: page `n` lives at byte offset `n * page_size`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PageId(pub u64);

impl fmt::Debug for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageId({})", self.0)
    }
}

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A log sequence number: the WAL byte position of the last record that changed a page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:08X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

/// The page size of a database, chosen at creation and fixed for its life.
///
/// 8 KiB is PostgreSQL's size, 16 KiB InnoDB's; 4 KiB matches the OS page and most SSDs'
/// program unit. Comparing them is one of the experiments.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default)]
pub enum PageSize {
    /// 4 KiB pages.
    K4,
    /// 8 KiB pages (the default, as PostgreSQL).
    #[default]
    K8,
    /// 16 KiB pages (as InnoDB).
    K16,
}

impl PageSize {
    /// The size in bytes.
    pub const fn bytes(self) -> usize {
        match self {
            PageSize::K4 => 4096,
            PageSize::K8 => 8192,
            PageSize::K16 => 16384,
        }
    }

    /// The page size for a byte count, if it is one of the supported sizes.
    pub fn from_bytes(size: usize) -> Result<Self> {
        match size {
            4096 => Ok(PageSize::K4),
            8192 => Ok(PageSize::K8),
            16384 => Ok(PageSize::K16),
            _ => Err(Error::InvalidPageSize { size }),
        }
    }
}

/// What a page holds. The pager only distinguishes free pages; engines define the rest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PageType(pub u8);

impl PageType {
    /// A page that was never written (all zeros on disk).
    pub const FREE: PageType = PageType(0);
    /// A page written by the pager's own tests and benchmarks.
    pub const RAW: PageType = PageType(1);
}

/// Computes the checksum of a page as it should be stored at `page_id`.
pub fn page_checksum(page: &[u8], page_id: PageId) -> u32 {
    let seed = crc32c::crc32c(&page_id.0.to_le_bytes());
    crc32c::crc32c_append(seed, &page[CHECKSUMMED_FROM..])
}

fn read_u16(page: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(page[at..at + 2].try_into().expect("2-byte slice"))
}
fn read_u32(page: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(page[at..at + 4].try_into().expect("4-byte slice"))
}
fn read_u64(page: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(page[at..at + 8].try_into().expect("8-byte slice"))
}

/// The decoded common header of a page.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PageHeader {
    /// The stored checksum.
    pub checksum: u32,
    /// The format version.
    pub version: u16,
    /// The page type.
    pub page_type: PageType,
    /// Reserved flags.
    pub flags: u8,
    /// LSN of the last WAL record that changed the page.
    pub lsn: Lsn,
    /// The page's own id, as written.
    pub page_id: PageId,
}

impl PageHeader {
    /// Reads the header fields of `page` without validating them.
    ///
    /// Panics if `page` is shorter than the header, which callers guarantee (a page buffer is
    /// always a whole page).
    pub fn read(page: &[u8]) -> PageHeader {
        assert!(
            page.len() >= PAGE_HEADER_SIZE,
            "page buffer of {} bytes",
            page.len()
        );
        PageHeader {
            checksum: read_u32(page, CHECKSUM_OFFSET),
            version: read_u16(page, VERSION_OFFSET),
            page_type: PageType(page[PAGE_TYPE_OFFSET]),
            flags: page[FLAGS_OFFSET],
            lsn: Lsn(read_u64(page, LSN_OFFSET)),
            page_id: PageId(read_u64(page, PAGE_ID_OFFSET)),
        }
    }
}

/// Writes a fresh header for a new page of `page_type` at `page_id`, zeroing the body.
pub fn init_page(page: &mut [u8], page_id: PageId, page_type: PageType) {
    page.fill(0);
    page[VERSION_OFFSET..VERSION_OFFSET + 2].copy_from_slice(&PAGE_FORMAT_VERSION.to_le_bytes());
    page[PAGE_TYPE_OFFSET] = page_type.0;
    page[PAGE_ID_OFFSET..PAGE_ID_OFFSET + 8].copy_from_slice(&page_id.0.to_le_bytes());
}

/// Reads the page LSN.
pub fn page_lsn(page: &[u8]) -> Lsn {
    Lsn(read_u64(page, LSN_OFFSET))
}

/// Sets the page LSN (done by whoever logs a change to the page).
pub fn set_page_lsn(page: &mut [u8], lsn: Lsn) {
    page[LSN_OFFSET..LSN_OFFSET + 8].copy_from_slice(&lsn.0.to_le_bytes());
}

/// Stamps the checksum into `page` just before it is written out at `page_id`.
///
/// Asserts the page is well-formed first: writing a page with a foreign page id or an unknown
/// version is a bug in the caller, and it is cheaper to catch it here than on the next read.
pub fn seal_page(page: &mut [u8], page_id: PageId) {
    let header = PageHeader::read(page);
    assert_eq!(
        header.version, PAGE_FORMAT_VERSION,
        "sealing page {page_id} with a bad version"
    );
    assert_eq!(
        header.page_id, page_id,
        "sealing a page whose header names another page"
    );
    let checksum = page_checksum(page, page_id);
    page[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&checksum.to_le_bytes());
}

/// Validates a page just read from `file` at `page_id`: checksum, version, self-identification.
///
/// An all-zero page is accepted as a page that was never written (a hole left by extending a
/// file out of order, or by a crash before the write): PostgreSQL treats such pages as "new"
/// the same way. The caller gets it back with `PageType::FREE`.
pub fn verify_page(page: &[u8], file: &Path, page_id: PageId) -> Result<PageHeader> {
    let header = PageHeader::read(page);
    if header.checksum == 0 && page.iter().all(|&b| b == 0) {
        return Ok(header);
    }
    let actual = page_checksum(page, page_id);
    if actual != header.checksum {
        return Err(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            page_id,
            expected: header.checksum,
            actual,
        });
    }
    if header.version != PAGE_FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            file: file.to_path_buf(),
            page_id,
            found: header.version,
            supported: PAGE_FORMAT_VERSION,
        });
    }
    if header.page_id != page_id {
        return Err(Error::CorruptPage {
            file: file.to_path_buf(),
            page_id,
            reason: format!("header names page {}", header.page_id),
        });
    }
    if header.flags != 0 {
        return Err(Error::CorruptPage {
            file: file.to_path_buf(),
            page_id,
            reason: format!("reserved flags are {:#04x}", header.flags),
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(size: PageSize, id: u64) -> Vec<u8> {
        let mut page = vec![0u8; size.bytes()];
        init_page(&mut page, PageId(id), PageType::RAW);
        page[100] = 42;
        set_page_lsn(&mut page, Lsn(7));
        seal_page(&mut page, PageId(id));
        page
    }

    /// A sealed page verifies at its own id and keeps its header fields.
    #[test]
    fn sealed_page_verifies() {
        for size in [PageSize::K4, PageSize::K8, PageSize::K16] {
            let page = sealed(size, 9);
            let header = verify_page(&page, Path::new("f"), PageId(9)).unwrap();
            assert_eq!(header.lsn, Lsn(7));
            assert_eq!(header.page_type, PageType::RAW);
            assert_eq!(header.page_id, PageId(9));
        }
    }

    /// Any single flipped bit is caught by the checksum, including bits of the checksum itself.
    #[test]
    fn any_bit_flip_is_a_checksum_mismatch() {
        let page = sealed(PageSize::K4, 3);
        for bit in (0..page.len() * 8).step_by(97) {
            let mut bad = page.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            let err = verify_page(&bad, Path::new("f"), PageId(3)).unwrap_err();
            assert!(
                matches!(err, Error::ChecksumMismatch { .. }),
                "bit {bit}: {err}"
            );
        }
    }

    /// A correct page read from the wrong offset fails: the page id is mixed into the checksum.
    #[test]
    fn misdirected_page_is_a_checksum_mismatch() {
        let page = sealed(PageSize::K8, 3);
        let err = verify_page(&page, Path::new("f"), PageId(4)).unwrap_err();
        assert!(matches!(
            err,
            Error::ChecksumMismatch {
                page_id: PageId(4),
                ..
            }
        ));
    }

    /// An all-zero page is a never-written page, not corruption.
    #[test]
    fn zero_page_is_free() {
        let page = vec![0u8; 8192];
        let header = verify_page(&page, Path::new("f"), PageId(1)).unwrap();
        assert_eq!(header.page_type, PageType::FREE);
    }

    /// The checksum is CRC-32C (Castagnoli), checked against the standard check value.
    #[test]
    fn checksum_is_castagnoli() {
        assert_eq!(crc32c::crc32c(b"123456789"), 0xE306_9283);
    }

    /// Only 4, 8 and 16 KiB pages are accepted.
    #[test]
    fn page_size_rejects_other_sizes() {
        assert!(PageSize::from_bytes(8192).is_ok());
        assert!(matches!(
            PageSize::from_bytes(1000),
            Err(Error::InvalidPageSize { size: 1000 })
        ));
    }
}
