//! Serving what the registry and bundles pin: `name@tag` from a store, a
//! `.kiln` bundle without one. Extension traits, so `kiln-store` needs no
//! serving code and the calls read as before (`registry.serving(..)`).

use kiln_runtime::Engine;
use kiln_store::{Bundle, Registry, Resolved};

use crate::{ServingOptions, ServingTransform};

/// Serve versions and pipelines from a [`Registry`].
pub trait RegistryServing {
    /// Serve `name@tag` (or a version or pipeline id): the pinned plugin,
    /// parameters and state, or every step of a pipeline, checked, as a
    /// [`ServingTransform`] named `spec`. [`RegistryServing::reload`]
    /// follows a later tag move.
    ///
    /// # Errors
    /// An unknown name, tag or id (`kiln_store::Error::NotFound`); as
    /// [`ServingTransform::with_options`] / [`ServingTransform::pipeline`].
    fn serving(&self, spec: &str, options: ServingOptions) -> kiln_store::Result<ServingTransform>;

    /// Resolve `spec` again and, if it now names another version, swap
    /// `serving` to it atomically (calls in flight finish on the old one).
    /// Returns whether the version changed.
    ///
    /// # Errors
    /// As [`RegistryServing::serving`]; `serving` is then unchanged.
    fn reload(&self, serving: &ServingTransform, spec: &str) -> kiln_store::Result<bool>;
}

impl RegistryServing for Registry {
    fn serving(&self, spec: &str, options: ServingOptions) -> kiln_store::Result<ServingTransform> {
        Ok(match self.store().resolve_any(spec)? {
            Resolved::Version(v) => {
                let (plugin, params, state) = self.load_version(&v)?;
                ServingTransform::with_options(spec, plugin, params, state, options)?
            }
            Resolved::Pipeline(p) => {
                ServingTransform::pipeline(spec, &self.load_pipeline(&p)?, options)?
            }
        })
    }

    fn reload(&self, serving: &ServingTransform, spec: &str) -> kiln_store::Result<bool> {
        match self.store().resolve_any(spec)? {
            Resolved::Version(v) => {
                if v.id == serving.version() {
                    return Ok(false);
                }
                let (plugin, params, state) = self.load_version(&v)?;
                serving.reload(plugin, params, state)?;
            }
            Resolved::Pipeline(p) => {
                if p.id == serving.version() {
                    return Ok(false);
                }
                serving.reload_pipeline(&self.load_pipeline(&p)?)?;
            }
        }
        Ok(true)
    }
}

/// Serve a [`Bundle`] with no store.
pub trait BundleServing {
    /// Serve the bundled version, named `name@tag` from the manifest, with
    /// no store: what a serving process does with an exported bundle.
    ///
    /// # Errors
    /// As [`Bundle::load`] and [`ServingTransform::with_options`].
    fn serving(
        &self,
        engine: &Engine,
        options: ServingOptions,
    ) -> kiln_store::Result<ServingTransform>;
}

impl BundleServing for Bundle {
    fn serving(
        &self,
        engine: &Engine,
        options: ServingOptions,
    ) -> kiln_store::Result<ServingTransform> {
        let m = &self.manifest;
        Ok(ServingTransform::with_options(
            format!("{}@{}", m.name, m.tag),
            self.load(engine)?,
            self.params(),
            self.state().cloned(),
            options,
        )?)
    }
}
