//! `edge-runtime`: classify text on the device with a bundle, exiting early;
//! benchmark what each exit layer costs; calibrate the default exit policy.

use anyhow::Result;
use bundle::dataset::read_texts;
use bundle::{ExitPolicy, Precision};
use clap::{ArgGroup, Parser, Subcommand};
use edge_runtime::bench::{bench, markdown, write_report, BenchOptions, Progress};
use edge_runtime::calibrate::{calibrate_bundle, Target};
use edge_runtime::{set_threads, Compute, EdgeClassifier, LoadOptions, MatmulKernel, Prediction};
use std::io::{BufRead, Write};
use std::path::PathBuf;

// tract allocates a tensor per op and per run, and a load builds thousands of
// small nodes: mimalloc is faster than glibc's malloc at both, measured in
// docs/results/runtime-speed.md ("The allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
/// Which allocator this build uses, for `--version --verbose` and bench reports.
const ALLOCATOR: &str = if cfg!(feature = "mimalloc") { "mimalloc" } else { "system" };

/// Longest stdin line accepted (bytes); longer lines get an error line and
/// are skipped without being held in memory.
const MAX_LINE_BYTES: usize = 1 << 20;
/// More threads than this is a typo, not a board.
const MAX_THREADS: usize = 256;
const MAX_BATCH: usize = 4096;

fn count(max: usize) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::<usize>::new().range(1..=max as u64)
}

/// An entropy speed: a number in [0, 1].
fn speed(s: &str) -> Result<f32, String> {
    let v: f32 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!("{v} is outside [0, 1]"))
    }
}

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
    #[arg(long, global = true, default_value_t = 1, value_parser = count(MAX_THREADS))]
    threads: usize,
    /// Float type to compute in: auto = f16 for an f16 bundle on a CPU with f16
    /// arithmetic (aarch64 FEAT_FP16), else f32.
    #[arg(long, global = true, value_enum, default_value_t = Compute::Auto)]
    compute: Compute,
    /// Run LayerNormalization as tract's stock expansion instead of the fused
    /// residual-add + LayerNorm op (to measure what the fused op gains).
    #[arg(long, global = true)]
    no_fused_norm: bool,
    /// Run Softmax as tract's own op instead of the runtime's row softmax
    /// (to measure what the row softmax gains).
    #[arg(long, global = true)]
    no_row_softmax: bool,
    /// Threads that parse and optimize the bundle's graphs at load (default: one per core).
    #[arg(long, global = true, value_parser = count(MAX_THREADS))]
    load_threads: Option<usize>,
    /// Optimize the segments after the first exit when a text first reaches
    /// them instead of at load: a shorter cold start when texts exit early.
    /// Every graph is still read and checked at load.
    #[arg(long, global = true)]
    lazy_plans: bool,
    /// Pad each batch's length up to a multiple of N tokens (masked; capped at
    /// the bundle's max_seq_len). 1 pads only to the longest text.
    #[arg(long, global = true, default_value_t = 1, value_parser = count(8192))]
    pad_to_multiple: usize,
    /// The matrix kernel of the products: auto = arm64simd_mmm_f32_12x8_gen on
    /// aarch64 (fewer instructions per text than tract's pick there;
    /// arm64fp16_mmm_f16_16x8_gen in the f16 modes where the CPU has f16
    /// arithmetic), tract's own choice elsewhere; tract = tract's choice; or a
    /// kernel's name from `--version --verbose`. Products it does not suit
    /// keep tract's choice.
    #[arg(long, global = true, value_name = "auto|tract|NAME", default_value = "auto")]
    matmul_kernel: MatmulKernel,
    /// Refuse the bundle unless its digest is HEX (as `inspect`, `export`,
    /// `quantize`, `calibrate` and `to-nnef` print it), before reading any
    /// text: pins the exact bundle a deployment was tested with.
    #[arg(long, global = true, value_name = "HEX")]
    expect_digest: Option<bundle::Digest>,
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
    #[arg(long, conflicts_with_all = ["patience", "full"], value_parser = speed)]
    speed: Option<f32>,
    /// Exit once the prediction is unchanged for P consecutive layers (PABEE).
    #[arg(long, conflicts_with = "full", value_parser = count(usize::MAX))]
    patience: Option<usize>,
    /// A fixed budget: exit at the K-th exit classifier (FastBERT: after layer K).
    #[arg(long, conflicts_with_all = ["speed", "patience", "full"], value_parser = count(usize::MAX))]
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
        #[arg(long, default_value_t = 1, value_parser = count(MAX_BATCH))]
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
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.2,0.3,0.5,0.8", value_parser = speed)]
        speeds: Vec<f32>,
        /// Patience values to measure (those not below the layer count are skipped).
        #[arg(long, value_delimiter = ',', default_value = "1,2,3,4", value_parser = count(usize::MAX))]
        patience: Vec<usize>,
        /// Report directory.
        #[arg(long, default_value = "bench-report")]
        out: PathBuf,
        #[arg(long, default_value_t = 1, value_parser = count(MAX_BATCH))]
        batch_size: usize,
        /// Texts run before timing starts.
        #[arg(long, default_value_t = 20)]
        warmup: usize,
        /// Measure only the first N texts.
        #[arg(long, value_parser = count(usize::MAX))]
        limit: Option<usize>,
        /// Measure full depth (and the bundle's default policy) only.
        #[arg(long)]
        full_only: bool,
    },
    /// What a bundle is, as one JSON line: its digest (what `--expect-digest`
    /// pins), precision, layers, exits, labels, max_seq_len, default policy
    /// and files. Reads and verifies the bundle's files; builds no graph.
    Inspect {
        /// Bundle directory.
        #[arg(long)]
        bundle: PathBuf,
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
        #[arg(long, default_value_t = 100, value_parser = count(usize::MAX))]
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
    /// Write the NNEF variant of an ONNX bundle: each graph as tract's NNEF
    /// archive of the typed graph (own ops included, as --no-fused-norm and
    /// --no-row-softmax choose), for a board binary built without the ONNX
    /// parser; it classifies exactly like the ONNX bundle. Each archive is read
    /// back with the board's reader (only the ops a BERT twin uses). f32 and
    /// int8 bundles; an f16 bundle is refused (convert the f32 one and run it
    /// with --compute f16).
    #[cfg(feature = "onnx")]
    ToNnef {
        /// The ONNX bundle.
        #[arg(long)]
        bundle: PathBuf,
        /// Directory of the NNEF bundle (replaced whole; not the ONNX bundle itself).
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() {
    // tract creates errors as control flow while it optimizes a graph; with
    // RUST_BACKTRACE=1 in the environment (common on a developer's board) each
    // one captured a backtrace: 8% of a load's instructions on a Cortex-A76
    // (docs/results/arm.md). Only library backtraces are turned off, and only
    // when the user has not asked for them: a panic still prints its own.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // First thing in main, before any thread exists.
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    bundle::cli::exit_with(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    set_threads(cli.threads)?;
    let Some(command) = cli.command else {
        // Written, not print!ed: `--version --verbose | head` closes the pipe early.
        let mut out = std::io::stdout().lock();
        writeln!(out, "edge-runtime {} (tract {}, {})", env!("CARGO_PKG_VERSION"), edge_runtime::TRACT_VERSION, std::env::consts::ARCH)?;
        if cli.verbose {
            write!(out, "{}", edge_runtime::kernels::describe())?;
            writeln!(out, "f16 bundles compute in: {:?}", Compute::Auto.resolve(Precision::F16))?;
            writeln!(out, "allocator: {ALLOCATOR}")?;
        }
        return Ok(());
    };
    let defaults = LoadOptions::default();
    let load_threads = cli.load_threads.unwrap_or(defaults.load_threads);
    let load_options = LoadOptions { compute: cli.compute, fuse_layer_norm: !cli.no_fused_norm, row_softmax: !cli.no_row_softmax, load_threads, pad_multiple: cli.pad_to_multiple, lazy_plans: cli.lazy_plans, expect_digest: cli.expect_digest, matmul_kernel: cli.matmul_kernel, one_text_plans: false };
    // Classifying or benchmarking one text at a time, the plans are built
    // for one text (`LoadOptions::one_text_plans`: a lighter load).
    let one_text = |batch_size: usize| LoadOptions { one_text_plans: batch_size == 1, ..load_options.clone() };
    match command {
        Command::Classify { bundle, policy, batch_size, with_logits, texts } => {
            let model = EdgeClassifier::load_with_options(&bundle, one_text(batch_size))?;
            let policy = ExitPolicy::chosen(policy.speed, policy.patience, policy.exit_layer, policy.full)
                .map_err(anyhow::Error::msg)?
                .unwrap_or(model.manifest.default_policy);
            policy.check(model.manifest.exit_count()).map_err(|e| anyhow::anyhow!("{}: {e}", bundle.display()))?;
            let (classified, failed) = classify(&model, policy, batch_size, with_logits, texts)?;
            anyhow::ensure!(failed == 0, "{failed} of {} texts could not be classified (see their error lines)", classified + failed);
            Ok(())
        }
        Command::Bench { bundle, data, speeds, patience, out, batch_size, warmup, limit, full_only } => {
            let started = std::time::Instant::now();
            let model = EdgeClassifier::load_with_options(&bundle, one_text(batch_size))?;
            let load_ms = started.elapsed().as_secs_f64() * 1e3;
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
            let mut report = bench(&model, &bundle, &data, &opts)?;
            report.load_ms = Some(load_ms);
            report.runtime = format!("{}, allocator {ALLOCATOR}", report.runtime);
            write_report(&report, &out)?;
            write!(std::io::stdout().lock(), "{}", markdown(&report))?;
            eprintln!("report written to {}", out.display());
            Ok(())
        }
        Command::Inspect { bundle } => {
            let b = bundle::BundleFiles::read(&bundle)?;
            if let Some(expected) = &cli.expect_digest {
                b.check_digest(expected)?;
            }
            let m = &b.manifest;
            let files: serde_json::Map<String, serde_json::Value> =
                m.sha256.keys().map(|f| (f.clone(), b.bytes(f).map_or(0, <[u8]>::len).into())).collect();
            let summary = serde_json::json!({
                "bundle": bundle.display().to_string(),
                "digest": b.digest().to_string(),
                "format_version": m.format_version,
                "precision": m.precision,
                "num_layers": m.num_layers,
                "exit_layers": m.exits.iter().enumerate().filter(|(_, e)| e.is_some()).map(|(i, _)| i + 1).collect::<Vec<_>>(),
                "labels": m.labels,
                "hidden_size": m.hidden_size,
                "max_seq_len": m.max_seq_len,
                "default_policy": m.default_policy.to_string(),
                "file_bytes": files,
                "provenance": m.provenance,
            });
            writeln!(std::io::stdout().lock(), "{summary}")?;
            Ok(())
        }
        Command::Tokenize { bundle, data } => {
            let model = EdgeClassifier::load_with_options(&bundle, load_options)?;
            let texts = read_texts(&data)?;
            let mut out = std::io::stdout().lock();
            for (ids, truncated) in model.tokenize_lines(&data, texts.iter().map(|t| (t.line, t.text.as_str())))? {
                writeln!(out, "{}", serde_json::json!({ "ids": ids, "truncated": truncated }))?;
            }
            Ok(())
        }
        Command::Profile { bundle, data, limit, by_node } => {
            let model = EdgeClassifier::load_with_options(&bundle, load_options)?;
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
        #[cfg(feature = "onnx")]
        Command::ToNnef { bundle, out } => {
            let same = |a: &std::path::Path, b: &std::path::Path| std::fs::canonicalize(a).ok().zip(std::fs::canonicalize(b).ok()).is_some_and(|(a, b)| a == b);
            anyhow::ensure!(!same(&bundle, &out), "--out {} is the ONNX bundle itself; give another directory", out.display());
            let onnx = bundle::BundleFiles::read(&bundle)?;
            let manifest = edge_runtime::nnef::convert_bundle(&onnx, &out, &load_options)?;
            // The variant is loaded as a board would before it is reported.
            EdgeClassifier::load_with_options(&out, LoadOptions { expect_digest: None, ..load_options })?;
            let digest = bundle::files::written_digest(&out)?;
            let bytes = |dir: &std::path::Path, m: &bundle::Manifest| -> u64 { m.graphs().iter().filter_map(|g| std::fs::metadata(dir.join(g)).ok()).map(|f| f.len()).sum() };
            eprintln!(
                "{}: {} NNEF graphs, {} bytes (the ONNX graphs: {} bytes); digest {digest}",
                out.display(),
                manifest.graphs().len(),
                bytes(&out, &manifest),
                bytes(&bundle, &onnx.manifest)
            );
            Ok(())
        }
        Command::Calibrate { bundle, data, max_accuracy_drop, target_latency_ms } => {
            let model = EdgeClassifier::load_with_options(&bundle, load_options)?;
            let target = match (max_accuracy_drop, target_latency_ms) {
                (Some(pts), _) => Target::MaxAccuracyDrop { pts },
                (_, Some(ms)) => Target::LatencyMs(ms),
                _ => unreachable!("clap requires one goal"),
            };
            let c = calibrate_bundle(&model, &bundle, &data, target)?;
            let summary = serde_json::json!({
                "chosen": c.chosen, "full": c.full, "target": c.target, "data": c.data, "n": c.n,
                "segment_ms": c.segment_ms, "candidates": c.candidates.len(), "digest": c.digest,
            });
            writeln!(std::io::stdout().lock(), "{summary}")?;
            eprintln!("default policy of {} is now {}; its digest is now {}", bundle.display(), c.chosen.name, c.digest.as_deref().unwrap_or("?"));
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
            "prob": p.prob(),
            "exit_layer": p.exit_layer,
            "latency_us": p.latency_us(),
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

/// Reads one line of at most `max` bytes into `buf` (without its line end).
/// A longer line is consumed without being stored: `Ok(Some(len))` with its
/// full length and `buf` left empty. `Ok(None)` at the end of input.
fn read_bounded_line(reader: &mut impl BufRead, buf: &mut Vec<u8>, max: usize) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut len = 0usize;
    loop {
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            return Ok((len > 0).then_some(len));
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        len += part.len();
        if len <= max {
            buf.extend_from_slice(part);
        } else {
            buf.clear();
        }
        let end_of_line = done > part.len();
        reader.consume(done);
        if end_of_line {
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(Some(len));
        }
    }
}

/// Classifies, printing one JSON line per input; returns how many were
/// classified and how many failed.
fn classify(model: &EdgeClassifier, policy: ExitPolicy, batch_size: usize, with_logits: bool, texts: Vec<String>) -> Result<(usize, usize)> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut tally = (0usize, 0usize);
    let mut flush = |pending: &mut Vec<Input>, out: &mut std::io::StdoutLock| -> Result<()> {
        let texts: Vec<&str> = pending.iter().filter_map(|i| if let Input::Text(t) = i { Some(t.as_str()) } else { None }).collect();
        let mut results = model.classify_texts(&texts, policy).into_iter();
        for input in pending.drain(..) {
            let line = match input {
                Input::Text(t) => json_line(&t, results.next().expect("one result per text"), with_logits),
                Input::Bad { line, error } => serde_json::json!({ "line": line, "error": error }),
            };
            if line.get("error").is_some() {
                tally.1 += 1;
            } else {
                tally.0 += 1;
            }
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
        flush(&mut pending, &mut out)?;
        return Ok(tally);
    }
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut buf = Vec::new();
    let mut line_no = 0usize;
    while let Some(len) = read_bounded_line(&mut reader, &mut buf, MAX_LINE_BYTES)? {
        line_no += 1;
        pending.push(if len > MAX_LINE_BYTES {
            Input::Bad { line: line_no, error: format!("line is {len} bytes, over the {MAX_LINE_BYTES}-byte limit") }
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
    flush(&mut pending, &mut out)?;
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_line_is_measured_and_skipped_without_being_kept() {
        let input = format!("short\r\n{}\nlast", "x".repeat(100));
        let mut reader = std::io::BufReader::with_capacity(16, input.as_bytes());
        let mut buf = Vec::new();
        assert_eq!(read_bounded_line(&mut reader, &mut buf, 10).unwrap(), Some(6));
        assert_eq!(buf, b"short");
        assert_eq!(read_bounded_line(&mut reader, &mut buf, 10).unwrap(), Some(100));
        assert!(buf.is_empty());
        assert_eq!(read_bounded_line(&mut reader, &mut buf, 10).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(read_bounded_line(&mut reader, &mut buf, 10).unwrap(), None);
    }
}
