//! Device models: backends that wrap another backend to pretend the storage is different.
//!
//! Both models implement [`IoBackend`](crate::io::IoBackend) and take the backend they wrap as
//! an `Arc<dyn IoBackend>`, so they stack: `SimulatedDevice(FaultDevice(IoUringBackend))` is a
//! slow device that can also lose power. The real I/O is always done by the inner backend on
//! real files; the models only change *when* a completion is delivered (simulated) or *what*
//! survives a crash (fault).
//!
//! # `SimulatedDevice`: "what does asynchronous I/O buy on slow storage?"
//!
//! On a laptop NVMe drive with a warm page cache every backend looks alike: a read costs a few
//! microseconds whoever issues it. The interesting case is storage where one I/O takes a
//! millisecond but many can be in flight, like a cloud block volume. [`SimulatedDevice`] gives
//! each request a completion deadline on a virtual clock and delivers the completion no
//! earlier than that:
//!
//! ```text
//!   parameter          nvme        cloud       none
//!   latency            80 us       1 ms        0
//!   IOPS cap           500,000     3,000       -
//!   bandwidth cap      3 GB/s      125 MB/s    -
//!   parallel I/Os      128         64          4096
//! ```
//!
//! With `cloud`, one thread at queue depth 1 waits a full millisecond per read and gets about
//! 1,000 IOPS; 32 reads in flight (the worker backend, io_uring, or one batch of the sync
//! backend) overlap their latencies and run into the 3,000 IOPS cap instead. Latency, caps and
//! parallelism are the three numbers a cloud provider sells; the model has exactly those.
//!
//! # `FaultDevice`: crashes and I/O errors on demand
//!
//! A crash test must ask "what if the power had failed here?" at every interesting point,
//! without pulling a plug. [`FaultDevice`] keeps for each file a durable image (as of its last
//! sync) beside the real file (the volatile state, as the page cache shows it), and
//! [`FaultDevice::crash`] rewrites each file to its durable image plus a seeded subset of the
//! unsynced writes, possibly torn at a sector boundary. It also fails chosen I/Os or syncs
//! with EIO, cuts the power after the k-th sync, and flips bits to model media corruption.
//! Every choice comes from a seed, so a failing crash test is replayed by its seed.
//!
//! # How this is simpler than real devices
//!
//! - **No internal structure.** A real SSD stripes I/O across channels, dies and planes, so
//!   its parallelism depends on *which* pages are accessed; reads stall behind erases and
//!   garbage collection of the flash translation layer (FTL); writes are absorbed by an SLC
//!   cache until it fills. The model's channels are interchangeable and its latency does not
//!   depend on the address, the I/O size (beyond bandwidth), reads versus writes, or history.
//! - **No burst credits.** Cloud volumes often allow bursts above the baseline (gp2 credits,
//!   io2 burst); the model's token buckets are empty-start and never accumulate.
//! - **Arrival-order scheduling.** Deadlines are fixed at submission, first come first served;
//!   a real device (and the kernel's block layer) reorders and merges requests.
//! - **Real I/O underneath.** The inner backend's own time (page cache hits, a real disk)
//!   adds to the model's only when it is longer than the modelled deadline.
//! - **Delivery overhead.** A completion reaches its caller through a timer thread, which
//!   adds a few tens of microseconds (two thread wake-ups) to every modelled latency: small
//!   next to `cloud`, noticeable next to `nvme`.
//! - **Crash model.** A write is either lost, kept, or kept as a prefix of its 4 KiB sectors;
//!   real devices with a volatile write cache and no FUA can persist any subset of sectors of
//!   any write, in any order, and a sync covers only one file here (no directory entries: a
//!   created file survives a crash even if its directory was never synced, and `set_len` is
//!   just another pending operation). Files are tracked by the path they were opened with;
//!   two spellings of one path are two files to the model.
//! - **Errors are clean.** An injected EIO on a write leaves the file untouched; a failed
//!   sync keeps the pending writes pending, whereas Linux may drop the dirty pages and report
//!   success next time (PostgreSQL's fsyncgate) -- which is why the pager poisons itself on
//!   the first failed sync instead of relying on a retry.

mod fault;
mod simulated;

pub use fault::{CrashOptions, CrashReport, FaultDevice, SECTOR_SIZE};
pub use simulated::{
    DEVICE_LATENCY_US_MAX, DEVICE_PARALLELISM_MAX, DeviceProfile, SimulatedDevice,
};
