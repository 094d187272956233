//! Experiment 3: updates with 0 to 8 secondary indexes, HOT on and off, fillfactor
//! 100/90/70 (the Uber argument).
//!
//! A table of a primary key, nine integer columns and a padding text is built with `k`
//! secondary indexes (`k` in 0, 1, 2, 4, 8; index `ix{j}` on column `c{j}`), bulk-loaded and
//! checkpointed, then updated at random keys: each update sets `val`, a column no index
//! covers, to a new number (the row keeps its size). The same updates run on the heap with
//! HOT at fillfactor 100, 90 and 70, on the heap with HOT switched off, on the clustered
//! B+tree and on the LSM. Each point measures, per update, the bytes written to storage
//! (from the I/O ledger: by file, heap versus primary index versus secondary indexes versus
//! the log, and by cause: log records, full-page images, eviction write-backs, checkpoint,
//! LSM flush and compaction), the index entries inserted (the engines' counters) and the log
//! bytes. The measured phase ends with a checkpoint, so the pages the updates dirtied are
//! written within it whatever the pool held. A smaller phase then updates an indexed column
//! (`c0`) for reference.
//!
//! Uber's 2016 post ("Why Uber Engineering Switched from Postgres to MySQL") argued that a
//! heap whose indexes hold row locations must add an entry to every index when an update
//! moves a row, so its update cost grows with the number of indexes, while InnoDB's
//! secondary indexes hold the primary key and are touched only when their own columns
//! change. PostgreSQL's answer is the heap-only tuple: an update that changes no indexed
//! column and fits on its page writes no index entry, and a fillfactor below 100 keeps room
//! on each page so that it fits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rand::SeedableRng;
use rand::rngs::StdRng;
use storelab_table::{ColumnType, Engine, Row, Schema, StorageConfig, Table, Value};
use storelab_wal::Wal;
use storelab_workload::{OpOutcome, PhaseResult};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, Series, TextTable, Verdict, metrics};

/// Secondary index counts compared.
const INDEX_COUNTS: [usize; 5] = [0, 1, 2, 4, 8];
/// Integer columns `c0..c7` that indexes may cover (index `ix{j}` is on `c{j}`).
const INDEXABLE_COLUMNS: usize = 8;
/// Column numbers in the row: `id`, `c0..c7`, `val`, `pad`.
const VAL_COLUMN: usize = 1 + INDEXABLE_COLUMNS;
/// The indexed column updated by the reference phase (`c0`, covered by `ix0` when k >= 1).
const INDEXED_COLUMN: usize = 1;
/// Bytes of the padding text: rows of about 190 bytes encoded, ~40 to an 8 KiB page.
const PAD_BYTES: usize = 100;
/// Range of the indexed columns' values (uncorrelated with the key).
const COLUMN_VALUE_RANGE: u64 = 1_000_000;

/// One engine and its settings.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setting {
    /// The heap with HOT on or off, at a fillfactor.
    Heap { hot: bool, fillfactor_pct: u8 },
    /// The clustered B+tree.
    Clustered,
    /// The clustered layout on an LSM tree.
    Lsm,
}

impl Setting {
    /// Every setting, in table order.
    const ALL: [Setting; 6] = [
        Setting::Heap {
            hot: true,
            fillfactor_pct: 100,
        },
        Setting::Heap {
            hot: true,
            fillfactor_pct: 90,
        },
        Setting::Heap {
            hot: true,
            fillfactor_pct: 70,
        },
        Setting::Heap {
            hot: false,
            fillfactor_pct: 100,
        },
        Setting::Clustered,
        Setting::Lsm,
    ];

    fn label(self) -> String {
        match self {
            Setting::Heap {
                hot,
                fillfactor_pct,
            } => format!(
                "heap, HOT {}, ff {fillfactor_pct}",
                if hot { "on" } else { "off" }
            ),
            Setting::Clustered => "clustered".into(),
            Setting::Lsm => "lsm".into(),
        }
    }

    fn engine(self) -> &'static str {
        match self {
            Setting::Heap { .. } => "heap",
            Setting::Clustered => "clustered",
            Setting::Lsm => "lsm",
        }
    }

    fn dir_name(self) -> String {
        match self {
            Setting::Heap {
                hot,
                fillfactor_pct,
            } => format!("heap-hot{}-ff{fillfactor_pct}", u8::from(hot)),
            Setting::Clustered => "clustered".into(),
            Setting::Lsm => "lsm".into(),
        }
    }

    fn is_heap(self) -> bool {
        matches!(self, Setting::Heap { .. })
    }

    /// Opens a database of this setting in `dir`; with it, its log (whose insert position
    /// gives the bytes of log records appended, before block padding).
    fn open(self, dir: &Path, config: &StorageConfig) -> Result<(Box<dyn Engine>, Arc<Wal>)> {
        Ok(match self {
            Setting::Heap {
                hot,
                fillfactor_pct,
            } => {
                let db = storelab_heap::HeapEngine::open(
                    dir,
                    config,
                    storelab_heap::HeapOptions {
                        hot,
                        fillfactor_pct,
                        // Dead tuples are experiment 9's subject; here VACUUM would only
                        // add lumps of work to some points and not others.
                        autovacuum: false,
                        ..storelab_heap::HeapOptions::default()
                    },
                )
                .with_context(|| format!("open heap database in {}", dir.display()))?;
                let wal = db.storage().wal.clone();
                (Box::new(db), wal)
            }
            Setting::Clustered => {
                let db = storelab_clustered::ClusteredEngine::open(
                    dir,
                    config,
                    storelab_clustered::ClusteredOptions::default(),
                )
                .with_context(|| format!("open clustered database in {}", dir.display()))?;
                let wal = db.storage().wal.clone();
                (Box::new(db), wal)
            }
            Setting::Lsm => {
                let db = storelab_clustered::ClusteredLsmEngine::open(
                    dir,
                    config,
                    storelab_clustered::LsmOptions {
                        lsm: storelab_clustered::LsmConfig {
                            // Flushes and compactions inline, in the writer that made them
                            // due: their I/O lands in the phase that caused it.
                            background: false,
                            ..storelab_clustered::LsmConfig::default()
                        },
                    },
                )
                .with_context(|| format!("open clustered-lsm database in {}", dir.display()))?;
                let wal = db.storage().wal.clone();
                (Box::new(db), wal)
            }
        })
    }
}

/// The table with `k` secondary indexes.
fn schema(k: usize) -> Schema {
    let mut b = Schema::builder("upd").column("id", ColumnType::Int64);
    for j in 0..INDEXABLE_COLUMNS {
        b = b.column(&format!("c{j}"), ColumnType::Int64);
    }
    b = b
        .column("val", ColumnType::Int64)
        .column("pad", ColumnType::Text)
        .primary_key(&["id"]);
    for j in 0..k {
        b = b.index(&format!("ix{j}"), &[&format!("c{j}")], false);
    }
    b.build().expect("a valid schema")
}

/// Row `n`: uncorrelated integers in `c0..c7`, `val` 0, a fixed padding.
fn row(n: u64, seed: u64) -> Row {
    let mut r = Vec::with_capacity(VAL_COLUMN + 2);
    r.push(Value::Int(n as i64));
    for j in 0..INDEXABLE_COLUMNS as u64 {
        let h = storelab_workload::generator::fnv1a64(n ^ (j << 40) ^ seed);
        r.push(Value::Int((h % COLUMN_VALUE_RANGE) as i64));
    }
    r.push(Value::Int(0));
    r.push(Value::Text("p".repeat(PAD_BYTES)));
    r
}

/// Which column a phase updates.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    /// `val`, covered by no index.
    NonIndexed,
    /// `c0`, covered by `ix0`.
    Indexed,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::NonIndexed => "non-indexed",
            Target::Indexed => "indexed",
        }
    }
}

/// One measured point.
struct Point {
    setting: Setting,
    k: usize,
    target: Target,
    run: PhaseResult,
    /// Counter deltas of the phase (the table's counters are totals since open).
    delta: BTreeMap<String, u64>,
}

impl Point {
    fn updates(&self) -> f64 {
        self.run.ops.max(1) as f64
    }

    fn d(&self, name: &str) -> u64 {
        self.delta.get(name).copied().unwrap_or(0)
    }

    fn kib(&self) -> f64 {
        metrics::write_kib(&self.run)
    }

    /// Index entries written per update: the heap's inserts into any index (the primary
    /// key's included), the clustered engines' secondary entries written by updates (their
    /// primary index holds the row itself, rewritten in place).
    fn entries_per_update(&self) -> f64 {
        let n = if self.setting.is_heap() {
            self.d("index_entries_inserted")
        } else {
            self.d("update_secondary_entries_written")
        };
        n as f64 / self.updates()
    }

    /// Share of the heap's updates that were HOT (NaN for the others).
    fn hot_pct(&self) -> f64 {
        if !self.setting.is_heap() {
            return f64::NAN;
        }
        let hot = self.d("hot_updates") as f64;
        let all = hot + self.d("non_hot_updates") as f64;
        if all == 0.0 {
            f64::NAN
        } else {
            100.0 * hot / all
        }
    }

    /// Bytes of log records appended per update (full-page images included), before the
    /// log's block padding.
    fn log_appended(&self) -> f64 {
        self.d(LOG_APPENDED) as f64 / self.updates()
    }

    /// KiB written per update to files matching `f`.
    fn file_kib(&self, f: impl Fn(&str) -> bool) -> f64 {
        self.run
            .io
            .by_file
            .iter()
            .filter(|(name, _)| f(name))
            .map(|(_, io)| io.write_bytes)
            .sum::<u64>() as f64
            / 1024.0
            / self.updates()
    }

    fn heap_file_kib(&self) -> f64 {
        self.file_kib(|n| n.ends_with(".heap"))
    }

    fn primary_kib(&self) -> f64 {
        self.file_kib(|n| n.ends_with(".primary.idx"))
    }

    fn secondary_kib(&self) -> f64 {
        self.file_kib(is_secondary_file)
    }

    fn prunes_per_update(&self) -> f64 {
        self.d("pages_pruned") as f64 / self.updates()
    }

    fn lsm_kib(&self) -> f64 {
        self.file_kib(|n| n.starts_with("lsm"))
    }

    fn log_kib(&self) -> f64 {
        metrics::cause_write_kib(&self.run, "wal") + metrics::cause_write_kib(&self.run, "fpi")
    }
}

/// A secondary index file of the heap or the clustered engine (`t1.ix3.idx`).
fn is_secondary_file(name: &str) -> bool {
    name.ends_with(".idx") && !name.ends_with(".primary.idx")
}

/// The name of the phase's appended log bytes among the counter deltas.
const LOG_APPENDED: &str = "log_bytes_appended";

/// Counter deltas between two `stats().counters`.
fn deltas(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                v.saturating_sub(before.get(k).copied().unwrap_or(0)),
            )
        })
        .collect()
}

/// Measures `updates` updates of `target` at random keys, ending with a checkpoint.
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename them.
fn update_phase(
    ctx: &Ctx,
    db: &dyn Engine,
    wal: &Wal,
    table: &dyn Table,
    rows: u64,
    updates: u64,
    target: Target,
    label: &str,
) -> Result<(PhaseResult, BTreeMap<String, u64>)> {
    let before = table.stats()?.counters;
    let lsn_before = wal.insert_lsn().0;
    let pb = ctx.bar(updates, label);
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x0B0A7 ^ target as u64);
    let mut run = storelab_workload::measure(
        db,
        table,
        &format!("update-{}", target.name()),
        "update",
        updates,
        |i| {
            let key = rand::Rng::random_range(&mut rng, 0..rows) as i64;
            let change = match target {
                Target::NonIndexed => (VAL_COLUMN, Value::Int(i as i64 + 1)),
                Target::Indexed => (
                    INDEXED_COLUMN,
                    Value::Int(rand::Rng::random_range(&mut rng, 0..COLUMN_VALUE_RANGE) as i64),
                ),
            };
            let found = table.update(&[Value::Int(key)], &[change])?;
            assert!(found, "key {key} was loaded");
            if i + 1 == updates {
                // The pages the updates dirtied are written now, whatever the pool held:
                // their cost belongs to the phase.
                db.checkpoint()?;
            }
            pb.set_position(i + 1);
            Ok(OpOutcome {
                rows: 1,
                bytes_written: 8,
            })
        },
    )?;
    pb.finish_and_clear();
    let mut delta = deltas(&before, &run.counters);
    delta.insert(
        LOG_APPENDED.into(),
        wal.insert_lsn().0.saturating_sub(lsn_before),
    );
    for (k, v) in &delta {
        run.counters.insert(format!("phase_{k}"), *v);
    }
    Ok((run, delta))
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(100_000, 2_000);
    let updates = ctx.scaled(20_000, 400);
    let indexed_updates = (updates / 4).max(100);
    let mut config = ctx.storage();
    // Updates are not about commit latency here: commits are acknowledged before their sync
    // (the log is still written, by the background writer and before every write-back).
    config.commit_mode = storelab_wal::CommitMode::Off;
    // A pool of about a quarter of the heap (~190 bytes a row at fillfactor 100): the table
    // and its indexes do not fit, as in the large tables of the Uber post.
    config.pool_bytes = ((rows * 48) as usize).max(2 << 20);
    let mut points = Vec::new();
    for setting in Setting::ALL {
        for k in INDEX_COUNTS {
            let dir = ctx.fresh_dir(&format!("{}-k{k}", setting.dir_name()))?;
            let (db, wal) = setting.open(&dir, &config)?;
            let table = db.create_table(schema(k))?;
            let seed = ctx.seed;
            let load = storelab_workload::measure(&*db, &*table, "load", "load", 1, |_| {
                let mut it = (0..rows).map(|n| row(n, seed));
                let n = table.load(&mut it)?;
                if setting == Setting::Lsm {
                    // Every point starts with no flush or compaction pending, whatever the
                    // load left due (the heap and the clustered tree start from their
                    // bulk-loaded, checkpointed files).
                    table.maintain()?;
                }
                db.checkpoint()?;
                Ok(OpOutcome {
                    rows: n,
                    bytes_written: n * super::row_bytes(&row(0, seed)),
                })
            })?;
            let mut phases = vec![Target::NonIndexed];
            if k > 0 {
                phases.push(Target::Indexed);
            }
            for target in phases {
                let n = match target {
                    Target::NonIndexed => updates,
                    Target::Indexed => indexed_updates,
                };
                let label = format!("{} k={k} {}", setting.label(), target.name());
                let (run, delta) = update_phase(ctx, &*db, &wal, &*table, rows, n, target, &label)?;
                let params = [
                    ("setting", setting.label().into()),
                    ("secondary_indexes", (k as u64).into()),
                    ("updated_column", target.name().into()),
                    ("rows", rows.into()),
                    ("updates", n.into()),
                    (
                        "hot",
                        match setting {
                            Setting::Heap { hot, .. } => hot.into(),
                            _ => serde_json::Value::Null,
                        },
                    ),
                    (
                        "fillfactor_pct",
                        match setting {
                            Setting::Heap { fillfactor_pct, .. } => fillfactor_pct.into(),
                            _ => serde_json::Value::Null,
                        },
                    ),
                ];
                ctx.record(
                    setting.engine(),
                    &params,
                    &config,
                    Some(load.clone()),
                    run.clone(),
                );
                points.push(Point {
                    setting,
                    k,
                    target,
                    run,
                    delta,
                });
            }
            ctx.verify(&*db)?;
            drop(table);
            drop(db);
            ctx.discard(&dir);
        }
    }
    Ok(report(&points, rows, updates, indexed_updates, &config))
}

fn find(points: &[Point], setting: Setting, k: usize, target: Target) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.setting == setting && p.k == k && p.target == target)
}

const HEAP_FF100: Setting = Setting::Heap {
    hot: true,
    fillfactor_pct: 100,
};
const HEAP_FF90: Setting = Setting::Heap {
    hot: true,
    fillfactor_pct: 90,
};
const HEAP_FF70: Setting = Setting::Heap {
    hot: true,
    fillfactor_pct: 70,
};
const HEAP_NO_HOT: Setting = Setting::Heap {
    hot: false,
    fillfactor_pct: 100,
};

/// A cell for a file kind the setting may not have (`-` where it has none).
fn cell(has: bool, v: f64) -> String {
    if has { num(v) } else { "-".into() }
}

fn report(
    points: &[Point],
    rows: u64,
    updates: u64,
    indexed_updates: u64,
    config: &StorageConfig,
) -> Report {
    let non_indexed: Vec<&Point> = points
        .iter()
        .filter(|p| p.target == Target::NonIndexed)
        .collect();
    let indexed: Vec<&Point> = points
        .iter()
        .filter(|p| p.target == Target::Indexed)
        .collect();

    let mut by_file = TextTable::new(&[
        "engine",
        "indexes",
        "KiB written/update",
        "heap file",
        "primary index",
        "secondary indexes",
        "lsm tables",
        "log",
        "index entries/update",
        "HOT %",
        "log appended (B/update)",
        "p50 (us)",
    ]);
    for p in &non_indexed {
        let heap = p.setting.is_heap();
        let lsm = p.setting == Setting::Lsm;
        by_file.row(vec![
            p.setting.label(),
            p.k.to_string(),
            num(p.kib()),
            cell(heap, p.heap_file_kib()),
            cell(!lsm, p.primary_kib()),
            cell(!lsm, p.secondary_kib()),
            cell(lsm, p.lsm_kib()),
            num(p.log_kib()),
            num(p.entries_per_update()),
            num(p.hot_pct()),
            num(p.log_appended()),
            num(metrics::p50_us(&p.run)),
        ]);
    }
    let mut by_cause = TextTable::new(&[
        "engine",
        "indexes",
        "wal",
        "fpi",
        "eviction",
        "checkpoint",
        "flush",
        "compaction",
        "pages read/update",
        "heap pages pruned/update",
    ]);
    for p in &non_indexed {
        let c = |cause: &str| num(metrics::cause_write_kib(&p.run, cause));
        by_cause.row(vec![
            p.setting.label(),
            p.k.to_string(),
            c("wal"),
            c("fpi"),
            c("eviction"),
            c("checkpoint"),
            c("flush"),
            c("compaction"),
            num(metrics::reads(&p.run)),
            cell(p.setting.is_heap(), p.prunes_per_update()),
        ]);
    }
    let mut indexed_table = TextTable::new(&[
        "engine",
        "indexes",
        "KiB written/update",
        "secondary indexes",
        "index entries/update",
        "log appended (B/update)",
    ]);
    for p in &indexed {
        indexed_table.row(vec![
            p.setting.label(),
            p.k.to_string(),
            num(p.kib()),
            cell(p.setting != Setting::Lsm, p.secondary_kib()),
            num(p.entries_per_update()),
            num(p.log_appended()),
        ]);
    }

    let lines = |pts: &[&Point], y: &dyn Fn(&Point) -> f64| -> Vec<Series> {
        Setting::ALL
            .iter()
            .map(|&s| Series {
                name: s.label(),
                points: pts
                    .iter()
                    .filter(|p| p.setting == s)
                    .map(|p| (p.k as f64, y(p)))
                    .collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let plot = Plot {
        file: "kib_written_per_update.svg".into(),
        title: "KiB written per update of a non-indexed column".into(),
        x_label: "secondary indexes".into(),
        y_label: "KiB written per update".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series: lines(&non_indexed, &|p| p.kib()),
            log_x: false,
        },
    };
    let entries_plot = Plot {
        file: "index_entries_per_update.svg".into(),
        title: "Index entries written per update of a non-indexed column".into(),
        x_label: "secondary indexes".into(),
        y_label: "index entries per update".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series: lines(&non_indexed, &|p| p.entries_per_update()),
            log_x: false,
        },
    };
    let indexed_plot = Plot {
        file: "kib_written_per_indexed_update.svg".into(),
        title: "KiB written per update of an indexed column".into(),
        x_label: "secondary indexes".into(),
        y_label: "KiB written per update".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series: lines(&indexed, &|p| p.kib()),
            log_x: false,
        },
    };

    let (findings, verdict) = findings(points);
    Report {
        setup: vec![
            format!(
                "A table `upd` of a primary key `id`, nine integer columns `c0..c7` and `val`, \
                 and a {PAD_BYTES}-byte text `pad`; with k secondary indexes (k = {}), index \
                 `ix{{j}}` on `c{{j}}` (values uncorrelated with the key). {rows} rows \
                 bulk-loaded into each engine (each engine's load path; the LSM then flushed \
                 and compacted until no compaction was due), then a checkpoint.",
                INDEX_COUNTS.map(|k| k.to_string()).join(", ")
            ),
            format!(
                "Measured: {updates} updates at uniformly random keys, one commit each, setting \
                 `val` (no index covers it; the row keeps its size), ending with a checkpoint \
                 so that every page the updates dirtied is written within the phase. Then, on \
                 the same table when k >= 1, {indexed_updates} updates of the indexed column \
                 `c0` for reference."
            ),
            "Settings: the heap with HOT at fillfactor 100, 90 and 70 (the bulk load leaves \
             100 - fillfactor percent of each page free), the heap with HOT switched off \
             (`HeapOptions::hot = false`, fillfactor 100), the clustered B+tree (leaves \
             loaded 90% full), the LSM (default tree; flushes and compactions inline, so their \
             I/O falls in the phase that caused it). Autovacuum is off (experiment 9 measures \
             VACUUM)."
                .into(),
            format!(
                "Storage: buffer pool {} KiB, about a quarter of the k = 0 heap at fillfactor \
                 100 (the LSM's block cache gets the same budget); commits acknowledged before \
                 their sync (`commit_mode = off`: the experiment counts bytes, not commit \
                 latency; the log is still written, by the background writer and before every \
                 page write-back); full-page images on.",
                config.pool_bytes / 1024
            ),
        ],
        expected: "A heap's indexes point at row locations (TIDs). Without HOT, every update \
                   writes a new row version at a new TID and so inserts an entry into every \
                   index, the primary key's included, whatever columns changed: its cost grows \
                   with the number of indexes (Uber's 2016 complaint). A clustered engine's \
                   secondary indexes hold the primary key, which an update does not change: an \
                   update of a non-indexed column writes no secondary entry, so its cost stays \
                   flat as indexes are added. HOT removes the heap's index writes when the new \
                   version fits on the old one's page, and a fillfactor below 100 leaves room \
                   so that it does; at fillfactor 100 a full page forces the first update of \
                   each page off the page (non-HOT)."
            .into(),
        sections: vec![
            Section {
                heading: "Cost of an update of a non-indexed column, by file".into(),
                text: "KiB written to storage per update (ledger write bytes over updates, \
                       every file, the log included), split by file (`-`: the engine has no \
                       such file); index entries written per update (the heap: entries \
                       inserted into any index, the primary key's included; the clustered \
                       engines: secondary entries written by updates); the share of the \
                       heap's updates that were HOT; bytes of log records appended per update \
                       (full-page images included; the log file's writes in the `log` column \
                       are larger, see the findings); median latency."
                    .into(),
                table: Some(by_file),
                plot: Some(plot),
            },
            Section {
                heading: "Cost by cause".into(),
                text: "The same KiB written per update, split by why the ledger says each \
                       write happened: log records (`wal`), full-page images (`fpi`), dirty \
                       pages written to free a frame (`eviction`) or by the checkpoint, the \
                       LSM's memtable flushes and compactions; page reads per update; the \
                       heap's page prunes per update (each logs a page image). The plot shows \
                       index entries written per update."
                    .into(),
                table: Some(by_cause),
                plot: Some(entries_plot),
            },
            Section {
                heading: "For reference: updates of an indexed column".into(),
                text: format!(
                    "{indexed_updates} updates of `c0` (covered by `ix0`) on the tables above, \
                     after their measured phase. No engine can avoid writing `ix0` here, and no \
                     such update can be HOT."
                ),
                table: Some(indexed_table),
                plot: Some(indexed_plot),
            },
        ],
        findings,
        verdict,
    }
}

fn findings(points: &[Point]) -> (Vec<String>, Verdict) {
    let mut findings = Vec::new();
    let k_max = *INDEX_COUNTS.last().expect("index counts");
    let get = |s, k| find(points, s, k, Target::NonIndexed);
    let (Some(nohot0), Some(nohot), Some(cl0), Some(cl), Some(ff70), Some(ff90), Some(ff100)) = (
        get(HEAP_NO_HOT, 0),
        get(HEAP_NO_HOT, k_max),
        get(Setting::Clustered, 0),
        get(Setting::Clustered, k_max),
        get(HEAP_FF70, k_max),
        get(HEAP_FF90, k_max),
        get(HEAP_FF100, k_max),
    ) else {
        return (findings, Verdict::default());
    };
    let nohot_growth = nohot.kib() / nohot0.kib();
    let cl_growth = cl.kib() / cl0.kib();

    let nohot_entries: Vec<String> = INDEX_COUNTS
        .iter()
        .filter_map(|&k| {
            get(HEAP_NO_HOT, k).map(|p| format!("{} at k = {k}", num(p.entries_per_update())))
        })
        .collect();
    findings.push(format!(
        "Without HOT, the heap inserted index entries per update: {}; one per index, the \
         primary key's included, although no indexed column changed. Its writes per update \
         went from {} KiB with no secondary index to {} KiB with {k_max} ({}); the secondary \
         index files alone took {} KiB per update at k = {k_max}, and the log records appended \
         grew from {} to {} bytes per update.",
        nohot_entries.join(", "),
        num(nohot0.kib()),
        num(nohot.kib()),
        ratio(nohot.kib(), nohot0.kib()),
        num(nohot.secondary_kib()),
        num(nohot0.log_appended()),
        num(nohot.log_appended()),
    ));
    findings.push(format!(
        "The clustered engine wrote {} secondary entries per update at k = {k_max} (its \
         secondary indexes hold the primary key, which did not change) and {} KiB per update \
         to the secondary index files; its total went from {} KiB at k = 0 to {} KiB at k = \
         {k_max} ({}), against {} for the heap without HOT. At k = {k_max} the heap without \
         HOT wrote {} as much per update as the clustered engine.",
        num(cl.entries_per_update()),
        num(cl.secondary_kib()),
        num(cl0.kib()),
        num(cl.kib()),
        ratio(cl.kib(), cl0.kib()),
        ratio(nohot.kib(), nohot0.kib()),
        ratio(nohot.kib(), cl.kib()),
    ));
    findings.push(format!(
        "With HOT, at k = {k_max}: fillfactor 70 made {}% of updates HOT ({} index entries per \
         update, {} KiB written), fillfactor 90 {}% ({} entries, {} KiB), fillfactor 100 {}% \
         ({} entries, {} KiB).{}",
        num(ff70.hot_pct()),
        num(ff70.entries_per_update()),
        num(ff70.kib()),
        num(ff90.hot_pct()),
        num(ff90.entries_per_update()),
        num(ff90.kib()),
        num(ff100.hot_pct()),
        num(ff100.entries_per_update()),
        num(ff100.kib()),
        if ff100.hot_pct() < 100.0 {
            " At fillfactor 100 the first update of a full page cannot stay on it and is \
             non-HOT; the dead version it leaves behind is pruned to make room for the page's \
             later updates, which are HOT."
        } else {
            ""
        },
    ));
    if let (Some(f100), Some(f70)) = (get(HEAP_FF100, 0), get(HEAP_FF70, 0)) {
        findings.push(format!(
            "A HOT update that finds its page full prunes it first, and storelab logs a pruned \
             page as a whole page image (PostgreSQL logs a compact prune record): at k = 0 the \
             heap pruned {} pages per update at fillfactor 100 against {} at fillfactor 70, \
             and appended {} bytes of log per update against {}. Free space on the page saves \
             log volume as well as index entries.",
            num(f100.prunes_per_update()),
            num(f70.prunes_per_update()),
            num(f100.log_appended()),
            num(f70.log_appended()),
        ));
    }
    let causes = ["wal", "fpi", "eviction", "checkpoint"];
    let split = |p: &Point| {
        causes
            .iter()
            .map(|c| format!("{} {c}", num(metrics::cause_write_kib(&p.run, c))))
            .collect::<Vec<_>>()
            .join(", ")
    };
    // Which cause grew most between 0 and k_max indexes without HOT.
    let growth_by_cause: Vec<(&str, f64)> = causes
        .iter()
        .map(|&c| {
            (
                c,
                metrics::cause_write_kib(&nohot.run, c) - metrics::cause_write_kib(&nohot0.run, c),
            )
        })
        .collect();
    let (top_cause, top_growth) = growth_by_cause
        .iter()
        .copied()
        .fold(("none", f64::MIN), |a, b| if b.1 > a.1 { b } else { a });
    let extra = nohot.kib() - nohot0.kib();
    findings.push(format!(
        "By cause, at k = {k_max}, the heap without HOT wrote {} KiB per update ({}) and read \
         {} pages per update; the clustered engine {} KiB ({}) and read {}. Of the {} KiB per \
         update the heap without HOT added from k = 0 to {k_max}, `{top_cause}` grew most \
         ({} KiB, {:.0}%): {}.",
        num(nohot.kib()),
        split(nohot),
        num(metrics::reads(&nohot.run)),
        num(cl.kib()),
        split(cl),
        num(metrics::reads(&cl.run)),
        num(extra),
        num(top_growth),
        100.0 * top_growth / extra,
        match top_cause {
            "eviction" =>
                "with the table larger than the pool, an index leaf an update dirties \
                           at random is usually evicted, and written, before another update \
                           dirties it again",
            "fpi" =>
                "the first change of each index leaf after a checkpoint logs the whole \
                      leaf",
            "wal" => "each index entry is a log record of its own",
            _ => "the checkpoint writes every leaf the updates dirtied",
        },
    ));
    let mut log_ratios: Vec<f64> = points
        .iter()
        .filter(|p| p.target == Target::NonIndexed && p.log_appended() > 0.0)
        .map(|p| p.log_kib() * 1024.0 / p.log_appended())
        .collect();
    log_ratios.sort_by(f64::total_cmp);
    if let (Some(lo), Some(hi)) = (log_ratios.first(), log_ratios.last()) {
        findings.push(format!(
            "The log file's writes (`log` column) were {lo:.2} to {hi:.2} times the log \
             records appended, median {:.2}: each flush (by the background writer, or before a \
             dirty page is written back, the write-ahead rule) writes whole 4 KiB blocks and \
             rewrites the partial last one, and each new 16 MiB log segment is zero-filled \
             when created; both are charged to `wal`. They depend on timing and on where a \
             phase crosses a segment boundary, so the `wal` column varies between points more \
             than the records appended do.",
            log_ratios[log_ratios.len() / 2],
        ));
    }
    let lsm_points: Vec<&Point> = INDEX_COUNTS
        .iter()
        .filter_map(|&k| get(Setting::Lsm, k))
        .collect();
    if let Some(lsm) = get(Setting::Lsm, k_max) {
        let kib: Vec<f64> = lsm_points.iter().map(|p| p.kib()).collect();
        let lo = kib.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = kib.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        findings.push(format!(
            "The LSM wrote {} to {} KiB per update across the index counts, {} secondary \
             entries per update at k = {k_max}: an update is one new primary entry in the \
             memtable, reaching storage in sequential flushes ({} KiB per update) after {} KiB \
             of log. Compactions in the phase, by k: {}{}. Later compactions will rewrite \
             these versions again as they move down the levels.",
            num(lo),
            num(hi),
            num(lsm.entries_per_update()),
            num(metrics::cause_write_kib(&lsm.run, "flush")),
            num(lsm.log_kib()),
            lsm_points
                .iter()
                .map(|p| format!("{} at k = {}", p.d("lsm_compactions"), p.k))
                .collect::<Vec<_>>()
                .join(", "),
            if lsm_points
                .iter()
                .any(|p| p.d("lsm_compactions") != lsm.d("lsm_compactions"))
            {
                "; whether a compaction falls in a phase depends on how many level-0 tables \
                 the load left, which makes the LSM's line lumpy"
            } else {
                ""
            },
        ));
    }
    let indexed_max = |s| find(points, s, k_max, Target::Indexed);
    if let (Some(hi), Some(ci)) = (indexed_max(HEAP_FF70), indexed_max(Setting::Clustered)) {
        findings.push(format!(
            "Updating the indexed column `c0` instead (k = {k_max}): the heap at fillfactor 70 \
             wrote {} index entries per update ({} KiB) since such an update cannot be HOT; the \
             clustered engine wrote {} (delete the old `ix0` entry, insert the new) for {} KiB.",
            num(hi.entries_per_update()),
            num(hi.kib()),
            num(ci.entries_per_update()),
            num(ci.kib()),
        ));
    }

    // The textbook's three claims, each a comparison of measured numbers.
    let claims = [
        (
            nohot_growth > cl_growth
                && (nohot.entries_per_update() - (k_max as f64 + 1.0)).abs() < 0.01
                && cl.entries_per_update() == 0.0,
            format!(
                "without HOT the heap's cost should grow with the indexes and the clustered \
                 engine's should not: the heap's went {} from k = 0 to {k_max} with {} index \
                 entries per update, the clustered engine's {} with {} secondary entries",
                ratio(nohot.kib(), nohot0.kib()),
                num(nohot.entries_per_update()),
                ratio(cl.kib(), cl0.kib()),
                num(cl.entries_per_update()),
            ),
        ),
        (
            ff70.kib() < nohot.kib() && ff70.entries_per_update() < nohot.entries_per_update(),
            format!(
                "HOT with room on the page should remove the index writes: at k = {k_max} the \
                 heap at fillfactor 70 wrote {} KiB and {} index entries per update against {} \
                 KiB and {} without HOT",
                num(ff70.kib()),
                num(ff70.entries_per_update()),
                num(nohot.kib()),
                num(nohot.entries_per_update()),
            ),
        ),
        (
            ff70.hot_pct() > ff100.hot_pct(),
            format!(
                "a fillfactor below 100 should make more updates HOT: {}% at fillfactor 70, \
                 {}% at 100",
                num(ff70.hot_pct()),
                num(ff100.hot_pct()),
            ),
        ),
    ];
    let held: Vec<&str> = claims
        .iter()
        .filter(|c| c.0)
        .map(|c| c.1.as_str())
        .collect();
    let failed: Vec<&str> = claims
        .iter()
        .filter(|c| !c.0)
        .map(|c| c.1.as_str())
        .collect();
    let verdict = if failed.is_empty() {
        Verdict::Agrees(format!(
            "All three parts held: {}. At k = {k_max} the heap wrote {} KiB per update with HOT \
             at fillfactor 70 and {} without HOT, the clustered engine {}.",
            held.join("; "),
            num(ff70.kib()),
            num(nohot.kib()),
            num(cl.kib()),
        ))
    } else if held.is_empty() {
        Verdict::Contradicts(format!(
            "None of the three parts held: {}. The tables above show where the bytes went.",
            failed.join("; ")
        ))
    } else {
        Verdict::Mixed(format!(
            "Held: {}. Did not hold: {}. The tables above show where the bytes went.",
            held.join("; "),
            failed.join("; ")
        ))
    };
    (findings, verdict)
}
