//! `SimulatedDevice`: a latency, IOPS, bandwidth and parallelism model in front of a backend.
//!
//! Every request is scheduled on a virtual clock when it is submitted, performed at once by
//! the inner backend, and handed to its caller no earlier than its scheduled completion:
//!
//! ```text
//!   submit --> schedule (clock) --> inner.submit --> internal sink
//!                                                        |
//!                       reaper thread: inner.wait(internal sink), restore the caller's tag
//!                                                        |
//!                  deadline passed? --yes--> caller's sink
//!                                   \--no---> timer thread (min-heap of deadlines)
//!                                                        |  at the deadline
//!                                                        v
//!                                                   caller's sink
//! ```
//!
//! The schedule of one request of `bytes` bytes, arriving at `now`:
//!
//! ```text
//!   start    = max(now, earliest free channel, next IOPS token, next bandwidth slot)
//!   transfer = bytes / bandwidth
//!   deadline = start + latency + jitter + transfer
//!   the channel is busy until `deadline`; the next IOPS token is at start + 1 / IOPS;
//!   the next bandwidth slot is at start + transfer
//! ```
//!
//! Tokens do not accumulate while the device is idle (no burst credit), so over any interval
//! the device never exceeds its caps. One caller at queue depth 1 waits a full latency per I/O
//! and so is latency-bound; many I/Os in flight overlap their latencies in the channels until
//! a cap binds.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::aligned_buf::AlignedBuf;
use crate::error::{Error, Result};
use crate::io::{
    CompletionSink, IO_BATCH_MAX, IoBackend, IoCompletion, IoFile, IoOp, IoRequest, OpenOptions,
};

/// The most I/Os a device model may service at once (its channel count).
pub const DEVICE_PARALLELISM_MAX: usize = 4096;
/// The longest latency (fixed plus jitter) a device model accepts: 10 seconds.
pub const DEVICE_LATENCY_US_MAX: u64 = 10_000_000;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// A local NVMe SSD: ~80 us per random 4-8 KiB read, 500k IOPS, 3 GB/s, deep internal
/// parallelism (many flash dies and planes behind one controller).
const NVME_LATENCY_US: u64 = 80;
const NVME_IOPS_MAX: u64 = 500_000;
const NVME_BANDWIDTH_BYTES_PER_SECOND_MAX: u64 = 3_000_000_000;
const NVME_PARALLEL_IO_MAX: usize = 128;

/// A baseline cloud block volume (AWS gp3 defaults): ~1 ms per I/O over the network,
/// 3,000 IOPS and 125 MB/s provisioned.
const CLOUD_LATENCY_US: u64 = 1_000;
const CLOUD_IOPS_MAX: u64 = 3_000;
const CLOUD_BANDWIDTH_BYTES_PER_SECOND_MAX: u64 = 125_000_000;
const CLOUD_PARALLEL_IO_MAX: usize = 64;

/// How a simulated device performs: latency, caps and internal parallelism.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceProfile {
    /// The profile's name, shown in reports after the backend's (`io_uring+cloud`).
    pub name: String,
    /// Fixed service time of one read or write, in microseconds.
    pub latency_us: u64,
    /// Extra service time drawn uniformly from `0..=jitter_us` per I/O (seeded).
    pub jitter_us: u64,
    /// Service time of one sync (fdatasync), in microseconds.
    pub sync_latency_us: u64,
    /// I/Os started per second at most; `None` for no cap.
    pub iops_max: Option<u64>,
    /// Bytes transferred per second at most; `None` for no cap.
    pub bandwidth_bytes_per_second_max: Option<u64>,
    /// I/Os the device services at once (its internal channels), 1..=[`DEVICE_PARALLELISM_MAX`].
    pub parallel_io_max: usize,
}

impl DeviceProfile {
    /// A local NVMe SSD: 80 us, 500k IOPS, 3 GB/s, 128 I/Os in parallel.
    pub fn nvme() -> DeviceProfile {
        DeviceProfile {
            name: "nvme".to_string(),
            latency_us: NVME_LATENCY_US,
            jitter_us: 0,
            sync_latency_us: NVME_LATENCY_US,
            iops_max: Some(NVME_IOPS_MAX),
            bandwidth_bytes_per_second_max: Some(NVME_BANDWIDTH_BYTES_PER_SECOND_MAX),
            parallel_io_max: NVME_PARALLEL_IO_MAX,
        }
    }

    /// A cloud block volume: 1 ms, 3,000 IOPS, 125 MB/s, 64 I/Os in parallel.
    pub fn cloud() -> DeviceProfile {
        DeviceProfile {
            name: "cloud".to_string(),
            latency_us: CLOUD_LATENCY_US,
            jitter_us: 0,
            sync_latency_us: CLOUD_LATENCY_US,
            iops_max: Some(CLOUD_IOPS_MAX),
            bandwidth_bytes_per_second_max: Some(CLOUD_BANDWIDTH_BYTES_PER_SECOND_MAX),
            parallel_io_max: CLOUD_PARALLEL_IO_MAX,
        }
    }

    /// No model: zero latency, no caps. Completions still pass through the device's threads,
    /// so this measures the model's own overhead.
    pub fn unlimited() -> DeviceProfile {
        DeviceProfile {
            name: "none".to_string(),
            latency_us: 0,
            jitter_us: 0,
            sync_latency_us: 0,
            iops_max: None,
            bandwidth_bytes_per_second_max: None,
            parallel_io_max: DEVICE_PARALLELISM_MAX,
        }
    }

    /// This profile with `jitter_us` of uniform jitter per I/O.
    pub fn with_jitter_us(mut self, jitter_us: u64) -> DeviceProfile {
        self.jitter_us = jitter_us;
        self
    }

    /// This profile with `parallel_io_max` channels.
    pub fn with_parallel_io_max(mut self, parallel_io_max: usize) -> DeviceProfile {
        self.parallel_io_max = parallel_io_max;
        self
    }

    /// Checks every field is within its limits.
    pub fn validate(&self) -> Result<()> {
        if self.parallel_io_max == 0 || self.parallel_io_max > DEVICE_PARALLELISM_MAX {
            return Err(Error::InvalidArgument(format!(
                "device parallelism {} is not in 1..={DEVICE_PARALLELISM_MAX}",
                self.parallel_io_max
            )));
        }
        let latency_us_max = self.latency_us.saturating_add(self.jitter_us);
        if latency_us_max > DEVICE_LATENCY_US_MAX || self.sync_latency_us > DEVICE_LATENCY_US_MAX {
            return Err(Error::InvalidArgument(format!(
                "device latency {latency_us_max} us (sync {} us) exceeds {} us",
                self.sync_latency_us, DEVICE_LATENCY_US_MAX
            )));
        }
        if self.iops_max == Some(0) {
            return Err(Error::InvalidArgument("device IOPS cap of 0".to_string()));
        }
        if self.bandwidth_bytes_per_second_max == Some(0) {
            return Err(Error::InvalidArgument(
                "device bandwidth cap of 0".to_string(),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for DeviceProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl FromStr for DeviceProfile {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nvme" => Ok(DeviceProfile::nvme()),
            "cloud" => Ok(DeviceProfile::cloud()),
            "none" => Ok(DeviceProfile::unlimited()),
            other => Err(Error::InvalidArgument(format!(
                "unknown device profile {other:?} (nvme, cloud or none)"
            ))),
        }
    }
}

/// Converts a nanosecond count to a `Duration`, saturating (limits keep it far from overflow).
fn nanos(count: u128) -> Duration {
    Duration::from_nanos(u64::try_from(count).unwrap_or(u64::MAX))
}

/// The virtual clock: when each channel is free and when the next token of each cap is.
struct DeviceClock {
    /// Min-heap of the instants each channel finishes its current I/O.
    channels_free_at: BinaryHeap<Reverse<Instant>>,
    iops_next_at: Instant,
    bandwidth_next_at: Instant,
    jitter: StdRng,
}

impl DeviceClock {
    fn new(profile: &DeviceProfile, seed: u64) -> DeviceClock {
        let now = Instant::now();
        DeviceClock {
            channels_free_at: (0..profile.parallel_io_max).map(|_| Reverse(now)).collect(),
            iops_next_at: now,
            bandwidth_next_at: now,
            jitter: StdRng::seed_from_u64(seed),
        }
    }

    /// Schedules one operation of `bytes` bytes and `latency_us` service time arriving at
    /// `now`; returns its completion deadline.
    fn schedule(
        &mut self,
        profile: &DeviceProfile,
        now: Instant,
        bytes: u64,
        latency_us: u64,
    ) -> Instant {
        let Reverse(channel_free_at) = self
            .channels_free_at
            .pop()
            .expect("a validated profile has at least one channel");
        let mut start = now.max(channel_free_at);
        if profile.iops_max.is_some() {
            start = start.max(self.iops_next_at);
        }
        if profile.bandwidth_bytes_per_second_max.is_some() {
            start = start.max(self.bandwidth_next_at);
        }
        if let Some(iops) = profile.iops_max {
            self.iops_next_at = start + nanos(NANOS_PER_SECOND / u128::from(iops));
        }
        let transfer = match profile.bandwidth_bytes_per_second_max {
            Some(bandwidth) => nanos(u128::from(bytes) * NANOS_PER_SECOND / u128::from(bandwidth)),
            None => Duration::ZERO,
        };
        self.bandwidth_next_at = start + transfer;
        let jitter_us = if profile.jitter_us > 0 {
            self.jitter.random_range(0..=profile.jitter_us)
        } else {
            0
        };
        let deadline = start + Duration::from_micros(latency_us + jitter_us) + transfer;
        self.channels_free_at.push(Reverse(deadline));
        deadline
    }
}

/// What the device remembers about a request while the inner backend performs it.
struct Pending {
    tag: u64,
    sink: Arc<CompletionSink>,
    deadline: Instant,
    /// Kept to answer the caller if the inner backend refuses the batch.
    file: Arc<IoFile>,
    op: IoOp,
    offset: u64,
    len: usize,
}

struct ReapState {
    /// Requests in the inner backend, by internal tag.
    pending: HashMap<u64, Pending>,
    next_id: u64,
    /// Bumped after every inner submit, so the reaper never sleeps through new work.
    generation: u64,
    shutdown: bool,
}

/// A completion held until its deadline.
struct Due {
    deadline: Instant,
    id: u64,
    completion: IoCompletion,
    sink: Arc<CompletionSink>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.id) == (other.deadline, other.id)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// Reversed, so that `BinaryHeap` (a max-heap) yields the earliest deadline first; ties
    /// go to the earlier submission.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.id).cmp(&(self.deadline, self.id))
    }
}

struct TimerState {
    due: BinaryHeap<Due>,
    shutdown: bool,
}

/// State shared by the device handle and its two threads.
struct Shared {
    inner: Arc<dyn IoBackend>,
    profile: DeviceProfile,
    clock: Mutex<DeviceClock>,
    internal_sink: Arc<CompletionSink>,
    reap: Mutex<ReapState>,
    reap_wake: Condvar,
    timer: Mutex<TimerState>,
    timer_wake: Condvar,
}

impl Shared {
    /// The reaper: drives the inner backend's completions and routes each to its caller.
    fn reap_loop(&self) {
        loop {
            let generation = self.reap.lock().generation;
            if let Some(completion) = self.inner.wait(&self.internal_sink) {
                self.forward(completion);
                continue;
            }
            let mut reap = self.reap.lock();
            while reap.generation == generation && !reap.shutdown {
                self.reap_wake.wait(&mut reap);
            }
            if reap.generation == generation && reap.shutdown {
                return;
            }
        }
    }

    /// Gives a completion back its caller's tag and delivers it now or at its deadline.
    fn forward(&self, mut completion: IoCompletion) {
        let id = completion.tag;
        let Some(pending) = self.reap.lock().pending.remove(&id) else {
            // The batch was refused by the inner backend and already answered in `submit`.
            return;
        };
        completion.tag = pending.tag;
        if pending.deadline <= Instant::now() {
            pending.sink.push(completion);
            return;
        }
        let due = Due {
            deadline: pending.deadline,
            id,
            completion,
            sink: pending.sink,
        };
        self.timer.lock().due.push(due);
        self.timer_wake.notify_one();
    }

    /// The timer: pushes each held completion into its sink when its deadline passes.
    fn timer_loop(&self) {
        let mut timer = self.timer.lock();
        loop {
            let now = Instant::now();
            let mut ready = Vec::new();
            while timer.due.peek().is_some_and(|top| top.deadline <= now) {
                ready.push(timer.due.pop().expect("peeked above"));
            }
            if !ready.is_empty() {
                MutexGuard::unlocked(&mut timer, || {
                    for due in ready {
                        due.sink.push(due.completion);
                    }
                });
                continue;
            }
            match timer.due.peek().map(|top| top.deadline) {
                Some(deadline) => {
                    self.timer_wake.wait_until(&mut timer, deadline);
                }
                None if timer.shutdown => return,
                None => self.timer_wake.wait(&mut timer),
            }
        }
    }
}

/// A device model wrapped around any backend: `sync+cloud`, `io_uring+nvme`, ...
///
/// The inner backend does the real I/O at full speed; the device only delays each completion
/// to when the modelled device would have finished it. Each request is scheduled when it is
/// submitted:
///
/// ```text
///   start    = max(now, earliest free channel, next IOPS token, next bandwidth slot)
///   deadline = start + latency + jitter + bytes / bandwidth
/// ```
///
/// Delivery costs two thread wake-ups after the deadline (the timer's, then the waiting
/// caller's), typically 20-100 us on top of the modelled latency, so one thread at queue depth
/// 1 on the cloud profile measures somewhat under 1,000 IOPS. [`crate::device`] explains why
/// the model exists and what it leaves out.
pub struct SimulatedDevice {
    shared: Arc<Shared>,
    reaper: Option<JoinHandle<()>>,
    timer: Option<JoinHandle<()>>,
}

impl fmt::Debug for SimulatedDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimulatedDevice")
            .field("inner", &self.shared.inner.name())
            .field("profile", &self.shared.profile)
            .finish()
    }
}

impl SimulatedDevice {
    /// Wraps `inner` in a device behaving like `profile`; `seed` drives the jitter.
    ///
    /// Starts two threads (reaper and timer), stopped when the device is dropped.
    pub fn new(
        inner: Arc<dyn IoBackend>,
        profile: DeviceProfile,
        seed: u64,
    ) -> Result<SimulatedDevice> {
        profile.validate()?;
        let shared = Arc::new(Shared {
            inner,
            clock: Mutex::new(DeviceClock::new(&profile, seed)),
            profile,
            internal_sink: CompletionSink::new(),
            reap: Mutex::new(ReapState {
                pending: HashMap::new(),
                next_id: 0,
                generation: 0,
                shutdown: false,
            }),
            reap_wake: Condvar::new(),
            timer: Mutex::new(TimerState {
                due: BinaryHeap::new(),
                shutdown: false,
            }),
            timer_wake: Condvar::new(),
        });
        // Built before the threads so that `Drop` stops whichever did start if a spawn fails.
        let mut device = SimulatedDevice {
            shared,
            reaper: None,
            timer: None,
        };
        let shared = Arc::clone(&device.shared);
        device.reaper = Some(
            std::thread::Builder::new()
                .name("storelab-device-reaper".to_string())
                .spawn(move || shared.reap_loop())
                .map_err(|e| Error::io("<device>", "spawn", e))?,
        );
        let shared = Arc::clone(&device.shared);
        device.timer = Some(
            std::thread::Builder::new()
                .name("storelab-device-timer".to_string())
                .spawn(move || shared.timer_loop())
                .map_err(|e| Error::io("<device>", "spawn", e))?,
        );
        Ok(device)
    }

    /// The device's profile.
    pub fn profile(&self) -> &DeviceProfile {
        &self.shared.profile
    }

    /// The backend that performs the real I/O.
    pub fn inner(&self) -> &Arc<dyn IoBackend> {
        &self.shared.inner
    }
}

impl IoBackend for SimulatedDevice {
    fn name(&self) -> String {
        format!("{}+{}", self.shared.inner.name(), self.shared.profile.name)
    }

    fn open(&self, path: &Path, options: &OpenOptions) -> Result<Arc<IoFile>> {
        self.shared.inner.open(path, options)
    }

    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        if requests.len() > IO_BATCH_MAX {
            return Err(Error::InvalidArgument(format!(
                "batch of {} requests exceeds {IO_BATCH_MAX}",
                requests.len()
            )));
        }
        if requests.is_empty() {
            return Ok(());
        }
        let now = Instant::now();
        let deadlines: Vec<Instant> = {
            let mut clock = self.shared.clock.lock();
            let profile = &self.shared.profile;
            requests
                .iter()
                .map(|r| clock.schedule(profile, now, r.buf.len() as u64, profile.latency_us))
                .collect()
        };
        sink.begin(requests.len());
        // Register every request before the inner backend sees it: with the sync backend the
        // completion reaches the reaper before `inner.submit` even returns.
        let mut ids = Vec::with_capacity(requests.len());
        let inner_requests: Vec<IoRequest> = {
            let mut reap = self.shared.reap.lock();
            requests
                .into_iter()
                .zip(deadlines)
                .map(|(mut request, deadline)| {
                    let id = reap.next_id;
                    reap.next_id += 1;
                    let pending = Pending {
                        tag: request.tag,
                        sink: Arc::clone(sink),
                        deadline,
                        file: Arc::clone(&request.file),
                        op: request.op,
                        offset: request.offset,
                        len: request.buf.len(),
                    };
                    reap.pending.insert(id, pending);
                    ids.push(id);
                    request.tag = id;
                    request
                })
                .collect()
        };
        let result = self
            .shared
            .inner
            .submit(inner_requests, &self.shared.internal_sink);
        let refused: Vec<Pending> = {
            let mut reap = self.shared.reap.lock();
            reap.generation += 1;
            if result.is_err() {
                ids.iter()
                    .filter_map(|id| reap.pending.remove(id))
                    .collect()
            } else {
                Vec::new()
            }
        };
        self.shared.reap_wake.notify_all();
        // Keep the sink's accounting whole: each refused request still completes, as an error,
        // with a fresh buffer (the inner backend dropped the original).
        for pending in refused {
            pending.sink.push(IoCompletion {
                file: pending.file,
                op: pending.op,
                offset: pending.offset,
                buf: AlignedBuf::zeroed(pending.len),
                tag: pending.tag,
                result: Err(std::io::Error::other("the inner backend refused the batch")),
            });
        }
        result
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        sink.wait_pushed()
    }

    /// A sync is one operation of `sync_latency_us` on the device's clock, performed by the
    /// inner backend and returned no earlier than its deadline.
    fn sync(&self, file: &IoFile) -> Result<()> {
        let deadline = {
            let profile = &self.shared.profile;
            self.shared
                .clock
                .lock()
                .schedule(profile, Instant::now(), 0, profile.sync_latency_us)
        };
        self.shared.inner.sync(file)?;
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        Ok(())
    }

    fn file_len(&self, file: &IoFile) -> Result<u64> {
        self.shared.inner.file_len(file)
    }

    fn set_len(&self, file: &IoFile, len: u64) -> Result<()> {
        self.shared.inner.set_len(file, len)
    }
}

impl Drop for SimulatedDevice {
    fn drop(&mut self) {
        // The reaper first: it exits once the inner backend has nothing left in flight, so every
        // completion reaches the timer before the timer is told to stop. The timer then keeps
        // running until its heap is empty.
        self.shared.reap.lock().shutdown = true;
        self.shared.reap_wake.notify_all();
        if let Some(reaper) = self.reaper.take() {
            let _ = reaper.join();
        }
        self.shared.timer.lock().shutdown = true;
        self.shared.timer_wake.notify_all();
        if let Some(timer) = self.timer.take() {
            let _ = timer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// At queue depth 1 the schedule is latency-bound: each deadline is one latency after the
    /// previous one's start, and the IOPS token never binds.
    #[test]
    fn schedule_at_queue_depth_one_is_latency_bound() {
        let profile = DeviceProfile::cloud();
        let mut clock = DeviceClock::new(&profile, 1);
        let now = Instant::now();
        let first = clock.schedule(&profile, now, 8192, profile.latency_us);
        let second = clock.schedule(&profile, first, 8192, profile.latency_us);
        let latency = Duration::from_micros(profile.latency_us);
        assert!(first - now >= latency, "first took {:?}", first - now);
        assert!(
            second - first >= latency,
            "second took {:?}",
            second - first
        );
        assert!(
            second - first < latency * 2,
            "second took {:?}",
            second - first
        );
    }

    /// Many requests arriving at once are spaced by the IOPS cap, not serialised by latency.
    #[test]
    fn schedule_of_a_burst_is_paced_by_the_iops_cap() {
        let profile = DeviceProfile::cloud();
        let mut clock = DeviceClock::new(&profile, 1);
        let now = Instant::now();
        let count = 30u32;
        let last = (0..count)
            .map(|_| clock.schedule(&profile, now, 8192, profile.latency_us))
            .max()
            .expect("non-empty");
        let interval = Duration::from_secs(1) / 3_000;
        let expected = interval * (count - 1) + Duration::from_micros(profile.latency_us);
        let slack = Duration::from_micros(200);
        assert!(
            last - now >= expected,
            "burst took {:?}, expected {expected:?}",
            last - now
        );
        assert!(
            last - now <= expected + slack,
            "burst took {:?}",
            last - now
        );
    }

    /// Profiles parse from their CLI names, and unknown names are an error.
    #[test]
    fn profiles_parse_from_names() {
        assert_eq!(
            "nvme".parse::<DeviceProfile>().ok(),
            Some(DeviceProfile::nvme())
        );
        assert_eq!(
            "cloud".parse::<DeviceProfile>().ok(),
            Some(DeviceProfile::cloud())
        );
        assert_eq!(
            "none".parse::<DeviceProfile>().ok(),
            Some(DeviceProfile::unlimited())
        );
        assert!("floppy".parse::<DeviceProfile>().is_err());
    }

    /// Out-of-range profiles are refused.
    #[test]
    fn invalid_profiles_are_refused() {
        assert!(
            DeviceProfile::cloud()
                .with_parallel_io_max(0)
                .validate()
                .is_err()
        );
        let mut profile = DeviceProfile::nvme();
        profile.iops_max = Some(0);
        assert!(profile.validate().is_err());
        assert!(
            DeviceProfile::nvme()
                .with_jitter_us(DEVICE_LATENCY_US_MAX)
                .validate()
                .is_err()
        );
    }
}
