//! The runner: load phase, warm-up, measured phase with N client threads, and the metrics
//! that explain the result (latency histograms per operation, the I/O ledger's delta by
//! cause, log bytes, size on disk, amplification, buffer hit ratio).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use storelab_pager::{IoCause, IoCounts, LedgerSnapshot};
use storelab_table::{Engine, EngineStats, Error, Result, Table};

use crate::dataset::{Orders, UserTable};
use crate::generator::KeyChooser;
use crate::results::{IoSummary, LatencySummary, PhaseResult};
use crate::workload::{OpKind, OpOutcome, Workload, YcsbState, run_query, run_ycsb_op};

/// Settings of a measured phase.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    /// Operations in the measured phase (split over the threads).
    pub ops: u64,
    /// Or: run for this long instead (seconds).
    pub duration_s: Option<f64>,
    /// Client threads.
    pub threads: usize,
    /// Operations before measuring (warm the buffer pool).
    pub warmup_ops: u64,
    /// Seed of every random choice.
    pub seed: u64,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            ops: 10_000,
            duration_s: None,
            threads: 1,
            warmup_ops: 0,
            seed: 42,
        }
    }
}

/// Called with the operations done so far (for progress bars).
pub type Progress<'a> = &'a (dyn Fn(u64) + Sync);

/// Creates the workload's table if needed and loads `records` rows into it (the engine's
/// bulk path when the table is empty).
pub fn load(
    engine: &dyn Engine,
    workload: &Workload,
    records: u64,
    data: UserTable,
    seed: u64,
    progress: Progress<'_>,
) -> Result<PhaseResult> {
    let table = open_or_create(engine, workload, data)?;
    let before = engine.stats()?;
    let start = Instant::now();
    let done = AtomicU64::new(0);
    let mut rows = (0..records).map(|n| {
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if d.is_multiple_of(4096) {
            progress(d);
        }
        match workload {
            Workload::Ycsb { .. } => data.row(n, seed),
            Workload::Analytic { .. } => Orders.row(n, seed),
        }
    });
    let loaded = table.load(&mut rows)?;
    engine.checkpoint()?;
    progress(loaded);
    let elapsed = start.elapsed();
    let after = engine.stats()?;
    let row_bytes = match workload {
        Workload::Ycsb { .. } => data.row_bytes(),
        Workload::Analytic { .. } => 120,
    };
    let mut latency = BTreeMap::new();
    latency.insert(
        "load".to_string(),
        LatencySummary::constant(loaded, elapsed.as_secs_f64() * 1e6 / loaded.max(1) as f64),
    );
    finish_phase(
        engine,
        &*table,
        "load",
        &workload.name(),
        loaded,
        elapsed,
        latency,
        &before,
        &after,
        loaded * row_bytes,
        loaded,
    )
}

/// Loads `records` rows as ordinary inserts in atomic, durable batches of `batch_rows`,
/// starting after the rows already in the table (so an interrupted load continues), and
/// calls `acknowledged` with the rows committed so far after each batch: the load phase of
/// an insert benchmark, and what the kill -9 test reads to know which rows must survive.
pub fn load_batched(
    engine: &dyn Engine,
    workload: &Workload,
    records: u64,
    data: UserTable,
    seed: u64,
    batch_rows: u64,
    acknowledged: Progress<'_>,
) -> Result<PhaseResult> {
    if batch_rows == 0 {
        return Err(Error::InvalidArgument(
            "batches need at least one row".into(),
        ));
    }
    let table = open_or_create(engine, workload, data)?;
    let first = table.stats()?.row_count;
    let before = engine.stats()?;
    let start = Instant::now();
    let mut histogram = new_histogram();
    let mut n = first;
    while n < records {
        let end = (n + batch_rows).min(records);
        let ops: Vec<storelab_table::Op> = (n..end)
            .map(|i| {
                storelab_table::Op::Insert(match workload {
                    Workload::Ycsb { .. } => data.row(i, seed),
                    Workload::Analytic { .. } => Orders.row(i, seed),
                })
            })
            .collect();
        let t = Instant::now();
        table.apply(&ops)?;
        let us = t.elapsed().as_micros().max(1) as u64;
        histogram
            .record(us.min(HISTOGRAM_US_MAX))
            .expect("clamped to the histogram's range");
        n = end;
        acknowledged(n);
    }
    let elapsed = start.elapsed();
    let after = engine.stats()?;
    let loaded = n - first;
    let row_bytes = match workload {
        Workload::Ycsb { .. } => data.row_bytes(),
        Workload::Analytic { .. } => 120,
    };
    let mut latency = BTreeMap::new();
    latency.insert("batch".to_string(), LatencySummary::from(&histogram));
    finish_phase(
        engine,
        &*table,
        "load",
        &workload.name(),
        loaded,
        elapsed,
        latency,
        &before,
        &after,
        loaded * row_bytes,
        loaded,
    )
}

fn open_or_create(
    engine: &dyn Engine,
    workload: &Workload,
    data: UserTable,
) -> Result<std::sync::Arc<dyn Table>> {
    match engine.open_table(workload.table()) {
        Ok(t) => Ok(t),
        Err(Error::NoSuchTable { .. }) => engine.create_table(match workload {
            Workload::Ycsb { .. } => data.schema(),
            Workload::Analytic { .. } => Orders.schema(),
        }),
        Err(e) => Err(e),
    }
}

/// Runs the measured phase of `workload` on a loaded table of `records` rows.
pub fn run(
    engine: &dyn Engine,
    workload: &Workload,
    records: u64,
    data: UserTable,
    config: &RunConfig,
    progress: Progress<'_>,
) -> Result<PhaseResult> {
    if config.threads == 0 {
        return Err(Error::InvalidArgument("threads must be at least 1".into()));
    }
    let table = engine.open_table(workload.table())?;
    let loaded = table.stats()?.row_count.max(records);
    let state = YcsbState {
        data,
        seed: config.seed,
        next_insert: AtomicU64::new(loaded),
        acknowledged: AtomicU64::new(loaded),
    };
    if config.warmup_ops > 0 {
        let warm = RunConfig {
            ops: config.warmup_ops,
            duration_s: None,
            seed: config.seed ^ 0x3A93,
            ..*config
        };
        drive(&*table, workload, &state, loaded, &warm, &|_| {})?;
    }
    let before = engine.stats()?;
    let start = Instant::now();
    let (histograms, outcome) = drive(&*table, workload, &state, loaded, config, progress)?;
    let elapsed = start.elapsed();
    let after = engine.stats()?;
    let ops: u64 = histograms.values().map(Histogram::len).sum();
    let latency = histograms
        .iter()
        .map(|(k, h)| (k.name().to_string(), LatencySummary::from(h)))
        .collect();
    finish_phase(
        engine,
        &*table,
        "run",
        &workload.name(),
        ops,
        elapsed,
        latency,
        &before,
        &after,
        outcome.bytes_written,
        outcome.rows,
    )
}

/// Measures a phase of custom operations (an experiment's own loop): calls `op(i)` for `i` in
/// `0..ops` on this thread, records each call's latency under `op_name`, and returns the
/// phase's metrics exactly as [`run`] does: the ledger's delta, log bytes, size on disk, hit
/// ratio and the table's counters. `op` returns what the operation did (rows, user bytes
/// written, for write amplification).
pub fn measure(
    engine: &dyn Engine,
    table: &dyn Table,
    name: &str,
    op_name: &str,
    ops: u64,
    mut op: impl FnMut(u64) -> Result<OpOutcome>,
) -> Result<PhaseResult> {
    let before = engine.stats()?;
    let start = Instant::now();
    let mut histogram = new_histogram();
    let mut total = OpOutcome::default();
    for i in 0..ops {
        let t = Instant::now();
        let outcome = op(i)?;
        let us = t.elapsed().as_micros().max(1) as u64;
        histogram
            .record(us.min(HISTOGRAM_US_MAX))
            .expect("clamped to the histogram's range");
        total.rows += outcome.rows;
        total.bytes_written += outcome.bytes_written;
    }
    let elapsed = start.elapsed();
    let after = engine.stats()?;
    let mut latency = BTreeMap::new();
    latency.insert(op_name.to_string(), LatencySummary::from(&histogram));
    finish_phase(
        engine,
        table,
        "run",
        name,
        ops,
        elapsed,
        latency,
        &before,
        &after,
        total.bytes_written,
        total.rows,
    )
}

#[allow(clippy::too_many_arguments)]
fn finish_phase(
    engine: &dyn Engine,
    table: &dyn Table,
    phase: &str,
    workload: &str,
    ops: u64,
    elapsed: Duration,
    latency_us: BTreeMap<String, LatencySummary>,
    before: &EngineStats,
    after: &EngineStats,
    user_bytes_written: u64,
    rows: u64,
) -> Result<PhaseResult> {
    let delta = match (&after.ledger, &before.ledger) {
        (Some(a), Some(b)) => a.delta(b),
        _ => LedgerSnapshot::default(),
    };
    let io = IoSummary::from_ledger(&delta);
    let stats = table.stats()?;
    let size_on_disk_bytes = stats.size_bytes();
    let hits = after.pool_hits - before.pool_hits;
    let misses = after.pool_misses - before.pool_misses;
    let write_bytes = io.total.write_bytes;
    let _ = engine;
    Ok(PhaseResult {
        phase: phase.to_string(),
        workload: workload.to_string(),
        ops,
        rows,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_ops_per_s: ops as f64 / elapsed.as_secs_f64().max(1e-9),
        latency_us,
        wal_bytes: after.wal_bytes - before.wal_bytes,
        user_bytes_written,
        write_amplification: (user_bytes_written > 0)
            .then(|| write_bytes as f64 / user_bytes_written as f64),
        reads_per_op: io.total.read_count as f64 / ops.max(1) as f64,
        size_on_disk_bytes,
        row_count: stats.row_count,
        pool_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        counters: {
            // The phase's buffer pool traffic beside the table's own counters: pages touched
            // (hits + misses) per operation is the design's cost whatever the pool's size.
            let mut counters = stats.counters;
            counters.insert("pool_hits".into(), hits);
            counters.insert("pool_misses".into(), misses);
            counters
        },
        io,
    })
}

type Histograms = BTreeMap<OpKind, Histogram<u64>>;

/// Runs operations on `config.threads` threads; returns the merged histograms.
fn drive(
    table: &dyn Table,
    workload: &Workload,
    state: &YcsbState,
    records: u64,
    config: &RunConfig,
    progress: Progress<'_>,
) -> Result<(Histograms, OpOutcome)> {
    let done = AtomicU64::new(0);
    let deadline = config
        .duration_s
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    let per_thread = config.ops.div_ceil(config.threads as u64);
    let results: Vec<Result<(Histograms, OpOutcome)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..config.threads)
            .map(|t| {
                let done = &done;
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(t as u64 * 7919));
                    let mut hists: Histograms = BTreeMap::new();
                    let mut total = OpOutcome::default();
                    let mut chooser = match workload {
                        Workload::Ycsb { mix, .. } => KeyChooser::new(mix.distribution),
                        Workload::Analytic { .. } => KeyChooser::default(),
                    };
                    let mut i = 0u64;
                    loop {
                        match deadline {
                            Some(d) if Instant::now() >= d => break,
                            None if i >= per_thread => break,
                            _ => {}
                        }
                        let counter = i * config.threads as u64 + t as u64;
                        let start = Instant::now();
                        let (kind, outcome) = match workload {
                            Workload::Ycsb { mix, .. } => {
                                let kind = mix.draw(&mut rng);
                                let o = run_ycsb_op(
                                    table,
                                    state,
                                    mix,
                                    &mut chooser,
                                    kind,
                                    &mut rng,
                                    counter,
                                )?;
                                (kind, o)
                            }
                            Workload::Analytic { query, bitmap } => (
                                query.kind(),
                                run_query(table, *query, *bitmap, records, &mut rng, counter)?,
                            ),
                        };
                        let us = start.elapsed().as_micros().max(1) as u64;
                        hists
                            .entry(kind)
                            .or_insert_with(new_histogram)
                            .record(us.min(HISTOGRAM_US_MAX))
                            .expect("clamped to the histogram's range");
                        total.rows += outcome.rows;
                        total.bytes_written += outcome.bytes_written;
                        i += 1;
                        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if d.is_multiple_of(256) {
                            progress(d);
                        }
                    }
                    Ok((hists, total))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a client thread panicked"))
            .collect()
    });
    let mut merged: Histograms = BTreeMap::new();
    let mut total = OpOutcome::default();
    for r in results {
        let (hists, outcome) = r?;
        for (k, h) in hists {
            merged
                .entry(k)
                .or_insert_with(new_histogram)
                .add(&h)
                .expect("same bounds");
        }
        total.rows += outcome.rows;
        total.bytes_written += outcome.bytes_written;
    }
    progress(done.load(Ordering::Relaxed));
    Ok((merged, total))
}

/// Latencies above this (an hour) are recorded as this.
const HISTOGRAM_US_MAX: u64 = 3_600_000_000;

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_US_MAX, 3).expect("valid bounds")
}

/// I/O counts by cause name, for the results.
pub fn by_cause(delta: &LedgerSnapshot) -> BTreeMap<String, IoCounts> {
    IoCause::ALL
        .iter()
        .map(|&c| (c.name().to_string(), delta.cause_total(c)))
        .filter(|(_, c)| !c.is_zero())
        .collect()
}
