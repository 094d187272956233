//! Column types and values.

use std::cmp::Ordering;
use std::fmt;

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

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ColumnType::Int64 => "int64",
            ColumnType::Float64 => "float64",
            ColumnType::Text => "text",
            ColumnType::Bytes => "bytes",
        };
        f.write_str(name)
    }
}

/// One column value. There is no NULL: every column of a row has a value.
///
/// `PartialEq` is IEEE equality for floats (`NaN != NaN`, `-0.0 == 0.0`); keys and
/// [`Value::total_cmp`] use `f64::total_cmp`, under which every float equals only itself.
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

impl Value {
    /// The type of column this value belongs in.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Value::Int(_) => ColumnType::Int64,
            Value::Float(_) => ColumnType::Float64,
            Value::Text(_) => ColumnType::Text,
            Value::Bytes(_) => ColumnType::Bytes,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The order of encoded keys: integers numerically, floats by `f64::total_cmp`, text and
    /// bytes bytewise. Values of different types (never compared within one key column) order
    /// by type: `Int < Float < Text < Bytes`, so that this is a total order.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Text(a), Value::Text(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            _ => type_rank(self).cmp(&type_rank(other)),
        }
    }

    /// [`Value::total_cmp`] applied lexicographically to two tuples; a proper prefix sorts
    /// first. This is the order of their [`crate::key`] encodings.
    pub fn tuple_cmp(a: &[Value], b: &[Value]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            let ordering = x.total_cmp(y);
            if ordering != Ordering::Equal {
                return ordering;
            }
        }
        a.len().cmp(&b.len())
    }
}

/// Position of a value's type in the cross-type order of [`Value::total_cmp`].
fn type_rank(value: &Value) -> u8 {
    match value {
        Value::Int(_) => 0,
        Value::Float(_) => 1,
        Value::Text(_) => 2,
        Value::Bytes(_) => 3,
    }
}

impl fmt::Display for Value {
    /// Integers in decimal, floats with a decimal point (`1.0`, `NaN`, `inf`), text quoted with
    /// Rust escapes, bytes as `x'0a1b'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Text(v) => write!(f, "{v:?}"),
            Value::Bytes(v) => {
                f.write_str("x'")?;
                for byte in v {
                    write!(f, "{byte:02x}")?;
                }
                f.write_str("'")
            }
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}

impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Bytes(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each value reports the column type it belongs in.
    #[test]
    fn column_type_matches_variant() {
        assert_eq!(Value::Int(1).column_type(), ColumnType::Int64);
        assert_eq!(Value::Float(1.0).column_type(), ColumnType::Float64);
        assert_eq!(Value::from("a").column_type(), ColumnType::Text);
        assert_eq!(Value::Bytes(vec![]).column_type(), ColumnType::Bytes);
    }

    /// Display is unambiguous per type: floats keep a decimal point, text is quoted.
    #[test]
    fn display_formats_each_type() {
        assert_eq!(Value::Int(-5).to_string(), "-5");
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::from("a\"b").to_string(), "\"a\\\"b\"");
        assert_eq!(Value::Bytes(vec![0, 0xab]).to_string(), "x'00ab'");
        assert_eq!(ColumnType::Float64.to_string(), "float64");
    }

    /// Tuples compare column by column, a proper prefix first, floats by total order.
    #[test]
    fn tuple_cmp_is_lexicographic() {
        let a = [Value::Int(1), Value::from("b")];
        let b = [Value::Int(1), Value::from("ba")];
        assert_eq!(Value::tuple_cmp(&a, &b), Ordering::Less);
        assert_eq!(Value::tuple_cmp(&a[..1], &a), Ordering::Less);
        let neg_zero = [Value::Float(-0.0)];
        let zero = [Value::Float(0.0)];
        assert_eq!(Value::tuple_cmp(&neg_zero, &zero), Ordering::Less);
    }
}
