//! `bert_edge`: the edge runtime as a Python extension module.
//!
//! A thin layer over [`edge_runtime::EdgeClassifier`]: the same load-time
//! validation as the CLI, the same policies, the same answers. Every Rust
//! error becomes a Python exception whose message is the CLI's (the file
//! first); computation runs with the GIL released.

mod classifier;
mod errors;
mod prediction;

use pyo3::prelude::*;

pub use classifier::Classifier;
pub use errors::BundleError;
pub use prediction::Prediction;

/// Run distilled BERT classifier bundles with real adaptive early exit.
///
/// >>> from bert_edge import Classifier
/// >>> clf = Classifier("runs/tiny-bundle")          # the bundle's default policy
/// >>> clf.classify("这家酒店很干净").label
#[pymodule]
fn bert_edge(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Classifier>()?;
    m.add_class::<Prediction>()?;
    m.add("BundleError", m.py().get_type::<BundleError>())?;
    m.add_function(wrap_pyfunction!(set_threads, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("TRACT_VERSION", edge_runtime::TRACT_VERSION)?;
    Ok(())
}

/// Run the matrix products on `n` threads (1, the default: the calling
/// thread only). Process-wide, like the CLI's `--threads`. For several texts
/// at once, one `Classifier` per Python thread usually pays more.
#[pyfunction]
fn set_threads(n: i64) -> PyResult<()> {
    let n = errors::positive("n", n, 256)?;
    edge_runtime::set_threads(n).map_err(errors::value_error)
}
