//! `calibrate`: picks the exit policy for a bundle from labelled data.
//!
//! Every exit's probabilities are computed once per text (full depth), so each
//! candidate policy is then evaluated exactly and for free by replaying the
//! exit rule over them; latency is estimated from the per-segment wall time
//! measured at batch 1. The chosen policy becomes the bundle's default.

use crate::runtime::EdgeClassifier;
use bundle::dataset::{label_indices, read_dataset};
use bundle::exit::{argmax, replay, softmax, ExitPolicy};
use bundle::files::set_default_policy;
use bundle::Digest;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Fastest policy whose accuracy is at most this many points below full depth.
    MaxAccuracyDrop { pts: f64 },
    /// Most accurate policy whose estimated mean latency is within this budget.
    LatencyMs(f64),
}

#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub name: String,
    pub policy: ExitPolicy,
    pub accuracy: f64,
    pub mean_layers: f64,
    pub est_latency_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub data: String,
    pub n: usize,
    pub target: String,
    /// Mean wall time per segment at batch 1: embeddings, then each layer with its
    /// exit (full depth skips the exits before the last and is timed on its own).
    pub segment_ms: Vec<f64>,
    pub full: Candidate,
    pub chosen: Candidate,
    pub candidates: Vec<Candidate>,
    /// The digest of the bundle with this calibration's policy written into it
    /// (set by [`calibrate_bundle`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Texts per `all_exit_logits` call while collecting probabilities.
const PROBE_BATCH: usize = 32;

/// Candidate policies for a bundle: full depth, and if it has more than the
/// final exit, entropy speeds 0.01..0.99 and patience 1..layers-1.
pub fn candidate_policies(model: &EdgeClassifier) -> Vec<ExitPolicy> {
    let mut v = vec![ExitPolicy::Full];
    if model.manifest.exits.iter().flatten().count() > 1 {
        v.extend((1..100).map(|i| ExitPolicy::Entropy { speed: i as f32 / 100.0 }));
        v.extend((1..model.manifest.num_layers).map(|n| ExitPolicy::Patience { n }));
    }
    v
}

pub fn calibrate(model: &EdgeClassifier, data: &Path, target: Target, timing_texts: usize) -> anyhow::Result<Calibration> {
    let examples = read_dataset(data)?;
    let gold = label_indices(&examples, &model.manifest.labels, data)?;
    let texts = examples.iter().map(|e| (e.line, e.text.as_str()));
    let ids: Vec<Vec<u32>> = model.tokenize_lines(data, texts)?.into_iter().map(|t| t.0).collect();

    // probs[sample][layer]: Some(p) where the layer has an exit.
    let n_layers = model.manifest.num_layers;
    let mut probs: Vec<Vec<Option<Vec<f32>>>> = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(PROBE_BATCH) {
        let logits = model.all_exit_logits(chunk)?;
        for j in 0..chunk.len() {
            probs.push(logits.iter().map(|l| l.as_ref().map(|l| softmax(&l[j]))).collect());
        }
    }
    let mut sums = vec![0.0; n_layers + 1];
    let mut full_sum = 0.0;
    let timed = timing_texts.clamp(1, ids.len());
    for row in &ids[..timed] {
        let p = model.classify_ids(std::slice::from_ref(row), crate::bench::EVERY_EXIT_NEVER_LEAVE)?.remove(0);
        for (s, d) in sums.iter_mut().zip(&p.latencies) {
            *s += d.as_secs_f64() * 1e3;
        }
        let full = model.classify_ids(std::slice::from_ref(row), ExitPolicy::Full)?.remove(0);
        full_sum += full.latencies.iter().map(|d| d.as_secs_f64() * 1e3).sum::<f64>();
    }
    let segment_ms: Vec<f64> = sums.iter().map(|s| s / timed as f64).collect();
    let full_ms = full_sum / timed as f64;

    let evaluate = |policy: ExitPolicy| -> Candidate {
        let (mut correct, mut layers, mut ms) = (0usize, 0usize, 0.0f64);
        for (sample, g) in probs.iter().zip(&gold) {
            let (exit, p) = replay(policy, sample.iter().map(Option::as_ref)).expect("the last layer always has an exit");
            correct += (argmax(p) == *g) as usize;
            layers += exit;
            ms += segment_ms[..=exit].iter().sum::<f64>();
        }
        let n = probs.len() as f64;
        Candidate {
            name: policy.to_string(),
            policy,
            accuracy: correct as f64 / n,
            mean_layers: layers as f64 / n,
            // Full depth runs no exit but the last: its own measured time.
            est_latency_ms: if policy == ExitPolicy::Full { full_ms } else { ms / n },
        }
    };
    let candidates: Vec<Candidate> = candidate_policies(model).into_iter().map(evaluate).collect();
    let full = candidates[0].clone();
    let chosen = choose(&candidates, &full, target)?;
    Ok(Calibration {
        data: data.display().to_string(),
        n: ids.len(),
        target: match target {
            Target::MaxAccuracyDrop { pts } => format!("max accuracy drop {pts} pts"),
            Target::LatencyMs(ms) => format!("target latency {ms} ms"),
        },
        segment_ms,
        full,
        chosen,
        candidates,
        digest: None,
    })
}

/// The rule that picks a policy; ties go to the more accurate, then faster one.
fn choose(candidates: &[Candidate], full: &Candidate, target: Target) -> anyhow::Result<Candidate> {
    let better = |a: &&Candidate, b: &&Candidate| -> std::cmp::Ordering {
        match target {
            Target::MaxAccuracyDrop { .. } => {
                a.est_latency_ms.total_cmp(&b.est_latency_ms).then(b.accuracy.total_cmp(&a.accuracy))
            }
            Target::LatencyMs(_) => b.accuracy.total_cmp(&a.accuracy).then(a.est_latency_ms.total_cmp(&b.est_latency_ms)),
        }
    };
    let ok = |c: &&Candidate| match target {
        // A small epsilon so "no drop" accepts policies exactly as accurate as full depth.
        Target::MaxAccuracyDrop { pts } => c.accuracy >= full.accuracy - pts / 100.0 - 1e-12,
        Target::LatencyMs(ms) => c.est_latency_ms <= ms,
    };
    candidates.iter().filter(ok).min_by(better).cloned().ok_or_else(|| {
        let fastest = candidates.iter().min_by(|a, b| a.est_latency_ms.total_cmp(&b.est_latency_ms)).expect("full depth is a candidate");
        anyhow::anyhow!(
            "no exit policy meets the {target:?}: the fastest, {}, takes {:.3} ms per text at {:.2}% accuracy",
            fastest.name,
            fastest.est_latency_ms,
            fastest.accuracy * 100.0
        )
    })
}

/// The report `calibrate` leaves in the bundle, beside the manifest it changed.
pub const REPORT: &str = "calibration-report.json";

/// Calibrates and writes the chosen policy into the bundle's manifest, with
/// the whole calibration as `calibration-report.json`; both land together
/// (the bundle is rewritten beside itself and swapped in whole).
pub fn calibrate_bundle(model: &EdgeClassifier, bundle: &Path, data: &Path, target: Target) -> anyhow::Result<Calibration> {
    let c = calibrate(model, data, target, 200)?;
    let why = format!(
        "calibrated on {} ({} texts) for {}: {:.2}% accuracy (full depth {:.2}%), {:.2} layers, est. {:.3} ms",
        c.data,
        c.n,
        c.target,
        c.chosen.accuracy * 100.0,
        c.full.accuracy * 100.0,
        c.chosen.mean_layers,
        c.chosen.est_latency_ms
    );
    let (policy, mut c) = (c.chosen.policy, c);
    let report = |digest: &Digest| {
        c.digest = Some(digest.to_string());
        let mut report = serde_json::to_vec_pretty(&c).expect("a calibration serializes");
        report.push(b'\n');
        vec![(REPORT.to_string(), report)]
    };
    let (_, digest) = set_default_policy(bundle, policy, &why, report)?;
    c.digest = Some(digest.to_string());
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(name: &str, accuracy: f64, est_latency_ms: f64) -> Candidate {
        Candidate { name: name.into(), policy: ExitPolicy::Full, accuracy, mean_layers: 0.0, est_latency_ms }
    }

    #[test]
    fn picks_the_fastest_within_the_drop_and_the_most_accurate_within_the_budget() {
        let full = cand("full", 0.90, 10.0);
        let cs = vec![full.clone(), cand("a", 0.899, 5.0), cand("b", 0.89, 3.0), cand("c", 0.80, 1.0)];
        assert_eq!(choose(&cs, &full, Target::MaxAccuracyDrop { pts: 0.0 }).unwrap().name, "full");
        assert_eq!(choose(&cs, &full, Target::MaxAccuracyDrop { pts: 0.3 }).unwrap().name, "a");
        assert_eq!(choose(&cs, &full, Target::MaxAccuracyDrop { pts: 1.0 }).unwrap().name, "b");
        assert_eq!(choose(&cs, &full, Target::LatencyMs(4.0)).unwrap().name, "b");
        let err = choose(&cs, &full, Target::LatencyMs(0.5)).unwrap_err().to_string();
        assert!(err.contains("the fastest, c"), "{err}");
    }
}
