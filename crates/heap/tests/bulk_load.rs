//! Bulk load: an empty table is filled page by page and its indexes built bottom-up; bad input
//! changes nothing; a load cut short by a crash is undone at the next open.

use std::path::Path;

use storelab_heap::{HeapEngine, HeapOptions, StorageConfig};
use storelab_pager::PageSize;
use storelab_table::{Catalog, ColumnType, Engine, Error, Row, Schema, Value};
use storelab_wal::CommitMode;

fn open(dir: &Path, fillfactor_pct: u8) -> HeapEngine {
    let config = StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 2 << 20,
        commit_mode: CommitMode::Sync,
        ..StorageConfig::default()
    };
    let options = HeapOptions {
        fillfactor_pct,
        ..HeapOptions::default()
    };
    HeapEngine::open(dir, &config, options).expect("open")
}

fn schema() -> Schema {
    Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("a", ColumnType::Int64)
        .column("b", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_a", &["a"], false)
        .index("by_b", &["b"], true)
        .build()
        .expect("schema")
}

fn row(id: i64) -> Row {
    vec![
        Value::Int(id),
        Value::Int(id % 17),
        Value::Text(format!("{id:08}-{}", "p".repeat(60))),
    ]
}

/// A bulk load into an empty table: all rows readable by every index, `check()` passes,
/// pages filled to the fillfactor, and it survives a reopen.
#[test]
fn bulk_load_fills_pages_and_builds_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let pages_at = |ff| {
        let dir = tempfile::tempdir().unwrap();
        let e = open(dir.path(), ff);
        let t = e.create_table(schema()).unwrap();
        let n = t.load(&mut (0..5000).map(row)).unwrap();
        assert_eq!(n, 5000);
        e.check().unwrap();
        t.stats().unwrap().counters["heap_pages"]
    };
    let (full, ninety) = (pages_at(100), pages_at(70));
    assert!(
        ninety > full,
        "fillfactor 70 used {ninety} pages, 100 used {full}"
    );
    {
        let e = open(dir.path(), 100);
        let t = e.create_table(schema()).unwrap();
        // Shuffled input: the heap keeps input order, the indexes are sorted.
        let mut ids: Vec<i64> = (0..3000).collect();
        ids.reverse();
        t.load(&mut ids.into_iter().map(row)).unwrap();
        assert_eq!(t.stats().unwrap().counters["rows_bulk_loaded"], 3000);
        e.check().unwrap();
    }
    let e = open(dir.path(), 100);
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.get(&[Value::Int(1234)]).unwrap(), Some(row(1234)));
    assert_eq!(t.lookup("by_a", &[Value::Int(3)]).unwrap().len(), 177);
    // A second load goes through ordinary inserts.
    t.load(&mut (3000..3100).map(row)).unwrap();
    assert_eq!(t.stats().unwrap().row_count, 3100);
    e.check().unwrap();
}

/// A duplicate key anywhere in the input fails the load before anything is written.
#[test]
fn bulk_load_with_a_duplicate_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), 100);
    let t = e.create_table(schema()).unwrap();
    let mut rows: Vec<Row> = (0..1000).map(row).collect();
    rows.push(row(500));
    assert!(matches!(
        t.load(&mut rows.into_iter()),
        Err(Error::DuplicateKey { .. })
    ));
    assert_eq!(t.stats().unwrap().counters["heap_pages"], 0);
    assert_eq!(t.get(&[Value::Int(1)]).unwrap(), None);
    e.check().unwrap();
}

/// A table still marked `loading` at open (a crash in the middle of a load) is emptied.
#[test]
fn interrupted_bulk_load_is_undone_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), 100);
        let t = e.create_table(schema()).unwrap();
        t.load(&mut (0..2000).map(row)).unwrap();
    }
    {
        // What the catalog says while a load is writing pages.
        let mut catalog = Catalog::open_or_create(dir.path(), "heap").unwrap();
        catalog
            .set_engine_data("t", serde_json::json!({ "loading": true }))
            .unwrap();
    }
    let e = open(dir.path(), 100);
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.get(&[Value::Int(5)]).unwrap(), None);
    assert_eq!(t.stats().unwrap().row_count, 0);
    t.load(&mut (0..10).map(row)).unwrap();
    e.check().unwrap();
    drop(t);
    drop(e);
    let e = open(dir.path(), 100);
    e.check().unwrap();
    assert_eq!(e.open_table("t").unwrap().stats().unwrap().row_count, 10);
}
