//! `Frame`: one buffer-pool slot, and the states it moves through.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, Ordering};

use parking_lot::{Mutex, RwLock};

use crate::aligned_buf::AlignedBuf;
use crate::io::CompletionSink;
use crate::ledger::FileId;
use crate::page::PageId;

/// A frame's index in the pool.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FrameId(pub u32);

impl FrameId {
    /// The index as a `usize`.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// The identity of a cached page: which file, which page.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct PageKey {
    /// The file.
    pub file: FileId,
    /// The page within the file.
    pub page_id: PageId,
}

/// What a frame's bytes hold.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
pub(crate) enum FrameState {
    /// Holds nothing; on the free list, or claimed by a thread about to fill it.
    Empty = 0,
    /// Mapped in the page table, a read is in flight; the bytes are meaningless.
    Loading = 1,
    /// Holds the page named by its tag.
    Valid = 2,
    /// The read failed (I/O error or corrupt page); unmapped, waiting for its last pin to go.
    Failed = 3,
}

impl FrameState {
    fn from_u8(v: u8) -> FrameState {
        match v {
            0 => FrameState::Empty,
            1 => FrameState::Loading,
            2 => FrameState::Valid,
            3 => FrameState::Failed,
            _ => unreachable!("frame state {v}"),
        }
    }
}

/// One slot of the pool.
///
/// Invariants (checked by `BufferPool::check`):
/// 1. `tag` is `Some(k)` exactly when the page table maps `k` to this frame.
/// 2. The page table, `tag` and a transition out of `Valid` change only under the page-table
///    shard lock of the tag, and a frame leaves the table only with `pin_count == 1`, held by
///    the evicting thread; so a pinned frame keeps its page.
/// 3. Nobody latches a frame in `Loading`: readers wait for the state to change first, so the
///    thread completing the read can always take the write latch.
/// 4. `dirty` is set only under the write latch and cleared only under a latch, before the
///    bytes are copied for write-back; a change made after the copy sets it again.
pub(crate) struct Frame {
    /// The page bytes; the `RwLock` is the frame's latch.
    pub(crate) data: RwLock<AlignedBuf>,
    pub(crate) pin_count: AtomicU32,
    pub(crate) dirty: AtomicBool,
    state: AtomicU8,
    pub(crate) tag: Mutex<Option<PageKey>>,
    /// While `Loading`: the sink the read completes into, so a waiter can drive it.
    pub(crate) pending: Mutex<Option<Arc<CompletionSink>>>,
    /// Held from copying the page for write-back until the write completes, so two
    /// write-backs of one frame (an eviction and a flush) cannot land out of order and leave
    /// the older copy on disk with the page marked clean.
    pub(crate) write_back: Mutex<()>,
}

impl Frame {
    pub(crate) fn new(page_size: usize) -> Frame {
        Frame {
            data: RwLock::new(AlignedBuf::zeroed(page_size)),
            pin_count: AtomicU32::new(0),
            dirty: AtomicBool::new(false),
            state: AtomicU8::new(FrameState::Empty as u8),
            tag: Mutex::new(None),
            pending: Mutex::new(None),
            write_back: Mutex::new(()),
        }
    }

    pub(crate) fn state(&self) -> FrameState {
        FrameState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, state: FrameState) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub(crate) fn is_pinned(&self) -> bool {
        self.pin_count.load(Ordering::Acquire) > 0
    }
}
