//! Random 8 KiB reads through each I/O backend: what a read costs in software.
//!
//! The 64 MiB file is read once before measuring and opened buffered, so every read hits the
//! OS page cache: this measures the backends' own overhead (system calls, hand-offs between
//! threads, completion delivery), not the disk. `sync` runs at queue depth 1 (it cannot do
//! more); `worker` and `io_uring` keep 32 reads in flight, resubmitting each returned buffer.
//! For disk-bound numbers, see `storelab io-bench` and `../shared/tools/fio-baseline`.
//!
//! Predict before you run: on cached data, is `worker` faster or slower than `sync`? (PostgreSQL
//! 18 found the hand-off to an I/O worker can cost more than the `pread` it saves.)
//!
//! Run: `cargo bench --bench io_backends`; throughput is reported in bytes per second.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_pager::AlignedBuf;
use storelab_pager::io::{
    CompletionSink, IoBackend, IoFile, IoOp, IoRequest, IoUringBackend, OpenOptions, SyncBackend,
    WorkerBackend,
};

/// Bytes per read.
const READ_SIZE: usize = 8192;
/// Size of the file read from (bytes).
const FILE_SIZE: u64 = 64 << 20;
/// Reads kept in flight by the asynchronous backends.
const IO_DEPTH: usize = 32;
/// Worker threads of the worker backend.
const WORKER_THREADS: usize = 8;
/// Ring entries of the io_uring backend.
const RING_ENTRIES: u32 = 64;
/// Precomputed random page offsets, cycled through by every benchmark.
const OFFSET_COUNT: usize = 1 << 16;
/// Seed of the offsets.
const SEED: u64 = 0x10_ba_c4;
/// Criterion measurement time per benchmark.
const MEASUREMENT_TIME: Duration = Duration::from_secs(3);
/// Criterion warm-up time per benchmark.
const WARM_UP_TIME: Duration = Duration::from_secs(1);

/// The benchmark file, created (and its pages cached) on first use.
fn bench_file() -> PathBuf {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("io_backends_64MiB.dat");
    let complete = std::fs::metadata(&path)
        .map(|m| m.len() == FILE_SIZE)
        .unwrap_or(false);
    if !complete {
        let mut file = std::fs::File::create(&path).expect("create the bench file");
        let mut rng = StdRng::seed_from_u64(SEED);
        let mut chunk = vec![0u8; 1 << 20];
        for _ in 0..FILE_SIZE / chunk.len() as u64 {
            rng.fill(&mut chunk[..]);
            file.write_all(&chunk).expect("write the bench file");
        }
        file.sync_all().expect("sync the bench file");
    }
    // Read it all once so that the measured reads come from the page cache.
    let bytes = std::fs::read(&path).expect("read the bench file");
    assert_eq!(bytes.len() as u64, FILE_SIZE, "bench file size");
    path
}

/// Random page-aligned offsets inside the file.
fn random_offsets() -> Vec<u64> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let page_count = FILE_SIZE / READ_SIZE as u64;
    (0..OFFSET_COUNT)
        .map(|_| rng.random_range(0..page_count) * READ_SIZE as u64)
        .collect()
}

/// Performs `count` random reads with up to `depth` in flight and returns the time taken.
///
/// Buffers are recycled from completions, and all completions ready after a wait are
/// resubmitted as one batch, as a read stream would do.
fn run_reads(
    backend: &dyn IoBackend,
    file: &Arc<IoFile>,
    offsets: &[u64],
    depth: usize,
    count: u64,
) -> Duration {
    let sink = CompletionSink::new();
    let mut next = 0usize;
    let mut request = |buf: AlignedBuf| {
        let offset = offsets[next % offsets.len()];
        next += 1;
        IoRequest {
            file: Arc::clone(file),
            op: IoOp::Read,
            offset,
            buf,
            tag: next as u64,
        }
    };
    let mut buffers: Vec<AlignedBuf> = (0..depth).map(|_| AlignedBuf::zeroed(READ_SIZE)).collect();
    let mut submitted = 0u64;
    let mut completed = 0u64;
    let mut batch: Vec<IoRequest> = Vec::with_capacity(depth);
    let start = Instant::now();
    while completed < count {
        while submitted < count {
            let Some(buf) = buffers.pop() else { break };
            batch.push(request(buf));
            submitted += 1;
        }
        if !batch.is_empty() {
            let requests = std::mem::replace(&mut batch, Vec::with_capacity(depth));
            backend.submit(requests, &sink).expect("submit");
        }
        let first = backend.wait(&sink).expect("reads in flight");
        let mut done = Some(first);
        while let Some(c) = done {
            let n = c.bytes().expect("read");
            assert_eq!(n, READ_SIZE, "a full read inside the file");
            buffers.push(c.buf);
            completed += 1;
            done = sink.try_pop();
        }
    }
    start.elapsed()
}

/// Registers one benchmark per backend.
fn io_backends(c: &mut Criterion) {
    let path = bench_file();
    let offsets = random_offsets();
    let mut backends: Vec<(String, Arc<dyn IoBackend>, usize)> = vec![
        ("sync_qd1".into(), Arc::new(SyncBackend::new()), 1),
        (
            format!("worker{WORKER_THREADS}_qd{IO_DEPTH}"),
            Arc::new(WorkerBackend::new(WORKER_THREADS).expect("worker threads")),
            IO_DEPTH,
        ),
    ];
    match IoUringBackend::new(RING_ENTRIES) {
        Ok(ring) => backends.push((format!("io_uring_qd{IO_DEPTH}"), Arc::new(ring), IO_DEPTH)),
        Err(e) => eprintln!("skipping io_uring: {e}"),
    }

    let mut group = c.benchmark_group("random_8KiB_reads_cached");
    group.throughput(Throughput::Bytes(READ_SIZE as u64));
    group.measurement_time(MEASUREMENT_TIME);
    group.warm_up_time(WARM_UP_TIME);
    for (name, backend, depth) in &backends {
        let options = OpenOptions {
            create: false,
            direct: false,
        };
        let file = backend.open(&path, &options).expect("open the bench file");
        group.bench_function(name.as_str(), |b| {
            b.iter_custom(|iters| run_reads(backend.as_ref(), &file, &offsets, *depth, iters))
        });
    }
    group.finish();
}

/// Criterion's generated entry point.
mod entry {
    #![allow(missing_docs)] // criterion_group! generates a `pub fn` without a doc comment.
    criterion::criterion_group!(benches, super::io_backends);
}
criterion_main!(entry::benches);
