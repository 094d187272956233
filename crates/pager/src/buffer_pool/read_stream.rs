//! `ReadStream`: reads pages ahead of the consumer, combining adjacent ones.

use std::collections::VecDeque;
use std::sync::Arc;

use super::frame::{FrameId, PageKey};
use super::guard::PageReadGuard;
use super::pool::{BufferPool, PinOutcome, Strategy};
use super::scan_ring::ScanRing;
use crate::error::Result;
use crate::io::CompletionSink;
use crate::ledger::{FileId, IoCause};
use crate::page::PageId;

/// The deepest look-ahead accepted.
pub const READ_STREAM_DEPTH_MAX: usize = 1024;
/// The most pages combined into one read.
pub const IO_COMBINE_MAX: usize = 128;

/// How far and how wide a stream reads ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadStreamConfig {
    /// Pages pinned ahead of the consumer (PostgreSQL's `effective_io_concurrency`, counted in
    /// pages rather than I/Os). 1 means no prefetch.
    pub depth: usize,
    /// Most adjacent pages merged into one read (PostgreSQL's `io_combine_limit`, in pages).
    pub combine_max: usize,
}

impl Default for ReadStreamConfig {
    fn default() -> Self {
        ReadStreamConfig {
            depth: 32,
            combine_max: 16,
        }
    }
}

/// An iterator of page guards over a sequence of pages of one file, with prefetch.
///
/// The stream keeps up to `depth` pages pinned ahead of the consumer. Each page it meets is
/// either cached (pinned at once), already being read by someone (pinned, waited for later),
/// or missing: then it claims a frame, and a run of missing pages with consecutive ids (up to
/// `combine_max`) is read with a single I/O into one buffer. Reads are asynchronous: with the
/// io_uring or worker backend, `depth` reads are in the device at once, which is what turns a
/// 1-in-flight reader into a 32-in-flight one. With the sync backend each read completes as it
/// is submitted, so the stream still combines reads but cannot overlap them.
///
/// This is the shape of PostgreSQL 17's read stream API, simplified: a fixed depth rather than
/// one that grows while hits are rare, and no advice (`posix_fadvise`) path.
pub struct ReadStream<'a, I: Iterator<Item = PageId>> {
    pool: &'a BufferPool,
    file: FileId,
    pages: I,
    config: ReadStreamConfig,
    ring: Option<&'a ScanRing>,
    sink: Arc<CompletionSink>,
    queue: VecDeque<(PageId, FrameId)>,
    run: Vec<FrameId>,
    run_first: PageId,
}

impl<'a, I: Iterator<Item = PageId>> ReadStream<'a, I> {
    /// A stream over `pages` of `file`. The depth is capped at a quarter of the pool, so a
    /// stream can never pin the whole pool.
    pub fn new(pool: &'a BufferPool, file: FileId, pages: I, config: ReadStreamConfig) -> Self {
        let depth = config
            .depth
            .clamp(1, READ_STREAM_DEPTH_MAX)
            .min((pool.frame_count() / 4).max(1));
        let combine_max = config.combine_max.clamp(1, IO_COMBINE_MAX).min(depth);
        ReadStream {
            pool,
            file,
            pages,
            config: ReadStreamConfig { depth, combine_max },
            ring: None,
            sink: CompletionSink::new(),
            queue: VecDeque::with_capacity(depth),
            run: Vec::with_capacity(combine_max),
            run_first: PageId(0),
        }
    }

    /// Uses `ring` for the frames of missing pages (for scans larger than the pool).
    pub fn with_ring(mut self, ring: &'a ScanRing) -> Self {
        self.ring = Some(ring);
        self
    }

    /// The effective configuration after capping.
    pub fn config(&self) -> ReadStreamConfig {
        self.config
    }

    fn strategy(&self) -> Strategy<'a> {
        match self.ring {
            Some(ring) => Strategy::Ring(ring),
            None => Strategy::Normal,
        }
    }

    /// Starts the read of the pending run of missing pages, if any.
    fn start_run(&mut self) -> Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        let frames = std::mem::take(&mut self.run);
        self.pool.start_read(
            self.file,
            self.run_first,
            frames,
            IoCause::Prefetch,
            &self.sink,
        )
    }

    /// Pins pages until `depth` are queued or the input ends.
    ///
    /// It tops up only once there is room for a whole combined read (or nothing is queued),
    /// otherwise a consumer taking one page at a time would make every read one page long.
    fn fill(&mut self) -> Result<()> {
        if !self.queue.is_empty() && self.queue.len() + self.config.combine_max > self.config.depth
        {
            return Ok(());
        }
        while self.queue.len() < self.config.depth {
            let Some(page_id) = self.pages.next() else {
                break;
            };
            let key = PageKey {
                file: self.file,
                page_id,
            };
            let outcome = match self.pool.pin_or_start_load(key, self.strategy()) {
                Ok(outcome) => outcome,
                Err(e) => {
                    self.start_run()?;
                    return Err(e);
                }
            };
            match outcome {
                PinOutcome::Hit(frame_id) => {
                    self.pool.count_pin(true);
                    self.start_run()?;
                    self.queue.push_back((page_id, frame_id));
                }
                PinOutcome::Loading(frame_id) => {
                    self.pool.count_pin(false);
                    self.start_run()?;
                    self.queue.push_back((page_id, frame_id));
                }
                PinOutcome::Claimed(frame_id) => {
                    self.pool.count_pin(false);
                    let extends = !self.run.is_empty()
                        && page_id.0 == self.run_first.0 + self.run.len() as u64
                        && self.run.len() < self.config.combine_max;
                    if !extends {
                        self.start_run()?;
                        self.run_first = page_id;
                    }
                    self.run.push(frame_id);
                    self.queue.push_back((page_id, frame_id));
                }
            }
        }
        self.start_run()
    }

    /// The next page, pinned and read-latched; `None` at the end.
    #[allow(clippy::should_implement_trait)] // Items borrow the pool; a plain method reads better.
    pub fn next(&mut self) -> Option<Result<PageReadGuard<'a>>> {
        if let Err(e) = self.fill() {
            return Some(Err(e));
        }
        let (page_id, frame_id) = self.queue.pop_front()?;
        let key = PageKey {
            file: self.file,
            page_id,
        };
        if self.pool.wait_loaded(frame_id) {
            self.pool.record_access(frame_id);
            return Some(Ok(PageReadGuard::new(self.pool, frame_id, key)));
        }
        // The read failed: read the page directly, which returns the error (or the page, if
        // the failure was transient).
        self.pool.unpin(frame_id);
        Some(
            self.pool
                .pin(key, self.strategy(), IoCause::ForegroundRead)
                .map(|frame_id| PageReadGuard::new(self.pool, frame_id, key)),
        )
    }
}

impl<I: Iterator<Item = PageId>> Drop for ReadStream<'_, I> {
    fn drop(&mut self) {
        // Reads in flight write into frames we pinned: let them finish, then let go.
        let _ = self.start_run();
        let _ = self.pool.drive(&self.sink);
        for (_, frame_id) in self.queue.drain(..) {
            self.pool.wait_loaded(frame_id);
            self.pool.unpin(frame_id);
        }
    }
}
