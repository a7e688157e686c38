//! What a training run optimises. Each objective's loss is written once, in
//! [`PreparedObjective::loss`]; what it needs from a teacher, in
//! [`PreparedObjective::prepare`]. The objectives a run can ask for
//! ([`Objective`]) and which parameters each trains ([`Objective::trains`])
//! sit with the run's other options, in `options.rs`.

use super::batching::{batch, Encoded};
pub use super::options::Objective;
use super::options::FinetuneOptions;
use crate::distill::intermediate::IntermediateLoss;
use crate::distill::{kd_loss, temperature_at};
use crate::model::SequenceClassifier;
pub use crate::theseus::{Mix, Scheduler};
use anyhow::{bail, Context, Result};
use candle_core::Tensor;

/// One training batch.
pub struct Batch<'a> {
    pub idx: &'a [usize],
    pub ids: Tensor,
    pub mask: Tensor,
    pub labels: Tensor,
}

impl<'a> Batch<'a> {
    pub fn new(model: &SequenceClassifier, data: &Encoded, idx: &'a [usize]) -> Result<Self> {
        let (ids, mask, labels) = batch(model, data, idx)?;
        Ok(Self { idx, ids, mask, labels })
    }
}

/// The teacher's logits: cached once for the whole training set, or computed
/// batch by batch (dropout off).
pub enum TeacherLogits {
    Cached(Tensor),
    Live,
}

/// An objective with what it needs at hand: the teacher, cached logits, the
/// intermediate-loss projection.
pub enum PreparedObjective {
    CrossEntropy,
    Distill {
        temperature: f64,
        temperature_end: Option<f64>,
        alpha: f64,
        teacher: SequenceClassifier,
        logits: TeacherLogits,
        intermediate: Option<IntermediateLoss>,
    },
    Theseus { scheduler: Scheduler, mix: Mix, predecessor: SequenceClassifier },
    FastBert { with_ce: bool, joint: bool },
}

impl PreparedObjective {
    /// Call before the optimiser is built: the intermediate losses' projection
    /// joins the student's parameters.
    pub fn prepare(opts: &FinetuneOptions, teacher: Option<SequenceClassifier>, model: &SequenceClassifier, train: &Encoded) -> Result<Self> {
        Ok(match (&opts.objective, teacher) {
            (Objective::CrossEntropy, _) => Self::CrossEntropy,
            (Objective::FastBert { with_ce, joint, .. }, _) => Self::FastBert { with_ce: *with_ce, joint: *joint },
            (Objective::Theseus { .. }, None) => bail!("Theseus needs a predecessor"),
            (Objective::Theseus { scheduler, mix }, Some(t)) => {
                Self::Theseus { scheduler: *scheduler, mix: *mix, predecessor: t }
            }
            (Objective::Distill { .. }, None) => bail!("distillation needs a teacher"),
            (Objective::Distill { temperature, temperature_end, alpha, cache_logits, intermediate }, Some(t)) => {
                let intermediate = match intermediate {
                    Some(spec) => Some(IntermediateLoss::new(spec.clone(), &model.config, &t.config, &model.varmap, &model.device)?),
                    None => None,
                };
                // Intermediate losses need the teacher's inside every batch anyway.
                let logits = if *cache_logits && intermediate.is_none() {
                    TeacherLogits::Cached(cached_teacher_logits(opts, &t, train)?)
                } else {
                    TeacherLogits::Live
                };
                Self::Distill {
                    temperature: *temperature,
                    temperature_end: *temperature_end,
                    alpha: *alpha,
                    teacher: t,
                    logits,
                    intermediate,
                }
            }
        })
    }

    /// The training loss of `model` on batch `b` at `step` of `total_steps`.
    pub fn loss(&self, model: &SequenceClassifier, b: &Batch, step: usize, total_steps: usize, seed: u64) -> Result<Tensor> {
        let ce = |logits: &Tensor| -> Result<Tensor> { Ok(candle_nn::loss::cross_entropy(logits, &b.labels)?) };
        match self {
            Self::CrossEntropy => ce(&model.model.forward(&b.ids, &b.mask, true)?),
            Self::Distill { temperature, temperature_end, alpha, teacher, logits, intermediate } => {
                let t = temperature_at(step, total_steps, *temperature, *temperature_end);
                match intermediate {
                    None => {
                        let student = model.model.forward(&b.ids, &b.mask, true)?;
                        let teacher_logits = match logits {
                            TeacherLogits::Cached(all) => {
                                let rows = Tensor::new(b.idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), all.device())?;
                                all.index_select(&rows, 0)?
                            }
                            TeacherLogits::Live => teacher.model.forward(&b.ids, &b.mask, false)?.detach(),
                        };
                        Ok(kd_loss(&student, &teacher_logits, &b.labels, t, *alpha)?)
                    }
                    Some(inter) => {
                        let s = model.model.bert.forward_internals(&b.ids, &b.mask, true)?;
                        let student = model.model.classify(s.hidden.last().context("a student without layers")?, true)?;
                        let ti = teacher.model.bert.forward_internals(&b.ids, &b.mask, false)?;
                        let teacher_logits = teacher.model.classify(ti.hidden.last().context("a teacher without layers")?, false)?.detach();
                        let soft = kd_loss(&student, &teacher_logits, &b.labels, t, *alpha)?;
                        Ok((soft + inter.loss(&s, &ti, &b.mask)?)?)
                    }
                }
            }
            Self::Theseus { scheduler, mix, predecessor } => {
                let p = scheduler.rate(step);
                let draw_seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(step as u64);
                ce(&crate::theseus::mixed_forward(model, predecessor, (&b.ids, &b.mask), p, *mix, draw_seed, true)?)
            }
            Self::FastBert { joint: true, .. } => crate::fastbert::joint_loss(model, (&b.ids, &b.mask, &b.labels), true),
            Self::FastBert { with_ce, joint: false } => crate::fastbert::branch_loss(model, (&b.ids, &b.mask, &b.labels), *with_ce),
        }
    }
}

/// Teacher logits for every training example, loaded from or written to the cache.
fn cached_teacher_logits(opts: &FinetuneOptions, teacher: &SequenceClassifier, train: &Encoded) -> Result<Tensor> {
    let dir = opts.teacher.as_ref().context("distillation needs a teacher")?;
    let path = crate::distill::logits_cache_path(&opts.train, dir, opts.max_len)?;
    if let Ok(t) = candle_core::safetensors::load(&path, &opts.device) {
        if let Some(l) = t.get("logits").filter(|l| l.dims() == [train.ids.len(), teacher.labels.len()]) {
            eprintln!("teacher logits from cache {}", path.display());
            return Ok(l.clone());
        }
    }
    eprintln!("caching teacher logits for {} examples in {}", train.ids.len(), path.display());
    let mut order: Vec<usize> = (0..train.ids.len()).collect();
    order.sort_by_key(|&i| train.ids[i].len());
    let mut rows = vec![Vec::new(); train.ids.len()];
    for idx in order.chunks(64) {
        let (ids, mask, _) = batch(teacher, train, idx)?;
        let logits: Vec<Vec<f32>> = teacher.model.forward(&ids, &mask, false)?.to_vec2()?;
        for (&i, row) in idx.iter().zip(logits) {
            rows[i] = row;
        }
    }
    let n_labels = teacher.labels.len();
    let all = Tensor::from_vec(rows.concat(), (train.ids.len(), n_labels), &opts.device)?;
    let map = std::collections::HashMap::from([("logits".to_string(), all.clone())]);
    bundle::atomic::write_with(&path, |tmp| -> Result<()> { Ok(candle_core::safetensors::save(&map, tmp)?) })?;
    Ok(all)
}
