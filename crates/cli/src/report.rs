//! `storelab report`: turns result files into a Markdown report with SVG plots.
//!
//! # What it reads
//!
//! Result files as `storelab compare --json`, `load --json` and `run --json` write them: one
//! `RunResult` JSON object per line (a file holding one JSON array of them is accepted too).
//! Several files may be given; their results are pooled. Every object's `schema_version` is
//! checked *before* the object is decoded, so a file written by a storelab with another
//! layout is refused with a one-line message naming both versions instead of a confusing
//! "missing field" error. Everything is read and validated before anything is written.
//!
//! # What it writes
//!
//! ```text
//!   DIR/report.md          the configuration, then two side-by-side tables:
//!                            workload | metric        | engine 1 | engine 2 | ...
//!                            workload | cause: figure | engine 1 | engine 2 | ...
//!                          and a Markdown image link to each plot
//!   DIR/throughput.svg     grouped bars: ops/s per workload, one bar per engine (log scale)
//!   DIR/latency.svg        a panel per workload: one bar per engine and op type, shaded
//!                          p99.9 (light) > p99 > p50 (dark), drawn over each other (log scale)
//!   DIR/io_by_cause.svg    a row per workload: read requests per op and KiB written per op,
//!                          one bar per engine stacked by ledger cause (wal, fpi, eviction, ...)
//! ```
//!
//! A *column* is one engine's series of results. When the files hold the same engine and
//! workload more than once (two runs with different settings, say), the columns are told
//! apart by the configuration entries that differ between the results
//! (`heap (commit_mode=off)`), and identical repeats are numbered (`heap #2`).
//!
//! # Why these figures
//!
//! Throughput alone says which engine won, not why. The table puts beside it the figures the
//! design predicts the difference from (DESIGN.md, "Workloads, metrics and experiments"):
//! read requests per operation (how many pages an operation touches outside the pool), bytes
//! written per operation and write amplification (the cost of an update in each design), size
//! on disk (space amplification), and the I/O split by the ledger's cause, which says *which*
//! mechanism wrote the bytes: the log, full-page images, evictions or checkpoints.
//!
//! # Plots without fonts
//!
//! The plots are drawn with `plotters` using only its SVG backend. Text becomes SVG `<text>`
//! elements with an anchor, which the viewer lays out with its own fonts; plotters only
//! estimates text extents (for its axis label areas), which its font-less fallback does from
//! the character count. So no font file, fontconfig or freetype is needed to build or run
//! this, on any machine. The price: the estimate is crude, so the layout leaves generous
//! fixed margins, and the x-axis category names and the legends are placed by this module
//! rather than by plotters' automatic layout.
//!
//! # Simplified versus a real reporting tool
//!
//! - No statistics across repeated runs (medians, confidence intervals): repeats are shown as
//!   separate columns; compute medians by hand or with a notebook from the JSON.
//! - Latency per op type comes from the measured phase only; load phases are summarised by
//!   their throughput.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use storelab_workload::results::{Io, LatencySummary};
use storelab_workload::{RESULTS_SCHEMA_VERSION, RunResult};

use crate::workload_cmd::fmt_num;

/// The Markdown file written into the output directory.
pub const REPORT_FILE_NAME: &str = "report.md";
/// The throughput plot's file name.
pub const THROUGHPUT_SVG: &str = "throughput.svg";
/// The latency percentiles plot's file name.
pub const LATENCY_SVG: &str = "latency.svg";
/// The I/O by cause plot's file name.
pub const IO_BY_CAUSE_SVG: &str = "io_by_cause.svg";

/// Results read from all files together, at most this many: a report of more would be
/// unreadable, and a larger input is more likely a wrong file than an experiment.
pub const RESULT_COUNT_MAX: usize = 10_000;

/// The largest result file read: a result is a few KiB, so this is far more than any
/// experiment writes, and it keeps a wrong file (a database file, say) from being loaded whole.
pub const RESULT_FILE_SIZE_MAX: u64 = 256 << 20;

/// Width of every plot, in pixels.
const PLOT_WIDTH_PX: u32 = 960;
/// Height of one panel (one chart) in a plot, in pixels.
const PANEL_HEIGHT_PX: u32 = 320;
/// Room at the right of each row of panels for its legend, in pixels, at least.
const LEGEND_WIDTH_PX: u32 = 190;

/// Flags of `storelab report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Result files (JSON lines written by compare/load/run --json)
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Directory for report.md and the SVG plots (created if missing)
    #[arg(long, value_name = "DIR", default_value = "report")]
    pub out: PathBuf,
}

/// `storelab report`: reads every file, then writes report.md and the plots into `--out`.
pub fn run(args: &ReportArgs) -> Result<()> {
    let mut results = Vec::new();
    for path in &args.files {
        results.extend(read_results(path)?);
        if results.len() > RESULT_COUNT_MAX {
            bail!(
                "more than {RESULT_COUNT_MAX} results in {}: give fewer files",
                args.files
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    let grid = ResultGrid::new(results);
    let sources: Vec<String> = args.files.iter().map(|p| p.display().to_string()).collect();
    let plots = [
        (THROUGHPUT_SVG, grid.throughput_svg()?),
        (LATENCY_SVG, grid.latency_svg()?),
        (IO_BY_CAUSE_SVG, grid.io_by_cause_svg()?),
    ];
    let markdown = grid.markdown(&sources);

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("create the output directory {}", args.out.display()))?;
    for (name, svg) in &plots {
        let path = args.out.join(name);
        std::fs::write(&path, svg).with_context(|| format!("write {}", path.display()))?;
    }
    let path = args.out.join(REPORT_FILE_NAME);
    std::fs::write(&path, markdown).with_context(|| format!("write {}", path.display()))?;
    println!(
        "wrote {} and {} plots ({} results: {} engine column(s) x {} workload(s))",
        path.display(),
        plots.len(),
        grid.cells.len(),
        grid.columns.len(),
        grid.workloads.len()
    );
    Ok(())
}

/// Reads one result file: JSON lines (or one JSON array) of [`RunResult`], each of schema
/// version [`RESULTS_SCHEMA_VERSION`].
pub fn read_results(path: &Path) -> Result<Vec<RunResult>> {
    let size_bytes = std::fs::metadata(path)
        .with_context(|| format!("read {}", path.display()))?
        .len();
    if size_bytes > RESULT_FILE_SIZE_MAX {
        bail!(
            "{} is {size_bytes} bytes, more than a result file can be ({RESULT_FILE_SIZE_MAX})",
            path.display()
        );
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    // Each value with where it came from, for messages: "line N" or "item N" of an array.
    let mut values: Vec<(String, serde_json::Value)> = Vec::new();
    if text.trim_start().starts_with('[') {
        let array: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a JSON array of results", path.display()))?;
        values.extend(
            array
                .into_iter()
                .enumerate()
                .map(|(i, v)| (format!("item {}", i + 1), v)),
        );
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value = serde_json::from_str(line).with_context(|| {
                format!("{} line {}: not a JSON result line", path.display(), i + 1)
            })?;
            values.push((format!("line {}", i + 1), value));
        }
    }
    if values.is_empty() {
        bail!(
            "{} holds no results (write some with storelab compare --json FILE)",
            path.display()
        );
    }
    let mut results = Vec::with_capacity(values.len());
    for (place, value) in values {
        let at = || format!("{} {place}", path.display());
        let version = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| anyhow!("{}: not a storelab result (no schema_version)", at()))?;
        if version != u64::from(RESULTS_SCHEMA_VERSION) {
            bail!(
                "{}: results schema version {version} is not supported (accepted: \
                 {RESULTS_SCHEMA_VERSION}); use the storelab that wrote it, or re-run the \
                 experiment",
                at()
            );
        }
        let result: RunResult = serde_json::from_value(value)
            .with_context(|| format!("{}: not a storelab result", at()))?;
        results.push(result);
    }
    Ok(results)
}

/// The results laid out as the report shows them: workloads down, columns across.
#[derive(Debug)]
pub struct ResultGrid {
    /// Workload names, in the order they first appear in the files.
    pub workloads: Vec<String>,
    /// Column labels (an engine, qualified when needed), in order of first appearance.
    pub columns: Vec<String>,
    /// The result of (workload index, column index).
    pub cells: BTreeMap<(usize, usize), RunResult>,
    /// Configuration entries equal in every result.
    pub shared_config: BTreeMap<String, serde_json::Value>,
    /// Configuration keys whose values differ between results.
    pub varying_config: Vec<String>,
}

/// How a table row computes its cell from a result (`None`: no figure, shown as `-`).
type CellFn = Box<dyn Fn(&RunResult) -> Option<String>>;

/// Configuration entries that never tell columns apart: the engine is the label already, and
/// the version says nothing about the experiment.
const CONFIG_KEYS_IGNORED: &[&str] = &["engine", "storelab_version"];

impl ResultGrid {
    /// Lays results out; see the module doc for how columns are labelled.
    pub fn new(results: Vec<RunResult>) -> Self {
        let mut keys: BTreeSet<&String> = BTreeSet::new();
        for r in &results {
            keys.extend(r.config.keys());
        }
        let mut shared_config = BTreeMap::new();
        let mut varying_config = Vec::new();
        for key in keys {
            let first = results.first().and_then(|r| r.config.get(key));
            if results.iter().all(|r| r.config.get(key) == first) {
                if let Some(v) = first {
                    shared_config.insert(key.clone(), v.clone());
                }
            } else if !CONFIG_KEYS_IGNORED.contains(&key.as_str()) {
                varying_config.push(key.clone());
            }
        }
        let mut pairs = BTreeSet::new();
        let repeats = !results
            .iter()
            .all(|r| pairs.insert((r.engine.as_str(), r.workload.as_str())));

        let mut grid = ResultGrid {
            workloads: Vec::new(),
            columns: Vec::new(),
            cells: BTreeMap::new(),
            shared_config,
            varying_config,
        };
        let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
        for r in results {
            let mut label = r.engine.clone();
            if repeats && !grid.varying_config.is_empty() {
                let settings: Vec<String> = grid
                    .varying_config
                    .iter()
                    .map(|k| format!("{k}={}", config_text(r.config.get(k))))
                    .collect();
                label = format!("{label} ({})", settings.join(", "));
            }
            let n = seen.entry((label.clone(), r.workload.clone())).or_insert(0);
            *n += 1;
            if *n > 1 {
                label = format!("{label} #{n}");
            }
            let w = index_of(&mut grid.workloads, &r.workload);
            let c = index_of(&mut grid.columns, &label);
            grid.cells.insert((w, c), r);
        }
        grid
    }

    fn cell(&self, w: usize, c: usize) -> Option<&RunResult> {
        self.cells.get(&(w, c))
    }

    /// Op types measured in workload `w` by any column, sorted.
    fn op_types(&self, w: usize) -> Vec<String> {
        let mut ops = BTreeSet::new();
        for c in 0..self.columns.len() {
            if let Some(r) = self.cell(w, c) {
                ops.extend(r.latency_us.keys().cloned());
            }
        }
        ops.into_iter().collect()
    }

    /// Ledger causes seen anywhere, sorted, so that a cause has one colour in every panel.
    fn causes(&self) -> Vec<String> {
        let mut causes = BTreeSet::new();
        for r in self.cells.values() {
            causes.extend(r.io.by_cause.keys().cloned());
        }
        causes.into_iter().collect()
    }

    /// One table row: a label and a cell per column ("-" where the column has no result or
    /// `f` has no figure).
    fn row(&self, w: usize, label: &str, f: &dyn Fn(&RunResult) -> Option<String>) -> String {
        let mut line = format!("| {label} |");
        for c in 0..self.columns.len() {
            let cell = self.cell(w, c).and_then(f).unwrap_or_else(|| "-".into());
            line.push_str(&format!(" {cell} |"));
        }
        line
    }

    fn table_header(&self, first: &str, second: &str) -> String {
        let mut s = format!("| {first} | {second} |");
        for c in &self.columns {
            s.push_str(&format!(" {c} |"));
        }
        s.push_str("\n|---|---|");
        for _ in &self.columns {
            s.push_str("---:|");
        }
        s.push('\n');
        s
    }

    /// The Markdown report; `sources` are the result files' names.
    pub fn markdown(&self, sources: &[String]) -> String {
        let mut md = String::from("# storelab report\n\n");
        md.push_str(&format!(
            "{} result(s) ({} column(s) x {} workload(s)) from {}.\n\n",
            self.cells.len(),
            self.columns.len(),
            self.workloads.len(),
            sources
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        md.push_str("## Configuration\n\n");
        if !self.shared_config.is_empty() {
            md.push_str("Shared by every result: ");
            let entries: Vec<String> = self
                .shared_config
                .iter()
                .map(|(k, v)| format!("`{k}` = {}", config_text(Some(v))))
                .collect();
            md.push_str(&entries.join(", "));
            md.push_str(".\n\n");
        }
        if !self.varying_config.is_empty() {
            md.push_str(&format!(
                "Differing between results: {}.\n\n",
                self.varying_config
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }

        md.push_str("## Side by side\n\n");
        md.push_str(
            "Per operation: read requests to storage (pool misses and prefetches) and bytes \
             written to storage (data files, log, checkpoints). Write amplification: bytes \
             written to storage per byte of user data written.\n\n",
        );
        md.push_str(&self.table_header("workload", "metric"));
        for (w, name) in self.workloads.iter().enumerate() {
            let mut rows: Vec<(String, CellFn)> = vec![(
                "throughput (ops/s)".into(),
                Box::new(|r| Some(fmt_num(r.throughput_ops_per_s))),
            )];
            for op in self.op_types(w) {
                for (p, get) in [
                    ("p50", (|l| l.p50) as fn(&LatencySummary) -> u64),
                    ("p99", |l| l.p99),
                ] {
                    let key = op.clone();
                    rows.push((
                        format!("{op} latency {p} (us)"),
                        Box::new(move |r| r.latency_us.get(&key).map(|l| get(l).to_string())),
                    ));
                }
            }
            rows.push((
                "reads/op".into(),
                Box::new(|r| Some(fmt_num(r.run.reads_per_op))),
            ));
            rows.push((
                "KiB written/op".into(),
                Box::new(|r| Some(fmt_num(per_op(r, r.io.total.write_bytes) / 1024.0))),
            ));
            rows.push((
                "write amplification".into(),
                Box::new(|r| r.write_amplification.map(fmt_num)),
            ));
            rows.push((
                "size on disk (MiB)".into(),
                Box::new(|r| Some(fmt_num(r.size_on_disk_bytes as f64 / 1048576.0))),
            ));
            for (i, (label, f)) in rows.iter().enumerate() {
                let workload = if i == 0 { name.as_str() } else { "" };
                md.push_str(&self.row(w, &format!("{workload} | {label}"), f.as_ref()));
                md.push('\n');
            }
        }

        md.push_str("\n## I/O per operation by cause\n\n");
        md.push_str(
            "The I/O ledger's delta over the measured phase, split by why the I/O was issued, \
             divided by the phase's operations. Rows that are zero for every column are left \
             out.\n\n",
        );
        md.push_str(&self.table_header("workload", "cause: figure"));
        let causes = self.causes();
        for (w, name) in self.workloads.iter().enumerate() {
            let mut first = true;
            for cause in &causes {
                type Figure = fn(&Io) -> u64;
                let figures: [(&str, Figure, f64); 3] = [
                    ("reads/op", |io| io.read_count, 1.0),
                    ("KiB written/op", |io| io.write_bytes, 1024.0),
                    ("syncs/op", |io| io.sync_count, 1.0),
                ];
                for (figure, get, unit) in figures {
                    let value = |r: &RunResult| {
                        r.io.by_cause.get(cause).map(|io| per_op(r, get(io)) / unit)
                    };
                    let any = (0..self.columns.len())
                        .filter_map(|c| self.cell(w, c))
                        .any(|r| value(r).is_some_and(|v| v > 0.0));
                    if !any {
                        continue;
                    }
                    let workload = if first { name.as_str() } else { "" };
                    first = false;
                    let f = |r: &RunResult| Some(fmt_num(value(r).unwrap_or(0.0)));
                    md.push_str(&self.row(w, &format!("{workload} | {cause}: {figure}"), &f));
                    md.push('\n');
                }
            }
            if first {
                md.push_str(&self.row(w, &format!("{name} | (no I/O)"), &|_| Some("0".into())));
                md.push('\n');
            }
        }

        md.push_str("\n## Plots\n\n");
        md.push_str(&format!(
            "Throughput per engine and workload (log scale: compare ratios, not \
             differences):\n\n![Throughput per engine and workload]({THROUGHPUT_SVG})\n\n"
        ));
        md.push_str(&format!(
            "Latency percentiles per operation type, one panel per workload (each bar shows \
             p99.9 light, p99 medium and p50 dark; log scale):\n\n\
             ![Latency percentiles per operation type]({LATENCY_SVG})\n\n"
        ));
        md.push_str(&format!(
            "I/O per operation by cause, one row per workload (read requests per operation \
             left, KiB written per operation right, stacked by the ledger's cause):\n\n\
             ![I/O per operation by cause]({IO_BY_CAUSE_SVG})\n"
        ));
        md
    }

    /// The throughput plot: one panel, workloads along x, a bar per column.
    pub fn throughput_svg(&self) -> Result<String> {
        let panel = BarPanel {
            title: "Throughput (ops/s)".into(),
            groups: self.workloads.clone(),
            bars: (0..self.workloads.len())
                .map(|w| {
                    (0..self.columns.len())
                        .map(|c| self.cell(w, c).map(|r| vec![r.throughput_ops_per_s]))
                        .collect()
                })
                .collect(),
            mode: BarMode::Grouped,
        };
        render_svg(&[PanelRow {
            panels: vec![panel],
            legend: self.columns.clone(),
        }])
    }

    /// The latency plot: a panel per workload, op types along x, a bar per column with its
    /// p99.9, p99 and p50 drawn over each other.
    pub fn latency_svg(&self) -> Result<String> {
        let rows: Vec<PanelRow> = self
            .workloads
            .iter()
            .enumerate()
            .map(|(w, name)| {
                let ops = self.op_types(w);
                let bars = ops
                    .iter()
                    .map(|op| {
                        (0..self.columns.len())
                            .map(|c| {
                                let l = self.cell(w, c)?.latency_us.get(op)?;
                                Some(vec![l.p999 as f64, l.p99 as f64, l.p50 as f64])
                            })
                            .collect()
                    })
                    .collect();
                PanelRow {
                    panels: vec![BarPanel {
                        title: format!("{name}: latency (us), p99.9 / p99 / p50"),
                        groups: ops,
                        bars,
                        mode: BarMode::Overlay,
                    }],
                    legend: self.columns.clone(),
                }
            })
            .collect();
        render_svg(&rows)
    }

    /// The I/O plot: a row per workload, reads/op and KiB written/op, a bar per column
    /// stacked by cause.
    pub fn io_by_cause_svg(&self) -> Result<String> {
        type Figure = fn(&Io) -> f64;
        const FIGURES: [(&str, Figure); 2] = [
            ("read requests/op", |io| io.read_count as f64),
            ("KiB written/op", |io| io.write_bytes as f64 / 1024.0),
        ];
        let causes = self.causes();
        let rows: Vec<PanelRow> = self
            .workloads
            .iter()
            .enumerate()
            .map(|(w, name)| {
                let panels = FIGURES
                    .iter()
                    .map(|(figure, get)| BarPanel {
                        title: format!("{name}: {figure}"),
                        groups: self.columns.clone(),
                        bars: (0..self.columns.len())
                            .map(|c| {
                                let stack = self.cell(w, c).map(|r| {
                                    causes
                                        .iter()
                                        .map(|cause| {
                                            r.io.by_cause
                                                .get(cause)
                                                .map_or(0.0, |io| get(io) / r.ops.max(1) as f64)
                                        })
                                        .collect()
                                });
                                vec![stack]
                            })
                            .collect(),
                        mode: BarMode::Stacked,
                    })
                    .collect();
                PanelRow {
                    panels,
                    legend: causes.clone(),
                }
            })
            .collect();
        render_svg(&rows)
    }
}

fn index_of(list: &mut Vec<String>, item: &str) -> usize {
    match list.iter().position(|x| x == item) {
        Some(i) => i,
        None => {
            list.push(item.to_string());
            list.len() - 1
        }
    }
}

fn per_op(r: &RunResult, count: u64) -> f64 {
    count as f64 / r.ops.max(1) as f64
}

/// A configuration value as text: strings without quotes, a missing entry as `-`.
fn config_text(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "-".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// How the values of one bar are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BarMode {
    /// One value per bar, coloured by the bar's column; log scale.
    Grouped,
    /// Several values per bar, each drawn from the axis up over the previous one, largest
    /// first, lighter to darker (percentiles); coloured by column; log scale.
    Overlay,
    /// Several values per bar stacked on each other, coloured by layer (cause); linear scale.
    Stacked,
}

/// One chart: groups along x, in each group a bar per column (Grouped, Overlay) or a single
/// bar (Stacked).
struct BarPanel {
    title: String,
    /// Category names along the x axis.
    groups: Vec<String>,
    /// `bars[group][bar]`: the bar's values (`None`: no result, no bar).
    bars: Vec<Vec<Option<Vec<f64>>>>,
    mode: BarMode,
}

/// A row of panels side by side, sharing one legend at the right.
struct PanelRow {
    panels: Vec<BarPanel>,
    /// Names of the colours: columns (Grouped, Overlay) or layers (Stacked).
    legend: Vec<String>,
}

/// The colour of legend entry `i`: a fixed palette (matplotlib's "tab10"), so that an entry
/// has the same colour in every plot of a report.
pub(crate) fn colour(i: usize) -> RGBColor {
    const PALETTE: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    PALETTE[i % PALETTE.len()]
}

/// Draws rows of panels into one SVG document: each row is split into its legend at the
/// right and its panels, evenly, at the left.
fn render_svg(rows: &[PanelRow]) -> Result<String> {
    let height_px = PANEL_HEIGHT_PX * rows.len().max(1) as u32;
    let mut svg = String::new();
    {
        let root =
            SVGBackend::with_string(&mut svg, (PLOT_WIDTH_PX, height_px)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((rows.len().max(1), 1));
        for (row, area) in rows.iter().zip(&areas) {
            // Long column labels ("heap (commit_mode=off)") widen the legend, up to half
            // the plot; ~9 px per character at the legend's font size.
            let longest = row.legend.iter().map(|s| s.len()).max().unwrap_or(0) as u32;
            let legend_width_px = (30 + 9 * longest).clamp(LEGEND_WIDTH_PX, PLOT_WIDTH_PX / 2);
            let (charts, legend) = area.split_horizontally(PLOT_WIDTH_PX - legend_width_px);
            let cells = charts.split_evenly((1, row.panels.len().max(1)));
            for (panel, cell) in row.panels.iter().zip(&cells) {
                draw_panel(cell, panel)?;
            }
            let overlay = row.panels.iter().any(|p| p.mode == BarMode::Overlay);
            draw_legend(&legend, &row.legend, overlay)?;
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

pub(crate) fn plot_error<E: std::error::Error + Send + Sync>(
    e: DrawingAreaErrorKind<E>,
) -> anyhow::Error {
    anyhow!("drawing a plot: {e}")
}

/// The y range of a panel: from a power of ten at or below the smallest positive value to one
/// above the largest (log scale), or from zero to the tallest stack plus headroom (linear).
fn y_range(panel: &BarPanel) -> (f64, f64) {
    let values = panel.bars.iter().flatten().flatten();
    if panel.mode == BarMode::Stacked {
        let top = values
            .map(|v| v.iter().sum::<f64>())
            .fold(0.0_f64, f64::max);
        return (0.0, if top > 0.0 { top * 1.15 } else { 1.0 });
    }
    let positive: Vec<f64> = values.flatten().copied().filter(|v| *v > 0.0).collect();
    if positive.is_empty() {
        return (1.0, 10.0);
    }
    let lo = positive.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = positive.iter().copied().fold(0.0_f64, f64::max);
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf((hi * 1.5).log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

/// An axis tick: 1.5k, 20k, 3M rather than 1500, 20000, 3000000.
pub(crate) fn axis_text(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if v.abs() >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if v.abs() >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if v == 0.0 {
        "0".into()
    } else {
        trim(format!("{v:.2}"))
    }
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &BarPanel) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let (lo, hi) = y_range(panel);
    let x_range = 0.0..panel.groups.len().max(1) as f64;
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, ("sans-serif", 20))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(52);
    // Two arms because the y coordinate's type differs (linear or log); the drawing is shared.
    if panel.mode == BarMode::Stacked {
        let mut chart = builder
            .build_cartesian_2d(x_range, lo..hi)
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(6)
            .label_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0))
            .y_label_formatter(&|v| axis_text(*v))
            .draw()
            .map_err(plot_error)?;
        draw_bars(&mut chart, panel, lo)?;
        draw_group_labels(area, &chart, panel, lo)?;
        if panel
            .bars
            .iter()
            .flatten()
            .flatten()
            .flatten()
            .all(|v| *v <= 0.0)
        {
            let (x, y) = chart.backend_coord(&(panel.groups.len() as f64 / 2.0, hi / 2.0));
            let (area_x, area_y) = area.get_base_pixel();
            let grey = BLACK.mix(0.6);
            let style = TextStyle::from(("sans-serif", 16).into_font())
                .pos(Pos::new(HPos::Center, VPos::Center))
                .color(&grey);
            area.draw_text("none", &style, (x - area_x, y - area_y))
                .map_err(plot_error)?;
        }
    } else {
        let mut chart = builder
            .build_cartesian_2d(x_range, (lo..hi).log_scale())
            .map_err(plot_error)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_labels(8)
            .label_style(("sans-serif", 15))
            .y_label_formatter(&|v| axis_text(*v))
            .draw()
            .map_err(plot_error)?;
        draw_bars(&mut chart, panel, lo)?;
        draw_group_labels(area, &chart, panel, lo)?;
    }
    Ok(())
}

/// Fraction of a group's width left empty on each side, so that groups stand apart.
const GROUP_PADDING: f64 = 0.12;

fn draw_bars<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &BarPanel,
    base: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let mut rects = Vec::new();
    for (g, bars) in panel.bars.iter().enumerate() {
        let width = (1.0 - 2.0 * GROUP_PADDING) / bars.len().max(1) as f64;
        for (b, values) in bars.iter().enumerate() {
            let Some(values) = values else { continue };
            let x0 = g as f64 + GROUP_PADDING + b as f64 * width;
            let x1 = x0 + width * 0.9;
            match panel.mode {
                BarMode::Grouped | BarMode::Overlay => {
                    let layers = values.len().max(1);
                    for (layer, &v) in values.iter().enumerate() {
                        if v <= base {
                            continue;
                        }
                        // Lighter for the first (largest) layers, full colour for the last.
                        let alpha = (layer + 1) as f64 / layers as f64;
                        let style = colour(b).mix(alpha).filled();
                        rects.push(Rectangle::new([(x0, base), (x1, v)], style));
                    }
                }
                BarMode::Stacked => {
                    let mut bottom = base;
                    for (layer, &v) in values.iter().enumerate() {
                        if v <= 0.0 {
                            continue;
                        }
                        let style = colour(layer).filled();
                        rects.push(Rectangle::new([(x0, bottom), (x1, bottom + v)], style));
                        bottom += v;
                    }
                }
            }
        }
    }
    chart.draw_series(rects).map_err(plot_error)?;
    Ok(())
}

/// Writes each group's name under the middle of its group. plotters' own x labels are placed
/// at "nice" numbers, not at category centres, so they are drawn here instead.
fn draw_group_labels<DB, Y>(
    area: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &BarPanel,
    base: f64,
) -> Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let (area_x, area_y) = area.get_base_pixel();
    let style = TextStyle::from(("sans-serif", 17).into_font())
        .pos(Pos::new(HPos::Center, VPos::Top))
        .color(&BLACK);
    for (g, name) in panel.groups.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(g as f64 + 0.5, base));
        area.draw_text(name, &style, (x - area_x, y - area_y + 6))
            .map_err(plot_error)?;
    }
    Ok(())
}

/// The legend of a row: a colour swatch and a name per entry; for percentile bars, how to
/// read the shades.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    legend: &[String],
    overlay: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let style = TextStyle::from(("sans-serif", 17).into_font())
        .pos(Pos::new(HPos::Left, VPos::Center))
        .color(&BLACK);
    let top_px = 40;
    let step_px = 20;
    for (i, name) in legend.iter().enumerate() {
        let y = top_px + step_px * i as i32;
        area.draw(&Rectangle::new(
            [(4, y - 6), (16, y + 6)],
            colour(i).filled(),
        ))
        .map_err(plot_error)?;
        area.draw_text(name, &style, (22, y)).map_err(plot_error)?;
    }
    if overlay {
        let y = top_px + step_px * legend.len() as i32 + 10;
        area.draw_text("light to dark:", &style, (4, y))
            .map_err(plot_error)?;
        area.draw_text("p99.9, p99, p50", &style, (4, y + step_px))
            .map_err(plot_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result of 10 operations: 5 reads, 16 KiB written and 1 sync, all by the log.
    fn result(engine: &str, workload: &str, commit_mode: &str) -> RunResult {
        let io = |reads: u64, write_bytes: u64, syncs: u64| {
            serde_json::json!({
                "read_count": reads, "read_bytes": reads * 8192, "write_count": 2,
                "write_bytes": write_bytes, "sync_count": syncs
            })
        };
        let latency = serde_json::json!({
            "count": 10, "mean": 5.0, "p50": 4, "p95": 8, "p99": 9, "p999": 9, "max": 9
        });
        let value = serde_json::json!({
            "schema_version": 1, "engine": engine, "workload": workload, "ops": 10,
            "throughput_ops_per_s": 100.0,
            "latency_us": { "read": latency },
            "io": {
                "total": io(5, 16384, 1), "by_cause": { "wal": io(0, 16384, 1) }, "by_file": {}
            },
            "size_on_disk_bytes": 1048576, "write_amplification": 2.5,
            "space_amplification": null, "load": null,
            "run": {
                "phase": "run", "workload": workload, "ops": 10, "rows": 10, "elapsed_s": 0.1,
                "throughput_ops_per_s": 100.0, "latency_us": {}, "wal_bytes": 0,
                "user_bytes_written": 0, "write_amplification": null, "reads_per_op": 0.5,
                "size_on_disk_bytes": 0, "row_count": 0, "pool_hit_ratio": null,
                "counters": {},
                "io": { "total": io(0, 0, 0), "by_cause": {}, "by_file": {} }
            },
            "config": { "engine": engine, "commit_mode": commit_mode, "seed": 42 }
        });
        serde_json::from_value(value).expect("a valid result")
    }

    /// Distinct engines become plain columns; the shared configuration is collected.
    #[test]
    fn grid_labels_columns_by_engine() {
        let grid = ResultGrid::new(vec![
            result("heap", "ycsb-a", "sync"),
            result("clustered", "ycsb-a", "sync"),
            result("heap", "ycsb-c", "sync"),
        ]);
        assert_eq!(grid.columns, ["heap", "clustered"]);
        assert_eq!(grid.workloads, ["ycsb-a", "ycsb-c"]);
        assert!(grid.varying_config.is_empty());
        assert_eq!(grid.shared_config["commit_mode"], "sync");
        assert!(grid.cell(1, 1).is_none());
    }

    /// The same engine and workload twice: columns named by the differing setting, and
    /// identical repeats numbered.
    #[test]
    fn grid_tells_repeated_runs_apart() {
        let grid = ResultGrid::new(vec![
            result("heap", "ycsb-a", "sync"),
            result("heap", "ycsb-a", "off"),
            result("heap", "ycsb-a", "off"),
        ]);
        assert_eq!(
            grid.columns,
            [
                "heap (commit_mode=sync)",
                "heap (commit_mode=off)",
                "heap (commit_mode=off) #2"
            ]
        );
    }

    /// The Markdown has the side-by-side rows, the by-cause rows that are non-zero, and a
    /// link to every plot; a missing cell is a dash.
    #[test]
    fn markdown_has_tables_and_plot_links() {
        let grid = ResultGrid::new(vec![
            result("heap", "ycsb-a", "sync"),
            result("clustered", "ycsb-a", "sync"),
            result("heap", "ycsb-c", "sync"),
        ]);
        let md = grid.markdown(&["r.jsonl".into()]);
        assert!(
            md.contains("| workload | metric | heap | clustered |"),
            "{md}"
        );
        assert!(
            md.contains("| ycsb-a | throughput (ops/s) | 100 | 100 |"),
            "{md}"
        );
        assert!(md.contains("|  | read latency p99 (us) | 9 | 9 |"), "{md}");
        assert!(md.contains("|  | KiB written/op | 1.6 | 1.6 |"), "{md}");
        assert!(
            md.contains("| ycsb-c | throughput (ops/s) | 100 | - |"),
            "{md}"
        );
        assert!(
            md.contains("| ycsb-a | wal: KiB written/op | 1.6 | 1.6 |"),
            "{md}"
        );
        assert!(md.contains("|  | wal: syncs/op | 0.10 | 0.10 |"), "{md}");
        assert!(!md.contains("wal: reads/op"), "{md}");
        for svg in [THROUGHPUT_SVG, LATENCY_SVG, IO_BY_CAUSE_SVG] {
            assert!(md.contains(&format!("]({svg})")), "{md}");
        }
    }

    /// Every plot is an SVG document naming the workloads, columns and causes as text.
    #[test]
    fn plots_are_svg_with_labels() {
        let grid = ResultGrid::new(vec![
            result("heap", "ycsb-a", "sync"),
            result("clustered", "ycsb-a", "sync"),
        ]);
        let throughput = grid.throughput_svg().unwrap();
        assert!(throughput.starts_with("<svg"), "{throughput}");
        // plotters writes a text element's content on a line of its own.
        let label = |s: &str| format!("\n{s}\n</text>");
        assert!(throughput.contains(&label("ycsb-a")) && throughput.contains(&label("clustered")));
        let latency = grid.latency_svg().unwrap();
        assert!(latency.contains(&label("read")), "{latency}");
        let io = grid.io_by_cause_svg().unwrap();
        assert!(io.contains(&label("wal")), "{io}");
        assert!(io.contains("<rect"), "{io}");
    }

    /// A result line of another schema version is refused, naming both versions.
    #[test]
    fn read_results_refuses_other_schema_versions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, "{\"schema_version\":99,\"engine\":\"heap\"}\n").unwrap();
        let e = format!("{:#}", read_results(&path).unwrap_err());
        assert!(
            e.contains("schema version 99") && e.contains("accepted: 1"),
            "{e}"
        );
        std::fs::write(&path, "\n").unwrap();
        let e = format!("{:#}", read_results(&path).unwrap_err());
        assert!(e.contains("holds no results"), "{e}");
    }

    /// A file may hold JSON lines or one JSON array; an array's bad item is named by index.
    #[test]
    fn read_results_accepts_lines_and_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let results = [
            result("heap", "ycsb-a", "sync"),
            result("lsm", "ycsb-a", "sync"),
        ];
        let lines: Vec<String> = results
            .iter()
            .map(|r| serde_json::to_string(r).unwrap())
            .collect();
        std::fs::write(&path, lines.join("\n") + "\n\n").unwrap();
        assert_eq!(read_results(&path).unwrap(), results);
        std::fs::write(&path, serde_json::to_string(&results).unwrap()).unwrap();
        assert_eq!(read_results(&path).unwrap(), results);
        std::fs::write(&path, format!("[{}, {{\"schema_version\": 7}}]", lines[0])).unwrap();
        let e = format!("{:#}", read_results(&path).unwrap_err());
        assert!(e.contains("item 2: results schema version 7"), "{e}");
    }
}
