//! Early-exit evaluation: runs the model layer by layer on a shrinking batch
//! and really stops computing for samples that exit (samples leave the batch;
//! when none is left, no further layer runs). The exit rules are
//! `bundle::exit`, so the trainer and the device decide alike.

use crate::metrics::{self, EvalReport};
use crate::model::bert::attention_bias;
use crate::model::SequenceClassifier;
use crate::train::batching::{batch, Encoded};
use anyhow::{bail, Result};
use candle_core::Tensor;
use bundle::exit::{argmax, softmax, ExitDecider, ExitPolicy};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ExitReport {
    pub policy: ExitPolicy,
    #[serde(flatten)]
    pub eval: EvalReport,
    /// Encoder layers run per sample, on average.
    pub mean_layers: f64,
    /// `exit_histogram[i]`: samples that exited after layer i+1.
    pub exit_histogram: Vec<usize>,
    /// Total encoder-layer executions (one layer on one sample counts 1).
    pub layers_run: usize,
    /// FLOPs of the full-depth model divided by the FLOPs spent (≥ 1 when exits save work).
    pub flop_speedup: f64,
    /// Accuracy of every exit on every sample (only with the `Full` policy).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exit_accuracy: Vec<f64>,
}

/// Multiply-accumulate count ×2 of one encoder layer on `s` tokens.
fn layer_flops(model: &SequenceClassifier, s: usize) -> f64 {
    let (h, i, s) = (model.config.hidden_size as f64, model.config.intermediate_size as f64, s as f64);
    2.0 * s * (4.0 * h * h + 2.0 * h * i) + 4.0 * s * s * h
}

fn exit_flops(model: &SequenceClassifier, layer: usize, s: usize) -> f64 {
    let (h, s) = (model.config.hidden_size as f64, s as f64);
    let labels = model.labels.len() as f64;
    match (&model.config.exit_branches, layer + 1 == model.config.num_hidden_layers) {
        (Some(b), false) => {
            let bh = b.hidden_size as f64;
            2.0 * s * (h * bh + 2.0 * bh * bh) + 4.0 * s * bh + 2.0 * bh * (bh + bh + labels)
        }
        _ => 2.0 * h * (h + labels),
    }
}

pub fn evaluate_with_exits(
    model: &SequenceClassifier,
    data: &Encoded,
    batch_size: usize,
    policy: ExitPolicy,
) -> Result<ExitReport> {
    let n_layers = model.model.bert.layers.len();
    if !model.model.has_branches() && policy != ExitPolicy::Full {
        bail!("this model has no exit branches (only the final classifier): use the full policy or a FastBERT model");
    }
    let full = policy == ExitPolicy::Full;
    let mut order: Vec<usize> = (0..data.ids.len()).collect();
    order.sort_by_key(|&i| data.ids[i].len());
    let mut pred = vec![0u32; data.ids.len()];
    let mut exit_correct = vec![0usize; if full && model.model.has_branches() { n_layers } else { 0 }];
    let mut histogram = vec![0usize; n_layers];
    let (mut layers_run, mut flops_spent, mut flops_full) = (0usize, 0f64, 0f64);
    let mut loss_sum = 0f64; // cross-entropy of the exit each sample took
    for chunk in order.chunks(batch_size) {
        let (ids, mask, _) = batch(model, data, chunk)?;
        let mut active: Vec<usize> = chunk.to_vec(); // dataset indices still in the batch
        let mut deciders: Vec<ExitDecider> = chunk.iter().map(|_| ExitDecider::new(policy)).collect();
        let mut mask = mask;
        let mut x = model.model.bert.embeddings.forward(&ids, false)?;
        for &i in chunk {
            let s = data.ids[i].len();
            flops_full += n_layers as f64 * layer_flops(model, s) + exit_flops(model, n_layers - 1, s);
        }
        for layer in 0..n_layers {
            let bias = attention_bias(&mask)?;
            x = model.model.bert.layers[layer].forward(&x, &bias, false)?;
            layers_run += x.dim(0)?; // rows the layer really computed
            let last = layer + 1 == n_layers;
            if !last && !model.model.has_branches() {
                for &i in &active {
                    flops_spent += layer_flops(model, data.ids[i].len());
                }
                continue;
            }
            let logits: Vec<Vec<f32>> = model.model.exit_logits(layer, &x, &bias)?.to_vec2()?;
            let mut keep = Vec::with_capacity(active.len());
            for (row, (&i, decider)) in active.iter().zip(deciders.iter_mut()).enumerate() {
                let s = data.ids[i].len();
                flops_spent += layer_flops(model, s) + exit_flops(model, layer, s);
                let probs = softmax(&logits[row]);
                if !exit_correct.is_empty() && argmax(&probs) as u32 == data.labels[i] {
                    exit_correct[layer] += 1;
                }
                if last || decider.should_exit(&probs) {
                    pred[i] = argmax(&probs) as u32;
                    loss_sum -= (probs[data.labels[i] as usize].max(1e-12) as f64).ln();
                    histogram[layer] += 1;
                } else {
                    keep.push(row);
                }
            }
            if keep.is_empty() {
                break; // nobody left: the remaining layers are never run
            }
            if keep.len() < active.len() {
                let rows = Tensor::new(keep.iter().map(|&r| r as u32).collect::<Vec<_>>(), x.device())?;
                x = x.index_select(&rows, 0)?;
                mask = mask.index_select(&rows, 0)?;
                active = keep.iter().map(|&r| active[r]).collect();
                deciders = keep.iter().map(|&r| deciders[r].clone()).collect();
            }
        }
    }
    let n = data.ids.len();
    Ok(ExitReport {
        policy,
        eval: metrics::report(&data.labels, &pred, &model.labels.labels, loss_sum / n.max(1) as f64),
        mean_layers: layers_run as f64 / n.max(1) as f64,
        exit_histogram: histogram,
        layers_run,
        flop_speedup: if flops_spent > 0.0 { flops_full / flops_spent } else { 1.0 },
        exit_accuracy: exit_correct.iter().map(|&c| c as f64 / n.max(1) as f64).collect(),
    })
}
