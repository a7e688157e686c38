//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! This crate owns what the stages share: the exit policies (the same rules in
//! trainer evaluation and on the device), the bundle format, and the ONNX
//! graphs that make a bundle.

pub mod bench;
pub mod bundle;
pub mod calibrate;
pub mod cli;
pub mod data;
pub mod exit;
pub mod graphs;
pub mod kernels;
pub mod onnx;
pub mod plots;
pub mod runtime;
pub mod stats;

pub use bundle::{Manifest, Precision};
pub use exit::{ExitDecider, ExitPolicy};
pub use runtime::{set_threads, Compute, EdgeClassifier, Prediction};
