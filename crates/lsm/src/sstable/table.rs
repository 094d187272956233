//! `SsTable`: an open, immutable sorted table, and `TableFile`, where its bytes live.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use storelab_pager::page::IO_ALIGNMENT;
use storelab_pager::{Disk, FileId, IoCause};

use crate::block_cache::BlockCache;
use crate::entry::SeqNo;
use crate::error::{Error, Result};
use crate::sstable::block::{Block, BlockIter};
use crate::sstable::bloom::BloomFilter;
use crate::sstable::footer::{FOOTER_SIZE, Footer, TABLE_FORMAT_VERSION};
use crate::sstable::handle::{BLOCK_HANDLE_SIZE, BlockHandle, unseal_block};

/// A table's number: its file is `<number, 6 digits>.sst`. Numbers are never reused while a
/// tree is open, and the manifest's `next table` survives restarts.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TableId(pub u64);

impl std::fmt::Display for TableId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:06}.sst", self.0)
    }
}

impl TableId {
    /// The table's file name.
    pub fn file_name(self) -> String {
        self.to_string()
    }

    /// The table number in a file name, if it is one of ours.
    pub fn parse_file_name(name: &str) -> Option<TableId> {
        let digits = name.strip_suffix(".sst")?;
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok().map(TableId)
    }
}

/// Bytes fetched at once by sequential readers (compaction, scans through a window).
pub const READ_WINDOW_BYTES: usize = 1 << 20;

/// Where a table's bytes are: a file read through the pager's `Disk` (and so through its I/O
/// backend and ledger), or memory (fuzzing and unit tests).
#[derive(Clone)]
pub enum TableFile {
    /// A raw file registered with the disk.
    Disk {
        /// The disk.
        disk: Arc<Disk>,
        /// The file.
        file: FileId,
    },
    /// The whole table in memory.
    Memory(Arc<Vec<u8>>),
}

impl std::fmt::Debug for TableFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TableFile::Disk { file, .. } => write!(f, "TableFile::Disk({file})"),
            TableFile::Memory(bytes) => write!(f, "TableFile::Memory({} bytes)", bytes.len()),
        }
    }
}

impl TableFile {
    /// Reads `len` bytes at `offset` (through aligned reads on disk, so `O_DIRECT` works);
    /// `Ok(None)` if the file is shorter.
    fn read(&self, offset: u64, len: usize, cause: IoCause) -> Result<Option<Vec<u8>>> {
        match self {
            TableFile::Memory(bytes) => {
                let end = offset.checked_add(len as u64);
                Ok(end
                    .filter(|&e| e <= bytes.len() as u64)
                    .map(|e| bytes[offset as usize..e as usize].to_vec()))
            }
            TableFile::Disk { disk, file } => {
                let align = IO_ALIGNMENT as u64;
                let start = offset - offset % align;
                let Some(end) = offset.checked_add(len as u64) else {
                    return Ok(None);
                };
                let span = (end.div_ceil(align) * align - start) as usize;
                let (buf, n) = disk.read_at(*file, start, span, cause)?;
                let want = (end - start) as usize;
                if n < want {
                    return Ok(None);
                }
                let from = (offset - start) as usize;
                Ok(Some(buf[from..want].to_vec()))
            }
        }
    }
}

/// A sequential reader's buffer: one large read serves many blocks.
#[derive(Debug, Default)]
pub struct ReadWindow {
    start: u64,
    bytes: Vec<u8>,
}

/// What a point lookup in one table found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TableGet {
    /// The bloom filter said the key is not there (no block read).
    FilteredOut,
    /// A data block was read and the key is not in it (a bloom false positive, or no filter).
    NotFound,
    /// The key's entry: sequence number and value (`None`: tombstone).
    Found(SeqNo, Option<Vec<u8>>),
}

/// An open table: footer, index and filter in memory, data blocks read on demand.
pub struct SsTable {
    id: TableId,
    level: u8,
    path: PathBuf,
    file: TableFile,
    size: u64,
    footer: Footer,
    index: Arc<Block>,
    filter: Option<BloomFilter>,
    smallest: Vec<u8>,
    largest: Vec<u8>,
    cache: Option<Arc<BlockCache>>,
    obsolete: AtomicBool,
}

impl std::fmt::Debug for SsTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsTable")
            .field("id", &self.id)
            .field("level", &self.level)
            .field("size", &self.size)
            .field("entries", &self.footer.entry_count)
            .finish()
    }
}

impl SsTable {
    /// Opens the table of logical size `size` in `file` (`path` names it in errors): reads and
    /// checks the footer, the index (every handle in order, covering the data area exactly),
    /// the filter, and the first data block (for the smallest key).
    pub fn open(
        file: TableFile,
        path: &Path,
        id: TableId,
        level: u8,
        size: u64,
        cache: Option<Arc<BlockCache>>,
    ) -> Result<SsTable> {
        let corrupt = |offset: u64, reason: String| Error::CorruptTable {
            file: path.to_path_buf(),
            offset,
            reason,
        };
        if size < FOOTER_SIZE as u64 {
            return Err(corrupt(0, format!("{size} bytes is shorter than a footer")));
        }
        let footer_at = size - FOOTER_SIZE as u64;
        let footer_bytes = file
            .read(footer_at, FOOTER_SIZE, IoCause::ForegroundRead)?
            .ok_or_else(|| corrupt(footer_at, "file shorter than its recorded size".into()))?;
        let footer = Footer::decode(&footer_bytes, size).map_err(|(reason, is_version)| {
            if is_version {
                let found = u32::from_le_bytes(
                    footer_bytes[crate::sstable::footer::FOOTER_VERSION..][..4]
                        .try_into()
                        .expect("4 bytes"),
                );
                Error::UnsupportedVersion {
                    file: path.to_path_buf(),
                    found,
                    supported: TABLE_FORMAT_VERSION,
                }
            } else {
                corrupt(footer_at, reason)
            }
        })?;
        let read_stored = |h: BlockHandle| -> Result<Vec<u8>> {
            let stored = file
                .read(h.offset, h.stored_size() as usize, IoCause::ForegroundRead)?
                .ok_or_else(|| corrupt(h.offset, "block past the end of the file".into()))?;
            unseal_block(&stored, path, h.offset)
        };
        let index = Arc::new(
            Block::decode(read_stored(footer.index)?)
                .map_err(|r| corrupt(footer.index.offset, r))?,
        );
        // Every handle in order, the data blocks exactly tiling [0, data end).
        let data_end = footer.filter.offset;
        let mut it = BlockIter::new(Arc::clone(&index));
        it.seek_to_first();
        let mut expect_offset = 0u64;
        let mut largest = Vec::new();
        while it.is_valid() {
            let h = BlockHandle::decode(it.value()).map_err(|r| corrupt(footer.index.offset, r))?;
            if h.offset != expect_offset || h.size == 0 {
                return Err(corrupt(
                    footer.index.offset,
                    format!("block handle {h:?} where a block at {expect_offset} was expected"),
                ));
            }
            expect_offset = h.offset + h.stored_size();
            largest = it.key().to_vec();
            it.next();
        }
        if expect_offset != data_end {
            return Err(corrupt(
                footer.index.offset,
                format!("data blocks end at {expect_offset}, the filter starts at {data_end}"),
            ));
        }
        let filter = if footer.filter.size > 0 {
            let bytes = read_stored(footer.filter)?;
            Some(BloomFilter::decode(&bytes).map_err(|r| corrupt(footer.filter.offset, r))?)
        } else {
            None
        };
        let mut table = SsTable {
            id,
            level,
            path: path.to_path_buf(),
            file,
            size,
            footer,
            index,
            filter,
            smallest: Vec::new(),
            largest,
            cache,
            obsolete: AtomicBool::new(false),
        };
        let mut index_it = BlockIter::new(Arc::clone(&table.index));
        index_it.seek_to_first();
        let first = BlockHandle::decode(index_it.value()).map_err(|r| corrupt(0, r))?;
        let mut block =
            BlockIter::new(table.read_block(first, IoCause::ForegroundRead, false, None)?);
        block.seek_to_first();
        table.smallest = block.key().to_vec();
        if table.smallest > table.largest {
            return Err(corrupt(0, "first key after the last".into()));
        }
        Ok(table)
    }

    /// The table's number.
    pub fn id(&self) -> TableId {
        self.id
    }

    /// The level it belongs to.
    pub fn level(&self) -> u8 {
        self.level
    }

    /// Its file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its logical size in bytes (the file is padded to a multiple of 4096).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Entries (values and tombstones).
    pub fn entry_count(&self) -> u64 {
        self.footer.entry_count
    }

    /// The smallest and largest sequence numbers in it.
    pub fn seq_range(&self) -> (SeqNo, SeqNo) {
        (self.footer.seq_min, self.footer.seq_max)
    }

    /// The smallest key.
    pub fn smallest(&self) -> &[u8] {
        &self.smallest
    }

    /// The largest key.
    pub fn largest(&self) -> &[u8] {
        &self.largest
    }

    /// True if `key` is within [smallest, largest].
    pub fn covers(&self, key: &[u8]) -> bool {
        key >= self.smallest.as_slice() && key <= self.largest.as_slice()
    }

    /// True if the table's key range meets [lo, hi].
    pub fn overlaps(&self, lo: &[u8], hi: &[u8]) -> bool {
        self.smallest.as_slice() <= hi && lo <= self.largest.as_slice()
    }

    /// Whether it has a bloom filter.
    pub fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    /// Bytes held in memory by the index and filter.
    pub fn pinned_bytes(&self) -> usize {
        self.index.size_bytes() + self.filter.as_ref().map_or(0, BloomFilter::size_bytes)
    }

    /// The file this table reads from.
    pub fn file(&self) -> &TableFile {
        &self.file
    }

    /// Marks the table as replaced: its file is deleted when the last reader drops it.
    pub fn mark_obsolete(&self) {
        self.obsolete.store(true, Ordering::Release);
    }

    /// Reads (through the cache when `use_cache`, or through `window`) and decodes a block.
    pub(crate) fn read_block(
        &self,
        h: BlockHandle,
        cause: IoCause,
        use_cache: bool,
        window: Option<&mut ReadWindow>,
    ) -> Result<Arc<Block>> {
        let cache = self.cache.as_ref().filter(|_| use_cache);
        if let Some(cache) = cache
            && let Some(block) = cache.get(self.id, h.offset)
        {
            return Ok(block);
        }
        let stored_len = h.stored_size() as usize;
        let missing = || self.corrupt(h.offset, "block past the end of the file".into());
        let contents = match window {
            None => {
                let stored = self
                    .file
                    .read(h.offset, stored_len, cause)?
                    .ok_or_else(missing)?;
                unseal_block(&stored, &self.path, h.offset)?
            }
            Some(w) => {
                let end = h.offset + stored_len as u64;
                let covered = h.offset >= w.start && end <= w.start + w.bytes.len() as u64;
                if !covered {
                    let align = IO_ALIGNMENT as u64;
                    let start = h.offset - h.offset % align;
                    let want = (end - start).max(READ_WINDOW_BYTES as u64);
                    let len = want.min(self.size - start) as usize;
                    w.start = start;
                    w.bytes = self.file.read(start, len, cause)?.ok_or_else(missing)?;
                }
                let from = (h.offset - w.start) as usize;
                let stored = w.bytes.get(from..from + stored_len).ok_or_else(missing)?;
                unseal_block(stored, &self.path, h.offset)?
            }
        };
        let block = Arc::new(Block::decode(contents).map_err(|r| self.corrupt(h.offset, r))?);
        if let Some(cache) = cache {
            cache.insert(self.id, h.offset, Arc::clone(&block));
        }
        Ok(block)
    }

    pub(crate) fn corrupt(&self, offset: u64, reason: String) -> Error {
        Error::CorruptTable {
            file: self.path.clone(),
            offset,
            reason,
        }
    }

    pub(crate) fn index(&self) -> &Arc<Block> {
        &self.index
    }

    /// Whether the filter lets `hash` through (true without a filter).
    pub fn may_contain(&self, hash: u64) -> bool {
        self.filter.as_ref().is_none_or(|f| f.may_contain(hash))
    }

    /// Looks `key` up: filter first, then the one data block that may hold it.
    pub fn get(&self, key: &[u8], hash: u64) -> Result<TableGet> {
        if !self.may_contain(hash) {
            return Ok(TableGet::FilteredOut);
        }
        let mut index = BlockIter::new(Arc::clone(&self.index));
        index.seek(key);
        if !index.is_valid() {
            return Ok(TableGet::NotFound);
        }
        let h = BlockHandle::decode(index.value()).map_err(|r| self.corrupt(0, r))?;
        let block = self.read_block(h, IoCause::ForegroundRead, true, None)?;
        let mut it = BlockIter::new(block);
        it.seek(key);
        if it.is_valid() && it.key() == key {
            let value = it.is_put().then(|| it.value().to_vec());
            return Ok(TableGet::Found(it.seq(), value));
        }
        Ok(TableGet::NotFound)
    }

    /// A cursor over the table; reads are charged to `cause`, and go through the block cache
    /// if `use_cache` (foreground reads) or through a sequential read window if not
    /// (compaction, which should not flush the cache).
    pub fn iter(self: &Arc<Self>, cause: IoCause, use_cache: bool) -> crate::sstable::SsTableIter {
        crate::sstable::SsTableIter::new(Arc::clone(self), cause, use_cache)
    }
}

impl Drop for SsTable {
    /// An obsolete table's file is removed once nobody reads it (RocksDB deletes obsolete
    /// files when the last `Version` referring to them goes). A failure leaves an orphan,
    /// which the next open deletes.
    fn drop(&mut self) {
        if !self.obsolete.load(Ordering::Acquire) {
            return;
        }
        if let Some(cache) = &self.cache {
            cache.forget_table(self.id);
        }
        if let TableFile::Disk { disk, file } = &self.file {
            let _ = disk.close_file(*file);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Sanity check of the handle size the index stores.
const _: () = assert!(BLOCK_HANDLE_SIZE == 12);
