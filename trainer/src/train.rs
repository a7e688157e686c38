//! Fine-tuning: AdamW with linear warm-up and decay, gradient clipping,
//! dropout, dev evaluation every epoch (the best epoch is kept), atomic
//! checkpoints and `--resume`.

use crate::data::{read_dataset, LabelSet};
use crate::distill::{kd_loss, student_from_teacher, temperature_at, LayerPick};
use crate::model::branch::BranchConfig;
use crate::theseus::mixed_forward;
pub use crate::theseus::{Mix, Scheduler};
use crate::metrics::{self, EvalReport};
use crate::model::{presets, SequenceClassifier};
use crate::optim::AdamW;
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, D};
use edge_runtime::exit::ExitPolicy;
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum ModelInit {
    /// A Hugging Face BERT checkpoint directory.
    Pretrained(PathBuf),
    /// A from-scratch preset with a vocabulary (`vocab.txt`, `tokenizer.json` or their directory).
    Preset { name: String, vocab: PathBuf },
    /// A shallow student of `FinetuneOptions::teacher`, initialised from its layers.
    Student { layers: usize, pick: LayerPick },
    /// `FinetuneOptions::teacher` with FastBERT branch classifiers added.
    Branches(BranchConfig),
}

/// What the student learns from.
#[derive(Debug, Clone, PartialEq)]
pub enum Objective {
    /// Gold labels only.
    CrossEntropy,
    /// Gold labels and the teacher's softened logits (see [`crate::distill::kd_loss`]).
    Distill { temperature: f64, temperature_end: Option<f64>, alpha: f64, cache_logits: bool },
    /// BERT-of-Theseus module replacement with the teacher as predecessor.
    Theseus { scheduler: Scheduler, mix: Mix },
    /// FastBERT self-distillation of the branch classifiers.
    FastBert { with_ce: bool, augment: bool },
}

impl Objective {
    /// Which parameters the optimiser updates; the rest stay frozen.
    fn trains(&self, name: &str) -> bool {
        match self {
            Self::Theseus { .. } => name.starts_with("bert.encoder.layer."),
            Self::FastBert { .. } => name.starts_with("branches."),
            _ => true,
        }
    }
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

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub step: usize,
    pub train_loss: f64,
    pub dev_accuracy: f64,
    pub dev_accuracy_ci95: [f64; 2],
    pub dev_macro_f1: f64,
    pub dev_loss: f64,
    pub epoch_secs: f64,
    pub examples_per_sec: f64,
    pub peak_rss_mib: Option<f64>,
    pub best: bool,
}

/// Where an interrupted run stands (`checkpoint/state.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TrainState {
    epoch: usize,
    batches_done: usize,
    step: usize,
    best_dev_accuracy: f64,
    seed: u64,
    batch_size: usize,
    epochs: usize,
    history: Vec<EpochMetrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FinetuneSummary {
    pub best_dev_accuracy: f64,
    pub best_epoch: usize,
    pub steps: usize,
    pub wall_secs: f64,
    pub train_examples_per_sec: f64,
    pub peak_rss_mib: Option<f64>,
}

/// A dataset tokenized once, ready for batching.
pub struct Encoded {
    pub ids: Vec<Vec<u32>>,
    pub labels: Vec<u32>,
}

pub fn encode_dataset(model: &SequenceClassifier, path: &Path, max_len: usize) -> Result<Encoded> {
    let examples = read_dataset(path)?;
    let labels = model.labels.encode(&examples, path)?;
    let mut tok = model.tokenizer.clone();
    crate::tokenize::set_max_len(&mut tok, max_len)?;
    let ids = examples
        .iter()
        .map(|e| crate::tokenize::encode_ids(&tok, &e.text))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("tokenizing {}", path.display()))?;
    Ok(Encoded { ids, labels })
}

/// Batches for one epoch: shuffled, then sorted by length inside windows of 50
/// batches so padding stays small, then the batch order shuffled again.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut rng = StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    let mut batches = Vec::new();
    for window in order.chunks(batch_size * 50) {
        let mut window = window.to_vec();
        window.sort_by_key(|&i| lengths[i]);
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// Linear warm-up to `peak` over `warmup` steps, then linear decay to zero.
pub fn lr_at(step: usize, total: usize, warmup: usize, peak: f64) -> f64 {
    if step < warmup {
        peak * (step + 1) as f64 / warmup as f64
    } else {
        peak * (total.saturating_sub(step)) as f64 / (total - warmup).max(1) as f64
    }
}

pub fn batch(model: &SequenceClassifier, data: &Encoded, idx: &[usize]) -> Result<(Tensor, Tensor, Tensor)> {
    let rows: Vec<&[u32]> = idx.iter().map(|&i| data.ids[i].as_slice()).collect();
    let (ids, mask) = model.batch_tensors(&rows)?;
    let labels: Vec<u32> = idx.iter().map(|&i| data.labels[i]).collect();
    Ok((ids, mask, Tensor::new(labels, &model.device)?))
}

/// One optimisation step on the loss that `loss` computes. Returns the loss
/// before the update.
pub fn train_step(opt: &mut AdamW, loss: impl FnOnce() -> Result<Tensor>, lr: f64, max_grad_norm: f64) -> Result<f32> {
    let loss = loss()?;
    let loss_value = loss.to_scalar::<f32>()?;
    if !loss_value.is_finite() {
        bail!("non-finite training loss ({loss_value}) at step {}", opt.step + 1);
    }
    let grads = loss.backward()?;
    let norm = opt.grad_norm(&grads)?;
    if !norm.is_finite() {
        bail!("non-finite gradient norm at step {}", opt.step + 1);
    }
    let scale = if norm > max_grad_norm { max_grad_norm / (norm + 1e-6) } else { 1.0 };
    opt.step(&grads, lr, scale)?;
    Ok(loss_value)
}

/// Accuracy, macro-F1 and loss of `model` on an encoded dataset (eval mode).
pub fn evaluate(model: &SequenceClassifier, data: &Encoded, batch_size: usize) -> Result<EvalReport> {
    let mut order: Vec<usize> = (0..data.ids.len()).collect();
    order.sort_by_key(|&i| data.ids[i].len());
    let mut pred = vec![0u32; data.ids.len()];
    let mut loss_sum = 0f64;
    for idx in order.chunks(batch_size) {
        let (ids, mask, labels) = batch(model, data, idx)?;
        let logits = model.model.forward(&ids, &mask, false)?;
        loss_sum += candle_nn::loss::cross_entropy(&logits, &labels)?.to_scalar::<f32>()? as f64 * idx.len() as f64;
        let argmax: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        for (&i, p) in idx.iter().zip(argmax) {
            pred[i] = p;
        }
    }
    let loss = loss_sum / data.ids.len().max(1) as f64;
    Ok(metrics::report(&data.labels, &pred, &model.labels.labels, loss))
}

/// The teacher's logits for a training batch: cached once for the whole
/// training set, or computed batch by batch (dropout off).
enum TeacherSignal {
    Cached(Tensor),
    Live(SequenceClassifier),
}

impl TeacherSignal {
    fn logits(&self, idx: &[usize], ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        match self {
            Self::Cached(all) => {
                let rows = Tensor::new(idx.iter().map(|&i| i as u32).collect::<Vec<_>>(), all.device())?;
                Ok(all.index_select(&rows, 0)?)
            }
            Self::Live(teacher) => Ok(teacher.model.forward(ids, mask, false)?.detach()),
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
    crate::io::write_atomic_with(&path, |tmp| Ok(candle_core::safetensors::save(&map, tmp)?))?;
    Ok(all)
}

fn build_model(opts: &FinetuneOptions, labels: LabelSet, teacher: Option<&SequenceClassifier>) -> Result<SequenceClassifier> {
    match &opts.init {
        ModelInit::Student { layers, pick } => {
            let teacher = teacher.context("a student needs --teacher")?;
            if let Objective::Theseus { .. } = opts.objective {
                crate::theseus::block_size(teacher.config.num_hidden_layers, *layers)?;
            }
            student_from_teacher(teacher, *layers, pick, opts.seed)
        }
        ModelInit::Branches(branches) => {
            let backbone = opts.teacher.as_ref().context("FastBERT needs a backbone")?;
            SequenceClassifier::with_branches(backbone, *branches, &opts.device, opts.seed)
        }
        ModelInit::Pretrained(dir) => SequenceClassifier::from_pretrained(dir, labels, &opts.device, opts.seed),
        ModelInit::Preset { name, vocab } => {
            let tokenizer = crate::tokenize::load_tokenizer_path(vocab)?;
            let vocab_size = crate::tokenize::vocab_size(&tokenizer);
            let mut config = presets::preset(name, vocab_size)?;
            config.max_position_embeddings = config.max_position_embeddings.max(opts.max_len);
            config.set_labels(&labels.labels);
            SequenceClassifier::new(config, labels, tokenizer, &opts.device, opts.seed)
        }
    }
}

const CHECKPOINT: &str = "checkpoint";
const TRAINING_RECORD: &str = "training.json";

/// The `--max-len` a model directory was trained with (its `training.json`),
/// or its position limit for models trained elsewhere.
pub fn trained_max_len(dir: &Path, model: &SequenceClassifier) -> usize {
    std::fs::read_to_string(dir.join(TRAINING_RECORD))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
        .and_then(|v| v["max_len"].as_u64())
        .map(|n| n as usize)
        .unwrap_or(model.config.max_position_embeddings)
}

/// FastBERT's split-repeat-shuffle augmentation: clause-shuffled copies of the
/// training texts, keeping their labels (used only by `--with-ce`).
fn augment_training_set(model: &SequenceClassifier, path: &Path, max_len: usize, seed: u64, train: &mut Encoded) -> Result<()> {
    let examples = read_dataset(path)?;
    let labels = model.labels.encode(&examples, path)?;
    let mut tok = model.tokenizer.clone();
    crate::tokenize::set_max_len(&mut tok, max_len)?;
    let mut added = 0;
    for (e, label) in examples.iter().zip(labels) {
        for text in crate::fastbert::augment(std::slice::from_ref(&e.text), seed ^ e.line as u64) {
            train.ids.push(crate::tokenize::encode_ids(&tok, &text)?);
            train.labels.push(label);
            added += 1;
        }
    }
    eprintln!("augmentation added {added} clause-shuffled copies to {} training texts", examples.len());
    Ok(())
}

/// Replaces `out/checkpoint` with a new one: written to a temporary directory,
/// then swapped in by renames, so a crash leaves the old or the new one whole.
fn save_checkpoint(out: &Path, model: &SequenceClassifier, opt: &AdamW, state: &TrainState) -> Result<()> {
    let tmp = out.join(format!("{CHECKPOINT}.tmp"));
    let old = out.join(format!("{CHECKPOINT}.old"));
    let cur = out.join(CHECKPOINT);
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp)?;
    model.save_weights(&tmp.join("model.safetensors"))?;
    opt.save(&tmp.join("optimizer.safetensors"))?;
    crate::io::write_json_atomic(&tmp.join("state.json"), state)?;
    let _ = std::fs::remove_dir_all(&old);
    if cur.exists() {
        std::fs::rename(&cur, &old)?;
    }
    std::fs::rename(&tmp, &cur)?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

fn existing_checkpoint(out: &Path) -> Option<PathBuf> {
    [CHECKPOINT, "checkpoint.old"]
        .iter()
        .map(|n| out.join(n))
        .find(|p| p.join("state.json").exists())
}

pub fn finetune(opts: &FinetuneOptions) -> Result<FinetuneSummary> {
    if opts.epochs == 0 || opts.batch_size == 0 {
        bail!("--epochs and --batch-size must be positive");
    }
    let started = Instant::now();
    let train_examples = read_dataset(&opts.train)?;
    let labels = LabelSet::from_examples(&train_examples);
    if labels.len() < 2 {
        bail!("{}: need at least two labels to train a classifier, found {:?}", opts.train.display(), labels.labels);
    }
    let teacher = match &opts.teacher {
        Some(dir) => {
            let t = SequenceClassifier::load(dir, &opts.device)?;
            if t.labels != labels {
                bail!(
                    "label sets differ: the teacher {} predicts {:?}, the training data {} has {:?}",
                    dir.display(), t.labels.labels, opts.train.display(), labels.labels
                );
            }
            Some(t)
        }
        None => None,
    };
    let checkpoint = existing_checkpoint(&opts.out);
    let (model, state) = match (&checkpoint, opts.resume) {
        (Some(ckpt), true) => {
            let model = SequenceClassifier::load_architecture(&opts.out, &opts.device)?;
            model.load_weights(&ckpt.join("model.safetensors"), false)?;
            let state: TrainState = serde_json::from_str(&std::fs::read_to_string(ckpt.join("state.json"))?)
                .with_context(|| format!("{}: invalid training state", ckpt.join("state.json").display()))?;
            if state.seed != opts.seed || state.batch_size != opts.batch_size || state.epochs != opts.epochs {
                bail!(
                    "{}: checkpoint was made with --seed {} --batch-size {} --epochs {}; resume with the same values",
                    ckpt.display(), state.seed, state.batch_size, state.epochs
                );
            }
            if model.labels != labels {
                bail!("{}: label set {:?} differs from the checkpoint's {:?}", opts.train.display(), labels.labels, model.labels.labels);
            }
            (model, Some(state))
        }
        (None, true) => bail!("{}: nothing to resume (no checkpoint/state.json)", opts.out.display()),
        (Some(ckpt), false) => bail!(
            "{} already holds a training checkpoint; pass --resume to continue it or choose another --out",
            ckpt.display()
        ),
        (None, false) => {
            let model = build_model(opts, labels, teacher.as_ref())?;
            model.save(&opts.out)?; // config, labels, tokenizer (+ initial weights)
            let record = serde_json::json!({
                "train": opts.train, "dev": opts.dev, "init": format!("{:?}", opts.init),
                "teacher": opts.teacher, "objective": format!("{:?}", opts.objective),
                "epochs": opts.epochs, "batch_size": opts.batch_size, "lr": opts.lr,
                "max_len": opts.max_len, "seed": opts.seed, "warmup_ratio": opts.warmup_ratio,
                "weight_decay": opts.weight_decay, "max_grad_norm": opts.max_grad_norm,
                "trainer_version": env!("CARGO_PKG_VERSION"),
            });
            crate::io::write_json_atomic(&opts.out.join(TRAINING_RECORD), &record)?;
            (model, None)
        }
    };
    let mut train = encode_dataset(&model, &opts.train, opts.max_len)?;
    if let Objective::FastBert { augment: true, .. } = opts.objective {
        augment_training_set(&model, &opts.train, opts.max_len, opts.seed, &mut train)?;
    }
    let dev = encode_dataset(&model, &opts.dev, opts.max_len)?;
    let signal = match (&opts.objective, teacher) {
        (Objective::CrossEntropy | Objective::FastBert { .. }, _) => None,
        (Objective::Theseus { .. }, None) => bail!("Theseus needs a predecessor"),
        (Objective::Theseus { .. }, Some(t)) => Some(TeacherSignal::Live(t)),
        (Objective::Distill { .. }, None) => bail!("distillation needs a teacher"),
        (Objective::Distill { cache_logits: true, .. }, Some(t)) => {
            Some(TeacherSignal::Cached(cached_teacher_logits(opts, &t, &train)?))
        }
        (Objective::Distill { .. }, Some(t)) => Some(TeacherSignal::Live(t)),
    };
    let lengths: Vec<usize> = train.ids.iter().map(Vec::len).collect();
    let steps_per_epoch = train.ids.len().div_ceil(opts.batch_size);
    let total_steps = steps_per_epoch * opts.epochs;
    let warmup = ((total_steps as f64) * opts.warmup_ratio).round() as usize;

    let mut trainable = model.varmap.data().lock().unwrap().clone();
    trainable.retain(|name, _| opts.objective.trains(name));
    let mut opt = AdamW::new(trainable, opts.weight_decay)?;
    let mut state = match state {
        Some(s) => {
            opt.load(&checkpoint.as_ref().unwrap().join("optimizer.safetensors"), s.step)?;
            eprintln!("resuming at epoch {} batch {} (step {})", s.epoch + 1, s.batches_done, s.step);
            s
        }
        None => TrainState {
            epoch: 0,
            batches_done: 0,
            step: 0,
            best_dev_accuracy: -1.0,
            seed: opts.seed,
            batch_size: opts.batch_size,
            epochs: opts.epochs,
            history: vec![],
        },
    };

    let bar = if opts.progress { ProgressBar::new(total_steps as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}")
            .unwrap()
            .progress_chars("=> "),
    );
    bar.set_position(state.step as u64);
    let mut trained_examples = 0usize;
    let mut train_secs = 0f64;
    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let epoch_start = Instant::now();
        let batches = epoch_batches(&lengths, opts.batch_size, opts.seed, epoch);
        let (mut loss_sum, mut loss_n, mut epoch_examples) = (0f64, 0usize, 0usize);
        for idx in batches.iter().skip(state.batches_done) {
            let (ids, mask, labels) = batch(&model, &train, idx)?;
            let lr = lr_at(state.step, total_steps, warmup, opts.lr);
            let step = state.step;
            let loss_of = || -> Result<Tensor> {
                match (&opts.objective, &signal) {
                    (Objective::Distill { temperature, temperature_end, alpha, .. }, Some(signal)) => {
                        let logits = model.model.forward(&ids, &mask, true)?;
                        let t = temperature_at(step, total_steps, *temperature, *temperature_end);
                        Ok(kd_loss(&logits, &signal.logits(idx, &ids, &mask)?, &labels, t, *alpha)?)
                    }
                    (Objective::Theseus { scheduler, mix }, Some(TeacherSignal::Live(predecessor))) => {
                        let p = scheduler.rate(step);
                        let seed = opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(step as u64);
                        let logits = mixed_forward(&model, predecessor, (&ids, &mask), p, *mix, seed, true)?;
                        Ok(candle_nn::loss::cross_entropy(&logits, &labels)?)
                    }
                    (Objective::FastBert { with_ce, .. }, _) => {
                        crate::fastbert::branch_loss(&model, (&ids, &mask, &labels), *with_ce)
                    }
                    _ => {
                        let logits = model.model.forward(&ids, &mask, true)?;
                        Ok(candle_nn::loss::cross_entropy(&logits, &labels)?)
                    }
                }
            };
            let loss = train_step(&mut opt, loss_of, lr, opts.max_grad_norm).map_err(|e| {
                e.context(format!(
                    "training stopped; the last good checkpoint in {} is intact (lower --lr or check the data)",
                    opts.out.join(CHECKPOINT).display()
                ))
            })?;
            state.step += 1;
            state.batches_done += 1;
            if opts.stop_after_steps == Some(state.step) {
                bar.abandon();
                bail!("stopped after {} steps (--stop-after-steps); continue with --resume", state.step);
            }
            loss_sum += loss as f64;
            loss_n += 1;
            epoch_examples += idx.len();
            let rate = epoch_examples as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("epoch {} loss {:.4} {:.0} ex/s", epoch + 1, loss_sum / loss_n as f64, rate));
            bar.inc(1);
            if bar.is_hidden() && state.step % 50 == 0 {
                // No terminal (a log file): print what the bar would show.
                eprintln!("step {}/{total_steps} epoch {} loss {:.4} {rate:.0} ex/s", state.step, epoch + 1, loss_sum / loss_n as f64);
            }
            if opts.save_every > 0 && state.step % opts.save_every == 0 && state.batches_done < batches.len() {
                save_checkpoint(&opts.out, &model, &opt, &state)?;
            }
        }
        let epoch_secs = epoch_start.elapsed().as_secs_f64();
        trained_examples += epoch_examples;
        train_secs += epoch_secs;
        let report = if model.model.has_branches() {
            // FastBERT: the backbone is frozen, so rank epochs by the branches' mean accuracy.
            let r = crate::exits::evaluate_with_exits(&model, &dev, opts.batch_size.max(64), ExitPolicy::Full)?;
            let branches = &r.exit_accuracy[..r.exit_accuracy.len() - 1];
            let mean = branches.iter().sum::<f64>() / branches.len() as f64;
            log_line(&bar, format!(
                "epoch {}: branch accuracies {:?} (mean {mean:.4}; the CI and macro-F1 below are the frozen final exit's)",
                epoch + 1,
                branches.iter().map(|a| (a * 1e4).round() / 1e4).collect::<Vec<_>>()
            ));
            EvalReport { accuracy: mean, ..r.eval }
        } else {
            evaluate(&model, &dev, opts.batch_size.max(64))?
        };
        let best = report.accuracy > state.best_dev_accuracy;
        if best {
            state.best_dev_accuracy = report.accuracy;
            model.save_weights(&opts.out.join("model.safetensors"))?;
        }
        let m = EpochMetrics {
            epoch: epoch + 1,
            step: state.step,
            train_loss: loss_sum / loss_n.max(1) as f64,
            dev_accuracy: report.accuracy,
            dev_accuracy_ci95: report.accuracy_ci95,
            dev_macro_f1: report.macro_f1,
            dev_loss: report.loss,
            epoch_secs,
            examples_per_sec: epoch_examples as f64 / epoch_secs,
            peak_rss_mib: metrics::peak_rss_mib(),
            best,
        };
        log_line(&bar, format!(
            "epoch {}: train loss {:.4}, dev acc {:.4} [{:.4}, {:.4}] macro-F1 {:.4}{} ({:.0} ex/s)",
            m.epoch, m.train_loss, m.dev_accuracy, m.dev_accuracy_ci95[0], m.dev_accuracy_ci95[1], m.dev_macro_f1,
            if best { " *best*" } else { "" }, m.examples_per_sec
        ));
        state.history.push(m);
        write_metrics(&opts.out, &state.history)?;
        state.epoch += 1;
        state.batches_done = 0;
        save_checkpoint(&opts.out, &model, &opt, &state)?;
    }
    bar.finish_and_clear();
    let best = state.history.iter().filter(|m| m.best).last().context("no epoch completed")?;
    Ok(FinetuneSummary {
        best_dev_accuracy: state.best_dev_accuracy,
        best_epoch: best.epoch,
        steps: state.step,
        wall_secs: started.elapsed().as_secs_f64(),
        train_examples_per_sec: if train_secs > 0.0 { trained_examples as f64 / train_secs } else { 0.0 },
        peak_rss_mib: metrics::peak_rss_mib(),
    })
}

/// A line above the progress bar, or on stderr when there is no bar.
fn log_line(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

fn write_metrics(out: &Path, history: &[EpochMetrics]) -> Result<()> {
    let mut buf = Vec::new();
    for m in history {
        serde_json::to_writer(&mut buf, m)?;
        buf.push(b'\n');
    }
    crate::io::write_atomic(&out.join("metrics.jsonl"), &buf)
}
