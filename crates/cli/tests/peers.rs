//! The peer engines through the real `storelab compare` (feature `peers`): a tiny comparison
//! of the heap with SQLite (both layouts), redb and fjall must run to the end and print a
//! column per engine. Sizes are tiny; the numbers are not looked at.
#![cfg(feature = "peers")]

use std::process::Command;

/// `compare` runs every peer beside the heap and prints one column for each.
#[test]
fn compare_runs_every_peer_beside_the_heap() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let json = dir.path().join("results.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .current_dir(dir.path())
        .args([
            "compare",
            "--engines",
            "heap,sqlite,sqlite-rowid,redb,fjall",
            "--records",
            "300",
            "--ops",
            "200",
            "--query-ops",
            "1",
            "--quiet",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("the storelab binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "compare failed: {stdout}{stderr}");
    let header = stdout.lines().next().unwrap_or_default();
    for engine in ["heap", "sqlite", "sqlite-rowid", "redb", "fjall"] {
        assert!(
            header.split_whitespace().any(|w| w == engine),
            "no column for {engine} in {header:?}"
        );
    }
    // Every engine ran every default workload: one result line each.
    let results = std::fs::read_to_string(&json).expect("results written");
    for engine in ["sqlite", "sqlite-rowid", "redb", "fjall"] {
        let lines = results
            .lines()
            .filter(|l| l.contains(&format!("\"engine\":\"{engine}\"")))
            .count();
        assert!(lines >= 4, "{engine} has {lines} result lines:\n{results}");
    }
}

/// A peer's directory is a storelab database: `run` finds its engine from the catalog.
#[test]
fn load_and_run_work_on_a_peer_directory() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let db = dir.path().join("db");
    let db = db.to_str().expect("UTF-8 path");
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_storelab"))
            .args(args)
            .output()
            .expect("the storelab binary runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "{args:?} failed: {text}");
        text
    };
    run(&[
        "load",
        "--engine",
        "redb",
        "--dir",
        db,
        "--records",
        "200",
        "--quiet",
    ]);
    let out = run(&[
        "run",
        "--dir",
        db,
        "--workload",
        "c",
        "--ops",
        "100",
        "--quiet",
    ]);
    assert!(out.contains("[OVERALL], Throughput(ops/sec)"), "{out}");
}
