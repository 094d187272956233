//! Opening and reading a table never panics, whatever its bytes: arbitrary bytes, or a valid
//! table built from the input and then damaged at input-chosen offsets.
#![no_main]

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use storelab_lsm::sstable::{SsTable, SsTableBuilder, TableFile, TableId, TableOptions, bloom_hash};
use storelab_lsm::{Compression, SeqNo};
use storelab_pager::IoCause;

fn exercise(bytes: Vec<u8>, probes: &[u8]) {
    let size = bytes.len() as u64;
    let Ok(table) = SsTable::open(
        TableFile::Memory(Arc::new(bytes)),
        Path::new("fuzz.sst"),
        TableId(1),
        0,
        size,
        None,
    ) else {
        return;
    };
    let table = Arc::new(table);
    let mut it = table.iter(IoCause::ForegroundRead, false);
    let mut steps = 0;
    if it.seek_to_first().is_ok() {
        while it.is_valid() && steps < 10_000 {
            let _ = (it.key(), it.value(), it.seq());
            if it.next().is_err() {
                break;
            }
            steps += 1;
        }
    }
    if it.seek_to_last().is_ok() {
        while it.is_valid() && steps < 20_000 {
            if it.prev().is_err() {
                break;
            }
            steps += 1;
        }
    }
    for probe in probes.chunks(5).take(8).filter(|p| !p.is_empty()) {
        let _ = table.get(probe, bloom_hash(probe));
        let _ = it.seek(probe);
        let _ = it.seek_for_prev(probe);
    }
    let _ = Bound::<&[u8]>::Unbounded;
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 0 {
        exercise(rest.to_vec(), rest);
        return;
    }
    // Build a valid table from the input's chunks, then damage it.
    let (entries, damage) = rest.split_at(rest.len() / 2);
    let mut keys: Vec<&[u8]> = entries.chunks(3).filter(|c| !c.is_empty()).collect();
    keys.sort();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    let mut builder = SsTableBuilder::in_memory(TableOptions {
        block_bytes: 64 + usize::from(mode),
        restart_interval: 1 + usize::from(mode % 5),
        bloom_bits_per_key: u32::from(mode % 12),
        compression: if mode & 4 != 0 { Compression::Lz4 } else { Compression::None },
    });
    for (i, k) in keys.iter().enumerate() {
        let value = if i % 3 == 2 { None } else { Some(*k) };
        builder.add(k, SeqNo(i as u64 + 1), value).expect("memory sink");
    }
    let mut bytes = builder.finish().expect("memory sink").bytes.expect("in memory");
    for pair in damage.chunks(3) {
        if let [a, b, x] = pair {
            let at = (usize::from(*a) << 8 | usize::from(*b)) % bytes.len();
            bytes[at] ^= *x;
        }
    }
    exercise(bytes, rest);
});
