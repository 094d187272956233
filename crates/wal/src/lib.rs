//! storelab's write-ahead log (design doc being written).

pub mod config;
pub mod control;
pub mod doublewrite;
pub mod error;
pub mod reader;
pub mod record;
pub mod recovery;
pub mod segment;
pub mod wal;

pub use config::{CommitMode, TornPageMode, WalConfig};
pub use error::{Error, Result};
pub use reader::{EndReason, ReadEnd, WalReader};
pub use record::{
    BLOCKS_PER_RECORD_MAX, Block, BlockRef, RECORD_SIZE_MAX, Record, RecordBuilder, RecordType, RelId,
};
pub use recovery::{RecoveryReport, RedoFn, RedoRegistry};
pub use wal::Wal;
