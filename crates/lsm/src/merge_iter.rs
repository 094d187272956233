//! `MergeIter` and `LsmIter`: one sorted stream out of memtables and tables.
//!
//! ```text
//!   memtable      a:9        c:12(del)              sources, each sorted, one version
//!   immutable     a:7   b:8                          per key (highest seq = newest)
//!   L0 table           b:5   c:6    d:3
//!   L1 run        a:1             c:2   d:1  e:1
//!                 ---------------------------------
//!   MergeIter     a:9   b:8  c:12(del) d:3  e:1      newest version of each key
//!   LsmIter       a     b               d    e       tombstones hidden
//! ```
//!
//! Each step takes the smallest key among the sources (largest, in reverse), keeps the
//! version with the highest sequence number and steps every source past that key. With a
//! handful of sources a linear scan is as fast as a heap and simpler to follow.

use std::ops::Bound;
use std::sync::Arc;

use storelab_pager::IoCause;

use crate::entry::Entry;
use crate::error::Result;
use crate::memtable::{Direction, Memtable};
use crate::sstable::{SsTable, SsTableIter};

/// Entries copied out of a memtable per lock hold.
const MEM_CHUNK_ENTRIES: usize = 64;

/// One sorted input of a merge.
pub(crate) trait EntrySource: Send {
    /// The current entry, if any.
    fn current(&self) -> Option<&Entry>;
    /// Moves to the next entry in the source's direction.
    fn advance(&mut self) -> Result<()>;
}

fn owned(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn borrowed(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A memtable read in chunks (no lock held between chunks). The active memtable may change
/// between chunks: an iterator sees each key's version as of the chunk that read it.
pub(crate) struct MemSource {
    mem: Arc<Memtable>,
    dir: Direction,
    after: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    buf: std::collections::VecDeque<Entry>,
    current: Option<Entry>,
}

impl MemSource {
    pub(crate) fn new(
        mem: Arc<Memtable>,
        dir: Direction,
        start: Bound<&[u8]>,
        end: Bound<&[u8]>,
    ) -> MemSource {
        let mut s = MemSource {
            mem,
            dir,
            after: owned(start),
            end: owned(end),
            buf: Default::default(),
            current: None,
        };
        s.refill();
        s.current = s.buf.pop_front();
        s
    }

    fn refill(&mut self) {
        let chunk = self.mem.chunk(
            borrowed(&self.after),
            borrowed(&self.end),
            self.dir,
            MEM_CHUNK_ENTRIES,
        );
        if let Some(last) = chunk.last() {
            self.after = Bound::Excluded(last.key.clone());
        }
        self.buf.extend(chunk);
    }
}

impl EntrySource for MemSource {
    fn current(&self) -> Option<&Entry> {
        self.current.as_ref()
    }
    fn advance(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            self.refill();
        }
        self.current = self.buf.pop_front();
        Ok(())
    }
}

/// One table.
pub(crate) struct TableSource {
    iter: SsTableIter,
    dir: Direction,
    current: Option<Entry>,
}

impl TableSource {
    pub(crate) fn new(
        table: &Arc<SsTable>,
        dir: Direction,
        start: Bound<&[u8]>,
        cause: IoCause,
        use_cache: bool,
    ) -> Result<TableSource> {
        let mut iter = table.iter(cause, use_cache);
        match (dir, start) {
            (Direction::Forward, Bound::Unbounded) => iter.seek_to_first()?,
            (Direction::Forward, Bound::Included(k) | Bound::Excluded(k)) => {
                iter.seek(k)?;
                if matches!(start, Bound::Excluded(_)) && iter.is_valid() && iter.key() == k {
                    iter.next()?;
                }
            }
            (Direction::Reverse, Bound::Unbounded) => iter.seek_to_last()?,
            (Direction::Reverse, Bound::Included(k) | Bound::Excluded(k)) => {
                iter.seek_for_prev(k)?;
                if matches!(start, Bound::Excluded(_)) && iter.is_valid() && iter.key() == k {
                    iter.prev()?;
                }
            }
        }
        let mut s = TableSource {
            iter,
            dir,
            current: None,
        };
        s.load();
        Ok(s)
    }

    fn load(&mut self) {
        self.current = self.iter.is_valid().then(|| Entry {
            key: self.iter.key().to_vec(),
            seq: self.iter.seq(),
            value: self.iter.is_put().then(|| self.iter.value().to_vec()),
        });
    }
}

impl EntrySource for TableSource {
    fn current(&self) -> Option<&Entry> {
        self.current.as_ref()
    }
    fn advance(&mut self) -> Result<()> {
        match self.dir {
            Direction::Forward => self.iter.next()?,
            Direction::Reverse => self.iter.prev()?,
        }
        self.load();
        Ok(())
    }
}

/// A sorted level: its tables one after the other, each opened when reached.
pub(crate) struct LevelSource {
    tables: Vec<Arc<SsTable>>,
    dir: Direction,
    cause: IoCause,
    use_cache: bool,
    /// Tables not yet opened, in walking order (front = next).
    next_table: usize,
    current: Option<TableSource>,
}

impl LevelSource {
    /// `tables` in key order, non-overlapping.
    pub(crate) fn new(
        mut tables: Vec<Arc<SsTable>>,
        dir: Direction,
        start: Bound<&[u8]>,
        cause: IoCause,
        use_cache: bool,
    ) -> Result<LevelSource> {
        // Skip the tables wholly before the start bound.
        match dir {
            Direction::Forward => {
                if let Bound::Included(k) | Bound::Excluded(k) = start {
                    let i = tables.partition_point(|t| t.largest() < k);
                    tables.drain(..i);
                }
            }
            Direction::Reverse => {
                if let Bound::Included(k) | Bound::Excluded(k) = start {
                    let i = tables.partition_point(|t| t.smallest() <= k);
                    tables.truncate(i);
                }
                tables.reverse();
            }
        }
        let mut s = LevelSource {
            tables,
            dir,
            cause,
            use_cache,
            next_table: 0,
            current: None,
        };
        s.open_next(start)?;
        Ok(s)
    }

    /// Opens tables until one has an entry at or after `start`.
    fn open_next(&mut self, start: Bound<&[u8]>) -> Result<()> {
        self.current = None;
        while self.next_table < self.tables.len() {
            let t = Arc::clone(&self.tables[self.next_table]);
            self.next_table += 1;
            let src = TableSource::new(&t, self.dir, start, self.cause, self.use_cache)?;
            if src.current().is_some() {
                self.current = Some(src);
                return Ok(());
            }
        }
        Ok(())
    }
}

impl EntrySource for LevelSource {
    fn current(&self) -> Option<&Entry> {
        self.current.as_ref().and_then(|s| s.current())
    }
    fn advance(&mut self) -> Result<()> {
        if let Some(s) = &mut self.current {
            s.advance()?;
            if s.current().is_none() {
                self.open_next(Bound::Unbounded)?;
            }
        }
        Ok(())
    }
}

/// Merges sources into the newest version of each key, tombstones included, up to `end`.
pub(crate) struct MergeIter {
    sources: Vec<Box<dyn EntrySource>>,
    dir: Direction,
    end: Bound<Vec<u8>>,
}

impl MergeIter {
    pub(crate) fn new(
        sources: Vec<Box<dyn EntrySource>>,
        dir: Direction,
        end: Bound<&[u8]>,
    ) -> MergeIter {
        MergeIter {
            sources,
            dir,
            end: owned(end),
        }
    }

    fn past_end(&self, key: &[u8]) -> bool {
        match (self.dir, &self.end) {
            (_, Bound::Unbounded) => false,
            (Direction::Forward, Bound::Included(e)) => key > e.as_slice(),
            (Direction::Forward, Bound::Excluded(e)) => key >= e.as_slice(),
            (Direction::Reverse, Bound::Included(e)) => key < e.as_slice(),
            (Direction::Reverse, Bound::Excluded(e)) => key <= e.as_slice(),
        }
    }

    /// The next entry (newest version of the next key), or `None` at the end.
    pub(crate) fn next_entry(&mut self) -> Result<Option<Entry>> {
        let mut best: Option<usize> = None;
        for (i, s) in self.sources.iter().enumerate() {
            let Some(e) = s.current() else { continue };
            let Some(b) = best else {
                best = Some(i);
                continue;
            };
            let be = self.sources[b].current().expect("best has an entry");
            let better_key = match self.dir {
                Direction::Forward => e.key < be.key,
                Direction::Reverse => e.key > be.key,
            };
            if better_key || (e.key == be.key && e.seq > be.seq) {
                best = Some(i);
            }
        }
        let Some(b) = best else { return Ok(None) };
        let entry = self.sources[b]
            .current()
            .expect("best has an entry")
            .clone();
        if self.past_end(&entry.key) {
            return Ok(None);
        }
        for s in &mut self.sources {
            if s.current().is_some_and(|e| e.key == entry.key) {
                s.advance()?;
            }
        }
        Ok(Some(entry))
    }
}

/// A range scan of the tree: `(key, value)` pairs in key order (or reverse), tombstones and
/// older versions hidden. Tables are those of the version current when the scan began; the
/// memtables are read in chunks, so writes made during the scan may or may not be seen
/// (there are no snapshots).
pub struct LsmIter {
    merge: MergeIter,
    failed: bool,
}

impl std::fmt::Debug for LsmIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LsmIter")
            .field("sources", &self.merge.sources.len())
            .finish()
    }
}

impl LsmIter {
    pub(crate) fn new(merge: MergeIter) -> LsmIter {
        LsmIter {
            merge,
            failed: false,
        }
    }
}

impl Iterator for LsmIter {
    type Item = Result<(Vec<u8>, Vec<u8>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.merge.next_entry() {
                Ok(None) => return None,
                Ok(Some(Entry {
                    key,
                    value: Some(value),
                    ..
                })) => return Some(Ok((key, value))),
                Ok(Some(_)) => continue,
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::SeqNo;
    use storelab_pager::Lsn;

    fn mem(entries: &[(&str, u64, Option<&str>)]) -> Arc<Memtable> {
        let m = Memtable::new(Lsn(0));
        for (k, seq, v) in entries {
            m.put(k.as_bytes(), SeqNo(*seq), v.map(str::as_bytes));
        }
        Arc::new(m)
    }

    fn scan(dir: Direction, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> Vec<(String, String)> {
        let newer = mem(&[("a", 9, Some("a9")), ("c", 12, None)]);
        let older = mem(&[
            ("a", 7, Some("a7")),
            ("b", 8, Some("b8")),
            ("c", 6, Some("c6")),
        ]);
        let (start, end) = match dir {
            Direction::Forward => (lo, hi),
            Direction::Reverse => (hi, lo),
        };
        let sources: Vec<Box<dyn EntrySource>> = vec![
            Box::new(MemSource::new(older, dir, start, end)),
            Box::new(MemSource::new(newer, dir, start, end)),
        ];
        LsmIter::new(MergeIter::new(sources, dir, end))
            .map(|r| {
                let (k, v) = r.unwrap();
                (String::from_utf8(k).unwrap(), String::from_utf8(v).unwrap())
            })
            .collect()
    }

    /// The highest sequence number wins whatever the source order, and tombstones hide keys.
    #[test]
    fn newest_version_wins_and_tombstones_hide() {
        let all = scan(Direction::Forward, Bound::Unbounded, Bound::Unbounded);
        assert_eq!(all, [("a".into(), "a9".into()), ("b".into(), "b8".into())]);
        let rev = scan(Direction::Reverse, Bound::Unbounded, Bound::Unbounded);
        assert_eq!(rev, [("b".into(), "b8".into()), ("a".into(), "a9".into())]);
        let bounded = scan(
            Direction::Forward,
            Bound::Excluded(b"a"),
            Bound::Included(b"c"),
        );
        assert_eq!(bounded, [("b".to_string(), "b8".to_string())]);
    }
}
