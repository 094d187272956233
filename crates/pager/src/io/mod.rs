//! I/O backends: how page reads and writes reach the operating system.
//!
//! Like PostgreSQL 18's `io_method`, the backend is chosen when a database is opened:
//!
//! - [`SyncBackend`]: `pread`/`pwrite` in the calling thread. One I/O in flight per thread.
//! - [`WorkerBackend`]: a pool of I/O threads doing `pread`/`pwrite`; the submitter continues
//!   and collects completions later, so one thread can keep many I/Os in flight.
//! - [`IoUringBackend`]: Linux io_uring; a batch of requests is one system call, and the kernel
//!   runs them concurrently.
//!
//! All three implement [`IoBackend`]: a caller submits a batch of [`IoRequest`]s with a
//! [`CompletionSink`] and later waits on the sink for [`IoCompletion`]s. Buffers are owned
//! [`AlignedBuf`]s moved into the request and handed back in the completion, which is what
//! makes asynchronous I/O safe without lifetimes: nobody can touch a buffer the kernel is
//! filling. Completions may arrive in any order; `tag` tells them apart.
//!
//! **Any thread can complete any I/O.** With io_uring, whichever thread happens to be waiting
//! reaps the whole completion queue and delivers each completion to its own sink, waking its
//! owner. A design where only the submitter may reap deadlocks as soon as thread A waits for an
//! I/O that thread B submitted and B is itself blocked (on a latch A holds): the PostgreSQL AIO
//! README explains this case, and it is why completion here is decoupled from submission.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};

use crate::aligned_buf::AlignedBuf;
use crate::error::{Error, Result};

mod select;
mod sync;
mod uring;
mod worker;

pub use select::{BackendConfig, BackendKind, open_backend};
pub use sync::SyncBackend;
pub use uring::IoUringBackend;
pub use worker::WorkerBackend;

/// The largest batch a single `submit` may carry (bounds queues and ring sizes).
pub const IO_BATCH_MAX: usize = 1024;

/// How a file is opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Create the file if it does not exist.
    pub create: bool,
    /// Bypass the OS page cache with `O_DIRECT`: buffers, offsets and lengths must then be
    /// multiples of 4096.
    pub direct: bool,
}

/// An open file, shared by every request aimed at it.
#[derive(Debug)]
pub struct IoFile {
    path: PathBuf,
    file: File,
    direct: bool,
}

impl IoFile {
    /// Opens `path` read-write with `options`.
    pub fn open(path: &Path, options: &OpenOptions) -> Result<IoFile> {
        let mut open = std::fs::OpenOptions::new();
        open.read(true).write(true).create(options.create);
        if options.direct {
            open.custom_flags(libc::O_DIRECT);
        }
        let file = open.open(path).map_err(|e| Error::io(path, "open", e))?;
        Ok(IoFile {
            path: path.to_path_buf(),
            file,
            direct: options.direct,
        })
    }

    /// The path the file was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying OS file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Whether the file was opened with `O_DIRECT`.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Current length in bytes.
    pub fn len(&self) -> Result<u64> {
        self.file
            .metadata()
            .map(|m| m.len())
            .map_err(|e| Error::io(&self.path, "fstat", e))
    }

    /// True if the file is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }
}

/// Read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoOp {
    /// Fill the buffer from the file.
    Read,
    /// Write the buffer to the file.
    Write,
}

/// One read or write of `buf.len()` bytes at byte `offset` of `file`.
#[derive(Debug)]
pub struct IoRequest {
    /// The file.
    pub file: Arc<IoFile>,
    /// Read or write.
    pub op: IoOp,
    /// Byte offset in the file.
    pub offset: u64,
    /// The buffer: filled by a read, its contents written by a write. Returned in the completion.
    pub buf: AlignedBuf,
    /// Caller's tag, returned in the completion (completions arrive in any order).
    pub tag: u64,
}

/// The outcome of one [`IoRequest`].
#[derive(Debug)]
pub struct IoCompletion {
    /// The request's file.
    pub file: Arc<IoFile>,
    /// The request's operation.
    pub op: IoOp,
    /// The request's offset.
    pub offset: u64,
    /// The request's buffer, handed back.
    pub buf: AlignedBuf,
    /// The request's tag.
    pub tag: u64,
    /// Bytes transferred. Backends retry short transfers, so for a read a count below
    /// `buf.len()` means the end of the file was reached (the rest of `buf` is unspecified).
    pub result: std::io::Result<usize>,
}

impl IoCompletion {
    /// The transferred byte count, or the I/O error converted to a pager error naming the file.
    pub fn bytes(&self) -> Result<usize> {
        match &self.result {
            Ok(n) => Ok(*n),
            Err(e) => Err(Error::io(
                self.file.path(),
                match self.op {
                    IoOp::Read => "read",
                    IoOp::Write => "write",
                },
                std::io::Error::new(e.kind(), e.to_string()),
            )),
        }
    }

    /// Like [`bytes`](Self::bytes), but a short transfer is an error too.
    pub fn expect_full(&self) -> Result<()> {
        let n = self.bytes()?;
        if n == self.buf.len() {
            return Ok(());
        }
        Err(Error::io(
            self.file.path(),
            "short transfer",
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{n} of {} bytes at offset {}", self.buf.len(), self.offset),
            ),
        ))
    }
}

/// Where the completions of a caller's requests are delivered.
///
/// A sink belongs to one logical consumer (a thread reading a page, a read stream, a benchmark
/// loop). Any thread may push into it; its owner pops with [`IoBackend::wait`].
#[derive(Debug, Default)]
pub struct CompletionSink {
    state: Mutex<SinkState>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct SinkState {
    done: VecDeque<IoCompletion>,
    in_flight: usize,
}

impl CompletionSink {
    /// A new, empty sink.
    pub fn new() -> Arc<CompletionSink> {
        Arc::new(CompletionSink::default())
    }

    /// Records that `count` more requests will complete into this sink. Backends call this in
    /// `submit` before any of the requests can complete.
    pub fn begin(&self, count: usize) {
        self.state.lock().in_flight += count;
    }

    /// Delivers a completion and wakes the owner. Called by whichever thread completed it.
    pub fn push(&self, completion: IoCompletion) {
        let mut state = self.state.lock();
        assert!(
            state.in_flight > 0,
            "completion pushed into a sink that expected none"
        );
        state.in_flight -= 1;
        state.done.push_back(completion);
        drop(state);
        self.ready.notify_all();
    }

    /// Takes a completion if one is ready.
    pub fn try_pop(&self) -> Option<IoCompletion> {
        self.state.lock().done.pop_front()
    }

    /// Requests submitted into this sink and not yet completed.
    pub fn in_flight(&self) -> usize {
        self.state.lock().in_flight
    }

    /// Completions ready to be taken.
    pub fn ready_count(&self) -> usize {
        self.state.lock().done.len()
    }

    /// Blocks until a completion is ready and takes it; `None` if none is ready and none is in
    /// flight. Used by backends whose completions are pushed by other threads (sync, worker).
    pub fn wait_pushed(&self) -> Option<IoCompletion> {
        let mut state = self.state.lock();
        loop {
            if let Some(c) = state.done.pop_front() {
                return Some(c);
            }
            if state.in_flight == 0 {
                return None;
            }
            self.ready.wait(&mut state);
        }
    }

    /// Waits at most `timeout` for a completion to be pushed; returns whether one is ready.
    pub fn wait_pushed_for(&self, timeout: std::time::Duration) -> bool {
        let mut state = self.state.lock();
        if state.done.is_empty() && state.in_flight > 0 {
            self.ready.wait_for(&mut state, timeout);
        }
        !state.done.is_empty()
    }
}

/// An I/O method: submits batches of reads and writes and delivers their completions.
///
/// Contract for implementations (checked by `tests/backend_conformance.rs`):
/// 1. `submit` calls `sink.begin(n)` before any request of the batch can complete, and every
///    submitted request is eventually pushed into its sink exactly once, errors included.
/// 2. Short transfers are retried until complete or end of file.
/// 3. `wait` may be called from any thread, and must make progress on requests submitted by
///    other threads if that is what it takes to complete this sink's requests.
/// 4. `sync` makes every write *completed* before the call durable (fdatasync).
pub trait IoBackend: Send + Sync {
    /// A short name for reports (`sync`, `worker`, `io_uring`, or a wrapper's name).
    fn name(&self) -> String;

    /// Opens a file. Wrappers (device models) may intercept this to track files.
    fn open(&self, path: &Path, options: &OpenOptions) -> Result<Arc<IoFile>> {
        IoFile::open(path, options).map(Arc::new)
    }

    /// Starts a batch of requests; their completions go to `sink`.
    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()>;

    /// Blocks until one of `sink`'s requests has completed and returns it; `None` if the sink
    /// has nothing in flight and nothing ready.
    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion>;

    /// Makes every completed write to `file` durable (fdatasync).
    fn sync(&self, file: &IoFile) -> Result<()>;

    /// The file's length in bytes.
    fn file_len(&self, file: &IoFile) -> Result<u64> {
        file.len()
    }

    /// Truncates or extends the file to `len` bytes.
    fn set_len(&self, file: &IoFile, len: u64) -> Result<()> {
        file.file()
            .set_len(len)
            .map_err(|e| Error::io(file.path(), "ftruncate", e))
    }

    /// Reads `len` bytes at `offset` and waits for them (a convenience over submit + wait).
    fn read_at(&self, file: &Arc<IoFile>, offset: u64, len: usize) -> Result<(AlignedBuf, usize)> {
        let sink = CompletionSink::new();
        let buf = AlignedBuf::zeroed(len);
        let req = IoRequest {
            file: Arc::clone(file),
            op: IoOp::Read,
            offset,
            buf,
            tag: 0,
        };
        self.submit(vec![req], &sink)?;
        let done = self.wait(&sink).expect("one request in flight");
        let n = done.bytes()?;
        Ok((done.buf, n))
    }

    /// Writes `buf` at `offset` and waits for the write to complete (not to be durable).
    fn write_at(&self, file: &Arc<IoFile>, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf> {
        let sink = CompletionSink::new();
        let req = IoRequest {
            file: Arc::clone(file),
            op: IoOp::Write,
            offset,
            buf,
            tag: 0,
        };
        self.submit(vec![req], &sink)?;
        let done = self.wait(&sink).expect("one request in flight");
        done.expect_full()?;
        Ok(done.buf)
    }
}

/// Performs one request with `pread`/`pwrite` in the calling thread, retrying short transfers.
/// Shared by the sync and worker backends.
pub(crate) fn perform_blocking(request: IoRequest) -> IoCompletion {
    use std::os::unix::fs::FileExt;
    let IoRequest {
        file,
        op,
        offset,
        mut buf,
        tag,
    } = request;
    let mut done = 0usize;
    let result = loop {
        if done == buf.len() {
            break Ok(done);
        }
        let at = offset + done as u64;
        let step = match op {
            IoOp::Read => file.file().read_at(&mut buf[done..], at),
            IoOp::Write => file.file().write_at(&buf[done..], at),
        };
        match step {
            Ok(0) => break Ok(done),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => break Err(e),
        }
    };
    IoCompletion {
        file,
        op,
        offset,
        buf,
        tag,
        result,
    }
}

/// fdatasync, shared by the backends.
pub(crate) fn fdatasync(file: &IoFile) -> Result<()> {
    file.file()
        .sync_data()
        .map_err(|e| Error::io(file.path(), "fdatasync", e))
}
