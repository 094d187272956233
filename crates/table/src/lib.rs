//! storelab's table layer: what every engine shares above its physical design.
//!
//! The layers below (pager, wal, btree) store bytes. This crate gives those bytes meaning:
//! a table has a [`Schema`] (typed columns, an optional primary key, secondary indexes), rows
//! are tuples of [`Value`]s, and every engine (heap, clustered, LSM) implements the same
//! [`Engine`] and [`Table`] traits, so one test kit and one benchmark driver run against all
//! of them. [`reference::ReferenceEngine`] implements the traits with `BTreeMap`s and is the
//! expected answer in tests.
//!
//! ```text
//!   cli, workload, testkit
//!          |  Engine / Table traits (engine.rs)
//!   heap | clustered | lsm | reference          <- one per physical design
//!          |  schema.rs  codec.rs  key.rs  catalog.rs   (this crate)
//!   btree, wal, pager
//! ```
//!
//! # Keys: order-preserving encoding ([`key`])
//!
//! B+trees and LSM blocks compare keys with `memcmp`, so key tuples are encoded such that
//! byte order equals tuple order: integers big-endian with the sign bit flipped, floats in
//! `f64::total_cmp` order, strings with 0x00 escaped and a 0x00 0x00 terminator. A secondary
//! index key is the encoded index columns followed by the encoded primary key (clustered,
//! LSM) or a TID (heap), which makes every entry unique and keeps equal index keys together:
//!
//! ```text
//!   index by_city on (city), primary key (id):   ("Oslo", 7)
//!
//!   4f 73 6c 6f 00 00 | 80 00 00 00 00 00 00 07
//!   'O' 's' 'l' 'o' end | id 7, sign bit flipped
//!   \-- encode(city) --/ \------ suffix: encode(id) ------/
//! ```
//!
//! Scan bounds are prefixes of the key's columns; [`key::key_range`] turns them into byte
//! bounds that include exactly the keys with that prefix, suffix or not (`Included(p)` as
//! upper bound becomes `Excluded(successor(encode(p)))`).
//!
//! # Rows ([`codec`])
//!
//! One format for every engine: a version byte, then each column in schema order (Int64 and
//! Float64 as 8 bytes little-endian, Text and Bytes as a u32 length and the bytes). The
//! column table is in [`codec`]'s doc. Decoding validates every length before using it.
//!
//! # The catalog ([`catalog`])
//!
//! Each engine directory holds `catalog.json`: format version, engine name, and per table
//! its id, schema and an opaque engine blob. It is replaced atomically (write a temporary
//! file, sync, rename, sync the directory), so a crash leaves the old or the new catalog,
//! never a torn one; a failed sync poisons it.
//!
//! # The contract every engine keeps
//!
//! 1. **Atomic batches.** [`Table::apply`] applies a batch of [`Op`]s all or nothing, also
//!    across a crash. Ops see the effects of earlier ops in the same batch.
//! 2. **Wrong input returns a typed error and changes nothing.** Unknown tables, columns or
//!    indexes, wrong types or arity, duplicate primary or unique keys, primary-key updates,
//!    rows over [`Engine::row_size_max`]: each has an [`Error`] variant with the details, and
//!    the table is as it was.
//! 3. **Bytes from disk are untrusted.** Anything that does not decode is
//!    [`Error::Corrupt`], never a panic; lengths are checked before allocating.
//! 4. **Scan order.** Primary-key range scans return key order (or its reverse). A full
//!    scan (no index, both bounds unbounded, not reversed) returns rows in the engine's own
//!    order: key order for the clustered engines and the reference, physical order for the
//!    heap. Secondary scans return index-key order, rows with equal index keys in the
//!    engine's order (by primary key, or by TID in the heap); `IndexScanMethod::Bitmap`
//!    returns physical order. Tests compare what is not key-ordered as multisets.
//! 5. **Hidden row ids.** A table without a primary key is keyed by row ids 1, 2, 3, ... in
//!    insert order, never reused; `get`, `update` and `delete` then take
//!    `[Value::Int(row_id)]`. Ids are not promised to be gap-free (an engine may skip ids
//!    after a crash or a failed batch, as InnoDB's `DB_ROW_ID` does after a restart).
//!
//! # Example
//!
//! ```
//! use storelab_table::{ColumnType, Engine, ReferenceEngine, Schema, Value};
//!
//! let engine = ReferenceEngine::new(4096);
//! let schema = Schema::builder("users")
//!     .column("id", ColumnType::Int64)
//!     .column("city", ColumnType::Text)
//!     .primary_key(&["id"])
//!     .index("by_city", &["city"], false)
//!     .build()?;
//! let users = engine.create_table(schema)?;
//! users.insert(vec![Value::Int(7), Value::from("Oslo")])?;
//! let found = users.lookup("by_city", &[Value::from("Oslo")])?;
//! assert_eq!(found, [vec![Value::Int(7), Value::from("Oslo")]]);
//! # Ok::<(), storelab_table::Error>(())
//! ```
//!
//! # Simplified versus a real database
//!
//! - No NULLs, no schema changes (`ALTER TABLE`), no `DROP TABLE`, no transactions across
//!   batches or tables, no isolation levels: a batch is the unit of atomicity and scans see
//!   whatever the engine gives them.
//! - No collations: text compares bytewise (as PostgreSQL's `C` collation).
//! - The row format has no null bitmap, no alignment and no offset array, so reading column
//!   `i` walks the columns before it (PostgreSQL caches offsets of fixed-width prefixes;
//!   InnoDB stores an offset array in the record header).
//! - The catalog is one JSON file rewritten on every change, rather than system tables in
//!   the engine itself (PostgreSQL's `pg_class`, InnoDB's data dictionary).
//!
//! # Further reading
//!
//! - CockroachDB's key encoding (`pkg/util/encoding`) and MyRocks' "memcomparable format".
//! - PostgreSQL `src/backend/access/common/heaptuple.c` for a real tuple format.
//! - toydb's `src/encoding/keycode.rs`, a small order-preserving encoding with serde.

pub mod catalog;
pub mod codec;
pub mod engine;
pub mod error;
pub mod key;
pub mod reference;
pub mod schema;
pub mod storage;
pub mod value;

pub use catalog::{Catalog, CatalogEntry, TableId};
pub use codec::{decode_columns, decode_row, encode_row, encoded_row_size};
pub use engine::{
    BatchOutcome, Engine, EngineStats, IndexScanMethod, Op, Predicate, ScanSpec, Table, TableStats,
    Visitor,
};
pub use error::{Error, Result};
pub use key::{ByteRange, decode_key, encode_key, key_range};
pub use reference::ReferenceEngine;
pub use schema::{Column, IndexDef, Schema, SchemaBuilder};
pub use storage::{Storage, StorageConfig};
pub use value::{ColumnType, Row, Value};
