//! An experiment's report: what an experiment returns, and how it becomes `report.md`, the
//! SVG plots, `results.jsonl` and `summary.json` in its folder.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{Ctx, EXPERIMENTS, Experiment};

/// The Markdown file of a report.
pub const REPORT_FILE_NAME: &str = "report.md";
/// Every measured point, one results record per line.
pub const RESULTS_FILE_NAME: &str = "results.jsonl";
/// The verdict and timings, read by the index of all experiments.
pub const SUMMARY_FILE_NAME: &str = "summary.json";
/// The index written by `storelab experiment all`.
pub const INDEX_FILE_NAME: &str = "README.md";

/// What an experiment found, ready to be written.
#[derive(Debug, Default)]
pub struct Report {
    /// Setup, one bullet each: sizes, what varies, storage settings that differ from the
    /// defaults.
    pub setup: Vec<String>,
    /// What the textbook expects, before the numbers.
    pub expected: String,
    /// The measured results: tables and plots, each with a short text.
    pub sections: Vec<Section>,
    /// What the result shows and why, in terms of the ledger: each sentence built from the
    /// measured numbers.
    pub findings: Vec<String>,
    /// Whether the textbook expectation held, decided from the numbers.
    pub verdict: Verdict,
}

/// A part of the results: a heading, a text, a table and a plot (each optional).
#[derive(Debug, Default)]
pub struct Section {
    /// The heading.
    pub heading: String,
    /// Markdown text under the heading.
    pub text: String,
    /// A table.
    pub table: Option<TextTable>,
    /// A plot, written as an SVG file beside the report and linked.
    pub plot: Option<Plot>,
}

/// A Markdown table.
#[derive(Debug, Default, Clone)]
pub struct TextTable {
    /// Column headings.
    pub headers: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table with these headings and no rows.
    pub fn new(headers: &[&str]) -> TextTable {
        TextTable {
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as Markdown.
    pub fn markdown(&self) -> String {
        let escape = |s: &str| s.replace('|', "\\|");
        let mut out = String::new();
        let _ = writeln!(
            out,
            "| {} |",
            self.headers
                .iter()
                .map(|h| escape(h))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(
            out,
            "|{}",
            self.headers.iter().map(|_| "---|").collect::<String>()
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} |",
                row.iter()
                    .map(|c| escape(c))
                    .collect::<Vec<_>>()
                    .join(" | ")
            );
        }
        out
    }
}

/// A plot: drawn by [`super::plot`] into `file` (an `.svg` name) beside the report.
#[derive(Debug, Clone)]
pub struct Plot {
    /// The SVG's file name (`pages_read.svg`).
    pub file: String,
    /// The title above the chart.
    pub title: String,
    /// The x axis' label.
    pub x_label: String,
    /// The y axis' label.
    pub y_label: String,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// Lines or bars.
    pub kind: PlotKind,
}

/// The shape of a plot.
#[derive(Debug, Clone)]
pub enum PlotKind {
    /// One line per series over a numeric x axis.
    Lines {
        /// The lines.
        series: Vec<Series>,
        /// Logarithmic x axis.
        log_x: bool,
    },
    /// Groups of bars: per category, one bar per series.
    Bars {
        /// The categories along x.
        categories: Vec<String>,
        /// Per series, its name and one value per category.
        series: Vec<(String, Vec<f64>)>,
    },
}

/// One line of a line plot.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name in the legend.
    pub name: String,
    /// Its points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// Whether the textbook expectation held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    /// It held; why, in terms of the measurements.
    Agrees(String),
    /// Part of it held and part did not; which and why.
    Mixed(String),
    /// It did not hold; what happened instead and why.
    Contradicts(String),
}

impl Default for Verdict {
    fn default() -> Self {
        Verdict::Mixed("no verdict was reached".into())
    }
}

impl Verdict {
    /// One word for tables: `agrees`, `mixed` or `contradicts`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Agrees(_) => "agrees",
            Verdict::Mixed(_) => "mixed",
            Verdict::Contradicts(_) => "contradicts",
        }
    }

    /// The explanation.
    pub fn text(&self) -> &str {
        match self {
            Verdict::Agrees(t) | Verdict::Mixed(t) | Verdict::Contradicts(t) => t,
        }
    }

    /// `Agrees(text)` if `holds`, else `Contradicts(otherwise)`.
    pub fn check(holds: bool, text: String, otherwise: String) -> Verdict {
        if holds {
            Verdict::Agrees(text)
        } else {
            Verdict::Contradicts(otherwise)
        }
    }
}

/// The machine the experiments ran on, as the report describes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model.
    pub cpu: String,
    /// CPUs this process may use.
    pub cpus: usize,
    /// Memory.
    pub memory: String,
    /// Kernel release.
    pub kernel: String,
    /// File system of the scratch directory.
    pub filesystem: String,
}

impl Machine {
    /// Reads what Linux says about this machine; unknown parts are `unknown`.
    pub fn read(work: &Path) -> Machine {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split(':').nth(1))
            .map_or("unknown".into(), |s| s.trim().to_string());
        let memory = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or("unknown".into(), |kb| {
                format!("{:.1} GiB", kb as f64 / (1u64 << 20) as f64)
            });
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_string();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            memory,
            kernel: if kernel.is_empty() {
                "unknown".into()
            } else {
                kernel
            },
            filesystem: filesystem_of(work),
        }
    }

    /// One line: `2 CPUs (model), 23.5 GiB, Linux 6.x, ext4`.
    pub fn line(&self) -> String {
        format!(
            "{} CPUs ({}), {} of memory, Linux {}, {} file system",
            self.cpus, self.cpu, self.memory, self.kernel, self.filesystem
        )
    }
}

/// The file system type of the mount holding `path` (from /proc/self/mounts: the longest
/// mount point that is a prefix of the path).
fn filesystem_of(path: &Path) -> String {
    let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, point, fs) = (f.next()?, f.next()?, f.next()?);
            path.starts_with(point)
                .then(|| (point.len(), fs.to_string()))
        })
        .max_by_key(|(len, _)| *len)
        .map_or("unknown".into(), |(_, fs)| fs)
}

/// What `summary.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// The experiment's number.
    pub number: u8,
    /// Its name.
    pub name: String,
    /// Its title.
    pub title: String,
    /// `agrees`, `mixed` or `contradicts`.
    pub verdict: String,
    /// The verdict's explanation.
    pub verdict_text: String,
    /// The `--scale`.
    pub scale: f64,
    /// Wall time of the whole experiment.
    pub elapsed_s: f64,
    /// Measured points.
    pub points: usize,
    /// The machine.
    pub machine: Machine,
}

/// Writes the report, its plots, the raw results and the summary into `dir`.
pub fn write(
    dir: &Path,
    experiment: &Experiment,
    ctx: &Ctx,
    report: &Report,
    machine: &Machine,
    elapsed: Duration,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Experiment {}: {}\n",
        experiment.number, experiment.title
    );
    let _ = writeln!(md, "**Question.** {}\n", experiment.question);
    let _ = writeln!(md, "## Setup\n");
    for line in &report.setup {
        let _ = writeln!(md, "- {line}");
    }
    let scale = if ctx.scale == 1.0 {
        String::new()
    } else {
        format!(" --scale {}", ctx.scale)
    };
    let _ = writeln!(
        md,
        "- Seed {}, scale {}; {} measured points; {:.0} s in all.",
        ctx.seed,
        ctx.scale,
        ctx.results().len(),
        elapsed.as_secs_f64()
    );
    let _ = writeln!(md, "- Machine: {}.", machine.line());
    let _ = writeln!(
        md,
        "- Reproduce: `cargo run --release -p storelab-cli -- experiment {} --out DIR{scale}`.\n",
        experiment.name
    );
    let _ = writeln!(md, "## What the textbook expects\n\n{}\n", report.expected);
    let _ = writeln!(md, "## Results\n");
    for section in &report.sections {
        let _ = writeln!(md, "### {}\n", section.heading);
        if !section.text.is_empty() {
            let _ = writeln!(md, "{}\n", section.text);
        }
        if let Some(table) = &section.table {
            let _ = writeln!(md, "{}", table.markdown());
        }
        if let Some(plot) = &section.plot {
            let svg = super::plot::render(plot)?;
            let path = dir.join(&plot.file);
            std::fs::write(&path, svg).with_context(|| format!("write {}", path.display()))?;
            let _ = writeln!(md, "![{}]({})\n", plot.title, plot.file);
        }
    }
    let _ = writeln!(md, "## What the result shows, and why\n");
    for finding in &report.findings {
        let _ = writeln!(md, "- {finding}");
    }
    let _ = writeln!(
        md,
        "\n## Verdict: {}\n\n{}\n",
        match report.verdict {
            Verdict::Agrees(_) => "agrees with the textbook",
            Verdict::Mixed(_) => "partly agrees with the textbook",
            Verdict::Contradicts(_) => "contradicts the textbook",
        },
        report.verdict.text()
    );
    let _ = writeln!(
        md,
        "## Raw data\n\n[`{RESULTS_FILE_NAME}`]({RESULTS_FILE_NAME}): every measured point as a \
         results record (schema {}), the point's parameters in its `config`; \
         `storelab report {RESULTS_FILE_NAME}` draws the generic per-engine plots from it.",
        storelab_workload::RESULTS_SCHEMA_VERSION
    );
    let path = dir.join(REPORT_FILE_NAME);
    std::fs::write(&path, md).with_context(|| format!("write {}", path.display()))?;

    let mut lines = String::new();
    for r in ctx.results() {
        lines.push_str(&serde_json::to_string(r)?);
        lines.push('\n');
    }
    let path = dir.join(RESULTS_FILE_NAME);
    std::fs::write(&path, lines).with_context(|| format!("write {}", path.display()))?;

    let summary = Summary {
        number: experiment.number,
        name: experiment.name.into(),
        title: experiment.title.into(),
        verdict: report.verdict.word().into(),
        verdict_text: report.verdict.text().into(),
        scale: ctx.scale,
        elapsed_s: elapsed.as_secs_f64(),
        points: ctx.results().len(),
        machine: machine.clone(),
    };
    let path = dir.join(SUMMARY_FILE_NAME);
    std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
        .with_context(|| format!("write {}", path.display()))?;
    Ok(())
}

/// Writes `out/README.md`: every experiment whose folder holds a summary, its verdict and a
/// link to its report.
pub fn write_index(out: &Path, machine: &Machine) -> Result<()> {
    let mut md = String::from("# Experiments\n\n");
    let _ = writeln!(
        md,
        "Each row links to a report written by `storelab experiment NAME --out DIR`; the \
         verdict says whether the textbook expectation held on this run, and the report \
         explains it from its own table and I/O ledger.\n\nMachine: {}.\n",
        machine.line()
    );
    let mut table = TextTable::new(&["#", "experiment", "question", "verdict", "scale", "time"]);
    for e in EXPERIMENTS {
        let path = out.join(e.name).join(SUMMARY_FILE_NAME);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(s) = serde_json::from_str::<Summary>(&text) else {
            continue;
        };
        table.row(vec![
            e.number.to_string(),
            format!("[{}]({}/{REPORT_FILE_NAME})", e.title, e.name),
            e.question.into(),
            s.verdict,
            s.scale.to_string(),
            format!("{:.0} s", s.elapsed_s),
        ]);
    }
    md.push_str(&table.markdown());
    let path = out.join(INDEX_FILE_NAME);
    std::fs::write(&path, md).with_context(|| format!("write {}", path.display()))
}

/// A number for a table: no decimals from 100 up, one from 1, two below, `-` for NaN.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else {
        crate::workload_cmd::fmt_num(v)
    }
}

/// `a / b` as a ratio for the text (`3.2x`); `-` when `b` is zero.
pub fn ratio(a: f64, b: f64) -> String {
    if b == 0.0 {
        "-".into()
    } else {
        format!("{:.1}x", a / b)
    }
}
