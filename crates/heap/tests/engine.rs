//! The heap engine through the `Engine`/`Table` API: every operation, HOT versus non-HOT
//! updates and their index work, VACUUM, reopen. The model test against the reference engine
//! is the shared one of the test kit, in model.rs.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use storelab_heap::{HeapEngine, HeapOptions, StorageConfig};
use storelab_pager::PageSize;
use storelab_table::{
    ColumnType, Engine, Error, IndexScanMethod, Op, Row, ScanSpec, Schema, Table, Value,
};
use storelab_wal::CommitMode;

fn config() -> StorageConfig {
    StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 4 << 20,
        commit_mode: CommitMode::Off,
        checkpoint_wal_bytes: 0,
        ..StorageConfig::default()
    }
}

fn open(dir: &Path, options: HeapOptions) -> HeapEngine {
    HeapEngine::open(dir, &config(), options).expect("open")
}

/// id (pk), a (indexed), b (unique index), c (not indexed), pad (text).
fn schema() -> Schema {
    Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("a", ColumnType::Int64)
        .column("b", ColumnType::Text)
        .column("c", ColumnType::Int64)
        .column("pad", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_a", &["a"], false)
        .index("by_b", &["b"], true)
        .build()
        .expect("schema")
}

fn row(id: i64, a: i64, c: i64, pad: usize) -> Row {
    vec![
        Value::Int(id),
        Value::Int(a),
        Value::Text(format!("b{id}")),
        Value::Int(c),
        Value::Text("x".repeat(pad)),
    ]
}

fn counter(t: &Arc<dyn Table>, name: &str) -> u64 {
    t.stats().expect("stats").counters[name]
}

fn all(t: &Arc<dyn Table>, spec: &ScanSpec) -> Vec<Row> {
    let mut rows = Vec::new();
    t.scan(spec, None, &mut |r| {
        rows.push(r);
        true
    })
    .expect("scan");
    rows
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| Value::tuple_cmp(a, b));
    rows
}

/// Inserts, point reads, both kinds of update, deletes, index lookups and scans agree with
/// what was written, and survive a reopen.
#[test]
fn operations_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), HeapOptions::default());
        let t = e.create_table(schema()).unwrap();
        for id in 0..200 {
            t.insert(row(id, id % 10, 0, 100)).unwrap();
        }
        assert!(matches!(
            t.insert(row(5, 0, 0, 1)),
            Err(Error::DuplicateKey { .. })
        ));
        assert_eq!(t.get(&[Value::Int(7)]).unwrap(), Some(row(7, 7, 0, 100)));
        assert!(t.update(&[Value::Int(7)], &[(3, Value::Int(70))]).unwrap());
        assert!(t.update(&[Value::Int(8)], &[(1, Value::Int(99))]).unwrap());
        assert!(t.delete(&[Value::Int(9)]).unwrap());
        assert!(!t.delete(&[Value::Int(9)]).unwrap());
        assert_eq!(t.get(&[Value::Int(9)]).unwrap(), None);
        assert_eq!(
            t.lookup("by_a", &[Value::Int(99)]).unwrap(),
            vec![row(8, 99, 0, 100)]
        );
        assert_eq!(t.lookup("by_a", &[Value::Int(9)]).unwrap().len(), 19);
        assert_eq!(
            t.lookup("by_b", &[Value::Text("b7".into())]).unwrap(),
            vec![{
                let mut r = row(7, 7, 0, 100);
                r[3] = Value::Int(70);
                r
            }]
        );
        assert!(matches!(
            t.update(&[Value::Int(1)], &[(2, Value::Text("b2".into()))]),
            Err(Error::DuplicateKey { .. })
        ));
        e.check().unwrap();
    }
    let e = open(dir.path(), HeapOptions::default());
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 199);
    let range = ScanSpec {
        lower: Bound::Included(vec![Value::Int(10)]),
        upper: Bound::Excluded(vec![Value::Int(20)]),
        ..ScanSpec::default()
    };
    let ids: Vec<i64> = all(&t, &range)
        .iter()
        .map(|r| match r[0] {
            Value::Int(i) => i,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(ids, (10..20).collect::<Vec<_>>());
    let by_a = |method| ScanSpec {
        index: Some("by_a".into()),
        lower: Bound::Included(vec![Value::Int(2)]),
        upper: Bound::Included(vec![Value::Int(3)]),
        method,
        ..ScanSpec::default()
    };
    let plain = all(&t, &by_a(IndexScanMethod::Plain));
    let bitmap = all(&t, &by_a(IndexScanMethod::Bitmap));
    assert_eq!(plain.len(), 40);
    assert_eq!(sorted(plain), sorted(bitmap));
    assert_eq!(all(&t, &ScanSpec::default()).len(), 199);
}

/// An update of a non-indexed column that fits on its page is HOT and inserts no index
/// entry; an update of an indexed column inserts one entry into every index.
#[test]
fn hot_updates_skip_indexes_and_others_touch_every_index() {
    let dir = tempfile::tempdir().unwrap();
    let options = HeapOptions {
        fillfactor_pct: 70,
        autovacuum: false,
        ..HeapOptions::default()
    };
    let e = open(dir.path(), options);
    let t = e.create_table(schema()).unwrap();
    for id in 0..100 {
        t.insert(row(id, id, 0, 50)).unwrap();
    }
    let entries = counter(&t, "index_entries_inserted");
    t.update(&[Value::Int(3)], &[(3, Value::Int(1))]).unwrap();
    assert_eq!(counter(&t, "hot_updates"), 1);
    assert_eq!(counter(&t, "index_entries_inserted"), entries);
    t.update(&[Value::Int(4)], &[(1, Value::Int(1000))])
        .unwrap();
    assert_eq!(counter(&t, "non_hot_updates"), 1);
    assert_eq!(counter(&t, "index_entries_inserted"), entries + 3);
    e.check().unwrap();
}

/// With HOT switched off, an update of a non-indexed column that would fit on its page is
/// non-HOT all the same: it inserts one entry into every index (the primary key's included),
/// readers find the new version through every index, and VACUUM removes the old entries.
#[test]
fn hot_off_updates_insert_an_entry_into_every_index() {
    let dir = tempfile::tempdir().unwrap();
    let options = HeapOptions {
        fillfactor_pct: 70,
        hot: false,
        autovacuum: false,
        ..HeapOptions::default()
    };
    let e = open(dir.path(), options);
    let t = e.create_table(schema()).unwrap();
    for id in 0..100 {
        t.insert(row(id, id, 0, 50)).unwrap();
    }
    let entries = counter(&t, "index_entries_inserted");
    for id in 0..10 {
        t.update(&[Value::Int(id)], &[(3, Value::Int(7))]).unwrap();
    }
    assert_eq!(counter(&t, "hot_updates"), 0);
    assert_eq!(counter(&t, "non_hot_updates"), 10);
    assert_eq!(
        counter(&t, "index_entries_inserted"),
        entries + 10 * 3,
        "one entry in the primary key, by_a and by_b per update"
    );
    for id in 0..10 {
        assert_eq!(t.get(&[Value::Int(id)]).unwrap(), Some(row(id, id, 7, 50)));
        assert_eq!(
            t.lookup("by_a", &[Value::Int(id)]).unwrap(),
            vec![row(id, id, 7, 50)]
        );
        let b = Value::Text(format!("b{id}"));
        assert_eq!(t.lookup("by_b", &[b]).unwrap(), vec![row(id, id, 7, 50)]);
    }
    e.check().unwrap();
    t.maintain().unwrap();
    assert_eq!(counter(&t, "vacuum_index_entries_removed"), 10 * 3);
    assert!(
        counter(&t, "vacuum_log_bytes_appended") > 0,
        "VACUUM logs the pages and index entries it changed"
    );
    e.check().unwrap();
}

/// VACUUM removes the index entries of dead tuples and frees their line pointers; the space
/// is reused by later inserts instead of growing the file.
#[test]
fn vacuum_reclaims_dead_tuples() {
    let dir = tempfile::tempdir().unwrap();
    let options = HeapOptions {
        autovacuum: false,
        ..HeapOptions::default()
    };
    let e = open(dir.path(), options);
    let t = e.create_table(schema()).unwrap();
    for id in 0..300 {
        t.insert(row(id, id, 0, 200)).unwrap();
    }
    for id in 0..300 {
        t.update(&[Value::Int(id)], &[(1, Value::Int(id + 1000))])
            .unwrap();
    }
    for id in 0..150 {
        t.delete(&[Value::Int(id)]).unwrap();
    }
    e.check().unwrap();
    let pages = counter(&t, "heap_pages");
    t.maintain().unwrap();
    e.check().unwrap();
    assert!(counter(&t, "vacuum_index_entries_removed") >= 450 * 3);
    for id in 300..450 {
        t.insert(row(id, id, 0, 200)).unwrap();
    }
    e.check().unwrap();
    assert_eq!(
        counter(&t, "heap_pages"),
        pages,
        "inserts reused the vacuumed space"
    );
}

/// A batch is atomic: one bad op (a duplicate key) leaves the table as it was.
#[test]
fn failed_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), HeapOptions::default());
    let t = e.create_table(schema()).unwrap();
    t.insert(row(1, 1, 0, 10)).unwrap();
    let batch = [
        Op::Insert(row(2, 2, 0, 10)),
        Op::Update {
            key: vec![Value::Int(1)],
            changes: vec![(1, Value::Int(50))],
        },
        Op::Delete {
            key: vec![Value::Int(1)],
        },
        Op::Insert(row(2, 3, 0, 10)),
    ];
    assert!(matches!(t.apply(&batch), Err(Error::DuplicateKey { .. })));
    assert_eq!(t.get(&[Value::Int(1)]).unwrap(), Some(row(1, 1, 0, 10)));
    assert_eq!(t.get(&[Value::Int(2)]).unwrap(), None);
    assert!(t.lookup("by_a", &[Value::Int(50)]).unwrap().is_empty());
    e.check().unwrap();
    drop(t);
    drop(e);
    let e = open(dir.path(), HeapOptions::default());
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.get(&[Value::Int(1)]).unwrap(), Some(row(1, 1, 0, 10)));
    assert_eq!(t.get(&[Value::Int(2)]).unwrap(), None);
}
