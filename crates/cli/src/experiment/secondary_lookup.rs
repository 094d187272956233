//! Experiment 2: secondary-index lookups, one hop (heap) versus two (clustered).
//!
//! A table of accounts (`id` primary key, ~150 bytes a row) carries two secondary indexes on
//! columns that are a random permutation of the ids, so neither is correlated with the
//! physical order: `by_k1` (one row per key) and `by_k10` (`k1 / 10`: exactly ten rows per
//! key). Each engine bulk-loads the table, which is then reopened with a buffer pool an
//! eighth of the heap's size and `O_DIRECT` page files, so that a pool miss is a device read.
//! Point lookups (`Table::lookup`) at uniformly random keys of either index are measured:
//! reads from storage per lookup split by file (secondary index, heap, primary index, LSM
//! tables), pages touched in the pool, the engines' descent counters, latency.
//!
//! The heap's index entry ends with the row's TID (page, slot), so a lookup is a descent of
//! the secondary tree and then one heap page per row. The clustered engine's entry ends with
//! the primary key, so each row costs a second descent, of the primary tree, root to leaf.
//! The LSM stores the clustered layout in one LSM tree: a secondary seek, then one point get
//! of the row per entry (memtable, bloom filters, one table per level).

use std::collections::BTreeMap;

use anyhow::Result;
use rand::{Rng, SeedableRng};
use storelab_table::{ColumnType, Row, Schema, StorageConfig, Value};
use storelab_workload::{OpOutcome, PhaseResult};

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, TextTable, Verdict, metrics};
use crate::engines::{EngineKind, open_engine};

/// Rows per lookup compared: one (index `by_k1`) and ten (index `by_k10`).
const MATCHES: [u64; 2] = [1, 10];

/// The engines compared.
const ENGINES: [EngineKind; 3] = [EngineKind::Heap, EngineKind::Clustered, EngineKind::Lsm];

/// About the heap bytes of one row (tuple, line pointer, page overhead), for sizing the pool.
const ROW_BYTES_EST: u64 = 150;

/// The measurement pool is this fraction of the estimated heap size.
const POOL_FRACTION: u64 = 8;

/// Reads per lookup within this fraction of each other count as the same (the verdict's
/// tolerance, stated in the report).
const SAME_FRACTION: f64 = 0.05;

/// The smallest measurement pool (tiny scales): 32 frames of 8 KiB.
const POOL_BYTES_MIN: u64 = 256 << 10;

/// The table: ids in order, `k1` a permutation of the ids, `k10 = k1 / 10`, padding.
fn schema() -> Schema {
    Schema::builder("accounts")
        .column("id", ColumnType::Int64)
        .column("k1", ColumnType::Int64)
        .column("k10", ColumnType::Int64)
        .column("balance", ColumnType::Float64)
        .column("note", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_k1", &["k1"], false)
        .index("by_k10", &["k10"], false)
        .build()
        .expect("a valid schema")
}

/// Row `id`, whose `k1` is `rank`.
fn row(id: u64, rank: u64, seed: u64) -> Row {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ storelab_workload::fnv1a64(id));
    vec![
        Value::Int(id as i64),
        Value::Int(rank as i64),
        Value::Int((rank / 10) as i64),
        Value::Float(rng.random_range(0..1_000_000) as f64 / 100.0),
        Value::Text("n".repeat(rng.random_range(60..100))),
    ]
}

/// The index a lookup of `matches` rows uses.
fn index_for(matches: u64) -> &'static str {
    if matches == 1 { "by_k1" } else { "by_k10" }
}

/// One measured point.
struct Point {
    engine: EngineKind,
    matches: u64,
    run: PhaseResult,
    /// Growth of the table's counters per lookup, over the warm-up and measured lookups.
    per_lookup: BTreeMap<String, f64>,
    /// Height of the clustered engine's primary tree (0 elsewhere).
    primary_height: u64,
}

impl Point {
    fn counter(&self, name: &str) -> f64 {
        self.per_lookup.get(name).copied().unwrap_or(0.0)
    }

    /// Reads from storage per lookup by the lookups themselves (causes `read` and
    /// `prefetch`; an LSM's background work is excluded).
    fn reads(&self) -> f64 {
        metrics::cause_reads(&self.run, "read") + metrics::cause_reads(&self.run, "prefetch")
    }

    fn secondary_reads(&self) -> f64 {
        metrics::file_reads(&self.run, &format!(".{}.idx", index_for(self.matches)))
    }

    fn heap_reads(&self) -> f64 {
        metrics::file_reads(&self.run, ".heap")
    }

    fn primary_reads(&self) -> f64 {
        metrics::file_reads(&self.run, ".primary.idx")
    }

    fn lsm_reads(&self) -> f64 {
        metrics::file_reads(&self.run, "lsm:")
    }

    /// Pages (or, for the LSM, blocks) visited per lookup whatever the pool's size: pool pins
    /// for the B+tree engines, block cache accesses for the LSM.
    fn touched(&self) -> f64 {
        match self.engine {
            EngineKind::Lsm => self.counter("lsm_cache_hits") + self.counter("lsm_cache_misses"),
            _ => metrics::pages_touched(&self.run),
        }
    }

    /// Rows returned per lookup.
    fn rows(&self) -> f64 {
        self.run.rows as f64 / self.run.ops.max(1) as f64
    }
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    // A multiple of ten, so that every `k10` key has exactly ten rows.
    let rows = ctx.scaled(300_000, 3_000) / 10 * 10;
    let lookups = ctx.scaled(5_000, 100);
    let warmup = lookups / 2;
    let load_config = ctx.storage();
    let mut config = ctx.storage();
    config.pool_bytes = ((rows * ROW_BYTES_EST) / POOL_FRACTION).max(POOL_BYTES_MIN) as usize;
    config.direct = true;
    let seed = ctx.seed;
    let ranks = super::shuffled(rows, seed);
    let mut points = Vec::new();
    let mut heap_file_bytes = 0;
    for engine in ENGINES {
        let dir = ctx.fresh_dir(engine.name())?;
        let load = {
            let db = open_engine(engine, &dir, &load_config)?;
            let table = db.create_table(schema())?;
            let pb = ctx.bar(rows, &format!("{engine} bulk load"));
            let bytes = std::cell::Cell::new(0);
            let mut load = storelab_workload::measure(&*db, &*table, "load", "load", 1, |_| {
                let mut it = (0..rows).map(|id| {
                    if id % 4096 == 0 {
                        pb.set_position(id);
                    }
                    let r = row(id, ranks[id as usize], seed);
                    bytes.set(bytes.get() + super::row_bytes(&r));
                    r
                });
                let n = table.load(&mut it)?;
                Ok(OpOutcome {
                    rows: n,
                    bytes_written: bytes.get(),
                })
            })?;
            pb.finish_and_clear();
            db.checkpoint()?;
            if engine == EngineKind::Lsm {
                // Flush and compact until no compaction is due, so that no background work
                // runs during the measurements.
                table.maintain()?;
            }
            load.phase = "load".into();
            if engine == EngineKind::Heap {
                heap_file_bytes = table.stats()?.file_bytes.get("heap").copied().unwrap_or(0);
            }
            load
        };
        for matches in MATCHES {
            let index = index_for(matches);
            let keys = rows / matches;
            // Reopened for each point: every point starts from an empty pool.
            let db = open_engine(engine, &dir, &config)?;
            let table = db.open_table("accounts")?;
            let before = table.stats()?.counters;
            let mut rng = rand::rngs::StdRng::seed_from_u64(ctx.seed ^ matches);
            let lookup = |rng: &mut rand::rngs::StdRng| -> storelab_table::Result<u64> {
                let key = rng.random_range(0..keys) as i64;
                Ok(table.lookup(index, &[Value::Int(key)])?.len() as u64)
            };
            let pb = ctx.bar(warmup + lookups, &format!("{engine} lookups of {matches}"));
            for i in 0..warmup {
                lookup(&mut rng)?;
                pb.set_position(i + 1);
            }
            let run = storelab_workload::measure(
                &*db,
                &*table,
                &format!("lookup-{index}"),
                "lookup",
                lookups,
                |i| {
                    let n = lookup(&mut rng)?;
                    pb.set_position(warmup + i + 1);
                    Ok(OpOutcome {
                        rows: n,
                        bytes_written: 0,
                    })
                },
            )?;
            pb.finish_and_clear();
            let per_lookup = run
                .counters
                .iter()
                .map(|(k, &v)| {
                    let was = before.get(k).copied().unwrap_or(0);
                    (
                        k.clone(),
                        v.saturating_sub(was) as f64 / (warmup + lookups) as f64,
                    )
                })
                .collect();
            let params = [
                ("rows", rows.into()),
                ("index", index.into()),
                ("rows_per_lookup", matches.into()),
                ("warmup_lookups", warmup.into()),
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
                matches,
                primary_height: run.counters.get("primary_height").copied().unwrap_or(0),
                run,
                per_lookup,
            });
            ctx.verify(&*db)?;
        }
        ctx.discard(&dir);
    }
    Ok(report(
        &points,
        rows,
        lookups,
        warmup,
        &config,
        heap_file_bytes,
    ))
}

fn find(points: &[Point], engine: EngineKind, matches: u64) -> Option<&Point> {
    points
        .iter()
        .find(|p| p.engine == engine && p.matches == matches)
}

fn report(
    points: &[Point],
    rows: u64,
    lookups: u64,
    warmup: u64,
    config: &StorageConfig,
    heap_file_bytes: u64,
) -> Report {
    let mut table = TextTable::new(&[
        "engine",
        "rows/lookup",
        "reads/lookup",
        "secondary index",
        "heap file",
        "primary index",
        "LSM tables",
        "pages touched/lookup",
        "secondary descents/lookup",
        "primary descents or gets/lookup",
        "p50 (us)",
        "lookups/s",
    ]);
    for p in points {
        let (secondary, primary) = match p.engine {
            EngineKind::Clustered => (
                num(p.counter("secondary_descents")),
                num(p.counter("primary_descents")),
            ),
            EngineKind::Lsm => (
                num(p.counter("secondary_seeks")),
                num(p.counter("primary_gets")),
            ),
            _ => (num(p.counter("index_scans")), "-".into()),
        };
        table.row(vec![
            p.engine.name().into(),
            num(p.rows()),
            num(p.reads()),
            num(p.secondary_reads()),
            num(p.heap_reads()),
            num(p.primary_reads()),
            num(p.lsm_reads()),
            num(p.touched()),
            secondary,
            primary,
            num(metrics::p50_us(&p.run)),
            num(p.run.throughput_ops_per_s),
        ]);
    }

    let categories: Vec<String> = points
        .iter()
        .map(|p| format!("{}, {} row{}", p.engine, p.matches, plural(p.matches)))
        .collect();
    let by_file = Plot {
        file: "reads_by_file.svg".into(),
        title: "Reads from storage per lookup, by file".into(),
        x_label: "engine, rows per lookup".into(),
        y_label: "reads per lookup".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories,
            series: vec![
                (
                    "secondary index".into(),
                    points.iter().map(Point::secondary_reads).collect(),
                ),
                (
                    "heap file".into(),
                    points.iter().map(Point::heap_reads).collect(),
                ),
                (
                    "primary index".into(),
                    points.iter().map(Point::primary_reads).collect(),
                ),
                (
                    "LSM tables".into(),
                    points.iter().map(Point::lsm_reads).collect(),
                ),
            ],
        },
    };
    let touched = Plot {
        file: "pages_touched.svg".into(),
        title: "Pages (LSM: blocks) touched per lookup".into(),
        x_label: "rows per lookup".into(),
        y_label: "pages touched per lookup".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories: MATCHES
                .iter()
                .map(|m| format!("{m} row{} per lookup", plural(*m)))
                .collect(),
            series: ENGINES
                .iter()
                .map(|&e| {
                    (
                        e.name().to_string(),
                        MATCHES
                            .iter()
                            .map(|&m| find(points, e, m).map_or(0.0, Point::touched))
                            .collect(),
                    )
                })
                .collect(),
        },
    };

    let mut findings = Vec::new();
    // Per sweep point: does the heap touch fewer pages, and read no more, than clustered?
    let mut touched_holds = Vec::new();
    let mut reads_hold = Vec::new();
    for matches in MATCHES {
        let (Some(h), Some(c)) = (
            find(points, EngineKind::Heap, matches),
            find(points, EngineKind::Clustered, matches),
        ) else {
            continue;
        };
        let m = matches as f64;
        touched_holds.push(h.touched() < c.touched());
        reads_hold.push(compare(h.reads(), c.reads()));
        if matches == 1 {
            findings.push(format!(
                "One row per lookup: the heap touched {} pages per lookup, the descent of \
                 by_k1 and the heap page its TID names. The clustered engine touched {}: the \
                 same secondary descent, then {} descents of its primary tree per lookup, a \
                 tree {} levels high. The second hop cost {} more page visits per lookup \
                 (the clustered engine touched {} as many pages as the heap).",
                num(h.touched()),
                num(c.touched()),
                num(c.counter("primary_descents")),
                c.primary_height,
                num(c.touched() - h.touched()),
                ratio(c.touched(), h.touched()),
            ));
            let per_descent = c.primary_reads() / c.counter("primary_descents").max(1e-9);
            findings.push(format!(
                "Reads from storage: the heap read {} pages per lookup ({} from by_k1, {} \
                 from the heap file, {} from its primary index), the clustered engine {} ({} \
                 from by_k1, {} from the primary tree). Each primary descent passes the \
                 tree's {} levels but read {} pages from storage: {}",
                num(h.reads()),
                num(h.secondary_reads()),
                num(h.heap_reads()),
                num(h.primary_reads()),
                num(c.reads()),
                num(c.secondary_reads()),
                num(c.primary_reads()),
                c.primary_height,
                num(per_descent),
                if per_descent <= 1.0 {
                    format!(
                        "the upper levels stayed in the pool, so in I/O the second hop cost at \
                         most one leaf read, against the heap's {} heap-file reads per lookup.",
                        num(h.heap_reads())
                    )
                } else {
                    "more than one page per descent, so the upper levels of the primary tree \
                     did not all stay in the pool."
                        .to_string()
                },
            ));
            findings.push(format!(
                "Median latency of a one-row lookup: {} us on the heap, {} us on the clustered \
                 engine ({} lookups/s against {}).",
                num(metrics::p50_us(&h.run)),
                num(metrics::p50_us(&c.run)),
                num(h.run.throughput_ops_per_s),
                num(c.run.throughput_ops_per_s),
            ));
        } else {
            findings.push(format!(
                "{matches} rows per lookup (by_k10, rows scattered over the table): the heap \
                 read {} heap-file pages per row and touched {} pages per row; the clustered \
                 engine read {} primary-tree pages per row and touched {} pages per row, \
                 because each of the {} entries starts its own primary descent ({} per \
                 lookup). Per lookup: {} reads (heap) against {} (clustered), p50 {} us \
                 against {} us.",
                num(h.heap_reads() / m),
                num(h.touched() / m),
                num(c.primary_reads() / m),
                num(c.touched() / m),
                matches,
                num(c.counter("primary_descents")),
                num(h.reads()),
                num(c.reads()),
                num(metrics::p50_us(&h.run)),
                num(metrics::p50_us(&c.run)),
            ));
        }
    }
    for matches in MATCHES {
        let (Some(l), Some(c)) = (
            find(points, EngineKind::Lsm, matches),
            find(points, EngineKind::Clustered, matches),
        ) else {
            continue;
        };
        let gets = l.counter("primary_gets");
        findings.push(format!(
            "The LSM, {matches} row{} per lookup: {} secondary seeks and {} primary gets per \
             lookup; each get considered {} tables and read {}{}; {} data blocks touched in the block cache and {} reads from its tables \
             per lookup, {} the clustered B+tree's {}; p50 {} us against {} us.",
            plural(matches),
            num(l.counter("secondary_seeks")),
            num(gets),
            num(l.counter("lsm_get_table_candidates") / gets.max(1e-9)),
            num(l.counter("lsm_get_tables_read") / gets.max(1e-9)),
            if l.counter("lsm_bloom_negatives") > 0.0 {
                format!(
                    " (bloom filters ruled out {} tables per get)",
                    num(l.counter("lsm_bloom_negatives") / gets.max(1e-9))
                )
            } else {
                String::new()
            },
            num(l.touched()),
            num(l.lsm_reads()),
            compare(l.reads(), c.reads()),
            num(c.reads()),
            num(metrics::p50_us(&l.run)),
            num(metrics::p50_us(&c.run)),
        ));
    }

    let touched_ok = !touched_holds.is_empty() && touched_holds.iter().all(|&b| b);
    let reads_fewer = !reads_hold.is_empty() && reads_hold.iter().all(|&r| r == "fewer than");
    let reads_more = reads_hold.contains(&"more than");
    let summary = |m: u64| match (
        find(points, EngineKind::Heap, m),
        find(points, EngineKind::Clustered, m),
    ) {
        (Some(h), Some(c)) => format!(
            "{m} row{}: heap {} pages touched and {:.2} reads per lookup, clustered {} and \
                 {:.2}",
            plural(m),
            num(h.touched()),
            h.reads(),
            num(c.touched()),
            c.reads(),
        ),
        _ => format!("{m} row{}: not measured", plural(m)),
    };
    let numbers = MATCHES.map(summary).join("; ");
    let tolerance = format!("{:.0}%", SAME_FRACTION * 100.0);
    let verdict = match (touched_ok, reads_fewer) {
        (true, true) => Verdict::Agrees(format!(
            "The heap's one hop is cheaper at every point: it touched fewer pages and read \
             fewer from storage than the clustered engine's two descents ({numbers})."
        )),
        (true, false) => Verdict::Mixed(format!(
            "The heap touched fewer pages per lookup at every point, as the one-hop argument \
             says, but it did not read fewer pages from storage at every point ({numbers}; \
             reads within {tolerance} count as equal): {}",
            if reads_more {
                "at some point it read more, see the table for the files."
            } else {
                "the primary tree's upper levels stayed in the pool, so the clustered \
                 engine's second descent cost about one leaf read, as many reads as the \
                 heap's one page. The second hop is paid in pages visited (CPU and pool \
                 traffic), not in I/O."
            }
        )),
        (false, true) => Verdict::Mixed(format!(
            "The heap read fewer pages from storage than the clustered engine, but it did not \
             touch fewer pages at every point ({numbers}), contrary to the one-hop argument; \
             the table shows where the pages went."
        )),
        (false, false) => Verdict::Contradicts(format!(
            "The heap neither touched fewer pages nor read fewer pages than the clustered \
             engine at every point ({numbers}; reads within {tolerance} count as equal); the \
             table shows where the pages went."
        )),
    };

    Report {
        setup: vec![
            format!(
                "A table accounts(id primary key, k1, k10, balance, note; ~120 bytes a row) of \
                 {rows} rows, bulk-loaded (Table::load) in id order into each engine with the \
                 default 64 MiB pool, then checkpointed (the LSM also compacted). k1 is a \
                 random permutation of the ids (index by_k1: one row per key) and k10 = k1 / \
                 10 (index by_k10: ten rows per key), so neither index is correlated with the \
                 physical order."
            ),
            format!(
                "Each point reopens the database with a {} KiB buffer pool (the heap file is \
                 {} KiB, {} the pool; the LSM's block cache gets the same budget) and page \
                 files opened with O_DIRECT, so that a pool miss is a device read and the OS \
                 page cache does not act as a second, larger cache.",
                config.pool_bytes / 1024,
                heap_file_bytes / 1024,
                ratio(heap_file_bytes as f64, config.pool_bytes as f64),
            ),
            format!(
                "Per point, {warmup} unmeasured lookups warm the pool, then {lookups} \
                 Table::lookup calls at uniformly random keys are measured. Reads come from \
                 the I/O ledger (causes read and prefetch) split by file; pages touched are \
                 the pool's hits plus misses of the measured lookups; descents and the \
                 LSM's block cache accesses (hits plus misses) come from the engines' \
                 counters, averaged over all the lookups, warm-up included."
            ),
            "Engines: heap (secondary entries end with the row's TID), clustered (entries end \
             with the primary key; rows in the primary B+tree's leaves), lsm (the clustered \
             layout in one LSM tree)."
                .into(),
        ],
        expected: format!(
            "A heap's secondary index entry holds the row's physical location (TID), so \
                   a lookup descends the secondary index and then reads the one heap page the \
                   TID names: one hop. A clustered (InnoDB-style) secondary entry holds the \
                   primary key, so each matching row costs a second descent, of the primary \
                   index, from the root. The textbook expects the heap to touch fewer pages \
                   and to read fewer pages from storage per lookup (here: reads within {:.0}% \
                   count as equal), and the gap to grow with the rows matched. The other side of the trade, not measured here: a clustered \
                   secondary entry stays valid when the row moves (page splits), whereas the \
                   heap must add an entry to every index whenever an update cannot stay on \
                   the same page as a HOT update (experiment 3, update-indexes).",
            SAME_FRACTION * 100.0
        ),
        sections: vec![
            Section {
                heading: "Reads and pages per lookup".into(),
                text: "Reads from storage per lookup in all and by file (ledger, causes read \
                       and prefetch), pages touched per lookup (pool hits + misses; LSM: block \
                       cache hits + misses), index descents per lookup (heap: index scans; \
                       clustered: B+tree descents; lsm: secondary seeks and primary gets), \
                       median latency and throughput."
                    .into(),
                table: Some(table),
                plot: Some(by_file),
            },
            Section {
                heading: "Pages touched per lookup".into(),
                text: "The design's cost whatever the pool's size: every page visited, from \
                       the pool or from storage."
                    .into(),
                table: None,
                plot: Some(touched),
            },
        ],
        findings,
        verdict,
    }
}

/// `a` against `b`: "fewer than", "about as many as" (within [`SAME_FRACTION`]) or "more
/// than".
fn compare(a: f64, b: f64) -> &'static str {
    if a < b * (1.0 - SAME_FRACTION) {
        "fewer than"
    } else if a > b * (1.0 + SAME_FRACTION) {
        "more than"
    } else {
        "about as many as"
    }
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}
