//! Autovacuum: inline after the write that crosses the trigger, or from a background thread.

use std::time::{Duration, Instant};

use storelab_heap::{HeapEngine, HeapOptions, StorageConfig};
use storelab_pager::PageSize;
use storelab_table::{ColumnType, Engine, Schema, Value};
use storelab_wal::CommitMode;

fn run(background: bool) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let config = StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 2 << 20,
        commit_mode: CommitMode::Off,
        ..StorageConfig::default()
    };
    let options = HeapOptions {
        autovacuum_background: background,
        autovacuum_naptime_ms: 10,
        autovacuum_threshold: 50,
        autovacuum_scale_factor: 0.2,
        ..HeapOptions::default()
    };
    let e = HeapEngine::open(dir.path(), &config, options).unwrap();
    let schema = Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("v", ColumnType::Int64)
        .primary_key(&["id"])
        .index("by_v", &["v"], false)
        .build()
        .unwrap();
    let t = e.create_table(schema).unwrap();
    t.load(&mut (0..1000).map(|i| vec![Value::Int(i), Value::Int(i)]))
        .unwrap();
    // 251 dead tuples > 50 + 0.2 * 1000 live rows (the trigger counts rows at the time).
    for i in 0..300 {
        t.update(&[Value::Int(i)], &[(1, Value::Int(-i))]).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let runs = loop {
        let runs = t.stats().unwrap().counters["autovacuum_runs"];
        if runs > 0 || Instant::now() > deadline {
            break runs;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    e.check().unwrap();
    runs
}

/// Past `threshold + scale_factor * rows` dead tuples, VACUUM runs inline.
#[test]
fn inline_autovacuum_runs_past_the_trigger() {
    assert!(run(false) >= 1);
}

/// The background thread finds the table past its trigger and vacuums it.
#[test]
fn background_autovacuum_runs_past_the_trigger() {
    assert!(run(true) >= 1);
}
