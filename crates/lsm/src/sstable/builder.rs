//! `SsTableBuilder`: writes a table from entries in strictly increasing key order.
//!
//! Data blocks are cut at `block_bytes`, sealed (compressed if asked, checksummed) and
//! streamed to the file in 4 KiB-aligned chunks; the index and the filter are kept in memory
//! until `finish`, which writes filter, index and footer, pads the file to a multiple of
//! 4096 (direct I/O), sets its length (a reused path may hold a longer stale file) and syncs.

use std::sync::Arc;

use storelab_pager::page::IO_ALIGNMENT;
use storelab_pager::{AlignedBuf, Disk, FileId, IoCause};

use crate::config::Compression;
use crate::entry::SeqNo;
use crate::error::Result;
use crate::sstable::block::BlockBuilder;
use crate::sstable::bloom::{BloomFilter, bloom_hash};
use crate::sstable::footer::{Footer, TABLE_FORMAT_VERSION};
use crate::sstable::handle::{BLOCK_TRAILER_SIZE, BlockHandle, seal_block};

/// Bytes accumulated before an aligned chunk is written out.
const WRITE_CHUNK_BYTES: usize = 256 << 10;

/// How a table is laid out.
#[derive(Clone, Copy, Debug)]
pub struct TableOptions {
    /// Target data block size before compression.
    pub block_bytes: usize,
    /// Entries between restart points.
    pub restart_interval: usize,
    /// Bloom filter bits per key (0: no filter).
    pub bloom_bits_per_key: u32,
    /// Data block compression.
    pub compression: Compression,
}

impl From<&crate::config::LsmConfig> for TableOptions {
    fn from(c: &crate::config::LsmConfig) -> Self {
        TableOptions {
            block_bytes: c.block_bytes,
            restart_interval: c.restart_interval,
            bloom_bits_per_key: c.bloom_bits_per_key,
            compression: c.compression,
        }
    }
}

/// Where a builder's bytes go.
enum TableSink {
    Memory(Vec<u8>),
    Disk {
        disk: Arc<Disk>,
        file: FileId,
        cause: IoCause,
        pending: Vec<u8>,
        written: u64,
    },
}

impl TableSink {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match self {
            TableSink::Memory(out) => out.extend_from_slice(bytes),
            TableSink::Disk { pending, .. } => {
                pending.extend_from_slice(bytes);
                if pending.len() >= WRITE_CHUNK_BYTES {
                    self.write_out(false)?;
                }
            }
        }
        Ok(())
    }

    /// Writes the aligned part of the pending bytes (all of it, zero-padded, if `last`).
    fn write_out(&mut self, last: bool) -> Result<()> {
        let TableSink::Disk {
            disk,
            file,
            cause,
            pending,
            written,
        } = self
        else {
            return Ok(());
        };
        let n = if last {
            pending.len().div_ceil(IO_ALIGNMENT) * IO_ALIGNMENT
        } else {
            pending.len() / IO_ALIGNMENT * IO_ALIGNMENT
        };
        if n == 0 {
            return Ok(());
        }
        let mut buf = AlignedBuf::zeroed(n);
        let take = n.min(pending.len());
        buf[..take].copy_from_slice(&pending[..take]);
        disk.write_at(*file, *written, buf, *cause)?;
        pending.drain(..take);
        *written += n as u64;
        Ok(())
    }
}

/// What a finished table is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltTable {
    /// Logical size in bytes (footer end).
    pub size: u64,
    /// Bytes written to the file (padded to 4096).
    pub bytes_written: u64,
    /// Entries.
    pub entry_count: u64,
    /// Smallest and largest sequence numbers.
    pub seq_min: SeqNo,
    /// Largest sequence number.
    pub seq_max: SeqNo,
    /// First key.
    pub smallest: Vec<u8>,
    /// Last key.
    pub largest: Vec<u8>,
    /// The table's bytes, for a builder writing to memory.
    pub bytes: Option<Vec<u8>>,
}

/// Builds one table.
pub struct SsTableBuilder {
    sink: TableSink,
    options: TableOptions,
    block: BlockBuilder,
    index: BlockBuilder,
    hashes: Vec<u64>,
    offset: u64,
    entry_count: u64,
    seq_min: SeqNo,
    seq_max: SeqNo,
    smallest: Vec<u8>,
}

impl std::fmt::Debug for SsTableBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsTableBuilder")
            .field("offset", &self.offset)
            .field("entry_count", &self.entry_count)
            .finish_non_exhaustive()
    }
}

impl SsTableBuilder {
    /// A builder writing to memory (tests, fuzzing).
    pub fn in_memory(options: TableOptions) -> SsTableBuilder {
        SsTableBuilder::with_sink(TableSink::Memory(Vec::new()), options)
    }

    /// A builder writing to `file` (an empty raw file) of `disk`, charging writes to `cause`.
    pub fn on_disk(
        disk: Arc<Disk>,
        file: FileId,
        cause: IoCause,
        options: TableOptions,
    ) -> SsTableBuilder {
        SsTableBuilder::with_sink(
            TableSink::Disk {
                disk,
                file,
                cause,
                pending: Vec::new(),
                written: 0,
            },
            options,
        )
    }

    fn with_sink(sink: TableSink, options: TableOptions) -> SsTableBuilder {
        SsTableBuilder {
            sink,
            options,
            block: BlockBuilder::new(options.restart_interval),
            index: BlockBuilder::new(1),
            hashes: Vec::new(),
            offset: 0,
            entry_count: 0,
            seq_min: SeqNo::MAX,
            seq_max: SeqNo(0),
            smallest: Vec::new(),
        }
    }

    /// Adds an entry (`value: None`: tombstone); keys must strictly increase.
    pub fn add(&mut self, key: &[u8], seq: SeqNo, value: Option<&[u8]>) -> Result<()> {
        if !self.block.is_empty() && self.block.estimated_size() >= self.options.block_bytes {
            self.finish_block()?;
        }
        if self.entry_count == 0 {
            self.smallest = key.to_vec();
        }
        self.block.add(key, seq, value);
        if self.options.bloom_bits_per_key > 0 {
            self.hashes.push(bloom_hash(key));
        }
        self.entry_count += 1;
        self.seq_min = self.seq_min.min(seq);
        self.seq_max = self.seq_max.max(seq);
        Ok(())
    }

    /// Entries added.
    pub fn entry_count(&self) -> u64 {
        self.entry_count
    }

    /// About the size the table would have now.
    pub fn estimated_size(&self) -> u64 {
        self.offset + self.block.estimated_size() as u64
    }

    fn finish_block(&mut self) -> Result<()> {
        let last_key = self.block.last_key().to_vec();
        let contents = self.block.finish();
        let stored = seal_block(&contents, self.options.compression);
        let handle = BlockHandle {
            offset: self.offset,
            size: (stored.len() - BLOCK_TRAILER_SIZE) as u32,
        };
        self.index.add(&last_key, SeqNo(0), Some(&handle.encode()));
        self.sink.write(&stored)?;
        self.offset += stored.len() as u64;
        Ok(())
    }

    /// Writes filter, index and footer; on disk, pads, sets the length and syncs.
    pub fn finish(mut self) -> Result<BuiltTable> {
        assert!(self.entry_count > 0, "an empty table is never written");
        if !self.block.is_empty() {
            self.finish_block()?;
        }
        let largest = self.index.last_key().to_vec();
        let mut filter = BlockHandle {
            offset: self.offset,
            size: 0,
        };
        if self.options.bloom_bits_per_key > 0 {
            let contents =
                BloomFilter::build(&self.hashes, self.options.bloom_bits_per_key).encode();
            let stored = seal_block(&contents, Compression::None);
            filter.size = (stored.len() - BLOCK_TRAILER_SIZE) as u32;
            self.sink.write(&stored)?;
            self.offset += stored.len() as u64;
        }
        let stored = seal_block(&self.index.finish(), Compression::None);
        let index = BlockHandle {
            offset: self.offset,
            size: (stored.len() - BLOCK_TRAILER_SIZE) as u32,
        };
        self.sink.write(&stored)?;
        self.offset += stored.len() as u64;
        let footer = Footer {
            index,
            filter,
            entry_count: self.entry_count,
            seq_min: self.seq_min,
            seq_max: self.seq_max,
            version: TABLE_FORMAT_VERSION,
        };
        self.sink.write(&footer.encode())?;
        self.offset += footer.encode().len() as u64;
        self.sink.write_out(true)?;
        let (bytes, bytes_written) = match self.sink {
            TableSink::Memory(bytes) => {
                let n = bytes.len() as u64;
                (Some(bytes), n)
            }
            TableSink::Disk {
                disk,
                file,
                cause,
                written,
                ..
            } => {
                disk.set_len(file, written)?;
                disk.sync(file, cause)?;
                (None, written)
            }
        };
        Ok(BuiltTable {
            size: self.offset,
            bytes_written,
            entry_count: self.entry_count,
            seq_min: self.seq_min,
            seq_max: self.seq_max,
            smallest: self.smallest,
            largest,
            bytes,
        })
    }
}
