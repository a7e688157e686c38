//! The contract between the stages: what the trainer writes, quantize
//! rewrites and the edge runtime reads — the bundle manifest, the exit
//! policies (the same rules in trainer evaluation and on the device), the
//! datasets they all read, report statistics, and how files are written so
//! that a crash never leaves half of one.

pub mod atomic;
pub mod cli;
pub mod dataset;
pub mod digest;
pub mod exit;
pub mod files;
pub mod manifest;
pub mod parallel;
pub mod stats;
pub mod text;
pub mod tokenizer;

pub use digest::Digest;
pub use exit::{ExitDecider, ExitPolicy};
pub use files::BundleFiles;
pub use manifest::{GraphFormat, Manifest, Precision, FORMAT_VERSION};
