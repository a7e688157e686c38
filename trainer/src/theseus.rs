//! BERT-of-Theseus (Xu et al. 2020): successor layers progressively replace
//! blocks of the frozen predecessor's layers. Each successor layer stands for
//! L/n predecessor layers; per step and per module a Bernoulli(p) draw picks
//! which one runs, with p following a schedule. `Proportional` is the seed's
//! stable variant: a p-weighted sum of both outputs instead of a draw.

use crate::model::bert::attention_bias;
use crate::model::SequenceClassifier;
use anyhow::{bail, Result};
use candle_core::Tensor;
use rand::{rngs::StdRng, Rng, SeedableRng};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheduler {
    /// p = rate for `replace_steps` steps, then 1 (successor-only fine-tuning).
    Constant { rate: f64, replace_steps: usize },
    /// p_t = min(1, k·t + b).
    Linear { k: f64, b: f64 },
}

impl Scheduler {
    pub fn rate(&self, step: usize) -> f64 {
        match *self {
            Self::Constant { rate, replace_steps } => if step < replace_steps { rate } else { 1.0 },
            Self::Linear { k, b } => (k * step as f64 + b).clamp(0.0, 1.0),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    Bernoulli,
    Proportional,
}

/// Predecessor layers per successor layer; the ratio must divide.
pub fn block_size(predecessor_layers: usize, successor_layers: usize) -> Result<usize> {
    if successor_layers == 0 || successor_layers > predecessor_layers {
        bail!("--layers {successor_layers} must be between 1 and the predecessor's {predecessor_layers} layers");
    }
    if !predecessor_layers.is_multiple_of(successor_layers) {
        bail!(
            "the predecessor's {predecessor_layers} layers cannot be split into {successor_layers} equal blocks \
             (the ratio must divide)"
        );
    }
    Ok(predecessor_layers / successor_layers)
}

/// Logits of the mixed model. `p` is the probability (or weight) of each
/// successor module; `seed` makes the draws reproducible (and resumable).
pub fn mixed_forward(
    successor: &SequenceClassifier,
    predecessor: &SequenceClassifier,
    (ids, mask): (&Tensor, &Tensor),
    p: f64,
    mix: Mix,
    seed: u64,
    train: bool,
) -> Result<Tensor> {
    let n = successor.model.bert.layers.len();
    let r = block_size(predecessor.model.bert.layers.len(), n)?;
    let bias = attention_bias(mask)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut x = successor.model.bert.embeddings.forward(ids, train)?;
    for i in 0..n {
        let succ = |x: &Tensor| successor.model.bert.layers[i].forward(x, &bias, train);
        let pred = |x: &Tensor| -> candle_core::Result<Tensor> {
            let mut y = x.clone();
            for layer in &predecessor.model.bert.layers[i * r..(i + 1) * r] {
                y = layer.forward(&y, &bias, train)?;
            }
            Ok(y)
        };
        x = match mix {
            _ if p >= 1.0 => succ(&x)?,
            _ if p <= 0.0 => pred(&x)?,
            Mix::Bernoulli => {
                if rng.random::<f64>() < p { succ(&x)? } else { pred(&x)? }
            }
            Mix::Proportional => ((succ(&x)? * p)? + (pred(&x)? * (1.0 - p))?)?,
        };
    }
    Ok(successor.model.classify(&x, train)?)
}
