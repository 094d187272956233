//! Page-manager micro-benchmarks: the buffer-pool hit path and CRC-32C over pages.
//!
//! Run with `cargo bench --bench pager`. The hit path is what every B+tree descent pays per
//! level; the target is a median of at most 100 ns single-threaded for pin + read latch +
//! unpin. CRC-32C runs on every page write-out and read-in, so it must run at hardware speed.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_main};
use storelab::pager::buffer_pool::PolicyKind;
use storelab::pager::io::SyncBackend;
use storelab::pager::page::{PageId, page_checksum};
use storelab::pager::{BufferPool, Disk, Ledger, PageSize, PageType, PoolConfig};

fn pool_hit_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K8,
        false,
    );
    let file = disk
        .open_file(&dir.path().join("bench.rel"), "bench", true)
        .expect("open");
    let mut group = c.benchmark_group("buffer_pool");
    for policy in [PolicyKind::ClockSweep, PolicyKind::Lru] {
        let pool = BufferPool::new(
            Arc::clone(&disk),
            PoolConfig {
                frame_count: 2048,
                policy,
            },
        )
        .expect("pool");
        let pages = 1024u64;
        if disk.page_count(file).expect("count") == 0 {
            for _ in 0..pages {
                drop(pool.new_page(file, PageType::RAW).expect("new page"));
            }
        }
        pool.flush_all().expect("flush");
        for i in 0..pages {
            drop(pool.read(file, PageId(i)).expect("warm"));
        }
        group.throughput(Throughput::Elements(1));
        let mut i = 0u64;
        group.bench_function(format!("hit_pin_read_unpin/{}", pool.policy_name()), |b| {
            b.iter(|| {
                // A stride that is co-prime with the page count visits every page in turn.
                i = (i + 397) % pages;
                let page = pool.read(file, PageId(i)).expect("hit");
                black_box(page[100]);
            })
        });
        group.bench_function(format!("hit_pin_write_unpin/{}", pool.policy_name()), |b| {
            b.iter(|| {
                i = (i + 397) % pages;
                let mut page = pool.write(file, PageId(i)).expect("hit");
                page[100] = page[100].wrapping_add(1);
            })
        });
    }
    group.finish();
}

fn crc32c_pages(c: &mut Criterion) {
    let mut group = c.benchmark_group("crc32c");
    for size in [PageSize::K4, PageSize::K8, PageSize::K16] {
        let bytes = size.bytes();
        let page: Vec<u8> = (0..bytes).map(|i| (i * 31 % 251) as u8).collect();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(format!("page_checksum/{bytes}"), |b| {
            b.iter(|| black_box(page_checksum(black_box(&page), PageId(7))))
        });
        // The crate alone, as the reference for "hardware speed": the page checksum should
        // cost the same plus a few nanoseconds for mixing in the page id.
        group.bench_function(format!("crc32c_crate/{bytes}"), |b| {
            b.iter(|| black_box(crc32c::crc32c(black_box(&page))))
        });
    }
    group.finish();
}

/// Criterion's generated entry point.
mod group {
    #![allow(missing_docs)] // criterion_group! generates a `pub fn` without a doc comment.
    criterion::criterion_group!(benches, super::pool_hit_path, super::crc32c_pages);
}
criterion_main!(group::benches);
