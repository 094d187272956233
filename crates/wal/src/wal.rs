//! `Wal`: appending records, making them durable, checkpoints, and the write-ahead rule.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::{Condvar, Mutex, ReentrantMutex, RwLock};
use storelab_pager::buffer_pool::WriteBackHook;
use storelab_pager::io::{CompletionSink, IoBackend, IoFile, IoOp, IoRequest, OpenOptions};
use storelab_pager::page::page_lsn;
use storelab_pager::{
    AlignedBuf, BufferPool, Disk, FileId, IoCause, IoCounts, Ledger, Lsn, PageId,
};

use crate::atomic_group::{AtomicGroupState, NO_GROUP};
use crate::config::{CommitMode, TornPageMode, WalConfig};
use crate::control::{ControlData, ControlFile};
use crate::doublewrite::DoublewriteArea;
use crate::error::{Error, Result};
use crate::reader::{ReadEnd, WalReader};
use crate::record::{RecordBuilder, RecordType, RelId};
use crate::retention::{Retention, RetentionFn, RetentionId};
use crate::segment::{
    SEGMENT_HEADER_SIZE, SegmentGeometry, WAL_BLOCK_SIZE, encode_header, parse_segment_file_name,
    segment_file_name,
};

/// Unflushed log bytes after which an append flushes on its own (bounds the log buffer).
pub const WAL_BUFFER_MAX: usize = 16 << 20;
/// Bytes written per call when zero-filling a new segment.
const ZERO_FILL_CHUNK: usize = 1 << 20;

/// The append side: the tail of the log in memory.
struct LogState {
    /// Where the next record starts.
    insert: Lsn,
    /// Where the last record starts (the next record's `prev`).
    last_record: Lsn,
    /// Log bytes from `buf_start` (block-aligned, at or before the flushed position) to `insert`.
    buf: Vec<u8>,
    buf_start: u64,
    /// Full-page-image bytes and count appended but not yet flushed (for the ledger).
    fpi_bytes: u64,
    fpi_count: u64,
}

#[derive(Default)]
struct GroupState {
    flushing: bool,
}

/// The write-ahead log of one database. Shared as `Arc<Wal>`.
pub struct Wal {
    config: WalConfig,
    geometry: SegmentGeometry,
    page_size: usize,
    backend: Arc<dyn IoBackend>,
    ledger: Arc<Ledger>,
    ledger_id: FileId,
    state: Mutex<LogState>,
    flush_lock: Mutex<()>,
    flushed: AtomicU64,
    group: Mutex<GroupState>,
    group_done: Condvar,
    segments: Mutex<BTreeMap<u64, Arc<IoFile>>>,
    recyclable: Mutex<Vec<PathBuf>>,
    /// Components that need log older than the redo point (see `retention.rs`).
    retention: Retention,
    redo_lsn: AtomicU64,
    control: Mutex<ControlFile>,
    checkpoint_lock: Mutex<()>,
    /// The atomic-group lock (see `atomic_group.rs`).
    pub(crate) atomic: ReentrantMutex<RefCell<AtomicGroupState>>,
    /// LSN of the open group's first record, or `NO_GROUP`.
    pub(crate) atomic_start: AtomicU64,
    /// Outermost groups open (0 or 1).
    pub(crate) atomic_depth_hint: AtomicU32,
    poisoned: Mutex<Option<String>>,
    rels: RwLock<HashMap<RelId, FileId>>,
    pub(crate) doublewrite: Option<DoublewriteArea>,
    /// Where recovery must start, and where the log found at open ends.
    pub(crate) recovery_start: Lsn,
    pub(crate) recovery_end: ReadEnd,
    pub(crate) recovered: AtomicBool,
    stop_writer: Arc<AtomicBool>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.config.dir)
            .field("commit_mode", &self.config.commit_mode)
            .field("torn_page", &self.config.torn_page)
            .field("insert", &self.insert_lsn())
            .field("flushed", &self.flushed_lsn())
            .finish()
    }
}

impl Wal {
    /// Opens (or creates) the log in `config.dir`, for the page files of `disk`.
    ///
    /// Finds where recovery must start (the control file's redo LSN) and where the log ends
    /// (the first invalid record after it), and positions the log to continue there. Call
    /// [`Wal::recover`] next, before appending anything.
    pub fn open(config: WalConfig, disk: &Arc<Disk>) -> Result<Arc<Wal>> {
        let geometry = SegmentGeometry::new(config.segment_size)?;
        let page_size = disk.page_size().bytes();
        std::fs::create_dir_all(&config.dir)
            .map_err(|e| storelab_pager::Error::io(&config.dir, "create WAL directory", e))?;
        let backend = Arc::clone(disk.backend());
        let ledger = Arc::clone(disk.ledger());
        let control = ControlFile::open(Arc::clone(&backend), &config.dir)?;
        if let Some(data) = control.data() {
            let mismatch = |setting, on_disk: String, requested: String| {
                Err(Error::SettingMismatch {
                    setting,
                    on_disk,
                    requested,
                })
            };
            if data.page_size as usize != page_size {
                return mismatch(
                    "page size",
                    data.page_size.to_string(),
                    page_size.to_string(),
                );
            }
            if data.segment_size as usize != config.segment_size {
                return mismatch(
                    "WAL segment size",
                    data.segment_size.to_string(),
                    config.segment_size.to_string(),
                );
            }
            if data.torn_page_mode != config.torn_page.code() {
                return mismatch(
                    "torn-page mode code",
                    data.torn_page_mode.to_string(),
                    config.torn_page.code().to_string(),
                );
            }
        }
        let redo = control.data().map_or(Lsn(0), |d| d.redo_lsn);
        let mut reader =
            WalReader::new(Arc::clone(&backend), &config.dir, geometry, page_size, redo);
        while reader.next_record()?.is_some() {}
        let end = reader.end().cloned().expect("reader stopped");
        let insert = end.lsn;
        let last_record = reader.last_record().unwrap_or(Lsn(0));
        let doublewrite = match config.torn_page {
            TornPageMode::Doublewrite => {
                Some(DoublewriteArea::open(Arc::clone(disk), &config.dir)?)
            }
            _ => None,
        };
        let ledger_id = ledger.register("wal");
        let wal = Arc::new(Wal {
            geometry,
            page_size,
            backend,
            ledger,
            ledger_id,
            state: Mutex::new(LogState {
                insert,
                last_record,
                buf: Vec::new(),
                buf_start: insert.0,
                fpi_bytes: 0,
                fpi_count: 0,
            }),
            flush_lock: Mutex::new(()),
            flushed: AtomicU64::new(insert.0),
            group: Mutex::new(GroupState::default()),
            group_done: Condvar::new(),
            segments: Mutex::new(BTreeMap::new()),
            recyclable: Mutex::new(adopt_spares(&config.dir, config.recycle_segments_max)?),
            retention: Retention::default(),
            redo_lsn: AtomicU64::new(redo.0),
            control: Mutex::new(control),
            checkpoint_lock: Mutex::new(()),
            atomic: ReentrantMutex::new(RefCell::new(AtomicGroupState::default())),
            atomic_start: AtomicU64::new(NO_GROUP),
            atomic_depth_hint: AtomicU32::new(0),
            poisoned: Mutex::new(None),
            rels: RwLock::new(HashMap::new()),
            doublewrite,
            recovery_start: redo,
            recovery_end: end,
            recovered: AtomicBool::new(false),
            stop_writer: Arc::new(AtomicBool::new(false)),
            config,
        });
        wal.load_tail()?;
        if wal.config.commit_mode == CommitMode::Off {
            Self::start_writer(&wal);
        }
        Ok(wal)
    }

    /// Reads the partial block at the end of the log into the buffer, so the next flush
    /// rewrites it whole (with zeros after the new end, discarding a torn tail).
    fn load_tail(&self) -> Result<()> {
        let mut st = self.state.lock();
        let insert = st.insert.0;
        let block_start = insert - insert % WAL_BLOCK_SIZE as u64;
        st.buf_start = block_start;
        st.buf.clear();
        if insert == block_start {
            return Ok(());
        }
        let n = self.geometry.segment_of(Lsn(block_start));
        let file = self.segment(n)?;
        let offset = self.geometry.file_offset(Lsn(block_start));
        let (buf, read) = self.backend.read_at(&file, offset, WAL_BLOCK_SIZE)?;
        let want = (insert - block_start) as usize;
        if read < want {
            return Err(Error::CorruptRecord {
                lsn: Lsn(block_start),
                reason: "log tail shorter than the records just read".into(),
            });
        }
        st.buf.extend_from_slice(&buf[..want]);
        Ok(())
    }

    fn start_writer(wal: &Arc<Wal>) {
        let weak: Weak<Wal> = Arc::downgrade(wal);
        let stop = Arc::clone(&wal.stop_writer);
        let delay = wal.config.writer_delay;
        std::thread::Builder::new()
            .name("storelab-wal-writer".into())
            .spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    std::thread::sleep(delay);
                    let Some(wal) = weak.upgrade() else { break };
                    // A failure poisons the log; committers see it on their next call.
                    let _ = wal.flush(wal.insert_lsn());
                }
            })
            .expect("spawn the WAL writer");
    }

    /// The configuration.
    pub fn config(&self) -> &WalConfig {
        &self.config
    }

    /// The ledger id all WAL I/O is charged to.
    pub fn ledger_id(&self) -> FileId {
        self.ledger_id
    }

    /// The database page size.
    pub fn page_size(&self) -> usize {
        self.page_size
    }

    /// The segment geometry.
    pub fn geometry(&self) -> SegmentGeometry {
        self.geometry
    }

    /// Where the next record will start.
    pub fn insert_lsn(&self) -> Lsn {
        self.state.lock().insert
    }

    /// Everything before this LSN is durable.
    pub fn flushed_lsn(&self) -> Lsn {
        Lsn(self.flushed.load(Ordering::Acquire))
    }

    /// The redo LSN of the last checkpoint.
    pub fn redo_lsn(&self) -> Lsn {
        Lsn(self.redo_lsn.load(Ordering::Acquire))
    }

    /// Attaches a page file under its stable relation number; records name it by `rel`.
    pub fn attach(&self, rel: RelId, file: FileId) {
        self.rels.write().insert(rel, file);
    }

    /// The file attached as `rel`.
    pub fn file_of(&self, rel: RelId) -> Option<FileId> {
        self.rels.read().get(&rel).copied()
    }

    /// The relation a file is attached as.
    pub fn rel_of(&self, file: FileId) -> Option<RelId> {
        self.rels
            .read()
            .iter()
            .find(|(_, f)| **f == file)
            .map(|(r, _)| *r)
    }

    pub(crate) fn check_poison(&self) -> Result<()> {
        match &*self.poisoned.lock() {
            Some(why) => Err(Error::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    pub(crate) fn poison(&self, why: String) {
        self.poisoned.lock().get_or_insert(why);
    }

    /// Appends a record and returns its end LSN, which the caller stores as the LSN of every
    /// page the record changed. Not durable yet: see [`commit`](Self::commit).
    ///
    /// In full-page-image mode a block gets an image if its page has not been changed since the
    /// last checkpoint began (its LSN is at or before the redo LSN), as PostgreSQL decides.
    pub fn append(&self, record: &RecordBuilder<'_>) -> Result<Lsn> {
        self.append_at(record).map(|(_, end)| end)
    }

    /// Like [`append`](Self::append), returning the record's start and end.
    pub fn append_at(&self, record: &RecordBuilder<'_>) -> Result<(Lsn, Lsn)> {
        self.append_with_flags(record, 0)
    }

    /// Appends with extra record flags (the end marker of an atomic group); the group flags of
    /// the calling thread's open group are added here.
    pub(crate) fn append_with_flags(
        &self,
        record: &RecordBuilder<'_>,
        extra_flags: u16,
    ) -> Result<(Lsn, Lsn)> {
        self.check_poison()?;
        assert!(
            self.recovered.load(Ordering::Acquire) || record.record_type == RecordType::CHECKPOINT,
            "append before recovery"
        );
        let images = self.config.torn_page == TornPageMode::FullPageImages;
        let (end, flush_now) = {
            let mut st = self.state.lock();
            // Read the redo pointer under the insert lock: a checkpoint moves it under this
            // lock too, so a record is never placed after a redo pointer it did not see.
            let redo = self.redo_lsn.load(Ordering::Acquire);
            let lsn = st.insert;
            // A PAGE_IMAGES record is nothing but images (PostgreSQL's `log_newpage`), in any mode.
            let always = record.record_type == RecordType::PAGE_IMAGES;
            let take_image = |b: &crate::record::BlockRef<'_>| {
                b.page
                    .is_some_and(|p| always || (images && page_lsn(p).0 <= redo))
            };
            let flags = self.group_flags(lsn) | extra_flags;
            let bytes = record.encode_with_flags(lsn, st.last_record, flags, &take_image)?;
            let image_count = record
                .blocks
                .iter()
                .filter(|b| !b.force_image && take_image(b))
                .count() as u64;
            st.fpi_count += image_count;
            st.fpi_bytes += image_count * self.page_size as u64;
            st.buf.extend_from_slice(&bytes);
            st.last_record = lsn;
            st.insert = Lsn(lsn.0 + bytes.len() as u64);
            ((lsn, st.insert), st.buf.len() > WAL_BUFFER_MAX)
        };
        if flush_now {
            self.flush(end.1)?;
        }
        Ok(end)
    }

    /// Makes the log durable up to `lsn` as the commit mode says, and returns when the commit
    /// may be acknowledged.
    pub fn commit(&self, lsn: Lsn) -> Result<()> {
        match self.config.commit_mode {
            CommitMode::Sync => self.flush(lsn),
            CommitMode::Group => self.commit_group(lsn),
            CommitMode::Off => self.check_poison(),
        }
    }

    fn commit_group(&self, lsn: Lsn) -> Result<()> {
        let mut group = self.group.lock();
        loop {
            if self.flushed.load(Ordering::Acquire) >= lsn.0 {
                return Ok(());
            }
            self.check_poison()?;
            if !group.flushing {
                group.flushing = true;
                drop(group);
                if self.config.group_window.is_zero() {
                    // Let committers just woken by the last sync append their records first,
                    // so this sync carries them too (a window of one scheduling quantum).
                    std::thread::yield_now();
                } else {
                    std::thread::sleep(self.config.group_window);
                }
                let result = self.flush(self.insert_lsn());
                group = self.group.lock();
                group.flushing = false;
                self.group_done.notify_all();
                result?;
                continue;
            }
            // A sync is in flight; it may not cover us. Wait for it, then lead or ride the next.
            self.group_done.wait(&mut group);
        }
    }

    /// Writes and syncs the log up to at least `target` (in fact, everything appended so far).
    /// One flush at a time; a caller whose target a concurrent flush covered returns at once.
    pub fn flush(&self, target: Lsn) -> Result<()> {
        if self.flushed.load(Ordering::Acquire) >= target.0 {
            return Ok(());
        }
        let _flushing = self.flush_lock.lock();
        if self.flushed.load(Ordering::Acquire) >= target.0 {
            return Ok(());
        }
        self.check_poison()?;
        let (start, end, data, fpi_bytes, fpi_count) = {
            let mut st = self.state.lock();
            let len = st.buf.len();
            let padded = len.div_ceil(WAL_BLOCK_SIZE).max(1) * WAL_BLOCK_SIZE;
            let mut data = AlignedBuf::zeroed(padded);
            data[..len].copy_from_slice(&st.buf);
            let fpi = (
                std::mem::take(&mut st.fpi_bytes),
                std::mem::take(&mut st.fpi_count),
            );
            (st.buf_start, st.insert.0, data, fpi.0, fpi.1)
        };
        if end == start {
            return Ok(());
        }
        if let Err(e) = self.write_out(start, end, &data, fpi_bytes, fpi_count) {
            self.poison(e.to_string());
            return Err(e);
        }
        self.flushed.store(end, Ordering::Release);
        let mut st = self.state.lock();
        let keep_from = end - end % WAL_BLOCK_SIZE as u64;
        let drop_count = (keep_from - st.buf_start) as usize;
        st.buf.drain(..drop_count);
        st.buf_start = keep_from;
        Ok(())
    }

    /// Writes log bytes `[start, end)` (block-padded in `data`, `start` block-aligned) to their
    /// segments and syncs each segment touched.
    fn write_out(
        &self,
        start: u64,
        end: u64,
        data: &AlignedBuf,
        fpi_bytes: u64,
        fpi_count: u64,
    ) -> Result<()> {
        let padded_end = start + data.len() as u64;
        let mut pos = start;
        let mut touched = Vec::new();
        let sink = CompletionSink::new();
        let mut requests = Vec::new();
        let mut written = 0u64;
        while pos < padded_end {
            let n = self.geometry.segment_of(Lsn(pos));
            let seg_end = self.geometry.segment_start(n + 1).0;
            let piece_end = padded_end.min(seg_end);
            let len = (piece_end - pos) as usize;
            let from = (pos - start) as usize;
            let mut buf = AlignedBuf::zeroed(len);
            buf.copy_from_slice(&data[from..from + len]);
            let file = self.segment(n)?;
            requests.push(IoRequest {
                file: Arc::clone(&file),
                op: IoOp::Write,
                offset: self.geometry.file_offset(Lsn(pos)),
                buf,
                tag: n,
            });
            touched.push(file);
            written += len as u64;
            pos = piece_end;
        }
        let count = requests.len() as u64;
        self.backend.submit(requests, &sink)?;
        let mut result: Result<()> = Ok(());
        while let Some(done) = self.backend.wait(&sink) {
            if let Err(e) = done.expect_full() {
                result = Err(e.into());
            }
        }
        result?;
        for file in &touched {
            self.ledger.record_sync(self.ledger_id, IoCause::Wal);
            self.backend.sync(file)?;
        }
        let fpi = fpi_bytes.min(written);
        self.ledger.record(
            self.ledger_id,
            IoCause::Wal,
            IoCounts {
                write_count: count,
                write_bytes: written - fpi,
                ..IoCounts::default()
            },
        );
        if fpi_count > 0 {
            self.ledger.record(
                self.ledger_id,
                IoCause::FullPageImage,
                IoCounts {
                    write_count: fpi_count,
                    write_bytes: fpi,
                    ..IoCounts::default()
                },
            );
        }
        debug_assert!(end <= padded_end);
        Ok(())
    }

    /// The open segment `n`, created (or recycled) full-size if it does not exist.
    fn segment(&self, n: u64) -> Result<Arc<IoFile>> {
        let mut segments = self.segments.lock();
        if let Some(file) = segments.get(&n) {
            return Ok(Arc::clone(file));
        }
        let path = self.config.dir.join(segment_file_name(n));
        let options = OpenOptions {
            create: true,
            direct: false,
        };
        let file = if path.exists() {
            self.backend.open(&path, &options)?
        } else if let Some(old) = self.recyclable.lock().pop() {
            std::fs::rename(&old, &path)
                .map_err(|e| storelab_pager::Error::io(&old, "rename", e))?;
            self.backend.open(&path, &options)?
        } else {
            let file = self.backend.open(&path, &options)?;
            self.zero_fill(&file)?;
            file
        };
        if self.backend.file_len(&file)? < self.geometry.segment_size as u64 {
            self.zero_fill(&file)?;
        }
        // (Re)write the header: a recycled file still names its old number.
        let mut header = AlignedBuf::zeroed(SEGMENT_HEADER_SIZE);
        encode_header(&mut header, n, self.geometry.segment_size, self.page_size);
        self.ledger
            .record_write(self.ledger_id, IoCause::Wal, SEGMENT_HEADER_SIZE as u64);
        self.backend.write_at(&file, 0, header)?;
        self.ledger.record_sync(self.ledger_id, IoCause::Wal);
        self.backend.sync(&file)?;
        sync_dir(&self.config.dir)?;
        // Close segments well behind the one in use.
        while segments.len() > 4 {
            let first = *segments.keys().next().expect("non-empty");
            segments.remove(&first);
        }
        segments.insert(n, Arc::clone(&file));
        Ok(file)
    }

    /// Zero-fills the segment from its current end to its full size. Only from the end: a
    /// segment cut short may still hold records that recovery has to read.
    fn zero_fill(&self, file: &Arc<IoFile>) -> Result<()> {
        let size = self.geometry.segment_size as u64;
        let len_now = self.backend.file_len(file)?;
        let mut offset = len_now - len_now % WAL_BLOCK_SIZE as u64;
        if offset < len_now.min(size) {
            // A partial last block: rewrite it whole, its bytes kept, zeros after them.
            let (block, _) = self.backend.read_at(file, offset, WAL_BLOCK_SIZE)?;
            self.ledger
                .record_write(self.ledger_id, IoCause::Wal, WAL_BLOCK_SIZE as u64);
            self.backend.write_at(file, offset, block)?;
            offset += WAL_BLOCK_SIZE as u64;
        }
        while offset < size {
            let len = (size - offset).min(ZERO_FILL_CHUNK as u64);
            self.ledger.record_write(self.ledger_id, IoCause::Wal, len);
            self.backend
                .write_at(file, offset, AlignedBuf::zeroed(len as usize))?;
            offset += len;
        }
        self.ledger.record_sync(self.ledger_id, IoCause::Wal);
        self.backend.sync(file)?;
        Ok(())
    }

    /// Takes a checkpoint: moves the redo pointer to the current end of the log, writes every
    /// dirty page (the WAL rule flushes the log first), syncs the data files, logs a checkpoint
    /// record, points the control file at it, and recycles segments that neither recovery nor
    /// any retention hook ([`Wal::add_retention`]) needs. Returns the new redo LSN.
    pub fn checkpoint(&self, pool: &BufferPool) -> Result<Lsn> {
        crate::atomic_group::refuse_checkpoint_in_group(self)?;
        // No group may be open while the redo pointer moves and the pool is flushed.
        let _no_group = self.atomic.lock();
        let _one = self.checkpoint_lock.lock();
        self.check_poison()?;
        let redo = {
            let st = self.state.lock();
            self.redo_lsn.store(st.insert.0, Ordering::Release);
            st.insert
        };
        pool.flush(None, IoCause::Checkpoint)?;
        // The flush syncs only the files it wrote; pages evicted since the last checkpoint may
        // sit unsynced in files with nothing dirty now. Redo will no longer cover them: sync
        // every logged file (PostgreSQL's checkpointer fsyncs every file written since).
        let files: Vec<FileId> = self.rels.read().values().copied().collect();
        for file in files {
            pool.disk().sync(file, IoCause::Checkpoint)?;
        }
        let main = redo.0.to_le_bytes();
        let record = RecordBuilder::new(RecordType::CHECKPOINT).main(&main);
        let (checkpoint_lsn, end) = self.append_at(&record)?;
        self.flush(end)?;
        self.control.lock().write(ControlData {
            sequence: 0,
            checkpoint_lsn,
            redo_lsn: redo,
            page_size: self.page_size as u32,
            segment_size: self.geometry.segment_size as u32,
            torn_page_mode: self.config.torn_page.code(),
        })?;
        self.recycle(redo)?;
        Ok(redo)
    }

    /// Checkpoints if more than `checkpoint_wal_bytes` of log were written since the last one.
    /// Returns whether it did.
    pub fn checkpoint_if_due(&self, pool: &BufferPool) -> Result<bool> {
        let limit = self.config.checkpoint_wal_bytes;
        if limit == 0 || self.insert_lsn().0 - self.redo_lsn().0 < limit || self.in_atomic_group() {
            return Ok(false);
        }
        self.checkpoint(pool)?;
        Ok(true)
    }

    /// Registers a retention hook: until it is removed, no segment holding an LSN at or
    /// after the hook's answer is recycled (see [`crate::retention`]). Register it before the
    /// first checkpoint that could recycle what the component needs.
    pub fn add_retention(&self, hook: Arc<RetentionFn>) -> RetentionId {
        self.retention.add(hook)
    }

    /// Removes a retention hook; returns whether it was registered.
    pub fn remove_retention(&self, id: RetentionId) -> bool {
        self.retention.remove(id)
    }

    /// Retention hooks registered now.
    pub fn retention_count(&self) -> usize {
        self.retention.count()
    }

    /// Where the log must be kept from: the smaller of the redo LSN and the oldest LSN a
    /// retention hook needs. Segments wholly before it may be recycled.
    pub fn keep_from_lsn(&self) -> Lsn {
        let redo = self.redo_lsn();
        self.retention
            .oldest_needed()
            .map_or(redo, |needed| needed.min(redo))
    }

    /// Renames segments wholly before `redo` and before every retention hook's answer to the
    /// recycle list (up to the limit) and deletes the rest.
    fn recycle(&self, redo: Lsn) -> Result<()> {
        let keep_from = self
            .retention
            .oldest_needed()
            .map_or(redo, |needed| needed.min(redo));
        let first_needed = self.geometry.segment_of(keep_from);
        let entries = std::fs::read_dir(&self.config.dir)
            .map_err(|e| storelab_pager::Error::io(&self.config.dir, "read_dir", e))?;
        let mut old: Vec<(u64, PathBuf)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = parse_segment_file_name(e.file_name().to_str()?)?;
                (n < first_needed).then(|| (n, e.path()))
            })
            .collect();
        old.sort();
        let mut segments = self.segments.lock();
        let mut recyclable = self.recyclable.lock();
        for (n, path) in old {
            segments.remove(&n);
            if recyclable.len() < self.config.recycle_segments_max {
                let spare = self.config.dir.join(format!("spare-{n:016X}"));
                std::fs::rename(&path, &spare)
                    .map_err(|e| storelab_pager::Error::io(&path, "rename", e))?;
                recyclable.push(spare);
            } else {
                std::fs::remove_file(&path)
                    .map_err(|e| storelab_pager::Error::io(&path, "unlink", e))?;
            }
        }
        Ok(())
    }

    /// Flushes everything appended (for a clean shutdown) and stops the background writer.
    pub fn close(&self) -> Result<()> {
        self.stop_writer.store(true, Ordering::Release);
        self.flush(self.insert_lsn())
    }

    /// The control file's current contents.
    pub fn control_data(&self) -> Option<ControlData> {
        self.control.lock().data()
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.config.dir
    }

    /// The backend the log writes through.
    pub fn backend(&self) -> &Arc<dyn IoBackend> {
        &self.backend
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        self.stop_writer.store(true, Ordering::Release);
    }
}

/// The WAL rule: before a page is written, the log is durable up to the page's LSN. And, in
/// doublewrite mode, the page images go to the doublewrite area first.
impl WriteBackHook for Wal {
    fn before_write_back(&self, page_lsn: Lsn) -> storelab_pager::Result<()> {
        self.flush(page_lsn).map_err(|e| match e {
            Error::Pager(p) => p,
            // The only other way a flush fails: an earlier sync of the log failed.
            _ => storelab_pager::Error::Poisoned {
                file: self.config.dir.clone(),
            },
        })
    }

    fn may_write_back(&self, page_lsn: Lsn) -> bool {
        self.page_may_be_written(page_lsn)
    }

    fn before_page_writes(&self, pages: &[(FileId, PageId, &[u8])]) -> storelab_pager::Result<()> {
        match &self.doublewrite {
            Some(area) => area.write_batch(pages, &|file| self.rel_of(file)),
            None => Ok(()),
        }
    }

    fn after_page_writes(&self) {
        if let Some(area) = &self.doublewrite {
            area.release();
        }
    }
}

/// Makes a directory's entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| storelab_pager::Error::io(dir, "open dir", e))?;
    d.sync_all()
        .map_err(|e| storelab_pager::Error::io(dir, "fsync dir", e))?;
    Ok(())
}

/// The spare segments an earlier process left in `dir` (`spare-*`, renamed there by
/// checkpoints for reuse): up to `max` are adopted for reuse by this process, in name order,
/// and the rest deleted, so spares never pile up across restarts. A spare holds stale records
/// only; it is renamed into place and its header rewritten before any use, exactly as a spare
/// recycled within one process.
fn adopt_spares(dir: &Path, max: usize) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(storelab_pager::Error::io(dir, "read_dir", e).into()),
    };
    let mut spares: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|name| name.starts_with("spare-"))
                && e.file_type().is_ok_and(|t| t.is_file())
        })
        .map(|e| e.path())
        .collect();
    spares.sort();
    for extra in spares.split_off(max.min(spares.len())) {
        std::fs::remove_file(&extra).map_err(|e| storelab_pager::Error::io(&extra, "unlink", e))?;
    }
    Ok(spares)
}
