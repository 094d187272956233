//! End-to-end behaviour of one tree: writes through flushes and compactions, reopen.

mod common;

use std::ops::Bound;

use storelab_lsm::{CompactionStyle, LsmConfig};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// Writes survive flushes, compactions and a reopen; deletes hide older values; scans agree.
#[test]
fn writes_survive_flush_compaction_and_reopen() {
    for style in [CompactionStyle::Leveled, CompactionStyle::Tiered] {
        let dir = tempfile::tempdir().unwrap();
        let config = LsmConfig {
            compaction: style,
            ..LsmConfig::tiny()
        };
        let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
        for i in 0..600u32 {
            db.lsm
                .put(&key(i % 200), format!("v{i}").as_bytes())
                .unwrap();
            if i % 7 == 0 {
                db.lsm.delete(&key((i * 3) % 200)).unwrap();
            }
        }
        db.lsm.check().unwrap();
        let expect: Vec<(Vec<u8>, Vec<u8>)> = db
            .lsm
            .range(Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let stats = db.lsm.stats();
        assert!(stats.flush_count > 3, "{stats}");
        assert!(stats.compaction_count > 0, "{stats}");
        drop(db);
        let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
        db.lsm.check().unwrap();
        let got: Vec<(Vec<u8>, Vec<u8>)> = db
            .lsm
            .range(Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, expect);
        for (k, v) in &expect {
            assert_eq!(db.lsm.get(k).unwrap().as_ref(), Some(v));
        }
        let mut rev: Vec<_> = db
            .lsm
            .range_rev(Bound::Unbounded, Bound::Unbounded)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        rev.reverse();
        assert_eq!(rev, expect);
    }
}

/// With the background thread, concurrent writers and readers see consistent values while
/// flushes and compactions run, and the final state is every writer's last value.
#[test]
fn background_flush_and_compaction_with_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        background: true,
        memtable_bytes_max: 4096,
        l0_slowdown_trigger: 3,
        l0_stop_trigger: 4,
        ..LsmConfig::tiny()
    };
    let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
    std::thread::scope(|s| {
        for t in 0..3u32 {
            let lsm = &db.lsm;
            s.spawn(move || {
                for i in 0..400u32 {
                    lsm.put(&key(t * 1000 + i % 150), format!("{t}-{i}").as_bytes())
                        .unwrap();
                }
            });
        }
        let lsm = &db.lsm;
        s.spawn(move || {
            for i in 0..300u32 {
                if let Some(v) = lsm.get(&key(i % 150)).unwrap() {
                    assert!(v.starts_with(b"0-"), "{v:?}");
                }
                let n = lsm
                    .range(Bound::Included(&key(1000)), Bound::Excluded(&key(1150)))
                    .unwrap()
                    .count();
                assert!(n <= 150);
            }
        });
    });
    db.lsm.compact().unwrap();
    db.lsm.check().unwrap();
    for t in 0..3u32 {
        for k in 0..150u32 {
            let last = (0..400u32).filter(|i| i % 150 == k).max().unwrap();
            assert_eq!(
                db.lsm.get(&key(t * 1000 + k)).unwrap(),
                Some(format!("{t}-{last}").into_bytes())
            );
        }
    }
    let stats = db.lsm.stats();
    assert!(
        stats.flush_count > 0 && stats.compaction_count > 0,
        "{stats}"
    );
}

/// Writes made inside an atomic group that never ended are not replayed, and no memtable
/// holding them reaches a table while the group is open.
#[test]
fn unfinished_atomic_group_leaves_no_trace() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig::tiny();
    {
        let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
        db.lsm.put(b"before", b"1").unwrap();
        db.lsm.flush().unwrap();
        let flushes = db.lsm.stats().flush_count;
        let group = db.wal.atomic_group().unwrap();
        for i in 0..200u32 {
            db.lsm
                .write_batch_uncommitted(&[(&key(i), Some(b"in group".as_slice()))])
                .unwrap();
        }
        assert_eq!(
            db.lsm.stats().flush_count,
            flushes,
            "flush held back by the group"
        );
        db.wal.flush(db.wal.insert_lsn()).unwrap();
        drop(group); // abandoned: the log is poisoned, as after a failure mid-operation
    }
    let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
    db.lsm.check().unwrap();
    assert_eq!(db.lsm.get(b"before").unwrap(), Some(b"1".to_vec()));
    for i in 0..200u32 {
        assert_eq!(db.lsm.get(&key(i)).unwrap(), None);
    }
}

/// A checkpoint through the tree keeps every write across a reopen, even when the log's
/// old segments are recycled.
#[test]
fn checkpoint_through_the_tree_keeps_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        memtable_bytes_max: 1 << 20,
        ..LsmConfig::tiny()
    };
    {
        let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
        for round in 0..3u32 {
            for i in 0..400u32 {
                db.lsm
                    .put(&key(i), format!("{round}-{}", "x".repeat(300)).as_bytes())
                    .unwrap();
            }
            db.lsm.checkpoint(&db.pool).unwrap();
        }
        for i in 0..50u32 {
            db.lsm.put(&key(i), b"after").unwrap();
        }
    }
    let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
    db.lsm.check().unwrap();
    for i in 0..400u32 {
        let want = if i < 50 {
            b"after".to_vec()
        } else {
            format!("2-{}", "x".repeat(300)).into_bytes()
        };
        assert_eq!(db.lsm.get(&key(i)).unwrap(), Some(want));
    }
}

/// A plain log checkpoint (not through the tree) while unflushed memtables hold several
/// segments' worth of writes keeps them: the tree's retention hook holds the log back, and
/// after a flush and `release_log` lets it go.
#[test]
fn plain_log_checkpoint_keeps_memtable_records() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        memtable_bytes_max: 4 << 20,
        ..LsmConfig::tiny()
    };
    {
        let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
        for round in 0..3u32 {
            for i in 0..400u32 {
                db.lsm
                    .put(&key(i), format!("{round}-{}", "x".repeat(300)).as_bytes())
                    .unwrap();
            }
            db.wal.checkpoint(&db.pool).unwrap();
            assert_eq!(db.lsm.stats().flush_count, 0, "nothing flushed");
            assert!(db.wal.keep_from_lsn() < db.wal.redo_lsn());
        }
        let geometry = db.wal.geometry();
        assert!(
            geometry.segment_of(db.wal.redo_lsn()) > geometry.segment_of(db.wal.keep_from_lsn()),
            "the checkpoint would have recycled segments the memtable needs"
        );
    }
    let db = common::open(dir.path(), &config, common::sync_backend()).unwrap();
    db.lsm.check().unwrap();
    for i in 0..400u32 {
        let want = format!("2-{}", "x".repeat(300)).into_bytes();
        assert_eq!(db.lsm.get(&key(i)).unwrap(), Some(want));
    }
    // Reopening flushed the replayed memtable: nothing holds the log back any more.
    db.lsm.release_log().unwrap();
    db.wal.checkpoint(&db.pool).unwrap();
    assert_eq!(db.wal.keep_from_lsn(), db.wal.redo_lsn());
}

/// Checkpoints racing a writer that holds atomic groups and writes to the tree inside them
/// finish: a checkpoint no longer waits for a flush while holding the tree's write lock (the
/// flush would wait for the group, and the group's owner for that lock).
#[test]
fn checkpoints_racing_atomic_groups_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        background: true,
        ..LsmConfig::tiny()
    };
    let db =
        std::sync::Arc::new(common::open(dir.path(), &config, common::sync_backend()).unwrap());
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let writer = {
        let db = std::sync::Arc::clone(&db);
        std::thread::spawn(move || {
            for round in 0..60u32 {
                let group = db.wal.atomic_group().unwrap();
                for i in 0..20u32 {
                    let value = format!("{round}-{}", "v".repeat(100));
                    db.lsm
                        .write_batch_uncommitted(&[(&key(i), Some(value.as_bytes()))])
                        .unwrap();
                }
                let end = group.end().unwrap();
                db.wal.commit(end).unwrap();
            }
        })
    };
    let checkpointer = {
        let db = std::sync::Arc::clone(&db);
        std::thread::spawn(move || {
            for _ in 0..30 {
                db.lsm.checkpoint(&db.pool).unwrap();
                db.wal.checkpoint(&db.pool).unwrap();
            }
            done_tx.send(()).unwrap();
        })
    };
    done_rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("the checkpoints finished (no deadlock)");
    writer.join().unwrap();
    checkpointer.join().unwrap();
    db.lsm.flush().unwrap();
    db.lsm.check().unwrap();
    for i in 0..20u32 {
        let want = format!("59-{}", "v".repeat(100)).into_bytes();
        assert_eq!(db.lsm.get(&key(i)).unwrap(), Some(want));
    }
}
