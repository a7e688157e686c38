//! One text's answer, as the CLI prints it (`label`, `prob`, `exit_layer`,
//! `latency_us`, `truncated`), plus every label's probability and the
//! exit's logits.

use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The answer for one text.
///
/// label: the predicted label; prob: its probability at the exit;
/// exit_layer: the layer after which the text left (1-based);
/// latency_us: wall time of the segments it went through, in microseconds
/// (for a batch: the batch's segments); truncated: the text had more tokens
/// than the bundle's max_seq_len and was cut; probs and logits: every
/// label's probability and logit at the exit, in `Classifier.labels` order.
#[pyclass(frozen, get_all, module = "bert_edge")]
#[derive(Debug, Clone)]
pub struct Prediction {
    pub label: String,
    pub prob: f32,
    pub exit_layer: usize,
    pub latency_us: u64,
    pub truncated: bool,
    pub probs: Vec<f32>,
    pub logits: Vec<f32>,
}

impl From<edge_runtime::Prediction> for Prediction {
    fn from(p: edge_runtime::Prediction) -> Self {
        Self {
            prob: p.prob(),
            latency_us: p.latency_us(),
            label: p.label,
            exit_layer: p.exit_layer,
            truncated: p.truncated,
            probs: p.probs,
            logits: p.logits,
        }
    }
}

#[pymethods]
impl Prediction {
    /// The fields as a dict (the CLI's JSON line without the text, plus
    /// probs and logits).
    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("label", &self.label)?;
        d.set_item("prob", self.prob)?;
        d.set_item("exit_layer", self.exit_layer)?;
        d.set_item("latency_us", self.latency_us)?;
        d.set_item("truncated", self.truncated)?;
        d.set_item("probs", &self.probs)?;
        d.set_item("logits", &self.logits)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let truncated = if self.truncated { "True" } else { "False" };
        format!(
            "Prediction(label={:?}, prob={}, exit_layer={}, latency_us={}, truncated={truncated})",
            self.label, self.prob, self.exit_layer, self.latency_us
        )
    }
}
