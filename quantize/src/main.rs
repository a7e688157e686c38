//! `quantize`: an f32 bundle → an int8 or f16 bundle, with a report.

use anyhow::Result;
use clap::{Parser, ValueEnum};
use quantize::{quantize_bundle, Int8Form, Options, Target};
use std::io::Write;
use std::path::PathBuf;

#[derive(Clone, Copy, ValueEnum)]
enum To {
    Int8,
    F16,
}

/// Quantize a bundle's weights (symmetric per-output-channel int8, or f16).
/// Writes OUT atomically with new checksums and `precision` in the manifest,
/// plus OUT/quantize-report.json (per-tensor and per-graph error, sizes).
#[derive(Parser)]
#[command(name = "quantize", version)]
struct Cli {
    /// f32 bundle (from `trainer export`).
    #[arg(long)]
    bundle: PathBuf,
    #[arg(long, value_enum)]
    to: To,
    /// Output bundle directory.
    #[arg(long)]
    out: PathBuf,
    /// Labelled JSONL: compare both bundles on it (accuracy, logits error per exit,
    /// label agreement, how often the exit layer changes).
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Keep these weights f32: glob over `tensor` or `graph.onnx:tensor`
    /// (e.g. `classifier.*`, `exit_*.onnx:*`). Repeatable.
    #[arg(long, num_args = 1..)]
    keep_f32: Vec<String>,
    /// int8 form (docs/results/quantize.md has the measurements): `weight-only` stores int8
    /// and multiplies in f32; `dynamic-u8` is ONNX's DynamicQuantizeLinear →
    /// MatMulInteger; `dynamic-i8` quantizes activations per token to int8.
    #[arg(long, value_enum, default_value = "weight-only")]
    int8_form: Int8Form,
}

fn main() {
    bundle::cli::exit_with(run(Cli::parse()));
}

fn run(cli: Cli) -> Result<()> {
    let target = match cli.to {
        To::F16 => Target::F16,
        To::Int8 => Target::Int8 { form: cli.int8_form },
    };
    let opts = Options { target, keep_f32: cli.keep_f32, calibration: cli.calibration };
    let r = quantize_bundle(&cli.bundle, &cli.out, &opts)?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} → {}: {:?}, {} → {} bytes ({:.1}% of f32)",
        r.input, r.output, r.target, r.bundle_bytes_before, r.bundle_bytes_after, r.size_ratio * 100.0
    )?;
    writeln!(out, "{:<22} {:>10} {:>10} {:>12} {:>12}", "graph", "bytes", "f32 bytes", "min SQNR dB", "max-abs err")?;
    for g in &r.graphs {
        let sqnr = g.min_sqnr_db.map_or("-".into(), |s| format!("{s:.1}"));
        writeln!(out, "{:<22} {:>10} {:>10} {:>12} {:>12.2e}", g.graph, g.bytes_after, g.bytes_before, sqnr, g.max_abs_error)?;
    }
    let compared = [("", &r.comparison), (" computing in f16", &r.comparison_f16_compute)];
    for (how, c) in compared.iter().filter_map(|(how, c)| c.as_ref().map(|c| (how, c))) {
        writeln!(
            out,
            "on {} ({} texts){how}: accuracy {:.2}% → {:.2}%",
            c.data,
            c.n,
            c.accuracy_before * 100.0,
            c.accuracy_after * 100.0
        )?;
        for e in &c.exits {
            writeln!(
                out,
                "  exit {:>2}: logits max-abs {:.2e}, SQNR {:.1} dB, same label {:.2}%",
                e.exit_layer,
                e.logits_max_abs_error,
                e.logits_sqnr_db,
                e.label_agreement * 100.0
            )?;
        }
        for (policy, changed) in &c.exit_layer_changed {
            writeln!(out, "  {policy}: exit layer changes for {:.2}% of texts", changed * 100.0)?;
        }
    }
    writeln!(out, "report: {}/quantize-report.json", r.output)?;
    writeln!(out, "digest {}", r.digest)?;
    Ok(())
}
