//! Fine-tuning: AdamW with linear warm-up and decay, gradient clipping,
//! dropout, dev evaluation every epoch (the best epoch is kept), atomic
//! checkpoints and `--resume`.

use crate::data::LabelSet;
use crate::distill::student_from_teacher;
use crate::metrics::{self, EvalReport};
use crate::model::{presets, SequenceClassifier};
use crate::optim::AdamW;
use anyhow::{bail, Context, Result};
use bundle::dataset::read_dataset;
use bundle::ExitPolicy;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

pub mod batching;
pub mod checkpoint;
pub mod evaluate;
pub mod objective;
pub mod options;
pub mod step;

pub use batching::{augment_training_set, batch, encode_dataset, epoch_batches, Encoded};
use checkpoint::save_checkpoint;
pub use evaluate::evaluate;
use objective::{Batch, PreparedObjective};
pub use objective::{Mix, Objective, Scheduler};
pub use options::{FinetuneOptions, ModelInit};
pub use step::{log_line, lr_at, train_step};

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

fn build_model(opts: &FinetuneOptions, labels: LabelSet, teacher: Option<&SequenceClassifier>) -> Result<SequenceClassifier> {
    match &opts.init {
        ModelInit::Student { layers, pick } => {
            let teacher = teacher.context("a student needs --teacher")?;
            if let Objective::Theseus { .. } = opts.objective {
                crate::theseus::block_size(teacher.config.num_hidden_layers, *layers)?;
            }
            student_from_teacher(teacher, *layers, pick, opts.seed)
        }
        ModelInit::NarrowStudent { layers, hidden, heads, intermediate } => {
            let teacher = teacher.context("a student needs --teacher")?;
            let mut config = teacher.config.clone();
            config.num_hidden_layers = *layers;
            config.hidden_size = *hidden;
            config.num_attention_heads = *heads;
            config.intermediate_size = *intermediate;
            config.exit_branches = None;
            config.validate().map_err(|e| anyhow::anyhow!("student shape: {e}"))?;
            SequenceClassifier::new(config, labels, teacher.tokenizer.clone(), &opts.device, opts.seed)
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
    let checkpoint = checkpoint::resume_or_fresh(&opts.out, opts.resume)?;
    let (model, state) = match &checkpoint {
        Some(ckpt) => {
            let model = SequenceClassifier::load_architecture(&opts.out, &opts.device)?;
            model.load_weights(&ckpt.join("model.safetensors"), false)?;
            let state: TrainState = checkpoint::read_state(ckpt)?;
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
        None => {
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
            bundle::atomic::write_json(&opts.out.join(TRAINING_RECORD), &record)?;
            (model, None)
        }
    };
    let mut train = encode_dataset(&model, &opts.train, opts.max_len)?;
    if let Objective::FastBert { augment: true, .. } = opts.objective {
        augment_training_set(&model, &opts.train, opts.max_len, opts.seed, &mut train)?;
    }
    let dev = encode_dataset(&model, &opts.dev, opts.max_len)?;
    let objective = PreparedObjective::prepare(opts, teacher, &model, &train)?;
    if let Some(ckpt) = &checkpoint {
        // Parameters the objective added (a projection) resume too.
        crate::model::checkpoint::copy_weights(&model.varmap, &model.device, &ckpt.join("model.safetensors"), &|_| false)?;
    }
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

    let bar = step::progress_bar(total_steps, opts.progress);
    bar.set_position(state.step as u64);
    let mut trained_examples = 0usize;
    let mut train_secs = 0f64;
    while state.epoch < opts.epochs {
        let epoch = state.epoch;
        let epoch_start = Instant::now();
        let batches = epoch_batches(&lengths, opts.batch_size, opts.seed, epoch);
        let (mut loss_sum, mut loss_n, mut epoch_examples) = (0f64, 0usize, 0usize);
        for idx in batches.iter().skip(state.batches_done) {
            let b = Batch::new(&model, &train, idx)?;
            let lr = lr_at(state.step, total_steps, warmup, opts.lr);
            let loss_of = || objective.loss(&model, &b, state.step, total_steps, opts.seed);
            let step_of = (opts.seed, state.step);
            let loss = step::resumable_step(&mut opt, loss_of, (lr, opts.max_grad_norm), step_of, &opts.out, opts.stop_after_steps)
                .inspect_err(|_| bar.abandon())?;
            state.step += 1;
            state.batches_done += 1;
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
                save_checkpoint(&opts.out, &model.varmap, &opt, &state)?;
            }
        }
        let epoch_secs = epoch_start.elapsed().as_secs_f64();
        trained_examples += epoch_examples;
        train_secs += epoch_secs;
        let report = if model.model.has_branches() {
            // FastBERT: rank epochs by the exits' mean accuracy: the branches'
            // (the final exit is frozen), or with joint training every exit's.
            let r = crate::exits::evaluate_with_exits(&model, &dev, opts.batch_size.max(64), ExitPolicy::Full)?;
            let joint = matches!(opts.objective, Objective::FastBert { joint: true, .. });
            let ranked = if joint { &r.exit_accuracy[..] } else { &r.exit_accuracy[..r.exit_accuracy.len() - 1] };
            let mean = ranked.iter().sum::<f64>() / ranked.len() as f64;
            log_line(&bar, format!(
                "epoch {}: {} accuracies {:?} (mean {mean:.4}; the CI and macro-F1 below are the final exit's)",
                epoch + 1,
                if joint { "exit" } else { "branch" },
                ranked.iter().map(|a| (a * 1e4).round() / 1e4).collect::<Vec<_>>()
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
        bundle::atomic::write_json_lines(&opts.out.join("metrics.jsonl"), &state.history)?;
        state.epoch += 1;
        state.batches_done = 0;
        save_checkpoint(&opts.out, &model.varmap, &opt, &state)?;
    }
    bar.finish_and_clear();
    let best = state.history.iter().rev().find(|m| m.best).context("no epoch completed")?;
    Ok(FinetuneSummary {
        best_dev_accuracy: state.best_dev_accuracy,
        best_epoch: best.epoch,
        steps: state.step,
        wall_secs: started.elapsed().as_secs_f64(),
        train_examples_per_sec: if train_secs > 0.0 { trained_examples as f64 / train_secs } else { 0.0 },
        peak_rss_mib: metrics::peak_rss_mib(),
    })
}
