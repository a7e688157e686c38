pub mod attention;
pub mod bert;
pub mod branch;
pub mod checkpoint;
pub mod classifier;
pub(crate) mod cpu;
pub mod dropout;
pub mod electra;
mod erf;
#[cfg(test)]
mod grad_check;
pub mod fused;
pub mod linear;
pub mod mlm;
pub mod presets;
mod small_gemm;

pub use bert::Config;
pub use classifier::BertForSequenceClassification;
pub use checkpoint::SequenceClassifier;
