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
//!   storelab inspect db DIR           an engine directory: catalog, tables, files, sizes
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
//! # Stable output
//!
//! Output is plain ASCII text with no timings or absolute paths (files are named by their
//! last path component), so golden tests (`crates/cli/tests/inspect.rs`, files under
//! `testscripts/inspect/`) can pin it. Keys and values are shown as hex followed by their
//! printable characters in quotes (`0000002a "...*"`), other bytes as `.`.
//!
//! # Not here yet
//!
//! - An LSM tree's levels and tables: the manifest decoder (`storelab_lsm::manifest::
//!   read_manifest`) is public and read-only, but this crate does not depend on
//!   `storelab-lsm`; `inspect db` lists the LSM directory's files and says so.
//! - Rows are shown as bytes: decoding them needs the table's schema and row codec.

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

/// The LSM's log record type (`storelab_lsm::RECORD_LSM_BATCH`; this crate does not depend on
/// the lsm crate, so the number is restated from docs/format/wal.md).
const LSM_BATCH_RECORD: RecordType = RecordType(32);

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
    /// An engine directory: catalog, tables and their files with sizes
    Db(DbArgs),
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
        t if t == LSM_BATCH_RECORD => "lsm-batch",
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

/// `storelab inspect db`: the catalog, each table's schema and files, and every file in the
/// directory with its size.
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
        outln!(
            out,
            "LSM tree ({}/): levels and tables with key ranges: not supported yet (needs the \
             lsm crate's manifest reader in the CLI); its files are listed below",
            storelab_clustered::lsm_engine::LSM_DIR_NAME
        );
        outln!(out);
    }
    outln!(out, "files");
    list_files(&mut out, dir, dir)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
