//! Buffer-pool behaviour through the public API, on real files with the sync backend (the
//! backend conformance suite covers the others).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use storelab_pager::buffer_pool::{PolicyKind, WriteBackHook};
use storelab_pager::io::SyncBackend;
use storelab_pager::{
    BufferPool, Disk, Error, FileId, IoCause, Ledger, Lsn, PageId, PageSize, PageType, PoolConfig,
    ReadStream, ReadStreamConfig, ScanRing,
};

struct Fixture {
    _dir: tempfile::TempDir,
    pool: BufferPool,
    file: FileId,
}

fn fixture(frames: usize, policy: PolicyKind) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K4,
        false,
    );
    let file = disk
        .open_file(&dir.path().join("rel"), "rel", true)
        .unwrap();
    let pool = BufferPool::new(
        disk,
        PoolConfig {
            frame_count: frames,
            policy,
        },
    )
    .unwrap();
    Fixture {
        _dir: dir,
        pool,
        file,
    }
}

/// Creates `n` pages whose body starts with their page number, and flushes them.
fn fill(f: &Fixture, n: u64) {
    for i in 0..n {
        let mut page = f.pool.new_page(f.file, PageType::RAW).unwrap();
        assert_eq!(page.page_id(), PageId(i));
        page.body_mut()[..8].copy_from_slice(&i.to_le_bytes());
    }
    f.pool.flush_all().unwrap();
}

fn body_u64(bytes: &[u8]) -> u64 {
    u64::from_le_bytes(bytes[..8].try_into().unwrap())
}

/// Pages written through a tiny pool survive eviction: every page reads back what was written.
#[test]
fn evicted_dirty_pages_are_written_back() {
    for policy in [PolicyKind::ClockSweep, PolicyKind::Lru] {
        let f = fixture(4, policy);
        fill(&f, 40);
        for i in (0..40).rev() {
            let page = f.pool.read(f.file, PageId(i)).unwrap();
            assert_eq!(body_u64(page.body()), i);
        }
        let stats = f.pool.stats();
        assert!(stats.eviction_count > 30, "{stats:?}");
        f.pool.check().unwrap();
    }
}

/// Pinned pages are never evicted; with every frame pinned, a miss is `PoolExhausted`.
#[test]
fn pinned_pages_survive_pressure_and_exhaust_the_pool() {
    let f = fixture(3, PolicyKind::ClockSweep);
    fill(&f, 10);
    let a = f.pool.read(f.file, PageId(0)).unwrap();
    let b = f.pool.read(f.file, PageId(1)).unwrap();
    for i in 2..10 {
        let page = f.pool.read(f.file, PageId(i)).unwrap();
        assert_eq!(body_u64(page.body()), i);
    }
    assert_eq!(body_u64(a.body()), 0);
    assert_eq!(body_u64(b.body()), 1);
    let c = f.pool.read(f.file, PageId(2)).unwrap();
    let err = f.pool.read(f.file, PageId(3)).unwrap_err();
    assert!(
        matches!(err, Error::PoolExhausted { frame_count: 3 }),
        "{err}"
    );
    drop((a, b, c));
    f.pool.read(f.file, PageId(3)).unwrap();
    f.pool.check().unwrap();
}

/// A page corrupted on disk surfaces as `ChecksumMismatch` naming file and page, every time,
/// and leaves the pool consistent.
#[test]
fn corrupt_page_on_disk_is_a_checksum_mismatch() {
    let f = fixture(4, PolicyKind::ClockSweep);
    fill(&f, 8);
    let path = f.pool.disk().path(f.file).unwrap();
    f.pool.evict_file(f.file).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5 * 4096 + 1000] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    for _ in 0..2 {
        let err = f.pool.read(f.file, PageId(5)).unwrap_err();
        match err {
            Error::ChecksumMismatch { file, page_id, .. } => {
                assert_eq!(file, path);
                assert_eq!(page_id, PageId(5));
            }
            other => panic!("expected a checksum mismatch, got {other}"),
        }
    }
    assert_eq!(body_u64(f.pool.read(f.file, PageId(4)).unwrap().body()), 4);
    f.pool.check().unwrap();
}

/// Reading past the end of a file is an error, not a page of garbage.
#[test]
fn read_past_end_is_out_of_range() {
    let f = fixture(4, PolicyKind::ClockSweep);
    fill(&f, 2);
    let err = f.pool.read(f.file, PageId(2)).unwrap_err();
    assert!(
        matches!(err, Error::PageOutOfRange { page_count: 2, .. }),
        "{err}"
    );
}

/// Many threads incrementing counters on shared pages through a pool smaller than the data
/// never lose an update.
#[test]
fn concurrent_writers_and_readers_lose_nothing() {
    let f = fixture(8, PolicyKind::ClockSweep);
    let pages = 32u64;
    fill(&f, pages);
    let threads = 8;
    let rounds = 400u64;
    std::thread::scope(|s| {
        for t in 0..threads {
            let f = &f;
            s.spawn(move || {
                let mut x = t as u64 * 7919 + 1;
                for _ in 0..rounds {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let page_id = PageId((x >> 33) % pages);
                    if x & 1 == 0 {
                        let mut page = f.pool.write(f.file, page_id).unwrap();
                        let n = u64::from_le_bytes(page.body()[8..16].try_into().unwrap());
                        page.body_mut()[8..16].copy_from_slice(&(n + 1).to_le_bytes());
                    } else {
                        let page = f.pool.read(f.file, page_id).unwrap();
                        assert_eq!(body_u64(page.body()), page_id.0);
                    }
                }
            });
        }
    });
    let mut writes = 0;
    for i in 0..pages {
        let page = f.pool.read(f.file, PageId(i)).unwrap();
        writes += u64::from_le_bytes(page.body()[8..16].try_into().unwrap());
    }
    // Every thread's writes were the even draws of its own generator: count them again.
    let mut expected = 0;
    for t in 0..threads {
        let mut x = t as u64 * 7919 + 1;
        for _ in 0..rounds {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            expected += u64::from(x & 1 == 0);
        }
    }
    assert_eq!(writes, expected);
    f.pool.check().unwrap();
}

/// A read stream returns the pages in order and combines adjacent misses into fewer reads,
/// charged to the prefetch cause.
#[test]
fn read_stream_prefetches_and_combines() {
    let f = fixture(64, PolicyKind::ClockSweep);
    fill(&f, 48);
    f.pool.evict_file(f.file).unwrap();
    let ledger = f.pool.disk().ledger().clone();
    let before = ledger.snapshot();
    let config = ReadStreamConfig {
        depth: 16,
        combine_max: 8,
    };
    let mut stream = ReadStream::new(&f.pool, f.file, (0..48).map(PageId), config);
    let mut seen = 0;
    while let Some(page) = stream.next() {
        let page = page.unwrap();
        assert_eq!(body_u64(page.body()), seen);
        seen += 1;
    }
    drop(stream);
    assert_eq!(seen, 48);
    let delta = ledger.snapshot().delta(&before);
    let prefetch = delta.get(f.file, IoCause::Prefetch);
    assert_eq!(prefetch.read_bytes, 48 * 4096);
    assert_eq!(prefetch.read_count, 6, "48 pages in runs of 8");
    f.pool.check().unwrap();
}

/// A stream dropped halfway releases every pin and leaves no read in flight.
#[test]
fn read_stream_dropped_early_releases_its_pins() {
    let f = fixture(64, PolicyKind::ClockSweep);
    fill(&f, 40);
    f.pool.evict_file(f.file).unwrap();
    let mut stream = ReadStream::new(
        &f.pool,
        f.file,
        (0..40).rev().map(PageId),
        ReadStreamConfig::default(),
    );
    let first = stream.next().unwrap().unwrap();
    assert_eq!(first.page_id(), PageId(39));
    drop(first);
    drop(stream);
    f.pool.check().unwrap();
}

/// A scan through a ring leaves pages cached before the scan in the pool.
#[test]
fn scan_ring_protects_the_rest_of_the_pool() {
    let f = fixture(32, PolicyKind::Lru);
    fill(&f, 200);
    f.pool.evict_file(f.file).unwrap();
    for i in 0..8 {
        drop(f.pool.read(f.file, PageId(i)).unwrap());
    }
    let ring = ScanRing::new(4);
    for i in 8..200 {
        drop(f.pool.read_with_ring(f.file, PageId(i), &ring).unwrap());
    }
    for i in 0..8 {
        assert!(
            f.pool.contains(f.file, PageId(i)),
            "hot page {i} was evicted by the scan"
        );
    }
    f.pool.check().unwrap();
}

struct RecordingHook {
    lsn_max: AtomicU64,
}

impl WriteBackHook for RecordingHook {
    fn before_write_back(&self, page_lsn: Lsn) -> storelab_pager::Result<()> {
        self.lsn_max.fetch_max(page_lsn.0, Ordering::SeqCst);
        Ok(())
    }
}

/// The write-back hook sees each page's LSN before the page is written.
#[test]
fn write_back_hook_sees_page_lsn() {
    let f = fixture(2, PolicyKind::ClockSweep);
    let hook = Arc::new(RecordingHook {
        lsn_max: AtomicU64::new(0),
    });
    f.pool.set_write_back_hook(hook.clone());
    {
        let mut page = f.pool.new_page(f.file, PageType::RAW).unwrap();
        page.set_lsn(Lsn(77));
    }
    for _ in 0..3 {
        drop(f.pool.new_page(f.file, PageType::RAW).unwrap());
    }
    assert_eq!(hook.lsn_max.load(Ordering::SeqCst), 77);
    f.pool.flush_all().unwrap();
    assert_eq!(f.pool.read(f.file, PageId(0)).unwrap().lsn(), Lsn(77));
}

/// `flush_all` makes changes durable and charges writes and syncs to the flush cause.
#[test]
fn flush_all_writes_and_syncs() {
    let f = fixture(16, PolicyKind::ClockSweep);
    let ledger = f.pool.disk().ledger().clone();
    let before = ledger.snapshot();
    fill(&f, 10);
    let delta = ledger.snapshot().delta(&before);
    let flush = delta.get(f.file, IoCause::Flush);
    assert_eq!(flush.write_count, 10);
    assert_eq!(flush.sync_count, 1);
    f.pool.flush_all().unwrap();
    assert_eq!(
        ledger
            .snapshot()
            .delta(&before)
            .get(f.file, IoCause::Flush)
            .write_count,
        10
    );
}

/// `page_for_overwrite` hands out a page without reading it: a corrupt page can be replaced
/// whole, and a page past the end of the file extends it.
#[test]
fn page_for_overwrite_replaces_corrupt_and_missing_pages() {
    let f = fixture(4, PolicyKind::ClockSweep);
    fill(&f, 3);
    let path = f.pool.disk().path(f.file).unwrap();
    f.pool.evict_file(f.file).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096 + 300] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    assert!(f.pool.read(f.file, PageId(1)).is_err());
    {
        let mut page = f.pool.page_for_overwrite(f.file, PageId(1)).unwrap();
        assert_eq!(page.header().page_type, PageType::FREE);
        page.body_mut()[..8].copy_from_slice(&11u64.to_le_bytes());
    }
    {
        let mut page = f.pool.page_for_overwrite(f.file, PageId(5)).unwrap();
        page.body_mut()[..8].copy_from_slice(&55u64.to_le_bytes());
    }
    assert_eq!(f.pool.disk().page_count(f.file).unwrap(), 6);
    f.pool.flush_all().unwrap();
    f.pool.evict_file(f.file).unwrap();
    assert_eq!(body_u64(f.pool.read(f.file, PageId(1)).unwrap().body()), 11);
    assert_eq!(body_u64(f.pool.read(f.file, PageId(5)).unwrap().body()), 55);
    // Pages 3 and 4 were never written: they read as fresh, empty pages.
    assert_eq!(
        f.pool.read(f.file, PageId(3)).unwrap().header().page_type,
        PageType::FREE
    );
    f.pool.check().unwrap();
}

/// A torn write that extended a file leaves a partial last page: the file opens without it.
/// A file written with another page size is refused instead of cut.
#[test]
fn partial_last_page_is_cut_unless_the_page_size_differs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rel");
    {
        let disk = Disk::new(
            Arc::new(SyncBackend::new()),
            Ledger::new(),
            PageSize::K8,
            false,
        );
        let file = disk.open_file(&path, "rel", true).unwrap();
        let pool = BufferPool::new(disk, PoolConfig::frames(4)).unwrap();
        for _ in 0..3 {
            drop(pool.new_page(file, PageType::RAW).unwrap());
        }
        pool.flush_all().unwrap();
    }
    // 3 pages of 8 KiB: at 16 KiB pages, one and a half pages. Refused, not cut.
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K16,
        false,
    );
    let err = disk.open_file(&path, "rel", false).unwrap_err();
    assert!(err.to_string().contains("8192-byte pages"), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 8192);
    // Half of a fourth 8 KiB page, as a torn extension leaves it: cut off at open.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.extend_from_slice(&[0x77; 4096]);
    std::fs::write(&path, &bytes).unwrap();
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K8,
        false,
    );
    let file = disk.open_file(&path, "rel", false).unwrap();
    assert_eq!(disk.page_count(file).unwrap(), 3);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 8192);
}
