//! Replaced-token detection (ELECTRA): the generator's masked-LM loss plus
//! λ times the discriminator's binary cross-entropy over every real token,
//! where the discriminator reads the input with the masked positions filled by
//! samples from the generator. A sample equal to the original token counts as
//! original, as in the paper. No gradient flows through the sampling.

use super::corpus::Segment;
use super::masking::Masking;
use super::objective::{masked_eval, mlm_loss_and_correct, DiscriminatorMetrics, Heldout, MaskedBatch, PretrainingModel, StepLoss};
use crate::model::electra::ElectraPretrainingModel;
use anyhow::{bail, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use rand::{rngs::StdRng, Rng};
use std::path::Path;

/// The paper's weight of the discriminator's loss.
pub const DEFAULT_DISCRIMINATOR_WEIGHT: f64 = 50.0;

pub fn check_discriminator_weight(w: f64) -> Result<()> {
    if !(w.is_finite() && w > 0.0) {
        bail!("--discriminator-weight must be a positive number, got {w}");
    }
    Ok(())
}

/// One token id per row of `logits` (n, vocab), drawn from softmax(logits).
pub fn sample_tokens(logits: &Tensor, rng: &mut impl Rng) -> Result<Vec<u32>> {
    let probs: Vec<Vec<f32>> = candle_nn::ops::softmax_last_dim(&logits.detach())?.to_vec2()?;
    Ok(probs
        .iter()
        .map(|row| {
            let u: f32 = rng.random::<f32>() * row.iter().sum::<f32>();
            let mut acc = 0f32;
            // The last index takes the rounding remainder.
            row.iter().position(|&p| {
                acc += p;
                u < acc
            })
            .unwrap_or(row.len() - 1) as u32
        })
        .collect())
}

/// The discriminator's input: `original` with `samples` written at `positions`.
pub fn corrupt(original: &[u32], positions: &[u32], samples: &[u32]) -> Vec<u32> {
    let mut ids = original.to_vec();
    for (&p, &s) in positions.iter().zip(samples) {
        ids[p as usize] = s;
    }
    ids
}

/// 1 where the discriminator's input differs from the original, else 0.
pub fn replaced_labels(original: &[u32], corrupted: &[u32]) -> Vec<f32> {
    original.iter().zip(corrupted).map(|(a, b)| (a != b) as u8 as f32).collect()
}

/// Mean binary cross-entropy with logits over the positions where `mask` is 1:
/// max(x, 0) − x·y + ln(1 + e^−|x|), the numerically stable form.
pub fn discriminator_loss(logits: &Tensor, labels: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    let per_token = ((logits.relu()? - (logits * labels)?)? + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
    Ok(((per_token * &mask)?.sum_all()? / mask.sum_all()?.to_scalar::<f32>()? as f64)?)
}

/// Generator logits, the corrupted batch and its labels for a masked batch.
pub struct Corrupted {
    /// (masked positions, vocab).
    pub generator_logits: Tensor,
    /// (batch, seq) the discriminator's input.
    pub ids: Tensor,
    /// (batch, seq) 1 where `ids` differs from the original.
    pub labels: Tensor,
}

/// Runs the generator on the masked batch and fills its masked positions with samples drawn from `rng`.
pub fn corrupt_batch(m: &ElectraPretrainingModel, b: &MaskedBatch, rng: &mut StdRng, train: bool) -> Result<Corrupted> {
    let generator_logits = m.model.generator_logits(&b.ids, &b.mask, &b.positions, train)?;
    let samples = sample_tokens(&generator_logits, rng)?;
    let positions: Vec<u32> = b.positions.to_vec1()?;
    let corrupted = corrupt(&b.original, &positions, &samples);
    let labels = Tensor::from_vec(replaced_labels(&b.original, &corrupted), b.shape, &m.device)?;
    Ok(Corrupted { generator_logits, ids: Tensor::from_vec(corrupted, b.shape, &m.device)?, labels })
}

/// ELECTRA's objective around the model, with its discriminator weight λ.
pub struct Electra {
    pub model: ElectraPretrainingModel,
    pub discriminator_weight: f64,
}

impl PretrainingModel for Electra {
    fn varmap(&self) -> &VarMap {
        &self.model.varmap
    }
    fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.model.tokenizer
    }
    fn pad_id(&self) -> u32 {
        self.model.config.pad_token_id as u32
    }
    fn device(&self) -> &Device {
        &self.model.device
    }

    fn loss(&self, b: &MaskedBatch, rng: &mut StdRng, train: bool) -> Result<StepLoss> {
        let c = corrupt_batch(&self.model, b, rng, train)?;
        let generator = candle_nn::loss::cross_entropy(&c.generator_logits, &b.targets)?;
        let logits = self.model.model.discriminator_logits(&c.ids, &b.mask, train)?;
        let discriminator = discriminator_loss(&logits, &c.labels, &b.mask)?;
        let total = (&generator + (&discriminator * self.discriminator_weight)?)?;
        Ok(StepLoss { total, parts: Some((generator, discriminator)) })
    }

    fn evaluate(&self, segments: &[Segment], masking: &Masking, batch_size: usize) -> Result<Heldout> {
        let (mut loss_sum, mut tokens, mut right, mut replaced, mut found) = (0f64, 0f64, 0f64, 0f64, 0f64);
        let mut heldout = masked_eval(segments, masking, batch_size, (self.pad_id(), self.device()), |b, rng| {
            let c = corrupt_batch(&self.model, b, rng, false)?;
            let (loss, correct) = mlm_loss_and_correct(&c.generator_logits, &b.targets)?;
            let logits = self.model.model.discriminator_logits(&c.ids, &b.mask, false)?;
            let n = b.mask.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as f64;
            loss_sum += discriminator_loss(&logits, &c.labels, &b.mask)?.to_scalar::<f32>()? as f64 * n;
            let said_replaced: Vec<f32> = logits.gt(0f64)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
            let labels: Vec<f32> = c.labels.flatten_all()?.to_vec1()?;
            let real: Vec<u32> = b.mask.flatten_all()?.to_vec1()?;
            for ((&s, &y), &r) in said_replaced.iter().zip(&labels).zip(&real) {
                if r == 1 {
                    right += (s == y) as u8 as f64;
                    replaced += y as f64;
                    found += (s * y) as f64;
                }
            }
            tokens += n;
            Ok((loss.to_scalar::<f32>()? as f64, correct))
        })?;
        heldout.discriminator = Some(DiscriminatorMetrics {
            loss: loss_sum / tokens.max(1.0),
            accuracy: right / tokens.max(1.0),
            replaced_share: replaced / tokens.max(1.0),
            replaced_recall: found / replaced.max(1.0),
        });
        Ok(heldout)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        self.model.save(dir)
    }

    fn save_weights(&self, dir: &Path) -> Result<()> {
        self.model.save_weights(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn replaced_labels_mark_exactly_the_changed_tokens() {
        let original = [2, 10, 11, 12, 3, 0];
        // The generator resampled positions 1, 2 and 3; at 2 it drew the original token back.
        let corrupted = corrupt(&original, &[1, 2, 3], &[40, 11, 41]);
        assert_eq!(corrupted, [2, 40, 11, 41, 3, 0]);
        assert_eq!(replaced_labels(&original, &corrupted), [0., 1., 0., 1., 0., 0.]);
    }

    #[test]
    fn samples_follow_the_generator_distribution() {
        // Row 0 puts all its mass on token 2; row 1 splits 1:3 between tokens 0 and 3.
        let logits = Tensor::new(&[[-1e4f32, -1e4, 0.0, -1e4], [0.0, -1e4, -1e4, 3f32.ln()]], &Device::Cpu).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let mut threes = 0;
        for _ in 0..4000 {
            let s = sample_tokens(&logits, &mut rng).unwrap();
            assert_eq!(s[0], 2);
            assert!(s[1] == 0 || s[1] == 3, "{s:?}");
            threes += (s[1] == 3) as usize;
        }
        assert!((threes as f64 / 4000.0 - 0.75).abs() < 0.03, "{threes}");
    }

    #[test]
    fn discriminator_loss_is_the_mean_bce_over_real_tokens() {
        let x = [[2.0f32, -1.0, 0.5], [-3.0, 12.0, 7.0]];
        let y = [[1.0f32, 0.0, 1.0], [1.0, 0.0, 0.0]];
        let m = [[1u32, 1, 1], [1, 1, 0]];
        let dev = Device::Cpu;
        let got = discriminator_loss(&Tensor::new(&x, &dev).unwrap(), &Tensor::new(&y, &dev).unwrap(), &Tensor::new(&m, &dev).unwrap())
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        // By hand: −[y ln σ(x) + (1−y) ln(1−σ(x))] over the five real tokens.
        let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
        let bce = |x: f64, y: f64| -(y * sigmoid(x).ln() + (1.0 - y) * (1.0 - sigmoid(x)).ln());
        let want = (bce(2.0, 1.0) + bce(-1.0, 0.0) + bce(0.5, 1.0) + bce(-3.0, 1.0) + bce(12.0, 0.0)) / 5.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        assert!(want > 3.0, "the confident mistake (x = 12, y = 0) dominates: {want}");
    }

    #[test]
    fn a_discriminator_weight_must_be_positive_and_finite() {
        for w in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = check_discriminator_weight(w).unwrap_err().to_string();
            assert!(e.contains("--discriminator-weight"), "{e}");
        }
        check_discriminator_weight(50.0).unwrap();
    }
}
