//! [`HostSchema`]: how the host lifts the schema of a plugin's output.
//!
//! Every `apply` result names its schema again (`batch.schema`), and the
//! host already holds it: the plugin declared it through `output-schema`
//! when the call's signature was made. Lifting it in full is a `String`
//! per field name, a `Vec` of fields and UTF-8 validation, then a
//! comparison and as many frees, per call: 0.3 – 0.5 us of a warm 1-row
//! call with eight output columns (docs/performance.md, twelfth round).
//! Inside [`expecting`],
//! the lift instead compares the returned schema with the expected one
//! where it lies, in the guest's memory, allocating nothing, and yields
//! [`HostSchema::AsExpected`]; any difference (or no expectation, or a
//! string encoding other than UTF-8) lifts it in full, exactly as before.
//!
//! The comparison reads what the full lift would read, through the same
//! wasmtime checks (every list and string bounds-checked against the
//! guest's memory and charged to the host-call fuel), so a malformed
//! schema is refused with the same error either way.
use std::cell::Cell;
use std::ptr::NonNull;

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift, WasmList, WasmStr};

use crate::host_bytes::pointer_pair;
use crate::types::{DataType, Field, Schema};
use crate::DeclaredSchema;

/// The `schema` of a plugin's output as the host lifts it (the schema of
/// [`crate::Batch<HostBytes, HostSchema>`](crate::Batch)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostSchema {
    /// Equal, field for field, to the schema the enclosing [`expecting`]
    /// call named; nothing was lifted.
    AsExpected,
    /// Lifted in full: no expectation was set, or the schema differs.
    Lifted(Schema),
}

impl DeclaredSchema for HostSchema {
    /// `AsExpected` is trusted to mean `declared_wire`: the call that
    /// lifted it must have run inside `expecting(declared_wire, ..)`.
    fn unless_declared(self, declared_wire: &Schema) -> Option<Schema> {
        match self {
            HostSchema::AsExpected => None,
            HostSchema::Lifted(s) => s.unless_declared(declared_wire),
        }
    }
}

thread_local! {
    static EXPECTED: Cell<Option<NonNull<Schema>>> = const { Cell::new(None) };
    static COUNTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// How many [`HostSchema`] lifts on this thread so far found the expected
/// schema in place, and how many lifted a schema in full (no expectation,
/// or a different schema). For tests and diagnostics: a plugin whose
/// outputs are always lifted in full returns a schema other than the one
/// it declares.
pub fn host_schema_counts() -> (u64, u64) {
    COUNTS.with(Cell::get)
}

fn count(in_place: bool) {
    COUNTS.with(|c| {
        let (a, b) = c.get();
        c.set(if in_place { (a + 1, b) } else { (a, b + 1) });
    });
}

/// Run `f` (a call into a guest) with [`HostSchema`] lifts on this thread
/// compared against `schema`: a returned schema equal to it lifts as
/// [`HostSchema::AsExpected`]. Returns `f`'s result.
pub fn expecting<R>(schema: &Schema, f: impl FnOnce() -> R) -> R {
    let previous = EXPECTED.with(|e| e.replace(Some(NonNull::from(schema))));
    // The previous expectation comes back when this returns, or if `f`
    // unwinds, so the pointer never outlives `schema`'s borrow.
    struct Restore(Option<NonNull<Schema>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            EXPECTED.with(|e| e.set(self.0));
        }
    }
    let _restore = Restore(previous);
    f()
}

/// The schema the innermost [`expecting`] call on this thread named.
fn expected<'a>() -> Option<&'a Schema> {
    // SAFETY: the pointer is set only by `expecting`, from a borrow that
    // outlives the call to `f` during which it is set, and is reset when
    // that call ends; lifts run inside it, on this thread, and use the
    // reference only for the lift.
    EXPECTED.with(Cell::get).map(|p| unsafe { p.as_ref() })
}

// SAFETY: `HostSchema` has exactly the canonical ABI of the `schema`
// record: type, flat form and type check are `Schema`'s.
unsafe impl ComponentType for HostSchema {
    type Lower = <Schema as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = <Schema as ComponentType>::ABI;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <Schema as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: lifts go through wasmtime's own lifts of the same type (the
// comparison through `RawSchema`, whose members have the ABI of
// `Schema`'s, and the fallback through `Schema`'s).
unsafe impl Lift for HostSchema {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        count(false);
        Schema::linear_lift_from_flat(cx, ty, src).map(HostSchema::Lifted)
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        if let Some(want) = expected() {
            let raw = RawSchema::linear_lift_from_memory(cx, ty, bytes)?;
            if raw.equals(cx, want)? {
                count(true);
                return Ok(HostSchema::AsExpected);
            }
        }
        count(false);
        Schema::linear_lift_from_memory(cx, ty, bytes).map(HostSchema::Lifted)
    }
}

/// The `schema` record with its lists left in the guest's memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawSchema {
    fields: RawList<RawField>,
    metadata: RawList<(RawStr, RawStr)>,
}

/// The `field` record with its strings and list left in the guest's memory.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawField {
    name: RawStr,
    #[component(name = "data-type")]
    data_type: DataType,
    nullable: bool,
    metadata: RawList<(RawStr, RawStr)>,
}

impl RawSchema {
    fn equals(&self, cx: &mut LiftContext<'_>, want: &Schema) -> wasmtime::Result<bool> {
        if self.fields.len != want.fields.len() || !self.metadata.equals(cx, &want.metadata)? {
            return Ok(false);
        }
        for (i, w) in want.fields.iter().enumerate() {
            if !self.fields.get(cx, i)?.equals(cx, w)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl RawField {
    fn equals(&self, cx: &mut LiftContext<'_>, want: &Field) -> wasmtime::Result<bool> {
        Ok(self.nullable == want.nullable
            && self.data_type == want.data_type
            && self.name.is(cx, &want.name)
            && self.metadata.equals(cx, &want.metadata)?)
    }
}

impl RawList<(RawStr, RawStr)> {
    fn equals(
        &self,
        cx: &mut LiftContext<'_>,
        want: &[(String, String)],
    ) -> wasmtime::Result<bool> {
        if self.len != want.len() {
            return Ok(false);
        }
        for (i, (k, v)) in want.iter().enumerate() {
            let (rk, rv) = self.get(cx, i)?;
            if !(rk.is(cx, k) && rv.is(cx, v)) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A `list<T>` left in the guest's memory: its place, checked by
/// wasmtime's `WasmList` lift, and its element type.
struct RawList<T> {
    ptr: usize,
    len: usize,
    element: InterfaceType,
    _t: std::marker::PhantomData<T>,
}

impl<T: Lift> RawList<T> {
    /// Element `i` (< `len`), lifted from where it lies.
    fn get(&self, cx: &mut LiftContext<'_>, i: usize) -> wasmtime::Result<T> {
        let size = T::SIZE32;
        // In bounds: the `WasmList` lift checked `ptr + len * size`.
        let bytes = &cx.memory()[self.ptr + i * size..][..size];
        T::linear_lift_from_memory(cx, self.element, bytes)
    }
}

// SAFETY: `RawList<T>` has exactly the canonical ABI of `list<T>`.
unsafe impl<T: ComponentType> ComponentType for RawList<T> {
    type Lower = <[T] as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <[T] as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: wasmtime's `WasmList<T>` lift checks the pointer, length and
// alignment first; only then are they kept.
unsafe impl<T: Lift> Lift for RawList<T> {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        let list = WasmList::<T>::linear_lift_from_flat(cx, ty, src)?;
        let ptr = usize::try_from(src[0].get_u32())?;
        RawList::new(cx, ty, ptr, list.len())
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let list = WasmList::<T>::linear_lift_from_memory(cx, ty, bytes)?;
        RawList::new(cx, ty, pointer_pair(bytes)?.0, list.len())
    }
}

impl<T> RawList<T> {
    fn new(
        cx: &LiftContext<'_>,
        ty: InterfaceType,
        ptr: usize,
        len: usize,
    ) -> wasmtime::Result<Self> {
        let InterfaceType::List(l) = ty else {
            wasmtime::bail!("expected a list type");
        };
        Ok(RawList {
            ptr,
            len,
            element: cx.types[l].element,
            _t: std::marker::PhantomData,
        })
    }
}

/// A `string` left in the guest's memory: its bytes if it is UTF-8 (the
/// component's string encoding), checked by wasmtime's `WasmStr` lift.
struct RawStr(Option<(usize, usize)>);

impl RawStr {
    /// Whether the string is `want` (never, for another encoding).
    fn is(&self, cx: &LiftContext<'_>, want: &str) -> bool {
        // In bounds: the `WasmStr` lift checked `ptr + len`. Equal bytes
        // are valid UTF-8, as `want`'s are.
        self.0
            .is_some_and(|(ptr, len)| &cx.memory()[ptr..][..len] == want.as_bytes())
    }
}

// SAFETY: `RawStr` has exactly the canonical ABI of `string`.
unsafe impl ComponentType for RawStr {
    type Lower = <str as ComponentType>::Lower;

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, types: &InstanceType<'_>) -> wasmtime::Result<()> {
        <str as ComponentType>::typecheck(ty, types)
    }
}

// SAFETY: wasmtime's `WasmStr` lift checks the pointer and length (for
// the component's encoding) first; only then are they kept.
unsafe impl Lift for RawStr {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        WasmStr::linear_lift_from_flat(cx, ty, src)?;
        let ptr = usize::try_from(src[0].get_u32())?;
        let len = usize::try_from(src[1].get_u32())?;
        Ok(RawStr::new(cx, ptr, len))
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        WasmStr::linear_lift_from_memory(cx, ty, bytes)?;
        let (ptr, len) = pointer_pair(bytes)?;
        Ok(RawStr::new(cx, ptr, len))
    }
}

impl RawStr {
    fn new(cx: &LiftContext<'_>, ptr: usize, len: usize) -> RawStr {
        let utf8 = matches!(cx.options().string_encoding, StringEncoding::Utf8);
        RawStr(utf8.then_some((ptr, len)))
    }
}
