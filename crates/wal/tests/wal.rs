//! The WAL through its public API: commit and recover, full-page images, torn tails, damaged
//! pages, group commit, segment switches and recycling.

use std::path::Path;
use std::sync::Arc;

use storelab_pager::io::SyncBackend;
use storelab_pager::page::PAGE_HEADER_SIZE;
use storelab_pager::{
    BufferPool, Disk, FileId, IoCause, Ledger, PageId, PageSize, PageType, PoolConfig,
};
use storelab_wal::{
    CommitMode, EndReason, Error, RecordBuilder, RecordType, RedoRegistry, RelId, TornPageMode,
    Wal, WalConfig,
};

/// Test record: block data is `offset u16` + bytes, written into the page body at `offset`.
const SET: RecordType = RecordType(16);
const REL: RelId = RelId(1);

fn registry() -> RedoRegistry {
    let mut r = RedoRegistry::new();
    r.register(SET, |record, block, page| {
        let data = &record.blocks[block].data;
        let offset = u16::from_le_bytes([data[0], data[1]]) as usize + PAGE_HEADER_SIZE;
        let bytes = &data[2..];
        page.get_mut(offset..offset + bytes.len())
            .ok_or("offset out of page")?
            .copy_from_slice(bytes);
        Ok(())
    });
    r
}

struct Db {
    pool: BufferPool,
    wal: Arc<Wal>,
    file: FileId,
}

fn config(dir: &Path, mode: TornPageMode) -> WalConfig {
    let mut c = WalConfig::new(dir.join("wal"));
    c.segment_size = 64 * 1024;
    c.torn_page = mode;
    c.checkpoint_wal_bytes = 0;
    c
}

fn open(dir: &Path, config: WalConfig) -> (Db, storelab_wal::RecoveryReport) {
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K4,
        false,
    );
    let file = disk.open_file(&dir.join("data.rel"), "data", true).unwrap();
    let pool = BufferPool::new(Arc::clone(&disk), PoolConfig::frames(8)).unwrap();
    let wal = Wal::open(config, &disk).unwrap();
    wal.attach(REL, file);
    let report = wal.recover(&pool, &registry()).unwrap();
    pool.check().unwrap();
    (Db { pool, wal, file }, report)
}

/// Sets `bytes` at `offset` of `page_id` (allocating pages up to it), logged and committed.
fn set(db: &Db, page_id: u64, offset: u16, bytes: &[u8]) -> storelab_pager::Lsn {
    while db.pool.disk().page_count(db.file).unwrap() <= page_id {
        let mut page = db.pool.new_page(db.file, PageType::RAW).unwrap();
        let lsn = db
            .wal
            .append(&RecordBuilder::new(RecordType::PAGE_IMAGES).block(
                REL,
                page.page_id(),
                &page,
                b"",
            ))
            .unwrap();
        page.set_lsn(lsn);
    }
    let mut page = db.pool.write(db.file, PageId(page_id)).unwrap();
    let at = PAGE_HEADER_SIZE + offset as usize;
    page[at..at + bytes.len()].copy_from_slice(bytes);
    let mut data = offset.to_le_bytes().to_vec();
    data.extend_from_slice(bytes);
    let end = db
        .wal
        .append(&RecordBuilder::new(SET).block(REL, PageId(page_id), &page, &data))
        .unwrap();
    page.set_lsn(end);
    drop(page);
    db.wal.commit(end).unwrap();
    end
}

fn get(db: &Db, page_id: u64, offset: u16, len: usize) -> Vec<u8> {
    let page = db.pool.read(db.file, PageId(page_id)).unwrap();
    let at = PAGE_HEADER_SIZE + offset as usize;
    page[at..at + len].to_vec()
}

/// Committed changes whose pages never reached disk are redone at the next open.
#[test]
fn committed_changes_survive_without_page_writes() {
    for mode in [
        TornPageMode::FullPageImages,
        TornPageMode::Doublewrite,
        TornPageMode::None,
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, _) = open(dir.path(), config(dir.path(), mode));
            for i in 0..20u64 {
                set(&db, i % 5, (i * 8) as u16, &i.to_le_bytes());
            }
            // Dropped without flushing the pool: only the log has the changes.
        }
        let (db, report) = open(dir.path(), config(dir.path(), mode));
        assert!(
            report.pages_redone + report.images_restored >= 20,
            "{mode}: {report:?}"
        );
        for i in 0..20u64 {
            assert_eq!(
                get(&db, i % 5, (i * 8) as u16, 8),
                i.to_le_bytes(),
                "{mode}"
            );
        }
        // Recovery checkpointed: the next open has nothing to redo.
        drop(db);
        let (_, report) = open(dir.path(), config(dir.path(), mode));
        assert_eq!(report.pages_redone, 0, "{mode}: {report:?}");
    }
}

/// In full-page-image mode the first change to a page after a checkpoint carries its image,
/// later ones do not; the ledger counts the images under their own cause.
#[test]
fn full_page_image_on_first_change_after_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::FullPageImages));
    set(&db, 0, 0, b"a");
    db.wal.checkpoint(&db.pool).unwrap();
    let ledger = db.pool.disk().ledger().clone();
    let before = ledger.snapshot();
    set(&db, 0, 1, b"b");
    set(&db, 0, 2, b"c");
    let delta = ledger.snapshot().delta(&before);
    let fpi = delta.get(db.wal.ledger_id(), IoCause::FullPageImage);
    assert_eq!(fpi.write_count, 1, "{delta}");
    assert_eq!(fpi.write_bytes, 4096);
    assert!(delta.get(db.wal.ledger_id(), IoCause::Wal).sync_count >= 2);
}

/// Cutting the log anywhere leaves a prefix: recovery stops at the cut and reports why.
#[test]
fn recovery_discards_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut ends = Vec::new();
    {
        let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
        for i in 0..10u64 {
            ends.push(set(&db, 0, (i * 8) as u16, &(i + 1).to_le_bytes()));
        }
    }
    // Zero everything after the 5th commit's end.
    let cut = ends[4].0;
    let seg = dir.path().join("wal").join("0000000000000000.wal");
    let mut bytes = std::fs::read(&seg).unwrap();
    for b in &mut bytes[4096 + cut as usize + 3..] {
        *b = 0x5A;
    }
    std::fs::write(&seg, &bytes).unwrap();
    let (db, report) = open(dir.path(), config(dir.path(), TornPageMode::None));
    assert_eq!(report.end.lsn, ends[4]);
    assert!(
        matches!(report.end.reason, EndReason::Corrupt(_)),
        "{report:?}"
    );
    for i in 0..5u64 {
        assert_eq!(get(&db, 0, (i * 8) as u16, 8), (i + 1).to_le_bytes());
    }
    for i in 5..10u64 {
        assert_eq!(get(&db, 0, (i * 8) as u16, 8), [0; 8]);
    }
    // The log continues after the cut.
    set(&db, 0, 100, b"after");
    drop(db);
    let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
    assert_eq!(get(&db, 0, 100, 5), b"after");
}

fn flip_page_bit(dir: &Path, page_id: u64) {
    let path = dir.join("data.rel");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[page_id as usize * 4096 + 2000] ^= 4;
    std::fs::write(&path, &bytes).unwrap();
}

/// A damaged page is repaired from a full-page image in the log; without one, recovery says
/// which page is damaged instead of redoing onto it.
#[test]
fn damaged_page_repaired_from_image_or_reported() {
    for mode in [TornPageMode::FullPageImages, TornPageMode::None] {
        let dir = tempfile::tempdir().unwrap();
        {
            let (db, _) = open(dir.path(), config(dir.path(), mode));
            set(&db, 1, 0, b"before");
            db.wal.checkpoint(&db.pool).unwrap();
            set(&db, 1, 8, b"after");
            db.pool.flush_all().unwrap();
        }
        flip_page_bit(dir.path(), 1);
        let disk = Disk::new(
            Arc::new(SyncBackend::new()),
            Ledger::new(),
            PageSize::K4,
            false,
        );
        let file = disk
            .open_file(&dir.path().join("data.rel"), "data", true)
            .unwrap();
        let pool = BufferPool::new(Arc::clone(&disk), PoolConfig::frames(8)).unwrap();
        let wal = Wal::open(config(dir.path(), mode), &disk).unwrap();
        wal.attach(REL, file);
        match (mode, wal.recover(&pool, &registry())) {
            (TornPageMode::FullPageImages, Ok(report)) => {
                assert!(report.images_restored >= 1, "{report:?}");
                let page = pool.read(file, PageId(1)).unwrap();
                assert_eq!(&page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + 6], b"before");
                assert_eq!(&page[PAGE_HEADER_SIZE + 8..PAGE_HEADER_SIZE + 13], b"after");
            }
            (TornPageMode::None, Err(Error::UnrepairablePage { page_id, .. })) => {
                assert_eq!(page_id, PageId(1));
            }
            (mode, other) => panic!("{mode}: unexpected {other:?}"),
        }
    }
}

/// Concurrent committers in group mode all get their commits durable, sharing syncs.
#[test]
fn group_commit_shares_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), TornPageMode::None);
    c.commit_mode = CommitMode::Group;
    let (db, _) = open(dir.path(), c.clone());
    set(&db, 7, 0, b"x");
    let ledger = db.pool.disk().ledger().clone();
    let before = ledger.snapshot();
    let per_thread = 50u64;
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let db = &db;
            s.spawn(move || {
                for i in 0..per_thread {
                    let main = (t * 1000 + i).to_le_bytes();
                    let end = db
                        .wal
                        .append(&RecordBuilder::new(RecordType::NOOP).main(&main))
                        .unwrap();
                    db.wal.commit(end).unwrap();
                    assert!(db.wal.flushed_lsn() >= end);
                }
            });
        }
    });
    let syncs = ledger
        .snapshot()
        .delta(&before)
        .get(db.wal.ledger_id(), IoCause::Wal)
        .sync_count;
    assert!(
        syncs <= 8 * per_thread,
        "{syncs} syncs for {} commits",
        8 * per_thread
    );
    drop(db);
    let (_, report) = open(dir.path(), c);
    assert!(report.record_count >= 8 * per_thread, "{report:?}");
}

/// A log many segments long is read across segment boundaries, and checkpoints recycle the
/// segments recovery no longer needs.
#[test]
fn log_crosses_segments_and_checkpoints_recycle_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), TornPageMode::FullPageImages);
    {
        let (db, _) = open(dir.path(), c.clone());
        for i in 0..400u64 {
            set(&db, i % 6, ((i / 6) * 8) as u16, &i.to_le_bytes());
            if i % 100 == 99 {
                db.wal.checkpoint(&db.pool).unwrap();
            }
        }
        for i in 400..480u64 {
            set(&db, i % 6, ((i / 6) * 8) as u16, &i.to_le_bytes());
        }
    }
    let segments = std::fs::read_dir(dir.path().join("wal"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_str()
                .unwrap()
                .ends_with(".wal")
        })
        .count();
    assert!(segments <= 8, "{segments} segments kept");
    let (db, report) = open(dir.path(), c);
    assert!(report.record_count >= 80, "{report:?}");
    for i in 420..480u64 {
        assert_eq!(get(&db, i % 6, ((i / 6) * 8) as u16, 8), i.to_le_bytes());
    }
}

/// Spare segments an earlier process left behind are adopted for reuse by the next one (up to
/// `recycle_segments_max`) and the rest deleted, so they never pile up across restarts; the
/// log written into adopted spares reads back after another restart.
#[test]
fn spares_left_by_an_earlier_process_are_reused_not_leaked() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), TornPageMode::FullPageImages);
    c.recycle_segments_max = 2;
    let spares = |dir: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(dir.join("wal"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_str().unwrap().to_string())
            .filter(|n| n.starts_with("spare-"))
            .collect();
        names.sort();
        names
    };
    drop(open(dir.path(), c.clone()));
    // Five spares from "earlier processes" (a real spare is a whole old segment; an empty
    // one is zero-filled to size when reused).
    for n in 0..5u64 {
        std::fs::write(dir.path().join("wal").join(format!("spare-{n:016X}")), b"").unwrap();
    }
    let (db, _) = open(dir.path(), c.clone());
    assert_eq!(spares(dir.path()).len(), 2, "extra spares were not deleted");
    // Enough log to need new segments: they come from the adopted spares.
    let mut i = 0u64;
    while !spares(dir.path()).is_empty() {
        assert!(i < 50_000, "the adopted spares were never used");
        set(&db, i % 6, ((i % 3000) / 6 * 8) as u16, &i.to_le_bytes());
        i += 1;
    }
    // A few more records in the reused segment, then read everything back after a restart.
    for _ in 0..60 {
        set(&db, i % 6, ((i % 3000) / 6 * 8) as u16, &i.to_le_bytes());
        i += 1;
    }
    drop(db);
    let (db, _) = open(dir.path(), c);
    for j in i - 60..i {
        let latest = (j..i)
            .rev()
            .find(|k| k % 6 == j % 6 && k % 3000 / 6 == j % 3000 / 6);
        assert_eq!(
            get(&db, j % 6, ((j % 3000) / 6 * 8) as u16, 8),
            latest.unwrap().to_le_bytes()
        );
    }
}

/// With a checkpoint volume set, `checkpoint_if_due` checkpoints once that much log has been
/// written since the last one, and not before.
#[test]
fn checkpoint_if_due_follows_log_volume() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), TornPageMode::FullPageImages);
    c.checkpoint_wal_bytes = 8 * 1024;
    let (db, _) = open(dir.path(), c);
    let first = db.wal.redo_lsn();
    assert!(!db.wal.checkpoint_if_due(&db.pool).unwrap());
    let mut checkpoints = 0;
    for i in 0..200u64 {
        set(&db, i % 4, ((i / 4) * 8) as u16, &i.to_le_bytes());
        if db.wal.checkpoint_if_due(&db.pool).unwrap() {
            checkpoints += 1;
            assert!(
                db.wal.insert_lsn().0 - db.wal.redo_lsn().0 < 1024,
                "redo moved to the end"
            );
        }
    }
    // Each change logs a 4 KiB image after a checkpoint, so the volume is crossed often.
    assert!(checkpoints >= 2, "{checkpoints} checkpoints");
    assert!(db.wal.redo_lsn() > first);
}

/// Sets bytes like `set`, without committing (for changes inside an atomic group).
fn set_uncommitted(db: &Db, page_id: u64, offset: u16, bytes: &[u8]) -> storelab_pager::Lsn {
    let mut page = db.pool.write(db.file, PageId(page_id)).unwrap();
    let at = PAGE_HEADER_SIZE + offset as usize;
    page[at..at + bytes.len()].copy_from_slice(bytes);
    let mut data = offset.to_le_bytes().to_vec();
    data.extend_from_slice(bytes);
    let end = db
        .wal
        .append(&RecordBuilder::new(SET).block(REL, PageId(page_id), &page, &data))
        .unwrap();
    page.set_lsn(end);
    end
}

/// A group whose end marker is in the log is replayed whole; one whose records are durable
/// but whose end marker is not is dropped whole, even though each of its records is valid.
#[test]
fn recovery_replays_whole_groups_and_drops_unfinished_ones() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
        set(&db, 0, 0, b"base");
        set(&db, 1, 0, b"base");
        let group = db.wal.atomic_group().unwrap();
        set_uncommitted(&db, 0, 0, b"done");
        set_uncommitted(&db, 1, 0, b"done");
        let end = group.end().unwrap();
        db.wal.commit(end).unwrap();
        let group = db.wal.atomic_group().unwrap();
        set_uncommitted(&db, 0, 8, b"half");
        let lsn = set_uncommitted(&db, 1, 8, b"half");
        // The group's records are durable, its end is not: a crash now.
        db.wal.flush(lsn).unwrap();
        std::mem::forget(group);
    }
    let (db, report) = open(dir.path(), config(dir.path(), TornPageMode::None));
    assert_eq!(report.records_discarded, 2, "{report:?}");
    assert_eq!(get(&db, 0, 0, 4), b"done");
    assert_eq!(get(&db, 1, 0, 4), b"done");
    assert_eq!(get(&db, 0, 8, 4), [0; 4]);
    assert_eq!(get(&db, 1, 8, 4), [0; 4]);
    // After the dropped group, new groups work and survive the next recovery, which reads
    // past the dropped records again only if the post-recovery checkpoint was lost.
    let group = db.wal.atomic_group().unwrap();
    set_uncommitted(&db, 0, 16, b"next");
    set_uncommitted(&db, 1, 16, b"next");
    let end = group.end().unwrap();
    db.wal.commit(end).unwrap();
    drop(db);
    let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
    assert_eq!(get(&db, 0, 16, 4), b"next");
    assert_eq!(get(&db, 1, 16, 4), b"next");
}

/// While a group is open, no page it changed is written back: a flush leaves it dirty and
/// eviction passes it by; after the group ends the flush writes it.
#[test]
fn open_group_pages_stay_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
    set(&db, 0, 0, b"base");
    set(&db, 11, 0, b"base");
    db.pool.flush_all().unwrap();
    let written = |db: &Db| db.pool.stats().write_back_count;
    let group = db.wal.atomic_group().unwrap();
    set_uncommitted(&db, 0, 0, b"open");
    let before = written(&db);
    db.pool.flush_all().unwrap();
    assert_eq!(written(&db), before, "a page of the open group was written");
    // Read more pages than the 8-frame pool holds: page 0 must not be a victim.
    for p in 1..12 {
        db.pool.read(db.file, PageId(p)).unwrap();
    }
    assert!(db.pool.contains(db.file, PageId(0)));
    // A group that dirties more pages than the pool has frames cannot proceed (no-steal): an
    // error, not a hang.
    let mut exhausted = false;
    for p in 1..12 {
        let mut page = match db.pool.write(db.file, PageId(p)) {
            Ok(page) => page,
            Err(storelab_pager::Error::PoolExhausted { .. }) => {
                exhausted = true;
                break;
            }
            Err(e) => panic!("{e}"),
        };
        page[PAGE_HEADER_SIZE] = 1;
        let lsn = db
            .wal
            .append(&RecordBuilder::new(SET).block(REL, PageId(p), &page, &[0, 0, 1]))
            .unwrap();
        page.set_lsn(lsn);
    }
    assert!(exhausted);
    let end = group.end().unwrap();
    db.wal.commit(end).unwrap();
    db.pool.flush_all().unwrap();
    assert!(written(&db) > before);
    db.pool.check().unwrap();
}

/// A group abandoned after logging poisons the log (its in-memory changes can be neither
/// finished nor undone); one abandoned before logging anything does not.
#[test]
fn abandoned_group_poisons_only_after_logging() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = open(dir.path(), config(dir.path(), TornPageMode::None));
    set(&db, 0, 0, b"base");
    drop(db.wal.atomic_group().unwrap());
    set(&db, 0, 0, b"more");
    let group = db.wal.atomic_group().unwrap();
    set_uncommitted(&db, 0, 0, b"half");
    drop(group);
    assert!(matches!(db.wal.atomic_group(), Err(Error::Poisoned(_))));
    assert!(db.wal.checkpoint(&db.pool).is_err());
}

/// A checkpoint asked for inside a group is refused (its redo pointer would split the group);
/// `checkpoint_if_due` just does not run.
#[test]
fn checkpoint_inside_a_group_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path(), TornPageMode::None);
    c.checkpoint_wal_bytes = 1;
    let (db, _) = open(dir.path(), c);
    set(&db, 0, 0, b"base");
    let group = db.wal.atomic_group().unwrap();
    set_uncommitted(&db, 0, 0, b"open");
    assert!(matches!(
        db.wal.checkpoint(&db.pool),
        Err(Error::InvalidState(_))
    ));
    assert!(!db.wal.checkpoint_if_due(&db.pool).unwrap());
    let end = group.end().unwrap();
    db.wal.commit(end).unwrap();
    assert!(db.wal.checkpoint_if_due(&db.pool).unwrap());
}

/// Segment numbers present in the log directory.
fn segment_numbers(dir: &Path) -> Vec<u64> {
    let mut numbers: Vec<u64> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_str().unwrap().to_string();
            let stem = name.strip_suffix(".wal")?;
            u64::from_str_radix(stem, 16).ok()
        })
        .collect();
    numbers.sort_unstable();
    numbers
}

/// A retention hook keeps the segments from its LSN through checkpoints that would recycle
/// them, the records there stay readable, and once the hook lets go (or is removed) the next
/// checkpoint recycles them.
#[test]
fn retention_hook_keeps_segments_a_checkpoint_would_recycle() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), TornPageMode::None);
    let (db, _) = open(dir.path(), c);
    let first = set(&db, 0, 0, b"first");
    let needed = Arc::new(AtomicU64::new(first.0));
    let hook_needed = Arc::clone(&needed);
    let id = db.wal.add_retention(Arc::new(move || {
        Some(storelab_pager::Lsn(hook_needed.load(Ordering::Acquire)))
    }));
    assert_eq!(db.wal.retention_count(), 1);
    for i in 0..600u64 {
        set(&db, i % 4, ((i / 4) % 6 * 512) as u16, &[i as u8; 512]);
    }
    db.wal.checkpoint(&db.pool).unwrap();
    let geometry = db.wal.geometry();
    let held = geometry.segment_of(first);
    let redo_segment = geometry.segment_of(db.wal.redo_lsn());
    assert!(redo_segment > held + 2, "the log spans several segments");
    assert_eq!(db.wal.keep_from_lsn(), first);
    let kept = segment_numbers(dir.path());
    assert_eq!(kept.first(), Some(&held), "segments kept: {kept:?}");
    // Every record from the retained LSN is still readable, across the redo point.
    let mut reader = storelab_wal::WalReader::new(
        Arc::clone(db.wal.backend()),
        db.wal.dir(),
        geometry,
        db.wal.page_size(),
        first,
    );
    let mut count = 0;
    while reader.next_record().unwrap().is_some() {
        count += 1;
    }
    assert!(count >= 600, "{count} records read from the retained LSN");
    assert_eq!(reader.end().unwrap().lsn, db.wal.insert_lsn());

    // The component releases part of the log: segments before its new answer go.
    let middle = geometry.segment_start(held + 2);
    needed.store(middle.0, Ordering::Release);
    set(&db, 0, 0, b"again");
    db.wal.checkpoint(&db.pool).unwrap();
    assert_eq!(segment_numbers(dir.path()).first(), Some(&(held + 2)));

    // Removed, the hook holds nothing back.
    assert!(db.wal.remove_retention(id));
    assert!(!db.wal.remove_retention(id));
    set(&db, 0, 0, b"last");
    db.wal.checkpoint(&db.pool).unwrap();
    assert_eq!(db.wal.keep_from_lsn(), db.wal.redo_lsn());
    let after = segment_numbers(dir.path());
    assert_eq!(
        after.first(),
        Some(&geometry.segment_of(db.wal.redo_lsn())),
        "{after:?}"
    );
}
