//! The test schemas and their rows.
//!
//! Every engine's tests use the same two tables, chosen so that one short op sequence meets
//! every path of an engine: a primary key and a hidden row id, a unique and a non-unique
//! secondary index, an indexed and a non-indexed column to update (HOT versus non-HOT in the
//! heap, secondary work versus none in the clustered engine), and a padding column that makes
//! rows grow and shrink across page boundaries.
//!
//! ```text
//!   table "t" (TableKind::Keyed)            table "u" (TableKind::Unkeyed)
//!   col  name  type    index                col  name  type    index
//!   0    id    Int64   primary key          -    (hidden row id 1, 2, 3, ...)
//!   1    a     Int64   by_a (non-unique)    0    a     Int64   by_a (non-unique)
//!   2    b     Text    by_b (unique)        1    b     Text    by_b (unique)
//!   3    c     Int64   -                    2    c     Int64   -
//!   4    pad   Text    -                    3    pad   Text    -
//! ```
//!
//! A row is described by a small [`RowSpec`] (numbers from small domains, so ops collide on
//! keys) and built for a table by [`TableKind::row`]. `b` is the text `b` followed by three
//! digits, so its byte order is its number's order and scan bounds on `by_b` are numbers too.

use storelab_table::{ColumnType, Row, Schema, Value, encoded_row_size};

/// The keyed table's name.
pub const KEYED_TABLE_NAME: &str = "t";
/// The unkeyed table's name.
pub const UNKEYED_TABLE_NAME: &str = "u";
/// The non-unique secondary index on `a`.
pub const INDEX_BY_A: &str = "by_a";
/// The unique secondary index on `b`.
pub const INDEX_BY_B: &str = "by_b";

/// Primary keys (and row ids, which start at 1) are drawn from `0..ID_DOMAIN`.
pub const ID_DOMAIN: i64 = 40;
/// Values of the non-unique indexed column `a` are drawn from `0..A_DOMAIN`: many rows share
/// an `a`, so lookups return several rows with equal index keys.
pub const A_DOMAIN: i64 = 6;
/// Numbers of the unique column `b` are drawn from `0..B_DOMAIN`: inserts and updates often
/// collide on it.
pub const B_DOMAIN: i64 = 40;

/// One of the two test tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TableKind {
    /// Table "t", primary key `id`.
    Keyed,
    /// Table "u", no primary key: rows are keyed by hidden row ids.
    Unkeyed,
}

/// Both tables, in the order the kit creates them.
pub const TABLE_KINDS: [TableKind; 2] = [TableKind::Keyed, TableKind::Unkeyed];

/// A column of the test tables, by role (the unkeyed table has no `Id`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Col {
    /// `id`, the keyed table's primary key.
    Id,
    /// `a`, indexed by `by_a`.
    A,
    /// `b`, indexed by the unique `by_b`.
    B,
    /// `c`, not indexed.
    C,
    /// `pad`, not indexed; its length varies.
    Pad,
}

/// A secondary index of the test tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecondaryIndex {
    /// `by_a`, non-unique, on `a`.
    ByA,
    /// `by_b`, unique, on `b`.
    ByB,
}

impl SecondaryIndex {
    /// The index's name in the schema.
    pub fn name(self) -> &'static str {
        match self {
            SecondaryIndex::ByA => INDEX_BY_A,
            SecondaryIndex::ByB => INDEX_BY_B,
        }
    }

    /// The key value for number `n`: `Int(n)` for `by_a`, the text `bNNN` for `by_b`.
    pub fn key_value(self, n: i64) -> Value {
        match self {
            SecondaryIndex::ByA => Value::Int(n),
            SecondaryIndex::ByB => b_value(n),
        }
    }
}

/// The length of a row's padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Pad {
    /// This many bytes.
    Len(usize),
    /// Long enough that the row is over the engine's `row_size_max` (`RowTooLarge`).
    TooLarge,
}

/// A row of either table, as small numbers (readable when proptest prints a failing case).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowSpec {
    /// The primary key (ignored by the unkeyed table).
    pub id: i64,
    /// The non-unique indexed column.
    pub a: i64,
    /// The number in the unique indexed column's text.
    pub b: i64,
    /// The non-indexed column.
    pub c: i64,
    /// The padding's length.
    pub pad: Pad,
}

/// The text of `b` number `n`: `b` and three digits (`b007`), so text order is number order
/// for `0..1000`.
pub fn b_value(n: i64) -> Value {
    Value::Text(format!("b{n:03}"))
}

/// Padding of `len` bytes; its letter depends on `seed`, so two paddings of one length differ.
pub fn pad_value(len: usize, seed: i64) -> Value {
    let letter = b'a' + seed.rem_euclid(26) as u8;
    Value::Text(String::from(letter as char).repeat(len))
}

impl TableKind {
    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            TableKind::Keyed => KEYED_TABLE_NAME,
            TableKind::Unkeyed => UNKEYED_TABLE_NAME,
        }
    }

    /// The table's schema (see the module doc).
    pub fn schema(self) -> Schema {
        let builder = Schema::builder(self.name());
        let builder = match self {
            TableKind::Keyed => builder.column("id", ColumnType::Int64),
            TableKind::Unkeyed => builder,
        };
        let builder = builder
            .column("a", ColumnType::Int64)
            .column("b", ColumnType::Text)
            .column("c", ColumnType::Int64)
            .column("pad", ColumnType::Text);
        let builder = match self {
            TableKind::Keyed => builder.primary_key(&["id"]),
            TableKind::Unkeyed => builder,
        };
        builder
            .index(INDEX_BY_A, &["a"], false)
            .index(INDEX_BY_B, &["b"], true)
            .build()
            .expect("the test schemas are valid")
    }

    /// The position of a column in this table's rows; `None` for `Id` in the unkeyed table.
    pub fn column(self, col: Col) -> Option<usize> {
        let shift = match self {
            TableKind::Keyed => 0,
            TableKind::Unkeyed => {
                if col == Col::Id {
                    return None;
                }
                1
            }
        };
        let position = match col {
            Col::Id => 0,
            Col::A => 1,
            Col::B => 2,
            Col::C => 3,
            Col::Pad => 4,
        };
        Some(position - shift)
    }

    /// The position of a column the table is known to have.
    pub fn col(self, col: Col) -> usize {
        self.column(col)
            .unwrap_or_else(|| panic!("table {} has no column {col:?}", self.name()))
    }

    /// The key of a row: `[Int(id)]`, or for the unkeyed table `[Int(row_id)]`.
    pub fn key(self, id: i64) -> Vec<Value> {
        vec![Value::Int(id)]
    }

    /// The row `spec` describes, for an engine that accepts rows of up to `row_size_max`
    /// encoded bytes ([`Pad::TooLarge`] is one byte of padding more than that allows).
    pub fn row(self, spec: &RowSpec, row_size_max: usize) -> Row {
        let mut row = Vec::with_capacity(5);
        if self == TableKind::Keyed {
            row.push(Value::Int(spec.id));
        }
        row.push(Value::Int(spec.a));
        row.push(b_value(spec.b));
        row.push(Value::Int(spec.c));
        row.push(pad_value(pad_len(self, spec.pad, row_size_max), spec.c));
        debug_assert_eq!(
            spec.pad == Pad::TooLarge,
            encoded_row_size(&row) > row_size_max,
            "a Pad::TooLarge row, and only such a row, is over the limit"
        );
        row
    }
}

/// Encoded size of a row of `kind` with empty padding (every `b` text has the same length).
fn row_size_without_pad(kind: TableKind) -> usize {
    let mut row = Vec::with_capacity(5);
    if kind == TableKind::Keyed {
        row.push(Value::Int(0));
    }
    row.extend([Value::Int(0), b_value(0), Value::Int(0), pad_value(0, 0)]);
    encoded_row_size(&row)
}

/// The padding length for `pad` in a table of `kind`: a `Len` is capped so that the row still
/// fits (a generated op asks for an oversized row only with `TooLarge`).
pub fn pad_len(kind: TableKind, pad: Pad, row_size_max: usize) -> usize {
    let room = row_size_max.saturating_sub(row_size_without_pad(kind));
    match pad {
        Pad::Len(len) => len.min(room),
        Pad::TooLarge => room + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows built from specs fit their schemas, and `TooLarge` is exactly one byte over.
    #[test]
    fn rows_fit_schemas_and_too_large_is_over_by_one() {
        for kind in TABLE_KINDS {
            let schema = kind.schema();
            let mut spec = RowSpec {
                id: 3,
                a: 1,
                b: 7,
                c: 9,
                pad: Pad::Len(10),
            };
            let row = kind.row(&spec, 4000);
            schema.validate_row(&row).unwrap();
            spec.pad = Pad::Len(100_000);
            assert_eq!(encoded_row_size(&kind.row(&spec, 4000)), 4000);
            spec.pad = Pad::TooLarge;
            assert_eq!(encoded_row_size(&kind.row(&spec, 4000)), 4001);
        }
    }

    /// Column roles map to the right positions; the unkeyed table has no `Id`.
    #[test]
    fn columns_map_by_role() {
        let keyed = TableKind::Keyed.schema();
        let unkeyed = TableKind::Unkeyed.schema();
        for (col, name) in [
            (Col::A, "a"),
            (Col::B, "b"),
            (Col::C, "c"),
            (Col::Pad, "pad"),
        ] {
            assert_eq!(keyed.column_index(name).unwrap(), TableKind::Keyed.col(col));
            assert_eq!(
                unkeyed.column_index(name).unwrap(),
                TableKind::Unkeyed.col(col)
            );
        }
        assert_eq!(TableKind::Unkeyed.column(Col::Id), None);
        assert!(!unkeyed.has_primary_key());
    }
}
