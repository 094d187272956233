//! `FaultDevice`: durable versus volatile images, simulated power loss and injected errors.
//!
//! Every write goes through to the real file at once, so the real file always shows the
//! *volatile* state: what the OS page cache would show a reader. Beside it the device keeps,
//! per file, the *durable image* (the bytes as of the file's last successful sync) and the
//! operations since that sync:
//!
//! ```text
//!   durable image  [AAAA|AAAA|    ]      as of the last sync
//!   pending        write p0 = BBBB, write p2 = CCCC, set_len ...   (in completion order)
//!   real file      [BBBB|AAAA|CCCC]      = durable + every pending operation
//!
//!   crash():  new image = durable + a seeded subset of the pending operations, a kept write
//!             possibly torn to a prefix of its sectors; the real file is rewritten to it
//! ```
//!
//! Completion order is deterministic: `submit` performs its whole batch (through the inner
//! backend) before returning, one batch at a time, and delivers the completions in submission
//! order. So the device is slow and serial by design; it is a test tool, not a model of speed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::io::{
    CompletionSink, IO_BATCH_MAX, IoBackend, IoCompletion, IoFile, IoOp, IoRequest, OpenOptions,
};

/// The unit a write is torn at: a torn write keeps a whole number of these from its start.
/// Devices promise that a single 4 KiB (or 512-byte) sector is written entirely or not at all.
pub const SECTOR_SIZE: usize = 4096;

/// How a simulated power loss treats the writes that were not yet synced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CrashOptions {
    /// Probability (0.0..=1.0) that each unsynced operation reached the medium anyway.
    /// 0.0, the default, keeps exactly the synced data.
    pub keep_probability: f64,
    /// Whether a kept multi-sector write may be torn: only a seeded prefix of its
    /// [`SECTOR_SIZE`] sectors (at least one) is applied.
    pub torn: bool,
}

impl Default for CrashOptions {
    fn default() -> Self {
        CrashOptions {
            keep_probability: 0.0,
            torn: false,
        }
    }
}

/// What one [`FaultDevice::crash`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashReport {
    /// Files rewritten to their crashed image.
    pub file_count: usize,
    /// Unsynced operations applied in full.
    pub kept_count: usize,
    /// Unsynced writes applied in part (a prefix of their sectors).
    pub torn_count: usize,
    /// Unsynced operations lost.
    pub dropped_count: usize,
}

/// An operation completed since the file's last sync.
#[derive(Clone, Debug)]
enum PendingOp {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

/// One file's durable image and its operations since the last sync.
#[derive(Debug, Default)]
struct TrackedFile {
    durable: Vec<u8>,
    pending: Vec<PendingOp>,
}

/// Applies one operation (or its first `len` bytes, for a write) to an image.
fn apply(image: &mut Vec<u8>, op: &PendingOp, len: usize) -> Result<()> {
    match op {
        PendingOp::Write { offset, data } => {
            let start = usize::try_from(*offset).map_err(|_| offset_too_large(*offset))?;
            let end = start + len;
            if image.len() < end {
                image.resize(end, 0);
            }
            image[start..end].copy_from_slice(&data[..len]);
        }
        PendingOp::SetLen(new_len) => {
            let new_len = usize::try_from(*new_len).map_err(|_| offset_too_large(*new_len))?;
            image.resize(new_len, 0);
        }
    }
    Ok(())
}

fn offset_too_large(offset: u64) -> Error {
    Error::InvalidArgument(format!(
        "offset {offset} does not fit in memory on this platform"
    ))
}

/// A one-based "n-th from now" turned into the absolute 0-based index of that event.
fn nth_from_now(count_so_far: u64, n: u64) -> u64 {
    assert!(n >= 1, "the n-th event from now counts from 1");
    count_so_far + n - 1
}

#[derive(Debug)]
struct FaultState {
    files: BTreeMap<PathBuf, TrackedFile>,
    io_count: u64,
    sync_count: u64,
    /// Absolute indexes of I/Os (reads and writes) to fail with EIO.
    fail_io_at: BTreeSet<u64>,
    /// Absolute indexes of syncs to fail.
    fail_sync_at: BTreeSet<u64>,
    /// Power goes off once this many syncs (absolute) have succeeded.
    power_off_at_sync_count: Option<u64>,
    powered_off: bool,
    rng: StdRng,
}

impl FaultState {
    /// Starts tracking `path` if it is not tracked yet: its durable image is what the file
    /// holds now (empty if it does not exist).
    fn track(&mut self, path: &Path) -> Result<&mut TrackedFile> {
        if !self.files.contains_key(path) {
            let durable = match fs::read(path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(Error::io(path, "read durable image", e)),
            };
            self.files.insert(
                path.to_path_buf(),
                TrackedFile {
                    durable,
                    pending: Vec::new(),
                },
            );
        }
        Ok(self.files.get_mut(path).expect("inserted above"))
    }
}

/// A crash-and-fault device wrapped around any backend.
///
/// Deterministic given its seed and the sequence of calls; tests should print the seed when
/// they fail. To crash at every sync point of a workload, run it once to learn
/// [`sync_count`](Self::sync_count) `S`, then for each `k` in `1..=S` run it on a fresh device
/// with [`power_off_after_sync(k)`](Self::power_off_after_sync), call
/// [`crash`](Self::crash) when the workload stops (it sees errors once the power is off),
/// and reopen the files through the same device.
///
/// `submit` performs its whole batch before returning (completions are already in the sink),
/// and one operation runs at a time. Every tracked file's durable image and every unsynced
/// write are held in memory: meant for test-sized files.
pub struct FaultDevice {
    inner: Arc<dyn IoBackend>,
    seed: u64,
    /// Held across each whole operation, inner I/O included, so that the pending lists record
    /// writes in exactly the order they reached the real file.
    state: Mutex<FaultState>,
}

impl std::fmt::Debug for FaultDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultDevice")
            .field("inner", &self.inner.name())
            .field("seed", &self.seed)
            .finish()
    }
}

impl FaultDevice {
    /// Wraps `inner`; `seed` drives every random choice of [`crash`](Self::crash).
    pub fn new(inner: Arc<dyn IoBackend>, seed: u64) -> FaultDevice {
        FaultDevice {
            inner,
            seed,
            state: Mutex::new(FaultState {
                files: BTreeMap::new(),
                io_count: 0,
                sync_count: 0,
                fail_io_at: BTreeSet::new(),
                fail_sync_at: BTreeSet::new(),
                power_off_at_sync_count: None,
                powered_off: false,
                rng: StdRng::seed_from_u64(seed),
            }),
        }
    }

    /// The seed the device was built with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Reads and writes submitted so far, failed ones included.
    pub fn io_count(&self) -> u64 {
        self.state.lock().io_count
    }

    /// Syncs asked for so far, failed ones included.
    pub fn sync_count(&self) -> u64 {
        self.state.lock().sync_count
    }

    /// Makes the `n`-th read or write from now (`n = 1`: the next one) complete with EIO,
    /// without touching the file. Several may be armed at once.
    pub fn fail_nth_io(&self, n: u64) {
        let mut state = self.state.lock();
        let at = nth_from_now(state.io_count, n);
        state.fail_io_at.insert(at);
    }

    /// Makes the `n`-th sync from now (`n = 1`: the next one) fail with
    /// [`Error::InjectedFault`]. A failed sync makes nothing durable; the writes stay pending.
    pub fn fail_nth_sync(&self, n: u64) {
        let mut state = self.state.lock();
        let at = nth_from_now(state.sync_count, n);
        state.fail_sync_at.insert(at);
    }

    /// Cuts the power right after the `n`-th sync from now succeeds (`n = 1`: the next one):
    /// from then on every I/O completes with EIO and every sync fails, until
    /// [`crash`](Self::crash). The writes after that sync never happen, so the durable images
    /// are exactly those of that sync point.
    pub fn power_off_after_sync(&self, n: u64) {
        let mut state = self.state.lock();
        let at = nth_from_now(state.sync_count, n) + 1;
        state.power_off_at_sync_count = Some(at);
    }

    /// Cuts the power now (see [`power_off_after_sync`](Self::power_off_after_sync)).
    pub fn power_off(&self) {
        self.state.lock().powered_off = true;
    }

    /// Whether the power is off.
    pub fn is_powered_off(&self) -> bool {
        self.state.lock().powered_off
    }

    /// The durable image of a tracked file, or `None` if the device never saw the path.
    pub fn durable_image(&self, path: &Path) -> Option<Vec<u8>> {
        self.state.lock().files.get(path).map(|f| f.durable.clone())
    }

    /// Operations on `path` completed since its last sync.
    pub fn pending_count(&self, path: &Path) -> usize {
        self.state
            .lock()
            .files
            .get(path)
            .map_or(0, |f| f.pending.len())
    }

    /// Simulates a power loss and restores the power.
    ///
    /// For each tracked file (in path order, for determinism), the new contents are its
    /// durable image plus each unsynced operation kept with probability
    /// `options.keep_probability`, in order; a kept write of several sectors is cut to a
    /// seeded prefix of at least one sector if `options.torn`. The real file is rewritten to
    /// that image (and truncated or extended to its length), which also becomes the durable
    /// image: after power returns, what is on the medium is durable. Armed I/O and sync
    /// failures stay armed; a power-off armed with
    /// [`power_off_after_sync`](Self::power_off_after_sync) and not yet reached is disarmed.
    pub fn crash(&self, options: &CrashOptions) -> Result<CrashReport> {
        if !(0.0..=1.0).contains(&options.keep_probability) {
            return Err(Error::InvalidArgument(format!(
                "keep probability {} is not in 0.0..=1.0",
                options.keep_probability
            )));
        }
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut report = CrashReport::default();
        for (path, tracked) in state.files.iter_mut() {
            let mut image = tracked.durable.clone();
            for op in tracked.pending.drain(..) {
                if !state.rng.random_bool(options.keep_probability) {
                    report.dropped_count += 1;
                    continue;
                }
                let len = match &op {
                    PendingOp::Write { data, .. } => {
                        let sector_count = data.len().div_ceil(SECTOR_SIZE);
                        if options.torn && sector_count > 1 {
                            let kept = state.rng.random_range(1..=sector_count);
                            (kept * SECTOR_SIZE).min(data.len())
                        } else {
                            data.len()
                        }
                    }
                    PendingOp::SetLen(_) => 0,
                };
                if matches!(&op, PendingOp::Write { data, .. } if len < data.len()) {
                    report.torn_count += 1;
                } else {
                    report.kept_count += 1;
                }
                apply(&mut image, &op, len)?;
            }
            rewrite(path, &image)?;
            tracked.durable = image;
            report.file_count += 1;
        }
        state.powered_off = false;
        state.power_off_at_sync_count = None;
        Ok(report)
    }

    /// Flips bit `bit` (0..8) of the byte at `byte_offset` of `path`, in the real file and, if
    /// it covers that byte, in the durable image: media corruption that survives a crash.
    pub fn flip_bit(&self, path: &Path, byte_offset: u64, bit: u8) -> Result<()> {
        if bit >= 8 {
            return Err(Error::InvalidArgument(format!("bit {bit} is not in 0..8")));
        }
        let mask = 1u8 << bit;
        let mut state = self.state.lock();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(path, "open for bit flip", e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(path, "fstat", e))?
            .len();
        if byte_offset >= len {
            return Err(Error::InvalidArgument(format!(
                "offset {byte_offset} is past the end of {} ({len} bytes)",
                path.display()
            )));
        }
        let mut byte = [0u8; 1];
        file.read_exact_at(&mut byte, byte_offset)
            .map_err(|e| Error::io(path, "read for bit flip", e))?;
        byte[0] ^= mask;
        file.write_all_at(&byte, byte_offset)
            .map_err(|e| Error::io(path, "write for bit flip", e))?;
        let tracked = state.track(path)?;
        if let Some(durable) = usize::try_from(byte_offset)
            .ok()
            .and_then(|offset| tracked.durable.get_mut(offset))
        {
            *durable ^= mask;
        }
        Ok(())
    }

    /// An EIO completion for a request that is not performed.
    fn failed(request: IoRequest) -> IoCompletion {
        let IoRequest {
            file,
            op,
            offset,
            buf,
            tag,
        } = request;
        let result = Err(std::io::Error::from_raw_os_error(libc::EIO));
        IoCompletion {
            file,
            op,
            offset,
            buf,
            tag,
            result,
        }
    }
}

/// Rewrites the real file at `path` to exactly `image`.
fn rewrite(path: &Path, image: &[u8]) -> Result<()> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, "open for crash", e))?;
    file.set_len(image.len() as u64)
        .map_err(|e| Error::io(path, "ftruncate for crash", e))?;
    file.write_all_at(image, 0)
        .map_err(|e| Error::io(path, "write for crash", e))
}

impl IoBackend for FaultDevice {
    fn name(&self) -> String {
        format!("{}+fault", self.inner.name())
    }

    /// Opens through the inner backend and starts tracking the file: its durable image is
    /// what it holds at its first open.
    fn open(&self, path: &Path, options: &OpenOptions) -> Result<Arc<IoFile>> {
        let mut state = self.state.lock();
        let file = self.inner.open(path, options)?;
        state.track(path)?;
        Ok(file)
    }

    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        if requests.len() > IO_BATCH_MAX {
            return Err(Error::InvalidArgument(format!(
                "batch of {} requests exceeds {IO_BATCH_MAX}",
                requests.len()
            )));
        }
        let mut state = self.state.lock();
        for request in &requests {
            state.track(request.file.path())?;
        }
        // Decide each request's fate in submission order. `slots[i]` receives request i's
        // completion, so completions are recorded and delivered in that order whatever order
        // the inner backend finishes them in; the inner requests carry their batch index as
        // tag, and `caller_tags[i]` keeps the caller's.
        let mut slots: Vec<Option<IoCompletion>> = Vec::with_capacity(requests.len());
        let mut caller_tags: Vec<u64> = Vec::with_capacity(requests.len());
        let mut forwarded = Vec::new();
        for (index, mut request) in requests.into_iter().enumerate() {
            let io_index = state.io_count;
            state.io_count += 1;
            caller_tags.push(request.tag);
            if state.powered_off || state.fail_io_at.remove(&io_index) {
                slots.push(Some(FaultDevice::failed(request)));
            } else {
                slots.push(None);
                request.tag = index as u64;
                forwarded.push(request);
            }
        }
        if !forwarded.is_empty() {
            let forwarded_count = forwarded.len();
            let private = CompletionSink::new();
            // On refusal nothing has reached the caller's sink yet, so returning the error
            // leaves it untouched.
            self.inner.submit(forwarded, &private)?;
            for _ in 0..forwarded_count {
                let mut completion = self
                    .inner
                    .wait(&private)
                    .expect("a forwarded request is still in flight");
                let index = usize::try_from(completion.tag).expect("a batch index fits in usize");
                completion.tag = caller_tags[index];
                slots[index] = Some(completion);
            }
        }
        sink.begin(slots.len());
        for slot in slots {
            let completion = slot.expect("every request of the batch has completed");
            if let (IoOp::Write, Ok(written)) = (completion.op, &completion.result) {
                let tracked = state
                    .files
                    .get_mut(completion.file.path())
                    .expect("every file of the batch was tracked above");
                tracked.pending.push(PendingOp::Write {
                    offset: completion.offset,
                    data: completion.buf[..*written].to_vec(),
                });
            }
            sink.push(completion);
        }
        Ok(())
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        sink.wait_pushed()
    }

    /// Syncs through the inner backend, then promotes the file's pending operations to its
    /// durable image. Counts as a sync point even if it fails.
    fn sync(&self, file: &IoFile) -> Result<()> {
        let mut state = self.state.lock();
        let sync_index = state.sync_count;
        state.sync_count += 1;
        if state.powered_off {
            return Err(Error::InjectedFault {
                file: file.path().to_path_buf(),
                what: "sync while the power is off".to_string(),
            });
        }
        if state.fail_sync_at.remove(&sync_index) {
            return Err(Error::InjectedFault {
                file: file.path().to_path_buf(),
                what: format!("sync number {} fails with EIO", sync_index + 1),
            });
        }
        self.inner.sync(file)?;
        let tracked = state.track(file.path())?;
        let pending = std::mem::take(&mut tracked.pending);
        for op in &pending {
            let len = match op {
                PendingOp::Write { data, .. } => data.len(),
                PendingOp::SetLen(_) => 0,
            };
            apply(&mut tracked.durable, op, len)?;
        }
        if state.power_off_at_sync_count == Some(state.sync_count) {
            state.powered_off = true;
            state.power_off_at_sync_count = None;
        }
        Ok(())
    }

    fn file_len(&self, file: &IoFile) -> Result<u64> {
        self.inner.file_len(file)
    }

    /// Truncates or extends through the inner backend; the new length becomes durable at the
    /// next sync like a write.
    fn set_len(&self, file: &IoFile, len: u64) -> Result<()> {
        let mut state = self.state.lock();
        if state.powered_off {
            return Err(Error::InjectedFault {
                file: file.path().to_path_buf(),
                what: "set_len while the power is off".to_string(),
            });
        }
        state.track(file.path())?;
        self.inner.set_len(file, len)?;
        let tracked = state.track(file.path())?;
        tracked.pending.push(PendingOp::SetLen(len));
        Ok(())
    }
}
