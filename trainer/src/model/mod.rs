pub mod bert;
pub mod branch;
pub mod checkpoint;
pub mod classifier;
pub mod dropout;
pub mod electra;
pub mod fused;
pub mod mlm;
pub mod presets;

pub use bert::Config;
pub use classifier::BertForSequenceClassification;
pub use checkpoint::SequenceClassifier;
