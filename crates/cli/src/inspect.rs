//! `storelab inspect`: look inside the files of a database, for teaching and debugging.
//!
//! ```text
//!   storelab inspect page FILE PAGE   one page: common header, then by type: B+tree meta,
//!                                     node (slots, fences, siblings), overflow or free
//!                                     page; heap page (line pointers, tuples, HOT chains);
//!                                     hex for anything else
//!   storelab inspect tree FILE        a B+tree's shape: levels, nodes, fill, fences
//!                         [--dot]     ... as Graphviz DOT (pipe into `dot -Tsvg`)
//!   storelab inspect heap FILE        a heap file page by page: line pointer states, live
//!                                     and dead tuples, HOT chains, free space, FSM category
//!   storelab inspect wal DIR          WAL records: LSN, length, type, group flags, blocks
//!   storelab inspect db DIR           an engine directory: catalog, tables, files, sizes;
//!                                     for clustered-lsm the LSM tree's levels and tables
//!   storelab inspect lsm DIR          an LSM tree from its manifest: levels, tables (size,
//!                                     entries, sequence and key ranges, footer checked),
//!                                     the manifest's edits, the directory's files
//!   storelab inspect sst FILE         one sorted table: footer, bloom filter, index entries,
//!                                     data blocks (offset, size, entries, first/last key)
//! ```
//!
//! `inspect db` on a clustered-lsm database (`testscripts/inspect/lsm-db.txt`, abridged):
//!
//! ```text
//!   LSM tree lsm/: MANIFEST-000001 (64 edit(s)), 19 table(s), 43968 bytes, 721 entries
//!     log covered  0/0000C632 ...       <- the last edit's log position: replay starts here
//!     last seq     #758                 <- the last edit's sequence number
//!     level  tables  bytes  entries
//!     L0          3   3767       63     <- flushed memtables: newest first, may overlap
//!     L1          1   2550       49     <- each deeper level: one sorted run, no overlaps
//!   L1: 1 table(s), one sorted run, key ranges do not overlap
//!     table       bytes  entries  smallest key .. largest key
//!     000089.sst   2550       49  "\x00\x00\x00!\x80.." .. "\x00\x00\x00!\x80.."  [t.primary]
//!   keys: printable bytes as text, others as \xNN; [...]: the index that a key's first 4
//!   bytes (its index id) name in the catalog, since the clustered LSM layout keeps every
//!   index of every table in the one tree
//! ```
//!
//! # Read-only, and why it does not use the buffer pool
//!
//! Inspecting must never change what it inspects, and it is most useful exactly when
//! something is wrong: after a crash, or with a corrupt page. So pages are read here with
//! plain positional reads of a file opened read-only, not through the pager's `Disk` (which
//! opens files for writing) or a buffer pool (whose per-file validators turn a bad page into
//! an error before it can be shown). The WAL is not recovered: a crashed database's data
//! files are shown as they are on disk, which may be behind the log (`storelab check --db`
//! runs recovery; this does not). Every page's checksum is verified as it is read
//! (`verify_page`), and a page that fails is shown as failing, not skipped silently.
//! The structure decoders (`storelab_btree::node::validate`, `storelab_heap::heap_page::
//! validate`) run before any accessor looks at a page, so garbage is reported, never a panic.
//!
//! # The LSM tree: its manifest, read without opening the tree
//!
//! `Lsm::open` would replay the log, delete orphan tables and older manifests and write a
//! fresh manifest, so it is not called. Instead the manifest is chosen as the tree chooses
//! it (the highest-numbered `MANIFEST-NNNNNN` with a valid header and snapshot), decoded by
//! the lsm crate's `storelab_lsm::manifest::read_manifest` (record checksums, lengths,
//! counts), and its edits replayed here over the decoded `TableMeta`s (`LsmView`; the lsm
//! crate replays them only inside `Lsm::open`). So the levels shown are the tables the next
//! open would find; writes after the manifest's `log covered` are only in the log (`inspect
//! wal --from` that position). `inspect lsm` reads each live table's 64-byte footer and
//! compares it with the manifest. `inspect sst` reads one table whole (at most
//! `TABLE_READ_BYTES_MAX`) and decodes it with the lsm crate's sstable decoders (`Footer`,
//! `unseal_block`, `Block`, `BloomFilter`), then opens it as the tree does, from memory
//! (`SsTable::open` on `TableFile::Memory`): a bad footer or index is an error, a bad data
//! or filter block is shown as failing.
//!
//! # Stable output
//!
//! Output is plain ASCII text with no timings or absolute paths (files are named by their
//! last path component), so golden tests (`crates/cli/tests/inspect.rs`, files under
//! `testscripts/inspect/`) can pin it. In page dumps, keys and values are shown as hex
//! followed by their printable characters in quotes (`0000002a "...*"`), other bytes as `.`;
//! LSM keys as one quoted string with non-printable bytes as `\xNN`
//! (`"\x00\x00\x00!user1"`), since they mix a binary index id with mostly printable columns.
//!
//! # Not here yet
//!
//! - Rows are shown as bytes: decoding them needs the table's schema and row codec.
//! - LSM values and a table's individual entries are not listed (`inspect sst` shows each
//!   data block's first and last key and entry count).

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use storelab_btree::node::{self, LeafValue, NO_PAGE, NodeRef};
use storelab_btree::{BTREE_DEPTH_MAX, META_PAGE, NODE_PAGE, OVERFLOW_PAGE};
use storelab_heap::heap_page::{
    self, FSM_PAGE, HEAP_PAGE, HeapPageRef, LinePointer, PD_HAS_FREE_LINES, TupleFlags,
};
use storelab_heap::{SlotId, Tid};
use storelab_pager::page::{PAGE_HEADER_SIZE, PageHeader, page_checksum, verify_page};
use storelab_pager::{Lsn, PageId, PageSize, PageType};
use storelab_wal::segment::{SegmentGeometry, parse_segment_file_name, segment_file_name};
use storelab_wal::{RECORD_GROUP_END, RECORD_GROUP_FIRST, RECORD_IN_GROUP, RecordType, WalReader};

use storelab_clustered::IndexId;
use storelab_clustered::lsm_engine::LSM_DIR_NAME;
use storelab_clustered::lsm_table::INDEX_IDS_PER_TABLE;
use storelab_lsm::manifest::{TableMeta, VersionEdit, parse_manifest_file_name, read_manifest};
use storelab_lsm::sstable::footer::FOOTER_SIZE;
use storelab_lsm::sstable::handle::{BLOCK_TRAILER_SIZE, unseal_block};
use storelab_lsm::sstable::{
    Block, BlockHandle, BlockIter, BloomFilter, Footer, SsTable, TableFile, TableId,
};
use storelab_lsm::version::LEVEL_COUNT_MAX;
use storelab_table::schema::PRIMARY_INDEX_NAME;

use crate::byte_size::ByteSize;

/// Appends one formatted line to a `String` (formatting into a `String` cannot fail).
macro_rules! outln {
    ($out:expr) => {
        $out.push('\n')
    };
    ($out:expr, $($arg:tt)*) => {{
        $out.push_str(&format!($($arg)*));
        $out.push('\n');
    }};
}

// The B+tree's meta, free and overflow page fields (docs/format/btree.md). The btree crate
// keeps these constants private to its tree module, so they are restated here from the
// format document, derived from each other the same way and checked against its offsets.
/// Page type of a page on the B+tree's free list (`FREE_PAGE` in crates/btree).
const BTREE_FREE_PAGE: PageType = PageType(19);
/// The meta page's magic.
const META_MAGIC: [u8; 8] = *b"SLBTREE1";
const META_MAGIC_OFFSET: usize = PAGE_HEADER_SIZE;
const META_VERSION_OFFSET: usize = META_MAGIC_OFFSET + 8;
const META_NODE_SIZE_OFFSET: usize = META_VERSION_OFFSET + 2;
const META_ROOT_OFFSET: usize = META_NODE_SIZE_OFFSET + 2;
const META_FREE_OFFSET: usize = META_ROOT_OFFSET + 8;
const _: () = assert!(META_FREE_OFFSET == 44);
const OVERFLOW_NEXT_OFFSET: usize = PAGE_HEADER_SIZE;
const OVERFLOW_LEN_OFFSET: usize = OVERFLOW_NEXT_OFFSET + 8;
const OVERFLOW_DATA_OFFSET: usize = OVERFLOW_LEN_OFFSET + 4;
const _: () = assert!(OVERFLOW_DATA_OFFSET == 36);
const FREE_NEXT_OFFSET: usize = PAGE_HEADER_SIZE;
/// The smallest node size a tree accepts (`BTree::open`).
const NODE_SIZE_MIN: usize = 512;

/// Bytes of a key shown in a page dump before it is cut short.
const KEY_SHOWN_MAX: usize = 24;
/// Bytes of a fence key shown in a tree listing or DOT label.
const FENCE_SHOWN_MAX: usize = 8;
/// Bytes of a row or value shown in a page dump.
const ROW_SHOWN_MAX: usize = 16;
/// Pages probed to recognise a page file and its page size.
const PROBE_PAGES_MAX: u64 = 4;
/// Relation numbers per table (the heap and clustered engines: `id * 32 + n`, catalog.md).
const RELS_PER_TABLE: u32 = 32;

/// Flags of `storelab inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// What to inspect
    #[command(subcommand)]
    pub command: InspectCommand,
}

/// What `storelab inspect` looks at.
#[derive(Debug, clap::Subcommand)]
pub enum InspectCommand {
    /// One page: the common header, then its body decoded by page type
    Page(PageArgs),
    /// A B+tree's shape: levels, node count and fill per level, each node's keys and fences
    Tree(TreeArgs),
    /// A heap file page by page: line pointers by state, tuples, HOT chains, free space
    Heap(HeapArgs),
    /// WAL records in a range: LSN, length, type, group flags, blocks, main data
    Wal(WalArgs),
    /// An engine directory: catalog, tables and their files with sizes; for the LSM layout
    /// the tree's levels and tables from its manifest
    Db(DbArgs),
    /// An LSM tree from its manifest: levels, tables with key ranges and sequence numbers,
    /// each table's footer checked, the manifest's edits, the directory's files
    Lsm(LsmArgs),
    /// One sorted table: footer, filter, index entries and data blocks, every block checked
    Sst(SstArgs),
}

/// Flags of `storelab inspect page`.
#[derive(Debug, clap::Args)]
pub struct PageArgs {
    /// The page file (a heap, an index, a B+tree file)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The page number (0 is the first page)
    #[arg(value_name = "PAGE")]
    pub page: u64,
    /// The database's page size (4KiB, 8KiB or 16KiB)
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,
}

/// Flags of `storelab inspect tree`.
#[derive(Debug, clap::Args)]
pub struct TreeArgs {
    /// The B+tree file (page 0 is its meta page)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The database's page size (4KiB, 8KiB or 16KiB)
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,
    /// Print Graphviz DOT instead of text (`| dot -Tsvg > tree.svg`)
    #[arg(long)]
    pub dot: bool,
    /// Nodes listed (or drawn) at most, top levels first; the rest are counted
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub node_limit: usize,
}

/// Flags of `storelab inspect heap`.
#[derive(Debug, clap::Args)]
pub struct HeapArgs {
    /// The heap file (`t{id}.heap`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The database's page size (4KiB, 8KiB or 16KiB)
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,
}

/// Flags of `storelab inspect wal`.
#[derive(Debug, clap::Args)]
pub struct WalArgs {
    /// The WAL directory (or a database directory holding `wal/`)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// First record to show, as `0/00001A2B` (hex, as LSNs are printed) or a byte count;
    /// default: the start of the log if its first segment is still there, else the redo point
    #[arg(long, value_name = "LSN")]
    pub from: Option<String>,
    /// Records shown at most
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub limit: u64,
    /// The page size, if the log has no control file to say it
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,
    /// The segment size, if the log has no control file to say it
    #[arg(long, value_name = "SIZE", default_value = "16MiB")]
    pub segment_size: ByteSize,
}

/// Flags of `storelab inspect db`.
#[derive(Debug, clap::Args)]
pub struct DbArgs {
    /// The engine's database directory (holding `catalog.json`)
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The database's page size (4KiB, 8KiB or 16KiB)
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,
}

/// Flags of `storelab inspect lsm`.
#[derive(Debug, clap::Args)]
pub struct LsmArgs {
    /// The LSM tree's directory (holding `MANIFEST-NNNNNN`), or a database directory
    /// holding `lsm/`
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Tables listed at most per level; the rest are counted
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub table_limit: usize,
    /// The manifest's most recent edits listed at most
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub edit_limit: usize,
}

/// Flags of `storelab inspect sst`.
#[derive(Debug, clap::Args)]
pub struct SstArgs {
    /// The table file (`NNNNNN.sst`)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Data blocks listed at most (every block is still read and checked)
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub block_limit: usize,
}

/// Runs one `inspect` subcommand and prints its report.
pub fn run(args: &InspectArgs) -> Result<()> {
    let text = match &args.command {
        InspectCommand::Page(a) => inspect_page(&a.file, a.page, page_size(a.page_size)?)?,
        InspectCommand::Tree(a) => {
            let size = page_size(a.page_size)?;
            if a.dot {
                inspect_tree_dot(&a.file, size, a.node_limit)?
            } else {
                inspect_tree(&a.file, size, a.node_limit)?
            }
        }
        InspectCommand::Heap(a) => inspect_heap(&a.file, page_size(a.page_size)?)?,
        InspectCommand::Wal(a) => {
            let from = a.from.as_deref().map(parse_lsn).transpose()?;
            inspect_wal(
                &a.dir,
                from,
                a.limit,
                page_size(a.page_size)?,
                a.segment_size.bytes() as usize,
            )?
        }
        InspectCommand::Db(a) => inspect_db(&a.dir, page_size(a.page_size)?)?,
        InspectCommand::Lsm(a) => inspect_lsm(&a.dir, a.table_limit, a.edit_limit)?,
        InspectCommand::Sst(a) => inspect_sst(&a.file, a.block_limit)?,
    };
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .context("write to stdout")
}

fn page_size(size: ByteSize) -> Result<PageSize> {
    PageSize::from_bytes(size.bytes() as usize)
        .with_context(|| format!("--page-size {size}: use 4KiB, 8KiB or 16KiB"))
}

/// Parses an LSN as printed (`0/00001A2B`, high and low 32 bits in hex), as `0x...` hex, or
/// as a decimal byte position.
pub fn parse_lsn(text: &str) -> Result<Lsn> {
    let bad = || format!("{text:?} is not an LSN (examples: 0/00001A2B, 0x1a2b, 6699)");
    if let Some((high, low)) = text.split_once('/') {
        let high = u64::from_str_radix(high, 16).with_context(bad)?;
        let low = u64::from_str_radix(low, 16).with_context(bad)?;
        if high > u64::from(u32::MAX) || low > u64::from(u32::MAX) {
            bail!(bad());
        }
        return Ok(Lsn(high << 32 | low));
    }
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        return Ok(Lsn(u64::from_str_radix(hex, 16).with_context(bad)?));
    }
    Ok(Lsn(text.parse().with_context(bad)?))
}

// ---------------------------------------------------------------------------------------
// Reading pages
// ---------------------------------------------------------------------------------------

/// A page file opened read-only, with its page size established.
struct PageFile {
    file: File,
    path: PathBuf,
    /// The file's last path component, for output that does not depend on where it lives.
    name: String,
    page_size: usize,
    page_count: u64,
}

/// A page as read: its bytes, header, and whether it passed `verify_page`.
struct ReadPage {
    bytes: Vec<u8>,
    header: PageHeader,
    /// `None` if the page verified, else why not.
    failure: Option<String>,
}

impl ReadPage {
    /// True for a page that was never written (all zeros, accepted by `verify_page`).
    fn is_zero(&self) -> bool {
        self.failure.is_none() && self.header.page_type == PageType::FREE
    }
}

fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

impl PageFile {
    /// Opens `path` read-only and checks that it is a page file of `page_size`: its length is
    /// a whole number of pages, and one of its first pages verifies at that size. If the pages
    /// verify at another supported size instead, the error says which.
    fn open(path: &Path, page_size: PageSize) -> Result<PageFile> {
        let name = display_name(path);
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if !meta.is_file() {
            bail!("{}: not a file", path.display());
        }
        let file = File::open(path).with_context(|| format!("open {}", path.display()))?;
        let len = meta.len();
        if len == 0 {
            bail!("{}: empty file, no pages", path.display());
        }
        let open_at = |size: usize| PageFile {
            file: file.try_clone().expect("a clone of an open file handle"),
            path: path.to_path_buf(),
            name: name.clone(),
            page_size: size,
            page_count: len / size as u64,
        };
        let given = page_size.bytes();
        let whole = len.is_multiple_of(given as u64);
        if whole && open_at(given).recognised()? {
            return Ok(open_at(given));
        }
        for other in [PageSize::K4, PageSize::K8, PageSize::K16] {
            let size = other.bytes();
            if size != given && len.is_multiple_of(size as u64) && open_at(size).recognised()? {
                bail!(
                    "{}: its pages verify with page size {}, not {}: pass --page-size {}",
                    path.display(),
                    ByteSize(size as u64),
                    ByteSize(given as u64),
                    ByteSize(size as u64)
                );
            }
        }
        if !whole {
            bail!(
                "{}: {len} bytes is not a whole number of {given}-byte pages: not a page file, \
                 or a wrong --page-size",
                path.display()
            );
        }
        bail!(
            "{}: not a page file: none of its first {} pages has a valid checksum at any page \
             size",
            path.display(),
            PROBE_PAGES_MAX.min(len / given as u64)
        )
    }

    /// True if some of the first pages verifies and is not all zeros (or every one is zeros).
    fn recognised(&self) -> Result<bool> {
        let probe = self.page_count.min(PROBE_PAGES_MAX);
        let mut zeros = 0;
        for i in 0..probe {
            let page = self.read(i)?;
            if page.is_zero() {
                zeros += 1;
            } else if page.failure.is_none() {
                return Ok(true);
            }
        }
        Ok(zeros == probe)
    }

    /// Reads and verifies page `page`.
    fn read(&self, page: u64) -> Result<ReadPage> {
        if page >= self.page_count {
            bail!(
                "{}: page {page} is past the end (the file has {} pages of {} bytes)",
                self.path.display(),
                self.page_count,
                self.page_size
            );
        }
        let mut bytes = vec![0u8; self.page_size];
        self.file
            .read_exact_at(&mut bytes, page * self.page_size as u64)
            .with_context(|| format!("read page {page} of {}", self.path.display()))?;
        let header = PageHeader::read(&bytes);
        let failure = verify_page(&bytes, Path::new(&self.name), PageId(page))
            .err()
            .map(|e| e.to_string());
        Ok(ReadPage {
            bytes,
            header,
            failure,
        })
    }

    /// The tree's node size from a valid meta page 0, if the file is a B+tree.
    fn node_size(&self) -> Option<usize> {
        let meta = self.read(0).ok()?;
        if meta.failure.is_some() || meta.header.page_type != META_PAGE {
            return None;
        }
        let size = usize::from(get_u16(&meta.bytes, META_NODE_SIZE_OFFSET));
        (NODE_SIZE_MIN..=self.page_size)
            .contains(&size)
            .then_some(size)
    }
}

fn get_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4-byte slice"))
}
fn get_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8-byte slice"))
}

/// A page type's name.
fn page_type_name(t: PageType) -> &'static str {
    match t {
        PageType::FREE => "never written",
        PageType::RAW => "raw (pager tests)",
        t if t == META_PAGE => "B+tree meta",
        t if t == NODE_PAGE => "B+tree node",
        t if t == OVERFLOW_PAGE => "B+tree overflow",
        t if t == BTREE_FREE_PAGE => "B+tree free",
        t if t == HEAP_PAGE => "heap",
        t if t == FSM_PAGE => "heap free space map",
        _ => "unknown",
    }
}

/// `hex "printable"` for the first `max` bytes; longer ones end with `..` and their length.
fn fmt_bytes(bytes: &[u8], max: usize) -> String {
    if bytes.is_empty() {
        return "\"\" (empty)".to_string();
    }
    let shown = &bytes[..bytes.len().min(max)];
    let hex: String = shown.iter().map(|b| format!("{b:02x}")).collect();
    // Quotes and backslashes are shown as dots too, so the text can go into a DOT label.
    let text: String = shown
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' => '.',
            0x20..=0x7e => b as char,
            _ => '.',
        })
        .collect();
    if bytes.len() > max {
        format!("{hex}.. \"{text}\".. ({} bytes)", bytes.len())
    } else {
        format!("{hex} \"{text}\"")
    }
}

fn fmt_fence(fence: Option<&[u8]>, infinity: &str, max: usize) -> String {
    fence.map_or_else(|| infinity.to_string(), |f| fmt_bytes(f, max))
}

fn fmt_page_ref(page: u64) -> String {
    if page == NO_PAGE {
        "none".to_string()
    } else {
        page.to_string()
    }
}

/// A hex dump of `bytes`, 16 per line with their offset (`base` added), runs of identical
/// lines folded into `*` as hexdump(1) does.
fn hex_dump(out: &mut String, bytes: &[u8], base: usize) {
    let mut previous: Option<&[u8]> = None;
    let mut folded = false;
    for (i, chunk) in bytes.chunks(16).enumerate() {
        if previous == Some(chunk) {
            if !folded {
                outln!(out, "  *");
                folded = true;
            }
            continue;
        }
        folded = false;
        previous = Some(chunk);
        let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = chunk
            .iter()
            .map(|&b| {
                if (0x20..0x7f).contains(&b) {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        outln!(
            out,
            "  {:06x}  {:<47}  |{text}|",
            base + i * 16,
            hex.join(" ")
        );
    }
    outln!(out, "  {:06x}", base + bytes.len());
}

fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

// ---------------------------------------------------------------------------------------
// inspect page
// ---------------------------------------------------------------------------------------

/// `storelab inspect page`: one page, header and body.
pub fn inspect_page(path: &Path, page: u64, page_size: PageSize) -> Result<String> {
    let file = PageFile::open(path, page_size)?;
    let p = file.read(page)?;
    let mut out = String::new();
    outln!(
        out,
        "file {}: page {page} of {}, page size {}",
        file.name,
        file.page_count,
        file.page_size
    );
    let h = &p.header;
    outln!(out, "header");
    match &p.failure {
        None if p.is_zero() => outln!(out, "  checksum   0x00000000 (page never written)"),
        None => outln!(out, "  checksum   {:#010x} (ok)", h.checksum),
        Some(why) => outln!(
            out,
            "  checksum   {:#010x} FAILS: computed {:#010x}; {why}",
            h.checksum,
            page_checksum(&p.bytes, PageId(page))
        ),
    }
    outln!(out, "  version    {}", h.version);
    outln!(
        out,
        "  type       {} ({})",
        h.page_type.0,
        page_type_name(h.page_type)
    );
    outln!(out, "  flags      {:#04x}", h.flags);
    outln!(out, "  lsn        {}", h.lsn);
    outln!(out, "  page id    {}", h.page_id);
    outln!(out);
    match h.page_type {
        PageType::FREE if p.bytes.iter().all(|&b| b == 0) => {
            outln!(out, "all zeros: a page that was never written");
        }
        t if t == META_PAGE => meta_page(&mut out, &p.bytes),
        t if t == NODE_PAGE => {
            let node_size = file.node_size().unwrap_or(file.page_size);
            node_page(&mut out, &p.bytes, node_size);
        }
        t if t == OVERFLOW_PAGE => overflow_page(&mut out, &p.bytes),
        t if t == BTREE_FREE_PAGE => {
            outln!(out, "B+tree free page (on the free list)");
            outln!(
                out,
                "  next free  {}",
                fmt_page_ref(get_u64(&p.bytes, FREE_NEXT_OFFSET))
            );
        }
        t if t == HEAP_PAGE => heap_page_dump(&mut out, &p.bytes, file.page_size),
        _ => {
            outln!(out, "body (no decoder for this page type), hex:");
            hex_dump(&mut out, &p.bytes[PAGE_HEADER_SIZE..], PAGE_HEADER_SIZE);
        }
    }
    Ok(out)
}

fn meta_page(out: &mut String, b: &[u8]) {
    outln!(out, "B+tree meta page");
    let magic = &b[META_MAGIC_OFFSET..META_MAGIC_OFFSET + 8];
    let ok = if magic == META_MAGIC { "ok" } else { "WRONG" };
    outln!(out, "  magic      {} ({ok})", fmt_bytes(magic, 8));
    outln!(out, "  version    {}", get_u16(b, META_VERSION_OFFSET));
    outln!(out, "  node size  {}", get_u16(b, META_NODE_SIZE_OFFSET));
    outln!(out, "  root       page {}", get_u64(b, META_ROOT_OFFSET));
    outln!(
        out,
        "  free list  {}",
        fmt_page_ref(get_u64(b, META_FREE_OFFSET))
    );
}

fn overflow_page(out: &mut String, b: &[u8]) {
    outln!(out, "B+tree overflow page (part of a large value)");
    outln!(
        out,
        "  next       {}",
        fmt_page_ref(get_u64(b, OVERFLOW_NEXT_OFFSET))
    );
    let len = get_u32(b, OVERFLOW_LEN_OFFSET) as usize;
    if OVERFLOW_DATA_OFFSET + len > b.len() {
        outln!(out, "  length     {len} bytes: INVALID, runs past the page");
        return;
    }
    outln!(out, "  length     {len} bytes");
    let data = &b[OVERFLOW_DATA_OFFSET..OVERFLOW_DATA_OFFSET + len];
    outln!(out, "  data       {}", fmt_bytes(data, ROW_SHOWN_MAX));
    outln!(
        out,
        "  unused     {} bytes",
        b.len() - OVERFLOW_DATA_OFFSET - len
    );
}

fn node_page(out: &mut String, b: &[u8], node_size: usize) {
    if let Err(why) = node::validate(b, node_size) {
        outln!(out, "B+tree node INVALID (node size {node_size}): {why}");
        outln!(out, "body, hex:");
        hex_dump(out, &b[PAGE_HEADER_SIZE..], PAGE_HEADER_SIZE);
        return;
    }
    let n = NodeRef::new(b, node_size);
    let kind = if n.is_leaf() { "leaf" } else { "internal" };
    outln!(
        out,
        "B+tree node: {kind}, level {}, node size {node_size}",
        n.level()
    );
    outln!(
        out,
        "  prev       {}",
        fmt_page_ref(n.prev().unwrap_or(NO_PAGE))
    );
    outln!(
        out,
        "  next       {}",
        fmt_page_ref(n.next().unwrap_or(NO_PAGE))
    );
    if !n.is_leaf() {
        outln!(out, "  leftmost   page {}", n.leftmost());
    }
    outln!(
        out,
        "  low fence  {}",
        fmt_fence(n.low_fence(), "-inf", KEY_SHOWN_MAX)
    );
    outln!(
        out,
        "  high fence {}",
        fmt_fence(n.high_fence(), "+inf", KEY_SHOWN_MAX)
    );
    let capacity = node_size - node::SLOTS_OFFSET;
    let free = n.free_space();
    outln!(
        out,
        "  slots {}, cell top {}, dead bytes {}, free {free} bytes, fill {:.1}%",
        n.len(),
        get_u16(b, node::CELL_TOP_OFFSET),
        get_u16(b, node::FRAG_OFFSET),
        percent(capacity - free, capacity)
    );
    outln!(out);
    if n.is_leaf() {
        outln!(out, "  slot  offset  key -> value");
    } else {
        outln!(
            out,
            "  slot  offset  key -> child (keys below the first go to leftmost)"
        );
    }
    for i in 0..n.len() {
        let offset = get_u16(b, node::SLOTS_OFFSET + 2 * i);
        let target = if n.is_leaf() {
            match n.value(i) {
                LeafValue::Inline(v) => format!("inline {} bytes", v.len()),
                LeafValue::Overflow {
                    total_len,
                    first_page,
                } => format!("overflow {total_len} bytes from page {first_page}"),
            }
        } else {
            format!("page {}", n.child(i))
        };
        outln!(
            out,
            "  {i:>4}  {offset:>6}  {} -> {target}",
            fmt_bytes(n.key(i), KEY_SHOWN_MAX)
        );
    }
}

/// The counts of one heap page's line pointers and tuples.
#[derive(Default)]
struct HeapCounts {
    normal: usize,
    redirect: usize,
    dead: usize,
    unused: usize,
    live_tuples: usize,
    dead_tuples: usize,
}

impl HeapCounts {
    fn of(page: &HeapPageRef<'_>) -> HeapCounts {
        let mut c = HeapCounts::default();
        for s in 0..page.slot_count() {
            let slot = SlotId(s as u16);
            match page.line_pointer(slot) {
                Some(LinePointer::Normal { .. }) => {
                    c.normal += 1;
                    match page.tuple(slot) {
                        Some(t) if t.is_live() => c.live_tuples += 1,
                        _ => c.dead_tuples += 1,
                    }
                }
                Some(LinePointer::Redirect(_)) => c.redirect += 1,
                Some(LinePointer::Dead) => c.dead += 1,
                Some(LinePointer::Unused) | None => c.unused += 1,
            }
        }
        c
    }
}

/// The HOT chains of a heap page, drawn as `lp1 -> lp3 -> lp4 (live)`: one per root (a
/// REDIRECT, or a tuple that is not heap-only and was HOT-updated).
fn hot_chains(page: &HeapPageRef<'_>) -> Vec<String> {
    let mut chains = Vec::new();
    for s in 0..page.slot_count() {
        let slot = SlotId(s as u16);
        let (start, redirect) = match page.line_pointer(slot) {
            Some(LinePointer::Redirect(_)) => (format!("lp{s} (redirect)"), true),
            Some(LinePointer::Normal { .. }) => match page.tuple(slot) {
                Some(t)
                    if !t.flags.contains(TupleFlags::HEAP_ONLY)
                        && t.flags.contains(TupleFlags::HOT_UPDATED) =>
                {
                    (String::new(), false)
                }
                _ => continue,
            },
            _ => continue,
        };
        let members = page.hot_chain(slot);
        let mut parts: Vec<String> = Vec::new();
        if redirect {
            parts.push(start);
        }
        parts.extend(members.iter().map(|m| format!("lp{}", m.0)));
        let end = match members.last().and_then(|&m| page.tuple(m)) {
            Some(t) if t.is_live() => "(live)",
            Some(t) if t.flags.contains(TupleFlags::DELETED) => "(deleted)",
            Some(t) if t.flags.contains(TupleFlags::HOT_UPDATED) => "(broken: successor missing)",
            Some(_) => "(updated off the chain)",
            None => "(broken: no tuple)",
        };
        chains.push(format!("{} {end}", parts.join(" -> ")));
    }
    chains
}

fn heap_page_dump(out: &mut String, b: &[u8], page_size: usize) {
    let valid = heap_page::validate(b, page_size);
    let page = HeapPageRef::new(b, page_size);
    outln!(out, "heap page");
    if let Err(why) = &valid {
        outln!(out, "  INVALID: {why} (fields below are read as they are)");
    }
    let flags = if b[heap_page::HEAP_FLAGS_OFFSET] & PD_HAS_FREE_LINES != 0 {
        "HAS_FREE_LINES"
    } else {
        "none"
    };
    outln!(
        out,
        "  lower {}, upper {}, garbage {} bytes, DEAD count {}, flags {flags}, version {}",
        page.lower(),
        page.upper(),
        page.garbage_size(),
        page.dead_count(),
        b[heap_page::HEAP_VERSION_OFFSET]
    );
    let free = page.free_space();
    outln!(
        out,
        "  free space {free} bytes (gap {} + garbage {}), FSM category {}",
        page.upper().saturating_sub(page.lower()),
        page.garbage_size(),
        heap_page::fsm_category(free, page_size)
    );
    let c = HeapCounts::of(&page);
    outln!(
        out,
        "  line pointers {}: normal {}, redirect {}, dead {}, unused {}; tuples live {}, dead {}",
        page.slot_count(),
        c.normal,
        c.redirect,
        c.dead,
        c.unused,
        c.live_tuples,
        c.dead_tuples
    );
    outln!(out);
    outln!(
        out,
        "  {:>4}  {:<8}  {:>6} {:>4}  {:<29}  {:<7}  row",
        "lp",
        "state",
        "offset",
        "len",
        "flags",
        "ctid"
    );
    let own_page = page.page_id();
    for s in 0..page.slot_count() {
        let slot = SlotId(s as u16);
        let text = match page.line_pointer(slot) {
            Some(LinePointer::Unused) | None => "UNUSED".to_string(),
            Some(LinePointer::Dead) => "DEAD".to_string(),
            Some(LinePointer::Redirect(to)) => format!("REDIRECT  -> lp{}", to.0),
            Some(LinePointer::Normal { offset, len }) => match page.tuple(slot) {
                Some(t) => {
                    let live = if t.is_live() { "" } else { " (not live)" };
                    let ctid = if t.ctid == Tid::new(own_page, slot) {
                        "self".to_string()
                    } else {
                        t.ctid.to_string()
                    };
                    format!(
                        "NORMAL    {offset:>6} {len:>4}  {:<29}  {ctid:<7}  {}{live}",
                        format!("{:?}", t.flags),
                        fmt_bytes(t.row, ROW_SHOWN_MAX)
                    )
                }
                None => format!("NORMAL    {offset:>6} {len:>4}  (tuple out of bounds)"),
            },
        };
        outln!(out, "  {s:>4}  {text}");
    }
    let chains = hot_chains(&page);
    outln!(out);
    if chains.is_empty() {
        outln!(out, "  HOT chains: none");
    } else {
        outln!(
            out,
            "  HOT chains (index entries point at the first line pointer):"
        );
        for chain in chains {
            outln!(out, "    {chain}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// inspect tree
// ---------------------------------------------------------------------------------------

/// One node as the tree walk found it.
struct NodeInfo {
    page: u64,
    level: u8,
    keys: usize,
    fill_pct: f64,
    low: Option<Vec<u8>>,
    high: Option<Vec<u8>>,
    prev: u64,
    next: u64,
    children: Vec<u64>,
}

/// A B+tree's shape, walked level by level from the root without the btree crate's pool.
struct TreeShape {
    node_size: usize,
    root: u64,
    free_head: u64,
    /// Nodes per level, root level first, each level in key order.
    levels: Vec<Vec<NodeInfo>>,
    /// Pages of the file by type, and the pages failing their checksum.
    census: BTreeMap<u8, u64>,
    checksum_failures: Vec<String>,
    free_list_len: u64,
    /// What looked wrong during the walk (the walk goes on where it can).
    problems: Vec<String>,
}

impl TreeShape {
    fn node_count(&self) -> usize {
        self.levels.iter().map(Vec::len).sum()
    }
}

fn walk_tree(file: &PageFile) -> Result<TreeShape> {
    let meta = file.read(0)?;
    if let Some(why) = &meta.failure {
        bail!("{}: the meta page (0) fails: {why}", file.path.display());
    }
    if meta.header.page_type != META_PAGE
        || meta.bytes[META_MAGIC_OFFSET..META_MAGIC_OFFSET + 8] != META_MAGIC
    {
        bail!(
            "{}: not a B+tree: page 0 is a {} page, not a B+tree meta page",
            file.path.display(),
            page_type_name(meta.header.page_type)
        );
    }
    let node_size = file.node_size().with_context(|| {
        format!(
            "{}: the meta page's node size {} is outside {NODE_SIZE_MIN}..={}",
            file.path.display(),
            get_u16(&meta.bytes, META_NODE_SIZE_OFFSET),
            file.page_size
        )
    })?;
    let root = get_u64(&meta.bytes, META_ROOT_OFFSET);
    let free_head = get_u64(&meta.bytes, META_FREE_OFFSET);
    let mut shape = TreeShape {
        node_size,
        root,
        free_head,
        levels: Vec::new(),
        census: BTreeMap::new(),
        checksum_failures: Vec::new(),
        free_list_len: 0,
        problems: Vec::new(),
    };
    for i in 0..file.page_count {
        let p = file.read(i)?;
        match &p.failure {
            None => *shape.census.entry(p.header.page_type.0).or_default() += 1,
            Some(why) => shape.checksum_failures.push(format!("page {i}: {why}")),
        }
    }
    // Level by level: each entry is a page and the level its parent says it must have.
    let mut seen = HashSet::new();
    let mut frontier: Vec<(u64, Option<u8>)> = vec![(root, None)];
    for _depth in 0..BTREE_DEPTH_MAX {
        if frontier.is_empty() {
            break;
        }
        let mut level_nodes = Vec::new();
        let mut next_frontier = Vec::new();
        for (page, want_level) in frontier.drain(..) {
            if !seen.insert(page) {
                shape
                    .problems
                    .push(format!("page {page} reached twice (a cycle?)"));
                continue;
            }
            if page >= file.page_count {
                shape
                    .problems
                    .push(format!("child page {page} is past the end of the file"));
                continue;
            }
            let p = file.read(page)?;
            if let Some(why) = p.failure {
                shape.problems.push(format!("page {page}: {why}"));
                continue;
            }
            if p.header.page_type != NODE_PAGE {
                shape.problems.push(format!(
                    "page {page} is a {} page where a node was expected",
                    page_type_name(p.header.page_type)
                ));
                continue;
            }
            if let Err(why) = node::validate(&p.bytes, node_size) {
                shape.problems.push(format!("page {page}: {why}"));
                continue;
            }
            let n = NodeRef::new(&p.bytes, node_size);
            if let Some(want) = want_level
                && n.level() != want
            {
                shape.problems.push(format!(
                    "page {page} has level {}, its parent's level says {want}",
                    n.level()
                ));
            }
            let mut children = Vec::new();
            if !n.is_leaf() {
                children.push(n.leftmost());
                children.extend((0..n.len()).map(|i| n.child(i)));
                let child_level = n.level().checked_sub(1);
                next_frontier.extend(children.iter().map(|&c| (c, child_level)));
            }
            let capacity = node_size - node::SLOTS_OFFSET;
            level_nodes.push(NodeInfo {
                page,
                level: n.level(),
                keys: n.len(),
                fill_pct: percent(capacity - n.free_space(), capacity),
                low: n.low_fence().map(<[u8]>::to_vec),
                high: n.high_fence().map(<[u8]>::to_vec),
                prev: n.prev().unwrap_or(NO_PAGE),
                next: n.next().unwrap_or(NO_PAGE),
                children,
            });
        }
        // Sibling links must follow key order within the level.
        for (i, n) in level_nodes.iter().enumerate() {
            let want_prev = if i == 0 {
                NO_PAGE
            } else {
                level_nodes[i - 1].page
            };
            let want_next = level_nodes.get(i + 1).map_or(NO_PAGE, |m| m.page);
            if n.prev != want_prev || n.next != want_next {
                shape.problems.push(format!(
                    "page {}: sibling links prev {} next {}, key order says prev {} next {}",
                    n.page,
                    fmt_page_ref(n.prev),
                    fmt_page_ref(n.next),
                    fmt_page_ref(want_prev),
                    fmt_page_ref(want_next)
                ));
            }
        }
        shape.levels.push(level_nodes);
        frontier = next_frontier;
    }
    if !frontier.is_empty() {
        shape.problems.push(format!(
            "deeper than {BTREE_DEPTH_MAX} levels (BTREE_DEPTH_MAX): a cycle or a corrupt level"
        ));
    }
    let mut page = free_head;
    while page != NO_PAGE {
        if shape.free_list_len >= file.page_count || !seen.insert(page) {
            shape
                .problems
                .push(format!("the free list loops or reaches page {page} twice"));
            break;
        }
        if page >= file.page_count {
            shape
                .problems
                .push(format!("the free list names page {page}, past the end"));
            break;
        }
        let p = file.read(page)?;
        if p.failure.is_some() || p.header.page_type != BTREE_FREE_PAGE {
            shape.problems.push(format!(
                "the free list holds page {page}, which is not a valid free page"
            ));
            break;
        }
        shape.free_list_len += 1;
        page = get_u64(&p.bytes, FREE_NEXT_OFFSET);
    }
    Ok(shape)
}

fn fmt_range(n: &NodeInfo) -> String {
    format!(
        "[{}, {})",
        fmt_fence(n.low.as_deref(), "-inf", FENCE_SHOWN_MAX),
        fmt_fence(n.high.as_deref(), "+inf", FENCE_SHOWN_MAX)
    )
}

/// `storelab inspect tree`: the shape of a B+tree as text.
pub fn inspect_tree(path: &Path, page_size: PageSize, node_limit: usize) -> Result<String> {
    let file = PageFile::open(path, page_size)?;
    let shape = walk_tree(&file)?;
    let mut out = String::new();
    outln!(
        out,
        "B+tree {}: {} pages of {} bytes, node size {}",
        file.name,
        file.page_count,
        file.page_size,
        shape.node_size
    );
    outln!(
        out,
        "  meta: root page {}, free list {}",
        shape.root,
        fmt_page_ref(shape.free_head)
    );
    let census: Vec<String> = shape
        .census
        .iter()
        .map(|(&t, &count)| format!("{} {count}", page_type_name(PageType(t))))
        .collect();
    outln!(out, "  pages by type: {}", census.join(", "));
    outln!(
        out,
        "  free list: {} pages; checksum failures: {}",
        shape.free_list_len,
        shape.checksum_failures.len()
    );
    for failure in &shape.checksum_failures {
        outln!(out, "    {failure}");
    }
    outln!(out);
    outln!(out, "height {}", shape.levels.len());
    outln!(out, "  level  nodes   keys  avg fill");
    for level in &shape.levels {
        let Some(first) = level.first() else { continue };
        let keys: usize = level.iter().map(|n| n.keys).sum();
        let fill = level.iter().map(|n| n.fill_pct).sum::<f64>() / level.len() as f64;
        outln!(
            out,
            "  {:>5}  {:>5}  {keys:>5}  {fill:>7.1}%",
            first.level,
            level.len()
        );
    }
    let mut listed = 0;
    for level in &shape.levels {
        let Some(first) = level.first() else { continue };
        if listed >= node_limit {
            break;
        }
        outln!(out);
        outln!(out, "level {}", first.level);
        for n in level {
            if listed >= node_limit {
                break;
            }
            listed += 1;
            outln!(
                out,
                "  page {:>4}: {:>3} keys, fill {:>5.1}%, {}",
                n.page,
                n.keys,
                n.fill_pct,
                fmt_range(n)
            );
        }
    }
    if listed < shape.node_count() {
        outln!(out);
        outln!(
            out,
            "... {} more nodes not listed (--node-limit {node_limit})",
            shape.node_count() - listed
        );
    }
    outln!(out);
    if shape.problems.is_empty() {
        outln!(out, "problems: none");
    } else {
        outln!(out, "problems: {}", shape.problems.len());
        for p in &shape.problems {
            outln!(out, "  {p}");
        }
    }
    Ok(out)
}

/// Escapes text for a double-quoted DOT string.
fn dot_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `storelab inspect tree --dot`: the tree as a Graphviz digraph: one box per node (page,
/// level, key count, fill, key range), parent-to-child edges, dashed leaf sibling edges; at
/// most `node_limit` nodes, top levels first, with a note node saying how many were left out.
pub fn inspect_tree_dot(path: &Path, page_size: PageSize, node_limit: usize) -> Result<String> {
    let file = PageFile::open(path, page_size)?;
    let shape = walk_tree(&file)?;
    let drawn: Vec<&NodeInfo> = shape.levels.iter().flatten().take(node_limit).collect();
    let drawn_pages: HashSet<u64> = drawn.iter().map(|n| n.page).collect();
    let mut out = String::new();
    outln!(out, "digraph btree {{");
    outln!(
        out,
        "  // B+tree {}: height {}, {} nodes, node size {}",
        file.name,
        shape.levels.len(),
        shape.node_count(),
        shape.node_size
    );
    outln!(
        out,
        "  node [shape=box, fontname=\"monospace\", fontsize=10];"
    );
    for n in &drawn {
        outln!(
            out,
            "  p{} [label=\"page {} (level {})\\n{} keys, fill {:.0}%\\n{}\"];",
            n.page,
            n.page,
            n.level,
            n.keys,
            n.fill_pct,
            dot_escape(&fmt_range(n))
        );
    }
    for n in &drawn {
        for c in n.children.iter().filter(|c| drawn_pages.contains(c)) {
            outln!(out, "  p{} -> p{c};", n.page);
        }
    }
    for level in &shape.levels {
        let members: Vec<String> = level
            .iter()
            .filter(|n| drawn_pages.contains(&n.page))
            .map(|n| format!("p{};", n.page))
            .collect();
        if members.len() > 1 {
            outln!(out, "  {{ rank=same; {} }}", members.join(" "));
        }
    }
    for n in drawn.iter().filter(|n| n.level == 0) {
        if n.next != NO_PAGE && drawn_pages.contains(&n.next) {
            outln!(
                out,
                "  p{} -> p{} [style=dashed, constraint=false, arrowsize=0.5];",
                n.page,
                n.next
            );
        }
    }
    let left_out = shape.node_count() - drawn.len();
    if left_out > 0 {
        outln!(
            out,
            "  truncated [shape=note, label=\"{left_out} more nodes not drawn (--node-limit {node_limit})\"];"
        );
    }
    outln!(out, "}}");
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// inspect heap
// ---------------------------------------------------------------------------------------

/// `storelab inspect heap`: every page of a heap file, one line each, then the HOT chains.
pub fn inspect_heap(path: &Path, page_size: PageSize) -> Result<String> {
    let file = PageFile::open(path, page_size)?;
    // Refuse another kind of file by its first written page that verifies.
    for i in 0..file.page_count.min(PROBE_PAGES_MAX) {
        let p = file.read(i)?;
        if p.failure.is_some() || p.is_zero() {
            continue;
        }
        if p.header.page_type != HEAP_PAGE {
            bail!(
                "{}: not a heap: page {i} is a {} page",
                file.path.display(),
                page_type_name(p.header.page_type)
            );
        }
        break;
    }
    let mut out = String::new();
    outln!(
        out,
        "heap {}: {} pages of {} bytes",
        file.name,
        file.page_count,
        file.page_size
    );
    outln!(
        out,
        "line pointers by state (normal/redirect/dead/unused), tuples (live/dead), free bytes, \
         and the FSM category (0-255) the page would get"
    );
    outln!(out);
    outln!(
        out,
        "  page   lps  norm  redir  dead  unused   live  dead-t  chains   free  fsm"
    );
    let mut chains_by_page = Vec::new();
    let mut notes = Vec::new();
    let mut total = HeapCounts::default();
    let mut total_free = 0;
    for i in 0..file.page_count {
        let p = file.read(i)?;
        if let Some(why) = &p.failure {
            notes.push(format!("page {i}: FAILS its checksum: {why}"));
            outln!(out, "  {i:>4}  (checksum fails, see below)");
            continue;
        }
        if p.is_zero() {
            outln!(out, "  {i:>4}  (never written)");
            continue;
        }
        if p.header.page_type != HEAP_PAGE {
            outln!(
                out,
                "  {i:>4}  ({} page, not a heap page)",
                page_type_name(p.header.page_type)
            );
            continue;
        }
        if let Err(why) = heap_page::validate(&p.bytes, file.page_size) {
            notes.push(format!("page {i}: INVALID: {why}"));
        }
        let page = HeapPageRef::new(&p.bytes, file.page_size);
        let c = HeapCounts::of(&page);
        let chains = hot_chains(&page);
        let free = page.free_space();
        outln!(
            out,
            "  {i:>4}  {:>4}  {:>4}  {:>5}  {:>4}  {:>6}  {:>5}  {:>6}  {:>6}  {free:>5}  {:>3}",
            page.slot_count(),
            c.normal,
            c.redirect,
            c.dead,
            c.unused,
            c.live_tuples,
            c.dead_tuples,
            chains.len(),
            heap_page::fsm_category(free, file.page_size)
        );
        total.normal += c.normal;
        total.redirect += c.redirect;
        total.dead += c.dead;
        total.unused += c.unused;
        total.live_tuples += c.live_tuples;
        total.dead_tuples += c.dead_tuples;
        total_free += free;
        if !chains.is_empty() {
            chains_by_page.push((i, chains));
        }
    }
    outln!(
        out,
        "  total {:>4}  {:>4}  {:>5}  {:>4}  {:>6}  {:>5}  {:>6}  {:>6}  {total_free:>5}",
        total.normal + total.redirect + total.dead + total.unused,
        total.normal,
        total.redirect,
        total.dead,
        total.unused,
        total.live_tuples,
        total.dead_tuples,
        chains_by_page.iter().map(|(_, c)| c.len()).sum::<usize>()
    );
    outln!(out);
    if chains_by_page.is_empty() {
        outln!(out, "HOT chains: none");
    } else {
        outln!(
            out,
            "HOT chains (index entries point at the first line pointer):"
        );
        for (page, chains) in &chains_by_page {
            for chain in chains {
                outln!(out, "  page {page}: {chain}");
            }
        }
    }
    if !notes.is_empty() {
        outln!(out);
        outln!(out, "problems: {}", notes.len());
        for note in notes {
            outln!(out, "  {note}");
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// inspect wal
// ---------------------------------------------------------------------------------------

fn record_type_name(t: RecordType) -> &'static str {
    match t {
        RecordType::CHECKPOINT => "checkpoint",
        RecordType::PAGE_IMAGES => "page-images",
        RecordType::NOOP => "noop",
        t if t == storelab_btree::REC_INSERT => "btree-insert",
        t if t == storelab_btree::REC_DELETE => "btree-delete",
        t if t == storelab_btree::REC_REPLACE => "btree-replace",
        t if t == storelab_btree::REC_STRUCTURE => "btree-structure",
        t if t == storelab_heap::redo::REC_HEAP => "heap",
        t if t == storelab_lsm::RECORD_LSM_BATCH => "lsm-batch",
        _ => "unknown",
    }
}

fn record_flags_name(flags: u16) -> String {
    let mut names = Vec::new();
    if flags & RECORD_GROUP_FIRST != 0 {
        names.push("group-first");
    }
    if flags & RECORD_IN_GROUP != 0 {
        names.push("in-group");
    }
    if flags & RECORD_GROUP_END != 0 {
        names.push("group-end");
    }
    if names.is_empty() {
        "-".to_string()
    } else {
        names.join("|")
    }
}

/// File names of relation numbers, from the catalog of the database the log belongs to.
fn relation_names(db_dir: &Path) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    let Ok(catalog) = read_catalog(db_dir) else {
        return names;
    };
    for table in &catalog.tables {
        let id = table.id.0;
        let Some(base) = id.checked_mul(RELS_PER_TABLE) else {
            continue;
        };
        for (n, file) in table_files(&catalog.engine, table).into_iter().enumerate() {
            // Relation numbers follow the file order of `table_files`, except the clustered
            // engine's hidden row-id index, which is the table's last number.
            let rel = if file.ends_with(".row-id.idx") {
                base + RELS_PER_TABLE - 1
            } else if catalog.engine == storelab_heap::engine::ENGINE_NAME {
                base + n as u32
            } else {
                base + 1 + n as u32
            };
            names.insert(rel, file);
        }
    }
    names
}

/// Describes a block's redo data where its record type is known.
fn block_data_summary(t: RecordType, data: &[u8]) -> String {
    if data.is_empty() {
        return String::new();
    }
    if t == storelab_heap::redo::REC_HEAP {
        return match storelab_heap::redo::decode_ops(data) {
            Ok(ops) => {
                let ops: Vec<String> = ops
                    .iter()
                    .map(|op| match op {
                        storelab_heap::redo::PageOp::Insert { slot, flags, row } => {
                            format!("insert lp{} {flags:?} {} bytes", slot.0, row.len())
                        }
                        storelab_heap::redo::PageOp::SetUpdated { slot, next, hot } => {
                            let kind = if *hot { "hot-update" } else { "update" };
                            format!("{kind} lp{} -> {next}", slot.0)
                        }
                        storelab_heap::redo::PageOp::SetDeleted { slot } => {
                            format!("delete lp{}", slot.0)
                        }
                    })
                    .collect();
                format!(": {}", ops.join(", "))
            }
            Err(why) => format!(": undecodable ({why})"),
        };
    }
    let btree_slot_op = [
        storelab_btree::REC_INSERT,
        storelab_btree::REC_DELETE,
        storelab_btree::REC_REPLACE,
    ];
    if btree_slot_op.contains(&t) && data.len() >= 4 {
        let slot = get_u16(data, 2);
        return match data.len() - 4 {
            0 => format!(": slot {slot}"),
            cell => format!(": slot {slot}, cell {cell} bytes"),
        };
    }
    String::new()
}

/// `storelab inspect wal`: records from `from` (default: the start of the log if its first
/// segment is still there, else the redo point), at most `limit`.
pub fn inspect_wal(
    dir: &Path,
    from: Option<Lsn>,
    limit: u64,
    page_size: PageSize,
    segment_size: usize,
) -> Result<String> {
    let (wal_dir, db_dir) = if dir.join("wal").is_dir() && !dir.join("control").exists() {
        (dir.join("wal"), dir.to_path_buf())
    } else {
        let parent = dir.parent().unwrap_or(dir).to_path_buf();
        (dir.to_path_buf(), parent)
    };
    if !wal_dir.is_dir() {
        bail!("{}: not a directory", wal_dir.display());
    }
    let backend: Arc<dyn storelab_pager::io::IoBackend> =
        Arc::new(storelab_pager::io::SyncBackend::new());
    let mut out = String::new();
    let control_path = wal_dir.join(storelab_wal::control::CONTROL_FILE_NAME);
    // `ControlFile::open` creates a missing file: only call it on one that exists.
    let control = if control_path.is_file() {
        storelab_wal::control::ControlFile::open(Arc::clone(&backend), &wal_dir)?.data()
    } else {
        None
    };
    let (page_size, segment_size) = match control {
        Some(c) => {
            outln!(
                out,
                "WAL {}: control file: page size {}, segment size {}, checkpoint at {}, redo from {}",
                display_name(&wal_dir),
                c.page_size,
                c.segment_size,
                c.checkpoint_lsn,
                c.redo_lsn
            );
            (c.page_size as usize, c.segment_size as usize)
        }
        None => {
            outln!(
                out,
                "WAL {}: no control file; page size {} and segment size {} from the flags",
                display_name(&wal_dir),
                page_size.bytes(),
                segment_size
            );
            (page_size.bytes(), segment_size)
        }
    };
    let geometry = SegmentGeometry::new(segment_size)?;
    let mut segments: Vec<u64> = std::fs::read_dir(&wal_dir)
        .with_context(|| format!("list {}", wal_dir.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| parse_segment_file_name(&e.file_name().to_string_lossy()))
        .collect();
    segments.sort_unstable();
    match (segments.first(), segments.last()) {
        (Some(first), Some(last)) => outln!(
            out,
            "segments: {} ({} .. {}), log bytes {} .. {}",
            segments.len(),
            segment_file_name(*first),
            segment_file_name(*last),
            geometry.segment_start(*first),
            geometry.segment_start(last + 1)
        ),
        _ => outln!(out, "segments: none"),
    }
    let (start, why) = match from {
        Some(lsn) => (lsn, "--from"),
        None if segments.first() == Some(&0) => (Lsn(0), "the start of the log"),
        None => (
            control.map_or(Lsn(0), |c| c.redo_lsn),
            "the redo point (older segments were recycled; --from to choose)",
        ),
    };
    outln!(out, "reading from {start} ({why}), at most {limit} records");
    let rels = relation_names(&db_dir);
    outln!(out);
    outln!(
        out,
        "{:<11}  {:>7}  {:<20}  {:<22}  blocks, main data",
        "lsn",
        "len",
        "type",
        "flags"
    );
    let mut reader = WalReader::new(backend, &wal_dir, geometry, page_size, start);
    let mut shown = 0;
    while shown < limit {
        let Some(record) = reader.next_record()? else {
            break;
        };
        shown += 1;
        let t = record.record_type;
        outln!(
            out,
            "{:<11}  {:>7}  {:<20}  {:<22}  {} block(s), main {} bytes",
            record.lsn.to_string(),
            record.len,
            format!("{} ({})", record_type_name(t), t.0),
            record_flags_name(record.flags),
            record.blocks.len(),
            record.main.len()
        );
        for b in &record.blocks {
            let rel = match rels.get(&b.rel.0) {
                Some(name) => format!("rel {} ({name})", b.rel.0),
                None => format!("rel {}", b.rel.0),
            };
            let image = match &b.image {
                Some(img) => format!("image {} bytes, ", img.len()),
                None => String::new(),
            };
            outln!(
                out,
                "             {rel} page {}: {image}data {} bytes{}",
                b.page_id,
                b.data.len(),
                block_data_summary(t, &b.data)
            );
        }
    }
    outln!(out);
    match reader.end() {
        Some(end) => outln!(
            out,
            "{shown} records; the log ends at {}: {}",
            end.lsn,
            end.reason
        ),
        None => outln!(
            out,
            "{shown} records shown (--limit {limit}); the next starts at {}",
            reader.position()
        ),
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// inspect db
// ---------------------------------------------------------------------------------------

/// The catalog as read from `catalog.json`, without `Catalog::open_or_create` (which may
/// create or delete files) and without its checksum check (`storelab check --db` does that).
struct CatalogView {
    format_version: u64,
    engine: String,
    next_table_id: u64,
    tables: Vec<storelab_table::catalog::CatalogEntry>,
}

fn read_catalog(dir: &Path) -> Result<CatalogView> {
    let path = dir.join(storelab_table::catalog::CATALOG_FILE_NAME);
    let len = std::fs::metadata(&path)
        .with_context(|| format!("{}: not a database directory", dir.display()))?
        .len();
    if len > storelab_table::catalog::CATALOG_SIZE_MAX {
        bail!("{}: larger than the catalog limit", path.display());
    }
    let text = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parse {}", path.display()))?;
    let field = |name: &str| {
        json.get(name)
            .with_context(|| format!("{}: no field {name:?}", path.display()))
    };
    let engine = field("engine")?
        .as_str()
        .with_context(|| format!("{}: engine is not a string", path.display()))?
        .to_string();
    let tables: Vec<storelab_table::catalog::CatalogEntry> =
        serde_json::from_value(field("tables")?.clone())
            .with_context(|| format!("{}: malformed tables", path.display()))?;
    Ok(CatalogView {
        format_version: field("format_version")?.as_u64().unwrap_or(0),
        engine,
        next_table_id: field("next_table_id")?.as_u64().unwrap_or(0),
        tables,
    })
}

/// The page files of a table, by the engine's directory layout (docs/format/catalog.md,
/// docs/format/clustered.md), in relation-number order.
fn table_files(engine: &str, table: &storelab_table::catalog::CatalogEntry) -> Vec<String> {
    let t = table.id.0;
    let mut files = Vec::new();
    if engine == storelab_heap::engine::ENGINE_NAME {
        files.push(format!("t{t}.heap"));
    }
    if engine == storelab_clustered::LSM_ENGINE_NAME {
        return files; // every table lives in the one LSM tree under lsm/
    }
    files.push(format!("t{t}.primary.idx"));
    files.extend(
        table
            .schema
            .indexes
            .iter()
            .map(|ix| format!("t{t}.{}.idx", ix.name)),
    );
    if engine == storelab_clustered::ENGINE_NAME && !table.schema.has_primary_key() {
        files.push(format!("t{t}.row-id.idx"));
    }
    files
}

/// One line about a page file: size, pages, and for a B+tree its shape.
fn file_summary(path: &Path, page_size: PageSize) -> String {
    let Ok(meta) = std::fs::metadata(path) else {
        return "missing".to_string();
    };
    let mut text = format!("{} bytes", meta.len());
    let file = match PageFile::open(path, page_size) {
        Ok(f) => f,
        Err(e) => return format!("{text}; {e:#}"),
    };
    text.push_str(&format!(", {} pages", file.page_count));
    if file.node_size().is_some() {
        match walk_tree(&file) {
            Ok(shape) => {
                let leaves = shape.levels.last().map_or(0, Vec::len);
                let entries: usize = shape
                    .levels
                    .last()
                    .map_or(0, |l| l.iter().map(|n| n.keys).sum());
                text.push_str(&format!(
                    "; B+tree height {}, {} nodes ({leaves} leaves), {entries} entries",
                    shape.levels.len(),
                    shape.node_count()
                ));
                if !shape.problems.is_empty() || !shape.checksum_failures.is_empty() {
                    text.push_str(&format!(
                        ", {} problem(s): see inspect tree",
                        shape.problems.len() + shape.checksum_failures.len()
                    ));
                }
            }
            Err(e) => text.push_str(&format!("; {e:#}")),
        }
    } else if let Ok(p) = file.read(0)
        && p.header.page_type == HEAP_PAGE
    {
        let mut live = 0;
        let mut failures = 0;
        for i in 0..file.page_count {
            match file.read(i) {
                Ok(p) if p.failure.is_none() && p.header.page_type == HEAP_PAGE => {
                    if heap_page::validate(&p.bytes, file.page_size).is_ok() {
                        live +=
                            HeapCounts::of(&HeapPageRef::new(&p.bytes, file.page_size)).live_tuples;
                    } else {
                        failures += 1;
                    }
                }
                Ok(p) if p.failure.is_none() => {}
                _ => failures += 1,
            }
        }
        text.push_str(&format!("; heap, {live} live tuples"));
        if failures > 0 {
            text.push_str(&format!(", {failures} bad page(s): see inspect heap"));
        }
    }
    text
}

/// Lists a directory's files (sorted, sizes), relative to `root`, descending into
/// subdirectories.
fn list_files(out: &mut String, root: &Path, dir: &Path) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("list {}", dir.display()))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .display()
            .to_string();
        let meta = e
            .metadata()
            .with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            outln!(out, "  {rel}/");
            list_files(out, root, &path)?;
        } else {
            outln!(out, "  {rel:<40} {:>12} bytes", meta.len());
        }
    }
    Ok(())
}

/// `storelab inspect db`: the catalog, each table's schema and files, for the clustered LSM
/// layout the tree's levels and tables from its manifest, and every file in the directory
/// with its size.
pub fn inspect_db(dir: &Path, page_size: PageSize) -> Result<String> {
    let catalog = read_catalog(dir)?;
    let mut out = String::new();
    outln!(
        out,
        "database {}: engine {}, catalog format {}, next table id {}, {} table(s)",
        display_name(dir),
        catalog.engine,
        catalog.format_version,
        catalog.next_table_id,
        catalog.tables.len()
    );
    for table in &catalog.tables {
        let s = &table.schema;
        outln!(out);
        outln!(out, "table {} (id {})", s.name, table.id);
        let columns: Vec<String> = s
            .columns
            .iter()
            .map(|c| format!("{} {:?}", c.name, c.column_type))
            .collect();
        outln!(out, "  columns      {}", columns.join(", "));
        let names = |cols: &[usize]| -> String {
            cols.iter()
                .map(|&i| s.columns.get(i).map_or("?", |c| c.name.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        if s.primary_key.is_empty() {
            outln!(out, "  primary key  none (hidden row id)");
        } else {
            outln!(out, "  primary key  ({})", names(&s.primary_key));
        }
        for ix in &s.indexes {
            let unique = if ix.unique { " unique" } else { "" };
            outln!(
                out,
                "  index        {} ({}){unique}",
                ix.name,
                names(&ix.columns)
            );
        }
        outln!(out, "  engine data  {}", table.engine_data);
        if catalog.engine == storelab_clustered::LSM_ENGINE_NAME {
            let ids: Vec<String> = lsm_table_index_ids(table)
                .into_iter()
                .map(|(id, index)| format!("{index} {id:08x}"))
                .collect();
            outln!(out, "  lsm key ids  {}", ids.join(", "));
        }
        for f in table_files(&catalog.engine, table) {
            outln!(
                out,
                "  file         {f}: {}",
                file_summary(&dir.join(&f), page_size)
            );
        }
    }
    outln!(out);
    if catalog.engine == storelab_clustered::LSM_ENGINE_NAME {
        let lsm_dir = dir.join(storelab_clustered::lsm_engine::LSM_DIR_NAME);
        // A damaged manifest is reported here, not as the command's error: the catalog and
        // the file listing are still worth seeing (`inspect lsm` fails on it instead).
        let view = if lsm_dir.is_dir() {
            LsmView::read(&lsm_dir)
        } else {
            Err(anyhow::anyhow!("the directory is missing"))
        };
        match view {
            Ok(view) => {
                let names = lsm_index_names(&catalog);
                lsm_levels(&mut out, &view, &names, DB_TABLES_LISTED_MAX);
            }
            Err(e) => outln!(
                out,
                "LSM tree {}/: cannot read its manifest: {e:#}",
                storelab_clustered::lsm_engine::LSM_DIR_NAME
            ),
        }
        outln!(out);
    }
    outln!(out, "files");
    list_files(&mut out, dir, dir)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// inspect lsm, inspect sst (and the LSM part of inspect db)
// ---------------------------------------------------------------------------------------

/// Bytes of an LSM key shown before it is cut short.
const LSM_KEY_SHOWN_MAX: usize = 32;
/// Bytes of a key shown in `inspect sst`'s block list.
const SST_KEY_SHOWN_MAX: usize = 32;
/// The largest manifest read. The tree starts a fresh manifest once one grows past
/// `manifest_bytes_max` (1 MiB by default), but a single edit may be up to 64 MiB.
const MANIFEST_READ_BYTES_MAX: u64 = 256 << 20;
/// The largest table `inspect sst` reads (whole, into memory). Compaction cuts tables at
/// `table_bytes_target` (2 MiB by default) and a flushed memtable is smaller still.
const TABLE_READ_BYTES_MAX: u64 = 256 << 20;
/// Tables listed per level by `inspect db` (`inspect lsm --table-limit` lists more).
const DB_TABLES_LISTED_MAX: usize = 50;
/// Tables named per edit in `inspect lsm`'s list of edits; the rest are counted.
const EDIT_TABLES_LISTED_MAX: usize = 6;
/// Problems listed by `inspect sst`; the rest are counted.
const SST_PROBLEMS_LISTED_MAX: usize = 20;

/// An LSM key as quoted text: printable ASCII as itself (`"` and `\` escaped), any other
/// byte as `\xNN`; past `max` bytes cut short with `..` and the key's length. Unlike
/// `fmt_bytes`, text and binary stay in one string, because keys of the clustered LSM layout
/// are a binary index id followed by mostly printable encoded columns.
fn fmt_key(key: &[u8], max: usize) -> String {
    let mut text = String::from("\"");
    for &b in &key[..key.len().min(max)] {
        match b {
            b'"' => text.push_str("\\\""),
            b'\\' => text.push_str("\\\\"),
            0x20..=0x7e => text.push(b as char),
            _ => text.push_str(&format!("\\x{b:02x}")),
        }
    }
    text.push('"');
    if key.len() > max {
        text.push_str(&format!("..({} bytes)", key.len()));
    }
    text
}

/// An LSM tree as its current manifest describes it, read without opening the tree.
///
/// The manifest is chosen as `Lsm::open` chooses it (the highest-numbered `MANIFEST-NNNNNN`
/// with a valid header and snapshot) and decoded by the lsm crate
/// (`storelab_lsm::manifest::read_manifest`, which checks every record's checksum and
/// length). Only the replay of its edits is restated here, in [`replay_edits`], because the
/// crate does that inside `Lsm::open`, which also opens the log, deletes orphan tables,
/// replays the log and writes a fresh manifest: none of that happens here.
struct LsmView {
    /// The directory's last path component.
    dir_name: String,
    /// The current manifest's file name.
    manifest: String,
    /// Newer manifests without a valid header or snapshot (a crash cut their creation
    /// short); the next open ignores and deletes them.
    skipped_manifests: Vec<String>,
    /// The current manifest's edits, its snapshot first.
    edits: Vec<VersionEdit>,
    /// Live tables by level (`LEVEL_COUNT_MAX` levels), in the tree's order: L0 newest
    /// first (by largest sequence number), deeper levels by smallest key.
    levels: Vec<Vec<TableMeta>>,
    /// Every file in the directory with its length, sorted by name.
    files: Vec<(String, u64)>,
}

impl LsmView {
    /// Lists `dir` and reads its current manifest. Fails on a directory with no manifest
    /// at all, or on a manifest that the tree itself would refuse to open with.
    fn read(dir: &Path) -> Result<LsmView> {
        let dir_name = display_name(dir);
        if !dir.is_dir() {
            bail!("{}: not a directory", dir.display());
        }
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("list {}", dir.display()))? {
            let entry = entry.with_context(|| format!("list {}", dir.display()))?;
            let meta = entry
                .metadata()
                .with_context(|| format!("{}", entry.path().display()))?;
            if meta.is_file() {
                files.push((entry.file_name().to_string_lossy().into_owned(), meta.len()));
            }
        }
        files.sort();
        let mut manifests: Vec<(u64, String, u64)> = files
            .iter()
            .filter_map(|(name, len)| {
                parse_manifest_file_name(name).map(|n| (n, name.clone(), *len))
            })
            .collect();
        manifests.sort_unstable_by_key(|m| std::cmp::Reverse(m.0));
        let mut skipped_manifests = Vec::new();
        let mut current = None;
        for (_, name, len) in manifests {
            if len > MANIFEST_READ_BYTES_MAX {
                bail!(
                    "{dir_name}/{name}: {len} bytes, more than inspect reads \
                     ({MANIFEST_READ_BYTES_MAX})"
                );
            }
            let bytes = std::fs::read(dir.join(&name))
                .with_context(|| format!("read {dir_name}/{name}"))?;
            // Errors name the file only, so the output never depends on where the tree is.
            match read_manifest(&bytes, Path::new(&name))? {
                Some(edits) => {
                    current = Some((name, edits));
                    break;
                }
                None => skipped_manifests.push(name),
            }
        }
        let Some((manifest, edits)) = current else {
            if files
                .iter()
                .any(|(name, _)| TableId::parse_file_name(name).is_some())
            {
                bail!(
                    "{dir_name}: table files but no valid manifest (the tree refuses to open \
                     like this)"
                );
            }
            bail!("{dir_name}: no valid MANIFEST-NNNNNN: not an LSM tree's directory");
        };
        let levels =
            replay_edits(&edits).map_err(|why| anyhow::anyhow!("{dir_name}/{manifest}: {why}"))?;
        Ok(LsmView {
            dir_name,
            manifest,
            skipped_manifests,
            edits,
            levels,
            files,
        })
    }

    /// The last edit: its `log covered`, `last seq` and `next table` are the tree's.
    fn last_edit(&self) -> &VersionEdit {
        self.edits
            .last()
            .expect("read_manifest returns at least the snapshot")
    }

    /// Levels up to the deepest one holding a table (at least L0). The tree's configured
    /// level count is not on disk.
    fn level_count_shown(&self) -> usize {
        self.levels
            .iter()
            .rposition(|l| !l.is_empty())
            .map_or(1, |deepest| deepest + 1)
    }

    /// Tables, bytes and entries in all levels.
    fn totals(&self) -> (usize, u64, u64) {
        let all = self.levels.iter().flatten();
        (
            all.clone().count(),
            all.clone().map(|m| m.size).sum(),
            all.map(|m| m.entry_count).sum(),
        )
    }

    /// The live table `id`, if the manifest names it.
    fn table(&self, id: TableId) -> Option<&TableMeta> {
        self.levels.iter().flatten().find(|m| m.id == id)
    }

    /// The length of the file `name` in the directory, if there is one.
    fn file_len(&self, name: &str) -> Option<u64> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, len)| *len)
    }
}

/// The live tables after a manifest's edits, replayed as `Lsm::open` replays them
/// (docs/format/lsm-manifest.md): the snapshot's tables, then for each change its deleted
/// tables removed (each must be live at that level) and its added ones added. `Err` says
/// which edit is impossible.
fn replay_edits(edits: &[VersionEdit]) -> Result<Vec<Vec<TableMeta>>, String> {
    let mut live: BTreeMap<TableId, TableMeta> = BTreeMap::new();
    for (n, edit) in edits.iter().enumerate() {
        for (level, id) in &edit.deleted {
            match live.remove(id) {
                Some(m) if m.level == *level => {}
                _ => {
                    return Err(format!(
                        "edit {n} deletes {id} from L{level}, where it is not"
                    ));
                }
            }
        }
        for m in &edit.added {
            live.insert(m.id, m.clone());
        }
    }
    let mut levels = vec![Vec::new(); LEVEL_COUNT_MAX];
    for m in live.into_values() {
        // `VersionEdit::decode` refuses a level past LEVEL_COUNT_MAX; checked again rather
        // than indexed blindly, since the bytes came from disk.
        let level = m.level;
        levels
            .get_mut(usize::from(level))
            .ok_or_else(|| format!("table {} in L{level}", m.id))?
            .push(m);
    }
    // The tree's order (`Version::sort`); ties keep table-number order, so output is stable.
    levels[0].sort_by_key(|m| std::cmp::Reverse(m.seq_max));
    for level in &mut levels[1..] {
        level.sort_by(|a, b| a.smallest.cmp(&b.smallest));
    }
    Ok(levels)
}

/// The LSM index ids of a clustered-lsm table with their index names: the primary at
/// `id * 32 + 1`, secondary `i` at `id * 32 + 2 + i`, and, for a table without a primary
/// key, the row-id mark at `id * 32 + 31` (`storelab_clustered::lsm_table`, whose offsets
/// are private; docs/format/clustered.md).
fn lsm_table_index_ids(table: &storelab_table::catalog::CatalogEntry) -> Vec<(u32, String)> {
    let Some(first) = table
        .id
        .0
        .checked_mul(INDEX_IDS_PER_TABLE)
        .filter(|first| first.checked_add(INDEX_IDS_PER_TABLE).is_some())
    else {
        return Vec::new();
    };
    let mut ids = vec![(first + 1, PRIMARY_INDEX_NAME.to_string())];
    // The catalog is read from disk: ids past the row-id mark's are not taken.
    let secondaries_max = (INDEX_IDS_PER_TABLE - 3) as usize;
    ids.extend(
        table
            .schema
            .indexes
            .iter()
            .take(secondaries_max)
            .enumerate()
            .map(|(i, ix)| (first + 2 + i as u32, ix.name.clone())),
    );
    if !table.schema.has_primary_key() {
        ids.push((first + INDEX_IDS_PER_TABLE - 1, "row-id mark".to_string()));
    }
    ids
}

/// `table.index` names of every LSM index id in a clustered-lsm catalog.
fn lsm_index_names(catalog: &CatalogView) -> BTreeMap<u32, String> {
    let mut names = BTreeMap::new();
    for table in &catalog.tables {
        for (id, index) in lsm_table_index_ids(table) {
            names.insert(id, format!("{}.{index}", table.schema.name));
        }
    }
    names
}

/// The index a key of the clustered LSM layout belongs to (its first 4 bytes), as
/// ` (table.index)`, or nothing if no catalog names it.
fn key_index_note(key: &[u8], names: &BTreeMap<u32, String>) -> String {
    IndexId::of_key(key)
        .and_then(|id| names.get(&id.0))
        .map_or_else(String::new, |name| format!(" ({name})"))
}

/// The indexes a table's key range spans, as `  [t.primary]` or `  [t.primary .. t.by_v]`.
fn key_range_note(m: &TableMeta, names: &BTreeMap<u32, String>) -> String {
    let name = |key: &[u8]| {
        IndexId::of_key(key)
            .and_then(|id| names.get(&id.0))
            .map_or("?", String::as_str)
    };
    if names.is_empty() {
        return String::new();
    }
    let (low, high) = (name(&m.smallest), name(&m.largest));
    if low == high {
        format!("  [{low}]")
    } else {
        format!("  [{low} .. {high}]")
    }
}

/// How a level's tables are ordered, and the first pair breaking that order (a broken
/// invariant of the tree, which `Version::check` refuses; shown here, not assumed).
fn level_order_note(level: usize, tables: &[TableMeta]) -> String {
    if level == 0 {
        match tables.windows(2).find(|p| p[0].seq_min <= p[1].seq_max) {
            None => "newest first, key ranges may overlap".to_string(),
            Some(p) => format!(
                "newest first, key ranges may overlap; BROKEN: the sequence ranges of {} and {} \
                 overlap or are out of order",
                p[0].id, p[1].id
            ),
        }
    } else {
        match tables.windows(2).find(|p| p[0].largest >= p[1].smallest) {
            None => "one sorted run, key ranges do not overlap".to_string(),
            Some(p) => format!(
                "one sorted run; BROKEN: {} and {} overlap or are out of order",
                p[0].id, p[1].id
            ),
        }
    }
}

/// The tree's summary: manifest, log position, sequence numbers, and a line per level.
fn lsm_header(out: &mut String, view: &LsmView) {
    let (tables, bytes, entries) = view.totals();
    let last = view.last_edit();
    outln!(
        out,
        "LSM tree {}/: {} ({} edit(s)), {tables} table(s), {bytes} bytes, {entries} entries",
        view.dir_name,
        view.manifest,
        view.edits.len()
    );
    outln!(
        out,
        "  log covered  {}  the tree's log records before it are in tables; those after it are",
        last.log_covered
    );
    outln!(
        out,
        "               only in the log, replayed into a memtable at open (inspect wal --from {})",
        last.log_covered
    );
    outln!(
        out,
        "  last seq     {}  the largest sequence number handed out as of the last edit",
        last.last_seq
    );
    outln!(
        out,
        "  next table   {}  the next table number to hand out",
        TableId(last.next_table)
    );
    for name in &view.skipped_manifests {
        outln!(
            out,
            "  {name}: newer, but without a valid header or snapshot (a crash cut its creation \
             short): ignored, and deleted at the next open"
        );
    }
    outln!(out);
    outln!(
        out,
        "  {:<5}  {:>6}  {:>12}  {:>10}",
        "level",
        "tables",
        "bytes",
        "entries"
    );
    for (level, tables) in view
        .levels
        .iter()
        .enumerate()
        .take(view.level_count_shown())
    {
        outln!(
            out,
            "  L{level:<4}  {:>6}  {:>12}  {:>10}",
            tables.len(),
            tables.iter().map(|m| m.size).sum::<u64>(),
            tables.iter().map(|m| m.entry_count).sum::<u64>()
        );
    }
}

/// The LSM part of `inspect db`: the summary, then each level's tables (at most
/// `table_limit` per level) with size, entries and key range.
fn lsm_levels(out: &mut String, view: &LsmView, names: &BTreeMap<u32, String>, table_limit: usize) {
    lsm_header(out, view);
    for (level, tables) in view.levels.iter().enumerate() {
        if tables.is_empty() {
            continue;
        }
        outln!(out);
        outln!(
            out,
            "L{level}: {} table(s), {}",
            tables.len(),
            level_order_note(level, tables)
        );
        outln!(
            out,
            "  {:<10}  {:>10}  {:>8}  smallest key .. largest key",
            "table",
            "bytes",
            "entries"
        );
        for m in tables.iter().take(table_limit) {
            outln!(
                out,
                "  {:<10}  {:>10}  {:>8}  {} .. {}{}",
                m.id.to_string(),
                m.size,
                m.entry_count,
                fmt_key(&m.smallest, LSM_KEY_SHOWN_MAX),
                fmt_key(&m.largest, LSM_KEY_SHOWN_MAX),
                key_range_note(m, names)
            );
        }
        if tables.len() > table_limit {
            outln!(
                out,
                "  ... {} more table(s) (inspect lsm lists them)",
                tables.len() - table_limit
            );
        }
    }
}

/// Reads a live table's footer (64 bytes at the end of its logical size, from a file opened
/// read-only) and compares it with the manifest's description.
fn footer_verdict(dir: &Path, m: &TableMeta, file_len: Option<u64>) -> String {
    let Some(file_len) = file_len else {
        return "MISSING: the manifest names it, but there is no such file".to_string();
    };
    if file_len < m.size {
        return format!(
            "SHORT: the file has {file_len} bytes, the manifest says {}",
            m.size
        );
    }
    let Some(footer_at) = m.size.checked_sub(FOOTER_SIZE as u64) else {
        return format!(
            "BAD: the manifest's size {} is shorter than a footer",
            m.size
        );
    };
    let mut bytes = [0u8; FOOTER_SIZE];
    let read =
        File::open(dir.join(m.id.file_name())).and_then(|f| f.read_exact_at(&mut bytes, footer_at));
    if let Err(e) = read {
        return format!("UNREADABLE: {e}");
    }
    match Footer::decode(&bytes, m.size) {
        Err((reason, _)) => format!("FOOTER FAILS: {reason}"),
        Ok(f)
            if f.entry_count != m.entry_count
                || f.seq_min != m.seq_min
                || f.seq_max != m.seq_max =>
        {
            format!(
                "DISAGREES: the footer says {} entries, {}..{}",
                f.entry_count, f.seq_min, f.seq_max
            )
        }
        Ok(_) => "footer agrees".to_string(),
    }
}

/// The tables an edit deletes (`-L0 000003.sst`) and adds (`+L1 000005.sst`).
fn edit_tables(edit: &VersionEdit) -> String {
    let names: Vec<String> = edit
        .deleted
        .iter()
        .map(|(level, id)| format!("-L{level} {id}"))
        .chain(edit.added.iter().map(|m| format!("+L{} {}", m.level, m.id)))
        .collect();
    if names.is_empty() {
        return if edit.snapshot {
            "none (an empty tree)".to_string()
        } else {
            "none (moves log covered only)".to_string()
        };
    }
    let mut text = names
        .iter()
        .take(EDIT_TABLES_LISTED_MAX)
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    if names.len() > EDIT_TABLES_LISTED_MAX {
        text.push_str(&format!(
            " (+{} more)",
            names.len() - EDIT_TABLES_LISTED_MAX
        ));
    }
    text
}

/// `storelab inspect lsm`: an LSM tree from its manifest, in detail: the summary, every
/// live table with its file size, sequence range and footer checked against the manifest,
/// the manifest's most recent edits, and the directory's files with their roles.
pub fn inspect_lsm(dir: &Path, table_limit: usize, edit_limit: usize) -> Result<String> {
    let catalog_file = storelab_table::catalog::CATALOG_FILE_NAME;
    let (lsm_dir, db_dir) = if dir.join(catalog_file).is_file() {
        (dir.join(LSM_DIR_NAME), Some(dir.to_path_buf()))
    } else {
        let parent = dir
            .parent()
            .filter(|p| p.join(catalog_file).is_file())
            .map(Path::to_path_buf);
        (dir.to_path_buf(), parent)
    };
    if let Some(db) = &db_dir
        && let Ok(catalog) = read_catalog(db)
        && catalog.engine != storelab_clustered::LSM_ENGINE_NAME
        && !lsm_dir.is_dir()
    {
        bail!(
            "{}: a database of engine {}, which has no LSM tree",
            db.display(),
            catalog.engine
        );
    }
    let view = LsmView::read(&lsm_dir)?;
    let names = db_dir
        .and_then(|d| read_catalog(&d).ok())
        .filter(|c| c.engine == storelab_clustered::LSM_ENGINE_NAME)
        .map(|c| lsm_index_names(&c))
        .unwrap_or_default();
    let mut out = String::new();
    lsm_header(&mut out, &view);
    for (level, tables) in view.levels.iter().enumerate() {
        if tables.is_empty() {
            continue;
        }
        outln!(out);
        outln!(
            out,
            "L{level}: {} table(s), {} bytes; {}",
            tables.len(),
            tables.iter().map(|m| m.size).sum::<u64>(),
            level_order_note(level, tables)
        );
        for m in tables.iter().take(table_limit) {
            let file_len = view.file_len(&m.id.file_name());
            outln!(
                out,
                "  {}  {} bytes (file {})  {} entries  seq {}..{}  {}",
                m.id,
                m.size,
                file_len.map_or_else(|| "missing".to_string(), |l| l.to_string()),
                m.entry_count,
                m.seq_min,
                m.seq_max,
                footer_verdict(&lsm_dir, m, file_len)
            );
            outln!(
                out,
                "    smallest  {}{}",
                fmt_key(&m.smallest, LSM_KEY_SHOWN_MAX),
                key_index_note(&m.smallest, &names)
            );
            outln!(
                out,
                "    largest   {}{}",
                fmt_key(&m.largest, LSM_KEY_SHOWN_MAX),
                key_index_note(&m.largest, &names)
            );
        }
        if tables.len() > table_limit {
            outln!(
                out,
                "  ... {} more table(s) (--table-limit)",
                tables.len() - table_limit
            );
        }
    }

    outln!(out);
    let shown_from = view.edits.len().saturating_sub(edit_limit);
    outln!(
        out,
        "edits in {}: 1 snapshot, {} change(s){}",
        view.manifest,
        view.edits.len() - 1,
        if shown_from > 0 {
            format!("; the last {edit_limit} shown (--edit-limit)")
        } else {
            String::new()
        }
    );
    outln!(
        out,
        "  {:>4}  {:<8}  {:<11}  {:>8}  {:<10}  tables deleted (-) and added (+)",
        "#",
        "kind",
        "log covered",
        "last seq",
        "next table"
    );
    for (n, edit) in view.edits.iter().enumerate().skip(shown_from) {
        outln!(
            out,
            "  {n:>4}  {:<8}  {:<11}  {:>8}  {:<10}  {}",
            if edit.snapshot { "snapshot" } else { "change" },
            edit.log_covered.to_string(),
            edit.last_seq.to_string(),
            TableId(edit.next_table).to_string(),
            edit_tables(edit)
        );
    }

    outln!(out);
    outln!(out, "files in {}/", view.dir_name);
    for (name, len) in &view.files {
        let role = if *name == view.manifest {
            "the current manifest".to_string()
        } else if view.skipped_manifests.contains(name) {
            "a newer manifest without a valid start: ignored".to_string()
        } else if parse_manifest_file_name(name).is_some() {
            "an older manifest: deleted at the next open".to_string()
        } else if let Some(id) = TableId::parse_file_name(name) {
            match view.table(id) {
                Some(m) => format!("L{} table", m.level),
                None => {
                    "not named by the manifest: an orphan, deleted at the next open".to_string()
                }
            }
        } else {
            "not one of the tree's files".to_string()
        };
        outln!(out, "  {name:<20} {len:>10} bytes  {role}");
    }
    Ok(out)
}

/// Problems found in a table: the first few listed, all counted.
#[derive(Default)]
struct Problems {
    listed: Vec<String>,
    count: usize,
}

impl Problems {
    fn push(&mut self, what: String) {
        self.count += 1;
        if self.listed.len() < SST_PROBLEMS_LISTED_MAX {
            self.listed.push(what);
        }
    }
}

/// A block's contents at `h` within a table's first `logical` bytes: bounds checked here,
/// then checksum and decompression by the lsm crate's `unseal_block`.
fn table_block(bytes: &[u8], logical: u64, h: BlockHandle, name: &str) -> Result<Vec<u8>, String> {
    let end = h
        .offset
        .checked_add(h.stored_size())
        .filter(|&end| end <= logical)
        .ok_or_else(|| {
            format!(
                "block at {} of {} bytes runs past the table's end ({logical})",
                h.offset,
                h.stored_size()
            )
        })?;
    // `end <= logical <= bytes.len()`, checked by the caller before any block is read.
    unseal_block(
        &bytes[h.offset as usize..end as usize],
        Path::new(name),
        h.offset,
    )
    .map_err(|e| e.to_string())
}

/// How a table differs from the manifest's description of it (empty: it agrees).
fn meta_differences(table: &TableMeta, manifest: &TableMeta) -> Vec<String> {
    let mut diffs = Vec::new();
    if table.size != manifest.size {
        diffs.push(format!("size {} vs {}", table.size, manifest.size));
    }
    if table.entry_count != manifest.entry_count {
        diffs.push(format!(
            "entries {} vs {}",
            table.entry_count, manifest.entry_count
        ));
    }
    if (table.seq_min, table.seq_max) != (manifest.seq_min, manifest.seq_max) {
        diffs.push(format!(
            "seq {}..{} vs {}..{}",
            table.seq_min, table.seq_max, manifest.seq_min, manifest.seq_max
        ));
    }
    if table.smallest != manifest.smallest {
        diffs.push("smallest key".to_string());
    }
    if table.largest != manifest.largest {
        diffs.push("largest key".to_string());
    }
    diffs
}

/// `storelab inspect sst`: one sorted table, read whole into memory from a file opened
/// read-only and decoded with the lsm crate's sstable decoders: the footer, the filter, the
/// index (one entry per data block), then every data block, whose entries are counted and
/// checked for order and sequence range. Last, the table is opened as the tree opens it
/// (`SsTable::open`) and compared with the manifest beside it, if that names it.
///
/// A footer or index that does not decode is the command's error (nothing else can be
/// found without them); a damaged data or filter block is shown as failing and listed
/// under problems.
pub fn inspect_sst(path: &Path, block_limit: usize) -> Result<String> {
    let name = display_name(path);
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if !meta.is_file() {
        bail!("{}: not a file", path.display());
    }
    if meta.len() > TABLE_READ_BYTES_MAX {
        bail!(
            "{}: {} bytes, more than inspect reads ({TABLE_READ_BYTES_MAX})",
            path.display(),
            meta.len()
        );
    }
    let bytes = Arc::new(std::fs::read(path).with_context(|| format!("read {}", path.display()))?);
    let file_len = bytes.len() as u64;
    let id = TableId::parse_file_name(&name);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let (described, source) = match id {
        None => (
            None,
            "its name is not NNNNNN.sst, so no manifest names it".to_string(),
        ),
        Some(id) => match LsmView::read(dir) {
            Ok(view) => match view.table(id) {
                Some(m) => (
                    Some(m.clone()),
                    format!("{} names it in L{}", view.manifest, m.level),
                ),
                None => (
                    None,
                    format!(
                        "{} does not name it: an orphan, or not this tree's table",
                        view.manifest
                    ),
                ),
            },
            Err(e) => (None, format!("no manifest beside it names it: {e:#}")),
        },
    };
    // The logical size is where the footer ends: the manifest records it; without one it
    // is the end of the last nonzero byte, since the padding after the footer is zeros and
    // the footer ends with its magic, whose last byte is not zero.
    let (logical, how) = match &described {
        Some(m) => (m.size, "from the manifest"),
        None => (
            bytes
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |i| i as u64 + 1),
            "where the zero padding starts",
        ),
    };
    let mut out = String::new();
    outln!(
        out,
        "table {name}: file {file_len} bytes, logical size {logical} ({how})"
    );
    outln!(out, "  {source}");
    if logical > file_len {
        bail!("{name}: the manifest says {logical} bytes, the file has {file_len}");
    }
    let Some(footer_at) = logical.checked_sub(FOOTER_SIZE as u64) else {
        bail!(
            "{name}: {logical} bytes before the padding, shorter than a footer ({FOOTER_SIZE}): \
             not a storelab table"
        );
    };
    let footer = Footer::decode(&bytes[footer_at as usize..logical as usize], logical)
        .map_err(|(reason, _)| anyhow::anyhow!("{name}: footer at offset {footer_at}: {reason}"))?;
    outln!(out);
    outln!(
        out,
        "footer at {footer_at} ({FOOTER_SIZE} bytes): format version {}, magic and checksum valid",
        footer.version
    );
    outln!(
        out,
        "  index block   offset {}, {} bytes + {BLOCK_TRAILER_SIZE}-byte trailer",
        footer.index.offset,
        footer.index.size
    );
    if footer.filter.size == 0 {
        outln!(out, "  filter block  none");
    } else {
        outln!(
            out,
            "  filter block  offset {}, {} bytes + {BLOCK_TRAILER_SIZE}-byte trailer",
            footer.filter.offset,
            footer.filter.size
        );
    }
    outln!(out, "  entries       {}", footer.entry_count);
    outln!(
        out,
        "  seq range     {}..{}",
        footer.seq_min,
        footer.seq_max
    );

    let mut problems = Problems::default();
    outln!(out);
    if footer.filter.size == 0 {
        outln!(
            out,
            "bloom filter: none (written with bloom_bits_per_key 0)"
        );
    } else {
        let filter = table_block(&bytes, logical, footer.filter, &name)
            .and_then(|c| BloomFilter::decode(&c).map(|_| c));
        match filter {
            Ok(contents) => {
                // Contents: the bit array, then one byte of probes per key (bloom.rs).
                let (probes, bits) = contents
                    .split_last()
                    .expect("BloomFilter::decode accepted it, so it is not empty");
                let bit_count = bits.len() as u64 * 8;
                outln!(
                    out,
                    "bloom filter: {} bytes, {bit_count} bits for {} entries ({:.1} bits per key), \
                     {probes} probes per key",
                    bits.len(),
                    footer.entry_count,
                    bit_count as f64 / footer.entry_count as f64
                );
            }
            Err(e) => {
                outln!(out, "bloom filter: FAILS: {e}");
                problems.push(format!("filter block: {e}"));
            }
        }
    }

    // The index: one entry per data block, its last key -> its handle.
    let index = table_block(&bytes, logical, footer.index, &name)
        .and_then(Block::decode)
        .map_err(|e| anyhow::anyhow!("{name}: index block: {e}"))?;
    let mut handles = Vec::new();
    let mut it = BlockIter::new(Arc::new(index));
    it.seek_to_first();
    while it.is_valid() {
        handles.push((it.key().to_vec(), BlockHandle::decode(it.value())));
        it.next();
    }
    outln!(
        out,
        "index block: {} entries, one per data block (its last key -> offset and size)",
        handles.len()
    );
    outln!(out);
    outln!(
        out,
        "  {:>5}  {:>10}  {:>6}  {:>7}  {:>10}  first key .. last key (the index entry's key)",
        "block",
        "offset",
        "bytes",
        "entries",
        "tombstones"
    );
    let mut expect_offset = 0u64;
    let mut unread_blocks = 0usize;
    let (mut puts, mut tombstones) = (0u64, 0u64);
    let mut prev: Option<Vec<u8>> = None;
    let mut smallest: Option<Vec<u8>> = None;
    for (i, (index_key, handle)) in handles.iter().enumerate() {
        let listed = i < block_limit;
        let h = match handle {
            Ok(h) => *h,
            Err(e) => {
                if listed {
                    outln!(out, "  {i:>5}  FAILS: index entry: {e}");
                }
                problems.push(format!("index entry {i}: {e}"));
                unread_blocks += 1;
                continue;
            }
        };
        if h.offset != expect_offset {
            problems.push(format!(
                "block {i} is at {}, the block before it ends at {expect_offset}",
                h.offset
            ));
        }
        expect_offset = h.offset.saturating_add(h.stored_size());
        let block = match table_block(&bytes, logical, h, &name).and_then(Block::decode) {
            Ok(block) => Arc::new(block),
            Err(e) => {
                if listed {
                    outln!(out, "  {i:>5}  {:>10}  {:>6}  FAILS: {e}", h.offset, h.size);
                }
                problems.push(format!("block {i}: {e}"));
                unread_blocks += 1;
                continue;
            }
        };
        let mut it = BlockIter::new(block);
        it.seek_to_first();
        // `Block::decode` refuses a block without entries, so the first key exists.
        let first = it.key().to_vec();
        let mut count = 0u64;
        let mut block_tombstones = 0u64;
        let mut out_of_order = 0u64;
        let mut out_of_range = 0u64;
        while it.is_valid() {
            if prev.as_deref().is_some_and(|p| p >= it.key()) {
                out_of_order += 1;
            }
            if it.seq() < footer.seq_min || it.seq() > footer.seq_max {
                out_of_range += 1;
            }
            if it.is_put() {
                puts += 1;
            } else {
                tombstones += 1;
                block_tombstones += 1;
            }
            count += 1;
            let p = prev.get_or_insert_with(Vec::new);
            p.clear();
            p.extend_from_slice(it.key());
            it.next();
        }
        if out_of_order > 0 {
            problems.push(format!(
                "block {i}: {out_of_order} key(s) not after the key before"
            ));
        }
        if out_of_range > 0 {
            problems.push(format!(
                "block {i}: {out_of_range} sequence number(s) outside the footer's range"
            ));
        }
        if prev.as_deref() != Some(index_key.as_slice()) {
            problems.push(format!(
                "block {i} ends at a key other than its index entry's"
            ));
        }
        smallest.get_or_insert(first.clone());
        if listed {
            outln!(
                out,
                "  {i:>5}  {:>10}  {:>6}  {count:>7}  {block_tombstones:>10}  {} .. {}",
                h.offset,
                h.size,
                fmt_key(&first, SST_KEY_SHOWN_MAX),
                fmt_key(index_key, SST_KEY_SHOWN_MAX)
            );
        }
    }
    if handles.len() > block_limit {
        outln!(
            out,
            "  ... {} more block(s), read and checked but not listed (--block-limit)",
            handles.len() - block_limit
        );
    }
    if expect_offset != footer.filter.offset {
        problems.push(format!(
            "the data blocks end at {expect_offset}, the {} starts at {}",
            if footer.filter.size == 0 {
                "index"
            } else {
                "filter"
            },
            footer.filter.offset
        ));
    }

    let total = puts + tombstones;
    outln!(out);
    outln!(
        out,
        "entries: {total} ({puts} puts, {tombstones} tombstones) in {} data blocks{}; the \
         footer says {}",
        handles.len(),
        if unread_blocks > 0 {
            format!(" ({unread_blocks} failing, not counted)")
        } else {
            String::new()
        },
        footer.entry_count
    );
    // With a block unread the counts cannot agree; that block is already a problem.
    if unread_blocks == 0 && total != footer.entry_count {
        problems.push(format!(
            "{total} entries read, the footer says {}",
            footer.entry_count
        ));
    }
    let none = "none".to_string();
    outln!(
        out,
        "smallest key  {}",
        smallest
            .as_deref()
            .map_or_else(|| none.clone(), |k| fmt_key(k, LSM_KEY_SHOWN_MAX))
    );
    outln!(
        out,
        "largest key   {}",
        handles
            .last()
            .map_or(none, |(k, _)| fmt_key(k, LSM_KEY_SHOWN_MAX))
    );

    let level = described.as_ref().map_or(0, |m| m.level);
    let opened = SsTable::open(
        TableFile::Memory(Arc::clone(&bytes)),
        Path::new(&name),
        id.unwrap_or(TableId(0)),
        level,
        logical,
        None,
    );
    match (opened, &described) {
        (Ok(table), Some(m)) => {
            let diffs = meta_differences(&table.meta(), m);
            if diffs.is_empty() {
                outln!(
                    out,
                    "opened as the tree opens it (SsTable::open): ok, and it agrees with the \
                     manifest"
                );
            } else {
                outln!(
                    out,
                    "opened as the tree opens it (SsTable::open): ok, but it DISAGREES with the \
                     manifest: {} (table vs manifest)",
                    diffs.join(", ")
                );
                problems.push(format!("differs from the manifest: {}", diffs.join(", ")));
            }
        }
        (Ok(_), None) => outln!(out, "opened as the tree opens it (SsTable::open): ok"),
        (Err(e), _) => {
            outln!(
                out,
                "opened as the tree opens it (SsTable::open): FAILS: {e}"
            );
            problems.push(format!("SsTable::open: {e}"));
        }
    }

    outln!(out);
    if problems.count == 0 {
        outln!(out, "problems: none");
    } else {
        outln!(out, "problems: {}", problems.count);
        for p in &problems.listed {
            outln!(out, "  {p}");
        }
        if problems.count > problems.listed.len() {
            outln!(out, "  ... {} more", problems.count - problems.listed.len());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use storelab_lsm::SeqNo;

    /// LSNs parse in the printed form, as hex and as decimal; garbage is an error.
    #[test]
    fn lsn_parses_in_every_form() {
        assert_eq!(parse_lsn("0/00001A2B").unwrap(), Lsn(0x1a2b));
        assert_eq!(parse_lsn("1/00000000").unwrap(), Lsn(1 << 32));
        assert_eq!(parse_lsn("0x10").unwrap(), Lsn(16));
        assert_eq!(parse_lsn("4096").unwrap(), Lsn(4096));
        assert_eq!(
            parse_lsn(&Lsn(0x1234_5678_9abc).to_string()).unwrap(),
            Lsn(0x1234_5678_9abc)
        );
        assert!(parse_lsn("zz").is_err());
        assert!(parse_lsn("1/2/3").is_err());
    }

    /// Bytes show as hex and printable text, cut short past the limit with their length.
    #[test]
    fn bytes_show_as_hex_and_text() {
        assert_eq!(fmt_bytes(b"ab\x00", 8), "616200 \"ab.\"");
        assert_eq!(fmt_bytes(b"abcdef", 2), "6162.. \"ab\".. (6 bytes)");
        assert_eq!(fmt_bytes(b"\"\\", 8), "225c \"..\"");
        assert_eq!(fmt_bytes(b"", 8), "\"\" (empty)");
    }

    /// LSM keys show printable bytes as text and others as `\xNN`, cut short past the limit.
    #[test]
    fn lsm_keys_show_text_and_escapes() {
        assert_eq!(fmt_key(b"\x00\x00\x00!ab", 16), "\"\\x00\\x00\\x00!ab\"");
        assert_eq!(fmt_key(b"a\"b\\", 16), "\"a\\\"b\\\\\"");
        assert_eq!(fmt_key(b"abcdef", 2), "\"ab\"..(6 bytes)");
    }

    fn meta(id: u64, level: u8, seq: u64, smallest: &[u8], largest: &[u8]) -> TableMeta {
        TableMeta {
            id: TableId(id),
            level,
            size: 4096,
            entry_count: 1,
            seq_min: SeqNo(seq),
            seq_max: SeqNo(seq),
            smallest: smallest.to_vec(),
            largest: largest.to_vec(),
        }
    }

    /// Replaying a manifest's edits gives the live tables in the tree's order (L0 newest
    /// first, deeper levels by key); deleting a table that is not live is refused.
    #[test]
    fn manifest_edits_replay_in_tree_order() {
        let snapshot = VersionEdit {
            snapshot: true,
            added: vec![meta(1, 0, 1, b"a", b"z"), meta(2, 0, 2, b"b", b"c")],
            ..VersionEdit::default()
        };
        let compaction = VersionEdit {
            deleted: vec![(0, TableId(1))],
            added: vec![meta(4, 1, 1, b"m", b"z"), meta(3, 1, 1, b"a", b"l")],
            ..VersionEdit::default()
        };
        let levels = replay_edits(&[snapshot.clone(), compaction.clone()]).unwrap();
        let ids = |l: &[TableMeta]| l.iter().map(|m| m.id.0).collect::<Vec<_>>();
        assert_eq!(ids(&levels[0]), [2]);
        assert_eq!(ids(&levels[1]), [3, 4]);
        let wrong_level = VersionEdit {
            deleted: vec![(1, TableId(2))],
            ..VersionEdit::default()
        };
        let err = replay_edits(&[snapshot, compaction, wrong_level]).unwrap_err();
        assert!(err.contains("edit 2 deletes 000002.sst from L1"), "{err}");
    }

    /// A level whose tables overlap is shown as broken, not assumed sorted.
    #[test]
    fn overlapping_levels_are_shown_broken() {
        let ok = [meta(1, 1, 1, b"a", b"c"), meta(2, 1, 1, b"d", b"f")];
        assert!(!level_order_note(1, &ok).contains("BROKEN"));
        let bad = [meta(1, 1, 1, b"a", b"d"), meta(2, 1, 1, b"d", b"f")];
        assert!(level_order_note(1, &bad).contains("BROKEN"));
        let l0 = [meta(2, 0, 5, b"a", b"z"), meta(1, 0, 5, b"a", b"z")];
        assert!(level_order_note(0, &l0).contains("BROKEN"));
    }

    /// Identical lines of a hex dump fold into one `*`.
    #[test]
    fn hex_dump_folds_repeats() {
        let mut out = String::new();
        hex_dump(&mut out, &[0u8; 64], 0);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "  000000  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  |................|",
                "  *",
                "  000040"
            ]
        );
    }
}
