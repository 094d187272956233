//! Reads arbitrary bytes as the log. `WalReader` over segments holding them, and
//! `record::decode` on them directly, must return records or stop at the end of the log (or
//! return a typed error), never panic; every record returned must sit where the reader was,
//! chain to the record before it, decode again to itself from its own bytes and re-encode to
//! exactly those bytes.
//!
//! Input layout: byte 0 picks the page size and how the segments look, bytes 1..3 where in
//! segment 0 the log bytes start (near its end, records cross into segment 1), the rest are
//! the log bytes, written after a valid header of segment 0 (and of segment 1, if they run
//! past segment 0). In "fix-up" inputs (a bit of byte 0) each record-shaped chunk of the log
//! bytes gets its position, predecessor and checksum set before it is written, so that the
//! fuzzer reaches the structural checks behind the checksum without having to forge CRCs.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use storelab_pager::Lsn;
use storelab_pager::io::{IoBackend, SyncBackend};
use storelab_wal::record::{
    BLOCKS_PER_RECORD_MAX, BlockRef, LSN_OFFSET, PREV_OFFSET, RECORD_HEADER_SIZE, RECORD_SIZE_MAX,
    Record, RecordBuilder, decode, peek_len,
};
use storelab_wal::segment::{
    SEGMENT_HEADER_SIZE, SegmentGeometry, encode_header, segment_file_name,
};
use storelab_wal::{Error, WalReader};

const SEGMENT_SIZE: usize = 64 * 1024;

/// One directory per fuzzing process, reused for every input (in memory if `/dev/shm` exists).
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shm = PathBuf::from("/dev/shm");
        let base = if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!("storelab-fuzz-wal-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz directory");
        dir
    })
}

fn backend() -> Arc<dyn IoBackend> {
    static BACKEND: OnceLock<Arc<dyn IoBackend>> = OnceLock::new();
    Arc::clone(BACKEND.get_or_init(|| Arc::new(SyncBackend::new())))
}

/// A decoded record encoded again.
fn encode(record: &Record) -> Vec<u8> {
    let blocks = record
        .blocks
        .iter()
        .map(|b| BlockRef {
            rel: b.rel,
            page_id: b.page_id,
            page: b.image.as_deref(),
            data: &b.data,
            force_image: false,
        })
        .collect();
    let builder = RecordBuilder {
        record_type: record.record_type,
        blocks,
        main: &record.main,
    };
    // With the record's own flags (atomic-group membership), which are part of its bytes.
    builder
        .encode_with_flags(record.lsn, record.prev, record.flags, &|b| b.page.is_some())
        .expect("a decoded record encodes again")
}

/// What every decoded record must satisfy, given the bytes it was decoded from.
fn check_record(record: &Record, bytes: &[u8], page_size: usize) {
    assert_eq!(record.len, bytes.len());
    assert!((RECORD_HEADER_SIZE..=RECORD_SIZE_MAX).contains(&record.len));
    assert!(record.blocks.len() <= BLOCKS_PER_RECORD_MAX);
    for block in &record.blocks {
        assert!(
            block
                .image
                .as_ref()
                .is_none_or(|image| image.len() == page_size)
        );
    }
    assert_eq!(
        encode(record),
        bytes,
        "a decoded record re-encodes to other bytes"
    );
}

/// Gives every record-shaped chunk of `log` (placed at `start`) its own position, the position
/// of the chunk before it as predecessor, and a valid checksum.
fn fix_up_records(log: &mut [u8], start: u64) {
    let mut at = 0usize;
    let mut prev = 0u64;
    while log.len() - at >= RECORD_HEADER_SIZE {
        let len = u32::from_le_bytes(log[at + 4..at + 8].try_into().expect("4")) as usize;
        if len < RECORD_HEADER_SIZE || len > log.len() - at {
            return;
        }
        let lsn = start + at as u64;
        let record = &mut log[at..at + len];
        record[LSN_OFFSET..LSN_OFFSET + 8].copy_from_slice(&lsn.to_le_bytes());
        record[PREV_OFFSET..PREV_OFFSET + 8].copy_from_slice(&prev.to_le_bytes());
        let crc = crc32c::crc32c(&record[4..]);
        record[..4].copy_from_slice(&crc.to_le_bytes());
        prev = lsn;
        at += len;
    }
}

fn write_segment(n: u64, number_in_header: u64, page_size: usize, data: &[u8], full: bool) {
    let mut bytes = vec![0u8; SEGMENT_HEADER_SIZE];
    encode_header(&mut bytes, number_in_header, SEGMENT_SIZE, page_size);
    bytes.extend_from_slice(data);
    if full {
        bytes.resize(SEGMENT_SIZE, 0);
    }
    std::fs::write(dir().join(segment_file_name(n)), &bytes).expect("write a segment");
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let page_size = [4096, 8192, 16384][usize::from(data[0] % 3)];
    let flags = data[0] / 3;
    let full = flags & 1 == 1;
    let second = (flags >> 1) % 3; // 0: segment 1 valid, 1: a recycled file, 2: missing
    let fix_up = (flags / 6) % 2 == 1;
    let geometry = SegmentGeometry::new(SEGMENT_SIZE).expect("geometry");
    let data_size = geometry.data_size();
    let start = data_size.saturating_sub(u64::from(u16::from_le_bytes([data[1], data[2]])));
    let mut log = data[3..].to_vec();
    if fix_up {
        fix_up_records(&mut log, start);
    }
    let log = &log[..];

    // Segment 0 holds zeros before `start`, then the log bytes; segment 1 the rest.
    let in_first = log.len().min((data_size - start) as usize);
    let mut first = vec![0u8; start as usize];
    first.extend_from_slice(&log[..in_first]);
    write_segment(0, 0, page_size, &first, full);
    let segment1 = dir().join(segment_file_name(1));
    match second {
        0 | 1 if in_first < log.len() || full => {
            write_segment(
                1,
                if second == 0 { 1 } else { 0 },
                page_size,
                &log[in_first..],
                full,
            );
        }
        _ => {
            let _ = std::fs::remove_file(&segment1);
        }
    }
    // The log from `start` as the reader can see it: the bytes, and the zeros of full-size
    // segments after them.
    let mut visible = log[..in_first].to_vec();
    if full || in_first < log.len() {
        visible.resize((data_size - start) as usize, 0);
        if second == 0 {
            visible.extend_from_slice(&log[in_first..]);
            if full {
                visible.resize((2 * data_size - start) as usize, 0);
            }
        }
    }

    // The reader.
    let mut reader = WalReader::new(backend(), dir(), geometry, page_size, Lsn(start));
    let mut position = start;
    let mut previous: Option<Lsn> = None;
    loop {
        match reader.next_record() {
            Ok(Some(record)) => {
                assert_eq!(
                    record.lsn,
                    Lsn(position),
                    "a record not where the reader was"
                );
                if let Some(prev) = previous {
                    assert_eq!(record.prev, prev, "a record not chained to the one before");
                }
                let end = position + record.len as u64;
                let from = (position - start) as usize;
                assert!(from + record.len <= visible.len(), "a record past the log");
                let bytes = &visible[from..from + record.len];
                check_record(&record, bytes, page_size);
                assert_eq!(
                    decode(bytes, record.lsn, page_size).expect("decodes again"),
                    record
                );
                previous = Some(record.lsn);
                position = end;
            }
            Ok(None) => break,
            Err(e) => {
                assert!(
                    !matches!(e, Error::CorruptRecord { .. }),
                    "a torn log is an end, not an error: {e}"
                );
                break;
            }
        }
    }
    if let Some(end) = reader.end() {
        assert_eq!(
            end.lsn,
            Lsn(position),
            "the end is not after the last record"
        );
    }
    assert_eq!(reader.position(), Lsn(position));

    // The decoder on the raw bytes, at the position they claim (so the position check passes
    // and the fuzzer can get past it).
    if log.len() >= LSN_OFFSET + 8 {
        let claimed = Lsn(u64::from_le_bytes(
            log[LSN_OFFSET..LSN_OFFSET + 8].try_into().expect("8"),
        ));
        let _ = peek_len(log);
        if let Ok(record) = decode(log, claimed, page_size) {
            assert_eq!(record.lsn, claimed);
            check_record(&record, log, page_size);
        }
    }
});
