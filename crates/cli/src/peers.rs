//! The peer engines (SQLite WITHOUT ROWID and rowid, redb, fjall) by name, for
//! `storelab compare --engines heap,sqlite,...`. They are compiled in only with the cargo
//! feature `peers` (crates/peers has the adapters and their design); without it the names
//! are unknown and [`open_peer`] answers `None`.
//!
//! A peer's I/O happens inside its library, out of the ledger's sight: its `EngineStats` has
//! no ledger, and [`proc_io`] gives `/proc/self/io` counters instead, labelled
//! [`PROC_IO_LABEL`]. [`describe`] lists the durability settings and memory knobs a peer ran
//! with, for a result's configuration.

use std::path::Path;

use anyhow::Result;
use storelab_table::{Engine, StorageConfig};

use crate::engines::EngineKind;

/// The label of figures read from `/proc/self/io`.
pub const PROC_IO_LABEL: &str = "proc-io";

/// The peer engines' names (empty without the `peers` feature).
pub fn peer_names() -> Vec<&'static str> {
    #[cfg(feature = "peers")]
    {
        storelab_peers::PeerKind::ALL
            .iter()
            .map(|k| k.name())
            .collect()
    }
    #[cfg(not(feature = "peers"))]
    {
        Vec::new()
    }
}

/// The engine kind of the peer called `name`, if this build has it.
pub fn peer_kind(name: &str) -> Option<EngineKind> {
    peer_names()
        .into_iter()
        .find(|&n| n == name)
        .map(EngineKind::Peer)
}

/// Opens the peer called `name` in `dir` (created if missing); `None` if this build has no
/// such peer.
pub fn open_peer(
    name: &str,
    dir: &Path,
    config: &StorageConfig,
) -> Option<Result<Box<dyn Engine>>> {
    #[cfg(feature = "peers")]
    {
        use anyhow::Context;
        let kind = storelab_peers::PeerKind::from_name(name)?;
        Some(
            storelab_peers::open(kind, dir, config)
                .map(|e| Box::new(e) as Box<dyn Engine>)
                .with_context(|| format!("open {name} database in {}", dir.display())),
        )
    }
    #[cfg(not(feature = "peers"))]
    {
        let _ = (name, dir, config);
        None
    }
}

/// The durability settings and memory knobs of the peer called `name` under `config`, as
/// configuration entries for results (empty for a name that is not a peer).
pub fn describe(name: &str, config: &StorageConfig) -> Vec<(&'static str, serde_json::Value)> {
    #[cfg(feature = "peers")]
    {
        match storelab_peers::PeerKind::from_name(name) {
            Some(kind) => storelab_peers::peer_config(kind, config)
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::from(v)))
                .chain([("io_source", serde_json::Value::from(PROC_IO_LABEL))])
                .collect(),
            None => Vec::new(),
        }
    }
    #[cfg(not(feature = "peers"))]
    {
        let _ = (name, config);
        Vec::new()
    }
}

/// `/proc/self/io` counters now, as `(name, value)` pairs (`proc_io_read_bytes`,
/// `proc_io_write_bytes`, `proc_io_syscr`, `proc_io_syscw`, ...); diff two readings taken
/// around a phase for a peer's I/O. `None` where the file cannot be read or without the
/// `peers` feature.
pub fn proc_io() -> Option<Vec<(&'static str, u64)>> {
    #[cfg(feature = "peers")]
    {
        storelab_peers::proc_io().map(|io| io.entries().to_vec())
    }
    #[cfg(not(feature = "peers"))]
    {
        None
    }
}
