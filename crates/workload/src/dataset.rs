//! The data sets: YCSB's `usertable` and an `orders` table with a correlated and an
//! uncorrelated secondary index.
//!
//! Rows are a pure function of (record number, seed), so a loader and a checker agree on
//! every row without storing them.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_table::{ColumnType, Row, Schema, Value};

use crate::generator::fnv1a64;

/// YCSB's usertable: `ycsb_key` (text pk `"user" + fnv1a64(n)`) and `field_count` fields of
/// `field_bytes` bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UserTable {
    /// Fields per row (YCSB: 10).
    pub field_count: usize,
    /// Bytes per field (YCSB: 100).
    pub field_bytes: usize,
}

impl Default for UserTable {
    fn default() -> Self {
        UserTable {
            field_count: 10,
            field_bytes: 100,
        }
    }
}

/// The usertable's name.
pub const USERTABLE: &str = "usertable";

impl UserTable {
    /// The schema: `ycsb_key` text primary key, `field0..` text.
    pub fn schema(&self) -> Schema {
        let mut b = Schema::builder(USERTABLE).column("ycsb_key", ColumnType::Text);
        for i in 0..self.field_count {
            b = b.column(&format!("field{i}"), ColumnType::Text);
        }
        b.primary_key(&["ycsb_key"])
            .build()
            .expect("a valid schema")
    }

    /// The key of record `n` (YCSB's `"user" + fnvhash64(n)` with hashed inserts).
    pub fn key(n: u64) -> Value {
        Value::Text(format!("user{}", fnv1a64(n)))
    }

    /// A field value drawn from `rng`: printable ASCII.
    pub fn field(&self, rng: &mut impl Rng) -> Value {
        let bytes: Vec<u8> = (0..self.field_bytes)
            .map(|_| rng.random_range(b' '..=b'~'))
            .collect();
        Value::Text(String::from_utf8(bytes).expect("ASCII"))
    }

    /// Row `n` of the data set with `seed`.
    pub fn row(&self, n: u64, seed: u64) -> Row {
        let mut rng = StdRng::seed_from_u64(seed ^ fnv1a64(n));
        let mut row = Vec::with_capacity(self.field_count + 1);
        row.push(Self::key(n));
        for _ in 0..self.field_count {
            row.push(self.field(&mut rng));
        }
        row
    }

    /// Bytes of user data in one row (key and fields), for amplification figures.
    pub fn row_bytes(&self) -> u64 {
        (24 + self.field_count * self.field_bytes) as u64
    }
}

/// The orders table's name.
pub const ORDERS: &str = "orders";
/// Customers in the orders table (the uncorrelated column's range).
pub const ORDERS_CUSTOMERS: i64 = 10_000;
/// Orders per day (the correlated column: `o_date = o_id / ORDERS_PER_DAY`).
pub const ORDERS_PER_DAY: i64 = 100;

/// An `orders`-like table: `o_id` (pk, inserted in order), `o_date` (correlated with the key:
/// `o_id / 100`, index `by_date`), `o_cust` (uncorrelated: a hash of the id, index
/// `by_cust`), `o_amount` (float), `o_status` (one letter), `o_comment` (padding text).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Orders;

impl Orders {
    /// The schema.
    pub fn schema(&self) -> Schema {
        Schema::builder(ORDERS)
            .column("o_id", ColumnType::Int64)
            .column("o_date", ColumnType::Int64)
            .column("o_cust", ColumnType::Int64)
            .column("o_amount", ColumnType::Float64)
            .column("o_status", ColumnType::Text)
            .column("o_comment", ColumnType::Text)
            .primary_key(&["o_id"])
            .index("by_date", &["o_date"], false)
            .index("by_cust", &["o_cust"], false)
            .build()
            .expect("a valid schema")
    }

    /// Row `n`.
    pub fn row(&self, n: u64, seed: u64) -> Row {
        let mut rng = StdRng::seed_from_u64(seed ^ fnv1a64(n) ^ 0x5EED);
        let status = ["F", "O", "P"][rng.random_range(0..3)];
        vec![
            Value::Int(n as i64),
            Value::Int(n as i64 / ORDERS_PER_DAY),
            Value::Int((fnv1a64(n ^ 0x0C05) % ORDERS_CUSTOMERS as u64) as i64),
            Value::Float((rng.random_range(100..100_000) as f64) / 100.0),
            Value::Text(status.to_string()),
            Value::Text("c".repeat(rng.random_range(40..80))),
        ]
    }

    /// Column indexes.
    pub const DATE: usize = 1;
    /// The customer column.
    pub const CUST: usize = 2;
    /// The amount column.
    pub const AMOUNT: usize = 3;
    /// The status column.
    pub const STATUS: usize = 4;
}
