//! storelab's workloads: the data sets, the key generators, YCSB's core workloads and the
//! analytic queries, the runner and its results. Engine-agnostic: everything goes through
//! the `Engine`/`Table` traits of crates/table, so the same workload runs unchanged on every
//! engine and a difference in the results is the engines'.
//!
//! ```text
//!   dataset (rows from (n, seed))   generator (uniform, scrambled zipfian, latest)
//!              \                        /
//!               workload (YCSB A-F mixes; analytic queries)
//!                          |
//!   runner: load phase -> warm-up -> measured phase on N threads
//!                          |
//!   results: throughput, latency percentiles per op (hdrhistogram), ledger delta by cause
//!            and file, log bytes, size on disk, write/read/space amplification, pool hit
//!            ratio, the engine's counters, the full configuration; JSON with a schema version
//! ```
//!
//! # Measurement notes
//!
//! - Latency is wall time per operation, including the commit's sync in durable modes.
//! - The I/O ledger is per database, so the I/O of a phase is exact, but with several threads
//!   it cannot be split by operation kind; `reads_per_op` divides the phase's reads by its
//!   operations.
//! - Write amplification = bytes written to storage (data files, log, checkpoints) / bytes
//!   of user data written (whole rows for inserts, the changed field for updates).
//! - Rows are a pure function of their number and the seed, so runs are reproducible.
//!
//! # Simplified versus YCSB
//!
//! - Updates write one field (YCSB's default `writeallfields=false`); there is no `readallfields`
//!   choice: reads return whole rows.

pub mod dataset;
pub mod generator;
pub mod results;
pub mod runner;
pub mod workload;

pub use dataset::{Orders, UserTable};
pub use generator::{Distribution, KeyChooser, Zipfian, fnv1a64};
pub use results::{PhaseResult, RESULTS_SCHEMA_VERSION, RunResult};
pub use runner::{RunConfig, load, load_batched, measure, run};
pub use workload::{OpKind, OpOutcome, Query, Workload, YcsbMix};
