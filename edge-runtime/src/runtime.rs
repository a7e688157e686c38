//! `EdgeClassifier`: loads a bundle into optimized tract plans (one per
//! segment, symbolic batch and sequence length so no input re-optimizes) and
//! classifies layer by layer, running no graph after a sample's exit.

use crate::checks::{self, Role, WeightTypes};
pub use crate::error::RuntimeError;
use crate::nnef_graph::{self, read_graph};
pub use crate::segment::{cpu_has_f16_arithmetic, Compute};
use crate::kernels::MatmulKernel;
use crate::segment::{Planning, Segment, Stage};
use crate::{fused_norm, row_softmax};
use bundle::exit::{argmax, softmax, ExitDecider, ExitPolicy};
use bundle::files::BundleFiles;
use bundle::tokenizer::BertTokenizer;
use bundle::Digest;
use bundle::parallel::in_parallel;
use bundle::manifest::{GraphFormat, Manifest};
use std::path::Path;
use std::time::{Duration, Instant};
use tract_nnef::prelude::*;
use tract_nnef::tract_core::internal::{EvalContext, OpState};

#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub label: String,
    pub logits: Vec<f32>,
    pub probs: Vec<f32>,
    /// 1-based layer after which the sample exited.
    pub exit_layer: usize,
    /// Wall time of each segment run for this sample's batch: embeddings, then
    /// layer+exit for every layer it went through.
    pub latencies: Vec<Duration>,
    /// The input had more tokens than the bundle's max_seq_len and was cut.
    pub truncated: bool,
}

impl Prediction {
    /// The predicted label's probability: the largest of `probs`.
    pub fn prob(&self) -> f32 {
        self.probs.iter().copied().fold(0f32, f32::max)
    }

    /// The segments' wall times in whole microseconds, summed: what
    /// `classify` reports as `latency_us` (the CLI and the Python wheel).
    pub fn latency_us(&self) -> u64 {
        self.latencies.iter().map(|d| d.as_micros() as u64).sum()
    }
}

pub struct EdgeClassifier {
    pub manifest: Manifest,
    /// The float type the graphs run in (never `Auto`).
    pub compute: Compute,
    tokenizer: BertTokenizer,
    embeddings: Segment,
    layers: Vec<Segment>,
    exits: Vec<Option<Segment>>,
    /// Rows of the word-embedding table: every token id must be below it.
    vocab_rows: usize,
    /// See [`LoadOptions::pad_multiple`].
    pad_multiple: usize,
    /// See [`LoadOptions::one_text_plans`].
    one_text: bool,
}

/// Runs tract's matrix products on `n` threads (1: the calling thread only).
/// Without the `multithread` feature only 1 is possible.
pub fn set_threads(n: usize) -> Result<(), RuntimeError> {
    #[cfg(feature = "multithread")]
    {
        use tract_linalg::multithread::{set_default_executor, Executor};
        set_default_executor(if n > 1 { Executor::multithread(n) } else { Executor::SingleThread });
        Ok(())
    }
    #[cfg(not(feature = "multithread"))]
    match n {
        1 => Ok(()),
        _ => Err(RuntimeError::Input(format!("--threads {n}: this build runs on one thread (built without the `multithread` feature)"))),
    }
}

/// How a bundle's graphs become plans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub compute: Compute,
    /// LayerNormalization (and the residual Add before it) as one op
    /// ([`crate::fused_norm`]); `false` keeps tract's stock expansion, to
    /// measure the difference or rule the op out.
    pub fuse_layer_norm: bool,
    /// Last-axis Softmax as [`crate::row_softmax`]'s op; `false` keeps tract's.
    pub row_softmax: bool,
    /// Threads that parse and optimize the graphs (each graph on one).
    pub load_threads: usize,
    /// Pads every batch's length up to a multiple of this many tokens
    /// (masked, capped at max_seq_len); 1 pads only to the longest sample.
    pub pad_multiple: usize,
    /// Optimize only the embeddings and the layers up to the first exit at
    /// load, and each later segment at the first text that reaches it. Every
    /// graph is still read, typed and checked against the manifest at load;
    /// what waits is tract's optimization (and the dry run of those
    /// segments), so a bundle whose deep graphs tract cannot optimize fails
    /// at the first text that needs them, with the graph's path.
    pub lazy_plans: bool,
    /// Refuse the bundle unless its digest is this one (see
    /// [`bundle::digest`]): a deployment pins the exact bundle it tested,
    /// which no check inside a bundle can do.
    pub expect_digest: Option<Digest>,
    /// The matrix kernel of the products ([`crate::kernels`]).
    pub matmul_kernel: MatmulKernel,
    /// Plans for one text at a time: the graphs' batch dimension `B` is
    /// fixed to 1 before tract optimizes them, which leaves only the
    /// sequence length symbolic: tract simplifies far fewer symbolic shapes
    /// (a load 15% fewer instructions on a Cortex-A76, `docs/results/arm.md`).
    /// A batch of several texts is then run text by text (same answers
    /// within rounding). What a board classifying texts as they come wants.
    pub one_text_plans: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self { compute: Compute::Auto, fuse_layer_norm: true, row_softmax: true, load_threads: cores, pad_multiple: 1, lazy_plans: false, expect_digest: None, matmul_kernel: MatmulKernel::Auto, one_text_plans: false }
    }
}

/// A graph parsed from its verified bytes into a typed model (not yet
/// optimized), in the bundle's graph format.
#[cfg(feature = "onnx")]
pub(crate) fn parse_graph(bundle: &BundleFiles, file: &str, weights: &mut WeightTypes, options: &LoadOptions) -> Result<TypedModel, RuntimeError> {
    parse_graph_staged(bundle, file, weights, options).map(|(model, _)| model)
}

fn parse_graph_staged(bundle: &BundleFiles, file: &str, weights: &mut WeightTypes, options: &LoadOptions) -> Result<(TypedModel, Stage), RuntimeError> {
    let path = bundle.path_of(file).display().to_string();
    let graph = |error| RuntimeError::Graph { path: path.clone(), error };
    let mismatch = |what| RuntimeError::Mismatch { path: path.clone(), what };
    let bytes = bundle.bytes(file).ok_or_else(|| mismatch("not among the checksummed files".into()))?;
    let (mut model, stage) = match GraphFormat::of(file) {
        // An archive carries the ops it was converted with (own ops included).
        Some(GraphFormat::Nnef) => {
            let model = read_graph(bytes).map_err(|e| match e {
                nnef_graph::ReadError::Archive(what) => mismatch(what),
                nnef_graph::ReadError::Graph(error) => graph(error),
            })?;
            weights.add_typed(&model);
            (model, Stage::Decluttered)
        }
        #[cfg(feature = "onnx")]
        _ => (
            crate::onnx_graph::read(bytes, options.fuse_layer_norm, weights).map_err(|e| match e {
                crate::onnx_graph::ReadError::Mismatch(what) => mismatch(what),
                crate::onnx_graph::ReadError::Graph(error) => graph(error),
            })?,
            Stage::Typed,
        ),
        #[cfg(not(feature = "onnx"))]
        _ => return Err(mismatch("an ONNX graph, and this build reads NNEF bundles only (convert one with `edge-runtime to-nnef` from a full build)".into())),
    };
    if options.fuse_layer_norm {
        fused_norm::absorb_residual_adds(&mut model).map_err(graph)?;
    }
    if options.row_softmax {
        row_softmax::use_row_softmax(&mut model).map_err(graph)?;
    }
    Ok((model, stage))
}

impl EdgeClassifier {
    /// Verifies the manifest and checksums, then builds one optimized plan per
    /// graph, computing in f16 where the bundle and the CPU allow it.
    pub fn load(dir: &Path) -> Result<Self, RuntimeError> {
        Self::load_with(dir, Compute::Auto)
    }

    pub fn load_with(dir: &Path, compute: Compute) -> Result<Self, RuntimeError> {
        Self::from_bundle(&BundleFiles::read(dir)?, compute)
    }

    pub fn load_with_options(dir: &Path, options: LoadOptions) -> Result<Self, RuntimeError> {
        Self::from_bundle_with_options(&BundleFiles::read(dir)?, options)
    }

    pub fn from_bundle(bundle: &BundleFiles, compute: Compute) -> Result<Self, RuntimeError> {
        Self::from_bundle_with_options(bundle, LoadOptions { compute, ..LoadOptions::default() })
    }

    /// Builds the classifier from a bundle already read and verified (from a
    /// directory or from memory). Everything a text could trip on is checked
    /// here, once: each graph's inputs and outputs against the manifest and
    /// its neighbours, the precision against the stored weights, the
    /// tokenizer's ids against the embedding table, and one run at
    /// `max_seq_len` through every segment.
    pub fn from_bundle_with_options(bundle: &BundleFiles, options: LoadOptions) -> Result<Self, RuntimeError> {
        if let Some(expected) = &options.expect_digest {
            bundle.check_digest(expected)?;
        }
        let manifest = bundle.manifest.clone();
        let compute = options.compute.resolve(manifest.precision);
        let kernel = options.matmul_kernel.resolve(compute.products_in_f16())?;
        let planning = Planning { compute, kernel, one_text: options.one_text_plans };
        let tokenizer = load_tokenizer(bundle)?;
        // Graphs parse and optimize independently: on as many threads as
        // the load may use, the results kept in manifest order (so the
        // first bad graph in that order is the one reported).
        let threads = options.load_threads.max(1);
        let parsed = in_parallel(roles(&manifest), threads, |(file, role)| {
            let mut weights = WeightTypes::default();
            let (model, stage) = parse_graph_staged(bundle, file, &mut weights, &options)?;
            let path = bundle.path_of(file).display().to_string();
            checks::signature(&model, role, &manifest).map_err(|what| RuntimeError::Mismatch { path: path.clone(), what })?;
            Ok::<_, RuntimeError>((path, model, stage, weights))
        });
        let mut weights = WeightTypes::default();
        let mut typed = Vec::new();
        for graph in parsed {
            let (path, model, stage, w) = graph?;
            weights.merge(&w);
            typed.push((path, model, stage));
        }
        let embeddings_path = typed[0].0.clone();
        let vocab_rows = checks::embedding_rows(&typed[0].1).map_err(|what| RuntimeError::Mismatch { path: embeddings_path.clone(), what })?;
        let tok_path = bundle.path_of(&manifest.tokenizer).display().to_string();
        if let Some(max_id) = tokenizer.get_vocab(true).into_values().max().filter(|&id| id as usize >= vocab_rows) {
            let what = format!("token id {max_id}, but the embedding table has {vocab_rows} rows");
            return Err(RuntimeError::Mismatch { path: tok_path, what });
        }
        let first = bundle.path_of(manifest.graphs()[0]).display().to_string();
        weights.check(manifest.precision).map_err(|what| RuntimeError::Mismatch { path: first, what })?;
        // Lazy: the embeddings and the layers up to the first exit now, the
        // rest at the first text that reaches them.
        let first_exit = manifest.exits.iter().position(Option::is_some).unwrap_or(manifest.exits.len());
        let eager_layers = (first_exit + 1).min(manifest.exits.len());
        let eager_exits = manifest.exits[..eager_layers].iter().flatten().count();
        let eager = if options.lazy_plans { 1 + eager_layers + eager_exits } else { typed.len() };
        let planned = in_parallel(typed.into_iter().enumerate().collect(), threads, |(i, (path, model, stage))| match i < eager {
            true => Segment::planned(model, stage, path, &planning),
            false => Ok(Segment::deferred(model, stage, path, &planning)),
        });
        let mut plans = planned.into_iter();
        let embeddings = plans.next().expect("the embeddings graph comes first")?;
        let (mut layers, mut exits) = (Vec::new(), Vec::new());
        for exit in &manifest.exits {
            layers.push(plans.next().expect("one plan per layer")?);
            exits.push(match exit {
                Some(_) => Some(plans.next().expect("one plan per exit")?),
                None => None,
            });
        }
        let pad_multiple = options.pad_multiple.max(1);
        let one_text = options.one_text_plans;
        let model = Self { manifest, compute, tokenizer, embeddings, layers, exits, vocab_rows, pad_multiple, one_text };
        model.dry_run().map_err(|e| RuntimeError::Mismatch { path: embeddings_path, what: format!("a text of max_seq_len tokens does not run: {e}") })?;
        Ok(model)
    }

    /// The embeddings of one sample of `max_seq_len` tokens (the position
    /// table is long enough), then a short sample through every segment
    /// (each output feeds the next input, each exit gives one logit per
    /// label). Short, because a layer's cost grows with the length and its
    /// shapes do not depend on it.
    fn dry_run(&self) -> Result<(), RuntimeError> {
        let (ids, _) = self.inputs(&[vec![0u32; self.manifest.max_seq_len]])?;
        let hidden = self.embeddings.run("embeddings", tvec!(ids.into_tvalue()))?.remove(0);
        if hidden.shape() != [1, self.manifest.max_seq_len, self.manifest.hidden_size] {
            return Err(RuntimeError::Input(format!("the embeddings are {:?}", hidden.shape())));
        }
        // With lazy plans, through the segments planned so far.
        let planned = self.layers.iter().take_while(|layer| layer.is_planned()).count();
        let logits = self.exit_logits_through(&[vec![0u32; 3]], planned)?;
        let widths_ok = logits.iter().flatten().all(|l| l.len() == 1 && l[0].len() == self.manifest.labels.len());
        if !widths_ok {
            return Err(RuntimeError::Input("an exit gave logits of the wrong shape".into()));
        }
        Ok(())
    }

    /// How many times each exit classifier has run since the load (its dry
    /// run included), layer by layer; `None` where a layer has none. An exit
    /// that no sample's policy can use is not run.
    pub fn exit_runs(&self) -> Vec<Option<u64>> {
        self.exits.iter().map(|e| e.as_ref().map(Segment::runs)).collect()
    }

    /// Layers whose plans exist: all of them, unless the bundle was loaded
    /// with lazy plans and no text has gone that deep yet.
    pub fn layers_planned(&self) -> usize {
        self.layers.iter().filter(|layer| layer.is_planned()).count()
    }

    /// Token ids with [CLS]/[SEP], cut to max_seq_len; says whether it cut.
    pub fn tokenize(&self, text: &str) -> Result<(Vec<u32>, bool), RuntimeError> {
        if text.trim().is_empty() {
            return Err(RuntimeError::EmptyText);
        }
        let (text, cut) = bundle::text::cut_for_tokenizer(text, self.manifest.max_seq_len);
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| RuntimeError::Tokenizer { path: self.manifest.tokenizer.clone(), message: e.to_string() })?;
        Ok((enc.get_ids().to_vec(), cut || !enc.get_overflowing().is_empty()))
    }

    /// Token ids (and whether each was cut) of a file's texts, given with
    /// their line numbers; a text that cannot be tokenized names `file:line`.
    pub fn tokenize_lines<'a>(&self, file: &Path, texts: impl IntoIterator<Item = (usize, &'a str)>) -> anyhow::Result<Vec<(Vec<u32>, bool)>> {
        texts
            .into_iter()
            .map(|(line, text)| self.tokenize(text).map_err(|e| anyhow::anyhow!("{}:{line}: {e}", file.display())))
            .collect()
    }

    pub fn classify(&self, text: &str, policy: ExitPolicy) -> Result<Prediction, RuntimeError> {
        let (ids, truncated) = self.tokenize(text)?;
        let mut p = self.classify_ids(&[ids], policy)?.remove(0);
        p.truncated = truncated;
        Ok(p)
    }

    /// Classifies texts as one shrinking batch; a text that cannot be
    /// classified (empty) gets its error and the others go on.
    pub fn classify_texts(&self, texts: &[&str], policy: ExitPolicy) -> Vec<Result<Prediction, RuntimeError>> {
        let tokenized: Vec<_> = texts.iter().map(|t| self.tokenize(t)).collect();
        let batch: Vec<Vec<u32>> = tokenized.iter().filter_map(|t| t.as_ref().ok().map(|(ids, _)| ids.clone())).collect();
        let mut predictions = match self.classify_ids(&batch, policy) {
            Ok(p) => p.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                return tokenized
                    .into_iter()
                    .map(|t| t.and_then(|_| Err(RuntimeError::Batch(msg.clone()))))
                    .collect();
            }
        };
        tokenized
            .into_iter()
            .map(|t| {
                let (_, truncated) = t?;
                let mut p = predictions.next().expect("one prediction per tokenized text");
                p.truncated = truncated;
                Ok(p)
            })
            .collect()
    }

    /// Classifies a batch on a shrinking batch: samples that exit leave it, the
    /// rest go on; once none is left no further graph runs.
    pub fn classify_ids(&self, batch: &[Vec<u32>], policy: ExitPolicy) -> Result<Vec<Prediction>, RuntimeError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if self.one_text && batch.len() > 1 {
            return batch.iter().map(|row| self.classify_ids(std::slice::from_ref(row), policy).map(|mut p| p.remove(0))).collect();
        }
        let to_run = |e: TractError| RuntimeError::Run { segment: "input".into(), error: e };
        let (ids, mut mask) = self.inputs(batch)?;
        let t0 = Instant::now();
        let mut hidden = self.embeddings.run("embeddings", tvec!(ids.into_tvalue()))?.remove(0).into_tensor();
        let mut latencies = vec![vec![t0.elapsed()]; batch.len()];
        let mut active: Vec<usize> = (0..batch.len()).collect();
        let mut deciders: Vec<ExitDecider> = active.iter().map(|_| ExitDecider::new(policy)).collect();
        let mut out: Vec<Option<Prediction>> = vec![None; batch.len()];
        let n = self.layers.len();
        for layer in 0..n {
            let t = Instant::now();
            let inputs = tvec!(hidden.clone().into_tvalue(), mask.clone().into_tvalue());
            hidden = self.layers[layer].run(&self.manifest.layers[layer], inputs)?.remove(0).into_tensor();
            // Skip an exit no sample's policy can use (full depth's before the
            // last, a fixed exit layer's before its own): its cost, not its count.
            let needed = layer + 1 == n || deciders.iter().any(ExitDecider::needs_next);
            let exit = self.exits[layer].as_ref().filter(|_| needed);
            let Some(exit) = exit else {
                if self.exits[layer].is_some() {
                    deciders.iter_mut().for_each(ExitDecider::pass);
                }
                let dt = t.elapsed();
                active.iter().for_each(|&i| latencies[i].push(dt));
                continue;
            };
            let inputs = tvec!(hidden.clone().into_tvalue(), mask.clone().into_tvalue());
            let logits = exit.run(&format!("exit {}", layer + 1), inputs)?.remove(0);
            let logits = logits.cast_to::<f32>().map_err(to_run)?;
            let logits = logits.to_plain_array_view::<f32>().map_err(to_run)?;
            let dt = t.elapsed();
            let mut keep = Vec::new();
            for (row, &i) in active.iter().enumerate() {
                latencies[i].push(dt);
                let row_logits: Vec<f32> = logits.index_axis(tract_ndarray::Axis(0), row).iter().copied().collect();
                let probs = softmax(&row_logits);
                if layer + 1 == n || deciders[row].should_exit(&probs) {
                    out[i] = Some(Prediction {
                        label: self.manifest.labels[argmax(&probs)].clone(),
                        logits: row_logits,
                        probs,
                        exit_layer: layer + 1,
                        latencies: std::mem::take(&mut latencies[i]),
                        truncated: false,
                    });
                } else {
                    keep.push(row);
                }
            }
            if keep.is_empty() {
                break;
            }
            if keep.len() < active.len() {
                hidden = select_rows(&hidden, &keep).map_err(to_run)?;
                mask = select_rows(&mask, &keep).map_err(to_run)?;
                active = keep.iter().map(|&r| active[r]).collect();
                deciders = keep.iter().map(|&r| deciders[r].clone()).collect();
            }
        }
        Ok(out.into_iter().map(|p| p.expect("every sample exits at the last layer")).collect())
    }
}

impl EdgeClassifier {
    /// Logits of every exit for every sample, running all layers (for parity
    /// checks against other implementations): `[layer][sample][label]`, `None`
    /// where a layer has no exit.
    pub fn all_exit_logits(&self, batch: &[Vec<u32>]) -> Result<Vec<Option<Vec<Vec<f32>>>>, RuntimeError> {
        self.exit_logits_through(batch, self.layers.len())
    }

    /// [`Self::all_exit_logits`] of the first `layers` layers.
    fn exit_logits_through(&self, batch: &[Vec<u32>], layers: usize) -> Result<Vec<Option<Vec<Vec<f32>>>>, RuntimeError> {
        if self.one_text && batch.len() > 1 {
            // Text by text ([sample][layer]), transposed to [layer][sample][label].
            let rows = batch.iter().map(|row| self.exit_logits_through(std::slice::from_ref(row), layers)).collect::<Result<Vec<_>, _>>()?;
            let exits = rows.first().map_or(0, Vec::len);
            return Ok((0..exits).map(|l| rows.iter().map(|r| r[l].as_ref().map(|one| one[0].clone())).collect()).collect());
        }
        let to_run = |e: TractError| RuntimeError::Run { segment: "input".into(), error: e };
        let (ids, mask) = self.inputs(batch)?;
        let mut hidden = self.embeddings.run("embeddings", tvec!(ids.into_tvalue()))?.remove(0).into_tensor();
        let mut out = Vec::new();
        for (layer, plan) in self.layers.iter().enumerate().take(layers) {
            hidden = plan.run(&self.manifest.layers[layer], tvec!(hidden.clone().into_tvalue(), mask.clone().into_tvalue()))?
                .remove(0)
                .into_tensor();
            out.push(match &self.exits[layer] {
                None => None,
                Some(exit) => {
                    let l = exit.run("exit", tvec!(hidden.clone().into_tvalue(), mask.clone().into_tvalue()))?.remove(0);
                    let l = l.cast_to::<f32>().map_err(to_run)?;
                    let v = l.to_plain_array_view::<f32>().map_err(to_run)?;
                    Some(v.outer_iter().map(|r| r.iter().copied().collect()).collect())
                }
            });
        }
        Ok(out)
    }
}

/// The graphs of a bundle in the order the manifest runs them, with what each is.
fn roles(m: &Manifest) -> Vec<(&str, Role)> {
    let mut v = vec![(m.embeddings.as_str(), Role::Embeddings)];
    for (layer, exit) in m.layers.iter().zip(&m.exits) {
        v.push((layer, Role::Layer));
        v.extend(exit.as_deref().map(|e| (e, Role::Exit)));
    }
    v
}

/// The tokenizer from its verified bytes: no padding, truncation at max_seq_len.
/// Only BERT's WordPiece pipeline is read (`bundle::tokenizer`).
fn load_tokenizer(bundle: &BundleFiles) -> Result<BertTokenizer, RuntimeError> {
    let m = &bundle.manifest;
    let path = bundle.path_of(&m.tokenizer).display().to_string();
    let fail = |message: String| RuntimeError::Tokenizer { path: path.clone(), message };
    let bytes = bundle.bytes(&m.tokenizer).ok_or_else(|| fail("not among the checksummed files".into()))?;
    let mut tokenizer = bundle::tokenizer::from_bytes(bytes).map_err(fail)?;
    tokenizer.with_padding(None);
    let trunc = tokenizers::TruncationParams { max_length: m.max_seq_len, ..Default::default() };
    tokenizer.with_truncation(Some(trunc)).map_err(|e| fail(e.to_string()))?;
    Ok(tokenizer)
}

impl EdgeClassifier {
    /// The graphs' inputs for a batch (see [`padded_inputs`]). Ids from
    /// outside the tokenizer (`classify_ids` is public) are checked too: an
    /// id past the embedding table or a row past max_seq_len is an error,
    /// not an out-of-bounds read in the graph.
    fn inputs(&self, batch: &[Vec<u32>]) -> Result<(Tensor, Tensor), RuntimeError> {
        for (i, row) in batch.iter().enumerate() {
            if row.is_empty() || row.len() > self.manifest.max_seq_len {
                return Err(RuntimeError::Input(format!("sample {i} has {} tokens; 1..={} fit", row.len(), self.manifest.max_seq_len)));
            }
            if let Some(id) = row.iter().find(|&&id| id as usize >= self.vocab_rows) {
                return Err(RuntimeError::Input(format!("sample {i} has token id {id}; the embedding table has {} rows", self.vocab_rows)));
            }
        }
        padded_inputs(batch, self.pad_multiple, self.manifest.max_seq_len).map_err(|error| RuntimeError::Run { segment: "input".into(), error })
    }
}

/// Token ids and attention mask, `[batch, width]`, zero-padded on the right:
/// `width` is the longest sample rounded up to `multiple` (at most `max`).
fn padded_inputs(batch: &[Vec<u32>], multiple: usize, max: usize) -> TractResult<(Tensor, Tensor)> {
    let width = batch.iter().map(Vec::len).max().unwrap_or(0);
    let width = width.next_multiple_of(multiple).min(max).max(width);
    let mut ids = Vec::with_capacity(batch.len() * width);
    let mut mask = Vec::with_capacity(batch.len() * width);
    for row in batch {
        let pad = width - row.len();
        ids.extend(row.iter().map(|&t| t as i64).chain(std::iter::repeat_n(0, pad)));
        mask.extend(std::iter::repeat_n(1i64, row.len()).chain(std::iter::repeat_n(0, pad)));
    }
    Ok((Tensor::from_shape(&[batch.len(), width], &ids)?, Tensor::from_shape(&[batch.len(), width], &mask)?))
}

/// Rows `rows` of a tensor along axis 0 (the samples that stay in the batch).
fn select_rows(t: &Tensor, rows: &[usize]) -> TractResult<Tensor> {
    fn pick<T: Datum + Copy>(t: &Tensor, rows: &[usize]) -> TractResult<Tensor> {
        let mut shape = t.shape().to_vec();
        shape[0] = rows.len();
        let per_row: usize = t.shape()[1..].iter().product();
        let v = t.try_as_plain_ram()?.as_slice::<T>()?;
        let data: Vec<T> = rows.iter().flat_map(|&r| v[r * per_row..(r + 1) * per_row].iter().copied()).collect();
        Tensor::from_shape(&shape, &data)
    }
    match t.datum_type() {
        DatumType::F32 => pick::<f32>(t, rows),
        DatumType::F16 => pick::<f16>(t, rows),
        DatumType::I64 => pick::<i64>(t, rows),
        other => anyhow::bail!("cannot select rows of a {other:?} tensor"),
    }
}

/// `name (op)`, plus the matrix kernel a matrix product runs with.
fn node_key(node: &TypedNode) -> String {
    let kernel = node.op().info().ok().and_then(|info| {
        info.iter().find_map(|l| l.split_once(" with [").map(|(_, k)| k.trim_end_matches(']').to_string()))
    });
    match kernel {
        Some(k) => format!("{} ({} {k})", node.name, node.op().name()),
        None => format!("{} ({})", node.name, node.op().name()),
    }
}

impl EdgeClassifier {
    /// Where the time goes: wall time per op kind (tract's optimized op
    /// names; per node with `by_node`), summed over running `batch` through every graph at full depth,
    /// slowest first, with how many times each ran.
    pub fn profile_ops(&self, batch: &[Vec<u32>], by_node: bool) -> Result<Vec<(String, Duration, usize)>, RuntimeError> {
        use std::collections::HashMap;
        let mut by_op: HashMap<String, (Duration, usize)> = HashMap::new();
        let mut timed = |seg: &Segment, inputs: TVec<TValue>| -> Result<TVec<TValue>, RuntimeError> {
            seg.with_state(|state| state
                .run_plan_with_eval(inputs, |ctx: &EvalContext, op_state: Option<&mut (dyn OpState + 'static)>, node, input| {
                    let t = Instant::now();
                    let r = tract_nnef::tract_core::plan::eval(ctx, op_state, node, input);
                    let key = if by_node { node_key(node) } else { node.op().name().to_string() };
                    let e = by_op.entry(key).or_default();
                    e.0 += t.elapsed();
                    e.1 += 1;
                    r
                })
                .map_err(|error| RuntimeError::Run { segment: "profile".into(), error }))
        };
        for row in batch {
            let (ids, mask) = self.inputs(std::slice::from_ref(row))?;
            let mut hidden = timed(&self.embeddings, tvec!(ids.into_tvalue()))?.remove(0);
            for (layer, exit) in self.layers.iter().zip(&self.exits) {
                hidden = timed(layer, tvec!(hidden, mask.clone().into_tvalue()))?.remove(0);
                if let Some(exit) = exit {
                    timed(exit, tvec!(hidden.clone(), mask.clone().into_tvalue()))?;
                }
            }
        }
        let mut v: Vec<_> = by_op.into_iter().map(|(k, (d, n))| (k, d, n)).collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.1));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_pad_to_the_multiple_with_a_zero_mask_but_never_past_max_len() {
        let batch = vec![vec![5u32; 5], vec![7u32; 3]];
        let (ids, mask) = padded_inputs(&batch, 8, 64).unwrap();
        assert_eq!(ids.shape(), [2, 8]);
        let mask = mask.try_as_plain_ram().unwrap().as_slice::<i64>().unwrap().to_vec();
        assert_eq!(mask, [[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 0, 0, 0]].concat());
        assert_eq!(padded_inputs(&batch, 8, 6).unwrap().0.shape(), [2, 6], "capped at max_seq_len");
        assert_eq!(padded_inputs(&batch, 1, 64).unwrap().0.shape(), [2, 5], "1: the longest sample");
        assert_eq!(padded_inputs(&[vec![1u32; 16]], 8, 64).unwrap().0.shape(), [1, 16]);
    }
}
