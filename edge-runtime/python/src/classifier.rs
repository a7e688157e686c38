//! `Classifier`: a loaded bundle and the exit policy its texts run under.

use crate::errors::{self, classify_error, load_error};
use crate::prediction::Prediction;
use bundle::exit::ExitPolicy;
use bundle::files::BundleFiles;
use bundle::Digest;
use edge_runtime::{Compute, EdgeClassifier, LoadOptions, MatmulKernel};
use pyo3::prelude::*;
use std::path::PathBuf;

/// The CLI's largest batch (`classify --batch-size`).
const MAX_BATCH: usize = 4096;

/// A bundle (from `trainer export` or `quantize`) loaded for classifying,
/// with the exit policy every text runs under. Without a policy argument the
/// bundle's default policy is used; give at most one of:
///
///   speed       exit at the first layer whose normalised entropy is below
///               `speed`, in [0, 1] (FastBERT)
///   patience    exit once the prediction is unchanged for `patience`
///               consecutive layers (PABEE)
///   exit_layer  a fixed budget: exit at the `exit_layer`-th exit classifier
///               (FastBERT: after that layer)
///   full        run every layer
///
/// expect_digest: refuse the bundle unless its digest is this one (64 hex
/// digits, as `edge-runtime inspect` prints it), before any text is read.
/// lazy_plans: optimize the segments after the first exit when a text first
/// reaches them, a shorter load when texts exit early.
/// one_text_plans: plan for one text at a time (the graphs' batch fixed to
/// 1), a lighter load; classify_batch then runs its texts one by one. The
/// CLI's classify and bench do this at --batch-size 1, and answer bit for bit
/// as a Classifier with one_text_plans=True.
/// compute: the float type the graphs compute in, as the CLI's `--compute`:
/// "auto" (f16 for an f16 bundle on a CPU with f16 arithmetic, else f32),
/// "f32", "f16", "f16-products" or "mixed-f16" (f16 but for layer norm,
/// softmax, GELU and reductions: on a Pi 5, fewer instructions than f32).
/// matmul_kernel: the products' kernel, as the CLI's `--matmul-kernel`:
/// "auto", "tract" or a kernel's name.
///
/// The bundle is checked as the CLI checks it: checksums, every graph
/// against the manifest, the tokenizer against the embeddings, one text of
/// max_seq_len through every segment. A missing bundle raises
/// FileNotFoundError, any other fault bert_edge.BundleError naming the file.
/// Loading and classifying release the GIL: threads classify in parallel
/// with one Classifier each.
#[pyclass(frozen, module = "bert_edge")]
pub struct Classifier {
    model: EdgeClassifier,
    policy: ExitPolicy,
    path: PathBuf,
    digest: Digest,
}

#[pymethods]
impl Classifier {
    #[new]
    #[pyo3(signature = (path, *, speed=None, patience=None, exit_layer=None, full=false, expect_digest=None, lazy_plans=false, one_text_plans=false, compute="auto", matmul_kernel="auto"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        speed: Option<f64>,
        patience: Option<i64>,
        exit_layer: Option<i64>,
        full: bool,
        expect_digest: Option<String>,
        lazy_plans: bool,
        one_text_plans: bool,
        compute: &str,
        matmul_kernel: &str,
    ) -> PyResult<Self> {
        let requested = requested_policy(speed, patience, exit_layer, full)?;
        let expect_digest = match expect_digest {
            Some(hex) => Some(hex.parse::<Digest>().map_err(|e| errors::value_error(format!("expect_digest: {e}")))?),
            None => None,
        };
        let compute: Compute = compute.parse().map_err(|e| errors::value_error(format!("compute: {e}")))?;
        let matmul_kernel: MatmulKernel = matmul_kernel.parse().map_err(|e| errors::value_error(format!("matmul_kernel: {e}")))?;
        let options = LoadOptions { lazy_plans, one_text_plans, expect_digest, compute, matmul_kernel, ..LoadOptions::default() };
        let (model, digest) = py
            .detach(|| {
                let files = BundleFiles::read(&path)?;
                let model = EdgeClassifier::from_bundle_with_options(&files, options)?;
                Ok((model, files.digest()))
            })
            .map_err(load_error)?;
        let policy = requested.unwrap_or(model.manifest.default_policy);
        policy.check(model.manifest.exit_count()).map_err(|e| errors::value_error(format!("{}: {e}", path.display())))?;
        Ok(Self { model, policy, path, digest })
    }

    /// Classify one text (batch 1) under the classifier's policy; no layer
    /// after its exit runs. Returns a Prediction. An empty text raises
    /// ValueError.
    fn classify(&self, py: Python<'_>, text: String) -> PyResult<Prediction> {
        let prediction = py.detach(|| self.model.classify(&text, self.policy)).map_err(classify_error)?;
        Ok(prediction.into())
    }

    /// Classify a list of texts, `batch_size` at a time, as the CLI's
    /// `classify --batch-size` does: texts that exit leave the batch, the
    /// rest go on. Returns one Prediction per text, in order. If a text
    /// cannot be classified (empty), ValueError names its index.
    #[pyo3(signature = (texts, batch_size=8))]
    fn classify_batch(&self, py: Python<'_>, texts: Vec<String>, batch_size: i64) -> PyResult<Vec<Prediction>> {
        let batch_size = errors::positive("batch_size", batch_size, MAX_BATCH)?;
        let results = py.detach(|| {
            texts
                .chunks(batch_size)
                .flat_map(|chunk| {
                    let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    self.model.classify_texts(&chunk, self.policy)
                })
                .collect::<Vec<_>>()
        });
        results
            .into_iter()
            .enumerate()
            .map(|(i, result)| match result {
                Ok(p) => Ok(p.into()),
                // The same exception, its message prefixed with the text's index.
                Err(e) => {
                    let error = classify_error(e);
                    Err(PyErr::from_type(error.get_type(py), format!("texts[{i}]: {}", error.value(py))))
                }
            })
            .collect()
    }

    /// The labels, in the order of Prediction.probs and logits.
    #[getter]
    fn labels(&self) -> Vec<String> {
        self.model.manifest.labels.clone()
    }

    /// Transformer layers in the bundle.
    #[getter]
    fn num_layers(&self) -> usize {
        self.model.manifest.num_layers
    }

    /// Tokens a text keeps (longer ones are cut: Prediction.truncated).
    #[getter]
    fn max_seq_len(&self) -> usize {
        self.model.manifest.max_seq_len
    }

    /// How the weights are stored: "f32", "f16" or "int8".
    /// The float type the graphs compute in, resolved ("f32", "f16",
    /// "f16-products" or "mixed-f16"; "auto" is never left).
    #[getter]
    fn compute(&self) -> String {
        self.model.compute.to_string()
    }

    #[getter]
    fn precision(&self) -> String {
        serde_json::to_value(self.model.manifest.precision).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The policy texts run under, as reports name it ("entropy 0.3",
    /// "patience 2", "layer 1", "full").
    #[getter]
    fn policy(&self) -> String {
        self.policy.to_string()
    }

    /// The bundle's default policy, named the same way.
    #[getter]
    fn default_policy(&self) -> String {
        self.model.manifest.default_policy.to_string()
    }

    /// The bundle's digest (what expect_digest pins).
    #[getter]
    fn digest(&self) -> String {
        self.digest.to_string()
    }

    /// The bundle directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    fn __repr__(&self) -> String {
        format!(
            "Classifier({:?}, policy={:?}, num_layers={}, labels={:?}, precision={:?})",
            self.path.display().to_string(),
            self.policy(),
            self.num_layers(),
            self.model.manifest.labels,
            self.precision()
        )
    }
}

/// The policy the arguments ask for (`None`: the bundle's default), or a
/// ValueError if they ask for more than one, or for a speed outside [0, 1]
/// or a count below 1 (known before the bundle is read; the counts' upper
/// bounds are checked against its exits after).
fn requested_policy(speed: Option<f64>, patience: Option<i64>, exit_layer: Option<i64>, full: bool) -> PyResult<Option<ExitPolicy>> {
    if let Some(speed) = speed.filter(|s| !(0.0..=1.0).contains(s)) {
        return Err(errors::value_error(format!("speed must be in [0, 1], got {speed}")));
    }
    let patience = patience.map(|n| errors::positive("patience", n, usize::MAX)).transpose()?;
    let exit_layer = exit_layer.map(|k| errors::positive("exit_layer", k, usize::MAX)).transpose()?;
    ExitPolicy::chosen(speed.map(|s| s as f32), patience, exit_layer, full).map_err(errors::value_error)
}
