//! Op sequences decoded from the input run on a B+tree of 512-byte nodes and on a `BTreeMap`:
//! every answer (insert's duplicate error, upsert's and delete's "was present", get, range
//! scans both ways, count) must agree, and `check()` must pass at the end and after each
//! reopen (log closed, pool dropped, recovery).
//!
//! Input layout: byte 0 picks the configuration (bits 0-1: merge threshold 50, 30, 10 or 0
//! percent; bit 2: insert-point split; bit 3: a small pool of 20 frames instead of 64; bit 4:
//! start with a bulk load of as many table keys as byte 1 says, filled to the percent in byte
//! 2). The rest is up to [`OPS_MAX`] ops, each an op byte (insert, upsert, delete, get, range,
//! burst, reopen) and its arguments:
//!
//! - keys: a byte below 0x80 names one of the first 128 keys of a table of 1024 keys of 2 to
//!   38 bytes sharing prefixes in three families; a byte at or above 0x80 is followed by
//!   `len % 41` literal key bytes (keys over the 38-byte limit must be refused with
//!   `KeyTooLarge`);
//! - values: a length byte; below 200, a small value (inline or just past the inline limit);
//!   from 200, `(b - 199) * 523` bytes in an overflow chain (up to 7 pages of 4 KiB);
//! - range bounds: a kind byte (unbounded, included, excluded) and a key;
//! - a burst (seed, count, mix bytes) is up to 64 ops drawn by a PRNG over the first 32 to
//!   1024 table keys, with the share of deletes the mix byte says: a short input can build a
//!   tree of three or four levels and tear it down (libFuzzer grows inputs slowly, and this
//!   target is slow, so most inputs stay short);
//! - a reopen (at most [`REOPENS_MAX`] per input) closes the log, drops the pool unflushed and
//!   recovers; the tree must check out and hold the model.
//!
//! Each input runs in a fresh directory (in /dev/shm when there is one), with the log in
//! `CommitMode::Off`.
#![no_main]

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use storelab_btree::{BTree, BTreeConfig, Error, SplitPolicy, register_redo};
use storelab_pager::io::{IoBackend, SyncBackend};
use storelab_pager::{BufferPool, Disk, Ledger, PageSize, PoolConfig};
use storelab_wal::{CommitMode, RedoRegistry, RelId, TornPageMode, Wal, WalConfig};

const OPS_MAX: usize = 200;
const REOPENS_MAX: usize = 3;
const NODE_SIZE: usize = 512;
const REL: RelId = RelId(3);

/// One directory per fuzzing process (in memory if `/dev/shm` exists); each input gets a
/// fresh subdirectory, removed after it.
fn base_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        // Directories left by earlier fuzzing processes that are gone (libFuzzer exits
        // without running destructors) are removed.
        const PREFIX: &str = "storelab-fuzz-btree-ops-";
        for entry in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let pid = name.to_str().and_then(|n| n.strip_prefix(PREFIX));
            if let Some(pid) = pid.filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
                && !Path::new("/proc").join(pid).exists()
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
        let dir = base.join(format!("{PREFIX}{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the fuzz directory");
        dir
    })
}

fn backend() -> Arc<dyn IoBackend> {
    static BACKEND: OnceLock<Arc<dyn IoBackend>> = OnceLock::new();
    Arc::clone(BACKEND.get_or_init(|| Arc::new(SyncBackend::new())))
}

struct Db {
    tree: BTree,
    wal: Arc<Wal>,
}

fn open(dir: &Path, config: BTreeConfig, frames: usize) -> Db {
    let disk = Disk::new(backend(), Ledger::new(), PageSize::K4, false);
    let file = disk
        .open_file(&dir.join("tree.rel"), "tree", true)
        .expect("open the tree file");
    let pool =
        Arc::new(BufferPool::new(Arc::clone(&disk), PoolConfig::frames(frames)).expect("pool"));
    let mut wal_config = WalConfig::new(dir.join("wal"));
    wal_config.segment_size = 64 * 1024;
    wal_config.commit_mode = CommitMode::Off;
    wal_config.torn_page = TornPageMode::FullPageImages;
    wal_config.checkpoint_wal_bytes = 0;
    wal_config.recycle_segments_max = 1;
    let wal = Wal::open(wal_config, &disk).expect("open the log");
    wal.attach(REL, file);
    let mut redo = RedoRegistry::new();
    register_redo(&mut redo);
    wal.recover(&pool, &redo).expect("recovery");
    let tree = BTree::open(pool, Arc::clone(&wal), file, REL, config).expect("open the tree");
    Db { tree, wal }
}

/// Reads the input a byte at a time; zeros past its end.
struct Bytes<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bytes<'a> {
    fn done(&self) -> bool {
        self.at >= self.data.len()
    }
    fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let start = self.at.min(self.data.len());
        let end = (self.at + n).min(self.data.len());
        self.at += n;
        &self.data[start..end]
    }
}

/// Key `i` of the table (`i < 1024`): three families of shared prefixes, 2 to 38 bytes.
fn table_key(i: usize) -> Vec<u8> {
    let mut k = vec![b'a' + (i % 3) as u8; (i * 5) % 37];
    k.extend_from_slice(&(i as u16).to_be_bytes());
    k.truncate(38);
    k
}

fn key(b: &mut Bytes<'_>) -> Vec<u8> {
    let k = b.u8();
    if k < 0x80 {
        table_key(usize::from(k))
    } else {
        let len = usize::from(b.u8()) % 41;
        b.take(len).to_vec()
    }
}

fn value(b: &mut Bytes<'_>, op: usize) -> Vec<u8> {
    let l = b.u8();
    let len = if l < 200 {
        usize::from(l) % 60
    } else {
        usize::from(l - 199) * 523
    };
    (0..len).map(|j| (op * 37 + j * 11) as u8).collect()
}

fn bound(b: &mut Bytes<'_>) -> Bound<Vec<u8>> {
    match b.u8() % 3 {
        0 => Bound::Unbounded,
        1 => Bound::Included(key(b)),
        _ => Bound::Excluded(key(b)),
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Unbounded => Bound::Unbounded,
        Bound::Included(k) => Bound::Included(k),
        Bound::Excluded(k) => Bound::Excluded(k),
    }
}

fn within(k: &[u8], lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>) -> bool {
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Included(l) => k >= l.as_slice(),
        Bound::Excluded(l) => k > l.as_slice(),
    };
    let below = match upper {
        Bound::Unbounded => true,
        Bound::Included(u) => k <= u.as_slice(),
        Bound::Excluded(u) => k < u.as_slice(),
    };
    above && below
}

type Entries = Vec<(Vec<u8>, Vec<u8>)>;

fn scan(tree: &BTree, lower: &Bound<Vec<u8>>, upper: &Bound<Vec<u8>>, forward: bool) -> Entries {
    let cursor = if forward {
        tree.range(as_ref(lower), as_ref(upper))
    } else {
        tree.range_rev(as_ref(lower), as_ref(upper))
    };
    cursor
        .map(|e| e.unwrap_or_else(|e| panic!("scan {lower:?}..{upper:?}: {e}")))
        .collect()
}

/// The whole tree equals the model, and checks out.
fn check_all(tree: &BTree, model: &BTreeMap<Vec<u8>, Vec<u8>>, what: &str) {
    tree.check()
        .unwrap_or_else(|e| panic!("{what}: check: {e}"));
    let all = scan(tree, &Bound::Unbounded, &Bound::Unbounded, true);
    let want: Entries = model.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert!(
        all == want,
        "{what}: the tree holds {} entries, the model {}",
        all.len(),
        want.len()
    );
}

/// One op on the tree and the model.
#[derive(Debug)]
enum Op {
    Insert(Vec<u8>, Vec<u8>),
    Upsert(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Get(Vec<u8>),
    Range(Bound<Vec<u8>>, Bound<Vec<u8>>),
    Reopen,
}

impl Op {
    /// The op with values by length only.
    fn describe(&self) -> String {
        match self {
            Op::Insert(k, v) => format!("insert {k:?} ({} bytes)", v.len()),
            Op::Upsert(k, v) => format!("upsert {k:?} ({} bytes)", v.len()),
            Op::Delete(k) => format!("delete {k:?}"),
            Op::Get(k) => format!("get {k:?}"),
            Op::Range(l, u) => format!("range {l:?}..{u:?}"),
            Op::Reopen => "reopen".into(),
        }
    }
}

/// A burst: `count` ops drawn by a small PRNG from `seed` over the first `key_space` table
/// keys, deleting with probability `delete_pct` percent. Lets a short input build a tall tree
/// (a few hundred keys) and tear it down again.
fn burst(seed: u8, count: usize, key_space: usize, delete_pct: u64, first_op: usize) -> Vec<Op> {
    let mut x = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|i| {
            let r = next();
            let k = table_key((r >> 8) as usize % key_space);
            if r % 100 < delete_pct {
                return Op::Delete(k);
            }
            let len = match (r >> 40) % 32 {
                0 => ((r >> 45) % 12_000) as usize,
                1..=4 => 30 + ((r >> 45) % 30) as usize,
                _ => ((r >> 45) % 14) as usize,
            };
            let v = (0..len)
                .map(|j| ((first_op + i) * 37 + j * 11) as u8)
                .collect();
            if (r >> 32) & 1 == 0 {
                Op::Upsert(k, v)
            } else {
                Op::Insert(k, v)
            }
        })
        .collect()
}

struct Run<'d> {
    dir: &'d Path,
    config: BTreeConfig,
    frames: usize,
    db: Db,
    model: BTreeMap<Vec<u8>, Vec<u8>>,
    reopens: usize,
}

impl Run<'_> {
    fn apply(&mut self, op: Op, what: &str) {
        let key_max = self.db.tree.key_size_max();
        let tree = &self.db.tree;
        let model = &mut self.model;
        match op {
            Op::Insert(k, v) => match tree.insert(&k, &v) {
                Err(Error::KeyTooLarge { .. }) => assert!(k.len() > key_max, "{what}"),
                Err(Error::DuplicateKey) => assert!(model.contains_key(&k), "{what}"),
                Ok(()) => {
                    assert!(k.len() <= key_max, "{what}: key too long accepted");
                    assert!(model.insert(k, v).is_none(), "{what}: duplicate accepted");
                }
                Err(e) => panic!("{what}: insert: {e}"),
            },
            Op::Upsert(k, v) => match tree.upsert(&k, &v) {
                Err(Error::KeyTooLarge { .. }) => assert!(k.len() > key_max, "{what}"),
                Ok(existed) => {
                    assert!(k.len() <= key_max, "{what}: key too long accepted");
                    assert_eq!(existed, model.insert(k, v).is_some(), "{what}: upsert");
                }
                Err(e) => panic!("{what}: upsert: {e}"),
            },
            Op::Delete(k) => {
                let present = tree
                    .delete(&k)
                    .unwrap_or_else(|e| panic!("{what}: delete: {e}"));
                assert_eq!(present, model.remove(&k).is_some(), "{what}: delete");
            }
            Op::Get(k) => {
                let got = tree.get(&k).unwrap_or_else(|e| panic!("{what}: get: {e}"));
                assert_eq!(got.as_ref(), model.get(&k), "{what}: get");
            }
            Op::Range(lower, upper) => {
                let want: Entries = model
                    .iter()
                    .filter(|(k, _)| within(k, &lower, &upper))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let forward = scan(tree, &lower, &upper, true);
                assert!(forward == want, "{what}: range {lower:?}..{upper:?}");
                let mut backward = scan(tree, &lower, &upper, false);
                backward.reverse();
                assert!(backward == want, "{what}: range_rev {lower:?}..{upper:?}");
                let n = tree
                    .count(as_ref(&lower), as_ref(&upper))
                    .unwrap_or_else(|e| panic!("{what}: count: {e}"));
                assert_eq!(n as usize, want.len(), "{what}: count");
            }
            Op::Reopen => {
                // Close the log, drop the pool unflushed, recover.
                if self.reopens == REOPENS_MAX {
                    return;
                }
                self.reopens += 1;
                self.db
                    .wal
                    .close()
                    .unwrap_or_else(|e| panic!("{what}: close: {e}"));
                self.db = open(self.dir, self.config, self.frames);
                check_all(&self.db.tree, &self.model, &format!("{what}: after reopen"));
            }
        }
    }
}

fn run(data: &[u8], dir: &Path) {
    let mut b = Bytes { data, at: 0 };
    let head = b.u8();
    let mut config = BTreeConfig {
        node_size: Some(NODE_SIZE),
        split: if head & 4 == 0 {
            SplitPolicy::Middle
        } else {
            SplitPolicy::InsertPoint
        },
        merge_threshold_pct: [50, 30, 10, 0][usize::from(head & 3)],
        leaf_fill_pct: 90,
    };
    let frames = if head & 8 == 0 { 64 } else { 20 };
    let mut model = BTreeMap::new();
    let bulk = if head & 16 != 0 {
        // A bulk load first, of up to 255 table keys, into a tree created with the fill given.
        let n = usize::from(b.u8());
        config.leaf_fill_pct = b.u8() % 100 + 1;
        Some(n)
    } else {
        None
    };
    let db = open(dir, config, frames);
    if let Some(n) = bulk {
        let mut entries: Entries = (0..n)
            .map(|i| (table_key(i), (0..i % 50).map(|j| (i + j) as u8).collect()))
            .collect();
        entries.sort();
        let loaded = db.tree.bulk_load(entries.clone()).expect("bulk load");
        assert_eq!(loaded as usize, n);
        model.extend(entries);
    }
    let mut run = Run {
        dir,
        config,
        frames,
        db,
        model,
        reopens: 0,
    };
    let mut op = 0;
    while op < OPS_MAX && !b.done() {
        let ops = match b.u8() % 10 {
            0 | 1 => vec![Op::Insert(key(&mut b), value(&mut b, op))],
            2 | 3 => vec![Op::Upsert(key(&mut b), value(&mut b, op))],
            4 | 5 => vec![Op::Delete(key(&mut b))],
            6 => vec![Op::Get(key(&mut b))],
            7 => vec![Op::Range(bound(&mut b), bound(&mut b))],
            8 => {
                let (seed, count, mix) = (b.u8(), usize::from(b.u8() % 64) + 1, b.u8());
                let key_space = [32, 128, 512, 1024][usize::from(mix & 3)];
                let delete_pct = u64::from(mix >> 2) * 100 / 63;
                burst(seed, count.min(OPS_MAX - op), key_space, delete_pct, op)
            }
            _ => vec![Op::Reopen],
        };
        for o in ops {
            let what = format!("op {op} {}", o.describe());
            run.apply(o, &what);
            op += 1;
        }
    }
    check_all(&run.db.tree, &run.model, "at the end");
    let _ = run.db.wal.close();
}

fuzz_target!(|data: &[u8]| {
    static INPUT: AtomicU64 = AtomicU64::new(0);
    let dir = base_dir().join(INPUT.fetch_add(1, Ordering::Relaxed).to_string());
    std::fs::create_dir_all(&dir).expect("mkdir");
    // Removed even if the input fails (libFuzzer exits on a panic, so only for neatness).
    struct Cleanup<'a>(&'a Path);
    impl Drop for Cleanup<'_> {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0);
        }
    }
    let _cleanup = Cleanup(&dir);
    run(data, &dir);
});
