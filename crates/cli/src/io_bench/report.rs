//! `ConsoleReport`: io-bench's table on stdout, progress bar on stderr and JSON-lines file.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};

use super::measure::{
    IoBenchObserver, IoBenchReport, Measurement, MeasurementSpec, SkippedBackend,
};
use crate::byte_size::ByteSize;

/// How often the progress bar redraws while a measurement runs.
const PROGRESS_TICK: Duration = Duration::from_millis(200);

/// Prints each measurement as a table row as soon as it finishes (so a long run shows results
/// early and an interrupted one keeps them), appends it to the JSON-lines file if one was
/// asked for, and keeps a progress bar on stderr.
pub struct ConsoleReport {
    bar: ProgressBar,
    json: Option<(PathBuf, BufWriter<File>)>,
    header_printed: bool,
}

impl ConsoleReport {
    /// A report that writes JSON lines to `json_path` (created or truncated now, so an
    /// unwritable path fails before the run) and shows a progress bar unless `quiet` is set or
    /// stderr is not a terminal.
    pub fn new(quiet: bool, json_path: Option<&Path>) -> Result<ConsoleReport> {
        let json = match json_path {
            Some(path) => {
                let file = File::create(path).with_context(|| {
                    format!("cannot create the JSON output file {}", path.display())
                })?;
                Some((path.to_path_buf(), BufWriter::new(file)))
            }
            None => None,
        };
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(0)
        };
        Ok(ConsoleReport {
            bar,
            json,
            header_printed: false,
        })
    }

    /// Clears the progress bar and prints a note under the table for each skipped backend.
    pub fn finish(mut self, report: &IoBenchReport) -> Result<()> {
        self.bar.finish_and_clear();
        let mut out = std::io::stdout().lock();
        for skipped in &report.skipped {
            writeln!(
                out,
                "note: {} rows skipped: {}",
                skipped.backend, skipped.reason
            )
            .context("writing to stdout")?;
        }
        out.flush().context("writing to stdout")?;
        if let Some((path, json)) = &mut self.json {
            json.flush()
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    fn print_row(&mut self, m: &Measurement) -> Result<()> {
        let header_needed = !self.header_printed;
        self.header_printed = true;
        self.bar
            .suspend(|| {
                let mut out = std::io::stdout().lock();
                if header_needed {
                    writeln!(
                        out,
                        "{:<14} {:<8} {:<8} {:>6} {:>5} {:>9} {:>8} {:>9} {:>9}",
                        "backend",
                        "mode",
                        "pattern",
                        "block",
                        "QD",
                        "IOPS",
                        "MB/s",
                        "p50 us",
                        "p99 us"
                    )?;
                }
                writeln!(
                    out,
                    "{:<14} {:<8} {:<8} {:>6} {:>5} {:>9.0} {:>8.1} {:>9.1} {:>9.1}",
                    match &m.device {
                        Some(device) => format!("{}+{device}", m.backend),
                        None => m.backend.clone(),
                    },
                    if m.direct { "direct" } else { "buffered" },
                    m.pattern.to_string(),
                    ByteSize(m.block_size).to_string(),
                    m.queue_depth,
                    m.iops,
                    m.mb_per_s,
                    m.p50_us,
                    m.p99_us
                )?;
                out.flush()
            })
            .context("writing to stdout")
    }
}

impl IoBenchObserver for ConsoleReport {
    fn backend_skipped(&mut self, skipped: &SkippedBackend) {
        self.bar.suspend(|| {
            eprintln!("storelab: skipping {}: {}", skipped.backend, skipped.reason);
        });
    }

    fn filling(&mut self, done: u64, total: u64) {
        if self.bar.length() != Some(total) || self.bar.position() > done {
            self.bar.set_style(
                ProgressStyle::with_template(
                    "writing test file [{bar:30}] {binary_bytes}/{binary_total_bytes}",
                )
                .expect("constant template is valid")
                .progress_chars("#>-"),
            );
            self.bar.set_length(total);
        }
        self.bar.set_position(done);
    }

    fn measurement_started(&mut self, index: usize, count: usize, spec: &MeasurementSpec) {
        if index == 0 {
            self.bar.set_style(
                ProgressStyle::with_template("[{bar:20}] {pos}/{len} {elapsed} {msg}")
                    .expect("constant template is valid")
                    .progress_chars("#>-"),
            );
            self.bar.set_length(count as u64);
            self.bar.enable_steady_tick(PROGRESS_TICK);
        }
        self.bar.set_position(index as u64);
        self.bar.set_message(spec.to_string());
    }

    fn measurement_done(&mut self, measurement: &Measurement) -> Result<()> {
        self.print_row(measurement)?;
        if let Some((path, json)) = &mut self.json {
            let context = || format!("writing {}", path.display());
            serde_json::to_writer(&mut *json, measurement).with_context(context)?;
            json.write_all(b"\n").with_context(context)?;
            json.flush().with_context(context)?;
        }
        self.bar.inc(1);
        Ok(())
    }
}
