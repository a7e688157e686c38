//! Turning a dataset into training batches: tokenized once, shuffled per
//! epoch with length-sorted windows, padded per batch.

use crate::model::SequenceClassifier;
use anyhow::{Context, Result};
use bundle::dataset::read_dataset;
use candle_core::Tensor;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use std::path::Path;

/// A dataset tokenized once, ready for batching.
pub struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

pub fn encode_dataset(model: &SequenceClassifier, path: &Path, max_len: usize) -> Result<Encoded> {
    let examples = read_dataset(path)?;
    let labels = model.labels.encode(&examples, path)?;
    let mut tok = model.tokenizer.clone();
    crate::tokenize::set_max_len(&mut tok, max_len)?;
    let ids = examples
        .iter()
        .map(|e| crate::tokenize::encode_ids(&tok, &e.text).with_context(|| format!("{}:{}", path.display(), e.line)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Encoded { ids, labels })
}

/// Batches for one epoch: shuffled, then sorted by length inside windows of 50
/// batches so padding stays small, then the batch order shuffled again.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    let mut batches = Vec::new();
    for window in order.chunks(batch_size * 50) {
        let mut window = window.to_vec();
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// Padded ids, mask and labels of the examples `idx`.
pub fn batch(model: &SequenceClassifier, data: &Encoded, idx: &[usize]) -> Result<(Tensor, Tensor, Tensor)> {
    let rows: Vec<&[u32]> = idx.iter().map(|&i| data.ids[i].as_slice()).collect();
    let (ids, mask) = model.batch_tensors(&rows)?;
    let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i]).collect();
    Ok((ids, mask, Tensor::new(labels, &model.device)?))
}

/// FastBERT's split-repeat-shuffle augmentation: clause-shuffled copies of the
/// training texts, keeping their labels (used only by `--with-ce`).
pub fn augment_training_set(model: &SequenceClassifier, path: &Path, max_len: usize, seed: u64, train: &mut Encoded) -> Result<()> {
    let examples = read_dataset(path)?;
    let labels = model.labels.encode(&examples, path)?;
    let mut tok = model.tokenizer.clone();
    crate::tokenize::set_max_len(&mut tok, max_len)?;
    let mut added = 0;
    for (e, label) in examples.iter().zip(labels) {
        for text in crate::fastbert::augment(std::slice::from_ref(&e.text), seed ^ e.line as u64) {
            train.ids.push(crate::tokenize::encode_ids(&tok, &text)?);
            train.labels.push(label);
            added += 1;
        }
    }
    eprintln!("augmentation added {added} clause-shuffled copies to {} training texts", examples.len());
    Ok(())
}

