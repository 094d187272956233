//! The clustered engine under the kit's crash harness (storelab_testkit::crash): the power
//! cut at every sync point and at seeded random I/O points, in each torn-page mode; after
//! recovery, `check()` passes and the tables are the state after a prefix of the workload that
//! holds every acknowledged step. `STORELAB_LONG=1` runs the long version.

use std::path::Path;

use storelab_clustered::{ClusteredEngine, ClusteredOptions};
use storelab_table::{Engine, Result, StorageConfig};
use storelab_testkit::crash::{CrashConfig, crash_at_every_sync_point, crash_at_random_points};
use storelab_wal::TornPageMode;

fn open(dir: &Path, config: &StorageConfig) -> Result<Box<dyn Engine>> {
    Ok(Box::new(ClusteredEngine::open(
        dir,
        config,
        ClusteredOptions::default(),
    )?))
}

/// Every sync point, each torn-page mode.
#[test]
fn every_sync_point_each_torn_page_mode() {
    for torn in [
        TornPageMode::FullPageImages,
        TornPageMode::Doublewrite,
        TornPageMode::None,
    ] {
        let tally = crash_at_every_sync_point(&open, &CrashConfig::new(torn));
        println!("clustered, torn={torn}, every sync point: {tally}");
    }
}

/// Seeded random I/O points with torn and lost unsynced writes, each torn-page mode.
#[test]
fn random_torn_crashes_each_torn_page_mode() {
    for torn in [
        TornPageMode::FullPageImages,
        TornPageMode::Doublewrite,
        TornPageMode::None,
    ] {
        let tally = crash_at_random_points(&open, &CrashConfig::new(torn));
        println!("clustered, torn={torn}, random torn crashes: {tally}");
    }
}
