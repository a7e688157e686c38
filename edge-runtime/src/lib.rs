//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! This crate owns what the stages share: the exit policies (the same rules in
//! trainer evaluation and on the device), the bundle format, and the ONNX
//! graphs that make a bundle.

pub mod bundle;
pub mod exit;
pub mod graphs;
pub mod onnx;
pub mod runtime;

pub use bundle::{Manifest, Precision};
pub use exit::{ExitDecider, ExitPolicy};
pub use runtime::{EdgeClassifier, Prediction};
