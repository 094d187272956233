//! Block-level decoders of the LSM never panic on arbitrary bytes: data/index blocks (and
//! their cursors), block trailers (checksum, LZ4), bloom filters, manifest edits, log batches.
#![no_main]

use std::path::Path;
use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use storelab_lsm::log_record::decode_batch;
use storelab_lsm::manifest::{VersionEdit, read_manifest};
use storelab_lsm::sstable::handle::unseal_block;
use storelab_lsm::sstable::{Block, BlockIter, BloomFilter};

fuzz_target!(|data: &[u8]| {
    if let Ok(block) = Block::decode(data.to_vec()) {
        let block = Arc::new(block);
        let mut it = BlockIter::new(Arc::clone(&block));
        it.seek_to_first();
        let mut n = 0;
        while it.is_valid() {
            let _ = (it.key(), it.value(), it.seq(), it.is_put());
            it.next();
            n += 1;
        }
        assert_eq!(n, block.entry_count());
        it.seek_to_last();
        while it.is_valid() {
            it.prev();
        }
        for probe in data.chunks(7).take(8) {
            it.seek(probe);
            it.seek_for_prev(probe);
        }
    }
    let _ = unseal_block(data, Path::new("fuzz"), 0);
    if let Ok(filter) = BloomFilter::decode(data) {
        let _ = filter.may_contain(data.len() as u64);
    }
    let _ = VersionEdit::decode(data);
    let _ = read_manifest(data, Path::new("fuzz"));
    let _ = decode_batch(data);
});
