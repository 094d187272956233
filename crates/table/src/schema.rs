//! Table schemas: columns, the primary key, secondary indexes.

use serde::{Deserialize, Serialize};

use crate::value::ColumnType;

/// One column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    /// Its name, unique in the table.
    pub name: String,
    /// Its type.
    pub column_type: ColumnType,
}

/// A secondary index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexDef {
    /// Its name, unique in the table.
    pub name: String,
    /// Indexed columns (indexes into `Schema::columns`), in key order.
    pub columns: Vec<usize>,
    /// No two live rows share the key.
    pub unique: bool,
}

/// A table's schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// The table's name.
    pub name: String,
    /// Columns in row order.
    pub columns: Vec<Column>,
    /// Primary-key columns in key order; empty: no declared key (an engine then keys rows by
    /// a hidden, increasing row id).
    pub primary_key: Vec<usize>,
    /// Secondary indexes.
    pub indexes: Vec<IndexDef>,
}
