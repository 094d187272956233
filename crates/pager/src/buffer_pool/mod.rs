//! The buffer pool: a fixed budget of frames caching pages, shared by every thread.
//!
//! ```text
//!   page table (64 shards)           frames                         disk
//!   +------------------+     +---------------------------+
//!   | (file, page) ->  |---->| latch | pins | dirty | tag |  <-- read / write-back -->  files
//!   |   frame id       |     | state | page bytes (8 KiB)|
//!   +------------------+     +---------------------------+
//!          ^                         ^
//!          |   pin/unpin             |   eviction policy (clock sweep | LRU), scan rings
//! ```
//!
//! **Pin, then latch.** A thread finds the page in the sharded page table, adds a pin under the
//! shard lock, releases the lock, then takes the frame's latch through a guard
//! ([`PageReadGuard`], [`PageWriteGuard`]). A pin keeps the page in its frame; the latch keeps
//! readers and writers apart. No lock is held while waiting for I/O or for a latch.
//!
//! **Misses.** The missing thread claims a frame (free list, then the eviction policy), maps it
//! in the state `Loading` and starts the read. Other threads that want the same page pin the
//! loading frame and wait; a waiter can itself pop the read's completion and install it, so
//! nobody depends on the thread that started the read being scheduled (the deadlock PostgreSQL's
//! AIO README warns about). A failed read (I/O error, checksum mismatch) unmaps the frame and
//! each waiter retries the read itself, so it gets the typed error first-hand.
//!
//! **Eviction and write-back.** A victim is taken only if unpinned. If dirty, it is copied under
//! a read latch, the [`WriteBackHook`] is told its LSN (the WAL makes the log durable that far:
//! the write-ahead rule), the copy is sealed with its checksum and written; only if nobody
//! pinned or dirtied it meanwhile is it unmapped and reused (PostgreSQL's `BufferAlloc` does the
//! same re-check).
//!
//! **Scans.** [`ScanRing`] confines a large scan to a few frames; [`ReadStream`] reads ahead
//! with a configurable depth and combines adjacent pages into one I/O.
//!
//! Simplified versus PostgreSQL: no background writer (evicting threads write their own
//! victims), no per-backend private refcount array (pins are shared atomics), a pool-wide
//! condition variable for "a read finished" rather than one per buffer.

mod eviction;
mod frame;
mod guard;
mod pool;
mod read_stream;
mod scan_ring;

pub use eviction::{ClockSweep, EvictionPolicy, Lru, PolicyKind, USAGE_COUNT_MAX};
pub use frame::{FrameId, PageKey};
pub use guard::{PageReadGuard, PageWriteGuard};
pub use pool::{BufferPool, FRAME_COUNT_MAX, PageValidator, PoolConfig, PoolStats, WriteBackHook};
pub use read_stream::{IO_COMBINE_MAX, READ_STREAM_DEPTH_MAX, ReadStream, ReadStreamConfig};
pub use scan_ring::{SCAN_RING_BYTES, ScanRing};
