//! Corners of the table contract: oversized index keys are refused before anything is
//! written, and hidden row ids are assigned 1, 2, 3, ... and never reused.

use storelab_heap::{HeapEngine, HeapOptions, StorageConfig};
use storelab_pager::PageSize;
use storelab_table::{ColumnType, Engine, Error, Op, Schema, Value};
use storelab_wal::CommitMode;

fn open(dir: &std::path::Path) -> HeapEngine {
    let config = StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 2 << 20,
        commit_mode: CommitMode::Off,
        ..StorageConfig::default()
    };
    HeapEngine::open(dir, &config, HeapOptions::default()).unwrap()
}

/// A row whose secondary key is too long for the index's B+tree is refused with
/// `KeyTooLarge`, by insert, update and bulk load alike, and leaves no trace.
#[test]
fn oversized_index_key_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path());
    let schema = Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("name", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_name", &["name"], false)
        .build()
        .unwrap();
    let t = e.create_table(schema).unwrap();
    let long = Value::Text("n".repeat(3000));
    let r = t.insert(vec![Value::Int(1), long.clone()]);
    assert!(matches!(r, Err(Error::KeyTooLarge { .. })), "{r:?}");
    assert!(matches!(
        t.load(&mut std::iter::once(vec![Value::Int(1), long.clone()])),
        Err(Error::KeyTooLarge { .. })
    ));
    t.insert(vec![Value::Int(2), Value::Text("short".into())])
        .unwrap();
    let r = t.update(&[Value::Int(2)], &[(1, long)]);
    assert!(matches!(r, Err(Error::KeyTooLarge { .. })), "{r:?}");
    assert_eq!(t.stats().unwrap().row_count, 1);
    assert_eq!(
        t.get(&[Value::Int(2)]).unwrap(),
        Some(vec![Value::Int(2), Value::Text("short".into())])
    );
    e.check().unwrap();
}

/// Hidden row ids count 1, 2, 3 in insert order; a failed batch takes none; after a clean
/// reopen they continue where they stopped; a deleted row's id is not given again.
#[test]
fn hidden_row_ids_are_sequential_and_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::builder("log")
        .column("msg", ColumnType::Text)
        .index("by_msg", &["msg"], true)
        .build()
        .unwrap();
    let text = |s: &str| vec![Value::Text(s.into())];
    {
        let e = open(dir.path());
        let t = e.create_table(schema).unwrap();
        t.insert(text("a")).unwrap();
        t.insert(text("b")).unwrap();
        let failed = t.apply(&[Op::Insert(text("c")), Op::Insert(text("a"))]);
        assert!(matches!(failed, Err(Error::DuplicateKey { .. })));
        t.insert(text("c")).unwrap();
        assert_eq!(t.get(&[Value::Int(3)]).unwrap(), Some(text("c")));
        assert!(t.delete(&[Value::Int(3)]).unwrap());
    }
    let e = open(dir.path());
    let t = e.open_table("log").unwrap();
    t.insert(text("d")).unwrap();
    assert_eq!(t.get(&[Value::Int(3)]).unwrap(), None);
    assert_eq!(t.get(&[Value::Int(4)]).unwrap(), Some(text("d")));
    e.check().unwrap();
}
