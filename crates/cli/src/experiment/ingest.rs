//! Experiment 8: write-heavy ingest, B+tree versus LSM write amplification, and what the LSM
//! pays on reads (tables probed, bloom filters) in return.
//!
//! Rows of a small usertable (YCSB's hashed key `"user" + fnv1a64(n)`, so keys arrive in
//! random order, and one 100-byte field) are ingested by ordinary inserts in synced batches
//! into the clustered B+tree, the LSM layout of the same engine, and the heap (for
//! reference), all with the same memory budget, smaller than the data. The load grows the
//! table through three sizes (a ninth, a third and all of the rows); at each size a
//! checkpoint makes everything durable in the data files (the LSM flushes its memtable and
//! finishes the compactions that are due), and then point reads are measured: gets of keys
//! that exist and of keys that do not.
//!
//! Write amplification is the I/O ledger's bytes written to storage (every file: the log,
//! full-page images, data pages evicted or checkpointed, LSM flushes and compactions, the
//! manifest) over the user bytes inserted, cumulative from the empty table to each size,
//! and broken down by cause. Read amplification is the ledger's reads per get, the pages or
//! blocks touched per get (buffer pool or block cache accesses), and for the LSM the tables
//! whose key range covered the key (what a get would probe without filters), the data
//! blocks it actually probed, and the bloom filters' negatives and false positives (the
//! tree's counters in `Table::stats`).
//!
//! The B+tree updates a leaf in place: each small insert dirties a whole page, and once the
//! tree is bigger than the pool, a page is written back for about every insert. The LSM
//! appends to its log and memtable and writes sorted tables sequentially: each byte is
//! rewritten once per level by compaction, about `levels x (fanout + 1) / 2` in theory. In
//! return a get may have to look in every level; bloom filters let it skip the tables that
//! do not hold the key, so a point read costs about one block.

use anyhow::{Context, Result, bail};
use rand::SeedableRng;
use rand::rngs::StdRng;
use storelab_clustered::{LsmConfig, LsmOptions};
use storelab_pager::IoCause;
use storelab_table::{Engine, StorageConfig, Table};
use storelab_workload::results::IoSummary;
use storelab_workload::{OpOutcome, PhaseResult, UserTable};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, Series, TextTable, Verdict, metrics};
use crate::engines::EngineKind;

/// The data set: YCSB's usertable with one field of 100 bytes (a small row, as an ingest
/// benchmark's).
const DATA: UserTable = UserTable {
    field_count: 1,
    field_bytes: 100,
};

/// Rows at the largest size, at scale 1.
const ROWS_BASE: u64 = 600_000;

/// The sizes measured, as fractions of the largest (a ninth, a third, all).
const SIZE_DIVISORS: [u64; 3] = [9, 3, 1];

/// Rows per insert batch (one atomic, synced commit), as in the clustered crate's
/// `lsm_vs_btree` example. A batch's pages stay in the pool until it commits.
const BATCH_ROWS: u64 = 100;

/// Record numbers of absent keys start here (keys are hashes of record numbers: far above
/// every loaded number, a collision with a loaded key has probability ~1e-13 per get).
const MISSING_BASE: u64 = 1 << 40;

/// The write causes shown, in order.
const WRITE_CAUSES: [IoCause; 8] = [
    IoCause::Wal,
    IoCause::FullPageImage,
    IoCause::Doublewrite,
    IoCause::EvictionWriteBack,
    IoCause::Checkpoint,
    IoCause::Flush,
    IoCause::Compaction,
    IoCause::Vacuum,
];

/// The engines, B+tree first.
const ENGINES: [EngineKind; 3] = [EngineKind::Clustered, EngineKind::Lsm, EngineKind::Heap];

/// Share of the candidate tables the bloom filters must let a missing-key get skip for
/// "filters mostly cancel the LSM's read amplification" to hold: more than half.
const BLOOM_SKIP_MIN: f64 = 0.5;

/// One size of one engine: the segment of the load that reached it.
struct Segment {
    engine: EngineKind,
    rows_before: u64,
    rows: u64,
    /// Inserts and checkpoint of this segment: the ledger's delta over both.
    total: PhaseResult,
}

/// Cumulative figures of an engine from the empty table to a size.
#[derive(Default)]
struct Cumulative {
    rows: u64,
    user_bytes: u64,
    write_bytes: u64,
    by_cause: Vec<(IoCause, u64)>,
    /// Bytes written by kind of file: the log, the heap file, the primary index, the LSM's
    /// files (tables and manifest).
    by_file: [u64; 4],
    elapsed_s: f64,
}

/// Kinds of files, in `Cumulative::by_file` order.
const FILE_KINDS: [&str; 4] = ["log", "heap file", "primary index", "lsm files"];

/// The kind of a ledger file name (`wal`, `t1.heap`, `t1.primary.idx`, `lsm:L1:7`...), as
/// an index into [`FILE_KINDS`].
fn file_kind(name: &str) -> Option<usize> {
    if name.contains("wal") {
        Some(0)
    } else if name.ends_with(".heap") {
        Some(1)
    } else if name.ends_with(".primary.idx") {
        Some(2)
    } else if name.starts_with("lsm") {
        Some(3)
    } else {
        None
    }
}

impl Cumulative {
    fn wa(&self) -> f64 {
        self.write_bytes as f64 / self.user_bytes.max(1) as f64
    }

    fn cause_wa(&self, cause: IoCause) -> f64 {
        self.by_cause
            .iter()
            .find(|(c, _)| *c == cause)
            .map_or(0, |(_, b)| *b) as f64
            / self.user_bytes.max(1) as f64
    }

    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.elapsed_s.max(1e-9)
    }

    /// Write amplification by kind of file, for the kinds written: `log 1.2, heap file 3.4`.
    fn files(&self) -> String {
        FILE_KINDS
            .iter()
            .zip(self.by_file)
            .filter(|(_, b)| *b > 0)
            .map(|(k, b)| format!("{k} {:.2}", b as f64 / self.user_bytes.max(1) as f64))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Point reads at one size of one engine.
struct Gets {
    engine: EngineKind,
    rows: u64,
    /// `existing` or `missing`.
    keys: &'static str,
    phase: PhaseResult,
    /// The LSM's counters over the phase (after minus before); empty for the B+trees.
    lsm: LsmDelta,
}

/// Deltas of the LSM's get counters over a phase.
#[derive(Clone, Copy, Default)]
struct LsmDelta {
    gets: u64,
    candidates: u64,
    tables_read: u64,
    bloom_checks: u64,
    bloom_negatives: u64,
    bloom_false_positives: u64,
}

impl LsmDelta {
    fn of(before: &std::collections::BTreeMap<String, u64>, after: &PhaseResult) -> LsmDelta {
        let d = |k: &str| {
            after
                .counters
                .get(k)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.get(k).copied().unwrap_or(0))
        };
        LsmDelta {
            gets: d("lsm_gets"),
            candidates: d("lsm_get_table_candidates"),
            tables_read: d("lsm_get_tables_read"),
            bloom_checks: d("lsm_bloom_checks"),
            bloom_negatives: d("lsm_bloom_negatives"),
            bloom_false_positives: d("lsm_bloom_false_positives"),
        }
    }

    fn per_get(&self, v: u64) -> f64 {
        v as f64 / self.gets.max(1) as f64
    }

    /// False positives over (false positives + negatives): filters that let an absent key
    /// through.
    fn false_positive_rate(&self) -> f64 {
        self.bloom_false_positives as f64
            / (self.bloom_false_positives + self.bloom_negatives).max(1) as f64
    }
}

/// The LSM's shape at a size, from its counters.
struct LsmShape {
    rows: u64,
    /// (level, tables, bytes) of every non-empty level.
    levels: Vec<(usize, u64, u64)>,
    flushes: u64,
    compactions: u64,
    /// The tree's own write amplification without the log (tables written / user bytes).
    tree_wa_tables: f64,
}

/// The LSM's settings at this run's size: RocksDB-like defaults at scale 1 (4 MiB memtable,
/// 10 MiB L1, size ratio 10, 2 MiB tables, 10 bloom bits per key); below scale 1 the
/// memtable, L1 and table sizes shrink with the data, so the tree has the same shape
/// (the same number of levels) at a smoke-test scale.
fn lsm_config(fraction: f64) -> LsmConfig {
    let d = LsmConfig::default();
    let f = fraction.min(1.0);
    let shrink = |v: u64, min: u64| ((v as f64 * f) as u64).max(min);
    LsmConfig {
        memtable_bytes_max: shrink(d.memtable_bytes_max as u64, 64 << 10) as usize,
        level1_bytes_target: shrink(d.level1_bytes_target, 160 << 10),
        table_bytes_target: shrink(d.table_bytes_target, 32 << 10),
        ..d
    }
}

fn open(
    engine: EngineKind,
    dir: &std::path::Path,
    config: &StorageConfig,
    lsm: &LsmConfig,
) -> Result<Box<dyn Engine>> {
    Ok(match engine {
        EngineKind::Lsm => Box::new(storelab_clustered::ClusteredLsmEngine::open(
            dir,
            config,
            LsmOptions { lsm: lsm.clone() },
        )?),
        EngineKind::Heap | EngineKind::Clustered => {
            crate::engines::open_engine(engine, dir, config)?
        }
        other => bail!("ingest does not run engine {other}"),
    })
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows_max = ctx.scaled(ROWS_BASE, 12_000);
    let sizes: Vec<u64> = SIZE_DIVISORS.iter().map(|d| rows_max / d).collect();
    let gets = ctx.scaled(20_000, 500);
    let user_bytes_per_row = super::row_bytes(&DATA.row(0, ctx.seed));
    let mut config = ctx.storage();
    // One memory budget for every engine and size: a quarter of the user data at the
    // largest size (about the data at the smallest), never below 2 MiB so that a batch's
    // pages fit. The B+trees outgrow it as the table grows.
    config.pool_bytes = ((rows_max * user_bytes_per_row / 4) as usize).max(2 << 20);
    let lsm = lsm_config(rows_max as f64 / ROWS_BASE as f64);
    let mut segments = Vec::new();
    let mut reads = Vec::new();
    let mut shapes = Vec::new();
    let mut fills: Vec<(u64, f64)> = Vec::new();
    for engine in ENGINES {
        let dir = ctx.fresh_dir(engine.name())?;
        let db = open(engine, &dir, &config, &lsm)?;
        let table = db.create_table(DATA.schema())?;
        let mut loaded = 0u64;
        for &size in &sizes {
            let total = ingest(ctx, engine, &*db, &*table, loaded, size)?;
            let params = [
                ("phase", "ingest".into()),
                ("rows_before", loaded.into()),
                ("rows", size.into()),
                ("batch_rows", BATCH_ROWS.into()),
            ];
            ctx.record(engine.name(), &params, &config, None, total.clone());
            if engine == EngineKind::Lsm {
                shapes.push(lsm_shape(size, &total, lsm.level_count));
            }
            if engine == EngineKind::Clustered
                && let Some(&f) = total.counters.get("primary_leaf_fill_permille")
            {
                fills.push((size, f as f64 / 1000.0));
            }
            segments.push(Segment {
                engine,
                rows_before: loaded,
                rows: size,
                total,
            });
            loaded = size;
            for keys in ["existing", "missing"] {
                let g = point_reads(ctx, engine, &*db, &*table, size, gets, keys)?;
                let params = [
                    ("phase", "get".into()),
                    ("keys", keys.into()),
                    ("rows", size.into()),
                    ("gets", gets.into()),
                ];
                ctx.record(engine.name(), &params, &config, None, g.phase.clone());
                reads.push(g);
            }
            ctx.verify(&*db)?;
        }
        drop(table);
        drop(db);
        ctx.discard(&dir);
    }
    Ok(report(&Results {
        segments,
        reads,
        shapes,
        fills,
        sizes,
        gets,
        user_bytes_per_row,
        config,
        lsm,
    }))
}

/// Inserts rows `from..to` (random keys) and checkpoints; the ledger's delta over both.
fn ingest(
    ctx: &Ctx,
    engine: EngineKind,
    db: &dyn Engine,
    table: &dyn Table,
    from: u64,
    to: u64,
) -> Result<PhaseResult> {
    let before = db.stats()?.ledger.context("the engine keeps no ledger")?;
    let seed = ctx.seed;
    let mut rows = (from..to).map(|n| DATA.row(n, seed));
    let load = super::insert_rows(
        ctx,
        db,
        table,
        &format!("{engine} ingest to {to}"),
        &mut rows,
        to - from,
        BATCH_ROWS,
    )?;
    // Durable in the data files: the B+trees write their dirty pages; the LSM flushes its
    // memtable and runs the compactions that are due (work the ingest owes either way).
    let started = std::time::Instant::now();
    db.checkpoint()?;
    if engine == EngineKind::Lsm {
        table.maintain()?;
        db.checkpoint()?;
    }
    let checkpoint_s = started.elapsed().as_secs_f64();
    let after = db.stats()?.ledger.context("the engine keeps no ledger")?;
    let delta = after.delta(&before);
    let io = IoSummary::from_ledger(&delta);
    let stats = table.stats()?;
    let mut total = load;
    total.phase = "ingest+checkpoint".into();
    total.elapsed_s += checkpoint_s;
    total.throughput_ops_per_s = total.ops as f64 / total.elapsed_s.max(1e-9);
    total.wal_bytes = delta.cause_total(IoCause::Wal).write_bytes
        + delta.cause_total(IoCause::FullPageImage).write_bytes;
    total.write_amplification = (total.user_bytes_written > 0)
        .then(|| io.total.write_bytes as f64 / total.user_bytes_written as f64);
    total.reads_per_op = io.total.read_count as f64 / total.ops.max(1) as f64;
    total.size_on_disk_bytes = stats.size_bytes();
    total.row_count = stats.row_count;
    total.counters = stats.counters;
    total.io = io;
    Ok(total)
}

/// Measures `gets` point reads of keys that exist (uniform over the rows loaded) or that do
/// not, after a warm-up of a quarter as many gets of existing keys.
fn point_reads(
    ctx: &Ctx,
    engine: EngineKind,
    db: &dyn Engine,
    table: &dyn Table,
    rows: u64,
    gets: u64,
    keys: &'static str,
) -> Result<Gets> {
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ rows ^ 0x6E75);
    if keys == "existing" {
        for _ in 0..gets / 4 {
            let n = rand::Rng::random_range(&mut rng, 0..rows);
            table.get(&[UserTable::key(n)])?;
        }
    }
    // The LSM's counters before the phase (cheap for it; the B+trees need none, and their
    // table statistics walk the whole tree).
    let before = match engine {
        EngineKind::Lsm => table.stats()?.counters,
        _ => Default::default(),
    };
    let pb = ctx.bar(gets, &format!("{engine} {rows} gets {keys}"));
    let mut wrong = 0u64;
    let phase = storelab_workload::measure(db, table, &format!("get-{keys}"), "get", gets, |i| {
        let n = match keys {
            "existing" => rand::Rng::random_range(&mut rng, 0..rows),
            _ => MISSING_BASE + rows * gets + i,
        };
        let found = table.get(&[UserTable::key(n)])?;
        if found.is_some() != (keys == "existing") {
            wrong += 1;
        }
        pb.set_position(i + 1);
        Ok(OpOutcome {
            rows: u64::from(found.is_some()),
            bytes_written: 0,
        })
    })?;
    pb.finish_and_clear();
    if wrong > 0 {
        bail!("{engine}: {wrong} of {gets} gets of {keys} keys answered wrongly at {rows} rows");
    }
    let lsm = match engine {
        EngineKind::Lsm => LsmDelta::of(&before, &phase),
        _ => LsmDelta::default(),
    };
    Ok(Gets {
        engine,
        rows,
        keys,
        phase,
        lsm,
    })
}

fn lsm_shape(rows: u64, total: &PhaseResult, level_count: usize) -> LsmShape {
    let c = |k: &str| total.counters.get(k).copied().unwrap_or(0);
    let levels = (0..level_count)
        .map(|n| {
            (
                n,
                c(&format!("lsm_l{n}_tables")),
                c(&format!("lsm_l{n}_bytes")),
            )
        })
        .filter(|(_, tables, _)| *tables > 0)
        .collect();
    LsmShape {
        rows,
        levels,
        flushes: c("lsm_flushes"),
        compactions: c("lsm_compactions"),
        tree_wa_tables: c("lsm_write_amplification_tables_permille") as f64 / 1000.0,
    }
}

/// Everything measured.
struct Results {
    segments: Vec<Segment>,
    reads: Vec<Gets>,
    shapes: Vec<LsmShape>,
    /// The clustered tree's leaf fill at each size.
    fills: Vec<(u64, f64)>,
    sizes: Vec<u64>,
    gets: u64,
    user_bytes_per_row: u64,
    config: StorageConfig,
    lsm: LsmConfig,
}

impl Results {
    /// An engine's figures from the empty table to `rows`.
    fn cumulative(&self, engine: EngineKind, rows: u64) -> Cumulative {
        let mut c = Cumulative {
            by_cause: WRITE_CAUSES.iter().map(|&k| (k, 0)).collect(),
            ..Cumulative::default()
        };
        for s in self
            .segments
            .iter()
            .filter(|s| s.engine == engine && s.rows <= rows)
        {
            c.rows = c.rows.max(s.rows);
            c.user_bytes += s.total.user_bytes_written;
            c.write_bytes += s.total.io.total.write_bytes;
            c.elapsed_s += s.total.elapsed_s;
            for (cause, bytes) in &mut c.by_cause {
                *bytes += s
                    .total
                    .io
                    .by_cause
                    .get(cause.name())
                    .map_or(0, |io| io.write_bytes);
            }
            for (name, io) in &s.total.io.by_file {
                if let Some(k) = file_kind(name) {
                    c.by_file[k] += io.write_bytes;
                }
            }
        }
        c
    }

    fn segment(&self, engine: EngineKind, rows: u64) -> Option<&Segment> {
        self.segments
            .iter()
            .find(|s| s.engine == engine && s.rows == rows)
    }

    fn gets(&self, engine: EngineKind, rows: u64, keys: &str) -> Option<&Gets> {
        self.reads
            .iter()
            .find(|g| g.engine == engine && g.rows == rows && g.keys == keys)
    }

    fn largest(&self) -> u64 {
        self.sizes.last().copied().unwrap_or(0)
    }
}

fn mib(bytes: u64) -> String {
    num(bytes as f64 / (1u64 << 20) as f64)
}

/// The bloom filter's false-positive rate in theory: `(1 - e^(-k/b))^k` with `k = round(b
/// ln 2)` probes (the filter's own rule).
fn bloom_fp_theory(bits_per_key: u32) -> f64 {
    if bits_per_key == 0 {
        return 1.0;
    }
    let b = f64::from(bits_per_key);
    let k = (b * std::f64::consts::LN_2).round().max(1.0);
    (1.0 - (-k / b).exp()).powf(k)
}

fn report(r: &Results) -> Report {
    let causes: Vec<IoCause> = WRITE_CAUSES
        .iter()
        .copied()
        .filter(|&c| {
            r.segments.iter().any(|s| {
                s.total
                    .io
                    .by_cause
                    .get(c.name())
                    .is_some_and(|io| io.write_bytes > 0)
            })
        })
        .collect();
    let mut headers: Vec<String> = vec![
        "engine".into(),
        "rows".into(),
        "write amp. (cumulative)".into(),
        "write amp. (this segment)".into(),
    ];
    headers.extend(causes.iter().map(|c| format!("{} (WA)", c.name())));
    headers.extend(
        [
            "rows/s (segment)",
            "size (MiB)",
            "space amp.",
            "reads/row (segment)",
        ]
        .map(String::from),
    );
    let mut wa_table = TextTable {
        headers,
        rows: Vec::new(),
    };
    for s in &r.segments {
        let c = r.cumulative(s.engine, s.rows);
        let mut cells = vec![
            s.engine.name().to_string(),
            s.rows.to_string(),
            format!("{:.1}", c.wa()),
            format!("{:.1}", s.total.write_amplification.unwrap_or(f64::NAN)),
        ];
        cells.extend(causes.iter().map(|&k| format!("{:.2}", c.cause_wa(k))));
        let seg_rows = s.rows - s.rows_before;
        cells.extend([
            num(seg_rows as f64 / s.total.elapsed_s.max(1e-9)),
            mib(s.total.size_on_disk_bytes),
            format!(
                "{:.2}",
                s.total.size_on_disk_bytes as f64 / (s.rows * r.user_bytes_per_row) as f64
            ),
            num(s.total.io.total.read_count as f64 / seg_rows.max(1) as f64),
        ]);
        wa_table.row(cells);
    }
    let wa_plot = Plot {
        file: "write_amplification.svg".into(),
        title:
            "Write amplification of random-key ingest (cumulative, log and checkpoints included)"
                .into(),
        x_label: "rows ingested".into(),
        y_label: "bytes written / user bytes".into(),
        log_y: true,
        kind: PlotKind::Lines {
            series: ENGINES
                .iter()
                .map(|&e| Series {
                    name: e.name().into(),
                    points: r
                        .sizes
                        .iter()
                        .map(|&n| (n as f64, r.cumulative(e, n).wa().max(0.01)))
                        .collect(),
                })
                .collect(),
            log_x: true,
        },
    };

    let mut shape_table = TextTable::new(&[
        "rows",
        "levels (tables, MiB)",
        "flushes",
        "compactions",
        "tree's WA without the log",
    ]);
    for s in &r.shapes {
        shape_table.row(vec![
            s.rows.to_string(),
            s.levels
                .iter()
                .map(|(n, t, b)| format!("L{n}: {t}, {}", mib(*b)))
                .collect::<Vec<_>>()
                .join("; "),
            s.flushes.to_string(),
            s.compactions.to_string(),
            format!("{:.2}", s.tree_wa_tables),
        ]);
    }

    let mut read_table = TextTable::new(&[
        "engine",
        "rows",
        "keys",
        "storage reads/get",
        "pages or blocks touched/get",
        "tables covering the key/get",
        "blocks probed/get",
        "bloom negatives/get",
        "false-positive rate",
        "p50 (us)",
        "gets/s",
    ]);
    for g in &r.reads {
        let lsm = g.engine == EngineKind::Lsm;
        let lsm_cell = |v: String| if lsm { v } else { "-".to_string() };
        read_table.row(vec![
            g.engine.name().into(),
            g.rows.to_string(),
            g.keys.into(),
            format!("{:.2}", metrics::reads(&g.phase)),
            format!("{:.2}", metrics::pages_touched(&g.phase)),
            lsm_cell(format!("{:.2}", g.lsm.per_get(g.lsm.candidates))),
            lsm_cell(format!("{:.3}", g.lsm.per_get(g.lsm.tables_read))),
            lsm_cell(format!("{:.2}", g.lsm.per_get(g.lsm.bloom_negatives))),
            lsm_cell(format!("{:.2}%", g.lsm.false_positive_rate() * 100.0)),
            num(metrics::p50_us(&g.phase)),
            num(g.phase.throughput_ops_per_s),
        ]);
    }
    let mut read_series: Vec<Series> = Vec::new();
    for e in ENGINES {
        for keys in ["existing", "missing"] {
            read_series.push(Series {
                name: format!("{e} {keys}: reads"),
                points: r
                    .sizes
                    .iter()
                    .filter_map(|&n| r.gets(e, n, keys))
                    .map(|g| (g.rows as f64, metrics::reads(&g.phase).max(0.001)))
                    .collect(),
            });
        }
    }
    read_series.push(Series {
        name: "lsm missing: tables".into(),
        points: r
            .sizes
            .iter()
            .filter_map(|&n| r.gets(EngineKind::Lsm, n, "missing"))
            .map(|g| (g.rows as f64, g.lsm.per_get(g.lsm.candidates).max(0.001)))
            .collect(),
    });
    read_series.push(Series {
        name: "lsm missing: probes".into(),
        points: r
            .sizes
            .iter()
            .filter_map(|&n| r.gets(EngineKind::Lsm, n, "missing"))
            .map(|g| (g.rows as f64, g.lsm.per_get(g.lsm.tables_read).max(0.001)))
            .collect(),
    });
    let read_plot = Plot {
        file: "read_amplification.svg".into(),
        title: "Per get: storage reads; LSM tables covering the key, blocks probed".into(),
        x_label: "rows ingested".into(),
        y_label: "per get".into(),
        log_y: true,
        kind: PlotKind::Lines {
            series: read_series,
            log_x: true,
        },
    };

    let (findings, verdict) = findings(r);
    let fp_theory = bloom_fp_theory(r.lsm.bloom_bits_per_key);
    Report {
        setup: vec![
            format!(
                "YCSB's usertable with one {}-byte field ({} user bytes a row); keys are \
                 `\"user\" + fnv1a64(n)` for n = 0, 1, 2...: random order. Ingested by \
                 ordinary inserts in batches of {BATCH_ROWS} rows (one synced commit each) \
                 through {} rows, measured at {} rows.",
                DATA.field_bytes,
                r.user_bytes_per_row,
                r.largest(),
                r.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            format!(
                "Memory: {} KiB for every engine (the B+trees' buffer pool; the LSM's block \
                 cache, its index and filter blocks and {} KiB memtables outside it, as \
                 RocksDB's), a quarter of the {} KiB of user data at the largest size.",
                r.config.pool_bytes / 1024,
                r.lsm.memtable_bytes_max / 1024,
                r.largest() * r.user_bytes_per_row / 1024
            ),
            format!(
                "LSM: leveled compaction, L1 {} KiB, size ratio {}, tables of {} KiB, \
                 {}-byte blocks, {} bloom bits per key (a false-positive rate of {:.2}% in \
                 theory). Engines: clustered (InnoDB-style B+tree), lsm (the same engine's \
                 MyRocks-style layout), heap (PostgreSQL-style, for reference).",
                r.lsm.level1_bytes_target / 1024,
                r.lsm.level_size_ratio,
                r.lsm.table_bytes_target / 1024,
                r.lsm.block_bytes,
                r.lsm.bloom_bits_per_key,
                fp_theory * 100.0
            ),
            format!(
                "At each size: a checkpoint (the LSM also flushes and finishes its due \
                 compactions), then {} gets of existing keys (after {} unmeasured ones) and \
                 {} gets of keys never inserted. Write amplification = every byte the ledger \
                 saw written (log, full-page images, page write-backs, flushes, compactions, \
                 manifest) over the user bytes inserted, from the empty table to that size.",
                r.gets,
                r.gets / 4,
                r.gets
            ),
            format!(
                "The ledger counts physical writes: the log's include the partly filled last \
                 block rewritten at each commit and the zero-filling of each newly created {} \
                 MiB log segment (after checkpoints, old segments are recycled instead).",
                r.config.wal_segment_size >> 20
            ),
        ],
        expected: "Under random keys a B+tree rewrites a whole page for each small insert \
                   once the tree is bigger than the pool (page size over row size: ~60x for \
                   8 KiB pages and ~120-byte rows, plus the log), while an LSM writes its \
                   log and then sorted tables sequentially, each byte rewritten about once \
                   per level (write amplification ~ levels x (fanout + 1) / 2, growing \
                   slowly with the size): the LSM writes far less per byte ingested. In \
                   return a point read may look in every level of the LSM; bloom filters let \
                   it skip nearly every table that does not hold the key, so point reads \
                   cost about one block, as in a B+tree."
            .into(),
        sections: vec![
            Section {
                heading: "Write amplification by cause".into(),
                text: "Per engine and size: bytes written over user bytes from the empty \
                       table (cumulative) and over the last segment of the load alone, then the \
                       cumulative figure split by the ledger's causes; rows/s and storage reads \
                       per row of the segment (inserts and checkpoint); size of the table's \
                       files (the LSM: live tables) and over the user bytes."
                    .into(),
                table: Some(wa_table),
                plot: Some(wa_plot),
            },
            Section {
                heading: "The LSM tree's shape".into(),
                text: "Levels after each size's checkpoint and compactions; the tree's own \
                       write amplification counts the tables it wrote (flushes and \
                       compactions) over its user bytes, without the log."
                    .into(),
                table: Some(shape_table),
                plot: None,
            },
            Section {
                heading: "Point reads".into(),
                text: "Storage reads per get (the ledger), pages or blocks touched per get \
                       (buffer pool accesses for the B+trees, block cache accesses for the \
                       LSM, whose index and filter blocks stay in memory), and the LSM's \
                       counters: tables whose key range covered the key (what a get probes \
                       without filters), data blocks probed, filter negatives, and the \
                       filters' false-positive rate (false positives over false positives \
                       plus negatives). In the plot, `reads` are storage reads per get, `lsm \
                       missing: tables` the tables covering a missing key and `probes` the data \
                       blocks actually probed; zeros are drawn at 0.001 (log scale)."
                    .into(),
                table: Some(read_table),
                plot: Some(read_plot),
            },
        ],
        findings,
        verdict,
    }
}

/// A segment's bytes written for `cause` over its user bytes.
fn segment_cause_wa(s: &Segment, cause: IoCause) -> f64 {
    s.total
        .io
        .by_cause
        .get(cause.name())
        .map_or(0, |io| io.write_bytes) as f64
        / s.total.user_bytes_written.max(1) as f64
}

/// `a -> b -> c` of a figure over an engine's sizes.
fn over_sizes(r: &Results, engine: EngineKind, f: impl Fn(&Segment) -> f64) -> String {
    r.sizes
        .iter()
        .filter_map(|&n| r.segment(engine, n))
        .map(|s| format!("{:.1}", f(s)))
        .collect::<Vec<_>>()
        .join(" -> ")
}

fn findings(r: &Results) -> (Vec<String>, Verdict) {
    let mut findings = Vec::new();
    let n = r.largest();
    let page_bytes = r.config.page_size.bytes() as f64;
    let cl = r.cumulative(EngineKind::Clustered, n);
    let ls = r.cumulative(EngineKind::Lsm, n);
    let hp = r.cumulative(EngineKind::Heap, n);
    let causes = |c: &Cumulative| {
        c.by_cause
            .iter()
            .filter(|(_, b)| *b > 0)
            .map(|(k, _)| format!("{} {:.2}", k.name(), c.cause_wa(*k)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    findings.push(format!(
        "At {n} rows the clustered B+tree had written {:.1} bytes per user byte (by cause: \
         {}), the LSM {:.1} ({}): {} less. The heap wrote {:.1} ({}); by file: {}. Its rows \
         are appended to heap pages whatever their key; its primary-key index takes the \
         random inserts.",
        cl.wa(),
        causes(&cl),
        ls.wa(),
        causes(&ls),
        ratio(cl.wa(), ls.wa()),
        hp.wa(),
        causes(&hp),
        hp.files()
    ));
    if let Some(last) = r.segment(EngineKind::Clustered, n) {
        let seg_rows = (last.rows - last.rows_before).max(1) as f64;
        let evicted = last
            .total
            .io
            .by_cause
            .get(IoCause::EvictionWriteBack.name())
            .map_or(0, |io| io.write_bytes) as f64
            / page_bytes;
        let images = last
            .total
            .io
            .by_cause
            .get(IoCause::FullPageImage.name())
            .map_or(0, |io| io.write_bytes) as f64
            / page_bytes;
        let splits = last.total.counters.get("primary_splits").copied();
        findings.push(format!(
            "Why the B+tree writes so much, in the last segment ({} to {} rows): {:.0} pages \
             written back by eviction per 100 rows inserted ({}), {:.0} full-page images per \
             100 rows (the first change to a page after each checkpoint logs the whole page, \
             and random inserts make their first changes all over the tree), and the log's \
             records{}.",
            last.rows_before,
            last.rows,
            evicted * 100.0 / seg_rows,
            if evicted / seg_rows > 0.5 {
                format!(
                    "a {}-byte row dirties a whole {} KiB leaf, which the pool mostly writes \
                     back before the next insert into it",
                    r.user_bytes_per_row,
                    page_bytes / 1024.0
                )
            } else {
                "the pool still holds most leaves between two inserts into them".to_string()
            },
            images * 100.0 / seg_rows,
            splits.map_or(String::new(), |sp| format!(
                ", which include every page a split changes as a whole image ({sp} node \
                 splits since the table was empty, one per {:.0} rows)",
                n as f64 / sp.max(1) as f64
            ))
        ));
    }
    findings.push(format!(
        "Growth with the table: the B+tree's cumulative write amplification went {} over the \
         sizes {} (each segment alone: {}; its eviction write-backs {} and full-page images \
         {} per user byte) as the tree ({} MiB) outgrew the {} MiB pool; the LSM's went {} \
         (each segment alone: {}; compaction {}) as it gained levels (see its shape above).",
        r.sizes
            .iter()
            .map(|&s| format!("{:.1}", r.cumulative(EngineKind::Clustered, s).wa()))
            .collect::<Vec<_>>()
            .join(" -> "),
        r.sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        over_sizes(r, EngineKind::Clustered, |s| s
            .total
            .write_amplification
            .unwrap_or(f64::NAN)),
        over_sizes(r, EngineKind::Clustered, |s| segment_cause_wa(
            s,
            IoCause::EvictionWriteBack
        )),
        over_sizes(r, EngineKind::Clustered, |s| segment_cause_wa(
            s,
            IoCause::FullPageImage
        )),
        r.sizes
            .iter()
            .filter_map(|&s| r.segment(EngineKind::Clustered, s))
            .map(|s| mib(s.total.size_on_disk_bytes))
            .collect::<Vec<_>>()
            .join(", "),
        mib(r.config.pool_bytes as u64),
        r.sizes
            .iter()
            .map(|&s| format!("{:.1}", r.cumulative(EngineKind::Lsm, s).wa()))
            .collect::<Vec<_>>()
            .join(" -> "),
        over_sizes(r, EngineKind::Lsm, |s| s
            .total
            .write_amplification
            .unwrap_or(f64::NAN)),
        over_sizes(r, EngineKind::Lsm, |s| segment_cause_wa(
            s,
            IoCause::Compaction
        )),
    ));
    if let (Some(shape), Some(last)) = (r.shapes.last(), r.segment(EngineKind::Lsm, n)) {
        let levels = shape.levels.iter().filter(|(l, _, _)| *l > 0).count();
        let c = |k: &str| last.total.counters.get(k).copied().unwrap_or(0);
        findings.push(format!(
            "The LSM's own counters at {n} rows: {levels} levels below L0, {} flushes, {} \
             compactions; the tables it wrote add up to {:.2} times the user bytes (the rule \
             of thumb levels x fanout / 2 gives {:.1} for a tree whose levels are all full). \
             Its log records add {:.2}; the ledger's log figure ({:.2}) is larger because it \
             counts physical writes: the partly filled last block rewritten at every commit, \
             and each newly created {} MiB log segment zero-filled once (recycled segments \
             are not).",
            shape.flushes,
            shape.compactions,
            shape.tree_wa_tables,
            levels as f64 * r.lsm.level_size_ratio as f64 / 2.0,
            c("lsm_wal_bytes_written") as f64 / c("lsm_user_bytes_written").max(1) as f64,
            ls.cause_wa(IoCause::Wal),
            r.config.wal_segment_size >> 20
        ));
    }
    findings.push(format!(
        "Throughput over the whole ingest (inserts and checkpoints): clustered {} rows/s, \
         lsm {} rows/s, heap {} rows/s. Storage reads per row inserted in the last segment: \
         clustered {}, heap {} (pages read back into the pool after their eviction), lsm {} \
         ({:.0}% of them foreground reads: an insert first looks its key up to refuse a \
         duplicate, and the filters answer most of those lookups without a read; {:.0}% by \
         compactions reading their input tables).",
        num(cl.rows_per_s()),
        num(ls.rows_per_s()),
        num(hp.rows_per_s()),
        over_last_reads(r, EngineKind::Clustered),
        over_last_reads(r, EngineKind::Heap),
        over_last_reads(r, EngineKind::Lsm),
        read_share(r, EngineKind::Lsm, IoCause::ForegroundRead),
        read_share(r, EngineKind::Lsm, IoCause::Compaction),
    ));
    if let (Some(cs), Some(lsg)) = (
        r.segment(EngineKind::Clustered, n),
        r.segment(EngineKind::Lsm, n),
    ) {
        let fill = r
            .fills
            .iter()
            .find(|(s, _)| *s == n)
            .map_or(String::new(), |(_, f)| {
                format!(" (leaves {:.0}% full after random inserts)", f * 100.0)
            });
        findings.push(format!(
            "Space at {n} rows: the B+tree takes {} MiB{fill}, the LSM {} MiB of packed \
             sorted tables: {:.2} and {:.2} times the user bytes.",
            mib(cs.total.size_on_disk_bytes),
            mib(lsg.total.size_on_disk_bytes),
            cs.total.size_on_disk_bytes as f64 / (n * r.user_bytes_per_row) as f64,
            lsg.total.size_on_disk_bytes as f64 / (n * r.user_bytes_per_row) as f64
        ));
    }
    let write_holds = (cl.user_bytes > 0 && ls.user_bytes > 0).then(|| ls.wa() < cl.wa());
    let mut read_holds = None;
    if let (Some(ce), Some(le), Some(lm), Some(cm)) = (
        r.gets(EngineKind::Clustered, n, "existing"),
        r.gets(EngineKind::Lsm, n, "existing"),
        r.gets(EngineKind::Lsm, n, "missing"),
        r.gets(EngineKind::Clustered, n, "missing"),
    ) {
        let cand = lm.lsm.per_get(lm.lsm.candidates);
        let probed = lm.lsm.per_get(lm.lsm.tables_read);
        let touched = metrics::pages_touched(&ce.phase);
        let height = r
            .segment(EngineKind::Clustered, n)
            .and_then(|s| s.total.counters.get("primary_height").copied());
        let path = match height {
            Some(h) if (touched - (h as f64 + 1.0)).abs() < 0.1 => {
                format!(" (the meta page, then a root-to-leaf path of height {h})")
            }
            Some(h) => format!(" (the tree's height is {h})"),
            None => String::new(),
        };
        findings.push(format!(
            "Existing keys at {n} rows: the B+tree read {:.2} pages from storage per get and \
             touched {touched:.2}{path}; the LSM read {:.2} blocks from storage and touched \
             {:.2}: it probed {:.3} data blocks per get although {:.2} tables covered each \
             key, because the filters of the tables without the key said \"absent\" ({:.2} \
             negatives per get).",
            metrics::reads(&ce.phase),
            metrics::reads(&le.phase),
            metrics::pages_touched(&le.phase),
            le.lsm.per_get(le.lsm.tables_read),
            le.lsm.per_get(le.lsm.candidates),
            le.lsm.per_get(le.lsm.bloom_negatives)
        ));
        findings.push(format!(
            "Missing keys at {n} rows: {cand:.2} tables covered each key (the L0 tables and \
             one per level: what a get would read without filters); the filters answered \
             \"absent\" {:.2} times per get and the LSM probed {probed:.3} data blocks per \
             get, a false-positive rate of {:.2}% ({} false positives in {} filter checks; \
             {:.2}% in theory at {} bits per key). The B+tree read {:.2} pages from storage \
             per missing key (it must reach the leaf to know), the LSM {:.2} blocks.",
            lm.lsm.per_get(lm.lsm.bloom_negatives),
            lm.lsm.false_positive_rate() * 100.0,
            lm.lsm.bloom_false_positives,
            lm.lsm.bloom_checks,
            bloom_fp_theory(r.lsm.bloom_bits_per_key) * 100.0,
            r.lsm.bloom_bits_per_key,
            metrics::reads(&cm.phase),
            metrics::reads(&lm.phase)
        ));
        read_holds = Some(cand > 1.0 && probed < (1.0 - BLOOM_SKIP_MIN) * cand);
    }
    let write_text = format!(
        "the LSM wrote {:.1} bytes per user byte against the B+tree's {:.1} at {n} rows",
        ls.wa(),
        cl.wa()
    );
    let read_text = r
        .gets(EngineKind::Lsm, n, "missing")
        .map(|g| {
            format!(
                "a missing-key get had {:.2} candidate tables in the LSM and its bloom filters \
                 cut the blocks probed to {:.3}",
                g.lsm.per_get(g.lsm.candidates),
                g.lsm.per_get(g.lsm.tables_read)
            )
        })
        .unwrap_or_default();
    let verdict = match (write_holds, read_holds) {
        (Some(true), Some(true)) => Verdict::Agrees(format!(
            "The LSM wrote less per byte ingested ({write_text}), and it paid on reads in \
             tables consulted, not in blocks read: {read_text}."
        )),
        (Some(false), Some(false)) => Verdict::Contradicts(format!(
            "Neither part held: {write_text}, and {read_text}, so the filters did not skip \
             most candidate tables (or the LSM had a single table to consult)."
        )),
        (Some(true), Some(false)) => Verdict::Mixed(format!(
            "Writes as expected ({write_text}), but the read side did not show the expected \
             pattern: {read_text} (expected several candidate tables of which the filters \
             skip more than half)."
        )),
        (Some(false), Some(true)) => Verdict::Mixed(format!(
            "Reads as expected ({read_text}), but not writes: {write_text}; the table above \
             shows which cause dominates."
        )),
        _ => Verdict::Mixed("Some points are missing; no verdict could be computed.".into()),
    };
    (findings, verdict)
}

/// The share (percent) of an engine's storage reads in its last segment charged to `cause`.
fn read_share(r: &Results, engine: EngineKind, cause: IoCause) -> f64 {
    r.segment(engine, r.largest()).map_or(0.0, |s| {
        s.total
            .io
            .by_cause
            .get(cause.name())
            .map_or(0, |io| io.read_count) as f64
            * 100.0
            / s.total.io.total.read_count.max(1) as f64
    })
}

/// Storage reads per row inserted in an engine's last segment.
fn over_last_reads(r: &Results, engine: EngineKind) -> String {
    r.segment(engine, r.largest()).map_or("-".into(), |s| {
        format!(
            "{:.2}",
            s.total.io.total.read_count as f64 / (s.rows - s.rows_before).max(1) as f64
        )
    })
}
