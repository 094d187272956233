//! storelab's table layer: what every engine shares above its physical design.
//!
//! (design doc to be written with the implementation)

pub mod engine;
pub mod error;
pub mod schema;
pub mod value;

pub use engine::{
    BatchOutcome, Engine, EngineStats, IndexScanMethod, Op, Predicate, ScanSpec, Table, TableStats,
    Visitor,
};
pub use error::{Error, Result};
pub use schema::{Column, IndexDef, Schema};
pub use value::{ColumnType, Row, Value};
