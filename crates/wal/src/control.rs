//! The control file: where recovery starts.
//!
//! ```text
//! control file: two 4096-byte slots, written alternately
//!  slot: 0 magic "SLWALCTL" | 8 version u16 | 10 torn-page mode u8 | 11 reserved u8 |
//!        12 page_size u32 | 16 sequence u64 | 24 checkpoint LSN u64 | 32 redo LSN u64 |
//!        40 segment_size u32 | 44 crc32c of bytes 0..44
//! ```
//!
//! A checkpoint writes the slot it did not write last time, then syncs. If the write tears,
//! that slot fails its checksum and the other still names the previous checkpoint, which is a
//! correct (if longer) place to start recovery. The reader takes the valid slot with the higher
//! sequence number. This is PostgreSQL's `pg_control` made tear-proof by two copies instead of
//! by the assumption that a 512-byte write is atomic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use storelab_pager::io::{IoBackend, IoFile, OpenOptions};
use storelab_pager::{AlignedBuf, Lsn};

use crate::error::{Error, Result};

/// Bytes per slot.
pub const CONTROL_SLOT_SIZE: usize = 4096;
/// The control file's name in the WAL directory.
pub const CONTROL_FILE_NAME: &str = "control";
const MAGIC: [u8; 8] = *b"SLWALCTL";
const VERSION: u16 = 1;
const MAGIC_OFFSET: usize = 0;
const VERSION_OFFSET: usize = MAGIC_OFFSET + 8;
const TORN_OFFSET: usize = VERSION_OFFSET + 2;
const PAGE_SIZE_OFFSET: usize = TORN_OFFSET + 2;
const SEQ_OFFSET: usize = PAGE_SIZE_OFFSET + 4;
const CHECKPOINT_OFFSET: usize = SEQ_OFFSET + 8;
const REDO_OFFSET: usize = CHECKPOINT_OFFSET + 8;
const SEGMENT_SIZE_OFFSET: usize = REDO_OFFSET + 8;
const CRC_OFFSET: usize = SEGMENT_SIZE_OFFSET + 4;
const _: () = assert!(CRC_OFFSET == 44);

/// What the control file records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlData {
    /// Increases with every write; picks the newer slot.
    pub sequence: u64,
    /// Where the last checkpoint record starts.
    pub checkpoint_lsn: Lsn,
    /// Where redo starts: every change before it is in the data files.
    pub redo_lsn: Lsn,
    /// The database's page size.
    pub page_size: u32,
    /// The WAL segment size.
    pub segment_size: u32,
    /// The torn-page protection mode (see `TornPageMode::code`).
    pub torn_page_mode: u8,
}

/// The control file, open.
pub struct ControlFile {
    backend: Arc<dyn IoBackend>,
    file: Arc<IoFile>,
    path: PathBuf,
    last: Option<ControlData>,
}

impl ControlFile {
    /// Opens (creating if missing) the control file in `dir` and reads the newest valid slot:
    /// `None` for a new file.
    pub fn open(backend: Arc<dyn IoBackend>, dir: &Path) -> Result<ControlFile> {
        let path = dir.join(CONTROL_FILE_NAME);
        let file = backend.open(
            &path,
            &OpenOptions {
                create: true,
                direct: false,
            },
        )?;
        let len = backend.file_len(&file)?;
        let mut control = ControlFile {
            backend,
            file,
            path,
            last: None,
        };
        if len == 0 {
            return Ok(control);
        }
        let (buf, n) = control
            .backend
            .read_at(&control.file, 0, 2 * CONTROL_SLOT_SIZE)?;
        let slots = [
            decode_slot(&buf[..CONTROL_SLOT_SIZE.min(n)]),
            decode_slot(buf.get(CONTROL_SLOT_SIZE..n).unwrap_or(&[])),
        ];
        control.last = slots.into_iter().flatten().max_by_key(|d| d.sequence);
        if control.last.is_none() {
            return Err(Error::CorruptControlFile {
                file: control.path.clone(),
                reason: "neither slot holds a valid record".into(),
            });
        }
        Ok(control)
    }

    /// The newest valid contents, if any.
    pub fn data(&self) -> Option<ControlData> {
        self.last
    }

    /// Writes `data` (its sequence is set to follow the last) to the other slot and syncs.
    pub fn write(&mut self, mut data: ControlData) -> Result<()> {
        data.sequence = self.last.map_or(1, |d| d.sequence + 1);
        let slot = (data.sequence % 2) as usize;
        let mut buf = AlignedBuf::zeroed(CONTROL_SLOT_SIZE);
        encode_slot(&mut buf, &data);
        self.backend
            .write_at(&self.file, (slot * CONTROL_SLOT_SIZE) as u64, buf)?;
        self.backend.sync(&self.file)?;
        self.last = Some(data);
        Ok(())
    }

    /// The control file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn encode_slot(buf: &mut [u8], d: &ControlData) {
    buf[MAGIC_OFFSET..MAGIC_OFFSET + 8].copy_from_slice(&MAGIC);
    buf[VERSION_OFFSET..VERSION_OFFSET + 2].copy_from_slice(&VERSION.to_le_bytes());
    buf[TORN_OFFSET] = d.torn_page_mode;
    buf[PAGE_SIZE_OFFSET..PAGE_SIZE_OFFSET + 4].copy_from_slice(&d.page_size.to_le_bytes());
    buf[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&d.sequence.to_le_bytes());
    buf[CHECKPOINT_OFFSET..CHECKPOINT_OFFSET + 8]
        .copy_from_slice(&d.checkpoint_lsn.0.to_le_bytes());
    buf[REDO_OFFSET..REDO_OFFSET + 8].copy_from_slice(&d.redo_lsn.0.to_le_bytes());
    buf[SEGMENT_SIZE_OFFSET..SEGMENT_SIZE_OFFSET + 4]
        .copy_from_slice(&d.segment_size.to_le_bytes());
    let crc = crc32c::crc32c(&buf[..CRC_OFFSET]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_le_bytes());
}

fn decode_slot(buf: &[u8]) -> Option<ControlData> {
    if buf.len() < CRC_OFFSET + 4 || buf[..8] != MAGIC {
        return None;
    }
    let u32_at = |at: usize| u32::from_le_bytes(buf[at..at + 4].try_into().expect("4"));
    let u64_at = |at: usize| u64::from_le_bytes(buf[at..at + 8].try_into().expect("8"));
    if u32_at(CRC_OFFSET) != crc32c::crc32c(&buf[..CRC_OFFSET]) {
        return None;
    }
    if u16::from_le_bytes(
        buf[VERSION_OFFSET..VERSION_OFFSET + 2]
            .try_into()
            .expect("2"),
    ) != VERSION
    {
        return None;
    }
    Some(ControlData {
        sequence: u64_at(SEQ_OFFSET),
        checkpoint_lsn: Lsn(u64_at(CHECKPOINT_OFFSET)),
        redo_lsn: Lsn(u64_at(REDO_OFFSET)),
        page_size: u32_at(PAGE_SIZE_OFFSET),
        segment_size: u32_at(SEGMENT_SIZE_OFFSET),
        torn_page_mode: buf[TORN_OFFSET],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use storelab_pager::io::SyncBackend;

    fn data(redo: u64) -> ControlData {
        ControlData {
            sequence: 0,
            checkpoint_lsn: Lsn(redo + 10),
            redo_lsn: Lsn(redo),
            page_size: 8192,
            segment_size: 65536,
            torn_page_mode: 1,
        }
    }

    /// The newest write wins after reopening; a torn newest slot falls back to the older one.
    #[test]
    fn newest_valid_slot_wins() {
        let dir = tempfile::tempdir().unwrap();
        let backend: Arc<dyn IoBackend> = Arc::new(SyncBackend::new());
        let mut c = ControlFile::open(Arc::clone(&backend), dir.path()).unwrap();
        assert!(c.data().is_none());
        c.write(data(100)).unwrap();
        c.write(data(200)).unwrap();
        drop(c);
        let c = ControlFile::open(Arc::clone(&backend), dir.path()).unwrap();
        assert_eq!(c.data().unwrap().redo_lsn, Lsn(200));
        // Tear the newest slot (sequence 2 lives in slot 0).
        let path = dir.path().join(CONTROL_FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let c = ControlFile::open(Arc::clone(&backend), dir.path()).unwrap();
        assert_eq!(c.data().unwrap().redo_lsn, Lsn(100));
        // Both slots bad: a clear error.
        bytes[CONTROL_SLOT_SIZE + 20] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ControlFile::open(backend, dir.path()),
            Err(Error::CorruptControlFile { .. })
        ));
    }
}
