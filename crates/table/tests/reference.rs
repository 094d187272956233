//! The reference engine through the `Engine` and `Table` traits: the contract every engine
//! is tested against.

use std::collections::BTreeSet;
use std::ops::Bound;
use std::sync::Arc;

use proptest::prelude::*;
use storelab_table::ColumnType::{Bytes, Float64, Int64, Text};
use storelab_table::reference::ReferenceEngine;
use storelab_table::{Engine, Error, IndexScanMethod, Op, Row, ScanSpec, Schema, Table, Value};

const ROW_SIZE_MAX: usize = 256;

fn engine() -> ReferenceEngine {
    ReferenceEngine::new(ROW_SIZE_MAX)
}

/// users(id, email, city, score): primary key id, unique index on email, plain index on city.
fn users(engine: &ReferenceEngine) -> Arc<dyn Table> {
    let schema = Schema::builder("users")
        .column("id", Int64)
        .column("email", Text)
        .column("city", Text)
        .column("score", Float64)
        .primary_key(&["id"])
        .index("by_email", &["email"], true)
        .index("by_city", &["city"], false)
        .build()
        .unwrap();
    engine.create_table(schema).unwrap()
}

fn user(id: i64, email: &str, city: &str, score: f64) -> Row {
    vec![
        Value::Int(id),
        Value::from(email),
        Value::from(city),
        Value::Float(score),
    ]
}

fn int(v: i64) -> Vec<Value> {
    vec![Value::Int(v)]
}

fn text(v: &str) -> Vec<Value> {
    vec![Value::from(v)]
}

/// Every row in primary-key order.
fn all(table: &dyn Table) -> Vec<Row> {
    scan(table, &ScanSpec::default())
}

fn scan(table: &dyn Table, spec: &ScanSpec) -> Vec<Row> {
    let mut rows = Vec::new();
    let count = table
        .scan(spec, None, &mut |row| {
            rows.push(row);
            true
        })
        .unwrap();
    assert_eq!(count, rows.len() as u64);
    rows
}

fn ids(rows: &[Row]) -> Vec<i64> {
    rows.iter().map(|row| row[0].as_int().unwrap()).collect()
}

/// Ten users: ids 1..=10, cities cycling a, b, c, unique emails.
fn populated() -> (ReferenceEngine, Arc<dyn Table>) {
    let engine = engine();
    let table = users(&engine);
    let cities = ["a", "b", "c"];
    let ops: Vec<Op> = (1..=10)
        .map(|i| {
            Op::Insert(user(
                i,
                &format!("u{i}@x"),
                cities[i as usize % 3],
                i as f64,
            ))
        })
        .collect();
    assert_eq!(table.apply(&ops).unwrap(), vec![true; 10]);
    (engine, table)
}

/// Tables are created once, opened by name, listed sorted.
#[test]
fn engine_creates_and_opens_tables() {
    let engine = engine();
    users(&engine);
    let other = Schema::builder("aaa")
        .column("k", Bytes)
        .primary_key(&["k"])
        .build()
        .unwrap();
    engine.create_table(other).unwrap();
    assert_eq!(engine.table_names(), ["aaa", "users"]);
    assert_eq!(engine.open_table("users").unwrap().schema().name, "users");
    assert!(matches!(
        engine.open_table("nope"),
        Err(Error::NoSuchTable { .. })
    ));
    let again = engine.create_table(engine.open_table("users").unwrap().schema().clone());
    assert!(matches!(again, Err(Error::TableExists { .. })));
    assert_eq!(engine.name(), "reference");
    assert_eq!(engine.row_size_max(), ROW_SIZE_MAX);
    engine.check().unwrap();
}

/// A duplicate primary key is refused, named `primary`, and changes nothing.
#[test]
fn duplicate_primary_key_is_refused() {
    let (_engine, table) = populated();
    let before = all(&*table);
    let result = table.insert(user(3, "new@x", "a", 0.0));
    assert!(
        matches!(&result, Err(Error::DuplicateKey { index, .. }) if index == "primary"),
        "{result:?}"
    );
    assert_eq!(all(&*table), before);
    table.check().unwrap();
}

/// A unique index refuses a second live row with its key, on insert and on update, and
/// accepts the key again once its row is gone.
#[test]
fn unique_index_is_enforced_among_live_rows() {
    let (_engine, table) = populated();
    let dup = table.insert(user(11, "u1@x", "a", 0.0));
    assert!(matches!(&dup, Err(Error::DuplicateKey { index, .. }) if index == "by_email"));
    let dup = table.update(&int(2), &[(1, Value::from("u1@x"))]);
    assert!(matches!(&dup, Err(Error::DuplicateKey { index, .. }) if index == "by_email"));
    assert!(table.delete(&int(1)).unwrap());
    table.insert(user(11, "u1@x", "a", 0.0)).unwrap();
    assert!(
        table
            .update(&int(2), &[(1, Value::from("fresh@x"))])
            .unwrap()
    );
    // The non-unique index takes any number of rows per key.
    table.insert(user(12, "u12@x", "a", 0.0)).unwrap();
    assert_eq!(
        table.lookup("by_email", &text("u1@x")).unwrap(),
        vec![user(11, "u1@x", "a", 0.0)]
    );
    table.check().unwrap();
}

/// Wrong input of every kind returns its typed error and leaves the table unchanged.
#[test]
fn wrong_input_changes_nothing() {
    let (_engine, table) = populated();
    let before = all(&*table);
    let big = "x".repeat(ROW_SIZE_MAX);
    type ErrorCheck = fn(&Error) -> bool;
    let cases: Vec<(Op, ErrorCheck)> = vec![
        (Op::Insert(vec![Value::Int(20)]), |e| {
            matches!(
                e,
                Error::WrongArity {
                    expected: 4,
                    got: 1
                }
            )
        }),
        (
            Op::Insert(vec![
                Value::Int(20),
                Value::Int(1),
                Value::from("a"),
                Value::Float(0.0),
            ]),
            |e| matches!(e, Error::WrongType { .. }),
        ),
        (Op::Insert(user(20, &big, "a", 0.0)), |e| {
            matches!(e, Error::RowTooLarge { .. })
        }),
        (
            Op::Update {
                key: int(1),
                changes: vec![(0, Value::Int(99))],
            },
            |e| matches!(e, Error::PrimaryKeyChange { .. }),
        ),
        (
            Op::Update {
                key: int(1),
                changes: vec![(9, Value::Int(0))],
            },
            |e| matches!(e, Error::NoSuchColumn { .. }),
        ),
        (
            Op::Update {
                key: int(1),
                changes: vec![(3, Value::from("x"))],
            },
            |e| matches!(e, Error::WrongType { .. }),
        ),
        (
            Op::Update {
                key: int(1),
                changes: vec![(2, Value::from(big.as_str()))],
            },
            |e| matches!(e, Error::RowTooLarge { .. }),
        ),
        (Op::Delete { key: text("1") }, |e| {
            matches!(e, Error::WrongType { .. })
        }),
        (Op::Delete { key: vec![] }, |e| {
            matches!(e, Error::WrongArity { .. })
        }),
    ];
    for (op, expected) in cases {
        // Alone, and at the end of a batch whose earlier ops would succeed.
        let batch = [
            Op::Delete { key: int(5) },
            Op::Insert(user(30, "z@x", "a", 0.0)),
            op.clone(),
        ];
        for ops in [&[op.clone()][..], &batch[..]] {
            let result = table.apply(ops);
            assert!(result.as_ref().is_err_and(expected), "{op:?}: {result:?}");
            assert_eq!(all(&*table), before, "{op:?} changed the table");
        }
    }
    assert!(matches!(
        table.get(&text("x")),
        Err(Error::WrongType { .. })
    ));
    table.check().unwrap();
}

/// Ops of a batch see each other's effects; outcomes say whether updated and deleted rows
/// existed.
#[test]
fn batch_applies_ops_in_order() {
    let (_engine, table) = populated();
    let ops = [
        Op::Delete { key: int(1) },
        Op::Insert(user(1, "u1@x", "z", 0.0)),
        Op::Update {
            key: int(1),
            changes: vec![(3, Value::Float(9.0))],
        },
        Op::Insert(user(50, "u2@x-new", "z", 0.0)),
        Op::Delete { key: int(50) },
        Op::Delete { key: int(99) },
        Op::Update {
            key: int(99),
            changes: vec![],
        },
    ];
    let outcome = table.apply(&ops).unwrap();
    assert_eq!(outcome, [true, true, true, true, true, false, false]);
    assert_eq!(table.get(&int(1)).unwrap(), Some(user(1, "u1@x", "z", 9.0)));
    assert_eq!(table.get(&int(50)).unwrap(), None);
    assert_eq!(table.stats().unwrap().row_count, 10);
    table.check().unwrap();
}

/// Primary-key scans honour bounds, reverse order, limits, projections and predicates.
#[test]
fn primary_scans_honour_the_spec() {
    let (_engine, table) = populated();
    let range = |lower, upper| ScanSpec {
        lower,
        upper,
        ..ScanSpec::default()
    };
    let t = &*table;
    assert_eq!(
        ids(&scan(
            t,
            &range(Bound::Included(int(3)), Bound::Included(int(5)))
        )),
        [3, 4, 5]
    );
    assert_eq!(
        ids(&scan(
            t,
            &range(Bound::Excluded(int(3)), Bound::Excluded(int(5)))
        )),
        [4]
    );
    assert_eq!(
        ids(&scan(t, &range(Bound::Excluded(int(9)), Bound::Unbounded))),
        [10]
    );
    assert!(scan(t, &range(Bound::Included(int(5)), Bound::Excluded(int(5)))).is_empty());
    assert!(scan(t, &range(Bound::Included(int(6)), Bound::Included(int(2)))).is_empty());
    let spec = ScanSpec {
        lower: Bound::Included(int(2)),
        reverse: true,
        limit: Some(3),
        projection: Some(vec![3, 0]),
        ..ScanSpec::default()
    };
    let rows = scan(t, &spec);
    assert_eq!(
        rows,
        [
            vec![Value::Float(10.0), Value::Int(10)],
            vec![Value::Float(9.0), Value::Int(9)],
            vec![Value::Float(8.0), Value::Int(8)],
        ]
    );
    // The predicate sees whole rows (the city is not projected); the limit counts rows that
    // pass it.
    let in_a = |row: &Row| row[2] == Value::from("a");
    let spec = ScanSpec {
        limit: Some(2),
        projection: Some(vec![0]),
        ..ScanSpec::default()
    };
    let mut rows = Vec::new();
    let count = table.scan(&spec, Some(&in_a), &mut |row| {
        rows.push(row);
        true
    });
    assert_eq!(count.unwrap(), 2);
    assert_eq!(rows, [int(3), int(6)]);
    // A visitor that stops early.
    let mut seen = 0;
    let count = table.scan(&ScanSpec::default(), None, &mut |_| {
        seen += 1;
        seen < 4
    });
    assert_eq!(count.unwrap(), 4);
}

/// Bounds that are a prefix of a composite primary key select every key starting with them.
#[test]
fn composite_key_scans_by_prefix() {
    let engine = engine();
    let schema = Schema::builder("events")
        .column("user", Text)
        .column("seq", Int64)
        .column("body", Bytes)
        .primary_key(&["user", "seq"])
        .build()
        .unwrap();
    let table = engine.create_table(schema).unwrap();
    for user in ["a", "a\0", "ab", "b"] {
        for seq in [-1, 0, 7] {
            table
                .insert(vec![
                    Value::from(user),
                    Value::Int(seq),
                    Value::Bytes(vec![0]),
                ])
                .unwrap();
        }
    }
    let keys = |lower, upper| {
        let spec = ScanSpec {
            lower,
            upper,
            projection: Some(vec![0, 1]),
            ..ScanSpec::default()
        };
        scan(&*table, &spec)
    };
    let a = text("a");
    let only_a: Vec<Row> = [-1, 0, 7]
        .iter()
        .map(|&s| vec![Value::from("a"), Value::Int(s)])
        .collect();
    assert_eq!(
        keys(Bound::Included(a.clone()), Bound::Included(a.clone())),
        only_a
    );
    let after_a = keys(Bound::Excluded(a.clone()), Bound::Unbounded);
    assert_eq!(after_a.len(), 9);
    assert_eq!(after_a[0], vec![Value::from("a\0"), Value::Int(-1)]);
    let upto = vec![Value::from("ab"), Value::Int(0)];
    assert_eq!(keys(Bound::Unbounded, Bound::Included(upto)).len(), 8);
    let wrong = table.scan(
        &ScanSpec {
            lower: Bound::Included(int(1)),
            ..ScanSpec::default()
        },
        None,
        &mut |_| true,
    );
    assert!(matches!(wrong, Err(Error::WrongType { .. })));
}

/// Secondary scans return (index key, primary key) order; bitmap scans the same rows.
#[test]
fn secondary_scans_follow_index_order() {
    let (_engine, table) = populated();
    let by_city = |lower, upper, method| ScanSpec {
        index: Some("by_city".to_string()),
        lower,
        upper,
        method,
        ..ScanSpec::default()
    };
    let plain = scan(
        &*table,
        &by_city(
            Bound::Included(text("b")),
            Bound::Unbounded,
            IndexScanMethod::Plain,
        ),
    );
    assert_eq!(ids(&plain), [1, 4, 7, 10, 2, 5, 8]);
    let bitmap = scan(
        &*table,
        &by_city(
            Bound::Included(text("b")),
            Bound::Unbounded,
            IndexScanMethod::Bitmap,
        ),
    );
    let as_set = |rows: &[Row]| ids(rows).into_iter().collect::<BTreeSet<_>>();
    assert_eq!(as_set(&bitmap), as_set(&plain));
    let before_b = scan(
        &*table,
        &by_city(
            Bound::Unbounded,
            Bound::Excluded(text("b")),
            IndexScanMethod::Plain,
        ),
    );
    assert_eq!(ids(&before_b), [3, 6, 9]);
    assert_eq!(
        ids(&table.lookup("by_city", &text("c")).unwrap()),
        [2, 5, 8]
    );
    assert!(table.lookup("by_city", &text("zz")).unwrap().is_empty());

    let fails = |spec: ScanSpec| table.scan(&spec, None, &mut |_| true);
    let unknown = ScanSpec {
        index: Some("nope".to_string()),
        ..ScanSpec::default()
    };
    assert!(matches!(fails(unknown), Err(Error::NoSuchIndex { .. })));
    let reverse = ScanSpec {
        reverse: true,
        ..by_city(Bound::Unbounded, Bound::Unbounded, IndexScanMethod::Plain)
    };
    assert!(matches!(fails(reverse), Err(Error::InvalidArgument(_))));
    let too_long = by_city(
        Bound::Included(vec![Value::from("a"), Value::Int(1)]),
        Bound::Unbounded,
        IndexScanMethod::Plain,
    );
    assert!(matches!(fails(too_long), Err(Error::WrongArity { .. })));
    let projection = ScanSpec {
        projection: Some(vec![4]),
        ..ScanSpec::default()
    };
    assert!(matches!(fails(projection), Err(Error::NoSuchColumn { .. })));
}

/// A table without a primary key numbers its rows 1, 2, 3, ... in insert order; a failed
/// batch consumes no row id; the row id addresses get, update, delete and scans.
#[test]
fn keyless_table_uses_hidden_row_ids() {
    let engine = engine();
    let schema = Schema::builder("log")
        .column("line", Text)
        .index("by_line", &["line"], true)
        .build()
        .unwrap();
    let table = engine.create_table(schema).unwrap();
    table.insert(text("first")).unwrap();
    let failed = table.apply(&[Op::Insert(text("second")), Op::Insert(text("first"))]);
    assert!(matches!(failed, Err(Error::DuplicateKey { .. })));
    table
        .apply(&[Op::Insert(text("second")), Op::Insert(text("third"))])
        .unwrap();
    assert_eq!(table.get(&int(1)).unwrap(), Some(text("first")));
    assert_eq!(table.get(&int(2)).unwrap(), Some(text("second")));
    assert_eq!(table.get(&int(3)).unwrap(), Some(text("third")));
    assert!(table.update(&int(2), &[(0, Value::from("two"))]).unwrap());
    assert!(table.delete(&int(1)).unwrap());
    table.insert(text("fourth")).unwrap();
    assert_eq!(table.get(&int(4)).unwrap(), Some(text("fourth")));
    let spec = ScanSpec {
        lower: Bound::Excluded(int(2)),
        ..ScanSpec::default()
    };
    assert_eq!(scan(&*table, &spec), [text("third"), text("fourth")]);
    assert!(matches!(
        table.get(&text("1")),
        Err(Error::WrongType { .. })
    ));
    table.check().unwrap();
}

/// Float keys sort by total order: -inf < -0.0 < 0.0 < inf < NaN.
#[test]
fn float_keys_sort_by_total_order() {
    let engine = engine();
    let schema = Schema::builder("f")
        .column("x", Float64)
        .primary_key(&["x"])
        .build()
        .unwrap();
    let table = engine.create_table(schema).unwrap();
    for x in [f64::NAN, 0.0, f64::INFINITY, -0.0, f64::NEG_INFINITY] {
        table.insert(vec![Value::Float(x)]).unwrap();
    }
    let bits: Vec<u64> = all(&*table)
        .iter()
        .map(|row| match row[0] {
            Value::Float(x) => x.to_bits(),
            _ => unreachable!("a Float64 column"),
        })
        .collect();
    let expected: Vec<u64> = [f64::NEG_INFINITY, -0.0, 0.0, f64::INFINITY, f64::NAN]
        .iter()
        .map(|x| x.to_bits())
        .collect();
    assert_eq!(bits, expected);
}

/// One random op for the property test: small key spaces so that ops collide.
fn op() -> impl Strategy<Value = Op> {
    let id = 0i64..8;
    let email = (0u8..6).prop_map(|e| format!("e{e}"));
    prop_oneof![
        (id.clone(), email.clone()).prop_map(|(i, e)| Op::Insert(user(i, &e, "c", 0.0))),
        (id.clone(), email).prop_map(|(i, e)| Op::Update {
            key: int(i),
            changes: vec![(1, Value::from(e))]
        }),
        id.prop_map(|i| Op::Delete { key: int(i) }),
    ]
}

proptest! {
    /// After any sequence of batches the maps agree, and a failed batch left the rows as they
    /// were.
    #[test]
    fn random_batches_keep_maps_consistent(
        batches in proptest::collection::vec(proptest::collection::vec(op(), 1..5), 1..20),
    ) {
        let engine = engine();
        let table = users(&engine);
        for batch in &batches {
            let before = all(&*table);
            match table.apply(batch) {
                Ok(outcome) => prop_assert_eq!(outcome.len(), batch.len()),
                Err(e) => {
                    prop_assert!(matches!(e, Error::DuplicateKey { .. }), "{:?}", e);
                    prop_assert_eq!(all(&*table), before);
                }
            }
            table.check().unwrap();
        }
    }
}
