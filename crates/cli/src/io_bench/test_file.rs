//! `TestFile`: the file io-bench reads, filled with real data and removed afterwards.
//!
//! The file is preallocated (so a full disk is reported before any writing), then written with
//! large `O_DIRECT` writes and `fdatasync`ed: reads of a sparse or never-written range would be
//! answered without touching the device and measure nothing. Each 4 KiB block starts with its
//! own offset, so no two blocks are equal and a deduplicating or compressing virtual disk
//! cannot shortcut the reads either.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use storelab_pager::AlignedBuf;
use storelab_pager::page::IO_ALIGNMENT;
use tempfile::TempDir;

use crate::byte_size::ByteSize;

/// Bytes per fill write: large enough that the fill runs at the device's sequential speed.
const FILL_CHUNK_SIZE: u64 = 4 << 20;

/// A test file, removed (with its temporary directory, if any) when dropped.
#[derive(Debug)]
pub struct TestFile {
    path: PathBuf,
    size: u64,
    /// Whether the name is still in the directory (see [`TestFile::unlink`]).
    linked: bool,
    /// The temporary directory holding the file, if we made one. Fields are dropped after
    /// `Drop::drop` has removed the file, so the directory is empty by then.
    _temp_dir: Option<TempDir>,
}

impl TestFile {
    /// Creates and fills a `size`-byte file in `dir`, or in a new temporary directory if `dir`
    /// is `None`. `on_progress(done, total)` is called after each chunk is written.
    pub fn create(
        dir: Option<&Path>,
        size: u64,
        seed: u64,
        on_progress: &mut dyn FnMut(u64, u64),
    ) -> Result<TestFile> {
        assert!(
            size > 0 && size.is_multiple_of(IO_ALIGNMENT as u64),
            "validated by the config"
        );
        let (dir, temp_dir) = match dir {
            Some(dir) => {
                check_dir(dir)?;
                (dir.to_path_buf(), None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("storelab-io-bench-")
                    .tempdir()
                    .context("cannot create a temporary directory (set TMPDIR or use --dir)")?;
                (temp.path().to_path_buf(), Some(temp))
            }
        };
        let path = dir.join(format!("storelab-io-bench-{}.dat", std::process::id()));
        let (file, direct) = create_new(&path)?;
        // From here on, dropping `test_file` removes the file, whatever fails next.
        let test_file = TestFile {
            path,
            size,
            linked: true,
            _temp_dir: temp_dir,
        };
        test_file.fill(&file, direct, seed, on_progress)?;
        Ok(test_file)
    }

    /// The file's path (which no longer names it after [`TestFile::unlink`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes the file's name now. Handles already open keep working and the space is freed
    /// when the last one closes, so even a run killed by a signal leaves no large file behind.
    pub fn unlink(&mut self) -> Result<()> {
        if self.linked {
            std::fs::remove_file(&self.path)
                .with_context(|| format!("cannot remove the test file {}", self.path.display()))?;
            self.linked = false;
        }
        Ok(())
    }

    fn fill(
        &self,
        file: &File,
        direct: bool,
        seed: u64,
        on_progress: &mut dyn FnMut(u64, u64),
    ) -> Result<()> {
        match rustix::fs::fallocate(file, rustix::fs::FallocateFlags::empty(), 0, self.size) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOSPC) => return Err(self.disk_full()),
            // Filesystems without fallocate still report a full disk on write.
            Err(rustix::io::Errno::OPNOTSUPP) => {}
            Err(e) => {
                return Err(std::io::Error::from(e))
                    .with_context(|| format!("cannot preallocate {}", self.path.display()));
            }
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut buf = AlignedBuf::zeroed(FILL_CHUNK_SIZE.min(self.size) as usize);
        rng.fill_bytes(&mut buf);
        let mut offset = 0u64;
        while offset < self.size {
            let len = FILL_CHUNK_SIZE.min(self.size - offset) as usize;
            for (i, block) in buf[..len].chunks_exact_mut(IO_ALIGNMENT).enumerate() {
                let block_offset = offset + (i * IO_ALIGNMENT) as u64;
                block[..8].copy_from_slice(&block_offset.to_le_bytes());
            }
            match file.write_all_at(&buf[..len], offset) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::StorageFull => return Err(self.disk_full()),
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!(
                            "cannot write the test file {} at {offset}",
                            self.path.display()
                        )
                    });
                }
            }
            offset += len as u64;
            on_progress(offset, self.size);
        }
        match file.sync_data() {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::StorageFull => return Err(self.disk_full()),
            Err(e) => {
                return Err(e).with_context(|| format!("cannot sync {}", self.path.display()));
            }
        }
        if !direct {
            // Written through the page cache: drop it so nothing starts warm.
            drop_page_cache(file, &self.path)?;
        }
        Ok(())
    }

    fn disk_full(&self) -> anyhow::Error {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        anyhow::anyhow!(
            "not enough free space in {} for a {} test file (use a smaller --size or another --dir)",
            dir.display(),
            ByteSize(self.size)
        )
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        if self.linked {
            // Best effort: a failure here cannot be reported, and the run's result stands.
            let _ = std::fs::remove_file(&self.path);
        }
        // `_temp_dir` (if any) is dropped after this body and removes the now empty directory.
    }
}

/// Tells the kernel to drop the cached pages of `file` (`POSIX_FADV_DONTNEED`). Only clean
/// pages are dropped, which is all of them here: the file was synced and is only read.
pub fn drop_page_cache(file: &File, path: &Path) -> Result<()> {
    rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::DontNeed)
        .map_err(std::io::Error::from)
        .with_context(|| format!("posix_fadvise(DONTNEED) on {}", path.display()))
}

fn check_dir(dir: &Path) -> Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => bail!("--dir {} is not a directory", dir.display()),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("--dir {} does not exist", dir.display())
        }
        Err(e) => Err(e).with_context(|| format!("--dir {}", dir.display())),
    }
}

/// Creates `path` (which must not exist) for writing, with `O_DIRECT` if the filesystem takes
/// it; returns the file and whether it is direct.
fn create_new(path: &Path) -> Result<(File, bool)> {
    let open = |direct: bool| {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        if direct {
            options.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        options.open(path)
    };
    let context = || format!("cannot create the test file {}", path.display());
    match open(true) {
        Ok(file) => Ok((file, true)),
        // EINVAL: this filesystem refuses O_DIRECT. Fill through the page cache instead; the
        // direct measurements will then report the problem when they open the file.
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            let _ = std::fs::remove_file(path);
            open(false).map(|file| (file, false)).with_context(context)
        }
        Err(e) => Err(e).with_context(context),
    }
}
