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
/// `unary` does); the nulls are `array`'s. `op` sees each value once, in
/// no particular order (the column is mapped as four interleaved streams,
/// which the sandbox's compiler runs faster than one).
pub fn unary<I, O, F>(array: &PrimitiveArray<I>, op: F) -> PrimitiveArray<O>
where
    I: ArrowPrimitiveType,
    O: ArrowPrimitiveType,
    F: Fn(I::Native) -> O::Native,
{
    let src: &[I::Native] = array.values();
    let len = src.len();
    // SAFETY: `map_into` writes every slot it is given.
    let values = match unsafe { in_bytes(len, |slots| map_into(src, slots, &op)) } {
        Some(buffer) => ScalarBuffer::new(buffer, 0, len),
        None => ScalarBuffer::from(src.iter().map(|&v| op(v)).collect::<Vec<_>>()),
    };
    PrimitiveArray::new(values, array.nulls().cloned())
}

/// `op` applied to every value of `array` (null slots included), written
/// over `array`'s own values when it holds the only reference to them in a
/// `Vec<u8>` allocation (as an input column does once the plugin owns the
/// batch and has taken the column out: [`crate::columns::replace_with`]);
/// otherwise into a new buffer, as [`unary`]. Either way the result is
/// what [`unary`] gives and the export hands it over without a copy; in
/// place it also touches no new memory. The data type (a timestamp's zone,
/// say) and the nulls are kept. `op` sees each value once, in no
/// particular order (as in [`unary`]).
pub fn unary_mut<T, F>(array: PrimitiveArray<T>, op: F) -> PrimitiveArray<T>
where
    T: ArrowPrimitiveType,
    F: Fn(T::Native) -> T::Native,
{
    let data_type = array.data_type().clone();
    let (_, values, nulls) = array.into_parts();
    let len = values.len();
    let values = match values.into_inner().into_vec::<u8>() {
        Ok(mut bytes) if bytes.as_ptr().align_offset(align_of::<T::Native>()) == 0 => {
            // SAFETY: an unshared, unsliced buffer of `len` values is
            // exactly `len * size_of::<T::Native>()` bytes (`into_vec`
            // checked), it starts aligned for `T::Native` (checked here),
            // and nothing else refers to it.
            let slots = unsafe {
                std::slice::from_raw_parts_mut(bytes.as_mut_ptr().cast::<T::Native>(), len)
            };
            map_in_place(slots, op);
            ScalarBuffer::new(Buffer::from_vec(bytes), 0, len)
        }
        // Shared, sliced, or not aligned for `T` (a `Vec<u8>` from an
        // allocator that gave less than `T`'s alignment): a new buffer.
        Ok(bytes) => {
            let old = ScalarBuffer::<T::Native>::new(Buffer::from_slice_ref(&bytes), 0, len);
            scalars(len, old.iter().map(|&v| op(v)))
        }
        Err(shared) => {
            let old = ScalarBuffer::<T::Native>::new(shared, 0, len);
            scalars(len, old.iter().map(|&v| op(v)))
        }
    };
    PrimitiveArray::new(values, nulls).with_data_type(data_type)
}

/// `slots[i] = op(slots[i])` for every slot; the in-place [`map_into`].
#[inline(never)]
fn map_in_place<T: Copy, F: Fn(T) -> T>(slots: &mut [T], op: F) {
    let quarter = slots.len() / 4;
    let (a, rest) = slots.split_at_mut(quarter);
    let (b, rest) = rest.split_at_mut(quarter);
    let (c, rest) = rest.split_at_mut(quarter);
    let (d, tail) = rest.split_at_mut(quarter);
    in_place4([a, b, c, d], &op);
    for v in tail {
        *v = op(*v);
    }
}

/// One step per index of four equally long streams (the loop of
/// [`map_in_place`]); each is cut to the first's length, so the indexing
/// needs no bounds check.
#[inline(never)]
fn in_place4<T: Copy, F: Fn(T) -> T>([a, b, c, d]: [&mut [T]; 4], op: &F) {
    let n = a.len();
    let (b, c, d) = (&mut b[..n], &mut c[..n], &mut d[..n]);
    for i in 0..n {
        a[i] = op(a[i]);
        b[i] = op(b[i]);
        c[i] = op(c[i]);
        d[i] = op(d[i]);
    }
}

/// `dst[i] = op(src[i])` for every slot, as four interleaved streams (the
/// four quarters of the slice, one value of each per step), then the last
/// `len % 4` values.
///
/// Plugins are compiled by Cranelift, which does little to a loop: one
/// value (or one 128-bit vector of them) per step pays the loop's own
/// instructions, an interruption check and the reloads of what it spilled.
/// Four independent values per step pay them once, and LLVM still turns
/// each stream into vectors: the 1M-row standard-scaler call went from
/// 2.2 to 1.4 ms (docs/performance.md). Each value is `op` of its own
/// input, so the result is the same in any order.
///
/// # Panics
/// If `src` and `dst` differ in length (a bug in the caller).
#[inline(never)]
fn map_into<I: Copy, O, F: Fn(I) -> O>(src: &[I], dst: &mut [MaybeUninit<O>], op: &F) {
    assert_eq!(src.len(), dst.len(), "map_into: lengths differ");
    let quarter = src.len() / 4;
    let (sa, rest) = src.split_at(quarter);
    let (sb, rest) = rest.split_at(quarter);
    let (sc, rest) = rest.split_at(quarter);
    let (sd, s_tail) = rest.split_at(quarter);
    let (da, rest) = dst.split_at_mut(quarter);
    let (db, rest) = rest.split_at_mut(quarter);
    let (dc, rest) = rest.split_at_mut(quarter);
    let (dd, d_tail) = rest.split_at_mut(quarter);
    into4([sa, sb, sc, sd], [da, db, dc, dd], op);
    for (o, &v) in d_tail.iter_mut().zip(s_tail) {
        o.write(op(v));
    }
}

/// One step per index of four equally long streams (the loop of
/// [`map_into`]), each cut to the first's length as in [`in_place4`].
#[inline(never)]
fn into4<I: Copy, O, F: Fn(I) -> O>(
    [sa, sb, sc, sd]: [&[I]; 4],
    [da, db, dc, dd]: [&mut [MaybeUninit<O>]; 4],
    op: &F,
) {
    let n = da.len();
    let (sa, sb, sc, sd) = (&sa[..n], &sb[..n], &sc[..n], &sd[..n]);
    let (db, dc, dd) = (&mut db[..n], &mut dc[..n], &mut dd[..n]);
    for i in 0..n {
        da[i].write(op(sa[i]));
        db[i].write(op(sb[i]));
        dc[i].write(op(sc[i]));
        dd[i].write(op(sd[i]));
    }
}

/// `len` `T`s that `write` stores into the uninitialised slots of a
/// `Vec<u8>` allocation, as a [`Buffer`]; `None` (and `write` not called)
/// if `len` is 0 or the allocator returned memory not aligned for `T`, in
/// which case the caller builds a `Vec<T>`.
///
/// # Safety
/// `write` must initialise every slot it is given, or panic.
unsafe fn in_bytes<T>(len: usize, write: impl FnOnce(&mut [MaybeUninit<T>])) -> Option<Buffer> {
    let bytes = len
        .checked_mul(size_of::<T>())
        .expect("output length overflows usize");
    let mut v = Vec::<u8>::with_capacity(bytes);
    if len == 0 || v.as_ptr().align_offset(align_of::<T>()) != 0 {
        return None;
    }
    // SAFETY: the allocation has room for `len` `T`s and starts aligned for
    // `T` (checked above), so it is valid as `len` uninitialised `T`s;
    // nothing else refers to it.
    let slots =
        unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<MaybeUninit<T>>(), len) };
    write(slots);
    // SAFETY: `write` initialised all `len` slots (the caller's promise),
    // i.e. every byte.
    unsafe { v.set_len(bytes) };
    Some(Buffer::from_vec(v))
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

/// A primitive array of `len` values that `write` stores into a zeroed
/// slice, with `nulls`: for kernels that write their output a block at a
/// time (SIMD) rather than one value per iterator step. The values live in
/// a `Vec<u8>` allocation, so the export takes them without a copy.
///
/// ```
/// use kiln_sdk::arrow_array::{types::UInt32Type, UInt32Array};
/// let y = kiln_sdk::output::fill::<UInt32Type, _>(4, None, |out| {
///     for (i, o) in out.iter_mut().enumerate() {
///         *o = 10 * i as u32;
///     }
/// });
/// assert_eq!(y, UInt32Array::from(vec![0, 10, 20, 30]));
/// ```
///
/// # Panics
/// If `nulls` has another length than `len` (a bug in the caller).
pub fn fill<O, F>(len: usize, nulls: Option<NullBuffer>, write: F) -> PrimitiveArray<O>
where
    O: ArrowPrimitiveType,
    F: FnOnce(&mut [O::Native]),
{
    let bytes = len
        .checked_mul(size_of::<O::Native>())
        .expect("output length overflows usize");
    let mut v = vec![0u8; bytes];
    if len == 0 || v.as_ptr().align_offset(align_of::<O::Native>()) != 0 {
        let mut all = vec![O::Native::default(); len];
        write(&mut all);
        return PrimitiveArray::new(ScalarBuffer::from(all), nulls);
    }
    // SAFETY: the allocation holds `bytes = len * size_of::<O::Native>()`
    // zeroed bytes and starts aligned for `O::Native` (checked above); all
    // zero bits are a value of every Arrow native type (integers, floats,
    // f16, i256 and the interval structs of integers; the trait is sealed);
    // nothing else refers to the allocation while the slice lives.
    let slots = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<O::Native>(), len) };
    write(slots);
    PrimitiveArray::new(ScalarBuffer::new(Buffer::from_vec(v), 0, len), nulls)
}

/// `len` values in a `Vec<u8>` allocation (or, if the allocator returned
/// memory not aligned for `T`, in a `Vec<T>`).
fn scalars<T: ArrowNativeType>(len: usize, mut values: impl Iterator<Item = T>) -> ScalarBuffer<T> {
    let write = |slots: &mut [MaybeUninit<T>]| {
        let mut written = 0;
        for (slot, value) in slots.iter_mut().zip(values.by_ref()) {
            slot.write(value);
            written += 1;
        }
        assert_eq!(written, len, "values yield {written} items, not {len}");
    };
    // SAFETY: `write` initialises every slot or panics (the count check).
    if let Some(buffer) = unsafe { in_bytes(len, write) } {
        return ScalarBuffer::new(buffer, 0, len);
    }
    let all: Vec<T> = values.collect();
    assert_eq!(
        all.len(),
        len,
        "values yield {} items, not {len}",
        all.len()
    );
    ScalarBuffer::from(all)
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
    fn fill_writes_every_slot_into_a_vec_u8_with_the_nulls_given() {
        let nulls = NullBuffer::from(vec![true, false, true]);
        let y = fill::<Float64Type, _>(3, Some(nulls.clone()), |out| {
            assert_eq!(out, &[0.0, 0.0, 0.0], "starts zeroed");
            out.copy_from_slice(&[1.5, -2.0, f64::INFINITY]);
        });
        assert_eq!(y.nulls(), Some(&nulls));
        assert_eq!(y.values().to_vec(), vec![1.5, -2.0, f64::INFINITY]);
        assert!(y.into_parts().1.into_inner().into_vec::<u8>().is_ok());
        let empty = fill::<UInt32Type, _>(0, None, |out| assert!(out.is_empty()));
        assert_eq!(empty.len(), 0);
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

    /// A Float64 array whose values are a `Vec<u8>` allocation only it holds,
    /// as an input column the guest imported.
    fn owned_f64(values: &[f64], nulls: Option<NullBuffer>) -> Float64Array {
        if values.is_empty() {
            // An empty `Vec<u8>`'s dangling pointer is not aligned for f64.
            return Float64Array::new(ScalarBuffer::from(Vec::<f64>::new()), nulls);
        }
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        Float64Array::new(
            ScalarBuffer::new(Buffer::from_vec(bytes), 0, values.len()),
            nulls,
        )
    }

    #[test]
    fn unary_mut_rewrites_an_unshared_buffer_in_place() {
        let nulls = NullBuffer::from(vec![true, false, true, true]);
        let x = owned_f64(&[1.5, 7.0, -3.0, f64::NAN], Some(nulls.clone()));
        let before = x.values().as_ptr();
        let want: Float64Array = x.unary(|v| (v - 1.0) / 2.0);
        let y = unary_mut(x, |v| (v - 1.0) / 2.0);
        assert_eq!(y.values().as_ptr(), before, "rewritten in place");
        assert_eq!(y.nulls(), Some(&nulls));
        for i in 0..4 {
            assert_eq!(y.value(i).to_bits(), want.value(i).to_bits(), "row {i}");
        }
        // Still a Vec<u8> allocation: the export takes it without a copy.
        assert!(y.into_parts().1.into_inner().into_vec::<u8>().is_ok());
    }

    #[test]
    fn unary_mut_copies_shared_or_sliced_values_and_keeps_the_type() {
        let x = owned_f64(&[1.0, 2.0, 3.0], None);
        let shared = x.clone();
        let y = unary_mut(x, |v| v * 10.0);
        assert_ne!(y.values().as_ptr(), shared.values().as_ptr());
        assert_eq!(
            shared.values().to_vec(),
            vec![1.0, 2.0, 3.0],
            "input untouched"
        );
        assert_eq!(y.values().to_vec(), vec![10.0, 20.0, 30.0]);

        let sliced = owned_f64(&[1.0, 2.0, 3.0], None).slice(1, 2);
        assert_eq!(
            unary_mut(sliced, |v| v + 1.0).values().to_vec(),
            vec![3.0, 4.0]
        );

        let ts = arrow_array::TimestampMillisecondArray::from(vec![1_000, 2_000])
            .with_timezone("Europe/Paris");
        let moved = unary_mut(ts.clone(), |v| v + 1);
        assert_eq!(moved.data_type(), ts.data_type());
        assert_eq!(moved.values().to_vec(), vec![1_001, 2_001]);
    }

    /// The four streams and the tail together cover every slot exactly
    /// once, at every length around the stream boundaries: each output is
    /// `op` of its own input (checked against a plain loop, bit for bit,
    /// with NaN and signed zeros among the values), in place and not.
    #[test]
    fn every_slot_is_mapped_once_at_every_length() {
        let op = |v: f64| (v - 0.25) / 3.0;
        for len in 0..=41 {
            let values: Vec<f64> = (0..len)
                .map(|i| match i % 7 {
                    3 => f64::NAN,
                    5 => -0.0,
                    _ => i as f64 * 1.5 - 7.0,
                })
                .collect();
            let want: Vec<u64> = values.iter().map(|v| op(*v).to_bits()).collect();
            let bits =
                |a: &Float64Array| a.values().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let x = owned_f64(&values, None);
            let before = x.values().as_ptr();
            let y = unary_mut(x, op);
            assert_eq!(bits(&y), want, "in place, len {len}");
            if len > 0 {
                assert_eq!(y.values().as_ptr(), before, "in place, len {len}");
            }
            let copied = unary::<_, Float64Type, _>(&owned_f64(&values, None), op);
            assert_eq!(bits(&copied), want, "new buffer, len {len}");
            // Each value is visited once: an op that counts its calls.
            let calls = std::cell::Cell::new(0);
            let _ = unary::<_, Float64Type, _>(&owned_f64(&values, None), |v| {
                calls.set(calls.get() + 1);
                v
            });
            assert_eq!(calls.get(), len, "calls of op, len {len}");
        }
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
