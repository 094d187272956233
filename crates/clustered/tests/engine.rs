//! The clustered engine through the `Engine`/`Table` API: every operation and reopen, the
//! secondary entries an update writes, the descents a lookup costs, covering reads, atomic
//! batches, hidden row ids, large rows, scans with and without read-ahead, the split policy
//! under sequential and random keys, and a model test against the reference engine with
//! `check()` after every step.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use storelab_clustered::{
    BTreeConfig, ClusteredEngine, ClusteredOptions, ROW_SIZE_MAX, SplitPolicy, StorageConfig,
};
use storelab_pager::PageSize;
use storelab_table::reference::ReferenceEngine;
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

fn open(dir: &Path, options: ClusteredOptions) -> ClusteredEngine {
    ClusteredEngine::open(dir, &config(), options).expect("open")
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

fn ids(rows: &[Row]) -> Vec<i64> {
    rows.iter()
        .map(|r| r[0].as_int().expect("int id"))
        .collect()
}

/// Inserts, point reads, updates of indexed and non-indexed columns, deletes, index lookups
/// and scans agree with what was written, and survive a reopen.
#[test]
fn operations_round_trip_and_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), ClusteredOptions::default());
        let t = e.create_table(schema()).unwrap();
        for id in 0..200 {
            t.insert(row(id, id % 10, 0, 100)).unwrap();
        }
        assert!(matches!(
            t.insert(row(5, 0, 0, 1)),
            Err(Error::DuplicateKey { ref index, .. }) if index == "primary"
        ));
        assert_eq!(t.get(&[Value::Int(7)]).unwrap(), Some(row(7, 7, 0, 100)));
        assert!(t.update(&[Value::Int(7)], &[(3, Value::Int(70))]).unwrap());
        assert!(t.update(&[Value::Int(8)], &[(1, Value::Int(99))]).unwrap());
        assert!(!t.update(&[Value::Int(999)], &[(1, Value::Int(1))]).unwrap());
        assert!(t.delete(&[Value::Int(9)]).unwrap());
        assert!(!t.delete(&[Value::Int(9)]).unwrap());
        assert_eq!(t.get(&[Value::Int(9)]).unwrap(), None);
        assert_eq!(
            t.lookup("by_a", &[Value::Int(99)]).unwrap(),
            vec![row(8, 99, 0, 100)]
        );
        let nines = t.lookup("by_a", &[Value::Int(9)]).unwrap();
        assert_eq!(nines.len(), 19);
        assert!(
            ids(&nines).windows(2).all(|w| w[0] < w[1]),
            "equal keys by pk"
        );
        let mut seven = row(7, 7, 0, 100);
        seven[3] = Value::Int(70);
        assert_eq!(
            t.lookup("by_b", &[Value::Text("b7".into())]).unwrap(),
            vec![seven]
        );
        assert!(matches!(
            t.update(&[Value::Int(1)], &[(2, Value::Text("b2".into()))]),
            Err(Error::DuplicateKey { ref index, .. }) if index == "by_b"
        ));
        assert!(matches!(
            t.update(&[Value::Int(1)], &[(0, Value::Int(5))]),
            Err(Error::PrimaryKeyChange { .. })
        ));
        assert!(matches!(
            t.insert(vec![Value::Int(1)]),
            Err(Error::WrongArity { .. })
        ));
        e.check().unwrap();
    }
    let e = open(dir.path(), ClusteredOptions::default());
    e.check().unwrap();
    assert_eq!(e.table_names(), ["t"]);
    let t = e.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 199);
    let range = ScanSpec {
        lower: Bound::Included(vec![Value::Int(10)]),
        upper: Bound::Excluded(vec![Value::Int(20)]),
        ..ScanSpec::default()
    };
    assert_eq!(ids(&all(&t, &range)), (10..20).collect::<Vec<_>>());
    let reverse = ScanSpec {
        reverse: true,
        limit: Some(3),
        ..range
    };
    assert_eq!(ids(&all(&t, &reverse)), [19, 18, 17]);
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
    assert!(
        ids(&bitmap).windows(2).all(|w| w[0] < w[1]),
        "bitmap: pk order"
    );
    assert_eq!(sorted(plain), sorted(bitmap));
    assert_eq!(all(&t, &ScanSpec::default()).len(), 199);
}

/// An update of a non-indexed column writes no secondary entry; an update of an indexed
/// column writes two entries (old out, new in) in exactly the indexes whose key changed.
#[test]
fn updates_write_only_the_changed_indexes_entries() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    for id in 0..100 {
        t.insert(row(id, id, 0, 50)).unwrap();
    }
    assert_eq!(counter(&t, "secondary_entries_inserted"), 200);
    let written = |t: &Arc<dyn Table>| counter(t, "update_secondary_entries_written");
    t.update(&[Value::Int(3)], &[(3, Value::Int(1))]).unwrap();
    t.update(&[Value::Int(4)], &[(4, Value::Text("y".repeat(300)))])
        .unwrap();
    assert_eq!(written(&t), 0, "non-indexed columns touch no index");
    assert_eq!(counter(&t, "secondary_entries_written"), 200);
    t.update(&[Value::Int(5)], &[(1, Value::Int(1000))])
        .unwrap();
    assert_eq!(written(&t), 2, "only by_a changed");
    t.update(
        &[Value::Int(6)],
        &[(1, Value::Int(2000)), (2, Value::Text("new".into()))],
    )
    .unwrap();
    assert_eq!(written(&t), 6, "both indexes changed");
    // Setting a column to its value changes nothing at all.
    t.update(&[Value::Int(7)], &[(1, Value::Int(7))]).unwrap();
    assert_eq!(written(&t), 6);
    assert_eq!(counter(&t, "updates_unchanged"), 1);
    assert_eq!(counter(&t, "updates"), 4);
    assert_eq!(t.lookup("by_a", &[Value::Int(1000)]).unwrap().len(), 1);
    assert!(t.lookup("by_a", &[Value::Int(5)]).unwrap().is_empty());
    e.check().unwrap();
}

/// A point lookup through a unique secondary costs one secondary and one primary descent; a
/// covering read (index and primary-key columns only) costs the secondary descent alone; a
/// primary-key read costs one primary descent.
#[test]
fn secondary_lookup_costs_two_descents_and_covering_read_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    for id in 0..500 {
        t.insert(row(id, id / 5, 0, 40)).unwrap();
    }
    let descents = |t: &Arc<dyn Table>| {
        (
            counter(t, "secondary_descents"),
            counter(t, "primary_descents"),
        )
    };
    let (s0, p0) = descents(&t);
    let found = t.lookup("by_b", &[Value::Text("b123".into())]).unwrap();
    assert_eq!(found, vec![row(123, 24, 0, 40)]);
    let (s1, p1) = descents(&t);
    assert_eq!((s1 - s0, p1 - p0), (1, 1), "secondary lookup = 2 descents");

    let covering = ScanSpec {
        index: Some("by_b".into()),
        lower: Bound::Included(vec![Value::Text("b123".into())]),
        upper: Bound::Included(vec![Value::Text("b123".into())]),
        projection: Some(vec![2, 0]),
        ..ScanSpec::default()
    };
    let rows = all(&t, &covering);
    assert_eq!(
        rows,
        vec![vec![Value::Text("b123".into()), Value::Int(123)]]
    );
    let (s2, p2) = descents(&t);
    assert_eq!((s2 - s1, p2 - p1), (1, 0), "covering read = 1 descent");
    assert_eq!(counter(&t, "covering_rows"), 1);

    // Not covering: column c is in neither the index nor the primary key.
    let not_covering = ScanSpec {
        projection: Some(vec![3]),
        ..covering.clone()
    };
    assert_eq!(all(&t, &not_covering), vec![vec![Value::Int(0)]]);
    let (s3, p3) = descents(&t);
    assert_eq!((s3 - s2, p3 - p2), (1, 1));

    // A non-unique key with five rows: one secondary descent, five primary ones.
    assert_eq!(t.lookup("by_a", &[Value::Int(7)]).unwrap().len(), 5);
    let (s4, p4) = descents(&t);
    assert_eq!((s4 - s3, p4 - p3), (1, 5));

    t.get(&[Value::Int(42)]).unwrap();
    let (s5, p5) = descents(&t);
    assert_eq!((s5 - s4, p5 - p4), (0, 1));
    let height = counter(&t, "primary_height");
    let touched = counter(&t, "get_pages_touched");
    // A descent pins the meta page, then one node per level.
    assert_eq!(touched, height + 1, "pages touched by one get");
}

/// A batch is atomic: one bad op (a duplicate key) leaves the table as it was, also after a
/// reopen.
#[test]
fn failed_batch_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = open(dir.path(), ClusteredOptions::default());
        let t = e.create_table(schema()).unwrap();
        t.insert(row(1, 1, 0, 10)).unwrap();
        let batch = [
            Op::Insert(row(2, 2, 0, 10)),
            Op::Update {
                key: vec![Value::Int(1)],
                changes: vec![(1, Value::Int(50)), (4, Value::Text("z".repeat(2000)))],
            },
            Op::Delete {
                key: vec![Value::Int(1)],
            },
            Op::Insert(row(1, 7, 0, 10)),
            Op::Insert(row(2, 3, 0, 10)),
        ];
        assert!(matches!(t.apply(&batch), Err(Error::DuplicateKey { .. })));
        assert_eq!(t.get(&[Value::Int(1)]).unwrap(), Some(row(1, 1, 0, 10)));
        assert_eq!(t.get(&[Value::Int(2)]).unwrap(), None);
        assert!(t.lookup("by_a", &[Value::Int(50)]).unwrap().is_empty());
        assert!(t.lookup("by_a", &[Value::Int(7)]).unwrap().is_empty());
        assert_eq!(t.stats().unwrap().row_count, 1);
        e.check().unwrap();
        // A row over the limit is refused before anything changes.
        let huge = row(3, 3, 0, ROW_SIZE_MAX);
        assert!(matches!(t.insert(huge), Err(Error::RowTooLarge { .. })));
        // So is a secondary key over the B+tree's key limit.
        let mut long_b = row(4, 4, 0, 1);
        long_b[2] = Value::Text("k".repeat(4000));
        assert!(matches!(t.insert(long_b), Err(Error::KeyTooLarge { .. })));
        e.check().unwrap();
    }
    let e = open(dir.path(), ClusteredOptions::default());
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.get(&[Value::Int(1)]).unwrap(), Some(row(1, 1, 0, 10)));
    assert_eq!(t.get(&[Value::Int(2)]).unwrap(), None);
    assert_eq!(all(&t, &ScanSpec::default()).len(), 1);
}

/// Rows over the B+tree's inline limit go to overflow pages and come back whole through every
/// access path; updates move them between inline and overflow storage; deletes free them.
#[test]
fn large_rows_use_overflow_pages() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    for id in 0..60 {
        let pad = if id % 3 == 0 { 9000 } else { 20 };
        t.insert(row(id, id % 4, 0, pad)).unwrap();
    }
    assert!(counter(&t, "primary_overflow_pages") >= 20 * 3);
    assert_eq!(t.get(&[Value::Int(3)]).unwrap(), Some(row(3, 3, 0, 9000)));
    let scanned = all(&t, &ScanSpec::default());
    assert_eq!(scanned.len(), 60);
    assert_eq!(scanned[30], row(30, 2, 0, 9000));
    let bitmap = ScanSpec {
        index: Some("by_a".into()),
        method: IndexScanMethod::Bitmap,
        ..ScanSpec::default()
    };
    assert_eq!(sorted(all(&t, &bitmap)), scanned);
    t.update(&[Value::Int(1)], &[(4, Value::Text("w".repeat(5000)))])
        .unwrap();
    t.update(&[Value::Int(3)], &[(4, Value::Text("w".into()))])
        .unwrap();
    assert_eq!(
        t.get(&[Value::Int(1)]).unwrap(),
        Some({
            let mut r = row(1, 1, 0, 0);
            r[4] = Value::Text("w".repeat(5000));
            r
        })
    );
    for id in 0..60 {
        t.delete(&[Value::Int(id)]).unwrap();
    }
    assert_eq!(counter(&t, "primary_overflow_pages"), 0);
    e.check().unwrap();
}

/// A table without a primary key numbers its rows 1, 2, 3, ...; ids are never reused, not
/// even after the highest one is deleted and the table reopened; a failed batch uses none.
#[test]
fn hidden_row_ids_are_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let schema = || {
        Schema::builder("log")
            .column("msg", ColumnType::Text)
            .column("level", ColumnType::Int64)
            .index("by_level", &["level"], false)
            .build()
            .unwrap()
    };
    let line = |m: &str, l: i64| vec![Value::from(m), Value::Int(l)];
    {
        let e = open(dir.path(), ClusteredOptions::default());
        let t = e.create_table(schema()).unwrap();
        for i in 0..5 {
            t.insert(line(&format!("m{i}"), i % 2)).unwrap();
        }
        assert_eq!(t.get(&[Value::Int(5)]).unwrap(), Some(line("m4", 0)));
        let bad = [Op::Insert(line("x", 1)), Op::Insert(vec![Value::Int(1)])];
        assert!(t.apply(&bad).is_err());
        assert!(t.delete(&[Value::Int(5)]).unwrap());
        assert!(t.delete(&[Value::Int(4)]).unwrap());
        assert_eq!(counter(&t, "row_id_marks_written"), 1);
        e.check().unwrap();
    }
    let e = open(dir.path(), ClusteredOptions::default());
    e.check().unwrap();
    let t = e.open_table("log").unwrap();
    t.insert(line("after", 1)).unwrap();
    assert_eq!(t.get(&[Value::Int(6)]).unwrap(), Some(line("after", 1)));
    assert_eq!(t.get(&[Value::Int(5)]).unwrap(), None);
    assert_eq!(t.lookup("by_level", &[Value::Int(1)]).unwrap().len(), 2);
    assert!(
        t.update(&[Value::Int(1)], &[(1, Value::Int(9))]).unwrap(),
        "row ids are the key of update"
    );
    assert_eq!(
        t.lookup("by_level", &[Value::Int(9)]).unwrap(),
        vec![line("m0", 9)]
    );
    e.check().unwrap();
}

/// Forward primary-key scans read about rows / rows-per-leaf leaves through the read stream,
/// and give the same rows as the one-leaf-at-a-time cursor (prefetch depth 0).
#[test]
fn range_scan_reads_rows_per_leaf_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    let rows: Vec<Op> = (0..5000)
        .map(|id| Op::Insert(row(id, id % 50, id, 30)))
        .collect();
    for batch in rows.chunks(500) {
        t.apply(batch).unwrap();
    }
    let stats = t.stats().unwrap().counters;
    let rows_per_leaf = 5000.0 / stats["primary_leaf_pages"] as f64;
    let range = |depth| ScanSpec {
        lower: Bound::Included(vec![Value::Int(2000)]),
        upper: Bound::Excluded(vec![Value::Int(3000)]),
        prefetch_depth: Some(depth),
        ..ScanSpec::default()
    };
    let before = counter(&t, "primary_leaves_streamed");
    let streamed = all(&t, &range(16));
    let leaves = counter(&t, "primary_leaves_streamed") - before;
    assert_eq!(ids(&streamed), (2000..3000).collect::<Vec<_>>());
    let expected = 1000.0 / rows_per_leaf;
    assert!(
        (leaves as f64) <= expected + 2.0 && (leaves as f64) >= expected - 1.0,
        "{leaves} leaves for 1000 rows at {rows_per_leaf:.1} rows per leaf"
    );
    assert_eq!(all(&t, &range(0)), streamed);
    // A projection with a predicate and a limit.
    let even = |r: &Row| r[3].as_int().is_some_and(|c| c % 2 == 0);
    let spec = ScanSpec {
        projection: Some(vec![3]),
        limit: Some(4),
        ..range(8)
    };
    let mut got = Vec::new();
    let n = t
        .scan(&spec, Some(&even), &mut |r| {
            got.push(r);
            true
        })
        .unwrap();
    assert_eq!(n, 4);
    assert_eq!(
        got,
        [2000, 2002, 2004, 2006]
            .map(|c| vec![Value::Int(c)])
            .to_vec()
    );
    let none = ScanSpec {
        limit: Some(0),
        ..range(8)
    };
    assert!(all(&t, &none).is_empty());
    e.check().unwrap();
}

/// Leaf fill and splits of the primary tree for sequential and random keys under both split
/// policies.
fn fill_and_splits(split: SplitPolicy, sequential: bool) -> (f64, u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let options = ClusteredOptions {
        btree: BTreeConfig {
            split,
            ..BTreeConfig::default()
        },
        ..ClusteredOptions::default()
    };
    let e = open(dir.path(), options);
    let t = e.create_table(schema()).unwrap();
    let mut keys: Vec<i64> = (0..3000).collect();
    if !sequential {
        keys.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    }
    for chunk in keys.chunks(100) {
        let ops: Vec<Op> = chunk
            .iter()
            .map(|&id| Op::Insert(row(id, id, 0, 60)))
            .collect();
        t.apply(&ops).unwrap();
    }
    e.check().unwrap();
    let table = e.clustered_table("t").unwrap();
    let (primary, _) = table.tree_stats().unwrap();
    e.checkpoint().unwrap();
    let bytes = t.stats().unwrap().file_bytes["primary"];
    eprintln!(
        "{split:?} sequential={sequential}: fill {:.3}, {} splits, {bytes} bytes, {} leaves",
        primary.leaf_fill, primary.split_count, primary.leaf_count
    );
    (primary.leaf_fill, primary.split_count, bytes)
}

/// Ascending keys with the insert-point split leave full leaves (the left page keeps
/// everything), with the middle split half-full ones; random keys with middle splits leave
/// leaves about ln 2 = 69% full. Fuller leaves mean fewer splits and a smaller file.
#[test]
fn split_policy_shapes_sequential_and_random_inserts() {
    let (seq_insert_point, seq_insert_point_splits, seq_insert_point_bytes) =
        fill_and_splits(SplitPolicy::InsertPoint, true);
    let (seq_middle, seq_middle_splits, seq_middle_bytes) =
        fill_and_splits(SplitPolicy::Middle, true);
    let (random_middle, _, _) = fill_and_splits(SplitPolicy::Middle, false);
    let (random_insert_point, _, _) = fill_and_splits(SplitPolicy::InsertPoint, false);
    assert!(seq_insert_point > 0.9, "{seq_insert_point}");
    assert!((0.45..0.6).contains(&seq_middle), "{seq_middle}");
    assert!((0.6..0.8).contains(&random_middle), "{random_middle}");
    // Random keys never go past the rightmost leaf's end often: the policies agree.
    assert!((random_insert_point - random_middle).abs() < 0.05);
    assert!(
        seq_insert_point_splits * 3 < seq_middle_splits * 2,
        "{seq_insert_point_splits} vs {seq_middle_splits}"
    );
    assert!(seq_insert_point_bytes < seq_middle_bytes);
}

/// Deleting most rows merges leaves under the merge threshold and frees pages.
#[test]
fn deletes_merge_leaves() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    let ops: Vec<Op> = (0..2000).map(|id| Op::Insert(row(id, id, 0, 60))).collect();
    for batch in ops.chunks(250) {
        t.apply(batch).unwrap();
    }
    let leaves = counter(&t, "primary_leaf_pages");
    let ops: Vec<Op> = (0..2000)
        .filter(|id| id % 10 != 0)
        .map(|id| Op::Delete {
            key: vec![Value::Int(id)],
        })
        .collect();
    for batch in ops.chunks(250) {
        t.apply(batch).unwrap();
    }
    assert!(counter(&t, "primary_merges") > 0);
    assert!(counter(&t, "secondary_merges") > 0);
    assert!(counter(&t, "primary_leaf_pages") * 3 < leaves);
    assert_eq!(all(&t, &ScanSpec::default()).len(), 200);
    e.check().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Model test

#[derive(Clone, Debug)]
enum ModelOp {
    Insert(i64, i64, i64, usize),
    UpdateC(i64, i64),
    UpdateA(i64, i64),
    UpdateB(i64, i64),
    Delete(i64),
    Get(i64),
    LookupA(i64),
    RangeA(i64, i64, bool, bool),
    RangePk(i64, i64, u8),
    Batch(Vec<(u8, i64, i64)>),
    Reopen,
}

fn model_op() -> impl Strategy<Value = ModelOp> {
    let id = 0..60i64;
    prop_oneof![
        4 => (id.clone(), 0..8i64, 0..100i64, prop_oneof![0..300usize, 600..1500usize])
            .prop_map(|(i, a, c, p)| ModelOp::Insert(i, a, c, p)),
        3 => (id.clone(), 0..100i64).prop_map(|(i, c)| ModelOp::UpdateC(i, c)),
        2 => (id.clone(), 0..8i64).prop_map(|(i, a)| ModelOp::UpdateA(i, a)),
        1 => (id.clone(), id.clone()).prop_map(|(i, b)| ModelOp::UpdateB(i, b)),
        2 => id.clone().prop_map(ModelOp::Delete),
        2 => id.clone().prop_map(ModelOp::Get),
        1 => (0..8i64).prop_map(ModelOp::LookupA),
        2 => (0..8i64, 0..8i64, any::<bool>(), any::<bool>())
            .prop_map(|(a, b, m, c)| ModelOp::RangeA(a, b, m, c)),
        2 => (id.clone(), id.clone(), any::<u8>()).prop_map(|(a, b, k)| ModelOp::RangePk(a, b, k)),
        1 => proptest::collection::vec((0..3u8, id.clone(), 0..8i64), 1..6).prop_map(ModelOp::Batch),
        1 => Just(ModelOp::Reopen),
    ]
}

fn result_kind<T>(r: &storelab_table::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(Error::DuplicateKey { index, .. }) => format!("duplicate {index}"),
        Err(e) => format!("error {e}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("STORELAB_LONG").map_or(24, |_| 500),
        ..ProptestConfig::default()
    })]

    /// Random op sequences give the reference engine's answers; `check()` passes after every
    /// step; reopening changes nothing. Small nodes make trees several levels deep.
    #[test]
    fn clustered_matches_reference(
        ops in proptest::collection::vec(model_op(), 1..80),
        split in prop_oneof![Just(SplitPolicy::Middle), Just(SplitPolicy::InsertPoint)],
        node_size in prop_oneof![Just(None), Just(Some(1024usize))],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = ClusteredOptions {
            btree: BTreeConfig { split, node_size, ..BTreeConfig::default() },
            prefetch_depth: 4,
        };
        let mut engine = open(dir.path(), options);
        let mut t = engine.create_table(schema()).unwrap();
        let reference = ReferenceEngine::new(engine.row_size_max());
        let r = reference.create_table(schema()).unwrap();
        for op in ops {
            match op {
                ModelOp::Insert(i, a, c, p) => {
                    let (x, y) = (t.insert(row(i, a, c, p)), r.insert(row(i, a, c, p)));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                }
                ModelOp::UpdateC(i, c) => {
                    let ch = [(3, Value::Int(c))];
                    let (x, y) = (t.update(&[Value::Int(i)], &ch), r.update(&[Value::Int(i)], &ch));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                    prop_assert_eq!(x.ok(), y.ok());
                }
                ModelOp::UpdateA(i, a) => {
                    let ch = [(1, Value::Int(a)), (4, Value::Text("y".repeat(a as usize * 70)))];
                    let (x, y) = (t.update(&[Value::Int(i)], &ch), r.update(&[Value::Int(i)], &ch));
                    prop_assert_eq!(x.ok(), y.ok());
                }
                ModelOp::UpdateB(i, b) => {
                    let ch = [(2, Value::Text(format!("b{b}")))];
                    let (x, y) = (t.update(&[Value::Int(i)], &ch), r.update(&[Value::Int(i)], &ch));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                }
                ModelOp::Delete(i) => {
                    prop_assert_eq!(t.delete(&[Value::Int(i)]).ok(), r.delete(&[Value::Int(i)]).ok());
                }
                ModelOp::Get(i) => {
                    prop_assert_eq!(t.get(&[Value::Int(i)]).unwrap(), r.get(&[Value::Int(i)]).unwrap());
                }
                ModelOp::LookupA(a) => {
                    // Equal index keys come in primary-key order in both engines.
                    prop_assert_eq!(t.lookup("by_a", &[Value::Int(a)]).unwrap(),
                                    r.lookup("by_a", &[Value::Int(a)]).unwrap());
                }
                ModelOp::RangeA(a, b, bitmap, covering) => {
                    let spec = ScanSpec {
                        index: Some("by_a".into()),
                        lower: Bound::Included(vec![Value::Int(a)]),
                        upper: Bound::Excluded(vec![Value::Int(b)]),
                        method: if bitmap { IndexScanMethod::Bitmap } else { IndexScanMethod::Plain },
                        projection: covering.then(|| vec![1, 0]),
                        ..ScanSpec::default()
                    };
                    let (x, y) = (all(&t, &spec), all(&r, &spec));
                    if bitmap {
                        prop_assert_eq!(sorted(x), sorted(y));
                    } else {
                        prop_assert_eq!(x, y);
                    }
                }
                ModelOp::RangePk(a, b, knobs) => {
                    let spec = ScanSpec {
                        lower: Bound::Excluded(vec![Value::Int(a)]),
                        upper: Bound::Included(vec![Value::Int(b)]),
                        reverse: knobs & 1 == 1,
                        limit: (knobs & 2 == 2).then_some(7),
                        prefetch_depth: Some(usize::from(knobs >> 2 & 3)),
                        projection: (knobs & 16 == 16).then(|| vec![3, 0]),
                        ..ScanSpec::default()
                    };
                    prop_assert_eq!(all(&t, &spec), all(&r, &spec));
                }
                ModelOp::Batch(items) => {
                    let ops: Vec<Op> = items
                        .iter()
                        .map(|&(kind, i, a)| match kind {
                            0 => Op::Insert(row(i, a, 0, 10)),
                            1 => Op::Update { key: vec![Value::Int(i)], changes: vec![(1, Value::Int(a))] },
                            _ => Op::Delete { key: vec![Value::Int(i)] },
                        })
                        .collect();
                    let (x, y) = (t.apply(&ops), r.apply(&ops));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                    prop_assert_eq!(x.ok(), y.ok());
                }
                ModelOp::Reopen => {
                    drop(t);
                    drop(engine);
                    engine = open(dir.path(), options);
                    t = engine.open_table("t").unwrap();
                }
            }
            engine.check().unwrap();
            prop_assert_eq!(all(&t, &ScanSpec::default()), all(&r, &ScanSpec::default()));
            prop_assert_eq!(t.stats().unwrap().row_count, r.stats().unwrap().row_count);
        }
    }

    /// A table without a primary key gives the reference engine's row ids and answers, across
    /// deletes of the highest ids, failed batches and reopens.
    #[test]
    fn hidden_row_ids_match_reference(
        ops in proptest::collection::vec((0..5u8, 1..12i64, 0..4i64), 1..60),
        seed in any::<u64>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let schema = || Schema::builder("h")
            .column("v", ColumnType::Int64)
            .column("u", ColumnType::Int64)
            .index("by_v", &["v"], false)
            .index("by_u", &["u"], true)
            .build()
            .unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut engine = open(dir.path(), ClusteredOptions::default());
        let mut t = engine.create_table(schema()).unwrap();
        let reference = ReferenceEngine::new(engine.row_size_max());
        let r = reference.create_table(schema()).unwrap();
        for (kind, id, v) in ops {
            let u = rng.random_range(0..30i64);
            match kind {
                0 | 1 => {
                    let row = vec![Value::Int(v), Value::Int(u)];
                    let (x, y) = (t.insert(row.clone()), r.insert(row));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                }
                2 => prop_assert_eq!(t.delete(&[Value::Int(id)]).ok(), r.delete(&[Value::Int(id)]).ok()),
                3 => {
                    let ops = [Op::Insert(vec![Value::Int(v), Value::Int(u)]),
                               Op::Delete { key: vec![Value::Int(id)] },
                               Op::Update { key: vec![Value::Int(id - 1)], changes: vec![(1, Value::Int(u + 1))] }];
                    let (x, y) = (t.apply(&ops), r.apply(&ops));
                    prop_assert_eq!(result_kind(&x), result_kind(&y));
                }
                _ => {
                    drop(t);
                    drop(engine);
                    engine = open(dir.path(), ClusteredOptions::default());
                    t = engine.open_table("h").unwrap();
                }
            }
            engine.check().unwrap();
            for id in 1..14 {
                prop_assert_eq!(t.get(&[Value::Int(id)]).unwrap(), r.get(&[Value::Int(id)]).unwrap());
            }
            let by_v = ScanSpec { index: Some("by_v".into()), ..ScanSpec::default() };
            prop_assert_eq!(all(&t, &by_v), all(&r, &by_v));
        }
    }
}

/// Loading an empty table builds every tree bottom-up with leaves at the fill factor; a
/// duplicate in the input changes nothing; loading a table with rows inserts in batches.
#[test]
fn load_builds_trees_bottom_up() {
    let dir = tempfile::tempdir().unwrap();
    let options = ClusteredOptions {
        btree: BTreeConfig {
            leaf_fill_pct: 70,
            ..BTreeConfig::default()
        },
        ..ClusteredOptions::default()
    };
    {
        let e = open(dir.path(), options);
        let t = e.create_table(schema()).unwrap();
        let mut dup = (0..100).map(|id| row(id % 99, id, 0, 10));
        assert!(matches!(
            t.load(&mut dup),
            Err(Error::DuplicateKey { ref index, .. }) if index == "primary"
        ));
        let mut dup_b = (0..100).map(|id| {
            let mut r = row(id, id, 0, 10);
            r[2] = Value::Text(format!("b{}", id % 50));
            r
        });
        assert!(matches!(
            t.load(&mut dup_b),
            Err(Error::DuplicateKey { ref index, .. }) if index == "by_b"
        ));
        assert_eq!(t.stats().unwrap().row_count, 0);
        // Out of order on purpose: the load sorts.
        let mut rows = (0..3000).rev().map(|id| row(id, id % 7, 0, 60));
        assert_eq!(t.load(&mut rows).unwrap(), 3000);
        assert_eq!(counter(&t, "rows_bulk_loaded"), 3000);
        assert_eq!(counter(&t, "primary_splits"), 0);
        let fill = counter(&t, "primary_leaf_fill_permille");
        assert!((640..=720).contains(&fill), "fill {fill} per mille at 70%");
        let mut more = (3000..3100).map(|id| row(id, 0, 0, 60));
        assert_eq!(t.load(&mut more).unwrap(), 100);
        assert_eq!(counter(&t, "rows_bulk_loaded"), 3000);
        e.check().unwrap();
    }
    let e = open(dir.path(), options);
    e.check().unwrap();
    let t = e.open_table("t").unwrap();
    assert_eq!(t.stats().unwrap().row_count, 3100);
    assert_eq!(
        t.lookup("by_a", &[Value::Int(3)]).unwrap().len(),
        3000 / 7 + 1
    );
}

/// Readers scanning and looking up while a writer inserts and updates see consistent rows
/// (each scan under the shared lock) and the table checks out afterwards.
#[test]
fn concurrent_readers_and_writer() {
    let dir = tempfile::tempdir().unwrap();
    let e = open(dir.path(), ClusteredOptions::default());
    let t = e.create_table(schema()).unwrap();
    for id in 0..500 {
        t.insert(row(id, id % 10, 0, 40)).unwrap();
    }
    std::thread::scope(|scope| {
        let writer = {
            let t = Arc::clone(&t);
            scope.spawn(move || {
                for id in 500..1000 {
                    t.insert(row(id, id % 10, 0, 40)).unwrap();
                    t.update(&[Value::Int(id - 500)], &[(1, Value::Int(id % 10))])
                        .unwrap();
                }
            })
        };
        for reader in 0..3 {
            let t = Arc::clone(&t);
            scope.spawn(move || {
                for i in 0..40 {
                    let rows = all(&t, &ScanSpec::default());
                    assert!(rows.len() >= 500);
                    assert!(ids(&rows).windows(2).all(|w| w[0] < w[1]));
                    let bitmap = ScanSpec {
                        index: Some("by_a".into()),
                        lower: Bound::Included(vec![Value::Int((reader + i) % 10)]),
                        upper: Bound::Included(vec![Value::Int((reader + i) % 10)]),
                        method: IndexScanMethod::Bitmap,
                        ..ScanSpec::default()
                    };
                    assert!(all(&t, &bitmap).len() >= 50);
                }
            });
        }
        writer.join().unwrap();
    });
    assert_eq!(t.stats().unwrap().row_count, 1000);
    e.check().unwrap();
}

/// The figures the issue asks for, on 100,000 rows with three secondary indexes: an update of
/// a non-indexed column writes 0 secondary entries, a unique secondary point lookup costs 2
/// descents, a primary-key range scan of 1,000 rows reads about rows / rows-per-leaf leaves.
/// Run with `cargo test --release -p storelab-clustered -- --ignored --nocapture`.
#[test]
#[ignore = "100,000 rows: run in release on demand"]
fn figures_on_100k_rows_with_three_secondaries() {
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig {
        page_size: PageSize::K8,
        pool_bytes: 64 << 20,
        commit_mode: CommitMode::Off,
        ..StorageConfig::default()
    };
    let e = ClusteredEngine::open(dir.path(), &storage, ClusteredOptions::default()).unwrap();
    let schema = Schema::builder("orders")
        .column("id", ColumnType::Int64)
        .column("customer", ColumnType::Int64)
        .column("day", ColumnType::Int64)
        .column("code", ColumnType::Text)
        .column("amount", ColumnType::Int64)
        .column("note", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_customer", &["customer"], false)
        .index("by_day", &["day"], false)
        .index("by_code", &["code"], true)
        .build()
        .unwrap();
    let t = e.create_table(schema).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let order = move |id: i64, rng: &mut rand::rngs::StdRng| {
        vec![
            Value::Int(id),
            Value::Int(rng.random_range(0..10_000)),
            Value::Int(id / 1000),
            Value::Text(format!("c{id:08}")),
            Value::Int(rng.random_range(0..1_000_000)),
            Value::Text("n".repeat(80)),
        ]
    };
    let ops: Vec<Op> = (0..100_000)
        .map(|id| Op::Insert(order(id, &mut rng)))
        .collect();
    for batch in ops.chunks(1000) {
        t.apply(batch).unwrap();
    }
    let c = |name: &str| counter(&t, name);
    let written = c("update_secondary_entries_written");
    t.update(&[Value::Int(500)], &[(4, Value::Int(7))]).unwrap();
    let non_indexed = c("update_secondary_entries_written") - written;
    t.update(&[Value::Int(501)], &[(1, Value::Int(77))])
        .unwrap();
    let indexed = c("update_secondary_entries_written") - written - non_indexed;
    let (s, p, pins) = (
        c("secondary_descents"),
        c("primary_descents"),
        c("scan_pages_touched"),
    );
    let found = t.lookup("by_code", &[Value::from("c00054321")]).unwrap();
    assert_eq!(found.len(), 1);
    let lookup_descents = c("secondary_descents") - s + c("primary_descents") - p;
    let lookup_pages = c("scan_pages_touched") - pins;
    let stats = t.stats().unwrap().counters;
    let rows_per_leaf = 100_000.0 / stats["primary_leaf_pages"] as f64;
    let before = c("primary_leaves_streamed");
    let range = ScanSpec {
        lower: Bound::Included(vec![Value::Int(40_000)]),
        upper: Bound::Excluded(vec![Value::Int(41_000)]),
        ..ScanSpec::default()
    };
    assert_eq!(all(&t, &range).len(), 1000);
    let leaves = c("primary_leaves_streamed") - before;
    println!("update of a non-indexed column: {non_indexed} secondary entries written");
    println!("update of one indexed column: {indexed} secondary entries written");
    println!("unique secondary point lookup: {lookup_descents} descents, {lookup_pages} pages");
    println!(
        "primary height {}, {} leaves, {rows_per_leaf:.1} rows per leaf, fill {} per mille",
        stats["primary_height"], stats["primary_leaf_pages"], stats["primary_leaf_fill_permille"]
    );
    println!(
        "range scan of 1000 rows: {leaves} leaves (1000 / {rows_per_leaf:.1} = {:.1})",
        1000.0 / rows_per_leaf
    );
    assert_eq!(non_indexed, 0);
    assert_eq!(indexed, 2);
    assert_eq!(lookup_descents, 2);
    assert!((leaves as f64) < 1000.0 / rows_per_leaf + 2.0);
    e.check().unwrap();
}
