//! How two engines' answers to one scan are compared: which part of the order is promised.
//!
//! The `Table` contract fixes some of a scan's order and leaves the rest to the engine:
//!
//! | scan | order promised | compared |
//! |---|---|---|
//! | primary key, a bound or `reverse` | key order | exactly |
//! | full scan (no index, both bounds unbounded, forward) | none: the engine's order | as multisets |
//! | secondary, `Plain` | index key order; rows with equal keys in the engine's order | group by group |
//! | secondary, `Bitmap` | none: physical order | as multisets |
//!
//! With a limit (or a visitor that stops early) an unordered scan may return any `n` of the
//! rows it selects, and an index scan any `n` rows of the last key group it reaches. So the
//! comparison needs the whole selection of one side as full rows: [`compare_scan`] takes it as
//! `selected`, that side's answer to the same spec with no limit and no projection.

use std::cmp::Ordering;
use std::ops::Bound;

use storelab_table::{IndexDef, IndexScanMethod, Row, ScanSpec, Schema, Value};

/// Which order a scan's rows are promised in (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanOrder<'s> {
    /// Primary-key order (or its reverse): the rows are the same list everywhere.
    Key,
    /// Index key order of this index, ties in the engine's order.
    IndexKey(&'s IndexDef),
    /// The engine's own order.
    Engine,
}

impl<'s> ScanOrder<'s> {
    /// The order `spec` promises on a table of `schema`; the spec must be valid.
    pub fn of(schema: &'s Schema, spec: &ScanSpec) -> ScanOrder<'s> {
        match &spec.index {
            Some(name) => match spec.method {
                IndexScanMethod::Plain => {
                    ScanOrder::IndexKey(schema.index(name).expect("a validated spec's index"))
                }
                IndexScanMethod::Bitmap => ScanOrder::Engine,
            },
            None if is_full_scan(spec) => ScanOrder::Engine,
            None => ScanOrder::Key,
        }
    }
}

/// Whether `spec` is a full scan: no index, both bounds unbounded, forward.
pub fn is_full_scan(spec: &ScanSpec) -> bool {
    spec.index.is_none()
        && matches!(spec.lower, Bound::Unbounded)
        && matches!(spec.upper, Bound::Unbounded)
        && !spec.reverse
}

/// Rows sorted by [`Value::tuple_cmp`]: a canonical form of a multiset of rows.
pub fn sorted(rows: &[Row]) -> Vec<Row> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| Value::tuple_cmp(a, b));
    rows
}

/// Whether every row of `part` is in `whole`, counting repeats.
fn is_sub_multiset(part: &[Row], whole: &[Row]) -> bool {
    let (part, whole) = (sorted(part), sorted(whole));
    let mut rest = whole.iter();
    part.iter().all(|row| {
        rest.by_ref()
            .find(|candidate| Value::tuple_cmp(candidate, row) != Ordering::Less)
            .is_some_and(|candidate| Value::tuple_cmp(candidate, row) == Ordering::Equal)
    })
}

/// Checks one side's answer `got` to `spec` against the other side's `want`, where
/// `selected` is the other side's answer with no limit and no projection (full rows, its own
/// order, the predicate applied). `Err` says what differs.
pub fn compare_scan(
    schema: &Schema,
    spec: &ScanSpec,
    selected: &[Row],
    got: &[Row],
    want: &[Row],
) -> Result<(), String> {
    if got.len() != want.len() {
        return Err(format!(
            "{} rows instead of {}:\n  got  {got:?}\n  want {want:?}",
            got.len(),
            want.len()
        ));
    }
    let project = |rows: &[Row]| -> Vec<Row> {
        match &spec.projection {
            Some(columns) => rows.iter().map(|r| schema.project(r, columns)).collect(),
            None => rows.to_vec(),
        }
    };
    match ScanOrder::of(schema, spec) {
        ScanOrder::Key => {
            if got != want {
                return Err(format!(
                    "rows differ in key order:\n  got  {got:?}\n  want {want:?}"
                ));
            }
        }
        ScanOrder::Engine => {
            if !is_sub_multiset(got, &project(selected)) {
                return Err(format!(
                    "rows are not among the {} selected (in any order):\n  got  {got:?}\n  \
                     want {want:?}",
                    selected.len()
                ));
            }
        }
        ScanOrder::IndexKey(index) => {
            // Walk `got` through the selection's groups of equal index keys, in index order:
            // each whole group must come out complete (in any order), and the last one reached
            // may be cut short by the limit.
            let mut at = 0;
            let mut group_start = 0;
            while at < got.len() {
                let key = schema.index_key_of(index, &selected[group_start]);
                let group_end = selected[group_start..]
                    .iter()
                    .position(|r| schema.index_key_of(index, r) != key)
                    .map_or(selected.len(), |n| group_start + n);
                let group = project(&selected[group_start..group_end]);
                let take = group.len().min(got.len() - at);
                let chunk = &got[at..at + take];
                let ok = if take == group.len() {
                    sorted(chunk) == sorted(&group)
                } else {
                    is_sub_multiset(chunk, &group)
                };
                if !ok {
                    return Err(format!(
                        "rows {at}..{} are not the rows with index key {key:?}:\n  got  \
                         {chunk:?}\n  want {group:?}\n  (whole answer: got {got:?}, want \
                         {want:?})",
                        at + take
                    ));
                }
                at += take;
                group_start = group_end;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TableKind;

    fn row(id: i64, a: i64) -> Row {
        vec![
            Value::Int(id),
            Value::Int(a),
            Value::from(format!("b{id:03}")),
            Value::Int(0),
            Value::from(""),
        ]
    }

    /// Ties of a plain index scan may come in any order, but groups may not mix; a cut group
    /// may hold any of its rows.
    #[test]
    fn index_scans_compare_group_by_group() {
        let schema = TableKind::Keyed.schema();
        let spec = ScanSpec {
            index: Some("by_a".into()),
            ..ScanSpec::default()
        };
        let selected = [row(1, 0), row(2, 0), row(3, 1), row(4, 1)];
        let swapped = [row(2, 0), row(1, 0), row(4, 1), row(3, 1)];
        compare_scan(&schema, &spec, &selected, &swapped, &selected).unwrap();
        let mixed = [row(1, 0), row(3, 1), row(2, 0), row(4, 1)];
        assert!(compare_scan(&schema, &spec, &selected, &mixed, &selected).is_err());
        compare_scan(&schema, &spec, &selected, &swapped[..3], &selected[..3]).unwrap();
        let wrong_cut = [row(1, 0), row(2, 0), row(2, 0)];
        assert!(compare_scan(&schema, &spec, &selected, &wrong_cut, &selected[..3]).is_err());
    }

    /// Key-ordered scans must match exactly; full scans only as multisets.
    #[test]
    fn key_scans_compare_exactly_and_full_scans_as_sets() {
        let schema = TableKind::Keyed.schema();
        let selected = [row(1, 0), row(2, 0)];
        let reversed = [row(2, 0), row(1, 0)];
        let full = ScanSpec::default();
        compare_scan(&schema, &full, &selected, &reversed, &selected).unwrap();
        let ranged = ScanSpec {
            lower: Bound::Included(vec![Value::Int(0)]),
            ..ScanSpec::default()
        };
        assert!(compare_scan(&schema, &ranged, &selected, &reversed, &selected).is_err());
        assert!(compare_scan(&schema, &full, &selected, &[row(3, 0)], &[row(1, 0)]).is_err());
    }
}
