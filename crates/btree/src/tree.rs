//! `BTree`: search, insert, delete, splits and merges, with write-ahead logging.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use storelab_pager::page::{PAGE_HEADER_SIZE, PageHeader};
use storelab_pager::{BufferPool, FileId, Lsn, PageId, PageReadGuard, PageType, PageWriteGuard};
use storelab_wal::{AtomicGroup, BLOCKS_PER_RECORD_MAX, RecordBuilder, RecordType, RelId, Wal};

use crate::error::{Error, Result};
use crate::node::{
    self, LeafValue, NO_PAGE, NodeMut, NodeRef, get_u16, get_u64, internal_cell, leaf_cell,
    overflow_cell, put_u16, put_u64,
};

/// The deepest tree a descent follows; a longer path means a cycle in a corrupt file.
pub const BTREE_DEPTH_MAX: usize = 16;
/// The largest value accepted (values above the inline limit go to overflow pages).
pub const VALUE_SIZE_MAX: usize = 16 << 20;
/// Retries of a reader that found the root moved under it before giving up.
const ROOT_RETRY_MAX: usize = 1000;

/// Page type of the meta page (page 0).
pub const META_PAGE: PageType = PageType(16);
/// Page type of a node.
pub const NODE_PAGE: PageType = PageType(17);
/// Page type of an overflow page.
pub const OVERFLOW_PAGE: PageType = PageType(18);
/// Page type of a page on the free list.
pub const FREE_PAGE: PageType = PageType(19);

const META_MAGIC: [u8; 8] = *b"SLBTREE1";
const META_MAGIC_OFFSET: usize = PAGE_HEADER_SIZE;
const META_VERSION_OFFSET: usize = META_MAGIC_OFFSET + 8;
const META_NODE_SIZE_OFFSET: usize = META_VERSION_OFFSET + 2;
const META_ROOT_OFFSET: usize = META_NODE_SIZE_OFFSET + 2;
const META_FREE_OFFSET: usize = META_ROOT_OFFSET + 8;
const BTREE_FORMAT_VERSION: u16 = 2;

/// Byte offset of an overflow page's next page.
pub const OVERFLOW_NEXT_OFFSET: usize = PAGE_HEADER_SIZE;
/// Byte offset of an overflow page's data length.
pub const OVERFLOW_LEN_OFFSET: usize = OVERFLOW_NEXT_OFFSET + 8;
/// Byte offset of an overflow page's data.
pub const OVERFLOW_DATA_OFFSET: usize = OVERFLOW_LEN_OFFSET + 4;
/// Byte offset of a free page's next free page.
const FREE_NEXT_OFFSET: usize = PAGE_HEADER_SIZE;

/// WAL record: insert a cell into a leaf (`node_size u16 | slot u16 | cell`).
pub const REC_INSERT: RecordType = RecordType(16);
/// WAL record: remove a leaf cell (`node_size u16 | slot u16`).
pub const REC_DELETE: RecordType = RecordType(17);
/// WAL record: replace a leaf cell (`node_size u16 | slot u16 | cell`).
pub const REC_REPLACE: RecordType = RecordType(18);
/// WAL record: a structural change, every page logged as an image.
pub const REC_STRUCTURE: RecordType = RecordType(19);

/// Where a full leaf splits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SplitPolicy {
    /// Half the bytes to each side.
    #[default]
    Middle,
    /// At the insertion point when inserting past the last key of the rightmost leaf (the
    /// ascending-key case: PostgreSQL's rightmost fastpath, InnoDB's split at the insert
    /// point), so the left leaf stays full; else in the middle.
    InsertPoint,
}

impl std::str::FromStr for SplitPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "middle" => Ok(SplitPolicy::Middle),
            "insert-point" | "insert_point" => Ok(SplitPolicy::InsertPoint),
            other => Err(Error::InvalidArgument(format!(
                "unknown split policy {other:?} (middle or insert-point)"
            ))),
        }
    }
}

/// Settings of one tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BTreeConfig {
    /// Bytes of each page used by a node (`None`: the whole page). Smaller nodes make deep
    /// trees from few keys, for tests.
    pub node_size: Option<usize>,
    /// Leaf split point.
    pub split: SplitPolicy,
    /// A node below this fill (percent) after a delete is merged with its right sibling if the
    /// two fit in one (InnoDB's `MERGE_THRESHOLD`, default 50).
    pub merge_threshold_pct: u8,
    /// Bulk load fills leaves to this percent (InnoDB's `innodb_fill_factor`).
    pub leaf_fill_pct: u8,
}

impl Default for BTreeConfig {
    fn default() -> Self {
        BTreeConfig {
            node_size: None,
            split: SplitPolicy::Middle,
            merge_threshold_pct: 50,
            leaf_fill_pct: 90,
        }
    }
}

/// Shape and activity of a tree.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BTreeStats {
    /// Levels (1 for a single leaf).
    pub height: usize,
    /// Leaf nodes.
    pub leaf_count: u64,
    /// Internal nodes.
    pub internal_count: u64,
    /// Overflow pages.
    pub overflow_count: u64,
    /// Pages on the free list.
    pub free_count: u64,
    /// Entries.
    pub entry_count: u64,
    /// Average leaf fill: bytes of entries (cells and slots) and fence keys over the leaf
    /// capacity (node size less the node header).
    pub leaf_fill: f64,
    /// Node splits since open.
    pub split_count: u64,
    /// Node merges since open.
    pub merge_count: u64,
}

/// A B+tree in one page file. See the crate documentation for the design.
pub struct BTree {
    pub(crate) pool: Arc<BufferPool>,
    pub(crate) wal: Arc<Wal>,
    pub(crate) file: FileId,
    pub(crate) rel: RelId,
    pub(crate) node_size: usize,
    pub(crate) config: BTreeConfig,
    writer: Mutex<()>,
    split_count: AtomicU64,
    merge_count: AtomicU64,
}

impl std::fmt::Debug for BTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BTree")
            .field("file", &self.file)
            .field("rel", &self.rel)
            .finish()
    }
}

/// The outcome of a change attempted under the writer lock.
enum Logged<T> {
    /// Done and logged.
    Done(T),
    /// Nothing changed: the change may log more pages than one record holds, so it must be
    /// retried inside an atomic group.
    NeedsGroup,
}

/// How `put` treats an existing key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PutMode {
    Insert,
    Upsert,
}

impl BTree {
    /// Opens the tree in `file` (creating it if the file is empty), logging as relation `rel`.
    /// The file must be attached to the log and recovered before (see `Wal::recover`).
    pub fn open(
        pool: Arc<BufferPool>,
        wal: Arc<Wal>,
        file: FileId,
        rel: RelId,
        config: BTreeConfig,
    ) -> Result<BTree> {
        let page_size = pool.page_size();
        let node_size = config.node_size.unwrap_or(page_size);
        if !(512..=page_size).contains(&node_size) {
            return Err(Error::InvalidArgument(format!(
                "node size {node_size} must be in 512..={page_size}"
            )));
        }
        if !(1..=100).contains(&config.leaf_fill_pct) || config.merge_threshold_pct > 50 {
            return Err(Error::InvalidArgument(
                "leaf fill must be 1..=100 percent and the merge threshold at most 50".into(),
            ));
        }
        wal.attach(rel, file);
        let tree = BTree {
            pool,
            wal,
            file,
            rel,
            node_size,
            config,
            writer: Mutex::new(()),
            split_count: AtomicU64::new(0),
            merge_count: AtomicU64::new(0),
        };
        let validator_size = node_size;
        tree.pool.set_validator(
            file,
            Arc::new(move |page_id, bytes| validate_page(page_id, bytes, validator_size)),
        );
        if tree.pool.disk().page_count(file)? == 0 {
            tree.create()?;
        } else {
            let meta = tree.pool.read(file, PageId(0))?;
            let stored = get_u16(&meta, META_NODE_SIZE_OFFSET) as usize;
            if stored != node_size {
                return Err(Error::InvalidArgument(format!(
                    "tree was created with node size {stored}, opened with {node_size}"
                )));
            }
        }
        Ok(tree)
    }

    fn create(&self) -> Result<()> {
        let _w = self.writer.lock();
        let mut meta = self.pool.new_page(self.file, META_PAGE)?;
        let mut root = self.pool.new_page(self.file, NODE_PAGE)?;
        assert_eq!(meta.page_id(), PageId(0), "meta page is page 0");
        NodeMut::new(&mut root, self.node_size).init(0, None, None, NO_PAGE, NO_PAGE);
        meta[META_MAGIC_OFFSET..META_MAGIC_OFFSET + 8].copy_from_slice(&META_MAGIC);
        put_u16(&mut meta, META_VERSION_OFFSET, BTREE_FORMAT_VERSION);
        put_u16(&mut meta, META_NODE_SIZE_OFFSET, self.node_size as u16);
        put_u64(&mut meta, META_ROOT_OFFSET, root.page_id().0);
        put_u64(&mut meta, META_FREE_OFFSET, NO_PAGE);
        let end = self.log_images(&mut [&mut meta, &mut root])?;
        drop((meta, root));
        self.wal.commit(end)?;
        Ok(())
    }

    /// The tree's file.
    pub fn file(&self) -> FileId {
        self.file
    }

    /// The node size in bytes.
    pub fn node_size(&self) -> usize {
        self.node_size
    }

    /// The largest key accepted.
    pub fn key_size_max(&self) -> usize {
        node::key_size_max(self.node_size)
    }

    /// The root node's page, from the meta page (for readers that walk the tree themselves,
    /// such as the clustered engine's leaf read-ahead). The meta page's magic is checked here
    /// and its version by the file's page validator.
    pub fn root_page(&self) -> Result<PageId> {
        Ok(PageId(self.meta()?.0))
    }

    /// The buffer pool.
    pub fn pool(&self) -> &Arc<BufferPool> {
        &self.pool
    }

    pub(crate) fn corrupt(&self, page_id: PageId, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            file: self
                .pool
                .disk()
                .path(self.file)
                .unwrap_or_else(|_| PathBuf::from("?")),
            page_id,
            reason: reason.into(),
        }
    }

    fn root_id(&self) -> Result<u64> {
        let meta = self.pool.read(self.file, PageId(0))?;
        Ok(get_u64(&meta, META_ROOT_OFFSET))
    }

    /// Read-latches a node page, checking it is one.
    pub(crate) fn read_node(&self, id: u64) -> Result<PageReadGuard<'_>> {
        let g = self.pool.read(self.file, PageId(id))?;
        if g.header().page_type != NODE_PAGE {
            return Err(self.corrupt(
                PageId(id),
                format!(
                    "expected a node, found page type {}",
                    g.header().page_type.0
                ),
            ));
        }
        Ok(g)
    }

    fn write_node(&self, id: u64) -> Result<PageWriteGuard<'_>> {
        let g = self.pool.write(self.file, PageId(id))?;
        if g.header().page_type != NODE_PAGE {
            return Err(self.corrupt(
                PageId(id),
                format!(
                    "expected a node, found page type {}",
                    g.header().page_type.0
                ),
            ));
        }
        Ok(g)
    }

    /// Descends with read-latch coupling to the leaf covering `key`.
    ///
    /// The meta page is released before the root is latched (so a reader never waits while
    /// holding it); if the root moved in between, the node found is not a root (it has a
    /// fence) and the descent restarts.
    pub(crate) fn find_leaf(&self, key: &[u8]) -> Result<PageReadGuard<'_>> {
        let root = self.read_root()?;
        self.descend(root, key)
    }

    /// Read-latches the root. The meta page is released before the root is latched, so a
    /// reader never waits while holding it; if the root moved in between (a root split or
    /// collapse), the node found is not a root (it has a fence, or is no longer a node) and the
    /// read is retried.
    pub(crate) fn read_root(&self) -> Result<PageReadGuard<'_>> {
        for _ in 0..ROOT_RETRY_MAX {
            let root = self.root_id()?;
            let guard = self.pool.read(self.file, PageId(root))?;
            let is_root = guard.header().page_type == NODE_PAGE && {
                let n = NodeRef::new(&guard, self.node_size);
                n.low_fence().is_none() && n.high_fence().is_none()
            };
            if !is_root {
                continue;
            }
            return Ok(guard);
        }
        Err(self.corrupt(PageId(0), "the root keeps moving"))
    }

    pub(crate) fn descend<'a>(
        &'a self,
        mut guard: PageReadGuard<'a>,
        key: &[u8],
    ) -> Result<PageReadGuard<'a>> {
        for _ in 0..BTREE_DEPTH_MAX {
            let node = NodeRef::new(&guard, self.node_size);
            if node.is_leaf() {
                return Ok(guard);
            }
            let level = node.level();
            let (_, child) = node.child_for(key);
            let next = self.read_node(child)?;
            if NodeRef::new(&next, self.node_size).level() + 1 != level {
                return Err(self.corrupt(next.page_id(), "child level is not parent level - 1"));
            }
            guard = next;
        }
        Err(self.corrupt(
            guard.page_id(),
            format!("descent deeper than {BTREE_DEPTH_MAX}"),
        ))
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let leaf = self.find_leaf(key)?;
        let node = NodeRef::new(&leaf, self.node_size);
        match node.search(key) {
            Ok(i) => Ok(Some(self.read_value(node.value(i))?)),
            Err(_) => Ok(None),
        }
    }

    /// A leaf value's bytes, following an overflow chain if needed.
    pub(crate) fn read_value(&self, value: LeafValue<'_>) -> Result<Vec<u8>> {
        match value {
            LeafValue::Inline(v) => Ok(v.to_vec()),
            LeafValue::Overflow {
                total_len,
                first_page,
            } => {
                let total = total_len as usize;
                if total > VALUE_SIZE_MAX {
                    return Err(self.corrupt(PageId(first_page), "overflow value too long"));
                }
                let mut out = Vec::with_capacity(total);
                let mut page = first_page;
                let mut hops = 0;
                while out.len() < total {
                    hops += 1;
                    if page == NO_PAGE || hops > total / 16 + 2 {
                        return Err(
                            self.corrupt(PageId(page), "overflow chain ends early or loops")
                        );
                    }
                    let g = self.pool.read(self.file, PageId(page))?;
                    if g.header().page_type != OVERFLOW_PAGE {
                        return Err(self.corrupt(PageId(page), "not an overflow page"));
                    }
                    let len = get_u32(&g, OVERFLOW_LEN_OFFSET) as usize;
                    if OVERFLOW_DATA_OFFSET + len > g.len() || out.len() + len > total {
                        return Err(self.corrupt(PageId(page), "overflow length out of bounds"));
                    }
                    out.extend_from_slice(&g[OVERFLOW_DATA_OFFSET..OVERFLOW_DATA_OFFSET + len]);
                    page = get_u64(&g, OVERFLOW_NEXT_OFFSET);
                }
                Ok(out)
            }
        }
    }

    /// Inserts `key`; fails with [`Error::DuplicateKey`] if it is present. Durable on return
    /// as the log's commit mode says.
    pub fn insert(&self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put(key, value, PutMode::Insert).map(|_| ())
    }

    /// Inserts or replaces `key`; returns whether it was present.
    pub fn upsert(&self, key: &[u8], value: &[u8]) -> Result<bool> {
        self.put(key, value, PutMode::Upsert)
    }

    pub(crate) fn check_sizes(&self, key: &[u8], value: &[u8]) -> Result<()> {
        let max = self.key_size_max();
        if key.len() > max {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                max,
            });
        }
        if value.len() > VALUE_SIZE_MAX {
            return Err(Error::ValueTooLarge {
                size: value.len(),
                max: VALUE_SIZE_MAX,
            });
        }
        Ok(())
    }

    fn inline_fits(&self, key: &[u8], value: &[u8]) -> bool {
        4 + key.len() + value.len() <= node::cell_size_max(self.node_size)
    }

    fn put(&self, key: &[u8], value: &[u8], mode: PutMode) -> Result<bool> {
        let (existed, end) = self.put_no_commit(key, value, mode)?;
        self.wal.commit(end)?;
        Ok(existed)
    }

    /// Inserts without committing: returns the LSN to commit. For engines that make one
    /// operation of changes to several structures inside an atomic group of the log
    /// ([`storelab_wal::Wal::atomic_group`]) and commit once at its end.
    pub fn insert_no_commit(&self, key: &[u8], value: &[u8]) -> Result<Lsn> {
        self.put_no_commit(key, value, PutMode::Insert)
            .map(|(_, end)| end)
    }

    /// Upserts without committing (see [`insert_no_commit`](Self::insert_no_commit)); returns
    /// whether the key existed and the LSN to commit.
    pub fn upsert_no_commit(&self, key: &[u8], value: &[u8]) -> Result<(bool, Lsn)> {
        self.put_no_commit(key, value, PutMode::Upsert)
    }

    /// Deletes without committing (see [`insert_no_commit`](Self::insert_no_commit)); returns
    /// the LSN to commit if the key was present.
    pub fn delete_no_commit(&self, key: &[u8]) -> Result<Option<Lsn>> {
        let mut group = None;
        loop {
            let in_group = group.is_some() || self.wal.in_atomic_group();
            let outcome = {
                let _w = self.writer.lock();
                self.delete_locked(key, in_group)?
            };
            match outcome {
                Logged::Done(end) => {
                    return match group.take() {
                        Some(g) => Ok(Some(AtomicGroup::end(g)?)),
                        None => Ok(end),
                    };
                }
                // Latches and the writer lock are released: the group lock is never waited
                // for while holding either (a checkpoint holds it while it flushes pages).
                Logged::NeedsGroup => group = Some(self.wal.atomic_group()?),
            }
        }
    }

    fn put_no_commit(&self, key: &[u8], value: &[u8], mode: PutMode) -> Result<(bool, Lsn)> {
        self.check_sizes(key, value)?;
        let mut group = None;
        loop {
            let in_group = group.is_some() || self.wal.in_atomic_group();
            let outcome = {
                let _w = self.writer.lock();
                self.put_locked(key, value, mode, in_group)?
            };
            match outcome {
                Logged::Done((existed, end)) => {
                    let end = match group.take() {
                        Some(g) => AtomicGroup::end(g)?,
                        None => end,
                    };
                    return Ok((existed, end));
                }
                Logged::NeedsGroup => group = Some(self.wal.atomic_group()?),
            }
        }
    }

    /// An upper bound on the pages one change may log: a new and an old overflow chain, and
    /// at every latched level a split (the node, its new right sibling and the neighbour
    /// whose back link changes) or a merge (the node, its sibling, the parent), plus a new
    /// root and the meta page.
    fn pages_changed_max(&self, path_len: usize, new_chain: usize, old_chain: usize) -> usize {
        new_chain + old_chain + 3 * (path_len + 1) + 2
    }

    /// Pages in the overflow chain of a value of `len` bytes.
    fn chain_pages(&self, len: usize) -> usize {
        len.div_ceil(self.pool.page_size() - OVERFLOW_DATA_OFFSET)
    }

    /// Latches the path from the root down to the leaf for `key` with write latches, keeping
    /// only the suffix below the lowest node that is not `safe` (crabbing).
    fn write_path(
        &self,
        key: &[u8],
        safe: &dyn Fn(&NodeRef<'_>) -> bool,
    ) -> Result<Vec<PageWriteGuard<'_>>> {
        let root = self.root_id()?;
        let mut path = vec![self.write_node(root)?];
        for _ in 0..BTREE_DEPTH_MAX {
            let last = path.last().expect("non-empty");
            let node = NodeRef::new(last, self.node_size);
            if node.is_leaf() {
                return Ok(path);
            }
            let (_, child) = node.child_for(key);
            let level = node.level();
            let g = self.write_node(child)?;
            let child_node = NodeRef::new(&g, self.node_size);
            if child_node.level() + 1 != level {
                return Err(self.corrupt(g.page_id(), "child level is not parent level - 1"));
            }
            if safe(&child_node) {
                path.clear();
            }
            path.push(g);
        }
        Err(self.corrupt(
            PageId(root),
            format!("descent deeper than {BTREE_DEPTH_MAX}"),
        ))
    }

    fn put_locked(
        &self,
        key: &[u8],
        value: &[u8],
        mode: PutMode,
        in_group: bool,
    ) -> Result<Logged<(bool, Lsn)>> {
        let cell_max = node::cell_size_max(self.node_size);
        // Safe: the node can take one more entry of the largest size without splitting.
        let mut path = self.write_path(key, &|n| n.free_space() >= cell_max + 2)?;
        let mut leaf = path.pop().expect("a leaf");
        let found = NodeRef::new(&leaf, self.node_size).search(key);
        if found.is_ok() && mode == PutMode::Insert {
            return Err(Error::DuplicateKey);
        }
        // Before changing anything: can this change be logged as one record? If not, it must
        // run inside an atomic group, so that its records are replayed all or nothing.
        if !in_group {
            let new_chain = if self.inline_fits(key, value) {
                0
            } else {
                self.chain_pages(value.len())
            };
            let old_chain = match found {
                Ok(i) => match NodeRef::new(&leaf, self.node_size).value(i) {
                    LeafValue::Overflow { total_len, .. } => self.chain_pages(total_len as usize),
                    LeafValue::Inline(_) => 0,
                },
                Err(_) => 0,
            };
            if self.pages_changed_max(path.len(), new_chain, old_chain) > BLOCKS_PER_RECORD_MAX {
                return Ok(Logged::NeedsGroup);
            }
        }
        let mut overflow_pages: Vec<PageWriteGuard<'_>> = Vec::new();
        let mut meta: Option<PageWriteGuard<'_>> = None;
        let cell = if self.inline_fits(key, value) {
            leaf_cell(key, value)
        } else {
            let first = self.write_overflow(value, &mut overflow_pages, &mut meta)?;
            overflow_cell(key, value.len() as u32, first)
        };
        let mut freed: Vec<PageWriteGuard<'_>> = Vec::new();
        let existed = found.is_ok();
        // An old value's overflow chain is freed, but only once the new cell is in: freeing
        // puts its pages at the head of the free list while they stay latched here, and a split
        // would then take that head for a new node and latch it again (self-deadlock).
        let old_chain = match found {
            Ok(i) => match NodeRef::new(&leaf, self.node_size).value(i) {
                LeafValue::Overflow { first_page, .. } => Some(first_page),
                LeafValue::Inline(_) => None,
            },
            Err(_) => None,
        };
        let slot = match found {
            Ok(i) | Err(i) => i,
        };
        let fits = {
            let mut n = NodeMut::new(&mut leaf, self.node_size);
            match found {
                Ok(i) => n.replace(i, &cell),
                Err(i) => n.insert(i, &cell),
            }
        };
        let end = if fits {
            if let Some(first) = old_chain {
                self.free_chain(first, &mut meta, &mut freed)?;
            }
            let mut data = (self.node_size as u16).to_le_bytes().to_vec();
            data.extend_from_slice(&(slot as u16).to_le_bytes());
            data.extend_from_slice(&cell);
            let record_type = if existed { REC_REPLACE } else { REC_INSERT };
            let mut extra: Vec<&mut PageWriteGuard<'_>> = overflow_pages.iter_mut().collect();
            extra.extend(freed.iter_mut());
            if let Some(m) = meta.as_mut() {
                extra.push(m);
            }
            self.log_change(record_type, &mut leaf, &data, &mut extra)?
        } else {
            if existed {
                NodeMut::new(&mut leaf, self.node_size).remove(slot);
            }
            self.split_and_insert(
                &mut path,
                leaf,
                slot,
                &cell,
                &mut meta,
                overflow_pages,
                old_chain,
            )?
        };
        Ok(Logged::Done((existed, end)))
    }

    /// Writes `value` into a new overflow chain; the pages are left latched in `pages`. They
    /// come from the free list (meta latched) before the end of the file: before, only nodes
    /// reused free pages, so a workload replacing large values grew the file without bound
    /// while the free list grew as fast.
    pub(crate) fn write_overflow<'a>(
        &'a self,
        value: &[u8],
        pages: &mut Vec<PageWriteGuard<'a>>,
        meta: &mut Option<PageWriteGuard<'a>>,
    ) -> Result<u64> {
        let capacity = self.pool.page_size() - OVERFLOW_DATA_OFFSET;
        let chunks: Vec<&[u8]> = value.chunks(capacity).collect();
        let mut ids = Vec::with_capacity(chunks.len());
        for _ in &chunks {
            let g = self.alloc_page(meta, OVERFLOW_PAGE)?;
            ids.push(g.page_id().0);
            pages.push(g);
        }
        for (i, chunk) in chunks.iter().enumerate() {
            let g = &mut pages[i];
            let next = ids.get(i + 1).copied().unwrap_or(NO_PAGE);
            put_u64(g, OVERFLOW_NEXT_OFFSET, next);
            g[OVERFLOW_LEN_OFFSET..OVERFLOW_LEN_OFFSET + 4]
                .copy_from_slice(&(chunk.len() as u32).to_le_bytes());
            g[OVERFLOW_DATA_OFFSET..OVERFLOW_DATA_OFFSET + chunk.len()].copy_from_slice(chunk);
        }
        Ok(ids[0])
    }

    /// Moves an overflow chain to the free list (meta latched on first use).
    fn free_chain<'a>(
        &'a self,
        first: u64,
        meta: &mut Option<PageWriteGuard<'a>>,
        freed: &mut Vec<PageWriteGuard<'a>>,
    ) -> Result<()> {
        let mut page = first;
        let mut hops = 0;
        while page != NO_PAGE {
            hops += 1;
            if hops > VALUE_SIZE_MAX / 16 {
                return Err(self.corrupt(PageId(first), "overflow chain loops"));
            }
            let g = self.pool.write(self.file, PageId(page))?;
            if g.header().page_type != OVERFLOW_PAGE {
                return Err(self.corrupt(PageId(page), "not an overflow page"));
            }
            let next = get_u64(&g, OVERFLOW_NEXT_OFFSET);
            freed.push(g);
            let g = freed.last_mut().expect("just pushed");
            self.push_free(g, meta)?;
            page = next;
        }
        Ok(())
    }

    /// Turns a latched page into a free-list page at the head of the list.
    pub(crate) fn push_free<'a>(
        &'a self,
        page: &mut PageWriteGuard<'a>,
        meta: &mut Option<PageWriteGuard<'a>>,
    ) -> Result<()> {
        if meta.is_none() {
            *meta = Some(self.pool.write(self.file, PageId(0))?);
        }
        let m = meta.as_mut().expect("latched");
        let head = get_u64(m, META_FREE_OFFSET);
        let id = page.page_id();
        let lsn = page.lsn();
        storelab_pager::page::init_page(page, id, FREE_PAGE);
        page.set_lsn(lsn);
        put_u64(page, FREE_NEXT_OFFSET, head);
        put_u64(m, META_FREE_OFFSET, id.0);
        Ok(())
    }

    /// A page for a new node: from the free list, else appended to the file.
    fn alloc_node<'a>(
        &'a self,
        meta: &mut Option<PageWriteGuard<'a>>,
    ) -> Result<PageWriteGuard<'a>> {
        self.alloc_page(meta, NODE_PAGE)
    }

    /// A page of `page_type`: from the free list, else appended to the file.
    fn alloc_page<'a>(
        &'a self,
        meta: &mut Option<PageWriteGuard<'a>>,
        page_type: PageType,
    ) -> Result<PageWriteGuard<'a>> {
        if meta.is_none() {
            *meta = Some(self.pool.write(self.file, PageId(0))?);
        }
        let m = meta.as_mut().expect("latched");
        let head = get_u64(m, META_FREE_OFFSET);
        if head == NO_PAGE {
            return Ok(self.pool.new_page(self.file, page_type)?);
        }
        let mut g = self.pool.write(self.file, PageId(head))?;
        if g.header().page_type != FREE_PAGE {
            return Err(self.corrupt(PageId(head), "free list names a page that is not free"));
        }
        let next = get_u64(&g, FREE_NEXT_OFFSET);
        put_u64(m, META_FREE_OFFSET, next);
        let lsn = g.lsn();
        storelab_pager::page::init_page(&mut g, PageId(head), page_type);
        g.set_lsn(lsn);
        Ok(g)
    }

    /// Splits the full `leaf` (its ancestors that may split too are latched in `path`), inserts
    /// `cell` at `slot`, frees `old_chain` (the replaced value's overflow chain) after the new
    /// nodes are allocated, and logs every changed page as an image in one record.
    #[allow(clippy::too_many_arguments)]
    fn split_and_insert<'a>(
        &'a self,
        path: &mut Vec<PageWriteGuard<'a>>,
        leaf: PageWriteGuard<'a>,
        slot: usize,
        cell: &[u8],
        meta: &mut Option<PageWriteGuard<'a>>,
        overflow_pages: Vec<PageWriteGuard<'a>>,
        old_chain: Option<u64>,
    ) -> Result<Lsn> {
        let mut changed: Vec<PageWriteGuard<'a>> = overflow_pages;
        // Insert into the node at `level` of the path; split it if needed, carrying the
        // separator up. `pending` = (node, slot, cell) to insert.
        let mut node = leaf;
        let mut ins_slot = slot;
        let mut ins_cell = cell.to_vec();
        loop {
            let fits = NodeMut::new(&mut node, self.node_size).insert(ins_slot, &ins_cell);
            if fits {
                changed.push(node);
                break;
            }
            self.split_count.fetch_add(1, Ordering::Relaxed);
            let (right, separator) =
                self.split_node(&mut node, ins_slot, &ins_cell, meta, &mut changed)?;
            let right_id = right.page_id().0;
            let left_id = node.page_id().0;
            changed.push(node);
            changed.push(right);
            let up = internal_cell(&separator, right_id);
            match path.pop() {
                Some(parent) => {
                    let pos = NodeRef::new(&parent, self.node_size)
                        .search(&separator)
                        .expect_err("separator is new to the parent");
                    node = parent;
                    ins_slot = pos;
                    ins_cell = up;
                }
                None => {
                    // The root split: a new root above.
                    let level =
                        NodeRef::new(&changed[changed.len() - 2], self.node_size).level() + 1;
                    let mut root = self.alloc_node(meta)?;
                    {
                        let mut n = NodeMut::new(&mut root, self.node_size);
                        n.init(level, None, None, NO_PAGE, NO_PAGE);
                        n.set_leftmost(left_id);
                        assert!(n.insert(0, &up), "one separator fits an empty root");
                    }
                    let m = meta.as_mut().expect("alloc_node latched meta");
                    put_u64(m, META_ROOT_OFFSET, root.page_id().0);
                    changed.push(root);
                    break;
                }
            }
        }
        if let Some(first) = old_chain {
            self.free_chain(first, meta, &mut changed)?;
        }
        let mut refs: Vec<&mut PageWriteGuard<'a>> = changed.iter_mut().collect();
        if let Some(m) = meta.as_mut() {
            refs.push(m);
        }
        self.log_images(&mut refs)
    }

    /// Splits `node` (full) so that `cell` can go in at `slot`: moves the upper part to a new
    /// right sibling, inserts `cell` on the proper side, fixes sibling links and fences.
    /// Returns the right node and the separator (the right node's low fence).
    fn split_node<'a>(
        &'a self,
        node: &mut PageWriteGuard<'a>,
        slot: usize,
        cell: &[u8],
        meta: &mut Option<PageWriteGuard<'a>>,
        changed: &mut Vec<PageWriteGuard<'a>>,
    ) -> Result<(PageWriteGuard<'a>, Vec<u8>)> {
        let ns = self.node_size;
        let (level, low, high, prev, next, leftmost, cells) = {
            let n = NodeRef::new(node, ns);
            let cells: Vec<Vec<u8>> = (0..n.len()).map(|i| n.cell(i).to_vec()).collect();
            (
                n.level(),
                n.low_fence().map(<[u8]>::to_vec),
                n.high_fence().map(<[u8]>::to_vec),
                n.prev().unwrap_or(NO_PAGE),
                n.next().unwrap_or(NO_PAGE),
                n.leftmost(),
                cells,
            )
        };
        let leaf = level == 0;
        let mut all = cells;
        all.insert(slot, cell.to_vec());
        let key_of = |c: &[u8]| -> Vec<u8> {
            let len = get_u16(c, 0) as usize;
            let start = if leaf { 4 } else { 2 };
            c[start..start + len].to_vec()
        };
        // Choose the split index: entries [0, at) stay, [at, n) move right.
        let n = all.len();
        let rightmost = next == NO_PAGE;
        let at = if leaf
            && self.config.split == SplitPolicy::InsertPoint
            && rightmost
            && slot == n - 1
        {
            n - 1
        } else {
            let total: usize = all.iter().map(|c| c.len() + 2).sum();
            let mut acc = 0;
            let mut at = 1;
            for (i, c) in all.iter().enumerate() {
                acc += c.len() + 2;
                if acc * 2 >= total {
                    at = (i + 1).clamp(1, n - 1);
                    break;
                }
            }
            at
        };
        // Both halves must fit with their fences (the separator becomes the left node's high
        // fence and the right node's low fence): move the split point until they do.
        let fence_len = |f: &Option<Vec<u8>>| f.as_ref().map_or(0, |k| k.len() + 2);
        let fits = |cells: &[Vec<u8>], a: Option<usize>, b: usize| -> bool {
            let _ = a;
            let used: usize = cells.iter().map(|c| c.len() + 2).sum();
            node::SLOTS_OFFSET + used + b <= ns
        };
        let mut at = at;
        loop {
            let sep = key_of(&all[at]);
            let right_part = if leaf { &all[at..] } else { &all[at + 1..] };
            let left_ok = fits(&all[..at], None, fence_len(&low) + sep.len() + 2);
            let right_ok = fits(right_part, None, fence_len(&high) + sep.len() + 2);
            match (left_ok, right_ok) {
                (true, true) => break,
                (false, _) if at > 1 => at -= 1,
                (_, false) if at + 1 < n - usize::from(!leaf) => at += 1,
                _ => return Err(self.corrupt(node.page_id(), "no split point fits both halves")),
            }
        }
        let mut right = self.alloc_node(meta)?;
        let right_id = right.page_id().0;
        let left_id = node.page_id().0;
        // In an internal node the middle entry moves up: its key becomes the separator and
        // its child the right node's leftmost child.
        let (separator, right_cells, right_leftmost) = if leaf {
            (key_of(&all[at]), all[at..].to_vec(), NO_PAGE)
        } else {
            let mid = &all[at];
            let key_len = get_u16(mid, 0) as usize;
            let child = get_u64(mid, 2 + key_len);
            (key_of(mid), all[at + 1..].to_vec(), child)
        };
        {
            let mut r = NodeMut::new(&mut right, ns);
            r.init(level, Some(&separator), high.as_deref(), left_id, next);
            r.set_leftmost(right_leftmost);
            for (i, c) in right_cells.iter().enumerate() {
                assert!(r.insert(i, c), "half a node fits in a node");
            }
        }
        {
            let mut l = NodeMut::new(node, ns);
            l.init(level, low.as_deref(), Some(&separator), prev, right_id);
            l.set_leftmost(leftmost);
            for (i, c) in all[..at].iter().enumerate() {
                assert!(l.insert(i, c), "half a node fits in a node");
            }
        }
        if next != NO_PAGE {
            let mut g = self.write_node(next)?;
            NodeMut::new(&mut g, ns).set_prev(right_id);
            changed.push(g);
        }
        Ok((right, separator))
    }

    /// Removes `key`; returns whether it was present.
    pub fn delete(&self, key: &[u8]) -> Result<bool> {
        match self.delete_no_commit(key)? {
            Some(end) => {
                self.wal.commit(end)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    fn merge_limit(&self) -> usize {
        (self.node_size - node::SLOTS_OFFSET) * self.config.merge_threshold_pct as usize / 100
    }

    fn delete_locked(&self, key: &[u8], in_group: bool) -> Result<Logged<Option<Lsn>>> {
        let limit = self.merge_limit();
        let cell_max = node::cell_size_max(self.node_size);
        // Safe: after losing its largest possible entry the node stays above the threshold.
        let mut path = self.write_path(key, &|n| n.used_space() > limit + cell_max + 2)?;
        let mut leaf = path.pop().expect("a leaf");
        let Ok(slot) = NodeRef::new(&leaf, self.node_size).search(key) else {
            return Ok(Logged::Done(None));
        };
        if !in_group {
            let old_chain = match NodeRef::new(&leaf, self.node_size).value(slot) {
                LeafValue::Overflow { total_len, .. } => self.chain_pages(total_len as usize),
                LeafValue::Inline(_) => 0,
            };
            if self.pages_changed_max(path.len(), 0, old_chain) > BLOCKS_PER_RECORD_MAX {
                return Ok(Logged::NeedsGroup);
            }
        }
        let mut meta: Option<PageWriteGuard<'_>> = None;
        let mut freed: Vec<PageWriteGuard<'_>> = Vec::new();
        if let LeafValue::Overflow { first_page, .. } =
            NodeRef::new(&leaf, self.node_size).value(slot)
        {
            self.free_chain(first_page, &mut meta, &mut freed)?;
        }
        NodeMut::new(&mut leaf, self.node_size).remove(slot);
        let underfull = NodeRef::new(&leaf, self.node_size).used_space() < limit;
        if !underfull || path.is_empty() {
            let mut data = (self.node_size as u16).to_le_bytes().to_vec();
            data.extend_from_slice(&(slot as u16).to_le_bytes());
            let mut extra: Vec<&mut PageWriteGuard<'_>> = freed.iter_mut().collect();
            if let Some(m) = meta.as_mut() {
                extra.push(m);
            }
            return Ok(Logged::Done(Some(
                self.log_change(REC_DELETE, &mut leaf, &data, &mut extra)?,
            )));
        }
        let mut changed = freed;
        if let Some(mut leaf) = self.merge_up(&mut path, leaf, key, &mut meta, &mut changed)? {
            // Under-full but nothing to merge with: only the leaf changed, logged compactly
            // like any delete (not as images of the leaf and the pages merge_up looked at).
            let mut freed = changed;
            let mut data = (self.node_size as u16).to_le_bytes().to_vec();
            data.extend_from_slice(&(slot as u16).to_le_bytes());
            let mut extra: Vec<&mut PageWriteGuard<'_>> = freed.iter_mut().collect();
            if let Some(m) = meta.as_mut() {
                extra.push(m);
            }
            return Ok(Logged::Done(Some(
                self.log_change(REC_DELETE, &mut leaf, &data, &mut extra)?,
            )));
        }
        let mut refs: Vec<&mut PageWriteGuard<'_>> = changed.iter_mut().collect();
        if let Some(m) = meta.as_mut() {
            refs.push(m);
        }
        Ok(Logged::Done(Some(self.log_images(&mut refs)?)))
    }

    /// `node` is below the merge threshold: merge it with its right sibling under the same
    /// parent if both fit in one node, then look at the parent in turn. Collapses a root left
    /// with one child. The pages it changed go into `changed` (pages it only looked at, a
    /// sibling too full to merge or an untouched parent, do not: logging them would only
    /// write images of unchanged pages). Returns `node` back if nothing at all was merged,
    /// so that the caller logs its one change compactly.
    fn merge_up<'a>(
        &'a self,
        path: &mut Vec<PageWriteGuard<'a>>,
        mut node: PageWriteGuard<'a>,
        key: &[u8],
        meta: &mut Option<PageWriteGuard<'a>>,
        changed: &mut Vec<PageWriteGuard<'a>>,
    ) -> Result<Option<PageWriteGuard<'a>>> {
        let ns = self.node_size;
        let limit = self.merge_limit();
        let mut merged = false;
        loop {
            let Some(mut parent) = path.pop() else {
                // `node` is the root: collapse it if it is internal with no separators.
                let n = NodeRef::new(&node, ns);
                if !n.is_leaf() && n.is_empty() {
                    let child = n.leftmost();
                    if meta.is_none() {
                        *meta = Some(self.pool.write(self.file, PageId(0))?);
                    }
                    put_u64(meta.as_mut().expect("latched"), META_ROOT_OFFSET, child);
                    self.push_free(&mut node, meta)?;
                    self.merge_count.fetch_add(1, Ordering::Relaxed);
                }
                changed.push(node);
                return Ok(None);
            };
            let p = NodeRef::new(&parent, ns);
            let (idx, _) = p.child_for(key);
            // The right sibling under the same parent is the child after `idx`.
            let right_index = idx.map_or(0, |i| i + 1);
            if right_index >= p.len() {
                // No right sibling under this parent: leave the node under-full (no merge with
                // the left sibling, which would latch right-to-left; see the crate doc).
                path.clear();
                if !merged {
                    return Ok(Some(node));
                }
                changed.push(node);
                return Ok(None);
            }
            let right_id = p.child(right_index);
            let separator = p.key(right_index).to_vec();
            let mut right = self.write_node(right_id)?;
            let (l, r) = (NodeRef::new(&node, ns), NodeRef::new(&right, ns));
            let leaf = l.is_leaf();
            let mut moved: Vec<Vec<u8>> = Vec::new();
            if !leaf {
                moved.push(internal_cell(&separator, r.leftmost()));
            }
            moved.extend((0..r.len()).map(|i| r.cell(i).to_vec()));
            let need: usize = moved.iter().map(|c| c.len() + 2).sum();
            let high = r.high_fence().map(<[u8]>::to_vec);
            let fence_room =
                high.as_ref().map_or(0, |h| h.len() + 2) + l.low_fence().map_or(0, |f| f.len() + 2);
            let cells_now: usize = l.used_space();
            if cells_now + need + fence_room + node::SLOTS_OFFSET > ns {
                path.clear();
                if !merged {
                    return Ok(Some(node));
                }
                changed.push(node);
                return Ok(None);
            }
            // Rebuild the left node with everything, the right sibling's fence and link.
            let (low, prev, leftmost, level, mut cells) = {
                let l = NodeRef::new(&node, ns);
                (
                    l.low_fence().map(<[u8]>::to_vec),
                    l.prev().unwrap_or(NO_PAGE),
                    l.leftmost(),
                    l.level(),
                    (0..l.len()).map(|i| l.cell(i).to_vec()).collect::<Vec<_>>(),
                )
            };
            let right_next = NodeRef::new(&right, ns).next().unwrap_or(NO_PAGE);
            cells.extend(moved);
            {
                let mut m = NodeMut::new(&mut node, ns);
                m.init(level, low.as_deref(), high.as_deref(), prev, right_next);
                m.set_leftmost(leftmost);
                for (i, c) in cells.iter().enumerate() {
                    assert!(m.insert(i, c), "checked to fit");
                }
            }
            if right_next != NO_PAGE {
                let mut g = self.write_node(right_next)?;
                NodeMut::new(&mut g, ns).set_prev(node.page_id().0);
                changed.push(g);
            }
            self.push_free(&mut right, meta)?;
            changed.push(right);
            NodeMut::new(&mut parent, ns).remove(right_index);
            self.merge_count.fetch_add(1, Ordering::Relaxed);
            merged = true;
            changed.push(node);
            let parent_node = NodeRef::new(&parent, ns);
            let is_root = path.is_empty();
            if (is_root && (parent_node.is_leaf() || !parent_node.is_empty()))
                || (!is_root && parent_node.used_space() >= limit)
            {
                changed.push(parent);
                path.clear();
                return Ok(None);
            }
            node = parent;
        }
    }

    /// Logs a compact change of `primary` (redo data) plus images of `extra` pages in one
    /// record, and stamps all of them with its end LSN.
    fn log_change(
        &self,
        record_type: RecordType,
        primary: &mut PageWriteGuard<'_>,
        data: &[u8],
        extra: &mut [&mut PageWriteGuard<'_>],
    ) -> Result<Lsn> {
        let (now, later) = extra.split_at_mut(extra.len().min(BLOCKS_PER_RECORD_MAX - 1));
        let mut end = {
            let mut record =
                RecordBuilder::new(record_type).block(self.rel, primary.page_id(), primary, data);
            for g in now.iter() {
                record = record.image(self.rel, g.page_id(), g);
            }
            self.wal.append(&record)?
        };
        primary.set_lsn(end);
        for g in now.iter_mut() {
            g.set_lsn(end);
        }
        if !later.is_empty() {
            // Only inside an atomic group (put_locked checked): the records replay together.
            end = self.log_images(later)?;
        }
        Ok(end)
    }

    /// Logs the given pages as images in one record (split into several records only past the
    /// per-record block limit, which one operation never reaches) and stamps them.
    pub(crate) fn log_images(&self, pages: &mut [&mut PageWriteGuard<'_>]) -> Result<Lsn> {
        assert!(
            pages.len() <= BLOCKS_PER_RECORD_MAX || self.wal.in_atomic_group(),
            "{} pages in one change outside an atomic group",
            pages.len()
        );
        let mut end = Lsn(0);
        for chunk in pages.chunks_mut(storelab_wal::BLOCKS_PER_RECORD_MAX) {
            end = {
                let mut record = RecordBuilder::new(REC_STRUCTURE);
                for g in chunk.iter() {
                    record = record.image(self.rel, g.page_id(), g);
                }
                self.wal.append(&record)?
            };
            for g in chunk.iter_mut() {
                g.set_lsn(end);
            }
        }
        Ok(end)
    }

    /// Statistics: shape (walks the tree) and counters.
    pub fn stats(&self) -> Result<BTreeStats> {
        let mut s = crate::check::walk(self)?;
        s.split_count = self.split_count.load(Ordering::Relaxed);
        s.merge_count = self.merge_count.load(Ordering::Relaxed);
        Ok(s)
    }

    /// The root page id and the head of the free list (for `check` and inspection).
    pub(crate) fn meta(&self) -> Result<(u64, u64)> {
        let meta = self.pool.read(self.file, PageId(0))?;
        if meta[META_MAGIC_OFFSET..META_MAGIC_OFFSET + 8] != META_MAGIC {
            return Err(self.corrupt(PageId(0), "bad meta magic"));
        }
        Ok((
            get_u64(&meta, META_ROOT_OFFSET),
            get_u64(&meta, META_FREE_OFFSET),
        ))
    }

    /// Takes the writer lock (bulk load).
    pub(crate) fn writer(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.writer.lock()
    }

    pub(crate) fn set_root(&self, meta: &mut PageWriteGuard<'_>, root: u64) {
        put_u64(meta, META_ROOT_OFFSET, root);
    }
}

fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// The layout check run on every page of a tree's file as it is read from disk.
fn validate_page(
    page_id: PageId,
    bytes: &[u8],
    node_size: usize,
) -> std::result::Result<(), String> {
    let header = PageHeader::read(bytes);
    match header.page_type {
        t if t == NODE_PAGE => node::validate(bytes, node_size),
        t if t == META_PAGE => {
            if page_id != PageId(0) || bytes[META_MAGIC_OFFSET..META_MAGIC_OFFSET + 8] != META_MAGIC
            {
                return Err("meta page malformed or not page 0".into());
            }
            if get_u16(bytes, META_VERSION_OFFSET) != BTREE_FORMAT_VERSION {
                return Err("unsupported B+tree format version".into());
            }
            Ok(())
        }
        t if t == OVERFLOW_PAGE => {
            let len = get_u32(bytes, OVERFLOW_LEN_OFFSET) as usize;
            if OVERFLOW_DATA_OFFSET + len > bytes.len() {
                return Err(format!("overflow length {len} past the page"));
            }
            Ok(())
        }
        t if t == FREE_PAGE || t == PageType::FREE => Ok(()),
        t => Err(format!("page type {} is not a B+tree page", t.0)),
    }
}

/// Registers the redo functions of the B+tree's record types.
pub fn register_redo(registry: &mut storelab_wal::RedoRegistry) {
    fn parse(data: &[u8]) -> std::result::Result<(usize, usize, &[u8]), String> {
        if data.len() < 4 {
            return Err("B+tree redo data shorter than 4 bytes".into());
        }
        Ok((
            get_u16(data, 0) as usize,
            get_u16(data, 2) as usize,
            &data[4..],
        ))
    }
    fn apply(page: &mut [u8], data: &[u8], op: u8) -> std::result::Result<(), String> {
        let (node_size, slot, cell) = parse(data)?;
        node::validate(page, node_size)?;
        let mut n = NodeMut::new(page, node_size);
        let len = n.as_ref().len();
        let ok = match op {
            0 if slot <= len => n.insert(slot, cell),
            1 if slot < len => {
                n.remove(slot);
                true
            }
            2 if slot < len => n.replace(slot, cell),
            _ => false,
        };
        if !ok {
            return Err(format!("B+tree redo op {op} at slot {slot} does not apply"));
        }
        Ok(())
    }
    registry.register(REC_INSERT, |r, i, page| apply(page, &r.blocks[i].data, 0));
    registry.register(REC_DELETE, |r, i, page| apply(page, &r.blocks[i].data, 1));
    registry.register(REC_REPLACE, |r, i, page| apply(page, &r.blocks[i].data, 2));
    registry.register(REC_STRUCTURE, |_, _, _| {
        Err("structure records carry images only".into())
    });
}
