//! The `sync` backend: every request is performed in the submitting thread.

use std::sync::Arc;

use super::{
    CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, fdatasync, perform_blocking,
};
use crate::error::Result;

/// `pread`/`pwrite` in the caller: the baseline, and PostgreSQL's `io_method=sync`.
///
/// `submit` returns only when every request of the batch is done, so a "queue depth" above one
/// buys nothing here; that is the point of comparing it with the other two.
#[derive(Debug, Default)]
pub struct SyncBackend;

impl SyncBackend {
    /// A new sync backend.
    pub fn new() -> SyncBackend {
        SyncBackend
    }
}

impl IoBackend for SyncBackend {
    fn name(&self) -> String {
        "sync".to_string()
    }

    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        sink.begin(requests.len());
        for request in requests {
            sink.push(perform_blocking(request));
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
