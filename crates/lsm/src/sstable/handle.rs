//! `BlockHandle` and the block trailer: how a block sits in a table file.
//!
//! ```text
//!  offset                                      offset + size
//!  +------------------------------------------+-------------+-----------+
//!  | payload (block contents, maybe LZ4)       | compression | CRC-32C   |
//!  +------------------------------------------+-------------+-----------+
//!                                                  u8            u32
//! ```
//!
//! The CRC-32C covers the payload and the compression byte. An LZ4 payload is the
//! uncompressed length (u32) followed by an LZ4 block. The handle (offset, size) names the
//! payload; the 5-byte trailer follows it.

use std::path::Path;

use crate::config::Compression;
use crate::error::{Error, Result};
use crate::sstable::block::BLOCK_SIZE_MAX;

/// Size of the trailer after every block payload.
pub const BLOCK_TRAILER_SIZE: usize = 5;
/// Size of an encoded [`BlockHandle`].
pub const BLOCK_HANDLE_SIZE: usize = 12;

/// Where a block's payload is in a table file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockHandle {
    /// Byte offset of the payload.
    pub offset: u64,
    /// Payload size in bytes (the trailer follows).
    pub size: u32,
}

impl BlockHandle {
    /// Offset 0..8 is `offset`, 8..12 is `size`.
    pub fn encode(&self) -> [u8; BLOCK_HANDLE_SIZE] {
        let mut out = [0u8; BLOCK_HANDLE_SIZE];
        out[..8].copy_from_slice(&self.offset.to_le_bytes());
        out[8..].copy_from_slice(&self.size.to_le_bytes());
        out
    }

    /// Decodes a handle; `Err` if `bytes` is not exactly one.
    pub fn decode(bytes: &[u8]) -> Result<BlockHandle, String> {
        if bytes.len() != BLOCK_HANDLE_SIZE {
            return Err(format!("block handle of {} bytes", bytes.len()));
        }
        Ok(BlockHandle {
            offset: u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")),
            size: u32::from_le_bytes(bytes[8..].try_into().expect("4 bytes")),
        })
    }

    /// Bytes the block takes in the file, trailer included.
    pub fn stored_size(&self) -> u64 {
        u64::from(self.size) + BLOCK_TRAILER_SIZE as u64
    }
}

/// Encodes block contents as stored (payload and trailer), compressing if asked and if it
/// pays; returns the bytes and the compression actually used.
pub fn seal_block(contents: &[u8], compression: Compression) -> Vec<u8> {
    let (code, mut out) = match compression {
        Compression::Lz4 => {
            let packed = lz4_flex::block::compress(contents);
            if packed.len() + 4 < contents.len() {
                let mut out = Vec::with_capacity(packed.len() + 4 + BLOCK_TRAILER_SIZE);
                out.extend_from_slice(&(contents.len() as u32).to_le_bytes());
                out.extend_from_slice(&packed);
                (Compression::Lz4.code(), out)
            } else {
                (Compression::None.code(), contents.to_vec())
            }
        }
        Compression::None => (Compression::None.code(), contents.to_vec()),
    };
    out.push(code);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// Checks and decompresses a stored block (payload and trailer, as read at `offset` of
/// `file`) into its contents.
pub fn unseal_block(stored: &[u8], file: &Path, offset: u64) -> Result<Vec<u8>> {
    let corrupt = |reason: String| Error::CorruptTable {
        file: file.to_path_buf(),
        offset,
        reason,
    };
    if stored.len() < BLOCK_TRAILER_SIZE {
        return Err(corrupt(format!("stored block of {} bytes", stored.len())));
    }
    let crc_at = stored.len() - 4;
    let expected = u32::from_le_bytes(stored[crc_at..].try_into().expect("4 bytes"));
    let actual = crc32c::crc32c(&stored[..crc_at]);
    if expected != actual {
        return Err(Error::ChecksumMismatch {
            file: file.to_path_buf(),
            offset,
            expected,
            actual,
        });
    }
    let code = stored[crc_at - 1];
    let payload = &stored[..crc_at - 1];
    match Compression::from_code(code) {
        Some(Compression::None) => Ok(payload.to_vec()),
        Some(Compression::Lz4) => {
            if payload.len() < 4 {
                return Err(corrupt("LZ4 block without its length".into()));
            }
            let len = u32::from_le_bytes(payload[..4].try_into().expect("4 bytes")) as usize;
            if len > BLOCK_SIZE_MAX {
                return Err(corrupt(format!("LZ4 block of {len} bytes uncompressed")));
            }
            let mut out = vec![0u8; len];
            let n = lz4_flex::block::decompress_into(&payload[4..], &mut out)
                .map_err(|e| corrupt(format!("LZ4: {e}")))?;
            if n != len {
                return Err(corrupt(format!("LZ4 block gave {n} of {len} bytes")));
            }
            Ok(out)
        }
        None => Err(corrupt(format!("compression code {code}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks round-trip with and without compression, and a flipped bit is a checksum error.
    #[test]
    fn sealed_blocks_round_trip_and_detect_damage() {
        let contents: Vec<u8> = (0..2000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        for c in [Compression::None, Compression::Lz4] {
            let stored = seal_block(&contents, c);
            if c == Compression::Lz4 {
                assert!(stored.len() < contents.len());
            }
            assert_eq!(unseal_block(&stored, Path::new("t"), 0).unwrap(), contents);
            let mut bad = stored.clone();
            bad[3] ^= 1;
            assert!(matches!(
                unseal_block(&bad, Path::new("t"), 0),
                Err(Error::ChecksumMismatch { .. })
            ));
        }
    }
}
