//! Column types and values.

use serde::{Deserialize, Serialize};

/// The type of a column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ColumnType {
    /// 64-bit signed integer.
    Int64,
    /// 64-bit IEEE float (ordered by `f64::total_cmp` in keys).
    Float64,
    /// UTF-8 text.
    Text,
    /// Raw bytes.
    Bytes,
}

/// One column value. There is no NULL: every column of a row has a value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An `Int64` value.
    Int(i64),
    /// A `Float64` value.
    Float(f64),
    /// A `Text` value.
    Text(String),
    /// A `Bytes` value.
    Bytes(Vec<u8>),
}

/// A row: one value per column of its table, in schema order.
pub type Row = Vec<Value>;
