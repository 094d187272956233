//! Log retention: components that need log records older than the redo point.
//!
//! A checkpoint makes the data *pages* durable up to its redo LSN, and recovery of pages
//! starts there, so segments before the redo LSN are normally useless and are recycled. Some
//! components keep state that is not in pages and is rebuilt from the log by their own logical
//! replay: the LSM's memtables are the example. A memtable's records must stay in the log until
//! the memtable is written into a table, however many checkpoints happen meanwhile.
//!
//! Such a component registers a *retention hook* with [`crate::Wal::add_retention`]: a function
//! returning the oldest LSN it still needs (`None`: nothing). Recycling keeps every segment
//! from the one holding the smallest of the redo LSN and every hook's answer:
//!
//! ```text
//!   segments:   [ 3 ][ 4 ][ 5 ][ 6 ][ 7 ][ 8 ]
//!                      ^         ^         ^ insert
//!                      |         redo LSN (last checkpoint)
//!                      retention hook: the LSM's unflushed memtable starts here
//!   recycled:   [ 3 ]            (4 and 5 stay although they are before the redo LSN)
//! ```
//!
//! This is PostgreSQL's replication slot `restart_lsn` (`KeepLogSeg` in `xlog.c`) and RocksDB's
//! rule that a WAL file is deleted only once every column family has flushed the memtables
//! that hold its records (`min_log_number_to_keep`).
//!
//! # Invariants
//!
//! 1. A segment is recycled or deleted only if it lies wholly before the redo LSN and wholly
//!    before every registered hook's answer at the time of recycling.
//! 2. A hook is called by the checkpoint while it holds the log's atomic-group and checkpoint
//!    locks (not the registry's lock), so it must be quick and must not append, open an atomic
//!    group, checkpoint, or wait for a thread that may: reading an atomic is the intended use.
//! 3. A hook's answer may only grow over time (the component releases log, it never asks for
//!    log back): an answer below what an earlier checkpoint already recycled cannot be
//!    honoured. A component registers its hook before the first checkpoint that could
//!    recycle what it needs (the LSM: in `Lsm::open`, before `Wal::recover` checkpoints).
//!
//! The format on disk does not change: retention only decides *when* segments are recycled.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;
use storelab_pager::Lsn;

/// A retention hook: the oldest LSN its component still needs from the log, or `None` if it
/// needs nothing older than the redo point.
pub type RetentionFn = dyn Fn() -> Option<Lsn> + Send + Sync;

/// Names a registered hook, for [`crate::Wal::remove_retention`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RetentionId(u64);

/// The registered hooks.
#[derive(Default)]
pub(crate) struct Retention {
    state: Mutex<RetentionState>,
}

#[derive(Default)]
struct RetentionState {
    next_id: u64,
    hooks: BTreeMap<u64, Arc<RetentionFn>>,
}

impl Retention {
    pub(crate) fn add(&self, hook: Arc<RetentionFn>) -> RetentionId {
        let mut st = self.state.lock();
        let id = st.next_id;
        st.next_id += 1;
        st.hooks.insert(id, hook);
        RetentionId(id)
    }

    pub(crate) fn remove(&self, id: RetentionId) -> bool {
        self.state.lock().hooks.remove(&id.0).is_some()
    }

    /// The smallest LSN any hook needs (`None`: no hook needs anything). The hooks are called
    /// after the registry's lock is released, so a hook may remove itself.
    pub(crate) fn oldest_needed(&self) -> Option<Lsn> {
        let hooks: Vec<Arc<RetentionFn>> = self.state.lock().hooks.values().cloned().collect();
        hooks.iter().filter_map(|hook| hook()).min()
    }

    pub(crate) fn count(&self) -> usize {
        self.state.lock().hooks.len()
    }
}
