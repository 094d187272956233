//! `storelab check`: verify page checksums and structure invariants of files on disk.
//!
//! For each page file given: every page is read and its checksum, format version and page
//! number verified; if the file is a B+tree (page 0 is a B+tree meta page), the whole tree is
//! then checked (`BTree::check`: key order, fences, levels, sibling links, overflow chains, free
//! list, free-space accounting). For a WAL directory (`--wal DIR`), the log is read from its
//! last checkpoint to its end and the records counted; the reason it ends is reported (a torn
//! tail after a crash is normal: recovery discards it).
//!
//! Run it on a database that was closed cleanly, or after recovery: a crashed database's data
//! files are only consistent once the log has been replayed into them.
//!
//! For an engine's directory (`--db DIR`, holding `catalog.json`), the database is opened as
//! the engine opens it (recovery runs first, as it would at any open) and every table's
//! structures are verified (`Engine::check`: for the heap, page layout, HOT chains, and that
//! every live row is in every index and every index entry points at a used line pointer; for
//! the clustered engine's LSM layout, every table block of the tree, the levels, every
//! secondary entry against its row, and no key outside the tables' index ids).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use storelab_btree::{BTree, BTreeConfig, META_PAGE};
use storelab_pager::io::SyncBackend;
use storelab_pager::page::verify_page;
use storelab_pager::{BufferPool, Disk, IoCause, Ledger, PageId, PageSize, PoolConfig};
use storelab_wal::{RelId, Wal, WalConfig, WalReader};

use crate::byte_size::ByteSize;

/// Flags of `storelab check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Page files to verify (heap, index, B+tree files)
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// The database's page size (4KiB, 8KiB or 16KiB)
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,

    /// A WAL directory to read from its last checkpoint to its end
    #[arg(long, value_name = "DIR")]
    pub wal: Option<PathBuf>,

    /// An engine's database directory (with catalog.json): open it (running recovery) and
    /// verify every table
    #[arg(long, value_name = "DIR", alias = "dir")]
    pub db: Option<PathBuf>,

    /// WAL segment size the log was created with
    #[arg(long, value_name = "SIZE", default_value = "16MiB")]
    pub segment_size: ByteSize,
}

/// Runs the checks; prints one line per file and fails if any check failed.
pub fn run(args: &CheckArgs) -> Result<()> {
    if args.files.is_empty() && args.wal.is_none() && args.db.is_none() {
        bail!("nothing to check: give page files, --wal DIR and/or --db DIR");
    }
    let page_size = PageSize::from_bytes(args.page_size.bytes() as usize)?;
    let mut failures = 0;
    for path in &args.files {
        match check_file(path, page_size) {
            Ok(summary) => println!("ok    {}: {summary}", path.display()),
            Err(e) => {
                failures += 1;
                println!("FAIL  {}: {e:#}", path.display());
            }
        }
    }
    if let Some(dir) = &args.wal {
        match check_wal(dir, page_size, args.segment_size.bytes() as usize) {
            Ok(summary) => println!("ok    {}: {summary}", dir.display()),
            Err(e) => {
                failures += 1;
                println!("FAIL  {}: {e:#}", dir.display());
            }
        }
    }
    if let Some(dir) = &args.db {
        match check_db(dir, page_size) {
            Ok(summary) => println!("ok    {}: {summary}", dir.display()),
            Err(e) => {
                failures += 1;
                println!("FAIL  {}: {e:#}", dir.display());
            }
        }
    }
    if failures > 0 {
        bail!("{failures} check(s) failed");
    }
    Ok(())
}

/// Opens an engine directory by the engine its catalog names and checks every table.
fn check_db(dir: &std::path::Path, page_size: PageSize) -> Result<String> {
    let path = dir.join(storelab_table::catalog::CATALOG_FILE_NAME);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let engine_name = json
        .get("engine")
        .and_then(|e| e.as_str())
        .context("catalog names no engine")?
        .to_string();
    let config = storelab_table::StorageConfig {
        page_size,
        pool_bytes: 64 << 20,
        ..storelab_table::StorageConfig::default()
    };
    let engine: Box<dyn storelab_table::Engine> = match engine_name.as_str() {
        storelab_heap::engine::ENGINE_NAME => Box::new(storelab_heap::HeapEngine::open(
            dir,
            &config,
            storelab_heap::HeapOptions {
                autovacuum: false,
                ..storelab_heap::HeapOptions::default()
            },
        )?),
        storelab_clustered::ENGINE_NAME => Box::new(storelab_clustered::ClusteredEngine::open(
            dir,
            &config,
            storelab_clustered::ClusteredOptions::default(),
        )?),
        storelab_clustered::LSM_ENGINE_NAME => {
            Box::new(storelab_clustered::ClusteredLsmEngine::open(
                dir,
                &config,
                storelab_clustered::LsmOptions::default(),
            )?)
        }
        other => bail!("unknown engine {other:?} in {}", path.display()),
    };
    engine.check()?;
    let mut parts = Vec::new();
    for name in engine.table_names() {
        let stats = engine.open_table(&name)?.stats()?;
        parts.push(format!(
            "{name}: {} rows, {} bytes",
            stats.row_count,
            stats.size_bytes()
        ));
    }
    Ok(format!(
        "{engine_name} database, {} table(s) checked{}{}",
        parts.len(),
        if parts.is_empty() { "" } else { "; " },
        parts.join("; ")
    ))
}

fn check_file(path: &std::path::Path, page_size: PageSize) -> Result<String> {
    if !path.is_file() {
        bail!("not a file");
    }
    let disk = Disk::new(
        Arc::new(SyncBackend::new()),
        Ledger::new(),
        page_size,
        false,
    );
    let file = disk.open_file(path, "checked", false)?;
    let pages = disk.page_count(file)?;
    let mut first_type = None;
    for i in 0..pages {
        let (buf, n) = disk.read_at(
            file,
            i * page_size.bytes() as u64,
            page_size.bytes(),
            IoCause::ForegroundRead,
        )?;
        if n < page_size.bytes() {
            bail!("page {i} is cut short");
        }
        let header = verify_page(&buf, path, PageId(i))?;
        if i == 0 {
            first_type = Some(header.page_type);
        }
    }
    let mut summary = format!("{pages} pages, checksums ok");
    if first_type == Some(META_PAGE) {
        // A B+tree: open it with a scratch log (nothing is written) and check its structure.
        let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
        let pool = Arc::new(BufferPool::new(
            Arc::clone(&disk),
            PoolConfig::frames(1024),
        )?);
        let mut config = WalConfig::new(scratch.path().join("wal"));
        config.segment_size = 64 * 1024;
        let wal = Wal::open(config, &disk)?;
        wal.recover(&pool, &storelab_wal::RedoRegistry::new())?;
        let meta = pool.read(file, PageId(0))?;
        let node_size = u16::from_le_bytes([meta[34], meta[35]]) as usize;
        drop(meta);
        let tree_config = BTreeConfig {
            node_size: Some(node_size),
            ..BTreeConfig::default()
        };
        let tree = BTree::open(pool, wal, file, RelId(0), tree_config)?;
        tree.check()?;
        let s = tree.stats()?;
        summary.push_str(&format!(
            "; B+tree ok: height {}, {} leaves, {} internal, {} overflow, {} free pages, {} entries, leaf fill {:.1}%",
            s.height,
            s.leaf_count,
            s.internal_count,
            s.overflow_count,
            s.free_count,
            s.entry_count,
            s.leaf_fill * 100.0
        ));
    }
    Ok(summary)
}

fn check_wal(dir: &std::path::Path, page_size: PageSize, segment_size: usize) -> Result<String> {
    if !dir.is_dir() {
        bail!("not a directory");
    }
    let backend: Arc<dyn storelab_pager::io::IoBackend> = Arc::new(SyncBackend::new());
    let control = storelab_wal::control::ControlFile::open(Arc::clone(&backend), dir)?;
    let start = control
        .data()
        .map_or(storelab_pager::Lsn(0), |d| d.redo_lsn);
    let geometry = storelab_wal::segment::SegmentGeometry::new(segment_size)?;
    let mut reader = WalReader::new(backend, dir, geometry, page_size.bytes(), start);
    let mut records = 0u64;
    while reader.next_record()?.is_some() {
        records += 1;
    }
    let end = reader.end().cloned().expect("the reader stopped");
    Ok(format!(
        "{records} records from redo point {start} to {}; ends: {}",
        end.lsn, end.reason
    ))
}
