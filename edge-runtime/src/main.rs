//! `edge-runtime`: classify text on the device with a bundle, exiting early.

use anyhow::Result;
use clap::{Parser, Subcommand};
use edge_runtime::{EdgeClassifier, ExitPolicy};
use std::io::{BufRead, Write};
use std::path::PathBuf;

/// Longest stdin line accepted (bytes); longer lines get an error line.
const MAX_LINE_BYTES: usize = 1 << 20;

#[derive(Parser)]
#[command(name = "edge-runtime", version, about = "Run a BERT bundle layer by layer with early exit (tract)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify texts (arguments, or one per stdin line); one JSON line per text.
    Classify {
        /// Bundle directory (from `trainer export`).
        #[arg(long)]
        bundle: PathBuf,
        /// Exit at the first layer whose normalised entropy is below S (FastBERT).
        #[arg(long, conflicts_with_all = ["patience", "full"])]
        speed: Option<f32>,
        /// Exit once the prediction is unchanged for P consecutive layers (PABEE).
        #[arg(long, conflicts_with = "full")]
        patience: Option<usize>,
        /// Run every layer.
        #[arg(long)]
        full: bool,
        texts: Vec<String>,
    },
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Classify { bundle, speed, patience, full, texts } => {
            let model = EdgeClassifier::load(&bundle)?;
            let policy = match (speed, patience, full) {
                (Some(speed), _, _) => ExitPolicy::Entropy { speed },
                (_, Some(n), _) => ExitPolicy::Patience { n },
                (_, _, true) => ExitPolicy::Full,
                _ => model.manifest.default_policy,
            };
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            let mut emit = |line: serde_json::Value| -> Result<()> { Ok(writeln!(out, "{line}")?) };
            let classify = |text: &str| -> serde_json::Value {
                match model.classify(text, policy) {
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
            };
            if !texts.is_empty() {
                for t in &texts {
                    emit(classify(t))?;
                }
                return Ok(());
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
                let line = if buf.len() > MAX_LINE_BYTES {
                    serde_json::json!({ "line": line_no, "error": format!("line is {} bytes, over the {MAX_LINE_BYTES}-byte limit", buf.len()) })
                } else {
                    match std::str::from_utf8(&buf) {
                        Ok(text) => classify(text),
                        Err(e) => serde_json::json!({ "line": line_no, "error": format!("invalid UTF-8: {e}") }),
                    }
                };
                emit(line)?;
            }
        }
    }
    Ok(())
}
