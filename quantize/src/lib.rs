//! Quantize stage: turns an f32 bundle into an int8 or f16 bundle that the
//! edge runtime runs unchanged, and reports the error and size it cost.

pub mod bundle;
pub mod graph;
pub mod numeric;

pub use self::bundle::{quantize_bundle, Options, Report, REPORT};
pub use graph::{Int8Form, Target};
