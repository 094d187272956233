//! End-to-end tests of the workload commands of the `storelab` binary: a tiny `compare` over
//! every engine with its JSON results, `report` on those results, `load` + `run` + `check` on
//! a persistent directory, and bad input, which must fail with a one-line message naming what
//! is accepted and leave the file system as it was.
//!
//! Sizes are tiny (300 rows, 200 operations, one execution per query) so the file runs in a
//! few seconds in a debug build; the numbers are not looked at, only the shape of the output.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::SystemTime;

fn storelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args(args)
        .output()
        .expect("the storelab binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Runs `args`, asserts success, returns stdout.
fn assert_success(args: &[&str]) -> String {
    let output = storelab(args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// Asserts the run failed cleanly: a non-zero exit that is not a panic, and `expected` on the
/// first line of stderr (the error is one line; clap may add a usage hint below it).
fn assert_clean_failure(args: &[&str], expected: &str) {
    let output = storelab(args);
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "{args:?} should fail; stdout: {}",
        text(&output.stdout)
    );
    assert_ne!(
        output.status.code(),
        Some(101),
        "{args:?} panicked: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.contains(expected),
        "{args:?}: the first line of stderr {stderr:?} should contain {expected:?}"
    );
}

/// Every file and directory under `dir` with its size and modification time, sorted: equal
/// snapshots mean nothing was created, removed or written.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let meta = std::fs::metadata(&d).expect("a listed path exists");
        out.push((d.clone(), meta.len(), meta.modified().expect("mtime")));
        if meta.is_dir() {
            for entry in std::fs::read_dir(&d).expect("readable directory") {
                stack.push(entry.expect("a directory entry").path());
            }
        }
    }
    out.sort();
    out
}

const ENGINES: [&str; 3] = ["heap", "clustered", "reference"];
const WORKLOADS: [&str; 5] = ["ycsb-a", "ycsb-b", "ycsb-c", "ycsb-e", "scan-agg"];

/// A tiny compare over every engine prints the side-by-side table (a column per engine, a row
/// block per workload) and writes one JSON result per engine and workload with the keys the
/// results schema promises; `storelab report` turns that file into report.md and three SVG
/// plots that name the engines and workloads.
#[test]
fn compare_writes_table_and_json_that_report_turns_into_markdown_and_svg() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("results.jsonl");
    let stdout = assert_success(&[
        "compare",
        "--records",
        "300",
        "--ops",
        "200",
        "--query-ops",
        "1",
        "--engines",
        "heap,clustered,reference",
        "--json",
        path_arg(&json),
        "--quiet",
    ]);

    // The table: a header naming every engine, then a block of metrics per workload.
    let header = stdout.lines().next().unwrap();
    for engine in ENGINES {
        assert!(header.contains(engine), "{stdout}");
    }
    for workload in WORKLOADS {
        assert!(
            stdout.lines().any(|l| l.starts_with(workload)),
            "{workload} missing from:\n{stdout}"
        );
    }
    for metric in [
        "ops/s",
        "p99 latency us",
        "reads/op",
        "KiB written/op",
        "write amplification",
        "size MiB",
    ] {
        assert!(stdout.contains(metric), "{metric} missing from:\n{stdout}");
    }
    assert!(stdout.contains("300 records per table"), "{stdout}");

    // The JSON: one line per engine and workload, each with the documented keys.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert_eq!(lines.len(), ENGINES.len() * WORKLOADS.len());
    for r in &lines {
        for key in [
            "schema_version",
            "engine",
            "workload",
            "ops",
            "throughput_ops_per_s",
            "latency_us",
            "io",
            "size_on_disk_bytes",
            "write_amplification",
            "config",
        ] {
            assert!(r.get(key).is_some(), "{key} missing from {r}");
        }
        assert_eq!(r["schema_version"], 1);
        assert!(ENGINES.contains(&r["engine"].as_str().unwrap()), "{r}");
        assert!(WORKLOADS.contains(&r["workload"].as_str().unwrap()), "{r}");
        let latency = r["latency_us"].as_object().unwrap();
        assert!(!latency.is_empty(), "{r}");
        for (op, l) in latency {
            for p in ["p50", "p99", "p999"] {
                assert!(l[p].is_u64(), "{op} has no {p}: {r}");
            }
        }
        for key in ["total", "by_cause"] {
            assert!(r["io"][key].is_object(), "io.{key} missing from {r}");
        }
        for key in ["read_count", "write_bytes", "sync_count"] {
            assert!(r["io"]["total"][key].is_u64(), "io.total.{key}: {r}");
        }
        assert_eq!(r["config"]["engine"], r["engine"]);
        for key in ["page_size_bytes", "memory_bytes", "commit_mode", "seed"] {
            assert!(r["config"].get(key).is_some(), "config.{key}: {r}");
        }
    }
    let ycsb_a_heap = lines
        .iter()
        .find(|r| r["engine"] == "heap" && r["workload"] == "ycsb-a")
        .unwrap();
    assert!(ycsb_a_heap["latency_us"].get("update").is_some());
    assert!(ycsb_a_heap["io"]["total"]["write_bytes"].as_u64().unwrap() > 0);

    // The report.
    let out = dir.path().join("report");
    let stdout = assert_success(&["report", path_arg(&json), "--out", path_arg(&out)]);
    assert!(stdout.contains("report.md"), "{stdout}");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| workload | metric | heap | clustered | reference |"),
        "{md}"
    );
    for row in [
        "throughput (ops/s)",
        "update latency p50 (us)",
        "update latency p99 (us)",
        "read latency p99 (us)",
        "reads/op",
        "KiB written/op",
        "write amplification",
        "size on disk (MiB)",
        "wal: KiB written/op",
    ] {
        assert!(md.contains(row), "{row} missing from:\n{md}");
    }
    for workload in WORKLOADS {
        assert!(md.contains(&format!("| {workload} |")), "{md}");
    }
    for svg in ["throughput.svg", "latency.svg", "io_by_cause.svg"] {
        assert!(md.contains(&format!("]({svg})")), "no link to {svg}:\n{md}");
        let plot = std::fs::read_to_string(out.join(svg)).unwrap();
        assert!(plot.starts_with("<svg"), "{svg}: {plot}");
        assert!(plot.trim_end().ends_with("</svg>"), "{svg}");
        assert!(plot.contains("\nclustered\n</text>"), "{svg} has no legend");
        assert!(plot.contains("ycsb-a"), "{svg} names no workload");
    }
}

/// `load` then `run` on a kept directory for each disk engine, then `check --db` finds the
/// loaded rows. Without --quiet and with stderr not a terminal, no progress bar is printed.
#[test]
fn load_run_and_check_a_persistent_database() {
    for engine in ["heap", "clustered"] {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        let json = dir.path().join("run.jsonl");
        let load = storelab(&[
            "load",
            "--engine",
            engine,
            "--dir",
            path_arg(&db),
            "--records",
            "300",
        ]);
        assert!(load.status.success(), "{}", text(&load.stderr));
        assert!(
            text(&load.stdout).contains("loaded 300 rows into usertable"),
            "{}",
            text(&load.stdout)
        );
        assert_eq!(text(&load.stderr), "", "progress output on a pipe");

        let stdout = assert_success(&[
            "run",
            "--dir",
            path_arg(&db),
            "--workload",
            "a",
            "--ops",
            "100",
            "--json",
            path_arg(&json),
        ]);
        for line in [
            "[OVERALL], Throughput(ops/sec)",
            "[READ], 99thPercentileLatency(us)",
            "[UPDATE], Operations",
        ] {
            assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
        }
        let result: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&json).unwrap().trim()).unwrap();
        assert_eq!(result["engine"], engine);
        assert_eq!(result["workload"], "ycsb-a");
        assert_eq!(result["ops"], 100);

        let stdout = assert_success(&["check", "--db", path_arg(&db)]);
        assert!(
            stdout.contains(&format!("{engine} database"))
                && stdout.contains("usertable: 300 rows"),
            "{stdout}"
        );

        // The wrong engine for the directory is refused before it is opened.
        let other = if engine == "heap" {
            "clustered"
        } else {
            "heap"
        };
        let before = snapshot(&db);
        assert_clean_failure(
            &[
                "run",
                "--dir",
                path_arg(&db),
                "--engine",
                other,
                "--workload",
                "a",
            ],
            &format!("holds a {engine} database, not {other}"),
        );
        assert_clean_failure(
            &[
                "load",
                "--dir",
                path_arg(&db),
                "--engine",
                other,
                "--records",
                "10",
            ],
            &format!("holds a {engine} database, not {other}"),
        );
        assert_eq!(snapshot(&db), before, "a refused command changed {db:?}");
    }
}

/// An unknown engine is refused by every command with the accepted names, and `load` does not
/// create its directory.
#[test]
fn unknown_engine_is_refused_naming_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let accepted = "accepted: heap, clustered";
    assert_clean_failure(&["compare", "--engines", "heap,btrfs"], accepted);
    assert_clean_failure(
        &["load", "--engine", "btrfs", "--dir", path_arg(&db)],
        accepted,
    );
    assert_clean_failure(
        &[
            "run",
            "--engine",
            "btrfs",
            "--dir",
            path_arg(&db),
            "--workload",
            "a",
        ],
        accepted,
    );
    assert!(!db.exists(), "a refused command created {db:?}");
}

/// An unknown workload or data set is refused with the accepted names before any directory
/// is created or opened.
#[test]
fn unknown_workload_is_refused_naming_the_accepted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let accepted = "(a, b, c, d, e, f, scan-agg";
    assert_clean_failure(
        &["compare", "--workloads", "a,z", "--dir", path_arg(&db)],
        accepted,
    );
    assert_clean_failure(
        &["run", "--dir", path_arg(&db), "--workload", "ycsb-z"],
        accepted,
    );
    assert_clean_failure(
        &[
            "load",
            "--engine",
            "heap",
            "--dir",
            path_arg(&db),
            "--dataset",
            "lineitem",
        ],
        "(usertable or orders)",
    );
    assert!(!db.exists(), "a refused command created {db:?}");
}

/// Zero, negative, non-integer and absurd sizes are refused with the accepted range, and
/// nothing is created.
#[test]
fn zero_negative_and_absurd_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let range = "out of range (1 to 1,000,000,000)";
    let load = |records: &str| {
        [
            "load",
            "--engine",
            "heap",
            "--dir",
            path_arg(&db),
            "--records",
        ]
        .into_iter()
        .chain([records])
        .map(str::to_string)
        .collect::<Vec<String>>()
    };
    for (records, expected) in [
        ("0", range),
        ("10000000000", range),
        ("-5", "not a count"),
        ("1e6", "not a count"),
    ] {
        let args = load(records);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_clean_failure(&args, expected);
        assert_clean_failure(
            &["compare", "--records", records, "--dir", path_arg(&db)],
            expected,
        );
    }
    assert_clean_failure(
        &["compare", "--ops", "0", "--dir", path_arg(&db)],
        "--ops 0 is out of range",
    );
    assert_clean_failure(
        &["compare", "--threads", "5000", "--dir", path_arg(&db)],
        "--threads 5000 is out of range (1 to 1024)",
    );
    assert_clean_failure(
        &[
            "run",
            "--dir",
            path_arg(&db),
            "--workload",
            "a",
            "--duration",
            "-1",
        ],
        "--duration -1 is out of range",
    );
    assert!(!db.exists(), "a refused command created {db:?}");
}

/// A directory holding other files is not a storelab database: `load` will not write into it,
/// `run` will not open it, `compare --dir` will not clear an engine folder in it, and each
/// leaves every file as it was.
#[test]
fn a_directory_that_is_not_a_database_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("photos");
    std::fs::create_dir(&other).unwrap();
    std::fs::write(other.join("cat.jpg"), b"not a page").unwrap();
    std::fs::create_dir(other.join("heap")).unwrap();
    std::fs::write(other.join("heap").join("notes.txt"), b"keep me").unwrap();
    let before = snapshot(&other);

    assert_clean_failure(
        &[
            "load",
            "--engine",
            "heap",
            "--dir",
            path_arg(&other),
            "--records",
            "10",
        ],
        "is not a storelab database",
    );
    assert_clean_failure(
        &["run", "--dir", path_arg(&other), "--workload", "a"],
        "is not a storelab database",
    );
    assert_clean_failure(
        &[
            "compare",
            "--dir",
            path_arg(&other),
            "--records",
            "10",
            "--ops",
            "10",
            "--quiet",
        ],
        "is not a storelab database: refusing to clear it",
    );
    assert_eq!(
        snapshot(&other),
        before,
        "a refused command changed {other:?}"
    );
}

/// `run` on an empty or missing directory says it is not a database and creates nothing.
#[test]
fn run_on_an_empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");
    let before = snapshot(dir.path());
    for d in [&empty, &missing] {
        assert_clean_failure(
            &["run", "--dir", path_arg(d), "--workload", "c"],
            "is not a storelab database (no readable catalog.json)",
        );
    }
    assert_eq!(snapshot(dir.path()), before);
}

/// A result file of another schema version is refused naming both versions, before the
/// output directory is created; so are an empty file and a file that is not JSON.
#[test]
fn report_refuses_other_schema_versions_and_non_results() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report");
    let future = dir.path().join("future.jsonl");
    std::fs::write(
        &future,
        "{\"schema_version\":2,\"engine\":\"heap\",\"workload\":\"ycsb-a\"}\n",
    )
    .unwrap();
    assert_clean_failure(
        &["report", path_arg(&future), "--out", path_arg(&out)],
        "results schema version 2 is not supported (accepted: 1)",
    );
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").unwrap();
    assert_clean_failure(
        &["report", path_arg(&empty), "--out", path_arg(&out)],
        "holds no results",
    );
    let garbage = dir.path().join("notes.txt");
    std::fs::write(&garbage, "hello\n").unwrap();
    assert_clean_failure(
        &["report", path_arg(&garbage), "--out", path_arg(&out)],
        "line 1: not a JSON result line",
    );
    assert_clean_failure(
        &[
            "report",
            path_arg(&dir.path().join("missing.jsonl")),
            "--out",
            path_arg(&out),
        ],
        "missing.jsonl",
    );
    assert!(!out.exists(), "a refused report created {out:?}");
}

/// `compare --dir` keeps its databases, says where they are, and a second run clears and
/// reuses its own database directories; the kept database passes `check --db`.
#[test]
fn compare_keeps_its_databases_in_dir_and_says_where() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("dbs");
    let args = [
        "compare",
        "--engines",
        "heap,reference",
        "--workloads",
        "c",
        "--records",
        "50",
        "--ops",
        "20",
        "--dir",
        path_arg(&base),
        "--quiet",
    ];
    for _ in 0..2 {
        let stdout = assert_success(&args);
        let heap = base.join("heap");
        assert!(
            stdout.contains(&format!("databases kept in {}", heap.display())),
            "{stdout}"
        );
        // The reference engine lives in memory and leaves nothing to keep.
        assert!(!base.join("reference").exists());
        let stdout = assert_success(&["check", "--db", path_arg(&heap)]);
        assert!(stdout.contains("usertable: 50 rows"), "{stdout}");
    }
}
