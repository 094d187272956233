//! The heap engine's headline figures (issue 5), measured through the `Table` API:
//!
//! - `hot`: with 3 secondary indexes and fillfactor 90, how many updates of a non-indexed
//!   column of random rows are HOT, and how many index entries updates insert;
//! - `bloat`: heap size during 1,000,000 random updates of a 100,000-row table, with
//!   autovacuum on and off;
//! - `scan`: a cold, uncorrelated secondary-index range scan of 10,000 rows with direct I/O,
//!   plain index scan versus bitmap-style scan with prefetch depth 32.
//!
//! Run: `cargo run --release -p storelab-heap --example heap_figures -- hot|bloat|scan [DIR]`.
//! Counters are exact; times depend on the machine (repeat and take medians).

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_heap::{HeapEngine, HeapOptions, StorageConfig};
use storelab_pager::PageSize;
use storelab_table::{
    ColumnType, Engine, IndexScanMethod, Row, ScanSpec, Schema, Table, TableStats, Value,
};
use storelab_wal::CommitMode;

const SEED: u64 = 42;

fn schema() -> Schema {
    Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("a", ColumnType::Int64)
        .column("b", ColumnType::Int64)
        .column("c", ColumnType::Int64)
        .column("v", ColumnType::Int64)
        .column("pad", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_a", &["a"], false)
        .index("by_b", &["b"], false)
        .index("by_c", &["c"], false)
        .build()
        .expect("schema")
}

/// An uncorrelated column: `id * 7919 mod rows`, a permutation of `0..rows` (7919 is a prime
/// not dividing `rows`) that sends neighbouring ids far apart.
fn scatter(id: i64, rows: i64) -> i64 {
    assert_ne!(rows % 7919, 0, "7919 must not divide rows");
    (id * 7919) % rows
}

fn row(id: i64, rows: i64) -> Row {
    vec![
        Value::Int(id),
        Value::Int(id),
        Value::Int(scatter(id, rows)),
        Value::Int(id % 100),
        Value::Int(0),
        Value::Text("x".repeat(80)),
    ]
}

fn open(dir: &Path, config: &StorageConfig, options: HeapOptions) -> HeapEngine {
    HeapEngine::open(dir, config, options).expect("open")
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let d = dir.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn counter(s: &TableStats, name: &str) -> u64 {
    s.counters[name]
}

fn hot(dir: &Path) {
    let rows = 100_000;
    let config = StorageConfig {
        commit_mode: CommitMode::Off,
        pool_bytes: 256 << 20,
        ..StorageConfig::default()
    };
    let options = HeapOptions {
        fillfactor_pct: 90,
        ..HeapOptions::default()
    };
    let e = open(&fresh(dir, "hot"), &config, options);
    let t = e.create_table(schema()).expect("create");
    t.load(&mut (0..rows).map(|i| row(i, rows))).expect("load");
    let mut rng = StdRng::seed_from_u64(SEED);
    let before = t.stats().expect("stats");
    let updates = 100_000;
    for n in 0..updates {
        let id = rng.random_range(0..rows);
        t.update(&[Value::Int(id)], &[(4, Value::Int(n))])
            .expect("update");
    }
    let after = t.stats().expect("stats");
    let d = |name| counter(&after, name) - counter(&before, name);
    let (h, nh, entries) = (
        d("hot_updates"),
        d("non_hot_updates"),
        d("index_entries_inserted"),
    );
    let indexes = 4; // primary + 3 secondaries
    println!("non-indexed column, {updates} random updates of {rows} rows, fillfactor 90:");
    println!(
        "  HOT {h} ({:.2}%), non-HOT {nh}, pages pruned {}, index entries inserted {entries}",
        100.0 * h as f64 / updates as f64,
        d("pages_pruned")
    );
    println!(
        "  index entries per HOT update: {:.3} (entries beyond {indexes} per non-HOT update, \
         over HOT updates)",
        (entries as f64 - (indexes * nh) as f64) / h.max(1) as f64
    );
    let before = t.stats().expect("stats");
    let updates = 10_000;
    for _ in 0..updates {
        let id = rng.random_range(0..rows);
        let b = rng.random_range(0..rows);
        t.update(&[Value::Int(id)], &[(2, Value::Int(b))])
            .expect("update");
    }
    let after = t.stats().expect("stats");
    let d = |name| counter(&after, name) - counter(&before, name);
    println!("indexed column (b), {updates} random updates:");
    println!(
        "  HOT {}, non-HOT {}, index entries inserted {} = {:.2} per update ({indexes} indexes)",
        d("hot_updates"),
        d("non_hot_updates"),
        d("index_entries_inserted"),
        d("index_entries_inserted") as f64 / updates as f64
    );
    e.check().expect("check");
}

fn bloat(dir: &Path) {
    let rows = 100_000;
    let updates = 1_000_000;
    let sample = 100_000;
    let config = StorageConfig {
        commit_mode: CommitMode::Off,
        pool_bytes: 256 << 20,
        ..StorageConfig::default()
    };
    for column in [
        (1usize, "a (indexed: non-HOT)"),
        (4, "v (not indexed: HOT)"),
    ] {
        for autovacuum in [true, false] {
            let options = HeapOptions {
                autovacuum,
                ..HeapOptions::default()
            };
            let e = open(&fresh(dir, "bloat"), &config, options);
            let t = e.create_table(schema()).expect("create");
            t.load(&mut (0..rows).map(|i| row(i, rows))).expect("load");
            let size = |t: &std::sync::Arc<dyn Table>| {
                let s = t.stats().expect("stats");
                (s.file_bytes["heap"], s.size_bytes())
            };
            let (heap0, total0) = size(&t);
            println!(
                "update column {}, autovacuum {}: after load heap {:.1} MiB, all files {:.1} MiB",
                column.1,
                if autovacuum { "on" } else { "off" },
                heap0 as f64 / 1048576.0,
                total0 as f64 / 1048576.0
            );
            let mut rng = StdRng::seed_from_u64(SEED);
            let start = Instant::now();
            for n in 1..=updates {
                let id = rng.random_range(0..rows);
                let value = if column.0 == 1 { rows + n } else { n };
                t.update(&[Value::Int(id)], &[(column.0, Value::Int(value))])
                    .expect("update");
                if n % sample == 0 {
                    let (heap, total) = size(&t);
                    let s = t.stats().expect("stats");
                    println!(
                        "  {n:>8} updates  heap {:>6.1} MiB ({:.2}x)  all files {:>6.1} MiB  \
                         vacuums {:>3}  {:.0} s",
                        heap as f64 / 1048576.0,
                        heap as f64 / heap0 as f64,
                        total as f64 / 1048576.0,
                        counter(&s, "vacuum_runs"),
                        start.elapsed().as_secs_f64()
                    );
                }
            }
            e.check().expect("check");
        }
    }
}

fn scan(dir: &Path) {
    let rows = 200_000i64;
    let config = StorageConfig {
        direct: true,
        commit_mode: CommitMode::Off,
        page_size: PageSize::K8,
        pool_bytes: 128 << 20,
        ..StorageConfig::default()
    };
    let e = open(&fresh(dir, "scan"), &config, HeapOptions::default());
    let t = e.create_table(schema()).expect("create");
    t.load(&mut (0..rows).map(|i| row(i, rows))).expect("load");
    let heap = e.heap_table("t").expect("table");
    let lo = 50_000i64;
    let spec = |method, depth| ScanSpec {
        index: Some("by_b".into()),
        lower: Bound::Included(vec![Value::Int(lo)]),
        upper: Bound::Excluded(vec![Value::Int(lo + 10_000)]),
        method,
        prefetch_depth: Some(depth),
        ..ScanSpec::default()
    };
    // bitmap-1 (no prefetch) separates the two effects: visiting each page once, and
    // keeping 32 reads in flight.
    let mut times: Vec<(&str, Vec<f64>)> = vec![
        ("plain", vec![]),
        ("bitmap-32", vec![]),
        ("bitmap-1", vec![]),
    ];
    for _round in 0..5 {
        for (name, list) in times.iter_mut() {
            e.checkpoint().expect("checkpoint");
            for f in heap.file_ids() {
                e.storage().pool.evict_file(f).expect("evict");
            }
            let s = match *name {
                "plain" => spec(IndexScanMethod::Plain, 1),
                "bitmap-32" => spec(IndexScanMethod::Bitmap, 32),
                _ => spec(IndexScanMethod::Bitmap, 1),
            };
            let before = t.stats().expect("stats");
            let start = Instant::now();
            let n = t.scan(&s, None, &mut |_| true).expect("scan");
            let secs = start.elapsed().as_secs_f64();
            let after = t.stats().expect("stats");
            assert_eq!(n, 10_000);
            list.push(secs);
            println!(
                "  {name:>9}: {n} rows in {:.1} ms, heap pages fetched {}",
                secs * 1e3,
                counter(&after, "heap_pages_fetched") - counter(&before, "heap_pages_fetched")
            );
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let plain = median(&mut times[0].1);
    let bitmap = median(&mut times[1].1);
    let bitmap_1 = median(&mut times[2].1);
    println!(
        "cold uncorrelated range scan of 10,000 of {rows} rows, direct I/O, backend {:?}, \
         medians of 5: plain {:.1} ms, bitmap depth 32 {:.1} ms ({:.1}x faster), bitmap depth 1 \
         {:.1} ms ({:.1}x)",
        e.storage().disk.backend().name(),
        plain * 1e3,
        bitmap * 1e3,
        plain / bitmap,
        bitmap_1 * 1e3,
        plain / bitmap_1
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_default();
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/heap-figures".into()));
    std::fs::create_dir_all(&dir).expect("create dir");
    match what.as_str() {
        "hot" => hot(&dir),
        "bloat" => bloat(&dir),
        "scan" => scan(&dir),
        _ => eprintln!("usage: heap_figures hot|bloat|scan [DIR]"),
    }
}
