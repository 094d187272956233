//! `Lsm`: the tree itself: write path, read path, flushes, compactions, open and recovery.

use std::collections::{HashMap, HashSet};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};
use storelab_pager::buffer_pool::WriteBackHook;
use storelab_pager::{BufferPool, Disk, FileId, IoCause, Lsn};
use storelab_wal::{
    EndReason, RECORD_GROUP_END, RECORD_GROUP_FIRST, RECORD_IN_GROUP, Record, RecordBuilder,
    RetentionId, Wal, WalReader,
};

use crate::block_cache::BlockCache;
use crate::compaction::{self, CompactionJob};
use crate::config::LsmConfig;
use crate::entry::{Entry, SeqNo};
use crate::error::{Error, Result};
use crate::log_record::{
    BATCH_HEADER_SIZE, BATCH_RECORD_BYTES_MAX, RECORD_LSM_BATCH, decode_batch, encode_batch,
    op_size,
};
use crate::manifest::{
    Manifest, TableMeta, VersionEdit, manifest_file_name, parse_manifest_file_name, read_manifest,
    sync_dir,
};
use crate::memtable::{Direction, Memtable};
use crate::merge_iter::{EntrySource, LevelSource, LsmIter, MemSource, MergeIter, TableSource};
use crate::sstable::{
    BlockHandle, BlockIter, SsTable, SsTableBuilder, TableFile, TableGet, TableId, TableOptions,
    bloom_hash,
};
use crate::stats::{LevelStats, LsmStats, StatsCounters, bump, load};
use crate::version::Version;
use crate::{KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// Size of a WAL record header (counted into the tree's WAL bytes).
const WAL_RECORD_HEADER_SIZE: u64 = 32;
/// How often the background thread looks for work it was not told about (a flush held back
/// by an open atomic group).
const WORKER_POLL: Duration = Duration::from_millis(20);

/// One write of a batch: a key and its new value (`None`: delete).
pub type BatchOp<'a> = (&'a [u8], Option<&'a [u8]>);

struct TreeState {
    mem: Arc<Memtable>,
    /// Frozen memtables, oldest first.
    imms: Vec<Arc<Memtable>>,
    version: Arc<Version>,
}

struct ManifestState {
    manifest: Manifest,
    next_table: u64,
    log_covered: Lsn,
    last_seq: SeqNo,
}

#[derive(Default)]
struct Signal {
    shutdown: bool,
    pending: bool,
    error: Option<String>,
}

struct Inner {
    dir: PathBuf,
    config: LsmConfig,
    disk: Arc<Disk>,
    wal: Arc<Wal>,
    cache: Arc<BlockCache>,
    /// Serialises writers: log order = sequence order = memtable order. Holds the last
    /// sequence number handed out.
    write: Mutex<SeqNo>,
    state: RwLock<TreeState>,
    manifest: Mutex<ManifestState>,
    /// One flush or compaction at a time.
    work: Mutex<Vec<Vec<u8>>>,
    signal: Mutex<Signal>,
    wake: Condvar,
    done: Condvar,
    stats: StatsCounters,
    /// The manifest's durable `log_covered`: the oldest log position the tree still needs
    /// (its unflushed memtables' records start there). Read by the log's retention hook,
    /// which must not take locks; written after each manifest edit that moves it.
    log_retained: Arc<AtomicU64>,
}

/// An LSM tree of byte keys and byte values over the pager's `Disk` and the shared `Wal`.
///
/// See the crate documentation for the design. Cheap to share by reference across threads.
pub struct Lsm {
    inner: Arc<Inner>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The tree's retention hook in the log (removed when the tree is dropped).
    retention: RetentionId,
}

impl std::fmt::Debug for Lsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lsm")
            .field("dir", &self.inner.dir)
            .field("name", &self.inner.config.name)
            .finish_non_exhaustive()
    }
}

fn check_key(key: &[u8]) -> Result<()> {
    if key.is_empty() || key.len() > KEY_SIZE_MAX {
        return Err(Error::KeyTooLarge {
            size: key.len(),
            max: KEY_SIZE_MAX,
        });
    }
    Ok(())
}

impl Lsm {
    /// Opens (or creates) the tree in `dir`.
    ///
    /// Order of opening a database with an LSM: `Wal::open`, then `Lsm::open` (which replays
    /// the tree's records from the log into a table), then `Wal::recover` (register
    /// [`crate::register_redo`] first). The tree registers its retention hook with the log
    /// here, so the recovery's checkpoint keeps the segments its memtable needs; opened after
    /// `Wal::recover`, it finds them only if that checkpoint happened not to recycle them
    /// (else the error is [`Error::LogRecycled`]).
    pub fn open(dir: &Path, config: LsmConfig, disk: &Arc<Disk>, wal: &Arc<Wal>) -> Result<Lsm> {
        config.validate()?;
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create directory", e))?;
        let listing = list_dir(dir)?;
        let cache = BlockCache::new(config.block_cache_bytes);
        let ledger = |level: u8, id: TableId| format!("{}:L{}:{:06}", config.name, level, id.0);

        // 1. The current manifest: the highest-numbered valid one.
        let mut edits = None;
        let mut manifests = listing.manifests.clone();
        manifests.sort_unstable_by(|a, b| b.cmp(a));
        for &n in &manifests {
            let path = dir.join(manifest_file_name(n));
            let bytes = read_whole(disk, &path, &format!("{}:manifest", config.name))?;
            if let Some(e) = read_manifest(&bytes, &path)? {
                edits = Some(e);
                break;
            }
        }
        if edits.is_none() && !listing.tables.is_empty() {
            return Err(Error::CorruptManifest {
                file: dir.to_path_buf(),
                offset: 0,
                reason: "table files but no valid manifest".into(),
            });
        }
        let fresh = edits.is_none();
        let mut metas: HashMap<TableId, TableMeta> = HashMap::new();
        let mut log_covered = wal.insert_lsn();
        let mut last_seq = SeqNo(0);
        let mut next_table = 1u64;
        for edit in edits.iter().flatten() {
            for (level, id) in &edit.deleted {
                if metas.remove(id).is_none_or(|m| m.level != *level) {
                    return Err(Error::CorruptManifest {
                        file: dir.to_path_buf(),
                        offset: 0,
                        reason: format!("edit deletes {id} from L{level}, where it is not"),
                    });
                }
            }
            for m in &edit.added {
                if m.level as usize >= config.level_count {
                    return Err(Error::InvalidConfig(format!(
                        "table {} is in L{} but level_count is {}",
                        m.id, m.level, config.level_count
                    )));
                }
                metas.insert(m.id, m.clone());
            }
            log_covered = edit.log_covered;
            last_seq = edit.last_seq;
            next_table = edit.next_table;
        }

        // 2. Open every live table and check it against its description.
        let mut version = Version::empty(config.level_count);
        for m in metas.values() {
            let path = dir.join(m.id.file_name());
            if !listing.tables.contains(&m.id) {
                return Err(Error::CorruptManifest {
                    file: dir.to_path_buf(),
                    offset: 0,
                    reason: format!("live table {} is missing", m.id),
                });
            }
            let file = disk.open_raw_file(&path, &ledger(m.level, m.id), false)?;
            let table = SsTable::open(
                TableFile::Disk {
                    disk: Arc::clone(disk),
                    file,
                },
                &path,
                m.id,
                m.level,
                m.size,
                Some(Arc::clone(&cache)),
            )?;
            if table.meta() != *m {
                return Err(Error::CorruptTable {
                    file: path,
                    offset: 0,
                    reason: format!("table is {:?}, the manifest says {:?}", table.meta(), m),
                });
            }
            version.levels[m.level as usize].push(Arc::new(table));
        }
        version.sort();
        version.check(config.compaction)?;
        let table_max = listing.tables.iter().map(|t| t.0).max().unwrap_or(0);
        next_table = next_table.max(table_max + 1);

        // 3. Replay the tree's log records after `log_covered` into a memtable.
        if !fresh && wal.insert_lsn() < log_covered {
            return Err(Error::InvalidState(format!(
                "the log ends at {} but the tree's tables cover it up to {log_covered}",
                wal.insert_lsn()
            )));
        }
        let mem = Memtable::new(log_covered);
        let (replay_end, replay_last_seq) = replay_log(wal, config.tree_id, log_covered, &mem)?;
        last_seq = last_seq.max(replay_last_seq);
        mem.set_end_lsn(replay_end);

        let manifest_number = manifests.first().map_or(1, |n| n + 1);
        let manifest_name = format!("{}:manifest", config.name);
        let mut snapshot = VersionEdit {
            snapshot: true,
            log_covered: replay_end,
            last_seq,
            next_table,
            deleted: Vec::new(),
            added: version.tables().map(|t| t.meta()).collect(),
        };
        let stats = StatsCounters::default();
        if !mem.is_empty() {
            // The replayed writes go into an L0 table before the new manifest names it: a
            // crash before the manifest is synced leaves an orphan, and the replay repeats.
            let id = TableId(next_table);
            next_table += 1;
            let (table, written) = write_table_from_entries(
                disk,
                dir,
                &config,
                &cache,
                id,
                0,
                IoCause::Flush,
                mem_entries(&mem).into_iter(),
            )?
            .expect("a non-empty memtable makes a table");
            bump(&stats.levels[0].flush_bytes_written, written);
            bump(&stats.flush_count, 1);
            snapshot.added.push(table.meta());
            snapshot.next_table = next_table;
            version.levels[0].push(Arc::new(table));
            version.sort();
        }
        let manifest = Manifest::create(disk, dir, manifest_number, &snapshot, &manifest_name)?;
        bump(&stats.manifest_bytes_written, manifest.bytes_written());

        // 4. Delete what the new manifest does not name: older manifests, orphan tables.
        for &n in &manifests {
            remove_file(&dir.join(manifest_file_name(n)))?;
        }
        for id in &listing.tables {
            if !metas.contains_key(id) {
                remove_file(&dir.join(id.file_name()))?;
            }
        }
        sync_dir(dir)?;

        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            disk: Arc::clone(disk),
            wal: Arc::clone(wal),
            cache,
            write: Mutex::new(last_seq),
            state: RwLock::new(TreeState {
                mem: Arc::new(Memtable::new(replay_end)),
                imms: Vec::new(),
                version: Arc::new(version),
            }),
            manifest: Mutex::new(ManifestState {
                manifest,
                next_table,
                log_covered: replay_end,
                last_seq,
            }),
            work: Mutex::new(vec![Vec::new(); config.level_count]),
            signal: Mutex::new(Signal::default()),
            wake: Condvar::new(),
            done: Condvar::new(),
            stats,
            log_retained: Arc::new(AtomicU64::new(replay_end.0)),
            config,
        });
        // From here on no checkpoint recycles the log the memtables need (invariant 6). The
        // hook holds only the counter, not the tree: a dropped tree pins nothing.
        let retained = Arc::clone(&inner.log_retained);
        let retention = wal.add_retention(Arc::new(move || {
            Some(Lsn(retained.load(Ordering::Acquire)))
        }));
        let worker = if inner.config.background {
            let bg = Arc::clone(&inner);
            Some(
                std::thread::Builder::new()
                    .name(format!("storelab-lsm-{}", inner.config.name))
                    .spawn(move || bg.worker_loop())
                    .map_err(|e| Error::io(dir, "spawn the LSM worker", e))?,
            )
        } else {
            None
        };
        let lsm = Lsm {
            inner,
            worker: Mutex::new(worker),
            retention,
        };
        lsm.inner.kick();
        Ok(lsm)
    }

    /// The configuration.
    pub fn config(&self) -> &LsmConfig {
        &self.inner.config
    }

    /// The tree's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// Puts `key` = `value` and commits it (durable as the log's commit mode says).
    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.write_batch(&[(key, Some(value))])
    }

    /// Deletes `key` (writes a tombstone) and commits it.
    pub fn delete(&self, key: &[u8]) -> Result<()> {
        self.write_batch(&[(key, None)])
    }

    /// Applies a batch atomically (all or nothing after a crash) and commits it.
    pub fn write_batch(&self, ops: &[BatchOp<'_>]) -> Result<()> {
        let end = self.write_batch_uncommitted(ops)?;
        self.inner.wal.commit(end)?;
        Ok(())
    }

    /// Applies a batch atomically and returns the log position to commit, without waiting
    /// for durability: for an engine that commits several changes at once (call
    /// `Wal::commit` with the returned LSN, or with a later one). Inside the caller's atomic
    /// group, the records join that group.
    pub fn write_batch_uncommitted(&self, ops: &[BatchOp<'_>]) -> Result<Lsn> {
        self.inner.write_batch(ops)
    }

    /// The newest value of `key`, or `None` if it is absent or deleted.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        self.inner.get(key)
    }

    /// Keys and values in `[lower, upper]` (as bounded), ascending.
    pub fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<LsmIter> {
        self.inner.range(lower, upper, Direction::Forward)
    }

    /// Keys and values in `[lower, upper]` (as bounded), descending.
    pub fn range_rev(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>) -> Result<LsmIter> {
        self.inner.range(lower, upper, Direction::Reverse)
    }

    /// Freezes the active memtable (if not empty) and waits until every frozen memtable is in
    /// a table.
    pub fn flush(&self) -> Result<()> {
        if self.inner.wal.in_atomic_group() {
            return Err(Error::InvalidState(
                "flush inside an atomic group would wait for the group forever".into(),
            ));
        }
        {
            let _w = self.inner.write.lock();
            self.inner.freeze();
        }
        self.inner.kick();
        self.inner.wait_until(|st| st.imms.is_empty())
    }

    /// Flushes, then runs compactions until none is due.
    pub fn compact(&self) -> Result<()> {
        self.flush()?;
        self.wait_for_compaction()
    }

    /// Waits until no flush or compaction is due.
    pub fn wait_for_compaction(&self) -> Result<()> {
        self.inner.kick();
        let config = &self.inner.config;
        self.inner.wait_until(|st| {
            let mut cursors = vec![Vec::new(); config.level_count];
            st.imms.is_empty() && compaction::pick(&st.version, config, &mut cursors).is_none()
        })
    }

    /// Takes a log checkpoint: [`Lsm::release_log`], then `Wal::checkpoint`. Kept for
    /// callers that hold only the tree; a plain `Wal::checkpoint` is just as safe, since the
    /// tree's retention hook keeps the log its memtables need. Does not flush: the memtables'
    /// records stay in the log until a flush writes them into a table. Must not be called
    /// inside an atomic group (the log refuses a checkpoint there).
    pub fn checkpoint(&self, pool: &BufferPool) -> Result<Lsn> {
        self.release_log()?;
        Ok(self.inner.wal.checkpoint(pool)?)
    }

    /// Lets the log go up to its current end if every memtable is empty: an idle tree would
    /// otherwise keep holding the log from its last flush. Cheap (a manifest edit only when
    /// the position moves) and never waits for a flush.
    pub fn release_log(&self) -> Result<()> {
        self.inner.check_poison()?;
        let end = {
            // Under the write lock no write of the tree is between its log record and its
            // memtable insert, so empty memtables mean every record of the tree before the
            // log's end is in a table.
            let _w = self.inner.write.lock();
            let st = self.inner.state.read();
            if !st.mem.is_empty() || !st.imms.is_empty() {
                return Ok(());
            }
            self.inner.wal.insert_lsn()
        };
        let mut m = self.inner.manifest.lock();
        if end <= m.log_covered {
            return Ok(());
        }
        let edit = VersionEdit {
            log_covered: end,
            last_seq: m.last_seq,
            next_table: m.next_table,
            ..VersionEdit::default()
        };
        self.inner.log_edit(&mut m, &edit)?;
        m.log_covered = end;
        self.inner.log_retained.fetch_max(end.0, Ordering::AcqRel);
        self.inner.maybe_rewrite_manifest(&mut m)
    }

    /// The oldest log position the tree still needs (its retention hook's answer).
    pub fn log_retained_lsn(&self) -> Lsn {
        Lsn(self.inner.log_retained.load(Ordering::Acquire))
    }

    /// Counters, sizes per level and the amplifications.
    pub fn stats(&self) -> LsmStats {
        self.inner.stats()
    }

    /// Bytes of live user data (keys and values of the newest versions, tombstones
    /// excluded), by a full scan: the denominator of the exact space amplification.
    pub fn live_data_bytes(&self) -> Result<u64> {
        let mut total = 0u64;
        for item in self.range(Bound::Unbounded, Bound::Unbounded)? {
            let (k, v) = item?;
            total += (k.len() + v.len()) as u64;
        }
        Ok(total)
    }

    /// Checks every invariant: level order and non-overlap, and each table in full (every
    /// block's checksum and order, index keys, footer counts and sequence ranges).
    pub fn check(&self) -> Result<()> {
        self.inner.check()
    }

    /// The live tables, per level: (table, size, smallest key, largest key), for inspection.
    pub fn levels(&self) -> Vec<Vec<TableMeta>> {
        let st = self.inner.state.read();
        st.version
            .levels
            .iter()
            .map(|l| l.iter().map(|t| t.meta()).collect())
            .collect()
    }
}

impl Drop for Lsm {
    fn drop(&mut self) {
        // The next open replays from the manifest's `log_covered`; until then the log must
        // not be recycled past it, so reopen the tree before the log's next checkpoint (an
        // engine drops the tree and the log together).
        self.inner.wal.remove_retention(self.retention);
        {
            let mut sig = self.inner.signal.lock();
            sig.shutdown = true;
        }
        self.inner.wake.notify_all();
        if let Some(h) = self.worker.lock().take() {
            let _ = h.join();
        }
    }
}

impl Inner {
    fn check_poison(&self) -> Result<()> {
        match &self.signal.lock().error {
            Some(e) => Err(Error::Poisoned(e.clone())),
            None => Ok(()),
        }
    }

    fn poison(&self, e: &Error) {
        let mut sig = self.signal.lock();
        sig.error.get_or_insert_with(|| e.to_string());
        drop(sig);
        self.done.notify_all();
    }

    /// Tells the worker (or, inline, the caller) that there may be work.
    fn kick(&self) {
        if self.config.background {
            self.signal.lock().pending = true;
            self.wake.notify_all();
        }
    }

    fn write_batch(&self, ops: &[BatchOp<'_>]) -> Result<Lsn> {
        self.check_poison()?;
        let mut bytes = 0usize;
        for (key, value) in ops {
            check_key(key)?;
            if let Some(v) = value
                && v.len() > VALUE_SIZE_MAX
            {
                return Err(Error::ValueTooLarge {
                    size: v.len(),
                    max: VALUE_SIZE_MAX,
                });
            }
            bytes += op_size(key, *value);
        }
        if ops.is_empty() {
            return Ok(self.wal.insert_lsn());
        }
        // Lock order: the log's atomic group first, then the tree's write lock.
        let group = if bytes + BATCH_HEADER_SIZE > BATCH_RECORD_BYTES_MAX {
            Some(self.wal.atomic_group()?)
        } else {
            None
        };
        let mut last_seq = self.write.lock();
        self.stall_if_needed()?;
        let mut end = Lsn(0);
        let mut chunk_start = 0;
        let mut rotated = false;
        while chunk_start < ops.len() {
            let mut size = BATCH_HEADER_SIZE;
            let mut chunk_end = chunk_start;
            while chunk_end < ops.len() {
                let s = op_size(ops[chunk_end].0, ops[chunk_end].1);
                if chunk_end > chunk_start && size + s > BATCH_RECORD_BYTES_MAX {
                    break;
                }
                size += s;
                chunk_end += 1;
            }
            let chunk = &ops[chunk_start..chunk_end];
            let first = SeqNo(last_seq.0 + 1);
            let main = encode_batch(self.config.tree_id, first, chunk);
            end = self
                .wal
                .append(&RecordBuilder::new(RECORD_LSM_BATCH).main(&main))?;
            bump(
                &self.stats.wal_bytes_written,
                main.len() as u64 + WAL_RECORD_HEADER_SIZE,
            );
            let mem = Arc::clone(&self.state.read().mem);
            for (i, (key, value)) in chunk.iter().enumerate() {
                mem.put(key, SeqNo(first.0 + i as u64), *value);
                bump(
                    &self.stats.user_bytes_written,
                    (key.len() + value.map_or(0, <[u8]>::len)) as u64,
                );
            }
            mem.set_end_lsn(end);
            bump(&self.stats.user_write_count, chunk.len() as u64);
            *last_seq = SeqNo(first.0 + chunk.len() as u64 - 1);
            // A full memtable is frozen; so is one that holds the log back too far (other
            // writers of the shared log fill it while this tree's memtable stays small:
            // RocksDB's `max_total_wal_size`).
            let retained_bytes = end
                .0
                .saturating_sub(self.log_retained.load(Ordering::Acquire));
            if mem.size_bytes() >= self.config.memtable_bytes_max
                || (retained_bytes > self.config.log_retained_bytes_max
                    && self.state.read().imms.is_empty())
            {
                rotated |= self.freeze();
            }
            chunk_start = chunk_end;
        }
        drop(last_seq);
        if let Some(g) = group {
            end = g.end()?;
        }
        if rotated {
            if self.config.background {
                self.kick();
            } else {
                self.run_work_inline()?;
            }
        }
        Ok(end)
    }

    /// Makes the active memtable immutable (if not empty). Caller holds the write lock.
    fn freeze(&self) -> bool {
        let mut st = self.state.write();
        if st.mem.is_empty() {
            return false;
        }
        let end = st.mem.end_lsn();
        let old = std::mem::replace(&mut st.mem, Arc::new(Memtable::new(end)));
        st.imms.push(old);
        true
    }

    /// Background mode: holds a writer back while L0 is too deep or frozen memtables pile up.
    /// Not inside an atomic group: a held-back flush may be waiting for that very group.
    fn stall_if_needed(&self) -> Result<()> {
        if !self.config.background || self.wal.in_atomic_group() {
            return Ok(());
        }
        let started = Instant::now();
        let mut stalled = false;
        loop {
            let (l0, imms) = {
                let st = self.state.read();
                (st.version.levels[0].len(), st.imms.len())
            };
            if imms >= self.config.immutable_count_max || l0 >= self.config.l0_stop_trigger {
                stalled = true;
                let mut sig = self.signal.lock();
                if let Some(e) = &sig.error {
                    return Err(Error::Poisoned(e.clone()));
                }
                sig.pending = true;
                self.wake.notify_all();
                self.done.wait_for(&mut sig, Duration::from_millis(50));
                continue;
            }
            if l0 >= self.config.l0_slowdown_trigger {
                stalled = true;
                std::thread::sleep(Duration::from_millis(1));
            }
            break;
        }
        if stalled {
            bump(&self.stats.stall_count, 1);
            bump(&self.stats.stall_us, started.elapsed().as_micros() as u64);
        }
        Ok(())
    }

    fn run_work_inline(&self) -> Result<()> {
        loop {
            match self.do_one_job() {
                Ok(true) => continue,
                Ok(false) => return Ok(()),
                Err(e) => {
                    self.poison(&e);
                    return Err(e);
                }
            }
        }
    }

    fn worker_loop(&self) {
        loop {
            {
                let mut sig = self.signal.lock();
                if !sig.pending && !sig.shutdown {
                    self.wake.wait_for(&mut sig, WORKER_POLL);
                }
                if sig.shutdown {
                    return;
                }
                if sig.error.is_some() {
                    continue;
                }
                sig.pending = false;
            }
            loop {
                match self.do_one_job() {
                    Ok(true) => {
                        self.done.notify_all();
                    }
                    Ok(false) => break,
                    Err(e) => {
                        self.poison(&e);
                        break;
                    }
                }
                if self.signal.lock().shutdown {
                    return;
                }
            }
            self.done.notify_all();
        }
    }

    /// Waits until `ready` holds for the tree state (running the work inline if there is no
    /// worker), or a failure poisons the tree.
    fn wait_until(&self, ready: impl Fn(&TreeState) -> bool) -> Result<()> {
        loop {
            if ready(&self.state.read()) {
                return Ok(());
            }
            if !self.config.background {
                self.run_work_inline()?;
                if ready(&self.state.read()) {
                    return Ok(());
                }
                // Work is held back (an atomic group is open in another thread).
                std::thread::sleep(Duration::from_millis(1));
                continue;
            }
            let mut sig = self.signal.lock();
            if let Some(e) = &sig.error {
                return Err(Error::Poisoned(e.clone()));
            }
            sig.pending = true;
            self.wake.notify_all();
            self.done.wait_for(&mut sig, Duration::from_millis(50));
        }
    }

    /// Runs one flush or compaction if one is due; returns whether it did.
    fn do_one_job(&self) -> Result<bool> {
        let mut cursors = self.work.lock();
        let (imm, version) = {
            let st = self.state.read();
            (st.imms.first().cloned(), Arc::clone(&st.version))
        };
        if let Some(imm) = imm {
            // No-steal for atomic groups: a memtable holding records of a group still open
            // must not reach a table (the group may yet be dropped by recovery).
            if WriteBackHook::may_write_back(&*self.wal, imm.end_lsn()) {
                self.flush_memtable(&imm)?;
                return Ok(true);
            }
        }
        if let Some(job) = compaction::pick(&version, &self.config, &mut cursors) {
            self.run_compaction(&job)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn flush_memtable(&self, imm: &Arc<Memtable>) -> Result<()> {
        // The write-ahead rule: the log is durable past every record in the table.
        self.wal.flush(imm.end_lsn())?;
        let id = self.allocate_table();
        let built = write_table_from_entries(
            &self.disk,
            &self.dir,
            &self.config,
            &self.cache,
            id,
            0,
            IoCause::Flush,
            mem_entries(imm).into_iter(),
        )?;
        let mut added = HashMap::new();
        let mut edit = VersionEdit::default();
        if let Some((table, written)) = built {
            bump(&self.stats.levels[0].flush_bytes_written, written);
            edit.added.push(table.meta());
            edit.last_seq = table.seq_range().1;
            added.insert(id, Arc::new(table));
        }
        let mut m = self.manifest.lock();
        edit.log_covered = imm.end_lsn().max(m.log_covered);
        edit.last_seq = edit.last_seq.max(m.last_seq);
        edit.next_table = m.next_table;
        self.log_edit(&mut m, &edit)?;
        m.log_covered = edit.log_covered;
        m.last_seq = edit.last_seq;
        // The edit is durable: the log before `log_covered` may now be recycled.
        self.log_retained
            .fetch_max(edit.log_covered.0, Ordering::AcqRel);
        {
            let mut st = self.state.write();
            let first = st.imms.remove(0);
            assert!(
                Arc::ptr_eq(&first, imm),
                "the oldest memtable is flushed first"
            );
            st.version = Arc::new(st.version.apply(&edit, &added));
        }
        bump(&self.stats.flush_count, 1);
        self.maybe_rewrite_manifest(&mut m)?;
        Ok(())
    }

    fn allocate_table(&self) -> TableId {
        let mut m = self.manifest.lock();
        let id = TableId(m.next_table);
        m.next_table += 1;
        id
    }

    fn run_compaction(&self, job: &CompactionJob) -> Result<()> {
        let mut sources: Vec<Box<dyn EntrySource>> = Vec::new();
        for t in &job.upper {
            sources.push(Box::new(TableSource::new(
                t,
                Direction::Forward,
                Bound::Unbounded,
                IoCause::Compaction,
                false,
            )?));
        }
        if !job.lower.is_empty() {
            sources.push(Box::new(LevelSource::new(
                job.lower.clone(),
                Direction::Forward,
                Bound::Unbounded,
                IoCause::Compaction,
                false,
            )?));
        }
        debug_assert!(
            job.upper
                .iter()
                .all(|t| t.level() as usize == job.source_level)
        );
        let mut merge = MergeIter::new(sources, Direction::Forward, Bound::Unbounded);
        let level = job.output_level;
        let target = if job.split_outputs {
            self.config.table_bytes_target
        } else {
            u64::MAX
        };
        let mut outputs: Vec<SsTable> = Vec::new();
        let mut written_total = 0u64;
        let mut current: Option<(TableId, FileId, PathBuf, SsTableBuilder)> = None;
        let finish = |cur: (TableId, FileId, PathBuf, SsTableBuilder)| -> Result<(SsTable, u64)> {
            let (id, file, path, builder) = cur;
            let built = builder.finish()?;
            let table = SsTable::open(
                TableFile::Disk {
                    disk: Arc::clone(&self.disk),
                    file,
                },
                &path,
                id,
                level as u8,
                built.size,
                Some(Arc::clone(&self.cache)),
            )?;
            Ok((table, built.bytes_written))
        };
        while let Some(e) = merge.next_entry()? {
            if e.value.is_none() && job.drop_tombstones {
                continue;
            }
            if current.is_none() {
                let id = self.allocate_table();
                let (path, file) = self.create_table_file(id, level as u8)?;
                let builder = SsTableBuilder::on_disk(
                    Arc::clone(&self.disk),
                    file,
                    IoCause::Compaction,
                    TableOptions::from(&self.config),
                );
                current = Some((id, file, path, builder));
            }
            let cur = current.as_mut().expect("created above");
            cur.3.add(&e.key, e.seq, e.value.as_deref())?;
            if cur.3.estimated_size() >= target {
                let (t, w) = finish(current.take().expect("open builder"))?;
                written_total += w;
                outputs.push(t);
            }
        }
        if let Some(cur) = current.take() {
            let (t, w) = finish(cur)?;
            written_total += w;
            outputs.push(t);
        }
        // One edit removes every input and adds every output.
        let mut edit = VersionEdit::default();
        for t in job.inputs() {
            edit.deleted.push((t.level(), t.id()));
        }
        let mut added = HashMap::new();
        for t in outputs {
            edit.added.push(t.meta());
            added.insert(t.id(), Arc::new(t));
        }
        let mut m = self.manifest.lock();
        edit.log_covered = m.log_covered;
        edit.last_seq = m.last_seq;
        edit.next_table = m.next_table;
        self.log_edit(&mut m, &edit)?;
        {
            let mut st = self.state.write();
            st.version = Arc::new(st.version.apply(&edit, &added));
        }
        for t in job.inputs() {
            t.mark_obsolete();
            bump(
                &self.stats.levels[t.level() as usize].compaction_bytes_read,
                t.size(),
            );
        }
        bump(
            &self.stats.levels[level].compaction_bytes_written,
            written_total,
        );
        bump(&self.stats.levels[level].compaction_count, 1);
        bump(&self.stats.compaction_count, 1);
        self.maybe_rewrite_manifest(&mut m)?;
        Ok(())
    }

    fn create_table_file(&self, id: TableId, level: u8) -> Result<(PathBuf, FileId)> {
        create_table_file(&self.disk, &self.dir, &self.config.name, id, level)
    }

    fn log_edit(&self, m: &mut ManifestState, edit: &VersionEdit) -> Result<()> {
        let before = m.manifest.bytes_written();
        m.manifest.append(edit)?;
        bump(
            &self.stats.manifest_bytes_written,
            m.manifest.bytes_written() - before,
        );
        Ok(())
    }

    /// Starts a fresh manifest from a snapshot once the current one is too long.
    fn maybe_rewrite_manifest(&self, m: &mut ManifestState) -> Result<()> {
        if m.manifest.len() < self.config.manifest_bytes_max {
            return Ok(());
        }
        let version = Arc::clone(&self.state.read().version);
        let snapshot = VersionEdit {
            snapshot: true,
            log_covered: m.log_covered,
            last_seq: m.last_seq,
            next_table: m.next_table,
            deleted: Vec::new(),
            added: version.tables().map(|t| t.meta()).collect(),
        };
        let number = m.manifest.number() + 1;
        let fresh = Manifest::create(
            &self.disk,
            &self.dir,
            number,
            &snapshot,
            &format!("{}:manifest", self.config.name),
        )?;
        bump(&self.stats.manifest_bytes_written, fresh.bytes_written());
        let old = std::mem::replace(&mut m.manifest, fresh);
        let old_number = old.number();
        old.close();
        remove_file(&self.dir.join(manifest_file_name(old_number)))?;
        sync_dir(&self.dir)
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let (mem, imms, version) = {
            let st = self.state.read();
            (
                Arc::clone(&st.mem),
                st.imms.clone(),
                Arc::clone(&st.version),
            )
        };
        bump(&self.stats.get_count, 1);
        for m in std::iter::once(&mem).chain(imms.iter().rev()) {
            if let Some((_, value)) = m.get(key) {
                bump(&self.stats.get_memtable_hit_count, 1);
                return Ok(value);
            }
        }
        let hash = bloom_hash(key);
        let l0 = version.levels[0].iter().filter(|t| t.covers(key));
        let deeper = (1..version.levels.len()).filter_map(|n| version.table_for(n, key));
        for table in l0.chain(deeper) {
            bump(&self.stats.get_table_candidate_count, 1);
            if table.has_filter() {
                bump(&self.stats.bloom_check_count, 1);
            }
            match table.get(key, hash)? {
                TableGet::FilteredOut => bump(&self.stats.bloom_negative_count, 1),
                TableGet::NotFound => {
                    bump(&self.stats.get_table_read_count, 1);
                    if table.has_filter() {
                        bump(&self.stats.bloom_false_positive_count, 1);
                    }
                }
                TableGet::Found(_, value) => {
                    bump(&self.stats.get_table_read_count, 1);
                    return Ok(value);
                }
            }
        }
        Ok(None)
    }

    fn range(&self, lower: Bound<&[u8]>, upper: Bound<&[u8]>, dir: Direction) -> Result<LsmIter> {
        let (mem, imms, version) = {
            let st = self.state.read();
            (
                Arc::clone(&st.mem),
                st.imms.clone(),
                Arc::clone(&st.version),
            )
        };
        let (start, end) = match dir {
            Direction::Forward => (lower, upper),
            Direction::Reverse => (upper, lower),
        };
        let mut sources: Vec<Box<dyn EntrySource>> = Vec::new();
        for m in std::iter::once(mem).chain(imms) {
            sources.push(Box::new(MemSource::new(m, dir, start, end)));
        }
        for t in &version.levels[0] {
            sources.push(Box::new(TableSource::new(
                t,
                dir,
                start,
                IoCause::ForegroundRead,
                true,
            )?));
        }
        for level in &version.levels[1..] {
            if !level.is_empty() {
                sources.push(Box::new(LevelSource::new(
                    level.clone(),
                    dir,
                    start,
                    IoCause::ForegroundRead,
                    true,
                )?));
            }
        }
        Ok(LsmIter::new(MergeIter::new(sources, dir, end)))
    }

    fn stats(&self) -> LsmStats {
        let st = self.state.read();
        let s = &self.stats;
        let levels = (0..self.config.level_count)
            .map(|n| {
                let c = &s.levels[n];
                LevelStats {
                    table_count: st.version.levels[n].len() as u64,
                    bytes: st.version.level_bytes(n),
                    flush_bytes_written: load(&c.flush_bytes_written),
                    compaction_bytes_written: load(&c.compaction_bytes_written),
                    compaction_bytes_read: load(&c.compaction_bytes_read),
                    compaction_count: load(&c.compaction_count),
                }
            })
            .collect();
        LsmStats {
            levels,
            user_write_count: load(&s.user_write_count),
            user_bytes_written: load(&s.user_bytes_written),
            wal_bytes_written: load(&s.wal_bytes_written),
            manifest_bytes_written: load(&s.manifest_bytes_written),
            flush_count: load(&s.flush_count),
            compaction_count: load(&s.compaction_count),
            get_count: load(&s.get_count),
            get_memtable_hit_count: load(&s.get_memtable_hit_count),
            get_table_candidate_count: load(&s.get_table_candidate_count),
            bloom_check_count: load(&s.bloom_check_count),
            bloom_negative_count: load(&s.bloom_negative_count),
            bloom_false_positive_count: load(&s.bloom_false_positive_count),
            get_table_read_count: load(&s.get_table_read_count),
            stall_count: load(&s.stall_count),
            stall_us: load(&s.stall_us),
            memtable_bytes: st.mem.size_bytes() as u64,
            immutable_count: st.imms.len() as u64,
            immutable_bytes: st.imms.iter().map(|m| m.size_bytes() as u64).sum(),
            pinned_bytes: st.version.tables().map(|t| t.pinned_bytes() as u64).sum(),
            cache: self.cache.stats(),
        }
    }

    fn check(&self) -> Result<()> {
        let (mem, imms, version) = {
            let st = self.state.read();
            (
                Arc::clone(&st.mem),
                st.imms.clone(),
                Arc::clone(&st.version),
            )
        };
        let last_seq = *self.write.lock();
        version.check(self.config.compaction)?;
        for m in std::iter::once(&mem).chain(&imms) {
            for e in mem_entries(m) {
                if e.seq > last_seq {
                    return Err(Error::CheckFailed(format!(
                        "memtable entry {} newer than the last sequence number {last_seq}",
                        e.seq
                    )));
                }
            }
        }
        for t in version.tables() {
            check_table(t)?;
            if t.seq_range().1 > last_seq {
                return Err(Error::CheckFailed(format!(
                    "table {} holds {} past the last sequence number {last_seq}",
                    t.id(),
                    t.seq_range().1
                )));
            }
        }
        Ok(())
    }
}

/// Reads every block of a table and checks order, index keys, counts and sequence range.
fn check_table(t: &Arc<SsTable>) -> Result<()> {
    let fail = |what: String| Err(Error::CheckFailed(format!("table {}: {what}", t.id())));
    let mut index = BlockIter::new(Arc::clone(t.index()));
    index.seek_to_first();
    let mut count = 0u64;
    let mut prev: Option<Vec<u8>> = None;
    let (seq_min, seq_max) = t.seq_range();
    while index.is_valid() {
        let h = BlockHandle::decode(index.value()).map_err(|r| t.corrupt(0, r))?;
        let block = t.read_block(h, IoCause::ForegroundRead, false, None)?;
        let mut it = BlockIter::new(block);
        it.seek_to_first();
        let mut last = Vec::new();
        while it.is_valid() {
            if prev.as_deref().is_some_and(|p| p >= it.key()) {
                return fail(format!("key {:?} out of order", it.key()));
            }
            if it.seq() < seq_min || it.seq() > seq_max {
                return fail(format!(
                    "sequence number {} outside the footer's range",
                    it.seq()
                ));
            }
            if count == 0 && it.key() != t.smallest() {
                return fail("first key is not the smallest".into());
            }
            prev = Some(it.key().to_vec());
            last = it.key().to_vec();
            count += 1;
            it.next();
        }
        if last != index.key() {
            return fail(format!(
                "block at {} ends at a key other than its index key",
                h.offset
            ));
        }
        index.next();
    }
    if count != t.entry_count() {
        return fail(format!(
            "{count} entries, the footer says {}",
            t.entry_count()
        ));
    }
    if prev.as_deref() != Some(t.largest()) {
        return fail("last key is not the largest".into());
    }
    Ok(())
}

impl SsTable {
    /// The manifest's description of this table.
    pub fn meta(&self) -> TableMeta {
        let (seq_min, seq_max) = self.seq_range();
        TableMeta {
            id: self.id(),
            level: self.level(),
            size: self.size(),
            entry_count: self.entry_count(),
            seq_min,
            seq_max,
            smallest: self.smallest().to_vec(),
            largest: self.largest().to_vec(),
        }
    }
}

/// Every entry of a memtable, in key order.
fn mem_entries(m: &Memtable) -> Vec<Entry> {
    m.chunk(
        Bound::Unbounded,
        Bound::Unbounded,
        Direction::Forward,
        usize::MAX,
    )
}

fn create_table_file(
    disk: &Arc<Disk>,
    dir: &Path,
    name: &str,
    id: TableId,
    level: u8,
) -> Result<(PathBuf, FileId)> {
    let path = dir.join(id.file_name());
    let file = disk.open_raw_file(&path, &format!("{name}:L{level}:{:06}", id.0), true)?;
    Ok((path, file))
}

/// Writes entries (in key order) into table `id` at `level`, synced, and opens it; `None`
/// if there were no entries. Returns the bytes written too.
#[allow(clippy::too_many_arguments)] // The pieces of a tree a free function needs; used twice.
fn write_table_from_entries(
    disk: &Arc<Disk>,
    dir: &Path,
    config: &LsmConfig,
    cache: &Arc<BlockCache>,
    id: TableId,
    level: u8,
    cause: IoCause,
    entries: impl Iterator<Item = Entry>,
) -> Result<Option<(SsTable, u64)>> {
    let mut entries = entries.peekable();
    if entries.peek().is_none() {
        return Ok(None);
    }
    let (path, file) = create_table_file(disk, dir, &config.name, id, level)?;
    let mut builder =
        SsTableBuilder::on_disk(Arc::clone(disk), file, cause, TableOptions::from(config));
    for e in entries {
        builder.add(&e.key, e.seq, e.value.as_deref())?;
    }
    let built = builder.finish()?;
    sync_dir(dir)?;
    let table = SsTable::open(
        TableFile::Disk {
            disk: Arc::clone(disk),
            file,
        },
        &path,
        id,
        level,
        built.size,
        Some(Arc::clone(cache)),
    )?;
    Ok(Some((table, built.bytes_written)))
}

/// Replays the tree's batches from `start` into `mem`; returns where the log ends and the
/// largest sequence number seen. Records of an atomic group wait for the group's end marker.
fn replay_log(wal: &Arc<Wal>, tree_id: u32, start: Lsn, mem: &Memtable) -> Result<(Lsn, SeqNo)> {
    let read = |from: Lsn| -> Result<(Vec<Record>, Lsn, Option<EndReason>)> {
        let mut reader = WalReader::new(
            Arc::clone(wal.backend()),
            wal.dir(),
            wal.geometry(),
            wal.page_size(),
            from,
        );
        let mut records = Vec::new();
        while let Some(r) = reader.next_record()? {
            if r.record_type == RECORD_LSM_BATCH || r.flags & RECORD_IN_GROUP != 0 {
                records.push(r);
            }
        }
        let end = reader.end().cloned().expect("the reader stopped");
        Ok((records, end.lsn, Some(end.reason)))
    };
    let (records, end, reason) = read(start)?;
    if matches!(reason, Some(EndReason::MissingSegment(_)))
        && end == start
        && wal.insert_lsn() > start
    {
        // The segment holding `start` is gone although the log goes on after it: a
        // checkpoint recycled it while the tree's retention hook was not registered (the
        // tree was opened after `Wal::recover`, or the log was checkpointed while the tree
        // was closed). The records after `start` may be lost: refuse to guess.
        return Err(Error::LogRecycled {
            needed: start,
            available: wal.redo_lsn(),
        });
    }
    let mut last_seq = SeqNo(0);
    let mut group: Vec<Record> = Vec::new();
    let apply = |r: &Record, last_seq: &mut SeqNo| -> Result<()> {
        if r.record_type != RECORD_LSM_BATCH {
            return Ok(());
        }
        let batch = decode_batch(&r.main)
            .map_err(|reason| Error::CorruptLogRecord { lsn: r.lsn, reason })?;
        if batch.tree_id != tree_id {
            return Ok(());
        }
        for (i, (key, value)) in batch.ops.iter().enumerate() {
            let seq = SeqNo(batch.first_seq.0 + i as u64);
            if mem.get(key).is_some_and(|(s, _)| s >= seq) {
                return Err(Error::CorruptLogRecord {
                    lsn: r.lsn,
                    reason: format!("sequence number {seq} does not increase"),
                });
            }
            mem.put(key, seq, value.as_deref());
            *last_seq = (*last_seq).max(seq);
        }
        Ok(())
    };
    for r in records {
        if r.flags & RECORD_IN_GROUP == 0 {
            apply(&r, &mut last_seq)?;
            continue;
        }
        if r.flags & RECORD_GROUP_FIRST != 0 {
            group.clear();
        }
        if r.flags & RECORD_GROUP_END != 0 {
            for g in group.drain(..) {
                apply(&g, &mut last_seq)?;
            }
            continue;
        }
        group.push(r);
    }
    Ok((end, last_seq))
}

struct Listing {
    manifests: Vec<u64>,
    tables: HashSet<TableId>,
}

fn list_dir(dir: &Path) -> Result<Listing> {
    let mut listing = Listing {
        manifests: Vec::new(),
        tables: HashSet::new(),
    };
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, "list directory", e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, "list directory", e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = parse_manifest_file_name(name) {
            listing.manifests.push(n);
        } else if let Some(id) = TableId::parse_file_name(name) {
            listing.tables.insert(id);
        }
    }
    Ok(listing)
}

/// Reads a whole file through the disk (so the read is in the ledger), then closes it.
fn read_whole(disk: &Arc<Disk>, path: &Path, ledger_name: &str) -> Result<Vec<u8>> {
    let file = disk.open_raw_file(path, ledger_name, false)?;
    let len = disk.file_len(file)?;
    let mut out = Vec::new();
    let mut offset = 0u64;
    const CHUNK: usize = 1 << 20;
    while offset < len {
        let (buf, n) = disk.read_at(file, offset, CHUNK, IoCause::ForegroundRead)?;
        let n = n.min((len - offset) as usize);
        out.extend_from_slice(&buf[..n]);
        if n < CHUNK {
            break;
        }
        offset += n as u64;
    }
    disk.close_file(file)?;
    Ok(out)
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(path, "unlink", e)),
    }
}
