//! The doublewrite area: InnoDB's answer to torn pages.
//!
//! ```text
//! doublewrite file: a directory block, then up to DOUBLEWRITE_PAGES_MAX page images
//!  0                                   4096          4096 + page_size
//!  +-----------------------------------+-------------+-------------+---
//!  | magic "SLDBLWR1" | count u32 |    | image 0     | image 1     | ...
//!  | entries: (rel u32, page id u64)*  |             |             |
//!  | ... crc32c of bytes 0..4092 at 4092|            |             |
//!  +-----------------------------------+-------------+-------------+---
//! ```
//!
//! Before a batch of dirty pages is written to its home locations, the batch is written here
//! in one sequential write and synced. A crash can then tear a home write, but not both copies:
//! if the doublewrite write tore, the home writes had not started (they wait for its sync);
//! if a home write tore, the doublewrite copy is complete. Recovery, before redo, checks every
//! page listed in the directory and copies the doublewrite image over a home page that fails
//! its checksum. The price is every page written twice plus a sync per batch, which the ledger
//! shows under the `doublewrite` cause.
//!
//! One batch at a time: the area is busy from `write_batch` until `release`, so a second
//! writer cannot overwrite images whose home writes are still in flight.

use std::path::Path;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use storelab_pager::page::verify_page;
use storelab_pager::{AlignedBuf, BufferPool, Disk, FileId, IoCause, PageId};

use crate::error::Result;
use crate::record::RelId;

/// Pages per doublewrite batch (the pool's flush batch is no larger).
pub const DOUBLEWRITE_PAGES_MAX: usize = 64;
/// The doublewrite file's name in the WAL directory.
pub const DOUBLEWRITE_FILE_NAME: &str = "doublewrite";
const DIRECTORY_SIZE: usize = 4096;
const MAGIC: [u8; 8] = *b"SLDBLWR1";
const COUNT_OFFSET: usize = 8;
const ENTRIES_OFFSET: usize = COUNT_OFFSET + 4;
const ENTRY_SIZE: usize = 12;
const CRC_OFFSET: usize = DIRECTORY_SIZE - 4;
const _: () = assert!(ENTRIES_OFFSET + DOUBLEWRITE_PAGES_MAX * ENTRY_SIZE <= CRC_OFFSET);

/// The doublewrite area of one database.
pub struct DoublewriteArea {
    disk: Arc<Disk>,
    file: FileId,
    busy: Mutex<bool>,
    freed: Condvar,
    /// The files the batch now in the area was written to: their home writes may not be
    /// durable yet, so they are synced before the area is overwritten (else a torn home write
    /// of that batch would have no intact copy anywhere).
    unsynced: Mutex<Vec<FileId>>,
}

impl DoublewriteArea {
    /// Opens (creating if missing) the area in `dir`.
    pub fn open(disk: Arc<Disk>, dir: &Path) -> Result<DoublewriteArea> {
        let file = disk.open_raw_file(&dir.join(DOUBLEWRITE_FILE_NAME), "doublewrite", true)?;
        Ok(DoublewriteArea {
            disk,
            file,
            busy: Mutex::new(false),
            freed: Condvar::new(),
            unsynced: Mutex::new(Vec::new()),
        })
    }

    /// Writes a batch of sealed page images to the area and syncs it; the area stays busy
    /// until [`release`](Self::release).
    pub fn write_batch(
        &self,
        pages: &[(FileId, PageId, &[u8])],
        rel_of: &dyn Fn(FileId) -> Option<RelId>,
    ) -> storelab_pager::Result<()> {
        assert!(
            pages.len() <= DOUBLEWRITE_PAGES_MAX,
            "doublewrite batch of {}",
            pages.len()
        );
        let mut busy = self.busy.lock();
        while *busy {
            self.freed.wait(&mut busy);
        }
        *busy = true;
        drop(busy);
        let result = self.write_images(pages, rel_of);
        if result.is_err() {
            self.release();
        }
        result
    }

    fn write_images(
        &self,
        pages: &[(FileId, PageId, &[u8])],
        rel_of: &dyn Fn(FileId) -> Option<RelId>,
    ) -> storelab_pager::Result<()> {
        // The previous batch's copies are about to go: make its home writes durable first.
        for file in std::mem::take(&mut *self.unsynced.lock()) {
            self.disk.sync(file, IoCause::Doublewrite)?;
        }
        let page_size = self.disk.page_size().bytes();
        let mut buf = AlignedBuf::zeroed(DIRECTORY_SIZE + pages.len() * page_size);
        buf[..8].copy_from_slice(&MAGIC);
        buf[COUNT_OFFSET..COUNT_OFFSET + 4].copy_from_slice(&(pages.len() as u32).to_le_bytes());
        for (i, (file, page_id, image)) in pages.iter().enumerate() {
            // A file the log does not know (e.g. a scratch file) is not protected.
            let rel = rel_of(*file).map_or(u32::MAX, |r| r.0);
            let at = ENTRIES_OFFSET + i * ENTRY_SIZE;
            buf[at..at + 4].copy_from_slice(&rel.to_le_bytes());
            buf[at + 4..at + 12].copy_from_slice(&page_id.0.to_le_bytes());
            let slot = DIRECTORY_SIZE + i * page_size;
            buf[slot..slot + page_size].copy_from_slice(image);
        }
        let crc = crc32c::crc32c(&buf[..CRC_OFFSET]);
        buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
        self.disk
            .write_at(self.file, 0, buf, IoCause::Doublewrite)?;
        self.disk.sync(self.file, IoCause::Doublewrite)?;
        let mut files: Vec<FileId> = pages.iter().map(|(file, _, _)| *file).collect();
        files.sort();
        files.dedup();
        *self.unsynced.lock() = files;
        Ok(())
    }

    /// Marks the last batch's home writes as done: the area may be reused.
    pub fn release(&self) {
        *self.busy.lock() = false;
        self.freed.notify_one();
    }

    /// Repairs torn home pages from the area. Returns how many pages were restored.
    pub fn recover(
        &self,
        pool: &BufferPool,
        file_of: &dyn Fn(RelId) -> Option<FileId>,
    ) -> Result<usize> {
        let page_size = self.disk.page_size().bytes();
        let len = self.disk.file_len(self.file)? as usize;
        if len < DIRECTORY_SIZE {
            return Ok(0);
        }
        let (dir_buf, read) =
            self.disk
                .read_at(self.file, 0, DIRECTORY_SIZE, IoCause::Doublewrite)?;
        if read < DIRECTORY_SIZE || dir_buf[..8] != MAGIC {
            return Ok(0);
        }
        let stored = u32::from_le_bytes(dir_buf[CRC_OFFSET..CRC_OFFSET + 4].try_into().expect("4"));
        if stored != crc32c::crc32c(&dir_buf[..CRC_OFFSET]) {
            return Ok(0); // The doublewrite write itself tore: no home write had begun.
        }
        let count = u32::from_le_bytes(
            dir_buf[COUNT_OFFSET..COUNT_OFFSET + 4]
                .try_into()
                .expect("4"),
        ) as usize;
        if count > DOUBLEWRITE_PAGES_MAX || len < DIRECTORY_SIZE + count * page_size {
            return Ok(0);
        }
        let mut repaired = 0;
        for i in 0..count {
            let at = ENTRIES_OFFSET + i * ENTRY_SIZE;
            let rel = RelId(u32::from_le_bytes(
                dir_buf[at..at + 4].try_into().expect("4"),
            ));
            let page_id = PageId(u64::from_le_bytes(
                dir_buf[at + 4..at + 12].try_into().expect("8"),
            ));
            let Some(file) = file_of(rel) else { continue };
            let offset = (DIRECTORY_SIZE + i * page_size) as u64;
            let (image, n) =
                self.disk
                    .read_at(self.file, offset, page_size, IoCause::Doublewrite)?;
            let path = self.disk.path(self.file)?;
            if n < page_size || verify_page(&image, &path, page_id).is_err() {
                continue;
            }
            self.disk.ensure_page_count(file, page_id.0 + 1)?;
            match pool.read(file, page_id) {
                Ok(_) => continue,
                Err(
                    storelab_pager::Error::ChecksumMismatch { .. }
                    | storelab_pager::Error::CorruptPage { .. },
                ) => {}
                Err(e) => return Err(e.into()),
            }
            let mut page = pool.page_for_overwrite(file, page_id)?;
            page.copy_from_slice(&image);
            repaired += 1;
        }
        Ok(repaired)
    }
}
