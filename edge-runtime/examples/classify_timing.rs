//! Per-text time of `EdgeClassifier::classify` through the Rust API, batch 1:
//! the reference the Python wheel's overhead is measured against
//! (bench/python-wheel/bench-python-wheel.sh runs this and the same loop
//! through `bert_edge`, in turn).
//!
//!     cargo run --release -p edge-runtime --example classify_timing -- BUNDLE TEXTS.txt POLICY [PASSES]
//!
//! POLICY: `full`, `layer K` or `default`. Loads the bundle, classifies every
//! line of TEXTS.txt once untimed, then PASSES times (default 3) timing each
//! call; prints one JSON line: texts, calls, mean and median microseconds per
//! text, and the exit layers of the last pass (to check both sides ran alike).

use bundle::exit::ExitPolicy;
use edge_runtime::EdgeClassifier;
use std::path::Path;
use std::time::Instant;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    anyhow::ensure!(args.len() == 3 || args.len() == 4, "usage: classify_timing BUNDLE TEXTS.txt full|'layer K'|default [PASSES]");
    let model = EdgeClassifier::load(Path::new(&args[0]))?;
    let texts: Vec<String> = std::fs::read_to_string(&args[1])?.lines().map(str::to_owned).collect();
    let policy = match args[2].split_whitespace().collect::<Vec<_>>()[..] {
        ["full"] => ExitPolicy::Full,
        ["default"] => model.manifest.default_policy,
        ["layer", k] => ExitPolicy::Layer { k: k.parse()? },
        _ => anyhow::bail!("policy {:?}: full, 'layer K' or default", args[2]),
    };
    let passes: usize = args.get(3).map_or(Ok(3), |p| p.parse())?;
    for text in &texts {
        model.classify(text, policy)?;
    }
    let mut micros = Vec::new();
    let mut exits = Vec::new();
    for pass in 0..passes {
        for text in &texts {
            let start = Instant::now();
            let p = model.classify(text, policy)?;
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            if pass + 1 == passes {
                exits.push(p.exit_layer);
            }
        }
    }
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    micros.sort_by(f64::total_cmp);
    let median = micros[(micros.len() - 1) / 2]; // the lower median, as Python's median_low
    let line = serde_json::json!({ "texts": texts.len(), "calls": micros.len(), "us_per_text_mean": mean, "us_per_text_median": median, "exit_layers": exits });
    println!("{line}");
    Ok(())
}
