pub mod bert;
pub mod branch;
pub mod checkpoint;
pub mod fused;
pub mod presets;

pub use bert::{BertForSequenceClassification, Config};
pub use checkpoint::SequenceClassifier;
