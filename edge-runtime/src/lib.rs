//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! The contract the stages share (bundle format, exit policies, datasets)
//! lives in the `bundle` crate; it is re-exported here under its old paths
//! until every stage imports it from there.

pub mod bench;
pub mod calibrate;
pub mod graphs;
pub mod kernels;
pub mod onnx;
pub mod plots;
pub mod runtime;

pub use ::bundle::{cli, dataset as data, exit, manifest as bundle, stats};
pub use ::bundle::{ExitDecider, ExitPolicy, Manifest, Precision};
pub use runtime::{set_threads, Compute, EdgeClassifier, Prediction};
