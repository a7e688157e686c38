//! `BertForSequenceClassification`: the encoder (`bert.rs`) with its pooled
//! classifier and, for FastBERT models, a branch classifier (`branch.rs`)
//! after every layer but the last.

use super::bert::{linear, BertModel, Config, Linear};
use super::branch::BranchClassifier;
use super::dropout::Dropout;
use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

/// `BertForSequenceClassification`: pooled [CLS] → dropout → linear; plus,
/// for FastBERT models, a branch classifier after every layer but the last.
pub struct BertForSequenceClassification {
    pub bert: BertModel,
    dropout: Dropout,
    classifier: Linear,
    pub branches: Vec<BranchClassifier>,
}

impl BertForSequenceClassification {
    pub fn load(vb: VarBuilder, cfg: &Config, num_labels: usize) -> Result<Self> {
        let branches = match &cfg.exit_branches {
            Some(b) => (0..cfg.num_hidden_layers.saturating_sub(1))
                .map(|i| BranchClassifier::load(vb.pp(format!("branches.{i}")), cfg, b, num_labels))
                .collect::<Result<Vec<_>>>()?,
            None => vec![],
        };
        Ok(Self {
            bert: BertModel::load(vb.pp("bert"), cfg)?,
            dropout: Dropout::new(cfg.hidden_dropout_prob as f32),
            classifier: linear(cfg.hidden_size, num_labels, vb.pp("classifier"), cfg)?,
            branches,
        })
    }

    /// Logits of the exit after layer `layer` (0-based): a branch, or the
    /// final classifier after the last layer.
    pub fn exit_logits(&self, layer: usize, hidden: &Tensor, attn_bias: &Tensor) -> Result<Tensor> {
        if layer + 1 == self.bert.layers.len() {
            self.classify(hidden, false)
        } else {
            self.branches[layer].forward(hidden, attn_bias)
        }
    }

    /// Number of exits: one per layer for FastBERT models, else only the final one.
    pub fn has_branches(&self) -> bool {
        !self.branches.is_empty()
    }

    /// Logits from final hidden states.
    pub fn classify(&self, hidden: &Tensor, train: bool) -> Result<Tensor> {
        let pooled = self.dropout.forward(&self.bert.pooled(hidden)?, train)?;
        self.classifier.forward(&pooled)
    }

    /// Logits, (batch, num_labels).
    pub fn forward(&self, input_ids: &Tensor, mask: &Tensor, train: bool) -> Result<Tensor> {
        let hidden = self.bert.forward(input_ids, mask, train)?;
        self.classify(&hidden, train)
    }
}
