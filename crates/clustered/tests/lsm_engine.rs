//! The clustered engine's LSM layout through the `Engine`/`Table` API: the reads MyRocks'
//! write path needs (unique checks, old rows) and the writes it makes (blind row puts,
//! secondary entries only when their key changed), secondary lookups, the layout recorded at
//! creation, bulk loads and a bulk load cut short, `check()` finding damage, and the log kept
//! for unflushed memtables through plain log checkpoints.

use std::path::Path;

use storelab_clustered::{
    ClusteredEngine, ClusteredLsmEngine, ClusteredOptions, IndexId, Layout, LsmOptions,
    open_clustered,
};
use storelab_pager::PageSize;
use storelab_table::{ColumnType, Engine, Error, Row, Schema, StorageConfig, Table, Value};
use storelab_wal::CommitMode;

fn config() -> StorageConfig {
    StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 1 << 20,
        commit_mode: CommitMode::Off,
        checkpoint_wal_bytes: 0,
        wal_segment_size: 64 << 10,
        ..StorageConfig::default()
    }
}

fn open(dir: &Path, options: LsmOptions) -> ClusteredLsmEngine {
    ClusteredLsmEngine::open(dir, &config(), options).expect("open")
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

fn counter(t: &dyn Table, name: &str) -> u64 {
    let stats = t.stats().unwrap();
    *stats
        .counters
        .get(name)
        .unwrap_or_else(|| panic!("no counter {name}"))
}

/// Inserts read to check uniqueness (primary and unique secondary), an update of a
/// non-indexed column reads the old row and writes only the row, an update of an indexed
/// column also moves that index's entry (two entry writes), a delete reads the old row and
/// writes tombstones for the row and its entries.
#[test]
fn writes_are_blind_puts_with_counted_reads() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), LsmOptions::tiny());
    let t = engine.create_table(schema()).unwrap();
    for id in 0..10 {
        t.insert(row(id, id % 3, 0, 10)).unwrap();
    }
    assert_eq!(counter(&*t, "inserts"), 10);
    // One primary read and one unique-index seek per insert.
    assert_eq!(counter(&*t, "unique_check_reads"), 20);
    assert_eq!(counter(&*t, "lsm_puts"), 30);
    assert_eq!(counter(&*t, "secondary_entries_inserted"), 20);

    let (puts, old_reads) = (counter(&*t, "lsm_puts"), counter(&*t, "old_row_reads"));
    assert!(t.update(&[Value::Int(4)], &[(3, Value::Int(99))]).unwrap());
    assert_eq!(counter(&*t, "old_row_reads"), old_reads + 1);
    assert_eq!(
        counter(&*t, "lsm_puts"),
        puts + 1,
        "only the row is written"
    );
    assert_eq!(counter(&*t, "update_secondary_entries_written"), 0);

    assert!(t.update(&[Value::Int(4)], &[(1, Value::Int(7))]).unwrap());
    assert_eq!(counter(&*t, "update_secondary_entries_written"), 2);
    assert_eq!(counter(&*t, "lsm_deletes"), 1, "the old by_a entry");
    assert_eq!(counter(&*t, "lsm_puts"), puts + 3, "row and new by_a entry");

    assert!(!t.update(&[Value::Int(100)], &[(3, Value::Int(1))]).unwrap());
    assert!(t.delete(&[Value::Int(5)]).unwrap());
    assert_eq!(counter(&*t, "lsm_deletes"), 4, "row and two entries");
    assert!(!t.delete(&[Value::Int(5)]).unwrap());

    // A secondary lookup: one seek, one primary get per row.
    let gets = counter(&*t, "primary_gets");
    let rows = t.lookup("by_a", &[Value::Int(1)]).unwrap();
    let ids: Vec<i64> = rows.iter().map(|r| r[0].as_int().unwrap()).collect();
    assert_eq!(ids, vec![1, 7]);
    assert_eq!(counter(&*t, "primary_gets"), gets + 2);

    // A duplicate unique key fails and changes nothing, even after earlier ops of its batch.
    let before = counter(&*t, "lsm_puts");
    let batch = [
        storelab_table::Op::Insert(row(50, 0, 0, 1)),
        storelab_table::Op::Update {
            key: vec![Value::Int(6)],
            changes: vec![(2, Value::Text("b7".into()))],
        },
    ];
    assert!(matches!(t.apply(&batch), Err(Error::DuplicateKey { .. })));
    assert_eq!(t.get(&[Value::Int(50)]).unwrap(), None);
    assert_eq!(counter(&*t, "lsm_puts"), before);
    engine.check().unwrap();
    assert_eq!(t.stats().unwrap().row_count, 9);
}

/// The tree's figures are in the table's counters: with tiny memtables a few hundred rows
/// flush and compact, and every level and the bloom filters are reported.
#[test]
fn lsm_figures_are_in_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path(), LsmOptions::tiny());
    let t = engine.create_table(schema()).unwrap();
    for id in 0..400 {
        t.insert(row(id, id % 7, id, 40)).unwrap();
    }
    for id in 1000..1100 {
        assert_eq!(t.get(&[Value::Int(id)]).unwrap(), None);
    }
    let stats = t.stats().unwrap();
    let c = &stats.counters;
    assert!(c["lsm_flushes"] > 0 && c["lsm_compactions"] > 0, "{c:?}");
    assert!(
        c["lsm_bloom_checks"] > 0 && c["lsm_bloom_negatives"] > 0,
        "{c:?}"
    );
    assert!(c["lsm_write_amplification_permille"] > 1000, "{c:?}");
    assert!(c.contains_key("lsm_l1_tables") && c.contains_key("lsm_l0_flush_bytes_written"));
    assert!(stats.file_bytes["lsm_tables"] > 0);
    engine.check().unwrap();
}

/// The layout is chosen at creation and recorded in the catalog: the directory reopens with
/// it whatever layout a new database would get, and the B+tree engine refuses it.
#[test]
fn existing_directory_opens_with_its_layout() {
    let dir = tempfile::tempdir().unwrap();
    let open_any = |layout| {
        open_clustered(
            dir.path(),
            &config(),
            layout,
            ClusteredOptions::default(),
            LsmOptions::tiny(),
        )
        .unwrap()
    };
    {
        let engine = open_any(Layout::Lsm);
        assert_eq!(engine.name(), "clustered-lsm");
        engine
            .create_table(schema())
            .unwrap()
            .insert(row(1, 1, 1, 1))
            .unwrap();
    }
    assert_eq!(Layout::of_dir(dir.path()).unwrap(), Some(Layout::Lsm));
    {
        let engine = open_any(Layout::BTree);
        assert_eq!(engine.name(), "clustered-lsm");
        let t = engine.open_table("t").unwrap();
        assert_eq!(t.get(&[Value::Int(1)]).unwrap(), Some(row(1, 1, 1, 1)));
    }
    let refused = ClusteredEngine::open(dir.path(), &config(), ClusteredOptions::default());
    assert!(matches!(refused, Err(Error::EngineMismatch { .. })));
}

/// A bulk load into an empty table writes sorted batches without reads, and the rows, the
/// entries and the hidden row ids survive a reopen; loading into a table with rows goes
/// through atomic batches.
#[test]
fn bulk_load_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let unkeyed = Schema::builder("u")
        .column("a", ColumnType::Int64)
        .column("b", ColumnType::Text)
        .index("by_a", &["a"], false)
        .build()
        .unwrap();
    {
        let engine = open(dir.path(), LsmOptions::tiny());
        let t = engine.create_table(schema()).unwrap();
        let mut rows = (0..3000).rev().map(|id| row(id, id % 11, id, 5));
        assert_eq!(t.load(&mut rows).unwrap(), 3000);
        assert_eq!(counter(&*t, "rows_bulk_loaded"), 3000);
        assert_eq!(counter(&*t, "unique_check_reads"), 0);
        let mut more = (3000..3100).map(|id| row(id, 0, 0, 5));
        assert_eq!(t.load(&mut more).unwrap(), 100);
        let u = engine.create_table(unkeyed.clone()).unwrap();
        let mut rows = (0..500).map(|i| vec![Value::Int(i % 5), Value::Text(format!("{i}"))]);
        assert_eq!(u.load(&mut rows).unwrap(), 500);
        assert!(u.delete(&[Value::Int(500)]).unwrap());
        engine.check().unwrap();
    }
    let engine = open(dir.path(), LsmOptions::tiny());
    engine.check().unwrap();
    let t = engine.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 3100);
    assert_eq!(
        t.lookup("by_b", &[Value::Text("b1234".into())]).unwrap(),
        vec![row(1234, 1234 % 11, 1234, 5)]
    );
    let u = engine.open_table("u").unwrap();
    assert_eq!(u.stats().unwrap().row_count, 499);
    // Row id 500 was the highest assigned and is deleted: it is not handed out again.
    u.insert(vec![Value::Int(9), Value::Text("new".into())])
        .unwrap();
    assert_eq!(u.get(&[Value::Int(500)]).unwrap(), None);
    assert_eq!(
        u.get(&[Value::Int(501)]).unwrap(),
        Some(vec![Value::Int(9), Value::Text("new".into())])
    );
}

/// A table the catalog still marks `loading` (a bulk load cut short by a crash) is erased
/// at open: the load happened entirely or not at all.
#[test]
fn table_marked_loading_is_emptied_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let engine = open(dir.path(), LsmOptions::tiny());
        let t = engine.create_table(schema()).unwrap();
        let mut rows = (0..300).map(|id| row(id, id % 3, id, 5));
        t.load(&mut rows).unwrap();
    }
    // What a crash in the middle of the load leaves in the catalog.
    storelab_table::catalog::Catalog::open_or_create(dir.path(), "clustered-lsm")
        .unwrap()
        .set_engine_data("t", serde_json::json!({ "loading": true }))
        .unwrap();
    let engine = open(dir.path(), LsmOptions::tiny());
    engine.check().unwrap();
    let t = engine.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 0);
    assert_eq!(t.get(&[Value::Int(7)]).unwrap(), None);
    t.insert(row(7, 1, 1, 1)).unwrap();
    drop(t);
    drop(engine);
    let engine = open(dir.path(), LsmOptions::tiny());
    assert_eq!(
        engine.open_table("t").unwrap().stats().unwrap().row_count,
        1,
        "the mark was cleared"
    );
}

/// Writes straight into the tree, as a bug or a bad disk would; gets the table's primary id.
type Damage = dyn Fn(&ClusteredLsmEngine, IndexId);

/// `check()` finds an entry without its row, a row without its entry, a row under another
/// key, and a key of an index id that belongs to no table; reading a garbled row is
/// `Corrupt`, not a panic.
#[test]
fn check_finds_damage() {
    let damage: [&Damage; 5] = [
        // An entry of by_a (id + 1) for a row that does not exist.
        &|e, p| {
            let mut key =
                IndexId(p.0 + 1).key(&storelab_table::key::encode_key_to_vec(&[Value::Int(1)]));
            key.extend_from_slice(&storelab_table::key::encode_key_to_vec(&[Value::Int(99)]));
            e.lsm().put(&key, b"").unwrap();
        },
        // Row 3's by_b entry removed.
        &|e, p| {
            let mut key =
                IndexId(p.0 + 2).key(&storelab_table::key::encode_key_to_vec(&[Value::Text(
                    "b3".into(),
                )]));
            key.extend_from_slice(&storelab_table::key::encode_key_to_vec(&[Value::Int(3)]));
            e.lsm().delete(&key).unwrap();
        },
        // Row 4 copied under key 40.
        &|e, p| {
            let pk = storelab_table::key::encode_key_to_vec(&[Value::Int(4)]);
            let value = e.lsm().get(&p.key(&pk)).unwrap().unwrap();
            let other = storelab_table::key::encode_key_to_vec(&[Value::Int(40)]);
            e.lsm().put(&p.key(&other), &value).unwrap();
        },
        // A key of an index id no table owns.
        &|e, _| e.lsm().put(&IndexId(5000).key(b"x"), b"").unwrap(),
        // Row 2's bytes garbled.
        &|e, p| {
            let pk = storelab_table::key::encode_key_to_vec(&[Value::Int(2)]);
            e.lsm().put(&p.key(&pk), &[1, 2, 3]).unwrap();
        },
    ];
    for (n, damage) in damage.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let engine = open(dir.path(), LsmOptions::tiny());
        let t = engine.create_table(schema()).unwrap();
        for id in 0..10 {
            t.insert(row(id, id % 2, id, 3)).unwrap();
        }
        engine.check().unwrap();
        let primary = engine.lsm_table("t").unwrap().primary_index_id();
        damage(&engine, primary);
        assert!(
            matches!(engine.check(), Err(Error::Corrupt { .. })),
            "damage {n} not found"
        );
        if n == 4 {
            assert!(matches!(
                t.get(&[Value::Int(2)]),
                Err(Error::Corrupt { .. })
            ));
        }
    }
}

/// Plain log checkpoints (not the engine's, which flushes) while the memtable holds several
/// log segments' worth of rows recycle nothing the memtable needs: the rows are all there
/// after a reopen, which replays them from the log.
#[test]
fn plain_log_checkpoints_keep_unflushed_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = LsmOptions::tiny();
    options.lsm.memtable_bytes_max = 8 << 20;
    {
        let engine = open(dir.path(), options.clone());
        let t = engine.create_table(schema()).unwrap();
        for id in 0..600 {
            t.insert(row(id, id % 5, id, 300)).unwrap();
            if id % 100 == 99 {
                let storage = engine.storage();
                storage.wal.checkpoint(&storage.pool).unwrap();
            }
        }
        assert_eq!(engine.lsm_stats().flush_count, 0);
        let wal = &engine.storage().wal;
        let geometry = wal.geometry();
        assert!(
            geometry.segment_of(wal.redo_lsn()) > geometry.segment_of(wal.keep_from_lsn()) + 1,
            "checkpoints would have recycled segments the memtable needs"
        );
    }
    let engine = open(dir.path(), options);
    engine.check().unwrap();
    let t = engine.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 600);
    assert_eq!(t.get(&[Value::Int(17)]).unwrap(), Some(row(17, 2, 17, 300)));
    // The engine's checkpoint flushes and lets the log go.
    engine.checkpoint().unwrap();
    let wal = &engine.storage().wal;
    assert_eq!(wal.keep_from_lsn(), wal.redo_lsn());
}
