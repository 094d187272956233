//! storelab: storage-engine designs compared by experiment.
//!
//! This facade re-exports the layers so benchmarks, examples and users can depend on one
//! package. The layers, bottom up (see `docs/architecture.md`):
//!
//! - [`pager`]: pages and checksums, I/O backends (sync, worker, io_uring), device models, the
//!   buffer pool, and the I/O ledger.

pub use storelab_pager as pager;
