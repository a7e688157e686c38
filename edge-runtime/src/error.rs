//! The error of loading a bundle and running it, shared by every file that
//! does either (`runtime`, `segment`, `nnef`).

use bundle::manifest::BundleError;
use tract_nnef::prelude::TractError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Bundle(#[from] BundleError),
    #[error("{path}: cannot load graph: {error:#}")]
    Graph { path: String, error: TractError },
    #[error("{path}: does not fit the manifest: {what}")]
    Mismatch { path: String, what: String },
    #[error("{0}")]
    Input(String),
    #[error("{path}: cannot load tokenizer: {message}")]
    Tokenizer { path: String, message: String },
    #[error("inference failed in {segment}: {error:#}")]
    Run { segment: String, error: TractError },
    #[error("empty text")]
    EmptyText,
    #[error("the batch failed: {0}")]
    Batch(String),
}
