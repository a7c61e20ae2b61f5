//! 4 KiB-aligned buffers for O_DIRECT I/O.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;

use super::format::BLOCK_SIZE;

/// A zero-initialised heap buffer aligned to [`BLOCK_SIZE`], whose length
/// is a multiple of it. Its address is stable while the value lives, so it
/// can be handed to the kernel for an in-flight write.
pub(crate) struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the buffer exclusively owns its allocation; moving it between
// threads moves that ownership.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared references only allow reads.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// A zeroed buffer of `blocks` blocks (at least one).
    pub(crate) fn new(blocks: usize) -> AlignedBuf {
        let len = blocks.max(1) * BLOCK_SIZE;
        let layout = Layout::from_size_align(len, BLOCK_SIZE).expect("valid layout");
        // SAFETY: the layout has non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        AlignedBuf { ptr, len }
    }

    /// Length in bytes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Number of blocks.
    pub(crate) fn blocks(&self) -> usize {
        self.len / BLOCK_SIZE
    }

    pub(crate) fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    #[cfg(test)]
    pub(crate) fn as_slice(&self) -> &[u8] {
        // SAFETY: ptr is valid for len initialised bytes for our lifetime.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, and &mut self guarantees exclusivity.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// Zeroes the whole buffer (before reuse).
    pub(crate) fn clear(&mut self) {
        self.as_mut_slice().fill(0);
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.len, BLOCK_SIZE).expect("valid layout");
        // SAFETY: allocated in `new` with this exact layout.
        unsafe { dealloc(self.ptr.as_ptr(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        let mut b = AlignedBuf::new(3);
        assert_eq!(b.as_ptr() as usize % BLOCK_SIZE, 0);
        assert_eq!(b.len(), 3 * BLOCK_SIZE);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        b.as_mut_slice()[5] = 1;
        b.clear();
        assert_eq!(b.as_slice()[5], 0);
        assert_eq!(b.blocks(), 3);
    }
}
