//! The reference engine: every table is a few `BTreeMap`s in memory. It is the expected
//! answer in tests (the testkit runs the same ops through a real engine and through this one
//! and compares), so it is written to be obviously correct rather than fast.
//!
//! ```text
//!   rows:      encode(primary key)                 -> Row
//!   index i:   encode(index key) ++ encode(pk)     (a set: the value would be ())
//! ```
//!
//! A table without a primary key uses `encode([Int(row_id)])` as the primary key, with row
//! ids 1, 2, 3, ... in insert order (see [`Table`]).
//!
//! Behaviour the real engines must match, and where they may differ:
//!
//! - `apply` takes the table's write lock for the whole batch, applies the ops one by one
//!   while recording how to undo each, and on the first error undoes them in reverse order,
//!   so a failed batch changes nothing (not even the next row id).
//! - Scans collect the selected rows under the read lock and call the visitor after
//!   releasing it: each scan sees one consistent state, and a visitor may call back into the
//!   table. Real engines need not give a snapshot; tests must not depend on concurrent
//!   writes being seen or missed.
//! - [`IndexScanMethod::Bitmap`](crate::IndexScanMethod::Bitmap) scans return index order
//!   here, while real engines return physical order: tests compare such scans as sets.
//! - `prefetch_depth` is ignored; stats report the row count and no files or counters.
//! - There is no key size limit; engines whose B+tree limits keys return `KeyTooLarge` where
//!   this engine succeeds, so tests keep keys small.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::codec::encoded_row_size;
use crate::engine::{
    BatchOutcome, Engine, EngineStats, Op, Predicate, ScanSpec, Table, TableStats, Visitor,
};
use crate::error::{Error, Result};
use crate::key::{decode_key, decode_key_prefix, encode_key, encode_key_to_vec, key_range};
use crate::schema::{IndexDef, PRIMARY_INDEX_NAME, Schema};
use crate::value::{ColumnType, Row, Value};

/// The reference engine's name.
pub const REFERENCE_ENGINE_NAME: &str = "reference";
/// The first hidden row id assigned in a table without a primary key.
pub const ROW_ID_FIRST: i64 = 1;

/// An in-memory engine of `BTreeMap`s; see the module doc.
#[derive(Debug)]
pub struct ReferenceEngine {
    row_size_max: usize,
    tables: RwLock<BTreeMap<String, Arc<ReferenceTable>>>,
}

impl ReferenceEngine {
    /// An engine without tables that accepts rows of up to `row_size_max` encoded bytes.
    pub fn new(row_size_max: usize) -> ReferenceEngine {
        ReferenceEngine {
            row_size_max,
            tables: RwLock::new(BTreeMap::new()),
        }
    }
}

impl Engine for ReferenceEngine {
    fn name(&self) -> &str {
        REFERENCE_ENGINE_NAME
    }

    fn create_table(&self, schema: Schema) -> Result<Arc<dyn Table>> {
        schema.validate()?;
        let mut tables = self.tables.write();
        if tables.contains_key(&schema.name) {
            return Err(Error::TableExists { name: schema.name });
        }
        let table = Arc::new(ReferenceTable::new(schema, self.row_size_max));
        tables.insert(table.schema.name.clone(), table.clone());
        Ok(table)
    }

    fn open_table(&self, name: &str) -> Result<Arc<dyn Table>> {
        match self.tables.read().get(name) {
            Some(table) => Ok(table.clone()),
            None => Err(Error::NoSuchTable {
                name: name.to_string(),
            }),
        }
    }

    fn table_names(&self) -> Vec<String> {
        self.tables.read().keys().cloned().collect()
    }

    fn checkpoint(&self) -> Result<()> {
        Ok(())
    }

    fn stats(&self) -> Result<EngineStats> {
        Ok(EngineStats::default())
    }

    fn check(&self) -> Result<()> {
        let tables: Vec<_> = self.tables.read().values().cloned().collect();
        tables.iter().try_for_each(|table| table.check())
    }

    fn row_size_max(&self) -> usize {
        self.row_size_max
    }
}

/// One table of the [`ReferenceEngine`].
#[derive(Debug)]
pub struct ReferenceTable {
    schema: Schema,
    row_size_max: usize,
    state: RwLock<TableState>,
}

/// A table's contents.
#[derive(Debug)]
struct TableState {
    /// Encoded primary key (or row id) -> row.
    rows: BTreeMap<Vec<u8>, Row>,
    /// Per secondary index, in schema order: encoded index key ++ encoded primary key.
    indexes: Vec<BTreeSet<Vec<u8>>>,
    /// The row id the next insert into a table without a primary key gets.
    next_row_id: i64,
}

/// How to undo one change of a batch.
enum Undo {
    /// The row with this primary key was inserted: remove it.
    Inserted(Vec<u8>),
    /// This row was removed: put it back.
    Removed(Vec<u8>, Row),
}

impl ReferenceTable {
    /// An empty table; the schema must be valid.
    pub fn new(schema: Schema, row_size_max: usize) -> ReferenceTable {
        let indexes = schema.indexes.iter().map(|_| BTreeSet::new()).collect();
        ReferenceTable {
            schema,
            row_size_max,
            state: RwLock::new(TableState {
                rows: BTreeMap::new(),
                indexes,
                next_row_id: ROW_ID_FIRST,
            }),
        }
    }

    /// Applies one op, recording its undo actions; on error, what it did so far is in `undo`.
    fn apply_op(&self, state: &mut TableState, op: &Op, undo: &mut Vec<Undo>) -> Result<bool> {
        let schema = &self.schema;
        match op {
            Op::Insert(row) => {
                schema.validate_row(row)?;
                self.check_row_size(row)?;
                let pk = if schema.has_primary_key() {
                    let pk = encode_key_to_vec(&schema.primary_key_of(row));
                    if state.rows.contains_key(&pk) {
                        return Err(self.duplicate(PRIMARY_INDEX_NAME));
                    }
                    pk
                } else {
                    encode_key_to_vec(&[Value::Int(state.next_row_id)])
                };
                if let Some(index) = self.unique_conflict(state, row) {
                    return Err(self.duplicate(&index.name));
                }
                if !schema.has_primary_key() {
                    state.next_row_id = state.next_row_id.checked_add(1).ok_or_else(|| {
                        Error::InvalidArgument("row ids are exhausted".to_string())
                    })?;
                }
                self.insert_row(state, pk.clone(), row.clone());
                undo.push(Undo::Inserted(pk));
                Ok(true)
            }
            Op::Update { key, changes } => {
                schema.validate_key(key)?;
                schema.validate_changes(changes)?;
                let pk = encode_key_to_vec(key);
                let Some(old) = state.rows.get(&pk) else {
                    return Ok(false);
                };
                let mut new = old.clone();
                schema.apply_changes(&mut new, changes);
                self.check_row_size(&new)?;
                let old = self.remove_row(state, &pk).expect("the row was just found");
                undo.push(Undo::Removed(pk.clone(), old));
                // Checked with the old version removed, so the row does not conflict with
                // itself when an update leaves a unique column unchanged.
                if let Some(index) = self.unique_conflict(state, &new) {
                    return Err(self.duplicate(&index.name));
                }
                self.insert_row(state, pk.clone(), new);
                undo.push(Undo::Inserted(pk));
                Ok(true)
            }
            Op::Delete { key } => {
                schema.validate_key(key)?;
                let pk = encode_key_to_vec(key);
                match self.remove_row(state, &pk) {
                    Some(old) => {
                        undo.push(Undo::Removed(pk, old));
                        Ok(true)
                    }
                    None => Ok(false),
                }
            }
        }
    }

    fn check_row_size(&self, row: &Row) -> Result<()> {
        let size = encoded_row_size(row);
        if size > self.row_size_max {
            return Err(Error::RowTooLarge {
                size,
                max: self.row_size_max,
            });
        }
        Ok(())
    }

    fn duplicate(&self, index: &str) -> Error {
        Error::DuplicateKey {
            table: self.schema.name.clone(),
            index: index.to_string(),
        }
    }

    /// The first unique index in which another live row has `row`'s key.
    fn unique_conflict(&self, state: &TableState, row: &Row) -> Option<&IndexDef> {
        let schema = &self.schema;
        schema
            .indexes
            .iter()
            .zip(&state.indexes)
            .find_map(|(index, entries)| {
                if !index.unique {
                    return None;
                }
                // An entry holds this index key exactly when it starts with its encoding,
                // because an encoded tuple is never a proper prefix of another.
                let key = encode_key_to_vec(&schema.index_key_of(index, row));
                let next = entries
                    .range::<[u8], _>((Bound::Included(&key[..]), Bound::Unbounded))
                    .next();
                next.filter(|entry| entry.starts_with(&key)).map(|_| index)
            })
    }

    /// The entry of `row` in a secondary index.
    fn index_entry(&self, index: &IndexDef, row: &Row, pk: &[u8]) -> Vec<u8> {
        let mut entry = Vec::new();
        encode_key(&self.schema.index_key_of(index, row), &mut entry);
        entry.extend_from_slice(pk);
        entry
    }

    fn insert_row(&self, state: &mut TableState, pk: Vec<u8>, row: Row) {
        for (index, entries) in self.schema.indexes.iter().zip(&mut state.indexes) {
            let inserted = entries.insert(self.index_entry(index, &row, &pk));
            assert!(
                inserted,
                "index {} already had the entry of a new row",
                index.name
            );
        }
        let old = state.rows.insert(pk, row);
        assert!(old.is_none(), "insert_row over a live row");
    }

    fn remove_row(&self, state: &mut TableState, pk: &[u8]) -> Option<Row> {
        let row = state.rows.remove(pk)?;
        for (index, entries) in self.schema.indexes.iter().zip(&mut state.indexes) {
            let removed = entries.remove(&self.index_entry(index, &row, pk));
            assert!(
                removed,
                "index {} lacked the entry of a live row",
                index.name
            );
        }
        Some(row)
    }

    /// Undoes a failed batch's changes, newest first.
    fn roll_back(&self, state: &mut TableState, undo: Vec<Undo>) {
        for action in undo.into_iter().rev() {
            match action {
                Undo::Inserted(pk) => {
                    self.remove_row(state, &pk)
                        .expect("an inserted row is live");
                }
                Undo::Removed(pk, row) => self.insert_row(state, pk, row),
            }
        }
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(format!("reference table {:?}", self.schema.name), reason)
    }
}

impl Table for ReferenceTable {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn apply(&self, ops: &[Op]) -> Result<BatchOutcome> {
        let mut state = self.state.write();
        let next_row_id = state.next_row_id;
        let mut undo = Vec::new();
        let mut outcome = Vec::with_capacity(ops.len());
        for op in ops {
            match self.apply_op(&mut state, op, &mut undo) {
                Ok(existed) => outcome.push(existed),
                Err(e) => {
                    self.roll_back(&mut state, undo);
                    state.next_row_id = next_row_id;
                    return Err(e);
                }
            }
        }
        Ok(outcome)
    }

    fn get(&self, key: &[Value]) -> Result<Option<Row>> {
        self.schema.validate_key(key)?;
        Ok(self.state.read().rows.get(&encode_key_to_vec(key)).cloned())
    }

    fn scan(
        &self,
        spec: &ScanSpec,
        predicate: Option<Predicate<'_>>,
        visit: Visitor<'_>,
    ) -> Result<u64> {
        let index = spec.validate(&self.schema)?;
        let Some(range) = key_range(&spec.lower, &spec.upper) else {
            return Ok(0);
        };
        let limit = spec.limit.unwrap_or(usize::MAX);
        let mut selected = Vec::new();
        // Returns false once the limit is reached.
        let mut select = |row: &Row| {
            if selected.len() >= limit {
                return false;
            }
            if predicate.is_none_or(|p| p(row)) {
                selected.push(match &spec.projection {
                    Some(columns) => self.schema.project(row, columns),
                    None => row.clone(),
                });
            }
            selected.len() < limit
        };
        {
            let state = self.state.read();
            match index {
                None if spec.reverse => {
                    for row in state.rows.range(range).rev().map(|(_, row)| row) {
                        if !select(row) {
                            break;
                        }
                    }
                }
                None => {
                    for row in state.rows.range(range).map(|(_, row)| row) {
                        if !select(row) {
                            break;
                        }
                    }
                }
                Some(index) => {
                    let position = self.schema.indexes.iter().position(|i| i == index);
                    let entries = &state.indexes[position.expect("validate returned our index")];
                    let types = self.schema.index_types(index);
                    for entry in entries.range(range) {
                        let (_, size) = decode_key_prefix(entry, &types)?;
                        let Some(row) = state.rows.get(&entry[size..]) else {
                            return Err(self.corrupt(format!(
                                "index {:?} has an entry without a row",
                                index.name
                            )));
                        };
                        if !select(row) {
                            break;
                        }
                    }
                }
            }
        }
        let mut visited_count = 0;
        for row in selected {
            visited_count += 1;
            if !visit(row) {
                break;
            }
        }
        Ok(visited_count)
    }

    fn stats(&self) -> Result<TableStats> {
        Ok(TableStats {
            row_count: self.state.read().rows.len() as u64,
            ..TableStats::default()
        })
    }

    fn check(&self) -> Result<()> {
        let state = self.state.read();
        let schema = &self.schema;
        for (pk, row) in &state.rows {
            schema
                .validate_row(row)
                .map_err(|e| self.corrupt(format!("a row does not fit the schema: {e}")))?;
            if schema.has_primary_key() {
                if *pk != encode_key_to_vec(&schema.primary_key_of(row)) {
                    return Err(self.corrupt("a row is stored under another key".to_string()));
                }
            } else {
                let row_id = decode_key(pk, &[ColumnType::Int64])?[0].as_int();
                if !row_id.is_some_and(|id| (ROW_ID_FIRST..state.next_row_id).contains(&id)) {
                    return Err(self.corrupt(format!("row id {row_id:?} was never assigned")));
                }
            }
            self.check_row_size(row)?;
        }
        for (index, entries) in schema.indexes.iter().zip(&state.indexes) {
            let expected: BTreeSet<Vec<u8>> = state
                .rows
                .iter()
                .map(|(pk, row)| self.index_entry(index, row, pk))
                .collect();
            if *entries != expected {
                return Err(self.corrupt(format!("index {:?} disagrees with the rows", index.name)));
            }
            if index.unique {
                let keys: BTreeSet<Vec<u8>> = state
                    .rows
                    .values()
                    .map(|row| encode_key_to_vec(&schema.index_key_of(index, row)))
                    .collect();
                if keys.len() != state.rows.len() {
                    return Err(
                        self.corrupt(format!("unique index {:?} has duplicates", index.name))
                    );
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::ColumnType::{Int64, Text};

    fn table() -> ReferenceTable {
        let schema = Schema::builder("t")
            .column("id", Int64)
            .column("name", Text)
            .primary_key(&["id"])
            .index("by_name", &["name"], true)
            .build()
            .unwrap();
        ReferenceTable::new(schema, 1024)
    }

    fn row(id: i64, name: &str) -> Row {
        vec![Value::Int(id), Value::from(name)]
    }

    /// A batch that fails at its last op leaves the maps exactly as before.
    #[test]
    fn failed_batch_rolls_back_every_map() {
        let table = table();
        table.insert(row(1, "a")).unwrap();
        let ops = [
            Op::Delete {
                key: vec![Value::Int(1)],
            },
            Op::Insert(row(2, "a")),
            Op::Update {
                key: vec![Value::Int(2)],
                changes: vec![(1, Value::from("b"))],
            },
            Op::Insert(row(3, "b")),
        ];
        let result = table.apply(&ops);
        assert!(
            matches!(result, Err(Error::DuplicateKey { .. })),
            "{result:?}"
        );
        table.check().unwrap();
        let state = table.state.read();
        assert_eq!(state.rows.len(), 1);
        assert_eq!(state.rows.values().next(), Some(&row(1, "a")));
        assert_eq!(state.indexes[0].len(), 1);
    }

    /// An update that keeps a unique column does not conflict with its own old version.
    #[test]
    fn update_keeping_unique_column_succeeds() {
        let table = table();
        table.insert(row(1, "a")).unwrap();
        assert!(
            table
                .update(&[Value::Int(1)], &[(1, Value::from("a"))])
                .unwrap()
        );
        table.check().unwrap();
    }

    /// `check` notices an index entry without a row.
    #[test]
    fn check_detects_stray_index_entry() {
        let table = table();
        table.insert(row(1, "a")).unwrap();
        table.state.write().indexes[0].insert(vec![1, 2, 3]);
        assert!(matches!(table.check(), Err(Error::Corrupt { .. })));
    }
}
