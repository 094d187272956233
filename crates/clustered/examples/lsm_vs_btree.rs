//! Issue 7's figures: the same load into the clustered engine's two layouts, in one run.
//!
//! Loads `--rows` rows (default 1,000,000) of a 16-byte random primary key and a 100-byte
//! value, in durable batches of `--batch` rows (default 100; commit mode `sync`: each batch
//! is acknowledged after an fdatasync of the log), into the B+tree layout (InnoDB) and into
//! the LSM layout (MyRocks), each in a fresh directory with the same 64 MiB memory budget.
//! For each it prints rows/s and the write amplification: bytes written to storage (the
//! pager's ledger, every file and cause, the final checkpoint included) over user bytes
//! (key + value, 116 bytes a row). Then the bloom-filter figure: `--gets` gets of absent keys
//! through the LSM layout's `Table::get`, and how many tables each probed beyond the
//! memtable (data blocks read) at 10 bits per key.
//!
//! ```text
//! cargo run --release -p storelab-clustered --example lsm_vs_btree -- [--rows N] [--batch N]
//!     [--gets N] [--dir DIR]
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_clustered::{
    ClusteredEngine, ClusteredLsmEngine, ClusteredOptions, LsmOptions, StorageConfig,
};
use storelab_pager::IoCause;
use storelab_table::{ColumnType, Engine, Op, Schema, Value};
use storelab_wal::CommitMode;

/// Bytes of the primary key.
const KEY_SIZE: usize = 16;
/// Bytes of the value.
const VALUE_SIZE: usize = 100;
/// Seed of the keys loaded.
const LOAD_SEED: u64 = 7;
/// Seed of the absent keys probed.
const PROBE_SEED: u64 = 8_000_000_007;

struct Args {
    rows: u64,
    batch: usize,
    gets: u64,
    dir: Option<PathBuf>,
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 1_000_000,
        batch: 100,
        gets: 100_000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--rows" => args.rows = value.parse().expect("--rows N"),
            "--batch" => args.batch = value.parse().expect("--batch N"),
            "--gets" => args.gets = value.parse().expect("--gets N"),
            "--dir" => args.dir = Some(PathBuf::from(value)),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(
        args.batch > 0 && args.rows > 0,
        "rows and batch must be positive"
    );
    args
}

fn schema() -> Schema {
    Schema::builder("kv")
        .column("k", ColumnType::Bytes)
        .column("v", ColumnType::Bytes)
        .primary_key(&["k"])
        .build()
        .expect("schema")
}

fn config() -> StorageConfig {
    StorageConfig {
        pool_bytes: 64 << 20,
        commit_mode: CommitMode::Sync,
        ..StorageConfig::default()
    }
}

/// What one load measured.
struct Loaded {
    rows_per_s: f64,
    write_bytes: u64,
    user_bytes: u64,
    by_cause: Vec<(&'static str, u64)>,
}

fn load(engine: &dyn Engine, args: &Args) -> Loaded {
    let table = engine.create_table(schema()).expect("create");
    let mut rng = StdRng::seed_from_u64(LOAD_SEED);
    let before = engine.stats().expect("stats").ledger.expect("ledger");
    let started = Instant::now();
    let mut done = 0u64;
    while done < args.rows {
        let n = (args.rows - done).min(args.batch as u64);
        let batch: Vec<Op> = (0..n)
            .map(|_| {
                let mut key = [0u8; KEY_SIZE];
                let mut value = [0u8; VALUE_SIZE];
                rng.fill(&mut key[..]);
                rng.fill(&mut value[..]);
                Op::Insert(vec![
                    Value::Bytes(key.to_vec()),
                    Value::Bytes(value.to_vec()),
                ])
            })
            .collect();
        table.apply(&batch).expect("apply");
        done += n;
    }
    // Both layouts end durable in their data files: the B+tree writes its dirty pages, the
    // LSM flushes its memtable.
    engine.checkpoint().expect("checkpoint");
    let elapsed = started.elapsed().as_secs_f64();
    let after = engine.stats().expect("stats").ledger.expect("ledger");
    let delta = after.delta(&before);
    let causes = [
        IoCause::Wal,
        IoCause::FullPageImage,
        IoCause::Doublewrite,
        IoCause::EvictionWriteBack,
        IoCause::Checkpoint,
        IoCause::Flush,
        IoCause::Compaction,
    ];
    Loaded {
        rows_per_s: args.rows as f64 / elapsed,
        write_bytes: delta.total().write_bytes,
        user_bytes: args.rows * (KEY_SIZE + VALUE_SIZE) as u64,
        by_cause: causes
            .iter()
            .map(|c| (c.name(), delta.cause_total(*c).write_bytes))
            .filter(|(_, b)| *b > 0)
            .collect(),
    }
}

fn report(name: &str, r: &Loaded) {
    let mib = |b: u64| b as f64 / 1048576.0;
    println!(
        "{name:<14} {:>10.0} rows/s   write amplification {:>6.2}   \
         ({:.1} MiB written for {:.1} MiB of user data)",
        r.rows_per_s,
        r.write_bytes as f64 / r.user_bytes as f64,
        mib(r.write_bytes),
        mib(r.user_bytes)
    );
    let parts: Vec<String> = r
        .by_cause
        .iter()
        .map(|(cause, b)| format!("{cause} {:.1} MiB", mib(*b)))
        .collect();
    println!("{:<14} written by cause: {}", "", parts.join(", "));
}

fn fresh(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the directory");
    }
    dir
}

fn main() {
    let args = parse_args();
    let temp;
    let base = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().expect("temporary directory");
            temp.path().to_path_buf()
        }
    };
    println!(
        "loading {} rows (16-byte random key, 100-byte value) in durable batches of {}, commit \
         mode sync, 64 MiB memory, 8 KiB pages, in {}",
        args.rows,
        args.batch,
        base.display()
    );
    let btree = {
        let engine = ClusteredEngine::open(
            &fresh(&base, "btree"),
            &config(),
            ClusteredOptions::default(),
        )
        .expect("open the B+tree layout");
        load(&engine, &args)
    };
    report("B+tree", &btree);

    let engine = ClusteredLsmEngine::open(&fresh(&base, "lsm"), &config(), LsmOptions::default())
        .expect("open the LSM layout");
    let lsm = load(&engine, &args);
    report("LSM", &lsm);
    let s = engine.lsm_stats();
    println!(
        "{:<14} the tree's own figure: {:.2} with the log, {:.2} tables only; \
         {} flushes, {} compactions, {} stalls",
        "",
        s.write_amplification(),
        s.write_amplification_tables(),
        s.flush_count,
        s.compaction_count,
        s.stall_count
    );

    // Bloom filters: gets of keys that are not there, once compactions have settled.
    engine.lsm().wait_for_compaction().expect("compaction");
    let levels: Vec<String> = engine
        .lsm_stats()
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| l.table_count > 0)
        .map(|(n, l)| {
            format!(
                "L{n} {} tables {:.1} MiB",
                l.table_count,
                l.bytes as f64 / 1048576.0
            )
        })
        .collect();
    println!("{:<14} levels: {}", "", levels.join(", "));
    let table = engine.open_table("kv").expect("table");
    let before = engine.lsm_stats();
    let mut rng = StdRng::seed_from_u64(PROBE_SEED);
    for _ in 0..args.gets {
        let mut key = [0u8; KEY_SIZE];
        rng.fill(&mut key[..]);
        // 16 random bytes: a collision with a loaded key has probability ~1e-32.
        let found = table.get(&[Value::Bytes(key.to_vec())]).expect("get");
        assert!(found.is_none(), "an absent key was found");
    }
    let after = engine.lsm_stats();
    let gets = (after.get_count - before.get_count) as f64;
    let candidates = (after.get_table_candidate_count - before.get_table_candidate_count) as f64;
    let probes = (after.get_table_read_count - before.get_table_read_count) as f64;
    let negatives = (after.bloom_negative_count - before.bloom_negative_count) as f64;
    let false_positives =
        (after.bloom_false_positive_count - before.bloom_false_positive_count) as f64;
    println!(
        "bloom filters, 10 bits per key, {} gets of absent keys: {:.2} tables covered each key, \
         {:.4} tables probed per get beyond the memtable (data blocks read), false-positive rate \
         {:.4}",
        args.gets,
        candidates / gets,
        probes / gets,
        false_positives / (false_positives + negatives).max(1.0)
    );
}
