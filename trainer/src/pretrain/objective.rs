//! What a pretraining objective supplies to the loop in `mod.rs`: the loss of
//! a masked batch, the held-out evaluation, and how its model is saved. The
//! masked LM (BERT) and replaced-token detection (ELECTRA, `electra.rs`)
//! implement it.

use super::corpus::Segment;
use super::masking::Masking;
use crate::model::mlm::MaskedLanguageModel;
use anyhow::Result;
use candle_core::{Device, Tensor, D};
use candle_nn::VarMap;
use rand::{rngs::StdRng, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// A batch of segments with BERT's masking applied, padded to its longest segment.
pub struct MaskedBatch {
    /// (batch, seq) model input: the masked ids.
    pub ids: Tensor,
    /// (batch, seq) 0/1 attention mask.
    pub mask: Tensor,
    /// Flat (batch·seq) indices of the positions to predict.
    pub positions: Tensor,
    /// Their original ids.
    pub targets: Tensor,
    /// The unmasked ids, flat (batch·seq), padding included.
    pub original: Vec<u32>,
    pub shape: (usize, usize),
}

impl MaskedBatch {
    /// How many positions the batch predicts: the terms its masked-LM loss averages over.
    pub fn predictions(&self) -> usize {
        self.targets.dims().first().copied().unwrap_or(0)
    }

    /// Draws the masks for `segments` from `rng`.
    pub fn new(segments: &[&Segment], masking: &Masking, pad: u32, device: &Device, rng: &mut StdRng) -> Result<Self> {
        let width = segments.iter().map(|s| s.ids.len()).max().unwrap_or(1);
        let (mut ids, mut mask, mut original) = (Vec::new(), Vec::new(), Vec::new());
        let (mut positions, mut targets) = (Vec::new(), Vec::new());
        for (row, seg) in segments.iter().enumerate() {
            let (inputs, predict) = masking.apply(seg, rng);
            let padding = width - inputs.len();
            ids.extend_from_slice(&inputs);
            ids.extend(std::iter::repeat_n(pad, padding));
            original.extend_from_slice(&seg.ids);
            original.extend(std::iter::repeat_n(pad, padding));
            mask.extend(std::iter::repeat_n(1u32, inputs.len()));
            mask.extend(std::iter::repeat_n(0u32, padding));
            for (i, id) in predict {
                positions.push((row * width + i) as u32);
                targets.push(id);
            }
        }
        let shape = (segments.len(), width);
        let n = positions.len();
        Ok(Self {
            ids: Tensor::from_vec(ids, shape, device)?,
            mask: Tensor::from_vec(mask, shape, device)?,
            positions: Tensor::from_vec(positions, n, device)?,
            targets: Tensor::from_vec(targets, n, device)?,
            original,
            shape,
        })
    }
}

/// A step's loss: the total that is optimised and its parts, for the log.
pub struct StepLoss {
    pub total: Tensor,
    /// (generator MLM, discriminator) for ELECTRA.
    pub parts: Option<(Tensor, Tensor)>,
}

/// Held-out metrics: the masked LM's (the generator's, for ELECTRA) and, for
/// ELECTRA, the discriminator's over every real token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Heldout {
    pub mlm_loss: f64,
    pub mlm_accuracy: f64,
    pub predictions: usize,
    pub discriminator: Option<DiscriminatorMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiscriminatorMetrics {
    /// Mean binary cross-entropy over real (non-padding) tokens.
    pub loss: f64,
    /// Share of real tokens classified right (replaced or original).
    pub accuracy: f64,
    /// Share of real tokens the generator's samples replaced.
    pub replaced_share: f64,
    /// Share of replaced tokens the discriminator found.
    pub replaced_recall: f64,
}

/// The seed of the held-out masks: every evaluation sees the same positions.
pub const HELDOUT_SEED: u64 = 0x5EED;

/// `Sync`: a batch cut into shards (`--shards`) runs the one model on several threads.
pub trait PretrainingModel: Sync {
    fn varmap(&self) -> &VarMap;
    fn tokenizer(&self) -> &tokenizers::Tokenizer;
    fn pad_id(&self) -> u32;
    fn device(&self) -> &Device;
    /// The loss of one batch; `rng` continues the step's generator (ELECTRA samples from it).
    fn loss(&self, batch: &MaskedBatch, rng: &mut StdRng, train: bool) -> Result<StepLoss>;
    fn evaluate(&self, segments: &[Segment], masking: &Masking, batch_size: usize) -> Result<Heldout>;
    /// Writes the whole output directory (config, tokenizer, weights).
    fn save(&self, dir: &Path) -> Result<()>;
    /// Rewrites the weights of the output directory.
    fn save_weights(&self, dir: &Path) -> Result<()>;
}

/// Loss and correct count of vocabulary `logits` against `targets`.
pub fn mlm_loss_and_correct(logits: &Tensor, targets: &Tensor) -> Result<(Tensor, usize)> {
    let loss = candle_nn::loss::cross_entropy(logits, targets)?;
    let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
    let gold: Vec<u32> = targets.to_vec1()?;
    Ok((loss, predicted.iter().zip(&gold).filter(|(p, g)| p == g).count()))
}

/// Runs `eval` over `segments` in batches with masks from [`HELDOUT_SEED`],
/// and averages the masked-LM loss and accuracy it returns.
pub fn masked_eval(
    segments: &[Segment],
    masking: &Masking,
    batch_size: usize,
    (pad, device): (u32, &Device),
    mut eval: impl FnMut(&MaskedBatch, &mut StdRng) -> Result<(f64, usize)>,
) -> Result<Heldout> {
    let mut rng = StdRng::seed_from_u64(HELDOUT_SEED);
    let (mut loss_sum, mut correct, mut n) = (0f64, 0usize, 0usize);
    for chunk in segments.chunks(batch_size.max(1)) {
        let refs: Vec<&Segment> = chunk.iter().collect();
        let batch = MaskedBatch::new(&refs, masking, pad, device, &mut rng)?;
        let count = batch.targets.dim(0)?;
        let (loss, right) = eval(&batch, &mut rng)?;
        loss_sum += loss * count as f64;
        correct += right;
        n += count;
    }
    let n_f = n.max(1) as f64;
    Ok(Heldout { mlm_loss: loss_sum / n_f, mlm_accuracy: correct as f64 / n_f, predictions: n, discriminator: None })
}

impl PretrainingModel for MaskedLanguageModel {
    fn varmap(&self) -> &VarMap {
        &self.varmap
    }
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer
    }
    fn pad_id(&self) -> u32 {
        self.config.pad_token_id as u32
    }
    fn device(&self) -> &Device {
        &self.device
    }

    fn loss(&self, b: &MaskedBatch, _rng: &mut StdRng, train: bool) -> Result<StepLoss> {
        let logits = self.model.masked_logits(&b.ids, &b.mask, &b.positions, train)?;
        Ok(StepLoss { total: candle_nn::loss::cross_entropy(&logits, &b.targets)?, parts: None })
    }

    fn evaluate(&self, segments: &[Segment], masking: &Masking, batch_size: usize) -> Result<Heldout> {
        masked_eval(segments, masking, batch_size, (self.pad_id(), &self.device), |b, _| {
            let logits = self.model.masked_logits(&b.ids, &b.mask, &b.positions, false)?;
            let (loss, correct) = mlm_loss_and_correct(&logits, &b.targets)?;
            Ok((loss.to_scalar::<f32>()? as f64, correct))
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        MaskedLanguageModel::save(self, dir)
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        MaskedLanguageModel::save_weights(self, &dir.join("model.safetensors"))
    }
}
