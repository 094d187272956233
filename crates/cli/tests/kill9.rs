//! kill -9: the real `storelab load` process is killed with SIGKILL at a random moment while
//! it commits batches; `storelab check --db` must then pass, every row whose batch the loader
//! acknowledged (it prints `acknowledged <rows>` after each commit returns) must be there
//! with its exact contents, and no batch may be half there. Heap, clustered and LSM engines;
//! a few kills in CI, many with `STORELAB_LONG=1`. The seed of the kill times is printed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_table::{Engine, StorageConfig};
use storelab_workload::UserTable;

const BATCH: u64 = 20;
const SEED: u64 = 42;

fn open(engine: &str, dir: &std::path::Path) -> Box<dyn Engine> {
    let config = StorageConfig::default();
    match engine {
        "heap" => Box::new(
            storelab_heap::HeapEngine::open(dir, &config, Default::default()).expect("open heap"),
        ),
        "lsm" => Box::new(
            storelab_clustered::ClusteredLsmEngine::open(dir, &config, Default::default())
                .expect("open lsm"),
        ),
        _ => Box::new(
            storelab_clustered::ClusteredEngine::open(dir, &config, Default::default())
                .expect("open clustered"),
        ),
    }
}

/// Starts a batched load, kills it after `delay`, returns the last acknowledged row count.
fn load_and_kill(engine: &str, dir: &std::path::Path, delay: Duration) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args([
            "load",
            "--engine",
            engine,
            "--records",
            "10000000",
            "--quiet",
            "--acks",
        ])
        .args(["--batch", &BATCH.to_string(), "--memory", "8MiB", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start storelab load");
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut last = 0u64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(n) = line.strip_prefix("acknowledged ") {
                last = n.trim().parse().expect("a row count");
            }
        }
        last
    });
    std::thread::sleep(delay);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    reader.join().expect("reader")
}

fn kill_and_verify(engine: &str, rng: &mut StdRng, what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let delay = Duration::from_millis(rng.random_range(300..1500));
    let acked = load_and_kill(engine, &db, delay);
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args(["check", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{what}: check failed after a kill at {delay:?} ({acked} acknowledged): {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let e = open(engine, &db);
    let Ok(t) = e.open_table("usertable") else {
        assert_eq!(acked, 0, "{what}: acknowledged rows but no table");
        return;
    };
    let rows = t.stats().unwrap().row_count;
    // Batches are atomic: the recovered table holds exactly the acknowledged batches, plus
    // possibly the one in flight when the process died.
    assert!(
        rows == acked || rows == acked + BATCH,
        "{what}: {rows} rows after {acked} acknowledged (batches of {BATCH})"
    );
    let data = UserTable::default();
    for n in 0..rows {
        let got = t.get(&[UserTable::key(n)]).unwrap();
        assert_eq!(got, Some(data.row(n, SEED)), "{what}: row {n} of {rows}");
    }
    assert_eq!(t.get(&[UserTable::key(rows)]).unwrap(), None);
    println!("{what}: killed after {delay:?}: {acked} acknowledged, {rows} recovered, check ok");
}

fn kills() -> usize {
    if std::env::var_os("STORELAB_LONG").is_some() {
        25
    } else {
        2
    }
}

/// The heap engine survives SIGKILL during a batched load with every acknowledged row.
#[test]
fn kill9_heap_keeps_every_acknowledged_row() {
    let seed = 0x4B11_0009;
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..kills() {
        kill_and_verify("heap", &mut rng, &format!("heap kill {i} (seed {seed:#x})"));
    }
}

/// The clustered engine likewise.
#[test]
fn kill9_clustered_keeps_every_acknowledged_row() {
    let seed = 0x4B11_0019;
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..kills() {
        kill_and_verify(
            "clustered",
            &mut rng,
            &format!("clustered kill {i} (seed {seed:#x})"),
        );
    }
}

/// The clustered engine's LSM option likewise (its memtable is rebuilt from the log).
#[test]
fn kill9_lsm_keeps_every_acknowledged_row() {
    let seed = 0x4B11_0029;
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..kills() {
        kill_and_verify("lsm", &mut rng, &format!("lsm kill {i} (seed {seed:#x})"));
    }
}
