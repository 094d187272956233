//! storelab's PostgreSQL-style heap engine: rows in an unordered heap of slotted pages, named
//! by TIDs; every index, the primary key's included, a B+tree of key -> TID.
//!
//! ```text
//!   t1.heap            heap pages (heap_page.rs, docs/format/heap.md)
//!   +-----------------------------------------------------------------+
//!   | page header | heap header | lp1 lp2 lp3 lp4 ->        free      |
//!   |                        <- tuple 4 | tuple 3 | tuple 2 | tuple 1  |
//!   +-----------------------------------------------------------------+
//!       TID (page 7, slot 2) = line pointer 2 of page 7
//!
//!   t1.primary.idx     B+tree: encode(pk)        ++ TID -> ()
//!   t1.<index>.idx     B+tree: encode(index key) ++ TID -> ()
//! ```
//!
//! Index keys end with the TID, so a key may appear several times (PostgreSQL's unique
//! indexes hold one entry per row version too); a lookup scans the key's entries and keeps
//! those whose tuple is live and still has that key.
//!
//! # Updates: out of place, HOT when possible
//!
//! An update never overwrites a tuple: it writes a new version and marks the old one
//! `UPDATED` with a forward pointer (`ctid`). If no indexed column changed and the new
//! version fits on the same page, the update is **HOT** (heap-only tuple): the new version is
//! flagged `HEAP_ONLY`, no index is touched, and index entries keep pointing at the chain's
//! root, from which readers follow the chain to the live version:
//!
//! ```text
//!   index entry (k, (7,1)) --> lp1 --> [v1 UPDATED|HOT_UPDATED, ctid (7,3)]
//!                                        lp3 --> [v2 HEAP_ONLY UPDATED|HOT_UPDATED, ctid (7,4)]
//!                                        lp4 --> [v3 HEAP_ONLY, live]
//!   after pruning:              lp1 = REDIRECT -> lp4,  lp3 = UNUSED,  v1 and v2 gone
//! ```
//!
//! Otherwise the update is non-HOT: the new version gets its own TID (on the same page if it
//! fits, else wherever the free space map says) and an entry in **every** index, including the
//! ones whose columns did not change: the write amplification Uber's 2016 post complained of.
//! `HeapOptions::hot = false` turns HOT off (every update is non-HOT), so that experiments can
//! measure what HOT saves; PostgreSQL has no such switch.
//! A delete just marks the tuple `DELETED`; index entries stay until VACUUM.
//!
//! # Pruning and VACUUM
//!
//! - **Pruning** (page-local, [`heap_page::HeapPageMut::prune`]) runs when a write needs
//!   room on a page: dead members of HOT chains are removed, a chain's root becomes a
//!   REDIRECT to its live member (or DEAD if none is left), dead non-HOT tuples become DEAD
//!   line pointers, and the page is compacted. DEAD line pointers keep their slot because
//!   index entries may still point there.
//! - **VACUUM** ([`HeapTable::vacuum`]) prunes every page, collects the DEAD line pointers,
//!   deletes the entries pointing at them from every index with one full scan per index
//!   (PostgreSQL's `ambulkdelete`), then marks the line pointers UNUSED (free for reuse) and
//!   records each page's free space in the FSM ([`fsm`]).
//! - **Autovacuum**: after a write, if dead tuples exceed `threshold + scale_factor * rows`
//!   ([`HeapOptions`], PostgreSQL's defaults 50 and 0.2), VACUUM runs, inline after that
//!   write or (`autovacuum_background`) from a thread that looks every naptime, as
//!   PostgreSQL's autovacuum launcher does.
//!
//! # Scans
//!
//! - Sequential: every page in order through the pool's read stream (read-ahead depth
//!   configurable, as PostgreSQL 17's streaming reads), live tuples in physical order.
//! - Index scan: per index entry, a heap fetch: random heap access for an uncorrelated index.
//! - Bitmap-style: collect all matching TIDs, sort by page, read each page once through the
//!   read stream with prefetch (PostgreSQL's bitmap heap scan with `effective_io_concurrency`).
//!
//! # Invariants (checked by [`HeapTable`]'s `check`)
//!
//! 1. Every heap page passes [`heap_page::validate`] and its HOT chains are well formed.
//! 2. Every index entry's TID names a used line pointer (never UNUSED: VACUUM removes the
//!    entries before it frees the pointer, so a TID is never reused under an entry).
//! 3. Every live row is reached by exactly one entry of every index, whose key is the row's.
//!
//! # Crash safety
//!
//! A write (an insert with its index entries, an update, a whole batch) runs inside one atomic
//! group of the log (`storelab_wal::Wal::atomic_group`): its heap records and B+tree records
//! are replayed all or none, and none of its pages reaches disk before the group ends. Heap
//! records ([`redo`]) are physiological: "insert this tuple at slot s", "mark slot s updated to
//! t"; pruning and VACUUM log page images. VACUUM's steps are separately safe: an index entry
//! of a DEAD line pointer may be removed at any time, and the pointer is freed only after.
//! A batch that fails validation half-way is undone by inverse operations inside the same
//! group, so a failed batch leaves nothing behind even in the log's effect.
//!
//! # Simplified versus PostgreSQL, and why
//!
//! - No MVCC: a tuple is live unless marked updated or deleted, and one writer per table runs
//!   at a time under a table lock that readers share. PostgreSQL's `xmin`/`xmax` and
//!   snapshots are a later milestone; without them, pruning may remove any dead version at
//!   once (no transaction can still see it), which PostgreSQL may do only past the horizon.
//! - Pruning happens when a writer needs room on a page, and in VACUUM; PostgreSQL also prunes
//!   opportunistically when a reader finds a page nearly full.
//! - VACUUM holds the table lock for its whole run, and the FSM is in memory, rebuilt from the
//!   pages when a table is opened (PostgreSQL keeps it in a fork, updated by VACUUM).
//! - No visibility map, no index-only scans, no TOAST: a row must fit in a page
//!   ([`heap_page::row_size_max`]).
//! - Tables without a primary key get a hidden row id stored in front of each tuple, so the
//!   primary-key index exists for every table (PostgreSQL's heap needs no key at all). Ids
//!   are never reused: the next id is one past the largest in the primary index, VACUUM
//!   records the ids it removes in the catalog first, and a clean shutdown records the exact
//!   next id.
//!
//! # Further reading
//!
//! PostgreSQL's `src/backend/access/heap/README.HOT`, `pruneheap.c`, `vacuumlazy.c` and
//! `bufpage.c`; the "Database Page Layout" chapter of its manual; Uber Engineering, "Why Uber
//! Engineering Switched from Postgres to MySQL" (2016).

pub mod engine;
pub mod fsm;
pub mod heap_page;
pub mod redo;
pub mod table;
pub mod tid;

pub use engine::HeapEngine;
pub use storelab_table::{Storage, StorageConfig};
pub use table::{HeapOptions, HeapTable, VacuumReport};
pub use tid::{SlotId, Tid};
