//! [`HostBytes`]: how the host lifts a plugin's output buffers.
//!
//! wasmtime lifts a `list<u8>` into a `Vec<u8>` element by element, into
//! memory the global allocator hands out. For a large output that memory
//! is fresh: an 80 MB column (10M float64 rows) is 20,000 page faults, each
//! zeroing a 4 KiB page, which `perf` put at a third of a 10M-row call.
//! [`HostBytes`] lifts the same list with one `memcpy` and, for buffers of
//! [`HUGE_PAGE_THRESHOLD`] bytes or more, first asks Linux to back the
//! allocation with transparent huge pages (`madvise(MADV_HUGEPAGE)`, as
//! numpy does for its arrays), so the copy faults once per 2 MiB. Where
//! huge pages are off (`/sys/kernel/mm/transparent_hugepage/enabled` set to
//! `never`) or on other systems, the advice is a no-op and only the
//! `memcpy` remains. The bytes are the same either way.
//!
//! Inside [`lending`], large buffers are not copied at all: they stay where
//! the plugin returned them, in its instance's linear memory, and the Arrow
//! buffer keeps an owner alive (the caller's, which then holds the
//! instance's store, so no guest code runs in that memory again).
use std::cell::RefCell;
use std::ptr::NonNull;
use std::sync::Arc;

use arrow_buffer::alloc::Allocation;
use arrow_buffer::Buffer;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmList};

/// Buffers of at least this many bytes are advised into transparent huge
/// pages before the copy (numpy's threshold for the same advice).
pub const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// A `list<u8>` lifted out of a guest's memory: copied into a host
/// allocation of its own (see the module documentation) or, inside
/// [`lending`], left in place. An output buffer of
/// [`crate::Batch<HostBytes>`], which [`crate::import_batch`] wraps as an
/// Arrow [`Buffer`] without another copy.
#[derive(Clone)]
pub struct HostBytes(Repr);

#[derive(Clone)]
enum Repr {
    Owned(Vec<u8>),
    /// `len` bytes at `ptr` in a guest's memory, which `owner` keeps mapped
    /// and unchanged for as long as it lives.
    Lent {
        ptr: NonNull<u8>,
        len: usize,
        owner: Arc<dyn Allocation>,
    },
}

// SAFETY: a lent buffer is read-only memory that `owner` (itself `Send +
// Sync`) keeps alive and unchanged; sharing or moving the pointer across
// threads is as sound as sharing an Arrow `Buffer` over it.
unsafe impl Send for Repr {}
// SAFETY: as `Send`; nothing writes through the pointer.
unsafe impl Sync for Repr {}

impl HostBytes {
    /// A copy of `src` in memory of its own (huge pages where large).
    pub fn copy_of(src: &[u8]) -> HostBytes {
        let mut v = Vec::with_capacity(src.len());
        if src.len() >= HUGE_PAGE_THRESHOLD {
            advise_huge_pages(&v);
        }
        v.extend_from_slice(src);
        HostBytes(Repr::Owned(v))
    }

    /// Whether these bytes were left in the guest's memory (see [`lending`]).
    pub fn is_lent(&self) -> bool {
        matches!(self.0, Repr::Lent { .. })
    }
}

impl std::fmt::Debug for HostBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostBytes")
            .field("len", &self.as_ref().len())
            .field("lent", &self.is_lent())
            .finish()
    }
}

impl PartialEq for HostBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_ref() == other.as_ref()
    }
}

impl Eq for HostBytes {}

impl Default for HostBytes {
    fn default() -> Self {
        HostBytes(Repr::Owned(Vec::new()))
    }
}

impl AsRef<[u8]> for HostBytes {
    fn as_ref(&self) -> &[u8] {
        match &self.0 {
            Repr::Owned(v) => v,
            // SAFETY: `owner` keeps `len` bytes at `ptr` mapped and
            // unchanged while it lives, and we hold a clone of it.
            Repr::Lent { ptr, len, .. } => unsafe {
                std::slice::from_raw_parts(ptr.as_ptr(), *len)
            },
        }
    }
}

impl From<HostBytes> for Buffer {
    fn from(b: HostBytes) -> Buffer {
        match b.0 {
            Repr::Owned(v) => Buffer::from_vec(v),
            // SAFETY: as `as_ref`; the buffer holds `owner` from now on.
            Repr::Lent { ptr, len, owner } => unsafe {
                Buffer::from_custom_allocation(ptr, len, owner)
            },
        }
    }
}

/// Where lifts on this thread may leave large buffers in place.
struct Lender {
    owner: Arc<dyn Allocation>,
    min_bytes: usize,
}

thread_local! {
    static LENDER: RefCell<Option<Lender>> = const { RefCell::new(None) };
}

/// Run `f` (a call into a guest) with lifts of buffers of at least
/// `min_bytes` left in the guest's memory instead of copied, each holding a
/// clone of `owner`; returns `f`'s result. Whether any buffer was lent is
/// `owner`'s count of clones once this returns: each lent buffer holds one.
///
/// # Safety
/// Until the last clone of `owner` is dropped, the memory of the guest
/// that `f` calls must stay mapped at the same address and nothing may
/// write to it: in practice `owner` must come to own the instance's store,
/// and no guest code may run in that store after `f` returns (the
/// canonical ABI's post-return runs inside `f`, before any lent byte is
/// read). If `f`'s guest writes into what it returned during its
/// post-return, the lent bytes are whatever it wrote: wrong output, never
/// unsoundness, as long as they are validated after `f` returns.
pub unsafe fn lending<R>(owner: Arc<dyn Allocation>, min_bytes: usize, f: impl FnOnce() -> R) -> R {
    let previous = LENDER.with(|l| l.replace(Some(Lender { owner, min_bytes })));
    // The previous lender comes back when this returns, or if `f` unwinds.
    struct Restore(Option<Lender>);
    impl Drop for Restore {
        fn drop(&mut self) {
            LENDER.with(|l| *l.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The bytes of a lifted list: lent if a [`lending`] call on this thread
/// allows it for this size, copied otherwise.
fn lift_bytes(memory: &[u8], ptr: usize, len: usize) -> HostBytes {
    let src = &memory[ptr..][..len];
    let lent = LENDER.with(|l| {
        let l = l.borrow();
        let l = l.as_ref().filter(|l| len > 0 && len >= l.min_bytes)?;
        Some(HostBytes(Repr::Lent {
            ptr: NonNull::from(src).cast(),
            len,
            owner: l.owner.clone(),
        }))
    });
    lent.unwrap_or_else(|| HostBytes::copy_of(src))
}

/// Advise the whole pages inside `v`'s allocation (not yet written) into
/// transparent huge pages. Best effort: an error leaves ordinary pages.
#[cfg(target_os = "linux")]
fn advise_huge_pages(v: &Vec<u8>) {
    const PAGE: usize = 4096;
    let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
    let end = (v.as_ptr() as usize + v.capacity()) & !(PAGE - 1);
    if end > start {
        // SAFETY: [start, end) lies inside the allocation `v` owns; the
        // advice changes how the kernel backs those pages, never their
        // contents or who owns them.
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_: &Vec<u8>) {}

// SAFETY: `HostBytes` has exactly the canonical ABI of `list<u8>`: it
// forwards the type, its flat form and its type check to wasmtime's own
// `[u8]`.
unsafe impl ComponentType for HostBytes {
    type Lower = <[u8] as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[u8] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifting goes through wasmtime's `WasmList<u8>` first, which checks
// the pointer and length against the guest's memory (and charges the copy to
// the host-call fuel) exactly as lifting a `Vec<u8>` does; only then are the
// bytes read (or, inside `lending`, pointed at), by the same pointer and
// length.
unsafe impl Lift for HostBytes {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<u8> as Lift>::linear_lift_from_flat(cx, ty, src)?;
        let ptr = usize::try_from(src[0].get_u32())?;
        Ok(lift_bytes(cx.memory(), ptr, list.len()))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<u8> as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        let (ptr, _) = pointer_pair(bytes)?;
        Ok(lift_bytes(cx.memory(), ptr, list.len()))
    }
}

/// The pointer and length of a list or string stored in memory (two
/// little-endian `u32`s), for lifts that keep them after wasmtime's own
/// lift has checked them.
pub(crate) fn pointer_pair(bytes: &[u8]) -> wasmtime::Result<(usize, usize)> {
    let word = |i: usize| {
        bytes
            .get(i..i + 4)
            .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
            .ok_or_else(|| wasmtime::format_err!("pointer pair is short"))
    };
    Ok((usize::try_from(word(0)?)?, usize::try_from(word(4)?)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_exactly_small_and_large() {
        for n in [
            0,
            1,
            4095,
            HUGE_PAGE_THRESHOLD - 1,
            HUGE_PAGE_THRESHOLD + 12_345,
        ] {
            let src: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            let b = HostBytes::copy_of(&src);
            assert_eq!(b.as_ref(), &src[..], "{n} bytes");
            assert_eq!(Buffer::from(b).as_slice(), &src[..]);
        }
    }
}
