//! Table schemas: columns, the primary key, secondary indexes, and the checks every engine
//! runs on its input before changing anything.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::value::{ColumnType, Row, Value};

/// Most columns a table may have.
pub const COLUMN_COUNT_MAX: usize = 64;
/// Most secondary indexes a table may have.
pub const INDEX_COUNT_MAX: usize = 16;
/// Longest table, column or index name, in bytes.
pub const NAME_SIZE_MAX: usize = 64;
/// The name [`Error::DuplicateKey`] gives the primary key; no secondary index may take it.
pub const PRIMARY_INDEX_NAME: &str = "primary";
/// The name errors give the hidden row id of a table without a primary key.
pub const ROW_ID_COLUMN_NAME: &str = "row_id";

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
///
/// Rules ([`Schema::validate`]): names are 1 to [`NAME_SIZE_MAX`] ASCII letters, digits or
/// `_` (engines may use them in file names); 1 to [`COLUMN_COUNT_MAX`] columns with distinct
/// names; at most [`INDEX_COUNT_MAX`] indexes with distinct names, none called
/// [`PRIMARY_INDEX_NAME`]; every key (primary or secondary) names existing columns, each at
/// most once; a secondary index has at least one column.
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

/// Builds a [`Schema`] by column names; see [`Schema::builder`].
#[derive(Clone, Debug)]
pub struct SchemaBuilder {
    name: String,
    columns: Vec<Column>,
    primary_key: Vec<String>,
    indexes: Vec<(String, Vec<String>, bool)>,
}

impl SchemaBuilder {
    /// Adds a column after the ones added so far.
    pub fn column(mut self, name: &str, column_type: ColumnType) -> Self {
        self.columns.push(Column {
            name: name.to_string(),
            column_type,
        });
        self
    }

    /// Sets the primary key's columns, in key order.
    pub fn primary_key(mut self, columns: &[&str]) -> Self {
        self.primary_key = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// Adds a secondary index on the named columns, in key order.
    pub fn index(mut self, name: &str, columns: &[&str], unique: bool) -> Self {
        let columns = columns.iter().map(|c| c.to_string()).collect();
        self.indexes.push((name.to_string(), columns, unique));
        self
    }

    /// Resolves the column names and validates the schema.
    pub fn build(self) -> Result<Schema> {
        let mut schema = Schema {
            name: self.name,
            columns: self.columns,
            primary_key: Vec::new(),
            indexes: Vec::new(),
        };
        schema.primary_key = schema.column_indexes(&self.primary_key)?;
        for (name, columns, unique) in &self.indexes {
            let columns = schema.column_indexes(columns)?;
            schema.indexes.push(IndexDef {
                name: name.clone(),
                columns,
                unique: *unique,
            });
        }
        schema.validate()?;
        Ok(schema)
    }
}

impl Schema {
    /// A schema from its parts, validated.
    pub fn new(
        name: &str,
        columns: Vec<Column>,
        primary_key: Vec<usize>,
        indexes: Vec<IndexDef>,
    ) -> Result<Schema> {
        let schema = Schema {
            name: name.to_string(),
            columns,
            primary_key,
            indexes,
        };
        schema.validate()?;
        Ok(schema)
    }

    /// Starts building a schema for table `name`:
    /// `Schema::builder("t").column("id", Int64).primary_key(&["id"]).build()`.
    pub fn builder(name: &str) -> SchemaBuilder {
        SchemaBuilder {
            name: name.to_string(),
            columns: Vec::new(),
            primary_key: Vec::new(),
            indexes: Vec::new(),
        }
    }

    /// Checks the rules listed on [`Schema`].
    pub fn validate(&self) -> Result<()> {
        check_name("table", &self.name)?;
        if self.columns.is_empty() || self.columns.len() > COLUMN_COUNT_MAX {
            return Err(invalid(format!(
                "table {:?} has {} columns; 1 to {COLUMN_COUNT_MAX} allowed",
                self.name,
                self.columns.len()
            )));
        }
        for (i, column) in self.columns.iter().enumerate() {
            check_name("column", &column.name)?;
            if self.columns[..i].iter().any(|c| c.name == column.name) {
                return Err(invalid(format!("column {:?} appears twice", column.name)));
            }
        }
        self.check_key_columns("the primary key", &self.primary_key)?;
        if self.indexes.len() > INDEX_COUNT_MAX {
            return Err(invalid(format!(
                "table {:?} has {} indexes; at most {INDEX_COUNT_MAX} allowed",
                self.name,
                self.indexes.len()
            )));
        }
        for (i, index) in self.indexes.iter().enumerate() {
            check_name("index", &index.name)?;
            if index.name == PRIMARY_INDEX_NAME {
                return Err(invalid(format!(
                    "index name {PRIMARY_INDEX_NAME:?} is reserved"
                )));
            }
            if self.indexes[..i].iter().any(|x| x.name == index.name) {
                return Err(invalid(format!("index {:?} appears twice", index.name)));
            }
            if index.columns.is_empty() {
                return Err(invalid(format!("index {:?} has no columns", index.name)));
            }
            self.check_key_columns(&format!("index {:?}", index.name), &index.columns)?;
        }
        Ok(())
    }

    /// Whether the table declares a primary key (otherwise rows are keyed by a hidden row id).
    pub fn has_primary_key(&self) -> bool {
        !self.primary_key.is_empty()
    }

    /// The index of the column called `name`.
    pub fn column_index(&self, name: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| self.no_such_column(name.to_string()))
    }

    /// The secondary index called `name`.
    pub fn index(&self, name: &str) -> Result<&IndexDef> {
        self.indexes
            .iter()
            .find(|index| index.name == name)
            .ok_or_else(|| Error::NoSuchIndex {
                table: self.name.clone(),
                index: name.to_string(),
            })
    }

    /// The types of the primary key's columns; `[Int64]` (the hidden row id) for a table
    /// without a primary key.
    pub fn primary_key_types(&self) -> Vec<ColumnType> {
        self.key_columns(None).into_iter().map(|(_, t)| t).collect()
    }

    /// The types of an index's columns, in key order.
    pub fn index_types(&self, index: &IndexDef) -> Vec<ColumnType> {
        self.key_columns(Some(index))
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }

    /// Checks a row's arity and the type of each value.
    pub fn validate_row(&self, row: &Row) -> Result<()> {
        if row.len() != self.columns.len() {
            return Err(Error::WrongArity {
                expected: self.columns.len(),
                got: row.len(),
            });
        }
        for (column, value) in self.columns.iter().zip(row) {
            check_type(&column.name, column.column_type, value)?;
        }
        Ok(())
    }

    /// Checks a whole primary key (of a table without one: `[Value::Int(row_id)]`).
    pub fn validate_key(&self, key: &[Value]) -> Result<()> {
        let columns = self.key_columns(None);
        if key.len() != columns.len() {
            return Err(Error::WrongArity {
                expected: columns.len(),
                got: key.len(),
            });
        }
        check_key_types(&columns, key)
    }

    /// Checks a prefix of the primary key (`index` is `None`) or of a secondary index's key,
    /// as used in scan bounds.
    pub fn validate_key_prefix(&self, index: Option<&IndexDef>, prefix: &[Value]) -> Result<()> {
        let columns = self.key_columns(index);
        if prefix.len() > columns.len() {
            return Err(Error::WrongArity {
                expected: columns.len(),
                got: prefix.len(),
            });
        }
        check_key_types(&columns, prefix)
    }

    /// Checks an update's changes: each column exists, is not a primary-key column, appears
    /// at most once, and gets a value of its type.
    pub fn validate_changes(&self, changes: &[(usize, Value)]) -> Result<()> {
        for (i, (column, value)) in changes.iter().enumerate() {
            let Some(def) = self.columns.get(*column) else {
                return Err(self.no_such_column(format!("#{column}")));
            };
            if self.primary_key.contains(column) {
                return Err(Error::PrimaryKeyChange {
                    column: def.name.clone(),
                });
            }
            if changes[..i].iter().any(|(c, _)| c == column) {
                return Err(Error::InvalidArgument(format!(
                    "column {:?} is set twice in one update",
                    def.name
                )));
            }
            check_type(&def.name, def.column_type, value)?;
        }
        Ok(())
    }

    /// Checks that every column of a projection exists.
    pub fn validate_projection(&self, projection: &[usize]) -> Result<()> {
        match projection.iter().find(|&&c| c >= self.columns.len()) {
            Some(column) => Err(self.no_such_column(format!("#{column}"))),
            None => Ok(()),
        }
    }

    /// Applies validated changes to a row.
    pub fn apply_changes(&self, row: &mut Row, changes: &[(usize, Value)]) {
        for (column, value) in changes {
            row[*column] = value.clone();
        }
    }

    /// The primary key's values of a row, in key order; empty for a table without a primary
    /// key (the hidden row id is the engine's, not part of the row).
    pub fn primary_key_of(&self, row: &Row) -> Vec<Value> {
        self.primary_key.iter().map(|&c| row[c].clone()).collect()
    }

    /// A secondary index's key values of a row, in key order.
    pub fn index_key_of(&self, index: &IndexDef, row: &Row) -> Vec<Value> {
        index.columns.iter().map(|&c| row[c].clone()).collect()
    }

    /// The given columns of a row, in the given order (validated by
    /// [`Schema::validate_projection`]).
    pub fn project(&self, row: &Row, columns: &[usize]) -> Row {
        columns.iter().map(|&c| row[c].clone()).collect()
    }

    /// Names and types of a key's columns: the primary key's (or the hidden row id) when
    /// `index` is `None`.
    fn key_columns(&self, index: Option<&IndexDef>) -> Vec<(&str, ColumnType)> {
        let columns = match index {
            Some(index) => &index.columns,
            None if self.primary_key.is_empty() => {
                return vec![(ROW_ID_COLUMN_NAME, ColumnType::Int64)];
            }
            None => &self.primary_key,
        };
        columns
            .iter()
            .map(|&c| (self.columns[c].name.as_str(), self.columns[c].column_type))
            .collect()
    }

    /// Resolves column names to indexes.
    fn column_indexes(&self, names: &[String]) -> Result<Vec<usize>> {
        names.iter().map(|name| self.column_index(name)).collect()
    }

    /// Checks that a key's columns exist and are distinct.
    fn check_key_columns(&self, what: &str, columns: &[usize]) -> Result<()> {
        for (i, &column) in columns.iter().enumerate() {
            if column >= self.columns.len() {
                return Err(invalid(format!(
                    "{what} names column #{column}, out of range"
                )));
            }
            if columns[..i].contains(&column) {
                let name = &self.columns[column].name;
                return Err(invalid(format!("{what} names column {name:?} twice")));
            }
        }
        Ok(())
    }

    fn no_such_column(&self, column: String) -> Error {
        Error::NoSuchColumn {
            table: self.name.clone(),
            column,
        }
    }
}

/// Checks a name's length and characters.
fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > NAME_SIZE_MAX {
        return Err(invalid(format!(
            "{what} name {name:?} must have 1 to {NAME_SIZE_MAX} bytes"
        )));
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(invalid(format!(
            "{what} name {name:?} may hold only ASCII letters, digits and '_'"
        )));
    }
    Ok(())
}

/// Checks each value of a key (or key prefix) against its column.
fn check_key_types(columns: &[(&str, ColumnType)], values: &[Value]) -> Result<()> {
    for ((name, column_type), value) in columns.iter().zip(values) {
        check_type(name, *column_type, value)?;
    }
    Ok(())
}

/// Checks one value against its column's type.
fn check_type(column: &str, expected: ColumnType, value: &Value) -> Result<()> {
    let got = value.column_type();
    if got != expected {
        return Err(Error::WrongType {
            column: column.to_string(),
            expected,
            got,
        });
    }
    Ok(())
}

fn invalid(reason: String) -> Error {
    Error::InvalidSchema(reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ColumnType::{Float64, Int64, Text};

    fn users() -> Schema {
        Schema::builder("users")
            .column("id", Int64)
            .column("name", Text)
            .column("score", Float64)
            .primary_key(&["id"])
            .index("by_name", &["name"], true)
            .build()
            .expect("valid schema")
    }

    /// The builder resolves column names to indexes.
    #[test]
    fn builder_resolves_names() {
        let schema = users();
        assert_eq!(schema.primary_key, vec![0]);
        assert_eq!(schema.indexes[0].columns, vec![1]);
        assert!(schema.indexes[0].unique);
        assert_eq!(schema.column_index("score").unwrap(), 2);
        assert!(matches!(
            schema.column_index("x"),
            Err(Error::NoSuchColumn { .. })
        ));
        assert!(matches!(schema.index("x"), Err(Error::NoSuchIndex { .. })));
    }

    /// An unknown column in a key is `NoSuchColumn`.
    #[test]
    fn builder_rejects_unknown_key_column() {
        let result = Schema::builder("t")
            .column("a", Int64)
            .primary_key(&["b"])
            .build();
        assert!(matches!(result, Err(Error::NoSuchColumn { .. })));
    }

    /// Each rule of `validate` is enforced.
    #[test]
    fn validate_rejects_each_broken_rule() {
        let column = |name: &str| Column {
            name: name.to_string(),
            column_type: Int64,
        };
        let index = |name: &str, columns: Vec<usize>| IndexDef {
            name: name.to_string(),
            columns,
            unique: false,
        };
        let too_many_columns = (0..=COLUMN_COUNT_MAX)
            .map(|i| column(&format!("c{i}")))
            .collect();
        let too_many_indexes = (0..=INDEX_COUNT_MAX)
            .map(|i| index(&format!("i{i}"), vec![0]))
            .collect();
        let long_name = "x".repeat(NAME_SIZE_MAX + 1);
        type Case<'a> = (&'a str, Vec<Column>, Vec<usize>, Vec<IndexDef>);
        let cases: Vec<Case> = vec![
            ("", vec![column("a")], vec![], vec![]),
            (&long_name, vec![column("a")], vec![], vec![]),
            ("a/b", vec![column("a")], vec![], vec![]),
            ("t", vec![], vec![], vec![]),
            ("t", too_many_columns, vec![], vec![]),
            ("t", vec![column("a"), column("a")], vec![], vec![]),
            ("t", vec![column("a")], vec![1], vec![]),
            ("t", vec![column("a")], vec![0, 0], vec![]),
            ("t", vec![column("a")], vec![], vec![index("i", vec![])]),
            ("t", vec![column("a")], vec![], vec![index("i", vec![3])]),
            (
                "t",
                vec![column("a")],
                vec![],
                vec![index("i", vec![0]), index("i", vec![0])],
            ),
            (
                "t",
                vec![column("a")],
                vec![],
                vec![index(PRIMARY_INDEX_NAME, vec![0])],
            ),
            ("t", vec![column("a")], vec![], too_many_indexes),
        ];
        for (name, columns, primary_key, indexes) in cases {
            let result = Schema::new(name, columns, primary_key, indexes);
            assert!(matches!(result, Err(Error::InvalidSchema(_))), "{result:?}");
        }
    }

    /// Rows need the right arity and types.
    #[test]
    fn validate_row_checks_arity_and_types() {
        let schema = users();
        let good = vec![Value::Int(1), Value::from("a"), Value::Float(1.0)];
        schema.validate_row(&good).unwrap();
        let short = vec![Value::Int(1)];
        assert!(matches!(
            schema.validate_row(&short),
            Err(Error::WrongArity {
                expected: 3,
                got: 1
            })
        ));
        let wrong = vec![Value::Int(1), Value::Int(2), Value::Float(1.0)];
        assert!(matches!(
            schema.validate_row(&wrong),
            Err(Error::WrongType {
                expected: Text,
                got: Int64,
                ..
            })
        ));
    }

    /// Changes may not touch the primary key, repeat a column, leave the table or mistype.
    #[test]
    fn validate_changes_rejects_bad_changes() {
        let schema = users();
        schema.validate_changes(&[(1, Value::from("b"))]).unwrap();
        let pk = schema.validate_changes(&[(0, Value::Int(2))]);
        assert!(matches!(pk, Err(Error::PrimaryKeyChange { .. })));
        let twice = schema.validate_changes(&[(1, Value::from("b")), (1, Value::from("c"))]);
        assert!(matches!(twice, Err(Error::InvalidArgument(_))));
        let out = schema.validate_changes(&[(9, Value::Int(0))]);
        assert!(matches!(out, Err(Error::NoSuchColumn { .. })));
        let typed = schema.validate_changes(&[(2, Value::Int(0))]);
        assert!(matches!(typed, Err(Error::WrongType { .. })));
    }

    /// A table without a primary key is keyed by one Int64 row id.
    #[test]
    fn hidden_row_id_is_the_key_of_a_keyless_table() {
        let schema = Schema::builder("log").column("line", Text).build().unwrap();
        assert!(!schema.has_primary_key());
        assert_eq!(schema.primary_key_types(), vec![Int64]);
        schema.validate_key(&[Value::Int(1)]).unwrap();
        let wrong = schema.validate_key(&[Value::from("1")]);
        assert!(matches!(wrong, Err(Error::WrongType { .. })));
        assert!(schema.primary_key_of(&vec![Value::from("x")]).is_empty());
    }

    /// Key prefixes may be shorter than the key, not longer.
    #[test]
    fn validate_key_prefix_allows_prefixes() {
        let schema = users();
        let index = schema.index("by_name").unwrap();
        schema.validate_key_prefix(Some(index), &[]).unwrap();
        schema
            .validate_key_prefix(Some(index), &[Value::from("a")])
            .unwrap();
        let long = schema.validate_key_prefix(Some(index), &[Value::from("a"), Value::Int(1)]);
        assert!(matches!(long, Err(Error::WrongArity { .. })));
    }

    /// Keys, projections and changes pick the right values.
    #[test]
    fn row_helpers_pick_columns() {
        let schema = users();
        let mut row = vec![Value::Int(1), Value::from("a"), Value::Float(1.0)];
        assert_eq!(schema.primary_key_of(&row), vec![Value::Int(1)]);
        assert_eq!(
            schema.index_key_of(&schema.indexes[0], &row),
            vec![Value::from("a")]
        );
        assert_eq!(
            schema.project(&row, &[2, 0]),
            vec![Value::Float(1.0), Value::Int(1)]
        );
        schema.apply_changes(&mut row, &[(2, Value::Float(2.0))]);
        assert_eq!(row[2], Value::Float(2.0));
        assert!(schema.validate_projection(&[3]).is_err());
    }

    /// Schemas survive a JSON round trip (the catalog's format).
    #[test]
    fn schema_round_trips_through_json() {
        let schema = users();
        let json = serde_json::to_string(&schema).unwrap();
        assert_eq!(serde_json::from_str::<Schema>(&json).unwrap(), schema);
    }
}
