//! `Block`, `BlockBuilder`, `BlockIter`: sorted entries with prefix-compressed keys.
//!
//! ```text
//!  block contents (before the 5-byte trailer of sstable/handle.rs)
//!  +---------+---------+-----+-----------+-----------+-----+---------------+
//!  | entry 0 | entry 1 | ... | restart 0 | restart 1 | ... | restart count |
//!  +---------+---------+-----+-----------+-----------+-----+---------------+
//!                              u32 offsets of restart entries     u32
//!
//!  entry
//!  0        2          4           8                16
//!  +--------+----------+-----------+----------------+-------------+-------+
//!  | shared | unshared | value len | trailer        | key suffix  | value |
//!  |  u16   |   u16    |    u32    | seq << 8 | kind| (unshared)  |       |
//!  +--------+----------+-----------+----------------+-------------+-------+
//! ```
//!
//! Each key is stored as the number of bytes it shares with the previous key plus the rest
//! (LevelDB's prefix compression). Every `restart_interval`-th entry is a restart point that
//! shares nothing, so a search binary-searches the restart keys and then scans at most one
//! interval, and a backward step rescans from the restart before it.
//!
//! Invariants (checked by [`Block::decode`], which walks every entry once, so that the
//! iterator never meets a malformed entry afterwards):
//! 1. At least one entry; keys strictly increase; every key is 1..=[`KEY_SIZE_MAX`] bytes.
//! 2. The first restart is offset 0; restarts strictly increase, each is the start of an entry
//!    whose `shared` is 0.
//! 3. Entries exactly fill the area before the restart array.
//! 4. A tombstone (kind 0) has an empty value; values are at most [`VALUE_SIZE_MAX`] bytes.

use std::cmp::Ordering;
use std::ops::Range;
use std::sync::Arc;

use crate::entry::{SeqNo, pack_trailer, unpack_trailer};
use crate::{KEY_SIZE_MAX, VALUE_SIZE_MAX};

/// Byte offset of `shared` in an entry header.
pub const ENTRY_SHARED_OFFSET: usize = 0;
/// Byte offset of `unshared`.
pub const ENTRY_UNSHARED_OFFSET: usize = ENTRY_SHARED_OFFSET + 2;
/// Byte offset of the value length.
pub const ENTRY_VALUE_LEN_OFFSET: usize = ENTRY_UNSHARED_OFFSET + 2;
/// Byte offset of the trailer (sequence number and kind).
pub const ENTRY_TRAILER_OFFSET: usize = ENTRY_VALUE_LEN_OFFSET + 4;
/// Size of an entry header.
pub const ENTRY_HEADER_SIZE: usize = ENTRY_TRAILER_OFFSET + 8;
const _: () = assert!(ENTRY_HEADER_SIZE == 16);
const _: () = assert!(KEY_SIZE_MAX <= u16::MAX as usize);

/// The largest block contents accepted (bounds every allocation a decoder makes). One entry
/// with the largest key and value must fit.
pub const BLOCK_SIZE_MAX: usize = 4 << 20;
const _: () = assert!(ENTRY_HEADER_SIZE + KEY_SIZE_MAX + VALUE_SIZE_MAX + 8 <= BLOCK_SIZE_MAX);

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Builds one block from entries added in strictly increasing key order.
#[derive(Debug)]
pub struct BlockBuilder {
    data: Vec<u8>,
    restarts: Vec<u32>,
    restart_interval: usize,
    since_restart: usize,
    last_key: Vec<u8>,
    entry_count: usize,
}

impl BlockBuilder {
    /// An empty builder with a restart point every `restart_interval` entries.
    pub fn new(restart_interval: usize) -> BlockBuilder {
        assert!(restart_interval >= 1, "restart interval must be positive");
        BlockBuilder {
            data: Vec::new(),
            restarts: Vec::new(),
            restart_interval,
            since_restart: 0,
            last_key: Vec::new(),
            entry_count: 0,
        }
    }

    /// Appends an entry; `value: None` is a tombstone. Keys must strictly increase.
    pub fn add(&mut self, key: &[u8], seq: SeqNo, value: Option<&[u8]>) {
        assert!(
            (1..=KEY_SIZE_MAX).contains(&key.len()),
            "key of {} bytes",
            key.len()
        );
        let value_bytes = value.unwrap_or(&[]);
        assert!(value_bytes.len() <= VALUE_SIZE_MAX, "value too large");
        assert!(
            self.entry_count == 0 || key > self.last_key.as_slice(),
            "keys added out of order"
        );
        let shared = if self.since_restart == 0 || self.since_restart >= self.restart_interval {
            self.restarts.push(self.data.len() as u32);
            self.since_restart = 0;
            0
        } else {
            key.iter()
                .zip(&self.last_key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        let unshared = key.len() - shared;
        self.data.extend_from_slice(&(shared as u16).to_le_bytes());
        self.data
            .extend_from_slice(&(unshared as u16).to_le_bytes());
        self.data
            .extend_from_slice(&(value_bytes.len() as u32).to_le_bytes());
        self.data
            .extend_from_slice(&pack_trailer(seq, value.is_some()).to_le_bytes());
        self.data.extend_from_slice(&key[shared..]);
        self.data.extend_from_slice(value_bytes);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.since_restart += 1;
        self.entry_count += 1;
    }

    /// True if nothing was added.
    pub fn is_empty(&self) -> bool {
        self.entry_count == 0
    }

    /// Entries added.
    pub fn entry_count(&self) -> usize {
        self.entry_count
    }

    /// The last key added.
    pub fn last_key(&self) -> &[u8] {
        &self.last_key
    }

    /// The size the block would have if finished now.
    pub fn estimated_size(&self) -> usize {
        self.data.len() + 4 * self.restarts.len() + 4
    }

    /// The block contents; the builder is left empty for the next block.
    pub fn finish(&mut self) -> Vec<u8> {
        assert!(self.entry_count > 0, "an empty block is never written");
        let mut out = std::mem::take(&mut self.data);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        self.restarts.clear();
        self.since_restart = 0;
        self.entry_count = 0;
        self.last_key.clear();
        out
    }
}

/// An entry's decoded header, positions relative to the block.
#[derive(Clone, Debug)]
struct EntryHead {
    shared: usize,
    key_suffix: Range<usize>,
    value: Range<usize>,
    trailer: u64,
    next: usize,
}

/// A validated block (see the module invariants).
#[derive(Debug)]
pub struct Block {
    data: Vec<u8>,
    /// End of the entry area (start of the restart array).
    entries_end: usize,
    restarts: Vec<u32>,
    entry_count: usize,
}

impl Block {
    /// Validates block contents and wraps them. `Err` carries the reason.
    pub fn decode(data: Vec<u8>) -> Result<Block, String> {
        let len = data.len();
        if len > BLOCK_SIZE_MAX {
            return Err(format!("block of {len} bytes exceeds {BLOCK_SIZE_MAX}"));
        }
        if len < 4 {
            return Err(format!("block of {len} bytes has no restart count"));
        }
        let restart_count = u32_at(&data, len - 4) as usize;
        let restart_bytes = restart_count
            .checked_mul(4)
            .filter(|&b| b + 4 <= len)
            .ok_or_else(|| format!("restart count {restart_count} does not fit {len} bytes"))?;
        if restart_count == 0 {
            return Err("block without restart points".into());
        }
        let entries_end = len - 4 - restart_bytes;
        let mut restarts = Vec::with_capacity(restart_count);
        for i in 0..restart_count {
            let r = u32_at(&data, entries_end + 4 * i);
            if (r as usize) >= entries_end {
                return Err(format!("restart {i} at {r} is past the entries"));
            }
            if i == 0 && r != 0 {
                return Err(format!("first restart at {r}, not 0"));
            }
            if let Some(&prev) = restarts.last()
                && r <= prev
            {
                return Err(format!("restart {i} at {r} does not increase"));
            }
            restarts.push(r);
        }
        let mut key = Vec::new();
        let mut prev_key = Vec::new();
        let mut at = 0usize;
        let mut next_restart = 0usize;
        let mut entry_count = 0usize;
        while at < entries_end {
            let is_restart = restarts
                .get(next_restart)
                .is_some_and(|&r| r as usize == at);
            let head = parse_entry(&data, entries_end, at, &mut key)?;
            if is_restart {
                next_restart += 1;
                if head.shared != 0 {
                    return Err(format!(
                        "restart entry at {at} shares {} bytes",
                        head.shared
                    ));
                }
            }
            if entry_count > 0 && key <= prev_key {
                return Err(format!("key at {at} does not increase"));
            }
            prev_key.clone_from(&key);
            at = head.next;
            entry_count += 1;
        }
        if next_restart != restarts.len() {
            return Err(format!(
                "restart {next_restart} is not at an entry boundary"
            ));
        }
        Ok(Block {
            data,
            entries_end,
            restarts,
            entry_count,
        })
    }

    /// Entries in the block.
    pub fn entry_count(&self) -> usize {
        self.entry_count
    }

    /// Bytes of the decoded block (what it costs in the block cache).
    pub fn size_bytes(&self) -> usize {
        self.data.len() + 4 * self.restarts.len()
    }

    /// The key of restart `i` (stored whole).
    fn restart_key(&self, i: usize) -> &[u8] {
        let at = self.restarts[i] as usize;
        let unshared = u16_at(&self.data, at + ENTRY_UNSHARED_OFFSET) as usize;
        &self.data[at + ENTRY_HEADER_SIZE..at + ENTRY_HEADER_SIZE + unshared]
    }
}

/// Decodes the entry at `at`, updating `key` from the previous key; checks everything.
fn parse_entry(
    data: &[u8],
    entries_end: usize,
    at: usize,
    key: &mut Vec<u8>,
) -> Result<EntryHead, String> {
    if at + ENTRY_HEADER_SIZE > entries_end {
        return Err(format!("entry header at {at} runs past the entries"));
    }
    let shared = u16_at(data, at + ENTRY_SHARED_OFFSET) as usize;
    let unshared = u16_at(data, at + ENTRY_UNSHARED_OFFSET) as usize;
    let value_len = u32_at(data, at + ENTRY_VALUE_LEN_OFFSET) as usize;
    let trailer = u64_at(data, at + ENTRY_TRAILER_OFFSET);
    if shared > key.len() {
        return Err(format!(
            "entry at {at} shares {shared} bytes of a {}-byte key",
            key.len()
        ));
    }
    let key_len = shared + unshared;
    if !(1..=KEY_SIZE_MAX).contains(&key_len) {
        return Err(format!("entry at {at} has a {key_len}-byte key"));
    }
    if value_len > VALUE_SIZE_MAX {
        return Err(format!("entry at {at} has a {value_len}-byte value"));
    }
    let Some((_, is_put)) = unpack_trailer(trailer) else {
        return Err(format!("entry at {at} has kind {}", trailer & 0xff));
    };
    if !is_put && value_len != 0 {
        return Err(format!("tombstone at {at} carries a value"));
    }
    let suffix_start = at + ENTRY_HEADER_SIZE;
    let value_start = suffix_start + unshared;
    let next = value_start + value_len;
    if next > entries_end {
        return Err(format!("entry at {at} runs past the entries"));
    }
    key.truncate(shared);
    key.extend_from_slice(&data[suffix_start..value_start]);
    Ok(EntryHead {
        shared,
        key_suffix: suffix_start..value_start,
        value: value_start..next,
        trailer,
        next,
    })
}

/// A cursor over a block, forward and backward.
#[derive(Debug)]
pub struct BlockIter {
    block: Arc<Block>,
    /// Offset of the current entry, or `None` when the cursor is off either end.
    current: Option<usize>,
    next: usize,
    key: Vec<u8>,
    value: Range<usize>,
    trailer: u64,
}

impl BlockIter {
    /// A cursor over `block`, positioned nowhere (call a seek).
    pub fn new(block: Arc<Block>) -> BlockIter {
        BlockIter {
            block,
            current: None,
            next: 0,
            key: Vec::new(),
            value: 0..0,
            trailer: 0,
        }
    }

    /// True while the cursor is on an entry.
    pub fn is_valid(&self) -> bool {
        self.current.is_some()
    }

    /// The current key.
    pub fn key(&self) -> &[u8] {
        assert!(self.is_valid(), "key() of an exhausted block cursor");
        &self.key
    }

    /// The current value (empty for a tombstone).
    pub fn value(&self) -> &[u8] {
        assert!(self.is_valid(), "value() of an exhausted block cursor");
        &self.block.data[self.value.clone()]
    }

    /// The current entry's sequence number.
    pub fn seq(&self) -> SeqNo {
        unpack_trailer(self.trailer)
            .expect("kinds validated at decode")
            .0
    }

    /// True if the current entry is a value, false for a tombstone.
    pub fn is_put(&self) -> bool {
        unpack_trailer(self.trailer)
            .expect("kinds validated at decode")
            .1
    }

    fn load(&mut self, at: usize) {
        if at >= self.block.entries_end {
            self.current = None;
            return;
        }
        let head = parse_entry(&self.block.data, self.block.entries_end, at, &mut self.key)
            .expect("entries validated at decode");
        debug_assert!(head.key_suffix.end <= head.value.start);
        self.current = Some(at);
        self.next = head.next;
        self.value = head.value;
        self.trailer = head.trailer;
    }

    fn seek_to_restart(&mut self, i: usize) {
        self.key.clear();
        self.load(self.block.restarts[i] as usize);
    }

    /// Moves to the first entry.
    pub fn seek_to_first(&mut self) {
        self.seek_to_restart(0);
    }

    /// Moves to the last entry.
    pub fn seek_to_last(&mut self) {
        self.seek_to_restart(self.block.restarts.len() - 1);
        while self.next < self.block.entries_end {
            self.load(self.next);
        }
    }

    /// Moves to the next entry (or off the end).
    pub fn next(&mut self) {
        if self.current.is_some() {
            let next = self.next;
            self.load(next);
        }
    }

    /// Moves to the previous entry (or off the front): rescans from the restart before it.
    pub fn prev(&mut self) {
        let Some(target) = self.current else { return };
        let r = self
            .block
            .restarts
            .partition_point(|&r| (r as usize) < target);
        if r == 0 {
            self.current = None;
            return;
        }
        self.seek_to_restart(r - 1);
        while self.next < target {
            self.load(self.next);
        }
    }

    /// Moves to the first entry whose key is at least `key` (or off the end).
    pub fn seek(&mut self, key: &[u8]) {
        // The last restart whose key is below `key`: the answer is at or after it.
        let (mut lo, mut hi) = (0, self.block.restarts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.block.restart_key(mid) < key {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        self.seek_to_restart(lo.saturating_sub(1));
        while self.current.is_some() && self.key.as_slice() < key {
            self.next();
        }
    }

    /// Moves to the last entry whose key is at most `key` (or off the front).
    pub fn seek_for_prev(&mut self, key: &[u8]) {
        self.seek(key);
        match self.current {
            None => self.seek_to_last(),
            Some(_) if self.key.as_slice().cmp(key) == Ordering::Greater => self.prev(),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(n: usize, interval: usize) -> Arc<Block> {
        let mut b = BlockBuilder::new(interval);
        for i in 0..n {
            let key = format!("key{:04}", i * 2);
            if i % 5 == 4 {
                b.add(key.as_bytes(), SeqNo(i as u64), None);
            } else {
                b.add(
                    key.as_bytes(),
                    SeqNo(i as u64),
                    Some(format!("v{i}").as_bytes()),
                );
            }
        }
        Arc::new(Block::decode(b.finish()).unwrap())
    }

    /// Entries come back in order, forward and backward, with values and tombstones.
    #[test]
    fn block_round_trips_both_directions() {
        for interval in [1, 3, 16] {
            let block = build(37, interval);
            assert_eq!(block.entry_count(), 37);
            let mut it = BlockIter::new(Arc::clone(&block));
            it.seek_to_first();
            let mut n = 0;
            while it.is_valid() {
                assert_eq!(it.key(), format!("key{:04}", n * 2).as_bytes());
                assert_eq!(it.is_put(), n % 5 != 4);
                assert_eq!(it.seq(), SeqNo(n as u64));
                if it.is_put() {
                    assert_eq!(it.value(), format!("v{n}").as_bytes());
                }
                n += 1;
                it.next();
            }
            assert_eq!(n, 37);
            it.seek_to_last();
            while it.is_valid() {
                n -= 1;
                assert_eq!(it.key(), format!("key{:04}", n * 2).as_bytes());
                it.prev();
            }
            assert_eq!(n, 0);
        }
    }

    /// Seeks land on the first key at or after (or at or before) the target.
    #[test]
    fn seek_finds_neighbours() {
        let block = build(20, 4);
        let mut it = BlockIter::new(block);
        it.seek(b"key0007");
        assert_eq!(it.key(), b"key0008");
        it.seek(b"key0008");
        assert_eq!(it.key(), b"key0008");
        it.seek(b"a");
        assert_eq!(it.key(), b"key0000");
        it.seek(b"z");
        assert!(!it.is_valid());
        it.seek_for_prev(b"key0007");
        assert_eq!(it.key(), b"key0006");
        it.seek_for_prev(b"z");
        assert_eq!(it.key(), b"key0038");
        it.seek_for_prev(b"a");
        assert!(!it.is_valid());
    }

    /// Truncations and single-bit flips of a block never panic the decoder.
    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut b = BlockBuilder::new(2);
        for i in 0..6u8 {
            b.add(&[b'k', i], SeqNo(1), Some(&[i; 3]));
        }
        let good = b.finish();
        for cut in 0..good.len() {
            let _ = Block::decode(good[..cut].to_vec());
        }
        for bit in 0..good.len() * 8 {
            let mut bad = good.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            if let Ok(block) = Block::decode(bad) {
                let mut it = BlockIter::new(Arc::new(block));
                it.seek_to_last();
                while it.is_valid() {
                    it.prev();
                }
            }
        }
        assert!(Block::decode(Vec::new()).is_err());
        assert!(Block::decode(vec![0, 0, 0, 0]).is_err());
    }
}
