//! The I/O ledger: every physical read, write and sync, counted and attributed.
//!
//! Each I/O is charged to a file (a relation: the heap, an index by name, an LSM level's
//! table, the WAL) and a [`IoCause`] (why it happened). The counters are relaxed atomics in a
//! fixed array per file, so recording costs a few uncontended atomic adds and the ledger can
//! stay on in every run. A workload takes a [`LedgerSnapshot`] before and after a phase and
//! divides the [`delta`](LedgerSnapshot::delta) by the operation count to say, for example,
//! "an update cost 3.2 page writes: 1 heap, 2.0 index, plus 1.1 KiB of WAL".

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

/// A registered file's number in the ledger (and in the pager's file table).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FileId(pub u32);

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "file#{}", self.0)
    }
}

/// Why an I/O happened.
///
/// Extend by adding a variant (and its name in [`IoCause::name`]); the counter arrays size
/// themselves from [`IoCause::ALL`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[non_exhaustive]
pub enum IoCause {
    /// A page a query needed right now and did not find in the pool.
    ForegroundRead,
    /// A page read ahead of need by a read stream.
    Prefetch,
    /// A dirty page written to free its frame.
    EvictionWriteBack,
    /// A dirty page written by an explicit flush (`flush_all`, `flush_file`).
    Flush,
    /// A dirty page written, or a file synced, by a checkpoint.
    Checkpoint,
    /// Write-ahead log records.
    Wal,
    /// Full-page images in the WAL (torn-page protection, PostgreSQL style).
    FullPageImage,
    /// Doublewrite-area writes (torn-page protection, InnoDB style).
    Doublewrite,
    /// LSM compaction reads and writes.
    Compaction,
    /// Vacuum reads and writes.
    Vacuum,
    /// Benchmark and test traffic.
    Bench,
}

impl IoCause {
    /// Every cause, in report order.
    pub const ALL: [IoCause; 11] = [
        IoCause::ForegroundRead,
        IoCause::Prefetch,
        IoCause::EvictionWriteBack,
        IoCause::Flush,
        IoCause::Checkpoint,
        IoCause::Wal,
        IoCause::FullPageImage,
        IoCause::Doublewrite,
        IoCause::Compaction,
        IoCause::Vacuum,
        IoCause::Bench,
    ];
    const COUNT: usize = Self::ALL.len();

    /// The cause's name in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            IoCause::ForegroundRead => "read",
            IoCause::Prefetch => "prefetch",
            IoCause::EvictionWriteBack => "eviction",
            IoCause::Flush => "flush",
            IoCause::Checkpoint => "checkpoint",
            IoCause::Wal => "wal",
            IoCause::FullPageImage => "fpi",
            IoCause::Doublewrite => "doublewrite",
            IoCause::Compaction => "compaction",
            IoCause::Vacuum => "vacuum",
            IoCause::Bench => "bench",
        }
    }

    fn index(self) -> usize {
        Self::ALL
            .iter()
            .position(|&c| c == self)
            .expect("every cause is in ALL")
    }
}

/// Counts for one (file, cause) pair.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct IoCounts {
    /// Read calls (a combined read of several pages counts once).
    pub read_count: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Write calls.
    pub write_count: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// fsync/fdatasync calls.
    pub sync_count: u64,
}

impl IoCounts {
    fn saturating_sub(self, o: IoCounts) -> IoCounts {
        IoCounts {
            read_count: self.read_count.saturating_sub(o.read_count),
            read_bytes: self.read_bytes.saturating_sub(o.read_bytes),
            write_count: self.write_count.saturating_sub(o.write_count),
            write_bytes: self.write_bytes.saturating_sub(o.write_bytes),
            sync_count: self.sync_count.saturating_sub(o.sync_count),
        }
    }

    /// Adds `o` into `self`.
    pub fn add(&mut self, o: IoCounts) {
        self.read_count += o.read_count;
        self.read_bytes += o.read_bytes;
        self.write_count += o.write_count;
        self.write_bytes += o.write_bytes;
        self.sync_count += o.sync_count;
    }

    /// True if nothing was counted.
    pub fn is_zero(&self) -> bool {
        *self == IoCounts::default()
    }
}

#[derive(Default)]
struct AtomicCounts {
    read_count: AtomicU64,
    read_bytes: AtomicU64,
    write_count: AtomicU64,
    write_bytes: AtomicU64,
    sync_count: AtomicU64,
}

impl AtomicCounts {
    fn load(&self) -> IoCounts {
        IoCounts {
            read_count: self.read_count.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            write_count: self.write_count.load(Ordering::Relaxed),
            write_bytes: self.write_bytes.load(Ordering::Relaxed),
            sync_count: self.sync_count.load(Ordering::Relaxed),
        }
    }
}

struct FileCounters {
    name: String,
    by_cause: [AtomicCounts; IoCause::COUNT],
}

/// The ledger. Shared (`Arc`) by everything that does I/O for one database.
#[derive(Default)]
pub struct Ledger {
    files: RwLock<Vec<Arc<FileCounters>>>,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("files", &self.files.read().len())
            .finish()
    }
}

impl Ledger {
    /// A new, empty ledger.
    pub fn new() -> Arc<Ledger> {
        Arc::new(Ledger::default())
    }

    /// Registers a file under a relation name and returns its id.
    pub fn register(&self, name: impl Into<String>) -> FileId {
        let mut files = self.files.write();
        let id = u32::try_from(files.len()).expect("fewer than 2^32 files");
        files.push(Arc::new(FileCounters {
            name: name.into(),
            by_cause: Default::default(),
        }));
        FileId(id)
    }

    /// The name a file was registered under.
    pub fn name(&self, file: FileId) -> Option<String> {
        self.files
            .read()
            .get(file.0 as usize)
            .map(|f| f.name.clone())
    }

    fn with(&self, file: FileId, cause: IoCause, f: impl FnOnce(&AtomicCounts)) {
        let files = self.files.read();
        let counters = files
            .get(file.0 as usize)
            .unwrap_or_else(|| panic!("{file} not registered"));
        f(&counters.by_cause[cause.index()]);
    }

    /// Counts one read call of `bytes` bytes.
    pub fn record_read(&self, file: FileId, cause: IoCause, bytes: u64) {
        self.with(file, cause, |c| {
            c.read_count.fetch_add(1, Ordering::Relaxed);
            c.read_bytes.fetch_add(bytes, Ordering::Relaxed);
        });
    }

    /// Counts one write call of `bytes` bytes.
    pub fn record_write(&self, file: FileId, cause: IoCause, bytes: u64) {
        self.with(file, cause, |c| {
            c.write_count.fetch_add(1, Ordering::Relaxed);
            c.write_bytes.fetch_add(bytes, Ordering::Relaxed);
        });
    }

    /// Counts one sync call.
    pub fn record_sync(&self, file: FileId, cause: IoCause) {
        self.with(file, cause, |c| {
            c.sync_count.fetch_add(1, Ordering::Relaxed);
        });
    }

    /// Adds arbitrary counts (for I/O accounted in parts, such as the full-page images inside
    /// a WAL write).
    pub fn record(&self, file: FileId, cause: IoCause, counts: IoCounts) {
        self.with(file, cause, |c| {
            c.read_count.fetch_add(counts.read_count, Ordering::Relaxed);
            c.read_bytes.fetch_add(counts.read_bytes, Ordering::Relaxed);
            c.write_count
                .fetch_add(counts.write_count, Ordering::Relaxed);
            c.write_bytes
                .fetch_add(counts.write_bytes, Ordering::Relaxed);
            c.sync_count.fetch_add(counts.sync_count, Ordering::Relaxed);
        });
    }

    /// A consistent-enough copy of every counter (each counter is read atomically; the set is
    /// not, which is fine for before/after deltas around a quiesced phase).
    pub fn snapshot(&self) -> LedgerSnapshot {
        let files = self.files.read();
        let mut entries = BTreeMap::new();
        for (i, file) in files.iter().enumerate() {
            for cause in IoCause::ALL {
                let counts = file.by_cause[cause.index()].load();
                if !counts.is_zero() {
                    entries.insert((FileId(i as u32), cause), counts);
                }
            }
        }
        let names = files.iter().map(|f| f.name.clone()).collect();
        LedgerSnapshot { names, entries }
    }
}

/// A copy of the ledger's counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerSnapshot {
    names: Vec<String>,
    entries: BTreeMap<(FileId, IoCause), IoCounts>,
}

impl LedgerSnapshot {
    /// What happened between `earlier` and `self`.
    pub fn delta(&self, earlier: &LedgerSnapshot) -> LedgerSnapshot {
        let mut entries = BTreeMap::new();
        for (key, counts) in &self.entries {
            let before = earlier.entries.get(key).copied().unwrap_or_default();
            let d = counts.saturating_sub(before);
            if !d.is_zero() {
                entries.insert(*key, d);
            }
        }
        LedgerSnapshot {
            names: self.names.clone(),
            entries,
        }
    }

    /// Counts for one file and cause.
    pub fn get(&self, file: FileId, cause: IoCause) -> IoCounts {
        self.entries
            .get(&(file, cause))
            .copied()
            .unwrap_or_default()
    }

    /// Counts for one file, all causes.
    pub fn file_total(&self, file: FileId) -> IoCounts {
        let mut total = IoCounts::default();
        for ((f, _), c) in &self.entries {
            if *f == file {
                total.add(*c);
            }
        }
        total
    }

    /// Counts for one cause, all files.
    pub fn cause_total(&self, cause: IoCause) -> IoCounts {
        let mut total = IoCounts::default();
        for ((_, c), counts) in &self.entries {
            if *c == cause {
                total.add(*counts);
            }
        }
        total
    }

    /// Counts over everything.
    pub fn total(&self) -> IoCounts {
        let mut total = IoCounts::default();
        for counts in self.entries.values() {
            total.add(*counts);
        }
        total
    }

    /// Every non-zero entry as (file name, cause, counts), in file then cause order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, IoCause, IoCounts)> + '_ {
        self.entries.iter().map(|((file, cause), counts)| {
            let name = self
                .names
                .get(file.0 as usize)
                .map(String::as_str)
                .unwrap_or("?");
            (name, *cause, *counts)
        })
    }
}

impl fmt::Display for LedgerSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<24} {:<12} {:>10} {:>12} {:>10} {:>12} {:>8}",
            "file", "cause", "reads", "read bytes", "writes", "write bytes", "syncs"
        )?;
        for (name, cause, c) in self.entries() {
            writeln!(
                f,
                "{:<24} {:<12} {:>10} {:>12} {:>10} {:>12} {:>8}",
                name,
                cause.name(),
                c.read_count,
                c.read_bytes,
                c.write_count,
                c.write_bytes,
                c.sync_count
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A delta counts only what happened between two snapshots, per file and cause.
    #[test]
    fn delta_attributes_io_to_file_and_cause() {
        let ledger = Ledger::new();
        let heap = ledger.register("heap");
        let index = ledger.register("index:pk");
        ledger.record_read(heap, IoCause::ForegroundRead, 8192);
        let before = ledger.snapshot();
        ledger.record_read(heap, IoCause::Prefetch, 16384);
        ledger.record_write(index, IoCause::EvictionWriteBack, 8192);
        ledger.record_sync(index, IoCause::Checkpoint);
        let delta = ledger.snapshot().delta(&before);
        assert_eq!(
            delta.get(heap, IoCause::ForegroundRead),
            IoCounts::default()
        );
        assert_eq!(delta.get(heap, IoCause::Prefetch).read_bytes, 16384);
        assert_eq!(delta.file_total(index).write_count, 1);
        assert_eq!(delta.cause_total(IoCause::Checkpoint).sync_count, 1);
        assert_eq!(delta.total().read_count, 1);
        assert!(delta.to_string().contains("index:pk"));
    }
}
