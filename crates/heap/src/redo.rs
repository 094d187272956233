//! The heap's WAL records and their redo.
//!
//! One record type, [`REC_HEAP`], whose block data is a list of page operations applied in
//! order (a heap insert is one `Insert`; an update on one page is `Insert` then
//! `SetUpdated`; an update across pages is two blocks). Prune and VACUUM log whole page
//! images (PAGE_IMAGES records): simpler than PostgreSQL's compact prune records, at the cost
//! of a page of log per pruned page.
//!
//! ```text
//!   op Insert:      0x01 | slot u16 | flags u16 | row_len u16 | row bytes
//!   op SetUpdated:  0x02 | slot u16 | next page u64 | next slot u16 | hot u8
//!   op SetDeleted:  0x03 | slot u16
//! ```
//!
//! Redo of `Insert` checks that the page puts the tuple at the logged slot: slot choice is
//! deterministic given the page's state, which the page LSN guarantees is the one logged.

use storelab_pager::PageId;
use storelab_wal::{Record, RecordType, RedoRegistry};

use crate::heap_page::{HeapPageMut, LinePointer, TupleFlags};
use crate::tid::{SlotId, Tid};

/// WAL record: operations on heap pages (one op list per block).
pub const REC_HEAP: RecordType = RecordType(24);

const OP_INSERT: u8 = 1;
const OP_SET_UPDATED: u8 = 2;
const OP_SET_DELETED: u8 = 3;

/// One logged operation on a heap page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageOp<'a> {
    /// A tuple inserted at `slot`.
    Insert {
        /// Where it went.
        slot: SlotId,
        /// Its flags (none or heap-only).
        flags: TupleFlags,
        /// The tuple's data.
        row: &'a [u8],
    },
    /// The tuple at `slot` was updated to `next`.
    SetUpdated {
        /// The old version.
        slot: SlotId,
        /// The new version.
        next: Tid,
        /// A HOT update.
        hot: bool,
    },
    /// The tuple at `slot` was deleted.
    SetDeleted {
        /// The deleted tuple.
        slot: SlotId,
    },
}

/// Appends the encoding of `op` to `out`.
pub fn encode_op(op: &PageOp<'_>, out: &mut Vec<u8>) {
    match op {
        PageOp::Insert { slot, flags, row } => {
            out.push(OP_INSERT);
            out.extend_from_slice(&slot.0.to_le_bytes());
            out.extend_from_slice(&flags.0.to_le_bytes());
            out.extend_from_slice(&(row.len() as u16).to_le_bytes());
            out.extend_from_slice(row);
        }
        PageOp::SetUpdated { slot, next, hot } => {
            out.push(OP_SET_UPDATED);
            out.extend_from_slice(&slot.0.to_le_bytes());
            out.extend_from_slice(&next.page_id.0.to_le_bytes());
            out.extend_from_slice(&next.slot.0.to_le_bytes());
            out.push(u8::from(*hot));
        }
        PageOp::SetDeleted { slot } => {
            out.push(OP_SET_DELETED);
            out.extend_from_slice(&slot.0.to_le_bytes());
        }
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!(
                "heap op truncated: {} bytes left, {n} needed",
                self.0.len()
            ));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// Decodes an op list (bytes from the log: every length checked).
pub fn decode_ops(bytes: &[u8]) -> Result<Vec<PageOp<'_>>, String> {
    let mut input = Input(bytes);
    let mut ops = Vec::new();
    while !input.0.is_empty() {
        let op = match input.u8()? {
            OP_INSERT => {
                let slot = SlotId(input.u16()?);
                let flags = TupleFlags(input.u16()?);
                let len = input.u16()? as usize;
                let row = input.take(len)?;
                PageOp::Insert { slot, flags, row }
            }
            OP_SET_UPDATED => {
                let slot = SlotId(input.u16()?);
                let page = PageId(input.u64()?);
                let next_slot = SlotId(input.u16()?);
                let hot = input.u8()? != 0;
                PageOp::SetUpdated {
                    slot,
                    next: Tid::new(page, next_slot),
                    hot,
                }
            }
            OP_SET_DELETED => PageOp::SetDeleted {
                slot: SlotId(input.u16()?),
            },
            other => return Err(format!("unknown heap op {other}")),
        };
        ops.push(op);
    }
    Ok(ops)
}

/// Applies `ops` to a heap page, checking each against the page first (a log that does not
/// match the page is an error, never a panic).
pub fn apply_ops(page: &mut HeapPageMut<'_>, ops: &[PageOp<'_>]) -> Result<(), String> {
    for op in ops {
        match *op {
            PageOp::Insert { slot, flags, row } => {
                if flags.0 & !TupleFlags::HEAP_ONLY.0 != 0
                    || row.len() > crate::heap_page::row_size_max(page.as_ref().page_size())
                    || !page.as_ref().fits(row.len())
                {
                    return Err(format!(
                        "insert of {} bytes at {slot} does not fit",
                        row.len()
                    ));
                }
                let got = page.insert(row, flags).expect("fits was checked");
                if got != slot {
                    return Err(format!("insert went to slot {got}, the log says {slot}"));
                }
            }
            PageOp::SetUpdated { slot, next, hot } => {
                let view = page.as_ref();
                let live = view.tuple(slot).is_some_and(|t| t.is_live());
                let self_tid = Tid::new(view.page_id(), slot);
                let hot_ok = !hot
                    || (next.page_id == view.page_id()
                        && view
                            .tuple(next.slot)
                            .is_some_and(|t| t.flags.contains(TupleFlags::HEAP_ONLY)));
                if !live || next == self_tid || !hot_ok {
                    return Err(format!(
                        "update of {slot} to {next} does not match the page"
                    ));
                }
                page.set_updated(slot, next, hot);
            }
            PageOp::SetDeleted { slot } => {
                let view = page.as_ref();
                if !matches!(view.line_pointer(slot), Some(LinePointer::Normal { .. }))
                    || !view.tuple(slot).is_some_and(|t| t.is_live())
                {
                    return Err(format!("delete of {slot} does not match the page"));
                }
                page.set_deleted(slot);
            }
        }
    }
    Ok(())
}

/// Registers the heap's redo function.
pub fn register_redo(registry: &mut RedoRegistry) {
    registry.register(REC_HEAP, |record: &Record, block, page| {
        let ops = decode_ops(&record.blocks[block].data)?;
        let page_size = page.len();
        crate::heap_page::validate(page, page_size).map_err(|e| e.to_string())?;
        apply_ops(&mut HeapPageMut::new(page, page_size), &ops)
    });
}
