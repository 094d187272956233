//! Experiment 5: random versus sequential primary-key inserts: splits, fill, space.
//!
//! The same rows (an integer primary key and a 100-byte text payload) are inserted into each
//! engine in ascending and in random key order, by ordinary inserts in synced batches (the
//! same path for every engine), with a buffer pool smaller than the table. The clustered
//! engine runs with both leaf split policies of its B+tree: `middle` (half the bytes each
//! side) and `insert-point` (a key past the end of the rightmost leaf starts a new leaf and
//! leaves the old one full, as PostgreSQL's rightmost split and InnoDB's split at the insert
//! point do). After the inserts a checkpoint makes everything durable in the data files (the
//! LSM flushes its memtable and finishes its compactions), and then:
//!
//! - the primary index file is read page by page (read-only, as `storelab inspect tree`
//!   does): leaves, height, the average fill of the leaves, and the splits the inserts made
//!   (in a tree that only grew, every split added one node and every root split one more,
//!   so splits = nodes - height; the clustered engine's own split counter is compared);
//! - the heap file is read page by page: pages and their average fill;
//! - the I/O ledger's delta over inserts and checkpoint gives KiB written per row by file
//!   (log, heap file, primary index, LSM tables) and by cause (wal, fpi, eviction,
//!   checkpoint, flush, compaction); size on disk over user bytes is the space
//!   amplification; rows per second over inserts and checkpoint is the throughput.
//!
//! Ascending keys always land in the rightmost leaf: with middle splits each full leaf is
//! cut in half and its left half never receives another key (leaves ~50% full); with
//! insert-point splits the left leaf stays full (~100%). Random keys land anywhere: every
//! leaf splits when it fills, and the leaves settle at ~69% full on average (ln 2, Yao
//! 1978), so the tree is bigger, and each insert dirties a random leaf that the pool, smaller
//! than the tree, has to write back again and again. The heap appends rows wherever there is
//! room whatever the key, so its own pages do not care about key order, but its primary-key
//! index is a B+tree like any other.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use storelab_btree::node::{self, NodeRef};
use storelab_btree::{NODE_PAGE, SplitPolicy};
use storelab_clustered::{BTreeConfig, ClusteredOptions};
use storelab_heap::heap_page::{self, HEAP_PAGE, HeapPageRef, LINE_POINTERS_OFFSET};
use storelab_pager::page::verify_page;
use storelab_pager::{IoCause, PageId};
use storelab_table::{ColumnType, Engine, Row, Schema, StorageConfig, Value};
use storelab_workload::PhaseResult;
use storelab_workload::results::IoSummary;

use super::report::{num, ratio};
use super::{Ctx, Plot, PlotKind, Report, Section, TextTable, Verdict};
use crate::engines::EngineKind;

/// The insert orders compared.
const ORDERS: [&str; 2] = ["ascending", "random"];

/// Rows per insert batch (one atomic, synced commit). A batch's pages stay in the pool until
/// it commits, so a batch must fit in the pool with room to spare.
const BATCH_ROWS: u64 = 200;

/// Bytes of each row's text payload (the row is an 8-byte key and this).
const PAYLOAD_BYTES: usize = 100;

/// The table's name.
const TABLE_NAME: &str = "events";

/// Average leaf fill of a B+tree under random inserts with middle splits (ln 2: Yao, "On
/// random 2-3 trees", 1978), the textbook figure the results are compared with.
const RANDOM_FILL_EXPECTED: f64 = std::f64::consts::LN_2;

/// Slack around a textbook fill figure within which the measurement is said to match it
/// (fences, slots and the discreteness of rows in a page move the figure a few percent).
const FILL_TOLERANCE: f64 = 0.10;

/// Largest difference in heap-page fill between the two orders that still counts as "the
/// heap does not care": rows of varying position but equal size pack the same way.
const HEAP_FILL_SAME: f64 = 0.02;

/// The causes of writes shown, in order.
const WRITE_CAUSES: [IoCause; 7] = [
    IoCause::Wal,
    IoCause::FullPageImage,
    IoCause::EvictionWriteBack,
    IoCause::Checkpoint,
    IoCause::Flush,
    IoCause::Compaction,
    IoCause::Doublewrite,
];

/// One engine configuration of the sweep.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Variant {
    engine: EngineKind,
    /// The leaf split policy of the engine's B+trees (`None`: the LSM, which has none).
    split: Option<SplitPolicy>,
}

impl Variant {
    fn label(self) -> String {
        match self.split {
            Some(s) => format!("{} ({})", self.engine, split_name(s)),
            None => self.engine.name().to_string(),
        }
    }
}

fn split_name(s: SplitPolicy) -> &'static str {
    match s {
        SplitPolicy::Middle => "middle",
        SplitPolicy::InsertPoint => "insert-point",
    }
}

/// A B+tree file's shape, read page by page.
#[derive(Clone, Copy, Debug, Default)]
struct TreeShape {
    leaves: u64,
    internal: u64,
    height: u64,
    /// Bytes of entries, slots and fences over the leaves' capacity (as `BTreeStats`).
    leaf_fill: f64,
}

impl TreeShape {
    /// Splits made by a tree that only grew from one leaf: each split added a node, each
    /// root split (height - 1 of them) added a new root as well.
    fn splits(&self) -> u64 {
        (self.leaves + self.internal).saturating_sub(self.height)
    }
}

/// A heap file's pages and their average fill.
#[derive(Clone, Copy, Debug, Default)]
struct HeapShape {
    pages: u64,
    /// Bytes of line pointers and tuples over the page less its header.
    fill: f64,
}

/// One measured point.
struct Point {
    variant: Variant,
    order: &'static str,
    rows: u64,
    /// The inserts and the final checkpoint: the ledger's delta over both, the size after.
    total: PhaseResult,
    primary: Option<TreeShape>,
    heap: Option<HeapShape>,
}

impl Point {
    fn rows_per_s(&self) -> f64 {
        self.rows as f64 / self.total.elapsed_s.max(1e-9)
    }

    fn kib_per_row(&self) -> f64 {
        self.total.io.total.write_bytes as f64 / 1024.0 / self.rows.max(1) as f64
    }

    fn cause_kib_per_row(&self, cause: IoCause) -> f64 {
        self.total
            .io
            .by_cause
            .get(cause.name())
            .map_or(0, |io| io.write_bytes) as f64
            / 1024.0
            / self.rows.max(1) as f64
    }

    fn file_kib_per_row(&self, kind: FileKind) -> f64 {
        self.total
            .io
            .by_file
            .iter()
            .filter(|(name, _)| FileKind::of(name) == kind)
            .map(|(_, io)| io.write_bytes)
            .sum::<u64>() as f64
            / 1024.0
            / self.rows.max(1) as f64
    }

    fn space_amplification(&self) -> f64 {
        self.total.size_on_disk_bytes as f64 / self.total.user_bytes_written.max(1) as f64
    }

    fn counter(&self, name: &str) -> Option<u64> {
        self.total.counters.get(name).copied()
    }
}

/// What a file in the ledger holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum FileKind {
    Log,
    Heap,
    Primary,
    LsmTables,
    Other,
}

impl FileKind {
    const SHOWN: [FileKind; 4] = [
        FileKind::Log,
        FileKind::Heap,
        FileKind::Primary,
        FileKind::LsmTables,
    ];

    /// The kind of a ledger file name (`wal`, `t1.heap`, `t1.primary.idx`, `lsm:L1:7`...).
    fn of(name: &str) -> FileKind {
        if name.contains("wal") {
            FileKind::Log
        } else if name.ends_with(".heap") {
            FileKind::Heap
        } else if name.ends_with(".primary.idx") {
            FileKind::Primary
        } else if name.starts_with("lsm") {
            FileKind::LsmTables
        } else {
            FileKind::Other
        }
    }

    fn heading(self) -> &'static str {
        match self {
            FileKind::Log => "log",
            FileKind::Heap => "heap file",
            FileKind::Primary => "primary index",
            FileKind::LsmTables => "lsm files",
            FileKind::Other => "other",
        }
    }
}

/// The table: an integer primary key and a text payload, no secondary index (the primary
/// index is the only tree, so its shape is the whole story).
fn schema() -> Schema {
    Schema::builder(TABLE_NAME)
        .column("id", ColumnType::Int64)
        .column("payload", ColumnType::Text)
        .primary_key(&["id"])
        .build()
        .expect("a valid schema")
}

/// Row `id`: its key and a payload that is a pure function of the key.
fn row(id: u64) -> Row {
    let mut x = storelab_workload::fnv1a64(id);
    let payload: String = (0..PAYLOAD_BYTES)
        .map(|_| {
            // A linear congruential step (Knuth's MMIX constants): cheap, deterministic text.
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect();
    vec![Value::Int(id as i64), Value::Text(payload)]
}

fn open(variant: Variant, dir: &Path, config: &StorageConfig) -> Result<Box<dyn Engine>> {
    let btree = BTreeConfig {
        split: variant.split.unwrap_or_default(),
        ..BTreeConfig::default()
    };
    Ok(match variant.engine {
        EngineKind::Heap => Box::new(storelab_heap::HeapEngine::open(
            dir,
            config,
            storelab_heap::HeapOptions {
                btree,
                ..storelab_heap::HeapOptions::default()
            },
        )?),
        EngineKind::Clustered => Box::new(storelab_clustered::ClusteredEngine::open(
            dir,
            config,
            ClusteredOptions {
                btree,
                ..ClusteredOptions::default()
            },
        )?),
        EngineKind::Lsm => Box::new(storelab_clustered::ClusteredLsmEngine::open(
            dir,
            config,
            storelab_clustered::LsmOptions::default(),
        )?),
        other => bail!("insert-order does not run engine {other}"),
    })
}

/// The file in `dir` whose name ends with `suffix` (the engines name their files
/// `t<table id><suffix>`).
fn file_ending(dir: &Path, suffix: &str) -> Result<PathBuf> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
        let path = entry?.path();
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix))
        {
            return Ok(path);
        }
    }
    bail!("no file *{suffix} in {}", dir.display())
}

/// Calls `visit` with each page of the file at `path` that verifies (read-only, as
/// `storelab inspect` reads files; every page must pass its checksum).
fn for_each_page(path: &Path, page_size: usize, mut visit: impl FnMut(&[u8])) -> Result<()> {
    use std::io::Read;
    let mut file = std::io::BufReader::new(
        std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?,
    );
    let mut page = vec![0u8; page_size];
    let mut id = 0u64;
    loop {
        match file.read_exact(&mut page) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        }
        verify_page(&page, path, PageId(id))
            .with_context(|| format!("page {id} of {}", path.display()))?;
        visit(&page);
        id += 1;
    }
}

/// The shape of the B+tree in `path` (node size = page size, the engines' default).
fn tree_shape(path: &Path, page_size: usize) -> Result<TreeShape> {
    let mut shape = TreeShape::default();
    let mut used = 0u64;
    let mut problem = None;
    for_each_page(path, page_size, |page| {
        if storelab_pager::page::PageHeader::read(page).page_type != NODE_PAGE {
            return;
        }
        if let Err(why) = node::validate(page, page_size) {
            problem.get_or_insert(why);
            return;
        }
        let n = NodeRef::new(page, page_size);
        shape.height = shape.height.max(u64::from(n.level()) + 1);
        if n.is_leaf() {
            shape.leaves += 1;
            let fences = n.low_fence().map_or(0, |f| f.len() + 2)
                + n.high_fence().map_or(0, |f| f.len() + 2);
            used += (n.used_space() + fences) as u64;
        } else {
            shape.internal += 1;
        }
    })?;
    if let Some(why) = problem {
        bail!("{}: an invalid node: {why}", path.display());
    }
    let capacity = (page_size - node::SLOTS_OFFSET) as f64;
    shape.leaf_fill = used as f64 / (shape.leaves.max(1) as f64 * capacity);
    Ok(shape)
}

/// The heap file's pages and their average fill.
fn heap_shape(path: &Path, page_size: usize) -> Result<HeapShape> {
    let mut shape = HeapShape::default();
    let mut used = 0u64;
    let mut problem = None;
    for_each_page(path, page_size, |page| {
        if storelab_pager::page::PageHeader::read(page).page_type != HEAP_PAGE {
            return;
        }
        if let Err(why) = heap_page::validate(page, page_size) {
            problem.get_or_insert(why.to_string());
            return;
        }
        let p = HeapPageRef::new(page, page_size);
        let free = p.upper().saturating_sub(p.lower()) + p.garbage_size();
        shape.pages += 1;
        used += (page_size - LINE_POINTERS_OFFSET).saturating_sub(free) as u64;
    })?;
    if let Some(why) = problem {
        bail!("{}: an invalid heap page: {why}", path.display());
    }
    shape.fill =
        used as f64 / (shape.pages.max(1) as f64 * (page_size - LINE_POINTERS_OFFSET) as f64);
    Ok(shape)
}

/// Runs the experiment.
pub fn run(ctx: &mut Ctx) -> Result<Report> {
    let rows = ctx.scaled(200_000, 2_000);
    let user_bytes_per_row = super::row_bytes(&row(0));
    let mut config = ctx.storage();
    // A pool of a quarter of the user data (~5 MiB at the default scale, where the clustered
    // tree is 20-40 MiB): random inserts must evict dirty leaves, as a table larger than
    // memory does. Never below 4 MiB, so a batch's pages always fit.
    config.pool_bytes = ((rows * user_bytes_per_row / 4) as usize).max(4 << 20);
    let page_size = config.page_size.bytes();
    let variants = [
        Variant {
            engine: EngineKind::Heap,
            split: Some(SplitPolicy::Middle),
        },
        Variant {
            engine: EngineKind::Heap,
            split: Some(SplitPolicy::InsertPoint),
        },
        Variant {
            engine: EngineKind::Clustered,
            split: Some(SplitPolicy::Middle),
        },
        Variant {
            engine: EngineKind::Clustered,
            split: Some(SplitPolicy::InsertPoint),
        },
        Variant {
            engine: EngineKind::Lsm,
            split: None,
        },
    ];
    let mut points = Vec::new();
    for variant in variants {
        for order in ORDERS {
            let label = format!(
                "{}-{}-{order}",
                variant.engine,
                variant.split.map_or("none", split_name)
            );
            let dir = ctx.fresh_dir(&label)?;
            let db = open(variant, &dir, &config)?;
            let table = db.create_table(schema())?;
            let keys = match order {
                "ascending" => (0..rows).collect::<Vec<_>>(),
                _ => super::shuffled(rows, ctx.seed),
            };
            let before = db.stats()?.ledger.context("the engine keeps no ledger")?;
            let mut it = keys.iter().map(|&k| row(k));
            let load = super::insert_rows(
                ctx,
                &*db,
                &*table,
                &format!("{} {order}", variant.label()),
                &mut it,
                rows,
                BATCH_ROWS,
            )?;
            // Everything durable in the data files: the B+trees write their dirty pages, the
            // LSM flushes its memtable and runs the compactions that are due.
            let started = Instant::now();
            db.checkpoint()?;
            if variant.engine == EngineKind::Lsm {
                table.maintain()?;
                db.checkpoint()?;
            }
            let checkpoint_s = started.elapsed().as_secs_f64();
            let after = db.stats()?.ledger.context("the engine keeps no ledger")?;
            let delta = after.delta(&before);
            let stats = table.stats()?;
            let io = IoSummary::from_ledger(&delta);
            let mut total = load.clone();
            total.phase = "load+checkpoint".into();
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
            let primary = match variant.engine {
                EngineKind::Lsm => None,
                _ => Some(tree_shape(&file_ending(&dir, ".primary.idx")?, page_size)?),
            };
            let heap = match variant.engine {
                EngineKind::Heap => Some(heap_shape(&file_ending(&dir, ".heap")?, page_size)?),
                _ => None,
            };
            let mut params = vec![
                ("insert_order", order.into()),
                ("rows", rows.into()),
                ("batch_rows", BATCH_ROWS.into()),
            ];
            if let Some(s) = variant.split {
                params.push(("split_policy", split_name(s).into()));
            }
            if let Some(t) = primary {
                params.push(("primary_leaf_pages", t.leaves.into()));
                params.push(("primary_height", t.height.into()));
                params.push(("primary_splits", t.splits().into()));
                params.push(("primary_leaf_fill", t.leaf_fill.into()));
            }
            if let Some(h) = heap {
                params.push(("heap_pages", h.pages.into()));
                params.push(("heap_fill", h.fill.into()));
            }
            ctx.record(
                variant.engine.name(),
                &params,
                &config,
                Some(load),
                total.clone(),
            );
            ctx.verify(&*db)?;
            drop(table);
            drop(db);
            ctx.discard(&dir);
            points.push(Point {
                variant,
                order,
                rows,
                total,
                primary,
                heap,
            });
        }
    }
    Ok(report(&points, rows, user_bytes_per_row, &config))
}

fn find<'a>(
    points: &'a [Point],
    engine: EngineKind,
    split: Option<SplitPolicy>,
    order: &str,
) -> Option<&'a Point> {
    points
        .iter()
        .find(|p| p.variant.engine == engine && p.variant.split == split && p.order == order)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn mib(bytes: u64) -> String {
    num(bytes as f64 / (1u64 << 20) as f64)
}

fn report(points: &[Point], rows: u64, user_bytes_per_row: u64, config: &StorageConfig) -> Report {
    // Shape and space.
    let mut shape = TextTable::new(&[
        "engine (split policy)",
        "insert order",
        "primary leaves",
        "height",
        "leaf fill",
        "splits",
        "heap pages",
        "heap fill",
        "size (MiB)",
        "space amp.",
        "rows/s",
    ]);
    for p in points {
        let dash = || "-".to_string();
        shape.row(vec![
            p.variant.label(),
            p.order.into(),
            p.primary.map_or_else(dash, |t| t.leaves.to_string()),
            p.primary.map_or_else(dash, |t| t.height.to_string()),
            p.primary.map_or_else(dash, |t| pct(t.leaf_fill)),
            p.primary.map_or_else(dash, |t| t.splits().to_string()),
            p.heap.map_or_else(dash, |h| h.pages.to_string()),
            p.heap.map_or_else(dash, |h| pct(h.fill)),
            mib(p.total.size_on_disk_bytes),
            format!("{:.2}", p.space_amplification()),
            num(p.rows_per_s()),
        ]);
    }
    // Writes by file and by cause.
    let causes: Vec<IoCause> = WRITE_CAUSES
        .iter()
        .copied()
        .filter(|&c| points.iter().any(|p| p.cause_kib_per_row(c) > 0.0))
        .collect();
    let mut headers: Vec<String> = vec![
        "engine (split policy)".into(),
        "insert order".into(),
        "KiB written/row".into(),
    ];
    headers.extend(
        FileKind::SHOWN
            .iter()
            .map(|k| format!("{} KiB/row", k.heading())),
    );
    headers.extend(causes.iter().map(|c| format!("{} KiB/row", c.name())));
    let mut writes = TextTable {
        headers,
        rows: Vec::new(),
    };
    for p in points {
        let mut cells = vec![p.variant.label(), p.order.into(), num(p.kib_per_row())];
        cells.extend(FileKind::SHOWN.iter().map(|&k| num(p.file_kib_per_row(k))));
        cells.extend(causes.iter().map(|&c| num(p.cause_kib_per_row(c))));
        writes.row(cells);
    }

    let mut variants: Vec<Variant> = Vec::new();
    for p in points {
        if !variants.contains(&p.variant) {
            variants.push(p.variant);
        }
    }
    let per_order = |variants: &[Variant], f: &dyn Fn(&Point) -> f64| {
        ORDERS
            .iter()
            .map(|&order| {
                (
                    order.to_string(),
                    variants
                        .iter()
                        .map(|v| find(points, v.engine, v.split, order).map_or(f64::NAN, f))
                        .collect::<Vec<f64>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    // The LSM has no leaves to fill: the fill plot shows the B+trees only.
    let trees: Vec<Variant> = variants
        .iter()
        .copied()
        .filter(|v| v.split.is_some())
        .collect();
    let fill_plot = Plot {
        file: "leaf_fill.svg".into(),
        title: "Average fill of the primary index's leaves (heap: its index)".into(),
        x_label: "engine (split policy)".into(),
        y_label: "leaf fill (%)".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories: trees.iter().map(|v| v.label()).collect(),
            series: per_order(&trees, &|p| {
                p.primary.map_or(f64::NAN, |t| t.leaf_fill * 100.0)
            }),
        },
    };
    let writes_plot = Plot {
        file: "kib_written_per_row.svg".into(),
        title: "KiB written to storage per row inserted (every file, checkpoint included)".into(),
        x_label: "engine (split policy)".into(),
        y_label: "KiB written per row".into(),
        log_y: false,
        kind: PlotKind::Bars {
            categories: variants.iter().map(|v| v.label()).collect(),
            series: per_order(&variants, &|p| p.kib_per_row()),
        },
    };

    let (findings, verdict) = findings(points);
    Report {
        setup: vec![
            format!(
                "A table `{TABLE_NAME}` of an integer primary key and a {PAYLOAD_BYTES}-byte \
                 text payload ({user_bytes_per_row} user bytes a row), no secondary index; \
                 {rows} rows inserted into each engine in batches of {BATCH_ROWS} rows (one \
                 synced commit each), once in ascending and once in random key order (the same \
                 keys, shuffled)."
            ),
            pool_line(config.pool_bytes as u64, rows * user_bytes_per_row),
            "Engines: heap (rows in heap pages, fillfactor 100, a primary-key B+tree of \
             TIDs), clustered (rows in the leaves of the primary-key B+tree), each with \
             middle splits and with insert-point splits in its B+tree, and lsm (the clustered layout on an \
             LSM tree, default leveled compaction)."
                .into(),
            "After the inserts: a checkpoint (the LSM also flushes and finishes its \
             compactions); writes are the ledger's delta over inserts and checkpoint; the \
             index and heap files are then read page by page for leaves, height, fill and \
             splits (splits = nodes - height in a tree that only grew)."
                .into(),
        ],
        expected: format!(
            "Ascending keys always go to the rightmost leaf: with middle splits each full \
             leaf is cut in half and the left half is never touched again (leaves ~50% full); \
             with insert-point splits the full leaf stays full (~100%), and either way the \
             tree is written about once, as an append. Random keys split leaves everywhere and \
             leave them ~{:.0}% full on average (ln 2), so the tree has more leaves, takes more \
             space, and each insert dirties a random page that a pool smaller than the tree \
             writes back again and again: more KiB written per row. The heap appends rows \
             wherever there is room whatever their key, so its pages are equally full in both \
             orders, but its primary-key index is a B+tree and behaves like one.",
            RANDOM_FILL_EXPECTED * 100.0
        ),
        sections: vec![
            Section {
                heading: "Tree shape, fill and space".into(),
                text: "Primary index (the clustered engines' table, the heap's index of TIDs) \
                       read page by page after the checkpoint; heap pages likewise; size on \
                       disk of the table's files (the LSM: its live tables) and over the user \
                       bytes inserted; rows/s over inserts and checkpoint."
                    .into(),
                table: Some(shape),
                plot: Some(fill_plot),
            },
            Section {
                heading: "Bytes written per row, by file and by cause".into(),
                text: "The I/O ledger's delta over the inserts and the checkpoint, per row \
                       inserted: by file (the log, the heap file, the primary index, the LSM's \
                       tables and manifest) and by cause (wal records, full-page images, \
                       eviction write-backs, checkpoint, LSM flush and compaction)."
                    .into(),
                table: Some(writes),
                plot: Some(writes_plot),
            },
        ],
        findings,
        verdict,
    }
}

/// Records whether one textbook expectation held.
fn expect(held: &mut Vec<String>, failed: &mut Vec<String>, ok: bool, text: String) {
    if ok {
        held.push(text);
    } else {
        failed.push(text);
    }
}

/// Whether a tree's leaf fill matches the textbook figure for its split policy and key
/// order: ~50% (middle) or ~100% (insert-point) after ascending keys, ~ln 2 after random.
fn fill_as_expected(split: SplitPolicy, order: &str, fill: f64) -> bool {
    match (order, split) {
        ("ascending", SplitPolicy::Middle) => (fill - 0.5).abs() <= FILL_TOLERANCE,
        ("ascending", SplitPolicy::InsertPoint) => fill >= 1.0 - FILL_TOLERANCE,
        _ => (fill - RANDOM_FILL_EXPECTED).abs() <= FILL_TOLERANCE,
    }
}

/// The leaf fill of each (split policy, order) of `engine`, as `policy order fill` phrases,
/// and whether every one matches the textbook.
fn fills(points: &[Point], engine: EngineKind) -> (Vec<String>, bool) {
    let mut phrases = Vec::new();
    let mut ok = true;
    for p in points.iter().filter(|p| p.variant.engine == engine) {
        if let (Some(split), Some(t)) = (p.variant.split, p.primary) {
            ok &= fill_as_expected(split, p.order, t.leaf_fill);
            phrases.push(format!(
                "{} {} {}",
                p.order,
                split_name(split),
                pct(t.leaf_fill)
            ));
        }
    }
    let ok = ok && !phrases.is_empty();
    (phrases, ok)
}

/// The setup's line about the pool: a quarter of the user data, or the floor.
fn pool_line(pool_bytes: u64, user_bytes: u64) -> String {
    let size = if pool_bytes < user_bytes {
        format!(
            "a quarter of the {} KiB of user data: the B+trees outgrow it",
            user_bytes / 1024
        )
    } else {
        format!(
            "its floor, more than the {} KiB of user data at this scale: nothing needs to be \
             evicted",
            user_bytes / 1024
        )
    };
    format!(
        "Buffer pool {} KiB, {size}. The LSM's block cache gets the same budget; its memtable \
         (4 MiB) is outside it, as RocksDB's write buffers are.",
        pool_bytes / 1024
    )
}

fn findings(points: &[Point]) -> (Vec<String>, Verdict) {
    let mut findings = Vec::new();
    let mut held = Vec::new();
    let mut failed = Vec::new();
    let cl = |split, order| find(points, EngineKind::Clustered, Some(split), order);
    if let (Some(mid_asc), Some(mid_rand), Some(ip_asc), Some(ip_rand)) = (
        cl(SplitPolicy::Middle, "ascending"),
        cl(SplitPolicy::Middle, "random"),
        cl(SplitPolicy::InsertPoint, "ascending"),
        cl(SplitPolicy::InsertPoint, "random"),
    ) && let (Some(ma), Some(mr), Some(ia), Some(ir)) = (
        mid_asc.primary,
        mid_rand.primary,
        ip_asc.primary,
        ip_rand.primary,
    ) {
        findings.push(format!(
            "Clustered B+tree, random keys: leaves {} full with middle splits and {} with \
             insert-point splits (ln 2 = {}); {} and {} node splits (leaves and internal \
             nodes) left {} and {} leaves. The insert-point rule only applies to a key past \
             the end of the rightmost leaf, which random keys rarely are.",
            pct(mr.leaf_fill),
            pct(ir.leaf_fill),
            pct(RANDOM_FILL_EXPECTED),
            mr.splits(),
            ir.splits(),
            mr.leaves,
            ir.leaves
        ));
        findings.push(format!(
            "Clustered B+tree, ascending keys: leaves {} full with middle splits ({} leaves, \
             {} node splits) and {} with insert-point splits ({} leaves, {} node splits). \
             A middle split leaves its left half behind, never to receive another key; the \
             insert-point split starts the new leaf with the new key and leaves the old one \
             full.",
            pct(ma.leaf_fill),
            ma.leaves,
            ma.splits(),
            pct(ia.leaf_fill),
            ia.leaves,
            ia.splits()
        ));
        if let Some(counter) = mid_rand.counter("primary_splits") {
            let derived = mr.splits();
            findings.push(format!(
                "The clustered engine's own split counter read {counter} after the random \
                 inserts with middle splits; nodes - height in its file gives {derived}{}.",
                if counter == derived {
                    ", the same".to_string()
                } else {
                    format!(" ({} apart)", counter.abs_diff(derived))
                }
            ));
        }
        findings.push(format!(
            "Space: with insert-point splits the clustered table takes {} MiB after ascending \
             inserts and {} MiB after random ones ({}); with middle splits {} MiB and {} MiB. \
             Space amplification (size over user bytes) is {:.2} after ascending inserts with \
             insert-point splits and {:.2} after random ones.",
            mib(ip_asc.total.size_on_disk_bytes),
            mib(ip_rand.total.size_on_disk_bytes),
            ratio(
                ip_rand.total.size_on_disk_bytes as f64,
                ip_asc.total.size_on_disk_bytes as f64
            ),
            mib(mid_asc.total.size_on_disk_bytes),
            mib(mid_rand.total.size_on_disk_bytes),
            ip_asc.space_amplification(),
            ip_rand.space_amplification()
        ));
        let evict_rand = ip_rand.cause_kib_per_row(IoCause::EvictionWriteBack);
        let evict_asc = ip_asc.cause_kib_per_row(IoCause::EvictionWriteBack);
        let why = if evict_rand > evict_asc {
            format!(
                "Eviction write-backs make the difference: a random insert dirties a leaf \
                 anywhere in a tree bigger than the pool, which is written back ({}x as much \
                 as after ascending inserts) and dirtied again later, and logged whole by the \
                 first change after each checkpoint; an ascending insert dirties the leaf \
                 being filled, written about once.",
                if evict_asc > 0.0 {
                    format!("{:.0}", evict_rand / evict_asc)
                } else {
                    "infinitely".into()
                }
            )
        } else {
            "Nothing was evicted more after random inserts: at this scale the tree fits in \
             the pool, so each leaf is written once by the checkpoint whatever the order."
                .to_string()
        };
        findings.push(format!(
            "Writes: random inserts into the clustered tree (insert-point splits) wrote {} \
             KiB per row against {} KiB ascending ({}): {} KiB/row to the primary index file \
             ({} by eviction write-backs, {} by the checkpoint) and {} KiB/row to the log ({} \
             of it full-page images), against {} KiB/row to the index ({} by eviction) and {} \
             KiB/row to the log ({} full-page images) after ascending inserts. {why} \
             Throughput: {} rows/s random against {} ascending.",
            num(ip_rand.kib_per_row()),
            num(ip_asc.kib_per_row()),
            ratio(ip_rand.kib_per_row(), ip_asc.kib_per_row()),
            num(ip_rand.file_kib_per_row(FileKind::Primary)),
            num(evict_rand),
            num(ip_rand.cause_kib_per_row(IoCause::Checkpoint)),
            num(ip_rand.file_kib_per_row(FileKind::Log)),
            num(ip_rand.cause_kib_per_row(IoCause::FullPageImage)),
            num(ip_asc.file_kib_per_row(FileKind::Primary)),
            num(evict_asc),
            num(ip_asc.file_kib_per_row(FileKind::Log)),
            num(ip_asc.cause_kib_per_row(IoCause::FullPageImage)),
            num(ip_rand.rows_per_s()),
            num(ip_asc.rows_per_s())
        ));
        let extra_splits = ma.splits().saturating_sub(ia.splits());
        let extra_log_kib = (mid_asc.file_kib_per_row(FileKind::Log)
            - ip_asc.file_kib_per_row(FileKind::Log))
            * mid_asc.rows as f64;
        if extra_splits > 0 && extra_log_kib > 0.0 {
            findings.push(format!(
                "The log pays for splits too: a split logs every page it changes as an image. \
                 Ascending inserts with middle splits made {extra_splits} more splits than \
                 with insert-point splits and wrote {} KiB/row of log against {}: about {} \
                 KiB of log per extra split.",
                num(mid_asc.file_kib_per_row(FileKind::Log)),
                num(ip_asc.file_kib_per_row(FileKind::Log)),
                num(extra_log_kib / extra_splits as f64)
            ));
        }
        let (phrases, ok) = fills(points, EngineKind::Clustered);
        expect(
            &mut held,
            &mut failed,
            ok,
            format!(
                "the clustered tree's leaves fill as the textbook says ({})",
                phrases.join(", ")
            ),
        );
        expect(
            &mut held,
            &mut failed,
            ip_rand.total.size_on_disk_bytes > ip_asc.total.size_on_disk_bytes
                && ir.leaves > ia.leaves,
            format!(
                "a bigger clustered tree after random keys than after ascending keys with \
                 insert-point splits ({} against {} leaves, {} against {} MiB)",
                ir.leaves,
                ia.leaves,
                mib(ip_rand.total.size_on_disk_bytes),
                mib(ip_asc.total.size_on_disk_bytes)
            ),
        );
        expect(
            &mut held,
            &mut failed,
            ip_rand.kib_per_row() > ip_asc.kib_per_row()
                && mid_rand.kib_per_row() > mid_asc.kib_per_row(),
            format!(
                "more written per row after random keys ({} against {} KiB with insert-point \
                 splits, {} against {} with middle splits)",
                num(ip_rand.kib_per_row()),
                num(ip_asc.kib_per_row()),
                num(mid_rand.kib_per_row()),
                num(mid_asc.kib_per_row())
            ),
        );
    }
    let heap = |split, order| find(points, EngineKind::Heap, Some(split), order);
    if let (Some(ha), Some(hr)) = (
        heap(SplitPolicy::InsertPoint, "ascending"),
        heap(SplitPolicy::InsertPoint, "random"),
    ) && let (Some(hsa), Some(hsr), Some(ta), Some(tr)) =
        (ha.heap, hr.heap, ha.primary, hr.primary)
    {
        let mid = heap(SplitPolicy::Middle, "ascending").and_then(|p| p.primary);
        findings.push(format!(
            "Heap (index with insert-point splits): {} heap pages {} full after ascending \
             inserts, {} pages {} full after random ones; {} and {} KiB/row written to the \
             heap file: rows go to the end of the heap whatever their key. Its primary-key \
             index has leaves {} full ({} leaves) after ascending keys and {} ({} leaves) \
             after random ones{}, and {} against {} KiB/row written to the index file ({} \
             against {} KiB/row by eviction in all).",
            hsa.pages,
            pct(hsa.fill),
            hsr.pages,
            pct(hsr.fill),
            num(ha.file_kib_per_row(FileKind::Heap)),
            num(hr.file_kib_per_row(FileKind::Heap)),
            pct(ta.leaf_fill),
            ta.leaves,
            pct(tr.leaf_fill),
            tr.leaves,
            mid.map_or(String::new(), |m| format!(
                " ({} with middle splits after ascending keys)",
                pct(m.leaf_fill)
            )),
            num(ha.file_kib_per_row(FileKind::Primary)),
            num(hr.file_kib_per_row(FileKind::Primary)),
            num(ha.cause_kib_per_row(IoCause::EvictionWriteBack)),
            num(hr.cause_kib_per_row(IoCause::EvictionWriteBack))
        ));
        findings.push(format!(
            "The heap's index is smaller than the clustered tree ({} against {} leaves after \
             random keys: an entry is a key and a TID, not a row), so more of it stays in the \
             pool; the heap wrote {} KiB/row in all after random keys against the clustered \
             engine's {}.",
            tr.leaves,
            cl(SplitPolicy::InsertPoint, "random")
                .and_then(|p| p.primary)
                .map_or("-".into(), |t| t.leaves.to_string()),
            num(hr.kib_per_row()),
            cl(SplitPolicy::InsertPoint, "random").map_or("-".into(), |p| num(p.kib_per_row()))
        ));
        expect(
            &mut held,
            &mut failed,
            (hsa.fill - hsr.fill).abs() <= HEAP_FILL_SAME && hsa.pages.abs_diff(hsr.pages) <= 1,
            format!(
                "heap pages equally full in both orders ({} pages {} full, {} pages {} full)",
                hsa.pages,
                pct(hsa.fill),
                hsr.pages,
                pct(hsr.fill)
            ),
        );
        let (phrases, ok) = fills(points, EngineKind::Heap);
        expect(
            &mut held,
            &mut failed,
            ok && hr.file_kib_per_row(FileKind::Primary) > ha.file_kib_per_row(FileKind::Primary),
            format!(
                "the heap's primary index behaves like a B+tree: fill {}, {} against {} KiB/row \
                 written to it after random and ascending keys",
                phrases.join(", "),
                num(hr.file_kib_per_row(FileKind::Primary)),
                num(ha.file_kib_per_row(FileKind::Primary))
            ),
        );
    }
    if let (Some(la), Some(lr)) = (
        find(points, EngineKind::Lsm, None, "ascending"),
        find(points, EngineKind::Lsm, None, "random"),
    ) {
        fn compaction(p: &Point) -> Option<&storelab_workload::results::Io> {
            p.total.io.by_cause.get(IoCause::Compaction.name())
        }
        let kib = |b: u64, p: &Point| num(b as f64 / 1024.0 / p.rows.max(1) as f64);
        let (ca, cr) = (compaction(la), compaction(lr));
        let (wa, wr) = (
            ca.map_or(0, |c| c.write_bytes),
            cr.map_or(0, |c| c.write_bytes),
        );
        let (ra, rr) = (
            ca.map_or(0, |c| c.read_bytes),
            cr.map_or(0, |c| c.read_bytes),
        );
        let why = if wa == 0 && wr == 0 {
            "No compaction ran: too few tables were flushed to trigger one.".to_string()
        } else if ra < rr {
            "With random keys a compaction from L0 also reads and rewrites the tables of \
             the level below that the new keys overlap; ascending keys overlap less of it \
             (this LSM has no trivial move, so a table that overlaps nothing is still \
             rewritten once)."
                .to_string()
        } else {
            "Compactions read as much with ascending keys as with random ones: every \
             compaction rewrote its inputs whatever their overlap (this LSM has no trivial \
             move)."
                .to_string()
        };
        findings.push(format!(
            "LSM: {} MiB on disk after ascending inserts and {} MiB after random ones (its \
             tables are written sorted and packed whatever the order); {} against {} KiB/row \
             written, of which flushes {} against {} and compaction {} against {} KiB/row \
             (compaction read {} against {} KiB/row). {why} Throughput {} against {} rows/s.",
            mib(la.total.size_on_disk_bytes),
            mib(lr.total.size_on_disk_bytes),
            num(la.kib_per_row()),
            num(lr.kib_per_row()),
            num(la.cause_kib_per_row(IoCause::Flush)),
            num(lr.cause_kib_per_row(IoCause::Flush)),
            kib(wa, la),
            kib(wr, lr),
            kib(ra, la),
            kib(rr, lr),
            num(la.rows_per_s()),
            num(lr.rows_per_s())
        ));
    }
    let verdict = if failed.is_empty() && !held.is_empty() {
        Verdict::Agrees(format!(
            "Every textbook expectation held: {}.",
            held.join("; ")
        ))
    } else if held.is_empty() {
        Verdict::Contradicts(format!(
            "None of the textbook expectations held: {}. The tables above show what the \
             trees did instead.",
            failed.join("; ")
        ))
    } else {
        Verdict::Mixed(format!(
            "Held: {}. Did not hold: {}. The tables above show the figures behind each.",
            held.join("; "),
            failed.join("; ")
        ))
    };
    (findings, verdict)
}
