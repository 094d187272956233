//! storelab's B+tree (design doc being written).

mod bulk;
mod check;
mod cursor;
pub mod error;
pub mod node;
mod tree;

pub use cursor::Cursor;
pub use error::{Error, Result};
pub use tree::{
    BTREE_DEPTH_MAX, BTree, BTreeConfig, BTreeStats, SplitPolicy, VALUE_SIZE_MAX, register_redo,
};
