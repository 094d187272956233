//! What an io-bench run measures, and the limits every setting is checked against.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde::Serialize;
use storelab_pager::device::DeviceProfile;
use storelab_pager::io::{BackendKind, IO_BATCH_MAX};
use storelab_pager::page::IO_ALIGNMENT;

use crate::byte_size::ByteSize;

/// The largest queue depth accepted (one batch of the pager's I/O API).
pub const QUEUE_DEPTH_MAX: u32 = IO_BATCH_MAX as u32;

/// The largest block size accepted, random or sequential.
pub const BLOCK_SIZE_MAX: u64 = 16 << 20;

/// The most buffer memory one measurement may keep in flight (queue depth x block size).
pub const IN_FLIGHT_BYTES_MAX: u64 = 1 << 30;

/// The longest measurement or warm-up accepted, in seconds.
pub const DURATION_S_MAX: f64 = 3600.0;

/// Whether reads bypass the page cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum IoMode {
    /// O_DIRECT: every read goes to the device.
    Direct,
    /// Through the page cache (dropped before each measurement).
    Buffered,
}

impl IoMode {
    /// True for [`IoMode::Direct`].
    pub fn is_direct(self) -> bool {
        self == IoMode::Direct
    }
}

impl fmt::Display for IoMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoMode::Direct => "direct",
            IoMode::Buffered => "buffered",
        })
    }
}

/// The order in which offsets are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub enum Pattern {
    /// Uniformly random, block-aligned offsets (fio's `randread`).
    #[serde(rename = "randread")]
    RandRead,
    /// Consecutive blocks from offset 0, wrapping at the end of the file (fio's `read`).
    #[serde(rename = "seqread")]
    SeqRead,
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Pattern::RandRead => "randread",
            Pattern::SeqRead => "seqread",
        })
    }
}

/// Everything an io-bench run needs; [`IoBenchConfig::validate`] checks it against the limits.
#[derive(Clone, Debug, PartialEq)]
pub struct IoBenchConfig {
    /// Where the test file is created; `None` means a fresh temporary directory.
    pub dir: Option<PathBuf>,
    /// Size of the test file in bytes (a multiple of 4096).
    pub file_size: u64,
    /// Size of each random read in bytes (a multiple of 4096).
    pub block_size: u64,
    /// Size of each sequential read in bytes (a multiple of 4096).
    pub seq_block_size: u64,
    /// Queue depths of the random-read measurements; sequential reads use the largest.
    pub queue_depths: Vec<u32>,
    /// Backends to measure, in order.
    pub backends: Vec<BackendKind>,
    /// Modes to measure for each backend, in order.
    pub modes: Vec<IoMode>,
    /// How long each measurement runs after its warm-up (ignored when `ops` is set).
    pub duration: Duration,
    /// How long each measurement runs before anything is recorded.
    pub warmup: Duration,
    /// Measure exactly this many reads instead of running for `duration`.
    pub ops: Option<u64>,
    /// Seed of the random-offset generator.
    pub seed: u64,
    /// Threads of the worker backend; raised to the largest queue depth if smaller.
    pub worker_threads: usize,
    /// Wrap every backend in a simulated device with this profile (`None`: the real disk).
    pub device: Option<DeviceProfile>,
}

impl Default for IoBenchConfig {
    /// The CLI's defaults: 1 GiB file, 8 KiB random reads at QD 1 and 32, 128 KiB sequential
    /// reads, every backend in both modes, 3 s per measurement.
    fn default() -> Self {
        IoBenchConfig {
            dir: None,
            file_size: 1 << 30,
            block_size: 8 << 10,
            seq_block_size: 128 << 10,
            queue_depths: vec![1, 32],
            backends: BackendKind::ALL.to_vec(),
            modes: vec![IoMode::Direct, IoMode::Buffered],
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(300),
            ops: None,
            seed: 42,
            worker_threads: 32,
            device: None,
        }
    }
}

impl IoBenchConfig {
    /// Checks every setting against its limit; the error names the flag and the legal range.
    pub fn validate(&self) -> Result<()> {
        check_block_size("--block-size", self.block_size)?;
        check_block_size("--seq-block-size", self.seq_block_size)?;
        if !self.file_size.is_multiple_of(IO_ALIGNMENT as u64) || self.file_size == 0 {
            bail!(
                "--size {} is not a positive multiple of 4096",
                ByteSize(self.file_size)
            );
        }
        let largest_block = self.block_size.max(self.seq_block_size);
        if self.file_size < largest_block {
            bail!(
                "--size {} is smaller than the largest block size ({})",
                ByteSize(self.file_size),
                ByteSize(largest_block)
            );
        }
        if self.queue_depths.is_empty() {
            bail!("--queue-depths is empty");
        }
        for &depth in &self.queue_depths {
            if depth == 0 || depth > QUEUE_DEPTH_MAX {
                bail!("queue depth {depth} is not in 1..={QUEUE_DEPTH_MAX}");
            }
            let in_flight = u64::from(depth) * self.block_size;
            if in_flight > IN_FLIGHT_BYTES_MAX {
                bail!(
                    "queue depth {depth} x block size {} = {} in flight, more than the {} limit",
                    ByteSize(self.block_size),
                    ByteSize(in_flight),
                    ByteSize(IN_FLIGHT_BYTES_MAX)
                );
            }
        }
        let seq_in_flight = u64::from(self.seq_queue_depth()) * self.seq_block_size;
        if seq_in_flight > IN_FLIGHT_BYTES_MAX {
            bail!(
                "sequential reads at queue depth {} x {} = {} in flight, more than the {} limit",
                self.seq_queue_depth(),
                ByteSize(self.seq_block_size),
                ByteSize(seq_in_flight),
                ByteSize(IN_FLIGHT_BYTES_MAX)
            );
        }
        if self.backends.is_empty() {
            bail!("--backends is empty");
        }
        if self.modes.is_empty() {
            bail!("--modes is empty");
        }
        check_seconds("--duration", self.duration)?;
        if !self.warmup.is_zero() {
            check_seconds("--warmup", self.warmup)?;
        }
        if self.ops == Some(0) {
            bail!("--ops must be at least 1");
        }
        if self.worker_threads == 0 {
            bail!("--worker-threads must be at least 1");
        }
        Ok(())
    }

    /// The queue depth of the sequential-read measurement: the largest random-read depth (32
    /// with the defaults), since sequential throughput is a many-in-flight figure.
    pub fn seq_queue_depth(&self) -> u32 {
        self.queue_depths.iter().copied().max().unwrap_or(1)
    }

    /// The size of the worker pool: `worker_threads`, raised so that every read in flight at
    /// the largest queue depth has a thread to run on.
    pub fn worker_pool_size(&self) -> usize {
        self.worker_threads.max(self.seq_queue_depth() as usize)
    }
}

fn check_block_size(flag: &str, size: u64) -> Result<()> {
    if size == 0 || !size.is_multiple_of(IO_ALIGNMENT as u64) {
        bail!(
            "{flag} {} is not a positive multiple of 4096",
            ByteSize(size)
        );
    }
    if size > BLOCK_SIZE_MAX {
        bail!(
            "{flag} {} is larger than the {} limit",
            ByteSize(size),
            ByteSize(BLOCK_SIZE_MAX)
        );
    }
    Ok(())
}

fn check_seconds(flag: &str, duration: Duration) -> Result<()> {
    if duration.is_zero() || duration.as_secs_f64() > DURATION_S_MAX {
        bail!(
            "{flag} {:?} is not in (0, {DURATION_S_MAX}] seconds",
            duration
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults are a valid configuration.
    #[test]
    fn defaults_validate() {
        IoBenchConfig::default().validate().unwrap();
    }

    /// Each out-of-range setting is rejected with a message naming its flag.
    #[test]
    fn out_of_range_settings_name_their_flag() {
        type Mutation = fn(&mut IoBenchConfig);
        let cases: [(Mutation, &str); 7] = [
            (|c| c.block_size = 5000, "--block-size"),
            (|c| c.seq_block_size = 0, "--seq-block-size"),
            (|c| c.file_size = 4096, "--size"),
            (|c| c.queue_depths = vec![0], "queue depth 0"),
            (|c| c.queue_depths = vec![1025], "queue depth 1025"),
            (|c| c.duration = Duration::ZERO, "--duration"),
            (|c| c.ops = Some(0), "--ops"),
        ];
        for (mutate, expected) in cases {
            let mut config = IoBenchConfig::default();
            mutate(&mut config);
            let message = config.validate().unwrap_err().to_string();
            assert!(
                message.contains(expected),
                "{message:?} should mention {expected:?}"
            );
        }
    }
}
