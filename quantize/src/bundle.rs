//! A whole bundle to int8 or f16: every graph rewritten, the other files
//! copied, a new manifest (precision, checksums, provenance) written
//! atomically, and a report of what it cost in error and bought in size.

use crate::graph::{quantize_model, GraphError, Int8Form, Target, TensorReport};
use anyhow::{Context, Result};
use bundle::atomic;
use bundle::dataset::{label_indices, read_dataset};
use bundle::exit::{argmax, replay, softmax, ExitPolicy};
use bundle::files::BundleFiles;
use bundle::manifest::{write_bundle_with, Precision, MANIFEST};
use edge_runtime::{Compute, EdgeClassifier};
use prost::Message;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tract_onnx::pb::ModelProto;

pub struct Options {
    pub target: Target,
    /// Glob patterns (`*`, `?`, `[..]`) over `graph:tensor` or `tensor`: these weights stay f32.
    pub keep_f32: Vec<String>,
    /// Labelled JSONL to compare the two bundles on (logits, labels, exits).
    pub calibration: Option<PathBuf>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GraphReport {
    pub graph: String,
    pub bytes_before: usize,
    pub bytes_after: usize,
    /// Lowest SQNR (dB) of the graph's rewritten weights (`None` if none was).
    pub min_sqnr_db: Option<f64>,
    pub max_abs_error: f32,
}

/// Per exit, the quantized bundle against the original on calibration texts.
#[derive(Debug, Clone, Serialize)]
pub struct ExitComparison {
    pub exit_layer: usize,
    pub logits_max_abs_error: f32,
    pub logits_sqnr_db: f64,
    /// Share of texts whose argmax is the same at this exit.
    pub label_agreement: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub data: String,
    pub n: usize,
    pub accuracy_before: f64,
    pub accuracy_after: f64,
    pub exits: Vec<ExitComparison>,
    /// Share of texts whose exit layer changes, per policy name, under each policy.
    pub exit_layer_changed: Vec<(String, f64)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub output: String,
    pub target: Target,
    pub bundle_bytes_before: u64,
    pub bundle_bytes_after: u64,
    pub size_ratio: f64,
    pub graphs: Vec<GraphReport>,
    pub tensors: Vec<TensorReport>,
    pub comparison: Option<Comparison>,
    /// f16 bundles: the same comparison with every graph computing in f16, as
    /// on an aarch64 CPU with f16 arithmetic (emulated, hence slow, elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comparison_f16_compute: Option<Comparison>,
    /// The digest of the input bundle and of the bundle written (what
    /// `edge-runtime --expect-digest` pins).
    pub input_digest: String,
    pub digest: String,
}

/// The report quantize leaves in the output bundle.
pub const REPORT: &str = "quantize-report.json";

/// Quantizes `input` into `output`. The new bundle is written beside
/// `output`, compared against the input there (with `calibration`), its
/// report added, and only then swapped in whole: a failure or a kill at any
/// point leaves whatever was at `output` before, complete.
pub fn quantize_bundle(input: &Path, output: &Path, opts: &Options) -> Result<Report> {
    let source = BundleFiles::read(input)?;
    let manifest = source.manifest.clone();
    // Loaded as the runtime loads it, with every check (graphs against the
    // manifest and each other, tokenizer against the embedding table, a text
    // of max_seq_len through every segment), before a weight is read: a
    // bundle that cannot run must not come out looking like one that can.
    let original = EdgeClassifier::from_bundle(&source, Compute::F32)?;
    if manifest.precision != Precision::F32 {
        anyhow::bail!("{}: already {:?}; quantize an f32 bundle", input.display(), manifest.precision);
    }
    let patterns = opts
        .keep_f32
        .iter()
        .map(|p| glob::Pattern::new(p).with_context(|| format!("--keep-f32 {p:?}: not a valid pattern")))
        .collect::<Result<Vec<_>>>()?;
    let graphs = manifest.graphs();
    let mut files = Vec::new();
    let mut tensors = Vec::new();
    let mut graph_reports = Vec::new();
    let mut before = std::fs::metadata(input.join(MANIFEST)).with_context(|| input.join(MANIFEST).display().to_string())?.len();
    for file in manifest.sha256.keys() {
        let path = input.join(file);
        let bytes = source.bytes(file).with_context(|| format!("{}: not among the bundle's verified files", path.display()))?.to_vec();
        before += bytes.len() as u64;
        if !graphs.contains(&file.as_str()) {
            files.push((file.clone(), bytes));
            continue;
        }
        let mut model = ModelProto::decode(bytes.as_slice()).with_context(|| format!("{}: not an ONNX model", path.display()))?;
        let keep = |tensor: &str| patterns.iter().any(|p| p.matches(tensor) || p.matches(&format!("{file}:{tensor}")));
        let reports = quantize_model(&mut model, file, opts.target, &keep).map_err(|e: GraphError| anyhow::anyhow!("{e}"))?;
        let out = model.encode_to_vec();
        let changed: Vec<&TensorReport> = reports.iter().filter(|r| r.stored_as != "f32").collect();
        graph_reports.push(GraphReport {
            graph: file.clone(),
            bytes_before: bytes.len(),
            bytes_after: out.len(),
            min_sqnr_db: changed.iter().map(|r| r.sqnr_db).min_by(f64::total_cmp),
            max_abs_error: changed.iter().map(|r| r.max_abs_error).fold(0.0, f32::max),
        });
        tensors.extend(reports);
        files.push((file.clone(), out));
    }
    let mut new_manifest = manifest.clone();
    new_manifest.precision = match opts.target {
        Target::F16 => Precision::F16,
        Target::Int8 { .. } => Precision::Int8,
    };
    let form = match opts.target {
        Target::F16 => "f16 weights; computed in f16 on CPUs with f16 arithmetic, else cast to f32 at load".to_string(),
        Target::Int8 { form: Int8Form::WeightOnly } => "int8 per-channel weights, DequantizeLinear → MatMul".into(),
        Target::Int8 { form: Int8Form::DynamicU8 } => "int8 per-channel weights, DynamicQuantizeLinear → MatMulInteger".into(),
        Target::Int8 { form: Int8Form::DynamicI8 } => "int8 per-channel weights, per-token symmetric int8 activations → MatMulInteger".into(),
    };
    new_manifest.provenance.insert("quantized_from".into(), input.display().to_string());
    new_manifest.provenance.insert("quantization".into(), form);
    let mut report = Report {
        input: input.display().to_string(),
        output: output.display().to_string(),
        target: opts.target,
        bundle_bytes_before: before,
        bundle_bytes_after: 0,
        size_ratio: 0.0,
        graphs: graph_reports,
        tensors,
        comparison: None,
        comparison_f16_compute: None,
        input_digest: source.digest().to_string(),
        digest: String::new(),
    };
    write_bundle_with(output, new_manifest, &files, |tmp| -> Result<()> {
        let mut after = std::fs::metadata(tmp.join(MANIFEST))?.len();
        after += files.iter().map(|(_, b)| b.len() as u64).sum::<u64>();
        report.bundle_bytes_after = after;
        report.size_ratio = after as f64 / before as f64;
        report.digest = bundle::files::written_digest(tmp)?.to_string();
        // f16 bundles are compared twice: widened to f32 at load, and computing in f16.
        let computes: &[Compute] = if opts.target == Target::F16 { &[Compute::F32, Compute::F16] } else { &[Compute::F32] };
        if let Some(data) = &opts.calibration {
            let mut comparisons = compare(&original, tmp, data, computes)?.into_iter();
            (report.comparison, report.comparison_f16_compute) = (comparisons.next(), comparisons.next());
        }
        // The report sits beside the graphs; the runtime reads only what the manifest lists.
        Ok(atomic::write_json(&tmp.join(REPORT), &report)?)
    })?;
    Ok(report)
}

/// Runs both bundles on labelled texts at every exit, the quantized one once
/// per entry of `computes` (the f32 reference runs once).
/// The f32 side is the model already loaded and checked, not read again.
pub fn compare(a: &EdgeClassifier, quantized: &Path, data: &Path, computes: &[Compute]) -> Result<Vec<Comparison>> {
    let examples = read_dataset(data)?;
    let gold = label_indices(&examples, &a.manifest.labels, data)?;
    let ids: Vec<Vec<u32>> = a.tokenize_lines(data, examples.iter().map(|e| (e.line, e.text.as_str())))?.into_iter().map(|t| t.0).collect();
    let la = exit_logits(a, &ids)?;
    computes
        .iter()
        .map(|&compute| {
            let lb = exit_logits(&EdgeClassifier::load_with(quantized, compute)?, &ids)?;
            compare_logits(&la, &lb, &gold, data)
        })
        .collect()
}

/// Logits of every exit for every text, `[layer][text][label]` (empty where a layer has no exit).
fn exit_logits(model: &EdgeClassifier, ids: &[Vec<u32>]) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut out: Vec<Vec<Vec<f32>>> = vec![Vec::new(); model.manifest.num_layers];
    for chunk in ids.chunks(32) {
        for (k, l) in model.all_exit_logits(chunk)?.into_iter().enumerate() {
            out[k].extend(l.unwrap_or_default());
        }
    }
    Ok(out)
}

fn compare_logits(la: &[Vec<Vec<f32>>], lb: &[Vec<Vec<f32>>], gold: &[usize], data: &Path) -> Result<Comparison> {
    let (n_layers, n) = (la.len(), gold.len());
    let mut exits = Vec::new();
    for k in 0..n_layers {
        if la[k].is_empty() {
            continue;
        }
        let (fa, fb): (Vec<f32>, Vec<f32>) = (la[k].concat(), lb[k].concat());
        let e = crate::numeric::error_stats(&fa, &fb).with_context(|| format!("exit {}: the two bundles' logits", k + 1))?;
        let agree = la[k].iter().zip(&lb[k]).filter(|(x, y)| argmax(x) == argmax(y)).count();
        exits.push(ExitComparison {
            exit_layer: k + 1,
            logits_max_abs_error: e.max_abs,
            logits_sqnr_db: e.sqnr_db,
            label_agreement: agree as f64 / n as f64,
        });
    }
    let last = n_layers - 1;
    let acc = |l: &[Vec<f32>]| l.iter().zip(gold).filter(|(x, g)| argmax(x) == **g).count() as f64 / n as f64;
    let mut exit_layer_changed = Vec::new();
    if exits.len() > 1 {
        let exit_of = |l: &[Vec<Vec<f32>>], i: usize, policy: ExitPolicy| {
            replay(policy, l.iter().map(|exit| (!exit.is_empty()).then(|| softmax(&exit[i])))).map(|(layer, _)| layer)
        };
        for policy in [0.1, 0.3, 0.5, 0.8].map(|speed| ExitPolicy::Entropy { speed }).into_iter().chain([1, 2].map(|n| ExitPolicy::Patience { n })) {
            let changed = (0..n).filter(|&i| exit_of(la, i, policy) != exit_of(lb, i, policy)).count();
            exit_layer_changed.push((policy.to_string(), changed as f64 / n as f64));
        }
    }
    Ok(Comparison {
        data: data.display().to_string(),
        n,
        accuracy_before: acc(&la[last]),
        accuracy_after: acc(&lb[last]),
        exits,
        exit_layer_changed,
    })
}
