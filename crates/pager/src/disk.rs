//! `Disk`: the database's page files as the buffer pool and the WAL see them.
//!
//! A `Disk` owns the I/O backend, the ledger and the table of open files. It turns page ids
//! into byte offsets, charges every I/O to the ledger, and refuses all further work once a
//! sync has failed (after a failed fsync the kernel may have dropped the dirty pages, so a
//! retry that "succeeds" proves nothing: the lesson of PostgreSQL's 2018 fsyncgate).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::RwLock;

use crate::aligned_buf::AlignedBuf;
use crate::error::{Error, Result};
use crate::io::{CompletionSink, IoBackend, IoCompletion, IoFile, IoOp, IoRequest, OpenOptions};
use crate::ledger::{FileId, IoCause, Ledger};
use crate::page::{IO_ALIGNMENT, PageId, PageSize, verify_page};

/// The most files one `Disk` keeps open.
pub const DISK_FILES_MAX: usize = 1 << 16;

struct DiskFile {
    io: Arc<IoFile>,
    name: String,
    /// Pages the file logically has: on disk, or allocated in memory and not yet written.
    page_count: AtomicU64,
}

/// The page files of one database, the backend that reads and writes them, and the ledger.
pub struct Disk {
    backend: Arc<dyn IoBackend>,
    ledger: Arc<Ledger>,
    page_size: PageSize,
    direct: bool,
    files: RwLock<Vec<Option<Arc<DiskFile>>>>,
    poisoned: AtomicBool,
    poisoned_by: RwLock<Option<PathBuf>>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("backend", &self.backend.name())
            .field("page_size", &self.page_size)
            .field("direct", &self.direct)
            .finish()
    }
}

impl Disk {
    /// A disk over `backend`, charging I/O to `ledger`; files are opened with `O_DIRECT` if
    /// `direct`.
    pub fn new(
        backend: Arc<dyn IoBackend>,
        ledger: Arc<Ledger>,
        page_size: PageSize,
        direct: bool,
    ) -> Arc<Disk> {
        Arc::new(Disk {
            backend,
            ledger,
            page_size,
            direct,
            files: RwLock::new(Vec::new()),
            poisoned: AtomicBool::new(false),
            poisoned_by: RwLock::new(None),
        })
    }

    /// The backend.
    pub fn backend(&self) -> &Arc<dyn IoBackend> {
        &self.backend
    }

    /// The ledger every I/O is charged to.
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.ledger
    }

    /// The page size of every file.
    pub fn page_size(&self) -> PageSize {
        self.page_size
    }

    /// Opens (or with `create`, creates) the page file at `path`, registering it in the ledger
    /// as `relation`. The file's length must be a whole number of pages.
    pub fn open_file(&self, path: &Path, relation: &str, create: bool) -> Result<FileId> {
        self.open(path, relation, create, true)
    }

    /// Opens (or creates) a file that is not made of pages (WAL segments, control files),
    /// accessed with [`Disk::write_at`] and [`Disk::read_at`].
    pub fn open_raw_file(&self, path: &Path, relation: &str, create: bool) -> Result<FileId> {
        self.open(path, relation, create, false)
    }

    fn open(&self, path: &Path, relation: &str, create: bool, paged: bool) -> Result<FileId> {
        self.check_poison()?;
        let io = self.backend.open(
            path,
            &OpenOptions {
                create,
                direct: self.direct,
            },
        )?;
        let len = self.backend.file_len(&io)?;
        let page_bytes = self.page_size.bytes() as u64;
        let mut len = len;
        if paged && !len.is_multiple_of(page_bytes) {
            len = self.trim_torn_extension(&io, len)?;
        }
        let mut files = self.files.write();
        if files.len() >= DISK_FILES_MAX {
            return Err(Error::InvalidArgument(format!(
                "more than {DISK_FILES_MAX} files"
            )));
        }
        let id = self.ledger.register(relation);
        let slot = id.0 as usize;
        if files.len() <= slot {
            files.resize_with(slot + 1, || None);
        }
        files[slot] = Some(Arc::new(DiskFile {
            io,
            name: relation.to_string(),
            page_count: AtomicU64::new(len / page_bytes),
        }));
        Ok(id)
    }

    /// A page file whose length is not a whole number of pages ends in a torn write that was
    /// extending it: a crash kept some of the new page's sectors and not the rest. No durable
    /// data lived there (the page did not exist before that write), so cutting it off is the
    /// same as that write having been lost, which the WAL's recovery already handles.
    ///
    /// A partial page is also what a file of another page size looks like, where cutting would
    /// destroy data. So before cutting, page 0 is checked at the other page sizes: if it
    /// verifies at one of them (a checksum covers exactly one page, so it verifies only at the
    /// size it was written with), the file is refused. A tail that is not a whole number of
    /// 4 KiB sectors cannot come from a torn write, and is refused too.
    fn trim_torn_extension(&self, io: &Arc<IoFile>, len: u64) -> Result<u64> {
        let page_bytes = self.page_size.bytes();
        let whole = len - len % page_bytes as u64;
        let refuse = |reason: String| Error::CorruptPage {
            file: io.path().to_path_buf(),
            page_id: PageId(whole / page_bytes as u64),
            reason: format!(
                "file length {len} is not a multiple of the page size {page_bytes}: {reason}"
            ),
        };
        if !(len - whole).is_multiple_of(IO_ALIGNMENT as u64) {
            return Err(refuse("the partial page is not whole sectors".into()));
        }
        let (head, n) = self.backend.read_at(io, 0, PageSize::K16.bytes())?;
        for other in [PageSize::K4, PageSize::K8, PageSize::K16] {
            let size = other.bytes();
            if other == self.page_size || n < size || head[..size].iter().all(|&b| b == 0) {
                continue;
            }
            if verify_page(&head[..size], io.path(), PageId(0)).is_ok() {
                return Err(refuse(format!("it was written with {size}-byte pages")));
            }
        }
        self.backend.set_len(io, whole)?;
        self.backend.sync(io)?;
        Ok(whole)
    }

    fn file(&self, file: FileId) -> Result<Arc<DiskFile>> {
        self.files
            .read()
            .get(file.0 as usize)
            .and_then(Option::clone)
            .ok_or(Error::UnknownFile(file.0))
    }

    /// The path of a file.
    pub fn path(&self, file: FileId) -> Result<PathBuf> {
        Ok(self.file(file)?.io.path().to_path_buf())
    }

    /// The relation name a file was opened under.
    pub fn relation(&self, file: FileId) -> Result<String> {
        Ok(self.file(file)?.name.clone())
    }

    /// Pages the file has, counting pages allocated but not yet written.
    pub fn page_count(&self, file: FileId) -> Result<u64> {
        Ok(self.file(file)?.page_count.load(Ordering::Acquire))
    }

    /// Reserves the next page id at the end of the file. The page reaches the disk when its
    /// frame is written back.
    pub fn allocate_page(&self, file: FileId) -> Result<PageId> {
        Ok(PageId(
            self.file(file)?.page_count.fetch_add(1, Ordering::AcqRel),
        ))
    }

    fn check_poison(&self) -> Result<()> {
        if self.poisoned.load(Ordering::Acquire) {
            let file = self.poisoned_by.read().clone().unwrap_or_default();
            return Err(Error::Poisoned { file });
        }
        Ok(())
    }

    /// True once a sync has failed.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    /// Starts a read of `count` adjacent pages from `first` into one buffer (a combined read),
    /// completing into `sink` with `tag`. Pages are not verified here: see [`Disk::verify`].
    pub fn submit_read(
        &self,
        file: FileId,
        first: PageId,
        count: usize,
        cause: IoCause,
        sink: &Arc<CompletionSink>,
        tag: u64,
    ) -> Result<()> {
        self.check_poison()?;
        let f = self.file(file)?;
        let page_count = f.page_count.load(Ordering::Acquire);
        let last = first.0 + count as u64;
        if count == 0 || last > page_count {
            return Err(Error::PageOutOfRange {
                file: f.io.path().to_path_buf(),
                page_id: PageId(last.saturating_sub(1)),
                page_count,
            });
        }
        let page_bytes = self.page_size.bytes();
        let buf = AlignedBuf::zeroed(page_bytes * count);
        self.ledger.record_read(file, cause, buf.len() as u64);
        let request = IoRequest {
            file: Arc::clone(&f.io),
            op: IoOp::Read,
            offset: first.0 * page_bytes as u64,
            buf,
            tag,
        };
        self.backend.submit(vec![request], sink)
    }

    /// Starts writes of sealed page images, each `(page, buffer)`, completing into `sink`.
    /// The buffers must already carry their checksums (see [`crate::page::seal_page`]).
    pub fn submit_writes(
        &self,
        file: FileId,
        pages: Vec<(PageId, AlignedBuf, u64)>,
        cause: IoCause,
        sink: &Arc<CompletionSink>,
    ) -> Result<()> {
        self.check_poison()?;
        let f = self.file(file)?;
        let page_bytes = self.page_size.bytes() as u64;
        let requests = pages
            .into_iter()
            .map(|(page_id, buf, tag)| {
                assert_eq!(buf.len() as u64 % page_bytes, 0, "write of a partial page");
                self.ledger.record_write(file, cause, buf.len() as u64);
                IoRequest {
                    file: Arc::clone(&f.io),
                    op: IoOp::Write,
                    offset: page_id.0 * page_bytes,
                    buf,
                    tag,
                }
            })
            .collect();
        self.backend.submit(requests, sink)
    }

    /// Waits for one completion of `sink`.
    pub fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        self.backend.wait(sink)
    }

    /// Reads one page, waits for it and verifies it: the simple path.
    pub fn read_page(&self, file: FileId, page_id: PageId, cause: IoCause) -> Result<AlignedBuf> {
        let sink = CompletionSink::new();
        self.submit_read(file, page_id, 1, cause, &sink, 0)?;
        let done = self.wait(&sink).expect("a read is in flight");
        self.finish_read(file, page_id, done)
    }

    /// Checks a completed read of pages starting at `first`: transfer complete (a page past the
    /// end of the file reads as zeros, a never-written page), and each page verified.
    pub fn finish_read(
        &self,
        file: FileId,
        first: PageId,
        done: IoCompletion,
    ) -> Result<AlignedBuf> {
        let n = done.bytes()?;
        let mut buf = done.buf;
        if n < buf.len() {
            // Allocated pages that were never written lie past the end of the file: zeros.
            buf[n..].fill(0);
        }
        // Borrow the path from the file table: this runs on every page read, and `path()`
        // would clone it each time just in case of an error.
        let f = self.file(file)?;
        let path = f.io.path();
        let page_bytes = self.page_size.bytes();
        for (i, page) in buf.chunks(page_bytes).enumerate() {
            verify_page(page, path, PageId(first.0 + i as u64))?;
        }
        Ok(buf)
    }

    /// Writes one sealed page and waits for the write to complete (not to be durable).
    pub fn write_page(
        &self,
        file: FileId,
        page_id: PageId,
        buf: AlignedBuf,
        cause: IoCause,
    ) -> Result<AlignedBuf> {
        let sink = CompletionSink::new();
        self.submit_writes(file, vec![(page_id, buf, 0)], cause, &sink)?;
        let done = self.wait(&sink).expect("a write is in flight");
        done.expect_full()?;
        Ok(done.buf)
    }

    /// Makes sure the file counts at least `page_count` pages (recovery uses this for pages
    /// the log knows of that never reached the disk; they read as zeros until written).
    pub fn ensure_page_count(&self, file: FileId, page_count: u64) -> Result<()> {
        self.file(file)?
            .page_count
            .fetch_max(page_count, Ordering::AcqRel);
        Ok(())
    }

    /// Writes `buf` at byte `offset` of a file that is not a page file (the WAL's segments,
    /// the doublewrite area), charged to `cause`, and waits for the write to complete.
    /// Offsets and lengths must be multiples of 4096 so that direct I/O works.
    pub fn write_at(
        &self,
        file: FileId,
        offset: u64,
        buf: AlignedBuf,
        cause: IoCause,
    ) -> Result<AlignedBuf> {
        self.check_poison()?;
        let f = self.file(file)?;
        assert!(
            offset.is_multiple_of(IO_ALIGNMENT as u64),
            "unaligned write at {offset}"
        );
        self.ledger.record_write(file, cause, buf.len() as u64);
        let sink = CompletionSink::new();
        let request = IoRequest {
            file: Arc::clone(&f.io),
            op: IoOp::Write,
            offset,
            buf,
            tag: 0,
        };
        self.backend.submit(vec![request], &sink)?;
        let done = self.wait(&sink).expect("a write is in flight");
        done.expect_full()?;
        Ok(done.buf)
    }

    /// Reads `len` bytes at byte `offset` of a file, charged to `cause`; returns the buffer and
    /// the number of bytes actually read (short at the end of the file).
    pub fn read_at(
        &self,
        file: FileId,
        offset: u64,
        len: usize,
        cause: IoCause,
    ) -> Result<(AlignedBuf, usize)> {
        self.check_poison()?;
        let f = self.file(file)?;
        self.ledger.record_read(file, cause, len as u64);
        self.backend.read_at(&f.io, offset, len)
    }

    /// The file's length in bytes on disk.
    pub fn file_len(&self, file: FileId) -> Result<u64> {
        let f = self.file(file)?;
        self.backend.file_len(&f.io)
    }

    /// Sets a file's length in bytes (for files that are not page files).
    pub fn set_len(&self, file: FileId, len: u64) -> Result<()> {
        self.check_poison()?;
        let f = self.file(file)?;
        self.backend.set_len(&f.io, len)
    }

    /// Forgets an open file; later use of its id is `UnknownFile`.
    pub fn close_file(&self, file: FileId) -> Result<()> {
        let mut files = self.files.write();
        match files.get_mut(file.0 as usize) {
            Some(slot @ Some(_)) => {
                *slot = None;
                Ok(())
            }
            _ => Err(Error::UnknownFile(file.0)),
        }
    }

    /// Makes every completed write to `file` durable. A failure poisons the disk.
    pub fn sync(&self, file: FileId, cause: IoCause) -> Result<()> {
        self.check_poison()?;
        let f = self.file(file)?;
        self.ledger.record_sync(file, cause);
        if let Err(e) = self.backend.sync(&f.io) {
            *self.poisoned_by.write() = Some(f.io.path().to_path_buf());
            self.poisoned.store(true, Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    /// The ids of every open file.
    pub fn file_ids(&self) -> Vec<FileId> {
        self.files
            .read()
            .iter()
            .enumerate()
            .filter(|(_, f)| f.is_some())
            .map(|(i, _)| FileId(i as u32))
            .collect()
    }
}
