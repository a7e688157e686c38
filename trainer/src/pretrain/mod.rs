//! Pretraining (`trainer pretrain`) with one of two objectives on BERT's
//! masking (15% of the tokens chosen; 80% [MASK], 10% random, 10% kept):
//! - the masked LM (BERT): predict the chosen tokens, the decoder tied to the
//!   word embeddings, the loss on those positions only;
//! - replaced-token detection (ELECTRA, `electra.rs`): a small generator
//!   predicts them, and the model kept learns which tokens its samples replaced.
//!
//! Masks (and ELECTRA's samples) are drawn afresh every step from a generator
//! seeded by (seed, step), and the data order by (seed, epoch), so a resumed
//! run continues exactly.

pub mod corpus;
pub mod electra;
pub mod masking;
pub mod objective;

use crate::model::electra::{ElectraPretrainingModel, GeneratorConfig};
use crate::model::mlm::MaskedLanguageModel;
use crate::model::presets;
use crate::optim::AdamW;
use crate::train::checkpoint::{read_state, resume_or_fresh, save_checkpoint};
use crate::train::step::{log_line, lr_at, progress_bar, resumable_sharded_step, resumable_step, Shard};
use anyhow::{bail, Context, Result};
use candle_core::Device;
use corpus::Segment;
use masking::Masking;
use objective::{MaskedBatch, PretrainingModel};
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Debug, Clone)]
pub enum PretrainInit {
    /// From scratch: a preset shape with a vocabulary.
    Preset { name: String, vocab: PathBuf },
    /// Continue a Hugging Face BERT checkpoint (domain-adaptive pretraining).
    Pretrained(PathBuf),
}

/// How long to train.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    Epochs(usize),
    Steps(usize),
}

/// What the model learns to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// BERT's masked LM.
    #[default]
    MaskedLm,
    /// ELECTRA's replaced-token detection.
    Electra,
}

/// ELECTRA's generator shape and loss weight.
#[derive(Debug, Clone, PartialEq)]
pub struct ElectraOptions {
    /// Generator width (default: a quarter of the model's, at least 16).
    pub generator_hidden: Option<usize>,
    /// Generator depth (default: the model's).
    pub generator_layers: Option<usize>,
    /// λ: the discriminator loss's weight against the generator's.
    pub discriminator_weight: f64,
}

impl Default for ElectraOptions {
    fn default() -> Self {
        Self { generator_hidden: None, generator_layers: None, discriminator_weight: electra::DEFAULT_DISCRIMINATOR_WEIGHT }
    }
}

#[derive(Debug, Clone)]
pub struct PretrainOptions {
    pub objective: Objective,
    pub electra: ElectraOptions,
    pub corpus: Vec<PathBuf>,
    pub out: PathBuf,
    pub init: PretrainInit,
    pub mask_prob: f64,
    pub whole_word: bool,
    pub max_len: usize,
    pub budget: Budget,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
    pub warmup_ratio: f64,
    pub weight_decay: f64,
    pub max_grad_norm: f64,
    pub save_every: usize,
    /// Evaluate on the held-out slice every this many steps (and at the end).
    pub eval_every: usize,
    /// Percent of the corpus documents held out (by a stable hash of the text).
    pub heldout_percent: u32,
    pub resume: bool,
    pub stop_after_steps: Option<usize>,
    pub device: Device,
    pub progress: bool,
    /// Each batch cut into this many shards, each on a thread of its own (masked LM only).
    pub shards: usize,
}

impl PretrainOptions {
    pub fn new(corpus: Vec<PathBuf>, out: PathBuf, init: PretrainInit) -> Self {
        Self {
            objective: Objective::MaskedLm,
            electra: ElectraOptions::default(),
            corpus,
            out,
            init,
            mask_prob: 0.15,
            whole_word: false,
            max_len: 64,
            budget: Budget::Epochs(1),
            batch_size: 32,
            lr: 5e-4,
            seed: 42,
            warmup_ratio: 0.06,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
            save_every: 200,
            eval_every: 500,
            heldout_percent: 2,
            resume: false,
            stop_after_steps: None,
            device: Device::Cpu,
            progress: false,
            shards: 1,
        }
    }
}

/// One line of `metrics.jsonl`: the held-out masked-LM loss and accuracy at a
/// step (for ELECTRA, the generator's) and, for ELECTRA, the discriminator's
/// held-out metrics and both training losses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainMetrics {
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// Mean training loss since the previous line (ELECTRA: generator + λ·discriminator).
    pub train_loss: f64,
    pub heldout_loss: f64,
    pub heldout_accuracy: f64,
    pub heldout_predictions: usize,
    pub elapsed_secs: f64,
    pub segments_per_sec: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_generator_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_discriminator_loss: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heldout_discriminator: Option<objective::DiscriminatorMetrics>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PretrainState {
    /// Checkpoints written before ELECTRA existed are masked-LM ones.
    #[serde(default)]
    objective: Objective,
    step: usize,
    total_steps: usize,
    seed: u64,
    batch_size: usize,
    /// Checkpoints written before `--shards` existed ran whole batches.
    #[serde(default = "one")]
    shards: usize,
    elapsed_secs: f64,
    history: Vec<PretrainMetrics>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Serialize)]
pub struct PretrainSummary {
    pub objective: Objective,
    pub steps: usize,
    pub train_segments: usize,
    pub heldout_segments: usize,
    pub final_heldout_loss: f64,
    pub final_heldout_accuracy: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_heldout_discriminator: Option<objective::DiscriminatorMetrics>,
    pub wall_secs: f64,
}

/// The held-out slice is capped: evaluating it should cost seconds, not minutes.
const MAX_HELDOUT_SEGMENTS: usize = 1000;
const TRAINING_RECORD: &str = "training.json";

/// Training and held-out segments of the corpus files.
pub fn load_segments(opts: &PretrainOptions, tokenizer: &tokenizers::Tokenizer) -> Result<(Vec<Segment>, Vec<Segment>)> {
    let texts = corpus::read_corpora(&opts.corpus)?;
    let (heldout, train): (Vec<String>, Vec<String>) =
        texts.into_iter().partition(|t| corpus::is_heldout(t, opts.heldout_percent));
    let jieba = opts.whole_word.then(jieba_rs::Jieba::new);
    let train = corpus::build_segments(&train, tokenizer, opts.max_len, jieba.as_ref())?;
    let mut heldout = corpus::build_segments(&heldout, tokenizer, opts.max_len, jieba.as_ref())?;
    heldout.truncate(MAX_HELDOUT_SEGMENTS);
    if train.is_empty() {
        bail!("the corpus yields no training segments");
    }
    if heldout.is_empty() {
        bail!("the held-out slice ({}% of the documents) is empty: give a larger corpus or a larger --heldout-percent", opts.heldout_percent);
    }
    Ok((train, heldout))
}

fn masking_for(tok: &tokenizers::Tokenizer, prob: f64) -> Result<Masking> {
    let id = |t: &str| tok.token_to_id(t).with_context(|| format!("the vocabulary lacks {t}"));
    let specials: Vec<u32> =
        crate::tokenize::SPECIAL_TOKENS.iter().filter_map(|t| tok.token_to_id(t)).collect();
    Masking::new(prob, id("[MASK]")?, crate::tokenize::vocab_size(tok) as u32, &specials)
}

/// The discriminator's (or masked LM's) shape for a fresh run.
fn preset_config(name: &str, vocab: &Path, max_len: usize) -> Result<(crate::model::Config, tokenizers::Tokenizer)> {
    let tokenizer = crate::tokenize::load_tokenizer_path(vocab)?;
    let mut config = presets::preset(name, crate::tokenize::vocab_size(&tokenizer))?;
    config.max_position_embeddings = config.max_position_embeddings.max(max_len);
    Ok((config, tokenizer))
}

fn build_model(opts: &PretrainOptions) -> Result<Box<dyn PretrainingModel>> {
    let (dev, seed) = (&opts.device, opts.seed);
    let e = &opts.electra;
    Ok(match (opts.objective, &opts.init) {
        (Objective::MaskedLm, PretrainInit::Pretrained(dir)) => Box::new(MaskedLanguageModel::from_pretrained(dir, dev, seed)?),
        (Objective::MaskedLm, PretrainInit::Preset { name, vocab }) => {
            let (config, tokenizer) = preset_config(name, vocab, opts.max_len)?;
            Box::new(MaskedLanguageModel::new(config, tokenizer, dev, seed)?)
        }
        (Objective::Electra, PretrainInit::Pretrained(dir)) => {
            let model = ElectraPretrainingModel::from_pretrained(dir, (e.generator_hidden, e.generator_layers), dev, seed)?;
            Box::new(electra::Electra { model, discriminator_weight: e.discriminator_weight })
        }
        (Objective::Electra, PretrainInit::Preset { name, vocab }) => {
            let (config, tokenizer) = preset_config(name, vocab, opts.max_len)?;
            let gen = GeneratorConfig::for_discriminator(&config, e.generator_hidden, e.generator_layers)?;
            let model = ElectraPretrainingModel::new(config, gen, tokenizer, dev, seed)?;
            Box::new(electra::Electra { model, discriminator_weight: e.discriminator_weight })
        }
    })
}

/// The model of an output directory whose checkpoint a run resumes from.
fn resume_model(opts: &PretrainOptions, objective: Objective, ckpt: &Path) -> Result<Box<dyn PretrainingModel>> {
    let weights = ckpt.join("model.safetensors");
    Ok(match objective {
        Objective::MaskedLm => {
            let model = MaskedLanguageModel::load_architecture(&opts.out, &opts.device)?;
            model.load_weights(&weights, false)?;
            Box::new(model)
        }
        Objective::Electra => {
            let model = ElectraPretrainingModel::load_architecture(&opts.out, &opts.device)?;
            model.load_weights(&weights)?;
            Box::new(electra::Electra { model, discriminator_weight: opts.electra.discriminator_weight })
        }
    })
}

/// Batches of epoch `epoch`: a seeded shuffle of all segments.
fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)));
    order
}

fn step_rng(seed: u64, step: usize) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0xA5A5_5A5A_0000_0000 ^ (step as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

fn check_options(opts: &PretrainOptions) -> Result<()> {
    if opts.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    if opts.shards == 0 || opts.shards > opts.batch_size {
        bail!("--shards {} must be between 1 and the batch size ({})", opts.shards, opts.batch_size);
    }
    if opts.shards > 1 && opts.objective == Objective::Electra {
        bail!("--shards supports --objective mlm only (ELECTRA's losses are not means over one kind of term)");
    }
    masking::check_prob(opts.mask_prob)?;
    if matches!(opts.budget, Budget::Epochs(0) | Budget::Steps(0)) {
        bail!("--epochs / --steps must be positive");
    }
    if opts.objective == Objective::Electra {
        electra::check_discriminator_weight(opts.electra.discriminator_weight)?;
    } else if opts.electra != ElectraOptions::default() {
        bail!("--generator-hidden, --generator-layers and --discriminator-weight need --objective electra");
    }
    Ok(())
}

/// The training record `training.json` of a fresh run.
fn training_record(opts: &PretrainOptions) -> serde_json::Value {
    let e = &opts.electra;
    serde_json::json!({
        "task": match opts.objective { Objective::MaskedLm => "masked-lm", Objective::Electra => "electra" },
        "corpus": opts.corpus, "init": format!("{:?}", opts.init),
        "mask_prob": opts.mask_prob, "whole_word": opts.whole_word, "budget": format!("{:?}", opts.budget),
        "batch_size": opts.batch_size, "lr": opts.lr, "max_len": opts.max_len, "seed": opts.seed,
        "warmup_ratio": opts.warmup_ratio, "weight_decay": opts.weight_decay,
        "max_grad_norm": opts.max_grad_norm, "heldout_percent": opts.heldout_percent,
        "generator_hidden": e.generator_hidden, "generator_layers": e.generator_layers,
        "discriminator_weight": (opts.objective == Objective::Electra).then_some(e.discriminator_weight),
        "trainer_version": env!("CARGO_PKG_VERSION"),
    })
}

/// Running means of the training losses between two held-out evaluations.
#[derive(Default)]
struct LossWindow {
    total: f64,
    generator: f64,
    discriminator: f64,
    steps: usize,
    segments: usize,
}

impl LossWindow {
    fn mean(&self, sum: f64) -> f64 {
        sum / self.steps.max(1) as f64
    }
}

pub fn pretrain(opts: &PretrainOptions) -> Result<PretrainSummary> {
    check_options(opts)?;
    let started = Instant::now();
    let checkpoint = resume_or_fresh(&opts.out, opts.resume)?;
    let (model, state) = match &checkpoint {
        Some(ckpt) => {
            let state: PretrainState = read_state(ckpt)?;
            if state.seed != opts.seed || state.batch_size != opts.batch_size || state.objective != opts.objective || state.shards != opts.shards {
                bail!(
                    "{}: checkpoint was made with --objective {} --seed {} --batch-size {} --shards {}; resume with the same values",
                    ckpt.display(), objective_flag(state.objective), state.seed, state.batch_size, state.shards
                );
            }
            (resume_model(opts, state.objective, ckpt)?, Some(state))
        }
        None => {
            let model = build_model(opts)?;
            model.save(&opts.out)?;
            bundle::atomic::write_json(&opts.out.join(TRAINING_RECORD), &training_record(opts))?;
            (model, None)
        }
    };
    let masking = masking_for(model.tokenizer(), opts.mask_prob)?;
    let (train, heldout) = load_segments(opts, model.tokenizer())?;
    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let total_steps = match opts.budget {
        Budget::Epochs(e) => e * steps_per_epoch,
        Budget::Steps(s) => s,
    };
    let mut state = state.unwrap_or(PretrainState {
        objective: opts.objective,
        step: 0,
        total_steps,
        seed: opts.seed,
        batch_size: opts.batch_size,
        shards: opts.shards,
        elapsed_secs: 0.0,
        history: vec![],
    });
    if state.total_steps != total_steps {
        bail!(
            "{}: the checkpoint plans {} steps, these options {total_steps}; resume with the same corpus and --epochs/--steps",
            opts.out.display(), state.total_steps
        );
    }
    let mut opt = AdamW::new(model.varmap().data().lock().unwrap().clone(), opts.weight_decay)?;
    if let Some(ckpt) = &checkpoint {
        opt.load(&ckpt.join("optimizer.safetensors"), state.step)?;
        eprintln!("resuming at step {} of {total_steps}", state.step);
    }
    eprintln!(
        "pretraining ({}) on {} segments ({} held out, {} tokens per segment at most), {steps_per_epoch} steps per epoch, {total_steps} steps",
        objective_flag(opts.objective), train.len(), heldout.len(), opts.max_len
    );
    let warmup = ((total_steps as f64) * opts.warmup_ratio).round() as usize;
    let bar = progress_bar(total_steps, opts.progress);
    bar.set_position(state.step as u64);
    let mut window = LossWindow::default();
    let mut window_start = Instant::now();
    let mut order: Option<(usize, Vec<usize>)> = None;
    let pad = model.pad_id();
    while state.step < total_steps {
        let step = state.step;
        let epoch = step / steps_per_epoch;
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            order = Some((epoch, epoch_order(train.len(), opts.seed, epoch)));
        }
        let (_, idx) = order.as_ref().unwrap();
        let in_epoch = step % steps_per_epoch;
        let rows: Vec<&Segment> = idx.iter().skip(in_epoch * opts.batch_size).take(opts.batch_size).map(|&i| &train[i]).collect();
        let mut rng = step_rng(opts.seed, step);
        let lr = lr_at(step, total_steps, warmup, opts.lr);
        let parts = std::cell::Cell::new(None);
        let loss = if opts.shards > 1 {
            // The shards draw their masks from the step's generator in row order: the
            // masks of the whole batch.
            let batches = rows
                .chunks(rows.len().div_ceil(opts.shards))
                .map(|part| MaskedBatch::new(part, &masking, pad, model.device(), &mut rng))
                .collect::<Result<Vec<_>>>()?;
            let model = model.as_ref();
            let shards: Vec<Shard> = batches
                .iter()
                .filter(|b| b.predictions() > 0)
                .map(|b| Shard {
                    terms: b.predictions(),
                    loss: Box::new(move || -> Result<candle_core::Tensor> {
                        Ok(model.loss(b, &mut step_rng(opts.seed, step), true)?.total)
                    }),
                })
                .collect();
            resumable_sharded_step(&mut opt, shards, (lr, opts.max_grad_norm), (opts.seed, step), &opts.out, opts.stop_after_steps)
        } else {
            let batch = MaskedBatch::new(&rows, &masking, pad, model.device(), &mut rng)?;
            let loss_of = || -> Result<candle_core::Tensor> {
                let l = model.loss(&batch, &mut rng, true)?;
                if let Some((g, d)) = &l.parts {
                    parts.set(Some((g.to_scalar::<f32>()? as f64, d.to_scalar::<f32>()? as f64)));
                }
                Ok(l.total)
            };
            resumable_step(&mut opt, loss_of, (lr, opts.max_grad_norm), (opts.seed, step), &opts.out, opts.stop_after_steps)
        }
        .inspect_err(|_| bar.abandon())?;
        state.step += 1;
        window.total += loss as f64;
        if let Some((g, d)) = parts.get() {
            window.generator += g;
            window.discriminator += d;
        }
        window.steps += 1;
        window.segments += rows.len();
        let rate = window.segments as f64 / window_start.elapsed().as_secs_f64();
        bar.set_message(format!("loss {:.3} {rate:.0} seg/s", window.mean(window.total)));
        bar.inc(1);
        if bar.is_hidden() && state.step % 50 == 0 {
            eprintln!("step {}/{total_steps} loss {:.4} {rate:.1} seg/s", state.step, window.mean(window.total));
        }
        let last = state.step == total_steps;
        if (opts.eval_every > 0 && state.step % opts.eval_every == 0) || last {
            let h = model.evaluate(&heldout, &masking, 64)?;
            let elapsed = state.elapsed_secs + window_start.elapsed().as_secs_f64();
            let electra = opts.objective == Objective::Electra;
            let m = PretrainMetrics {
                step: state.step,
                epoch: state.step as f64 / steps_per_epoch as f64,
                lr,
                train_loss: window.mean(window.total),
                heldout_loss: h.mlm_loss,
                heldout_accuracy: h.mlm_accuracy,
                heldout_predictions: h.predictions,
                elapsed_secs: elapsed,
                segments_per_sec: rate,
                train_generator_loss: electra.then(|| window.mean(window.generator)),
                train_discriminator_loss: electra.then(|| window.mean(window.discriminator)),
                heldout_discriminator: h.discriminator.clone(),
            };
            log_line(&bar, metrics_line(&m));
            state.history.push(m);
            state.elapsed_secs = elapsed;
            bundle::atomic::write_json_lines(&opts.out.join("metrics.jsonl"), &state.history)?;
            model.save_weights(&opts.out)?;
            window = LossWindow::default();
            window_start = Instant::now();
        }
        if last || (opts.save_every > 0 && state.step % opts.save_every == 0) {
            let mut saved = state.clone();
            saved.elapsed_secs = state.elapsed_secs + window_start.elapsed().as_secs_f64();
            save_checkpoint(&opts.out, model.varmap(), &opt, &saved)?;
        }
    }
    bar.finish_and_clear();
    let last = state.history.last().context("no evaluation was run")?;
    Ok(PretrainSummary {
        objective: opts.objective,
        steps: state.step,
        train_segments: train.len(),
        heldout_segments: heldout.len(),
        final_heldout_loss: last.heldout_loss,
        final_heldout_accuracy: last.heldout_accuracy,
        final_heldout_discriminator: last.heldout_discriminator.clone(),
        wall_secs: started.elapsed().as_secs_f64(),
    })
}

/// The value of `--objective` that selects `o`.
pub fn objective_flag(o: Objective) -> &'static str {
    match o {
        Objective::MaskedLm => "mlm",
        Objective::Electra => "electra",
    }
}

fn metrics_line(m: &PretrainMetrics) -> String {
    let mut line = format!(
        "step {}: train loss {:.4}, held-out MLM loss {:.4}, masked-token accuracy {:.4} ({} predictions), {:.1} seg/s",
        m.step, m.train_loss, m.heldout_loss, m.heldout_accuracy, m.heldout_predictions, m.segments_per_sec
    );
    if let (Some(g), Some(d), Some(h)) = (m.train_generator_loss, m.train_discriminator_loss, &m.heldout_discriminator) {
        line += &format!(
            "; train generator {g:.4} discriminator {d:.4}; held-out discriminator loss {:.4}, accuracy {:.4}, replaced {:.3} of tokens, {:.3} of them found",
            h.loss, h.accuracy, h.replaced_share, h.replaced_recall
        );
    }
    line
}
