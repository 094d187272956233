//! `storelab wal-bench`: how many durable commits per second does the WAL do?
//!
//! For each commit mode and thread count asked for, a fresh log is created in `--dir`; each
//! thread loops: append one record of `--record-size` bytes of main data, then `commit` it,
//! timing append + commit (what a client waits for). Results are commits per second over all
//! threads, latency percentiles, and from the ledger the syncs and bytes written per commit,
//! which show group commit at work: with N threads in `group` mode one fdatasync covers many
//! commits.
//!
//! The figure to compare with is fio's rate for 8 KiB sequential writes with `--fdatasync=1`
//! at queue depth 1 on a preallocated file (`../shared/tools/fio-baseline`, line
//! `commit_8k_fdatasync_preallocated`): one WAL commit is one write of the log's tail block(s)
//! into a preallocated segment plus one fdatasync, the same work.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use storelab_pager::io::{BackendConfig, BackendKind, open_backend};
use storelab_pager::{Disk, IoCause, Ledger, PageSize};
use storelab_wal::{CommitMode, RecordBuilder, RecordType, TornPageMode, Wal, WalConfig};

use crate::byte_size::ByteSize;

/// JSON schema version of wal-bench lines.
pub const SCHEMA_VERSION: u32 = 1;
/// The most client threads accepted.
pub const THREADS_MAX: usize = 1024;
/// The largest record accepted (the WAL's own limit is larger; this keeps runs sane).
pub const RECORD_SIZE_MAX: u64 = 1 << 20;

/// Flags of `storelab wal-bench`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Each thread appends one record (--record-size bytes of data plus a 32-byte header) and commits
it, in a loop, for --duration seconds after a short warm-up. A fresh log is created for every
(mode, threads) pair. sync: every commit returns after an fdatasync covers it (a committer that
finds its record already durable returns at once, so queued committers share syncs). group: one
leader syncs for all committers waiting, after --group-window-us. off: commits return at once; a
background writer syncs every 10 ms (a crash loses the last moments, never corrupts).

Compare single-thread sync commits/s with fio's 8 KiB sequential writes with --fdatasync=1 on a
preallocated file: ../shared/tools/fio-baseline DIR, line commit_8k_fdatasync_preallocated.")]
pub struct WalBenchArgs {
    /// Directory for the logs, removed afterwards [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Bytes of data per record
    #[arg(long, value_name = "SIZE", default_value = "256")]
    pub record_size: ByteSize,

    /// Client thread counts to measure
    #[arg(
        long,
        value_name = "N,...",
        value_delimiter = ',',
        default_value = "1,2,8,32"
    )]
    pub threads: Vec<usize>,

    /// Commit modes to measure: sync, group, off
    #[arg(long, value_name = "MODE,...", value_delimiter = ',', default_value = "sync,group",
          value_parser = parse_mode)]
    pub commit_modes: Vec<CommitMode>,

    /// Seconds to measure each (mode, threads) pair
    #[arg(long, value_name = "SECONDS", default_value = "3")]
    pub duration: f64,

    /// Group mode: microseconds a leader waits for more committers before syncing
    #[arg(long, value_name = "US", default_value = "0")]
    pub group_window_us: u64,

    /// I/O backend for the log's writes: sync, worker, io_uring, auto
    #[arg(long, value_name = "NAME", default_value = "sync", value_parser = parse_backend)]
    pub backend: BackendKind,

    /// WAL segment size
    #[arg(long, value_name = "SIZE", default_value = "16MiB")]
    pub segment_size: ByteSize,

    /// Write one JSON object per measurement to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bar
    #[arg(long)]
    pub quiet: bool,
}

fn parse_mode(s: &str) -> Result<CommitMode, String> {
    s.parse().map_err(|e: storelab_wal::Error| e.to_string())
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse().map_err(|e: storelab_pager::Error| e.to_string())
}

/// One measurement, as printed and written to JSON.
#[derive(Clone, Debug, Serialize)]
pub struct WalMeasurement {
    /// JSON schema version.
    pub schema_version: u32,
    /// Commit mode.
    pub commit_mode: String,
    /// Client threads.
    pub threads: usize,
    /// Record data bytes.
    pub record_size: u64,
    /// Backend the log wrote through.
    pub backend: String,
    /// Commits measured.
    pub commits: u64,
    /// Measured seconds.
    pub duration_s: f64,
    /// Commits per second, all threads.
    pub commits_per_s: f64,
    /// Median commit latency.
    pub p50_us: f64,
    /// 99th percentile commit latency.
    pub p99_us: f64,
    /// 99.9th percentile commit latency.
    pub p999_us: f64,
    /// fdatasync calls per commit (below 1 means syncs were shared).
    pub syncs_per_commit: f64,
    /// Log bytes written per commit (whole 4 KiB blocks: the tail block is rewritten).
    pub wal_bytes_per_commit: f64,
}

/// Runs every (mode, threads) measurement and prints the table; returns the measurements.
pub fn run(args: &WalBenchArgs) -> Result<Vec<WalMeasurement>> {
    if args.threads.is_empty() || args.threads.iter().any(|&t| t == 0 || t > THREADS_MAX) {
        bail!("--threads takes counts from 1 to {THREADS_MAX}");
    }
    if args.record_size.bytes() > RECORD_SIZE_MAX {
        bail!("--record-size is at most {RECORD_SIZE_MAX} bytes");
    }
    if !(args.duration > 0.0 && args.duration <= 3600.0) {
        bail!("--duration must be more than 0 and at most 3600 seconds");
    }
    if args.commit_modes.is_empty() {
        bail!("--commit-modes needs at least one mode");
    }
    storelab_wal::segment::SegmentGeometry::new(args.segment_size.bytes() as usize)?;
    let temp;
    let root: PathBuf = match &args.dir {
        Some(dir) => {
            if !dir.is_dir() {
                bail!("--dir {} is not a directory", dir.display());
            }
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary directory")?;
            temp.path().to_path_buf()
        }
    };
    let mut json =
        match &args.json {
            Some(path) => Some(std::fs::File::create(path).with_context(|| {
                format!("cannot create the JSON output file {}", path.display())
            })?),
            None => None,
        };
    let total = (args.commit_modes.len() * args.threads.len()) as u64;
    let bar = if args.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(total)
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}").expect("valid template"),
    );
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<6} {:>7} {:>7} {:>12} {:>9} {:>9} {:>9} {:>11} {:>11}",
        "mode",
        "threads",
        "record",
        "commits/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "syncs/commit",
        "bytes/commit"
    )?;
    let mut results = Vec::new();
    for &mode in &args.commit_modes {
        for &threads in &args.threads {
            bar.set_message(format!("{mode} x {threads}"));
            let dir = root.join(format!("wal-bench-{mode}-{threads}"));
            let m = measure(args, mode, threads, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            let m = m?;
            bar.suspend(|| {
                writeln!(
                    out,
                    "{:<6} {:>7} {:>7} {:>12.0} {:>9.1} {:>9.1} {:>9.1} {:>11.3} {:>11.0}",
                    m.commit_mode,
                    m.threads,
                    m.record_size,
                    m.commits_per_s,
                    m.p50_us,
                    m.p99_us,
                    m.p999_us,
                    m.syncs_per_commit,
                    m.wal_bytes_per_commit
                )
            })?;
            if let Some(file) = json.as_mut() {
                serde_json::to_writer(&mut *file, &m)?;
                writeln!(file)?;
            }
            results.push(m);
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    Ok(results)
}

/// Measures one (mode, threads) pair on a fresh log in `dir`.
fn measure(
    args: &WalBenchArgs,
    mode: CommitMode,
    threads: usize,
    dir: &Path,
) -> Result<WalMeasurement> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let backend = open_backend(&BackendConfig {
        kind: args.backend,
        ..BackendConfig::default()
    })?;
    let backend_name = backend.name();
    let disk = Disk::new(backend, Ledger::new(), PageSize::K8, false);
    let mut config = WalConfig::new(dir.join("wal"));
    config.commit_mode = mode;
    config.group_window = Duration::from_micros(args.group_window_us);
    config.segment_size = args.segment_size.bytes() as usize;
    config.torn_page = TornPageMode::None;
    config.checkpoint_wal_bytes = 0;
    let wal = Wal::open(config, &disk)?;
    let pool =
        storelab_pager::BufferPool::new(Arc::clone(&disk), storelab_pager::PoolConfig::frames(16))?;
    wal.recover(&pool, &storelab_wal::RedoRegistry::new())?;
    let payload = vec![0xA5u8; args.record_size.bytes() as usize];
    // Warm up: create the first segment and fault in the code paths.
    for _ in 0..50 {
        let end = wal.append(&RecordBuilder::new(RecordType::NOOP).main(&payload))?;
        wal.commit(end)?;
    }
    let ledger = Arc::clone(disk.ledger());
    let before = ledger.snapshot();
    let stop = AtomicBool::new(false);
    let duration = Duration::from_secs_f64(args.duration);
    let started = Instant::now();
    let histograms: Vec<Result<Histogram<u64>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let wal = &wal;
                let payload = &payload;
                let stop = &stop;
                s.spawn(move || -> Result<Histogram<u64>> {
                    let mut h = Histogram::<u64>::new(3).expect("valid sigfig");
                    while !stop.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        let end =
                            wal.append(&RecordBuilder::new(RecordType::NOOP).main(payload))?;
                        wal.commit(end)?;
                        h.record(t.elapsed().as_nanos() as u64).expect("in range");
                    }
                    Ok(h)
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let delta = ledger.snapshot().delta(&before);
    wal.close()?;
    let mut all = Histogram::<u64>::new(3).expect("valid sigfig");
    for h in histograms {
        all.add(h?).expect("same bounds");
    }
    let commits = all.len();
    let wal_io = delta.get(wal.ledger_id(), IoCause::Wal);
    let per = |x: u64| {
        if commits == 0 {
            0.0
        } else {
            x as f64 / commits as f64
        }
    };
    let us = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    Ok(WalMeasurement {
        schema_version: SCHEMA_VERSION,
        commit_mode: mode.to_string(),
        threads,
        record_size: args.record_size.bytes(),
        backend: backend_name,
        commits,
        duration_s: elapsed,
        commits_per_s: commits as f64 / elapsed,
        p50_us: us(0.5),
        p99_us: us(0.99),
        p999_us: us(0.999),
        syncs_per_commit: per(wal_io.sync_count),
        wal_bytes_per_commit: per(wal_io.write_bytes),
    })
}
