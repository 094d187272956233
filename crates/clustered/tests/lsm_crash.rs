//! The clustered engine's LSM layout under the kit's crash harness (storelab_testkit::crash):
//! the power cut at every sync point and at seeded random I/O points, in each torn-page
//! mode, with tiny memtables and tables so that the workload flushes and compacts between
//! cuts (and the harness's checkpoints flush too); after recovery, `check()` passes and the
//! tables are the state after a prefix of the workload that holds every acknowledged step.
//! `STORELAB_LONG=1` runs the long version.

use std::path::Path;
use std::sync::{Arc, Mutex};

use storelab_clustered::{ClusteredLsmEngine, LsmOptions};
use storelab_lsm::Lsm;
use storelab_table::{Engine, Result, StorageConfig};
use storelab_testkit::crash::{
    CrashConfig, TORN_PAGE_MODES, crash_at_every_sync_point, crash_at_random_points, reference_run,
    workload,
};
use storelab_wal::TornPageMode;

/// Steps of the workload: more than the kit's default, so that the tiny tree flushes and
/// compacts several times between the setup and the end.
const STEP_COUNT: usize = 100;
/// Seeded random cuts per torn-page mode (the kit's CI default is 100; a cycle is cheap here).
const RANDOM_POINT_COUNT: u64 = 300;

fn config(torn: TornPageMode) -> CrashConfig {
    let mut config = CrashConfig::new(torn);
    config.step_count = config.step_count.max(STEP_COUNT);
    config.random_point_count = config.random_point_count.max(RANDOM_POINT_COUNT);
    config
}

fn open(dir: &Path, config: &StorageConfig) -> Result<Box<dyn Engine>> {
    Ok(Box::new(ClusteredLsmEngine::open(
        dir,
        config,
        LsmOptions::tiny(),
    )?))
}

/// Every sync point, each torn-page mode.
#[test]
fn lsm_every_sync_point_each_torn_page_mode() {
    for torn in TORN_PAGE_MODES {
        let tally = crash_at_every_sync_point(&open, &config(torn));
        println!("clustered-lsm, torn={torn}, every sync point: {tally}");
    }
}

/// Seeded random I/O points with torn and lost unsynced writes, each torn-page mode.
#[test]
fn lsm_random_torn_crashes_each_torn_page_mode() {
    for torn in TORN_PAGE_MODES {
        let tally = crash_at_random_points(&open, &config(torn));
        println!("clustered-lsm, torn={torn}, random torn crashes: {tally}");
    }
}

/// The crash workload really exercises the tree: flushes and compactions happen during it
/// (so the cuts above fall inside them), and the harness's checkpoints recycle log.
#[test]
fn lsm_crash_workload_flushes_and_compacts() {
    let trees: Arc<Mutex<Vec<Arc<Lsm>>>> = Arc::default();
    let seen = Arc::clone(&trees);
    let opener = move |dir: &Path, config: &StorageConfig| -> Result<Box<dyn Engine>> {
        let engine = ClusteredLsmEngine::open(dir, config, LsmOptions::tiny())?;
        seen.lock().unwrap().push(Arc::clone(engine.lsm()));
        Ok(Box::new(engine))
    };
    let config = config(TornPageMode::FullPageImages);
    let w = workload(&opener, &config);
    let (syncs, ios) = reference_run(&opener, &config, &w);
    let trees = trees.lock().unwrap();
    let flushes: u64 = trees.iter().map(|t| t.stats().flush_count).sum();
    let compactions: u64 = trees.iter().map(|t| t.stats().compaction_count).sum();
    println!("{syncs} syncs, {ios} I/Os, {flushes} flushes, {compactions} compactions");
    assert!(flushes >= 5, "{flushes} flushes");
    assert!(compactions >= 2, "{compactions} compactions");
}
