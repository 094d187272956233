//! Choosing a backend by name, with `auto` falling back from io_uring to worker.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::{IoBackend, IoUringBackend, SyncBackend, WorkerBackend};
use crate::error::{Error, Result};

/// Which I/O method to use (PostgreSQL 18's `io_method`, plus `auto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// `pread`/`pwrite` in the caller.
    Sync,
    /// A pool of I/O threads.
    Worker,
    /// Linux io_uring.
    IoUring,
    /// io_uring if the kernel allows it, else worker (with a note on stderr).
    Auto,
}

impl BackendKind {
    /// The three concrete kinds, in the order reports list them.
    pub const ALL: [BackendKind; 3] =
        [BackendKind::Sync, BackendKind::Worker, BackendKind::IoUring];
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Sync => "sync",
            BackendKind::Worker => "worker",
            BackendKind::IoUring => "io_uring",
            BackendKind::Auto => "auto",
        })
    }
}

impl FromStr for BackendKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sync" => Ok(BackendKind::Sync),
            "worker" => Ok(BackendKind::Worker),
            "io_uring" | "io-uring" | "uring" => Ok(BackendKind::IoUring),
            "auto" => Ok(BackendKind::Auto),
            other => Err(Error::InvalidArgument(format!(
                "unknown I/O backend {other:?} (sync, worker, io_uring or auto)"
            ))),
        }
    }
}

/// Settings for building a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// Which backend.
    pub kind: BackendKind,
    /// Threads in the worker pool (PostgreSQL's `io_workers`).
    pub worker_threads: usize,
    /// Submission-queue entries of the io_uring ring (bounds requests in the kernel at once).
    pub ring_entries: u32,
}

impl Default for BackendConfig {
    fn default() -> Self {
        BackendConfig {
            kind: BackendKind::Auto,
            worker_threads: 8,
            ring_entries: 256,
        }
    }
}

/// Builds the backend `config` asks for.
///
/// `IoUring` fails with [`Error::IoUringUnavailable`] if the kernel refuses a ring; `Auto` then
/// falls back to `Worker` and says so on stderr, so a report never silently measures the wrong
/// method.
pub fn open_backend(config: &BackendConfig) -> Result<Arc<dyn IoBackend>> {
    Ok(match config.kind {
        BackendKind::Sync => Arc::new(SyncBackend::new()),
        BackendKind::Worker => Arc::new(WorkerBackend::new(config.worker_threads)?),
        BackendKind::IoUring => Arc::new(IoUringBackend::new(config.ring_entries)?),
        BackendKind::Auto => match IoUringBackend::new(config.ring_entries) {
            Ok(ring) => Arc::new(ring),
            Err(e) => {
                eprintln!("storelab: {e}; falling back to the worker backend");
                Arc::new(WorkerBackend::new(config.worker_threads)?)
            }
        },
    })
}
