//! Experiment 7: I/O method (sync, worker, io_uring) x buffered/direct x device, cold scans.
//!
//! One orders table is bulk-loaded into a heap and into a clustered B+tree and the engines are
//! closed. Then, for every combination of I/O method, buffered or direct (`O_DIRECT`) page
//! files, and device (the real disk, or a simulated NVMe drive or cloud volume in front of
//! it), the database is reopened with a buffer pool an eighth of the scanned file and full
//! scans with a Q6-like aggregate are measured cold: time, MB/s, pages read, read requests,
//! and which reads the read stream issued ahead of need (ledger cause `prefetch`) versus on
//! demand (`read`).
//!
//! "Cold" means both caches are empty at the start of each scan. The buffer pool is an
//! eighth of the file, so a scan from page 0 has evicted everything the previous scan (or the
//! heap's survey at open) left behind long before it gets there. The OS page cache is
//! dropped before every scan: each file of the database is fdatasync'ed and then
//! `posix_fadvise(POSIX_FADV_DONTNEED)`'ed, as `storelab io-bench` does for its buffered
//! measurements; only clean pages are dropped, and after the sync all are clean.
//!
//! Both engines read their pages through the pager's read stream: up to
//! `prefetch_depth` pages (32 by default) pinned ahead of the consumer, adjacent missing pages
//! combined into reads of up to 16 pages (128 KiB). With `worker` or `io_uring` those reads
//! are in flight while the scan decodes rows; with `sync` each read is a `pread` in the
//! scanning thread, so I/O and CPU take turns.
//!
//! The simulated devices need one correction to model `sync`: the device model delivers a
//! completion at its modelled deadline but returns from `submit` at once, so reads submitted
//! back to back by the `sync` backend overlap their modelled latencies just as the
//! asynchronous methods' do. A synchronous `pread` on such a device would block for the whole
//! latency, so the `sync` rows on simulated devices wrap the device in [`WaitingSubmit`],
//! which waits for each read's modelled completion before submitting the next. The stack as
//! `storelab run --io-method sync --device ...` builds it is measured too, as
//! `sync-overlapped`, to show what the unwrapped model reports.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use storelab_pager::device::{DeviceProfile, SimulatedDevice};
use storelab_pager::io::{
    BackendKind, CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, IoUringBackend,
    OpenOptions, open_backend,
};
use storelab_table::{Engine, ScanSpec, StorageConfig, Table, Value};
use storelab_workload::results::{IoSummary, LatencySummary};
use storelab_workload::{Orders, PhaseResult, Query, UserTable, Workload};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, TextTable, Verdict};
use crate::engines::{EngineKind, open_engine};

/// Log segment size of these databases (the default is 16 MiB).
const WAL_SEGMENT_BYTES: usize = 1 << 20;

/// The engines compared: rows in arrival order (heap) and in key order (clustered leaves).
const ENGINES: [EngineKind; 2] = [EngineKind::Heap, EngineKind::Clustered];

/// The buffer pool is the scanned file divided by this: the scan must come from storage.
const POOL_FRACTION_DIVISOR: u64 = 8;

/// Cold scans per combination on the real disk and the simulated NVMe drive (the median is
/// reported: the machine is shared, and single scans vary by tens of percent).
const REPS_LOCAL: usize = 5;
/// Cold scans per combination on the simulated cloud volume, and for prefetch depth 0
/// anywhere: these scans take seconds, and their differences are large.
const REPS_SLOW: usize = 3;

/// The cloud model gets its own, smaller table: this fraction of the rows. Each read there
/// takes a millisecond or more, and opening the clustered engine counts its rows by walking
/// the primary tree one page at a time.
const CLOUD_ROWS_DIVISOR: u64 = 5;

/// The deep prefetch depth compared with 0 and the default (32): 128 pages keep eight
/// combined 128 KiB reads in flight instead of two. The pool is at least four times this
/// (a read stream may pin at most a quarter of the pool).
const DEEP_DEPTH: usize = 128;

/// Where the page files live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Device {
    /// The machine's own disk.
    Disk,
    /// A simulated local NVMe drive (80 us, 500k IOPS, 3 GB/s, 128 in parallel).
    Nvme,
    /// A simulated cloud volume (1 ms, 3,000 IOPS, 125 MB/s, 64 in parallel).
    Cloud,
}

impl Device {
    const ALL: [Device; 3] = [Device::Disk, Device::Nvme, Device::Cloud];

    fn name(self) -> &'static str {
        match self {
            Device::Disk => "disk",
            Device::Nvme => "nvme",
            Device::Cloud => "cloud",
        }
    }

    fn profile(self) -> Option<DeviceProfile> {
        match self {
            Device::Disk => None,
            Device::Nvme => Some(DeviceProfile::nvme()),
            Device::Cloud => Some(DeviceProfile::cloud()),
        }
    }

    /// Cold scans per combination on this device at this prefetch depth.
    fn reps(self, depth: Option<usize>, reps: Reps) -> usize {
        match (self, depth) {
            (Device::Cloud, _) | (_, Some(0)) => reps.slow,
            _ => reps.local,
        }
    }
}

/// Scans per combination at this scale (fewer in a smoke test, never more than the defaults).
#[derive(Clone, Copy, Debug)]
struct Reps {
    local: usize,
    slow: usize,
}

/// How reads reach the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Method {
    /// `pread` in the scanning thread; on a simulated device each read waits for its modelled
    /// completion ([`WaitingSubmit`]).
    Sync,
    /// The sync backend behind the unmodified device model (simulated devices only).
    SyncOverlapped,
    /// A pool of I/O threads.
    Worker,
    /// Linux io_uring.
    IoUring,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Sync => "sync",
            Method::SyncOverlapped => "sync-overlapped",
            Method::Worker => "worker",
            Method::IoUring => "io_uring",
        }
    }

    fn kind(self) -> BackendKind {
        match self {
            Method::Sync | Method::SyncOverlapped => BackendKind::Sync,
            Method::Worker => BackendKind::Worker,
            Method::IoUring => BackendKind::IoUring,
        }
    }
}

/// A backend wrapper whose `submit` performs one request at a time and returns only when it
/// has completed: what a synchronous `pread` on the wrapped (simulated) device would do.
struct WaitingSubmit {
    inner: Arc<dyn IoBackend>,
}

impl IoBackend for WaitingSubmit {
    fn name(&self) -> String {
        format!("{}, waiting", self.inner.name())
    }

    fn open(&self, path: &Path, options: &OpenOptions) -> storelab_pager::Result<Arc<IoFile>> {
        self.inner.open(path, options)
    }

    fn submit(
        &self,
        requests: Vec<IoRequest>,
        sink: &Arc<CompletionSink>,
    ) -> storelab_pager::Result<()> {
        sink.begin(requests.len());
        let mut requests = requests.into_iter();
        while let Some(request) = requests.next() {
            let private = CompletionSink::new();
            let (file, op, offset, len) = (
                Arc::clone(&request.file),
                request.op,
                request.offset,
                request.buf.len(),
            );
            if let Err(e) = self.inner.submit(vec![request], &private) {
                // Keep the caller's accounting whole, as the device model does: every request
                // of the batch completes, the refused ones as errors.
                let refused = self.inner.wait(&private).unwrap_or_else(|| IoCompletion {
                    file,
                    op,
                    offset,
                    buf: storelab_pager::AlignedBuf::zeroed(len),
                    tag: 0,
                    result: Err(std::io::Error::other("the inner backend refused the batch")),
                });
                sink.push(refused);
                for rest in requests {
                    sink.push(IoCompletion {
                        file: rest.file,
                        op: rest.op,
                        offset: rest.offset,
                        buf: rest.buf,
                        tag: rest.tag,
                        result: Err(std::io::Error::other("an earlier request was refused")),
                    });
                }
                return Err(e);
            }
            let done = self
                .inner
                .wait(&private)
                .expect("one request was submitted into this sink");
            sink.push(done);
        }
        Ok(())
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        sink.wait_pushed()
    }

    fn sync(&self, file: &IoFile) -> storelab_pager::Result<()> {
        self.inner.sync(file)
    }

    fn file_len(&self, file: &IoFile) -> storelab_pager::Result<u64> {
        self.inner.file_len(file)
    }

    fn set_len(&self, file: &IoFile, len: u64) -> storelab_pager::Result<()> {
        self.inner.set_len(file, len)
    }
}

/// One measured combination: its cold scans.
struct Point {
    engine: EngineKind,
    device: Device,
    method: Method,
    direct: bool,
    /// `None`: the engine's default prefetch depth.
    depth: Option<usize>,
    runs: Vec<PhaseResult>,
}

impl Point {
    /// The median scan by elapsed time.
    fn run(&self) -> &PhaseResult {
        let mut sorted: Vec<&PhaseResult> = self.runs.iter().collect();
        sorted.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
        sorted[sorted.len() / 2]
    }

    fn ms(&self) -> f64 {
        self.run().elapsed_s * 1e3
    }

    fn mb_per_s(&self) -> f64 {
        let r = self.run();
        r.io.total.read_bytes as f64 / r.elapsed_s.max(1e-9) / 1e6
    }

    /// Half the interquartile range of the scans' times over their median (with 5 scans,
    /// of the 2nd and 4th fastest; with 3, of all three): a rough relative error of the
    /// median on this shared machine.
    fn noise(&self) -> f64 {
        let mut times: Vec<f64> = self.runs.iter().map(|r| r.elapsed_s).collect();
        times.sort_by(f64::total_cmp);
        let k = times.len() / 4;
        (times[times.len() - 1 - k] - times[k]) / 2.0 / self.run().elapsed_s.max(1e-9)
    }
}

/// How a measured comparison came out, given the measurements' errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// The first is larger by more than the error.
    Larger,
    /// Within the error of each other.
    Tie,
    /// The first is smaller by more than the error.
    Smaller,
}

/// Compares `a` and `b`, each with a relative error.
fn compare((a, a_err): (f64, f64), (b, b_err): (f64, f64)) -> Outcome {
    let margin = a_err + b_err;
    if a > b * (1.0 + margin) {
        Outcome::Larger
    } else if a * (1.0 + margin) < b {
        Outcome::Smaller
    } else {
        Outcome::Tie
    }
}

/// Pages of `page_bytes` read per scan, all causes, or one cause.
fn pages(r: &PhaseResult, cause: Option<&str>, page_bytes: u64) -> f64 {
    let bytes = match cause {
        None => r.io.total.read_bytes,
        Some(c) => r.io.by_cause.get(c).map_or(0, |io| io.read_bytes),
    };
    bytes as f64 / page_bytes as f64 / r.ops.max(1) as f64
}

/// KiB per read request.
fn kib_per_read(r: &PhaseResult) -> f64 {
    r.io.total.read_bytes as f64 / r.io.total.read_count.max(1) as f64 / 1024.0
}

/// Drops every file of `dir` from the OS page cache: fdatasync (so every cached page is
/// clean), then `posix_fadvise(POSIX_FADV_DONTNEED)` over the whole file.
fn drop_os_cache(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            drop_os_cache(&path)?;
            continue;
        }
        let file =
            std::fs::File::open(&path).with_context(|| format!("open {}", path.display()))?;
        file.sync_data()
            .with_context(|| format!("fdatasync {}", path.display()))?;
        rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed)
            .map_err(std::io::Error::from)
            .with_context(|| format!("posix_fadvise(DONTNEED) on {}", path.display()))?;
    }
    Ok(())
}

/// The storage settings of one combination.
fn combo_config(
    base: &StorageConfig,
    pool_bytes: usize,
    method: Method,
    direct: bool,
    device: Device,
) -> Result<StorageConfig> {
    let mut config = base.clone();
    config.pool_bytes = pool_bytes;
    config.backend.kind = method.kind();
    config.direct = direct;
    config.device = device.profile();
    if method == Method::Sync
        && let Some(profile) = device.profile()
    {
        let real = open_backend(&config.backend)?;
        let modelled: Arc<dyn IoBackend> = Arc::new(SimulatedDevice::new(real, profile, 0)?);
        config.backend_override = Some(Arc::new(WaitingSubmit { inner: modelled }));
    }
    Ok(config)
}

/// One cold scan: drops the OS cache, then scans (a Q6-like sum of amounts under 500).
///
/// Measured like `storelab_workload::measure` (ledger delta, pool hits and misses, time) but
/// without `Table::stats`: the clustered engine's walks every page of its trees, which takes
/// seconds per call on the cloud model and would evict the pool between scans.
fn cold_scan(
    db: &dyn Engine,
    table: &dyn Table,
    dir: &Path,
    depth: Option<usize>,
    drop_cache: bool,
) -> Result<PhaseResult> {
    if drop_cache {
        drop_os_cache(dir)?;
    }
    let spec = ScanSpec {
        prefetch_depth: depth,
        ..ScanSpec::default()
    };
    let before = db.stats()?;
    let start = Instant::now();
    let mut sum = 0.0;
    let rows = table.scan(&spec, None, &mut |r| {
        if let Value::Float(a) = r[Orders::AMOUNT]
            && a < 500.0
        {
            sum += a;
        }
        true
    })?;
    let elapsed = start.elapsed();
    std::hint::black_box(sum);
    let after = db.stats()?;
    let delta = match (&after.ledger, &before.ledger) {
        (Some(a), Some(b)) => a.delta(b),
        _ => Default::default(),
    };
    let io = IoSummary::from_ledger(&delta);
    let hits = after.pool_hits - before.pool_hits;
    let misses = after.pool_misses - before.pool_misses;
    let us = elapsed.as_secs_f64() * 1e6;
    Ok(PhaseResult {
        phase: "run".into(),
        workload: "cold-scan".into(),
        ops: 1,
        rows,
        elapsed_s: elapsed.as_secs_f64(),
        throughput_ops_per_s: 1.0 / elapsed.as_secs_f64().max(1e-9),
        latency_us: BTreeMap::from([("scan".to_string(), LatencySummary::constant(1, us))]),
        wal_bytes: after.wal_bytes - before.wal_bytes,
        user_bytes_written: 0,
        write_amplification: None,
        reads_per_op: io.total.read_count as f64,
        size_on_disk_bytes: 0,
        row_count: rows,
        pool_hit_ratio: (hits + misses > 0).then(|| hits as f64 / (hits + misses) as f64),
        counters: BTreeMap::from([
            ("pool_hits".to_string(), hits),
            ("pool_misses".to_string(), misses),
        ]),
        io,
    })
}

/// `count` scans of the whole table with all of it in the pool (after one scan to load it).
fn warm_scans(
    engine: EngineKind,
    dir: &Path,
    config: &StorageConfig,
    count: usize,
) -> Result<Vec<PhaseResult>> {
    let db = open_engine(engine, dir, config)?;
    let table = db.open_table(storelab_workload::dataset::ORDERS)?;
    cold_scan(&*db, &*table, dir, None, false)?;
    (0..count)
        .map(|_| cold_scan(&*db, &*table, dir, None, false))
        .collect()
}

/// What the sweep found out about the machine before measuring.
struct Environment {
    uring: Result<(), String>,
    methods: Vec<Method>,
    /// The one-minute load average when the sweep started.
    load_start: Option<f64>,
}

/// The one-minute load average (other jobs on a shared machine show up here).
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn environment() -> Environment {
    let uring = IoUringBackend::new(8)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let mut methods = vec![Method::Sync, Method::SyncOverlapped, Method::Worker];
    if uring.is_ok() {
        methods.push(Method::IoUring);
    }
    Environment {
        uring,
        methods,
        load_start: load_average(),
    }
}

/// One loaded database and what it is measured on.
struct Database {
    engine: EngineKind,
    rows: u64,
    devices: &'static [Device],
    /// Bytes of the scanned file (the heap, or the clustered primary tree).
    file_bytes: u64,
    pool_bytes: u64,
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(400_000, 5_000);
    let reps = Reps {
        local: (ctx.scaled(REPS_LOCAL as u64, 2) as usize).min(REPS_LOCAL),
        slow: (ctx.scaled(REPS_SLOW as u64, 1) as usize).min(REPS_SLOW),
    };
    let cloud_rows = (rows / CLOUD_ROWS_DIVISOR).max(2_000.min(rows));
    let env = environment();
    // Small log segments: every open's recovery reads the current log segment through the
    // device to find the end of the log, which at 16 MiB and the cloud model's 125 MB/s costs
    // more than a tenth of a second per open; these scans write no log.
    let mut base = ctx.storage();
    base.wal_segment_size = WAL_SEGMENT_BYTES;
    let page_bytes = base.page_size.bytes() as u64;
    let workload = Workload::Analytic {
        query: Query::ScanAggregate,
        bitmap: false,
    };
    let best = if env.uring.is_ok() {
        Method::IoUring
    } else {
        Method::Worker
    };

    let mut points: Vec<Point> = Vec::new();
    let mut warm: Vec<(EngineKind, PhaseResult, usize)> = Vec::new();
    let mut databases: Vec<Database> = Vec::new();
    for engine in ENGINES {
        for (label, n, devices) in [
            ("local", rows, &[Device::Disk, Device::Nvme][..]),
            ("cloud", cloud_rows, &[Device::Cloud][..]),
        ] {
            let dir = ctx.fresh_dir(&format!("{engine}-{label}"))?;
            // Load with the default 64 MiB pool (the bulk path, one checkpoint at the end),
            // then close: every measured point reopens the database.
            let (load, file_bytes) = {
                let db = open_engine(engine, &dir, &base)?;
                let pb = ctx.bar(n, &format!("{engine} load {n} rows"));
                let load = storelab_workload::load(
                    &*db,
                    &workload,
                    n,
                    UserTable::default(),
                    ctx.seed,
                    &|d| pb.set_position(d),
                )?;
                pb.finish_and_clear();
                let stats = db.open_table(workload.table())?.stats()?;
                let file_key = match engine {
                    EngineKind::Heap => "heap",
                    _ => "primary",
                };
                let file_bytes = stats.file_bytes.get(file_key).copied().unwrap_or(0);
                (load, file_bytes)
            };
            let pool_bytes = (file_bytes / POOL_FRACTION_DIVISOR)
                .max(4 * DEEP_DEPTH as u64 * page_bytes)
                .max(16 * page_bytes);
            databases.push(Database {
                engine,
                rows: n,
                devices,
                file_bytes,
                pool_bytes,
            });

            // The CPU floor: scans with the whole table in the pool, half before the sweep
            // and half after it (the fastest is kept: other jobs only ever slow a scan down).
            let mut warm_runs = Vec::new();
            let warm_config = {
                let mut config = base.clone();
                config.pool_bytes = (file_bytes as usize) * 2 + (8 << 20);
                config
            };
            if label == "local" {
                warm_runs.extend(warm_scans(
                    engine,
                    &dir,
                    &warm_config,
                    reps.local.div_ceil(2),
                )?);
            }

            // The sweep: every method and mode, then the prefetch depths.
            let mut combos: Vec<(Device, Method, bool, Option<usize>)> = Vec::new();
            for &device in devices {
                for direct in [false, true] {
                    for &method in &env.methods {
                        if method == Method::SyncOverlapped && device == Device::Disk {
                            continue;
                        }
                        combos.push((device, method, direct, None));
                    }
                }
                for depth in [0, DEEP_DEPTH] {
                    combos.push((device, best, true, Some(depth)));
                }
            }
            let pb = ctx.bar(
                combos.len() as u64,
                &format!("{engine} cold scans ({label})"),
            );
            for (i, &(device, method, direct, depth)) in combos.iter().enumerate() {
                let config = combo_config(&base, pool_bytes as usize, method, direct, device)?;
                let db = open_engine(engine, &dir, &config)?;
                let table = db.open_table(workload.table())?;
                let mut runs = Vec::new();
                for rep in 0..device.reps(depth, reps) {
                    let run = cold_scan(&*db, &*table, &dir, depth, true)?;
                    let params = [
                        ("rows", n.into()),
                        ("measure", "cold-scan".into()),
                        ("method", method.name().into()),
                        ("device_name", device.name().into()),
                        (
                            "prefetch_depth",
                            depth.map_or_else(|| "default".into(), serde_json::Value::from),
                        ),
                        ("repetition", rep.into()),
                    ];
                    ctx.record(engine.name(), &params, &config, None, run.clone());
                    runs.push(run);
                }
                ctx.verify(&*db)?;
                points.push(Point {
                    engine,
                    device,
                    method,
                    direct,
                    depth,
                    runs,
                });
                pb.set_position(i as u64 + 1);
            }
            pb.finish_and_clear();
            if label == "local" {
                warm_runs.extend(warm_scans(
                    engine,
                    &dir,
                    &warm_config,
                    reps.local.div_ceil(2),
                )?);
                warm_runs.sort_by(|a, b| a.elapsed_s.total_cmp(&b.elapsed_s));
                let fastest = warm_runs[0].clone();
                ctx.record(
                    engine.name(),
                    &[
                        ("rows", n.into()),
                        ("measure", "warm-scan".into()),
                        ("method", "auto".into()),
                        ("warm_scans", warm_runs.len().into()),
                    ],
                    &warm_config,
                    Some(load.clone()),
                    fastest.clone(),
                );
                warm.push((engine, fastest, warm_runs.len()));
            }
            ctx.discard(&dir);
        }
    }
    Ok(report(
        &points, &warm, &databases, &env, best, reps, page_bytes,
    ))
}

fn find(
    points: &[Point],
    engine: EngineKind,
    device: Device,
    method: Method,
    direct: bool,
) -> Option<&Point> {
    find_depth(points, engine, device, method, direct, None)
}

fn find_depth(
    points: &[Point],
    engine: EngineKind,
    device: Device,
    method: Method,
    direct: bool,
    depth: Option<usize>,
) -> Option<&Point> {
    points.iter().find(|p| {
        p.engine == engine
            && p.device == device
            && p.method == method
            && p.direct == direct
            && p.depth == depth
    })
}

fn mode(direct: bool) -> &'static str {
    if direct { "direct" } else { "buffered" }
}

/// `fast`'s speedup over sync (time of sync / time of `fast`) for one engine, device and
/// mode, at the default prefetch depth.
fn speedup(
    points: &[Point],
    engine: EngineKind,
    device: Device,
    direct: bool,
    fast: Method,
) -> Option<f64> {
    let sync = find(points, engine, device, Method::Sync, direct)?;
    let fast = find(points, engine, device, fast, direct)?;
    Some(sync.ms() / fast.ms().max(1e-9))
}

fn mib(bytes: u64) -> String {
    num(bytes as f64 / (1 << 20) as f64)
}

fn depth_name(depth: Option<usize>) -> String {
    depth.map_or_else(|| "default (32)".to_string(), |d| d.to_string())
}

fn report(
    points: &[Point],
    warm: &[(EngineKind, PhaseResult, usize)],
    databases: &[Database],
    env: &Environment,
    best: Method,
    reps: Reps,
    page_bytes: u64,
) -> Report {
    let b = best.name();
    // Main table.
    let mut table = TextTable::new(&[
        "engine",
        "device",
        "files",
        "I/O method",
        "scan (ms)",
        "MB/s",
        "pages read",
        "read requests",
        "KiB/request",
        "prefetch pages",
        "foreground pages",
        "pool hit %",
        "spread +-%",
        "vs sync",
    ]);
    for p in points.iter().filter(|p| p.depth.is_none()) {
        let r = p.run();
        let vs_sync = find(points, p.engine, p.device, Method::Sync, p.direct)
            .map_or("-".into(), |s| ratio(s.ms(), p.ms()));
        table.row(vec![
            p.engine.name().into(),
            p.device.name().into(),
            mode(p.direct).into(),
            p.method.name().into(),
            num(p.ms()),
            num(p.mb_per_s()),
            num(pages(r, None, page_bytes)),
            num(r.io.total.read_count as f64),
            num(kib_per_read(r)),
            num(pages(r, Some("prefetch"), page_bytes)),
            num(pages(r, Some("read"), page_bytes)),
            num(r.pool_hit_ratio.unwrap_or(f64::NAN) * 100.0),
            num(p.noise() * 100.0),
            vs_sync,
        ]);
    }

    // Plot: MB/s per device and mode, one bar per engine and method.
    let categories: Vec<(Device, bool)> = Device::ALL
        .iter()
        .flat_map(|&d| [(d, false), (d, true)])
        .collect();
    let plot_methods: Vec<Method> = env
        .methods
        .iter()
        .copied()
        .filter(|&m| m != Method::SyncOverlapped)
        .collect();
    let mut series = Vec::new();
    for engine in ENGINES {
        for &m in &plot_methods {
            series.push((
                format!("{engine} {}", m.name()),
                categories
                    .iter()
                    .map(|&(d, direct)| {
                        find(points, engine, d, m, direct).map_or(0.0, |p| p.mb_per_s())
                    })
                    .collect(),
            ));
        }
    }
    let plot = Plot {
        file: "scan_mb_per_s.svg".into(),
        title: "Cold full scan throughput (default prefetch depth)".into(),
        x_label: "device, page files".into(),
        y_label: "MB/s read".into(),
        log_y: true,
        kind: PlotKind::Bars {
            categories: categories
                .iter()
                .map(|&(d, direct)| format!("{} {}", d.name(), mode(direct)))
                .collect(),
            series,
        },
    };

    // Warm scans (CPU floor).
    let mut warm_table = TextTable::new(&[
        "engine",
        "rows",
        "scanned file (MiB)",
        "warm scans",
        "fastest (ms)",
        "pages read",
        "pool hit %",
        "rows/s",
    ]);
    for (engine, r, count) in warm {
        let file = databases
            .iter()
            .find(|d| d.engine == *engine && d.devices.contains(&Device::Disk))
            .map_or(0, |d| d.file_bytes);
        warm_table.row(vec![
            engine.name().into(),
            r.rows.to_string(),
            mib(file),
            count.to_string(),
            num(r.elapsed_s * 1e3),
            num(pages(r, None, page_bytes)),
            num(r.pool_hit_ratio.unwrap_or(f64::NAN) * 100.0),
            num(r.rows as f64 / r.elapsed_s.max(1e-9)),
        ]);
    }
    let warm_ms = |engine: EngineKind| {
        warm.iter()
            .find(|(e, _, _)| *e == engine)
            .map_or(f64::NAN, |(_, r, _)| r.elapsed_s * 1e3)
    };

    // Prefetch depth.
    let depths = [Some(0), None, Some(DEEP_DEPTH)];
    let mut depth_table = TextTable::new(&[
        "engine",
        "device",
        "prefetch depth",
        "scan (ms)",
        "MB/s",
        "read requests",
        "KiB/request",
        "prefetch pages",
        "foreground pages",
    ]);
    let mut depth_bars: Vec<(String, Vec<f64>)> = Vec::new();
    for engine in ENGINES {
        for depth in depths {
            let mut values = Vec::new();
            for device in Device::ALL {
                let Some(p) = find_depth(points, engine, device, best, true, depth) else {
                    values.push(0.0);
                    continue;
                };
                let r = p.run();
                depth_table.row(vec![
                    engine.name().into(),
                    device.name().into(),
                    depth_name(depth),
                    num(p.ms()),
                    num(p.mb_per_s()),
                    num(r.io.total.read_count as f64),
                    num(kib_per_read(r)),
                    num(pages(r, Some("prefetch"), page_bytes)),
                    num(pages(r, Some("read"), page_bytes)),
                ]);
                values.push(p.mb_per_s());
            }
            depth_bars.push((format!("{engine} depth {}", depth.unwrap_or(32)), values));
        }
    }
    let depth_plot = Plot {
        file: "prefetch_depth.svg".into(),
        title: format!("Cold scan throughput by prefetch depth ({b}, direct)"),
        x_label: "device".into(),
        y_label: "MB/s read".into(),
        log_y: true,
        kind: PlotKind::Bars {
            categories: Device::ALL.iter().map(|d| d.name().to_string()).collect(),
            series: depth_bars,
        },
    };

    // Findings.
    let mut findings = Vec::new();
    for engine in ENGINES {
        let s = |d, direct| speedup(points, engine, d, direct, best);
        let w = |d, direct| speedup(points, engine, d, direct, Method::Worker);
        let x = |v: Option<f64>| v.map_or("-".into(), |v| ratio(v, 1.0));
        findings.push(format!(
            "{engine}, default prefetch depth: {b} scanned {} as fast as sync on the real disk \
             with buffered files, {} with direct files, {} on the simulated NVMe drive \
             (direct) and {} on the simulated cloud volume (direct); worker {}, {}, {} and {}.",
            x(s(Device::Disk, false)),
            x(s(Device::Disk, true)),
            x(s(Device::Nvme, true)),
            x(s(Device::Cloud, true)),
            x(w(Device::Disk, false)),
            x(w(Device::Disk, true)),
            x(w(Device::Nvme, true)),
            x(w(Device::Cloud, true)),
        ));
        if let (Some(sync), Some(fast)) = (
            find(points, engine, Device::Disk, Method::Sync, true),
            find(points, engine, Device::Disk, best, true),
        ) {
            let floor = warm_ms(engine);
            let above = fast.ms() - floor;
            findings.push(format!(
                "{engine}, real disk, direct: the same scan with everything in the pool takes \
                 {} ms (decoding rows, no I/O). Cold, sync took {} ms, {} ms above that \
                 floor: the scanning thread waits for each read, then decodes. {b} took {} \
                 ms{}",
                num(floor),
                num(sync.ms()),
                num(sync.ms() - floor),
                num(fast.ms()),
                if above <= 0.0 {
                    ", no slower than the fastest warm scan: its reads were in flight while \
                     rows were decoded, and the scan was CPU-bound."
                        .to_string()
                } else if above <= 0.1 * floor {
                    format!(
                        ", within {}% of the floor: its reads were in flight while rows were \
                         decoded, and the scan became CPU-bound.",
                        num((above / floor * 100.0).ceil())
                    )
                } else {
                    format!(
                        ", {} ms above the floor: reads in flight while rows are decoded hid \
                         {}% of sync's wait.",
                        num(above),
                        num(100.0 * (1.0 - above / (sync.ms() - floor).max(1e-9)))
                    )
                },
            ));
        }
        if let (Some(buf), Some(dir)) = (
            find(points, engine, Device::Disk, Method::Sync, false),
            find(points, engine, Device::Disk, Method::Sync, true),
        ) {
            let explain = if buf.ms() < dir.ms() {
                "buffered files are faster because the kernel's read-ahead fetches the \
                 following blocks into the page cache while the scan decodes, so many \
                 buffered preads copy from memory: the overlap that async I/O gives direct \
                 files"
            } else {
                "buffered files were not faster here, so the kernel's read-ahead did not hide \
                 the reads' latency from the sync scan"
            };
            findings.push(format!(
                "{engine}, real disk, sync: buffered files scanned in {} ms ({} MB/s), direct \
                 ones in {} ms ({} MB/s), with the same {} read requests of {} KiB on \
                 average; {explain}.",
                num(buf.ms()),
                num(buf.mb_per_s()),
                num(dir.ms()),
                num(dir.mb_per_s()),
                num(dir.run().io.total.read_count as f64),
                num(kib_per_read(dir.run())),
            ));
        }
    }
    let hit_max = points
        .iter()
        .filter_map(|p| p.run().pool_hit_ratio)
        .fold(0.0, f64::max);
    if let Some(p) = find(points, EngineKind::Heap, Device::Disk, best, true) {
        let r = p.run();
        findings.push(format!(
            "The ledger shows where the pages came from: a cold {b} heap scan read {} pages \
             ({} MiB) in {} requests of {} KiB on average; {} pages were read ahead by the \
             read stream (cause `prefetch`) and {} on demand (cause `read`). The highest pool \
             hit ratio of any cold scan was {}%{}",
            num(pages(r, None, page_bytes)),
            num(r.io.total.read_bytes as f64 / (1 << 20) as f64),
            num(r.io.total.read_count as f64),
            num(kib_per_read(r)),
            num(pages(r, Some("prefetch"), page_bytes)),
            num(pages(r, Some("read"), page_bytes)),
            num(hit_max * 100.0),
            if hit_max < 0.05 {
                ": every scan read its table from storage."
            } else {
                ": some scans found part of the table in the pool, so they were not fully \
                 cold."
            },
        ));
    }
    if let Some(p) = find(points, EngineKind::Clustered, Device::Disk, best, true) {
        let r = p.run();
        findings.push(format!(
            "The clustered scan read {} pages: {} leaves streamed ahead (`prefetch`) and {} \
             internal nodes read on demand (`read`) while planning which leaves to stream.",
            num(pages(r, None, page_bytes)),
            num(pages(r, Some("prefetch"), page_bytes)),
            num(pages(r, Some("read"), page_bytes)),
        ));
    }
    for engine in ENGINES {
        for device in [Device::Nvme, Device::Cloud] {
            let (Some(sync), Some(over), Some(fast)) = (
                find(points, engine, device, Method::Sync, true),
                find(points, engine, device, Method::SyncOverlapped, true),
                find(points, engine, device, best, true),
            ) else {
                continue;
            };
            let closer_to_async = (over.ms() - fast.ms()).abs() < (sync.ms() - over.ms()).abs();
            findings.push(format!(
                "{engine}, {}, direct: sync waiting for each read took {} ms; the sync backend \
                 behind the unmodified device model (`sync-overlapped`) took {} ms against \
                 {b}'s {} ms. {}",
                device.name(),
                num(sync.ms()),
                num(over.ms()),
                num(fast.ms()),
                if closer_to_async {
                    format!(
                        "It is closer to the asynchronous method: the model returns from \
                         `submit` at once, so the read stream's reads overlap their modelled \
                         latencies whatever the backend, and `--io-method sync --device {}` \
                         measures sync as if it were asynchronous.",
                        device.name()
                    )
                } else {
                    "It is closer to waiting sync: the sync backend performs the real read \
                     inside `submit`, and when that read takes longer than the modelled \
                     latency the model's delay has passed by the time `submit` returns, so \
                     there is nothing left to overlap."
                        .to_string()
                }
            ));
        }
    }
    let cloud_cap_mb = DeviceProfile::cloud()
        .bandwidth_bytes_per_second_max
        .map_or(f64::NAN, |b| b as f64 / 1e6);
    for engine in ENGINES {
        let parts: Vec<String> = Device::ALL
            .iter()
            .filter_map(|&d| {
                let zero = find_depth(points, engine, d, best, true, Some(0))?;
                let default = find_depth(points, engine, d, best, true, None)?;
                let deep = find_depth(points, engine, d, best, true, Some(DEEP_DEPTH))?;
                Some(format!(
                    "{} {} / {} / {} MB/s",
                    d.name(),
                    num(zero.mb_per_s()),
                    num(default.mb_per_s()),
                    num(deep.mb_per_s()),
                ))
            })
            .collect();
        if parts.is_empty() {
            continue;
        }
        let cloud = |depth| find_depth(points, engine, Device::Cloud, best, true, depth);
        let cap = match (cloud(None), cloud(Some(DEEP_DEPTH))) {
            (Some(default), Some(deep)) => format!(
                " On the cloud model the default depth reached {}% of the model's {} MB/s \
                 bandwidth cap and depth {DEEP_DEPTH} {}%: two reads in flight leave the \
                 volume idle part of each millisecond.",
                num(100.0 * default.mb_per_s() / cloud_cap_mb),
                num(cloud_cap_mb),
                num(100.0 * deep.mb_per_s() / cloud_cap_mb),
            ),
            _ => String::new(),
        };
        findings.push(format!(
            "{engine}, {b}, direct, prefetch depth 0 / 32 / {DEEP_DEPTH}: {}. Depth 0 reads \
             one 8 KiB page per request and waits for it; the default keeps two combined \
             128 KiB reads in flight; {DEEP_DEPTH} keeps eight.{cap}",
            parts.join("; ")
        ));
    }

    // Verdict: asynchronous I/O's gain over sync is largest on the slowest device (with many
    // reads in flight, and at the engines' default depth), and on the local disk it is larger
    // with direct files (no kernel read-ahead) than with buffered ones.
    let mut held = Vec::new();
    let mut failed = Vec::new();
    let mut tied = Vec::new();
    let pct = |e: f64| format!("{}%", num(100.0 * e));
    for engine in ENGINES {
        // A gain and its relative error (the errors of its two medians added).
        let gain = |d, direct, depth| {
            let sync = find(points, engine, d, Method::Sync, direct)?;
            let fast = find_depth(points, engine, d, best, direct, depth)?;
            Some((sync.ms() / fast.ms().max(1e-9), sync.noise() + fast.noise()))
        };
        for (depth, what) in [
            (
                Some(DEEP_DEPTH),
                format!("with {DEEP_DEPTH} pages in flight"),
            ),
            (None, "at the default depth".to_string()),
        ] {
            let (Some(disk), Some(nvme), Some(cloud)) = (
                gain(Device::Disk, true, depth),
                gain(Device::Nvme, true, depth),
                gain(Device::Cloud, true, depth),
            ) else {
                continue;
            };
            let next = if nvme.0 >= disk.0 { nvme } else { disk };
            let outcome = compare(cloud, next);
            let numbers = format!(
                "{} versus {} on NVMe and {} on the disk, direct files",
                ratio(cloud.0, 1.0),
                ratio(nvme.0, 1.0),
                ratio(disk.0, 1.0)
            );
            let claim = |verb: &str| format!("{engine}: {b}'s gain over sync {what} {verb}");
            match outcome {
                Outcome::Larger => held.push(format!(
                    "{} on the cloud volume ({numbers})",
                    claim("is largest")
                )),
                Outcome::Smaller => failed.push(format!(
                    "{} on the cloud volume ({numbers})",
                    claim("is not largest")
                )),
                Outcome::Tie => tied.push(format!(
                    "{} on the cloud volume ({numbers}; within the +-{} error of the \
                     scans' medians)",
                    claim("is not clearly largest"),
                    pct(cloud.1 + next.1)
                )),
            }
        }
        let (Some(disk_buf), Some(disk_dir)) = (
            gain(Device::Disk, false, None),
            gain(Device::Disk, true, None),
        ) else {
            continue;
        };
        let numbers = format!(
            "{} with direct files, {} with buffered ones",
            ratio(disk_dir.0, 1.0),
            ratio(disk_buf.0, 1.0)
        );
        match compare(disk_dir, disk_buf) {
            Outcome::Larger => held.push(format!(
                "{engine}: on the local disk {b} gains more with direct files than with \
                 buffered ones ({numbers})"
            )),
            Outcome::Smaller => failed.push(format!(
                "{engine}: on the local disk {b} gains less with direct files than with \
                 buffered ones ({numbers})"
            )),
            Outcome::Tie => tied.push(format!(
                "{engine}: on the local disk {b} gains about as much with direct files as \
                 with buffered ones ({numbers}; within the +-{} error of the scans' medians)",
                pct(disk_dir.1 + disk_buf.1)
            )),
        }
    }
    // What bounds each gain: on the disk, overlapping decoding (the warm floor) with waiting
    // saves at most the smaller of the two, unless reads in flight also make the disk
    // deliver faster; on the cloud model no method exceeds its bandwidth cap.
    let bounds: Vec<String> = ENGINES
        .iter()
        .filter_map(|&engine| {
            let disk = find(points, engine, Device::Disk, Method::Sync, true)?;
            let cloud = find(points, engine, Device::Cloud, Method::Sync, true)?;
            let floor = warm_ms(engine);
            let wait = disk.ms() - floor;
            let overlap_max = disk.ms() / floor.max(wait).max(1e-9);
            let disk_gain = [None, Some(DEEP_DEPTH)]
                .into_iter()
                .filter_map(|d| find_depth(points, engine, Device::Disk, best, true, d))
                .map(|p| disk.ms() / p.ms().max(1e-9))
                .fold(0.0, f64::max);
            Some(format!(
                "{engine}: the direct sync scan on the disk spent {} ms decoding and {} ms \
                 waiting, so overlapping the two with reads no faster is worth at most {}{}; \
                 on the cloud model sync read {} MB/s and the {} MB/s cap allows at most {}",
                num(floor),
                num(wait),
                ratio(overlap_max, 1.0),
                if disk_gain > overlap_max {
                    format!(
                        " ({b} reached {}: with reads in flight the disk itself also \
                         delivered faster than one read at a time)",
                        ratio(disk_gain, 1.0)
                    )
                } else {
                    String::new()
                },
                num(cloud.mb_per_s()),
                num(cloud_cap_mb),
                ratio(cloud_cap_mb, cloud.mb_per_s()),
            ))
        })
        .collect();
    let bounds = if bounds.is_empty() {
        String::new()
    } else {
        format!(" What bounds the gains: {}.", bounds.join("; "))
    };
    let list = |label: &str, v: &[String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!("{label}: {}. ", v.join("; "))
        }
    };
    let text = format!(
        "{}{}{}",
        list("Held", &held),
        list("Did not hold", &failed),
        list(
            "Undecided (differences within the run-to-run spread)",
            &tied
        )
    );
    let text = format!("{}{bounds}", text.trim_end());
    let verdict = if !held.is_empty() && failed.is_empty() && tied.is_empty() {
        Verdict::Agrees(text)
    } else if held.is_empty() && tied.is_empty() && !failed.is_empty() {
        Verdict::Contradicts(text)
    } else {
        Verdict::Mixed(text)
    };

    let uring_note = match &env.uring {
        Ok(()) => {
            "io_uring is available here, so `auto` (the default) resolves to io_uring".to_string()
        }
        Err(e) => format!(
            "io_uring is not available here ({e}): `auto` resolves to worker and the io_uring \
             rows are skipped"
        ),
    };
    let sizes = databases
        .iter()
        .map(|d| {
            format!(
                "{} for {}: {} rows, {} MiB scanned, pool {} MiB",
                d.engine,
                d.devices
                    .iter()
                    .map(|x| x.name())
                    .collect::<Vec<_>>()
                    .join(" and "),
                d.rows,
                mib(d.file_bytes),
                mib(d.pool_bytes)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    Report {
        setup: vec![
            format!(
                "The orders table bulk-loaded (one checkpoint) into a heap and into a clustered \
                 B+tree, then closed; each combination reopens the database with a pool of \
                 1/{POOL_FRACTION_DIVISOR} of the scanned file (at least {} pages, so that \
                 depth {DEEP_DEPTH} fits): {sizes}. The cloud model gets a table \
                 1/{CLOUD_ROWS_DIVISOR} the size, as each of its reads takes a millisecond or \
                 more and opening the clustered engine counts its rows by walking the primary \
                 tree one page at a time.",
                4 * DEEP_DEPTH
            ),
            format!(
                "Each measurement is one full scan summing o_amount < 500 (a Q6-like \
                 aggregate); {} cold scans per combination on the real disk and the NVMe \
                 model, {} on the cloud model and at prefetch depth 0 (slow \
                 scans, large differences); the median is shown. The machine is shared with \
                 other jobs, so single scans vary.",
                reps.local, reps.slow
            ),
            "Cold: before each scan every file of the database is fdatasync'ed and dropped \
             from the OS page cache with posix_fadvise(POSIX_FADV_DONTNEED), as io-bench does \
             for buffered runs; the pool, an eighth of the file, holds nothing the scan can \
             use by the time it gets there (see the pool hit ratio column)."
                .into(),
            format!(
                "I/O methods: sync, worker (8 threads), io_uring; {uring_note}. Page files \
                 buffered or O_DIRECT. Devices: the real disk, and the simulated nvme (80 us, \
                 500k IOPS, 3 GB/s) and cloud (1 ms, 3,000 IOPS, 125 MB/s) models in front of \
                 it."
            ),
            "On the simulated devices, `sync` waits for each read's modelled completion \
             before it submits the next (a wrapper in this experiment), as a pread on that \
             device would; `sync-overlapped` is the sync backend behind the unmodified \
             model, as `storelab run --io-method sync --device ...` builds it."
                .into(),
            format!(
                "Prefetch depth: the engines' read stream keeps 32 pages ahead by default and \
                 combines up to 16 adjacent pages per request (two 128 KiB reads in flight); \
                 depth 0 reads one page per request with nothing ahead; depth {DEEP_DEPTH} \
                 keeps eight reads in flight. Measured with {b} and direct files."
            ),
            format!(
                "A warm scan with the whole table in the pool gives each engine's CPU floor. \
                 Log segments of {} MiB instead of 16: each open's recovery reads the \
                 current segment through the device to find the end of the log, slow on the \
                 cloud model, and the scans write no log.",
                WAL_SEGMENT_BYTES >> 20
            ),
            format!(
                "The machine is shared: its one-minute load average was {} when the sweep \
                 started and {} when it ended ({} CPUs). The `spread` column is half the \
                 interquartile range of a combination's scan times over their median (of all \
                 three scans where there are three); a comparison in the verdict counts only \
                 if it exceeds the spreads of the scans involved, added.",
                env.load_start.map_or("-".into(), num),
                load_average().map_or("-".into(), num),
                std::thread::available_parallelism().map_or(0, |n| n.get())
            ),
        ],
        expected: "PostgreSQL 18's io_method: asynchronous I/O (io_uring, worker) keeps many \
                   reads in flight, so a cold scan waits for the device's latency once per \
                   batch rather than once per read. That wins most on high-latency devices \
                   (cloud block storage, ~2-3x in PostgreSQL's own measurements) and with \
                   direct I/O, where the kernel does no read-ahead; on buffered local reads \
                   the kernel's read-ahead already hides much of the latency and the methods \
                   come close."
            .into(),
        sections: vec![
            Section {
                heading: "Cold full scans".into(),
                text: "Median of the cold scans per combination, default prefetch depth. Pages \
                       read and requests from the I/O ledger (a combined read of adjacent pages \
                       is one request); prefetch pages were read ahead by the read stream, \
                       foreground pages on demand. `vs sync`: the sync scan's time over this \
                       one's."
                    .into(),
                table: Some(table),
                plot: Some(plot),
            },
            Section {
                heading: "Warm scans: the CPU floor".into(),
                text: "The same scan with the whole table already in the pool: no reads, only \
                       decoding and aggregating rows. Half of the warm scans ran before the \
                       cold sweep and half after it; the fastest is the floor (other jobs on \
                       the machine only ever slow a scan down)."
                    .into(),
                table: Some(warm_table),
                plot: None,
            },
            Section {
                heading: "Prefetch depth".into(),
                text: format!(
                    "{b}, direct files. Depth 0 turns off both read-ahead and the combining of \
                     adjacent pages."
                ),
                table: Some(depth_table),
                plot: Some(depth_plot),
            },
        ],
        findings,
        verdict,
    }
}
