//! Order-preserving ("memcomparable") key encoding: comparing two encoded keys as byte
//! strings gives the same answer as comparing the value tuples column by column, so a B+tree
//! or an LSM that only knows `memcmp` sorts rows by their typed keys.
//!
//! ```text
//!   Int64    8 bytes big-endian, sign bit flipped        -1 -> 7f ff ff ff ff ff ff ff
//!                                                         0 -> 80 00 00 00 00 00 00 00
//!   Float64  8 bytes big-endian: positive -> sign bit set, negative -> all bits flipped
//!            (the order of f64::total_cmp: -NaN < -inf < ... < -0.0 < 0.0 < ... < inf < NaN)
//!   Text,    the bytes, each 00 escaped as 00 ff, then the terminator 00 00
//!   Bytes                                          "a"     -> 61 00 00
//!                                                  "a\0b"  -> 61 00 ff 62 00 00
//! ```
//!
//! No type tags and no column count are stored: a key is decoded against the types of the
//! index's columns. Every column's encoding is self-delimiting, so no encoded tuple is a
//! proper prefix of the encoding of another tuple of the same types; that makes the tuple
//! order and the byte order agree, and lets an index append a suffix (the primary key in a
//! secondary index, or a TID) after the encoded columns without disturbing the order.
//!
//! The same scheme is used by CockroachDB and MyRocks ("memcomparable format"); both also
//! encode NULL and descending columns, which storelab does not have.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::value::{ColumnType, Value};

/// Size of an encoded `Int64` or `Float64` column.
pub const FIXED_KEY_COLUMN_SIZE: usize = 8;
/// Escape byte in an encoded text or bytes column; always followed by a second byte.
const ESCAPE: u8 = 0x00;
/// `ESCAPE, ESCAPED_ZERO` stands for one 0x00 byte of the value.
const ESCAPED_ZERO: u8 = 0xFF;
/// `ESCAPE, TERMINATOR` ends a text or bytes column; it sorts below every escaped byte, so a
/// shorter string sorts before any longer string it is a prefix of.
const TERMINATOR: u8 = 0x00;
/// Size of the terminator of a text or bytes column.
const TERMINATOR_SIZE: usize = 2;
/// The sign bit of a 64-bit word.
const SIGN_BIT: u64 = 1 << 63;

/// What a decode error names as the corrupt structure.
const KEY_WHAT: &str = "key";

/// Appends the encoding of `values` to `out`.
pub fn encode_key(values: &[Value], out: &mut Vec<u8>) {
    for value in values {
        match value {
            Value::Int(v) => out.extend_from_slice(&((*v as u64) ^ SIGN_BIT).to_be_bytes()),
            Value::Float(v) => out.extend_from_slice(&float_to_ordered(*v).to_be_bytes()),
            Value::Text(v) => encode_escaped(v.as_bytes(), out),
            Value::Bytes(v) => encode_escaped(v, out),
        }
    }
}

/// The encoding of `values` as a new vector.
pub fn encode_key_to_vec(values: &[Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_key_size(values));
    encode_key(values, &mut out);
    out
}

/// The size in bytes of the encoding of `values`.
pub fn encoded_key_size(values: &[Value]) -> usize {
    values
        .iter()
        .map(|value| match value {
            Value::Int(_) | Value::Float(_) => FIXED_KEY_COLUMN_SIZE,
            Value::Text(v) => escaped_size(v.as_bytes()),
            Value::Bytes(v) => escaped_size(v),
        })
        .sum()
}

/// Decodes a key that holds exactly one value of each of `types`; trailing bytes are an
/// error.
pub fn decode_key(bytes: &[u8], types: &[ColumnType]) -> Result<Vec<Value>> {
    let (values, size) = decode_key_prefix(bytes, types)?;
    if size != bytes.len() {
        let reason = format!("{} trailing bytes after the key", bytes.len() - size);
        return Err(Error::corrupt(KEY_WHAT, reason));
    }
    Ok(values)
}

/// Decodes one value of each of `types` from the start of `bytes` and returns them with the
/// number of bytes they took; what follows (a secondary index's primary-key suffix) is left.
pub fn decode_key_prefix(bytes: &[u8], types: &[ColumnType]) -> Result<(Vec<Value>, usize)> {
    let mut values = Vec::with_capacity(types.len());
    let mut at = 0;
    for column_type in types {
        let rest = &bytes[at..];
        let (value, size) = match column_type {
            ColumnType::Int64 => {
                let word = read_word(rest, at)?;
                (Value::Int((word ^ SIGN_BIT) as i64), FIXED_KEY_COLUMN_SIZE)
            }
            ColumnType::Float64 => {
                let word = read_word(rest, at)?;
                (Value::Float(ordered_to_float(word)), FIXED_KEY_COLUMN_SIZE)
            }
            ColumnType::Text => {
                let (raw, size) = decode_escaped(rest, at)?;
                let text = String::from_utf8(raw).map_err(|e| {
                    Error::corrupt(KEY_WHAT, format!("text at byte {at} is not UTF-8: {e}"))
                })?;
                (Value::Text(text), size)
            }
            ColumnType::Bytes => {
                let (raw, size) = decode_escaped(rest, at)?;
                (Value::Bytes(raw), size)
            }
        };
        values.push(value);
        at += size;
    }
    Ok((values, at))
}

/// Lower and upper bounds on encoded keys, as `BTreeMap::range` takes them (for the B+tree's
/// `range`, borrow each with `bound.as_ref().map(Vec::as_slice)`).
pub type ByteRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Translates bounds on a key prefix into bounds on encoded keys, or `None` when they select
/// no key at all (so a caller never hands an inverted range to `BTreeMap::range`, which
/// panics on one).
///
/// Each bound is a prefix `P` of the key's columns (possibly empty or the whole key); a key
/// `k` is selected by
///
/// ```text
///   lower Included(P): k[..|P|] >= P      upper Included(P): k[..|P|] <= P
///   lower Excluded(P): k[..|P|] >  P      upper Excluded(P): k[..|P|] <  P
/// ```
///
/// so `Included(P)` on both sides selects exactly the keys starting with `P`, whatever
/// follows them, including any suffix appended after the encoded columns (a secondary
/// index's primary key). Let `e` be the encoding of `P` and `succ(e)` the least byte string
/// above every string that starts with `e` ([`prefix_successor`]):
///
/// ```text
///   lower Included(P) -> Included(e)         upper Included(P) -> Excluded(succ(e))
///   lower Excluded(P) -> Included(succ(e))   upper Excluded(P) -> Excluded(e)
/// ```
///
/// Because no encoded tuple is a proper prefix of another, a key whose first `|P|` columns
/// differ from `P` differs from `e` at a byte within `e`, and so sorts on the correct side of
/// both `e` and `succ(e)`.
pub fn key_range(lower: &Bound<Vec<Value>>, upper: &Bound<Vec<Value>>) -> Option<ByteRange> {
    let lower = match lower {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(prefix) => Bound::Included(encode_key_to_vec(prefix)),
        // No successor: every key starts with the prefix (it is empty) or sorts below it
        // (it encodes as all 0xff), so nothing lies above it.
        Bound::Excluded(prefix) => Bound::Included(prefix_successor(&encode_key_to_vec(prefix))?),
    };
    let upper = match upper {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(prefix) => match prefix_successor(&encode_key_to_vec(prefix)) {
            Some(successor) => Bound::Excluded(successor),
            None => Bound::Unbounded,
        },
        Bound::Excluded(prefix) => Bound::Excluded(encode_key_to_vec(prefix)),
    };
    if range_is_empty(&lower, &upper) {
        return None;
    }
    Some((lower, upper))
}

/// The least byte string greater than every string that starts with `prefix`: drop trailing
/// 0xff bytes and increment the last remaining one. `None` when there is none (`prefix` is
/// empty or all 0xff).
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|&byte| byte != 0xFF)?;
    let mut successor = prefix[..=last].to_vec();
    successor[last] += 1;
    Some(successor)
}

/// Whether no byte string lies within `lower..upper`.
fn range_is_empty(lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let (low, low_included) = match lower {
        Bound::Unbounded => (&[][..], true),
        Bound::Included(low) => (&low[..], true),
        Bound::Excluded(low) => (&low[..], false),
    };
    match upper {
        Bound::Unbounded => false,
        Bound::Included(high) => low > &high[..] || (low == &high[..] && !low_included),
        Bound::Excluded(high) => low >= &high[..],
    }
}

/// Maps a float's bits to a word whose unsigned order is `f64::total_cmp`'s order.
fn float_to_ordered(value: f64) -> u64 {
    let bits = value.to_bits();
    if bits & SIGN_BIT != 0 {
        !bits
    } else {
        bits | SIGN_BIT
    }
}

/// Inverse of [`float_to_ordered`].
fn ordered_to_float(word: u64) -> f64 {
    let bits = if word & SIGN_BIT != 0 {
        word & !SIGN_BIT
    } else {
        !word
    };
    f64::from_bits(bits)
}

/// Appends `bytes` escaped and terminated.
fn encode_escaped(bytes: &[u8], out: &mut Vec<u8>) {
    for &byte in bytes {
        out.push(byte);
        if byte == ESCAPE {
            out.push(ESCAPED_ZERO);
        }
    }
    out.extend_from_slice(&[ESCAPE, TERMINATOR]);
}

/// Size of `bytes` escaped and terminated.
fn escaped_size(bytes: &[u8]) -> usize {
    let zero_count = bytes.iter().filter(|&&byte| byte == ESCAPE).count();
    bytes.len() + zero_count + TERMINATOR_SIZE
}

/// Reads a fixed-size column; `at` is its offset in the whole key, for the error message.
fn read_word(rest: &[u8], at: usize) -> Result<u64> {
    let word: [u8; FIXED_KEY_COLUMN_SIZE] = rest
        .get(..FIXED_KEY_COLUMN_SIZE)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            let reason = format!("truncated 8-byte column at byte {at}");
            Error::corrupt(KEY_WHAT, reason)
        })?;
    Ok(u64::from_be_bytes(word))
}

/// Unescapes a text or bytes column at the start of `rest`; returns it and the encoded size
/// (terminator included). The result is never longer than `rest`.
fn decode_escaped(rest: &[u8], at: usize) -> Result<(Vec<u8>, usize)> {
    let mut raw = Vec::new();
    let mut i = 0;
    loop {
        let Some(&byte) = rest.get(i) else {
            let reason = format!("unterminated string column starting at byte {at}");
            return Err(Error::corrupt(KEY_WHAT, reason));
        };
        if byte != ESCAPE {
            raw.push(byte);
            i += 1;
            continue;
        }
        match rest.get(i + 1) {
            Some(&TERMINATOR) => return Ok((raw, i + TERMINATOR_SIZE)),
            Some(&ESCAPED_ZERO) => {
                raw.push(ESCAPE);
                i += 2;
            }
            Some(&other) => {
                let reason = format!("invalid escape 00 {other:02x} at byte {}", at + i);
                return Err(Error::corrupt(KEY_WHAT, reason));
            }
            None => {
                let reason = format!("unterminated string column starting at byte {at}");
                return Err(Error::corrupt(KEY_WHAT, reason));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    use proptest::prelude::*;

    use super::*;

    /// Values of one type, biased toward the edges of the encoding: zero bytes, 0xff bytes,
    /// extreme integers, signed zeros and NaNs with the extreme payloads.
    fn value_of(column_type: ColumnType) -> BoxedStrategy<Value> {
        match column_type {
            ColumnType::Int64 => {
                prop_oneof![-3i64..3, Just(i64::MIN), Just(i64::MAX), any::<i64>()]
                    .prop_map(Value::Int)
                    .boxed()
            }
            ColumnType::Float64 => prop_oneof![
                Just(0.0f64),
                Just(-0.0f64),
                Just(1.5f64),
                Just(f64::from_bits(u64::MAX)),
                Just(f64::from_bits(u64::MAX >> 1)),
                any::<u64>().prop_map(f64::from_bits),
                any::<f64>(),
            ]
            .prop_map(Value::Float)
            .boxed(),
            ColumnType::Text => "[a\u{0}b\u{7f}\u{e9}]{0,4}".prop_map(Value::Text).boxed(),
            ColumnType::Bytes => proptest::collection::vec(
                prop_oneof![Just(0u8), Just(0xFFu8), Just(1u8), any::<u8>()],
                0..5,
            )
            .prop_map(Value::Bytes)
            .boxed(),
        }
    }

    fn column_type() -> impl Strategy<Value = ColumnType> {
        prop_oneof![
            Just(ColumnType::Int64),
            Just(ColumnType::Float64),
            Just(ColumnType::Text),
            Just(ColumnType::Bytes),
        ]
    }

    fn tuple_of(types: &[ColumnType]) -> BoxedStrategy<Vec<Value>> {
        types
            .iter()
            .map(|&t| value_of(t))
            .collect::<Vec<_>>()
            .boxed()
    }

    /// Column types and `count` tuples of them.
    fn tuples(
        count: std::ops::Range<usize>,
    ) -> impl Strategy<Value = (Vec<ColumnType>, Vec<Vec<Value>>)> {
        proptest::collection::vec(column_type(), 1..4).prop_flat_map(move |types| {
            let tuples = proptest::collection::vec(tuple_of(&types), count.clone());
            (Just(types), tuples)
        })
    }

    fn bound_of(prefix: Vec<Value>, kind: u8) -> Bound<Vec<Value>> {
        match kind % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(prefix),
            _ => Bound::Excluded(prefix),
        }
    }

    /// Whether `key` satisfies the prefix bounds, by comparing typed tuples.
    fn selected(key: &[Value], lower: &Bound<Vec<Value>>, upper: &Bound<Vec<Value>>) -> bool {
        let against = |prefix: &Vec<Value>| Value::tuple_cmp(&key[..prefix.len()], prefix);
        let above = match lower {
            Bound::Unbounded => true,
            Bound::Included(p) => against(p) != Ordering::Less,
            Bound::Excluded(p) => against(p) == Ordering::Greater,
        };
        let below = match upper {
            Bound::Unbounded => true,
            Bound::Included(p) => against(p) != Ordering::Greater,
            Bound::Excluded(p) => against(p) == Ordering::Less,
        };
        above && below
    }

    fn in_byte_range(bytes: &[u8], range: &Option<ByteRange>) -> bool {
        let Some((lower, upper)) = range else {
            return false;
        };
        let above = match lower {
            Bound::Unbounded => true,
            Bound::Included(b) => bytes >= &b[..],
            Bound::Excluded(b) => bytes > &b[..],
        };
        let below = match upper {
            Bound::Unbounded => true,
            Bound::Included(b) => bytes <= &b[..],
            Bound::Excluded(b) => bytes < &b[..],
        };
        above && below
    }

    proptest! {
        /// Byte order of encodings equals the tuple order, for every type mix.
        #[test]
        fn encoding_preserves_tuple_order((_types, keys) in tuples(2..3)) {
            let (a, b) = (&keys[0], &keys[1]);
            let ordering = encode_key_to_vec(a).cmp(&encode_key_to_vec(b));
            prop_assert_eq!(ordering, Value::tuple_cmp(a, b), "{:?} vs {:?}", a, b);
        }

        /// Decoding an encoding gives back the same values, bit for bit, and
        /// `encoded_key_size` predicts the size.
        #[test]
        fn decode_inverts_encode((types, keys) in tuples(1..2), suffix in any::<Vec<u8>>()) {
            let key = &keys[0];
            let mut bytes = encode_key_to_vec(key);
            prop_assert_eq!(bytes.len(), encoded_key_size(key));
            let decoded = decode_key(&bytes, &types).expect("an encoding decodes");
            prop_assert_eq!(Value::tuple_cmp(&decoded, key), Ordering::Equal);
            let size = bytes.len();
            bytes.extend_from_slice(&suffix);
            let (decoded, taken) = decode_key_prefix(&bytes, &types).expect("prefix decodes");
            prop_assert_eq!(taken, size);
            prop_assert_eq!(Value::tuple_cmp(&decoded, key), Ordering::Equal);
        }

        /// Decoding arbitrary bytes returns a value or an error, never panics.
        #[test]
        fn decode_of_arbitrary_bytes_does_not_panic(
            types in proptest::collection::vec(column_type(), 0..4),
            bytes in any::<Vec<u8>>(),
        ) {
            let _ = decode_key(&bytes, &types);
        }

        /// `key_range` selects exactly the keys the prefix bounds select, with any suffix
        /// appended after the encoded columns (a secondary index's primary key).
        #[test]
        fn key_range_selects_exactly_the_prefix_matches(
            (_types, keys) in tuples(8..20),
            suffixes in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![Just(0u8), Just(0xFFu8), any::<u8>()], 0..4),
                20,
            ),
            picks in (any::<usize>(), any::<usize>(), any::<usize>(), any::<usize>()),
            kinds in (any::<u8>(), any::<u8>()),
        ) {
            let (lower_key, lower_len, upper_key, upper_len) = picks;
            let prefix = |pick: usize, len: usize| {
                let key = &keys[pick % keys.len()];
                key[..len % (key.len() + 1)].to_vec()
            };
            let lower = bound_of(prefix(lower_key, lower_len), kinds.0);
            let upper = bound_of(prefix(upper_key, upper_len), kinds.1);
            let range = key_range(&lower, &upper);
            for (key, suffix) in keys.iter().zip(&suffixes) {
                let mut bytes = encode_key_to_vec(key);
                bytes.extend_from_slice(suffix);
                prop_assert_eq!(
                    in_byte_range(&bytes, &range),
                    selected(key, &lower, &upper),
                    "key {:?} lower {:?} upper {:?} range {:?}", key, lower, upper, range
                );
            }
        }
    }

    /// The examples of the module doc.
    #[test]
    fn encodes_documented_examples() {
        assert_eq!(
            encode_key_to_vec(&[Value::Int(-1)]),
            [0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        );
        assert_eq!(
            encode_key_to_vec(&[Value::Int(0)]),
            [0x80, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encode_key_to_vec(&[Value::from("a")]), [0x61, 0, 0]);
        assert_eq!(
            encode_key_to_vec(&[Value::from("a\0b")]),
            [0x61, 0, 0xff, 0x62, 0, 0]
        );
    }

    /// The successor drops trailing 0xff bytes; all-0xff and empty prefixes have none.
    #[test]
    fn prefix_successor_skips_trailing_ff() {
        assert_eq!(prefix_successor(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    /// Excluding the largest integer or the empty prefix from below selects nothing, and an
    /// inverted range is reported empty instead of reaching `BTreeMap::range`.
    #[test]
    fn key_range_reports_empty_ranges() {
        let max = vec![Value::Int(i64::MAX)];
        assert_eq!(
            key_range(&Bound::Excluded(max.clone()), &Bound::Unbounded),
            None
        );
        assert_eq!(key_range(&Bound::Excluded(vec![]), &Bound::Unbounded), None);
        let one = vec![Value::Int(1)];
        let two = vec![Value::Int(2)];
        assert_eq!(
            key_range(&Bound::Included(two.clone()), &Bound::Included(one)),
            None
        );
        assert_eq!(
            key_range(&Bound::Included(two.clone()), &Bound::Excluded(two)),
            None
        );
        let (_, upper) = key_range(&Bound::Unbounded, &Bound::Included(max)).expect("not empty");
        assert_eq!(upper, Bound::Unbounded);
    }

    /// Truncated fixed columns, unterminated strings, bad escapes, invalid UTF-8 and trailing
    /// bytes are all `Corrupt`.
    #[test]
    fn decode_rejects_malformed_keys() {
        let cases: [(&[u8], ColumnType); 5] = [
            (&[0x80, 0], ColumnType::Int64),
            (&[0x61, 0], ColumnType::Text),
            (&[0x61, 0, 0x01, 0, 0], ColumnType::Bytes),
            (&[0xc3, 0, 0], ColumnType::Text),
            (&[0x61, 0, 0, 0x61], ColumnType::Bytes),
        ];
        for (bytes, column_type) in cases {
            let result = decode_key(bytes, &[column_type]);
            assert!(
                matches!(result, Err(Error::Corrupt { .. })),
                "{bytes:?}: {result:?}"
            );
        }
    }
}
