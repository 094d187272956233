//! Atomic groups: one operation logged as several records, replayed all or nothing.
//!
//! A heap insert changes a heap page and one leaf in every index; each B+tree logs its own
//! record. Recovery must not replay the heap tuple without its index entries (an index would
//! disagree with its table), so the engine opens an *atomic group* around the operation:
//!
//! ```text
//!   begin        record A        record B        record C        end marker
//!   (lock)   [FIRST|IN_GROUP]   [IN_GROUP]      [IN_GROUP]    [IN_GROUP|END] (no-op)
//!                 heap page       index 1 leaf    index 2 leaf
//! ```
//!
//! Two rules make the group atomic without undo, as InnoDB's mini-transactions
//! (`MLOG_MULTI_REC_END`) do:
//!
//! 1. **Recovery applies a group only when its end marker is read.** Records of a group are
//!    held back until then; a group cut short by the crash is dropped.
//! 2. **No page changed by an open group reaches disk** (no-steal for the group): while the
//!    group is open, the pool's write-back hook refuses every page whose LSN is past the
//!    group's first record; eviction picks another frame and a flush leaves the page dirty.
//!    So a dropped group left no trace in any data file.
//!
//! One group is open at a time in the whole log (a re-entrant lock, so a B+tree operation
//! that needs several records can open a nested group inside an engine's group). That makes
//! one writer at a time across the database while a group is open, as in SQLite, LMDB and
//! redb; the sync of the commit happens after the group ends, so commits still share syncs.
//! A checkpoint takes the same lock, so the redo pointer never falls inside a group.
//!
//! An operation that fails after appending records of its group cannot take its in-memory
//! page changes back (there is no undo), so dropping a group without [`AtomicGroup::end`]
//! after it logged anything poisons the log: every later call fails, and reopening recovers
//! to the last complete operation. Engines therefore validate an operation before changing
//! anything; only I/O failures arrive mid-group.

use std::cell::RefCell;
use std::sync::atomic::Ordering;

use parking_lot::ReentrantMutexGuard;
use storelab_pager::Lsn;

use crate::error::{Error, Result};
use crate::record::{
    RECORD_GROUP_END, RECORD_GROUP_FIRST, RECORD_IN_GROUP, RecordBuilder, RecordType,
};
use crate::wal::Wal;

/// No group is open (the value of `Wal::atomic_start`).
pub(crate) const NO_GROUP: u64 = u64::MAX;

/// The open group's bookkeeping, under the group lock.
#[derive(Debug, Default)]
pub(crate) struct AtomicGroupState {
    /// Nesting depth of the owner's `atomic_group` calls (0: no group open).
    pub(crate) depth: u32,
    /// Records the group has appended.
    pub(crate) record_count: u64,
}

/// An open atomic group; see the module documentation. End it with [`AtomicGroup::end`].
#[must_use = "a group must be ended, or the log is poisoned"]
pub struct AtomicGroup<'w> {
    wal: &'w Wal,
    guard: Option<ReentrantMutexGuard<'w, RefCell<AtomicGroupState>>>,
}

impl std::fmt::Debug for AtomicGroup<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicGroup").finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens an atomic group (waiting while another thread has one open): every record this
    /// thread appends until [`AtomicGroup::end`] is replayed by recovery all or nothing.
    /// Nested calls from the same thread join the open group.
    pub fn atomic_group(&self) -> Result<AtomicGroup<'_>> {
        self.check_poison()?;
        let guard = self.atomic.lock();
        let outermost = {
            let mut st = guard.borrow_mut();
            st.depth += 1;
            st.depth == 1
        };
        if outermost {
            self.atomic_depth_hint.fetch_add(1, Ordering::AcqRel);
        }
        Ok(AtomicGroup {
            wal: self,
            guard: Some(guard),
        })
    }

    /// The flags for a record this thread appends now, given the insert lock is held;
    /// counts the record into the thread's open group, if any.
    pub(crate) fn group_flags(&self, lsn: Lsn) -> u16 {
        if self.atomic_start.load(Ordering::Acquire) == NO_GROUP && !self.atomic_open() {
            return 0;
        }
        // Re-entrant: succeeds at once if this thread owns the group, and never blocks.
        let Some(guard) = self.atomic.try_lock() else {
            return 0; // Another thread's group: this record is not part of it.
        };
        let mut st = guard.borrow_mut();
        if st.depth == 0 {
            return 0;
        }
        st.record_count += 1;
        if st.record_count == 1 {
            self.atomic_start.store(lsn.0, Ordering::Release);
            RECORD_IN_GROUP | RECORD_GROUP_FIRST
        } else {
            RECORD_IN_GROUP
        }
    }

    /// True while some thread has a group open (a cheap pre-check for `group_flags`).
    fn atomic_open(&self) -> bool {
        self.atomic_depth_hint.load(Ordering::Acquire) > 0
    }

    /// True if no open group forbids writing a page whose LSN is `page_lsn`.
    pub(crate) fn page_may_be_written(&self, page_lsn: Lsn) -> bool {
        page_lsn.0 <= self.atomic_start.load(Ordering::Acquire)
    }

    /// True if the calling thread has an atomic group open (checkpoints then refuse to run).
    pub fn in_atomic_group(&self) -> bool {
        self.atomic.try_lock().is_some_and(|g| g.borrow().depth > 0)
    }
}

impl AtomicGroup<'_> {
    /// Ends the group: the outermost `end` appends the end marker (if the group logged
    /// anything) and returns the LSN to commit; a nested `end` returns the current insert
    /// position and leaves the group open for its owner.
    pub fn end(mut self) -> Result<Lsn> {
        let guard = self.guard.take().expect("ended once");
        let (depth, record_count) = {
            let st = guard.borrow();
            (st.depth, st.record_count)
        };
        if depth > 1 {
            guard.borrow_mut().depth -= 1;
            return Ok(self.wal.insert_lsn());
        }
        let result = if record_count > 0 {
            let marker = RecordBuilder::new(RecordType::NOOP);
            self.wal
                .append_with_flags(&marker, RECORD_IN_GROUP | RECORD_GROUP_END)
                .map(|(_, end)| end)
        } else {
            Ok(self.wal.insert_lsn())
        };
        if result.is_err() {
            self.wal
                .poison("the end of an atomic group could not be logged".into());
        }
        *guard.borrow_mut() = AtomicGroupState::default();
        self.wal.atomic_start.store(NO_GROUP, Ordering::Release);
        self.wal.atomic_depth_hint.fetch_sub(1, Ordering::AcqRel);
        drop(guard);
        result
    }
}

impl Drop for AtomicGroup<'_> {
    fn drop(&mut self) {
        let Some(guard) = self.guard.take() else {
            return;
        };
        let (depth, record_count) = {
            let st = guard.borrow();
            (st.depth, st.record_count)
        };
        if record_count > 0 {
            // Pages in memory hold part of an operation that can be neither finished nor
            // undone: stop everything; recovery will drop the group.
            self.wal
                .poison("an atomic group was abandoned after logging part of an operation".into());
        }
        if depth > 1 {
            guard.borrow_mut().depth -= 1;
            return;
        }
        *guard.borrow_mut() = AtomicGroupState::default();
        if record_count == 0 {
            self.wal.atomic_start.store(NO_GROUP, Ordering::Release);
        }
        // With records logged, `atomic_start` stays set: the poisoned log writes no page
        // carrying the abandoned group's changes.
        self.wal.atomic_depth_hint.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Refuses a checkpoint from inside a group (its redo pointer would fall inside the group).
pub(crate) fn refuse_checkpoint_in_group(wal: &Wal) -> Result<()> {
    if wal.in_atomic_group() {
        return Err(Error::InvalidState(
            "checkpoint requested inside an atomic group".into(),
        ));
    }
    Ok(())
}
