//! The contract's exported functions as typed wasmtime calls.
//!
//! The host speaks `kiln:transform/transform` directly through
//! [`TypedFunc`]s over `kiln-wire`'s records (which implement wasmtime's
//! component traits), so no generated twin types exist on this side and
//! batches are lowered from borrowed Arrow buffers. Every signature is
//! checked once, when a plugin is loaded ([`Exports::check`]); the calls
//! after that skip the per-instance type check, which is sound because they
//! use exactly the checked signatures on the same component.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use kiln_wire::{Batch, BatchView, HostBytes, HostSchema, PluginError, Schema};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, Func, Instance, Lift, ResourceAny, TypedFunc,
};
use wasmtime::Store;

use crate::engine::{Engine, Reaper};
use crate::sandbox::HostState;

/// The exported interface's name, with the contract version this host speaks.
pub(crate) const TRANSFORM_INTERFACE: &str = "kiln:transform/transform@0.1.0";

/// `plugin-kind` of the contract.
#[derive(ComponentType, Lift, Debug, Clone, Copy)]
#[component(enum)]
#[repr(u8)]
// Built by `Lift` when lifting `describe`'s result, never by Rust code.
#[allow(dead_code)]
pub(crate) enum KindRecord {
    #[component(name = "stateless")]
    Stateless,
    #[component(name = "fitted")]
    Fitted,
    #[component(name = "optionally-fitted")]
    OptionallyFitted,
}

/// `plugin-info` of the contract.
#[derive(ComponentType, Lift, Debug)]
#[component(record)]
pub(crate) struct InfoRecord {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) description: String,
    pub(crate) kind: KindRecord,
    #[component(name = "params-schema")]
    pub(crate) params_schema: String,
    pub(crate) deterministic: bool,
}

type Describe = TypedFunc<(), (InfoRecord,)>;
type NeedsFit<'a> = TypedFunc<(&'a str,), (Result<bool, PluginError>,)>;
type FitPartial<'a> = TypedFunc<(&'a str, BatchView<'a>), (Result<Vec<u8>, PluginError>,)>;
type FitMerge<'a> = TypedFunc<(&'a str, &'a [Vec<u8>]), (Result<Vec<u8>, PluginError>,)>;
type FitFinish<'a> = TypedFunc<(&'a str, &'a [u8]), (Result<Vec<u8>, PluginError>,)>;
type Configure<'a> = TypedFunc<(&'a str, Option<&'a [u8]>), (Result<ResourceAny, PluginError>,)>;
type OutputSchema<'a> = TypedFunc<(ResourceAny, &'a Schema), (Result<Schema, PluginError>,)>;
type Apply<'a> =
    TypedFunc<(ResourceAny, BatchView<'a>), (Result<Batch<HostBytes, HostSchema>, PluginError>,)>;

/// Where each export of the transform interface is, in one component.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exports {
    describe: ComponentExportIndex,
    needs_fit: ComponentExportIndex,
    fit_partial: ComponentExportIndex,
    fit_merge: ComponentExportIndex,
    fit_finish: ComponentExportIndex,
    configure: ComponentExportIndex,
    output_schema: ComponentExportIndex,
    apply: ComponentExportIndex,
}

/// The custom section in which a plugin's core module promises that
/// `apply`'s post-return leaves the returned buffers as they were (kiln-sdk
/// emits it, with the one byte `1`; see its allocator's `freeze_frees`).
pub(crate) const OUTPUTS_INTACT_SECTION: &str = "kiln:outputs-intact";

/// Whether `component` carries [`OUTPUTS_INTACT_SECTION`] in any of its
/// modules. Only a hint for correctness: lent output is validated after
/// post-return, so a plugin that breaks the promise gets wrong output of
/// its own making, never unsound memory.
pub(crate) fn promises_intact_outputs(component: &[u8]) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(component)
        .map_while(|p| p.ok())
        .any(|p| {
            matches!(p, wasmparser::Payload::CustomSection(c)
                if c.name() == OUTPUTS_INTACT_SECTION && c.data() == [1])
        })
}

/// Output buffers from which a call's buffers stay in its instance's
/// memory instead of being copied out (when the plugin promises intact
/// outputs): below this a copy costs less than keeping an instance.
pub(crate) const LEND_FROM_BYTES: usize = 64 << 10;

/// Instances an engine keeps alive for the outputs that point into their
/// memory, at most; beyond, outputs are copied. The pool holds 256.
pub(crate) const MAX_LENT_STORES: usize = 16;

/// Owns the store of an instance whose linear memory holds the buffers of
/// an output batch (the Arrow buffers hold this, see `kiln_wire::lending`):
/// the store, and so the instance's memory, lives exactly as long as the
/// last of them, and no guest code ever runs in it again.
pub(crate) struct Keeper {
    store: Mutex<Option<Store<HostState>>>,
    /// Arrow asks owners to be unwind-safe; a keeper is only ever dropped,
    /// so no half-updated engine state can be observed after a panic.
    engine: AssertUnwindSafe<Engine>,
}

impl Keeper {
    /// A keeper counted against [`MAX_LENT_STORES`], or `None` when
    /// `engine` already keeps that many.
    pub(crate) fn reserve(engine: &Engine) -> Option<Arc<Keeper>> {
        let lent = &engine.inner().lent_stores;
        lent.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < MAX_LENT_STORES).then_some(n + 1)
        })
        .ok()?;
        Some(Arc::new(Keeper {
            store: Mutex::new(None),
            engine: AssertUnwindSafe(engine.clone()),
        }))
    }

    /// Take over `session`'s store: it is dropped with this keeper.
    pub(crate) fn keep(&self, session: &mut Session) {
        let store = session.store.take();
        *self.store.lock().unwrap_or_else(|e| e.into_inner()) = store;
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        let store = self
            .store
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(store) = store {
            // Resetting a large call's memory is the reaper's job.
            self.engine.reaper().retire(store);
        }
        self.engine
            .inner()
            .lent_stores
            .fetch_sub(1, Ordering::AcqRel);
    }
}

/// One instance of a plugin in its own store: what a call runs in.
///
/// A session that saw a large batch ([`Session::drop_off_thread`]) hands
/// its store to the engine's [`Reaper`] when dropped, so the caller does not
/// pay for resetting the memory the call dirtied; a small one is dropped
/// in place (waking another thread would cost more than the reset). A
/// session whose store went to a [`Keeper`] is spent.
pub(crate) struct Session {
    /// `None` once a [`Keeper`] took it.
    store: Option<Store<HostState>>,
    instance: Instance,
    /// Set for a session that carries a large batch.
    reaper: Option<Reaper>,
}

/// Input bytes from which a session is dropped by the reaper: below this,
/// the reset of its memory takes less than a thread wake-up.
pub(crate) const REAP_FROM_BYTES: usize = 64 << 10;

impl Drop for Session {
    fn drop(&mut self) {
        match (self.store.take(), &self.reaper) {
            (Some(store), Some(reaper)) => reaper.retire(store),
            (Some(store), None) => drop(store),
            (None, _) => {}
        }
    }
}

/// What a spent session's store accessors say: every path that could reach
/// one checks [`Session::is_spent`] first.
const SPENT: &str = "a spent session (its store went to a Keeper) was called again";

impl Session {
    pub(crate) fn new(store: Store<HostState>, instance: Instance) -> Session {
        Session {
            store: Some(store),
            instance,
            reaper: None,
        }
    }

    /// Have `engine`'s reaper drop this session if it is about to carry
    /// `input_bytes` (at least [`REAP_FROM_BYTES`]); an engine whose calls
    /// are all small never starts the reaper thread.
    pub(crate) fn drop_off_thread(&mut self, input_bytes: usize, engine: &Engine) {
        if input_bytes >= REAP_FROM_BYTES && self.reaper.is_none() {
            self.reaper = Some(engine.reaper());
        }
    }

    /// Whether a [`Keeper`] took this session's store.
    pub(crate) fn is_spent(&self) -> bool {
        self.store.is_none()
    }

    pub(crate) fn store(&self) -> &Store<HostState> {
        self.store.as_ref().expect(SPENT)
    }

    pub(crate) fn store_mut(&mut self) -> &mut Store<HostState> {
        self.store.as_mut().expect(SPENT)
    }

    fn func(&mut self, idx: &ComponentExportIndex) -> wasmtime::Result<Func> {
        let instance = self.instance;
        instance
            .get_func(self.store_mut(), idx)
            .ok_or_else(|| wasmtime::format_err!("export vanished"))
    }
}

/// Each call below: `check` verified this exact signature on this
/// component when the plugin was loaded, which is what makes
/// `TypedFunc::new_unchecked` sound.
macro_rules! unchecked {
    ($s:expr, $idx:expr, $ty:ty) => {{
        let f = $s.func($idx)?;
        // SAFETY: `Exports::check` checked `$ty` against this export of
        // this component at load; instances come from the same component.
        let typed: $ty = unsafe { TypedFunc::new_unchecked(f) };
        typed
    }};
}

impl Exports {
    /// Find every export, or say which one is missing.
    pub(crate) fn find(component: &Component) -> Result<Exports, String> {
        let iface = component
            .get_export_index(None, TRANSFORM_INTERFACE)
            .ok_or_else(|| format!("missing export {TRANSFORM_INTERFACE}"))?;
        let func = |name: &str| {
            component
                .get_export_index(Some(&iface), name)
                .ok_or_else(|| format!("missing function {name} in {TRANSFORM_INTERFACE}"))
        };
        Ok(Exports {
            describe: func("describe")?,
            needs_fit: func("needs-fit")?,
            fit_partial: func("fit-partial")?,
            fit_merge: func("fit-merge")?,
            fit_finish: func("fit-finish")?,
            configure: func("configure")?,
            output_schema: func("[method]transformer.output-schema")?,
            apply: func("[method]transformer.apply")?,
        })
    }

    /// Type-check every export against the contract, so a plugin with a
    /// mismatched contract fails at load, not at its first batch.
    pub(crate) fn check(&self, s: &mut Session) -> wasmtime::Result<()> {
        s.func(&self.describe)?
            .typed::<(), (InfoRecord,)>(s.store())?;
        s.func(&self.needs_fit)?
            .typed::<(&str,), (Result<bool, PluginError>,)>(s.store())?;
        s.func(&self.fit_partial)?
            .typed::<(&str, BatchView<'_>), (Result<Vec<u8>, PluginError>,)>(s.store())?;
        s.func(&self.fit_merge)?
            .typed::<(&str, &[Vec<u8>]), (Result<Vec<u8>, PluginError>,)>(s.store())?;
        s.func(&self.fit_finish)?
            .typed::<(&str, &[u8]), (Result<Vec<u8>, PluginError>,)>(s.store())?;
        s.func(&self.configure)?
            .typed::<(&str, Option<&[u8]>), (Result<ResourceAny, PluginError>,)>(s.store())?;
        s.func(&self.output_schema)?
            .typed::<(ResourceAny, &Schema), (Result<Schema, PluginError>,)>(s.store())?;
        s.func(&self.apply)?
            .typed::<(ResourceAny, BatchView<'_>), (Result<Batch<HostBytes, HostSchema>, PluginError>,)>(
                s.store(),
            )?;
        Ok(())
    }

    pub(crate) fn describe(&self, s: &mut Session) -> wasmtime::Result<InfoRecord> {
        let f = unchecked!(s, &self.describe, Describe);
        Ok(f.call(s.store_mut(), ())?.0)
    }

    pub(crate) fn needs_fit(
        &self,
        s: &mut Session,
        params: &str,
    ) -> wasmtime::Result<Result<bool, PluginError>> {
        let f = unchecked!(s, &self.needs_fit, NeedsFit<'_>);
        Ok(f.call(s.store_mut(), (params,))?.0)
    }

    pub(crate) fn fit_partial(
        &self,
        s: &mut Session,
        params: &str,
        batch: BatchView<'_>,
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let f = unchecked!(s, &self.fit_partial, FitPartial<'_>);
        Ok(f.call(s.store_mut(), (params, batch))?.0)
    }

    pub(crate) fn fit_merge(
        &self,
        s: &mut Session,
        params: &str,
        states: &[Vec<u8>],
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let f = unchecked!(s, &self.fit_merge, FitMerge<'_>);
        Ok(f.call(s.store_mut(), (params, states))?.0)
    }

    pub(crate) fn fit_finish(
        &self,
        s: &mut Session,
        params: &str,
        state: &[u8],
    ) -> wasmtime::Result<Result<Vec<u8>, PluginError>> {
        let f = unchecked!(s, &self.fit_finish, FitFinish<'_>);
        Ok(f.call(s.store_mut(), (params, state))?.0)
    }

    pub(crate) fn configure(
        &self,
        s: &mut Session,
        params: &str,
        state: Option<&[u8]>,
    ) -> wasmtime::Result<Result<ResourceAny, PluginError>> {
        let f = unchecked!(s, &self.configure, Configure<'_>);
        Ok(f.call(s.store_mut(), (params, state))?.0)
    }

    pub(crate) fn output_schema(
        &self,
        s: &mut Session,
        res: ResourceAny,
        input: &Schema,
    ) -> wasmtime::Result<Result<Schema, PluginError>> {
        let f = unchecked!(s, &self.output_schema, OutputSchema<'_>);
        Ok(f.call(s.store_mut(), (res, input))?.0)
    }

    /// `apply`, with the returned schema compared against `declared` (the
    /// signature's `output-schema`) in the guest's memory instead of lifted
    /// ([`kiln_wire::expecting`]).
    pub(crate) fn apply(
        &self,
        s: &mut Session,
        res: ResourceAny,
        batch: BatchView<'_>,
        declared: &Schema,
    ) -> wasmtime::Result<Result<Batch<HostBytes, HostSchema>, PluginError>> {
        let f = unchecked!(s, &self.apply, Apply<'_>);
        let store = s.store_mut();
        Ok(kiln_wire::expecting(declared, || f.call(store, (res, batch)))?.0)
    }

    /// [`Exports::apply`], leaving output buffers of [`LEND_FROM_BYTES`]
    /// or more in the instance's memory, each holding a clone of `keeper`
    /// (so any was lent if `keeper` has more than one strong count once
    /// this returns). If so and the output is kept, the caller must hand
    /// `s`'s store to `keeper` ([`Keeper::keep`]) and never call `s` again.
    pub(crate) fn apply_lending(
        &self,
        s: &mut Session,
        res: ResourceAny,
        batch: BatchView<'_>,
        declared: &Schema,
        keeper: &Arc<Keeper>,
    ) -> wasmtime::Result<Result<Batch<HostBytes, HostSchema>, PluginError>> {
        let f = unchecked!(s, &self.apply, Apply<'_>);
        let store = s.store_mut();
        let owner: Arc<dyn arrow::alloc::Allocation> = keeper.clone();
        // SAFETY: the pool never moves an instance's memory, and each lent
        // buffer holds `keeper`, to which the caller hands this store once
        // the output is accepted; the store is not called again (a spent
        // session refuses calls), so no guest code writes that memory
        // after post-return, which runs inside `call`. If the output is
        // refused, the lent buffers are dropped with it and the store stays
        // in the session. The lent bytes are validated after `call`
        // returns, like copied ones.
        let r = unsafe {
            kiln_wire::lending(owner, LEND_FROM_BYTES, || {
                kiln_wire::expecting(declared, || f.call(store, (res, batch)))
            })
        };
        Ok(r?.0)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn interface_name_carries_the_wire_version() {
        assert_eq!(
            super::TRANSFORM_INTERFACE,
            format!("kiln:transform/transform@{}", kiln_wire::WIT_VERSION)
        );
    }
}
