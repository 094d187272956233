//! `storelab compare`, `storelab load` and `storelab run`: workloads through the engines.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use storelab_workload::results::RunResult;
use storelab_workload::{PhaseResult, RESULTS_SCHEMA_VERSION, RunConfig, UserTable, Workload};

use crate::engines::{EngineKind, StorageArgs, engine_of, open_engine};

/// Flags of `storelab compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Engines to run, comma-separated (heap, clustered, lsm, reference)
    #[arg(
        long,
        value_name = "ENGINE,...",
        value_delimiter = ',',
        default_value = "heap,clustered,lsm"
    )]
    pub engines: Vec<EngineKind>,

    /// Workloads, comma-separated: YCSB a-f; scan-agg, group-by, pk-range, sec-range-corr,
    /// sec-range-uncorr (the last two also with -bitmap)
    #[arg(
        long,
        value_name = "W,...",
        value_delimiter = ',',
        default_value = "a,b,c,e,scan-agg"
    )]
    pub workloads: Vec<String>,

    /// Rows loaded into each table before its workloads run (the default usertable, ~120 MB,
    /// is about twice the default memory, so the buffer pool misses and I/O shows)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "100000"
    )]
    pub records: u64,

    /// Measured operations per YCSB workload
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "20000"
    )]
    pub ops: u64,

    /// Executions of each analytic query (they scan whole tables)
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "10"
    )]
    pub query_ops: u64,

    /// Client threads
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "1"
    )]
    pub threads: u64,

    /// Seed of the data and every random choice
    #[arg(long, value_name = "N", default_value = "42")]
    pub seed: u64,

    /// Storage settings (memory, page size, I/O method, device, durability).
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Directory for the databases (default: a temporary directory, removed afterwards)
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Write every result as a JSON line to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bars
    #[arg(long, short)]
    pub quiet: bool,
}

impl Default for CompareArgs {
    fn default() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            args: CompareArgs,
        }
        Wrapper::parse_from(["storelab"]).args
    }
}

/// Flags of `storelab load`.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// The engine (heap, clustered, lsm, reference)
    #[arg(long, value_name = "ENGINE")]
    pub engine: EngineKind,

    /// The database directory (created if missing)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// Data set: usertable (YCSB) or orders (analytic queries)
    #[arg(long, value_name = "NAME", default_value = "usertable")]
    pub dataset: String,

    /// Rows to load
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "100000"
    )]
    pub records: u64,

    /// Seed of the data
    #[arg(long, value_name = "N", default_value = "42")]
    pub seed: u64,

    /// Storage settings (memory, page size, I/O method, device, durability).
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Insert in committed batches of N rows instead of the engine's bulk load (each batch
    /// atomic and durable; a load into a table that has rows continues after them)
    #[arg(long, value_name = "N")]
    pub batch: Option<u64>,

    /// With --batch: print "acknowledged <rows>" on stdout after each committed batch (what a
    /// crash test reads to know which rows must survive)
    #[arg(long, requires = "batch")]
    pub acks: bool,

    /// Write the result as a JSON line to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

/// The longest `--duration` of a run: a day.
const DURATION_S_MAX: f64 = 86_400.0;

/// Flags of `storelab run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The database directory (made by `storelab load`)
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,

    /// The engine (default: the one the directory holds)
    #[arg(long, value_name = "ENGINE")]
    pub engine: Option<EngineKind>,

    /// The workload (a-f, scan-agg, group-by, pk-range, sec-range-corr[-bitmap],
    /// sec-range-uncorr[-bitmap])
    #[arg(long, value_name = "W")]
    pub workload: String,

    /// Measured operations
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "10000"
    )]
    pub ops: u64,

    /// Run for this many seconds instead of a number of operations
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    pub duration: Option<f64>,

    /// Operations before measuring
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "0"
    )]
    pub warmup: u64,

    /// Client threads
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = parse_count,
        default_value = "1"
    )]
    pub threads: u64,

    /// Seed of every random choice
    #[arg(long, value_name = "N", default_value = "42")]
    pub seed: u64,

    /// Storage settings (memory, page size, I/O method, device, durability).
    #[command(flatten)]
    pub storage: StorageArgs,

    /// Write the result as a JSON line to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bar
    #[arg(long, short)]
    pub quiet: bool,
}

/// A progress bar on stderr, or a hidden one with `--quiet` or when stderr is not a terminal
/// (a script, a pipe, a CI log), where redrawn bars would only be noise.
fn bar(quiet: bool, len: u64, what: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    pb.set_prefix(what.to_string());
    pb
}

/// Parses a count flag (`--records`, `--ops`, `--threads`...), so that `-5` or `1e6` gets a
/// message saying what is accepted rather than clap's "unexpected argument"; the ranges are
/// checked by [`check_sizes`].
fn parse_count(text: &str) -> std::result::Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("not a count: give a whole number such as 1000 (got {text:?})"))
}

fn parse_workload(name: &str) -> Result<Workload> {
    Workload::parse(name).map_err(anyhow::Error::msg)
}

/// Checks the sizes a command was given against their limits, before anything is touched.
fn check_sizes(records: u64, ops: u64, threads: u64) -> Result<()> {
    if records == 0 || records > 1_000_000_000 {
        bail!("--records {records} is out of range (1 to 1,000,000,000)");
    }
    if ops == 0 || ops > 1_000_000_000_000 {
        bail!("--ops {ops} is out of range (1 to 10^12)");
    }
    if threads == 0 || threads > 1024 {
        bail!("--threads {threads} is out of range (1 to 1024)");
    }
    Ok(())
}

fn config_map(
    engine: EngineKind,
    storage: &StorageArgs,
    extra: &[(&'static str, serde_json::Value)],
) -> BTreeMap<String, serde_json::Value> {
    let mut m: BTreeMap<String, serde_json::Value> = storage
        .describe()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    m.insert("engine".into(), engine.name().into());
    m.insert("storelab_version".into(), env!("CARGO_PKG_VERSION").into());
    if let EngineKind::Peer(name) = engine
        && let Ok(config) = storage.to_config()
    {
        // A peer's own durability and memory settings (its pager ledger is empty: its I/O
        // is in the table counters as proc_io_*, from /proc/self/io).
        for (k, v) in crate::peers::describe(name, &config) {
            m.insert(format!("peer_{k}"), v);
        }
        m.insert(
            "io_source".into(),
            "proc-io (the ledger cannot see inside a peer)".into(),
        );
    }
    for (k, v) in extra {
        m.insert(k.to_string(), v.clone());
    }
    m
}

fn result_of(
    engine: EngineKind,
    load: Option<PhaseResult>,
    run: PhaseResult,
    loaded_bytes: Option<u64>,
    config: BTreeMap<String, serde_json::Value>,
) -> RunResult {
    RunResult {
        schema_version: RESULTS_SCHEMA_VERSION,
        engine: engine.name().into(),
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
    }
}

fn write_json(path: Option<&Path>, results: &[RunResult]) -> Result<()> {
    let Some(path) = path else { return Ok(()) };
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    for r in results {
        writeln!(f, "{}", serde_json::to_string(r)?)?;
    }
    Ok(())
}

/// `storelab compare`: every engine through every workload, one side-by-side table.
pub fn compare(args: &CompareArgs) -> Result<()> {
    check_sizes(args.records, args.ops, args.threads)?;
    if args.query_ops == 0 || args.query_ops > 1_000_000 {
        bail!(
            "--query-ops {} is out of range (1 to 1,000,000)",
            args.query_ops
        );
    }
    let workloads: Vec<Workload> = args
        .workloads
        .iter()
        .map(|w| parse_workload(w))
        .collect::<Result<_>>()?;
    let config = args.storage.to_config()?;
    let temp;
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("storelab-compare")
                .tempdir_in(std::env::current_dir()?)
                .context("create a temporary directory here (use --dir)")?;
            temp.path().to_path_buf()
        }
    };
    // Each engine starts from an empty directory. A kept directory (--dir) is cleared only if
    // it holds a storelab database or nothing: --dir pointed at the wrong place must not cost
    // the user files. All are checked before any is cleared, so a refusal touches nothing.
    let mut engines: Vec<EngineKind> = Vec::new();
    for &engine in &args.engines {
        if !engines.contains(&engine) {
            engines.push(engine);
        }
    }
    for &engine in &engines {
        let dir = base.join(engine.name());
        if dir.exists() && !is_storelab_dir(&dir)? {
            bail!(
                "{} exists and is not a storelab database: refusing to clear it (choose \
                 another --dir)",
                dir.display()
            );
        }
    }
    let started = Instant::now();
    let mut all: Vec<RunResult> = Vec::new();
    let data = UserTable::default();
    for &engine in &engines {
        let dir = base.join(engine.name());
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clear {}", dir.display()))?;
        }
        let db = open_engine(engine, &dir, &config)?;
        let mut loaded: BTreeMap<&str, (PhaseResult, u64)> = BTreeMap::new();
        for w in &workloads {
            let load = if loaded.contains_key(w.table()) {
                None
            } else {
                let pb = bar(
                    args.quiet,
                    args.records,
                    &format!("{engine} load {}", w.table()),
                );
                let r = storelab_workload::load(&*db, w, args.records, data, args.seed, &|n| {
                    pb.set_position(n)
                })?;
                pb.finish_and_clear();
                let bytes = r.user_bytes_written;
                loaded.insert(w.table(), (r.clone(), bytes));
                Some(r)
            };
            let ops = match w {
                Workload::Ycsb { .. } => args.ops,
                Workload::Analytic { query, .. } if query.is_write() => args.ops,
                Workload::Analytic { .. } => args.query_ops,
            };
            let run_config = RunConfig {
                ops,
                threads: args.threads as usize,
                seed: args.seed,
                ..RunConfig::default()
            };
            let pb = bar(args.quiet, ops, &format!("{engine} {}", w.name()));
            let r = storelab_workload::run(&*db, w, args.records, data, &run_config, &|n| {
                pb.set_position(n)
            })?;
            pb.finish_and_clear();
            let extra = [
                ("records", args.records.into()),
                ("threads", args.threads.into()),
                ("seed", args.seed.into()),
            ];
            let loaded_bytes = loaded.get(w.table()).map(|(_, b)| *b);
            all.push(result_of(
                engine,
                load,
                r,
                loaded_bytes,
                config_map(engine, &args.storage, &extra),
            ));
        }
        drop(db);
        if args.dir.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    write_json(args.json.as_deref(), &all)?;
    print_table(&engines, &workloads, &all);
    println!(
        "\n{} records per table, {} ops per YCSB workload, {} per query, {} thread(s), \
         commit {}, memory {}, io {}{}; {:.0} s in all",
        args.records,
        args.ops,
        args.query_ops,
        args.threads,
        args.storage.commit_mode,
        args.storage.memory,
        args.storage.io_method,
        if args.storage.direct { " direct" } else { "" },
        started.elapsed().as_secs_f64()
    );
    if args.dir.is_some() {
        // The reference engine lives in memory: it leaves no directory.
        let kept: Vec<String> = engines
            .iter()
            .map(|e| base.join(e.name()))
            .filter(|d| d.exists())
            .map(|d| d.display().to_string())
            .collect();
        if !kept.is_empty() {
            println!(
                "databases kept in {} (storelab run --dir DIR, storelab check --db DIR)",
                kept.join(", ")
            );
        }
    }
    if let Some(path) = &args.json {
        println!(
            "results appended to {} (storelab report {0})",
            path.display()
        );
    }
    Ok(())
}

/// Whether `dir` holds a storelab database (its catalog) or nothing at all: the directories
/// `compare` may clear and `load` may write into.
fn is_storelab_dir(dir: &Path) -> Result<bool> {
    if dir
        .join(storelab_table::catalog::CATALOG_FILE_NAME)
        .exists()
    {
        return Ok(true);
    }
    let mut entries =
        std::fs::read_dir(dir).with_context(|| format!("read directory {}", dir.display()))?;
    Ok(entries.next().is_none())
}

/// A figure with three or so significant digits, for tables.
pub(crate) fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// One row of the table: a result's cell.
type Metric = dyn Fn(&RunResult) -> String;

/// The side-by-side table: per workload, throughput and the figures that explain it.
fn print_table(engines: &[EngineKind], workloads: &[Workload], all: &[RunResult]) {
    let find = |e: EngineKind, w: &Workload| {
        all.iter()
            .find(|r| r.engine == e.name() && r.workload == w.name())
    };
    print!("{:<18} {:<22}", "workload", "metric");
    for e in engines {
        print!(" {:>12}", e.name());
    }
    println!();
    let metrics: [(&str, &Metric); 6] = [
        ("ops/s", &|r| fmt_num(r.throughput_ops_per_s)),
        ("p99 latency us", &|r| {
            r.latency_us
                .values()
                .map(|l| l.p99)
                .max()
                .map_or("-".into(), |v| v.to_string())
        }),
        ("reads/op", &|r| fmt_num(r.run.reads_per_op)),
        ("KiB written/op", &|r| {
            fmt_num(r.io.total.write_bytes as f64 / 1024.0 / r.ops.max(1) as f64)
        }),
        ("write amplification", &|r| {
            r.write_amplification.map_or("-".into(), fmt_num)
        }),
        ("size MiB", &|r| {
            fmt_num(r.size_on_disk_bytes as f64 / 1048576.0)
        }),
    ];
    for w in workloads {
        for (i, (name, f)) in metrics.iter().enumerate() {
            let label = if i == 0 { w.name() } else { String::new() };
            print!("{label:<18} {name:<22}");
            for &e in engines {
                let cell = find(e, w).map_or("-".to_string(), f);
                print!(" {cell:>12}");
            }
            println!();
        }
    }
}

/// `storelab load`.
pub fn load(args: &LoadArgs) -> Result<()> {
    check_sizes(args.records, 1, 1)?;
    let workload = match args.dataset.as_str() {
        "usertable" => parse_workload("a")?,
        "orders" => parse_workload("scan-agg")?,
        other => bail!("unknown data set {other:?} (usertable or orders)"),
    };
    if args.dir.exists() && !args.dir.is_dir() {
        bail!("{} is a file, not a database directory", args.dir.display());
    }
    if args.dir.exists() && !is_storelab_dir(&args.dir)? {
        bail!(
            "{} is not a storelab database (no catalog.json) and not empty: give a new or \
             empty directory, or one made by storelab load",
            args.dir.display()
        );
    }
    if args
        .dir
        .join(storelab_table::catalog::CATALOG_FILE_NAME)
        .exists()
    {
        let found = engine_of(&args.dir)?;
        if found != args.engine {
            bail!(
                "{} holds a {found} database, not {}",
                args.dir.display(),
                args.engine
            );
        }
    }
    let config = args.storage.to_config()?;
    let db = open_engine(args.engine, &args.dir, &config)?;
    let pb = bar(args.quiet, args.records, &format!("{} load", args.engine));
    let r = match args.batch {
        Some(0) => bail!("--batch 0: a batch needs at least one row"),
        Some(batch) => storelab_workload::load_batched(
            &*db,
            &workload,
            args.records,
            UserTable::default(),
            args.seed,
            batch,
            &|n| {
                pb.set_position(n);
                if args.acks {
                    // Printed only after the batch's commit returned: these rows are durable.
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "acknowledged {n}");
                    let _ = out.flush();
                }
            },
        )?,
        None => storelab_workload::load(
            &*db,
            &workload,
            args.records,
            UserTable::default(),
            args.seed,
            &|n| pb.set_position(n),
        )?,
    };
    pb.finish_and_clear();
    println!(
        "loaded {} rows into {} ({}) in {:.2} s: {:.0} rows/s, {:.1} MiB on disk, write \
         amplification {}",
        r.ops,
        workload.table(),
        args.engine,
        r.elapsed_s,
        r.throughput_ops_per_s,
        r.size_on_disk_bytes as f64 / 1048576.0,
        r.write_amplification.map_or("-".into(), fmt_num)
    );
    let config = config_map(args.engine, &args.storage, &[("seed", args.seed.into())]);
    let bytes = r.user_bytes_written;
    write_json(
        args.json.as_deref(),
        &[result_of(args.engine, None, r, Some(bytes), config)],
    )
}

/// `storelab run`.
pub fn run(args: &RunArgs) -> Result<()> {
    // With --duration the run stops on time, and --ops does not apply.
    check_sizes(
        1,
        if args.duration.is_some() { 1 } else { args.ops },
        args.threads,
    )?;
    if let Some(d) = args.duration
        && !(d > 0.0 && d <= DURATION_S_MAX)
    {
        bail!("--duration {d} is out of range (more than 0 to {DURATION_S_MAX} seconds)");
    }
    if args.warmup > 1_000_000_000_000 {
        bail!("--warmup {} is out of range (at most 10^12)", args.warmup);
    }
    let workload = parse_workload(&args.workload)?;
    let found = engine_of(&args.dir)?;
    if let Some(e) = args.engine
        && e != found
    {
        bail!("{} holds a {found} database, not {e}", args.dir.display());
    }
    let config = args.storage.to_config()?;
    let db = open_engine(found, &args.dir, &config)?;
    let table = db.open_table(workload.table()).with_context(|| {
        format!(
            "{} has no {} table: load it first (storelab load --dataset ...)",
            args.dir.display(),
            workload.table()
        )
    })?;
    let records = table.stats()?.row_count;
    let run_config = RunConfig {
        ops: args.ops,
        duration_s: args.duration,
        threads: args.threads as usize,
        warmup_ops: args.warmup,
        seed: args.seed,
    };
    let pb = bar(
        args.quiet,
        args.ops,
        &format!("{found} {}", workload.name()),
    );
    let r = storelab_workload::run(
        &*db,
        &workload,
        records,
        UserTable::default(),
        &run_config,
        &|n| pb.set_position(n),
    )?;
    pb.finish_and_clear();
    println!("[OVERALL], RunTime(ms), {:.0}", r.elapsed_s * 1e3);
    println!(
        "[OVERALL], Throughput(ops/sec), {:.1}",
        r.throughput_ops_per_s
    );
    for (op, l) in &r.latency_us {
        let op = op.to_uppercase();
        println!("[{op}], Operations, {}", l.count);
        println!("[{op}], AverageLatency(us), {:.1}", l.mean);
        println!("[{op}], 95thPercentileLatency(us), {}", l.p95);
        println!("[{op}], 99thPercentileLatency(us), {}", l.p99);
    }
    println!(
        "[IO], Reads/op, {:.2}\n[IO], WriteBytes/op, {:.0}\n[IO], Syncs, {}",
        r.reads_per_op,
        r.io.total.write_bytes as f64 / r.ops.max(1) as f64,
        r.io.total.sync_count
    );
    let extra = [
        ("threads", args.threads.into()),
        ("seed", args.seed.into()),
        ("records", records.into()),
    ];
    let config = config_map(found, &args.storage, &extra);
    write_json(
        args.json.as_deref(),
        &[result_of(found, None, r, None, config)],
    )
}
