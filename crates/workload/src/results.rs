//! Results: what a phase measured, serialised as JSON with a schema version.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use storelab_pager::{IoCounts, LedgerSnapshot};

/// Version of the results' JSON layout; bumped when a field changes meaning or goes away.
pub const RESULTS_SCHEMA_VERSION: u32 = 1;

/// Latency percentiles of one operation kind, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Operations.
    pub count: u64,
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Maximum.
    pub max: u64,
}

impl From<&Histogram<u64>> for LatencySummary {
    fn from(h: &Histogram<u64>) -> Self {
        LatencySummary {
            count: h.len(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p95: h.value_at_quantile(0.95),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

impl LatencySummary {
    /// A phase measured only as a whole (a bulk load): every percentile is the mean.
    pub fn constant(count: u64, mean_us: f64) -> Self {
        let v = mean_us.round() as u64;
        LatencySummary {
            count,
            mean: mean_us,
            p50: v,
            p95: v,
            p99: v,
            p999: v,
            max: v,
        }
    }
}

/// I/O counts in the results (the ledger's `IoCounts`, serialisable).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io {
    /// Read requests.
    pub read_count: u64,
    /// Bytes read.
    pub read_bytes: u64,
    /// Write requests.
    pub write_count: u64,
    /// Bytes written.
    pub write_bytes: u64,
    /// Syncs (fsync/fdatasync).
    pub sync_count: u64,
}

impl From<IoCounts> for Io {
    fn from(c: IoCounts) -> Self {
        Io {
            read_count: c.read_count,
            read_bytes: c.read_bytes,
            write_count: c.write_count,
            write_bytes: c.write_bytes,
            sync_count: c.sync_count,
        }
    }
}

/// The ledger's delta over a phase: in total, by cause and by file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IoSummary {
    /// Everything.
    pub total: Io,
    /// By cause (`read`, `prefetch`, `eviction`, `wal`, `fpi`, `checkpoint`, ...).
    pub by_cause: BTreeMap<String, Io>,
    /// By file (its ledger name).
    pub by_file: BTreeMap<String, Io>,
}

impl IoSummary {
    /// Summarises a ledger delta.
    pub fn from_ledger(delta: &LedgerSnapshot) -> Self {
        let mut by_file: BTreeMap<String, IoCounts> = BTreeMap::new();
        for (name, _, counts) in delta.entries() {
            by_file.entry(name.to_string()).or_default().add(counts);
        }
        IoSummary {
            total: delta.total().into(),
            by_cause: crate::runner::by_cause(delta)
                .into_iter()
                .map(|(k, v)| (k, v.into()))
                .collect(),
            by_file: by_file.into_iter().map(|(k, v)| (k, v.into())).collect(),
        }
    }
}

/// What one phase (load or run) measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// `load` or `run`.
    pub phase: String,
    /// The workload's name.
    pub workload: String,
    /// Operations (rows, for a load).
    pub ops: u64,
    /// Rows returned or written.
    pub rows: u64,
    /// Wall time.
    pub elapsed_s: f64,
    /// Operations per second.
    pub throughput_ops_per_s: f64,
    /// Latency per operation kind.
    pub latency_us: BTreeMap<String, LatencySummary>,
    /// Log bytes written.
    pub wal_bytes: u64,
    /// Bytes of user data written (rows inserted, fields updated).
    pub user_bytes_written: u64,
    /// Bytes written to storage (every file, the log included) per byte of user data.
    pub write_amplification: Option<f64>,
    /// Read requests to storage per operation.
    pub reads_per_op: f64,
    /// The table's files at the end of the phase.
    pub size_on_disk_bytes: u64,
    /// Rows in the table at the end.
    pub row_count: u64,
    /// Buffer pool hits over hits and misses (`None` without pool traffic).
    pub pool_hit_ratio: Option<f64>,
    /// The table's engine-specific counters at the end of the phase, and the phase's buffer
    /// pool traffic (`pool_hits`, `pool_misses`).
    pub counters: BTreeMap<String, u64>,
    /// The I/O ledger's delta.
    pub io: IoSummary,
}

/// One engine's results for one workload, with the full configuration: what a results file
/// holds (one JSON object per line, or a JSON array).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// [`RESULTS_SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The engine's name.
    pub engine: String,
    /// The workload's name.
    pub workload: String,
    /// Measured operations.
    pub ops: u64,
    /// Operations per second of the measured phase.
    pub throughput_ops_per_s: f64,
    /// Latency per operation kind in the measured phase.
    pub latency_us: BTreeMap<String, LatencySummary>,
    /// I/O of the measured phase.
    pub io: IoSummary,
    /// Size of the table's files at the end.
    pub size_on_disk_bytes: u64,
    /// Write amplification of the measured phase.
    pub write_amplification: Option<f64>,
    /// Size on disk over the user data loaded.
    pub space_amplification: Option<f64>,
    /// The load phase, if this run loaded.
    pub load: Option<PhaseResult>,
    /// The measured phase.
    pub run: PhaseResult,
    /// Everything that configured the run (engine, page size, memory, io method, direct,
    /// device, commit mode, seed, versions...).
    pub config: BTreeMap<String, serde_json::Value>,
}
