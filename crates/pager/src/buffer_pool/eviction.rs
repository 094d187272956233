//! Eviction policies: which unpinned frame gives up its page when a new one is needed.
//!
//! The pool asks the policy for a candidate and then tries to evict it; the attempt can fail
//! (the frame was pinned in the meantime), in which case it asks again. Policies see only frame
//! numbers and accesses, so the same access trace can be replayed against each of them.

use std::str::FromStr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};

use super::frame::FrameId;
use crate::error::{Error, Result};

/// A replacement policy.
pub trait EvictionPolicy: Send + Sync {
    /// The policy's name in reports.
    fn name(&self) -> &'static str;
    /// A page in `frame` was accessed (a hit, or a page just loaded into it).
    fn record_access(&self, frame: FrameId);
    /// Proposes a frame to evict, skipping frames for which `is_pinned` is true; `None` if a
    /// full pass found nothing.
    fn victim(&self, is_pinned: &dyn Fn(FrameId) -> bool) -> Option<FrameId>;
}

/// The policies that can be chosen by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum PolicyKind {
    /// PostgreSQL's clock sweep (the default).
    #[default]
    ClockSweep,
    /// Exact least-recently-used.
    Lru,
}

impl PolicyKind {
    /// Builds the policy for a pool of `frame_count` frames.
    pub fn build(self, frame_count: usize) -> Box<dyn EvictionPolicy> {
        match self {
            PolicyKind::ClockSweep => Box::new(ClockSweep::new(frame_count)),
            PolicyKind::Lru => Box::new(Lru::new(frame_count)),
        }
    }
}

impl FromStr for PolicyKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "clock" | "clock-sweep" => Ok(PolicyKind::ClockSweep),
            "lru" => Ok(PolicyKind::Lru),
            other => Err(Error::InvalidArgument(format!(
                "unknown eviction policy {other:?} (clock or lru)"
            ))),
        }
    }
}

/// The highest usage count a frame can reach (PostgreSQL's `BM_MAX_USAGE_COUNT`).
pub const USAGE_COUNT_MAX: u8 = 5;

/// PostgreSQL's clock sweep.
///
/// Each frame has a usage count, bumped (up to [`USAGE_COUNT_MAX`]) on access. The hand moves
/// round the frames; a frame with a non-zero count has it decremented and is passed over, a
/// frame at zero is the victim. An access is one relaxed atomic store, which is why PostgreSQL
/// chose it over LRU: no list to reorder under a lock on every hit. A page must go unused for up
/// to five full sweeps to be evicted, so hot pages survive a scan.
pub struct ClockSweep {
    usage: Vec<AtomicU8>,
    hand: AtomicUsize,
}

impl ClockSweep {
    /// A clock over `frame_count` frames.
    pub fn new(frame_count: usize) -> ClockSweep {
        ClockSweep {
            usage: (0..frame_count).map(|_| AtomicU8::new(0)).collect(),
            hand: AtomicUsize::new(0),
        }
    }
}

impl EvictionPolicy for ClockSweep {
    fn name(&self) -> &'static str {
        "clock"
    }

    fn record_access(&self, frame: FrameId) {
        let usage = &self.usage[frame.index()];
        let old = usage.load(Ordering::Relaxed);
        if old < USAGE_COUNT_MAX {
            // A lost update under a race only loses one bump; that is what PostgreSQL accepts too.
            usage.store(old + 1, Ordering::Relaxed);
        }
    }

    fn victim(&self, is_pinned: &dyn Fn(FrameId) -> bool) -> Option<FrameId> {
        let n = self.usage.len();
        // Enough steps to bring every count to zero and look once more.
        for _ in 0..n * (USAGE_COUNT_MAX as usize + 1) {
            let i = self.hand.fetch_add(1, Ordering::Relaxed) % n;
            let frame = FrameId(i as u32);
            if is_pinned(frame) {
                continue;
            }
            let usage = &self.usage[i];
            let count = usage.load(Ordering::Relaxed);
            if count > 0 {
                usage.store(count - 1, Ordering::Relaxed);
                continue;
            }
            return Some(frame);
        }
        None
    }
}

/// Exact least-recently-used, by access stamp.
///
/// Each access writes a global, increasing stamp into the frame's slot; the victim is the
/// unpinned frame with the smallest stamp, found by a scan. The scan is O(frames) per eviction,
/// which is fine for comparing hit ratios (the point of having this policy) but is the reason
/// real systems use a list or an approximation. A large scan flushes an LRU pool entirely,
/// which is what InnoDB's midpoint insertion and PostgreSQL's rings exist to prevent.
pub struct Lru {
    stamps: Vec<AtomicU64>,
    clock: AtomicU64,
}

impl Lru {
    /// An LRU over `frame_count` frames.
    pub fn new(frame_count: usize) -> Lru {
        Lru {
            stamps: (0..frame_count).map(|_| AtomicU64::new(0)).collect(),
            clock: AtomicU64::new(1),
        }
    }
}

impl EvictionPolicy for Lru {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn record_access(&self, frame: FrameId) {
        let stamp = self.clock.fetch_add(1, Ordering::Relaxed);
        self.stamps[frame.index()].store(stamp, Ordering::Relaxed);
    }

    fn victim(&self, is_pinned: &dyn Fn(FrameId) -> bool) -> Option<FrameId> {
        let mut best: Option<(u64, FrameId)> = None;
        for (i, stamp) in self.stamps.iter().enumerate() {
            let frame = FrameId(i as u32);
            if is_pinned(frame) {
                continue;
            }
            let s = stamp.load(Ordering::Relaxed);
            if best.is_none_or(|(b, _)| s < b) {
                best = Some((s, frame));
            }
        }
        best.map(|(_, f)| f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The clock passes over recently used frames and takes an unused one.
    #[test]
    fn clock_prefers_unused_frames() {
        let clock = ClockSweep::new(4);
        clock.record_access(FrameId(0));
        clock.record_access(FrameId(1));
        let victim = clock.victim(&|_| false).unwrap();
        assert!(victim == FrameId(2) || victim == FrameId(3), "{victim:?}");
    }

    /// The clock never proposes a pinned frame and gives up when all are pinned.
    #[test]
    fn clock_skips_pinned_frames() {
        let clock = ClockSweep::new(3);
        assert_eq!(clock.victim(&|f| f != FrameId(1)), Some(FrameId(1)));
        assert_eq!(clock.victim(&|_| true), None);
    }

    /// LRU takes the least recently accessed unpinned frame.
    #[test]
    fn lru_takes_oldest_access() {
        let lru = Lru::new(3);
        for f in [0, 1, 2, 0, 2] {
            lru.record_access(FrameId(f));
        }
        assert_eq!(lru.victim(&|_| false), Some(FrameId(1)));
        assert_eq!(lru.victim(&|f| f == FrameId(1)), Some(FrameId(0)));
    }
}
