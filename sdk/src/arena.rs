//! The guest's global allocator: a bump arena for small allocations in
//! front of the system allocator (wasi-libc's dlmalloc).
//!
//! Kiln runs every call in a fresh instance that is dropped afterwards, so
//! the many small allocations of a call (schema fields and names, `Arc`s,
//! the lists the canonical ABI lifts) never need to be reused: handing them
//! out from a bump pointer and ignoring their frees removes dlmalloc's
//! bookkeeping, which `perf` put at a seventh of a 1-row call. Allocations
//! above [`SMALL`] bytes (column buffers) and everything after the arena
//! is used up go to the system allocator exactly as before, so a large or
//! long call uses at most [`ARENA`] bytes more memory than with dlmalloc
//! alone, and never fails for want of arena space.
//!
//! Arena memory starts zeroed (it is in the module's `.bss`) and is handed
//! out once, so `alloc_zeroed` there needs no `memset`.
//!
//! Once the `apply` export has built its output, `freeze_frees` turns
//! every later free into a no-op: the canonical ABI's post-return then
//! leaves the output's bytes exactly as they were returned, which is what
//! lets the host wrap them as Arrow buffers in place instead of copying
//! them out (`OUTPUTS_INTACT`, the custom section that promises it).
//!
//! It is compiled, as the global allocator, only on `wasm32` without
//! threads (the plugin target) with the `arena` feature (on by default):
//! `cfg(kiln_arena)`, which `build.rs` sets; and natively for its unit
//! tests.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// Bytes of the arena.
const ARENA: usize = 256 << 10;

/// Allocations up to this many bytes come from the arena while it has room.
const SMALL: usize = 4 << 10;

#[repr(C, align(16))]
struct Bytes([u8; ARENA]);

/// The allocator ([`ARENA`] bytes of bump space, then [`System`]).
struct Arena {
    mem: UnsafeCell<Bytes>,
    /// Offset of the first free byte.
    next: Cell<usize>,
    /// Set by [`Arena::freeze`]: frees are ignored from then on.
    frozen: Cell<bool>,
}

// SAFETY: only for wasm32 without the `atomics` target feature, where a
// module has exactly one thread, so the cells are never shared between
// threads.
#[cfg(kiln_arena)]
unsafe impl Sync for Arena {}

impl Arena {
    const fn new() -> Arena {
        Arena {
            mem: UnsafeCell::new(Bytes([0; ARENA])),
            next: Cell::new(0),
            frozen: Cell::new(false),
        }
    }

    /// Ignore every free from now on, so nothing allocated so far is
    /// written by the allocator again (dlmalloc keeps its free lists inside
    /// freed blocks). The instance is dropped after the call, so what is
    /// not freed costs nothing.
    fn freeze(&self) {
        self.frozen.set(true);
    }

    fn base(&self) -> usize {
        self.mem.get() as usize
    }

    fn owns(&self, p: *mut u8) -> bool {
        let p = p as usize;
        p >= self.base() && p < self.base() + ARENA
    }

    /// A fresh, zeroed block of the arena, or null if it has no room.
    ///
    /// Every allocation of a call runs this, so it is kept to a mask and
    /// two compares: `align` is a power of two, and rounding up with
    /// `next_multiple_of` compiled to an integer division per allocation.
    #[inline(always)]
    fn bump(&self, layout: Layout) -> *mut u8 {
        let (size, align) = (layout.size(), layout.align());
        if size > SMALL || align > SMALL {
            return std::ptr::null_mut();
        }
        let base = self.base();
        // No overflow: `next <= ARENA` and `align <= SMALL`, so `start`
        // stays within `ARENA + SMALL` of `base`, inside the module's
        // static data.
        let start = ((base + self.next.get() + align - 1) & !(align - 1)) - base;
        let end = start + size;
        if end <= ARENA {
            self.next.set(end);
            (base + start) as *mut u8
        } else {
            std::ptr::null_mut()
        }
    }
}

/// The system allocator's `alloc`, out of line: on `wasm32` it needs a
/// stack frame in linear memory (`posix_memalign`'s out-parameter), which
/// inlined would be set up and torn down on every arena allocation too.
///
/// # Safety
/// As [`GlobalAlloc::alloc`]: `layout` has a non-zero size.
#[cold]
#[inline(never)]
unsafe fn system_alloc(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's layout, as `GlobalAlloc::alloc` received it.
    unsafe { System.alloc(layout) }
}

/// As [`system_alloc`], zeroed.
///
/// # Safety
/// As [`GlobalAlloc::alloc_zeroed`]: `layout` has a non-zero size.
#[cold]
#[inline(never)]
unsafe fn system_alloc_zeroed(layout: Layout) -> *mut u8 {
    // SAFETY: the caller's layout, as `GlobalAlloc::alloc_zeroed` received it.
    unsafe { System.alloc_zeroed(layout) }
}

// SAFETY: arena blocks are disjoint (the bump pointer only moves forward),
// aligned as asked, inside the arena's own static storage and never handed
// out twice; everything else is the system allocator's, called with the
// same arguments.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.bump(layout);
        if p.is_null() {
            // SAFETY: forwarded with the caller's layout.
            unsafe { system_alloc(layout) }
        } else {
            p
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // Arena blocks are handed out once and the arena starts zeroed.
        let p = self.bump(layout);
        if p.is_null() {
            // SAFETY: forwarded with the caller's layout.
            unsafe { system_alloc_zeroed(layout) }
        } else {
            p
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if !self.owns(ptr) && !self.frozen.get() {
            // SAFETY: `ptr` came from the system allocator with `layout`.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(ptr) && !self.frozen.get() {
            // SAFETY: `ptr` came from the system allocator with `layout`.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Shrinking keeps the block (the bump pointer never moves back, so
        // arena bytes are handed out once and stay zeroed until then).
        if new_size <= layout.size() {
            return ptr;
        }
        // The last block grows in place while it stays small.
        let offset = (ptr as usize).wrapping_sub(self.base());
        if self.owns(ptr)
            && offset + layout.size() == self.next.get()
            && new_size <= SMALL
            && offset + new_size <= ARENA
        {
            self.next.set(offset + new_size);
            return ptr;
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is
        // a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as `alloc`.
        let q = unsafe { self.alloc(new_layout) };
        if !q.is_null() {
            // SAFETY: both blocks are valid for `layout.size()` bytes and
            // disjoint (`q` is new).
            unsafe { std::ptr::copy_nonoverlapping(ptr, q, layout.size()) };
        }
        q
    }
}

#[cfg(kiln_arena)]
#[global_allocator]
static GLOBAL: Arena = Arena::new();

/// The promise the host reads (a custom section of the plugin's core
/// module, version `1`): after `apply` returns, post-return writes nothing
/// into the output's buffers, so the host may use them in place. Emitted
/// exactly where `freeze_frees` does its work.
#[cfg(kiln_arena)]
#[used]
#[link_section = "kiln:outputs-intact"]
static OUTPUTS_INTACT: [u8; 1] = [1];

/// From now on, frees do nothing (see the module documentation). Called by
/// the `apply` export once its output is built.
#[cfg(kiln_arena)]
pub(crate) fn freeze_frees() {
    GLOBAL.freeze();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn small_blocks_are_disjoint_aligned_zeroed_and_from_the_arena() {
        let a = Box::new(Arena::new());
        let mut blocks = Vec::new();
        for (i, align) in [1, 8, 2, 16, 4, 8, 64, 4096, 1, 32].into_iter().enumerate() {
            let l = layout(3 + i * 5, align);
            // SAFETY: a valid, non-zero layout.
            let p = unsafe { a.alloc_zeroed(l) };
            assert!(a.owns(p) && (p as usize).is_multiple_of(align));
            // SAFETY: `p` is valid for `l.size()` bytes.
            let bytes = unsafe { std::slice::from_raw_parts_mut(p, l.size()) };
            assert!(bytes.iter().all(|b| *b == 0));
            bytes.fill(0xab);
            blocks.push((p as usize, l.size()));
        }
        blocks.sort();
        assert!(blocks.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    }

    #[test]
    fn large_blocks_and_an_exhausted_arena_go_to_the_system_allocator() {
        let a = Box::new(Arena::new());
        let big = layout(SMALL + 1, 8);
        // SAFETY: valid layouts; every block is freed with its own layout.
        unsafe {
            let p = a.alloc(big);
            assert!(!p.is_null() && !a.owns(p));
            a.dealloc(p, big);
            let small = layout(SMALL, 8);
            for _ in 0..ARENA / SMALL {
                assert!(a.owns(a.alloc(small)));
            }
            let q = a.alloc_zeroed(small);
            assert!(!q.is_null() && !a.owns(q));
            assert!(std::slice::from_raw_parts(q, SMALL).iter().all(|b| *b == 0));
            a.dealloc(q, small);
        }
    }

    #[test]
    fn after_freeze_frees_leave_every_byte_in_place() {
        let a = Box::new(Arena::new());
        // SAFETY: valid layouts; blocks are used within their sizes.
        unsafe {
            let big = layout(SMALL * 4, 16);
            let p = a.alloc(big);
            std::slice::from_raw_parts_mut(p, big.size()).fill(0x5a);
            let small = layout(64, 8);
            let s = a.alloc(small);
            s.write_bytes(0x33, 64);
            a.freeze();
            a.dealloc(p, big);
            a.dealloc(s, small);
            // A realloc copies and never frees the old block.
            let q = a.realloc(p, big, SMALL * 8);
            assert!(q != p && !q.is_null());
            // Had `p` been freed, this allocation could reuse its bytes.
            let r = a.alloc(big);
            assert!(r != p);
            assert!(std::slice::from_raw_parts(p, big.size())
                .iter()
                .all(|b| *b == 0x5a));
            assert!(std::slice::from_raw_parts(s, 64).iter().all(|b| *b == 0x33));
            assert!(std::slice::from_raw_parts(q, big.size())
                .iter()
                .all(|b| *b == 0x5a));
            // Leaked on purpose: after a freeze nothing is freed (as in a
            // plugin, whose instance is dropped whole).
        }
    }

    #[test]
    fn realloc_grows_the_last_block_in_place_and_copies_otherwise() {
        let a = Box::new(Arena::new());
        // SAFETY: valid layouts; blocks are used within their sizes.
        unsafe {
            let p = a.alloc(layout(8, 8));
            p.copy_from(b"abcdefgh".as_ptr(), 8);
            let p2 = a.realloc(p, layout(8, 8), 64);
            assert_eq!(p2, p, "the last block grows in place");
            let other = a.alloc(layout(8, 8));
            let p3 = a.realloc(p2, layout(64, 8), 128);
            assert!(p3 != p2 && p3 != other && a.owns(p3));
            assert_eq!(std::slice::from_raw_parts(p3, 8), b"abcdefgh");
            // Shrinking keeps the block and never hands its bytes out again:
            // the next block is still zeroed.
            assert_eq!(a.realloc(p3, layout(128, 8), 4), p3);
            let z = a.alloc_zeroed(layout(64, 1));
            assert!(z as usize >= p3 as usize + 128);
            assert!(std::slice::from_raw_parts(z, 64).iter().all(|b| *b == 0));
            // Growing past SMALL moves the block to the system allocator.
            let big = a.realloc(p3, layout(128, 8), SMALL * 2);
            assert!(!a.owns(big));
            assert_eq!(std::slice::from_raw_parts(big, 8), b"abcdefgh");
            a.dealloc(big, layout(SMALL * 2, 8));
        }
    }
}
