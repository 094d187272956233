//! The device models: the simulated device's latency, IOPS and bandwidth limits, and the fault
//! device's crash images and injected faults.
//!
//! Timing tests run each measurement for about half a second and assert with generous bounds:
//! they check which limit binds (latency, IOPS or bandwidth), not the exact rate.

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_pager::AlignedBuf;
use storelab_pager::device::{
    CrashOptions, DeviceProfile, FaultDevice, SECTOR_SIZE, SimulatedDevice,
};
use storelab_pager::error::Error;
use storelab_pager::io::{
    CompletionSink, IoBackend, IoFile, IoOp, IoRequest, OpenOptions, SyncBackend, WorkerBackend,
};

type TestResult = Result<(), Box<dyn StdError>>;

/// How long each throughput measurement runs.
const RUN_TIME: Duration = Duration::from_millis(600);
/// Size of one random read in the IOPS tests.
const READ_SIZE: usize = 8192;
/// Size of the file the IOPS tests read from (small: it stays in the page cache).
const SMALL_FILE_SIZE: usize = 4 << 20;
/// Reads kept in flight by the deep-queue runs.
const DEEP_QUEUE_DEPTH: usize = 32;
/// The cloud profile's caps, restated so that a change of profile shows up here.
const CLOUD_IOPS_MAX: f64 = 3_000.0;
const CLOUD_BANDWIDTH_BYTES_PER_SECOND_MAX: f64 = 125_000_000.0;
/// Page size used by the fault-device tests.
const PAGE: usize = 4096;

const OPEN: OpenOptions = OpenOptions {
    create: false,
    direct: false,
};
const CREATE: OpenOptions = OpenOptions {
    create: true,
    direct: false,
};

fn write_file(dir: &Path, name: &str, len: usize) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    let bytes: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, bytes)?;
    Ok(path)
}

fn filled(fill: u8, len: usize) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(len);
    buf.fill(fill);
    buf
}

fn read_request(file: &Arc<IoFile>, rng: &mut StdRng, len: usize, tag: u64) -> IoRequest {
    let slots = (SMALL_FILE_SIZE / len) as u64;
    let offset = rng.random_range(0..slots) * len as u64;
    IoRequest {
        file: Arc::clone(file),
        op: IoOp::Read,
        offset,
        buf: AlignedBuf::zeroed(len),
        tag,
    }
}

/// Random reads of `len` bytes with `depth` kept in flight for [`RUN_TIME`]; returns
/// (completed reads, elapsed).
fn run_reads(
    device: &dyn IoBackend,
    file: &Arc<IoFile>,
    depth: usize,
    len: usize,
    seed: u64,
) -> Result<(u64, Duration), Box<dyn StdError>> {
    let mut rng = StdRng::seed_from_u64(seed);
    let sink = CompletionSink::new();
    let start = Instant::now();
    let mut tag = 0u64;
    let first: Vec<IoRequest> = (0..depth)
        .map(|_| {
            tag += 1;
            read_request(file, &mut rng, len, tag)
        })
        .collect();
    device.submit(first, &sink)?;
    let mut done = 0u64;
    while start.elapsed() < RUN_TIME {
        let completion = device.wait(&sink).ok_or("a read is in flight")?;
        completion.expect_full()?;
        done += 1;
        tag += 1;
        device.submit(vec![read_request(file, &mut rng, len, tag)], &sink)?;
    }
    let elapsed = start.elapsed();
    while let Some(completion) = device.wait(&sink) {
        completion.expect_full()?;
    }
    Ok((done, elapsed))
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64()
}

/// With the cloud profile, one thread at queue depth 1 on the sync backend is latency-bound
/// (about 1,000 IOPS at 1 ms), while 32 reads in flight on a 32-thread worker backend run into
/// the 3,000 IOPS cap: at least twice the queue-depth-1 rate, and never above the cap.
#[test]
fn cloud_deep_queue_reaches_iops_cap_and_queue_depth_one_does_not() -> TestResult {
    let seed = 7;
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), "data", SMALL_FILE_SIZE)?;

    let shallow = SimulatedDevice::new(Arc::new(SyncBackend::new()), DeviceProfile::cloud(), seed)?;
    assert_eq!(shallow.name(), "sync+cloud");
    let file = shallow.open(&path, &OPEN)?;
    let (count, elapsed) = run_reads(&shallow, &file, 1, READ_SIZE, seed)?;
    let iops_qd1 = rate(count, elapsed);

    let workers = Arc::new(WorkerBackend::new(DEEP_QUEUE_DEPTH)?);
    let deep = SimulatedDevice::new(workers, DeviceProfile::cloud(), seed)?;
    let file = deep.open(&path, &OPEN)?;
    let (count, elapsed) = run_reads(&deep, &file, DEEP_QUEUE_DEPTH, READ_SIZE, seed)?;
    let iops_qd32 = rate(count, elapsed);

    eprintln!("seed {seed}: cloud QD1 {iops_qd1:.0} IOPS, QD32 {iops_qd32:.0} IOPS");
    assert!(
        iops_qd1 <= 1_100.0,
        "seed {seed}: QD1 {iops_qd1:.0} IOPS beats a 1 ms latency"
    );
    assert!(
        iops_qd1 >= 400.0,
        "seed {seed}: QD1 {iops_qd1:.0} IOPS is far too slow"
    );
    assert!(
        iops_qd32 >= 2.0 * iops_qd1,
        "seed {seed}: QD32 {iops_qd32:.0} IOPS is not 2x QD1 {iops_qd1:.0}"
    );
    assert!(
        iops_qd32 <= CLOUD_IOPS_MAX * 1.1,
        "seed {seed}: QD32 {iops_qd32:.0} IOPS exceeds the cap"
    );
    Ok(())
}

/// One batch of 32 reads on the sync backend is also paced by the IOPS cap rather than by
/// 32 latencies: the device overlaps them although the backend performs them one by one.
#[test]
fn cloud_sync_backend_batch_overlaps_latencies() -> TestResult {
    let seed = 11;
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), "data", SMALL_FILE_SIZE)?;
    let device = SimulatedDevice::new(Arc::new(SyncBackend::new()), DeviceProfile::cloud(), seed)?;
    let file = device.open(&path, &OPEN)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let sink = CompletionSink::new();
    let start = Instant::now();
    let mut count = 0u64;
    while start.elapsed() < RUN_TIME {
        let batch = (0..DEEP_QUEUE_DEPTH as u64)
            .map(|tag| read_request(&file, &mut rng, READ_SIZE, tag))
            .collect();
        device.submit(batch, &sink)?;
        while let Some(completion) = device.wait(&sink) {
            completion.expect_full()?;
            count += 1;
        }
    }
    let iops = rate(count, start.elapsed());
    eprintln!("seed {seed}: cloud sync batches of 32: {iops:.0} IOPS");
    assert!(
        iops >= 2_000.0,
        "seed {seed}: batched {iops:.0} IOPS is latency-bound"
    );
    assert!(
        iops <= CLOUD_IOPS_MAX * 1.1,
        "seed {seed}: batched {iops:.0} IOPS exceeds the cap"
    );
    Ok(())
}

/// Large reads are limited by the bandwidth cap: 1 MiB reads, 8 in flight, on the cloud
/// profile move at most 125 MB/s (and at least half of it), far below the IOPS cap.
#[test]
fn cloud_bandwidth_cap_limits_large_reads() -> TestResult {
    let seed = 3;
    let read_size = 1 << 20;
    let depth = 8;
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), "data", SMALL_FILE_SIZE)?;
    let workers = Arc::new(WorkerBackend::new(depth)?);
    let device = SimulatedDevice::new(workers, DeviceProfile::cloud(), seed)?;
    let file = device.open(&path, &OPEN)?;
    let (count, elapsed) = run_reads(&device, &file, depth, read_size, seed)?;
    let bytes_per_second = rate(count * read_size as u64, elapsed);
    eprintln!(
        "seed {seed}: cloud 1 MiB reads: {:.1} MB/s",
        bytes_per_second / 1e6
    );
    assert!(
        bytes_per_second <= CLOUD_BANDWIDTH_BYTES_PER_SECOND_MAX * 1.1,
        "seed {seed}: {bytes_per_second:.0} B/s exceeds the bandwidth cap"
    );
    assert!(
        bytes_per_second >= CLOUD_BANDWIDTH_BYTES_PER_SECOND_MAX * 0.5,
        "seed {seed}: {bytes_per_second:.0} B/s is far below the bandwidth cap"
    );
    Ok(())
}

/// A sync costs one device latency: on the cloud profile it takes at least 1 ms.
#[test]
fn cloud_sync_takes_one_latency() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = write_file(dir.path(), "data", PAGE)?;
    let device = SimulatedDevice::new(Arc::new(SyncBackend::new()), DeviceProfile::cloud(), 1)?;
    let file = device.open(&path, &OPEN)?;
    let start = Instant::now();
    device.sync(&file)?;
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(1), "sync took {elapsed:?}");
    Ok(())
}

/// The simulated device hands every completion back exactly once with the caller's tag and
/// offset, and writes through it read back unchanged (worker backend, nvme profile with
/// jitter).
#[test]
fn simulated_device_keeps_tags_and_data() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let profile = DeviceProfile::nvme().with_jitter_us(50);
    let device = SimulatedDevice::new(Arc::new(WorkerBackend::new(4)?), profile, 5)?;
    assert_eq!(device.name(), "worker+nvme");
    let file = device.open(&path, &CREATE)?;
    let page_count = 16u64;
    let tag_base = 100u64;
    let writes = (0..page_count)
        .map(|i| IoRequest {
            file: Arc::clone(&file),
            op: IoOp::Write,
            offset: i * PAGE as u64,
            buf: filled(i as u8 + 1, PAGE),
            tag: tag_base + i,
        })
        .collect();
    let sink = CompletionSink::new();
    device.submit(writes, &sink)?;
    let mut seen = vec![false; page_count as usize];
    while let Some(completion) = device.wait(&sink) {
        completion.expect_full()?;
        let index = (completion.tag - tag_base) as usize;
        assert_eq!(
            completion.offset,
            index as u64 * PAGE as u64,
            "tag {}",
            completion.tag
        );
        assert!(!seen[index], "tag {} completed twice", completion.tag);
        seen[index] = true;
    }
    assert!(seen.iter().all(|&s| s), "missing completions: {seen:?}");
    for i in 0..page_count {
        let (buf, n) = device.read_at(&file, i * PAGE as u64, PAGE)?;
        assert_eq!(n, PAGE);
        assert!(
            buf.iter().all(|&b| b == i as u8 + 1),
            "page {i} reads back wrong"
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Fault device.
// ---------------------------------------------------------------------------------------------

fn fault_device(seed: u64) -> Arc<FaultDevice> {
    Arc::new(FaultDevice::new(Arc::new(SyncBackend::new()), seed))
}

fn write_page(device: &FaultDevice, file: &Arc<IoFile>, page: u64, fill: u8) -> TestResult {
    device.write_at(file, page * PAGE as u64, filled(fill, PAGE))?;
    Ok(())
}

/// The file's pages, each reduced to its fill byte (asserting it is uniform).
fn page_fills(path: &Path) -> Result<Vec<u8>, Box<dyn StdError>> {
    let bytes = std::fs::read(path)?;
    assert_eq!(
        bytes.len() % PAGE,
        0,
        "file length {} is not whole pages",
        bytes.len()
    );
    Ok(bytes
        .chunks(PAGE)
        .map(|page| {
            assert!(page.iter().all(|&b| b == page[0]), "page is not uniform");
            page[0]
        })
        .collect())
}

/// Writes pages 0 and 1, syncs, overwrites page 0 and appends page 2, then crashes with the
/// default options: only the synced state (two pages of the first fill) remains, and the file
/// reopens through the same device.
#[test]
fn crash_keeps_only_synced_data() -> TestResult {
    let seed = 21;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    write_page(&device, &file, 0, 0xA1)?;
    write_page(&device, &file, 1, 0xA2)?;
    device.sync(&file)?;
    write_page(&device, &file, 0, 0xB1)?;
    write_page(&device, &file, 2, 0xB3)?;
    assert_eq!(
        page_fills(&path)?,
        vec![0xB1, 0xA2, 0xB3],
        "seed {seed}: volatile state"
    );
    let report = device.crash(&CrashOptions::default())?;
    assert_eq!(report.dropped_count, 2, "seed {seed}: {report:?}");
    assert_eq!(
        page_fills(&path)?,
        vec![0xA1, 0xA2],
        "seed {seed}: crashed state"
    );
    let reopened = device.open(&path, &OPEN)?;
    assert_eq!(device.file_len(&reopened)?, 2 * PAGE as u64);
    let (buf, _) = device.read_at(&reopened, 0, PAGE)?;
    assert!(
        buf.iter().all(|&b| b == 0xA1),
        "seed {seed}: page 0 after reopen"
    );
    Ok(())
}

/// With keep probability 1.0 and no tearing, a crash keeps every unsynced write.
#[test]
fn crash_with_keep_probability_one_keeps_every_write() -> TestResult {
    let seed = 22;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    write_page(&device, &file, 0, 0xA1)?;
    write_page(&device, &file, 1, 0xA2)?;
    device.sync(&file)?;
    write_page(&device, &file, 0, 0xB1)?;
    write_page(&device, &file, 2, 0xB3)?;
    let options = CrashOptions {
        keep_probability: 1.0,
        torn: false,
    };
    let report = device.crash(&options)?;
    assert_eq!(report.kept_count, 2, "seed {seed}: {report:?}");
    assert_eq!(page_fills(&path)?, vec![0xB1, 0xA2, 0xB3], "seed {seed}");
    Ok(())
}

/// A torn 64 KiB write over synced zeros leaves a 4 KiB-aligned prefix of the new bytes
/// (at least one sector) and the old bytes after it; over 16 seeds at least one write tears.
#[test]
fn torn_write_keeps_a_sector_aligned_prefix() -> TestResult {
    let write_size = 16 * SECTOR_SIZE;
    let mut torn_seen = 0;
    for seed in 0..16u64 {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("data");
        let device = fault_device(seed);
        let file = device.open(&path, &CREATE)?;
        device.write_at(&file, 0, AlignedBuf::zeroed(write_size))?;
        device.sync(&file)?;
        device.write_at(&file, 0, filled(0xCC, write_size))?;
        let report = device.crash(&CrashOptions {
            keep_probability: 1.0,
            torn: true,
        })?;
        torn_seen += report.torn_count;
        let bytes = std::fs::read(&path)?;
        assert_eq!(bytes.len(), write_size, "seed {seed}: length");
        let prefix = bytes.iter().take_while(|&&b| b == 0xCC).count();
        assert_eq!(
            prefix % SECTOR_SIZE,
            0,
            "seed {seed}: prefix {prefix} is not whole sectors"
        );
        assert!(
            prefix >= SECTOR_SIZE,
            "seed {seed}: not even one sector kept"
        );
        assert!(
            bytes[prefix..].iter().all(|&b| b == 0),
            "seed {seed}: bytes after the prefix"
        );
    }
    assert!(torn_seen > 0, "no write tore in 16 seeds");
    Ok(())
}

/// `fail_nth_io(3)` fails exactly the third I/O of a batch of five writes with EIO: the other
/// four succeed, the failed page never reaches the file, and later I/O works again.
#[test]
fn fail_nth_io_fails_exactly_that_io() -> TestResult {
    let seed = 23;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    device.fail_nth_io(3);
    let tag_base = 10u64;
    let writes = (0..5u64)
        .map(|i| IoRequest {
            file: Arc::clone(&file),
            op: IoOp::Write,
            offset: i * PAGE as u64,
            buf: filled(0xEE, PAGE),
            tag: tag_base + i,
        })
        .collect();
    let sink = CompletionSink::new();
    device.submit(writes, &sink)?;
    let mut failed_tags = Vec::new();
    while let Some(completion) = device.wait(&sink) {
        match &completion.result {
            Ok(n) => assert_eq!(*n, PAGE, "seed {seed}: tag {}", completion.tag),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EIO), "seed {seed}: {e}");
                failed_tags.push(completion.tag);
            }
        }
    }
    assert_eq!(failed_tags, vec![tag_base + 2], "seed {seed}");
    assert_eq!(device.io_count(), 5);
    assert_eq!(
        page_fills(&path)?,
        vec![0xEE, 0xEE, 0x00, 0xEE, 0xEE],
        "seed {seed}"
    );
    write_page(&device, &file, 2, 0xEE)?;
    assert_eq!(device.io_count(), 6);
    assert_eq!(page_fills(&path)?, vec![0xEE; 5], "seed {seed}");
    Ok(())
}

/// `fail_nth_sync(1)` fails the next sync with an injected fault and makes nothing durable;
/// the sync after it succeeds and makes the write durable.
#[test]
fn fail_nth_sync_fails_that_sync_only() -> TestResult {
    let seed = 24;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    write_page(&device, &file, 0, 0xA1)?;
    device.fail_nth_sync(1);
    let failed = device.sync(&file);
    assert!(
        matches!(failed, Err(Error::InjectedFault { .. })),
        "seed {seed}: {failed:?}"
    );
    assert_eq!(device.durable_image(&path), Some(Vec::new()), "seed {seed}");
    assert_eq!(device.pending_count(&path), 1, "seed {seed}");
    device.sync(&file)?;
    assert_eq!(device.sync_count(), 2);
    assert_eq!(
        device.durable_image(&path),
        Some(vec![0xA1; PAGE]),
        "seed {seed}"
    );
    Ok(())
}

/// `power_off_after_sync(1)`: the write after the first sync fails with EIO, the second sync
/// fails, and a crash restores the first sync's state and the power.
#[test]
fn power_off_after_sync_freezes_that_sync_point() -> TestResult {
    let seed = 25;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    device.power_off_after_sync(1);
    write_page(&device, &file, 0, 0xA1)?;
    device.sync(&file)?;
    assert!(device.is_powered_off(), "seed {seed}");
    assert!(
        write_page(&device, &file, 1, 0xB2).is_err(),
        "seed {seed}: write after power-off"
    );
    assert!(
        device.sync(&file).is_err(),
        "seed {seed}: sync after power-off"
    );
    device.crash(&CrashOptions {
        keep_probability: 1.0,
        torn: false,
    })?;
    assert!(!device.is_powered_off(), "seed {seed}");
    assert_eq!(page_fills(&path)?, vec![0xA1], "seed {seed}");
    write_page(&device, &file, 1, 0xB2)?;
    assert_eq!(page_fills(&path)?, vec![0xA1, 0xB2], "seed {seed}");
    Ok(())
}

/// `flip_bit` changes exactly one bit of the real file and of the durable image, and the flip
/// survives a crash.
#[test]
fn flip_bit_changes_exactly_one_bit() -> TestResult {
    let seed = 26;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("data");
    let device = fault_device(seed);
    let file = device.open(&path, &CREATE)?;
    write_page(&device, &file, 0, 0x55)?;
    device.sync(&file)?;
    let before = std::fs::read(&path)?;
    let (offset, bit) = (100u64, 3u8);
    device.flip_bit(&path, offset, bit)?;
    let count_flipped = |after: &[u8]| -> u32 {
        before
            .iter()
            .zip(after)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum()
    };
    let after = std::fs::read(&path)?;
    assert_eq!(count_flipped(&after), 1, "seed {seed}: real file");
    assert_eq!(after[offset as usize], before[offset as usize] ^ (1 << bit));
    let durable = device.durable_image(&path).ok_or("the file is tracked")?;
    assert_eq!(count_flipped(&durable), 1, "seed {seed}: durable image");
    device.crash(&CrashOptions::default())?;
    assert_eq!(
        count_flipped(&std::fs::read(&path)?),
        1,
        "seed {seed}: after the crash"
    );
    assert!(
        device.flip_bit(&path, PAGE as u64, 0).is_err(),
        "flip past the end"
    );
    Ok(())
}

/// The crashed image is a function of the seed: two devices with the same seed and the same
/// operations crash to identical files (random keeps, torn writes).
#[test]
fn crash_is_deterministic_for_a_seed() -> TestResult {
    let seed = 27;
    let run = |name: &str| -> Result<Vec<u8>, Box<dyn StdError>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join(name);
        let device = fault_device(seed);
        let file = device.open(&path, &CREATE)?;
        device.write_at(&file, 0, filled(0x11, 8 * PAGE))?;
        device.sync(&file)?;
        for i in 0..12u64 {
            let offset = (i % 6) * 2 * PAGE as u64;
            device.write_at(&file, offset, filled(0x20 + i as u8, 4 * PAGE))?;
        }
        device.crash(&CrashOptions {
            keep_probability: 0.5,
            torn: true,
        })?;
        Ok(std::fs::read(&path)?)
    };
    let first = run("a")?;
    let second = run("b")?;
    assert!(
        first == second,
        "seed {seed}: two crashes with one seed differ"
    );
    Ok(())
}
