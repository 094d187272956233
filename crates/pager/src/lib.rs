//! storelab's page manager (design doc being written).

pub mod aligned_buf;
pub mod buffer_pool;
pub mod device;
pub mod disk;
pub mod error;
pub mod io;
pub mod ledger;
pub mod page;

pub use aligned_buf::AlignedBuf;
pub use buffer_pool::{BufferPool, PageReadGuard, PageWriteGuard, PoolConfig, ReadStream, ReadStreamConfig, ScanRing};
pub use disk::Disk;
pub use error::{Error, Result};
pub use ledger::{FileId, IoCause, IoCounts, Ledger, LedgerSnapshot};
pub use page::{Lsn, PageId, PageSize, PageType};
