//! The row codec: the one byte format of a row, shared by every engine (heap tuples,
//! clustered leaf values, LSM values, WAL records).
//!
//! Byte order little-endian throughout. A row of a table with columns `c0 .. cn-1`:
//!
//! | Offset | Size    | Field          | Meaning                                           |
//! |--------|---------|----------------|---------------------------------------------------|
//! | 0      | 1       | format version | [`ROW_FORMAT_VERSION`] (1); anything else is corrupt |
//! | 1      | varies  | column 0       | encoded as below, in schema order                 |
//! | ...    | varies  | column n-1     |                                                   |
//!
//! Each column, by its type in the schema (no type tags are stored):
//!
//! | Type    | Size  | Encoding                                                        |
//! |---------|-------|-----------------------------------------------------------------|
//! | Int64   | 8     | two's complement, little-endian                                 |
//! | Float64 | 8     | IEEE 754 bits (`f64::to_bits`), little-endian; NaN payloads kept |
//! | Text    | 4 + n | u32 length `n`, then `n` bytes of UTF-8                         |
//! | Bytes   | 4 + n | u32 length `n`, then `n` bytes                                  |
//!
//! The row ends exactly after its last column: trailing bytes are corrupt. The column count
//! is not stored; it comes from the schema, so a schema change (not supported yet) will need
//! a new format version.
//!
//! ```text
//!   (7, "ab", 1.5)   01 | 07 00 00 00 00 00 00 00 | 02 00 00 00 61 62 | 00 00 00 00 00 00 f8 3f
//!                    ver  Int64 7                   Text len 2  'a' 'b'  Float64 1.5
//! ```
//!
//! Decoding treats the bytes as untrusted: every length is checked against the bytes that
//! remain before anything is allocated or sliced, text must be UTF-8, and every failure is an
//! [`Error::Corrupt`]. Unlike PostgreSQL's tuple format there is no null bitmap (no NULLs)
//! and no alignment padding; variable-length columns are not moved to the end, so reading
//! column `i` walks the length prefixes of the columns before it ([`decode_columns`] does
//! just that walk, without allocating or validating the columns it skips).

use crate::error::{Error, Result};
use crate::schema::Schema;
use crate::value::{ColumnType, Row, Value};

/// The version byte every encoded row starts with.
pub const ROW_FORMAT_VERSION: u8 = 1;
/// Offset of the version byte.
const VERSION_OFFSET: usize = 0;
/// Size of the header (the version byte).
pub const ROW_HEADER_SIZE: usize = VERSION_OFFSET + 1;
/// Size of an encoded Int64 or Float64 column.
pub const FIXED_COLUMN_SIZE: usize = 8;
/// Size of the length prefix of a Text or Bytes column.
pub const LENGTH_PREFIX_SIZE: usize = 4;
/// Largest Text or Bytes value the length prefix can describe.
pub const VALUE_SIZE_MAX: usize = u32::MAX as usize;

const _: () = assert!(ROW_HEADER_SIZE == 1);
const _: () = assert!(FIXED_COLUMN_SIZE == size_of::<u64>());
const _: () = assert!(LENGTH_PREFIX_SIZE == size_of::<u32>());

/// The encoded size of a row, in bytes (what engines compare with `row_size_max`).
pub fn encoded_row_size(row: &Row) -> usize {
    ROW_HEADER_SIZE + row.iter().map(encoded_value_size).sum::<usize>()
}

/// Appends the encoding of `row` to `out`. The row is checked against the schema first
/// (`WrongArity`, `WrongType`, `RowTooLarge` for a value over [`VALUE_SIZE_MAX`]); on error
/// nothing is appended.
pub fn encode_row(schema: &Schema, row: &Row, out: &mut Vec<u8>) -> Result<()> {
    schema.validate_row(row)?;
    if let Some(size) = row
        .iter()
        .map(variable_size)
        .find(|&size| size > VALUE_SIZE_MAX)
    {
        return Err(Error::RowTooLarge {
            size: encoded_row_size(row).max(size),
            max: VALUE_SIZE_MAX,
        });
    }
    out.reserve(encoded_row_size(row));
    out.push(ROW_FORMAT_VERSION);
    for value in row {
        match value {
            Value::Int(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Float(v) => out.extend_from_slice(&v.to_bits().to_le_bytes()),
            Value::Text(v) => encode_variable(v.as_bytes(), out),
            Value::Bytes(v) => encode_variable(v, out),
        }
    }
    Ok(())
}

/// The encoding of `row` as a new vector; see [`encode_row`].
pub fn encode_row_to_vec(schema: &Schema, row: &Row) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_row(schema, row, &mut out)?;
    Ok(out)
}

/// Decodes a whole row, validating everything.
pub fn decode_row(schema: &Schema, bytes: &[u8]) -> Result<Row> {
    let mut reader = RowReader::new(schema, bytes)?;
    let mut row = Vec::with_capacity(schema.columns.len());
    for column in &schema.columns {
        let span = reader.next_span(column.column_type)?;
        row.push(reader.decode(column.column_type, span)?);
    }
    reader.finish()?;
    Ok(row)
}

/// Decodes only the columns `which` (in that order, repeats allowed). Columns after the last
/// one asked for are not read, and the ones skipped before it are only walked over (their
/// lengths checked, their contents neither copied nor validated), so this checks less than
/// [`decode_row`] does.
pub fn decode_columns(schema: &Schema, bytes: &[u8], which: &[usize]) -> Result<Row> {
    schema.validate_projection(which)?;
    let Some(&last) = which.iter().max() else {
        // Still check the header, so that an empty projection of garbage is not silently Ok.
        RowReader::new(schema, bytes)?;
        return Ok(Vec::new());
    };
    let mut reader = RowReader::new(schema, bytes)?;
    let mut spans = Vec::with_capacity(last + 1);
    for column in &schema.columns[..=last] {
        spans.push(reader.next_span(column.column_type)?);
    }
    which
        .iter()
        .map(|&c| reader.decode(schema.columns[c].column_type, spans[c]))
        .collect()
}

/// Where one column's contents lie in the row's bytes.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: usize,
    end: usize,
}

/// Walks the columns of one encoded row.
struct RowReader<'a> {
    schema: &'a Schema,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> RowReader<'a> {
    /// Checks the header.
    fn new(schema: &'a Schema, bytes: &'a [u8]) -> Result<RowReader<'a>> {
        let reader = RowReader {
            schema,
            bytes,
            at: ROW_HEADER_SIZE,
        };
        match bytes.get(VERSION_OFFSET) {
            Some(&ROW_FORMAT_VERSION) => Ok(reader),
            Some(&version) => Err(reader.corrupt(format!(
                "format version {version}, expected {ROW_FORMAT_VERSION}"
            ))),
            None => Err(reader.corrupt("empty".to_string())),
        }
    }

    /// The span of the next column's contents (after any length prefix), checked to lie
    /// within the bytes.
    fn next_span(&mut self, column_type: ColumnType) -> Result<Span> {
        let size = match column_type {
            ColumnType::Int64 | ColumnType::Float64 => FIXED_COLUMN_SIZE,
            ColumnType::Text | ColumnType::Bytes => {
                let prefix = self.take(LENGTH_PREFIX_SIZE)?;
                let length: [u8; LENGTH_PREFIX_SIZE] = self.bytes[prefix.start..prefix.end]
                    .try_into()
                    .expect("take returned LENGTH_PREFIX_SIZE bytes");
                // A u32 always fits in usize on the 64-bit targets storelab supports.
                u32::from_le_bytes(length) as usize
            }
        };
        self.take(size)
    }

    /// Takes `size` bytes, or fails without allocating if fewer remain.
    fn take(&mut self, size: usize) -> Result<Span> {
        let remaining = self.bytes.len() - self.at;
        if size > remaining {
            return Err(self.corrupt(format!(
                "a column needs {size} bytes at offset {} but {remaining} remain",
                self.at
            )));
        }
        let span = Span {
            start: self.at,
            end: self.at + size,
        };
        self.at = span.end;
        Ok(span)
    }

    /// Decodes a column from its span.
    fn decode(&self, column_type: ColumnType, span: Span) -> Result<Value> {
        let contents = &self.bytes[span.start..span.end];
        Ok(match column_type {
            ColumnType::Int64 => Value::Int(i64::from_le_bytes(fixed(contents))),
            ColumnType::Float64 => {
                Value::Float(f64::from_bits(u64::from_le_bytes(fixed(contents))))
            }
            ColumnType::Text => match std::str::from_utf8(contents) {
                Ok(text) => Value::Text(text.to_string()),
                Err(e) => {
                    return Err(
                        self.corrupt(format!("text at offset {} is not UTF-8: {e}", span.start))
                    );
                }
            },
            ColumnType::Bytes => Value::Bytes(contents.to_vec()),
        })
    }

    /// Checks that the row ended exactly after its last column.
    fn finish(&self) -> Result<()> {
        if self.at != self.bytes.len() {
            return Err(self.corrupt(format!(
                "{} trailing bytes after the last column",
                self.bytes.len() - self.at
            )));
        }
        Ok(())
    }

    fn corrupt(&self, reason: String) -> Error {
        Error::corrupt(format!("row of table {:?}", self.schema.name), reason)
    }
}

/// A fixed-size column's bytes as an array; its span was taken with `FIXED_COLUMN_SIZE`.
fn fixed(contents: &[u8]) -> [u8; FIXED_COLUMN_SIZE] {
    contents
        .try_into()
        .expect("fixed-size spans are FIXED_COLUMN_SIZE long")
}

/// Appends a length-prefixed value; its length was checked against `VALUE_SIZE_MAX`.
fn encode_variable(bytes: &[u8], out: &mut Vec<u8>) {
    let length = u32::try_from(bytes.len()).expect("encode_row checked VALUE_SIZE_MAX");
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Size of one encoded column.
fn encoded_value_size(value: &Value) -> usize {
    match value {
        Value::Int(_) | Value::Float(_) => FIXED_COLUMN_SIZE,
        Value::Text(_) | Value::Bytes(_) => LENGTH_PREFIX_SIZE + variable_size(value),
    }
}

/// Length of a Text or Bytes value's contents; 0 for fixed-size values.
fn variable_size(value: &Value) -> usize {
    match value {
        Value::Int(_) | Value::Float(_) => 0,
        Value::Text(v) => v.len(),
        Value::Bytes(v) => v.len(),
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;
    use ColumnType::{Bytes, Float64, Int64, Text};

    fn schema_of(types: &[ColumnType]) -> Schema {
        types
            .iter()
            .enumerate()
            .fold(Schema::builder("t"), |b, (i, &t)| {
                b.column(&format!("c{i}"), t)
            })
            .build()
            .expect("valid schema")
    }

    fn value_of(column_type: ColumnType) -> BoxedStrategy<Value> {
        match column_type {
            Int64 => any::<i64>().prop_map(Value::Int).boxed(),
            Float64 => any::<u64>()
                .prop_map(|b| Value::Float(f64::from_bits(b)))
                .boxed(),
            Text => ".{0,8}".prop_map(Value::Text).boxed(),
            Bytes => any::<Vec<u8>>().prop_map(Value::Bytes).boxed(),
        }
    }

    fn types() -> impl Strategy<Value = Vec<ColumnType>> {
        let column_type = prop_oneof![Just(Int64), Just(Float64), Just(Text), Just(Bytes)];
        proptest::collection::vec(column_type, 1..6)
    }

    fn schema_and_row() -> impl Strategy<Value = (Vec<ColumnType>, Row)> {
        types().prop_flat_map(|types| {
            let row: Vec<_> = types.iter().map(|&t| value_of(t)).collect();
            (Just(types), row)
        })
    }

    proptest! {
        /// Decoding an encoded row gives it back bit for bit; the size is predicted exactly;
        /// any projection decodes to the projected values.
        #[test]
        fn decode_inverts_encode(
            (types, row) in schema_and_row(),
            which in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let schema = schema_of(&types);
            let bytes = encode_row_to_vec(&schema, &row).unwrap();
            prop_assert_eq!(bytes.len(), encoded_row_size(&row));
            let decoded = decode_row(&schema, &bytes).unwrap();
            prop_assert_eq!(Value::tuple_cmp(&decoded, &row), Ordering::Equal);
            let which: Vec<usize> = which.into_iter().map(|c| c % types.len()).collect();
            let projected = decode_columns(&schema, &bytes, &which).unwrap();
            let expected = schema.project(&row, &which);
            prop_assert_eq!(Value::tuple_cmp(&projected, &expected), Ordering::Equal);
        }

        /// Arbitrary bytes decode to a row or an error; never a panic.
        #[test]
        fn decode_of_arbitrary_bytes_does_not_panic(
            types in types(),
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            which in proptest::collection::vec(0usize..6, 0..4),
        ) {
            let schema = schema_of(&types);
            let mut bytes = bytes;
            if let Some(first) = bytes.first_mut() {
                // Mostly the right version, so the column decoders are reached.
                if *first < 0xF0 {
                    *first = ROW_FORMAT_VERSION;
                }
            }
            let _ = decode_row(&schema, &bytes);
            let which: Vec<usize> = which.into_iter().map(|c| c % types.len()).collect();
            let _ = decode_columns(&schema, &bytes, &which);
        }

        /// Every truncation of a valid row is corrupt.
        #[test]
        fn truncated_rows_are_corrupt((types, row) in schema_and_row(), cut in any::<usize>()) {
            let schema = schema_of(&types);
            let bytes = encode_row_to_vec(&schema, &row).unwrap();
            let cut = cut % bytes.len();
            let is_corrupt = matches!(decode_row(&schema, &bytes[..cut]), Err(Error::Corrupt { .. }));
            prop_assert!(is_corrupt);
        }
    }

    /// The example of the module doc.
    #[test]
    fn encodes_documented_example() {
        let schema = schema_of(&[Int64, Text, Float64]);
        let row = vec![Value::Int(7), Value::from("ab"), Value::Float(1.5)];
        let bytes = encode_row_to_vec(&schema, &row).unwrap();
        let expected = [
            1, 7, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0x61, 0x62, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f,
        ];
        assert_eq!(bytes, expected);
    }

    /// A wrong version, a length past the end, bad UTF-8 and trailing bytes are corrupt.
    #[test]
    fn decode_rejects_malformed_rows() {
        let schema = schema_of(&[Text]);
        let cases: [&[u8]; 5] = [
            &[],
            &[2, 0, 0, 0, 0],
            &[1, 0xff, 0xff, 0xff, 0xff, b'a'],
            &[1, 1, 0, 0, 0, 0xc3],
            &[1, 0, 0, 0, 0, 0],
        ];
        for bytes in cases {
            let result = decode_row(&schema, bytes);
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{bytes:?}: {result:?}"
            );
        }
    }

    /// A row that does not fit the schema is refused and nothing is appended.
    #[test]
    fn encode_rejects_mistyped_rows() {
        let schema = schema_of(&[Int64]);
        let mut out = Vec::new();
        let result = encode_row(&schema, &vec![Value::from("x")], &mut out);
        assert!(matches!(result, Err(Error::WrongType { .. })));
        assert!(out.is_empty());
    }

    /// A projection naming a column the table lacks is an error, not a panic.
    #[test]
    fn decode_columns_rejects_unknown_columns() {
        let schema = schema_of(&[Int64]);
        let bytes = encode_row_to_vec(&schema, &vec![Value::Int(1)]).unwrap();
        let result = decode_columns(&schema, &bytes, &[1]);
        assert!(matches!(result, Err(Error::NoSuchColumn { .. })));
    }
}
