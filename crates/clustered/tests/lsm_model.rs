//! The clustered engine's LSM layout against the reference engine through the shared test
//! kit (the same op sequences, checker and mirror as `tests/model.rs`), with tiny memtables,
//! blocks and tables and inline flushes and compactions, so that short sequences flush
//! memtables and compact through several levels; reopens replay the log into the tree.

use std::path::Path;

use storelab_clustered::{ClusteredLsmEngine, CompactionStyle, LsmOptions};
use storelab_table::{Engine, Result};
use storelab_testkit::mirror::check_mirrored;
use storelab_testkit::model;
use storelab_testkit::ops::op_sequence;
use storelab_testkit::proptest::prelude::*;

fn open(dir: &Path, style: CompactionStyle) -> Result<Box<dyn Engine>> {
    let mut options = LsmOptions::tiny();
    options.lsm.compaction = style;
    Ok(Box::new(ClusteredLsmEngine::open(
        dir,
        &model::storage_config(),
        options,
    )?))
}

proptest! {
    #![proptest_config(model::proptest_config())]

    /// Random op sequences give the reference engine's answers, with `check()` after every op
    /// (the tree's check, every row with its entries and every entry with its row), with
    /// leveled or size-tiered compaction.
    #[test]
    fn clustered_lsm_matches_reference(
        ops in op_sequence(),
        style in prop_oneof![Just(CompactionStyle::Leveled), Just(CompactionStyle::Tiered)],
    ) {
        model::check_model(&ops, move |dir| open(dir, style))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: model::case_count() / 4,
        ..ProptestConfig::default()
    })]

    /// A mirror of the LSM layout and the reference engine sees no difference.
    #[test]
    fn clustered_lsm_mirrors_reference(ops in op_sequence()) {
        check_mirrored(&ops, |dir| open(dir, CompactionStyle::Leveled))?;
    }
}
