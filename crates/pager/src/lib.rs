//! storelab's page manager: the layer every engine stands on.
//!
//! It turns files into checksummed, fixed-size pages, moves them between disk and memory
//! through a choice of I/O methods, caches them in a buffer pool, and counts every physical
//! I/O in a ledger that says which file it touched and why. The WAL, the B+tree, the heap and
//! the LSM all do their I/O through it, so that differences between engines are differences of
//! design, never of plumbing.
//!
//! ```text
//!   engines (heap, clustered, LSM), WAL
//!        |  pin / read / write / new_page / flush          PageReadGuard, PageWriteGuard
//!        v
//!   +---------------- BufferPool ----------------+  frames, page table, eviction policy,
//!   |                                            |  scan rings, read streams, write-back hook
//!   +--------------------+-----------------------+
//!                        | read / write pages (sealed and verified)
//!   +----------------- Disk ---------------------+  file table, page <-> byte offset,
//!   |                                 Ledger <---|  charge every I/O to (file, cause)
//!   +--------------------+-----------------------+
//!                        | IoRequest batches -> CompletionSink
//!   +--------------- IoBackend ------------------+  sync | worker | io_uring,
//!   |   optionally wrapped by a device model     |  SimulatedDevice | FaultDevice
//!   +--------------------------------------------+
//!                        |
//!                      files (buffered or O_DIRECT)
//! ```
//!
//! # The page
//!
//! Every page starts with a 24-byte header (see [`page`] and `docs/format/page.md`):
//!
//! ```text
//!  0        4        6    7    8                16               24          page_size
//!  +--------+--------+----+----+----------------+----------------+----- ... -----+
//!  |checksum|version |type|flag|    page LSN    |    page id     |  body          |
//!  +--------+--------+----+----+----------------+----------------+----- ... -----+
//! ```
//!
//! The checksum is CRC-32C of the page id followed by bytes 4.. of the page: computed when the
//! page is written out ([`page::seal_page`]), verified when it is read in
//! ([`page::verify_page`]). A page written to the wrong place, a torn write or a flipped bit is
//! [`Error::ChecksumMismatch`] naming the file and page, never a panic.
//!
//! # Invariants
//!
//! 1. A page on disk either is all zeros (never written) or carries a checksum that matches
//!    its contents and its position.
//! 2. Page bytes in memory are reached only through a guard, which holds a pin (the frame keeps
//!    its page) and a latch (readers and writers exclude each other).
//! 3. A dirty page is written only after the write-back hook has been told its LSN: with the
//!    WAL installed, the log is durable at least that far (the write-ahead rule).
//! 4. Every physical read, write and sync goes through [`Disk`] and is charged to the
//!    [`Ledger`] under a file and an [`IoCause`].
//! 5. After a sync fails, every later I/O returns [`Error::Poisoned`]: the kernel may have
//!    dropped the dirty data, and a retried fsync would lie.
//!
//! # Crash safety
//!
//! The pager alone promises only integrity (a damaged page is detected) and durability of what
//! [`BufferPool::flush_all`] or [`Disk::sync`] covered. Atomicity of multi-page changes and
//! torn-page repair are the WAL's job; the [`device::FaultDevice`] exists to test them.
//!
//! # Simplified versus PostgreSQL and InnoDB
//!
//! - No background writer or page cleaner: an evicting thread writes its own dirty victim.
//! - Pins are shared atomics, not a per-backend private array plus a shared count.
//! - The free list is a plain vector; there is no free-space handling at this layer (pages are
//!   only appended; reuse of pages is the engines' business).
//! - Reads of pages allocated but never written return a zeroed page (PostgreSQL's "new" page).
//!
//! # Further reading
//!
//! PostgreSQL `src/backend/storage/buffer/README` (pins, clock sweep, rings) and
//! `src/backend/storage/aio/README.md` (I/O methods, completion by any backend); the InnoDB
//! manual's "Buffer Pool" chapter (LRU midpoint insertion); Leis et al., "Virtual-Memory
//! Assisted Buffer Management" (vmcache, SIGMOD 2023) for what a modern pool can reach.

pub mod aligned_buf;
pub mod buffer_pool;
pub mod device;
pub mod disk;
pub mod error;
pub mod io;
pub mod ledger;
pub mod page;

pub use aligned_buf::AlignedBuf;
pub use buffer_pool::{
    BufferPool, PageReadGuard, PageWriteGuard, PoolConfig, ReadStream, ReadStreamConfig, ScanRing,
};
pub use disk::Disk;
pub use error::{Error, Result};
pub use ledger::{FileId, IoCause, IoCounts, Ledger, LedgerSnapshot};
pub use page::{Lsn, PageId, PageSize, PageType};
