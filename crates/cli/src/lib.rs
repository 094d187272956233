//! The library half of the `storelab` command-line tool.
//!
//! Each subcommand of `storelab` is a module here, so that other code (a future `experiment`
//! command, a notebook-style driver, the tests) can run it without the command line:
//!
//! - [`check`]: `storelab check`, verify checksums and structure invariants of files.
//! - [`experiment`]: `storelab experiment`, the ten experiments of DESIGN.md, each a report
//!   with plots and raw results.
//! - [`io_bench`]: `storelab io-bench`, how fast each pager I/O backend reads this disk.
//! - [`peers`]: the peer engines (SQLite, redb, fjall) by name, with the `peers` feature.
//! - [`report`]: `storelab report`, result files into a Markdown report with SVG plots.
//! - [`wal_bench`]: `storelab wal-bench`, durable commits per second by commit mode and threads.
//! - [`workload_cmd`]: `storelab compare` (the default command), `load` and `run`: workloads
//!   through the engines ([`engines`] names them).
//!
//! `src/main.rs` only parses flags into these modules' configurations and dispatches. Errors
//! here are `anyhow` errors with context, printed by `main` as one line.

pub mod byte_size;
pub mod check;
pub mod engines;
pub mod experiment;
pub mod inspect;
pub mod io_bench;
pub mod peers;
pub mod report;
pub mod wal_bench;
pub mod workload_cmd;
