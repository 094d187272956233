//! `BufferPool`: a fixed set of frames caching pages, with pin/unpin through guards.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex, RwLock};

use super::eviction::{EvictionPolicy, PolicyKind};
use super::frame::{Frame, FrameId, FrameState, PageKey};
use super::guard::{PageReadGuard, PageWriteGuard};
use super::scan_ring::ScanRing;
use crate::aligned_buf::AlignedBuf;
use crate::disk::Disk;
use crate::error::{Error, Result};
use crate::io::{CompletionSink, IoCompletion};
use crate::ledger::{FileId, IoCause};
use crate::page::{Lsn, PageId, PageType, init_page, page_lsn, seal_page};

/// Page-table shards; a power of two. More shards, less contention between threads that pin
/// different pages.
const SHARD_COUNT: usize = 64;
/// The largest pool accepted, in frames.
pub const FRAME_COUNT_MAX: usize = 1 << 24;
/// Pages written per batch by `flush_all`.
const FLUSH_BATCH_MAX: usize = 64;
/// How long a thread waiting for another thread's read sleeps before looking again. Only a
/// fallback: completions notify waiters directly.
const LOAD_WAIT_POLL: Duration = Duration::from_millis(1);

/// Called before a dirty page is written back; the WAL implements it to enforce the
/// write-ahead rule: the log must be durable up to the page's LSN before the page is written.
pub trait WriteBackHook: Send + Sync {
    /// Makes the log durable up to at least `page_lsn`.
    fn before_write_back(&self, page_lsn: Lsn) -> Result<()>;

    /// Called with the sealed images of the pages about to be written (after
    /// `before_write_back`), before any of them is written. A doublewrite area implements this:
    /// it makes the images durable elsewhere first, so a torn home write can be repaired.
    fn before_page_writes(&self, pages: &[(FileId, PageId, &[u8])]) -> Result<()> {
        let _ = pages;
        Ok(())
    }

    /// Called once the writes announced by a successful `before_page_writes` have completed
    /// (or failed); a doublewrite area may then reuse its space.
    fn after_page_writes(&self) {}

    /// False if a page with this LSN must stay in memory for now: the WAL says so while an
    /// atomic group of records is open and the page carries a change of it (no-steal for the
    /// group; see crates/wal). Eviction then picks another frame and a flush leaves the page
    /// dirty.
    fn may_write_back(&self, page_lsn: Lsn) -> bool {
        let _ = page_lsn;
        true
    }
}

/// Checks a page's layout after it is read from disk: `Err(reason)` makes the read fail with
/// [`Error::CorruptPage`].
pub type PageValidator = dyn Fn(PageId, &[u8]) -> std::result::Result<(), String> + Send + Sync;

/// Settings for a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    /// Frames in the pool (the memory budget divided by the page size).
    pub frame_count: usize,
    /// The eviction policy.
    pub policy: PolicyKind,
}

impl PoolConfig {
    /// A pool of `frame_count` frames with the default (clock-sweep) policy.
    pub fn frames(frame_count: usize) -> PoolConfig {
        PoolConfig {
            frame_count,
            policy: PolicyKind::default(),
        }
    }

    /// A pool using about `bytes` of page memory at `page_size` bytes a page.
    pub fn memory(bytes: usize, page_size: usize) -> PoolConfig {
        PoolConfig::frames((bytes / page_size).max(1))
    }
}

/// Counters kept by the pool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Pins that found the page in the pool.
    pub hit_count: u64,
    /// Pins that had to read the page (or wait for a read in flight).
    pub miss_count: u64,
    /// Pages evicted to make room.
    pub eviction_count: u64,
    /// Dirty pages written back (eviction and flush).
    pub write_back_count: u64,
}

impl PoolStats {
    /// Hits over all pins, 0 if none.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hit_count + self.miss_count;
        if total == 0 {
            0.0
        } else {
            self.hit_count as f64 / total as f64
        }
    }
}

#[derive(Default)]
struct Counters {
    hit: AtomicU64,
    miss: AtomicU64,
    eviction: AtomicU64,
    write_back: AtomicU64,
}

/// A fast hasher for page keys (a multiplicative mix; keys are not attacker-chosen).
#[derive(Default)]
pub(crate) struct PageKeyHasher(u64);

impl Hasher for PageKeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type PageTable = HashMap<PageKey, FrameId, BuildHasherDefault<PageKeyHasher>>;

/// A read in flight: the frames a completion with this tag fills.
struct InflightRead {
    file: FileId,
    first: PageId,
    frames: Vec<FrameId>,
}

/// How a pin that misses should find a frame.
#[derive(Clone, Copy)]
pub(crate) enum Strategy<'r> {
    /// Any frame the eviction policy picks.
    Normal,
    /// Reuse the ring's frames (large scans).
    Ring(&'r ScanRing),
}

/// The buffer pool. See the module documentation for the design.
pub struct BufferPool {
    disk: Arc<Disk>,
    frames: Box<[Frame]>,
    shards: Box<[Mutex<PageTable>]>,
    free: Mutex<Vec<FrameId>>,
    policy: Box<dyn EvictionPolicy>,
    hook: RwLock<Option<Arc<dyn WriteBackHook>>>,
    validators: RwLock<HashMap<FileId, Arc<PageValidator>>>,
    inflight: Mutex<HashMap<u64, InflightRead>>,
    next_tag: AtomicU64,
    loaded: Condvar,
    loaded_lock: Mutex<()>,
    counters: Counters,
}

impl std::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufferPool")
            .field("frames", &self.frames.len())
            .field("policy", &self.policy.name())
            .field("stats", &self.stats())
            .finish()
    }
}

impl BufferPool {
    /// A pool of `config.frame_count` frames over `disk`.
    pub fn new(disk: Arc<Disk>, config: PoolConfig) -> Result<BufferPool> {
        let n = config.frame_count;
        if n == 0 || n > FRAME_COUNT_MAX {
            return Err(Error::InvalidArgument(format!(
                "pool of {n} frames (1..={FRAME_COUNT_MAX})"
            )));
        }
        let page_size = disk.page_size().bytes();
        let frames: Box<[Frame]> = (0..n).map(|_| Frame::new(page_size)).collect();
        // Hand out low frame numbers first (pop from the end).
        let free = (0..n as u32).rev().map(FrameId).collect();
        Ok(BufferPool {
            disk,
            frames,
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(PageTable::default()))
                .collect(),
            free: Mutex::new(free),
            policy: config.policy.build(n),
            hook: RwLock::new(None),
            validators: RwLock::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            next_tag: AtomicU64::new(1),
            loaded: Condvar::new(),
            loaded_lock: Mutex::new(()),
            counters: Counters::default(),
        })
    }

    /// The disk under the pool.
    pub fn disk(&self) -> &Arc<Disk> {
        &self.disk
    }

    /// Number of frames.
    pub fn frame_count(&self) -> usize {
        self.frames.len()
    }

    /// The page size in bytes.
    pub fn page_size(&self) -> usize {
        self.disk.page_size().bytes()
    }

    /// The eviction policy's name.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Installs a validator for the pages of `file`: every page read from disk into the pool
    /// passes its checksum and then this check before anyone can latch it. The structure that
    /// owns the file (a B+tree, a heap) checks its own layout here once per read, so the fast
    /// paths that follow can trust the bytes.
    pub fn set_validator(&self, file: FileId, validator: Arc<PageValidator>) {
        self.validators.write().insert(file, validator);
    }

    fn validate_pages(&self, file: FileId, first: PageId, buf: &[u8]) -> Result<()> {
        let Some(validator) = self.validators.read().get(&file).cloned() else {
            return Ok(());
        };
        let page_size = self.page_size();
        for (i, page) in buf.chunks(page_size).enumerate() {
            let page_id = PageId(first.0 + i as u64);
            if page.iter().all(|&b| b == 0) {
                continue;
            }
            if let Err(reason) = validator(page_id, page) {
                return Err(Error::CorruptPage {
                    file: self.disk.path(file)?,
                    page_id,
                    reason,
                });
            }
        }
        Ok(())
    }

    /// Installs the hook called before each dirty page is written (the WAL rule).
    pub fn set_write_back_hook(&self, hook: Arc<dyn WriteBackHook>) {
        *self.hook.write() = Some(hook);
    }

    /// The pool's counters.
    pub fn stats(&self) -> PoolStats {
        PoolStats {
            hit_count: self.counters.hit.load(Ordering::Relaxed),
            miss_count: self.counters.miss.load(Ordering::Relaxed),
            eviction_count: self.counters.eviction.load(Ordering::Relaxed),
            write_back_count: self.counters.write_back.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn count_pin(&self, hit: bool) {
        let counter = if hit {
            &self.counters.hit
        } else {
            &self.counters.miss
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_access(&self, frame_id: FrameId) {
        self.policy.record_access(frame_id);
    }

    pub(crate) fn frame(&self, id: FrameId) -> &Frame {
        &self.frames[id.index()]
    }

    fn shard(&self, key: &PageKey) -> &Mutex<PageTable> {
        let mut h = PageKeyHasher::default();
        h.write_u32(key.file.0);
        h.write_u64(key.page_id.0);
        &self.shards[(h.finish() >> 58) as usize % SHARD_COUNT]
    }

    /// Pins `page_id` of `file` and latches it for reading.
    pub fn read(&self, file: FileId, page_id: PageId) -> Result<PageReadGuard<'_>> {
        let key = PageKey { file, page_id };
        let frame = self.pin(key, Strategy::Normal, IoCause::ForegroundRead)?;
        Ok(PageReadGuard::new(self, frame, key))
    }

    /// Like [`read`](Self::read), but a miss reuses the frames of `ring`, so a large scan does
    /// not flush the rest of the pool (PostgreSQL's buffer access strategies).
    pub fn read_with_ring(
        &self,
        file: FileId,
        page_id: PageId,
        ring: &ScanRing,
    ) -> Result<PageReadGuard<'_>> {
        let key = PageKey { file, page_id };
        let frame = self.pin(key, Strategy::Ring(ring), IoCause::ForegroundRead)?;
        Ok(PageReadGuard::new(self, frame, key))
    }

    /// Pins `page_id` of `file` and latches it for writing; the page is marked dirty when first
    /// changed through the guard.
    pub fn write(&self, file: FileId, page_id: PageId) -> Result<PageWriteGuard<'_>> {
        let key = PageKey { file, page_id };
        let frame = self.pin(key, Strategy::Normal, IoCause::ForegroundRead)?;
        Ok(PageWriteGuard::new(self, frame, key))
    }

    /// Allocates a new page at the end of `file`, initialised with `page_type`, pinned and
    /// latched for writing. No read is done; the page reaches disk on write-back.
    pub fn new_page(&self, file: FileId, page_type: PageType) -> Result<PageWriteGuard<'_>> {
        let page_id = self.disk.allocate_page(file)?;
        let key = PageKey { file, page_id };
        let frame_id = self.claim_frame(Strategy::Normal)?;
        let frame = self.frame(frame_id);
        {
            let mut data = frame.data.write();
            init_page(&mut data, page_id, page_type);
        }
        let mut table = self.shard(&key).lock();
        assert!(
            !table.contains_key(&key),
            "freshly allocated page {page_id} already cached"
        );
        table.insert(key, frame_id);
        *frame.tag.lock() = Some(key);
        frame.set_state(FrameState::Valid);
        drop(table);
        self.policy.record_access(frame_id);
        let mut guard = PageWriteGuard::new(self, frame_id, key);
        guard.mark_dirty();
        Ok(guard)
    }

    /// Pins and write-latches `page_id` for a caller that will overwrite the whole page, without
    /// reading it: recovery restoring a full-page image over a torn page, or redoing a page past
    /// the end of the file (PostgreSQL's `RBM_ZERO_AND_LOCK`). A page not cached comes back
    /// zeroed with a fresh header of type `FREE`; a cached page comes back as it is.
    pub fn page_for_overwrite(&self, file: FileId, page_id: PageId) -> Result<PageWriteGuard<'_>> {
        self.disk.ensure_page_count(file, page_id.0 + 1)?;
        let key = PageKey { file, page_id };
        loop {
            {
                let table = self.shard(&key).lock();
                if let Some(&frame_id) = table.get(&key) {
                    self.frame(frame_id)
                        .pin_count
                        .fetch_add(1, Ordering::AcqRel);
                    drop(table);
                    if self.wait_loaded(frame_id) {
                        return Ok(PageWriteGuard::new(self, frame_id, key));
                    }
                    self.unpin(frame_id);
                    continue;
                }
            }
            let frame_id = self.claim_frame(Strategy::Normal)?;
            let frame = self.frame(frame_id);
            let mut table = self.shard(&key).lock();
            if table.contains_key(&key) {
                drop(table);
                self.release_claimed(frame_id);
                continue;
            }
            init_page(&mut frame.data.write(), page_id, PageType::FREE);
            table.insert(key, frame_id);
            *frame.tag.lock() = Some(key);
            frame.set_state(FrameState::Valid);
            drop(table);
            self.policy.record_access(frame_id);
            let mut guard = PageWriteGuard::new(self, frame_id, key);
            guard.mark_dirty();
            return Ok(guard);
        }
    }

    /// Pins the frame holding `key`, reading the page in if needed. The frame is `Valid` on
    /// return and the caller owns one pin.
    pub(crate) fn pin(
        &self,
        key: PageKey,
        strategy: Strategy<'_>,
        cause: IoCause,
    ) -> Result<FrameId> {
        loop {
            match self.pin_or_start_load(key, strategy)? {
                PinOutcome::Hit(frame_id) => {
                    self.counters.hit.fetch_add(1, Ordering::Relaxed);
                    self.policy.record_access(frame_id);
                    return Ok(frame_id);
                }
                PinOutcome::Loading(frame_id) => {
                    self.counters.miss.fetch_add(1, Ordering::Relaxed);
                    if self.wait_loaded(frame_id) {
                        self.policy.record_access(frame_id);
                        return Ok(frame_id);
                    }
                    // The other thread's read failed; try ourselves, to get the error first-hand.
                    self.unpin(frame_id);
                }
                PinOutcome::Claimed(frame_id) => {
                    self.counters.miss.fetch_add(1, Ordering::Relaxed);
                    let sink = CompletionSink::new();
                    self.start_read(key.file, key.page_id, vec![frame_id], cause, &sink)?;
                    let read = self.drive(&sink);
                    if self.wait_loaded(frame_id) {
                        self.policy.record_access(frame_id);
                        return Ok(frame_id);
                    }
                    self.unpin(frame_id);
                    // Our read failed. If a waiter popped our completion, we did not see the
                    // error: go round and read again.
                    read?;
                }
            }
        }
    }

    /// Looks `key` up; on a miss claims a frame and maps it `Loading` (the caller must then
    /// start the read). Returns without blocking on I/O.
    pub(crate) fn pin_or_start_load(
        &self,
        key: PageKey,
        strategy: Strategy<'_>,
    ) -> Result<PinOutcome> {
        {
            let table = self.shard(&key).lock();
            if let Some(&frame_id) = table.get(&key) {
                let frame = self.frame(frame_id);
                frame.pin_count.fetch_add(1, Ordering::AcqRel);
                return Ok(if frame.state() == FrameState::Valid {
                    PinOutcome::Hit(frame_id)
                } else {
                    PinOutcome::Loading(frame_id)
                });
            }
        }
        let page_count = self.disk.page_count(key.file)?;
        if key.page_id.0 >= page_count {
            return Err(Error::PageOutOfRange {
                file: self.disk.path(key.file)?,
                page_id: key.page_id,
                page_count,
            });
        }
        let frame_id = self.claim_frame(strategy)?;
        let frame = self.frame(frame_id);
        let mut table = self.shard(&key).lock();
        if let Some(&other) = table.get(&key) {
            // Another thread mapped the page while we looked for a frame: use theirs.
            self.frame(other).pin_count.fetch_add(1, Ordering::AcqRel);
            let valid = self.frame(other).state() == FrameState::Valid;
            drop(table);
            self.release_claimed(frame_id);
            return Ok(if valid {
                PinOutcome::Hit(other)
            } else {
                PinOutcome::Loading(other)
            });
        }
        frame.set_state(FrameState::Loading);
        *frame.tag.lock() = Some(key);
        table.insert(key, frame_id);
        Ok(PinOutcome::Claimed(frame_id))
    }

    /// Starts one (combined) read of adjacent pages `first..first+frames.len()` into the given
    /// claimed, `Loading` frames. Its completion goes to `sink`; whoever pops it must hand it to
    /// [`complete_read`](Self::complete_read).
    pub(crate) fn start_read(
        &self,
        file: FileId,
        first: PageId,
        frames: Vec<FrameId>,
        cause: IoCause,
        sink: &Arc<CompletionSink>,
    ) -> Result<()> {
        let tag = self.next_tag.fetch_add(1, Ordering::Relaxed);
        let count = frames.len();
        for &f in &frames {
            *self.frame(f).pending.lock() = Some(Arc::clone(sink));
        }
        self.inflight.lock().insert(
            tag,
            InflightRead {
                file,
                first,
                frames: frames.clone(),
            },
        );
        if let Err(e) = self.disk.submit_read(file, first, count, cause, sink, tag) {
            let read = self.inflight.lock().remove(&tag).expect("just inserted");
            self.fail_frames(&read.frames);
            return Err(e);
        }
        Ok(())
    }

    /// Pops and completes every completion of `sink` until it has nothing in flight; returns
    /// the first read error seen.
    pub(crate) fn drive(&self, sink: &CompletionSink) -> Result<()> {
        let mut result = Ok(());
        while let Some(done) = self.disk.wait(sink) {
            let r = self.complete_read(done);
            if result.is_ok() {
                result = r;
            }
        }
        result
    }

    /// Installs the pages of a finished read into their frames and wakes their waiters.
    /// Returns the read's error, if it failed (its frames are then `Failed`).
    pub(crate) fn complete_read(&self, done: IoCompletion) -> Result<()> {
        let Some(read) = self.inflight.lock().remove(&done.tag) else {
            panic!("completion with unknown tag {}", done.tag);
        };
        let result = self
            .disk
            .finish_read(read.file, read.first, done)
            .and_then(|buf| {
                self.validate_pages(read.file, read.first, &buf)?;
                Ok(buf)
            });
        let outcome = match result {
            Ok(mut buf) => {
                let page_size = self.page_size();
                let single = read.frames.len() == 1;
                for (i, &frame_id) in read.frames.iter().enumerate() {
                    let frame = self.frame(frame_id);
                    let page_id = PageId(read.first.0 + i as u64);
                    let mut data = frame.data.write();
                    if single {
                        // Swap the I/O buffer in: no copy for the common single-page read.
                        std::mem::swap(&mut *data, &mut buf);
                    } else {
                        data.copy_from_slice(&buf[i * page_size..(i + 1) * page_size]);
                    }
                    if data.iter().all(|&b| b == 0) {
                        // A never-written page: give it a header so it can be written back.
                        init_page(&mut data, page_id, PageType::FREE);
                    }
                    *frame.pending.lock() = None;
                    frame.set_state(FrameState::Valid);
                }
                Ok(())
            }
            Err(e) => {
                self.fail_frames(&read.frames);
                Err(e)
            }
        };
        let _guard = self.loaded_lock.lock();
        self.loaded.notify_all();
        outcome
    }

    /// Marks frames whose read failed: unmapped, `Failed`, freed when their last pin goes.
    fn fail_frames(&self, frames: &[FrameId]) {
        for &frame_id in frames {
            let frame = self.frame(frame_id);
            let key = frame.tag.lock().expect("a loading frame is mapped");
            let mut table = self.shard(&key).lock();
            table.remove(&key);
            *frame.tag.lock() = None;
            *frame.pending.lock() = None;
            frame.set_state(FrameState::Failed);
        }
        let _guard = self.loaded_lock.lock();
        self.loaded.notify_all();
    }

    /// Waits until a pinned frame leaves `Loading`; true if it is now `Valid`. Drives the read's
    /// sink itself if it can, so the wait never depends on the thread that started the read.
    pub(crate) fn wait_loaded(&self, frame_id: FrameId) -> bool {
        let frame = self.frame(frame_id);
        loop {
            match frame.state() {
                FrameState::Valid => return true,
                FrameState::Failed | FrameState::Empty => return false,
                FrameState::Loading => {}
            }
            let pending = frame.pending.lock().clone();
            if let Some(sink) = pending
                && let Some(done) = self.disk.wait(&sink)
            {
                // An error here belongs to whoever asked for that page; they will see `Failed`.
                let _ = self.complete_read(done);
                continue;
            }
            // Someone else popped the completion and is installing it.
            let mut guard = self.loaded_lock.lock();
            if frame.state() == FrameState::Loading {
                self.loaded.wait_for(&mut guard, LOAD_WAIT_POLL);
            }
        }
    }

    /// Drops one pin. A failed frame whose last pin goes returns to the free list.
    pub(crate) fn unpin(&self, frame_id: FrameId) {
        let frame = self.frame(frame_id);
        let before = frame.pin_count.fetch_sub(1, Ordering::AcqRel);
        assert!(before > 0, "unpin of unpinned frame {frame_id:?}");
        if before == 1 && frame.state() == FrameState::Failed {
            frame.set_state(FrameState::Empty);
            self.free.lock().push(frame_id);
        }
    }

    /// Gives back a claimed frame that was not used.
    fn release_claimed(&self, frame_id: FrameId) {
        let frame = self.frame(frame_id);
        frame.set_state(FrameState::Empty);
        frame.pin_count.store(0, Ordering::Release);
        self.free.lock().push(frame_id);
    }

    /// Finds a frame for a new page: from the free list, the ring, or by evicting. The frame
    /// is returned pinned once, unmapped, clean and `Empty`.
    pub(crate) fn claim_frame(&self, strategy: Strategy<'_>) -> Result<FrameId> {
        if let Some(frame_id) = self.free.lock().pop() {
            let frame = self.frame(frame_id);
            let was = frame.pin_count.swap(1, Ordering::AcqRel);
            assert_eq!(was, 0, "free frame {frame_id:?} was pinned");
            if let Strategy::Ring(ring) = strategy {
                ring.add(frame_id);
            }
            return Ok(frame_id);
        }
        if let Strategy::Ring(ring) = strategy
            && let Some(frame_id) = ring.next_reusable()
            && self.try_evict(frame_id)?
        {
            ring.add(frame_id);
            return Ok(frame_id);
        }
        // Each failed attempt means a frame was pinned between proposal and eviction; bound
        // the retries so an all-pinned pool is an error, not a spin.
        for _ in 0..self.frames.len().max(16) * 2 {
            let Some(frame_id) = self.policy.victim(&|f| self.frame(f).is_pinned()) else {
                break;
            };
            if self.try_evict(frame_id)? {
                if let Strategy::Ring(ring) = strategy {
                    ring.add(frame_id);
                }
                return Ok(frame_id);
            }
            if let Some(frame_id) = self.free.lock().pop() {
                let was = self.frame(frame_id).pin_count.swap(1, Ordering::AcqRel);
                assert_eq!(was, 0, "free frame {frame_id:?} was pinned");
                return Ok(frame_id);
            }
        }
        Err(Error::PoolExhausted {
            frame_count: self.frames.len(),
        })
    }

    /// Tries to take `frame_id` away from its page: succeeds only if nobody pins it, writing it
    /// back first if dirty. On success the frame is pinned once by the caller, unmapped, clean.
    fn try_evict(&self, frame_id: FrameId) -> Result<bool> {
        let frame = self.frame(frame_id);
        let Some(key) = *frame.tag.lock() else {
            return Ok(false); // Free (on the free list) or being filled: not ours to take.
        };
        {
            let table = self.shard(&key).lock();
            if table.get(&key) != Some(&frame_id) || frame.state() != FrameState::Valid {
                return Ok(false);
            }
            // Pins are only added under this lock, so 0 -> 1 here cannot race with a new pin.
            if frame
                .pin_count
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
            {
                return Ok(false);
            }
        }
        if frame.dirty.load(Ordering::Acquire) {
            match self.write_back(frame_id, key, IoCause::EvictionWriteBack) {
                Ok(true) => {}
                Ok(false) => {
                    // Held back by the write-back hook (an open atomic group): not evictable.
                    self.unpin(frame_id);
                    return Ok(false);
                }
                Err(e) => {
                    self.unpin(frame_id);
                    return Err(e);
                }
            }
        }
        let mut table = self.shard(&key).lock();
        // Someone may have pinned (and dirtied) the page while we wrote it: then it stays.
        if frame.pin_count.load(Ordering::Acquire) != 1 || frame.dirty.load(Ordering::Acquire) {
            drop(table);
            self.unpin(frame_id);
            return Ok(false);
        }
        table.remove(&key);
        *frame.tag.lock() = None;
        frame.set_state(FrameState::Empty);
        drop(table);
        self.counters.eviction.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Copies a pinned dirty frame, applies the WAL rule, seals and writes it; waits for the
    /// write to complete. False (and the page stays dirty) if the hook holds the page back.
    fn write_back(&self, frame_id: FrameId, key: PageKey, cause: IoCause) -> Result<bool> {
        let _one_at_a_time = self.frame(frame_id).write_back.lock();
        let (buf, lsn) = self.copy_for_write(frame_id, key)?;
        if let Some(hook) = self.hook.read().clone() {
            if !hook.may_write_back(lsn) {
                self.frame(frame_id).dirty.store(true, Ordering::Release);
                return Ok(false);
            }
            let ready = hook
                .before_write_back(lsn)
                .and_then(|()| hook.before_page_writes(&[(key.file, key.page_id, &buf[..])]));
            if let Err(e) = ready {
                self.frame(frame_id).dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        let written = self.disk.write_page(key.file, key.page_id, buf, cause);
        if let Some(hook) = self.hook.read().clone() {
            hook.after_page_writes();
        }
        if let Err(e) = written {
            self.frame(frame_id).dirty.store(true, Ordering::Release);
            return Err(e);
        }
        self.counters.write_back.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    /// Under a read latch: clears `dirty` and copies the page, sealed with its checksum.
    fn copy_for_write(&self, frame_id: FrameId, key: PageKey) -> Result<(AlignedBuf, Lsn)> {
        let frame = self.frame(frame_id);
        let data = frame.data.read();
        frame.dirty.store(false, Ordering::Release);
        let mut buf = AlignedBuf::zeroed(data.len());
        buf.copy_from_slice(&data);
        drop(data);
        let lsn = page_lsn(&buf);
        seal_page(&mut buf, key.page_id);
        Ok((buf, lsn))
    }

    /// Writes every dirty page back and syncs every file written: after it returns, everything
    /// changed before the call is durable.
    pub fn flush_all(&self) -> Result<()> {
        self.flush(None, IoCause::Flush)
    }

    /// Writes back and syncs the dirty pages of one file.
    pub fn flush_file(&self, file: FileId) -> Result<()> {
        self.flush(Some(file), IoCause::Flush)
    }

    /// Writes back dirty pages (of `only` if given, else all) in batches, then syncs each file
    /// written; every I/O is charged to `cause` (e.g. `Checkpoint`).
    pub fn flush(&self, only: Option<FileId>, cause: IoCause) -> Result<()> {
        let mut written: HashSet<FileId> = HashSet::new();
        let mut batch: Vec<(FrameId, PageKey)> = Vec::new();
        for i in 0..self.frames.len() {
            let frame_id = FrameId(i as u32);
            let frame = self.frame(frame_id);
            if !frame.dirty.load(Ordering::Acquire) {
                continue;
            }
            let Some(key) = *frame.tag.lock() else {
                continue;
            };
            if only.is_some_and(|f| f != key.file) {
                continue;
            }
            {
                let table = self.shard(&key).lock();
                if table.get(&key) != Some(&frame_id) || frame.state() != FrameState::Valid {
                    continue;
                }
                frame.pin_count.fetch_add(1, Ordering::AcqRel);
            }
            batch.push((frame_id, key));
            if batch.len() == FLUSH_BATCH_MAX {
                self.write_batch(std::mem::take(&mut batch), cause, &mut written)?;
            }
        }
        self.write_batch(batch, cause, &mut written)?;
        let mut files: Vec<FileId> = written.into_iter().collect();
        files.sort();
        for file in files {
            self.disk.sync(file, cause)?;
        }
        Ok(())
    }

    /// Writes a batch of pinned frames with one submission; unpins them all.
    fn write_batch(
        &self,
        batch: Vec<(FrameId, PageKey)>,
        cause: IoCause,
        written: &mut HashSet<FileId>,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut result = Ok(());
        // Frames are in ascending order (flush walks the frames in order), so two flushes take
        // these locks in the same order; an eviction takes one and holds no other.
        let _one_at_a_time: Vec<_> = batch
            .iter()
            .map(|&(frame_id, _)| self.frame(frame_id).write_back.lock())
            .collect();
        let mut copies = Vec::with_capacity(batch.len());
        let mut lsn_max = Lsn(0);
        let hook = self.hook.read().clone();
        for &(frame_id, key) in &batch {
            let (buf, lsn) = self.copy_for_write(frame_id, key)?;
            if hook.as_ref().is_some_and(|h| !h.may_write_back(lsn)) {
                // Held back (an open atomic group): stays dirty for a later flush.
                self.frame(frame_id).dirty.store(true, Ordering::Release);
                continue;
            }
            lsn_max = lsn_max.max(lsn);
            copies.push((frame_id, key, buf));
        }
        let targets: Vec<(FrameId, PageKey)> = copies.iter().map(|&(f, k, _)| (f, k)).collect();
        if copies.is_empty() {
            // Everything was held back: nothing to write.
        } else if let Some(hook) = hook {
            result = hook.before_write_back(lsn_max).and_then(|()| {
                let images: Vec<(FileId, PageId, &[u8])> = copies
                    .iter()
                    .map(|(_, key, buf)| (key.file, key.page_id, &buf[..]))
                    .collect();
                hook.before_page_writes(&images)
            });
        }
        if result.is_ok() && !copies.is_empty() {
            let sink = CompletionSink::new();
            for (i, (_, key, buf)) in copies.into_iter().enumerate() {
                let submitted = self.disk.submit_writes(
                    key.file,
                    vec![(key.page_id, buf, i as u64)],
                    cause,
                    &sink,
                );
                if let Err(e) = submitted {
                    result = Err(e);
                    break;
                }
            }
            while let Some(done) = self.disk.wait(&sink) {
                let (frame_id, key) = targets[done.tag as usize];
                match done.expect_full() {
                    Ok(()) => {
                        self.counters.write_back.fetch_add(1, Ordering::Relaxed);
                        written.insert(key.file);
                    }
                    Err(e) => {
                        self.frame(frame_id).dirty.store(true, Ordering::Release);
                        if result.is_ok() {
                            result = Err(e);
                        }
                    }
                }
            }
            if let Some(hook) = self.hook.read().clone() {
                hook.after_page_writes();
            }
        }
        if result.is_err() {
            for &(frame_id, _) in &batch {
                self.frame(frame_id).dirty.store(true, Ordering::Release);
            }
        }
        for (frame_id, _) in batch {
            self.unpin(frame_id);
        }
        result
    }

    /// Drops every clean, unpinned page of `file` from the pool (e.g. before measuring cold
    /// reads). Dirty pages stay.
    pub fn evict_file(&self, file: FileId) -> Result<()> {
        for i in 0..self.frames.len() {
            let frame_id = FrameId(i as u32);
            let frame = self.frame(frame_id);
            let matches = frame.tag.lock().is_some_and(|k| k.file == file);
            if matches && !frame.dirty.load(Ordering::Acquire) && self.try_evict(frame_id)? {
                frame.pin_count.store(0, Ordering::Release);
                self.free.lock().push(frame_id);
            }
        }
        Ok(())
    }

    /// True if the page is in the pool (valid or loading).
    pub fn contains(&self, file: FileId, page_id: PageId) -> bool {
        let key = PageKey { file, page_id };
        self.shard(&key).lock().contains_key(&key)
    }

    /// Validates the pool's invariants: the page table and frame tags agree, free frames are
    /// unmapped and unpinned, no frame is left `Loading`, and (as this is meant to be called
    /// with no other thread using the pool) no frame is pinned.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(Error::InvalidArgument(format!("buffer pool check: {what}")));
        let mut mapped = 0usize;
        for shard in self.shards.iter() {
            for (key, &frame_id) in shard.lock().iter() {
                mapped += 1;
                let tag = *self.frame(frame_id).tag.lock();
                if tag != Some(*key) {
                    return bad(format!("{key:?} maps to {frame_id:?} tagged {tag:?}"));
                }
            }
        }
        let free: HashSet<FrameId> = self.free.lock().iter().copied().collect();
        let mut tagged = 0usize;
        for (i, frame) in self.frames.iter().enumerate() {
            let frame_id = FrameId(i as u32);
            let pins = frame.pin_count.load(Ordering::Acquire);
            if pins != 0 {
                return bad(format!("{frame_id:?} still has {pins} pins"));
            }
            let state = frame.state();
            let tag = *frame.tag.lock();
            match (tag, state) {
                (Some(_), FrameState::Valid) => tagged += 1,
                (None, FrameState::Empty) => {
                    if !free.contains(&frame_id) {
                        return bad(format!("{frame_id:?} is empty but not on the free list"));
                    }
                }
                (tag, state) => return bad(format!("{frame_id:?} is {state:?} with tag {tag:?}")),
            }
            if free.contains(&frame_id) && tag.is_some() {
                return bad(format!("{frame_id:?} is on the free list and mapped"));
            }
        }
        if tagged != mapped {
            return bad(format!(
                "{mapped} page-table entries but {tagged} tagged frames"
            ));
        }
        if !self.inflight.lock().is_empty() {
            return bad("reads still in flight".into());
        }
        Ok(())
    }
}

/// What a pin found.
pub(crate) enum PinOutcome {
    /// The page is valid in this frame; pinned.
    Hit(FrameId),
    /// Another thread is reading the page into this frame; pinned, wait for it.
    Loading(FrameId),
    /// The page was not cached; this frame is claimed, mapped and `Loading`: start the read.
    Claimed(FrameId),
}
