//! storelab's B+tree (being written).

pub mod node;
