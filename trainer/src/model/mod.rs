pub mod bert;
pub mod branch;
pub mod checkpoint;
pub mod dropout;
pub mod electra;
pub mod fused;
pub mod mlm;
pub mod presets;

pub use bert::{BertForSequenceClassification, Config};
pub use checkpoint::SequenceClassifier;
