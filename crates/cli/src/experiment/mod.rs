//! `storelab experiment NAME|all --out DIR`: the classic arguments of storage-engine design,
//! each turned into one reproducible, parameterised sweep.
//!
//! An experiment loads data into fresh databases, varies one thing (the engine, the number of
//! indexes, the I/O method, the pool size...), measures each point with the same runner as
//! `storelab run`, and writes `DIR/NAME/`:
//!
//! - `report.md`: the question; the setup (sizes, storage settings, seed, the command that
//!   reproduces it, the machine); what the textbook expects; tables of the measured points;
//!   what the result shows and why, in terms of the I/O ledger (which file, which cause); and a
//!   verdict that says whether the textbook expectation held, computed from the numbers;
//! - one SVG plot or more beside it;
//! - `results.jsonl`: every measured point as a results record (schema
//!   [`storelab_workload::RESULTS_SCHEMA_VERSION`]), with the experiment's parameters in its
//!   `config`, readable by `storelab report`.
//!
//! The default scale runs each experiment in a few minutes on a small machine; `--scale F`
//! multiplies the row and operation counts (0.01 for a smoke test, 10 for a bigger run).
//! Nothing in a report is written by hand: every number and every sentence that depends on a
//! number comes from the measurements, so a result that contradicts the textbook says so.
//!
//! # Adding an experiment
//!
//! Write a module with `pub fn run(ctx: &mut Ctx) -> Result<Report>` and add it to
//! [`EXPERIMENTS`]. Use [`Ctx::scaled`] for every count, [`Ctx::fresh_dir`] for each
//! database, [`Ctx::record`] for each measured point, and fill a [`Report`]: its findings and
//! verdict must be derived from the recorded numbers.

pub mod bloat;
pub mod buffer_pool;
pub mod correlated_range;
pub mod full_scan;
pub mod ingest;
pub mod insert_order;
pub mod io_method;
pub mod pk_range;
pub mod plot;
pub mod report;
pub mod secondary_lookup;
pub mod update_indexes;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use storelab_pager::buffer_pool::PolicyKind;
use storelab_table::StorageConfig;
use storelab_workload::{PhaseResult, RESULTS_SCHEMA_VERSION, RunResult};

pub use report::{Plot, PlotKind, Report, Section, Series, TextTable, Verdict};

/// One experiment: its name on the command line, its number in DESIGN.md, and its code.
pub struct Experiment {
    /// Name on the command line and of its output folder.
    pub name: &'static str,
    /// Its number in the list of experiments (docs/results/experiments/README.md).
    pub number: u8,
    /// A short title.
    pub title: &'static str,
    /// The question it answers, in one sentence.
    pub question: &'static str,
    /// Runs the sweep and returns the report.
    pub run: fn(&mut Ctx) -> Result<Report>,
}

/// Every experiment, in order.
pub const EXPERIMENTS: &[Experiment] = &[
    Experiment {
        number: 1,
        name: "pk-range",
        title: "Primary-key range scans: clustered versus heap",
        question: "How many pages does a primary-key range scan read when rows live in the \
                   primary-key order (clustered) versus in insertion order in a heap?",
        run: pk_range::run,
    },
    Experiment {
        number: 2,
        name: "secondary-lookup",
        title: "Secondary-index lookups: one hop (heap) versus two (clustered)",
        question: "What does a point lookup through a secondary index cost when the index holds \
                   the row's location (heap TID) versus its primary key (clustered)?",
        run: secondary_lookup::run,
    },
    Experiment {
        number: 3,
        name: "update-indexes",
        title: "Updates with 0 to 8 secondary indexes, HOT on and off, fillfactor 100/90/70",
        question: "How much does an update write as a table gains secondary indexes, and how \
                   much of that do HOT updates and free space on the page (fillfactor) save?",
        run: update_indexes::run,
    },
    Experiment {
        number: 4,
        name: "full-scan",
        title: "Full scans and analytic aggregates",
        question: "Which layout scans a whole table faster and with fewer pages: a heap of \
                   packed pages or the leaves of a clustered B+tree (or an LSM's sorted tables)?",
        run: full_scan::run,
    },
    Experiment {
        number: 5,
        name: "insert-order",
        title: "Random versus sequential primary-key inserts: splits, fill, space",
        question: "What do random primary keys cost a B+tree (page splits, leaf fill, space) \
                   compared with ascending keys, and does the heap care?",
        run: insert_order::run,
    },
    Experiment {
        number: 6,
        name: "correlated-range",
        title: "Index range scans on correlated versus uncorrelated columns, with and without \
                prefetch",
        question: "Why does a secondary range scan cost so much more when the column is not \
                   correlated with the physical order, and how much does sorting the row \
                   locations and prefetching (a bitmap scan) recover?",
        run: correlated_range::run,
    },
    Experiment {
        number: 7,
        name: "io-method",
        title: "I/O method (sync, worker, io_uring) x buffered/direct x device, cold scans",
        question: "When does asynchronous I/O make a cold scan faster, and by how much on a fast \
                   local disk versus slow cloud storage?",
        run: io_method::run,
    },
    Experiment {
        number: 8,
        name: "ingest",
        title: "Write-heavy ingest: B+tree versus LSM write and read amplification",
        question: "How many bytes does each design write per byte ingested, and what does the \
                   LSM pay on reads (tables probed, bloom filter help) in return?",
        run: ingest::run,
    },
    Experiment {
        number: 9,
        name: "bloat",
        title: "Update-heavy bloat and vacuum cost over time",
        question: "How does a table grow under a stream of updates with and without vacuum, and \
                   what does vacuum itself cost in I/O?",
        run: bloat::run,
    },
    Experiment {
        number: 10,
        name: "buffer-pool",
        title: "Buffer pool policy and size sweeps",
        question: "How do the hit ratio and the reads per operation change with the pool's size \
                   and its eviction policy (clock sweep or LRU), under skewed reads and scans?",
        run: buffer_pool::run,
    },
];

/// Flags of `storelab experiment`.
#[derive(Debug, clap::Args)]
pub struct ExperimentArgs {
    /// The experiment to run, or `all`; without one, the list of experiments is printed
    #[arg(value_name = "NAME")]
    pub name: Option<String>,

    /// Directory for the reports: DIR/NAME/report.md, SVG plots and results.jsonl
    #[arg(long, value_name = "DIR", default_value = "experiments")]
    pub out: PathBuf,

    /// Multiplies every row and operation count (1 = the default, a few minutes each;
    /// 0.01 for a smoke test; 10 for a bigger run)
    #[arg(long, value_name = "F", default_value_t = 1.0)]
    pub scale: f64,

    /// Where the experiment's databases are made, in a temporary directory removed at the end
    /// (default: inside --out)
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Seed of every random choice
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// No progress output
    #[arg(long)]
    pub quiet: bool,
}

/// What an experiment runs with: the scale, the seed, a scratch directory, and the results
/// recorded so far.
pub struct Ctx {
    /// The `--scale` factor.
    pub scale: f64,
    /// The `--seed`.
    pub seed: u64,
    /// No progress output.
    pub quiet: bool,
    work: PathBuf,
    results: Vec<RunResult>,
    experiment: &'static str,
}

impl Ctx {
    /// A context for `experiment` working in `work` (created if missing).
    pub fn new(experiment: &'static str, work: &Path, scale: f64, seed: u64, quiet: bool) -> Ctx {
        Ctx {
            scale,
            seed,
            quiet,
            work: work.to_path_buf(),
            results: Vec::new(),
            experiment,
        }
    }

    /// `base` scaled by `--scale`, at least `min`.
    pub fn scaled(&self, base: u64, min: u64) -> u64 {
        ((base as f64 * self.scale).round() as u64).max(min)
    }

    /// An empty directory for one database of this experiment, named `label` (cleared if it
    /// exists from an earlier point).
    pub fn fresh_dir(&self, label: &str) -> Result<PathBuf> {
        let dir = self.work.join(self.experiment).join(label);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        Ok(dir)
    }

    /// Removes a point's database once it is measured (the scratch space stays small).
    pub fn discard(&self, dir: &Path) {
        let _ = std::fs::remove_dir_all(dir);
    }

    /// The storage settings every experiment starts from: 8 KiB pages, a 64 MiB pool with
    /// clock sweep, the best I/O method the kernel allows, buffered files, the real disk,
    /// synced commits with full-page images. An experiment changes what it studies and says
    /// so in its setup.
    pub fn storage(&self) -> StorageConfig {
        StorageConfig::default()
    }

    /// A progress bar of `len` steps (hidden with `--quiet` or when stderr is not a terminal).
    pub fn bar(&self, len: u64, what: &str) -> ProgressBar {
        if self.quiet {
            return ProgressBar::hidden();
        }
        let pb = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
        pb.set_style(
            ProgressStyle::with_template("{msg:>32} [{bar:30}] {pos}/{len} {elapsed}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        pb.set_message(what.to_string());
        pb
    }

    /// Prints one line of progress on stderr (unless `--quiet`).
    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("[{}] {text}", self.experiment);
        }
    }

    /// Records one measured point: the engine, the experiment's parameters for this point
    /// (they go into the record's `config`, next to the storage settings), the load phase if
    /// any and the measured phase. Returns the record.
    pub fn record(
        &mut self,
        engine: &str,
        params: &[(&str, serde_json::Value)],
        storage: &StorageConfig,
        load: Option<PhaseResult>,
        run: PhaseResult,
    ) -> RunResult {
        let mut config: BTreeMap<String, serde_json::Value> = describe_storage(storage);
        config.insert("engine".into(), engine.into());
        config.insert("experiment".into(), self.experiment.into());
        config.insert("scale".into(), self.scale.into());
        config.insert("seed".into(), self.seed.into());
        config.insert("storelab_version".into(), env!("CARGO_PKG_VERSION").into());
        for (k, v) in params {
            config.insert((*k).to_string(), v.clone());
        }
        let loaded_bytes = load.as_ref().map(|l| l.user_bytes_written);
        let result = RunResult {
            schema_version: RESULTS_SCHEMA_VERSION,
            engine: engine.into(),
            workload: run.workload.clone(),
            ops: run.ops,
            throughput_ops_per_s: run.throughput_ops_per_s,
            latency_us: run.latency_us.clone(),
            io: run.io.clone(),
            size_on_disk_bytes: run.size_on_disk_bytes,
            write_amplification: run.write_amplification,
            space_amplification: loaded_bytes
                .filter(|&b| b > 0)
                .map(|b| run.size_on_disk_bytes as f64 / b as f64),
            load,
            run,
            config,
        };
        self.results.push(result.clone());
        result
    }

    /// Runs the engine's `check()` (every structure's invariants) at small scales (`--scale`
    /// at most 0.05, as the tests run), where it is cheap; a no-op at bigger scales.
    pub fn verify(&self, engine: &dyn storelab_table::Engine) -> Result<()> {
        if self.scale <= 0.05 {
            engine
                .check()
                .with_context(|| format!("{}: check after a measured point", self.experiment))?;
        }
        Ok(())
    }

    /// The points recorded so far.
    pub fn results(&self) -> &[RunResult] {
        &self.results
    }
}

/// Storage settings as results configuration entries (the same keys as `storelab run`).
pub fn describe_storage(config: &StorageConfig) -> BTreeMap<String, serde_json::Value> {
    let mut m = BTreeMap::new();
    m.insert("memory_bytes".into(), (config.pool_bytes as u64).into());
    m.insert(
        "page_size_bytes".into(),
        (config.page_size.bytes() as u64).into(),
    );
    m.insert("io_method".into(), config.backend.kind.to_string().into());
    m.insert("direct".into(), config.direct.into());
    m.insert(
        "device".into(),
        config
            .device
            .as_ref()
            .map_or_else(|| "none".to_string(), |d| d.name.clone())
            .into(),
    );
    m.insert("commit_mode".into(), config.commit_mode.to_string().into());
    m.insert("torn_page".into(), config.torn_page.to_string().into());
    m.insert(
        "pool_policy".into(),
        match config.pool_policy {
            PolicyKind::ClockSweep => "clock",
            PolicyKind::Lru => "lru",
        }
        .into(),
    );
    m
}

/// `storelab experiment`: runs one experiment or all of them and writes their reports.
pub fn run(args: &ExperimentArgs) -> Result<()> {
    let Some(name) = args.name.as_deref() else {
        println!("Experiments (storelab experiment NAME|all --out DIR [--scale F]):\n");
        for e in EXPERIMENTS {
            println!("  {:>2}. {:<18} {}", e.number, e.name, e.title);
        }
        return Ok(());
    };
    if !(args.scale.is_finite() && (0.001..=1000.0).contains(&args.scale)) {
        bail!("--scale {} is out of range (0.001 to 1000)", args.scale);
    }
    let chosen: Vec<&Experiment> = if name == "all" {
        EXPERIMENTS.iter().collect()
    } else {
        vec![
            EXPERIMENTS
                .iter()
                .find(|e| e.name == name)
                .with_context(|| {
                    format!(
                        "unknown experiment {name:?} (all, {})",
                        EXPERIMENTS
                            .iter()
                            .map(|e| e.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
        ]
    };
    std::fs::create_dir_all(&args.out).with_context(|| format!("create {}", args.out.display()))?;
    // The databases go into a temporary directory of our own (inside --work-dir, default
    // --out), removed at the end: a --work-dir pointed at the wrong place loses nothing.
    let base = args.work_dir.as_ref().unwrap_or(&args.out);
    std::fs::create_dir_all(base).with_context(|| format!("create {}", base.display()))?;
    let temp = tempfile::Builder::new()
        .prefix(".storelab-experiment")
        .tempdir_in(base)
        .with_context(|| format!("create a scratch directory in {}", base.display()))?;
    let work = temp.path().to_path_buf();
    let machine = report::Machine::read(&work);
    let mut failed = Vec::new();
    for e in chosen {
        let started = Instant::now();
        let mut ctx = Ctx::new(e.name, &work, args.scale, args.seed, args.quiet);
        ctx.note(&format!("{}. {}", e.number, e.title));
        let outcome = (e.run)(&mut ctx);
        let _ = std::fs::remove_dir_all(work.join(e.name));
        match outcome {
            Ok(report) => {
                let dir = args.out.join(e.name);
                report::write(&dir, e, &ctx, &report, &machine, started.elapsed())?;
                println!(
                    "{:>2}. {:<18} {} ({:.0} s): {}",
                    e.number,
                    e.name,
                    report.verdict.word(),
                    started.elapsed().as_secs_f64(),
                    dir.join(report::REPORT_FILE_NAME).display()
                );
            }
            Err(err) => {
                eprintln!("storelab: experiment {} failed: {err:#}", e.name);
                failed.push(e.name);
            }
        }
        std::io::stdout().flush().ok();
    }
    if name == "all" {
        report::write_index(&args.out, &machine)?;
    }
    if !failed.is_empty() {
        bail!(
            "{} experiment(s) failed: {}",
            failed.len(),
            failed.join(", ")
        );
    }
    Ok(())
}

/// Figures of a measured phase, per operation, as the reports use them.
pub mod metrics {
    use storelab_workload::PhaseResult;

    fn per_op(r: &PhaseResult, v: u64) -> f64 {
        v as f64 / r.ops.max(1) as f64
    }

    /// Read requests to storage per operation (the ledger's read count). A request may cover
    /// several adjacent pages (read streams combine them), so this is not pages: see
    /// [`kib_read`].
    pub fn reads(r: &PhaseResult) -> f64 {
        per_op(r, r.io.total.read_count)
    }

    /// KiB read from storage per operation; divided by the page size (8 KiB by default), the
    /// pages read.
    pub fn kib_read(r: &PhaseResult) -> f64 {
        per_op(r, r.io.total.read_bytes) / 1024.0
    }

    /// KiB read per operation from files whose ledger name contains `part`.
    pub fn file_kib_read(r: &PhaseResult, part: &str) -> f64 {
        per_op(
            r,
            r.io.by_file
                .iter()
                .filter(|(name, _)| name.contains(part))
                .map(|(_, io)| io.read_bytes)
                .sum(),
        ) / 1024.0
    }

    /// Buffer pool accesses (hits plus misses) per operation: pages touched, whatever the
    /// pool's size.
    pub fn pages_touched(r: &PhaseResult) -> f64 {
        let c = |k: &str| r.counters.get(k).copied().unwrap_or(0);
        per_op(r, c("pool_hits") + c("pool_misses"))
    }

    /// KiB written to storage per operation (every file, the log included).
    pub fn write_kib(r: &PhaseResult) -> f64 {
        per_op(r, r.io.total.write_bytes) / 1024.0
    }

    /// Read requests per operation to files whose ledger name contains `part`.
    pub fn file_reads(r: &PhaseResult, part: &str) -> f64 {
        per_op(
            r,
            r.io.by_file
                .iter()
                .filter(|(name, _)| name.contains(part))
                .map(|(_, io)| io.read_count)
                .sum(),
        )
    }

    /// KiB written per operation to files whose ledger name contains `part`.
    pub fn file_write_kib(r: &PhaseResult, part: &str) -> f64 {
        per_op(
            r,
            r.io.by_file
                .iter()
                .filter(|(name, _)| name.contains(part))
                .map(|(_, io)| io.write_bytes)
                .sum(),
        ) / 1024.0
    }

    /// Read requests per operation charged to `cause` (`read`, `prefetch`, ...).
    pub fn cause_reads(r: &PhaseResult, cause: &str) -> f64 {
        per_op(r, r.io.by_cause.get(cause).map_or(0, |io| io.read_count))
    }

    /// KiB written per operation charged to `cause` (`wal`, `eviction`, `checkpoint`, ...).
    pub fn cause_write_kib(r: &PhaseResult, cause: &str) -> f64 {
        per_op(r, r.io.by_cause.get(cause).map_or(0, |io| io.write_bytes)) / 1024.0
    }

    /// Median latency of the phase's first (usually only) operation kind, in microseconds.
    pub fn p50_us(r: &PhaseResult) -> f64 {
        r.latency_us
            .values()
            .next()
            .map_or(f64::NAN, |l| l.p50 as f64)
    }

    /// A table counter (`hot_updates`, `lsm_bloom_negatives`...), 0 if absent.
    pub fn counter(r: &PhaseResult, name: &str) -> u64 {
        r.counters.get(name).copied().unwrap_or(0)
    }
}

/// User bytes of a row (8 per number, the length of text and bytes): what write amplification
/// divides by.
pub fn row_bytes(row: &[storelab_table::Value]) -> u64 {
    use storelab_table::Value;
    row.iter()
        .map(|v| match v {
            Value::Int(_) | Value::Float(_) => 8,
            Value::Text(t) => t.len() as u64,
            Value::Bytes(b) => b.len() as u64,
        })
        .sum()
}

/// Inserts `rows` (`count` of them) into `table` in durable batches of `batch` rows (one
/// atomic, synced commit each) and measures it as a `load` phase named `name`, with a
/// progress bar. Unlike the engines' bulk paths, every engine takes the same ordinary insert
/// path, so the order of the rows matters as it does for an application's inserts.
pub fn insert_rows(
    ctx: &Ctx,
    engine: &dyn storelab_table::Engine,
    table: &dyn storelab_table::Table,
    name: &str,
    rows: &mut dyn Iterator<Item = storelab_table::Row>,
    count: u64,
    batch: u64,
) -> Result<PhaseResult> {
    let batch = batch.max(1);
    let pb = ctx.bar(count, name);
    let batches = count.div_ceil(batch);
    let mut done = 0u64;
    let mut phase = storelab_workload::measure(engine, table, name, "batch", batches, |_| {
        let ops: Vec<storelab_table::Op> = rows
            .take(batch as usize)
            .map(storelab_table::Op::Insert)
            .collect();
        let bytes: u64 = ops
            .iter()
            .map(|op| match op {
                storelab_table::Op::Insert(r) => row_bytes(r),
                _ => 0,
            })
            .sum();
        let n = ops.len() as u64;
        table.apply(&ops)?;
        done += n;
        pb.set_position(done);
        Ok(storelab_workload::OpOutcome {
            rows: n,
            bytes_written: bytes,
        })
    })?;
    pb.finish_and_clear();
    phase.phase = "load".into();
    Ok(phase)
}

/// The numbers `0..count` in a random order drawn from `seed` (a random-key load).
pub fn shuffled(count: u64, seed: u64) -> Vec<u64> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let mut v: Vec<u64> = (0..count).collect();
    v.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    v
}
