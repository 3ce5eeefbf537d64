//! Output arrays the host receives without a copy.
//!
//! A plugin's output goes back to the host as the contract's `list<u8>`
//! buffers. A buffer that is a plain `Vec<u8>` allocation, held by nothing
//! else once the transform returns, is handed to the canonical ABI as it
//! is; a buffer Arrow allocated itself (64-byte aligned, as
//! `PrimitiveArray::unary`, `collect` and the builders do) has to be copied
//! once first. The helpers here build primitive arrays whose values live in
//! a `Vec<u8>`, so a kernel written with them pays no export copy. They give
//! the same arrays as Arrow's own kernels; natively (in unit tests) they
//! behave the same way.
//!
//! ```
//! use kiln_sdk::arrow_array::{types::Float64Type, Float64Array};
//! let x = Float64Array::from(vec![Some(1.0), None, Some(3.0)]);
//! let y = kiln_sdk::output::unary::<_, Float64Type, _>(&x, |v| v * 2.0);
//! assert_eq!(y, Float64Array::from(vec![Some(2.0), None, Some(6.0)]));
//! ```

use std::mem::{align_of, size_of, MaybeUninit};

use arrow_array::{Array, ArrowPrimitiveType, PrimitiveArray};
use arrow_buffer::{ArrowNativeType, Buffer, NullBuffer, ScalarBuffer};

/// `op` applied to every value of `array` (null slots included, as Arrow's
/// `unary` does); the nulls are `array`'s.
pub fn unary<I, O, F>(array: &PrimitiveArray<I>, op: F) -> PrimitiveArray<O>
where
    I: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
    F: Fn(I::Native) -> O::Native,
{
    let values = array.values().iter().map(|&v| op(v));
    PrimitiveArray::new(scalars(array.len(), values), array.nulls().cloned())
}

/// A primitive array of exactly `len` values from `values`, with `nulls`.
///
/// # Panics
/// If `values` yields fewer or more than `len` items, or `nulls` has
/// another length (a bug in the caller).
pub fn collect<O, I>(len: usize, values: I, nulls: Option<NullBuffer>) -> PrimitiveArray<O>
where
    O: ArrowPrimitiveType,
    I: IntoIterator<Item = O::Native>,
{
    let mut values = values.into_iter();
    let buffer = scalars(len, values.by_ref());
    assert!(values.next().is_none(), "more values than len = {len}");
    PrimitiveArray::new(buffer, nulls)
}

/// `len` values in a `Vec<u8>` allocation (or, if the allocator returned
/// memory not aligned for `T`, in a `Vec<T>`).
fn scalars<T: ArrowNativeType>(len: usize, values: impl Iterator<Item = T>) -> ScalarBuffer<T> {
    let bytes = len
        .checked_mul(size_of::<T>())
        .expect("output length overflows usize");
    let mut v = Vec::<u8>::with_capacity(bytes);
    if len == 0 || v.as_ptr().align_offset(align_of::<T>()) != 0 {
        let all: Vec<T> = values.collect();
        assert_eq!(
            all.len(),
            len,
            "values yield {} items, not {len}",
            all.len()
        );
        return ScalarBuffer::from(all);
    }
    // SAFETY: the allocation holds `bytes = len * size_of::<T>()` bytes and
    // its start is aligned for `T` (checked above), so it is valid as `len`
    // uninitialised `T`s; nothing else refers to it.
    let slots =
        unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<MaybeUninit<T>>(), len) };
    let mut written = 0;
    for (slot, value) in slots.iter_mut().zip(values) {
        slot.write(value);
        written += 1;
    }
    assert_eq!(written, len, "values yield {written} items, not {len}");
    // SAFETY: the first `len` `T`s, i.e. `bytes` bytes, were written above.
    unsafe { v.set_len(bytes) };
    ScalarBuffer::new(Buffer::from_vec(v), 0, len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::types::{Float64Type, Int64Type, UInt32Type};
    use arrow_array::{Float64Array, UInt32Array};

    #[test]
    fn unary_matches_arrows_unary_with_nulls_and_slices() {
        let x = Float64Array::from(vec![Some(1.5), None, Some(-3.0), Some(f64::NAN), Some(0.0)]);
        for (offset, len) in [(0, 5), (1, 3), (2, 0), (4, 1)] {
            let s = x.slice(offset, len);
            let ours = unary::<_, Float64Type, _>(&s, |v| (v - 1.0) / 2.0);
            let arrows: Float64Array = s.unary(|v| (v - 1.0) / 2.0);
            assert_eq!(ours.len(), arrows.len());
            assert_eq!(ours.nulls(), arrows.nulls());
            for i in 0..ours.len() {
                assert_eq!(
                    ours.value(i).to_bits(),
                    arrows.value(i).to_bits(),
                    "row {i}"
                );
            }
        }
        let ints = unary::<_, Int64Type, _>(&x, |v| v as i64);
        assert_eq!(ints.values().to_vec(), vec![1, 0, -3, 0, 0]);
    }

    #[test]
    fn values_live_in_a_vec_u8_the_export_can_take() {
        let x = Float64Array::from(vec![1.0, 2.0, 3.0]);
        let y = unary::<_, Float64Type, _>(&x, |v| v + 1.0);
        let buffer = y.into_parts().1.into_inner();
        let bytes = buffer.into_vec::<u8>().expect("an unshared Vec<u8>");
        assert_eq!(bytes.len(), 24);
        assert_eq!(f64::from_le_bytes(bytes[8..16].try_into().unwrap()), 3.0);
    }

    #[test]
    fn collect_takes_exactly_len_values() {
        let nulls = NullBuffer::from(vec![true, false, true]);
        let a = collect::<UInt32Type, _>(3, [7u32, 0, 9], Some(nulls));
        assert_eq!(a, UInt32Array::from(vec![Some(7), None, Some(9)]));
        let empty = collect::<UInt32Type, _>(0, std::iter::empty(), None);
        assert_eq!(empty.len(), 0);
        let short = std::panic::catch_unwind(|| collect::<UInt32Type, _>(3, [1u32], None));
        assert!(short.is_err());
    }
}
