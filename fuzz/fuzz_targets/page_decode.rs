//! Decodes arbitrary bytes as a page: verification must return `Ok` or a typed error, never
//! panic, for every page size and page id.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use storelab_pager::page::{PageHeader, PageId, verify_page};

fuzz_target!(|data: &[u8]| {
    if data.len() < 9 {
        return;
    }
    let page_id = PageId(u64::from_le_bytes(data[..8].try_into().expect("8 bytes")));
    let size = [4096, 8192, 16384][usize::from(data[8]) % 3];
    // Pages always arrive from the pager as a whole page: pad or cut the input to one.
    let mut page = data[9..].to_vec();
    page.resize(size, 0);
    if let Ok(header) = verify_page(&page, Path::new("fuzz"), page_id) {
        // A page that verifies names the page it was read as (or is all zeros).
        let zeros = page.iter().all(|&b| b == 0);
        assert!(zeros || header.page_id == page_id);
        assert_eq!(PageHeader::read(&page), header);
    }
});
