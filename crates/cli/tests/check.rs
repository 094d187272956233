//! `storelab check` on a real B+tree file and WAL directory, intact and corrupted.

use std::process::Command;
use std::sync::Arc;

use storelab_btree::{BTree, BTreeConfig, register_redo};
use storelab_pager::io::SyncBackend;
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{RedoRegistry, RelId, Wal, WalConfig};

fn build_tree(dir: &std::path::Path) {
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K8,
        false,
    );
    let file = disk.open_file(&dir.join("t.rel"), "t", true).unwrap();
    let pool = Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(256)).unwrap());
    let mut config = WalConfig::new(dir.join("wal"));
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
        BTreeConfig::default(),
    )
    .unwrap();
    tree.bulk_load((0..3000u32).map(|i| (i.to_be_bytes().to_vec(), vec![7u8; 100])))
        .unwrap();
    wal.checkpoint(&pool).unwrap();
    wal.close().unwrap();
}

fn check(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .arg("check")
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// An intact tree and log pass, with the tree's shape in the report; a flipped bit fails with
/// the page named, and a non-zero exit.
#[test]
fn check_reports_intact_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    build_tree(dir.path());
    let file = dir.path().join("t.rel");
    let wal = dir.path().join("wal");
    let (ok, text) = check(&[
        file.to_str().unwrap(),
        "--wal",
        wal.to_str().unwrap(),
        "--segment-size",
        "1MiB",
    ]);
    assert!(ok, "{text}");
    assert!(
        text.contains("B+tree ok") && text.contains("3000 entries"),
        "{text}"
    );
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[8192 * 2 + 500] ^= 1;
    std::fs::write(&file, &bytes).unwrap();
    let (ok, text) = check(&[file.to_str().unwrap()]);
    assert!(!ok, "{text}");
    assert!(
        text.contains("checksum mismatch") && text.contains("page 2"),
        "{text}"
    );
    let (ok, text) = check(&[]);
    assert!(!ok && text.contains("nothing to check"), "{text}");
}

/// `storelab check --db` opens a heap database directory and verifies every table; a flipped
/// byte in a heap page is reported as a failure naming the file, not a panic.
#[test]
fn check_db_verifies_a_heap_database() {
    use storelab_table::{ColumnType, Engine, Schema, Value};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    {
        let config = storelab_table::StorageConfig {
            page_size: PageSize::K8,
            ..storelab_table::StorageConfig::default()
        };
        let e = storelab_heap::HeapEngine::open(&db, &config, Default::default()).unwrap();
        let schema = Schema::builder("t")
            .column("id", ColumnType::Int64)
            .column("name", ColumnType::Text)
            .primary_key(&["id"])
            .index("by_name", &["name"], false)
            .build()
            .unwrap();
        let t = e.create_table(schema).unwrap();
        t.load(&mut (0..2000).map(|i| vec![Value::Int(i), Value::Text(format!("n{i}"))]))
            .unwrap();
        e.checkpoint().unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args(["check", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("heap database, 1 table(s) checked; t: 2000 rows"),
        "{stdout}"
    );

    // Corrupt a byte in the middle of heap page 3.
    let heap = db.join("t1.heap");
    let mut bytes = std::fs::read(&heap).unwrap();
    bytes[3 * 8192 + 4000] ^= 0x40;
    std::fs::write(&heap, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_storelab"))
        .args(["check", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("t1.heap"),
        "{stdout}"
    );
}
