//! The peers by name.

use std::fmt;

/// A peer engine the harness can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerKind {
    /// SQLite, WITHOUT ROWID table: rows clustered in the primary key's B-tree, secondary
    /// index entries hold the primary key (InnoDB's layout).
    Sqlite,
    /// SQLite, rowid table: rows in a B-tree keyed by an internal row id, the primary key and
    /// every secondary index point at that id (the heap-like layout, PostgreSQL's TIDs).
    SqliteRowid,
    /// redb: a copy-on-write B+tree file; one table for the rows, one per secondary index.
    Redb,
    /// fjall: an LSM tree; one keyspace for the rows, one per secondary index (MyRocks'
    /// column families).
    Fjall,
}

impl PeerKind {
    /// Every peer, in table order.
    pub const ALL: &[PeerKind] = &[
        PeerKind::Sqlite,
        PeerKind::SqliteRowid,
        PeerKind::Redb,
        PeerKind::Fjall,
    ];

    /// The peer's name: on the command line, in results and in its `catalog.json`.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Sqlite => "sqlite",
            PeerKind::SqliteRowid => "sqlite-rowid",
            PeerKind::Redb => "redb",
            PeerKind::Fjall => "fjall",
        }
    }

    /// The peer called `name`, if any.
    pub fn from_name(name: &str) -> Option<PeerKind> {
        PeerKind::ALL.iter().copied().find(|k| k.name() == name)
    }
}

impl fmt::Display for PeerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
