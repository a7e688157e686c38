//! FastBERT self-distillation (Liu et al. 2020): with the backbone and its
//! classifier frozen, each branch classifier learns to match the final
//! classifier's distribution: Σ_i KL(p_final ‖ p_i), optionally plus gold CE
//! per branch (the seed's variant).
//!
//! The joint variant trains the backbone with its exits instead (PABEE, Zhou et
//! al. 2020): gold-label cross-entropy at every exit, exit k weighted by k, so
//! the early layers learn features an early branch can classify from.

use crate::model::bert::attention_bias;
use crate::model::SequenceClassifier;
use anyhow::{Context, Result};
use candle_core::{Tensor, D};

/// Self-distillation loss of all branches for one batch (batch mean).
pub fn branch_loss(model: &SequenceClassifier, (ids, mask, labels): (&Tensor, &Tensor, &Tensor), with_ce: bool) -> Result<Tensor> {
    let bert = &model.model.bert;
    let bias = attention_bias(mask)?;
    // The backbone is frozen: run it without dropout and cut the graph.
    let mut x = bert.embeddings.forward(ids, false)?.detach();
    let mut hidden = Vec::with_capacity(bert.layers.len());
    for layer in &bert.layers {
        x = layer.forward(&x, &bias, false)?.detach();
        hidden.push(x.clone());
    }
    let final_logits = model.model.classify(&x, false)?.detach();
    let log_p_final = candle_nn::ops::log_softmax(&final_logits, D::Minus1)?;
    let p_final = log_p_final.exp()?;
    let mut total: Option<Tensor> = None;
    for (i, h) in hidden.iter().take(model.model.branches.len()).enumerate() {
        let logits = model.model.branches[i].forward(h, &bias)?;
        let log_p = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let mut loss = (&p_final * (&log_p_final - &log_p)?)?.sum(D::Minus1)?.mean_all()?;
        if with_ce {
            loss = (loss + candle_nn::loss::cross_entropy(&logits, labels)?)?;
        }
        total = Some(match total {
            Some(t) => (t + loss)?,
            None => loss,
        });
    }
    total.ok_or_else(|| anyhow::anyhow!("the model has no branch classifiers to train"))
}

/// Joint training of the backbone, its classifier and the branches: the mean of
/// the exits' cross-entropies weighted by depth, Σ_k k·CE_k / Σ_k k, where
/// exit k is the branch after layer k and the last exit the final classifier.
/// `train` turns dropout on.
pub fn joint_loss(model: &SequenceClassifier, (ids, mask, labels): (&Tensor, &Tensor, &Tensor), train: bool) -> Result<Tensor> {
    let m = &model.model;
    if !m.has_branches() {
        anyhow::bail!("the model has no branch classifiers to train");
    }
    let layers = m.bert.layers.len();
    let bias = attention_bias(mask)?;
    let mut x = m.bert.embeddings.forward(ids, train)?;
    let mut total: Option<Tensor> = None;
    for (k, layer) in m.bert.layers.iter().enumerate() {
        x = layer.forward(&x, &bias, train)?;
        let logits = if k + 1 == layers { m.classify(&x, train)? } else { m.branches[k].forward(&x, &bias)? };
        let ce = (candle_nn::loss::cross_entropy(&logits, labels)? * (k + 1) as f64)?;
        total = Some(match total {
            Some(t) => (t + ce)?,
            None => ce,
        });
    }
    let weights = layers * (layers + 1) / 2;
    Ok((total.context("the model has no layers")? / weights as f64)?)
}

/// Split-repeat-shuffle augmentation (the seed's): a text is cut at
/// punctuation into clauses, and a copy with the clauses in another order is
/// added. Self-distillation needs no labels, so every copy is usable.
pub fn augment(texts: &[String], seed: u64) -> Vec<String> {
    use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for t in texts {
        let clauses: Vec<&str> = t
            .split_inclusive(['，', '。', '！', '？', '；', ',', '.', '!', '?', ';'])
            .filter(|c| !c.trim().is_empty())
            .collect();
        if clauses.len() < 2 {
            continue;
        }
        let mut shuffled = clauses.clone();
        shuffled.shuffle(&mut rng);
        if shuffled != clauses {
            out.push(shuffled.concat());
        }
    }
    out
}
