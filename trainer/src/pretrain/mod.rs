//! Masked-LM pretraining (`trainer pretrain`), BERT's recipe: 15% of the
//! tokens predicted (80% [MASK], 10% random, 10% kept), the decoder tied to
//! the word embeddings, the loss on masked positions only. Masks are drawn
//! afresh every step from a generator seeded by (seed, step), and the data
//! order by (seed, epoch), so a resumed run continues exactly.

pub mod corpus;
pub mod masking;

use crate::model::mlm::MaskedLanguageModel;
use crate::model::presets;
use crate::optim::AdamW;
use crate::train::checkpoint::{read_state, resume_or_fresh, save_checkpoint};
use crate::train::step::{log_line, lr_at, progress_bar, resumable_step};
use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor, D};
use corpus::Segment;
use masking::Masking;
use rand::{rngs::StdRng, seq::SliceRandom, SeedableRng};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
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

#[derive(Debug, Clone)]
pub struct PretrainOptions {
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
}

impl PretrainOptions {
    pub fn new(corpus: Vec<PathBuf>, out: PathBuf, init: PretrainInit) -> Self {
        Self {
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
        }
    }
}

/// One line of `metrics.jsonl`: the held-out masked-LM loss and accuracy at a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainMetrics {
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// Mean training loss since the previous line.
    pub train_loss: f64,
    pub heldout_loss: f64,
    pub heldout_accuracy: f64,
    pub heldout_predictions: usize,
    pub elapsed_secs: f64,
    pub segments_per_sec: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PretrainState {
    step: usize,
    total_steps: usize,
    seed: u64,
    batch_size: usize,
    elapsed_secs: f64,
    history: Vec<PretrainMetrics>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PretrainSummary {
    pub steps: usize,
    pub train_segments: usize,
    pub heldout_segments: usize,
    pub final_heldout_loss: f64,
    pub final_heldout_accuracy: f64,
    pub wall_secs: f64,
}

/// The held-out slice is capped: evaluating it should cost seconds, not minutes.
const MAX_HELDOUT_SEGMENTS: usize = 1000;
const TRAINING_RECORD: &str = "training.json";

/// Training and held-out segments of the corpus files.
pub fn load_segments(opts: &PretrainOptions, model: &MaskedLanguageModel) -> Result<(Vec<Segment>, Vec<Segment>)> {
    let texts = corpus::read_corpora(&opts.corpus)?;
    let (heldout, train): (Vec<String>, Vec<String>) =
        texts.into_iter().partition(|t| corpus::is_heldout(t, opts.heldout_percent));
    let jieba = opts.whole_word.then(jieba_rs::Jieba::new);
    let train = corpus::build_segments(&train, &model.tokenizer, opts.max_len, jieba.as_ref())?;
    let mut heldout = corpus::build_segments(&heldout, &model.tokenizer, opts.max_len, jieba.as_ref())?;
    heldout.truncate(MAX_HELDOUT_SEGMENTS);
    if train.is_empty() {
        bail!("the corpus yields no training segments");
    }
    if heldout.is_empty() {
        bail!("the held-out slice ({}% of the documents) is empty: give a larger corpus or a larger --heldout-percent", opts.heldout_percent);
    }
    Ok((train, heldout))
}

fn masking_for(model: &MaskedLanguageModel, prob: f64) -> Result<Masking> {
    let tok = &model.tokenizer;
    let id = |t: &str| tok.token_to_id(t).with_context(|| format!("the vocabulary lacks {t}"));
    let specials: Vec<u32> =
        crate::tokenize::SPECIAL_TOKENS.iter().filter_map(|t| tok.token_to_id(t)).collect();
    Masking::new(prob, id("[MASK]")?, crate::tokenize::vocab_size(tok) as u32, &specials)
}

/// Model inputs for a batch of segments: padded ids, mask, the flat
/// positions to predict and their original ids.
fn masked_batch(model: &MaskedLanguageModel, segments: &[&Segment], masking: &Masking, rng: &mut StdRng) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let width = segments.iter().map(|s| s.ids.len()).max().unwrap_or(1);
    let pad = model.config.pad_token_id as u32;
    let (mut ids, mut mask, mut positions, mut targets) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (row, seg) in segments.iter().enumerate() {
        let (inputs, predict) = masking.apply(seg, rng);
        ids.extend_from_slice(&inputs);
        ids.extend(std::iter::repeat_n(pad, width - inputs.len()));
        mask.extend(std::iter::repeat_n(1u32, inputs.len()));
        mask.extend(std::iter::repeat_n(0u32, width - inputs.len()));
        for (i, original) in predict {
            positions.push((row * width + i) as u32);
            targets.push(original);
        }
    }
    let dev = &model.device;
    let shape = (segments.len(), width);
    let n = positions.len();
    Ok((
        Tensor::from_vec(ids, shape, dev)?,
        Tensor::from_vec(mask, shape, dev)?,
        Tensor::from_vec(positions, n, dev)?,
        Tensor::from_vec(targets, n, dev)?,
    ))
}

/// Masked-LM loss and accuracy on `segments` with masks drawn from a fixed
/// seed, so every evaluation sees the same positions.
pub fn evaluate(model: &MaskedLanguageModel, segments: &[Segment], masking: &Masking, batch_size: usize) -> Result<(f64, f64, usize)> {
    let mut rng = StdRng::seed_from_u64(0x5EED);
    let (mut loss_sum, mut correct, mut n) = (0f64, 0usize, 0usize);
    for chunk in segments.chunks(batch_size.max(1)) {
        let refs: Vec<&Segment> = chunk.iter().collect();
        let (ids, mask, positions, targets) = masked_batch(model, &refs, masking, &mut rng)?;
        let logits = model.model.masked_logits(&ids, &mask, &positions, false)?;
        let count = targets.dim(0)?;
        loss_sum += candle_nn::loss::cross_entropy(&logits, &targets)?.to_scalar::<f32>()? as f64 * count as f64;
        let predicted: Vec<u32> = logits.argmax(D::Minus1)?.to_vec1()?;
        let gold: Vec<u32> = targets.to_vec1()?;
        correct += predicted.iter().zip(&gold).filter(|(p, g)| p == g).count();
        n += count;
    }
    let n_f = n.max(1) as f64;
    Ok((loss_sum / n_f, correct as f64 / n_f, n))
}

fn build_model(opts: &PretrainOptions) -> Result<MaskedLanguageModel> {
    match &opts.init {
        PretrainInit::Pretrained(dir) => MaskedLanguageModel::from_pretrained(dir, &opts.device, opts.seed),
        PretrainInit::Preset { name, vocab } => {
            let tokenizer = crate::tokenize::load_tokenizer_path(vocab)?;
            let mut config = presets::preset(name, crate::tokenize::vocab_size(&tokenizer))?;
            config.max_position_embeddings = config.max_position_embeddings.max(opts.max_len);
            MaskedLanguageModel::new(config, tokenizer, &opts.device, opts.seed)
        }
    }
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

pub fn pretrain(opts: &PretrainOptions) -> Result<PretrainSummary> {
    if opts.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    masking::check_prob(opts.mask_prob)?;
    if matches!(opts.budget, Budget::Epochs(0) | Budget::Steps(0)) {
        bail!("--epochs / --steps must be positive");
    }
    let started = Instant::now();
    let checkpoint = resume_or_fresh(&opts.out, opts.resume)?;
    let (model, state) = match &checkpoint {
        Some(ckpt) => {
            let model = MaskedLanguageModel::load_architecture(&opts.out, &opts.device)?;
            model.load_weights(&ckpt.join("model.safetensors"), false)?;
            let state: PretrainState = read_state(ckpt)?;
            if state.seed != opts.seed || state.batch_size != opts.batch_size {
                bail!(
                    "{}: checkpoint was made with --seed {} --batch-size {}; resume with the same values",
                    ckpt.display(), state.seed, state.batch_size
                );
            }
            (model, Some(state))
        }
        None => {
            let model = build_model(opts)?;
            model.save(&opts.out)?;
            let record = serde_json::json!({
                "task": "masked-lm", "corpus": opts.corpus, "init": format!("{:?}", opts.init),
                "mask_prob": opts.mask_prob, "whole_word": opts.whole_word, "budget": format!("{:?}", opts.budget),
                "batch_size": opts.batch_size, "lr": opts.lr, "max_len": opts.max_len, "seed": opts.seed,
                "warmup_ratio": opts.warmup_ratio, "weight_decay": opts.weight_decay,
                "max_grad_norm": opts.max_grad_norm, "heldout_percent": opts.heldout_percent,
                "trainer_version": env!("CARGO_PKG_VERSION"),
            });
            bundle::atomic::write_json(&opts.out.join(TRAINING_RECORD), &record)?;
            (model, None)
        }
    };
    let masking = masking_for(&model, opts.mask_prob)?;
    let (train, heldout) = load_segments(opts, &model)?;
    let steps_per_epoch = train.len().div_ceil(opts.batch_size);
    let total_steps = match opts.budget {
        Budget::Epochs(e) => e * steps_per_epoch,
        Budget::Steps(s) => s,
    };
    let mut state = state.unwrap_or(PretrainState {
        step: 0,
        total_steps,
        seed: opts.seed,
        batch_size: opts.batch_size,
        elapsed_secs: 0.0,
        history: vec![],
    });
    if state.total_steps != total_steps {
        bail!(
            "{}: the checkpoint plans {} steps, these options {total_steps}; resume with the same corpus and --epochs/--steps",
            opts.out.display(), state.total_steps
        );
    }
    let mut opt = AdamW::new(model.varmap.data().lock().unwrap().clone(), opts.weight_decay)?;
    if let Some(ckpt) = &checkpoint {
        opt.load(&ckpt.join("optimizer.safetensors"), state.step)?;
        eprintln!("resuming at step {} of {total_steps}", state.step);
    }
    eprintln!(
        "pretraining on {} segments ({} held out, {} tokens per segment at most), {steps_per_epoch} steps per epoch, {total_steps} steps",
        train.len(), heldout.len(), opts.max_len
    );
    let warmup = ((total_steps as f64) * opts.warmup_ratio).round() as usize;
    let bar = progress_bar(total_steps, opts.progress);
    bar.set_position(state.step as u64);
    let (mut loss_sum, mut loss_n) = (0f64, 0usize);
    let mut window_start = Instant::now();
    let mut window_segments = 0usize;
    let mut order: Option<(usize, Vec<usize>)> = None;
    while state.step < total_steps {
        let step = state.step;
        let epoch = step / steps_per_epoch;
        if order.as_ref().is_none_or(|(e, _)| *e != epoch) {
            order = Some((epoch, epoch_order(train.len(), opts.seed, epoch)));
        }
        let (_, idx) = order.as_ref().unwrap();
        let in_epoch = step % steps_per_epoch;
        let rows: Vec<&Segment> = idx.iter().skip(in_epoch * opts.batch_size).take(opts.batch_size).map(|&i| &train[i]).collect();
        let (ids, mask, positions, targets) = masked_batch(&model, &rows, &masking, &mut step_rng(opts.seed, step))?;
        let lr = lr_at(step, total_steps, warmup, opts.lr);
        let loss_of = || -> Result<Tensor> {
            let logits = model.model.masked_logits(&ids, &mask, &positions, true)?;
            Ok(candle_nn::loss::cross_entropy(&logits, &targets)?)
        };
        let loss = resumable_step(&mut opt, loss_of, (lr, opts.max_grad_norm), (opts.seed, step), &opts.out, opts.stop_after_steps)
            .inspect_err(|_| bar.abandon())?;
        state.step += 1;
        loss_sum += loss as f64;
        loss_n += 1;
        window_segments += rows.len();
        let rate = window_segments as f64 / window_start.elapsed().as_secs_f64();
        bar.set_message(format!("loss {:.3} {rate:.0} seg/s", loss_sum / loss_n as f64));
        bar.inc(1);
        if bar.is_hidden() && state.step % 50 == 0 {
            eprintln!("step {}/{total_steps} loss {:.4} {rate:.1} seg/s", state.step, loss_sum / loss_n as f64);
        }
        let last = state.step == total_steps;
        if (opts.eval_every > 0 && state.step % opts.eval_every == 0) || last {
            let (heldout_loss, heldout_accuracy, heldout_predictions) = evaluate(&model, &heldout, &masking, 64)?;
            let elapsed = state.elapsed_secs + window_start.elapsed().as_secs_f64();
            let m = PretrainMetrics {
                step: state.step,
                epoch: state.step as f64 / steps_per_epoch as f64,
                lr,
                train_loss: loss_sum / loss_n.max(1) as f64,
                heldout_loss,
                heldout_accuracy,
                heldout_predictions,
                elapsed_secs: elapsed,
                segments_per_sec: rate,
            };
            log_line(&bar, format!(
                "step {}: train loss {:.4}, held-out MLM loss {:.4}, masked-token accuracy {:.4} ({} predictions), {:.1} seg/s",
                m.step, m.train_loss, m.heldout_loss, m.heldout_accuracy, m.heldout_predictions, m.segments_per_sec
            ));
            state.history.push(m);
            state.elapsed_secs = elapsed;
            bundle::atomic::write_json_lines(&opts.out.join("metrics.jsonl"), &state.history)?;
            model.save_weights(&opts.out.join("model.safetensors"))?;
            (loss_sum, loss_n, window_segments) = (0.0, 0, 0);
            window_start = Instant::now();
        }
        if last || (opts.save_every > 0 && state.step % opts.save_every == 0) {
            let mut saved = state.clone();
            saved.elapsed_secs = state.elapsed_secs + window_start.elapsed().as_secs_f64();
            save_checkpoint(&opts.out, &model.varmap, &opt, &saved)?;
        }
    }
    bar.finish_and_clear();
    let last = state.history.last().context("no evaluation was run")?;
    Ok(PretrainSummary {
        steps: state.step,
        train_segments: train.len(),
        heldout_segments: heldout.len(),
        final_heldout_loss: last.heldout_loss,
        final_heldout_accuracy: last.heldout_accuracy,
        wall_secs: started.elapsed().as_secs_f64(),
    })
}
