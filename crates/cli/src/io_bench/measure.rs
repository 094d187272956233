//! The measurement loop: one thread keeping `queue_depth` reads in flight on one backend.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use storelab_pager::device::SimulatedDevice;
use storelab_pager::io::{
    BackendConfig, BackendKind, CompletionSink, IoBackend, IoFile, IoOp, IoRequest, OpenOptions,
    open_backend,
};
use storelab_pager::{AlignedBuf, Error as PagerError};

use super::config::{IoBenchConfig, IoMode, Pattern};
use super::test_file::{TestFile, drop_page_cache};
use crate::byte_size::ByteSize;

/// Version of the JSON-lines record ([`Measurement`]); bumped when a key changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Latencies above this (60 s) are recorded as this: the histogram's upper bound.
const LATENCY_NS_MAX: u64 = 60_000_000_000;

/// Significant decimal digits the latency histogram keeps (0.1% resolution).
const LATENCY_SIGNIFICANT_DIGITS: u8 = 3;

/// One measurement to run: which backend, mode, pattern, block size and queue depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeasurementSpec {
    /// The backend's report name (`sync`, `worker`, `io_uring`).
    pub backend: String,
    /// The simulated device profile wrapped around the backend, if any (`nvme`, `cloud`).
    pub device: Option<String>,
    /// Direct or buffered.
    pub mode: IoMode,
    /// Random or sequential.
    pub pattern: Pattern,
    /// Bytes per read.
    pub block_size: u64,
    /// Reads kept in flight.
    pub queue_depth: u32,
}

impl fmt::Display for MeasurementSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.backend)?;
        if let Some(device) = &self.device {
            write!(f, "+{device}")?;
        }
        write!(
            f,
            " {} {} {} QD{}",
            self.mode,
            self.pattern,
            ByteSize(self.block_size),
            self.queue_depth
        )
    }
}

/// The result of one measurement; serialised as one line of `--json` output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measurement {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The backend's report name (`sync`, `worker`, `io_uring`), without the device.
    pub backend: String,
    /// The simulated device profile the backend ran under (`--device`), or null.
    pub device: Option<String>,
    /// True for `O_DIRECT` reads, false for buffered ones.
    pub direct: bool,
    /// `randread` or `seqread`.
    pub pattern: Pattern,
    /// Bytes per read.
    pub block_size: u64,
    /// Reads kept in flight.
    pub queue_depth: u32,
    /// Length of the measured window in seconds (warm-up excluded).
    pub duration_s: f64,
    /// Reads completed in the window.
    pub ops: u64,
    /// Reads per second.
    pub iops: f64,
    /// Throughput in 10^6 bytes per second.
    pub mb_per_s: f64,
    /// Mean latency, microseconds.
    pub mean_us: f64,
    /// Median latency, microseconds.
    pub p50_us: f64,
    /// 99th-percentile latency, microseconds.
    pub p99_us: f64,
    /// 99.9th-percentile latency, microseconds.
    pub p999_us: f64,
    /// Largest latency, microseconds.
    pub max_us: f64,
    /// Size of the test file in bytes.
    pub file_size: u64,
    /// Seed of the offset generator.
    pub seed: u64,
    /// Threads in the worker pool (worker backend only).
    pub worker_threads: Option<usize>,
}

/// A backend that could not be measured, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkippedBackend {
    /// The backend asked for.
    pub backend: BackendKind,
    /// Why it was skipped, as one sentence.
    pub reason: String,
}

/// Everything a run produced.
#[derive(Clone, Debug, PartialEq)]
pub struct IoBenchReport {
    /// The measurements, in the order they ran.
    pub measurements: Vec<Measurement>,
    /// Backends that were asked for but could not be measured.
    pub skipped: Vec<SkippedBackend>,
}

/// Hooks through which a caller follows a run (progress bars, streaming output). Every method
/// has a do-nothing default.
pub trait IoBenchObserver {
    /// A backend will not be measured.
    fn backend_skipped(&mut self, skipped: &SkippedBackend) {
        let _ = skipped;
    }

    /// The test file is being filled: `done` of `total` bytes are written.
    fn filling(&mut self, done: u64, total: u64) {
        let _ = (done, total);
    }

    /// Measurement `index` (0-based) of `count` is starting.
    fn measurement_started(&mut self, index: usize, count: usize, spec: &MeasurementSpec) {
        let _ = (index, count, spec);
    }

    /// A measurement finished; an error stops the run (say, the JSON file cannot be written).
    fn measurement_done(&mut self, measurement: &Measurement) -> Result<()> {
        let _ = measurement;
        Ok(())
    }
}

/// Runs every measurement `config` asks for and returns them; `observer` sees each one as it
/// finishes.
///
/// Backends are started before the test file is written, so a bad setting fails in
/// milliseconds, not after a gigabyte of writing. io_uring being unavailable (old kernel,
/// seccomp, sysctl) is not an error: that backend is skipped and listed in the report. If no
/// requested backend can run at all, that is an error.
pub fn run_io_bench(
    config: &IoBenchConfig,
    observer: &mut dyn IoBenchObserver,
) -> Result<IoBenchReport> {
    config.validate()?;
    let mut skipped = Vec::new();
    let backends = open_backends(config, &mut skipped, observer)?;
    let modes = unique(&config.modes);

    let mut test_file = TestFile::create(
        config.dir.as_deref(),
        config.file_size,
        config.seed,
        &mut |done, total| observer.filling(done, total),
    )?;
    let mut handles = Vec::new();
    for opened in &backends {
        for &mode in &modes {
            handles.push(open_test_file(opened.backend.as_ref(), &test_file, mode)?);
        }
    }
    test_file.unlink()?;

    let mut plan = Vec::new();
    for (b, opened) in backends.iter().enumerate() {
        for (m, &mode) in modes.iter().enumerate() {
            let handle = &handles[b * modes.len() + m];
            for spec in measurements_of(config, opened, mode) {
                plan.push((b, handle, spec));
            }
        }
    }

    let mut measurements = Vec::with_capacity(plan.len());
    for (index, (b, handle, spec)) in plan.iter().enumerate() {
        observer.measurement_started(index, plan.len(), spec);
        if !spec.mode.is_direct() {
            drop_page_cache(handle.file(), handle.path())?;
        }
        let opened = &backends[*b];
        let mut measurement = measure(opened.backend.as_ref(), handle, spec, config)
            .with_context(|| format!("measuring {spec}"))?;
        measurement.worker_threads = opened.worker_threads;
        observer.measurement_done(&measurement)?;
        measurements.push(measurement);
    }
    Ok(IoBenchReport {
        measurements,
        skipped,
    })
}

/// A started backend (wrapped in the simulated device, if one was asked for).
struct OpenedBackend {
    backend: Arc<dyn IoBackend>,
    /// The real backend's name (`auto` resolves to the one it picked).
    name: String,
    /// The size of its worker pool, if it has one.
    worker_threads: Option<usize>,
}

/// Starts each requested backend once (duplicates ignored), with the worker pool and the ring
/// sized for the largest queue depth, each wrapped in `config.device` if set.
fn open_backends(
    config: &IoBenchConfig,
    skipped: &mut Vec<SkippedBackend>,
    observer: &mut dyn IoBenchObserver,
) -> Result<Vec<OpenedBackend>> {
    let default = BackendConfig::default();
    let ring_entries = config
        .seq_queue_depth()
        .next_power_of_two()
        .max(default.ring_entries);
    let mut backends = Vec::new();
    for kind in unique(&config.backends) {
        let backend_config = BackendConfig {
            kind,
            worker_threads: config.worker_pool_size(),
            ring_entries,
        };
        match open_backend(&backend_config) {
            Ok(backend) => {
                let name = backend.name();
                let worker_threads = (name == "worker").then_some(config.worker_pool_size());
                let backend: Arc<dyn IoBackend> = match &config.device {
                    Some(profile) => Arc::new(
                        SimulatedDevice::new(backend, profile.clone(), config.seed)
                            .context("cannot start the simulated device")?,
                    ),
                    None => backend,
                };
                backends.push(OpenedBackend {
                    backend,
                    name,
                    worker_threads,
                });
            }
            Err(e @ PagerError::IoUringUnavailable { .. }) => {
                let skip = SkippedBackend {
                    backend: kind,
                    reason: e.to_string(),
                };
                observer.backend_skipped(&skip);
                skipped.push(skip);
            }
            Err(e) if kind == BackendKind::Worker => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot start the worker backend with {} threads (at least one per read \
                         in flight at queue depth {})",
                        config.worker_pool_size(),
                        config.seq_queue_depth()
                    )
                });
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot start the {kind} backend"));
            }
        }
    }
    if backends.is_empty() {
        let reasons: Vec<String> = skipped
            .iter()
            .map(|s| format!("{}: {}", s.backend, s.reason))
            .collect();
        bail!("no requested backend can run ({})", reasons.join("; "));
    }
    Ok(backends)
}

/// Opens the test file through `backend` for `mode`, explaining the usual failure.
fn open_test_file(backend: &dyn IoBackend, file: &TestFile, mode: IoMode) -> Result<Arc<IoFile>> {
    let options = OpenOptions {
        create: false,
        direct: mode.is_direct(),
    };
    match backend.open(file.path(), &options) {
        Ok(handle) => Ok(handle),
        Err(PagerError::Io { source, .. })
            if mode.is_direct() && source.kind() == std::io::ErrorKind::InvalidInput =>
        {
            let dir = file.path().parent().unwrap_or(std::path::Path::new("."));
            bail!(
                "the filesystem of {} does not support O_DIRECT (use --modes buffered or another \
                 --dir)",
                dir.display()
            )
        }
        Err(e) => Err(e).with_context(|| format!("cannot open the test file ({mode})")),
    }
}

/// The measurements of one backend in one mode: random reads at each queue depth, then
/// sequential reads at the largest.
fn measurements_of(
    config: &IoBenchConfig,
    backend: &OpenedBackend,
    mode: IoMode,
) -> Vec<MeasurementSpec> {
    let spec = |pattern, block_size, queue_depth| MeasurementSpec {
        backend: backend.name.clone(),
        device: config.device.as_ref().map(|profile| profile.name.clone()),
        mode,
        pattern,
        block_size,
        queue_depth,
    };
    let mut specs: Vec<MeasurementSpec> = unique(&config.queue_depths)
        .into_iter()
        .map(|depth| spec(Pattern::RandRead, config.block_size, depth))
        .collect();
    specs.push(spec(
        Pattern::SeqRead,
        config.seq_block_size,
        config.seq_queue_depth(),
    ));
    specs
}

/// Offsets to read: uniform random blocks, or consecutive blocks wrapping at the end.
struct OffsetStream {
    pattern: Pattern,
    block_size: u64,
    block_count: u64,
    next_block: u64,
    rng: StdRng,
}

impl OffsetStream {
    fn new(pattern: Pattern, file_size: u64, block_size: u64, seed: u64) -> OffsetStream {
        let block_count = file_size / block_size;
        assert!(
            block_count > 0,
            "file of {file_size} bytes holds no {block_size}-byte block"
        );
        OffsetStream {
            pattern,
            block_size,
            block_count,
            next_block: 0,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn next_offset(&mut self) -> u64 {
        let block = match self.pattern {
            Pattern::RandRead => self.rng.random_range(0..self.block_count),
            Pattern::SeqRead => {
                let block = self.next_block;
                self.next_block = (block + 1) % self.block_count;
                block
            }
        };
        block * self.block_size
    }
}

/// Runs one measurement: keeps `spec.queue_depth` reads in flight from this thread, warms up
/// for `config.warmup`, then records every completion for `config.duration` (or `config.ops`
/// completions), then drains what is still in flight without recording it.
///
/// The loop submits `queue_depth` reads in one batch, then takes completions one at a time and
/// replaces each at once with a new read, submitted on its own. Batching the replacements
/// (take every ready completion, resubmit them in one call) saves system calls but measured
/// worse here: with io_uring on this virtio disk a whole queue's worth of reads then reaches
/// the device together and completes together, so the queue drains to empty between rounds and
/// IOPS dropped by ~12% (32 completions per wake-up either way; fio, too, submits one read per
/// call by default, `iodepth_batch_submit=1`). Each read's buffer is reused for the read that
/// replaces it. Per read the loop costs two clock reads, a histogram increment and a one-element
/// vector: well under a microsecond, against tens of microseconds of device time.
fn measure(
    backend: &dyn IoBackend,
    file: &Arc<IoFile>,
    spec: &MeasurementSpec,
    config: &IoBenchConfig,
) -> Result<Measurement> {
    let queue_depth = spec.queue_depth as usize;
    let mut offsets =
        OffsetStream::new(spec.pattern, config.file_size, spec.block_size, config.seed);
    let mut latency_ns =
        Histogram::<u64>::new_with_bounds(1, LATENCY_NS_MAX, LATENCY_SIGNIFICANT_DIGITS)
            .expect("constant histogram bounds are valid");
    let sink = CompletionSink::new();
    // Submit time of the read in flight in each slot; a read's tag is its slot.
    let mut submitted_at = vec![Instant::now(); queue_depth];
    let first_batch: Vec<IoRequest> = (0..queue_depth)
        .map(|slot| IoRequest {
            file: Arc::clone(file),
            op: IoOp::Read,
            offset: offsets.next_offset(),
            buf: AlignedBuf::zeroed(spec.block_size as usize),
            tag: slot as u64,
        })
        .collect();

    let warmup_end = Instant::now() + config.warmup;
    // Opens at the first completion after the warm-up, which is itself not counted: it was in
    // flight during the warm-up.
    let mut window_start: Option<Instant> = None;
    let mut stopping = false;
    let mut ops = 0u64;
    let mut bytes = 0u64;
    let mut last_counted = Instant::now();

    submit(backend, first_batch, &mut submitted_at, &sink)?;
    while let Some(done) = backend.wait(&sink) {
        let now = Instant::now();
        done.expect_full()?;
        let slot = done.tag as usize;
        match window_start {
            None => {
                if now >= warmup_end {
                    window_start = Some(now);
                }
            }
            Some(start) if !stopping => {
                let latency = now.saturating_duration_since(submitted_at[slot]);
                latency_ns.saturating_record(u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX));
                ops += 1;
                bytes += done.buf.len() as u64;
                last_counted = now;
                stopping = match config.ops {
                    Some(ops_max) => ops >= ops_max,
                    None => now.duration_since(start) >= config.duration,
                };
            }
            Some(_) => {}
        }
        if !stopping {
            let request = IoRequest {
                file: done.file,
                op: IoOp::Read,
                offset: offsets.next_offset(),
                buf: done.buf,
                tag: done.tag,
            };
            submit(backend, vec![request], &mut submitted_at, &sink)?;
        }
    }

    let Some(start) = window_start else {
        bail!("the measurement ended before its warm-up did (no reads were in flight)");
    };
    if ops == 0 {
        bail!("no read completed in the measurement window");
    }
    // A window shorter than a nanosecond cannot happen with at least one counted read after
    // the window opened, but a zero divisor must not turn into an infinite rate.
    let seconds = last_counted
        .duration_since(start)
        .max(Duration::from_nanos(1))
        .as_secs_f64();
    let us = |ns: u64| round2(ns as f64 / 1000.0);
    Ok(Measurement {
        schema_version: SCHEMA_VERSION,
        backend: spec.backend.clone(),
        device: spec.device.clone(),
        direct: spec.mode.is_direct(),
        pattern: spec.pattern,
        block_size: spec.block_size,
        queue_depth: spec.queue_depth,
        duration_s: (seconds * 1e6).round() / 1e6,
        ops,
        iops: round2(ops as f64 / seconds),
        mb_per_s: round2(bytes as f64 / 1e6 / seconds),
        mean_us: round2(latency_ns.mean() / 1000.0),
        p50_us: us(latency_ns.value_at_quantile(0.50)),
        p99_us: us(latency_ns.value_at_quantile(0.99)),
        p999_us: us(latency_ns.value_at_quantile(0.999)),
        max_us: us(latency_ns.max()),
        file_size: config.file_size,
        seed: config.seed,
        worker_threads: None,
    })
}

/// Stamps each request of `requests` with the current time and submits them.
fn submit(
    backend: &dyn IoBackend,
    requests: Vec<IoRequest>,
    submitted_at: &mut [Instant],
    sink: &Arc<CompletionSink>,
) -> Result<()> {
    let now = Instant::now();
    for request in &requests {
        submitted_at[request.tag as usize] = now;
    }
    backend.submit(requests, sink).context("submitting reads")
}

/// Rounds to two decimals: plenty for rates and microseconds, and keeps the JSON readable.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The distinct items of `items`, in first-seen order.
fn unique<T: PartialEq + Copy>(items: &[T]) -> Vec<T> {
    let mut seen = Vec::with_capacity(items.len());
    for &item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random offsets are block-aligned, inside the file, and the same for the same seed.
    #[test]
    fn random_offsets_are_aligned_in_range_and_seeded() {
        let file_size = 1 << 20;
        let mut a = OffsetStream::new(Pattern::RandRead, file_size, 8192, 7);
        let mut b = OffsetStream::new(Pattern::RandRead, file_size, 8192, 7);
        for _ in 0..10_000 {
            let offset = a.next_offset();
            assert_eq!(offset % 8192, 0);
            assert!(offset + 8192 <= file_size, "offset {offset}");
            assert_eq!(offset, b.next_offset());
        }
    }

    /// Sequential offsets walk the whole blocks of the file and wrap to zero.
    #[test]
    fn sequential_offsets_wrap_at_the_last_whole_block() {
        // 3.5 blocks: the half block at the end is never read.
        let mut stream = OffsetStream::new(Pattern::SeqRead, 7 * 4096, 8192, 0);
        let offsets: Vec<u64> = (0..5).map(|_| stream.next_offset()).collect();
        assert_eq!(offsets, [0, 8192, 16384, 0, 8192]);
    }

    /// Random reads come at each distinct queue depth, then one sequential measurement at the
    /// largest depth.
    #[test]
    fn plan_has_each_depth_then_sequential_at_the_largest() {
        let config = IoBenchConfig {
            queue_depths: vec![4, 1, 4, 16],
            ..IoBenchConfig::default()
        };
        let sync = OpenedBackend {
            backend: Arc::new(storelab_pager::io::SyncBackend::new()),
            name: "sync".to_string(),
            worker_threads: None,
        };
        let plan = measurements_of(&config, &sync, IoMode::Direct);
        let shape: Vec<(Pattern, u32)> = plan.iter().map(|s| (s.pattern, s.queue_depth)).collect();
        assert_eq!(
            shape,
            [
                (Pattern::RandRead, 4),
                (Pattern::RandRead, 1),
                (Pattern::RandRead, 16),
                (Pattern::SeqRead, 16)
            ]
        );
    }
}
