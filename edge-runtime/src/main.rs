//! `edge-runtime`: classify text on the device with a bundle, exiting early;
//! benchmark what each exit layer costs; calibrate the default exit policy.

use anyhow::Result;
use bundle::dataset::read_texts;
use bundle::{ExitPolicy, Precision};
use clap::{ArgGroup, Parser, Subcommand};
use edge_runtime::bench::{bench, markdown, write_report, BenchOptions, Progress};
use edge_runtime::calibrate::{calibrate_bundle, Target};
use edge_runtime::{set_threads, Compute, EdgeClassifier, Prediction};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Longest stdin line accepted (bytes); longer lines get an error line.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Parser)]
#[command(
    name = "edge-runtime",
    about = "Run a BERT bundle layer by layer with early exit (tract)",
    disable_version_flag = true,
    subcommand_required = false,
    arg_required_else_help = true
)]
struct Cli {
    /// Threads for tract's matrix products (1 = the calling thread only).
    #[arg(long, global = true, default_value_t = 1)]
    threads: usize,
    /// Float type to compute in: auto = f16 for an f16 bundle on a CPU with f16
    /// arithmetic (aarch64 FEAT_FP16), else f32.
    #[arg(long, global = true, value_enum, default_value_t = Compute::Auto)]
    compute: Compute,
    /// Print the version (with --verbose: the CPU features and kernels tract uses here).
    #[arg(short = 'V', long)]
    version: bool,
    #[arg(short, long)]
    verbose: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Args)]
struct PolicyArgs {
    /// Exit at the first layer whose normalised entropy is below S (FastBERT).
    #[arg(long, conflicts_with_all = ["patience", "full"])]
    speed: Option<f32>,
    /// Exit once the prediction is unchanged for P consecutive layers (PABEE).
    #[arg(long, conflicts_with = "full")]
    patience: Option<usize>,
    /// A fixed budget: exit at the K-th exit classifier (FastBERT: after layer K).
    #[arg(long, conflicts_with_all = ["speed", "patience", "full"])]
    exit_layer: Option<usize>,
    /// Run every layer.
    #[arg(long)]
    full: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Classify texts (arguments, or one per stdin line); one JSON line per text:
    /// {"text","label","prob","exit_layer","latency_us","truncated"}.
    /// Without a policy flag the bundle's default policy is used.
    Classify {
        /// Bundle directory (from `trainer export` or `quantize`).
        #[arg(long)]
        bundle: PathBuf,
        #[command(flatten)]
        policy: PolicyArgs,
        /// Texts classified together; those that exit leave the batch, the rest go on.
        #[arg(long, default_value_t = 1)]
        batch_size: usize,
        /// Also print the exit's logits ("logits": [...]).
        #[arg(long)]
        with_logits: bool,
        texts: Vec<String>,
    },
    /// Accuracy, layers run, exit histogram and latency per exit layer under
    /// several policies, side by side; writes report.json, report.md and SVG plots.
    Bench {
        #[arg(long)]
        bundle: PathBuf,
        /// Labelled JSONL ({"text","label"} per line), e.g. the test split.
        #[arg(long)]
        data: PathBuf,
        /// Entropy speeds to measure (bundles with an exit after every layer).
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3,0.5,0.8")]
        speeds: Vec<f32>,
        /// Patience values to measure.
        #[arg(long, value_delimiter = ',', default_value = "1,2,3,4")]
        patience: Vec<usize>,
        /// Report directory.
        #[arg(long, default_value = "bench-report")]
        out: PathBuf,
        #[arg(long, default_value_t = 1)]
        batch_size: usize,
        /// Texts run before timing starts.
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// Measure only the first N texts.
        #[arg(long)]
        limit: Option<usize>,
        /// Measure full depth (and the bundle's default policy) only.
        #[arg(long)]
        full_only: bool,
    },
    /// Token ids of each text as the bundle's tokenizer gives them (JSON lines
    /// {"ids","truncated"}), for feeding the same inputs to other runtimes.
    Tokenize {
        #[arg(long)]
        bundle: PathBuf,
        /// Labelled or plain JSONL with a "text" field per line, or plain text, one text per line.
        #[arg(long)]
        data: PathBuf,
    },
    /// Where the time goes: wall time per tract op kind over N texts at full
    /// depth, batch 1 (every graph, exits included).
    Profile {
        #[arg(long)]
        bundle: PathBuf,
        #[arg(long)]
        data: PathBuf,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// One line per graph node instead of per op kind (matrix products name their kernel).
        #[arg(long)]
        by_node: bool,
    },
    /// Choose the exit policy on labelled data and make it the bundle's default
    /// (the manifest is rewritten atomically).
    #[command(group(ArgGroup::new("goal").required(true).args(["max_accuracy_drop", "target_latency_ms"])))]
    Calibrate {
        #[arg(long)]
        bundle: PathBuf,
        /// Labelled JSONL to calibrate on (use the dev split, not the test split).
        #[arg(long)]
        data: PathBuf,
        /// Fastest policy at most this many accuracy points below full depth.
        #[arg(long)]
        max_accuracy_drop: Option<f64>,
        /// Most accurate policy whose estimated mean latency fits this budget.
        #[arg(long)]
        target_latency_ms: Option<f64>,
    },
}

fn main() {
    bundle::cli::exit_with(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    set_threads(cli.threads);
    let Some(command) = cli.command else {
        // Written, not print!ed: `--version --verbose | head` closes the pipe early.
        let mut out = std::io::stdout().lock();
        writeln!(out, "edge-runtime {} (tract-onnx 0.23.9, {})", env!("CARGO_PKG_VERSION"), std::env::consts::ARCH)?;
        if cli.verbose {
            write!(out, "{}", edge_runtime::kernels::describe())?;
            writeln!(out, "f16 bundles compute in: {:?}", Compute::Auto.resolve(Precision::F16))?;
        }
        return Ok(());
    };
    match command {
        Command::Classify { bundle, policy, batch_size, with_logits, texts } => {
            let model = EdgeClassifier::load_with(&bundle, cli.compute)?;
            let policy = match (policy.speed, policy.patience, policy.exit_layer, policy.full) {
                (Some(speed), ..) => ExitPolicy::Entropy { speed },
                (_, Some(n), ..) => ExitPolicy::Patience { n },
                (_, _, Some(k), _) => ExitPolicy::Layer { k: k.max(1) },
                (.., true) => ExitPolicy::Full,
                _ => model.manifest.default_policy,
            };
            classify(&model, policy, batch_size.max(1), with_logits, texts)
        }
        Command::Bench { bundle, data, speeds, patience, out, batch_size, warmup, limit, full_only } => {
            let model = EdgeClassifier::load_with(&bundle, cli.compute)?;
            let mut policies = Vec::new();
            let branches = model.manifest.exits.iter().flatten().count() > 1;
            if !full_only && branches {
                policies.extend(speeds.into_iter().map(|speed| ExitPolicy::Entropy { speed }));
                policies.extend(patience.into_iter().filter(|&n| n < model.manifest.num_layers).map(|n| ExitPolicy::Patience { n }));
            } else if !full_only {
                eprintln!("{}: only the final exit, measuring full depth", bundle.display());
            }
            let on_progress = Some(Box::new(progress_bar()) as Box<dyn Fn(Progress)>);
            let opts = BenchOptions { policies, batch_size, warmup, limit, threads: cli.threads, on_progress };
            let report = bench(&model, &bundle, &data, &opts)?;
            write_report(&report, &out)?;
            write!(std::io::stdout().lock(), "{}", markdown(&report))?;
            eprintln!("report written to {}", out.display());
            Ok(())
        }
        Command::Tokenize { bundle, data } => {
            let model = EdgeClassifier::load_with(&bundle, cli.compute)?;
            let texts = read_texts(&data)?;
            let mut out = std::io::stdout().lock();
            for (ids, truncated) in model.tokenize_lines(&data, texts.iter().map(|t| (t.line, t.text.as_str())))? {
                writeln!(out, "{}", serde_json::json!({ "ids": ids, "truncated": truncated }))?;
            }
            Ok(())
        }
        Command::Profile { bundle, data, limit, by_node } => {
            let model = EdgeClassifier::load_with(&bundle, cli.compute)?;
            let texts = read_texts(&data)?;
            let tokenized = model.tokenize_lines(&data, texts.iter().take(limit).map(|t| (t.line, t.text.as_str())))?;
            let rows: Vec<Vec<u32>> = tokenized.into_iter().map(|t| t.0).collect();
            model.profile_ops(&rows[..rows.len().min(10)], by_node)?; // warm-up
            let ops = model.profile_ops(&rows, by_node)?;
            let total: f64 = ops.iter().map(|o| o.1.as_secs_f64()).sum();
            let mut out = std::io::stdout().lock();
            writeln!(out, "{:<60} {:>10} {:>7} {:>8}", "op", "ms/text", "share", "calls")?;
            for (op, d, calls) in ops {
                let ms = d.as_secs_f64() * 1e3 / rows.len() as f64;
                writeln!(out, "{op:<60} {ms:>10.4} {:>6.1}% {calls:>8}", d.as_secs_f64() / total * 100.0)?;
            }
            writeln!(out, "{:<60} {:>10.4}", "total", total * 1e3 / rows.len() as f64)?;
            Ok(())
        }
        Command::Calibrate { bundle, data, max_accuracy_drop, target_latency_ms } => {
            let model = EdgeClassifier::load_with(&bundle, cli.compute)?;
            let target = match (max_accuracy_drop, target_latency_ms) {
                (Some(pts), _) => Target::MaxAccuracyDrop { pts },
                (_, Some(ms)) => Target::LatencyMs(ms),
                _ => unreachable!("clap requires one goal"),
            };
            let c = calibrate_bundle(&model, &bundle, &data, target)?;
            let summary = serde_json::json!({
                "chosen": c.chosen, "full": c.full, "target": c.target, "data": c.data, "n": c.n,
                "segment_ms": c.segment_ms, "candidates": c.candidates.len(),
            });
            writeln!(std::io::stdout().lock(), "{summary}")?;
            eprintln!("default policy of {} is now {}", bundle.display(), c.chosen.name);
            Ok(())
        }
    }
}

/// Draws bench's progress on stderr (nothing when stderr is not a terminal).
fn progress_bar() -> impl Fn(Progress) {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} bench [{bar:30}] {pos}/{len} texts × {msg} ({eta} left)")
            .expect("static template")
            .progress_chars("=> "),
    );
    move |p: Progress| {
        bar.set_length(p.total as u64);
        bar.set_message(format!("{} policies", p.policies));
        bar.set_position(p.done as u64);
        if p.done == p.total {
            bar.finish_and_clear();
        }
    }
}

fn json_line(text: &str, p: Result<Prediction, edge_runtime::runtime::RuntimeError>, with_logits: bool) -> serde_json::Value {
    match p {
        Ok(p) if with_logits => {
            let mut line = json_line(text, Ok(Prediction { logits: Vec::new(), ..p.clone() }), false);
            line["logits"] = serde_json::json!(p.logits);
            line
        }
        Ok(p) => serde_json::json!({
            "text": text,
            "label": p.label,
            "prob": p.probs.iter().copied().fold(0f32, f32::max),
            "exit_layer": p.exit_layer,
            "latency_us": p.latencies.iter().map(|d| d.as_micros() as u64).sum::<u64>(),
            "truncated": p.truncated,
        }),
        Err(e) => serde_json::json!({ "text": text, "error": e.to_string() }),
    }
}

/// One input: a text, or a stdin line that could not be read as one.
enum Input {
    Text(String),
    Bad { line: usize, error: String },
}

fn classify(model: &EdgeClassifier, policy: ExitPolicy, batch_size: usize, with_logits: bool, texts: Vec<String>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let flush = |pending: &mut Vec<Input>, out: &mut std::io::StdoutLock| -> Result<()> {
        let texts: Vec<&str> = pending.iter().filter_map(|i| if let Input::Text(t) = i { Some(t.as_str()) } else { None }).collect();
        let mut results = model.classify_texts(&texts, policy).into_iter();
        for input in pending.drain(..) {
            let line = match input {
                Input::Text(t) => json_line(&t, results.next().expect("one result per text"), with_logits),
                Input::Bad { line, error } => serde_json::json!({ "line": line, "error": error }),
            };
            writeln!(out, "{line}")?;
        }
        Ok(out.flush()?)
    };
    let mut pending = Vec::new();
    if !texts.is_empty() {
        for t in texts {
            pending.push(Input::Text(t));
            if pending.len() == batch_size {
                flush(&mut pending, &mut out)?;
            }
        }
        return flush(&mut pending, &mut out);
    }
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    loop {
        buf.clear();
        if reader.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        line_no += 1;
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        pending.push(if buf.len() > MAX_LINE_BYTES {
            Input::Bad { line: line_no, error: format!("line is {} bytes, over the {MAX_LINE_BYTES}-byte limit", buf.len()) }
        } else {
            match String::from_utf8(std::mem::take(&mut buf)) {
                Ok(text) => Input::Text(text),
                Err(e) => Input::Bad { line: line_no, error: format!("invalid UTF-8: {}", e.utf8_error()) },
            }
        });
        if pending.len() == batch_size {
            flush(&mut pending, &mut out)?;
        }
    }
    flush(&mut pending, &mut out)
}
