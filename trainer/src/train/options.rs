//! What a fine-tuning run is asked to do: the model it starts from, the
//! objective, the data and the hyper-parameters. How each objective is
//! computed is `objective.rs`; the run itself, `mod.rs`.

use crate::distill::intermediate::IntermediateSpec;
use crate::distill::LayerPick;
use crate::model::branch::BranchConfig;
use crate::theseus::{Mix, Scheduler};
use candle_core::Device;
use std::path::PathBuf;

#[derive(Debug, Clone)]
pub enum ModelInit {
    /// A Hugging Face BERT checkpoint directory.
    Pretrained(PathBuf),
    /// A from-scratch preset with a vocabulary (`vocab.txt`, `tokenizer.json` or their directory).
    Preset { name: String, vocab: PathBuf },
    /// A shallow student of `FinetuneOptions::teacher`, initialised from its layers.
    Student { layers: usize, pick: LayerPick },
    /// A student of another width than the teacher (its tokenizer, fresh weights).
    NarrowStudent { layers: usize, hidden: usize, heads: usize, intermediate: usize },
    /// `FinetuneOptions::teacher` with FastBERT branch classifiers added.
    Branches(BranchConfig),
}

#[derive(Debug, Clone)]
pub struct FinetuneOptions {
    pub train: PathBuf,
    pub dev: PathBuf,
    pub out: PathBuf,
    pub init: ModelInit,
    /// The teacher model directory, for `ModelInit::Student` and `Objective::Distill`.
    pub teacher: Option<PathBuf>,
    pub objective: Objective,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub max_len: usize,
    pub seed: u64,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    /// Write a resumable checkpoint every this many steps (and at every epoch end).
    pub save_every: usize,
    pub resume: bool,
    /// Abort (as if killed) after this many optimisation steps, without saving:
    /// for testing that `--resume` picks up from the last checkpoint.
    pub stop_after_steps: Option<usize>,
    pub device: Device,
    pub progress: bool,
}

impl FinetuneOptions {
    /// Plain fine-tuning with the CLI's defaults; set other fields with struct update syntax.
    pub fn new(train: PathBuf, dev: PathBuf, out: PathBuf, init: ModelInit) -> Self {
        Self {
            train,
            dev,
            out,
            init,
            teacher: None,
            objective: Objective::CrossEntropy,
            epochs: 3,
            batch_size: 32,
            lr: 5e-5,
            max_len: 128,
            seed: 42,
            warmup_ratio: 0.1,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            save_every: 200,
            resume: false,
            stop_after_steps: None,
            device: Device::Cpu,
            progress: false,
        }
    }
}

/// What the student learns from.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    /// Gold labels only.
    CrossEntropy,
    /// Gold labels and the teacher's softened logits (see [`crate::distill::kd_loss`]),
    /// optionally with hidden-state and attention losses on chosen layers.
    Distill {
        temperature: f64,
        temperature_end: Option<f64>,
        alpha: f64,
        cache_logits: bool,
        intermediate: Option<IntermediateSpec>,
    },
    /// BERT-of-Theseus module replacement with the teacher as predecessor.
    Theseus { scheduler: Scheduler, mix: Mix },
    /// FastBERT self-distillation of the branch classifiers (backbone frozen),
    /// or, with `joint`, the backbone trained with its exits (gold labels at
    /// every exit, weighted by depth).
    FastBert { with_ce: bool, augment: bool, joint: bool },
}

impl Objective {
    /// Which parameters the optimiser updates; the rest stay frozen.
    pub fn trains(&self, name: &str) -> bool {
        match self {
            Self::Theseus { .. } => name.starts_with("bert.encoder.layer."),
            Self::FastBert { joint: false, .. } => name.starts_with("branches."),
            _ => true,
        }
    }
}
