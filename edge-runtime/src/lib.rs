//! Edge runtime for exported BERT bundles: runs a student layer by layer and
//! stops once an exit branch is confident enough.
//!
//! This crate owns what the stages share. So far: the exit policies, with the
//! same semantics in trainer evaluation and on the device.

pub mod exit;

pub use exit::{ExitDecider, ExitPolicy};
