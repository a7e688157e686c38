//! Evaluation of a classifier on an encoded dataset.

use super::batching::{batch, Encoded};
use crate::metrics::{self, EvalReport};
use crate::model::SequenceClassifier;
use anyhow::Result;
use candle_core::D;

/// Accuracy, macro-F1 and loss of `model` on an encoded dataset (eval mode).
pub fn evaluate(model: &SequenceClassifier, data: &Encoded, batch_size: usize) -> Result<EvalReport> {
    let mut order: Vec<usize> = (0..data.ids.len()).collect();
    order.sort_by_key(|&i| data.ids[i].len());
    let mut pred = vec![0u32; data.ids.len()];
    let mut loss_sum = 0f64;
    for idx in order.chunks(batch_size) {
        let (ids, mask, labels) = batch(model, data, idx)?;
        let logits = model.model.forward(&ids, &mask, false)?;
        loss_sum += candle_nn::loss::cross_entropy(&logits, &labels)?.to_scalar::<f32>()? as f64 * idx.len() as f64;
        let argmax: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        for (&i, p) in idx.iter().zip(argmax) {
            pred[i] = p;
        }
    }
    let loss = loss_sum / data.ids.len().max(1) as f64;
    Ok(metrics::report(&data.labels, &pred, &model.labels.labels, loss))
}

