//! Crash tests: a workload that flushes and compacts loses power at every sync point (and,
//! with torn and partly kept writes, at seeded points), through the pager's `FaultDevice`.
//! After each crash the tree must reopen, pass `check()`, and hold exactly the state after
//! some prefix of the writes that contains every acknowledged one; then it must keep working.
//!
//! `STORELAB_LONG=1` runs a longer workload and more seeds.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use storelab_lsm::{CompactionStyle, LsmConfig};
use storelab_pager::device::{CrashOptions, FaultDevice};
use storelab_pager::io::{IoBackend, SyncBackend};

fn long() -> bool {
    std::env::var("STORELAB_LONG").is_ok()
}

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
}

/// A deterministic workload: puts over a small key space, some deletes and batches.
fn workload(n: usize) -> Vec<Op> {
    let key = |i: usize| format!("key{:03}", (i * 37) % 90).into_bytes();
    (0..n)
        .map(|i| match i % 10 {
            3 => Op::Delete(key(i + 5)),
            7 => Op::Batch(vec![
                (key(i), Some(format!("batch{i}a").into_bytes())),
                (key(i + 1), None),
                (key(i + 2), Some(vec![b'b'; 40])),
            ]),
            _ => Op::Put(
                key(i),
                format!("value{i}-{}", "x".repeat(i % 50)).into_bytes(),
            ),
        })
        .collect()
}

fn apply_model(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
        Op::Batch(items) => {
            for (k, v) in items {
                match v {
                    Some(v) => model.insert(k.clone(), v.clone()),
                    None => model.remove(k),
                };
            }
        }
    }
}

fn apply(db: &common::Db, op: &Op) -> anyhow::Result<()> {
    match op {
        Op::Put(k, v) => db.lsm.put(k, v)?,
        Op::Delete(k) => db.lsm.delete(k)?,
        Op::Batch(items) => {
            let ops: Vec<(&[u8], Option<&[u8]>)> = items
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_deref()))
                .collect();
            db.lsm.write_batch(&ops)?;
        }
    }
    Ok(())
}

fn config(style: CompactionStyle) -> LsmConfig {
    LsmConfig {
        compaction: style,
        memtable_bytes_max: 1024,
        table_bytes_target: 1024,
        level1_bytes_target: 2048,
        ..LsmConfig::tiny()
    }
}

fn scan(db: &common::Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.lsm
        .range(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Runs the workload until it fails; returns how many ops were acknowledged.
fn run_until_failure(
    dir: &Path,
    device: &Arc<FaultDevice>,
    ops: &[Op],
    style: CompactionStyle,
) -> usize {
    let Ok(db) = common::open(
        dir,
        &config(style),
        Arc::clone(device) as Arc<dyn IoBackend>,
    ) else {
        return 0;
    };
    let mut acked = 0;
    for op in ops {
        if apply(&db, op).is_err() {
            break;
        }
        acked += 1;
    }
    if acked == ops.len() {
        // The reference run: the workload must exercise what the test is about.
        let stats = db.lsm.stats();
        assert!(stats.flush_count >= 5, "{stats}");
        assert!(stats.compaction_count >= 2, "{stats}");
    }
    acked
}

/// Reopens after a crash and checks the recovered state and that the tree keeps working.
fn verify(
    dir: &Path,
    device: &Arc<FaultDevice>,
    ops: &[Op],
    acked: usize,
    style: CompactionStyle,
    what: &str,
) {
    let db = common::open(
        dir,
        &config(style),
        Arc::clone(device) as Arc<dyn IoBackend>,
    )
    .unwrap_or_else(|e| panic!("{what}: reopen failed: {e:#}"));
    db.lsm
        .check()
        .unwrap_or_else(|e| panic!("{what}: check failed: {e}"));
    let got = scan(&db);
    let mut model = BTreeMap::new();
    for op in &ops[..acked] {
        apply_model(&mut model, op);
    }
    let at_acked: Vec<_> = model.clone().into_iter().collect();
    let mut matched = got == at_acked;
    if !matched && acked < ops.len() {
        apply_model(&mut model, &ops[acked]);
        matched = got == model.clone().into_iter().collect::<Vec<_>>();
        if matched {
            // The op in flight was durable; the continuation below must include it.
        } else {
            model = BTreeMap::new();
            for op in &ops[..acked] {
                apply_model(&mut model, op);
            }
        }
    }
    assert!(
        matched,
        "{what}: recovered state is not the state after {acked} (or {}) ops",
        acked + 1
    );
    // The tree keeps working after recovery: more writes, a clean reopen, same contents.
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = got.into_iter().collect();
    for (i, op) in workload(60).iter().enumerate() {
        let op = match op {
            Op::Put(k, v) => Op::Put(
                k.clone(),
                [v.as_slice(), format!("+{i}").as_bytes()].concat(),
            ),
            other => other.clone(),
        };
        apply(&db, &op).unwrap_or_else(|e| panic!("{what}: write after recovery: {e:#}"));
        apply_model(&mut model, &op);
    }
    db.lsm.check().unwrap();
    drop(db);
    let db = common::open(
        dir,
        &config(style),
        Arc::clone(device) as Arc<dyn IoBackend>,
    )
    .unwrap();
    db.lsm.check().unwrap();
    assert_eq!(
        scan(&db),
        model.into_iter().collect::<Vec<_>>(),
        "{what}: after more writes"
    );
}

fn every_sync_point(style: CompactionStyle) {
    let ops = workload(if long() { 400 } else { 120 });
    // A reference run counts the sync points.
    let dir = tempfile::tempdir().unwrap();
    let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), 0));
    assert_eq!(
        run_until_failure(dir.path(), &device, &ops, style),
        ops.len()
    );
    let syncs = device.sync_count();
    eprintln!("{style:?}: {syncs} sync points");
    let step = if long() { 1 } else { (syncs / 150).max(1) };
    let mut k = 1;
    while k <= syncs {
        let dir = tempfile::tempdir().unwrap();
        let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), k));
        device.power_off_after_sync(k);
        let acked = run_until_failure(dir.path(), &device, &ops, style);
        device.crash(&CrashOptions::default()).unwrap();
        verify(
            dir.path(),
            &device,
            &ops,
            acked,
            style,
            &format!("{style:?} crash after sync {k} of {syncs}"),
        );
        k += step;
    }
}

fn random_torn_crashes(style: CompactionStyle) {
    let ops = workload(120);
    let seeds = if long() { 200 } else { 25 };
    for seed in 0..seeds {
        let dir = tempfile::tempdir().unwrap();
        let device = Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed));
        device.power_off_after_sync(1 + (seed * 7919) % 150);
        let acked = run_until_failure(dir.path(), &device, &ops, style);
        device
            .crash(&CrashOptions {
                keep_probability: 0.5,
                torn: true,
            })
            .unwrap();
        verify(
            dir.path(),
            &device,
            &ops,
            acked,
            style,
            &format!("{style:?} torn crash, seed {seed}"),
        );
    }
}

/// Power loss at every sync point of a leveled workload (flushes, compactions, manifest).
#[test]
fn leveled_survives_a_crash_at_every_sync_point() {
    every_sync_point(CompactionStyle::Leveled);
}

/// Power loss at every sync point of a size-tiered workload.
#[test]
fn tiered_survives_a_crash_at_every_sync_point() {
    every_sync_point(CompactionStyle::Tiered);
}

/// Power loss keeping a seeded half of the unsynced writes, some torn at a sector boundary.
#[test]
fn leveled_survives_torn_and_partial_writes() {
    random_torn_crashes(CompactionStyle::Leveled);
}
