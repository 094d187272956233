//! The `io_uring` backend (placeholder, being written).

use std::sync::Arc;

use super::{CompletionSink, IoBackend, IoCompletion, IoFile, IoRequest, fdatasync};
use crate::error::{Error, Result};

/// Linux io_uring.
#[derive(Debug)]
pub struct IoUringBackend {
    _entries: u32,
}

impl IoUringBackend {
    /// Sets up a ring with `entries` submission-queue entries.
    pub fn new(entries: u32) -> Result<IoUringBackend> {
        let _ = entries;
        Err(Error::IoUringUnavailable { reason: "not yet implemented".into() })
    }
}

impl IoBackend for IoUringBackend {
    fn name(&self) -> String {
        "io_uring".to_string()
    }
    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        let _ = (requests, sink);
        unreachable!()
    }
    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        sink.wait_pushed()
    }
    fn sync(&self, file: &IoFile) -> Result<()> {
        fdatasync(file)
    }
}
