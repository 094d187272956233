//! `storelab experiment`: every experiment runs at a tiny scale and writes a complete report
//! (the full runs are too long for tests; their results are in docs/results/experiments).
//!
//! Each test runs one experiment through the binary with `--scale 0.01`, then reads what it
//! wrote: report.md with every part (question, setup, expectation, results, findings, a
//! verdict), at least one SVG plot that the report links, results.jsonl whose every line is a
//! results record of this experiment, and summary.json. At this scale the experiments also run
//! every engine's `check()` after each measured point.

use std::path::Path;
use std::process::Command;

use storelab_workload::RunResult;

fn storelab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_storelab"))
}

/// Runs experiment `name` at a tiny scale and checks its output folder.
fn tiny(name: &str) {
    let out = tempfile::tempdir().unwrap();
    let output = storelab()
        .args(["experiment", name, "--scale", "0.01", "--quiet", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "experiment {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let dir = out.path().join(name);
    check_report(name, &dir);
    // The scratch databases are gone.
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != name)
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
}

fn check_report(name: &str, dir: &Path) {
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    for part in [
        "# Experiment ",
        "**Question.**",
        "## Setup",
        "## What the textbook expects",
        "## Results",
        "## What the result shows, and why",
        "## Verdict: ",
        "## Raw data",
    ] {
        assert!(md.contains(part), "{name}: report.md lacks {part:?}:\n{md}");
    }
    assert!(md.contains("\n| "), "{name}: no table in report.md");
    assert!(
        !md.contains("no verdict was reached"),
        "{name}: the experiment reached no verdict:\n{md}"
    );
    let svgs: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    assert!(!svgs.is_empty(), "{name}: no plot");
    for svg in &svgs {
        assert!(
            md.contains(&format!("]({svg})")),
            "{name}: {svg} not linked"
        );
        let text = std::fs::read_to_string(dir.join(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.trim_end().ends_with("</svg>"));
    }
    let results = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let records: Vec<RunResult> = results
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!records.is_empty(), "{name}: no results");
    for r in &records {
        assert_eq!(r.config["experiment"], name);
        assert!(r.ops > 0, "{name}: a point of no operations");
    }
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["name"], name);
    assert_eq!(summary["points"], records.len());
}

#[test]
fn pk_range() {
    tiny("pk-range");
}

#[test]
fn secondary_lookup() {
    tiny("secondary-lookup");
}

#[test]
fn update_indexes() {
    tiny("update-indexes");
}

#[test]
fn full_scan() {
    tiny("full-scan");
}

#[test]
fn insert_order() {
    tiny("insert-order");
}

#[test]
fn correlated_range() {
    tiny("correlated-range");
}

#[test]
fn io_method() {
    tiny("io-method");
}

#[test]
fn ingest() {
    tiny("ingest");
}

#[test]
fn bloat() {
    tiny("bloat");
}

#[test]
fn buffer_pool() {
    tiny("buffer-pool");
}

/// Without a name, the list; a wrong name or scale is an error naming the choices, and
/// writes nothing.
#[test]
fn lists_and_refuses_bad_arguments() {
    let output = storelab().arg("experiment").output().unwrap();
    assert!(output.status.success());
    let list = String::from_utf8(output.stdout).unwrap();
    for name in [
        "pk-range",
        "secondary-lookup",
        "update-indexes",
        "full-scan",
        "insert-order",
        "correlated-range",
        "io-method",
        "ingest",
        "bloat",
        "buffer-pool",
    ] {
        assert!(list.contains(name), "{name} not listed:\n{list}");
    }
    let out = tempfile::tempdir().unwrap();
    let output = storelab()
        .args(["experiment", "nope", "--out"])
        .arg(out.path().join("x"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(err.contains("unknown experiment \"nope\""), "{err}");
    assert!(err.contains("pk-range"), "{err}");
    for scale in ["0", "-1", "NaN", "1e9"] {
        let output = storelab()
            .args([
                "experiment",
                "pk-range",
                &format!("--scale={scale}"),
                "--out",
            ])
            .arg(out.path().join("x"))
            .output()
            .unwrap();
        assert!(!output.status.success(), "--scale {scale} accepted");
        let err = String::from_utf8(output.stderr).unwrap();
        assert!(err.contains("--scale"), "{err}");
    }
    assert!(!out.path().join("x").exists(), "a refused run wrote files");
}
