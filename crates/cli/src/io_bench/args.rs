//! `IoBenchArgs`: the command-line flags of `storelab io-bench`.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use storelab_pager::device::DeviceProfile;
use storelab_pager::io::BackendKind;

use super::config::{DURATION_S_MAX, IoBenchConfig, IoMode, QUEUE_DEPTH_MAX};
use crate::byte_size::ByteSize;

/// Help shown by `storelab io-bench --help` below the flag list.
const AFTER_HELP: &str = "\
Queue depth: one thread keeps QD reads in flight, submitting a new read as each one completes.
The sync backend performs each read inside submit, so at QD > 1 it is QD 1 with a queue in front:
same IOPS, latency growing with QD. The worker pool gets max(QD, --worker-threads) threads.

Latency is submit-to-completion as the submitting thread sees it. MB/s is 10^6 bytes per second.
Random offsets are uniform over the file, aligned to the block size, and the same sequence (from
--seed) for every measurement.

Buffered numbers: the file's page cache is dropped (posix_fadvise DONTNEED) before each buffered
measurement, but fills during it. With a file smaller than RAM, buffered reads increasingly hit
memory (a sequential pass may end up entirely cached); with a file larger than RAM they stay
device-bound. Compare buffered rows only between runs with the same --size on the same machine.

The test file is removed as soon as it is open, so nothing is left behind even if the run is
killed. Compare with ../shared/tools/fio-baseline, run on the same disk at the same time.";

/// Flags of `storelab io-bench`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "See --help for queue-depth and latency definitions, and why buffered numbers \
                  depend on the file size versus RAM.",
    after_long_help = AFTER_HELP
)]
pub struct IoBenchArgs {
    /// Directory for the test file, removed afterwards [default: a new temporary directory]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// Size of the test file (binary units: 256MiB, 1G, 2GiB, or bytes)
    #[arg(long, value_name = "SIZE", default_value = "1GiB")]
    pub size: ByteSize,

    /// Bytes per random read; a multiple of 4096
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub block_size: ByteSize,

    /// Bytes per sequential read; a multiple of 4096
    #[arg(long, value_name = "SIZE", default_value = "128KiB")]
    pub seq_block_size: ByteSize,

    /// Queue depths of the random reads; sequential reads use the largest
    #[arg(
        long,
        value_name = "QD,...",
        value_delimiter = ',',
        default_value = "1,32",
        value_parser = clap::value_parser!(u32).range(1..=i64::from(QUEUE_DEPTH_MAX)),
    )]
    pub queue_depths: Vec<u32>,

    /// Backends to measure: sync, worker, io_uring (auto = io_uring, else worker)
    #[arg(
        long,
        value_name = "NAME,...",
        value_delimiter = ',',
        default_value = "sync,worker,io_uring",
        value_parser = parse_backend,
    )]
    pub backends: Vec<BackendKind>,

    /// Modes to measure for each backend
    #[arg(
        long,
        value_name = "MODE,...",
        value_delimiter = ',',
        default_value = "direct,buffered"
    )]
    pub modes: Vec<IoMode>,

    /// Seconds each measurement runs after its warm-up
    #[arg(long, value_name = "SECONDS", default_value = "3", value_parser = parse_seconds)]
    pub duration: Duration,

    /// Seconds of warm-up before each measurement (not recorded)
    #[arg(long, value_name = "SECONDS", default_value = "0.3", value_parser = parse_warmup)]
    pub warmup: Duration,

    /// Measure exactly this many reads instead of running for --duration
    #[arg(long, value_name = "N", conflicts_with = "duration", value_parser = parse_ops)]
    pub ops: Option<u64>,

    /// Seed of the random-offset generator
    #[arg(long, default_value_t = 42)]
    pub seed: u64,

    /// Threads of the worker backend (raised to the largest queue depth)
    #[arg(long, value_name = "N", default_value_t = 32,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub worker_threads: u64,

    /// Wrap each backend in a simulated device: nvme (80 us, 500k IOPS), cloud (1 ms, 3,000
    /// IOPS, 125 MB/s) or none (no limits: the model's own overhead) [default: the real disk]
    #[arg(long, value_name = "PROFILE", value_parser = parse_device)]
    pub device: Option<DeviceProfile>,

    /// Also write one JSON object per measurement, one per line, to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress bar (it is also hidden when stderr is not a terminal)
    #[arg(long, short)]
    pub quiet: bool,
}

impl IoBenchArgs {
    /// The run these flags describe (not yet validated: see [`IoBenchConfig::validate`]).
    pub fn to_config(&self) -> IoBenchConfig {
        IoBenchConfig {
            dir: self.dir.clone(),
            file_size: self.size.bytes(),
            block_size: self.block_size.bytes(),
            seq_block_size: self.seq_block_size.bytes(),
            queue_depths: self.queue_depths.clone(),
            backends: self.backends.clone(),
            modes: self.modes.clone(),
            duration: self.duration,
            warmup: self.warmup,
            ops: self.ops,
            seed: self.seed,
            worker_threads: self.worker_threads as usize,
            device: self.device.clone(),
        }
    }
}

fn parse_backend(text: &str) -> Result<BackendKind, String> {
    BackendKind::from_str(text)
        .map_err(|_| format!("unknown backend {text:?} (sync, worker, io_uring or auto)"))
}

fn parse_device(text: &str) -> Result<DeviceProfile, String> {
    DeviceProfile::from_str(text)
        .map_err(|_| format!("unknown device profile {text:?} (nvme, cloud or none)"))
}

fn parse_ops(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive number of reads")),
    }
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if s > 0.0 && s <= DURATION_S_MAX => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{text:?} is not a number of seconds in (0, {DURATION_S_MAX}]"
        )),
    }
}

fn parse_warmup(text: &str) -> Result<Duration, String> {
    match text.parse::<f64>() {
        Ok(s) if (0.0..=DURATION_S_MAX).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(format!(
            "{text:?} is not a number of seconds in [0, {DURATION_S_MAX}]"
        )),
    }
}
