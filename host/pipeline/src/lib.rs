//! # kiln-pipeline: declarative feature pipelines
//!
//! One TOML file (`kiln.toml`) describes a feature set: its meaning and
//! owner, the steps that compute it (plugins with parameters, applied in
//! order), data contracts on inputs and outputs, and promotion gates. See
//! `docs/pipelines.md` for every field.
//!
//! The map of the crate:
//! - [`PipelineSpec`] (with [`FeatureSet`], [`ColumnDoc`], [`StepSpec`],
//!   [`Contracts`], [`Gates`]): the file, parsed and checked.
//! - [`Pipeline`]: loaded steps (plugin, parameters, state) applied in
//!   order, exactly like one transform; [`PipelineTransformer`] applies it
//!   batch by batch.
//!
//! Fitting a pipeline step by step and registering it as one version is the
//! registry's job (`kiln-store`); serving it is `kiln-serve`'s.

#![deny(missing_docs)]

mod pipeline;

pub use pipeline::{
    ColumnDoc, Contracts, FeatureSet, Gates, Pipeline, PipelineSpec, PipelineTransformer, StepSpec,
};
