//! Rust errors as Python exceptions, with the CLI's messages.
//!
//! - the bundle directory or its manifest is missing: `FileNotFoundError`;
//! - any other reason the bundle cannot be loaded (damaged, inconsistent,
//!   not the pinned digest, unreadable): `bert_edge.BundleError`, a
//!   `ValueError` whose message names the file, as the CLI's does;
//! - a bad argument value (a policy out of range, an empty text):
//!   `ValueError`; a wrong argument type: `TypeError` (raised by pyo3);
//! - a failure while computing: `RuntimeError`.

use bundle::manifest::BundleError as BundleFileError;
use edge_runtime::runtime::RuntimeError;
use pyo3::create_exception;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::PyErr;

create_exception!(
    bert_edge,
    BundleError,
    PyValueError,
    "The bundle cannot be used: damaged, inconsistent with itself, or not the pinned one. The message names the file."
);

/// An error of loading a bundle.
pub fn load_error(error: RuntimeError) -> PyErr {
    match &error {
        RuntimeError::Bundle(BundleFileError::Io { error: io, .. }) if io.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(error.to_string())
        }
        RuntimeError::Bundle(BundleFileError::Io { .. }) => PyOSError::new_err(error.to_string()),
        _ => BundleError::new_err(error.to_string()),
    }
}

/// An error of classifying: the text's fault is a `ValueError`, the
/// computation's a `RuntimeError`.
pub fn classify_error(error: RuntimeError) -> PyErr {
    match error {
        RuntimeError::EmptyText | RuntimeError::Input(_) => PyValueError::new_err(error.to_string()),
        _ => PyRuntimeError::new_err(error.to_string()),
    }
}

pub fn value_error(error: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(error.to_string())
}

/// `value` as a count in `1..=max`, or a `ValueError` naming the argument.
pub fn positive(name: &str, value: i64, max: usize) -> Result<usize, PyErr> {
    match usize::try_from(value) {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(PyValueError::new_err(format!("{name} must be in 1..={max}, got {value}"))),
    }
}
