//! `bench`: accuracy, layers run and wall-clock latency of a bundle under
//! several exit policies, measured side by side: every text is run under each
//! policy in turn (full depth first), so machine noise hits them alike.

pub use crate::report::{BenchReport, PolicyResult};
use crate::runtime::EdgeClassifier;
use bundle::dataset::{label_indices, read_dataset};
use bundle::stats::{wilson95, Latency};
use bundle::{atomic, ExitPolicy};
use std::path::Path;

pub struct BenchOptions {
    /// Policies to measure besides full depth (always measured, as the baseline)
    /// and the bundle's default policy (always measured too).
    pub policies: Vec<ExitPolicy>,
    /// Texts per call; samples that exit leave the batch (1 = per-sentence latency).
    pub batch_size: usize,
    /// Texts run once before timing starts.
    pub warmup: usize,
    /// Measure only the first N texts of the data.
    pub limit: Option<usize>,
    /// Threads tract's matrix products use (recorded in the report).
    pub threads: usize,
    /// Told how far the run is before the first batch and after each one
    /// (the CLI draws a progress bar).
    pub on_progress: Option<Box<dyn Fn(Progress)>>,
}

/// `done` of `total` texts have been run under each of `policies` policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub policies: usize,
}

/// Runs every exit classifier (unlike `Full`, which skips all but the last)
/// and never exits: normalised entropy is never below 0.
pub const EVERY_EXIT_NEVER_LEAVE: ExitPolicy = ExitPolicy::Entropy { speed: 0.0 };

struct Tally {
    correct: usize,
    layers: Vec<usize>,
    latency_ms: Vec<f64>,
}

pub fn bench(model: &EdgeClassifier, bundle: &Path, data: &Path, opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let mut examples = read_dataset(data)?;
    examples.truncate(opts.limit.unwrap_or(usize::MAX));
    anyhow::ensure!(!examples.is_empty() && opts.batch_size > 0, "{}: nothing to measure (limit 0 or batch size 0)", data.display());
    for p in &opts.policies {
        p.check(model.manifest.exit_count()).map_err(|e| anyhow::anyhow!("{}: {e}", bundle.display()))?;
    }
    let gold = label_indices(&examples, &model.manifest.labels, data)?;
    let tokenized = model.tokenize_lines(data, examples.iter().map(|e| (e.line, e.text.as_str())))?;
    let truncated = tokenized.iter().filter(|t| t.1).count();
    let ids: Vec<Vec<u32>> = tokenized.into_iter().map(|t| t.0).collect();
    let mut policies = vec![ExitPolicy::Full];
    for p in opts.policies.iter().chain(std::iter::once(&model.manifest.default_policy)) {
        if !policies.contains(p) {
            policies.push(*p); // the bundle's default (e.g. calibrated) policy is always measured
        }
    }
    let n_layers = model.manifest.num_layers;

    for row in ids.iter().take(opts.warmup) {
        model.classify_ids(std::slice::from_ref(row), ExitPolicy::Full)?;
    }
    let progress = |done: usize| {
        if let Some(tell) = &opts.on_progress {
            tell(Progress { done, total: ids.len(), policies: policies.len() });
        }
    };
    progress(0);
    let mut tallies: Vec<Tally> =
        policies.iter().map(|_| Tally { correct: 0, layers: Vec::new(), latency_ms: Vec::new() }).collect();
    let mut segments: Vec<Vec<f64>> = vec![Vec::new(); n_layers + 1];
    let batch_size = opts.batch_size.max(1);
    for (c, chunk) in ids.chunks(batch_size).enumerate() {
        // A failing batch names the lines it holds.
        let lines = |e: crate::runtime::RuntimeError| {
            let (first, last) = (examples[c * batch_size].line, examples[c * batch_size + chunk.len() - 1].line);
            let at = if first == last { first.to_string() } else { format!("{first}-{last}") };
            anyhow::anyhow!("{}:{at}: {e}", data.display())
        };
        for (policy, tally) in policies.iter().zip(tallies.iter_mut()) {
            let preds = model.classify_ids(chunk, *policy).map_err(lines)?;
            for (j, p) in preds.iter().enumerate() {
                let gold_label = &model.manifest.labels[gold[c * batch_size + j]];
                tally.correct += (p.label == *gold_label) as usize;
                tally.layers.push(p.exit_layer);
                tally.latency_ms.push(p.latencies.iter().map(|d| d.as_secs_f64() * 1e3).sum());
            }
        }
        // Segment costs with every exit classifier run (what exiting after
        // layer k costs) from a pass that never exits; per call, so from the
        // batch's first text.
        let probe = model.classify_ids(chunk, EVERY_EXIT_NEVER_LEAVE).map_err(lines)?;
        for (k, d) in probe[0].latencies.iter().enumerate() {
            segments[k].push(d.as_secs_f64() * 1e3);
        }
        progress(c * batch_size + chunk.len());
    }

    let n = ids.len();
    let segment_latency: Vec<Latency> = segments.iter().map(|s| Latency::of(s).expect("one full run per chunk")).collect();
    let cost_to_exit_after_layer_ms = (1..=n_layers)
        .map(|k| segment_latency[..=k].iter().map(|l| l.mean_ms).sum())
        .collect();
    let mut results: Vec<PolicyResult> = policies
        .iter()
        .zip(&tallies)
        .map(|(policy, t)| {
            let mut exit_histogram = vec![0; n_layers];
            let mut by_layer = vec![Vec::new(); n_layers];
            for (&l, &ms) in t.layers.iter().zip(&t.latency_ms) {
                exit_histogram[l - 1] += 1;
                by_layer[l - 1].push(ms);
            }
            PolicyResult {
                name: policy.to_string(),
                policy: *policy,
                correct: t.correct,
                accuracy: t.correct as f64 / n as f64,
                accuracy_ci95: wilson95(t.correct, n),
                accuracy_change_pts: 0.0,
                mean_layers: t.layers.iter().sum::<usize>() as f64 / n as f64,
                exit_histogram,
                latency: Latency::of(&t.latency_ms).expect("at least one text"),
                latency_by_exit_layer: by_layer.iter().map(|v| Latency::of(v)).collect(),
                speedup_vs_full: 0.0,
            }
        })
        .collect();
    let mut pooled = vec![Vec::new(); n_layers];
    for t in &tallies {
        for (&l, &ms) in t.layers.iter().zip(&t.latency_ms) {
            pooled[l - 1].push(ms);
        }
    }
    let (full_acc, full_ms) = (results[0].accuracy, results[0].latency.mean_ms);
    for r in &mut results {
        r.accuracy_change_pts = (r.accuracy - full_acc) * 100.0;
        r.speedup_vs_full = full_ms / r.latency.mean_ms;
    }
    Ok(BenchReport {
        bundle: bundle.display().to_string(),
        data: data.display().to_string(),
        n,
        truncated,
        num_layers: n_layers,
        precision: model.manifest.precision,
        compute: model.compute,
        batch_size,
        threads: opts.threads,
        machine: machine_description(),
        runtime: format!("edge-runtime {} (tract {})", env!("CARGO_PKG_VERSION"), crate::TRACT_VERSION),
        load_ms: None,
        segment_latency,
        cost_to_exit_after_layer_ms,
        exits_at_layer: pooled.iter().map(|v| Latency::of(v)).collect(),
        policies: results,
    })
}

/// CPU architecture and model name, so a report says where it was measured.
pub fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model") || l.starts_with("CPU part"))
                .and_then(|l| l.split_once(':').map(|(_, v)| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{} {} ({cpu}, {} CPUs)", std::env::consts::OS, std::env::consts::ARCH, std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `report.md`: the tables a user reads first.
pub fn markdown(r: &BenchReport) -> String {
    let mut s = format!(
        "# edge-runtime bench\n\nBundle `{}` ({} layers, {:?} weights, {:?} compute) on `{}`: {} texts ({} truncated), batch size {}, {} thread(s), {}.\n\n",
        r.bundle, r.num_layers, r.precision, r.compute, r.data, r.n, r.truncated, r.batch_size, r.threads, r.machine
    );
    s += "| policy | accuracy % [95% CI] | Δ pts vs full | mean layers | mean ms | p50 ms | p90 ms | p99 ms | speed-up vs full | exits per layer |\n";
    s += "|---|---|---|---|---|---|---|---|---|---|\n";
    for p in &r.policies {
        s += &format!(
            "| {} | {:.2} [{:.2}, {:.2}] | {:+.2} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}× | {:?} |\n",
            p.name,
            p.accuracy * 100.0,
            p.accuracy_ci95[0] * 100.0,
            p.accuracy_ci95[1] * 100.0,
            p.accuracy_change_pts,
            p.mean_layers,
            p.latency.mean_ms,
            p.latency.p50_ms,
            p.latency.p90_ms,
            p.latency.p99_ms,
            p.speedup_vs_full,
            p.exit_histogram
        );
    }
    s += "\n## What each exit layer costs\n\nMean cost to exit after layer k (embeddings + layers 1..k with their exits, from a pass that runs every exit), and the latency of the texts that did exit there (all policies pooled).\n\n";
    s += "| exit layer | cost ms | texts exiting | p50 ms | p90 ms | p99 ms |\n|---|---|---|---|---|---|\n";
    for k in 0..r.num_layers {
        let cell = |f: fn(&Latency) -> f64| r.exits_at_layer[k].as_ref().map_or("–".to_string(), |l| format!("{:.3}", f(l)));
        s += &format!(
            "| {} | {:.3} | {} | {} | {} | {} |\n",
            k + 1,
            r.cost_to_exit_after_layer_ms[k],
            r.exits_at_layer[k].as_ref().map_or(0, |l| l.n),
            cell(|l| l.p50_ms),
            cell(|l| l.p90_ms),
            cell(|l| l.p99_ms)
        );
    }
    s
}

/// Writes `report.json`, `report.md` and (with the `plots` feature, not in
/// the board build) `speed-accuracy.svg` and `latency-per-exit-layer.svg`
/// into `dir` (each file atomically).
pub fn write_report(r: &BenchReport, dir: &Path) -> anyhow::Result<()> {
    atomic::write_json(&dir.join("report.json"), r)?;
    atomic::write(&dir.join("report.md"), markdown(r).as_bytes())?;
    #[cfg(feature = "plots")]
    for (name, plot) in [
        ("speed-accuracy.svg", crate::plots::speed_accuracy as fn(&BenchReport, &Path) -> _),
        ("latency-per-exit-layer.svg", crate::plots::latency_per_exit_layer),
    ] {
        let path = dir.join(name);
        atomic::write_with(&path, |tmp| plot(r, tmp).map_err(|e| anyhow::anyhow!("{}: cannot draw: {e}", path.display())))?;
    }
    Ok(())
}
