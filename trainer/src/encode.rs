//! `trainer encode`: token ids, the final hidden state at [CLS] and the
//! attention-masked mean of the final hidden states — what numerical parity
//! with other BERT implementations is checked on.

use crate::model::SequenceClassifier;
use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Encoding {
    pub text: String,
    pub ids: Vec<u32>,
    pub cls: Vec<f32>,
    pub mean: Vec<f32>,
}

/// Encodes one text without truncation below `max_position_embeddings`.
pub fn encode_text(model: &SequenceClassifier, text: &str) -> Result<Encoding> {
    let ids = crate::tokenize::encode_ids(&model.tokenizer, text)?;
    let limit = model.config.max_position_embeddings;
    if ids.len() > limit {
        bail!("text has {} tokens, more than max_position_embeddings {limit}", ids.len());
    }
    let (input, mask) = model.batch_tensors(&[&ids])?;
    let hidden = model.model.bert.forward(&input, &mask, false)?.squeeze(0)?; // (seq, hidden)
    let cls: Vec<f32> = hidden.get(0)?.to_vec1()?;
    let mask_f = mask.squeeze(0)?.to_dtype(candle_core::DType::F32)?.unsqueeze(1)?;
    let summed = hidden.broadcast_mul(&mask_f)?.sum(0)?;
    let mean: Vec<f32> = (summed / mask_f.sum_all()?.to_scalar::<f32>()? as f64)?.to_vec1()?;
    Ok(Encoding { text: text.to_string(), ids, cls, mean })
}

