//! Soft-label knowledge distillation (Hinton et al. 2015; Tang et al. 2019):
//! a shallow student learns from the teacher's softened logits plus the gold
//! labels, starting from the teacher's embeddings and chosen layers.

use crate::model::SequenceClassifier;
use anyhow::{bail, Context, Result};
use candle_core::{Tensor, D};
use std::path::{Path, PathBuf};

pub mod intermediate;

/// Which teacher layers initialise the student's layers.
#[derive(Debug, Clone, PartialEq)]
pub enum LayerPick {
    /// The teacher's first n layers (the seed's default).
    First,
    /// Every k-th layer, k = teacher layers / n, ending at the top layer.
    EveryK,
    /// Explicit 0-based teacher layer indices.
    List(Vec<usize>),
    /// Random initialisation: nothing copied.
    None,
}

impl std::str::FromStr for LayerPick {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "first" => Self::First,
            "every-k" => Self::EveryK,
            "none" => Self::None,
            list => Self::List(
                list.split(',')
                    .map(|x| x.trim().parse::<usize>())
                    .collect::<std::result::Result<_, _>>()
                    .with_context(|| format!("--init-from-teacher {list:?}: expected first, every-k, none or a list like 0,5,11"))?,
            ),
        })
    }
}

impl LayerPick {
    /// Teacher layer index for each student layer (empty for `None`).
    pub fn indices(&self, teacher_layers: usize, student_layers: usize) -> Result<Vec<usize>> {
        if student_layers == 0 {
            bail!("--layers must be positive");
        }
        if student_layers > teacher_layers {
            bail!("the teacher has {teacher_layers} layers, fewer than the {student_layers} asked for the student");
        }
        let picked = match self {
            Self::First => (0..student_layers).collect(),
            Self::EveryK => {
                let k = teacher_layers / student_layers;
                (1..=student_layers).map(|i| i * k - 1).collect()
            }
            Self::List(v) => {
                if v.len() != student_layers {
                    bail!("--init-from-teacher lists {} layers but --layers is {student_layers}", v.len());
                }
                if let Some(bad) = v.iter().find(|&&i| i >= teacher_layers) {
                    bail!("--init-from-teacher names layer {bad}, but the teacher has layers 0..{}", teacher_layers - 1);
                }
                v.clone()
            }
            Self::None => vec![],
        };
        Ok(picked)
    }
}

/// A student with `layers` layers and the teacher's shape otherwise. Embeddings,
/// pooler and classifier are copied from the teacher unless `pick` is `None`.
pub fn student_from_teacher(
    teacher: &SequenceClassifier,
    layers: usize,
    pick: &LayerPick,
    seed: u64,
) -> Result<SequenceClassifier> {
    let indices = pick.indices(teacher.config.num_hidden_layers, layers)?;
    let mut config = teacher.config.clone();
    config.num_hidden_layers = layers;
    let student =
        SequenceClassifier::new(config, teacher.labels.clone(), teacher.tokenizer.clone(), &teacher.device, seed)?;
    if *pick == LayerPick::None {
        return Ok(student);
    }
    {
        let from = teacher.varmap.data().lock().unwrap();
        let to = student.varmap.data().lock().unwrap();
        for (name, var) in to.iter() {
            let source = match teacher_layer_of(name) {
                Some((layer, rest)) => format!("bert.encoder.layer.{}.{rest}", indices[layer]),
                None => name.clone(),
            };
            let t = from.get(&source).with_context(|| format!("teacher lacks tensor {source}"))?;
            var.set(t.as_tensor())?;
        }
    }
    Ok(student)
}

fn teacher_layer_of(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("bert.encoder.layer.")?;
    let (idx, rest) = rest.split_once('.')?;
    Some((idx.parse().ok()?, rest))
}

/// α·CE(student, gold) + (1−α)·T²·KL(softmax(t/T) ‖ softmax(s/T)), batch mean.
/// The T² keeps the soft term's gradients on the same scale as T changes.
pub fn kd_loss(student: &Tensor, teacher: &Tensor, labels: &Tensor, temperature: f64, alpha: f64) -> Result<Tensor> {
    let ce = candle_nn::loss::cross_entropy(student, labels)?;
    if alpha >= 1.0 {
        return Ok(ce);
    }
    let log_p_s = candle_nn::ops::log_softmax(&(student / temperature)?, D::Minus1)?;
    let log_p_t = candle_nn::ops::log_softmax(&(teacher.detach() / temperature)?, D::Minus1)?;
    let kl = (log_p_t.exp()? * (log_p_t - log_p_s)?)?.sum(D::Minus1)?.mean_all()?;
    let soft = (kl * (temperature * temperature * (1.0 - alpha)))?;
    if alpha <= 0.0 {
        return Ok(soft);
    }
    Ok(((ce * alpha)? + soft)?)
}

/// Temperature at `step` of `total`: constant, or linear from `start` to `end`.
pub fn temperature_at(step: usize, total: usize, start: f64, end: Option<f64>) -> f64 {
    match end {
        Some(end) if total > 1 => start + (end - start) * step as f64 / (total - 1) as f64,
        _ => start,
    }
}

/// Where cached teacher logits for `train` live: next to the data, keyed by
/// the teacher's weights and the token limit so a stale cache is never used.
pub fn logits_cache_path(train: &Path, teacher_dir: &Path, max_len: usize) -> Result<PathBuf> {
    use sha2::{Digest, Sha256};
    let weights = teacher_dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let data = std::fs::read(train).with_context(|| format!("cannot read {}", train.display()))?;
    let mut h = Sha256::new();
    h.update(&bytes);
    h.update(&data);
    h.update(max_len.to_le_bytes());
    let key = hex::encode(&h.finalize()[..8]);
    let name = train.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(train.with_file_name(format!("{name}.teacher-logits-{key}.safetensors")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn kd_loss_matches_a_hand_computed_value() {
        // One example, two classes: s = [1, 0], t = [2, 0], gold = 0, T = 2, α = 0.5.
        let s = Tensor::new(&[[1f32, 0.]], &Device::Cpu).unwrap();
        let t = Tensor::new(&[[2f32, 0.]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[0u32], &Device::Cpu).unwrap();
        let loss = kd_loss(&s, &t, &y, 2.0, 0.5).unwrap().to_scalar::<f32>().unwrap() as f64;
        // CE = ln(1 + e^-1) = 0.3132617; p_t = softmax([1, 0]) = [0.7310586, 0.2689414],
        // p_s = softmax([0.5, 0]) = [0.6224593, 0.3775407];
        // KL = 0.7310586·ln(0.7310586/0.6224593) + 0.2689414·ln(0.2689414/0.3775407) = 0.0263446
        let ce = (1.0f64 + (-1.0f64).exp()).ln();
        let pt = [1.0 / (1.0 + (-1.0f64).exp()), 0.0];
        let pt = [pt[0], 1.0 - pt[0]];
        let ps0 = 1.0 / (1.0 + (-0.5f64).exp());
        let ps = [ps0, 1.0 - ps0];
        let kl = pt[0] * (pt[0] / ps[0]).ln() + pt[1] * (pt[1] / ps[1]).ln();
        let want = 0.5 * ce + 0.5 * 4.0 * kl;
        assert!((kl - 0.0263446).abs() < 1e-6, "{kl}");
        assert!((loss - want).abs() < 1e-6, "{loss} vs {want}");
    }

    #[test]
    fn alpha_one_is_plain_cross_entropy() {
        let s = Tensor::new(&[[0.3f32, -0.2], [1.0, 2.0]], &Device::Cpu).unwrap();
        let t = Tensor::new(&[[5f32, 0.], [0., 5.]], &Device::Cpu).unwrap();
        let y = Tensor::new(&[1u32, 0], &Device::Cpu).unwrap();
        let kd = kd_loss(&s, &t, &y, 3.0, 1.0).unwrap().to_scalar::<f32>().unwrap();
        let ce = candle_nn::loss::cross_entropy(&s, &y).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(kd, ce);
    }

    #[test]
    fn layer_picks_map_student_to_teacher_layers() {
        assert_eq!(LayerPick::First.indices(12, 3).unwrap(), vec![0, 1, 2]);
        assert_eq!(LayerPick::EveryK.indices(12, 3).unwrap(), vec![3, 7, 11]);
        assert_eq!("0,5,11".parse::<LayerPick>().unwrap().indices(12, 3).unwrap(), vec![0, 5, 11]);
        let e = LayerPick::First.indices(2, 3).unwrap_err().to_string();
        assert!(e.contains("teacher has 2 layers"), "{e}");
        assert!("0,12".parse::<LayerPick>().unwrap().indices(12, 2).unwrap_err().to_string().contains("layer 12"));
        assert!("x".parse::<LayerPick>().is_err());
    }

    #[test]
    fn temperature_schedule_is_linear_between_the_ends() {
        assert_eq!(temperature_at(0, 11, 4.0, Some(1.0)), 4.0);
        assert_eq!(temperature_at(10, 11, 4.0, Some(1.0)), 1.0);
        assert_eq!(temperature_at(5, 11, 4.0, None), 4.0);
    }
}
