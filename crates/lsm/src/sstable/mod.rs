//! Sorted tables: the immutable files an LSM tree is made of.
//!
//! ```text
//!  table file (docs/format/sstable.md)
//!  +--------------+--------------+-----+--------------+--------------+-------------+--------+---------+
//!  | data block 0 | data block 1 | ... | data block n | filter block | index block | footer | padding |
//!  +--------------+--------------+-----+--------------+--------------+-------------+--------+---------+
//!   each block: payload + 1-byte compression + CRC-32C      last key ->      64 bytes   zeros to
//!                                                            block handle               4096 multiple
//! ```
//!
//! - [`block`]: `Block`, `BlockBuilder`, `BlockIter` (entries, prefix compression, restarts).
//! - [`bloom`]: `BloomFilter` (one per table).
//! - [`handle`]: `BlockHandle` and the block trailer (compression, checksum).
//! - [`footer`]: `Footer` (where index and filter are, version, magic).
//! - [`table`]: `SsTable` (an open table), `TableFile` (disk through the pager, or memory).
//! - [`builder`]: `SsTableBuilder`. [`iter`]: `SsTableIter`.

pub mod block;
pub mod bloom;
pub mod builder;
pub mod footer;
pub mod handle;
pub mod iter;
pub mod table;

pub use block::{Block, BlockBuilder, BlockIter};
pub use bloom::{BloomFilter, bloom_hash};
pub use builder::{BuiltTable, SsTableBuilder, TableOptions};
pub use footer::Footer;
pub use handle::BlockHandle;
pub use iter::SsTableIter;
pub use table::{ReadWindow, SsTable, TableFile, TableGet, TableId};
