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
