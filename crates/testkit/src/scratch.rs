//! Scratch directories for engines under test.

use std::path::Path;

/// A fresh temporary directory, in memory (`/dev/shm`) where the system has it: model and
/// crash tests sync after every commit, and on a real disk those fsyncs would be most of the
/// run time while proving nothing (the fault device models durability). Removed on drop.
pub fn scratch_dir(prefix: &str) -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir()
        && let Ok(dir) = tempfile::Builder::new().prefix(prefix).tempdir_in(shm)
    {
        return dir;
    }
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("a temporary directory")
}
