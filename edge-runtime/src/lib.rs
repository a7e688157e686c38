//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! What a bundle is and how a sample exits (the contract every stage shares)
//! is the `bundle` crate; this crate runs it. Without default features it is
//! the runtime alone; `tools` adds bench and calibrate, `cli` what the binary
//! needs.

#[cfg(feature = "tools")]
pub mod bench;
#[cfg(feature = "tools")]
pub mod calibrate;
pub mod checks;
pub mod fused_norm;
pub mod kernels;
#[cfg(feature = "plots")]
mod plots;
pub mod row_softmax;
pub mod runtime;

pub use runtime::{set_threads, Compute, EdgeClassifier, LoadOptions, Prediction};
