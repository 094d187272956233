//! Golden tests of `storelab inspect`: the text output of every subcommand on a small
//! deterministic B+tree file, a small heap database and a small clustered-lsm database is
//! compared with the files under `testscripts/inspect/` (STYLE.md section 7).
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
//! the golden files. Bad input (not a page file, a page past the end, a wrong page size, a
//! damaged table or manifest) must give a one-line error and exit status 1, or be shown as
//! failing, never a panic.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use storelab_btree::{BTree, BTreeConfig, SplitPolicy, register_redo};
use storelab_clustered::{ClusteredLsmEngine, LsmConfig, LsmOptions};
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

/// A clustered-lsm database with one table (a primary key and one secondary index) in a tree
/// of tiny memtables, blocks and tables whose flushes and compactions run inline, in the
/// writer (`LsmOptions::tiny`): inserts, updates and deletes leave tables in L0 and deeper
/// levels, tombstones among them, and the last writes only in the log (the tree is not
/// flushed at close).
fn build_lsm_db(dir: &Path) -> PathBuf {
    let db = dir.join("lsmdb");
    let config = StorageConfig {
        page_size: PageSize::K4,
        pool_bytes: 4 << 20,
        checkpoint_wal_bytes: 0,
        wal_segment_size: 1 << 20,
        ..StorageConfig::default()
    };
    // L0 compacts at 4 tables rather than 2, so that L0 holds tables at the end.
    let options = LsmOptions {
        lsm: LsmConfig {
            l0_compaction_trigger: 4,
            ..LsmConfig::tiny()
        },
    };
    let e = ClusteredLsmEngine::open(&db, &config, options).unwrap();
    let schema = Schema::builder("t")
        .column("id", ColumnType::Int64)
        .column("v", ColumnType::Int64)
        .column("pad", ColumnType::Text)
        .primary_key(&["id"])
        .index("by_v", &["v"], false)
        .build()
        .unwrap();
    let t = e.create_table(schema).unwrap();
    let pad = |n: i64| Value::Text(format!("{n:03}{}", "p".repeat(24)));
    // Keys in a scrambled but fixed order (i * 37 mod 300), so flushed tables overlap.
    for i in 0..300 {
        let id = (i * 37) % 300;
        t.insert(vec![Value::Int(id), Value::Int(id * 10), pad(id)])
            .unwrap();
    }
    for id in (0..300).step_by(7) {
        assert!(t.delete(&[Value::Int(id)]).unwrap());
    }
    for id in (1..300).step_by(11).filter(|id| id % 7 != 0) {
        assert!(
            t.update(&[Value::Int(id)], &[(1, Value::Int(-id))])
                .unwrap()
        );
    }
    // The memtable into an L0 table, then a few writes that stay in the log only.
    e.lsm().flush().unwrap();
    for id in 300..303 {
        t.insert(vec![Value::Int(id), Value::Int(id * 10), pad(id)])
            .unwrap();
    }
    drop(t);
    drop(e);
    db
}

/// The first table of `level` (`"L1"`) as `inspect lsm` lists it.
fn first_table(lsm_text: &str, level: &str) -> String {
    let header = format!("\n{level}: ");
    let start = lsm_text.find(&header).expect("the level has tables");
    let rest = &lsm_text[start + 1..];
    let table_line = rest.lines().nth(1).unwrap();
    table_line.split_whitespace().next().unwrap().to_string()
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

/// Every file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
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
}

/// Running the same inspection twice gives the same bytes, and inspecting changes no file.
#[test]
fn inspect_is_read_only_and_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_heap_db(dir.path());
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
/// the end, a wrong page size, a B+tree command on a heap, a missing directory, an LSM
/// command on a heap database or a heap file.
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
        (vec!["lsm", s(&db)], "no LSM tree"),
        (vec!["lsm", s(&missing)], "not a directory"),
        (vec!["sst", s(&missing)], "missing"),
        (vec!["sst", s(&heap)], "not a storelab table"),
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

/// An LSM database: `inspect db` shows the tree's levels and tables with key ranges from its
/// manifest, `inspect lsm` the same in detail (given the database or the tree's directory),
/// `inspect sst` one table's footer, filter, index and blocks.
#[test]
fn lsm_database_matches_golden() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_lsm_db(dir.path());
    let db_text = inspect_ok(&["db", s(&db)]);
    assert!(db_text.contains("L0: "), "{db_text}");
    assert!(db_text.contains("L1: "), "{db_text}");
    assert!(db_text.contains("[t.primary]"), "{db_text}");
    golden("lsm-db.txt", &db_text);
    let lsm_text = inspect_ok(&["lsm", s(&db)]);
    assert!(!lsm_text.contains("FAILS"), "{lsm_text}");
    assert_eq!(
        lsm_text.matches("footer agrees").count(),
        lsm_text.matches("smallest  ").count(),
        "{lsm_text}"
    );
    golden("lsm.txt", &lsm_text);
    assert_eq!(inspect_ok(&["lsm", s(&db.join("lsm"))]), lsm_text);
    // L1's first table: below L0, above the last level, so it keeps tombstones.
    let table = first_table(&lsm_text, "L1");
    let sst_text = inspect_ok(&["sst", s(&db.join("lsm").join(&table))]);
    assert!(sst_text.contains("problems: none"), "{sst_text}");
    assert!(!sst_text.contains(" 0 tombstones"), "{sst_text}");
    assert!(sst_text.contains("agrees with the manifest"), "{sst_text}");
    golden("lsm-sst.txt", &sst_text);
    // Every live table reads back whole and clean.
    for line in lsm_text.lines().filter(|l| l.ends_with("footer agrees")) {
        let name = line.split_whitespace().next().unwrap();
        let out = inspect_ok(&["sst", s(&db.join("lsm").join(name))]);
        assert!(out.contains("problems: none"), "{out}");
    }
}

/// Inspecting an LSM database changes no file and gives the same bytes twice.
#[test]
fn lsm_inspect_is_read_only_and_repeatable() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_lsm_db(dir.path());
    let before = snapshot(&db);
    let lsm_text = inspect_ok(&["lsm", s(&db)]);
    let table = db.join("lsm").join(first_table(&lsm_text, "L1"));
    let runs: Vec<Vec<String>> = (0..2)
        .map(|_| {
            vec![
                inspect_ok(&["db", s(&db)]),
                inspect_ok(&["lsm", s(&db)]),
                inspect_ok(&["sst", s(&table)]),
            ]
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    assert!(before == snapshot(&db), "inspect changed a file");
}

/// Runs `storelab inspect ARGS` on input that may be damaged: it must succeed or fail with a
/// one-line error, never panic. Returns (success, stdout, stderr).
fn inspect_damaged(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .arg("inspect")
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{args:?}: status {:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    if !out.status.success() {
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("storelab: error: "),
            "{args:?}: {stderr}"
        );
    }
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
    )
}

/// Damaged tables and manifests: a damaged data block is shown as failing, a damaged footer,
/// a cut-short table, a file that is not a table and a damaged manifest are one-line errors
/// (`inspect db` still shows the catalog and files), and a flipped byte anywhere in a table
/// or the manifest, or a cut at any length, never panics.
#[test]
fn damaged_lsm_files_are_errors_or_shown_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let db = build_lsm_db(dir.path());
    let lsm = db.join("lsm");
    let lsm_text = inspect_ok(&["lsm", s(&db)]);
    let table = lsm.join(first_table(&lsm_text, "L1"));
    let t = s(&table);
    let clean = std::fs::read(&table).unwrap();
    let logical = clean.iter().rposition(|&b| b != 0).unwrap() + 1;

    // A flipped byte in the first data block: shown as failing, with the problems listed.
    let mut bytes = clean.clone();
    bytes[20] ^= 0x40;
    std::fs::write(&table, &bytes).unwrap();
    let (ok, out, _) = inspect_damaged(&["sst", t]);
    assert!(ok);
    assert!(out.contains("FAILS"), "{out}");
    assert!(!out.contains("problems: none"), "{out}");
    let (ok, out, _) = inspect_damaged(&["lsm", s(&db)]);
    assert!(ok, "a data block is not read by inspect lsm: {out}");

    // A flipped byte in the footer: an error naming the footer; inspect lsm shows it.
    let mut bytes = clean.clone();
    bytes[logical - 30] ^= 0x40;
    std::fs::write(&table, &bytes).unwrap();
    let (ok, _, err) = inspect_damaged(&["sst", t]);
    assert!(!ok && err.contains("footer"), "{err}");
    let (ok, out, _) = inspect_damaged(&["lsm", s(&db)]);
    assert!(ok && out.contains("FOOTER FAILS"), "{out}");

    // Cut short: the manifest's size is past the end.
    std::fs::write(&table, &clean[..100]).unwrap();
    let (ok, _, err) = inspect_damaged(&["sst", t]);
    assert!(!ok && err.contains("the manifest says"), "{err}");
    std::fs::write(&table, &clean).unwrap();

    // Not a table, and no manifest beside it.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let (ok, _, err) = inspect_damaged(&["lsm", s(&elsewhere)]);
    assert!(!ok && err.contains("not an LSM tree"), "{err}");
    let stray = elsewhere.join("000001.sst");
    std::fs::write(
        &stray,
        b"not a table at all, but long enough to hold a footer of 64 bytes",
    )
    .unwrap();
    let (ok, _, err) = inspect_damaged(&["sst", s(&stray)]);
    assert!(!ok && err.contains("not a storelab table"), "{err}");
    let (ok, _, err) = inspect_damaged(&["sst", s(dir.path())]);
    assert!(!ok && err.contains("not a file"), "{err}");
    let (ok, _, err) = inspect_damaged(&["lsm", s(&elsewhere)]);
    assert!(!ok && err.contains("no valid manifest"), "{err}");

    // Every byte of the table flipped in turn (a stride keeps the test short), every cut.
    let step = (logical / 150).max(1);
    for at in (0..logical).step_by(step) {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(&table, &bytes).unwrap();
        inspect_damaged(&["sst", t]);
    }
    for len in (0..logical).step_by(step * 3) {
        std::fs::write(&table, &clean[..len]).unwrap();
        inspect_damaged(&["sst", t]);
    }
    std::fs::write(&table, &clean).unwrap();

    // The manifest: a damaged record followed by more is an error of inspect lsm; inspect db
    // shows it in place of the levels. Then flips across its records never panic.
    let manifest = std::fs::read_dir(&lsm)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| s(p).contains("MANIFEST-"))
        .unwrap();
    let clean_manifest = std::fs::read(&manifest).unwrap();
    let mut bytes = clean_manifest.clone();
    bytes[16 + 8 + 3] ^= 0x01;
    std::fs::write(&manifest, &bytes).unwrap();
    let (ok, _, err) = inspect_damaged(&["lsm", s(&db)]);
    assert!(!ok && err.contains("corrupt manifest"), "{err}");
    let (ok, out, _) = inspect_damaged(&["db", s(&db)]);
    assert!(ok && out.contains("cannot read its manifest"), "{out}");
    let written = clean_manifest.iter().rposition(|&b| b != 0).unwrap() + 1;
    for at in (0..written).step_by((written / 150).max(1)) {
        let mut bytes = clean_manifest.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(&manifest, &bytes).unwrap();
        inspect_damaged(&["lsm", s(&db)]);
    }
}
