//! FastBERT self-distillation (Liu et al. 2020): with the backbone and its
//! classifier frozen, each branch classifier learns to match the final
//! classifier's distribution: Σ_i KL(p_final ‖ p_i), optionally plus gold CE
//! per branch (the seed's variant).

use crate::model::bert::attention_bias;
use crate::model::SequenceClassifier;
use anyhow::Result;
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
