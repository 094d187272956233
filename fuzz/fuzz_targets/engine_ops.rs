//! Fuzz target: op sequences of the whole `Engine`/`Table` API against the reference engine
//! (the test kit's strategy and checker, crates/testkit). The input's first 32 bytes seed the
//! strategy's generator, its next byte picks the engine (heap or clustered); the checker
//! compares every answer with the reference engine's and runs `check()` after every op. A
//! difference or a panic is a crash for the fuzzer.

#![no_main]

use libfuzzer_sys::fuzz_target;
use storelab_table::{Engine, Result};
use storelab_testkit::model::{self, DirEngine};
use storelab_testkit::ops::op_sequence_with;
use storelab_testkit::proptest::strategy::{Strategy, ValueTree};
use storelab_testkit::proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

fn open(dir: &std::path::Path, clustered: bool) -> Result<Box<dyn Engine>> {
    let config = model::storage_config();
    Ok(if clustered {
        Box::new(storelab_clustered::ClusteredEngine::open(
            dir,
            &config,
            Default::default(),
        )?)
    } else {
        Box::new(storelab_heap::HeapEngine::open(
            dir,
            &config,
            Default::default(),
        )?)
    })
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 33 {
        return;
    }
    let seed: [u8; 32] = data[..32].try_into().expect("32 bytes");
    let clustered = data[32] & 1 == 1;
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let Ok(tree) = op_sequence_with(Default::default(), 1..24).new_tree(&mut runner) else {
        return;
    };
    let ops = tree.current();
    let mut engine = DirEngine::new(move |dir| open(dir, clustered)).expect("open an engine");
    if let Err(failure) = model::run_against_reference(&ops, &mut engine) {
        panic!("{failure}");
    }
});
