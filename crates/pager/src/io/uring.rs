//! The `io_uring` backend: one shared Linux io_uring, completed by whichever thread waits.
//!
//! # What io_uring is
//!
//! Two rings shared between the process and the kernel: the submission queue (SQ), where we
//! write one entry (SQE) per read or write, and the completion queue (CQ), where the kernel
//! writes one entry (CQE) per finished request. One `io_uring_enter` system call hands the whole
//! batch of SQEs to the kernel and can also wait for CQEs; the kernel runs the requests
//! concurrently, so one thread keeps many I/Os in flight without a thread per I/O.
//!
//! # Design
//!
//! ```text
//!   submitters (any thread)             waiters (any thread)
//!        |                                   |
//!        v                                   v
//!   +-------------- sq: Mutex ---------+   +---- reaper: Mutex<bool> + Condvar ----+
//!   | table: key -> InFlight           |   | at most one waiter is "the reaper";   |
//!   |   (file, buf, tag, sink, done)   |   | the others sleep on the condvar and   |
//!   | pending: keys not yet in ring    |   | recheck their own sink when woken     |
//!   | push SQEs, non-blocking enter    |   +---------------------------------------+
//!   +----------------------------------+          |
//!        |  SQEs (user_data = key)                | io_uring_enter(wait for 1), no lock
//!        v                                        v
//!   [ kernel: SQ ring ] --- runs I/O ---> [ kernel: CQ ring ]
//!                                                 |
//!                     reaper drains every CQE, looks each key up in the table (sq mutex,
//!                     briefly), pushes each completion into ITS OWN request's sink, then
//!                     clears the reaper flag and wakes all sleeping waiters
//! ```
//!
//! - **Submission** happens under one mutex: push one SQE per request, then one non-blocking
//!   `io_uring_enter` for the whole batch.
//! - **Ownership.** Each in-flight request (its `Arc<IoFile>`, its [`AlignedBuf`], tag, sink
//!   and bytes done so far) lives in a table keyed by the SQE's `user_data` until its CQE has
//!   been processed. The kernel holds raw pointers into the buffer and the file descriptor
//!   number; the table keeps both alive. On drop, the backend waits for every request first.
//! - **Limits.** At most `cq_entries` requests are in the kernel at once, so the CQ can never
//!   overflow; more are queued in userspace (`pending`) and pushed as CQEs free slots. If the SQ
//!   itself is full, what is queued is submitted to make room; nothing in `submit` blocks.
//! - **Short transfers** (a positive result below the remaining length) are resubmitted for the
//!   remainder; a zero result is end of file; a negative result is `-errno`.
//!
//! # Why any thread must be able to complete any I/O
//!
//! The PostgreSQL AIO README (src/backend/storage/aio/README.md) describes the deadlock: backend
//! A waits for an I/O that backend B issued, while B waits for a lock that A holds. If only B
//! could reap B's completions, neither moves. So here, a thread waiting on its sink becomes the
//! reaper and delivers *every* completion it finds, including other threads' (test
//! `waiter_completes_requests_of_other_threads` in `tests/backend_conformance.rs`).
//!
//! Two kernel details matter for this. The kernel posts a CQE by running "task work" in the
//! submitting thread; with the default setup that thread is interrupted (even out of a futex
//! sleep) to run it. `IORING_SETUP_COOP_TASKRUN` drops that kick and `IORING_SETUP_DEFER_TASKRUN`
//! allows only the submitting thread to reap, so both are left off: with them, a reaper can wait
//! forever on a CQE that only a sleeping submitter could post. `IORING_SETUP_SQPOLL` is left off
//! too: on a 2-vCPU machine the kernel polling thread starves the submitter (~6x slower here).
//!
//! # Simpler than PostgreSQL's `io_method=io_uring`
//!
//! - PostgreSQL gives every backend process its own ring, so submission needs no lock; a waiter
//!   takes the issuer's per-ring completion lock to reap it. We share one ring between all
//!   threads and serialise submission with a mutex.
//! - PostgreSQL runs completion callbacks (checksum verification, buffer state) in whichever
//!   backend reaps; we only deliver raw completions, and the owner of the sink verifies pages.
//! - PostgreSQL has batch mode (submission deferred across calls), a per-backend concurrency
//!   limit (`io_max_concurrency`), and handle generations to catch reuse. We submit at the end of
//!   each `submit` call, bound only by the ring's CQ size, and trust the table key.
//! - No registered buffers or files (`READ_FIXED`), no vectored I/O, no cancellation.
//! - A waiter's kernel wait has a timeout ([`REAP_WAIT_TIMEOUT`]) as a safety net: if a
//!   non-blocking submit was refused (`EAGAIN`), the next reaper round submits the leftovers.
#![allow(unsafe_code)] // SQE push and ring access are unsafe in io-uring; see docs/unsafe.md.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use io_uring::{IoUring, opcode, squeue, types};
use parking_lot::{Condvar, Mutex};

use super::{CompletionSink, IoBackend, IoCompletion, IoFile, IoOp, IoRequest, fdatasync};
use crate::aligned_buf::AlignedBuf;
use crate::error::{Error, Result};
use crate::page::IO_ALIGNMENT;

/// The largest ring accepted by [`IoUringBackend::new`] (SQ entries; the kernel allows 32768).
pub const RING_ENTRIES_MAX: u32 = 4096;

/// How long a reaper sleeps in the kernel before it rechecks (a safety net, not a poll).
pub const REAP_WAIT_TIMEOUT: Duration = Duration::from_millis(50);

/// The most bytes one SQE asks for: `u32::MAX` rounded down to [`IO_ALIGNMENT`], so a larger
/// request is split by the short-transfer path and every piece stays aligned for `O_DIRECT`.
const SQE_BYTES_MAX: usize = (u32::MAX as usize) & !(IO_ALIGNMENT - 1);

/// `user_data` of the no-op used by `new` to check that `io_uring_enter` works.
const PROBE_USER_DATA: u64 = u64::MAX;

/// CQEs drained per reaper round before the table is consulted (the scratch vector's capacity).
const CQE_BATCH_CAPACITY: usize = 256;

/// Linux io_uring, shared by all threads: PostgreSQL 18's `io_method=io_uring`.
pub struct IoUringBackend {
    /// The ring. SQ access happens only under `sq`, CQ access only by the reaper.
    ring: IoUring,
    /// The submission side and the table of in-flight requests.
    sq: Mutex<SqState>,
    /// True while some waiter is the reaper.
    reaper_active: Mutex<bool>,
    /// Signalled whenever a reaper finishes a round (and so may have delivered completions).
    reaped: Condvar,
    /// The reaper's scratch space; locked only by the reaper, so never contended.
    scratch: Mutex<ReapScratch>,
    /// Requests allowed in the kernel at once (the CQ size, so the CQ cannot overflow).
    ring_depth_max: usize,
    /// SQ entries, as the kernel granted them.
    sq_entries: u32,
    /// Whether the kernel supports a timeout on `io_uring_enter` (`IORING_FEAT_EXT_ARG`).
    wait_timeout_supported: bool,
    /// Set if a reaper panicked mid-round: CQEs it drained are lost, so their requests can
    /// never complete. Later waits panic too, and drop leaks the table instead of waiting.
    broken: AtomicBool,
}

/// One accepted request, alive from `submit` until its final CQE is processed.
struct InFlight {
    file: Arc<IoFile>,
    op: IoOp,
    offset: u64,
    buf: AlignedBuf,
    tag: u64,
    sink: Arc<CompletionSink>,
    /// Bytes transferred by earlier CQEs of this request (short transfers).
    done: usize,
}

/// Everything guarded by the SQ mutex.
#[derive(Default)]
struct SqState {
    /// In-flight requests; the index is the SQE's `user_data`.
    table: Vec<Option<InFlight>>,
    /// Free indexes of `table`.
    free: Vec<usize>,
    /// Keys accepted but not yet pushed into the SQ (ring full, or a remainder to resubmit).
    pending: VecDeque<usize>,
    /// Requests pushed into the SQ whose CQE has not been processed yet.
    in_ring: usize,
    /// Occupied entries of `table`.
    live: usize,
}

/// Buffers reused by the reaper between rounds, so a round allocates nothing in steady state.
#[derive(Default)]
struct ReapScratch {
    /// `(user_data, result)` of the CQEs drained this round.
    cqes: Vec<(u64, i32)>,
    /// Completions to push into their sinks once the SQ mutex is released.
    finished: Vec<(Arc<CompletionSink>, IoCompletion)>,
}

impl SqState {
    fn insert(&mut self, request: InFlight) -> usize {
        self.live += 1;
        match self.free.pop() {
            Some(key) => {
                debug_assert!(self.table[key].is_none());
                self.table[key] = Some(request);
                key
            }
            None => {
                self.table.push(Some(request));
                self.table.len() - 1
            }
        }
    }

    fn remove(&mut self, key: usize) -> InFlight {
        let request = self.table[key]
            .take()
            .expect("a CQE names a live table entry");
        self.free.push(key);
        self.live -= 1;
        request
    }
}

impl IoUringBackend {
    /// Sets up a ring with `entries` submission-queue entries (1..=[`RING_ENTRIES_MAX`], rounded
    /// up to a power of two by the kernel).
    ///
    /// Fails with [`Error::IoUringUnavailable`] if the kernel refuses: too old (`ENOSYS`),
    /// disabled by the `kernel.io_uring_disabled` sysctl (`EPERM`), or blocked by seccomp.
    pub fn new(entries: u32) -> Result<IoUringBackend> {
        if entries == 0 || entries > RING_ENTRIES_MAX {
            return Err(Error::InvalidArgument(format!(
                "io_uring ring entries {entries} is not in 1..={RING_ENTRIES_MAX}"
            )));
        }
        let unavailable = |what: &str, e: io::Error| Error::IoUringUnavailable {
            reason: format!("{what}: {e}"),
        };
        let ring: IoUring = IoUring::builder()
            .build(entries)
            .map_err(|e| unavailable("io_uring_setup", e))?;

        // Old kernels (before 5.6) have rings but not the plain READ/WRITE opcodes.
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .map_err(|e| unavailable("io_uring_register(PROBE)", e))?;
        for (name, code) in [("READ", opcode::Read::CODE), ("WRITE", opcode::Write::CODE)] {
            if !probe.is_supported(code) {
                return Err(Error::IoUringUnavailable {
                    reason: format!("the kernel does not support IORING_OP_{name}"),
                });
            }
        }

        // A seccomp filter may allow io_uring_setup yet refuse io_uring_enter: round-trip a
        // no-op now rather than fail on the first real request.
        let nop = opcode::Nop::new().build().user_data(PROBE_USER_DATA);
        {
            // SAFETY: the ring was just created and is not shared yet, so this is the only
            // SubmissionQueue; a NOP carries no pointers.
            let mut queue = unsafe { ring.submission_shared() };
            // SAFETY: as above; the entry references no memory.
            unsafe { queue.push(&nop) }.map_err(|_| Error::IoUringUnavailable {
                reason: "a fresh submission queue is full".into(),
            })?;
        }
        loop {
            match ring.submit_and_wait(1) {
                Ok(_) => break,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => return Err(unavailable("io_uring_enter", e)),
            }
        }
        {
            // SAFETY: the ring is not shared yet, so this is the only CompletionQueue.
            let mut cq = unsafe { ring.completion_shared() };
            cq.sync();
            let cqe = cq.next().ok_or_else(|| Error::IoUringUnavailable {
                reason: "io_uring_enter returned without the no-op's completion".into(),
            })?;
            assert_eq!(
                cqe.user_data(),
                PROBE_USER_DATA,
                "only the no-op was submitted"
            );
        }

        let params = ring.params();
        let ring_depth_max = params.cq_entries() as usize;
        let sq_entries = params.sq_entries();
        let wait_timeout_supported = params.is_feature_ext_arg();
        assert!(
            ring_depth_max >= sq_entries as usize,
            "the kernel sizes CQ >= SQ"
        );
        Ok(IoUringBackend {
            ring,
            sq: Mutex::new(SqState::default()),
            reaper_active: Mutex::new(false),
            reaped: Condvar::new(),
            scratch: Mutex::new(ReapScratch {
                cqes: Vec::with_capacity(CQE_BATCH_CAPACITY),
                finished: Vec::with_capacity(CQE_BATCH_CAPACITY),
            }),
            ring_depth_max,
            sq_entries,
            wait_timeout_supported,
            broken: AtomicBool::new(false),
        })
    }

    /// Submission-queue entries, as granted by the kernel.
    pub fn sq_entries(&self) -> u32 {
        self.sq_entries
    }

    /// The most requests in the kernel at once (the CQ size); more wait in userspace.
    pub fn ring_depth_max(&self) -> usize {
        self.ring_depth_max
    }

    /// Builds the SQE for the not-yet-transferred part of `request`.
    fn sqe_for(key: usize, request: &mut InFlight) -> squeue::Entry {
        let remaining = request.buf.len() - request.done;
        assert!(remaining > 0, "a finished request is never resubmitted");
        let len = u32::try_from(remaining.min(SQE_BYTES_MAX)).expect("SQE_BYTES_MAX fits u32");
        // Moving `request.buf` (the table may reallocate) moves the handle, not the heap bytes,
        // so this pointer stays valid until the request is removed from the table.
        let ptr = request.buf.as_mut_ptr().wrapping_add(request.done);
        let fd = types::Fd(request.file.file().as_raw_fd());
        let offset = request.offset + request.done as u64;
        let entry = match request.op {
            IoOp::Read => opcode::Read::new(fd, ptr, len).offset(offset).build(),
            IoOp::Write => opcode::Write::new(fd, ptr.cast_const(), len)
                .offset(offset)
                .build(),
        };
        entry.user_data(key as u64)
    }

    /// Pushes pending requests into the SQ while the ring has room, then submits them with one
    /// non-blocking `io_uring_enter`. Called with the SQ mutex held.
    fn flush_pending(&self, sq: &mut SqState) {
        let mut pushed_count = 0usize;
        {
            // SAFETY: the caller holds the SQ mutex, and every SubmissionQueue of this ring is
            // created under it, so this is the only one in existence.
            let mut queue = unsafe { self.ring.submission_shared() };
            while sq.in_ring < self.ring_depth_max {
                let Some(&key) = sq.pending.front() else {
                    break;
                };
                let request = sq.table[key].as_mut().expect("pending keys are live");
                let entry = Self::sqe_for(key, request);
                // SAFETY: the SQE points into `request.buf` and names `request.file`'s fd; both
                // are owned by the table entry `key`, which is removed only after this SQE's
                // CQE has been processed (or, on drop, after every CQE has arrived).
                if unsafe { queue.push(&entry) }.is_err() {
                    // The SQ is full: hand what is queued to the kernel to make room.
                    queue.sync();
                    self.submit_queued();
                    queue.sync();
                    if queue.is_full() {
                        // The kernel refused the batch for now; a reaper round submits it.
                        break;
                    }
                    continue;
                }
                sq.pending.pop_front();
                sq.in_ring += 1;
                pushed_count += 1;
            }
            // Dropping `queue` publishes the new SQ tail to the kernel.
        }
        if pushed_count > 0 {
            self.submit_queued();
        }
    }

    /// One non-blocking `io_uring_enter` for every published SQE.
    ///
    /// `EINTR` is retried. `EAGAIN`/`EBUSY` (kernel short of memory, CQ backlog) leave the SQEs
    /// in the ring: the reaper's next `io_uring_enter` submits them, and its wait has a timeout,
    /// so they cannot be stranded. Any other error would also recur in the reaper, which reports
    /// it there.
    fn submit_queued(&self) {
        loop {
            match self.ring.submit() {
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                _ => return,
            }
        }
    }

    /// Copies every available CQE into `cqes` and frees their CQ slots. Only the reaper calls it.
    fn drain_cq(&self, cqes: &mut Vec<(u64, i32)>) {
        // SAFETY: only the reaper (which holds `self.scratch`, passed in as `cqes`) creates a
        // CompletionQueue, so this is the only one in existence.
        let cq = unsafe { self.ring.completion_shared() };
        cqes.extend(cq.map(|cqe| (cqe.user_data(), cqe.result())));
        // Dropping the queue publishes the new CQ head: the slots are free for the kernel.
    }

    /// Blocks in the kernel until at least one CQE is available (or the timeout passes),
    /// submitting any SQEs left in the ring on the way. Holds no lock.
    fn enter_wait(&self) -> io::Result<()> {
        let result = if self.wait_timeout_supported {
            let timeout = types::Timespec::from(REAP_WAIT_TIMEOUT);
            let args = types::SubmitArgs::new().timespec(&timeout);
            self.ring.submitter().submit_with_args(1, &args)
        } else {
            self.ring.submit_and_wait(1)
        };
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.raw_os_error() {
                // Interrupted, timed out, CQ backlog, kernel short of memory: drain and retry.
                Some(libc::EINTR | libc::ETIME | libc::EBUSY | libc::EAGAIN) => Ok(()),
                _ => Err(e),
            },
        }
    }

    /// One reaper round: drain the CQ (waiting in the kernel if it is empty), then settle every
    /// CQE and deliver the finished completions to their sinks. The caller is the reaper.
    fn reap_round(&self, scratch: &mut ReapScratch) -> io::Result<()> {
        debug_assert!(scratch.cqes.is_empty() && scratch.finished.is_empty());
        self.drain_cq(&mut scratch.cqes);
        if scratch.cqes.is_empty() {
            self.enter_wait()?;
            self.drain_cq(&mut scratch.cqes);
        }
        if scratch.cqes.is_empty() {
            return Ok(());
        }
        {
            let mut sq = self.sq.lock();
            for &(user_data, res) in &scratch.cqes {
                let key = usize::try_from(user_data).expect("user_data is a table index");
                sq.in_ring -= 1;
                let request = sq.table[key]
                    .as_mut()
                    .expect("a CQE names a live table entry");
                let step = if res >= 0 {
                    let n = usize::try_from(res).expect("non-negative i32 fits usize");
                    assert!(
                        n <= request.buf.len() - request.done,
                        "kernel reported {n} bytes for a {}-byte remainder",
                        request.buf.len() - request.done
                    );
                    request.done += n;
                    if n == 0 || request.done == request.buf.len() {
                        Some(Ok(request.done))
                    } else {
                        None // Short transfer: resubmit the remainder.
                    }
                } else if -res == libc::EINTR {
                    None // Interrupted before any byte moved: retry, as perform_blocking does.
                } else {
                    Some(Err(io::Error::from_raw_os_error(-res)))
                };
                match step {
                    None => sq.pending.push_front(key),
                    Some(result) => {
                        let InFlight {
                            file,
                            op,
                            offset,
                            buf,
                            tag,
                            sink,
                            done: _,
                        } = sq.remove(key);
                        let completion = IoCompletion {
                            file,
                            op,
                            offset,
                            buf,
                            tag,
                            result,
                        };
                        scratch.finished.push((sink, completion));
                    }
                }
            }
            // CQ slots were freed: move queued requests (and remainders) into the ring.
            if !sq.pending.is_empty() {
                self.flush_pending(&mut sq);
            }
        }
        scratch.cqes.clear();
        // Deliver outside the SQ mutex: a push takes the sink's lock and wakes its owner.
        for (sink, completion) in scratch.finished.drain(..) {
            sink.push(completion);
        }
        Ok(())
    }
}

/// Clears the reaper flag and wakes every sleeping waiter when the reaper's round ends, even
/// if it ends in a panic, so no waiter sleeps forever behind a dead reaper.
struct ReaperRole<'a> {
    backend: &'a IoUringBackend,
}

impl Drop for ReaperRole<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.backend.broken.store(true, Ordering::Release);
        }
        *self.backend.reaper_active.lock() = false;
        self.backend.reaped.notify_all();
    }
}

impl IoBackend for IoUringBackend {
    fn name(&self) -> String {
        "io_uring".to_string()
    }

    fn submit(&self, requests: Vec<IoRequest>, sink: &Arc<CompletionSink>) -> Result<()> {
        sink.begin(requests.len());
        if requests.is_empty() {
            return Ok(());
        }
        let mut sq = self.sq.lock();
        for IoRequest {
            file,
            op,
            offset,
            buf,
            tag,
        } in requests
        {
            let sink = Arc::clone(sink);
            let key = sq.insert(InFlight {
                file,
                op,
                offset,
                buf,
                tag,
                sink,
                done: 0,
            });
            sq.pending.push_back(key);
        }
        self.flush_pending(&mut sq);
        Ok(())
    }

    fn wait(&self, sink: &CompletionSink) -> Option<IoCompletion> {
        loop {
            if let Some(completion) = sink.try_pop() {
                return Some(completion);
            }
            assert!(
                !self.broken.load(Ordering::Acquire),
                "the io_uring backend is unusable: a reaper panicked and lost completions"
            );
            if sink.in_flight() == 0 {
                // `push` decrements `in_flight` and queues the completion under one lock, so
                // having seen zero, one more look cannot miss a completion.
                return sink.try_pop();
            }
            {
                let mut active = self.reaper_active.lock();
                if *active {
                    // The reaper clears the flag and notifies under this same mutex, so the
                    // wake-up cannot slip in between the check and the sleep.
                    self.reaped.wait(&mut active);
                    continue;
                }
                *active = true;
            }
            let role = ReaperRole { backend: self };
            // A previous reaper may have delivered ours between the first check and taking the
            // role; waiting in the kernel now could wait for a CQE that never comes.
            if let Some(completion) = sink.try_pop() {
                drop(role);
                return Some(completion);
            }
            let mut scratch = self.scratch.lock();
            if let Err(e) = self.reap_round(&mut scratch) {
                // The ring itself is broken (EBADF, EFAULT...): no request can complete, and the
                // kernel may still own buffers, so no completion can be faked. A bug, not I/O.
                panic!("io_uring_enter failed while reaping: {e}");
            }
            drop(scratch);
            drop(role);
        }
    }

    fn sync(&self, file: &IoFile) -> Result<()> {
        fdatasync(file)
    }
}

impl Drop for IoUringBackend {
    fn drop(&mut self) {
        // The kernel may still write into the buffers of in-flight requests, so they must not
        // be freed before their CQEs arrive. `&mut self` means no other thread is here.
        let mut scratch = std::mem::take(self.scratch.get_mut());
        while self.sq.get_mut().live > 0 {
            let failure = if *self.broken.get_mut() {
                "a reaper panicked".to_string()
            } else if let Err(e) = self.reap_round(&mut scratch) {
                format!("io_uring_enter failed: {e}")
            } else {
                continue;
            };
            // Cannot wait for the kernel: leak the buffers rather than free memory it may
            // still write into.
            eprintln!("storelab: io_uring backend dropped after {failure}; leaking buffers");
            std::mem::forget(std::mem::take(&mut self.sq.get_mut().table));
            return;
        }
    }
}

impl fmt::Debug for IoUringBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IoUringBackend")
            .field("sq_entries", &self.sq_entries)
            .field("ring_depth_max", &self.ring_depth_max)
            .field("wait_timeout_supported", &self.wait_timeout_supported)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::OpenOptions;

    /// Ring sizes outside 1..=RING_ENTRIES_MAX are an argument error, not a kernel error.
    #[test]
    fn new_rejects_out_of_range_entries() {
        for entries in [0, RING_ENTRIES_MAX + 1] {
            let result = IoUringBackend::new(entries);
            assert!(
                matches!(result, Err(Error::InvalidArgument(_))),
                "entries {entries}: {result:?}"
            );
        }
    }

    /// A batch larger than the CQ puts exactly `ring_depth_max` requests in the kernel and
    /// queues the rest in userspace; waiting drains them all.
    #[test]
    #[cfg_attr(miri, ignore)] // Miri cannot run io_uring system calls.
    fn excess_requests_wait_in_userspace_until_slots_free() {
        const REQUEST_COUNT: usize = 40;
        const PAGE_BYTES: usize = 4096;
        let ring = match IoUringBackend::new(4) {
            Ok(ring) => ring,
            Err(e) => {
                eprintln!("skipping: {e}");
                return;
            }
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let options = OpenOptions {
            create: true,
            direct: false,
        };
        let file = ring
            .open(&dir.path().join("queue.dat"), &options)
            .expect("open");
        ring.set_len(&file, (REQUEST_COUNT * PAGE_BYTES) as u64)
            .expect("set_len");
        let sink = CompletionSink::new();
        let requests = (0..REQUEST_COUNT)
            .map(|i| IoRequest {
                file: Arc::clone(&file),
                op: IoOp::Read,
                offset: (i * PAGE_BYTES) as u64,
                buf: AlignedBuf::zeroed(PAGE_BYTES),
                tag: i as u64,
            })
            .collect();
        ring.submit(requests, &sink).expect("submit");
        {
            // Nobody has reaped yet, so every slot of the ring is still taken.
            let sq = ring.sq.lock();
            assert_eq!(sq.in_ring, ring.ring_depth_max());
            assert_eq!(sq.pending.len(), REQUEST_COUNT - ring.ring_depth_max());
        }
        let mut count = 0;
        while let Some(c) = ring.wait(&sink) {
            assert_eq!(c.bytes().expect("read"), PAGE_BYTES);
            count += 1;
        }
        assert_eq!(count, REQUEST_COUNT);
        let sq = ring.sq.lock();
        assert_eq!((sq.in_ring, sq.pending.len(), sq.live), (0, 0, 0));
    }
}
