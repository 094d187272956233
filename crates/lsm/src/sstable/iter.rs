//! `SsTableIter`: a two-level cursor (index block, then data block) over one table.

use std::sync::Arc;

use storelab_pager::IoCause;

use crate::entry::SeqNo;
use crate::error::Result;
use crate::sstable::block::BlockIter;
use crate::sstable::handle::BlockHandle;
use crate::sstable::table::{ReadWindow, SsTable};

/// A cursor over a table, forward and backward. Positioning calls read data blocks and can
/// fail; accessors do not.
#[derive(Debug)]
pub struct SsTableIter {
    table: Arc<SsTable>,
    index: BlockIter,
    block: Option<BlockIter>,
    cause: IoCause,
    use_cache: bool,
    window: Option<ReadWindow>,
}

impl SsTableIter {
    /// A cursor positioned nowhere; see [`SsTable::iter`].
    pub fn new(table: Arc<SsTable>, cause: IoCause, use_cache: bool) -> SsTableIter {
        let index = BlockIter::new(Arc::clone(table.index()));
        SsTableIter {
            table,
            index,
            block: None,
            cause,
            use_cache,
            window: (!use_cache).then(ReadWindow::default),
        }
    }

    /// The table.
    pub fn table(&self) -> &Arc<SsTable> {
        &self.table
    }

    fn load_block(&mut self) -> Result<()> {
        if !self.index.is_valid() {
            self.block = None;
            return Ok(());
        }
        let h = BlockHandle::decode(self.index.value()).map_err(|r| self.table.corrupt(0, r))?;
        let block = self
            .table
            .read_block(h, self.cause, self.use_cache, self.window.as_mut())?;
        self.block = Some(BlockIter::new(block));
        Ok(())
    }

    /// True while on an entry.
    pub fn is_valid(&self) -> bool {
        self.block.as_ref().is_some_and(BlockIter::is_valid)
    }

    fn current(&self) -> &BlockIter {
        self.block
            .as_ref()
            .filter(|b| b.is_valid())
            .expect("accessor of an exhausted table cursor")
    }

    /// The current key.
    pub fn key(&self) -> &[u8] {
        self.current().key()
    }

    /// The current value (empty for a tombstone).
    pub fn value(&self) -> &[u8] {
        self.current().value()
    }

    /// The current sequence number.
    pub fn seq(&self) -> SeqNo {
        self.current().seq()
    }

    /// True for a value, false for a tombstone.
    pub fn is_put(&self) -> bool {
        self.current().is_put()
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) -> Result<()> {
        self.index.seek_to_first();
        self.load_block()?;
        if let Some(b) = &mut self.block {
            b.seek_to_first();
        }
        Ok(())
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) -> Result<()> {
        self.index.seek_to_last();
        self.load_block()?;
        if let Some(b) = &mut self.block {
            b.seek_to_last();
        }
        Ok(())
    }

    /// Moves to the first entry with a key at least `key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<()> {
        // The first block whose last key is at least `key` holds the answer.
        self.index.seek(key);
        self.load_block()?;
        if let Some(b) = &mut self.block {
            b.seek(key);
        }
        self.skip_forward()
    }

    /// Moves to the last entry with a key at most `key`.
    pub fn seek_for_prev(&mut self, key: &[u8]) -> Result<()> {
        self.index.seek(key);
        if !self.index.is_valid() {
            return self.seek_to_last();
        }
        self.load_block()?;
        if let Some(b) = &mut self.block {
            b.seek_for_prev(key);
        }
        self.skip_backward()
    }

    /// Moves to the next entry.
    #[allow(clippy::should_implement_trait)] // A cursor step that can fail on I/O, not an Iterator.
    pub fn next(&mut self) -> Result<()> {
        if let Some(b) = &mut self.block {
            b.next();
        }
        self.skip_forward()
    }

    /// Moves to the previous entry.
    pub fn prev(&mut self) -> Result<()> {
        if let Some(b) = &mut self.block {
            b.prev();
        }
        self.skip_backward()
    }

    /// Past the end of a block: on to the first entry of the next one.
    fn skip_forward(&mut self) -> Result<()> {
        while self.block.is_some() && !self.is_valid() {
            self.index.next();
            self.load_block()?;
            if let Some(b) = &mut self.block {
                b.seek_to_first();
            }
        }
        Ok(())
    }

    /// Before the start of a block: back to the last entry of the previous one.
    fn skip_backward(&mut self) -> Result<()> {
        while self.block.is_some() && !self.is_valid() {
            self.index.prev();
            self.load_block()?;
            if let Some(b) = &mut self.block {
                b.seek_to_last();
            }
        }
        Ok(())
    }
}
