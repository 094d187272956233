//! The manifest: which tables make up the tree, changed only by whole, checksummed edits.
//!
//! ```text
//!  MANIFEST-000007 (docs/format/lsm-manifest.md)
//!  +--------------------+------------------+-----------+-----------+-----+-------+
//!  | header (16 bytes)   | record: snapshot | record:   | record:   | ... | zeros |
//!  | magic, version      | (every table)    | edit      | edit      |     |       |
//!  +--------------------+------------------+-----------+-----------+-----+-------+
//!  record: crc u32 | len u32 | edit (len bytes)      crc = CRC-32C(len bytes, edit)
//! ```
//!
//! A flush adds one table; a compaction deletes its inputs and adds its outputs: each is one
//! [`VersionEdit`], appended and synced before the new tables are used or the old files are
//! deleted. A crash leaves the manifest ending with the last synced edit (a torn append fails
//! its checksum and is ignored), so the set of tables is the one before or the one after the
//! change, never a mix (LevelDB's `VersionEdit` and `MANIFEST`).
//!
//! No renames are needed: every open writes a fresh manifest with a higher number, starting
//! with a snapshot of the whole tree, syncs it, then deletes the older manifests. The
//! highest-numbered manifest whose header and first record are valid is the current one. The
//! same happens when a manifest grows past `manifest_bytes_max`.
//!
//! Appends rewrite the manifest's partial last 4 KiB sector together with the new record
//! (direct I/O writes whole sectors). A sector write is assumed atomic, so the rewrite cannot
//! lose the edits already in that sector, which are the same bytes (the WAL relies on the
//! same assumption for its tail block).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use storelab_pager::page::IO_ALIGNMENT;
use storelab_pager::{AlignedBuf, Disk, FileId, IoCause, Lsn};

use crate::KEY_SIZE_MAX;
use crate::entry::SeqNo;
use crate::error::{Error, Result};
use crate::sstable::TableId;
use crate::version::LEVEL_COUNT_MAX;

/// "SLLSMMAN" as a little-endian u64.
pub const MANIFEST_MAGIC: u64 = u64::from_le_bytes(*b"SLLSMMAN");
/// The manifest format this build writes and reads.
pub const MANIFEST_FORMAT_VERSION: u32 = 1;
/// Byte offset of the magic in the manifest header.
pub const MANIFEST_MAGIC_OFFSET: usize = 0;
/// Byte offset of the format version.
pub const MANIFEST_VERSION_OFFSET: usize = MANIFEST_MAGIC_OFFSET + 8;
/// Byte offset of the reserved word.
pub const MANIFEST_RESERVED_OFFSET: usize = MANIFEST_VERSION_OFFSET + 4;
/// Size of the manifest header.
pub const MANIFEST_HEADER_SIZE: usize = MANIFEST_RESERVED_OFFSET + 4;
const _: () = assert!(MANIFEST_HEADER_SIZE == 16);
/// Size of a record header (crc, len).
pub const MANIFEST_RECORD_HEADER_SIZE: usize = 8;
/// The largest edit accepted (bounds the reader's allocations).
pub const MANIFEST_RECORD_SIZE_MAX: usize = 64 << 20;
/// The most tables one edit may add or delete.
pub const EDIT_TABLES_MAX: usize = 1 << 20;

/// Edit kind: a snapshot of the whole tree (the first record of every manifest).
pub const EDIT_KIND_SNAPSHOT: u8 = 1;
/// Edit kind: a change relative to the state before it.
pub const EDIT_KIND_CHANGE: u8 = 2;

/// What the manifest records about one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableMeta {
    /// The table's number (its file name).
    pub id: TableId,
    /// Its level.
    pub level: u8,
    /// Logical size in bytes (where its footer ends).
    pub size: u64,
    /// Entries.
    pub entry_count: u64,
    /// Smallest sequence number.
    pub seq_min: SeqNo,
    /// Largest sequence number.
    pub seq_max: SeqNo,
    /// First key.
    pub smallest: Vec<u8>,
    /// Last key.
    pub largest: Vec<u8>,
}

/// One atomic change of the tree's shape.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct VersionEdit {
    /// A snapshot (every live table) rather than a change.
    pub snapshot: bool,
    /// The log before this point is in tables: replay starts here.
    pub log_covered: Lsn,
    /// The largest sequence number used so far.
    pub last_seq: SeqNo,
    /// The next table number to hand out.
    pub next_table: u64,
    /// Tables removed, as (level, table).
    pub deleted: Vec<(u8, TableId)>,
    /// Tables added.
    pub added: Vec<TableMeta>,
}

impl VersionEdit {
    /// The edit's bytes (see docs/format/lsm-manifest.md).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.push(if self.snapshot {
            EDIT_KIND_SNAPSHOT
        } else {
            EDIT_KIND_CHANGE
        });
        out.extend_from_slice(&self.log_covered.0.to_le_bytes());
        out.extend_from_slice(&self.last_seq.0.to_le_bytes());
        out.extend_from_slice(&self.next_table.to_le_bytes());
        out.extend_from_slice(&(self.deleted.len() as u32).to_le_bytes());
        for (level, id) in &self.deleted {
            out.push(*level);
            out.extend_from_slice(&id.0.to_le_bytes());
        }
        out.extend_from_slice(&(self.added.len() as u32).to_le_bytes());
        for t in &self.added {
            out.push(t.level);
            out.extend_from_slice(&t.id.0.to_le_bytes());
            out.extend_from_slice(&t.size.to_le_bytes());
            out.extend_from_slice(&t.entry_count.to_le_bytes());
            out.extend_from_slice(&t.seq_min.0.to_le_bytes());
            out.extend_from_slice(&t.seq_max.0.to_le_bytes());
            out.extend_from_slice(&(t.smallest.len() as u16).to_le_bytes());
            out.extend_from_slice(&t.smallest);
            out.extend_from_slice(&(t.largest.len() as u16).to_le_bytes());
            out.extend_from_slice(&t.largest);
        }
        out
    }

    /// Decodes an edit; `Err` carries the reason. Every count and length is checked against
    /// the bytes left before anything is allocated.
    pub fn decode(bytes: &[u8]) -> Result<VersionEdit, String> {
        let mut r = Reader { bytes, at: 0 };
        let kind = r.u8()?;
        let snapshot = match kind {
            EDIT_KIND_SNAPSHOT => true,
            EDIT_KIND_CHANGE => false,
            k => return Err(format!("edit kind {k}")),
        };
        let log_covered = Lsn(r.u64()?);
        let last_seq = SeqNo(r.u64()?);
        let next_table = r.u64()?;
        let deleted_count = r.u32()? as usize;
        if deleted_count > EDIT_TABLES_MAX || deleted_count * 9 > r.left() {
            return Err(format!("{deleted_count} deleted tables"));
        }
        let mut deleted = Vec::with_capacity(deleted_count);
        for _ in 0..deleted_count {
            let level = r.level()?;
            deleted.push((level, TableId(r.u64()?)));
        }
        let added_count = r.u32()? as usize;
        if added_count > EDIT_TABLES_MAX || added_count * 45 > r.left() {
            return Err(format!("{added_count} added tables"));
        }
        let mut added = Vec::with_capacity(added_count);
        for _ in 0..added_count {
            let level = r.level()?;
            let id = TableId(r.u64()?);
            let size = r.u64()?;
            let entry_count = r.u64()?;
            let seq_min = SeqNo(r.u64()?);
            let seq_max = SeqNo(r.u64()?);
            let smallest = r.key()?;
            let largest = r.key()?;
            if smallest > largest || seq_min > seq_max || id.0 >= next_table {
                return Err(format!("table {id} has an impossible description"));
            }
            added.push(TableMeta {
                id,
                level,
                size,
                entry_count,
                seq_min,
                seq_max,
                smallest,
                largest,
            });
        }
        if r.left() != 0 {
            return Err(format!("{} bytes after the edit", r.left()));
        }
        if snapshot && !deleted.is_empty() {
            return Err("a snapshot deletes tables".into());
        }
        Ok(VersionEdit {
            snapshot,
            log_covered,
            last_seq,
            next_table,
            deleted,
            added,
        })
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.left() < n {
            return Err(format!(
                "edit ends at {} of {} bytes",
                self.bytes.len(),
                self.at + n
            ));
        }
        let s = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn level(&mut self) -> Result<u8, String> {
        let level = self.u8()?;
        if level as usize >= LEVEL_COUNT_MAX {
            return Err(format!("level {level}"));
        }
        Ok(level)
    }
    fn key(&mut self) -> Result<Vec<u8>, String> {
        let len = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        if !(1..=KEY_SIZE_MAX).contains(&len) {
            return Err(format!("key of {len} bytes"));
        }
        Ok(self.take(len)?.to_vec())
    }
}

/// The file name of manifest number `n`.
pub fn manifest_file_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

/// The number in a manifest file name.
pub fn parse_manifest_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("MANIFEST-")?;
    if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The edits of a manifest file, in order, the first being a snapshot; `Ok(None)` if the
/// file is not a usable manifest (no valid header or snapshot: it was being created when a
/// crash came). A damaged record followed by more data is an error, not a torn tail.
pub fn read_manifest(bytes: &[u8], path: &Path) -> Result<Option<Vec<VersionEdit>>> {
    if bytes.len() < MANIFEST_HEADER_SIZE {
        return Ok(None);
    }
    let magic = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let version = u32::from_le_bytes(
        bytes[MANIFEST_VERSION_OFFSET..MANIFEST_VERSION_OFFSET + 4]
            .try_into()
            .expect("4 bytes"),
    );
    if magic != MANIFEST_MAGIC {
        return Ok(None);
    }
    if version != MANIFEST_FORMAT_VERSION {
        return Err(Error::CorruptManifest {
            file: path.to_path_buf(),
            offset: MANIFEST_VERSION_OFFSET as u64,
            reason: format!("format version {version}, this build reads {MANIFEST_FORMAT_VERSION}"),
        });
    }
    let mut edits = Vec::new();
    let mut at = MANIFEST_HEADER_SIZE;
    while at + MANIFEST_RECORD_HEADER_SIZE <= bytes.len() {
        let crc = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes")) as usize;
        if crc == 0 && len == 0 {
            break; // zeros: the end of what was written
        }
        let end = at + MANIFEST_RECORD_HEADER_SIZE + len;
        let valid = len <= MANIFEST_RECORD_SIZE_MAX
            && end <= bytes.len()
            && crc32c::crc32c(&bytes[at + 4..end]) == crc;
        if !valid {
            // A torn last append: nothing but zeros may follow what it claimed.
            let claimed_end = end.min(bytes.len());
            let rest_is_zero = len > MANIFEST_RECORD_SIZE_MAX
                || bytes[claimed_end.max(at + MANIFEST_RECORD_HEADER_SIZE)..]
                    .iter()
                    .all(|&b| b == 0);
            if !rest_is_zero {
                return Err(Error::CorruptManifest {
                    file: path.to_path_buf(),
                    offset: at as u64,
                    reason: "damaged record followed by more records".into(),
                });
            }
            break;
        }
        let edit = VersionEdit::decode(&bytes[at + MANIFEST_RECORD_HEADER_SIZE..end]).map_err(
            |reason| Error::CorruptManifest {
                file: path.to_path_buf(),
                offset: at as u64,
                reason,
            },
        )?;
        if edits.is_empty() != edit.snapshot {
            return Err(Error::CorruptManifest {
                file: path.to_path_buf(),
                offset: at as u64,
                reason: "a snapshot must come first, and only first".into(),
            });
        }
        edits.push(edit);
        at = end;
    }
    if edits.is_empty() {
        return Ok(None);
    }
    Ok(Some(edits))
}

/// The manifest being appended to.
pub struct Manifest {
    disk: Arc<Disk>,
    path: PathBuf,
    number: u64,
    file: FileId,
    /// Logical bytes written (header and records).
    len: u64,
    /// The bytes from the last 4 KiB boundary at or before `len` up to `len`.
    tail: Vec<u8>,
    /// Bytes written to storage, padding included (for the ledger-independent stats).
    bytes_written: u64,
}

impl std::fmt::Debug for Manifest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manifest")
            .field("path", &self.path)
            .field("len", &self.len)
            .finish()
    }
}

impl Manifest {
    /// Creates manifest `number` in `dir` holding `snapshot`, synced, and syncs the directory.
    pub fn create(
        disk: &Arc<Disk>,
        dir: &Path,
        number: u64,
        snapshot: &VersionEdit,
        ledger_name: &str,
    ) -> Result<Manifest> {
        assert!(snapshot.snapshot, "a manifest starts with a snapshot");
        let path = dir.join(manifest_file_name(number));
        let file = disk.open_raw_file(&path, ledger_name, true)?;
        let mut header = vec![0u8; MANIFEST_HEADER_SIZE];
        header[..8].copy_from_slice(&MANIFEST_MAGIC.to_le_bytes());
        header[MANIFEST_VERSION_OFFSET..MANIFEST_VERSION_OFFSET + 4]
            .copy_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        let mut m = Manifest {
            disk: Arc::clone(disk),
            path,
            number,
            file,
            len: 0,
            tail: header,
            bytes_written: 0,
        };
        m.len = MANIFEST_HEADER_SIZE as u64;
        // A reused path may hold a longer stale file: cut it before the first write.
        disk.set_len(file, 0)?;
        m.append(snapshot)?;
        sync_dir(dir)?;
        Ok(m)
    }

    /// Appends an edit and syncs it: when this returns, the edit survives a crash.
    pub fn append(&mut self, edit: &VersionEdit) -> Result<()> {
        let body = edit.encode();
        assert!(body.len() <= MANIFEST_RECORD_SIZE_MAX, "edit too large");
        let mut record = Vec::with_capacity(body.len() + MANIFEST_RECORD_HEADER_SIZE);
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&(body.len() as u32).to_le_bytes());
        record.extend_from_slice(&body);
        let crc = crc32c::crc32c(&record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        self.tail.extend_from_slice(&record);
        let tail_start = self.len - (self.len % IO_ALIGNMENT as u64);
        let new_len = tail_start + self.tail.len() as u64;
        let padded = self.tail.len().div_ceil(IO_ALIGNMENT) * IO_ALIGNMENT;
        let mut buf = AlignedBuf::zeroed(padded);
        buf[..self.tail.len()].copy_from_slice(&self.tail);
        self.disk
            .write_at(self.file, tail_start, buf, IoCause::Flush)?;
        self.disk.sync(self.file, IoCause::Flush)?;
        self.bytes_written += padded as u64;
        self.len = new_len;
        let keep_from = (new_len - new_len % IO_ALIGNMENT as u64 - tail_start) as usize;
        self.tail.drain(..keep_from);
        Ok(())
    }

    /// Logical size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True if only the header was written (never the case after `create`).
    pub fn is_empty(&self) -> bool {
        self.len <= MANIFEST_HEADER_SIZE as u64
    }

    /// The manifest's number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// Bytes written to storage so far (sector padding included).
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Closes the file (it stays on disk).
    pub fn close(self) {
        let _ = self.disk.close_file(self.file);
    }
}

/// Makes a directory's entries (new or deleted files) durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let d = std::fs::File::open(dir).map_err(|e| Error::io(dir, "open directory", e))?;
    d.sync_all()
        .map_err(|e| Error::io(dir, "fsync directory", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edit() -> VersionEdit {
        VersionEdit {
            snapshot: false,
            log_covered: Lsn(77),
            last_seq: SeqNo(9),
            next_table: 12,
            deleted: vec![(0, TableId(3)), (1, TableId(4))],
            added: vec![TableMeta {
                id: TableId(11),
                level: 1,
                size: 4096,
                entry_count: 5,
                seq_min: SeqNo(1),
                seq_max: SeqNo(9),
                smallest: b"a".to_vec(),
                largest: b"z".to_vec(),
            }],
        }
    }

    /// An edit round-trips; every truncation is refused without a panic.
    #[test]
    fn edit_round_trips_and_truncations_are_refused() {
        let e = edit();
        let bytes = e.encode();
        assert_eq!(VersionEdit::decode(&bytes).unwrap(), e);
        for cut in 0..bytes.len() {
            assert!(VersionEdit::decode(&bytes[..cut]).is_err());
        }
    }

    /// A torn last record is ignored; a damaged record followed by another is an error.
    #[test]
    fn torn_tail_is_ignored_but_damage_in_the_middle_is_not() {
        let mut file = vec![0u8; MANIFEST_HEADER_SIZE];
        file[..8].copy_from_slice(&MANIFEST_MAGIC.to_le_bytes());
        file[8..12].copy_from_slice(&MANIFEST_FORMAT_VERSION.to_le_bytes());
        let snap = VersionEdit {
            snapshot: true,
            next_table: 12,
            ..VersionEdit::default()
        };
        for e in [snap, edit(), edit()] {
            let body = e.encode();
            let mut rec = Vec::new();
            rec.extend_from_slice(&[0; 4]);
            rec.extend_from_slice(&(body.len() as u32).to_le_bytes());
            rec.extend_from_slice(&body);
            let crc = crc32c::crc32c(&rec[4..]);
            rec[..4].copy_from_slice(&crc.to_le_bytes());
            file.extend_from_slice(&rec);
        }
        let p = Path::new("m");
        assert_eq!(read_manifest(&file, p).unwrap().unwrap().len(), 3);
        let mut torn = file.clone();
        let n = torn.len();
        torn[n - 3] ^= 0xff;
        assert_eq!(read_manifest(&torn, p).unwrap().unwrap().len(), 2);
        let mut middle = file.clone();
        middle[MANIFEST_HEADER_SIZE + 60] ^= 0xff;
        assert!(read_manifest(&middle, p).is_err() || read_manifest(&middle, p).unwrap().is_none());
    }
}
