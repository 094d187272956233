//! End-to-end tests of the `storelab` binary: help, a tiny io-bench run, and bad arguments.
//!
//! They run the real binary (`CARGO_BIN_EXE_storelab`) and stay small: an 8 MiB file and
//! 0.2 s measurements, so the whole file takes a few seconds.

use std::path::Path;
use std::process::{Command, Output};

fn storelab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args(args)
        .output()
        .expect("the storelab binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts the run failed cleanly: non-zero exit, a message containing `expected` on stderr,
/// and no panic or backtrace.
fn assert_clean_failure(args: &[&str], expected: &str) {
    let output = storelab(args);
    let stderr = text(&output.stderr);
    assert!(
        !output.status.success(),
        "{args:?} should fail; stderr: {stderr}"
    );
    assert_ne!(
        output.status.code(),
        Some(101),
        "{args:?} panicked: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{args:?} panicked: {stderr}");
    assert!(
        stderr.contains(expected),
        "{args:?}: stderr {stderr:?} should contain {expected:?}"
    );
}

/// The top-level help describes storelab and lists io-bench; io-bench's help explains why
/// buffered numbers depend on the file size.
#[test]
fn help_describes_storelab_and_io_bench() {
    let output = storelab(&["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    assert!(help.contains("storage-engine"), "{help}");
    assert!(help.contains("io-bench"), "{help}");

    let output = storelab(&["io-bench", "--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for flag in [
        "--dir",
        "--size",
        "--block-size",
        "--queue-depths",
        "--backends",
        "--json",
    ] {
        assert!(help.contains(flag), "io-bench --help lacks {flag}");
    }
    assert!(help.contains("larger than RAM"), "{help}");
}

/// A tiny run succeeds, prints the table, and writes one JSON line per measurement with the
/// documented keys; the test file does not outlive the run.
#[test]
fn tiny_io_bench_writes_table_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let data_dir = dir.path().join("data");
    std::fs::create_dir(&data_dir).unwrap();
    let output = storelab(&[
        "io-bench",
        "--size",
        "8MiB",
        "--duration",
        "0.2",
        "--warmup",
        "0.05",
        "--backends",
        "sync,worker",
        "--queue-depths",
        "1,4",
        "--dir",
        data_dir.to_str().unwrap(),
        "--json",
        json_path.to_str().unwrap(),
    ]);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "io-bench failed: {stderr}");
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("IOPS") && stdout.contains("p99 us"),
        "{stdout}"
    );

    let json = std::fs::read_to_string(&json_path).unwrap();
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // 2 backends x 2 modes x (2 random depths + 1 sequential).
    assert_eq!(records.len(), 12, "{json}");
    for record in &records {
        for key in [
            "schema_version",
            "backend",
            "direct",
            "pattern",
            "block_size",
            "queue_depth",
            "duration_s",
            "ops",
            "iops",
            "mb_per_s",
            "p50_us",
            "p99_us",
            "p999_us",
            "max_us",
            "file_size",
        ] {
            assert!(record.get(key).is_some(), "record lacks {key}: {record}");
        }
        assert_eq!(record["schema_version"], 1);
        assert!(record["direct"].is_boolean());
        assert!(record["iops"].as_f64().unwrap() > 0.0, "{record}");
        assert!(record["ops"].as_u64().unwrap() > 0, "{record}");
    }
    let patterns: Vec<&str> = records
        .iter()
        .map(|r| r["pattern"].as_str().unwrap())
        .collect();
    assert!(patterns.contains(&"randread") && patterns.contains(&"seqread"));
    assert_eq!(
        std::fs::read_dir(&data_dir).unwrap().count(),
        0,
        "test file left behind"
    );
}

/// `--ops` measures exactly that many reads.
#[test]
fn ops_limit_counts_exact_reads() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let output = storelab(&[
        "io-bench",
        "--size",
        "4MiB",
        "--ops",
        "100",
        "--warmup",
        "0",
        "--backends",
        "sync",
        "--modes",
        "buffered",
        "--queue-depths",
        "8",
        "--dir",
        dir.path().to_str().unwrap(),
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json = std::fs::read_to_string(&json_path).unwrap();
    for line in json.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(record["ops"], 100, "{record}");
    }
}

/// Each kind of bad argument exits non-zero with a message naming the problem, never a panic.
#[test]
fn bad_arguments_fail_cleanly() {
    let missing = Path::new("/nonexistent/storelab-test-dir");
    let cases: [(&[&str], &str); 9] = [
        (&["io-bench", "--block-size", "5000"], "multiple of 4096"),
        (
            &["io-bench", "--seq-block-size", "1000"],
            "multiple of 4096",
        ),
        (
            &["io-bench", "--size", "4KiB"],
            "smaller than the largest block size",
        ),
        (&["io-bench", "--size", "lots"], "not a size"),
        (
            &["io-bench", "--backends", "sync,floppy"],
            "unknown backend",
        ),
        (&["io-bench", "--queue-depths", "0"], "--queue-depths"),
        (&["io-bench", "--queue-depths", "1,2000"], "--queue-depths"),
        (&["io-bench", "--duration", "0"], "seconds"),
        (
            &[
                "io-bench",
                "--dir",
                missing.to_str().unwrap(),
                "--size",
                "1MiB",
            ],
            "does not exist",
        ),
    ];
    for (args, expected) in cases {
        assert_clean_failure(args, expected);
    }
}

/// A --json path that cannot be created fails before any measuring.
#[test]
fn unwritable_json_path_fails_cleanly() {
    assert_clean_failure(
        &[
            "io-bench",
            "--json",
            "/nonexistent/dir/out.json",
            "--size",
            "1MiB",
        ],
        "cannot create the JSON output file",
    );
}

/// A --dir that is a file, not a directory, is reported as such.
#[test]
fn dir_that_is_a_file_fails_cleanly() {
    let file = tempfile::NamedTempFile::new().unwrap();
    assert_clean_failure(
        &[
            "io-bench",
            "--dir",
            file.path().to_str().unwrap(),
            "--size",
            "1MiB",
        ],
        "not a directory",
    );
}

/// `--device cloud` wraps the backend in the simulated device: the JSON names the device and
/// random reads take at least the profile's 1 ms.
#[test]
fn device_profile_is_applied_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("out.json");
    let output = storelab(&[
        "io-bench",
        "--size",
        "4MiB",
        "--device",
        "cloud",
        "--backends",
        "worker",
        "--modes",
        "direct",
        "--queue-depths",
        "4",
        "--ops",
        "40",
        "--warmup",
        "0",
        "--dir",
        dir.path().to_str().unwrap(),
        "--json",
        json_path.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json = std::fs::read_to_string(&json_path).unwrap();
    let records: Vec<serde_json::Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{json}");
    for record in &records {
        assert_eq!(record["device"], "cloud", "{record}");
        assert_eq!(record["backend"], "worker", "{record}");
    }
    assert!(
        records[0]["p50_us"].as_f64().unwrap() >= 900.0,
        "{}",
        records[0]
    );
}
