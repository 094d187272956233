//! Figures for the LSM chapter: bloom filter effectiveness and the write amplification of a
//! random-key load.
//!
//! ```text
//! cargo run --release -p storelab-lsm --example lsm_figures [-- KEYS [BATCH]]
//! ```
//!
//! Loads KEYS (default 1,000,000) random 16-byte keys with 100-byte values in durable
//! batches of BATCH (default 100) through the shared WAL (sync commits), waits for
//! compaction, then measures gets of absent and present keys. Prints rows/s, write
//! amplification (with and without the WAL), per-level sizes and bytes written, the I/O
//! ledger by cause and by level, tables probed per get and the bloom false-positive rate,
//! and space amplification (estimate and exact).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_lsm::{Lsm, LsmConfig, register_redo};
use storelab_pager::io::{IoBackend, SyncBackend};
use storelab_pager::{BufferPool, Disk, IoCause, Ledger, PageSize, PoolConfig};
use storelab_wal::{RedoRegistry, Wal, WalConfig};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let key_count: usize = args.get(1).map_or(Ok(1_000_000), |s| s.parse())?;
    let batch: usize = args.get(2).map_or(Ok(100), |s| s.parse())?;
    let dir = tempfile::tempdir()?;
    let backend: Arc<dyn IoBackend> = Arc::new(SyncBackend::new());
    let disk = Disk::new(backend, Ledger::new(), PageSize::K8, false);
    let wal = Wal::open(WalConfig::new(dir.path().join("wal")), &disk)?;
    let config = LsmConfig::default();
    let lsm = Lsm::open(&dir.path().join("lsm"), config.clone(), &disk, &wal)?;
    let pool = BufferPool::new(Arc::clone(&disk), PoolConfig::frames(16))?;
    let mut registry = RedoRegistry::new();
    register_redo(&mut registry);
    wal.recover(&pool, &registry)?;
    println!(
        "config: memtable {} KiB, table {} KiB, L1 {} MiB, ratio {}, L0 trigger {}, bloom {} bits/key, block cache {} MiB",
        config.memtable_bytes_max >> 10,
        config.table_bytes_target >> 10,
        config.level1_bytes_target >> 20,
        config.level_size_ratio,
        config.l0_compaction_trigger,
        config.bloom_bits_per_key,
        config.block_cache_bytes >> 20
    );

    // 1. Load.
    let mut rng = StdRng::seed_from_u64(42);
    let mut keys: Vec<[u8; 16]> = Vec::with_capacity(key_count);
    let before = disk.ledger().snapshot();
    let started = Instant::now();
    let value = [b'v'; 100];
    let mut pending: Vec<[u8; 16]> = Vec::with_capacity(batch);
    for i in 0..key_count {
        let mut k = [0u8; 16];
        rng.fill(&mut k[..]);
        keys.push(k);
        pending.push(k);
        if pending.len() == batch || i + 1 == key_count {
            let ops: Vec<(&[u8], Option<&[u8]>)> =
                pending.iter().map(|k| (&k[..], Some(&value[..]))).collect();
            lsm.write_batch(&ops)?;
            pending.clear();
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    lsm.compact()?;
    let total_secs = started.elapsed().as_secs_f64();
    let ledger = disk.ledger().snapshot().delta(&before);
    let stats = lsm.stats();
    println!(
        "\nload: {key_count} rows in batches of {batch}: {:.0} rows/s ({load_secs:.1} s; {:.1} s with the final compaction)",
        key_count as f64 / load_secs,
        total_secs
    );
    println!("{stats}");
    let user = stats.user_bytes_written as f64;
    println!("ledger by cause (bytes written / user bytes):");
    for cause in [IoCause::Wal, IoCause::Flush, IoCause::Compaction] {
        let c = ledger.cause_total(cause);
        println!(
            "  {:<12} written {:>12} ({:.2}x)  read {:>12}  syncs {}",
            cause.name(),
            c.write_bytes,
            c.write_bytes as f64 / user,
            c.read_bytes,
            c.sync_count
        );
    }
    println!(
        "  total        written {:>12} ({:.2}x)",
        ledger.total().write_bytes,
        ledger.total().write_bytes as f64 / user
    );
    let mut by_level: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for (name, _, c) in ledger.entries() {
        let level = name.split(':').take(2).collect::<Vec<_>>().join(":");
        let e = by_level.entry(level).or_default();
        e.0 += c.write_bytes;
        e.1 += c.read_bytes;
    }
    println!("ledger by file group (written, read):");
    for (name, (w, r)) in &by_level {
        println!("  {name:<14} {w:>12} {r:>12}");
    }

    // 2. Gets of absent keys: random 16-byte keys (a collision with the 10^6 loaded ones has
    // probability ~10^-27), spread over the whole key range, so every level has a table
    // whose range covers the key and only the bloom filter can save the block read.
    let probe_count = 100_000.min(key_count.max(1000));
    let before = lsm.stats();
    for _ in 0..probe_count {
        let mut k = [0u8; 16];
        rng.fill(&mut k[..]);
        assert!(
            lsm.get(&k)?.is_none(),
            "a random key collided with a loaded one"
        );
    }
    let after = lsm.stats();
    let gets = after.get_count - before.get_count;
    let reads = after.get_table_read_count - before.get_table_read_count;
    let candidates = after.get_table_candidate_count - before.get_table_candidate_count;
    let negatives = after.bloom_negative_count - before.bloom_negative_count;
    let false_positives = after.bloom_false_positive_count - before.bloom_false_positive_count;
    println!(
        "\nabsent-key gets: {gets}: {:.4} tables read per get beyond the memtable; {:.2} tables per get covered the key, {negatives} filtered out, {false_positives} false positives (rate {:.4})",
        reads as f64 / gets as f64,
        candidates as f64 / gets as f64,
        false_positives as f64 / (false_positives + negatives).max(1) as f64
    );
    let before = lsm.stats();
    for i in 0..probe_count {
        let k = keys[(i * 7919) % keys.len()];
        assert!(lsm.get(&k)?.is_some());
    }
    let after = lsm.stats();
    let gets = after.get_count - before.get_count;
    println!(
        "present-key gets: {gets}: {:.4} tables read per get",
        (after.get_table_read_count - before.get_table_read_count) as f64 / gets as f64
    );

    // 3. Space.
    let live = lsm.live_data_bytes()?;
    println!(
        "\nspace: tables {} bytes, live data {} bytes: space amplification {:.3} (estimate {:.3}), pinned index+filter {} bytes",
        stats.table_bytes(),
        live,
        stats.table_bytes() as f64 / live as f64,
        stats.space_amplification_estimate(),
        stats.pinned_bytes
    );
    lsm.check()?;
    Ok(())
}
