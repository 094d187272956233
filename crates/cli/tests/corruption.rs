//! Corruption: bytes on disk are untrusted. A byte flipped in any page of any data file of a
//! heap or clustered database is detected when the database is opened, checked and read (a
//! checksum or format error naming the file), never a panic or a hang; truncated files and
//! files of another format version are refused with an error. Seeded; the seed is printed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use storelab_pager::PageSize;
use storelab_table::{Engine, Row, ScanSpec, StorageConfig};
use storelab_workload::{Orders, dataset::ORDERS};

const PAGE: PageSize = PageSize::K4;

fn config() -> StorageConfig {
    StorageConfig {
        page_size: PAGE,
        pool_bytes: 1 << 20,
        ..StorageConfig::default()
    }
}

fn open(engine: &str, dir: &Path) -> storelab_table::Result<Box<dyn Engine>> {
    Ok(match engine {
        "heap" => Box::new(storelab_heap::HeapEngine::open(
            dir,
            &config(),
            storelab_heap::HeapOptions {
                autovacuum: false,
                ..Default::default()
            },
        )?),
        "lsm" => Box::new(storelab_clustered::ClusteredLsmEngine::open(
            dir,
            &config(),
            Default::default(),
        )?),
        _ => Box::new(storelab_clustered::ClusteredEngine::open(
            dir,
            &config(),
            Default::default(),
        )?),
    })
}

/// A small orders table (two secondary indexes), cleanly closed.
fn build(engine: &str, dir: &Path) {
    let e = open(engine, dir).unwrap();
    let t = e.create_table(Orders.schema()).unwrap();
    t.load(&mut (0..400).map(|n| Orders.row(n, 7))).unwrap();
    for n in 0..40 {
        t.update(
            &[storelab_table::Value::Int(n)],
            &[(Orders::AMOUNT, 1.5.into())],
        )
        .unwrap();
    }
    e.checkpoint().unwrap();
}

/// Opens, checks and reads everything; `Err` with the first error's text.
fn open_check_read(engine: &str, dir: &Path) -> Result<usize, String> {
    let e = open(engine, dir).map_err(|e| e.to_string())?;
    e.check().map_err(|e| e.to_string())?;
    let t = e.open_table(ORDERS).map_err(|e| e.to_string())?;
    let mut rows: Vec<Row> = Vec::new();
    t.scan(&ScanSpec::default(), None, &mut |r| {
        rows.push(r);
        true
    })
    .map_err(|e| e.to_string())?;
    Ok(rows.len())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn page_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "heap" || x == "idx"))
        .collect();
    files.sort();
    files
}

/// Flips one random byte in every page of every data file, one page at a time: every flip is
/// detected as an error naming the file, none panics.
fn every_page_flip_is_detected(engine: &str, seed: u64) {
    let base = tempfile::tempdir().unwrap();
    let clean = base.path().join("clean");
    build(engine, &clean);
    assert_eq!(
        open_check_read(engine, &clean),
        Ok(400),
        "{engine}: the clean copy"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut flips = 0;
    for file in page_files(&clean) {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let pages = std::fs::metadata(&file).unwrap().len() / PAGE.bytes() as u64;
        for page in 0..pages {
            let work = base.path().join(format!("work-{flips}"));
            copy_dir(&clean, &work);
            let target = work.join(&name);
            let mut bytes = std::fs::read(&target).unwrap();
            let at = page as usize * PAGE.bytes() + rng.random_range(0..PAGE.bytes());
            let bit = 1u8 << rng.random_range(0..8);
            bytes[at] ^= bit;
            std::fs::write(&target, &bytes).unwrap();
            let what =
                format!("{engine}: {name} page {page} byte {at} bit {bit:#x} (seed {seed:#x})");
            let outcome = catch_unwind(AssertUnwindSafe(|| open_check_read(engine, &work)))
                .unwrap_or_else(|_| panic!("{what}: panicked"));
            match outcome {
                Err(e) => assert!(
                    e.contains(&name),
                    "{what}: the error does not name the file: {e}"
                ),
                Ok(rows) => panic!("{what}: not detected ({rows} rows read)"),
            }
            std::fs::remove_dir_all(&work).unwrap();
            flips += 1;
        }
    }
    println!("{engine}: {flips} pages flipped, every flip detected (seed {seed:#x})");
}

#[test]
fn heap_page_flips_are_detected() {
    every_page_flip_is_detected("heap", 0xF11B_0001);
}

#[test]
fn clustered_page_flips_are_detected() {
    every_page_flip_is_detected("clustered", 0xF11B_0002);
}

/// A data file cut short (in the middle of a page, or to nothing) is an error, not a panic.
#[test]
fn truncated_files_are_refused() {
    for engine in ["heap", "clustered"] {
        let base = tempfile::tempdir().unwrap();
        let clean = base.path().join("clean");
        build(engine, &clean);
        for file in page_files(&clean) {
            let name = file.file_name().unwrap().to_string_lossy().to_string();
            let len = std::fs::metadata(&file).unwrap().len();
            for cut in [0, len / 2 + 100, len - PAGE.bytes() as u64] {
                let work = base.path().join("work");
                copy_dir(&clean, &work);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(work.join(&name))
                    .unwrap();
                f.set_len(cut).unwrap();
                drop(f);
                let what = format!("{engine}: {name} cut to {cut} of {len} bytes");
                let outcome = catch_unwind(AssertUnwindSafe(|| open_check_read(engine, &work)))
                    .unwrap_or_else(|_| panic!("{what}: panicked"));
                assert!(outcome.is_err(), "{what}: not detected: {outcome:?}");
                std::fs::remove_dir_all(&work).unwrap();
            }
        }
    }
}

/// A catalog or B+tree file of another format version is refused with an error saying so.
#[test]
fn other_format_versions_are_refused() {
    let base = tempfile::tempdir().unwrap();
    let clean = base.path().join("clean");
    build("heap", &clean);
    // The catalog.
    let work = base.path().join("catalog");
    copy_dir(&clean, &work);
    let path = work.join("catalog.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let changed = text.replacen("\"format_version\": 2", "\"format_version\": 99", 1);
    assert_ne!(text, changed, "the catalog names its format version");
    std::fs::write(&path, changed).unwrap();
    let e = open_check_read("heap", &work).unwrap_err();
    assert!(e.contains("version"), "{e}");
    // A B+tree's meta page (version at byte 32 of page 0; the page checksum is recomputed so
    // that only the version is wrong).
    let work = base.path().join("btree");
    copy_dir(&clean, &work);
    let path = work.join("t1.primary.idx");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[32] = 9;
    storelab_pager::page::seal_page(&mut bytes[..PAGE.bytes()], storelab_pager::PageId(0));
    std::fs::write(&path, &bytes).unwrap();
    let e = open_check_read("heap", &work).unwrap_err();
    assert!(e.contains("version") && e.contains("t1.primary.idx"), "{e}");
}

/// A bit flipped in the catalog (a JSON file with a CRC-32C over its content) is refused with
/// an error naming catalog.json, or, if it only changed whitespace, changes nothing.
#[test]
fn catalog_flips_are_detected() {
    let seed = 0xF11B_0003;
    let mut rng = StdRng::seed_from_u64(seed);
    let base = tempfile::tempdir().unwrap();
    let clean = base.path().join("clean");
    build("heap", &clean);
    let original = std::fs::read(clean.join("catalog.json")).unwrap();
    let (mut detected, mut harmless) = (0, 0);
    for i in 0..60 {
        let work = base.path().join(format!("work-{i}"));
        copy_dir(&clean, &work);
        let mut bytes = original.clone();
        let at = rng.random_range(0..bytes.len());
        bytes[at] ^= 1 << rng.random_range(0..8);
        std::fs::write(work.join("catalog.json"), &bytes).unwrap();
        let what = format!("catalog byte {at} (seed {seed:#x})");
        let outcome = catch_unwind(AssertUnwindSafe(|| open_check_read("heap", &work)))
            .unwrap_or_else(|_| panic!("{what}: panicked"));
        match outcome {
            Err(e) => {
                assert!(e.contains("catalog.json"), "{what}: {e}");
                detected += 1;
            }
            Ok(rows) => {
                assert_eq!(rows, 400, "{what}: undetected change");
                harmless += 1;
            }
        }
        std::fs::remove_dir_all(&work).unwrap();
    }
    println!("catalog: {detected} flips detected, {harmless} harmless (whitespace)");
}

/// A bit flipped in every 4 KiB block of every sorted table of the LSM option: an error
/// naming the table file, or (a flip in a table's padding, which holds no data) the same
/// rows as the clean copy; never a panic or a wrong answer.
#[test]
fn lsm_table_flips_are_detected_or_harmless() {
    let seed = 0xF11B_0004;
    let mut rng = StdRng::seed_from_u64(seed);
    let base = tempfile::tempdir().unwrap();
    let clean = base.path().join("clean");
    build("lsm", &clean);
    {
        // Flush the memtable so that the rows live in sorted tables.
        let e = storelab_clustered::ClusteredLsmEngine::open(&clean, &config(), Default::default())
            .unwrap();
        e.lsm().flush().unwrap();
    }
    let expected = open_check_read("lsm", &clean).unwrap();
    let mut tables: Vec<PathBuf> = std::fs::read_dir(clean.join("lsm"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sst"))
        .collect();
    tables.sort();
    assert!(!tables.is_empty(), "the load wrote sorted tables");
    let (mut detected, mut harmless) = (0, 0);
    for table in tables {
        let name = table.file_name().unwrap().to_string_lossy().to_string();
        let blocks = std::fs::metadata(&table).unwrap().len().div_ceil(4096);
        for block in 0..blocks {
            let work = base.path().join(format!("work-{detected}-{harmless}"));
            copy_dir(&clean, &work);
            let target = work.join("lsm").join(&name);
            let mut bytes = std::fs::read(&target).unwrap();
            let end = ((block + 1) * 4096).min(bytes.len() as u64) as usize;
            let at = rng.random_range(block as usize * 4096..end);
            bytes[at] ^= 1 << rng.random_range(0..8);
            std::fs::write(&target, &bytes).unwrap();
            let what = format!("lsm: {name} byte {at} (seed {seed:#x})");
            let outcome = catch_unwind(AssertUnwindSafe(|| open_check_read("lsm", &work)))
                .unwrap_or_else(|_| panic!("{what}: panicked"));
            match outcome {
                Err(e) => {
                    assert!(
                        e.contains(&name),
                        "{what}: the error does not name the file: {e}"
                    );
                    detected += 1;
                }
                Ok(rows) => {
                    assert_eq!(rows, expected, "{what}: a wrong answer");
                    harmless += 1;
                }
            }
            std::fs::remove_dir_all(&work).unwrap();
        }
    }
    println!("lsm: {detected} flips detected, {harmless} in padding (seed {seed:#x})");
    assert!(detected > 0);
}
