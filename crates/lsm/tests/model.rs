//! Model test: random operation sequences on the tree and on a `BTreeMap` must agree, with
//! tiny memtables and tables (so flushes and compactions happen every few operations),
//! reopens in the middle, and `check()` after every step.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use proptest::prelude::*;
use storelab_lsm::{CompactionStyle, LsmConfig};

#[derive(Clone, Debug)]
enum Op {
    Put(u16, usize),
    Delete(u16),
    Batch(Vec<(u16, Option<usize>)>),
    Get(u16),
    Range(u16, u16, bool),
    Flush,
    Compact,
    Reopen,
}

fn key(k: u16) -> Vec<u8> {
    format!("k{k:03}").into_bytes()
}

fn value(k: u16, len: usize, step: usize) -> Vec<u8> {
    let mut v = format!("{k}:{step}:").into_bytes();
    v.resize(v.len() + len, b'x');
    v
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0u16..120;
    prop_oneof![
        8 => (k.clone(), 0usize..60).prop_map(|(k, l)| Op::Put(k, l)),
        3 => k.clone().prop_map(Op::Delete),
        2 => prop::collection::vec((k.clone(), prop::option::of(0usize..30)), 1..8)
            .prop_map(Op::Batch),
        3 => k.clone().prop_map(Op::Get),
        2 => (k.clone(), k, any::<bool>()).prop_map(|(a, b, r)| Op::Range(a, b, r)),
        1 => Just(Op::Flush),
        1 => Just(Op::Compact),
        1 => Just(Op::Reopen),
    ]
}

fn run(ops: &[Op], style: CompactionStyle) {
    let dir = tempfile::tempdir().unwrap();
    let config = LsmConfig {
        compaction: style,
        ..LsmConfig::tiny()
    };
    let mut db = Some(common::open(dir.path(), &config, common::sync_backend()).unwrap());
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        let lsm = &db.as_ref().unwrap().lsm;
        match op {
            Op::Put(k, len) => {
                let v = value(*k, *len, step);
                lsm.put(&key(*k), &v).unwrap();
                model.insert(key(*k), v);
            }
            Op::Delete(k) => {
                lsm.delete(&key(*k)).unwrap();
                model.remove(&key(*k));
            }
            Op::Batch(items) => {
                let owned: Vec<(Vec<u8>, Option<Vec<u8>>)> = items
                    .iter()
                    .map(|(k, l)| (key(*k), l.map(|l| value(*k, l, step))))
                    .collect();
                let ops: Vec<(&[u8], Option<&[u8]>)> = owned
                    .iter()
                    .map(|(k, v)| (k.as_slice(), v.as_deref()))
                    .collect();
                lsm.write_batch(&ops).unwrap();
                for (k, v) in owned {
                    match v {
                        Some(v) => model.insert(k, v),
                        None => model.remove(&k),
                    };
                }
            }
            Op::Get(k) => {
                assert_eq!(
                    lsm.get(&key(*k)).unwrap(),
                    model.get(&key(*k)).cloned(),
                    "step {step}"
                );
            }
            Op::Range(a, b, rev) => {
                let (lo, hi) = (key(*a.min(b)), key(*a.max(b)));
                let expect: Vec<(Vec<u8>, Vec<u8>)> = model
                    .range::<[u8], _>((
                        Bound::Included(lo.as_slice()),
                        Bound::Excluded(hi.as_slice()),
                    ))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let bounds = (
                    Bound::Included(lo.as_slice()),
                    Bound::Excluded(hi.as_slice()),
                );
                let mut got: Vec<(Vec<u8>, Vec<u8>)> = if *rev {
                    lsm.range_rev(bounds.0, bounds.1)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                } else {
                    lsm.range(bounds.0, bounds.1)
                        .unwrap()
                        .map(Result::unwrap)
                        .collect()
                };
                if *rev {
                    got.reverse();
                }
                assert_eq!(got, expect, "step {step}");
            }
            Op::Flush => lsm.flush().unwrap(),
            Op::Compact => lsm.compact().unwrap(),
            Op::Reopen => {
                drop(db.take());
                db = Some(common::open(dir.path(), &config, common::sync_backend()).unwrap());
            }
        }
        db.as_ref().unwrap().lsm.check().unwrap();
    }
    let lsm = &db.as_ref().unwrap().lsm;
    let all: Vec<(Vec<u8>, Vec<u8>)> = lsm
        .range(Bound::Unbounded, Bound::Unbounded)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let expect: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
    assert_eq!(all, expect);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if std::env::var("STORELAB_LONG").is_ok() { 256 } else { 24 },
        ..ProptestConfig::default()
    })]

    /// The leveled tree agrees with a BTreeMap through flushes, compactions and reopens.
    #[test]
    fn leveled_tree_matches_btreemap(ops in prop::collection::vec(op(), 1..200)) {
        run(&ops, CompactionStyle::Leveled);
    }

    /// The size-tiered tree agrees with a BTreeMap too.
    #[test]
    fn tiered_tree_matches_btreemap(ops in prop::collection::vec(op(), 1..200)) {
        run(&ops, CompactionStyle::Tiered);
    }
}
