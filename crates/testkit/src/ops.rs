//! One op vocabulary for the whole `Engine`/`Table` API, and one proptest strategy over it.
//!
//! A [`TestOp`] names its table and describes rows, keys and bounds as small numbers
//! ([`RowSpec`], [`Bounds`]): a failing case prints readably and shrinks well. The model
//! checker ([`crate::model`]) turns each op into the real call with [`TableKind::row`] and
//! friends; engines never see these types.
//!
//! What [`op_sequence`] draws, with weights (out of about 40):
//!
//! | op | weight | what it exercises |
//! |---|---|---|
//! | insert | 8 | new rows, duplicate primary and unique keys, rows over `row_size_max` |
//! | update | 7 | indexed (`a`, `b`) and non-indexed (`c`, `pad`) columns, growing rows, a primary-key change |
//! | delete | 3 | present and absent keys |
//! | batch | 4 | 2 to 6 writes through `apply`; a third of them end in a copy of their first insert, so the batch fails and must change nothing |
//! | get | 4 | point reads by key or row id |
//! | lookup | 2 | secondary equality lookups (`Table::lookup`) |
//! | scan | 6 | primary ranges (bounds in/excluded, reverse), secondary ranges (plain and bitmap), full scans; limit, projection, predicate, a visitor that stops early |
//! | maintain | 1 | `Table::maintain` (VACUUM, compaction) |
//! | checkpoint | 1 | `Engine::checkpoint` |
//! | reopen | 1 | a clean close and reopen (recovery of a clean shutdown) |
//!
//! Keys come from small domains ([`ID_DOMAIN`], [`A_DOMAIN`], [`B_DOMAIN`]), so ops collide:
//! updates and deletes mostly find their row, inserts often hit a duplicate. Three quarters
//! of the ops go to the keyed table, a quarter to the unkeyed one.

use std::ops::Bound;

use proptest::prelude::*;
use storelab_table::IndexScanMethod;

use crate::schema::{A_DOMAIN, B_DOMAIN, Col, ID_DOMAIN, Pad, RowSpec, SecondaryIndex, TableKind};

/// A change of one column in an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// Set `a` (indexed, non-unique).
    A(i64),
    /// Set `b` to number `n` (indexed, unique).
    B(i64),
    /// Set `c` (not indexed).
    C(i64),
    /// Set `pad` (not indexed; grows or shrinks the row).
    Pad(Pad),
    /// An invalid change: the primary key `id` in the keyed table (`PrimaryKeyChange`), a text
    /// into `a` in the unkeyed table (`WrongType`).
    Invalid(i64),
}

/// One write, alone or in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// Insert a row.
    Insert(RowSpec),
    /// Update the row with this key (primary key, or row id in the unkeyed table).
    Update {
        /// The key.
        key: i64,
        /// The changes, each column at most once.
        changes: Vec<Change>,
    },
    /// Delete the row with this key.
    Delete {
        /// The key.
        key: i64,
    },
}

/// A row predicate for scans, applied to whole rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PredicateSpec {
    /// `c < n`.
    CBelow(i64),
    /// `a == n`.
    AEquals(i64),
    /// The padding is longer than `n` bytes.
    PadLonger(usize),
}

/// A scan's bounds on its key's only column, as numbers (see [`SecondaryIndex::key_value`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Lower bound.
    pub lower: Bound<i64>,
    /// Upper bound.
    pub upper: Bound<i64>,
}

/// A scan: which key, bounds, order, and what comes back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanOp {
    /// `None`: the primary key (a full scan when both bounds are unbounded); `Some`: that
    /// secondary index.
    pub index: Option<SecondaryIndex>,
    /// Bounds on the scanned key.
    pub bounds: Bounds,
    /// Descending order (legal on primary-key scans only; a secondary reverse scan must fail
    /// with `InvalidArgument` everywhere).
    pub reverse: bool,
    /// Plain or bitmap (secondary scans).
    pub method: IndexScanMethod,
    /// `ScanSpec::limit`.
    pub limit: Option<usize>,
    /// Columns to return (`None`: whole rows); `Id` is dropped for the unkeyed table.
    pub projection: Option<Vec<Col>>,
    /// A predicate on whole rows.
    pub predicate: Option<PredicateSpec>,
    /// The visitor returns `false` after this many rows.
    pub stop_after: Option<usize>,
    /// `ScanSpec::prefetch_depth`.
    pub prefetch_depth: Option<usize>,
}

/// One step of a test: a call of the `Engine`/`Table` API, described by small numbers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestOp {
    /// One write through `Table::insert`, `update` or `delete`.
    Write(TableKind, WriteOp),
    /// Several writes through `Table::apply`, atomically.
    Batch(TableKind, Vec<WriteOp>),
    /// `Table::get`.
    Get(TableKind, i64),
    /// `Table::lookup` of `index` key number `key`.
    Lookup(TableKind, SecondaryIndex, i64),
    /// `Table::scan`.
    Scan(TableKind, ScanOp),
    /// `Table::maintain`.
    Maintain(TableKind),
    /// `Engine::checkpoint`.
    Checkpoint,
    /// Close the engine cleanly and open it again.
    Reopen,
}

/// Which ops [`op_sequence_with`] may draw: engines (or harnesses) that cannot reopen turn
/// `reopen` off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpMix {
    /// Draw [`TestOp::Reopen`].
    pub reopen: bool,
    /// Draw [`TestOp::Checkpoint`].
    pub checkpoint: bool,
    /// Draw [`TestOp::Maintain`].
    pub maintain: bool,
}

impl Default for OpMix {
    /// Everything.
    fn default() -> Self {
        OpMix {
            reopen: true,
            checkpoint: true,
            maintain: true,
        }
    }
}

/// Either table: the keyed one three times as often.
pub fn table_kind() -> impl Strategy<Value = TableKind> {
    prop_oneof![3 => Just(TableKind::Keyed), 1 => Just(TableKind::Unkeyed)]
}

/// A key: a primary key, or a row id (row ids start at 1, so 0 is an absent row id).
pub fn key() -> impl Strategy<Value = i64> {
    0..ID_DOMAIN
}

/// A padding length: mostly short, some hundreds of bytes, some a large part of a page (so
/// rows move between pages), rarely over the limit.
pub fn pad() -> impl Strategy<Value = Pad> {
    prop_oneof![
        14 => (0..40usize).prop_map(Pad::Len),
        4 => (100..1200usize).prop_map(Pad::Len),
        2 => (1500..3600usize).prop_map(Pad::Len),
        1 => Just(Pad::TooLarge),
    ]
}

/// A row.
pub fn row_spec() -> impl Strategy<Value = RowSpec> {
    (key(), 0..A_DOMAIN, 0..B_DOMAIN, 0..1000i64, pad()).prop_map(|(id, a, b, c, pad)| RowSpec {
        id,
        a,
        b,
        c,
        pad,
    })
}

/// One column change.
pub fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        4 => (0..A_DOMAIN).prop_map(Change::A),
        3 => (0..B_DOMAIN).prop_map(Change::B),
        5 => (0..1000i64).prop_map(Change::C),
        4 => pad().prop_map(Change::Pad),
        1 => key().prop_map(Change::Invalid),
    ]
}

/// The column a change sets (changes of one update set distinct columns).
fn change_column(change: &Change) -> u8 {
    match change {
        Change::A(_) => 0,
        Change::B(_) => 1,
        Change::C(_) => 2,
        Change::Pad(_) => 3,
        Change::Invalid(_) => 4,
    }
}

/// One to three changes of distinct columns.
pub fn changes() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec(change(), 1..4).prop_map(|mut changes| {
        let mut seen = Vec::new();
        changes.retain(|c| {
            let column = change_column(c);
            let new = !seen.contains(&column);
            seen.push(column);
            new
        });
        changes
    })
}

/// One write.
pub fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        8 => row_spec().prop_map(WriteOp::Insert),
        7 => (key(), changes()).prop_map(|(key, changes)| WriteOp::Update { key, changes }),
        3 => key().prop_map(|key| WriteOp::Delete { key }),
    ]
}

/// 2 to 6 writes; a third of the batches end with a copy of their first insert, which fails
/// with `DuplicateKey` unless the batch deleted (or changed the key of) that row in between.
pub fn batch() -> impl Strategy<Value = Vec<WriteOp>> {
    (proptest::collection::vec(write_op(), 2..7), 0..3u8).prop_map(|(mut ops, dup)| {
        if dup == 0
            && let Some(first) = ops
                .iter()
                .find(|op| matches!(op, WriteOp::Insert(_)))
                .cloned()
        {
            ops.push(first);
        }
        ops
    })
}

/// A bound on a key of numbers in `0..domain` (a little past both ends, to cover empty and
/// whole ranges).
pub fn bound(domain: i64) -> impl Strategy<Value = Bound<i64>> {
    prop_oneof![
        1 => Just(Bound::Unbounded),
        2 => (-1..domain + 1).prop_map(Bound::Included),
        2 => (-1..domain + 1).prop_map(Bound::Excluded),
    ]
}

/// Bounds on a key of numbers in `0..domain`.
pub fn bounds(domain: i64) -> impl Strategy<Value = Bounds> {
    (bound(domain), bound(domain)).prop_map(|(lower, upper)| Bounds { lower, upper })
}

/// A projection of one to three columns in any order, or none.
pub fn projection() -> impl Strategy<Value = Option<Vec<Col>>> {
    let col = prop_oneof![
        Just(Col::Id),
        Just(Col::A),
        Just(Col::B),
        Just(Col::C),
        Just(Col::Pad)
    ];
    prop_oneof![
        3 => Just(None),
        1 => proptest::collection::vec(col, 1..4).prop_map(Some),
    ]
}

/// A predicate, or none.
pub fn predicate() -> impl Strategy<Value = Option<PredicateSpec>> {
    prop_oneof![
        4 => Just(None),
        1 => (0..1000i64).prop_map(|n| Some(PredicateSpec::CBelow(n))),
        1 => (0..A_DOMAIN).prop_map(|n| Some(PredicateSpec::AEquals(n))),
        1 => (0..1500usize).prop_map(|n| Some(PredicateSpec::PadLonger(n))),
    ]
}

/// The parts every scan shares: limit, projection, predicate, early stop, prefetch depth.
#[allow(clippy::type_complexity)] // A tuple strategy, named once here.
fn scan_extras() -> impl Strategy<
    Value = (
        Option<usize>,
        Option<Vec<Col>>,
        Option<PredicateSpec>,
        Option<usize>,
        Option<usize>,
    ),
> {
    (
        prop_oneof![3 => Just(None), 2 => (0..8usize).prop_map(Some)],
        projection(),
        predicate(),
        prop_oneof![5 => Just(None), 1 => (1..5usize).prop_map(Some)],
        prop_oneof![Just(None), Just(Some(0)), Just(Some(4))],
    )
}

/// A primary-key range scan (reverse half of the time).
pub fn primary_scan() -> impl Strategy<Value = ScanOp> {
    (bounds(ID_DOMAIN), any::<bool>(), scan_extras()).prop_map(
        |(bounds, reverse, (limit, projection, predicate, stop_after, prefetch_depth))| ScanOp {
            index: None,
            bounds,
            reverse,
            method: IndexScanMethod::Plain,
            limit,
            projection,
            predicate,
            stop_after,
            prefetch_depth,
        },
    )
}

/// A full scan: no index, both bounds unbounded, forward (rows in the engine's order).
pub fn full_scan() -> impl Strategy<Value = ScanOp> {
    scan_extras().prop_map(
        |(limit, projection, predicate, stop_after, prefetch_depth)| ScanOp {
            index: None,
            bounds: Bounds {
                lower: Bound::Unbounded,
                upper: Bound::Unbounded,
            },
            reverse: false,
            method: IndexScanMethod::Plain,
            limit,
            projection,
            predicate,
            stop_after,
            prefetch_depth,
        },
    )
}

/// A secondary index: `by_a` twice as often as the unique `by_b`.
pub fn secondary_index() -> impl Strategy<Value = SecondaryIndex> {
    prop_oneof![2 => Just(SecondaryIndex::ByA), 1 => Just(SecondaryIndex::ByB)]
}

/// A secondary range scan, plain or bitmap; one in ten asks for reverse order, which every
/// engine must refuse.
pub fn secondary_scan() -> impl Strategy<Value = ScanOp> {
    (
        secondary_index(),
        any::<bool>(),
        0..10u8,
        scan_extras(),
        bounds(A_DOMAIN.max(B_DOMAIN)),
    )
        .prop_map(
            |(
                index,
                bitmap,
                reverse,
                (limit, projection, predicate, stop_after, prefetch_depth),
                bounds,
            )| {
                let domain = match index {
                    SecondaryIndex::ByA => A_DOMAIN,
                    SecondaryIndex::ByB => B_DOMAIN,
                };
                // Bounds are drawn for the larger domain; fold them into this index's.
                let fold = |b: Bound<i64>| match b {
                    Bound::Included(n) => Bound::Included(n.rem_euclid(domain + 2) - 1),
                    Bound::Excluded(n) => Bound::Excluded(n.rem_euclid(domain + 2) - 1),
                    Bound::Unbounded => Bound::Unbounded,
                };
                ScanOp {
                    index: Some(index),
                    bounds: Bounds {
                        lower: fold(bounds.lower),
                        upper: fold(bounds.upper),
                    },
                    reverse: reverse == 0,
                    method: if bitmap {
                        IndexScanMethod::Bitmap
                    } else {
                        IndexScanMethod::Plain
                    },
                    limit,
                    projection,
                    predicate,
                    stop_after,
                    prefetch_depth,
                }
            },
        )
}

/// Any scan.
pub fn scan() -> impl Strategy<Value = ScanOp> {
    prop_oneof![2 => primary_scan(), 2 => secondary_scan(), 1 => full_scan()]
}

/// A secondary lookup key number for `index`.
fn lookup() -> impl Strategy<Value = (SecondaryIndex, i64)> {
    secondary_index().prop_flat_map(|index| {
        let domain = match index {
            SecondaryIndex::ByA => A_DOMAIN,
            SecondaryIndex::ByB => B_DOMAIN,
        };
        (Just(index), 0..domain)
    })
}

/// One op of any kind that `mix` allows (weights in the module doc).
pub fn test_op(mix: OpMix) -> impl Strategy<Value = TestOp> {
    let mut options: Vec<(u32, BoxedStrategy<TestOp>)> = vec![
        (
            18,
            (table_kind(), write_op())
                .prop_map(|(t, op)| TestOp::Write(t, op))
                .boxed(),
        ),
        (
            4,
            (table_kind(), batch())
                .prop_map(|(t, ops)| TestOp::Batch(t, ops))
                .boxed(),
        ),
        (
            4,
            (table_kind(), key())
                .prop_map(|(t, k)| TestOp::Get(t, k))
                .boxed(),
        ),
        (
            2,
            (table_kind(), lookup())
                .prop_map(|(t, (i, k))| TestOp::Lookup(t, i, k))
                .boxed(),
        ),
        (
            6,
            (table_kind(), scan())
                .prop_map(|(t, s)| TestOp::Scan(t, s))
                .boxed(),
        ),
    ];
    // proptest refuses zero weights, so the optional kinds are left out instead.
    if mix.maintain {
        options.push((1, table_kind().prop_map(TestOp::Maintain).boxed()));
    }
    if mix.checkpoint {
        options.push((1, Just(TestOp::Checkpoint).boxed()));
    }
    if mix.reopen {
        options.push((1, Just(TestOp::Reopen).boxed()));
    }
    proptest::strategy::Union::new_weighted(options)
}

/// A sequence of 1 to 100 ops of every kind.
pub fn op_sequence() -> impl Strategy<Value = Vec<TestOp>> {
    op_sequence_with(OpMix::default(), 1..100)
}

/// A sequence of ops that `mix` allows, of a length in `len`.
pub fn op_sequence_with(
    mix: OpMix,
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = Vec<TestOp>> {
    proptest::collection::vec(test_op(mix), len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    /// A few hundred drawn ops cover every kind, both tables and failing batches.
    #[test]
    fn strategy_draws_every_kind_of_op() {
        let mut runner = TestRunner::deterministic();
        let mut kinds = std::collections::BTreeSet::new();
        let mut duplicate_batches = 0;
        for _ in 0..40 {
            let ops = op_sequence().new_tree(&mut runner).unwrap().current();
            for op in ops {
                let kind = match &op {
                    TestOp::Write(t, WriteOp::Insert(_)) => format!("insert {t:?}"),
                    TestOp::Write(t, WriteOp::Update { .. }) => format!("update {t:?}"),
                    TestOp::Write(t, WriteOp::Delete { .. }) => format!("delete {t:?}"),
                    TestOp::Batch(_, ops) => {
                        let first = ops.iter().find(|o| matches!(o, WriteOp::Insert(_)));
                        if first.is_some() && ops.last() == first && ops.len() > 1 {
                            duplicate_batches += 1;
                        }
                        "batch".into()
                    }
                    TestOp::Scan(_, s) => format!("scan {:?} {:?}", s.index, s.method),
                    other => format!("{:?}", std::mem::discriminant(other)),
                };
                kinds.insert(kind);
            }
        }
        assert!(kinds.len() >= 15, "{kinds:?}");
        assert!(duplicate_batches > 0);
    }
}
