//! Recovery: redo from the last checkpoint to the end of the log.
//!
//! ```text
//!   control file --> redo LSN          end of valid log (torn tail discarded)
//!                       |                          |
//!   log:  ... [ckpt] ...|[r1][r2][ckpt][r3]...[rn] |xx torn xx
//!                       |-------- replayed --------|
//! ```
//!
//! For each record, for each page it names: if the page's LSN is at or past the record's end,
//! the change is already on the page and is skipped (redo is idempotent by page LSN);
//! otherwise a full-page image is restored, or the record type's redo function is applied,
//! and the page's LSN is set to the record's end. A page that fails its checksum is repaired by
//! the first image of it found in the log after the redo point; without one, recovery stops
//! with [`Error::UnrepairablePage`] rather than build on a damaged page. After redo, recovery
//! takes a checkpoint, so the next crash starts from here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use storelab_pager::page::PageHeader;
use storelab_pager::{BufferPool, Lsn};

use crate::error::{Error, Result};
use crate::reader::{ReadEnd, WalReader};
use crate::record::{RECORD_GROUP_END, RECORD_GROUP_FIRST, RECORD_IN_GROUP, Record, RecordType};

/// The most log bytes one atomic group may hold back during recovery (bounds the memory a
/// corrupt or hostile log can make recovery use).
pub const GROUP_BYTES_MAX: usize = 256 << 20;
use crate::wal::Wal;

/// A redo function: applies block `block` of `record` to `page` (the whole page, header
/// included). Errors are reported with the record's LSN.
pub type RedoFn =
    dyn Fn(&Record, usize, &mut [u8]) -> std::result::Result<(), String> + Send + Sync;

/// The redo functions of the record types engines define.
#[derive(Default)]
pub struct RedoRegistry {
    functions: HashMap<RecordType, Box<RedoFn>>,
}

impl std::fmt::Debug for RedoRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedoRegistry")
            .field("types", &self.functions.len())
            .finish()
    }
}

impl RedoRegistry {
    /// An empty registry.
    pub fn new() -> RedoRegistry {
        RedoRegistry::default()
    }

    /// Registers the redo of `record_type` (at least [`RecordType::FIRST_ENGINE`]).
    pub fn register(
        &mut self,
        record_type: RecordType,
        redo: impl Fn(&Record, usize, &mut [u8]) -> std::result::Result<(), String>
        + Send
        + Sync
        + 'static,
    ) {
        assert!(
            record_type >= RecordType::FIRST_ENGINE,
            "record type {record_type:?} is reserved"
        );
        let previous = self.functions.insert(record_type, Box::new(redo));
        assert!(
            previous.is_none(),
            "record type {record_type:?} registered twice"
        );
    }
}

/// What recovery did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Where redo started.
    pub redo_start: Lsn,
    /// Where the valid log ended, and why.
    pub end: ReadEnd,
    /// Records read after the redo point.
    pub record_count: u64,
    /// Page changes applied.
    pub pages_redone: u64,
    /// Page changes skipped because the page already had them.
    pub pages_skipped: u64,
    /// Full-page images restored (including over damaged pages).
    pub images_restored: u64,
    /// Torn pages repaired from the doublewrite area.
    pub doublewrite_repaired: u64,
    /// Records of atomic groups without an end marker, not replayed.
    pub records_discarded: u64,
}

impl Wal {
    /// Replays the log from the last checkpoint into `pool`'s pages and checkpoints. Every
    /// relation the log may name must be attached first. Installs the WAL as the pool's
    /// write-back hook (the write-ahead rule) before touching any page.
    pub fn recover(
        self: &Arc<Self>,
        pool: &BufferPool,
        redo: &RedoRegistry,
    ) -> Result<RecoveryReport> {
        pool.set_write_back_hook(
            Arc::clone(self) as Arc<dyn storelab_pager::buffer_pool::WriteBackHook>
        );
        let mut report = RecoveryReport {
            redo_start: self.recovery_start,
            end: self.recovery_end.clone(),
            record_count: 0,
            pages_redone: 0,
            pages_skipped: 0,
            images_restored: 0,
            doublewrite_repaired: 0,
            records_discarded: 0,
        };
        if let Some(area) = &self.doublewrite {
            report.doublewrite_repaired = area.recover(pool, &|rel| self.file_of(rel))? as u64;
        }
        let mut reader = WalReader::new(
            Arc::clone(self.backend()),
            self.dir(),
            self.geometry(),
            self.page_size(),
            self.recovery_start,
        );
        // Records of an atomic group wait here until the group's end marker is read.
        let mut group: Vec<Record> = Vec::new();
        let mut group_bytes = 0usize;
        while let Some(record) = reader.next_record()? {
            if record.lsn >= self.recovery_end.lsn {
                break;
            }
            report.record_count += 1;
            if record.flags & RECORD_IN_GROUP == 0 {
                self.redo_record(pool, redo, &record, &mut report)?;
                continue;
            }
            if record.flags & RECORD_GROUP_FIRST != 0 && !group.is_empty() {
                // A group cut short by an earlier crash, then a new one: drop the old.
                report.records_discarded += group.len() as u64;
                group.clear();
                group_bytes = 0;
            }
            if record.flags & RECORD_GROUP_END != 0 {
                for r in group.drain(..) {
                    self.redo_record(pool, redo, &r, &mut report)?;
                }
                group_bytes = 0;
                continue;
            }
            group_bytes += record.len;
            if group_bytes > GROUP_BYTES_MAX {
                return Err(Error::Redo {
                    lsn: record.lsn,
                    reason: format!("atomic group larger than {GROUP_BYTES_MAX} bytes"),
                });
            }
            group.push(record);
        }
        // A group without its end marker: the operation never finished, and none of its
        // pages reached disk (no-steal), so dropping it leaves every file consistent.
        report.records_discarded += group.len() as u64;
        self.recovered.store(true, Ordering::Release);
        self.checkpoint(pool)?;
        Ok(report)
    }

    fn redo_record(
        &self,
        pool: &BufferPool,
        redo: &RedoRegistry,
        record: &Record,
        report: &mut RecoveryReport,
    ) -> Result<()> {
        if record.record_type == RecordType::CHECKPOINT || record.record_type == RecordType::NOOP {
            return Ok(());
        }
        let function = if record.record_type == RecordType::PAGE_IMAGES {
            None
        } else {
            Some(
                redo.functions
                    .get(&record.record_type)
                    .ok_or(Error::UnknownRecordType {
                        lsn: record.lsn,
                        record_type: record.record_type.0,
                    })?,
            )
        };
        let end = record.end_lsn();
        for (i, block) in record.blocks.iter().enumerate() {
            let file = self.file_of(block.rel).ok_or(Error::UnknownRelation {
                lsn: record.lsn,
                rel: block.rel.0,
            })?;
            if let Some(image) = &block.image {
                let mut page = pool.page_for_overwrite(file, block.page_id)?;
                // A cached valid page may already be past this record; a fresh frame is zeroed.
                if page.lsn() >= end && PageHeader::read(&page).version != 0 {
                    report.pages_skipped += 1;
                    continue;
                }
                let header = PageHeader::read(image);
                if header.page_id != block.page_id {
                    return Err(Error::Redo {
                        lsn: record.lsn,
                        reason: format!(
                            "image of page {} filed under page {}",
                            header.page_id, block.page_id
                        ),
                    });
                }
                page.copy_from_slice(image);
                page.set_lsn(end);
                report.images_restored += 1;
                continue;
            }
            pool.disk().ensure_page_count(file, block.page_id.0 + 1)?;
            let mut page = match pool.write(file, block.page_id) {
                Ok(page) => page,
                Err(source) => {
                    return Err(Error::UnrepairablePage {
                        file: pool.disk().path(file)?,
                        page_id: block.page_id,
                        lsn: record.lsn,
                        source,
                    });
                }
            };
            if page.lsn() >= end {
                report.pages_skipped += 1;
                continue;
            }
            let Some(function) = function else {
                return Err(Error::Redo {
                    lsn: record.lsn,
                    reason: format!("page-images record without an image for block {i}"),
                });
            };
            function(record, i, &mut page).map_err(|reason| Error::Redo {
                lsn: record.lsn,
                reason,
            })?;
            page.set_lsn(end);
            report.pages_redone += 1;
        }
        Ok(())
    }
}
