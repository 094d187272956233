//! Experiment 6: index range scans on correlated versus uncorrelated columns, with and
//! without prefetch.
//!
//! The orders table is bulk-loaded in primary-key order into each engine. Its `by_date`
//! index is on `o_date = o_id / 100`, so the rows of a date range sit together in the heap
//! and in the clustered tree (a correlated column); its `by_cust` index is on a hash of the
//! id, so the rows of a customer range are scattered over the whole table (uncorrelated).
//! Each database is reopened with a buffer pool a quarter of the heap's size and `O_DIRECT`
//! page files, and the standard workloads `sec-range-corr` (10 days, ~1,000 rows) and
//! `sec-range-uncorr` (10 customers) are run, each with the plain method (one row fetch per
//! index entry, in index order) and with `-bitmap` (row locations collected and sorted
//! first, then each page read once through a read stream that keeps `prefetch_depth` reads
//! in flight: PostgreSQL's bitmap heap scan, MySQL's Multi-Range Read in the clustered
//! engine). A third method, bitmap with a prefetch depth of 1, separates what sorting saves
//! from what overlapping the reads saves.
//!
//! Measured per scan: rows, pages read (and requests: a read may combine adjacent pages),
//! split by cause (`read`: the scan waited for it; `prefetch`: issued ahead by the read
//! stream) and by file (index, heap or primary tree), pages touched, from one long phase
//! per method; and latency, from short rounds in which every method runs in turn, so that
//! the noise of a shared machine falls on every method alike.

use std::path::Path;

use anyhow::{Context, Result};
use storelab_table::{Engine, StorageConfig};
use storelab_workload::{PhaseResult, RunConfig, UserTable, Workload};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, TextTable, Verdict, metrics};
use crate::engines::{EngineKind, open_engine};

/// The engines compared.
const ENGINES: [EngineKind; 3] = [EngineKind::Heap, EngineKind::Clustered, EngineKind::Lsm];

/// The two ranges: (workload base name, label).
const RANGES: [(&str, &str); 2] = [
    ("sec-range-corr", "correlated"),
    ("sec-range-uncorr", "uncorrelated"),
];

/// How the rows of an index range are fetched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Method {
    /// The label in tables and plots.
    label: &'static str,
    /// The workload's `-bitmap` suffix.
    bitmap: bool,
    /// The engine's prefetch depth (`None`: its default).
    depth: Option<usize>,
}

/// The fetch methods compared.
const METHODS: [Method; 3] = [
    Method {
        label: "plain",
        bitmap: false,
        depth: None,
    },
    Method {
        label: "bitmap, depth 1",
        bitmap: true,
        depth: Some(1),
    },
    Method {
        label: "bitmap",
        bitmap: true,
        depth: None,
    },
];

/// About the heap bytes of one orders row, for sizing the pool.
const ROW_BYTES_EST: u64 = 150;

/// The measurement pool is this fraction of the estimated heap size.
const POOL_FRACTION: u64 = 4;

/// The smallest measurement pool (tiny scales): 32 frames of 8 KiB.
const POOL_BYTES_MIN: u64 = 256 << 10;

/// "Correlated ranges are cheap": the textbook's order of magnitude between the pages per row
/// of an uncorrelated and a correlated plain index scan in a heap.
const CORRELATION_FACTOR_MIN: f64 = 10.0;

/// Latencies within this fraction of each other count as the same.
const SAME_FRACTION: f64 = 0.05;

/// One measured point.
struct Point {
    engine: EngineKind,
    range: &'static str,
    method: Method,
    run: PhaseResult,
    page_bytes: f64,
    /// Median latency (ms) of each interleaved timing round.
    round_p50_ms: Vec<f64>,
}

impl Point {
    fn per_scan(&self, v: u64) -> f64 {
        v as f64 / self.run.ops.max(1) as f64
    }

    /// Rows returned per scan.
    fn rows(&self) -> f64 {
        self.per_scan(self.run.rows)
    }

    /// Pages read per scan (bytes over the page size; LSM blocks counted the same way).
    fn pages(&self) -> f64 {
        self.per_scan(self.run.io.total.read_bytes) / self.page_bytes
    }

    /// Pages read per row returned.
    fn pages_per_row(&self) -> f64 {
        self.pages() / self.rows().max(1e-9)
    }

    /// Read requests per scan the scan waited for (cause `read`).
    fn foreground(&self) -> f64 {
        metrics::cause_reads(&self.run, "read")
    }

    /// Read requests per scan issued ahead by a read stream (cause `prefetch`).
    fn prefetched(&self) -> f64 {
        metrics::cause_reads(&self.run, "prefetch")
    }

    /// Read requests per scan to the secondary index's file.
    fn index_reads(&self) -> f64 {
        let file = if self.range == "correlated" {
            ".by_date.idx"
        } else {
            ".by_cust.idx"
        };
        metrics::file_reads(&self.run, file)
    }

    /// Read requests per scan to where the rows live: the heap file, the clustered primary
    /// tree, the LSM's tables.
    fn row_reads(&self) -> f64 {
        match self.engine {
            EngineKind::Heap => metrics::file_reads(&self.run, ".heap"),
            EngineKind::Clustered => metrics::file_reads(&self.run, ".primary.idx"),
            _ => metrics::file_reads(&self.run, "lsm:"),
        }
    }

    /// Median latency per scan: the median of the interleaved timing rounds' medians (the
    /// I/O run's median when no round ran).
    fn p50_ms(&self) -> f64 {
        if self.round_p50_ms.is_empty() {
            return metrics::p50_us(&self.run) / 1000.0;
        }
        let mut v = self.round_p50_ms.clone();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        }
    }
}

/// The engine's name at the start of a sentence.
fn title(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Heap => "Heap",
        EngineKind::Clustered => "Clustered",
        EngineKind::Lsm => "LSM",
        other => other.name(),
    }
}

/// Opens `engine` in `dir`, with `depth` as its default prefetch depth when given.
fn open(
    engine: EngineKind,
    dir: &Path,
    config: &StorageConfig,
    depth: Option<usize>,
) -> Result<Box<dyn Engine>> {
    Ok(match (engine, depth) {
        (EngineKind::Heap, Some(prefetch_depth)) => Box::new(
            storelab_heap::HeapEngine::open(
                dir,
                config,
                storelab_heap::HeapOptions {
                    prefetch_depth,
                    ..storelab_heap::HeapOptions::default()
                },
            )
            .with_context(|| format!("open heap database in {}", dir.display()))?,
        ),
        (EngineKind::Clustered, Some(prefetch_depth)) => Box::new(
            storelab_clustered::ClusteredEngine::open(
                dir,
                config,
                storelab_clustered::ClusteredOptions {
                    prefetch_depth,
                    ..storelab_clustered::ClusteredOptions::default()
                },
            )
            .with_context(|| format!("open clustered database in {}", dir.display()))?,
        ),
        _ => open_engine(engine, dir, config)?,
    })
}

/// The (range, method) pairs measured on `engine`: the LSM's bitmap fetch is a sorted series
/// of point gets with no read stream, so it has no prefetch depth to vary.
fn variants(engine: EngineKind) -> Vec<(&'static str, &'static str, Method)> {
    let mut v = Vec::new();
    for (base, range) in RANGES {
        for method in METHODS {
            if engine == EngineKind::Lsm && method.depth.is_some() {
                continue;
            }
            v.push((base, range, method));
        }
    }
    v
}

/// Reopens the database in `dir` (an empty pool) and runs `scans` scans of workload `base`
/// with `method` after `warmup` unmeasured ones, the ranges drawn from `seed`.
#[allow(clippy::too_many_arguments)] // Each is one knob of the measured phase.
fn scan_phase(
    ctx: &Ctx,
    engine: EngineKind,
    dir: &Path,
    config: &StorageConfig,
    (base, method): (&str, Method),
    rows: u64,
    (scans, warmup): (u64, u64),
    seed: u64,
) -> Result<(PhaseResult, Box<dyn Engine>)> {
    let name = format!("{base}{}", if method.bitmap { "-bitmap" } else { "" });
    let workload = Workload::parse(&name).map_err(anyhow::Error::msg)?;
    let db = open(engine, dir, config, method.depth)?;
    let pb = ctx.bar(warmup + scans, &format!("{engine} {name} {}", method.label));
    let run = storelab_workload::run(
        &*db,
        &workload,
        rows,
        UserTable::default(),
        &RunConfig {
            ops: scans,
            threads: 1,
            warmup_ops: warmup,
            seed,
            ..RunConfig::default()
        },
        &|n| pb.set_position(warmup + n),
    )?;
    pb.finish_and_clear();
    Ok((run, db))
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(200_000, 4_000);
    let scans = ctx.scaled(120, 10);
    let warmup = scans / 5;
    let rounds = ctx.scaled(4, 1);
    let round_scans = ctx.scaled(30, 4);
    let round_warmup = round_scans / 4;
    let load_config = ctx.storage();
    let mut config = ctx.storage();
    config.pool_bytes = ((rows * ROW_BYTES_EST) / POOL_FRACTION).max(POOL_BYTES_MIN) as usize;
    config.direct = true;
    let page_bytes = config.page_size.bytes() as f64;
    let mut points = Vec::new();
    let mut heap_file_bytes = 0;
    for engine in ENGINES {
        let dir = ctx.fresh_dir(engine.name())?;
        let load = {
            let db = open_engine(engine, &dir, &load_config)?;
            let workload = Workload::parse(RANGES[0].0).map_err(anyhow::Error::msg)?;
            let pb = ctx.bar(rows, &format!("{engine} bulk load"));
            let load = storelab_workload::load(
                &*db,
                &workload,
                rows,
                UserTable::default(),
                ctx.seed,
                &|n| pb.set_position(n),
            )?;
            pb.finish_and_clear();
            let table = db.open_table(workload.table())?;
            if engine == EngineKind::Lsm {
                // Flush and compact until none is due: no background work during the scans.
                table.maintain()?;
            }
            if engine == EngineKind::Heap {
                heap_file_bytes = table.stats()?.file_bytes.get("heap").copied().unwrap_or(0);
            }
            load
        };
        let first = points.len();
        for (base, range, method) in variants(engine) {
            let (run, db) = scan_phase(
                ctx,
                engine,
                &dir,
                &config,
                (base, method),
                rows,
                (scans, warmup),
                ctx.seed,
            )?;
            let params = [
                ("rows", rows.into()),
                ("range", range.into()),
                ("method", method.label.into()),
                (
                    "prefetch_depth",
                    method
                        .depth
                        .map_or(serde_json::Value::from("default"), Into::into),
                ),
                ("warmup_scans", warmup.into()),
                ("phase", "io".into()),
            ];
            ctx.record(
                engine.name(),
                &params,
                &config,
                Some(load.clone()),
                run.clone(),
            );
            points.push(Point {
                engine,
                range,
                method,
                run,
                page_bytes,
                round_p50_ms: Vec::new(),
            });
            ctx.verify(&*db)?;
        }
        // Latency: rounds in which every method runs a short phase in turn on the same
        // ranges, so that a busy moment of this shared machine slows every method alike.
        for round in 0..rounds {
            for (i, (base, range, method)) in variants(engine).into_iter().enumerate() {
                let (run, _db) = scan_phase(
                    ctx,
                    engine,
                    &dir,
                    &config,
                    (base, method),
                    rows,
                    (round_scans, round_warmup),
                    ctx.seed.wrapping_add(1 + round),
                )?;
                let params = [
                    ("rows", rows.into()),
                    ("range", range.into()),
                    ("method", method.label.into()),
                    (
                        "prefetch_depth",
                        method
                            .depth
                            .map_or(serde_json::Value::from("default"), Into::into),
                    ),
                    ("warmup_scans", round_warmup.into()),
                    ("phase", "timed".into()),
                    ("round", round.into()),
                ];
                points[first + i]
                    .round_p50_ms
                    .push(metrics::p50_us(&run) / 1000.0);
                ctx.record(engine.name(), &params, &config, Some(load.clone()), run);
            }
        }
        ctx.discard(&dir);
    }
    Ok(report(
        &points,
        rows,
        (scans, warmup),
        (rounds, round_scans, round_warmup),
        &config,
        heap_file_bytes,
    ))
}

fn find<'a>(
    points: &'a [Point],
    engine: EngineKind,
    range: &str,
    method: &str,
) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| p.engine == engine && p.range == range && p.method.label == method)
}

fn report(
    points: &[Point],
    rows: u64,
    (scans, warmup): (u64, u64),
    (rounds, round_scans, round_warmup): (u64, u64, u64),
    config: &StorageConfig,
    heap_file_bytes: u64,
) -> Report {
    let mut table = TextTable::new(&[
        "engine",
        "range",
        "method",
        "rows/scan",
        "pages read/scan",
        "read requests/scan",
        "waited for (read)",
        "issued ahead (prefetch)",
        "index-file requests",
        "row-file requests",
        "pages read/row",
        "pages touched/scan",
        "p50 (ms)",
    ]);
    for p in points {
        table.row(vec![
            p.engine.name().into(),
            p.range.into(),
            p.method.label.into(),
            num(p.rows()),
            num(p.pages()),
            num(metrics::reads(&p.run)),
            num(p.foreground()),
            num(p.prefetched()),
            num(p.index_reads()),
            num(p.row_reads()),
            num(p.pages_per_row()),
            if p.engine == EngineKind::Lsm {
                "-".into()
            } else {
                num(metrics::pages_touched(&p.run))
            },
            num(p.p50_ms()),
        ]);
    }

    // One group of bars per fetch method, one bar per engine and range (none where the
    // engine has no such method).
    let categories: Vec<String> = METHODS.iter().map(|m| m.label.to_string()).collect();
    let bars = |f: fn(&Point) -> f64| -> Vec<(String, Vec<f64>)> {
        let mut series = Vec::new();
        for engine in ENGINES {
            for (_, range) in RANGES {
                series.push((
                    format!("{engine}, {range}"),
                    METHODS
                        .iter()
                        .map(|m| find(points, engine, range, m.label).map_or(f64::NAN, f))
                        .collect(),
                ));
            }
        }
        series
    };
    let pages_plot = Plot {
        file: "pages_per_row.svg".into(),
        title: "Pages read per row returned".into(),
        x_label: "fetch method".into(),
        y_label: "pages read per row".into(),
        log_y: true,
        kind: PlotKind::Bars {
            categories: categories.clone(),
            series: bars(Point::pages_per_row),
        },
    };
    let latency_series = bars(Point::p50_ms);
    let latency_plot = Plot {
        file: "latency.svg".into(),
        title: "Median latency of a range scan".into(),
        x_label: "fetch method".into(),
        y_label: "p50 per scan (ms)".into(),
        log_y: true,
        kind: PlotKind::Bars {
            categories,
            series: latency_series,
        },
    };

    let mut findings = Vec::new();
    let get = |e, r, m| find(points, e, r, m);
    let mut correlation_holds = None;
    let mut bitmap_holds = None;
    let mut numbers = Vec::new();
    if let (Some(hc), Some(hu)) = (
        get(EngineKind::Heap, "correlated", "plain"),
        get(EngineKind::Heap, "uncorrelated", "plain"),
    ) {
        let factor = hu.pages_per_row() / hc.pages_per_row();
        correlation_holds = Some(factor >= CORRELATION_FACTOR_MIN);
        numbers.push(format!(
            "heap, plain: {:.3} pages per row correlated, {:.3} uncorrelated",
            hc.pages_per_row(),
            hu.pages_per_row()
        ));
        findings.push(format!(
            "Heap, plain index scan: the correlated range returned {} rows per scan from {} \
             heap-file requests ({:.3} pages read per row), because consecutive by_date \
             entries point into the same heap pages; the uncorrelated range returned {} rows \
             from {} heap-file requests ({:.3} pages per row): {} as many pages per row, \
             each by_cust entry pointing to another page. Of the {} pages the uncorrelated \
             scan touched, {} were read from storage; the rest were in the {} KiB pool.",
            num(hc.rows()),
            num(hc.row_reads()),
            hc.pages_per_row(),
            num(hu.rows()),
            num(hu.row_reads()),
            hu.pages_per_row(),
            ratio(hu.pages_per_row(), hc.pages_per_row()),
            num(metrics::pages_touched(&hu.run)),
            num(hu.pages()),
            config.pool_bytes / 1024,
        ));
    }
    for engine in [EngineKind::Heap, EngineKind::Clustered] {
        let (Some(plain), Some(sorted), Some(bitmap)) = (
            get(engine, "uncorrelated", "plain"),
            get(engine, "uncorrelated", "bitmap, depth 1"),
            get(engine, "uncorrelated", "bitmap"),
        ) else {
            continue;
        };
        if engine == EngineKind::Heap {
            bitmap_holds = Some(bitmap.p50_ms() < plain.p50_ms() * (1.0 - SAME_FRACTION));
            numbers.push(format!(
                "heap, uncorrelated: p50 {} ms plain, {} ms bitmap",
                num(plain.p50_ms()),
                num(bitmap.p50_ms())
            ));
        }
        let rows_file = if engine == EngineKind::Heap {
            "heap-file"
        } else {
            "primary-tree"
        };
        findings.push(format!(
            "{}, uncorrelated range: plain read {} pages per scan, {} of {} requests \
             waited for; the bitmap method read {} pages, {} requests waited for and {} \
             issued ahead by the read stream ({} {rows_file} requests in all), and its median \
             scan took {} ms against {} ms ({} the latency). With a prefetch depth of 1 \
             (sorted, each page once, nothing in flight ahead) it took {} ms: {} the \
             plain scan's latency, so {}.",
            title(engine),
            num(plain.pages()),
            num(plain.foreground()),
            num(metrics::reads(&plain.run)),
            num(bitmap.pages()),
            num(bitmap.foreground()),
            num(bitmap.prefetched()),
            num(bitmap.row_reads()),
            num(bitmap.p50_ms()),
            num(plain.p50_ms()),
            ratio(bitmap.p50_ms(), plain.p50_ms()),
            num(sorted.p50_ms()),
            ratio(sorted.p50_ms(), plain.p50_ms()),
            if sorted.p50_ms() >= plain.p50_ms() * (1.0 - SAME_FRACTION)
                && bitmap.p50_ms() < plain.p50_ms() * (1.0 - SAME_FRACTION)
            {
                "the gain comes from keeping reads in flight, not from the sorting"
            } else if sorted.p50_ms() < plain.p50_ms() * (1.0 - SAME_FRACTION) {
                "sorting the locations alone already saved time"
            } else {
                "neither sorting nor prefetch made the scan faster here"
            },
        ));
    }
    for engine in [EngineKind::Heap, EngineKind::Clustered] {
        let (Some(plain), Some(bitmap)) = (
            get(engine, "correlated", "plain"),
            get(engine, "correlated", "bitmap"),
        ) else {
            continue;
        };
        findings.push(format!(
            "{}, correlated range: plain read {} pages in {} requests per scan, the bitmap \
             method {} pages in {} requests ({} pages per request: adjacent pages combined \
             into one read); median {} ms against {} ms. In pages touched (CPU and pool \
             traffic) the plain scan paid {} per scan, {} per row, where the bitmap method, \
             visiting each page once, paid {}.",
            title(engine),
            num(plain.pages()),
            num(metrics::reads(&plain.run)),
            num(bitmap.pages()),
            num(metrics::reads(&bitmap.run)),
            num(bitmap.pages() / metrics::reads(&bitmap.run).max(1e-9)),
            num(bitmap.p50_ms()),
            num(plain.p50_ms()),
            num(metrics::pages_touched(&plain.run)),
            num(metrics::pages_touched(&plain.run) / plain.rows().max(1e-9)),
            num(metrics::pages_touched(&bitmap.run)),
        ));
    }
    if let (Some(cc), Some(cu)) = (
        get(EngineKind::Clustered, "correlated", "plain"),
        get(EngineKind::Clustered, "uncorrelated", "plain"),
    ) {
        findings.push(format!(
            "The clustered engine keeps rows in o_id order, with which o_date is correlated \
             too: {:.3} pages read per row for the correlated range against {:.3} for the \
             uncorrelated one ({}); {} and {} pages touched per scan, the plain method \
             descending the primary tree once per row.",
            cc.pages_per_row(),
            cu.pages_per_row(),
            ratio(cu.pages_per_row(), cc.pages_per_row()),
            num(metrics::pages_touched(&cc.run)),
            num(metrics::pages_touched(&cu.run)),
        ));
    }
    if let (Some(lc), Some(lu), Some(lb)) = (
        get(EngineKind::Lsm, "correlated", "plain"),
        get(EngineKind::Lsm, "uncorrelated", "plain"),
        get(EngineKind::Lsm, "uncorrelated", "bitmap"),
    ) {
        findings.push(format!(
            "The LSM: {:.3} pages per row correlated, {:.3} uncorrelated; its bitmap method \
             (sorted point gets, no read stream: {} requests issued ahead) took {} ms per \
             uncorrelated scan against {} ms plain.",
            lc.pages_per_row(),
            lu.pages_per_row(),
            num(lb.prefetched()),
            num(lb.p50_ms()),
            num(lu.p50_ms()),
        ));
    }

    let numbers = numbers.join("; ");
    let verdict = match (correlation_holds, bitmap_holds) {
        (Some(true), Some(true)) => Verdict::Agrees(format!(
            "Correlated ranges were cheap and uncorrelated ones dear ({numbers}): at least \
             {CORRELATION_FACTOR_MIN:.0}x as many pages per row, and the bitmap scan cut the \
             uncorrelated range's latency."
        )),
        (Some(true), Some(false)) => Verdict::Mixed(format!(
            "The uncorrelated range cost at least {CORRELATION_FACTOR_MIN:.0}x the pages per \
             row of the correlated one, as expected, but the bitmap scan did not cut its \
             latency by more than {:.0}% ({numbers}).",
            SAME_FRACTION * 100.0
        )),
        (Some(false), Some(true)) => Verdict::Mixed(format!(
            "The bitmap scan cut the uncorrelated range's latency, but the uncorrelated range \
             cost less than {CORRELATION_FACTOR_MIN:.0}x the pages per row of the correlated \
             one ({numbers})."
        )),
        (Some(false), Some(false)) => Verdict::Contradicts(format!(
            "The uncorrelated range cost less than {CORRELATION_FACTOR_MIN:.0}x the pages per \
             row of the correlated one and the bitmap scan did not cut its latency \
             ({numbers})."
        )),
        _ => Verdict::Mixed(format!(
            "Not every point needed for the comparison was measured ({numbers})."
        )),
    };

    Report {
        setup: vec![
            format!(
                "The orders table (~120 bytes a row) with {rows} rows, bulk-loaded in \
                 primary-key order (Table::load) with the default 64 MiB pool and \
                 checkpointed (the LSM also compacted). by_date is on o_date = o_id / 100 \
                 (correlated with the physical order of the heap and of the clustered \
                 tree); by_cust is on a hash of the id (uncorrelated)."
            ),
            format!(
                "Each point reopens the database with a {} KiB buffer pool (the heap file is \
                 {} KiB, {} the pool; the LSM's block cache gets the same budget) and page \
                 files opened with O_DIRECT, so that a pool miss is a device read.",
                config.pool_bytes / 1024,
                heap_file_bytes / 1024,
                ratio(heap_file_bytes as f64, config.pool_bytes as f64),
            ),
            format!(
                "Workloads sec-range-corr (a random 10-day range of by_date) and \
                 sec-range-uncorr (a random 10-customer range of by_cust), plain and with \
                 -bitmap, as `storelab run` runs them. I/O: per engine, range and method, \
                 {warmup} warm-up scans, then {scans} measured with the ledger, the same \
                 ranges for every engine and method. Latency: {rounds} rounds per engine in \
                 which every range and method runs in turn ({round_warmup} warm-up scans, \
                 then {round_scans} timed, new ranges each round), so that a busy moment of \
                 this shared machine slows every method alike; the p50 reported is the \
                 median of the rounds' medians."
            ),
            "Methods: plain (one row fetch per index entry, in index order); bitmap (row \
             locations sorted first, then each page read once through a read stream with the \
             engine's default depth, 32); bitmap, depth 1 (the same, with the engine opened \
             with prefetch depth 1: sorted but nothing in flight ahead). The LSM has plain and \
             bitmap only: its bitmap fetch is a sorted series of point gets without a read \
             stream."
                .into(),
        ],
        expected: format!(
            "When the indexed column follows the physical order, the rows of a range share \
             pages: a range scan reads about rows / (rows per page) pages. When it does not, \
             each row is on another page: about one page read per row, an order of magnitude \
             more (here: at least {CORRELATION_FACTOR_MIN:.0}x the pages per row, heap, plain \
             scans). Sorting the row locations (a bitmap scan) reads each page once and in \
             file order, and prefetching keeps many reads in flight, so it cuts the cost of \
             an uncorrelated range (here: the heap's bitmap scan has a median latency more \
             than {:.0}% below the plain scan's).",
            SAME_FRACTION * 100.0
        ),
        sections: vec![
            Section {
                heading: "Range scans".into(),
                text: "Per scan: rows returned; pages read (bytes over 8 KiB; LSM blocks \
                       counted the same way) and read requests, split by cause (waited for: \
                       read; issued ahead: prefetch) and by file (the secondary index; the \
                       heap file, the primary tree or the LSM's tables); pages read per row; \
                       pages touched in the pool; median latency (from the timing rounds). \
                       With depth 1 \
                       the read stream's reads are still charged to the prefetch cause, but \
                       only one is in flight at a time."
                    .into(),
                table: Some(table),
                plot: Some(pages_plot),
            },
            Section {
                heading: "Latency".into(),
                text: "Median latency per scan, by engine and fetch method, for both ranges \
                       (log scale)."
                    .into(),
                table: None,
                plot: Some(latency_plot),
            },
        ],
        findings,
        verdict,
    }
}
