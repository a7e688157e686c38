//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! What a bundle is and how a sample exits (the contract every stage shares)
//! is the `bundle` crate; this crate runs it. Without default features it is
//! the runtime alone, reading NNEF bundles (`nnef`); `onnx` adds tract's ONNX
//! parser (ONNX bundles, `to-nnef`), `tools` bench and calibrate, `cli` what
//! the binary needs.

#[cfg(feature = "tools")]
pub mod bench;
#[cfg(feature = "tools")]
pub mod calibrate;
pub mod checks;
mod error;
pub mod fused_norm;
pub mod half_cast;
pub mod kernels;
pub mod nnef;
mod nnef_graph;
mod nnef_ops;
#[cfg(feature = "onnx")]
mod onnx_graph;
#[cfg(feature = "plots")]
mod plots;
#[cfg(feature = "tools")]
mod report;
pub mod row_softmax;
pub mod runtime;
mod segment;

/// The tract release the runtime is built and tested against (pinned in the
/// workspace's Cargo.toml: the own ops implement its internal traits).
pub const TRACT_VERSION: &str = "0.23.9";

pub use kernels::MatmulKernel;
pub use runtime::{set_threads, Compute, EdgeClassifier, LoadOptions, Prediction};

#[cfg(test)]
mod tests {
    #[test]
    fn tract_version_is_the_pinned_one() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(manifest.contains(&format!("tract-linalg = \"={}\"", super::TRACT_VERSION)));
    }
}
