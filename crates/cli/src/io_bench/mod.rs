//! `storelab io-bench`: how fast does each I/O backend read this disk?
//!
//! Every storage engine in storelab reads pages through one of the pager's I/O backends
//! (`sync`, `worker`, `io_uring`; see `storelab_pager::io`). Before comparing engines it pays
//! to know what the backends themselves can do on the machine at hand, and how close that is to
//! what the disk can do (fio measures the latter; `../shared/tools/fio-baseline` runs the same
//! patterns). This module measures it.
//!
//! What one run does:
//!
//! ```text
//!   validate config --> open every backend --> create + fill test file --> open handles
//!   (fail fast)         (io_uring missing:     (direct writes, then       (one per backend
//!                        skipped, with note)    fdatasync: not sparse)     and mode), unlink
//!
//!   for backend in backends:            for mode in modes:
//!       randread  block_size      at each queue depth
//!       seqread   seq_block_size  at the largest queue depth
//!       each: warm-up, then `duration` (or `ops` reads), latency into an hdrhistogram
//! ```
//!
//! Definitions, stated once:
//!
//! 1. **Queue depth** is the number of reads one submitting thread keeps in flight: it submits
//!    QD reads, and each time it takes completions it submits as many new reads. With the
//!    `sync` backend `submit` performs the read before returning, so QD > 1 is QD 1 with a
//!    queue in front of it: IOPS stay at the QD 1 figure and latency grows with QD (Little's
//!    law). That is the point of the comparison, not a flaw in the loop.
//! 2. **Latency** is the time from the `submit` call to the moment the loop takes the
//!    completion, as an application would see it (fio's "clat" for psync is the system call
//!    alone; at QD 1 the two agree to within a microsecond).
//! 3. **MB/s** is 10^6 bytes per second, as fio-baseline reports it.
//! 4. Random offsets are uniform over the whole blocks of the file, aligned to the block size,
//!    from a generator seeded with `seed`; every measurement replays the same sequence, so
//!    backends are compared on identical offsets.
//! 5. **Buffered** measurements first drop the test file from the page cache
//!    (`posix_fadvise(POSIX_FADV_DONTNEED)`), so they start from the device; within a
//!    measurement the cache fills, so a file smaller than RAM reads faster and faster (a
//!    sequential pass over it may end up entirely in memory), while one larger than RAM stays
//!    device-bound.
//!
//! Simplifications versus fio: one submitting thread only; no think time; no CPU pinning; the
//! test file is removed from its directory as soon as it is open, so even a killed run leaves
//! no large file behind (the space returns when the process exits).

pub mod args;
mod config;
mod measure;
mod report;
mod test_file;

pub use config::{
    BLOCK_SIZE_MAX, DURATION_S_MAX, IN_FLIGHT_BYTES_MAX, IoBenchConfig, IoMode, Pattern,
    QUEUE_DEPTH_MAX,
};
pub use measure::{
    IoBenchObserver, IoBenchReport, Measurement, MeasurementSpec, SCHEMA_VERSION, SkippedBackend,
    run_io_bench,
};
pub use report::ConsoleReport;
