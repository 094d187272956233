//! The clustered engine against the reference engine through the shared test kit: the same
//! op sequences, checker and mirror as the heap's `tests/model.rs`, with small nodes so that
//! short sequences split and merge.

use std::path::Path;

use storelab_clustered::{BTreeConfig, ClusteredEngine, ClusteredOptions, SplitPolicy};
use storelab_table::{Engine, Result};
use storelab_testkit::mirror::check_mirrored;
use storelab_testkit::model;
use storelab_testkit::ops::op_sequence;
use storelab_testkit::proptest::prelude::*;

fn open(dir: &Path, split: SplitPolicy, node_size: Option<usize>) -> Result<Box<dyn Engine>> {
    let options = ClusteredOptions {
        btree: BTreeConfig {
            split,
            node_size,
            ..BTreeConfig::default()
        },
        ..ClusteredOptions::default()
    };
    Ok(Box::new(ClusteredEngine::open(
        dir,
        &model::storage_config(),
        options,
    )?))
}

proptest! {
    #![proptest_config(model::proptest_config())]

    /// Random op sequences give the reference engine's answers, with `check()` after every op,
    /// with either split policy and page-sized or 1 KiB nodes.
    #[test]
    fn clustered_matches_reference(
        ops in op_sequence(),
        split in prop_oneof![Just(SplitPolicy::Middle), Just(SplitPolicy::InsertPoint)],
        node_size in prop_oneof![Just(None), Just(Some(1024usize))],
    ) {
        model::check_model(&ops, move |dir| open(dir, split, node_size))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: model::case_count() / 4,
        ..ProptestConfig::default()
    })]

    /// A mirror of the clustered and the reference engine sees no difference.
    #[test]
    fn clustered_mirrors_reference(ops in op_sequence()) {
        check_mirrored(&ops, |dir| open(dir, SplitPolicy::Middle, None))?;
    }
}
