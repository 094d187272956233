//! End-to-end behaviour of the tree through its public API.

mod common;

use std::collections::BTreeMap;
use std::ops::Bound;

use common::{open, small};
use storelab_btree::{Error, SplitPolicy};

fn key(i: u64) -> Vec<u8> {
    format!("key{i:08}").into_bytes()
}

/// Random inserts, gets, deletes and scans agree with a `BTreeMap`; the tree checks out after
/// every phase, and survives a reopen (recovery from the log).
#[test]
fn inserts_gets_deletes_scans_agree_with_btreemap() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = BTreeMap::new();
    {
        let (env, _) = open(dir.path(), small(SplitPolicy::Middle), 64);
        let mut x = 12345u64;
        for _ in 0..2000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = key((x >> 33) % 800);
            let v = vec![(x >> 20) as u8; ((x >> 40) % 40) as usize];
            env.tree.upsert(&k, &v).unwrap();
            model.insert(k, v);
        }
        env.tree.check().unwrap();
        for i in 0..800 {
            assert_eq!(
                env.tree.get(&key(i)).unwrap(),
                model.get(&key(i)).cloned(),
                "key {i}"
            );
        }
        for i in (0..800).step_by(3) {
            let present = env.tree.delete(&key(i)).unwrap();
            assert_eq!(present, model.remove(&key(i)).is_some());
        }
        env.tree.check().unwrap();
        let all: Vec<_> = env
            .tree
            .range(Bound::Unbounded, Bound::Unbounded)
            .map(|e| e.unwrap())
            .collect();
        let want: Vec<_> = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(all, want);
        let lo = key(100);
        let hi = key(500);
        let rev: Vec<_> = env
            .tree
            .range_rev(Bound::Excluded(&lo[..]), Bound::Included(&hi[..]))
            .map(|e| e.unwrap().0)
            .collect();
        let want_rev: Vec<_> = model
            .range((Bound::Excluded(lo.clone()), Bound::Included(hi.clone())))
            .rev()
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(rev, want_rev);
        assert!(matches!(
            env.tree.insert(&key(1), b"x"),
            Err(Error::DuplicateKey)
        ));
        env.wal.close().unwrap();
    }
    let (env, _) = open(dir.path(), small(SplitPolicy::Middle), 64);
    env.tree.check().unwrap();
    let all: Vec<_> = env
        .tree
        .range(Bound::Unbounded, Bound::Unbounded)
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(all.len(), model.len());
}

/// Values above the inline limit live in overflow chains, and are freed on delete.
#[test]
fn large_values_overflow_and_free() {
    let dir = tempfile::tempdir().unwrap();
    let (env, _) = open(dir.path(), small(SplitPolicy::Middle), 64);
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    env.tree.insert(b"big", &big).unwrap();
    env.tree.insert(b"small", b"v").unwrap();
    assert_eq!(env.tree.get(b"big").unwrap().unwrap(), big);
    let stats = env.tree.stats().unwrap();
    assert!(stats.overflow_count >= 5, "{stats:?}");
    env.tree.upsert(b"big", b"now small").unwrap();
    assert_eq!(env.tree.get(b"big").unwrap().unwrap(), b"now small");
    let stats = env.tree.stats().unwrap();
    assert_eq!(stats.overflow_count, 0);
    assert!(stats.free_count >= 5, "{stats:?}");
    env.tree.check().unwrap();
}

/// Ascending inserts with the insert-point policy leave full leaves; middle split leaves them
/// about half full.
#[test]
fn split_policy_shapes_leaf_fill() {
    for (policy, lo, hi) in [
        (SplitPolicy::InsertPoint, 0.9, 1.0),
        (SplitPolicy::Middle, 0.45, 0.6),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (env, _) = open(dir.path(), small(policy), 256);
        for i in 0..3000 {
            env.tree.insert(&key(i), b"0123456789").unwrap();
        }
        env.tree.check().unwrap();
        let s = env.tree.stats().unwrap();
        assert!(s.leaf_fill >= lo && s.leaf_fill <= hi, "{policy:?}: {s:?}");
    }
}

/// Bulk load builds a valid tree holding exactly its input.
#[test]
fn bulk_load_builds_a_valid_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (env, _) = open(dir.path(), small(SplitPolicy::Middle), 256);
    let n = env
        .tree
        .bulk_load((0..5000).map(|i| (key(i), vec![i as u8; 12])))
        .unwrap();
    assert_eq!(n, 5000);
    env.tree.check().unwrap();
    let s = env.tree.stats().unwrap();
    assert_eq!(s.entry_count, 5000);
    assert!(s.height >= 3, "{s:?}");
    for i in (0..5000).step_by(97) {
        assert_eq!(env.tree.get(&key(i)).unwrap().unwrap(), vec![i as u8; 12]);
    }
    assert_eq!(
        env.tree
            .count(Bound::Included(&key(10)[..]), Bound::Excluded(&key(20)[..]))
            .unwrap(),
        10
    );
}
