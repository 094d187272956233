//! Page guards: the only way to touch a cached page's bytes.
//!
//! A guard holds one pin (the frame keeps its page while the guard lives) and the frame's
//! latch (shared for [`PageReadGuard`], exclusive for [`PageWriteGuard`]). Dropping the guard
//! releases the latch and then the pin. As in BusTub, there is no other path to the bytes, so a
//! page cannot be read while it is being replaced, nor changed without being marked dirty.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering;

use parking_lot::{RwLockReadGuard, RwLockWriteGuard};

use super::frame::{FrameId, PageKey};
use super::pool::BufferPool;
use crate::aligned_buf::AlignedBuf;
use crate::ledger::FileId;
use crate::page::{Lsn, PAGE_HEADER_SIZE, PageHeader, PageId, page_lsn, set_page_lsn};

/// A pinned page latched for reading.
pub struct PageReadGuard<'a> {
    pool: &'a BufferPool,
    frame_id: FrameId,
    key: PageKey,
    latch: Option<RwLockReadGuard<'a, AlignedBuf>>,
}

impl<'a> PageReadGuard<'a> {
    /// Latches a frame the caller has pinned; the guard takes over the pin.
    pub(crate) fn new(pool: &'a BufferPool, frame_id: FrameId, key: PageKey) -> Self {
        let latch = Some(pool.frame(frame_id).data.read());
        PageReadGuard {
            pool,
            frame_id,
            key,
            latch,
        }
    }

    /// The page's id.
    pub fn page_id(&self) -> PageId {
        self.key.page_id
    }

    /// The page's file.
    pub fn file(&self) -> FileId {
        self.key.file
    }

    /// The page's LSN.
    pub fn lsn(&self) -> Lsn {
        page_lsn(self)
    }

    /// The page's decoded header.
    pub fn header(&self) -> PageHeader {
        PageHeader::read(self)
    }

    /// The engine-owned bytes after the common header.
    pub fn body(&self) -> &[u8] {
        &self[PAGE_HEADER_SIZE..]
    }
}

impl Deref for PageReadGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.latch.as_ref().expect("latched until drop")
    }
}

impl Drop for PageReadGuard<'_> {
    fn drop(&mut self) {
        self.latch = None;
        self.pool.unpin(self.frame_id);
    }
}

/// A pinned page latched for writing. The first mutable access marks the page dirty, so a
/// writer may latch pages exclusively on its way down a tree without dirtying the ones it does
/// not change.
pub struct PageWriteGuard<'a> {
    pool: &'a BufferPool,
    frame_id: FrameId,
    key: PageKey,
    latch: Option<RwLockWriteGuard<'a, AlignedBuf>>,
    dirtied: bool,
}

impl<'a> PageWriteGuard<'a> {
    /// Latches a frame the caller has pinned; the guard takes over the pin.
    pub(crate) fn new(pool: &'a BufferPool, frame_id: FrameId, key: PageKey) -> Self {
        let latch = Some(pool.frame(frame_id).data.write());
        PageWriteGuard {
            pool,
            frame_id,
            key,
            latch,
            dirtied: false,
        }
    }

    /// The page's id.
    pub fn page_id(&self) -> PageId {
        self.key.page_id
    }

    /// The page's file.
    pub fn file(&self) -> FileId {
        self.key.file
    }

    /// Marks the page dirty without changing it (a new page must reach the disk as it is).
    pub fn mark_dirty(&mut self) {
        let _ = &mut **self;
    }

    /// The page's LSN.
    pub fn lsn(&self) -> Lsn {
        page_lsn(self)
    }

    /// Sets the page's LSN; done by whoever logs a change to the page.
    pub fn set_lsn(&mut self, lsn: Lsn) {
        set_page_lsn(self, lsn);
    }

    /// The page's decoded header.
    pub fn header(&self) -> PageHeader {
        PageHeader::read(self)
    }

    /// The engine-owned bytes after the common header.
    pub fn body(&self) -> &[u8] {
        &self[PAGE_HEADER_SIZE..]
    }

    /// The engine-owned bytes after the common header, mutably.
    pub fn body_mut(&mut self) -> &mut [u8] {
        &mut self[PAGE_HEADER_SIZE..]
    }
}

impl Deref for PageWriteGuard<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.latch.as_ref().expect("latched until drop")
    }
}

impl DerefMut for PageWriteGuard<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        if !self.dirtied {
            // Under the write latch, so write-back cannot be copying the page right now.
            self.pool
                .frame(self.frame_id)
                .dirty
                .store(true, Ordering::Release);
            self.dirtied = true;
        }
        self.latch.as_mut().expect("latched until drop")
    }
}

impl Drop for PageWriteGuard<'_> {
    fn drop(&mut self) {
        self.latch = None;
        self.pool.unpin(self.frame_id);
    }
}

impl std::fmt::Debug for PageReadGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageReadGuard")
            .field("key", &self.key)
            .field("frame", &self.frame_id)
            .finish()
    }
}

impl std::fmt::Debug for PageWriteGuard<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PageWriteGuard")
            .field("key", &self.key)
            .field("frame", &self.frame_id)
            .finish()
    }
}
