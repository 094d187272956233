//! `storelab`, the command-line tool: parses the command line and hands each subcommand to
//! its module in the `storelab_cli` library (`src/lib.rs`), where a later command can call it
//! too (an `experiment` command running `io_bench::run_io_bench`, say); this file only
//! dispatches.
//!
//! Errors are printed as one line, `storelab: error: ...` with its causes, and exit with
//! status 1; clap's own usage errors exit with status 2. Nothing a user types may panic.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use storelab_cli::{check, io_bench, report, wal_bench, workload_cmd};

/// storelab: storage-engine designs (heap, clustered B+tree, LSM) compared by experiment.
/// Each subcommand runs one experiment or benchmark and prints a table (optionally JSON lines).
#[derive(Debug, Parser)]
#[command(name = "storelab", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run every engine through the default workloads and print one side-by-side table
    /// (the default command)
    ///
    /// Loads YCSB's usertable and the orders table into each engine, runs YCSB A, B, C, E
    /// and an analytic scan, and prints throughput, p99 latency, reads and bytes written per
    /// operation, write amplification and size on disk. Commits are synced (--commit-mode).
    Compare(workload_cmd::CompareArgs),
    /// Run an experiment (or all ten) and write its report, plots and raw results
    ///
    /// `storelab experiment` lists them; `storelab experiment NAME|all --out DIR [--scale F]`
    /// writes DIR/NAME/report.md (question, setup, what the textbook expects, tables, what
    /// the result shows and why in terms of the I/O ledger, a verdict computed from the
    /// numbers), SVG plots and results.jsonl beside it.
    Experiment(storelab_cli::experiment::ExperimentArgs),
    /// Load a data set into a database directory
    Load(workload_cmd::LoadArgs),
    /// Run a workload on a loaded database directory; YCSB-style output
    Run(workload_cmd::RunArgs),
    /// Turn result files (--json output) into a Markdown report with SVG plots
    ///
    /// Writes DIR/report.md (the configuration; per workload, throughput, latency
    /// percentiles per op type, reads and bytes written per op, write amplification, size on
    /// disk, I/O per op by cause, side by side per engine) and throughput.svg, latency.svg and
    /// io_by_cause.svg beside it.
    Report(report::ReportArgs),
    /// Measure how fast each I/O backend (sync, worker, io_uring) reads this disk
    ///
    /// Random and sequential reads, direct and buffered, at several queue depths, from one
    /// submitting thread; a table on stdout, optionally JSON lines.
    IoBench(io_bench::args::IoBenchArgs),
    /// Measure durable commits per second of the write-ahead log
    ///
    /// For each commit mode (sync, group, off) and thread count, threads append and commit
    /// records on a fresh log; commits/s, latency percentiles, syncs and bytes per commit.
    WalBench(wal_bench::WalBenchArgs),
    /// Verify page checksums and structure invariants of files on disk
    ///
    /// Every page's checksum; for a B+tree file, the whole tree (key order, fences, levels,
    /// sibling links, overflow chains, free list); for a WAL directory, every record from the
    /// last checkpoint to the end of the log. Run it on a cleanly closed or recovered database.
    Check(check::CheckArgs),
    /// Look inside a database's files: a page, a B+tree's shape, a heap, WAL records, an LSM
    /// tree's levels and tables, a directory (read-only: nothing is written and recovery
    /// does not run)
    ///
    /// `inspect page FILE PAGE`, `inspect tree FILE [--dot]`, `inspect heap FILE`,
    /// `inspect wal DIR [--from LSN] [--limit N]`, `inspect db DIR`, `inspect lsm DIR`,
    /// `inspect sst FILE`. Plain, stable text.
    Inspect(storelab_cli::inspect::InspectArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        // A closed stdout (`storelab io-bench | head`) ends the run quietly, as in other tools.
        Err(e) if is_broken_pipe(&e) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("storelab: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Option<Command>) -> Result<()> {
    let Some(command) = command else {
        return workload_cmd::compare(&workload_cmd::CompareArgs::default());
    };
    match command {
        Command::Compare(args) => workload_cmd::compare(&args),
        Command::Experiment(args) => storelab_cli::experiment::run(&args),
        Command::Load(args) => workload_cmd::load(&args),
        Command::Run(args) => workload_cmd::run(&args),
        Command::Report(args) => report::run(&args),
        Command::IoBench(args) => {
            let config = args.to_config();
            config.validate()?;
            let mut console = io_bench::ConsoleReport::new(args.quiet, args.json.as_deref())?;
            let report = io_bench::run_io_bench(&config, &mut console)?;
            console.finish(&report)
        }
        Command::WalBench(args) => wal_bench::run(&args).map(|_| ()),
        Command::Check(args) => check::run(&args),
        Command::Inspect(args) => storelab_cli::inspect::run(&args),
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
