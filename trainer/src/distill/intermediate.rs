//! Intermediate-layer distillation: besides the logits, the student matches
//! the inside of the teacher — each student layer's hidden states (MSE as in
//! TinyBERT and BERT-PKD, or cosine distance) and attention scores (TinyBERT's
//! MSE on q·kᵀ/√d) of a chosen teacher layer. Padding positions are left out
//! of every mean.

use super::LayerPick;
use crate::model::bert::{linear, Config, Internals, Linear};
use anyhow::{bail, Result};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HiddenLoss {
    Mse,
    Cosine,
}

impl std::str::FromStr for HiddenLoss {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "mse" => Ok(Self::Mse),
            "cosine" => Ok(Self::Cosine),
            other => bail!("--hidden-loss {other:?}: expected mse or cosine"),
        }
    }
}

/// What `trainer distill` matches besides the logits.
#[derive(Debug, Clone, PartialEq)]
pub struct IntermediateSpec {
    /// Hidden-state loss and its weight.
    pub hidden: Option<(HiddenLoss, f64)>,
    /// Weight of the attention-score loss.
    pub attention: Option<f64>,
    /// Teacher layer matched by each student layer.
    pub layers: LayerPick,
    /// Learn a linear map from the student's width to the teacher's (needed when they differ).
    pub project: bool,
}

/// Mean squared error over the hidden dimension and the valid tokens.
/// `mask`: (batch, seq) 1 for tokens, 0 for padding.
pub fn hidden_mse(student: &Tensor, teacher: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let width = student.dim(2)? as f64;
    let sq = (student - teacher.detach())?.sqr()?.broadcast_mul(&m)?.sum_all()?;
    Ok((sq / (m.sum_all()?.to_scalar::<f32>()? as f64 * width).max(1.0))?)
}

/// Mean cosine distance 1 − cos(s, t) of the valid tokens' hidden vectors.
pub fn hidden_cosine(student: &Tensor, teacher: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let m = mask.to_dtype(DType::F32)?;
    let t = teacher.detach();
    let dot = (student * &t)?.sum(2)?;
    let norms = ((student.sqr()?.sum(2)? * t.sqr()?.sum(2)?)?.sqrt()? + 1e-8)?;
    let distance = (1.0 - (dot / norms)?)?;
    Ok((distance.mul(&m)?.sum_all()? / (m.sum_all()?.to_scalar::<f32>()? as f64).max(1.0))?)
}

/// MSE of attention scores (batch, heads, seq, seq) over every head and the
/// pairs of valid tokens.
pub fn attention_mse(student: &Tensor, teacher: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let (b, heads, s, _) = student.dims4()?;
    if teacher.dims4()?.1 != heads {
        bail!("attention loss: the student has {heads} heads, the teacher {}; they must match", teacher.dims4()?.1);
    }
    let m = mask.to_dtype(DType::F32)?;
    let pairs = m.reshape((b, 1, s, 1))?.broadcast_mul(&m.reshape((b, 1, 1, s))?)?;
    let sq = (student - teacher.detach())?.sqr()?.broadcast_mul(&pairs)?.sum_all()?;
    Ok((sq / (pairs.sum_all()?.to_scalar::<f32>()? as f64 * heads as f64).max(1.0))?)
}

/// The intermediate losses, ready to apply to a student and teacher pass.
pub struct IntermediateLoss {
    spec: IntermediateSpec,
    /// Teacher layer for each student layer.
    map: Vec<usize>,
    projection: Option<Linear>,
}

impl IntermediateLoss {
    /// Checks the shapes and, with `spec.project`, adds the projection to the
    /// student's parameters (`distill.hidden_projection`).
    pub fn new(spec: IntermediateSpec, student: &Config, teacher: &Config, student_vars: &VarMap, device: &Device) -> Result<Self> {
        let map = spec.layers.indices(teacher.num_hidden_layers, student.num_hidden_layers)?;
        if map.is_empty() {
            bail!("intermediate losses need a layer mapping (first, every-k or a list), not none");
        }
        let widths_differ = student.hidden_size != teacher.hidden_size;
        if spec.hidden.is_some() && widths_differ && !spec.project {
            bail!(
                "the teacher's hidden size {} differs from the student's {}: add --project-hidden to learn a projection",
                teacher.hidden_size, student.hidden_size
            );
        }
        if spec.attention.is_some() && student.num_attention_heads != teacher.num_attention_heads {
            bail!(
                "--attention-loss needs as many heads in the student ({}) as in the teacher ({})",
                student.num_attention_heads, teacher.num_attention_heads
            );
        }
        let projection = if spec.project {
            let vb = VarBuilder::from_varmap(student_vars, DType::F32, device);
            Some(linear(student.hidden_size, teacher.hidden_size, vb.pp("distill.hidden_projection"), student)?)
        } else {
            None
        };
        Ok(Self { spec, map, projection })
    }

    /// The weighted sum of the asked-for losses over all student layers (layer mean).
    pub fn loss(&self, student: &Internals, teacher: &Internals, mask: &Tensor) -> Result<Tensor> {
        let mut total = Tensor::new(0f32, mask.device())?;
        let layers = self.map.len() as f64;
        for (s, &t) in self.map.iter().enumerate() {
            if let Some((kind, weight)) = self.spec.hidden {
                let h = match &self.projection {
                    Some(p) => p.forward(&student.hidden[s])?,
                    None => student.hidden[s].clone(),
                };
                let l = match kind {
                    HiddenLoss::Mse => hidden_mse(&h, &teacher.hidden[t], mask)?,
                    HiddenLoss::Cosine => hidden_cosine(&h, &teacher.hidden[t], mask)?,
                };
                total = (total + (l * (weight / layers))?)?;
            }
            if let Some(weight) = self.spec.attention {
                let l = attention_mse(&student.scores[s], &teacher.scores[t], mask)?;
                total = (total + (l * (weight / layers))?)?;
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
    }

    fn scalar(x: Tensor) -> f32 {
        x.to_scalar::<f32>().unwrap()
    }

    // One sequence of three tokens, the last one padding; hidden size 2.
    fn mask() -> Tensor {
        Tensor::new(&[[1u32, 1, 0]], &Device::Cpu).unwrap()
    }

    #[test]
    fn hidden_mse_matches_the_hand_value_and_ignores_padding() {
        let s = t(&[1., 2., 0., 0., 100., 100.], &[1, 3, 2]);
        let te = t(&[0., 0., 3., 4., 0., 0.], &[1, 3, 2]);
        // valid tokens: (1² + 2²) + (3² + 4²) = 30 over 2 tokens × 2 dims
        assert!((scalar(hidden_mse(&s, &te, &mask()).unwrap()) - 7.5).abs() < 1e-6);
    }

    #[test]
    fn hidden_cosine_matches_the_hand_value() {
        let s = t(&[1., 0., 1., 1., 9., 9.], &[1, 3, 2]);
        let te = t(&[0., 1., 2., 2., 1., 0.], &[1, 3, 2]);
        // token 1: orthogonal → 1; token 2: parallel → 0; mean over 2 valid tokens = 0.5
        assert!((scalar(hidden_cosine(&s, &te, &mask()).unwrap()) - 0.5).abs() < 1e-6);
    }

    #[test]
    fn attention_mse_matches_the_hand_value_over_valid_pairs() {
        // 1 sequence, 1 head, 3×3 scores; only the top-left 2×2 block is valid.
        let s = t(&[1., 2., 50., 3., 4., 50., 50., 50., 50.], &[1, 1, 3, 3]);
        let te = t(&[0., 0., 0., 0., 0., 0., 0., 0., 0.], &[1, 1, 3, 3]);
        // (1 + 4 + 9 + 16) / 4 pairs = 7.5
        assert!((scalar(attention_mse(&s, &te, &mask()).unwrap()) - 7.5).abs() < 1e-6);
    }

    fn config(hidden: usize, heads: usize, layers: usize) -> Config {
        let mut c = crate::model::presets::preset("tiny", 50).unwrap();
        c.hidden_size = hidden;
        c.num_attention_heads = heads;
        c.num_hidden_layers = layers;
        c
    }

    #[test]
    fn a_width_mismatch_without_projection_is_refused_and_works_with_one() {
        let spec = IntermediateSpec { hidden: Some((HiddenLoss::Mse, 1.0)), attention: None, layers: LayerPick::EveryK, project: false };
        let vars = VarMap::new();
        let err = IntermediateLoss::new(spec.clone(), &config(16, 2, 2), &config(32, 2, 4), &vars, &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("hidden size 32") && err.contains("16") && err.contains("--project-hidden"), "{err}");
        let projected = IntermediateSpec { project: true, ..spec };
        IntermediateLoss::new(projected, &config(16, 2, 2), &config(32, 2, 4), &vars, &Device::Cpu).unwrap();
        assert!(vars.data().lock().unwrap().contains_key("distill.hidden_projection.weight"));
    }

    #[test]
    fn attention_loss_needs_equal_head_counts() {
        let spec = IntermediateSpec { hidden: None, attention: Some(1.0), layers: LayerPick::First, project: false };
        let err = IntermediateLoss::new(spec, &config(32, 4, 2), &config(32, 2, 4), &VarMap::new(), &Device::Cpu).err().unwrap().to_string();
        assert!(err.contains("heads"), "{err}");
    }
}
