//! Model-based test: random page writes, reads, allocations, evictions, flushes and reopens
//! through a tiny pool, against a `HashMap` of what each page should hold. `check()` runs after
//! every operation. Failing cases are minimised by proptest and kept in `proptest-regressions/`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use proptest::prelude::*;
use storelab_pager::buffer_pool::PolicyKind;
use storelab_pager::io::SyncBackend;
use storelab_pager::{BufferPool, Disk, FileId, Ledger, PageId, PageSize, PageType, PoolConfig};

#[derive(Clone, Debug)]
enum Op {
    /// Allocate a new page and write `value` into it.
    New { value: u64 },
    /// Overwrite the body of an existing page (index modulo the page count).
    Write { page: usize, value: u64 },
    /// Read an existing page and compare with the model.
    Read { page: usize },
    /// Drop every clean page of the file from the pool.
    Evict,
    /// Write back and sync everything.
    Flush,
    /// Flush, close the pool and the disk, and open them again.
    Reopen,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => any::<u64>().prop_map(|value| Op::New { value }),
        4 => (any::<usize>(), any::<u64>()).prop_map(|(page, value)| Op::Write { page, value }),
        4 => any::<usize>().prop_map(|page| Op::Read { page }),
        1 => Just(Op::Evict),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
    ]
}

fn open(path: &Path, frames: usize, policy: PolicyKind) -> (BufferPool, FileId) {
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        PageSize::K4,
        false,
    );
    let file = disk.open_file(path, "model", true).unwrap();
    (
        BufferPool::new(
            disk,
            PoolConfig {
                frame_count: frames,
                policy,
            },
        )
        .unwrap(),
        file,
    )
}

fn value_of(body: &[u8]) -> u64 {
    u64::from_le_bytes(body[..8].try_into().unwrap())
}

fn run(ops: Vec<Op>, frames: usize, policy: PolicyKind) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.rel");
    let (mut pool, mut file) = open(&path, frames, policy);
    let mut model: HashMap<PageId, u64> = HashMap::new();
    for op in ops {
        let count = model.len();
        match op {
            Op::New { value } => {
                let mut page = pool.new_page(file, PageType::RAW).unwrap();
                prop_assert_eq!(page.page_id(), PageId(count as u64));
                page.body_mut()[..8].copy_from_slice(&value.to_le_bytes());
                model.insert(page.page_id(), value);
            }
            Op::Write { page, value } if count > 0 => {
                let id = PageId((page % count) as u64);
                let mut guard = pool.write(file, id).unwrap();
                guard.body_mut()[..8].copy_from_slice(&value.to_le_bytes());
                model.insert(id, value);
            }
            Op::Read { page } if count > 0 => {
                let id = PageId((page % count) as u64);
                let guard = pool.read(file, id).unwrap();
                prop_assert_eq!(value_of(guard.body()), model[&id], "page {}", id);
            }
            Op::Write { .. } | Op::Read { .. } => {}
            Op::Evict => pool.evict_file(file).unwrap(),
            Op::Flush => pool.flush_all().unwrap(),
            Op::Reopen => {
                pool.flush_all().unwrap();
                drop(pool);
                (pool, file) = open(&path, frames, policy);
                prop_assert_eq!(pool.disk().page_count(file).unwrap(), count as u64);
            }
        }
        pool.check()
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    for (id, value) in &model {
        prop_assert_eq!(value_of(pool.read(file, *id).unwrap().body()), *value);
    }
    Ok(())
}

fn cases() -> u32 {
    if std::env::var_os("STORELAB_LONG").is_some() {
        2000
    } else {
        64
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// Clock sweep, three frames: the pool always returns the last value written to a page.
    #[test]
    fn pool_matches_model_clock(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, 3, PolicyKind::ClockSweep)?;
    }

    /// LRU, two frames: the same property with the other policy and even more pressure.
    #[test]
    fn pool_matches_model_lru(ops in prop::collection::vec(op(), 1..120)) {
        run(ops, 2, PolicyKind::Lru)?;
    }
}
