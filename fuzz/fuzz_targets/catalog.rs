//! Fuzz target: arbitrary bytes as a catalog file (crates/table/src/catalog.rs). Decoding
//! must return a value or an error, never panic, whatever the JSON holds.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = storelab_table::catalog::decode_for_fuzzing(data);
});
