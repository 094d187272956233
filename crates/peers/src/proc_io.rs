//! I/O counters from `/proc/self/io`, for engines whose I/O the ledger cannot see.
//!
//! storelab's own engines count every read, write and sync in the pager's ledger. A peer
//! does its I/O inside its library, so the only honest count is the kernel's, per process:
//!
//! | field | meaning |
//! |---|---|
//! | `read_bytes` | bytes this process caused to be fetched from the storage layer (page-cache misses) |
//! | `write_bytes` | bytes this process caused to be sent to the storage layer (dirtied page-cache bytes) |
//! | `syscr` / `syscw` | read-like / write-like system calls (`read`, `pread`, `write`, `pwrite`, ...) |
//! | `rchar` / `wchar` | bytes passed to those calls, cached or not |
//!
//! Figures from here are labelled [`PROC_IO_LABEL`] wherever they appear, because they are
//! not comparable one to one with the ledger: they count the whole process (the harness does
//! no file I/O while a phase runs, so a delta over a phase is the engine's), `write_bytes` is
//! counted when a page is dirtied rather than when it is written back, and memory-mapped I/O
//! shows up in `read_bytes` but not in `syscr`.

/// The label of figures measured from `/proc/self/io`.
pub const PROC_IO_LABEL: &str = "proc-io";

/// The counters of `/proc/self/io` at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcIo {
    /// Bytes passed to read-like system calls.
    pub rchar: u64,
    /// Bytes passed to write-like system calls.
    pub wchar: u64,
    /// Read-like system calls.
    pub syscr: u64,
    /// Write-like system calls.
    pub syscw: u64,
    /// Bytes fetched from the storage layer.
    pub read_bytes: u64,
    /// Bytes sent (or to be sent) to the storage layer.
    pub write_bytes: u64,
}

impl ProcIo {
    /// The counters now; `None` where `/proc/self/io` cannot be read (not Linux, or a kernel
    /// without task I/O accounting).
    pub fn now() -> Option<ProcIo> {
        let text = std::fs::read_to_string("/proc/self/io").ok()?;
        ProcIo::parse(&text)
    }

    /// Parses the text of `/proc/self/io`; `None` if a field is missing or not a number.
    pub fn parse(text: &str) -> Option<ProcIo> {
        let field = |name: &str| -> Option<u64> {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
        };
        Some(ProcIo {
            rchar: field("rchar")?,
            wchar: field("wchar")?,
            syscr: field("syscr")?,
            syscw: field("syscw")?,
            read_bytes: field("read_bytes")?,
            write_bytes: field("write_bytes")?,
        })
    }

    /// What happened between `earlier` and `self` (saturating, so a wrapped or reset
    /// counter gives 0 rather than a panic).
    pub fn delta(&self, earlier: &ProcIo) -> ProcIo {
        ProcIo {
            rchar: self.rchar.saturating_sub(earlier.rchar),
            wchar: self.wchar.saturating_sub(earlier.wchar),
            syscr: self.syscr.saturating_sub(earlier.syscr),
            syscw: self.syscw.saturating_sub(earlier.syscw),
            read_bytes: self.read_bytes.saturating_sub(earlier.read_bytes),
            write_bytes: self.write_bytes.saturating_sub(earlier.write_bytes),
        }
    }

    /// The counters as `(name, value)` pairs, each name prefixed `proc_io_`, for results
    /// and `TableStats::counters`.
    pub fn entries(&self) -> [(&'static str, u64); 6] {
        [
            ("proc_io_read_bytes", self.read_bytes),
            ("proc_io_write_bytes", self.write_bytes),
            ("proc_io_syscr", self.syscr),
            ("proc_io_syscw", self.syscw),
            ("proc_io_rchar", self.rchar),
            ("proc_io_wchar", self.wchar),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's format parses field by field; a missing field is `None`.
    #[test]
    fn proc_io_parses_the_kernel_format() {
        let text = "rchar: 10\nwchar: 20\nsyscr: 3\nsyscw: 4\nread_bytes: 4096\n\
                    write_bytes: 8192\ncancelled_write_bytes: 0\n";
        let io = ProcIo::parse(text).expect("all fields present");
        assert_eq!(io.read_bytes, 4096);
        assert_eq!(io.write_bytes, 8192);
        assert_eq!(io.syscw, 4);
        assert!(ProcIo::parse("rchar: 1\n").is_none());
    }

    /// A delta subtracts field by field and never underflows.
    #[test]
    fn proc_io_delta_saturates() {
        let a = ProcIo {
            write_bytes: 100,
            syscw: 5,
            ..ProcIo::default()
        };
        let b = ProcIo {
            write_bytes: 40,
            syscw: 7,
            ..ProcIo::default()
        };
        let d = a.delta(&b);
        assert_eq!(d.write_bytes, 60);
        assert_eq!(d.syscw, 0);
    }

    /// On Linux the counters can be read, and writing a file moves `wchar`.
    #[test]
    fn proc_io_sees_this_process_write() {
        let Some(before) = ProcIo::now() else { return };
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("f"), vec![7u8; 10_000]).expect("write");
        let after = ProcIo::now().expect("readable once");
        assert!(after.delta(&before).wchar >= 10_000);
    }
}
