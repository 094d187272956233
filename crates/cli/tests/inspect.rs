//! Golden tests of `storelab inspect`: the text output of every subcommand on a small
//! deterministic B+tree file and a small heap database is compared with the files under
//! `testscripts/inspect/` (STYLE.md section 7).
//!
//! When the output changes on purpose, refresh the golden files and review the diff:
//!
//! ```text
//!   STORELAB_BLESS=1 cargo test -p storelab-cli --test inspect
//!   git diff testscripts/inspect/
//! ```
//!
//! The fixtures are built the same way on every run (fixed keys, values and operation order,
//! one thread, no background work), so their bytes, page LSNs included, do not change between
//! runs. Output names files by their last path component only, so temporary paths never reach
//! the golden files. Bad input (not a page file, a page past the end, a wrong page size) must
//! give a one-line error and exit status 1, never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use storelab_btree::{BTree, BTreeConfig, SplitPolicy, register_redo};
use storelab_heap::{HeapEngine, HeapOptions};
use storelab_pager::io::SyncBackend;
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_table::{ColumnType, Engine, Schema, StorageConfig, Value};
use storelab_wal::{RedoRegistry, RelId, Wal, WalConfig};

/// The environment variable that rewrites the golden files instead of comparing.
const BLESS_VAR: &str = "STORELAB_BLESS";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testscripts/inspect")
}

/// Compares `actual` with the golden file `name`, or rewrites it under `STORELAB_BLESS=1`.
fn golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os(BLESS_VAR).is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with {BLESS_VAR}=1 to create it",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{name} differs from the golden file at line {}:\n  expected: {:?}\n  actual:   {:?}\n\
             full output:\n{actual}\nrun with {BLESS_VAR}=1 to accept it, then review the diff",
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// Runs `storelab inspect ARGS`: (success, stdout, stderr).
fn inspect(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// Runs `storelab inspect ARGS`, which must succeed, and returns its output.
fn inspect_ok(args: &[&str]) -> String {
    let (ok, stdout, stderr) = inspect(args);
    assert!(ok, "inspect {args:?} failed: {stderr}");
    assert!(stdout.is_ascii(), "non-ASCII output");
    stdout
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A B+tree of 512-byte nodes on 4 KiB pages: three levels from 600 keys, a value in an
/// overflow chain, and deletions that merge nodes onto the free list and leave dead
/// bytes in a leaf.
fn build_tree(dir: &Path) -> PathBuf {
    let path = dir.join("tree.idx");
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K4,
        false,
    );
    let file = disk.open_file(&path, "tree", true).unwrap();
    let pool = Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(256)).unwrap());
    let mut config = WalConfig::new(dir.join("tree-wal"));
    config.segment_size = 1 << 20;
    let wal = Wal::open(config, &disk).unwrap();
    wal.attach(RelId(1), file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    wal.recover(&pool, &redo).unwrap();
    let tree = BTree::open(
        Arc::clone(&pool),
        Arc::clone(&wal),
        file,
        RelId(1),
        BTreeConfig {
            node_size: Some(512),
            split: SplitPolicy::Middle,
            ..BTreeConfig::default()
        },
    )
    .unwrap();
    // Keys in a scrambled but fixed order (i * 37 mod 600), so splits happen mid-node.
    for i in 0..600u32 {
        let k = (i * 37) % 600;
        let key = format!("key{k:04}");
        tree.insert(key.as_bytes(), format!("value-{k}").as_bytes())
            .unwrap();
    }
    // A value of two overflow pages.
    tree.insert(b"key0150x", &[0xAB; 5000]).unwrap();
    for k in (200..260).chain([11, 13, 17]) {
        assert!(tree.delete(format!("key{k:04}").as_bytes()).unwrap());
    }
    tree.check().unwrap();
    wal.checkpoint(&pool).unwrap();
    wal.close().unwrap();
    path
}

/// A heap database with one table on 4 KiB pages, taken through inserts, HOT updates,
/// deletes, a VACUUM and more changes after it, so that every line-pointer state (NORMAL,
/// REDIRECT, DEAD, UNUSED), live HOT chains, a deleted tuple and an updated one appear on
/// disk.
fn build_heap_db(dir: &Path) -> PathBuf {
    let db = dir.join("db");
    let config = StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 4 << 20,
        checkpoint_wal_bytes: 0,
        wal_segment_size: 1 << 20,
        ..StorageConfig::default()
    };
    let options = HeapOptions {
        autovacuum: false,
        ..HeapOptions::default()
    };
    let e = HeapEngine::open(&db, &config, options).unwrap();
    let schema = Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("v", ColumnType::Int64)
        .column("pad", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_v", &["v"], false)
        .build()
        .unwrap();
    let t = e.create_table(schema).unwrap();
    let pad = |n: i64, len: usize| Value::Text(format!("{n:03}{}", "p".repeat(len)));
    for id in 0..40 {
        t.insert(vec![Value::Int(id), Value::Int(id * 10), pad(id, 80)])
            .unwrap();
    }
    // Before VACUUM: deletes make room on page 0, then HOT updates (pad only) build a chain.
    for id in [10, 11, 12] {
        assert!(t.delete(&[Value::Int(id)]).unwrap());
    }
    for round in 0..2 {
        assert!(
            t.update(&[Value::Int(1)], &[(2, pad(100 + round, 80))])
                .unwrap()
        );
    }
    // A non-HOT update: the indexed column changes.
    assert!(t.update(&[Value::Int(3)], &[(1, Value::Int(333))]).unwrap());
    e.heap_table("t").unwrap().vacuum().unwrap();
    // After VACUUM: a live HOT chain, a deleted tuple, and a delete that a later prune turns
    // into a DEAD line pointer.
    for round in 0..2 {
        assert!(
            t.update(&[Value::Int(2)], &[(2, pad(200 + round, 80))])
                .unwrap()
        );
    }
    assert!(t.delete(&[Value::Int(20)]).unwrap());
    assert!(t.delete(&[Value::Int(21)]).unwrap());
    // Growing rows on page 0 until it must prune: the deleted tuples become DEAD.
    for round in 0..6 {
        assert!(
            t.update(&[Value::Int(5)], &[(2, pad(500 + round, 200))])
                .unwrap()
        );
    }
    // Left as they are on disk: a deleted tuple, and a non-HOT update whose new version
    // goes to page 1 (page 0 is full), so the old version's ctid names another page.
    assert!(t.delete(&[Value::Int(30)]).unwrap());
    assert!(t.update(&[Value::Int(4)], &[(1, Value::Int(444))]).unwrap());
    e.checkpoint().unwrap();
    drop(t);
    drop(e);
    db
}

/// A light syntax check of DOT output (Graphviz is not needed to run the tests): braces
/// balance, and every line has an even number of unescaped double quotes.
fn assert_dot_well_formed(dot: &str) {
    assert!(
        dot.starts_with("digraph btree {\n") && dot.ends_with("}\n"),
        "{dot}"
    );
    assert_eq!(dot.matches('{').count(), dot.matches('}').count(), "{dot}");
    for line in dot.lines() {
        let quotes = line
            .replace("\\\\", "")
            .replace("\\\"", "")
            .matches('"')
            .count();
        assert!(quotes % 2 == 0, "unbalanced quotes: {line}");
    }
}

/// Page dumps of every B+tree page kind, the tree's shape as text and DOT.
#[test]
fn btree_pages_and_shape_match_golden() {
    let dir = tempfile::tempdir().unwrap();
    let tree = build_tree(dir.path());
    let f = s(&tree);
    golden("tree.txt", &inspect_ok(&["tree", f, "--page-size", "4KiB"]));
    golden(
        "tree.dot",
        &inspect_ok(&["tree", f, "--page-size", "4KiB", "--dot"]),
    );
    for dot in [
        inspect_ok(&["tree", f, "--page-size", "4KiB", "--dot"]),
        inspect_ok(&[
            "tree",
            f,
            "--page-size",
            "4KiB",
            "--dot",
            "--node-limit",
            "5",
        ]),
    ] {
        assert_dot_well_formed(&dot);
    }
    golden(
        "tree-dot-truncated.dot",
        &inspect_ok(&[
            "tree",
            f,
            "--page-size",
            "4KiB",
            "--dot",
            "--node-limit",
            "5",
        ]),
    );
    golden(
        "page-meta.txt",
        &inspect_ok(&["page", f, "0", "--page-size", "4KiB"]),
    );
    // Find one page of each kind from the tree listing and the page census.
    let shape = inspect_ok(&["tree", f, "--page-size", "4KiB"]);
    let root: u64 = shape
        .lines()
        .find_map(|l| l.strip_prefix("  meta: root page "))
        .and_then(|r| r.split(',').next())
        .unwrap()
        .parse()
        .unwrap();
    golden(
        "page-internal.txt",
        &inspect_ok(&["page", f, &root.to_string(), "--page-size", "4KiB"]),
    );
    let pages = std::fs::metadata(&tree).unwrap().len() / 4096;
    let mut found = std::collections::BTreeMap::new();
    for p in 0..pages {
        let out = inspect_ok(&["page", f, &p.to_string(), "--page-size", "4KiB"]);
        let kind = out
            .lines()
            .find(|l| l.starts_with("  type"))
            .unwrap()
            .to_string();
        let kind = if out.contains("B+tree node: leaf") && out.contains("-> overflow") {
            "leaf with an overflow value".to_string()
        } else {
            kind
        };
        found.entry(kind).or_insert(out);
    }
    golden("page-leaf.txt", &found["leaf with an overflow value"]);
    golden(
        "page-overflow.txt",
        &found["  type       18 (B+tree overflow)"],
    );
    golden("page-free.txt", &found["  type       19 (B+tree free)"]);
}

/// Heap pages with every line-pointer state, the heap summary, an index of the heap, the
/// log and the directory.
#[test]
fn heap_database_matches_golden() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_heap_db(dir.path());
    let heap = db.join("t1.heap");
    let h = s(&heap);
    let heap_text = inspect_ok(&["heap", h, "--page-size", "4KiB"]);
    golden("heap.txt", &heap_text);
    let page0 = inspect_ok(&["page", h, "0", "--page-size", "4KiB"]);
    for state in ["NORMAL", "REDIRECT", "DEAD", "UNUSED", "(live)"] {
        assert!(page0.contains(state), "no {state} on page 0:\n{page0}");
    }
    golden("heap-page0.txt", &page0);
    golden(
        "heap-page1.txt",
        &inspect_ok(&["page", h, "1", "--page-size", "4KiB"]),
    );
    golden(
        "heap-index-by_v.txt",
        &inspect_ok(&["tree", s(&db.join("t1.by_v.idx")), "--page-size", "4KiB"]),
    );
    let wal_dir = db.join("wal");
    let wal = s(&wal_dir);
    let log = inspect_ok(&["wal", wal, "--from", "0", "--limit", "20"]);
    golden("wal.txt", &log);
    // The atomic group of the first HOT update: the page pruned first (an image), then one
    // heap record (a heap-only insert and the old version's forward link), no index records.
    let all = inspect_ok(&["wal", wal, "--limit", "100000"]);
    let hot = all
        .lines()
        .position(|l| l.contains("hot-update"))
        .expect("a HOT update in the log");
    let group_first = all
        .lines()
        .take(hot)
        .filter(|l| l.starts_with("0/") && l.contains("group-first"))
        .last()
        .unwrap();
    let lsn = group_first.split_whitespace().next().unwrap();
    golden(
        "wal-hot-update.txt",
        &inspect_ok(&["wal", wal, "--from", lsn, "--limit", "7"]),
    );
    golden(
        "db.txt",
        &inspect_ok(&["db", s(&db), "--page-size", "4KiB"]),
    );
}

/// Running the same inspection twice gives the same bytes, and inspecting changes no file.
#[test]
fn inspect_is_read_only_and_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_heap_db(dir.path());
    let snapshot = |dir: &Path| -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    files.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(&db);
    let runs: Vec<Vec<String>> = (0..2)
        .map(|_| {
            vec![
                inspect_ok(&["db", s(&db), "--page-size", "4KiB"]),
                inspect_ok(&["wal", s(&db)]),
                inspect_ok(&["heap", s(&db.join("t1.heap")), "--page-size", "4KiB"]),
                inspect_ok(&["tree", s(&db.join("t1.primary.idx")), "--page-size", "4KiB"]),
            ]
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert!(before == snapshot(&db), "inspect changed a file");
}

/// Bad input is a one-line error with status 1: a file that is not a page file, a page past
/// the end, a wrong page size, a B+tree command on a heap, a missing directory.
#[test]
fn bad_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let tree = build_tree(dir.path());
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a page file\n").unwrap();
    let noise = dir.path().join("noise.bin");
    std::fs::write(
        &noise,
        (0..8192u32).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
    )
    .unwrap();
    let db = build_heap_db(dir.path());
    let missing = dir.path().join("missing");
    let heap = db.join("t1.heap");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["page", s(&text), "0"], "not a whole number"),
        (vec!["page", s(&noise), "0"], "not a page file"),
        (
            vec!["page", s(&tree), "999", "--page-size", "4KiB"],
            "past the end",
        ),
        (vec!["page", s(&tree), "0"], "--page-size 4KiB"),
        (
            vec!["tree", s(&tree), "--page-size", "16KiB"],
            "--page-size 4KiB",
        ),
        (
            vec!["page", s(&tree), "0", "--page-size", "5000"],
            "4KiB, 8KiB or 16KiB",
        ),
        (
            vec!["tree", s(&heap), "--page-size", "4KiB"],
            "not a B+tree",
        ),
        (vec!["heap", s(&missing)], "missing"),
        (vec!["heap", s(&tree), "--page-size", "4KiB"], "not a heap"),
        (vec!["db", s(&missing)], "not a database directory"),
        (vec!["wal", s(&missing)], "not a directory"),
        (vec!["wal", s(&db), "--from", "nonsense"], "not an LSN"),
        (vec!["page", s(dir.path()), "0"], "not a file"),
    ];
    for (args, want) in cases {
        let (ok, stdout, stderr) = inspect(&args);
        assert!(!ok, "{args:?} succeeded:\n{stdout}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("storelab: error: "),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains(want), "{args:?}: {stderr:?} lacks {want:?}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // A corrupt page is shown as failing its checksum, not refused.
    let mut bytes = std::fs::read(&tree).unwrap();
    bytes[2 * 4096 + 300] ^= 0x10;
    std::fs::write(&tree, &bytes).unwrap();
    let out = inspect_ok(&["page", s(&tree), "2", "--page-size", "4KiB"]);
    assert!(out.contains("FAILS"), "{out}");
    let out = inspect_ok(&["tree", s(&tree), "--page-size", "4KiB"]);
    assert!(out.contains("checksum failures: 1"), "{out}");
}
