//! The engines the CLI can run, by name, and the storage flags every workload command shares.

use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use storelab_pager::PageSize;
use storelab_pager::buffer_pool::PolicyKind;
use storelab_pager::device::DeviceProfile;
use storelab_pager::io::{BackendConfig, BackendKind};
use storelab_table::{Engine, ReferenceEngine, StorageConfig};
use storelab_wal::{CommitMode, TornPageMode};

use crate::byte_size::ByteSize;

/// An engine the CLI can open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EngineKind {
    /// PostgreSQL-style heap (crates/heap).
    Heap,
    /// InnoDB-style clustered B+tree (crates/clustered).
    Clustered,
    /// The clustered engine with its indexes in one LSM tree, MyRocks' layout
    /// (crates/clustered on crates/lsm).
    Lsm,
    /// The in-memory `BTreeMap` reference engine (crates/table): the expected answers, no I/O.
    Reference,
    /// A peer engine by name (crates/peers, feature `peers`; see `crate::peers`).
    Peer(&'static str),
}

impl EngineKind {
    /// The storage engines `compare` runs by default.
    pub const DEFAULT: &[EngineKind] = &[EngineKind::Heap, EngineKind::Clustered, EngineKind::Lsm];
    /// Every engine, in table order.
    pub const ALL: &[EngineKind] = &[
        EngineKind::Heap,
        EngineKind::Clustered,
        EngineKind::Lsm,
        EngineKind::Reference,
    ];

    /// The engine's name.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Heap => "heap",
            EngineKind::Clustered => "clustered",
            EngineKind::Lsm => "lsm",
            EngineKind::Reference => "reference",
            EngineKind::Peer(name) => name,
        }
    }

    /// The engine name a database of this kind records in its catalog (`None`: the
    /// reference engine keeps no directory).
    pub fn catalog_name(self) -> Option<&'static str> {
        match self {
            EngineKind::Heap => Some(storelab_heap::engine::ENGINE_NAME),
            EngineKind::Clustered => Some(storelab_clustered::ENGINE_NAME),
            EngineKind::Lsm => Some(storelab_clustered::LSM_ENGINE_NAME),
            EngineKind::Reference => None,
            EngineKind::Peer(name) => Some(name),
        }
    }

    fn accepted() -> String {
        EngineKind::ALL
            .iter()
            .map(|e| e.name())
            .chain(crate::peers::peer_names())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        EngineKind::ALL
            .iter()
            .copied()
            .find(|e| e.name() == s)
            .or_else(|| crate::peers::peer_kind(s))
            .ok_or_else(|| {
                format!(
                    "unknown engine {s:?} (accepted: {})",
                    EngineKind::accepted()
                )
            })
    }
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Storage flags shared by `compare`, `load` and `run`.
#[derive(Clone, Debug, clap::Args)]
pub struct StorageArgs {
    /// Buffer pool size (the memory budget of every engine)
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub memory: ByteSize,

    /// Page size: 4KiB, 8KiB or 16KiB
    #[arg(long, value_name = "SIZE", default_value = "8KiB")]
    pub page_size: ByteSize,

    /// I/O method: sync, worker, io_uring or auto (io_uring if the kernel allows)
    #[arg(long, value_name = "METHOD", default_value = "auto")]
    pub io_method: BackendKind,

    /// Open page files with O_DIRECT (no OS page cache)
    #[arg(long)]
    pub direct: bool,

    /// Simulate a device in front of the disk: nvme or cloud (default: the real disk)
    #[arg(long, value_name = "PROFILE")]
    pub device: Option<String>,

    /// Commit durability: sync (fdatasync per commit, the default), group, or off
    #[arg(long, value_name = "MODE", default_value = "sync")]
    pub commit_mode: CommitMode,

    /// Torn-page protection: fpi (full-page images), doublewrite or none
    #[arg(long, value_name = "MODE", default_value = "fpi")]
    pub torn_page: TornPageMode,

    /// Buffer pool eviction policy: clock (PostgreSQL's clock sweep) or lru (exact LRU)
    #[arg(long, value_name = "POLICY", default_value = "clock")]
    pub pool_policy: PolicyKind,
}

impl StorageArgs {
    /// The storage configuration these flags describe.
    pub fn to_config(&self) -> Result<StorageConfig> {
        let page_size = PageSize::from_bytes(self.page_size.bytes() as usize)?;
        let device = match self.device.as_deref() {
            None | Some("none") => None,
            Some(name) => Some(
                DeviceProfile::from_str(name)
                    .with_context(|| format!("unknown device {name:?} (nvme, cloud or none)"))?,
            ),
        };
        let memory = self.memory.bytes() as usize;
        if memory < 1 << 20 {
            bail!("--memory {} is too small (at least 1MiB)", self.memory);
        }
        Ok(StorageConfig {
            page_size,
            pool_bytes: memory,
            pool_policy: self.pool_policy,
            backend: BackendConfig {
                kind: self.io_method,
                ..BackendConfig::default()
            },
            direct: self.direct,
            device,
            commit_mode: self.commit_mode,
            torn_page: self.torn_page,
            ..StorageConfig::default()
        })
    }

    /// The flags as configuration entries for results.
    pub fn describe(&self) -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("memory_bytes", self.memory.bytes().into()),
            ("page_size_bytes", self.page_size.bytes().into()),
            ("io_method", self.io_method.to_string().into()),
            ("direct", self.direct.into()),
            (
                "device",
                self.device.clone().unwrap_or_else(|| "none".into()).into(),
            ),
            ("commit_mode", self.commit_mode.to_string().into()),
            ("torn_page", self.torn_page.to_string().into()),
            (
                "pool_policy",
                match self.pool_policy {
                    PolicyKind::ClockSweep => "clock",
                    PolicyKind::Lru => "lru",
                }
                .into(),
            ),
        ]
    }
}

/// Opens engine `kind` in `dir` (created if missing).
pub fn open_engine(
    kind: EngineKind,
    dir: &Path,
    config: &StorageConfig,
) -> Result<Box<dyn Engine>> {
    Ok(match kind {
        EngineKind::Heap => Box::new(
            storelab_heap::HeapEngine::open(dir, config, storelab_heap::HeapOptions::default())
                .with_context(|| format!("open heap database in {}", dir.display()))?,
        ),
        EngineKind::Clustered => Box::new(
            storelab_clustered::ClusteredEngine::open(
                dir,
                config,
                storelab_clustered::ClusteredOptions::default(),
            )
            .with_context(|| format!("open clustered database in {}", dir.display()))?,
        ),
        EngineKind::Lsm => Box::new(
            storelab_clustered::ClusteredLsmEngine::open(
                dir,
                config,
                storelab_clustered::LsmOptions::default(),
            )
            .with_context(|| format!("open clustered-lsm database in {}", dir.display()))?,
        ),
        EngineKind::Reference => Box::new(ReferenceEngine::new(1 << 20)),
        EngineKind::Peer(name) => crate::peers::open_peer(name, dir, config)
            .with_context(|| format!("this build has no engine {name}"))??,
    })
}

/// The engine a database directory holds, from its catalog.
pub fn engine_of(dir: &Path) -> Result<EngineKind> {
    let path = dir.join(storelab_table::catalog::CATALOG_FILE_NAME);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "{} is not a storelab database (no readable catalog.json)",
            dir.display()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let name = json
        .get("engine")
        .and_then(|e| e.as_str())
        .context("the catalog names no engine")?;
    EngineKind::ALL
        .iter()
        .copied()
        .find(|e| e.catalog_name() == Some(name))
        .or_else(|| crate::peers::peer_kind(name))
        .with_context(|| format!("unknown engine {name:?} in {}", path.display()))
}
