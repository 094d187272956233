//! storelab's write-ahead log: one log shared by every engine, so commits and recovery cost
//! the same whatever the physical design above.
//!
//! ```text
//!   engine: change page(s) under write guards
//!        |  RecordBuilder (type, blocks: rel + page + redo data [+ page bytes], main data)
//!        v
//!   Wal::append ---> log buffer (tail block in memory) ---> Wal::commit(end)
//!                                                      sync:  flush + fdatasync now
//!                                                      group: one leader syncs for all
//!                                                      off:   background writer syncs later
//!   segments:  wal/0000000000000000.wal  wal/0000000000000001.wal ...  (16 MiB, preallocated)
//!   control:   wal/control  (two slots: last checkpoint, redo LSN)
//!   buffer pool write-back --> WriteBackHook: flush log to page LSN [+ doublewrite area]
//! ```
//!
//! The record format is in [`record`] and `docs/format/wal.md`: a 32-byte header (CRC-32C,
//! length, own LSN, previous record's LSN, type, block count), block headers, full-page images,
//! redo data. An LSN is a byte position in the log; a page's LSN is the end of the last record
//! that changed it.
//!
//! # Invariants
//!
//! 1. **Write-ahead rule.** A page is written only after the log is durable up to the page's
//!    LSN (the pool calls [`Wal`]'s `before_write_back` with it).
//! 2. **Durable commit.** In `sync` and `group` modes, `commit(lsn)` returns only after an
//!    fdatasync covered every log byte before `lsn`.
//! 3. **Records are atomic.** A record is accepted by the reader only whole: checksum, length,
//!    its own position and its predecessor's must all match. So a torn write, stale bytes of a
//!    recycled segment, or garbage after a torn tail end the log; they are never replayed.
//! 4. **Redo is idempotent.** A change is applied to a page only if the page's LSN is before
//!    the record's end, and then the page's LSN becomes that end.
//! 5. **Checkpoints bound recovery.** When the control file names redo LSN `r`, every change
//!    logged before `r` is in the data files, synced.
//!
//! # Atomic multi-page operations, and why redo-only is enough
//!
//! An operation that touches several pages (a heap page and two index pages for an insert) is
//! logged as *one* record with one block per page, and each page changed gets the record's
//! end as its LSN. That choice gives atomicity without undo:
//!
//! - The record is in the log whole or not at all (invariant 3): recovery either redoes all of
//!   its pages or none.
//! - None of its pages can reach disk before the record is durable (invariant 1: their LSN is
//!   the record's end). So if the record is lost in a crash, no page carries any part of it:
//!   nothing needs undoing. This is "no-steal" for the operation, enforced by LSNs rather than
//!   by pinning, and it costs nothing extra.
//! - Pages hold their write latches from the change until the record is appended, so two
//!   operations on one page are ordered the same in the page and in the log; redo in log order
//!   reproduces the page.
//!
//! An operation too big for one record ([`RECORD_SIZE_MAX`], [`BLOCKS_PER_RECORD_MAX`]
//! pages), or made of changes to several structures that each log their own records (a heap
//! tuple, then one entry per index), runs in an *atomic group* ([`atomic_group`]): recovery
//! replays the group's records only once it reads the group's end marker, and no page the
//! group changed may be written back until the group ends (no-steal, enforced by the
//! write-back hook), so a group cut short by a crash left no trace in any data file. This is
//! InnoDB's mini-transaction (`MLOG_MULTI_REC_END`) with the pages unlatched between records.
//!
//! The price, compared with ARIES, is that a group must fit in the buffer pool (its pages
//! stay in memory until it ends) and that there are no long transactions spanning many
//! operations: a multi-statement transaction (a later milestone,
//! with MVCC) will need either undo (ARIES, InnoDB's undo log) or versions that recovery can
//! ignore (PostgreSQL's heap: an aborted transaction's tuples are simply invisible).
//!
//! # Crash safety
//!
//! After a crash at any point: recovery reads the control file (the newer valid slot), redoes
//! every record from the redo LSN up to the first invalid one (the torn tail, discarded), and
//! checkpoints. Every commit that was acknowledged in `sync` or `group` mode is before the end
//! (invariant 2), so it is redone; every record after the end was never acknowledged and left no
//! trace in any page (the atomicity argument). Torn data pages are handled by the torn-page
//! mode: full-page images (PostgreSQL's `full_page_writes`: the first change of a page after a
//! checkpoint logs the whole page, and redo restores it), a doublewrite area (InnoDB), or none
//! (the checksum detects the damage and recovery stops with [`Error::UnrepairablePage`]).
//! `crates/wal/tests/crash.rs` crashes a workload at every sync point and at seeded random
//! points with torn writes, in every mode, and checks exactly this.
//!
//! # Log retention
//!
//! A component that rebuilds in-memory state from the log by its own replay (the LSM's
//! memtables) needs records older than the redo point. It registers a hook with
//! [`Wal::add_retention`] that returns the oldest LSN it still needs, and recycling keeps
//! every segment from the smallest of the redo LSN and the hooks' answers ([`retention`];
//! PostgreSQL's replication-slot `restart_lsn`). So a plain [`Wal::checkpoint`] is safe
//! whatever else shares the log. The format on disk does not change.
//!
//! # Simplified versus PostgreSQL and InnoDB
//!
//! - One log buffer under one mutex (PostgreSQL has parallel insertion slots); records are
//!   encoded under the lock.
//! - The tail block is rewritten on every flush; we assume a 4 KiB write is atomic on the
//!   device (so rewriting it cannot destroy records already durable in it). PostgreSQL makes the
//!   same assumption for its 8 KiB WAL pages only with `wal_sync_method` care.
//! - No archiving, no replication, no timelines; segments below the redo point are recycled or
//!   deleted at once, unless a retention hook still needs them (see below).
//! - Checkpoints are not spread out (no `checkpoint_completion_target`): one flush of the pool.
//! - The doublewrite area holds one batch at a time.
//!
//! # Further reading
//!
//! PostgreSQL `src/backend/access/transam/README` (WAL, full-page writes, checkpoints) and
//! `xlog.c`; the InnoDB manual's "Doublewrite Buffer" and "Redo Log" chapters; Mohan et al.,
//! "ARIES" (TODS 1992), for what undo adds.

pub mod atomic_group;
pub mod config;
pub mod control;
pub mod doublewrite;
pub mod error;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod retention;
pub mod segment;
pub mod wal;

pub use atomic_group::AtomicGroup;
pub use config::{CommitMode, TornPageMode, WalConfig};
pub use error::{Error, Result};
pub use reader::{EndReason, ReadEnd, WalReader};
pub use record::{
    BLOCKS_PER_RECORD_MAX, Block, BlockRef, RECORD_GROUP_END, RECORD_GROUP_FIRST, RECORD_IN_GROUP,
    RECORD_SIZE_MAX, Record, RecordBuilder, RecordType, RelId,
};
pub use recovery::{RecoveryReport, RedoFn, RedoRegistry};
pub use retention::{RetentionFn, RetentionId};
pub use wal::Wal;
