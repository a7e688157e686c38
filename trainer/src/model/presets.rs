//! Configurations for models trained from scratch.

use super::bert::{Config, HiddenAct};
use anyhow::{bail, Result};
use std::collections::BTreeMap;

pub const PRESETS: [&str; 4] = ["tiny", "small-4", "small-12", "base-12"];

/// `tiny` trains in seconds (CI), `small-4` is a third of `small-12` (quick
/// pretraining comparisons), `small-12` is the 12-layer teacher sized for two
/// CPU cores, `base-12` has bert-base's shape for GPUs.
pub fn preset(name: &str, vocab_size: usize) -> Result<Config> {
    let (layers, hidden, heads, intermediate, max_pos) = match name {
        "tiny" => (2, 32, 2, 64, 128),
        "small-4" => (4, 128, 2, 512, 128),
        "small-12" => (12, 128, 2, 512, 128),
        "base-12" => (12, 768, 12, 3072, 512),
        other => bail!("unknown preset {other:?}; expected one of {PRESETS:?}"),
    };
    Ok(Config {
        vocab_size,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: intermediate,
        hidden_act: HiddenAct::Gelu,
        hidden_dropout_prob: 0.1,
        attention_probs_dropout_prob: 0.1,
        max_position_embeddings: max_pos,
        type_vocab_size: 2,
        initializer_range: 0.02,
        layer_norm_eps: 1e-12,
        pad_token_id: 0,
        model_type: "bert".into(),
        architectures: vec![],
        id2label: BTreeMap::new(),
        label2id: BTreeMap::new(),
        exit_branches: None,
    })
}
