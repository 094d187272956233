//! The `worker` backend: a pool of I/O threads.

use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::{
    CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, fdatasync, perform_blocking,
};
use crate::error::{Error, Result};

/// The largest worker pool accepted.
pub const WORKER_THREADS_MAX: usize = 256;

type Job = (IoRequest, Arc<CompletionSink>);

/// A pool of threads doing `pread`/`pwrite`: PostgreSQL 18's `io_method=worker`.
///
/// The submitter hands requests to a queue and goes on; each worker takes one request, performs
/// it with a blocking call and pushes the completion into the request's sink. With `n` workers
/// up to `n` requests are in the kernel at once. The cost is a hand-off (a queue push, a thread
/// wake-up, a completion push) per request, which is why on cached data `worker` can be slower
/// than `sync`.
#[derive(Debug)]
pub struct WorkerBackend {
    queue: Option<Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    thread_count: usize,
}

impl WorkerBackend {
    /// Starts `thread_count` I/O worker threads (1..=[`WORKER_THREADS_MAX`]).
    pub fn new(thread_count: usize) -> Result<WorkerBackend> {
        if thread_count == 0 || thread_count > WORKER_THREADS_MAX {
            return Err(Error::InvalidArgument(format!(
                "worker thread count {thread_count} is not in 1..={WORKER_THREADS_MAX}"
            )));
        }
        let (tx, rx) = crossbeam_channel::unbounded::<Job>();
        let threads = (0..thread_count)
            .map(|i| {
                let rx: Receiver<Job> = rx.clone();
                std::thread::Builder::new()
                    .name(format!("storelab-io-{i}"))
                    .spawn(move || {
                        for (request, sink) in rx.iter() {
                            sink.push(perform_blocking(request));
                        }
                    })
                    .map_err(|e| Error::io("<worker>", "spawn", e))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(WorkerBackend {
            queue: Some(tx),
            threads,
            thread_count,
        })
    }

    /// The number of I/O threads.
    pub fn thread_count(&self) -> usize {
        self.thread_count
    }
}

impl IoBackend for WorkerBackend {
    fn name(&self) -> String {
        "worker".to_string()
    }

    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        let queue = self.queue.as_ref().expect("queue lives until drop");
        sink.begin(requests.len());
        for request in requests {
            queue
                .send((request, Arc::clone(sink)))
                .expect("workers live as long as the backend");
        }
        Ok(())
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        sink.wait_pushed()
    }

    fn sync(&self, file: &IoFile) -> Result<()> {
        fdatasync(file)
    }
}

impl Drop for WorkerBackend {
    fn drop(&mut self) {
        // Closing the queue ends each worker's loop once the requests already queued are done.
        self.queue = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
