//! `ScanRing`: a small private set of frames that a large scan recycles.

use std::collections::VecDeque;

use parking_lot::Mutex;

use super::frame::FrameId;

/// The default ring size in bytes: PostgreSQL's 256 KiB for sequential scans, chosen to fit in
/// the CPU's L2 cache while leaving room for readahead.
pub const SCAN_RING_BYTES: usize = 256 * 1024;

/// A ring of frames for one large scan (PostgreSQL's `BufferAccessStrategy`).
///
/// While the ring is smaller than its capacity, a miss takes a frame the normal way and adds it
/// to the ring. Once full, a miss evicts the ring's oldest frame and reuses it, so the scan
/// cycles through `capacity` frames instead of evicting the whole pool. A frame that cannot be
/// reused (someone else pinned it) leaves the ring and is replaced by a normal victim. Pages
/// the scan finds already cached are used in place and do not join the ring.
#[derive(Debug)]
pub struct ScanRing {
    frames: Mutex<VecDeque<FrameId>>,
    capacity: usize,
}

impl ScanRing {
    /// A ring of `capacity` frames (at least 1).
    pub fn new(capacity: usize) -> ScanRing {
        let capacity = capacity.max(1);
        ScanRing {
            frames: Mutex::new(VecDeque::with_capacity(capacity)),
            capacity,
        }
    }

    /// A ring of [`SCAN_RING_BYTES`] for pages of `page_size` bytes.
    pub fn for_scan(page_size: usize) -> ScanRing {
        ScanRing::new(SCAN_RING_BYTES / page_size)
    }

    /// The ring's capacity in frames.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn add(&self, frame: FrameId) {
        let mut frames = self.frames.lock();
        frames.push_back(frame);
        while frames.len() > self.capacity {
            frames.pop_front();
        }
    }

    /// The frame to try to reuse, once the ring is full.
    pub(crate) fn next_reusable(&self) -> Option<FrameId> {
        let mut frames = self.frames.lock();
        if frames.len() < self.capacity {
            None
        } else {
            frames.pop_front()
        }
    }
}
