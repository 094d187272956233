//! One conformance suite for every I/O backend.
//!
//! Each test runs against `sync`, `worker` (4 threads), `io_uring` (a normal ring and a tiny one
//! whose CQ holds 8 requests, so batches overflow into the userspace queue), each on a buffered
//! and an `O_DIRECT` file. If the kernel refuses io_uring, the io_uring rows are skipped with a
//! note on stderr. This is the contract of `IoBackend` in `src/io/mod.rs`, checked the same way
//! for all, in the spirit of toydb's golden scripts shared by every engine.
//!
//! Randomness comes from [`SEED`]; every failure message names the backend, the file mode and
//! the seed.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use storelab_pager::AlignedBuf;
use storelab_pager::io::{
    CompletionSink, IoBackend, IoFile, IoOp, IoRequest, IoUringBackend, OpenOptions, SyncBackend,
    WorkerBackend,
};

/// Seed of every random choice in this file.
const SEED: u64 = 0x5703_e1ab;
/// Page size used by the tests (bytes).
const PAGE_SIZE: usize = 8192;
/// Worker threads of the worker backend under test.
const WORKER_THREADS: usize = 4;
/// Ring entries of the normal io_uring backend.
const RING_ENTRIES: u32 = 64;
/// Ring entries of the tiny io_uring backend (its CQ holds 8 requests).
const RING_ENTRIES_TINY: u32 = 4;
/// A test that has not finished after this long is reported as a deadlock.
const WATCHDOG: Duration = Duration::from_secs(20);

/// A backend under test, with its label for failure messages.
struct Subject {
    label: String,
    backend: Arc<dyn IoBackend>,
    direct: bool,
    dir: tempfile::TempDir,
}

impl Subject {
    /// Opens (creating) `name` in this subject's temporary directory.
    fn open(&self, name: &str) -> Arc<IoFile> {
        let options = OpenOptions {
            create: true,
            direct: self.direct,
        };
        self.backend
            .open(&self.dir.path().join(name), &options)
            .unwrap_or_else(|e| panic!("{}: open {name}: {e}", self.label))
    }
}

/// Every backend this machine can run, fresh for one test.
fn backends() -> Vec<(String, Arc<dyn IoBackend>)> {
    let mut list: Vec<(String, Arc<dyn IoBackend>)> = vec![
        ("sync".into(), Arc::new(SyncBackend::new())),
        (
            format!("worker({WORKER_THREADS})"),
            Arc::new(WorkerBackend::new(WORKER_THREADS).expect("worker threads start")),
        ),
    ];
    for entries in [RING_ENTRIES, RING_ENTRIES_TINY] {
        match IoUringBackend::new(entries) {
            Ok(ring) => list.push((format!("io_uring({entries})"), Arc::new(ring))),
            Err(e) => eprintln!("skipping io_uring({entries}): {e}"),
        }
    }
    list
}

/// Runs `test` once per backend and file mode (buffered, direct), under a deadlock watchdog.
fn for_each_backend(test: fn(&Subject)) {
    for (name, backend) in backends() {
        for direct in [false, true] {
            let label = format!(
                "{name} {} (seed {SEED:#x})",
                if direct { "O_DIRECT" } else { "buffered" }
            );
            // Under target/ rather than /tmp: tmpfs may not support O_DIRECT.
            let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
            let subject = Subject {
                label: label.clone(),
                backend: Arc::clone(&backend),
                direct,
                dir,
            };
            let (done_tx, done_rx) = mpsc::channel();
            let runner = std::thread::spawn(move || {
                test(&subject);
                let _ = done_tx.send(());
            });
            match done_rx.recv_timeout(WATCHDOG) {
                Ok(()) => runner.join().expect("test thread finished"),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // The test panicked: re-raise its message.
                    if let Err(panic) = runner.join() {
                        std::panic::resume_unwind(panic);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("{label}: no progress after {WATCHDOG:?} (deadlock?)")
                }
            }
        }
    }
}

/// The byte at `index` of page `page` in files written by these tests.
fn pattern_byte(page: u64, index: usize) -> u8 {
    (page as u8).wrapping_mul(31) ^ (index as u8) ^ ((index >> 8) as u8) ^ 0x5a
}

/// A page-sized buffer holding page `page`'s pattern.
fn pattern_page(page: u64) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(PAGE_SIZE);
    for (i, byte) in buf.iter_mut().enumerate() {
        *byte = pattern_byte(page, i);
    }
    buf
}

/// Asserts that `bytes` hold page `page`'s pattern.
fn assert_pattern(label: &str, page: u64, bytes: &[u8]) {
    if let Some(i) = (0..bytes.len()).find(|&i| bytes[i] != pattern_byte(page, i)) {
        panic!(
            "{label}: page {page} byte {i} is {:#04x}, expected {:#04x}",
            bytes[i],
            pattern_byte(page, i)
        );
    }
}

/// A read request of `pages` pages starting at page `page`, tagged `tag`.
fn read_request(file: &Arc<IoFile>, page: u64, pages: usize, tag: u64) -> IoRequest {
    IoRequest {
        file: Arc::clone(file),
        op: IoOp::Read,
        offset: page * PAGE_SIZE as u64,
        buf: AlignedBuf::zeroed(pages * PAGE_SIZE),
        tag,
    }
}

/// Writes pages `0..page_count` with their patterns in one batch and waits for all.
fn fill_file(s: &Subject, file: &Arc<IoFile>, page_count: u64) {
    let sink = CompletionSink::new();
    let requests = (0..page_count)
        .map(|page| IoRequest {
            file: Arc::clone(file),
            op: IoOp::Write,
            offset: page * PAGE_SIZE as u64,
            buf: pattern_page(page),
            tag: page,
        })
        .collect();
    s.backend.submit(requests, &sink).expect("submit writes");
    let mut done = 0;
    while let Some(c) = s.backend.wait(&sink) {
        c.expect_full()
            .unwrap_or_else(|e| panic!("{}: write page {}: {e}", s.label, c.tag));
        done += 1;
    }
    assert_eq!(done, page_count, "{}: writes completed", s.label);
}

/// Waits for every request of `sink` and returns the completions in arrival order.
fn drain(s: &Subject, sink: &CompletionSink) -> Vec<storelab_pager::io::IoCompletion> {
    let mut out = Vec::new();
    while let Some(c) = s.backend.wait(sink) {
        out.push(c);
    }
    assert_eq!(
        sink.in_flight(),
        0,
        "{}: wait returned None with requests in flight",
        s.label
    );
    out
}

/// Pages written at random offsets (shuffled order, batches of 16) read back with the same
/// bytes, and pages never written read back as zeros.
#[test]
fn write_then_read_back_at_random_offsets() {
    fn run(s: &Subject) {
        const PAGE_COUNT: u64 = 256;
        const WRITTEN_COUNT: usize = 64;
        const BATCH: usize = 16;
        let mut rng = StdRng::seed_from_u64(SEED);
        let file = s.open("random.dat");
        s.backend
            .set_len(&file, PAGE_COUNT * PAGE_SIZE as u64)
            .expect("set_len");
        let mut pages: Vec<u64> = (0..PAGE_COUNT).collect();
        pages.shuffle(&mut rng);
        let written: Vec<u64> = pages[..WRITTEN_COUNT].to_vec();
        for chunk in written.chunks(BATCH) {
            let sink = CompletionSink::new();
            let requests = chunk
                .iter()
                .map(|&page| IoRequest {
                    file: Arc::clone(&file),
                    op: IoOp::Write,
                    offset: page * PAGE_SIZE as u64,
                    buf: pattern_page(page),
                    tag: page,
                })
                .collect();
            s.backend.submit(requests, &sink).expect("submit");
            for c in drain(s, &sink) {
                c.expect_full()
                    .unwrap_or_else(|e| panic!("{}: write: {e}", s.label));
            }
        }
        let written: HashSet<u64> = written.into_iter().collect();
        let sink = CompletionSink::new();
        let mut order: Vec<u64> = (0..PAGE_COUNT).collect();
        order.shuffle(&mut rng);
        let requests = order
            .iter()
            .map(|&page| read_request(&file, page, 1, page))
            .collect();
        s.backend.submit(requests, &sink).expect("submit");
        let completions = drain(s, &sink);
        assert_eq!(completions.len(), PAGE_COUNT as usize, "{}", s.label);
        for c in completions {
            c.expect_full()
                .unwrap_or_else(|e| panic!("{}: read: {e}", s.label));
            if written.contains(&c.tag) {
                assert_pattern(&s.label, c.tag, &c.buf);
            } else {
                assert!(
                    c.buf.iter().all(|&b| b == 0),
                    "{}: page {} not zero",
                    s.label,
                    c.tag
                );
            }
        }
    }
    for_each_backend(run);
}

/// A batch of 64 reads delivers 64 completions, every tag exactly once, then `wait` says None.
#[test]
fn batch_of_64_reads_completes_every_tag_once() {
    fn run(s: &Subject) {
        const PAGE_COUNT: u64 = 64;
        const TAG_BASE: u64 = 1000;
        let file = s.open("batch.dat");
        fill_file(s, &file, PAGE_COUNT);
        let sink = CompletionSink::new();
        let requests = (0..PAGE_COUNT)
            .map(|page| read_request(&file, page, 1, TAG_BASE + page))
            .collect();
        s.backend.submit(requests, &sink).expect("submit");
        let mut seen = HashSet::new();
        for c in drain(s, &sink) {
            assert!(
                seen.insert(c.tag),
                "{}: tag {} delivered twice",
                s.label,
                c.tag
            );
            c.expect_full()
                .unwrap_or_else(|e| panic!("{}: {e}", s.label));
            assert_pattern(&s.label, c.tag - TAG_BASE, &c.buf);
        }
        let expected: HashSet<u64> = (TAG_BASE..TAG_BASE + PAGE_COUNT).collect();
        assert_eq!(seen, expected, "{}: tags", s.label);
        assert!(
            s.backend.wait(&sink).is_none(),
            "{}: extra completion",
            s.label
        );
    }
    for_each_backend(run);
}

/// Completions of a mixed batch (1 MiB and 8 KiB reads, shuffled) may come in any order; each
/// one's tag, offset and bytes still belong together.
#[test]
fn completions_are_identified_by_tag_in_any_order() {
    fn run(s: &Subject) {
        const PAGE_COUNT: u64 = 256;
        const LARGE_PAGES: usize = 128;
        let mut rng = StdRng::seed_from_u64(SEED ^ 1);
        let file = s.open("order.dat");
        fill_file(s, &file, PAGE_COUNT);
        let mut requests: Vec<IoRequest> = (0..32u64)
            .map(|tag| {
                let page = rng.random_range(0..PAGE_COUNT);
                read_request(&file, page, 1, tag)
            })
            .collect();
        requests.push(read_request(&file, 0, LARGE_PAGES, 32));
        requests.push(read_request(
            &file,
            PAGE_COUNT - LARGE_PAGES as u64,
            LARGE_PAGES,
            33,
        ));
        requests.shuffle(&mut rng);
        let expected: Vec<(u64, u64, usize)> = requests
            .iter()
            .map(|r| (r.tag, r.offset, r.buf.len()))
            .collect();
        let sink = CompletionSink::new();
        s.backend.submit(requests, &sink).expect("submit");
        let completions = drain(s, &sink);
        assert_eq!(completions.len(), expected.len(), "{}", s.label);
        for c in completions {
            let &(_, offset, len) = expected
                .iter()
                .find(|(tag, _, _)| *tag == c.tag)
                .unwrap_or_else(|| panic!("{}: unknown tag {}", s.label, c.tag));
            assert_eq!(c.offset, offset, "{}: tag {} offset", s.label, c.tag);
            assert_eq!(c.buf.len(), len, "{}: tag {} length", s.label, c.tag);
            assert_eq!(c.op, IoOp::Read, "{}", s.label);
            c.expect_full()
                .unwrap_or_else(|e| panic!("{}: {e}", s.label));
            let first_page = offset / PAGE_SIZE as u64;
            for (i, page_bytes) in c.buf.chunks(PAGE_SIZE).enumerate() {
                assert_pattern(&s.label, first_page + i as u64, page_bytes);
            }
        }
    }
    for_each_backend(run);
}

/// Reads that cross the end of the file return the bytes up to it; reads wholly past it
/// return 0. The file is 2.5 pages of 4 KiB, so the end is not page-aligned.
#[test]
fn reads_past_eof_return_short_count() {
    fn run(s: &Subject) {
        const SMALL: usize = 4096;
        const FILE_LEN: u64 = 10 * 1024;
        let file = s.open("eof.dat");
        let buf = AlignedBuf::zeroed(3 * SMALL);
        s.backend.write_at(&file, 0, buf).expect("write");
        s.backend.set_len(&file, FILE_LEN).expect("set_len");
        assert_eq!(
            s.backend.file_len(&file).expect("len"),
            FILE_LEN,
            "{}",
            s.label
        );
        let cases: [(u64, usize, usize); 4] = [
            (0, 4 * SMALL, FILE_LEN as usize),
            (2 * SMALL as u64, 2 * SMALL, FILE_LEN as usize - 2 * SMALL),
            (4 * SMALL as u64, SMALL, 0),
            (1 << 30, 2 * SMALL, 0),
        ];
        for (offset, len, expected) in cases {
            let (_, n) = s
                .backend
                .read_at(&file, offset, len)
                .unwrap_or_else(|e| panic!("{}: read {len} at {offset}: {e}", s.label));
            assert_eq!(n, expected, "{}: read {len} bytes at {offset}", s.label);
        }
    }
    for_each_backend(run);
}

/// One read of 16 adjacent pages returns the same bytes as the 16 single-page reads.
#[test]
fn combined_read_equals_single_reads() {
    fn run(s: &Subject) {
        const PAGE_COUNT: u64 = 40;
        const RUN_PAGES: usize = 16;
        const FIRST_PAGE: u64 = 7;
        let file = s.open("combined.dat");
        fill_file(s, &file, PAGE_COUNT);
        let (combined, n) = s
            .backend
            .read_at(&file, FIRST_PAGE * PAGE_SIZE as u64, RUN_PAGES * PAGE_SIZE)
            .unwrap();
        assert_eq!(n, RUN_PAGES * PAGE_SIZE, "{}", s.label);
        let sink = CompletionSink::new();
        let requests = (0..RUN_PAGES as u64)
            .map(|i| read_request(&file, FIRST_PAGE + i, 1, i))
            .collect();
        s.backend.submit(requests, &sink).expect("submit");
        for c in drain(s, &sink) {
            c.expect_full()
                .unwrap_or_else(|e| panic!("{}: {e}", s.label));
            let at = c.tag as usize * PAGE_SIZE;
            assert!(
                combined[at..at + PAGE_SIZE] == c.buf[..],
                "{}: page {} differs between the combined and the single read",
                s.label,
                FIRST_PAGE + c.tag
            );
        }
    }
    for_each_backend(run);
}

/// Eight threads, each with its own sink, submit batches and wait concurrently on one backend;
/// every thread gets exactly its own completions with the right bytes.
#[test]
fn concurrent_threads_each_get_their_own_completions() {
    fn run(s: &Subject) {
        const THREADS: u64 = 8;
        const ROUNDS: usize = 6;
        const BATCH: u64 = 24;
        const PAGE_COUNT: u64 = 128;
        let file = s.open("threads.dat");
        fill_file(s, &file, PAGE_COUNT);
        std::thread::scope(|scope| {
            for t in 0..THREADS {
                let file = Arc::clone(&file);
                scope.spawn(move || {
                    let mut rng = StdRng::seed_from_u64(SEED + t);
                    let sink = CompletionSink::new();
                    for round in 0..ROUNDS {
                        let pages: Vec<u64> = (0..BATCH)
                            .map(|_| rng.random_range(0..PAGE_COUNT))
                            .collect();
                        // The tag encodes thread, round and page, so a stray delivery shows.
                        let tag = |i: u64| (t << 48) | ((round as u64) << 32) | pages[i as usize];
                        let requests =
                            (0..BATCH).map(|i| read_request(&file, pages[i as usize], 1, tag(i)));
                        s.backend.submit(requests.collect(), &sink).expect("submit");
                        let completions = drain(s, &sink);
                        assert_eq!(completions.len(), BATCH as usize, "{}", s.label);
                        for c in completions {
                            assert_eq!(c.tag >> 48, t, "{}: another thread's completion", s.label);
                            assert_eq!((c.tag >> 32) & 0xffff, round as u64, "{}", s.label);
                            c.expect_full()
                                .unwrap_or_else(|e| panic!("{}: {e}", s.label));
                            assert_pattern(&s.label, c.tag & 0xffff_ffff, &c.buf);
                        }
                    }
                });
            }
        });
    }
    for_each_backend(run);
}

/// Completion by any thread: thread 1 submits to sink B and does not wait on it until thread 2,
/// waiting only on sink A, has finished; both finish, and B's completions are then all ready.
#[test]
fn waiter_completes_requests_of_other_threads() {
    fn run(s: &Subject) {
        const PAGE_COUNT: u64 = 64;
        const BATCH: u64 = 32;
        let file = s.open("any_thread.dat");
        fill_file(s, &file, PAGE_COUNT);
        let (submitted_tx, submitted_rx) = mpsc::channel::<()>();
        let (a_done_tx, a_done_rx) = mpsc::channel::<()>();
        std::thread::scope(|scope| {
            let file_b = Arc::clone(&file);
            scope.spawn(move || {
                let sink_b = CompletionSink::new();
                let requests = (0..BATCH).map(|p| read_request(&file_b, p, 1, p)).collect();
                s.backend.submit(requests, &sink_b).expect("submit B");
                submitted_tx.send(()).expect("thread 2 listens");
                // Like a backend blocked on a lock: no waiting on B until A is done.
                a_done_rx.recv().expect("thread 2 reports");
                let completions = drain(s, &sink_b);
                assert_eq!(completions.len(), BATCH as usize, "{}: sink B", s.label);
                for c in completions {
                    c.expect_full()
                        .unwrap_or_else(|e| panic!("{}: {e}", s.label));
                    assert_pattern(&s.label, c.tag, &c.buf);
                }
            });
            let file_a = Arc::clone(&file);
            scope.spawn(move || {
                submitted_rx.recv().expect("thread 1 reports");
                let sink_a = CompletionSink::new();
                let requests = (0..BATCH)
                    .map(|p| read_request(&file_a, PAGE_COUNT - 1 - p, 1, p))
                    .collect();
                s.backend.submit(requests, &sink_a).expect("submit A");
                let completions = drain(s, &sink_a);
                assert_eq!(completions.len(), BATCH as usize, "{}: sink A", s.label);
                for c in completions {
                    assert_pattern(&s.label, PAGE_COUNT - 1 - c.tag, &c.buf);
                }
                a_done_tx.send(()).expect("thread 1 listens");
            });
        });
    }
    for_each_backend(run);
}

/// `wait` on a sink that never had a request, and on one fully drained, returns None at once.
#[test]
fn wait_on_idle_sink_returns_none() {
    fn run(s: &Subject) {
        let file = s.open("idle.dat");
        let sink = CompletionSink::new();
        assert!(s.backend.wait(&sink).is_none(), "{}: fresh sink", s.label);
        s.backend.submit(Vec::new(), &sink).expect("empty batch");
        assert!(
            s.backend.wait(&sink).is_none(),
            "{}: after an empty batch",
            s.label
        );
        s.backend
            .write_at(&file, 0, pattern_page(0))
            .expect("write");
        let (buf, n) = s.backend.read_at(&file, 0, PAGE_SIZE).expect("read");
        assert_eq!(n, PAGE_SIZE, "{}", s.label);
        assert_pattern(&s.label, 0, &buf);
        let sink = CompletionSink::new();
        s.backend
            .submit(vec![read_request(&file, 0, 1, 9)], &sink)
            .expect("submit");
        assert_eq!(drain(s, &sink).len(), 1, "{}", s.label);
        assert!(s.backend.wait(&sink).is_none(), "{}: drained sink", s.label);
    }
    for_each_backend(run);
}

/// `sync` after completed writes succeeds (and again with nothing new to sync).
#[test]
fn sync_after_writes_succeeds() {
    fn run(s: &Subject) {
        let file = s.open("sync.dat");
        fill_file(s, &file, 8);
        s.backend
            .sync(&file)
            .unwrap_or_else(|e| panic!("{}: sync: {e}", s.label));
        s.backend
            .sync(&file)
            .unwrap_or_else(|e| panic!("{}: second sync: {e}", s.label));
    }
    for_each_backend(run);
}

/// `write_at` returns the buffer after a full write, and `read_at` reads it back.
#[test]
fn read_at_and_write_at_round_trip() {
    fn run(s: &Subject) {
        const PAGE: u64 = 5;
        let file = s.open("helpers.dat");
        let at = PAGE * PAGE_SIZE as u64;
        let returned = s
            .backend
            .write_at(&file, at, pattern_page(PAGE))
            .expect("write_at");
        assert_pattern(&s.label, PAGE, &returned);
        let (buf, n) = s.backend.read_at(&file, at, PAGE_SIZE).expect("read_at");
        assert_eq!(n, PAGE_SIZE, "{}", s.label);
        assert_pattern(&s.label, PAGE, &buf);
        assert_eq!(
            s.backend.file_len(&file).expect("len"),
            at + PAGE_SIZE as u64,
            "{}",
            s.label
        );
        let (head, n) = s
            .backend
            .read_at(&file, 0, PAGE_SIZE)
            .expect("read_at hole");
        assert_eq!(n, PAGE_SIZE, "{}", s.label);
        assert!(
            head.iter().all(|&b| b == 0),
            "{}: hole reads as zeros",
            s.label
        );
    }
    for_each_backend(run);
}

/// Failing I/O comes back as an `Err` in the completion (with its tag and buffer), not a panic:
/// an offset beyond `i64::MAX` (EINVAL everywhere) and, on `O_DIRECT`, an offset of 100 bytes.
#[test]
fn io_error_is_delivered_in_the_completion() {
    fn run(s: &Subject) {
        const NEGATIVE_AS_OFF_T: u64 = 1 << 63;
        const MISALIGNED: u64 = 100;
        let file = s.open("errors.dat");
        fill_file(s, &file, 4);
        let mut cases = vec![(IoOp::Read, NEGATIVE_AS_OFF_T)];
        if s.direct {
            cases.push((IoOp::Read, MISALIGNED));
            cases.push((IoOp::Write, MISALIGNED));
        }
        for (tag, &(op, offset)) in cases.iter().enumerate() {
            let sink = CompletionSink::new();
            let buf = AlignedBuf::zeroed(PAGE_SIZE);
            let request = IoRequest {
                file: Arc::clone(&file),
                op,
                offset,
                buf,
                tag: tag as u64,
            };
            s.backend
                .submit(vec![request], &sink)
                .expect("submit is accepted");
            let c = s.backend.wait(&sink).expect("one completion");
            assert_eq!(c.tag, tag as u64, "{}", s.label);
            assert_eq!(c.buf.len(), PAGE_SIZE, "{}: buffer handed back", s.label);
            let err = match &c.result {
                Ok(n) => panic!("{}: {op:?} at {offset} succeeded with {n} bytes", s.label),
                Err(e) => e,
            };
            assert_eq!(
                err.raw_os_error(),
                Some(libc::EINVAL),
                "{}: {op:?} at {offset}",
                s.label
            );
            assert!(c.bytes().is_err(), "{}", s.label);
            assert!(s.backend.wait(&sink).is_none(), "{}", s.label);
        }
        // The backend still works after the errors.
        let (buf, n) = s
            .backend
            .read_at(&file, 0, PAGE_SIZE)
            .expect("read after errors");
        assert_eq!(n, PAGE_SIZE, "{}", s.label);
        assert_pattern(&s.label, 0, &buf);
    }
    for_each_backend(run);
}

/// A backend dropped with requests still in flight first lets them finish (the buffers stay
/// alive until the kernel is done with them), and every completion reaches its sink.
#[test]
fn drop_with_requests_in_flight_delivers_them() {
    const PAGE_COUNT: u64 = 32;
    for direct in [false, true] {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
        for (name, backend) in backends() {
            let label = format!("{name} direct={direct}");
            let options = OpenOptions {
                create: true,
                direct,
            };
            let file = backend
                .open(&dir.path().join("drop.dat"), &options)
                .expect("open");
            let sink = CompletionSink::new();
            let requests = (0..PAGE_COUNT)
                .map(|page| IoRequest {
                    file: Arc::clone(&file),
                    op: IoOp::Write,
                    offset: page * PAGE_SIZE as u64,
                    buf: pattern_page(page),
                    tag: page,
                })
                .collect();
            backend.submit(requests, &sink).expect("submit");
            drop(backend);
            let mut count = 0;
            while let Some(c) = sink.try_pop() {
                c.expect_full().unwrap_or_else(|e| panic!("{label}: {e}"));
                count += 1;
            }
            assert_eq!(
                count, PAGE_COUNT,
                "{label}: completions delivered before drop returned"
            );
            assert_eq!(sink.in_flight(), 0, "{label}");
        }
    }
}
