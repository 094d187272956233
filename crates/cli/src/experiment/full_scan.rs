//! Experiment 4: full scans and analytic aggregates.
//!
//! The orders table is loaded into each engine in two ways: with the engine's bulk path
//! (`Table::load`: the heap fills pages in order, the clustered engine builds its trees
//! bottom-up with leaves 90% full, the LSM writes sorted runs), and with ordinary inserts in
//! random primary-key order (batches, as an application inserts). Each database is then
//! reopened with a buffer pool a quarter of the heap's size and `O_DIRECT` page files, and
//! two analytic queries that scan the whole table are measured: a TPC-H Q6-like filtered sum
//! (`scan-agg`) and a Q1-like group-by (`group-by`), as `storelab run` runs them.
//!
//! What is measured: the size of the structure a scan reads (the heap file, the clustered
//! primary tree, the LSM's tables) and of the whole table; pages and bytes read per scan,
//! read requests per scan and the share issued ahead of the consumer (cause `prefetch`),
//! from the ledger. Speed is measured apart, in rounds that scan each engine's table in turn
//! (the three databases of a load open side by side), so that the noise of a shared machine
//! falls on every engine alike: rows per second of the fastest scan, and the process's CPU
//! time over the scans' wall time, which tells a CPU-bound scan from an I/O-bound one.
//!
//! A heap's pages are packed as rows arrive, whatever their key, and a scan reads the file
//! front to back, combining adjacent pages into large reads. The clustered engine scans its
//! leaves in key order: after a bulk load they are 90% full and laid out in order; after
//! random inserts, page splits leave them about two-thirds full and scattered over the file,
//! so the same rows take more pages and the reads cannot be combined.

use anyhow::Result;
use rand::SeedableRng;
use storelab_table::StorageConfig;
use storelab_workload::workload::run_query;
use storelab_workload::{OpOutcome, Orders, PhaseResult, Query};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, TextTable, Verdict, metrics};
use crate::engines::{EngineKind, open_engine};

/// The engines compared.
const ENGINES: [EngineKind; 3] = [EngineKind::Heap, EngineKind::Clustered, EngineKind::Lsm];

/// How the table is loaded.
const LOADS: [&str; 2] = ["bulk", "random inserts"];

/// The queries measured (both scan every row).
const QUERIES: [Query; 2] = [Query::ScanAggregate, Query::GroupBy];

/// Rows per insert batch of the random-insert load (one atomic, synced commit each).
const BATCH_ROWS: u64 = 200;

/// About the heap bytes of one orders row, for sizing the pools.
const ROW_BYTES_EST: u64 = 150;

/// The measurement pool is this fraction of the estimated heap size.
const POOL_FRACTION: u64 = 4;

/// The smallest measurement pool (tiny scales): 32 frames of 8 KiB.
const POOL_BYTES_MIN: u64 = 256 << 10;

/// Figures within this fraction of each other count as the same (the verdict's tolerance,
/// stated in the report).
const SAME_FRACTION: f64 = 0.05;

/// Clock ticks per second of `/proc/self/stat`'s CPU times (Linux's fixed `USER_HZ`).
const USER_HZ: f64 = 100.0;

/// CPU time of this process so far (every thread, user and system), in seconds, from
/// `/proc/self/stat`; `None` where that file is missing or unreadable.
fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 (utime) and 15 (stime) of the whole line are 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// CPU shares are shown only when the timed scans took this long in all: the CPU clock
/// ticks every 10 ms.
const CPU_ELAPSED_MIN_S: f64 = 0.5;

/// The table's layout after a load.
struct Layout {
    engine: EngineKind,
    load: &'static str,
    /// Bytes of the structure a full scan reads (heap file, primary tree, LSM tables).
    scanned_bytes: u64,
    /// Bytes of the whole table (every index included).
    total_bytes: u64,
    /// Clustered: primary leaf fill in percent; heap: rows per heap page; LSM: none.
    fill: Option<f64>,
    /// The load phase.
    phase: PhaseResult,
}

/// One measured point.
struct Point {
    engine: EngineKind,
    load: &'static str,
    query: Query,
    run: PhaseResult,
    page_bytes: f64,
}

impl Point {
    /// Bytes read per scan.
    fn bytes(&self) -> f64 {
        self.run.io.total.read_bytes as f64 / self.run.ops.max(1) as f64
    }

    /// Pages read per scan: bytes over the page size (for the LSM, its blocks' bytes in
    /// page-size units).
    fn pages(&self) -> f64 {
        self.bytes() / self.page_bytes
    }

    /// Share of read requests issued ahead of the consumer.
    fn prefetch_share(&self) -> f64 {
        let all = metrics::reads(&self.run);
        if all == 0.0 {
            0.0
        } else {
            metrics::cause_reads(&self.run, "prefetch") / all
        }
    }

    /// MiB read per second.
    fn mib_per_s(&self) -> f64 {
        self.run.io.total.read_bytes as f64 / (1 << 20) as f64 / self.run.elapsed_s.max(1e-9)
    }
}

/// The speed of one engine's full scans after one load, from scans interleaved with the
/// other engines' (so that all of them see the same machine).
struct Speed {
    engine: EngineKind,
    load: &'static str,
    /// Scans timed.
    scans: u64,
    /// The fastest scan's wall time, in seconds.
    fastest_s: f64,
    /// Wall time of all the timed scans.
    wall_s: f64,
    /// CPU seconds the process used during them (`None`: unknown).
    cpu_s: Option<f64>,
    rows: u64,
}

impl Speed {
    /// Rows scanned per second by the fastest scan: on a shared machine, interference from
    /// other work only adds time, so the fastest of several scans is the steadiest figure.
    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.fastest_s.max(1e-9)
    }

    /// Share of the scans' wall time the process spent on a CPU (1.0: CPU-bound); `None`
    /// when unknown or when the scans were too short for the clock's resolution.
    fn cpu_share(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| self.wall_s >= CPU_ELAPSED_MIN_S)
            .map(|c| c / self.wall_s.max(1e-9))
    }

    /// CPU microseconds per row scanned (`None` where the CPU share is not known).
    fn cpu_us_per_row(&self) -> Option<f64> {
        self.cpu_share()?;
        self.cpu_s
            .map(|c| c * 1e6 / (self.scans * self.rows).max(1) as f64)
    }

    fn busy(&self) -> String {
        match (self.cpu_s, self.cpu_share()) {
            (_, Some(c)) => format!(
                "CPU busy {:.0}%, {} us of CPU per row",
                c * 100.0,
                num(self.cpu_us_per_row().unwrap_or(f64::NAN))
            ),
            (Some(_), None) => "scans too short to measure the CPU share".into(),
            (None, None) => "CPU time unknown".into(),
        }
    }
}

/// Loads `engine`'s database in `dir` by `load` and describes the layout left.
fn load_table(
    ctx: &Ctx,
    engine: EngineKind,
    load: &'static str,
    dir: &std::path::Path,
    rows: u64,
    config: &StorageConfig,
) -> Result<Layout> {
    let seed = ctx.seed;
    let db = open_engine(engine, dir, config)?;
    let table = db.create_table(Orders.schema())?;
    let mut phase = if load == "bulk" {
        let pb = ctx.bar(rows, &format!("{engine} bulk load"));
        let bytes = std::cell::Cell::new(0);
        let phase = storelab_workload::measure(&*db, &*table, "load", "load", 1, |_| {
            let mut it = (0..rows).map(|n| {
                if n % 4096 == 0 {
                    pb.set_position(n);
                }
                let row = Orders.row(n, seed);
                bytes.set(bytes.get() + super::row_bytes(&row));
                row
            });
            let n = table.load(&mut it)?;
            Ok(OpOutcome {
                rows: n,
                bytes_written: bytes.get(),
            })
        })?;
        pb.finish_and_clear();
        phase
    } else {
        let keys = super::shuffled(rows, seed);
        let mut it = keys.iter().map(|&n| Orders.row(n, seed));
        super::insert_rows(
            ctx,
            &*db,
            &*table,
            &format!("{engine} random inserts"),
            &mut it,
            rows,
            BATCH_ROWS,
        )?
    };
    phase.phase = "load".into();
    db.checkpoint()?;
    if engine == EngineKind::Lsm {
        // Flush and compact until none is due: no background work during the scans.
        table.maintain()?;
    }
    let stats = table.stats()?;
    let file = |name: &str| stats.file_bytes.get(name).copied().unwrap_or(0);
    let counter = |name: &str| stats.counters.get(name).copied().unwrap_or(0);
    let (scanned_bytes, fill) = match engine {
        EngineKind::Heap => (
            file("heap"),
            Some(stats.row_count as f64 / counter("heap_pages").max(1) as f64),
        ),
        EngineKind::Clustered => (
            file("primary"),
            Some(counter("primary_leaf_fill_permille") as f64 / 10.0),
        ),
        _ => (file("lsm_tables"), None),
    };
    Ok(Layout {
        engine,
        load,
        scanned_bytes,
        total_bytes: stats.size_bytes(),
        fill,
        phase,
    })
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(200_000, 2_000);
    let scans = ctx.scaled(5, 2);
    let rounds = ctx.scaled(16, 2);
    let seed = ctx.seed;
    let mut load_config = ctx.storage();
    // Loads run with the whole table in the pool: the experiment is about the layout they
    // leave, not about the load's own I/O.
    load_config.pool_bytes = load_config.pool_bytes.max((rows * 400) as usize);
    let mut config = ctx.storage();
    config.pool_bytes = ((rows * ROW_BYTES_EST) / POOL_FRACTION).max(POOL_BYTES_MIN) as usize;
    config.direct = true;
    let page_bytes = config.page_size.bytes() as f64;
    let mut layouts = Vec::new();
    let mut points = Vec::new();
    let mut speeds = Vec::new();
    for load in LOADS {
        let mut dirs = Vec::new();
        for engine in ENGINES {
            let dir = ctx.fresh_dir(&format!("{engine}-{}", load.replace(' ', "-")))?;
            let layout = load_table(ctx, engine, load, &dir, rows, &load_config)?;
            // The I/O of each query: the ledger of `scans` scans from an empty pool.
            for query in QUERIES {
                let db = open_engine(engine, &dir, &config)?;
                let table = db.open_table(storelab_workload::dataset::ORDERS)?;
                let pb = ctx.bar(scans, &format!("{engine} {load} {}", query.name()));
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                // The query exactly as `storelab run` issues it.
                let run =
                    storelab_workload::measure(&*db, &*table, query.name(), "query", scans, |i| {
                        pb.set_position(i + 1);
                        run_query(&*table, query, false, rows, &mut rng, i)
                    })?;
                pb.finish_and_clear();
                let params = [
                    ("rows", rows.into()),
                    ("load", load.into()),
                    ("query", query.name().into()),
                    ("phase", "io".into()),
                ];
                ctx.record(
                    engine.name(),
                    &params,
                    &config,
                    Some(layout.phase.clone()),
                    run.clone(),
                );
                points.push(Point {
                    engine,
                    load,
                    query,
                    run,
                    page_bytes,
                });
                ctx.verify(&*db)?;
            }
            layouts.push(layout);
            dirs.push((engine, dir));
        }
        // Speed: rounds of one scan per engine in turn, the queries alternating, so that a
        // busy moment of the machine slows every engine alike.
        let mut open = Vec::new();
        for (engine, dir) in &dirs {
            let db = open_engine(*engine, dir, &config)?;
            let table = db.open_table(storelab_workload::dataset::ORDERS)?;
            open.push((*engine, db, table));
            speeds.push(Speed {
                engine: *engine,
                load,
                scans: 0,
                fastest_s: f64::INFINITY,
                wall_s: 0.0,
                cpu_s: Some(0.0),
                rows,
            });
        }
        let first = speeds.len() - open.len();
        let pb = ctx.bar(rounds * open.len() as u64, &format!("{load}: timed scans"));
        for round in 0..rounds {
            let query = QUERIES[round as usize % QUERIES.len()];
            for (i, (engine, db, table)) in open.iter().enumerate() {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ round);
                let mut cpu = None;
                let run =
                    storelab_workload::measure(&**db, &**table, query.name(), "query", 1, |_| {
                        let before = process_cpu_s();
                        let outcome = run_query(&**table, query, false, rows, &mut rng, round)?;
                        cpu = before.zip(process_cpu_s()).map(|(b, a)| a - b);
                        Ok(outcome)
                    })?;
                let speed = &mut speeds[first + i];
                speed.scans += 1;
                speed.fastest_s = speed.fastest_s.min(run.elapsed_s);
                speed.wall_s += run.elapsed_s;
                speed.cpu_s = speed.cpu_s.zip(cpu).map(|(s, c)| s + c);
                let params = [
                    ("rows", rows.into()),
                    ("load", load.into()),
                    ("query", query.name().into()),
                    ("phase", "timed".into()),
                    ("round", round.into()),
                ];
                ctx.record(engine.name(), &params, &config, None, run);
                pb.inc(1);
            }
        }
        pb.finish_and_clear();
        for (_, db, _) in &open {
            ctx.verify(&**db)?;
        }
        drop(open);
        for (_, dir) in &dirs {
            ctx.discard(dir);
        }
    }
    Ok(report(
        &layouts, &points, &speeds, rows, scans, rounds, &config,
    ))
}

fn find<'a>(
    points: &'a [Point],
    engine: EngineKind,
    load: &str,
    query: Query,
) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| p.engine == engine && p.load == load && p.query == query)
}

fn speed_of<'a>(speeds: &'a [Speed], engine: EngineKind, load: &str) -> Option<&'a Speed> {
    speeds.iter().find(|s| s.engine == engine && s.load == load)
}

fn layout_of<'a>(layouts: &'a [Layout], engine: EngineKind, load: &str) -> Option<&'a Layout> {
    layouts
        .iter()
        .find(|l| l.engine == engine && l.load == load)
}

fn kib(bytes: u64) -> String {
    num(bytes as f64 / 1024.0)
}

/// `a` against `b`: "more than", "about as much as" (within [`SAME_FRACTION`]) or "less
/// than".
fn compare(a: f64, b: f64) -> &'static str {
    if a > b * (1.0 + SAME_FRACTION) {
        "more than"
    } else if a < b * (1.0 - SAME_FRACTION) {
        "less than"
    } else {
        "about as much as"
    }
}

fn report(
    layouts: &[Layout],
    points: &[Point],
    speeds: &[Speed],
    rows: u64,
    scans: u64,
    rounds: u64,
    config: &StorageConfig,
) -> Report {
    let mut sizes = TextTable::new(&[
        "engine",
        "load",
        "scanned structure (KiB)",
        "whole table (KiB)",
        "bytes per row scanned",
        "fill",
        "load time (s)",
    ]);
    for l in layouts {
        sizes.row(vec![
            l.engine.name().into(),
            l.load.into(),
            kib(l.scanned_bytes),
            kib(l.total_bytes),
            num(l.scanned_bytes as f64 / rows as f64),
            match (l.engine, l.fill) {
                (EngineKind::Heap, Some(f)) => format!("{} rows/page", num(f)),
                (EngineKind::Clustered, Some(f)) => format!("leaves {}% full", num(f)),
                _ => "-".into(),
            },
            num(l.phase.elapsed_s),
        ]);
    }
    let mut scans_table = TextTable::new(&[
        "engine",
        "load",
        "query",
        "pages read/scan",
        "read requests/scan",
        "prefetched",
        "MiB read/scan",
        "MiB/s",
        "p50 (ms)",
    ]);
    for p in points {
        scans_table.row(vec![
            p.engine.name().into(),
            p.load.into(),
            p.query.name().into(),
            num(p.pages()),
            num(metrics::reads(&p.run)),
            format!("{:.0}%", p.prefetch_share() * 100.0),
            num(p.bytes() / (1 << 20) as f64),
            num(p.mib_per_s()),
            num(metrics::p50_us(&p.run) / 1000.0),
        ]);
    }
    let mut speed_table = TextTable::new(&[
        "engine",
        "load",
        "timed scans",
        "fastest scan (ms)",
        "mean scan (ms)",
        "rows/s (fastest scan)",
        "CPU busy",
        "CPU us/row",
    ]);
    for s in speeds {
        speed_table.row(vec![
            s.engine.name().into(),
            s.load.into(),
            s.scans.to_string(),
            num(s.fastest_s * 1000.0),
            num(s.wall_s * 1000.0 / s.scans.max(1) as f64),
            num(s.rows_per_s()),
            s.cpu_share()
                .map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
            s.cpu_us_per_row().map_or("-".into(), num),
        ]);
    }
    let categories: Vec<String> = ENGINES.iter().map(|e| e.name().to_string()).collect();
    let pages_plot = Plot {
        file: "pages_read.svg".into(),
        title: "Pages read per full scan (scan-agg)".into(),
        x_label: "engine".into(),
        y_label: "8 KiB pages read per scan".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories: categories.clone(),
            series: LOADS
                .iter()
                .map(|&load| {
                    (
                        load.to_string(),
                        ENGINES
                            .iter()
                            .map(|&e| {
                                find(points, e, load, Query::ScanAggregate)
                                    .map_or(0.0, Point::pages)
                            })
                            .collect(),
                    )
                })
                .collect(),
        },
    };
    let speed_plot = Plot {
        file: "rows_per_s.svg".into(),
        title: "Rows scanned per second (fastest interleaved scan)".into(),
        x_label: "engine".into(),
        y_label: "rows per second".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories,
            series: LOADS
                .iter()
                .map(|&load| {
                    (
                        load.to_string(),
                        ENGINES
                            .iter()
                            .map(|&e| speed_of(speeds, e, load).map_or(0.0, Speed::rows_per_s))
                            .collect(),
                    )
                })
                .collect(),
        },
    };

    let mut findings = Vec::new();
    let mut pages_ok = Vec::new();
    let mut speed_ok = Vec::new();
    let mut summary = Vec::new();
    for load in LOADS {
        let (Some(hl), Some(cl), Some(h), Some(c), Some(hs), Some(cs)) = (
            layout_of(layouts, EngineKind::Heap, load),
            layout_of(layouts, EngineKind::Clustered, load),
            find(points, EngineKind::Heap, load, Query::ScanAggregate),
            find(points, EngineKind::Clustered, load, Query::ScanAggregate),
            speed_of(speeds, EngineKind::Heap, load),
            speed_of(speeds, EngineKind::Clustered, load),
        ) else {
            continue;
        };
        pages_ok.push(h.bytes() <= c.bytes() * (1.0 + SAME_FRACTION));
        speed_ok.push(hs.rows_per_s() >= cs.rows_per_s() * (1.0 - SAME_FRACTION));
        summary.push(format!(
            "{load}: heap {} pages per scan and {} rows/s, clustered {} pages and {} rows/s",
            num(h.pages()),
            num(hs.rows_per_s()),
            num(c.pages()),
            num(cs.rows_per_s()),
        ));
        findings.push(format!(
            "After the {load} load the heap file is {} KiB ({} rows per page) and the \
             clustered primary tree {} KiB (leaves {}% full): {} the heap. A scan-agg read \
             {} pages from the heap in {} requests ({:.0}% of them issued ahead by the read \
             stream, {} pages per request) against {} pages in {} requests from the \
             clustered tree ({:.0}% issued ahead, {} pages per request).",
            kib(hl.scanned_bytes),
            num(hl.fill.unwrap_or(f64::NAN)),
            kib(cl.scanned_bytes),
            num(cl.fill.unwrap_or(f64::NAN)),
            ratio(cl.scanned_bytes as f64, hl.scanned_bytes as f64),
            num(h.pages()),
            num(metrics::reads(&h.run)),
            h.prefetch_share() * 100.0,
            num(h.pages() / metrics::reads(&h.run).max(1e-9)),
            num(c.pages()),
            num(metrics::reads(&c.run)),
            c.prefetch_share() * 100.0,
            num(c.pages() / metrics::reads(&c.run).max(1e-9)),
        ));
        findings.push(format!(
            "Speed after the {load} load (the fastest of {} interleaved scans each): the heap \
             scanned {} rows/s ({}), the clustered engine {} rows/s ({}): the heap was {} as \
             fast, reading {} pages per scan against {}.",
            hs.scans,
            num(hs.rows_per_s()),
            hs.busy(),
            num(cs.rows_per_s()),
            cs.busy(),
            ratio(hs.rows_per_s(), cs.rows_per_s()),
            num(h.pages()),
            num(c.pages()),
        ));
    }
    if let (Some(cb), Some(cr), Some(hb), Some(hr)) = (
        layout_of(layouts, EngineKind::Clustered, "bulk"),
        layout_of(layouts, EngineKind::Clustered, "random inserts"),
        layout_of(layouts, EngineKind::Heap, "bulk"),
        layout_of(layouts, EngineKind::Heap, "random inserts"),
    ) {
        let grow = |r: &Layout, b: &Layout| r.scanned_bytes as f64 / b.scanned_bytes.max(1) as f64;
        findings.push(format!(
            "The load method changed the clustered tree ({} KiB after random inserts against \
             {} KiB bulk-loaded: {}) {} the heap ({} KiB against {} KiB: {}). Page splits \
             leave B+tree leaves partly empty, while the heap puts each row on a page with \
             room whatever its key (see experiment 5, insert-order).",
            kib(cr.scanned_bytes),
            kib(cb.scanned_bytes),
            ratio(cr.scanned_bytes as f64, cb.scanned_bytes as f64),
            compare(grow(cr, cb), grow(hr, hb)),
            kib(hr.scanned_bytes),
            kib(hb.scanned_bytes),
            ratio(hr.scanned_bytes as f64, hb.scanned_bytes as f64),
        ));
    }
    for load in LOADS {
        let (Some(l), Some(p), Some(ls), Some(hs)) = (
            layout_of(layouts, EngineKind::Lsm, load),
            find(points, EngineKind::Lsm, load, Query::ScanAggregate),
            speed_of(speeds, EngineKind::Lsm, load),
            speed_of(speeds, EngineKind::Heap, load),
        ) else {
            continue;
        };
        let requests = metrics::reads(&p.run);
        findings.push(format!(
            "The LSM after the {load} load: {} KiB of tables (compacted sorted runs holding \
             the rows and the index entries), {} KiB read per scan in {} requests ({} KiB \
             each on average, {:.0}% issued ahead of the consumer), {} rows/s: {} the heap's \
             speed, {}. Its scan merges the levels' iterators{}; its block reads are aligned \
             to 4 KiB, so a 4 KiB block that straddles a boundary costs two units.",
            kib(l.scanned_bytes),
            num(p.bytes() / 1024.0),
            num(requests),
            num(p.bytes() / 1024.0 / requests.max(1e-9)),
            p.prefetch_share() * 100.0,
            num(ls.rows_per_s()),
            ratio(ls.rows_per_s(), hs.rows_per_s()),
            ls.busy(),
            if p.prefetch_share() < SAME_FRACTION {
                ", reading one block at a time with nothing issued ahead"
            } else {
                ""
            },
        ));
    }
    let same_pages = points.iter().all(|p| {
        let other = if p.query == Query::GroupBy {
            Query::ScanAggregate
        } else {
            Query::GroupBy
        };
        find(points, p.engine, p.load, other)
            .is_none_or(|o| (p.bytes() - o.bytes()).abs() <= SAME_FRACTION * o.bytes())
    });
    findings.push(format!(
        "The two queries read {} pages per scan in every engine and load, so the timed rounds \
         alternate between them and the speed above pools both.",
        if same_pages {
            "the same number of"
        } else {
            "different numbers of"
        },
    ));

    let all = |v: &[bool]| !v.is_empty() && v.iter().all(|&b| b);
    let numbers = summary.join("; ");
    // CPU-bound: the process was on a CPU for at least half of the heap's timed scans.
    let heap_cpu_bound = speeds
        .iter()
        .filter(|s| s.engine == EngineKind::Heap)
        .all(|s| s.cpu_share().is_some_and(|c| c >= 0.5));
    let tolerance = format!("{:.0}%", SAME_FRACTION * 100.0);
    let verdict = match (all(&pages_ok), all(&speed_ok)) {
        (true, true) => Verdict::Agrees(format!(
            "The heap's full scans read no more pages than the clustered engine's and ran at \
             least as fast after both loads ({numbers}; within {tolerance} counts as equal)."
        )),
        (true, false) => Verdict::Mixed(format!(
            "The heap read no more pages than the clustered engine after both loads, but it \
             was not at least as fast after every load ({numbers}; within {tolerance} counts \
             as equal).{}",
            if heap_cpu_bound {
                format!(
                    " The heap's scans kept a CPU busy most of the time ({}): per-row work, \
                     not the pages read, decided their speed.",
                    speeds
                        .iter()
                        .filter(|s| s.engine != EngineKind::Lsm)
                        .map(|s| format!(
                            "{} after the {} load {} us of CPU per row",
                            s.engine,
                            s.load,
                            num(s.cpu_us_per_row().unwrap_or(f64::NAN))
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            }
        )),
        (false, true) => Verdict::Mixed(format!(
            "The heap scanned at least as fast, but it read more pages than the clustered \
             engine after some load ({numbers}; within {tolerance} counts as equal)."
        )),
        (false, false) => Verdict::Contradicts(format!(
            "The heap neither read fewer pages nor scanned faster than the clustered engine \
             ({numbers}; within {tolerance} counts as equal); the tables show where the \
             pages and the time went."
        )),
    };

    Report {
        setup: vec![
            format!(
                "The orders table (6 columns, ~120 bytes a row, indexes by_date and by_cust), \
                 {rows} rows per database, loaded either in bulk (Table::load, rows in key \
                 order) or by ordinary inserts in random primary-key order in batches of \
                 {BATCH_ROWS} rows (one synced commit each), with a pool holding the whole \
                 table; then checkpointed (the LSM also compacted)."
            ),
            format!(
                "Scans run on the database reopened with a {} KiB buffer pool (the LSM's \
                 block cache gets the same budget; the smallest scanned structure above is \
                 {} the pool) and page files opened with O_DIRECT, so that pages missing \
                 from the pool are read from the device (the OS page cache would otherwise \
                 hold the table).",
                config.pool_bytes / 1024,
                ratio(
                    layouts.iter().map(|l| l.scanned_bytes).min().unwrap_or(0) as f64,
                    config.pool_bytes as f64
                ),
            ),
            format!(
                "Queries as `storelab run` issues them: scan-agg (TPC-H Q6-like: a sum over a \
                 quarter of the days with an amount filter) and group-by (TPC-H Q1-like: \
                 count and sum per status); both visit every row. I/O: {scans} scans per \
                 engine, load and query on the freshly reopened database, measured with the \
                 ledger. Speed: \
                 {rounds} rounds per load, each one scan per engine in turn (the queries \
                 alternating), so that a busy moment of this shared machine slows every \
                 engine alike; the fastest scan counts, since other work only ever adds \
                 time."
            ),
            "Pages read per scan are the ledger's bytes read over the 8 KiB page size (the \
             LSM's blocks counted the same way); a request may combine adjacent pages."
                .into(),
        ],
        expected: format!(
            "A heap packs rows into pages as they arrive, and a full scan reads its file \
             sequentially with read-ahead and large combined reads. A clustered B+tree scans \
             its leaves in key order; they are fuller after a bulk load than after random \
             inserts (page splits leave leaves about two-thirds full). The textbook expects \
             heap full scans to read no more pages than the clustered engine's and to be at \
             least as fast, after either load (here figures within {:.0}% count as equal).",
            SAME_FRACTION * 100.0
        ),
        sections: vec![
            Section {
                heading: "Layout after the load".into(),
                text: "Size of the structure a full scan reads (heap file, clustered primary \
                       tree, LSM tables) and of the whole table with its indexes; fill of \
                       its pages; time of the load."
                    .into(),
                table: Some(sizes),
                plot: Some(pages_plot),
            },
            Section {
                heading: "I/O per scan".into(),
                text:
                    "Per scan, on the freshly reopened database: pages read (bytes / 8 KiB), read \
                       requests and the share issued ahead by the read stream (cause \
                       prefetch), MiB read, read bandwidth, median latency."
                        .into(),
                table: Some(scans_table),
                plot: None,
            },
            Section {
                heading: "Speed".into(),
                text: format!(
                    "Scans interleaved across the engines: the fastest and the mean scan, \
                     rows per second of the fastest, CPU busy: the process's CPU time (all \
                     threads, from /proc/self/stat) over the scans' wall time, and that CPU \
                     time per row scanned (- when \
                     they took under {CPU_ELAPSED_MIN_S} s in all, too short for the clock's \
                     10 ms ticks)."
                ),
                table: Some(speed_table),
                plot: Some(speed_plot),
            },
        ],
        findings,
        verdict,
    }
}
