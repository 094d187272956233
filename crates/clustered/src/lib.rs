//! storelab's InnoDB-style clustered engine: the table *is* its primary-key B+tree. Whole rows
//! live in the leaves, in key order; a secondary index maps its key to the primary key, not
//! to a physical location. It implements the same [`Engine`](storelab_table::Engine) and
//! [`Table`](storelab_table::Table) traits as the heap engine, on the same pager, log and
//! B+tree, so a workload runs unchanged on both and the differences measured are the
//! designs'. Its indexes live either in B+trees (below) or, chosen when the database is
//! created, all in one LSM tree with MyRocks' key layout ("The LSM layout" below).
//!
//! ```text
//!   t1.primary.idx   B+tree: encode(pk)                    -> encoded row
//!   t1.<index>.idx   B+tree: encode(index key) ++ encode(pk) -> (empty)
//!   t1.row-id.idx    B+tree: "row_id_mark" -> highest deleted row id (tables without a pk)
//! ```
//!
//! The key layouts are in `docs/format/clustered.md`; the trees' pages in
//! `docs/format/btree.md`, the row bytes in `storelab_table::codec`.
//!
//! # A leaf of the primary tree
//!
//! ```text
//!   primary leaf (page 9), table users(id pk, city, name), index by_city(city)
//!   +------------------------------------------------------------------------+
//!   | node header: level 0, prev 8, next 12, fences [id 40, id 57)            |
//!   | slots: s0 s1 s2 s3 ->               free                               |
//!   |   <- s3: key 80 00 00 00 00 00 00 33 | row (51, "Oslo", "Ada")          |
//!   |      s2: key 80 00 00 00 00 00 00 30 | overflow ref (9000 bytes) ------+--> overflow
//!   |      s1: key 80 00 00 00 00 00 00 2c | row (44, "Bergen", "Bo")         |    pages
//!   |      s0: key 80 00 00 00 00 00 00 29 | row (41, "Oslo", "Cy")           |
//!   +------------------------------------------------------------------------+
//!     slots are in key order; cells anywhere below the free gap; a row over the
//!     inline limit leaves only a reference in the leaf (InnoDB's off-page columns)
//!
//!   secondary leaf of by_city, entries (city, id) -> nothing:
//!   | 42 65 72 67 65 6e 00 00 | 80 .. 2c |  | 4f 73 6c 6f 00 00 | 80 .. 29 |  ...
//!     \--- "Bergen", end ---/   \ id 44 /     \- "Oslo", end --/   \ id 41 /
//!   (the primary-key suffix makes entries unique and orders equal cities by id)
//! ```
//!
//! # The double lookup
//!
//! A secondary lookup descends the secondary tree to the first entry of the key, then, for
//! each entry, descends the primary tree with the primary key the entry ends with:
//!
//! ```text
//!   lookup by_city = "Oslo"
//!
//!   by_city tree             descent 1 (secondary_descents)
//!      [root]
//!        |
//!      [ ... "Oslo"|41  "Oslo"|51 ... ]   entries in (city, id) order
//!               |          |
//!               |          +----------------------------+
//!   primary tree  descent 2 (primary_descents)          descent 3
//!      [root] --> [leaf 9: 41 row]                 [root] --> [leaf 9: 51 row]
//! ```
//!
//! So a point lookup through a unique secondary costs two descents where the heap's index
//! entry (key, TID) costs one descent and one heap page: the price InnoDB pays for never
//! having to touch a secondary index when a row moves (a split moves rows between leaves;
//! their primary keys, and so the secondary entries, stay valid). A *covering* read, one
//! whose projection asks only for index and primary-key columns and that has no predicate,
//! decodes the row from the secondary entry and skips the primary descent (one descent).
//!
//! # Writes
//!
//! - **Insert**: the row goes into the primary leaf for its key, one entry into every
//!   secondary.
//! - **Update in place**: the row is replaced in its leaf (`BTree::upsert`: the cell is
//!   rewritten where it is if it fits, else the leaf splits); a secondary index is touched only
//!   if one of its columns changed, and then its old entry is deleted and the new one inserted
//!   (two entries written). An update of non-indexed columns writes no secondary entry at all,
//!   where the heap's non-HOT update writes one into every index: the Uber argument.
//! - **Delete**: the row and its entries are removed at once (no delete-marking, see below);
//!   a node that falls under the merge threshold merges with its right sibling.
//! - **Hidden row id**: a table without a primary key is keyed by a row id `1, 2, 3, ...`
//!   (InnoDB's 6-byte `DB_ROW_ID`). Ids are never reused: after a reopen the next id is one
//!   past the larger of the last row's id and the *row-id mark*, which is written (one small
//!   entry in `t{id}.row-id.idx`) only when the row with the highest id ever assigned is
//!   deleted, the one delete that would otherwise let a reopen hand its id out again.
//! - **Load**: `Table::load` into an empty table validates every row and checks every primary
//!   and unique key in memory, sorts, then builds each tree bottom-up (`BTree::bulk_load`,
//!   leaves filled to `leaf_fill_pct`, no splits); into a table with rows it inserts in
//!   atomic batches.
//!
//! # Scans
//!
//! - Primary-key range scan, forward: the leaves of the range are found from the level above
//!   them and read through the pool's read stream, so `prefetch_depth` leaves are in flight
//!   while one is decoded (`leaf_reader.rs`). With depth 0, and for reverse scans, the B+tree's
//!   cursor (one leaf at a time, by sibling link). A full scan is a range scan with no bounds:
//!   there is nothing else to scan, the leaves *are* the table.
//! - Secondary range scan, `Plain`: entries in index order, one primary descent each (or none
//!   when covering).
//! - Secondary range scan, `Bitmap`: the primary keys of the whole range are collected, sorted
//!   and fetched in key order in one batched pass through the leaf reader, each internal node
//!   and leaf read once with read-ahead (MySQL's Multi-Range Read). Rows come out in primary-key
//!   order, which the `Table` contract allows (compare such scans as sets).
//!
//! # Counters (`Table::stats().counters`)
//!
//! - `primary_descents`, `secondary_descents`: root-to-leaf searches issued, by reads and
//!   writes alike. A point read, an insert, a delete, an opened cursor count one each; a
//!   batched (bitmap) fetch counts one for its whole plan; an overflow value fetched by the
//!   leaf reader counts one.
//! - `gets`, `get_pages_touched`: point reads by primary key and the pool pins they took.
//! - `scans`, `scan_pages_touched`: scans (lookups included) and the pool pins they took.
//! - `covering_rows`: rows answered from secondary entries alone.
//! - `bitmap_scans`, `primary_leaves_streamed`, `internal_nodes_planned`,
//!   `overflow_fetches`: the leaf reader's work (leaves read through the read stream,
//!   internal nodes read while planning which leaves to read).
//! - `secondary_entries_inserted`, `secondary_entries_deleted`, `secondary_entries_written`
//!   (the sum): secondary entries written by every op, bulk loads included.
//! - `update_secondary_entries_written`: of those, the ones written by updates ("index
//!   entries written per update" is this over `updates`).
//! - `inserts`, `updates`, `updates_unchanged`, `deletes`, `row_id_marks_written`,
//!   `rows_bulk_loaded`: ops.
//! - `primary_height`, `primary_leaf_pages`, `primary_internal_pages`,
//!   `primary_overflow_pages`, `primary_free_pages`, `primary_leaf_fill_permille`,
//!   `primary_splits`, `primary_merges`, `secondary_leaf_pages`, `secondary_splits`,
//!   `secondary_merges`: from `BTree::stats` (a walk of every tree, so `stats()` costs a full
//!   scan; splits and merges count since open). `ClusteredTable::tree_stats` returns them
//!   typed, per tree.
//!
//! Pages touched are the pool's pins (hits and misses) during the call: exact when one thread
//! works, approximate when others pin pages meanwhile.
//!
//! # Invariants (checked by `check()`)
//!
//! 1. Every tree passes `BTree::check` (key order, fences, levels, sibling links, free list).
//! 2. Every primary entry's value decodes as a row of the schema, no larger than
//!    [`ROW_SIZE_MAX`], stored under the encoding of its own primary key (or, without one,
//!    under a row id in `1..next_row_id`).
//! 3. Every secondary index holds exactly one entry per row, `encode(index key of the row) ++
//!    primary key`, with an empty value, and nothing else: every entry has its row with that
//!    key, every row has its entries.
//! 4. A unique index holds each index key at most once.
//! 5. The row count kept in memory equals the primary tree's entries.
//!
//! # Crash safety
//!
//! A batch runs inside one atomic group of the log (`storelab_wal::Wal::atomic_group`), with
//! the B+tree's `*_no_commit` calls: the records of the primary and every secondary change are
//! replayed all or none, and no page the group changed reaches disk before its end (no-steal
//! for the group). Each op is validated (types, sizes, duplicate primary and unique keys)
//! before it changes a tree; if an op of a batch is refused, the ops before it are undone by
//! inverse ops inside the same group, so the group as a whole changes nothing. An I/O error in
//! the middle of an op drops the group without ending it, which poisons the log; reopening
//! recovers to the last complete batch. The group ends, the table lock is released, then the
//! commit syncs (commits of several tables can share a sync). Creating a table logs the
//! trees' first pages and commits before the catalog names it. A bulk load is not one
//! group: the catalog marks the table `loading` (a synced rewrite) before the trees are
//! written and clears the mark after a checkpoint made them durable; a table still marked
//! at open is emptied, so a load happens entirely or not at all. Recovery registers the
//! B+tree's redo functions ([`storelab_btree::register_redo`]) after attaching every tree.
//!
//! # Concurrency
//!
//! One writer per table at a time: `apply` holds the table's lock exclusively for the batch
//! (the atomic group serializes writers across tables anyway); reads share it, so a scan
//! sees no change while it runs and the leaf reader's plan stays valid. The visitor is called
//! under the shared lock: it may read the same table, not write it.
//!
//! # Simplified versus InnoDB, and why that is acceptable here
//!
//! - **No change buffer.** InnoDB buffers changes to non-unique secondary leaves that are not
//!   in memory and merges them later, saving random reads on write-heavy workloads with large
//!   indexes. It is an I/O-scheduling optimisation on top of the structure studied here; the
//!   entries written per update, the thing the experiments count, are the same with or
//!   without it (it defers them, it does not remove them).
//! - **No adaptive hash index.** InnoDB builds a hash index over hot leaf pages to skip
//!   descents. Leaving it out keeps the descent counts honest: the experiments compare the
//!   cost of the two designs' access paths, not of a cache in front of one of them.
//! - **No undo log, no MVCC, no delete-marking, no purge.** InnoDB updates in place and keeps
//!   the old version in the undo log for readers and rollback; deleted records and changed
//!   secondary entries are delete-marked and removed later by purge. Without transactions
//!   spanning batches (the table layer has none yet) no reader can need an old version, so
//!   old versions and entries are removed at once and a failed batch is undone by inverse
//!   operations. MVCC (undo log + purge versus the heap's versions + vacuum) is a later
//!   milestone, and the heart of the heap-versus-clustered debate.
//! - **No row size tied to the page.** InnoDB keeps a record under half a page, moving long
//!   columns off-page; here the whole row moves to overflow pages when it is over the
//!   B+tree's inline limit (an eighth of a node), and rows are limited to [`ROW_SIZE_MAX`]
//!   (MySQL's 65,535-byte row limit).
//! - **Row ids** are 8-byte integers rather than 6-byte ones, and the high-water mark is kept
//!   exactly (InnoDB writes it every 256 ids and skips ahead after a restart).
//! - **One writer per table**, where InnoDB latches leaves and lets writers in different
//!   subtrees proceed in parallel.
//!
//! # The LSM layout (MyRocks)
//!
//! The same tables, the same `Engine`/`Table` traits and the same key and row encodings,
//! stored the way MyRocks stores InnoDB's clustered design in RocksDB: [`ClusteredLsmEngine`]
//! (catalog engine `clustered-lsm`). The layout is chosen when the database is created and
//! recorded in the catalog; [`open_clustered`] opens a directory with the layout it was
//! created with ([`Layout`]).
//!
//! ```text
//!   DIR/catalog.json  engine "clustered-lsm"        DIR/wal/   the shared log
//!   DIR/lsm/          ONE LSM tree for every table (MyRocks' default column family)
//!
//!   key = index id (4 bytes, big-endian) ++ ...                  value
//!   +-------------+-------------------------------------------+  +------------------+
//!   | 00 00 00 21 | encode(pk)                                |  | encode_row(row)  |  primary
//!   | 00 00 00 22 | encode(by_city cols) | encode(pk)         |  | (empty)          |  index 0
//!   | 00 00 00 23 | encode(by_name cols) | encode(pk)         |  | (empty)          |  index 1
//!   | 00 00 00 3f |  (alone)                                  |  | i64 row-id mark  |  no-pk only
//!   +-------------+-------------------------------------------+  +------------------+
//!   table t owns ids t*32 .. t*32+32: primary t*32+1, secondary i t*32+2+i, mark t*32+31
//!   (the B+tree layout's log relation numbers). Table 1 above: ids 0x20..0x40.
//! ```
//!
//! One tree per database rather than per table, as MyRocks does by default: the memtable,
//! the log, the flushes and the compactions are shared, so small tables cost nothing extra
//! and the write amplification measured is the database's; a per-table tree would give each
//! table its own memtable and level shape (MyRocks' column family per index is that option).
//! The price is that per-table figures of the tree (`lsm_*` counters) are the database's and
//! a table's size on disk is estimated from the tables overlapping its id range.
//!
//! **Write path.** `apply` holds the table's lock, and for each op *reads* what it must, then
//! records its writes in an in-memory batch (a map from key to new value or tombstone; later
//! ops of the batch see earlier ones through it, as MyRocks' `WriteBatchWithIndex`):
//!
//! - insert: a get of the primary key (uniqueness; skipped for hidden row ids) and a seek per
//!   unique secondary index; then a put of the row and one of each secondary entry;
//! - update: a get of the old row (to report whether it existed and, as MyRocks, to know the
//!   old secondary keys); a seek per unique index whose key changed; then a *blind put* of the
//!   new row (no read-modify-write of a page: the old version stays in the tree until
//!   compaction drops it) and, for each index whose key changed, a delete of the old entry and
//!   a put of the new one (none for an index whose key did not change);
//! - delete: a get of the old row, then tombstones for the row and each of its entries.
//!
//! Nothing reaches the tree until every op has passed, so a refused op leaves the table
//! unchanged with no undo; then the whole batch is one `Lsm::write_batch_uncommitted` (one log
//! record, or one atomic group of records if large) and one commit: atomic by construction.
//!
//! **Read path.** `get` is one `Lsm::get` (memtables, then L0 newest first, then one table per
//! level, bloom filter first). Primary scans are the tree's range iterators over
//! `id ++ bounds` (reverse with `range_rev`); a secondary scan is a range over the index's ids
//! plus one primary get per entry (none when covering); a bitmap scan collects the primary
//! keys, sorts them and gets the rows in key order. Scans hold the table's read lock.
//!
//! **Counters** (`Table::stats().counters`): `inserts`, `updates`, `updates_unchanged`,
//! `deletes`, `gets`, `scans`; `primary_gets` (point reads of rows: gets, old rows, unique
//! checks, secondary lookups), `secondary_seeks` (secondary range iterators opened: scans and
//! unique checks), `unique_check_reads` (reads made only to enforce uniqueness),
//! `old_row_reads` (reads of the old row by updates and deletes); `secondary_entries_inserted`,
//! `_deleted`, `_written`, `update_secondary_entries_written`, `covering_rows`,
//! `bitmap_scans`, `row_id_marks_written`, `rows_bulk_loaded`; `lsm_puts`, `lsm_deletes`
//! (keys written to the tree). Then the tree's own figures, database-wide: per level
//! `lsm_l{n}_tables`, `_bytes`, `_flush_bytes_written`, `_compaction_bytes_written`,
//! `_compaction_bytes_read`, `_compactions`; `lsm_bloom_checks`, `lsm_bloom_negatives`,
//! `lsm_bloom_false_positives`, `lsm_get_table_candidates`, `lsm_get_tables_read`,
//! `lsm_write_amplification_permille` (WAL + tables + manifest over user bytes, in
//! thousandths), `lsm_write_amplification_tables_permille`, flushes, compactions, stalls,
//! memtable, pinned and cache bytes.
//!
//! **Memory budget.** `StorageConfig::pool_bytes` is what a B+tree engine's buffer pool gets.
//! Here the pager's pool (which holds no table data: the log's checkpoint flushes it) gets
//! its minimum of 16 frames and the tree's block cache the rest
//! ([`lsm_engine::block_cache_bytes`]). Memtables and the index and filter blocks of open
//! tables are outside the budget, as RocksDB's write buffers are, and reported.
//!
//! **Invariants** (checked by `check()`): 1. the tree's own (`Lsm::check`: every block,
//! levels ordered and non-overlapping); 2. every row decodes, fits and sits under its own
//! key (a row id in `1..next_row_id`); 3. every secondary entry has its row with that key and
//! every row has its entries, with empty values; 4. a unique index holds each key once;
//! 5. the row count kept in memory equals the rows; 6. no key lies outside the id spaces of
//! the catalog's tables, and within one only the ids above are used.
//!
//! **Crash safety.** A batch is one LSM write batch, replayed all or none from the log; the
//! tree's memtables are rebuilt from the log at open (`Wal::open`, `Lsm::open`, then
//! `Wal::recover`), and its retention hook keeps the log they need through any checkpoint. A
//! bulk load into an empty table is marked `loading` in the catalog until the log is durable
//! past its last write; a table found marked at open is erased. `tests/lsm_crash.rs` cuts the
//! power at every sync point and at random I/O points in each torn-page mode.
//!
//! **Simplified versus MyRocks.** No transactions, snapshots or row locks (the table lock
//! serializes a table's writers; MyRocks locks rows and checks uniqueness against a
//! snapshot); plain deletes for secondary entries where MyRocks uses `SingleDelete`; no
//! prefix bloom filters (MyRocks' filters on the index-id-and-key prefix make secondary seeks
//! cheap; here only point gets use the filters); no reverse column families; index ids
//! derived from table ids instead of allocated in a data dictionary; no TTL, no
//! `rocksdb_bulk_load` ingestion of sorted files (a bulk load writes sorted batches through
//! the memtable); the row count is counted by a scan at open instead of kept in table
//! statistics.
//!
//! # Further reading
//!
//! Matsunobu et al., "MyRocks: LSM-Tree Database Storage Engine Serving Facebook's Social
//! Graph" (VLDB 2020) and the MyRocks wiki ("Data Dictionary", "Bulk Loading"). The MySQL
//! manual, "Clustered and Secondary Indexes", "The Physical Structure of an InnoDB
//! Index", "Configuring the Merge Threshold for Index Pages", "Multi-Range Read
//! Optimization", "Change Buffer", "Adaptive Hash Index"; Jeremy Cole's "B+Tree index
//! structures in InnoDB" (2013); Uber Engineering, "Why Uber Engineering Switched from
//! Postgres to MySQL" (2016).

pub mod engine;
pub mod layout;
mod leaf_reader;
pub mod lsm_engine;
pub mod lsm_table;
pub mod table;

pub use engine::{ClusteredEngine, ENGINE_NAME};
pub use layout::{Layout, open_clustered};
pub use lsm_engine::{ClusteredLsmEngine, LSM_ENGINE_NAME, LsmOptions};
pub use lsm_table::{ClusteredLsmTable, IndexId};
pub use storelab_btree::{BTreeConfig, SplitPolicy};
pub use storelab_lsm::{CompactionStyle, LsmConfig};
pub use storelab_table::{Storage, StorageConfig};
pub use table::{ClusteredOptions, ClusteredTable, ROW_SIZE_MAX};
