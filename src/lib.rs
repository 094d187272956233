//! storelab: storage-engine designs compared by experiment.
//!
//! This facade re-exports the layers so benchmarks, examples and users can depend on one
//! package. The layers, bottom up (see `docs/architecture.md`):
//!
//! - [`pager`]: pages and checksums, I/O backends (sync, worker, io_uring), device models, the
//!   buffer pool, and the I/O ledger.
//! - [`wal`]: the write-ahead log: records, commit modes (sync, group, off), torn-page
//!   protection, checkpoints and redo recovery.
//! - [`btree`]: a B+tree over the buffer pool, logged through the WAL: slotted nodes with
//!   fences, split policies, merges, overflow chains, cursors, bulk load and `check()`.

/// The B+tree (`storelab-btree`).
pub use storelab_btree as btree;
/// The page manager (`storelab-pager`).
pub use storelab_pager as pager;
/// The write-ahead log (`storelab-wal`).
pub use storelab_wal as wal;
