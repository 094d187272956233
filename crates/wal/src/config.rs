//! The WAL's settings: commit mode, torn-page protection, segments, checkpoints.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{Error, Result};

/// When a commit is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CommitMode {
    /// After an fdatasync covers the commit record (the default; what a database promises).
    /// A committer that finds the log already durable past its record returns at once, so
    /// concurrent committers queued behind one sync share it, as in PostgreSQL.
    #[default]
    Sync,
    /// Group commit: one committer leads a sync (after an optional gathering window,
    /// PostgreSQL's `commit_delay`); committers arriving while a sync is in flight wait for the
    /// next one, which one of them leads.
    Group,
    /// Acknowledged before any sync (PostgreSQL's `synchronous_commit = off`): a background
    /// writer syncs every `writer_delay`. A crash loses the last moments of commits, never
    /// corrupts: recovery still ends at a record boundary.
    Off,
}

impl fmt::Display for CommitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CommitMode::Sync => "sync",
            CommitMode::Group => "group",
            CommitMode::Off => "off",
        })
    }
}

impl FromStr for CommitMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "sync" => Ok(CommitMode::Sync),
            "group" => Ok(CommitMode::Group),
            "off" => Ok(CommitMode::Off),
            other => Err(Error::InvalidArgument(format!(
                "unknown commit mode {other:?} (sync, group or off)"
            ))),
        }
    }
}

/// How pages torn by a crash in the middle of their write are repaired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TornPageMode {
    /// PostgreSQL's `full_page_writes`: the first change to a page after each checkpoint logs
    /// the whole page, and recovery restores it before redoing later changes.
    #[default]
    FullPageImages,
    /// InnoDB's doublewrite buffer: every batch of page writes goes to a doublewrite area and
    /// is synced there first; recovery copies an intact image over a torn page.
    Doublewrite,
    /// No protection: a torn page is detected by its checksum and reported, not repaired.
    None,
}

impl TornPageMode {
    /// The mode's code in the control file.
    pub fn code(self) -> u8 {
        match self {
            TornPageMode::FullPageImages => 1,
            TornPageMode::Doublewrite => 2,
            TornPageMode::None => 3,
        }
    }
}

impl fmt::Display for TornPageMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TornPageMode::FullPageImages => "fpi",
            TornPageMode::Doublewrite => "doublewrite",
            TornPageMode::None => "none",
        })
    }
}

impl FromStr for TornPageMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fpi" | "full-page-images" => Ok(TornPageMode::FullPageImages),
            "doublewrite" | "dblwr" => Ok(TornPageMode::Doublewrite),
            "none" => Ok(TornPageMode::None),
            other => Err(Error::InvalidArgument(format!(
                "unknown torn-page mode {other:?} (fpi, doublewrite or none)"
            ))),
        }
    }
}

/// Settings of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalConfig {
    /// The directory holding the segments, the control file and the doublewrite area.
    pub dir: PathBuf,
    /// Bytes per segment file (a multiple of 4096; 16 MiB as PostgreSQL).
    pub segment_size: usize,
    /// When commits are acknowledged.
    pub commit_mode: CommitMode,
    /// Group mode: how long a leader waits for more committers before syncing.
    pub group_window: Duration,
    /// Off mode: how often the background writer syncs (PostgreSQL's `wal_writer_delay`).
    pub writer_delay: Duration,
    /// Torn-page protection.
    pub torn_page: TornPageMode,
    /// Log volume after which [`crate::Wal::checkpoint_if_due`] checkpoints (0: never).
    pub checkpoint_wal_bytes: u64,
    /// Old segments kept for reuse after a checkpoint; the rest are deleted.
    pub recycle_segments_max: usize,
}

impl WalConfig {
    /// The defaults, logging into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> WalConfig {
        WalConfig {
            dir: dir.into(),
            segment_size: 16 << 20,
            commit_mode: CommitMode::Sync,
            group_window: Duration::ZERO,
            writer_delay: Duration::from_millis(10),
            torn_page: TornPageMode::FullPageImages,
            checkpoint_wal_bytes: 64 << 20,
            recycle_segments_max: 4,
        }
    }
}
