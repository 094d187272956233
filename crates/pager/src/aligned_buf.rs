//! `AlignedBuf`: an owned, zero-initialised, 4 KiB-aligned byte buffer.
//!
//! Direct I/O (`O_DIRECT`) needs the memory address, the file offset and the length to be
//! multiples of the device's logical block size; 4096 covers every device we run on. Buffers
//! are owned and moved into an I/O request and back out of its completion, so an asynchronous
//! backend (io_uring, the worker pool) can never see a buffer that its submitter has freed or
//! is still using.
#![allow(unsafe_code)] // Allocation with a chosen alignment; see docs/unsafe.md.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

use crate::page::IO_ALIGNMENT;

/// An owned byte buffer whose address is aligned to [`IO_ALIGNMENT`].
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: `AlignedBuf` owns its allocation exclusively (like `Box<[u8]>`); no other handle to
// the memory exists, so moving it to another thread or sharing `&AlignedBuf` is sound.
unsafe impl Send for AlignedBuf {}
// SAFETY: as above; `&AlignedBuf` only gives `&[u8]`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zeroed bytes. `len` must be non-zero and a multiple of [`IO_ALIGNMENT`].
    pub fn zeroed(len: usize) -> AlignedBuf {
        assert!(len > 0, "empty I/O buffer");
        assert!(
            len.is_multiple_of(IO_ALIGNMENT),
            "buffer length {len} is not a multiple of 4096"
        );
        let layout = Layout::from_size_align(len, IO_ALIGNMENT).expect("valid layout");
        // SAFETY: `layout` has a non-zero size (asserted above).
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len }
    }

    /// The buffer's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: buffers are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The buffer's bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` points to `len` initialised bytes owned by `self` for `self`'s lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The buffer's bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// A raw pointer for handing the buffer to the kernel (io_uring). The buffer must stay
    /// owned by the in-flight request until the kernel has completed it.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len, IO_ALIGNMENT).expect("valid layout");
        // SAFETY: `ptr` was allocated in `zeroed` with exactly this layout and is freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), layout) }
    }
}

impl std::ops::Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::ops::DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.as_mut_slice()
    }
}

impl std::fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Buffers are aligned, zeroed and writable.
    #[test]
    fn buffer_is_aligned_and_zeroed() {
        let mut buf = AlignedBuf::zeroed(8192);
        assert_eq!(buf.as_ptr() as usize % IO_ALIGNMENT, 0);
        assert!(buf.iter().all(|&b| b == 0));
        buf[8191] = 1;
        assert_eq!(buf[8191], 1);
    }
}
