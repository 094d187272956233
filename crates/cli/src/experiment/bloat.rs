//! Experiment 9: update-heavy bloat and vacuum cost over time.
//!
//! A table (primary key, an indexed group column, a number and a text of about 100 bytes) is
//! bulk-loaded into each engine and then updated at random keys, in ten equal intervals. Every
//! update rewrites the text with a new length within 10% of the original (the row's size
//! changes a little, or not), and one update in four also moves the row to another group, an
//! indexed column. After each interval (which ends with a checkpoint) the experiment measures
//! the table's size on disk, file by file, the heap's dead tuples, and the interval's I/O:
//! bytes written by cause, the log, and what VACUUM or compaction cost.
//!
//! Configurations: the heap with inline autovacuum (PostgreSQL's trigger, 50 dead tuples plus
//! 20% of the rows), the heap with autovacuum off and one VACUUM at the end (measured on its
//! own), the clustered B+tree, which updates rows in place, and the LSM, whose compactions
//! drop overwritten versions.
//!
//! An out-of-place design leaves a dead version behind on every update: the heap's dead
//! tuples and index entries stay until VACUUM removes them (page pruning frees the tuples'
//! bytes on the page early, but not their line pointers or index entries), and the LSM's old
//! versions stay until a compaction merges them with the new ones. A B+tree that updates in
//! place has nothing to reclaim; it grows only where a longer row splits a full leaf.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_table::{ColumnType, Engine, Row, Schema, StorageConfig, Table, Value};
use storelab_wal::Wal;
use storelab_workload::{OpOutcome, PhaseResult};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, Series, TextTable, Verdict, metrics};

/// Measured intervals per configuration.
const INTERVALS: u64 = 10;
/// Length of the text column at load; updates draw a new one within 10% of it.
const NOTE_BYTES: usize = 100;
/// Largest change of the text's length an update makes, in bytes (10%).
const NOTE_BYTES_DELTA_MAX: usize = NOTE_BYTES / 10;
/// Rows per group (the indexed column's selectivity).
const ROWS_PER_GROUP: u64 = 10;
/// One update in this many also changes the indexed group column.
const INDEXED_UPDATE_EVERY: u32 = 4;
/// Column numbers: `id`, `grp`, `val`, `note`.
const GRP_COLUMN: usize = 1;
const VAL_COLUMN: usize = 2;
const NOTE_COLUMN: usize = 3;
/// Growth below this share of the loaded size (in percent) is noise, not bloat: a few
/// pages of a file extended by one allocation.
const NEGLIGIBLE_GROWTH_PCT: f64 = 1.0;
/// The name of a phase's appended log bytes among its counters.
const LOG_APPENDED: &str = "phase_log_bytes_appended";
/// Bytes per MiB, for sizes in the report.
const MIB: f64 = (1u64 << 20) as f64;

/// One configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Setting {
    /// The heap with inline autovacuum.
    HeapAutovacuum,
    /// The heap with autovacuum off; one VACUUM at the end.
    HeapNoVacuum,
    /// The clustered B+tree.
    Clustered,
    /// The LSM.
    Lsm,
}

impl Setting {
    const ALL: [Setting; 4] = [
        Setting::HeapAutovacuum,
        Setting::HeapNoVacuum,
        Setting::Clustered,
        Setting::Lsm,
    ];

    fn label(self) -> &'static str {
        match self {
            Setting::HeapAutovacuum => "heap, autovacuum",
            Setting::HeapNoVacuum => "heap, no vacuum",
            Setting::Clustered => "clustered",
            Setting::Lsm => "lsm",
        }
    }

    fn engine(self) -> &'static str {
        match self {
            Setting::HeapAutovacuum | Setting::HeapNoVacuum => "heap",
            Setting::Clustered => "clustered",
            Setting::Lsm => "lsm",
        }
    }

    fn dir_name(self) -> &'static str {
        match self {
            Setting::HeapAutovacuum => "heap-autovacuum",
            Setting::HeapNoVacuum => "heap-novacuum",
            Setting::Clustered => "clustered",
            Setting::Lsm => "lsm",
        }
    }

    /// What the final maintenance step is (`None`: there is none).
    fn maintenance(self) -> Option<&'static str> {
        match self {
            Setting::HeapNoVacuum => Some("VACUUM"),
            _ => None,
        }
    }

    /// Opens a database of this setting in `dir`, with its log (whose insert position gives
    /// the bytes of log records appended).
    fn open(self, dir: &Path, config: &StorageConfig) -> Result<(Box<dyn Engine>, Arc<Wal>)> {
        Ok(match self {
            Setting::HeapAutovacuum | Setting::HeapNoVacuum => {
                let db = storelab_heap::HeapEngine::open(
                    dir,
                    config,
                    storelab_heap::HeapOptions {
                        // Inline: VACUUM runs in the write that crossed the trigger, so its
                        // I/O falls in the interval that caused it.
                        autovacuum: self == Setting::HeapAutovacuum,
                        autovacuum_background: false,
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
                            // Flushes and compactions inline: their I/O falls in the interval
                            // that made them due, and the size measured after an interval
                            // is not racing a background thread.
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

fn schema() -> Schema {
    Schema::builder("bloat")
        .column("id", ColumnType::Int64)
        .column("grp", ColumnType::Int64)
        .column("val", ColumnType::Int64)
        .column("note", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_grp", &["grp"], false)
        .build()
        .expect("a valid schema")
}

fn row(n: u64, groups: u64) -> Row {
    vec![
        Value::Int(n as i64),
        Value::Int((storelab_workload::fnv1a64(n) % groups) as i64),
        Value::Int(0),
        Value::Text("n".repeat(NOTE_BYTES)),
    ]
}

/// The table's state after an interval (or after the load: interval 0).
#[derive(Clone, Debug)]
struct Sample {
    updates_done: u64,
    size_bytes: u64,
    /// Bytes per file, by the engine's descriptive name (`heap`, `primary`, ...).
    file_bytes: BTreeMap<String, u64>,
    /// The heap's dead tuples as autovacuum counts them (0 for the others).
    dead_tuples: u64,
}

/// One configuration's run.
struct Run {
    setting: Setting,
    samples: Vec<Sample>,
    /// The intervals' phases, in order.
    intervals: Vec<PhaseResult>,
    /// Counter deltas over all the intervals.
    delta: BTreeMap<String, u64>,
    /// Log bytes appended over all the intervals.
    log_appended: u64,
    /// The final VACUUM, if any, and the size after it.
    maintenance: Option<(PhaseResult, Sample)>,
    /// Live user bytes (rows times bytes per row) at the end.
    live_bytes: u64,
}

impl Run {
    fn updates(&self) -> f64 {
        self.samples.last().map_or(0, |s| s.updates_done).max(1) as f64
    }

    fn d(&self, name: &str) -> u64 {
        self.delta.get(name).copied().unwrap_or(0)
    }

    fn load_size(&self) -> u64 {
        self.samples.first().map_or(0, |s| s.size_bytes)
    }

    fn final_size(&self) -> u64 {
        self.samples.last().map_or(0, |s| s.size_bytes)
    }

    /// Growth of the largest size seen, over the first half of the intervals and over the
    /// second, in bytes: a size that rises and falls (an LSM between compactions) counts by
    /// its peaks, not by where the last interval happened to leave it.
    fn halves(&self) -> (f64, f64) {
        let peak = |n: usize| {
            self.samples[..=n]
                .iter()
                .map(|s| s.size_bytes)
                .max()
                .unwrap_or(0) as f64
        };
        let mid = self.samples.len() / 2;
        let end = self.samples.len() - 1;
        (peak(mid) - self.load_size() as f64, peak(end) - peak(mid))
    }

    /// Whether the size levelled off: its peak grew in the second half of the run by less
    /// than half of what it grew in the first half, or by less than
    /// [`NEGLIGIBLE_GROWTH_PCT`] of the size after the load.
    fn plateaued(&self) -> bool {
        let (first, second) = self.halves();
        second < 0.5 * first || second <= self.noise_floor()
    }

    /// Growth that counts as noise: [`NEGLIGIBLE_GROWTH_PCT`] of the loaded size, in bytes.
    fn noise_floor(&self) -> f64 {
        NEGLIGIBLE_GROWTH_PCT / 100.0 * self.load_size() as f64
    }

    /// How the levelling-off rule applied, for the verdict's text.
    fn plateau_note(&self) -> String {
        let (first, second) = self.halves();
        if second > 0.0 && second >= 0.5 * first && second <= self.noise_floor() {
            format!(
                " (growth under the {NEGLIGIBLE_GROWTH_PCT}% noise floor of {} MiB)",
                num(self.noise_floor() / MIB)
            )
        } else {
            String::new()
        }
    }

    /// KiB written per update over all the intervals, for `cause` (`None`: all).
    fn kib(&self, cause: Option<&str>) -> f64 {
        let bytes: u64 = self
            .intervals
            .iter()
            .map(|r| match cause {
                None => r.io.total.write_bytes,
                Some(c) => r.io.by_cause.get(c).map_or(0, |io| io.write_bytes),
            })
            .sum();
        bytes as f64 / 1024.0 / self.updates()
    }

    fn space_amplification(&self) -> f64 {
        self.final_size() as f64 / self.live_bytes.max(1) as f64
    }
}

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

fn sample(table: &dyn Table, updates_done: u64) -> Result<Sample> {
    let stats = table.stats()?;
    Ok(Sample {
        updates_done,
        size_bytes: stats.size_bytes(),
        dead_tuples: stats.counters.get("dead_tuples").copied().unwrap_or(0),
        file_bytes: stats.file_bytes,
    })
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(50_000, 1_000);
    let updates = ctx.scaled(300_000, 3_000);
    let per_interval = updates.div_ceil(INTERVALS);
    let groups = (rows / ROWS_PER_GROUP).max(1);
    let mut config = ctx.storage();
    // Bloat is about space and maintenance, not commit latency: commits are acknowledged
    // before their sync (the log is still written).
    config.commit_mode = storelab_wal::CommitMode::Off;
    // A pool of about a quarter of the loaded table (~150 bytes a row with its indexes), so
    // VACUUM's passes over the heap and the indexes read from storage.
    config.pool_bytes = ((rows * 40) as usize).max(2 << 20);
    let row_user_bytes = super::row_bytes(&row(0, groups));
    let mut runs = Vec::new();
    for setting in Setting::ALL {
        let dir = ctx.fresh_dir(setting.dir_name())?;
        let (db, wal) = setting.open(&dir, &config)?;
        let table = db.create_table(schema())?;
        let load = storelab_workload::measure(&*db, &*table, "load", "load", 1, |_| {
            let mut it = (0..rows).map(|n| row(n, groups));
            let n = table.load(&mut it)?;
            if setting == Setting::Lsm {
                // Start with no flush or compaction pending, as the others start from their
                // packed, checkpointed files.
                table.maintain()?;
            }
            db.checkpoint()?;
            Ok(OpOutcome {
                rows: n,
                bytes_written: n * row_user_bytes,
            })
        })?;
        let mut samples = vec![sample(&*table, 0)?];
        let before = table.stats()?.counters;
        let lsn_before = wal.insert_lsn().0;
        let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0xB10A7);
        let mut intervals = Vec::new();
        let pb = ctx.bar(updates, setting.label());
        let mut done = 0u64;
        for interval in 1..=INTERVALS {
            let n = per_interval.min(updates - done);
            if n == 0 {
                break;
            }
            let interval_before = table.stats()?.counters;
            let interval_lsn = wal.insert_lsn().0;
            let mut phase = storelab_workload::measure(
                &*db,
                &*table,
                &format!("bloat-interval-{interval}"),
                "update",
                n,
                |i| {
                    let key = rng.random_range(0..rows) as i64;
                    let len = rng.random_range(
                        NOTE_BYTES - NOTE_BYTES_DELTA_MAX..=NOTE_BYTES + NOTE_BYTES_DELTA_MAX,
                    );
                    let mut changes = vec![
                        (VAL_COLUMN, Value::Int((done + i) as i64)),
                        (NOTE_COLUMN, Value::Text("u".repeat(len))),
                    ];
                    if rng.random_ratio(1, INDEXED_UPDATE_EVERY) {
                        changes.push((GRP_COLUMN, Value::Int(rng.random_range(0..groups) as i64)));
                    }
                    let user_bytes = 8 * (changes.len() as u64 - 1) + len as u64;
                    let found = table.update(&[Value::Int(key)], &changes)?;
                    assert!(found, "key {key} was loaded");
                    if i + 1 == n {
                        // The interval's dirty pages (and the LSM's memtable) reach the files
                        // before their size is read.
                        db.checkpoint()?;
                    }
                    pb.set_position(done + i + 1);
                    Ok(OpOutcome {
                        rows: 1,
                        bytes_written: user_bytes,
                    })
                },
            )?;
            done += n;
            for (k, v) in deltas(&interval_before, &phase.counters) {
                phase.counters.insert(format!("phase_{k}"), v);
            }
            phase.counters.insert(
                LOG_APPENDED.into(),
                wal.insert_lsn().0.saturating_sub(interval_lsn),
            );
            let s = sample(&*table, done)?;
            let params = [
                ("setting", setting.label().into()),
                ("interval", interval.into()),
                ("updates_done", done.into()),
                ("rows", rows.into()),
                ("dead_tuples", s.dead_tuples.into()),
            ];
            ctx.record(
                setting.engine(),
                &params,
                &config,
                Some(load.clone()),
                phase.clone(),
            );
            intervals.push(phase);
            samples.push(s);
        }
        pb.finish_and_clear();
        let after = table.stats()?;
        let delta = deltas(&before, &after.counters);
        let log_appended = wal.insert_lsn().0.saturating_sub(lsn_before);
        let live_bytes = after.row_count * row_user_bytes;
        ctx.verify(&*db)?;
        let maintenance = match setting.maintenance() {
            Some(what) => {
                ctx.note(&format!("{}: {what}", setting.label()));
                let maintenance_before = table.stats()?.counters;
                let lsn_before = wal.insert_lsn().0;
                let mut phase = storelab_workload::measure(
                    &*db,
                    &*table,
                    &format!("bloat-{}", what.replace(' ', "-")),
                    "maintain",
                    1,
                    |_| {
                        table.maintain()?;
                        db.checkpoint()?;
                        Ok(OpOutcome::default())
                    },
                )?;
                for (k, v) in deltas(&maintenance_before, &phase.counters) {
                    phase.counters.insert(format!("phase_{k}"), v);
                }
                phase.counters.insert(
                    LOG_APPENDED.into(),
                    wal.insert_lsn().0.saturating_sub(lsn_before),
                );
                let s = sample(&*table, done)?;
                let params = [
                    ("setting", setting.label().into()),
                    ("maintenance", what.into()),
                    ("updates_done", done.into()),
                    ("rows", rows.into()),
                ];
                ctx.record(
                    setting.engine(),
                    &params,
                    &config,
                    Some(load.clone()),
                    phase.clone(),
                );
                ctx.verify(&*db)?;
                Some((phase, s))
            }
            None => None,
        };
        runs.push(Run {
            setting,
            samples,
            intervals,
            delta,
            log_appended,
            maintenance,
            live_bytes,
        });
        drop(table);
        drop(db);
        ctx.discard(&dir);
    }
    Ok(report(&runs, rows, updates, &config))
}

fn mib(bytes: u64) -> String {
    num(bytes as f64 / MIB)
}

/// What VACUUM did and cost in one heap configuration, over the intervals (autovacuum) or in
/// the final run.
struct VacuumCost {
    runs: u64,
    pages_scanned: u64,
    index_entries_removed: u64,
    line_pointers_freed: u64,
    pages_read: u64,
    write_bytes: u64,
    log_appended: u64,
    /// Seconds, when VACUUM was measured as its own phase.
    seconds: Option<f64>,
}

impl VacuumCost {
    /// Autovacuum's runs inside the intervals.
    fn of_intervals(r: &Run) -> VacuumCost {
        VacuumCost {
            runs: r.d("vacuum_runs"),
            pages_scanned: r.d("vacuum_pages_scanned"),
            index_entries_removed: r.d("vacuum_index_entries_removed"),
            line_pointers_freed: r.d("vacuum_dead_line_pointers_freed"),
            pages_read: r.d("vacuum_io_read_count"),
            write_bytes: r.d("vacuum_io_write_bytes"),
            log_appended: r.d("vacuum_log_bytes_appended"),
            seconds: None,
        }
    }

    /// The VACUUM measured after the last interval.
    fn of_final(phase: &PhaseResult) -> VacuumCost {
        let c = |name: &str| metrics::counter(phase, &format!("phase_{name}"));
        VacuumCost {
            runs: c("vacuum_runs"),
            pages_scanned: c("vacuum_pages_scanned"),
            index_entries_removed: c("vacuum_index_entries_removed"),
            line_pointers_freed: c("vacuum_dead_line_pointers_freed"),
            pages_read: phase.io.total.read_count,
            write_bytes: phase.io.total.write_bytes,
            log_appended: metrics::counter(phase, LOG_APPENDED),
            seconds: Some(phase.elapsed_s),
        }
    }

    fn log_per_entry(&self) -> f64 {
        self.log_appended as f64 / self.index_entries_removed.max(1) as f64
    }
}

/// KiB written per update by the configuration's maintenance within the intervals: VACUUM
/// (the ledger's traffic while it ran) or compaction (cause `compaction`); NaN for none.
fn maintenance_kib(r: &Run) -> f64 {
    match r.setting {
        Setting::HeapAutovacuum | Setting::HeapNoVacuum => {
            r.d("vacuum_io_write_bytes") as f64 / 1024.0 / r.updates()
        }
        Setting::Lsm => r.kib(Some("compaction")),
        Setting::Clustered => f64::NAN,
    }
}

fn maintenance_runs(r: &Run) -> String {
    match r.setting {
        Setting::HeapAutovacuum | Setting::HeapNoVacuum => {
            format!("{} VACUUM", r.d("vacuum_runs"))
        }
        Setting::Lsm => format!("{} compactions", r.d("lsm_compactions")),
        Setting::Clustered => "none".into(),
    }
}

fn report(runs: &[Run], rows: u64, updates: u64, config: &StorageConfig) -> Report {
    // Size after each interval, one column per configuration.
    let mut headers = vec!["updates done".to_string()];
    headers.extend(runs.iter().map(|r| format!("{} (MiB)", r.setting.label())));
    headers.push("heap dead tuples (autovacuum / no vacuum)".into());
    let mut over_time = TextTable {
        headers,
        rows: Vec::new(),
    };
    let steps = runs.iter().map(|r| r.samples.len()).max().unwrap_or(0);
    for i in 0..steps {
        let mut cells = vec![
            runs.first()
                .and_then(|r| r.samples.get(i))
                .map_or("-".into(), |s| s.updates_done.to_string()),
        ];
        for r in runs {
            cells.push(r.samples.get(i).map_or("-".into(), |s| mib(s.size_bytes)));
        }
        let dead = |s: Setting| {
            runs.iter()
                .find(|r| r.setting == s)
                .and_then(|r| r.samples.get(i))
                .map_or("-".into(), |x| x.dead_tuples.to_string())
        };
        cells.push(format!(
            "{} / {}",
            dead(Setting::HeapAutovacuum),
            dead(Setting::HeapNoVacuum)
        ));
        over_time.row(cells);
    }

    let mut finals = TextTable::new(&[
        "configuration",
        "after load (MiB)",
        "final (MiB)",
        "growth",
        "space amplification",
        "files at the end (MiB)",
        "KiB written/update",
        "log appended (B/update)",
        "log written (KiB/update)",
        "maintenance in the run",
        "its KiB written/update",
    ]);
    for r in runs {
        let files = r
            .samples
            .last()
            .map(|s| {
                s.file_bytes
                    .iter()
                    .map(|(k, v)| format!("{k} {}", mib(*v)))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        finals.row(vec![
            r.setting.label().into(),
            mib(r.load_size()),
            mib(r.final_size()),
            ratio(r.final_size() as f64, r.load_size() as f64),
            format!("{:.2}", r.space_amplification()),
            files,
            num(r.kib(None)),
            num(r.log_appended as f64 / r.updates()),
            num(r.kib(Some("wal")) + r.kib(Some("fpi"))),
            maintenance_runs(r),
            num(maintenance_kib(r)),
        ]);
    }

    let mut by_cause = TextTable::new(&[
        "configuration",
        "wal",
        "fpi",
        "eviction",
        "checkpoint",
        "flush",
        "compaction",
        "pages read/update",
        "updates/s",
    ]);
    for r in runs {
        let c = |cause: &str| num(r.kib(Some(cause)));
        let reads: u64 = r.intervals.iter().map(|p| p.io.total.read_count).sum();
        let secs: f64 = r.intervals.iter().map(|p| p.elapsed_s).sum();
        by_cause.row(vec![
            r.setting.label().into(),
            c("wal"),
            c("fpi"),
            c("eviction"),
            c("checkpoint"),
            c("flush"),
            c("compaction"),
            num(reads as f64 / r.updates()),
            num(r.updates() / secs.max(1e-9)),
        ]);
    }

    let mut vacuum = TextTable::new(&[
        "VACUUM",
        "runs",
        "heap pages scanned",
        "index entries removed",
        "line pointers freed",
        "pages read",
        "MiB written",
        "log appended (MiB)",
        "log appended per entry removed (B)",
        "seconds",
        "size after (MiB)",
    ]);
    let mut vacuum_row = |what: &str, v: &VacuumCost, after: u64| {
        vacuum.row(vec![
            what.into(),
            v.runs.to_string(),
            v.pages_scanned.to_string(),
            v.index_entries_removed.to_string(),
            v.line_pointers_freed.to_string(),
            v.pages_read.to_string(),
            mib(v.write_bytes),
            mib(v.log_appended),
            num(v.log_per_entry()),
            v.seconds.map_or("-".into(), |s| format!("{s:.2}")),
            mib(after),
        ]);
    };
    for r in runs {
        match (r.setting, &r.maintenance) {
            (Setting::HeapAutovacuum, _) => vacuum_row(
                "autovacuum, all runs in the intervals",
                &VacuumCost::of_intervals(r),
                r.final_size(),
            ),
            (Setting::HeapNoVacuum, Some((phase, after))) => vacuum_row(
                "one run after the last interval (no autovacuum)",
                &VacuumCost::of_final(phase),
                after.size_bytes,
            ),
            _ => {}
        }
    }

    let series = runs
        .iter()
        .map(|r| Series {
            name: r.setting.label().into(),
            points: r
                .samples
                .iter()
                .map(|s| (s.updates_done as f64, s.size_bytes as f64 / MIB))
                .collect(),
        })
        .collect();
    let plot = Plot {
        file: "size_over_time.svg".into(),
        title: "Size on disk under a stream of updates".into(),
        x_label: "updates done".into(),
        y_label: "size on disk (MiB)".into(),
        log_y: false,
        kind: PlotKind::Lines {
            series,
            log_x: false,
        },
    };
    let cost_plot = Plot {
        file: "kib_written_per_update.svg".into(),
        title: "KiB written per update, by cause".into(),
        x_label: "configuration".into(),
        y_label: "KiB written per update".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories: runs.iter().map(|r| r.setting.label().to_string()).collect(),
            series: [
                "wal",
                "fpi",
                "eviction",
                "checkpoint",
                "flush",
                "compaction",
            ]
            .iter()
            .map(|c| (c.to_string(), runs.iter().map(|r| r.kib(Some(c))).collect()))
            .collect(),
        },
    };

    let (findings, verdict) = findings(runs, config.page_size.bytes() as u64);
    Report {
        setup: vec![
            format!(
                "A table `bloat` (`id` primary key, `grp` indexed by `by_grp` with \
                 {ROWS_PER_GROUP} rows per group, `val`, `note` of {NOTE_BYTES} bytes): {rows} \
                 rows bulk-loaded into each engine (the LSM then flushed and compacted until \
                 no compaction was due), then a checkpoint."
            ),
            format!(
                "{updates} updates at uniformly random keys in {INTERVALS} intervals, one commit \
                 each: every update sets `val` and rewrites `note` with a length drawn from \
                 {}..={} bytes (the row's size changes a little or not); one in \
                 {INDEXED_UPDATE_EVERY} also changes `grp`, an indexed column. Each interval \
                 ends with a checkpoint (the LSM's memtable is flushed), then the size of the \
                 table's files is read.",
                NOTE_BYTES - NOTE_BYTES_DELTA_MAX,
                NOTE_BYTES + NOTE_BYTES_DELTA_MAX,
            ),
            "Configurations: heap with inline autovacuum (PostgreSQL's trigger: dead tuples \
             above 50 + 20% of the rows; VACUUM runs inside the write that crossed it), heap \
             with autovacuum off and one VACUUM after the last interval (measured on its own), \
             clustered B+tree, LSM (default leveled tree, flushes and compactions inline, so \
             their I/O falls in the interval that caused it). Both heaps at fillfactor 100, \
             HOT on."
                .into(),
            format!(
                "Storage: buffer pool {} KiB (about a quarter of the loaded table; the LSM's \
                 block cache gets the same budget), commits acknowledged before their sync \
                 (`commit_mode = off`: this is about space, not commit latency), full-page \
                 images on. Space amplification is size on disk over live user bytes (rows \
                 times {} bytes). VACUUM's I/O is the whole database's ledger traffic while it \
                 ran (the pool charges it to no `vacuum` cause), and the log it appended.",
                config.pool_bytes / 1024,
                NOTE_BYTES + 24,
            ),
        ],
        expected: format!(
            "Out-of-place updates leave dead versions. Without VACUUM a heap keeps every dead \
             tuple's line pointer and index entries, and so grows without bound under \
             updates; with (auto)vacuum it levels off at a size set by the trigger, paying for \
             VACUUM's passes over the heap and every index. A clustered B+tree updates rows in \
             place: nothing to reclaim, no growth beyond the page splits that longer rows \
             cause. An LSM writes each update as a new version; compaction drops the old ones, \
             so its size stays bounded. Here a size counts as levelled off when its peak grew \
             in the second half of the run by less than half of what it grew in the first \
             half, or by less than {NEGLIGIBLE_GROWTH_PCT}% of the loaded size."
        ),
        sections: vec![
            Section {
                heading: "Size on disk over time".into(),
                text: "Size of the table's files (heap and indexes; the clustered engine's \
                       trees; the LSM's tables) after the load and after each interval, and \
                       the heap's dead tuples as autovacuum counts them (versions left by \
                       updates since the last VACUUM, pruned or not)."
                    .into(),
                table: Some(over_time),
                plot: Some(plot),
            },
            Section {
                heading: "Final sizes and what they cost".into(),
                text: "Growth is the final size over the size after the load. Maintenance in \
                       the run is autovacuum for the heap (KiB written by the database while \
                       it ran) and compaction for the LSM (cause `compaction`); the final \
                       VACUUM of the heap without autovacuum is in the last table."
                    .into(),
                table: Some(finals),
                plot: None,
            },
            Section {
                heading: "Write cost per update, by cause".into(),
                text: "KiB written per update over all the intervals, by the ledger's cause; \
                       pages read per update; update throughput. The `wal` cause includes \
                       zero-filling each new 16 MiB log segment, so it jumps when a run \
                       crosses into new segments; log appended (above) is the steady measure."
                    .into(),
                table: Some(by_cause),
                plot: Some(cost_plot),
            },
            Section {
                heading: "What VACUUM did and cost".into(),
                text: "Autovacuum's runs during the intervals, and the one VACUUM of the heap \
                       without autovacuum after the last interval (measured as its own phase)."
                    .into(),
                table: Some(vacuum),
                plot: None,
            },
        ],
        findings,
        verdict,
    }
}

fn findings(runs: &[Run], page_bytes: u64) -> (Vec<String>, Verdict) {
    let mut findings = Vec::new();
    let get = |s| runs.iter().find(|r| r.setting == s);
    let (Some(auto), Some(none), Some(cl), Some(lsm)) = (
        get(Setting::HeapAutovacuum),
        get(Setting::HeapNoVacuum),
        get(Setting::Clustered),
        get(Setting::Lsm),
    ) else {
        return (findings, Verdict::default());
    };
    let file = |r: &Run, name: &str, at: usize| {
        r.samples
            .get(at)
            .and_then(|s| s.file_bytes.get(name).copied())
            .unwrap_or(0)
    };
    let growth_of = |r: &Run, name: &str| {
        format!(
            "{} {} -> {} MiB",
            name,
            mib(file(r, name, 0)),
            mib(file(r, name, r.samples.len() - 1))
        )
    };
    let heap_files: Vec<String> = none
        .samples
        .last()
        .map(|s| s.file_bytes.keys().cloned().collect())
        .unwrap_or_default();
    findings.push(format!(
        "Without VACUUM the heap went from {} to {} MiB ({}) over {} updates ({} non-HOT, {} \
         HOT), file by file: {}. Page pruning removed {} dead tuples' bytes from their pages, \
         where new versions reused the room, but a non-HOT update's old line pointer and its \
         index entries stay until VACUUM: {} non-HOT updates left that many stale entries in \
         each index. The size's peak grew {} MiB in the first half of the run and {} MiB in \
         the second.",
        mib(none.load_size()),
        mib(none.final_size()),
        ratio(none.final_size() as f64, none.load_size() as f64),
        none.updates(),
        none.d("non_hot_updates"),
        none.d("hot_updates"),
        heap_files
            .iter()
            .map(|f| growth_of(none, f))
            .collect::<Vec<_>>()
            .join(", "),
        none.d("tuples_pruned"),
        none.d("non_hot_updates"),
        num(none.halves().0 / MIB),
        num(none.halves().1 / MIB),
    ));
    let av = VacuumCost::of_intervals(auto);
    findings.push(format!(
        "With inline autovacuum the heap ended at {} MiB ({} of its size after the load; peak \
         growth {} MiB in the first half, {} MiB in the second): {} VACUUM runs, one per {} \
         updates on average, scanned {} heap pages in all and removed {} index entries. The \
         database read {} pages and wrote {} MiB while they ran ({} KiB per update, of {} KiB \
         per update in all), and VACUUM appended {} bytes of log per update.",
        mib(auto.final_size()),
        ratio(auto.final_size() as f64, auto.load_size() as f64),
        num(auto.halves().0 / MIB),
        num(auto.halves().1 / MIB),
        av.runs,
        num(auto.updates() / av.runs.max(1) as f64),
        av.pages_scanned,
        av.index_entries_removed,
        av.pages_read,
        mib(av.write_bytes),
        num(maintenance_kib(auto)),
        num(auto.kib(None)),
        num(av.log_appended as f64 / auto.updates()),
    ));
    if let Some((phase, after)) = &none.maintenance {
        let fv = VacuumCost::of_final(phase);
        findings.push(format!(
            "The one VACUUM at the end of the heap without autovacuum read {} pages and wrote \
             {} MiB in {:.2} s, removed {} index entries and freed {} line pointers. {}",
            fv.pages_read,
            mib(fv.write_bytes),
            fv.seconds.unwrap_or(f64::NAN),
            fv.index_entries_removed,
            fv.line_pointers_freed,
            if after.size_bytes >= none.final_size() {
                format!(
                    "The files stayed at {} MiB: VACUUM makes the space reusable but does not \
                     shrink the files (the heap that vacuumed all along: {} MiB).",
                    mib(after.size_bytes),
                    mib(auto.final_size()),
                )
            } else {
                format!(
                    "The files went from {} to {} MiB (the one that vacuumed all along: {} \
                     MiB).",
                    mib(none.final_size()),
                    mib(after.size_bytes),
                    mib(auto.final_size()),
                )
            },
        ));
        // VACUUM logs each heap page it changes as an image, at most twice (after pruning,
        // after freeing line pointers): the rest of its log is its index deletions.
        let heap_images_max = 2 * fv.pages_scanned * page_bytes;
        let index_share = 1.0 - heap_images_max as f64 / fv.log_appended.max(1) as f64;
        findings.push(format!(
            "The final VACUUM appended {} MiB of log: its heap-page images account for at most \
             {} MiB (two per heap page scanned), so at least {:.0}% is its index deletions, \
             {} bytes per index entry removed (autovacuum's runs: {} bytes per entry, all \
             log included), against {} bytes of log per update for the updates themselves. \
             The B+tree logs each deletion as a record of its own (a compact one naming the \
             slot; a deletion that merges two nodes logs images of the nodes it changed), and \
             the first change to an index page after a checkpoint logs the whole page \
             (torn-page protection).",
            mib(fv.log_appended),
            mib(heap_images_max),
            100.0 * index_share.max(0.0),
            num(fv.log_appended.saturating_sub(heap_images_max) as f64
                / fv.index_entries_removed.max(1) as f64),
            num(av.log_per_entry()),
            num(none.log_appended as f64 / none.updates()),
        ));
    }
    findings.push(format!(
        "The clustered engine went from {} to {} MiB ({}): rows are replaced in their leaves, \
         and a row that grew splits its leaf only when the leaf is full ({} primary splits, {} \
         secondary splits during the run); a `grp` change deletes one `by_grp` entry and \
         inserts another, so that index keeps one entry per row.",
        mib(cl.load_size()),
        mib(cl.final_size()),
        ratio(cl.final_size() as f64, cl.load_size() as f64),
        cl.d("primary_splits"),
        cl.d("secondary_splits"),
    ));
    let lsm_max = lsm.samples.iter().map(|s| s.size_bytes).max().unwrap_or(0);
    let lsm_min = lsm.samples[1..]
        .iter()
        .map(|s| s.size_bytes)
        .min()
        .unwrap_or(0);
    findings.push(format!(
        "The LSM went from {} to {} MiB ({}), moving between {} and {} MiB from one interval \
         to the next: each interval's flush adds a table of new versions to level 0, and a \
         compaction, once level 0 holds enough tables, merges them into the level below and \
         drops the versions they replace. {} compactions rewrote {} KiB per update (cause \
         `compaction`), against {} KiB per update of memtable flushes.",
        mib(lsm.load_size()),
        mib(lsm.final_size()),
        ratio(lsm.final_size() as f64, lsm.load_size() as f64),
        mib(lsm_min),
        mib(lsm_max),
        lsm.d("lsm_compactions"),
        num(lsm.kib(Some("compaction"))),
        num(lsm.kib(Some("flush"))),
    ));
    findings.push(format!(
        "Space amplification at the end (size over {} MiB of live user data): heap with \
         autovacuum {:.2}, heap without {:.2}, clustered {:.2}, LSM {:.2}. Bytes written per \
         update: {} KiB, {} KiB, {} KiB and {} KiB (mostly `{}`, `{}`, `{}` and `{}`); log \
         records appended per update: {}, {}, {} and {} bytes.",
        mib(auto.live_bytes),
        auto.space_amplification(),
        none.space_amplification(),
        cl.space_amplification(),
        lsm.space_amplification(),
        num(auto.kib(None)),
        num(none.kib(None)),
        num(cl.kib(None)),
        num(lsm.kib(None)),
        top_cause(auto),
        top_cause(none),
        top_cause(cl),
        top_cause(lsm),
        num(auto.log_appended as f64 / auto.updates()),
        num(none.log_appended as f64 / none.updates()),
        num(cl.log_appended as f64 / cl.updates()),
        num(lsm.log_appended as f64 / lsm.updates()),
    ));

    // The textbook's claims, each a comparison of measured numbers.
    let claims = [
        (
            !none.plateaued() && none.final_size() > none.load_size(),
            format!(
                "without VACUUM the heap should keep growing: its peak grew {} MiB in the \
                 first half, {} MiB in the second",
                num(none.halves().0 / MIB),
                num(none.halves().1 / MIB),
            ),
        ),
        (
            auto.plateaued() && auto.final_size() < none.final_size(),
            format!(
                "with autovacuum the heap should level off below the unvacuumed heap: peak \
                 growth {} MiB then {} MiB{}, {} MiB at the end against {} MiB",
                num(auto.halves().0 / MIB),
                num(auto.halves().1 / MIB),
                auto.plateau_note(),
                mib(auto.final_size()),
                mib(none.final_size()),
            ),
        ),
        (
            cl.plateaued() && cl.final_size() <= auto.final_size().min(none.final_size()),
            format!(
                "the clustered B+tree should not bloat: peak growth {} MiB then {} MiB{}, {} \
                 MiB at the end (the heaps: {} and {} MiB)",
                num(cl.halves().0 / MIB),
                num(cl.halves().1 / MIB),
                cl.plateau_note(),
                mib(cl.final_size()),
                mib(auto.final_size()),
                mib(none.final_size()),
            ),
        ),
        (
            lsm.plateaued(),
            format!(
                "compaction should keep the LSM's size bounded: peak growth {} MiB then {} \
                 MiB{}",
                num(lsm.halves().0 / MIB),
                num(lsm.halves().1 / MIB),
                lsm.plateau_note(),
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
            "All four parts held: {}. Autovacuum's price: {} KiB written per update while it \
             ran, of {} KiB per update in all.",
            held.join("; "),
            num(maintenance_kib(auto)),
            num(auto.kib(None)),
        ))
    } else if held.is_empty() {
        Verdict::Contradicts(format!(
            "None of the four parts held: {}. The tables above show where the space went.",
            failed.join("; ")
        ))
    } else {
        Verdict::Mixed(format!(
            "Held: {}. Did not hold: {}. The tables above show where the space went.",
            held.join("; "),
            failed.join("; ")
        ))
    };
    (findings, verdict)
}

/// The cause that wrote the most bytes over a configuration's intervals.
fn top_cause(r: &Run) -> String {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for p in &r.intervals {
        for (cause, io) in &p.io.by_cause {
            *totals.entry(cause.as_str()).or_default() += io.write_bytes;
        }
    }
    totals
        .into_iter()
        .max_by_key(|(_, b)| *b)
        .map_or("none".into(), |(c, _)| c.to_string())
}
