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

use arrow_buffer::Buffer;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmList};

/// Buffers of at least this many bytes are advised into transparent huge
/// pages before the copy (numpy's threshold for the same advice).
pub const HUGE_PAGE_THRESHOLD: usize = 4 << 20;

/// A `list<u8>` lifted out of a guest's memory into a host allocation of
/// its own (see the module documentation): an output buffer of
/// [`crate::Batch<HostBytes>`], which [`crate::import_batch`] wraps as an
/// Arrow [`Buffer`] without another copy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostBytes(Vec<u8>);

impl HostBytes {
    /// A copy of `src` in memory of its own (huge pages where large).
    pub fn copy_of(src: &[u8]) -> HostBytes {
        let mut v = Vec::with_capacity(src.len());
        if src.len() >= HUGE_PAGE_THRESHOLD {
            advise_huge_pages(&v);
        }
        v.extend_from_slice(src);
        HostBytes(v)
    }
}

impl AsRef<[u8]> for HostBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<HostBytes> for Buffer {
    fn from(b: HostBytes) -> Buffer {
        Buffer::from_vec(b.0)
    }
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
// bytes read, by the same pointer and length.
unsafe impl Lift for HostBytes {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<u8> as Lift>::linear_lift_from_flat(cx, ty, src)?;
        let ptr = usize::try_from(src[0].get_u32())?;
        Ok(HostBytes::copy_of(&cx.memory()[ptr..][..list.len()]))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let list = <WasmList<u8> as Lift>::linear_lift_from_memory(cx, ty, bytes)?;
        let ptr = bytes
            .first_chunk::<4>()
            .map(|p| u32::from_le_bytes(*p))
            .ok_or_else(|| wasmtime::format_err!("list pointer pair is short"))?;
        Ok(HostBytes::copy_of(
            &cx.memory()[usize::try_from(ptr)?..][..list.len()],
        ))
    }
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
