//! Every peer against the reference engine through the shared test kit: the same op
//! sequences, checker and contents comparison as the storelab engines' `tests/model.rs`, with
//! the model tests' storage settings (commit mode `off`: each peer's sync is off, a clean
//! close still keeps everything, so the sequences' reopens check recovery of a clean
//! shutdown).

use std::path::Path;

use storelab_peers::PeerKind;
use storelab_table::{Engine, Result};
use storelab_testkit::model;
use storelab_testkit::ops::op_sequence;
use storelab_testkit::proptest::prelude::*;

fn open(kind: PeerKind) -> impl Fn(&Path) -> Result<Box<dyn Engine>> + 'static {
    move |dir: &Path| {
        Ok(Box::new(storelab_peers::open(kind, dir, &model::storage_config())?) as Box<dyn Engine>)
    }
}

proptest! {
    #![proptest_config(model::proptest_config())]

    /// SQLite, WITHOUT ROWID: the reference engine's answers, `check()` after every op.
    #[test]
    fn sqlite_matches_reference(ops in op_sequence()) {
        model::check_model(&ops, open(PeerKind::Sqlite))?;
    }

    /// SQLite, rowid table with indexes: the reference engine's answers.
    #[test]
    fn sqlite_rowid_matches_reference(ops in op_sequence()) {
        model::check_model(&ops, open(PeerKind::SqliteRowid))?;
    }

    /// redb: the reference engine's answers.
    #[test]
    fn redb_matches_reference(ops in op_sequence()) {
        model::check_model(&ops, open(PeerKind::Redb))?;
    }

    /// fjall: the reference engine's answers (batches checked through the overlay).
    #[test]
    fn fjall_matches_reference(ops in op_sequence()) {
        model::check_model(&ops, open(PeerKind::Fjall))?;
    }
}
